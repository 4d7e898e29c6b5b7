/* rl_gemm_q.c - int8 micro-kernels: up to 4 weight rows x 4 tokens of Q4_0 or
 * Q8_0 weights against Q8_0 activations, with AVX-512 VNNI.
 *
 * Trick 1: two 32-element blocks per 512-bit register; each weight register
 * is reused for 4 tokens and each activation register for 4 rows.
 * Trick 2: activations are repacked once per matmul into what the inner loop
 * wants per pair of blocks: 64 quant bytes, the two scales already broadcast
 * to 16 lanes, and -8 * (sums of 4 quants) for Q4_0. The pair is laid out in
 * 16-byte quarters [b0 0..15 | b1 0..15 | b0 16..31 | b1 16..31], the order
 * in which two Q4_0 blocks unpack most cheaply (low nibbles of both blocks,
 * then high nibbles); scales follow the same quarters.
 * vpdpbusd needs one unsigned operand:
 *   Q4_0: w in 0..15 (unsigned) . a (signed), the accumulator started at
 *         -8 * sum(a), giving sum((w - 8) * a) exactly;
 *   Q8_0: (w + 128) (unsigned) . a (signed), started at -128 * sum(a);
 * both sums are per token, so they are stored with the packed activations.
 * Every (row, token) output goes through the same instruction sequence for
 * any tile shape, so results do not depend on batching. */
#include "rl_gemm.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define RL_QP_PAIR 256 /* packed bytes per token per pair of blocks: quants, scales, -8 sum, -128 sum */

size_t rl_gemm_q_packed_row(int64_t k)
{
    return (size_t)((k / 32 + 1) / 2) * RL_QP_PAIR;
}

#if defined(__x86_64__)
#include <immintrin.h>

#define RL_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,avx2,fma")))
#define UNROLL _Pragma("GCC unroll 16")

/* Every tile shape up to RL_GEMM_TILE_R rows x RL_GEMM_TILE_T tokens. */
#if RL_GEMM_TILE_R == 2 && RL_GEMM_TILE_T == 8
#define FOR_TILES(X) X(1, 1) X(1, 2) X(1, 3) X(1, 4) X(1, 5) X(1, 6) X(1, 7) X(1, 8) \
                     X(2, 1) X(2, 2) X(2, 3) X(2, 4) X(2, 5) X(2, 6) X(2, 7) X(2, 8)
#elif RL_GEMM_TILE_R == 4 && RL_GEMM_TILE_T == 4
#define FOR_TILES(X) X(1, 1) X(1, 2) X(1, 3) X(1, 4) X(2, 1) X(2, 2) X(2, 3) X(2, 4) \
                     X(3, 1) X(3, 2) X(3, 3) X(3, 4) X(4, 1) X(4, 2) X(4, 3) X(4, 4)
#elif RL_GEMM_TILE_R == 1 && RL_GEMM_TILE_T == 16
#define FOR_TILES(X) X(1, 1) X(1, 2) X(1, 3) X(1, 4) X(1, 5) X(1, 6) X(1, 7) X(1, 8) \
                     X(1, 9) X(1, 10) X(1, 11) X(1, 12) X(1, 13) X(1, 14) X(1, 15) X(1, 16)
#endif
#ifndef PF_ROWS
#define PF_ROWS 8
#endif
#define Q80_BYTES 34
#define Q40_BYTES 18

/* Half scales h0, h1 -> 16 floats in quarter order [h0 x4, h1 x4, h0 x4, h1 x4]. */
RL_VNNI static inline __m512 quarter_scales(uint16_t h0, uint16_t h1)
{
    __m128i v = _mm_unpacklo_epi64(_mm_set1_epi16((short)h0), _mm_set1_epi16((short)h1));
    return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(v), v, 1));
}

RL_VNNI static inline __m512 quarter_scales_at(const uint8_t *p0, const uint8_t *p1)
{
    uint16_t h0, h1;
    memcpy(&h0, p0, 2);
    memcpy(&h1, p1, 2);
    return quarter_scales(h0, h1);
}

/* Two blocks of 32 quants (natural order, as a0|a1 halves) -> quarter order. */
RL_VNNI static inline __m512i to_quarters(__m512i v)
{
    return _mm512_shuffle_i64x2(v, v, _MM_SHUFFLE(3, 1, 2, 0));
}

/* One Q8_0 row of k values -> packed pairs (an odd last block pairs with zeros). */
RL_VNNI static void pack_row(const uint8_t *src, uint8_t *dst, int64_t nb)
{
    const __m512i ones = _mm512_set1_epi8(1);
    static const uint8_t zero_block[Q80_BYTES];
    for (int64_t b = 0; b < nb; b += 2, dst += RL_QP_PAIR) {
        const uint8_t *p0 = src + b * Q80_BYTES, *p1 = b + 1 < nb ? p0 + Q80_BYTES : zero_block;
        __m512i q = to_quarters(_mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p0 + 2))),
                                                   _mm256_loadu_si256((const __m256i *)(p1 + 2)), 1));
        __m512 s = quarter_scales_at(p0, p1);
        __m512i sum8 = _mm512_sub_epi32(_mm512_setzero_si512(),
                                        _mm512_slli_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, q), 3));
        _mm512_storeu_si512(dst, q);
        _mm512_storeu_ps(dst + 64, s);
        _mm512_storeu_si512(dst + 128, sum8);
        _mm512_storeu_si512(dst + 192, _mm512_slli_epi32(sum8, 4)); /* -128 * sum */
    }
}

/* Quantize 32 floats to Q8_0 exactly as the traits' from_float does (scale
 * amax/127 rounded to half, quants round-to-nearest-even of x / scale,
 * clamped to +-127), returning the quants; *dh gets the half scale. */
RL_VNNI static inline __m256i quant32(const float *x, uint16_t *dh)
{
    const __m512 sign = _mm512_set1_ps(-0.f);
    __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
    __m512 ax = _mm512_max_ps(_mm512_andnot_ps(sign, x0), _mm512_andnot_ps(sign, x1));
    float amax = _mm512_reduce_max_ps(ax);
    *dh = _cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    float d = _cvtsh_ss(*dh), id = d != 0 ? 1.0f / d : 0.0f;
    __m512 vid = _mm512_set1_ps(id), lo = _mm512_set1_ps(-127.f), hi = _mm512_set1_ps(127.f);
    __m512i q0 = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(x0, vid), lo), hi));
    __m512i q1 = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(x1, vid), lo), hi));
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm512_cvtepi32_epi8(q0)), _mm512_cvtepi32_epi8(q1), 1);
}

/* Floats -> packed pairs directly (same bytes as from_float then pack_row). */
RL_VNNI static void quant_pack_row(const float *x, uint8_t *dst, int64_t nb)
{
    const __m512i ones = _mm512_set1_epi8(1);
    for (int64_t b = 0; b < nb; b += 2, dst += RL_QP_PAIR) {
        uint16_t h0, h1 = 0;
        __m256i q0 = quant32(x + b * 32, &h0), q1 = _mm256_setzero_si256();
        if (b + 1 < nb)
            q1 = quant32(x + b * 32 + 32, &h1);
        __m512i q = to_quarters(_mm512_inserti64x4(_mm512_castsi256_si512(q0), q1, 1));
        __m512i sum8 = _mm512_sub_epi32(_mm512_setzero_si512(),
                                        _mm512_slli_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, q), 3));
        _mm512_storeu_si512(dst, q);
        _mm512_storeu_ps(dst + 64, quarter_scales(h0, h1));
        _mm512_storeu_si512(dst + 128, sum8);
        _mm512_storeu_si512(dst + 192, _mm512_slli_epi32(sum8, 4)); /* -128 * sum */
    }
}

/* Two Q4_0 blocks at p (the second absent when last) -> 64 nibbles in quarter
 * order: low nibbles of both blocks (elements 0..15), then high (16..31). */
RL_VNNI static inline __m512i q4_pair_unpack(const uint8_t *p, bool last)
{
    __m128i x0 = _mm_loadu_si128((const __m128i *)(p + 2));
    __m256i x = last ? _mm256_castsi128_si256(x0)
                     : _mm256_inserti128_si256(_mm256_castsi128_si256(x0), _mm_loadu_si128((const __m128i *)(p + 20)), 1);
    if (last)
        x = _mm256_inserti128_si256(x, _mm_setzero_si128(), 1);
    const __m256i m = _mm256_set1_epi8(0x0f);
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(x, m)),
                              _mm256_and_si256(_mm256_srli_epi16(x, 4), m), 1);
}

/* Scales of the pair at p: one 32-byte load holds both halves (words 0 and
 * 9 for Q4_0, 0 and 17 of 64 bytes for Q8_0); a word permute spreads them. */
RL_VNNI static inline __m512 q4_pair_scales(const uint8_t *p, bool last)
{
    if (last)
        return quarter_scales_at(p, p);
    const __m256i idx = _mm256_setr_epi16(0, 0, 0, 0, 9, 9, 9, 9, 0, 0, 0, 0, 9, 9, 9, 9);
    return _mm512_cvtph_ps(_mm256_permutexvar_epi16(idx, _mm256_loadu_si256((const __m256i *)p)));
}

RL_VNNI static inline __m512 q8_pair_scales(const uint8_t *p, bool last)
{
    if (last)
        return quarter_scales_at(p, p);
    const __m512i idx = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                         17, 17, 17, 17, 0, 0, 0, 0, 17, 17, 17, 17, 0, 0, 0, 0);
    return _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(idx, _mm512_loadu_si512(p))));
}

RL_VNNI static inline __m512i join(__m256i a, __m256i b)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

/* The tile body: W rows of WB-byte blocks; LOAD_W(p, last) fills wv, ws (and
 * init for Q8_0) for the pair at p; last: only one block left. */
#define TILE_BODY(NR, NT, PAIR)                                                                       \
    __m512 acc[NR][NT];                                                                               \
    UNROLL for (int r = 0; r < NR; r++)                                                               \
        UNROLL for (int t = 0; t < NT; t++)                                                           \
            acc[r][t] = _mm512_setzero_ps();                                                          \
    int64_t np = (nb + 1) / 2;                                                                        \
    for (int64_t i = 0; i < np; i++) {                                                                \
        bool last = i * 2 + 1 == nb;                                                                  \
        const uint8_t *ap = A + (size_t)i * RL_QP_PAIR;                                               \
        UNROLL for (int r = 0; r < NR; r++) {                                                         \
            const uint8_t *p = W + r * w_stride + (size_t)i * 2 * WB;                                 \
            /* the rows of the next tile: short interleaved streams defeat the hardware prefetcher */  \
            _mm_prefetch((const char *)(p + PF_ROWS * w_stride), _MM_HINT_T0);                        \
            PAIR(NT)                                                                                  \
        }                                                                                             \
    }                                                                                                 \
    UNROLL for (int r = 0; r < NR; r++)                                                               \
        UNROLL for (int t = 0; t < NT; t++)                                                           \
            y[t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);

#define WB Q40_BYTES
#define Q4_PAIR(NT)                                                                                     \
    __m512i wv = q4_pair_unpack(p, last);                                                             \
    __m512 ws = q4_pair_scales(p, last);                                                              \
    UNROLL for (int t = 0; t < NT; t++) {                                                             \
        const uint8_t *a = ap + t * a_stride;                                                         \
        __m512i isum = _mm512_dpbusd_epi32(_mm512_loadu_si512(a + 128), wv, _mm512_loadu_si512(a)); \
        __m512 sc = _mm512_mul_ps(ws, _mm512_loadu_ps(a + 64));                                       \
        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), sc, acc[r][t]);                         \
    }
#define DEF_Q4(NR, NT)                                                                                \
    RL_VNNI static void q4_0_tile_##NR##x##NT(int64_t nb, const uint8_t *W, size_t w_stride,         \
                                                const uint8_t *A, size_t a_stride, float *y, size_t ldy) \
    {                                                                                                 \
        TILE_BODY(NR, NT, Q4_PAIR)                                                                    \
    }
FOR_TILES(DEF_Q4)
#undef WB

/* Q8_0 weights: activations offset to unsigned (xor 0x80), weights signed.
 * For a lone last block the high half of wv is zero, so its sum is too. */
#define WB Q80_BYTES
#define Q8_PAIR(NT)                                                                                   \
    __m512i wv = to_quarters(join(_mm256_loadu_si256((const __m256i *)(p + 2)),                        \
                      last ? _mm256_setzero_si256() : _mm256_loadu_si256((const __m256i *)(p + WB + 2)))); \
    wv = _mm512_xor_si512(wv, flip); /* unsigned w + 128; a lone block's zero half becomes 128s, */   \
    __m512 ws = quarter_scales_at(p, last ? p : p + WB); /* met by zero activations and sums */       \
    UNROLL for (int t = 0; t < NT; t++) {                                                             \
        const uint8_t *a = ap + t * a_stride;                                                         \
        __m512i isum = _mm512_dpbusd_epi32(_mm512_loadu_si512(a + 192), wv, _mm512_loadu_si512(a));   \
        __m512 sc = _mm512_mul_ps(ws, _mm512_loadu_ps(a + 64));                                       \
        acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), sc, acc[r][t]);                         \
    }
#define DEF_Q8(NR, NT)                                                                                \
    RL_VNNI static void q8_0_tile_##NR##x##NT(int64_t nb, const uint8_t *W, size_t w_stride,         \
                                                const uint8_t *A, size_t a_stride, float *y, size_t ldy) \
    {                                                                                                 \
        const __m512i flip = _mm512_set1_epi8((char)0x80);                                            \
        TILE_BODY(NR, NT, Q8_PAIR)                                                                    \
    }
FOR_TILES(DEF_Q8)
#undef WB

typedef void (*tile_fixed)(int64_t, const uint8_t *, size_t, const uint8_t *, size_t, float *, size_t);
#define ENTRY_Q4(R, T) [R - 1][T - 1] = q4_0_tile_##R##x##T,
#define ENTRY_Q8(R, T) [R - 1][T - 1] = q8_0_tile_##R##x##T,
static const tile_fixed q4_tiles[RL_GEMM_TILE_R][RL_GEMM_TILE_T] = {FOR_TILES(ENTRY_Q4)};
static const tile_fixed q8_tiles[RL_GEMM_TILE_R][RL_GEMM_TILE_T] = {FOR_TILES(ENTRY_Q8)};

/* a: packed activations (rl_gemm_q_pack), a_stride bytes per token. */
static void q4_0_tile(int64_t k, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride, int nt,
                      float *y, size_t ldy)
{
    q4_tiles[nr - 1][nt - 1](k / 32, w, w_stride, a, a_stride, y, ldy);
}

static void q8_0_tile(int64_t k, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride, int nt,
                      float *y, size_t ldy)
{
    q8_tiles[nr - 1][nt - 1](k / 32, w, w_stride, a, a_stride, y, ldy);
}

void rl_gemm_q_pack(const void *q8_0_row, void *dst, int64_t k)
{
    pack_row(q8_0_row, dst, k / 32);
}

void rl_gemm_q_quant_pack(const float *x, void *dst, int64_t k)
{
    quant_pack_row(x, dst, k / 32);
}
#else
void rl_gemm_q_quant_pack(const float *x, void *dst, int64_t k)
{
    (void)x, (void)dst, (void)k;
}

void rl_gemm_q_pack(const void *q8_0_row, void *dst, int64_t k)
{
    (void)q8_0_row, (void)dst, (void)k;
}
#endif

rl_gemm_tile_fn rl_gemm_q_kernel(rl_type wt)
{
#if defined(__x86_64__)
    static int have = -1;
    if (have < 0) {
        __builtin_cpu_init();
        have = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("f16c") && getenv("RL_NO_VNNI_GEMM") == NULL;
    }
    if (have && rl_type_get(wt) && rl_type_get(wt)->vec_dot_type == RL_TYPE_Q8_0) {
        if (wt == RL_TYPE_Q4_0)
            return q4_0_tile;
        if (wt == RL_TYPE_Q8_0)
            return q8_0_tile;
    }
#endif
    (void)wt;
    return NULL;
}
