/* rl_ring.h - SPSC ring operations on rl_wire rings, shared by client and daemon,
 * and the eventfd doorbells (rl_bell_*).
 *
 * Each side keeps its own counter (the producer its tail, the consumer its head)
 * in private memory and never reads it back from shared memory: the peer may
 * scribble over the region. The peer's counter is read once per call and
 * checked: a distance larger than the ring means the peer corrupted it
 * (RL_RING_CORRUPT).
 */
#ifndef RL_RING_H
#define RL_RING_H

#include "rl_wire.h"

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#define RL_RING_CORRUPT (-1)

#if defined(__SANITIZE_THREAD__)
#define RL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RL_TSAN 1
#endif
#endif

/* Full (store-load) fence for the need-wakeup handshakes (Dekker). ThreadSanitizer
 * does not model fences (gcc rejects them): there a seq_cst read-modify-write on
 * a dummy gives the same full barrier on the hardware. */
static inline void rl_fence_sc(void)
{
#ifdef RL_TSAN
    static _Atomic uint32_t dummy;
    atomic_fetch_add_explicit(&dummy, 0, memory_order_seq_cst);
#else
    atomic_thread_fence(memory_order_seq_cst);
#endif
}

/* Busy-wait hint for spinning loops. */
static inline void rl_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* One round of an adaptive spin; *iter counts rounds since the spin began.
 * The first rounds only pause (sub-microsecond hand-off when the peer runs on
 * another core); later rounds also yield the CPU, so that a peer waiting for
 * this very core (a loaded 2-core host) runs at once instead of after our
 * whole window. */
static inline void rl_spin_round(unsigned *iter)
{
    if (++*iter < 32)
        rl_cpu_relax();
    else
        sched_yield();
}

typedef struct rl_ring {
    rl_wire_ring_ctl *ctl;
    char *entries;
    uint32_t n;     /* entries (power of two), private copy */
    uint32_t esize; /* bytes per entry */
    uint32_t local; /* producer: our tail; consumer: our head */
} rl_ring;

static inline void rl_ring_init(rl_ring *r, void *base, uint32_t off, uint32_t n, uint32_t esize,
                                uint32_t start)
{
    r->ctl = rl_wire_ctl(base, off);
    r->entries = (char *)rl_wire_entries(base, off);
    r->n = n;
    r->esize = esize;
    r->local = start;
}

/* ---- producer side ---- */

/* Free slots, or RL_RING_CORRUPT. */
static inline int64_t rl_ring_space(rl_ring *r)
{
    /* acquire: pairs with the consumer's release store of head, so its reads of
     * the slots it gave back happened before we overwrite them. */
    uint32_t head = atomic_load_explicit(&r->ctl->head, memory_order_acquire);
    uint32_t used = r->local - head;
    if (used > r->n)
        return RL_RING_CORRUPT;
    return (int64_t)(r->n - used);
}

/* The i-th free slot after our tail (check rl_ring_space first). */
static inline void *rl_ring_prod_slot(rl_ring *r, uint32_t i)
{
    return r->entries + (size_t)((r->local + i) & (r->n - 1)) * r->esize;
}

static inline void rl_ring_publish(rl_ring *r, uint32_t count)
{
    r->local += count;
    /* release: the entry contents (and any payload they point to) are visible
     * before the consumer can observe the new tail. */
    atomic_store_explicit(&r->ctl->tail, r->local, memory_order_release);
}

/* After publishing: does the consumer sleep? Then clear its flag and return 1
 * (the caller rings the doorbell). */
static inline int rl_ring_needs_bell(rl_ring *r)
{
    /* seq_cst fence: orders our tail store before the need_wakeup load; pairs
     * with the consumer's fence between its flag store and its tail load
     * (Dekker): either we see the flag or it sees our entry. */
    rl_fence_sc();
    if (!atomic_load_explicit(&r->ctl->need_wakeup, memory_order_relaxed))
        return 0;
    /* relaxed: only one producer rings per sleep; the eventfd write is the
     * synchronizing event for the sleeper. */
    return atomic_exchange_explicit(&r->ctl->need_wakeup, 0, memory_order_relaxed) != 0;
}

/* ---- consumer side ---- */

/* Entries ready, or RL_RING_CORRUPT. */
static inline int64_t rl_ring_avail(rl_ring *r)
{
    /* acquire: pairs with the producer's release store of tail; the entries up
     * to tail are fully written when we read them. */
    uint32_t tail = atomic_load_explicit(&r->ctl->tail, memory_order_acquire);
    uint32_t ready = tail - r->local;
    if (ready > r->n)
        return RL_RING_CORRUPT;
    return (int64_t)ready;
}

static inline const void *rl_ring_cons_slot(rl_ring *r, uint32_t i)
{
    return r->entries + (size_t)((r->local + i) & (r->n - 1)) * r->esize;
}

static inline void rl_ring_consume(rl_ring *r, uint32_t count)
{
    r->local += count;
    /* release: our reads of the consumed entries complete before the producer
     * may see the slots as free and overwrite them. */
    atomic_store_explicit(&r->ctl->head, r->local, memory_order_release);
}

/* Before sleeping: announce it, then re-check. Returns entries ready (do not
 * sleep when > 0), or RL_RING_CORRUPT. */
static inline int64_t rl_ring_arm(rl_ring *r)
{
    atomic_store_explicit(&r->ctl->need_wakeup, 1, memory_order_relaxed);
    /* seq_cst fence: the flag store is ordered before the tail re-check; pairs
     * with the producer's fence in rl_ring_needs_bell. */
    rl_fence_sc();
    return rl_ring_avail(r);
}

/* Awake again: producers need not ring. */
static inline void rl_ring_disarm(rl_ring *r)
{
    atomic_store_explicit(&r->ctl->need_wakeup, 0, memory_order_relaxed);
}

/* ---- doorbells (eventfd) ---- */

static inline int rl_bell_ring(int fd)
{
    uint64_t one = 1;
    for (;;) {
        ssize_t n = write(fd, &one, sizeof one);
        if (n == (ssize_t)sizeof one)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        /* EAGAIN: counter saturated, the peer will wake anyway. */
        return n < 0 && errno != EAGAIN ? -errno : 0;
    }
}

/* Reset a non-blocking eventfd; returns 1 if it was signalled. */
static inline int rl_bell_drain(int fd)
{
    uint64_t v;
    return read(fd, &v, sizeof v) == (ssize_t)sizeof v;
}

#endif
