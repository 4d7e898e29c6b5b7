/* rl_daemon.h - the ringlmd core: one io_uring event loop thread (rl_daemon_run)
 * and one compute worker thread.
 *
 * Threads and ownership:
 *  - the loop thread (the caller of rl_daemon_run) accepts clients, performs the
 *    handshake, watches every client socket for hang-ups, reads every client's
 *    submission doorbell, and is the single consumer of every submission ring;
 *  - the compute worker runs rl_engine steps over all running sequences of all
 *    clients at once;
 *  - completion rings and result arenas are produced by the daemon under the
 *    connection's out_lock: the worker posts tokens and final results, the loop
 *    posts immediate answers (PONG, INFO, validation errors). The lock makes the
 *    two threads one producer, as the SPSC ring requires.
 */
#ifndef RL_DAEMON_H
#define RL_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rl_daemon rl_daemon;
struct rl_engine; /* rl_engine.h */

typedef struct rl_daemon_opts {
    const char *socket_path; /* NULL: RL_DEFAULT_SOCKET (ignored when listen_fd >= 0) */
    int listen_fd;           /* >= 0: an already listening socket (systemd); -1: create one */
    int n_threads;           /* compute threads for the engine; 0: engine default */
    const char *model_path;  /* GGUF path; NULL: test engine */
    const char *engine;      /* "test", "llm" or NULL (test without a model, llm with one) */
    int spin_us;             /* adaptive spin window of the loop and worker; 0: sleep at once */
    int max_clients;         /* concurrent connections; excess ones get -EUSERS */
    int socket_mode;         /* permissions of a created socket (default 0666) */
    bool handle_signals;     /* read SIGTERM/SIGINT/SIGHUP via signalfd (rl_main) */
    unsigned stop_deadline_ms; /* SIGTERM/SIGINT: time requests in flight get; 0: 10 s */
    /* batching (rl_sched.h, the LLM engine) */
    uint32_t step_tokens;      /* tokens per engine step (decodes + prompt chunks); 0: engine default */
    uint64_t kv_budget_bytes;  /* KV cache pool; 0: engine default */
    bool kv_q8;                /* int8 KV cache values (Q8_0 blocks), else fp16 */
    int prefill_weights;       /* rl_prefill_weights (rl_cfg.h) = rl_cu_w16_mode: the CUDA engine's
                                * fp16 weight copies for prompt steps; 0: auto */
    uint32_t client_max_queued;     /* requests in flight per client; 0: 1024 */
    uint64_t client_max_kv_tokens;  /* KV positions (prompt + generated) in flight per client; 0: half the pool */
    void (*load_progress)(void *ctx, float frac); /* model loading progress [0, 1]; may be NULL */
    void *load_progress_ctx;
} rl_daemon_opts;

typedef struct rl_daemon_hooks {
    /* Called on the loop thread every tick_ms (and at least once per loop
     * iteration that wakes after tick_ms elapsed). */
    void (*on_tick)(rl_daemon *d, void *user);
    /* SIGHUP: called on the loop thread. */
    void (*on_reload)(rl_daemon *d, void *user);
    /* Right after the listening socket is ready and before serving. */
    void (*on_ready)(rl_daemon *d, void *user);
    /* Graceful stop began (signal or rl_daemon_request_stop). */
    void (*on_stopping)(rl_daemon *d, void *user);
    unsigned tick_ms; /* 0: 1000 */
    void *user;
} rl_daemon_hooks;

typedef struct rl_daemon_stats {
    uint32_t n_clients;       /* connected clients */
    uint32_t n_requests;      /* requests held by the worker */
    uint64_t n_accepted;      /* connections accepted since start */
    uint64_t n_disconnected;  /* connections closed (any reason) */
    uint64_t n_corrupt;       /* clients dropped for corrupting their region */
    uint64_t worker_steps;    /* engine steps run */
    uint64_t worker_beat;     /* worker loop iterations (increments while it is not stuck) */
    uint64_t step_started_ns; /* CLOCK_MONOTONIC start of the running step, 0 when none */
} rl_daemon_stats;

void rl_daemon_opts_default(rl_daemon_opts *o);

/* Opens the engine (rl_engine_open), the listening socket and the io_uring.
 * Returns 0 or a negative errno with a message in err. */
int rl_daemon_create(const rl_daemon_opts *o, rl_daemon **out, char *err, size_t errlen);
void rl_daemon_set_hooks(rl_daemon *d, const rl_daemon_hooks *h);

/* Serve until stopped. Returns 0 after a graceful stop, negative errno on failure. */
int rl_daemon_run(rl_daemon *d);

/* Thread- and async-signal-safe. Stop accepting; requests in flight may finish
 * until deadline_ms from now, then they are cancelled and run() returns. */
void rl_daemon_request_stop(rl_daemon *d, uint64_t deadline_ms);

/* Loop thread only (e.g. from the on_reload hook): limits that may change
 * while running. max_clients <= 0 and stop_deadline_ms == 0 keep the value. */
void rl_daemon_set_limits(rl_daemon *d, int max_clients, unsigned stop_deadline_ms);

/* Loop thread only (e.g. from on_tick): serve a newly loaded engine from now
 * on without dropping connections. New generate requests wait; requests
 * already running finish on the old engine; once none is left the worker
 * restarts on e, the old engine is destroyed, on_swapped (if set) is called
 * and the waiting requests run on e. Takes ownership of e. -EBUSY while a
 * swap is pending (e is not taken), -ESHUTDOWN while stopping. The worker
 * object is replaced on the loop thread: rl_daemon_get_stats and
 * rl_daemon_worker_stalled from other threads must not overlap a swap. */
int rl_daemon_swap_engine(rl_daemon *d, struct rl_engine *e, void (*on_swapped)(rl_daemon *d, int rc, void *user),
                          void *user);

/* Thread-safe snapshot. */
void rl_daemon_get_stats(rl_daemon *d, rl_daemon_stats *st);

/* True when the worker is inside one engine step for longer than max_ns (hung).
 * Thread-safe; for the watchdog: ping only while this is false. */
bool rl_daemon_worker_stalled(rl_daemon *d, uint64_t max_ns);

/* The socket path being served ("" when an injected fd is used). */
const char *rl_daemon_socket_path(rl_daemon *d);

/* Frees everything (after run() returned, or without run()). Unlinks a socket
 * file it created. */
void rl_daemon_destroy(rl_daemon *d);

uint64_t rl_now_ns(void);

#endif
