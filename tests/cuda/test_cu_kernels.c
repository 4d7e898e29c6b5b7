/* test_cu_kernels.c - every CUDA kernel against a CPU reference (float64 over
 * the CPU dequantizers of rl_types), on fresh random inputs with poisoned
 * outputs. Exits 77 ("no CUDA device: skipping") without a GPU. */
#include <errno.h>
#include <time.h>

#include "tcu_mat.h"

#include "rl_cu_layer.h"

/* The device's nblk block sums of squares d_ss against those of x's 32-blocks. */
static void check_block_ss(const float *d_ss, const float *x, int64_t nblk, const char *what)
{
    float *ss = malloc(nblk * sizeof(float));
    tcu_down(ss, d_ss, nblk * sizeof(float));
    for (int64_t blk = 0; blk < nblk; blk++) {
        double want = 0;
        for (int k = 0; k < 32; k++)
            want += (double)x[blk * 32 + k] * x[blk * 32 + k];
        ck_assert_msg(fabs(ss[blk] - want) <= 1e-5 * want, "%s: block %lld sum of squares %g, want %g", what,
                      (long long)blk, ss[blk], want);
    }
    free(ss);
}

/* One matvec check: mode STORE/ADD/GLU, batch b. */
static void check_matvec(rl_type t, int64_t rows, int64_t cols, int batch, int mode)
{
    char name[64];
    snprintf(name, sizeof name, "matvec %s b%d mode%d", rl_type_get(t)->name, batch, mode);
    uint64_t s = tcu_seed(name);
    float *w = malloc(rows * cols * sizeof(float));
    rl_cu_mat m;
    tcu_make_weight(t, rows, cols, &s, &m, w);
    float *x = tcu_rand_vec(&s, cols * batch, 1.0f);
    int64_t n_out = mode == RL_CU_MV_GLU ? rows / 2 : rows;
    float *y0 = tcu_rand_vec(&s, n_out * batch, 1.0f);
    rl_cu_act xa = make_act(cols, batch, x);
    if (xa.q)
        CU_OK(rl_cu_quantize(&xa, batch, 0));
    rl_cu_act ya = make_act(n_out, batch, mode == RL_CU_MV_ADD ? y0 : NULL);
    CU_OK(rl_cu_matvec(&m, &xa, batch, mode, &ya, 0));
    float *y = malloc(n_out * batch * sizeof(float));
    double *ref = malloc(n_out * batch * sizeof(double));
    tcu_down(y, ya.f, n_out * batch * sizeof(float));
    tcu_ref_product(w, x, y0, rows, cols, batch, mode, ref);
    double err = tcu_rel_err(y, ref, n_out * batch);
    double tol = rl_cu_type_q8(t) ? 2e-2 : 1e-4;
    ck_assert_msg(err < tol, "%s: rel err %g >= %g", name, err, tol);
    if (mode == RL_CU_MV_GLU && ya.q) /* the fused quantization matches the values */
        tcu_check_q8_planes(&ya, y, n_out * batch, false, name);
    free_act(&xa);
    free_act(&ya);
    rl_cu_mat_free(&m);
    free(w), free(x), free(y0), free(y), free(ref);
}

static const rl_type all_types[] = {RL_TYPE_Q4_0, RL_TYPE_Q8_0, RL_TYPE_Q4_K, RL_TYPE_Q5_K, RL_TYPE_Q6_K,
                                    RL_TYPE_F16, RL_TYPE_BF16, RL_TYPE_F32};

START_TEST(matvec_matches_cpu_for_each_type_and_batch)
{
    rl_type t = all_types[_i];
    check_matvec(t, 72, 512, 1, RL_CU_MV_STORE);
    check_matvec(t, 40, 768, 3, RL_CU_MV_STORE);
    check_matvec(t, 33, 256, 8, RL_CU_MV_STORE);
}
END_TEST

START_TEST(matvec_add_mode_accumulates_into_output)
{
    check_matvec(all_types[_i], 48, 512, 2, RL_CU_MV_ADD);
}
END_TEST

START_TEST(matvec_glu_mode_fuses_swiglu_and_quantizes)
{
    check_matvec(all_types[_i], 2 * 96, 512, 1, RL_CU_MV_GLU);
    check_matvec(all_types[_i], 2 * 64, 256, 5, RL_CU_MV_GLU);
}
END_TEST

START_TEST(matvec_float_rows_not_multiple_of_8)
{
    check_matvec(RL_TYPE_F32, 20, 172, 2, RL_CU_MV_STORE);
    check_matvec(RL_TYPE_F16, 2 * 10, 172, 1, RL_CU_MV_GLU);
}
END_TEST

/* Matrices of different types write their columns of shared output rows (the
 * mixed-type Q|K|V layout): each lands at its offset, the rest stays poisoned. */
START_TEST(matvec_output_stride_writes_only_its_columns)
{
    const rl_type types[3] = {RL_TYPE_Q4_K, RL_TYPE_Q6_K, RL_TYPE_Q5_K};
    const int64_t rows[3] = {64, 32, 32}, cols = 512, ld = 136; /* 8 columns never written */
    int batch = 3;
    uint64_t s = tcu_seed("matvec stride");
    float *x = tcu_rand_vec(&s, cols * batch, 1.0f);
    rl_cu_act xa = make_act(cols, batch, x);
    CU_OK(rl_cu_quantize(&xa, batch, 0));
    float *dy = tcu_dev(ld * batch * sizeof(float));
    float *w[3];
    rl_cu_mat m[3];
    int64_t off = 0;
    for (int i = 0; i < 3; i++) {
        w[i] = malloc(rows[i] * cols * sizeof(float));
        tcu_make_weight(types[i], rows[i], cols, &s, &m[i], w[i]);
        rl_cu_act ya = {.f = dy + off, .n = rows[i], .stride = ld};
        CU_OK(rl_cu_matvec(&m[i], &xa, batch, RL_CU_MV_STORE, &ya, 0));
        off += rows[i];
    }
    float *y = malloc(ld * batch * sizeof(float));
    tcu_down(y, dy, ld * batch * sizeof(float));
    for (int b = 0; b < batch; b++) {
        float got[128];
        double ref[128];
        for (int i = 0, o = 0; i < 3; o += (int)rows[i], i++)
            for (int64_t r = 0; r < rows[i]; r++) {
                double acc = 0;
                for (int64_t c = 0; c < cols; c++)
                    acc += (double)w[i][r * cols + c] * x[b * cols + c];
                ref[o + r] = acc;
                got[o + r] = y[b * ld + o + r];
            }
        double err = tcu_rel_err(got, ref, 128);
        ck_assert_msg(err < 2e-2, "batch row %d: rel err %g", b, err);
        for (int64_t c = 128; c < ld; c++)
            ck_assert_msg(isnan(y[b * ld + c]), "column %lld of row %d was written", (long long)c, b);
    }
    /* GLU mode and a stride below n are refused. */
    rl_cu_act bad = {.f = dy, .n = 32, .stride = ld};
    ck_assert_int_eq(rl_cu_matvec(&m[0], &xa, batch, RL_CU_MV_GLU, &bad, 0), -EINVAL);
    bad = (rl_cu_act){.f = dy, .n = 64, .stride = 63};
    ck_assert_int_eq(rl_cu_matvec(&m[0], &xa, batch, RL_CU_MV_STORE, &bad, 0), -EINVAL);
    for (int i = 0; i < 3; i++) {
        rl_cu_mat_free(&m[i]);
        free(w[i]);
    }
    free_act(&xa);
    cudaFree(dy);
    free(x), free(y);
}
END_TEST

/* The deferred norm: producer type tp adds W a into the residual h0 and
 * writes the next norm's deferred input; a consumer of type tc (STORE or
 * GLU) scales by the RMS. Against float64: the residual, each block's sum of
 * squares, the int8 planes, and the consumer's output on the normalized GPU
 * residual. */
static void check_add_norm(rl_type tp, rl_type tc, int batch, int mode, int64_t K)
{
    const int64_t E = 512, R = 96;
    char name[96];
    snprintf(name, sizeof name, "add_norm %s -> %s b%d mode%d K%lld", rl_type_get(tp)->name, rl_type_get(tc)->name,
             batch, mode, (long long)K);
    uint64_t s = tcu_seed(name);
    float *wp = malloc(E * K * sizeof(float)), *wc = malloc(2 * R * E * sizeof(float));
    rl_cu_mat mp, mc;
    tcu_make_weight(tp, E, K, &s, &mp, wp);
    int64_t rc_rows = mode == RL_CU_MV_GLU ? 2 * R : R;
    tcu_make_weight(tc, rc_rows, E, &s, &mc, wc);
    float *a = tcu_rand_vec(&s, K * batch, 1.0f), *h0 = tcu_rand_vec(&s, E * batch, 4.0f);
    float *g = tcu_rand_vec(&s, E, 1.0f);
    rl_cu_act aa = make_act(K, batch, a);
    if (aa.q)
        CU_OK(rl_cu_quantize(&aa, batch, 0));
    rl_cu_act res = make_act(E, batch, h0), xn = make_act(E, batch, NULL);
    xn.ss = tcu_dev(E / 32 * batch * sizeof(float));
    xn.eps = 1e-5f;
    float *dg = tcu_up(g, E * sizeof(float));
    CU_OK(rl_cu_matvec_add_norm(&mp, &aa, batch, &res, dg, &xn, 0));
    /* the residual */
    float *h = malloc(E * batch * sizeof(float));
    double *ref = malloc(2 * R * batch * sizeof(double) + E * batch * sizeof(double));
    tcu_down(h, res.f, E * batch * sizeof(float));
    tcu_ref_product(wp, a, h0, E, K, batch, RL_CU_MV_ADD, ref);
    double err = tcu_rel_err(h, ref, E * batch);
    ck_assert_msg(err < (rl_cu_type_q8(tp) ? 2e-2 : 1e-4), "%s: residual rel err %g", name, err);
    /* the deferred input: h * g, block sums of squares of h, int8 planes */
    float *u = malloc(E * batch * sizeof(float));
    tcu_down(u, xn.f, E * batch * sizeof(float));
    for (int64_t i = 0; i < E * batch; i++)
        ck_assert_msg(fabsf(u[i] - h[i] * g[i % E]) <= 1e-6f * fabsf(h[i] * g[i % E]), "%s: xn[%lld]", name,
                      (long long)i);
    check_block_ss(xn.ss, h, E / 32 * batch, name);
    if (xn.q)
        tcu_check_q8_planes(&xn, u, E * batch, false, name);
    /* the consumer on the normalized residual */
    float *xnorm = malloc(E * batch * sizeof(float));
    tcu_ref_rmsnorm(h, g, E, batch, NULL, xnorm);
    rl_cu_act yc = make_act(R, batch, NULL);
    CU_OK(rl_cu_matvec(&mc, &xn, batch, mode, &yc, 0));
    float *y = malloc(R * batch * sizeof(float));
    tcu_down(y, yc.f, R * batch * sizeof(float));
    tcu_ref_product(wc, xnorm, NULL, rc_rows, E, batch, mode, ref);
    err = tcu_rel_err(y, ref, R * batch);
    ck_assert_msg(err < (rl_cu_type_q8(tc) ? 2e-2 : 1e-4), "%s: consumer rel err %g", name, err);
    free_act(&aa), free_act(&res), free_act(&xn), free_act(&yc);
    cudaFree(dg);
    rl_cu_mat_free(&mp), rl_cu_mat_free(&mc);
    free(wp), free(wc), free(a), free(h0), free(g), free(h), free(ref), free(u), free(xnorm), free(y);
}

START_TEST(matvec_add_norm_defers_the_rmsnorm_to_the_next_products)
{
    rl_type tp = all_types[_i], tc = all_types[(_i + 3) % 8];
    check_add_norm(tp, tc, 1, RL_CU_MV_STORE, 768);
    check_add_norm(tp, tc, 3, RL_CU_MV_GLU, 768);
    check_add_norm(tp, tp, 2, RL_CU_MV_GLU, 768);
    /* one sequence, longer rows: K of 80 units of 32 and (but for the
     * K-quants' 256-blocks) of 65, counts that are not a multiple of the
     * 32 lanes (the float types' 8-element units: more than the first
     * round a lane loads before the PDL wait) */
    check_add_norm(tp, tc, 1, RL_CU_MV_STORE, 2560);
    if (rl_type_get(tp)->block_size <= 32)
        check_add_norm(tp, tc, 1, RL_CU_MV_STORE, 2080);
}
END_TEST

/* What the deferred norm refuses: rows not in 32-blocks, float rows not in 8s
 * (scalar kernel), an output without its sums, and any product of
 * rl_cu_product's that is not the matvec. */
START_TEST(deferred_norm_refused_where_it_cannot_run)
{
    uint64_t s = tcu_seed("add_norm refusals");
    rl_cu_mat m48, mf, mq;
    float *w = malloc(64 * 512 * sizeof(float));
    tcu_make_weight(RL_TYPE_Q4_0, 48, 512, &s, &m48, w);
    tcu_make_weight(RL_TYPE_F32, 32, 172, &s, &mf, w);
    tcu_make_weight(RL_TYPE_Q4_0, 64, 512, &s, &mq, w);
    ck_assert(!rl_cu_matvec_norm_ok(&m48));
    ck_assert(!rl_cu_matvec_norm_ok(&mf));
    ck_assert(rl_cu_matvec_norm_ok(&mq));
    float *x = tcu_rand_vec(&s, 512 * 16, 1.0f);
    rl_cu_act xa = make_act(512, 16, x), y48 = make_act(48, 16, NULL), y64 = make_act(64, 16, NULL);
    CU_OK(rl_cu_quantize(&xa, 16, 0));
    rl_cu_act xn = make_act(64, 1, NULL);
    ck_assert_int_eq(rl_cu_matvec_add_norm(&m48, &xa, 1, &y48, x, &xn, 0), -ENOTSUP);
    ck_assert_int_eq(rl_cu_matvec_add_norm(&mq, &xa, 1, &y64, x, &xn, 0), -EINVAL); /* xn.ss not set */
    xa.ss = tcu_dev(16 * 16 * sizeof(float));
    xa.eps = 1e-5f;
    ck_assert(!rl_cu_product_is_matvec(&mq, true, 16));
    ck_assert_int_eq(rl_cu_product(&mq, &xa, 16, RL_CU_MV_STORE, &y64, 0), -EINVAL);
    free_act(&xa), free_act(&y48), free_act(&y64), free_act(&xn);
    rl_cu_mat_free(&m48), rl_cu_mat_free(&mf), rl_cu_mat_free(&mq);
    free(w), free(x);
}
END_TEST

START_TEST(rmsnorm_matches_cpu_and_quantizes)
{
    /* registers path (4096), long rows (10240), rows without 32-blocks (172) */
    const int64_t sizes[] = {4096, 10240, 172};
    uint64_t s = tcu_seed("rmsnorm");
    int64_t n = sizes[_i];
    int batch = 3;
    float *x = tcu_rand_vec(&s, n * batch, 3.0f), *w = tcu_rand_vec(&s, n, 1.0f);
    float *dw = tcu_up(w, n * sizeof(float)), *dx = tcu_up(x, n * batch * sizeof(float));
    rl_cu_act y = make_act(n, batch, NULL);
    CU_OK(rl_cu_rmsnorm(dx, dw, 1e-5f, n, batch, &y, 0));
    float *out = malloc(n * batch * sizeof(float));
    double *ref = malloc(n * batch * sizeof(double));
    tcu_down(out, y.f, n * batch * sizeof(float));
    tcu_ref_rmsnorm(x, w, n, batch, ref, NULL);
    double err = tcu_rel_err(out, ref, n * batch);
    ck_assert_msg(err < 1e-5, "rmsnorm rel err %g", err);
    if (n % 32) {
        ck_assert_ptr_null(y.q);
        free_act(&y);
        cudaFree(dw), cudaFree(dx);
        free(x), free(w), free(out), free(ref);
        return;
    }
    tcu_check_q8_planes(&y, out, n * batch, false, "rmsnorm");
    /* The deferred form (y.ss): x * w and each block's sum of squares of x. */
    rl_cu_act yd = make_act(n, batch, NULL);
    yd.ss = tcu_dev(n / 32 * batch * sizeof(float));
    yd.eps = 1e-5f;
    CU_OK(rl_cu_rmsnorm(dx, dw, 1e-5f, n, batch, &yd, 0));
    tcu_down(out, yd.f, n * batch * sizeof(float));
    for (int64_t i = 0; i < n * batch; i++)
        ck_assert_msg(out[i] == x[i] * w[i % n], "deferred rmsnorm [%lld]", (long long)i);
    check_block_ss(yd.ss, x, n / 32 * batch, "deferred rmsnorm");
    tcu_check_q8_planes(&yd, out, n * batch, false, "deferred rmsnorm");
    free_act(&yd);
    free_act(&y);
    cudaFree(dw), cudaFree(dx);
    free(x), free(w), free(out), free(ref);
}
END_TEST

static float h2f(uint16_t h)
{
    return rl_fp16_to_fp32(h);
}

/* Batches of 3, 20 and 130 tokens: the launch gives a block 4, 8 or 32 of
 * the 12 heads (rows of heads visiting q, k and v heads alike, a partial
 * last block). */
START_TEST(rope_kv_rotates_and_writes_cache)
{
    bool neox = _i % 2;
    static const int batches[3] = {3, 20, 130};
    uint64_t s = tcu_seed(neox ? "rope neox" : "rope normal");
    rl_cu_rope r = {.n_head = 8, .n_head_kv = 2, .head_dim = 64, .n_rot = 48, .freq_base = 10000.0f, .neox = neox};
    int batch = batches[_i / 2], qd = r.n_head * r.head_dim, kvd = r.n_head_kv * r.head_dim, row = qd + 2 * kvd;
    int64_t n_ctx = 80, n_slot = 4;
    int32_t pos[130] = {0, 17, 49}, slot[130] = {3, 0, 3};
    for (int b = 3; b < batch; b++) /* distinct places in slots 1 and 2, positions 0..63 */
        slot[b] = 1 + b % 2, pos[b] = (b - 3) / 2;
    float *qkv = tcu_rand_vec(&s, (size_t)row * batch, 2.0f);
    float *dqkv = tcu_up(qkv, (size_t)row * batch * 4);
    int32_t *dpos = tcu_up(pos, sizeof pos), *dslot = tcu_up(slot, sizeof slot);
    float *dq = tcu_dev((size_t)qd * batch * 4);
    size_t cache_elems = (size_t)n_slot * n_ctx * kvd;
    uint16_t *dk = tcu_dev(cache_elems * 2), *dv = tcu_dev(cache_elems * 2);
    CU_OK(rl_cu_rope_kv(dqkv, batch, dpos, dslot, &r, n_ctx, dq, dk, dv, 0));
    float *q = malloc((size_t)qd * batch * 4);
    uint16_t *k = malloc(cache_elems * 2), *v = malloc(cache_elems * 2);
    tcu_down(q, dq, (size_t)qd * batch * 4);
    tcu_down(k, dk, cache_elems * 2);
    tcu_down(v, dv, cache_elems * 2);
    for (int b = 0; b < batch; b++) {
        const float *src = qkv + (size_t)b * row;
        for (int h = 0; h < r.n_head + r.n_head_kv; h++) {
            const float *x = src + h * r.head_dim;
            for (int i = 0; i < r.head_dim; i++) {
                double want = x[i];
                int pair = neox ? (i < r.n_rot ? i % (r.n_rot / 2) : -1) : (i < r.n_rot ? i / 2 : -1);
                if (pair >= 0) {
                    double th = pos[b] * pow(10000.0, -2.0 * pair / r.n_rot);
                    int i0 = neox ? pair : 2 * pair, i1 = neox ? pair + r.n_rot / 2 : 2 * pair + 1;
                    want = i == i0 ? x[i0] * cos(th) - x[i1] * sin(th) : x[i0] * sin(th) + x[i1] * cos(th);
                }
                float got = h < r.n_head ? q[(size_t)b * qd + h * r.head_dim + i]
                                         : h2f(k[((size_t)slot[b] * n_ctx + pos[b]) * kvd + (h - r.n_head) * r.head_dim + i]);
                double tol = h < r.n_head ? 1e-4 : 2e-3 * fabs(want) + 1e-3;
                ck_assert_msg(fabs(got - want) <= tol, "b%d h%d i%d: %g vs %g", b, h, i, got, want);
            }
        }
        for (int i = 0; i < kvd; i++)
            ck_assert(fabsf(h2f(v[((size_t)slot[b] * n_ctx + pos[b]) * kvd + i]) - src[qd + kvd + i]) <=
                      2e-3f * fabsf(src[qd + kvd + i]) + 1e-3f);
    }
    /* Untouched cache rows keep the poison. */
    ck_assert_uint_eq(k[((size_t)0 * n_ctx + 5) * kvd], 0xFFFF);
    ck_assert_uint_eq(v[((size_t)3 * n_ctx + 18) * kvd + 3], 0xFFFF);
    cudaFree(dqkv), cudaFree(dpos), cudaFree(dslot), cudaFree(dq), cudaFree(dk), cudaFree(dv);
    free(qkv), free(q), free(k), free(v);
}
END_TEST

/* One decode attention (kernel: as rl_cu_attn_force) checked against a
 * float64 reference; returns the output (the caller frees it). seed 0: a
 * fresh one; the same seed gives the same inputs. */
static float *check_attn_k(int n_split_force, int head_dim, int kernel, uint64_t seed)
{
    uint64_t s = seed ? seed : tcu_seed("attention");
    rl_cu_rope r = {.n_head = 8, .n_head_kv = 2, .head_dim = head_dim, .n_rot = head_dim, .freq_base = 1e4f};
    int batch = 3, hd = r.head_dim, kvd = r.n_head_kv * hd, qd = r.n_head * hd;
    int64_t n_ctx = 700, n_slot = 2;
    int32_t pos[3] = {0, 299, 650}, slot[3] = {1, 0, 1};
    size_t ce = (size_t)n_slot * n_ctx * kvd;
    uint16_t *k = malloc(ce * 2), *v = malloc(ce * 2);
    for (size_t i = 0; i < ce; i++) {
        k[i] = rl_fp32_to_fp16(tcu_unif(&s));
        v[i] = rl_fp32_to_fp16(tcu_unif(&s));
    }
    float *q = tcu_rand_vec(&s, (size_t)qd * batch, 3.0f);
    void *dk = tcu_up(k, ce * 2), *dv = tcu_up(v, ce * 2);
    float *dq = tcu_up(q, (size_t)qd * batch * 4);
    int32_t *dpos = tcu_up(pos, sizeof pos), *dslot = tcu_up(slot, sizeof slot);
    /* > 0: that split; 0: the usual one; < 0: unsplit (prefill) */
    int n_split = n_split_force > 0 ? n_split_force : n_split_force < 0 ? 0 : rl_cu_attn_splits(batch, r.n_head);
    size_t scr_bytes = rl_cu_attn_scratch_size(batch, r.n_head, hd, n_ctx);
    void *scr = tcu_dev(scr_bytes);
    ck_assert(cudaMemset(scr, 0, scr_bytes) == cudaSuccess); /* counters start at zero (documented) */
    rl_cu_act out = make_act(qd, batch, NULL);
    rl_cu_attn_force(kernel);
    CU_OK(rl_cu_attn_decode(dq, dk, dv, dpos, dslot, batch, &r, n_ctx, n_split, scr, &out, 0));
    /* Again on a poisoned output: the arrival counters were left at zero. */
    ck_assert(cudaMemset(out.f, 0xFF, (size_t)qd * batch * 4) == cudaSuccess);
    CU_OK(rl_cu_attn_decode(dq, dk, dv, dpos, dslot, batch, &r, n_ctx, n_split, scr, &out, 0));
    float *o = malloc((size_t)qd * batch * 4);
    double *ref = calloc((size_t)qd * batch, sizeof(double));
    tcu_down(o, out.f, (size_t)qd * batch * 4);
    double *sc = malloc(n_ctx * sizeof(double));
    for (int b = 0; b < batch; b++)
        for (int h = 0; h < r.n_head; h++) {
            int kh = h / (r.n_head / r.n_head_kv);
            double mx = -INFINITY, sum = 0;
            for (int t = 0; t <= pos[b]; t++) {
                double d = 0;
                for (int i = 0; i < hd; i++)
                    d += (double)q[(size_t)b * qd + h * hd + i] *
                         h2f(k[((size_t)slot[b] * n_ctx + t) * kvd + kh * hd + i]);
                sc[t] = d / sqrt(hd);
                mx = fmax(mx, sc[t]);
            }
            for (int t = 0; t <= pos[b]; t++)
                sum += (sc[t] = exp(sc[t] - mx));
            for (int t = 0; t <= pos[b]; t++)
                for (int i = 0; i < hd; i++)
                    ref[(size_t)b * qd + h * hd + i] +=
                        sc[t] / sum * h2f(v[((size_t)slot[b] * n_ctx + t) * kvd + kh * hd + i]);
        }
    double err = tcu_rel_err(o, ref, (size_t)qd * batch);
    ck_assert_msg(err < 1e-4, "attention rel err %g (n_split %d, kernel %d)", err, n_split, kernel);
    rl_cu_attn_force(-1);
    free_act(&out);
    cudaFree(dk), cudaFree(dv), cudaFree(dq), cudaFree(dpos), cudaFree(dslot), cudaFree(scr);
    free(k), free(v), free(q), free(ref), free(sc);
    return o;
}

static void check_attn(int n_split_force, int head_dim)
{
    free(check_attn_k(n_split_force, head_dim, -1, 0));
}

START_TEST(attention_decode_matches_cpu_with_gqa)
{
    check_attn(0, 128);
    check_attn(0, 64);
    check_attn(0, 40); /* generic head size */
}
END_TEST

START_TEST(attention_decode_same_result_for_any_split)
{
    check_attn(1, 128);
    check_attn(7, 64);
    check_attn(32, 128);
    check_attn(-1, 128);
    check_attn(-1, 40);
}
END_TEST

/* The warp kernel (the default for head sizes 64 and 128) gives the same bits
 * for every split, and agrees with the block kernel. */
START_TEST(attention_warp_kernel_split_invariant_and_matches_block_kernel)
{
    const int hds[2] = {64, 128}, splits[3] = {1, 7, 32};
    for (int i = 0; i < 2; i++) {
        size_t ni = (size_t)3 * 8 * hds[i]; /* check_attn_k's 3 queries x 8 heads */
        uint64_t seed = tcu_seed("attention kernels");
        float *blk = check_attn_k(5, hds[i], 1, seed), *w0 = check_attn_k(splits[0], hds[i], 0, seed);
        double e = tcu_rel_err_f(w0, blk, ni);
        ck_assert_msg(e < 1e-5, "head %d: warp vs block kernel rel L2 %g", hds[i], e);
        for (int k = 1; k < 3; k++) {
            float *wk = check_attn_k(splits[k], hds[i], 0, seed);
            ck_assert_msg(!memcmp(wk, w0, ni * 4), "head %d: split %d differs from split 1", hds[i], splits[k]);
            free(wk);
        }
        free(blk), free(w0);
    }
}
END_TEST

/* Rows of n logits (n % 4 == 0: the float4 path; else the scalar one): a
 * tie goes to the lower index, NaN never wins, a row of NaNs gives 0. */
static void check_argmax(int64_t n)
{
    uint64_t s = tcu_seed("argmax");
    float *l = tcu_rand_vec(&s, n * 3, 5.0f);
    int64_t a = 1 + tcu_rng_next(&s) % (n - 10), b2 = a + 1 + tcu_rng_next(&s) % 5;
    l[a] = 100.0f;
    l[b2] = 100.0f;           /* tie: the lower index wins */
    l[n + 7] = NAN;           /* NaN never wins */
    l[n + 9] = 50.0f;
    l[n + n - 1] = 50.0f;     /* the row's last: a tie it loses */
    for (int64_t i = 0; i < n; i++)
        l[2 * n + i] = NAN;
    float *dl = tcu_up(l, n * 3 * 4);
    int32_t *dout = tcu_dev(12), out[3];
    CU_OK(rl_cu_argmax(dl, n, 3, dout, 0));
    tcu_down(out, dout, 12);
    ck_assert_int_eq(out[0], (int)a);
    ck_assert_int_eq(out[1], 9);
    ck_assert_int_eq(out[2], 0);
    l[n + n - 1] = 60.0f; /* now the last one wins */
    cudaFree(dl);
    dl = tcu_up(l, n * 3 * 4);
    CU_OK(rl_cu_argmax(dl, n, 3, dout, 0));
    tcu_down(out, dout, 12);
    ck_assert_int_eq(out[1], (int)(n - 1));
    cudaFree(dl), cudaFree(dout);
    free(l);
}

START_TEST(argmax_picks_lowest_index_on_ties_and_skips_nan)
{
    check_argmax(32000);
    check_argmax(32001); /* not a multiple of 4 (nor are rows after the first 16-byte aligned): the scalar loop */
    check_argmax(151936);
}
END_TEST

typedef struct tk_ref {
    float v;
    int32_t id;
} tk_ref;

static int tk_ref_cmp(const void *a, const void *b)
{
    const tk_ref *x = a, *y = b;
    if (x->v != y->v)
        return x->v > y->v ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* rl_cu_topk against a sort on the host: the k best in the sampler's order
 * (value descending, ties by lower id, -0 equal to +0), the values' bits
 * kept; rows with NaN or inf flagged; rows read through an index or not. */
START_TEST(topk_gives_the_k_best_in_the_samplers_order)
{
    uint64_t s = tcu_seed("topk");
    enum { R = 8, STRIDE = RL_CU_TOPK_MAX };
    static const int64_t ns[] = {1000, 32000, 100003};
    static const int32_t ks[R] = {1, 2, 40, RL_CU_TOPK_MAX, 0, 255, 40, 3};
    for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
        int64_t n = ns[ni];
        float *l = malloc(sizeof(float) * n * R);
        tk_ref *r = malloc(sizeof(tk_ref) * n);
        for (int row = 0; row < R; row++) {
            float *x = l + row * n;
            for (int64_t i = 0; i < n; i++) {
                float u = tcu_unif(&s);
                switch (row % 4) {
                case 0: x[i] = u * 8.0f; break;                               /* few ties */
                case 1: x[i] = floorf(u * 32.0f) * 0.25f; break;              /* many ties at the cut */
                case 2: x[i] = 3.0f; break;                                   /* all tied: the lowest ids */
                default: x[i] = -1.0f - fabsf(u); break;                      /* zeros on top, below */
                }
            }
            if (row % 4 == 3) {
                x[n / 3] = -0.0f;
                x[n / 7] = 0.0f;
                x[n / 2] = -0.0f;
            }
        }
        l[6 * n + n / 5] = NAN;      /* row 6: left to the host */
        l[7 * n + n - 1] = INFINITY; /* row 7 too */
        float *dl = tcu_up(l, sizeof(float) * n * R);
        int32_t rows[R], k_h[R];
        for (int o = 0; o < R; o++)
            rows[o] = R - 1 - o; /* output o reads row R-1-o */
        for (int pass = 0; pass < 2; pass++) {
            /* pass 0: through rows[] (output o wants ks[R-1-o]); pass 1: output o is row o */
            for (int o = 0; o < R; o++)
                k_h[o] = ks[pass ? o : R - 1 - o];
            int32_t *drows = tcu_up(rows, sizeof rows), *dk = tcu_up(k_h, sizeof k_h), *dok = tcu_dev(R * 4);
            rl_cu_cand *dc = tcu_dev(sizeof(rl_cu_cand) * R * STRIDE);
            float *dlse = tcu_dev(R * 4); /* pass 1 also asks for the normalizer */
            CU_OK(rl_cu_topk(dl, n, pass ? NULL : drows, dk, R, STRIDE, dc, dok, pass ? dlse : NULL, 0));
            rl_cu_cand *c = malloc(sizeof(rl_cu_cand) * R * STRIDE);
            int32_t ok[R];
            float lse[R];
            tcu_down(ok, dok, sizeof ok);
            tcu_down(lse, dlse, sizeof lse);
            tcu_down(c, dc, sizeof(rl_cu_cand) * R * STRIDE);
            for (int o = 0; o < R; o++) {
                int row = pass ? o : rows[o], k = k_h[o];
                if (k == 0)
                    continue; /* nothing asked: nothing checked (the flag is not written) */
                const float *x = l + (int64_t)row * n;
                if (row >= 6) {
                    ck_assert_msg(ok[o] == 0, "n %lld row %d: a non-finite row passed", (long long)n, row);
                    continue;
                }
                ck_assert_msg(ok[o] == 1, "n %lld row %d: flagged", (long long)n, row);
                for (int64_t i = 0; i < n; i++)
                    r[i] = (tk_ref){x[i], (int32_t)i};
                qsort(r, n, sizeof(tk_ref), tk_ref_cmp);
                for (int j = 0; j < k; j++) {
                    rl_cu_cand g = c[(size_t)o * STRIDE + j];
                    ck_assert_msg(g.id == r[j].id, "n %lld row %d k %d: #%d is id %d (%g), want %d (%g)",
                                  (long long)n, row, k, j, g.id, g.logit, r[j].id, r[j].v);
                    ck_assert(memcmp(&g.logit, &x[g.id], 4) == 0); /* the value as it is (-0 too) */
                }
                if (pass) { /* log(sum exp(x - best)) against double precision */
                    double sum = 0;
                    for (int64_t i = 0; i < n; i++)
                        sum += exp((double)x[i] - r[0].v);
                    ck_assert_msg(fabs(lse[o] - log(sum)) <= 2e-5 * (1 + log(sum)), "n %lld row %d: lse %g, want %g",
                                  (long long)n, row, lse[o], log(sum));
                }
            }
            free(c);
            cudaFree(drows), cudaFree(dk), cudaFree(dok), cudaFree(dc), cudaFree(dlse);
        }
        cudaFree(dl);
        free(l), free(r);
    }
}
END_TEST

START_TEST(gemm_matches_cpu)
{
    rl_type t = all_types[_i];
    uint64_t s = tcu_seed("gemm");
    int64_t rows = 96, cols = 512;
    int n = 37;
    float *w = malloc(rows * cols * 4);
    rl_cu_mat m;
    tcu_make_weight(t, rows, cols, &s, &m, w);
    float *x = tcu_rand_vec(&s, (size_t)n * cols, 1.0f), *y0 = tcu_rand_vec(&s, (size_t)n * rows, 1.0f);
    float *dx = tcu_up(x, (size_t)n * cols * 4), *dy = tcu_up(y0, (size_t)n * rows * 4);
    void *dxh = tcu_dev((size_t)n * cols * 2), *scr = tcu_dev((size_t)rows * cols * 2);
    rl_cu_blas *bl;
    CU_OK(rl_cu_blas_create(&bl, 0));
    CU_OK(rl_cu_f32_to_f16(dx, dxh, (int64_t)n * cols, 0));
    CU_OK(rl_cu_gemm(bl, &m, dxh, n, dy, true, scr));
    float *y = malloc((size_t)n * rows * 4);
    double *ref = malloc((size_t)n * rows * sizeof(double));
    tcu_down(y, dy, (size_t)n * rows * 4);
    for (int i = 0; i < n; i++)
        for (int64_t o = 0; o < rows; o++) {
            double acc = y0[(size_t)i * rows + o];
            for (int64_t c = 0; c < cols; c++)
                acc += (double)w[o * cols + c] * x[(size_t)i * cols + c];
            ref[(size_t)i * rows + o] = acc;
        }
    double err = tcu_rel_err(y, ref, (size_t)n * rows);
    ck_assert_msg(err < 5e-3, "gemm %s rel err %g", rl_type_get(t)->name, err);
    rl_cu_blas_destroy(bl);
    rl_cu_mat_free(&m);
    cudaFree(dx), cudaFree(dy), cudaFree(dxh), cudaFree(scr);
    free(w), free(x), free(y0), free(y), free(ref);
}
END_TEST

START_TEST(get_rows_dequantizes_and_zeroes_bad_ids)
{
    rl_type t = all_types[_i];
    uint64_t s = tcu_seed("get_rows");
    int64_t rows = 50, cols = 256;
    float *w = malloc(rows * cols * 4);
    rl_cu_mat m;
    tcu_make_weight(t, rows, cols, &s, &m, w);
    int32_t ids[4] = {49, 0, 1000, (int32_t)(tcu_rng_next(&s) % rows)};
    int32_t *dids = tcu_up(ids, sizeof ids);
    float *dout = tcu_dev(4 * cols * 4), *out = malloc(4 * cols * 4);
    CU_OK(rl_cu_mat_get_rows(&m, dids, 4, dout, 0));
    tcu_down(out, dout, 4 * cols * 4);
    for (int i = 0; i < 4; i++)
        for (int64_t c = 0; c < cols; c++) {
            float want = ids[i] < rows ? w[ids[i] * cols + c] : 0.0f;
            ck_assert_msg(fabsf(out[i * cols + c] - want) <= 1e-6f * fabsf(want), "row %d col %lld", i, (long long)c);
        }
    rl_cu_mat_free(&m);
    cudaFree(dids), cudaFree(dout);
    free(w), free(out);
}
END_TEST

START_TEST(q6k_rows_in_pieces_and_partial_groups_read_back_exactly)
{
    /* Q6_K rows on the device are groups of 8 blocks behind a 16-byte header
     * of their d's; 11 blocks a row is one full group and one of 3. Rows
     * uploaded in two pieces (as the fused Q|K|V uploads its parts), each
     * value read back by the dequantizing row gather and by a matvec whose
     * input picks one column at a time. */
    uint64_t s = tcu_seed("q6k_groups");
    enum { rows = 8 };
    const int64_t cols = 256 * 11;
    const rl_type_traits *tr = rl_type_get(RL_TYPE_Q6_K);
    size_t rb = rl_type_row_size(RL_TYPE_Q6_K, cols);
    uint8_t *raw = malloc(rb * rows);
    float *v = malloc(cols * sizeof(float)), *ref = malloc(rows * cols * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++)
            v[c] = tcu_unif(&s) * (1.0f + (float)r);
        tr->from_float(v, raw + r * rb, cols);
        tr->to_float(raw + r * rb, ref + r * cols, cols);
    }
    rl_cu_mat m;
    CU_OK(rl_cu_mat_alloc(&m, RL_TYPE_Q6_K, rows, cols));
    /* 210 bytes a block, 16-byte aligned rows (RL_CU_KROW128: on 128-byte lines) */
    const int64_t packed = 11 * 208 + 2 * 16;
    ck_assert_msg(m.ld % 16 == 0 && m.ld >= packed && m.ld < packed + 128, "row bytes %lld", (long long)m.ld);
    ck_assert_uint_eq(m.bytes, (size_t)rows * m.ld);
    CU_OK(rl_cu_mat_set_rows(&m, 0, raw, 3));
    CU_OK(rl_cu_mat_set_rows(&m, 3, raw + 3 * rb, rows - 3));
    int32_t ids[rows];
    for (int i = 0; i < rows; i++)
        ids[i] = rows - 1 - i;
    int32_t *dids = tcu_up(ids, sizeof ids);
    float *dout = tcu_dev(rows * cols * 4), *out = malloc(rows * cols * 4);
    CU_OK(rl_cu_mat_get_rows(&m, dids, rows, dout, 0));
    tcu_down(out, dout, rows * cols * 4);
    for (int i = 0; i < rows; i++)
        for (int64_t c = 0; c < cols; c++)
            ck_assert_msg(out[i * cols + c] == ref[ids[i] * cols + c], "row %d col %lld: %g, want %g", ids[i],
                          (long long)c, out[i * cols + c], ref[ids[i] * cols + c]);
    /* the matvec's addressing: one-hot inputs at a block's first and last
     * column in each group select that column of every row */
    const int64_t probe[] = {0, 255, 256 * 7 + 255, 256 * 8, 256 * 10 + 255};
    float *x = calloc(cols, sizeof(float)), y[rows];
    for (size_t p = 0; p < sizeof probe / sizeof probe[0]; p++) {
        x[probe[p]] = 1.0f;
        rl_cu_act xa = make_act(cols, 1, x), ya = make_act(rows, 1, NULL);
        CU_OK(rl_cu_quantize(&xa, 1, 0));
        CU_OK(rl_cu_matvec(&m, &xa, 1, RL_CU_MV_STORE, &ya, 0));
        tcu_down(y, ya.f, sizeof y);
        for (int r = 0; r < rows; r++) {
            float want = ref[r * cols + probe[p]];
            ck_assert_msg(fabsf(y[r] - want) <= 1e-5f * fabsf(want) + 1e-7f, "matvec row %d col %lld: %g, want %g",
                          r, (long long)probe[p], y[r], want);
        }
        free_act(&xa), free_act(&ya);
        x[probe[p]] = 0.0f;
    }
    rl_cu_mat_free(&m);
    cudaFree(dids), cudaFree(dout);
    free(raw), free(v), free(ref), free(out), free(x);
}
END_TEST

START_TEST(fill_random_gives_finite_weights_of_sane_size)
{
    /* Benchmarks run on these: every value finite, |w| well below 1, not all zero. */
    rl_type t = all_types[_i];
    int64_t rows = 64, cols = 512;
    rl_cu_mat m;
    CU_OK(rl_cu_mat_alloc(&m, t, rows, cols));
    CU_OK(rl_cu_mat_fill_random(&m, tcu_seed("fill_random"), 0));
    int32_t ids[4] = {0, 17, 40, 63};
    int32_t *dids = tcu_up(ids, sizeof ids);
    float *dout = tcu_dev(4 * cols * 4), *out = malloc(4 * cols * 4);
    CU_OK(rl_cu_mat_get_rows(&m, dids, 4, dout, 0));
    tcu_down(out, dout, 4 * cols * 4);
    double ss = 0;
    for (int64_t i = 0; i < 4 * cols; i++) {
        ck_assert_msg(isfinite(out[i]) && fabsf(out[i]) < 1.0f, "%s value %lld: %g", rl_type_get(t)->name,
                      (long long)i, out[i]);
        ss += (double)out[i] * out[i];
    }
    ck_assert_msg(ss > 0, "%s: all zero", rl_type_get(t)->name);
    rl_cu_mat_free(&m);
    cudaFree(dids), cudaFree(dout);
    free(out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cuda_kernels");
    TCase *tc = tcase_create("kernels");
    tcase_set_timeout(tc, 120);
    int nt = (int)(sizeof all_types / sizeof all_types[0]);
    tcase_add_loop_test(tc, matvec_matches_cpu_for_each_type_and_batch, 0, nt);
    tcase_add_loop_test(tc, matvec_add_mode_accumulates_into_output, 0, nt);
    tcase_add_loop_test(tc, matvec_glu_mode_fuses_swiglu_and_quantizes, 0, nt);
    tcase_add_test(tc, matvec_float_rows_not_multiple_of_8);
    tcase_add_test(tc, matvec_output_stride_writes_only_its_columns);
    tcase_add_loop_test(tc, rmsnorm_matches_cpu_and_quantizes, 0, 3);
    tcase_add_loop_test(tc, matvec_add_norm_defers_the_rmsnorm_to_the_next_products, 0, nt);
    tcase_add_test(tc, deferred_norm_refused_where_it_cannot_run);
    tcase_add_loop_test(tc, rope_kv_rotates_and_writes_cache, 0, 6);
    tcase_add_test(tc, attention_decode_matches_cpu_with_gqa);
    tcase_add_test(tc, attention_decode_same_result_for_any_split);
    tcase_add_test(tc, attention_warp_kernel_split_invariant_and_matches_block_kernel);
    tcase_add_test(tc, argmax_picks_lowest_index_on_ties_and_skips_nan);
    tcase_add_loop_test(tc, gemm_matches_cpu, 0, nt);
    tcase_add_loop_test(tc, get_rows_dequantizes_and_zeroes_bad_ids, 0, nt);
    tcase_add_loop_test(tc, fill_random_gives_finite_weights_of_sane_size, 0, nt);
    tcase_add_test(tc, q6k_rows_in_pieces_and_partial_groups_read_back_exactly);
    suite_add_tcase(s, tc);
    TCase *tk = tcase_create("topk"); /* its own case: CK_RUN_CASE=topk under compute-sanitizer */
    tcase_set_timeout(tk, 120);
    tcase_add_test(tk, topk_gives_the_k_best_in_the_samplers_order);
    suite_add_tcase(s, tk);
    return tcu_main(s);
}
