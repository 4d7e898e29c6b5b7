/* Peer death: a client killed mid-stream frees its resources; a killed daemon
 * makes client calls fail promptly instead of hanging. */
#include "tt_main.h"
#include "tt_util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void slow_prompt(char *p, size_t n)
{
    memset(p, 'y', n);
    memcpy(p, "__slow__", 8);
}

START_TEST(test_killed_client_is_freed_and_others_continue)
{
    tt_daemon td;
    tt_start(&td, 50);
    ringlm_conn *other = tt_connect(&td);
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        ringlm_conn *c;
        if (ringlm_connect(td.sock, NULL, &c) < 0)
            _exit(1);
        char p[300];
        slow_prompt(p, sizeof p);
        ringlm_req r;
        ringlm_event ev;
        if (ringlm_submit_text(c, p, sizeof p, NULL, &r) < 0 || ringlm_next(c, r, &ev, 5000) < 0)
            _exit(1);
        char ok = 1;
        if (write(pfd[1], &ok, 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    char b;
    ck_assert_int_eq(read(pfd[0], &b, 1), 1); /* the child is mid-stream */
    ck_assert_int_eq(tt_wait_stats(&td, 2, 1), 0);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    ck_assert_int_eq(tt_wait_stats(&td, 1, 0), 0); /* connection and request freed */
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(other, "still here", 10, NULL, &r), 0);
    tt_result res;
    ck_assert_int_eq(tt_collect(other, r, &res, 5000), 0);
    ck_assert_str_eq(res.text, "still here");
    tt_result_free(&res);
    ringlm_close(other);
    tt_stop(&td);
}
END_TEST

/* A daemon in a child process, so that it can be SIGKILLed. */
static pid_t spawn_daemon(char *sock, size_t n)
{
    char dir[] = "/tmp/ringlm-kill-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(sock, n, "%s/s", dir);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        rl_daemon_opts o;
        rl_daemon_opts_default(&o);
        o.socket_path = sock;
        rl_daemon *d;
        char err[256];
        if (rl_daemon_create(&o, &d, err, sizeof err) < 0)
            _exit(1);
        rl_daemon_run(d);
        _exit(0);
    }
    return pid;
}

static ringlm_conn *connect_retry(const char *sock)
{
    ringlm_conn *c = NULL;
    for (int i = 0; i < 2000; i++) {
        if (ringlm_connect(sock, NULL, &c) == 0)
            return c;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    ck_abort_msg("daemon did not come up");
    return NULL;
}

START_TEST(test_killed_daemon_fails_a_waiting_client)
{
    char sock[128];
    pid_t pid = spawn_daemon(sock, sizeof sock);
    ringlm_conn *c = connect_retry(sock);
    char p[300];
    slow_prompt(p, sizeof p);
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(c, p, sizeof p, NULL, &r), 0);
    ringlm_event ev;
    ck_assert_int_eq(ringlm_next(c, r, &ev, 5000), 0);
    ringlm_release(c, &ev);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    int rc, type = 0;
    do { /* events already posted may still arrive; then the loss */
        rc = ringlm_next(c, r, &ev, 60000);
        if (rc == 0) {
            type = ev.type;
            ringlm_release(c, &ev);
        }
    } while (rc == 0 && type == RINGLM_EV_TOKENS);
    ck_assert_int_eq(rc, -ECONNRESET);
    ck_assert_int_eq(ringlm_ping(c, 60000), -ECONNRESET);
    ck_assert_int_eq(ringlm_info(c, &(ringlm_daemon_info){0}, 60000), -ECONNRESET);
    ringlm_close(c);
    unlink(sock);
}
END_TEST

START_TEST(test_killed_idle_daemon_fails_the_next_call)
{
    char sock[128];
    pid_t pid = spawn_daemon(sock, sizeof sock);
    ringlm_conn *c = connect_retry(sock);
    ck_assert_int_eq(ringlm_ping(c, 5000), 0);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    ringlm_event ev;
    ck_assert_int_eq(ringlm_next(c, 0, &ev, 60000), -ECONNRESET);
    ringlm_close(c);
    unlink(sock);
}
END_TEST

START_TEST(test_killed_daemon_fails_submissions_once_the_ring_fills)
{
    char sock[128];
    pid_t pid = spawn_daemon(sock, sizeof sock);
    ringlm_conn *c = connect_retry(sock);
    ck_assert_int_eq(ringlm_ping(c, 5000), 0);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    int rc = 0, i;
    ringlm_req r;
    for (i = 0; i < 1000 && rc == 0; i++) /* no syscall per submit: fails when no room is left */
        rc = ringlm_submit_text(c, "x", 1, NULL, &r);
    ck_assert_int_eq(rc, -ECONNRESET);
    ck_assert_int_le(i, 257);
    ringlm_close(c);
    unlink(sock);
}
END_TEST

static Suite *death_suite(void)
{
    Suite *s = suite_create("death");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_killed_client_is_freed_and_others_continue);
    tcase_add_test(tc, test_killed_daemon_fails_a_waiting_client);
    tcase_add_test(tc, test_killed_idle_daemon_fails_the_next_call);
    tcase_add_test(tc, test_killed_daemon_fails_submissions_once_the_ring_fills);
    suite_add_tcase(s, tc);
    return s;
}
TT_MAIN(death_suite)
