/* rl_cu_model.h - a Llama-family model resident on one GPU.
 *
 * Weights stay in their quantized form (Q/K/V concatenated into one matrix,
 * gate/up into another, so each layer runs four matrix products; where a
 * file mixes types inside a layer, the parts stay separate matrices). The KV
 * cache is the paged fp16 pool of rl_cuda.h (rl_cu_kv): the same block layout
 * and block ids as the CPU engine's rl_kv, so the engine's block tables,
 * prefix sharing and preemption drive the GPU cache directly.
 *
 * A forward step is a ragged batch: any tokens of any sequences, each with its
 * position and block-table row (decode tokens and prompt chunks together).
 * Steps of up to max_batch tokens replay a CUDA graph captured once per
 * token-count bucket (matrix-vector kernels, each weight byte read once per
 * step); larger steps go through cuBLAS GEMMs. Only the chosen tokens
 * (greedy) or, on request, the logits leave the device.
 */
#ifndef RL_CU_MODEL_H
#define RL_CU_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "rl_cuda.h"

typedef struct rl_cu_model_cfg {
    uint32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_rot;
    float rms_eps, rope_base;
    bool rope_neox;
    bool qkv_bias;         /* qwen2: biases on q, k, v */
    uint32_t n_ctx;        /* positions per sequence */
    uint32_t n_slots;      /* sequences of the slot API (decode/prefill below); 0: none */
    uint32_t n_blocks;     /* KV pool blocks; 0: n_slots * ceil(n_ctx / RL_CU_KV_BLOCK) */
    uint32_t max_prefill;  /* tokens per forward call (0: 512) */
    uint32_t max_batch;    /* tokens per graph-captured step (0: RL_CU_MAX_STEP_BATCH) */
    bool kv_q8;            /* int8 KV cache (rl_cu_kv.q8; head_dim a multiple of 32) */
    uint8_t w16;           /* rl_cu_w16_mode: fp16 copies of the layer weights for large steps */
} rl_cu_model_cfg;

/* The weights of steps of more than max_batch tokens (prompt chunks), which
 * multiply fp16 weights on cuBLAS: AUTO (0) keeps an fp16 copy of every layer
 * matrix resident when it fits beside everything else (F16 matrices are used
 * in place); ON requires it (-ENOMEM when it does not fit); OFF dequantizes
 * each weight into a staging buffer during every such step (no memory, but
 * the dequantization competes with the GEMMs). RL_CU_W16=0|1 overrides AUTO. */
typedef enum rl_cu_w16_mode { RL_CU_W16_AUTO = 0, RL_CU_W16_OFF = 1, RL_CU_W16_ON = 2 } rl_cu_w16_mode;

/* Most tokens of one graph-captured step. */
#define RL_CU_MAX_STEP_BATCH 64


/* Q, K and V share one matrix (rows Q|K|V) when their types are equal, and
 * gate/up another (rows gate|up) likewise. Otherwise wqkv holds Q|K with V in
 * wv when Q and K have one type (Q4_K_M's layers with a Q6_K V), else Q only
 * with K and V in wk and wv; wgu holds gate only with up in wup (their q ==
 * NULL when unused). rl_cu_layer_role finds a role's rows either way, and
 * rl_cu_layer_qkv_parts lists the Q|K|V matrices. */
typedef struct rl_cu_layer {
    float *attn_norm, *ffn_norm; /* n_embd */
    float *bqkv;                 /* q|k|v bias or NULL */
    rl_cu_mat wqkv, wo, wgu, wdown;
    rl_cu_mat wk, wv, wup;       /* mixed types only (wk: Q and K of different types) */
} rl_cu_layer;

typedef struct rl_cu_model rl_cu_model;

/* The weight matrices of a layer. */
typedef enum rl_cu_role {
    RL_CU_W_Q, RL_CU_W_K, RL_CU_W_V, RL_CU_W_O, RL_CU_W_GATE, RL_CU_W_UP, RL_CU_W_DOWN, RL_CU_W_N
} rl_cu_role;

/* Types of one layer's matrices, indexed by rl_cu_role. */
typedef struct rl_cu_layer_types {
    rl_type t[RL_CU_W_N];
} rl_cu_layer_types;

/* Matrix types of the model, for the memory plan and allocation (qkv, o, gu,
 * down: every layer alike). */
typedef struct rl_cu_model_types {
    rl_type embd, output, qkv, o, gu, down;
} rl_cu_model_types;

/* Plan and allocate everything (weights uninitialised). Prints the device
 * memory plan to stderr; fails with -ENOMEM and a message naming what does not
 * fit. */
int rl_cu_model_new(const rl_cu_model_cfg *cfg, const rl_cu_model_types *types, rl_cu_model **out,
                    char *err, size_t errlen);
/* The same with per-layer types (layers: n_layer entries, read during the
 * call; NULL: types' qkv/o/gu/down everywhere), for files that mix types per
 * tensor such as Q4_K_M. types->qkv/o/gu/down are then unused. */
int rl_cu_model_new_mixed(const rl_cu_model_cfg *cfg, const rl_cu_model_types *types,
                          const rl_cu_layer_types *layers, rl_cu_model **out, char *err, size_t errlen);
void rl_cu_model_free(rl_cu_model *m);

/* Access for filling the weights (rl_cu_mat_set_rows / fill_random). */
rl_cu_layer *rl_cu_model_layer(rl_cu_model *m, uint32_t il);
/* The matrix holding role's rows of layer il, and (row0) the first of them
 * there; NULL when il or role is out of range. */
rl_cu_mat *rl_cu_model_layer_mat(rl_cu_model *m, uint32_t il, rl_cu_role role, int64_t *row0);
rl_cu_mat *rl_cu_model_tok_embd(rl_cu_model *m);
rl_cu_mat *rl_cu_model_output(rl_cu_model *m);
float *rl_cu_model_output_norm(rl_cu_model *m);
/* Upload n floats to a device vector owned by the model. */
int rl_cu_upload_f32(float *d_dst, const float *host, size_t n);
/* Use these n_rot/2 RoPE angular frequencies (scaling included) instead of
 * rope_base^(-2i/n_rot). */
int rl_cu_model_set_rope_freqs(rl_cu_model *m, const float *inv_freq);
/* Random weights and unit norms (benchmarks). */
int rl_cu_model_fill_random(rl_cu_model *m, uint64_t seed);
uint64_t rl_cu_model_weight_bytes(const rl_cu_model *m);
uint64_t rl_cu_model_kv_bytes(const rl_cu_model *m);

/* The paged KV pool (block tables are set per forward call). */
const rl_cu_kv *rl_cu_model_kv(const rl_cu_model *m);
/* Copy-on-write of a shared block: dst gets src's contents (all layers). */
int rl_cu_model_copy_block(rl_cu_model *m, uint32_t dst, uint32_t src);

/* One forward step over a ragged batch of n_tok tokens (1..max_prefill):
 * token t is tokens[t] at position pos[t] of the sequence whose block table is
 * bt[row[t]] (bt_len[row[t]] block ids of the pool; pos[t] must fall inside
 * it), for n_rows sequences. A sequence's tokens come in position order, and
 * attention sees positions 0..pos[t] of its table (earlier steps' KV included).
 * For each i < n_out: out_tok[i] = greedy token after token out_idx[i], and
 * when logits && logits[i] its n_vocab logits go to logits[i]; when tok_dev
 * && tok_dev[i], the GPU also stores the token at that device address (mapped
 * client memory, zero copy) before the call returns. When top_k && top_k[i]
 * > 0 (<= RL_CU_TOPK_MAX; logits[i] must be set), only that many best logits
 * leave the device (rl_cu_topk's order): top[i] points at them (page-locked
 * memory of the model, valid until its next forward), and logits[i] is not
 * written; a row holding NaN or an infinity goes to logits[i] instead, with
 * top[i] NULL. With top_lse, top_lse[i] = log(sum over the row of
 * exp(logit - top[i][0].logit)) for each output given candidates. Synchronous.
 * -EINVAL for bad ids, positions, rows, block ids or k (nothing runs then). */
typedef struct rl_cu_batch {
    int n_tok;
    const int32_t *tokens, *pos, *row;
    int n_rows;
    const uint32_t *const *bt;
    const uint32_t *bt_len;
    int n_out;
    const int32_t *out_idx;
    int32_t *out_tok;
    float *const *logits;
    const uint64_t *tok_dev;
    const int32_t *top_k;
    const rl_cu_cand **top;
    float *top_lse;
} rl_cu_batch;
int rl_cu_model_forward(rl_cu_model *m, const rl_cu_batch *b);
/* Capture every bucket's graph and load cuBLAS's kernels now (after the
 * weights and RoPE table are set), so that no request pays for them. */
int rl_cu_model_warmup(rl_cu_model *m);

/* The slot API (tests, benchmarks, ringlm-logits): slot s owns the fixed
 * blocks s * ceil(n_ctx / RL_CU_KV_BLOCK) ... of the pool (cfg.n_slots > 0).
 * One decode step for n (1..RL_CU_MAX_STEP_BATCH) sequences: token tokens[i] at position pos[i]
 * of slot slot[i]. Writes the greedy next tokens to out_tok, and, when
 * logits != NULL, copies the logits out (n x n_vocab). Synchronous. */
int rl_cu_model_decode(rl_cu_model *m, int n, const int32_t *tokens, const int32_t *pos,
                       const int32_t *slot, int32_t *out_tok, float *logits);
/* Prefill n_tok (<= max_prefill) prompt tokens of one slot at positions
 * pos0..; writes the greedy token after the last one and, when logits !=
 * NULL, its logits. Synchronous. */
int rl_cu_model_prefill(rl_cu_model *m, int32_t slot, int32_t pos0, const int32_t *tokens, int n_tok,
                        int32_t *out_tok, float *logits);
/* Time each op of the decode step alone (graphs of repeats) and print a table
 * (slot API: n <= n_slots). */
int rl_cu_model_profile(rl_cu_model *m, int n, int32_t pos, FILE *out);
/* GPU time of one small step of n tokens with no host in between: the step's
 * captured graph (a decode of n tokens must have run) replayed reps times
 * back to back on the last uploaded inputs; microseconds per step in *us.
 * Against the wall time of synchronous steps it shows what the host's part
 * (upload, launch, token read-back, wake-up) costs. */
int rl_cu_model_replay(rl_cu_model *m, int n, int reps, double *us);
/* Use CUDA graphs for decode (default on); off replays the launches directly. */
void rl_cu_model_set_graphs(rl_cu_model *m, bool on);
/* Steps on the matrix-vector path fold each RMSNorm into the residual
 * product before it (rl_cu_matvec_add_norm; the products after it scale by
 * the RMS) where every matrix allows it: on by default, off with
 * RL_CU_NORM_DEFER=0 or here (drops the captured graphs). */
void rl_cu_model_set_norm_defer(rl_cu_model *m, bool on);
/* One-sequence steps on rl_cu_mvb (weights streamed by bulk copies; the norms
 * inside the products): by default automatic (models at least
 * RL_CU_MVB_MIN_EMBD wide or holding K-quant or F16/BF16 matrices, where it
 * measured faster); on > 0 always, 0 never,
 * < 0 automatic again; RL_CU_MVB=1|0 in the environment the same. Drops the
 * captured graphs when it changes. */
#define RL_CU_MVB_MIN_EMBD 4096
void rl_cu_model_set_mvb(rl_cu_model *m, int on);
/* Whether a step of n tokens runs on rl_cu_mvb now: one token, and
 * rl_cu_mvb takes every layer matrix (rl_cu_mvb_ok: types, shapes, sm_90),
 * or, when forced on, at least one of every layer (it runs the others on the
 * matvecs). */
bool rl_cu_model_mvb_step(rl_cu_model *m, int n);
/* Device bytes of the fp16 copies (RL_CU_W16_ON) of these layer types
 * (lts: per layer, or NULL for ty's); F16 matrices need none. */
uint64_t rl_cu_w16_bytes(const rl_cu_model_cfg *c, const rl_cu_model_types *ty, const rl_cu_layer_types *lts);
/* mode, or for RL_CU_W16_AUTO with RL_CU_W16=0|1 in the environment, OFF|ON. */
int rl_cu_w16_env(int mode);
/* The fp16 copies' device bytes in this model (0: large steps dequantize). */
uint64_t rl_cu_model_w16_bytes(const rl_cu_model *m);
/* Steps of more than max_batch tokens (prompt chunks) run their Q4_0 products
 * on rl_cu_mmw, 64 rows per pass, instead of dequantizing every weight for
 * cuBLAS, when they have at most `rows` tokens (0: never). Default 192 (7B
 * Q4_0 prefill on an H100: 15.2k tok/s against cuBLAS's 13.2k at 192
 * tokens, 15.5k against 16.8k at 256), or RL_CU_DIRECT_MAX. Applies only
 * where every staged weight (fused Q|K|V, O, fused gate|up, down) is Q4_0
 * on a device with rl_cu_mmw. */
void rl_cu_model_set_direct_max(rl_cu_model *m, int rows);
/* The rows up to which the large path runs its products on rl_cu_mmw now
 * (0 where it cannot). */
int rl_cu_model_direct_max(rl_cu_model *m);

#endif
