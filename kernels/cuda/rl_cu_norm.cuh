/* rl_cu_norm.cuh - RMSNorm as the tail of a grid: the last CTA of a kernel
 * that added into a row (the O and down products of a one-sequence decode
 * step) normalizes that row for the next product, where a separate RMSNorm
 * launch would cost its own latency chain and a kernel boundary.
 *
 * The arithmetic and its order are k_rmsnorm's (rl_cu_ops.cu, 1024 threads,
 * the register path): the same bits, so the fused and separate steps agree
 * exactly.
 */
#ifndef RL_CU_NORM_CUH
#define RL_CU_NORM_CUH

#include "rl_cu_common.cuh"

/* Largest row the tail normalizes: k_rmsnorm's register path (32 warps x 8
 * blocks of 32). */
#define RL_CU_NORM_TAIL_MAX 8192

struct rl_cu_norm_tail {
    const float *w; /* the norm's weights */
    float eps;
    rl_cu_act y;    /* the normalized row: f, and q/ds (h) where set; n = row length */
    unsigned *ctr;  /* arrivals: 0 before the launch, 0 again after it; NULL: no tail */
};

/* RMSNorm of x[0..n) into t.y by a CTA of W warps (W divides 32), in
 * k_rmsnorm's order: virtual warp v (0..31) sums blocks v + 32 k of 32, k < 8,
 * each lane its own column; the 32 warp sums reduced as rl_block_sum does.
 * x is read through L2 (other CTAs wrote it). n % 32 == 0, n <= 8192. */
template <int W>
__device__ __forceinline__ void rl_norm_row_as_1024(const float *x, const rl_cu_norm_tail &t, int64_t n)
{
    static_assert(32 % W == 0, "W divides 32");
    constexpr int VW = 32 / W;
    __shared__ float sh[32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    float xv[VW][8], wv[VW][8];
#pragma unroll
    for (int j = 0; j < VW; j++)
#pragma unroll
        for (int k = 0; k < 8; k++) {
            int64_t i = (int64_t)(warp + j * W + k * 32) * 32 + lane;
            xv[j][k] = i < n ? __ldcg(x + i) : 0.0f;
            wv[j][k] = i < n ? t.w[i] : 0.0f;
        }
#pragma unroll
    for (int j = 0; j < VW; j++) {
        float ss = 0.0f;
#pragma unroll
        for (int k = 0; k < 8; k++)
            ss += xv[j][k] * xv[j][k];
        ss = rl_warp_sum(ss);
        if (lane == 0)
            sh[warp + j * W] = ss;
    }
    __syncthreads();
    const float rs = rsqrtf(rl_warp_sum(sh[lane]) / (float)n + t.eps);
#pragma unroll
    for (int j = 0; j < VW; j++)
#pragma unroll
        for (int k = 0; k < 8; k++) {
            int64_t blk = warp + j * W + k * 32;
            if (blk * 32 >= n)
                break; /* warp-uniform */
            float v = xv[j][k] * rs * wv[j][k];
            t.y.f[blk * 32 + lane] = v;
            if (t.y.q)
                rl_quant_act(v, t.y, blk * 32);
        }
}

/* Called by every thread of every CTA after its stores into x: the last CTA
 * to arrive normalizes the row (the threadfence reduction pattern) and
 * re-arms the counter. */
template <int W>
__device__ __forceinline__ void rl_norm_tail(const float *x, const rl_cu_norm_tail &t, int64_t n)
{
    __shared__ int last;
    __threadfence(); /* this thread's stores into x are visible device-wide ... */
    __syncthreads(); /* ... for every thread of the CTA, before the count */
    if (threadIdx.x == 0)
        last = atomicAdd(t.ctr, 1u) == gridDim.x - 1;
    __syncthreads();
    if (!last)
        return;
    __threadfence(); /* the other CTAs' stores, counted before ours, are read after it */
    rl_norm_row_as_1024<W>(x, t, n);
    if (threadIdx.x == 0)
        *t.ctr = 0; /* the next launch that counts starts after this grid ended */
}

#endif
