/* tm_util.h - helpers for the model tests: random GGUF models of a given
 * shape and type, a float64 reference forward pass, and a small driver of the
 * optimized path (model + KV cache + thread pool + forward). */
#ifndef TM_UTIL_H
#define TM_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "rl_kv.h"
#include "rl_model.h"
#include "rl_pool.h"
#include "rl_types.h"

typedef struct tm_spec {
    const char *arch;        /* "llama" or "qwen2" */
    rl_type type;            /* type of the weight matrices */
    uint32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
    bool tied;               /* no output.weight */
    bool rope_freqs;         /* add a rope_freqs.weight (Llama 3 scaling) */
    const float *rope_freqs_values; /* its values (head_dim/2), else random */
    float llama3_factor;     /* > 0: rope.scaling.type "llama3" metadata with this factor,
                                low 1, high 4, original context 64 */
    float rope_base;
    uint64_t seed;
    const char *bad_shape;   /* write this tensor with one row too many */
    const char *missing;     /* leave this tensor out */
    const char *raw_unsupported; /* write this matrix as Q2_K (no kernel) with zero bytes; n_embd % 256 == 0 */
    bool v_own_type;         /* attn_v.weight in v_type instead of type (a per-tensor mix) */
    rl_type v_type;
} tm_spec;

/* A small default shape (K-quant friendly: 256-wide rows). */
tm_spec tm_default_spec(rl_type type);
/* Write a random model; returns 0. path is a template ending in XXXXXX, filled in. */
int tm_make_model(const tm_spec *sp, char *path);

/* ---- float64 reference (tm_ref.c) ---- */
typedef struct tm_ref tm_ref;
tm_ref *tm_ref_open(const char *path);
void tm_ref_free(tm_ref *r);
uint32_t tm_ref_n_vocab(const tm_ref *r);
/* Feed one token at the next position; logits (n_vocab doubles) after it. */
const double *tm_ref_step(tm_ref *r, int32_t tok);

/* ---- the optimized path ---- */
typedef struct tm_run {
    rl_model *m;
    rl_kv *kv;
    rl_pool *pool;
    rl_fwd *f;
} tm_run;
/* kv_type F32/F16/Q8_0; n_blocks KV blocks; threads. */
int tm_run_open(tm_run *r, const char *path, rl_type kv_type, uint32_t n_blocks, int threads, uint32_t max_tokens);
void tm_run_close(tm_run *r);
/* Feed n tokens of one sequence (reserving KV); logits of the last into out (may be NULL). */
int tm_run_feed(tm_run *r, rl_kv_seq *s, const int32_t *toks, uint32_t n, float *out);

/* Relative L2 error of a against reference b. */
double tm_rel_err(const float *a, const double *b, uint32_t n);
int32_t tm_argmax_f(const float *x, uint32_t n);
int32_t tm_argmax_d(const double *x, uint32_t n);
/* RL_SHARED_DIR/models/stories260K.gguf, or NULL (with a printed skip message). */
const char *tm_stories_path(void);

#endif
