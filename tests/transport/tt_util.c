/* tt_util.c - transport test helpers. */
#include "tt_util.h"
#include "rl_log.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void *run_thread(void *arg)
{
    tt_daemon *t = arg;
    t->run_rc = rl_daemon_run(t->d);
    return NULL;
}

void tt_start_opts(tt_daemon *t, rl_daemon_opts *o, const rl_daemon_hooks *h)
{
    memset(t, 0, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "/tmp/ringlm-test-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t->dir));
    snprintf(t->sock, sizeof t->sock, "%s/ringlm.sock", t->dir);
    if (o->listen_fd < 0)
        o->socket_path = t->sock;
    rl_log_set_level(getenv("RL_TEST_VERBOSE") ? LOG_DEBUG : LOG_WARNING);
    char err[256];
    int rc = rl_daemon_create(o, &t->d, err, sizeof err);
    ck_assert_msg(rc == 0, "daemon: %s", err);
    if (h)
        rl_daemon_set_hooks(t->d, h);
    ck_assert_int_eq(pthread_create(&t->thr, NULL, run_thread, t), 0);
}

void tt_start(tt_daemon *t, int spin_us)
{
    rl_daemon_opts o;
    rl_daemon_opts_default(&o);
    o.spin_us = spin_us;
    o.engine = "test";
    tt_start_opts(t, &o, NULL);
}

void tt_stop(tt_daemon *t)
{
    rl_daemon_request_stop(t->d, 0);
    pthread_join(t->thr, NULL);
    rl_daemon_destroy(t->d);
    rmdir(t->dir);
}

ringlm_conn *tt_connect(const tt_daemon *t)
{
    ringlm_conn *c = NULL;
    int rc = ringlm_connect(t->sock, NULL, &c);
    ck_assert_msg(rc == 0, "connect: %s: %s", ringlm_strerror(rc), ringlm_last_error());
    return c;
}

int tt_collect(ringlm_conn *c, ringlm_req req, tt_result *r, int timeout_ms)
{
    memset(r, 0, sizeof *r);
    for (;;) {
        ringlm_event ev;
        int rc = ringlm_next(c, req, &ev, timeout_ms);
        if (rc < 0)
            return rc;
        r->n_events++;
        if (ev.type == RINGLM_EV_TOKENS) {
            r->text = realloc(r->text, r->len + ev.text_len + 1);
            memcpy(r->text + r->len, ev.text, ev.text_len);
            r->len += ev.text_len;
            r->text[r->len] = 0;
            r->n_tokens += ev.n_tokens;
            ringlm_release(c, &ev);
            continue;
        }
        r->final_type = ev.type;
        r->status = ev.status;
        r->finish = ev.finish;
        r->timings = ev.timings;
        if (ev.type == RINGLM_EV_ERROR)
            snprintf(r->msg, sizeof r->msg, "%.*s", (int)ev.text_len, ev.text);
        ringlm_release(c, &ev);
        if (!r->text)
            r->text = calloc(1, 1);
        return 0;
    }
}

void tt_result_free(tt_result *r)
{
    free(r->text);
    r->text = NULL;
}

int tt_wait_stats(tt_daemon *t, unsigned n_clients, unsigned n_requests)
{
    for (int i = 0; i < 10000; i++) {
        rl_daemon_stats st;
        rl_daemon_get_stats(t->d, &st);
        if (st.n_clients == n_clients && st.n_requests == n_requests)
            return 0;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return -1;
}
