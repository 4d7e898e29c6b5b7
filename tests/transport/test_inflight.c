/* Many requests in flight, zero-copy results, cancel, several clients. */
#include "ringlm_impl.h"
#include "tt_main.h"
#include "tt_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static tt_daemon td;
static void setup(void) { tt_start(&td, 50); }
static void teardown(void) { tt_stop(&td); }

#define NREQ 200

START_TEST(test_many_requests_in_flight_on_one_connection)
{
    ringlm_conn *c = tt_connect(&td);
    ringlm_req ids[NREQ];
    char want[NREQ][32], got[NREQ][64];
    size_t glen[NREQ] = {0};
    int done[NREQ] = {0}, n_done = 0;
    for (int i = 0; i < NREQ; i++) {
        snprintf(want[i], sizeof want[i], "request number %d", i);
        ck_assert_int_eq(ringlm_submit_text(c, want[i], strlen(want[i]), NULL, &ids[i]), 0);
    }
    while (n_done < NREQ) {
        ringlm_event ev;
        ck_assert_int_eq(ringlm_next(c, 0, &ev, 5000), 0);
        int k = -1;
        for (int i = 0; i < NREQ; i++)
            if (ids[i] == ev.req)
                k = i;
        ck_assert_int_ge(k, 0);
        ck_assert(!done[k]);
        if (ev.type == RINGLM_EV_TOKENS) {
            ck_assert_uint_le(glen[k] + ev.text_len, sizeof got[k]);
            memcpy(got[k] + glen[k], ev.text, ev.text_len);
            glen[k] += ev.text_len;
        } else {
            ck_assert_int_eq(ev.type, RINGLM_EV_DONE);
            done[k] = 1;
            n_done++;
        }
        ringlm_release(c, &ev);
    }
    for (int i = 0; i < NREQ; i++) {
        ck_assert_uint_eq(glen[i], strlen(want[i]));
        ck_assert(memcmp(got[i], want[i], glen[i]) == 0);
    }
    ringlm_close(c);
}
END_TEST

START_TEST(test_result_pointers_lie_inside_the_shared_region)
{
    ringlm_conn *c = tt_connect(&td);
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(c, "zero copy", 9, NULL, &r), 0);
    ringlm_event ev;
    ck_assert_int_eq(ringlm_next(c, r, &ev, 5000), 0);
    ck_assert_int_eq(ev.type, RINGLM_EV_TOKENS);
    const char *lo = (const char *)c->base + c->res_off, *hi = lo + c->res_size;
    ck_assert(ev.text >= lo && ev.text + ev.text_len <= hi);
    ck_assert((const char *)ev.tokens >= lo && (const char *)(ev.tokens + ev.n_tokens) <= hi);
    ck_assert_uint_eq(ev.n_tokens, 1);
    ck_assert_int_eq(ev.tokens[0], 'z');
    ringlm_release(c, &ev);
    tt_result res;
    ck_assert_int_eq(tt_collect(c, r, &res, 5000), 0);
    tt_result_free(&res);
    ringlm_close(c);
}
END_TEST

START_TEST(test_cancel_stops_a_running_request)
{
    ringlm_conn *c = tt_connect(&td);
    char p[200];
    memset(p, 'x', sizeof p);
    memcpy(p, "__slow__", 8);
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(c, p, sizeof p, NULL, &r), 0);
    ringlm_event ev;
    ck_assert_int_eq(ringlm_next(c, r, &ev, 5000), 0);
    ck_assert_int_eq(ev.type, RINGLM_EV_TOKENS);
    ringlm_release(c, &ev);
    ck_assert_int_eq(ringlm_cancel(c, r), 0);
    tt_result res;
    ck_assert_int_eq(tt_collect(c, r, &res, 10000), 0);
    ck_assert_int_eq(res.final_type, RINGLM_EV_DONE);
    ck_assert_int_eq(res.finish, RINGLM_FINISH_CANCELLED);
    ck_assert_int_eq(res.status, -ECANCELED);
    ck_assert_uint_lt(res.len, 150); /* far from the 200-byte echo */
    tt_result_free(&res);
    ck_assert_int_eq(tt_wait_stats(&td, 1, 0), 0);
    ringlm_close(c);
}
END_TEST

START_TEST(test_clients_in_one_batch_get_their_own_results)
{
    enum { NC = 8 };
    ringlm_conn *c[NC];
    ringlm_req r[NC];
    char want[NC][32];
    for (int i = 0; i < NC; i++) {
        c[i] = tt_connect(&td);
        snprintf(want[i], sizeof want[i], "client %d says hi", i);
        ck_assert_int_eq(ringlm_submit_text(c[i], want[i], strlen(want[i]), NULL, &r[i]), 0);
    }
    for (int i = 0; i < NC; i++) {
        tt_result res;
        ck_assert_int_eq(tt_collect(c[i], r[i], &res, 5000), 0);
        ck_assert_str_eq(res.text, want[i]);
        tt_result_free(&res);
        ringlm_close(c[i]);
    }
}
END_TEST

START_TEST(test_full_completion_ring_pauses_then_resumes_generation)
{
    /* Four 2000-token answers are 8000 events, twice the completion ring: the
     * daemon must pause while nobody reads, and lose nothing. */
    enum { NR = 4, LEN = 2000 };
    ringlm_conn *c = tt_connect(&td);
    ringlm_params p;
    ringlm_params_default(&p);
    p.max_tokens = LEN + 1;
    static char prompt[NR][LEN];
    ringlm_req r[NR];
    for (int k = 0; k < NR; k++) {
        for (size_t i = 0; i < LEN; i++)
            prompt[k][i] = (char)('a' + (i + (size_t)k) % 26);
        ck_assert_int_eq(ringlm_submit_text(c, prompt[k], LEN, &p, &r[k]), 0);
    }
    struct timespec ts = {0, 300000000};
    nanosleep(&ts, NULL); /* let the daemon fill the ring */
    rl_daemon_stats st;
    rl_daemon_get_stats(td.d, &st);
    ck_assert_uint_ge(st.n_requests, 1); /* 8000 events cannot fit 4096 slots: paused */
    for (int k = 0; k < NR; k++) {
        tt_result res;
        ck_assert_int_eq(tt_collect(c, r[k], &res, 20000), 0);
        ck_assert_int_eq(res.finish, RINGLM_FINISH_EOS);
        ck_assert_uint_eq(res.len, LEN);
        ck_assert(memcmp(res.text, prompt[k], LEN) == 0);
        tt_result_free(&res);
    }
    ringlm_close(c);
}
END_TEST

START_TEST(test_result_arena_wraps_around_under_sustained_traffic)
{
    /* 72 x 2000-byte prompts echo 144k token events: 1.1 MiB of results through
     * the 1 MiB result arena. */
    enum { NR = 72, LEN = 2000 };
    ringlm_conn *c = tt_connect(&td);
    ringlm_params p;
    ringlm_params_default(&p);
    p.max_tokens = LEN + 1;
    static char prompt[NR][LEN + 48], got[NR][LEN];
    static size_t glen[NR];
    ringlm_req r[NR];
    for (int k = 0; k < NR; k++) {
        for (size_t i = 0; i < LEN; i++)
            prompt[k][i] = (char)('A' + (i * 7 + (size_t)k) % 26);
        ck_assert_int_eq(ringlm_submit_text(c, prompt[k], LEN, &p, &r[k]), 0);
    }
    for (int done = 0; done < NR;) {
        ringlm_event ev;
        ck_assert_int_eq(ringlm_next(c, 0, &ev, 20000), 0);
        int k = (int)(ev.req - r[0]);
        ck_assert(k >= 0 && k < NR && r[k] == ev.req);
        if (ev.type == RINGLM_EV_TOKENS) {
            ck_assert_uint_le(glen[k] + ev.text_len, LEN);
            memcpy(got[k] + glen[k], ev.text, ev.text_len);
            glen[k] += ev.text_len;
        } else {
            ck_assert_int_eq(ev.type, RINGLM_EV_DONE);
            done++;
        }
        ringlm_release(c, &ev);
    }
    for (int k = 0; k < NR; k++) {
        ck_assert_uint_eq(glen[k], LEN);
        ck_assert(memcmp(got[k], prompt[k], LEN) == 0);
    }
    ck_assert_uint_gt(c->released_mark, c->res_size); /* the result arena wrapped */
    ringlm_close(c);
}
END_TEST

START_TEST(test_request_arena_wraps_around)
{
    /* 600 x 2000-byte prompts: 1.2 MiB through the 1 MiB request arena. */
    enum { NR = 600, LEN = 2000 };
    ringlm_conn *c = tt_connect(&td);
    ringlm_params p;
    ringlm_params_default(&p);
    p.max_tokens = 1;
    static char prompt[LEN];
    static ringlm_req r[NR];
    for (int k = 0; k < NR; k++) {
        for (size_t i = 0; i < LEN; i++)
            prompt[i] = (char)('a' + (i + (size_t)k) % 26);
        ck_assert_int_eq(ringlm_submit_text(c, prompt, LEN, &p, &r[k]), 0);
    }
    ck_assert_uint_gt(c->req_head, c->req_size);
    for (int k = 0; k < NR; k++) {
        tt_result res;
        ck_assert_int_eq(tt_collect(c, r[k], &res, 20000), 0);
        ck_assert_int_eq(res.finish, RINGLM_FINISH_LENGTH);
        ck_assert_uint_eq(res.len, 1);
        ck_assert_int_eq(res.text[0], 'a' + k % 26); /* the payload the daemon read was this one's */
        tt_result_free(&res);
    }
    ringlm_close(c);
}
END_TEST

/* Many clients that sleep (no spinning) while the daemon streams to all of
 * them at once: each step touches more clients than the worker rings inline,
 * so their bells ring on rl_bells' thread (daemon/rl_bells.h). A bell lost or
 * rung before its tokens are visible leaves a client asleep until timeout. */
enum { SL_CLIENTS = 12, SL_REQS = 3, SL_LEN = 300 };
typedef struct sl_client {
    const tt_daemon *td;
    int id, ok;
    char msg[160];
} sl_client;

static void *sleeping_client(void *arg)
{
    sl_client *k = arg;
    ringlm_opts o = {.spin_us = 0, .timeout_ms = 10000};
    ringlm_conn *c = NULL;
    if (ringlm_connect(k->td->sock, &o, &c) != 0) {
        snprintf(k->msg, sizeof k->msg, "connect: %s", ringlm_last_error());
        return NULL;
    }
    ringlm_params p;
    ringlm_params_default(&p);
    p.max_tokens = SL_LEN + 1;
    char prompt[SL_LEN];
    for (int r = 0; r < SL_REQS; r++) {
        for (int i = 0; i < SL_LEN; i++)
            prompt[i] = (char)('a' + (i * 7 + k->id * 3 + r) % 26);
        ringlm_req req;
        tt_result res;
        if (ringlm_submit_text(c, prompt, SL_LEN, &p, &req) != 0 || tt_collect(c, req, &res, 10000) != 0) {
            snprintf(k->msg, sizeof k->msg, "client %d request %d: no answer", k->id, r);
            ringlm_close(c);
            return NULL;
        }
        bool same = res.len == SL_LEN && memcmp(res.text, prompt, SL_LEN) == 0;
        tt_result_free(&res);
        if (!same) {
            snprintf(k->msg, sizeof k->msg, "client %d request %d: wrong text", k->id, r);
            ringlm_close(c);
            return NULL;
        }
    }
    ringlm_close(c);
    k->ok = 1;
    return NULL;
}

START_TEST(test_many_sleeping_clients_are_all_woken)
{
    sl_client k[SL_CLIENTS];
    pthread_t th[SL_CLIENTS];
    for (int i = 0; i < SL_CLIENTS; i++) {
        k[i] = (sl_client){.td = &td, .id = i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, sleeping_client, &k[i]), 0);
    }
    for (int i = 0; i < SL_CLIENTS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < SL_CLIENTS; i++)
        ck_assert_msg(k[i].ok, "%s", k[i].msg);
}
END_TEST

static Suite *inflight_suite(void)
{
    Suite *s = suite_create("inflight");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_many_requests_in_flight_on_one_connection);
    tcase_add_test(tc, test_result_pointers_lie_inside_the_shared_region);
    tcase_add_test(tc, test_cancel_stops_a_running_request);
    tcase_add_test(tc, test_clients_in_one_batch_get_their_own_results);
    tcase_add_test(tc, test_full_completion_ring_pauses_then_resumes_generation);
    tcase_add_test(tc, test_result_arena_wraps_around_under_sustained_traffic);
    tcase_add_test(tc, test_request_arena_wraps_around);
    tcase_add_test(tc, test_many_sleeping_clients_are_all_woken);
    suite_add_tcase(s, tc);
    return s;
}
TT_MAIN(inflight_suite)
