/* Daemon lifecycle: injected listening socket, graceful stop, stop deadline,
 * hung-worker detection, tick hook, client limit. */
#include "tt_main.h"
#include "tt_util.h"

#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rl_log.h"
#include "rl_wire.h"

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* A listening Unix socket at dir/s (dir: a mkdtemp template, filled in). */
static int listen_in_tmpdir(char *dir, struct sockaddr_un *sa, int backlog)
{
    ck_assert_ptr_nonnull(mkdtemp(dir));
    *sa = (struct sockaddr_un){.sun_family = AF_UNIX};
    snprintf(sa->sun_path, sizeof sa->sun_path, "%s/s", dir);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)sa, sizeof *sa), 0);
    ck_assert_int_eq(listen(fd, backlog), 0);
    return fd;
}

START_TEST(test_injected_listening_socket_is_served)
{
    char dir[] = "/tmp/ringlm-fd-XXXXXX";
    struct sockaddr_un sa;
    int fd = listen_in_tmpdir(dir, &sa, 16);
    rl_daemon_opts o;
    rl_daemon_opts_default(&o);
    o.listen_fd = fd;
    tt_daemon td;
    tt_start_opts(&td, &o, NULL);
    ck_assert_str_eq(rl_daemon_socket_path(td.d), "");
    ringlm_conn *c;
    ck_assert_int_eq(ringlm_connect(sa.sun_path, NULL, &c), 0);
    ck_assert_int_eq(ringlm_ping(c, 5000), 0);
    ringlm_close(c);
    tt_stop(&td);
    unlink(sa.sun_path);
    rmdir(dir);
}
END_TEST

START_TEST(test_graceful_stop_lets_requests_finish)
{
    tt_daemon td;
    tt_start(&td, 50);
    ringlm_conn *c = tt_connect(&td);
    const char *p = "__slow__ finish me";
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(c, p, strlen(p), NULL, &r), 0);
    ck_assert_int_eq(tt_wait_stats(&td, 1, 1), 0);
    rl_daemon_request_stop(td.d, 30000);
    tt_result res;
    ck_assert_int_eq(tt_collect(c, r, &res, 10000), 0);
    ck_assert_int_eq(res.finish, RINGLM_FINISH_EOS);
    ck_assert_str_eq(res.text, p);
    tt_result_free(&res);
    pthread_join(td.thr, NULL); /* run() returns once nothing is in flight */
    ck_assert_int_eq(td.run_rc, 0);
    ck_assert_int_eq(ringlm_ping(c, 5000), -ECONNRESET);
    ringlm_close(c);
    rl_daemon_destroy(td.d);
    rmdir(td.dir);
}
END_TEST

START_TEST(test_stop_deadline_cancels_long_requests)
{
    tt_daemon td;
    tt_start(&td, 50);
    ringlm_conn *c = tt_connect(&td);
    char p[300];
    memset(p, 'z', sizeof p);
    memcpy(p, "__slow__", 8);
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(c, p, sizeof p, NULL, &r), 0);
    ck_assert_int_eq(tt_wait_stats(&td, 1, 1), 0);
    rl_daemon_request_stop(td.d, 20);
    tt_result res;
    ck_assert_int_eq(tt_collect(c, r, &res, 10000), 0);
    ck_assert_int_eq(res.final_type, RINGLM_EV_DONE);
    ck_assert_int_eq(res.finish, RINGLM_FINISH_CANCELLED);
    tt_result_free(&res);
    pthread_join(td.thr, NULL);
    ringlm_close(c);
    rl_daemon_destroy(td.d);
    rmdir(td.dir);
}
END_TEST

START_TEST(test_hung_step_is_reported_as_stalled)
{
    tt_daemon td;
    tt_start(&td, 50);
    ringlm_conn *c = tt_connect(&td);
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(c, "__hang__", 8, NULL, &r), 0);
    int stalled = 0;
    for (int i = 0; i < 5000 && !stalled; i++) {
        stalled = rl_daemon_worker_stalled(td.d, 20000000ull);
        nap_ms(2);
    }
    ck_assert(stalled);
    ck_assert_int_eq(ringlm_ping(c, 5000), 0); /* the loop still answers */
    ringlm_close(c);
    tt_stop(&td); /* releases the hung step */
}
END_TEST

START_TEST(test_idle_worker_is_not_stalled)
{
    tt_daemon td;
    tt_start(&td, 50);
    nap_ms(30);
    ck_assert(!rl_daemon_worker_stalled(td.d, 1000000ull));
    tt_stop(&td);
}
END_TEST

static atomic_int ticks;
static void on_tick(rl_daemon *d, void *user)
{
    (void)d;
    (void)user;
    atomic_fetch_add(&ticks, 1);
}

START_TEST(test_tick_hook_runs_on_the_loop)
{
    rl_daemon_opts o;
    rl_daemon_opts_default(&o);
    rl_daemon_hooks h = {.on_tick = on_tick, .tick_ms = 5};
    tt_daemon td;
    tt_start_opts(&td, &o, &h);
    for (int i = 0; i < 5000 && atomic_load(&ticks) < 3; i++)
        nap_ms(2);
    ck_assert_int_ge(atomic_load(&ticks), 3);
    tt_stop(&td);
}
END_TEST

START_TEST(test_clients_beyond_the_limit_are_refused)
{
    rl_daemon_opts o;
    rl_daemon_opts_default(&o);
    o.max_clients = 2;
    tt_daemon td;
    tt_start_opts(&td, &o, NULL);
    ringlm_conn *a = tt_connect(&td), *b = tt_connect(&td), *c = NULL;
    ck_assert_int_eq(ringlm_connect(td.sock, NULL, &c), -EUSERS);
    ck_assert_ptr_nonnull(strstr(ringlm_last_error(), "too many clients"));
    ringlm_close(a);
    ck_assert_int_eq(tt_wait_stats(&td, 1, 0), 0);
    ck_assert_int_eq(ringlm_connect(td.sock, NULL, &c), 0); /* room again */
    ringlm_close(b);
    ringlm_close(c);
    tt_stop(&td);
}
END_TEST

/* A refusing daemon answers and closes at once, perhaps before the client has
 * written its hello: the client must still report the refusal, not EPIPE. */
enum { REFUSALS = 300 };

static void *refuse_all(void *arg)
{
    int ls = *(int *)arg;
    for (int i = 0; i < REFUSALS; i++) {
        int s = accept(ls, NULL, NULL);
        if (s < 0)
            return NULL;
        rl_wire_welcome w = {.magic = RL_WIRE_MAGIC, .version = RL_WIRE_VERSION,
                             .status = -EUSERS};
        snprintf(w.message, sizeof w.message, "too many clients");
        if (send(s, &w, sizeof w, MSG_NOSIGNAL) != (ssize_t)sizeof w)
            fprintf(stderr, "fake daemon: send: %s\n", strerror(errno));
        close(s);
    }
    return NULL;
}

START_TEST(test_refusal_is_reported_even_when_it_beats_the_hello)
{
    char dir[] = "/tmp/ringlm-refuse-XXXXXX";
    struct sockaddr_un sa;
    int ls = listen_in_tmpdir(dir, &sa, 4);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, refuse_all, &ls), 0);
    for (int i = 0; i < REFUSALS; i++) {
        ringlm_conn *c = NULL;
        int rc = ringlm_connect(sa.sun_path, NULL, &c);
        ck_assert_msg(rc == -EUSERS, "connect %d: %d (%s)", i, rc, ringlm_last_error());
        ck_assert_ptr_nonnull(strstr(ringlm_last_error(), "too many clients"));
        ck_assert_ptr_null(c);
    }
    pthread_join(th, NULL);
    close(ls);
    unlink(sa.sun_path);
    rmdir(dir);
}
END_TEST

START_TEST(test_requests_beyond_the_per_client_limit_are_busy)
{
    tt_daemon td;
    tt_start(&td, 50);
    ringlm_conn *c = tt_connect(&td);
    ringlm_req r;
    for (int i = 0; i < 1024; i++) /* held by a hung step: they stay in flight */
        ck_assert_int_eq(ringlm_submit_text(c, "__hang__", 8, NULL, &r), 0);
    ck_assert_int_eq(ringlm_submit_text(c, "one more", 8, NULL, &r), 0);
    tt_result res;
    ck_assert_int_eq(tt_collect(c, r, &res, 10000), 0);
    ck_assert_int_eq(res.final_type, RINGLM_EV_ERROR);
    ck_assert_int_eq(res.status, -EBUSY);
    tt_result_free(&res);
    ringlm_close(c);
    tt_stop(&td);
}
END_TEST

START_TEST(test_live_socket_is_kept_and_stale_one_replaced)
{
    tt_daemon td;
    tt_start(&td, 50);
    rl_daemon_opts o;
    rl_daemon_opts_default(&o);
    o.socket_path = td.sock;
    rl_daemon *second = NULL;
    char err[256];
    ck_assert_int_eq(rl_daemon_create(&o, &second, err, sizeof err), -EADDRINUSE);
    ck_assert_ptr_nonnull(strstr(err, "another daemon"));
    /* A socket file nobody listens on (a crashed daemon's) is replaced. */
    char stale[160];
    snprintf(stale, sizeof stale, "%s/stale.sock", td.dir);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    ck_assert_uint_lt(strlen(stale), sizeof sa.sun_path);
    memcpy(sa.sun_path, stale, strlen(stale) + 1);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd); /* the file stays, nobody listens */
    o.socket_path = stale;
    ck_assert_int_eq(rl_daemon_create(&o, &second, err, sizeof err), 0);
    rl_daemon_destroy(second); /* removes its socket file */
    ck_assert_int_eq(access(stale, F_OK), -1);
    tt_stop(&td);
}
END_TEST

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    ck_assert_ptr_nonnull(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

START_TEST(test_closed_connections_leave_no_descriptors_behind)
{
    tt_daemon td;
    tt_start(&td, 50);
    int before = count_fds();
    for (int i = 0; i < 50; i++) {
        ringlm_conn *c = tt_connect(&td);
        ringlm_req r;
        ck_assert_int_eq(ringlm_submit_text(c, "__slow__ bye", 12, NULL, &r), 0);
        ringlm_close(c); /* with a request in flight */
    }
    ck_assert_int_eq(tt_wait_stats(&td, 0, 0), 0);
    int after = count_fds();
    for (int i = 0; i < 2500 && after != before; i++) { /* last references drop asynchronously */
        nap_ms(2);
        after = count_fds();
    }
    ck_assert_int_eq(after, before);
    tt_stop(&td);
}
END_TEST

static int reload_pipe = -1;
static void on_reload(rl_daemon *d, void *user)
{
    (void)d;
    (void)user;
    char b = 'R';
    ck_assert_int_eq(write(reload_pipe, &b, 1), 1);
}

START_TEST(test_signals_reload_and_stop_gracefully)
{
    char dir[] = "/tmp/ringlm-sig-XXXXXX", sock[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(sock, sizeof sock, "%s/s", dir);
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        rl_log_set_level(LOG_WARNING);
        rl_daemon_opts o;
        rl_daemon_opts_default(&o);
        o.socket_path = sock;
        o.handle_signals = true;
        rl_daemon *d;
        char err[256];
        if (rl_daemon_create(&o, &d, err, sizeof err) < 0)
            _exit(3);
        reload_pipe = pfd[1];
        rl_daemon_hooks h = {.on_reload = on_reload};
        rl_daemon_set_hooks(d, &h);
        int rc = rl_daemon_run(d);
        rl_daemon_destroy(d);
        _exit(rc == 0 ? 0 : 4);
    }
    ringlm_conn *c = NULL;
    for (int i = 0; i < 2000 && ringlm_connect(sock, NULL, &c) < 0; i++)
        nap_ms(2);
    ck_assert_ptr_nonnull(c);
    kill(pid, SIGHUP);
    char b;
    ck_assert_int_eq(read(pfd[0], &b, 1), 1);
    ck_assert_int_eq(b, 'R');
    const char *p = "__slow__ survive SIGTERM";
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(c, p, strlen(p), NULL, &r), 0);
    ringlm_event ev;
    ck_assert_int_eq(ringlm_next(c, r, &ev, 10000), 0); /* running */
    ck_assert_int_eq(ev.type, RINGLM_EV_TOKENS);
    char first[64];
    snprintf(first, sizeof first, "%.*s", (int)ev.text_len, ev.text);
    ringlm_release(c, &ev);
    kill(pid, SIGTERM);
    tt_result res;
    ck_assert_int_eq(tt_collect(c, r, &res, 10000), 0);
    ck_assert_int_eq(res.finish, RINGLM_FINISH_EOS);
    char all[128];
    snprintf(all, sizeof all, "%s%s", first, res.text);
    ck_assert_str_eq(all, p);
    tt_result_free(&res);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ringlm_close(c);
    rmdir(dir);
}
END_TEST

static Suite *lifecycle_suite(void)
{
    Suite *s = suite_create("lifecycle");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_injected_listening_socket_is_served);
    tcase_add_test(tc, test_graceful_stop_lets_requests_finish);
    tcase_add_test(tc, test_stop_deadline_cancels_long_requests);
    tcase_add_test(tc, test_hung_step_is_reported_as_stalled);
    tcase_add_test(tc, test_idle_worker_is_not_stalled);
    tcase_add_test(tc, test_tick_hook_runs_on_the_loop);
    tcase_add_test(tc, test_clients_beyond_the_limit_are_refused);
    tcase_add_test(tc, test_refusal_is_reported_even_when_it_beats_the_hello);
    tcase_add_test(tc, test_requests_beyond_the_per_client_limit_are_busy);
    tcase_add_test(tc, test_signals_reload_and_stop_gracefully);
    tcase_add_test(tc, test_closed_connections_leave_no_descriptors_behind);
    tcase_add_test(tc, test_live_socket_is_kept_and_stale_one_replaced);
    suite_add_tcase(s, tc);
    return s;
}
TT_MAIN(lifecycle_suite)
