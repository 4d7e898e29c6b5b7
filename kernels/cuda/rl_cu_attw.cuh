/* rl_cu_attw.cuh - the split-mode warp kernel of one-token attention
 * (k_attn_warp) and the parts it shares with the block kernel: the chunk
 * partials, their counted merge, the output. See rl_cu_attn.cu. */
#ifndef RL_CU_ATTW_CUH
#define RL_CU_ATTW_CUH

#include "rl_cu_attn_tc.cuh"
#include "rl_cu_kv.cuh"
#include "rl_cu_mvb.cuh"

#define ATT_THREADS 128
#define ATT_TILE RL_CU_ATTN_CHUNK /* split mode: one chunk per tile */
#define ATT_UTILE 128             /* unsplit mode's tile */
#define ATT_MAX_HD 256

/* Scratch: a fixed area of arrival counters, one per (batch row, head), then
 * the chunk partials [row][head][chunk][head_dim + 2]. Fixed, so that calls
 * with different batch sizes sharing one scratch never read each other's
 * partials as counters. The counters must be zero before the first launch
 * (cudaMemset once); every launch leaves them zero again. */
#define ATT_MAX_COUNTERS 65536
#define COUNTERS_BYTES ((size_t)ATT_MAX_COUNTERS * sizeof(unsigned))

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
 * whoever computed them) and writes the result. Whether this block wrote it. */
__device__ __forceinline__ bool att_count_in_and_merge(const rl_cu_act &out, int b, int h, int hd, int64_t nch,
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
        return false;
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
    return true;
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

/* The O product fused into the one-token attention (rl_cu_attn_o_paged):
 * y += W_o out, by O blocks placed after the attention's blocks in the grid
 * (blockIdx.z >= 1). An O block takes ATTO_ROWS rows of W_o: it copies them
 * into shared memory (bulk copies, before the PDL wait: the weights do not
 * depend on anything), waits until every head's output is in `out` (cnt[0]
 * reaches n_head: each head's writer counts in with a release), then takes
 * the dot products with the int8 attention output from L2. Blocks start in
 * index order (the hardware's practice that single-pass scans rely on too),
 * so every attention block runs before any O block waits: an O block waits
 * only for blocks already running, which wait for nothing but the kernel
 * before. The last O block to finish (cnt[1]) zeroes both counters for the
 * next launch. Each output is one warp's sum in a fixed order: the same bits
 * every time. */
#define ATTO_ROWS 16

/* k_attn_warp's switches (rl_cu_attn.cu: environment, for measurements). */
struct attw_opts {
    bool direct;
    int dmax;
    bool bar2, early, acqrel;
    int kernel; /* 0 the warp kernel, 1 the block kernel, 2 int8 rows on tensor cores */
    bool tc;    /* RL_CU_ATTN_TC */
};
attw_opts rl_cu_attw_opts(void);
struct attw_o {
    rl_cu_mat m;   /* W_o (rows x n_head * head_dim) */
    float *y;      /* y += W_o out */
    unsigned *cnt; /* [0] heads written, [1] O blocks done; zero before a launch, zero after */
    int64_t n_o;   /* O blocks: rows / ATTO_ROWS */
    int when;      /* measurements (RL_CU_ATTO_WHEN): 0 copies at once, 1 after the PDL wait, 2 after the heads */
    int sleep;     /* ns between polls (RL_CU_ATTO_SLEEP) */
};

/* Bytes of an O block's shared memory: its rows' q plane, d plane (Q4_0,
 * Q8_0), the barrier. */
template <int T> __host__ __device__ constexpr int64_t atto_qrow(int64_t cols)
{
    return rl_mvb::q_span<T>(cols / 32);
}
template <int T> __host__ __device__ constexpr int64_t atto_drow(int64_t cols)
{
    return T == RL_TYPE_Q4_0 || T == RL_TYPE_Q8_0 ? cols / 32 * 2 : 0;
}
template <int T> __host__ __device__ constexpr size_t atto_smem(int64_t cols)
{
    return (size_t)(ATTO_ROWS * (atto_qrow<T>(cols) + atto_drow<T>(cols))) + 16;
}

template <int T> __device__ void atto_block(const attw_o &fo, const rl_cu_act &a, int n_head, int64_t ob)
{
    using namespace rl_async;
    extern __shared__ __align__(128) uint8_t osm[];
    const int64_t cols = fo.m.cols, nb = cols / 32, qrow = atto_qrow<T>(cols), drow = atto_drow<T>(cols);
    constexpr bool KQ = T == RL_TYPE_Q4_K || T == RL_TYPE_Q5_K || T == RL_TYPE_Q6_K;
    const int64_t rowb = KQ ? fo.m.ld : qrow, r0 = ob * ATTO_ROWS;
    uint8_t *sq = osm, *sd = osm + ATTO_ROWS * qrow;
    uint64_t *full = (uint64_t *)(sd + ATTO_ROWS * drow);
    const int tid = threadIdx.x, w = tid >> 5, lane = tid & 31;
    auto copies = [&]() {
        bar_expect(full, (unsigned)(ATTO_ROWS * (qrow + drow)));
        for (int r = 0; r < ATTO_ROWS; r++) {
            bulk_copy(sq + r * qrow, (const uint8_t *)fo.m.q + (r0 + r) * rowb, (unsigned)qrow, full);
            if (drow)
                bulk_copy(sd + r * drow, (const uint8_t *)fo.m.d + (r0 + r) * drow, (unsigned)drow, full);
        }
    };
    if (tid == 0) {
        bar_init(full, 1);
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        if (fo.when == 0)
            copies();
    }
    rl_pdl_wait();
    float y0[ATTO_ROWS / ATTW_WARPS];
    if (lane == 0)
        for (int i = 0; i < ATTO_ROWS / ATTW_WARPS; i++)
            y0[i] = fo.y[r0 + w * (ATTO_ROWS / ATTW_WARPS) + i];
    if (tid == 0) {
        if (fo.when == 1)
            copies();
        unsigned n;
        for (;;) {
            asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(n) : "l"(fo.cnt) : "memory");
            if (n >= (unsigned)n_head)
                break;
            if (fo.sleep)
                __nanosleep(fo.sleep);
        }
        if (fo.when == 2)
            copies();
    }
    __syncthreads(); /* the barrier's set-up too */
    bar_wait(full, 0);
    constexpr int RW = ATTO_ROWS / ATTW_WARPS; /* rows a warp */
    float acc[RW];
#pragma unroll
    for (int i = 0; i < RW; i++)
        acc[i] = 0.0f;
    for (int64_t u = lane; u < nb; u += 32) {
        xunit x; /* from L2: written by other blocks of this grid */
        const int4 *xq = (const int4 *)a.q + u * 2;
        x.q0 = __ldcg(xq);
        x.q1 = __ldcg(xq + 1);
        x.ds = __ldcg((const float2 *)a.ds + u);
#pragma unroll
        for (int i = 0; i < RW; i++) {
            const int r = w * RW + i;
            acc[i] += wdot_x<T>(rl_mvb::sload<T>(sq + r * qrow, sd + r * drow, (int)u), x);
        }
    }
#pragma unroll
    for (int i = 0; i < RW; i++) {
        float v = rl_warp_sum(acc[i]);
        if (lane == 0)
            fo.y[r0 + w * RW + i] = y0[i] + v;
    }
    if (tid == 0) {
        unsigned old;
        asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;" : "=r"(old) : "l"(fo.cnt + 1) : "memory");
        if (old == (unsigned)fo.n_o - 1)
            fo.cnt[0] = fo.cnt[1] = 0; /* every O block is past its wait */
    }
}

/* A warp's K and V rows of nt positions from t0 (one KV block), every load
 * issued before any is waited for; positions past nt load row nt - 1 again
 * (their scores are masked); nt <= 0: zeros. Only the rows lo .. hi - 1 of
 * those (the early loads: the rows before the token's own, then that row). */
template <class KV, class L, int NI, int PP, int VL, bool PART = false>
__device__ __forceinline__ void attw_rows(const KV &A, int b, int kvh, int64_t t0, int nt, int rs, int g,
                                          typename L::t (&kr)[NI], typename L::t (&vr)[NI], int lo = 0,
                                          int hi = ATT_TILE)
{
    if (nt > 0) { /* warp-uniform */
        typename KV::row k0, v0;
        A.runs(b, kvh, t0, k0, v0);
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

template <int HD, class KV, int MINB, bool TC = false, int OT = 0> /* MINB: blocks per SM the registers must
    allow; TC: a warp's chunk on tensor cores (int8, HD 128); OT: W_o's type for the fused O product (0: none) */
__global__ void __launch_bounds__(ATT_THREADS, MINB)
k_attn_warp(const float *q, KV A, const int32_t *pos, rl_cu_rope r, int64_t kmax, unsigned *counters,
            float *scratch, rl_cu_act out, bool attw_direct, int dmax, bool bar2, bool early, bool acqrel,
            attw_o fo)
{
    typedef attw_lane<KV> L;
    constexpr int VL = L::VL, G = HD / VL, PP = 32 / G, WP = ATT_TILE / ATTW_WARPS, NI = WP / PP;
    static_assert(HD % VL == 0 && 32 % G == 0 && WP % PP == 0 && HD <= ATT_THREADS, "head size");
    static_assert(RL_CU_KV_BLOCK % WP == 0, "a warp's positions of a chunk lie in one KV block");
    /* two sets, alternating by chunk: a chunk's merge reads one set while
     * the next chunk may already write the other, so one barrier a chunk */
    __shared__ float wm2[2][ATTW_WARPS], wl2[2][ATTW_WARPS];
    __shared__ __align__(16) float wacc2[2][ATTW_WARPS][HD];
    static_assert(!TC || (HD == 128 && KV::Q8), "the tensor-core chunk: int8 rows of 128");
    rl_pdl_trigger();
    if constexpr (OT != 0) {
        if (blockIdx.z > 0) { /* an O block (one query: batch row 0 only) */
            int64_t ob = ((int64_t)(blockIdx.z - 1) * gridDim.y + blockIdx.y) * gridDim.x + blockIdx.x;
            if (ob < fo.n_o)
                atto_block<OT>(fo, out, r.n_head, ob);
            return;
        }
    }
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
        return;
    }
    typename L::t kr[NI], vr[NI];
    /* early (one token in the launch): the only row this step writes is the
     * one at its position, len - 1 (the kernel before this one writes it), so
     * the rows of the first chunk before it are read before the PDL wait,
     * while the kernel before finishes, and that row after (safe: the
     * warp's rows before it). */
    constexpr bool EARLY_OK = !TC && MINB == 1; /* one token: few blocks, registers to spare */
    const bool pre = EARLY_OK && early && sp < nch;
    int safe = 0;
    if (pre) {
        int64_t t0 = sp * ATT_TILE + w * WP, before = len - 1 - t0;
        int nt = (int)(len - t0 < WP ? len - t0 : WP);
        safe = (int)(before < 0 ? 0 : before < nt ? before : nt);
        attw_rows<KV, L, NI, PP, VL, EARLY_OK>(A, b, kvh, t0, nt, rs, g, kr, vr, 0, safe);
    }
    rl_pdl_wait();
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
            if (direct) {
                att_merge_step(rm, rnum, rden, M, num, den);
            } else {
                o[d] = num;
                if (d == 0)
                    o[HD] = M, o[HD + 1] = den;
            }
        }
        /* No barrier here: the next chunk writes the other set, and the one
         * after it writes this set only past the next chunk's barrier, which
         * every thread reaches after this merge. (bar2: the barrier anyway,
         * for measurements.) */
        if (bar2)
            __syncthreads();
    }
    bool wrote = true;
    if (direct)
        att_emit(out, b, h, HD, 0, rden > 0.0f ? rnum / rden : 0.0f);
    else
        wrote = att_count_in_and_merge(out, b, h, HD, nch, base, counters + (int64_t)b * r.n_head + h, eff, acqrel);
    if (OT && wrote) { /* the head's output is in out: count it in for the O blocks */
        __syncthreads();
        if (tid == 0)
            asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(fo.cnt) : "memory");
    }
}


#endif
