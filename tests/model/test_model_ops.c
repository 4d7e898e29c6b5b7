/* test_model_ops.c - the per-row ops (SIMD where the CPU has it) against
 * plain double-precision formulas, on lengths with SIMD tails. */
#include <check.h>
#include <math.h>
#include <stdlib.h>

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

int main(void)
{
    Suite *s = suite_create("model_ops");
    TCase *tc = tcase_create("ops");
    tcase_add_test(tc, rmsnorm_matches_double_formula);
    tcase_add_test(tc, softmax_matches_double_and_sums_to_one);
    tcase_add_test(tc, swiglu_matches_double_including_large_inputs);
    tcase_add_test(tc, rope_rotates_adjacent_pairs_or_halves);
    tcase_add_test(tc, dot_and_scaled_axpy_match_double);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
