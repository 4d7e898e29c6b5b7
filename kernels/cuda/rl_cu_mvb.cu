/* rl_cu_mvb.cu - one-sequence Q4_0, Q8_0, F16 and BF16 products with the
 * weights streamed by bulk copies (cp.async.bulk, sm_90) into a ring of
 * shared-memory stages.
 *
 * Why (docs/PERFORMANCE.md, "Batch 1: the RMSNorm deferred"): the dp4a
 * matvec keeps a lane's weight loads in registers, and ptxas keeps only part
 * of them in flight; alone, its products run 31-60% DRAM-busy, stalled on
 * loads. Here one producer lane keeps a CTA's ring of stages full with bulk
 * copies that need no registers, and starts before the PDL wait (the weights
 * do not depend on the previous kernel).
 *
 * - Persistent CTAs (one per SM: the ring is up to 144 KB), tiles of TR = 8
 *   outputs (GLU: their 8 gate and 8 up rows), taken by CTA c as tiles c,
 *   c + grid, ...; a tile's K in chunks of 2 KB of values per row (Q4_0:
 *   CK = 128 blocks, 4,096 columns; Q8_0: 64; F16/BF16: 32, 1,024 columns).
 *   A stage holds one chunk of the tile's rows: per row its values and (the
 *   quantized types) fp16 scales, a bulk copy each.
 *   Measured on an H100 (session 16, docs/PERFORMANCE.md): 64 blocks per
 *   chunk streamed at ~0.8 us per 32-copy stage, whatever its bytes; one
 *   16 KB copy per tile and plane, or the scales of a tile as one copy, were
 *   slower than a copy per row; a 72 KB ring (two CTAs per SM) too.
 * - The activation is fp32 (the residual, the attention output or the GLU
 *   output): each CTA quantizes it to int8 blocks in shared memory after the
 *   PDL wait (F16/BF16 weights: keeps it fp32 there, as their matvec does), with the RMSNorm (weight g, epsilon) first when given, so no
 *   norm or quantization kernel runs between products. The int8 values are
 *   rl_cu_rmsnorm's and rl_cu_quantize's up to the order of the sum of squares.
 * - 16 consumer warps, two per output: warp w takes output w % 8 and, per
 *   stage, the units (a block; F16/BF16: 8 values) of its half w / 8
 *   (lane + 32 * (2k + half); GLU: of the gate and the up row) against the
 *   shared activation (the matvec's arithmetic, wdot), and releases the stage; at the tile's end warp sums,
 *   the halves meet in shared memory, then y = v, y += v or
 *   y = silu(gate) * up. Outputs are fp32 only: the next product quantizes
 *   its own input. (8 warps, one per output, measured 3-4% slower.)
 *
 * Needs Q4_0, Q8_0, F16 or BF16, columns a multiple of 256 (whole 16-byte scale runs), output
 * rows a multiple of 8, 16-byte aligned planes, an sm_90 device; otherwise
 * -ENOTSUP. The step takes it for one sequence where the model's width is
 * at least RL_CU_MVB_MIN_EMBD (rl_cu_step.c). */
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
constexpr int RMAX = 147456;           /* bytes of stages at most (144 KB) */

/* Whether weights of type t are floats (F16, BF16: no scales; the activation
 * stays fp32) rather than 32-blocks with fp16 scales (Q4_0, Q8_0). */
__host__ __device__ constexpr bool float_w(int t)
{
    return t == RL_TYPE_F16 || t == RL_TYPE_BF16;
}

/* Per weight type T: QB bytes of values per 32 columns; CK of those per
 * chunk, so a row's chunk is one 2 KB copy of values (the size measured
 * best) and, for the quantized types, one of fp16 scales; a lane's unit is a
 * block (quantized) or 8 values (floats: UPB = 4 per 32 columns); S whole
 * stages in at most RMAX bytes (RB). */
template <int T, bool GLU> struct cfg {
    static constexpr bool FX = float_w(T);
    static constexpr int QB = T == RL_TYPE_Q4_0 ? 16 : T == RL_TYPE_Q8_0 ? 32 : 64;
    static constexpr int CK = 2048 / QB, UPB = FX ? 4 : 1, NU = CK * UPB;
    static constexpr int QROW = CK * QB, DROW = FX ? 0 : CK * 2;
    static constexpr int NRW = GLU ? 2 * TR : TR; /* weight rows per tile */
    static constexpr int STG = NRW * (QROW + DROW);
    static constexpr int S = RMAX / STG > 16 ? 16 : RMAX / STG;
    static constexpr int RB = S * STG;
    static_assert(S >= 2 && NU % (32 * H) == 0, "a ring of whole stages, whole lane rounds per half");
};

/* Dynamic shared memory: the ring, then the activation (fp32 for float
 * weights; else int8 blocks and their {d, d * sum}), then the barriers (at
 * most 16 stages), a reduction slot per warp (16) and the half sums (two
 * tiles of 8 + 8). rb: the ring (RMAX for the bound every type fits). */
static size_t x_bytes(bool fx, int64_t cols)
{
    return fx ? (size_t)cols * 4 : (size_t)cols + (size_t)cols / 32 * 8;
}

static size_t smem_bytes(size_t rb, bool fx, int64_t cols)
{
    return rb + x_bytes(fx, cols) + 16 * 16 + 256;
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

template <bool FX>
__device__ void prepare_x(const float *x, const float *g, float eps, int64_t cols, int8_t *xq, float *xds, float *xf,
                          float *red)
{
    const int t = threadIdx.x, lane = t & 31, warp = t >> 5;
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
        ss = rl_warp_sum(ss);
        if (lane == 0)
            red[warp] = ss;
        asm volatile("bar.sync 1, %0;" ::"n"(NT) : "memory");
        float tot = 0.0f;
#pragma unroll
        for (int w = 0; w < CW; w++)
            tot += red[w];
        rs = rsqrtf(tot / (float)cols + eps);
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
            float a[4] = {v[k].x, v[k].y, v[k].z, v[k].w}, b[4] = {gv[k].x, gv[k].y, gv[k].z, gv[k].w};
            float amax = 0.0f;
#pragma unroll
            for (int e = 0; e < 4; e++) {
                a[e] = g ? a[e] * rs * b[e] : a[e];
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
                *(char4 *)(xq + i * 4) =
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
    }
    asm volatile("bar.sync 1, %0;" ::"n"(NT) : "memory");
}

template <int T, bool GLU>
__global__ void __launch_bounds__(THREADS, 1)
k_mvb(const rl_cu_mat m, const float *x, const float *g, float eps, float *y, int mode)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    using C = cfg<T, GLU>;
    constexpr int CK = C::CK, QROW = C::QROW, DROW = C::DROW, RB = C::RB;
    const size_t xb = C::FX ? (size_t)m.cols * 4 : (size_t)m.cols + (size_t)m.cols / 4; /* x_bytes */
    extern __shared__ __align__(128) uint8_t sm[];
    const int64_t cols = m.cols, nb = cols / 32, n_out = GLU ? m.rows / 2 : m.rows;
    const int64_t ntiles = n_out / TR, nch = (nb + CK - 1) / CK;
    int8_t *xq = (int8_t *)(sm + RB);
    float *xds = (float *)(sm + RB + cols), *xf = (float *)(sm + RB);
    uint64_t *full = (uint64_t *)(sm + RB + xb);
    uint64_t *empty = full + C::S;
    float *red = (float *)(empty + C::S);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    if (threadIdx.x == 0) {
        for (int s = 0; s < C::S; s++) {
            bar_init(&full[s], 1);
            bar_init(&empty[s], CW);
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    rl_pdl_trigger();

    if (warp == CW) { /* the producer: lane 0 fills the ring, weights only (no PDL wait) */
        if (lane != 0)
            return;
        const uint8_t *q = (const uint8_t *)m.q;
        const uint16_t *d = (const uint16_t *)m.d;
        int64_t i = 0;
        for (int64_t t = blockIdx.x; t < ntiles; t += gridDim.x)
            for (int64_t c = 0; c < nch; c++, i++) {
                int s = (int)(i % C::S);
                unsigned ph = (unsigned)(i / C::S) & 1;
                int64_t cu = nb - c * CK < CK ? nb - c * CK : CK;
                uint8_t *st = sm + (size_t)s * C::STG;
                bar_wait(&empty[s], ph ^ 1); /* the consumers freed it (the first round passes) */
                bar_expect(&full[s], (unsigned)(C::NRW * cu * (C::QB + (C::FX ? 0 : 2))));
                for (int r = 0; r < C::NRW; r++) {
                    int64_t row = (GLU && r >= TR ? n_out : 0) + t * TR + (r % TR);
                    bulk_copy(st + r * QROW, q + (row * nb + c * CK) * C::QB, (unsigned)(cu * C::QB), &full[s]);
                    if (!C::FX)
                        bulk_copy(st + C::NRW * QROW + r * DROW, d + row * nb + c * CK, (unsigned)(cu * 2),
                                  &full[s]);
                }
            }
        return;
    }

    /* consumers: warp w, output o = w % TR of each tile, half h = w / TR */
    rl_pdl_wait();
    prepare_x<C::FX>(x, g, eps, cols, xq, xds, xf, red);
    rl_cu_act xs = {};
    if (C::FX)
        xs.f = xf;
    else
        xs.q = xq, xs.ds = xds;
    xs.n = cols;
    const int o = warp % TR, h = warp / TR;
    int64_t i = 0;
    int tl = 0;
    for (int64_t t = blockIdx.x; t < ntiles; t += gridDim.x, tl++) {
        float acc = 0.0f, accu = 0.0f;
        for (int64_t c = 0; c < nch; c++, i++) {
            int s = (int)(i % C::S);
            bar_wait(&full[s], (unsigned)(i / C::S) & 1);
            const uint8_t *st = sm + (size_t)s * C::STG;
            int64_t cu = nb - c * CK < CK ? nb - c * CK : CK;
#pragma unroll
            for (int k = 0; k < C::NU / 32 / H; k++) {
                int j = lane + 32 * (k * H + h); /* the stage's unit j: the row's unit c * NU + j */
                if (j >= cu * C::UPB)
                    break;
                wunit<T> w = sload<T>(st + o * QROW, st + C::NRW * QROW + o * DROW, j);
                acc += wdot<T>(w, xs, 0, c * C::NU + j);
                if (GLU) {
                    w = sload<T>(st + (TR + o) * QROW, st + C::NRW * QROW + (TR + o) * DROW, j);
                    accu += wdot<T>(w, xs, 0, c * C::NU + j);
                }
            }
            __syncwarp();
            if (lane == 0)
                bar_arrive(&empty[s]);
        }
        acc = rl_warp_sum(acc);
        if (GLU)
            accu = rl_warp_sum(accu);
        /* the second half's sums through shared memory: two buffers by tile
         * parity, so one barrier per tile */
        float *half = red + 16 + (tl & 1) * 16;
        if (h == 1 && lane == 0)
            half[o] = acc, half[TR + o] = accu;
        asm volatile("bar.sync 1, %0;" ::"n"(NT) : "memory");
        if (h == 1 || lane != 0)
            continue;
        acc += half[o], accu += half[TR + o];
        int64_t r = t * TR + o;
        if (GLU)
            y[r] = rl_silu(acc) * accu;
        else
            y[r] = mode == RL_CU_MV_ADD ? y[r] + acc : acc;
    }
#endif
}

static bool sm90(void)
{
    static int ok = -1;
    if (ok < 0) {
        int dev = 0, major = 0;
        ok = cudaGetDevice(&dev) == cudaSuccess &&
             cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess && major >= 9;
    }
    return ok;
}

template <int T, bool GLU>
static int launch(const rl_cu_mat *m, const float *x, const float *g, float eps, float *y, int mode, cudaStream_t s)
{
    size_t smem = smem_bytes(cfg<T, GLU>::RB, cfg<T, GLU>::FX, m->cols);
    static size_t set_for = 0;
    if (smem > set_for) {
        if (cudaFuncSetAttribute(k_mvb<T, GLU>, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem) != cudaSuccess)
            return -ENOTSUP;
        set_for = smem;
    }
    int64_t ntiles = (GLU ? m->rows / 2 : m->rows) / TR;
    unsigned grid = (unsigned)(ntiles < rl_cu_sm_count() ? ntiles : rl_cu_sm_count());
    rl_launch_smem(k_mvb<T, GLU>, dim3(grid), dim3(THREADS), smem, s, *m, x, g, eps, y, mode);
    return RL_CU_LAUNCHED("mvb");
}

/* Table of the kernels by weight type and GLU mode. */
typedef int (*launch_fn)(const rl_cu_mat *, const float *, const float *, float, float *, int, cudaStream_t);
struct launch_row {
    int type;
    launch_fn plain, glu;
};
static const launch_row launches[] = {
    {RL_TYPE_Q4_0, launch<RL_TYPE_Q4_0, false>, launch<RL_TYPE_Q4_0, true>},
    {RL_TYPE_Q8_0, launch<RL_TYPE_Q8_0, false>, launch<RL_TYPE_Q8_0, true>},
    {RL_TYPE_F16, launch<RL_TYPE_F16, false>, launch<RL_TYPE_F16, true>},
    {RL_TYPE_BF16, launch<RL_TYPE_BF16, false>, launch<RL_TYPE_BF16, true>},
};

static int launch_type(const rl_cu_mat *m, const float *x, const float *g, float eps, float *y, int mode,
                       cudaStream_t s)
{
    for (const launch_row &r : launches)
        if (r.type == m->type)
            return (mode == RL_CU_MV_GLU ? r.glu : r.plain)(m, x, g, eps, y, mode, s);
    return -ENOTSUP;
}

} /* namespace rl_mvb */

extern "C" bool rl_cu_mvb_ok(const rl_cu_mat *m, int mode)
{
    int64_t n_out = mode == RL_CU_MV_GLU ? m->rows / 2 : m->rows;
    bool glu = mode == RL_CU_MV_GLU;
    bool known = m->type == RL_TYPE_Q4_0 || m->type == RL_TYPE_Q8_0 || rl_mvb::float_w(m->type);
    return known && m->cols % 256 == 0 && m->cols > 0 && (!glu || m->rows % 2 == 0) &&
           n_out % rl_mvb::TR == 0 && n_out > 0 && (uintptr_t)m->q % 16 == 0 && (uintptr_t)m->d % 16 == 0 &&
           rl_mvb::sm90() && rl_cu_sm_count() > 0 && rl_mvb::smem_bytes(rl_mvb::RMAX, rl_mvb::float_w(m->type), m->cols) <= 227 * 1024;
}

extern "C" int rl_cu_mvb(const rl_cu_mat *m, const float *d_x, const float *d_g, float eps, int mode, float *d_y,
                         cudaStream_t s)
{
    if (mode != RL_CU_MV_STORE && mode != RL_CU_MV_ADD && mode != RL_CU_MV_GLU)
        return -EINVAL;
    if (!d_x || !d_y || (uintptr_t)d_x % 16 || (uintptr_t)d_g % 16 || !rl_cu_mvb_ok(m, mode))
        return -ENOTSUP; /* x and g are read as float4s */
    return rl_mvb::launch_type(m, d_x, d_g, eps, d_y, mode, s);
}
