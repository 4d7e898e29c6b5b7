/* test_cu_mvb.c - rl_cu_mvb, the one-sequence products whose weights
 * stream by bulk copies into shared memory, against float64 on fresh random
 * inputs. Exits 77 without a GPU; skips with a message without sm_90. */
#include <errno.h>
#include <time.h>

#include "tcu_kv.h"
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

/* rl_cu_mvb_rope_kv against rl_cu_mvb and then rl_cu_rope_kv_paged (the RoPE
 * kernel) on the same weights and input: the rotated q, the pool's k and v
 * rows, and nothing else of the pool written. parts: the q|k|v rows as one
 * matrix, or as three (Q, K, V: row0 0, q rows, q + kv rows). row: the
 * token's block-table row (-1: no place; only q is written). */
static void check_rope(rl_type t, int head_dim, int n_rot, bool inv_freq, int parts, int32_t pos, int32_t row)
{
    char name[96];
    snprintf(name, sizeof name, "mvb rope %s hd%d rot%d inv%d parts%d pos%d row%d", rl_type_get(t)->name, head_dim,
             n_rot, inv_freq, parts, pos, row);
    uint64_t s = tcu_seed(name);
    pool_case c;
    make_case(&c, &s, head_dim, false);
    c.r.n_rot = n_rot;
    float freq[256] = {0};
    for (int i = 0; i < n_rot / 2; i++)
        freq[i] = 0.5f / (float)(1 + i);
    float *dfreq = inv_freq ? tcu_up(freq, sizeof freq) : NULL;
    c.r.inv_freq = dfreq;
    int hd = head_dim, qd = c.r.n_head * hd, kvd = c.r.n_head_kv * hd, rows = qd + 2 * kvd, cols = 2304;
    /* the rows quantized once: the parts are rows of the same blocks */
    size_t rb = rl_type_row_size(t, cols);
    uint8_t *raw = malloc(rb * rows);
    float *row_f = malloc(cols * sizeof(float));
    for (int r = 0; r < rows; r++) {
        for (int k = 0; k < cols; k++)
            row_f[k] = tcu_unif(&s) * (1.0f + (float)(r % 7));
        rl_type_get(t)->from_float(row_f, raw + r * rb, cols);
    }
    rl_cu_mat whole;
    CU_OK(rl_cu_mat_alloc(&whole, t, rows, cols));
    CU_OK(rl_cu_mat_set_rows(&whole, 0, raw, rows));
    float *x = tcu_rand_vec(&s, cols, 2.0f), *g = tcu_rand_vec(&s, cols, 1.0f);
    float *dx = tcu_up(x, cols * sizeof(float)), *dg = tcu_up(g, cols * sizeof(float));
    int32_t *dpos = tcu_up(&pos, sizeof pos), *drow = tcu_up(&row, sizeof row);
    int32_t *dbt = tcu_up(c.bt, sizeof(int32_t) * c.n_seq * c.stride);
    size_t pool_elems = rl_cu_kv_block_bytes(NL, (uint32_t)c.r.n_head_kv, (uint32_t)hd, false) / 2 * c.n_blocks;
    uint16_t *dpool1 = tcu_dev(pool_elems * 2), *dpool2 = tcu_dev(pool_elems * 2); /* poisoned 0xFFFF */
    rl_cu_kv kv1 = dev_kv(&c, dpool1, dbt, false), kv2 = dev_kv(&c, dpool2, dbt, false);
    float *dqkv = tcu_dev((size_t)rows * 4), *dq1 = tcu_dev((size_t)qd * 4), *dq2 = tcu_dev((size_t)qd * 4);
    /* the reference: the product, then the RoPE kernel */
    CU_OK(rl_cu_mvb(&whole, dx, dg, 1e-5f, RL_CU_MV_STORE, dqkv, 0));
    CU_OK(rl_cu_rope_kv_paged(dqkv, 1, dpos, drow, &c.r, &kv1, LAYER, dq1, 0));
    /* the epilogue: the whole matrix, or its Q, K and V rows as matrices of their own */
    int64_t r0[3] = {0, qd, qd + kvd}, nr[3] = {rows, kvd, kvd};
    if (parts == 3)
        nr[0] = qd;
    for (int i = 0; i < parts; i++) {
        rl_cu_mat pm = whole;
        if (parts != 1) {
            CU_OK(rl_cu_mat_alloc(&pm, t, nr[i], cols));
            CU_OK(rl_cu_mat_set_rows(&pm, 0, raw + r0[i] * rb, nr[i]));
        }
        rl_cu_mvb_rope e = {&c.r, &kv2, LAYER, dpos, drow, dq2, r0[i]};
        ck_assert_msg(rl_cu_mvb_rope_ok(&pm, &e), "%s: part %d taken", name, i);
        CU_OK(rl_cu_mvb_rope_kv(&pm, dx, dg, 1e-5f, &e, 0));
        if (parts != 1)
            rl_cu_mat_free(&pm);
    }
    float *q1 = malloc((size_t)qd * 4), *q2 = malloc((size_t)qd * 4);
    uint16_t *p1 = malloc(pool_elems * 2), *p2 = malloc(pool_elems * 2);
    tcu_down(q1, dq1, (size_t)qd * 4), tcu_down(q2, dq2, (size_t)qd * 4);
    tcu_down(p1, dpool1, pool_elems * 2), tcu_down(p2, dpool2, pool_elems * 2);
    double qmax = 0.0;
    for (int i = 0; i < qd; i++)
        qmax = fmax(qmax, fabs(q1[i]));
    for (int i = 0; i < qd; i++) /* the same sums, rotated by the same arithmetic up to FMA contraction */
        ck_assert_msg(fabs(q1[i] - q2[i]) <= 1e-5 * qmax, "%s: q[%d] %g against %g", name, i, q2[i], q1[i]);
    size_t written = 0;
    for (size_t i = 0; i < pool_elems; i++) {
        if (p1[i] == 0xFFFF) { /* not written by the RoPE kernel: not by the epilogue either */
            ck_assert_msg(p2[i] == 0xFFFF, "%s: pool[%zu] written", name, i);
            continue;
        }
        written++;
        float a = rl_fp16_to_fp32(p1[i]), b = rl_fp16_to_fp32(p2[i]);
        ck_assert_msg(fabsf(a - b) <= 1e-3f * fmaxf(1.0f, fabsf(a)), "%s: pool[%zu] %g against %g", name, i, b, a);
    }
    ck_assert_msg(written == (row < 0 ? 0 : (size_t)2 * kvd), "%s: %zu pool values written", name, written);
    cudaFree(dx), cudaFree(dg), cudaFree(dpos), cudaFree(drow), cudaFree(dbt), cudaFree(dpool1), cudaFree(dpool2);
    cudaFree(dqkv), cudaFree(dq1), cudaFree(dq2), cudaFree(dfreq);
    rl_cu_mat_free(&whole);
    free(raw), free(row_f), free(x), free(g), free(q1), free(q2), free(p1), free(p2), free(c.bt);
}

/* RoPE and the KV write in the Q|K|V product: fused and split parts, partial
 * rotation, the file's own frequencies, a token without a place, and what the
 * epilogue refuses (an int8 pool, NeoX pairs, a part not at a multiple of 8). */
START_TEST(mvb_rope_writes_what_the_rope_kernel_writes)
{
    uint64_t s = tcu_seed("mvb rope refusals");
    pool_case c;
    make_case(&c, &s, 64, false);
    rl_cu_mat m;
    float *w = malloc((size_t)768 * 512 * sizeof(float));
    tcu_make_weight(RL_TYPE_Q4_0, 768, 512, &s, &m, w);
    if (!rl_cu_mvb_ok(&m, RL_CU_MV_STORE)) {
        printf("no sm_90 device: skipping rl_cu_mvb_rope_kv\n");
        rl_cu_mat_free(&m);
        free(w), free(c.bt);
        return;
    }
    int32_t *d = tcu_dev(64);
    rl_cu_kv kv = dev_kv(&c, d, d, false);
    rl_cu_mvb_rope e = {&c.r, &kv, LAYER, d, d, (float *)d, 0};
    ck_assert(rl_cu_mvb_rope_ok(&m, &e));
    e.row0 = 4;
    ck_assert(!rl_cu_mvb_rope_ok(&m, &e)); /* pairs would straddle tiles */
    e.row0 = 8;
    ck_assert(!rl_cu_mvb_rope_ok(&m, &e)); /* past the q|k|v row */
    e.row0 = 0;
    kv.q8 = true;
    ck_assert(!rl_cu_mvb_rope_ok(&m, &e));
    kv.q8 = false;
    c.r.neox = true;
    ck_assert(!rl_cu_mvb_rope_ok(&m, &e));
    ck_assert_int_eq(rl_cu_mvb_rope_kv(&m, (float *)d, NULL, 0.0f, &e, 0), -ENOTSUP);
    rl_cu_mat_free(&m);
    cudaFree(d);
    free(w), free(c.bt);
    check_rope(RL_TYPE_Q4_0, 64, 64, false, 1, 37, 1);
    check_rope(RL_TYPE_Q4_0, 128, 128, false, 3, 299, 2);
    check_rope(RL_TYPE_Q4_K, 64, 32, true, 3, 5, 0);
    check_rope(RL_TYPE_F16, 64, 64, false, 1, 16, -1);
    check_rope(RL_TYPE_Q8_0, 80, 64, false, 3, 100, 1); /* a head size that is not a power of two */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cuda_mvb");
    TCase *tc = tcase_create("mvb");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, mvb_streams_products_of_each_type_in_every_mode);
    tcase_add_test(tc, mvb_rope_writes_what_the_rope_kernel_writes);
    suite_add_tcase(s, tc);
    return tcu_main(s);
}
