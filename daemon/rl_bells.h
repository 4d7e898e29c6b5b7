/* rl_bells.h - client wake-ups off the step thread.
 *
 * After a step the worker has posted tokens to many clients; each one asleep
 * behind its need-wakeup flag wants its doorbell rung (an eventfd write, a
 * system call and a thread wake-up: ~2-5 us each on the GPU host, so ~0.2 ms
 * for 64 clients, 4% of a 7B batch-64 step). rl_bells rings them on a thread
 * of its own while the worker starts the next step; a handful are rung inline
 * (rl_bells_ring), where one hop to another thread would cost more than the
 * bells themselves.
 */
#ifndef RL_BELLS_H
#define RL_BELLS_H

#include "rl_conn.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct rl_bells rl_bells;

/* Starts the thread. Returns NULL when off (env RINGLM_BELL_THREAD=0) or out
 * of memory: callers then ring inline. */
rl_bells *rl_bells_new(void);

/* Rings conns[0..n), taking one reference each (released once rung): on the
 * thread when there are more than 4, here otherwise, and here too when b is
 * NULL or the queue cannot grow. */
void rl_bells_ring(rl_bells *b, rl_conn *const *conns, uint32_t n);

/* Rings what is pending, stops the thread, frees b. */
void rl_bells_free(rl_bells *b);

/* Bells rung on the thread so far, and hand-overs (monotonic; any thread). */
void rl_bells_counts(const rl_bells *b, uint64_t *rung, uint64_t *posts);

#endif
