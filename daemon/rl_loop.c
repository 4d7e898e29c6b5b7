/* rl_loop.c - the ringlmd event loop (one thread, io_uring).
 *
 * Sources and handlers:
 *   listening socket   accept        -> on_accept (new connection, handshake poll)
 *   client socket      poll          -> on_conn_poll (hello, then hang-up)
 *   client doorbell    read(eventfd) -> on_bell (scan its submission ring)
 *   worker eventfd     read          -> on_worker (drop corrupt clients)
 *   stop eventfd       read          -> begin_stop
 *   signalfd           read          -> on_signal (TERM/INT stop, HUP reload)
 * Between waits the loop scans every submission ring; after activity it keeps
 * scanning (spinning) for spin_us before it arms the need-wakeup flags and
 * sleeps in io_uring_submit_and_wait_timeout.
 */
#include "rl_daemon_impl.h"
#include "rl_log.h"
#include "rl_req.h"

#include "rl_config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { T_ACCEPT = 1, T_SIGNAL, T_STOP, T_WORKER, T_POLL, T_BELL, T_CANCEL };
enum { CS_HANDSHAKE = 1, CS_LIVE, CS_CLOSING };

#define UD(ptr, tag) ((uint64_t)(uintptr_t)(ptr) | (uint64_t)(tag))
#define UD_TAG(ud) ((int)((ud) & 7))
#define UD_PTR(ud) ((void *)(uintptr_t)((ud) & ~(uint64_t)7))

static struct io_uring_sqe *get_sqe(rl_daemon *d)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&d->ring);
    if (!s) {
        io_uring_submit(&d->ring);
        d->sqe_unsubmitted = 0;
        s = io_uring_get_sqe(&d->ring);
    }
    if (s)
        d->sqe_unsubmitted++;
    return s;
}

static void arm_read(rl_daemon *d, int fd, void *buf, unsigned len, uint64_t ud)
{
    struct io_uring_sqe *s = get_sqe(d);
    if (!s)
        return;
    io_uring_prep_read(s, fd, buf, len, 0);
    io_uring_sqe_set_data64(s, ud);
}

static void arm_accept(rl_daemon *d)
{
    struct io_uring_sqe *s = get_sqe(d);
    if (!s)
        return;
    io_uring_prep_accept(s, d->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    io_uring_sqe_set_data64(s, UD(NULL, T_ACCEPT));
    d->accept_armed = true;
}

static void arm_poll(rl_daemon *d, rl_conn *c)
{
    struct io_uring_sqe *s = get_sqe(d);
    if (!s)
        return;
    io_uring_prep_poll_add(s, c->sock, POLLIN | POLLRDHUP);
    io_uring_sqe_set_data64(s, UD(c, T_POLL));
    c->loop_inflight++;
}

static void arm_bell(rl_daemon *d, rl_conn *c)
{
    struct io_uring_sqe *s = get_sqe(d);
    if (!s)
        return;
    io_uring_prep_read(s, c->sq_bell, &c->bell_buf, sizeof c->bell_buf, 0);
    io_uring_sqe_set_data64(s, UD(c, T_BELL));
    c->loop_inflight++;
}

static void cancel_op(rl_daemon *d, uint64_t ud)
{
    struct io_uring_sqe *s = get_sqe(d);
    if (!s)
        return;
    io_uring_prep_cancel64(s, ud, 0);
    io_uring_sqe_set_data64(s, UD(NULL, T_CANCEL));
}

static void list_add(rl_daemon *d, rl_conn *c)
{
    c->loop_prev = NULL;
    c->loop_next = d->conns;
    if (d->conns)
        d->conns->loop_prev = c;
    d->conns = c;
}

static void list_del(rl_daemon *d, rl_conn *c)
{
    if (c->loop_prev)
        c->loop_prev->loop_next = c->loop_next;
    else
        d->conns = c->loop_next;
    if (c->loop_next)
        c->loop_next->loop_prev = c->loop_prev;
}

/* Free the loop's share once no operation of ours refers to the connection. */
static void maybe_release(rl_daemon *d, rl_conn *c)
{
    if (c->loop_state != CS_CLOSING || c->loop_inflight > 0)
        return;
    list_del(d, c);
    rl_worker_conn_gone(d->worker, c);
    rl_conn_unref(c);
}

static void disconnect(rl_daemon *d, rl_conn *c, const char *why)
{
    if (c->loop_state == CS_CLOSING)
        return;
    bool was_live = c->loop_state == CS_LIVE;
    c->loop_state = CS_CLOSING;
    atomic_store(&c->dead, true);
    /* The client sees the hang-up at once; the fd is closed when freed. */
    shutdown(c->sock, SHUT_RDWR);
    cancel_op(d, UD(c, T_POLL));
    cancel_op(d, UD(c, T_BELL));
    atomic_fetch_sub(&d->n_clients, 1);
    atomic_fetch_add(&d->n_disconnected, 1);
    rl_log(was_live ? LOG_INFO : LOG_DEBUG, "client %llu (pid %d uid %d) disconnected: %s",
           (unsigned long long)c->id, (int)c->pid, (int)c->uid, why);
    maybe_release(d, c);
}

static void send_welcome(int sock, int32_t status, const char *msg, uint32_t size, const int *fds)
{
    rl_wire_welcome w = {.magic = RL_WIRE_MAGIC, .version = RL_WIRE_VERSION, .status = status,
                         .region_size = size};
    snprintf(w.message, sizeof w.message, "%s", msg ? msg : "");
    struct iovec iov = {.iov_base = &w, .iov_len = sizeof w};
    union {
        char buf[CMSG_SPACE(3 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fds) {
        memset(&u, 0, sizeof u);
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof u.buf;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(3 * sizeof(int));
        memcpy(CMSG_DATA(cm), fds, 3 * sizeof(int));
    }
    /* The socket buffer is empty at this point: this does not block. */
    if (sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
        rl_log(LOG_DEBUG, "welcome: %s", strerror(errno));
}

static void on_accept(rl_daemon *d, int res)
{
    d->accept_armed = false;
    bool exhausted = res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM;
    if (exhausted)
        d->accept_paused = true; /* re-armed on the next tick, not in a busy loop */
    else if (!d->stopping)
        arm_accept(d);
    if (res < 0) {
        if (res != -ECANCELED)
            rl_log(LOG_WARNING, "accept: %s", strerror(-res));
        return;
    }
    int sock = res;
    atomic_fetch_add(&d->n_accepted, 1);
    if (atomic_load(&d->n_clients) >= (unsigned)d->opts.max_clients) {
        send_welcome(sock, -EUSERS, "too many clients", 0, NULL);
        close(sock);
        rl_log(LOG_WARNING, "refused a client: %d clients connected", d->opts.max_clients);
        return;
    }
    rl_conn *c;
    char err[128];
    if (rl_conn_create(sock, d->next_id++, &c, err, sizeof err) < 0) {
        send_welcome(sock, -ENOMEM, err, 0, NULL);
        close(sock);
        rl_log(LOG_ERR, "new client: %s", err);
        return;
    }
    c->loop_state = CS_HANDSHAKE;
    c->accepted_ns = rl_now_ns();
    atomic_fetch_add(&d->n_clients, 1);
    list_add(d, c);
    arm_poll(d, c);
}

static void finish_handshake(rl_daemon *d, rl_conn *c)
{
    rl_wire_hello h;
    ssize_t n = recv(c->sock, &h, sizeof h, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        arm_poll(d, c);
        return;
    }
    if (n != (ssize_t)sizeof h || h.magic != RL_WIRE_MAGIC) {
        send_welcome(c->sock, -EPROTO, "not a ringlm client (bad hello)", 0, NULL);
        disconnect(d, c, "bad hello");
        return;
    }
    if (h.version != RL_WIRE_VERSION) {
        char m[112];
        snprintf(m, sizeof m, "protocol version %u not supported: ringlmd %s speaks version %u",
                 h.version, RL_VERSION, RL_WIRE_VERSION);
        send_welcome(c->sock, -EPROTO, m, 0, NULL);
        rl_log(LOG_WARNING, "client pid %d uid %d: %s", (int)c->pid, (int)c->uid, m);
        disconnect(d, c, "protocol version mismatch");
        return;
    }
    send_welcome(c->sock, 0, "", c->size, c->client_fds);
    for (int i = 0; i < 3; i++) {
        close(c->client_fds[i]);
        c->client_fds[i] = -1;
    }
    c->loop_state = CS_LIVE;
    rl_log(LOG_INFO, "client %llu connected: pid %d uid %d", (unsigned long long)c->id,
           (int)c->pid, (int)c->uid);
    rl_worker_conn_live(d->worker, c);
    arm_poll(d, c);
    arm_bell(d, c);
}

static void on_conn_poll(rl_daemon *d, rl_conn *c, int res)
{
    c->loop_inflight--;
    if (c->loop_state == CS_CLOSING) {
        maybe_release(d, c);
        return;
    }
    if (res < 0) {
        disconnect(d, c, strerror(-res));
        return;
    }
    if (c->loop_state == CS_HANDSHAKE) {
        finish_handshake(d, c);
        return;
    }
    char b;
    ssize_t n = recv(c->sock, &b, 1, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        arm_poll(d, c);
    else
        disconnect(d, c, n == 0 ? "hang-up" : n > 0 ? "unexpected data on the socket" : strerror(errno));
}

/* An answer from the loop. When the client has no room, keep it (one at most:
 * the loop stops reading that submission ring until it went out). */
static void loop_post(rl_daemon *d, rl_conn *c, uint32_t id, uint16_t type, int32_t status,
                      const void *p, size_t len)
{
    if (len > sizeof c->deferred_payload)
        len = sizeof c->deferred_payload;
    int rc = rl_conn_post(c, id, type, status, 0, p, len, NULL, 0);
    if (rc == -EAGAIN) {
        c->has_deferred = true;
        c->deferred = (rl_wire_cqe){.req_id = id, .type = type, .status = status, .len = (uint32_t)len};
        memcpy(c->deferred_payload, p, len);
    } else if (rc < 0) {
        atomic_store(&c->corrupt, true);
    }
}

static void post_error(rl_daemon *d, rl_conn *c, uint32_t id, int32_t status, const char *msg)
{
    loop_post(d, c, id, RL_WIRE_EV_ERROR, status, msg, strlen(msg));
}

static void post_info(rl_daemon *d, rl_conn *c, uint32_t id)
{
    rl_wire_info in = {0};
    /* Fresh: the KV cache size changes (get_info is callable from any thread). */
    d->engine->ops->get_info(d->engine, &d->info);
    const rl_engine_info *e = &d->info;
    snprintf(in.daemon_version, sizeof in.daemon_version, "%s", RL_VERSION);
    in.protocol = RL_WIRE_VERSION;
    in.n_clients = atomic_load(&d->n_clients);
    memcpy(in.name, e->name, sizeof in.name);
    memcpy(in.arch, e->arch, sizeof in.arch);
    memcpy(in.backend, e->backend, sizeof in.backend);
    memcpy(in.type, e->type, sizeof in.type);
    in.n_vocab = e->n_vocab, in.n_ctx = e->n_ctx, in.n_layer = e->n_layer, in.n_embd = e->n_embd;
    in.n_head = e->n_head, in.n_head_kv = e->n_head_kv, in.n_ff = e->n_ff;
    in.bos = e->bos, in.eos = e->eos;
    in.weight_bytes = e->weight_bytes, in.kv_bytes = e->kv_bytes;
    if (d->engine->ops->get_stats) { /* batch: scheduler statistics (thread-safe op) */
        rl_engine_stats st;
        d->engine->ops->get_stats(d->engine, &st);
        in.steps = st.steps, in.batch_seqs = st.batch_seqs, in.batch_tokens = st.batch_tokens;
        in.max_batch = st.max_batch, in.step_tokens = st.step_tokens;
        in.prefix_lookups = st.prefix_lookups, in.prefix_hits = st.prefix_hits;
        in.prefix_lookup_tokens = st.prefix_lookup_tokens, in.prefix_hit_tokens = st.prefix_hit_tokens;
        in.preempted = st.preempted;
        in.kv_blocks_total = st.kv_blocks_total, in.kv_blocks_used = st.kv_blocks_used;
        in.kv_blocks_free = st.kv_blocks_free, in.kv_blocks_cached = st.kv_blocks_cached;
        in.kv_block_bytes = st.kv_block_bytes;
        in.sampled = st.sampled, in.sampled_top_k = st.sampled_top_k;
    }
    loop_post(d, c, id, RL_WIRE_EV_INFO, 0, &in, sizeof in);
}

static void handle_generate(rl_daemon *d, rl_conn *c, const rl_wire_sqe *e)
{
    if (e->req_id == 0)
        return post_error(d, c, 0, -EINVAL, "request id 0 is reserved");
    if (d->stopping)
        return post_error(d, c, e->req_id, -ESHUTDOWN, "daemon is stopping");
    /* acquire: pairs with the worker's release when it frees a request. */
    if (atomic_load_explicit(&c->n_reqs, memory_order_acquire) >= RL_CONN_MAX_REQS)
        return post_error(d, c, e->req_id, -EBUSY, "too many requests in flight");
    const uint8_t *src = rl_conn_req_bytes(c, e->off, e->len);
    if (!src)
        return post_error(d, c, e->req_id, -EINVAL, "payload outside the request arena");
    /* Copy before validating: the client may change the bytes under us. */
    uint8_t *copy = malloc(e->len ? e->len : 1);
    if (!copy)
        return post_error(d, c, e->req_id, -ENOMEM, "out of memory");
    memcpy(copy, src, e->len);
    if (rl_swap_defer(d, c, e->req_id, copy, e->len))
        return; /* a new model is coming: runs once it is in place */
    rl_loop_generate(d, c, e->req_id, copy, e->len);
}

/* Decode, tokenize and hand a request to the worker; frees copy. */
void rl_loop_generate(rl_daemon *d, rl_conn *c, uint32_t req_id, uint8_t *copy, uint32_t len)
{
    uint64_t t_seen = rl_now_ns();
    char err[RL_WIRE_MAX_ERRMSG];
    rl_req_parsed *p = malloc(sizeof *p);
    int32_t *ids = NULL;
    uint32_t n_ids = 0;
    int rc = p ? rl_req_decode(copy, len, d->info.n_vocab, p, err, sizeof err) : -ENOMEM;
    if (rc == -ENOMEM && !p)
        snprintf(err, sizeof err, "out of memory");
    if (rc == 0)
        rc = rl_req_prompt_tokens(d->engine, p, &ids, &n_ids, err, sizeof err);
    if (rc == 0) {
        rl_wreq *r = rl_wreq_new(c, req_id, p, ids, n_ids, rl_now_ns());
        if (r) {
            rl_wreq_set_seen(r, t_seen);
            rl_worker_submit(d->worker, r);
        }
        else {
            free(ids);
            rc = -ENOMEM;
            snprintf(err, sizeof err, "out of memory");
        }
    }
    if (rc < 0)
        post_error(d, c, req_id, rc, err);
    free(p);
    free(copy);
}

void rl_loop_post_error(rl_daemon *d, rl_conn *c, uint32_t id, int32_t status, const char *msg)
{
    post_error(d, c, id, status, msg);
}

static void handle_sqe(rl_daemon *d, rl_conn *c, const rl_wire_sqe *e)
{
    switch (e->opcode) {
    case RL_WIRE_OP_NOP:
        loop_post(d, c, e->req_id, RL_WIRE_EV_PONG, 0, NULL, 0);
        break;
    case RL_WIRE_OP_INFO:
        post_info(d, c, e->req_id);
        break;
    case RL_WIRE_OP_CANCEL:
        rl_worker_cancel(d->worker, c, e->target);
        break;
    case RL_WIRE_OP_GENERATE:
        handle_generate(d, c, e);
        break;
    default:
        post_error(d, c, e->req_id, -EINVAL, "unknown opcode");
        break;
    }
}

/* Scan one submission ring. Returns true when it did work. */
static bool conn_process(rl_daemon *d, rl_conn *c)
{
    if (c->loop_state != CS_LIVE)
        return false;
    if (atomic_load(&c->corrupt)) {
        atomic_fetch_add(&d->n_corrupt, 1);
        disconnect(d, c, "corrupt region");
        return true;
    }
    if (c->has_deferred) {
        const rl_wire_cqe *q = &c->deferred;
        int rc = rl_conn_post(c, q->req_id, q->type, q->status, 0, c->deferred_payload, q->len,
                              NULL, 0);
        if (rc == -EAGAIN)
            return false;
        c->has_deferred = false;
        if (rc < 0)
            return true; /* corrupt: handled next scan */
    }
    int64_t avail = rl_ring_avail(&c->sq);
    if (avail == RL_RING_CORRUPT) {
        atomic_fetch_add(&d->n_corrupt, 1);
        rl_log(LOG_WARNING, "client %llu (pid %d): submission tail beyond the ring",
               (unsigned long long)c->id, (int)c->pid);
        disconnect(d, c, "corrupt submission ring");
        return true;
    }
    if (avail == 0)
        return false;
    uint32_t n = avail > 64 ? 64 : (uint32_t)avail, done = 0;
    while (done < n && !c->has_deferred && !atomic_load(&c->corrupt)) {
        rl_wire_sqe e;
        memcpy(&e, rl_ring_cons_slot(&c->sq, done), sizeof e); /* read the entry once */
        handle_sqe(d, c, &e);
        done++;
    }
    rl_ring_consume(&c->sq, done);
    rl_conn_kick(c);
    return true;
}

static void begin_stop(rl_daemon *d, uint64_t deadline_ms)
{
    if (d->stopping)
        return;
    d->stopping = true;
    d->deadline_ns = rl_now_ns() + deadline_ms * 1000000ull;
    rl_log(LOG_INFO, "stopping: %u requests in flight, deadline %llu ms",
           rl_worker_active(d->worker), (unsigned long long)deadline_ms);
    if (d->accept_armed)
        cancel_op(d, UD(NULL, T_ACCEPT));
    rl_swap_abort(d); /* requests waiting for a new model get -ESHUTDOWN */
    if (d->hooks.on_stopping)
        d->hooks.on_stopping(d, d->hooks.user);
}

static void on_signal(rl_daemon *d, int res)
{
    if (res == (int)sizeof d->sig_buf) {
        int sig = (int)d->sig_buf.ssi_signo;
        if (sig == SIGHUP) {
            rl_log(LOG_INFO, "SIGHUP: reload");
            if (d->hooks.on_reload)
                d->hooks.on_reload(d, d->hooks.user);
        } else {
            rl_log(LOG_INFO, "signal %d: graceful stop", sig);
            begin_stop(d, d->opts.stop_deadline_ms ? d->opts.stop_deadline_ms : RL_STOP_DEADLINE_MS);
        }
    }
    if (res != -ECANCELED)
        arm_read(d, d->sig_fd, &d->sig_buf, sizeof d->sig_buf, UD(NULL, T_SIGNAL));
}

static unsigned process_cqes(rl_daemon *d)
{
    struct io_uring_cqe *cqe;
    unsigned head, n = 0;
    io_uring_for_each_cqe(&d->ring, head, cqe)
    {
        n++;
        uint64_t ud = io_uring_cqe_get_data64(cqe);
        int res = cqe->res;
        rl_conn *c = UD_PTR(ud);
        switch (UD_TAG(ud)) {
        case T_ACCEPT:
            on_accept(d, res);
            break;
        case T_SIGNAL:
            on_signal(d, res);
            break;
        case T_STOP:
            begin_stop(d, atomic_load(&d->stop_deadline_ms));
            break;
        case T_WORKER:
            /* The scan below drops clients marked corrupt. */
            arm_read(d, d->worker_fd, &d->worker_buf, sizeof d->worker_buf, UD(NULL, T_WORKER));
            break;
        case T_POLL:
            on_conn_poll(d, c, res);
            break;
        case T_BELL:
            c->loop_inflight--;
            if (c->loop_state == CS_CLOSING || res < 0) {
                if (c->loop_state != CS_CLOSING)
                    disconnect(d, c, "doorbell failed");
                maybe_release(d, c);
                break;
            }
            arm_bell(d, c);
            if (atomic_exchange(&c->want_space, false))
                rl_worker_kick(d->worker);
            break;
        default:
            break;
        }
    }
    io_uring_cq_advance(&d->ring, n);
    return n;
}

static void set_sleeping(rl_daemon *d, bool on, bool *ready)
{
    for (rl_conn *c = d->conns; c; c = c->loop_next) {
        if (c->loop_state != CS_LIVE)
            continue;
        if (on) {
            if (rl_ring_arm(&c->sq) != 0)
                *ready = true;
        } else {
            rl_ring_disarm(&c->sq);
        }
    }
}

int rl_daemon_run(rl_daemon *d)
{
    arm_accept(d);
    arm_read(d, d->stop_fd, &d->stop_buf, sizeof d->stop_buf, UD(NULL, T_STOP));
    arm_read(d, d->worker_fd, &d->worker_buf, sizeof d->worker_buf, UD(NULL, T_WORKER));
    if (d->sig_fd >= 0)
        arm_read(d, d->sig_fd, &d->sig_buf, sizeof d->sig_buf, UD(NULL, T_SIGNAL));
    io_uring_submit(&d->ring);
    d->sqe_unsubmitted = 0;
    if (d->hooks.on_ready)
        d->hooks.on_ready(d, d->hooks.user);
    uint64_t tick_ns = (uint64_t)(d->hooks.tick_ms ? d->hooks.tick_ms : 1000) * 1000000ull;
    uint64_t spin_ns = (uint64_t)d->opts.spin_us * 1000ull;
    uint64_t now = rl_now_ns(), last_work = now, next_tick = now + tick_ns;
    unsigned spin_iter = 0;
    for (;;) {
        bool work = process_cqes(d) > 0;
        for (rl_conn *c = d->conns, *next; c; c = next) {
            next = c->loop_next; /* conn_process may unlink c */
            work |= conn_process(d, c);
        }
        if (d->swap_engine)
            work |= rl_swap_step(d);
        now = rl_now_ns();
        if (d->stopping) {
            if (rl_worker_active(d->worker) == 0)
                break;
            if (now >= d->deadline_ns && !d->cancelled_all) {
                rl_worker_cancel_all(d->worker);
                d->cancelled_all = true;
            }
            if (now >= d->deadline_ns + 2000000000ull)
                break;
        }
        if (now >= next_tick) {
            if (d->accept_paused && !d->stopping) {
                d->accept_paused = false;
                arm_accept(d);
            }
            for (rl_conn *c = d->conns, *next; c; c = next) {
                next = c->loop_next;
                if (c->loop_state == CS_HANDSHAKE && now - c->accepted_ns > RL_HANDSHAKE_TIMEOUT_NS)
                    disconnect(d, c, "no hello");
            }
            if (d->hooks.on_tick)
                d->hooks.on_tick(d, d->hooks.user);
            next_tick = now + tick_ns;
        }
        if (d->sqe_unsubmitted) {
            io_uring_submit(&d->ring);
            d->sqe_unsubmitted = 0;
        }
        if (work) {
            last_work = now;
            spin_iter = 0;
            continue;
        }
        if (now - last_work < spin_ns) {
            rl_spin_round(&spin_iter);
            continue;
        }
        /* Going to sleep: announce it on every ring, then look once more. */
        bool ready = false;
        set_sleeping(d, true, &ready);
        if (!ready) {
            uint64_t wait_ns = next_tick > now ? next_tick - now : 0;
            if (d->stopping)
                wait_ns = wait_ns < 10000000ull ? wait_ns : 10000000ull;
            struct __kernel_timespec ts = {.tv_sec = (long long)(wait_ns / 1000000000ull),
                                           .tv_nsec = (long long)(wait_ns % 1000000000ull)};
            struct io_uring_cqe *cqe;
            int rc = io_uring_wait_cqe_timeout(&d->ring, &cqe, &ts);
            if (rc < 0 && rc != -ETIME && rc != -EINTR) {
                rl_log(LOG_ERR, "io_uring wait: %s", strerror(-rc));
                return rc;
            }
        }
        set_sleeping(d, false, &ready);
        last_work = rl_now_ns();
        spin_iter = 0;
    }
    rl_log(LOG_INFO, "stopped");
    if (d->engine->ops->get_stats) { /* where the steps' time went (a device idles outside the forward) */
        rl_engine_stats st;
        d->engine->ops->get_stats(d->engine, &st);
        if (st.steps)
            rl_log(LOG_INFO, "engine: %llu steps, mean batch %.1f; %.3f s in steps, %.3f s of it in the forward pass "
                             "(%.1f us a step around it); %llu steps with prompt tokens, %.3f s",
                   (unsigned long long)st.steps, (double)st.batch_seqs / (double)st.steps, (double)st.step_ns * 1e-9,
                   (double)st.forward_ns * 1e-9, (double)(st.step_ns - st.forward_ns) * 1e-3 / (double)st.steps,
                   (unsigned long long)st.prompt_steps, (double)st.prompt_step_ns * 1e-9);
    }
    /* Tell clients at once; the connections are freed by rl_daemon_destroy. */
    for (rl_conn *c = d->conns; c; c = c->loop_next) {
        atomic_store(&c->dead, true);
        shutdown(c->sock, SHUT_RDWR);
    }
    return 0;
}
