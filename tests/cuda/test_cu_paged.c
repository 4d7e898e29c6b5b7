/* test_cu_paged.c - the paged KV cache kernels against the contiguous-slot
 * ones (themselves checked against float64 in test_cu_kernels): the same
 * logical cache scattered over shuffled pool blocks must give the same
 * attention, RoPE+KV writes must land in the right block rows and nowhere
 * else, a row of -1 writes nothing, and a block copy moves every layer.
 * Exits 77 without a GPU. */
#include <errno.h>
#include <time.h>

#include "tcu_kv.h"

static void check_paged_attention(int head_dim, int n_split_force)
{
    uint64_t s = tcu_seed("paged attention");
    pool_case c;
    make_case(&c, &s, head_dim, false);
    int hd = c.r.head_dim, kvd = c.r.n_head_kv * hd, qd = c.r.n_head * hd;
    size_t ce = (size_t)c.n_seq * c.n_ctx * kvd;
    size_t pool_elems = rl_cu_kv_block_bytes(NL, (uint32_t)c.r.n_head_kv, (uint32_t)hd, false) / 2 * c.n_blocks;
    uint16_t *k = malloc(ce * 2), *v = malloc(ce * 2), *pool = malloc(pool_elems * 2);
    for (size_t i = 0; i < pool_elems; i++)
        pool[i] = rl_fp32_to_fp16(tcu_unif(&s) * 8); /* foreign data everywhere else */
    for (int q = 0; q < c.n_seq; q++)
        for (int t = 0; t < c.n_ctx; t++)
            for (int h = 0; h < c.r.n_head_kv; h++) {
                int64_t blk = c.bt[q * c.stride + t / RL_CU_KV_BLOCK];
                for (int i = 0; i < hd; i++) {
                    size_t si = ((size_t)q * c.n_ctx + t) * kvd + h * hd + i;
                    k[si] = rl_fp32_to_fp16(tcu_unif(&s));
                    v[si] = rl_fp32_to_fp16(tcu_unif(&s));
                    pool[pool_off(&c, blk, 0, h, t) + i] = k[si];
                    pool[pool_off(&c, blk, 1, h, t) + i] = v[si];
                }
            }
    /* queries: several per sequence, as a prefill chunk and decodes would be */
    enum { NQ = 6 };
    int32_t pos[NQ] = {0, 15, 16, 299, 137, 138}, row[NQ] = {2, 0, 0, 1, 2, 2};
    float *qv = tcu_rand_vec(&s, (size_t)qd * NQ, 3.0f);
    float *dq = tcu_up(qv, (size_t)qd * NQ * 4);
    int32_t *dpos = tcu_up(pos, sizeof pos), *drow = tcu_up(row, sizeof row);
    int32_t *dbt = tcu_up(c.bt, sizeof(int32_t) * c.n_seq * c.stride);
    void *dk = tcu_up(k, ce * 2), *dv = tcu_up(v, ce * 2), *dpool = tcu_up(pool, pool_elems * 2);
    int n_split = n_split_force > 0 ? n_split_force : n_split_force < 0 ? 0 : rl_cu_attn_splits(NQ, c.r.n_head);
    size_t scr_bytes = rl_cu_attn_scratch_size(NQ, c.r.n_head, hd, c.n_ctx);
    void *scr = tcu_dev(scr_bytes);
    ck_assert(cudaMemset(scr, 0, scr_bytes) == cudaSuccess);
    rl_cu_act o1 = {.f = tcu_dev((size_t)qd * NQ * 4), .n = qd}, o2 = {.f = tcu_dev((size_t)qd * NQ * 4), .n = qd};
    rl_cu_kv kv = dev_kv(&c, dpool, dbt, false);
    CU_OK(rl_cu_attn_decode(dq, dk, dv, dpos, drow, NQ, &c.r, c.n_ctx, n_split, scr, &o1, 0));
    CU_OK(rl_cu_attn_paged(dq, dpos, drow, NQ, &c.r, &kv, LAYER, n_split, scr, &o2, 0));
    float *a = malloc((size_t)qd * NQ * 4), *b = malloc((size_t)qd * NQ * 4);
    tcu_down(a, o1.f, (size_t)qd * NQ * 4);
    tcu_down(b, o2.f, (size_t)qd * NQ * 4);
    for (int i = 0; i < qd * NQ; i++) {
        ck_assert_msg(isfinite(b[i]), "paged attention: NaN at %d", i);
        ck_assert_msg(fabsf(a[i] - b[i]) <= 1e-6f * (1.0f + fabsf(a[i])), "paged attention differs at %d: %g vs %g",
                      i, b[i], a[i]);
    }
    cudaFree(dq), cudaFree(dpos), cudaFree(drow), cudaFree(dbt), cudaFree(dk), cudaFree(dv), cudaFree(dpool);
    cudaFree(scr), cudaFree(o1.f), cudaFree(o2.f);
    free(k), free(v), free(pool), free(qv), free(a), free(b), free(c.bt);
}

START_TEST(paged_attention_equals_contiguous_over_shuffled_blocks)
{
    check_paged_attention(128, 0);
    check_paged_attention(64, 0);
    check_paged_attention(40, 0);
    check_paged_attention(128, 3);
    check_paged_attention(128, -1); /* the unsplit path prefill uses */
}
END_TEST

START_TEST(paged_rope_kv_writes_only_its_block_rows)
{
    uint64_t s = tcu_seed("paged rope");
    pool_case c;
    make_case(&c, &s, 64, false);
    int hd = c.r.head_dim, kvd = c.r.n_head_kv * hd, qd = c.r.n_head * hd, rowlen = qd + 2 * kvd;
    enum { NT = 4 };
    int32_t pos[NT] = {0, 17, 18, 299}, row[NT] = {1, 0, 0, -1}; /* the last one has no row: writes nothing */
    float *qkv = tcu_rand_vec(&s, (size_t)rowlen * NT, 2.0f);
    float *dqkv = tcu_up(qkv, (size_t)rowlen * NT * 4);
    int32_t *dpos = tcu_up(pos, sizeof pos), *drow = tcu_up(row, sizeof row);
    int32_t *dbt = tcu_up(c.bt, sizeof(int32_t) * c.n_seq * c.stride);
    /* the reference: the contiguous kernel, slot = row (row -1: no slot) */
    size_t ce = (size_t)c.n_seq * c.n_ctx * kvd;
    void *dk = tcu_dev(ce * 2), *dv = tcu_dev(ce * 2);
    float *dq1 = tcu_dev((size_t)qd * NT * 4), *dq2 = tcu_dev((size_t)qd * NT * 4);
    size_t pool_elems = rl_cu_kv_block_bytes(NL, (uint32_t)c.r.n_head_kv, (uint32_t)hd, false) / 2 * c.n_blocks;
    uint16_t *dpool = tcu_dev(pool_elems * 2); /* poisoned 0xFFFF */
    rl_cu_kv kv = dev_kv(&c, dpool, dbt, false);
    CU_OK(rl_cu_rope_kv(dqkv, NT, dpos, drow, &c.r, c.n_ctx, dq1, dk, dv, 0));
    CU_OK(rl_cu_rope_kv_paged(dqkv, NT, dpos, drow, &c.r, &kv, LAYER, dq2, 0));
    uint16_t *k = malloc(ce * 2), *v = malloc(ce * 2), *pool = malloc(pool_elems * 2);
    float *q1 = malloc((size_t)qd * NT * 4), *q2 = malloc((size_t)qd * NT * 4);
    tcu_down(k, dk, ce * 2);
    tcu_down(v, dv, ce * 2);
    tcu_down(pool, dpool, pool_elems * 2);
    tcu_down(q1, dq1, (size_t)qd * NT * 4);
    tcu_down(q2, dq2, (size_t)qd * NT * 4);
    ck_assert(memcmp(q1, q2, (size_t)qd * NT * 4) == 0); /* q rotated alike, also for the row-less token */
    size_t written = 0;
    for (int t = 0; t < NT; t++) {
        if (row[t] < 0)
            continue;
        int64_t blk = c.bt[row[t] * c.stride + pos[t] / RL_CU_KV_BLOCK];
        for (int h = 0; h < c.r.n_head_kv; h++)
            for (int i = 0; i < hd; i++) {
                size_t si = ((size_t)row[t] * c.n_ctx + pos[t]) * kvd + h * hd + i;
                ck_assert_uint_eq(pool[pool_off(&c, blk, 0, h, pos[t]) + i], k[si]);
                ck_assert_uint_eq(pool[pool_off(&c, blk, 1, h, pos[t]) + i], v[si]);
                written += 2;
            }
    }
    size_t changed = 0;
    for (size_t i = 0; i < pool_elems; i++)
        changed += pool[i] != 0xFFFF;
    ck_assert_uint_le(changed, written); /* nothing outside those rows (a value may equal the poison) */
    ck_assert_uint_ge(changed, written - written / 100);
    cudaFree(dqkv), cudaFree(dpos), cudaFree(drow), cudaFree(dbt), cudaFree(dk), cudaFree(dv), cudaFree(dq1);
    cudaFree(dq2), cudaFree(dpool);
    free(qkv), free(k), free(v), free(pool), free(q1), free(q2), free(c.bt);
}
END_TEST

START_TEST(kv_block_copy_moves_every_layer)
{
    uint64_t s = tcu_seed("block copy");
    pool_case c;
    make_case(&c, &s, 64, false);
    size_t bb = rl_cu_kv_block_bytes(NL, (uint32_t)c.r.n_head_kv, (uint32_t)c.r.head_dim, false);
    uint8_t *h = malloc(bb * c.n_blocks);
    for (size_t i = 0; i < bb * c.n_blocks; i++)
        h[i] = (uint8_t)tcu_rng_next(&s);
    void *d = tcu_up(h, bb * c.n_blocks);
    rl_cu_kv kv = dev_kv(&c, d, NULL, false);
    CU_OK(rl_cu_kv_copy_block(&kv, 4, 9, 0));
    ck_assert_int_eq(rl_cu_kv_copy_block(&kv, c.n_blocks, 0, 0), -EINVAL);
    uint8_t *g = malloc(bb * c.n_blocks);
    tcu_down(g, d, bb * c.n_blocks);
    ck_assert(memcmp(g + 4 * bb, h + 9 * bb, bb) == 0);
    ck_assert(memcmp(g, h, 4 * bb) == 0);
    ck_assert(memcmp(g + 5 * bb, h + 5 * bb, (c.n_blocks - 5) * bb) == 0);
    cudaFree(d);
    free(h), free(g), free(c.bt);
}
END_TEST

/* The same query alone and inside a batch of others, with any split: the same
 * bits (a long context split across blocks, a short one in one block). */
START_TEST(split_attention_is_batch_and_split_invariant)
{
    uint64_t s = tcu_seed("attention invariance");
    pool_case c;
    make_case(&c, &s, 128, false);
    int hd = c.r.head_dim, qd = c.r.n_head * hd;
    size_t pool_elems = rl_cu_kv_block_bytes(NL, (uint32_t)c.r.n_head_kv, (uint32_t)hd, false) / 2 * c.n_blocks;
    uint16_t *pool = malloc(pool_elems * 2);
    for (size_t i = 0; i < pool_elems; i++)
        pool[i] = rl_fp32_to_fp16(tcu_unif(&s));
    enum { NQ = 6 };
    int32_t pos[NQ] = {280, 3, 129, 200, 64, 127}, row[NQ] = {1, 0, 2, 0, 2, 1};
    float *qv = tcu_rand_vec(&s, (size_t)qd * NQ, 3.0f);
    float *dq = tcu_up(qv, (size_t)qd * NQ * 4);
    int32_t *dpos = tcu_up(pos, sizeof pos), *drow = tcu_up(row, sizeof row);
    int32_t *dbt = tcu_up(c.bt, sizeof(int32_t) * c.n_seq * c.stride);
    void *dpool = tcu_up(pool, pool_elems * 2);
    rl_cu_kv kv = dev_kv(&c, dpool, dbt, false);
    size_t scr_bytes = rl_cu_attn_scratch_size(NQ, c.r.n_head, hd, (int64_t)c.stride * RL_CU_KV_BLOCK);
    void *scr = tcu_dev(scr_bytes);
    ck_assert(cudaMemset(scr, 0, scr_bytes) == cudaSuccess);
    rl_cu_act o = {.f = tcu_dev((size_t)qd * NQ * 4), .n = qd};
    float *solo = malloc((size_t)qd * NQ * 4), *all = malloc((size_t)qd * NQ * 4);
    /* each query alone (the single stream's launch: one chunk merged in one
     * block, more counted in); then alone in clusters of two blocks (two
     * chunks, positions 64 and 127, merged through shared memory), with the
     * single stream's split and with two blocks a head (those with 3-5
     * chunks count in); then all of them with any split */
    float *solo2 = malloc((size_t)qd * 4);
    for (int q = 0; q < NQ; q++) {
        CU_OK(rl_cu_attn_paged(dq + (size_t)q * qd, dpos + q, drow + q, 1, &c.r, &kv, LAYER,
                               rl_cu_attn_splits(1, c.r.n_head), scr, &o, 0));
        tcu_down(solo + (size_t)q * qd, o.f, (size_t)qd * 4);
    }
    rl_cu_attn_set_pair(1);
    for (int q = 0; q < NQ; q++)
        for (int sp = 0; sp < 2; sp++) {
            CU_OK(rl_cu_attn_paged(dq + (size_t)q * qd, dpos + q, drow + q, 1, &c.r, &kv, LAYER,
                                   sp ? 2 : rl_cu_attn_splits(1, c.r.n_head), scr, &o, 0));
            tcu_down(solo2, o.f, (size_t)qd * 4);
            ck_assert_msg(memcmp(solo + (size_t)q * qd, solo2, (size_t)qd * 4) == 0,
                          "query %d (position %d) alone differs in clusters of two blocks (%s)", q, pos[q],
                          sp ? "two blocks a head" : "the single stream's split");
        }
    rl_cu_attn_set_pair(-1);
    free(solo2);
    static const int splits[3] = {1, 2, 17};
    for (int k = 0; k < 3; k++) {
        CU_OK(rl_cu_attn_paged(dq, dpos, drow, NQ, &c.r, &kv, LAYER, splits[k], scr, &o, 0));
        tcu_down(all, o.f, (size_t)qd * NQ * 4);
        for (int q = 0; q < NQ; q++)
            ck_assert_msg(memcmp(solo + (size_t)q * qd, all + (size_t)q * qd, (size_t)qd * 4) == 0,
                          "query %d (position %d) differs in a batch of %d with split %d", q, pos[q], NQ, splits[k]);
    }
    cudaFree(dq), cudaFree(dpos), cudaFree(drow), cudaFree(dbt), cudaFree(dpool), cudaFree(scr), cudaFree(o.f);
    free(pool), free(qv), free(solo), free(all), free(c.bt);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cuda_paged");
    TCase *tc = tcase_create("paged");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, paged_attention_equals_contiguous_over_shuffled_blocks);
    tcase_add_test(tc, paged_rope_kv_writes_only_its_block_rows);
    tcase_add_test(tc, kv_block_copy_moves_every_layer);
    tcase_add_test(tc, split_attention_is_batch_and_split_invariant);
    suite_add_tcase(s, tc);
    return tcu_main(s);
}
