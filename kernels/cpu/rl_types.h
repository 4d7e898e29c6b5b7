/* rl_types.h - tensor types and their traits, one table indexed by type.
 *
 * The numeric values are the GGUF (ggml) type ids, so a type read from a file
 * indexes the table directly. Block layouts follow the GGUF definitions
 * bit-exactly; see rl_quant_*.c for each layout.
 */
#ifndef RL_TYPES_H
#define RL_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum rl_type {
    RL_TYPE_F32 = 0,
    RL_TYPE_F16 = 1,
    RL_TYPE_Q4_0 = 2,
    RL_TYPE_Q4_1 = 3,
    RL_TYPE_Q5_0 = 6,
    RL_TYPE_Q5_1 = 7,
    RL_TYPE_Q8_0 = 8,
    RL_TYPE_Q8_1 = 9,
    RL_TYPE_Q2_K = 10,
    RL_TYPE_Q3_K = 11,
    RL_TYPE_Q4_K = 12,
    RL_TYPE_Q5_K = 13,
    RL_TYPE_Q6_K = 14,
    RL_TYPE_Q8_K = 15,
    RL_TYPE_BF16 = 30,
    RL_TYPE_COUNT = 40
} rl_type;

/* Row functions. n is a multiple of the type's block size. */
typedef void (*rl_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*rl_from_float_fn)(const float *src, void *dst, int64_t n);
/* Dot product of a weight row (this type) with an activation row already
 * converted to vec_dot_type. */
typedef float (*rl_vec_dot_fn)(int64_t n, const void *w, const void *a);

/* Dot products of nr weight rows (this type, row_stride bytes apart) with
 * one activation row in vec_dot_type: out[r] ~= vec_dot(n, w + r*row_stride, a)
 * (same value up to float rounding). Prefer it for matrix-vector products:
 * Q4_0 and Q8_0 with AVX-512 VNNI precompute the activation-only terms once
 * per call and run ~10% faster per row; other types loop over vec_dot.
 * (Added by modeldata.) */
typedef void (*rl_vec_dot_rows_fn)(int64_t n, const void *w, size_t row_stride, int64_t nr, const void *a,
                                   float *out);

typedef struct rl_type_traits {
    const char *name;          /* "Q4_0"; NULL for ids that are not types */
    uint32_t block_size;       /* elements per block */
    uint32_t type_size;        /* bytes per block */
    bool supported;            /* we can load and compute with it */
    rl_to_float_fn to_float;   /* dequantize */
    rl_from_float_fn from_float; /* quantize; NULL where not offered */
    rl_type vec_dot_type;      /* activation type for vec_dot */
    rl_vec_dot_fn vec_dot;     /* best kernel for this CPU (chosen at start) */
    rl_vec_dot_fn vec_dot_ref; /* plain scalar reference of the same */
    rl_vec_dot_rows_fn vec_dot_rows; /* many rows at once; non-NULL wherever vec_dot is (added) */
} rl_type_traits;

/* Traits for a type id, or NULL when the id is unknown. Runs rl_types_init
 * first (once), so the kernels are already the best for this CPU. */
const rl_type_traits *rl_type_get(uint32_t type);
/* Type by name ("q4_0", case-insensitive); returns -1 when unknown. */
int rl_type_from_name(const char *name);
/* Bytes of a row of n elements; 0 when n is not a multiple of the block size. */
size_t rl_type_row_size(rl_type t, int64_t n);
/* Pick SIMD kernels for this CPU (called once at start, idempotent).
 * Env RINGLM_CPU_KERNELS=scalar|avx2 caps the choice (default: best). */
void rl_types_init(void);

/* IEEE half and bfloat16 conversions. */
float rl_fp16_to_fp32(uint16_t h);
uint16_t rl_fp32_to_fp16(float f);
float rl_bf16_to_fp32(uint16_t h);
uint16_t rl_fp32_to_bf16(float f);

#endif
