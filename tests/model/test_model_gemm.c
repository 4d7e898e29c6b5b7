/* test_model_gemm.c - the tiled matmul (and its int8 micro-kernels) against
 * the traits' scalar vec_dot_ref, for odd shapes that exercise every tile
 * edge: rows and tokens not multiples of 4 or of the tile, odd block counts. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl_gemm.h"
#include "rl_ops.h"

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
    for (int w = 0; w < 2; w++) {
        rl_type wt = w ? RL_TYPE_Q8_0 : RL_TYPE_Q4_0;
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
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
