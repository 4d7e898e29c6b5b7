/* test_cu_mvc.c - rl_cu_mvc, a chain of one-sequence products in one launch,
 * against the same products run one by one on rl_cu_mvb: a layer's gate/up
 * (normed), its down product into the residual and the next Q|K|V (normed
 * again, from the residual the chain just wrote), on fresh random inputs:
 * the same bits. Exits 77 without a GPU; skips with a message without sm_90. */
#include <errno.h>

#include "tcu_mat.h"

enum { N_SEG = 3 };

/* The three outputs (GLU output, residual, Q|K|V) after the chain or after
 * rl_cu_mvb one by one, from the same inputs. */
typedef struct {
    float *ffn, *x, *qkv;
} outs;

static void run(rl_cu_mvc_seg *seg, bool chain, unsigned *dsync, const float *x0, int64_t e, int64_t f, int64_t q,
                outs *o)
{
    CU_OK(cudaMemcpy((void *)seg[1].y, x0, e * sizeof(float), cudaMemcpyHostToDevice) == cudaSuccess ? 0 : -1);
    CU_OK(cudaMemset(seg[0].y, 0, f * sizeof(float)) == cudaSuccess ? 0 : -1);
    CU_OK(cudaMemset(seg[2].y, 0, q * sizeof(float)) == cudaSuccess ? 0 : -1);
    if (chain)
        CU_OK(rl_cu_mvc(seg, N_SEG, 1e-5f, dsync, 0));
    else
        for (int k = 0; k < N_SEG; k++)
            CU_OK(rl_cu_mvb(&seg[k].m, seg[k].x, seg[k].g, 1e-5f, seg[k].mode, seg[k].y, 0));
    tcu_down(o->ffn, seg[0].y, f * sizeof(float));
    tcu_down(o->x, seg[1].y, e * sizeof(float));
    tcu_down(o->qkv, seg[2].y, q * sizeof(float));
}

/* e wide, f the feed-forward size, q the Q|K|V rows, weights of type t. */
static void check_chain(rl_type t, int64_t e, int64_t f, int64_t q)
{
    char name[96];
    snprintf(name, sizeof name, "mvc %s e%lld f%lld q%lld", rl_type_get(t)->name, (long long)e, (long long)f,
             (long long)q);
    uint64_t s = tcu_seed(name);
    float *w = malloc((size_t)(2 * f > q ? 2 * f : q) * (e > f ? e : f) * sizeof(float));
    rl_cu_mat gu, down, qkv;
    tcu_make_weight(t, 2 * f, e, &s, &gu, w);
    tcu_make_weight(t, e, f, &s, &down, w);
    tcu_make_weight(t, q, e, &s, &qkv, w);
    float *x0 = tcu_rand_vec(&s, e, 2.0f), *g1 = tcu_rand_vec(&s, e, 1.0f), *g2 = tcu_rand_vec(&s, e, 1.0f);
    float *dx = tcu_dev(e * sizeof(float)), *dffn = tcu_dev(f * sizeof(float)), *dq = tcu_dev(q * sizeof(float));
    float *dg1 = tcu_up(g1, e * sizeof(float)), *dg2 = tcu_up(g2, e * sizeof(float));
    unsigned *dsync = tcu_dev((RL_CU_MVC_MAX + 1) * sizeof(unsigned));
    CU_OK(cudaMemset(dsync, 0, (RL_CU_MVC_MAX + 1) * sizeof(unsigned)) == cudaSuccess ? 0 : -1);
    rl_cu_mvc_seg seg[N_SEG] = {
        {gu, dx, dg1, dffn, RL_CU_MV_GLU},
        {down, dffn, NULL, dx, RL_CU_MV_ADD},
        {qkv, dx, dg2, dq, RL_CU_MV_STORE},
    };
    ck_assert_msg(rl_cu_mvc_ok(seg, N_SEG), "%s: refused", name);
    outs one = {malloc(f * 4), malloc(e * 4), malloc(q * 4)}, ch = {malloc(f * 4), malloc(e * 4), malloc(q * 4)};
    run(seg, false, dsync, x0, e, f, q, &one);
    /* twice: each launch must leave its counters as it found them */
    for (int r = 0; r < 2; r++) {
        run(seg, true, dsync, x0, e, f, q, &ch);
        ck_assert_msg(memcmp(one.ffn, ch.ffn, f * 4) == 0, "%s (run %d): GLU output differs", name, r);
        ck_assert_msg(memcmp(one.x, ch.x, e * 4) == 0, "%s (run %d): residual differs", name, r);
        ck_assert_msg(memcmp(one.qkv, ch.qkv, q * 4) == 0, "%s (run %d): Q|K|V differs", name, r);
        unsigned sync[RL_CU_MVC_MAX + 1];
        tcu_down(sync, dsync, sizeof sync);
        for (int k = 0; k <= RL_CU_MVC_MAX; k++)
            ck_assert_msg(sync[k] == 0, "%s: counter %d left at %u", name, k, sync[k]);
    }
    /* not all NaN or zero: the chain computed something */
    bool any = false;
    for (int64_t i = 0; i < q; i++)
        any |= ch.qkv[i] != 0.0f && ch.qkv[i] == ch.qkv[i];
    ck_assert_msg(any, "%s: Q|K|V all zero or NaN", name);
    cudaFree(dx), cudaFree(dffn), cudaFree(dq), cudaFree(dg1), cudaFree(dg2), cudaFree(dsync);
    rl_cu_mat_free(&gu), rl_cu_mat_free(&down), rl_cu_mat_free(&qkv);
    free(w), free(x0), free(g1), free(g2);
    free(one.ffn), free(one.x), free(one.qkv), free(ch.ffn), free(ch.x), free(ch.qkv);
}

/* Each type rl_cu_mvc takes: more tiles than SMs (the ring wraps across the
 * products), a down product of one chunk and of two (rows of 2,816 and
 * 4,352 columns), and what it refuses. */
START_TEST(mvc_chain_equals_products_one_by_one)
{
    uint64_t s = tcu_seed("mvc refusals");
    rl_cu_mat a, b;
    float *w = malloc(64 * 512 * sizeof(float));
    tcu_make_weight(RL_TYPE_Q4_0, 64, 512, &s, &a, w);
    if (!rl_cu_mvb_ok(&a, RL_CU_MV_STORE)) {
        printf("no sm_90 device: skipping rl_cu_mvc\n");
        rl_cu_mat_free(&a);
        free(w);
        return;
    }
    const rl_type types[] = {RL_TYPE_Q4_0, RL_TYPE_Q8_0, RL_TYPE_Q4_K, RL_TYPE_Q5_K, RL_TYPE_Q6_K};
    for (int i = 0; i < 5; i++) {
        check_chain(types[i], 1024, 2816, 1536);
        check_chain(types[i], 2048, 4352, 3072);
    }
    /* one weight type per chain; F16 not taken; misaligned x */
    tcu_make_weight(RL_TYPE_Q8_0, 64, 512, &s, &b, w);
    float *d = tcu_dev(1024 * sizeof(float));
    rl_cu_mvc_seg seg[2] = {{a, d, NULL, d + 512, RL_CU_MV_STORE}, {b, d, NULL, d + 512, RL_CU_MV_STORE}};
    ck_assert(rl_cu_mvc_ok(seg, 1));
    ck_assert(!rl_cu_mvc_ok(seg, 2));
    ck_assert(!rl_cu_mvc_ok(seg, 0));
    ck_assert_int_eq(rl_cu_mvc(seg, 2, 1e-5f, (unsigned *)d, 0), -ENOTSUP);
    seg[1].m = a;
    ck_assert(rl_cu_mvc_ok(seg, 2));
    seg[1].x = d + 1;
    ck_assert(!rl_cu_mvc_ok(seg, 2));
    ck_assert_int_eq(rl_cu_mvc(seg, 1, 1e-5f, NULL, 0), -ENOTSUP); /* no counters */
    rl_cu_mat_free(&b);
    tcu_make_weight(RL_TYPE_F16, 64, 512, &s, &b, w);
    seg[0].m = b;
    ck_assert(!rl_cu_mvc_ok(seg, 1));
    rl_cu_mat_free(&a), rl_cu_mat_free(&b);
    cudaFree(d);
    free(w);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cuda_mvc");
    TCase *tc = tcase_create("mvc");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, mvc_chain_equals_products_one_by_one);
    suite_add_tcase(s, tc);
    return tcu_main(s);
}
