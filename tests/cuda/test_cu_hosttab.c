/* test_cu_hosttab.c - the table of registered host ranges (rl_cu_hosttab.c),
 * on the CPU: no CUDA needed, runs in every build. */
#include "rl_cu_hosttab.h"

#include <check.h>
#include <errno.h>
#include <stdlib.h>

static char mem[1 << 16];

START_TEST(lookup_maps_addresses_inside_a_range_to_its_device_base_plus_offset)
{
    rl_cu_hosttab t = {0};
    ck_assert_int_eq(rl_cu_hosttab_add(&t, mem + 4096, 8192, 0x100000), 0);
    ck_assert_uint_eq(rl_cu_hosttab_dev(&t, mem + 4096, 4), 0x100000);
    ck_assert_uint_eq(rl_cu_hosttab_dev(&t, mem + 4096 + 100, 4), 0x100000 + 100);
    ck_assert_uint_eq(rl_cu_hosttab_dev(&t, mem + 4096 + 8188, 4), 0x100000 + 8188);
    rl_cu_hosttab_free(&t);
}
END_TEST

START_TEST(lookup_outside_or_across_a_range_edge_is_zero)
{
    rl_cu_hosttab t = {0};
    ck_assert_int_eq(rl_cu_hosttab_add(&t, mem + 4096, 8192, 0x100000), 0);
    ck_assert_uint_eq(rl_cu_hosttab_dev(&t, mem + 4095, 4), 0);        /* before */
    ck_assert_uint_eq(rl_cu_hosttab_dev(&t, mem + 4096 + 8190, 4), 0); /* straddles the end */
    ck_assert_uint_eq(rl_cu_hosttab_dev(&t, mem + 4096 + 8192, 1), 0); /* just after */
    ck_assert_uint_eq(rl_cu_hosttab_dev(&t, mem + 4096, 0), 0);        /* empty */
    ck_assert_uint_eq(rl_cu_hosttab_dev(&t, NULL, 4), 0);
    ck_assert_uint_eq(rl_cu_hosttab_dev(NULL, mem + 4096, 4), 0);
    rl_cu_hosttab_free(&t);
}
END_TEST

START_TEST(many_ranges_added_out_of_order_are_each_found)
{
    rl_cu_hosttab t = {0};
    /* 32 ranges of 1 KiB with 1 KiB gaps, added in a scrambled order */
    for (int k = 0; k < 32; k++) {
        int i = (k * 13) % 32;
        ck_assert_int_eq(rl_cu_hosttab_add(&t, mem + 2048 * i, 1024, 0x10000000ull * (i + 1)), 0);
    }
    ck_assert_uint_eq(t.n, 32);
    for (int i = 0; i < 32; i++) {
        ck_assert_uint_eq(rl_cu_hosttab_dev(&t, mem + 2048 * i + 512, 8), 0x10000000ull * (i + 1) + 512);
        ck_assert_uint_eq(rl_cu_hosttab_dev(&t, mem + 2048 * i + 1024, 4), 0); /* the gap */
    }
    rl_cu_hosttab_free(&t);
}
END_TEST

START_TEST(overlapping_or_invalid_ranges_are_refused)
{
    rl_cu_hosttab t = {0};
    ck_assert_int_eq(rl_cu_hosttab_add(&t, mem + 4096, 4096, 0x1000), 0);
    ck_assert_int_eq(rl_cu_hosttab_add(&t, mem + 4096, 4096, 0x9000), -EEXIST);  /* same */
    ck_assert_int_eq(rl_cu_hosttab_add(&t, mem + 2048, 4096, 0x9000), -EEXIST);  /* tail overlaps */
    ck_assert_int_eq(rl_cu_hosttab_add(&t, mem + 8191, 100, 0x9000), -EEXIST);   /* head overlaps */
    ck_assert_int_eq(rl_cu_hosttab_add(&t, mem + 5000, 10, 0x9000), -EEXIST);    /* inside */
    ck_assert_int_eq(rl_cu_hosttab_add(&t, mem, 1 << 16, 0x9000), -EEXIST);      /* around */
    ck_assert_int_eq(rl_cu_hosttab_add(&t, mem + 8192, 4096, 0x9000), 0);        /* adjacent: fine */
    ck_assert_int_eq(rl_cu_hosttab_add(&t, mem + 2048, 2048, 0xA000), 0);        /* adjacent before */
    ck_assert_int_eq(rl_cu_hosttab_add(&t, mem, 0, 0x9000), -EINVAL);
    ck_assert_int_eq(rl_cu_hosttab_add(&t, NULL, 16, 0x9000), -EINVAL);
    ck_assert_int_eq(rl_cu_hosttab_add(&t, mem, 16, 0), -EINVAL);
    ck_assert_int_eq(rl_cu_hosttab_add(&t, (void *)(UINTPTR_MAX - 8), 64, 0x9000), -EINVAL);
    ck_assert_int_eq(rl_cu_hosttab_add(&t, mem + 40000, 64, UINT64_MAX - 8), -EINVAL);
    ck_assert_uint_eq(t.n, 3);
    rl_cu_hosttab_free(&t);
}
END_TEST

START_TEST(deleted_ranges_are_no_longer_found_and_others_stay)
{
    rl_cu_hosttab t = {0};
    ck_assert_int_eq(rl_cu_hosttab_add(&t, mem, 1024, 0x1000), 0);
    ck_assert_int_eq(rl_cu_hosttab_add(&t, mem + 2048, 1024, 0x5000), 0);
    ck_assert_int_eq(rl_cu_hosttab_add(&t, mem + 4096, 1024, 0x9000), 0);
    ck_assert_int_eq(rl_cu_hosttab_del(&t, mem + 2049, NULL), -ENOENT); /* not a base */
    rl_cu_hosttab_ent e;
    ck_assert_int_eq(rl_cu_hosttab_del(&t, mem + 2048, &e), 0);
    ck_assert_uint_eq(e.dev, 0x5000);
    ck_assert_uint_eq(e.len, 1024);
    ck_assert_int_eq(rl_cu_hosttab_del(&t, mem + 2048, NULL), -ENOENT); /* twice */
    ck_assert_uint_eq(rl_cu_hosttab_dev(&t, mem + 2048, 4), 0);
    ck_assert_uint_eq(rl_cu_hosttab_dev(&t, mem + 8, 4), 0x1008);
    ck_assert_uint_eq(rl_cu_hosttab_dev(&t, mem + 4100, 4), 0x9004);
    ck_assert_int_eq(rl_cu_hosttab_add(&t, mem + 2048, 2048, 0x7000), 0); /* the hole is free again */
    rl_cu_hosttab_free(&t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cuda_hosttab");
    TCase *tc = tcase_create("table");
    tcase_add_test(tc, lookup_maps_addresses_inside_a_range_to_its_device_base_plus_offset);
    tcase_add_test(tc, lookup_outside_or_across_a_range_edge_is_zero);
    tcase_add_test(tc, many_ranges_added_out_of_order_are_each_found);
    tcase_add_test(tc, overlapping_or_invalid_ranges_are_refused);
    tcase_add_test(tc, deleted_ranges_are_no_longer_found_and_others_stay);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
