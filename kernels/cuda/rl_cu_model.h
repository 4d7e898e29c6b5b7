/* rl_cu_model.h - a Llama-family model resident on one GPU.
 *
 * Weights stay in their quantized form (Q/K/V concatenated into one matrix,
 * gate/up into another, so each layer runs four matrix-vector products). The
 * KV cache is fp16, [slot][n_ctx][n_head_kv * head_dim] per layer. A decode
 * step for a batch of 1..8 sequences is captured once per batch size as a CUDA
 * graph and replayed; prompts go through cuBLAS GEMMs (prefill). Only the
 * chosen token (greedy) or, on request, the logits leave the device.
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
    uint32_t n_ctx;        /* positions per sequence slot */
    uint32_t n_slots;      /* sequences resident at once */
    uint32_t max_prefill;  /* prompt tokens per prefill call (0: 512) */
} rl_cu_model_cfg;

typedef struct rl_cu_layer {
    float *attn_norm, *ffn_norm; /* n_embd */
    float *bqkv;                 /* q|k|v bias or NULL */
    rl_cu_mat wqkv, wo, wgu, wdown;
} rl_cu_layer;

typedef struct rl_cu_model rl_cu_model;

/* Matrix types of the model, for the memory plan and allocation. */
typedef struct rl_cu_model_types {
    rl_type embd, output, qkv, o, gu, down;
} rl_cu_model_types;

/* Plan and allocate everything (weights uninitialised). Prints the device
 * memory plan to stderr; fails with -ENOMEM and a message naming what does not
 * fit. */
int rl_cu_model_new(const rl_cu_model_cfg *cfg, const rl_cu_model_types *types, rl_cu_model **out,
                    char *err, size_t errlen);
void rl_cu_model_free(rl_cu_model *m);

/* Access for filling the weights (rl_cu_mat_set_rows / fill_random). */
rl_cu_layer *rl_cu_model_layer(rl_cu_model *m, uint32_t il);
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

/* One decode step for n (1..8) sequences: token tokens[i] at position pos[i]
 * of slot slot[i]. Writes the greedy next tokens to out_tok, and, when
 * logits != NULL, copies the logits out (n x n_vocab). Synchronous. */
int rl_cu_model_decode(rl_cu_model *m, int n, const int32_t *tokens, const int32_t *pos,
                       const int32_t *slot, int32_t *out_tok, float *logits);
/* Prefill n_tok (<= max_prefill) prompt tokens of one slot at positions
 * pos0..; writes the greedy token after the last one and, when logits !=
 * NULL, its logits. Synchronous. */
int rl_cu_model_prefill(rl_cu_model *m, int32_t slot, int32_t pos0, const int32_t *tokens, int n_tok,
                        int32_t *out_tok, float *logits);
/* ZERO COPY (zc): the next rl_cu_model_decode also writes its greedy token j
 * to device address dev_ptrs[j] (mapped host memory, rl_cu_host_dev_ptr; 0:
 * skip), between the argmax and the synchronization. n <= RL_CU_MAX_BATCH;
 * consumed (and forgotten) by the next decode, even when it fails. */
void rl_cu_model_set_tok_dst(rl_cu_model *m, const uint64_t *dev_ptrs, int n);
/* Time each op of the decode step alone (graphs of repeats) and print a table. */
int rl_cu_model_profile(rl_cu_model *m, int n, int32_t pos, FILE *out);
/* Use CUDA graphs for decode (default on); off replays the launches directly. */
void rl_cu_model_set_graphs(rl_cu_model *m, bool on);

#endif
