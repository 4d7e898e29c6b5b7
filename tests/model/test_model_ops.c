/* test_model_ops.c - the per-row ops (SIMD where the CPU has it) against
 * plain double-precision formulas, on lengths with SIMD tails. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "rl_ops.h"

static float frand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 65536.f * 2.f - 1.f;
}

START_TEST(rmsnorm_matches_double_formula)
{
    rl_ops_init();
    unsigned s = 1;
    for (int n = 1; n <= 67; n += 11) {
        float x[67], w[67], out[67];
        for (int i = 0; i < n; i++) {
            x[i] = frand(&s) * 5.f;
            w[i] = frand(&s);
        }
        rl_ops_rmsnorm(out, x, w, n, 1e-5f);
        double ss = 0;
        for (int i = 0; i < n; i++)
            ss += (double)x[i] * x[i];
        for (int i = 0; i < n; i++) {
            double ref = x[i] / sqrt(ss / n + 1e-5) * w[i];
            ck_assert_msg(fabs(out[i] - ref) <= 1e-5 * (1 + fabs(ref)), "n=%d i=%d %g vs %g", n, i, out[i], ref);
        }
    }
}
END_TEST

START_TEST(softmax_matches_double_and_sums_to_one)
{
    rl_ops_init();
    unsigned s = 2;
    for (int n = 1; n <= 100; n += 9) {
        float x[100];
        double ref[100], mx = -1e30, sum = 0, total = 0;
        for (int i = 0; i < n; i++) {
            x[i] = frand(&s) * 30.f;
            mx = fmax(mx, x[i]);
        }
        for (int i = 0; i < n; i++)
            sum += (ref[i] = exp(x[i] - mx));
        rl_ops_softmax(x, n);
        for (int i = 0; i < n; i++) {
            ck_assert_msg(fabs(x[i] - ref[i] / sum) <= 1e-6 + 1e-5 * ref[i] / sum, "n=%d i=%d", n, i);
            total += x[i];
        }
        ck_assert(fabs(total - 1) < 1e-5);
    }
}
END_TEST

START_TEST(swiglu_matches_double_including_large_inputs)
{
    rl_ops_init();
    unsigned s = 3;
    float g[45], u[45], out[45];
    for (int i = 0; i < 45; i++) {
        g[i] = frand(&s) * (i < 40 ? 8.f : 200.f); /* very negative gates must give 0, not NaN */
        u[i] = frand(&s) * 3.f;
    }
    rl_ops_swiglu(out, g, u, 45);
    for (int i = 0; i < 45; i++) {
        double ref = g[i] / (1 + exp(-(double)g[i])) * u[i];
        ck_assert_msg(isfinite(out[i]) && fabs(out[i] - ref) <= 1e-5 * (1 + fabs(ref)), "i=%d %g vs %g", i, out[i], ref);
    }
}
END_TEST

START_TEST(rope_rotates_adjacent_pairs_or_halves)
{
    float inv[2] = {1.f, 0.01f};
    float a[4] = {1, 0, 1, 0}, b[4] = {1, 1, 0, 0};
    rl_ops_rope(a, 1, 4, 3, inv, false); /* pairs (0,1), (2,3) */
    ck_assert(fabsf(a[0] - cosf(3.f)) < 1e-6f && fabsf(a[1] - sinf(3.f)) < 1e-6f);
    ck_assert(fabsf(a[2] - cosf(0.03f)) < 1e-6f && fabsf(a[3] - sinf(0.03f)) < 1e-6f);
    rl_ops_rope(b, 1, 4, 3, inv, true); /* pairs (0,2), (1,3) */
    ck_assert(fabsf(b[0] - cosf(3.f)) < 1e-6f && fabsf(b[2] - sinf(3.f)) < 1e-6f);
    ck_assert(fabsf(b[1] - cosf(0.03f)) < 1e-6f && fabsf(b[3] - sinf(0.03f)) < 1e-6f);
}
END_TEST

START_TEST(dot_and_scaled_axpy_match_double)
{
    rl_ops_init();
    unsigned s = 4;
    float x[37], y[37], z[37];
    for (int i = 0; i < 37; i++) {
        x[i] = frand(&s);
        y[i] = z[i] = frand(&s);
    }
    double d = 0;
    for (int i = 0; i < 37; i++)
        d += (double)x[i] * y[i];
    ck_assert(fabs(rl_ops_dot(x, y, 37) - d) < 1e-5);
    rl_ops_scale_axpy(z, 0.5f, 2.f, x, 37);
    for (int i = 0; i < 37; i++)
        ck_assert(fabs(z[i] - (0.5 * y[i] + 2.0 * x[i])) < 1e-6);
}
END_TEST

/* Both layouts at a real head size (SIMD path) against double rotations. */
/* n_head heads of head_dim at pos against double rotations (inv: head_dim/2). */
static void check_rope(int head_dim, int32_t pos, const float *inv, int neox, unsigned *s)
{
    enum { NH = 3 };
    float x[NH * 128], orig[NH * 128];
    int half = head_dim / 2;
    for (int i = 0; i < NH * head_dim; i++)
        x[i] = orig[i] = frand(s);
    rl_ops_rope(x, NH, head_dim, pos, inv, neox);
    for (int h = 0; h < NH; h++)
        for (int i = 0; i < half; i++) {
            int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
            double th = (double)pos * inv[i], a = orig[h * head_dim + i0], b = orig[h * head_dim + i1];
            ck_assert_msg(fabs(x[h * head_dim + i0] - (a * cos(th) - b * sin(th))) < 1e-5, "hd %d neox %d", head_dim,
                          neox);
            ck_assert_msg(fabs(x[h * head_dim + i1] - (a * sin(th) + b * cos(th))) < 1e-5, "hd %d neox %d", head_dim,
                          neox);
        }
}

START_TEST(rope_simd_matches_double_at_head_dim_64_and_8)
{
    rl_ops_init();
    unsigned s = 6;
    float inv[64];
    for (int hd = 8; hd <= 64; hd *= 8) {
        for (int i = 0; i < hd / 2; i++)
            inv[i] = (float)pow(10000.0, -2.0 * i / hd);
        for (int neox = 0; neox < 2; neox++)
            check_rope(hd, 1234, inv, neox, &s);
    }
}
END_TEST

/* The angles of the previous call are reused only for the same position and
 * the same frequency values: same pointer with new values, or a new position,
 * must rotate by the new angles. */
START_TEST(rope_recomputes_angles_when_position_or_frequencies_change)
{
    rl_ops_init();
    unsigned s = 8;
    float inv[32];
    for (int i = 0; i < 32; i++)
        inv[i] = (float)pow(10000.0, -2.0 * i / 64);
    check_rope(64, 77, inv, 0, &s);
    check_rope(64, 77, inv, 0, &s); /* reused */
    check_rope(64, 78, inv, 0, &s);
    inv[5] *= 3.f;
    check_rope(64, 78, inv, 0, &s);
    check_rope(8, 78, inv, 1, &s);
    check_rope(64, 78, inv, 1, &s);
}
END_TEST

/* ulps between y and the double exp of x, on the float grid at the reference
 * (subnormal results: the 2^-149 grid). NaN results give a huge count. */
static double exp_ulps(float y, float x)
{
    double ref = exp((double)x);
    if (ref > 3.4028234663852886e38)
        return isinf(y) && y > 0 ? 0 : 1e30;
    if (!(y == y))
        return 1e30;
    int e;
    frexp(ref, &e);
    double ulp = ldexp(1.0, (e - 1 < -126 ? -126 : e - 1) - 23);
    return fabs((double)y - ref) / ulp;
}

/* A dense sweep of [-110, 89] (every 1/4096, plus every float near 0 and at the
 * underflow and overflow edges) and the special values: within 1 ulp of exp in
 * double; -inf and anything below -103.98 give exactly 0; NaN stays NaN. */
START_TEST(vector_exp_within_one_ulp_over_sweep_and_special_values)
{
    rl_ops_init();
    enum { N = 4096 };
    static float x[N], y[N];
    double worst = 0;
    float worst_x = 0;
    int n = 0;
    for (long i = -110L * 4096; i <= 89L * 4096; i++) {
        x[n++] = (float)i / 4096.f + (float)(i % 7) * 1e-5f; /* off the power-of-two grid too */
        if (n == N || i == 89L * 4096) {
            rl_ops_exp(y, x, n);
            for (int k = 0; k < n; k++) {
                double u = exp_ulps(y[k], x[k]);
                if (u > worst) {
                    worst = u;
                    worst_x = x[k];
                }
            }
            n = 0;
        }
    }
    /* every float in small windows: near 0, near the subnormal and overflow edges */
    static const float starts[] = {-1e-3f, -87.34f, -103.98f, -103.2f, 88.7f, -0.35f};
    for (size_t c = 0; c < sizeof starts / sizeof starts[0]; c++) {
        float v = starts[c];
        for (int w = 0; w < 4; w++) {
            for (int k = 0; k < N; k++) {
                x[k] = v;
                v = nextafterf(v, INFINITY);
            }
            rl_ops_exp(y, x, N);
            for (int k = 0; k < N; k++) {
                double u = exp_ulps(y[k], x[k]);
                if (u > worst) {
                    worst = u;
                    worst_x = x[k];
                }
            }
        }
    }
    fprintf(stderr, "worst %.4f at %.9g\n", worst, worst_x);
    ck_assert_msg(worst <= 1.0, "worst %.3f ulp at x=%.9g", worst, worst_x);

    float sx[12] = {-INFINITY, -3e38f, -1000.f, -104.f, -103.98f, -0.f, 0.f, NAN, INFINITY, 89.f, 1e-30f, -1e-30f};
    float sy[12];
    rl_ops_exp(sy, sx, 12);
    for (int k = 0; k < 5; k++)
        ck_assert_msg(sy[k] == 0.f, "exp(%g) = %g, not 0", sx[k], sy[k]);
    ck_assert(sy[5] == 1.f && sy[6] == 1.f && sy[10] == 1.f && sy[11] == 1.f);
    ck_assert_msg(isnan(sy[7]), "exp(NaN) = %g", sy[7]);
    ck_assert(isinf(sy[8]) && sy[8] > 0 && isinf(sy[9]) && sy[9] > 0);
    /* NaN in one lane does not leak into its neighbours; the tail lanes and y == x work */
    float t[11];
    for (int k = 0; k < 11; k++)
        t[k] = k == 3 ? NAN : -(float)k;
    rl_ops_exp(t, t, 11);
    for (int k = 0; k < 11; k++)
        ck_assert_msg(k == 3 ? isnan(t[k]) : exp_ulps(t[k], -(float)k) <= 1.0, "lane %d: %g", k, t[k]);
}
END_TEST

/* float64 attention of one query over `len` keys: softmax(scale K q) V. */
static void att_ref(const float *K, const float *V, int len, const float *q, int n, float scale, double *out)
{
    double s[64], mx = -INFINITY, sum = 0;
    for (int j = 0; j < len; j++) {
        double d = 0;
        for (int i = 0; i < n; i++)
            d += (double)K[j * n + i] * q[i];
        s[j] = d * scale;
        mx = fmax(mx, s[j]);
    }
    for (int i = 0; i < n; i++)
        out[i] = 0;
    for (int j = 0; j < len; j++) {
        double p = exp(s[j] - mx);
        sum += p;
        for (int i = 0; i < n; i++)
            out[i] += p * V[j * n + i];
    }
    for (int i = 0; i < n; i++)
        out[i] /= sum;
}

/* Keys split into blocks of RL_OPS_ATT_ROWS, each transposed into a block whose
 * unused columns hold NaN (they must be ignored), V rows past the block's end
 * NaN too (never read): the online softmax over the blocks within 6e-6 (V in
 * [-3, 3]; the worst seen is 6e-7) of float64 attention, for head sizes and
 * lengths that are not multiples of 8, with scores from a few units (n = 64)
 * to about +-100 (n = 1): exp of large negatives, a max that changes between
 * blocks. Fresh random inputs each case. */
START_TEST(attention_block_online_softmax_matches_double)
{
    rl_ops_init();
    unsigned s = 12;
    static const int ns[] = {1, 3, 8, 13, 64, 69};
    static const int lens[] = {1, 5, 8, 9, 16, 17, 31, 33, 47, 64};
    enum { L = 64, NMAX = 69, B = RL_OPS_ATT_ROWS };
    static float K[L * NMAX], V[L * NMAX], Kt[NMAX * B], Vb[(B + 1) * NMAX];
    float q[NMAX], acc[NMAX];
    double ref[NMAX];
    for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++)
        for (size_t e = 0; e < sizeof lens / sizeof lens[0]; e++) {
            int n = ns[c], len = lens[e];
            float spread = 60.f * sqrtf((float)n) / (0.58f * (float)n);
            for (int i = 0; i < len * n; i++) {
                K[i] = frand(&s) * spread;
                V[i] = frand(&s) * 3.f;
            }
            for (int i = 0; i < n; i++)
                q[i] = frand(&s);
            float scale = 1.f / sqrtf((float)n), m = -INFINITY, l = 0.f;
            for (int i = 0; i < n; i++)
                acc[i] = 0.f;
            for (int b0 = 0; b0 < len; b0 += B) {
                int rows = len - b0 < B ? len - b0 : B;
                for (int i = 0; i < n * B; i++)
                    Kt[i] = NAN;
                for (int i = 0; i < (B + 1) * n; i++)
                    Vb[i] = NAN;
                for (int j = 0; j < rows; j++)
                    for (int d = 0; d < n; d++) {
                        Kt[d * B + j] = K[(b0 + j) * n + d];
                        Vb[j * n + d] = V[(b0 + j) * n + d];
                    }
                rl_ops_att_block(Kt, Vb, rows, q, 1, n, scale, &m, &l, acc);
            }
            att_ref(K, V, len, q, n, scale, ref);
            for (int i = 0; i < n; i++) {
                double o = acc[i] / l;
                ck_assert_msg(fabs(o - ref[i]) <= 2e-6 * 3.0, "n=%d len=%d i=%d: %.9g vs %.9g", n, len, i, o, ref[i]);
            }
        }
}
END_TEST

/* A NaN score (NaN in q) makes the output NaN, in the first block as in later
 * ones: never a plausible-looking number. */
START_TEST(attention_block_propagates_nan)
{
    rl_ops_init();
    enum { B = RL_OPS_ATT_ROWS };
    float Kt[8 * B], V[B * 8], q[8], acc[8];
    for (int i = 0; i < 8 * B; i++)
        Kt[i] = V[i] = 0.25f;
    for (int first = 0; first < 2; first++) {
        for (int i = 0; i < 8; i++)
            q[i] = acc[i] = 0.f;
        q[0] = 1.f;
        float m = -INFINITY, l = 0.f;
        if (!first)
            rl_ops_att_block(Kt, V, 5, q, 1, 8, 0.5f, &m, &l, acc);
        q[2] = NAN;
        rl_ops_att_block(Kt, V, 5, q, 1, 8, 0.5f, &m, &l, acc);
        ck_assert_msg(isnan(acc[0] / l), "first=%d: %g / %g", first, acc[0], l);
    }
}
END_TEST

/* Several queries in one call (paired inside on SIMD paths) give each query
 * the same bits as a call of its own, in any place among them, over blocks of
 * any row count: a query's result must not depend on how many share its step. */
START_TEST(attention_block_same_bits_for_any_query_count)
{
    rl_ops_init();
    unsigned s = 13;
    enum { B = RL_OPS_ATT_ROWS, NQ = 7, N = 13, NB = 4 };
    static float Kt[NB][N * B], V[NB][B * N], q[NQ * N];
    for (int b = 0; b < NB; b++) /* later blocks score higher: the max moves, corrections are neither 0 nor 1 */
        for (int i = 0; i < N * B; i++) {
            Kt[b][i] = frand(&s) * 3.f * (float)(b + 1);
            V[b][i] = frand(&s);
        }
    for (int i = 0; i < NQ * N; i++)
        q[i] = frand(&s);
    for (int nq = 1; nq <= NQ; nq++)
        for (int first = 0; first + nq <= NQ; first += 2) {
            float m1[NQ], l1[NQ], a1[NQ * N], mb[NQ], lb[NQ], ab[NQ * N];
            for (int i = 0; i < NQ; i++) {
                m1[i] = mb[i] = -INFINITY;
                l1[i] = lb[i] = 0.f;
            }
            memset(a1, 0, sizeof a1);
            memset(ab, 0, sizeof ab);
            for (int b = 0; b < NB; b++) {
                int rows = 16 - 5 * b; /* 16, 11, 6, 1 */
                for (int i = first; i < first + nq; i++)
                    rl_ops_att_block(Kt[b], V[b], rows, q + i * N, 1, N, 0.3f, &m1[i], &l1[i], a1 + i * N);
                rl_ops_att_block(Kt[b], V[b], rows, q + first * N, nq, N, 0.3f, &mb[first], &lb[first], ab + first * N);
            }
            ck_assert_msg(memcmp(m1 + first, mb + first, sizeof(float) * (size_t)nq) == 0 &&
                              memcmp(l1 + first, lb + first, sizeof(float) * (size_t)nq) == 0 &&
                              memcmp(a1 + first * N, ab + first * N, sizeof(float) * (size_t)(nq * N)) == 0,
                          "nq=%d from %d", nq, first);
            for (int i = first; i < first + nq; i++)
                ck_assert(isfinite(l1[i]) && l1[i] >= 1.f);
        }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model_ops");
    TCase *tc = tcase_create("ops");
    tcase_add_test(tc, rmsnorm_matches_double_formula);
    tcase_add_test(tc, softmax_matches_double_and_sums_to_one);
    tcase_add_test(tc, swiglu_matches_double_including_large_inputs);
    tcase_add_test(tc, rope_rotates_adjacent_pairs_or_halves);
    tcase_add_test(tc, dot_and_scaled_axpy_match_double);
    tcase_add_test(tc, rope_simd_matches_double_at_head_dim_64_and_8);
    tcase_add_test(tc, rope_recomputes_angles_when_position_or_frequencies_change);
    tcase_add_test(tc, vector_exp_within_one_ulp_over_sweep_and_special_values);
    tcase_add_test(tc, attention_block_online_softmax_matches_double);
    tcase_add_test(tc, attention_block_propagates_nan);
    tcase_add_test(tc, attention_block_same_bits_for_any_query_count);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
