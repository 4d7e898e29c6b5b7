/* test_cu_kvq8.c - the int8 KV cache (rl_cu_kv.q8) against the fp16 one:
 * RoPE+KV writes quantize exactly the values the fp16 path stores (per 32,
 * d = max|x| / 127) into the right rows and nowhere else; decode attention
 * (split, unsplit, every head-size kernel) and prefill attention (tensor-core
 * and fp32 kernels) over an int8 pool agree (1e-4: the int8 dot product sums
 * in its own order) with the same kernels over an fp16 pool holding the same
 * values; a query's result is the same bits alone or batched, whatever the
 * split. Exits 77 without a GPU. */
#include <errno.h>
#include <time.h>

#include "tcu_kv.h"

/* int8 pool: byte offsets of the row's quants and of its first scale. */
static size_t q8_qoff(const pool_case *c, int64_t blk, int which, int h, int t)
{
    int hd = c->r.head_dim;
    return unit_of(c, blk, which, h) * (size_t)RL_CU_KV_BLOCK * hd * 17 / 16 + (size_t)(t % RL_CU_KV_BLOCK) * hd;
}

static size_t q8_doff(const pool_case *c, int64_t blk, int which, int h, int t)
{
    int hd = c->r.head_dim;
    return unit_of(c, blk, which, h) * (size_t)RL_CU_KV_BLOCK * hd * 17 / 16 + (size_t)RL_CU_KV_BLOCK * hd +
           (size_t)(t % RL_CU_KV_BLOCK) * (hd / 32) * 2;
}

START_TEST(block_bytes_of_the_int8_layout)
{
    ck_assert_uint_eq(rl_cu_kv_block_bytes(2, 4, 128, true), 2u * 2 * 4 * RL_CU_KV_BLOCK * 136);
    ck_assert_uint_eq(rl_cu_kv_block_bytes(2, 4, 128, false), 2u * 2 * 4 * RL_CU_KV_BLOCK * 256);
    ck_assert_uint_eq(rl_cu_kv_block_bytes(2, 4, 40, true), 0); /* head_dim % 32: no int8 layout */
}
END_TEST

/* RoPE+KV into an int8 pool and into an fp16 pool from the same q|k|v rows:
 * each written int8 row dequantizes to the fp16 row within half a step, its
 * scales are max|x| / 127 of their 32 values, and no other byte changes. */
static void check_rope_q8(int head_dim, bool neox)
{
    uint64_t s = tcu_seed("q8 rope");
    pool_case c;
    make_case(&c, &s, head_dim, neox);
    int hd = c.r.head_dim, kvd = c.r.n_head_kv * hd, qd = c.r.n_head * hd, rowlen = qd + 2 * kvd;
    enum { NT = 4 };
    int32_t pos[NT] = {0, 17, 18, 299}, row[NT] = {1, 0, 0, -1}; /* the last one has no row */
    float *qkv = tcu_rand_vec(&s, (size_t)rowlen * NT, 2.0f);
    for (int t = 0; t < NT; t++) /* one all-zero K head: scale 0, quants 0, no NaN */
        memset(qkv + (size_t)t * rowlen + qd, 0, sizeof(float) * hd);
    float *dqkv = tcu_up(qkv, (size_t)rowlen * NT * 4);
    int32_t *dpos = tcu_up(pos, sizeof pos), *drow = tcu_up(row, sizeof row);
    int32_t *dbt = tcu_up(c.bt, sizeof(int32_t) * c.n_seq * c.stride);
    size_t b16 = rl_cu_kv_block_bytes(NL, (uint32_t)c.r.n_head_kv, (uint32_t)hd, false) * c.n_blocks;
    size_t b8 = rl_cu_kv_block_bytes(NL, (uint32_t)c.r.n_head_kv, (uint32_t)hd, true) * c.n_blocks;
    void *dp16 = tcu_dev(b16), *dp8 = tcu_dev(b8); /* poisoned 0xFF */
    float *dq1 = tcu_dev((size_t)qd * NT * 4), *dq2 = tcu_dev((size_t)qd * NT * 4);
    rl_cu_kv k16 = dev_kv(&c, dp16, dbt, false), k8 = dev_kv(&c, dp8, dbt, true);
    CU_OK(rl_cu_rope_kv_paged(dqkv, NT, dpos, drow, &c.r, &k16, LAYER, dq1, 0));
    CU_OK(rl_cu_rope_kv_paged(dqkv, NT, dpos, drow, &c.r, &k8, LAYER, dq2, 0));
    uint16_t *p16 = malloc(b16);
    uint8_t *p8 = malloc(b8);
    float *q1 = malloc((size_t)qd * NT * 4), *q2 = malloc((size_t)qd * NT * 4);
    tcu_down(p16, dp16, b16);
    tcu_down(p8, dp8, b8);
    tcu_down(q1, dq1, (size_t)qd * NT * 4);
    tcu_down(q2, dq2, (size_t)qd * NT * 4);
    ck_assert(memcmp(q1, q2, (size_t)qd * NT * 4) == 0); /* q does not depend on the cache type */
    size_t written = 0;
    for (int t = 0; t < NT; t++) {
        if (row[t] < 0)
            continue;
        int64_t blk = c.bt[row[t] * c.stride + pos[t] / RL_CU_KV_BLOCK];
        for (int which = 0; which < 2; which++)
            for (int h = 0; h < c.r.n_head_kv; h++) {
                const uint16_t *f = p16 + pool_off(&c, blk, which, h, pos[t]);
                const int8_t *q = (const int8_t *)p8 + q8_qoff(&c, blk, which, h, pos[t]);
                const uint16_t *d = (const uint16_t *)(p8 + q8_doff(&c, blk, which, h, pos[t]));
                for (int g = 0; g < hd / 32; g++) {
                    float amax = 0, dd = rl_fp16_to_fp32(d[g]);
                    int qmax = 0;
                    for (int i = 0; i < 32; i++) {
                        amax = fmaxf(amax, fabsf(rl_fp16_to_fp32(f[32 * g + i])));
                        qmax = abs(q[32 * g + i]) > qmax ? abs(q[32 * g + i]) : qmax;
                    }
                    /* the fp16 row is the rounded float row: its max within 2^-11 */
                    ck_assert_msg(fabsf(dd - amax / 127) <= amax / 127 * 2e-3f + 1e-9f,
                                  "t %d which %d head %d group %d: scale %g, max|x| / 127 %g", t, which, h, g, dd,
                                  amax / 127);
                    ck_assert_int_eq(qmax, amax > 0 ? 127 : 0);
                    for (int i = 0; i < 32; i++) {
                        float x = rl_fp16_to_fp32(f[32 * g + i]), y = q[32 * g + i] * dd;
                        ck_assert_msg(fabsf(x - y) <= 0.5f * dd * 1.01f + fabsf(x) * 1e-3f,
                                      "t %d which %d head %d dim %d: int8 %g vs fp16 %g", t, which, h, 32 * g + i, y,
                                      x);
                    }
                }
                written += (size_t)hd + (size_t)hd / 16;
            }
    }
    size_t changed = 0;
    for (size_t i = 0; i < b8; i++)
        changed += p8[i] != 0xFF;
    ck_assert_uint_le(changed, written); /* nothing outside those rows (a byte may equal the poison) */
    ck_assert_uint_ge(changed, written - written / 20);
    cudaFree(dqkv), cudaFree(dpos), cudaFree(drow), cudaFree(dbt), cudaFree(dp16), cudaFree(dp8);
    cudaFree(dq1), cudaFree(dq2);
    free(qkv), free(p16), free(p8), free(q1), free(q2), free(c.bt);
}

START_TEST(q8_rope_kv_quantizes_the_fp16_rows)
{
    check_rope_q8(64, false);
    check_rope_q8(128, false);
    check_rope_q8(128, true);
    check_rope_q8(96, true);
}
END_TEST

/* A random int8 pool (foreign bytes in unused rows included) and the fp16
 * pool of its dequantized values. The scales are powers of two, so every
 * q * d is exact in fp16: both pools hold the same values, and the kernels
 * must give the same results up to the float rounding of their sums. */
typedef struct pools {
    void *d8, *d16;
    size_t b8, b16;
} pools;

static pools make_pools(const pool_case *c, uint64_t *s)
{
    int hd = c->r.head_dim;
    pools p;
    p.b8 = rl_cu_kv_block_bytes(NL, (uint32_t)c->r.n_head_kv, (uint32_t)hd, true) * c->n_blocks;
    p.b16 = rl_cu_kv_block_bytes(NL, (uint32_t)c->r.n_head_kv, (uint32_t)hd, false) * c->n_blocks;
    uint8_t *h8 = malloc(p.b8);
    uint16_t *h16 = malloc(p.b16);
    for (size_t i = 0; i < p.b8; i++)
        h8[i] = (uint8_t)(tcu_rng_next(s) % 255 + 1); /* int8 -127..127 */
    size_t units = (size_t)c->n_blocks * NL * 2 * c->r.n_head_kv, per_unit = (size_t)RL_CU_KV_BLOCK * hd * 17 / 16;
    for (size_t u = 0; u < units; u++) {
        uint8_t *base = h8 + u * per_unit;
        uint16_t *sc = (uint16_t *)(base + (size_t)RL_CU_KV_BLOCK * hd);
        for (int k = 0; k < RL_CU_KV_BLOCK * hd / 32; k++) /* scales 2^-5 .. 2^-8 */
            sc[k] = rl_fp32_to_fp16(ldexpf(1.0f, -5 - (int)(tcu_rng_next(s) % 4)));
        for (int r = 0; r < RL_CU_KV_BLOCK; r++)
            for (int i = 0; i < hd; i++) {
                float v = (float)(int8_t)base[r * hd + i] * rl_fp16_to_fp32(sc[r * (hd / 32) + i / 32]);
                h16[(u * RL_CU_KV_BLOCK + r) * hd + i] = rl_fp32_to_fp16(v);
            }
    }
    p.d8 = tcu_up(h8, p.b8);
    p.d16 = tcu_up(h16, p.b16);
    free(h8), free(h16);
    return p;
}

static void check_decode_q8(int head_dim)
{
    uint64_t s = tcu_seed("q8 decode attention");
    pool_case c;
    make_case(&c, &s, head_dim, false);
    int hd = c.r.head_dim, qd = c.r.n_head * hd;
    pools p = make_pools(&c, &s);
    enum { NQ = 6 };
    int32_t pos[NQ] = {0, 15, 16, 299, 137, 138}, row[NQ] = {2, 0, 0, 1, 2, 2};
    float *qv = tcu_rand_vec(&s, (size_t)qd * NQ, 3.0f);
    float *dq = tcu_up(qv, (size_t)qd * NQ * 4);
    int32_t *dpos = tcu_up(pos, sizeof pos), *drow = tcu_up(row, sizeof row);
    int32_t *dbt = tcu_up(c.bt, sizeof(int32_t) * c.n_seq * c.stride);
    rl_cu_kv k16 = dev_kv(&c, p.d16, dbt, false), k8 = dev_kv(&c, p.d8, dbt, true);
    size_t scr_bytes = rl_cu_attn_scratch_size(NQ, c.r.n_head, hd, (int64_t)c.stride * RL_CU_KV_BLOCK);
    void *scr = tcu_dev(scr_bytes);
    ck_assert(cudaMemset(scr, 0, scr_bytes) == cudaSuccess);
    rl_cu_act o1 = {.f = tcu_dev((size_t)qd * NQ * 4), .n = qd}, o2 = {.f = tcu_dev((size_t)qd * NQ * 4), .n = qd};
    float *a = malloc((size_t)qd * NQ * 4), *b = malloc((size_t)qd * NQ * 4), *solo = malloc((size_t)qd * 4);
    /* 1: one block per head merges its chunks in registers (large batches) */
    const int splits[5] = {0, rl_cu_attn_splits(NQ, c.r.n_head), 1, 3, 17};
    for (int k = 0; k < 5; k++) {
        CU_OK(rl_cu_attn_paged(dq, dpos, drow, NQ, &c.r, &k16, LAYER, splits[k], scr, &o1, 0));
        CU_OK(rl_cu_attn_paged(dq, dpos, drow, NQ, &c.r, &k8, LAYER, splits[k], scr, &o2, 0));
        tcu_down(a, o1.f, (size_t)qd * NQ * 4);
        tcu_down(b, o2.f, (size_t)qd * NQ * 4);
        for (int i = 0; i < qd * NQ; i++)
            ck_assert_msg(isfinite(b[i]) && fabsf(a[i] - b[i]) <= 1e-4f * (0.1f + fabsf(a[i])),
                          "hd %d split %d: int8 %g vs fp16 %g at %d", hd, splits[k], b[i], a[i], i);
        if (splits[k] == 0)
            continue;
        /* the block kernel on the same int8 pool agrees with the (default) warp kernel */
        rl_cu_attn_force(1);
        CU_OK(rl_cu_attn_paged(dq, dpos, drow, NQ, &c.r, &k8, LAYER, splits[k], scr, &o1, 0));
        rl_cu_attn_force(-1);
        tcu_down(a, o1.f, (size_t)qd * NQ * 4);
        /* (the same int8 values summed in another order: fp32 rounding of terms
         * up to ~3 in size; 2e-6 failed once at 2.7e-6 on an output of 0.047) */
        for (int i = 0; i < qd * NQ; i++)
            ck_assert_msg(fabsf(a[i] - b[i]) <= 1e-5f * (1.0f + fabsf(a[i])),
                          "hd %d split %d: warp kernel %g vs block kernel %g at %d", hd, splits[k], b[i], a[i], i);
        /* query 0 alone: the same bits as inside the batch */
        CU_OK(rl_cu_attn_paged(dq, dpos, drow, 1, &c.r, &k8, LAYER, rl_cu_attn_splits(1, c.r.n_head), scr, &o2, 0));
        tcu_down(solo, o2.f, (size_t)qd * 4);
        ck_assert_msg(memcmp(solo, b, (size_t)qd * 4) == 0, "hd %d: query 0 differs alone and batched (split %d)", hd,
                      splits[k]);
        if (hd != 128)
            continue;
        /* the opt-in tensor-core chunk (fp16 products, the fp32 side as two
         * fp16 halves): the warp kernel's results within 1e-5, and the same
         * bits alone and batched */
        rl_cu_attn_force(2);
        CU_OK(rl_cu_attn_paged(dq, dpos, drow, NQ, &c.r, &k8, LAYER, splits[k], scr, &o1, 0));
        CU_OK(rl_cu_attn_paged(dq, dpos, drow, 1, &c.r, &k8, LAYER, rl_cu_attn_splits(1, c.r.n_head), scr, &o2, 0));
        rl_cu_attn_force(-1);
        tcu_down(a, o1.f, (size_t)qd * NQ * 4);
        tcu_down(solo, o2.f, (size_t)qd * 4);
        for (int i = 0; i < qd * NQ; i++)
            ck_assert_msg(isfinite(a[i]) && fabsf(a[i] - b[i]) <= 1e-5f * (1.0f + fabsf(b[i])),
                          "split %d: tensor-core chunk %g vs warp kernel %g at %d", splits[k], a[i], b[i], i);
        ck_assert_msg(memcmp(solo, a, (size_t)qd * 4) == 0, "tensor-core chunk: query 0 differs alone and batched");
    }
    cudaFree(dq), cudaFree(dpos), cudaFree(drow), cudaFree(dbt), cudaFree(p.d8), cudaFree(p.d16), cudaFree(scr);
    cudaFree(o1.f), cudaFree(o2.f);
    free(qv), free(a), free(b), free(solo), free(c.bt);
}

START_TEST(q8_decode_attention_matches_fp16_pool)
{
    check_decode_q8(128); /* the warp kernel (and the block kernel's head-size-128 form) */
    check_decode_q8(64);  /* the same at head size 64 */
    check_decode_q8(96);  /* the block kernel's generic form */
}
END_TEST

static void check_prefill_q8(int head_dim)
{
    uint64_t s = tcu_seed("q8 prefill attention");
    pool_case c;
    make_case(&c, &s, head_dim, false);
    int hd = c.r.head_dim, qd = c.r.n_head * hd;
    pools p = make_pools(&c, &s);
    int32_t *dbt = tcu_up(c.bt, sizeof(int32_t) * c.n_seq * c.stride);
    rl_cu_kv k16 = dev_kv(&c, p.d16, dbt, false), k8 = dev_kv(&c, p.d8, dbt, true);
    enum { NQ = 70, POS0 = 150 }; /* a chunk after a cached prefix, crossing blocks */
    float *qv = tcu_rand_vec(&s, (size_t)qd * NQ, 3.0f);
    float *dq = tcu_up(qv, (size_t)qd * NQ * 4);
    rl_cu_act o1 = {.f = tcu_dev((size_t)qd * NQ * 4), .n = qd}, o2 = {.f = tcu_dev((size_t)qd * NQ * 4), .n = qd};
    CU_OK(rl_cu_attn_prefill_paged(dq, NQ, POS0, 1, &c.r, &k16, LAYER, &o1, 0));
    CU_OK(rl_cu_attn_prefill_paged(dq, NQ, POS0, 1, &c.r, &k8, LAYER, &o2, 0));
    float *a = malloc((size_t)qd * NQ * 4), *b = malloc((size_t)qd * NQ * 4);
    tcu_down(a, o1.f, (size_t)qd * NQ * 4);
    tcu_down(b, o2.f, (size_t)qd * NQ * 4);
    for (int i = 0; i < qd * NQ; i++)
        ck_assert_msg(isfinite(b[i]) && fabsf(a[i] - b[i]) <= 1e-4f * (0.1f + fabsf(a[i])),
                      "hd %d: int8 %g vs fp16 %g at %d", hd, b[i], a[i], i);
    cudaFree(dq), cudaFree(dbt), cudaFree(p.d8), cudaFree(p.d16), cudaFree(o1.f), cudaFree(o2.f);
    free(qv), free(a), free(b), free(c.bt);
}

START_TEST(q8_prefill_attention_matches_fp16_pool)
{
    check_prefill_q8(128); /* tensor cores */
    check_prefill_q8(64);  /* tensor cores */
    check_prefill_q8(96);  /* the fp32 kernel */
}
END_TEST

START_TEST(q8_needs_head_dim_multiple_of_32)
{
    uint64_t s = tcu_seed("q8 head dim");
    pool_case c;
    make_case(&c, &s, 40, false);
    int qd = c.r.n_head * 40, rowlen = qd + 2 * c.r.n_head_kv * 40;
    void *pool = tcu_dev(4096), *buf = tcu_dev((size_t)rowlen * 4 * 2);
    int32_t *ids = tcu_dev(64);
    rl_cu_kv kv = dev_kv(&c, pool, ids, true);
    rl_cu_act o = {.f = buf, .n = qd};
    ck_assert_int_eq(rl_cu_rope_kv_paged(buf, 1, ids, ids, &c.r, &kv, LAYER, buf, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_attn_paged(buf, ids, ids, 1, &c.r, &kv, LAYER, 1, buf, &o, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_attn_prefill_paged(buf, 1, 0, 0, &c.r, &kv, LAYER, &o, 0), -EINVAL);
    cudaFree(pool), cudaFree(buf), cudaFree(ids);
    free(c.bt);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cuda_kvq8");
    TCase *tc = tcase_create("kvq8");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, block_bytes_of_the_int8_layout);
    tcase_add_test(tc, q8_rope_kv_quantizes_the_fp16_rows);
    tcase_add_test(tc, q8_decode_attention_matches_fp16_pool);
    tcase_add_test(tc, q8_prefill_attention_matches_fp16_pool);
    tcase_add_test(tc, q8_needs_head_dim_multiple_of_32);
    suite_add_tcase(s, tc);
    return tcu_main(s);
}
