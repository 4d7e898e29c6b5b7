/* rl_sched.h - the compute worker's scheduling policy: per-client admission
 * limits and the order of sequences in each engine step.
 *
 * Every step runs all running sequences of all clients as one batch; the
 * engine gives decode tokens first and fills the rest of its per-step token
 * budget with prompt chunks in the order it is given. That order is decided
 * here: latency-critical (higher priority) requests first, then round-robin
 * across clients (the k-th request of every client before the (k+1)-th of
 * any, starting at a client that rotates every step), so a client that floods
 * the daemon cannot push the others' prompts back. Limits per client bound
 * how much of the queue and of the KV cache one client can claim.
 *
 * Pure functions over plain data: no threads, no engine. */
#ifndef RL_SCHED_H
#define RL_SCHED_H

#include <stddef.h>
#include <stdint.h>

typedef struct rl_sched_limits {
    uint32_t max_queued;   /* requests in flight per client (0: RL_SCHED_DEFAULT_QUEUED) */
    uint64_t max_kv_tokens;/* per client: KV positions of its requests in flight, each counted as
                            * n_prompt + tokens generated so far (0: half of the engine's KV
                            * pool when known, else no limit) */
} rl_sched_limits;

#define RL_SCHED_DEFAULT_QUEUED 1024u /* = the transport's hard cap (RL_CONN_MAX_REQS) */

/* What one client has in flight (for the admission check). */
typedef struct rl_sched_usage {
    uint32_t n_req;
    uint64_t kv_tokens;
} rl_sched_usage;

/* May a new request of n_tokens (its prompt) join a client that has *u in
 * flight? 0, or -EAGAIN (too many requests queued) / -EDQUOT (KV quota)
 * with a message for the client in msg. */
int rl_sched_admit(const rl_sched_limits *lim, const rl_sched_usage *u, uint64_t n_tokens, char *msg,
                   size_t msglen);

/* One runnable sequence of a step. */
typedef struct rl_sched_ent {
    const void *client; /* identity of the client (its connection) */
    uint8_t priority;
    uint32_t index;     /* caller's index; arrival order among equal keys */
    uint32_t rank_;     /* scratch */
} rl_sched_ent;

/* Order ents in place for a step: priority descending, then round-robin
 * across clients (clients ranked by first appearance, rotated by `rotate`),
 * keeping each client's order. Pass ents in arrival order. With more than
 * 1024 distinct clients it falls back to priority, then arrival order. */
void rl_sched_order(rl_sched_ent *ents, uint32_t n, uint32_t rotate);

#endif
