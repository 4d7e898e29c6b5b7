/* tcu_mat.h - weights and activations for the CUDA matrix tests: random
 * weights quantized by the CPU codec (with their exact dequantized values) and
 * device activations with the int8 planes where the length allows. */
#ifndef TCU_MAT_H
#define TCU_MAT_H

#include "tcu_util.h"

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

/* Every value of a's int8 planes (n values in 32-blocks, a multiple of 32)
 * within half a step of vals, each block's {d, d * sum(q)}, and with fp16 the
 * fp16 plane a->h as d * q. */
static inline void tcu_check_q8_planes(const rl_cu_act *a, const float *vals, int64_t n, bool fp16,
                                       const char *what)
{
    ck_assert(n % 32 == 0 && n > 0);
    int8_t *q = malloc(n);
    float *ds = malloc(n / 32 * 2 * sizeof(float));
    tcu_down(q, a->q, n);
    tcu_down(ds, a->ds, n / 32 * 2 * sizeof(float));
    for (int64_t i = 0; i < n; i++) {
        float d = ds[(i / 32) * 2];
        ck_assert_msg(fabsf(q[i] * d - vals[i]) <= 0.51f * d + 1e-6f, "%s: int8 value %lld", what, (long long)i);
    }
    for (int64_t blk = 0; blk < n / 32; blk++) {
        int sum = 0;
        for (int k = 0; k < 32; k++)
            sum += q[blk * 32 + k];
        ck_assert_msg(fabsf(ds[blk * 2 + 1] - ds[blk * 2] * sum) <= 1e-4f * fabsf(ds[blk * 2]) * 32 * 127,
                      "%s: block %lld's d * sum", what, (long long)blk);
    }
    if (fp16) {
        uint16_t *h = malloc(n * 2);
        tcu_down(h, a->h, n * 2);
        for (int64_t i = 0; i < n; i++) {
            float d = ds[(i / 32) * 2], hv = rl_fp16_to_fp32(h[i]);
            ck_assert_msg(fabsf(hv - q[i] * d) <= 1e-3f * fabsf(q[i] * d) + 1e-7f, "%s: fp16 value %lld", what,
                          (long long)i);
        }
        free(h);
    }
    free(q), free(ds);
}

static inline void free_act(rl_cu_act *a)
{
    cudaFree(a->f);
    cudaFree(a->q);
    cudaFree(a->ds);
    cudaFree(a->h);
    cudaFree(a->ss);
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

/* The batched products' common signature (rl_cu_matvec, rl_cu_mm, rl_cu_mmq, rl_cu_mmh). */
typedef int (*tcu_product_fn)(const rl_cu_mat *, const rl_cu_act *, int, int, rl_cu_act *, cudaStream_t);

/* f(m, x, batch, mode, y) captured into a CUDA graph (strict global capture
 * mode) and replayed twice, y->f poisoned before each replay; asserts the
 * capture worked and both replays wrote the same bits. Returns the second
 * replay's [batch][y->n] output (malloc'd). */
static inline float *tcu_product_in_graph(tcu_product_fn f, const char *name, const rl_cu_mat *m, const rl_cu_act *x,
                                          int batch, int mode, rl_cu_act *y)
{
    size_t bytes = (size_t)y->n * batch * sizeof(float);
    cudaStream_t st;
    cudaGraph_t g;
    cudaGraphExec_t ge;
    ck_assert(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking) == cudaSuccess);
    ck_assert(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal) == cudaSuccess);
    int rc = f(m, x, batch, mode, y, st);
    ck_assert_int_eq(cudaStreamEndCapture(st, &g), cudaSuccess);
    ck_assert_msg(rc == 0, "%s under capture: %s", name, rl_cu_last_error());
    ck_assert(cudaGraphInstantiate(&ge, g, 0) == cudaSuccess);
    float *out[2];
    for (int r = 0; r < 2; r++) {
        ck_assert(cudaMemsetAsync(y->f, 0xFF, bytes, st) == cudaSuccess);
        ck_assert(cudaGraphLaunch(ge, st) == cudaSuccess);
        ck_assert(cudaStreamSynchronize(st) == cudaSuccess);
        out[r] = malloc(bytes);
        tcu_down(out[r], y->f, bytes);
    }
    ck_assert_msg(memcmp(out[0], out[1], bytes) == 0, "%s: replays differ", name);
    cudaGraphExecDestroy(ge);
    cudaGraphDestroy(g);
    cudaStreamDestroy(st);
    free(out[0]);
    return out[1];
}

#endif
