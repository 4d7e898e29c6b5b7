/* rl_cu_step.c - the GPU model's forward step over a ragged batch of tokens:
 * up to max_batch tokens replay a CUDA graph captured once per token-count
 * bucket (matrix-vector / batched kernels, RoPE+KV write and attention through
 * the block tables); more go through cuBLAS GEMMs (one sequence on
 * rl_cu_mvb: rl_cu_step_mvb.c). Also the slot API. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rl_cu_env.h"
#include "rl_cu_layer.h"
#include "rl_cu_model_impl.h"

const int rl_cu_buckets[RL_CU_N_BUCKETS] = {1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 32, 48, 64};

int rl_cu_model_product(rl_cu_model *m, const rl_cu_mat *w, const rl_cu_act *x, int n, int mode, rl_cu_act *y)
{
    return rl_cu_product(w, x, n, mode, y, m->s);
}

/* A model's form switch (norm_defer): set, dropping the graphs captured with
 * the other form (read from the environment the first time: rl_env_switch). */
static void flag_set(rl_cu_model *m, int *flag, bool on)
{
    if (*flag != (int)on)
        rl_cu_model_drop_graphs(m);
    *flag = on;
}

void rl_cu_model_set_norm_defer(rl_cu_model *m, bool on)
{
    flag_set(m, &m->norm_defer, on);
}

/* Whether a step of n tokens defers its RMSNorms into the residual products
 * (rl_cu_act.ss: no norm kernel but the first): every product that reads the
 * normed rows must be a matvec at n, and both residual products of every
 * layer must carry the next norm (rl_cu_matvec_add_norm). */
bool rl_cu_step_norm_deferred(rl_cu_model *m, int n)
{
    /* One row only: at 2 and 3 rows the 7B Q4_0 step measured 1% slower
     * (737 against 745 tok/s, 977-990 against 991; H100). */
    if (n != 1 || !rl_env_switch("RL_CU_NORM_DEFER", true, &m->norm_defer) || !m->xss ||
        !rl_cu_product_is_matvec(&m->output, m->xn.h != NULL, n))
        return false;
    for (uint32_t l = 0; l < m->c.n_layer; l++) {
        const rl_cu_layer *L = &m->layers[l];
        const rl_cu_mat *in[5] = {&L->wqkv, &L->wk, &L->wv, &L->wgu, &L->wup};
        for (int i = 0; i < 5; i++)
            if (in[i]->q && !rl_cu_product_is_matvec(in[i], m->xn.h != NULL, n))
                return false;
        if (!rl_cu_product_is_matvec(&L->wo, m->attn.h != NULL, n) || !rl_cu_matvec_norm_ok(&L->wo) ||
            !rl_cu_product_is_matvec(&L->wdown, m->ffn.h != NULL, n) || !rl_cu_matvec_norm_ok(&L->wdown))
            return false;
    }
    return true;
}

/* The layers of a step of n tokens on the matrix-vector path (graph-captured):
 * ids in d_in, block tables in d_bt; logits and argmax for all n rows. With
 * the norms deferred, each residual product writes the next norm's input and
 * only the first norm is a kernel. */
static int enqueue_small(rl_cu_model *m, int n)
{
    if (rl_cu_model_mvb_step(m, n))
        return rl_cu_step_mvb(m);
    const rl_cu_model_cfg *c = &m->c;
    cudaStream_t s = m->s;
    rl_cu_act xres = {.f = m->x, .n = c->n_embd}, xn = m->xn;
    bool defer = rl_cu_step_norm_deferred(m, n);
    if (defer)
        xn.ss = m->xss, xn.eps = c->rms_eps;
    int n_split = rl_cu_attn_splits(n, c->n_head);
    const int32_t *pos = rl_cu_din(m, RL_CU_IN_POS), *row = rl_cu_din(m, RL_CU_IN_ROW);
    RL_CU_TRY(rl_cu_mat_get_rows(&m->tok_embd, rl_cu_din(m, RL_CU_IN_TOK), n, m->x, s));
    for (uint32_t l = 0; l < c->n_layer; l++) {
        rl_cu_layer *L = &m->layers[l];
        if (!defer || l == 0)
            RL_CU_TRY(rl_cu_rmsnorm(m->x, L->attn_norm, c->rms_eps, c->n_embd, n, &xn, s));
        RL_CU_TRY(rl_cu_layer_qkv(c, L, &xn, n, m->qkv, s));
        RL_CU_TRY(rl_cu_rope_kv_paged(m->qkv, n, pos, row, &m->rope, &m->kv, l, m->q, s));
        RL_CU_TRY(rl_cu_attn_paged(m->q, pos, row, n, &m->rope, &m->kv, l, n_split, m->attn_scratch, &m->attn, s));
        if (m->attn.q && c->head_dim % 32)
            RL_CU_TRY(rl_cu_quantize(&m->attn, n, s));
        if (defer) {
            RL_CU_TRY(rl_cu_matvec_add_norm(&L->wo, &m->attn, n, &xres, L->ffn_norm, &xn, s));
        } else {
            RL_CU_TRY(rl_cu_model_product(m, &L->wo, &m->attn, n, RL_CU_MV_ADD, &xres));
            RL_CU_TRY(rl_cu_rmsnorm(m->x, L->ffn_norm, c->rms_eps, c->n_embd, n, &xn, s));
        }
        RL_CU_TRY(rl_cu_layer_glu(c, L, &xn, n, m->gu, &m->ffn, s));
        if (defer)
            RL_CU_TRY(rl_cu_matvec_add_norm(&L->wdown, &m->ffn, n, &xres, rl_cu_next_norm(m, l), &xn, s));
        else
            RL_CU_TRY(rl_cu_model_product(m, &L->wdown, &m->ffn, n, RL_CU_MV_ADD, &xres));
    }
    if (!defer)
        RL_CU_TRY(rl_cu_rmsnorm(m->x, m->output_norm, c->rms_eps, c->n_embd, n, &xn, s));
    RL_CU_TRY(rl_cu_model_product(m, &m->output, &xn, n, RL_CU_MV_STORE, &m->logits));
    return rl_cu_argmax(m->logits.f, c->n_vocab, n, m->d_out, s);
}

/* ---- the large path: cuBLAS GEMMs over dequantized weights ----
 * Staged: while one GEMM runs, the next weights are dequantized on a side
 * stream (rl_cu_gemm_stage). The staged weights, in GEMM order, are per layer
 * Q|K|V and gate|up when fused (split mixed-type parts go through
 * rl_cu_layer_gemm_* and their own scratch), O and down always. */
static bool staged_qkv(const rl_cu_layer *L)
{
    const rl_cu_mat *p[3];
    return rl_cu_layer_qkv_parts(L, p) == 1;
}
static bool staged_gu(const rl_cu_layer *L) { return !L->wup.q; }

static const rl_cu_mat *pf_w(rl_cu_model *m, uint32_t k)
{
    rl_cu_layer *L = &m->layers[k / 4];
    return k % 4 == 0 ? (staged_qkv(L) ? &L->wqkv : NULL) : k % 4 == 1 ? &L->wo
           : k % 4 == 2 ? (staged_gu(L) ? &L->wgu : NULL) : &L->wdown;
}

/* Stage the next weights into every free staging buffer. */
static int pf_fill(rl_cu_model *m, uint32_t *next)
{
    for (; *next < 4 * m->c.n_layer; ++*next) {
        const rl_cu_mat *w = pf_w(m, *next);
        if (!w)
            continue;
        int rc = rl_cu_gemm_stage(m->blas, w);
        if (rc == -EBUSY)
            return 0;
        RL_CU_TRY(rc);
    }
    return 0;
}

/* GEMM with staged weight k, then stage ahead into the buffer it freed. */
static int pf_gemm(rl_cu_model *m, uint32_t *next, uint32_t k, const void *xh, int n, float *y, bool acc)
{
    RL_CU_TRY(rl_cu_gemm_staged(m->blas, pf_w(m, k), xh, n, y, acc));
    return pf_fill(m, next);
}

/* Direct products (no staging): w over n fp16 rows of xh into y (+= when
 * acc) on rl_cu_mmw, in equal passes of at most 64 rows (each pass reads
 * the weights once; a 128-token step costs ~2 decode steps of products
 * instead of one dequantization of every weight). */
static int pf_direct(rl_cu_model *m, const rl_cu_mat *w, const void *xh, int n, float *y, bool acc)
{
    int passes = (n + RL_CU_MAX_MM_BATCH - 1) / RL_CU_MAX_MM_BATCH;
    for (int p = 0, r0 = 0; p < passes; p++) {
        int r1 = (int)((int64_t)n * (p + 1) / passes);
        rl_cu_act x = {.h = (uint16_t *)xh + (size_t)r0 * w->cols, .n = w->cols};
        rl_cu_act o = {.f = y + (size_t)r0 * w->rows, .n = w->rows};
        RL_CU_TRY(rl_cu_mmw(w, &x, r1 - r0, acc ? RL_CU_MV_ADD : RL_CU_MV_STORE, &o, m->s));
        r0 = r1;
    }
    return 0;
}

/* Product k of the large path over n fp16 rows of xh into y (+= when acc):
 * direct (rl_cu_mmw) where chosen and the weight is staged, else cuBLAS on
 * the resident fp16 copy, else on the staged dequantization. */
static int pf_product(rl_cu_model *m, bool direct, uint32_t *next, uint32_t k, const void *xh, int n, float *y,
                      bool acc)
{
    if (direct && pf_w(m, k))
        return pf_direct(m, pf_w(m, k), xh, n, y, acc);
    if (m->w16p) {
        int64_t rows, cols;
        rl_cu_w16_dims(&m->c, k, &rows, &cols);
        return rl_cu_gemm_f16(m->blas, m->w16p[k], rows, cols, xh, n, y, acc);
    }
    return pf_gemm(m, next, k, xh, n, y, acc);
}

int rl_cu_model_direct_max(rl_cu_model *m)
{
    if (m->direct_ok < 0) {
        bool ok = rl_cu_mmw_available();
        for (uint32_t k = 0; ok && k < 4 * m->c.n_layer; k++) {
            const rl_cu_mat *w = pf_w(m, k);
            ok = !w || w->type == RL_TYPE_Q4_0;
        }
        m->direct_ok = ok;
    }
    if (m->direct_want < 0) {
        const char *e = getenv("RL_CU_DIRECT_MAX");
        /* with the fp16 copies cuBLAS is faster from 96 rows on (7B Q4_0 on an H100:
         * 13.6k tok/s against 12.3k at 96 tokens, 17.9k against 15.0k at 128) */
        m->direct_want = e && atoi(e) >= 0 ? atoi(e) : m->w16p ? 0 : 192;
    }
    return m->direct_ok ? m->direct_want : 0;
}

void rl_cu_model_set_direct_max(rl_cu_model *m, int rows)
{
    m->direct_want = rows < 0 ? 0 : rows;
}

/* Attention of the large path, from the host's ids in h_in: each run of one
 * sequence's consecutive tokens (a prompt chunk) through the tiled causal
 * kernel; consecutive single tokens (decodes) together through the unsplit
 * one-query kernel (one launch, not one per sequence). */
static int large_attention(rl_cu_model *m, int n, uint32_t l, rl_cu_act *attn)
{
    size_t R = m->max_rows;
    const int32_t *pos = m->h_in + 1 * R, *row = m->h_in + 2 * R;
    int64_t qd = attn->n;
    for (int t0 = 0, t1; t0 < n; t0 = t1) {
        for (t1 = t0 + 1; t1 < n && row[t1] == row[t0] && pos[t1] == pos[t1 - 1] + 1; t1++)
            ;
        bool single = t1 == t0 + 1;
        if (single) /* extend over the following single tokens */
            while (t1 < n && (t1 + 1 >= n || row[t1 + 1] != row[t1] || pos[t1 + 1] != pos[t1] + 1))
                t1++;
        rl_cu_act o = *attn;
        o.f += (int64_t)t0 * qd;
        if (o.q) {
            o.q += (int64_t)t0 * qd;
            o.ds += (int64_t)t0 * (qd / 32) * 2;
        }
        if (o.h)
            o.h += (int64_t)t0 * qd;
        if (single)
            RL_CU_TRY(rl_cu_attn_paged(m->q + (int64_t)t0 * qd, rl_cu_din(m, RL_CU_IN_POS) + t0,
                                       rl_cu_din(m, RL_CU_IN_ROW) + t0, t1 - t0, &m->rope, &m->kv, l, 0,
                                       m->attn_scratch, &o, m->s));
        else
            RL_CU_TRY(rl_cu_attn_prefill_paged(m->q + (int64_t)t0 * qd, t1 - t0, pos[t0], (uint32_t)row[t0],
                                               &m->rope, &m->kv, l, &o, m->s));
    }
    return 0;
}

/* The layers of a step of n tokens through cuBLAS (prompt chunks). Leaves the
 * final residual of every token in m->x. The ids must be in h_in too. */
static int enqueue_large(rl_cu_model *m, int n)
{
    const rl_cu_model_cfg *c = &m->c;
    cudaStream_t s = m->s;
    int64_t E = c->n_embd, F = c->n_ff;
    rl_cu_act attn = m->attn;
    attn.q = NULL; /* GEMM inputs are fp16, not int8 */
    attn.h = NULL;
    const int32_t *pos = rl_cu_din(m, RL_CU_IN_POS), *row = rl_cu_din(m, RL_CU_IN_ROW);
    uint32_t next = 0;
    const bool direct = n <= rl_cu_model_direct_max(m);
    /* every product on the fp16 copies (split layers too), or staged ones and split layers apart */
    const bool w16 = m->w16p != NULL;
#define PF(k, x, y, acc) pf_product(m, direct, &next, k, x, n, y, acc)
    if (w16)
        RL_CU_TRY(rl_cu_w16_sync(m));
    else if (!direct) {
        rl_cu_gemm_reset(m->blas);
        RL_CU_TRY(pf_fill(m, &next));
    }
    RL_CU_TRY(rl_cu_mat_get_rows(&m->tok_embd, rl_cu_din(m, RL_CU_IN_TOK), n, m->x, s));
    for (uint32_t l = 0; l < c->n_layer; l++) {
        rl_cu_layer *L = &m->layers[l];
        RL_CU_TRY(rl_cu_rmsnorm_f16(m->x, L->attn_norm, c->rms_eps, E, n, m->xh, s));
        if (staged_qkv(L) || w16) {
            RL_CU_TRY(PF(4 * l, m->xh, m->qkv, false));
            if (L->bqkv) /* every Q|K|V column: wqkv holds Q or Q|K in a split layer */
                RL_CU_TRY(rl_cu_add_bias(m->qkv, L->bqkv, rl_cu_qkv_dim(c), n, s));
        } else {
            RL_CU_TRY(rl_cu_layer_gemm_qkv(c, L, m->blas, m->xh, n, m->wscratch, m->qkv, s));
        }
        RL_CU_TRY(rl_cu_rope_kv_paged(m->qkv, n, pos, row, &m->rope, &m->kv, l, m->q, s));
        RL_CU_TRY(large_attention(m, n, l, &attn));
        RL_CU_TRY(rl_cu_f32_to_f16(attn.f, m->xh, n * attn.n, s));
        RL_CU_TRY(PF(4 * l + 1, m->xh, m->x, true));
        RL_CU_TRY(rl_cu_rmsnorm_f16(m->x, L->ffn_norm, c->rms_eps, E, n, m->xh, s));
        if (staged_gu(L) || w16)
            RL_CU_TRY(PF(4 * l + 2, m->xh, m->gu, false));
        else
            RL_CU_TRY(rl_cu_layer_gemm_gu(L, m->blas, m->xh, n, m->wscratch, m->gu, s));
        RL_CU_TRY(rl_cu_swiglu_f16(m->gu, F, n, m->xh, s));
        RL_CU_TRY(PF(4 * l + 3, m->xh, m->x, true));
    }
#undef PF
    return 0;
}

/* Logits rows o0..o0+k-1 of the large path: gather those tokens' residuals,
 * final norm, output product, argmax. */
static int enqueue_output_rows(rl_cu_model *m, int n_tok, int o0, int k)
{
    const rl_cu_model_cfg *c = &m->c;
    rl_cu_mat xv = {.type = RL_TYPE_F32, .rows = n_tok, .cols = c->n_embd, .q = m->x};
    RL_CU_TRY(rl_cu_mat_get_rows(&xv, rl_cu_din(m, RL_CU_IN_OUT) + o0, k, m->xo, m->s));
    RL_CU_TRY(rl_cu_rmsnorm(m->xo, m->output_norm, c->rms_eps, c->n_embd, k, &m->xn, m->s));
    RL_CU_TRY(rl_cu_model_product(m, &m->output, &m->xn, k, RL_CU_MV_STORE, &m->logits));
    return rl_cu_argmax(m->logits.f, c->n_vocab, k, m->d_out, m->s);
}

static int bucket_of(const rl_cu_model *m, int n)
{
    for (int i = 0; i < RL_CU_N_BUCKETS; i++)
        if (rl_cu_buckets[i] >= n && (uint32_t)rl_cu_buckets[i] <= m->max_batch)
            return i;
    return -1;
}

static int run_small(rl_cu_model *m, int bi)
{
    int n = rl_cu_buckets[bi];
    if (!m->use_graphs)
        return enqueue_small(m, n);
    if (!m->graph[bi]) {
        cudaGraph_t g;
        RL_CU_TRY(rl_cu_check(cudaStreamBeginCapture(m->s, cudaStreamCaptureModeThreadLocal), "capture"));
        int rc = enqueue_small(m, n);
        cudaError_t e = cudaStreamEndCapture(m->s, &g);
        if (rc)
            return rc;
        RL_CU_TRY(rl_cu_check(e, "end capture"));
        e = cudaGraphInstantiate(&m->graph[bi], g, 0);
        cudaGraphDestroy(g);
        RL_CU_TRY(rl_cu_check(e, "graph instantiate"));
    }
    return rl_cu_check(cudaGraphLaunch(m->graph[bi], m->s), "graph launch");
}

int rl_cu_model_replay(rl_cu_model *m, int n, int reps, double *us)
{
    int bi = bucket_of(m, n);
    if (bi < 0 || rl_cu_buckets[bi] != n || reps < 1 || !m->use_graphs || !m->graph[bi])
        return -EINVAL;
    cudaEvent_t e0, e1;
    RL_CU_TRY(rl_cu_check(cudaEventCreate(&e0), "event"));
    if (rl_cu_check(cudaEventCreate(&e1), "event")) {
        cudaEventDestroy(e0);
        return -EIO;
    }
    int rc = rl_cu_check(cudaEventRecord(e0, m->s), "event");
    for (int r = 0; r < reps && !rc; r++)
        rc = rl_cu_check(cudaGraphLaunch(m->graph[bi], m->s), "graph launch");
    rc = rc ? rc : rl_cu_check(cudaEventRecord(e1, m->s), "event");
    rc = rc ? rc : rl_cu_check(cudaEventSynchronize(e1), "replay");
    float ms = 0;
    if (!rc)
        rc = rl_cu_check(cudaEventElapsedTime(&ms, e0, e1), "event time");
    *us = ms * 1e3 / reps;
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return rc;
}

static int check_batch(const rl_cu_model *m, const rl_cu_batch *b)
{
    const rl_cu_model_cfg *c = &m->c;
    if (b->n_tok < 1 || (uint32_t)b->n_tok > m->max_rows || b->n_rows < 1 || b->n_rows > b->n_tok || b->n_out < 0 ||
        b->n_out > b->n_tok || (b->n_out && !b->out_tok))
        return -EINVAL;
    for (int r = 0; r < b->n_rows; r++) {
        if (b->bt_len[r] > m->bt_stride)
            return -EINVAL;
        for (uint32_t i = 0; i < b->bt_len[r]; i++)
            if (b->bt[r][i] >= c->n_blocks)
                return -EINVAL;
    }
    for (int t = 0; t < b->n_tok; t++)
        if (b->tokens[t] < 0 || (uint32_t)b->tokens[t] >= c->n_vocab || b->row[t] < 0 || b->row[t] >= b->n_rows ||
            b->pos[t] < 0 || (uint64_t)b->pos[t] >= (uint64_t)b->bt_len[b->row[t]] * RL_CU_KV_BLOCK)
            return -EINVAL;
    for (int i = 0; i < b->n_out; i++)
        if (b->out_idx[i] < 0 || b->out_idx[i] >= b->n_tok)
            return -EINVAL;
    for (int i = 0; b->top_k && i < b->n_out; i++)
        if (b->top_k[i] < 0 || b->top_k[i] > RL_CU_TOPK_MAX || (uint32_t)b->top_k[i] > c->n_vocab ||
            (b->top_k[i] > 0 && (!b->top || !b->logits || !b->logits[i])))
            return -EINVAL;
    return 0;
}

/* Logits of outputs o0..o0+k-1 to the host (those with a destination): the
 * device row of output o0 + i is out_idx[o0 + i] (small path) or i (large
 * path, rows gathered); a run whose device rows and destinations both
 * follow each other goes as one copy. */
static int logits_out(rl_cu_model *m, const rl_cu_batch *b, int o0, int k, bool small)
{
    const size_t V = m->c.n_vocab;
    for (int i = 0; i < k && b->logits;) {
        float *dst = b->top_k && b->top_k[o0 + i] > 0 ? NULL : b->logits[o0 + i];
        if (!dst) {
            i++;
            continue;
        }
        int64_t src = small ? b->out_idx[o0 + i] : i;
        int n = 1;
        while (i + n < k && b->logits[o0 + i + n] == dst + (size_t)n * V &&
               (small ? b->out_idx[o0 + i + n] : i + n) == src + n)
            n++;
        RL_CU_TRY(rl_cu_check(cudaMemcpyAsync(dst, m->logits.f + (size_t)src * V, (size_t)n * V * 4,
                                              cudaMemcpyDeviceToHost, m->s),
                              "logits out"));
        i += n;
    }
    return 0;
}

/* ---- top-k: the k best logits leave the device instead of the row ----
 * h_topk: k per output [n_out] | ok [n_out] | normalizer [n_out] (float) |
 * candidates [n_out][stride]. */
static int32_t *topk_ok(rl_cu_model *m, int n_out)
{
    return m->h_topk + n_out;
}

static float *topk_lse(rl_cu_model *m, int n_out)
{
    return (float *)(m->h_topk + 2 * (size_t)n_out);
}

static rl_cu_cand *topk_cand(rl_cu_model *m, int n_out)
{
    return (rl_cu_cand *)(m->h_topk + ((3 * (size_t)n_out + 1) & ~(size_t)1));
}

/* The step's largest k (0: none wants candidates); stages the k's and uploads them. */
static int topk_stage(rl_cu_model *m, const rl_cu_batch *b, int *stride)
{
    *stride = 0;
    for (int i = 0; b->top_k && i < b->n_out; i++)
        *stride = b->top_k[i] > *stride ? b->top_k[i] : *stride;
    if (*stride == 0)
        return 0;
    size_t bytes = ((3 * (size_t)b->n_out + 1) & ~(size_t)1) * 4 + (size_t)b->n_out * *stride * sizeof(rl_cu_cand);
    if (bytes > m->h_topk_bytes) { /* the last forward synchronized: nothing in flight uses it */
        cudaFreeHost(m->h_topk);
        m->h_topk = NULL;
        m->h_topk_bytes = 0;
        RL_CU_TRY(rl_cu_check(cudaMallocHost((void **)&m->h_topk, bytes), "pinned top-k"));
        m->h_topk_bytes = bytes;
    }
    memcpy(m->h_topk, b->top_k, (size_t)b->n_out * 4);
    return rl_cu_check(cudaMemcpyAsync(m->d_topk, m->h_topk, (size_t)b->n_out * 4, cudaMemcpyHostToDevice, m->s),
                       "top-k sizes");
}

/* Outputs o0..o0+k-1: their candidates, from device rows out_idx (small path)
 * or 0..k-1 (large path), copied to h_topk. */
static int topk_out(rl_cu_model *m, const rl_cu_batch *b, int o0, int k, bool small, int stride)
{
    int32_t *d_ok = m->d_topk + rl_cu_topk_ok_off(m->max_rows);
    float *d_lse = (float *)(m->d_topk + rl_cu_topk_lse_off(m->max_rows, m->max_batch));
    rl_cu_cand *d_cand = (rl_cu_cand *)(m->d_topk + rl_cu_topk_cand_off(m->max_rows, m->max_batch));
    RL_CU_TRY(rl_cu_topk(m->logits.f, m->c.n_vocab, small ? rl_cu_din(m, RL_CU_IN_OUT) + o0 : NULL, m->d_topk + o0, k,
                         stride, d_cand, d_ok, b->top_lse ? d_lse : NULL, m->s));
    RL_CU_TRY(rl_cu_check(cudaMemcpyAsync(topk_ok(m, b->n_out) + o0, d_ok, (size_t)k * 4, cudaMemcpyDeviceToHost,
                                          m->s),
                          "top-k flags"));
    if (b->top_lse)
        RL_CU_TRY(rl_cu_check(cudaMemcpyAsync(topk_lse(m, b->n_out) + o0, d_lse, (size_t)k * 4,
                                              cudaMemcpyDeviceToHost, m->s),
                              "top-k normalizers"));
    return rl_cu_check(cudaMemcpyAsync(topk_cand(m, b->n_out) + (size_t)o0 * stride, d_cand,
                                       (size_t)k * stride * sizeof(rl_cu_cand), cudaMemcpyDeviceToHost, m->s),
                       "top-k out");
}

/* After the step's sync: top[] points at each output's candidates; a row that
 * was not all finite is copied whole instead (rare: synchronous). */
static int topk_finish(rl_cu_model *m, const rl_cu_batch *b, int o0, int k, bool small, int stride)
{
    const size_t V = m->c.n_vocab;
    for (int i = o0; i < o0 + k; i++) {
        if (b->top_k[i] <= 0)
            continue;
        b->top[i] = NULL;
        if (topk_ok(m, b->n_out)[i]) {
            b->top[i] = topk_cand(m, b->n_out) + (size_t)i * stride;
            if (b->top_lse)
                b->top_lse[i] = topk_lse(m, b->n_out)[i];
            continue;
        }
        int64_t src = small ? b->out_idx[i] : i - o0;
        RL_CU_TRY(rl_cu_check(cudaMemcpy(b->logits[i], m->logits.f + (size_t)src * V, V * 4, cudaMemcpyDeviceToHost),
                              "logits out"));
    }
    return 0;
}

/* Stage ids (padded to n_pad tokens: row -1) and block tables, one copy each. */
static int upload(rl_cu_model *m, const rl_cu_batch *b, int n_pad)
{
    int32_t *h = m->h_in;
    size_t R = m->max_rows;
    for (int t = 0; t < n_pad; t++) {
        bool real = t < b->n_tok;
        h[RL_CU_IN_TOK * R + t] = real ? b->tokens[t] : 0;
        h[RL_CU_IN_POS * R + t] = real ? b->pos[t] : 0;
        h[RL_CU_IN_ROW * R + t] = real ? b->row[t] : -1;
    }
    for (int i = 0; i < b->n_out; i++)
        h[RL_CU_IN_OUT * R + i] = b->out_idx[i];
    int32_t *bt = h + 4 * R;
    for (int r = 0; r < b->n_rows; r++) {
        int32_t *dst = bt + (size_t)r * m->bt_stride;
        for (uint32_t i = 0; i < b->bt_len[r]; i++)
            dst[i] = (int32_t)b->bt[r][i];
        for (uint32_t i = b->bt_len[r]; i < m->bt_stride; i++)
            dst[i] = -1;
    }
    /* one copy: d_bt follows d_in as bt follows h (rl_cu_model.c) */
    return rl_cu_check(cudaMemcpyAsync(m->d_in, h, 4 * R * 4 + (size_t)b->n_rows * m->bt_stride * 4,
                                       cudaMemcpyHostToDevice, m->s),
                       "ids and block tables");
}

/* Zero copy: stage the device addresses of the tokens (index: token for the
 * small path, out row for the large one) and upload them; false when none. */
static int stage_dst(rl_cu_model *m, const rl_cu_batch *b, int n, bool by_token, bool *any)
{
    *any = false;
    if (!b->tok_dev)
        return 0;
    memset(m->h_dst, 0, (size_t)n * 8);
    for (int i = 0; i < b->n_out; i++)
        if (b->tok_dev[i]) {
            m->h_dst[by_token ? b->out_idx[i] : i] = b->tok_dev[i];
            *any = true;
        }
    if (!*any)
        return 0;
    return rl_cu_check(cudaMemcpyAsync(m->d_dst, m->h_dst, (size_t)n * 8, cudaMemcpyHostToDevice, m->s),
                       "token addresses");
}

int rl_cu_model_forward(rl_cu_model *m, const rl_cu_batch *b)
{
    RL_CU_TRY(check_batch(m, b));
    cudaStream_t s = m->s;
    int bi = bucket_of(m, b->n_tok);
    RL_CU_TRY(upload(m, b, bi >= 0 ? rl_cu_buckets[bi] : b->n_tok));
    int stride;
    RL_CU_TRY(topk_stage(m, b, &stride));
    bool dst = false;
    if (bi >= 0) {
        RL_CU_TRY(stage_dst(m, b, rl_cu_buckets[bi], true, &dst));
        RL_CU_TRY(run_small(m, bi));
        if (dst) /* tokens straight into the clients' regions */
            RL_CU_TRY(rl_cu_scatter_tokens(m->d_out, m->d_dst, rl_cu_buckets[bi], s));
        RL_CU_TRY(rl_cu_check(cudaMemcpyAsync(m->h_out, m->d_out, (size_t)rl_cu_buckets[bi] * 4,
                                              cudaMemcpyDeviceToHost, s),
                              "tokens out"));
        if (stride)
            RL_CU_TRY(topk_out(m, b, 0, b->n_out, true, stride));
        RL_CU_TRY(logits_out(m, b, 0, b->n_out, true));
        RL_CU_TRY(rl_cu_check(cudaStreamSynchronize(s), "step"));
        for (int i = 0; i < b->n_out; i++)
            b->out_tok[i] = m->h_out[b->out_idx[i]];
        return stride ? topk_finish(m, b, 0, b->n_out, true, stride) : 0;
    }
    RL_CU_TRY(stage_dst(m, b, b->n_out, false, &dst));
    int rc = enqueue_large(m, b->n_tok);
    if (rc) {
        rl_cu_gemm_reset(m->blas);
        return rc;
    }
    for (int o0 = 0; o0 < b->n_out; o0 += (int)m->max_batch) {
        int k = b->n_out - o0 < (int)m->max_batch ? b->n_out - o0 : (int)m->max_batch;
        RL_CU_TRY(enqueue_output_rows(m, b->n_tok, o0, k));
        if (dst)
            RL_CU_TRY(rl_cu_scatter_tokens(m->d_out, m->d_dst + o0, k, s));
        RL_CU_TRY(rl_cu_check(cudaMemcpyAsync(m->h_out, m->d_out, (size_t)k * 4, cudaMemcpyDeviceToHost, s),
                              "tokens out"));
        if (stride)
            RL_CU_TRY(topk_out(m, b, o0, k, false, stride));
        RL_CU_TRY(logits_out(m, b, o0, k, false));
        RL_CU_TRY(rl_cu_check(cudaStreamSynchronize(s), "step"));
        memcpy(b->out_tok + o0, m->h_out, (size_t)k * 4);
        if (stride)
            RL_CU_TRY(topk_finish(m, b, o0, k, false, stride));
    }
    if (b->n_out == 0)
        return rl_cu_check(cudaStreamSynchronize(s), "step");
    return 0;
}

int rl_cu_model_warmup(rl_cu_model *m)
{
    /* every token without a row: nothing is written to the KV pool */
    size_t R = m->max_rows;
    for (size_t t = 0; t < R; t++) {
        m->h_in[RL_CU_IN_TOK * R + t] = 0;
        m->h_in[RL_CU_IN_POS * R + t] = 0;
        m->h_in[RL_CU_IN_ROW * R + t] = -1;
        m->h_in[RL_CU_IN_OUT * R + t] = 0;
    }
    RL_CU_TRY(rl_cu_check(cudaMemcpyAsync(m->d_in, m->h_in, 4 * R * 4, cudaMemcpyHostToDevice, m->s), "ids"));
    /* each bucket once without capture first: kernels that query the device on
     * first use (occupancy) must not do it inside a capture */
    for (int pass = 0; pass < 2; pass++) {
        bool graphs = m->use_graphs;
        m->use_graphs = pass == 1 && graphs;
        for (int bi = 0; bi < RL_CU_N_BUCKETS && (uint32_t)rl_cu_buckets[bi] <= m->max_batch; bi++) {
            int rc = run_small(m, bi);
            if (rc) {
                m->use_graphs = graphs;
                return rc;
            }
        }
        m->use_graphs = graphs;
        if (!graphs)
            break;
    }
    /* cuBLAS and the prefill kernels load on first use: one large step as one
     * sequence in block-table row 0 = blocks 0.. (no sequence exists yet, so
     * what it writes there is never read) */
    int nl = (int)m->max_batch + 1;
    if ((uint32_t)nl <= m->max_rows && (uint32_t)nl <= m->bt_stride * RL_CU_KV_BLOCK) {
        for (int t = 0; t < nl; t++) {
            m->h_in[RL_CU_IN_POS * R + t] = t;
            m->h_in[RL_CU_IN_ROW * R + t] = 0;
        }
        int32_t *bt = m->h_in + 4 * R;
        for (uint32_t i = 0; i < m->bt_stride; i++)
            bt[i] = (int32_t)(i < m->c.n_blocks ? i : 0);
        RL_CU_TRY(rl_cu_check(cudaMemcpyAsync(m->d_in, m->h_in, 4 * R * 4, cudaMemcpyHostToDevice, m->s), "ids"));
        RL_CU_TRY(rl_cu_check(cudaMemcpyAsync(m->d_bt, bt, m->bt_stride * 4, cudaMemcpyHostToDevice, m->s), "tables"));
        int want = m->direct_want; /* the cuBLAS path, whatever the direct products cover */
        m->direct_want = 0;
        int rc = enqueue_large(m, nl);
        m->direct_want = want;
        if (rc) {
            rl_cu_gemm_reset(m->blas);
            return rc;
        }
        RL_CU_TRY(enqueue_output_rows(m, nl, 0, 1));
    }
    return rl_cu_check(cudaStreamSynchronize(m->s), "warm-up");
}

/* ---- the slot API: slot s owns blocks s * bt_stride .. ---- */

static uint32_t *slot_table(const rl_cu_model *m, int32_t slot)
{
    uint32_t *t = malloc(sizeof(uint32_t) * m->bt_stride);
    if (t)
        for (uint32_t i = 0; i < m->bt_stride; i++)
            t[i] = (uint32_t)slot * m->bt_stride + i;
    return t;
}

int rl_cu_model_decode(rl_cu_model *m, int n, const int32_t *tokens, const int32_t *pos, const int32_t *slot,
                       int32_t *out_tok, float *logits)
{
    if (n < 1 || (uint32_t)n > m->max_batch)
        return -EINVAL;
    int32_t row[RL_CU_MAX_STEP_BATCH], idx[RL_CU_MAX_STEP_BATCH];
    uint32_t *bt[RL_CU_MAX_STEP_BATCH] = {0}, len[RL_CU_MAX_STEP_BATCH];
    float *lg[RL_CU_MAX_STEP_BATCH];
    int rc = 0;
    for (int i = 0; i < n && !rc; i++) {
        if (slot[i] < 0 || (uint32_t)slot[i] >= m->c.n_slots || pos[i] < 0 || (uint32_t)pos[i] >= m->c.n_ctx)
            rc = -EINVAL;
        else if (!(bt[i] = slot_table(m, slot[i])))
            rc = -ENOMEM;
        row[i] = idx[i] = i;
        len[i] = m->bt_stride;
        lg[i] = logits ? logits + (size_t)i * m->c.n_vocab : NULL;
    }
    if (!rc) {
        rl_cu_batch b = {.n_tok = n, .tokens = tokens, .pos = pos, .row = row, .n_rows = n,
                         .bt = (const uint32_t *const *)bt, .bt_len = len, .n_out = n, .out_idx = idx,
                         .out_tok = out_tok, .logits = lg};
        rc = rl_cu_model_forward(m, &b);
    }
    for (int i = 0; i < n; i++)
        free(bt[i]);
    return rc;
}

int rl_cu_model_prefill(rl_cu_model *m, int32_t slot, int32_t pos0, const int32_t *tokens, int n_tok,
                        int32_t *out_tok, float *logits)
{
    if (n_tok < 1 || (uint32_t)n_tok > m->max_rows || slot < 0 || (uint32_t)slot >= m->c.n_slots || pos0 < 0 ||
        (uint64_t)pos0 + n_tok > m->c.n_ctx)
        return -EINVAL;
    int32_t *ids = malloc(sizeof(int32_t) * 2 * (size_t)n_tok);
    uint32_t *bt = slot_table(m, slot);
    int rc = -ENOMEM;
    if (ids && bt) {
        for (int i = 0; i < n_tok; i++) {
            ids[i] = pos0 + i;
            ids[n_tok + i] = 0;
        }
        uint32_t len = m->bt_stride;
        int32_t last = n_tok - 1;
        const uint32_t *tab = bt;
        rl_cu_batch b = {.n_tok = n_tok, .tokens = tokens, .pos = ids, .row = ids + n_tok, .n_rows = 1,
                         .bt = &tab, .bt_len = &len, .n_out = 1, .out_idx = &last, .out_tok = out_tok,
                         .logits = &logits};
        rc = rl_cu_model_forward(m, &b);
    }
    free(ids);
    free(bt);
    return rc;
}
