/* test_types.c - type traits: half/bfloat16 conversion edge cases, hand-built
 * blocks that pin down each bit layout, quantization error bounds, and fast
 * vec_dot kernels against the scalar reference and a float64 dot. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rl_quant.h" /* the scalar converters, to compare the SIMD ones with */
#include "rl_types.h"

static uint32_t rng_state;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}
static float uniform(void) { return (float)((rnd() >> 8) + 0.5) / 16777216.0f; }
static float gauss(void) { return sqrtf(-2.0f * logf(uniform())) * cosf(6.2831853f * uniform()); }

static void fresh_seed(void)
{
    rng_state = (uint32_t)time(NULL) * 2654435761u | 1;
    printf("seed %u\n", rng_state);
}

static float f_of(uint32_t bits) { float f; memcpy(&f, &bits, 4); return f; }

START_TEST(fp16_special_values)
{
    ck_assert_uint_eq(rl_fp32_to_fp16(INFINITY), 0x7c00);
    ck_assert_uint_eq(rl_fp32_to_fp16(-INFINITY), 0xfc00);
    uint16_t n = rl_fp32_to_fp16(NAN);
    ck_assert((n & 0x7c00) == 0x7c00 && (n & 0x3ff) != 0);
    ck_assert(isnan(rl_fp16_to_fp32(0x7e00)) && isinf(rl_fp16_to_fp32(0xfc00)));
    ck_assert_uint_eq(rl_fp32_to_fp16(-0.0f), 0x8000);
    ck_assert_uint_eq(rl_fp32_to_fp16(65504.0f), 0x7bff);
    ck_assert_uint_eq(rl_fp32_to_fp16(65519.0f), 0x7bff); /* below the halfway point to 65536 */
    ck_assert_uint_eq(rl_fp32_to_fp16(65520.0f), 0x7c00); /* halfway rounds to even = infinity */
    ck_assert_uint_eq(rl_fp32_to_fp16(1e10f), 0x7c00);
}
END_TEST

START_TEST(fp16_subnormals_and_rounding)
{
    ck_assert_uint_eq(rl_fp32_to_fp16(0x1p-24f), 0x0001);
    ck_assert(rl_fp16_to_fp32(0x0001) == 0x1p-24f);
    ck_assert(rl_fp16_to_fp32(0x03ff) == 1023 * 0x1p-24f);
    ck_assert_uint_eq(rl_fp32_to_fp16(0x1p-25f), 0x0000);          /* tie to even: 0 */
    ck_assert_uint_eq(rl_fp32_to_fp16(0x1.0002p-25f), 0x0001);    /* just above the tie */
    ck_assert_uint_eq(rl_fp32_to_fp16(3 * 0x1p-25f), 0x0002);     /* 1.5 units: tie to even 2 */
    ck_assert_uint_eq(rl_fp32_to_fp16(0x1p-14f), 0x0400);          /* smallest normal */
    ck_assert_uint_eq(rl_fp32_to_fp16(0x1p-14f - 0x1p-25f), 0x0400); /* rounds up into the normals */
    ck_assert_uint_eq(rl_fp32_to_fp16(1.0f + 0x1p-11f), 0x3c00);   /* tie, even stays */
    ck_assert_uint_eq(rl_fp32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3c02); /* tie, odd rounds up */
    ck_assert_uint_eq(rl_fp32_to_fp16(1.0f + 0x1.01p-11f), 0x3c01);
    ck_assert_uint_eq(rl_fp32_to_fp16(2047.5f), 0x6800);          /* carry into the exponent: 2048 */
}
END_TEST

START_TEST(fp16_every_value_round_trips)
{
    for (uint32_t h = 0; h < 65536; h++) {
        float f = rl_fp16_to_fp32((uint16_t)h);
        if (isnan(f)) {
            ck_assert(isnan(rl_fp16_to_fp32(rl_fp32_to_fp16(f))));
            continue;
        }
        ck_assert_msg(rl_fp32_to_fp16(f) == h, "half 0x%04x -> %g -> 0x%04x", h, f, rl_fp32_to_fp16(f));
    }
}
END_TEST

START_TEST(bf16_conversions)
{
    ck_assert_uint_eq(rl_fp32_to_bf16(1.0f), 0x3f80);
    ck_assert_uint_eq(rl_fp32_to_bf16(f_of(0x3f808000)), 0x3f80); /* tie, even stays */
    ck_assert_uint_eq(rl_fp32_to_bf16(f_of(0x3f818000)), 0x3f82); /* tie, odd rounds up */
    ck_assert_uint_eq(rl_fp32_to_bf16(f_of(0x3f808001)), 0x3f81);
    ck_assert_uint_eq(rl_fp32_to_bf16(INFINITY), 0x7f80);
    ck_assert_uint_eq(rl_fp32_to_bf16(f_of(0x7f7fffff)), 0x7f80); /* FLT_MAX rounds to infinity */
    ck_assert(isnan(rl_bf16_to_fp32(rl_fp32_to_bf16(f_of(0x7f800001))))); /* NaN payload in low bits stays NaN */
    ck_assert(rl_bf16_to_fp32(0x0001) == f_of(0x00010000));          /* subnormal */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = rl_bf16_to_fp32((uint16_t)h);
        if (!isnan(f)) ck_assert_uint_eq(rl_fp32_to_bf16(f), h);
    }
}
END_TEST

START_TEST(traits_table_sizes_and_names)
{
    struct { int t; unsigned bs, ts; } want[] = {
        {RL_TYPE_F32, 1, 4}, {RL_TYPE_F16, 1, 2}, {RL_TYPE_BF16, 1, 2}, {RL_TYPE_Q8_0, 32, 34},
        {RL_TYPE_Q4_0, 32, 18}, {RL_TYPE_Q4_K, 256, 144}, {RL_TYPE_Q5_K, 256, 176},
        {RL_TYPE_Q6_K, 256, 210}, {RL_TYPE_Q8_K, 256, 292}, {RL_TYPE_Q4_1, 32, 20}, {RL_TYPE_Q5_0, 32, 22},
        {RL_TYPE_Q5_1, 32, 24}, {RL_TYPE_Q2_K, 256, 84},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const rl_type_traits *t = rl_type_get((uint32_t)want[i].t);
        ck_assert_ptr_nonnull(t);
        ck_assert_uint_eq(t->block_size, want[i].bs);
        ck_assert_uint_eq(t->type_size, want[i].ts);
        ck_assert_int_eq(rl_type_from_name(t->name), want[i].t);
    }
    ck_assert_int_eq(rl_type_from_name("q4_k"), RL_TYPE_Q4_K);
    ck_assert_int_eq(rl_type_from_name("nope"), -1);
    ck_assert_ptr_null(rl_type_get(4));
    ck_assert_ptr_null(rl_type_get(RL_TYPE_COUNT));
    ck_assert_uint_eq(rl_type_row_size(RL_TYPE_Q4_0, 4096), 4096 / 32 * 18);
    ck_assert_uint_eq(rl_type_row_size(RL_TYPE_Q4_K, 100), 0);
    int computable[] = {RL_TYPE_F32, RL_TYPE_F16, RL_TYPE_BF16, RL_TYPE_Q8_0, RL_TYPE_Q4_0, RL_TYPE_Q4_K,
                        RL_TYPE_Q5_K, RL_TYPE_Q6_K, RL_TYPE_Q4_1, RL_TYPE_Q5_0, RL_TYPE_Q5_1};
    for (size_t i = 0; i < sizeof computable / sizeof computable[0]; i++) {
        const rl_type_traits *t = rl_type_get((uint32_t)computable[i]);
        ck_assert(t->supported && t->to_float && t->from_float && t->vec_dot && t->vec_dot_ref);
    }
    ck_assert(!rl_type_get(RL_TYPE_Q2_K)->supported && !rl_type_get(RL_TYPE_Q3_K)->supported);
}
END_TEST

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

START_TEST(q4_0_block_layout)
{
    uint8_t b[18];
    put16(b, 0x3800); /* d = 0.5 */
    for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)(j | ((15 - j) << 4));
    float y[32];
    rl_type_get(RL_TYPE_Q4_0)->to_float(b, y, 32);
    for (int j = 0; j < 16; j++) {
        ck_assert(y[j] == (j - 8) * 0.5f);        /* low nibbles: elements 0..15 */
        ck_assert(y[16 + j] == (7 - j) * 0.5f);   /* high nibbles: elements 16..31 */
    }
}
END_TEST

START_TEST(q8_0_block_layout)
{
    uint8_t b[34];
    put16(b, 0x3400); /* d = 0.25 */
    for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(int8_t)(j * 8 - 128);
    float y[32];
    rl_type_get(RL_TYPE_Q8_0)->to_float(b, y, 32);
    for (int j = 0; j < 32; j++) ck_assert(y[j] == (j * 8 - 128) * 0.25f);
}
END_TEST

/* The 32-blocks with a fifth bit and/or a min: element j's low 4 bits in
 * nibble j % 16 of byte j % 16 (low for j < 16), its fifth bit bit j of qh. */
START_TEST(q4_1_q5_0_q5_1_block_layouts)
{
    uint8_t b[24];
    uint32_t qh = 0xA5C3F00Fu;
    /* Q5_0: d = 0.5, x = d * (q - 16) */
    put16(b, 0x3800);
    memcpy(b + 2, &qh, 4);
    for (int j = 0; j < 16; j++) b[6 + j] = (uint8_t)(j | ((15 - j) << 4));
    float y[32];
    rl_type_get(RL_TYPE_Q5_0)->to_float(b, y, 32);
    for (int j = 0; j < 16; j++) {
        int lo = j | (int)(((qh >> j) & 1) << 4), hi = (15 - j) | (int)(((qh >> (j + 16)) & 1) << 4);
        ck_assert_msg(y[j] == (lo - 16) * 0.5f, "Q5_0 element %d: %g", j, y[j]);
        ck_assert_msg(y[16 + j] == (hi - 16) * 0.5f, "Q5_0 element %d: %g", 16 + j, y[16 + j]);
    }
    /* Q5_1: d = 0.25, m = -2, x = d * q + m */
    put16(b, 0x3400);
    put16(b + 2, 0xc000);
    memcpy(b + 4, &qh, 4);
    for (int j = 0; j < 16; j++) b[8 + j] = (uint8_t)(j | ((15 - j) << 4));
    rl_type_get(RL_TYPE_Q5_1)->to_float(b, y, 32);
    for (int j = 0; j < 16; j++) {
        int lo = j | (int)(((qh >> j) & 1) << 4), hi = (15 - j) | (int)(((qh >> (j + 16)) & 1) << 4);
        ck_assert(y[j] == lo * 0.25f - 2.f && y[16 + j] == hi * 0.25f - 2.f);
    }
    /* Q4_1: d = 1, m = 0.5 */
    put16(b, 0x3c00);
    put16(b + 2, 0x3800);
    for (int j = 0; j < 16; j++) b[4 + j] = (uint8_t)(j | ((15 - j) << 4));
    rl_type_get(RL_TYPE_Q4_1)->to_float(b, y, 32);
    for (int j = 0; j < 16; j++) ck_assert(y[j] == j + 0.5f && y[16 + j] == (15 - j) + 0.5f);
}
END_TEST

/* Pack 6-bit scales/mins as the Q4_K/Q5_K format defines them. */
static void pack_k_scales(uint8_t *s, const int *sc, const int *m)
{
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        s[4 + j] = (uint8_t)((m[j] & 63) | ((m[j + 4] >> 4) << 6));
        s[8 + j] = (uint8_t)((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
    }
}

START_TEST(q4_k_block_layout)
{
    uint8_t b[144];
    int sc[8] = {1, 2, 3, 4, 33, 34, 51, 63}, m[8] = {0, 1, 2, 3, 40, 17, 62, 63};
    put16(b, 0x3c00);     /* d = 1 */
    put16(b + 2, 0x3800); /* dmin = 0.5 */
    pack_k_scales(b + 4, sc, m);
    for (int i = 0; i < 128; i++) b[16 + i] = (uint8_t)((i % 16) | (((i * 3) % 16) << 4));
    float y[256];
    rl_type_get(RL_TYPE_Q4_K)->to_float(b, y, 256);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            int i = 32 * c + l;
            ck_assert(y[64 * c + l] == sc[2 * c] * (i % 16) - 0.5f * m[2 * c]);
            ck_assert(y[64 * c + 32 + l] == sc[2 * c + 1] * ((i * 3) % 16) - 0.5f * m[2 * c + 1]);
        }
}
END_TEST

START_TEST(q5_k_block_layout)
{
    uint8_t b[176] = {0};
    int sc[8] = {1, 1, 1, 1, 1, 1, 1, 1}, m[8] = {0};
    put16(b, 0x3c00);
    pack_k_scales(b + 4, sc, m);
    for (int l = 0; l < 32; l++) b[16 + l] = (uint8_t)(1u << (l % 8)); /* qh: element 64c+l high bit iff l%8 == 2c */
    for (int i = 0; i < 128; i++) b[48 + i] = 0x53;                      /* low nibble 3, high 5 */
    float y[256];
    rl_type_get(RL_TYPE_Q5_K)->to_float(b, y, 256);
    for (int c = 0; c < 4; c++)
        for (int l = 0; l < 32; l++) {
            ck_assert(y[64 * c + l] == 3 + ((l % 8) == 2 * c ? 16 : 0));
            ck_assert(y[64 * c + 32 + l] == 5 + ((l % 8) == 2 * c + 1 ? 16 : 0));
        }
}
END_TEST

START_TEST(q6_k_block_layout)
{
    uint8_t b[210];
    for (int i = 0; i < 128; i++) b[i] = (uint8_t)((i % 16) | ((15 - i % 16) << 4));
    for (int i = 0; i < 64; i++) b[128 + i] = (uint8_t)(i % 4 | (((i + 1) % 4) << 2) | (((i + 2) % 4) << 4) | ((i % 3) << 6));
    for (int g = 0; g < 16; g++) b[192 + g] = (uint8_t)(int8_t)(g - 8);
    put16(b + 208, 0x4000); /* d = 2 */
    float y[256];
    rl_type_get(RL_TYPE_Q6_K)->to_float(b, y, 256);
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            int ql0 = 64 * h + l, ql1 = 64 * h + 32 + l, qh = 32 * h + l;
            int q[4] = {(ql0 % 16) | ((qh % 4) << 4), (ql1 % 16) | (((qh + 1) % 4) << 4),
                        (15 - ql0 % 16) | (((qh + 2) % 4) << 4), (15 - ql1 % 16) | ((qh % 3) << 4)};
            for (int k = 0; k < 4; k++) {
                int e = 128 * h + 32 * k + l;
                ck_assert_msg(y[e] == 2.0f * (e / 16 - 8) * (q[k] - 32), "element %d", e);
            }
        }
}
END_TEST

START_TEST(q8_k_has_group_sums)
{
    fresh_seed();
    float x[512];
    for (int i = 0; i < 512; i++) x[i] = gauss();
    uint8_t b[2 * 292];
    rl_type_get(RL_TYPE_Q8_K)->from_float(x, b, 512);
    for (int blk = 0; blk < 2; blk++)
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int k = 0; k < 16; k++) sum += (int8_t)b[292 * blk + 4 + 16 * g + k];
            int16_t stored;
            memcpy(&stored, b + 292 * blk + 260 + 2 * g, 2);
            ck_assert_int_eq(stored, sum);
        }
}
END_TEST

/* Relative RMS error of quantize -> dequantize on fresh Gaussian data. */
static double roundtrip_rel_rms(int type, int64_t n)
{
    const rl_type_traits *t = rl_type_get((uint32_t)type);
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    void *q = malloc(rl_type_row_size(type, n));
    for (int64_t i = 0; i < n; i++) x[i] = 0.02f * gauss() + (i % 97 == 0 ? 0.1f : 0); /* a few outliers */
    t->from_float(x, q, n);
    t->to_float(q, y, n);
    double e2 = 0, x2 = 0;
    for (int64_t i = 0; i < n; i++) {
        e2 += (double)(x[i] - y[i]) * (x[i] - y[i]);
        x2 += (double)x[i] * x[i];
    }
    free(x);
    free(y);
    free(q);
    return sqrt(e2 / x2);
}

START_TEST(quantization_error_within_bounds)
{
    fresh_seed();
    struct { int t; double bound; } b[] = {
        {RL_TYPE_F32, 0}, {RL_TYPE_F16, 5e-4}, {RL_TYPE_BF16, 4e-3}, {RL_TYPE_Q8_0, 8.5e-3}, {RL_TYPE_Q8_K, 0.015},
        {RL_TYPE_Q6_K, 0.03}, {RL_TYPE_Q5_K, 0.05}, {RL_TYPE_Q4_K, 0.10}, {RL_TYPE_Q4_0, 0.13},
        {RL_TYPE_Q5_0, 0.063}, {RL_TYPE_Q5_1, 0.05}, {RL_TYPE_Q4_1, 0.10},
    };
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
        double e = roundtrip_rel_rms(b[i].t, 8192);
        printf("%-5s relative rms error %.5f (bound %.5f)\n", rl_type_get((uint32_t)b[i].t)->name, e, b[i].bound);
        ck_assert_msg(e <= b[i].bound, "%s error %g > %g", rl_type_get((uint32_t)b[i].t)->name, e, b[i].bound);
    }
}
END_TEST

/* Fast kernel, reference and float64 dot of the dequantized rows must agree. */
static void check_vec_dot(int type, int64_t n)
{
    const rl_type_traits *t = rl_type_get((uint32_t)type), *at = rl_type_get(t->vec_dot_type);
    float *w = malloc(sizeof(float) * n), *a = malloc(sizeof(float) * n);
    float *wd = malloc(sizeof(float) * n), *ad = malloc(sizeof(float) * n);
    void *wq = malloc(rl_type_row_size(type, n)), *aq = malloc(rl_type_row_size(t->vec_dot_type, n));
    for (int64_t i = 0; i < n; i++) {
        w[i] = gauss();
        a[i] = gauss() * (i % 5 == 0 ? 3.0f : 1.0f);
    }
    t->from_float(w, wq, n);
    at->from_float(a, aq, n);
    t->to_float(wq, wd, n);
    at->to_float(aq, ad, n);
    double exact = 0, mag = 0;
    for (int64_t i = 0; i < n; i++) {
        exact += (double)wd[i] * ad[i];
        mag += fabs((double)wd[i] * ad[i]);
    }
    float r = t->vec_dot_ref(n, wq, aq), f = t->vec_dot(n, wq, aq);
    double tol = 1e-5 * mag + 1e-6;
    ck_assert_msg(fabs(r - exact) <= tol, "%s n=%lld ref %g vs exact %g", t->name, (long long)n, r, exact);
    ck_assert_msg(fabs(f - exact) <= tol, "%s n=%lld fast %g vs exact %g", t->name, (long long)n, f, exact);
    free(w);
    free(a);
    free(wd);
    free(ad);
    free(wq);
    free(aq);
}

START_TEST(vec_dot_fast_matches_reference)
{
    fresh_seed();
    rl_types_init();
    int types[] = {RL_TYPE_F32, RL_TYPE_F16, RL_TYPE_BF16, RL_TYPE_Q8_0, RL_TYPE_Q4_0, RL_TYPE_Q4_K,
                   RL_TYPE_Q5_K, RL_TYPE_Q6_K, RL_TYPE_Q4_1, RL_TYPE_Q5_0, RL_TYPE_Q5_1};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        const rl_type_traits *t = rl_type_get((uint32_t)types[i]);
        printf("%-5s vec_dot %s\n", t->name, t->vec_dot == t->vec_dot_ref ? "scalar" : "SIMD");
        for (int k = 1; k <= 5; k++) check_vec_dot(types[i], (int64_t)t->block_size == 1 ? 37 * k : 256 * k + (t->block_size == 32 ? 32 : 0));
        check_vec_dot(types[i], 4096);
    }
}
END_TEST

START_TEST(quantizers_survive_non_finite_input)
{
    /* Run under UBSan in CI: no float->int conversion may overflow. */
    float x[512], y[512];
    for (int i = 0; i < 512; i++) x[i] = (float)(i % 7) - 3;
    x[0] = NAN;
    x[40] = INFINITY;
    x[100] = -INFINITY;
    x[101] = 1e30f;
    x[102] = -1e-40f;
    int types[] = {RL_TYPE_F16, RL_TYPE_BF16, RL_TYPE_Q8_0, RL_TYPE_Q4_0, RL_TYPE_Q4_K, RL_TYPE_Q5_K,
                   RL_TYPE_Q6_K, RL_TYPE_Q8_K, RL_TYPE_Q4_1, RL_TYPE_Q5_0, RL_TYPE_Q5_1};
    uint8_t q[2048];
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const rl_type_traits *t = rl_type_get((uint32_t)types[k]);
        ck_assert_uint_le(rl_type_row_size(types[k], 512), sizeof q);
        t->from_float(x, q, 512);
        t->to_float(q, y, 512);
        /* A (super-)block without non-finite input still round-trips sensibly. */
        ck_assert_msg(fabsf(y[400] - x[400]) <= 0.5f, "%s: %g -> %g", t->name, x[400], y[400]);
    }
}
END_TEST

START_TEST(simd_converters_match_scalar_bit_for_bit)
{
    fresh_seed();
    enum { N = 1024 + 8 };
    float x[N], y1[N], y2[N];
    uint8_t a[2 * N], b[2 * N]; /* >= 4 * 292 for Q8_K */
    for (int i = 0; i < N; i++) x[i] = gauss() * (i % 50 == 0 ? 30.0f : 1.0f);
    x[5] = NAN;
    x[700] = -0.0f;
    for (int i = 256; i < 512; i++) x[i] = 0; /* an all-zero super-block */
    x[40] = 0.5f * 0x1p-24f; /* a tie on the half subnormal grid */
    const rl_type_traits *f16 = rl_type_get(RL_TYPE_F16), *q8 = rl_type_get(RL_TYPE_Q8_0), *q8k = rl_type_get(RL_TYPE_Q8_K);
    f16->from_float(x, a, N);
    rl_f16_from_float(x, b, N);
    ck_assert_int_eq(memcmp(a, b, 2 * N), 0);
    f16->to_float(a, y1, N);
    rl_f16_to_float(a, y2, N);
    ck_assert_int_eq(memcmp(y1, y2, sizeof y1), 0);
    q8->from_float(x, a, 1024);
    rl_q8_0_from_float(x, b, 1024);
    ck_assert_int_eq(memcmp(a, b, 1024 / 32 * 34), 0);
    q8k->from_float(x, a, 1024);
    rl_q8_k_from_float(x, b, 1024);
    ck_assert_int_eq(memcmp(a, b, 4 * 292), 0);
}
END_TEST

START_TEST(vec_dot_rows_matches_vec_dot)
{
    fresh_seed();
    int types[] = {RL_TYPE_F32, RL_TYPE_F16, RL_TYPE_BF16, RL_TYPE_Q8_0, RL_TYPE_Q4_0, RL_TYPE_Q4_K,
                   RL_TYPE_Q5_K, RL_TYPE_Q6_K, RL_TYPE_Q4_1, RL_TYPE_Q5_0, RL_TYPE_Q5_1};
    const int64_t n = 512 + 32, rows = 7; /* an odd block count for the 32-blocks */
    float w[544], a[544], wd[544], ad[544], out[7];
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        const rl_type_traits *t = rl_type_get((uint32_t)types[k]), *at = rl_type_get(t->vec_dot_type);
        int64_t nk = t->block_size == 256 ? 512 : n;
        size_t rs = rl_type_row_size(types[k], nk);
        uint8_t *wq = malloc(rs * rows), *aq = malloc(rl_type_row_size(t->vec_dot_type, nk));
        for (int64_t i = 0; i < nk; i++) a[i] = gauss();
        at->from_float(a, aq, nk);
        at->to_float(aq, ad, nk);
        for (int64_t r = 0; r < rows; r++) {
            for (int64_t i = 0; i < nk; i++) w[i] = gauss();
            t->from_float(w, wq + r * rs, nk);
        }
        ck_assert_ptr_nonnull(t->vec_dot_rows);
        t->vec_dot_rows(nk, wq, rs, rows, aq, out);
        for (int64_t r = 0; r < rows; r++) {
            t->to_float(wq + r * rs, wd, nk);
            double exact = 0, mag = 0;
            for (int64_t i = 0; i < nk; i++) {
                exact += (double)wd[i] * ad[i];
                mag += fabs((double)wd[i] * ad[i]);
            }
            ck_assert_msg(fabs(out[r] - exact) <= 1e-5 * mag + 1e-6, "%s row %lld: %g vs %g", t->name,
                          (long long)r, out[r], exact);
        }
        free(wq);
        free(aq);
    }
}
END_TEST

START_TEST(vec_dot_handles_extreme_weights)
{
    /* Weights at the ends of their ranges (Q8_0 -128, Q4_0 nibble 0 and 15). */
    rl_types_init();
    fresh_seed();
    uint8_t w8[34 * 4], w4[18 * 4], a8[34 * 4];
    float a[128];
    for (int i = 0; i < 128; i++) a[i] = gauss();
    rl_type_get(RL_TYPE_Q8_0)->from_float(a, a8, 128);
    for (int b = 0; b < 4; b++) {
        put16(w8 + 34 * b, 0x3c00);
        put16(w4 + 18 * b, 0x3c00);
        for (int j = 0; j < 32; j++) w8[34 * b + 2 + j] = (uint8_t)(j % 2 ? 0x80 : 0x7f);
        for (int j = 0; j < 16; j++) w4[18 * b + 2 + j] = (uint8_t)(j % 2 ? 0xf0 : 0x0f);
    }
    const rl_type_traits *q8 = rl_type_get(RL_TYPE_Q8_0), *q4 = rl_type_get(RL_TYPE_Q4_0);
    ck_assert(fabsf(q8->vec_dot(128, w8, a8) - q8->vec_dot_ref(128, w8, a8)) <= 1e-3f * fabsf(q8->vec_dot_ref(128, w8, a8)) + 1e-3f);
    ck_assert(fabsf(q4->vec_dot(128, w4, a8) - q4->vec_dot_ref(128, w4, a8)) <= 1e-3f * fabsf(q4->vec_dot_ref(128, w4, a8)) + 1e-3f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("types");
    TCase *tc = tcase_create("types");
    tcase_add_test(tc, fp16_special_values);
    tcase_add_test(tc, fp16_subnormals_and_rounding);
    tcase_add_test(tc, fp16_every_value_round_trips);
    tcase_add_test(tc, bf16_conversions);
    tcase_add_test(tc, traits_table_sizes_and_names);
    tcase_add_test(tc, q4_0_block_layout);
    tcase_add_test(tc, q8_0_block_layout);
    tcase_add_test(tc, q4_1_q5_0_q5_1_block_layouts);
    tcase_add_test(tc, q4_k_block_layout);
    tcase_add_test(tc, q5_k_block_layout);
    tcase_add_test(tc, q6_k_block_layout);
    tcase_add_test(tc, q8_k_has_group_sums);
    tcase_add_test(tc, quantization_error_within_bounds);
    tcase_add_test(tc, vec_dot_fast_matches_reference);
    tcase_add_test(tc, quantizers_survive_non_finite_input);
    tcase_add_test(tc, simd_converters_match_scalar_bit_for_bit);
    tcase_add_test(tc, vec_dot_rows_matches_vec_dot);
    tcase_add_test(tc, vec_dot_handles_extreme_weights);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
