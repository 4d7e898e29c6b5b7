/* rl_pool.h - a persistent thread pool for the CPU kernels.
 *
 * rl_pool_run() runs fn(ctx, ith, nth) on the caller (ith 0) and on the
 * workers that wake while the caller is still working on it (each with its own
 * ith < nth), and returns when all of those have finished. Not every ith runs:
 * fn must take its work from a shared atomic counter, never split it by ith
 * (ith only selects per-thread scratch). So a worker descheduled by the OS
 * never holds a job up. Workers spin briefly after each job (the forward pass
 * issues many short jobs back to back), then yield, then sleep on a futex.
 * One caller at a time: a pool belongs to one compute thread.
 */
#ifndef RL_POOL_H
#define RL_POOL_H

typedef struct rl_pool rl_pool;
typedef void (*rl_pool_fn)(void *ctx, int ith, int nth);

/* n_threads <= 0: one per online CPU. Returns NULL on failure. */
rl_pool *rl_pool_new(int n_threads);
void rl_pool_free(rl_pool *p);
int rl_pool_size(const rl_pool *p);
void rl_pool_run(rl_pool *p, rl_pool_fn fn, void *ctx);

#endif
