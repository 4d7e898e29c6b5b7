/* rl_engine_cuda.c - the CUDA engine: the model engine of rl_engine_llm.c
 * (sequences, paged KV bookkeeping, prefix sharing, preemption, scheduling,
 * sampling) with the GPU model as its forward pass (rl_llm_backend): weight
 * upload from the CPU loader's mapping, the KV pool on the device, each step's
 * ragged batch in one rl_cu_model_forward call. */
#include "rl_engine_cuda.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl_cu_model.h"
#include "rl_cuda.h"
#include "rl_kv.h"
#include "rl_llm.h"
#include "rl_model.h"

typedef struct cu_backend {
    rl_llm_backend be;
    rl_cu_model *g;
    uint64_t kv_budget;        /* 0: from the device's free memory */
    bool kv_q8;                /* int8 KV cache */
    int w16;                   /* rl_cu_w16_mode of the model */
    uint32_t cap;              /* tokens the step scratch holds */
    int32_t *tok, *pos, *row, *oidx, *otok;
    const uint32_t **bt;
    uint32_t *bt_len;
    float **lg;
    int32_t *tk;               /* out row -> top-k wanted (0: none) */
    const rl_cu_cand **top;    /* out row -> its candidates after the step, or NULL */
    float *lse;                /* out row -> the normalizer with them */
    uint32_t *oseq;            /* out row -> fseq */
    uint64_t *odev;            /* out row -> device address of its zero-copy cell, or 0 */
    rl_cu_hostmap *hm;         /* client regions registered with CUDA (zero copy) */
    float *plg;                /* page-locked logits rows the device copies into (lazily grown), or NULL */
    uint32_t plg_rows, n_vocab;
} cu_backend;

_Static_assert(sizeof(rl_cu_cand) == sizeof(rl_logit_cand) &&
                   offsetof(rl_cu_cand, logit) == offsetof(rl_logit_cand, logit) &&
                   offsetof(rl_cu_cand, id) == offsetof(rl_logit_cand, id),
               "candidates cross from the device to the sampler as they are");

/* ---- upload ------------------------------------------------------------------ */
/* The type a weight has on the GPU: Q4_1, Q5_0 and Q5_1 (the K-quant mixes'
 * stand-ins for rows no 256-block fits) have no kernels there and go up as
 * Q8_0, requantized on the host at load; the rest as they are. */
static rl_type gpu_type(rl_type t)
{
    return t == RL_TYPE_Q4_1 || t == RL_TYPE_Q5_0 || t == RL_TYPE_Q5_1 ? RL_TYPE_Q8_0 : t;
}

static int set_rows(rl_cu_mat *dst, int64_t row0, const rl_weight *w, char *err, size_t errlen)
{
    const void *data = w->data;
    uint8_t *conv = NULL;
    rl_type gt = gpu_type(w->type);
    if (gt != w->type) { /* row by row: to floats, then Q8_0 */
        const rl_type_traits *from = rl_type_get(w->type), *to = rl_type_get(gt);
        size_t rb = rl_type_row_size(w->type, w->ne0), gb = rl_type_row_size(gt, w->ne0);
        float *row = malloc(sizeof(float) * (size_t)w->ne0);
        conv = malloc(gb * (size_t)w->ne1);
        if (!row || !conv || !from || !to || !gb) {
            free(row);
            free(conv);
            snprintf(err, errlen, "cuda: out of host memory converting a %s matrix", from ? from->name : "?");
            return -ENOMEM;
        }
        for (int64_t r = 0; r < w->ne1; r++) {
            from->to_float((const uint8_t *)w->data + (size_t)r * rb, row, w->ne0);
            to->from_float(row, conv + (size_t)r * gb, w->ne0);
        }
        free(row);
        data = conv;
    }
    int rc = rl_cu_mat_set_rows(dst, row0, data, w->ne1);
    free(conv);
    if (rc)
        snprintf(err, errlen, "cuda: weight upload failed: %s", rl_cu_last_error());
    return rc;
}

/* A layer's matrices by rl_cu_role. */
static void layer_weights(const rl_layer *L, const rl_weight *w[RL_CU_W_N])
{
    w[RL_CU_W_Q] = &L->wq;
    w[RL_CU_W_K] = &L->wk;
    w[RL_CU_W_V] = &L->wv;
    w[RL_CU_W_O] = &L->wo;
    w[RL_CU_W_GATE] = &L->w_gate;
    w[RL_CU_W_UP] = &L->w_up;
    w[RL_CU_W_DOWN] = &L->w_down;
}

/* The GPU model's shape and types of a loaded CPU model (*lts: n_layer
 * entries to free). */
static int cu_shape(const rl_model *m, uint32_t n_ctx, rl_cu_model_cfg *c, rl_cu_model_types *ty,
                    rl_cu_layer_types **lts, char *err, size_t errlen)
{
    const rl_model_hparams *hp = &m->hp;
    const rl_layer *l0 = &m->layers[0];
    *ty = (rl_cu_model_types){gpu_type(m->tok_embd.type), gpu_type(m->output.type), gpu_type(l0->wq.type),
                              gpu_type(l0->wo.type),       gpu_type(l0->w_gate.type), gpu_type(l0->w_down.type)};
    /* Any per-tensor mix of supported types (Q4_K_M, Q5_K_M): types per layer. */
    *lts = calloc(hp->n_layer, sizeof **lts);
    if (!*lts)
        return -ENOMEM;
    for (uint32_t i = 0; i < hp->n_layer; i++) {
        const rl_layer *L = &m->layers[i];
        const rl_weight *w[RL_CU_W_N];
        layer_weights(L, w);
        for (int r = 0; r < RL_CU_W_N; r++)
            (*lts)[i].t[r] = gpu_type(w[r]->type);
        if ((L->bq != NULL) != (l0->bq != NULL) || (L->bq && (!L->bk || !L->bv))) {
            free(*lts);
            *lts = NULL;
            snprintf(err, errlen, "cuda: layer %u has partial q/k/v biases", i);
            return -ENOTSUP;
        }
    }
    *c = (rl_cu_model_cfg){.n_vocab = hp->n_vocab, .n_embd = hp->n_embd, .n_layer = hp->n_layer,
                           .n_head = hp->n_head, .n_head_kv = hp->n_head_kv, .head_dim = hp->head_dim,
                           .n_ff = hp->n_ff, .n_rot = hp->head_dim, .rms_eps = hp->rms_eps,
                           .rope_base = hp->rope_base, .rope_neox = hp->rope_neox, .qkv_bias = l0->bq != NULL,
                           .n_ctx = n_ctx};
    return 0;
}

int rl_cu_model_from_cpu(const rl_model *m, uint32_t n_ctx, uint32_t n_slots, uint32_t n_blocks, uint32_t max_prefill,
                         bool kv_q8, int w16, rl_cu_model **out, char *err, size_t errlen)
{
    const rl_model_hparams *hp = &m->hp;
    rl_cu_model_cfg c;
    rl_cu_model_types ty;
    rl_cu_layer_types *lts;
    int rc0 = cu_shape(m, n_ctx, &c, &ty, &lts, err, errlen);
    if (rc0)
        return rc0;
    c.n_slots = n_slots;
    c.n_blocks = n_blocks;
    c.max_prefill = max_prefill;
    c.kv_q8 = kv_q8;
    c.w16 = (uint8_t)w16;
    rl_cu_model *g;
    int rc = rl_cu_model_new_mixed(&c, &ty, lts, &g, err, errlen);
    free(lts);
    if (rc)
        return rc;
    int64_t Q = (int64_t)hp->n_head * hp->head_dim, KV = (int64_t)hp->n_head_kv * hp->head_dim;
    rc = set_rows(rl_cu_model_tok_embd(g), 0, &m->tok_embd, err, errlen);
    if (!rc)
        rc = set_rows(rl_cu_model_output(g), 0, &m->output, err, errlen);
    if (!rc)
        rc = rl_cu_upload_f32(rl_cu_model_output_norm(g), m->output_norm, hp->n_embd);
    if (!rc)
        rc = rl_cu_model_set_rope_freqs(g, m->rope_inv_freq);
    for (uint32_t i = 0; i < hp->n_layer && !rc; i++) {
        const rl_layer *L = &m->layers[i];
        rl_cu_layer *G = rl_cu_model_layer(g, i);
        const rl_weight *w[RL_CU_W_N];
        layer_weights(L, w);
        for (int r = 0; r < RL_CU_W_N && !rc; r++) { /* each role into its matrix (fused or its own) */
            int64_t row0;
            rl_cu_mat *dst = rl_cu_model_layer_mat(g, i, (rl_cu_role)r, &row0);
            rc = set_rows(dst, row0, w[r], err, errlen);
        }
        rc = rc ? rc : rl_cu_upload_f32(G->attn_norm, L->attn_norm, hp->n_embd);
        rc = rc ? rc : rl_cu_upload_f32(G->ffn_norm, L->ffn_norm, hp->n_embd);
        if (!rc && G->bqkv) {
            rc = rl_cu_upload_f32(G->bqkv, L->bq, Q);
            rc = rc ? rc : rl_cu_upload_f32(G->bqkv + Q, L->bk, KV);
            rc = rc ? rc : rl_cu_upload_f32(G->bqkv + Q + KV, L->bv, KV);
        }
    }
    if (rc) {
        if (!err[0])
            snprintf(err, errlen, "cuda: upload failed: %s", rl_cu_last_error());
        rl_cu_model_free(g);
        return rc;
    }
    *out = g;
    return 0;
}

/* ---- the backend ----------------------------------------------------------------- */
static int be_open(void *ctx, const rl_model *m, uint32_t n_ctx, uint32_t step_tokens, uint32_t *n_blocks, char *err,
                   size_t errlen)
{
    cu_backend *B = ctx;
    const rl_model_hparams *hp = &m->hp;
    B->n_vocab = hp->n_vocab;
    uint64_t bb = rl_cu_kv_block_bytes(hp->n_layer, hp->n_head_kv, hp->head_dim, B->kv_q8);
    if (!bb) {
        snprintf(err, errlen, "cuda: an int8 KV cache needs head_dim a multiple of 32 (this model: %u); use kv_type f16",
                 hp->head_dim);
        return -ENOTSUP;
    }
    uint64_t ctx_blocks = (n_ctx + RL_CU_KV_BLOCK - 1) / RL_CU_KV_BLOCK;
    uint64_t nb = *n_blocks;
    if (nb == 0) {
        uint64_t budget = B->kv_budget;
        if (budget == 0) { /* most of what the weights and scratch leave, up to 64 full contexts */
            size_t free_b = 0, total_b = 0;
            if (rl_cu_check(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo")) {
                snprintf(err, errlen, "cuda: %s", rl_cu_last_error());
                return -EIO;
            }
            uint64_t keep = (uint64_t)m->gguf->size + (2ull << 30);
            /* fp16 copies for prompt steps: AUTO keeps them when they take at most a
             * quarter of the free memory, and the KV pool gets the rest */
            uint64_t w16b = 0;
            B->w16 = rl_cu_w16_env(B->w16);
            if (B->w16 != RL_CU_W16_OFF) {
                rl_cu_model_cfg c;
                rl_cu_model_types ty;
                rl_cu_layer_types *lts;
                int rc = cu_shape(m, n_ctx, &c, &ty, &lts, err, errlen);
                if (rc)
                    return rc;
                w16b = rl_cu_w16_bytes(&c, &ty, lts);
                free(lts);
            }
            if (B->w16 == RL_CU_W16_AUTO)
                B->w16 = w16b <= free_b / 4 ? RL_CU_W16_ON : RL_CU_W16_OFF;
            if (B->w16 == RL_CU_W16_ON)
                keep += w16b;
            budget = free_b > keep ? (free_b - keep) / 10 * 8 : 0;
        }
        nb = budget / bb;
        if (nb > ctx_blocks * 64)
            nb = ctx_blocks * 64;
        if (nb < ctx_blocks) /* at least one full context: the plan then says whether it fits */
            nb = ctx_blocks;
    }
    if (nb > (1u << 24))
        nb = 1u << 24;
    B->cap = step_tokens;
    B->tok = malloc(sizeof(int32_t) * step_tokens * 5);
    B->bt = malloc(sizeof(*B->bt) * step_tokens);
    B->bt_len = malloc(sizeof(uint32_t) * step_tokens);
    B->lg = malloc(sizeof(float *) * step_tokens);
    B->oseq = malloc(sizeof(uint32_t) * step_tokens);
    B->odev = malloc(sizeof(uint64_t) * step_tokens);
    B->tk = malloc(sizeof(int32_t) * step_tokens);
    B->top = malloc(sizeof(*B->top) * step_tokens);
    B->lse = malloc(sizeof(float) * step_tokens);
    if (!B->tok || !B->bt || !B->bt_len || !B->lg || !B->oseq || !B->odev || !B->tk || !B->top || !B->lse) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    B->pos = B->tok + step_tokens;
    B->row = B->pos + step_tokens;
    B->oidx = B->row + step_tokens;
    B->otok = B->oidx + step_tokens;
    int rc = rl_cu_model_from_cpu(m, n_ctx, 0, (uint32_t)nb, step_tokens, B->kv_q8, B->w16, &B->g, err, errlen);
    if (rc)
        return rc;
    if ((rc = rl_cu_model_warmup(B->g))) {
        snprintf(err, errlen, "cuda: warm-up failed: %s", rl_cu_last_error());
        return rc;
    }
    *n_blocks = (uint32_t)nb;
    return 0;
}

/* Page-locked host rows for nl logits rows (one DMA per run of rows instead
 * of a staged copy per row from pageable memory: 64 sampled rows of a
 * 32,000-token vocabulary are 8 MB a step). false: keep the engine's. */
static bool pinned_rows(cu_backend *B, uint32_t nl)
{
    if (nl <= B->plg_rows)
        return B->plg != NULL;
    if (B->plg)
        cudaFreeHost(B->plg);
    B->plg = NULL;
    B->plg_rows = 0;
    if (cudaMallocHost((void **)&B->plg, (size_t)nl * B->n_vocab * sizeof(float)) != cudaSuccess) {
        cudaGetLastError();
        B->plg = NULL;
        return false;
    }
    B->plg_rows = nl;
    return true;
}

static int be_forward(void *ctx, rl_fwd_seq *seqs, uint32_t n)
{
    cu_backend *B = ctx;
    uint32_t t = 0, no = 0, nl = 0;
    for (uint32_t j = 0; j < n; j++)
        nl += seqs[j].logits != NULL;
    bool pinned = nl > 0 && pinned_rows(B, nl);
    uint32_t r = 0; /* page-locked rows handed out */
    bool any_top = false, any_norm = false;
    for (uint32_t j = 0; j < n; j++) {
        const rl_fwd_seq *f = &seqs[j];
        if (f->n_tok == 0 || t + f->n_tok > B->cap)
            return -EINVAL;
        B->bt[j] = f->kv->blocks;
        B->bt_len[j] = f->kv->n_blocks;
        for (uint32_t i = 0; i < f->n_tok; i++, t++) {
            B->tok[t] = f->tokens[i];
            B->pos[t] = (int32_t)(f->kv->n_pos + i);
            B->row[t] = (int32_t)j;
        }
        if (f->logits || f->argmax) {
            B->oidx[no] = (int32_t)t - 1;
            /* the rows side by side in page-locked memory, in output order (copied in runs) */
            B->lg[no] = f->logits && pinned ? B->plg + (size_t)(r++) * B->n_vocab : f->logits;
            /* zero copy: a greedy token goes from the GPU into the client's cell */
            B->odev[no] = f->argmax && f->tok_dst ? rl_cu_host_dev_ptr(B->hm, f->tok_dst, sizeof(int32_t)) : 0;
            /* a sampled row whose draw needs only its k best: those leave the device, not the row */
            B->tk[no] = f->logits && f->top_k <= B->be.max_top_k && f->top_k <= B->n_vocab ? (int32_t)f->top_k : 0;
            any_top |= B->tk[no] > 0;
            any_norm |= B->tk[no] > 0 && f->top_norm;
            B->oseq[no++] = j;
        }
    }
    rl_cu_batch b = {.n_tok = (int)t, .tokens = B->tok, .pos = B->pos, .row = B->row, .n_rows = (int)n,
                     .bt = B->bt, .bt_len = B->bt_len, .n_out = (int)no, .out_idx = B->oidx, .out_tok = B->otok,
                     .logits = B->lg, .tok_dev = B->hm ? B->odev : NULL, .top_k = any_top ? B->tk : NULL,
                     .top = B->top, .top_lse = any_norm ? B->lse : NULL};
    int rc = rl_cu_model_forward(B->g, &b);
    if (rc) {
        fprintf(stderr, "cuda step failed: %s\n", rc == -EINVAL ? "invalid batch" : rl_cu_last_error());
        return rc;
    }
    for (uint32_t j = 0; j < n; j++)
        seqs[j].kv->n_pos += seqs[j].n_tok;
    for (uint32_t i = 0; i < no; i++) {
        rl_fwd_seq *f = &seqs[B->oseq[i]];
        f->top = NULL;
        if (f->logits && any_top && B->tk[i] > 0 && B->top[i])
            f->top = (const rl_logit_cand *)B->top[i]; /* rl_cu_cand's layout */
        if (f->top && f->top_norm)
            f->norm = B->lse[i];
        else if (f->logits)
            f->logits = B->lg[i]; /* where the row is (rl_fwd_seq: valid until the next forward) */
        if (f->argmax)
            *f->argmax = B->otok[i];
        if (B->hm && B->odev[i])
            f->tok_dst = NULL; /* written by the GPU */
    }
    return 0;
}

static int be_copy_block(void *ctx, uint32_t dst, uint32_t src)
{
    return rl_cu_model_copy_block(((cu_backend *)ctx)->g, dst, src);
}

static uint64_t be_block_bytes(void *ctx)
{
    const rl_cu_kv *kv = rl_cu_model_kv(((cu_backend *)ctx)->g);
    return rl_cu_kv_block_bytes(kv->n_layer, kv->n_head_kv, kv->head_dim, kv->q8);
}

/* Zero copy: client regions, on the step thread between steps. */
static int be_map_region(void *ctx, void *base, size_t len)
{
    cu_backend *B = ctx;
    if (!B->hm && rl_cu_hostmap_new(&B->hm) < 0)
        return -ENOMEM;
    return rl_cu_host_register(B->hm, base, len);
}

static void be_unmap_region(void *ctx, void *base)
{
    cu_backend *B = ctx;
    if (B->hm)
        rl_cu_host_unregister(B->hm, base);
}

static void be_close(void *ctx)
{
    cu_backend *B = ctx;
    if (B->plg)
        cudaFreeHost(B->plg);
    rl_cu_hostmap_free(B->hm); /* unpins what the daemon left registered */
    rl_cu_model_free(B->g);
    free(B->tok);
    free(B->bt);
    free(B->bt_len);
    free(B->lg);
    free(B->oseq);
    free(B->odev);
    free(B->tk);
    free(B->top);
    free(B->lse);
    free(B);
}

int rl_engine_cuda_create_opts(const char *path, const rl_cuda_opts *o, rl_engine **out, char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = 0;
    if (rl_cu_device_count() <= 0) {
        snprintf(err, errlen, "cuda: no CUDA device");
        return -ENODEV;
    }
    rl_llm_opts lo;
    rl_llm_opts_default(&lo);
    lo.n_threads = 1;
    lo.n_ctx = o && o->n_ctx ? o->n_ctx : 0;
    lo.step_tokens = o && o->step_tokens ? o->step_tokens : 512;
    lo.kv_budget_bytes = o ? o->kv_budget_bytes : 0;
    lo.progress = o ? o->progress : NULL;
    lo.progress_ctx = o ? o->progress_ctx : NULL;
    if (!lo.n_ctx) { /* the training context, at most 4096 */
        rl_model *m;
        int rc = rl_model_load(path, &m, err, errlen);
        if (rc < 0)
            return rc;
        lo.n_ctx = m->hp.n_ctx_train < 4096 ? m->hp.n_ctx_train : 4096;
        rl_model_free(m);
    }
    cu_backend *B = calloc(1, sizeof *B);
    if (!B) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    /* RL_CU_TOPK=0 (measurement): sampled rows always leave the device whole */
    const char *tk_env = getenv("RL_CU_TOPK");
    B->be = (rl_llm_backend){.name = "cuda", .ctx = B, .open = be_open, .forward = be_forward,
                             .max_top_k = tk_env && !strcmp(tk_env, "0") ? 0 : RL_CU_TOPK_MAX,
                             .copy_block = be_copy_block, .block_bytes = be_block_bytes,
                             .map_region = be_map_region, .unmap_region = be_unmap_region, .close = be_close};
    B->kv_budget = lo.kv_budget_bytes;
    B->kv_q8 = o && o->kv_q8;
    B->w16 = o ? o->w16 : RL_CU_W16_AUTO;
    lo.backend = &B->be;
    return rl_engine_llm_create_opts(path, &lo, out, err, errlen); /* owns B from here, even on failure */
}

int rl_engine_cuda_create(const char *path, int n_threads, rl_engine **out, char *err, size_t errlen)
{
    (void)n_threads; /* the GPU does the work */
    return rl_engine_cuda_create_opts(path, NULL, out, err, errlen);
}
