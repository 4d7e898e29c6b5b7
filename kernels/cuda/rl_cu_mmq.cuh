/* rl_cu_mmq.cuh - batched int8 tensor-core matrix products for Q4_0 and Q8_0
 * weights (continuous batching, up to RL_CU_MAX_MM_BATCH sequences).
 *
 * y[b][o] = sum_blk d_w[o][blk] * d_x[b][blk] * sum_{k in blk} q_w[o][k] q_x[b][k]
 * with one mma.sync.m16n8k32 (int8 x int8 -> int32) per 16 rows x 8 batch
 * rows x one 32-wide quant block; its int32 result is converted and scaled by
 * both block scales into fp32 accumulators. Q4_0 feeds the raw nibbles
 * (0..15) as unsigned A operands and folds the -8 offset with the
 * activation's d*sum(q): d_w * (d_x * sum(n q) - 8 * d_x * sum(q)), exactly the
 * matvec's arithmetic.
 *
 * CTA: MQ_WARPS warps, MQ_BM = 32 * MQ_WARPS weight rows (GLU: MQ_BM / 2 gate
 * rows and the matching up rows, MQ_BM / 2 outputs); each warp owns 32 rows
 * (two m16 tiles) and all NT batch tiles of 8. K is walked in chunks of
 * MQ_CB quant blocks through an S-stage cp.async pipeline in shared memory:
 * weight quants (rows padded to stagger banks for ldmatrix), their fp16
 * scales, the batch's int8 activations and their {d, d*sum}. Padding batch
 * rows and blocks past the end of K are zero-filled by the copies.
 *
 * Few row tiles split K over a thread-block cluster (like rl_cu_mm): each CTA
 * leaves its fp32 partial tile in shared memory, rank r reduces batch rows
 * r, r + split, ... in rank order through distributed shared memory (no
 * atomics, no scratch: deterministic, capturable) and runs the epilogue
 * (STORE / ADD / GLU + int8 quantization of the GLU outputs).
 *
 * Cost model (to check on the GPU): per mma and thread 4 x (int add + float
 * subtract for the exact int32 -> fp32, FFMA by d_x (- 8 d*sum for Q4_0),
 * FFMA by d_w into the accumulator): about 17 issued instructions per mma
 * and warp, so batch 64 on the 7B step (~1e8 mma) should be issue-bound near
 * 2 ms on 132 SMs, below the 4 ms goal; weights stream through 2-3 stages of
 * 20-36 KB per SM. Splits are powers of two (cluster sizes 1..8), so
 * gate_up (86 row tiles of 128 outputs) leaves some SMs idle: a first tuning
 * target. Status 2026-11-25: compiled (no spills, up to 255 registers, one
 * CTA of 8 warps per SM at 5+ batch tiles) and its fragment, shared-memory and
 * reduction index math checked by a host emulation; not yet run on a GPU.
 */
#ifndef RL_CU_MMQ_CUH
#define RL_CU_MMQ_CUH

#include <cooperative_groups.h>

#include "rl_cu_async.cuh"
#include "rl_cu_cluster.cuh"

#define MQ_WARPS 8
#define MQ_THREADS (MQ_WARPS * 32)
#define MQ_BM (32 * MQ_WARPS) /* weight rows per CTA */
#define MQ_CB 4               /* quant blocks (of 32) per K chunk */
#define MQ_XLD (MQ_CB * 32 + 16) /* activation bytes per smem row (+16: no ldmatrix bank conflicts) */

namespace rl_mmq {

using namespace rl_async;

/* Per-type layout: bytes of a block in the quant plane, padded smem row, stages. */
template <int T> struct qtraits;
template <> struct qtraits<RL_TYPE_Q4_0> { static const int BB = 16, WLD = MQ_CB * 16 + 16, S = 3; };
template <> struct qtraits<RL_TYPE_Q8_0> { static const int BB = 32, WLD = MQ_CB * 32 + 16, S = 2; };

/* Bytes of one pipeline stage for NB padded batch rows. */
template <int T> __host__ __device__ constexpr int stage_bytes(int nb)
{
    return MQ_BM * qtraits<T>::WLD + nb * MQ_XLD + MQ_BM * MQ_CB * 2 + nb * MQ_CB * 8;
}

template <int T, int NT, bool GLU> __host__ __device__ constexpr int smem_bytes()
{
    constexpr int NB = 8 * NT, NO = GLU ? MQ_BM / 2 : MQ_BM;
    constexpr int pipe = qtraits<T>::S * stage_bytes<T>(NB);
    constexpr int epi = MQ_BM * (NB + 4) * 4 + (GLU ? NB * NO * 4 : 0);
    return pipe > epi ? pipe : epi;
}

__device__ __forceinline__ void ldsm4(uint32_t (&r)[4], const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(sm_addr(p)));
}

__device__ __forceinline__ void ldsm2(uint32_t &r0, uint32_t &r1, const void *p)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];" : "=r"(r0), "=r"(r1) : "r"(sm_addr(p)));
}

/* d = A (16 x 32) * B (32 x 8), int32; A unsigned (Q4_0 nibbles) or signed. */
template <bool UA>
__device__ __forceinline__ void mma_k32(int (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1)
{
    if (UA)
        asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%10,%10,%10,%10};"
                     : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "r"(0));
    else
        asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                     "{%10,%10,%10,%10};"
                     : "=r"(d[0]), "=r"(d[1]), "=r"(d[2]), "=r"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1), "r"(0));
}

/* int32 -> fp32, exact for |s| < 2^22 (a block sum is at most 32 * 128 * 128 =
 * 2^19): 1.5 * 2^23 + s has s in its mantissa. An integer add and a float
 * subtract, both full-rate pipes, instead of the conversion unit's I2F (a
 * quarter of the FP32 rate on sm_90), which would bound the kernel at four
 * conversions per mma and thread. */
__device__ __forceinline__ float i2f_exact(int s)
{
    return __int_as_float(s + 0x4B400000) - 12582912.0f;
}

template <int T, int NT, bool GLU>
__global__ void __launch_bounds__(MQ_THREADS, 1)
k_mmq(const rl_cu_mat m, const rl_cu_act x, rl_cu_act y, int batch, int mode, int split)
{
    constexpr bool Q4 = T == RL_TYPE_Q4_0;
    constexpr int NB = 8 * NT, BB = qtraits<T>::BB, WLD = qtraits<T>::WLD, S = qtraits<T>::S;
    constexpr int NO = GLU ? MQ_BM / 2 : MQ_BM; /* outputs per CTA */
    constexpr int LDC = NB + 4;                 /* fp32 partial tile row */
    constexpr int STG = stage_bytes<T>(NB);
    constexpr int W_OFF = 0, X_OFF = MQ_BM * WLD, D_OFF = X_OFF + NB * MQ_XLD, S_OFF = D_OFF + MQ_BM * MQ_CB * 2;
    static_assert(STG % 16 == 0 && X_OFF % 16 == 0 && D_OFF % 16 == 0 && S_OFF % 16 == 0, "smem alignment");

    extern __shared__ __align__(128) unsigned char smem[];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
    const int rank = (int)(blockIdx.x % (unsigned)split);
    const rl_tile_plan tp = rl_tile_plan_of<GLU>(m, NO, MQ_CB, blockIdx.x / (unsigned)split, rank, split);
    const int64_t n_out = tp.n_out, o0 = tp.o0, nb = tp.nb, c0 = tp.c0, c1 = tp.c1;

    auto wrow = [&](int r) { return rl_tile_row<GLU>(r, o0, NO, n_out); };
    const uint8_t *wq = (const uint8_t *)m.q;
    const uint16_t *wd = (const uint16_t *)m.d;

    /* Weights and their scales of chunk c into stage st (no dependency on the previous kernel). */
    auto load_w = [&](int st, int64_t c) {
        unsigned char *base = smem + st * STG;
        constexpr int UPR = MQ_CB * BB / 16; /* 16-byte copies per row */
#pragma unroll
        for (int i = 0; i < MQ_BM * UPR / MQ_THREADS; i++) {
            int idx = tid + i * MQ_THREADS, r = idx / UPR, u = idx % UPR;
            int64_t blk = c * MQ_CB + u * 16 / BB;
            bool ok = blk < nb;
            cp16(base + W_OFF + r * WLD + u * 16, wq + (wrow(r) * nb * BB + (ok ? c * MQ_CB * BB + u * 16 : 0)), ok);
        }
        if (nb % 2 == 0) { /* scale pairs are 4-byte aligned */
#pragma unroll
            for (int i = 0; i < MQ_BM * MQ_CB / 2 / MQ_THREADS; i++) {
                int idx = tid + i * MQ_THREADS, r = idx / (MQ_CB / 2), p = idx % (MQ_CB / 2);
                int64_t blk = c * MQ_CB + 2 * p;
                bool ok = blk < nb;
                cp4(base + D_OFF + (r * MQ_CB + 2 * p) * 2, wd + wrow(r) * nb + (ok ? blk : 0), ok);
            }
        } else { /* odd blocks per row: plain loads, visible after the stage's barrier */
            for (int idx = tid; idx < MQ_BM * MQ_CB; idx += MQ_THREADS) {
                int r = idx / MQ_CB, k = idx % MQ_CB;
                int64_t blk = c * MQ_CB + k;
                ((uint16_t *)(base + D_OFF))[idx] = blk < nb ? __ldg(wd + wrow(r) * nb + blk) : (uint16_t)0;
            }
        }
    };
    /* Activations of chunk c into stage st (after rl_pdl_wait). */
    auto load_x = [&](int st, int64_t c) {
        unsigned char *base = smem + st * STG;
        constexpr int UPR = MQ_CB * 2; /* 16-byte copies per batch row */
        for (int idx = tid; idx < NB * UPR; idx += MQ_THREADS) {
            int b = idx / UPR, u = idx % UPR;
            int64_t blk = c * MQ_CB + u / 2;
            bool ok = b < batch && blk < nb;
            cp16(base + X_OFF + b * MQ_XLD + u * 16, x.q + (ok ? b * x.n + c * MQ_CB * 32 + u * 16 : 0), ok);
        }
        for (int idx = tid; idx < NB * MQ_CB; idx += MQ_THREADS) {
            int b = idx / MQ_CB, k = idx % MQ_CB;
            int64_t blk = c * MQ_CB + k;
            bool ok = b < batch && blk < nb;
            cp8(base + S_OFF + (k * NB + b) * 8, x.ds + (ok ? (b * nb + blk) * 2 : 0), ok); /* [block][batch] */
        }
    };

    float acc[2][NT][4];
#pragma unroll
    for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int i = 0; i < 4; i++)
                acc[mt][j][i] = 0.0f;

    rl_pdl_trigger();
    /* Weights do not depend on the previous kernel: start their copies first. */
#pragma unroll
    for (int s = 0; s < S - 1; s++)
        if (c0 + s < c1)
            load_w(s, c0 + s);
    rl_pdl_wait();
#pragma unroll
    for (int s = 0; s < S - 1; s++) {
        if (c0 + s < c1)
            load_x(s, c0 + s);
        cp_commit();
    }

    const int wr = warp * 32; /* this warp's first local row */
    for (int64_t c = c0; c < c1; c++) {
        cp_wait<S - 2>();
        __syncthreads(); /* chunk c is in; every warp is done with chunk c - 1's stage */
        if (c + S - 1 < c1) {
            int st = (int)((c + S - 1 - c0) % S);
            load_w(st, c + S - 1);
            load_x(st, c + S - 1);
        }
        cp_commit();
        const unsigned char *base = smem + (int)((c - c0) % S) * STG;
        const unsigned char *Ws = base + W_OFF, *Xs = base + X_OFF;
        const __half *Ds = (const __half *)(base + D_OFF);
        const float2 *Ss = (const float2 *)(base + S_OFF);
        constexpr int KSTEP = Q4 ? 2 : 1; /* blocks per ldmatrix.x4 of A */
#pragma unroll 1
        for (int kb0 = 0; kb0 < MQ_CB; kb0 += KSTEP) {
            uint32_t R[2][4];
#pragma unroll
            for (int mt = 0; mt < 2; mt++) {
                int row = wr + mt * 16 + (lane & 7) + 8 * ((lane >> 3) & 1);
                int off = Q4 ? (kb0 + (lane >> 4)) * 16 : kb0 * 32 + 16 * (lane >> 4);
                ldsm4(R[mt], Ws + row * WLD + off);
            }
#pragma unroll
            for (int kk = 0; kk < KSTEP; kk++) {
                const int kb = kb0 + kk;
                uint32_t a[2][4];
                float dw[2][2];
#pragma unroll
                for (int mt = 0; mt < 2; mt++) {
                    if (Q4) {
                        const uint32_t M = 0x0F0F0F0Fu;
                        uint32_t lo = R[mt][2 * kk], hi = R[mt][2 * kk + 1]; /* rows g, g + 8 */
                        a[mt][0] = lo & M;
                        a[mt][1] = hi & M;
                        a[mt][2] = (lo >> 4) & M;
                        a[mt][3] = (hi >> 4) & M;
                    } else {
#pragma unroll
                        for (int i = 0; i < 4; i++)
                            a[mt][i] = R[mt][i];
                    }
                    int row = wr + mt * 16 + g;
                    dw[mt][0] = __half2float(Ds[row * MQ_CB + kb]);
                    dw[mt][1] = __half2float(Ds[(row + 8) * MQ_CB + kb]);
                }
#pragma unroll
                for (int j = 0; j < NT; j += 2) {
                    uint32_t b[2][2];
                    const unsigned char *xp = Xs + kb * 32 + 16 * ((lane >> 3) & 1);
                    if (j + 1 < NT) {
                        uint32_t r4[4];
                        ldsm4(r4, xp + (8 * j + (lane & 7) + 8 * (lane >> 4)) * MQ_XLD);
                        b[0][0] = r4[0], b[0][1] = r4[1], b[1][0] = r4[2], b[1][1] = r4[3];
                    } else {
                        ldsm2(b[0][0], b[0][1], xp + (8 * j + (lane & 7)) * MQ_XLD);
                        b[1][0] = b[1][1] = 0;
                    }
#pragma unroll
                    for (int jj = 0; jj < 2; jj++) {
                        if (j + jj >= NT)
                            break;
                        /* batch rows 8 (j + jj) + 2 t4 + {0, 1} */
                        /* {d, d*sum} of batch rows 8 (j + jj) + 2 t4 + {0, 1}: one 16-byte load */
                        float4 sx = *(const float4 *)(Ss + kb * NB + 8 * (j + jj) + 2 * t4);
                        float2 s0 = make_float2(sx.x, sx.y), s1 = make_float2(sx.z, sx.w);
                        float n0 = -8.0f * s0.y, n1 = -8.0f * s1.y;
#pragma unroll
                        for (int mt = 0; mt < 2; mt++) {
                            int d[4];
                            mma_k32<Q4>(d, a[mt], b[jj][0], b[jj][1]);
                            /* d: (row g, col 2t), (g, 2t+1), (g+8, 2t), (g+8, 2t+1) */
                            float f0 = Q4 ? fmaf(s0.x, i2f_exact(d[0]), n0) : s0.x * i2f_exact(d[0]);
                            float f1 = Q4 ? fmaf(s1.x, i2f_exact(d[1]), n1) : s1.x * i2f_exact(d[1]);
                            float f2 = Q4 ? fmaf(s0.x, i2f_exact(d[2]), n0) : s0.x * i2f_exact(d[2]);
                            float f3 = Q4 ? fmaf(s1.x, i2f_exact(d[3]), n1) : s1.x * i2f_exact(d[3]);
                            acc[mt][j + jj][0] = fmaf(dw[mt][0], f0, acc[mt][j + jj][0]);
                            acc[mt][j + jj][1] = fmaf(dw[mt][0], f1, acc[mt][j + jj][1]);
                            acc[mt][j + jj][2] = fmaf(dw[mt][1], f2, acc[mt][j + jj][2]);
                            acc[mt][j + jj][3] = fmaf(dw[mt][1], f3, acc[mt][j + jj][3]);
                        }
                    }
                }
            }
        }
    }
    cp_wait<0>();
    __syncthreads(); /* all stages consumed: the pipeline memory becomes the partial tile */

    float *Cs = (float *)smem; /* [MQ_BM][LDC]: local rows x batch */
    float *Vs = Cs + MQ_BM * LDC; /* GLU outputs [NB][NO] for quantization */
#pragma unroll
    for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int j = 0; j < NT; j++) {
            int row = wr + mt * 16 + g, col = 8 * j + 2 * t4;
            *(float2 *)(Cs + row * LDC + col) = make_float2(acc[mt][j][0], acc[mt][j][1]);
            *(float2 *)(Cs + (row + 8) * LDC + col) = make_float2(acc[mt][j][2], acc[mt][j][3]);
        }
    __syncthreads();
    rl_cluster_epilogue<GLU, NO, LDC, MQ_THREADS>(Cs, Vs, o0, n_out, batch, rank, split, mode, y);
}

template <int T, int NT, bool GLU>
static void launch(const rl_cu_mat &m, const rl_cu_act &x, int batch, int mode, rl_cu_act &y, cudaStream_t s)
{
    auto k = k_mmq<T, NT, GLU>;
    constexpr int smem = smem_bytes<T, NT, GLU>();
    static int per_sm; /* idempotent: a racing second call computes the same value */
    if (per_sm == 0) {
        cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        int n = 0;
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, k, MQ_THREADS, smem) != cudaSuccess || n < 1) {
            cudaGetLastError();
            n = 1;
        }
        per_sm = n;
    }
    const int NO = GLU ? MQ_BM / 2 : MQ_BM;
    int64_t n_out = GLU ? m.rows / 2 : m.rows;
    int64_t tiles = (n_out + NO - 1) / NO;
    int64_t nch = (m.cols / 32 + MQ_CB - 1) / MQ_CB;
    int split = rl_cu_cluster_split(tiles, nch, (int64_t)per_sm * rl_cu_sm_count());
    rl_launch_cluster(k, tiles, split, dim3(MQ_THREADS), smem, s, m, x, y, batch, mode, split);
}

template <int T>
void launch_type(const rl_cu_mat &m, const rl_cu_act &x, int batch, int mode, rl_cu_act &y, cudaStream_t s)
{
    rl_dispatch_nt<8>((batch + 7) / 8, [&](auto nt) {
        if (mode == RL_CU_MV_GLU)
            launch<T, decltype(nt)::value, true>(m, x, batch, mode, y, s);
        else
            launch<T, decltype(nt)::value, false>(m, x, batch, mode, y, s);
    });
}

} /* namespace rl_mmq */

/* One instantiation file per weight type (parallel builds). */
#define RL_CU_MMQ_DECLARE(name) \
    void rl_cu_mmq_##name(const rl_cu_mat &m, const rl_cu_act &x, int batch, int mode, rl_cu_act &y, cudaStream_t s)
#define RL_CU_MMQ_DEFINE(T, name) \
    RL_CU_MMQ_DECLARE(name) { rl_mmq::launch_type<T>(m, x, batch, mode, y, s); }
RL_CU_MMQ_DECLARE(q4_0);
RL_CU_MMQ_DECLARE(q8_0);

#endif
