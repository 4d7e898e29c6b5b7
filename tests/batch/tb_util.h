/* tb_util.h - helpers for the batching tests: a small random F32 model, an
 * engine over it, and a greedy driver that steps many sequences together. */
#ifndef TB_UTIL_H
#define TB_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "rl_engine.h"
#include "rl_llm.h"

#define TB_MAXGEN 64

/* Writes the model once per process (F32 weights); returns its path. */
const char *tb_model_path(void);
/* An LLM engine over the model: F32 KV, step_tokens per step, kv_blocks
 * blocks in the pool (0: default). */
rl_engine *tb_engine(uint32_t step_tokens, uint32_t kv_blocks, uint32_t n_ctx);
/* Use this model file instead (NULL: back to the random one). */
void tb_use_model(const char *path);
/* Make tb_engine build engines with f instead of the CPU engine (the CUDA
 * variant of the tests): f gets the model path and tb_engine's arguments, with
 * kv_budget_bytes for kv_blocks blocks of fp16 KV (0: default). */
typedef rl_engine *(*tb_factory)(const char *path, uint32_t step_tokens, uint64_t kv_budget_bytes, uint32_t n_ctx);
void tb_set_factory(tb_factory f);

typedef struct tb_req {
    const int32_t *prompt;
    uint32_t n_prompt, n_gen;  /* n_gen <= TB_MAXGEN */
    uint8_t priority;
    uint32_t start_step;       /* join the batch at this step */
    /* out */
    int32_t out[TB_MAXGEN];
    uint32_t got;
    uint32_t first_step;       /* step that produced the first token */
    rl_seq *seq;
} tb_req;

/* Greedy-run the requests together (each joins at its start_step, leaves
 * when it has n_gen tokens; items ordered by priority, then index). Returns
 * the steps taken. Fails the test on any per-sequence error. */
uint32_t tb_run(rl_engine *e, tb_req *r, uint32_t n);
/* The same request alone on a fresh engine (default pool, same step size). */
void tb_solo(const tb_req *r, uint32_t step_tokens, int32_t *out);
void tb_stats(rl_engine *e, rl_engine_stats *st);

#endif
