/* test_cu_attno.c - the O product fused into one query's attention
 * (rl_cu_attn_o_paged) against the attention alone (rl_cu_attn_paged: the
 * same output bits and int8 planes) and a float64 product of W_o with the
 * int8 output it produced: short and long contexts, any split, grouped heads,
 * head sizes 64 and 128, every W_o type it takes, a query without a row,
 * launches back to back and in a replayed graph (its counters left zero),
 * and what it refuses. Exits 77 without a GPU; skips without sm_90. */
#include <errno.h>
#include <time.h>

#include "tcu_kv.h"
#include "tcu_mat.h"

/* The fp16 pool of case c filled with random K and V rows (and foreign data). */
static void *random_pool(const pool_case *c, uint64_t *s)
{
    size_t n = rl_cu_kv_block_bytes(NL, (uint32_t)c->r.n_head_kv, (uint32_t)c->r.head_dim, false) / 2 * c->n_blocks;
    uint16_t *pool = malloc(n * 2);
    for (size_t i = 0; i < n; i++)
        pool[i] = rl_fp32_to_fp16(tcu_unif(s));
    void *d = tcu_up(pool, n * 2);
    free(pool);
    return d;
}

/* The int8 plane's values q * d of a (n values). */
static void q8_values(const rl_cu_act *a, int64_t n, float *out)
{
    int8_t *q = malloc(n);
    float *ds = malloc(n / 32 * 2 * sizeof(float));
    tcu_down(q, a->q, n);
    tcu_down(ds, a->ds, n / 32 * 2 * sizeof(float));
    for (int64_t i = 0; i < n; i++)
        out[i] = q[i] * ds[i / 32 * 2];
    free(q), free(ds);
}

static void counters_zero(void *scr)
{
    unsigned c[2];
    tcu_down(c, (unsigned *)scr + 65536 - 2, sizeof c);
    ck_assert_msg(c[0] == 0 && c[1] == 0, "the fused launch left its counters at %u, %u", c[0], c[1]);
}

static void check_attno(rl_type t, int head_dim, int split)
{
    char name[96];
    snprintf(name, sizeof name, "attn+O %s hd%d split%d", rl_type_get(t)->name, head_dim, split);
    uint64_t s = tcu_seed(name);
    pool_case c;
    make_case(&c, &s, head_dim, false);
    int qd = c.r.n_head * head_dim;
    int64_t rows = qd + 16 * 3; /* outputs need not equal the width */
    float *w = malloc(rows * qd * sizeof(float));
    rl_cu_mat m;
    tcu_make_weight(t, rows, qd, &s, &m, w);
    void *dpool = random_pool(&c, &s);
    int32_t *dbt = tcu_up(c.bt, sizeof(int32_t) * c.n_seq * c.stride);
    rl_cu_kv kv = dev_kv(&c, dpool, dbt, false);
    size_t scr_bytes = rl_cu_attn_scratch_size(1, c.r.n_head, head_dim, (int64_t)c.stride * RL_CU_KV_BLOCK);
    void *scr = tcu_dev(scr_bytes);
    ck_assert(cudaMemset(scr, 0, scr_bytes) == cudaSuccess);
    rl_cu_act o1 = make_act(qd, 1, NULL), o2 = make_act(qd, 1, NULL);
    ck_assert(rl_cu_attn_o_ok(&m, &c.r, &o2));
    enum { NQ = 7 };
    /* one chunk, its edge, two chunks, many (split across blocks), no row */
    int32_t pos[NQ] = {0, 63, 64, 137, 299, 200, 5}, row[NQ] = {0, 1, 2, 0, 1, 2, -1};
    float *y0 = tcu_rand_vec(&s, rows, 1.0f), *y = malloc(rows * 4), *y2 = malloc(rows * 4);
    float *a1 = malloc(qd * 4), *a2 = malloc(qd * 4), *xq = malloc(qd * 4);
    double *ref = malloc(rows * sizeof(double));
    for (int k = 0; k < NQ; k++) {
        float *qv = tcu_rand_vec(&s, qd, 3.0f);
        float *dq = tcu_up(qv, qd * 4), *dy = tcu_up(y0, rows * 4);
        int32_t *dpos = tcu_up(&pos[k], 4), *drow = tcu_up(&row[k], 4);
        CU_OK(rl_cu_attn_paged(dq, dpos, drow, 1, &c.r, &kv, LAYER, split, scr, &o1, 0));
        CU_OK(rl_cu_attn_o_paged(dq, dpos, drow, &c.r, &kv, LAYER, split, scr, &o2, &m, dy, 0));
        tcu_down(a1, o1.f, qd * 4);
        tcu_down(a2, o2.f, qd * 4);
        ck_assert_msg(memcmp(a1, a2, qd * 4) == 0, "%s: position %d: the attention differs", name, pos[k]);
        float *v1 = malloc(qd * 4);
        q8_values(&o1, qd, v1);
        q8_values(&o2, qd, xq);
        ck_assert_msg(memcmp(v1, xq, qd * 4) == 0, "%s: position %d: the int8 output differs", name, pos[k]);
        free(v1);
        if (row[k] < 0)
            for (int i = 0; i < qd; i++)
                ck_assert_msg(a2[i] == 0.0f, "%s: a query without a row gets zeros", name);
        tcu_ref_product(w, xq, y0, rows, qd, 1, RL_CU_MV_ADD, ref);
        tcu_down(y, dy, rows * 4);
        double err = tcu_rel_err(y, ref, rows);
        ck_assert_msg(err < 1e-5, "%s: position %d: rel err %g", name, pos[k], err);
        counters_zero(scr);
        /* again on the same y: y0 + 2 W x, the same product bits */
        CU_OK(rl_cu_attn_o_paged(dq, dpos, drow, &c.r, &kv, LAYER, split, scr, &o2, &m, dy, 0));
        tcu_down(y2, dy, rows * 4);
        for (int64_t i = 0; i < rows; i++)
            ck_assert_msg(fabsf((y2[i] - y[i]) - (y[i] - y0[i])) <= 1e-5f * (1.0f + fabsf(y2[i])),
                          "%s: a second launch added %g, the first %g", name, y2[i] - y[i], y[i] - y0[i]);
        counters_zero(scr);
        cudaFree(dq), cudaFree(dy), cudaFree(dpos), cudaFree(drow);
        free(qv);
    }
    cudaFree(dpool), cudaFree(dbt), cudaFree(scr);
    free_act(&o1), free_act(&o2);
    rl_cu_mat_free(&m);
    free(w), free(y0), free(y), free(y2), free(a1), free(a2), free(xq), free(ref), free(c.bt);
}

static bool have_sm90(void)
{
    int dev = 0, major = 0;
    return cudaGetDevice(&dev) == cudaSuccess &&
           cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess && major >= 9;
}

START_TEST(fused_o_matches_the_attention_and_a_float64_product)
{
    if (!have_sm90()) {
        printf("no sm_90 device: skipping the fused O product\n");
        return;
    }
    static const rl_type types[] = {RL_TYPE_Q4_0, RL_TYPE_Q8_0, RL_TYPE_Q4_K, RL_TYPE_Q5_K, RL_TYPE_Q6_K};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        check_attno(types[i], 128, rl_cu_attn_splits(1, 8));
    check_attno(RL_TYPE_Q4_0, 64, rl_cu_attn_splits(1, 8));
    check_attno(RL_TYPE_Q4_0, 128, 1);
    check_attno(RL_TYPE_Q8_0, 64, 3);
}
END_TEST

/* Captured in a graph and replayed: each replay adds the same product. */
START_TEST(fused_o_replays_in_a_graph)
{
    if (!have_sm90()) {
        printf("no sm_90 device: skipping the fused O product\n");
        return;
    }
    uint64_t s = tcu_seed("attn+O graph");
    pool_case c;
    make_case(&c, &s, 128, false);
    int qd = c.r.n_head * 128;
    rl_cu_mat m;
    float *w = malloc((size_t)qd * qd * sizeof(float));
    tcu_make_weight(RL_TYPE_Q4_0, qd, qd, &s, &m, w);
    void *dpool = random_pool(&c, &s);
    int32_t *dbt = tcu_up(c.bt, sizeof(int32_t) * c.n_seq * c.stride);
    rl_cu_kv kv = dev_kv(&c, dpool, dbt, false);
    size_t scr_bytes = rl_cu_attn_scratch_size(1, c.r.n_head, 128, (int64_t)c.stride * RL_CU_KV_BLOCK);
    void *scr = tcu_dev(scr_bytes);
    ck_assert(cudaMemset(scr, 0, scr_bytes) == cudaSuccess);
    rl_cu_act o = make_act(qd, 1, NULL);
    int32_t pos = 250, row = 1;
    float *qv = tcu_rand_vec(&s, qd, 3.0f);
    float *dq = tcu_up(qv, qd * 4), *dy = tcu_dev(qd * 4);
    int32_t *dpos = tcu_up(&pos, 4), *drow = tcu_up(&row, 4);
    ck_assert(cudaMemset(dy, 0, qd * 4) == cudaSuccess);
    cudaStream_t st;
    cudaGraph_t g;
    cudaGraphExec_t ge;
    ck_assert(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking) == cudaSuccess);
    ck_assert(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal) == cudaSuccess);
    int rc = rl_cu_attn_o_paged(dq, dpos, drow, &c.r, &kv, LAYER, rl_cu_attn_splits(1, 8), scr, &o, &m, dy, st);
    ck_assert_int_eq(cudaStreamEndCapture(st, &g), cudaSuccess);
    ck_assert_int_eq(rc, 0);
    ck_assert(cudaGraphInstantiate(&ge, g, 0) == cudaSuccess);
    float *y[3];
    for (int r = 0; r < 3; r++) {
        ck_assert(cudaGraphLaunch(ge, st) == cudaSuccess);
        ck_assert(cudaStreamSynchronize(st) == cudaSuccess);
        y[r] = malloc(qd * 4);
        tcu_down(y[r], dy, qd * 4);
    }
    double n1 = 0;
    for (int i = 0; i < qd; i++) {
        ck_assert(isfinite(y[2][i]));
        ck_assert_msg(fabsf(y[1][i] - 2 * y[0][i]) <= 1e-5f * (1 + fabsf(y[1][i])) &&
                          fabsf(y[2][i] - 3 * y[0][i]) <= 1e-5f * (1 + fabsf(y[2][i])),
                      "replays add different products at %d: %g %g %g", i, y[0][i], y[1][i], y[2][i]);
        n1 += fabs(y[0][i]);
    }
    ck_assert(n1 > 0);
    counters_zero(scr);
    cudaGraphExecDestroy(ge);
    cudaGraphDestroy(g);
    cudaStreamDestroy(st);
    cudaFree(dpool), cudaFree(dbt), cudaFree(scr), cudaFree(dq), cudaFree(dy), cudaFree(dpos), cudaFree(drow);
    free_act(&o);
    rl_cu_mat_free(&m);
    free(w), free(qv), free(y[0]), free(y[1]), free(y[2]), free(c.bt);
}
END_TEST

START_TEST(fused_o_refuses_what_it_does_not_serve)
{
    uint64_t s = tcu_seed("attn+O refusals");
    pool_case c;
    make_case(&c, &s, 128, false);
    int qd = c.r.n_head * 128;
    rl_cu_mat f16, q40;
    float *w = malloc((size_t)qd * qd * sizeof(float));
    tcu_make_weight(RL_TYPE_F16, qd, qd, &s, &f16, w);
    tcu_make_weight(RL_TYPE_Q4_0, qd, qd, &s, &q40, w);
    rl_cu_act o = make_act(qd, 1, NULL), of = {.f = o.f, .n = qd};
    ck_assert(!rl_cu_attn_o_ok(&f16, &c.r, &o));  /* float weights */
    ck_assert(!rl_cu_attn_o_ok(&q40, &c.r, &of)); /* no int8 output planes */
    rl_cu_rope r40 = c.r;
    r40.head_dim = 40; /* not the warp kernel's */
    ck_assert(!rl_cu_attn_o_ok(&q40, &r40, &o));
    int32_t *dbt = tcu_up(c.bt, sizeof(int32_t) * c.n_seq * c.stride);
    rl_cu_kv kv = dev_kv(&c, NULL, dbt, false);
    ck_assert_int_eq(rl_cu_attn_o_paged(NULL, NULL, NULL, &c.r, &kv, LAYER, 0, NULL, &o, &q40, o.f, 0), -EINVAL);
    cudaFree(dbt);
    free_act(&o);
    rl_cu_mat_free(&f16), rl_cu_mat_free(&q40);
    free(w), free(c.bt);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cuda_attno");
    TCase *tc = tcase_create("attno");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, fused_o_matches_the_attention_and_a_float64_product);
    tcase_add_test(tc, fused_o_replays_in_a_graph);
    tcase_add_test(tc, fused_o_refuses_what_it_does_not_serve);
    suite_add_tcase(s, tc);
    return tcu_main(s);
}
