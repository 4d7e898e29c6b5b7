/* rl_quant.h - private to kernels/cpu: block layouts (as byte offsets, so a
 * block at any address is read without misaligned access), row converters and
 * vec_dot kernels that fill the traits table in rl_types.c.
 *
 * Layouts (little-endian, f16 = IEEE half):
 *   Q8_0  32 el,  34 B: f16 d | i8 qs[32]                 x = d*q
 *   Q4_0  32 el,  18 B: f16 d | u8 qs[16]                 x = d*(q-8); qs[i] low nibble = el i, high = el i+16
 *   Q4_1, Q5_0, Q5_1 (32 el, 20/22/24 B): see rl_quant_legacy.c
 *   Q4_K 256 el, 144 B: f16 d | f16 dmin | u8 scales[12] | u8 qs[128]
 *         8 sub-blocks of 32: x = d*sc[j]*q - dmin*m[j], 6-bit sc/m packed (see rl_q4k_scale_min);
 *         qs[32c+l]: low nibble = el 64c+l, high nibble = el 64c+32+l (c = 0..3, l = 0..31)
 *   Q5_K 256 el, 176 B: f16 d | f16 dmin | u8 scales[12] | u8 qh[32] | u8 qs[128]
 *         as Q4_K plus a fifth bit: el 64c+l takes bit 2c of qh[l], el 64c+32+l takes bit 2c+1
 *   Q6_K 256 el, 210 B: u8 ql[128] | u8 qh[64] | i8 scales[16] | f16 d
 *         x = d*scales[e/16]*(q-32), q 6-bit; for half h (128 el), l = 0..31:
 *         el 128h+l    : ql[64h+l] low  | qh[32h+l] bits 0-1
 *         el 128h+32+l : ql[64h+32+l] low | qh bits 2-3
 *         el 128h+64+l : ql[64h+l] high | qh bits 4-5
 *         el 128h+96+l : ql[64h+32+l] high | qh bits 6-7
 *   Q8_K 256 el, 292 B: f32 d | i8 qs[256] | i16 bsums[16] (sum of each 16 qs)
 */
#ifndef RL_QUANT_H
#define RL_QUANT_H

#include <math.h>
#include <string.h>

#include "rl_types.h"

#define RL_Q8_0_BYTES 34
#define RL_Q4_0_BYTES 18
#define RL_Q4_1_BYTES 20
#define RL_Q5_0_BYTES 22
#define RL_Q5_1_BYTES 24
#define RL_Q4_K_BYTES 144
#define RL_Q5_K_BYTES 176
#define RL_Q6_K_BYTES 210
#define RL_Q8_K_BYTES 292
#define RL_QK_K 256

static inline uint16_t rl_ld16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline float rl_ldh(const uint8_t *p) { return rl_fp16_to_fp32(rl_ld16(p)); }
static inline float rl_ldf(const uint8_t *p) { float v; memcpy(&v, p, 4); return v; }
static inline int16_t rl_ldi16(const uint8_t *p) { int16_t v; memcpy(&v, p, 2); return v; }

/* The value of largest magnitude among n (the first of equals; 0 when all
 * are 0 or NaN): the symmetric quantizers map it to their most negative step. */
static inline float rl_absmax_value(const float *x, int n)
{
    float amax = 0, vmax = 0;
    for (int j = 0; j < n; j++)
        if (fabsf(x[j]) > amax) {
            amax = fabsf(x[j]);
            vmax = x[j];
        }
    return vmax;
}

/* round(v) clamped to [lo, hi] (|lo|, |hi| < 2^22), NaN -> lo. Adding and
 * subtracting 1.5 * 2^23 rounds to nearest-even in the default rounding mode
 * without a libm call (nearbyintf is a call on baseline x86-64). */
static inline int rl_qround(float v, float lo, float hi)
{
    if (!(v >= lo)) v = lo;
    if (v > hi) v = hi;
    return (int)((v + 12582912.0f) - 12582912.0f); /* not folded: the build has no -ffast-math */
}

/* 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes of Q4_K/Q5_K. */
static inline void rl_q4k_scale_min(const uint8_t *s, int j, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        *m = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

/* The 8 scales and 8 mins of a Q4_K/Q5_K block from its 12 packed bytes, as
 * two 8-byte vectors, with 32-bit word arithmetic (A, B, C = bytes 0-3, 4-7, 8-11):
 * sc0-3 = A & 63, m0-3 = B & 63, sc4-7 = (C & 15) | (A >> 6) << 4, m4-7 = (C >> 4) | (B >> 6) << 4. */
static inline void rl_kx_scales(const uint8_t *p, uint8_t sc[8], uint8_t m[8])
{
    uint32_t A, B, C, u[4];
    memcpy(&A, p, 4);
    memcpy(&B, p + 4, 4);
    memcpy(&C, p + 8, 4);
    u[0] = A & 0x3f3f3f3fu;
    u[1] = (C & 0x0f0f0f0fu) | (((A >> 6) & 0x03030303u) << 4);
    u[2] = B & 0x3f3f3f3fu;
    u[3] = ((C >> 4) & 0x0f0f0f0fu) | (((B >> 6) & 0x03030303u) << 4);
    memcpy(sc, u, 8);
    memcpy(m, u + 2, 8);
}

/* rl_quant_basic.c */
void rl_f32_to_float(const void *src, float *dst, int64_t n);
void rl_f32_from_float(const float *src, void *dst, int64_t n);
void rl_f16_to_float(const void *src, float *dst, int64_t n);
void rl_f16_from_float(const float *src, void *dst, int64_t n);
void rl_bf16_to_float(const void *src, float *dst, int64_t n);
void rl_bf16_from_float(const float *src, void *dst, int64_t n);
void rl_q8_0_to_float(const void *src, float *dst, int64_t n);
void rl_q8_0_from_float(const float *src, void *dst, int64_t n);
void rl_q4_0_to_float(const void *src, float *dst, int64_t n);
void rl_q4_0_from_float(const float *src, void *dst, int64_t n);
/* rl_quant_legacy.c: Q4_1, Q5_0, Q5_1 (vec_dot against Q8_0) */
void rl_q4_1_to_float(const void *src, float *dst, int64_t n);
void rl_q4_1_from_float(const float *src, void *dst, int64_t n);
float rl_vd_q4_1_ref(int64_t n, const void *w, const void *a);
void rl_q5_0_to_float(const void *src, float *dst, int64_t n);
void rl_q5_0_from_float(const float *src, void *dst, int64_t n);
float rl_vd_q5_0_ref(int64_t n, const void *w, const void *a);
void rl_q5_1_to_float(const void *src, float *dst, int64_t n);
void rl_q5_1_from_float(const float *src, void *dst, int64_t n);
float rl_vd_q5_1_ref(int64_t n, const void *w, const void *a);
/* rl_quant_k.c */
void rl_q4_k_to_float(const void *src, float *dst, int64_t n);
void rl_q4_k_from_float(const float *src, void *dst, int64_t n);
void rl_q5_k_to_float(const void *src, float *dst, int64_t n);
void rl_q5_k_from_float(const float *src, void *dst, int64_t n);
void rl_q6_k_to_float(const void *src, float *dst, int64_t n);
void rl_q6_k_from_float(const float *src, void *dst, int64_t n);
void rl_q8_k_to_float(const void *src, float *dst, int64_t n);
void rl_q8_k_from_float(const float *src, void *dst, int64_t n);
/* rl_vecdot_ref.c: plain scalar references */
float rl_vd_f32_ref(int64_t n, const void *w, const void *a);
float rl_vd_f16_ref(int64_t n, const void *w, const void *a);
float rl_vd_bf16_ref(int64_t n, const void *w, const void *a);
float rl_vd_q8_0_ref(int64_t n, const void *w, const void *a);
float rl_vd_q4_0_ref(int64_t n, const void *w, const void *a);
float rl_vd_q4_k_ref(int64_t n, const void *w, const void *a);
float rl_vd_q5_k_ref(int64_t n, const void *w, const void *a);
float rl_vd_q6_k_ref(int64_t n, const void *w, const void *a);
/* rl_vecdot_avx2.c / rl_vecdot_vnni.c: install faster kernels into the table. */
void rl_vd_select_avx2(rl_type_traits *table);
void rl_vd_select_vnni(rl_type_traits *table);
/* rl_quant_avx2.c: F16 conversions and Q8_0/Q8_K quantizers, bit-identical to the scalar ones. */
void rl_quant_select_avx2(rl_type_traits *table);

#endif
