/* rl_engine_cuda.h - the CUDA engine: a GGUF Llama/Qwen2 model resident on the
 * GPU behind rl_engine (selected by the daemon with --device cuda). It reuses
 * the CPU loader (validation), the tokenizer, chat templates and the sampler;
 * greedy tokens are chosen on the GPU, other sampling reads the logits back. */
#ifndef RL_ENGINE_CUDA_H
#define RL_ENGINE_CUDA_H

#include <stddef.h>
#include <stdint.h>

#include "rl_engine.h"

typedef struct rl_model rl_model;
typedef struct rl_cu_model rl_cu_model;

typedef struct rl_cuda_opts {
    uint32_t n_ctx;   /* per-sequence context; 0: min(training context, 4096) */
    uint32_t n_slots; /* sequences resident at once; 0: 8 */
} rl_cuda_opts;

/* Load the model at path onto the GPU. Returns 0, or a negative errno with a
 * message in err (-ENODEV: no CUDA device; -ENOMEM: does not fit, with the plan). */
int rl_engine_cuda_create(const char *path, int n_threads, rl_engine **out, char *err, size_t errlen);
int rl_engine_cuda_create_opts(const char *path, const rl_cuda_opts *o, rl_engine **out, char *err, size_t errlen);

/* Upload a loaded CPU model to the GPU (used by the engine and by tests). */
int rl_cu_model_from_cpu(const rl_model *m, uint32_t n_ctx, uint32_t n_slots, uint32_t max_prefill,
                         rl_cu_model **out, char *err, size_t errlen);

#endif
