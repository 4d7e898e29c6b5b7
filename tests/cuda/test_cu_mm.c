/* test_cu_mm.c - rl_cu_mm (batched tensor-core matrix products) against a
 * float64 CPU reference over the CPU dequantizers, on fresh random inputs with
 * NaN-poisoned outputs and a poisoned guard row past the output.
 * Exits 77 ("no CUDA device: skipping") without a GPU.
 *
 * Bound: rl_cu_mm rounds weights and activations to fp16 (like the prefill
 * GEMM, rl_cu_gemm), so the GEMM test's 5e-3 relative L2 applies to every
 * type: two roundings of 2^-11 per product with random signs give ~5e-4
 * expected; a wrong element, block or batch row gives 1e-2..1. */
#include <errno.h>
#include <time.h>

#include "tcu_mat.h"

#define MM_TOL 5e-3

static const rl_type all_types[] = {RL_TYPE_Q4_0, RL_TYPE_Q8_0, RL_TYPE_Q4_K, RL_TYPE_Q6_K,
                                    RL_TYPE_F16, RL_TYPE_BF16, RL_TYPE_F32};

/* Output act with one extra (guard) batch row in every plane, all poisoned. */
static rl_cu_act make_out(int64_t n, int batch, const float *host)
{
    rl_cu_act a = {.n = n};
    a.f = tcu_dev(n * (batch + 1) * sizeof(float));
    if (host)
        ck_assert(cudaMemcpy(a.f, host, n * batch * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess);
    if (n % 32 == 0) {
        a.q = tcu_dev(n * (batch + 1));
        a.ds = tcu_dev(n / 32 * (batch + 1) * 2 * sizeof(float));
    }
    return a;
}

static void assert_guard_untouched(const rl_cu_act *y, int batch, const char *name)
{
    int64_t n = y->n;
    uint32_t *f = malloc(n * sizeof(float));
    tcu_down(f, y->f + n * batch, n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(f[i] == 0xFFFFFFFFu, "%s: wrote past the output (f[%lld])", name, (long long)i);
    if (y->q) {
        uint8_t *q = malloc(n);
        uint32_t *ds = malloc(n / 32 * 2 * sizeof(float));
        tcu_down(q, y->q + n * batch, n);
        tcu_down(ds, y->ds + n / 32 * 2 * batch, n / 32 * 2 * sizeof(float));
        for (int64_t i = 0; i < n; i++)
            ck_assert_msg(q[i] == 0xFF, "%s: wrote past the output (q[%lld])", name, (long long)i);
        for (int64_t i = 0; i < n / 32 * 2; i++)
            ck_assert_msg(ds[i] == 0xFFFFFFFFu, "%s: wrote past the output (ds[%lld])", name, (long long)i);
        free(q);
        free(ds);
    }
    free(f);
}

/* One rl_cu_mm check of a rows x cols matrix of type t, batch sequences. */
static void check_mm(rl_type t, int64_t rows, int64_t cols, int batch, int mode)
{
    char name[80];
    snprintf(name, sizeof name, "mm %s %lldx%lld b%d mode%d", rl_type_get(t)->name, (long long)rows,
             (long long)cols, batch, mode);
    uint64_t s = tcu_seed(name);
    float *w = malloc(rows * cols * sizeof(float));
    rl_cu_mat m;
    tcu_make_weight(t, rows, cols, &s, &m, w);
    float *x = tcu_rand_vec(&s, cols * batch, 1.0f);
    int64_t n_out = mode == RL_CU_MV_GLU ? rows / 2 : rows;
    float *y0 = tcu_rand_vec(&s, n_out * batch, 1.0f);
    rl_cu_act xa = {.n = cols, .f = tcu_up(x, cols * batch * sizeof(float))}; /* fp32 only: x->q not needed */
    rl_cu_act ya = make_out(n_out, batch, mode == RL_CU_MV_ADD ? y0 : NULL);
    CU_OK(rl_cu_mm(&m, &xa, batch, mode, &ya, 0));
    float *y = malloc(n_out * batch * sizeof(float));
    double *ref = malloc(n_out * batch * sizeof(double));
    tcu_down(y, ya.f, n_out * batch * sizeof(float));
    tcu_ref_product(w, x, y0, rows, cols, batch, mode, ref);
    double err = tcu_rel_err(y, ref, n_out * batch);
    fprintf(stderr, "%s: rel err %.3g\n", name, err);
    ck_assert_msg(err < MM_TOL, "%s: rel err %g >= %g", name, err, MM_TOL);
    if (mode == RL_CU_MV_GLU && ya.q) /* the fused quantization matches the values */
        tcu_check_q8_planes(&ya, y, n_out * batch, false, name);
    assert_guard_untouched(&ya, batch, name);
    cudaFree(xa.f);
    free_act(&ya);
    rl_cu_mat_free(&m);
    free(w), free(x), free(y0), free(y), free(ref);
}

static const int batches[] = {9, 16, 33, 64};

START_TEST(mm_store_matches_cpu_for_each_type_and_batch_with_odd_rows)
{
    for (int i = 0; i < 4; i++)
        check_mm(all_types[_i], 131, 512, batches[i], RL_CU_MV_STORE);
}
END_TEST

START_TEST(mm_add_mode_accumulates_into_output)
{
    for (int i = 0; i < 4; i++)
        check_mm(all_types[_i], 77, 768, batches[i], RL_CU_MV_ADD);
}
END_TEST

START_TEST(mm_glu_mode_fuses_swiglu_and_quantizes)
{
    for (int i = 0; i < 4; i++)
        check_mm(all_types[_i], 2 * 96, 512, batches[i], RL_CU_MV_GLU);
    check_mm(all_types[_i], 2 * 45, 256, 33, RL_CU_MV_GLU); /* odd outputs: no quantization */
}
END_TEST

START_TEST(mm_small_batches_match_cpu)
{
    check_mm(all_types[_i], 40, 256, 1, RL_CU_MV_STORE);
    check_mm(all_types[_i], 2 * 32, 256, 5, RL_CU_MV_GLU);
}
END_TEST

/* Several row tiles: the tiles of a cluster may share activation loads. */
START_TEST(mm_many_row_tiles_match_cpu)
{
    static const rl_type t[] = {RL_TYPE_Q4_0, RL_TYPE_Q8_0, RL_TYPE_Q6_K};
    check_mm(t[_i], 700, 512, 64, RL_CU_MV_STORE);
    check_mm(t[_i], 2 * 300, 512, 40, RL_CU_MV_GLU);
    check_mm(t[_i], 1000, 256, 17, RL_CU_MV_ADD);
}
END_TEST

/* Every K split (thread-block cluster of 1..8 CTAs) gives the same products. */
START_TEST(mm_every_k_split_matches_cpu)
{
    static const int splits[] = {1, 2, 4, 8};
    rl_cu_mm_force_split(splits[_i]);
    check_mm(RL_TYPE_Q4_0, 200, 2048, 37, RL_CU_MV_STORE);
    check_mm(RL_TYPE_Q8_0, 2 * 160, 2048, 64, RL_CU_MV_GLU);
    check_mm(RL_TYPE_Q4_K, 150, 2048, 20, RL_CU_MV_ADD);
    rl_cu_mm_force_split(0);
}
END_TEST

START_TEST(mm_float_rows_not_multiple_of_8)
{
    check_mm(RL_TYPE_F32, 20, 172, 19, RL_CU_MV_STORE);
    check_mm(RL_TYPE_F16, 2 * 10, 172, 12, RL_CU_MV_GLU);
}
END_TEST

/* Captured into a CUDA graph (strict global capture mode) and replayed twice. */
START_TEST(mm_runs_inside_a_cuda_graph)
{
    uint64_t s = tcu_seed("mm graph");
    int64_t rows = 2 * 64, cols = 1024;
    int batch = 40;
    float *w = malloc(rows * cols * sizeof(float));
    rl_cu_mat m;
    tcu_make_weight(RL_TYPE_BF16, rows, cols, &s, &m, w);
    float *x = tcu_rand_vec(&s, cols * batch, 1.0f);
    rl_cu_act xa = {.n = cols, .f = tcu_up(x, cols * batch * sizeof(float))};
    rl_cu_act ya = make_out(rows / 2, batch, NULL);
    float *y = tcu_product_in_graph(rl_cu_mm, "rl_cu_mm", &m, &xa, batch, RL_CU_MV_GLU, &ya);
    double *ref = malloc(rows / 2 * batch * sizeof(double));
    tcu_ref_product(w, x, NULL, rows, cols, batch, RL_CU_MV_GLU, ref);
    double err = tcu_rel_err(y, ref, rows / 2 * batch);
    ck_assert_msg(err < MM_TOL, "graph replay rel err %g", err);
    cudaFree(xa.f);
    free_act(&ya);
    rl_cu_mat_free(&m);
    free(w), free(x), free(y), free(ref);
}
END_TEST

START_TEST(mm_rejects_bad_arguments)
{
    rl_cu_mat m = {.type = RL_TYPE_Q4_0, .rows = 64, .cols = 256, .q = (void *)16, .d = (void *)16};
    rl_cu_act x = {.f = (float *)16, .n = 256}, y = {.f = (float *)16, .n = 64}, yg = {.f = (float *)16, .n = 32};
    ck_assert_int_eq(rl_cu_mm(&m, &x, 0, RL_CU_MV_STORE, &y, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_mm(&m, &x, RL_CU_MAX_MM_BATCH + 1, RL_CU_MV_STORE, &y, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_mm(&m, &x, 4, 3, &y, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_mm(&m, &x, 4, RL_CU_MV_GLU, &y, 0), -EINVAL); /* GLU has rows/2 outputs */
    rl_cu_act xs = x;
    xs.n = 128;
    ck_assert_int_eq(rl_cu_mm(&m, &xs, 4, RL_CU_MV_STORE, &y, 0), -EINVAL);
    rl_cu_mat odd = m;
    odd.rows = 63;
    yg.n = 31;
    ck_assert_int_eq(rl_cu_mm(&odd, &x, 4, RL_CU_MV_GLU, &yg, 0), -EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cuda_mm");
    TCase *tc = tcase_create("mm");
    tcase_set_timeout(tc, 240);
    int nt = (int)(sizeof all_types / sizeof all_types[0]);
    tcase_add_test(tc, mm_rejects_bad_arguments);
    tcase_add_test(tc, mm_runs_inside_a_cuda_graph);
    tcase_add_loop_test(tc, mm_store_matches_cpu_for_each_type_and_batch_with_odd_rows, 0, nt);
    tcase_add_loop_test(tc, mm_add_mode_accumulates_into_output, 0, nt);
    tcase_add_loop_test(tc, mm_glu_mode_fuses_swiglu_and_quantizes, 0, nt);
    tcase_add_loop_test(tc, mm_small_batches_match_cpu, 0, nt);
    tcase_add_loop_test(tc, mm_every_k_split_matches_cpu, 0, 4);
    tcase_add_loop_test(tc, mm_many_row_tiles_match_cpu, 0, 3);
    tcase_add_test(tc, mm_float_rows_not_multiple_of_8);
    suite_add_tcase(s, tc);
    return tcu_main(s);
}
