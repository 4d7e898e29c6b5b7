/* ringlm_conn.c - connect/handshake, close, errors, descriptor for poll loops. */
#include "ringlm_impl.h"

#include "rl_config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char g_last_error[256];

int ringlm_fail(int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_last_error, sizeof g_last_error, fmt, ap);
    va_end(ap);
    return rc;
}

const char *ringlm_last_error(void)
{
    return g_last_error;
}

const char *ringlm_strerror(int err)
{
    static const char unknown[] = "unknown error";
    if (err == INT_MIN)
        return unknown;
    if (err < 0)
        err = -err;
    /* strerror_r into a thread-local buffer keeps this thread-safe. */
    static _Thread_local char buf[128];
    const char *m = strerror_r(err, buf, sizeof buf);
    return m ? m : unknown;
}

void ringlm_params_default(ringlm_params *p)
{
    memset(p, 0, sizeof *p);
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->repeat_last_n = 64;
    p->max_tokens = 256;
}

static int recv_welcome(int sock, rl_wire_welcome *w, int fds[3], int timeout_ms)
{
    struct pollfd pfd = {.fd = sock, .events = POLLIN};
    int pr = poll(&pfd, 1, timeout_ms);
    if (pr == 0)
        return ringlm_fail(-ETIMEDOUT, "no answer from the daemon");
    if (pr < 0)
        return ringlm_fail(-errno, "poll: %s", strerror(errno));
    struct iovec iov = {.iov_base = w, .iov_len = sizeof *w};
    union {
        char buf[CMSG_SPACE(3 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf};
    ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    if (n < 0)
        return ringlm_fail(-errno, "recvmsg: %s", strerror(errno));
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            int tmp[8];
            if (k > 8)
                k = 8;
            memcpy(tmp, CMSG_DATA(cm), k * sizeof(int));
            for (size_t i = 0; i < k; i++) {
                if (i < 3 && fds[i] < 0)
                    fds[i] = tmp[i];
                else
                    close(tmp[i]);
            }
        }
    }
    if (n != (ssize_t)sizeof *w || w->magic != RL_WIRE_MAGIC)
        return ringlm_fail(-EPROTO, "bad answer from the daemon");
    return 0;
}

static int map_region(ringlm_conn *c, int memfd, uint32_t size)
{
    struct stat st;
    if (fstat(memfd, &st) < 0 || (uint64_t)st.st_size != size || size < sizeof(rl_wire_header))
        return ringlm_fail(-EPROTO, "region size mismatch");
    c->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (c->base == MAP_FAILED) {
        c->base = NULL;
        return ringlm_fail(-errno, "mmap: %s", strerror(errno));
    }
    c->size = size;
    rl_wire_header h = *(rl_wire_header *)c->base;
    c->hdr = c->base;
#define FITS(off, len) ((uint64_t)(off) + (uint64_t)(len) <= size)
    bool ok = h.magic == RL_WIRE_MAGIC && h.version == RL_WIRE_VERSION &&
              h.sq_entries && !(h.sq_entries & (h.sq_entries - 1)) && h.cq_entries &&
              !(h.cq_entries & (h.cq_entries - 1)) &&
              FITS(h.sq_off, sizeof(rl_wire_ring_ctl) + (uint64_t)h.sq_entries * sizeof(rl_wire_sqe)) &&
              FITS(h.cq_off, sizeof(rl_wire_ring_ctl) + (uint64_t)h.cq_entries * sizeof(rl_wire_cqe)) &&
              FITS(h.req_off, h.req_size) && FITS(h.res_off, h.res_size) && h.res_size >= 4096 &&
              h.req_size >= 4096 && h.sq_off % 64 == 0 && h.cq_off % 64 == 0;
#undef FITS
    if (!ok)
        return ringlm_fail(-EPROTO, "malformed region header");
    c->req_off = h.req_off;
    c->req_size = h.req_size;
    c->res_off = h.res_off;
    c->res_size = h.res_size;
    rl_ring_init(&c->sq, c->base, h.sq_off, h.sq_entries, sizeof(rl_wire_sqe), 0);
    rl_ring_init(&c->cq, c->base, h.cq_off, h.cq_entries, sizeof(rl_wire_cqe), 0);
    c->slot_end = calloc(h.sq_entries, sizeof *c->slot_end);
    if (!c->slot_end)
        return ringlm_fail(-ENOMEM, "out of memory");
    return 0;
}

int ringlm_connect(const char *path, const ringlm_opts *opts, ringlm_conn **out)
{
    if (!path)
        path = getenv("RINGLM_SOCKET");
    if (!path || !*path)
        path = RL_DEFAULT_SOCKET;
    int timeout = opts && opts->timeout_ms > 0 ? opts->timeout_ms : 5000;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return ringlm_fail(-ENAMETOOLONG, "socket path too long");
    strcpy(sa.sun_path, path);

    ringlm_conn *c = calloc(1, sizeof *c);
    if (!c)
        return ringlm_fail(-ENOMEM, "out of memory");
    c->sock = c->sq_bell = c->cq_bell = c->epfd = -1;
    c->spin_us = opts && opts->spin_us >= 0 ? opts->spin_us : 50;
    c->next_id = 1;
    int fds[3] = {-1, -1, -1};
    int rc;
    c->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->sock < 0 || connect(c->sock, (struct sockaddr *)&sa, sizeof sa) < 0) {
        rc = ringlm_fail(-errno, "connect %s: %s", path, strerror(errno));
        goto fail;
    }
    rl_wire_hello h = {.magic = RL_WIRE_MAGIC, .version = RL_WIRE_VERSION};
    rl_wire_welcome w;
    if (send(c->sock, &h, sizeof h, MSG_NOSIGNAL) != (ssize_t)sizeof h) {
        int e = errno ? errno : EIO;
        /* A daemon that refuses (too many clients) answers and closes at once,
         * perhaps before the hello was written: its answer is still queued. */
        if (!((e == EPIPE || e == ECONNRESET) && recv_welcome(c->sock, &w, fds, 0) == 0 &&
              w.status != 0)) {
            rc = ringlm_fail(-e, "send hello: %s", strerror(e));
            goto fail;
        }
    } else {
        rc = recv_welcome(c->sock, &w, fds, timeout);
        if (rc < 0)
            goto fail;
    }
    if (w.status != 0) {
        w.message[sizeof w.message - 1] = 0;
        rc = ringlm_fail(w.status < 0 ? w.status : -EPROTO, "daemon refused: %s (%s)", w.message,
                         ringlm_strerror(w.status));
        goto fail;
    }
    if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0) {
        rc = ringlm_fail(-EPROTO, "daemon sent no descriptors");
        goto fail;
    }
    rc = map_region(c, fds[0], w.region_size);
    if (rc < 0)
        goto fail;
    close(fds[0]);
    fds[0] = -1;
    c->sq_bell = fds[1];
    c->cq_bell = fds[2];
    fds[1] = fds[2] = -1;
    fcntl(c->cq_bell, F_SETFL, fcntl(c->cq_bell, F_GETFL) | O_NONBLOCK);
    c->epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event e1 = {.events = EPOLLIN | EPOLLET, .data.u32 = 1};
    struct epoll_event e2 = {.events = EPOLLIN | EPOLLRDHUP, .data.u32 = 2};
    if (c->epfd < 0 || epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->cq_bell, &e1) < 0 ||
        epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->sock, &e2) < 0) {
        rc = ringlm_fail(-errno, "epoll: %s", strerror(errno));
        goto fail;
    }
    *out = c;
    return 0;
fail:
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    ringlm_close(c);
    return rc;
}

void ringlm_close(ringlm_conn *c)
{
    if (!c)
        return;
    if (c->base)
        munmap(c->base, c->size);
    int fds[] = {c->sock, c->sq_bell, c->cq_bell, c->epfd};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(c->slot_end);
    free(c->evq);
    free(c->evq_seq);
    free(c->rel);
    free(c);
}

int ringlm_fd(ringlm_conn *c)
{
    return c->epfd;
}
