/* rl_engine_cuda.h - the CUDA engine: a GGUF Llama/Qwen2 model resident on the
 * GPU behind rl_engine (selected by the daemon with --device cuda). It is the
 * model engine of rl_llm.h (continuous batching, paged KV with prefix sharing
 * and preemption, priorities, statistics) with the GPU as its forward pass;
 * greedy tokens are chosen on the GPU, other sampling reads the logits back. */
#ifndef RL_ENGINE_CUDA_H
#define RL_ENGINE_CUDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rl_engine.h"

typedef struct rl_model rl_model;
typedef struct rl_cu_model rl_cu_model;

typedef struct rl_cuda_opts {
    uint32_t n_ctx;            /* per-sequence context; 0: min(training context, 4096) */
    uint32_t step_tokens;      /* tokens per step (decodes + prompt chunks); 0: 512 */
    uint64_t kv_budget_bytes;  /* device KV pool; 0: 80% of the memory the weights and scratch
                                * leave, at most 64 full contexts */
    bool kv_q8;                /* int8 KV cache (values of Q8_0 blocks: 17/32 of the fp16
                                * bytes, so twice the positions; head_dim % 32 == 0) */
    int w16;                   /* rl_cu_w16_mode (rl_cu_model.h): fp16 copies of the layer
                                * weights for prompt steps; 0 (AUTO): kept when they take
                                * at most a quarter of the free device memory (the KV pool
                                * gets what they leave) */
    void (*progress)(void *ctx, float frac); /* loading progress, may be NULL */
    void *progress_ctx;
} rl_cuda_opts;

/* Load the model at path onto the GPU. Returns 0, or a negative errno with a
 * message in err (-ENODEV: no CUDA device; -ENOMEM: does not fit, with the plan). */
int rl_engine_cuda_create(const char *path, int n_threads, rl_engine **out, char *err, size_t errlen);
int rl_engine_cuda_create_opts(const char *path, const rl_cuda_opts *o, rl_engine **out, char *err, size_t errlen);

/* Upload a loaded CPU model to the GPU (used by the engine and by tests):
 * n_slots for the slot API (0: none), n_blocks KV pool blocks (0: the slots'),
 * kv_q8 for an int8 KV cache, w16 an rl_cu_w16_mode. */
int rl_cu_model_from_cpu(const rl_model *m, uint32_t n_ctx, uint32_t n_slots, uint32_t n_blocks,
                         uint32_t max_prefill, bool kv_q8, int w16, rl_cu_model **out, char *err, size_t errlen);

#endif
