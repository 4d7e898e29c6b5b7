/* rl_cu_attn.cu - attention of single query tokens over the KV cache
 * (contiguous slots or the paged pool, fp16 or int8, one kernel body through
 * rl_cu_kv.cuh).
 * Grouped-query heads read their shared KV head.
 *
 * Split mode (n_split >= 1, flash-decoding): the positions of a query are cut
 * into fixed chunks of RL_CU_ATTN_CHUNK; the n_split blocks of a head take
 * chunks sp, sp + n_split, ... and each chunk's softmax partial (max, sum,
 * weighted V) is computed from scratch and stored on its own; the last block
 * of the head to arrive merges the partials in chunk order. A query's result
 * therefore depends only on its own data, never on n_split or on what else is
 * in the batch: batched and solo decoding give the same bits.
 * Unsplit mode (n_split == 0, prefill): one block per head runs an online
 * softmax over all positions and writes the result directly.
 * Two kernels: k_attn_warp (split mode, head sizes 64 and 128: the warps of a
 * block work on their own parts of a chunk) and k_attn (the block kernel: any
 * head size, both modes). */
#include <cooperative_groups.h>
#include <stdlib.h>
#include <string.h>

#include "rl_cu_attn_knobs.h"
#include "rl_cu_attn_tc.cuh"
#include "rl_cu_cluster.cuh"
#include "rl_cu_kv.cuh"

#define ATT_THREADS 128
#define ATT_TILE RL_CU_ATTN_CHUNK /* split mode: one chunk per tile */
#define ATT_UTILE 128             /* unsplit mode's tile */
#define ATT_MAX_HD 256

/* Blocks per head: about two waves over the SMs, at least RL_CU_ATTN_MIN_SPLIT
 * (environment, for measurements; default 1), at most 32. */
extern "C" int rl_cu_attn_splits(int batch, int n_head)
{
    static int min_split = -1, force = 0;
    if (min_split < 0) {
        const char *e = getenv("RL_CU_ATTN_MIN_SPLIT");
        min_split = e ? atoi(e) : 1;
        if (min_split < 1 || min_split > 32)
            min_split = 1;
        const char *f = getenv("RL_CU_ATTN_SPLITS"); /* measurements: this many, whatever the batch */
        force = f && atoi(f) >= 1 && atoi(f) <= 32 ? atoi(f) : 0;
    }
    if (force)
        return force;
    int want = (2 * rl_cu_sm_count() + batch * n_head - 1) / (batch * n_head);
    want = want < min_split ? min_split : want;
    return want > 32 ? 32 : want;
}

/* Scratch: a fixed area of arrival counters, one per (batch row, head), then
 * the chunk partials [row][head][chunk][head_dim + 2]. Fixed, so that calls
 * with different batch sizes sharing one scratch never read each other's
 * partials as counters. The counters must be zero before the first launch
 * (cudaMemset once); every launch leaves them zero again. */
#define ATT_MAX_COUNTERS 65536
#define COUNTERS_BYTES ((size_t)ATT_MAX_COUNTERS * sizeof(unsigned))

static int64_t n_chunks(int64_t n_ctx)
{
    return (n_ctx + ATT_TILE - 1) / ATT_TILE;
}

extern "C" size_t rl_cu_attn_scratch_size(int batch, int n_head, int head_dim, int64_t n_ctx)
{
    return COUNTERS_BYTES + (size_t)batch * n_head * n_chunks(n_ctx) * (head_dim + 2) * sizeof(float);
}

/* Per-block state of a softmax over some positions. */
struct att_state {
    float m, l, acc[8];
};

/* st.acc[0..7] += w * the 8 values of v. */
template <class KV> __device__ __forceinline__ void att_add_v(att_state &st, float w, const typename KV::v8 &v)
{
    float f[8];
    KV::f8(v, f);
#pragma unroll
    for (int k = 0; k < 8; k++)
        st.acc[k] += w * f[k];
}

/* Fold positions [t0, t1) (t1 - t0 <= ATT_UTILE) of query b, head h into st.
 * Thread (g, pg) accumulates dims 8g..8g+7 over positions pg, pg + P, ... */
template <int HDC, class KV>
__device__ __forceinline__ void att_tile(const KV &A, int b, int kvh, int64_t t0, int64_t t1, const float *sq,
                                         float *ss, float *red, int hd, att_state &st)
{
    const bool vec = hd % 8 == 0;
    const int G = vec ? hd / 8 : 1, P = ATT_THREADS / G;
    const int tid = threadIdx.x, g = tid % G, pg = tid / G;
    int nt = (int)(t1 - t0);
    /* Head size known (decode, one chunk per tile): this thread's V rows are
     * loaded now, with the K rows, instead of one memory round trip later. */
    constexpr int VP = HDC ? ATT_TILE / (ATT_THREADS / (HDC / 8)) : 1;
    typename KV::v8 vpre[VP];
    const bool pre = HDC != 0 && nt <= ATT_TILE; /* (the unsplit mode's longer tiles never come here) */
    if (pre) {
#pragma unroll
        for (int i = 0; i < VP; i++) {
            int j = pg + i * P;
            vpre[i] = j < nt ? KV::ld8(A.v(b, kvh, t0 + j), 8 * g) : KV::zero();
        }
    }
    if (vec && hd % 16 == 0) {
        /* Scores: two neighbouring threads per position, half the dims each,
         * combined with one shuffle (every thread busy for a 64-position chunk). */
        const int hh = hd / 2, half = tid & 1;
        for (int j0 = 0; j0 < nt; j0 += ATT_THREADS / 2) {
            int j = j0 + (tid >> 1);
            float dot = 0.0f;
            if (j < nt) {
                typename KV::row kr = A.k(b, kvh, t0 + j);
                const float *qh = sq + half * hh;
                if constexpr (KV::Q8) { /* whole 32-value groups: 16-byte loads, one scale each */
                    if (hh % 32 == 0) {
#pragma unroll(HDC ? 2 : 1)
                        for (int d = 0; d < hh; d += 32)
                            dot += KV::dot32(kr, half * hh + d, qh + d);
                    }
                }
#pragma unroll(HDC ? 8 : 4)
                for (int d = 0; d < hh && !(KV::Q8 && hh % 32 == 0); d += 8) {
                    float f[8];
                    KV::f8(KV::ld8(kr, half * hh + d), f);
#pragma unroll
                    for (int k = 0; k < 4; k++)
                        dot += qh[d + 2 * k] * f[2 * k] + qh[d + 2 * k + 1] * f[2 * k + 1];
                }
            }
            dot += __shfl_xor_sync(0xffffffffu, dot, 1);
            if (j < nt && !half)
                ss[j] = dot;
        }
    } else {
        /* Scores: one thread per position, independent 16-byte loads. */
        for (int j = tid; j < nt; j += ATT_THREADS) {
            typename KV::row kr = A.k(b, kvh, t0 + j);
            float dot = 0.0f;
            if (vec) {
#pragma unroll(HDC ? 16 : 4)
                for (int d = 0; d < hd; d += 8) {
                    float f[8];
                    KV::f8(KV::ld8(kr, d), f);
#pragma unroll
                    for (int k = 0; k < 4; k++)
                        dot += sq[d + 2 * k] * f[2 * k] + sq[d + 2 * k + 1] * f[2 * k + 1];
                }
            } else {
                for (int d = 0; d < hd; d++)
                    dot += sq[d] * KV::ld1(kr, d);
            }
            ss[j] = dot;
        }
    }
    __syncthreads();
    float tmax = -INFINITY;
    for (int j = tid; j < nt; j += ATT_THREADS)
        tmax = fmaxf(tmax, ss[j]);
    tmax = rl_block_max(tmax, red);
    float m_new = fmaxf(st.m, tmax);
    float corr = __expf(st.m - m_new); /* m = -inf on the first tile: 0 */
    float psum = 0.0f;
    for (int j = tid; j < nt; j += ATT_THREADS) {
        float e = __expf(ss[j] - m_new);
        ss[j] = e;
        psum += e;
    }
    psum = rl_block_sum(psum, red); /* its barriers also publish ss */
    st.l = st.l * corr + psum;
#pragma unroll
    for (int e = 0; e < 8; e++)
        st.acc[e] *= corr;
    if (pre) {
#pragma unroll
        for (int i = 0; i < VP; i++) {
            int j = pg + i * P;
            if (j >= nt)
                break;
            att_add_v<KV>(st, ss[j], vpre[i]);
        }
    } else if (vec) {
#pragma unroll 4
        for (int j = pg; pg < P && j < nt; j += P) { /* threads past G*P idle */
            att_add_v<KV>(st, ss[j], KV::ld8(A.v(b, kvh, t0 + j), 8 * g));
        }
    } else if (tid < hd) {
        for (int j = 0; j < nt; j++)
            st.acc[0] += ss[j] * KV::ld1(A.v(b, kvh, t0 + j), tid);
    }
    st.m = m_new;
    __syncthreads(); /* ss is rewritten by the next tile */
}

/* Sum the position groups of st.acc into dst[0..hd) (vred: scratch in shared memory). */
__device__ __forceinline__ void att_reduce(const att_state &st, float *vred, int hd, float *dst)
{
    const bool vec = hd % 8 == 0;
    const int G = vec ? hd / 8 : 1, P = ATT_THREADS / G;
    const int tid = threadIdx.x, g = tid % G, pg = tid / G;
    if (vec) {
        if (pg < P)
#pragma unroll
            for (int e = 0; e < 8; e++)
                vred[pg * hd + 8 * g + e] = st.acc[e];
    } else if (tid < hd) {
        vred[tid] = st.acc[0];
    }
    __syncthreads();
    for (int d = tid; d < hd; d += ATT_THREADS) {
        float v = 0.0f;
        if (vec)
            for (int k = 0; k < P; k++)
                v += vred[k * hd + d];
        else
            v = vred[d];
        dst[d] = v;
    }
    __syncthreads(); /* vred is reused */
}

/* Write value v of dim d (threads of the block cover 0..hd in rounds) to out,
 * quantizing whole warps inside the head. */
__device__ __forceinline__ void att_emit(const rl_cu_act &out, int b, int h, int hd, int d0, float v)
{
    int tid = threadIdx.x, d = d0 + tid;
    int64_t dim = (int64_t)gridDim.y * hd;
    if (d < hd)
        out.f[b * dim + h * hd + d] = v;
    if (out.q && hd % 32 == 0 && d0 + (tid & ~31) < hd) {
        int64_t blk = (h * hd + d) / 32;
        rl_quant_act(v, out, b * dim + blk * 32);
    }
}

/* Positions query b sees: 0 when its row or position is not valid, or (split
 * mode) when the scratch has fewer chunk slots (kmax) than it needs: refused
 * rather than overrun. */
template <class KV>
__device__ __forceinline__ int64_t att_len(const KV &A, const int32_t *pos, int b, bool split, int64_t kmax)
{
    int p = pos[b];
    int64_t len = A.ok(b, p) ? (int64_t)p + 1 : 0;
    return split && len > kmax * ATT_TILE ? 0 : len;
}

/* Query b, head h's chunk partials in the scratch: kmax slots of [hd] weighted
 * V, max, sum. */
__device__ __forceinline__ float *att_partials(float *scratch, int b, int h, int n_head, int hd, int64_t kmax)
{
    return scratch + ((int64_t)b * n_head + h) * kmax * (hd + 2);
}

/* One step of merging chunk partials in chunk order: (m, num, den) absorbs
 * the chunk's max mk, weighted V vk and sum lk (an empty chunk, mk = -inf,
 * changes nothing). Explicit roundings: the split merge and the in-block merge
 * of the unsplit grid (k_attn_warp with one block per head) give the same bits. */
__device__ __forceinline__ void att_merge_step(float &m, float &num, float &den, float mk, float vk, float lk)
{
    if (!(mk > -INFINITY))
        return;
    float mn = fmaxf(m, mk), a = __expf(m - mn), e = __expf(mk - mn); /* a = 0 on the first */
    num = __fmaf_rn(vk, e, __fmul_rn(num, a));
    den = __fmaf_rn(lk, e, __fmul_rn(den, a));
    m = mn;
}

/* After a block stored its chunk partials ([hd] weighted V, max, sum at
 * base + chunk * (hd + 2)): count in on the (row, head)'s counter; the last
 * of the head's n_split blocks to arrive merges every chunk in chunk order (the same sums
 * whoever computed them) and writes the result. */
__device__ __forceinline__ void att_count_in_and_merge(const rl_cu_act &out, int b, int h, int hd, int64_t nch,
                                                       const float *base, unsigned *cnt, int n_split, bool acqrel)
{
    __shared__ bool s_last;
    int tid = threadIdx.x;
    /* One release and one acquire per block, by thread 0 (the barrier orders
     * every thread's partials before it; the barrier after it, the partials
     * the last block reads after it). acqrel: one acquire-release atomic at
     * GPU scope instead of two sequentially consistent fences around a
     * relaxed one (attn_acqrel below). */
    __syncthreads();
    if (tid == 0) {
        if (acqrel) {
            unsigned old;
            asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;" : "=r"(old) : "l"(cnt) : "memory");
            s_last = old == (unsigned)n_split - 1;
        } else {
            __threadfence(); /* this block's partials visible device-wide before counting in */
            s_last = atomicAdd(cnt, 1u) == (unsigned)n_split - 1;
            __threadfence(); /* the other blocks' partials read after the count */
        }
    }
    __syncthreads();
    if (!s_last)
        return;
    /* One pass with a running maximum: every chunk's loads are independent of
     * the arithmetic, so they are in flight together. */
    for (int d0 = 0; d0 < hd; d0 += ATT_THREADS) {
        int d = d0 + tid;
        float m = -INFINITY, num = 0.0f, den = 0.0f;
#pragma unroll 8
        for (int64_t k = 0; k < nch; k++) { /* chunk order: the same sums whoever computed them */
            const float *pk = base + k * (hd + 2);
            float mk = __ldcg(pk + hd), lk = __ldcg(pk + hd + 1), vk = d < hd ? __ldcg(pk + d) : 0.0f;
            att_merge_step(m, num, den, mk, vk, lk);
        }
        att_emit(out, b, h, hd, d0, den > 0.0f ? num / den : 0.0f);
    }
    if (tid == 0)
        *cnt = 0; /* ready for the next launch (graph replays) */
}

/* Grid (max(n_split, 1), n_head, batch). kmax: chunk partial slots per (row, head). */
template <int HDC, class KV> /* head dim known at compile time (0: read from r); KV addressing */
__global__ void __launch_bounds__(ATT_THREADS)
k_attn(const float *q, KV A, const int32_t *pos, rl_cu_rope r, bool split, int64_t kmax, unsigned *counters,
       float *scratch, rl_cu_act out, bool acqrel)
{
    __shared__ float sq[ATT_MAX_HD];
    __shared__ float ss[ATT_UTILE > ATT_TILE ? ATT_UTILE : ATT_TILE];
    __shared__ float red[32];
    __shared__ float vred[ATT_THREADS * 8];
    __shared__ float part[ATT_MAX_HD];
    rl_pdl_trigger();
    rl_pdl_wait();
    int sp = blockIdx.x, h = blockIdx.y, b = blockIdx.z, n_split = gridDim.x;
    const int hd = HDC ? HDC : r.head_dim;
    int kvh = h / (r.n_head / r.n_head_kv);
    int tid = threadIdx.x;
    int64_t len = att_len(A, pos, b, split, kmax);
    float scale = rsqrtf((float)hd);
    for (int d = tid; d < hd; d += ATT_THREADS)
        sq[d] = q[((int64_t)b * r.n_head + h) * hd + d] * scale;
    __syncthreads();
    if (!split) { /* one block: online softmax over everything */
        att_state st = {-INFINITY, 0.0f, {0, 0, 0, 0, 0, 0, 0, 0}};
        for (int64_t t0 = 0; t0 < len; t0 += ATT_UTILE)
            att_tile<HDC>(A, b, kvh, t0, t0 + ATT_UTILE < len ? t0 + ATT_UTILE : len, sq, ss, red, hd, st);
        att_reduce(st, vred, hd, part);
        for (int d0 = 0; d0 < hd; d0 += ATT_THREADS) {
            int d = d0 + tid;
            float v = d < hd && st.l > 0.0f ? part[d] / st.l : 0.0f;
            att_emit(out, b, h, hd, d0, v);
        }
        return;
    }
    float *base = att_partials(scratch, b, h, r.n_head, hd, kmax);
    int64_t nch = (len + ATT_TILE - 1) / ATT_TILE;
    for (int64_t c = sp; c < nch; c += n_split) {
        att_state st = {-INFINITY, 0.0f, {0, 0, 0, 0, 0, 0, 0, 0}};
        int64_t t0 = c * ATT_TILE;
        att_tile<HDC>(A, b, kvh, t0, t0 + ATT_TILE < len ? t0 + ATT_TILE : len, sq, ss, red, hd, st);
        float *o = base + c * (hd + 2);
        att_reduce(st, vred, hd, o);
        if (tid == 0) {
            o[hd] = st.m;
            o[hd + 1] = st.l;
        }
    }
    att_count_in_and_merge(out, b, h, hd, nch, base, counters + (int64_t)b * r.n_head + h, (int)gridDim.x, acqrel);
}

/* What one lane of the warp kernel holds of a K or V row: 8 fp16 values
 * (one 16-byte load), or 16 int8 values and their group's scale (one 16-byte
 * load and one 2-byte load). f() gives the values before scale(). */
template <class KV, bool Q8 = KV::Q8> struct attw_lane {
    static constexpr int VL = 8;
    typedef uint4 t;
    __device__ static __forceinline__ t ld(typename KV::row r, int c) { return KV::ld8(r, c); }
    __device__ static __forceinline__ t zero() { return make_uint4(0, 0, 0, 0); }
    __device__ static __forceinline__ void f(const t &v, float (&o)[VL]) { KV::f8(v, o); }
    __device__ static __forceinline__ float scale(const t &) { return 1.0f; }
};
template <class KV> struct attw_lane<KV, true> {
    static constexpr int VL = 16;
    struct t {
        uint4 q;
        __half d; /* converted where used, so that no load waits for another */
    };
    __device__ static __forceinline__ t ld(typename KV::row r, int c)
    {
        t v;
        v.q = *(const uint4 *)(r.q + c);
        v.d = r.d[c / 32];
        return v;
    }
    __device__ static __forceinline__ t zero() { return t{make_uint4(0, 0, 0, 0), __ushort_as_half(0)}; }
    /* The quants as floats, unscaled: the caller applies scale() once per
     * score and once per weight of a V row. */
    __device__ static __forceinline__ void f(const t &v, float (&o)[VL])
    {
        const uint32_t w[4] = {v.q.x, v.q.y, v.q.z, v.q.w};
#pragma unroll
        for (int k = 0; k < 4; k++) {
            float x[4];
            rl_s8x4_f(w[k], x);
#pragma unroll
            for (int e = 0; e < 4; e++)
                o[4 * k + e] = x[e];
        }
    }
    __device__ static __forceinline__ float scale(const t &v) { return __half2float(v.d); }
};

/* Split-mode decode for head sizes 64 and 128: each chunk is cut between the
 * block's 4 warps (16 positions each), and a warp works alone on its part,
 * with no block barrier: lane (r, g) owns dims VL*g.. of the row (G = HD / VL
 * lanes per position; VL = 8 fp16 or 16 int8 values) at positions r, r + PP,
 * ... (PP = 32 / G), loads their K and V rows at once, reduces its scores
 * across the G lanes with shuffles and keeps a softmax of its own. One barrier
 * per chunk then merges the 4 warps in warp order, so the chunk's partial,
 * like the block kernel's, depends only on the chunk's data. With one block
 * per head (n_split 1: large batches) the block merges its chunks itself, in
 * registers, with the split merge's arithmetic (att_merge_step): no partials
 * stored and read back, no fence or counter, the same bits. */
#define ATTW_WARPS (ATT_THREADS / 32)

/* A warp's K and V rows of nt positions from t0 (one KV block), every load
 * issued before any is waited for; positions past nt load row nt - 1 again
 * (their scores are masked); nt <= 0: zeros. Only the rows lo .. hi - 1 of
 * those (the early loads: the rows before the token's own, then that row).
 * attw_rows_at: the same from the KV block's runs k0, v0 (A.runs) already
 * looked up. */
template <class KV, class L, int NI, int PP, int VL, bool PART = false>
__device__ __forceinline__ void attw_rows_at(const KV &A, typename KV::row k0, typename KV::row v0, int nt, int rs,
                                             int g, typename L::t (&kr)[NI], typename L::t (&vr)[NI], int lo = 0,
                                             int hi = ATT_TILE)
{
    if (nt > 0) { /* warp-uniform */
#pragma unroll
        for (int i = 0; i < NI; i++) {
            int j = min(rs + PP * i, nt - 1);
            if (!PART || (j >= lo && j < hi)) {
                kr[i] = L::ld(A.run_row(k0, j), VL * g);
                vr[i] = L::ld(A.run_row(v0, j), VL * g);
            }
        }
    } else if (!PART || lo == 0) {
#pragma unroll
        for (int i = 0; i < NI; i++)
            kr[i] = vr[i] = L::zero();
    }
}

template <class KV, class L, int NI, int PP, int VL, bool PART = false>
__device__ __forceinline__ void attw_rows(const KV &A, int b, int kvh, int64_t t0, int nt, int rs, int g,
                                          typename L::t (&kr)[NI], typename L::t (&vr)[NI], int lo = 0,
                                          int hi = ATT_TILE)
{
    typename KV::row k0{}, v0{};
    if (nt > 0) /* warp-uniform */
        A.runs(b, kvh, t0, k0, v0);
    attw_rows_at<KV, L, NI, PP, VL, PART>(A, k0, v0, nt, rs, g, kr, vr, lo, hi);
}

template <int HD, class KV, int MINB, bool TC = false> /* MINB: blocks per SM the registers must allow;
                                                          TC: a warp's chunk on tensor cores (int8, HD 128) */
__global__ void __launch_bounds__(ATT_THREADS, MINB)
k_attn_warp(const float *q, KV A, const int32_t *pos, rl_cu_rope r, int64_t kmax, unsigned *counters,
            float *scratch, rl_cu_act out, bool attw_direct, int dmax, bool bar2, int early, bool acqrel,
            bool pair)
{
    typedef attw_lane<KV> L;
    constexpr int VL = L::VL, G = HD / VL, PP = 32 / G, WP = ATT_TILE / ATTW_WARPS, NI = WP / PP;
    static_assert(HD % VL == 0 && 32 % G == 0 && WP % PP == 0 && HD <= ATT_THREADS, "head size");
    static_assert(RL_CU_KV_BLOCK % WP == 0, "a warp's positions of a chunk lie in one KV block");
    /* two sets, alternating by chunk: a chunk's merge reads one set while
     * the next chunk may already write the other, so one barrier a chunk */
    __shared__ float wm2[2][ATTW_WARPS], wl2[2][ATTW_WARPS];
    __shared__ __align__(16) float wacc2[2][ATTW_WARPS][HD];
    __shared__ float pm[HD + 2]; /* pair: the second block's chunk partial */
    static_assert(!TC || (HD == 128 && KV::Q8), "the tensor-core chunk: int8 rows of 128");
    RL_TL_BLOCK(RL_TL_ATTN);
    rl_pdl_trigger();
    int sp = blockIdx.x, h = blockIdx.y, b = blockIdx.z, n_split = gridDim.x;
    int kvh = h / (r.n_head / r.n_head_kv);
    int tid = threadIdx.x, w = tid >> 5, lane = tid & 31, g = lane % G, rs = lane / G;
    int64_t len = att_len(A, pos, b, true, kmax); /* positions, rows, block tables: the step's inputs */
    int64_t nch = (len + ATT_TILE - 1) / ATT_TILE;
    /* The blocks of the head that take part: a query of at most dmax chunks
     * (a short context) is block 0's alone, merged in the block (no partials,
     * counter or second pass: the same bits, see att_merge_step); otherwise
     * one block per chunk up to n_split. The others leave (below). */
    const int eff = attw_direct && nch <= dmax ? 1 : nch < n_split ? (nch > 0 ? (int)nch : 1) : n_split;
    if (sp >= eff) {
        /* Leaving only after the wait: blocks that left at once let the
         * next product's CTAs in while this kernel's loads were in flight
         * (7B Q4_0 from an empty context 618-623 against 630-633 tok/s). */
        rl_pdl_wait();
        RL_TL_WAITED();
        return;
    }
    /* pair (a launch in clusters of two blocks along x): a query of two
     * chunks is merged by its first block, the second block's partial
     * written into the first's shared memory (no partials in global
     * memory, no counter, the same bits as the counted merge: the same
     * steps in chunk order; a grid of two blocks a head with more chunks
     * keeps the counted merge). Both blocks of the cluster take this path or
     * neither (the same head, so the same chunks): each thread arrives on
     * the cluster barrier now and waits on it only before that write,
     * which may go to a block only once it has started; a second barrier
     * then orders the write before the first block reads it. */
    const bool pairm = !TC && pair && nch == 2 && eff == 2 && attw_direct; /* one chunk a block */
    if (pairm)
        asm volatile("barrier.cluster.arrive.relaxed;" ::: "memory");
    typename L::t kr[NI], vr[NI];
    /* early (one token in the launch): the only row this step writes is the
     * one at its position, len - 1 (the kernel before this one writes it), so
     * the rows of the first chunk before it are read before the PDL wait,
     * while the kernel before finishes, and that row after (safe: the
     * warp's rows before it). */
    constexpr bool EARLY_OK = !TC && MINB == 1; /* one token: few blocks, registers to spare */
    const bool pre = EARLY_OK && early && sp < nch, keep_runs = early == 2;
    int safe = 0;
    /* The first chunk's KV block, looked up before the wait too (the
     * block tables are the step's inputs): after it only the token's own
     * row is loaded, not a table entry first (RL_CU_ATTN_RUNS=0: looked up
     * again, as before session 25). */
    typename KV::row ek{}, ev{};
    if (pre) {
        int64_t t0 = sp * ATT_TILE + w * WP, before = len - 1 - t0;
        int nt = (int)(len - t0 < WP ? len - t0 : WP);
        safe = (int)(before < 0 ? 0 : before < nt ? before : nt);
        if (nt > 0)
            A.runs(b, kvh, t0, ek, ev);
        attw_rows_at<KV, L, NI, PP, VL, EARLY_OK>(A, ek, ev, nt, rs, g, kr, vr, 0, safe);
    }
    rl_pdl_wait();
    RL_TL_WAITED();
    float qv[TC ? 1 : VL];
    uint32_t bq[TC ? 8 : 1][2];
    float inv_q = 1.0f;
    if constexpr (TC) {
        attc::query(q + ((int64_t)b * r.n_head + h) * HD, rsqrtf((float)HD), lane, bq, inv_q);
    } else {
        const float4 *qp = (const float4 *)(q + ((int64_t)b * r.n_head + h) * HD + VL * g);
        const float scale = rsqrtf((float)HD);
#pragma unroll
        for (int k = 0; k < VL / 4; k++) {
            float4 a = qp[k];
            qv[4 * k] = a.x * scale, qv[4 * k + 1] = a.y * scale, qv[4 * k + 2] = a.z * scale, qv[4 * k + 3] = a.w * scale;
        }
    }
    float *base = att_partials(scratch, b, h, r.n_head, HD, kmax);
    const bool direct = eff == 1 && attw_direct;
    float rm = -INFINITY, rnum = 0.0f, rden = 0.0f; /* direct: the merge so far of dim tid */
    for (int64_t c = sp, it = 0; c < nch; c += eff, it++) {
        int64_t t0 = c * ATT_TILE + w * WP;
        int nt = (int)(len - t0 < WP ? len - t0 : WP); /* this warp's positions (may be <= 0) */
        float *wm = wm2[it & 1], *wl = wl2[it & 1];
        float(*wacc)[HD] = wacc2[it & 1];
        if constexpr (TC) {
            float m = -INFINITY, l = 0.0f;
            if (nt > 0) /* warp-uniform */
                attc::chunk(A, b, kvh, t0, nt, bq, inv_q, lane, wacc[w], m, l);
            if (lane == 0)
                wm[w] = m, wl[w] = l;
        } else {
            /* the warp's positions lie in one KV block */
            if (pre && it == 0 && keep_runs)
                attw_rows_at<KV, L, NI, PP, VL, EARLY_OK>(A, ek, ev, nt, rs, g, kr, vr, safe);
            else
                attw_rows<KV, L, NI, PP, VL, EARLY_OK>(A, b, kvh, t0, nt, rs, g, kr, vr, pre && it == 0 ? safe : 0);
            float sc[NI], m = -INFINITY;
#pragma unroll
            for (int i = 0; i < NI; i++) {
                float f[VL], dot = 0.0f;
                L::f(kr[i], f);
#pragma unroll
                for (int e = 0; e < VL; e++)
                    dot += qv[e] * f[e];
                dot *= L::scale(kr[i]);
#pragma unroll
                for (int o = G / 2; o >= 1; o >>= 1)
                    dot += __shfl_xor_sync(0xffffffffu, dot, o);
                sc[i] = rs + PP * i < nt ? dot : -INFINITY;
                m = fmaxf(m, sc[i]);
            }
#pragma unroll
            for (int o = G; o < 32; o <<= 1)
                m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
            if (it == 0)
                RL_TL_MARK(0, m); /* the first chunk's scores (q and K rows there) */
            float l = 0.0f, acc[VL];
#pragma unroll
            for (int k = 0; k < VL; k++)
                acc[k] = 0.0f;
            if (m != -INFINITY) {
#pragma unroll
                for (int i = 0; i < NI; i++) {
                    float e = __expf(sc[i] - m), f[VL]; /* 0 past the warp's positions */
                    L::f(vr[i], f);
                    l += e;
                    float ed = e * L::scale(vr[i]);
#pragma unroll
                    for (int k = 0; k < VL; k++)
                        acc[k] += ed * f[k];
                }
            }
#pragma unroll
            for (int o = G; o < 32; o <<= 1) {
                l += __shfl_xor_sync(0xffffffffu, l, o);
#pragma unroll
                for (int k = 0; k < VL; k++)
                    acc[k] += __shfl_xor_sync(0xffffffffu, acc[k], o);
            }
            if (it == 0)
                RL_TL_MARK(1, acc[0]); /* its values summed (V rows there) */
            if (rs == 0) {
#pragma unroll
                for (int k = 0; k < VL; k++)
                    wacc[w][VL * g + k] = acc[k];
                if (g == 0)
                    wm[w] = m, wl[w] = l;
            }
        }
        __syncthreads();
        float *o = base + c * (HD + 2);
        float M = -INFINITY;
#pragma unroll
        for (int v = 0; v < ATTW_WARPS; v++)
            M = fmaxf(M, wm[v]);
        if (tid < HD) {
            const int d = tid;
            float num = 0.0f, den = 0.0f;
#pragma unroll
            for (int v = 0; v < ATTW_WARPS; v++) { /* warp order: the same bits every time */
                if (wm[v] == -INFINITY)
                    continue;
                float e = __expf(wm[v] - M);
                num += wacc[v][d] * e;
                den += wl[v] * e;
            }
            if (direct || (pairm && sp == 0)) {
                att_merge_step(rm, rnum, rden, M, num, den);
            } else if (pairm) { /* the second block's one chunk, as it is (written below) */
                rm = M, rnum = num, rden = den;
            } else {
                o[d] = num;
                if (d == 0)
                    o[HD] = M, o[HD + 1] = den;
            }
            if (it == 0)
                RL_TL_MARK(2, num); /* the warps merged */
        }
        /* No barrier here: the next chunk writes the other set, and the one
         * after it writes this set only past the next chunk's barrier, which
         * every thread reaches after this merge. (bar2: the barrier anyway,
         * for measurements.) */
        if (bar2)
            __syncthreads();
    }
    RL_TL_MARK(3, rnum); /* every chunk of the block done */
    if (pairm) {
        asm volatile("barrier.cluster.wait;" ::: "memory"); /* both blocks have started */
        if (sp == 1 && tid < HD) {
            float *pr = cooperative_groups::this_cluster().map_shared_rank(pm, 0);
            pr[tid] = rnum;
            if (tid == 0)
                pr[HD] = rm, pr[HD + 1] = rden;
        }
        cooperative_groups::this_cluster().sync();
        if (sp == 0) {
            if (tid < HD)
                att_merge_step(rm, rnum, rden, pm[HD], pm[tid], pm[HD + 1]);
            att_emit(out, b, h, HD, 0, rden > 0.0f ? rnum / rden : 0.0f);
        }
        return;
    }
    if (direct)
        att_emit(out, b, h, HD, 0, rden > 0.0f ? rnum / rden : 0.0f);
    else
        att_count_in_and_merge(out, b, h, HD, nch, base, counters + (int64_t)b * r.n_head + h, eff, acqrel);
}

static bool attn_args_ok(int batch, int n_split, const rl_cu_rope *r, const rl_cu_act *out)
{
    return batch >= 1 && batch <= 65535 && n_split >= 0 && n_split <= 1024 && r->head_dim > 0 &&
           r->head_dim <= ATT_MAX_HD && r->n_head_kv > 0 && r->n_head % r->n_head_kv == 0 &&
           out->n == (int64_t)r->n_head * r->head_dim && (int64_t)batch * r->n_head <= ATT_MAX_COUNTERS &&
           !(r->head_dim % 8 && r->head_dim > ATT_THREADS);
}

template <class KV>
static bool attn_tc_launch(bool occ, dim3 grid, dim3 block, cudaStream_t s, const float *d_q, KV A,
                           const int32_t *d_pos, const rl_cu_rope *r, int64_t kmax, unsigned *counters,
                           float *partials, const rl_cu_act *out)
{
    if constexpr (KV::Q8) {
        if (r->head_dim != 128 || !attn_tc())
            return false;
        rl_launch(occ ? k_attn_warp<128, KV, 6, true> : k_attn_warp<128, KV, 1, true>, grid, block, s, d_q, A,
                  d_pos, *r, kmax, counters, partials, *out, attn_direct(), attn_dmax(), attn_bar2(), 0,
                  attn_acqrel(), false);
        return true;
    } else {
        (void)occ, (void)grid, (void)block, (void)s, (void)d_q, (void)A, (void)d_pos, (void)r, (void)kmax;
        (void)counters, (void)partials, (void)out;
        return false;
    }
}

/* k_attn_warp<<<grid, ATT_THREADS>>>(args...), the last of which says
 * whether the launch is in clusters of two blocks along x (grid.x then
 * rounded up to even), with programmatic stream serialization when enabled. */
template <typename... KArgs, typename... Args>
static void attw_launch(void (*k)(KArgs...), dim3 grid, bool pair, cudaStream_t s, Args... args)
{
    if (pair)
        rl_launch_cluster_grid(k, dim3((grid.x + 1) & ~1u, grid.y, grid.z), 2, dim3(ATT_THREADS), 0, s, args..., true);
    else
        rl_launch(k, grid, dim3(ATT_THREADS), s, args..., false);
}

template <class KV>
static int attn_launch(const float *d_q, KV A, const int32_t *d_pos, int batch, const rl_cu_rope *r, int n_split,
                       int64_t n_ctx, void *d_scratch, const rl_cu_act *out, cudaStream_t s)
{
    unsigned *counters = (unsigned *)d_scratch;
    float *partials = (float *)((char *)d_scratch + COUNTERS_BYTES);
    bool split = n_split > 0;
    int64_t kmax = n_chunks(n_ctx);
    dim3 grid(split ? n_split : 1, r->n_head, batch), block(ATT_THREADS);
    /* Specialised head sizes pay off for decode (few blocks, latency-bound);
     * prefill (unsplit, thousands of blocks) measured faster generic. */
    int kern = rl_cu_attn_kernel();
    /* The warp kernel: with more blocks than one wave holds at 4 per SM (large
     * batches), registers for 6 per SM; else every load of a chunk in flight
     * at once (about 120 registers), which the single stream needs. */
    bool occ = (int64_t)grid.x * grid.y * grid.z > 4 * (int64_t)rl_cu_sm_count();
    int early = batch == 1 ? attn_early() : 0; /* one token: see k_attn_warp */
    bool pair = early && !occ && attn_pair(); /* one token: two-chunk queries merged in a cluster */
    if (r->head_dim == 64 && split && kern != 1)
        attw_launch(occ ? k_attn_warp<64, KV, 6> : k_attn_warp<64, KV, 1>, grid, pair, s, d_q, A, d_pos, *r, kmax,
                    counters, partials, *out, attn_direct(), attn_dmax(), attn_bar2(), early, attn_acqrel());
    else if (r->head_dim == 128 && split && kern != 1 &&
             attn_tc_launch(occ, grid, block, s, d_q, A, d_pos, r, kmax, counters, partials, out))
        ; /* launched */
    else if (r->head_dim == 128 && split && kern != 1)
        attw_launch(occ ? k_attn_warp<128, KV, 6> : k_attn_warp<128, KV, 1>, grid, pair, s, d_q, A, d_pos, *r,
                    kmax, counters, partials, *out, attn_direct(), attn_dmax(), attn_bar2(), early, attn_acqrel());
    else if (r->head_dim == 64 && split)
        rl_launch(k_attn<64, KV>, grid, block, s, d_q, A, d_pos, *r, split, kmax, counters, partials, *out, attn_acqrel());
    else if (r->head_dim == 128 && split)
        rl_launch(k_attn<128, KV>, grid, block, s, d_q, A, d_pos, *r, split, kmax, counters, partials, *out, attn_acqrel());
    else
        rl_launch(k_attn<0, KV>, grid, block, s, d_q, A, d_pos, *r, split, kmax, counters, partials, *out, attn_acqrel());
    return RL_CU_LAUNCHED("attention");
}

extern "C" int rl_cu_attn_decode(const float *d_q, const void *d_kcache, const void *d_vcache,
                                 const int32_t *d_pos, const int32_t *d_slot, int batch, const rl_cu_rope *r,
                                 int64_t n_ctx, int n_split, void *d_scratch, const rl_cu_act *out,
                                 cudaStream_t s)
{
    if (!attn_args_ok(batch, n_split, r, out) || n_ctx < 1)
        return -EINVAL;
    rl_kv_slots A = rl_kv_slots_make((void *)d_kcache, (void *)d_vcache, d_slot, n_ctx, r->n_head_kv * r->head_dim,
                                     r->head_dim);
    return attn_launch(d_q, A, d_pos, batch, r, n_split, n_ctx, d_scratch, out, s);
}

extern "C" int rl_cu_attn_paged(const float *d_q, const int32_t *d_pos, const int32_t *d_row, int n_tok,
                                const rl_cu_rope *r, const rl_cu_kv *kv, uint32_t layer, int n_split,
                                void *d_scratch, const rl_cu_act *out, cudaStream_t s)
{
    if (!attn_args_ok(n_tok, n_split, r, out) || !rl_kv_paged_valid(kv, r, layer))
        return -EINVAL;
    int64_t n_ctx = (int64_t)kv->bt_stride * RL_CU_KV_BLOCK;
    if (kv->q8)
        return attn_launch(d_q, rl_kv_paged_make<rl_kv_q8>(kv, d_row, layer), d_pos, n_tok, r, n_split, n_ctx,
                           d_scratch, out, s);
    return attn_launch(d_q, rl_kv_paged_make<rl_kv_f16>(kv, d_row, layer), d_pos, n_tok, r, n_split, n_ctx,
                       d_scratch, out, s);
}

RL_TL_TU(attn)
