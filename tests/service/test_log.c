/* test_log.c - console/journal selection, structured fields, levels. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rl_log.h"

/* Runs fn with stderr redirected to a temp file; returns what was written. */
static void capture(void (*fn)(void), char *out, size_t cap)
{
    char path[] = "/tmp/rl-log-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    ssize_t n = pread(fd, out, cap - 1, 0);
    out[n < 0 ? 0 : n] = '\0';
    close(fd);
}

static void log_fields(void)
{
    rl_log_set_target(RL_LOG_CONSOLE);
    rl_log_fields(LOG_WARNING, "client %d gone\nRL_CLIENT_PID=%d\nnot a field\nRL_REQUESTS=%u", 42, 42, 3u);
}

START_TEST(console_line_shows_level_message_and_fields)
{
    char out[1024];
    capture(log_fields, out, sizeof out);
    ck_assert_msg(strstr(out, "ringlmd[") == out, "out: %s", out);
    ck_assert_msg(strstr(out, "]: warning: client 42 gone\nnot a field [RL_CLIENT_PID=42 RL_REQUESTS=3]\n"),
                  "out: %s", out);
}
END_TEST

static void log_levels(void)
{
    rl_log_set_target(RL_LOG_CONSOLE);
    rl_log_set_level(LOG_NOTICE);
    rl_log(LOG_INFO, "hidden-info");
    rl_log(LOG_NOTICE, "shown-notice");
    rl_log(LOG_ERR, "shown-err");
}

START_TEST(messages_below_the_level_are_dropped)
{
    char out[1024];
    capture(log_levels, out, sizeof out);
    ck_assert_ptr_null(strstr(out, "hidden-info"));
    ck_assert_ptr_nonnull(strstr(out, "notice: shown-notice"));
    ck_assert_ptr_nonnull(strstr(out, "err: shown-err"));
}
END_TEST

static void log_plain_with_equals(void)
{
    rl_log_set_target(RL_LOG_CONSOLE);
    rl_log(LOG_INFO, "prompt was\nEVIL=1");
}

START_TEST(plain_log_never_turns_text_into_fields)
{
    char out[1024];
    capture(log_plain_with_equals, out, sizeof out);
    ck_assert_msg(strstr(out, "info: prompt was\nEVIL=1\n"), "out: %s", out);
    ck_assert_ptr_null(strstr(out, "[EVIL=1]"));
}
END_TEST

START_TEST(auto_target_is_journal_only_when_journal_stream_matches_stderr)
{
    char path[] = "/tmp/rl-log-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    dup2(fd, STDERR_FILENO);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    char v[64];
    snprintf(v, sizeof v, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", v, 1);
    ck_assert(rl_log_stderr_is_journal());
    rl_log_set_target(RL_LOG_AUTO);
    if (access("/run/systemd/journal/socket", W_OK) == 0)
        ck_assert_int_eq(rl_log_get_target(), RL_LOG_JOURNAL);
    else /* no journald here: falls back to the console */
        ck_assert_int_eq(rl_log_get_target(), RL_LOG_CONSOLE);
    snprintf(v, sizeof v, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino + 1);
    setenv("JOURNAL_STREAM", v, 1);
    ck_assert(!rl_log_stderr_is_journal());
    rl_log_set_target(RL_LOG_AUTO);
    ck_assert_int_eq(rl_log_get_target(), RL_LOG_CONSOLE);
    setenv("JOURNAL_STREAM", "garbage", 1);
    ck_assert(!rl_log_stderr_is_journal());
    unsetenv("JOURNAL_STREAM");
    rl_log_set_target(RL_LOG_AUTO);
    ck_assert_int_eq(rl_log_get_target(), RL_LOG_CONSOLE);
}
END_TEST

static void log_journal_unreachable(void)
{
    rl_log_set_target(RL_LOG_JOURNAL);
    rl_log_fields(LOG_ERR, "kept\nRL_MODEL=/m.gguf");
}

START_TEST(journal_target_falls_back_to_stderr_when_journald_is_absent)
{
    if (access("/run/systemd/journal/socket", F_OK) == 0) {
        printf("SKIP: journald is running here; fallback not observable\n");
        return;
    }
    char out[1024];
    capture(log_journal_unreachable, out, sizeof out);
    ck_assert_msg(strstr(out, "err: kept [RL_MODEL=/m.gguf]"), "out: %s", out);
}
END_TEST

START_TEST(level_names_parse)
{
    ck_assert_int_eq(rl_log_level_parse("err"), LOG_ERR);
    ck_assert_int_eq(rl_log_level_parse("error"), LOG_ERR);
    ck_assert_int_eq(rl_log_level_parse("WARNING"), LOG_WARNING);
    ck_assert_int_eq(rl_log_level_parse("warn"), LOG_WARNING);
    ck_assert_int_eq(rl_log_level_parse("debug"), LOG_DEBUG);
    ck_assert_int_eq(rl_log_level_parse("6"), LOG_INFO);
    ck_assert_int_eq(rl_log_level_parse("8"), -1);
    ck_assert_int_eq(rl_log_level_parse("loud"), -1);
    ck_assert_int_eq(rl_log_level_parse(""), -1);
    ck_assert_str_eq(rl_log_level_name(LOG_NOTICE), "notice");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("service-log");
    TCase *tc = tcase_create("log");
    tcase_add_test(tc, console_line_shows_level_message_and_fields);
    tcase_add_test(tc, messages_below_the_level_are_dropped);
    tcase_add_test(tc, plain_log_never_turns_text_into_fields);
    tcase_add_test(tc, auto_target_is_journal_only_when_journal_stream_matches_stderr);
    tcase_add_test(tc, journal_target_falls_back_to_stderr_when_journald_is_absent);
    tcase_add_test(tc, level_names_parse);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
