/* RINGLM_TRACE_TTFT: the daemon's time-to-first-token spans (rl_worker_trace.h). */
#include "rl_log.h"
#include "rl_worker_trace.h"
#include "tt_util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* stderr goes to a temporary file until log_end, which returns its text. */
static int g_saved = -1;
static FILE *g_log;

static void log_begin(void)
{
    g_log = tmpfile();
    ck_assert_ptr_nonnull(g_log);
    fflush(stderr);
    g_saved = dup(STDERR_FILENO);
    ck_assert_int_ge(g_saved, 0);
    ck_assert_int_ge(dup2(fileno(g_log), STDERR_FILENO), 0);
    rl_log_set_target(RL_LOG_CONSOLE);
}

static char *log_end(void)
{
    fflush(stderr);
    dup2(g_saved, STDERR_FILENO);
    close(g_saved);
    static char text[16384];
    rewind(g_log);
    size_t n = fread(text, 1, sizeof text - 1, g_log);
    text[n] = 0;
    fclose(g_log);
    return text;
}

START_TEST(trace_is_off_unless_asked)
{
    unsetenv("RINGLM_TRACE_TTFT");
    ck_assert_ptr_null(rl_worker_trace_new());
    setenv("RINGLM_TRACE_TTFT", "0", 1);
    ck_assert_ptr_null(rl_worker_trace_new());
    rl_worker_trace_add(NULL, &(rl_ttft_stamps){0}, 1); /* off: calls do nothing */
    rl_worker_trace_free(NULL);
}
END_TEST

START_TEST(trace_reports_median_and_p90_of_each_span)
{
    setenv("RINGLM_TRACE_TTFT", "1", 1);
    rl_log_set_level(LOG_INFO);
    log_begin();
    rl_worker_trace *t = rl_worker_trace_new();
    ck_assert_ptr_nonnull(t);
    /* prefill spans of 10, 40 and 50 us (in nanoseconds from step0 to first) */
    const uint64_t prefill_ns[3] = {10000, 40000, 50000};
    for (int i = 0; i < 3; i++) {
        rl_ttft_stamps s = {.seen = 1000, .recv = 3000, .pick = 4000, .step0 = 5000, .steps = 1};
        s.stepn = s.step0;
        s.first = s.step0 + prefill_ns[i];
        s.posted = s.first + 2000;
        rl_worker_trace_add(t, &s, (uint32_t)i + 1);
    }
    rl_worker_trace_free(t); /* reports the three */
    char *text = log_end();
    rl_log_set_level(LOG_WARNING);
    ck_assert_msg(strstr(text, "ttft trace, requests 1-3"), "log: %s", text);
    ck_assert_msg(strstr(text, "decode+tokenize 2.0/2.0"), "log: %s", text);
    ck_assert_msg(strstr(text, "prefill 40.0/50.0"), "log: %s", text);
    ck_assert_msg(strstr(text, "publish 2.0/2.0"), "log: %s", text);
    ck_assert_msg(strstr(text, "total 46.0/56.0"), "log: %s", text);
}
END_TEST

START_TEST(daemon_traces_each_served_request)
{
    setenv("RINGLM_TRACE_TTFT", "1", 1);
    tt_daemon td;
    tt_start(&td, 50);
    rl_log_set_level(LOG_INFO);
    log_begin();
    ringlm_conn *c = tt_connect(&td);
    for (int i = 0; i < 3; i++) {
        ringlm_req r;
        ck_assert_int_eq(ringlm_submit_text(c, "abc", 3, NULL, &r), 0);
        tt_result res;
        ck_assert_int_eq(tt_collect(c, r, &res, 5000), 0);
        ck_assert_str_eq(res.text, "abc");
        tt_result_free(&res);
    }
    ringlm_close(c);
    tt_stop(&td); /* the worker reports what it holds when it stops */
    char *text = log_end();
    rl_log_set_level(LOG_WARNING);
    unsetenv("RINGLM_TRACE_TTFT");
    ck_assert_msg(strstr(text, "ttft trace, requests 1-3, p50/p90 us:"), "log: %s", text);
    ck_assert_msg(strstr(text, "prefill steps <= 1"), "log: %s", text);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("transport_trace");
    TCase *tc = tcase_create("trace");
    tcase_add_test(tc, trace_is_off_unless_asked);
    tcase_add_test(tc, trace_reports_median_and_p90_of_each_span);
    tcase_add_test(tc, daemon_traces_each_served_request);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
