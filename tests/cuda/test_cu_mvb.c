/* test_cu_mvb.c - rl_cu_mvb, the one-sequence products whose weights
 * stream by bulk copies into shared memory, and rl_cu_mvb_chain (a layer's
 * products in one launch), against float64 on fresh random inputs. Exits
 * 77 without a GPU; skips with a message without sm_90. */
#include <errno.h>
#include <time.h>

#include "tcu_mat.h"

/* rl_cu_mvb (weights by bulk copies, the activation quantized per CTA, an
 * optional RMSNorm first) against float64: rows x cols of type t in mode,
 * with or without the norm. */
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
    double *ref = malloc(n_out * sizeof(double));
    tcu_ref_product(w, xr, y0, rows, cols, 1, mode, ref);
    tcu_down(y, dy, n_out * sizeof(float));
    double err = tcu_rel_err(y, ref, n_out);
    ck_assert_msg(err < 2e-2, "%s: rel err %g", name, err);
    cudaFree(dx), cudaFree(dg), cudaFree(dy);
    rl_cu_mat_free(&m);
    free(w), free(x), free(g), free(y0), free(xr), free(y), free(ref);
}

/* Q4_0, Q8_0, F16 and BF16 in every mode, rows of one chunk and of two or three (4,352 columns: 128
 * blocks, then 8), more tiles than SMs (the ring wraps: 2,400
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
    /* chunks of 128, 64 and 32 blocks; the floats keep x in fp32 */
    const rl_type types[] = {RL_TYPE_Q4_0, RL_TYPE_Q8_0, RL_TYPE_F16, RL_TYPE_BF16};
    for (int i = 0; i < 4; i++) {
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
    tcu_make_weight(RL_TYPE_Q4_K, 24, 512, &s, &m, w);
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

/* double -> float copy of a reference vector. */
static float *to_f(const double *r, int64_t n)
{
    float *f = malloc(n * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        f[i] = (float)r[i];
    return f;
}

/* rl_cu_mvb_chain on a layer's products after the attention, E wide with
 * an F-wide FFN: O (residual += Wo a), gate/up (f = GLU of norm(residual)),
 * down (residual += Wd f), the next Q|K|V (q = Wqkv norm(residual)); each
 * output against float64 chained the same way (the products in between
 * rounded to float), launched twice (the counters must come back to zero:
 * the second launch's order depends on them). */
static void check_chain(rl_type t, int64_t E, int64_t F)
{
    char name[96];
    snprintf(name, sizeof name, "mvb chain %s %lldx%lld", rl_type_get(t)->name, (long long)E, (long long)F);
    uint64_t s = tcu_seed(name);
    float *wo = malloc(E * E * 4), *wgu = malloc(2 * F * E * 4), *wd = malloc(E * F * 4), *wq = malloc(3 * E * E * 4);
    rl_cu_mat mo, mgu, md, mq;
    tcu_make_weight(t, E, E, &s, &mo, wo);
    tcu_make_weight(t, 2 * F, E, &s, &mgu, wgu);
    tcu_make_weight(t, E, F, &s, &md, wd);
    tcu_make_weight(t, 3 * E, E, &s, &mq, wq);
    float *a = tcu_rand_vec(&s, E, 1.0f), *r0 = tcu_rand_vec(&s, E, 2.0f);
    float *g1 = tcu_rand_vec(&s, E, 1.0f), *g2 = tcu_rand_vec(&s, E, 1.0f);
    float *da = tcu_up(a, E * 4), *dr = tcu_dev(E * 4), *dg1 = tcu_up(g1, E * 4), *dg2 = tcu_up(g2, E * 4);
    float *df = tcu_dev(F * 4), *dq = tcu_dev(3 * E * 4);
    unsigned *done = tcu_dev((RL_CU_CHAIN_MAX + 1) * sizeof(unsigned));
    CU_OK(cudaMemset(done, 0, (RL_CU_CHAIN_MAX + 1) * sizeof(unsigned)));
    rl_cu_chain_prod p[4] = {
        {mo, da, NULL, dr, RL_CU_MV_ADD},
        {mgu, dr, dg1, df, RL_CU_MV_GLU},
        {md, df, NULL, dr, RL_CU_MV_ADD},
        {mq, dr, dg2, dq, RL_CU_MV_STORE},
    };
    /* the float64 chain */
    double *r1 = malloc(E * 8), *fr = malloc(F * 8), *r2 = malloc(E * 8), *qr = malloc(3 * E * 8);
    float *xn = malloc(E * 4);
    tcu_ref_product(wo, a, r0, E, E, 1, RL_CU_MV_ADD, r1);
    float *r1f = to_f(r1, E);
    tcu_ref_rmsnorm(r1f, g1, E, 1, NULL, xn);
    tcu_ref_product(wgu, xn, NULL, 2 * F, E, 1, RL_CU_MV_GLU, fr);
    float *frf = to_f(fr, F);
    tcu_ref_product(wd, frf, r1f, E, F, 1, RL_CU_MV_ADD, r2);
    float *r2f = to_f(r2, E);
    tcu_ref_rmsnorm(r2f, g2, E, 1, NULL, xn);
    tcu_ref_product(wq, xn, NULL, 3 * E, E, 1, RL_CU_MV_STORE, qr);
    float *y = malloc(3 * E * 4);
    unsigned left[RL_CU_CHAIN_MAX + 1];
    for (int launch = 0; launch < 2; launch++) {
        CU_OK(cudaMemcpy(dr, r0, E * 4, cudaMemcpyHostToDevice));
        CU_OK(cudaMemset(dq, 0xff, 3 * E * 4)); /* NaN: a row not written fails */
        CU_OK(rl_cu_mvb_chain(p, 4, 1e-5f, done, 0));
        CU_OK(cudaDeviceSynchronize());
        tcu_down(y, df, F * 4);
        double ef = tcu_rel_err(y, fr, F);
        tcu_down(y, dr, E * 4);
        double er = tcu_rel_err(y, r2, E);
        tcu_down(y, dq, 3 * E * 4);
        double eq = tcu_rel_err(y, qr, 3 * E);
        ck_assert_msg(ef < 3e-2 && er < 3e-2 && eq < 3e-2, "%s launch %d: rel err glu %g residual %g qkv %g", name,
                      launch, ef, er, eq);
        tcu_down(left, done, sizeof left);
        for (int k = 0; k <= RL_CU_CHAIN_MAX; k++)
            ck_assert_msg(left[k] == 0, "%s: counter %d left at %u", name, k, left[k]);
    }
    cudaFree(da), cudaFree(dr), cudaFree(dg1), cudaFree(dg2), cudaFree(df), cudaFree(dq), cudaFree(done);
    rl_cu_mat_free(&mo), rl_cu_mat_free(&mgu), rl_cu_mat_free(&md), rl_cu_mat_free(&mq);
    free(wo), free(wgu), free(wd), free(wq), free(a), free(r0), free(g1), free(g2), free(r1), free(fr), free(r2);
    free(qr), free(xn), free(r1f), free(frf), free(r2f), free(y);
}

/* A layer's chain in each type, at two widths (the ring wraps at 2,048 /
 * 5,632), and what it refuses. */
START_TEST(mvb_chain_runs_a_layer_in_one_launch)
{
    uint64_t s = tcu_seed("mvb chain refusals");
    rl_cu_mat m;
    float *w = malloc(16 * 512 * sizeof(float));
    tcu_make_weight(RL_TYPE_Q4_0, 16, 512, &s, &m, w);
    if (!rl_cu_mvb_ok(&m, RL_CU_MV_STORE)) {
        printf("no sm_90 device: skipping rl_cu_mvb_chain\n");
        rl_cu_mat_free(&m);
        free(w);
        return;
    }
    check_chain(RL_TYPE_Q4_0, 512, 768);
    check_chain(RL_TYPE_Q8_0, 512, 768);
    check_chain(RL_TYPE_F16, 512, 768);
    check_chain(RL_TYPE_Q4_0, 2048, 5632);
    float *d = tcu_dev(512 * sizeof(float));
    unsigned *done = tcu_dev(8 * sizeof(unsigned));
    rl_cu_chain_prod p[2] = {{m, d, NULL, d + 256, RL_CU_MV_STORE}, {m, d, NULL, d + 256, RL_CU_MV_STORE}};
    ck_assert_int_eq(rl_cu_mvb_chain(p, 0, 0.0f, done, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_mvb_chain(p, RL_CU_CHAIN_MAX + 1, 0.0f, done, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_mvb_chain(p, 2, 0.0f, NULL, 0), -EINVAL);
    p[1].mode = 9;
    ck_assert_int_eq(rl_cu_mvb_chain(p, 2, 0.0f, done, 0), -EINVAL);
    p[1].mode = RL_CU_MV_STORE;
    rl_cu_mat m8;
    tcu_make_weight(RL_TYPE_Q8_0, 16, 512, &s, &m8, w);
    p[1].m = m8; /* one type per chain */
    ck_assert_int_eq(rl_cu_mvb_chain(p, 2, 0.0f, done, 0), -ENOTSUP);
    rl_cu_mat_free(&m8);
    rl_cu_mat_free(&m);
    cudaFree(d), cudaFree(done);
    free(w);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cuda_mvb");
    TCase *tc = tcase_create("mvb");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, mvb_streams_products_of_each_type_in_every_mode);
    tcase_add_test(tc, mvb_chain_runs_a_layer_in_one_launch);
    suite_add_tcase(s, tc);
    return tcu_main(s);
}
