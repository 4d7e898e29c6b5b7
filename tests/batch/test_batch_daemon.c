/* test_batch_daemon.c - scheduling through the whole daemon (stories260K):
 * latency-critical requests first, per-client limits against flooding,
 * cancellation and client death free KV blocks at once, statistics in INFO. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ringlm.h"
#include "tt_util.h"

static char g_model[512];

static bool have_model(void)
{
    const char *dir = getenv("RL_SHARED_DIR");
    if (!dir) {
        printf("skip: RL_SHARED_DIR not set\n");
        return false;
    }
    snprintf(g_model, sizeof g_model, "%s/models/stories260K.gguf", dir);
    if (access(g_model, R_OK) != 0) {
        printf("skip: %s missing\n", g_model);
        return false;
    }
    return true;
}

static void start(tt_daemon *t, uint32_t step_tokens, uint32_t max_queued, uint64_t max_kv)
{
    rl_daemon_opts o;
    rl_daemon_opts_default(&o);
    o.model_path = g_model;
    o.n_threads = 2;
    o.spin_us = 0;
    o.step_tokens = step_tokens;
    o.client_max_queued = max_queued;
    o.client_max_kv_tokens = max_kv;
    tt_start_opts(t, &o, NULL);
}

static void fill(int32_t *t, uint32_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1u;
    t[0] = 1; /* BOS */
    for (uint32_t i = 1; i < n; i++) {
        x = x * 1103515245u + 12345u;
        t[i] = (int32_t)(3 + (x >> 8) % 500);
    }
}

static ringlm_params greedy(uint32_t max_tokens, uint8_t priority)
{
    ringlm_params p;
    ringlm_params_default(&p);
    p.temperature = 0;
    p.max_tokens = max_tokens;
    p.priority = priority;
    return p;
}

START_TEST(latency_critical_request_gets_first_token_before_the_queue)
{
    if (!have_model())
        return;
    tt_daemon t;
    start(&t, 32, 0, 0);
    ringlm_conn *c = tt_connect(&t);
    enum { NQ = 6, LEN = 160 };
    static int32_t prompt[NQ + 1][LEN];
    ringlm_req q[NQ], hi;
    for (int i = 0; i < NQ; i++) {
        fill(prompt[i], LEN, (uint32_t)i + 1);
        ringlm_params p = greedy(8, 0);
        ck_assert_int_eq(ringlm_submit_tokens(c, prompt[i], LEN, &p, &q[i]), 0);
    }
    fill(prompt[NQ], 12, 99);
    ringlm_params p = greedy(8, 1);
    ck_assert_int_eq(ringlm_submit_tokens(c, prompt[NQ], 12, &p, &hi), 0);
    /* order of first tokens: the urgent request may only follow a normal one
     * that had finished its prompt before the urgent one arrived */
    int firsts_before = 0, done = 0;
    bool hi_seen = false, seen[NQ] = {0};
    while (done < NQ + 1) {
        ringlm_event ev;
        ck_assert_int_eq(ringlm_next(c, 0, &ev, 20000), 0);
        if (ev.type == RINGLM_EV_TOKENS && ev.req == hi)
            hi_seen = true;
        for (int i = 0; i < NQ; i++)
            if (ev.req == q[i] && ev.type == RINGLM_EV_TOKENS && !seen[i]) {
                seen[i] = true;
                firsts_before += !hi_seen;
            }
        ck_assert_int_ne(ev.type, RINGLM_EV_ERROR);
        done += ev.type == RINGLM_EV_DONE;
        ringlm_release(c, &ev);
    }
    ck_assert_int_le(firsts_before, 1);
    ringlm_close(c);
    tt_stop(&t);
}
END_TEST

static int collect_final(ringlm_conn *c, ringlm_req r, int *status, char *msg, size_t msglen)
{
    for (;;) {
        ringlm_event ev;
        int rc = ringlm_next(c, r, &ev, 20000);
        if (rc < 0)
            return rc;
        int type = ev.type;
        *status = ev.status;
        if (type == RINGLM_EV_ERROR && msg)
            snprintf(msg, msglen, "%.*s", (int)ev.text_len, ev.text);
        ringlm_release(c, &ev);
        if (type == RINGLM_EV_DONE || type == RINGLM_EV_ERROR)
            return type;
    }
}

START_TEST(flooding_client_gets_limit_errors_while_another_is_served)
{
    if (!have_model())
        return;
    tt_daemon t;
    start(&t, 64, 4, 0);
    ringlm_conn *a = tt_connect(&t), *b = tt_connect(&t);
    enum { NF = 24 };
    int32_t pr[40];
    fill(pr, 40, 5);
    ringlm_req fr[NF], br;
    for (int i = 0; i < NF; i++) {
        ringlm_params p = greedy(40, 0);
        ck_assert_int_eq(ringlm_submit_tokens(a, pr, 40, &p, &fr[i]), 0);
    }
    ringlm_params p = greedy(5, 0);
    ck_assert_int_eq(ringlm_submit_tokens(b, pr, 20, &p, &br), 0);
    int st;
    ck_assert_int_eq(collect_final(b, br, &st, NULL, 0), RINGLM_EV_DONE);
    ck_assert_int_eq(st, 0);
    int limited = 0, served = 0;
    char msg[256] = "";
    for (int i = 0; i < NF; i++) {
        char m[256];
        int type = collect_final(a, fr[i], &st, m, sizeof m);
        if (type == RINGLM_EV_ERROR) {
            ck_assert_int_eq(st, -EAGAIN);
            limited++;
            snprintf(msg, sizeof msg, "%s", m);
        } else {
            ck_assert_int_eq(type, RINGLM_EV_DONE);
            served++;
        }
    }
    ck_assert_int_ge(served, 4);
    ck_assert_int_ge(limited, 1);
    ck_assert_ptr_nonnull(strstr(msg, "limit 4"));
    ringlm_close(a);
    ringlm_close(b);
    tt_stop(&t);
}
END_TEST

START_TEST(kv_quota_is_per_client)
{
    if (!have_model())
        return;
    /* a1 must still be in flight when a2 arrives: a 300-token prompt keeps it
     * there for several steps of 64 tokens (a short one could finish between
     * the two submits on a loaded machine, and a2 would then fit). */
    tt_daemon t;
    start(&t, 64, 0, 450);
    ringlm_conn *a = tt_connect(&t), *b = tt_connect(&t);
    int32_t pr[300];
    fill(pr, 300, 6);
    ringlm_params p = greedy(100, 0);
    ringlm_req a1, a2, b1;
    ck_assert_int_eq(ringlm_submit_tokens(a, pr, 300, &p, &a1), 0); /* 300+ positions */
    ck_assert_int_eq(ringlm_submit_tokens(a, pr, 300, &p, &a2), 0); /* 300 + 300 > 450 */
    ck_assert_int_eq(ringlm_submit_tokens(b, pr, 300, &p, &b1), 0); /* b has its own quota */
    int st;
    char m[256];
    ck_assert_int_eq(collect_final(a, a2, &st, m, sizeof m), RINGLM_EV_ERROR);
    ck_assert_int_eq(st, -EDQUOT);
    ck_assert_ptr_nonnull(strstr(m, "quota"));
    ck_assert_int_eq(collect_final(a, a1, &st, NULL, 0), RINGLM_EV_DONE);
    ck_assert_int_eq(collect_final(b, b1, &st, NULL, 0), RINGLM_EV_DONE);
    ringlm_close(a);
    ringlm_close(b);
    tt_stop(&t);
}
END_TEST

static uint32_t blocks_used(ringlm_conn *c)
{
    ringlm_daemon_info in;
    ck_assert_int_eq(ringlm_info(c, &in, 5000), 0);
    ck_assert_uint_gt(in.sched.kv_blocks_total, 0);
    return in.sched.kv_blocks_used;
}

static void wait_blocks(ringlm_conn *c, uint32_t want)
{
    for (int i = 0; i < 500 && blocks_used(c) != want; i++)
        usleep(10000);
    ck_assert_uint_eq(blocks_used(c), want);
}

static void first_token(ringlm_conn *c, ringlm_req r)
{
    ringlm_event ev;
    ck_assert_int_eq(ringlm_next(c, r, &ev, 20000), 0);
    ck_assert_int_eq(ev.type, RINGLM_EV_TOKENS);
    ringlm_release(c, &ev);
}

START_TEST(cancellation_and_client_death_free_blocks)
{
    if (!have_model())
        return;
    tt_daemon t;
    start(&t, 64, 0, 0);
    ringlm_conn *mon = tt_connect(&t), *a = tt_connect(&t), *b = tt_connect(&t);
    uint32_t before = blocks_used(mon);
    int32_t pr[100];
    fill(pr, 100, 7);
    ringlm_params p = greedy(1000, 0);
    ringlm_req ra, rb;
    /* cancellation: right after the first token (the request is then still running) */
    ck_assert_int_eq(ringlm_submit_tokens(a, pr, 100, &p, &ra), 0);
    first_token(a, ra);
    ck_assert_int_eq(ringlm_cancel(a, ra), 0);
    int finish = 0, st = 0;
    for (;;) {
        ringlm_event ev;
        ck_assert_int_eq(ringlm_next(a, ra, &ev, 20000), 0);
        int type = ev.type;
        finish = ev.finish;
        st = ev.status;
        ringlm_release(a, &ev);
        if (type == RINGLM_EV_DONE || type == RINGLM_EV_ERROR)
            break;
    }
    ck_assert_int_eq(finish, RINGLM_FINISH_CANCELLED);
    ck_assert_int_eq(st, -ECANCELED);
    wait_blocks(mon, before);
    /* client death: a running request of a client that goes away */
    fill(pr, 100, 8);
    ck_assert_int_eq(ringlm_submit_tokens(b, pr, 100, &p, &rb), 0);
    first_token(b, rb);
    ck_assert_uint_gt(blocks_used(mon), before);
    ringlm_close(b);
    wait_blocks(mon, before);
    ringlm_close(a);
    ringlm_close(mon);
    tt_stop(&t);
}
END_TEST

START_TEST(info_reports_scheduler_statistics)
{
    if (!have_model())
        return;
    tt_daemon t;
    start(&t, 128, 0, 0);
    enum { NC = 4 };
    ringlm_conn *c[NC];
    ringlm_req r[NC];
    int32_t pr[NC][60];
    for (int i = 0; i < NC; i++) {
        c[i] = tt_connect(&t);
        fill(pr[i], 48, 42);             /* a shared 48-token system prompt */
        fill(pr[i] + 48, 12, 100 + (uint32_t)i); /* distinct suffixes */
        pr[i][48] = 13;
    }
    ringlm_params p = greedy(24, 0), p0 = greedy(600, 0);
    /* the first request long enough (tens of ms) that the others, submitted
     * after its first token, run beside it even on a loaded machine */
    ck_assert_int_eq(ringlm_submit_tokens(c[0], pr[0], 60, &p0, &r[0]), 0);
    first_token(c[0], r[0]);
    for (int i = 1; i < NC; i++)
        ck_assert_int_eq(ringlm_submit_tokens(c[i], pr[i], 60, &p, &r[i]), 0);
    int st;
    for (int i = 0; i < NC; i++)
        ck_assert_int_eq(collect_final(c[i], r[i], &st, NULL, 0), RINGLM_EV_DONE);
    ringlm_daemon_info in;
    ck_assert_int_eq(ringlm_info(c[0], &in, 5000), 0);
    ck_assert_uint_gt(in.sched.steps, 24);
    ck_assert_uint_ge(in.sched.max_batch, 2);
    ck_assert_uint_ge(in.sched.batch_seqs, in.sched.steps);
    ck_assert_uint_eq(in.sched.step_tokens, 128);
    ck_assert_uint_ge(in.sched.prefix_hits, NC - 1);
    ck_assert_uint_ge(in.sched.prefix_hit_tokens, (uint64_t)(NC - 1) * 48);
    ck_assert_uint_eq(in.sched.kv_blocks_used, 0);
    ck_assert_uint_eq(in.sched.kv_blocks_used + in.sched.kv_blocks_free + in.sched.kv_blocks_cached,
                      in.sched.kv_blocks_total);
    ck_assert_uint_eq(in.sched.sampled, 0); /* all greedy so far */
    ringlm_params smp;
    ringlm_params_default(&smp); /* sampled: temperature 0.8, top-k 40 */
    smp.max_tokens = 5;
    ck_assert_int_eq(ringlm_submit_tokens(c[1], pr[1], 60, &smp, &r[1]), 0);
    ck_assert_int_eq(collect_final(c[1], r[1], &st, NULL, 0), RINGLM_EV_DONE);
    ck_assert_int_eq(ringlm_info(c[0], &in, 5000), 0);
    ck_assert_uint_ge(in.sched.sampled, 1);
    ck_assert_uint_le(in.sched.sampled, 5);
    ck_assert_uint_eq(in.sched.sampled_top_k, 0); /* the CPU engine samples from the rows */
    for (int i = 0; i < NC; i++)
        ringlm_close(c[i]);
    tt_stop(&t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("batch_daemon");
    TCase *tc = tcase_create("daemon");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, latency_critical_request_gets_first_token_before_the_queue);
    tcase_add_test(tc, flooding_client_gets_limit_errors_while_another_is_served);
    tcase_add_test(tc, kv_quota_is_per_client);
    tcase_add_test(tc, cancellation_and_client_death_free_blocks);
    tcase_add_test(tc, info_reports_scheduler_statistics);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
