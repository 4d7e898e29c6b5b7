/* rl_cu_mmw.cu - batched Q4_0 products for 33..64 rows on Hopper's
 * warpgroup tensor-core instruction (wgmma, sm_90a): the decode steps of a
 * large batch (64 sequences: rl_cu_mmh keeps the tensor pipe busy only ~23% of
 * the time, each warp feeding every mma through its own register chain).
 *
 * y[b][o] = sum_k W[o][k] x[b][k] as in rl_cu_mmh: W dequantized in registers
 * (scale applied, exact nibble - 8 times d in one rounding), x the fp16 copy
 * of the int8 activations. A CTA is 3 or 4 warpgroups, 64 weight rows each
 * (GLU: the gate rows, then their up rows), one CTA per SM. Each warpgroup
 * issues wgmma.m64n64k16 with A (its dequantized rows) from registers and B
 * (the 64 batch rows of activations) read by the tensor cores straight from
 * shared memory, so no warp loads B fragments. Per K chunk (4 quant blocks)
 * a warpgroup dequantizes a block, queues its two wgmmas, dequantizes the
 * next block while they run, and waits at the chunk's end (nothing may be in
 * flight across the loop edge: ptxas then serializes every wgmma).
 *
 * Measured (H100, docs/PERFORMANCE.md): the 7B step's products at 64 rows
 * 5.56 ms against rl_cu_mmh's 6.01; the tensor pipe is still idle most of the
 * time (23% active in the four-warpgroup version): the CTA-wide barrier per
 * chunk keeps the warpgroups in step, so they dequantize at the same time.
 *
 * A fragments: rl_cu_wgmma.cuh (shared with rl_cu_mmt).
 *
 * B in shared memory, K-major without swizzle: 8 x 8 core matrices (8 batch
 * rows x 16 bytes), core matrix (n / 8, k / 8) of a chunk at byte
 * ((n / 8) * 16 + k / 8) * 128: the K neighbour 128 bytes on (LBO), the next 8
 * batch rows 2048 bytes on (SBO).
 *
 * The pipeline (cp.async stages of 4 quant blocks), the K split through the
 * device-global workspace and the epilogue are rl_cu_mmh's (rl_mmh::finish).
 * Built for sm_90a only; elsewhere rl_cu_mmw returns -ENOTSUP. */
#include <stdlib.h>

#include "rl_cu_mmh.cuh"
#include "rl_cu_wgmma.cuh"

namespace rl_mmw {

using namespace rl_async;
using namespace rl_wgmma;

/* WG warpgroups of 64 rows per CTA (3 or 4; the host picks what fills the
 * SMs best): the activations (16 KB per chunk) are shared by BM rows of
 * weights (BM / 2 KB + scales), so big CTAs cut the activation traffic; the
 * warpgroups of an SM hide each other's dequantization behind their wgmmas.
 * One CTA per SM; as many stages (at most 8) as its shared memory holds. */
constexpr int NB = 64, WLD = 64; /* WLD: quant bytes per row per stage (4 blocks) */
template <int WG, int MT> struct cfg { /* MT: 64-row tiles per warpgroup (1 or 2) */
    static constexpr int BM = 64 * WG * MT, THREADS = 128 * WG;
    static constexpr int PER_SM = WG == 2 ? 2 : 1; /* two-warpgroup CTAs: two per SM, not in step */
    static constexpr int W_OFF = 0, D_OFF = BM * WLD, X_OFF = D_OFF + BM * MH_CB * 2;
    static constexpr int STG = X_OFF + NB * MH_CB * 32 * 2;
    static constexpr int S_FIT = ((227 * 1024) / PER_SM - 1024) / STG, S = S_FIT > 8 ? 8 : S_FIT;
    static constexpr int SMEM_PIPE = S * STG, SMEM_EPI = BM * (NB + 4) * 4 + NB * (BM / 2) * 4;
    static constexpr int SMEM = SMEM_PIPE > SMEM_EPI ? SMEM_PIPE : SMEM_EPI;
    static_assert(STG % 128 == 0 && X_OFF % 128 == 0 && S >= 3, "stage layout");
};

/* Shared-memory matrix descriptor of a B slice at p: address, LBO 128 (the
 * K neighbour), SBO 2048 (the next 8 batch rows), no swizzle. */
__device__ __forceinline__ uint64_t desc_of(const void *p)
{
    uint64_t a = (uint64_t)(sm_addr(p) & 0x3FFFF) >> 4;
    return a | ((uint64_t)(128 >> 4) << 16) | ((uint64_t)(2048 >> 4) << 32);
}

template <int WG, int MT, bool GLU>
__global__ void __launch_bounds__(cfg<WG, MT>::THREADS, cfg<WG, MT>::PER_SM)
k_mmw(const rl_cu_mat m, const rl_cu_act x, rl_cu_act y, int batch, int mode, int split)
{
#ifdef RL_WGMMA_DEVICE
    using C = cfg<WG, MT>;
    constexpr int BM = C::BM, THREADS = C::THREADS, W_OFF = C::W_OFF, D_OFF = C::D_OFF, X_OFF = C::X_OFF;
    constexpr int STG = C::STG, S = C::S;
    constexpr int NO = GLU ? BM / 2 : BM, LDC = NB + 4;
    extern __shared__ __align__(128) unsigned char smem[];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
    const int rank = (int)(blockIdx.x % (unsigned)split);
    const rl_tile_plan tp = rl_tile_plan_of<GLU>(m, NO, MH_CB, blockIdx.x / (unsigned)split, rank, split);
    const int64_t n_out = tp.n_out, o0 = tp.o0, nb = tp.nb, c0 = tp.c0, c1 = tp.c1;
    auto wrow = [&](int r) { return rl_tile_row<GLU>(r, o0, NO, n_out); };
    const uint8_t *wq = (const uint8_t *)m.q;
    const uint16_t *wd = (const uint16_t *)m.d;
    const __half *xh = (const __half *)x.h;

    /* Copies per stage: quant units (16 B) of rows tid / 4 + THREADS / 4 i,
     * the four scales of row tid (tid < BM); activations below. */
    const int wu = tid % 4;
    constexpr int WPT = 4 * BM / THREADS; /* quant units per thread per stage */
    uint32_t woff[WPT];
#pragma unroll
    for (int i = 0; i < WPT; i++)
        woff[i] = (uint32_t)(wrow(tid / 4 + THREADS / 4 * i) * nb * 16) + wu * 16;
    const uint32_t doff = tid < BM ? (uint32_t)(wrow(tid) * nb) : 0;
    static_assert(BM <= THREADS, "one scale row per thread");
    const int scm = rl_mmh::scale_copy(nb, wd);

    auto load_w = [&](int st, int64_t c) {
        unsigned char *base = smem + st * STG;
        const uint8_t *src = wq + c * MH_CB * 16;
        const bool ok = c * MH_CB + wu < nb;
#pragma unroll
        for (int i = 0; i < WPT; i++)
            cp16(base + W_OFF + (tid / 4 + THREADS / 4 * i) * WLD + wu * 16, ok ? src + woff[i] : wq, ok);
        if (tid < BM)
            rl_mmh::copy_scales(base + D_OFF + tid * MH_CB * 2, wd + doff + c * MH_CB, wd, c, nb, scm);
    };
    /* Activations: lane l of warp w, round i takes batch row n = 8 (j / 4) +
     * l % 8 and unit kc = 4 (j % 4) + l / 8 of the chunk (j = R w + i): each
     * 8-lane phase writes one whole 128-byte core matrix (no bank conflicts)
     * and a warp reads 64 contiguous bytes of 8 rows (whole sectors). */
    constexpr int NW = THREADS / 32, R = (32 + NW - 1) / NW;
    auto load_x = [&](int st, int64_t c) {
        unsigned char *base = smem + st * STG + X_OFF;
#pragma unroll
        for (int i = 0; i < R; i++) {
            const int j = R * warp + i, n = 8 * (j / 4) + (lane & 7), kc = 4 * (j % 4) + (lane >> 3);
            if (32 % NW != 0 && j >= 32)
                break;
            const bool ok = c * MH_CB + kc / 4 < nb && n < batch;
            const __half *src = xh + (int64_t)n * x.n + c * MH_CB * 32 + kc * 8;
            cp16(base + ((n / 8) * 16 + kc) * 128 + (n % 8) * 16, ok ? src : xh, ok);
        }
    };

    float acc[MT][32];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int i = 0; i < 32; i++)
            acc[mt][i] = 0.0f;

    rl_pdl_trigger();
#pragma unroll
    for (int s = 0; s < S - 1; s++)
        if (c0 + s < c1)
            load_w(s, c0 + s);
    rl_pdl_wait();
#pragma unroll
    for (int s = 0; s < S - 1; s++) {
        if (c0 + s < c1)
            load_x(s, c0 + s);
        cp_commit(); /* one group per chunk, empty past the end */
    }

    /* rows r0 + 64 mt and r0 + 64 mt + 8 of the CTA */
    const int wgi = warp / 4, r0 = wgi * 64 * MT + (warp % 4) * 16 + g;
    const uint32_t sel = (t4 & 1) ? 0x7632u : 0x5410u;
    const int w0 = t4 >> 1;
    /* Rows r and r + 8 of quant block blk of a stage as the A fragments of
     * its two slices (low nibbles, high nibbles). */
    auto deq_block = [&](const unsigned char *base, int r, int blk, uint32_t(&lo)[4], uint32_t(&hi)[4]) {
        uint4 q0 = *(const uint4 *)(base + W_OFF + r * WLD + blk * 16);
        uint4 q1 = *(const uint4 *)(base + W_OFF + (r + 8) * WLD + blk * 16);
        __half2 d0 = __half2half2(((const __half *)(base + D_OFF))[r * MH_CB + blk]);
        __half2 d1 = __half2half2(((const __half *)(base + D_OFF))[(r + 8) * MH_CB + blk]);
        a_frags(w0 ? q0.y : q0.x, w0 ? q0.w : q0.z, w0 ? q1.y : q1.x, w0 ? q1.w : q1.z, d0, d1, sel, lo, hi);
    };
    /* Per quant block: dequantize it (every row tile), queue its wgmmas, and
     * dequantize the next block while they run, into other A registers. One
     * row tile: a register set per slice of the chunk, one wait at the
     * chunk's end; two: two sets alternating per block, the older block
     * waited for before its set is rewritten. Nothing is in flight across
     * the loop edge (ptxas would serialize wgmmas whose A registers it cannot
     * follow there); the other warpgroups' work fills the waits. */
    constexpr int NA = MT == 1 ? 2 * MH_CB : 2 * 2 * MT;
    auto slot = [](int blk, int mt, int h) { return MT == 1 ? 2 * blk + h : (blk & 1) * 2 * MT + 2 * mt + h; };
    uint32_t a[NA][4];
    for (int64_t c = c0; c < c1; c++) {
        cp_wait<S - 2>();
        __syncthreads(); /* chunk c is in; every warp is done with chunk c - 1 */
        if (c + S - 1 < c1) {
            const int st = (int)((c + S - 1 - c0) % S); /* the stage of chunk c - 1 */
            load_w(st, c + S - 1);
            load_x(st, c + S - 1);
        }
        cp_commit();
        const unsigned char *base = smem + (int)((c - c0) % S) * STG;
        const uint64_t dsc = desc_of(base + X_OFF);
#pragma unroll
        for (int blk = 0; blk < MH_CB; blk++) {
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
                deq_block(base, r0 + 64 * mt, blk, a[slot(blk, mt, 0)], a[slot(blk, mt, 1)]);
            wg_fence();
#pragma unroll
            for (int mt = 0; mt < MT; mt++)
#pragma unroll
                for (int h = 0; h < 2; h++) /* slice 2 blk + h: 256 bytes per slice on */
                    wgmma_64x64(acc[mt], a[slot(blk, mt, h)], dsc + (uint64_t)((2 * blk + h) * 256 >> 4));
            wg_commit();
            if (MT > 1)
                wg_wait<1>(); /* block blk - 1 is done: its A set is free for blk + 1 */
        }
        wg_wait<0>();
    }
    cp_wait<0>();
    __syncthreads(); /* all stages consumed: the pipeline memory becomes the partial tile */
    float *Cs = (float *)smem;
    /* accumulators: n8 tile j: (row, col 8j + 2t, +1) in 4j, 4j + 1; row + 8 in 4j + 2, 4j + 3 */
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int j = 0; j < 8; j++) {
            int col = 8 * j + 2 * t4, r = r0 + 64 * mt;
            *(float2 *)(Cs + r * LDC + col) = make_float2(acc[mt][4 * j], acc[mt][4 * j + 1]);
            *(float2 *)(Cs + (r + 8) * LDC + col) = make_float2(acc[mt][4 * j + 2], acc[mt][4 * j + 3]);
        }
    __syncthreads();
    rl_mmh::finish<GLU, BM, NB, THREADS>(smem, o0, n_out, batch, split, rank, false, mode, y);
#else
    (void)m, (void)x, (void)y, (void)batch, (void)mode, (void)split;
#endif
}

/* The plan: warpgroups per CTA and K split with the least estimated time,
 * in chunk-rounds per SM: waves of CTAs times each CTA's chunks plus ~2 of
 * pipeline fill, a CTA's time growing by half its share of warpgroups (the
 * kernel is latency- more than throughput-bound), plus one chunk for the
 * reduction of a split (the workspace must hold the partials). */
struct plan {
    int wg, mt, split;
};

/* Forced CTA shape (0: automatic): RL_CU_MMW_WG=2|3|4 and RL_CU_MMW_MT=1|2 on
 * first use, or rl_cu_mmw_force (tests). */
static int force_wg = -1, force_mt = -1;

static void read_env(void)
{
    if (force_wg >= 0)
        return;
    const char *e = getenv("RL_CU_MMW_WG"), *f = getenv("RL_CU_MMW_MT");
    force_wg = e && atoi(e) >= 2 && atoi(e) <= 4 ? atoi(e) : 0;
    force_mt = f && atoi(f) >= 1 && atoi(f) <= 2 ? atoi(f) : 0;
}

static plan plan_of(int64_t rows_out, bool glu, int64_t nch)
{
    read_env();
    static const plan shapes[4] = {{2, 1, 0}, {3, 1, 0}, {4, 1, 0}, {3, 2, 0}};
    static const double per_chunk[4] = {0.75, 0.875, 1.0, 1.5}; /* a CTA's time per chunk, relative */
    plan best = {4, 1, 1};
    double best_cost = 1e300;
    for (int i = 0; i < 4; i++) {
        const int wg = shapes[i].wg, mt = shapes[i].mt;
        if (force_wg || force_mt) {
            if ((force_wg && wg != force_wg) || (force_mt && mt != force_mt))
                continue;
        } else if (wg == 2 || mt == 2) {
            continue; /* measured slower on every 7B matrix (docs/PERFORMANCE.md): tests and measurements only */
        }
        const int64_t slots = (wg == 2 ? 2 : 1) * (int64_t)rl_cu_sm_count();
        int64_t bm = 64 * wg * mt, no = glu ? bm / 2 : bm, tiles = (rows_out + no - 1) / no;
        for (int sp = 1; sp <= 8; sp++) {
            if (sp > 1 && (nch < 2 * sp || tiles * sp * bm * NB > rl_mmh::WS_FLOATS || tiles > rl_mmh::WS_TILES))
                break;
            double waves = (double)((tiles * sp + slots - 1) / slots);
            double cost = waves * (double)((nch + sp - 1) / sp + 2) * per_chunk[i] + (sp > 1 ? 1.0 : 0.0);
            if (cost < best_cost) {
                best_cost = cost;
                best = {wg, mt, sp};
            }
        }
    }
    return best;
}

template <int WG, int MT, bool GLU>
static void launch_wg(const rl_cu_mat &m, const rl_cu_act &x, int batch, int mode, rl_cu_act &y, int split,
                      cudaStream_t s)
{
    using C = cfg<WG, MT>;
    static bool attr;
    if (!attr) { /* idempotent */
        cudaFuncSetAttribute(k_mmw<WG, MT, GLU>, cudaFuncAttributeMaxDynamicSharedMemorySize, C::SMEM);
        attr = true;
    }
    constexpr int NO = GLU ? C::BM / 2 : C::BM;
    int64_t n_out = GLU ? m.rows / 2 : m.rows, tiles = (n_out + NO - 1) / NO;
    rl_launch_smem(k_mmw<WG, MT, GLU>, dim3((unsigned)(tiles * split)), dim3(C::THREADS), C::SMEM, s, m, x, y, batch,
                   mode, split);
}

template <bool GLU> static void launch(const rl_cu_mat &m, const rl_cu_act &x, int batch, int mode, rl_cu_act &y,
                                       cudaStream_t s)
{
    plan p = plan_of(GLU ? m.rows / 2 : m.rows, GLU, (m.cols / 32 + MH_CB - 1) / MH_CB);
    if (p.wg == 2)
        launch_wg<2, 1, GLU>(m, x, batch, mode, y, p.split, s);
    else if (p.wg == 3 && p.mt == 2)
        launch_wg<3, 2, GLU>(m, x, batch, mode, y, p.split, s);
    else if (p.wg == 3)
        launch_wg<3, 1, GLU>(m, x, batch, mode, y, p.split, s);
    else
        launch_wg<4, 1, GLU>(m, x, batch, mode, y, p.split, s);
}

} /* namespace rl_mmw */

/* The kernel exists (sm_90a code for this device): compute capability 9.0. */
static bool mmw_device(void)
{
    static int ok = -1;
    if (ok < 0) {
        int dev = 0, major = 0, minor = 0;
        ok = cudaGetDevice(&dev) == cudaSuccess &&
             cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess &&
             cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) == cudaSuccess && major == 9 &&
             minor == 0;
        cudaGetLastError();
    }
    return ok;
}

extern "C" bool rl_cu_mmw_available(void)
{
    return mmw_device();
}

extern "C" int rl_cu_mmw_force(int wg, int mt)
{
    if (wg < 0 || wg == 1 || wg > 4 || mt < 0 || mt > 2 || (wg == 4 && mt == 2) || (wg == 2 && mt == 2))
        return -EINVAL;
    rl_mmw::read_env();
    rl_mmw::force_wg = wg, rl_mmw::force_mt = mt;
    return 0;
}

extern "C" int rl_cu_mmw(const rl_cu_mat *m, const rl_cu_act *x, int batch, int mode, rl_cu_act *y, cudaStream_t s)
{
    if (int rc = rl_mmh::check_args(m, x, batch, mode, y))
        return rc;
    if (m->type != RL_TYPE_Q4_0 || !mmw_device())
        return -ENOTSUP;
    int rc = rl_cu_mmt(m, x, batch, mode, y, s); /* the TMA pipeline, where its layouts allow */
    if (rc != -ENOTSUP)
        return rc;
    if (mode == RL_CU_MV_GLU)
        rl_mmw::launch<true>(*m, *x, batch, mode, *y, s);
    else
        rl_mmw::launch<false>(*m, *x, batch, mode, *y, s);
    return RL_CU_LAUNCHED("mmw");
}
