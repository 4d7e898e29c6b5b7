/* test_model_gemm.c - the tiled matmul (and its int8 and float micro-kernels)
 * against the traits' scalar vec_dot_ref, for odd shapes that exercise every
 * tile edge: rows and tokens not multiples of 4 or of the tile, odd block
 * counts, float rows not a multiple of the vector width. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "rl_gemm.h"
#include "rl_ops.h"
#include "rl_quant.h" /* rl_vd_f32_ref */

static float frand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (float)(*s >> 40) / (float)(1 << 24) - 0.5f;
}

static void check_gemm(rl_type wt, int64_t k, int64_t n_rows, int64_t n_tok, int threads)
{
    rl_types_init();
    const rl_type_traits *tt = rl_type_get(wt), *vt = rl_type_get(tt->vec_dot_type);
    size_t rb = rl_type_row_size(wt, k), ab = rl_type_row_size(tt->vec_dot_type, k);
    uint64_t s = 99;
    float *row = malloc(sizeof(float) * (size_t)k), *x = malloc(sizeof(float) * (size_t)(k * n_tok));
    uint8_t *w = malloc(rb * (size_t)n_rows), *aq = malloc(ab * (size_t)n_tok);
    for (int64_t r = 0; r < n_rows; r++) {
        for (int64_t i = 0; i < k; i++)
            row[i] = frand(&s);
        tt->from_float(row, w + r * rb, k);
    }
    for (int64_t i = 0; i < k * n_tok; i++)
        x[i] = frand(&s) * 3.f;
    for (int64_t t = 0; t < n_tok; t++) {
        if (tt->vec_dot_type == RL_TYPE_F32)
            memcpy(aq + t * ab, x + t * k, ab);
        else
            vt->from_float(x + t * k, aq + t * ab, k);
    }
    float *y = malloc(sizeof(float) * (size_t)(n_rows * n_tok));
    void *scr = malloc(rl_gemm_scratch_size(wt, k, n_tok));
    rl_pool *p = rl_pool_new(threads);
    rl_gemm_act act = {0};
    ck_assert_int_eq(rl_gemm_prepare(p, &act, wt, x, n_tok, k, scr), 0);
    rl_gemm_run(p, w, wt, n_rows, &act, y, n_rows);
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t r = 0; r < n_rows; r++) {
            float ref = tt->vec_dot_ref(k, w + r * rb, aq + t * ab);
            float got = y[t * n_rows + r];
            ck_assert_msg(fabsf(got - ref) <= 1e-4f * (1.f + fabsf(ref)), "%s k=%lld row %lld tok %lld: %g vs %g",
                          tt->name, (long long)k, (long long)r, (long long)t, got, ref);
        }
    rl_pool_free(p);
    free(row); free(x); free(w); free(aq); free(y); free(scr);
}

START_TEST(q4_0_tiles_match_scalar_dot_with_odd_block_count) { check_gemm(RL_TYPE_Q4_0, 32 * 5, 7, 5, 2); }
END_TEST
START_TEST(q8_0_tiles_match_scalar_dot_with_odd_block_count) { check_gemm(RL_TYPE_Q8_0, 32 * 7, 9, 6, 2); }
END_TEST
START_TEST(q4_0_tiles_match_scalar_dot_across_tile_edges) { check_gemm(RL_TYPE_Q4_0, 32 * 8, 37, 70, 2); }
END_TEST
START_TEST(q8_0_tiles_match_scalar_dot_single_token) { check_gemm(RL_TYPE_Q8_0, 32 * 4, 33, 1, 1); }
END_TEST
START_TEST(q4_k_matmul_matches_scalar_dot) { check_gemm(RL_TYPE_Q4_K, 512, 19, 35, 2); }
END_TEST
START_TEST(q6_k_matmul_matches_scalar_dot) { check_gemm(RL_TYPE_Q6_K, 256, 5, 3, 2); }
END_TEST
START_TEST(f16_matmul_matches_scalar_dot) { check_gemm(RL_TYPE_F16, 96, 17, 33, 2); }
END_TEST

START_TEST(f32_matmul_matches_scalar_dot_with_awkward_k) { check_gemm(RL_TYPE_F32, 69, 37, 70, 2); }
END_TEST
START_TEST(bf16_matmul_matches_scalar_dot_with_awkward_k) { check_gemm(RL_TYPE_BF16, 43, 9, 11, 2); }
END_TEST
START_TEST(f16_matmul_matches_scalar_dot_with_awkward_k) { check_gemm(RL_TYPE_F16, 13, 6, 7, 1); }
END_TEST

/* ---- float micro-kernels (rl_gemm_f.c) ---- */

static uint64_t fresh_seed(void)
{
    uint64_t s = ((uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid() << 20) | 1;
    printf("float tiles: seed %llu\n", (unsigned long long)s);
    return s;
}

/* Weights: n_rows rows of k values of type wt (from random floats; the traits'
 * from_float for F16/BF16). Activations: n_tok rows of k floats. */
static void rand_wa(rl_type wt, int64_t k, int64_t n_rows, int64_t n_tok, uint64_t *s, uint8_t **w, float **x)
{
    const rl_type_traits *tt = rl_type_get(wt);
    size_t rb = rl_type_row_size(wt, k);
    float *row = malloc(sizeof(float) * (size_t)k);
    *w = malloc(rb * (size_t)n_rows);
    *x = malloc(sizeof(float) * (size_t)(k * n_tok));
    for (int64_t r = 0; r < n_rows; r++) {
        for (int64_t i = 0; i < k; i++)
            row[i] = frand(s) * (r % 3 == 0 ? 100.f : 1.f);
        tt->from_float(row, *w + r * rb, k);
    }
    for (int64_t i = 0; i < k * n_tok; i++)
        (*x)[i] = frand(s) * 4.f;
    free(row);
}

/* |got - ref| within float rounding of a k-term dot: relative to sum |w_i x_i|
 * (so cancellation cannot make the bound meaningless); false for any NaN. */
static bool dot_close(rl_type wt, int64_t k, const uint8_t *wr, const float *xr, float got, float ref)
{
    const rl_type_traits *tt = rl_type_get(wt);
    float *wf = malloc(sizeof(float) * (size_t)k);
    tt->to_float(wr, wf, k);
    double mag = 0;
    for (int64_t i = 0; i < k; i++)
        mag += fabs((double)wf[i] * xr[i]);
    free(wf);
    double err = fabs((double)got - ref);
    return err <= 2.4e-7 * (double)(k / 8 + 8) * mag + 1e-30; /* twice the worst case of 8-lane sums */
}

/* Every tile shape of the kernel for wt (1..4 rows x 1..NT tokens: the float
 * tiles take any token count), at every (row, token) offset inside a 4 x NT
 * block, against rl_vd_*_ref; also: the same output is the same bits whatever
 * the tile shape that computed it. */
enum { NT = 7 };
static void check_float_tiles(rl_type wt, int64_t k)
{
    rl_gemm_tile_fn tile = rl_gemm_tile_kernel(wt);
    if (!tile) {
        printf("skip: no float micro-kernel on this CPU (or capped)\n");
        return;
    }
    const rl_type_traits *tt = rl_type_get(wt);
    uint64_t s = fresh_seed();
    size_t rb = rl_type_row_size(wt, k), ab = sizeof(float) * (size_t)k;
    uint8_t *w;
    float *x;
    rand_wa(wt, k, 4, NT, &s, &w, &x);
    float ref[4][NT], first[4][NT];
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < NT; t++)
            ref[r][t] = tt->vec_dot_ref(k, w + r * rb, x + t * k);
    for (int nr = 1; nr <= 4; nr++)
        for (int nt = 1; nt <= NT; nt++)
            for (int r0 = 0; r0 + nr <= 4; r0++)
                for (int t0 = 0; t0 + nt <= NT; t0++) {
                    float y[NT][4];
                    for (int i = 0; i < NT * 4; i++)
                        y[i / 4][i % 4] = NAN; /* y[t][r], ldy 4 */
                    tile(k, w + r0 * rb, rb, nr, x + t0 * k, ab, nt, &y[t0][r0], 4);
                    for (int t = 0; t < NT; t++)
                        for (int r = 0; r < 4; r++) {
                            bool in = r >= r0 && r < r0 + nr && t >= t0 && t < t0 + nt;
                            if (!in) { /* outside the tile: untouched */
                                ck_assert_msg(isnan(y[t][r]), "tile %dx%d wrote outside at (%d,%d)", nr, nt, r, t);
                                continue;
                            }
                            float got = y[t][r];
                            ck_assert_msg(dot_close(wt, k, w + r * rb, x + t * k, got, ref[r][t]),
                                          "%s k=%lld tile %dx%d at (%d,%d) row %d tok %d: %.9g vs %.9g", tt->name,
                                          (long long)k, nr, nt, r0, t0, r, t, got, ref[r][t]);
                            if (nr == 1 && nt == 1)
                                first[r][t] = got;
                            else
                                ck_assert_msg(memcmp(&got, &first[r][t], sizeof got) == 0,
                                              "%s k=%lld row %d tok %d: tile %dx%d gives %.9g, 1x1 gave %.9g",
                                              tt->name, (long long)k, r, t, nr, nt, got, first[r][t]);
                        }
                }
    free(w);
    free(x);
}

START_TEST(f32_tiles_match_reference_for_every_shape_and_short_k)
{
    static const int64_t ks[] = {1, 5, 8, 13, 64, 172};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
        check_float_tiles(RL_TYPE_F32, ks[i]);
}
END_TEST

START_TEST(f32_tiles_match_reference_for_long_odd_k) { check_float_tiles(RL_TYPE_F32, 2048 + 7); }
END_TEST

START_TEST(f16_and_bf16_tiles_match_reference_with_odd_k)
{
    check_float_tiles(RL_TYPE_F16, 75);
    check_float_tiles(RL_TYPE_BF16, 75);
    check_float_tiles(RL_TYPE_F16, 3);
    check_float_tiles(RL_TYPE_BF16, 6);
}
END_TEST

/* One matmul over n_tok tokens: y[t * n_rows + r]. */
static float *matmul(rl_type wt, const uint8_t *w, int64_t n_rows, const float *x, int64_t n_tok, int64_t k,
                     int threads)
{
    float *y = malloc(sizeof(float) * (size_t)(n_rows * n_tok));
    void *scr = malloc(rl_gemm_scratch_size(wt, k, n_tok) + 1);
    rl_pool *p = rl_pool_new(threads);
    rl_gemm_act act = {0};
    ck_assert_int_eq(rl_gemm_prepare(p, &act, wt, x, n_tok, k, scr), 0);
    rl_gemm_run(p, w, wt, n_rows, &act, y, n_rows);
    rl_pool_free(p);
    free(scr);
    return y;
}

/* The batched-vs-alone guarantee at the kernel level: token j's outputs in a
 * step of n tokens are the bits it gets alone, and within rounding of the
 * scalar reference. */
static void check_alone_vs_batched(rl_type wt, int64_t k, int64_t n_rows, int64_t n_tok)
{
    const rl_type_traits *tt = rl_type_get(wt);
    uint64_t s = fresh_seed();
    size_t rb = rl_type_row_size(wt, k);
    uint8_t *w;
    float *x;
    rand_wa(wt, k, n_rows, n_tok, &s, &w, &x);
    float *all = matmul(wt, w, n_rows, x, n_tok, k, 2);
    for (int64_t t = 0; t < n_tok; t++) {
        float *one = matmul(wt, w, n_rows, x + t * k, 1, k, 1);
        for (int64_t r = 0; r < n_rows; r++) {
            float got = all[t * n_rows + r], ref = tt->vec_dot_ref(k, w + r * rb, x + t * k);
            ck_assert_msg(memcmp(&got, &one[r], sizeof got) == 0,
                          "%s row %lld tok %lld: %.9g in a batch of %lld, %.9g alone", tt->name, (long long)r,
                          (long long)t, got, (long long)n_tok, one[r]);
            ck_assert_msg(dot_close(wt, k, w + r * rb, x + t * k, got, ref), "%s row %lld tok %lld: %.9g vs ref %.9g",
                          tt->name, (long long)r, (long long)t, got, ref);
        }
        free(one);
    }
    free(all);
    free(w);
    free(x);
}

START_TEST(f32_matmul_token_alone_gives_same_bits_as_in_batch) { check_alone_vs_batched(RL_TYPE_F32, 172, 37, 23); }
END_TEST
START_TEST(bf16_matmul_token_alone_gives_same_bits_as_in_batch) { check_alone_vs_batched(RL_TYPE_BF16, 67, 18, 9); }
END_TEST

/* The same guarantee for the int8 tiles (Q4_0, Q8_0 weights on Q8_0
 * activations): one token alone runs on 4-row x 1-token tiles (and 1..3-row
 * tiles at the end of a row strip), a batch on 4 x 4 tiles; the bits agree,
 * and each output is within rounding of the traits' scalar dot. */
static void check_int8_alone_vs_batched(rl_type wt, int64_t k, int64_t n_rows, int64_t n_tok)
{
    const rl_type_traits *tt = rl_type_get(wt), *vt = rl_type_get(tt->vec_dot_type);
    uint64_t s = fresh_seed();
    size_t rb = rl_type_row_size(wt, k);
    uint8_t *w, *aq = malloc(rl_type_row_size(tt->vec_dot_type, k));
    float *x;
    rand_wa(wt, k, n_rows, n_tok, &s, &w, &x);
    float *all = matmul(wt, w, n_rows, x, n_tok, k, 2);
    float *wf = malloc(sizeof(float) * (size_t)k), *af = malloc(sizeof(float) * (size_t)k);
    for (int64_t t = 0; t < n_tok; t++) {
        float *one = matmul(wt, w, n_rows, x + t * k, 1, k, t % 2 ? 2 : 1);
        vt->from_float(x + t * k, aq, k);
        vt->to_float(aq, af, k);
        for (int64_t r = 0; r < n_rows; r++) {
            float got = all[t * n_rows + r], ref = tt->vec_dot_ref(k, w + r * rb, aq);
            ck_assert_msg(memcmp(&got, &one[r], sizeof got) == 0,
                          "%s row %lld tok %lld: %.9g in a batch of %lld, %.9g alone", tt->name, (long long)r,
                          (long long)t, got, (long long)n_tok, one[r]);
            /* both sum exact integers per block in float: rounding relative to sum |w a| */
            tt->to_float(w + r * rb, wf, k);
            double mag = 0;
            for (int64_t i = 0; i < k; i++)
                mag += fabs((double)wf[i] * af[i]);
            ck_assert_msg(fabs((double)got - ref) <= 1e-6 * mag + 1e-30, "%s row %lld tok %lld: %.9g vs ref %.9g (sum |wa| %g)",
                          tt->name, (long long)r, (long long)t, got, ref, mag);
        }
        free(one);
    }
    free(all);
    free(w);
    free(x);
    free(aq);
    free(wf);
    free(af);
}

START_TEST(q4_0_matmul_token_alone_gives_same_bits_as_in_batch) { check_int8_alone_vs_batched(RL_TYPE_Q4_0, 32 * 67, 39, 11); }
END_TEST
START_TEST(q5_0_matmul_token_alone_gives_same_bits_as_in_batch) { check_int8_alone_vs_batched(RL_TYPE_Q5_0, 32 * 13, 29, 9); }
END_TEST
START_TEST(q4_1_matmul_token_alone_gives_same_bits_as_in_batch) { check_int8_alone_vs_batched(RL_TYPE_Q4_1, 32 * 9, 22, 7); }
END_TEST
START_TEST(q5_1_matmul_token_alone_gives_same_bits_as_in_batch) { check_int8_alone_vs_batched(RL_TYPE_Q5_1, 32 * 10, 17, 5); }
END_TEST
START_TEST(q8_0_matmul_token_alone_gives_same_bits_as_in_batch) { check_int8_alone_vs_batched(RL_TYPE_Q8_0, 32 * 9, 70, 6); }
END_TEST
/* K-quant tiles (rl_gemm_k.c): rows one after another, 1..4 tokens */
START_TEST(q4_k_matmul_token_alone_gives_same_bits_as_in_batch) { check_int8_alone_vs_batched(RL_TYPE_Q4_K, 256 * 5, 39, 11); }
END_TEST
START_TEST(q5_k_matmul_token_alone_gives_same_bits_as_in_batch) { check_int8_alone_vs_batched(RL_TYPE_Q5_K, 256 * 4, 18, 6); }
END_TEST
START_TEST(q6_k_matmul_token_alone_gives_same_bits_as_in_batch) { check_int8_alone_vs_batched(RL_TYPE_Q6_K, 256 * 3, 21, 7); }
END_TEST

/* The AVX2 tiles compute the VNNI tiles' integers with other instructions and
 * the same float steps: the same bits, for every int8 weight type, one token
 * and a batch. Skips where the CPU lacks VNNI. */
START_TEST(int8_tiles_give_the_same_bits_on_avx2_as_on_vnni)
{
    rl_types_init();
    int have = rl_gemm_q_force_level(2);
    if (have < 2) {
        printf("skip: no AVX-512 VNNI on this CPU (level %d)\n", have);
        rl_gemm_q_force_level(have);
        return;
    }
    static const struct {
        rl_type t;
        int64_t k;
    } cases[] = {{RL_TYPE_Q4_0, 32 * 19}, {RL_TYPE_Q5_0, 32 * 11}, {RL_TYPE_Q4_1, 32 * 5}, {RL_TYPE_Q5_1, 32 * 6}, {RL_TYPE_Q8_0, 32 * 7}, {RL_TYPE_Q4_K, 256 * 3}, {RL_TYPE_Q5_K, 256 * 2}, {RL_TYPE_Q6_K, 256 * 2}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int64_t n_tok = 1; n_tok <= 9; n_tok += 8) {
            uint64_t s = fresh_seed();
            uint8_t *w;
            float *x;
            enum { ROWS = 23 };
            rand_wa(cases[c].t, cases[c].k, ROWS, n_tok, &s, &w, &x);
            ck_assert_int_eq(rl_gemm_q_force_level(2), 2);
            float *v = matmul(cases[c].t, w, ROWS, x, n_tok, cases[c].k, 2);
            ck_assert_int_eq(rl_gemm_q_force_level(1), 1);
            float *a = matmul(cases[c].t, w, ROWS, x, n_tok, cases[c].k, 2);
            for (int64_t i = 0; i < ROWS * n_tok; i++)
                ck_assert_msg(memcmp(&v[i], &a[i], sizeof v[i]) == 0 && !isnan(v[i]), "%s output %lld: VNNI %.9g, AVX2 %.9g",
                              rl_type_get(cases[c].t)->name, (long long)i, v[i], a[i]);
            free(v);
            free(a);
            free(w);
            free(x);
        }
    }
    rl_gemm_q_force_level(2);
}
END_TEST

/* The daemon logs what runs the products; the name follows the level in force. */
START_TEST(kernels_name_follows_the_level)
{
    int have = rl_gemm_q_force_level(2);
    ck_assert_str_eq(rl_gemm_kernels_name(), have == 2 ? "int8 tiles, AVX-512 VNNI"
                                             : have == 1 ? "int8 tiles, AVX2"
                                                         : "vec_dot per output (no AVX2)");
    ck_assert_int_eq(rl_gemm_q_force_level(0), 0);
    ck_assert_str_eq(rl_gemm_kernels_name(), "vec_dot per output (no AVX2)");
    rl_gemm_q_force_level(have);
}
END_TEST

/* A NaN in one token's activations makes that token's outputs NaN and leaves
 * the other tokens of its tiles alone (no lane of one output enters another). */
START_TEST(f32_matmul_nan_stays_in_its_own_token)
{
    enum { K = 29, R = 9, T = 7, BAD = 2 };
    uint64_t s = fresh_seed();
    uint8_t *w;
    float *x;
    rand_wa(RL_TYPE_F32, K, R, T, &s, &w, &x);
    float *clean = matmul(RL_TYPE_F32, w, R, x, T, K, 1);
    x[BAD * K + K - 1] = NAN; /* in the tail chunk */
    float *y = matmul(RL_TYPE_F32, w, R, x, T, K, 1);
    for (int t = 0; t < T; t++)
        for (int r = 0; r < R; r++) {
            if (t == BAD)
                ck_assert_msg(isnan(y[t * R + r]), "row %d: %g, NaN expected", r, y[t * R + r]);
            else
                ck_assert_msg(memcmp(&y[t * R + r], &clean[t * R + r], sizeof(float)) == 0, "tok %d row %d changed",
                              t, r);
        }
    free(clean);
    free(y);
    free(w);
    free(x);
}
END_TEST

/* Weights and activations that end right before an unmapped page: the kernel's
 * last (partial) vector must not read past them. */
START_TEST(f32_and_f16_tiles_never_read_past_the_rows)
{
    long pg = sysconf(_SC_PAGESIZE);
    uint8_t *m = mmap(NULL, (size_t)pg * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(m, MAP_FAILED);
    ck_assert_int_eq(mprotect(m + pg, (size_t)pg, PROT_NONE), 0);
    ck_assert_int_eq(mprotect(m + 3 * pg, (size_t)pg, PROT_NONE), 0);
    enum { K = 13, R = 3, T = 2 };
    uint64_t s = 77;
    static const rl_type types[] = {RL_TYPE_F32, RL_TYPE_F16, RL_TYPE_BF16};
    for (size_t i = 0; i < 3; i++) {
        rl_gemm_tile_fn tile = rl_gemm_tile_kernel(types[i]);
        if (!tile)
            continue;
        const rl_type_traits *tt = rl_type_get(types[i]);
        size_t rb = rl_type_row_size(types[i], K);
        uint8_t *w = m + pg - rb * R;                           /* ends at the first guard page */
        float *x = (float *)(m + 3 * pg) - K * T;               /* ends at the second */
        float row[K];
        for (int r = 0; r < R; r++) {
            for (int j = 0; j < K; j++)
                row[j] = frand(&s);
            tt->from_float(row, w + r * rb, K);
        }
        for (int j = 0; j < K * T; j++)
            x[j] = frand(&s);
        float y[T][R];
        tile(K, w, rb, R, x, sizeof(float) * K, T, &y[0][0], R);
        for (int t = 0; t < T; t++)
            for (int r = 0; r < R; r++)
                ck_assert(dot_close(types[i], K, w + r * rb, x + t * K, y[t][r],
                                    tt->vec_dot_ref(K, w + r * rb, x + t * K)));
    }
    munmap(m, (size_t)pg * 4);
}
END_TEST

/* internal to kernels/cpu, declared here for this test */
void rl_gemm_q_pack(const void *q8_0_row, void *dst, int64_t k, rl_type wt);
void rl_gemm_q_quant_pack(const float *x, void *dst, int64_t k, rl_type wt);
size_t rl_gemm_q_packed_row(int64_t k);

START_TEST(fused_quantize_and_pack_equals_traits_quantize_then_pack)
{
    rl_types_init();
    if (!rl_gemm_tile_kernel(RL_TYPE_Q4_0)) {
        printf("skip: no int8 micro-kernel on this CPU\n");
        return;
    }
    enum { K = 32 * 9 };
    float x[K];
    uint64_t s = 5;
    for (int i = 0; i < K; i++)
        x[i] = frand(&s) * (i < 64 ? 1e-3f : 7.f);
    for (int i = 64; i < 96; i++) /* values landing exactly on .5 after scaling: ties */
        x[i] = (float)(i - 80) * 0.5f + (i == 64 ? 63.5f : 0.f);
    for (int i = 96; i < 128; i++)
        x[i] = 0.f; /* an all-zero block */
    uint8_t q[K / 32 * 34], a[4096], b[4096];
    rl_type_get(RL_TYPE_Q8_0)->from_float(x, q, K);
    static const rl_type wts[] = {RL_TYPE_Q4_0, RL_TYPE_Q8_0, RL_TYPE_Q5_0, RL_TYPE_Q4_1, RL_TYPE_Q5_1};
    for (int w = 0; w < 5; w++) {
        rl_type wt = wts[w];
        rl_gemm_q_pack(q, a, K, wt);
        rl_gemm_q_quant_pack(x, b, K, wt);
        ck_assert_mem_eq(a, b, rl_gemm_q_packed_row(K));
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model_gemm");
    TCase *tc = tcase_create("gemm");
    tcase_add_test(tc, q4_0_tiles_match_scalar_dot_with_odd_block_count);
    tcase_add_test(tc, q8_0_tiles_match_scalar_dot_with_odd_block_count);
    tcase_add_test(tc, q4_0_tiles_match_scalar_dot_across_tile_edges);
    tcase_add_test(tc, q8_0_tiles_match_scalar_dot_single_token);
    tcase_add_test(tc, q4_k_matmul_matches_scalar_dot);
    tcase_add_test(tc, q6_k_matmul_matches_scalar_dot);
    tcase_add_test(tc, f16_matmul_matches_scalar_dot);
    tcase_add_test(tc, fused_quantize_and_pack_equals_traits_quantize_then_pack);
    tcase_add_test(tc, f32_matmul_matches_scalar_dot_with_awkward_k);
    tcase_add_test(tc, bf16_matmul_matches_scalar_dot_with_awkward_k);
    tcase_add_test(tc, f16_matmul_matches_scalar_dot_with_awkward_k);
    tcase_add_test(tc, f32_tiles_match_reference_for_every_shape_and_short_k);
    tcase_add_test(tc, f32_tiles_match_reference_for_long_odd_k);
    tcase_add_test(tc, f16_and_bf16_tiles_match_reference_with_odd_k);
    tcase_add_test(tc, f32_matmul_token_alone_gives_same_bits_as_in_batch);
    tcase_add_test(tc, bf16_matmul_token_alone_gives_same_bits_as_in_batch);
    tcase_add_test(tc, q4_0_matmul_token_alone_gives_same_bits_as_in_batch);
    tcase_add_test(tc, q5_0_matmul_token_alone_gives_same_bits_as_in_batch);
    tcase_add_test(tc, q4_1_matmul_token_alone_gives_same_bits_as_in_batch);
    tcase_add_test(tc, q5_1_matmul_token_alone_gives_same_bits_as_in_batch);
    tcase_add_test(tc, q8_0_matmul_token_alone_gives_same_bits_as_in_batch);
    tcase_add_test(tc, q4_k_matmul_token_alone_gives_same_bits_as_in_batch);
    tcase_add_test(tc, q5_k_matmul_token_alone_gives_same_bits_as_in_batch);
    tcase_add_test(tc, q6_k_matmul_token_alone_gives_same_bits_as_in_batch);
    tcase_add_test(tc, int8_tiles_give_the_same_bits_on_avx2_as_on_vnni);
    tcase_add_test(tc, kernels_name_follows_the_level);
    tcase_add_test(tc, f32_matmul_nan_stays_in_its_own_token);
    tcase_add_test(tc, f32_and_f16_tiles_never_read_past_the_rows);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
