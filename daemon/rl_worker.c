/* rl_worker.c - compute worker: one engine step per iteration over all running
 * sequences of all clients; detokenizes, applies stop strings and budgets, and
 * posts TOKENS / DONE / ERROR completions (under each connection's out_lock). */
#include "rl_worker.h"
#include "rl_bells.h"
#include "rl_daemon.h"
#include "rl_log.h"
#include "rl_req.h"
#include "rl_sched.h"
#include "rl_worker_trace.h"
#include "rl_wreq.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


enum { MSG_NEW, MSG_CANCEL, MSG_GONE, MSG_LIVE };
typedef struct msg {
    struct msg *next;
    int type;
    rl_wreq *r;
    rl_conn *c;
    uint32_t id;
} msg;

struct rl_worker {
    rl_engine *e;
    int spin_us;
    int notify_fd;
    pthread_t thr;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    msg *inbox, **inbox_tail;
    bool kicked, quit, cancel_all, sleeping;
    atomic_bool pending; /* something in the inbox or a kick: seen while spinning */
    /* worker thread only */
    rl_wreq **act;
    uint32_t n_act, cap_act;
    rl_step_item *items;
    rl_wreq **item_req; /* the request of each item */
    uint32_t cap_items;
    rl_conn **touched;
    uint32_t n_touched, cap_touched;
    rl_sched_limits lim;     /* per-client admission limits (rl_sched.h) */
    rl_sched_ent *ents;      /* step order scratch */
    uint32_t cap_ents, rotate;
    rl_conn **zc;            /* connections offered to map_region (one reference each) */
    uint32_t n_zc, cap_zc;
    uint64_t zc_ns, zc_max_ns; /* time in map_region (logged at stop) */
    uint32_t zc_calls;
    /* where the thread's time goes while it has work (logged at stop): passes
     * that ran a step, the step call itself, and the sleeps/spins between */
    uint64_t busy_ns, step_call_ns, wait_ns, kick_ns;
    rl_bells *bells; /* wakes many clients at once off this thread (NULL: inline) */
    rl_worker_trace *trace;  /* NULL unless RINGLM_TRACE_TTFT */
    /* published */
    atomic_uint n_active;
    atomic_uint n_queued; /* NEW messages not yet taken from the inbox */
    atomic_ullong steps, beat, step_started;
};

static void wreq_free(rl_worker *w, rl_wreq *r)
{
    if (r->seq)
        w->e->ops->seq_free(w->e, r->seq);
    for (uint32_t i = 0; i < r->n_stop; i++)
        free(r->stop[i]);
    free(r->prompt);
    free(r->hold.p);
    free(r->out.p);
    free(r->ids);
    free(r->lp);
    /* release: pairs with the loop's acquire load of n_reqs (a slot it may reuse). */
    atomic_fetch_sub_explicit(&r->conn->n_reqs, 1, memory_order_release);
    rl_conn_unref(r->conn);
    free(r);
}

/* ---- inbox (loop thread side) ---- */

static void push(rl_worker *w, msg *m)
{
    pthread_mutex_lock(&w->mu);
    m->next = NULL;
    *w->inbox_tail = m;
    w->inbox_tail = &m->next;
    /* release: the message is complete before a spinning worker sees the flag
     * (it then takes the mutex anyway). */
    atomic_store_explicit(&w->pending, true, memory_order_release);
    if (w->sleeping)
        pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void push_new(rl_worker *w, int type, rl_wreq *r, rl_conn *c, uint32_t id)
{
    msg *m = calloc(1, sizeof *m);
    if (!m) {
        rl_log(LOG_ERR, "worker inbox: out of memory");
        if (r) {
            wreq_free(w, r);
            atomic_fetch_sub(&w->n_queued, 1);
        }
        return;
    }
    m->type = type;
    m->r = r;
    m->c = c;
    m->id = id;
    if (c)
        rl_conn_ref(c);
    push(w, m);
}

void rl_worker_submit(rl_worker *w, rl_wreq *r)
{
    atomic_fetch_add(&w->n_queued, 1);
    push_new(w, MSG_NEW, r, NULL, 0);
}
void rl_worker_cancel(rl_worker *w, rl_conn *c, uint32_t id) { push_new(w, MSG_CANCEL, NULL, c, id); }
void rl_worker_conn_gone(rl_worker *w, rl_conn *c) { push_new(w, MSG_GONE, NULL, c, 0); }
void rl_worker_conn_live(rl_worker *w, rl_conn *c) { push_new(w, MSG_LIVE, NULL, c, 0); }

static void set_flag(rl_worker *w, bool *flag)
{
    pthread_mutex_lock(&w->mu);
    *flag = true;
    atomic_store_explicit(&w->pending, true, memory_order_release);
    if (w->sleeping)
        pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void rl_worker_kick(rl_worker *w) { set_flag(w, &w->kicked); }
void rl_worker_cancel_all(rl_worker *w) { set_flag(w, &w->cancel_all); }

uint32_t rl_worker_active(rl_worker *w)
{
    return atomic_load(&w->n_active) + atomic_load(&w->n_queued);
}
uint64_t rl_worker_steps(rl_worker *w) { return atomic_load(&w->steps); }
uint64_t rl_worker_beat(rl_worker *w) { return atomic_load(&w->beat); }
uint64_t rl_worker_step_started(rl_worker *w) { return atomic_load(&w->step_started); }

/* ---- request processing (worker thread) ---- */

static void touch(rl_worker *w, rl_conn *c)
{
    for (uint32_t i = 0; i < w->n_touched; i++)
        if (w->touched[i] == c)
            return;
    if (w->n_touched == w->cap_touched) {
        uint32_t cap = w->cap_touched ? 2 * w->cap_touched : 16;
        rl_conn **p = realloc(w->touched, cap * sizeof *p);
        if (!p) {
            rl_conn_kick(c); /* cannot defer it: kick now */
            return;
        }
        w->touched = p;
        w->cap_touched = cap;
    }
    rl_conn_ref(c);
    w->touched[w->n_touched++] = c;
}

static void set_final(rl_worker *w, rl_wreq *r, uint16_t type, int32_t status, uint32_t finish,
                      const char *msg)
{
    if (r->final)
        return;
    if (r->seq) {
        w->e->ops->seq_free(w->e, r->seq);
        r->seq = NULL;
    }
    r->final = true;
    r->final_type = type;
    r->final_status = status;
    if (type == RL_WIRE_EV_ERROR) {
        snprintf(r->msg, sizeof r->msg, "%s", msg ? msg : "");
        return;
    }
    if (finish == RL_WIRE_FINISH_EOS || finish == RL_WIRE_FINISH_LENGTH) {
        /* The held text did not become a stop string: release it, and close an
         * incomplete character. */
        if (rl_buf_reserve(&r->out, r->hold.n + 4)) {
            memcpy(r->out.p + r->out.n, r->hold.p, r->hold.n);
            r->out.n += r->hold.n;
            r->out.n += rl_req_utf8_finish(&r->u8, r->out.p + r->out.n);
        }
        r->hold.n = 0;
    }
    uint64_t now = rl_now_ns();
    rl_wire_done *d = &r->done;
    d->finish = finish;
    d->n_prompt = r->n_prompt;
    d->n_gen = r->n_gen;
    if (r->t_first) {
        d->ttft_ns = r->t_first - r->t_recv;
        double ps = (double)(r->t_first - r->t_admit) / 1e9;
        d->prompt_tps = ps > 0 ? r->n_prompt / ps : 0;
        double gs = (double)(r->t_last - r->t_first) / 1e9;
        d->gen_tps = (r->n_gen > 1 && gs > 0) ? (r->n_gen - 1) / gs : 0;
    }
    d->total_ns = now - r->t_recv;
}

/* Post what is pending. 0: all out; -EAGAIN: no room (blocked); -EPIPE: drop. */
static int flush(rl_worker *w, rl_wreq *r)
{
    rl_conn *c = r->conn;
    if (r->n_ids || r->out.n) {
        int rc = rl_conn_post_tokens(c, r->id, r->n_lp ? RL_WIRE_CQE_LOGPROBS | r->n_lp : 0, r->n_ids, r->ids, r->lp,
                                     (size_t)r->n_ids * (r->n_lp ? 1 + r->n_lp : 0) * sizeof(rl_wire_logprob),
                                     r->out.p, r->out.n);
        if (rc == -EAGAIN)
            return rc;
        touch(w, c);
        if (rc < 0)
            return -EPIPE;
        r->n_ids = 0;
        r->out.n = 0;
    }
    if (r->final && !r->posted) {
        int rc;
        if (r->final_type == RL_WIRE_EV_ERROR)
            rc = rl_conn_post(c, r->id, RL_WIRE_EV_ERROR, r->final_status, 0, r->msg,
                              strlen(r->msg), NULL, 0);
        else
            rc = rl_conn_post(c, r->id, RL_WIRE_EV_DONE, r->final_status, 0, &r->done,
                              sizeof r->done, NULL, 0);
        if (rc == -EAGAIN)
            return rc;
        touch(w, c);
        if (rc < 0)
            return -EPIPE;
        r->posted = true;
    }
    return 0;
}

static void on_token(rl_worker *w, rl_wreq *r, int32_t tok, const rl_token_logprob *lp)
{
    rl_engine *e = w->e;
    uint64_t now = rl_now_ns();
    if (!r->t_first)
        r->t_first = now;
    r->t_last = now;
    r->n_gen++;
    if (e->ops->is_eog(e, tok)) {
        set_final(w, r, RL_WIRE_EV_DONE, 0, RL_WIRE_FINISH_EOS, NULL);
        return;
    }
    char small[256], *piece = small;
    int n = e->ops->token_piece(e, tok, small, sizeof small);
    if (n > (int)sizeof small) {
        piece = malloc((size_t)n);
        if (!piece || e->ops->token_piece(e, tok, piece, (size_t)n) != n) {
            free(piece);
            set_final(w, r, RL_WIRE_EV_ERROR, -ENOMEM, 0, "out of memory (token piece)");
            return;
        }
    }
    if (n < 0) {
        set_final(w, r, RL_WIRE_EV_ERROR, -EIO, 0, "engine produced an invalid token");
        return;
    }
    if (!rl_wreq_reserve_id(r))
        goto oom;
    rl_wreq_push_id(r, tok, lp);
    if (!rl_buf_reserve(&r->hold, 3 * ((size_t)n + 4)))
        goto oom;
    r->hold.n += rl_req_utf8_feed(&r->u8, piece, (size_t)n, r->hold.p + r->hold.n);
    if (piece != small)
        free(piece);
    size_t emit = r->hold.n;
    bool stopped = false;
    if (r->n_stop)
        stopped = rl_req_stop_scan(r->hold.p, r->hold.n, (const char *const *)r->stop, r->stop_len,
                               r->n_stop, &emit);
    if (!rl_buf_reserve(&r->out, emit))
        goto oom;
    if (emit) /* out.p is still NULL while everything so far is held */
        memcpy(r->out.p + r->out.n, r->hold.p, emit);
    r->out.n += emit;
    memmove(r->hold.p, r->hold.p + emit, r->hold.n - emit);
    r->hold.n -= emit;
    if (stopped) {
        r->hold.n = 0;
        set_final(w, r, RL_WIRE_EV_DONE, 0, RL_WIRE_FINISH_STOP, NULL);
    } else if (r->n_gen >= r->max_tokens) {
        set_final(w, r, RL_WIRE_EV_DONE, 0, RL_WIRE_FINISH_LENGTH, NULL);
    }
    return;
oom:
    if (piece != small)
        free(piece);
    set_final(w, r, RL_WIRE_EV_ERROR, -ENOMEM, 0, "out of memory");
}

/* ---- zero copy (docs/TRANSPORT.md): regions mapped into the engine ----
 * map_region and unmap_region run here, on the worker thread between steps,
 * so no step can be writing into a region while it is unmapped. Each offered
 * connection is held by a reference in w->zc, so its region (munmap'ed when the
 * last reference goes) outlives the engine's mapping; unmap comes on MSG_GONE
 * (the client left: its requests are dropped in the same pass, none is in a
 * step) or when the worker quits (daemon stop, engine swap: before the engine
 * is destroyed, see rl_daemon_destroy / rl_swap_step). */
static bool zc_mapped(rl_worker *w, rl_conn *c)
{
    if (c->wk_zc)
        return c->wk_zc > 0;
    rl_engine *e = w->e;
    /* a gone client gets no new mapping (MSG_GONE may already be handled) */
    if (!e->ops->map_region || !e->ops->unmap_region || atomic_load(&c->dead))
        return false;
    if (w->n_zc == w->cap_zc) {
        uint32_t cap = w->cap_zc ? 2 * w->cap_zc : 16;
        rl_conn **p = realloc(w->zc, cap * sizeof *p);
        if (!p)
            return false; /* copies this time; asked again next step */
        w->zc = p;
        w->cap_zc = cap;
    }
    void *cb;
    size_t cl;
    rl_conn_cells_range(c, &cb, &cl);
    uint64_t t0 = rl_now_ns();
    int rc = e->ops->map_region(e, cb, cl);
    uint64_t dt = rl_now_ns() - t0;
    w->zc_ns += dt;
    w->zc_max_ns = dt > w->zc_max_ns ? dt : w->zc_max_ns;
    w->zc_calls++;
    c->wk_zc = rc == 0 ? 1 : -1;
    if (rc < 0)
        rl_log(LOG_INFO, "client %llu: region not mapped into the engine (%s): tokens are copied",
               (unsigned long long)c->id, strerror(-rc));
    rl_conn_ref(c);
    w->zc[w->n_zc++] = c;
    return rc == 0;
}

static void zc_release(rl_worker *w, uint32_t i)
{
    rl_conn *c = w->zc[i];
    if (c->wk_zc > 0) {
        void *cb;
        size_t cl;
        rl_conn_cells_range(c, &cb, &cl);
        w->e->ops->unmap_region(w->e, cb);
    }
    c->wk_zc = 0; /* a later worker (engine swap) offers it again */
    w->zc[i] = w->zc[--w->n_zc];
    rl_conn_unref(c);
}

static void zc_forget(rl_worker *w, rl_conn *c)
{
    for (uint32_t i = 0; i < w->n_zc; i++)
        if (w->zc[i] == c) {
            zc_release(w, i);
            return;
        }
}

static void zc_forget_all(rl_worker *w)
{
    while (w->n_zc)
        zc_release(w, w->n_zc - 1);
}

/* After the step: publish the cell with this step's token and its text, or
 * give it back. */
static void zc_finish(rl_worker *w, rl_wreq *r)
{
    rl_conn *c = r->conn;
    r->has_cell = false;
    /* n_ids was 0 before the step (only flushed requests step): 1 means this
     * step's token, whose id the engine stored in the cell. EOS is no id. */
    if (r->n_ids != 1) {
        rl_conn_cell_put(c, r->cell);
        return;
    }
    size_t text = r->out.n <= RL_CONN_CELL_BYTES - sizeof(int32_t) ? r->out.n : 0;
    int rc = rl_conn_cell_post(c, r->cell, r->id, r->out.p, text);
    if (rc < 0)
        return; /* no room (copied by flush later) or dead (flush drops it) */
    touch(w, c);
    r->n_ids = 0; /* the id went out; longer text follows in its own TOKENS event */
    if (text)
        r->out.n = 0;
}

static void admit(rl_worker *w, rl_wreq *r)
{
    uint32_t same = 0;
    rl_sched_usage u = {0};
    for (uint32_t i = 0; i < w->n_act; i++) {
        rl_wreq *o = w->act[i];
        if (o == r || o->conn != r->conn)
            continue;
        same++;
        if (o->id == r->id && !o->posted && !o->dropped) {
            set_final(w, r, RL_WIRE_EV_ERROR, -EEXIST, 0, "request id already in flight");
            return;
        }
        if (!o->final) {
            u.n_req++;
            u.kv_tokens += (uint64_t)o->n_prompt + o->n_gen; /* positions it needs now */
        }
    }
    if (same >= RL_CONN_MAX_REQS) {
        set_final(w, r, RL_WIRE_EV_ERROR, -EBUSY, 0, "too many requests in flight");
        return;
    }
    /* per-client fairness limits: -EAGAIN (queue) / -EDQUOT (KV), with a message */
    char lm[RL_WIRE_MAX_ERRMSG];
    int lrc = rl_sched_admit(&w->lim, &u, r->n_prompt, lm, sizeof lm);
    if (lrc < 0) {
        set_final(w, r, RL_WIRE_EV_ERROR, lrc, 0, lm);
        return;
    }
    rl_seq_desc d = {.prompt = r->prompt, .n_prompt = r->n_prompt, .max_tokens = r->max_tokens,
                     .sampling = r->sampling, .priority = r->priority, .n_logprobs = r->n_lp};
    r->t_admit = rl_now_ns();
    int rc = w->e->ops->seq_new(w->e, &d, &r->seq);
    if (rc < 0) {
        r->seq = NULL;
        char m[RL_WIRE_MAX_ERRMSG];
        snprintf(m, sizeof m, "%s", rc == -E2BIG ? "prompt plus max_tokens exceed the context"
                                                 : strerror(-rc));
        set_final(w, r, RL_WIRE_EV_ERROR, rc, 0, m);
    }
}

static bool add_active(rl_worker *w, rl_wreq *r)
{
    if (w->n_act == w->cap_act) {
        uint32_t cap = w->cap_act ? 2 * w->cap_act : 64;
        rl_wreq **p = realloc(w->act, cap * sizeof *p);
        if (!p)
            return false;
        w->act = p;
        w->cap_act = cap;
    }
    w->act[w->n_act++] = r;
    return true;
}

static void handle_msgs(rl_worker *w, msg *m, bool quit)
{
    while (m) {
        msg *next = m->next;
        if (m->type == MSG_NEW) {
            if (w->trace)
                m->r->tr.pick = rl_now_ns();
            if (quit || !add_active(w, m->r))
                wreq_free(w, m->r);
            else
                admit(w, m->r);
            atomic_store(&w->n_active, w->n_act);
            atomic_fetch_sub(&w->n_queued, 1);
        } else if (m->type == MSG_LIVE) {
            if (!quit)
                zc_mapped(w, m->c); /* (a failure is logged there; requests then copy) */
            rl_conn_unref(m->c);
        } else {
            for (uint32_t i = 0; i < w->n_act; i++) {
                rl_wreq *r = w->act[i];
                if (r->conn != m->c)
                    continue;
                if (m->type == MSG_GONE)
                    r->dropped = true;
                else if (r->id == m->id && !r->final)
                    set_final(w, r, RL_WIRE_EV_DONE, -ECANCELED, RL_WIRE_FINISH_CANCELLED, NULL);
            }
            /* Between steps on the worker thread, and every request of the
             * client is dropped above: no step writes into its region again. */
            if (m->type == MSG_GONE)
                zc_forget(w, m->c);
            rl_conn_unref(m->c);
        }
        free(m);
        m = next;
    }
}

/* Returns whether an engine step ran. */
static bool run_step(rl_worker *w)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < w->n_act; i++) {
        rl_wreq *r = w->act[i];
        if (r->seq && !r->final && !r->dropped && !r->n_ids && !r->out.n)
            n++;
    }
    if (n == 0)
        return false;
    if (n > w->cap_items) {
        rl_step_item *p = realloc(w->items, n * sizeof *p);
        if (p)
            w->items = p;
        rl_wreq **q = realloc(w->item_req, n * sizeof *q);
        if (q)
            w->item_req = q;
        if (!p || !q)
            return false; /* out of memory: try again next iteration */
        w->cap_items = n;
    }
    if (n > w->cap_ents) {
        rl_sched_ent *p = realloc(w->ents, n * sizeof *p);
        if (!p)
            return false;
        w->ents = p;
        w->cap_ents = n;
    }
    rl_wreq **idx = w->item_req;
    uint32_t k = 0;
    for (uint32_t i = 0; i < w->n_act; i++) {
        rl_wreq *r = w->act[i];
        if (r->seq && !r->final && !r->dropped && !r->n_ids && !r->out.n)
            w->ents[k++] = (rl_sched_ent){.client = r->conn, .priority = r->priority, .index = i};
    }
    /* latency-critical first, then round-robin across clients (rl_sched.h) */
    rl_sched_order(w->ents, n, w->rotate++);
    for (uint32_t j = 0; j < n; j++) {
        rl_wreq *r = w->act[w->ents[j].index];
        idx[j] = r;
        w->items[j] = (rl_step_item){.seq = r->seq, .token = -1, .status = 0};
        /* zero copy: the id lands where the client reads it (NULL: copied) */
        if (!r->n_lp && zc_mapped(w, r->conn)) { /* (a cell holds an id, not log-probabilities) */
            w->items[j].tok_dst = rl_conn_cell_take(r->conn, &r->cell);
            r->has_cell = w->items[j].tok_dst != NULL;
        }
    }
    uint64_t t0 = rl_now_ns();
    atomic_store(&w->step_started, t0);
    for (uint32_t j = 0; w->trace && j < n; j++)
        if (!idx[j]->t_first) /* only the steps before the first token */
            rl_ttft_stamp_step(&idx[j]->tr, t0);
    int rc = w->e->ops->step(w->e, w->items, n);
    w->step_call_ns += rl_now_ns() - t0;
    atomic_store(&w->step_started, 0);
    atomic_fetch_add(&w->steps, 1);
    for (uint32_t i = 0; i < n; i++) {
        rl_wreq *r = idx[i];
        int st = rc < 0 ? rc : w->items[i].status;
        if (st < 0) {
            char m[RL_WIRE_MAX_ERRMSG];
            snprintf(m, sizeof m, "%s", st == -ENOSPC ? "context full" : strerror(-st));
            set_final(w, r, RL_WIRE_EV_ERROR, st, 0, m);
        } else if (w->items[i].token >= 0) {
            on_token(w, r, w->items[i].token, w->items[i].logprobs);
        }
        if (r->has_cell)
            zc_finish(w, r);
    }
    return true;
}

/* Drop finished and dropped requests, keep order of the rest. */
static void sweep(rl_worker *w)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < w->n_act; i++) {
        rl_wreq *r = w->act[i];
        if (r->dropped || r->posted)
            wreq_free(w, r);
        else
            w->act[k++] = r;
    }
    w->n_act = k;
    atomic_store(&w->n_active, k);
}

static bool steppable(rl_worker *w)
{
    for (uint32_t i = 0; i < w->n_act; i++) {
        rl_wreq *r = w->act[i];
        if (r->seq && !r->final && !r->dropped && !r->n_ids && !r->out.n)
            return true;
    }
    return false;
}

static void *worker_main(void *arg)
{
    rl_worker *w = arg;
    pthread_setname_np(pthread_self(), "rl-worker"); /* top -H, perf --comm */
    uint64_t last_work = rl_now_ns();
    for (;;) {
        const uint64_t pass0 = rl_now_ns();
        pthread_mutex_lock(&w->mu);
        msg *m = w->inbox;
        w->inbox = NULL;
        w->inbox_tail = &w->inbox;
        bool quit = w->quit, cancel_all = w->cancel_all;
        w->kicked = false;
        w->cancel_all = false;
        atomic_store_explicit(&w->pending, false, memory_order_relaxed);
        pthread_mutex_unlock(&w->mu);
        bool had_msgs = m != NULL;
        handle_msgs(w, m, quit);
        if (quit) {
            for (uint32_t i = 0; i < w->n_act; i++)
                w->act[i]->dropped = true;
            sweep(w);
            zc_forget_all(w); /* before rl_worker_stop returns: the engine goes next */
            break;
        }
        if (cancel_all)
            for (uint32_t i = 0; i < w->n_act; i++)
                /* shutdown deadline: CANCELLED, and -ESHUTDOWN tells the client why */
                set_final(w, w->act[i], RL_WIRE_EV_DONE, -ESHUTDOWN, RL_WIRE_FINISH_CANCELLED, NULL);
        bool corrupt = false, stepped = false;
        for (int pass = 0; pass < 2; pass++) {
            for (uint32_t i = 0; i < w->n_act; i++) {
                rl_wreq *r = w->act[i];
                if (!r->dropped && flush(w, r) == -EPIPE) {
                    r->dropped = true;
                    corrupt |= atomic_load(&r->conn->corrupt);
                }
            }
            if (pass == 0)
                stepped = run_step(w);
        }
        bool posted = w->n_touched > 0;
        const uint64_t kick0 = rl_now_ns();
        /* many clients: their bells ring on rl_bells' thread during the next step */
        rl_bells_ring(w->bells, w->touched, w->n_touched);
        w->n_touched = 0;
        w->kick_ns += rl_now_ns() - kick0;
        if (w->trace) /* first tokens posted and their clients woken: time to first token */
            for (uint32_t i = 0; i < w->n_act; i++) {
                rl_wreq *r = w->act[i];
                if (r->t_first && !r->traced && r->tr.step0) {
                    r->traced = true;
                    r->tr.first = r->t_first;
                    r->tr.posted = rl_now_ns();
                    rl_worker_trace_add(w->trace, &r->tr, r->id);
                }
            }
        sweep(w);
        if (corrupt)
            rl_bell_ring(w->notify_fd);
        atomic_fetch_add(&w->beat, 1);
        uint64_t now = rl_now_ns();
        /* The spin window runs from the end of the last work: this iteration's
         * step and posts count, or the worker would sleep right after the step
         * that finished a request (a step longer than spin_us left no window at
         * all) and the client's next request, typically ~12 us later here, would
         * pay a condition-variable wake-up (~7 us on the CPU VM). */
        if (had_msgs || stepped || posted)
            last_work = now;
        if (stepped)
            w->busy_ns += now - pass0;
        if (had_msgs || steppable(w))
            continue;
        const uint64_t wait0 = now;
        /* Adaptive wait: spin for the window after the last work, then sleep. */
        unsigned iter = 0;
        while (w->spin_us > 0 && now - last_work < (uint64_t)w->spin_us * 1000) {
            /* acquire: pairs with the release in push/set_flag. */
            if (atomic_load_explicit(&w->pending, memory_order_acquire))
                break;
            rl_spin_round(&iter);
            now = rl_now_ns();
        }
        pthread_mutex_lock(&w->mu);
        while (!w->inbox && !w->kicked && !w->quit && !w->cancel_all) {
            w->sleeping = true;
            pthread_cond_wait(&w->cv, &w->mu);
            w->sleeping = false;
        }
        pthread_mutex_unlock(&w->mu);
        last_work = rl_now_ns();
        if (w->n_act) /* idle with requests in flight (waiting on their clients) */
            w->wait_ns += last_work - wait0;
    }
    return NULL;
}

int rl_worker_start(rl_worker **out, rl_engine *e, int spin_us, int notify_fd)
{
    return rl_worker_start_limits(out, e, spin_us, notify_fd, NULL);
}

int rl_worker_start_limits(rl_worker **out, rl_engine *e, int spin_us, int notify_fd,
                           const rl_sched_limits *lim)
{
    rl_worker *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    if (lim)
        w->lim = *lim;
    if (!w->lim.max_kv_tokens && e->ops->get_stats) {
        /* default: one client may claim half of the KV pool */
        rl_engine_stats st;
        e->ops->get_stats(e, &st);
        w->lim.max_kv_tokens = (uint64_t)st.kv_blocks_total * st.kv_block_positions / 2;
    }
    w->e = e;
    w->spin_us = spin_us;
    w->notify_fd = notify_fd;
    w->inbox_tail = &w->inbox;
    w->trace = rl_worker_trace_new();
    w->bells = rl_bells_new();
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    int rc = pthread_create(&w->thr, NULL, worker_main, w);
    if (rc) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        rl_worker_trace_free(w->trace);
        rl_bells_free(w->bells);
        free(w);
        return -rc;
    }
    *out = w;
    return 0;
}

void rl_worker_stop(rl_worker *w)
{
    if (!w)
        return;
    set_flag(w, &w->quit);
    pthread_join(w->thr, NULL);
    /* Anything pushed after the thread left. */
    handle_msgs(w, w->inbox, true);
    zc_forget_all(w); /* nothing left normally: the thread did it before leaving */
    if (w->zc_calls) /* what mapping client regions cost the step thread */
        rl_log(LOG_INFO, "zero copy: %u client regions mapped, %.3f ms between steps (longest %.1f us)",
               w->zc_calls, (double)w->zc_ns * 1e-6, (double)w->zc_max_ns * 1e-3);
    uint64_t rung, posts;
    rl_bells_counts(w->bells, &rung, &posts);
    rl_bells_free(w->bells); /* rings what is left */
    if (w->busy_ns)
        rl_log(LOG_INFO, "worker: %.3f s in passes that stepped, %.3f s of it in the step call; %.3f s waiting "
                         "with requests in flight; %.3f s waking clients (%llu hand-overs of %llu to the bell thread)",
               (double)w->busy_ns * 1e-9, (double)w->step_call_ns * 1e-9, (double)w->wait_ns * 1e-9,
               (double)w->kick_ns * 1e-9, (unsigned long long)posts, (unsigned long long)rung);
    free(w->zc);
    free(w->act);
    free(w->items);
    free(w->ents);
    free(w->item_req);
    free(w->touched);
    rl_worker_trace_free(w->trace);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}
