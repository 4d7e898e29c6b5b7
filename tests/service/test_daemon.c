/* test_daemon.c - ringlmd under a fake systemd: the sd_notify sequence, the
 * watchdog, SIGTERM and SIGHUP, socket activation. Runs the real binary. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "svc_util.h"

static svc S;

static void teardown(void) { svc_cleanup(&S); }

/* Reads datagrams until one contains needle; log collects them all. */
static void expect_notify(const char *needle, char *log, size_t cap, int timeout_ms)
{
    ck_assert_msg(notify_fake_wait_for(&S.nf, needle, timeout_ms, log, cap),
                  "no '%s' from ringlmd; got: %s\ndaemon log:\n%s", needle, log, svc_log(&S));
}

/* A prompt the test engine echoes back slowly (5 ms a step): "__slow__"
 * followed by n letters; it runs for about n * 5 ms. */
static char *slow_prompt(size_t n)
{
    static char buf[4096];
    ck_assert_uint_lt(n + 9, sizeof buf);
    memcpy(buf, "__slow__", 8);
    memset(buf + 8, 'x', n);
    buf[8 + n] = '\0';
    return buf;
}

static ringlm_req submit(ringlm_conn *c, const char *prompt, uint32_t max_tokens)
{
    ringlm_params p;
    ringlm_params_default(&p);
    p.max_tokens = max_tokens;
    ringlm_req req;
    int rc = ringlm_submit_text(c, prompt, strlen(prompt), &p, &req);
    ck_assert_msg(rc == 0, "submit: %s", ringlm_strerror(rc));
    return req;
}

static void run_one_request(const char *prompt, uint32_t max_tokens)
{
    ringlm_conn *c = svc_connect(&S, 5000);
    ringlm_params p;
    ringlm_params_default(&p);
    p.max_tokens = max_tokens;
    ringlm_req req;
    ck_assert_int_eq(ringlm_submit_text(c, prompt, strlen(prompt), &p, &req), 0);
    svc_result r;
    ck_assert_int_eq(svc_collect(c, req, &r, 10000), 0);
    ck_assert_int_eq(r.final_type, RINGLM_EV_DONE);
    ck_assert_uint_gt(r.n_tokens, 0);
    ringlm_close(c);
}

START_TEST(status_comes_before_ready_and_ready_names_the_main_pid)
{
    svc_opts o = {.notify = true};
    svc_start(&S, &o);
    char log[8192] = "";
    expect_notify("READY=1", log, sizeof log, 10000);
    char *ready = strstr(log, "READY=1");
    char *status = strstr(log, "STATUS=loading");
    ck_assert_msg(status && status < ready, "STATUS=loading must come first: %s", log);
    char want[64];
    snprintf(want, sizeof want, "MAINPID=%d", (int)S.pid);
    ck_assert_msg(strstr(ready, want), "READY without %s: %s", want, log);
    ck_assert_msg(strstr(ready, "STATUS=serving test engine"), "got: %s", log);
    /* it really serves */
    run_one_request("hello", 8);
}
END_TEST

static bool seen_busy; /* a STATUS= reported a request in flight */

/* Counts WATCHDOG=1 datagrams during ms milliseconds. */
static int count_pings(int ms, long long *last_ping_ms)
{
    seen_busy = false;
    int n = 0;
    long long end = svc_now_ms() + ms;
    char buf[4096];
    for (;;) {
        long long left = end - svc_now_ms();
        if (left <= 0)
            break;
        int r = notify_fake_recv(&S.nf, buf, sizeof buf, (int)left);
        if (r <= 0)
            break;
        if (strstr(buf, "clients, 1 requests"))
            seen_busy = true;
        if (strstr(buf, "WATCHDOG=1")) {
            n++;
            if (last_ping_ms)
                *last_ping_ms = svc_now_ms();
        }
    }
    return n;
}

START_TEST(watchdog_pings_twice_per_interval_while_idle)
{
    svc_opts o = {.notify = true, .watchdog_usec = 400000};
    svc_start(&S, &o);
    char log[8192] = "";
    expect_notify("READY=1", log, sizeof log, 10000);
    /* one ping per 200 ms: 10 in 2 s; generous bounds for a loaded CI box */
    int n = count_pings(2000, NULL);
    ck_assert_msg(n >= 5 && n <= 16, "%d pings in 2 s with WATCHDOG_USEC=400000", n);
}
END_TEST

START_TEST(watchdog_is_silent_when_watchdog_pid_is_another_process)
{
    svc_opts o = {.notify = true, .watchdog_usec = 200000, .watchdog_pid_other = true};
    svc_start(&S, &o);
    char log[8192] = "";
    expect_notify("READY=1", log, sizeof log, 10000);
    ck_assert_int_eq(count_pings(800, NULL), 0);
}
END_TEST

START_TEST(watchdog_keeps_pinging_while_slow_steps_progress)
{
    svc_opts o = {.notify = true, .watchdog_usec = 400000};
    svc_start(&S, &o);
    char log[8192] = "";
    expect_notify("READY=1", log, sizeof log, 10000);
    ringlm_conn *c = svc_connect(&S, 5000);
    ringlm_req req = submit(c, slow_prompt(800), 800); /* about 4.5 s of steps */
    int n = count_pings(1500, NULL);
    ck_assert_msg(seen_busy, "the request was not running during the window");
    ck_assert_msg(n >= 4, "only %d pings in 1.5 s while steps progress", n);
    (void)req;
    ringlm_close(c);
}
END_TEST

START_TEST(watchdog_pings_stop_when_a_step_hangs)
{
    svc_opts o = {.notify = true, .watchdog_usec = 400000};
    svc_start(&S, &o);
    char log[8192] = "";
    expect_notify("READY=1", log, sizeof log, 10000);
    ringlm_conn *c = svc_connect(&S, 5000);
    ringlm_req req = submit(c, "__hang__", 8);
    (void)req;
    long long t0 = svc_now_ms(), last = t0;
    count_pings(2500, &last);
    /* the step hangs from ~t0: pings may go on for one interval (400 ms) plus
     * a tick, then must stop for good */
    ck_assert_msg(last - t0 < 1000, "pings went on %lld ms after the step hung", last - t0);
    ck_assert_msg(svc_log_wait(&S, "withholding watchdog pings", 2000), "log:\n%s", svc_log(&S));
    ringlm_close(c);
}
END_TEST

START_TEST(sigterm_sends_stopping_and_cancels_with_eshutdown_at_the_deadline)
{
    svc_opts o = {.notify = true, .extra_conf = "shutdown_deadline = 300ms"};
    svc_start(&S, &o);
    char log[8192] = "";
    expect_notify("READY=1", log, sizeof log, 10000);
    ringlm_conn *c = svc_connect(&S, 5000);
    ringlm_req req = submit(c, slow_prompt(2000), 2000); /* about 11 s, far past the deadline */
    ringlm_event ev;
    ck_assert_int_eq(ringlm_next(c, req, &ev, 5000), 0); /* it is running */
    ringlm_release(c, &ev);
    kill(S.pid, SIGTERM);
    expect_notify("STOPPING=1", log, sizeof log, 5000);
    svc_result r;
    int rc = svc_collect(c, req, &r, 5000);
    ck_assert_msg(rc == 0, "collect: %s (%s)\ndaemon log:\n%s", ringlm_strerror(rc), ringlm_last_error(),
                  svc_log(&S));
    /* the last event says why: cancelled, because the daemon shuts down */
    ck_assert_int_eq(r.final_type, RINGLM_EV_DONE);
    ck_assert_int_eq(r.finish, RINGLM_FINISH_CANCELLED);
    ck_assert_int_eq(r.status, -ESHUTDOWN);
    int st = svc_wait_exit(&S, 5000);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status 0x%x", st);
    ringlm_close(c);
}
END_TEST

START_TEST(sigterm_lets_requests_finish_within_the_deadline)
{
    svc_opts o = {.notify = true, .extra_conf = "shutdown_deadline = 20s"};
    svc_start(&S, &o);
    char log[8192] = "";
    expect_notify("READY=1", log, sizeof log, 10000);
    ringlm_conn *c = svc_connect(&S, 5000);
    ringlm_req req = submit(c, slow_prompt(60), 60); /* about 0.35 s */
    ringlm_event ev;
    ck_assert_int_eq(ringlm_next(c, req, &ev, 5000), 0);
    ringlm_release(c, &ev);
    kill(S.pid, SIGTERM);
    svc_result r;
    ck_assert_int_eq(svc_collect(c, req, &r, 10000), 0);
    ck_assert_int_eq(r.final_type, RINGLM_EV_DONE);
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_ne(r.finish, RINGLM_FINISH_CANCELLED);
    int st = svc_wait_exit(&S, 10000);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status 0x%x", st);
    expect_notify("STOPPING=1", log, sizeof log, 1000);
    ringlm_close(c);
}
END_TEST

START_TEST(sighup_sends_reloading_then_ready_and_logs_changes)
{
    svc_opts o = {.notify = true};
    svc_start(&S, &o);
    char log[8192] = "";
    expect_notify("READY=1", log, sizeof log, 10000);
    svc_write_conf(&S, "log_level = debug\nspin_window = 20us\n");
    log[0] = '\0';
    kill(S.pid, SIGHUP);
    expect_notify("RELOADING=1", log, sizeof log, 5000);
    ck_assert_msg(strstr(log, "MONOTONIC_USEC="), "got %s", log);
    expect_notify("READY=1", log, sizeof log, 5000);
    ck_assert_msg(strstr(log, "RELOADING=1") < strstr(log, "READY=1"), "got %s", log);
    ck_assert_msg(svc_log_wait(&S, "log_level changed from 'info' to 'debug'", 2000), "%s", svc_log(&S));
    ck_assert_msg(svc_log_wait(&S, "spin_window changed from '50us' to '20us'", 2000), "%s", svc_log(&S));
    run_one_request("still serving", 4);
}
END_TEST

/* Two slow requests from one client, submitted back to back; the finals. */
static void two_in_flight(svc_result *r1, svc_result *r2)
{
    ringlm_conn *c = svc_connect(&S, 5000);
    ringlm_req a = submit(c, slow_prompt(100), 100);
    ringlm_req b = submit(c, slow_prompt(100), 100);
    ck_assert_int_eq(svc_collect(c, b, r2, 10000), 0);
    ck_assert_int_eq(svc_collect(c, a, r1, 10000), 0);
    ringlm_close(c);
}

START_TEST(client_queue_from_the_file_limits_requests_in_flight)
{
    svc_opts o = {.notify = true, .extra_conf = "client_queue = 1\n"};
    svc_start(&S, &o);
    char log[8192] = "";
    expect_notify("READY=1", log, sizeof log, 10000);
    svc_result r1, r2;
    two_in_flight(&r1, &r2);
    ck_assert_int_eq(r1.final_type, RINGLM_EV_DONE);
    ck_assert_int_eq(r2.final_type, RINGLM_EV_ERROR);
    ck_assert_int_eq(r2.status, -EAGAIN);
}
END_TEST

START_TEST(command_line_client_queue_overrides_the_file_also_after_reload)
{
    svc_opts o = {.notify = true, .extra_conf = "client_queue = 1\n", .arg1 = "--client-queue=2"};
    svc_start(&S, &o);
    char log[8192] = "";
    expect_notify("READY=1", log, sizeof log, 10000);
    svc_result r1, r2;
    two_in_flight(&r1, &r2);
    ck_assert_int_eq(r1.final_type, RINGLM_EV_DONE);
    ck_assert_msg(r2.final_type == RINGLM_EV_DONE, "second request: status %d %s", r2.status, r2.msg);
    svc_write_conf(&S, "client_queue = 3\nstep_tokens = 64\n");
    kill(S.pid, SIGHUP);
    expect_notify("RELOADING=1", log, sizeof log, 5000);
    expect_notify("READY=1", log, sizeof log, 5000);
    ck_assert_msg(svc_log_wait(&S, "step_tokens changed from '512' to '64' (takes effect at the next restart)", 2000),
                  "%s", svc_log(&S));
    ck_assert_msg(!strstr(svc_log(&S), "client_queue changed"), "%s", svc_log(&S));
    two_in_flight(&r1, &r2);
    ck_assert_int_eq(r1.final_type, RINGLM_EV_DONE);
    ck_assert_msg(r2.final_type == RINGLM_EV_DONE, "second request: status %d %s", r2.status, r2.msg);
}
END_TEST

START_TEST(sighup_applies_max_clients_and_shutdown_deadline_at_once)
{
    svc_opts o = {.notify = true}; /* defaults: 64 clients, 10 s deadline */
    svc_start(&S, &o);
    char log[8192] = "";
    expect_notify("READY=1", log, sizeof log, 10000);
    svc_write_conf(&S, "max_clients = 1\nshutdown_deadline = 200ms\n");
    kill(S.pid, SIGHUP);
    expect_notify("RELOADING=1", log, sizeof log, 5000);
    expect_notify("READY=1", log, sizeof log, 5000);
    ringlm_conn *c = svc_connect(&S, 5000);
    ringlm_conn *c2 = NULL;
    int rc = ringlm_connect(S.sock, NULL, &c2);
    ck_assert_msg(rc < 0, "a second client was accepted with max_clients = 1");
    ringlm_req req = submit(c, slow_prompt(2000), 2000);
    ringlm_event ev;
    ck_assert_int_eq(ringlm_next(c, req, &ev, 5000), 0);
    ringlm_release(c, &ev);
    long long t0 = svc_now_ms();
    kill(S.pid, SIGTERM);
    svc_result r;
    ck_assert_int_eq(svc_collect(c, req, &r, 5000), 0);
    ck_assert_int_eq(r.status, -ESHUTDOWN);
    /* the old 10 s deadline would still be running */
    ck_assert_msg(svc_now_ms() - t0 < 3000, "cancelled after %lld ms", svc_now_ms() - t0);
    ringlm_close(c);
}
END_TEST

START_TEST(sighup_with_a_new_model_swaps_it_without_dropping_clients)
{
    svc_opts o = {.notify = true, .extra_conf = "model = /models/first.gguf"}; /* test engine */
    svc_start(&S, &o);
    char log[8192] = "";
    expect_notify("READY=1", log, sizeof log, 10000);
    ck_assert_msg(strstr(log, "STATUS=serving first.gguf"), "got %s", log);
    ringlm_conn *c = svc_connect(&S, 5000);
    ringlm_req a = submit(c, slow_prompt(500), 500); /* about 3 s on the old engine */
    ringlm_event ev;
    ck_assert_int_eq(ringlm_next(c, a, &ev, 5000), 0);
    ringlm_release(c, &ev);
    svc_write_conf(&S, "model = /models/second.gguf\n");
    kill(S.pid, SIGHUP);
    expect_notify("RELOADING=1", log, sizeof log, 5000);
    ck_assert_msg(svc_log_wait(&S, "new engine loaded", 3000), "%s", svc_log(&S));
    ringlm_req b = submit(c, "after the swap", 8); /* must wait for the new engine */
    /* read both in arrival order: a finishes before b produces anything */
    int a_done_at = -1, b_first_at = -1, b_done_at = -1, a_status = 1, a_finish = 0;
    for (int i = 0; b_done_at < 0 && i < 100000; i++) {
        int rc = ringlm_next(c, 0, &ev, 10000);
        ck_assert_msg(rc == 0, "next: %s\n%s", ringlm_strerror(rc), svc_log(&S));
        if (ev.req == b && b_first_at < 0)
            b_first_at = i;
        if (ev.req == a && ev.type != RINGLM_EV_TOKENS) {
            a_done_at = i;
            a_status = ev.status;
            a_finish = ev.finish;
        }
        if (ev.req == b && ev.type != RINGLM_EV_TOKENS)
            b_done_at = i;
        ringlm_release(c, &ev);
    }
    ck_assert_int_eq(a_status, 0); /* the running request finished normally */
    ck_assert_int_ne(a_finish, RINGLM_FINISH_CANCELLED);
    ck_assert_msg(a_done_at >= 0 && a_done_at < b_first_at, "a done at %d, b started at %d", a_done_at,
                  b_first_at);
    expect_notify("READY=1", log, sizeof log, 5000);
    ck_assert_msg(strstr(log, "STATUS=serving second.gguf"), "got %s", log);
    ck_assert_msg(strstr(svc_log(&S), "engine swapped"), "%s", svc_log(&S));
    ringlm_close(c);
}
END_TEST

START_TEST(sighup_keeps_values_given_on_the_command_line)
{
    svc_opts o = {.notify = true, .arg1 = "--max-clients", .arg2 = "1"};
    svc_start(&S, &o);
    char log[8192] = "";
    expect_notify("READY=1", log, sizeof log, 10000);
    svc_write_conf(&S, "max_clients = 64\nlog_level = debug\n");
    kill(S.pid, SIGHUP);
    expect_notify("READY=1", log, sizeof log, 5000);
    ck_assert_msg(svc_log_wait(&S, "log_level changed", 2000), "%s", svc_log(&S));
    ck_assert_msg(!strstr(svc_log(&S), "max_clients changed"), "%s", svc_log(&S));
    ringlm_conn *c = svc_connect(&S, 5000);
    ringlm_conn *c2 = NULL;
    ck_assert_msg(ringlm_connect(S.sock, NULL, &c2) < 0, "--max-clients 1 lost on reload");
    ringlm_close(c);
}
END_TEST

START_TEST(sighup_with_a_broken_file_keeps_the_running_configuration)
{
    svc_opts o = {.notify = true};
    svc_start(&S, &o);
    char log[8192] = "";
    expect_notify("READY=1", log, sizeof log, 10000);
    svc_write_conf(&S, "threads = lots\n");
    kill(S.pid, SIGHUP);
    expect_notify("RELOADING=1", log, sizeof log, 5000);
    expect_notify("READY=1", log, sizeof log, 5000);
    ck_assert_msg(svc_log_wait(&S, "reload failed", 2000), "%s", svc_log(&S));
    ck_assert_msg(strstr(svc_log(&S), "line 3: threads"), "%s", svc_log(&S));
    run_one_request("still serving", 4);
}
END_TEST

/* Start ringlmd on ../shared's stories260K with extra config lines and wait
 * for READY=1, the notify messages in log. false (after printing why) when
 * the model or the daemon's model engine is missing: the test skips. */
static char shared_model[400];

/* The configuration lines for the CPU engine on stories260K, then extra. */
static const char *model_conf(const char *extra)
{
    const char *shared = getenv("RL_SHARED_DIR");
    static char conf[600];
    snprintf(shared_model, sizeof shared_model, "%s/models/stories260K.gguf", shared ? shared : "");
    snprintf(conf, sizeof conf, "device = cpu\nmodel = %s\n%s", shared_model, extra);
    return conf;
}

static bool start_with_model_arg(const char *extra, const char *arg1, char *log, size_t loglen)
{
    const char *shared = getenv("RL_SHARED_DIR");
    const char *conf = model_conf(extra);
    if (!shared || access(shared_model, R_OK) != 0) {
        printf("SKIP: no ../shared/models/stories260K.gguf\n");
        return false;
    }
    svc_opts o = {.notify = true, .extra_conf = conf, .arg1 = arg1};
    svc_start(&S, &o);
    bool ready = false;
    for (long long end = svc_now_ms() + 20000; !ready && svc_now_ms() < end;) {
        ready = notify_fake_wait_for(&S.nf, "READY=1", 100, log, loglen);
        if (!ready && svc_wait_exit(&S, 1) != -1)
            break; /* the daemon gave up */
    }
    if (!ready && strstr(svc_log(&S), "built without the model engine")) {
        printf("SKIP: this ringlmd has no model engine (RL_HAVE_LLM)\n");
        return false;
    }
    ck_assert_msg(ready, "no READY=1: %s\nlog:\n%s", log, svc_log(&S));
    return true;
}

static bool start_with_model(const char *extra, char *log, size_t loglen)
{
    return start_with_model_arg(extra, NULL, log, loglen);
}

START_TEST(sigterm_with_a_model_loaded_stops_gracefully)
{
    /* The engine's compute threads start before the daemon used to block the
     * signals it reads through its signalfd: SIGTERM then reached one of them
     * and killed the process with the default action. */
    char log[65536] = "";
    if (!start_with_model("threads = 2\n", log, sizeof log))
        return;
    for (int i = 0; i < 20; i++) /* several times: any thread may be the one the kernel picks */
        kill(S.pid, SIGTERM);
    int st = svc_wait_exit(&S, 10000);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "wait status 0x%x\nlog:\n%s", st,
                  svc_log(&S));
    ck_assert_msg(strstr(svc_log(&S), "stopped"), "log:\n%s", svc_log(&S));
}
END_TEST

START_TEST(model_loading_reports_progress_before_ready)
{
    char log[65536] = "";
    if (!start_with_model("", log, sizeof log))
        return;
    char *mid = strstr(log, "STATUS=loading weights 5"); /* some 5x% step */
    char *done = strstr(log, "STATUS=loading weights 100%");
    ck_assert_msg(mid && done && mid < done && done < strstr(log, "READY=1"), "got: %s", log);
    ck_assert_msg(strstr(log, "STATUS=serving stories260K.gguf"), "got: %s", log);
}
END_TEST

START_TEST(socket_activation_serves_on_the_passed_fd)
{
    svc_opts o = {.n_listen_fds = 1, .extra_conf = "socket = /nonexistent/dir/ignored.sock"};
    svc_start(&S, &o);
    run_one_request("activated", 4);
    ck_assert_msg(svc_log_wait(&S, "socket-activated", 2000), "%s", svc_log(&S));
}
END_TEST

START_TEST(socket_activation_with_two_fds_fails_clearly)
{
    svc_opts o = {.n_listen_fds = 2};
    svc_start(&S, &o);
    int st = svc_wait_exit(&S, 5000);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0, "status 0x%x", st);
    ck_assert_msg(strstr(svc_log(&S), "expected exactly one listening AF_UNIX stream socket"), "%s",
                  svc_log(&S));
}
END_TEST

START_TEST(systemd_socket_activate_starts_the_daemon_on_first_connect)
{
    static const char *cands[] = {"/usr/bin/systemd-socket-activate", "/bin/systemd-socket-activate",
                                  "/usr/lib/systemd/systemd-activate"};
    const char *tool = NULL;
    for (size_t i = 0; i < 3 && !tool; i++)
        if (access(cands[i], X_OK) == 0)
            tool = cands[i];
    if (!tool) {
        printf("SKIP: systemd-socket-activate not installed\n");
        return;
    }
    svc_opts o = {.n_listen_fds = 1, .wrapper = tool};
    svc_start(&S, &o);
    run_one_request("activated by systemd-socket-activate", 4);
}
END_TEST

START_TEST(bad_prefill_weights_flag_or_key_stops_the_start)
{
    svc_opts o = {.arg1 = "--prefill-weights=fp16"};
    svc_start(&S, &o);
    int st = svc_wait_exit(&S, 5000);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 2, "status 0x%x\n%s", st, svc_log(&S));
    ck_assert_msg(strstr(svc_log(&S), "--prefill-weights must be auto, f16 or quantized"), "%s", svc_log(&S));
    svc_cleanup(&S);
    svc_opts o2 = {.extra_conf = "prefill_weights = fp16"};
    svc_start(&S, &o2);
    st = svc_wait_exit(&S, 5000);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0, "status 0x%x", st);
    ck_assert_msg(strstr(svc_log(&S), "line 3: prefill_weights: 'fp16' is not auto, f16 or quantized"), "%s",
                  svc_log(&S));
}
END_TEST

START_TEST(sighup_leaves_prefill_weights_for_the_next_restart)
{
    svc_opts o = {.notify = true};
    svc_start(&S, &o);
    char log[8192] = "";
    expect_notify("READY=1", log, sizeof log, 10000);
    svc_write_conf(&S, "prefill_weights = f16\n");
    kill(S.pid, SIGHUP);
    expect_notify("RELOADING=1", log, sizeof log, 5000);
    expect_notify("READY=1", log, sizeof log, 5000);
    ck_assert_msg(svc_log_wait(&S, "prefill_weights changed from 'auto' to 'f16' (takes effect at the next restart)",
                               2000), "%s", svc_log(&S));
    /* the running value stays: the next change is again from 'auto' */
    svc_write_conf(&S, "prefill_weights = quantized\n");
    kill(S.pid, SIGHUP);
    expect_notify("RELOADING=1", log, sizeof log, 5000);
    expect_notify("READY=1", log, sizeof log, 5000);
    ck_assert_msg(svc_log_wait(&S, "prefill_weights changed from 'auto' to 'quantized'", 2000), "%s", svc_log(&S));
    run_one_request("still serving", 4);
}
END_TEST

/* The value reaches the engine (the CPU engine logs that it has no effect
 * there); the command line wins over the file, also across a reload. */
START_TEST(command_line_prefill_weights_overrides_the_file_also_after_reload)
{
    char log[65536] = "";
    if (!start_with_model_arg("prefill_weights = quantized\n", "--prefill-weights=f16", log, sizeof log))
        return;
    ck_assert_msg(strstr(svc_log(&S), "prefill_weights = f16 has no effect on the CPU engine"), "%s", svc_log(&S));
    ck_assert_msg(!strstr(svc_log(&S), "quantized has no effect"), "%s", svc_log(&S));
    svc_write_conf(&S, model_conf("prefill_weights = auto\nstep_tokens = 64\n")); /* the same model: no swap */
    kill(S.pid, SIGHUP);
    ck_assert_msg(svc_log_wait(&S, "step_tokens changed from '512' to '64'", 5000), "%s", svc_log(&S));
    ck_assert_msg(svc_log_wait(&S, "configuration reloaded", 5000), "%s", svc_log(&S));
    ck_assert_msg(!strstr(svc_log(&S), "prefill_weights changed"), "%s", svc_log(&S));
}
END_TEST

START_TEST(prefill_weights_from_the_file_reaches_the_engine)
{
    char log[65536] = "";
    if (!start_with_model("prefill_weights = quantized\n", log, sizeof log))
        return;
    ck_assert_msg(strstr(svc_log(&S), "prefill_weights = quantized has no effect on the CPU engine"), "%s",
                  svc_log(&S));
}
END_TEST

START_TEST(bad_config_file_stops_the_start_with_its_line)
{
    svc_opts o = {.extra_conf = "max_clients = 0"};
    svc_start(&S, &o);
    int st = svc_wait_exit(&S, 5000);
    ck_assert_msg(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) != 0, "status 0x%x", st);
    ck_assert_msg(strstr(svc_log(&S), "line 3: max_clients"), "%s", svc_log(&S));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("service-daemon");
    TCase *tc = tcase_create("daemon");
    tcase_add_checked_fixture(tc, NULL, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, status_comes_before_ready_and_ready_names_the_main_pid);
    tcase_add_test(tc, watchdog_pings_twice_per_interval_while_idle);
    tcase_add_test(tc, watchdog_is_silent_when_watchdog_pid_is_another_process);
    tcase_add_test(tc, watchdog_keeps_pinging_while_slow_steps_progress);
    tcase_add_test(tc, watchdog_pings_stop_when_a_step_hangs);
    tcase_add_test(tc, sigterm_sends_stopping_and_cancels_with_eshutdown_at_the_deadline);
    tcase_add_test(tc, sigterm_lets_requests_finish_within_the_deadline);
    tcase_add_test(tc, sighup_sends_reloading_then_ready_and_logs_changes);
    tcase_add_test(tc, client_queue_from_the_file_limits_requests_in_flight);
    tcase_add_test(tc, command_line_client_queue_overrides_the_file_also_after_reload);
    tcase_add_test(tc, sighup_applies_max_clients_and_shutdown_deadline_at_once);
    tcase_add_test(tc, sighup_with_a_new_model_swaps_it_without_dropping_clients);
    tcase_add_test(tc, sighup_keeps_values_given_on_the_command_line);
    tcase_add_test(tc, sighup_with_a_broken_file_keeps_the_running_configuration);
    tcase_add_test(tc, model_loading_reports_progress_before_ready);
    tcase_add_test(tc, sigterm_with_a_model_loaded_stops_gracefully);
    tcase_add_test(tc, socket_activation_serves_on_the_passed_fd);
    tcase_add_test(tc, socket_activation_with_two_fds_fails_clearly);
    tcase_add_test(tc, systemd_socket_activate_starts_the_daemon_on_first_connect);
    tcase_add_test(tc, bad_config_file_stops_the_start_with_its_line);
    tcase_add_test(tc, bad_prefill_weights_flag_or_key_stops_the_start);
    tcase_add_test(tc, sighup_leaves_prefill_weights_for_the_next_restart);
    tcase_add_test(tc, command_line_prefill_weights_overrides_the_file_also_after_reload);
    tcase_add_test(tc, prefill_weights_from_the_file_reaches_the_engine);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
