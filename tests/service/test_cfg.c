/* test_cfg.c - the configuration file parser. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rl_cfg.h"
#include "rl_log.h"

static int parse(rl_cfg *c, const char *text, char *err, size_t n)
{
    return rl_cfg_parse(c, text, strlen(text), err, n);
}

START_TEST(defaults_match_the_documented_values)
{
    rl_cfg c;
    rl_cfg_defaults(&c);
    ck_assert_str_eq(c.model, "");
    ck_assert_str_eq(c.socket, RL_DEFAULT_SOCKET);
    ck_assert_uint_eq(c.threads, 0);
    ck_assert_int_eq(c.device, RL_DEVICE_CPU);
    ck_assert_uint_eq(c.spin_window_us, 50);
    ck_assert_uint_eq(c.shutdown_deadline_us, 10000000);
    ck_assert_uint_eq(c.max_clients, 64);
    ck_assert_int_eq(c.log_level, LOG_INFO);
    ck_assert_uint_eq(c.step_tokens, 512);
    ck_assert_uint_eq(c.kv_mb, 0);
    ck_assert_uint_eq(c.client_queue, 1024);
    ck_assert_uint_eq(c.client_kv, 0);
    ck_assert(!c.kv_q8);
    ck_assert_int_eq(c.prefill_weights, RL_PW_AUTO);
    char v[64];
    ck_assert_int_gt(rl_cfg_format(&c, "prefill_weights", v, sizeof v), 0);
    ck_assert_str_eq(v, "auto");
}
END_TEST

START_TEST(every_key_is_parsed)
{
    rl_cfg c;
    rl_cfg_defaults(&c);
    char err[256] = "";
    int rc = parse(&c,
                   "# comment\n"
                   "; another\n"
                   "\n"
                   "model = /m/x.gguf\n"
                   "  socket=/tmp/s.sock  \r\n"
                   "threads = 3\n"
                   "device = cuda\n"
                   "spin_window = 2ms\n"
                   "shutdown_deadline = 3\n"
                   "max_clients = 7\n"
                   "log_level = debug",
                   err, sizeof err);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, err);
    ck_assert_str_eq(c.model, "/m/x.gguf");
    ck_assert_str_eq(c.socket, "/tmp/s.sock");
    ck_assert_uint_eq(c.threads, 3);
    ck_assert_int_eq(c.device, RL_DEVICE_CUDA);
    ck_assert_uint_eq(c.spin_window_us, 2000);
    ck_assert_uint_eq(c.shutdown_deadline_us, 3000000);
    ck_assert_uint_eq(c.max_clients, 7);
    ck_assert_int_eq(c.log_level, LOG_DEBUG);
}
END_TEST

START_TEST(batching_keys_are_parsed_and_formatted)
{
    rl_cfg c;
    rl_cfg_defaults(&c);
    char err[256] = "";
    int rc = parse(&c,
                   "step_tokens = 8192\n"
                   "kv_mb = 1048576\n"
                   "client_queue = 1\n"
                   "client_kv = \"4294967295\"\n"
                   "kv_type = q8_0\n",
                   err, sizeof err);
    ck_assert_msg(rc == 0, "rc %d: %s", rc, err);
    ck_assert_uint_eq(c.step_tokens, 8192);
    ck_assert_uint_eq(c.kv_mb, 1048576);
    ck_assert_uint_eq(c.client_queue, 1);
    ck_assert_uint_eq(c.client_kv, 4294967295u);
    char v[64];
    ck_assert_int_gt(rl_cfg_format(&c, "kv_mb", v, sizeof v), 0);
    ck_assert_str_eq(v, "1048576");
    ck_assert_int_gt(rl_cfg_format(&c, "client_kv", v, sizeof v), 0);
    ck_assert_str_eq(v, "4294967295");
    ck_assert(c.kv_q8);
    ck_assert_int_gt(rl_cfg_format(&c, "kv_type", v, sizeof v), 0);
    ck_assert_str_eq(v, "q8_0");
    ck_assert_int_eq(parse(&c, "kv_type = f16\n", err, sizeof err), 0);
    ck_assert(!c.kv_q8);
    ck_assert_int_gt(rl_cfg_format(&c, "kv_type", v, sizeof v), 0);
    ck_assert_str_eq(v, "f16");
    /* 0 means "the engine's default" / "half the pool" and is accepted */
    ck_assert_int_eq(parse(&c, "step_tokens = 0\nkv_mb = 0\nclient_kv = 0\n", err, sizeof err), 0);
    ck_assert_uint_eq(c.step_tokens, 0);
    ck_assert_uint_eq(c.kv_mb, 0);
    ck_assert_uint_eq(c.client_kv, 0);
}
END_TEST

START_TEST(prefill_weights_parses_its_three_values_and_round_trips)
{
    /* rl_cuda_opts.w16 takes these numbers as rl_cu_w16_mode: AUTO 0, OFF 1, ON 2 */
    ck_assert_int_eq(RL_PW_AUTO, 0);
    ck_assert_int_eq(RL_PW_QUANTIZED, 1);
    ck_assert_int_eq(RL_PW_F16, 2);
    static const struct {
        const char *text;
        rl_prefill_weights pw;
        rl_prefill_weights other; /* the value before: the parse must change it */
    } ok[] = {
        {"f16", RL_PW_F16, RL_PW_AUTO},
        {"quantized", RL_PW_QUANTIZED, RL_PW_F16},
        {"auto", RL_PW_AUTO, RL_PW_QUANTIZED},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        rl_cfg c;
        rl_cfg_defaults(&c);
        c.prefill_weights = ok[i].other;
        char line[64], err[256] = "", v[64];
        snprintf(line, sizeof line, "prefill_weights = %s\n", ok[i].text);
        int rc = parse(&c, line, err, sizeof err);
        ck_assert_msg(rc == 0, "'%s': rc %d: %s", ok[i].text, rc, err);
        ck_assert_int_eq(c.prefill_weights, ok[i].pw);
        /* the getter writes what the file says, and that sets the same value */
        ck_assert_int_eq(rl_cfg_format(&c, "prefill_weights", v, sizeof v), (int)strlen(ok[i].text));
        ck_assert_str_eq(v, ok[i].text);
        ck_assert_str_eq(rl_cfg_prefill_weights_name(ok[i].pw), ok[i].text);
        rl_cfg d;
        rl_cfg_defaults(&d);
        d.prefill_weights = ok[i].other;
        ck_assert_int_eq(rl_cfg_set(&d, "prefill_weights", v, err, sizeof err), 0);
        ck_assert_uint_eq(rl_cfg_diff(&c, &d, NULL, NULL), 0);
        /* the parser of ringlmd --prefill-weights */
        rl_prefill_weights pw = ok[i].other;
        ck_assert_int_eq(rl_cfg_prefill_weights(ok[i].text, &pw), 0);
        ck_assert_int_eq(pw, ok[i].pw);
    }
    rl_prefill_weights pw = RL_PW_QUANTIZED;
    ck_assert_int_eq(rl_cfg_prefill_weights("fp16", &pw), -EINVAL);
    ck_assert_int_eq(rl_cfg_prefill_weights("", &pw), -EINVAL);
    ck_assert_int_eq(pw, RL_PW_QUANTIZED); /* unchanged on error */
}
END_TEST

START_TEST(batching_bad_values_are_rejected_with_the_key_named)
{
    static const struct {
        const char *line, *key;
    } bad[] = {
        {"step_tokens = 8193", "step_tokens"},   {"step_tokens = -1", "step_tokens"},
        {"step_tokens = 12k", "step_tokens"},    {"step_tokens =", "step_tokens"},
        {"kv_mb = 1048577", "kv_mb"},            {"kv_mb = 99999999999999999999", "kv_mb"},
        {"kv_mb = 1.5", "kv_mb"},                {"client_queue = 0", "client_queue"},
        {"client_queue = 1025", "client_queue"}, {"client_queue = +5", "client_queue"},
        {"client_kv = 4294967296", "client_kv"}, {"client_kv = ten", "client_kv"},
        {"kv_type = q4_0", "kv_type"},           {"kv_type = F16", "kv_type"},
        {"kv_type =", "kv_type"},
        {"prefill_weights = fp16", "prefill_weights"}, {"prefill_weights = F16", "prefill_weights"},
        {"prefill_weights = q8_0", "prefill_weights"}, {"prefill_weights = quantised", "prefill_weights"},
        {"prefill_weights = on", "prefill_weights"},   {"prefill_weights =", "prefill_weights"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rl_cfg c, before;
        rl_cfg_defaults(&c);
        before = c;
        char err[256] = "";
        int rc = parse(&c, bad[i].line, err, sizeof err);
        ck_assert_msg(rc < 0, "'%s' accepted", bad[i].line);
        ck_assert_msg(strstr(err, "line 1") && strstr(err, bad[i].key), "'%s': err '%s'", bad[i].line, err);
        ck_assert_mem_eq(&c, &before, sizeof c);
    }
}
END_TEST

START_TEST(quoted_value_keeps_spaces_and_hash)
{
    rl_cfg c;
    rl_cfg_defaults(&c);
    char err[256];
    ck_assert_int_eq(parse(&c, "model = \" /a b#c.gguf \"\n", err, sizeof err), 0);
    ck_assert_str_eq(c.model, " /a b#c.gguf ");
}
END_TEST

START_TEST(unknown_key_fails_with_line_number_and_leaves_config_unchanged)
{
    rl_cfg c, before;
    rl_cfg_defaults(&c);
    before = c;
    char err[256] = "";
    ck_assert_int_eq(parse(&c, "threads = 5\n\nfrobnicate = 1\n", err, sizeof err), -ENOENT);
    ck_assert_msg(strstr(err, "line 3") && strstr(err, "frobnicate"), "err: %s", err);
    ck_assert_mem_eq(&c, &before, sizeof c);
}
END_TEST

START_TEST(bad_values_are_rejected)
{
    static const char *bad[] = {
        "threads = -1", "threads = 5x", "threads = 99999999999999999999", "threads = 1025",
        "threads =", "device = tpu", "spin_window = 2h", "spin_window = 2s", "spin_window = ms",
        "shutdown_deadline = 2days", "shutdown_deadline = 61min", "max_clients = 0",
        "max_clients = 70000", "log_level = loud", "socket = relative.sock", "socket =",
        "no equals sign", "= value", "model = \"unterminated",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rl_cfg c;
        rl_cfg_defaults(&c);
        char err[256] = "";
        int rc = parse(&c, bad[i], err, sizeof err);
        ck_assert_msg(rc < 0, "'%s' accepted", bad[i]);
        ck_assert_msg(strstr(err, "line 1"), "'%s': no line number in '%s'", bad[i], err);
    }
}
END_TEST

START_TEST(socket_path_longer_than_sun_path_is_rejected)
{
    rl_cfg c;
    rl_cfg_defaults(&c);
    char line[300], err[256];
    memset(line, 'a', sizeof line);
    memcpy(line, "socket = /", 10);
    line[sizeof line - 1] = '\0';
    ck_assert_int_eq(parse(&c, line, err, sizeof err), -ENAMETOOLONG);
}
END_TEST

START_TEST(overlong_line_and_nul_byte_are_errors)
{
    rl_cfg c;
    rl_cfg_defaults(&c);
    char err[256];
    size_t n = 20000;
    char *text = malloc(n + 1);
    memset(text, '#', n);
    text[n] = '\0';
    ck_assert_int_eq(rl_cfg_parse(&c, text, n, err, sizeof err), -E2BIG);
    free(text);
    const char nul[] = "threads = 1\0 2\n";
    ck_assert_int_lt(rl_cfg_parse(&c, nul, sizeof nul - 1, err, sizeof err), 0);
}
END_TEST

typedef struct diff_log {
    char text[1024];
} diff_log;

static void on_diff(void *ud, const char *key, const char *a, const char *b)
{
    diff_log *d = ud;
    size_t l = strlen(d->text);
    snprintf(d->text + l, sizeof d->text - l, "%s:%s->%s;", key, a, b);
}

START_TEST(diff_lists_only_changed_keys)
{
    rl_cfg a, b;
    rl_cfg_defaults(&a);
    b = a;
    char err[256];
    ck_assert_int_eq(parse(&b, "model = /new.gguf\nshutdown_deadline = 1500ms\n", err, sizeof err), 0);
    diff_log d = {""};
    ck_assert_uint_eq(rl_cfg_diff(&a, &b, on_diff, &d), 2);
    ck_assert_str_eq(d.text,
                     "model:->/new.gguf;shutdown_deadline:10s->1500ms;");
    ck_assert_uint_eq(rl_cfg_diff(&a, &a, NULL, NULL), 0);
}
END_TEST

START_TEST(diff_reports_changed_batching_keys)
{
    rl_cfg a, b;
    rl_cfg_defaults(&a);
    b = a;
    char err[256];
    ck_assert_int_eq(parse(&b, "client_queue = 16\nkv_mb = 256\n", err, sizeof err), 0);
    diff_log d = {""};
    ck_assert_uint_eq(rl_cfg_diff(&a, &b, on_diff, &d), 2);
    ck_assert_str_eq(d.text, "kv_mb:0->256;client_queue:1024->16;");
    ck_assert_int_eq(parse(&b, "kv_type = q8_0\nprefill_weights = quantized\n", err, sizeof err), 0);
    d.text[0] = '\0';
    ck_assert_uint_eq(rl_cfg_diff(&a, &b, on_diff, &d), 4);
    ck_assert_str_eq(d.text, "kv_mb:0->256;client_queue:1024->16;kv_type:f16->q8_0;prefill_weights:auto->quantized;");
}
END_TEST

START_TEST(load_reads_a_file_and_reports_a_missing_one)
{
    char path[] = "/tmp/rl-cfg-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char text[] = "max_clients = 9\ndevice = test\n";
    ck_assert_int_eq(write(fd, text, sizeof text - 1), (int)sizeof text - 1);
    close(fd);
    rl_cfg c;
    rl_cfg_defaults(&c);
    char err[256] = "";
    ck_assert_int_eq(rl_cfg_load(&c, path, err, sizeof err), 0);
    ck_assert_uint_eq(c.max_clients, 9);
    ck_assert_int_eq(c.device, RL_DEVICE_TEST);
    unlink(path);
    ck_assert_int_eq(rl_cfg_load(&c, path, err, sizeof err), -ENOENT);
    ck_assert_msg(strstr(err, path), "err: %s", err);
}
END_TEST

START_TEST(shipped_default_config_parses_to_the_defaults)
{
    const char *root = getenv("RL_SOURCE_ROOT");
    if (!root) {
        printf("SKIP: RL_SOURCE_ROOT not set\n");
        return;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/units/ringlmd.conf", root);
    rl_cfg c, d;
    rl_cfg_defaults(&c);
    rl_cfg_defaults(&d);
    /* every key is commented out: uncomment them all and compare */
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char text[8192] = "", line[1024];
    while (fgets(line, sizeof line, f))
        if (line[0] == '#' && strchr(line, '=') && line[1] != ' ')
            strncat(text, line + 1, sizeof text - strlen(text) - 1);
    fclose(f);
    char err[256] = "";
    ck_assert_msg(parse(&c, text, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(rl_cfg_diff(&c, &d, NULL, NULL), 0);
    ck_assert_ptr_nonnull(strstr(text, "shutdown_deadline"));
    ck_assert_ptr_nonnull(strstr(text, "client_kv"));
    ck_assert_ptr_nonnull(strstr(text, "prefill_weights = auto"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("service-cfg");
    TCase *tc = tcase_create("cfg");
    tcase_add_test(tc, defaults_match_the_documented_values);
    tcase_add_test(tc, every_key_is_parsed);
    tcase_add_test(tc, quoted_value_keeps_spaces_and_hash);
    tcase_add_test(tc, unknown_key_fails_with_line_number_and_leaves_config_unchanged);
    tcase_add_test(tc, bad_values_are_rejected);
    tcase_add_test(tc, socket_path_longer_than_sun_path_is_rejected);
    tcase_add_test(tc, overlong_line_and_nul_byte_are_errors);
    tcase_add_test(tc, batching_keys_are_parsed_and_formatted);
    tcase_add_test(tc, prefill_weights_parses_its_three_values_and_round_trips);
    tcase_add_test(tc, batching_bad_values_are_rejected_with_the_key_named);
    tcase_add_test(tc, diff_lists_only_changed_keys);
    tcase_add_test(tc, diff_reports_changed_batching_keys);
    tcase_add_test(tc, load_reads_a_file_and_reports_a_missing_one);
    tcase_add_test(tc, shipped_default_config_parses_to_the_defaults);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
