/* rl_cu_matvec.cuh - dequantizing matrix-vector products for generation.
 *
 * One warp owns NR weight rows; its 32 lanes walk the row in 32-element units
 * (8 for the float types), so every weight byte is read once with 16-byte
 * coalesced loads. Quantized types dot against int8 activations with dp4a
 * (fp32 accumulation per unit, scaled by both block scales). The batch (1..8
 * sequences) is a template parameter: each weight unit loaded once serves all
 * of them. GLU mode computes gate and up rows in the same warp and writes
 * silu(gate) * up, then quantizes each 32-output block of the CTA in place.
 */
#ifndef RL_CU_MATVEC_CUH
#define RL_CU_MATVEC_CUH

#include <stdlib.h>

#include "rl_cu_dequant.cuh"

#define MV_WARPS 8

/* ---- per-type weight units -------------------------------------------------- */
template <int T> struct wunit;
template <> struct wunit<RL_TYPE_Q4_0> { uint4 q; float d; };
template <> struct wunit<RL_TYPE_Q8_0> { int4 q0, q1; float d; };
template <> struct wunit<RL_TYPE_Q4_K> { uint4 q0, q1; float ds, dm; uint32_t mk; };
template <> struct wunit<RL_TYPE_Q5_K> { int w[8]; float ds, dm; };
template <> struct wunit<RL_TYPE_Q6_K> { int w[8]; float d0, d1; };
template <> struct wunit<RL_TYPE_F16> { uint4 q; };
template <> struct wunit<RL_TYPE_BF16> { uint4 q; };
template <> struct wunit<RL_TYPE_F32> { float4 a, b; };

template <int T> struct wtraits { static const int UNIT = 32; static const bool Q8 = true; };
template <> struct wtraits<RL_TYPE_F16> { static const int UNIT = 8; static const bool Q8 = false; };
template <> struct wtraits<RL_TYPE_BF16> { static const int UNIT = 8; static const bool Q8 = false; };
template <> struct wtraits<RL_TYPE_F32> { static const int UNIT = 8; static const bool Q8 = false; };

__device__ __forceinline__ wunit<RL_TYPE_Q4_0> wload_q4_0(const rl_cu_mat &m, int64_t row, int64_t u)
{
    int64_t nb = m.cols / 32;
    wunit<RL_TYPE_Q4_0> w;
    w.q = __ldg((const uint4 *)m.q + row * nb + u);
    w.d = rl_h2f(__ldg((const unsigned short *)m.d + row * nb + u));
    return w;
}

template <int T> __device__ __forceinline__ wunit<T> wload(const rl_cu_mat &m, int64_t row, int64_t u);

template <> __device__ __forceinline__ wunit<RL_TYPE_Q4_0> wload<RL_TYPE_Q4_0>(const rl_cu_mat &m, int64_t row, int64_t u)
{
    return wload_q4_0(m, row, u);
}

template <> __device__ __forceinline__ wunit<RL_TYPE_Q8_0> wload<RL_TYPE_Q8_0>(const rl_cu_mat &m, int64_t row, int64_t u)
{
    int64_t nb = m.cols / 32;
    const int4 *p = (const int4 *)m.q + (row * nb + u) * 2;
    wunit<RL_TYPE_Q8_0> w;
    w.q0 = __ldg(p);
    w.q1 = __ldg(p + 1);
    w.d = rl_h2f(__ldg((const unsigned short *)m.d + row * nb + u));
    return w;
}

/* Loads of a K-quant block's words: through the read-only path from global
 * memory (G) or plain (shared memory: rl_cu_mvb's stages). */
template <bool G, class V> __device__ __forceinline__ V kld(const void *p)
{
    if constexpr (G)
        return __ldg((const V *)p);
    else
        return *(const V *)p;
}

/* Unit j (0..7, 32 values) of the Q4_K block at b (144 bytes: d, dmin, 12
 * bytes of 6-bit scales and mins, 128 nibble bytes; 16-byte aligned). Units
 * 2i and 2i + 1 are the low and high nibbles of the same 32 bytes: the unit
 * keeps its nibbles in place under the mask mk (a high nibble n reads as 16n)
 * and its scale ds over 16 for the high ones, so no shift per word
 * (ds * 16n / 16 = ds * n exactly: a power of two). */
template <bool G> __device__ __forceinline__ wunit<RL_TYPE_Q4_K> q4k_unit(const uint8_t *b, int j)
{
    int s, mn;
    const uint8_t *q = b + 16 + (j / 2) * 32;
    wunit<RL_TYPE_Q4_K> w;
    w.q0 = kld<G, uint4>(q);
    w.q1 = kld<G, uint4>(q + 16);
    uint2 h = kld<G, uint2>(b);     /* d, dmin, scales[0..3] */
    uint2 t = kld<G, uint2>(b + 8); /* scales[4..11] */
    rl_q4k_scale_min_w(h.y, t.x, t.y, j, &s, &mn);
    w.ds = rl_h2f((uint16_t)h.x) * s * (j & 1 ? 0.0625f : 1.0f);
    w.dm = rl_h2f((uint16_t)(h.x >> 16)) * mn;
    w.mk = j & 1 ? 0xF0F0F0F0u : 0x0F0F0F0Fu;
    return w;
}

/* Unit j of the Q5_K block at b: 176-byte blocks keep 16-byte alignment, so
 * qh (bytes 16..47) and the unit's 32 nibble bytes are two aligned 16-byte
 * loads each. */
template <bool G> __device__ __forceinline__ wunit<RL_TYPE_Q5_K> q5k_unit(const uint8_t *b, int j)
{
    int s, mn;
    const uint8_t *q = b + 48 + (j / 2) * 32;
    uint4 q0 = kld<G, uint4>(q), q1 = kld<G, uint4>(q + 16), h0 = kld<G, uint4>(b + 16), h1 = kld<G, uint4>(b + 32);
    uint2 h = kld<G, uint2>(b);     /* d, dmin, scales[0..3] */
    uint2 t = kld<G, uint2>(b + 8); /* scales[4..11] */
    rl_q4k_scale_min_w(h.y, t.x, t.y, j, &s, &mn);
    const uint32_t qw[8] = {q0.x, q0.y, q0.z, q0.w, q1.x, q1.y, q1.z, q1.w};
    const uint32_t hw[8] = {h0.x, h0.y, h0.z, h0.w, h1.x, h1.y, h1.z, h1.w};
    /* element 4k+i: its nibble | bit j of qh[4k+i] << 4 (0..31); an odd
     * unit's (high) nibble is shifted down by one only, its fifth bit to bit 7:
     * 8 times the value, an unsigned byte (dp4a.u32.s32), the 1/8 in ds. The
     * fifth bit reaches its place by one rotation (it stays in its byte). */
    const bool odd = j & 1;
    const int qsh = odd ? 1 : 0, hb = odd ? 7 : 4;
    const uint32_t mq = odd ? 0x78787878u : 0x0F0F0F0Fu, mb = 0x01010101u << hb;
    wunit<RL_TYPE_Q5_K> w;
#pragma unroll
    for (int k = 0; k < 8; k++)
        w.w[k] = (int)(((qw[k] >> qsh) & mq) | (__funnelshift_r(hw[k], hw[k], (j - hb) & 31) & mb));
    w.ds = rl_h2f((uint16_t)h.x) * s * (odd ? 0.125f : 1.0f);
    w.dm = rl_h2f((uint16_t)(h.x >> 16)) * mn;
    return w;
}

/* Bytes q of 0..63 to the signed bytes 4 (q - 32): bit 5 flipped is q - 32
 * in six-bit two's complement, and shifted up by two it is a signed byte (no
 * bit crosses into the next byte: q < 64). Two instructions where __vsubss4
 * (q - 32, saturating, which these values never need) is about fifteen; the
 * unit's scales carry the 1/4 (a power of two: the same products). */
__device__ __forceinline__ uint32_t rl_q6_center4(uint32_t q)
{
    return (q ^ 0x20202020u) << 2;
}

/* Unit j of the Q6_K block at b (its device form: ql, qh, scales; 16-byte
 * aligned, rl_cu_dequant.cuh), its fp16 d at dp: the unit's 32 ql bytes and
 * 32 qh bytes are two aligned 16-byte loads each.
 * From shared memory (rl_cu_mvb) the values are 4 (q - 32) (rl_q6_center4);
 * from global memory (the matvecs) q - 32 by __vsubss4, with which ptxas
 * spills less in their batched GLU kernels (2 rows: 24 bytes against 128). */
template <bool G> __device__ __forceinline__ wunit<RL_TYPE_Q6_K> q6k_unit(const uint8_t *b, const uint8_t *dp, int j)
{
    int n = j / 4, jj = j % 4;
    const uint8_t *ql = b + n * 64 + (jj & 1) * 32, *qh = b + 128 + n * 32;
    uint4 l0 = kld<G, uint4>(ql), l1 = kld<G, uint4>(ql + 16), h0 = kld<G, uint4>(qh), h1 = kld<G, uint4>(qh + 16);
    uint16_t scw = kld<G, uint16_t>(b + 192 + n * 8 + jj * 2); /* the unit's two int8 scales */
    const uint32_t lw[8] = {l0.x, l0.y, l0.z, l0.w, l1.x, l1.y, l1.z, l1.w};
    const uint32_t hw[8] = {h0.x, h0.y, h0.z, h0.w, h1.x, h1.y, h1.z, h1.w};
    int lsh = (jj >> 1) * 4, hsh = 2 * jj;
    wunit<RL_TYPE_Q6_K> w;
#pragma unroll
    for (int k = 0; k < 8; k++) { /* 6-bit q - 32 per byte (times 4 from shared memory), exact */
        /* the qh pair at bits hsh, hsh + 1 of each byte to bits 4-5 by one
         * rotation (no masked bit crosses a byte) */
        uint32_t word = ((lw[k] >> lsh) & 0x0F0F0F0Fu) | (__funnelshift_r(hw[k], hw[k], (hsh - 4) & 31) & 0x30303030u);
        w.w[k] = G ? (int)__vsubss4(word, 0x20202020u) : (int)rl_q6_center4(word);
    }
    float d = rl_h2f(kld<G, uint16_t>(dp)) * (G ? 1.0f : 0.25f); /* shared: the values are 4 (q - 32) */
    w.d0 = d * (float)(int8_t)(scw & 0xFF);
    w.d1 = d * (float)(int8_t)(scw >> 8);
    return w;
}

template <> __device__ __forceinline__ wunit<RL_TYPE_Q4_K> wload<RL_TYPE_Q4_K>(const rl_cu_mat &m, int64_t row, int64_t u)
{
    return q4k_unit<true>((const uint8_t *)m.q + row * m.ld + u / 8 * RL_Q4K_BYTES, (int)(u % 8));
}

template <> __device__ __forceinline__ wunit<RL_TYPE_Q5_K> wload<RL_TYPE_Q5_K>(const rl_cu_mat &m, int64_t row, int64_t u)
{
    return q5k_unit<true>((const uint8_t *)m.q + row * m.ld + u / 8 * RL_Q5K_BYTES, (int)(u % 8));
}

template <> __device__ __forceinline__ wunit<RL_TYPE_Q6_K> wload<RL_TYPE_Q6_K>(const rl_cu_mat &m, int64_t row, int64_t u)
{
    const uint8_t *r = (const uint8_t *)m.q + row * m.ld;
    return q6k_unit<true>(r + rl_q6k_block_off(u / 8), r + rl_q6k_d_off(u / 8), (int)(u % 8));
}

template <> __device__ __forceinline__ wunit<RL_TYPE_F16> wload<RL_TYPE_F16>(const rl_cu_mat &m, int64_t row, int64_t u)
{
    wunit<RL_TYPE_F16> w;
    w.q = __ldg((const uint4 *)((const uint16_t *)m.q + row * m.cols) + u);
    return w;
}

template <> __device__ __forceinline__ wunit<RL_TYPE_BF16> wload<RL_TYPE_BF16>(const rl_cu_mat &m, int64_t row, int64_t u)
{
    wunit<RL_TYPE_BF16> w;
    w.q = __ldg((const uint4 *)((const uint16_t *)m.q + row * m.cols) + u);
    return w;
}

template <> __device__ __forceinline__ wunit<RL_TYPE_F32> wload<RL_TYPE_F32>(const rl_cu_mat &m, int64_t row, int64_t u)
{
    const float4 *p = (const float4 *)((const float *)m.q + row * m.cols) + u * 2;
    wunit<RL_TYPE_F32> w;
    w.a = __ldg(p);
    w.b = __ldg(p + 1);
    return w;
}

/* Address of weight unit u of a row (for L2 prefetch). */
template <int T> __device__ __forceinline__ const void *wptr(const rl_cu_mat &m, int64_t row, int64_t u)
{
    const uint8_t *q = (const uint8_t *)m.q;
    switch (T) {
    case RL_TYPE_Q4_0: return q + (row * (m.cols / 32) + u) * 16;
    case RL_TYPE_Q8_0: return q + (row * (m.cols / 32) + u) * 32;
    case RL_TYPE_Q4_K: return q + row * m.ld + u / 8 * RL_Q4K_BYTES + 16 + (u % 8 / 2) * 32;
    case RL_TYPE_Q5_K: return q + row * m.ld + u / 8 * RL_Q5K_BYTES + 48 + (u % 8 / 2) * 32;
    case RL_TYPE_Q6_K: return q + row * m.ld + rl_q6k_block_off(u / 8) + (u % 8 / 4) * 64;
    case RL_TYPE_F32: return q + (row * m.cols + u * 8) * 4;
    default: return q + (row * m.cols + u * 8) * 2;
    }
}

/* Activation unit u of batch row: int8 block (32 bytes) and its {d, d*sum}. */
struct xunit { int4 q0, q1; float2 ds; };

__device__ __forceinline__ xunit xload(const rl_cu_act &x, int b, int64_t u)
{
    xunit r;
    const int4 *p = (const int4 *)(x.q + b * x.n) + u * 2;
    r.q0 = p[0];
    r.q1 = p[1];
    r.ds = ((const float2 *)x.ds)[b * (x.n / 32) + u];
    return r;
}

template <int T> __device__ __forceinline__ float wdot(const wunit<T> &w, const rl_cu_act &x, int b, int64_t u);

/* dp4a of four unsigned bytes a with four signed bytes b, plus c. */
__device__ __forceinline__ int rl_dp4a_us(uint32_t a, int b, int c)
{
    int d;
    asm("dp4a.u32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}

/* s plus the dot products of four weight words w with the activation words
 * a (US: unsigned weight bytes, dp4a.u32.s32; else signed bytes, dp4a). */
template <bool US, typename W>
__device__ __forceinline__ int rl_dot4(W w0, W w1, W w2, W w3, const int4 &a, int s)
{
    if constexpr (US) {
        s = rl_dp4a_us((uint32_t)w0, a.x, s);
        s = rl_dp4a_us((uint32_t)w1, a.y, s);
        s = rl_dp4a_us((uint32_t)w2, a.z, s);
        return rl_dp4a_us((uint32_t)w3, a.w, s);
    } else {
        s = __dp4a((int)w0, a.x, s);
        s = __dp4a((int)w1, a.y, s);
        s = __dp4a((int)w2, a.z, s);
        return __dp4a((int)w3, a.w, s);
    }
}

/* The int8-activation types' dot product of a weight unit with an activation
 * unit already loaded (rl_cu_mvb keeps a lane's units in registers). */
template <int T> __device__ __forceinline__ float wdot_x(const wunit<T> &w, const xunit &a);

template <> __device__ __forceinline__ float wdot_x<RL_TYPE_Q4_0>(const wunit<RL_TYPE_Q4_0> &w, const xunit &a)
{
    /* the high nibbles in place (16n) in their own sum, which is then a
     * multiple of 16: no shift per word, one at the end (exact). (Its own
     * interleaved chains: as two rl_dot4 calls, ptxas schedules the Q4_0
     * matvec and rl_cu_mvb code differently.) */
    const uint32_t M = 0x0F0F0F0Fu, MH = 0xF0F0F0F0u;
    int s = 0, t = 0;
    s = rl_dp4a_us(w.q.x & M, a.q0.x, s);
    t = rl_dp4a_us(w.q.x & MH, a.q1.x, t);
    s = rl_dp4a_us(w.q.y & M, a.q0.y, s);
    t = rl_dp4a_us(w.q.y & MH, a.q1.y, t);
    s = rl_dp4a_us(w.q.z & M, a.q0.z, s);
    t = rl_dp4a_us(w.q.z & MH, a.q1.z, t);
    s = rl_dp4a_us(w.q.w & M, a.q0.w, s);
    t = rl_dp4a_us(w.q.w & MH, a.q1.w, t);
    s += t >> 4; /* (arithmetic: t is a multiple of 16) */
    /* sum((n - 8) * qx) * dx = dx * sum(n * qx) - 8 * dx * sum(qx) */
    return w.d * (a.ds.x * (float)s - 8.0f * a.ds.y);
}

template <> __device__ __forceinline__ float wdot_x<RL_TYPE_Q8_0>(const wunit<RL_TYPE_Q8_0> &w, const xunit &a)
{
    int s = rl_dot4<false>(w.q0.x, w.q0.y, w.q0.z, w.q0.w, a.q0, 0);
    s = rl_dot4<false>(w.q1.x, w.q1.y, w.q1.z, w.q1.w, a.q1, s);
    return w.d * a.ds.x * (float)s;
}

template <> __device__ __forceinline__ float wdot_x<RL_TYPE_Q4_K>(const wunit<RL_TYPE_Q4_K> &w, const xunit &a)
{
    /* (its own chain: through rl_dot4, ptxas schedules rl_cu_mvb's Q4_K code differently) */
    const uint32_t M = w.mk; /* the nibbles in place: high ones read as 16n, ds has the 1/16 */
    int s = 0;
    s = rl_dp4a_us(w.q0.x & M, a.q0.x, s);
    s = rl_dp4a_us(w.q0.y & M, a.q0.y, s);
    s = rl_dp4a_us(w.q0.z & M, a.q0.z, s);
    s = rl_dp4a_us(w.q0.w & M, a.q0.w, s);
    s = rl_dp4a_us(w.q1.x & M, a.q1.x, s);
    s = rl_dp4a_us(w.q1.y & M, a.q1.y, s);
    s = rl_dp4a_us(w.q1.z & M, a.q1.z, s);
    s = rl_dp4a_us(w.q1.w & M, a.q1.w, s);
    /* sum(d*s*q - dmin*m) * x = d*s*dx*sum(q*qx) - dmin*m*sum(x) (|s| < 2^20: exact in a float) */
    return w.ds * a.ds.x * (float)s - w.dm * a.ds.y;
}

template <> __device__ __forceinline__ float wdot_x<RL_TYPE_Q5_K>(const wunit<RL_TYPE_Q5_K> &w, const xunit &a)
{
    /* unsigned weight bytes: an odd unit's are 8 times its values, up to 248 */
    int s = rl_dot4<true>(w.w[0], w.w[1], w.w[2], w.w[3], a.q0, 0);
    s = rl_dot4<true>(w.w[4], w.w[5], w.w[6], w.w[7], a.q1, s);
    /* as Q4_K: d*s*dx*sum(q*qx) - dmin*m*sum(x) */
    return w.ds * a.ds.x * (float)s - w.dm * a.ds.y;
}

template <> __device__ __forceinline__ float wdot_x<RL_TYPE_Q6_K>(const wunit<RL_TYPE_Q6_K> &w, const xunit &a)
{
    int s0 = rl_dot4<false>(w.w[0], w.w[1], w.w[2], w.w[3], a.q0, 0);
    int s1 = rl_dot4<false>(w.w[4], w.w[5], w.w[6], w.w[7], a.q1, 0);
    return a.ds.x * (w.d0 * (float)s0 + w.d1 * (float)s1);
}

#define RL_WDOT_X(T)                                                                                           \
    template <> __device__ __forceinline__ float wdot<T>(const wunit<T> &w, const rl_cu_act &x, int b, int64_t u) \
    {                                                                                                          \
        return wdot_x<T>(w, xload(x, b, u));                                                                   \
    }
RL_WDOT_X(RL_TYPE_Q4_0)
RL_WDOT_X(RL_TYPE_Q8_0)
RL_WDOT_X(RL_TYPE_Q4_K)
RL_WDOT_X(RL_TYPE_Q5_K)
RL_WDOT_X(RL_TYPE_Q6_K)
#undef RL_WDOT_X

__device__ __forceinline__ float dot8_f32(const float *f, const float *xf)
{
    float4 x0 = ((const float4 *)xf)[0], x1 = ((const float4 *)xf)[1];
    return f[0] * x0.x + f[1] * x0.y + f[2] * x0.z + f[3] * x0.w +
           f[4] * x1.x + f[5] * x1.y + f[6] * x1.z + f[7] * x1.w;
}

template <> __device__ __forceinline__ float wdot<RL_TYPE_F16>(const wunit<RL_TYPE_F16> &w, const rl_cu_act &x, int b, int64_t u)
{
    const __half2 *h = (const __half2 *)&w.q;
    float f[8];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 v = __half22float2(h[i]);
        f[2 * i] = v.x;
        f[2 * i + 1] = v.y;
    }
    return dot8_f32(f, x.f + b * x.n + u * 8);
}

template <> __device__ __forceinline__ float wdot<RL_TYPE_BF16>(const wunit<RL_TYPE_BF16> &w, const rl_cu_act &x, int b, int64_t u)
{
    const uint32_t *p = (const uint32_t *)&w.q;
    float f[8];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        f[2 * i] = __uint_as_float(p[i] << 16);
        f[2 * i + 1] = __uint_as_float(p[i] & 0xFFFF0000u);
    }
    return dot8_f32(f, x.f + b * x.n + u * 8);
}

template <> __device__ __forceinline__ float wdot<RL_TYPE_F32>(const wunit<RL_TYPE_F32> &w, const rl_cu_act &x, int b, int64_t u)
{
    float f[8] = {w.a.x, w.a.y, w.a.z, w.a.w, w.b.x, w.b.y, w.b.z, w.b.w};
    return dot8_f32(f, x.f + b * x.n + u * 8);
}

/* ---- the kernel ------------------------------------------------------------- */
/* NO outputs per warp; GLU: each output needs rows o and o + rows/2. */
/* W warps per block, NO outputs per warp (plain: 8 x 2; GLU: 8 warps x 4
 * outputs = one 32-block of outputs to quantize). */
/* UO: units per lane per round (0: the default below). The GLU variant with
 * UO = 1 is capped to 128 registers so that two CTAs share an SM. */
/* DB: double-buffered rounds (one sequence): the next round's loads are
 * issued before this round's dot products, so a warp always has loads in
 * flight; without it, a warp's loads and its arithmetic alternate, and the
 * warps of a grid that start together leave memory idle while they all
 * compute (the rounds then hold half the units: the same registers). */
/* NORM: the residual product with the next RMSNorm deferred into its
 * epilogue (rl_cu_matvec_add_norm; W * NO == 32: a CTA owns one 32-block of
 * outputs): y += W x, then xn = y * g per element, its int8 planes, and the
 * block's sum of squares of y in xn.ss. Any product whose input carries ss
 * scales its dot products by the input's rsqrt(mean square + eps). */
template <int T, int B, int NO, bool GLU, int W, int UO = 0, bool DB = false, bool NORM = false>
__global__ void __launch_bounds__(W * 32, (GLU && UO == 1) ? 2 : 1)
k_matvec(const rl_cu_mat m, const rl_cu_act x, rl_cu_act y, int mode, const float *g, rl_cu_act xn)
{
    const int NR = GLU ? 2 * NO : NO;
    RL_TL_BLOCK(RL_TL_MATVEC);
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    int64_t n_out = GLU ? m.rows / 2 : m.rows;
    int64_t o0 = ((int64_t)blockIdx.x * W + warp) * NO;
    int64_t rows[NR];
#pragma unroll
    for (int r = 0; r < NO; r++) {
        int64_t o = o0 + r < n_out ? o0 + r : n_out - 1; /* clamp: duplicates are not written */
        rows[r] = o;
        if (GLU)
            rows[NO + r] = o + n_out;
    }
    float acc[NR][B];
#pragma unroll
    for (int r = 0; r < NR; r++)
#pragma unroll
        for (int b = 0; b < B; b++)
            acc[r][b] = 0.0f;

    int64_t nu = m.cols / wtraits<T>::UNIT;
    /* U units per lane per round, all loads issued before the first use so
     * that NR * U independent 16-byte loads per lane are in flight. */
    const int U0 = UO ? UO : NR >= 8 ? (B > 2 ? 1 : 2)
                 : (B == 1 && sizeof(wunit<T>) <= 20) ? 8 : (B > 4 ? 2 : 4);
    const int U = DB && U0 > 1 ? U0 / 2 : U0;
    rl_pdl_trigger();
    /* The weights do not depend on the previous kernel: warm L2 with this
     * lane's later units and load the first round before waiting for it. */
    for (int64_t u = lane + 32 * U, k = 0; u < nu && k < 8; u += 32, k++)
#pragma unroll
        for (int r = 0; r < NR; r++)
            rl_prefetch_l2(wptr<T>(m, rows[r], u));
    wunit<T> w[U][NR];
#pragma unroll
    for (int k = 0; k < U; k++)
#pragma unroll
        for (int r = 0; r < NR; r++)
            if (lane + 32 * k < nu)
                w[k][r] = wload<T>(m, rows[r], lane + 32 * k);
    rl_pdl_wait();
    RL_TL_WAITED();
    /* A deferred norm on the input, one sequence: this lane's first SSN
     * block sums of squares, loaded now (independent loads, nothing waits on
     * them) and summed after the dot products. (A loop of dependent adds here
     * cost the product 0.5-1 us.) */
    const int SSN = 4; /* rows of up to 4096 */
    float ssv[B == 1 ? SSN : 1];
    if constexpr (B == 1) {
#pragma unroll
        for (int k = 0; k < SSN; k++)
            ssv[k] = x.ss && lane + 32 * k < x.n / 32 ? x.ss[lane + 32 * k] : 0.0f;
    }
    /* a round: this lane's U units of every row from unit base on */
    auto load = [&](wunit<T>(&buf)[U][NR], int64_t base) {
#pragma unroll
        for (int k = 0; k < U; k++)
#pragma unroll
            for (int r = 0; r < NR; r++)
                if (base + 32 * k < nu)
                    buf[k][r] = wload<T>(m, rows[r], base + 32 * k);
    };
    auto dot = [&](const wunit<T>(&buf)[U][NR], int64_t base) {
#pragma unroll
        for (int k = 0; k < U; k++) {
            if (base + 32 * k >= nu)
                break;
#pragma unroll
            for (int b = 0; b < B; b++)
#pragma unroll
                for (int r = 0; r < NR; r++)
                    acc[r][b] += wdot<T>(buf[k][r], x, b, base + 32 * k);
        }
    };
    if constexpr (DB) {
        wunit<T> v[U][NR];
        for (int64_t u0 = lane; u0 < nu; u0 += 64 * U) {
            load(v, u0 + 32 * U);
            dot(w, u0);
            load(w, u0 + 64 * U);
            dot(v, u0 + 32 * U);
        }
    } else {
        for (int64_t u0 = lane; u0 < nu; u0 += 32 * U) {
            if (u0 != lane) /* (the first round was loaded before the wait) */
                load(w, u0);
            dot(w, u0);
        }
    }

    __shared__ float out[B][W * NO];
#pragma unroll
    for (int r = 0; r < NR; r++)
#pragma unroll
        for (int b = 0; b < B; b++)
            acc[r][b] = rl_warp_sum(acc[r][b]);
    if (x.ss) {
#pragma unroll
        for (int b = 0; b < B; b++) {
            float ssq = 0.0f;
            int64_t k0 = 0;
            if constexpr (B == 1) {
#pragma unroll
                for (int k = 0; k < SSN; k++)
                    ssq += ssv[k];
                k0 = 32 * SSN;
            }
            for (int64_t k = k0 + lane; k < x.n / 32; k += 32)
                ssq += x.ss[b * (x.n / 32) + k];
            float rs = rsqrtf(rl_warp_sum(ssq) / (float)x.n + x.eps);
#pragma unroll
            for (int r = 0; r < NR; r++)
                acc[r][b] *= rs;
        }
    }
    if (lane == 0) {
#pragma unroll
        for (int r = 0; r < NO; r++) {
            int64_t o = o0 + r;
#pragma unroll
            for (int b = 0; b < B; b++) {
                float v = GLU ? rl_silu(acc[r][b]) * acc[NO + r][b] : acc[r][b];
                if (o < n_out) {
                    float *dst = y.f + b * (y.stride ? y.stride : n_out) + o;
                    v = mode == RL_CU_MV_ADD ? *dst + v : v;
                    *dst = v;
                }
                out[b][warp * NO + r] = v; /* NORM: the residual after the add */
            }
        }
    }
    if constexpr (NORM) {
        static_assert(W * NO == 32 && !GLU, "NORM: one 32-block of outputs per CTA");
        __syncthreads();
        if (warp < B) { /* warp b: batch row b's block */
            int64_t ob = (int64_t)blockIdx.x * 32, o = ob + lane;
            float h = out[warp][lane], v = h * __ldg(g + o);
            xn.f[warp * n_out + o] = v;
            if (xn.q)
                rl_quant_act(v, xn, warp * n_out + ob); /* (at the block start) */
            float ss = rl_warp_sum(h * h);
            if (lane == 0)
                xn.ss[warp * (n_out / 32) + blockIdx.x] = ss;
        }
        return;
    }
    if constexpr (GLU && (W * NO) % 32 == 0) {
        if (y.q == nullptr || n_out % 32 != 0)
            return;
        __syncthreads();
        /* Quantize the CTA's outputs, one 32-block per warp and batch row. */
        const int NBLK = W * NO / 32;
        for (int t = warp; t < B * NBLK; t += W) {
            int b = t / NBLK, k = t % NBLK;
            int64_t o = (int64_t)blockIdx.x * W * NO + k * 32;
            if (o >= n_out)
                continue;
            rl_quant_act(out[b][k * 32 + lane], y, b * n_out + o);
        }
    }
}

/* One sequence, GLU, Q4_0: one unit per round, capped at 128 registers so
 * that two CTAs share an SM (H100, 7B Q4_0: 426-430 vs 399-403 tok/s
 * generation; otherwise the gate/up grid is 2.6 waves of one CTA per SM).
 * Measured slower for Q8_0 (281 vs 290), so other types keep two units per
 * round. RL_CU_MV_GLU_U=1 / =0 forces one / the default per type. */
static inline int mv_env(const char *name)
{
    const char *e = getenv(name);
    return e ? atoi(e) : 0;
}

/* The residual product carrying the next norm (NORM), in one shape. */
template <int T, int B, int NO, int W, int UO, bool DB>
static void launch_norm(const rl_cu_mat &m, const rl_cu_act &x, int mode, rl_cu_act &y, cudaStream_t s,
                        const float *g, const rl_cu_act *xn)
{
    static_assert(W * NO == 32, "a 32-block of outputs per CTA");
    rl_launch(k_matvec<T, B, NO, false, W, UO, DB, true>, dim3((unsigned)(m.rows / 32)), dim3(W * 32), s, m, x, y,
              mode, g, *xn);
}

template <int T, int B, bool DB>
static void launch_db(const rl_cu_mat &m, const rl_cu_act &x, int mode, rl_cu_act &y, cudaStream_t s,
                      const float *g, const rl_cu_act *xn)
{
    const rl_cu_act none = {};
    if (g) { /* the residual product with the next norm: 16 warps x 2 rows (a 32-block per CTA) */
        /* One sequence (H100, session 15): Q4_0 takes 6 units per round (7B
         * 478-479 against 468-469 tok/s with 8: ptxas keeps more of the loads
         * in flight, 114 against 80 registers); Q8_0 keeps 8 (308-310 against
         * 289 with 6); 4 units, and 8 warps x 4 rows, were no faster (those
         * shapes are gone since session 17). */
        if constexpr (B == 1 && T == RL_TYPE_Q4_0)
            return launch_norm<T, 1, 2, 16, 6, DB>(m, x, mode, y, s, g, xn);
        return launch_norm<T, B, 2, 16, 0, DB>(m, x, mode, y, s, g, xn);
    }
    if constexpr (B == 1 && wtraits<T>::Q8) {
        static int glu_u = -1;
        if (glu_u < 0)
            glu_u = getenv("RL_CU_MV_GLU_U") ? mv_env("RL_CU_MV_GLU_U") : T == RL_TYPE_Q4_0;
        if (mode == RL_CU_MV_GLU && glu_u == 1) {
            int64_t n_out = m.rows / 2;
            unsigned grid = (unsigned)((n_out + MV_WARPS * 4 - 1) / (MV_WARPS * 4));
            rl_launch(k_matvec<T, 1, 4, true, MV_WARPS, 1, DB>, dim3(grid), dim3(MV_WARPS * 32), s, m, x, y, mode,
                      (const float *)nullptr, none);
            return;
        }
    }
    if (mode == RL_CU_MV_GLU) {
        const int NO = 4; /* 32 outputs per CTA: one quantization block */
        int64_t n_out = m.rows / 2;
        unsigned grid = (unsigned)((n_out + MV_WARPS * NO - 1) / (MV_WARPS * NO));
        rl_launch(k_matvec<T, B, NO, true, MV_WARPS, 0, DB>, dim3(grid), dim3(MV_WARPS * 32), s, m, x, y, mode,
                  (const float *)nullptr, none);
    } else {
        const int NO = 2, W = MV_WARPS; /* measured: 4 warps x 1 row was slower (x reuse, loads in flight) */
        unsigned grid = (unsigned)((m.rows + W * NO - 1) / (W * NO));
        /* (6 units per round here too: TinyLlama no faster, 1,680 / 1,691 against
         * 1,698 / 1,676 tok/s in session 17, 7B 2% slower in session 15) */
        rl_launch(k_matvec<T, B, NO, false, W, 0, DB>, dim3(grid), dim3(W * 32), s, m, x, y, mode,
                  (const float *)nullptr, none);
    }
}

/* One sequence: double-buffered rounds for the float types (H100, matvec
 * bandwidth with them: F16 2.24 against 1.95 TB/s at 4096x4096, 2.21
 * against 2.03 at 4096x11008), single-buffered for the quantized ones
 * (Q4_0: 1.73 against 2.05 TB/s at 4096x11008; the 7B Q4_0 token 411
 * against 453 tok/s); RL_CU_MV_DB=0|1 forces either. */
template <int T, int B>
static void launch_b(const rl_cu_mat &m, const rl_cu_act &x, int mode, rl_cu_act &y, cudaStream_t s,
                     const float *g, const rl_cu_act *xn)
{
    if constexpr (B == 1) {
        static int db = -1;
        if (db < 0)
            db = getenv("RL_CU_MV_DB") ? mv_env("RL_CU_MV_DB") != 0 : !wtraits<T>::Q8;
        if (db) {
            launch_db<T, 1, true>(m, x, mode, y, s, g, xn);
            return;
        }
    }
    launch_db<T, B, false>(m, x, mode, y, s, g, xn);
}

/* g / xn: the next norm's weight and deferred output (rl_cu_matvec_add_norm), or NULL. */
template <int T>
void launch_t(const rl_cu_mat &m, const rl_cu_act &x, int batch, int mode, rl_cu_act &y, cudaStream_t s,
              const float *g, const rl_cu_act *xn)
{
    switch (batch) {
    case 1: launch_b<T, 1>(m, x, mode, y, s, g, xn); break;
    case 2: launch_b<T, 2>(m, x, mode, y, s, g, xn); break;
    case 3: launch_b<T, 3>(m, x, mode, y, s, g, xn); break;
    case 4: launch_b<T, 4>(m, x, mode, y, s, g, xn); break;
    case 5: launch_b<T, 5>(m, x, mode, y, s, g, xn); break;
    case 6: launch_b<T, 6>(m, x, mode, y, s, g, xn); break;
    case 7: launch_b<T, 7>(m, x, mode, y, s, g, xn); break;
    default: launch_b<T, 8>(m, x, mode, y, s, g, xn); break;
    }
}

/* One explicit instantiation file per weight type (parallel builds). */
#define RL_CU_MV_DECLARE(T, name)                                                                                 \
    void rl_cu_mv_##name(const rl_cu_mat &m, const rl_cu_act &x, int batch, int mode, rl_cu_act &y, cudaStream_t s, \
                         const float *g, const rl_cu_act *xn)
#define RL_CU_MV_DEFINE(T, name) \
    RL_CU_MV_DECLARE(T, name) { launch_t<T>(m, x, batch, mode, y, s, g, xn); }
RL_CU_MV_DECLARE(RL_TYPE_Q4_0, q4_0);
RL_CU_MV_DECLARE(RL_TYPE_Q8_0, q8_0);
RL_CU_MV_DECLARE(RL_TYPE_Q4_K, q4_k);
RL_CU_MV_DECLARE(RL_TYPE_Q5_K, q5_k);
RL_CU_MV_DECLARE(RL_TYPE_Q6_K, q6_k);
RL_CU_MV_DECLARE(RL_TYPE_F16, f16);
RL_CU_MV_DECLARE(RL_TYPE_BF16, bf16);
RL_CU_MV_DECLARE(RL_TYPE_F32, f32);

#endif
