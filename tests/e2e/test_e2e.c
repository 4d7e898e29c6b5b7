/* test_e2e.c - the whole path on the real tiny model (stories260K from RL_SHARED_DIR):
 * greedy text is the same through direct engine calls, through libringlm against a
 * ringlmd process, and through the `ringlm generate` CLI; `ringlm tokenize` prints
 * the expected ids of the shared tokenizer vectors. Skips when RL_SHARED_DIR is absent. */
#include "ringlm.h"
#include "rl_engine.h"
#include "rl_llm.h"

#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NGEN 60
static const char *PROMPT = "Once upon a time";

static char g_model[4096];
static int have_model(void)
{
    const char *d = getenv("RL_SHARED_DIR");
    struct stat st;
    if (!d)
        return 0;
    snprintf(g_model, sizeof g_model, "%s/models/stories260K.gguf", d);
    return stat(g_model, &st) == 0;
}

/* Greedy continuation through direct engine calls. */
static void engine_text(char *out, size_t cap)
{
    rl_engine *e;
    char err[256];
    ck_assert_int_eq(rl_engine_llm_create(g_model, 1, &e, err, sizeof err), 0);
    int32_t ids[64];
    int n = e->ops->tokenize(e, PROMPT, strlen(PROMPT), true, ids, 64);
    ck_assert_int_gt(n, 0);
    rl_seq_desc d = {.prompt = ids, .n_prompt = (uint32_t)n, .max_tokens = NGEN};
    d.sampling.temperature = 0.f;
    d.sampling.repeat_penalty = 1.f;
    d.sampling.top_p = 1.f;
    rl_seq *s;
    ck_assert_int_eq(e->ops->seq_new(e, &d, &s), 0);
    size_t len = 0;
    for (int got = 0; got < NGEN;) {
        rl_step_item it = {.seq = s};
        ck_assert_int_eq(e->ops->step(e, &it, 1), 0);
        ck_assert_int_eq(it.status, 0);
        if (it.token < 0)
            continue;
        got++;
        if (e->ops->is_eog(e, it.token))
            break;
        char piece[64];
        int k = e->ops->token_piece(e, it.token, piece, sizeof piece);
        ck_assert_int_ge(k, 0);
        ck_assert_uint_lt(len + (size_t)k, cap);
        memcpy(out + len, piece, (size_t)k);
        len += (size_t)k;
    }
    out[len] = 0;
    e->ops->seq_free(e, s);
    e->ops->destroy(e);
}

static pid_t start_daemon(const char *sock)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execl(getenv("RL_RINGLMD"), "ringlmd", "--model", g_model, "--socket", sock, "--threads", "1",
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) { /* wait until it serves */
        ringlm_conn *c;
        if (ringlm_connect(sock, NULL, &c) == 0) {
            ringlm_close(c);
            return pid;
        }
        usleep(10000);
    }
    kill(pid, SIGKILL);
    ck_abort_msg("ringlmd did not come up");
    return -1;
}

static void stop_daemon(pid_t pid)
{
    int st;
    kill(pid, SIGTERM);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "ringlmd exit status %d", st);
}

static void library_text(const char *sock, char *out, size_t cap)
{
    ringlm_conn *c;
    ck_assert_int_eq(ringlm_connect(sock, NULL, &c), 0);
    ringlm_params p;
    ringlm_params_default(&p);
    p.temperature = 0.f;
    p.max_tokens = NGEN;
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(c, PROMPT, strlen(PROMPT), &p, &r), 0);
    size_t len = 0;
    for (;;) {
        ringlm_event ev;
        ck_assert_int_eq(ringlm_next(c, r, &ev, 10000), 0);
        int type = ev.type;
        ck_assert_int_ne(type, RINGLM_EV_ERROR);
        if (type == RINGLM_EV_TOKENS) {
            ck_assert_uint_lt(len + ev.text_len, cap);
            memcpy(out + len, ev.text, ev.text_len);
            len += ev.text_len;
        }
        ringlm_release(c, &ev);
        if (type == RINGLM_EV_DONE)
            break;
    }
    out[len] = 0;
    ringlm_close(c);
}

static size_t run_capture(const char *cmd, char *out, size_t cap)
{
    FILE *f = popen(cmd, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = 0;
    ck_assert_int_eq(pclose(f), 0);
    return n;
}

START_TEST(greedy_text_is_the_same_through_engine_library_and_cli)
{
    if (!have_model()) {
        printf("SKIP: RL_SHARED_DIR/models/stories260K.gguf not found\n");
        return;
    }
    static char direct[8192], lib[8192], cli[8192], cmd[8192];
    engine_text(direct, sizeof direct);
    /* readable English, not noise */
    ck_assert_ptr_nonnull(strstr(direct, " the"));
    for (const char *p = direct; *p; p++)
        ck_assert_msg(isprint((unsigned char)*p) || *p == '\n', "byte 0x%02x", (unsigned char)*p);

    char dir[] = "/tmp/rl-e2e-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char sock[256];
    snprintf(sock, sizeof sock, "%s/s.sock", dir);
    pid_t pid = start_daemon(sock);
    library_text(sock, lib, sizeof lib);
    snprintf(cmd, sizeof cmd, "'%s' --socket '%s' generate -n %d --temp 0 '%s'", getenv("RL_RINGLM"),
             sock, NGEN, PROMPT);
    size_t n = run_capture(cmd, cli, sizeof cli);
    while (n > 0 && cli[n - 1] == '\n' && strlen(direct) < n) /* the CLI ends with a newline */
        cli[--n] = 0;
    stop_daemon(pid);
    rmdir(dir);

    ck_assert_str_eq(lib, direct);
    ck_assert_str_eq(cli, direct);
}
END_TEST

START_TEST(cli_tokenize_prints_the_expected_ids)
{
    const char *d = getenv("RL_SHARED_DIR");
    char vocab[4096], cmd[8192], out[256];
    struct stat st;
    snprintf(vocab, sizeof vocab, "%s/tokenizer/ggml-vocab-llama-spm.gguf", d ? d : "");
    if (!d || stat(vocab, &st) != 0) {
        printf("SKIP: %s not found\n", vocab);
        return;
    }
    /* expected ids from the shared vector file (ggml-vocab-llama-spm.gguf.out) */
    snprintf(cmd, sizeof cmd, "'%s' tokenize --model '%s' ' Hello World!'", getenv("RL_RINGLM"), vocab);
    run_capture(cmd, out, sizeof out);
    ck_assert_str_eq(out, "29871 15043 2787 29991\n");
    snprintf(cmd, sizeof cmd, "'%s' tokenize --model '%s' --add-special 'Hello world'",
             getenv("RL_RINGLM"), vocab);
    run_capture(cmd, out, sizeof out);
    ck_assert_str_eq(out, "1 15043 3186\n");
    /* a file that is not GGUF: a clear error and a failing status, no crash */
    snprintf(cmd, sizeof cmd, "'%s' tokenize --model /dev/null x 2>&1", getenv("RL_RINGLM"));
    FILE *f = popen(cmd, "r");
    size_t k = fread(out, 1, sizeof out - 1, f);
    out[k] = 0;
    int st2 = pclose(f);
    ck_assert_int_ne(st2, 0);
    ck_assert_ptr_nonnull(strstr(out, "ringlm tokenize:"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("e2e");
    TCase *tc = tcase_create("e2e");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, greedy_text_is_the_same_through_engine_library_and_cli);
    tcase_add_test(tc, cli_tokenize_prints_the_expected_ids);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int nf = srunner_ntests_failed(r);
    srunner_free(r);
    return nf ? 1 : 0;
}
