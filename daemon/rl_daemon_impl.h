/* rl_daemon_impl.h - private state of rl_daemon, shared by rl_daemon.c (setup,
 * teardown) and rl_loop.c (the event loop). */
#ifndef RL_DAEMON_IMPL_H
#define RL_DAEMON_IMPL_H

#include "rl_conn.h"
#include "rl_daemon.h"
#include "rl_engine.h"
#include "rl_worker.h"

#include <liburing.h>
#include <stdatomic.h>
#include <sys/signalfd.h>

#define RL_STOP_DEADLINE_MS 10000u /* SIGTERM/SIGINT: time given to requests in flight */
#define RL_HANDSHAKE_TIMEOUT_NS 5000000000ull /* a silent new connection is dropped */

struct rl_daemon {
    rl_daemon_opts opts;
    rl_daemon_hooks hooks;
    char socket_path[108];
    bool own_socket; /* we created the socket file: unlink it */
    int listen_fd, sig_fd, stop_fd, worker_fd;
    struct io_uring ring;
    bool ring_ok;
    unsigned sqe_unsubmitted;
    rl_engine *engine;
    rl_engine_info info;
    rl_worker *worker;

    /* loop thread */
    rl_conn *conns; /* every connection the loop still tracks */
    uint64_t next_id;
    bool stopping, cancelled_all, accept_armed;
    bool accept_paused; /* out of descriptors: retried on the next tick */
    uint64_t deadline_ns;
    struct signalfd_siginfo sig_buf;
    uint64_t stop_buf, worker_buf;

    /* model swap (loop thread; rl_sd_swap.c) */
    rl_engine *swap_engine;          /* loaded, waiting for running requests to finish */
    struct rl_swap_req *swap_q;      /* generate requests waiting for swap_engine */
    struct rl_swap_req **swap_tail;
    unsigned swap_n;
    void (*swap_cb)(rl_daemon *d, int rc, void *user);
    void *swap_user;

    /* any thread */
    atomic_ullong stop_deadline_ms;
    atomic_uint n_clients;
    atomic_ullong n_accepted, n_disconnected, n_corrupt;
};

/* rl_loop.c: decode + tokenize + submit a copied generate request (frees copy). */
void rl_loop_generate(rl_daemon *d, rl_conn *c, uint32_t req_id, uint8_t *copy, uint32_t len);
void rl_loop_post_error(rl_daemon *d, rl_conn *c, uint32_t id, int32_t status, const char *msg);

/* rl_sd_swap.c (loop thread): while a swap is pending, take a copied generate
 * request (true: owned now); drive the swap once nothing runs (true: it
 * happened); answer waiting requests with -ESHUTDOWN; free everything. */
bool rl_swap_defer(rl_daemon *d, rl_conn *c, uint32_t req_id, uint8_t *copy, uint32_t len);
bool rl_swap_step(rl_daemon *d);
void rl_swap_abort(rl_daemon *d);
void rl_swap_free(rl_daemon *d);

#endif
