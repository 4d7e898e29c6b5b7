/* test_sd.c - sd_notify messages (read from a fake NOTIFY_SOCKET), the
 * watchdog decision, and the listening socket (own or socket-activated). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "notify_fake.h"
#include "rl_log.h"
#include "rl_sd.h"

static notify_fake nf;

static void setup(void)
{
    unsetenv("WATCHDOG_USEC");
    unsetenv("WATCHDOG_PID");
    ck_assert_int_eq(notify_fake_open(&nf), 0);
    rl_log_set_target(RL_LOG_CONSOLE);
    rl_log_set_level(LOG_ERR);
}

static void teardown(void) { notify_fake_close(&nf); }

static void recv_one(char *buf, size_t cap)
{
    int n = notify_fake_recv(&nf, buf, cap, 2000);
    ck_assert_int_gt(n, 0);
}

START_TEST(nothing_is_sent_without_notify_socket)
{
    unsetenv("NOTIFY_SOCKET");
    rl_sd_init();
    ck_assert(!rl_sd_notify_enabled());
    ck_assert_int_eq(rl_sd_ready("x"), 0);
    char buf[256];
    ck_assert_int_eq(notify_fake_recv(&nf, buf, sizeof buf, 50), 0);
}
END_TEST

START_TEST(ready_carries_status_and_mainpid)
{
    rl_sd_init();
    ck_assert(rl_sd_notify_enabled());
    ck_assert_int_gt(rl_sd_ready("serving model x\nINJECTED=1"), 0);
    char buf[512], want[64];
    recv_one(buf, sizeof buf);
    snprintf(want, sizeof want, "MAINPID=%d", (int)getpid());
    ck_assert_msg(strncmp(buf, "READY=1\n", 8) == 0, "got %s", buf);
    ck_assert_msg(strstr(buf, "STATUS=serving model x INJECTED=1\n"), "got %s", buf);
    ck_assert_msg(strstr(buf, want), "got %s", buf);
}
END_TEST

START_TEST(progress_sends_status_only_when_percent_changes)
{
    rl_sd_init();
    rl_sd_status_progress("loading weights", 0, 1000);
    rl_sd_status_progress("loading weights", 4, 1000);   /* still 0% */
    rl_sd_status_progress("loading weights", 410, 1000); /* 41% */
    rl_sd_status_progress("loading weights", 415, 1000); /* still 41% */
    rl_sd_status_progress("loading weights", 1000, 1000);
    char buf[256];
    recv_one(buf, sizeof buf);
    ck_assert_str_eq(buf, "STATUS=loading weights 0%");
    recv_one(buf, sizeof buf);
    ck_assert_str_eq(buf, "STATUS=loading weights 41%");
    recv_one(buf, sizeof buf);
    ck_assert_str_eq(buf, "STATUS=loading weights 100%");
    ck_assert_int_eq(notify_fake_recv(&nf, buf, sizeof buf, 50), 0);
}
END_TEST

START_TEST(progress_pings_the_watchdog_when_enabled)
{
    char v[32];
    setenv("WATCHDOG_USEC", "1000000", 1);
    snprintf(v, sizeof v, "%d", (int)getpid());
    setenv("WATCHDOG_PID", v, 1);
    ck_assert_uint_eq(rl_sd_init(), 1000000);
    rl_sd_status_progress("loading weights", 1, 2);
    char log[1024] = "";
    ck_assert_msg(notify_fake_wait_for(&nf, "WATCHDOG=1", 1000, log, sizeof log), "got %s", log);
    ck_assert_msg(strstr(log, "STATUS=loading weights 50%"), "got %s", log);
}
END_TEST

START_TEST(reloading_carries_monotonic_usec)
{
    rl_sd_init();
    uint64_t before = rl_sd_now_us();
    rl_sd_reloading("reloading configuration");
    char buf[256];
    recv_one(buf, sizeof buf);
    ck_assert_msg(strncmp(buf, "RELOADING=1\n", 12) == 0, "got %s", buf);
    const char *m = strstr(buf, "MONOTONIC_USEC=");
    ck_assert_ptr_nonnull(m);
    unsigned long long t = strtoull(m + 15, NULL, 10);
    ck_assert_uint_ge(t, before);
    ck_assert_uint_le(t, rl_sd_now_us());
}
END_TEST

START_TEST(stopping_is_sent)
{
    rl_sd_init();
    rl_sd_stopping("shutting down: 2 requests in flight");
    char buf[256];
    recv_one(buf, sizeof buf);
    ck_assert_str_eq(buf, "STOPPING=1\nSTATUS=shutting down: 2 requests in flight");
}
END_TEST

START_TEST(watchdog_is_off_when_watchdog_pid_is_another_process)
{
    setenv("WATCHDOG_USEC", "1000000", 1);
    char v[32];
    snprintf(v, sizeof v, "%d", (int)getpid() + 1);
    setenv("WATCHDOG_PID", v, 1);
    ck_assert_uint_eq(rl_sd_init(), 0);
    ck_assert_int_eq(rl_sd_watchdog_ping(), 0);
    char buf[64];
    ck_assert_int_eq(notify_fake_recv(&nf, buf, sizeof buf, 50), 0);
}
END_TEST

/* The decision logic with synthetic times (interval 1 s). */
START_TEST(watchdog_pings_at_half_interval_while_idle)
{
    rl_sd_watchdog w;
    rl_sd_watchdog_init(&w, 1000000, 0);
    ck_assert_uint_eq(rl_sd_watchdog_period_us(&w), 250000);
    int pings = 0;
    for (uint64_t t = 0; t <= 10000000; t += 250000)
        pings += rl_sd_watchdog_tick(&w, t + 1, 0, false) == 1;
    /* 10 s at one ping per 0.5 s, plus the first one */
    ck_assert_int_eq(pings, 21);
}
END_TEST

START_TEST(watchdog_keeps_pinging_while_worker_progresses)
{
    rl_sd_watchdog w;
    rl_sd_watchdog_init(&w, 1000000, 0);
    uint64_t steps = 0;
    for (uint64_t t = 1; t <= 10000000; t += 250000) {
        steps += 1; /* a step finishes every 0.25 s: busy but moving */
        ck_assert_int_ge(rl_sd_watchdog_tick(&w, t, steps, true), 0);
    }
}
END_TEST

START_TEST(watchdog_withholds_pings_when_a_step_hangs)
{
    rl_sd_watchdog w;
    rl_sd_watchdog_init(&w, 1000000, 0);
    ck_assert_int_eq(rl_sd_watchdog_tick(&w, 1, 5, true), 1);
    ck_assert_int_eq(rl_sd_watchdog_tick(&w, 600000, 5, true), 1);  /* 0.6 s on the step: fine */
    ck_assert_int_eq(rl_sd_watchdog_tick(&w, 700000, 5, true), 0); /* not due */
    ck_assert_int_eq(rl_sd_watchdog_tick(&w, 1100000, 5, true), -1); /* > 1 s on one step */
    ck_assert_int_eq(rl_sd_watchdog_tick(&w, 5000000, 5, true), -1);
    /* the step finishes: pings resume at once */
    ck_assert_int_eq(rl_sd_watchdog_tick(&w, 5100000, 6, true), 1);
}
END_TEST

START_TEST(watchdog_tick_sends_the_datagram)
{
    char v[32];
    setenv("WATCHDOG_USEC", "2000000", 1);
    snprintf(v, sizeof v, "%d", (int)getpid());
    setenv("WATCHDOG_PID", v, 1);
    rl_sd_watchdog w;
    rl_sd_watchdog_init(&w, rl_sd_init(), rl_sd_now_us());
    ck_assert_int_eq(rl_sd_watchdog_tick(&w, rl_sd_now_us(), 0, false), 1);
    char buf[64];
    recv_one(buf, sizeof buf);
    ck_assert_str_eq(buf, "WATCHDOG=1");
}
END_TEST

/* --- listen socket --- */
static char sockdir[64];
/* paths here stay below sizeof(sun_path) */

static void listen_setup(void)
{
    snprintf(sockdir, sizeof sockdir, "/tmp/rl-sd-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(sockdir));
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_PID");
    rl_log_set_target(RL_LOG_CONSOLE);
    rl_log_set_level(LOG_ERR);
}

static void listen_teardown(void)
{
    char p[128];
    snprintf(p, sizeof p, "%s/s.sock", sockdir);
    unlink(p);
    rmdir(sockdir);
}

static int connect_to(const char *path)
{
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int rc = connect(c, (struct sockaddr *)&sa, sizeof sa);
    close(c);
    return rc;
}

static void set_listen_env(int n)
{
    char v[32];
    snprintf(v, sizeof v, "%d", n);
    setenv("LISTEN_FDS", v, 1);
    snprintf(v, sizeof v, "%d", (int)getpid());
    setenv("LISTEN_PID", v, 1);
}

START_TEST(listen_creates_socket_with_mode_0660_when_not_activated)
{
    char path[100], err[256] = "";
    snprintf(path, sizeof path, "%s/s.sock", sockdir);
    bool act = true;
    int fd = rl_sd_listen(path, &act, err, sizeof err);
    ck_assert_msg(fd >= 0, "%s", err);
    ck_assert(!act);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    ck_assert_uint_eq(st.st_mode & 0777, 0660);
    ck_assert_int_eq(connect_to(path), 0);
    close(fd);
}
END_TEST

START_TEST(listen_replaces_a_stale_socket_but_not_a_live_one_or_a_file)
{
    char path[100], err[256] = "";
    snprintf(path, sizeof path, "%s/s.sock", sockdir);
    bool act;
    int fd = rl_sd_listen(path, &act, err, sizeof err);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(rl_sd_listen(path, &act, err, sizeof err), -EADDRINUSE);
    close(fd); /* now stale */
    fd = rl_sd_listen(path, &act, err, sizeof err);
    ck_assert_msg(fd >= 0, "%s", err);
    close(fd);
    unlink(path);
    FILE *f = fopen(path, "w");
    fclose(f);
    ck_assert_int_eq(rl_sd_listen(path, &act, err, sizeof err), -EEXIST);
}
END_TEST

START_TEST(listen_takes_the_one_activated_socket)
{
    char path[100], err[256] = "";
    snprintf(path, sizeof path, "%s/s.sock", sockdir);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(s, 4), 0);
    ck_assert_int_eq(dup2(s, 3), 3);
    if (s != 3)
        close(s);
    set_listen_env(1);
    bool act = false;
    int fd = rl_sd_listen("/nonexistent/other.sock", &act, err, sizeof err);
    ck_assert_msg(fd == 3, "fd %d: %s", fd, err);
    ck_assert(act);
    ck_assert_ptr_null(getenv("LISTEN_FDS")); /* not inherited by children */
    ck_assert_int_eq(connect_to(path), 0);
}
END_TEST

START_TEST(listen_rejects_two_activated_fds)
{
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    dup2(p[0], 3);
    dup2(p[1], 4);
    set_listen_env(2);
    bool act;
    char err[256] = "";
    ck_assert_int_eq(rl_sd_listen("/x", &act, err, sizeof err), -EINVAL);
    ck_assert_msg(strstr(err, "expected exactly one"), "err: %s", err);
}
END_TEST

START_TEST(listen_rejects_an_activated_fd_that_is_not_a_stream_socket)
{
    int s = socket(AF_UNIX, SOCK_DGRAM, 0);
    dup2(s, 3);
    set_listen_env(1);
    bool act;
    char err[256] = "";
    ck_assert_int_eq(rl_sd_listen("/x", &act, err, sizeof err), -EINVAL);
    ck_assert_msg(strstr(err, "not a listening AF_UNIX stream socket"), "err: %s", err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("service-sd");
    TCase *tc = tcase_create("notify");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, nothing_is_sent_without_notify_socket);
    tcase_add_test(tc, ready_carries_status_and_mainpid);
    tcase_add_test(tc, progress_sends_status_only_when_percent_changes);
    tcase_add_test(tc, progress_pings_the_watchdog_when_enabled);
    tcase_add_test(tc, reloading_carries_monotonic_usec);
    tcase_add_test(tc, stopping_is_sent);
    tcase_add_test(tc, watchdog_is_off_when_watchdog_pid_is_another_process);
    tcase_add_test(tc, watchdog_pings_at_half_interval_while_idle);
    tcase_add_test(tc, watchdog_keeps_pinging_while_worker_progresses);
    tcase_add_test(tc, watchdog_withholds_pings_when_a_step_hangs);
    tcase_add_test(tc, watchdog_tick_sends_the_datagram);
    suite_add_tcase(s, tc);
    TCase *tl = tcase_create("listen");
    tcase_add_checked_fixture(tl, listen_setup, listen_teardown);
    tcase_add_test(tl, listen_creates_socket_with_mode_0660_when_not_activated);
    tcase_add_test(tl, listen_replaces_a_stale_socket_but_not_a_live_one_or_a_file);
    tcase_add_test(tl, listen_takes_the_one_activated_socket);
    tcase_add_test(tl, listen_rejects_two_activated_fds);
    tcase_add_test(tl, listen_rejects_an_activated_fd_that_is_not_a_stream_socket);
    suite_add_tcase(s, tl);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
