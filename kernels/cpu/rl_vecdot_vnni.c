/* rl_vecdot_vnni.c - AVX-512 VNNI (256-bit, AVX512VL) kernels for Q8_0,
 * Q4_0, Q4_K and Q5_K: vpdpbusd does the u8 x s8 multiply and the 4-way int32
 * sum in one instruction (replacing maddubs + madd). Q8_0 uses the sign trick
 * of rl_vecdot_avx2.c (|x| as u8 times y carrying x's sign, exact for y in
 * -127..127); Q4_0 and the K-quants feed their unsigned values directly. */
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

/* Q4_K (bits 4) / Q5_K (bits 5) against Q8_K: one vpdpbusd per 32-element
 * sub-block into its own int32 vector, no per-sub-block scale multiply; the
 * eight vectors are reduced together (hadd tree) to [s0..s7], multiplied by
 * the eight 6-bit scales once, converted and accumulated. The mins term is as
 * in rl_vecdot_avx2.c (one madd with the Q8_K group sums). */
VNNI static inline float dot_kx(int64_t n, const uint8_t *x, const uint8_t *y, int bits)
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
        __m256i d[8];
        for (int c = 0; c < 4; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if (bits == 5) {
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4));
                qh = _mm256_srli_epi16(qh, 2);
            }
            d[2 * c] = _mm256_dpbusd_epi32(_mm256_setzero_si256(), lo, _mm256_loadu_si256((const __m256i *)(y + 4 + 64 * c)));
            d[2 * c + 1] = _mm256_dpbusd_epi32(_mm256_setzero_si256(), hi, _mm256_loadu_si256((const __m256i *)(y + 36 + 64 * c)));
        }
        /* hadd tree: per 128-bit lane [s0 s1 s2 s3] and [s4 s5 s6 s7] partial sums, then add the lanes. */
        __m256i h0 = _mm256_hadd_epi32(_mm256_hadd_epi32(d[0], d[1]), _mm256_hadd_epi32(d[2], d[3]));
        __m256i h1 = _mm256_hadd_epi32(_mm256_hadd_epi32(d[4], d[5]), _mm256_hadd_epi32(d[6], d[7]));
        __m256i sums = _mm256_add_epi32(_mm256_permute2x128_si256(h0, h1, 0x20), _mm256_permute2x128_si256(h0, h1, 0x31));
        __m256i sumi = _mm256_mullo_epi32(sums, _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)sc)));
        float dy = rl_ldf(y);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dy * h2f(x)), _mm256_cvtepi32_ps(sumi), acc);
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dy * h2f(x + 2)), _mm256_cvtepi32_ps(msum), accm);
    }
    return hsum8(_mm256_sub_ps(acc, accm));
}

VNNI static float vd_q4_k(int64_t n, const void *w, const void *a) { return dot_kx(n, w, a, 4); }
VNNI static float vd_q5_k(int64_t n, const void *w, const void *a) { return dot_kx(n, w, a, 5); }

/* Many Q4_0 rows against one activation row. What depends only on the
 * activations is computed once: each block's scale dy and its offset term
 * dy*8*sum(y). Per weight block that leaves the unpack, one vpdpbusd, the
 * conversion and one FMA; the offset is a scalar FMA with the weight scale:
 *   dot = sum_b dx_b*dy_b*sum(q*y) - sum_b dx_b*(dy_b*8*sum(y_b)). */
#define ROWS_MAX_BLOCKS 1024
static void rows_q4_0(int64_t n, const void *w, size_t rs, int64_t nr, const void *a, float *out);

VNNI static float q4_0_row_pre(int64_t nb, const uint8_t *x, const uint8_t *y, const float *dy, const float *corr)
{
    const __m128i m4 = _mm_set1_epi8(0xF);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    float c0 = 0, c1 = 0;
    int64_t i = 0;
    for (; i + 1 < nb; i += 2, x += 2 * RL_Q4_0_BYTES) {
        __m128i q0 = _mm_loadu_si128((const __m128i *)(x + 2)), q1 = _mm_loadu_si128((const __m128i *)(x + 20));
        __m256i v0 = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q0, 4), m4), _mm_and_si128(q0, m4));
        __m256i v1 = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q1, 4), m4), _mm_and_si128(q1, m4));
        __m256i p0 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), v0, _mm256_loadu_si256((const __m256i *)(y + 34 * i + 2)));
        __m256i p1 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), v1, _mm256_loadu_si256((const __m256i *)(y + 34 * i + 36)));
        float dx0 = h2f(x), dx1 = h2f(x + 18);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(dx0 * dy[i]), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(dx1 * dy[i + 1]), _mm256_cvtepi32_ps(p1), acc1);
        c0 += dx0 * corr[i];
        c1 += dx1 * corr[i + 1];
    }
    for (; i < nb; i++, x += RL_Q4_0_BYTES) {
        __m128i q0 = _mm_loadu_si128((const __m128i *)(x + 2));
        __m256i v0 = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q0, 4), m4), _mm_and_si128(q0, m4));
        __m256i p0 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), v0, _mm256_loadu_si256((const __m256i *)(y + 34 * i + 2)));
        float dx0 = h2f(x);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(dx0 * dy[i]), _mm256_cvtepi32_ps(p0), acc0);
        c0 += dx0 * corr[i];
    }
    return hsum8(_mm256_add_ps(acc0, acc1)) - (c0 + c1);
}

VNNI static void rows_q4_0(int64_t n, const void *w, size_t rs, int64_t nr, const void *a, float *out)
{
    const uint8_t *x = w, *y = a;
    int64_t nb = n / 32;
    if (nb > ROWS_MAX_BLOCKS) {
        for (int64_t r = 0; r < nr; r++) out[r] = vd_q4_0(n, x + (size_t)r * rs, a);
        return;
    }
    float dy[ROWS_MAX_BLOCKS], corr[ROWS_MAX_BLOCKS];
    const __m256i eight = _mm256_set1_epi8(8);
    for (int64_t i = 0; i < nb; i++) {
        __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), eight, _mm256_loadu_si256((const __m256i *)(y + 34 * i + 2)));
        dy[i] = h2f(y + 34 * i);
        corr[i] = dy[i] * hsum8(_mm256_cvtepi32_ps(s)); /* exact: |8*sum(y)| < 2^24 */
    }
    for (int64_t r = 0; r < nr; r++) out[r] = q4_0_row_pre(nb, x + (size_t)r * rs, y, dy, corr);
}

/* Many Q8_0 rows: the activation block scales are converted once per call. */
VNNI static float q8_0_row_pre(int64_t nb, const uint8_t *x, const uint8_t *y, const float *dy)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 1 < nb; i += 2, x += 2 * RL_Q8_0_BYTES) {
        __m256i p0 = dot_s8(_mm256_loadu_si256((const __m256i *)(x + 2)), _mm256_loadu_si256((const __m256i *)(y + 34 * i + 2)));
        __m256i p1 = dot_s8(_mm256_loadu_si256((const __m256i *)(x + 36)), _mm256_loadu_si256((const __m256i *)(y + 34 * i + 36)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x) * dy[i]), _mm256_cvtepi32_ps(p0), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x + 34) * dy[i + 1]), _mm256_cvtepi32_ps(p1), acc1);
    }
    for (; i < nb; i++, x += RL_Q8_0_BYTES) {
        __m256i p = dot_s8(_mm256_loadu_si256((const __m256i *)(x + 2)), _mm256_loadu_si256((const __m256i *)(y + 34 * i + 2)));
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x) * dy[i]), _mm256_cvtepi32_ps(p), acc0);
    }
    return hsum8(_mm256_add_ps(acc0, acc1));
}

VNNI static void rows_q8_0(int64_t n, const void *w, size_t rs, int64_t nr, const void *a, float *out)
{
    const uint8_t *x = w, *y = a;
    int64_t nb = n / 32;
    if (nb > ROWS_MAX_BLOCKS) {
        for (int64_t r = 0; r < nr; r++) out[r] = vd_q8_0(n, x + (size_t)r * rs, a);
        return;
    }
    float dy[ROWS_MAX_BLOCKS];
    for (int64_t i = 0; i < nb; i++) dy[i] = h2f(y + 34 * i);
    for (int64_t r = 0; r < nr; r++) out[r] = q8_0_row_pre(nb, x + (size_t)r * rs, y, dy);
}

void rl_vd_select_vnni(rl_type_traits *t)
{
    t[RL_TYPE_Q8_0].vec_dot_rows = rows_q8_0;
    t[RL_TYPE_Q4_0].vec_dot_rows = rows_q4_0;
    t[RL_TYPE_Q4_K].vec_dot = vd_q4_k;
    t[RL_TYPE_Q5_K].vec_dot = vd_q5_k;
    t[RL_TYPE_Q8_0].vec_dot = vd_q8_0;
    t[RL_TYPE_Q4_0].vec_dot = vd_q4_0;
}
#else
#include "rl_quant.h"
void rl_vd_select_vnni(rl_type_traits *t) { (void)t; }
#endif
