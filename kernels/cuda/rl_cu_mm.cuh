/* rl_cu_mm.cuh - batched matrix products for continuous batching (9..64
 * sequences per step) on tensor cores.
 *
 * y[b][o] = sum_k W[o][k] x[b][k] as C = W_tile * X^T: the weight tile is the
 * WMMA A operand (16 rows x 16 k), the batch (padded to NB = 16 * NT) the B
 * operand, fp32 accumulators.
 *
 * CTA: MM_WARPS warps own MM_BM = 16 * MM_WARPS weight rows (GLU: MM_BM / 2
 * gate rows and the matching up rows, so MM_BM / 2 outputs), one 16-row tile
 * per warp, all NT batch tiles. K is walked in chunks of MM_BK: every thread
 * holds its share of the next chunk's weight units (the matvec's wload<T>, the
 * raw quantized bytes) and fp32 activations in registers while the current
 * chunk is multiplied; then dequantizes the units to fp16 into one of two
 * shared buffers and converts the activations (one __syncthreads per chunk).
 * Weights of chunk c + MM_PF are prefetched into L2 meanwhile. Each weight
 * byte is read once per step for the whole batch.
 *
 * Few row tiles (4096-row matrices: 32 tiles for 132 SMs) split K over a
 * thread-block cluster of `split` CTAs; each leaves its fp32 partial tile in
 * shared memory; rank r sums batch rows r, r + split, ... of all of them
 * through distributed shared memory and runs the epilogue (STORE / ADD / GLU
 * + int8 quantization of the outputs) for those rows.
 * No atomics, no scratch: deterministic and capturable in a CUDA graph.
 *
 * Measured on an H100 (tools/gpu-mm.sh, 2026-11-25) and dropped again: 16-warp
 * tiles (256 rows, half the activation reads per weight byte) and activations
 * loaded once per cluster of 2 or 4 row tiles and written into every CTA's
 * shared memory were both 5..25% slower per decode step than this
 * configuration, and Q8_0 runs nearly as fast as Q4_0: the kernel is bound by
 * its per-chunk loop (latency, fragment loads, MMA issue), not by weight or
 * activation bytes.
 */
#ifndef RL_CU_MM_CUH
#define RL_CU_MM_CUH

#include <cooperative_groups.h>
#include <mma.h>

#include "rl_cu_cluster.cuh"
#include "rl_cu_matvec.cuh"

#define MM_WARPS 8            /* 2 CTAs per SM */
#define MM_THREADS (MM_WARPS * 32)
#define MM_BM (16 * MM_WARPS) /* weight rows per CTA */
#define MM_BK 128             /* k per chunk */
#define MM_LDA (MM_BK + 8)    /* halves per smem row: 16-byte aligned, staggers banks */
#define MM_PF 4               /* chunks of L2 prefetch ahead */

/* Dynamic shared memory of a CTA for NT batch tiles: two (A, B) buffers. */
#define MM_SMEM(NT) ((size_t)2 * (MM_BM + 16 * (NT)) * MM_LDA * 2)

namespace rl_mm {

/* ---- per-type dequantization of one weight unit to fp16 -------------------- */
/* Writes wtraits<T>::UNIT halves (32 for blocks, 8 for floats) in element
 * order to dst (16-byte aligned). */
template <int T> __device__ __forceinline__ void deq(const wunit<T> &w, __half *dst);

/* Store 16 half2 (32 halves) as four 16-byte stores. */
__device__ __forceinline__ void store32(__half *dst, const __half2 (&h)[16])
{
#pragma unroll
    for (int i = 0; i < 4; i++)
        ((uint4 *)dst)[i] = make_uint4(rl_h2_bits(h[4 * i]), rl_h2_bits(h[4 * i + 1]), rl_h2_bits(h[4 * i + 2]),
                                       rl_h2_bits(h[4 * i + 3]));
}

template <> __device__ __forceinline__ void deq<RL_TYPE_Q4_0>(const wunit<RL_TYPE_Q4_0> &w, __half *dst)
{
    /* (n - 8) * d: (1024 + n) - 1032 is exact, one rounding in the product. */
    const __half2 off = __float2half2_rn(1032.0f), d = __float2half2_rn(w.d);
    const uint32_t q[4] = {w.q.x, w.q.y, w.q.z, w.q.w};
    __half2 h[16];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        __half2 a, b;
        rl_bytes_to_h2(q[i] & 0x0F0F0F0Fu, a, b); /* elements 4i .. 4i+3 */
        h[2 * i] = __hmul2(__hsub2(a, off), d);
        h[2 * i + 1] = __hmul2(__hsub2(b, off), d);
        rl_bytes_to_h2((q[i] >> 4) & 0x0F0F0F0Fu, a, b); /* elements 16 + 4i .. */
        h[8 + 2 * i] = __hmul2(__hsub2(a, off), d);
        h[8 + 2 * i + 1] = __hmul2(__hsub2(b, off), d);
    }
    store32(dst, h);
}

template <> __device__ __forceinline__ void deq<RL_TYPE_Q8_0>(const wunit<RL_TYPE_Q8_0> &w, __half *dst)
{
    /* int8 q: (q ^ 0x80) is q + 128 as a byte; (1024 + q + 128) - 1152 is exact. */
    const __half2 off = __float2half2_rn(1152.0f), d = __float2half2_rn(w.d);
    const uint32_t q[8] = {(uint32_t)w.q0.x, (uint32_t)w.q0.y, (uint32_t)w.q0.z, (uint32_t)w.q0.w,
                           (uint32_t)w.q1.x, (uint32_t)w.q1.y, (uint32_t)w.q1.z, (uint32_t)w.q1.w};
    __half2 h[16];
#pragma unroll
    for (int i = 0; i < 8; i++) {
        __half2 a, b;
        rl_bytes_to_h2(q[i] ^ 0x80808080u, a, b);
        h[2 * i] = __hmul2(__hsub2(a, off), d);
        h[2 * i + 1] = __hmul2(__hsub2(b, off), d);
    }
    store32(dst, h);
}

template <> __device__ __forceinline__ void deq<RL_TYPE_Q4_K>(const wunit<RL_TYPE_Q4_K> &w, __half *dst)
{
    /* ds * n - dm in fp32 (the mins make fp16 arithmetic lose bits), one rounding. */
    const uint32_t q[8] = {w.q0.x, w.q0.y, w.q0.z, w.q0.w, w.q1.x, w.q1.y, w.q1.z, w.q1.w};
    __half2 h[16];
#pragma unroll
    for (int i = 0; i < 8; i++) {
        uint32_t n = q[i] & w.mk; /* high nibbles as 16n: ds has the 1/16 */
        h[2 * i] = __floats2half2_rn(w.ds * (float)(n & 0xFF) - w.dm, w.ds * (float)((n >> 8) & 0xFF) - w.dm);
        h[2 * i + 1] = __floats2half2_rn(w.ds * (float)((n >> 16) & 0xFF) - w.dm, w.ds * (float)(n >> 24) - w.dm);
    }
    store32(dst, h);
}

template <> __device__ __forceinline__ void deq<RL_TYPE_Q6_K>(const wunit<RL_TYPE_Q6_K> &w, __half *dst)
{
    __half2 h[16];
#pragma unroll
    for (int i = 0; i < 8; i++) {
        float d = i < 4 ? w.d0 : w.d1; /* elements 0..15 use the first scale */
        int v = w.w[i];
        h[2 * i] = __floats2half2_rn(d * (float)(int8_t)(v & 0xFF), d * (float)(int8_t)((v >> 8) & 0xFF));
        h[2 * i + 1] = __floats2half2_rn(d * (float)(int8_t)((v >> 16) & 0xFF), d * (float)(int8_t)(v >> 24));
    }
    store32(dst, h);
}

template <> __device__ __forceinline__ void deq<RL_TYPE_F16>(const wunit<RL_TYPE_F16> &w, __half *dst)
{
    *(uint4 *)dst = w.q;
}

template <> __device__ __forceinline__ void deq<RL_TYPE_BF16>(const wunit<RL_TYPE_BF16> &w, __half *dst)
{
    const uint32_t p[4] = {w.q.x, w.q.y, w.q.z, w.q.w};
    uint32_t o[4];
#pragma unroll
    for (int i = 0; i < 4; i++)
        o[i] = rl_h2_bits(__floats2half2_rn(__uint_as_float(p[i] << 16), __uint_as_float(p[i] & 0xFFFF0000u)));
    *(uint4 *)dst = make_uint4(o[0], o[1], o[2], o[3]);
}

template <> __device__ __forceinline__ void deq<RL_TYPE_F32>(const wunit<RL_TYPE_F32> &w, __half *dst)
{
    *(uint4 *)dst = make_uint4(rl_h2_bits(__floats2half2_rn(w.a.x, w.a.y)), rl_h2_bits(__floats2half2_rn(w.a.z, w.a.w)),
                               rl_h2_bits(__floats2half2_rn(w.b.x, w.b.y)), rl_h2_bits(__floats2half2_rn(w.b.z, w.b.w)));
}

/* ---- the kernel ---------------------------------------------------------------- */
namespace wm = nvcuda::wmma;

template <int T, int NT, bool GLU>
__global__ void __launch_bounds__(MM_THREADS, 2)
k_mm(const rl_cu_mat m, const rl_cu_act x, rl_cu_act y, int batch, int mode, int split)
{
    constexpr int NB = 16 * NT;                    /* padded batch */
    constexpr int UNIT = wtraits<T>::UNIT;         /* elements per weight unit */
    constexpr int UPR = MM_BK / UNIT;              /* units per row per chunk */
    constexpr int UPT = MM_BM * UPR / MM_THREADS;  /* units per thread per chunk */
    constexpr int XPT = NB * MM_BK / 4 / MM_THREADS; /* activation float4s per thread per chunk */
    constexpr int NO = GLU ? MM_BM / 2 : MM_BM;    /* outputs per CTA */
    constexpr int LDC = NB + 4;                    /* fp32 partial tile row */
    static_assert(MM_BM * UPR % MM_THREADS == 0 && NB * MM_BK / 4 % MM_THREADS == 0, "tiling");
    static_assert((size_t)MM_BM * LDC * 4 + (size_t)NB * NO * 4 <= (size_t)2 * MM_BM * MM_LDA * 2, "epilogue smem");

    extern __shared__ __align__(128) unsigned char smem[];
    __half *As = (__half *)smem;           /* [2][MM_BM][MM_LDA] */
    __half *Bs = As + 2 * MM_BM * MM_LDA;  /* [2][NB][MM_LDA] */
    const int tid = threadIdx.x, warp = tid >> 5;
    /* 1-D cluster of `split` CTAs on one row tile, splitting K. */
    const int rank = (int)(blockIdx.x % (unsigned)split);
    const int64_t n_out = GLU ? m.rows / 2 : m.rows;
    const int64_t o0 = (int64_t)(blockIdx.x / (unsigned)split) * NO;

    /* This thread's weight units: unit wu of local rows wr0 + i * RSTEP of a
     * chunk. Rows past the end are clamped (loaded, never written). */
    constexpr int RSTEP = MM_THREADS / UPR;
    static_assert(MM_THREADS % UPR == 0, "units per row");
    const int wu = tid % UPR, wr0 = tid / UPR;
    auto wrow = [&](int i) -> int64_t {
        int r = wr0 + i * RSTEP;
        if (GLU) {
            int64_t o = o0 + r % NO;
            return (o < n_out ? o : n_out - 1) + (r >= NO ? n_out : 0);
        }
        return o0 + r < n_out ? o0 + r : n_out - 1;
    };
    const int64_t nu = m.cols / UNIT, nch = (nu + UPR - 1) / UPR;
    const int64_t c0 = nch * rank / split, c1 = nch * (rank + 1) / split;

    wunit<T> wr[UPT];
    float4 xr[XPT];
    auto load_w = [&](int64_t c) {
#pragma unroll
        for (int i = 0; i < UPT; i++) {
            int64_t u = c * UPR + wu;
            if (u < nu)
                wr[i] = wload<T>(m, wrow(i), u);
        }
    };
    auto load_x = [&](int64_t c) {
#pragma unroll
        for (int i = 0; i < XPT; i++) {
            int idx = tid + i * MM_THREADS, b = idx / (MM_BK / 4);
            int64_t col = c * MM_BK + (idx % (MM_BK / 4)) * 4;
            /* Padding rows of the batch and the k tail are zeros, never loaded. */
            xr[i] = b < batch && col < m.cols ? *(const float4 *)(x.f + b * x.n + col) : make_float4(0, 0, 0, 0);
        }
    };
    auto prefetch = [&](int64_t c) {
#pragma unroll
        for (int i = 0; i < UPT; i++) {
            int64_t u = c * UPR + wu;
            if (u < nu)
                rl_prefetch_l2(wptr<T>(m, wrow(i), u));
        }
    };

    wm::fragment<wm::accumulator, 16, 16, 16, float> acc[NT];
#pragma unroll
    for (int n = 0; n < NT; n++)
        wm::fill_fragment(acc[n], 0.0f);

    rl_pdl_trigger();
    /* Weights do not depend on the previous kernel: start on them first. */
    for (int64_t c = c0 + 1; c < c1 && c <= c0 + MM_PF; c++)
        prefetch(c);
    if (c0 < c1)
        load_w(c0);
    rl_pdl_wait();
    if (c0 < c1)
        load_x(c0);

    for (int64_t c = c0; c < c1; c++) {
        const int buf = (int)((c - c0) & 1);
        __half *A = As + buf * MM_BM * MM_LDA, *B = Bs + buf * NB * MM_LDA;
        /* Stage chunk c. The buffers were last read by the MMAs of chunk c - 2,
         * which every warp finished before the barrier of chunk c - 1. */
#pragma unroll
        for (int i = 0; i < UPT; i++) {
            __half *dst = A + (wr0 + i * RSTEP) * MM_LDA + wu * UNIT;
            if (c * UPR + wu < nu) {
                deq<T>(wr[i], dst);
            } else {
#pragma unroll
                for (int k = 0; k < UNIT / 8; k++)
                    ((uint4 *)dst)[k] = make_uint4(0, 0, 0, 0);
            }
        }
#pragma unroll
        for (int i = 0; i < XPT; i++) {
            int idx = tid + i * MM_THREADS;
            __half2 lo = __floats2half2_rn(xr[i].x, xr[i].y), hi = __floats2half2_rn(xr[i].z, xr[i].w);
            *(uint2 *)(B + (idx / (MM_BK / 4)) * MM_LDA + (idx % (MM_BK / 4)) * 4) = make_uint2(rl_h2_bits(lo), rl_h2_bits(hi));
        }
        if (c + 1 < c1) { /* in flight while this chunk is multiplied */
            load_w(c + 1);
            load_x(c + 1);
        }
        if (c + MM_PF < c1)
            prefetch(c + MM_PF);
        __syncthreads();
        const __half *Aw = A + warp * 16 * MM_LDA;
#pragma unroll
        for (int s = 0; s < MM_BK / 16; s++) {
            wm::fragment<wm::matrix_a, 16, 16, 16, __half, wm::row_major> fa;
            wm::load_matrix_sync(fa, Aw + s * 16, MM_LDA);
#pragma unroll
            for (int n = 0; n < NT; n++) {
                /* B(k, b) = X[b][k]: column-major over the batch rows. */
                wm::fragment<wm::matrix_b, 16, 16, 16, __half, wm::col_major> fb;
                wm::load_matrix_sync(fb, B + n * 16 * MM_LDA + s * 16, MM_LDA);
                wm::mma_sync(acc[n], fa, fb, acc[n]);
            }
        }
    }

    __syncthreads(); /* all MMAs done: the A buffers become the partial tile */
    float *Cs = (float *)smem;                /* [MM_BM][LDC]: rows x batch */
    float *Vs = Cs + MM_BM * LDC;             /* GLU outputs [NB][NO] for quantization */
#pragma unroll
    for (int n = 0; n < NT; n++)
        wm::store_matrix_sync(Cs + warp * 16 * LDC + n * 16, acc[n], LDC, wm::mem_row_major);
    __syncthreads();
    rl_cluster_epilogue<GLU, NO, LDC, MM_THREADS>(Cs, Vs, o0, n_out, batch, rank, split, mode, y);
}

/* Host side: cluster split of K for a grid of `tiles` row tiles, nch chunks. */
int choose_split(int64_t tiles, int64_t nch);

template <int T, int NT, bool GLU>
static void launch(const rl_cu_mat &m, const rl_cu_act &x, int batch, int mode, rl_cu_act &y, cudaStream_t s)
{
    auto k = k_mm<T, NT, GLU>;
    const size_t smem = MM_SMEM(NT);
    static bool attr_set; /* idempotent: a racing second call sets the same value */
    if (!attr_set) {
        cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        attr_set = true;
    }
    const int NO = GLU ? MM_BM / 2 : MM_BM;
    int64_t n_out = GLU ? m.rows / 2 : m.rows;
    int64_t tiles = (n_out + NO - 1) / NO;
    int64_t nch = (m.cols / wtraits<T>::UNIT + MM_BK / wtraits<T>::UNIT - 1) / (MM_BK / wtraits<T>::UNIT);
    int split = choose_split(tiles, nch);
    rl_launch_cluster(k, tiles, split, dim3(MM_THREADS), smem, s, m, x, y, batch, mode, split);
}

template <int T>
void launch_type(const rl_cu_mat &m, const rl_cu_act &x, int batch, int mode, rl_cu_act &y, cudaStream_t s)
{
    rl_dispatch_nt<4>((batch + 15) / 16, [&](auto nt) {
        if (mode == RL_CU_MV_GLU)
            launch<T, decltype(nt)::value, true>(m, x, batch, mode, y, s);
        else
            launch<T, decltype(nt)::value, false>(m, x, batch, mode, y, s);
    });
}

} /* namespace rl_mm */

/* One explicit instantiation file per weight type (parallel builds). */
typedef void (*rl_cu_mm_fn)(const rl_cu_mat &m, const rl_cu_act &x, int batch, int mode, rl_cu_act &y,
                            cudaStream_t s);
#define RL_CU_MM_DECLARE(name) \
    void rl_cu_mm_##name(const rl_cu_mat &m, const rl_cu_act &x, int batch, int mode, rl_cu_act &y, cudaStream_t s)
#define RL_CU_MM_DEFINE(T, name) \
    RL_CU_MM_DECLARE(name) { rl_mm::launch_type<T>(m, x, batch, mode, y, s); }
RL_CU_MM_DECLARE(q4_0);
RL_CU_MM_DECLARE(q8_0);
RL_CU_MM_DECLARE(q4_k);
RL_CU_MM_DECLARE(q6_k);
RL_CU_MM_DECLARE(f16);
RL_CU_MM_DECLARE(bf16);
RL_CU_MM_DECLARE(f32);

#endif
