/* rl_engine_cuda.c - rl_engine over the GPU model: weight upload from the CPU
 * loader's mapping, sequences in KV slots, prefill chunks and batched decode
 * steps, sampling. */
#include "rl_engine_cuda.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl_cu_model.h"
#include "rl_cuda.h"
#include "rl_model.h"
#include "rl_sample.h"
#include "rl_engine_text.h"

typedef struct cuda_engine {
    rl_engine base;
    rl_model *m;
    rl_engine_text text; /* tokenizer and chat template */
    rl_cu_model *g;
    uint32_t n_ctx, n_slots, max_prefill;
    uint8_t *slot_used;
    float *logits; /* RL_CU_MAX_BATCH rows of n_vocab */
    rl_cu_hostmap *hm; /* ZERO COPY (zc): client regions registered with CUDA */
} cuda_engine;

struct rl_seq {
    int32_t *prompt;
    uint32_t n_prompt, n_fed; /* prompt tokens already in the KV cache */
    uint32_t n_pos;           /* positions in the KV cache */
    int32_t next;             /* sampled token still to be fed, or -1 */
    int32_t slot;
    bool greedy;              /* the GPU's argmax is the answer */
    rl_sampler smp;
};

static cuda_engine *impl(rl_engine *e)
{
    return (cuda_engine *)e->impl;
}

/* ---- upload ------------------------------------------------------------------ */
static int set_rows(rl_cu_mat *dst, int64_t row0, const rl_weight *w, char *err, size_t errlen)
{
    int rc = rl_cu_mat_set_rows(dst, row0, w->data, w->ne1);
    if (rc)
        snprintf(err, errlen, "cuda: weight upload failed: %s", rl_cu_last_error());
    return rc;
}

int rl_cu_model_from_cpu(const rl_model *m, uint32_t n_ctx, uint32_t n_slots, uint32_t max_prefill, rl_cu_model **out,
                         char *err, size_t errlen)
{
    const rl_model_hparams *hp = &m->hp;
    const rl_layer *l0 = &m->layers[0];
    rl_cu_model_types ty = {m->tok_embd.type, m->output.type, l0->wq.type, l0->wo.type, l0->w_gate.type, l0->w_down.type};
    for (uint32_t i = 0; i < hp->n_layer; i++) {
        const rl_layer *L = &m->layers[i];
        if (L->wq.type != ty.qkv || L->wk.type != ty.qkv || L->wv.type != ty.qkv || L->wo.type != ty.o ||
            L->w_gate.type != ty.gu || L->w_up.type != ty.gu || L->w_down.type != ty.down) {
            snprintf(err, errlen, "cuda: layer %u mixes weight types (q/k/v or gate/up differ, or layers differ); "
                     "not supported by the CUDA backend yet", i);
            return -ENOTSUP;
        }
        if ((L->bq != NULL) != (l0->bq != NULL) || (L->bq && (!L->bk || !L->bv))) {
            snprintf(err, errlen, "cuda: layer %u has partial q/k/v biases", i);
            return -ENOTSUP;
        }
    }
    rl_cu_model_cfg c = {.n_vocab = hp->n_vocab, .n_embd = hp->n_embd, .n_layer = hp->n_layer, .n_head = hp->n_head,
                         .n_head_kv = hp->n_head_kv, .head_dim = hp->head_dim, .n_ff = hp->n_ff,
                         .n_rot = hp->head_dim, .rms_eps = hp->rms_eps, .rope_base = hp->rope_base,
                         .rope_neox = hp->rope_neox, .qkv_bias = l0->bq != NULL, .n_ctx = n_ctx,
                         .n_slots = n_slots, .max_prefill = max_prefill};
    rl_cu_model *g;
    int rc = rl_cu_model_new(&c, &ty, &g, err, errlen);
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
        rc = set_rows(&G->wqkv, 0, &L->wq, err, errlen);
        rc = rc ? rc : set_rows(&G->wqkv, Q, &L->wk, err, errlen);
        rc = rc ? rc : set_rows(&G->wqkv, Q + KV, &L->wv, err, errlen);
        rc = rc ? rc : set_rows(&G->wo, 0, &L->wo, err, errlen);
        rc = rc ? rc : set_rows(&G->wgu, 0, &L->w_gate, err, errlen);
        rc = rc ? rc : set_rows(&G->wgu, hp->n_ff, &L->w_up, err, errlen);
        rc = rc ? rc : set_rows(&G->wdown, 0, &L->w_down, err, errlen);
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

/* ---- sequences ---------------------------------------------------------------- */
static int cu_seq_new(rl_engine *e, const rl_seq_desc *d, rl_seq **out)
{
    cuda_engine *E = impl(e);
    *out = NULL;
    if (!d || !d->prompt || d->n_prompt == 0)
        return -EINVAL;
    if ((uint64_t)d->n_prompt + d->max_tokens > E->n_ctx)
        return -E2BIG;
    for (uint32_t i = 0; i < d->n_prompt; i++)
        if (d->prompt[i] < 0 || (uint32_t)d->prompt[i] >= E->m->hp.n_vocab)
            return -EINVAL;
    int32_t slot = -1;
    for (uint32_t i = 0; i < E->n_slots && slot < 0; i++)
        if (!E->slot_used[i])
            slot = (int32_t)i;
    if (slot < 0)
        return -ENOMEM; /* every KV slot is taken */
    rl_seq *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->prompt = malloc(sizeof(int32_t) * d->n_prompt);
    if (!s->prompt || rl_sample_init(&s->smp, &d->sampling, E->m->hp.n_vocab) < 0) {
        free(s->prompt);
        free(s);
        return -ENOMEM;
    }
    memcpy(s->prompt, d->prompt, sizeof(int32_t) * d->n_prompt);
    s->n_prompt = d->n_prompt;
    s->next = -1;
    s->slot = slot;
    /* The GPU argmax equals the sampler's choice only without penalties. */
    s->greedy = (s->smp.p.temperature <= 0 || s->smp.p.top_k == 1) &&
                (s->smp.p.repeat_penalty == 1.0f || s->smp.p.repeat_last_n == 0);
    E->slot_used[slot] = 1;
    for (uint32_t i = 0; i < d->n_prompt; i++)
        rl_sample_accept(&s->smp, d->prompt[i]);
    *out = s;
    return 0;
}

static void cu_seq_free(rl_engine *e, rl_seq *s)
{
    if (!s)
        return;
    impl(e)->slot_used[s->slot] = 0;
    rl_sample_free(&s->smp);
    free(s->prompt);
    free(s);
}

static void take_token(rl_seq *s, rl_step_item *it, int32_t greedy_tok, float *logits)
{
    int32_t tok = s->greedy ? greedy_tok : rl_sample_next(&s->smp, logits);
    rl_sample_accept(&s->smp, tok);
    s->next = tok;
    it->token = tok;
}

/* ZERO COPY (zc): device addresses of the greedy items' tok_dst (the GPU
 * writes those ids); 0 where the host stores the id (sampled on the host, or
 * not registered). */
static void zc_set_dst(cuda_engine *E, const rl_step_item *items, const uint32_t *idx, int n, uint64_t *dst)
{
    for (int j = 0; j < n; j++) {
        const rl_step_item *it = &items[idx[j]];
        dst[j] = it->tok_dst && it->seq->greedy ? rl_cu_host_dev_ptr(E->hm, it->tok_dst, sizeof(int32_t)) : 0;
    }
    rl_cu_model_set_tok_dst(E->g, dst, n);
}

/* Decode items idx[0..n-1] in one batched step. */
static int decode_group(cuda_engine *E, rl_step_item *items, const uint32_t *idx, int n)
{
    int32_t tok[RL_CU_MAX_BATCH], pos[RL_CU_MAX_BATCH], slot[RL_CU_MAX_BATCH], out[RL_CU_MAX_BATCH];
    bool need_logits = false;
    for (int j = 0; j < n; j++) {
        rl_seq *s = items[idx[j]].seq;
        tok[j] = s->next;
        pos[j] = (int32_t)s->n_pos;
        slot[j] = s->slot;
        need_logits |= !s->greedy;
    }
    uint64_t dst[RL_CU_MAX_BATCH] = {0};
    zc_set_dst(E, items, idx, n, dst); /* ZERO COPY (zc) */
    int rc = rl_cu_model_decode(E->g, n, tok, pos, slot, out, need_logits ? E->logits : NULL);
    if (rc)
        return rc;
    for (int j = 0; j < n; j++) {
        rl_seq *s = items[idx[j]].seq;
        s->n_pos++;
        take_token(s, &items[idx[j]], out[j], E->logits + (size_t)j * E->m->hp.n_vocab);
        if (items[idx[j]].tok_dst && !dst[j]) /* ZERO COPY (zc): the host stores it */
            *items[idx[j]].tok_dst = items[idx[j]].token;
    }
    return 0;
}

static int cu_step(rl_engine *e, rl_step_item *items, uint32_t n)
{
    cuda_engine *E = impl(e);
    uint32_t idx[RL_CU_MAX_BATCH];
    int ng = 0, rc = 0;
    for (uint32_t i = 0; i < n; i++) {
        items[i].token = -1;
        items[i].status = 0;
    }
    for (uint32_t i = 0; i < n && !rc; i++) {
        rl_seq *s = items[i].seq;
        if (!s) {
            items[i].status = -EINVAL;
            continue;
        }
        if (s->n_fed < s->n_prompt) { /* one prompt chunk */
            uint32_t take = s->n_prompt - s->n_fed;
            if (take > E->max_prefill)
                take = E->max_prefill;
            if (s->n_pos + take > E->n_ctx) {
                items[i].status = -ENOSPC;
                continue;
            }
            bool last = s->n_fed + take == s->n_prompt;
            int32_t t;
            rc = rl_cu_model_prefill(E->g, s->slot, (int32_t)s->n_pos, s->prompt + s->n_fed, (int)take, &t,
                                     last && !s->greedy ? E->logits : NULL);
            if (rc)
                break;
            s->n_fed += take;
            s->n_pos += take;
            if (last) {
                take_token(s, &items[i], t, E->logits);
                if (items[i].tok_dst) /* ZERO COPY (zc): first token, stored by the host */
                    *items[i].tok_dst = items[i].token;
            }
            continue;
        }
        if (s->next < 0) {
            items[i].status = -EINVAL;
            continue;
        }
        if (s->n_pos >= E->n_ctx) {
            items[i].status = -ENOSPC;
            continue;
        }
        idx[ng++] = i;
        if (ng == RL_CU_MAX_BATCH) {
            rc = decode_group(E, items, idx, ng);
            ng = 0;
        }
    }
    if (!rc && ng)
        rc = decode_group(E, items, idx, ng);
    if (rc) {
        fprintf(stderr, "cuda step failed: %s\n", rl_cu_last_error());
        for (uint32_t i = 0; i < n; i++)
            items[i].status = rc;
    }
    return rc;
}

/* ---- text --------------------------------------------------------------------- */
static int cu_tokenize(rl_engine *e, const char *text, size_t len, bool add_special,
                       bool parse_special, int32_t *out, size_t cap)
{
    return rl_engine_text_tokenize(&impl(e)->text, text, len, add_special, parse_special, out, cap);
}

static int cu_token_piece(rl_engine *e, int32_t tok, char *buf, size_t cap)
{
    return rl_engine_text_piece(&impl(e)->text, tok, buf, cap);
}

static bool cu_is_eog(rl_engine *e, int32_t tok)
{
    return rl_engine_text_is_eog(&impl(e)->text, tok);
}

static int cu_chat_tokenize(rl_engine *e, const rl_chat_msg *msgs, uint32_t n, bool add_special,
                             int32_t *out, size_t cap)
{
    return rl_engine_text_chat_tokenize(&impl(e)->text, msgs, n, add_special, out, cap);
}

static int cu_chat_format(rl_engine *e, const rl_chat_msg *msgs, uint32_t n, char *out, size_t cap)
{
    return rl_engine_text_chat(&impl(e)->text, msgs, n, out, cap);
}

static void cu_get_info(rl_engine *e, rl_engine_info *info)
{
    cuda_engine *E = impl(e);
    rl_engine_text_model_info(&E->text, E->m, info);
    snprintf(info->backend, sizeof info->backend, "cuda");
    info->n_ctx = E->n_ctx;
    info->kv_bytes = rl_cu_model_kv_bytes(E->g);
}

static void cu_destroy(rl_engine *e)
{
    if (!e)
        return;
    cuda_engine *E = impl(e);
    rl_cu_hostmap_free(E->hm); /* ZERO COPY (zc): unpins what the daemon left registered */
    rl_cu_model_free(E->g);
    rl_engine_text_free(&E->text);
    rl_model_free(E->m);
    free(E->slot_used);
    free(E->logits);
    free(E);
}

/* ZERO COPY (zc): client regions, on the step thread between steps. */
static int cu_map_region(rl_engine *e, void *base, size_t len)
{
    cuda_engine *E = impl(e);
    if (!E->hm && rl_cu_hostmap_new(&E->hm) < 0)
        return -ENOMEM;
    return rl_cu_host_register(E->hm, base, len);
}

static void cu_unmap_region(rl_engine *e, void *base)
{
    rl_cu_host_unregister(impl(e)->hm, base);
}

static const rl_engine_ops cuda_ops = {
    .seq_new = cu_seq_new, .seq_free = cu_seq_free, .step = cu_step, .tokenize = cu_tokenize,
    .token_piece = cu_token_piece, .is_eog = cu_is_eog, .chat_format = cu_chat_format,
    .chat_tokenize = cu_chat_tokenize,
    .get_info = cu_get_info, .destroy = cu_destroy,
    .map_region = cu_map_region, .unmap_region = cu_unmap_region, /* ZERO COPY (zc) */
};

int rl_engine_cuda_create_opts(const char *path, const rl_cuda_opts *o, rl_engine **out, char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen)
        err[0] = 0;
    if (rl_cu_device_count() <= 0) {
        snprintf(err, errlen, "cuda: no CUDA device");
        return -ENODEV;
    }
    cuda_engine *E = calloc(1, sizeof *E);
    if (!E) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    E->base.ops = &cuda_ops;
    E->base.impl = E;
    int rc = rl_model_load(path, &E->m, err, errlen);
    if (rc < 0)
        goto bad;
    const rl_model_hparams *hp = &E->m->hp;
    rl_engine_text_init(&E->text, E->m->gguf);
    E->n_ctx = o && o->n_ctx ? o->n_ctx : (hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096);
    E->n_slots = o && o->n_slots ? o->n_slots : 8;
    E->max_prefill = 512;
    E->slot_used = calloc(E->n_slots, 1);
    E->logits = malloc(sizeof(float) * hp->n_vocab * RL_CU_MAX_BATCH);
    if (!E->slot_used || !E->logits) {
        snprintf(err, errlen, "out of memory");
        rc = -ENOMEM;
        goto bad;
    }
    rc = rl_cu_model_from_cpu(E->m, E->n_ctx, E->n_slots, E->max_prefill, &E->g, err, errlen);
    if (rc)
        goto bad;
    *out = &E->base;
    return 0;
bad:
    cu_destroy(&E->base);
    return rc;
}

int rl_engine_cuda_create(const char *path, int n_threads, rl_engine **out, char *err, size_t errlen)
{
    (void)n_threads; /* the GPU does the work; the CPU loader needs no pool */
    return rl_engine_cuda_create_opts(path, NULL, out, err, errlen);
}
