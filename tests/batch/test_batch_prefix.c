/* test_batch_prefix.c - the prefix cache and shared KV blocks alone: exact
 * chain matching, LRU eviction of idle blocks, reference counts, copy-on-write. */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "rl_kv.h"
#include "rl_prefix.h"
#include "rl_prefix_impl.h" /* rl_prefix_cached: the brute-force idle count */

#define NB 8

static rl_kv *g_kv;
static rl_prefix *g_p;

static void setup(void)
{
    char err[128];
    ck_assert_int_eq(rl_kv_new(&g_kv, 1, 1, 32, RL_TYPE_F32, NB, err, sizeof err), 0);
    ck_assert_int_eq(rl_prefix_new(&g_p, g_kv, NB), 0);
}

static void teardown(void)
{
    rl_prefix_free(g_p);
    rl_kv_free(g_kv);
}

static void toks_of(int32_t *t, int32_t base)
{
    for (int i = 0; i < RL_KV_BLOCK; i++)
        t[i] = base + i;
}

static uint32_t used(void)
{
    rl_kv_stats st;
    rl_kv_get_stats(g_kv, &st);
    return st.blocks_used;
}

START_TEST(found_only_by_the_same_chain)
{
    rl_kv_seq s = {0};
    ck_assert_int_eq(rl_kv_reserve(g_kv, &s, 2 * RL_KV_BLOCK), 0);
    int32_t a[RL_KV_BLOCK], b[RL_KV_BLOCK];
    toks_of(a, 100);
    toks_of(b, 200);
    uint64_t sa = rl_prefix_add(g_p, 0, a, s.blocks[0]);
    uint64_t sb = rl_prefix_add(g_p, sa, b, s.blocks[1]);
    ck_assert_uint_ne(sa, 0);
    ck_assert_uint_ne(sb, 0);
    uint64_t serial;
    ck_assert_int_eq(rl_prefix_find(g_p, 0, a, &serial), s.blocks[0]);
    ck_assert_uint_eq(serial, sa);
    ck_assert_int_eq(rl_prefix_find(g_p, sa, b, &serial), s.blocks[1]);
    ck_assert_int_eq(rl_prefix_find(g_p, 0, b, &serial), -1); /* b not at the start */
    b[7]++;
    ck_assert_int_eq(rl_prefix_find(g_p, sa, b, &serial), -1); /* one token differs */
    /* equal content added again: the existing entry, nothing new taken */
    ck_assert_uint_eq(rl_prefix_add(g_p, 0, a, s.blocks[1]), sa);
    ck_assert_uint_eq(rl_prefix_entries(g_p), 2);
    rl_kv_release(g_kv, &s);
}
END_TEST

START_TEST(cached_blocks_outlive_their_sequence_until_evicted)
{
    rl_kv_seq s = {0};
    ck_assert_int_eq(rl_kv_reserve(g_kv, &s, 2 * RL_KV_BLOCK), 0);
    int32_t a[RL_KV_BLOCK], b[RL_KV_BLOCK];
    toks_of(a, 1);
    toks_of(b, 50);
    uint64_t sa = rl_prefix_add(g_p, 0, a, s.blocks[0]);
    rl_prefix_add(g_p, 0, b, s.blocks[1]);
    uint32_t blk_a = s.blocks[0];
    rl_kv_release(g_kv, &s);
    ck_assert_uint_eq(used(), 2); /* the cache holds them */
    ck_assert_uint_eq(rl_prefix_idle_blocks(g_p), 2);
    uint64_t serial;
    ck_assert_int_eq(rl_prefix_find(g_p, 0, a, &serial), blk_a); /* a is now most recent */
    ck_assert(rl_prefix_evict_one(g_p));                          /* evicts b, the LRU */
    ck_assert_int_eq(rl_prefix_find(g_p, 0, b, &serial), -1);
    ck_assert_int_eq(rl_prefix_find(g_p, 0, a, &serial), blk_a);
    ck_assert_uint_eq(used(), 1);
    /* a block a sequence still holds is not evicted */
    rl_kv_seq t = {0};
    ck_assert_int_eq(rl_kv_attach(g_kv, &t, blk_a), 0);
    ck_assert_uint_eq(t.n_pos, RL_KV_BLOCK);
    ck_assert(!rl_prefix_evict_one(g_p));
    rl_kv_release(g_kv, &t);
    ck_assert(rl_prefix_evict_one(g_p));
    ck_assert_uint_eq(used(), 0);
    /* the same tokens cached again get a new serial: chains built on the
     * evicted entry's serial cannot match the new one */
    rl_kv_seq u = {0};
    ck_assert_int_eq(rl_kv_reserve(g_kv, &u, RL_KV_BLOCK), 0);
    uint64_t sa2 = rl_prefix_add(g_p, 0, a, u.blocks[0]);
    ck_assert_uint_ne(sa2, 0);
    ck_assert_uint_ne(sa2, sa);
    ck_assert_int_eq(rl_prefix_find(g_p, 0, a, &serial), u.blocks[0]);
    ck_assert_uint_eq(serial, sa2);
    rl_kv_release(g_kv, &u);
}
END_TEST

START_TEST(writing_a_shared_block_copies_it)
{
    rl_kv_seq s = {0}, t = {0};
    ck_assert_int_eq(rl_kv_reserve(g_kv, &s, RL_KV_BLOCK), 0);
    float k[32], v[32];
    for (int i = 0; i < 32; i++)
        k[i] = v[i] = (float)i;
    for (uint32_t p = 0; p < RL_KV_BLOCK; p++)
        rl_kv_store(g_kv, &s, 0, p, k, v);
    s.n_pos = RL_KV_BLOCK;
    ck_assert_int_eq(rl_kv_attach(g_kv, &t, s.blocks[0]), 0);
    ck_assert_uint_eq(rl_kv_block_refs(g_kv, s.blocks[0]), 2);
    ck_assert_uint_eq(used(), 1);
    /* t rewrites position 3: it gets its own copy first */
    ck_assert_int_eq(rl_kv_make_writable(g_kv, &t, 3, 4), 0);
    ck_assert_uint_ne(t.blocks[0], s.blocks[0]);
    ck_assert_uint_eq(used(), 2);
    ck_assert_mem_eq(rl_kv_rows(g_kv, &t, 0, 0, 0, 0), rl_kv_rows(g_kv, &s, 0, 0, 0, 0),
                     RL_KV_BLOCK * rl_kv_row_bytes(g_kv));
    float z[32] = {0};
    rl_kv_store(g_kv, &t, 0, 3, z, z);
    const float *rs = rl_kv_rows(g_kv, &s, 0, 0, 0, 0);
    ck_assert(rs[3 * 32 + 5] == 5.f); /* s unchanged */
    /* a private block is written in place */
    uint32_t own = t.blocks[0];
    ck_assert_int_eq(rl_kv_make_writable(g_kv, &t, 0, RL_KV_BLOCK), 0);
    ck_assert_uint_eq(t.blocks[0], own);
    rl_kv_release(g_kv, &t);
    rl_kv_release(g_kv, &s);
    ck_assert_uint_eq(used(), 0);
}
END_TEST

START_TEST(attach_refuses_free_blocks_and_unaligned_sequences)
{
    rl_kv_seq s = {0}, t = {0};
    ck_assert_int_eq(rl_kv_attach(g_kv, &t, 3), -EINVAL); /* free block */
    ck_assert_int_eq(rl_kv_attach(g_kv, &t, NB + 5), -EINVAL);
    ck_assert_int_eq(rl_kv_reserve(g_kv, &s, RL_KV_BLOCK), 0);
    ck_assert_int_eq(rl_kv_reserve(g_kv, &t, 5), 0);
    t.n_pos = 5;
    ck_assert_int_eq(rl_kv_attach(g_kv, &t, s.blocks[0]), -EINVAL); /* t not on a boundary */
    rl_kv_release(g_kv, &t);
    rl_kv_release(g_kv, &s);
}
END_TEST

/* What rl_prefix_idle_blocks must equal: cached blocks with one reference. */
static uint32_t idle_by_scan(uint32_t nb)
{
    uint32_t n = 0;
    for (uint32_t b = 0; b < nb; b++)
        n += rl_prefix_cached(g_p, b) && rl_kv_block_refs(g_kv, b) == 1;
    return n;
}

START_TEST(idle_count_follows_every_reference_change)
{
    /* Random sequences reserve, register, attach, copy on write, release and
     * evict; after each operation the O(1) count equals a scan of every block. */
    enum { NS = 6 };
    rl_kv_seq seq[NS] = {{0}};
    uint32_t x = 12345, adds = 0, attaches = 0, cows = 0, evicts = 0;
    int32_t toks[RL_KV_BLOCK];
    for (int it = 0; it < 4000; it++) {
        x = x * 1103515245u + 12345u;
        uint32_t r = x >> 8, i = r % NS;
        rl_kv_seq *s = &seq[i];
        switch ((r >> 4) % 6) {
        case 0: /* grow by one block (evicting when the pool is full) */
            if (s->n_pos % RL_KV_BLOCK == 0 && s->n_blocks < 3) {
                if (rl_kv_reserve(g_kv, s, s->n_pos + RL_KV_BLOCK) == -ENOSPC && rl_prefix_evict_one(g_p))
                    evicts++;
                if (s->n_blocks * RL_KV_BLOCK > s->n_pos)
                    s->n_pos = s->n_blocks * RL_KV_BLOCK;
            }
            break;
        case 1: /* cache one of its blocks */
            if (s->n_blocks) {
                toks_of(toks, (int32_t)(r % 997));
                adds += rl_prefix_add(g_p, r % 3, toks, s->blocks[(r >> 12) % s->n_blocks]) != 0;
            }
            break;
        case 2: { /* attach a cached block found by scanning */
            uint32_t b = (r >> 12) % NB;
            if (rl_prefix_cached(g_p, b) && s->n_blocks < 3 && rl_kv_attach(g_kv, s, b) == 0)
                attaches++;
            break;
        }
        case 3: /* copy on write of its shared blocks */
            if (s->n_blocks) {
                uint32_t before[3];
                memcpy(before, s->blocks, sizeof(uint32_t) * s->n_blocks);
                if (rl_kv_make_writable(g_kv, s, 0, s->n_pos) == 0)
                    cows += memcmp(before, s->blocks, sizeof(uint32_t) * s->n_blocks) != 0;
            }
            break;
        case 4:
            rl_kv_release(g_kv, s);
            break;
        case 5:
            evicts += rl_prefix_evict_one(g_p);
            break;
        }
        ck_assert_uint_eq(rl_prefix_idle_blocks(g_p), idle_by_scan(NB));
    }
    /* every kind of change happened */
    ck_assert_uint_gt(adds, 10);
    ck_assert_uint_gt(attaches, 10);
    ck_assert_uint_gt(cows, 10);
    ck_assert_uint_gt(evicts, 10);
    for (int i = 0; i < NS; i++)
        rl_kv_release(g_kv, &seq[i]);
    ck_assert_uint_eq(rl_prefix_idle_blocks(g_p), rl_prefix_entries(g_p));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("batch_prefix");
    TCase *tc = tcase_create("prefix");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, found_only_by_the_same_chain);
    tcase_add_test(tc, cached_blocks_outlive_their_sequence_until_evicted);
    tcase_add_test(tc, writing_a_shared_block_copies_it);
    tcase_add_test(tc, attach_refuses_free_blocks_and_unaligned_sequences);
    tcase_add_test(tc, idle_count_follows_every_reference_change);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
