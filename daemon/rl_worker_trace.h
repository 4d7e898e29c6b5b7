/* rl_worker_trace.h - where a request's time to first token goes inside the
 * daemon (diagnostic, off unless RINGLM_TRACE_TTFT is set in the environment).
 *
 * Stages, each a CLOCK_MONOTONIC stamp (rl_now_ns) taken by the loop or the
 * worker thread on the request's way to its first token:
 *   seen    the loop read the GENERATE entry from the submission ring
 *   recv    decoded and tokenized, handed to the worker (rl_wreq_new)
 *   pick    the worker took it from its inbox
 *   step0   start of the first engine step that included it
 *   stepN   start of the step that produced its first token
 *   first   that step returned (the token is sampled)
 *   posted  the token is in the client's completion ring and the client was
 *           woken (after rl_conn_kick)
 * With RINGLM_TRACE_TTFT=1 the worker logs, at LOG_INFO, the median and p90 of
 * each span over every 256 requests and over the rest when it stops (and one
 * LOG_DEBUG line per request). The client's own share (submit -> seen, and its
 * wake-up after posted) is outside; ringlm-bench load reports the whole. */
#ifndef RL_WORKER_TRACE_H
#define RL_WORKER_TRACE_H

#include <stdbool.h>
#include <stdint.h>

typedef struct rl_ttft_stamps {
    uint64_t seen, recv, pick, step0, stepn, first, posted;
    uint32_t steps; /* engine steps it took part in before its first token */
} rl_ttft_stamps;

/* A step that includes the request starts at t0 (before its first token). */
static inline void rl_ttft_stamp_step(rl_ttft_stamps *s, uint64_t t0)
{
    if (!s->step0)
        s->step0 = t0;
    s->stepn = t0;
    s->steps++;
}

typedef struct rl_worker_trace rl_worker_trace;

/* NULL when RINGLM_TRACE_TTFT is unset, empty or "0" (every call below then
 * accepts NULL and does nothing). */
rl_worker_trace *rl_worker_trace_new(void);
/* One request reached its first token (all stamps set). */
void rl_worker_trace_add(rl_worker_trace *t, const rl_ttft_stamps *s, uint32_t req_id);
/* Log what is left and free. */
void rl_worker_trace_free(rl_worker_trace *t);

#endif
