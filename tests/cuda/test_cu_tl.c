/* test_cu_tl.c - the step timeline's records grouped by launch
 * (rl_cu_tl_sum.c), on the CPU: no CUDA needed, runs in every build. */
#include "rl_cu_tl.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static rl_cu_tl_rec rec(uint64_t grid, uint32_t tag, uint32_t block, uint64_t t0, uint64_t tw, uint64_t t1)
{
    rl_cu_tl_rec r;
    memset(&r, 0, sizeof r);
    r.grid = grid, r.tag = tag, r.block = block, r.n_blocks = 3;
    r.t0 = t0, r.tw = tw, r.t1 = t1;
    return r;
}

START_TEST(records_group_by_launch_in_order_of_start)
{
    /* two launches' blocks interleaved; the one with the larger grid id
     * started first, so it comes first */
    rl_cu_tl_rec r[5] = {
        rec(9, RL_TL_MVB, 0, 100, 150, 400),  rec(4, RL_TL_ROPE, 0, 420, 450, 500),
        rec(9, RL_TL_MVB, 1, 90, 160, 380),   rec(4, RL_TL_ROPE, 1, 410, 0, 470), /* left before its wait */
        rec(9, RL_TL_MVB, 2, 120, 140, 390),
    };
    r[0].mk[1] = 200, r[2].mk[1] = 260, r[4].mk[0] = 170;
    rl_cu_tl_launch *l;
    int n = rl_cu_tl_launches(r, 5, &l);
    ck_assert_int_eq(n, 2);
    ck_assert_uint_eq(l[0].tag, RL_TL_MVB);
    ck_assert_uint_eq(l[0].n_rec, 3);
    ck_assert_uint_eq(l[0].n_blocks, 3);
    ck_assert_uint_eq(l[0].t0, 90);
    ck_assert_uint_eq(l[0].tw_min, 140);
    ck_assert_uint_eq(l[0].tw_max, 160);
    ck_assert_uint_eq(l[0].t1_min, 380);
    ck_assert_uint_eq(l[0].t1_max, 400);
    ck_assert_uint_eq(l[0].mk_max[0], 170);
    ck_assert_uint_eq(l[0].mk_max[1], 260);
    ck_assert_uint_eq(l[0].mk_max[2], 0); /* no block reached it */
    ck_assert_uint_eq(l[1].tag, RL_TL_ROPE);
    ck_assert_uint_eq(l[1].n_rec, 2);
    ck_assert_uint_eq(l[1].t0, 410);
    ck_assert_uint_eq(l[1].tw_min, 450); /* the block that left before waiting does not count */
    ck_assert_uint_eq(l[1].tw_max, 450);
    ck_assert_uint_eq(l[1].t1_min, 470);
    ck_assert_uint_eq(l[1].t1_max, 500);
    free(l);
}
END_TEST

START_TEST(no_records_no_launches_and_the_input_is_left_alone)
{
    rl_cu_tl_launch *l = (rl_cu_tl_launch *)1;
    ck_assert_int_eq(rl_cu_tl_launches(NULL, 0, &l), 0);
    free(l);
    rl_cu_tl_rec r[2] = {rec(2, RL_TL_ATTN, 1, 10, 0, 20), rec(1, RL_TL_ARGMAX, 0, 5, 6, 7)};
    rl_cu_tl_rec copy[2];
    memcpy(copy, r, sizeof r);
    ck_assert_int_eq(rl_cu_tl_launches(r, 2, &l), 2);
    ck_assert_uint_eq(l[0].tag, RL_TL_ARGMAX);
    ck_assert_uint_eq(l[1].tw_min, 0); /* none of its blocks waited */
    ck_assert(memcmp(copy, r, sizeof r) == 0);
    free(l);
}
END_TEST

START_TEST(every_kind_has_a_name_and_others_are_unknown)
{
    for (uint32_t t = 1; t < RL_TL_N_TAGS; t++)
        ck_assert_str_ne(rl_cu_tl_tag_name(t), "?");
    ck_assert_str_eq(rl_cu_tl_tag_name(RL_TL_ATTN), "attn");
    ck_assert_str_eq(rl_cu_tl_tag_name(0), "?");
    ck_assert_str_eq(rl_cu_tl_tag_name(RL_TL_N_TAGS), "?");
    ck_assert_str_eq(rl_cu_tl_tag_name(0xffffffffu), "?");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cuda_tl");
    TCase *tc = tcase_create("timeline");
    tcase_add_test(tc, records_group_by_launch_in_order_of_start);
    tcase_add_test(tc, no_records_no_launches_and_the_input_is_left_alone);
    tcase_add_test(tc, every_kind_has_a_name_and_others_are_unknown);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
