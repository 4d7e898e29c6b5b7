/* rl_cu_attn_prefill.cu - causal attention of a run of prompt tokens of one
 * sequence (prefill), tiled flash attention.
 *
 * One block per (tile of PF_BQ queries, query head). The block walks the key
 * positions 0..last query position in tiles of PF_BK: K and V tiles are read
 * once per tile into shared memory (fp32), scores for the whole query tile
 * are computed from shared memory, and an online softmax (running max and
 * sum per query) rescales the output accumulators, which stay in registers.
 * Grouped-query heads read the K/V of their shared KV head (L2 serves the
 * repeats). fp32 arithmetic throughout (fp16 K/V).
 *
 * Thread (g = t / 16, k = t % 16) of 128: queries 4g..4g+3 of the tile; for
 * scores, keys k and k + 16 of the key tile; for the output, dims 4k..4k+3 of
 * every 64-dim slice. A query's 16 threads sit in one half-warp, so its row
 * max and sum are 4 xor-shuffles and its P row needs only __syncwarp.
 *
 * Head sizes 64 and 128 take a tensor-core variant (below; RL_CU_ATTN_TC=0
 * turns it off); this fp32 kernel serves the others.
 *
 * Two K/V layouts: the paged pool of rl_cu_kv (block tables; fp16 or int8
 * rows, read through rl_cu_kv.cuh's element policies), and the per-slot fp16
 * cache of rl_cu_rope_kv ([slot][n_ctx][n_head_kv * head_dim]). */
#include <stdlib.h>

#include "rl_cu_kv.cuh"

#define PF_THREADS 128
#define PF_BQ 32
#define PF_BK 32

/* Paged: position p of this sequence's block-table row, through the pool
 * addressing of rl_cu_kv.cuh (rows of E: rl_kv_f16 or rl_kv_q8). */
template <class E> struct kv_paged : E {
    typedef typename E::row row_t;
    rl_kv_paged<E> pool; /* the pool and layer (its per-token tables unused here) */
    const int32_t *bt;   /* this sequence's row */
    /* Row of head kvh at position p (which 0 = K, 1 = V); nil for a bad block id. */
    __device__ __forceinline__ row_t row(int p, int which, int kvh) const
    {
        int32_t b = bt[p / RL_CU_KV_BLOCK];
        if (b < 0 || (uint32_t)b >= pool.n_blocks)
            return row_t{};
        return E::ro(pool.at(b, which, kvh, p));
    }
};

/* Per-slot cache: K and V separate, [slot][n_ctx][n_head_kv][hd], fp16. */
struct kv_slot : rl_kv_f16 {
    typedef rl_kv_f16::row row_t;
    const __half *k, *v; /* this slot's first position */
    int n_head_kv, hd;
    __device__ __forceinline__ row_t row(int p, int which, int kvh) const
    {
        return (which ? v : k) + ((int64_t)p * n_head_kv + kvh) * hd;
    }
};

/* Smem floats for head dims up to HDP. */
template <int HDP> static constexpr int pf_smem_floats()
{
    return PF_BQ * (HDP + 4) + PF_BK * (HDP + 4) + PF_BK * HDP + PF_BQ * (PF_BK + 4);
}

/* Fill rows of a K or V tile: n_rows positions from p0 (those past p_last or
 * in a bad block: zeros, masked later), dims < hd (dims hd..HDP stay zero). */
template <int HDP, typename KV>
__device__ __forceinline__ void load_tile(const KV &kv, int which, int kvh, int p0, int p_last, int hd,
                                          float *dst, int stride, bool *bad)
{
    int tid = threadIdx.x;
    if (hd % 8 == 0) {
        int per_row = hd / 8;
        for (int i = tid; i < PF_BK * per_row; i += PF_THREADS) {
            int r = i / per_row, c = (i % per_row) * 8, p = p0 + r;
            typename KV::row_t src = p <= p_last ? kv.row(p, which, kvh) : typename KV::row_t{};
            float4 a = make_float4(0, 0, 0, 0), b = a;
            if (!KV::nil(src)) {
                float f[8];
                KV::f8(KV::ld8(src, c), f);
                a = make_float4(f[0], f[1], f[2], f[3]);
                b = make_float4(f[4], f[5], f[6], f[7]);
            }
            *(float4 *)(dst + r * stride + c) = a;
            *(float4 *)(dst + r * stride + c + 4) = b;
            if (bad && c == 0)
                bad[r] = KV::nil(src);
        }
    } else {
        for (int i = tid; i < PF_BK * hd; i += PF_THREADS) {
            int r = i / hd, c = i % hd, p = p0 + r;
            typename KV::row_t src = p <= p_last ? kv.row(p, which, kvh) : typename KV::row_t{};
            dst[r * stride + c] = KV::nil(src) ? 0.0f : KV::ld1(src, c);
            if (bad && c == 0)
                bad[r] = KV::nil(src);
        }
    }
}

template <int HDP, typename KV>
__global__ void __launch_bounds__(PF_THREADS)
k_attn_prefill(const float *__restrict__ q, int n_q, int pos0, rl_cu_rope r, KV kv, rl_cu_act out)
{
    extern __shared__ float4 pf_smem4[];
    float *sQ = (float *)pf_smem4;            /* [BQ][HDP + 4], scaled */
    float *sK = sQ + PF_BQ * (HDP + 4);       /* [BK][HDP + 4] */
    float *sV = sK + PF_BK * (HDP + 4);       /* [BK][HDP] */
    float *sP = sV + PF_BK * HDP;             /* [BQ][BK + 4] */
    __shared__ bool s_bad[PF_BK];
    const int QS = HDP + 4, PS = PF_BK + 4, NJ = HDP / 64 > 0 ? HDP / 64 : 1;
    rl_pdl_trigger();
    rl_pdl_wait();
    int tid = threadIdx.x, g = tid >> 4, kl = tid & 15;
    int tile = gridDim.y - 1 - blockIdx.y; /* heads vary fastest: the longest tiles of every head first */
    int h = blockIdx.x, hd = r.head_dim, kvh = h / (r.n_head / r.n_head_kv);
    int q0 = tile * PF_BQ;
    int64_t qdim = (int64_t)r.n_head * hd;
    float scale = rsqrtf((float)hd);
    /* Zero everything once (dims past hd must be 0, not NaN). */
    for (int i = tid; i < pf_smem_floats<HDP>(); i += PF_THREADS)
        sQ[i] = 0.0f;
    __syncthreads();
    for (int i = tid; i < PF_BQ * hd; i += PF_THREADS) {
        int qi = i / hd, c = i % hd;
        if (q0 + qi < n_q)
            sQ[qi * QS + c] = q[(int64_t)(q0 + qi) * qdim + (int64_t)h * hd + c] * scale;
    }
    int q_last = q0 + PF_BQ - 1 < n_q - 1 ? q0 + PF_BQ - 1 : n_q - 1;
    int p_last = pos0 + q_last; /* last key any query of the tile sees */
    float m[4], l[4], o[4][NJ][4];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        m[i] = -INFINITY;
        l[i] = 0.0f;
#pragma unroll
        for (int j = 0; j < NJ; j++)
#pragma unroll
            for (int e = 0; e < 4; e++)
                o[i][j][e] = 0.0f;
    }
    for (int p0 = 0; p0 <= p_last; p0 += PF_BK) {
        __syncthreads(); /* the previous tile's sK/sV reads are done */
        load_tile<HDP>(kv, 0, kvh, p0, p_last, hd, sK, QS, s_bad);
        load_tile<HDP>(kv, 1, kvh, p0, p_last, hd, sV, HDP, nullptr);
        __syncthreads();
        /* Scores S[4 queries][2 keys]. */
        float s[4][2];
#pragma unroll
        for (int i = 0; i < 4; i++)
            s[i][0] = s[i][1] = 0.0f;
#pragma unroll 4
        for (int d = 0; d < HDP; d += 4) {
            float4 k0 = *(const float4 *)(sK + kl * QS + d);
            float4 k1 = *(const float4 *)(sK + (kl + 16) * QS + d);
#pragma unroll
            for (int i = 0; i < 4; i++) {
                float4 qv = *(const float4 *)(sQ + (4 * g + i) * QS + d);
                s[i][0] += qv.x * k0.x + qv.y * k0.y + qv.z * k0.z + qv.w * k0.w;
                s[i][1] += qv.x * k1.x + qv.y * k1.y + qv.z * k1.z + qv.w * k1.w;
            }
        }
        /* Causal and bad-block mask, online softmax per query. */
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int qp = pos0 + q0 + 4 * g + i;
#pragma unroll
            for (int j = 0; j < 2; j++) {
                int kp = p0 + kl + 16 * j;
                if (kp > qp || s_bad[kl + 16 * j])
                    s[i][j] = -INFINITY;
            }
            float mx = fmaxf(s[i][0], s[i][1]);
#pragma unroll
            for (int off = 8; off > 0; off >>= 1)
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
            float m_new = fmaxf(m[i], mx);
            float m_use = m_new == -INFINITY ? 0.0f : m_new;
            float corr = __expf(m[i] - m_use); /* 0 while m is -inf */
            float e0 = __expf(s[i][0] - m_use), e1 = __expf(s[i][1] - m_use);
            float sum = e0 + e1;
#pragma unroll
            for (int off = 8; off > 0; off >>= 1)
                sum += __shfl_xor_sync(0xffffffffu, sum, off);
            l[i] = l[i] * corr + sum;
            m[i] = m_new;
#pragma unroll
            for (int j = 0; j < NJ; j++)
#pragma unroll
                for (int e = 0; e < 4; e++)
                    o[i][j][e] *= corr;
            sP[(4 * g + i) * PS + kl] = e0;
            sP[(4 * g + i) * PS + kl + 16] = e1;
        }
        __syncwarp(); /* a query's P row is written and read by its own half-warp */
        /* O[4 queries][dims] += P V. */
#pragma unroll 2
        for (int k = 0; k < PF_BK; k += 4) {
            float4 pv[4];
#pragma unroll
            for (int i = 0; i < 4; i++)
                pv[i] = *(const float4 *)(sP + (4 * g + i) * PS + k);
#pragma unroll
            for (int kk = 0; kk < 4; kk++) {
#pragma unroll
                for (int j = 0; j < NJ; j++) {
                    int d = 64 * j + 4 * kl;
                    if (HDP < 64 && d >= HDP)
                        continue;
                    float4 v = *(const float4 *)(sV + (k + kk) * HDP + d);
#pragma unroll
                    for (int i = 0; i < 4; i++) {
                        float w = kk == 0 ? pv[i].x : kk == 1 ? pv[i].y : kk == 2 ? pv[i].z : pv[i].w;
                        o[i][j][0] += w * v.x;
                        o[i][j][1] += w * v.y;
                        o[i][j][2] += w * v.z;
                        o[i][j][3] += w * v.w;
                    }
                }
            }
        }
    }
    /* Normalize and write. */
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int qi = q0 + 4 * g + i;
        if (qi >= n_q)
            continue;
        float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f;
        float *dst = out.f + (int64_t)qi * qdim + (int64_t)h * hd;
#pragma unroll
        for (int j = 0; j < NJ; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int d = 64 * j + 4 * kl + e;
                if (d < hd)
                    dst[d] = o[i][j][e] * inv;
            }
    }
    if (out.q && hd % 32 == 0) {
        __syncthreads(); /* the block's out.f writes are visible to the block */
        int lane = tid & 31, warp = tid >> 5, nblk = hd / 32;
        for (int t = warp; t < PF_BQ * nblk; t += PF_THREADS / 32) {
            int qi = q0 + t / nblk;
            if (qi >= n_q)
                break; /* warp-uniform; later t only larger */
            int64_t off = (int64_t)qi * qdim + (int64_t)h * hd + (t % nblk) * 32;
            rl_quant_act(out.f[off + lane], out, off);
        }
    }
}

/* ---- tensor-core variant (head_dim 64 or 128) -------------------------------
 * mma.sync m16n8k16 (fp16 inputs, fp32 accumulation). Block: 4 warps, 64
 * queries (16 per warp); key tiles of TC_BK positions in shared memory as fp16,
 * K as [key][dim] and V transposed [dim][key], each row padded by 8 halves so
 * that the 32-bit fragment loads hit 32 distinct banks. Scores stay in the
 * accumulator registers, whose layout is the A operand of the P V product (P
 * rounded to fp16; the row sums stay fp32). Q is scaled and rounded to fp16. */
#define TC_BQ 64
#define TC_BK 64

__device__ __forceinline__ void mma16816(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_h2(float a, float b)
{
    __half2 h = __floats2half2_rn(a, b);
    return *(uint32_t *)&h;
}

template <int HD> static constexpr int tc_smem_halves()
{
    return TC_BK * (HD + 8) + HD * (TC_BK + 8);
}

template <int HD, typename KV>
__global__ void __launch_bounds__(128)
k_attn_prefill_tc(const float *__restrict__ q, int n_q, int pos0, rl_cu_rope r, KV kv, rl_cu_act out)
{
    extern __shared__ float4 tc_smem4[];
    __half *sK = (__half *)tc_smem4;         /* [TC_BK][HD + 8] */
    __half *sVt = sK + TC_BK * (HD + 8);     /* [HD][TC_BK + 8] */
    __shared__ bool s_bad[TC_BK];
    const int KS = HD + 8, VS = TC_BK + 8, NKD = HD / 16, NT = TC_BK / 8, NO = HD / 8;
    rl_pdl_trigger();
    rl_pdl_wait();
    int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
    int tile = gridDim.y - 1 - blockIdx.y, h = blockIdx.x, kvh = h / (r.n_head / r.n_head_kv);
    int q0 = tile * TC_BQ, qw = q0 + warp * 16;
    int64_t qdim = (int64_t)r.n_head * HD;
    float scale = rsqrtf((float)HD);
    /* Q fragments (rows qw + g and qw + g + 8). */
    uint32_t qa[NKD][4];
    {
        const float *r0 = q + (int64_t)(qw + g) * qdim + (int64_t)h * HD;
        const float *r1 = r0 + 8 * qdim;
        bool v0 = qw + g < n_q, v1 = qw + g + 8 < n_q;
#pragma unroll
        for (int kk = 0; kk < NKD; kk++) {
            int c = 16 * kk + 2 * t;
            float2 a = v0 ? *(const float2 *)(r0 + c) : make_float2(0, 0);
            float2 b = v1 ? *(const float2 *)(r1 + c) : make_float2(0, 0);
            float2 a2 = v0 ? *(const float2 *)(r0 + c + 8) : make_float2(0, 0);
            float2 b2 = v1 ? *(const float2 *)(r1 + c + 8) : make_float2(0, 0);
            qa[kk][0] = pack_h2(a.x * scale, a.y * scale);
            qa[kk][1] = pack_h2(b.x * scale, b.y * scale);
            qa[kk][2] = pack_h2(a2.x * scale, a2.y * scale);
            qa[kk][3] = pack_h2(b2.x * scale, b2.y * scale);
        }
    }
    int q_last = q0 + TC_BQ - 1 < n_q - 1 ? q0 + TC_BQ - 1 : n_q - 1;
    int p_last = pos0 + q_last;
    int qp0 = pos0 + qw + g, qp1 = qp0 + 8;
    float o[NO][4], m0 = -INFINITY, m1 = -INFINITY, l0 = 0.0f, l1 = 0.0f;
#pragma unroll
    for (int j = 0; j < NO; j++)
        o[j][0] = o[j][1] = o[j][2] = o[j][3] = 0.0f;
    for (int p0 = 0; p0 <= p_last; p0 += TC_BK) {
        __syncthreads(); /* the previous tile's reads are done */
        for (int i = tid; i < TC_BK * (HD / 8); i += 128) {
            int kr = i % TC_BK, c = (i / TC_BK) * 8, p = p0 + kr;
            typename KV::row_t ks = p <= p_last ? kv.row(p, 0, kvh) : typename KV::row_t{};
            bool kok = !KV::nil(ks);
            uint4 kraw = make_uint4(0, 0, 0, 0), vraw = kraw;
            if (kok) {
                kraw = KV::h8(KV::ld8(ks, c));
                vraw = KV::h8(KV::ld8(kv.row(p, 1, kvh), c));
            }
            *(uint4 *)(sK + kr * KS + c) = kraw;
            const __half *vh = (const __half *)&vraw;
#pragma unroll
            for (int e = 0; e < 8; e++)
                sVt[(c + e) * VS + kr] = vh[e];
            if (c == 0)
                s_bad[kr] = !kok;
        }
        __syncthreads();
        if (p0 > pos0 + qw + 15 && p0 > 0)
            continue; /* every key of this tile is after all of this warp's queries */
        float sc[NT][4];
#pragma unroll
        for (int j = 0; j < NT; j++) {
            sc[j][0] = sc[j][1] = sc[j][2] = sc[j][3] = 0.0f;
            const __half *kb = sK + (8 * j + g) * KS + 2 * t;
#pragma unroll
            for (int kk = 0; kk < NKD; kk++)
                mma16816(sc[j], qa[kk], *(const uint32_t *)(kb + 16 * kk), *(const uint32_t *)(kb + 16 * kk + 8));
        }
        /* Mask, row max (rows g and g + 8: the 4 threads of a group share them). */
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int e = 0; e < 2; e++) {
                int kr = 8 * j + 2 * t + e, kp = p0 + kr;
                bool bad = s_bad[kr];
                if (kp > qp0 || bad)
                    sc[j][e] = -INFINITY;
                if (kp > qp1 || bad)
                    sc[j][2 + e] = -INFINITY;
                mx0 = fmaxf(mx0, sc[j][e]);
                mx1 = fmaxf(mx1, sc[j][2 + e]);
            }
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
        float mu0 = mn0 == -INFINITY ? 0.0f : mn0, mu1 = mn1 == -INFINITY ? 0.0f : mn1;
        float c0 = __expf(m0 - mu0), c1 = __expf(m1 - mu1);
        m0 = mn0;
        m1 = mn1;
        float s0 = 0.0f, s1 = 0.0f;
#pragma unroll
        for (int j = 0; j < NT; j++) {
            sc[j][0] = __expf(sc[j][0] - mu0);
            sc[j][1] = __expf(sc[j][1] - mu0);
            sc[j][2] = __expf(sc[j][2] - mu1);
            sc[j][3] = __expf(sc[j][3] - mu1);
            s0 += sc[j][0] + sc[j][1];
            s1 += sc[j][2] + sc[j][3];
        }
        s0 += __shfl_xor_sync(0xffffffffu, s0, 1);
        s0 += __shfl_xor_sync(0xffffffffu, s0, 2);
        s1 += __shfl_xor_sync(0xffffffffu, s1, 1);
        s1 += __shfl_xor_sync(0xffffffffu, s1, 2);
        l0 = l0 * c0 + s0;
        l1 = l1 * c1 + s1;
#pragma unroll
        for (int j = 0; j < NO; j++) {
            o[j][0] *= c0;
            o[j][1] *= c0;
            o[j][2] *= c1;
            o[j][3] *= c1;
        }
        /* O += P V: key step kk uses score tiles 2kk and 2kk + 1 as the A operand. */
#pragma unroll
        for (int kk = 0; kk < TC_BK / 16; kk++) {
            uint32_t pa[4] = {pack_h2(sc[2 * kk][0], sc[2 * kk][1]), pack_h2(sc[2 * kk][2], sc[2 * kk][3]),
                              pack_h2(sc[2 * kk + 1][0], sc[2 * kk + 1][1]),
                              pack_h2(sc[2 * kk + 1][2], sc[2 * kk + 1][3])};
#pragma unroll
            for (int j = 0; j < NO; j++) {
                const __half *vb = sVt + (8 * j + g) * VS + 16 * kk + 2 * t;
                mma16816(o[j], pa, *(const uint32_t *)vb, *(const uint32_t *)(vb + 8));
            }
        }
    }
    /* Normalize and write rows qw + g and qw + g + 8. */
    float i0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, i1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
    bool w0 = qw + g < n_q, w1 = qw + g + 8 < n_q;
    float *d0 = out.f + (int64_t)(qw + g) * qdim + (int64_t)h * HD, *d1 = d0 + 8 * qdim;
#pragma unroll
    for (int j = 0; j < NO; j++) {
        int c = 8 * j + 2 * t;
        if (w0)
            *(float2 *)(d0 + c) = make_float2(o[j][0] * i0, o[j][1] * i0);
        if (w1)
            *(float2 *)(d1 + c) = make_float2(o[j][2] * i1, o[j][3] * i1);
    }
    if (out.q) { /* HD % 32 == 0 */
        __syncthreads(); /* the block's out.f writes are visible to the block */
        const int nblk = HD / 32;
        for (int i = warp; i < TC_BQ * nblk; i += 4) {
            int qi = q0 + i / nblk;
            if (qi >= n_q)
                break; /* warp-uniform; later i only larger */
            int64_t off = (int64_t)qi * qdim + (int64_t)h * HD + (i % nblk) * 32;
            rl_quant_act(out.f[off + lane], out, off);
        }
    }
}

template <int HD, typename KV>
static int launch_tc(const float *d_q, int n_q, int pos0, const rl_cu_rope *r, const KV &kv, const rl_cu_act *out,
                     cudaStream_t s)
{
    size_t smem = (size_t)tc_smem_halves<HD>() * 2;
    static bool attr_set;
    if (!attr_set) {
        if (rl_cu_check(cudaFuncSetAttribute(k_attn_prefill_tc<HD, KV>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             (int)smem), "attn_prefill_tc smem"))
            return -EIO;
        attr_set = true;
    }
    rl_launch_smem(k_attn_prefill_tc<HD, KV>, dim3(r->n_head, (n_q + TC_BQ - 1) / TC_BQ), dim3(128), smem, s, d_q,
                   n_q, pos0, *r, kv, *out);
    return RL_CU_LAUNCHED("attn_prefill_tc");
}

/* RL_CU_ATTN_TC=0: the fp32 kernel for every head size. */
static bool tc_enabled()
{
    static int on = -1;
    return rl_env_switch("RL_CU_ATTN_TC", true, &on);
}

template <int HDP, typename KV>
static int launch_hdp(const float *d_q, int n_q, int pos0, const rl_cu_rope *r, const KV &kv, const rl_cu_act *out,
                      cudaStream_t s)
{
    size_t smem = (size_t)pf_smem_floats<HDP>() * sizeof(float);
    static bool attr_set; /* per instantiation */
    if (!attr_set) {
        if (rl_cu_check(cudaFuncSetAttribute(k_attn_prefill<HDP, KV>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                             (int)smem), "attn_prefill smem"))
            return -EIO;
        attr_set = true;
    }
    rl_launch_smem(k_attn_prefill<HDP, KV>, dim3(r->n_head, (n_q + PF_BQ - 1) / PF_BQ), dim3(PF_THREADS), smem, s,
                   d_q, n_q, pos0, *r, kv, *out);
    return RL_CU_LAUNCHED("attn_prefill");
}

template <typename KV>
static int launch(const float *d_q, int n_q, int pos0, const rl_cu_rope *r, const KV &kv, const rl_cu_act *out,
                  cudaStream_t s)
{
    int hd = r->head_dim;
    if (tc_enabled() && hd == 128)
        return launch_tc<128>(d_q, n_q, pos0, r, kv, out, s);
    if (tc_enabled() && hd == 64)
        return launch_tc<64>(d_q, n_q, pos0, r, kv, out, s);
    if (hd <= 64)
        return launch_hdp<64>(d_q, n_q, pos0, r, kv, out, s);
    if (hd <= 128)
        return launch_hdp<128>(d_q, n_q, pos0, r, kv, out, s);
    return launch_hdp<256>(d_q, n_q, pos0, r, kv, out, s);
}

static bool bad_args(const float *d_q, int n_q, int32_t pos0, const rl_cu_rope *r, const rl_cu_act *out)
{
    return !d_q || n_q < 1 || pos0 < 0 || (int64_t)pos0 + n_q > INT32_MAX || r->head_dim <= 0 ||
           r->head_dim > 256 || r->head_dim % 2 || r->n_head_kv <= 0 || r->n_head <= 0 || r->n_head % r->n_head_kv ||
           (n_q + PF_BQ - 1) / PF_BQ > 65535 || out->n != (int64_t)r->n_head * r->head_dim || !out->f;
}

template <class E> static kv_paged<E> paged_of(const rl_cu_kv *kv, uint32_t bt_row, uint32_t layer)
{
    kv_paged<E> p;
    p.pool = rl_kv_paged_make<E>(kv, nullptr, layer);
    p.bt = kv->bt + (int64_t)bt_row * kv->bt_stride;
    return p;
}

extern "C" int rl_cu_attn_prefill_paged(const float *d_q, int n_q, int32_t pos0, uint32_t bt_row,
                                        const rl_cu_rope *r, const rl_cu_kv *kv, uint32_t layer,
                                        const rl_cu_act *out, cudaStream_t s)
{
    if (bad_args(d_q, n_q, pos0, r, out) || !kv->pool || !kv->bt || layer >= kv->n_layer ||
        kv->head_dim != (uint32_t)r->head_dim || kv->n_head_kv != (uint32_t)r->n_head_kv ||
        ((int64_t)pos0 + n_q - 1) / RL_CU_KV_BLOCK >= (int64_t)kv->bt_stride)
        return -EINVAL;
    if (kv->q8) {
        if (r->head_dim % 32)
            return -EINVAL;
        return launch(d_q, n_q, pos0, r, paged_of<rl_kv_q8>(kv, bt_row, layer), out, s);
    }
    return launch(d_q, n_q, pos0, r, paged_of<rl_kv_f16>(kv, bt_row, layer), out, s);
}

extern "C" int rl_cu_attn_prefill(const float *d_q, int n_q, int32_t pos0, int32_t slot, const rl_cu_rope *r,
                                  const void *d_kcache, const void *d_vcache, int64_t n_ctx, const rl_cu_act *out,
                                  cudaStream_t s)
{
    if (bad_args(d_q, n_q, pos0, r, out) || slot < 0 || (int64_t)pos0 + n_q > n_ctx)
        return -EINVAL;
    kv_slot k;
    int64_t base = (int64_t)slot * n_ctx * r->n_head_kv * r->head_dim;
    k.k = (const __half *)d_kcache + base;
    k.v = (const __half *)d_vcache + base;
    k.n_head_kv = r->n_head_kv;
    k.hd = r->head_dim;
    return launch(d_q, n_q, pos0, r, k, out, s);
}
