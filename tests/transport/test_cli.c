/* The ringlm command line tool against a daemon (path in $RINGLM_CLI). */
#include "tt_main.h"
#include "tt_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static tt_daemon td;
static void setup(void) { tt_start(&td, 50); }
static void teardown(void) { tt_stop(&td); }

/* Run the CLI with args (and optional stdin text); returns exit status, output in out. */
static int run_cli(const char *args, const char *input, char *out, size_t cap)
{
    const char *cli = getenv("RINGLM_CLI");
    ck_assert_msg(cli != NULL, "RINGLM_CLI not set");
    char in_path[] = "/tmp/ringlm-cli-in-XXXXXX";
    int fd = mkstemp(in_path);
    ck_assert_int_ge(fd, 0);
    if (input)
        ck_assert_int_eq(write(fd, input, strlen(input)), (ssize_t)strlen(input));
    close(fd);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s --socket %s %s < %s 2>/dev/null", cli, td.sock, args, in_path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    unlink(in_path);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(test_generate_prints_the_streamed_text)
{
    char out[256];
    ck_assert_int_eq(run_cli("generate -n 100 --temp 0 --seed 7 'h\xc3\xa9llo cli'", NULL, out, sizeof out), 0);
    ck_assert_str_eq(out, "h\xc3\xa9llo cli\n");
}
END_TEST

START_TEST(test_generate_honours_max_tokens)
{
    char out[256];
    ck_assert_int_eq(run_cli("generate -n 3 abcdef", NULL, out, sizeof out), 0);
    ck_assert_str_eq(out, "abc\n");
}
END_TEST

START_TEST(test_rejected_sampling_value_fails_the_command)
{
    char out[256];
    ck_assert_int_eq(run_cli("generate --top-p 2 abc", NULL, out, sizeof out), 1);
}
END_TEST

START_TEST(test_info_json_describes_the_engine)
{
    char out[1024];
    ck_assert_int_eq(run_cli("info --json", NULL, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "\"arch\":\"test\""));
    ck_assert_ptr_nonnull(strstr(out, "\"n_vocab\":258"));
    ck_assert_int_eq(out[0], '{');
}
END_TEST

START_TEST(test_chat_keeps_the_history)
{
    char out[1024];
    ck_assert_int_eq(run_cli("chat -n 400", "one\ntwo\n", out, sizeof out), 0);
    /* The test engine echoes the rendered conversation: the second answer holds
     * the first exchange. */
    ck_assert_ptr_nonnull(strstr(out, "<|user|>one\n<|assistant|><|user|>one\n<|assistant|>\n<|user|>two\n"));
}
END_TEST

START_TEST(test_missing_daemon_is_a_clear_failure)
{
    const char *cli = getenv("RINGLM_CLI");
    ck_assert_ptr_nonnull(cli);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s --socket /nonexistent/ringlm.sock info 2>&1", cli);
    FILE *p = popen(cmd, "r");
    char out[512];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int st = pclose(p);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    ck_assert_ptr_nonnull(strstr(out, "connect"));
}
END_TEST

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_generate_prints_the_streamed_text);
    tcase_add_test(tc, test_generate_honours_max_tokens);
    tcase_add_test(tc, test_rejected_sampling_value_fails_the_command);
    tcase_add_test(tc, test_info_json_describes_the_engine);
    tcase_add_test(tc, test_chat_keeps_the_history);
    tcase_add_test(tc, test_missing_daemon_is_a_clear_failure);
    suite_add_tcase(s, tc);
    return s;
}
TT_MAIN(cli_suite)
