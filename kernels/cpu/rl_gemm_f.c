/* rl_gemm_f.c - float micro-kernels: 4 weight rows x 4 tokens at a time of
 * F32, F16 or BF16 weights against F32 activations (the rows rl_gemm_prepare
 * leaves as they are), with FMA on 256-bit registers; one call covers a
 * strip of 4 rows x any number of tokens.
 *
 * Trick: each weight vector loaded (and converted, for F16/BF16) is used for
 * every token of the tile, each activation vector for every row, so a 4 x 4
 * tile does 16 FMAs per 8 loads where one vec_dot per (row, token) does 1 per
 * 2, and 16 independent accumulators keep both FMA pipes busy even for short
 * rows (k = 64 in stories260K, where the per-call overhead and the single
 * dependency chain of vec_dot dominated).
 *
 * Fixed summation order: each output (row r, token t) has one 8-lane
 * accumulator, run over k in chunks of 8 with one FMA per chunk (the last
 * chunk zero-padded: masked loads, or an element-wise copy for 16-bit
 * weights), then its lanes are added as ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)).
 * Nothing of another output enters that sequence, so a result is the same
 * bits whatever the tile shape, the token's place in the tile, the number of
 * tokens in the step or the instruction set chosen (AVX2 and AVX-512VL run
 * the same operations; only AVX-512VL has the 32 registers for 4 x 4 at once,
 * AVX2 goes 4 x 2). Sums differ from vec_dot's (other order) within float
 * rounding. */
#include "rl_gemm.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

#define F_AVX2 __attribute__((target("avx2,fma,f16c")))
#define F_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512vl")))
#define F_INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")

enum { W_F32, W_F16, W_BF16 };

/* 8 weights from element i of a row, as floats. */
F_AVX2 F_INLINE __m256 load_w(const uint8_t *row, int64_t i, int wt)
{
    if (wt == W_F32)
        return _mm256_loadu_ps((const float *)row + i);
    __m128i h = _mm_loadu_si128((const __m128i *)(row + 2 * i));
    if (wt == W_F16)
        return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); /* bf16: the high half of a float */
}

/* The last rem (1..7) weights of a row from element i, zero-padded to 8;
 * nothing past the row is read (masked load, or element by element). */
F_AVX2 F_INLINE __m256 load_w_tail(const uint8_t *row, int64_t i, int rem, __m256i mask, int wt)
{
    if (wt == W_F32)
        return _mm256_maskload_ps((const float *)row + i, mask);
    uint16_t buf[8];
    const uint8_t *p = row + 2 * i;
    UNROLL for (int j = 0; j < 8; j++) /* a fixed count: no memcpy call, the accumulators stay in registers */
        buf[j] = j < rem ? (uint16_t)(p[2 * j] | p[2 * j + 1] << 8) : 0;
    return load_w((const uint8_t *)buf, 0, wt);
}

/* Lane sums of a[0..3] as 4 floats, each ((l0+l1)+(l2+l3)) + ((l4+l5)+(l6+l7)). */
F_AVX2 F_INLINE __m128 reduce4(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
    __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* y[t * ldy + r] = row r of w . token t of a, for NR rows x NT tokens (constants
 * after inlining, so the accumulators live in registers). a_stride and ldy in floats. */
F_AVX2 F_INLINE void tile(int64_t k, const uint8_t *w, size_t w_stride, const float *a, size_t a_stride,
                          float *y, size_t ldy, const int NR, const int NT, const int wt)
{
    __m256 acc[4][4];
    UNROLL for (int r = 0; r < NR; r++)
        UNROLL for (int t = 0; t < NT; t++)
            acc[r][t] = _mm256_setzero_ps();
    int64_t kf = k & ~(int64_t)7;
    for (int64_t i = 0; i < kf; i += 8) {
        __m256 av[4];
        UNROLL for (int t = 0; t < NT; t++)
            av[t] = _mm256_loadu_ps(a + t * a_stride + i);
        UNROLL for (int r = 0; r < NR; r++) {
            __m256 wv = load_w(w + r * w_stride, i, wt);
            UNROLL for (int t = 0; t < NT; t++)
                acc[r][t] = _mm256_fmadd_ps(wv, av[t], acc[r][t]);
        }
    }
    int rem = (int)(k - kf);
    if (rem) { /* zeros in the padding lanes: 0 * 0 adds nothing */
        __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(rem), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 av[4];
        UNROLL for (int t = 0; t < NT; t++)
            av[t] = _mm256_maskload_ps(a + t * a_stride + kf, mask);
        UNROLL for (int r = 0; r < NR; r++) {
            __m256 wv = load_w_tail(w + r * w_stride, kf, rem, mask, wt);
            UNROLL for (int t = 0; t < NT; t++)
                acc[r][t] = _mm256_fmadd_ps(wv, av[t], acc[r][t]);
        }
    }
    UNROLL for (int t = 0; t < NT; t++) {
        __m256 z = _mm256_setzero_ps(); /* stands in for missing rows; their lanes are never stored */
        __m128 s = reduce4(acc[0][t], NR > 1 ? acc[1][t] : z, NR > 2 ? acc[2][t] : z, NR > 3 ? acc[3][t] : z);
        if (NR == 4) {
            _mm_storeu_ps(y + t * ldy, s);
        } else {
            float o[4];
            _mm_storeu_ps(o, s);
            memcpy(y + t * ldy, o, sizeof(float) * (size_t)NR);
        }
    }
}

typedef void (*ftile_fn)(int64_t k, const uint8_t *w, size_t w_stride, const float *a, size_t a_stride, float *y,
                         size_t ldy);

/* Fixed-shape instances for each instruction set and weight type. */
#define F_SHAPES(X, ISA, WT) X(ISA, WT, 1, 1) X(ISA, WT, 1, 2) X(ISA, WT, 1, 3) X(ISA, WT, 1, 4) \
                             X(ISA, WT, 2, 1) X(ISA, WT, 2, 2) X(ISA, WT, 2, 3) X(ISA, WT, 2, 4) \
                             X(ISA, WT, 3, 1) X(ISA, WT, 3, 2) X(ISA, WT, 3, 3) X(ISA, WT, 3, 4) \
                             X(ISA, WT, 4, 1) X(ISA, WT, 4, 2) X(ISA, WT, 4, 3) X(ISA, WT, 4, 4)
/* AVX2 has 16 registers: 4 x 2 tiles at most (8 accumulators, 2 activations, a weight). */
#define F_SHAPES2(X, ISA, WT) X(ISA, WT, 1, 1) X(ISA, WT, 1, 2) X(ISA, WT, 2, 1) X(ISA, WT, 2, 2) \
                              X(ISA, WT, 3, 1) X(ISA, WT, 3, 2) X(ISA, WT, 4, 1) X(ISA, WT, 4, 2)
#define F_DEF(ISA, WT, R, T)                                                                                   \
    F_##ISA static void ISA##_##WT##_##R##x##T(int64_t k, const uint8_t *w, size_t ws, const float *a, size_t as, \
                                               float *y, size_t ldy)                                           \
    {                                                                                                          \
        tile(k, w, ws, a, as, y, ldy, R, T, W_##WT);                                                           \
    }
#define F_ENTRY(ISA, WT, R, T) [R - 1][T - 1] = ISA##_##WT##_##R##x##T,

F_SHAPES(F_DEF, AVX512, F32)
F_SHAPES(F_DEF, AVX512, F16)
F_SHAPES(F_DEF, AVX512, BF16)
F_SHAPES2(F_DEF, AVX2, F32)
F_SHAPES2(F_DEF, AVX2, F16)
F_SHAPES2(F_DEF, AVX2, BF16)

/* 4 rows x any number of tokens: the widest tile (inlined) along the tokens, the
 * rest through the table: one call per 4-row strip of a work item. */
#define F_STRIP(ISA, WT, MT, TAB)                                                                              \
    F_##ISA static void ISA##_##WT##_strip(int64_t k, const uint8_t *w, size_t ws, const float *a, size_t as,  \
                                           int nt, float *y, size_t ldy)                                       \
    {                                                                                                          \
        int t = 0;                                                                                             \
        for (; t + MT <= nt; t += MT)                                                                          \
            tile(k, w, ws, a + (size_t)t * as, as, y + (size_t)t * ldy, ldy, 4, MT, W_##WT);                   \
        if (t < nt)                                                                                            \
            TAB[W_##WT][3][nt - t - 1](k, w, ws, a + (size_t)t * as, as, y + (size_t)t * ldy, ldy);            \
    }
typedef void (*fstrip_fn)(int64_t k, const uint8_t *w, size_t w_stride, const float *a, size_t a_stride, int nt,
                          float *y, size_t ldy);
static const ftile_fn tiles512[3][4][4];
static const ftile_fn tiles2[3][4][4];
F_STRIP(AVX512, F32, 4, tiles512)
F_STRIP(AVX512, F16, 4, tiles512)
F_STRIP(AVX512, BF16, 4, tiles512)
F_STRIP(AVX2, F32, 2, tiles2)
F_STRIP(AVX2, F16, 2, tiles2)
F_STRIP(AVX2, BF16, 2, tiles2)
static const fstrip_fn strips512[3] = {AVX512_F32_strip, AVX512_F16_strip, AVX512_BF16_strip};
static const fstrip_fn strips2[3] = {AVX2_F32_strip, AVX2_F16_strip, AVX2_BF16_strip};

static const ftile_fn tiles512[3][4][4] = {{F_SHAPES(F_ENTRY, AVX512, F32)}, {F_SHAPES(F_ENTRY, AVX512, F16)},
                                           {F_SHAPES(F_ENTRY, AVX512, BF16)}};
static const ftile_fn tiles2[3][4][4] = {{F_SHAPES2(F_ENTRY, AVX2, F32)}, {F_SHAPES2(F_ENTRY, AVX2, F16)},
                                         {F_SHAPES2(F_ENTRY, AVX2, BF16)}};

/* The chosen tables and how many tokens the widest tile takes. */
static const ftile_fn (*f_tab)[4][4];
static const fstrip_fn *f_strip;
static int f_max_t;

/* nr (1..4) rows x nt (>= 1) tokens; activations are floats, a_stride bytes apart. */
F_INLINE void f_tile(int wt, int64_t k, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride,
                     int nt, float *y, size_t ldy)
{
    size_t as = a_stride / sizeof(float);
    if (nr == 4) {
        f_strip[wt](k, w, w_stride, a, as, nt, y, ldy);
        return;
    }
    const ftile_fn(*tab)[4] = f_tab[wt];
    for (int t = 0; t < nt; t += f_max_t) {
        int n = nt - t < f_max_t ? nt - t : f_max_t;
        tab[nr - 1][n - 1](k, w, w_stride, (const float *)a + (size_t)t * as, as, y + (size_t)t * ldy, ldy);
    }
}

static void f32_tile(int64_t k, const void *w, size_t ws, int nr, const void *a, size_t as, int nt, float *y,
                     size_t ldy)
{
    f_tile(W_F32, k, w, ws, nr, a, as, nt, y, ldy);
}

static void f16_tile(int64_t k, const void *w, size_t ws, int nr, const void *a, size_t as, int nt, float *y,
                     size_t ldy)
{
    f_tile(W_F16, k, w, ws, nr, a, as, nt, y, ldy);
}

static void bf16_tile(int64_t k, const void *w, size_t ws, int nr, const void *a, size_t as, int nt, float *y,
                      size_t ldy)
{
    f_tile(W_BF16, k, w, ws, nr, a, as, nt, y, ldy);
}

/* Once, from rl_gemm_f_kernel's first call: the table for this CPU, or none. */
static void f_select(void)
{
    unsigned eax, ebx, ecx, edx;
    bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)); /* not in clang's list */
    __builtin_cpu_init();
    bool avx2 = f16c && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
    const char *cap = getenv("RINGLM_CPU_KERNELS"); /* the traits' cap applies here too */
    if (cap && strcmp(cap, "scalar") == 0)
        avx2 = avx512 = false;
    if (cap && strcmp(cap, "avx2") == 0)
        avx512 = false;
    if (getenv("RL_NO_F_GEMM")) /* measurements: back to one vec_dot per (row, token) */
        avx2 = avx512 = false;
    f_max_t = avx512 ? 4 : 2;
    f_strip = avx512 ? strips512 : strips2;
    f_tab = avx512 ? tiles512 : avx2 ? tiles2 : NULL;
}
#endif

rl_gemm_tile_fn rl_gemm_f_kernel(rl_type wt)
{
#if defined(__x86_64__)
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, f_select); /* later callers see f_tab and f_max_t as f_select left them */
    if (f_tab) {
        if (wt == RL_TYPE_F32)
            return f32_tile;
        if (wt == RL_TYPE_F16)
            return f16_tile;
        if (wt == RL_TYPE_BF16)
            return bf16_tile;
    }
#endif
    (void)wt;
    return NULL;
}
