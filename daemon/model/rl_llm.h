/* rl_llm.h - the CPU LLM engine: a GGUF Llama/Qwen2 model behind rl_engine.
 *
 * One engine holds one mapped model (shared by every sequence), a paged KV
 * cache pool, a thread pool, and runs each step() as one batched forward pass
 * (decode tokens of running sequences first, then prompt chunks, up to
 * step_tokens tokens; an item left out by the budget gets token -1, status 0).
 * Per item errors: -ENOSPC (context or KV pool full), -EINVAL (NULL or
 * repeated sequence). Results do not depend on how sequences are batched.
 * tokenize() parses control-token text ("<|eot_id|>") into control tokens, as
 * chat_format() output needs. */
#ifndef RL_LLM_H
#define RL_LLM_H

#include <stddef.h>
#include <stdint.h>

#include "rl_engine.h"
#include "rl_types.h"

typedef struct rl_model rl_model;
typedef struct rl_fwd_seq rl_fwd_seq;

/* A forward pass on another device (the CUDA engine): the engine keeps
 * everything else (sequences, paged KV bookkeeping, prefix sharing,
 * preemption, scheduling, sampling) and hands each step's batch to it. The
 * backend holds the KV pool's storage, with the block ids of the engine's rl_kv. */
typedef struct rl_llm_backend {
    const char *name; /* get_info's backend, e.g. "cuda" */
    void *ctx;
    /* Once the model is loaded: upload it and allocate a KV pool. *n_blocks in:
     * the count the engine's budget allows (0: no budget given, choose from
     * the device's memory); out: the count allocated. */
    int (*open)(void *ctx, const rl_model *m, uint32_t n_ctx, uint32_t step_tokens, uint32_t *n_blocks, char *err,
                size_t errlen);
    /* As rl_forward (advances each kv->n_pos); fills *argmax where asked, and
     * may answer a top_k request with candidates (rl_fwd_seq.top). */
    int (*forward)(void *ctx, rl_fwd_seq *seqs, uint32_t n_seqs);
    uint32_t max_top_k; /* the largest rl_fwd_seq.top_k forward answers with candidates (0: none) */
    /* Copy-on-write of a shared KV block. */
    int (*copy_block)(void *ctx, uint32_t dst, uint32_t src);
    /* Device bytes of the KV pool per block. */
    uint64_t (*block_bytes)(void *ctx);
    /* Optional (NULL: none): a client's shared region, for rl_fwd_seq.tok_dst
     * (rl_engine_ops.map_region / unmap_region). */
    int (*map_region)(void *ctx, void *base, size_t len);
    void (*unmap_region)(void *ctx, void *base);
    /* Frees everything (called once, also when creation fails, open or not). */
    void (*close)(void *ctx);
} rl_llm_backend;

typedef struct rl_llm_opts {
    int n_threads;            /* <= 0: one per online CPU */
    uint32_t n_ctx;           /* per-sequence context; 0: the model's training context */
    uint32_t step_tokens;     /* tokens per step (prompt chunks + decodes); 0: 512 */
    rl_type kv_type;          /* RL_TYPE_F16 (default), RL_TYPE_Q8_0, or RL_TYPE_F32 */
    uint64_t kv_budget_bytes; /* KV pool size; 0: room for 4 full contexts */
    void (*progress)(void *ctx, float frac); /* loading progress in [0, 1], may be NULL */
    void *progress_ctx;
    const rl_llm_backend *backend; /* NULL: the CPU forward pass */
} rl_llm_opts;

typedef struct rl_llm_kv_stats {
    uint32_t blocks_total, blocks_used, blocks_free;
    uint32_t block_positions;  /* positions per block */
    uint64_t block_bytes;
} rl_llm_kv_stats;

/* Defaults: all threads, training context, 512-token steps, F16 KV. */
void rl_llm_opts_default(rl_llm_opts *o);

/* Load the model at path. Returns 0, or a negative errno with a message in err. */
int rl_engine_llm_create(const char *path, int n_threads, rl_engine **out, char *err, size_t errlen);
int rl_engine_llm_create_opts(const char *path, const rl_llm_opts *opts, rl_engine **out, char *err,
                              size_t errlen);
/* KV pool usage of an engine made by the functions above (blocks only the
 * prefix cache holds count as free). From the thread that steps the engine. */
void rl_engine_llm_kv_stats(rl_engine *e, rl_llm_kv_stats *st);
/* NULL when the model's tokenizer loaded; otherwise why it did not (the
 * engine still runs on token ids; tokenize/token_piece say -ENOTSUP). */
const char *rl_engine_llm_tokenizer_error(rl_engine *e);

#endif
