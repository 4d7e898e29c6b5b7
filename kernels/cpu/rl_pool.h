/* rl_pool.h - a persistent thread pool for the CPU kernels.
 *
 * rl_pool_run() runs fn(ctx, ith, nth) on every thread (the caller is thread 0)
 * and returns when all have finished. Workers spin briefly after each job (the
 * forward pass issues many short jobs back to back), then sleep on a futex.
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
