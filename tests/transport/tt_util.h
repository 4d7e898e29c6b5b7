/* tt_util.h - helpers of the transport tests: an in-process daemon on a socket
 * in a temporary directory, and small client conveniences. */
#ifndef TT_UTIL_H
#define TT_UTIL_H

#include "rl_daemon.h"
#include "ringlm.h"

#include <pthread.h>
#include <stddef.h>

typedef struct tt_daemon {
    rl_daemon *d;
    pthread_t thr;
    char dir[64];
    char sock[128];
    int run_rc;
} tt_daemon;

/* Start a daemon (test engine) in a thread; aborts the test on failure. */
void tt_start(tt_daemon *t, int spin_us);
/* Same with options (socket_path is filled in unless listen_fd >= 0) and hooks (may be NULL). */
void tt_start_opts(tt_daemon *t, rl_daemon_opts *o, const rl_daemon_hooks *h);
void tt_stop(tt_daemon *t);

ringlm_conn *tt_connect(const tt_daemon *t);

/* Collect a whole request: text (NUL-terminated, malloc'ed) and the final event.
 * Returns 0 or the ringlm_next error. */
typedef struct tt_result {
    char *text;
    size_t len;
    size_t n_tokens;
    size_t n_events;
    int final_type, status, finish;
    ringlm_timings timings;
    char msg[256];
} tt_result;
int tt_collect(ringlm_conn *c, ringlm_req req, tt_result *r, int timeout_ms);
void tt_result_free(tt_result *r);

/* Poll until the daemon has n clients and m requests (or ~10 s). */
int tt_wait_stats(tt_daemon *t, unsigned n_clients, unsigned n_requests);

#endif
