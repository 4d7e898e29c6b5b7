/* test_batch_sched.c - the scheduling policy alone: step order and limits. */
#include <check.h>
#include <errno.h>
#include <string.h>

#include "rl_sched.h"

static const int A, B, C; /* client identities */

START_TEST(order_is_round_robin_across_clients)
{
    /* A floods with 5 requests, then B and C each send one */
    rl_sched_ent e[7];
    const void *who[7] = {&A, &A, &A, &A, &A, &B, &C};
    for (uint32_t i = 0; i < 7; i++)
        e[i] = (rl_sched_ent){.client = who[i], .index = i};
    rl_sched_order(e, 7, 0);
    /* round 0: A, B, C; then the rest of A in order */
    const uint32_t want[7] = {0, 5, 6, 1, 2, 3, 4};
    for (int i = 0; i < 7; i++)
        ck_assert_uint_eq(e[i].index, want[i]);
}
END_TEST

START_TEST(order_rotates_the_first_client)
{
    rl_sched_ent e[3];
    const void *who[3] = {&A, &B, &C};
    for (uint32_t i = 0; i < 3; i++)
        e[i] = (rl_sched_ent){.client = who[i], .index = i};
    rl_sched_order(e, 3, 1);
    ck_assert_uint_eq(e[0].index, 1);
    ck_assert_uint_eq(e[1].index, 2);
    ck_assert_uint_eq(e[2].index, 0);
}
END_TEST

START_TEST(order_puts_latency_critical_first)
{
    rl_sched_ent e[4];
    const void *who[4] = {&A, &A, &B, &A};
    const uint8_t pr[4] = {0, 0, 0, 2};
    for (uint32_t i = 0; i < 4; i++)
        e[i] = (rl_sched_ent){.client = who[i], .priority = pr[i], .index = i};
    rl_sched_order(e, 4, 0);
    ck_assert_uint_eq(e[0].index, 3);
    ck_assert_uint_eq(e[0].priority, 2);
    for (int i = 1; i < 4; i++)
        ck_assert_uint_eq(e[i].priority, 0);
}
END_TEST

START_TEST(admit_limits_queue_and_kv_per_client)
{
    rl_sched_limits lim = {.max_queued = 2, .max_kv_tokens = 100};
    char m[128];
    ck_assert_int_eq(rl_sched_admit(&lim, &(rl_sched_usage){0, 0}, 80, m, sizeof m), 0);
    ck_assert_int_eq(rl_sched_admit(&lim, &(rl_sched_usage){1, 80}, 20, m, sizeof m), 0);
    ck_assert_int_eq(rl_sched_admit(&lim, &(rl_sched_usage){1, 80}, 21, m, sizeof m), -EDQUOT);
    ck_assert_ptr_nonnull(strstr(m, "quota"));
    ck_assert_int_eq(rl_sched_admit(&lim, &(rl_sched_usage){2, 10}, 1, m, sizeof m), -EAGAIN);
    ck_assert_ptr_nonnull(strstr(m, "limit 2"));
    /* a lone request larger than the quota still runs (else it never could) */
    ck_assert_int_eq(rl_sched_admit(&lim, &(rl_sched_usage){0, 0}, 500, m, sizeof m), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("batch_sched");
    TCase *tc = tcase_create("sched");
    tcase_add_test(tc, order_is_round_robin_across_clients);
    tcase_add_test(tc, order_rotates_the_first_client);
    tcase_add_test(tc, order_puts_latency_critical_first);
    tcase_add_test(tc, admit_limits_queue_and_kv_per_client);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
