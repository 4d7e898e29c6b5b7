/* rl_cu_mmt.cu - rl_cu_mmw's batched Q4_0 products (33..64 rows, wgmma,
 * sm_90a) with the copies done by the tensor memory accelerator and the
 * warpgroups decoupled: the decode steps of a large batch.
 *
 * Why (docs/PERFORMANCE.md, "rl_cu_mmw"): the register pipeline of
 * rl_cu_mmw keeps the tensor pipe ~23% busy. Every thread issues cp.async
 * copies, and one CTA-wide barrier per chunk keeps all warpgroups in step,
 * so they dequantize together and then queue their wgmmas together. Here:
 *
 * - One producer warp (lane 0) fills each stage with five TMA copies (2-D
 *   tensor maps): the chunk's quant bytes (BM rows x 128 bytes; GLU: the
 *   gate rows and the up rows, two copies), their fp16 scales (BM rows x 8)
 *   and the batch's activations (4 boxes of 64 rows x 64 fp16). A stage's
 *   "full" mbarrier counts the bytes in; its "empty" mbarrier counts the
 *   consumer warps out. The weights of the first stages are requested before
 *   the PDL wait (they do not depend on the previous kernel).
 * - WG consumer warpgroups of 64 weight rows each run on their own: wait for
 *   a stage, dequantize a quant block into A registers (the same fp16 values
 *   as rl_cu_mmh and rl_cu_mmw), queue its two wgmma.m64n64k16 (B, the
 *   activations, read by the tensor cores from shared memory), dequantize the
 *   next block while they run, release the stage. Nothing is in flight across
 *   the chunk loop's edge (ptxas would serialize the wgmmas).
 *
 * Shared memory layouts (a stage is 1024-byte aligned):
 * - quant: row r at r * 128, its 16-byte block u at (u ^ (r % 8)) * 16 (the
 *   TMA's 128-byte swizzle), so the 8 rows a warp reads together hit 8
 *   different bank groups;
 * - scales: row r's 8 at r * 16;
 * - activations: 4 boxes of 8 KB (64 K each), batch row n at n * 128,
 *   128-byte swizzled; the wgmma descriptor says so (layout 1, SBO 1024) and
 *   a 16-wide K slice starts 32 bytes after the previous one.
 *
 * With RL_CU_MMT_MC=2 (or rl_cu_mmt_multicast), clusters of two row tiles
 * share each activation box by TMA multicast and release stages in both
 * CTAs; correct, but slower on the H100 (docs/PERFORMANCE.md), so off.
 *
 * Needs what the tensor maps need: blocks per row a multiple of 8 (the
 * scale rows' 16-byte pitch, whole chunks of 256), 16-byte aligned planes,
 * the driver's cuTensorMapEncodeTiled; otherwise -ENOTSUP and rl_cu_mmw
 * runs its register pipeline. The K split, its workspace and the epilogue are
 * rl_cu_mmh's (rl_mmh::finish). */
#include <stdlib.h>
#include <string.h>

#include "rl_cu_mmh.cuh"
#include "rl_cu_tma.cuh"
#include "rl_cu_wgmma.cuh"

namespace rl_mmt {

using namespace rl_async;
using namespace rl_wgmma;
using rl_tma::map_2d;
using rl_tma::map_3d;

constexpr int NB = 64;       /* batch rows: the wgmma's N */
constexpr int CB = 8;        /* quant blocks per K chunk (256 elements) */
constexpr int QLD = CB * 16; /* quant bytes per row per chunk: one swizzle row */
constexpr int XBOX = 64 * 64 * 2;

template <int WG> struct cfg {
    static constexpr int BM = 64 * WG, THREADS = 128 * WG + 32; /* + the producer warp */
    static constexpr int Q_OFF = 0, D_OFF = BM * QLD, X_OFF = D_OFF + BM * 16;
    static constexpr int STG = X_OFF + (CB * 32 / 64) * XBOX; /* = the bytes a stage's copies bring */
    static constexpr int S_FIT = (227 * 1024 - 2048) / STG, S = S_FIT > 4 ? 4 : S_FIT;
    static constexpr int SMEM_PIPE = S * STG, SMEM_EPI = BM * (NB + 4) * 4 + NB * (BM / 2) * 4;
    static constexpr int SMEM = (SMEM_PIPE > SMEM_EPI ? SMEM_PIPE : SMEM_EPI) + 1024; /* + alignment */
    static_assert(X_OFF % 1024 == 0 && STG % 1024 == 0 && (BM / 2) % 8 == 0 && S >= 2, "stage layout");
};

#ifdef RL_WGMMA_DEVICE
/* (mbarriers: rl_cu_async.cuh; tensor-map copies: rl_cu_tma.cuh) */
/* The same box into both CTAs of the pair (ctaMask), completing bytes on
 * each one's barrier at bar's offset. */
__device__ __forceinline__ void tma_2d_mc(void *dst, const CUtensorMap *tm, int x0, int x1, uint64_t *bar,
                                          unsigned mask)
{
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster "
                 "[%0], [%1, {%2, %3}], [%4], %5;" ::"r"(sm_addr(dst)),
                 "l"((uint64_t)tm), "r"(x0), "r"(x1), "r"(sm_addr(bar)), "h"((unsigned short)mask)
                 : "memory");
}

/* A consumer warp releases a stage: its own CTA's barrier and, in a pair,
 * the peer's (which multicasts into this stage too). */
template <int MC> __device__ __forceinline__ void release_t(uint64_t *b, int member)
{
    bar_arrive(b);
    if (MC > 1) {
        unsigned remote;
        asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(sm_addr(b)), "r"(member ^ 1));
        asm volatile("mbarrier.arrive.release.cluster.shared::cluster.b64 _, [%0];" ::"r"(remote) : "memory");
    }
}

__device__ __forceinline__ void cluster_sync()
{
    asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;" ::: "memory");
}

/* Descriptor of a 128-byte-swizzled K-major B tile at p (1024-aligned atom
 * base, or 32-byte steps into it): SBO 1024 (the next 8 batch rows). */
__device__ __forceinline__ uint64_t desc_sw128(const void *p)
{
    uint64_t a = (uint64_t)(sm_addr(p) & 0x3FFFF) >> 4;
    return a | (1ull << 16) | ((uint64_t)(1024 >> 4) << 32) | (1ull << 62);
}

#endif

template <int WG, bool GLU, int MC>
__global__ void __launch_bounds__(cfg<WG>::THREADS, 1)
k_mmt(const __grid_constant__ CUtensorMap tq, const __grid_constant__ CUtensorMap td,
      const __grid_constant__ CUtensorMap tx, const rl_cu_mat m, rl_cu_act y, int batch, int mode, int split,
      int probe, bool dist)
{
#ifdef RL_WGMMA_DEVICE
    using C = cfg<WG>;
    constexpr int BM = C::BM, THREADS = C::THREADS, STG = C::STG, S = C::S;
    constexpr int NO = GLU ? BM / 2 : BM, LDC = NB + 4;
    extern __shared__ unsigned char smem_raw[];
    __shared__ __align__(8) uint64_t full[S], empty[S];
    unsigned char *smem = smem_raw + ((1024 - (sm_addr(smem_raw) & 1023)) & 1023);
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
    constexpr int GB = 2; /* quant blocks per wgmma commit group */
    /* MC == 2: CTA pairs (clusters) share their activation copies; pair p is
     * rank p % split of tiles 2 (p / split) and 2 (p / split) + 1 (the second
     * past the last tile computes nothing it writes). */
    const int member = (int)(blockIdx.x % MC);
    const unsigned pair = blockIdx.x / MC;
    const int rank = (int)(pair % (unsigned)split);
    const int64_t tile = (int64_t)(pair / (unsigned)split) * MC + member;
    const rl_tile_plan tp = rl_tile_plan_of<GLU>(m, NO, CB, tile, rank, split);
    const int64_t n_out = tp.n_out, o0 = tp.o0, c0 = tp.c0, c1 = tp.c1;

    if (tid == 0) {
#pragma unroll
        for (int s = 0; s < S; s++) {
            bar_init(&full[s], 1);
            bar_init(&empty[s], 4 * WG * MC); /* one arrival per consumer warp of the pair */
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    if (MC > 1)
        cluster_sync(); /* both CTAs' barriers exist before either copies into the other */
    else
        __syncthreads();
    rl_pdl_trigger();

    float acc[32];
#pragma unroll
    for (int i = 0; i < 32; i++)
        acc[i] = 0.0f;

    if (warp == 4 * WG) { /* the producer */
        if (lane == 0) {
            asm volatile("prefetch.tensormap [%0];" ::"l"((uint64_t)&tq) : "memory");
            asm volatile("prefetch.tensormap [%0];" ::"l"((uint64_t)&td) : "memory");
            asm volatile("prefetch.tensormap [%0];" ::"l"((uint64_t)&tx) : "memory");
            const int nck = (int)(c1 - c0);
            auto load_w = [&](int s, int64_t c) {
                unsigned char *base = smem + s * STG;
                if (probe == 2) { /* measurement: no copies */
                    bar_arrive(&full[s]);
                    return;
                }
                bar_expect(&full[s], STG);
                if (probe >= 3) { /* measurement: the planes read as chunk-major [chunk][row][...] */
                    rl_tma::load_3d(base + C::Q_OFF, &tq, 0, (int)o0, (int)c, &full[s]);
                    rl_tma::load_3d(base + C::D_OFF, &td, 0, (int)o0, (int)c, &full[s]);
                    if (GLU) {
                        rl_tma::load_3d(base + C::Q_OFF + NO * QLD, &tq, 0, (int)(n_out + o0), (int)c, &full[s]);
                        rl_tma::load_3d(base + C::D_OFF + NO * 16, &td, 0, (int)(n_out + o0), (int)c, &full[s]);
                    }
                } else if (GLU) {
                    rl_tma::load_2d(base + C::Q_OFF, &tq, (int)(c * QLD), (int)o0, &full[s]);
                    rl_tma::load_2d(base + C::Q_OFF + NO * QLD, &tq, (int)(c * QLD), (int)(n_out + o0), &full[s]);
                    rl_tma::load_2d(base + C::D_OFF, &td, (int)(c * CB), (int)o0, &full[s]);
                    rl_tma::load_2d(base + C::D_OFF + NO * 16, &td, (int)(c * CB), (int)(n_out + o0), &full[s]);
                } else {
                    rl_tma::load_2d(base + C::Q_OFF, &tq, (int)(c * QLD), (int)o0, &full[s]);
                    rl_tma::load_2d(base + C::D_OFF, &td, (int)(c * CB), (int)o0, &full[s]);
                }
            };
            auto load_x = [&](int s, int64_t c) {
                unsigned char *base = smem + s * STG + C::X_OFF;
                if (probe == 2)
                    return;
#pragma unroll
                for (int j = 0; j < CB * 32 / 64; j++) {
                    if (MC == 1)
                        rl_tma::load_2d(base + j * XBOX, &tx, (int)(c * CB * 32 + 64 * j), 0, &full[s]);
                    else if (j % MC == member) /* to both CTAs of the pair */
                        tma_2d_mc(base + j * XBOX, &tx, (int)(c * CB * 32 + 64 * j), 0, &full[s], (1u << MC) - 1);
                }
            };
            const int pro = nck < S ? nck : S;
            for (int i = 0; i < pro; i++)
                load_w(i, c0 + i);
            rl_pdl_wait();
            for (int i = 0; i < pro; i++)
                load_x(i, c0 + i);
            for (int i = S; i < nck; i++) {
                const int s = i % S;
                bar_wait(&empty[s], (unsigned)((i / S) - 1) & 1u);
                load_w(s, c0 + i);
                load_x(s, c0 + i);
            }
        } else {
            rl_pdl_wait();
        }
        __syncwarp();
    } else { /* a consumer warp: rows r and r + 8 of its warpgroup's 64 */
        rl_pdl_wait();
        const int r = (warp >> 2) * 64 + (warp & 3) * 16 + g; /* r % 8 == g */
        const uint32_t sel = (t4 & 1) ? 0x7632u : 0x5410u;
        const int w0 = t4 >> 1;
        for (int64_t c = c0; c < c1; c++) {
            const int i = (int)(c - c0), s = i % S;
            bar_wait(&full[s], (unsigned)(i / S) & 1u);
            const unsigned char *base = smem + s * STG;
            if (probe == 1 || probe == 3) { /* measurement: no products */
                __syncwarp();
                if (lane == 0)
                    release_t<MC>(&empty[s], member);
                continue;
            }
            const uint4 sc0 = *(const uint4 *)(base + C::D_OFF + r * 16);
            const uint4 sc1 = *(const uint4 *)(base + C::D_OFF + (r + 8) * 16);
            const uint64_t dx = desc_sw128(base + C::X_OFF);
            uint32_t a[2][GB][2][4]; /* [set][block of the group][slice]: group j in set j % 2 */
#pragma unroll
            for (int j = 0; j < CB / GB; j++) {
#pragma unroll
                for (int e = 0; e < GB; e++) {
                    const int blk = j * GB + e;
                    /* the words of bytes 2t, 2t+1 and 2t+8, 2t+9 of the block, rows r and r + 8 */
                    const unsigned char *q = base + C::Q_OFF + r * QLD + (((unsigned)(blk ^ g) << 4) | (w0 << 2));
                    const uint32_t q0a = *(const uint32_t *)q, q0b = *(const uint32_t *)(q + 8);
                    const uint32_t q1a = *(const uint32_t *)(q + 8 * QLD), q1b = *(const uint32_t *)(q + 8 * QLD + 8);
                    const uint32_t s0 = blk < 2 ? sc0.x : blk < 4 ? sc0.y : blk < 6 ? sc0.z : sc0.w;
                    const uint32_t s1 = blk < 2 ? sc1.x : blk < 4 ? sc1.y : blk < 6 ? sc1.z : sc1.w;
                    const __half2 d0 = rl_bits_h2(__byte_perm(s0, 0, (blk & 1) ? 0x3232 : 0x1010));
                    const __half2 d1 = rl_bits_h2(__byte_perm(s1, 0, (blk & 1) ? 0x3232 : 0x1010));
                    a_frags(q0a, q0b, q1a, q1b, d0, d1, sel, a[j & 1][e][0], a[j & 1][e][1]);
                }
                wg_fence();
#pragma unroll
                for (int e = 0; e < GB; e++)
#pragma unroll
                    for (int h = 0; h < 2; h++) { /* K offset 32 blk + 16 h: box blk / 2, 32-byte step (blk % 2) * 2 + h */
                        const int blk = j * GB + e;
                        wgmma_64x64(acc, a[j & 1][e][h],
                                    dx + (uint64_t)(((blk >> 1) * XBOX + ((blk & 1) * 2 + h) * 32) >> 4));
                    }
                wg_commit();
                wg_wait<1>(); /* group j - 1 is done: its set is free for group j + 1 */
            }
            wg_wait<0>();
            __syncwarp();
            if (lane == 0)
                release_t<MC>(&empty[s], member);
        }
    }
    if (MC > 1)
        cluster_sync(); /* the peer's last arrivals on our barriers are done */
    __syncthreads(); /* every stage consumed: the pipeline memory becomes the partial tile */
    float *Cs = (float *)smem;
    if (warp < 4 * WG) {
        const int r = (warp >> 2) * 64 + (warp & 3) * 16 + g;
        /* accumulators: n8 tile j: (row, col 8j + 2t, +1) in 4j, 4j + 1; row + 8 in 4j + 2, 4j + 3 */
#pragma unroll
        for (int j = 0; j < 8; j++) {
            int col = 8 * j + 2 * t4;
            *(float2 *)(Cs + r * LDC + col) = make_float2(acc[4 * j], acc[4 * j + 1]);
            *(float2 *)(Cs + (r + 8) * LDC + col) = make_float2(acc[4 * j + 2], acc[4 * j + 3]);
        }
    }
    __syncthreads();
    if (dist && MC == 1 && split > 1)
        rl_mmh::finish_dist<GLU, BM, NB, THREADS>(smem, o0, n_out, batch, split, rank, mode, y, tile);
    else
        rl_mmh::finish<GLU, BM, NB, THREADS>(smem, o0, n_out, batch, split, rank, false, mode, y, tile);
#else
    (void)tq, (void)td, (void)tx, (void)m, (void)y, (void)batch, (void)mode, (void)split, (void)probe, (void)dist;
#endif
}

/* Forced warpgroups per CTA (0: automatic; -1: off, rl_cu_mmw keeps its
 * register pipeline): RL_CU_MMT=0|2|3|4 on first use, or rl_cu_mmt_force. */
static int force_wg = -2;
/* CTAs per activation copy: 2 (clusters of two tiles share each activation
 * box by TMA multicast) or 1; RL_CU_MMT_MC=1|2. */
static int mc = 1;
/* Measurement probes (RL_CU_MMT_PROBE): 1 the copies without the products,
 * 2 the products without the copies (on whatever the stages hold); 3 and 4:
 * 1 and 0 with the weight planes read as if laid out chunk-major (each
 * stage's quant and scale boxes contiguous). Wrong results; never set in
 * service. */
static int probe = 0;
/* K splits reduced by all their CTAs (rl_mmh::finish_dist) wherever the grid
 * is one wave, instead of by the last CTA of each tile: RL_CU_MMT_DIST=0|1,
 * or rl_cu_mmt_dist; 2 plans as 1 but reduces as 0 (tests: the same bits). */
static int dist = 1;
/* RL_CU_MMT_SPLIT=N: plan only K splits of N (where they fit; measurements). */
static int force_split = 0;
/* The plan's constants (plan_of): session 13's refit by default (2
 * warpgroups allowed, activations weighed at 8 K, a shared reduction at half
 * a chunk per rank), which picks 2 warpgroups split 4 for the 7B O and down
 * products; RL_CU_MMT_PLAN=8: session 8's (3 or 4 warpgroups, activations at
 * their 32 K, half a chunk whatever the split). Measured as plans in session
 * 14 (docs/PERFORMANCE.md): the refit's 7B batch-64 step 3.57 against 3.79
 * ms of products, engine 11,585 against 11,184 tok/s, TinyLlama 28,012
 * against 26,956. */
static bool plan8 = false;

static void read_env(void)
{
    if (force_wg != -2)
        return;
    const char *di = getenv("RL_CU_MMT_DIST");
    dist = di && (di[0] == '0' || di[0] == '2') ? di[0] - '0' : 1;
    const char *e = getenv("RL_CU_MMT");
    const int v = e ? atoi(e) : -2;
    force_wg = e && strcmp(e, "0") == 0 ? -1 : v >= 2 && v <= 4 ? v : 0;
    const char *f = getenv("RL_CU_MMT_MC");
    mc = f && atoi(f) == 2 ? 2 : 1;
    const char *fs = getenv("RL_CU_MMT_SPLIT");
    force_split = fs && atoi(fs) >= 1 && atoi(fs) <= 8 ? atoi(fs) : 0;
    const char *pl = getenv("RL_CU_MMT_PLAN");
    plan8 = pl && atoi(pl) == 8;
    const char *pr = getenv("RL_CU_MMT_PROBE");
    probe = pr && atoi(pr) >= 1 && atoi(pr) <= 4 ? atoi(pr) : 0;
}

struct plan {
    int wg, split;
};

/* Whether a launch of tiles x split CTAs reduces its K split by every rank
 * (finish_dist): dist on, no multicast pairs, and the whole grid resident at
 * once (one CTA per SM), since each rank waits for the others of its tile. */
static bool shared_red(int64_t tiles, int split)
{
    return dist == 1 && mc == 1 && split > 1 && tiles * split <= rl_cu_sm_count();
}

/* The plan: warpgroups per CTA and K split with the least estimated time,
 * in units of a 4-warpgroup chunk (~2.6 us on the H100): waves of CTAs (one
 * per SM) times each CTA's chunks plus ~1.5 of pipeline fill, a chunk costing
 * its weight bytes (36 per row) and its activations (32 K), plus a split's
 * reduction: the last CTA of a tile reads split partial tiles of BM x 64
 * floats at ~30 GB/s (the workspace must hold them); in one wave, with the
 * reduction shared by all ranks (dist), about half a chunk whatever the
 * split. Fitted to the 7B products (docs/PERFORMANCE.md). The default
 * (plan8 off): 2 warpgroups allowed, the activations (from L2)
 * weighed as 8 K and the shared reduction as half a chunk per rank, refitted
 * to session 13's products-alone measurements of forced plans, where the
 * 4096-row O and down products ran best as 2 warpgroups split 4 (16.5 and
 * 24.8 us against 19.3 and 29.6 for the default 4 warpgroups split 8). */
static int pair_slots(void);

static plan plan_of(int64_t rows_out, bool glu, int64_t nch)
{
    const int64_t slots = mc == 2 ? pair_slots() : rl_cu_sm_count();
    plan best = {4, 1};
    double best_cost = 1e300;
    for (int wg = 2; wg <= 4; wg++) {
        if (force_wg > 0 ? wg != force_wg : plan8 && wg == 2)
            continue;
        const int64_t bm = 64 * wg, no = glu ? bm / 2 : bm, tiles = ((rows_out + no - 1) / no + mc - 1) / mc * mc;
        const double act = plan8 ? 32768.0 : 8192.0;
        const double per_chunk = (36.0 * (double)bm + act) / (36.0 * 256 + act);
        for (int sp = 1; sp <= 8; sp++) {
            if (sp > 1 && (nch < 2 * sp || tiles * sp * bm * NB > rl_mmh::WS_FLOATS || tiles > rl_mmh::WS_TILES))
                break;
            if (force_split && sp != force_split)
                continue;
            double waves = (double)((tiles * sp + slots - 1) / slots);
            const bool cheap_red = dist > 0 && mc == 1 && tiles * sp <= slots;
            double red = sp == 1 ? 0.0 : cheap_red ? (plan8 ? 0.5 : 0.5 * sp) : sp * bm / 300.0;
            double cost = waves * ((double)((nch + sp - 1) / sp) + 1.5) * per_chunk + red;
            if (cost < best_cost) {
                best_cost = cost;
                best = {wg, sp};
            }
        }
    }
    return best;
}

/* CTAs of pairs resident at once (clusters of two 1-CTA-per-SM blocks need
 * two free SMs of one GPC). */
static int pair_slots(void)
{
    static int slots;
    if (!slots) {
        using C = cfg<4>;
        cudaFuncSetAttribute(k_mmt<4, false, 2>, cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM);
        cudaLaunchConfig_t lc = {};
        lc.gridDim = dim3(2 * (unsigned)rl_cu_sm_count());
        lc.blockDim = dim3(C::THREADS);
        lc.dynamicSmemBytes = C::SMEM;
        cudaLaunchAttribute at;
        at.id = cudaLaunchAttributeClusterDimension;
        at.val.clusterDim.x = 2, at.val.clusterDim.y = 1, at.val.clusterDim.z = 1;
        lc.attrs = &at;
        lc.numAttrs = 1;
        int n = 0;
        slots = cudaOccupancyMaxActiveClusters(&n, (void *)k_mmt<4, false, 2>, &lc) == cudaSuccess && n > 0
                    ? 2 * n
                    : 2 * (rl_cu_sm_count() / 2);
        cudaGetLastError();
    }
    return slots;
}

template <int WG, bool GLU>
static int launch_wg(const rl_cu_mat &m, const rl_cu_act &x, int batch, int mode, rl_cu_act &y, int split,
                     cudaStream_t s)
{
    using C = cfg<WG>;
    constexpr int NO = GLU ? C::BM / 2 : C::BM;
    const int64_t nb = m.cols / 32, n_out = GLU ? m.rows / 2 : m.rows, tiles = (n_out + NO - 1) / NO;
    CUtensorMap tq, td, tx;
    const uint32_t bm = (uint32_t)(GLU ? C::BM / 2 : C::BM);
    if (probe >= 3) { /* the same bytes viewed chunk-major (measurement) */
        if (!map_3d(&tq, CU_TENSOR_MAP_DATA_TYPE_UINT8, m.q, QLD, (uint64_t)m.rows, (uint64_t)(nb / CB), QLD,
                    (uint64_t)m.rows * QLD, QLD, bm, true) ||
            !map_3d(&td, CU_TENSOR_MAP_DATA_TYPE_UINT16, m.d, CB, (uint64_t)m.rows, (uint64_t)(nb / CB), CB * 2,
                    (uint64_t)m.rows * CB * 2, CB, bm, false) ||
            !map_2d(&tx, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, x.h, (uint64_t)x.n, (uint64_t)batch, (uint64_t)x.n * 2, 64,
                    NB, true))
            return -ENOTSUP;
    } else if (!map_2d(&tq, CU_TENSOR_MAP_DATA_TYPE_UINT8, m.q, (uint64_t)nb * 16, (uint64_t)m.rows, (uint64_t)nb * 16,
                QLD, (uint32_t)(GLU ? C::BM / 2 : C::BM), true) ||
        !map_2d(&td, CU_TENSOR_MAP_DATA_TYPE_UINT16, m.d, (uint64_t)nb, (uint64_t)m.rows, (uint64_t)nb * 2, CB,
                (uint32_t)(GLU ? C::BM / 2 : C::BM), false) ||
        !map_2d(&tx, CU_TENSOR_MAP_DATA_TYPE_FLOAT16, x.h, (uint64_t)x.n, (uint64_t)batch, (uint64_t)x.n * 2, 64,
                NB, true))
        return -ENOTSUP;
    static bool attr;
    if (!attr) { /* idempotent */
        cudaFuncSetAttribute(k_mmt<WG, GLU, 1>, cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM);
        cudaFuncSetAttribute(k_mmt<WG, GLU, 2>, cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM);
        attr = true;
    }
    if (mc == 2)
        rl_launch_cluster(k_mmt<WG, GLU, 2>, (tiles + 1) / 2 * split, 2, dim3(C::THREADS), C::SMEM, s, tq, td, tx, m,
                          y, batch, mode, split, probe, false);
    else
        rl_launch_smem(k_mmt<WG, GLU, 1>, dim3((unsigned)(tiles * split)), dim3(C::THREADS), C::SMEM, s, tq, td, tx,
                       m, y, batch, mode, split, probe, shared_red(tiles, split));
    return 0;
}

template <bool GLU>
static int launch(const rl_cu_mat &m, const rl_cu_act &x, int batch, int mode, rl_cu_act &y, cudaStream_t s)
{
    plan p = plan_of(GLU ? m.rows / 2 : m.rows, GLU, m.cols / 32 / CB);
    if (p.wg == 2)
        return launch_wg<2, GLU>(m, x, batch, mode, y, p.split, s);
    if (p.wg == 3)
        return launch_wg<3, GLU>(m, x, batch, mode, y, p.split, s);
    return launch_wg<4, GLU>(m, x, batch, mode, y, p.split, s);
}

} /* namespace rl_mmt */

/* The kernel exists (rl_cu_mmw's device check) and the driver encodes tensor maps. */
static bool mmt_device(void)
{
    return rl_cu_mmw_available() && rl_tma::encoder() != NULL;
}

extern "C" int rl_cu_mmt_force(int wg)
{
    if (wg < -1 || wg == 1 || wg > 4)
        return -EINVAL;
    rl_mmt::read_env();
    rl_mmt::force_wg = wg;
    return 0;
}

extern "C" int rl_cu_mmt_plan(const rl_cu_mat *m, int mode, int *wg, int *split, int *shared)
{
    if (!m || m->type != RL_TYPE_Q4_0 || m->cols % (32 * rl_mmt::CB) || (mode == RL_CU_MV_GLU && m->rows % 2))
        return -EINVAL;
    rl_mmt::read_env();
    const bool glu = mode == RL_CU_MV_GLU;
    const int64_t n_out = glu ? m->rows / 2 : m->rows;
    rl_mmt::plan p = rl_mmt::plan_of(n_out, glu, m->cols / 32 / rl_mmt::CB);
    const int64_t no = glu ? 32 * p.wg : 64 * p.wg, tiles = (n_out + no - 1) / no;
    *wg = p.wg;
    *split = p.split;
    *shared = rl_mmt::shared_red(tiles, p.split);
    return 0;
}

extern "C" int rl_cu_mmt_dist(int on)
{
    if (on < 0 || on > 2)
        return -EINVAL;
    rl_mmt::read_env();
    rl_mmt::dist = on;
    return 0;
}

extern "C" int rl_cu_mmt_multicast(int ctas)
{
    if (ctas != 1 && ctas != 2)
        return -EINVAL;
    rl_mmt::read_env();
    rl_mmt::mc = ctas;
    return 0;
}

extern "C" int rl_cu_mmt(const rl_cu_mat *m, const rl_cu_act *x, int batch, int mode, rl_cu_act *y, cudaStream_t s)
{
    if (int rc = rl_mmh::check_args(m, x, batch, mode, y))
        return rc;
    rl_mmt::read_env();
    const int64_t nb = m->cols / 32;
    if (m->type != RL_TYPE_Q4_0 || rl_mmt::force_wg < 0 || nb % rl_mmt::CB || ((uintptr_t)m->q & 15) ||
        ((uintptr_t)m->d & 15) || m->rows >= (1ll << 31) || nb * 16 >= (1ll << 31) || !mmt_device())
        return -ENOTSUP;
    int rc = mode == RL_CU_MV_GLU ? rl_mmt::launch<true>(*m, *x, batch, mode, *y, s)
                                  : rl_mmt::launch<false>(*m, *x, batch, mode, *y, s);
    return rc ? rc : RL_CU_LAUNCHED("mmt");
}
