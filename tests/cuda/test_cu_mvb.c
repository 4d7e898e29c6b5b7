/* test_cu_mvb.c - rl_cu_mvb, the one-sequence products whose weights
 * stream by bulk copies into shared memory, against float64 on fresh random
 * inputs. Exits 77 without a GPU; skips with a message without sm_90. */
#include <errno.h>
#include <time.h>

#include "tcu_mat.h"

/* x as the kernel's int8 activation holds it: per block of 32, d = max |x| /
 * 127 and q = round-to-even(x / d), in float as the kernel computes them; the
 * values q * d. (Against the unquantized values the error of a small GLU
 * product's 48 outputs reached 0.022-0.025 in rare draws, over the old 2e-2
 * bound; with the activation modelled the products must agree far closer.) */
static void quant_act(float *x, int64_t n)
{
    for (int64_t b = 0; b < n / 32; b++) {
        float amax = 0.0f;
        for (int k = 0; k < 32; k++)
            amax = fmaxf(amax, fabsf(x[b * 32 + k]));
        float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        for (int k = 0; k < 32; k++)
            x[b * 32 + k] = rintf(x[b * 32 + k] * id) * d;
    }
}

/* rl_cu_mvb (weights by bulk copies, the activation quantized per CTA, an
 * optional RMSNorm first) against float64: rows x cols of type t in mode,
 * with or without the norm; the int8 types' activation quantized in the
 * reference too (quant_act). */
static void check_mvb(rl_type t, int64_t rows, int64_t cols, int mode, bool norm)
{
    char name[96];
    snprintf(name, sizeof name, "mvb %s %lldx%lld mode%d norm%d", rl_type_get(t)->name, (long long)rows,
             (long long)cols, mode, norm);
    uint64_t s = tcu_seed(name);
    float *w = malloc(rows * cols * sizeof(float));
    rl_cu_mat m;
    tcu_make_weight(t, rows, cols, &s, &m, w);
    int64_t n_out = mode == RL_CU_MV_GLU ? rows / 2 : rows;
    float *x = tcu_rand_vec(&s, cols, 2.0f), *g = tcu_rand_vec(&s, cols, 1.0f), *y0 = tcu_rand_vec(&s, n_out, 1.0f);
    float *dx = tcu_up(x, cols * sizeof(float)), *dg = tcu_up(g, cols * sizeof(float));
    float *dy = mode == RL_CU_MV_ADD ? tcu_up(y0, n_out * sizeof(float)) : tcu_dev(n_out * sizeof(float));
    CU_OK(rl_cu_mvb(&m, dx, norm ? dg : NULL, 1e-5f, mode, dy, 0));
    float *xr = malloc(cols * sizeof(float)), *y = malloc(n_out * sizeof(float));
    if (norm)
        tcu_ref_rmsnorm(x, g, cols, 1, NULL, xr);
    else
        memcpy(xr, x, cols * sizeof(float));
    bool q8 = t != RL_TYPE_F16 && t != RL_TYPE_BF16;
    if (q8)
        quant_act(xr, cols);
    double *ref = malloc(n_out * sizeof(double));
    tcu_ref_product(w, xr, y0, rows, cols, 1, mode, ref);
    tcu_down(y, dy, n_out * sizeof(float));
    double err = tcu_rel_err(y, ref, n_out);
    ck_assert_msg(err < 2e-3, "%s: rel err %g", name, err);
    cudaFree(dx), cudaFree(dg), cudaFree(dy);
    rl_cu_mat_free(&m);
    free(w), free(x), free(g), free(y0), free(xr), free(y), free(ref);
}

/* Every type in every mode, rows of one chunk and of two or three (4,352
 * columns: 128 blocks, then 8), more tiles than SMs (the ring wraps: 2,400
 * rows), and what it refuses. */
START_TEST(mvb_streams_products_of_each_type_in_every_mode)
{
    uint64_t s = tcu_seed("mvb refusals");
    rl_cu_mat m;
    float *w = malloc(24 * 2304 * sizeof(float));
    tcu_make_weight(RL_TYPE_Q4_0, 24, 512, &s, &m, w);
    if (!rl_cu_mvb_ok(&m, RL_CU_MV_STORE)) {
        printf("no sm_90 device: skipping rl_cu_mvb\n");
        rl_cu_mat_free(&m);
        free(w);
        return;
    }
    rl_cu_mat_free(&m);
    /* chunks of 128, 64 and 32 blocks of 32 (K-quants: 16, 16 and 8 of their
     * 256-value blocks, scales inside); the floats keep x in fp32 */
    const rl_type types[] = {RL_TYPE_Q4_0, RL_TYPE_Q8_0, RL_TYPE_F16, RL_TYPE_BF16,
                             RL_TYPE_Q4_K, RL_TYPE_Q5_K, RL_TYPE_Q6_K};
    for (int i = 0; i < 7; i++) {
        rl_type t = types[i];
        check_mvb(t, 64, 512, RL_CU_MV_STORE, false);
        check_mvb(t, 2400, 2304, RL_CU_MV_STORE, true);
        check_mvb(t, 2400, 4352, RL_CU_MV_STORE, false);
        check_mvb(t, 264, 4352, RL_CU_MV_ADD, true);
        check_mvb(t, 2 * 320, 4352, RL_CU_MV_GLU, true);
        check_mvb(t, 64, 11008, RL_CU_MV_ADD, false); /* Llama 2 7B's down: Q4_0 128 + 128 + 88 blocks */
        check_mvb(t, 40, 768, RL_CU_MV_ADD, false);
        check_mvb(t, 2 * 48, 2304, RL_CU_MV_GLU, true);
        check_mvb(t, 2 * 1200, 512, RL_CU_MV_GLU, false);
    }
    tcu_make_weight(RL_TYPE_F32, 24, 512, &s, &m, w);
    ck_assert(!rl_cu_mvb_ok(&m, RL_CU_MV_STORE));
    rl_cu_mat_free(&m);
    tcu_make_weight(RL_TYPE_Q4_0, 12, 512, &s, &m, w); /* 12 outputs: not in tiles of 8 */
    ck_assert(!rl_cu_mvb_ok(&m, RL_CU_MV_STORE));
    ck_assert(rl_cu_mvb_ok(&m, RL_CU_MV_GLU) == false); /* 6 outputs */
    float *d = tcu_dev(512 * sizeof(float));
    ck_assert_int_eq(rl_cu_mvb(&m, d, NULL, 0.0f, RL_CU_MV_STORE, d, 0), -ENOTSUP);
    rl_cu_mat_free(&m);
    tcu_make_weight(RL_TYPE_Q4_0, 16, 224 + 32, &s, &m, w); /* 256 columns: taken */
    ck_assert(rl_cu_mvb_ok(&m, RL_CU_MV_STORE));
    ck_assert_int_eq(rl_cu_mvb(&m, d, NULL, 0.0f, 7, d, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_mvb(&m, d + 1, NULL, 0.0f, RL_CU_MV_STORE, d, 0), -ENOTSUP); /* x read as float4s */
    ck_assert_int_eq(rl_cu_mvb(&m, d, d + 2, 1e-5f, RL_CU_MV_STORE, d, 0), -ENOTSUP);
    rl_cu_mat_free(&m);
    cudaFree(d);
    free(w);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cuda_mvb");
    TCase *tc = tcase_create("mvb");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, mvb_streams_products_of_each_type_in_every_mode);
    suite_add_tcase(s, tc);
    return tcu_main(s);
}
