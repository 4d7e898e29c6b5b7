/* rl_bells.c - client wake-ups off the step thread (rl_bells.h). */
#include "rl_bells.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Up to this many clients are rung inline by the caller: a hand-over costs a
 * condition-variable signal (a wake-up like a bell) plus the other thread's
 * latency before the first bell. */
#define RL_BELLS_INLINE_MAX 4u

struct rl_bells {
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rl_conn **q; /* pending, one reference each */
    uint32_t n, cap;
    bool quit;
    atomic_ullong rung, posts;
};

static void kick_all(rl_conn *const *c, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        rl_conn_kick(c[i]);
        rl_conn_unref(c[i]);
    }
}

static void *bells_main(void *arg)
{
    rl_bells *b = arg;
    pthread_setname_np(pthread_self(), "rl-bells");
    rl_conn **mine = NULL;
    uint32_t cap_mine = 0;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->n && !b->quit)
            pthread_cond_wait(&b->cv, &b->mu);
        if (!b->n && b->quit)
            break;
        /* take the queue: swap buffers so the poster never waits on the bells */
        rl_conn **q = b->q;
        uint32_t n = b->n, cap = b->cap;
        b->q = mine;
        b->cap = cap_mine;
        b->n = 0;
        mine = q;
        cap_mine = cap;
        pthread_mutex_unlock(&b->mu);
        kick_all(mine, n);
        atomic_fetch_add_explicit(&b->rung, n, memory_order_relaxed);
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    free(mine);
    return NULL;
}

rl_bells *rl_bells_new(void)
{
    const char *e = getenv("RINGLM_BELL_THREAD");
    if (e && strcmp(e, "0") == 0)
        return NULL;
    rl_bells *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    if (pthread_create(&b->thr, NULL, bells_main, b) != 0) {
        pthread_mutex_destroy(&b->mu);
        pthread_cond_destroy(&b->cv);
        free(b);
        return NULL;
    }
    return b;
}

/* Hands conns[0..n) to the thread; false (nothing taken) if the queue
 * cannot grow. */
static bool hand_over(rl_bells *b, rl_conn *const *conns, uint32_t n)
{
    pthread_mutex_lock(&b->mu);
    if (b->n + n > b->cap) {
        uint32_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n)
            cap *= 2;
        rl_conn **p = realloc(b->q, cap * sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&b->mu);
            return false;
        }
        b->q = p;
        b->cap = cap;
    }
    memcpy(b->q + b->n, conns, n * sizeof *conns);
    b->n += n;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    atomic_fetch_add_explicit(&b->posts, 1, memory_order_relaxed);
    return true;
}

void rl_bells_ring(rl_bells *b, rl_conn *const *conns, uint32_t n)
{
    if (b && n > RL_BELLS_INLINE_MAX && hand_over(b, conns, n))
        return;
    kick_all(conns, n); /* inline (not counted as the thread's) */
}

void rl_bells_free(rl_bells *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    b->quit = true;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->thr, NULL); /* it rings what is pending before it leaves */
    free(b->q);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->cv);
    free(b);
}

void rl_bells_counts(const rl_bells *b, uint64_t *rung, uint64_t *posts)
{
    *rung = b ? atomic_load_explicit(&b->rung, memory_order_relaxed) : 0;
    *posts = b ? atomic_load_explicit(&b->posts, memory_order_relaxed) : 0;
}
