/* svc_util.c - see svc_util.h. */
#include "svc_util.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

long long svc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

void svc_write_conf(svc *s, const char *text)
{
    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.new", s->conf);
    FILE *f = fopen(tmp, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "device = test\nsocket = %s\n%s\n", s->sock, text ? text : "");
    fclose(f);
    ck_assert_int_eq(rename(tmp, s->conf), 0);
}

static int make_listener(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    return fd;
}

void svc_start(svc *s, const svc_opts *o)
{
    const char *bin = getenv("RINGLMD");
    ck_assert_msg(bin && access(bin, X_OK) == 0, "RINGLMD not set to the ringlmd binary");
    memset(s, 0, sizeof *s);
    s->pid = -1;
    snprintf(s->dir, sizeof s->dir, "/tmp/rl-svc-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(s->dir));
    snprintf(s->sock, sizeof s->sock, "%s/ringlm.sock", s->dir);
    snprintf(s->conf, sizeof s->conf, "%s/ringlmd.conf", s->dir);
    snprintf(s->log, sizeof s->log, "%s/stderr.log", s->dir);
    svc_write_conf(s, o->extra_conf);
    if (o->notify) {
        ck_assert_int_eq(notify_fake_open(&s->nf), 0);
        s->nf_open = true;
    }
    int lfd[2] = {-1, -1};
    if (o->n_listen_fds >= 1 && !o->wrapper)
        lfd[0] = make_listener(s->sock);
    if (o->n_listen_fds >= 2) {
        char p2[160];
        snprintf(p2, sizeof p2, "%s/second.sock", s->dir);
        lfd[1] = make_listener(p2);
    }
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int log = open(s->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        dup2(log, STDERR_FILENO);
        char v[32];
        if (o->watchdog_usec) {
            snprintf(v, sizeof v, "%u", o->watchdog_usec);
            setenv("WATCHDOG_USEC", v, 1);
            snprintf(v, sizeof v, "%d", (int)getpid() + (o->watchdog_pid_other ? 1 : 0));
            setenv("WATCHDOG_PID", v, 1);
        }
        unsetenv("JOURNAL_STREAM");
        if (!o->notify)
            unsetenv("NOTIFY_SOCKET");
        if (lfd[0] >= 0) {
            /* fds 3.. as systemd passes them; dup2 clears CLOEXEC */
            int a = dup(lfd[0]), b = lfd[1] >= 0 ? dup(lfd[1]) : -1;
            dup2(a, 3);
            if (b >= 0)
                dup2(b, 4);
            snprintf(v, sizeof v, "%d", o->n_listen_fds);
            setenv("LISTEN_FDS", v, 1);
            snprintf(v, sizeof v, "%d", (int)getpid());
            setenv("LISTEN_PID", v, 1);
        }
        if (o->wrapper)
            execl(o->wrapper, o->wrapper, "-l", s->sock, bin, "--config", s->conf, (char *)NULL);
        else
            execl(bin, bin, "--config", s->conf, o->arg1, o->arg2, (char *)NULL);
        _exit(127);
    }
    s->pid = pid;
    for (int i = 0; i < 2; i++)
        if (lfd[i] >= 0)
            close(lfd[i]);
}

int svc_wait_exit(svc *s, int timeout_ms)
{
    long long end = svc_now_ms() + timeout_ms;
    while (svc_now_ms() < end) {
        int st;
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid) {
            s->pid = -1;
            return st;
        }
        sleep_ms(5);
    }
    return -1;
}

void svc_cleanup(svc *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        s->pid = -1;
    }
    if (s->nf_open)
        notify_fake_close(&s->nf);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup of %s failed\n", s->dir);
}

const char *svc_log(svc *s)
{
    static char buf[65536];
    buf[0] = '\0';
    int fd = open(s->log, O_RDONLY);
    if (fd < 0)
        return buf;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    buf[n < 0 ? 0 : n] = '\0';
    close(fd);
    return buf;
}

bool svc_log_wait(svc *s, const char *needle, int timeout_ms)
{
    long long end = svc_now_ms() + timeout_ms;
    do {
        if (strstr(svc_log(s), needle))
            return true;
        sleep_ms(10);
    } while (svc_now_ms() < end);
    return false;
}

ringlm_conn *svc_connect(svc *s, int timeout_ms)
{
    long long end = svc_now_ms() + timeout_ms;
    for (;;) {
        ringlm_conn *c = NULL;
        int rc = ringlm_connect(s->sock, NULL, &c);
        if (rc == 0)
            return c;
        if (svc_now_ms() > end)
            ck_abort_msg("connect %s: %s (%s)\ndaemon log:\n%s", s->sock, ringlm_strerror(rc),
                         ringlm_last_error(), svc_log(s));
        sleep_ms(20);
    }
}

int svc_collect(ringlm_conn *c, ringlm_req req, svc_result *r, int timeout_ms)
{
    memset(r, 0, sizeof *r);
    for (;;) {
        ringlm_event ev;
        int rc = ringlm_next(c, req, &ev, timeout_ms);
        if (rc < 0)
            return rc;
        if (ev.type == RINGLM_EV_TOKENS) {
            r->n_tokens += ev.n_tokens;
            ringlm_release(c, &ev);
            continue;
        }
        r->final_type = ev.type;
        r->status = ev.status;
        r->finish = ev.finish;
        if (ev.type == RINGLM_EV_ERROR)
            snprintf(r->msg, sizeof r->msg, "%.*s", (int)ev.text_len, ev.text);
        ringlm_release(c, &ev);
        return 0;
    }
}
