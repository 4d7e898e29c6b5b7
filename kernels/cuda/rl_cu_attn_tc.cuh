/* rl_cu_attn_tc.cuh - one warp's part of a decode-attention chunk over the
 * int8 KV cache on tensor cores (head size 128), for k_attn_warp
 * (rl_cu_attn.cu). The warp's 16 positions are one KV block.
 *
 * On the CUDA cores each int8 value costs a byte permute, a subtraction and
 * an FMA, and the V pass a shuffle tree per chunk. Here the values become
 * fp16 (exact: |q| <= 127) two at a time and the products run as
 * mma.sync.m16n8k16 with fp32 accumulation: 20.6 M instructions instead of
 * 24.6 M for the 7B batch-64 layer, but no faster (44.1 against 42.4 us on
 * the H100, session 13): both kernels mostly wait on their loads, and loading
 * the next chunk ahead (more registers, fewer blocks per SM) measured slower
 * still. So it is opt-in (rl_cu_attn_force(2), RL_CU_ATTN_TC=1), kept tested
 * as the base for what tensor cores can do better: several query heads of a
 * grouped-query KV head in one pass over its rows.
 *
 * Precision: the fp32 side of each product (the query, the softmax weights)
 * goes in as two fp16 halves, hi = fp16(x) and lo = fp16(x - hi), ~22 bits
 * together, after scaling by a power of two that puts the largest value near
 * 2^14, so neither half falls into fp16's subnormals (the scale is undone
 * exactly afterwards). The result matches the CUDA-core kernel to ~1e-6
 * relative (test_cu_kvq8 bounds it at 1e-5), not bit for bit; it is the same
 * for a query alone or in a batch (the same code for both).
 *
 * Fragments (lane = 4 g + t): A rows g and g + 8, B column g, C rows g and
 * g + 8, columns 2t and 2t + 1. The order of the summed dimension inside an
 * mma is free as long as A and B agree, which the loads below use.
 *
 * Scores S = K q: A = K (rows: positions g, g + 8), 8 slices of 16 dims.
 * Slice 2G + h holds dims of scale group G only: lane t supplies dims
 * 32G + 8t + 4h + {0,1} (A columns 2t, 2t+1) and + {2,3} (columns 2t+8,
 * 2t+9), i.e. one 8-byte load per row and group. B column 2G + c holds group
 * G's query half c (0 hi, 1 lo) and zeros elsewhere, so one accumulator keeps
 * the groups apart: lane t ends with group t's hi and lo sums of positions g
 * and g + 8, applies that group's K scale, and a 4-lane shuffle adds the
 * groups.
 *
 * Output O = sum_p w_p V_p: A = weights (rows r = 0..3: hi of w_p * dV[p][r],
 * rows 8 + r: lo of it; other rows zero), B = V over the 16 positions (k)
 * and 8 dims (n) per tile. Tile j's column n is dim 16n + j, so lane g loads
 * bytes 16g..16g+15 of its 4 rows (positions 2t, 2t+1, 2t+8, 2t+9) and takes
 * byte j for tile j. Dims 32t..32t+31 (group t) come out in lane 5t (row g = t
 * and its lo row g + 8), which stores them. */
#ifndef RL_CU_ATTN_TC_CUH
#define RL_CU_ATTN_TC_CUH

#include "rl_cu_kv.cuh"

namespace attc {

__device__ __forceinline__ void mma(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                    uint32_t b1)
{
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

/* Bytes i0 and i1 of u (biased: signed byte + 128) as the exact fp16 pair
 * (byte - 128): 1024 + u in the mantissa of 2^10, minus 1152. sel 0x4140
 * takes bytes 0 and 1, 0x4342 bytes 2 and 3. */
__device__ __forceinline__ uint32_t h2_of(uint32_t u, uint32_t sel)
{
    uint32_t x = __byte_perm(u, 0x64646464u, sel);
    __half2 h = __hsub2(*(__half2 *)&x, __halves2half2(__ushort_as_half(0x6480), __ushort_as_half(0x6480)));
    return *(uint32_t *)&h;
}

__device__ __forceinline__ uint32_t pack(__half a, __half b)
{
    __half2 h = __halves2half2(a, b);
    return *(uint32_t *)&h;
}

/* x as hi + lo, both fp16 (x already scaled into fp16's normal range). */
__device__ __forceinline__ void split(float x, __half &hi, __half &lo)
{
    hi = __float2half_rn(x);
    lo = __float2half_rn(x - __half2float(hi));
}

/* Powers of two s and 1/s that bring mx (>= 0) to [2^13, 2^14): exponent
 * fields k and 254 - k, k clamped to 13..253 (zero or tiny mx: 2^126). */
__device__ __forceinline__ void pow2_scale(float mx, float &s, float &inv)
{
    int e = (int)((__float_as_uint(mx) >> 23) & 0xffu);
    int k = 267 - e;
    k = k < 13 ? 13 : k > 253 ? 253 : k;
    s = __uint_as_float((uint32_t)k << 23);
    inv = __uint_as_float((uint32_t)(254 - k) << 23);
}

/* The query's B fragments (slices 2G + h) and the factor that undoes their
 * scale: qh, the head's 128 values, times sc (1/sqrt(128), rounded as the
 * CUDA-core kernel rounds it). */
__device__ __forceinline__ void query(const float *qh, float sc, int lane, uint32_t (&bq)[8][2], float &inv)
{
    const int g = lane >> 2, t = lane & 3, G = g >> 1;
    float v[8], mx = 0.0f;
    {
        const float4 *p = (const float4 *)(qh + 32 * G + 8 * t);
        float4 a = p[0], c = p[1];
        v[0] = a.x * sc, v[1] = a.y * sc, v[2] = a.z * sc, v[3] = a.w * sc;
        v[4] = c.x * sc, v[5] = c.y * sc, v[6] = c.z * sc, v[7] = c.w * sc;
    }
#pragma unroll
    for (int i = 0; i < 8; i++)
        mx = fmaxf(mx, fabsf(v[i]));
#pragma unroll
    for (int o = 16; o >= 1; o >>= 1)
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    float s;
    pow2_scale(mx, s, inv);
    __half p[8];
#pragma unroll
    for (int i = 0; i < 8; i++) {
        __half hi, lo;
        split(v[i] * s, hi, lo);
        p[i] = (g & 1) ? lo : hi;
    }
#pragma unroll
    for (int sl = 0; sl < 8; sl++) {
        bool mine = sl >> 1 == G;
        int h = sl & 1;
        bq[sl][0] = mine ? pack(p[4 * h], p[4 * h + 1]) : 0u;
        bq[sl][1] = mine ? pack(p[4 * h + 2], p[4 * h + 3]) : 0u;
    }
}

/* A lane's bytes of a chunk: K rows g, g + 8 (8 bytes of each scale group)
 * and their group-t scales; V rows 2t, 2t+1, 2t+8, 2t+9 (bytes 16g..16g+15)
 * and their group-g scales. */
struct raw {
    uint2 kw0[4], kw1[4];
    uint4 vw[4];
    __half dk0, dk1, dv[4];
};

/* Issue the loads of positions t0 .. t0 + nt - 1 (1 <= nt <= 16, one KV
 * block) of query b, KV head kvh; rows past nt load row nt - 1 again (their
 * scores are masked in compute). */
template <class KV> __device__ __forceinline__ void load(const KV &A, int b, int kvh, int64_t t0, int nt, int lane, raw &R)
{
    const int g = lane >> 2, t = lane & 3;
    typename KV::row k0, v0;
    A.runs(b, kvh, t0, k0, v0);
    typename KV::row kr0 = A.run_row(k0, min(g, nt - 1)), kr1 = A.run_row(k0, min(g + 8, nt - 1));
#pragma unroll
    for (int G = 0; G < 4; G++) {
        R.kw0[G] = *(const uint2 *)(kr0.q + 32 * G + 8 * t);
        R.kw1[G] = *(const uint2 *)(kr1.q + 32 * G + 8 * t);
    }
    R.dk0 = kr0.d[t], R.dk1 = kr1.d[t];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        typename KV::row r = A.run_row(v0, min(2 * t + (i & 1) + 8 * (i >> 1), nt - 1));
        R.vw[i] = *(const uint4 *)(r.q + 16 * g);
        R.dv[i] = r.d[g & 3];
    }
}

/* From a chunk's bytes (nt >= 1 positions): the warp's softmax maximum m, its
 * sum l, and into o[0..127] the weighted sum of V with weights exp(score - m). */
__device__ __forceinline__ void compute(const raw &R, int nt, const uint32_t (&bq)[8][2], float inv_q, int lane,
                                        float *o, float &m_out, float &l_out)
{
    const int g = lane >> 2, t = lane & 3;
    const uint2(&kw0)[4] = R.kw0, (&kw1)[4] = R.kw1;
    const uint4(&vw)[4] = R.vw;
    const __half(&dv)[4] = R.dv;
    const __half dk0 = R.dk0, dk1 = R.dk1;
    /* scores of positions g and g + 8 */
    float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
    for (int G = 0; G < 4; G++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            uint32_t u0 = (h ? kw0[G].y : kw0[G].x) ^ 0x80808080u, u1 = (h ? kw1[G].y : kw1[G].x) ^ 0x80808080u;
            mma(d, h2_of(u0, 0x4140), h2_of(u1, 0x4140), h2_of(u0, 0x4342), h2_of(u1, 0x4342), bq[2 * G + h][0],
                bq[2 * G + h][1]);
        }
    float s0 = (d[0] + d[1]) * __half2float(dk0), s1 = (d[2] + d[3]) * __half2float(dk1);
#pragma unroll
    for (int x = 1; x <= 2; x <<= 1) {
        s0 += __shfl_xor_sync(0xffffffffu, s0, x);
        s1 += __shfl_xor_sync(0xffffffffu, s1, x);
    }
    s0 = g < nt ? s0 * inv_q : -INFINITY;
    s1 = g + 8 < nt ? s1 * inv_q : -INFINITY;
    float m = fmaxf(s0, s1);
#pragma unroll
    for (int x = 4; x <= 16; x <<= 1)
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, x));
    float e0 = __expf(s0 - m), e1 = __expf(s1 - m), l = e0 + e1; /* 0 past nt */
#pragma unroll
    for (int x = 4; x <= 16; x <<= 1)
        l += __shfl_xor_sync(0xffffffffu, l, x);
    /* weights of positions 2t, 2t+1, 2t+8, 2t+9 for scale group g (rows g, g + 8 of A) */
    float w[4] = {__shfl_sync(0xffffffffu, e0, 8 * t), __shfl_sync(0xffffffffu, e0, 8 * t + 4),
                  __shfl_sync(0xffffffffu, e1, 8 * t), __shfl_sync(0xffffffffu, e1, 8 * t + 4)};
    float mx = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; i++) {
        w[i] *= __half2float(dv[i]);
        mx = fmaxf(mx, fabsf(w[i]));
    }
#pragma unroll
    for (int x = 1; x <= 2; x <<= 1)
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, x));
    float sw, inv_w;
    pow2_scale(mx, sw, inv_w);
    uint32_t a[4] = {0u, 0u, 0u, 0u};
    if (g < 4) {
        __half hi[4], lo[4];
#pragma unroll
        for (int i = 0; i < 4; i++)
            split(w[i] * sw, hi[i], lo[i]);
        a[0] = pack(hi[0], hi[1]), a[1] = pack(lo[0], lo[1]);
        a[2] = pack(hi[2], hi[3]), a[3] = pack(lo[2], lo[3]);
    }
    const uint32_t *u = (const uint32_t *)vw;
#pragma unroll
    for (int wi = 0; wi < 4; wi++) { /* tiles 4wi .. 4wi + 3 */
        uint32_t ua = u[wi] ^ 0x80808080u, ub = u[4 + wi] ^ 0x80808080u;
        uint32_t uc = u[8 + wi] ^ 0x80808080u, ud = u[12 + wi] ^ 0x80808080u;
        uint32_t ab[2] = {__byte_perm(ua, ub, 0x5140), __byte_perm(ua, ub, 0x7362)};
        uint32_t cd[2] = {__byte_perm(uc, ud, 0x5140), __byte_perm(uc, ud, 0x7362)};
        float oa[4], ob[4];
#pragma unroll
        for (int jj = 0; jj < 4; jj++) {
            uint32_t sel = (jj & 1) ? 0x4342u : 0x4140u;
            float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            mma(c, a[0], a[1], a[2], a[3], h2_of(ab[jj >> 1], sel), h2_of(cd[jj >> 1], sel));
            oa[jj] = (c[0] + c[2]) * inv_w; /* dim 32t + 4wi + jj: rows g (hi) and g + 8 (lo) */
            ob[jj] = (c[1] + c[3]) * inv_w; /* dim 32t + 16 + 4wi + jj */
        }
        if (g == t) {
            *(float4 *)(o + 32 * t + 4 * wi) = make_float4(oa[0], oa[1], oa[2], oa[3]);
            *(float4 *)(o + 32 * t + 16 + 4 * wi) = make_float4(ob[0], ob[1], ob[2], ob[3]);
        }
    }
    m_out = m, l_out = l;
}

template <class KV>
__device__ __forceinline__ void chunk(const KV &A, int b, int kvh, int64_t t0, int nt, const uint32_t (&bq)[8][2],
                                      float inv_q, int lane, float *o, float &m_out, float &l_out)
{
    raw R;
    load(A, b, kvh, t0, nt, lane, R);
    compute(R, nt, bq, inv_q, lane, o, m_out, l_out);
}

} /* namespace attc */

#endif
