/* rl_cu_model.c - the GPU model: memory plan, allocation, weights, the paged
 * KV pool. The forward step is in rl_cu_step.c. */
#include "rl_cu_model_impl.h"
#include "rl_cu_layer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MB (1024.0 * 1024.0)

static size_t act_bytes(int64_t n, uint32_t rows, bool q)
{
    return (size_t)n * rows * 4 + (q ? (size_t)n * rows * 3 + (size_t)(n / 32) * rows * 8 : 0); /* f, q, h, ds */
}

static int alloc_act(rl_cu_act *a, int64_t n, uint32_t rows, bool q)
{
    memset(a, 0, sizeof *a);
    a->n = n;
    if (rl_cu_check(cudaMalloc((void **)&a->f, (size_t)n * rows * 4), "cudaMalloc(act)"))
        return -ENOMEM;
    if (q && n % 32 == 0) {
        if (rl_cu_check(cudaMalloc((void **)&a->q, (size_t)n * rows), "cudaMalloc(act q)") ||
            rl_cu_check(cudaMalloc((void **)&a->ds, (size_t)(n / 32) * rows * 8), "cudaMalloc(act ds)") ||
            rl_cu_check(cudaMalloc((void **)&a->h, (size_t)n * rows * 2), "cudaMalloc(act h)"))
            return -ENOMEM;
    }
    return 0;
}

static void free_act(rl_cu_act *a)
{
    cudaFree(a->f);
    cudaFree(a->q);
    cudaFree(a->ds);
    cudaFree(a->h);
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

/* How the host waits for a step (RL_CU_SYNC=spin|yield|block; unset: the
 * runtime's default, which spins while the process has fewer active contexts
 * than cores): set once, before the first allocation makes the context. */
static void rl_cu_sync_mode(void)
{
    static bool done = false;
    if (done)
        return;
    done = true;
    const char *e = getenv("RL_CU_SYNC");
    unsigned f = !e                     ? 0
                 : !strcmp(e, "spin")   ? cudaDeviceScheduleSpin
                 : !strcmp(e, "yield")  ? cudaDeviceScheduleYield
                 : !strcmp(e, "block")  ? cudaDeviceScheduleBlockingSync
                                        : 0;
    if (f && cudaSetDeviceFlags(f) != cudaSuccess)
        (void)cudaGetLastError(); /* the context already exists: the default stays */
}

int rl_cu_model_new(const rl_cu_model_cfg *cfg, const rl_cu_model_types *ty, rl_cu_model **out, char *err,
                    size_t errlen)
{
    return rl_cu_model_new_mixed(cfg, ty, NULL, out, err, errlen);
}

int rl_cu_model_new_mixed(const rl_cu_model_cfg *cfg, const rl_cu_model_types *ty, const rl_cu_layer_types *lts,
                          rl_cu_model **out, char *err, size_t errlen)
{
    rl_cu_sync_mode();
    rl_cu_model_cfg c = *cfg;
    if (c.max_prefill == 0)
        c.max_prefill = 512;
    if (c.max_batch == 0 || c.max_batch > RL_CU_MAX_STEP_BATCH)
        c.max_batch = RL_CU_MAX_STEP_BATCH;
    if (c.n_head && c.max_prefill * c.n_head > 65536) /* attention arrival counters */
        c.max_prefill = 65536 / c.n_head;
    if (c.max_prefill < c.max_batch)
        c.max_prefill = c.max_batch;
    if (!c.n_layer || !c.n_embd || !c.n_head || !c.n_head_kv || c.n_head % c.n_head_kv || !c.head_dim ||
        c.head_dim > 256 || c.head_dim % 2 || !c.n_ff || !c.n_vocab || !c.n_ctx || c.n_rot > c.head_dim) {
        snprintf(err, errlen, "cuda: unsupported model shape");
        return -EINVAL;
    }
    if (c.n_rot == 0)
        c.n_rot = c.head_dim;
    uint32_t bt_stride = (c.n_ctx + RL_CU_KV_BLOCK - 1) / RL_CU_KV_BLOCK;
    if (c.n_blocks == 0)
        c.n_blocks = c.n_slots * bt_stride;
    if (c.n_blocks == 0 || (uint64_t)c.n_slots * bt_stride > c.n_blocks || c.n_blocks > (1u << 24)) {
        snprintf(err, errlen, "cuda: KV pool of %u blocks cannot hold %u slots of %u positions", c.n_blocks,
                 c.n_slots, c.n_ctx);
        return -EINVAL;
    }
    int64_t qd = (int64_t)c.n_head * c.head_dim, kvd = (int64_t)c.n_head_kv * c.head_dim;
    int64_t qkvd = qd + 2 * kvd;
    /* Plan */
    uint64_t wb = rl_cu_mat_bytes(ty->embd, c.n_vocab, c.n_embd) + rl_cu_mat_bytes(ty->output, c.n_vocab, c.n_embd);
    if (!rl_cu_mat_bytes(ty->embd, c.n_vocab, c.n_embd) || !rl_cu_mat_bytes(ty->output, c.n_vocab, c.n_embd)) {
        snprintf(err, errlen, "cuda: the token embedding or output weight type or shape has no CUDA kernel");
        return -ENOTSUP;
    }
    /* Per layer: the real matrix sizes, and which activations any consumer reads as int8. */
    bool q_xn = rl_cu_type_q8(ty->output), q_attn = false, q_ffn = false;
    for (uint32_t l = 0; l < c.n_layer; l++) {
        rl_cu_layer_types lt = rl_cu_layer_types_of(ty, lts, l);
        uint64_t lb = rl_cu_layer_plan(&c, &lt, l, err, errlen);
        if (!lb)
            return -ENOTSUP;
        bool a, b, f;
        rl_cu_layer_q8_needs(&lt, &a, &b, &f);
        q_xn |= a, q_attn |= b, q_ffn |= f;
        wb += lb;
    }
    wb += (uint64_t)c.n_embd * 4 * (2 * c.n_layer + 1) + (c.qkv_bias ? qkvd * 4 * c.n_layer : 0);
    uint64_t kvb = (uint64_t)c.n_blocks * rl_cu_kv_block_bytes(c.n_layer, c.n_head_kv, c.head_dim, c.kv_q8);
    if (!kvb) {
        snprintf(err, errlen, "cuda: an int8 KV cache needs head_dim a multiple of 32 (this model: %u)", c.head_dim);
        return -ENOTSUP;
    }
    uint32_t rows = c.max_prefill;
    /* chunk partials for the graph path's batches; prefill (unsplit) needs only the counters */
    size_t attn_scr = rl_cu_attn_scratch_size(c.max_batch, c.n_head, c.head_dim, (int64_t)bt_stride * RL_CU_KV_BLOCK);
    int64_t maxw = 0; /* the largest of a layer's four products (Q|K|V, O, gate|up, down) */
    for (uint32_t k = 0; k < 4; k++) {
        int64_t r, cc;
        rl_cu_w16_dims(&c, k, &r, &cc);
        maxw = r * cc > maxw ? r * cc : maxw;
    }
    int64_t xh_n = c.n_ff > c.n_embd ? c.n_ff : c.n_embd;
    if (qd > xh_n)
        xh_n = qd;
    uint64_t sb = (uint64_t)rows * c.n_embd * 4 + act_bytes(c.n_embd, rows, true) + act_bytes(qd, rows, true) +
                  act_bytes(c.n_ff, rows, true) + (uint64_t)rows * (qkvd + qd + 2 * (int64_t)c.n_ff) * 4 +
                  act_bytes(c.n_vocab, c.max_batch, false) + (uint64_t)c.max_batch * c.n_embd * 4 + attn_scr +
                  (uint64_t)rows * 16 + (uint64_t)rows * bt_stride * 4 + (uint64_t)c.max_batch * 4 +
                  (uint64_t)rows * xh_n * 2 + (uint64_t)rows * 8 + rl_cu_topk_dev_bytes(rows, c.max_batch) +
                  (uint64_t)rows * (c.n_embd / 32) * 4 + /* deferred norm sums */
                  (uint64_t)maxw * 2 * 3; /* scratch + 2 GEMM staging buffers */
    size_t free_b = 0, total_b = 0;
    if (rl_cu_check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo")) {
        snprintf(err, errlen, "cuda: %s", rl_cu_last_error());
        return -EIO;
    }
    uint64_t stg = (uint64_t)maxw * 2 * 3; /* the staging ring's 2 buffers and the split layers' scratch */
    uint64_t need = wb + kvb + sb + (256ull << 20); /* cuBLAS workspace and graphs */
    /* fp16 copies for the large steps (which then need no staging): AUTO keeps them when they fit
     * with 512 MiB to spare */
    uint64_t w16b = rl_cu_w16_bytes(&c, ty, lts);
    c.w16 = (uint8_t)rl_cu_w16_env(c.w16);
    if (c.w16 == RL_CU_W16_AUTO)
        c.w16 = need - stg + w16b + (512ull << 20) <= free_b ? RL_CU_W16_ON : RL_CU_W16_OFF;
    if (c.w16 != RL_CU_W16_ON) {
        w16b = 0;
    } else {
        sb -= stg;
        need -= stg;
    }
    fprintf(stderr,
            "cuda memory plan: weights %.1f MiB, fp16 copies %.1f MiB, KV cache %.1f MiB (%u blocks x %u positions, "
            "%s), scratch %.1f MiB; total %.1f MiB of %.1f MiB free\n",
            wb / MB, w16b / MB, kvb / MB, c.n_blocks, RL_CU_KV_BLOCK, c.kv_q8 ? "int8" : "fp16", sb / MB,
            (wb + w16b + kvb + sb) / MB, free_b / MB);
    need += w16b;
    if (need > free_b) {
        snprintf(err, errlen,
                 "cuda: model does not fit: needs %.0f MiB (weights %.0f, fp16 copies %.0f, KV %.0f, scratch %.0f) "
                 "but %.0f MiB free; lower the context or the KV budget%s",
                 need / MB, wb / MB, w16b / MB, kvb / MB, sb / MB, free_b / MB,
                 w16b ? ", or turn the fp16 copies off" : "");
        return -ENOMEM;
    }
    rl_cu_model *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->c = c;
    m->t = *ty;
    m->max_rows = rows;
    m->max_batch = c.max_batch;
    m->bt_stride = bt_stride;
    m->use_graphs = true;
    m->direct_want = -1;
    m->direct_ok = -1;
    m->norm_defer = -1;
    m->mvb = -1;
    m->rope = (rl_cu_rope){.n_head = (int)c.n_head, .n_head_kv = (int)c.n_head_kv, .head_dim = (int)c.head_dim,
                           .n_rot = (int)c.n_rot, .freq_base = c.rope_base, .neox = c.rope_neox};
    m->kv_bytes = kvb;
    m->scratch_bytes = sb;
    int rc = 0;
    m->layers = calloc(c.n_layer, sizeof *m->layers);
    if (!m->layers) {
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = rl_cu_check(cudaStreamCreateWithFlags(&m->s, cudaStreamNonBlocking), "stream")))
        goto fail;
    if ((rc = rl_cu_blas_create(&m->blas, m->s)) ||
        (c.w16 != RL_CU_W16_ON && (rc = rl_cu_gemm_reserve(m->blas, maxw, 2))))
        goto fail;
    if ((rc = rl_cu_mat_alloc(&m->tok_embd, ty->embd, c.n_vocab, c.n_embd)) ||
        (rc = rl_cu_mat_alloc(&m->output, ty->output, c.n_vocab, c.n_embd)) ||
        (rc = dalloc((void **)&m->output_norm, c.n_embd * 4, "norm")))
        goto fail;
    for (uint32_t l = 0; l < c.n_layer; l++) {
        rl_cu_layer *L = &m->layers[l];
        rl_cu_layer_types lt = rl_cu_layer_types_of(ty, lts, l);
        if ((rc = rl_cu_layer_alloc(&c, &lt, L)) ||
            (rc = dalloc((void **)&L->attn_norm, c.n_embd * 4, "norm")) ||
            (rc = dalloc((void **)&L->ffn_norm, c.n_embd * 4, "norm")) ||
            (c.qkv_bias && (rc = dalloc((void **)&L->bqkv, qkvd * 4, "bias"))))
            goto fail;
        m->weight_bytes += rl_cu_layer_bytes(L);
    }
    if (c.w16 == RL_CU_W16_ON && (rc = rl_cu_w16_alloc(m, w16b)))
        goto fail;
    m->weight_bytes += m->tok_embd.bytes + m->output.bytes;
    if ((rc = dalloc((void **)&m->x, (size_t)rows * c.n_embd * 4, "x")) ||
        (rc = alloc_act(&m->xn, c.n_embd, rows, q_xn)) || (rc = alloc_act(&m->attn, qd, rows, q_attn)) ||
        (c.n_embd % 32 == 0 && (rc = dalloc((void **)&m->xss, (size_t)rows * (c.n_embd / 32) * 4, "norm sums"))) ||
        (rc = alloc_act(&m->ffn, c.n_ff, rows, q_ffn)) ||
        (rc = dalloc((void **)&m->qkv, (size_t)rows * qkvd * 4, "qkv")) ||
        (rc = dalloc((void **)&m->q, (size_t)rows * qd * 4, "q")) ||
        (rc = dalloc((void **)&m->gu, (size_t)rows * 2 * c.n_ff * 4, "gu")) ||
        (rc = alloc_act(&m->logits, c.n_vocab, c.max_batch, false)) ||
        (rc = dalloc((void **)&m->xo, (size_t)c.max_batch * c.n_embd * 4, "output rows")) ||
        (rc = dalloc(&m->attn_scratch, attn_scr, "attention scratch")) ||
        (rc = rl_cu_check(cudaMemset(m->attn_scratch, 0, attn_scr), "zero attention scratch")) ||
        /* ids, then the block tables: one upload a step (rl_cu_step.c) */
        (rc = dalloc((void **)&m->d_in, (size_t)rows * 16 + (size_t)rows * bt_stride * 4, "ids and block tables")) ||
        (rc = dalloc((void **)&m->d_out, (size_t)c.max_batch * 4, "ids")) ||
        (rc = dalloc((void **)&m->d_dst, (size_t)rows * 8, "token addresses")) ||
        (rc = dalloc((void **)&m->d_topk, rl_cu_topk_dev_bytes(rows, c.max_batch), "top-k")) ||
        (rc = dalloc(&m->kv.pool, kvb, "KV cache")) ||
        (rc = dalloc(&m->xh, (size_t)rows * xh_n * 2, "fp16 activations")) ||
        (c.w16 != RL_CU_W16_ON && (rc = dalloc(&m->wscratch, (size_t)maxw * 2, "fp16 weight scratch"))))
        goto fail;
    if ((rc = rl_cu_check(cudaMallocHost((void **)&m->h_in, (size_t)rows * 16 + (size_t)rows * bt_stride * 4),
                          "pinned")) ||
        (rc = rl_cu_check(cudaMallocHost((void **)&m->h_out, (size_t)c.max_batch * 4), "pinned")) ||
        (rc = rl_cu_check(cudaMallocHost((void **)&m->h_dst, (size_t)rows * 8), "pinned")))
        goto fail;
    m->d_bt = m->d_in + 4 * (size_t)rows;
    m->kv = (rl_cu_kv){.pool = m->kv.pool, .n_blocks = c.n_blocks, .n_layer = c.n_layer, .n_head_kv = c.n_head_kv,
                       .head_dim = c.head_dim, .q8 = c.kv_q8, .bt = m->d_bt, .bt_stride = bt_stride};
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
    rl_cu_model_drop_graphs(m);
    for (uint32_t l = 0; m->layers && l < m->c.n_layer; l++) {
        rl_cu_layer *L = &m->layers[l];
        rl_cu_layer_free_mats(L);
        cudaFree(L->attn_norm);
        cudaFree(L->ffn_norm);
        cudaFree(L->bqkv);
    }
    rl_cu_w16_free(m);
    free(m->layers);
    cudaFree(m->kv.pool);
    rl_cu_mat_free(&m->tok_embd);
    rl_cu_mat_free(&m->output);
    cudaFree(m->output_norm);
    cudaFree(m->inv_freq);
    cudaFree(m->x);
    free_act(&m->xn);
    cudaFree(m->xss);
    free_act(&m->attn);
    free_act(&m->ffn);
    free_act(&m->logits);
    cudaFree(m->qkv);
    cudaFree(m->q);
    cudaFree(m->gu);
    cudaFree(m->attn_scratch);
    cudaFree(m->xo);
    cudaFree(m->d_in); /* and d_bt */
    cudaFree(m->d_out);
    cudaFree(m->d_dst);
    cudaFree(m->d_topk);
    cudaFreeHost(m->h_topk);
    cudaFreeHost(m->h_dst);
    cudaFree(m->xh);
    cudaFreeHost(m->h_in);
    cudaFreeHost(m->h_out);
    rl_cu_blas_destroy(m->blas);
    if (m->s)
        cudaStreamDestroy(m->s);
    free(m);
}

/* The accessors below hand out weights for writing: the fp16 copies are stale from then on. */
rl_cu_layer *rl_cu_model_layer(rl_cu_model *m, uint32_t il)
{
    m->w16_ready = false;
    return il < m->c.n_layer ? &m->layers[il] : NULL;
}
rl_cu_mat *rl_cu_model_layer_mat(rl_cu_model *m, uint32_t il, rl_cu_role role, int64_t *row0)
{
    m->w16_ready = false;
    return il < m->c.n_layer ? rl_cu_layer_role(&m->c, &m->layers[il], role, row0) : NULL;
}
rl_cu_mat *rl_cu_model_tok_embd(rl_cu_model *m) { return &m->tok_embd; }
rl_cu_mat *rl_cu_model_output(rl_cu_model *m) { return &m->output; }
float *rl_cu_model_output_norm(rl_cu_model *m) { return m->output_norm; }
uint64_t rl_cu_model_weight_bytes(const rl_cu_model *m) { return m->weight_bytes; }
uint64_t rl_cu_model_kv_bytes(const rl_cu_model *m) { return m->kv_bytes; }
void rl_cu_model_set_graphs(rl_cu_model *m, bool on) { m->use_graphs = on; }
const rl_cu_kv *rl_cu_model_kv(const rl_cu_model *m) { return &m->kv; }

void rl_cu_model_drop_graphs(rl_cu_model *m)
{
    for (int b = 0; b < RL_CU_N_BUCKETS; b++)
        if (m->graph[b]) {
            cudaGraphExecDestroy(m->graph[b]);
            m->graph[b] = NULL;
        }
}

int rl_cu_model_copy_block(rl_cu_model *m, uint32_t dst, uint32_t src)
{
    RL_CU_TRY(rl_cu_kv_copy_block(&m->kv, dst, src, m->s));
    return rl_cu_check(cudaStreamSynchronize(m->s), "KV block copy");
}

int rl_cu_model_set_rope_freqs(rl_cu_model *m, const float *inv_freq)
{
    if (!m->inv_freq && dalloc((void **)&m->inv_freq, m->c.n_rot / 2 * 4, "rope table"))
        return -ENOMEM;
    m->rope.inv_freq = m->inv_freq;
    rl_cu_model_drop_graphs(m); /* graphs hold the old parameters */
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
    m->w16_ready = false;
    rc = rc ? rc : rl_cu_mat_fill_random(&m->tok_embd, seed + 1, m->s);
    rc = rc ? rc : rl_cu_mat_fill_random(&m->output, seed + 2, m->s);
    rc = rc ? rc : fill_ones(m->output_norm, m->c.n_embd, m->s);
    for (uint32_t l = 0; l < m->c.n_layer && !rc; l++) {
        rl_cu_layer *L = &m->layers[l];
        uint64_t b = seed + 16 * (l + 1);
        rc = rc ? rc : rl_cu_layer_fill_random(L, b, m->s);
        rc = rc ? rc : fill_ones(L->attn_norm, m->c.n_embd, m->s);
        rc = rc ? rc : fill_ones(L->ffn_norm, m->c.n_embd, m->s);
        if (L->bqkv && !rc)
            rc = rl_cu_check(cudaMemsetAsync(L->bqkv, 0, rl_cu_qkv_dim(&m->c) * 4, m->s), "bias");
    }
    return rc ? rc : rl_cu_check(cudaStreamSynchronize(m->s), "fill_random");
}

