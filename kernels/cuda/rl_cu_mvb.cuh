/* rl_cu_mvb.cuh - rl_cu_mvb's parts: the tile and ring shapes per weight
 * type, reading a stage's weight units, the activation's preparation in
 * shared memory. See rl_cu_mvb.cu. */
#ifndef RL_CU_MVB_CUH
#define RL_CU_MVB_CUH

#include <errno.h>
#include <stdlib.h>

#include "rl_cu_async.cuh"
#include "rl_cu_matvec.cuh"

namespace rl_mvb {

using namespace rl_async;

constexpr int TR = 8;                  /* outputs per tile */
constexpr int CW = 16;                 /* consumer warps: two per output */
constexpr int H = CW / TR;             /* halves of a stage's blocks */
constexpr int THREADS = (CW + 1) * 32; /* + the producer warp */
#ifndef RL_MVB_RMAX
#define RL_MVB_RMAX 147456 /* a build may set it (-DRL_MVB_RMAX=N) to measure other rings */
#endif
constexpr int RMAX = RL_MVB_RMAX;      /* bytes of stages at most (144 KB) */

/* Whether weights of type t are floats (F16, BF16: no scales; the activation
 * stays fp32) rather than blocks with scales (the activation int8). */
__host__ __device__ constexpr bool float_w(int t)
{
    return t == RL_TYPE_F16 || t == RL_TYPE_BF16;
}

/* Whether rl_cu_mvb has kernels for weights of type t. */
__host__ __device__ constexpr bool known_w(int t)
{
    return t == RL_TYPE_Q4_0 || t == RL_TYPE_Q8_0 || t == RL_TYPE_Q4_K || t == RL_TYPE_Q5_K || t == RL_TYPE_Q6_K ||
           float_w(t);
}

/* Bytes of values per 32 columns in the q plane (K-quants: their 256-value
 * blocks, scales inside, over 8; Q6_K: 26 without the d header of its groups
 * of 8 blocks, rl_cu_dequant.cuh). */
__host__ __device__ constexpr int q_bytes(int t)
{
    return t == RL_TYPE_Q4_0 ? 16 : t == RL_TYPE_Q8_0 ? 32 : t == RL_TYPE_Q4_K ? 18 : t == RL_TYPE_Q5_K ? 22
         : t == RL_TYPE_Q6_K ? 26 : 64;
}

/* Bytes of the q plane for nu 32-column units from a chunk's start (whole
 * chunks, or a row's last; Q6_K: whole groups, each with its 16-byte header). */
template <int T> __host__ __device__ constexpr int64_t q_span(int64_t nu)
{
    return T == RL_TYPE_Q6_K ? rl_q6k_row_bytes(nu / 8) : nu * q_bytes(T);
}

/* Per weight type T: QB bytes of values per 32 columns, DB bytes of fp16
 * scales per 32 columns in the separate d plane (Q4_0, Q8_0); CK 32-column
 * blocks per chunk, so a row's chunk is one copy of about 2 KB of values (the
 * size measured best; K-quants: whole 256-value blocks, 2,304 bytes for
 * Q4_K, 2,816 for Q5_K, 1,680 for Q6_K) and, with DB, one of scales; a
 * lane's unit is 32 values (the quantized types) or 8 (floats: UPB = 4 per 32
 * columns); S whole stages in at most RMAX bytes (RB). */
template <int T, bool GLU> struct cfg {
    static constexpr bool FX = float_w(T);
    static constexpr bool KQ = T == RL_TYPE_Q4_K || T == RL_TYPE_Q5_K || T == RL_TYPE_Q6_K;
    static constexpr int QB = q_bytes(T), DB = T == RL_TYPE_Q4_0 || T == RL_TYPE_Q8_0 ? 2 : 0;
    static constexpr int CK = T == RL_TYPE_Q6_K ? 64 : KQ ? 128 : 2048 / QB, UPB = FX ? 4 : 1, NU = CK * UPB;
    static constexpr int QROW = (int)q_span<T>(CK), DROW = CK * DB;
    static constexpr int NRW = GLU ? 2 * TR : TR; /* weight rows per tile */
    static constexpr int STG = NRW * (QROW + DROW);
    static constexpr int S = RMAX / STG > 16 ? 16 : RMAX / STG;
    static constexpr int RB = S * STG;
    static_assert(S >= 2 && NU % (32 * H) == 0 && QROW % 16 == 0 && (!KQ || CK % 8 == 0),
                  "a ring of whole stages, whole lane rounds per half, aligned rows, whole K-quant blocks");
};

/* Dynamic shared memory: the ring, then the activation (fp32 for float
 * weights; else int8 blocks and their {d, d * sum}), then the barriers (at
 * most 16 stages), a reduction slot per warp (16) and the half sums (two
 * tiles of 8 + 8); rope (rl_cu_mvb_rope_kv's launches only): RT tiles'
 * outputs, the angles of their pairs, the token's KV block and position,
 * and the barrier of their preparation. rb: the ring (RMAX for the bound
 * every type fits). */
__host__ __device__ inline size_t x_bytes(bool fx, int64_t cols)
{
    return fx ? (size_t)cols * 4 : (size_t)cols + (size_t)cols / 32 * 8;
}

constexpr int RT = 32; /* rl_cu_mvb_rope_kv: tiles a CTA at most, their outputs kept in shared memory */

static inline size_t smem_bytes(size_t rb, bool fx, int64_t cols, bool rope = false)
{
    return rb + x_bytes(fx, cols) + 16 * 16 + 256 + (rope ? 2 * RT * TR * 4 + 24 : 0);
}

/* A row's weight unit j of a stage: values at q, fp16 scales at d. */
template <int T> __device__ __forceinline__ wunit<T> sload(const uint8_t *q, const uint8_t *d, int j);

template <> __device__ __forceinline__ wunit<RL_TYPE_Q4_0> sload<RL_TYPE_Q4_0>(const uint8_t *q, const uint8_t *d, int j)
{
    wunit<RL_TYPE_Q4_0> w;
    w.q = *(const uint4 *)(q + j * 16);
    w.d = rl_h2f(*(const uint16_t *)(d + j * 2));
    return w;
}

template <> __device__ __forceinline__ wunit<RL_TYPE_Q8_0> sload<RL_TYPE_Q8_0>(const uint8_t *q, const uint8_t *d, int j)
{
    wunit<RL_TYPE_Q8_0> w;
    w.q0 = *(const int4 *)(q + j * 32);
    w.q1 = *(const int4 *)(q + j * 32 + 16);
    w.d = rl_h2f(*(const uint16_t *)(d + j * 2));
    return w;
}

/* K-quants: unit j of a chunk is unit j % 8 of its block j / 8, scales inside. */
template <> __device__ __forceinline__ wunit<RL_TYPE_Q4_K> sload<RL_TYPE_Q4_K>(const uint8_t *q, const uint8_t *, int j)
{
    return q4k_unit<false>(q + (j / 8) * RL_Q4K_BYTES, j % 8);
}

template <> __device__ __forceinline__ wunit<RL_TYPE_Q5_K> sload<RL_TYPE_Q5_K>(const uint8_t *q, const uint8_t *, int j)
{
    return q5k_unit<false>(q + (j / 8) * RL_Q5K_BYTES, j % 8);
}

template <> __device__ __forceinline__ wunit<RL_TYPE_Q6_K> sload<RL_TYPE_Q6_K>(const uint8_t *q, const uint8_t *, int j)
{
    return q6k_unit<false>(q + rl_q6k_block_off(j / 8), q + rl_q6k_d_off(j / 8), j % 8);
}

template <> __device__ __forceinline__ wunit<RL_TYPE_F16> sload<RL_TYPE_F16>(const uint8_t *q, const uint8_t *, int j)
{
    wunit<RL_TYPE_F16> w;
    w.q = *(const uint4 *)(q + j * 16);
    return w;
}

template <> __device__ __forceinline__ wunit<RL_TYPE_BF16> sload<RL_TYPE_BF16>(const uint8_t *q, const uint8_t *, int j)
{
    wunit<RL_TYPE_BF16> w;
    w.q = *(const uint4 *)(q + j * 16);
    return w;
}

/* A CTA's ring of S stages: its full (one arrival: the producer's, plus the
 * copies' bytes) and empty (one arrival per consumer warp) barriers set up
 * by thread 0, then the CTA's barrier and the PDL trigger (the next kernel
 * may launch: it waits for this one to complete before reading its output). */
template <int S> __device__ __forceinline__ void ring_start(uint64_t *full, uint64_t *empty, uint64_t *rdone)
{
    if (threadIdx.x == 0) {
        for (int s = 0; s < S; s++) {
            bar_init(&full[s], 1);
            bar_init(&empty[s], CW);
        }
        if (rdone)
            bar_init(rdone, 32); /* rl_cu_mvb_rope_kv's preparation warp */
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    rl_pdl_trigger();
}

/* Raise kernel k's dynamic shared memory limit to smem where *set_for (its
 * limit so far) is lower; false if the device refuses. */
template <typename K> static inline bool smem_limit(K k, size_t smem, size_t *set_for)
{
    if (smem <= *set_for)
        return true;
    if (cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem) != cudaSuccess)
        return false;
    *set_for = smem;
    return true;
}

/* x (cols fp32) -> int8 blocks xq / xds in shared memory (FX: fp32 values at
 * xf), normalized by rsqrt(mean(x^2) + eps) * g first when g is set. The
 * consumer warps only.
 *
 * Latency-bound (the producer's copies fill the memory queues meanwhile, so
 * each round trip to L2 is long): every thread issues PV float4 loads
 * before using any, so a round of NT * PV * 4 columns (16,384) costs about
 * one round trip. A 32-block is 8 lanes' float4s: its absolute maximum and
 * sum of int8 values are shuffles within the 8 lanes. */
constexpr int NT = CW * 32, PV = 8;

__device__ __forceinline__ float4 ld4(const float4 *p, int64_t i, int64_t n)
{
    return i < n ? p[i] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
}

/* The int8 activation in shared memory lies in two planes: block b's first
 * 16 values at xq + 16 b, its last 16 at xq + cols / 2 + 16 b, so a warp's
 * 16-byte loads of 32 consecutive blocks' halves are conflict-free (whole
 * 32-byte blocks cost each load two wavefronts a quarter-warp). It counts
 * where the activation is read from shared memory at every stage: rows of
 * several chunks (7B's down: each stage's 18 KB of weights against 40 KB of
 * activation reads by its 16 warps) and Q8_0 (session 31, an H200: 7B Q8_0
 * step 1,918-1,937 against 1,939-1,960 us; Q4_0 even, its other products
 * keep a lane's units in registers). */
constexpr int XBS = 16; /* bytes from a block's half to the next block's */
__host__ __device__ constexpr int64_t x_po(int64_t cols)
{
    return cols / 2; /* the second plane */
}

__device__ __forceinline__ xunit xload_s(const int8_t *xq, const int8_t *xq1, const float *xds, int64_t u)
{
    xunit r;
    r.q0 = *(const int4 *)(xq + u * XBS);
    r.q1 = *(const int4 *)(xq1 + u * XBS);
    r.ds = ((const float2 *)xds)[u];
    return r;
}

/* One thread's float4 i of the activation: normalized (norm: times rs and
 * its g values) and quantized (its 8-lane 32-block's scale and sum by
 * shuffles), or stored as floats (FX). */
template <bool FX>
__device__ __forceinline__ void quant4(const float4 &x4v, const float4 &g4v, bool norm, float rs, int64_t i, int lane,
                                       int8_t *xq, float *xds, float *xf, int64_t po)
{
    float a[4] = {x4v.x, x4v.y, x4v.z, x4v.w}, b[4] = {g4v.x, g4v.y, g4v.z, g4v.w};
    float amax = 0.0f;
#pragma unroll
    for (int e = 0; e < 4; e++) {
        a[e] = norm ? a[e] * rs * b[e] : a[e];
        amax = fmaxf(amax, fabsf(a[e]));
    }
    if constexpr (FX) { /* floats: the (normalized) fp32 values */
        ((float4 *)xf)[i] = make_float4(a[0], a[1], a[2], a[3]);
    } else {
#pragma unroll
        for (int o = 1; o < 8; o <<= 1)
            amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
        float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        int q[4], qs = 0;
#pragma unroll
        for (int e = 0; e < 4; e++) {
            q[e] = __float2int_rn(a[e] * id);
            qs += q[e];
        }
        const int k = (int)(i & 7); /* the block's float4 k: half k / 4 */
        *(char4 *)(xq + (k >> 2) * po + (i >> 3) * XBS + (k & 3) * 4) =
            make_char4((signed char)q[0], (signed char)q[1], (signed char)q[2], (signed char)q[3]);
#pragma unroll
        for (int o = 1; o < 8; o <<= 1)
            qs += __shfl_xor_sync(0xffffffffu, qs, o);
        if ((lane & 7) == 0) {
            xds[i / 8 * 2] = d;
            xds[i / 8 * 2 + 1] = d * (float)qs;
        }
    }
}

/* The sum of squares of all consumer threads' ss: rsqrt(mean + eps). */
__device__ __forceinline__ float norm_scale(float ss, int64_t cols, float eps, float *red)
{
    const int t = threadIdx.x;
    ss = rl_warp_sum(ss);
    if ((t & 31) == 0)
        red[t >> 5] = ss;
    asm volatile("bar.sync 1, %0;" ::"n"(NT) : "memory");
    float tot = 0.0f;
#pragma unroll
    for (int w = 0; w < CW; w++)
        tot += red[w];
    return rsqrtf(tot / (float)cols + eps);
}

template <bool FX>
__device__ void prepare_x(const float *x, const float *g, float eps, int64_t cols, int8_t *xq, float *xds, float *xf,
                          float *red)
{
    const int t = threadIdx.x, lane = t & 31;
    const float4 *x4 = (const float4 *)x, *g4 = (const float4 *)g;
    const int64_t n4 = cols / 4;
    float rs = 1.0f;
    if (g) {
        float ss = 0.0f;
        for (int64_t base = 0; base < n4; base += NT * PV) {
            float4 v[PV];
#pragma unroll
            for (int k = 0; k < PV; k++)
                v[k] = ld4(x4, base + k * NT + t, n4);
#pragma unroll
            for (int k = 0; k < PV; k++)
                ss += v[k].x * v[k].x + v[k].y * v[k].y + v[k].z * v[k].z + v[k].w * v[k].w;
        }
        rs = norm_scale(ss, cols, eps, red);
    }
    for (int64_t base = 0; base < n4; base += NT * PV) {
        float4 v[PV], gv[PV];
#pragma unroll
        for (int k = 0; k < PV; k++) {
            v[k] = ld4(x4, base + k * NT + t, n4);
            gv[k] = g ? ld4(g4, base + k * NT + t, n4) : make_float4(1.0f, 1.0f, 1.0f, 1.0f);
        }
#pragma unroll
        for (int k = 0; k < PV; k++) {
            int64_t i = base + k * NT + t; /* a warp's 32 float4s are all in or all out: cols % 256 == 0 */
            if (i >= n4)
                break;
            quant4<FX>(v[k], gv[k], g != nullptr, rs, i, lane, xq, xds, xf, x_po(cols));
        }
    }
    asm volatile("bar.sync 1, %0;" ::"n"(NT) : "memory");
}

/* A normed input of at most GR columns (the model's width: Q|K|V, gate/up
 * and the output product): the norm's weights loaded before the PDL wait
 * (load_g, into g0), then one pass over x kept in registers for both the
 * sum of squares and the quantization, so nothing but x is waited for after
 * the wait (prepare_x reads x twice and g after the sum). The same values
 * and sums as prepare_x (its first round; the rest are zeros). */
constexpr int GPV = 4, GR = NT * GPV * 4; /* 8,192 columns */

__device__ __forceinline__ void load_g(const float *g, int64_t cols, float4 (&g0)[GPV])
{
#pragma unroll
    for (int k = 0; k < GPV; k++)
        g0[k] = ld4((const float4 *)g, k * NT + threadIdx.x, cols / 4);
}

template <bool FX>
__device__ void prepare_xg(const float *x, const float4 (&g0)[GPV], float eps, int64_t cols, int8_t *xq, float *xds,
                           float *xf, float *red)
{
    const int t = threadIdx.x, lane = t & 31;
    const int64_t n4 = cols / 4;
    float4 v[GPV];
#pragma unroll
    for (int k = 0; k < GPV; k++)
        v[k] = ld4((const float4 *)x, k * NT + t, n4);
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < GPV; k++)
        ss += v[k].x * v[k].x + v[k].y * v[k].y + v[k].z * v[k].z + v[k].w * v[k].w;
    float rs = norm_scale(ss, cols, eps, red);
#pragma unroll
    for (int k = 0; k < GPV; k++) {
        int64_t i = k * NT + t;
        if (i >= n4)
            break;
        quant4<FX>(v[k], g0[k], true, rs, i, lane, xq, xds, xf, x_po(cols));
    }
    asm volatile("bar.sync 1, %0;" ::"n"(NT) : "memory");
}

/* An fp16 activation without a norm (the GLU output of a product that
 * wrote halves: 2 bytes a value read after the wait instead of 4) into int8
 * blocks: a thread's 8 values a 16-byte load, a 32-block four lanes'. */
constexpr int PV8 = 4;

__device__ void prepare_xh(const __half *x, int64_t cols, int8_t *xq, float *xds)
{
    const int t = threadIdx.x;
    const uint4 *x8 = (const uint4 *)x;
    const int64_t n8 = cols / 8;
    for (int64_t base = 0; base < n8; base += NT * PV8) {
        uint4 v[PV8];
#pragma unroll
        for (int k = 0; k < PV8; k++) {
            int64_t i = base + k * NT + t;
            v[k] = i < n8 ? x8[i] : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int k = 0; k < PV8; k++) {
            int64_t i = base + k * NT + t; /* a warp's 32 loads are all in or all out: cols % 256 == 0 */
            if (i >= n8)
                break;
            const __half2 *h2 = (const __half2 *)&v[k];
            float a[8], amax = 0.0f;
#pragma unroll
            for (int e = 0; e < 4; e++) {
                float2 f = __half22float2(h2[e]);
                a[2 * e] = f.x, a[2 * e + 1] = f.y;
                amax = fmaxf(amax, fmaxf(fabsf(f.x), fabsf(f.y)));
            }
            amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 1));
            amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, 2));
            float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
            int qs = 0;
            uint32_t w[2] = {0, 0};
#pragma unroll
            for (int e = 0; e < 8; e++) {
                int q = __float2int_rn(a[e] * id);
                qs += q;
                w[e / 4] |= (uint32_t)(q & 0xff) << (8 * (e % 4));
            }
            qs += __shfl_xor_sync(0xffffffffu, qs, 1);
            qs += __shfl_xor_sync(0xffffffffu, qs, 2);
            const int kk = (int)(i & 3); /* the block's 8 values kk: half kk / 2 */
            *(uint2 *)(xq + (kk >> 1) * x_po(cols) + (i >> 2) * XBS + (kk & 1) * 8) = make_uint2(w[0], w[1]);
            if (kk == 0) {
                xds[i / 4 * 2] = d;
                xds[i / 4 * 2 + 1] = d * (float)qs;
            }
        }
    }
    asm volatile("bar.sync 1, %0;" ::"n"(NT) : "memory");
}

/* v as an fp16 hand-off stores it: magnitudes past the largest half held
 * there (NaN stays NaN). */
__device__ __forceinline__ __half to_half_sat(float v)
{
    return __float2half_rn(fabsf(v) > 65504.0f ? copysignf(65504.0f, v) : v);
}

static inline bool sm90(void)
{
    static int ok = -1;
    if (ok < 0) {
        int dev = 0, major = 0;
        ok = cudaGetDevice(&dev) == cudaSuccess &&
             cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess && major >= 9;
    }
    return ok;
}

/* The fp32 activation prepare_x<true> left in shared memory, as wdot reads
 * it for F16/BF16 weights (the int8 types read theirs through xload_s). */
__device__ __forceinline__ rl_cu_act shared_act_f(float *xf, int64_t cols)
{
    rl_cu_act xs = {};
    xs.f = xf;
    xs.n = cols;
    return xs;
}

} /* namespace rl_mvb */

#endif
