/* rl_ops.c - RMSNorm, RoPE, softmax, SwiGLU, exp and the attention block
 * kernel: scalar and AVX2 versions (AVX-512VL for exp and attention).
 *
 * The SIMD versions are compiled with __attribute__((target)) and chosen once by
 * rl_ops_init() from __builtin_cpu_supports() (RINGLM_CPU_KERNELS=scalar|avx2
 * caps the choice). exp() is a vector polynomial within 1 ulp (see exp_core),
 * so SiLU, softmax and attention vectorize. */
#include "rl_ops.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define RL_X86 1
#endif

/* ---- scalar ---- */

static void rmsnorm_scalar(float *out, const float *x, const float *w, int n, float eps)
{
    double ss = 0.0;
    for (int i = 0; i < n; i++)
        ss += (double)x[i] * x[i];
    float scale = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

static void softmax_scalar(float *x, int n)
{
    float m = x[0];
    for (int i = 1; i < n; i++)
        m = x[i] > m ? x[i] : m;
    float s = 0.f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - m);
        s += x[i];
    }
    float inv = 1.f / s;
    for (int i = 0; i < n; i++)
        x[i] *= inv;
}

static void swiglu_scalar(float *out, const float *g, const float *u, int n)
{
    for (int i = 0; i < n; i++)
        out[i] = g[i] / (1.f + expf(-g[i])) * u[i];
}

/* ---- AVX2 + FMA ---- */
#ifdef RL_X86
#define RL_AVX2 __attribute__((target("avx2,fma")))

/* exp(x), the vector version (all lanes alike, so a value's bits do not depend
 * on its lane or on its neighbours):
 *   n = round(x log2 e), r = x - n ln2 (two FMAs: ln2 = hi + lo), |r| <= ln2/2;
 *   e^r = 1 + r + r^2 P(r), P of degree 4 fitted to (e^r - 1 - r) / r^2 on
 *   [-ln2/2, ln2/2] (Chebyshev fit, approximation error < 8e-9 relative);
 *   result e^r * 2^n.
 * Accuracy: within 1 ulp of the correctly rounded exp for normal results
 * (tests/model/test_model_ops.c measures it over a dense sweep of [-110, 89]),
 * subnormal results within 1 ulp of the subnormal grid (2^-149), 0 for
 * x < -103.98 and -inf, +inf for x > 88.73, NaN for NaN. x is clamped to
 * [-110, 89] first (NaN passes the clamp: the operand order of min/max keeps it).
 * AVX2 scales by 2^n as two exact powers of two, 2^(n>>1) then 2^(n-(n>>1)),
 * so results below FLT_MIN round once into the subnormal range; AVX-512 uses
 * vscalefps, which does the same in one instruction. */
#define EXP_LO -110.f
#define EXP_HI 89.f
#define EXP_LOG2E 1.44269504088896341f
#define EXP_LN2_HI 0x1.62e430p-1f
#define EXP_LN2_LO (-0x1.05c610p-29f)
#define EXP_P4 0x1.6d10fcp-10f
#define EXP_P3 0x1.120b62p-7f
#define EXP_P2 0x1.55551ap-5f
#define EXP_P1 0x1.5554dep-3f

/* e^r and n for x (shared by both scalings). */
RL_AVX2 static inline __m256 exp_core(__m256 x, __m256 *n)
{
    x = _mm256_max_ps(_mm256_set1_ps(EXP_LO), _mm256_min_ps(_mm256_set1_ps(EXP_HI), x)); /* NaN: 2nd operand */
    *n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(EXP_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(*n, _mm256_set1_ps(EXP_LN2_HI), x);
    r = _mm256_fnmadd_ps(*n, _mm256_set1_ps(EXP_LN2_LO), r);
    __m256 y = _mm256_fmadd_ps(_mm256_set1_ps(EXP_P4), r, _mm256_set1_ps(EXP_P3));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(EXP_P2));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(EXP_P1));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(0.5f));
    y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.f));
    return _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.f));
}

RL_AVX2 static inline __m256 exp8(__m256 x)
{
    __m256 n;
    __m256 y = exp_core(x, &n);
    __m256i ni = _mm256_cvtps_epi32(n); /* -159..129; NaN lanes give INT_MIN, y stays NaN */
    __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    __m256i b = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, b), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, b), 23));
    return _mm256_mul_ps(_mm256_mul_ps(y, s1), s2);
}

#define RL_AVX512 __attribute__((target("avx2,fma,avx512f,avx512vl")))
RL_AVX512 static inline __m256 exp8_512(__m256 x)
{
    __m256 n;
    __m256 y = exp_core(x, &n);
    return _mm256_scalef_ps(y, n);
}

RL_AVX2 static float hsum256(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

RL_AVX2 static void rmsnorm_avx2(float *out, const float *x, const float *w, int n, float eps)
{
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        acc = _mm256_fmadd_ps(v, v, acc);
    }
    float ss = hsum256(acc);
    for (; i < n; i++)
        ss += x[i] * x[i];
    float scale = 1.f / sqrtf(ss / n + eps);
    __m256 vs = _mm256_set1_ps(scale);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), _mm256_loadu_ps(w + i)));
    for (; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

RL_AVX2 static void softmax_avx2(float *x, int n)
{
    float m = x[0];
    for (int i = 1; i < n; i++)
        m = x[i] > m ? x[i] : m;
    __m256 vm = _mm256_set1_ps(m), acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float s = hsum256(acc);
    for (; i < n; i++) {
        x[i] = expf(x[i] - m);
        s += x[i];
    }
    __m256 inv = _mm256_set1_ps(1.f / s);
    for (i = 0; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    for (; i < n; i++)
        x[i] *= 1.f / s;
}

RL_AVX2 static void swiglu_avx2(float *out, const float *g, const float *u, int n)
{
    const __m256 one = _mm256_set1_ps(1.f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 vg = _mm256_loadu_ps(g + i);
        __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), vg));
        __m256 s = _mm256_div_ps(vg, _mm256_add_ps(one, e));
        _mm256_storeu_ps(out + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++)
        out[i] = g[i] / (1.f + expf(-g[i])) * u[i];
}

RL_AVX2 static float dot_avx2(const float *x, const float *y, int n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(y + i + 8), a1);
    }
    for (; i + 8 <= n; i += 8)
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
    float s = hsum256(_mm256_add_ps(a0, a1));
    for (; i < n; i++)
        s += x[i] * y[i];
    return s;
}

RL_AVX2 static void scale_axpy_avx2(float *y, float b, float a, const float *x, int n)
{
    __m256 vb = _mm256_set1_ps(b), va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_mul_ps(vb, _mm256_loadu_ps(y + i))));
    for (; i < n; i++)
        y[i] = y[i] * b + a * x[i];
}

/* y[0..n) of 8-lane arrays: out = exp(in). */
RL_AVX2 static void exp_avx2(float *y, const float *x, int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, exp8(_mm256_loadu_ps(x + i)));
    if (i < n) {
        __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - i), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        _mm256_maskstore_ps(y + i, mask, exp8(_mm256_maskload_ps(x + i, mask)));
    }
}

RL_AVX512 static void exp_avx512(float *y, const float *x, int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, exp8_512(_mm256_loadu_ps(x + i)));
    if (i < n) {
        __mmask8 k = (__mmask8)((1u << (n - i)) - 1);
        _mm256_mask_storeu_ps(y + i, k, exp8_512(_mm256_maskz_loadu_ps(k, x + i)));
    }
}

/* ---- attention over one block of keys (rl_ops_att_block) ----
 * Scores of the 16 keys as two 8-lane vectors, one broadcast of q[d] times
 * row d of the transposed keys per FMA (no horizontal sums); 4 accumulators
 * per half, over d mod 4, added as (a0 + a1) + (a2 + a3). Keys at and past
 * rows become -inf (blend: whatever their padding held), so exp gives 0. */
#define ATT_ROW(d) _mm256_loadu_ps(Kt + (size_t)(d) * RL_OPS_ATT_ROWS)
#define ATT_ROW_HI(d) _mm256_loadu_ps(Kt + (size_t)(d) * RL_OPS_ATT_ROWS + 8)
#define ATT_FMA_D(A, B, d)                                      \
    do {                                                        \
        __m256 qd = _mm256_broadcast_ss(q + (d));               \
        A = _mm256_fmadd_ps(qd, ATT_ROW(d), A);                 \
        B = _mm256_fmadd_ps(qd, ATT_ROW_HI(d), B);              \
    } while (0)

RL_AVX2 static inline __attribute__((always_inline)) void att_scores8(const float *Kt, int rows, const float *q,
                                                                     int n, float scale, __m256 *s0, __m256 *s1)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    int d = 0;
    for (; d + 4 <= n; d += 4) { /* named accumulators: arrays indexed at run time would live on the stack */
        ATT_FMA_D(a0, b0, d);
        ATT_FMA_D(a1, b1, d + 1);
        ATT_FMA_D(a2, b2, d + 2);
        ATT_FMA_D(a3, b3, d + 3);
    }
    if (d < n)
        ATT_FMA_D(a0, b0, d);
    if (d + 1 < n)
        ATT_FMA_D(a1, b1, d + 1);
    if (d + 2 < n)
        ATT_FMA_D(a2, b2, d + 2);
    __m256 vs = _mm256_set1_ps(scale), ninf = _mm256_set1_ps(-INFINITY);
    __m256 lo = _mm256_mul_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)), vs);
    __m256 hi = _mm256_mul_ps(_mm256_add_ps(_mm256_add_ps(b0, b1), _mm256_add_ps(b2, b3)), vs);
    __m256i r = _mm256_set1_epi32(rows);
    __m256 m0 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(r, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
    __m256 m1 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(r, _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15)));
    *s0 = _mm256_blendv_ps(ninf, lo, m0);
    *s1 = _mm256_blendv_ps(ninf, hi, m1);
}

RL_AVX2 static inline __attribute__((always_inline)) float hmax8(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* acc = acc * corr + sum_j p[j] V[j]: per 8 values of the row, 4 accumulators
 * over j mod 4 added as (a0 + a1) + (a2 + a3); the last partial 8 masked. */
#define ATT_MIX_J(A, j) A = _mm256_fmadd_ps(_mm256_broadcast_ss(p + (j)), LOADV(v + (size_t)(j) * n), A)
#define ATT_MIX_ROWS                              \
    do {                                          \
        int j = 0;                                \
        for (; j + 4 <= rows; j += 4) {           \
            ATT_MIX_J(a0, j);                     \
            ATT_MIX_J(a1, j + 1);                 \
            ATT_MIX_J(a2, j + 2);                 \
            ATT_MIX_J(a3, j + 3);                 \
        }                                         \
        if (j < rows)                             \
            ATT_MIX_J(a0, j);                     \
        if (j + 1 < rows)                         \
            ATT_MIX_J(a1, j + 1);                 \
        if (j + 2 < rows)                         \
            ATT_MIX_J(a2, j + 2);                 \
    } while (0)

RL_AVX2 static inline __attribute__((always_inline)) void att_mix8(float *acc, float corr, const float *p,
                                                                  const float *V, int rows, int n)
{
    __m256 vc = _mm256_set1_ps(corr);
    for (int i = 0; i < n; i += 8) {
        __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - i), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        const float *v = V + i;
        if (n - i >= 8) { /* plain loads and stores: vmaskmovps stores are slow on some cores */
#define LOADV(ptr) _mm256_loadu_ps(ptr)
            ATT_MIX_ROWS;
#undef LOADV
            __m256 sum = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
            _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(_mm256_loadu_ps(acc + i), vc, sum));
        } else {
#define LOADV(ptr) _mm256_maskload_ps(ptr, mask)
            ATT_MIX_ROWS;
#undef LOADV
            __m256 sum = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
            _mm256_maskstore_ps(acc + i, mask, _mm256_fmadd_ps(_mm256_maskload_ps(acc + i, mask), vc, sum));
        }
    }
}

/* One body for both instruction sets; EXP is exp8 or exp8_512. */
#define ATT_BLOCK_BODY(EXP)                                                                            \
    __m256 s0, s1;                                                                                     \
    att_scores8(Kt, rows, q, n, scale, &s0, &s1);                                                      \
    float m_old = *m, m_blk = hmax8(_mm256_max_ps(s0, s1)), m_new = m_blk > m_old ? m_blk : m_old;     \
    if (m_new == -INFINITY && !_mm256_movemask_ps(_mm256_or_ps(                                        \
            _mm256_cmp_ps(s0, _mm256_set1_ps(-INFINITY), _CMP_NEQ_UQ),                                 \
            _mm256_cmp_ps(s1, _mm256_set1_ps(-INFINITY), _CMP_NEQ_UQ))))                               \
        return; /* only -inf scores: nothing to add (a NaN score goes on, to propagate) */             \
    __m256 vm = _mm256_set1_ps(m_new);                                                                 \
    __m256 p0 = EXP(_mm256_sub_ps(s0, vm)), p1 = EXP(_mm256_sub_ps(s1, vm));                           \
    /* exp(0) is exactly 1: skipping it when the max stays changes no bit */                         \
    float corr = m_old == m_new ? 1.f : _mm256_cvtss_f32(EXP(_mm256_set1_ps(m_old - m_new)));          \
    float p[RL_OPS_ATT_ROWS];                                                                          \
    _mm256_storeu_ps(p, p0);                                                                           \
    _mm256_storeu_ps(p + 8, p1);                                                                       \
    *m = m_new;                                                                                        \
    *l = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(*l), _mm_set_ss(corr),                                  \
                                    _mm_set_ss(hsum256(_mm256_add_ps(p0, p1)))));                      \
    att_mix8(acc, corr, p, V, rows, n);

/* Queries two at a time: their max, exp and sum chains interleave (one
 * query's chain is mostly latency); the corrections of both share one exp
 * (lanes 0 and 1). Each query gets the very operations of the one-query body
 * (exp works lane by lane, exp(0) is exactly 1), so its bits do not depend on
 * its pairing. A pair with a -inf max takes the one-query body. */
#define ATT_DEFINE(SUF, TGT, EXP)                                                                          \
    TGT static void att_one_##SUF(const float *Kt, const float *V, int rows, const float *q, int n, float scale, \
                                  float *m, float *l, float *acc)                                          \
    {                                                                                                      \
        ATT_BLOCK_BODY(EXP)                                                                                \
    }                                                                                                      \
    TGT static void att_block_##SUF(const float *Kt, const float *V, int rows, const float *q, int nq, int n, \
                                    float scale, float *m, float *l, float *acc)                           \
    {                                                                                                      \
        int i = 0;                                                                                         \
        for (; i + 2 <= nq; i += 2) {                                                                      \
            const float *qa = q + (size_t)i * n, *qb = qa + n;                                             \
            float *acca = acc + (size_t)i * n, *accb = acca + n;                                           \
            __m256 s0a, s1a, s0b, s1b;                                                                     \
            att_scores8(Kt, rows, qa, n, scale, &s0a, &s1a);                                               \
            att_scores8(Kt, rows, qb, n, scale, &s0b, &s1b);                                               \
            float ma = m[i], mb = m[i + 1];                                                                \
            float ba = hmax8(_mm256_max_ps(s0a, s1a)), bb = hmax8(_mm256_max_ps(s0b, s1b));                \
            float na = ba > ma ? ba : ma, nb = bb > mb ? bb : mb;                                          \
            if (na == -INFINITY || nb == -INFINITY) {                                                      \
                att_one_##SUF(Kt, V, rows, qa, n, scale, m + i, l + i, acca);                              \
                att_one_##SUF(Kt, V, rows, qb, n, scale, m + i + 1, l + i + 1, accb);                      \
                continue;                                                                                  \
            }                                                                                              \
            __m256 va = _mm256_set1_ps(na), vb = _mm256_set1_ps(nb);                                       \
            __m256 p0a = EXP(_mm256_sub_ps(s0a, va)), p1a = EXP(_mm256_sub_ps(s1a, va));                   \
            __m256 p0b = EXP(_mm256_sub_ps(s0b, vb)), p1b = EXP(_mm256_sub_ps(s1b, vb));                   \
            float c[8], pa[RL_OPS_ATT_ROWS], pb[RL_OPS_ATT_ROWS];                                          \
            _mm256_storeu_ps(c, EXP(_mm256_setr_ps(ma - na, mb - nb, 0, 0, 0, 0, 0, 0)));                 \
            _mm256_storeu_ps(pa, p0a);                                                                     \
            _mm256_storeu_ps(pa + 8, p1a);                                                                 \
            _mm256_storeu_ps(pb, p0b);                                                                     \
            _mm256_storeu_ps(pb + 8, p1b);                                                                 \
            m[i] = na;                                                                                     \
            m[i + 1] = nb;                                                                                 \
            l[i] = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(l[i]), _mm_set_ss(c[0]),                          \
                                              _mm_set_ss(hsum256(_mm256_add_ps(p0a, p1a)))));              \
            l[i + 1] = _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(l[i + 1]), _mm_set_ss(c[1]),                  \
                                                  _mm_set_ss(hsum256(_mm256_add_ps(p0b, p1b)))));          \
            att_mix8(acca, c[0], pa, V, rows, n);                                                          \
            att_mix8(accb, c[1], pb, V, rows, n);                                                          \
        }                                                                                                  \
        if (i < nq)                                                                                        \
            att_one_##SUF(Kt, V, rows, q + (size_t)i * n, n, scale, m + i, l + i, acc + (size_t)i * n);    \
    }

ATT_DEFINE(avx2, RL_AVX2, exp8)
ATT_DEFINE(avx512, RL_AVX512, exp8_512)
#endif

/* ---- portable versions of the exp and the attention block ---- */

static void exp_scalar(float *y, const float *x, int n)
{
    for (int i = 0; i < n; i++)
        y[i] = expf(x[i]);
}

static void att_one_scalar(const float *Kt, const float *V, int rows, const float *q, int n, float scale, float *m,
                           float *l, float *acc)
{
    float p[RL_OPS_ATT_ROWS], m_new = *m;
    for (int j = 0; j < rows; j++) {
        float d = 0.f;
        for (int i = 0; i < n; i++)
            d += q[i] * Kt[(size_t)i * RL_OPS_ATT_ROWS + j];
        p[j] = d * scale;
        m_new = p[j] > m_new ? p[j] : m_new;
    }
    bool all_ninf = true; /* a NaN score goes on, to propagate */
    for (int j = 0; j < rows; j++)
        all_ninf = all_ninf && p[j] == -INFINITY;
    if (m_new == -INFINITY && all_ninf)
        return;
    float corr = expf(*m - m_new), sum = 0.f;
    for (int j = 0; j < rows; j++) {
        p[j] = expf(p[j] - m_new);
        sum += p[j];
    }
    *m = m_new;
    *l = *l * corr + sum;
    for (int i = 0; i < n; i++) {
        float a = 0.f;
        for (int j = 0; j < rows; j++)
            a += p[j] * V[(size_t)j * n + i];
        acc[i] = acc[i] * corr + a;
    }
}

static void att_block_scalar(const float *Kt, const float *V, int rows, const float *q, int nq, int n, float scale,
                             float *m, float *l, float *acc)
{
    for (int i = 0; i < nq; i++)
        att_one_scalar(Kt, V, rows, q + (size_t)i * n, n, scale, m + i, l + i, acc + (size_t)i * n);
}

static float dot_scalar(const float *x, const float *y, int n)
{
    float s = 0.f;
    for (int i = 0; i < n; i++)
        s += x[i] * y[i];
    return s;
}

static void scale_axpy_scalar(float *y, float b, float a, const float *x, int n)
{
    for (int i = 0; i < n; i++)
        y[i] = y[i] * b + a * x[i];
}

/* RoPE: angle of pair i at position pos is pos * inv_freq[i]. The angles are
 * computed in double so long positions keep their precision. */
static void rope_apply_scalar(float *x, int n_head, int head_dim, const float *cs, const float *sn, bool neox)
{
    int half = head_dim / 2;
    for (int h = 0; h < n_head; h++) {
        float *v = x + (size_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
            float a = v[i0], b = v[i1];
            v[i0] = a * cs[i] - b * sn[i];
            v[i1] = a * sn[i] + b * cs[i];
        }
    }
}

#ifdef RL_X86
/* Adjacent pairs: with c and s duplicated per pair and the pair swapped,
 * fmaddsub gives x0*c - x1*s in even lanes and x1*c + x0*s in odd lanes.
 * NeoX halves: plain vertical arithmetic on the two halves. */
RL_AVX2 static void rope_apply_avx2(float *x, int n_head, int head_dim, const float *cs, const float *sn, bool neox)
{
    int half = head_dim / 2;
    if (neox ? half % 8 != 0 : half % 4 != 0) { /* adjacent pairs go 4 at a time (head_dim 8 included) */
        rope_apply_scalar(x, n_head, head_dim, cs, sn, neox);
        return;
    }
    for (int h = 0; h < n_head; h++) {
        float *v = x + (size_t)h * head_dim;
        if (neox) {
            for (int i = 0; i < half; i += 8) {
                __m256 a = _mm256_loadu_ps(v + i), b = _mm256_loadu_ps(v + half + i);
                __m256 c = _mm256_loadu_ps(cs + i), s = _mm256_loadu_ps(sn + i);
                _mm256_storeu_ps(v + i, _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, s)));
                _mm256_storeu_ps(v + half + i, _mm256_fmadd_ps(a, s, _mm256_mul_ps(b, c)));
            }
        } else {
            for (int i = 0; i < half; i += 4) { /* 4 pairs = 8 values */
                __m128 c4 = _mm_loadu_ps(cs + i), s4 = _mm_loadu_ps(sn + i);
                __m256 c = _mm256_set_m128(_mm_unpackhi_ps(c4, c4), _mm_unpacklo_ps(c4, c4));
                __m256 s = _mm256_set_m128(_mm_unpackhi_ps(s4, s4), _mm_unpacklo_ps(s4, s4));
                __m256 xv = _mm256_loadu_ps(v + 2 * i);
                __m256 sw = _mm256_permute_ps(xv, 0xB1); /* swap within pairs */
                _mm256_storeu_ps(v + 2 * i, _mm256_fmaddsub_ps(xv, c, _mm256_mul_ps(sw, s)));
            }
        }
    }
}
#endif

static void (*rope_apply_fn)(float *, int, int, const float *, const float *, bool) = rope_apply_scalar;

/* ---- dispatch ---- */

static float (*dot_fn)(const float *, const float *, int) = dot_scalar;
static void (*scale_axpy_fn)(float *, float, float, const float *, int) = scale_axpy_scalar;


static void (*rmsnorm_fn)(float *, const float *, const float *, int, float) = rmsnorm_scalar;
static void (*softmax_fn)(float *, int) = softmax_scalar;
static void (*swiglu_fn)(float *, const float *, const float *, int) = swiglu_scalar;
static void (*exp_fn)(float *, const float *, int) = exp_scalar;
static void (*att_block_fn)(const float *, const float *, int, const float *, int, int, float, float *, float *,
                            float *) = att_block_scalar;

void rl_ops_init(void)
{
#ifdef RL_X86
    __builtin_cpu_init();
    const char *cap = getenv("RINGLM_CPU_KERNELS"); /* "scalar": the traits' cap applies here too */
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !(cap && strcmp(cap, "scalar") == 0)) {
        rmsnorm_fn = rmsnorm_avx2;
        softmax_fn = softmax_avx2;
        swiglu_fn = swiglu_avx2;
        dot_fn = dot_avx2;
        scale_axpy_fn = scale_axpy_avx2;
        rope_apply_fn = rope_apply_avx2;
        exp_fn = exp_avx2;
        att_block_fn = att_block_avx2;
        if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
            !(cap && strcmp(cap, "avx2") == 0)) {
            exp_fn = exp_avx512;
            att_block_fn = att_block_avx512;
        }
    }
#endif
}

void rl_ops_rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
    rmsnorm_fn(out, x, w, n, eps);
}

void rl_ops_softmax(float *x, int n)
{
    softmax_fn(x, n);
}

void rl_ops_swiglu(float *out, const float *gate, const float *up, int n)
{
    swiglu_fn(out, gate, up, n);
}

void rl_ops_add(float *y, const float *x, int n)
{
    for (int i = 0; i < n; i++) /* the compiler vectorizes this at -O2 */
        y[i] += x[i];
}

/* The forward pass rotates q and then k of the same token: the angles of the
 * last call are kept per thread and reused when position and frequencies
 * (compared by value) are the same, so the same cos/sin come out. */
static _Thread_local struct {
    int32_t pos;
    int half;
    float freq[512], cs[512], sn[512];
} rope_last = {.half = -1};

void rl_ops_rope(float *x, int n_head, int head_dim, int32_t pos, const float *inv_freq, bool neox)
{
    int half = head_dim / 2 < 512 ? head_dim / 2 : 512;
    if (half < 0)
        half = 0;
    if (rope_last.half != half || rope_last.pos != pos ||
        memcmp(rope_last.freq, inv_freq, sizeof(float) * (size_t)half) != 0) {
        for (int i = 0; i < half; i++) {
            double a = (double)pos * inv_freq[i];
            rope_last.cs[i] = (float)cos(a);
            rope_last.sn[i] = (float)sin(a);
        }
        memcpy(rope_last.freq, inv_freq, sizeof(float) * (size_t)half);
        rope_last.pos = pos;
        rope_last.half = half;
    }
    rope_apply_fn(x, n_head, head_dim, rope_last.cs, rope_last.sn, neox);
}

float rl_ops_dot(const float *x, const float *y, int n)
{
    return dot_fn(x, y, n);
}

void rl_ops_scale_axpy(float *y, float b, float a, const float *x, int n)
{
    scale_axpy_fn(y, b, a, x, n);
}

void rl_ops_exp(float *y, const float *x, int n)
{
    exp_fn(y, x, n);
}

void rl_ops_att_block(const float *Kt, const float *V, int rows, const float *q, int nq, int n, float scale, float *m,
                      float *l, float *acc)
{
    if (rows <= 0 || nq <= 0 || n <= 0)
        return;
    att_block_fn(Kt, V, rows < RL_OPS_ATT_ROWS ? rows : RL_OPS_ATT_ROWS, q, nq, n, scale, m, l, acc);
}
