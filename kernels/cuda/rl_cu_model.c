/* rl_cu_model.c - the GPU model: memory plan, weights, KV cache, the decode
 * step (captured as one CUDA graph per batch size) and prefill (cuBLAS). */
#include "rl_cu_model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MB (1024.0 * 1024.0)

struct rl_cu_model {
    rl_cu_model_cfg c;
    rl_cu_model_types t;
    rl_cu_mat tok_embd, output;
    float *output_norm;
    rl_cu_layer *layers;
    void **kc, **vc;          /* per layer */
    /* decode/prefill scratch; rows = max(RL_CU_MAX_BATCH, max_prefill) */
    uint32_t max_rows;
    float *x;                 /* residual [rows][n_embd] */
    rl_cu_act xn, attn, ffn;  /* normed input, attention output, GLU output */
    float *qkv, *q, *gu;      /* [rows][qkv dim], [rows][q dim], prefill [rows][2 n_ff] */
    rl_cu_act logits;         /* [RL_CU_MAX_BATCH][n_vocab] */
    void *attn_scratch;
    int32_t *d_tok, *d_pos, *d_slot, *d_out; /* [rows] */
    int32_t *h_in;            /* pinned: tokens | pos | slot, RL_CU_MAX_BATCH each */
    int32_t *h_out;           /* pinned, RL_CU_MAX_BATCH */
    void *xh;                 /* prefill fp16 activations */
    cudaStream_t s;
    rl_cu_blas *blas;
    cudaGraphExec_t graph[RL_CU_MAX_BATCH + 1];
    bool use_graphs;
    rl_cu_rope rope;
    float *inv_freq;          /* n_rot/2, or NULL (computed from rope_base) */
    uint64_t weight_bytes, kv_bytes, scratch_bytes;
};

static bool q8_type(rl_type t)
{
    return t == RL_TYPE_Q4_0 || t == RL_TYPE_Q8_0 || t == RL_TYPE_Q4_K || t == RL_TYPE_Q6_K;
}

static size_t act_bytes(int64_t n, uint32_t rows, bool q)
{
    return (size_t)n * rows * 4 + (q ? (size_t)n * rows + (size_t)(n / 32) * rows * 8 : 0);
}

static int alloc_act(rl_cu_act *a, int64_t n, uint32_t rows, bool q)
{
    memset(a, 0, sizeof *a);
    a->n = n;
    if (rl_cu_check(cudaMalloc((void **)&a->f, (size_t)n * rows * 4), "cudaMalloc(act)"))
        return -ENOMEM;
    if (q && n % 32 == 0) {
        if (rl_cu_check(cudaMalloc((void **)&a->q, (size_t)n * rows), "cudaMalloc(act q)") ||
            rl_cu_check(cudaMalloc((void **)&a->ds, (size_t)(n / 32) * rows * 8), "cudaMalloc(act ds)"))
            return -ENOMEM;
    }
    return 0;
}

static void free_act(rl_cu_act *a)
{
    cudaFree(a->f);
    cudaFree(a->q);
    cudaFree(a->ds);
    memset(a, 0, sizeof *a);
}

static int dalloc(void **p, size_t bytes, const char *what)
{
    return rl_cu_check(cudaMalloc(p, bytes), what) ? -ENOMEM : 0;
}

int rl_cu_upload_f32(float *d_dst, const float *host, size_t n)
{
    return rl_cu_check(cudaMemcpy(d_dst, host, n * 4, cudaMemcpyHostToDevice), "upload vector");
}

int rl_cu_model_new(const rl_cu_model_cfg *cfg, const rl_cu_model_types *ty, rl_cu_model **out, char *err,
                    size_t errlen)
{
    rl_cu_model_cfg c = *cfg;
    if (c.max_prefill == 0)
        c.max_prefill = 512;
    if (c.n_slots == 0)
        c.n_slots = 1;
    if (c.n_head && c.max_prefill * c.n_head > 65536) /* attention arrival counters */
        c.max_prefill = 65536 / c.n_head;
    if (!c.n_layer || !c.n_embd || !c.n_head || !c.n_head_kv || c.n_head % c.n_head_kv || !c.head_dim ||
        c.head_dim > 256 || c.head_dim % 2 || !c.n_ff || !c.n_vocab || !c.n_ctx || c.n_rot > c.head_dim) {
        snprintf(err, errlen, "cuda: unsupported model shape");
        return -EINVAL;
    }
    if (c.n_rot == 0)
        c.n_rot = c.head_dim;
    int64_t qd = (int64_t)c.n_head * c.head_dim, kvd = (int64_t)c.n_head_kv * c.head_dim;
    int64_t qkvd = qd + 2 * kvd;
    /* Plan */
    uint64_t wb = rl_cu_mat_bytes(ty->embd, c.n_vocab, c.n_embd) + rl_cu_mat_bytes(ty->output, c.n_vocab, c.n_embd);
    uint64_t lb = rl_cu_mat_bytes(ty->qkv, qkvd, c.n_embd) + rl_cu_mat_bytes(ty->o, c.n_embd, qd) +
                  rl_cu_mat_bytes(ty->gu, 2 * (int64_t)c.n_ff, c.n_embd) + rl_cu_mat_bytes(ty->down, c.n_embd, c.n_ff);
    if (!rl_cu_mat_bytes(ty->embd, c.n_vocab, c.n_embd) || !rl_cu_mat_bytes(ty->output, c.n_vocab, c.n_embd) ||
        !rl_cu_mat_bytes(ty->qkv, qkvd, c.n_embd) || !rl_cu_mat_bytes(ty->o, c.n_embd, qd) ||
        !rl_cu_mat_bytes(ty->gu, 2 * (int64_t)c.n_ff, c.n_embd) || !rl_cu_mat_bytes(ty->down, c.n_embd, c.n_ff)) {
        snprintf(err, errlen, "cuda: a weight type or shape has no CUDA kernel");
        return -ENOTSUP;
    }
    wb += lb * c.n_layer + (uint64_t)c.n_embd * 4 * (2 * c.n_layer + 1) + (c.qkv_bias ? qkvd * 4 * c.n_layer : 0);
    uint64_t kvb = 2ull * c.n_layer * c.n_slots * c.n_ctx * kvd * 2;
    uint32_t rows = c.max_prefill > RL_CU_MAX_BATCH ? c.max_prefill : RL_CU_MAX_BATCH;
    int nsplit_max = rl_cu_attn_splits(1, c.n_head);
    size_t attn_scr = rl_cu_attn_scratch_bytes(rows, c.n_head, c.head_dim, 1);
    size_t attn_scr2 = rl_cu_attn_scratch_bytes(RL_CU_MAX_BATCH, c.n_head, c.head_dim, nsplit_max);
    if (attn_scr2 > attn_scr)
        attn_scr = attn_scr2;
    int64_t maxw = 0, wm[4] = {qkvd * c.n_embd, (int64_t)c.n_embd * qd, 2 * (int64_t)c.n_ff * c.n_embd,
                               (int64_t)c.n_embd * c.n_ff};
    for (int i = 0; i < 4; i++)
        maxw = wm[i] > maxw ? wm[i] : maxw;
    int64_t xh_n = c.n_ff > c.n_embd ? c.n_ff : c.n_embd;
    if (qd > xh_n)
        xh_n = qd;
    uint64_t sb = (uint64_t)rows * c.n_embd * 4 + act_bytes(c.n_embd, rows, true) + act_bytes(qd, rows, true) +
                  act_bytes(c.n_ff, rows, true) + (uint64_t)rows * (qkvd + qd + 2 * (int64_t)c.n_ff) * 4 +
                  act_bytes(c.n_vocab, RL_CU_MAX_BATCH, false) + attn_scr + (uint64_t)rows * 16 +
                  (uint64_t)rows * xh_n * 2 + (uint64_t)maxw * 2 * 2; /* 2 GEMM staging buffers */
    size_t free_b = 0, total_b = 0;
    if (rl_cu_check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo")) {
        snprintf(err, errlen, "cuda: %s", rl_cu_last_error());
        return -EIO;
    }
    fprintf(stderr,
            "cuda memory plan: weights %.1f MiB, KV cache %.1f MiB (%u slots x %u positions, fp16), "
            "scratch %.1f MiB; total %.1f MiB of %.1f MiB free\n",
            wb / MB, kvb / MB, c.n_slots, c.n_ctx, sb / MB, (wb + kvb + sb) / MB, free_b / MB);
    uint64_t need = wb + kvb + sb + (256ull << 20); /* cuBLAS workspace and graphs */
    if (need > free_b) {
        snprintf(err, errlen,
                 "cuda: model does not fit: needs %.0f MiB (weights %.0f, KV %.0f, scratch %.0f) but %.0f MiB free; "
                 "lower the context or slots",
                 need / MB, wb / MB, kvb / MB, sb / MB, free_b / MB);
        return -ENOMEM;
    }
    rl_cu_model *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->c = c;
    m->t = *ty;
    m->max_rows = rows;
    m->use_graphs = true;
    m->rope = (rl_cu_rope){.n_head = (int)c.n_head, .n_head_kv = (int)c.n_head_kv, .head_dim = (int)c.head_dim,
                           .n_rot = (int)c.n_rot, .freq_base = c.rope_base, .neox = c.rope_neox};
    m->kv_bytes = kvb;
    m->scratch_bytes = sb;
    int rc = 0;
    m->layers = calloc(c.n_layer, sizeof *m->layers);
    m->kc = calloc(c.n_layer, sizeof *m->kc);
    m->vc = calloc(c.n_layer, sizeof *m->vc);
    if (!m->layers || !m->kc || !m->vc) {
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = rl_cu_check(cudaStreamCreateWithFlags(&m->s, cudaStreamNonBlocking), "stream")))
        goto fail;
    if ((rc = rl_cu_blas_create(&m->blas, m->s)) || (rc = rl_cu_gemm_reserve(m->blas, maxw, 2)))
        goto fail;
    if ((rc = rl_cu_mat_alloc(&m->tok_embd, ty->embd, c.n_vocab, c.n_embd)) ||
        (rc = rl_cu_mat_alloc(&m->output, ty->output, c.n_vocab, c.n_embd)) ||
        (rc = dalloc((void **)&m->output_norm, c.n_embd * 4, "norm")))
        goto fail;
    for (uint32_t l = 0; l < c.n_layer; l++) {
        rl_cu_layer *L = &m->layers[l];
        size_t kvl = (size_t)c.n_slots * c.n_ctx * kvd * 2;
        if ((rc = rl_cu_mat_alloc(&L->wqkv, ty->qkv, qkvd, c.n_embd)) ||
            (rc = rl_cu_mat_alloc(&L->wo, ty->o, c.n_embd, qd)) ||
            (rc = rl_cu_mat_alloc(&L->wgu, ty->gu, 2 * (int64_t)c.n_ff, c.n_embd)) ||
            (rc = rl_cu_mat_alloc(&L->wdown, ty->down, c.n_embd, c.n_ff)) ||
            (rc = dalloc((void **)&L->attn_norm, c.n_embd * 4, "norm")) ||
            (rc = dalloc((void **)&L->ffn_norm, c.n_embd * 4, "norm")) ||
            (c.qkv_bias && (rc = dalloc((void **)&L->bqkv, qkvd * 4, "bias"))) ||
            (rc = dalloc(&m->kc[l], kvl, "KV cache")) || (rc = dalloc(&m->vc[l], kvl, "KV cache")))
            goto fail;
        m->weight_bytes += L->wqkv.bytes + L->wo.bytes + L->wgu.bytes + L->wdown.bytes;
    }
    m->weight_bytes += m->tok_embd.bytes + m->output.bytes;
    bool q_attn = q8_type(ty->o), q_ffn = q8_type(ty->down);
    bool q_xn = q8_type(ty->qkv) || q8_type(ty->gu) || q8_type(ty->output);
    if ((rc = dalloc((void **)&m->x, (size_t)rows * c.n_embd * 4, "x")) ||
        (rc = alloc_act(&m->xn, c.n_embd, rows, q_xn)) || (rc = alloc_act(&m->attn, qd, rows, q_attn)) ||
        (rc = alloc_act(&m->ffn, c.n_ff, rows, q_ffn)) ||
        (rc = dalloc((void **)&m->qkv, (size_t)rows * qkvd * 4, "qkv")) ||
        (rc = dalloc((void **)&m->q, (size_t)rows * qd * 4, "q")) ||
        (rc = dalloc((void **)&m->gu, (size_t)rows * 2 * c.n_ff * 4, "gu")) ||
        (rc = alloc_act(&m->logits, c.n_vocab, RL_CU_MAX_BATCH, false)) ||
        (rc = dalloc(&m->attn_scratch, attn_scr, "attention scratch")) ||
        (rc = rl_cu_check(cudaMemset(m->attn_scratch, 0, attn_scr), "zero attention scratch")) ||
        (rc = dalloc((void **)&m->d_tok, rows * 4, "ids")) || (rc = dalloc((void **)&m->d_pos, rows * 4, "ids")) ||
        (rc = dalloc((void **)&m->d_slot, rows * 4, "ids")) || (rc = dalloc((void **)&m->d_out, rows * 4, "ids")) ||
        (rc = dalloc(&m->xh, (size_t)rows * xh_n * 2, "fp16 activations")))
        goto fail;
    if ((rc = rl_cu_check(cudaMallocHost((void **)&m->h_in, 3 * RL_CU_MAX_BATCH * 4), "pinned")) ||
        (rc = rl_cu_check(cudaMallocHost((void **)&m->h_out, RL_CU_MAX_BATCH * 4), "pinned")))
        goto fail;
    *out = m;
    return 0;
fail:
    snprintf(err, errlen, "cuda: allocation failed: %s", rl_cu_last_error());
    rl_cu_model_free(m);
    return rc ? rc : -ENOMEM;
}

void rl_cu_model_free(rl_cu_model *m)
{
    if (!m)
        return;
    if (m->s)
        cudaStreamSynchronize(m->s);
    for (int b = 0; b <= RL_CU_MAX_BATCH; b++)
        if (m->graph[b])
            cudaGraphExecDestroy(m->graph[b]);
    for (uint32_t l = 0; m->layers && l < m->c.n_layer; l++) {
        rl_cu_layer *L = &m->layers[l];
        rl_cu_mat_free(&L->wqkv);
        rl_cu_mat_free(&L->wo);
        rl_cu_mat_free(&L->wgu);
        rl_cu_mat_free(&L->wdown);
        cudaFree(L->attn_norm);
        cudaFree(L->ffn_norm);
        cudaFree(L->bqkv);
        if (m->kc)
            cudaFree(m->kc[l]);
        if (m->vc)
            cudaFree(m->vc[l]);
    }
    free(m->layers);
    free(m->kc);
    free(m->vc);
    rl_cu_mat_free(&m->tok_embd);
    rl_cu_mat_free(&m->output);
    cudaFree(m->output_norm);
    cudaFree(m->inv_freq);
    cudaFree(m->x);
    free_act(&m->xn);
    free_act(&m->attn);
    free_act(&m->ffn);
    free_act(&m->logits);
    cudaFree(m->qkv);
    cudaFree(m->q);
    cudaFree(m->gu);
    cudaFree(m->attn_scratch);
    cudaFree(m->d_tok);
    cudaFree(m->d_pos);
    cudaFree(m->d_slot);
    cudaFree(m->d_out);
    cudaFree(m->xh);
    cudaFreeHost(m->h_in);
    cudaFreeHost(m->h_out);
    rl_cu_blas_destroy(m->blas);
    if (m->s)
        cudaStreamDestroy(m->s);
    free(m);
}

rl_cu_layer *rl_cu_model_layer(rl_cu_model *m, uint32_t il) { return il < m->c.n_layer ? &m->layers[il] : NULL; }
rl_cu_mat *rl_cu_model_tok_embd(rl_cu_model *m) { return &m->tok_embd; }
rl_cu_mat *rl_cu_model_output(rl_cu_model *m) { return &m->output; }
float *rl_cu_model_output_norm(rl_cu_model *m) { return m->output_norm; }
uint64_t rl_cu_model_weight_bytes(const rl_cu_model *m) { return m->weight_bytes; }
uint64_t rl_cu_model_kv_bytes(const rl_cu_model *m) { return m->kv_bytes; }
void rl_cu_model_set_graphs(rl_cu_model *m, bool on) { m->use_graphs = on; }

int rl_cu_model_set_rope_freqs(rl_cu_model *m, const float *inv_freq)
{
    if (!m->inv_freq && dalloc((void **)&m->inv_freq, m->c.n_rot / 2 * 4, "rope table"))
        return -ENOMEM;
    m->rope.inv_freq = m->inv_freq;
    for (int b = 0; b <= RL_CU_MAX_BATCH; b++) /* graphs hold the old parameters */
        if (m->graph[b]) {
            cudaGraphExecDestroy(m->graph[b]);
            m->graph[b] = NULL;
        }
    return rl_cu_upload_f32(m->inv_freq, inv_freq, m->c.n_rot / 2);
}

static int fill_ones(float *d, size_t n, cudaStream_t s)
{
    float *h = malloc(n * 4);
    if (!h)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        h[i] = 1.0f;
    int rc = rl_cu_check(cudaMemcpy(d, h, n * 4, cudaMemcpyHostToDevice), "fill");
    free(h);
    (void)s;
    return rc;
}

int rl_cu_model_fill_random(rl_cu_model *m, uint64_t seed)
{
    int rc = 0;
    rc = rc ? rc : rl_cu_mat_fill_random(&m->tok_embd, seed + 1, m->s);
    rc = rc ? rc : rl_cu_mat_fill_random(&m->output, seed + 2, m->s);
    rc = rc ? rc : fill_ones(m->output_norm, m->c.n_embd, m->s);
    for (uint32_t l = 0; l < m->c.n_layer && !rc; l++) {
        rl_cu_layer *L = &m->layers[l];
        uint64_t b = seed + 16 * (l + 1);
        rc = rc ? rc : rl_cu_mat_fill_random(&L->wqkv, b + 1, m->s);
        rc = rc ? rc : rl_cu_mat_fill_random(&L->wo, b + 2, m->s);
        rc = rc ? rc : rl_cu_mat_fill_random(&L->wgu, b + 3, m->s);
        rc = rc ? rc : rl_cu_mat_fill_random(&L->wdown, b + 4, m->s);
        rc = rc ? rc : fill_ones(L->attn_norm, m->c.n_embd, m->s);
        rc = rc ? rc : fill_ones(L->ffn_norm, m->c.n_embd, m->s);
        if (L->bqkv && !rc)
            rc = rl_cu_check(cudaMemsetAsync(L->bqkv, 0, L->wqkv.rows * 4, m->s), "bias");
    }
    return rc ? rc : rl_cu_check(cudaStreamSynchronize(m->s), "fill_random");
}

#define TRY(x)                 \
    do {                       \
        int rc_ = (x);         \
        if (rc_)               \
            return rc_;        \
    } while (0)

/* Layers of the decode step for n sequences (ids already in d_tok/d_pos/d_slot). */
static int enqueue_decode(rl_cu_model *m, int n)
{
    const rl_cu_model_cfg *c = &m->c;
    cudaStream_t s = m->s;
    rl_cu_act xres = {.f = m->x, .n = c->n_embd};
    rl_cu_act qkv = {.f = m->qkv, .n = m->layers[0].wqkv.rows};
    int n_split = rl_cu_attn_splits(n, c->n_head);
    TRY(rl_cu_mat_get_rows(&m->tok_embd, m->d_tok, n, m->x, s));
    for (uint32_t l = 0; l < c->n_layer; l++) {
        rl_cu_layer *L = &m->layers[l];
        TRY(rl_cu_rmsnorm(m->x, L->attn_norm, c->rms_eps, c->n_embd, n, &m->xn, s));
        TRY(rl_cu_matvec(&L->wqkv, &m->xn, n, RL_CU_MV_STORE, &qkv, s));
        if (L->bqkv)
            TRY(rl_cu_add_bias(m->qkv, L->bqkv, qkv.n, n, s));
        TRY(rl_cu_rope_kv(m->qkv, n, m->d_pos, m->d_slot, &m->rope, c->n_ctx, m->q, m->kc[l], m->vc[l], s));
        TRY(rl_cu_attn_decode(m->q, m->kc[l], m->vc[l], m->d_pos, m->d_slot, n, &m->rope, c->n_ctx, n_split,
                              m->attn_scratch, &m->attn, s));
        if (m->attn.q && c->head_dim % 32)
            TRY(rl_cu_quantize(&m->attn, n, s));
        TRY(rl_cu_matvec(&L->wo, &m->attn, n, RL_CU_MV_ADD, &xres, s));
        TRY(rl_cu_rmsnorm(m->x, L->ffn_norm, c->rms_eps, c->n_embd, n, &m->xn, s));
        TRY(rl_cu_matvec(&L->wgu, &m->xn, n, RL_CU_MV_GLU, &m->ffn, s));
        TRY(rl_cu_matvec(&L->wdown, &m->ffn, n, RL_CU_MV_ADD, &xres, s));
    }
    TRY(rl_cu_rmsnorm(m->x, m->output_norm, c->rms_eps, c->n_embd, n, &m->xn, s));
    TRY(rl_cu_matvec(&m->output, &m->xn, n, RL_CU_MV_STORE, &m->logits, s));
    return rl_cu_argmax(m->logits.f, c->n_vocab, n, m->d_out, s);
}

static int check_ids(const rl_cu_model *m, int n, const int32_t *tokens, const int32_t *pos, const int32_t *slot)
{
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= m->c.n_vocab || pos[i] < 0 || (uint32_t)pos[i] >= m->c.n_ctx ||
            slot[i] < 0 || (uint32_t)slot[i] >= m->c.n_slots)
            return -EINVAL;
    return 0;
}

int rl_cu_model_decode(rl_cu_model *m, int n, const int32_t *tokens, const int32_t *pos, const int32_t *slot,
                       int32_t *out_tok, float *logits)
{
    if (n < 1 || n > RL_CU_MAX_BATCH)
        return -EINVAL;
    TRY(check_ids(m, n, tokens, pos, slot));
    cudaStream_t s = m->s;
    memcpy(m->h_in, tokens, n * 4);
    memcpy(m->h_in + RL_CU_MAX_BATCH, pos, n * 4);
    memcpy(m->h_in + 2 * RL_CU_MAX_BATCH, slot, n * 4);
    TRY(rl_cu_check(cudaMemcpyAsync(m->d_tok, m->h_in, n * 4, cudaMemcpyHostToDevice, s), "ids"));
    TRY(rl_cu_check(cudaMemcpyAsync(m->d_pos, m->h_in + RL_CU_MAX_BATCH, n * 4, cudaMemcpyHostToDevice, s), "ids"));
    TRY(rl_cu_check(cudaMemcpyAsync(m->d_slot, m->h_in + 2 * RL_CU_MAX_BATCH, n * 4, cudaMemcpyHostToDevice, s), "ids"));
    if (m->use_graphs) {
        if (!m->graph[n]) {
            cudaGraph_t g;
            TRY(rl_cu_check(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "capture"));
            int rc = enqueue_decode(m, n);
            cudaError_t e = cudaStreamEndCapture(s, &g);
            if (rc)
                return rc;
            TRY(rl_cu_check(e, "end capture"));
            e = cudaGraphInstantiate(&m->graph[n], g, 0);
            cudaGraphDestroy(g);
            TRY(rl_cu_check(e, "graph instantiate"));
        }
        TRY(rl_cu_check(cudaGraphLaunch(m->graph[n], s), "graph launch"));
    } else {
        TRY(enqueue_decode(m, n));
    }
    TRY(rl_cu_check(cudaMemcpyAsync(m->h_out, m->d_out, n * 4, cudaMemcpyDeviceToHost, s), "tokens out"));
    if (logits)
        TRY(rl_cu_check(cudaMemcpyAsync(logits, m->logits.f, (size_t)n * m->c.n_vocab * 4, cudaMemcpyDeviceToHost, s),
                        "logits out"));
    TRY(rl_cu_check(cudaStreamSynchronize(s), "decode"));
    memcpy(out_tok, m->h_out, n * 4);
    return 0;
}

/* Prefill weights in GEMM order: layer k/4, matrix k%4 (qkv, o, gate/up, down). */
static const rl_cu_mat *pf_w(rl_cu_model *m, uint32_t k)
{
    rl_cu_layer *L = &m->layers[k / 4];
    return k % 4 == 0 ? &L->wqkv : k % 4 == 1 ? &L->wo : k % 4 == 2 ? &L->wgu : &L->wdown;
}

/* Stage the next weights into every free staging buffer (-EBUSY: all taken). */
static int pf_fill(rl_cu_model *m, uint32_t *next)
{
    while (*next < 4 * m->c.n_layer) {
        int rc = rl_cu_gemm_stage(m->blas, pf_w(m, *next));
        if (rc == -EBUSY)
            return 0;
        TRY(rc);
        ++*next;
    }
    return 0;
}

/* GEMM with staged weight k, then stage ahead into the buffer it freed. */
static int pf_gemm(rl_cu_model *m, uint32_t *next, uint32_t k, const void *xh, int n, float *y, bool acc)
{
    TRY(rl_cu_gemm_staged(m->blas, pf_w(m, k), xh, n, y, acc));
    return pf_fill(m, next);
}

int rl_cu_model_prefill(rl_cu_model *m, int32_t slot, int32_t pos0, const int32_t *tokens, int n_tok,
                        int32_t *out_tok, float *logits)
{
    const rl_cu_model_cfg *c = &m->c;
    if (n_tok < 1 || (uint32_t)n_tok > c->max_prefill || slot < 0 || (uint32_t)slot >= c->n_slots || pos0 < 0 ||
        (uint64_t)pos0 + n_tok > c->n_ctx)
        return -EINVAL;
    for (int i = 0; i < n_tok; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= c->n_vocab)
            return -EINVAL;
    cudaStream_t s = m->s;
    int32_t *ids = malloc((size_t)n_tok * 12);
    if (!ids)
        return -ENOMEM;
    for (int i = 0; i < n_tok; i++) {
        ids[i] = tokens[i];
        ids[n_tok + i] = pos0 + i;
        ids[2 * n_tok + i] = slot;
    }
    int rc = rl_cu_check(cudaMemcpyAsync(m->d_tok, ids, n_tok * 4, cudaMemcpyHostToDevice, s), "ids");
    rc = rc ? rc : rl_cu_check(cudaMemcpyAsync(m->d_pos, ids + n_tok, n_tok * 4, cudaMemcpyHostToDevice, s), "ids");
    rc = rc ? rc : rl_cu_check(cudaMemcpyAsync(m->d_slot, ids + 2 * n_tok, n_tok * 4, cudaMemcpyHostToDevice, s), "ids");
    rc = rc ? rc : rl_cu_check(cudaStreamSynchronize(s), "ids"); /* ids is freed below */
    free(ids);
    TRY(rc);
    int64_t E = c->n_embd, F = c->n_ff;
    rl_cu_act attn = m->attn;
    attn.q = NULL; /* GEMM inputs are fp16, not int8 */
    TRY(rl_cu_mat_get_rows(&m->tok_embd, m->d_tok, n_tok, m->x, s));
    /* Each weight is dequantized on the GEMM handle's side stream while the
     * GEMMs before it run (staged, as many ahead as there are buffers); norms
     * and SwiGLU write the fp16 GEMM inputs directly; tiled flash attention. */
    uint32_t next = 0;
    rl_cu_gemm_reset(m->blas);
    TRY(pf_fill(m, &next));
    for (uint32_t l = 0; l < c->n_layer; l++) {
        rl_cu_layer *L = &m->layers[l];
        TRY(rl_cu_rmsnorm_f16(m->x, L->attn_norm, c->rms_eps, E, n_tok, m->xh, s));
        TRY(pf_gemm(m, &next, 4 * l, m->xh, n_tok, m->qkv, false));
        if (L->bqkv)
            TRY(rl_cu_add_bias(m->qkv, L->bqkv, L->wqkv.rows, n_tok, s));
        TRY(rl_cu_rope_kv(m->qkv, n_tok, m->d_pos, m->d_slot, &m->rope, c->n_ctx, m->q, m->kc[l], m->vc[l], s));
        TRY(rl_cu_attn_prefill(m->q, n_tok, pos0, slot, &m->rope, m->kc[l], m->vc[l], c->n_ctx, &attn, s));
        TRY(rl_cu_f32_to_f16(attn.f, m->xh, n_tok * attn.n, s));
        TRY(pf_gemm(m, &next, 4 * l + 1, m->xh, n_tok, m->x, true));
        TRY(rl_cu_rmsnorm_f16(m->x, L->ffn_norm, c->rms_eps, E, n_tok, m->xh, s));
        TRY(pf_gemm(m, &next, 4 * l + 2, m->xh, n_tok, m->gu, false));
        TRY(rl_cu_swiglu_f16(m->gu, F, n_tok, m->xh, s));
        TRY(pf_gemm(m, &next, 4 * l + 3, m->xh, n_tok, m->x, true));
    }
    /* Logits of the last token only, through the decode-path kernels. */
    TRY(rl_cu_rmsnorm(m->x + (int64_t)(n_tok - 1) * E, m->output_norm, c->rms_eps, E, 1, &m->xn, s));
    TRY(rl_cu_matvec(&m->output, &m->xn, 1, RL_CU_MV_STORE, &m->logits, s));
    TRY(rl_cu_argmax(m->logits.f, c->n_vocab, 1, m->d_out, s));
    TRY(rl_cu_check(cudaMemcpyAsync(m->h_out, m->d_out, 4, cudaMemcpyDeviceToHost, s), "token out"));
    if (logits)
        TRY(rl_cu_check(cudaMemcpyAsync(logits, m->logits.f, (size_t)c->n_vocab * 4, cudaMemcpyDeviceToHost, s),
                        "logits out"));
    TRY(rl_cu_check(cudaStreamSynchronize(s), "prefill"));
    *out_tok = m->h_out[0];
    return 0;
}

/* ---- profile: each op of the decode step alone, as a graph of R repeats ---- */
enum { P_EMBD, P_NORM, P_QKV, P_ROPE, P_ATTN, P_O, P_GU, P_DOWN, P_OUT, P_ARGMAX, P_N };
static const char *const p_names[P_N] = {"embed", "rmsnorm", "qkv matvec", "rope+kv", "attention",
                                         "o matvec+add", "gate/up glu", "down matvec+add", "output matvec", "argmax"};

static int enqueue_op(rl_cu_model *m, int op, int n, uint32_t l)
{
    const rl_cu_model_cfg *c = &m->c;
    rl_cu_layer *L = &m->layers[l];
    cudaStream_t s = m->s;
    rl_cu_act xres = {.f = m->x, .n = c->n_embd};
    rl_cu_act qkv = {.f = m->qkv, .n = L->wqkv.rows};
    switch (op) {
    case P_EMBD: return rl_cu_mat_get_rows(&m->tok_embd, m->d_tok, n, m->x, s);
    case P_NORM: return rl_cu_rmsnorm(m->x, L->attn_norm, c->rms_eps, c->n_embd, n, &m->xn, s);
    case P_QKV: return rl_cu_matvec(&L->wqkv, &m->xn, n, RL_CU_MV_STORE, &qkv, s);
    case P_ROPE: return rl_cu_rope_kv(m->qkv, n, m->d_pos, m->d_slot, &m->rope, c->n_ctx, m->q, m->kc[l], m->vc[l], s);
    case P_ATTN:
        return rl_cu_attn_decode(m->q, m->kc[l], m->vc[l], m->d_pos, m->d_slot, n, &m->rope, c->n_ctx,
                                 rl_cu_attn_splits(n, c->n_head), m->attn_scratch, &m->attn, s);
    case P_O: return rl_cu_matvec(&L->wo, &m->attn, n, RL_CU_MV_ADD, &xres, s);
    case P_GU: return rl_cu_matvec(&L->wgu, &m->xn, n, RL_CU_MV_GLU, &m->ffn, s);
    case P_DOWN: return rl_cu_matvec(&L->wdown, &m->ffn, n, RL_CU_MV_ADD, &xres, s);
    case P_OUT: return rl_cu_matvec(&m->output, &m->xn, n, RL_CU_MV_STORE, &m->logits, s);
    default: return rl_cu_argmax(m->logits.f, c->n_vocab, n, m->d_out, s);
    }
}

int rl_cu_model_profile(rl_cu_model *m, int n, int32_t pos, FILE *out)
{
    if (n < 1 || n > RL_CU_MAX_BATCH || pos < 0 || (uint32_t)pos >= m->c.n_ctx)
        return -EINVAL;
    int32_t ids[3 * RL_CU_MAX_BATCH];
    for (int i = 0; i < n; i++) {
        ids[i] = i;
        ids[RL_CU_MAX_BATCH + i] = pos;
        ids[2 * RL_CU_MAX_BATCH + i] = i % (int)m->c.n_slots;
    }
    TRY(rl_cu_check(cudaMemcpy(m->d_tok, ids, n * 4, cudaMemcpyHostToDevice), "ids"));
    TRY(rl_cu_check(cudaMemcpy(m->d_pos, ids + RL_CU_MAX_BATCH, n * 4, cudaMemcpyHostToDevice), "ids"));
    TRY(rl_cu_check(cudaMemcpy(m->d_slot, ids + 2 * RL_CU_MAX_BATCH, n * 4, cudaMemcpyHostToDevice), "ids"));
    const int R = 64;
    double us[P_N];
    cudaEvent_t e0, e1;
    TRY(rl_cu_check(cudaEventCreate(&e0), "event"));
    TRY(rl_cu_check(cudaEventCreate(&e1), "event"));
    for (int op = 0; op < P_N; op++) {
        cudaGraph_t g;
        cudaGraphExec_t ge;
        TRY(rl_cu_check(cudaStreamBeginCapture(m->s, cudaStreamCaptureModeThreadLocal), "capture"));
        int rc = 0;
        for (int r = 0; r < R && !rc; r++)
            rc = enqueue_op(m, op, n, (uint32_t)r % m->c.n_layer); /* cycle layers: weights come from DRAM */
        cudaError_t e = cudaStreamEndCapture(m->s, &g);
        TRY(rc);
        TRY(rl_cu_check(e, "end capture"));
        e = cudaGraphInstantiate(&ge, g, 0);
        cudaGraphDestroy(g);
        TRY(rl_cu_check(e, "instantiate"));
        float best = 1e30f;
        for (int it = 0; it < 4; it++) {
            cudaEventRecord(e0, m->s);
            cudaGraphLaunch(ge, m->s);
            cudaEventRecord(e1, m->s);
            TRY(rl_cu_check(cudaEventSynchronize(e1), "profile"));
            float ms;
            cudaEventElapsedTime(&ms, e0, e1);
            if (it > 0 && ms < best)
                best = ms;
        }
        cudaGraphExecDestroy(ge);
        us[op] = best * 1e3 / R;
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    double per_layer = 2 * us[P_NORM] + us[P_QKV] + us[P_ROPE] + us[P_ATTN] + us[P_O] + us[P_GU] + us[P_DOWN];
    double total = us[P_EMBD] + m->c.n_layer * per_layer + us[P_NORM] + us[P_OUT] + us[P_ARGMAX];
    fprintf(out, "profile: batch %d, position %d (each op alone, graph of %d, median-free best of 3)\n", n, pos, R);
    for (int op = 0; op < P_N; op++) {
        int times = op == P_EMBD || op == P_OUT || op == P_ARGMAX ? 1 : (int)m->c.n_layer * (op == P_NORM ? 2 : 1);
        if (op == P_NORM)
            times++;
        fprintf(out, "  %-16s %8.2f us x %3d = %8.1f us (%4.1f%%)\n", p_names[op], us[op], times, us[op] * times,
                100.0 * us[op] * times / total);
    }
    fprintf(out, "  sum %.1f us/token -> %.0f tok/s\n", total, 1e6 / total * n);
    return 0;
}
