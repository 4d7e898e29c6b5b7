/* rl_gemm_q.c - int8 micro-kernels: up to 4 weight rows x 4 tokens of Q4_0,
 * Q5_0, Q4_1, Q5_1 or Q8_0 weights against Q8_0 activations, with AVX-512 VNNI on 256-bit
 * registers (on this machine's AMD cores 512-bit operations run as two
 * halves, and 256-bit code avoids the costly cross-half shuffles).
 *
 * Trick 1: each weight block loaded into a register is reused for 4 tokens,
 * each activation block (from L1) for 4 rows.
 * Trick 2: activations are repacked once per matmul into what the inner loop
 * wants per block: 32 quants, the per-4-quant sums times -8 (for Q4_0
 * weights) or -128 (Q8_0), and the scale as a float. vpdpbusd needs one unsigned operand:
 *   Q4_0: w in 0..15 (unsigned) . a (signed), the accumulator started at
 *         -8 * sum(a), giving sum((w - 8) * a) exactly;
 *   Q8_0: (w + 128) (unsigned) . a (signed), started at -128 * sum(a).
 * Every (row, token) output goes through the same instruction sequence for
 * any tile shape, so results do not depend on batching.
 *
 * Without AVX-512 VNNI (AVX2 and FMA only) the same tiles run with
 * vpmaddubsw + vpmaddwd in place of vpdpbusd; Q8_0 weights then use the sign
 * trick (|w| unsigned times a carrying w's sign: pairs stay below 2^15). The
 * integer sums are exact either way and the float steps the same, so both
 * give the same bits. */
#include "rl_gemm.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* packed bytes per token per block: 32 quants, 8 int32 sums (x -8 for Q4_0
 * weights, x -128 for Q8_0), the float scale */
#define RL_QP_BLOCK 68

size_t rl_gemm_q_packed_row(int64_t k)
{
    return (size_t)(k / 32) * RL_QP_BLOCK;
}

int rl_gemm_q_level(void);

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

#define RL_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,f16c,avx2,fma")))
#define RL_AVX2 __attribute__((target("f16c,avx2,fma")))
#define UNROLL _Pragma("GCC unroll 16")
/* Software prefetch distance in weight rows. The 4-row tiles read 4
 * interleaved streams, which the hardware prefetcher follows too late: one
 * token against 2048-column Q4_0 rows, 2 threads, went from 27 GB/s (8 rows
 * ahead) to 42 GB/s (32 rows; 16: 35, 64: 42); docs/PERFORMANCE.md. */
#ifndef PF_ROWS
#define PF_ROWS 32
#endif
#define Q80_BYTES 34
#define Q40_BYTES 18
#define Q50_BYTES 22
#define Q41_BYTES 20
#define Q51_BYTES 24

#define RL_GEMM_TILES(X) X(1, 1) X(1, 2) X(1, 3) X(1, 4) X(2, 1) X(2, 2) X(2, 3) X(2, 4) \
                         X(3, 1) X(3, 2) X(3, 3) X(3, 4) X(4, 1) X(4, 2) X(4, 3) X(4, 4)

RL_AVX2 static inline float ld_half(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* One block's 32 quants (and its half scale) -> the packed block; shift 3
 * for Q4_0 weights (-8 * sum), 7 for Q8_0 (-128 * sum). */
RL_VNNI static inline void pack_block(__m256i q, uint16_t dh, uint8_t *dst, int shift)
{
    __m256i s = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), q);
    float d = _cvtsh_ss(dh);
    _mm256_storeu_si256((__m256i *)dst, q);
    _mm256_storeu_si256((__m256i *)(dst + 32),
                        _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_sll_epi32(s, _mm_cvtsi32_si128(shift))));
    memcpy(dst + 64, &d, 4);
}

/* One Q8_0 row of nb blocks -> packed blocks. */
RL_VNNI static void pack_row(const uint8_t *src, uint8_t *dst, int64_t nb, int shift)
{
    for (int64_t b = 0; b < nb; b++, src += Q80_BYTES, dst += RL_QP_BLOCK) {
        uint16_t dh;
        memcpy(&dh, src, 2);
        pack_block(_mm256_loadu_si256((const __m256i *)(src + 2)), dh, dst, shift);
    }
}

/* Quantize 32 floats to Q8_0 exactly as the traits' from_float does (scale
 * amax/127 rounded to half, quants round-to-nearest-even of x / scale,
 * clamped to +-127), returning the quants; *dh gets the half scale. */
RL_VNNI static inline __m256i quant32(const float *x, uint16_t *dh)
{
    __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
    __m512 ax = _mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1));
    float amax = _mm512_reduce_max_ps(ax);
    *dh = _cvtss_sh(amax / 127.0f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    float d = _cvtsh_ss(*dh), id = d != 0 ? 1.0f / d : 0.0f;
    __m512 vid = _mm512_set1_ps(id), lo = _mm512_set1_ps(-127.f), hi = _mm512_set1_ps(127.f);
    __m512i q0 = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(x0, vid), lo), hi));
    __m512i q1 = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(x1, vid), lo), hi));
    return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm512_cvtepi32_epi8(q0)), _mm512_cvtepi32_epi8(q1), 1);
}

/* Floats -> packed blocks directly (same bytes as from_float then pack_row). */
RL_VNNI static void quant_pack_row(const float *x, uint8_t *dst, int64_t nb, int shift)
{
    for (int64_t b = 0; b < nb; b++, dst += RL_QP_BLOCK) {
        uint16_t dh;
        __m256i q = quant32(x + b * 32, &dh);
        pack_block(q, dh, dst, shift);
    }
}

/* AVX2: the same packed bytes. The sums of 4 quants by vpmaddubsw (ones as
 * the unsigned operand) and vpmaddwd; the quants from the traits' Q8_0
 * from_float, which quant32 matches. */
RL_AVX2 static void pack_row_avx2(const uint8_t *src, uint8_t *dst, int64_t nb, int shift)
{
    const __m256i one8 = _mm256_set1_epi8(1), one16 = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; b++, src += Q80_BYTES, dst += RL_QP_BLOCK) {
        uint16_t dh;
        memcpy(&dh, src, 2);
        __m256i q = _mm256_loadu_si256((const __m256i *)(src + 2));
        __m256i sum = _mm256_madd_epi16(_mm256_maddubs_epi16(one8, q), one16);
        float d = _cvtsh_ss(dh);
        _mm256_storeu_si256((__m256i *)dst, q);
        _mm256_storeu_si256((__m256i *)(dst + 32),
                            _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_sll_epi32(sum, _mm_cvtsi32_si128(shift))));
        memcpy(dst + 64, &d, 4);
    }
}

static void quant_pack_row_avx2(const float *x, uint8_t *dst, int64_t nb, int shift)
{
    const rl_type_traits *q8 = rl_type_get(RL_TYPE_Q8_0);
    uint8_t blk[8 * Q80_BYTES];
    for (int64_t b = 0; b < nb; b += 8) { /* 8 blocks per call */
        int64_t n = nb - b < 8 ? nb - b : 8;
        q8->from_float(x + b * 32, blk, n * 32);
        pack_row_avx2(blk, dst + (size_t)b * RL_QP_BLOCK, n, shift);
    }
}

RL_AVX2 static inline float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The tile: for each block, each row's weights are loaded once (LOAD_W: wv
 * the quants, wd the scale in 8 lanes), then used for NT tokens; DOT(sums, wv,
 * a) is the block's exact int32 sums of 4 products (8 lanes). */
#define TILE_BODY(NR, NT, LOAD_W, DOT) TILE_BODY_M(NR, NT, LOAD_W, DOT, NO_MIN)
#define NO_MIN(ACC, A) (ACC)
/* Q4_1/Q5_1: + m da sum(a); their packed sums hold -sum(a) (shift 0) */
#define ADD_MIN(ACC, A)                                                                               \
    _mm256_fnmadd_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)((A) + 32))),             \
                     _mm256_mul_ps(wm, _mm256_broadcast_ss((const float *)((A) + 64))), ACC)
#define TILE_BODY_M(NR, NT, LOAD_W, DOT, MIN)                                                         \
    __m256 acc[NR][NT];                                                                               \
    UNROLL for (int r = 0; r < NR; r++)                                                               \
        UNROLL for (int t = 0; t < NT; t++)                                                           \
            acc[r][t] = _mm256_setzero_ps();                                                          \
    for (int64_t b = 0; b < nb; b++) {                                                                \
        const uint8_t *ap = A + (size_t)b * RL_QP_BLOCK;                                              \
        UNROLL for (int r = 0; r < NR; r++) {                                                         \
            const uint8_t *p = W + r * w_stride + (size_t)b * WB;                                     \
            /* the rows of the next tile: short interleaved streams defeat the hardware prefetcher */  \
            if (NR > 1) /* one row at a time is a single stream the hardware prefetcher follows */   \
                _mm_prefetch((const char *)(p + PF_ROWS * w_stride), _MM_HINT_T0);                    \
            LOAD_W                                                                                    \
            UNROLL for (int t = 0; t < NT; t++) {                                                     \
                const uint8_t *a = ap + t * a_stride;                                                 \
                __m256i isum = DOT(_mm256_loadu_si256((const __m256i *)(a + 32)), wv,                     \
                                   _mm256_loadu_si256((const __m256i *)a));                           \
                __m256 sc = _mm256_mul_ps(wd, _mm256_broadcast_ss((const float *)(a + 64)));          \
                acc[r][t] = MIN(_mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), sc, acc[r][t]), a);         \
            }                                                                                         \
        }                                                                                             \
    }                                                                                                 \
    UNROLL for (int r = 0; r < NR; r++)                                                               \
        UNROLL for (int t = 0; t < NT; t++)                                                           \
            y[t * ldy + r] = hsum256(acc[r][t]);

/* vpdpbusd; its AVX2 form (Q4_0 quants 0..15: the pairs stay far below 2^15) */
#define DOT_VNNI(S, W, A) _mm256_dpbusd_epi32(S, W, A)
#define DOT_AVX2(S, W, A) _mm256_add_epi32(S, _mm256_madd_epi16(_mm256_maddubs_epi16(W, A), one16))
/* Q8_0 on AVX2: |w| . (a with w's sign), no offset sums */
#define DOT_AVX2_Q8(S, W, A) _mm256_madd_epi16(_mm256_maddubs_epi16(wabs, _mm256_sign_epi8(A, W)), one16)

/* The 32 nibbles of x (low halves, then high) as bytes, and the constants
 * of the nibble tiles (those with fifth bits also the bit spreading). */
#define NIBBLES(x) _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(x, 4), m4), _mm_and_si128(x, m4))
#define NIB_CONSTS                                                                                    \
    const __m128i m4 = _mm_set1_epi8(0x0f);                                                           \
    const __m256i one16 = _mm256_set1_epi16(1);                                                       \
    (void)one16;
#define FIFTH_CONSTS                                                                                  \
    const __m128i m4 = _mm_set1_epi8(0x0f);                                                           \
    const __m256i one16 = _mm256_set1_epi16(1), b4 = _mm256_set1_epi8(0x10);                          \
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,           \
                                            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);          \
    const __m256i bits = _mm256_set1_epi64x((long long)0x8040201008040201ull);                        \
    (void)one16, (void)spread, (void)bits;
/* Nibbles at QS plus bit j of the 32 bits at QH as bit 4 of weight j. */
#define LOAD_NIB5(QH, QS, FIFTH)                                                                      \
    __m128i x = _mm_loadu_si128((const __m128i *)(p + (QS)));                                         \
    uint32_t qh;                                                                                      \
    memcpy(&qh, p + (QH), 4);                                                                         \
    __m256i wv = _mm256_or_si256(NIBBLES(x), FIFTH(qh));

#define WB Q40_BYTES
#define Q4_LOAD_W                                                                                     \
    __m128i x = _mm_loadu_si128((const __m128i *)(p + 2));                                            \
    __m256i wv = NIBBLES(x);                                                                          \
    __m256 wd = _mm256_set1_ps(ld_half(p));
#define DEF_Q4(ATTR, SFX, DOT, NR, NT)                                                                \
    ATTR static void q4_0_##SFX##_##NR##x##NT(int64_t nb, const uint8_t *W, size_t w_stride,         \
                                                const uint8_t *A, size_t a_stride, float *y, size_t ldy) \
    {                                                                                                 \
        NIB_CONSTS                                                                                    \
        TILE_BODY(NR, NT, Q4_LOAD_W, DOT)                                                             \
    }
#define DEF_Q4_VNNI(R, T) DEF_Q4(RL_VNNI, vnni, DOT_VNNI, R, T)
#define DEF_Q4_AVX2(R, T) DEF_Q4(RL_AVX2, avx2, DOT_AVX2, R, T)
RL_GEMM_TILES(DEF_Q4_VNNI)
RL_GEMM_TILES(DEF_Q4_AVX2)
#undef WB

/* Q5_0: the Q4_0 nibbles (bytes 6..21) plus bit j of qh (bytes 2..5) as bit 4
 * of weight j; the packed sums hold -16 sum(a). The fifth bits: VNNI by a mask
 * register, AVX2 by a byte shuffle and compare. */
#define WB Q50_BYTES
#define Q5_LOAD_W(FIFTH)                                                                              \
    LOAD_NIB5(2, 6, FIFTH)                                                                            \
    __m256 wd = _mm256_set1_ps(ld_half(p));
#define FIFTH_VNNI(QH) _mm256_maskz_mov_epi8(_cvtu32_mask32(QH), b4)
#define FIFTH_AVX2(QH)                                                                                \
    _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)(QH)), spread), \
                                                        bits),                                        \
                                       bits),                                                         \
                     b4)
#define DEF_Q5(ATTR, SFX, DOT, FIFTH, NR, NT)                                                         \
    ATTR static void q5_0_##SFX##_##NR##x##NT(int64_t nb, const uint8_t *W, size_t w_stride,         \
                                                const uint8_t *A, size_t a_stride, float *y, size_t ldy) \
    {                                                                                                 \
        FIFTH_CONSTS                                                                                  \
        TILE_BODY(NR, NT, Q5_LOAD_W(FIFTH), DOT)                                                      \
    }
#define DEF_Q5_VNNI(R, T) DEF_Q5(RL_VNNI, vnni, DOT_VNNI, FIFTH_VNNI, R, T)
#define DEF_Q5_AVX2(R, T) DEF_Q5(RL_AVX2, avx2, DOT_AVX2, FIFTH_AVX2, R, T)
RL_GEMM_TILES(DEF_Q5_VNNI)
RL_GEMM_TILES(DEF_Q5_AVX2)
#undef WB

/* Q4_1 / Q5_1: x = d q + m; the product without offset (DOT from zero),
 * the min's term from the packed sums. */
#define DOT0_VNNI(S, W, A) _mm256_dpbusd_epi32(_mm256_setzero_si256(), W, A)
#define DOT0_AVX2(S, W, A) _mm256_madd_epi16(_mm256_maddubs_epi16(W, A), one16)
#define WB Q41_BYTES
#define Q41_LOAD_W                                                                                    \
    __m128i x = _mm_loadu_si128((const __m128i *)(p + 4));                                            \
    __m256i wv = NIBBLES(x);                                                                          \
    __m256 wd = _mm256_set1_ps(ld_half(p)), wm = _mm256_set1_ps(ld_half(p + 2));
#define DEF_Q41(ATTR, SFX, DOT, NR, NT)                                                              \
    ATTR static void q4_1_##SFX##_##NR##x##NT(int64_t nb, const uint8_t *W, size_t w_stride,         \
                                                const uint8_t *A, size_t a_stride, float *y, size_t ldy) \
    {                                                                                                 \
        NIB_CONSTS                                                                                    \
        TILE_BODY_M(NR, NT, Q41_LOAD_W, DOT, ADD_MIN)                                                 \
    }
#define DEF_Q41_VNNI(R, T) DEF_Q41(RL_VNNI, vnni, DOT0_VNNI, R, T)
#define DEF_Q41_AVX2(R, T) DEF_Q41(RL_AVX2, avx2, DOT0_AVX2, R, T)
RL_GEMM_TILES(DEF_Q41_VNNI)
RL_GEMM_TILES(DEF_Q41_AVX2)
#undef WB

#define WB Q51_BYTES
#define Q51_LOAD_W(FIFTH)                                                                             \
    LOAD_NIB5(4, 8, FIFTH)                                                                            \
    __m256 wd = _mm256_set1_ps(ld_half(p)), wm = _mm256_set1_ps(ld_half(p + 2));
#define DEF_Q51(ATTR, SFX, DOT, FIFTH, NR, NT)                                                        \
    ATTR static void q5_1_##SFX##_##NR##x##NT(int64_t nb, const uint8_t *W, size_t w_stride,         \
                                                const uint8_t *A, size_t a_stride, float *y, size_t ldy) \
    {                                                                                                 \
        FIFTH_CONSTS                                                                                  \
        TILE_BODY_M(NR, NT, Q51_LOAD_W(FIFTH), DOT, ADD_MIN)                                          \
    }
#define DEF_Q51_VNNI(R, T) DEF_Q51(RL_VNNI, vnni, DOT0_VNNI, FIFTH_VNNI, R, T)
#define DEF_Q51_AVX2(R, T) DEF_Q51(RL_AVX2, avx2, DOT0_AVX2, FIFTH_AVX2, R, T)
RL_GEMM_TILES(DEF_Q51_VNNI)
RL_GEMM_TILES(DEF_Q51_AVX2)
#undef WB

#define WB Q80_BYTES
#define Q8_LOAD_W_VNNI                                                                                \
    __m256i wv = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + 2)), flip);              \
    __m256 wd = _mm256_set1_ps(ld_half(p));
#define Q8_LOAD_W_AVX2                                                                                \
    __m256i wv = _mm256_loadu_si256((const __m256i *)(p + 2));                                       \
    __m256i wabs = _mm256_sign_epi8(wv, wv);                                                          \
    __m256 wd = _mm256_set1_ps(ld_half(p));
#define DEF_Q8(ATTR, SFX, LOAD_W, DOT, NR, NT)                                                        \
    ATTR static void q8_0_##SFX##_##NR##x##NT(int64_t nb, const uint8_t *W, size_t w_stride,         \
                                                const uint8_t *A, size_t a_stride, float *y, size_t ldy) \
    {                                                                                                 \
        const __m256i flip = _mm256_set1_epi8((char)0x80), one16 = _mm256_set1_epi16(1);              \
        (void)flip, (void)one16;                                                                      \
        TILE_BODY(NR, NT, LOAD_W, DOT)                                                                \
    }
#define DEF_Q8_VNNI(R, T) DEF_Q8(RL_VNNI, vnni, Q8_LOAD_W_VNNI, DOT_VNNI, R, T)
#define DEF_Q8_AVX2(R, T) DEF_Q8(RL_AVX2, avx2, Q8_LOAD_W_AVX2, DOT_AVX2_Q8, R, T)
RL_GEMM_TILES(DEF_Q8_VNNI)
RL_GEMM_TILES(DEF_Q8_AVX2)
#undef WB

typedef void (*tile_fixed)(int64_t, const uint8_t *, size_t, const uint8_t *, size_t, float *, size_t);
#define ENTRY(TY, SFX, R, T) [R - 1][T - 1] = TY##_##SFX##_##R##x##T,
#define ENTRY_Q4_VNNI(R, T) ENTRY(q4_0, vnni, R, T)
#define ENTRY_Q4_AVX2(R, T) ENTRY(q4_0, avx2, R, T)
#define ENTRY_Q5_VNNI(R, T) ENTRY(q5_0, vnni, R, T)
#define ENTRY_Q5_AVX2(R, T) ENTRY(q5_0, avx2, R, T)
#define ENTRY_Q41_VNNI(R, T) ENTRY(q4_1, vnni, R, T)
#define ENTRY_Q41_AVX2(R, T) ENTRY(q4_1, avx2, R, T)
#define ENTRY_Q51_VNNI(R, T) ENTRY(q5_1, vnni, R, T)
#define ENTRY_Q51_AVX2(R, T) ENTRY(q5_1, avx2, R, T)
#define ENTRY_Q8_VNNI(R, T) ENTRY(q8_0, vnni, R, T)
#define ENTRY_Q8_AVX2(R, T) ENTRY(q8_0, avx2, R, T)
/* [level - 1]: 1 AVX2, 2 VNNI (rl_gemm_q_level) */
static const tile_fixed q4_tiles[2][4][4] = {{RL_GEMM_TILES(ENTRY_Q4_AVX2)}, {RL_GEMM_TILES(ENTRY_Q4_VNNI)}};
static const tile_fixed q5_tiles[2][4][4] = {{RL_GEMM_TILES(ENTRY_Q5_AVX2)}, {RL_GEMM_TILES(ENTRY_Q5_VNNI)}};
static const tile_fixed q41_tiles[2][4][4] = {{RL_GEMM_TILES(ENTRY_Q41_AVX2)}, {RL_GEMM_TILES(ENTRY_Q41_VNNI)}};
static const tile_fixed q51_tiles[2][4][4] = {{RL_GEMM_TILES(ENTRY_Q51_AVX2)}, {RL_GEMM_TILES(ENTRY_Q51_VNNI)}};
static const tile_fixed q8_tiles[2][4][4] = {{RL_GEMM_TILES(ENTRY_Q8_AVX2)}, {RL_GEMM_TILES(ENTRY_Q8_VNNI)}};

/* One entry point per weight type and level over its table (a: packed
 * activations, a_stride bytes per token), and the types they serve; the level
 * is chosen once per matrix, in rl_gemm_q_kernel. */
#define TILE_FN(NAME, TAB, L)                                                                         \
    static void NAME(int64_t k, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride, int nt, \
                     float *y, size_t ldy)                                                            \
    {                                                                                                 \
        TAB[L][nr - 1][nt - 1](k / 32, w, w_stride, a, a_stride, y, ldy);                             \
    }
#define TILE_FNS(NAME, TAB) TILE_FN(NAME##_avx2, TAB, 0) TILE_FN(NAME##_vnni, TAB, 1)
TILE_FNS(q4_0_tile, q4_tiles)
TILE_FNS(q5_0_tile, q5_tiles)
TILE_FNS(q4_1_tile, q41_tiles)
TILE_FNS(q5_1_tile, q51_tiles)
TILE_FNS(q8_0_tile, q8_tiles)

#define KERNEL(T, NAME) {T, {NAME##_avx2, NAME##_vnni}}
static const struct {
    rl_type type;
    rl_gemm_tile_fn tile[2]; /* [level - 1] */
} q_kernels[] = {KERNEL(RL_TYPE_Q4_0, q4_0_tile), KERNEL(RL_TYPE_Q5_0, q5_0_tile), KERNEL(RL_TYPE_Q4_1, q4_1_tile),
                 KERNEL(RL_TYPE_Q5_1, q5_1_tile), KERNEL(RL_TYPE_Q8_0, q8_0_tile)};

/* The offset sums the weight type needs: -8 sum(a) (Q4_0), -16 (Q5_0), -128
 * (Q8_0), -sum(a) for the min of Q4_1/Q5_1. */
static int pack_shift(rl_type wt)
{
    return wt == RL_TYPE_Q4_0 ? 3 : wt == RL_TYPE_Q5_0 ? 4 : wt == RL_TYPE_Q8_0 ? 7 : 0;
}

void rl_gemm_q_pack(const void *q8_0_row, void *dst, int64_t k, rl_type wt)
{
    if (rl_gemm_q_level() == 2)
        pack_row(q8_0_row, dst, k / 32, pack_shift(wt));
    else
        pack_row_avx2(q8_0_row, dst, k / 32, pack_shift(wt));
}

void rl_gemm_q_quant_pack(const float *x, void *dst, int64_t k, rl_type wt)
{
    if (rl_gemm_q_level() == 2)
        quant_pack_row(x, dst, k / 32, pack_shift(wt));
    else
        quant_pack_row_avx2(x, dst, k / 32, pack_shift(wt));
}
#else
void rl_gemm_q_pack(const void *q8_0_row, void *dst, int64_t k, rl_type wt)
{
    (void)q8_0_row, (void)dst, (void)k, (void)wt;
}

void rl_gemm_q_quant_pack(const float *x, void *dst, int64_t k, rl_type wt)
{
    (void)x, (void)dst, (void)k, (void)wt;
}
#endif

/* The level in force; what the CPU and the environment allow (-1: not yet
 * looked). Atomic: compute threads of several engines may ask first at once;
 * each finds the same answer. */
static _Atomic int level = -1, detected = -1;

/* Which int8 tiles this CPU runs (here and in rl_gemm_k.c): 2 AVX-512 VNNI
 * (on 256-bit registers), 1 AVX2 + FMA + F16C, 0 none (one vec_dot per
 * output). RINGLM_CPU_KERNELS=avx2|scalar caps it as it caps the traits;
 * RL_NO_VNNI_GEMM=1 turns the tiles off (measurements). */
int rl_gemm_q_level(void)
{
#if defined(__x86_64__)
    int l = atomic_load_explicit(&level, memory_order_relaxed);
    if (l < 0) {
        unsigned eax, ebx, ecx, edx;
        bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)); /* not in clang's list */
        __builtin_cpu_init();
        bool avx2 = f16c && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        bool vnni = avx2 && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
                    __builtin_cpu_supports("avx512vl");
        l = vnni ? 2 : avx2 ? 1 : 0;
        const char *cap = getenv("RINGLM_CPU_KERNELS"); /* the traits' cap applies here too */
        if (cap && strcmp(cap, "scalar") == 0)
            l = 0;
        if (cap && strcmp(cap, "avx2") == 0 && l > 1)
            l = 1;
        if (getenv("RL_NO_VNNI_GEMM"))
            l = 0;
        atomic_store_explicit(&detected, l, memory_order_relaxed);
        atomic_store_explicit(&level, l, memory_order_relaxed);
    }
    return l;
#else
    return 0;
#endif
}

const char *rl_gemm_kernels_name(void)
{
    switch (rl_gemm_q_level()) {
    case 2: return "int8 tiles, AVX-512 VNNI";
    case 1: return "int8 tiles, AVX2";
    default: return "vec_dot per output (no AVX2)";
    }
}

int rl_gemm_q_force_level(int l)
{
    rl_gemm_q_level();
    int d = atomic_load_explicit(&detected, memory_order_relaxed);
    d = d < 0 ? 0 : d; /* (not x86: never looked, none) */
    l = l < 0 ? 0 : l < d ? l : d; /* never above what the CPU has */
    atomic_store_explicit(&level, l, memory_order_relaxed);
    return l;
}

rl_gemm_tile_fn rl_gemm_q_kernel(rl_type wt)
{
#if defined(__x86_64__)
    int l = rl_gemm_q_level();
    if (l > 0 && rl_type_get(wt) && rl_type_get(wt)->vec_dot_type == RL_TYPE_Q8_0)
        for (size_t i = 0; i < sizeof q_kernels / sizeof q_kernels[0]; i++)
            if (q_kernels[i].type == wt)
                return q_kernels[i].tile[l - 1];
#endif
    (void)wt;
    return NULL;
}
