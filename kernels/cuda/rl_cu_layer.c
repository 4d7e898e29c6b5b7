/* rl_cu_layer.c - a layer's weight matrices with a type per role, and its
 * Q|K|V and gate/up products. Where Q, K and V share a type they are one
 * matrix (rows Q|K|V) and one matvec; where only Q and K do, Q|K and V;
 * otherwise three matrices whose matvecs
 * write their columns of the same [batch][q|k|v] rows (rl_cu_act.stride), so
 * RoPE, the KV write and attention see one layout either way. Gate/up
 * likewise: one fused GLU matvec, or two matvecs, SwiGLU and quantization.
 * Prefill dequantizes the parts one after the other into the fp16 scratch and
 * runs one GEMM whatever the split. */
#include "rl_cu_layer.h"
#include "rl_cu_env.h"

#include <stdlib.h>

#include <errno.h>
#include <stdio.h>

rl_cu_layer_types rl_cu_layer_types_of(const rl_cu_model_types *ty, const rl_cu_layer_types *layers, uint32_t l)
{
    if (layers)
        return layers[l];
    return (rl_cu_layer_types){{ty->qkv, ty->qkv, ty->qkv, ty->o, ty->gu, ty->gu, ty->down}};
}

static bool qkv_fused(const rl_cu_layer_types *lt)
{
    return lt->t[RL_CU_W_Q] == lt->t[RL_CU_W_K] && lt->t[RL_CU_W_Q] == lt->t[RL_CU_W_V];
}

/* Q and K in one matrix (with V or without it; RL_CU_QK_FUSE=0: Q|K only
 * with V, for measurements). */
static bool qk_fused(const rl_cu_layer_types *lt)
{
    static int on = -1;
    return lt->t[RL_CU_W_Q] == lt->t[RL_CU_W_K] && (qkv_fused(lt) || rl_env_switch("RL_CU_QK_FUSE", true, &on));
}

static bool gu_fused(const rl_cu_layer_types *lt)
{
    return lt->t[RL_CU_W_GATE] == lt->t[RL_CU_W_UP];
}

/* Rows and columns of each role's matrix. */
static void role_shape(const rl_cu_model_cfg *c, int role, int64_t *rows, int64_t *cols)
{
    int64_t qd = (int64_t)c->n_head * c->head_dim, kvd = (int64_t)c->n_head_kv * c->head_dim;
    switch (role) {
    case RL_CU_W_K: case RL_CU_W_V: *rows = kvd, *cols = c->n_embd; break;
    case RL_CU_W_O: *rows = c->n_embd, *cols = qd; break;
    case RL_CU_W_GATE: case RL_CU_W_UP: *rows = c->n_ff, *cols = c->n_embd; break;
    case RL_CU_W_DOWN: *rows = c->n_embd, *cols = c->n_ff; break;
    default: *rows = qd, *cols = c->n_embd; break;
    }
}

uint64_t rl_cu_layer_plan(const rl_cu_model_cfg *c, const rl_cu_layer_types *lt, uint32_t l, char *err,
                          size_t errlen)
{
    static const char *const names[RL_CU_W_N] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate",
                                                 "ffn_up", "ffn_down"};
    uint64_t sum = 0;
    for (int r = 0; r < RL_CU_W_N; r++) {
        int64_t rows, cols;
        role_shape(c, r, &rows, &cols);
        size_t b = rl_cu_mat_bytes(lt->t[r], rows, cols);
        if (!b) {
            const rl_type_traits *tr = rl_type_get(lt->t[r]);
            snprintf(err, errlen, "cuda: blk.%u.%s (%s, %lld x %lld) has no CUDA kernel", l, names[r],
                     tr && tr->name ? tr->name : "unknown type", (long long)rows, (long long)cols);
            return 0;
        }
        sum += b;
    }
    return sum;
}

void rl_cu_layer_q8_needs(const rl_cu_layer_types *lt, bool *xn, bool *attn, bool *ffn)
{
    const rl_type *t = lt->t;
    *xn = rl_cu_type_q8(t[RL_CU_W_Q]) || rl_cu_type_q8(t[RL_CU_W_K]) || rl_cu_type_q8(t[RL_CU_W_V]) ||
          rl_cu_type_q8(t[RL_CU_W_GATE]) || rl_cu_type_q8(t[RL_CU_W_UP]);
    *attn = rl_cu_type_q8(t[RL_CU_W_O]);
    *ffn = rl_cu_type_q8(t[RL_CU_W_DOWN]);
}

int rl_cu_layer_alloc(const rl_cu_model_cfg *c, const rl_cu_layer_types *lt, rl_cu_layer *L)
{
    const rl_type *t = lt->t;
    int64_t E = c->n_embd, F = c->n_ff, qd = (int64_t)c->n_head * c->head_dim, kvd = (int64_t)c->n_head_kv * c->head_dim;
    bool fq = qkv_fused(lt), fk = qk_fused(lt), fg = gu_fused(lt);
    int rc;
    if ((rc = rl_cu_mat_alloc(&L->wqkv, t[RL_CU_W_Q], fq ? qd + 2 * kvd : fk ? qd + kvd : qd, E)) ||
        (!fk && (rc = rl_cu_mat_alloc(&L->wk, t[RL_CU_W_K], kvd, E))) ||
        (!fq && (rc = rl_cu_mat_alloc(&L->wv, t[RL_CU_W_V], kvd, E))) ||
        (rc = rl_cu_mat_alloc(&L->wo, t[RL_CU_W_O], E, qd)) ||
        (rc = rl_cu_mat_alloc(&L->wgu, t[RL_CU_W_GATE], fg ? 2 * F : F, E)) ||
        (!fg && (rc = rl_cu_mat_alloc(&L->wup, t[RL_CU_W_UP], F, E))) ||
        (rc = rl_cu_mat_alloc(&L->wdown, t[RL_CU_W_DOWN], E, F)))
        return rc;
    return 0;
}

void rl_cu_layer_free_mats(rl_cu_layer *L)
{
    rl_cu_mat_free(&L->wqkv);
    rl_cu_mat_free(&L->wk);
    rl_cu_mat_free(&L->wv);
    rl_cu_mat_free(&L->wo);
    rl_cu_mat_free(&L->wgu);
    rl_cu_mat_free(&L->wup);
    rl_cu_mat_free(&L->wdown);
}

uint64_t rl_cu_layer_bytes(const rl_cu_layer *L)
{
    return L->wqkv.bytes + L->wk.bytes + L->wv.bytes + L->wo.bytes + L->wgu.bytes + L->wup.bytes + L->wdown.bytes;
}

int rl_cu_layer_fill_random(rl_cu_layer *L, uint64_t seed, cudaStream_t s)
{
    rl_cu_mat *mats[7] = {&L->wqkv, &L->wo, &L->wgu, &L->wdown, &L->wk, &L->wv, &L->wup};
    for (int i = 0; i < 7; i++)
        if (mats[i]->q)
            RL_CU_TRY(rl_cu_mat_fill_random(mats[i], seed + 1 + (uint64_t)i, s));
    return 0;
}

int rl_cu_layer_qkv_parts(const rl_cu_layer *L, const rl_cu_mat *p[3])
{
    int n = 0;
    p[n++] = &L->wqkv;
    if (L->wk.q)
        p[n++] = &L->wk;
    if (L->wv.q)
        p[n++] = &L->wv;
    return n;
}

rl_cu_mat *rl_cu_layer_role(const rl_cu_model_cfg *c, rl_cu_layer *L, rl_cu_role role, int64_t *row0)
{
    int64_t qd = (int64_t)c->n_head * c->head_dim, kvd = (int64_t)c->n_head_kv * c->head_dim;
    bool fk = L->wk.q == NULL, fq = fk && L->wv.q == NULL, fg = L->wup.q == NULL;
    *row0 = 0;
    switch (role) {
    case RL_CU_W_Q: return &L->wqkv;
    case RL_CU_W_K: *row0 = fk ? qd : 0; return fk ? &L->wqkv : &L->wk;
    case RL_CU_W_V: *row0 = fq ? qd + kvd : 0; return fq ? &L->wqkv : &L->wv;
    case RL_CU_W_O: return &L->wo;
    case RL_CU_W_GATE: return &L->wgu;
    case RL_CU_W_UP: *row0 = fg ? c->n_ff : 0; return fg ? &L->wgu : &L->wup;
    case RL_CU_W_DOWN: return &L->wdown;
    default: return NULL;
    }
}

/* RL_CU_MMH=0 / RL_CU_MMQ=0 turn the fp16 / int8 tensor-core kernels for
 * Q4_0 and Q8_0 off (the next in line is used instead); RL_CU_MMS=0 leaves
 * small batches to rl_cu_mmh (rl_env_switch, on by default). */

/* A kernel's override: -1 (automatic) unless name is "0" (never: 0) or "1"
 * (always: 1); read once per cache (start it at -2). */
static int env_force(const char *name, int *cache)
{
    if (*cache == -2) {
        const char *e = getenv(name);
        *cache = e && e[0] == '0' ? 0 : e && e[0] == '1' ? 1 : -1;
    }
    return *cache;
}

static bool mmq_on(void)
{
    static int on = -1;
    return rl_env_switch("RL_CU_MMQ", true, &on);
}

static bool mmh_on(void)
{
    static int on = -1;
    return rl_env_switch("RL_CU_MMH", true, &on);
}

/* Up to 24 rows: at 32 the 7B engine step measured 4% slower with the O
 * product on rl_cu_mms (4,912 against 5,132 tok/s, H100), though that
 * product alone is faster there (14.9 against 17.2 us). */
#define RL_CU_MMS_ENGINE_BATCH 24

/* Small batches (up to RL_CU_MMS_ENGINE_BATCH rows) take rl_cu_mms for
 * matrices of at most RL_CU_MMS_MAX_MB (default 16) MB: there a launch is
 * latency-bound and rl_cu_mmh's K split between CTAs (a global reduction)
 * dominates; bigger matrices stream faster through rl_cu_mmh's larger tiles
 * (docs/PERFORMANCE.md, "Small batches"). RL_CU_MMS=0: never, 1: always. */
static bool mms_pick(const rl_cu_mat *w, int n)
{
    static int cache = -2;
    static double max_bytes;
    int force = env_force("RL_CU_MMS", &cache);
    if (max_bytes == 0) {
        const char *m = getenv("RL_CU_MMS_MAX_MB");
        max_bytes = (m && atof(m) > 0 ? atof(m) : 16.0) * 1e6;
    }
    if (n > RL_CU_MMS_ENGINE_BATCH || force == 0)
        return false;
    return force == 1 || (double)rl_cu_mat_bytes(w->type, w->rows, w->cols) <= max_bytes;
}

/* Q4_0 products over more than 32 rows take rl_cu_mmw (wgmma; it pads to
 * 64 rows) where the device has it: RL_CU_MMW=0 never, 1 from 9 rows. */
static bool mmw_pick(const rl_cu_mat *w, int n)
{
    static int cache = -2;
    int force = env_force("RL_CU_MMW", &cache);
    return w->type == RL_TYPE_Q4_0 && force != 0 && (n > 32 || force == 1);
}

/* Most rows a product runs on rl_cu_matvec (dp4a: its work grows with every
 * row); for Q4_0 from 4 rows the tensor-core kernels below are faster (H100, 7B Q4_0
 * engine steps, session 14, tensor cores against the matvec: batch 8 2,502-
 * 2,512 against 1,533-1,538 tok/s, 4 1,368 against 1,107, 3 1,046 against
 * 1,069, 2 717 against 809; TinyLlama batch 8 8,267 against 5,912).
 * RL_CU_MATVEC_MAX=N (1..8) moves the line. */
#define RL_CU_MATVEC_ROWS 3
static int matvec_max(void)
{
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("RL_CU_MATVEC_MAX");
        v = e && atoi(e) >= 1 && atoi(e) <= RL_CU_MAX_BATCH ? atoi(e) : RL_CU_MATVEC_ROWS;
    }
    return v;
}

bool rl_cu_product_is_matvec(const rl_cu_mat *w, bool x_h, int n)
{
    /* (only Q4_0 was measured on the tensor-core kernels below 9 rows) */
    return n <= RL_CU_MAX_BATCH && (n <= matvec_max() || w->type != RL_TYPE_Q4_0 || !x_h);
}

int rl_cu_product(const rl_cu_mat *w, const rl_cu_act *x, int n, int mode, rl_cu_act *y, cudaStream_t s)
{
    if (rl_cu_product_is_matvec(w, x->h != NULL, n))
        return rl_cu_matvec(w, x, n, mode, y, s);
    if (x->ss)
        return -EINVAL; /* a deferred norm: only the matvec scales by it */
    bool q48 = w->type == RL_TYPE_Q4_0 || w->type == RL_TYPE_Q8_0;
    if (q48 && x->h && n <= RL_CU_MAX_MM_BATCH && mmh_on() && mmw_pick(w, n)) {
        int rc = rl_cu_mmw(w, x, n, mode, y, s); /* warpgroup tensor cores (sm_90a) */
        if (rc != -ENOTSUP)
            return rc;
    }
    if (q48 && x->h && mmh_on() && mms_pick(w, n)) {
        int rc = rl_cu_mms(w, x, n, mode, y, s); /* small batch: K split between the warps of a CTA */
        if (rc != -ENOTSUP)
            return rc;
    }
    if (q48 && x->h && n <= RL_CU_MAX_MM_BATCH && mmh_on()) {
        int rc = rl_cu_mmh(w, x, n, mode, y, s); /* fp16 copy of the int8 activations, fp16 tensor cores */
        if (rc != -ENOTSUP)
            return rc;
    }
    if (q48 && x->q && n <= RL_CU_MAX_MM_BATCH && mmq_on())
        return rl_cu_mmq(w, x, n, mode, y, s); /* the int8 activations of the matvec, on tensor cores */
    if (w->type != RL_TYPE_F32 && w->type != RL_TYPE_Q5_K && n <= RL_CU_MAX_MM_BATCH &&
        (!y->stride || y->stride == y->n)) /* a fused Q|K|V output is dense */
        return rl_cu_mm(w, x, n, mode, y, s);
    /* Groups of RL_CU_MAX_BATCH rows: each group reads the weights once. */
    for (int b0 = 0; b0 < n; b0 += RL_CU_MAX_BATCH) {
        int nb = n - b0 < RL_CU_MAX_BATCH ? n - b0 : RL_CU_MAX_BATCH;
        rl_cu_act xs = rl_cu_act_rows(x, b0), ys = rl_cu_act_rows(y, b0);
        RL_CU_TRY(rl_cu_matvec(w, &xs, nb, mode, &ys, s));
    }
    return 0;
}

int rl_cu_layer_qkv(const rl_cu_model_cfg *c, const rl_cu_layer *L, const rl_cu_act *xn, int n, float *d_qkv,
                    cudaStream_t s)
{
    int64_t ld = rl_cu_qkv_dim(c), off = 0;
    const rl_cu_mat *parts[3];
    int np = rl_cu_layer_qkv_parts(L, parts);
    for (int i = 0; i < np; off += parts[i]->rows, i++) {
        rl_cu_act y = {.f = d_qkv + off, .n = parts[i]->rows, .stride = ld};
        RL_CU_TRY(rl_cu_product(parts[i], xn, n, RL_CU_MV_STORE, &y, s));
    }
    return L->bqkv ? rl_cu_add_bias(d_qkv, L->bqkv, ld, n, s) : 0;
}

int rl_cu_layer_glu(const rl_cu_model_cfg *c, const rl_cu_layer *L, const rl_cu_act *xn, int n, float *d_gu,
                    rl_cu_act *ffn, cudaStream_t s)
{
    if (!L->wup.q)
        return rl_cu_product(&L->wgu, xn, n, RL_CU_MV_GLU, ffn, s);
    int64_t F = c->n_ff;
    const rl_cu_mat *parts[2] = {&L->wgu, &L->wup};
    for (int i = 0; i < 2; i++) {
        rl_cu_act y = {.f = d_gu + i * F, .n = F, .stride = 2 * F};
        RL_CU_TRY(rl_cu_product(parts[i], xn, n, RL_CU_MV_STORE, &y, s));
    }
    RL_CU_TRY(rl_cu_swiglu(d_gu, F, n, ffn->f, s));
    return ffn->q ? rl_cu_quantize(ffn, n, s) : 0;
}

/* Dequantize parts[0..n_parts-1] one after the other into the fp16 scratch
 * (their rows concatenated) and multiply the n fp16 rows d_xh by it. */
static int gemm_parts(const rl_cu_mat *const *parts, int n_parts, rl_cu_blas *b, const void *d_xh, int n,
                      void *d_wscratch, float *d_y, cudaStream_t s)
{
    int64_t rows = 0, cols = parts[0]->cols;
    for (int i = 0; i < n_parts; i++) {
        RL_CU_TRY(rl_cu_gemm_to_f16(parts[i], (uint16_t *)d_wscratch + rows * cols, s));
        rows += parts[i]->rows;
    }
    return rl_cu_gemm_f16(b, d_wscratch, rows, cols, d_xh, n, d_y, false);
}

int rl_cu_layer_gemm_qkv(const rl_cu_model_cfg *c, const rl_cu_layer *L, rl_cu_blas *b, const void *d_xh, int n,
                         void *d_wscratch, float *d_qkv, cudaStream_t s)
{
    const rl_cu_mat *parts[3];
    RL_CU_TRY(gemm_parts(parts, rl_cu_layer_qkv_parts(L, parts), b, d_xh, n, d_wscratch, d_qkv, s));
    return L->bqkv ? rl_cu_add_bias(d_qkv, L->bqkv, rl_cu_qkv_dim(c), n, s) : 0;
}

int rl_cu_layer_gemm_gu(const rl_cu_layer *L, rl_cu_blas *b, const void *d_xh, int n, void *d_wscratch,
                        float *d_gu, cudaStream_t s)
{
    const rl_cu_mat *parts[2] = {&L->wgu, &L->wup};
    return gemm_parts(parts, L->wup.q ? 2 : 1, b, d_xh, n, d_wscratch, d_gu, s);
}
