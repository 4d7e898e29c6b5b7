/* SPSC ring edges: empty, full, wrap-around of the free-running counters,
 * corrupt peer counters. */
#include "rl_ring.h"
#include "tt_main.h"

#include <string.h>

#define N 4u
typedef struct {
    rl_wire_ring_ctl ctl;
    uint32_t e[N];
} ring4;

static void make(ring4 *m, rl_ring *prod, rl_ring *cons, uint32_t start)
{
    memset(m, 0, sizeof *m);
    atomic_store(&m->ctl.head, start);
    atomic_store(&m->ctl.tail, start);
    rl_ring_init(prod, m, 0, N, sizeof(uint32_t), start);
    rl_ring_init(cons, m, 0, N, sizeof(uint32_t), start);
}

static void put(rl_ring *p, uint32_t v)
{
    *(uint32_t *)rl_ring_prod_slot(p, 0) = v;
    rl_ring_publish(p, 1);
}

static uint32_t get(rl_ring *c)
{
    uint32_t v = *(const uint32_t *)rl_ring_cons_slot(c, 0);
    rl_ring_consume(c, 1);
    return v;
}

START_TEST(test_empty_ring_has_nothing_and_full_space)
{
    ring4 m;
    rl_ring p, c;
    make(&m, &p, &c, 0);
    ck_assert_int_eq(rl_ring_avail(&c), 0);
    ck_assert_int_eq(rl_ring_space(&p), N);
}
END_TEST

START_TEST(test_full_ring_has_no_space)
{
    ring4 m;
    rl_ring p, c;
    make(&m, &p, &c, 0);
    for (uint32_t i = 0; i < N; i++)
        put(&p, i);
    ck_assert_int_eq(rl_ring_space(&p), 0);
    ck_assert_int_eq(rl_ring_avail(&c), N);
    ck_assert_uint_eq(get(&c), 0);
    ck_assert_int_eq(rl_ring_space(&p), 1);
}
END_TEST

START_TEST(test_counters_wrap_around_uint32)
{
    ring4 m;
    rl_ring p, c;
    make(&m, &p, &c, UINT32_MAX - 5);
    for (uint32_t i = 0; i < 40; i++) { /* crosses 2^32 and the array end many times */
        put(&p, i);
        put(&p, i + 1000);
        ck_assert_int_eq(rl_ring_avail(&c), 2);
        ck_assert_uint_eq(get(&c), i);
        ck_assert_uint_eq(get(&c), i + 1000);
        ck_assert_int_eq(rl_ring_avail(&c), 0);
        ck_assert_int_eq(rl_ring_space(&p), N);
    }
}
END_TEST

START_TEST(test_tail_beyond_head_plus_size_is_corrupt)
{
    ring4 m;
    rl_ring p, c;
    make(&m, &p, &c, 7);
    atomic_store(&m.ctl.tail, 7 + N + 1);
    ck_assert_int_eq(rl_ring_avail(&c), RL_RING_CORRUPT);
    atomic_store(&m.ctl.tail, 6); /* behind the consumer */
    ck_assert_int_eq(rl_ring_avail(&c), RL_RING_CORRUPT);
}
END_TEST

START_TEST(test_head_ahead_of_tail_is_corrupt)
{
    ring4 m;
    rl_ring p, c;
    make(&m, &p, &c, 0);
    put(&p, 1);
    atomic_store(&m.ctl.head, 2);
    ck_assert_int_eq(rl_ring_space(&p), RL_RING_CORRUPT);
}
END_TEST

START_TEST(test_sleeping_consumer_gets_exactly_one_bell)
{
    ring4 m;
    rl_ring p, c;
    make(&m, &p, &c, 0);
    ck_assert_int_eq(rl_ring_arm(&c), 0);
    put(&p, 1);
    ck_assert_int_eq(rl_ring_needs_bell(&p), 1);
    put(&p, 2);
    ck_assert_int_eq(rl_ring_needs_bell(&p), 0); /* flag cleared by the first */
    ck_assert_int_eq(rl_ring_arm(&c), 2);        /* re-check sees the entries */
    rl_ring_disarm(&c);
    put(&p, 3);
    ck_assert_int_eq(rl_ring_needs_bell(&p), 0);
}
END_TEST

static Suite *ring_suite(void)
{
    Suite *s = suite_create("ring");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_empty_ring_has_nothing_and_full_space);
    tcase_add_test(tc, test_full_ring_has_no_space);
    tcase_add_test(tc, test_counters_wrap_around_uint32);
    tcase_add_test(tc, test_tail_beyond_head_plus_size_is_corrupt);
    tcase_add_test(tc, test_head_ahead_of_tail_is_corrupt);
    tcase_add_test(tc, test_sleeping_consumer_gets_exactly_one_bell);
    suite_add_tcase(s, tc);
    return s;
}
TT_MAIN(ring_suite)
