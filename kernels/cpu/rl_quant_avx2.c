/* rl_quant_avx2.c - AVX2/F16C row converters for the per-token hot path:
 * F16 <-> F32 (KV caches, embeddings) and the activation quantizers Q8_0 and
 * Q8_K. Each gives bit-identical output to its scalar twin in
 * rl_quant_basic.c / rl_quant_k.c (same scale arithmetic; cvtps rounds to
 * nearest-even like rl_qround), which the tests check. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#include <math.h>

#include "rl_quant.h"

#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX2 static void f16_to_float(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i))));
    for (; i < n; i++) dst[i] = _cvtsh_ss(rl_ld16(p + 2 * i));
}

AVX2 static void f16_from_float(const float *src, void *dst, int64_t n)
{
    uint8_t *p = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(p + 2 * i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) {
        uint16_t h = rl_fp32_to_fp16(src[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

/* Largest |x| over 32 floats (NaN lanes ignored, as fmaxf does). */
AVX2 static inline float amax32(const float *x)
{
    const __m256 abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < 32; k += 8) m = _mm256_max_ps(_mm256_and_ps(_mm256_loadu_ps(x + k), abs), m); /* NaN -> m */
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* 32 floats times id, rounded to nearest-even and clamped to -127..127, as bytes.
 * NaN becomes INT_MIN in cvtps and is clamped to -127, the scalar rl_qround's lo. */
AVX2 static inline __m256i q8_32(const float *x, float id)
{
    __m256 s = _mm256_set1_ps(id), lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    __m256i v[4];
    for (int k = 0; k < 4; k++) {
        __m256 f = _mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), s);
        f = _mm256_min_ps(_mm256_max_ps(f, lo), hi); /* max returns its 2nd operand on NaN: lo */
        v[k] = _mm256_cvtps_epi32(f);
    }
    __m256i a = _mm256_packs_epi32(v[0], v[1]), b = _mm256_packs_epi32(v[2], v[3]);
    __m256i q = _mm256_packs_epi16(a, b); /* lanes interleaved by the packs: restore order */
    return _mm256_permutevar8x32_epi32(q, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

AVX2 static void q8_0_from_float(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 32; i++, b += RL_Q8_0_BYTES) {
        const float *x = src + 32 * i;
        uint16_t dh = rl_fp32_to_fp16(amax32(x) / 127.0f);
        memcpy(b, &dh, 2);
        float d = rl_fp16_to_fp32(dh), id = d != 0 ? 1.0f / d : 0.0f;
        _mm256_storeu_si256((__m256i *)(b + 2), q8_32(x, id));
    }
}

AVX2 static void q8_k_from_float(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / RL_QK_K; i++, b += RL_Q8_K_BYTES) {
        const float *x = src + RL_QK_K * i;
        float amax = 0;
        for (int k = 0; k < RL_QK_K; k += 32) amax = fmaxf(amax, amax32(x + k));
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0;
        memcpy(b, &d, 4);
        for (int k = 0; k < RL_QK_K; k += 32) {
            __m256i q = q8_32(x + k, id);
            _mm256_storeu_si256((__m256i *)(b + 4 + k), q);
            /* Sums of each 16 bytes: widen to int16 and add pairs horizontally. */
            __m256i w0 = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(q));
            __m256i w1 = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(q, 1));
            __m256i s = _mm256_hadd_epi16(w0, w1); /* 8 pair sums of w0, 8 of w1, by 128-bit lane */
            s = _mm256_hadd_epi16(s, s);
            s = _mm256_hadd_epi16(s, s);
            int16_t s0 = (int16_t)(_mm256_extract_epi16(s, 0) + _mm256_extract_epi16(s, 8));
            int16_t s1 = (int16_t)(_mm256_extract_epi16(s, 1) + _mm256_extract_epi16(s, 9));
            memcpy(b + 260 + 2 * (k / 16), &s0, 2);
            memcpy(b + 262 + 2 * (k / 16), &s1, 2);
        }
    }
}

void rl_quant_select_avx2(rl_type_traits *t)
{
    t[RL_TYPE_F16].to_float = f16_to_float;
    t[RL_TYPE_F16].from_float = f16_from_float;
    t[RL_TYPE_Q8_0].from_float = q8_0_from_float;
    t[RL_TYPE_Q8_K].from_float = q8_k_from_float;
}
#else
#include "rl_quant.h"
void rl_quant_select_avx2(rl_type_traits *t) { (void)t; }
#endif
