/* rl_ops.h - per-row float operations of the transformer: RMSNorm, RoPE,
 * softmax, SwiGLU, exp, attention over a KV block. Each has a scalar version
 * and an AVX2 (some also AVX-512) one picked at run time (no global -m flags).
 * Results depend only on the row, never on how rows are batched. */
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


/* y[i] = exp(x[i]) (y may equal x). SIMD: within 1 ulp of the correctly
 * rounded result for normal results, subnormals rounded once, 0 below -103.98
 * and for -inf, +inf above 88.73, NaN for NaN (rl_ops.c tells how); the
 * scalar fallback is libm's expf. */
void rl_ops_exp(float *y, const float *x, int n);

/* Keys per rl_ops_att_block call, the width of the transposed key block. */
#define RL_OPS_ATT_ROWS 16

/* Attention of nq queries over one block of `rows` (1..RL_OPS_ATT_ROWS) keys,
 * as an online softmax: for query i (q + i*n, state m[i], l[i], acc + i*n),
 * with s_j = scale * dot(q, key j) and M = max(m[i], s_j),
 *   l[i] = l[i] * e^(m[i] - M) + sum_j e^(s_j - M),
 *   acc = acc * e^(m[i] - M) + sum_j e^(s_j - M) V row j,   m[i] = M.
 * Start with m = -inf, l = 0, acc = 0; the attention output is acc / l.
 * Kt holds the keys transposed: Kt[d * RL_OPS_ATT_ROWS + j] = key j, value d,
 * for d < n; all RL_OPS_ATT_ROWS columns are read, those past rows are ignored
 * (any value). V: rows rows of n floats. A query's arithmetic depends only on
 * its own q and state and on Kt, V, rows, n, scale: never on nq or on its
 * place among the queries (its result is the same in any batch). */
void rl_ops_att_block(const float *Kt, const float *V, int rows, const float *q, int nq, int n, float scale, float *m,
                      float *l, float *acc);

/* y[i] += x[i] */
void rl_ops_add(float *y, const float *x, int n);

#endif
