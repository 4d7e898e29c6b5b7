/* rl_ops.h - per-row float operations of the transformer: RMSNorm, RoPE,
 * softmax, SwiGLU. Each has a scalar version and an AVX2/AVX-512 one picked at
 * run time (no global -m flags). Results depend only on the row, never on how
 * rows are batched. */
#ifndef RL_OPS_H
#define RL_OPS_H

#include <stdbool.h>
#include <stdint.h>

/* Select SIMD versions for this CPU (idempotent; the ops work before it too). */
void rl_ops_init(void);

/* out[i] = x[i] / sqrt(mean(x^2) + eps) * w[i]  (out may equal x) */
void rl_ops_rmsnorm(float *out, const float *x, const float *w, int n, float eps);

/* Rotate n_head heads of head_dim values at position pos. inv_freq holds
 * head_dim/2 angular frequencies (scaling already applied). neox: pairs are
 * (i, i + head_dim/2); otherwise adjacent (2i, 2i+1). */
void rl_ops_rope(float *x, int n_head, int head_dim, int32_t pos, const float *inv_freq, bool neox);

/* In-place softmax of n values. */
void rl_ops_softmax(float *x, int n);

/* out[i] = silu(gate[i]) * up[i]  (out may equal gate) */
void rl_ops_swiglu(float *out, const float *gate, const float *up, int n);

/* sum x[i]*y[i] (same summation order for every call of a given n) */
float rl_ops_dot(const float *x, const float *y, int n);

/* y[i] = y[i] * b + a * x[i] */
void rl_ops_scale_axpy(float *y, float b, float a, const float *x, int n);

/* Attention over a block of KV rows (rows of n floats, contiguous):
 * out[j] = dot(K row j, q) for j < rows. */
void rl_ops_dot_rows(const float *K, int rows, const float *q, int n, float *out);
/* y = y * b + sum_j p[j] * (V row j). */
void rl_ops_mix_rows(float *y, float b, const float *p, const float *V, int rows, int n);

/* y[i] += x[i] */
void rl_ops_add(float *y, const float *x, int n);

#endif
