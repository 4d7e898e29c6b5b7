/* rl_daemon.c - create/destroy the daemon: engine, listening socket, io_uring,
 * signalfd, worker thread; stats and stop requests. The loop is rl_loop.c. */
#include "rl_daemon_impl.h"
#include "rl_engine_select.h"
#include "rl_engine_test.h"
#include "rl_log.h"

#include "rl_config.h"
#ifdef RL_HAVE_LLM
#include "rl_gemm.h"
#endif

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

uint64_t rl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void rl_daemon_opts_default(rl_daemon_opts *o)
{
    memset(o, 0, sizeof *o);
    o->listen_fd = -1;
    o->spin_us = 50;
    o->max_clients = 64;
    o->socket_mode = 0666;
}

static int make_listener(rl_daemon *d, char *err, size_t errlen)
{
    const char *path = d->opts.socket_path ? d->opts.socket_path : RL_DEFAULT_SOCKET;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, errlen, "socket path too long: %s", path);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, path);
    snprintf(d->socket_path, sizeof d->socket_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        /* A live daemon answers; a stale socket file refuses. */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
        if (probe >= 0)
            close(probe);
        if (live) {
            close(fd);
            snprintf(err, errlen, "another daemon is serving %s", path);
            return -EADDRINUSE;
        }
        unlink(path);
    }
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        goto fail;
    d->own_socket = true;
    if (chmod(path, (mode_t)d->opts.socket_mode) < 0 || listen(fd, 128) < 0)
        goto fail;
    d->listen_fd = fd;
    return 0;
fail:;
    int rc = -errno;
    snprintf(err, errlen, "socket %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    return rc;
}

int rl_daemon_create(const rl_daemon_opts *o, rl_daemon **out, char *err, size_t errlen)
{
    rl_daemon *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    d->opts = *o;
    if (d->opts.max_clients <= 0)
        d->opts.max_clients = 64;
    if (d->opts.spin_us < 0)
        d->opts.spin_us = 0;
    d->listen_fd = d->sig_fd = d->stop_fd = d->worker_fd = -1;
    d->next_id = 1;
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    /* Blocked before any thread starts (the engine's compute pool and the CUDA
     * runtime's threads come with rl_engine_open, the worker later), so every
     * thread inherits the mask: a process-directed SIGTERM that found a thread
     * with the default action would kill the daemon instead of reaching the
     * signalfd (it did, with a model loaded). */
    if (o->handle_signals)
        pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    int rc = rl_engine_open(o, &d->engine, err, errlen);
    if (rc < 0)
        goto fail;
    d->engine->ops->get_info(d->engine, &d->info);
    if (o->listen_fd >= 0) {
        d->listen_fd = o->listen_fd;
        d->socket_path[0] = 0;
    } else if ((rc = make_listener(d, err, errlen)) < 0) {
        goto fail;
    }
    d->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    d->worker_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d->stop_fd < 0 || d->worker_fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        goto fail;
    }
    if (o->handle_signals) {
        d->sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
        if (d->sig_fd < 0) {
            rc = -errno;
            snprintf(err, errlen, "signalfd: %s", strerror(errno));
            goto fail;
        }
        signal(SIGPIPE, SIG_IGN);
    }
    rc = io_uring_queue_init(256, &d->ring, 0);
    if (rc < 0) {
        snprintf(err, errlen, "io_uring_queue_init: %s", strerror(-rc));
        goto fail;
    }
    d->ring_ok = true;
    rc = rl_worker_start_limits(&d->worker, d->engine, d->opts.spin_us, d->worker_fd,
                                &(rl_sched_limits){.max_queued = d->opts.client_max_queued,
                                                   .max_kv_tokens = d->opts.client_max_kv_tokens});
    if (rc < 0) {
        snprintf(err, errlen, "worker thread: %s", strerror(-rc));
        goto fail;
    }
    rl_log(LOG_INFO, "engine %s (%s, %s), vocab %u, context %u; socket %s; spin %d us",
           d->info.name, d->info.arch, d->info.backend, d->info.n_vocab, d->info.n_ctx,
           d->socket_path[0] ? d->socket_path : "(injected fd)", d->opts.spin_us);
#ifdef RL_HAVE_LLM
    if (strcmp(d->info.backend, "cpu") == 0)
        rl_log(LOG_INFO, "cpu matrix products: %s", rl_gemm_kernels_name());
#endif
    *out = d;
    return 0;
fail:
    rl_daemon_destroy(d);
    return rc < 0 ? rc : -EINVAL;
}

void rl_daemon_set_hooks(rl_daemon *d, const rl_daemon_hooks *h)
{
    d->hooks = *h;
}

void rl_daemon_set_limits(rl_daemon *d, int max_clients, unsigned stop_deadline_ms)
{
    /* both are read only by the loop thread (accept, SIGTERM) */
    if (max_clients > 0)
        d->opts.max_clients = max_clients;
    if (stop_deadline_ms)
        d->opts.stop_deadline_ms = stop_deadline_ms;
}

void rl_daemon_request_stop(rl_daemon *d, uint64_t deadline_ms)
{
    atomic_store(&d->stop_deadline_ms, deadline_ms);
    uint64_t one = 1;
    ssize_t n = write(d->stop_fd, &one, sizeof one); /* async-signal-safe */
    (void)n;
    /* A hung test step must not keep the daemon from stopping. */
    rl_engine_test_unhang();
}

void rl_daemon_get_stats(rl_daemon *d, rl_daemon_stats *st)
{
    memset(st, 0, sizeof *st);
    st->n_clients = atomic_load(&d->n_clients);
    st->n_accepted = atomic_load(&d->n_accepted);
    st->n_disconnected = atomic_load(&d->n_disconnected);
    st->n_corrupt = atomic_load(&d->n_corrupt);
    if (d->worker) {
        st->n_requests = rl_worker_active(d->worker);
        st->worker_steps = rl_worker_steps(d->worker);
        st->worker_beat = rl_worker_beat(d->worker);
        st->step_started_ns = rl_worker_step_started(d->worker);
    }
}

bool rl_daemon_worker_stalled(rl_daemon *d, uint64_t max_ns)
{
    uint64_t t = d->worker ? rl_worker_step_started(d->worker) : 0;
    return t != 0 && rl_now_ns() - t > max_ns;
}

const char *rl_daemon_socket_path(rl_daemon *d)
{
    return d->socket_path;
}

void rl_daemon_destroy(rl_daemon *d)
{
    if (!d)
        return;
    if (d->worker) {
        rl_engine_test_unhang();
        rl_worker_stop(d->worker);
    }
    if (d->ring_ok)
        io_uring_queue_exit(&d->ring); /* cancels every operation still in flight */
    rl_swap_free(d); /* before the connections: waiting requests hold references */
    while (d->conns) {
        rl_conn *c = d->conns;
        d->conns = c->loop_next;
        rl_conn_unref(c);
    }
    if (d->engine)
        d->engine->ops->destroy(d->engine);
    if (d->listen_fd >= 0)
        close(d->listen_fd);
    if (d->own_socket)
        unlink(d->socket_path);
    if (d->sig_fd >= 0)
        close(d->sig_fd);
    if (d->stop_fd >= 0)
        close(d->stop_fd);
    if (d->worker_fd >= 0)
        close(d->worker_fd);
    free(d);
}
