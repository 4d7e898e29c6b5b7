/* rl_cu_mms.cuh - batched Q4_0/Q8_0 products for small batches (up to 32
 * rows: a short prompt, a few sequences decoding together) on fp16 tensor
 * cores, with the K split between the warps of one CTA.
 *
 * Why a second kernel beside rl_cu_mmh. rl_cu_mmh gives each warp its own
 * rows and all warps of a CTA the same K chunk (one CTA-wide cp.async
 * pipeline); with 128-256 rows per CTA a small matrix has too few CTAs, so
 * K is split between CTAs and reduced through global memory (store, fence,
 * atomic, reload, epilogue: a chain of dependent memory round trips). At 20
 * rows that chain dominated: TinyLlama's 2048 x 2048 product took 10.7 us
 * against 2.0 us for the batch-1 matvec reading the same 2.4 MB.
 *
 * Here a CTA owns R = 16 * MT weight rows (32 or 64; GLU: 32 gate rows and
 * the 32 matching up rows) and every one of its W warps takes its own contiguous
 * range of K chunks through a private S-stage cp.async pipeline (no CTA
 * barrier in the main loop, only __syncwarp). The warps' fp32 tiles are
 * summed in shared memory in warp order (deterministic) and the CTA runs the
 * shared epilogue (STORE / ADD / GLU with quantization) itself. No workspace,
 * no atomics, one kernel.
 *
 * The mma fragments, the K order inside an mma and the dequantization are
 * rl_cu_mmh's (rl_cu_mmh.cuh): a lane supplies whole quant blocks of its rows
 * and 16-byte runs of activations. Stage layout per warp: quant bytes (R rows
 * at WLD-byte steps), the fp16 scales (R x 4), and the batch's fp16
 * activations (rows of 4 blocks at 80-byte steps, row pitch 320 B). */
#ifndef RL_CU_MMS_CUH
#define RL_CU_MMS_CUH

#include "rl_cu_mmh.cuh"

#define MS_SMEM_CAP (220 * 1024)

namespace rl_mms {

using namespace rl_async;
using rl_mmh::qtraits;

template <int T, int NT, int MT> __host__ __device__ constexpr int stage_bytes()
{
    return 16 * MT * qtraits<T>::WLD + 16 * MT * MH_CB * 2 + 8 * NT * MH_XLD;
}

/* Stages per warp: 3 where WANT warps fit them, else 2 (the activations
 * take most of a stage: NB x 320 bytes against R x 72 of Q4_0 weights). */
template <int T, int NT, int MT, int WANT> __host__ __device__ constexpr int stages()
{
    return WANT * 3 * stage_bytes<T, NT, MT>() <= MS_SMEM_CAP ? 3 : 2;
}

/* Warps per CTA: WANT, fewer where the stages do not fit. */
template <int T, int NT, int MT, int WANT> __host__ __device__ constexpr int warps()
{
    constexpr int w = MS_SMEM_CAP / (stages<T, NT, MT, WANT>() * stage_bytes<T, NT, MT>());
    return w > WANT ? WANT : w < 1 ? 1 : w;
}

template <int T, int NT, int MT, int WANT, bool GLU> __host__ __device__ constexpr int smem_bytes()
{
    constexpr int W = warps<T, NT, MT, WANT>(), R = 16 * MT, NB = 8 * NT, LDC = NB + 4;
    constexpr int pipe = W * stages<T, NT, MT, WANT>() * stage_bytes<T, NT, MT>();
    constexpr int red = W * R * LDC * 4 + (GLU ? NB * (R / 2) * 4 : 0);
    return pipe > red ? pipe : red;
}

template <int T, int NT, int MT, int WANT, bool GLU>
__global__ void __launch_bounds__(32 * warps<T, NT, MT, WANT>(), 1)
k_mms(const rl_cu_mat m, const rl_cu_act x, rl_cu_act y, int batch, int mode)
{
    constexpr int W = warps<T, NT, MT, WANT>(), THREADS = 32 * W, R = 16 * MT, NB = 8 * NT;
    constexpr int S = stages<T, NT, MT, WANT>();
    constexpr int BB = qtraits<T>::BB, WLD = qtraits<T>::WLD;
    constexpr int NO = GLU ? R / 2 : R, LDC = NB + 4, STG = stage_bytes<T, NT, MT>();
    constexpr int D_OFF = R * WLD, X_OFF = D_OFF + R * MH_CB * 2;
    constexpr int WUPR = MH_CB * BB / 16;      /* 16-byte units of a row's chunk */
    constexpr int WPL = R * WUPR / 32;         /* weight units per lane */
    constexpr int XPL = NB * 16 / 32;          /* activation units per lane */
    static_assert(STG % 16 == 0 && D_OFF % 16 == 0 && X_OFF % 16 == 0, "smem alignment");
    static_assert((R * WUPR) % 32 == 0 && R <= 64 && (!GLU || MT % 2 == 0), "copy layout");

    extern __shared__ __align__(128) unsigned char smem[];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
    const rl_tile_plan tp = rl_tile_plan_of<GLU>(m, NO, MH_CB, blockIdx.x, warp, W);
    const int64_t n_out = tp.n_out, o0 = tp.o0, nb = tp.nb, c0 = tp.c0, c1 = tp.c1;

    auto wrow = [&](int r) { return rl_tile_row<GLU>(r, o0, NO, n_out); };
    const uint8_t *wq = (const uint8_t *)m.q;
    const uint16_t *wd = (const uint16_t *)m.d;
    const __half *xh = (const __half *)x.h;
    unsigned char *mine = smem + warp * S * STG; /* this warp's stages */

    uint32_t woff[WPL]; /* byte offsets of this lane's weight units in the quant plane */
#pragma unroll
    for (int i = 0; i < WPL; i++) {
        int u = lane + 32 * i;
        woff[i] = (uint32_t)(wrow(u / WUPR) * nb * BB) + (u % WUPR) * 16;
    }
    constexpr int DPL = (R + 31) / 32; /* rows whose scales this lane copies */
    uint32_t doff[DPL];
#pragma unroll
    for (int i = 0; i < DPL; i++)
        doff[i] = (uint32_t)(wrow(lane + 32 * i < R ? lane + 32 * i : 0) * nb);
    const int scm = rl_mmh::scale_copy(nb, wd);

    auto load_w = [&](int st, int64_t c) {
        unsigned char *base = mine + st * STG;
        const uint8_t *src = wq + c * MH_CB * BB;
#pragma unroll
        for (int i = 0; i < WPL; i++) {
            int u = lane + 32 * i, wu = u % WUPR;
            bool ok = c * MH_CB + wu * 16 / BB < nb;
            cp16(base + (u / WUPR) * WLD + wu * 16, ok ? src + woff[i] : wq, ok);
        }
#pragma unroll
        for (int i = 0; i < DPL; i++) { /* the row's four scales */
            int r = lane + 32 * i;
            if (r >= R)
                break;
            /* (plain loads visible after the __syncwarp) */
            rl_mmh::copy_scales(base + D_OFF + r * MH_CB * 2, wd + doff[i] + c * MH_CB, wd, c, nb, scm);
        }
    };
    auto load_x = [&](int st, int64_t c) { /* after rl_pdl_wait */
        unsigned char *base = mine + st * STG + X_OFF;
#pragma unroll
        for (int i = 0; i < XPL; i++) {
            int u = lane + 32 * i, b = u / 16, xu = u % 16;
            bool ok = b < batch && c * MH_CB + xu / 4 < nb;
            cp16(base + b * MH_XLD + (xu / 4) * MH_XBLK + (xu % 4) * 16,
                 ok ? xh + (int64_t)b * x.n + c * MH_CB * 32 + xu * 8 : xh, ok);
        }
    };

    float acc[MT][NT][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int i = 0; i < 4; i++)
                acc[mt][j][i] = 0.0f;

    rl_pdl_trigger();
#pragma unroll
    for (int s = 0; s < S - 1; s++) /* weights do not depend on the previous kernel */
        if (c0 + s < c1)
            load_w(s, c0 + s);
    rl_pdl_wait();
#pragma unroll
    for (int s = 0; s < S - 1; s++) {
        if (c0 + s < c1)
            load_x(s, c0 + s);
        cp_commit();
    }
    for (int64_t c = c0; c < c1; c++) {
        cp_wait<S - 2>();
        __syncwarp(); /* chunk c is in for every lane; all lanes are done with chunk c - 1 */
        if (c + S - 1 < c1) {
            int st = (int)((c + S - 1 - c0) % S);
            load_w(st, c + S - 1);
            load_x(st, c + S - 1);
        }
        cp_commit();
        const unsigned char *base = mine + (int)((c - c0) % S) * STG;
        rl_mmh::chunk_mma<T, MT, NT>(base, base + D_OFF, base + X_OFF, acc);
    }
    cp_wait<0>();
    __syncthreads(); /* every warp is done with its stages: the memory becomes the warps' tiles */

    float *P = (float *)smem; /* [W][R][LDC] */
    float *Pw = P + warp * R * LDC;
#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int j = 0; j < NT; j++) {
            int row = mt * 16 + g, col = 8 * j + 2 * t4;
            *(float2 *)(Pw + row * LDC + col) = make_float2(acc[mt][j][0], acc[mt][j][1]);
            *(float2 *)(Pw + (row + 8) * LDC + col) = make_float2(acc[mt][j][2], acc[mt][j][3]);
        }
    __syncthreads();
    for (int e = tid; e < R * NB; e += THREADS) { /* warp order: the same bits on every run */
        int i = (e / NB) * LDC + e % NB;
        float s = P[i];
#pragma unroll
        for (int w = 1; w < W; w++)
            s += P[w * R * LDC + i];
        P[i] = s;
    }
    __syncthreads();
    rl_cluster_epilogue<GLU, NO, LDC, THREADS>(P, P + W * R * LDC, o0, n_out, batch, 0, 1, mode, y);
}

/* 8 warps per CTA (fewer where the stages do not fit). Measured worse, H200,
 * TinyLlama's 20-row step: 4-warp CTAs (two resident per SM) where 8-warp
 * CTAs take two waves (GLU 19.5 us against 17.8), and 16-row CTAs for
 * narrow matrices (7B down product 35-53 us against 17-29). */
template <int T, int NT, int MT, bool GLU>
static void launch(const rl_cu_mat &m, const rl_cu_act &x, int batch, int mode, rl_cu_act &y, cudaStream_t s)
{
    auto k = k_mms<T, NT, MT, 8, GLU>;
    constexpr int smem = smem_bytes<T, NT, MT, 8, GLU>(), NO = GLU ? 8 * MT : 16 * MT;
    static bool attr; /* idempotent: a racing second call sets the same value */
    if (!attr) {
        cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        attr = true;
    }
    int64_t n_out = GLU ? m.rows / 2 : m.rows;
    rl_launch_smem(k, dim3((unsigned)((n_out + NO - 1) / NO)), dim3(32 * warps<T, NT, MT, 8>()), smem, s, m, x, y,
                   batch, mode);
}

/* Rows per CTA: GLU 64 (32 outputs: whole quantization blocks); otherwise
 * 64 where that still gives every SM a CTA, else 32. */
template <int T>
void launch_type(const rl_cu_mat &m, const rl_cu_act &x, int batch, int mode, rl_cu_act &y, cudaStream_t s)
{
    const bool wide = m.rows >= 64 * (int64_t)rl_cu_sm_count();
    rl_dispatch_nt<4>((batch + 7) / 8, [&](auto nt) {
        constexpr int NT = decltype(nt)::value;
        if (mode == RL_CU_MV_GLU)
            launch<T, NT, 4, true>(m, x, batch, mode, y, s);
        else if (wide)
            launch<T, NT, 4, false>(m, x, batch, mode, y, s);
        else
            launch<T, NT, 2, false>(m, x, batch, mode, y, s);
    });
}

} /* namespace rl_mms */

#define RL_CU_MMS_DECLARE(name) \
    void rl_cu_mms_##name(const rl_cu_mat &m, const rl_cu_act &x, int batch, int mode, rl_cu_act &y, cudaStream_t s)
#define RL_CU_MMS_DEFINE(T, name) \
    RL_CU_MMS_DECLARE(name) { rl_mms::launch_type<T>(m, x, batch, mode, y, s); }
RL_CU_MMS_DECLARE(q4_0);
RL_CU_MMS_DECLARE(q8_0);

#endif
