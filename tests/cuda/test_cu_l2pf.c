/* test_cu_l2pf.c - L2 prefetch ranges over a matrix's leading rows
 * (rl_cu_l2pf.c), on the CPU: no CUDA needed, runs in every build. The
 * addresses are never dereferenced, so a host buffer stands in for the
 * device planes. */
#include "rl_cu_l2pf.h"

#include <check.h>
#include <stdint.h>
#include <string.h>

static _Alignas(64) uint8_t qbuf[1 << 16], dbuf[1 << 12];

static rl_cu_l2pf_mat mat(int64_t rows, int64_t ld, int64_t d_row)
{
    rl_cu_l2pf_mat m = {.q = qbuf, .d = d_row ? dbuf : NULL, .rows = rows, .ld = ld, .d_row = d_row};
    return m;
}

START_TEST(halves_take_the_same_leading_rows_of_each_plane)
{
    rl_cu_l2pf pf;
    memset(&pf, 0, sizeof pf);
    rl_cu_l2pf_mat m = mat(64, 144, 16); /* 32 gate rows then 32 up rows */
    int64_t budget = 10 * (144 + 16);    /* 5 rows of each half */
    ck_assert_int_eq(rl_cu_l2pf_rows(&pf, &m, true, &budget), 4);
    ck_assert_int_eq(rl_cu_l2pf_count(&pf), 4);
    ck_assert_ptr_eq(pf.a[0], qbuf);
    ck_assert_uint_eq(pf.n[0], 5 * 144);
    ck_assert_ptr_eq(pf.a[1], dbuf);
    ck_assert_uint_eq(pf.n[1], 5 * 16);
    ck_assert_ptr_eq(pf.a[2], qbuf + 32 * 144); /* the up half's first row */
    ck_assert_uint_eq(pf.n[2], 5 * 144);
    ck_assert_ptr_eq(pf.a[3], dbuf + 32 * 16);
    ck_assert_uint_eq(pf.n[3], 5 * 16);
    ck_assert_int_eq(budget, 0);
}
END_TEST

START_TEST(budget_bounds_rows_and_what_is_left_carries_on)
{
    rl_cu_l2pf pf;
    memset(&pf, 0, sizeof pf);
    rl_cu_l2pf_mat a = mat(8, 256, 0), b = mat(100, 64, 0);
    int64_t budget = 10 * 256 + 10 * 64 + 5; /* all of a, then 10 rows of b */
    ck_assert_int_eq(rl_cu_l2pf_rows(&pf, &a, false, &budget), 1);
    ck_assert_uint_eq(pf.n[0], 8 * 256); /* capped at the matrix */
    ck_assert_int_eq(budget, 2 * 256 + 10 * 64 + 5);
    ck_assert_int_eq(rl_cu_l2pf_rows(&pf, &b, false, &budget), 1);
    ck_assert_uint_eq(pf.n[1], 18 * 64);
    ck_assert_int_eq(budget, 5);
    /* a positive budget still takes one row; an exhausted one takes none */
    rl_cu_l2pf_mat c = mat(4, 32, 0);
    ck_assert_int_eq(rl_cu_l2pf_rows(&pf, &c, false, &budget), 1);
    ck_assert_uint_eq(pf.n[2], 32);
    ck_assert_int_le(budget, 0);
    ck_assert_int_eq(rl_cu_l2pf_rows(&pf, &c, false, &budget), 0);
    ck_assert_int_eq(rl_cu_l2pf_count(&pf), 3);
}
END_TEST

START_TEST(ranges_keep_to_16_byte_bounds)
{
    rl_cu_l2pf pf;
    memset(&pf, 0, sizeof pf);
    rl_cu_l2pf_mat m = mat(10, 40, 0);
    m.q = qbuf + 4; /* a start off the bound: rounded up, the end down */
    int64_t budget = 3 * 40;
    ck_assert_int_eq(rl_cu_l2pf_rows(&pf, &m, false, &budget), 1);
    ck_assert_ptr_eq(pf.a[0], qbuf + 16);
    ck_assert_uint_eq(pf.n[0], 96); /* [16, 112) of [4, 124) */
    ck_assert_uint_eq((uintptr_t)pf.a[0] % 16, 0);
    ck_assert_uint_eq(pf.n[0] % 16, 0);
    /* a range with no whole 16 bytes inside is left out, not kept empty */
    rl_cu_l2pf_mat t = mat(10, 8, 0);
    t.q = qbuf + 1;
    budget = 8;
    ck_assert_int_eq(rl_cu_l2pf_rows(&pf, &t, false, &budget), 0);
    ck_assert_int_eq(rl_cu_l2pf_count(&pf), 1);
}
END_TEST

START_TEST(no_room_or_bad_shapes_change_nothing)
{
    rl_cu_l2pf pf;
    memset(&pf, 0, sizeof pf);
    rl_cu_l2pf_mat m = mat(64, 144, 16);
    int64_t budget = 1 << 20;
    ck_assert_int_eq(rl_cu_l2pf_rows(&pf, &m, true, &budget), 4);
    ck_assert_int_eq(rl_cu_l2pf_rows(&pf, &m, false, &budget), 2); /* 6 of 6 */
    rl_cu_l2pf keep = pf;
    int64_t before = budget;
    ck_assert_int_eq(rl_cu_l2pf_rows(&pf, &m, false, &budget), -1); /* full */
    rl_cu_l2pf_mat odd = mat(63, 144, 16), none = mat(8, 0, 0), noq = mat(8, 16, 0);
    noq.q = NULL;
    rl_cu_l2pf fresh;
    memset(&fresh, 0, sizeof fresh);
    ck_assert_int_eq(rl_cu_l2pf_rows(&fresh, &odd, true, &budget), -1); /* halves of an odd count */
    ck_assert_int_eq(rl_cu_l2pf_rows(&fresh, &none, false, &budget), -1);
    ck_assert_int_eq(rl_cu_l2pf_rows(&fresh, &noq, false, &budget), -1);
    ck_assert_int_eq(rl_cu_l2pf_rows(NULL, &m, false, &budget), -1);
    ck_assert_int_eq(rl_cu_l2pf_count(&fresh), 0);
    ck_assert_int_eq(budget, before);
    ck_assert_int_eq(memcmp(&keep, &pf, sizeof pf), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cuda_l2pf");
    TCase *tc = tcase_create("ranges");
    tcase_add_test(tc, halves_take_the_same_leading_rows_of_each_plane);
    tcase_add_test(tc, budget_bounds_rows_and_what_is_left_carries_on);
    tcase_add_test(tc, ranges_keep_to_16_byte_bounds);
    tcase_add_test(tc, no_room_or_bad_shapes_change_nothing);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
