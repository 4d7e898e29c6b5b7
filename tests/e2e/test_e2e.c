/* test_e2e.c - the whole path on the real tiny model (stories260K from RL_SHARED_DIR):
 * greedy text is the same through direct engine calls, through libringlm against a
 * ringlmd process, and through the `ringlm generate` CLI; `ringlm tokenize` prints
 * the expected ids of the shared tokenizer vectors. Skips when RL_SHARED_DIR is absent. */
#include "ringlm.h"
#include "rl_engine.h"
#include "rl_llm.h"

#include <check.h>
#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <math.h>
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
    int n = e->ops->tokenize(e, PROMPT, strlen(PROMPT), true, false, ids, 64);
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

/* Prompt tokens the daemon counted for a text prompt (from the DONE timings). */
static uint32_t prompt_tokens_of(ringlm_conn *c, const char *text, bool parse_special)
{
    ringlm_params p;
    ringlm_params_default(&p);
    p.temperature = 0.f;
    p.max_tokens = 1;
    p.parse_special = parse_special;
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(c, text, strlen(text), &p, &r), 0);
    for (;;) {
        ringlm_event ev;
        ck_assert_int_eq(ringlm_next(c, r, &ev, 10000), 0);
        int type = ev.type;
        uint32_t n = ev.timings.prompt_tokens;
        ck_assert_int_ne(type, RINGLM_EV_ERROR);
        ringlm_release(c, &ev);
        if (type == RINGLM_EV_DONE)
            return n;
    }
}

/* One request through the daemon: its ids, and with lp its logprob groups. */
static size_t lib_tokens(ringlm_conn *c, float temp, uint8_t lp, int32_t *ids, ringlm_logprob *g, size_t cap)
{
    ringlm_params p;
    ringlm_params_default(&p);
    p.temperature = temp;
    p.seed = 11;
    p.max_tokens = (uint32_t)cap;
    p.logprobs = lp;
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(c, PROMPT, strlen(PROMPT), &p, &r), 0);
    size_t n = 0;
    for (;;) {
        ringlm_event ev;
        ck_assert_int_eq(ringlm_next(c, r, &ev, 10000), 0);
        int type = ev.type;
        ck_assert_int_ne(type, RINGLM_EV_ERROR);
        if (type == RINGLM_EV_TOKENS) {
            ck_assert_uint_le(n + ev.n_tokens, cap);
            memcpy(ids + n, ev.tokens, ev.n_tokens * sizeof *ids);
            if (lp) {
                ck_assert_ptr_nonnull(ev.logprobs);
                ck_assert_uint_eq(ev.n_top_logprobs, lp);
                memcpy(g + n * (1 + lp), ev.logprobs, ev.n_tokens * (1 + lp) * sizeof *g);
            } else {
                ck_assert_ptr_null(ev.logprobs);
            }
            n += ev.n_tokens;
        }
        ringlm_release(c, &ev);
        if (type == RINGLM_EV_DONE)
            return n;
    }
}

START_TEST(logprobs_through_the_daemon_agree_with_the_tokens)
{
    if (!have_model()) {
        printf("SKIP: RL_SHARED_DIR/models/stories260K.gguf not found\n");
        return;
    }
    enum { CAP = 24, LP = 5 };
    char sock[64] = "/tmp/ringlm-e2e-lp-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(sock));
    strcat(sock, "/s"); /* the buffer holds the template, "/s" and the NUL */
    pid_t pid = start_daemon(sock);
    ringlm_conn *c;
    ck_assert_int_eq(ringlm_connect(sock, NULL, &c), 0);
    for (int sampled = 0; sampled < 2; sampled++) {
        int32_t a[CAP], b[CAP];
        ringlm_logprob g[CAP * (1 + LP)];
        float temp = sampled ? 0.9f : 0.f;
        size_t na = lib_tokens(c, temp, 0, a, NULL, CAP), nb = lib_tokens(c, temp, LP, b, g, CAP);
        ck_assert_uint_eq(na, nb);
        ck_assert(memcmp(a, b, na * sizeof *a) == 0); /* asking for them changes nothing */
        for (size_t t = 0; t < nb; t++) {
            const ringlm_logprob *x = g + t * (1 + LP);
            ck_assert_int_eq(x[0].token, b[t]);
            ck_assert(x[0].logprob <= 0 && isfinite(x[0].logprob));
            for (int k = 1; k <= LP; k++) {
                if (k > 1)
                    ck_assert(x[k].logprob <= x[k - 1].logprob);
                ck_assert(x[k].token >= 0 && x[k].logprob <= 0);
                if (x[k].token == x[0].token)
                    ck_assert_float_eq(x[k].logprob, x[0].logprob);
            }
            if (!sampled) /* greedy: the best token, and a trained model is fairly sure of it */
                ck_assert_int_eq(x[1].token, x[0].token);
        }
    }
    ringlm_close(c);
    stop_daemon(pid);
    unlink(sock);
    *strrchr(sock, '/') = 0;
    rmdir(sock);
}
END_TEST

START_TEST(control_token_text_stays_text_unless_the_client_asks)
{
    if (!have_model()) {
        printf("SKIP: RL_SHARED_DIR/models/stories260K.gguf not found\n");
        return;
    }
    char dir[] = "/tmp/rl-e2e-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char sock[256];
    snprintf(sock, sizeof sock, "%s/s.sock", dir);
    pid_t pid = start_daemon(sock);
    ringlm_conn *c;
    ck_assert_int_eq(ringlm_connect(sock, NULL, &c), 0);
    /* "a</s>b": as text the EOS spelling is 4 ordinary pieces (+BOS, a, b); parsed it is one EOS. */
    uint32_t as_text = prompt_tokens_of(c, "a</s>b", false);
    uint32_t parsed = prompt_tokens_of(c, "a</s>b", true);
    ringlm_close(c);
    stop_daemon(pid);
    rmdir(dir);
    ck_assert_uint_eq(parsed, 4); /* BOS a EOS b */
    ck_assert_uint_gt(as_text, parsed);
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
    tcase_add_test(tc, control_token_text_stays_text_unless_the_client_asks);
    tcase_add_test(tc, logprobs_through_the_daemon_agree_with_the_tokens);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int nf = srunner_ntests_failed(r);
    srunner_free(r);
    return nf ? 1 : 0;
}
