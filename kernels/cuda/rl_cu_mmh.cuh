/* rl_cu_mmh.cuh - batched matrix products for Q4_0 and Q8_0 weights on fp16
 * tensor cores, for the decode steps of continuous batching (9..64 sequences).
 *
 * y[b][o] = sum_k W[o][k] x[b][k], with x the fp16 copy of the int8
 * activations (rl_cu_act.h = d * q, the values the matvec multiplies) and W
 * dequantized in registers straight into mma.m16n8k16 A fragments: the
 * scales go into the fp16 weights, so the fp32 accumulators need no per-block
 * epilogue (the int8 kernel, rl_cu_mmq, spends ~30 instructions per mma on
 * it). Per mma a warp issues ~3.5 instructions: bound by the tensor pipe, not
 * by issue.
 *
 * K order inside an mma. The dot product may visit k in any order as long as
 * A and B agree. K is walked in chunks of 4 quant blocks (128); in step s
 * (0..7) of a chunk, lane quad t (lane & 3) supplies elements 4s .. 4s+3 of
 * block t: a0/a1 = elements 4s, 4s+1 of rows g / g + 8 (g = lane >> 2), a2/a3 =
 * elements 4s+2, 4s+3, and b0/b1 the same elements of batch row g. So a
 * lane reads whole 16-byte (Q4_0) or 32-byte (Q8_0) blocks of its rows and
 * 16-byte runs of activations: no ldmatrix, no byte gathers. For Q4_0, step
 * s takes nibble half s / 4 of quant word s % 4 (element e is byte e % 16,
 * nibble e / 16); for Q8_0, word s.
 *
 * CTA: W warps, 32 * W weight rows (GLU: 16 * W gate rows, then the
 * matching up rows), each warp 2 row tiles of 16 x all NT batch tiles of 8.
 * An S-stage cp.async pipeline brings per chunk the quant bytes (rows 64 B for
 * Q4_0, 128 + 16 B for Q8_0: conflict-free 16-byte reads), the fp16 scales
 * and the batch's fp16 activations (rows of 4 blocks at 80-byte steps, row
 * pitch 320 B: conflict-free 16-byte reads).
 *
 * K split, two ways. Cluster: the ranks of a thread-block cluster reduce
 * through distributed shared memory (rl_cluster_epilogue). Workspace: each
 * rank stores its fp32 partial tile in a device-global workspace and counts
 * in; the last rank of a tile to arrive sums the partials in rank order (the
 * same bits whoever arrives last) and runs the epilogue alone. The workspace
 * needs no co-scheduling, so splits up to 8 stay cheap (a cluster of 8
 * measured 2.5x slower than one of 2). The workspace and its counters are
 * static device arrays of each instantiation file: products with a split
 * must not run concurrently on two streams (the engine uses one).
 */
#ifndef RL_CU_MMH_CUH
#define RL_CU_MMH_CUH

#include "rl_cu_async.cuh"
#include "rl_cu_cluster.cuh"

#define MH_CB 4     /* quant blocks per K chunk */
#define MH_XLD 320  /* bytes per activation row of a stage: 4 blocks at 80-byte steps */
#define MH_XBLK 80

namespace rl_mmh {

using namespace rl_async;

/* Split-K workspace (floats) and arrival counters (one per row tile; zero at
 * load, left zero by every launch). One set per translation unit. */
constexpr int64_t WS_FLOATS = 4 << 20;
constexpr int64_t WS_TILES = 8192;
static __device__ __align__(16) float g_ws[WS_FLOATS];
static __device__ unsigned g_cnt[WS_TILES];

template <int T> struct qtraits;
template <> struct qtraits<RL_TYPE_Q4_0> { static const int BB = 16, WLD = 64; };
template <> struct qtraits<RL_TYPE_Q8_0> { static const int BB = 32, WLD = 144; };

/* How a row's MH_CB fp16 scales per chunk can be copied: 8 (one 8-byte
 * cp.async), 4 (two 4-byte ones) or 0 (plain loads), from the blocks per row
 * and the scale plane's alignment. */
__device__ __forceinline__ int scale_copy(int64_t nb, const uint16_t *wd)
{
    return nb % 4 == 0 && ((uintptr_t)wd & 7) == 0 ? 8 : nb % 2 == 0 && ((uintptr_t)wd & 3) == 0 ? 4 : 0;
}

/* The MH_CB scales of chunk c of one row (sp: its first, wd: the plane) into
 * ds, the way scale_copy said; blocks past nb give 0. Plain loads are visible
 * after the caller's barrier, the copies after its cp.async wait. */
__device__ __forceinline__ void copy_scales(unsigned char *ds, const uint16_t *sp, const uint16_t *wd, int64_t c,
                                            int64_t nb, int mode)
{
    if (mode == 8) {
        cp8(ds, sp, true);
    } else if (mode == 4) {
        cp4(ds, sp, true);
        cp4(ds + 4, c * MH_CB + 2 < nb ? sp + 2 : wd, c * MH_CB + 2 < nb);
    } else { /* odd blocks per row */
#pragma unroll
        for (int k = 0; k < MH_CB; k++)
            ((uint16_t *)ds)[k] = c * MH_CB + k < nb ? __ldg(sp + k) : (uint16_t)0;
    }
}

/* CTAs per SM the kernel is built for: 2 of 4 warps (latency hiding needs
 * warps); 1 of 6 or 8 (2 would cap registers at 170 / 128: spills). */
template <int W> __host__ __device__ constexpr int min_blocks()
{
    return W == 4 ? 2 : 1;
}

template <int T, int W, int NT> __host__ __device__ constexpr int stage_bytes()
{
    return 32 * W * qtraits<T>::WLD + 32 * W * MH_CB * 2 + 8 * NT * MH_XLD;
}

/* Pipeline stages: as many as fit (at most 4) in the shared memory of
 * min_blocks CTAs per SM (227 KB, 1 KB reserved per CTA). */
template <int T, int W, int NT> __host__ __device__ constexpr int stages()
{
    constexpr int per_cta = 227 * 1024 / min_blocks<W>() - 1024, n = per_cta / stage_bytes<T, W, NT>();
    return n > 4 ? 4 : n < 2 ? 2 : n;
}

template <int T, int W, int NT, bool GLU> __host__ __device__ constexpr int smem_bytes()
{
    constexpr int BM = 32 * W, NB = 8 * NT, NO = GLU ? BM / 2 : BM;
    constexpr int pipe = stages<T, W, NT>() * stage_bytes<T, W, NT>();
    constexpr int epi = BM * (NB + 4) * 4 + (GLU ? NB * NO * 4 : 0);
    return pipe > epi ? pipe : epi;
}

/* d += A (16 x 16, fp16, row) * B (16 x 8, fp16, col), fp32 accumulators. */
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* Elements 4s .. 4s+3 of a row's block as two fp16 pairs, scale applied:
 * (1024 + n) - off is exact, one rounding in the product. raw: the block's
 * quant bytes as words (Q4_0: 4, Q8_0: 8). */
template <int T>
__device__ __forceinline__ void deq4(const uint32_t *raw, int s, __half2 d, uint32_t &lo, uint32_t &hi)
{
    uint32_t v;
    __half2 off;
    if (T == RL_TYPE_Q4_0) {
        v = (raw[s & 3] >> (4 * (s >> 2))) & 0x0F0F0F0Fu;
        off = __float2half2_rn(1032.0f);
    } else {
        v = raw[s] ^ 0x80808080u; /* int8 q + 128 as a byte */
        off = __float2half2_rn(1152.0f);
    }
    __half2 a, b;
    rl_bytes_to_h2(v, a, b);
    lo = rl_h2_bits(__hmul2(__hsub2(a, off), d));
    hi = rl_h2_bits(__hmul2(__hsub2(b, off), d));
}

/* One K chunk from shared memory into a warp's accumulators: MT row tiles
 * of 16 (quant rows w at WLD-byte steps, their MH_CB scales per row at d)
 * times NT batch tiles of 8 (activations x, rows MH_XLD apart). Each lane
 * dequantizes its block t4 of rows g, g + 8 of every tile (see the K order
 * above) and feeds the mma fragments. */
template <int T, int MT, int NT>
__device__ __forceinline__ void chunk_mma(const unsigned char *w, const unsigned char *d, const unsigned char *x,
                                          float (&acc)[MT][NT][4])
{
    constexpr int BB = qtraits<T>::BB, WLD = qtraits<T>::WLD, NW = BB / 4;
    const int lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    uint32_t raw[MT][2][NW];
    __half2 dw[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            int row = mt * 16 + g + 8 * h;
            const uint4 *p = (const uint4 *)(w + row * WLD + t4 * BB);
#pragma unroll
            for (int v = 0; v < NW / 4; v++) {
                uint4 u = p[v];
                raw[mt][h][4 * v] = u.x, raw[mt][h][4 * v + 1] = u.y;
                raw[mt][h][4 * v + 2] = u.z, raw[mt][h][4 * v + 3] = u.w;
            }
            dw[mt][h] = __half2half2(((const __half *)d)[row * MH_CB + t4]);
        }
    const unsigned char *xb = x + g * MH_XLD + t4 * MH_XBLK;
#pragma unroll
    for (int sp = 0; sp < 4; sp++) { /* steps 2 sp, 2 sp + 1: elements 8 sp .. 8 sp + 7 */
        uint4 bx[NT];
#pragma unroll
        for (int j = 0; j < NT; j++)
            bx[j] = *(const uint4 *)(xb + j * 8 * MH_XLD + sp * 16);
#pragma unroll
        for (int hs = 0; hs < 2; hs++) {
            const int st = 2 * sp + hs; /* step: elements 4 st .. 4 st + 3 of block t4 */
            uint32_t a[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                deq4<T>(raw[mt][0], st, dw[mt][0], a[mt][0], a[mt][2]); /* row g */
                deq4<T>(raw[mt][1], st, dw[mt][1], a[mt][1], a[mt][3]); /* row g + 8 */
            }
#pragma unroll
            for (int j = 0; j < NT; j++) {
                uint32_t b0 = hs ? bx[j].z : bx[j].x, b1 = hs ? bx[j].w : bx[j].y;
#pragma unroll
                for (int mt = 0; mt < MT; mt++)
                    mma16816(acc[mt][j], a[mt], b0, b1);
            }
        }
    }
}

/* The end of a CTA's tile, shared by the batched kernels: smem holds its fp32
 * partial tile Cs [BM][NB + 4] (local rows x batch; GLU: rows < BM / 2 are
 * gate rows, the rest their up rows), complete (the caller's barrier). A
 * workspace K split stores the partial, and the last rank of the tile to
 * arrive sums all partials in rank order and runs the epilogue; a cluster
 * split or no split goes straight to rl_cluster_epilogue. All threads call it.
 * tile: the CTA's row tile (workspace partials at tile * split + rank; -1:
 * blockIdx.x / split, the grids of one CTA per tile and rank in that order). */
template <bool GLU, int BM, int NB, int THREADS>
__device__ __forceinline__ void finish(unsigned char *smem, int64_t o0, int64_t n_out, int batch, int split, int rank,
                                       bool cluster, int mode, const rl_cu_act &y, int64_t tile = -1)
{
    constexpr int NO = GLU ? BM / 2 : BM, LDC = NB + 4;
    const int tid = threadIdx.x;
    float *Cs = (float *)smem;
    float *Vs = Cs + BM * LDC;
    if (split > 1 && !cluster) {
        /* Workspace split: tile t's partials at g_ws[(t * split + rank) * BM * NB], row-major. */
        __shared__ bool s_last;
        constexpr int TN = BM * NB;
        if (tile < 0)
            tile = blockIdx.x / (unsigned)split; /* CTA tile * split + rank */
        constexpr int TN4 = TN / 4; /* float4 units; NB % 8 == 0, LDC % 4 == 0 */
        float4 *mine = (float4 *)(g_ws + (tile * split + rank) * TN);
        for (int i = tid; i < TN4; i += THREADS)
            __stcg(mine + i, *(const float4 *)(Cs + (4 * i / NB) * LDC + 4 * i % NB));
        /* One release and one acquire per CTA, by thread 0 (the CTA barrier
         * orders every thread's stores before its fence): a fence in every
         * thread cost ~6% of the kernel's time in rl_cu_mmt (Nsight Compute). */
        __syncthreads();
        if (tid == 0) {
            __threadfence(); /* the CTA's partials visible device-wide before counting in */
            s_last = atomicAdd(&g_cnt[tile], 1u) == (unsigned)split - 1;
            __threadfence(); /* the other ranks' partials read after the count */
        }
        __syncthreads();
        if (!s_last)
            return;
        /* One CTA reads split partial tiles: keep U x split 16-byte loads in
         * flight per thread (latency, not bandwidth, bounds this tail). */
        const float4 *p0 = (const float4 *)(g_ws + tile * split * TN);
        constexpr int U = 4;
        for (int base = tid; base < TN4; base += U * THREADS) {
            float4 v[U][8];
#pragma unroll
            for (int u = 0; u < U; u++)
#pragma unroll
                for (int r = 0; r < 8; r++) {
                    int i = base + u * THREADS;
                    v[u][r] = r < split && i < TN4 ? __ldcg(p0 + (int64_t)r * TN4 + i) : make_float4(0, 0, 0, 0);
                }
#pragma unroll
            for (int u = 0; u < U; u++) {
                int i = base + u * THREADS;
                if (i >= TN4)
                    break;
                float4 sum = make_float4(0, 0, 0, 0);
#pragma unroll
                for (int r = 0; r < 8; r++) /* rank order: the same bits whoever arrived last */
                    if (r < split)
                        sum.x += v[u][r].x, sum.y += v[u][r].y, sum.z += v[u][r].z, sum.w += v[u][r].w;
                *(float4 *)(Cs + (4 * i / NB) * LDC + 4 * i % NB) = sum;
            }
        }
        if (tid == 0)
            g_cnt[tile] = 0; /* ready for the next launch (graph replays) */
        __syncthreads();
        rl_cluster_epilogue<GLU, NO, LDC, THREADS>(Cs, Vs, o0, n_out, batch, 0, 1, mode, y);
        return;
    }
    rl_cluster_epilogue<GLU, NO, LDC, THREADS>(Cs, Vs, o0, n_out, batch, rank, split, mode, y);
}

/* finish() for a K split whose CTAs are all resident at once (one wave:
 * the caller guarantees tiles x split CTAs fit the device together): every
 * rank stores its partial tile to the workspace (batch-row-major, so the
 * reads below are coalesced), waits until all ranks of the tile have, and
 * then reduces and writes its own share of the batch rows (b % split ==
 * rank) in rank order: the same sums, so the same bits, as finish()'s last
 * CTA, which reads every partial alone (~split x 64 KB through one SM: the
 * serial tail of split products). The tile's counter counts the arrivals,
 * then the departures; the last to leave zeroes it for the next launch. */
template <bool GLU, int BM, int NB, int THREADS>
__device__ __forceinline__ void finish_dist(unsigned char *smem, int64_t o0, int64_t n_out, int batch, int split,
                                            int rank, int mode, const rl_cu_act &y, int64_t tile)
{
    constexpr int NO = GLU ? BM / 2 : BM, LDC = NB + 4, TN = BM * NB;
    const int tid = threadIdx.x;
    const float *Cs = (const float *)smem;
    float *Vs = (float *)smem + BM * LDC;
    float *ws = g_ws + tile * split * TN;
    float4 *mine = (float4 *)(ws + rank * TN);
    for (int k = tid; k < TN / 4; k += THREADS) { /* [b][i]: four local rows of batch row b */
        const int b = k / (BM / 4), i = 4 * (k % (BM / 4));
        __stcg(mine + k, make_float4(Cs[i * LDC + b], Cs[(i + 1) * LDC + b], Cs[(i + 2) * LDC + b],
                                     Cs[(i + 3) * LDC + b]));
    }
    __syncthreads();
    if (tid == 0) {
        __threadfence(); /* this CTA's partial visible device-wide before counting in */
        atomicAdd(&g_cnt[tile], 1u);
        unsigned n;
        do
            asm volatile("ld.acquire.gpu.u32 %0, [%1];" : "=r"(n) : "l"(&g_cnt[tile]) : "memory");
        while (n < (unsigned)split);
    }
    __syncthreads(); /* every rank's partial is in the workspace */
    rl_split_epilogue<GLU, NO, THREADS>(rl_part_ws<BM, NB>{ws}, Vs, o0, n_out, batch, rank, split, mode, y);
    __syncthreads(); /* this CTA's reads are done */
    if (tid == 0 && atomicAdd(&g_cnt[tile], 1u) == 2u * (unsigned)split - 1)
        g_cnt[tile] = 0; /* the last to leave: ready for the next launch (graph replays) */
}

template <int T, int W, int NT, bool GLU>
__global__ void __launch_bounds__(W * 32, min_blocks<W>())
k_mmh(const rl_cu_mat m, const rl_cu_act x, rl_cu_act y, int batch, int mode, int split, bool cluster)
{
    constexpr int THREADS = 32 * W, BM = 32 * W, NB = 8 * NT;
    constexpr int BB = qtraits<T>::BB, WLD = qtraits<T>::WLD, S = stages<T, W, NT>();
    constexpr int NO = GLU ? BM / 2 : BM; /* outputs per CTA */
    constexpr int LDC = NB + 4;           /* fp32 partial tile row */
    constexpr int STG = stage_bytes<T, W, NT>();
    constexpr int W_OFF = 0, D_OFF = BM * WLD, X_OFF = D_OFF + BM * MH_CB * 2;
    static_assert(STG % 16 == 0 && D_OFF % 16 == 0 && X_OFF % 16 == 0, "smem alignment");

    extern __shared__ __align__(128) unsigned char smem[];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
    const int rank = (int)(blockIdx.x % (unsigned)split);
    const rl_tile_plan tp = rl_tile_plan_of<GLU>(m, NO, MH_CB, blockIdx.x / (unsigned)split, rank, split);
    const int64_t n_out = tp.n_out, o0 = tp.o0, nb = tp.nb, c0 = tp.c0, c1 = tp.c1;

    auto wrow = [&](int r) { return rl_tile_row<GLU>(r, o0, NO, n_out); };
    const uint8_t *wq = (const uint8_t *)m.q;
    const uint16_t *wd = (const uint16_t *)m.d;
    const __half *xh = (const __half *)x.h;

    /* Copy assignments, fixed for the whole kernel (offsets computed once):
     * thread tid copies 16-byte unit wu of local rows tid / WUPR + i * WSTEP
     * of the quant bytes, the four scales of row tid, and unit xu of batch
     * rows tid / 16 + i * XSTEP of the activations. */
    constexpr int WUPR = MH_CB * BB / 16, WSTEP = THREADS / WUPR, WPT = BM / WSTEP;
    constexpr int XSTEP = THREADS / 16, XPT = (NB + XSTEP - 1) / XSTEP;
    static_assert(THREADS % WUPR == 0 && BM % WSTEP == 0 && THREADS % 16 == 0 && BM == THREADS, "copy layout");
    const int wu = tid % WUPR, xu = tid % 16, xb0 = tid / 16;
    uint32_t woff[WPT]; /* byte offsets in the quant plane (rl_cu_mmh checks they fit) */
#pragma unroll
    for (int i = 0; i < WPT; i++)
        woff[i] = (uint32_t)(wrow(tid / WUPR + i * WSTEP) * nb * BB) + wu * 16;
    const uint32_t doff = (uint32_t)(wrow(tid) * nb);
    const int scm = scale_copy(nb, wd);

    auto load_w = [&](int st, int64_t c) {
        unsigned char *dst = smem + st * STG + W_OFF + (tid / WUPR) * WLD + wu * 16;
        const uint8_t *src = wq + c * MH_CB * BB;
        const bool ok = c * MH_CB + wu * 16 / BB < nb;
#pragma unroll
        for (int i = 0; i < WPT; i++)
            cp16(dst + i * WSTEP * WLD, ok ? src + woff[i] : wq, ok);
        copy_scales(smem + st * STG + D_OFF + tid * MH_CB * 2, wd + doff + c * MH_CB, wd, c, nb, scm);
    };
    /* fp16 activations of chunk c (after rl_pdl_wait): block k of row b at b * MH_XLD + k * MH_XBLK. */
    auto load_x = [&](int st, int64_t c) {
        unsigned char *dst = smem + st * STG + X_OFF + xb0 * MH_XLD + (xu / 4) * MH_XBLK + (xu % 4) * 16;
        const __half *src = xh + xb0 * x.n + c * MH_CB * 32 + xu * 8;
        const bool okk = c * MH_CB + xu / 4 < nb;
#pragma unroll
        for (int i = 0; i < XPT; i++) {
            int b = xb0 + i * XSTEP;
            if (NB % XSTEP == 0 || b < NB) {
                bool ok = okk && b < batch;
                cp16(dst + i * XSTEP * MH_XLD, ok ? src + (int64_t)i * XSTEP * x.n : xh, ok);
            }
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
        chunk_mma<T, 2, NT>(base + W_OFF + wr * WLD, base + D_OFF + wr * MH_CB * 2, base + X_OFF, acc);
    }
    cp_wait<0>();
    __syncthreads(); /* all stages consumed: the pipeline memory becomes the partial tile */

    float *Cs = (float *)smem; /* [BM][LDC]: local rows x batch (then finish()) */
#pragma unroll
    for (int mt = 0; mt < 2; mt++)
#pragma unroll
        for (int j = 0; j < NT; j++) {
            /* accumulators: (row g, batch 2 t4, 2 t4 + 1), (row g + 8, same) */
            int row = wr + mt * 16 + g, col = 8 * j + 2 * t4;
            *(float2 *)(Cs + row * LDC + col) = make_float2(acc[mt][j][0], acc[mt][j][1]);
            *(float2 *)(Cs + (row + 8) * LDC + col) = make_float2(acc[mt][j][2], acc[mt][j][3]);
        }
    __syncthreads();
    finish<GLU, BM, NB, THREADS>(smem, o0, n_out, batch, split, rank, cluster, mode, y);
}

/* Host side (rl_cu_mmh.cu): resident CTAs per SM of a kernel, and the choice
 * of warps per CTA and K split for a matrix. */
struct plan {
    int warps, split;
    bool cluster; /* K split through a cluster (else the workspace) */
};
plan choose(int64_t rows_out, bool glu, int64_t nch, int batch, const int (&per_sm)[3]);
/* The argument checks rl_cu_mmh and rl_cu_mms share: 0, -EINVAL or -ENOTSUP. */
int check_args(const rl_cu_mat *m, const rl_cu_act *x, int batch, int mode, const rl_cu_act *y);
extern const int warp_options[3];

template <int T, int W, int NT, bool GLU>
static int occupancy()
{
    auto k = k_mmh<T, W, NT, GLU>;
    constexpr int smem = smem_bytes<T, W, NT, GLU>();
    static int per_sm; /* idempotent: a racing second call computes the same value */
    if (per_sm == 0) {
        cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        int n = 0;
        if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, k, W * 32, smem) != cudaSuccess || n < 1) {
            cudaGetLastError();
            n = 1;
        }
        per_sm = n;
    }
    return per_sm;
}

template <int T, int W, int NT, bool GLU>
static void launch_w(const rl_cu_mat &m, const rl_cu_act &x, int batch, int mode, rl_cu_act &y, plan p,
                     cudaStream_t s)
{
    constexpr int NO = GLU ? 16 * W : 32 * W;
    int64_t n_out = GLU ? m.rows / 2 : m.rows;
    int64_t tiles = (n_out + NO - 1) / NO;
    if (p.split > 1 && !p.cluster)
        rl_launch_smem(k_mmh<T, W, NT, GLU>, dim3((unsigned)(tiles * p.split)), dim3(W * 32),
                       smem_bytes<T, W, NT, GLU>(), s, m, x, y, batch, mode, p.split, false);
    else
        rl_launch_cluster(k_mmh<T, W, NT, GLU>, tiles, p.split, dim3(W * 32), smem_bytes<T, W, NT, GLU>(), s, m, x,
                          y, batch, mode, p.split, true);
}

template <int T, int NT, bool GLU> static plan plan_of(const rl_cu_mat &m)
{
    const int per_sm[3] = {occupancy<T, 4, NT, GLU>(), occupancy<T, 6, NT, GLU>(), occupancy<T, 8, NT, GLU>()};
    return choose(GLU ? m.rows / 2 : m.rows, GLU, (m.cols / 32 + MH_CB - 1) / MH_CB, 8 * NT, per_sm);
}

template <int T, int NT, bool GLU>
static void launch(const rl_cu_mat &m, const rl_cu_act &x, int batch, int mode, rl_cu_act &y, cudaStream_t s)
{
    plan p = plan_of<T, NT, GLU>(m);
    if (p.warps == 4)
        launch_w<T, 4, NT, GLU>(m, x, batch, mode, y, p, s);
    else if (p.warps == 6)
        launch_w<T, 6, NT, GLU>(m, x, batch, mode, y, p, s);
    else
        launch_w<T, 8, NT, GLU>(m, x, batch, mode, y, p, s);
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

/* The plan launch_type would use (no launch). */
template <int T> plan plan_type(const rl_cu_mat &m, int batch, int mode)
{
    plan p = {};
    rl_dispatch_nt<8>((batch + 7) / 8, [&](auto nt) {
        p = mode == RL_CU_MV_GLU ? plan_of<T, decltype(nt)::value, true>(m) : plan_of<T, decltype(nt)::value, false>(m);
    });
    return p;
}

} /* namespace rl_mmh */

/* One instantiation file per weight type (parallel builds). */
#define RL_CU_MMH_DECLARE(name) \
    void rl_cu_mmh_##name(const rl_cu_mat &m, const rl_cu_act &x, int batch, int mode, rl_cu_act &y, cudaStream_t s)
#define RL_CU_MMH_DEFINE(T, name)                                                                  \
    RL_CU_MMH_DECLARE(name) { rl_mmh::launch_type<T>(m, x, batch, mode, y, s); }                   \
    rl_mmh::plan rl_cu_mmh_plan_##name(const rl_cu_mat &m, int batch, int mode)                    \
    {                                                                                              \
        return rl_mmh::plan_type<T>(m, batch, mode);                                               \
    }
RL_CU_MMH_DECLARE(q4_0);
RL_CU_MMH_DECLARE(q8_0);
rl_mmh::plan rl_cu_mmh_plan_q4_0(const rl_cu_mat &m, int batch, int mode);
rl_mmh::plan rl_cu_mmh_plan_q8_0(const rl_cu_mat &m, int batch, int mode);

#endif
