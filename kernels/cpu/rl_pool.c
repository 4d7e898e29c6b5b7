/* rl_pool.c - persistent workers: spin on a generation counter, then futex wait. */
#include "rl_pool.h"

#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#define RL_POOL_SPIN 20000

typedef struct rl_worker {
    rl_pool *pool;
    int ith;
    pthread_t tid;
} rl_worker;

struct rl_pool {
    int n;
    rl_worker *workers;
    rl_pool_fn fn;
    void *ctx;
    _Atomic uint32_t gen;     /* bumped once per job; futex word */
    _Atomic uint32_t pending; /* workers still running the current job */
    _Atomic uint32_t sleepers;/* workers blocked in futex wait */
    _Atomic int stop;
};

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(_Atomic uint32_t *addr)
{
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker_main(void *arg)
{
    rl_worker *w = arg;
    rl_pool *p = w->pool;
    uint32_t seen = 0;
    for (;;) {
        uint32_t g;
        int spins = 0;
        /* acquire: pairs with the release increment in rl_pool_run, so fn/ctx are visible */
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
            if (++spins < RL_POOL_SPIN) {
                cpu_relax();
                continue;
            }
            atomic_fetch_add_explicit(&p->sleepers, 1, memory_order_seq_cst);
            /* seq_cst: the sleeper count is published before re-checking gen, so the
             * runner either sees us sleeping (and wakes us) or we see the new gen. */
            if (atomic_load_explicit(&p->gen, memory_order_seq_cst) == seen)
                futex_wait(&p->gen, seen);
            atomic_fetch_sub_explicit(&p->sleepers, 1, memory_order_relaxed);
            spins = 0;
        }
        seen = g;
        if (atomic_load_explicit(&p->stop, memory_order_relaxed))
            break;
        p->fn(p->ctx, w->ith, p->n);
        /* release: our writes from fn are visible to the runner once it sees pending hit 0 */
        atomic_fetch_sub_explicit(&p->pending, 1, memory_order_release);
    }
    return NULL;
}

rl_pool *rl_pool_new(int n_threads)
{
    if (n_threads <= 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = nc > 0 ? (int)nc : 1;
    }
    if (n_threads > 256)
        n_threads = 256;
    rl_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->n = n_threads;
    p->workers = calloc((size_t)n_threads, sizeof(*p->workers));
    if (!p->workers) {
        free(p);
        return NULL;
    }
    for (int i = 1; i < n_threads; i++) {
        p->workers[i].pool = p;
        p->workers[i].ith = i;
        if (pthread_create(&p->workers[i].tid, NULL, worker_main, &p->workers[i]) != 0) {
            p->n = i; /* stop the ones already started */
            rl_pool_free(p);
            return NULL;
        }
    }
    return p;
}

int rl_pool_size(const rl_pool *p)
{
    return p->n;
}

void rl_pool_run(rl_pool *p, rl_pool_fn fn, void *ctx)
{
    if (p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->pending, (uint32_t)(p->n - 1), memory_order_relaxed);
    /* seq_cst: publishes fn/ctx/pending before workers see the new generation, and
     * orders the increment before the sleeper check below (see worker_main). */
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&p->sleepers, memory_order_seq_cst) > 0)
        futex_wake_all(&p->gen);
    fn(ctx, 0, p->n);
    /* acquire: see every worker's results */
    while (atomic_load_explicit(&p->pending, memory_order_acquire) != 0)
        cpu_relax();
}

void rl_pool_free(rl_pool *p)
{
    if (!p)
        return;
    if (p->n > 1) {
        atomic_store_explicit(&p->stop, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&p->gen, 1, memory_order_seq_cst);
        futex_wake_all(&p->gen);
        for (int i = 1; i < p->n; i++)
            pthread_join(p->workers[i].tid, NULL);
    }
    free(p->workers);
    free(p);
}
