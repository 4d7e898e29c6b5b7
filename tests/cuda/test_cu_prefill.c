/* test_cu_prefill.c - the prefill kernels against float64 CPU references on
 * fresh random inputs with poisoned outputs: tiled causal flash attention
 * (paged KV with shuffled block tables, and the per-slot cache), staged
 * GEMMs and the fast fp16 dequantization, fp16-output RMSNorm and SwiGLU.
 * Exits 77 ("no CUDA device: skipping") without a GPU. */
#include <errno.h>
#include <time.h>

#include "tcu_mat.h"

static float h2f(uint16_t h)
{
    return rl_fp16_to_fp32(h);
}

/* Head sizes 64 and 128 run on tensor cores (fp16 Q and P: ~1e-3) unless
 * RL_CU_ATTN_TC=0; the others in fp32. */
static bool tc_path(int hd)
{
    const char *e = getenv("RL_CU_ATTN_TC");
    return (hd == 64 || hd == 128) && !(e && e[0] == '0');
}

typedef struct pf_case {
    int n_head, n_head_kv, hd, pos0, n_q;
    bool bad_block; /* one table entry holds an out-of-range id: its positions are skipped */
    bool quant;     /* out->q set: check the int8 copy too */
} pf_case;

/* Row of (block b, layer l, which, kv head h, slot s) in the pool, in halves. */
static size_t pool_off(const rl_cu_kv *kv, int32_t b, uint32_t l, int which, int h, int s)
{
    return (((((size_t)b * kv->n_layer + l) * 2 + which) * kv->n_head_kv + h) * RL_CU_KV_BLOCK + s) * kv->head_dim;
}

static void check_prefill_paged(pf_case c)
{
    char name[96];
    snprintf(name, sizeof name, "attn prefill h%d/%d hd%d pos0 %d n_q %d", c.n_head, c.n_head_kv, c.hd, c.pos0, c.n_q);
    uint64_t s = tcu_seed(name);
    const uint32_t n_layer = 2, layer = 1, rows = 3, row = 2, stride = 24;
    int last = c.pos0 + c.n_q - 1, n_used = last / RL_CU_KV_BLOCK + 1;
    ck_assert(n_used <= (int)stride);
    rl_cu_kv kv = {.n_blocks = 40, .n_layer = n_layer, .n_head_kv = (uint32_t)c.n_head_kv,
                   .head_dim = (uint32_t)c.hd, .bt_stride = stride};
    ck_assert(n_used <= (int)kv.n_blocks);
    /* Block table: a random permutation of the pool's ids for every row. */
    int32_t *bt = malloc(rows * stride * sizeof *bt);
    for (uint32_t r = 0; r < rows; r++) {
        int32_t perm[40];
        for (int i = 0; i < 40; i++)
            perm[i] = i;
        for (int i = 39; i > 0; i--) {
            int j = (int)(tcu_rng_next(&s) % (uint64_t)(i + 1)), t = perm[i];
            perm[i] = perm[j];
            perm[j] = t;
        }
        for (uint32_t i = 0; i < stride; i++)
            bt[r * stride + i] = perm[i];
    }
    int bad_idx = -1;
    if (c.bad_block) {
        bad_idx = (int)(tcu_rng_next(&s) % (uint64_t)n_used);
        bt[row * stride + bad_idx] = (int32_t)kv.n_blocks + 3;
    }
    size_t pool_n = (size_t)kv.n_blocks * n_layer * 2 * c.n_head_kv * RL_CU_KV_BLOCK * c.hd;
    uint16_t *pool = malloc(pool_n * 2);
    for (size_t i = 0; i < pool_n; i++)
        pool[i] = rl_fp32_to_fp16(tcu_unif(&s));
    int qd = c.n_head * c.hd;
    float *q = tcu_rand_vec(&s, (size_t)c.n_q * qd, 3.0f);
    kv.pool = tcu_up(pool, pool_n * 2);
    kv.bt = tcu_up(bt, rows * stride * sizeof *bt);
    float *dq = tcu_up(q, (size_t)c.n_q * qd * 4);
    rl_cu_act out = {.n = qd, .f = tcu_dev((size_t)c.n_q * qd * 4)};
    if (c.quant) {
        out.q = tcu_dev((size_t)c.n_q * qd);
        out.ds = tcu_dev((size_t)c.n_q * qd / 32 * 8);
    }
    rl_cu_rope r = {.n_head = c.n_head, .n_head_kv = c.n_head_kv, .head_dim = c.hd, .n_rot = c.hd, .freq_base = 1e4f};
    CU_OK(rl_cu_attn_prefill_paged(dq, c.n_q, c.pos0, row, &r, &kv, layer, &out, 0));
    float *o = malloc((size_t)c.n_q * qd * 4);
    tcu_down(o, out.f, (size_t)c.n_q * qd * 4);
    double *ref = calloc((size_t)c.n_q * qd, sizeof(double)), *sc = malloc((last + 1) * sizeof(double));
    for (int i = 0; i < c.n_q; i++)
        for (int h = 0; h < c.n_head; h++) {
            int kh = h / (c.n_head / c.n_head_kv);
            double mx = -INFINITY, sum = 0;
            for (int t = 0; t <= c.pos0 + i; t++) {
                int32_t b = bt[row * stride + t / RL_CU_KV_BLOCK];
                if (t / RL_CU_KV_BLOCK == bad_idx) {
                    sc[t] = -INFINITY;
                    continue;
                }
                const uint16_t *kr = pool + pool_off(&kv, b, layer, 0, kh, t % RL_CU_KV_BLOCK);
                double d = 0;
                for (int e = 0; e < c.hd; e++)
                    d += (double)q[(size_t)i * qd + h * c.hd + e] * h2f(kr[e]);
                sc[t] = d / sqrt(c.hd);
                mx = fmax(mx, sc[t]);
            }
            for (int t = 0; t <= c.pos0 + i; t++)
                sum += (sc[t] = sc[t] == -INFINITY ? 0.0 : exp(sc[t] - mx));
            for (int t = 0; t <= c.pos0 + i && sum > 0; t++) {
                if (sc[t] == 0.0)
                    continue;
                int32_t b = bt[row * stride + t / RL_CU_KV_BLOCK];
                const uint16_t *vr = pool + pool_off(&kv, b, layer, 1, kh, t % RL_CU_KV_BLOCK);
                for (int e = 0; e < c.hd; e++)
                    ref[(size_t)i * qd + h * c.hd + e] += sc[t] / sum * h2f(vr[e]);
            }
        }
    double err = tcu_rel_err(o, ref, (size_t)c.n_q * qd);
    double tol = tc_path(c.hd) ? 3e-3 : 1e-4;
    ck_assert_msg(err < tol, "%s: rel err %g >= %g", name, err, tol);
    if (c.quant) {
        tcu_check_q8_planes(&out, o, (int64_t)c.n_q * qd, false, name);
        cudaFree(out.q), cudaFree(out.ds);
    }
    cudaFree(kv.pool), cudaFree((void *)kv.bt), cudaFree(dq), cudaFree(out.f);
    free(bt), free(pool), free(q), free(o), free(ref), free(sc);
}

START_TEST(attn_prefill_paged_matches_cpu_gqa_and_shuffled_blocks)
{
    static const pf_case cases[] = {
        {8, 2, 128, 0, 77, false, false},  /* whole prompt, GQA 4 */
        {4, 4, 64, 45, 33, false, true},   /* continuation chunk, MHA, int8 copy */
        {6, 1, 40, 130, 5, false, false},  /* generic head size, one KV head */
        {4, 2, 128, 17, 64, true, false},  /* a bad block id is skipped */
        {2, 2, 256, 3, 40, false, true},   /* largest head size */
        {8, 4, 64, 200, 1, false, false},  /* a single query */
    };
    check_prefill_paged(cases[_i]);
}
END_TEST

START_TEST(attn_prefill_slot_cache_matches_paged)
{
    /* The per-slot layout gives what the paged one gives on the same values. */
    uint64_t s = tcu_seed("attn prefill slot");
    rl_cu_rope r = {.n_head = 8, .n_head_kv = 2, .head_dim = 64, .n_rot = 64, .freq_base = 1e4f};
    int pos0 = 20, n_q = 50, hd = 64, kvd = 2 * hd, qd = 8 * hd, last = pos0 + n_q - 1;
    int64_t n_ctx = 96, slot = 1;
    size_t ce = 2 * (size_t)n_ctx * kvd;
    uint16_t *k = malloc(ce * 2), *v = malloc(ce * 2);
    for (size_t i = 0; i < ce; i++) {
        k[i] = rl_fp32_to_fp16(tcu_unif(&s));
        v[i] = rl_fp32_to_fp16(tcu_unif(&s));
    }
    /* The same positions in a paged pool (identity table, one layer). */
    rl_cu_kv kv = {.n_blocks = 8, .n_layer = 1, .n_head_kv = 2, .head_dim = (uint32_t)hd, .bt_stride = 8};
    size_t pn = (size_t)kv.n_blocks * 2 * 2 * RL_CU_KV_BLOCK * hd;
    uint16_t *pool = calloc(pn, 2);
    int32_t bt[8];
    for (int i = 0; i < 8; i++)
        bt[i] = 7 - i;
    for (int p = 0; p <= last; p++)
        for (int h = 0; h < 2; h++)
            for (int e = 0; e < hd; e++) {
                size_t src = ((size_t)slot * n_ctx + p) * kvd + h * hd + e;
                pool[pool_off(&kv, bt[p / 16], 0, 0, h, p % 16) + e] = k[src];
                pool[pool_off(&kv, bt[p / 16], 0, 1, h, p % 16) + e] = v[src];
            }
    float *q = tcu_rand_vec(&s, (size_t)n_q * qd, 3.0f);
    void *dk = tcu_up(k, ce * 2), *dv = tcu_up(v, ce * 2);
    kv.pool = tcu_up(pool, pn * 2);
    kv.bt = tcu_up(bt, sizeof bt);
    float *dq = tcu_up(q, (size_t)n_q * qd * 4);
    rl_cu_act o1 = {.n = qd, .f = tcu_dev((size_t)n_q * qd * 4)}, o2 = {.n = qd, .f = tcu_dev((size_t)n_q * qd * 4)};
    CU_OK(rl_cu_attn_prefill(dq, n_q, pos0, (int32_t)slot, &r, dk, dv, n_ctx, &o1, 0));
    CU_OK(rl_cu_attn_prefill_paged(dq, n_q, pos0, 0, &r, &kv, 0, &o2, 0));
    float *a = malloc((size_t)n_q * qd * 4), *b = malloc((size_t)n_q * qd * 4);
    tcu_down(a, o1.f, (size_t)n_q * qd * 4);
    tcu_down(b, o2.f, (size_t)n_q * qd * 4);
    for (size_t i = 0; i < (size_t)n_q * qd; i++)
        ck_assert_msg(isfinite(a[i]) && a[i] == b[i], "element %zu: %g vs %g", i, a[i], b[i]);
    /* Bad arguments are refused, not launched. */
    ck_assert_int_eq(rl_cu_attn_prefill(dq, n_q, (int32_t)(n_ctx - 10), (int32_t)slot, &r, dk, dv, n_ctx, &o1, 0),
                     -EINVAL);
    kv.bt_stride = 4; /* positions past the table */
    ck_assert_int_eq(rl_cu_attn_prefill_paged(dq, n_q, pos0, 0, &r, &kv, 0, &o2, 0), -EINVAL);
    cudaFree(dk), cudaFree(dv), cudaFree(kv.pool), cudaFree((void *)kv.bt), cudaFree(dq), cudaFree(o1.f),
        cudaFree(o2.f);
    free(k), free(v), free(pool), free(q), free(a), free(b);
}
END_TEST

static const rl_type gemm_types[] = {RL_TYPE_Q4_0, RL_TYPE_Q8_0, RL_TYPE_Q4_K, RL_TYPE_F16};

START_TEST(gemm_to_f16_equals_cpu_dequantization)
{
    rl_type t = gemm_types[_i];
    uint64_t s = tcu_seed("gemm_to_f16");
    int64_t rows = 37, cols = 512;
    float *w = malloc(rows * cols * 4);
    rl_cu_mat m;
    tcu_make_weight(t, rows, cols, &s, &m, w);
    uint16_t *dh = tcu_dev(rows * cols * 2), *h = malloc(rows * cols * 2);
    CU_OK(rl_cu_gemm_to_f16(&m, dh, 0));
    tcu_down(h, dh, rows * cols * 2);
    bool exact = t == RL_TYPE_Q4_0 || t == RL_TYPE_Q8_0 || t == RL_TYPE_F16; /* one rounding of an exact product */
    for (int64_t i = 0; i < rows * cols; i++)
        ck_assert_msg(exact ? h[i] == rl_fp32_to_fp16(w[i]) : fabsf(h2f(h[i]) - w[i]) <= 1e-3f * fabsf(w[i]) + 1e-7f, "%s element %lld: %g vs %g", rl_type_get(t)->name, (long long)i,
                      h2f(h[i]), w[i]);
    rl_cu_mat_free(&m);
    cudaFree(dh);
    free(w), free(h);
}
END_TEST

START_TEST(gemm_staged_runs_a_chain_of_weights_in_order)
{
    /* Five GEMMs through two staging buffers, staged two ahead as prefill does;
     * each result must match its own weight. */
    uint64_t s = tcu_seed("gemm staged");
    const int NW = 5, n = 29;
    const int64_t rows[5] = {96, 64, 160, 32, 96}, cols = 256;
    rl_cu_mat m[5];
    float *w[5];
    for (int i = 0; i < NW; i++) {
        w[i] = malloc(rows[i] * cols * 4);
        tcu_make_weight(i % 2 ? RL_TYPE_Q8_0 : RL_TYPE_Q4_0, rows[i], cols, &s, &m[i], w[i]);
    }
    float *x = tcu_rand_vec(&s, (size_t)n * cols, 1.0f);
    float *dx = tcu_up(x, (size_t)n * cols * 4);
    void *dxh = tcu_dev((size_t)n * cols * 2);
    float *dy[5];
    for (int i = 0; i < NW; i++)
        dy[i] = tcu_dev((size_t)n * rows[i] * 4);
    rl_cu_blas *bl;
    cudaStream_t st;
    ck_assert(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking) == cudaSuccess);
    CU_OK(rl_cu_blas_create(&bl, st));
    CU_OK(rl_cu_gemm_reserve(bl, 160 * cols, 2));
    CU_OK(rl_cu_f32_to_f16(dx, dxh, (int64_t)n * cols, st));
    CU_OK(rl_cu_gemm_stage(bl, &m[0]));
    CU_OK(rl_cu_gemm_stage(bl, &m[1]));
    ck_assert_int_eq(rl_cu_gemm_stage(bl, &m[2]), -EBUSY);      /* both buffers taken */
    ck_assert_int_eq(rl_cu_gemm_staged(bl, &m[1], dxh, n, dy[1], false), -EINVAL); /* out of order */
    for (int i = 0; i < NW; i++) {
        CU_OK(rl_cu_gemm_staged(bl, &m[i], dxh, n, dy[i], false));
        if (i + 2 < NW)
            CU_OK(rl_cu_gemm_stage(bl, &m[i + 2]));
    }
    ck_assert(cudaStreamSynchronize(st) == cudaSuccess);
    for (int i = 0; i < NW; i++) {
        float *y = malloc((size_t)n * rows[i] * 4);
        double *ref = malloc((size_t)n * rows[i] * sizeof(double));
        tcu_down(y, dy[i], (size_t)n * rows[i] * 4);
        for (int t = 0; t < n; t++)
            for (int64_t o = 0; o < rows[i]; o++) {
                double acc = 0;
                for (int64_t c = 0; c < cols; c++)
                    acc += (double)w[i][o * cols + c] * x[(size_t)t * cols + c];
                ref[(size_t)t * rows[i] + o] = acc;
            }
        double err = tcu_rel_err(y, ref, (size_t)n * rows[i]);
        ck_assert_msg(err < 5e-3, "staged gemm %d rel err %g", i, err);
        free(y), free(ref);
    }
    rl_cu_blas_destroy(bl);
    cudaStreamDestroy(st);
    for (int i = 0; i < NW; i++) {
        rl_cu_mat_free(&m[i]);
        cudaFree(dy[i]);
        free(w[i]);
    }
    cudaFree(dx), cudaFree(dxh);
    free(x);
}
END_TEST

START_TEST(rmsnorm_f16_and_swiglu_f16_match_cpu)
{
    uint64_t s = tcu_seed("norm/swiglu f16");
    const int64_t sizes[] = {4096, 172};
    int64_t n = sizes[_i];
    int batch = 5;
    float *x = tcu_rand_vec(&s, n * batch * 2, 3.0f), *w = tcu_rand_vec(&s, n, 1.0f);
    float *dx = tcu_up(x, n * batch * 2 * 4), *dw = tcu_up(w, n * 4);
    uint16_t *dy = tcu_dev(n * batch * 2), *y = malloc(n * batch * 2);
    double *ref = malloc(n * batch * sizeof(double));
    float *yf = malloc(n * batch * 4);
    CU_OK(rl_cu_rmsnorm_f16(dx, dw, 1e-5f, n, batch, dy, 0));
    tcu_down(y, dy, n * batch * 2);
    tcu_ref_rmsnorm(x, w, n, batch, ref, NULL);
    for (int64_t i = 0; i < n * batch; i++)
        yf[i] = h2f(y[i]);
    double err = tcu_rel_err(yf, ref, n * batch);
    ck_assert_msg(err < 1e-3, "rmsnorm_f16 rel err %g", err); /* fp16 rounding: ~3e-4 */
    /* SwiGLU: x holds batch rows of [g (n) | u (n)]. */
    CU_OK(rl_cu_swiglu_f16(dx, n, batch, dy, 0));
    tcu_down(y, dy, n * batch * 2);
    for (int b = 0; b < batch; b++)
        for (int64_t i = 0; i < n; i++) {
            double g = x[b * 2 * n + i], u = x[b * 2 * n + n + i];
            ref[b * n + i] = g / (1.0 + exp(-g)) * u;
        }
    for (int64_t i = 0; i < n * batch; i++)
        yf[i] = h2f(y[i]);
    err = tcu_rel_err(yf, ref, n * batch);
    ck_assert_msg(err < 1e-3, "swiglu_f16 rel err %g", err);
    cudaFree(dx), cudaFree(dw), cudaFree(dy);
    free(x), free(w), free(y), free(ref), free(yf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cuda_prefill");
    TCase *tc = tcase_create("prefill");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, attn_prefill_paged_matches_cpu_gqa_and_shuffled_blocks, 0, 6);
    tcase_add_test(tc, attn_prefill_slot_cache_matches_paged);
    tcase_add_loop_test(tc, gemm_to_f16_equals_cpu_dequantization, 0, 4);
    tcase_add_test(tc, gemm_staged_runs_a_chain_of_weights_in_order);
    tcase_add_loop_test(tc, rmsnorm_f16_and_swiglu_f16_match_cpu, 0, 2);
    suite_add_tcase(s, tc);
    return tcu_main(s);
}
