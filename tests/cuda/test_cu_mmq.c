/* test_cu_mmq.c - rl_cu_mmq (batched int8 tensor-core products, Q4_0/Q8_0)
 * and rl_cu_mmh (the same products on fp16 tensor cores, from the fp16 copy
 * of the int8 activations) against a float64 CPU reference over the CPU dequantizers and the fp32
 * activations, on fresh random inputs with NaN-poisoned outputs and a
 * poisoned guard row past the output; and against rl_cu_matvec on the same
 * int8 activations. Exits 77 ("no CUDA device: skipping") without a GPU.
 *
 * Bounds: vs the float64 reference, the dp4a matvec's bound for int8
 * activations (2e-2 relative L2, test_cu_kernels.c): both multiply the same
 * int8 activations, so the error is the activations' quantization (~5e-3).
 * Vs rl_cu_matvec: 1e-4, since both scale the same exact int32 block sums by
 * the same fp32 factors and differ only in the order of fp32 additions
 * (~1e-6 expected); a wrong block, nibble half, scale or batch row gives
 * 1e-2..1. rl_cu_mmh vs rl_cu_matvec: 3e-3, since its weights and
 * activations are rounded to fp16 (2^-11 relative each, ~4e-4 on the
 * output's L2 norm expected). rl_cu_mms (the small-batch variant, same
 * fp16 fragments, K split between warps) the same; vs rl_cu_mmh 1e-5 (the
 * same fp16 products, fp32 sums in another order). rl_cu_mmw (the same fp16
 * products on wgmma, Q4_0 only) the same bounds; vs rl_cu_mmh 1e-5 too. */
#include <errno.h>
#include <time.h>

#include "tcu_mat.h"

#define MMQ_TOL 2e-2
#define MMQ_MV_TOL 1e-4
#define MMH_MV_TOL 3e-3

/* The kernels under test: loop index _i picks type _i % 2, kernel _i / 2.
 * rl_cu_mmw takes Q4_0 only: its Q8_0 iterations return at once
 * (NOT_SUPPORTED); the refusal is checked in mmq_rejects_... */
static const tcu_product_fn kernels[] = {rl_cu_mmq, rl_cu_mmh, rl_cu_mms, rl_cu_mmw};
static const char *const kernel_names[] = {"mmq", "mmh", "mms", "mmw"};
static const double kernel_mv_tol[] = {MMQ_MV_TOL, MMH_MV_TOL, MMH_MV_TOL, MMH_MV_TOL};
#define N_KERNELS 4
#define KT(i) q_types[(i) % 2]
#define KF(i) ((i) / 2)
#define NOT_SUPPORTED(i) (KF(i) == 3 && KT(i) != RL_TYPE_Q4_0)

static const rl_type q_types[] = {RL_TYPE_Q4_0, RL_TYPE_Q8_0};
static const int batches[] = {1, 5, 9, 16, 33, 64};
#define N_BATCHES ((int)(sizeof batches / sizeof batches[0]))

/* Output act (row stride ys >= n) with one extra (guard) batch row in every plane, all poisoned. */
static rl_cu_act make_out(int64_t n, int64_t ys, int batch, const float *host)
{
    rl_cu_act a = {.n = n, .stride = ys == n ? 0 : ys};
    a.f = tcu_dev(ys * (batch + 1) * sizeof(float));
    if (host)
        for (int b = 0; b < batch; b++)
            ck_assert(cudaMemcpy(a.f + b * ys, host + b * n, n * sizeof(float), cudaMemcpyHostToDevice) ==
                      cudaSuccess);
    if (n % 32 == 0 && ys == n) {
        a.q = tcu_dev(n * (batch + 1));
        a.ds = tcu_dev(n / 32 * (batch + 1) * 2 * sizeof(float));
        a.h = tcu_dev(n * (batch + 1) * 2);
    }
    return a;
}

/* Nothing written past batch rows (guard row) nor between rows of a strided output. */
static void assert_untouched(const rl_cu_act *y, int batch, const char *name)
{
    int64_t n = y->n, ys = y->stride ? y->stride : n;
    uint32_t *f = malloc(ys * (batch + 1) * sizeof(float));
    tcu_down(f, y->f, ys * (batch + 1) * sizeof(float));
    for (int b = 0; b <= batch; b++)
        for (int64_t i = b == batch ? 0 : n; i < ys; i++)
            ck_assert_msg(f[b * ys + i] == 0xFFFFFFFFu, "%s: wrote outside the output (row %d, f[%lld])", name, b,
                          (long long)i);
    if (y->q) {
        uint8_t *q = malloc(n);
        uint32_t *ds = malloc(n / 32 * 2 * sizeof(float));
        tcu_down(q, y->q + n * batch, n);
        tcu_down(ds, y->ds + n / 32 * 2 * batch, n / 32 * 2 * sizeof(float));
        for (int64_t i = 0; i < n; i++)
            ck_assert_msg(q[i] == 0xFF, "%s: wrote past the output (q[%lld])", name, (long long)i);
        for (int64_t i = 0; i < n / 32 * 2; i++)
            ck_assert_msg(ds[i] == 0xFFFFFFFFu, "%s: wrote past the output (ds[%lld])", name, (long long)i);
        uint16_t *h = malloc(n * 2);
        tcu_down(h, y->h + n * batch, n * 2);
        for (int64_t i = 0; i < n; i++)
            ck_assert_msg(h[i] == 0xFFFF, "%s: wrote past the output (h[%lld])", name, (long long)i);
        free(h);
        free(q);
        free(ds);
    }
    free(f);
}

/* rl_cu_matvec on the same inputs, RL_CU_MAX_BATCH sequences at a time (host result). */
static float *matvec_result(const rl_cu_mat *m, const rl_cu_act *xa, int batch, int mode, const float *y0)
{
    int64_t n_out = mode == RL_CU_MV_GLU ? m->rows / 2 : m->rows;
    rl_cu_act ya = make_act(n_out, batch, mode == RL_CU_MV_ADD ? y0 : NULL);
    for (int b0 = 0; b0 < batch; b0 += RL_CU_MAX_BATCH) {
        int nb = batch - b0 < RL_CU_MAX_BATCH ? batch - b0 : RL_CU_MAX_BATCH;
        rl_cu_act xs = {
            .f = xa->f + b0 * xa->n, .q = xa->q + b0 * xa->n, .ds = xa->ds + b0 * (xa->n / 32) * 2, .n = xa->n};
        rl_cu_act ys = {.f = ya.f + b0 * n_out, .n = n_out};
        CU_OK(rl_cu_matvec(m, &xs, nb, mode, &ys, 0));
    }
    float *y = malloc(n_out * batch * sizeof(float));
    tcu_down(y, ya.f, n_out * batch * sizeof(float));
    free_act(&ya);
    return y;
}

/* The inputs of one product check, drawn in this order from the seed of
 * name: the weights (w: their exact dequantized values on the host; m on the
 * device), the activations x (xa on the device, quantized) and the ADD
 * mode's initial outputs y0 (n_out per row). */
typedef struct prod_in {
    float *w, *x, *y0;
    rl_cu_mat m;
    rl_cu_act xa;
} prod_in;

static prod_in prod_in_make(const char *name, rl_type t, int64_t rows, int64_t cols, int batch, int64_t n_out)
{
    prod_in p;
    uint64_t s = tcu_seed(name);
    p.w = malloc(rows * cols * sizeof(float));
    tcu_make_weight(t, rows, cols, &s, &p.m, p.w);
    p.x = tcu_rand_vec(&s, cols * batch, 1.0f);
    p.y0 = tcu_rand_vec(&s, n_out * batch, 1.0f);
    p.xa = make_act(cols, batch, p.x);
    CU_OK(rl_cu_quantize(&p.xa, batch, 0));
    return p;
}

static void prod_in_free(prod_in *p)
{
    free_act(&p->xa);
    rl_cu_mat_free(&p->m);
    free(p->w), free(p->x), free(p->y0);
}

/* One rl_cu_mmq check of a rows x cols matrix of type t, batch sequences,
 * output rows ys floats apart (0: n_out). */
static void check_mmq_s(int k, rl_type t, int64_t rows, int64_t cols, int batch, int mode, int64_t ys)
{
    char name[96];
    snprintf(name, sizeof name, "%s %s %lldx%lld b%d mode%d", kernel_names[k], rl_type_get(t)->name, (long long)rows,
             (long long)cols, batch, mode);
    int64_t n_out = mode == RL_CU_MV_GLU ? rows / 2 : rows;
    if (ys == 0)
        ys = n_out;
    prod_in in = prod_in_make(name, t, rows, cols, batch, n_out);
    rl_cu_mat m = in.m;
    rl_cu_act xa = in.xa;
    const float *w = in.w, *x = in.x, *y0 = in.y0;
    rl_cu_act ya = make_out(n_out, ys, batch, mode == RL_CU_MV_ADD ? y0 : NULL);
    CU_OK(kernels[k](&m, &xa, batch, mode, &ya, 0));
    float *yf = malloc(ys * batch * sizeof(float)), *y = malloc(n_out * batch * sizeof(float));
    double *ref = malloc(n_out * batch * sizeof(double));
    tcu_down(yf, ya.f, ys * batch * sizeof(float));
    for (int b = 0; b < batch; b++)
        memcpy(y + b * n_out, yf + b * ys, n_out * sizeof(float));
    tcu_ref_product(w, x, y0, rows, cols, batch, mode, ref);
    double err = tcu_rel_err(y, ref, n_out * batch);
    float *ymv = matvec_result(&m, &xa, batch, mode, y0);
    double err_mv = tcu_rel_err_f(y, ymv, n_out * batch);
    fprintf(stderr, "%s: rel err %.3g (vs matvec %.3g)\n", name, err, err_mv);
    ck_assert_msg(err < MMQ_TOL, "%s: rel err %g >= %g", name, err, MMQ_TOL);
    ck_assert_msg(err_mv < kernel_mv_tol[k], "%s: rel diff to rl_cu_matvec %g >= %g", name, err_mv, kernel_mv_tol[k]);
    if (mode == RL_CU_MV_GLU && ya.q) /* the fused quantization matches the values, the fp16 copy is d * q */
        tcu_check_q8_planes(&ya, y, n_out * batch, true, name);
    assert_untouched(&ya, batch, name);
    prod_in_free(&in);
    free_act(&ya);
    free(yf), free(y), free(ref), free(ymv);
}

static void check_mmq(int i, int64_t rows, int64_t cols, int batch, int mode)
{
    check_mmq_s(KF(i), KT(i), rows, cols, batch, mode, 0);
}

START_TEST(mmq_store_matches_cpu_for_each_type_and_batch_with_odd_rows)
{
    if (NOT_SUPPORTED(_i))
        return;
    for (int i = 0; i < N_BATCHES; i++)
        check_mmq(_i, 131, 512, batches[i], RL_CU_MV_STORE);
}
END_TEST

START_TEST(mmq_add_mode_accumulates_into_output)
{
    if (NOT_SUPPORTED(_i))
        return;
    for (int i = 0; i < N_BATCHES; i++)
        check_mmq(_i, 77, 768, batches[i], RL_CU_MV_ADD);
}
END_TEST

START_TEST(mmq_glu_mode_fuses_swiglu_and_quantizes)
{
    if (NOT_SUPPORTED(_i))
        return;
    for (int i = 0; i < N_BATCHES; i++)
        check_mmq(_i, 2 * 96, 512, batches[i], RL_CU_MV_GLU);
    check_mmq(_i, 2 * 45, 256, 33, RL_CU_MV_GLU); /* odd outputs: no quantization */
}
END_TEST

/* Rows of an odd number of blocks (scales not pairwise aligned), K not a multiple of the chunk. */
START_TEST(mmq_odd_block_count_per_row)
{
    if (NOT_SUPPORTED(_i))
        return;
    check_mmq(_i, 70, 416, 12, RL_CU_MV_STORE);
    check_mmq(_i, 2 * 64, 32 * 7, 40, RL_CU_MV_GLU);
    check_mmq(_i, 33, 32, 64, RL_CU_MV_ADD);
}
END_TEST

/* Several row tiles, and few enough for a K split over a cluster. */
START_TEST(mmq_many_row_tiles_and_k_split_match_cpu)
{
    if (NOT_SUPPORTED(_i))
        return;
    check_mmq(_i, 700, 2048, 64, RL_CU_MV_STORE);
    check_mmq(_i, 2 * 300, 2048, 40, RL_CU_MV_GLU);
    check_mmq(_i, 1000, 1024, 17, RL_CU_MV_ADD);
    check_mmq(_i, 4096, 1024, 24, RL_CU_MV_ADD); /* 16 row tiles: split K */
}
END_TEST

START_TEST(mmq_store_honours_output_stride)
{
    if (NOT_SUPPORTED(_i))
        return;
    check_mmq_s(KF(_i), KT(_i), 96, 256, 20, RL_CU_MV_STORE, 96 + 40);
    check_mmq_s(KF(_i), KT(_i), 50, 256, 9, RL_CU_MV_ADD, 77);
}
END_TEST

/* Captured into a CUDA graph (strict global capture mode) and replayed twice. */
START_TEST(mmq_runs_inside_a_cuda_graph)
{
    if (NOT_SUPPORTED(_i))
        return;
    uint64_t s = tcu_seed("mmq graph");
    int64_t rows = 2 * 320, cols = 1024;
    int batch = 40;
    float *w = malloc(rows * cols * sizeof(float));
    rl_cu_mat m;
    tcu_make_weight(KT(_i), rows, cols, &s, &m, w);
    float *x = tcu_rand_vec(&s, cols * batch, 1.0f);
    rl_cu_act xa = make_act(cols, batch, x);
    CU_OK(rl_cu_quantize(&xa, batch, 0));
    rl_cu_act ya = make_out(rows / 2, rows / 2, batch, NULL);
    float *y = tcu_product_in_graph(kernels[KF(_i)], kernel_names[KF(_i)], &m, &xa, batch, RL_CU_MV_GLU, &ya);
    double *ref = malloc(rows / 2 * batch * sizeof(double));
    tcu_ref_product(w, x, NULL, rows, cols, batch, RL_CU_MV_GLU, ref);
    double err = tcu_rel_err(y, ref, rows / 2 * batch);
    fprintf(stderr, "%s graph %s: rel err %.3g\n", kernel_names[KF(_i)], rl_type_get(KT(_i))->name, err);
    ck_assert_msg(err < MMQ_TOL, "graph replay rel err %g", err);
    free_act(&xa);
    free_act(&ya);
    rl_cu_mat_free(&m);
    free(w), free(x), free(y), free(ref);
}
END_TEST

/* rl_cu_mmh with a forced plan (warps, split, reduction); the host outputs. */
static float *mmh_forced(const rl_cu_mat *m, const rl_cu_act *xa, int batch, int mode, const float *y0, int w, int sp,
                         int red)
{
    int64_t n_out = mode == RL_CU_MV_GLU ? m->rows / 2 : m->rows;
    ck_assert_int_eq(rl_cu_mmh_force(w, sp, red), 0);
    rl_cu_act ya = make_out(n_out, n_out, batch, mode == RL_CU_MV_ADD ? y0 : NULL);
    CU_OK(rl_cu_mmh(m, xa, batch, mode, &ya, 0));
    float *y = malloc(n_out * batch * sizeof(float));
    tcu_down(y, ya.f, n_out * batch * sizeof(float));
    assert_untouched(&ya, batch, "mmh forced");
    free_act(&ya);
    return y;
}

/* A K split reduced through the workspace gives the same bits as through a
 * cluster, and agrees with the unsplit product to fp32 rounding, for every
 * mode; splits of 3 and 8 (workspace only) too. */
START_TEST(mmh_k_split_reductions_agree)
{
    static const int modes[] = {RL_CU_MV_STORE, RL_CU_MV_ADD, RL_CU_MV_GLU};
    static const int bs[] = {20, 40};
    rl_type t = q_types[_i];
    for (int mi = 0; mi < 3; mi++)
        for (int bi = 0; bi < 2; bi++) {
            int mode = modes[mi], batch = bs[bi];
            int64_t rows = mode == RL_CU_MV_GLU ? 2 * 320 : 320, cols = 4096, n_out = rows / (mode == RL_CU_MV_GLU ? 2 : 1);
            char name[64];
            snprintf(name, sizeof name, "mmh split %s mode%d b%d", rl_type_get(t)->name, mode, batch);
            prod_in in = prod_in_make(name, t, rows, cols, batch, n_out);
            rl_cu_mat m = in.m;
            rl_cu_act xa = in.xa;
            const float *w = in.w, *x = in.x, *y0 = in.y0;
            float *one = mmh_forced(&m, &xa, batch, mode, y0, 4, 1, 0);
            float *cl4 = mmh_forced(&m, &xa, batch, mode, y0, 4, 4, 1);
            float *ws4 = mmh_forced(&m, &xa, batch, mode, y0, 4, 4, 2);
            float *ws3 = mmh_forced(&m, &xa, batch, mode, y0, 6, 3, 2);
            float *ws8 = mmh_forced(&m, &xa, batch, mode, y0, 8, 8, 2);
            ck_assert_msg(memcmp(cl4, ws4, n_out * batch * sizeof(float)) == 0, "%s: cluster and workspace differ", name);
            double *ref = malloc(n_out * batch * sizeof(double));
            double e4 = tcu_rel_err_f(ws4, one, n_out * batch), e3 = tcu_rel_err_f(ws3, one, n_out * batch),
                   e8 = tcu_rel_err_f(ws8, one, n_out * batch);
            tcu_ref_product(w, x, y0, rows, cols, batch, mode, ref);
            double er = tcu_rel_err(ws8, ref, n_out * batch);
            fprintf(stderr, "%s: vs split 1: %.3g (4) %.3g (3) %.3g (8); split 8 vs float64 %.3g\n", name, e4, e3, e8, er);
            ck_assert_msg(e4 < 1e-5 && e3 < 1e-5 && e8 < 1e-5, "%s: splits disagree %g %g %g", name, e4, e3, e8);
            ck_assert_msg(er < MMQ_TOL, "%s: rel err %g", name, er);
            prod_in_free(&in);
            free(one), free(cl4), free(ws4), free(ws3), free(ws8), free(ref);
        }
    { /* the plan reported is the plan forced */
        rl_cu_mat pm = {.type = t, .rows = 320, .cols = 4096};
        int pw = 0, ps = 0;
        ck_assert_int_eq(rl_cu_mmh_force(6, 3, 2), 0);
        ck_assert_int_eq(rl_cu_mmh_plan(&pm, 20, RL_CU_MV_STORE, &pw, &ps), 0);
        ck_assert_int_eq(pw, 6);
        ck_assert_int_eq(ps, 3);
        pm.type = RL_TYPE_Q6_K;
        ck_assert_int_eq(rl_cu_mmh_plan(&pm, 20, RL_CU_MV_STORE, &pw, &ps), -EINVAL);
    }
    ck_assert_int_eq(rl_cu_mmh_force(0, 0, 0), 0);
    ck_assert_int_eq(rl_cu_mmh_force(5, 0, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_mmh_force(0, 9, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_mmh_force(0, 0, 3), -EINVAL);
}
END_TEST

/* One shape of a kernel checked against rl_cu_mmh (the same fp16 products,
 * fp32 sums in another order): within 1e-5 of it, within MMQ_TOL of the
 * float64 reference, nothing written past the output, and the same bits on a
 * second run. label names the case in messages. */
typedef struct vs_mmh_case {
    int64_t rows, cols;
    int batch, mode;
} vs_mmh_case;

static void check_vs_mmh(tcu_product_fn f, const char *label, rl_type t, const vs_mmh_case *cs)
{
    int64_t rows = cs->rows, cols = cs->cols, n_out = cs->mode == RL_CU_MV_GLU ? rows / 2 : rows;
    int batch = cs->batch, mode = cs->mode;
    char name[96];
    snprintf(name, sizeof name, "%s vs mmh %s %lldx%lld b%d mode%d", label, rl_type_get(t)->name, (long long)rows,
             (long long)cols, batch, mode);
    prod_in in = prod_in_make(name, t, rows, cols, batch, n_out);
    rl_cu_mat m = in.m;
    rl_cu_act xa = in.xa;
    const float *w = in.w, *x = in.x, *y0 = in.y0;
    float *out[3];
    for (int k = 0; k < 3; k++) {
        rl_cu_act ya = make_out(n_out, n_out, batch, mode == RL_CU_MV_ADD ? y0 : NULL);
        CU_OK((k == 0 ? rl_cu_mmh : f)(&m, &xa, batch, mode, &ya, 0));
        out[k] = malloc(n_out * batch * sizeof(float));
        tcu_down(out[k], ya.f, n_out * batch * sizeof(float));
        assert_untouched(&ya, batch, name);
        free_act(&ya);
    }
    double *ref = malloc(n_out * batch * sizeof(double));
    double e = tcu_rel_err_f(out[1], out[0], n_out * batch);
    tcu_ref_product(w, x, y0, rows, cols, batch, mode, ref);
    double er = tcu_rel_err(out[1], ref, n_out * batch);
    fprintf(stderr, "%s: vs mmh %.3g, vs float64 %.3g\n", name, e, er);
    ck_assert_msg(e < 1e-5, "%s: rel diff to rl_cu_mmh %g", name, e);
    ck_assert_msg(er < MMQ_TOL, "%s: rel err %g", name, er);
    ck_assert_msg(memcmp(out[1], out[2], n_out * batch * sizeof(float)) == 0, "%s: second run differs", name);
    prod_in_free(&in);
    free(out[0]), free(out[1]), free(out[2]), free(ref);
}

/* rl_cu_mms against rl_cu_mmh on shapes that take each of its CTA layouts:
 * 32-row CTAs, 64-row CTAs (a matrix with rows for 64 per SM), GLU; K ranges
 * that leave some warps without a chunk. */
START_TEST(mms_matches_mmh_and_repeats_bit_for_bit)
{
    static const vs_mmh_case cs[] = {{2048, 2048, 20, RL_CU_MV_ADD}, {8500, 512, 24, RL_CU_MV_STORE},
                                     {2 * 1000, 1024, 17, RL_CU_MV_GLU}, {300, 256, 9, RL_CU_MV_STORE},
                                     {96, 64, 32, RL_CU_MV_ADD},         {640, 4096, 3, RL_CU_MV_GLU}};
    for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++)
        check_vs_mmh(rl_cu_mms, "mms", q_types[_i], &cs[ci]);
}
END_TEST

/* rl_cu_mmw against rl_cu_mmh on Q4_0 shapes with K splits up to 8 and none,
 * GLU, ADD, a partial last row tile, a block count per row that is not a
 * multiple of 4 (scales without 8-byte copies), batches 33..64 (padded to
 * 64), for every CTA shape (_i: automatic, then each forced one). */
static const int mmw_shapes[][2] = {{0, 0}, {3, 1}, {4, 1}, {3, 2}, {2, 1}};

START_TEST(mmw_matches_mmh_and_repeats_bit_for_bit)
{
    ck_assert_int_eq(rl_cu_mmt_force(-1), 0); /* the register pipeline, not rl_cu_mmt */
    ck_assert_int_eq(rl_cu_mmw_force(mmw_shapes[_i][0], mmw_shapes[_i][1]), 0);
    static const vs_mmh_case cs[] = {{4096, 4096, 64, RL_CU_MV_ADD},     {12288, 1024, 48, RL_CU_MV_STORE},
                                     {2 * 1000, 1024, 40, RL_CU_MV_GLU}, {300, 256, 33, RL_CU_MV_STORE},
                                     {512, 2848, 64, RL_CU_MV_ADD},      {640, 4096, 57, RL_CU_MV_GLU}};
    char label[32];
    snprintf(label, sizeof label, "mmw %dx%d", mmw_shapes[_i][0], mmw_shapes[_i][1]);
    for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++)
        check_vs_mmh(rl_cu_mmw, label, RL_TYPE_Q4_0, &cs[ci]);
    ck_assert_int_eq(rl_cu_mmw_force(0, 0), 0);
    ck_assert_int_eq(rl_cu_mmw_force(4, 2), -EINVAL);
    ck_assert_int_eq(rl_cu_mmw_force(1, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_mmt_force(0), 0);
}
END_TEST

/* rl_cu_mmt's K split reduced by every rank (one wave) and, with the same
 * plan, by the last CTA of each tile: the same bits, for each mode and a
 * partial last tile; and the first agrees with rl_cu_mmh. */
START_TEST(mmt_shared_split_reduction_same_bits_as_last_cta)
{
    static const vs_mmh_case cs[] = {{4096, 4096, 64, RL_CU_MV_ADD},
                                     {2 * 1408, 4096, 64, RL_CU_MV_GLU},
                                     {1000, 11008, 40, RL_CU_MV_STORE},
                                     {300, 2048, 33, RL_CU_MV_STORE}};
    for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++) {
        const vs_mmh_case *c = &cs[ci];
        int64_t n_out = c->mode == RL_CU_MV_GLU ? c->rows / 2 : c->rows;
        char name[64];
        snprintf(name, sizeof name, "mmt dist %lldx%lld mode%d", (long long)c->rows, (long long)c->cols, c->mode);
        prod_in in = prod_in_make(name, RL_TYPE_Q4_0, c->rows, c->cols, c->batch, n_out);
        int wg = 0, split = 0, shared = 0;
        ck_assert_int_eq(rl_cu_mmt_dist(1), 0);
        ck_assert_int_eq(rl_cu_mmt_plan(&in.m, c->mode, &wg, &split, &shared), 0);
        ck_assert_msg(split > 1 && shared, "%s: plan wg %d split %d shared %d", name, wg, split, shared);
        int wg2 = 0, split2 = 0;
        ck_assert_int_eq(rl_cu_mmt_dist(2), 0); /* the same plan, reduced by the last CTA */
        ck_assert_int_eq(rl_cu_mmt_plan(&in.m, c->mode, &wg2, &split2, &shared), 0);
        ck_assert(!shared && wg2 == wg && split2 == split);
        float *out[2];
        for (int d = 0; d < 2; d++) {
            ck_assert_int_eq(rl_cu_mmt_dist(d ? 1 : 2), 0);
            rl_cu_act ya = make_out(n_out, n_out, c->batch, c->mode == RL_CU_MV_ADD ? in.y0 : NULL);
            CU_OK(rl_cu_mmt(&in.m, &in.xa, c->batch, c->mode, &ya, 0));
            out[d] = malloc(n_out * c->batch * sizeof(float));
            tcu_down(out[d], ya.f, n_out * c->batch * sizeof(float));
            assert_untouched(&ya, c->batch, name);
            free_act(&ya);
        }
        ck_assert_msg(memcmp(out[0], out[1], n_out * c->batch * sizeof(float)) == 0,
                      "%s: shared and last-CTA reductions differ", name);
        prod_in_free(&in);
        free(out[0]), free(out[1]);
        check_vs_mmh(rl_cu_mmt, "mmt dist", RL_TYPE_Q4_0, c); /* (dist is on again) */
    }
    ck_assert_int_eq(rl_cu_mmt_dist(3), -EINVAL);
    ck_assert_int_eq(rl_cu_mmt_dist(1), 0);
}
END_TEST

/* rl_cu_mmt (rl_cu_mmw's TMA pipeline) against rl_cu_mmh on Q4_0 shapes with
 * K splits up to 8 and none, GLU (gate and up rows in two copies), ADD, a
 * partial last row tile (zero-filled rows past the matrix; in GLU, up rows
 * read as gate rows, never written), batches below and above 33 (activation
 * rows past the batch zero-filled), for every CTA shape (_i: automatic, then
 * 3, 4 and 2 warpgroups). Blocks per row not a multiple of 8 are refused
 * (-ENOTSUP: rl_cu_mmw takes them). */
static const int mmt_shapes[] = {0, 3, 4, 2};

START_TEST(mmt_matches_mmh_and_repeats_bit_for_bit)
{
    ck_assert_int_eq(rl_cu_mmt_force(mmt_shapes[_i % 4]), 0);
    ck_assert_int_eq(rl_cu_mmt_multicast(_i / 4 + 1), 0); /* then clusters of two sharing the activations */
    static const vs_mmh_case cs[] = {{4096, 4096, 64, RL_CU_MV_ADD},     {12288, 1024, 48, RL_CU_MV_STORE},
                                     {2 * 1000, 1024, 40, RL_CU_MV_GLU}, {300, 256, 33, RL_CU_MV_STORE},
                                     {512, 2816, 64, RL_CU_MV_ADD},      {640, 4096, 57, RL_CU_MV_GLU},
                                     {1000, 2048, 5, RL_CU_MV_ADD},      {2 * 1408, 4096, 64, RL_CU_MV_GLU}};
    char label[32];
    snprintf(label, sizeof label, "mmt wg%d mc%d", mmt_shapes[_i % 4], _i / 4 + 1);
    for (size_t ci = 0; ci < sizeof cs / sizeof cs[0]; ci++)
        check_vs_mmh(rl_cu_mmt, label, RL_TYPE_Q4_0, &cs[ci]);
    rl_cu_mat m;
    uint64_t s = 7;
    float *w = malloc(64 * 2848 * sizeof(float));
    tcu_make_weight(RL_TYPE_Q4_0, 64, 2848, &s, &m, w); /* 89 blocks per row */
    float *x = tcu_rand_vec(&s, 2848 * 40, 1.0f);
    rl_cu_act xa = make_act(2848, 40, x), ya = make_out(64, 64, 40, NULL);
    CU_OK(rl_cu_quantize(&xa, 40, 0));
    ck_assert_int_eq(rl_cu_mmt(&m, &xa, 40, RL_CU_MV_STORE, &ya, 0), -ENOTSUP);
    CU_OK(rl_cu_mmw(&m, &xa, 40, RL_CU_MV_STORE, &ya, 0)); /* its register pipeline */
    ck_assert_int_eq(rl_cu_mmt_force(-1), 0);
    ck_assert_int_eq(rl_cu_mmt(&m, &xa, 40, RL_CU_MV_STORE, &ya, 0), -ENOTSUP);
    ck_assert_int_eq(rl_cu_mmt_force(1), -EINVAL);
    ck_assert_int_eq(rl_cu_mmt_force(5), -EINVAL);
    ck_assert_int_eq(rl_cu_mmt_force(0), 0);
    ck_assert_int_eq(rl_cu_mmt_multicast(3), -EINVAL);
    ck_assert_int_eq(rl_cu_mmt_multicast(1), 0);
    free_act(&xa), free_act(&ya);
    rl_cu_mat_free(&m);
    free(w), free(x);
}
END_TEST

START_TEST(mmq_rejects_other_types_and_bad_arguments)
{
    rl_cu_mat m = {.type = RL_TYPE_Q4_0, .rows = 64, .cols = 256, .q = (void *)16, .d = (void *)16};
    rl_cu_act x = {.f = (float *)16, .q = (int8_t *)16, .ds = (float *)16, .n = 256};
    rl_cu_act y = {.f = (float *)16, .n = 64}, yg = {.f = (float *)16, .n = 32};
    static const rl_type other[] = {RL_TYPE_F32, RL_TYPE_F16, RL_TYPE_BF16, RL_TYPE_Q4_K, RL_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        rl_cu_mat o = m;
        o.type = other[i];
        ck_assert_int_eq(rl_cu_mmq(&o, &x, 4, RL_CU_MV_STORE, &y, 0), -ENOTSUP);
    }
    ck_assert_int_eq(rl_cu_mmq(&m, &x, 0, RL_CU_MV_STORE, &y, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_mmq(&m, &x, RL_CU_MAX_MM_BATCH + 1, RL_CU_MV_STORE, &y, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_mmq(&m, &x, 4, 3, &y, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_mmq(&m, &x, 4, RL_CU_MV_GLU, &y, 0), -EINVAL); /* GLU has rows/2 outputs */
    rl_cu_act xn = x;
    xn.q = NULL; /* the int8 activations are required */
    ck_assert_int_eq(rl_cu_mmq(&m, &xn, 4, RL_CU_MV_STORE, &y, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_mmh(&m, &x, 4, RL_CU_MV_STORE, &y, 0), -EINVAL); /* rl_cu_mmh needs x->h */
    rl_cu_act xh = x;
    xh.h = (uint16_t *)16;
    ck_assert_int_eq(rl_cu_mmh(&m, &xh, 0, RL_CU_MV_STORE, &y, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_mmh(&m, &xh, RL_CU_MAX_MM_BATCH + 1, RL_CU_MV_STORE, &y, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_mmh(&m, &xh, 4, RL_CU_MV_GLU, &y, 0), -EINVAL);
    xh.h = (uint16_t *)18; /* not 16-byte aligned */
    ck_assert_int_eq(rl_cu_mmh(&m, &xh, 4, RL_CU_MV_STORE, &y, 0), -EINVAL);
    rl_cu_mat o6 = m;
    o6.type = RL_TYPE_Q6_K;
    xh.h = (uint16_t *)16;
    ck_assert_int_eq(rl_cu_mmh(&o6, &xh, 4, RL_CU_MV_STORE, &y, 0), -ENOTSUP);
    ck_assert_int_eq(rl_cu_mms(&o6, &xh, 4, RL_CU_MV_STORE, &y, 0), -ENOTSUP);
    rl_cu_mat q8 = m;
    q8.type = RL_TYPE_Q8_0;
    ck_assert_int_eq(rl_cu_mmw(&q8, &xh, 40, RL_CU_MV_STORE, &y, 0), -ENOTSUP); /* Q4_0 only */
    ck_assert_int_eq(rl_cu_mmw(&o6, &xh, 40, RL_CU_MV_STORE, &y, 0), -ENOTSUP);
    ck_assert_int_eq(rl_cu_mmw(&m, &x, 40, RL_CU_MV_STORE, &y, 0), -EINVAL); /* needs x->h */
    ck_assert_int_eq(rl_cu_mms(&m, &x, 4, RL_CU_MV_STORE, &y, 0), -EINVAL); /* needs x->h */
    ck_assert_int_eq(rl_cu_mms(&m, &xh, 0, RL_CU_MV_STORE, &y, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_mms(&m, &xh, RL_CU_MAX_MM_BATCH + 1, RL_CU_MV_STORE, &y, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_mms(&m, &xh, 4, RL_CU_MV_GLU, &y, 0), -EINVAL);
    rl_cu_act xs = x;
    xs.n = 128;
    ck_assert_int_eq(rl_cu_mmq(&m, &xs, 4, RL_CU_MV_STORE, &y, 0), -EINVAL);
    rl_cu_mat odd = m;
    odd.rows = 63;
    yg.n = 31;
    ck_assert_int_eq(rl_cu_mmq(&odd, &x, 4, RL_CU_MV_GLU, &yg, 0), -EINVAL);
    rl_cu_act ysg = {.f = (float *)16, .n = 32, .stride = 64}; /* GLU refuses a stride */
    ck_assert_int_eq(rl_cu_mmq(&m, &x, 4, RL_CU_MV_GLU, &ysg, 0), -EINVAL);
    rl_cu_act ysm = {.f = (float *)16, .n = 64, .stride = 32}; /* stride below n */
    ck_assert_int_eq(rl_cu_mmq(&m, &x, 4, RL_CU_MV_STORE, &ysm, 0), -EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cuda_mmq");
    TCase *tc = tcase_create("mmq");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, mmq_rejects_other_types_and_bad_arguments);
    tcase_add_loop_test(tc, mmq_runs_inside_a_cuda_graph, 0, 2 * N_KERNELS);
    tcase_add_loop_test(tc, mmq_store_matches_cpu_for_each_type_and_batch_with_odd_rows, 0, 2 * N_KERNELS);
    tcase_add_loop_test(tc, mmq_add_mode_accumulates_into_output, 0, 2 * N_KERNELS);
    tcase_add_loop_test(tc, mmq_glu_mode_fuses_swiglu_and_quantizes, 0, 2 * N_KERNELS);
    tcase_add_loop_test(tc, mmq_odd_block_count_per_row, 0, 2 * N_KERNELS);
    tcase_add_loop_test(tc, mmq_store_honours_output_stride, 0, 2 * N_KERNELS);
    tcase_add_loop_test(tc, mmq_many_row_tiles_and_k_split_match_cpu, 0, 2 * N_KERNELS);
    tcase_add_loop_test(tc, mmh_k_split_reductions_agree, 0, 2);
    tcase_add_loop_test(tc, mms_matches_mmh_and_repeats_bit_for_bit, 0, 2);
    tcase_add_loop_test(tc, mmw_matches_mmh_and_repeats_bit_for_bit, 0, 5);
    tcase_add_loop_test(tc, mmt_matches_mmh_and_repeats_bit_for_bit, 0, 8);
    tcase_add_test(tc, mmt_shared_split_reduction_same_bits_as_last_cta);
    suite_add_tcase(s, tc);
    return tcu_main(s);
}
