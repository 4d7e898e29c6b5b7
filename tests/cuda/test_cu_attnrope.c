/* test_cu_attnrope.c - the one-token attention that rotates its own query
 * and its token's K row (rl_cu_attn_rope_paged) against the RoPE kernel then
 * the attention (rl_cu_rope_kv_paged, rl_cu_attn_paged), as the step ran them
 * before: the same output bits and the same pool bytes (the token's K and V
 * rows written, nothing else), for head sizes 64 and 128, grouped and not,
 * NeoX and not, partial rotation, the file's frequencies, positions at chunk
 * and block edges, several split counts; a token without a place; the
 * launches it leaves to the two kernels (-ENOTSUP). Exits 77 without a GPU. */
#include <errno.h>

#include "tcu_kv.h"

typedef struct rope_cfg {
    int hd, n_head, n_head_kv, n_rot;
    bool neox, freqs;
} rope_cfg;

static void check_cfg(const rope_cfg *k)
{
    uint64_t s = tcu_seed("attention with RoPE");
    pool_case c;
    make_case(&c, &s, k->hd, k->neox);
    c.r.n_head = k->n_head;
    c.r.n_head_kv = k->n_head_kv;
    c.r.n_rot = k->n_rot;
    float *dfreq = NULL;
    if (k->freqs) { /* the file's frequencies: not the formula's */
        float f[128];
        for (int i = 0; i < k->n_rot / 2; i++)
            f[i] = powf(1e4f, -2.0f * (float)i / (float)k->n_rot) * (0.5f + tcu_unif(&s));
        dfreq = tcu_up(f, sizeof(float) * (size_t)(k->n_rot / 2));
        c.r.inv_freq = dfreq;
    }
    const int hd = k->hd, qd = k->n_head * hd, rowlen = qd + 2 * k->n_head_kv * hd;
    size_t pb = rl_cu_kv_block_bytes(NL, (uint32_t)k->n_head_kv, (uint32_t)hd, false) * c.n_blocks;
    uint16_t *hp = malloc(pb), *p1 = malloc(pb), *p2 = malloc(pb);
    for (size_t i = 0; i < pb / 2; i++)
        hp[i] = rl_fp32_to_fp16(2.0f * tcu_unif(&s) - 1.0f);
    void *d1 = tcu_up(hp, pb), *d2 = tcu_up(hp, pb);
    int32_t *dbt = tcu_up(c.bt, sizeof(int32_t) * c.n_seq * c.stride);
    rl_cu_kv k1 = dev_kv(&c, d1, dbt, false), k2 = dev_kv(&c, d2, dbt, false);
    size_t scr_bytes = rl_cu_attn_scratch_size(1, k->n_head, hd, (int64_t)c.stride * RL_CU_KV_BLOCK);
    void *scr = tcu_dev(scr_bytes);
    ck_assert(cudaMemset(scr, 0, scr_bytes) == cudaSuccess);
    float *qkv = tcu_rand_vec(&s, (size_t)rowlen, 2.0f);
    float *dqkv = tcu_up(qkv, (size_t)rowlen * 4), *dq = tcu_dev((size_t)qd * 4);
    rl_cu_act o1 = {.f = tcu_dev((size_t)qd * 4), .n = qd}, o2 = {.f = tcu_dev((size_t)qd * 4), .n = qd};
    float *a = malloc((size_t)qd * 4), *b = malloc((size_t)qd * 4);
    int32_t *dpos = tcu_dev(8), *drow = tcu_dev(8);
    const int32_t positions[] = {0, 5, 15, 16, 63, 64, 65, 127, 130, 299}, rows[] = {0, 2, -1};
    const int splits[] = {rl_cu_attn_splits(1, k->n_head), 1, 3, 16};
    for (size_t pi = 0; pi < sizeof positions / sizeof *positions; pi++)
        for (int ri = 0; ri < 3; ri++) {
            int32_t pos = positions[pi], row = rows[ri];
            CU_OK(rl_cu_check(cudaMemcpy(dpos, &pos, 4, cudaMemcpyHostToDevice), "pos"));
            CU_OK(rl_cu_check(cudaMemcpy(drow, &row, 4, cudaMemcpyHostToDevice), "row"));
            for (int si = 0; si < 4; si++) {
                CU_OK(rl_cu_rope_kv_paged(dqkv, 1, dpos, drow, &c.r, &k1, LAYER, dq, 0));
                CU_OK(rl_cu_attn_paged(dq, dpos, drow, 1, &c.r, &k1, LAYER, splits[si], scr, &o1, 0));
                CU_OK(rl_cu_attn_rope_paged(dqkv, dpos, drow, 1, &c.r, &k2, LAYER, splits[si], scr, &o2, 0));
                tcu_down(a, o1.f, (size_t)qd * 4);
                tcu_down(b, o2.f, (size_t)qd * 4);
                for (int i = 0; i < qd; i++)
                    ck_assert_msg(isfinite(b[i]) && memcmp(&a[i], &b[i], 4) == 0,
                                  "hd %d heads %d/%d rot %d%s%s, position %d row %d split %d: %g against %g at %d",
                                  hd, k->n_head, k->n_head_kv, k->n_rot, k->neox ? " neox" : "",
                                  k->freqs ? " freqs" : "", pos, row, splits[si], b[i], a[i], i);
            }
            /* both pools: the same bytes (the token's rows, or nothing without a place) */
            tcu_down(p1, d1, pb);
            tcu_down(p2, d2, pb);
            ck_assert_msg(memcmp(p1, p2, pb) == 0, "hd %d rot %d%s: the pools differ after position %d row %d", hd,
                          k->n_rot, k->neox ? " neox" : "", pos, row);
            if (row < 0)
                ck_assert_msg(memcmp(p2, hp, pb) == 0, "a token without a place wrote to the pool");
            memcpy(hp, p2, pb);
        }
    cudaFree(d1), cudaFree(d2), cudaFree(dbt), cudaFree(scr), cudaFree(dqkv), cudaFree(dq), cudaFree(o1.f);
    cudaFree(o2.f), cudaFree(dpos), cudaFree(drow);
    if (dfreq)
        cudaFree(dfreq);
    free(hp), free(p1), free(p2), free(qkv), free(a), free(b), free(c.bt);
}

START_TEST(rotating_attention_matches_the_two_kernels)
{
    const rope_cfg cfgs[] = {
        {128, 8, 8, 128, false, false}, /* Llama 2: one KV head per query head */
        {128, 8, 2, 128, true, false},  /* grouped, NeoX pairs */
        {64, 8, 2, 64, false, false},   /* TinyLlama's heads */
        {64, 8, 4, 32, false, true},    /* partial rotation, the file's frequencies */
        {128, 8, 2, 64, true, true},    /* NeoX with partial rotation */
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++)
        check_cfg(&cfgs[i]);
}
END_TEST

/* Launches it leaves to the two kernels: -ENOTSUP, nothing run. */
START_TEST(rotating_attention_declines_what_it_does_not_cover)
{
    uint64_t s = tcu_seed("attention with RoPE declines");
    pool_case c;
    make_case(&c, &s, 128, false);
    int qd = c.r.n_head * 128;
    size_t b16 = rl_cu_kv_block_bytes(NL, (uint32_t)c.r.n_head_kv, 128, false) * c.n_blocks;
    void *pool = tcu_dev(b16), *buf = tcu_dev((size_t)qd * 4 * 4), *scr = tcu_dev(1 << 20);
    int32_t *ids = tcu_dev(64);
    rl_cu_kv kv = dev_kv(&c, pool, ids, false), kv8 = kv;
    kv8.q8 = true;
    rl_cu_act o = {.f = buf, .n = qd};
    ck_assert(rl_cu_attn_rope_applies(1, &c.r, &kv, 4));
    ck_assert_int_eq(rl_cu_attn_rope_paged(buf, ids, ids, 2, &c.r, &kv, LAYER, 4, scr, &o, 0), -ENOTSUP);
    ck_assert_int_eq(rl_cu_attn_rope_paged(buf, ids, ids, 1, &c.r, &kv8, LAYER, 4, scr, &o, 0), -ENOTSUP);
    ck_assert_int_eq(rl_cu_attn_rope_paged(buf, ids, ids, 1, &c.r, &kv, LAYER, 0, scr, &o, 0), -ENOTSUP);
    rl_cu_rope r8 = c.r;
    r8.n_rot = 8; /* runs of 8 dims would hold both halves of a pair */
    ck_assert_int_eq(rl_cu_attn_rope_paged(buf, ids, ids, 1, &r8, &kv, LAYER, 4, scr, &o, 0), -ENOTSUP);
    rl_cu_rope bad = c.r;
    bad.n_rot = 130;
    ck_assert_int_eq(rl_cu_attn_rope_paged(buf, ids, ids, 1, &bad, &kv, LAYER, 4, scr, &o, 0), -EINVAL);
    rl_cu_attn_force(1); /* the block kernel forced */
    ck_assert_int_eq(rl_cu_attn_rope_paged(buf, ids, ids, 1, &c.r, &kv, LAYER, 4, scr, &o, 0), -ENOTSUP);
    rl_cu_attn_force(-1);
    cudaFree(pool), cudaFree(buf), cudaFree(scr), cudaFree(ids);
    free(c.bt);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cuda_attnrope");
    TCase *tc = tcase_create("attnrope");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, rotating_attention_matches_the_two_kernels);
    tcase_add_test(tc, rotating_attention_declines_what_it_does_not_cover);
    suite_add_tcase(s, tc);
    return tcu_main(s);
}
