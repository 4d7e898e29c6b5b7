/* rl_cu_rope.cuh - RoPE's arithmetic, shared by the RoPE + KV-write kernel
 * (rl_cu_kv.cu) and the one-token decode attention that rotates its own query
 * and its token's K row (rl_cu_attn_rope_paged, rl_cu_attn.cu): the same
 * frequencies, angles and explicit roundings, so both paths give the same
 * bits.
 *
 * Pairs (rl_cuda.h, rl_cu_rope): pair k < n_rot / 2 is (2k, 2k + 1), or
 * (k, k + n_rot / 2) with neox; the dims from n_rot on form the pairs
 * (2k, 2k + 1) with angle 0 (cos 1, sin 0). A pair (a at its first dim, c at
 * its second) becomes (a cos - c sin, a sin + c cos). */
#ifndef RL_CU_ROPE_CUH
#define RL_CU_ROPE_CUH

#include "rl_cu_common.cuh"

/* Pair k's angular frequency (k < n_rot / 2): the file's, or freq_base^(-2k / n_rot). */
__device__ __forceinline__ float rl_rope_freq(const rl_cu_rope &r, int k)
{
    return r.inv_freq ? r.inv_freq[k] : powf(r.freq_base, -2.0f * (float)k / (float)r.n_rot);
}

/* Pair k's sine and cosine at position p (frequency f: rl_rope_freq, for
 * rotated pairs only; the others get 0 and 1). */
__device__ __forceinline__ void rl_rope_angle(bool rotated, float f, int p, float &sn, float &cs)
{
    sn = 0.0f;
    cs = 1.0f;
    if (rotated)
        sincosf((float)p * f, &sn, &cs);
}

/* A pair rotated, each product and sum rounded on its own (no fused
 * multiply-add the compiler may or may not form). */
__device__ __forceinline__ void rl_rope_pair(float a, float c, float cs, float sn, float &v0, float &v1)
{
    v0 = __fsub_rn(__fmul_rn(a, cs), __fmul_rn(c, sn));
    v1 = __fadd_rn(__fmul_rn(a, sn), __fmul_rn(c, cs));
}

/* The angles of VL consecutive dims d0.. at position p: each dim's pair's
 * sine and cosine (two dims of a pair inside the run share one call). They
 * depend on the position and the frequencies only, so a kernel takes them
 * before its PDL wait. The caller guarantees that a rotated neox dim's other
 * dim lies in the other half's run of VL (n_rot / 2 % VL == 0), and VL even,
 * so the other pairs lie inside the run. */
template <int VL>
__device__ __forceinline__ void rl_rope_angles(const rl_cu_rope &r, int p, int d0, float (&sn)[VL], float (&cs)[VL])
{
    const int half = r.n_rot / 2;
    if (r.neox && d0 < r.n_rot) { /* each dim's other one in the other half */
#pragma unroll
        for (int e = 0; e < VL; e++)
            rl_rope_angle(true, rl_rope_freq(r, (d0 < half ? d0 : d0 - half) + e), p, sn[e], cs[e]);
    } else {
#pragma unroll
        for (int e = 0; e < VL; e += 2) {
            int k = (d0 + e) >> 1;
            bool rot = 2 * k < r.n_rot;
            rl_rope_angle(rot, rot ? rl_rope_freq(r, k) : 0.0f, p, sn[e], cs[e]);
            sn[e + 1] = sn[e], cs[e + 1] = cs[e];
        }
    }
}

/* The same VL dims of one head (src: its raw values, 16-byte aligned)
 * rotated with those angles into out. */
template <int VL>
__device__ __forceinline__ void rl_rope_apply(const rl_cu_rope &r, int d0, const float *src, const float (&sn)[VL],
                                              const float (&cs)[VL], float (&out)[VL])
{
    static_assert(VL % 4 == 0, "runs of whole float4s");
    float xo[VL], xp[VL];
    const int half = r.n_rot / 2;
    const bool across = r.neox && d0 < r.n_rot;
    const int po = d0 < half ? d0 + half : d0 - half;
#pragma unroll
    for (int k = 0; k < VL / 4; k++) {
        float4 a = *(const float4 *)(src + d0 + 4 * k);
        xo[4 * k] = a.x, xo[4 * k + 1] = a.y, xo[4 * k + 2] = a.z, xo[4 * k + 3] = a.w;
        float4 c = across ? *(const float4 *)(src + po + 4 * k) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        xp[4 * k] = c.x, xp[4 * k + 1] = c.y, xp[4 * k + 2] = c.z, xp[4 * k + 3] = c.w;
    }
    if (across) {
        const bool first = d0 < half;
#pragma unroll
        for (int e = 0; e < VL; e++) {
            float v0, v1;
            if (first)
                rl_rope_pair(xo[e], xp[e], cs[e], sn[e], v0, v1);
            else
                rl_rope_pair(xp[e], xo[e], cs[e], sn[e], v0, v1);
            out[e] = first ? v0 : v1;
        }
    } else {
#pragma unroll
        for (int e = 0; e < VL; e += 2)
            rl_rope_pair(xo[e], xo[e + 1], cs[e], sn[e], out[e], out[e + 1]);
    }
}

#endif
