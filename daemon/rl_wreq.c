/* rl_wreq.c - a worker request's state: creation and its pending output. */
#include "rl_wreq.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rl_worker.h"

_Static_assert(sizeof(rl_wire_logprob) == sizeof(rl_token_logprob) &&
                   offsetof(rl_wire_logprob, logprob) == offsetof(rl_token_logprob, logprob),
               "the engine's log-probabilities go to the wire as they are");

bool rl_buf_reserve(buf *b, size_t more)
{
    if (b->n + more <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + more)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return false;
    b->p = p;
    b->cap = cap;
    return true;
}

rl_wreq *rl_wreq_new(rl_conn *conn, uint32_t req_id, const rl_req_parsed *p, int32_t *ids,
                     uint32_t n_ids, uint64_t t_recv_ns)
{
    rl_wreq *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    for (uint32_t i = 0; i < p->n_stop; i++) {
        r->stop[i] = malloc(p->stop_len[i]);
        if (!r->stop[i]) {
            for (uint32_t k = 0; k < i; k++)
                free(r->stop[k]);
            free(r);
            return NULL;
        }
        memcpy(r->stop[i], p->stop[i], p->stop_len[i]);
        r->stop_len[i] = p->stop_len[i];
    }
    r->n_stop = p->n_stop;
    r->conn = conn;
    rl_conn_ref(conn);
    atomic_fetch_add_explicit(&conn->n_reqs, 1, memory_order_relaxed);
    r->id = req_id;
    r->prompt = ids;
    r->n_prompt = n_ids;
    r->sampling = p->sampling;
    r->priority = p->priority;
    r->max_tokens = p->max_tokens;
    r->n_lp = p->n_logprobs;
    r->t_recv = t_recv_ns;
    r->tr.seen = r->tr.recv = t_recv_ns;
    return r;
}

void rl_wreq_set_seen(rl_wreq *r, uint64_t t_seen_ns)
{
    r->tr.seen = t_seen_ns;
}

bool rl_wreq_reserve_id(rl_wreq *r)
{
    if (r->n_ids < r->cap_ids)
        return true;
    uint32_t cap = r->cap_ids ? 2 * r->cap_ids : 8;
    int32_t *p = realloc(r->ids, cap * sizeof *p);
    if (!p)
        return false;
    r->ids = p;
    if (r->n_lp) {
        rl_wire_logprob *q = realloc(r->lp, (size_t)cap * (1 + r->n_lp) * sizeof *q);
        if (!q)
            return false;
        r->lp = q;
    }
    r->cap_ids = cap;
    return true;
}

void rl_wreq_push_id(rl_wreq *r, int32_t tok, const rl_token_logprob *lp)
{
    if (r->n_lp) {
        rl_wire_logprob *dst = r->lp + (size_t)r->n_ids * (1 + r->n_lp);
        if (lp)
            memcpy(dst, lp, (1 + (size_t)r->n_lp) * sizeof *dst);
        else
            for (uint32_t i = 0; i <= r->n_lp; i++)
                dst[i] = (rl_wire_logprob){i ? -1 : tok, NAN};
    }
    r->ids[r->n_ids++] = tok;
}
