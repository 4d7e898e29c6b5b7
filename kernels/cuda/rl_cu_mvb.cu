/* rl_cu_mvb.cu - one-sequence Q4_0, Q8_0, Q4_K, Q5_K, Q6_K, F16 and BF16
 * products with the weights streamed by bulk copies (cp.async.bulk, sm_90) into a ring of
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
 *   quantized types) fp16 scales, fetched by one bulk copy per plane where
 *   a row is one chunk (the tile's rows are then one run of bytes), else a
 *   copy per row of values and a tensor-map box of the rows' scales
 *   (copy_flags; H200, sessions 27 and 29: fewer, longer copies stream
 *   faster there, while on the H100 in session 16 a copy per row was best).
 * - The activation is fp32 (the residual, the attention output or the GLU
 *   output): each CTA quantizes it to int8 blocks in shared memory after the
 *   PDL wait (F16/BF16 weights: keeps it fp32 there, as their matvec
 *   does), with the RMSNorm (weight g, epsilon) first when given, so no
 *   norm or quantization kernel runs between products (g loaded before the
 *   wait and x read once where the row is at most 8,192 wide: session 20).
 *   The int8 values are rl_cu_rmsnorm's and rl_cu_quantize's up to the order
 *   of the sum of squares.
 * - 16 consumer warps, two per output: warp w takes output w % 8 and, per
 *   stage, the units (a block; F16/BF16: 8 values) of its half w / 8
 *   (lane + 32 * (2k + half); GLU: of the gate and the up row) against the
 *   shared activation (the matvec's arithmetic, wdot; a lane's activation
 *   units held in registers across tiles where a row is one chunk of two
 *   units a lane, session 18), and releases the stage; at the tile's end warp sums,
 *   the halves meet in shared memory (a named barrier of the output's two
 *   warps, session 20), then y = v, y += v or y = silu(gate) * up. Outputs
 *   are fp32 (the next product quantizes its own input), or halves for a
 *   GLU product whose reader takes them (rl_cu_mvb_ex: the step's down
 *   product reads half the bytes after its wait, session 31). (8 warps, one
 *   per output, measured 3-4% slower.)
 * - The activation's int8 blocks lie in two planes of halves in shared
 *   memory (xload_s: conflict-free loads), and every kernel is held to 88
 *   registers (RL_MVB_MAXNREG: 92 cost the 7B step 5%, see k_mvb).
 *
 * Needs a type of the table below, columns a multiple of 256 (whole 16-byte
 * scale runs; whole K-quant blocks), output rows a multiple of 8, 16-byte
 * aligned planes, an sm_90 device; otherwise -ENOTSUP. The step takes it for
 * one sequence where the model is at least RL_CU_MVB_MIN_EMBD wide or holds
 * K-quants or F16/BF16 matrices (rl_cu_step_mvb.c). K-quant chunks are whole blocks with their
 * scales inside (no scale plane), a lane's unit 32 values decoded from its
 * block by the matvec's code (session 17: two sub-blocks per unit, their
 * shared bytes read once, measured 10% slower). */
#include <string.h>

#include <type_traits>

#include "rl_cu_kv.cuh"
#include "rl_cu_mvb.cuh"
#include "rl_cu_tma.cuh"

namespace rl_mvb {

using namespace rl_async;
using rl_tma::map_2d;

/* The RoPE + KV store fused into a plain product (rl_cu_mvb_rope_kv): the
 * outputs are rows row0.. of one token's [q | k | v]; q pairs rotated into
 * q, k pairs rotated and v pairs copied into the fp16 pool at the token's
 * position (pairs (2i, 2i + 1): a tile's 8 outputs hold 4 whole pairs).
 * Plain products take an empty rope_none in its place. */
struct rope_ep {
    rl_kv_paged<rl_kv_f16> A;
    rl_cu_rope r;
    const int32_t *pos;
    float *q;
    int64_t row0;
};
struct rope_none {
};
/* How the producer fills a stage, per plane (flags from the host, see
 * copy_flags): Q_RUN / D_RUN, the tile's rows are one run of bytes (a row
 * is at most one chunk) fetched by one bulk copy, the stage's rows then as
 * far apart as in the matrix; Q_BOX / D_BOX, a tensor-map box of the tile's
 * rows; neither, a bulk copy per row. */
enum { Q_RUN = 1, D_RUN = 2, Q_BOX = 4, D_BOX = 8 };
/* fp16 hand-offs (rl_cu_mvb_ex): HX_OUT, a GLU product writes its outputs as
 * halves; HX_IN, a product without a norm reads its input as halves. */
enum { HX_OUT = RL_CU_MVB_HOUT, HX_IN = RL_CU_MVB_HIN };

/* One plane's part of a stage, TR rows from `row` of chunk c: each row's
 * len bytes at c * span into its pitch-byte row of src, into dst span bytes
 * apart, as one run (rows exactly len bytes long: one chunk), one box of
 * map tm (as the run's layout), or a bulk copy a row. */
__device__ __forceinline__ void put_rows(uint8_t *dst, const uint8_t *src, int64_t pitch, int64_t row, int64_t c,
                                         int span, unsigned len, bool run, bool box, const CUtensorMap *tm,
                                         uint64_t *bar)
{
    if (run)
        bulk_copy(dst, src + row * pitch, TR * len, bar);
    else if (box)
        rl_tma::load_2d(dst, tm, (int)(c * (span / 8)), (int)row, bar);
    else
        for (int r = 0; r < TR; r++)
            bulk_copy(dst + r * span, src + (row + r) * pitch + c * span, len, bar);
}

template <bool ROPE> using rope_arg = typename std::conditional<ROPE, rope_ep, rope_none>::type;

/* The angle of the pair starting at output i (even) at position p: sin 0,
 * cos 1 where the pair is not rotated (v, or past n_rot), as k_rope_kv. */
__device__ __forceinline__ void rope_angle(const rope_ep &ep, int64_t i, int p, float &sn, float &cs)
{
    const int hd = ep.r.head_dim;
    int64_t g = ep.row0 + i;
    int d = (int)(g % hd);
    sn = 0.0f, cs = 1.0f;
    if (g < (int64_t)(ep.r.n_head + ep.r.n_head_kv) * hd && d < ep.r.n_rot)
        rl_rope_sincos(ep.r, d / 2, p, sn, cs);
}

/* The pair (a, c) of outputs i, i + 1, stored as k_rope_kv stores it; blk:
 * the token's KV block (< 0: no valid place, nothing written to the pool). */
__device__ __forceinline__ void rope_store(const rope_ep &ep, int64_t i, float a, float c, float sn, float cs,
                                           int64_t blk, int p)
{
    const int hd = ep.r.head_dim;
    const int64_t g = ep.row0 + i, qd = (int64_t)ep.r.n_head * hd, kd = (int64_t)ep.r.n_head_kv * hd;
    const bool v = g >= qd + kd;
    if (!v) {
        float v0, v1;
        rl_rope_rot(a, c, cs, sn, v0, v1);
        if (g < qd) {
            *(float2 *)(ep.q + g) = make_float2(v0, v1);
            return;
        }
        a = v0, c = v1;
    }
    if (blk < 0)
        return;
    __half *dst = ep.A.at(blk, v, (int)((g - qd - (v ? kd : 0)) / hd), p);
    *(__half2 *)(dst + g % hd) = __floats2half2_rn(a, c);
}

/* rl_cu_mvb_rope_kv's preparation, by warp CW + 1 (its own warp: a lane of
 * the producer's would hold up the copies, consumer warps the activation):
 * the position and the token's KV block into rmeta, the sine and cosine of
 * pair c % 4 of the CTA's tile c / 4 into rsc[2c], rsc[2c + 1] (c < RT * TR
 * / 2), then an arrival on rdone, which the consumers wait on before their
 * stores. The step's inputs only: no PDL wait. */
__device__ __forceinline__ void rope_prep(const rope_ep &ep, float *rsc, int64_t *rmeta, uint64_t *rdone)
{
    const int lane = threadIdx.x & 31, p = ep.pos[0];
    if (lane == 0) {
        int64_t blk = ep.A.ok(0, p) ? ep.A.block(0, p) : -1;
        rmeta[0] = blk < (int64_t)ep.A.n_blocks ? blk : -1;
        rmeta[1] = p;
    }
    for (int c = lane; c < RT * TR / 2; c += 32)
        rope_angle(ep, ((int64_t)blockIdx.x + (int64_t)(c / 4) * gridDim.x) * TR + 2 * (c % 4), p, rsc[2 * c],
                   rsc[2 * c + 1]);
    bar_arrive(rdone); /* release: rsc, rmeta */
}

/* ROPE: rl_cu_mvb_rope_kv (plain products: the kernel as without it); HX:
 * the fp16 hand-offs (HX_OUT, HX_IN), compiled apart.
 *
 * At most RL_MVB_MAXNREG registers a thread (88, no spills): with 92 (what
 * ptxas gives the plain Q4_0 product with the activation's planes) the 7B
 * Q4_0 step took 1,400-1,418 us against 1,331-1,337 with 86 before the
 * planes, and 1,333 held to 88 (session 31, an H200). Why is not known: one
 * CTA runs an SM either way, and by count the kernels after a product fit
 * beside it, or not, alike at 86 and 92. 80 spills and is slower. */
#ifndef RL_MVB_MAXNREG
#define RL_MVB_MAXNREG 88
#endif
template <int T, bool GLU, bool ROPE, int HX>
__global__ void __maxnreg__(RL_MVB_MAXNREG)
k_mvb(const __grid_constant__ CUtensorMap tq, const __grid_constant__ CUtensorMap td, const rl_cu_mat m,
      const float *x, const float *g, float eps, float *y, int mode, bool ar, bool greg, bool pair, int copy,
      const rope_arg<ROPE> ep)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    using C = cfg<T, GLU>;
    constexpr int CK = C::CK, QROW = C::QROW, DROW = C::DROW, RB = C::RB;
    const size_t xb = x_bytes(C::FX, m.cols);
    extern __shared__ __align__(128) uint8_t sm[];
    const int64_t cols = m.cols, nb = cols / 32, n_out = GLU ? m.rows / 2 : m.rows;
    const int64_t ntiles = n_out / TR, nch = (nb + CK - 1) / CK;
    int8_t *xq = (int8_t *)(sm + RB);
    float *xds = (float *)(sm + RB + cols), *xf = (float *)(sm + RB);
    uint64_t *full = (uint64_t *)(sm + RB + xb);
    uint64_t *empty = full + C::S;
    float *red = (float *)(empty + C::S);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    /* rope: RT tiles' outputs, their pairs' angles, the token's KV block and
     * position, the preparation's barrier (see rope_prep) */
    float *rbuf = red + 64, *rsc = rbuf + RT * TR;
    int64_t *rmeta = (int64_t *)(rsc + RT * TR);
    uint64_t *rdone = (uint64_t *)(rmeta + 2);
    RL_TL_BLOCK(RL_TL_MVB);
    ring_start<C::S>(full, empty, ROPE ? rdone : nullptr);
    if constexpr (ROPE) {
        if (warp == CW + 1) {
            rope_prep(ep, rsc, rmeta, rdone);
            return;
        }
    }

    const int64_t rowb = C::KQ ? m.ld : q_span<T>(nb); /* bytes of a row in the q plane */
    const int64_t rq = copy & Q_RUN ? rowb : QROW, rd = copy & D_RUN ? nb * C::DB : DROW; /* a stage's row pitches */
    if (warp == CW) { /* the producer: lane 0 fills the ring, weights only (no PDL wait) */
        if (lane != 0)
            return;
        const uint8_t *q = (const uint8_t *)m.q;
        const uint8_t *d = (const uint8_t *)m.d;
        int64_t i = 0;
        for (int64_t t = blockIdx.x; t < ntiles; t += gridDim.x)
            for (int64_t c = 0; c < nch; c++, i++) {
                int s = (int)(i % C::S);
                unsigned ph = (unsigned)(i / C::S) & 1;
                int64_t cu = nb - c * CK < CK ? nb - c * CK : CK;
                uint8_t *st = sm + (size_t)s * C::STG;
                bar_wait(&empty[s], ph ^ 1); /* the consumers freed it (the first round passes) */
                const unsigned qlen = (unsigned)q_span<T>(cu), dlen = (unsigned)(cu * C::DB);
                /* boxes count whole, zeros past a row's end too */
                bar_expect(&full[s], (unsigned)C::NRW * ((copy & Q_BOX ? QROW : qlen) + (copy & D_BOX ? DROW : dlen)));
                for (int p = 0; p < (GLU ? 2 : 1); p++) { /* the gate's rows, then the up's */
                    const int64_t row = (p ? n_out : 0) + t * TR;
                    uint8_t *sq = st + p * TR * rq, *sd = st + C::NRW * QROW + p * TR * rd;
                    put_rows(sq, q, rowb, row, c, QROW, qlen, copy & Q_RUN, copy & Q_BOX, &tq, &full[s]);
                    if (C::DB)
                        put_rows(sd, d, nb * C::DB, row, c, DROW, dlen, copy & D_RUN, copy & D_BOX,
                                 &td, &full[s]);
                }
            }
        return;
    }

    /* consumers: warp w, output o = w % TR of each tile, half h = w / TR */
    const int o = warp % TR, h = warp / TR;
    float4 g0[GPV]; /* the norm's weights do not depend on the previous kernel */
    const bool gr = g && greg && cols <= GR;
    if (gr)
        load_g(g, cols, g0);
    const int8_t *xq1 = xq + x_po(cols); /* the blocks' second halves */
    rl_pdl_wait();
    RL_TL_WAITED();
    if constexpr (!C::FX && (HX & HX_IN))
        prepare_xh((const __half *)x, cols, xq, xds);
    else if (gr)
        prepare_xg<C::FX>(x, g0, eps, cols, xq, xds, xf, red);
    else
        prepare_x<C::FX>(x, g, eps, cols, xq, xds, xf, red);
    RL_TL_MARK(0, 0.0f); /* the activation prepared (its last barrier) */
    const rl_cu_act xs = shared_act_f(xf, cols); /* F16/BF16 only */
    /* A lane's activation units are the same in every tile: where a row is
     * one chunk and a lane takes KPL = 2 units of it (Q4_0, Q4_K, Q5_K up to
     * 4,096 wide: Q|K|V, O and gate/up), they stay in registers instead of
     * being read from shared memory each stage (Q4_0 Q|K|V 10.7 against
     * 11.5 us; Q8_0 and Q6_K, one unit a chunk, measured no better or worse:
     * docs/PERFORMANCE.md). RL_CU_MVB_AR=0 (ar false): never. */
    constexpr int KPL = C::NU / 32 / H;
    constexpr bool ARC = !C::FX && KPL == 2;
    const bool areg = ARC && ar && nch == 1;
    xunit xa[ARC ? KPL : 1];
    if constexpr (ARC) {
#pragma unroll
        for (int a = 0; a < KPL; a++) {
            int64_t u = lane + 32 * (a * H + h);
            xa[a] = areg && u < nb ? xload_s(xq, xq1, xds, u) : xunit{};
        }
    }
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
                const int64_t u = c * C::NU + j;
                const wunit<T> w = sload<T>(st + o * rq, st + C::NRW * QROW + o * rd, j);
                xunit a{}; /* the int8 types: the activation unit, once for the gate and the up row */
                if constexpr (ARC)
                    a = areg ? xa[k] : xload_s(xq, xq1, xds, u);
                else if constexpr (!C::FX)
                    a = xload_s(xq, xq1, xds, u);
                auto dot = [&](const wunit<T> &wr) {
                    if constexpr (C::FX)
                        return wdot<T>(wr, xs, 0, u);
                    else
                        return wdot_x<T>(wr, a);
                };
                acc += dot(w);
                if (GLU)
                    accu += dot(sload<T>(st + (TR + o) * rq, st + C::NRW * QROW + (TR + o) * rd, j));
            }
            __syncwarp();
            if (lane == 0)
                bar_arrive(&empty[s]);
        }
        acc = rl_warp_sum(acc);
        if (GLU)
            accu = rl_warp_sum(accu);
        if (tl == 0)
            RL_TL_MARK(1, acc); /* the first tile's sums */
        /* the second half's sums through shared memory: two buffers by tile
         * parity, so one barrier per tile; pair: only the output's two warps
         * meet there (named barrier 2 + o), else all 16 consumers (pair_bar) */
        float *half = red + 16 + (tl & 1) * 16;
        if (h == 1 && lane == 0)
            half[o] = acc, half[TR + o] = accu;
        if (pair)
            asm volatile("bar.sync %0, 64;" ::"r"(2 + o) : "memory");
        else
            asm volatile("bar.sync 1, %0;" ::"n"(NT) : "memory");
        if constexpr (ROPE) { /* the tile's outputs wait in shared memory (at most RT tiles a CTA) */
            if (h == 0 && lane == 0)
                rbuf[tl * TR + o] = acc + half[o];
            continue;
        }
        if (h == 1 || lane != 0)
            continue;
        acc += half[o], accu += half[TR + o];
        int64_t r = t * TR + o;
        if (GLU && (HX & HX_OUT))
            ((__half *)y)[r] = to_half_sat(rl_silu(acc) * accu);
        else if (GLU)
            y[r] = rl_silu(acc) * accu;
        else
            y[r] = mode == RL_CU_MV_ADD ? y[r] + acc : acc;
    }
    if constexpr (ROPE) {
        /* after the CTA's last tile, one barrier of the consumers, then a
         * thread per pair rotates and stores (session 26: the flush inside
         * the tile loop, every RT tiles, and a store at each tile whose pair
         * met through a barrier of two warps both measured slower than the
         * RoPE kernel; session 26's measured forms prepared the angles in
         * consumer warps 0-3 before the PDL wait) */
        bar_wait(rdone, 0); /* acquire: rope_prep's angles and place */
        asm volatile("bar.sync 1, %0;" ::"n"(NT) : "memory");
        for (int c = threadIdx.x; c < tl * TR / 2; c += NT) {
            const int64_t i = ((int64_t)blockIdx.x + (int64_t)(c / 4) * gridDim.x) * TR + 2 * (c % 4);
            rope_store(ep, i, rbuf[2 * c], rbuf[2 * c + 1], rsc[2 * c], rsc[2 * c + 1], rmeta[0], (int)rmeta[1]);
        }
    }
#endif
}


/* Normed inputs up to GR wide through prepare_xg (default on;
 * RL_CU_MVB_GREG=0: prepare_x, the norm's weights read after the sum of
 * squares and x twice, for measurements). H100, session 20: 7B Q4_K_M
 * 467.0-468.3 against 440.3-440.4 tok/s, TinyLlama Q4_K_M 1,498-1,514
 * against 1,355-1,376, F16 214.2 against 212.4, 7B Q4_0 unchanged
 * (554.5-556.9 against 551.7-560.6): the K-quants' consumers, the slower
 * side, start sooner. */
static bool g_regs(void)
{
    static int on = -1;
    return rl_env_switch("RL_CU_MVB_GREG", true, &on);
}

/* A tile's halves meet at a barrier of their two warps (default on;
 * RL_CU_MVB_PAIR=0: all 16 consumers', for measurements). H100, session 20:
 * 7B Q6_K 392.6-393.2 against 382.9-383.5 tok/s, Q4_K_M 472-477 against
 * 464-475, Q4_0 560-565 against 558; TinyLlama Q4_K_M 1,526-1,534 against
 * 1,508. */
static bool pair_bar(void)
{
    static int on = -1;
    return rl_env_switch("RL_CU_MVB_PAIR", true, &on);
}

/* The producer's copies (RL_CU_MVB_COPY=mix, the default; run, tma, row
 * for measurements). Each bulk copy costs its issue (H100, session 16: ~0.8
 * us per 32-copy stage whatever its bytes), and on the H200 one long copy
 * streams faster than the same bytes in 2 KB pieces (session 27: the 7B
 * Q4_0 step 1,341 against 1,443 us with a tile's 4,096-wide rows as one
 * copy per plane), but a tensor-map box of 8 rows of 2 KB streams no faster
 * than 8 copies (session 29: Q4_0 unchanged, F16 8% slower), though it
 * gathers 8 short rows of scales (128-256 bytes each), and those copies were
 * the cost. So mix: one copy per plane and tile where a row is one chunk,
 * else a copy per row of values and a box of the scales (session 29, against
 * a copy per row: 7B Q4_0 758 against 673 tok/s, Q8_0 521 against 426); run:
 * the runs, else a copy per row; tma: boxes for both planes (not the
 * K-quants: Q4_K and Q5_K chunks, 2,304 and 2,816 bytes, pass a box's
 * 2,048); row: a copy per row and plane. The maps are encoded on the host at
 * each launch (a graph keeps them from its capture). */
enum { COPY_ROW, COPY_RUN, COPY_TMA, COPY_MIX };
static int copy_mode(void)
{
    static int mode = -1;
    if (mode < 0) {
        const char *e = getenv("RL_CU_MVB_COPY");
        mode = !e ? COPY_MIX : !strcmp(e, "row") ? COPY_ROW : !strcmp(e, "run") ? COPY_RUN
             : !strcmp(e, "tma") ? COPY_TMA : COPY_MIX;
    }
    return mode;
}

/* The copy flags of m's launch (Q_RUN ...) and the tensor maps they need:
 * 8-byte elements, boxes of one chunk (QROW, DROW bytes) by TR rows. A box
 * the layout does not allow (a chunk over 2,048 bytes, a pitch not a
 * multiple of 16) falls back to a copy per row. */
template <int T, bool GLU> static int copy_flags(const rl_cu_mat *m, CUtensorMap *tq, CUtensorMap *td)
{
    using C = cfg<T, GLU>;
    const int mode = copy_mode();
    const int64_t nb = m->cols / 32, rowb = C::KQ ? m->ld : q_span<T>(nb), db = nb * C::DB;
    const bool run = (mode == COPY_RUN || mode == COPY_MIX) && nb <= C::CK;
    int f = 0;
    if (run && rowb == q_span<T>(nb) && rowb % 16 == 0)
        f |= Q_RUN;
    else if (mode == COPY_TMA && C::QROW <= 2048 && rowb % 16 == 0 &&
             map_2d(tq, CU_TENSOR_MAP_DATA_TYPE_UINT64, m->q, (uint64_t)rowb / 8, (uint64_t)m->rows, (uint64_t)rowb,
                    C::QROW / 8, TR, false))
        f |= Q_BOX;
    if (!C::DB)
        return f;
    if (run)
        f |= D_RUN;
    else if ((mode == COPY_TMA || mode == COPY_MIX) && db % 16 == 0 &&
             map_2d(td, CU_TENSOR_MAP_DATA_TYPE_UINT64, m->d, (uint64_t)db / 8, (uint64_t)m->rows, (uint64_t)db,
                    C::DROW / 8, TR, false))
        f |= D_BOX;
    return f;
}

/* RL_CU_MVB_AR=0: every activation unit from shared memory (measurements). */
static bool act_regs(void)
{
    static int on = -1;
    return rl_env_switch("RL_CU_MVB_AR", true, &on);
}

template <int T, bool GLU, bool ROPE = false, int HX = 0>
static int launch(const rl_cu_mat *m, const float *x, const float *g, float eps, float *y, int mode,
                  const rope_ep *ep, cudaStream_t s)
{
    size_t smem = smem_bytes(cfg<T, GLU>::RB, cfg<T, GLU>::FX, m->cols, ROPE);
    static size_t set_for = 0;
    if (!smem_limit(k_mvb<T, GLU, ROPE, HX>, smem, &set_for))
        return -ENOTSUP;
    int64_t ntiles = (GLU ? m->rows / 2 : m->rows) / TR;
    unsigned grid = (unsigned)(ntiles < rl_cu_sm_count() ? ntiles : rl_cu_sm_count());
    rope_arg<ROPE> arg{};
    if constexpr (ROPE)
        arg = *ep;
    else
        (void)ep;
    CUtensorMap tq, td;
    memset(&tq, 0, sizeof tq), memset(&td, 0, sizeof td);
    const int copy = copy_flags<T, GLU>(m, &tq, &td);
    rl_launch_smem(k_mvb<T, GLU, ROPE, HX>, dim3(grid), dim3(THREADS + (ROPE ? 32 : 0)), smem, s, tq, td, *m, x, g,
                   eps, y, mode, act_regs(), g_regs(), pair_bar(), copy, arg);
    return RL_CU_LAUNCHED("mvb");
}

/* Table of the kernels by weight type and mode (plain, GLU, the fused RoPE
 * store; plain reading halves, GLU writing them: not for F16/BF16, whose
 * activation stays fp32). */
typedef int (*launch_fn)(const rl_cu_mat *, const float *, const float *, float, float *, int, const rope_ep *,
                         cudaStream_t);
struct launch_row {
    int type;
    launch_fn plain, glu, rope, plain_hin, glu_hout;
};
#define RL_MVB_ROW(t)                                                                                         \
    {t, launch<t, false>, launch<t, true>, launch<t, false, true>,                                            \
     float_w(t) ? nullptr : launch<t, false, false, HX_IN>, float_w(t) ? nullptr : launch<t, true, false, HX_OUT>}
static const launch_row launches[] = {
    RL_MVB_ROW(RL_TYPE_Q4_0), RL_MVB_ROW(RL_TYPE_Q8_0), RL_MVB_ROW(RL_TYPE_F16),  RL_MVB_ROW(RL_TYPE_BF16),
    RL_MVB_ROW(RL_TYPE_Q4_K), RL_MVB_ROW(RL_TYPE_Q5_K), RL_MVB_ROW(RL_TYPE_Q6_K),
};
#undef RL_MVB_ROW

static int launch_type(const rl_cu_mat *m, const float *x, const float *g, float eps, float *y, int mode, int hx,
                       const rope_ep *ep, cudaStream_t s)
{
    for (const launch_row &r : launches)
        if (r.type == m->type) {
            launch_fn f = ep                    ? r.rope
                        : mode == RL_CU_MV_GLU ? (hx & HX_OUT ? r.glu_hout : r.glu)
                                               : (hx & HX_IN ? r.plain_hin : r.plain);
            return f ? f(m, x, g, eps, y, mode, ep, s) : -EINVAL;
        }
    return -ENOTSUP;
}

} /* namespace rl_mvb */

RL_TL_TU(mvb)

extern "C" bool rl_cu_mvb_ok(const rl_cu_mat *m, int mode)
{
    int64_t n_out = mode == RL_CU_MV_GLU ? m->rows / 2 : m->rows;
    bool glu = mode == RL_CU_MV_GLU;
    return rl_mvb::known_w(m->type) && m->cols % 256 == 0 && m->cols > 0 && (!glu || m->rows % 2 == 0) &&
           n_out % rl_mvb::TR == 0 && n_out > 0 && (uintptr_t)m->q % 16 == 0 && (uintptr_t)m->d % 16 == 0 &&
           rl_mvb::sm90() && rl_cu_sm_count() > 0 &&
           rl_mvb::smem_bytes(rl_mvb::RMAX, rl_mvb::float_w(m->type), m->cols) <= 227 * 1024;
}

extern "C" int rl_cu_mvb_ex(const rl_cu_mat *m, const void *d_x, const float *d_g, float eps, int mode, void *d_y,
                            int hflags, cudaStream_t s)
{
    if (mode != RL_CU_MV_STORE && mode != RL_CU_MV_ADD && mode != RL_CU_MV_GLU)
        return -EINVAL;
    if ((hflags & ~(RL_CU_MVB_HOUT | RL_CU_MVB_HIN)) || ((hflags & RL_CU_MVB_HOUT) && mode != RL_CU_MV_GLU) ||
        ((hflags & RL_CU_MVB_HIN) && (d_g || rl_mvb::float_w(m->type))))
        return -EINVAL;
    if (!d_x || !d_y || (uintptr_t)d_x % 16 || (uintptr_t)d_g % 16 || !rl_cu_mvb_ok(m, mode))
        return -ENOTSUP; /* x and g are read as float4s */
    return rl_mvb::launch_type(m, (const float *)d_x, d_g, eps, (float *)d_y, mode, hflags, nullptr, s);
}

extern "C" int rl_cu_mvb(const rl_cu_mat *m, const float *d_x, const float *d_g, float eps, int mode, float *d_y,
                         cudaStream_t s)
{
    return rl_cu_mvb_ex(m, d_x, d_g, eps, mode, d_y, 0, s);
}

extern "C" bool rl_cu_mvb_rope_ok(const rl_cu_mat *m, const rl_cu_rope *r, const rl_cu_kv *kv)
{
    return rl_cu_mvb_ok(m, RL_CU_MV_STORE) && r && kv && !r->neox && !kv->q8 && rl_rope_valid(r) &&
           r->head_dim % rl_mvb::TR == 0 && r->n_head > 0 &&
           rl_mvb::smem_bytes(rl_mvb::RMAX, rl_mvb::float_w(m->type), m->cols, true) <= 227 * 1024 &&
           (m->rows / rl_mvb::TR + rl_cu_sm_count() - 1) / rl_cu_sm_count() <= rl_mvb::RT; /* tiles a CTA */
}

extern "C" int rl_cu_mvb_rope_kv(const rl_cu_mat *m, const float *d_x, const float *d_g, float eps,
                                 const rl_cu_mvb_rope *rp, cudaStream_t s)
{
    if (!rp || !rp->r || !rp->d_pos || !rp->d_row || !rp->d_q || (uintptr_t)rp->d_q % 8 || rp->row0 < 0 ||
        rp->row0 % rl_mvb::TR)
        return -EINVAL;
    const rl_cu_rope *r = rp->r;
    if (!d_x || (uintptr_t)d_x % 16 || (uintptr_t)d_g % 16 || !rl_cu_mvb_rope_ok(m, r, rp->kv) ||
        !rl_kv_paged_valid(rp->kv, r, rp->layer))
        return -ENOTSUP;
    if (rp->row0 + m->rows > (int64_t)(r->n_head + 2 * r->n_head_kv) * r->head_dim)
        return -EINVAL;
    rl_mvb::rope_ep ep{rl_kv_paged_make<rl_kv_f16>(rp->kv, rp->d_row, rp->layer), *r, rp->d_pos, rp->d_q, rp->row0};
    return rl_mvb::launch_type(m, d_x, d_g, eps, nullptr, RL_CU_MV_STORE, 0, &ep, s);
}
