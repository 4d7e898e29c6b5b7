/* rl_conn.c - per-client region (memfd, sealed), doorbells, completion posting. */
#include "rl_conn.h"
#include "rl_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void conn_free(rl_conn *c)
{
    if (c->base)
        munmap(c->base, c->size);
    close_fd(&c->memfd);
    close_fd(&c->sq_bell);
    close_fd(&c->cq_bell);
    for (int i = 0; i < 3; i++)
        close_fd(&c->client_fds[i]);
    close_fd(&c->sock);
    pthread_mutex_destroy(&c->out_lock);
    free(c);
}

int rl_conn_create(int sock, uint64_t id, rl_conn **out, char *err, size_t errlen)
{
    rl_conn *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    c->id = id;
    c->sock = sock;
    c->memfd = c->sq_bell = c->cq_bell = -1;
    c->client_fds[0] = c->client_fds[1] = c->client_fds[2] = -1;
    atomic_init(&c->refs, 1);
    pthread_mutex_init(&c->out_lock, NULL);

    struct ucred cred;
    socklen_t cl = sizeof cred;
    if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) {
        c->pid = cred.pid;
        c->uid = cred.uid;
    } else {
        c->pid = -1;
        c->uid = (uid_t)-1;
    }

    rl_wire_header lay = {0};
    uint32_t size = rl_wire_layout(&lay, RL_WIRE_SQ_ENTRIES, RL_WIRE_CQ_ENTRIES, RL_WIRE_REQ_SIZE,
                                   RL_WIRE_RES_SIZE);
    int rc;
    const char *what = "memfd_create";
    c->memfd = memfd_create("ringlm-client", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (c->memfd < 0)
        goto fail;
    what = "ftruncate";
    if (ftruncate(c->memfd, size) < 0)
        goto fail;
    what = "seal";
    if (fcntl(c->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
        goto fail;
    what = "mmap";
    c->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, c->memfd, 0);
    if (c->base == MAP_FAILED) {
        c->base = NULL;
        goto fail;
    }
    c->size = size;
    what = "eventfd";
    c->sq_bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    c->cq_bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->sq_bell < 0 || c->cq_bell < 0)
        goto fail;
    /* The client gets its own descriptions of the same objects. */
    c->client_fds[0] = c->memfd;
    c->memfd = -1;
    c->client_fds[1] = fcntl(c->sq_bell, F_DUPFD_CLOEXEC, 0);
    c->client_fds[2] = fcntl(c->cq_bell, F_DUPFD_CLOEXEC, 0);
    if (c->client_fds[1] < 0 || c->client_fds[2] < 0)
        goto fail;

    c->hdr = c->base;
    *c->hdr = lay;
    c->req_off = lay.req_off;
    c->req_size = lay.req_size;
    c->res_off = lay.res_off;
    /* the circular allocator keeps off the zero-copy cells at the arena's end */
    c->res_size = lay.res_size - RL_CONN_CELLS_BYTES;
    c->cell_off = c->res_size;
    rl_ring_init(&c->sq, c->base, lay.sq_off, lay.sq_entries, sizeof(rl_wire_sqe), 0);
    rl_ring_init(&c->cq, c->base, lay.cq_off, lay.cq_entries, sizeof(rl_wire_cqe), 0);
    /* The client starts asleep as far as the daemon knows: ring until it spins. */
    atomic_store_explicit(&c->cq.ctl->need_wakeup, 1, memory_order_relaxed);
    *out = c;
    return 0;
fail:
    rc = -errno;
    snprintf(err, errlen, "%s: %s", what, strerror(errno));
    c->sock = -1; /* the caller keeps the socket on failure */
    conn_free(c);
    return rc;
}

void rl_conn_ref(rl_conn *c)
{
    /* relaxed: taking a reference needs no ordering, the caller already holds one. */
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

void rl_conn_unref(rl_conn *c)
{
    /* acq_rel: all uses by this thread happen before the free on whichever thread
     * drops the last reference. */
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        conn_free(c);
}

const uint8_t *rl_conn_req_bytes(rl_conn *c, uint32_t off, uint32_t len)
{
    if (off > c->req_size || len > c->req_size - off)
        return NULL;
    return (const uint8_t *)c->base + c->req_off + off;
}

/* Room for one payload of len bytes? On success off and end describe it. */
static int res_alloc(rl_conn *c, size_t len, uint32_t *off, uint64_t *end)
{
    if (len == 0) {
        *off = 0;
        *end = c->res_head;
        return 0;
    }
    size_t len8 = (len + 7) & ~(size_t)7;
    if (len8 > c->res_size)
        return -E2BIG;
    /* acquire: pairs with the client's release store; its reads of the released
     * payloads are done before we overwrite them. Read once, then checked. */
    uint64_t rel = atomic_load_explicit(&c->hdr->res_released, memory_order_acquire);
    if (rel < c->res_released || rel > c->res_head)
        return -EPIPE;
    c->res_released = rel;
    uint64_t pos = c->res_head;
    uint32_t o = (uint32_t)(pos % c->res_size);
    if (o + len8 > c->res_size) {
        pos += c->res_size - o; /* never wrap a payload: skip to the start */
        o = 0;
    }
    if (pos + len8 - rel > c->res_size)
        return -EAGAIN;
    *off = o;
    c->res_head = pos + len8;
    *end = c->res_head;
    return 0;
}

/* A payload in pieces, laid end to end. */
typedef struct seg {
    const void *p;
    size_t n;
} seg;
enum { N_SEG = 3 };

static int post_locked(rl_conn *c, const rl_wire_cqe *tmpl, const seg *s)
{
    int64_t space = rl_ring_space(&c->cq);
    if (space == RL_RING_CORRUPT)
        return -EPIPE;
    if (space == 0)
        return -EAGAIN;
    uint32_t off;
    uint64_t end;
    size_t len = 0;
    for (int i = 0; i < N_SEG; i++)
        len += s[i].n;
    int rc = res_alloc(c, len, &off, &end);
    if (rc < 0)
        return rc;
    char *dst = (char *)c->base + c->res_off + off;
    for (int i = 0; i < N_SEG; i++)
        if (s[i].n) {
            memcpy(dst, s[i].p, s[i].n);
            dst += s[i].n;
        }
    rl_wire_cqe *e = rl_ring_prod_slot(&c->cq, 0);
    *e = *tmpl;
    e->off = off;
    e->len = (uint32_t)len;
    e->res_end = end;
    rl_ring_publish(&c->cq, 1); /* release: payload and entry before tail */
    c->cq_dirty = true;
    return 0;
}

static int post(rl_conn *c, const rl_wire_cqe *t, const seg *s);

int rl_conn_post(rl_conn *c, uint32_t req_id, uint16_t type, int32_t status, uint32_t n_tokens,
                 const void *a, size_t alen, const void *b, size_t blen)
{
    rl_wire_cqe t = {.req_id = req_id, .type = type, .status = status, .n_tokens = n_tokens};
    seg s[N_SEG] = {{a, alen}, {b, blen}, {NULL, 0}};
    return post(c, &t, s);
}

int rl_conn_post_tokens(rl_conn *c, uint32_t req_id, uint16_t flags, uint32_t n_tokens, const int32_t *ids,
                        const void *lp, size_t lp_len, const char *text, size_t text_len)
{
    rl_wire_cqe t = {.req_id = req_id, .type = RL_WIRE_EV_TOKENS, .flags = flags, .n_tokens = n_tokens};
    seg s[N_SEG] = {{ids, (size_t)n_tokens * sizeof(int32_t)}, {lp, lp_len}, {text, text_len}};
    return post(c, &t, s);
}

static int post(rl_conn *c, const rl_wire_cqe *t, const seg *s)
{
    /* relaxed: only a hint; a late post to a client being dropped is harmless
     * (the region stays mapped until the last reference goes). */
    if (atomic_load_explicit(&c->dead, memory_order_relaxed) ||
        atomic_load_explicit(&c->corrupt, memory_order_relaxed))
        return -EPIPE;
    pthread_mutex_lock(&c->out_lock);
    int rc = post_locked(c, t, s);
    if (rc == -EAGAIN) {
        /* First the daemon-side note (the loop kicks the worker when the doorbell
         * rings), so that it is visible before the client can see the request. */
        atomic_store(&c->want_space, true);
        /* Ask the client to ring when it makes room, then look again: it may
         * have made room before it could see the flag. release: want_space is
         * visible to whoever acts on this flag. */
        atomic_store_explicit(&c->hdr->space_wanted, 1, memory_order_release);
        /* seq_cst fence: flag store before the re-check; pairs with the client's
         * fence between its head/res_released store and its flag load. */
        rl_fence_sc();
        rc = post_locked(c, t, s);
    }
    pthread_mutex_unlock(&c->out_lock);
    if (rc == -EPIPE) {
        if (!atomic_exchange(&c->corrupt, true))
            rl_log(LOG_WARNING, "client %llu (pid %d): corrupt completion ring or release mark",
                   (unsigned long long)c->id, (int)c->pid);
    }
    return rc;
}

void rl_conn_kick(rl_conn *c)
{
    pthread_mutex_lock(&c->out_lock);
    bool ring = c->cq_dirty && rl_ring_needs_bell(&c->cq);
    c->cq_dirty = false;
    pthread_mutex_unlock(&c->out_lock);
    if (ring)
        rl_bell_ring(c->cq_bell);
}

/* ---- zero-copy token cells ---- */
_Static_assert(RL_WIRE_RES_SIZE > 4 * RL_CONN_CELLS_BYTES, "cells leave most of the arena circular");
_Static_assert(RL_CONN_CELL_BYTES % 8 == 0, "cells keep payloads 8-aligned");

/* Under out_lock: the client's release mark, validated (0 and false: corrupt). */
static bool released_mark(rl_conn *c, uint64_t *rel)
{
    /* acquire: pairs with the client's release store; its reads of released
     * payloads (cells included) are done before we reuse them. Read once. */
    uint64_t r = atomic_load_explicit(&c->hdr->res_released, memory_order_acquire);
    if (r < c->res_released || r > c->res_head)
        return false;
    c->res_released = r;
    *rel = r;
    return true;
}

void rl_conn_cells_range(const rl_conn *c, void **base, size_t *len)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t lo = (size_t)c->res_off + c->cell_off, hi = lo + RL_CONN_CELLS_BYTES;
    lo -= lo % page; /* the region itself starts on a page */
    *base = (char *)c->base + lo;
    *len = hi - lo;
}

int32_t *rl_conn_cell_take(rl_conn *c, uint32_t *cell)
{
    /* relaxed: a hint, as in rl_conn_post */
    if (atomic_load_explicit(&c->dead, memory_order_relaxed) ||
        atomic_load_explicit(&c->corrupt, memory_order_relaxed))
        return NULL;
    int32_t *id = NULL;
    uint64_t rel;
    pthread_mutex_lock(&c->out_lock);
    if (released_mark(c, &rel)) {
        for (uint32_t k = 0; k < RL_CONN_CELLS; k++) {
            uint32_t i = (c->cell_hint + k) % RL_CONN_CELLS;
            uint64_t t = c->cell_ticket[i];
            /* free: never published, or its ticket is behind the release mark
             * (the client released that event) */
            if (t != RL_CONN_CELL_TAKEN && t <= rel) {
                c->cell_ticket[i] = RL_CONN_CELL_TAKEN;
                c->cell_hint = (i + 1) % RL_CONN_CELLS;
                *cell = i;
                id = (int32_t *)((char *)c->base + c->res_off + c->cell_off +
                                 (size_t)i * RL_CONN_CELL_BYTES);
                break;
            }
        }
    }
    pthread_mutex_unlock(&c->out_lock);
    return id;
}

void rl_conn_cell_put(rl_conn *c, uint32_t cell)
{
    pthread_mutex_lock(&c->out_lock);
    c->cell_ticket[cell % RL_CONN_CELLS] = 0;
    pthread_mutex_unlock(&c->out_lock);
}

int rl_conn_cell_post(rl_conn *c, uint32_t cell, uint32_t req_id, const char *text,
                      size_t text_len)
{
    cell %= RL_CONN_CELLS;
    if (text_len > RL_CONN_CELL_BYTES - sizeof(int32_t) ||
        atomic_load_explicit(&c->dead, memory_order_relaxed) ||
        atomic_load_explicit(&c->corrupt, memory_order_relaxed)) {
        rl_conn_cell_put(c, cell);
        return text_len > RL_CONN_CELL_BYTES - sizeof(int32_t) ? -EAGAIN : -EPIPE;
    }
    pthread_mutex_lock(&c->out_lock);
    int rc = 0;
    int64_t space = rl_ring_space(&c->cq);
    uint32_t toff;
    uint64_t tend;
    if (space == RL_RING_CORRUPT)
        rc = -EPIPE;
    else if (space == 0)
        rc = -EAGAIN;
    else
        rc = res_alloc(c, 8, &toff, &tend); /* the ticket: orders the release */
    if (rc < 0) {
        c->cell_ticket[cell] = 0;
        pthread_mutex_unlock(&c->out_lock);
        if (rc == -EPIPE && !atomic_exchange(&c->corrupt, true))
            rl_log(LOG_WARNING, "client %llu (pid %d): corrupt completion ring or release mark",
                   (unsigned long long)c->id, (int)c->pid);
        return rc == -E2BIG ? -EAGAIN : rc;
    }
    /* The id word was written by the engine during the step (a plain store, or
     * the GPU through its mapping: complete and visible to the host once the
     * stream synchronized, before step() returned); the daemon never writes it. */
    uint32_t off = c->cell_off + cell * RL_CONN_CELL_BYTES;
    char *p = (char *)c->base + c->res_off + off;
    if (text_len)
        memcpy(p + sizeof(int32_t), text, text_len);
    rl_wire_cqe *e = rl_ring_prod_slot(&c->cq, 0);
    *e = (rl_wire_cqe){.req_id = req_id, .type = RL_WIRE_EV_TOKENS, .n_tokens = 1, .off = off,
                       .len = (uint32_t)(sizeof(int32_t) + text_len), .res_end = tend};
    rl_ring_publish(&c->cq, 1); /* release: id, text and entry before tail */
    c->cq_dirty = true;
    c->cell_ticket[cell] = tend; /* reusable once the client released this event */
    pthread_mutex_unlock(&c->out_lock);
    return 0;
}
