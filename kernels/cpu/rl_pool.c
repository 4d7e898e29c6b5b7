/* rl_pool.c - persistent workers that join jobs opportunistically.
 *
 * A job is open from rl_pool_run's start until the caller has finished its own
 * share; workers that wake in time join it, the others skip it. The caller then
 * waits only for workers that joined. So a worker that the OS has not
 * scheduled (another process owns the core) never stalls a job: jobs must hand
 * out their work dynamically (an atomic counter), never by thread index. */
#include "rl_pool.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Spin this many pause rounds (a few microseconds: the forward pass issues
 * jobs back to back), then yield the CPU for a while (another process may
 * need this core: never burn a time slice waiting), then sleep on the futex. */
#define RL_POOL_SPIN 2000
#define RL_POOL_YIELD 200

#define ST_CLOSED (1ull << 31)
#define ST_ACTIVE 0x7fffffffull

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
    _Atomic uint32_t gen;      /* bumped once per job; futex word */
    _Atomic uint64_t state;    /* job gen << 32 | closed bit | workers inside the job */
    _Atomic uint32_t sleepers; /* workers blocked in futex wait */
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

/* Enter job g if it is still open. */
static int try_join(rl_pool *p, uint32_t g)
{
    uint64_t s = atomic_load_explicit(&p->state, memory_order_relaxed);
    for (;;) {
        if ((uint32_t)(s >> 32) != g || (s & ST_CLOSED))
            return 0;
        /* acquire: pairs with the release store opening the job, so fn/ctx are visible */
        if (atomic_compare_exchange_weak_explicit(&p->state, &s, s + 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return 1;
    }
}

static void *worker_main(void *arg)
{
    rl_worker *w = arg;
    rl_pool *p = w->pool;
    uint32_t seen = 0;
    for (;;) {
        uint32_t g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
            if (++spins < RL_POOL_SPIN) {
                cpu_relax();
                continue;
            }
            if (spins < RL_POOL_SPIN + RL_POOL_YIELD) {
                sched_yield();
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
        if (!try_join(p, g))
            continue; /* the job was already over: nothing to do */
        p->fn(p->ctx, w->ith, p->n);
        /* release: our results are visible to the runner once it sees the count drop */
        atomic_fetch_sub_explicit(&p->state, 1, memory_order_release);
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
    uint32_t g = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1;
    /* release: fn/ctx are visible to any worker that joins job g */
    atomic_store_explicit(&p->state, (uint64_t)g << 32, memory_order_release);
    /* seq_cst: orders the new generation before the sleeper check (see worker_main) */
    atomic_store_explicit(&p->gen, g, memory_order_seq_cst);
    if (atomic_load_explicit(&p->sleepers, memory_order_seq_cst) > 0)
        futex_wake_all(&p->gen);
    fn(ctx, 0, p->n);
    /* Close the job, then wait for the workers that joined. acquire: their results are visible. */
    uint64_t s = atomic_fetch_or_explicit(&p->state, ST_CLOSED, memory_order_acq_rel) | ST_CLOSED;
    for (int spins = 0; (s & ST_ACTIVE) != 0; spins++) {
        if (spins < RL_POOL_SPIN)
            cpu_relax();
        else
            sched_yield(); /* a worker may be waiting for this core */
        s = atomic_load_explicit(&p->state, memory_order_acquire);
    }
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
