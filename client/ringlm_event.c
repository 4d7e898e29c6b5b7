/* ringlm_event.c - read completions: drain the CQ, wait (spin then sleep),
 * deliver events as pointers into the result arena, release them. */
#include "ringlm_impl.h"

#include <errno.h>
#include <stddef.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

_Static_assert(sizeof(ringlm_logprob) == sizeof(rl_wire_logprob) &&
                   offsetof(ringlm_logprob, logprob) == offsetof(rl_wire_logprob, logprob),
               "log-probabilities are read where the daemon wrote them");


static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int lost(ringlm_conn *c, int err, const char *why)
{
    if (!c->dead)
        c->dead = err;
    return ringlm_fail(c->dead, "%s", why);
}

/* After making room (CQ entries consumed, payloads released): ring the daemon
 * if it waits for room. */
static void room_made(ringlm_conn *c)
{
    /* seq_cst fence: our head / res_released stores before the flag load; pairs
     * with the daemon's fence between setting space_wanted and re-checking. */
    rl_fence_sc();
    /* acquire: pairs with the daemon's release store of the flag. */
    if (atomic_load_explicit(&c->hdr->space_wanted, memory_order_acquire) &&
        atomic_exchange_explicit(&c->hdr->space_wanted, 0, memory_order_acq_rel))
        rl_bell_ring(c->sq_bell);
}

static int grow(void **p, size_t *cap, size_t need, size_t esize)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 64;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, nc * esize);
    if (!q)
        return -ENOMEM;
    *p = q;
    *cap = nc;
    return 0;
}

static int rel_push(ringlm_conn *c, uint64_t end, bool released)
{
    if (c->rel_n == c->rel_cap) {
        size_t nc = c->rel_cap ? c->rel_cap * 2 : 256;
        ringlm_rel *q = malloc(nc * sizeof *q);
        if (!q)
            return -ENOMEM;
        for (size_t i = 0; i < c->rel_n; i++)
            q[i] = c->rel[(c->rel_head + i) % c->rel_cap];
        free(c->rel);
        c->rel = q;
        c->rel_cap = nc;
        c->rel_head = 0;
    }
    c->rel[(c->rel_head + c->rel_n) % c->rel_cap] = (ringlm_rel){end, released};
    c->rel_n++;
    c->rel_next++;
    return 0;
}

/* Advance the release mark over the released prefix and publish it. */
static void rel_advance(ringlm_conn *c)
{
    uint64_t mark = c->released_mark;
    while (c->rel_n && c->rel[c->rel_head].released) {
        mark = c->rel[c->rel_head].end;
        c->rel_head = (c->rel_head + 1) % c->rel_cap;
        c->rel_n--;
        c->rel_base++;
    }
    if (mark != c->released_mark) {
        c->released_mark = mark;
        /* release: our reads of the released payloads happen before the daemon
         * can see the mark and overwrite them. */
        atomic_store_explicit(&c->hdr->res_released, mark, memory_order_release);
        room_made(c);
    }
}

int ringlm_drain(ringlm_conn *c)
{
    int64_t n = rl_ring_avail(&c->cq);
    if (n == RL_RING_CORRUPT)
        return lost(c, -EPROTO, "completion ring corrupt");
    if (n == 0)
        return 0;
    if (c->evq_head && c->evq_head + c->evq_n + (size_t)n > c->evq_cap) { /* compact */
        memmove(c->evq, c->evq + c->evq_head, c->evq_n * sizeof *c->evq);
        memmove(c->evq_seq, c->evq_seq + c->evq_head, c->evq_n * sizeof *c->evq_seq);
        c->evq_head = 0;
    }
    size_t cap = c->evq_cap;
    if (grow((void **)&c->evq, &c->evq_cap, c->evq_head + c->evq_n + (size_t)n, sizeof *c->evq) < 0)
        return ringlm_fail(-ENOMEM, "out of memory");
    if (c->evq_cap != cap || !c->evq_seq) { /* evq_seq follows evq's capacity */
        uint64_t *s = realloc(c->evq_seq, c->evq_cap * sizeof *s);
        if (!s)
            return ringlm_fail(-ENOMEM, "out of memory");
        c->evq_seq = s;
    }
    for (uint32_t i = 0; i < (uint32_t)n; i++) {
        rl_wire_cqe e;
        memcpy(&e, rl_ring_cons_slot(&c->cq, i), sizeof e);
        if (e.len && ((uint64_t)e.off + e.len > c->res_size || e.off % 8))
            return lost(c, -EPROTO, "completion points outside the result arena");
        if (rel_push(c, e.res_end, false) < 0)
            return ringlm_fail(-ENOMEM, "out of memory");
        c->evq[c->evq_head + c->evq_n] = e;
        c->evq_seq[c->evq_head + c->evq_n] = c->rel_next - 1;
        c->evq_n++;
    }
    rl_ring_consume(&c->cq, (uint32_t)n); /* release: entries copied out */
    room_made(c);
    return (int)n;
}

/* Is the daemon still there? Called when the socket polled readable/hung up. */
int ringlm_check_peer(ringlm_conn *c)
{
    char b;
    ssize_t r = recv(c->sock, &b, 1, MSG_DONTWAIT | MSG_PEEK);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
        return lost(c, -ECONNRESET, "the daemon closed the connection");
    return 0;
}

int ringlm_wait(ringlm_conn *c, int timeout_ms)
{
    uint64_t t0 = now_ns();
    uint64_t spin_end = t0 + (uint64_t)c->spin_us * 1000;
    int64_t n;
    if (c->spin_us > 0)
        rl_ring_disarm(&c->cq); /* awake: the daemon need not ring while we spin */
    /* Spin: no system call while the daemon answers within the window. */
    unsigned iter = 0;
    while ((n = rl_ring_avail(&c->cq)) == 0 && c->spin_us > 0 && now_ns() < spin_end)
        rl_spin_round(&iter);
    for (;;) {
        if (n != 0)
            return n < 0 ? lost(c, -EPROTO, "completion ring corrupt") : 0;
        if (c->dead)
            return ringlm_fail(c->dead, "connection lost");
        n = rl_ring_arm(&c->cq); /* announce sleep, re-check */
        if (n != 0)
            continue;
        int left = -1;
        if (timeout_ms >= 0) {
            uint64_t el = (now_ns() - t0) / 1000000;
            if (el >= (uint64_t)timeout_ms)
                return ringlm_fail(-ETIMEDOUT, "timed out waiting for the daemon");
            left = timeout_ms - (int)el;
        }
        /* The doorbell is edge-triggered in epfd: no read() to reset it. */
        struct epoll_event evs[2];
        int pr = epoll_wait(c->epfd, evs, 2, left);
        if (pr < 0 && errno != EINTR)
            return ringlm_fail(-errno, "epoll_wait: %s", strerror(errno));
        bool hup = false;
        for (int k = 0; k < pr; k++)
            hup |= evs[k].data.u32 == 2;
        rl_ring_disarm(&c->cq);
        n = rl_ring_avail(&c->cq);
        if (n == 0 && hup) {
            int rc = ringlm_check_peer(c);
            if (rc < 0)
                return rc;
        }
    }
}

/* Find the first queued completion for req (0: any) that the caller wants. */
static long find(ringlm_conn *c, ringlm_req req, uint16_t type)
{
    for (size_t i = c->evq_head; i < c->evq_head + c->evq_n; i++) {
        const rl_wire_cqe *e = &c->evq[i];
        if ((req == 0 || e->req_id == req) && (type == 0 || e->type == type))
            return (long)i;
    }
    return -1;
}

static void take(ringlm_conn *c, size_t i, rl_wire_cqe *e, uint64_t *seq)
{
    *e = c->evq[i];
    *seq = c->evq_seq[i];
    size_t end = c->evq_head + c->evq_n;
    if (i == c->evq_head) {
        c->evq_head++; /* the common case: in order */
    } else {
        memmove(c->evq + i, c->evq + i + 1, (end - i - 1) * sizeof *c->evq);
        memmove(c->evq_seq + i, c->evq_seq + i + 1, (end - i - 1) * sizeof *c->evq_seq);
    }
    if (--c->evq_n == 0)
        c->evq_head = 0;
}

static void release_seq(ringlm_conn *c, uint64_t seq)
{
    if (seq < c->rel_base || seq - c->rel_base >= c->rel_n)
        return; /* already released, or not ours */
    c->rel[(c->rel_head + (seq - c->rel_base)) % c->rel_cap].released = true;
    rel_advance(c);
}

/* Wait for a completion matching (req, type). Control answers only. */
static int next_raw(ringlm_conn *c, ringlm_req req, uint16_t type, rl_wire_cqe *e, uint64_t *seq,
                    int timeout_ms)
{
    uint64_t t0 = now_ns();
    for (;;) {
        int rc = ringlm_drain(c);
        if (rc < 0)
            return rc;
        long i = find(c, req, type);
        if (i >= 0) {
            take(c, (size_t)i, e, seq);
            return 0;
        }
        if (c->dead)
            return ringlm_fail(c->dead, "connection lost");
        int left = timeout_ms;
        if (timeout_ms > 0) {
            uint64_t el = (now_ns() - t0) / 1000000;
            if (el >= (uint64_t)timeout_ms)
                return ringlm_fail(-ETIMEDOUT, "timed out waiting for the daemon");
            left = timeout_ms - (int)el;
        }
        if (timeout_ms == 0) {
            /* Re-arm the doorbell for ringlm_fd users, then look once more. */
            int64_t n = rl_ring_arm(&c->cq);
            if (n == 0) {
                struct epoll_event evs[2]; /* consume the edge so ringlm_fd reads idle */
                int k = epoll_wait(c->epfd, evs, 2, 0);
                for (int j = 0; j < k; j++)
                    if (evs[j].data.u32 == 2 && ringlm_check_peer(c) < 0)
                        return c->dead;
                if (rl_ring_avail(&c->cq) == 0)
                    return -EAGAIN; /* stays armed: ringlm_fd turns readable */
            }
            rl_ring_disarm(&c->cq);
            continue;
        }
        rc = ringlm_wait(c, left);
        if (rc < 0)
            return rc;
    }
}

int ringlm_next(ringlm_conn *c, ringlm_req req, ringlm_event *ev, int timeout_ms)
{
    rl_wire_cqe e;
    uint64_t seq;
    for (;;) {
        int rc = next_raw(c, req, 0, &e, &seq, timeout_ms);
        if (rc < 0)
            return rc;
        if (e.type == RL_WIRE_EV_TOKENS || e.type == RL_WIRE_EV_DONE || e.type == RL_WIRE_EV_ERROR)
            break;
        release_seq(c, seq); /* a stray control answer */
    }
    memset(ev, 0, sizeof *ev);
    ev->req = e.req_id;
    ev->type = e.type;
    ev->status = e.status;
    ev->priv_ = seq;
    const char *p = (const char *)c->base + c->res_off + e.off;
    if (e.type == RL_WIRE_EV_TOKENS) {
        size_t ids = (size_t)e.n_tokens * sizeof(int32_t), n_lp = e.flags & RL_WIRE_CQE_LOGPROBS_N;
        if (e.flags & RL_WIRE_CQE_LOGPROBS)
            ids += (size_t)e.n_tokens * (1 + n_lp) * sizeof(rl_wire_logprob);
        if (ids > e.len)
            return lost(c, -EPROTO, "malformed token completion");
        ev->tokens = (const int32_t *)p;
        ev->n_tokens = e.n_tokens;
        if (e.flags & RL_WIRE_CQE_LOGPROBS) {
            ev->logprobs = (const ringlm_logprob *)(p + (size_t)e.n_tokens * sizeof(int32_t));
            ev->n_top_logprobs = n_lp;
        }
        ev->text = p + ids;
        ev->text_len = e.len - ids;
    } else if (e.type == RL_WIRE_EV_ERROR) {
        ev->text = p;
        ev->text_len = e.len;
    } else {
        rl_wire_done d = {0};
        memcpy(&d, p, e.len < sizeof d ? e.len : sizeof d);
        ev->finish = (int)d.finish;
        ev->timings = (ringlm_timings){
            .prompt_tokens = d.n_prompt,
            .gen_tokens = d.n_gen,
            .prompt_tps = d.prompt_tps,
            .gen_tps = d.gen_tps,
            .ttft_ms = (double)d.ttft_ns / 1e6,
            .total_ms = (double)d.total_ns / 1e6,
        };
    }
    return 0;
}

void ringlm_release(ringlm_conn *c, ringlm_event *ev)
{
    if (!ev || !ev->type)
        return;
    release_seq(c, ev->priv_);
    ev->type = 0;
}

int ringlm_ping(ringlm_conn *c, int timeout_ms)
{
    ringlm_req id;
    int rc = ringlm_submit_ctl(c, RL_WIRE_OP_NOP, 0, &id);
    if (rc < 0)
        return rc;
    rl_wire_cqe e;
    uint64_t seq;
    rc = next_raw(c, id, RL_WIRE_EV_PONG, &e, &seq, timeout_ms < 0 ? -1 : timeout_ms ? timeout_ms : 1);
    if (rc == 0)
        release_seq(c, seq);
    return rc;
}

int ringlm_info(ringlm_conn *c, ringlm_daemon_info *out, int timeout_ms)
{
    ringlm_req id;
    int rc = ringlm_submit_ctl(c, RL_WIRE_OP_INFO, 0, &id);
    if (rc < 0)
        return rc;
    rl_wire_cqe e;
    uint64_t seq;
    rc = next_raw(c, id, 0, &e, &seq, timeout_ms < 0 ? -1 : timeout_ms ? timeout_ms : 1);
    if (rc < 0)
        return rc;
    if (e.type != RL_WIRE_EV_INFO) {
        release_seq(c, seq);
        return ringlm_fail(e.status < 0 ? e.status : -EPROTO, "info request failed");
    }
    rl_wire_info in = {0};
    memcpy(&in, (const char *)c->base + c->res_off + e.off, e.len < sizeof in ? e.len : sizeof in);
    release_seq(c, seq);
    memset(out, 0, sizeof *out);
#define CPYS(f) memcpy(out->f, in.f, sizeof out->f), out->f[sizeof out->f - 1] = 0
    CPYS(daemon_version);
    CPYS(name);
    CPYS(arch);
    CPYS(backend);
    CPYS(type);
#undef CPYS
    out->protocol = in.protocol;
    out->n_clients = in.n_clients;
    out->n_vocab = in.n_vocab, out->n_ctx = in.n_ctx, out->n_layer = in.n_layer;
    out->n_embd = in.n_embd, out->n_head = in.n_head, out->n_head_kv = in.n_head_kv;
    out->n_ff = in.n_ff, out->bos = in.bos, out->eos = in.eos;
    out->weight_bytes = in.weight_bytes, out->kv_bytes = in.kv_bytes;
    out->sched.steps = in.steps, out->sched.batch_seqs = in.batch_seqs, out->sched.batch_tokens = in.batch_tokens;
    out->sched.max_batch = in.max_batch, out->sched.step_tokens = in.step_tokens;
    out->sched.prefix_lookups = in.prefix_lookups, out->sched.prefix_hits = in.prefix_hits;
    out->sched.prefix_lookup_tokens = in.prefix_lookup_tokens;
    out->sched.prefix_hit_tokens = in.prefix_hit_tokens;
    out->sched.preempted = in.preempted;
    out->sched.kv_blocks_total = in.kv_blocks_total, out->sched.kv_blocks_used = in.kv_blocks_used;
    out->sched.kv_blocks_free = in.kv_blocks_free, out->sched.kv_blocks_cached = in.kv_blocks_cached;
    out->sched.kv_block_bytes = in.kv_block_bytes;
    out->sched.sampled = in.sampled, out->sched.sampled_top_k = in.sampled_top_k;
    return 0;
}
