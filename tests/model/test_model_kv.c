/* test_model_kv.c - the paged KV cache pool: block accounting, overflow. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tm_util.h"

START_TEST(blocks_are_taken_per_16_positions_and_given_back)
{
    rl_kv *kv;
    char err[128];
    ck_assert_int_eq(rl_kv_new(&kv, 2, 2, 64, RL_TYPE_F16, 10, err, sizeof err), 0);
    rl_kv_stats st;
    rl_kv_seq a = {0}, b = {0};
    ck_assert_int_eq(rl_kv_reserve(kv, &a, 17), 0);
    ck_assert_int_eq(rl_kv_reserve(kv, &b, 16), 0);
    rl_kv_get_stats(kv, &st);
    ck_assert_uint_eq(st.blocks_used, 3);
    ck_assert_uint_eq(st.blocks_free, 7);
    ck_assert_uint_eq(st.block_bytes, rl_kv_block_bytes(2, 2, 64, RL_TYPE_F16));
    ck_assert_uint_ne(a.blocks[0], b.blocks[0]);
    rl_kv_release(kv, &a);
    rl_kv_get_stats(kv, &st);
    ck_assert_uint_eq(st.blocks_used, 1);
    ck_assert_uint_eq(a.n_blocks, 0);
    rl_kv_release(kv, &b);
    rl_kv_free(kv);
}
END_TEST

START_TEST(exhausted_pool_says_enospc_and_takes_nothing)
{
    rl_kv *kv;
    char err[128];
    ck_assert_int_eq(rl_kv_new(&kv, 1, 1, 32, RL_TYPE_Q8_0, 4, err, sizeof err), 0);
    rl_kv_seq a = {0}, b = {0};
    ck_assert_int_eq(rl_kv_reserve(kv, &a, 48), 0);
    ck_assert_int_eq(rl_kv_reserve(kv, &b, 32), -ENOSPC);
    ck_assert_uint_eq(b.n_blocks, 0);
    rl_kv_stats st;
    rl_kv_get_stats(kv, &st);
    ck_assert_uint_eq(st.blocks_free, 1);
    rl_kv_release(kv, &a);
    rl_kv_free(kv);
}
END_TEST

START_TEST(q8_0_cache_refuses_head_dim_not_multiple_of_32)
{
    rl_kv *kv;
    char err[128] = "";
    ck_assert_int_eq(rl_kv_new(&kv, 1, 1, 8, RL_TYPE_Q8_0, 4, err, sizeof err), -EINVAL);
    ck_assert_ptr_null(kv);
    ck_assert(strlen(err) > 0);
    ck_assert_int_eq(rl_kv_new(&kv, 1, 1, 64, RL_TYPE_Q4_0, 4, err, sizeof err), -EINVAL);
}
END_TEST

START_TEST(forward_past_reserved_room_is_enospc_not_a_crash)
{
    char path[] = "/tmp/rl_test_kv_XXXXXX";
    tm_spec sp = tm_default_spec(RL_TYPE_F32);
    ck_assert_int_eq(tm_make_model(&sp, path), 0);
    tm_run r;
    ck_assert_int_eq(tm_run_open(&r, path, RL_TYPE_F16, 2, 1, 64), 0); /* 32 positions in all */
    rl_kv_seq s = {0};
    int32_t toks[20] = {0};
    ck_assert_int_eq(tm_run_feed(&r, &s, toks, 20, NULL), 0);
    ck_assert_int_eq(tm_run_feed(&r, &s, toks, 12, NULL), 0);
    ck_assert_int_eq(tm_run_feed(&r, &s, toks, 1, NULL), -ENOSPC);
    ck_assert_uint_eq(s.n_pos, 32);
    /* rl_forward itself refuses positions beyond the reserved blocks */
    rl_fwd_seq fs = {.kv = &s, .tokens = toks, .n_tok = 1, .logits = NULL};
    ck_assert_int_eq(rl_forward(r.f, &fs, 1), -ENOSPC);
    rl_kv_release(r.kv, &s);
    tm_run_close(&r);
    unlink(path);
}
END_TEST

START_TEST(forward_rejects_out_of_range_token)
{
    char path[] = "/tmp/rl_test_kv_XXXXXX";
    tm_spec sp = tm_default_spec(RL_TYPE_F32);
    ck_assert_int_eq(tm_make_model(&sp, path), 0);
    tm_run r;
    ck_assert_int_eq(tm_run_open(&r, path, RL_TYPE_F16, 4, 1, 8), 0);
    rl_kv_seq s = {0};
    int32_t bad[2] = {3, 320}, neg = -1;
    ck_assert_int_eq(tm_run_feed(&r, &s, bad, 2, NULL), -EINVAL);
    ck_assert_int_eq(tm_run_feed(&r, &s, &neg, 1, NULL), -EINVAL);
    int32_t many[9] = {0};
    ck_assert_int_eq(tm_run_feed(&r, &s, many, 9, NULL), -EINVAL); /* over max_tokens */
    ck_assert_uint_eq(s.n_pos, 0);
    rl_kv_release(r.kv, &s);
    tm_run_close(&r);
    unlink(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model_kv");
    TCase *tc = tcase_create("kv");
    tcase_add_test(tc, blocks_are_taken_per_16_positions_and_given_back);
    tcase_add_test(tc, exhausted_pool_says_enospc_and_takes_nothing);
    tcase_add_test(tc, q8_0_cache_refuses_head_dim_not_multiple_of_32);
    tcase_add_test(tc, forward_past_reserved_room_is_enospc_not_a_crash);
    tcase_add_test(tc, forward_rejects_out_of_range_token);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
