/* UTF-8 streaming and stop strings: unit level and end to end. */
#include "rl_req.h"
#include "tt_main.h"
#include "tt_util.h"

#include <string.h>

START_TEST(test_utf8_stream_never_splits_a_character)
{
    const char *s = "a\xc3\xa9\xe6\x97\xa5\xf0\x9f\x8e\x89z"; /* a é 日 🎉 z */
    rl_req_utf8_stream st = {0};
    char out[64], all[64];
    size_t n_all = 0;
    for (size_t i = 0; i < strlen(s); i++) {
        size_t k = rl_req_utf8_feed(&st, s + i, 1, out);
        ck_assert(rl_req_utf8_valid((const uint8_t *)out, k));
        memcpy(all + n_all, out, k);
        n_all += k;
    }
    n_all += rl_req_utf8_finish(&st, all + n_all);
    ck_assert_uint_eq(n_all, strlen(s));
    ck_assert(memcmp(all, s, n_all) == 0);
}
END_TEST

START_TEST(test_utf8_stream_replaces_invalid_bytes)
{
    rl_req_utf8_stream st = {0};
    char out[64];
    size_t k = rl_req_utf8_feed(&st, "\xff" "a\xc3(", 4, out);
    ck_assert(rl_req_utf8_valid((const uint8_t *)out, k));
    ck_assert_uint_eq(k, 3 + 1 + 3 + 1); /* U+FFFD a U+FFFD ( */
    k = rl_req_utf8_feed(&st, "\xe6\x97", 2, out);
    ck_assert_uint_eq(k, 0); /* waits for the last byte */
    ck_assert_uint_eq(rl_req_utf8_finish(&st, out), 3);
}
END_TEST

START_TEST(test_stop_scan_holds_back_a_possible_prefix)
{
    const char *stop[] = {"STOP"};
    uint32_t len[] = {4};
    size_t emit;
    ck_assert(!rl_req_stop_scan("hello ST", 8, stop, len, 1, &emit));
    ck_assert_uint_eq(emit, 6);
    ck_assert(rl_req_stop_scan("hello STOP x", 12, stop, len, 1, &emit));
    ck_assert_uint_eq(emit, 6);
    ck_assert(!rl_req_stop_scan("hello STx", 9, stop, len, 1, &emit));
    ck_assert_uint_eq(emit, 9);
}
END_TEST

static tt_daemon td;
static void setup(void) { tt_start(&td, 50); }
static void teardown(void) { tt_stop(&td); }

START_TEST(test_streamed_events_carry_whole_utf8_characters)
{
    ringlm_conn *c = tt_connect(&td);
    const char *p = "h\xc3\xa9llo w\xc3\xb6rld \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x8e\x89!";
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(c, p, strlen(p), NULL, &r), 0);
    char all[128];
    size_t n = 0;
    for (;;) {
        ringlm_event ev;
        ck_assert_int_eq(ringlm_next(c, r, &ev, 5000), 0);
        if (ev.type != RINGLM_EV_TOKENS) {
            ck_assert_int_eq(ev.type, RINGLM_EV_DONE);
            ringlm_release(c, &ev);
            break;
        }
        ck_assert_msg(rl_req_utf8_valid((const uint8_t *)ev.text, ev.text_len), "event splits a character");
        memcpy(all + n, ev.text, ev.text_len);
        n += ev.text_len;
        ringlm_release(c, &ev);
    }
    ck_assert_uint_eq(n, strlen(p));
    ck_assert(memcmp(all, p, n) == 0);
    ringlm_close(c);
}
END_TEST

static void run_stop(const char *prompt, const char *stop, const char *want, int finish)
{
    ringlm_conn *c = tt_connect(&td);
    ringlm_params pr;
    ringlm_params_default(&pr);
    const char *stops[] = {"never-there", stop};
    pr.stop = stops;
    pr.n_stop = 2;
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(c, prompt, strlen(prompt), &pr, &r), 0);
    tt_result res;
    ck_assert_int_eq(tt_collect(c, r, &res, 5000), 0);
    ck_assert_int_eq(res.final_type, RINGLM_EV_DONE);
    ck_assert_str_eq(res.text, want);
    ck_assert_int_eq(res.finish, finish);
    tt_result_free(&res);
    ringlm_close(c);
}

START_TEST(test_stop_string_ends_text_before_it)
{
    run_stop("hello STOP world", "STOP", "hello ", RINGLM_FINISH_STOP);
}
END_TEST

START_TEST(test_partial_stop_string_is_released_at_the_end)
{
    run_stop("hello STO", "STOP", "hello STO", RINGLM_FINISH_EOS);
}
END_TEST

START_TEST(test_multibyte_stop_string_matches)
{
    run_stop("caf\xc3\xa9 \xe6\x97\xa5 rest", "\xe6\x97\xa5", "caf\xc3\xa9 ", RINGLM_FINISH_STOP);
}
END_TEST

static Suite *text_suite(void)
{
    Suite *s = suite_create("text");
    TCase *tu = tcase_create("unit");
    tcase_add_test(tu, test_utf8_stream_never_splits_a_character);
    tcase_add_test(tu, test_utf8_stream_replaces_invalid_bytes);
    tcase_add_test(tu, test_stop_scan_holds_back_a_possible_prefix);
    suite_add_tcase(s, tu);
    TCase *tc = tcase_create("daemon");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_streamed_events_carry_whole_utf8_characters);
    tcase_add_test(tc, test_stop_string_ends_text_before_it);
    tcase_add_test(tc, test_partial_stop_string_is_released_at_the_end);
    tcase_add_test(tc, test_multibyte_stop_string_matches);
    suite_add_tcase(s, tc);
    return s;
}
TT_MAIN(text_suite)
