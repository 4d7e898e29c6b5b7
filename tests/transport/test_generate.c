/* Basic request/response behaviour through the rings. */
#include "tt_util.h"

#include <check.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

static tt_daemon td;
static void setup(void) { tt_start(&td, 50); }
static void teardown(void) { tt_stop(&td); }

START_TEST(test_echo_text_prompt_streams_back)
{
    ringlm_conn *c = tt_connect(&td);
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(c, "hello ring", 10, NULL, &r), 0);
    tt_result res;
    ck_assert_int_eq(tt_collect(c, r, &res, 5000), 0);
    ck_assert_msg(res.final_type == RINGLM_EV_DONE, "final %d status %d: %s", res.final_type, res.status, res.msg);
    ck_assert_int_eq(res.finish, RINGLM_FINISH_EOS);
    ck_assert_str_eq(res.text, "hello ring");
    ck_assert_uint_eq(res.n_tokens, 10);
    ck_assert_uint_eq(res.timings.prompt_tokens, 11); /* BOS + 10 bytes */
    ck_assert_uint_eq(res.timings.gen_tokens, 11);    /* 10 bytes + EOS */
    ck_assert(res.timings.ttft_ms > 0);
    tt_result_free(&res);
    ringlm_close(c);
}
END_TEST

START_TEST(test_max_tokens_ends_with_length)
{
    ringlm_conn *c = tt_connect(&td);
    ringlm_params p;
    ringlm_params_default(&p);
    p.max_tokens = 4;
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(c, "abcdefgh", 8, &p, &r), 0);
    tt_result res;
    ck_assert_int_eq(tt_collect(c, r, &res, 5000), 0);
    ck_assert_int_eq(res.finish, RINGLM_FINISH_LENGTH);
    ck_assert_str_eq(res.text, "abcd");
    tt_result_free(&res);
    ringlm_close(c);
}
END_TEST

START_TEST(test_token_prompt_is_used_as_given)
{
    ringlm_conn *c = tt_connect(&td);
    int32_t ids[] = {'x', 'y', 'z'};
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_tokens(c, ids, 3, NULL, &r), 0);
    tt_result res;
    ck_assert_int_eq(tt_collect(c, r, &res, 5000), 0);
    ck_assert_str_eq(res.text, "xyz");
    ck_assert_uint_eq(res.timings.prompt_tokens, 3);
    tt_result_free(&res);
    ringlm_close(c);
}
END_TEST

START_TEST(test_chat_messages_are_rendered_by_the_engine)
{
    ringlm_conn *c = tt_connect(&td);
    ringlm_chat_msg m[] = {{"system", "be brief"}, {"user", "hi"}};
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_chat(c, m, 2, NULL, &r), 0);
    tt_result res;
    ck_assert_int_eq(tt_collect(c, r, &res, 5000), 0);
    ck_assert_str_eq(res.text, "<|system|>be brief\n<|user|>hi\n<|assistant|>");
    tt_result_free(&res);
    ringlm_close(c);
}
END_TEST

START_TEST(test_info_reports_the_engine)
{
    ringlm_conn *c = tt_connect(&td);
    ringlm_daemon_info in;
    ck_assert_int_eq(ringlm_info(c, &in, 5000), 0);
    ck_assert_str_eq(in.arch, "test");
    ck_assert_uint_eq(in.n_vocab, 258);
    ck_assert_int_eq(in.eos, 257);
    ck_assert_uint_eq(in.n_clients, 1);
    ringlm_close(c);
}
END_TEST

START_TEST(test_ping_round_trips)
{
    ringlm_conn *c = tt_connect(&td);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(ringlm_ping(c, 5000), 0);
    ringlm_close(c);
}
END_TEST

START_TEST(test_poll_without_events_returns_eagain)
{
    ringlm_conn *c = tt_connect(&td);
    ringlm_event ev;
    ck_assert_int_eq(ringlm_next(c, 0, &ev, 0), -EAGAIN);
    ck_assert_int_ge(ringlm_fd(c), 0);
    ringlm_close(c);
}
END_TEST

START_TEST(test_fd_in_an_application_poll_loop_delivers_everything)
{
    ringlm_conn *c = tt_connect(&td);
    const char *p = "__slow__ polled";
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(c, p, strlen(p), NULL, &r), 0);
    char text[64] = "";
    size_t n = 0;
    int done = 0, wakeups = 0;
    while (!done) {
        struct pollfd pf = {.fd = ringlm_fd(c), .events = POLLIN};
        ck_assert_int_eq(poll(&pf, 1, 5000), 1); /* never a lost wake-up */
        wakeups++;
        ringlm_event ev;
        int rc;
        while ((rc = ringlm_next(c, 0, &ev, 0)) == 0) {
            if (ev.type == RINGLM_EV_TOKENS) {
                memcpy(text + n, ev.text, ev.text_len);
                n += ev.text_len;
            } else {
                ck_assert_int_eq(ev.type, RINGLM_EV_DONE);
                done = 1;
            }
            ringlm_release(c, &ev);
        }
        ck_assert_int_eq(rc, -EAGAIN);
    }
    text[n] = 0;
    ck_assert_str_eq(text, p);
    ck_assert_int_gt(wakeups, 1);
    ringlm_close(c);
}
END_TEST

Suite *generate_suite(void);
Suite *generate_suite(void)
{
    Suite *s = suite_create("generate");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_echo_text_prompt_streams_back);
    tcase_add_test(tc, test_max_tokens_ends_with_length);
    tcase_add_test(tc, test_token_prompt_is_used_as_given);
    tcase_add_test(tc, test_chat_messages_are_rendered_by_the_engine);
    tcase_add_test(tc, test_info_reports_the_engine);
    tcase_add_test(tc, test_ping_round_trips);
    tcase_add_test(tc, test_poll_without_events_returns_eagain);
    tcase_add_test(tc, test_fd_in_an_application_poll_loop_delivers_everything);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(generate_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
