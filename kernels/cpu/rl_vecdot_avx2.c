/* rl_vecdot_avx2.c - AVX2+FMA+F16C vec_dot kernels, compiled per function
 * with target attributes so the build needs no global -mavx2; installed by
 * rl_types_init only when the CPU has them.
 *
 * Integer trick for signed x unsigned: _mm256_maddubs_epi16 wants u8 * s8, so
 * for signed weights we multiply |x| by y carrying x's sign (sign_epi8). That
 * is exact as long as y != -128, which our activation quantizers guarantee
 * (they produce -127..127); weights may be -128 (|x| = 128 as u8 is right). */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "rl_quant.h"

#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

AVX2 static inline float h2f(const uint8_t *p) { return _cvtsh_ss(rl_ld16(p)); }

/* Sum of 32 products of signed bytes, as 8 int32 lanes. */
AVX2 static inline __m256i dot_s8(__m256i x, __m256i y)
{
    __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

/* The 32 nibbles of a Q4_0 block, as signed bytes q-8 in element order. */
AVX2 static inline __m256i q4_0_unpack(const uint8_t *qs)
{
    __m128i q = _mm_loadu_si128((const __m128i *)qs), m = _mm_set1_epi8(0xF);
    __m128i lo = _mm_and_si128(q, m), hi = _mm_and_si128(_mm_srli_epi16(q, 4), m);
    return _mm256_sub_epi8(_mm256_set_m128i(hi, lo), _mm256_set1_epi8(8));
}

AVX2 static float vd_q8_0(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t nb = n / 32, i = 0;
    for (; i + 1 < nb; i += 2, x += 2 * RL_Q8_0_BYTES, y += 2 * RL_Q8_0_BYTES) {
        __m256i p0 = dot_s8(_mm256_loadu_si256((const __m256i *)(x + 2)), _mm256_loadu_si256((const __m256i *)(y + 2)));
        __m256i p1 = dot_s8(_mm256_loadu_si256((const __m256i *)(x + 36)), _mm256_loadu_si256((const __m256i *)(y + 36)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x) * h2f(y)), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x + 34) * h2f(y + 34)), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; i < nb; i++, x += RL_Q8_0_BYTES, y += RL_Q8_0_BYTES) {
        __m256i p = dot_s8(_mm256_loadu_si256((const __m256i *)(x + 2)), _mm256_loadu_si256((const __m256i *)(y + 2)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x) * h2f(y)), _mm256_cvtepi32_ps(p), acc0);
    }
    return hsum8(_mm256_add_ps(acc0, acc1));
}

AVX2 static float vd_q4_0(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t nb = n / 32, i = 0;
    for (; i + 1 < nb; i += 2, x += 2 * RL_Q4_0_BYTES, y += 2 * RL_Q8_0_BYTES) {
        __m256i p0 = dot_s8(q4_0_unpack(x + 2), _mm256_loadu_si256((const __m256i *)(y + 2)));
        __m256i p1 = dot_s8(q4_0_unpack(x + 20), _mm256_loadu_si256((const __m256i *)(y + 36)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x) * h2f(y)), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x + 18) * h2f(y + 34)), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; i < nb; i++, x += RL_Q4_0_BYTES, y += RL_Q8_0_BYTES) {
        __m256i p = dot_s8(q4_0_unpack(x + 2), _mm256_loadu_si256((const __m256i *)(y + 2)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x) * h2f(y)), _mm256_cvtepi32_ps(p), acc0);
    }
    return hsum8(_mm256_add_ps(acc0, acc1));
}

/* Q4_K (bits 4) and Q5_K (bits 5) against Q8_K. Unsigned q (0..31) times
 * signed y with maddubs (max 31*127*2, no saturation), then madd by the
 * sub-block scale accumulates exact int32 per super-block. The mins term
 * sum_j m_j * (sum of y in sub-block j) comes from the Q8_K group sums with
 * one madd (each min repeated for its two 16-element groups). */
AVX2 static inline float dot_kx(int64_t n, const uint8_t *x, const uint8_t *y, int bits)
{
    const __m256i m4 = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1);
    size_t bsz = bits == 4 ? RL_Q4_K_BYTES : RL_Q5_K_BYTES;
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / RL_QK_K; i++, x += bsz, y += RL_Q8_K_BYTES) {
        uint8_t sc[8], m[8];
        rl_kx_scales(x + 4, sc, m);
        __m128i m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)m));
        __m256i mm = _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
        __m256i msum = _mm256_madd_epi16(mm, _mm256_loadu_si256((const __m256i *)(y + 260)));
        const uint8_t *qs = x + (bits == 4 ? 16 : 48);
        __m256i qh = bits == 5 ? _mm256_loadu_si256((const __m256i *)(x + 16)) : _mm256_setzero_si256();
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if (bits == 5) {
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4));
                qh = _mm256_srli_epi16(qh, 2);
            }
            __m256i y0 = _mm256_loadu_si256((const __m256i *)(y + 4 + 64 * c));
            __m256i y1 = _mm256_loadu_si256((const __m256i *)(y + 36 + 64 * c));
            __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, y0), _mm256_set1_epi16(sc[2 * c]));
            __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, y1), _mm256_set1_epi16(sc[2 * c + 1]));
            sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(p0, p1));
        }
        float dy = rl_ldf(y);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dy * h2f(x)), _mm256_cvtepi32_ps(sumi), acc);
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dy * h2f(x + 2)), _mm256_cvtepi32_ps(msum), accm);
    }
    return hsum8(_mm256_sub_ps(acc, accm));
}

AVX2 static float vd_q4_k(int64_t n, const void *w, const void *a) { return dot_kx(n, w, a, 4); }
AVX2 static float vd_q5_k(int64_t n, const void *w, const void *a) { return dot_kx(n, w, a, 5); }

/* Q6_K: q in 0..63 (unsigned) times y via maddubs, scaled per 16 elements;
 * the -32 offset is applied once per block from the Q8_K group sums. */
AVX2 static float vd_q6_k(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    const __m256i m4 = _mm256_set1_epi8(0xF), m2 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / RL_QK_K; i++, x += RL_Q6_K_BYTES, y += RL_Q8_K_BYTES) {
        const int8_t *sc = (const int8_t *)(x + 192);
        int corr = 0;
        for (int g = 0; g < 16; g++) corr += sc[g] * rl_ldi16(y + 260 + 2 * g);
        __m256i sumi = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i l0 = _mm256_loadu_si256((const __m256i *)(x + 64 * h));
            __m256i l1 = _mm256_loadu_si256((const __m256i *)(x + 64 * h + 32));
            __m256i qh = _mm256_loadu_si256((const __m256i *)(x + 128 + 32 * h));
            __m256i q[4];
            q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4));
            q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4));
            q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4));
            q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4));
            for (int k = 0; k < 4; k++) {
                const int8_t *S = sc + 8 * h + 2 * k;
                __m256i yk = _mm256_loadu_si256((const __m256i *)(y + 4 + 128 * h + 32 * k));
                __m256i s = _mm256_set_m128i(_mm_set1_epi16(S[1]), _mm_set1_epi16(S[0]));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], yk), s));
            }
        }
        sumi = _mm256_sub_epi32(sumi, _mm256_setr_epi32(32 * corr, 0, 0, 0, 0, 0, 0, 0));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(rl_ldf(y) * h2f(x + 208)), _mm256_cvtepi32_ps(sumi), acc);
    }
    return hsum8(acc);
}

AVX2 static float vd_f32(int64_t n, const void *w, const void *a)
{
    const float *x = w, *y = a;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
    }
    float s = hsum8(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += x[i] * y[i];
    return s;
}

AVX2 static float vd_f16(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w;
    const float *y = a;
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + 2 * i)));
        __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + 2 * i + 16)));
        a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(y + i + 8), a1);
    }
    float s = hsum8(_mm256_add_ps(a0, a1));
    for (; i < n; i++) s += h2f(x + 2 * i) * y[i];
    return s;
}

AVX2 static float vd_bf16(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w;
    const float *y = a;
    __m256 a0 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(x + 2 * i)));
        a0 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(v, 16)), _mm256_loadu_ps(y + i), a0);
    }
    float s = hsum8(a0);
    for (; i < n; i++) s += rl_bf16_to_fp32(rl_ld16(x + 2 * i)) * y[i];
    return s;
}

void rl_vd_select_avx2(rl_type_traits *t)
{
    t[RL_TYPE_F32].vec_dot = vd_f32;
    t[RL_TYPE_F16].vec_dot = vd_f16;
    t[RL_TYPE_BF16].vec_dot = vd_bf16;
    t[RL_TYPE_Q8_0].vec_dot = vd_q8_0;
    t[RL_TYPE_Q4_0].vec_dot = vd_q4_0;
    t[RL_TYPE_Q4_K].vec_dot = vd_q4_k;
    t[RL_TYPE_Q5_K].vec_dot = vd_q5_k;
    t[RL_TYPE_Q6_K].vec_dot = vd_q6_k;
}
#else
#include "rl_quant.h"
void rl_vd_select_avx2(rl_type_traits *t) { (void)t; }
#endif
