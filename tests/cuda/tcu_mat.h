/* tcu_mat.h - weights and activations for the CUDA matrix tests: random
 * weights quantized by the CPU codec (with their exact dequantized values) and
 * device activations with the int8 planes where the length allows. */
#ifndef TCU_MAT_H
#define TCU_MAT_H

#include "tcu_util.h"

/* Random weights of type t, quantized by the CPU codec; ref gets the exact
 * dequantized values (what the GPU must multiply by). */
static inline void make_weight(rl_type t, int64_t rows, int64_t cols, uint64_t *s, rl_cu_mat *m, float *ref)
{
    const rl_type_traits *tr = rl_type_get(t);
    size_t rb = rl_type_row_size(t, cols);
    uint8_t *raw = malloc(rb * rows);
    float *row = malloc(cols * sizeof(float));
    ck_assert(raw && row);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++)
            row[c] = tcu_unif(s) * (1.0f + (float)(r % 7)); /* varied row scales */
        tr->from_float(row, raw + r * rb, cols);
        tr->to_float(raw + r * rb, ref + r * cols, cols);
    }
    CU_OK(rl_cu_mat_alloc(m, t, rows, cols));
    CU_OK(rl_cu_mat_set_rows(m, 0, raw, rows));
    free(raw);
    free(row);
}

static inline rl_cu_act make_act(int64_t n, int batch, const float *host)
{
    rl_cu_act a = {.n = n};
    a.f = host ? tcu_up(host, n * batch * sizeof(float)) : tcu_dev(n * batch * sizeof(float));
    if (n % 32 == 0) {
        a.q = tcu_dev(n * batch);
        a.ds = tcu_dev(n / 32 * batch * 2 * sizeof(float));
        a.h = tcu_dev(n * batch * 2);
    }
    return a;
}

static inline void free_act(rl_cu_act *a)
{
    cudaFree(a->f);
    cudaFree(a->q);
    cudaFree(a->ds);
    cudaFree(a->h);
}

/* float64 reference of a matvec-mode product (rl_cu_matvec, rl_cu_mm, rl_cu_mmq):
 * ref[b][o] = W x_b (STORE), + y0[b][o] (ADD), or silu(Wg x_b) * (Wu x_b) with
 * the gate rows first (GLU: rows / 2 outputs). */
static inline void tcu_ref_product(const float *w, const float *x, const float *y0, int64_t rows, int64_t cols,
                                   int batch, int mode, double *ref)
{
    int64_t n_out = mode == RL_CU_MV_GLU ? rows / 2 : rows;
    for (int b = 0; b < batch; b++)
        for (int64_t o = 0; o < n_out; o++) {
            double g = 0, u = 0;
            for (int64_t c = 0; c < cols; c++) {
                g += (double)w[o * cols + c] * x[b * cols + c];
                if (mode == RL_CU_MV_GLU)
                    u += (double)w[(o + n_out) * cols + c] * x[b * cols + c];
            }
            double v = mode == RL_CU_MV_GLU ? g / (1.0 + exp(-g)) * u : g;
            ref[b * n_out + o] = mode == RL_CU_MV_ADD ? v + y0[b * n_out + o] : v;
        }
}

static inline bool wants_q8(rl_type t)
{
    return t == RL_TYPE_Q4_0 || t == RL_TYPE_Q8_0 || t == RL_TYPE_Q4_K || t == RL_TYPE_Q5_K || t == RL_TYPE_Q6_K;
}

#endif
