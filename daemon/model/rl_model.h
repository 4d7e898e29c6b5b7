/* rl_model.h - a Llama-family model loaded from GGUF (architectures "llama"
 * and "qwen2"). Weight matrices are used in place inside the mapping (one copy
 * for every client); only small vectors (norms, biases, RoPE factors) are
 * converted to float. Every tensor's type and shape is checked against the
 * metadata before use. */
#ifndef RL_MODEL_H
#define RL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rl_gguf.h"
#include "rl_types.h"

typedef struct rl_model_hparams {
    char arch[32];
    char name[64];
    uint32_t n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
    float rms_eps, rope_base, rope_scale; /* rope_scale: linear position divisor (1: none) */
    bool rope_neox;                       /* qwen2: rotate halves; llama: adjacent pairs */
} rl_model_hparams;

/* A weight matrix: rows of ne0 values (ne1 rows), stored as type. */
typedef struct rl_weight {
    const void *data;
    rl_type type;
    int64_t ne0, ne1;
} rl_weight;

typedef struct rl_layer {
    float *attn_norm, *ffn_norm;   /* n_embd */
    float *bq, *bk, *bv;           /* biases (qwen2) or NULL */
    rl_weight wq, wk, wv, wo;
    rl_weight w_gate, w_up, w_down;
} rl_layer;

typedef struct rl_model {
    rl_gguf *gguf;                 /* owns the mapping */
    rl_model_hparams hp;
    rl_weight tok_embd, output;    /* output == tok_embd when tied */
    float *output_norm;
    rl_layer *layers;
    float *rope_inv_freq;          /* head_dim/2 angular frequencies, scaling applied */
    rl_type main_type;             /* most common matrix type, by bytes */
    uint64_t weight_bytes;
} rl_model;

/* Open and validate a GGUF model file. Returns 0 or a negative errno with a
 * message in err (-ENOENT, -EINVAL bad file, -ENOTSUP unsupported arch/type). */
int rl_model_load(const char *path, rl_model **out, char *err, size_t errlen);
/* Same over an already opened GGUF; on success the model owns g. */
int rl_model_from_gguf(rl_gguf *g, rl_model **out, char *err, size_t errlen);
void rl_model_free(rl_model *m);

/* Dequantize one row (row < ne1) of a weight into dst (ne0 floats). */
void rl_weight_row(const rl_weight *w, int64_t row, float *dst);

/* ---- the batched forward pass (rl_forward.c) ---- */

typedef struct rl_pool rl_pool;
typedef struct rl_kv rl_kv;
typedef struct rl_kv_seq rl_kv_seq;
typedef struct rl_fwd rl_fwd;

/* A token and its logit (top-k candidates). */
typedef struct rl_logit_cand {
    float logit;
    int32_t id;
} rl_logit_cand;

/* One sequence's part of a forward batch: n_tok tokens at positions
 * kv->n_pos, kv->n_pos + 1, ... (KV room must already be reserved). */
typedef struct rl_fwd_seq {
    rl_kv_seq *kv;
    const int32_t *tokens;
    uint32_t n_tok;       /* >= 1 */
    float *logits;        /* NULL, or n_vocab floats: logits after the last token (a device
                           * backend may point it at its own host memory holding them,
                           * valid until its next forward) */
    int32_t *argmax;      /* NULL, or (device backends, rl_llm_backend) where the greedy
                           * token after the last token goes; logits may then be NULL */
    int32_t *tok_dst;     /* with argmax, device backends: NULL, or a host address in a
                           * mapped client region (rl_step_item.tok_dst) that should get the
                           * token too; the backend sets it to NULL when its device wrote it */
    uint32_t top_k;       /* with logits, device backends: > 0 lets the backend hand back only
                           * the top_k best logits in top instead of the row (rl_sample order:
                           * logit descending, ties by lower id) when they are all finite */
    const rl_logit_cand *top; /* out: NULL (the row is in logits), or those candidates, best
                               * first (the backend's memory, valid until its next forward) */
    bool top_norm;        /* in, with top_k: the candidates must come with norm */
    float norm;           /* out, with top and top_norm: log(sum over the row of exp(logit - top[0].logit)) */
} rl_fwd_seq;

/* Scratch for batches of up to max_tokens tokens. */
int rl_fwd_new(const rl_model *m, rl_kv *kv, rl_pool *pool, uint32_t max_tokens, rl_fwd **out);
void rl_fwd_free(rl_fwd *f);
/* Run the model over every token of every sequence at once; each weight
 * matrix is applied once to the whole batch. Advances each kv->n_pos.
 * Returns 0, -EINVAL (bad token id, too many tokens) or -ENOSPC (KV room missing). */
int rl_forward(rl_fwd *f, rl_fwd_seq *seqs, uint32_t n_seqs);

#endif
