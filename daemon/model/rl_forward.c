/* rl_forward.c - the batched forward pass of a Llama-family transformer.
 *
 * All tokens of a step (decode tokens and prompt chunks of many sequences) sit
 * in one activation matrix x[T][n_embd]; every weight matrix is applied once to
 * all T rows (rl_gemm). Only attention is per sequence: each query reads its
 * own sequence's paged KV cache through the block table.
 *
 *   x = embed(tokens)
 *   for each layer:
 *       h = rmsnorm(x) ; q,k,v = h Wq, h Wk, h Wv (+ biases) ; rope(q, k)
 *       store k, v in the cache ; x += attention(q, cache) Wo
 *       h = rmsnorm(x) ; x += (silu(h Wgate) * (h Wup)) Wdown
 *   logits = rmsnorm(x_last) Wout
 */
#include "rl_model.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "rl_gemm.h"
#include "rl_kv.h"
#include "rl_ops.h"
#include "rl_pool.h"

#define ATT_TOKS 32     /* query tokens per attention work item */
#define LOGIT_ROWS 16   /* output projection rows per chunk */

_Static_assert(RL_KV_BLOCK == RL_OPS_ATT_ROWS, "rl_ops_att_block takes one KV block of keys");

typedef struct att_item {
    uint32_t seq, kvh, t0, t1; /* batch rows t0..t1 of sequence seq, KV head kvh */
} att_item;

struct rl_fwd {
    const rl_model *m;
    rl_kv *kv;
    rl_pool *pool;
    uint32_t max_tokens;
    int nth;
    float *x, *xb, *q, *k, *v, *att, *hg, *hu, *logit_buf;
    void *act_buf;          /* converted activations */
    float *att_scratch;     /* per thread: K block, V block, accumulators, queries */
    size_t att_stride;
    att_item *items;
    uint32_t *tok_seq;      /* batch row -> sequence */
    int32_t *tok_pos;       /* batch row -> position */
    /* current call */
    rl_fwd_seq *seqs;
    uint32_t n_seqs, T, *seq_row0;
    uint32_t layer, n_items;
};

static size_t max_scratch(const rl_model *m, uint32_t T)
{
    size_t best = 0;
    for (uint32_t l = 0; l < m->hp.n_layer; l++) {
        const rl_layer *L = &m->layers[l];
        const rl_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < 7; i++) {
            size_t s = rl_gemm_scratch_size(ws[i]->type, ws[i]->ne0, T);
            best = s > best ? s : best;
        }
    }
    size_t s = rl_gemm_scratch_size(m->output.type, m->output.ne0, LOGIT_ROWS);
    return s > best ? s : best;
}

void rl_fwd_free(rl_fwd *f)
{
    if (!f)
        return;
    free(f->x); free(f->xb); free(f->q); free(f->k); free(f->v); free(f->att);
    free(f->hg); free(f->hu); free(f->logit_buf); free(f->act_buf); free(f->att_scratch);
    free(f->items); free(f->tok_seq); free(f->tok_pos); free(f->seq_row0);
    free(f);
}

int rl_fwd_new(const rl_model *m, rl_kv *kv, rl_pool *pool, uint32_t max_tokens, rl_fwd **out)
{
    *out = NULL;
    if (max_tokens == 0)
        return -EINVAL;
    const rl_model_hparams *hp = &m->hp;
    rl_fwd *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->m = m;
    f->kv = kv;
    f->pool = pool;
    f->max_tokens = max_tokens;
    f->nth = rl_pool_size(pool);
    size_t T = max_tokens, E = hp->n_embd, Q = (size_t)hp->n_head * hp->head_dim,
           KV = (size_t)hp->n_head_kv * hp->head_dim, F = hp->n_ff;
    size_t group = hp->n_head / hp->n_head_kv;
    f->att_stride = 2 * RL_KV_BLOCK * hp->head_dim + ATT_TOKS * group * (2 * hp->head_dim + 2);
    uint32_t max_items = hp->n_head_kv * (max_tokens / ATT_TOKS + 1 + max_tokens);
    f->x = malloc(sizeof(float) * T * E);
    f->xb = malloc(sizeof(float) * T * E);
    f->q = malloc(sizeof(float) * T * Q);
    f->k = malloc(sizeof(float) * T * KV);
    f->v = malloc(sizeof(float) * T * KV);
    f->att = malloc(sizeof(float) * T * Q);
    f->hg = malloc(sizeof(float) * T * F);
    f->hu = malloc(sizeof(float) * T * F);
    f->logit_buf = malloc(sizeof(float) * LOGIT_ROWS * (E + hp->n_vocab));
    f->act_buf = malloc(max_scratch(m, max_tokens) + 64);
    f->att_scratch = malloc(sizeof(float) * f->att_stride * (size_t)f->nth);
    f->items = malloc(sizeof(att_item) * max_items);
    f->tok_seq = malloc(sizeof(uint32_t) * T);
    f->tok_pos = malloc(sizeof(int32_t) * T);
    f->seq_row0 = malloc(sizeof(uint32_t) * T);
    if (!f->x || !f->xb || !f->q || !f->k || !f->v || !f->att || !f->hg || !f->hu || !f->logit_buf ||
        !f->act_buf || !f->att_scratch || !f->items || !f->tok_seq || !f->tok_pos || !f->seq_row0) {
        rl_fwd_free(f);
        return -ENOMEM;
    }
    *out = f;
    return 0;
}

/* x W^T for every batch row; act caches the converted input across calls. */
static void matmul(rl_fwd *f, rl_gemm_act *act, const rl_weight *w, const float *x, uint32_t T, float *y)
{
    rl_gemm_prepare(f->pool, act, w->type, x, T, w->ne0, f->act_buf); /* shapes checked at load */
    rl_gemm_run(f->pool, w->data, w->type, w->ne1, act, y, w->ne1);
}

/* Weights sharing one input: a single pass over the threads when they share a
 * type (so one converted input serves all), else one after the other. */
static void matmul_group(rl_fwd *f, const rl_weight *const *ws, float *const *ys, int n, const float *x, uint32_t T)
{
    rl_gemm_act act = {0};
    bool same = true;
    for (int i = 1; i < n; i++)
        same = same && ws[i]->type == ws[0]->type && ws[i]->ne0 == ws[0]->ne0;
    if (!same) {
        for (int i = 0; i < n; i++)
            matmul(f, &act, ws[i], x, T, ys[i]);
        return;
    }
    rl_gemm_prepare(f->pool, &act, ws[0]->type, x, T, ws[0]->ne0, f->act_buf);
    rl_gemm_job jobs[RL_GEMM_MAX_JOBS];
    for (int i = 0; i < n; i++)
        jobs[i] = (rl_gemm_job){ws[i]->data, ws[i]->type, ws[i]->ne1, &act, ys[i], ws[i]->ne1};
    rl_gemm_run_many(f->pool, jobs, n);
}

/* ---- per-row stages, split over threads by rows ---- */

typedef enum { ST_ATTN_NORM, ST_QKV_POST, ST_FFN_NORM, ST_SWIGLU } stage;
typedef struct rows_ctx {
    rl_fwd *f;
    stage st;
    _Atomic uint32_t next; /* next batch row (handed out dynamically) */
} rows_ctx;

static void rows_worker(void *vc, int ith, int nth)
{
    rows_ctx *c = vc;
    rl_fwd *f = c->f;
    const rl_model_hparams *hp = &f->m->hp;
    const rl_layer *L = &f->m->layers[f->layer];
    size_t E = hp->n_embd, Q = (size_t)hp->n_head * hp->head_dim, KV = (size_t)hp->n_head_kv * hp->head_dim;
    for (;;) {
        /* relaxed: only hands out distinct rows; the pool's barrier publishes them */
        uint32_t t = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (t >= f->T)
            break;
        switch (c->st) {
        case ST_ATTN_NORM:
            rl_ops_rmsnorm(f->xb + t * E, f->x + t * E, L->attn_norm, (int)E, hp->rms_eps);
            break;
        case ST_FFN_NORM:
            rl_ops_rmsnorm(f->xb + t * E, f->x + t * E, L->ffn_norm, (int)E, hp->rms_eps);
            break;
        case ST_QKV_POST: {
            float *q = f->q + t * Q, *k = f->k + t * KV, *v = f->v + t * KV;
            if (L->bq)
                rl_ops_add(q, L->bq, (int)Q);
            if (L->bk)
                rl_ops_add(k, L->bk, (int)KV);
            if (L->bv)
                rl_ops_add(v, L->bv, (int)KV);
            rl_ops_rope(q, (int)hp->n_head, (int)hp->head_dim, f->tok_pos[t], f->m->rope_inv_freq, hp->rope_neox);
            rl_ops_rope(k, (int)hp->n_head_kv, (int)hp->head_dim, f->tok_pos[t], f->m->rope_inv_freq, hp->rope_neox);
            rl_kv_store(f->kv, f->seqs[f->tok_seq[t]].kv, f->layer, (uint32_t)f->tok_pos[t], k, v);
            break;
        }
        case ST_SWIGLU:
            rl_ops_swiglu(f->hg + t * hp->n_ff, f->hg + t * hp->n_ff, f->hu + t * hp->n_ff, (int)hp->n_ff);
            break;
        }
    }
}

static void run_rows(rl_fwd *f, stage st)
{
    rows_ctx c = {.f = f, .st = st};
    atomic_init(&c.next, 0);
    if (f->T == 1)
        rows_worker(&c, 0, 1);
    else
        rl_pool_run(f->pool, rows_worker, &c);
}

/* ---- attention: online softmax over the sequence's KV blocks ----
 * Trick: each KV block is converted to float once per work item and used by
 * every query token and every query head of the group (grouped-query attention). */

static void att_item_run(rl_fwd *f, const att_item *it, float *scr)
{
    const rl_model_hparams *hp = &f->m->hp;
    const rl_type_traits *kt = rl_type_get(rl_kv_type(f->kv));
    uint32_t hd = hp->head_dim, group = hp->n_head / hp->n_head_kv;
    size_t Q = (size_t)hp->n_head * hd;
    const rl_kv_seq *kvs = f->seqs[it->seq].kv;
    float *kbt = scr, *vb = kbt + RL_KV_BLOCK * hd, *acc = vb + RL_KV_BLOCK * hd;
    uint32_t nq = (it->t1 - it->t0) * group;
    float *mx = acc + (size_t)nq * hd, *sum = mx + nq, *qs = sum + nq;
    for (uint32_t i = 0; i < nq; i++) {
        mx[i] = -INFINITY;
        sum[i] = 0.f;
    }
    memset(acc, 0, sizeof(float) * nq * hd);
    /* the item's queries in one run (query qi = (t - t0) * group + g), so the
     * tokens that see a whole block go to rl_ops_att_block in one call */
    for (uint32_t t = it->t0; t < it->t1; t++)
        memcpy(qs + (size_t)(t - it->t0) * group * hd, f->q + t * Q + (size_t)it->kvh * group * hd,
               sizeof(float) * group * hd);
    const float scale = 1.f / sqrtf((float)hd);
    int32_t last_pos = f->tok_pos[it->t1 - 1];
    uint32_t n_blk = (uint32_t)last_pos / RL_KV_BLOCK + 1;
    for (uint32_t b = 0; b < n_blk; b++) {
        /* K through vb into kbt, transposed (value d of key j at kbt[d * 16 + j]):
         * each key block serves every query of the item, scores need no horizontal sums */
        kt->to_float(rl_kv_rows(f->kv, kvs, b, f->layer, 0, it->kvh), vb, (int64_t)RL_KV_BLOCK * hd);
        for (uint32_t j = 0; j < RL_KV_BLOCK; j++)
            for (uint32_t d = 0; d < hd; d++)
                kbt[d * RL_KV_BLOCK + j] = vb[j * hd + d];
        kt->to_float(rl_kv_rows(f->kv, kvs, b, f->layer, 1, it->kvh), vb, (int64_t)RL_KV_BLOCK * hd);
        int32_t p0 = (int32_t)(b * RL_KV_BLOCK);
        /* a sequence's rows hold consecutive positions: tokens before the block
         * skip it, then each token inside it sees its own prefix, then all the
         * later ones see the whole block (one call) */
        uint32_t t = it->t0;
        while (t < it->t1 && f->tok_pos[t] < p0)
            t++;
        for (; t < it->t1 && f->tok_pos[t] - p0 + 1 < RL_KV_BLOCK; t++) {
            uint32_t qi = (t - it->t0) * group;
            rl_ops_att_block(kbt, vb, f->tok_pos[t] - p0 + 1, qs + (size_t)qi * hd, (int)group, (int)hd, scale,
                             &mx[qi], &sum[qi], acc + (size_t)qi * hd);
        }
        if (t < it->t1) {
            uint32_t qi = (t - it->t0) * group;
            rl_ops_att_block(kbt, vb, RL_KV_BLOCK, qs + (size_t)qi * hd, (int)((it->t1 - t) * group), (int)hd, scale,
                             &mx[qi], &sum[qi], acc + (size_t)qi * hd);
        }
    }
    for (uint32_t t = it->t0; t < it->t1; t++)
        for (uint32_t g = 0; g < group; g++) {
            uint32_t h = it->kvh * group + g, qi = (t - it->t0) * group + g;
            float inv = 1.f / sum[qi], *o = f->att + t * Q + (size_t)h * hd, *a = acc + (size_t)qi * hd;
            for (uint32_t d = 0; d < hd; d++)
                o[d] = a[d] * inv;
        }
}

typedef struct att_ctx {
    rl_fwd *f;
    _Atomic uint32_t next;
} att_ctx;

static void att_worker(void *vc, int ith, int nth)
{
    att_ctx *c = vc;
    rl_fwd *f = c->f;
    float *scr = f->att_scratch + (size_t)ith * f->att_stride;
    for (;;) {
        /* relaxed: only hands out distinct items; the pool barrier publishes results */
        uint32_t i = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (i >= f->n_items)
            break;
        att_item_run(f, &f->items[i], scr);
    }
}

static void build_att_items(rl_fwd *f)
{
    uint32_t n = 0;
    for (uint32_t s = 0; s < f->n_seqs; s++) {
        uint32_t r0 = f->seq_row0[s], r1 = r0 + f->seqs[s].n_tok;
        for (uint32_t t0 = r0; t0 < r1; t0 += ATT_TOKS)
            for (uint32_t h = 0; h < f->m->hp.n_head_kv; h++)
                f->items[n++] = (att_item){s, h, t0, t0 + ATT_TOKS < r1 ? t0 + ATT_TOKS : r1};
    }
    f->n_items = n;
}

/* ---- the pass ---- */

static void layer_forward(rl_fwd *f, uint32_t l)
{
    const rl_model_hparams *hp = &f->m->hp;
    const rl_layer *L = &f->m->layers[l];
    uint32_t T = f->T;
    size_t E = hp->n_embd;
    rl_gemm_act act = {0};
    f->layer = l;

    run_rows(f, ST_ATTN_NORM);
    const rl_weight *qkv[3] = {&L->wq, &L->wk, &L->wv}; /* one converted input, one pass */
    float *qkv_out[3] = {f->q, f->k, f->v};
    matmul_group(f, qkv, qkv_out, 3, f->xb, T);
    run_rows(f, ST_QKV_POST);

    att_ctx ac = {.f = f};
    atomic_init(&ac.next, 0);
    rl_pool_run(f->pool, att_worker, &ac);

    act = (rl_gemm_act){0};
    matmul(f, &act, &L->wo, f->att, T, f->xb);
    rl_ops_add(f->x, f->xb, (int)(T * E));

    run_rows(f, ST_FFN_NORM);
    const rl_weight *gu[2] = {&L->w_gate, &L->w_up};
    float *gu_out[2] = {f->hg, f->hu};
    matmul_group(f, gu, gu_out, 2, f->xb, T);
    run_rows(f, ST_SWIGLU);
    act = (rl_gemm_act){0};
    matmul(f, &act, &L->w_down, f->hg, T, f->xb);
    rl_ops_add(f->x, f->xb, (int)(T * E));
}

/* Final norm and output projection for the last row of each sequence that
 * wants logits, LOGIT_ROWS at a time. */
static void logits_forward(rl_fwd *f)
{
    const rl_model *m = f->m;
    size_t E = m->hp.n_embd, V = m->hp.n_vocab;
    float *xs = f->logit_buf, *ys = f->logit_buf + LOGIT_ROWS * E;
    uint32_t who[LOGIT_ROWS], n = 0;
    for (uint32_t s = 0; s <= f->n_seqs; s++) {
        if (s < f->n_seqs && f->seqs[s].logits) {
            uint32_t row = f->seq_row0[s] + f->seqs[s].n_tok - 1;
            rl_ops_rmsnorm(xs + n * E, f->x + row * E, m->output_norm, (int)E, m->hp.rms_eps);
            who[n++] = s;
        }
        if (n == LOGIT_ROWS || (s == f->n_seqs && n > 0)) {
            rl_gemm_act act = {0};
            matmul(f, &act, &m->output, xs, n, ys);
            for (uint32_t i = 0; i < n; i++)
                memcpy(f->seqs[who[i]].logits, ys + i * V, sizeof(float) * V);
            n = 0;
        }
    }
}

int rl_forward(rl_fwd *f, rl_fwd_seq *seqs, uint32_t n_seqs)
{
    const rl_model *m = f->m;
    uint32_t T = 0;
    for (uint32_t s = 0; s < n_seqs; s++) {
        const rl_kv_seq *kv = seqs[s].kv;
        if (seqs[s].n_tok == 0 || seqs[s].n_tok > f->max_tokens - T)
            return -EINVAL;
        if ((uint64_t)kv->n_pos + seqs[s].n_tok > (uint64_t)kv->n_blocks * RL_KV_BLOCK)
            return -ENOSPC;
        for (uint32_t i = 0; i < seqs[s].n_tok; i++)
            if (seqs[s].tokens[i] < 0 || (uint32_t)seqs[s].tokens[i] >= m->hp.n_vocab)
                return -EINVAL;
        f->seq_row0[s] = T;
        for (uint32_t i = 0; i < seqs[s].n_tok; i++) {
            f->tok_seq[T + i] = s;
            f->tok_pos[T + i] = (int32_t)(kv->n_pos + i);
        }
        T += seqs[s].n_tok;
    }
    if (T == 0)
        return 0;
    f->seqs = seqs;
    f->n_seqs = n_seqs;
    f->T = T;
    for (uint32_t t = 0; t < T; t++) {
        const rl_fwd_seq *sq = &seqs[f->tok_seq[t]];
        rl_weight_row(&m->tok_embd, sq->tokens[t - f->seq_row0[f->tok_seq[t]]], f->x + (size_t)t * m->hp.n_embd);
    }
    build_att_items(f);
    for (uint32_t l = 0; l < m->hp.n_layer; l++)
        layer_forward(f, l);
    logits_forward(f);
    for (uint32_t s = 0; s < n_seqs; s++)
        seqs[s].kv->n_pos += seqs[s].n_tok;
    f->seqs = NULL;
    return 0;
}
