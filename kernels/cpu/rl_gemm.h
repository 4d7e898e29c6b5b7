/* rl_gemm.h - weight matrix x activations on the CPU, for one token or many.
 *
 *   y[t][r] = sum_i W[r][i] * x[t][i]     W: n_rows rows of k values, type wt
 *
 * The activations are first converted once per call, row by row, to the
 * weight type's vec_dot_type (e.g. Q8_0) and shared by every weight row. The
 * work is then tiled over (weight rows x tokens) so a tile of weight rows is
 * read from memory once and reused for all tokens of the tile; tiles are
 * handed out to the pool's threads. Each output is computed by the same
 * kernel whatever the batch size, so results do not depend on batching.
 */
#ifndef RL_GEMM_H
#define RL_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rl_pool.h"
#include "rl_types.h"

/* Activations converted for a given vec_dot_type. */
typedef struct rl_gemm_act {
    const float *x;   /* source rows (stride k) */
    int64_t k, n_tok;
    rl_type type;     /* vec_dot_type they were converted to */
    const void *data; /* converted rows, row_bytes apart */
    size_t row_bytes;
    int packed;       /* 0, or 1 + the weight type it was repacked for (rl_gemm_q.c) */
} rl_gemm_act;

/* Bytes of scratch rl_gemm_prepare needs for n_tok rows of k for weights of type wt. */
size_t rl_gemm_scratch_size(rl_type wt, int64_t k, int64_t n_tok);

/* Convert x (n_tok rows of k floats) for weights of type wt into scratch.
 * When a already holds x converted to the same type, nothing is redone.
 * Returns 0 or -EINVAL (k not a multiple of the block size, unsupported type). */
int rl_gemm_prepare(rl_pool *p, rl_gemm_act *a, rl_type wt, const float *x, int64_t n_tok, int64_t k,
                    void *scratch);

/* y (n_tok rows, stride ldy) = a x W^T for W of n_rows rows. */
void rl_gemm_run(rl_pool *p, const void *w, rl_type wt, int64_t n_rows, const rl_gemm_act *a,
                 float *y, int64_t ldy);

/* Several matrices in one pass over the threads (one barrier instead of
 * several): e.g. Wq, Wk, Wv on the same activations. At most RL_GEMM_MAX_JOBS. */
#define RL_GEMM_MAX_JOBS 4
typedef struct rl_gemm_job {
    const void *w;
    rl_type wt;
    int64_t n_rows;
    const rl_gemm_act *a;
    float *y;
    int64_t ldy;
} rl_gemm_job;
void rl_gemm_run_many(rl_pool *p, const rl_gemm_job *jobs, int n);

/* Pick the tiled micro-kernels for this CPU (idempotent). */
void rl_gemm_init(void);

/* Micro-kernel: nr (<= RL_GEMM_TILE_R) weight rows x nt (<= RL_GEMM_TILE_T) tokens. */
#ifndef RL_GEMM_TILE_R /* the tiles in rl_gemm_q.c are instantiated up to 4 x 4 */
#define RL_GEMM_TILE_R 4
#define RL_GEMM_TILE_T 4
#endif
typedef void (*rl_gemm_tile_fn)(int64_t k, const void *w, size_t w_stride, int nr, const void *a,
                                size_t a_stride, int nt, float *y, size_t ldy);
/* The micro-kernel rl_gemm_run uses for weights of type wt on this CPU, or
 * NULL (one vec_dot per output). a is in the format rl_gemm_prepare makes:
 * repacked Q8_0 blocks for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 (rl_gemm_q.c), Q8_K rows
 * for Q4_K/Q5_K/Q6_K (rl_gemm_k.c), the float rows as they
 * are for F32/F16/BF16 (rl_gemm_f.c, whose kernels take any nt >= 1);
 * y[t * ldy + r], a_stride in bytes. */
rl_gemm_tile_fn rl_gemm_tile_kernel(rl_type wt);

/* What runs the quantized matrix products on this CPU, for logs: "int8 tiles,
 * AVX-512 VNNI", "int8 tiles, AVX2" or "vec_dot per output (no AVX2)". */
const char *rl_gemm_kernels_name(void);

/* Tests: run the int8 tiles of instruction-set level l (2 AVX-512 VNNI, 1
 * AVX2, 0 none), at most what the CPU has; returns the level now in force.
 * Not while a matmul runs. */
int rl_gemm_q_force_level(int l);

#endif
