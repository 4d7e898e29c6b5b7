/* rl_vecdot_vnni.c - AVX-512 VNNI (256-bit, AVX512VL) kernels for Q8_0 and
 * Q4_0: vpdpbusd does the u8 x s8 multiply and the 4-way int32 sum in one
 * instruction (replacing maddubs + madd). Q8_0 uses the sign trick of
 * rl_vecdot_avx2.c (|x| as u8 times y carrying x's sign, exact for y in
 * -127..127); Q4_0 feeds its unsigned nibbles directly (see q4_0_dot). */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#include "rl_quant.h"

#define VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512vnni")))

VNNI static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

VNNI static inline float h2f(const uint8_t *p) { return _cvtsh_ss(rl_ld16(p)); }

VNNI static inline __m256i dot_s8(__m256i x, __m256i y)
{
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
}

VNNI static float vd_q8_0(int64_t n, const void *w, const void *a)
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

/* Q4_0: weights stay unsigned (0..15) so vpdpbusd takes them directly;
 * sum((q-8)*y) = sum(q*y) - sum(8*y), the second also one vpdpbusd. */
VNNI static inline __m256i q4_0_dot(const uint8_t *qs, __m256i y)
{
    __m128i q = _mm_loadu_si128((const __m128i *)qs), m = _mm_set1_epi8(0xF);
    __m256i x = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), m), _mm_and_si128(q, m));
    __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), x, y);
    return _mm256_sub_epi32(p, _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), y));
}

VNNI static float vd_q4_0(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t nb = n / 32, i = 0;
    for (; i + 1 < nb; i += 2, x += 2 * RL_Q4_0_BYTES, y += 2 * RL_Q8_0_BYTES) {
        __m256i p0 = q4_0_dot(x + 2, _mm256_loadu_si256((const __m256i *)(y + 2)));
        __m256i p1 = q4_0_dot(x + 20, _mm256_loadu_si256((const __m256i *)(y + 36)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x) * h2f(y)), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x + 18) * h2f(y + 34)), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; i < nb; i++, x += RL_Q4_0_BYTES, y += RL_Q8_0_BYTES) {
        __m256i p = q4_0_dot(x + 2, _mm256_loadu_si256((const __m256i *)(y + 2)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x) * h2f(y)), _mm256_cvtepi32_ps(p), acc0);
    }
    return hsum8(_mm256_add_ps(acc0, acc1));
}

void rl_vd_select_vnni(rl_type_traits *t)
{
    t[RL_TYPE_Q8_0].vec_dot = vd_q8_0;
    t[RL_TYPE_Q4_0].vec_dot = vd_q4_0;
}
#else
#include "rl_quant.h"
void rl_vd_select_vnni(rl_type_traits *t) { (void)t; }
#endif
