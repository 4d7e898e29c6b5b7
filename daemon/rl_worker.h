/* rl_worker.h - the compute worker thread: runs engine steps over every running
 * sequence of every client as one batch, streams tokens to completion rings.
 *
 * The loop hands work over with rl_worker_submit/cancel/conn_gone (a mutex-
 * protected inbox); the worker signals the loop through notify_fd (an eventfd)
 * when a client must be disconnected (corrupt region) or the drain finished.
 */
#ifndef RL_WORKER_H
#define RL_WORKER_H

#include "rl_conn.h"
#include "rl_engine.h"
#include "rl_sched.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct rl_worker rl_worker;

/* A decoded request the loop hands to the worker (owned by the worker after
 * rl_worker_submit). */
typedef struct rl_wreq rl_wreq;

/* Build a request from a decoded payload: copies prompt ids (takes ownership of
 * ids) and stop strings; holds a reference on conn. NULL on ENOMEM. */
struct rl_req_parsed;
rl_wreq *rl_wreq_new(rl_conn *conn, uint32_t req_id, const struct rl_req_parsed *p, int32_t *ids,
                     uint32_t n_ids, uint64_t t_recv_ns);
/* When the loop first saw the request (before decoding and tokenizing it): the
 * start of the RINGLM_TRACE_TTFT spans (rl_worker_trace.h). */
void rl_wreq_set_seen(rl_wreq *r, uint64_t t_seen_ns);

int rl_worker_start(rl_worker **out, rl_engine *e, int spin_us, int notify_fd);
/* The same with per-client admission limits (NULL: defaults, see rl_sched.h). */
int rl_worker_start_limits(rl_worker **out, rl_engine *e, int spin_us, int notify_fd,
                           const rl_sched_limits *lim);
/* Stop the thread after dropping every request (no completions posted). */
void rl_worker_stop(rl_worker *w);

void rl_worker_submit(rl_worker *w, rl_wreq *r);
void rl_worker_cancel(rl_worker *w, rl_conn *c, uint32_t req_id);
/* The client is gone: free its requests. */
void rl_worker_conn_gone(rl_worker *w, rl_conn *c);
/* c finished its handshake: the worker maps its region into the engine (zero
 * copy, where the engine can) between steps, before the client's first
 * request needs it, instead of inside the step that first serves it. */
void rl_worker_conn_live(rl_worker *w, rl_conn *c);
/* Cancel every request (final DONE with RL_WIRE_FINISH_CANCELLED). */
void rl_worker_cancel_all(rl_worker *w);
/* Something may have changed (room in a client's rings): look again. */
void rl_worker_kick(rl_worker *w);

uint32_t rl_worker_active(rl_worker *w);
uint64_t rl_worker_steps(rl_worker *w);
uint64_t rl_worker_beat(rl_worker *w);
uint64_t rl_worker_step_started(rl_worker *w);

#endif
