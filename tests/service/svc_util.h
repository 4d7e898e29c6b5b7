/* svc_util.h - helpers of the service tests: run the real ringlmd binary
 * ($RINGLMD) in a temporary directory with a configuration file, a fake
 * NOTIFY_SOCKET and optional socket activation, and talk to it with libringlm. */
#ifndef SVC_UTIL_H
#define SVC_UTIL_H

#include <stdbool.h>
#include <sys/types.h>

#include "notify_fake.h"
#include "ringlm.h"

typedef struct svc {
    pid_t pid;
    char dir[64];
    char sock[128];    /* the socket clients use */
    char conf[128];
    char log[128];     /* the daemon's stderr */
    notify_fake nf;
    bool nf_open;
} svc;

typedef struct svc_opts {
    const char *extra_conf;   /* appended to the configuration file */
    unsigned watchdog_usec;   /* 0: no WATCHDOG_USEC */
    bool watchdog_pid_other;  /* WATCHDOG_PID names another process */
    int n_listen_fds;         /* 0: the daemon creates its socket; 1: pass one; 2: pass two */
    bool notify;              /* set NOTIFY_SOCKET */
    const char *wrapper;      /* run "wrapper -l SOCK ringlmd ..." (systemd-socket-activate) */
    const char *arg1, *arg2;  /* extra command-line arguments (may be NULL) */
} svc_opts;

/* Start ringlmd; aborts the test on failure. */
void svc_start(svc *s, const svc_opts *o);
/* Wait for the daemon to exit (up to timeout_ms); returns the wait status or -1. */
int svc_wait_exit(svc *s, int timeout_ms);
/* Kill (if running) and remove the files. */
void svc_cleanup(svc *s);
/* Rewrite the configuration file with text (plus the socket line). */
void svc_write_conf(svc *s, const char *text);
/* The daemon's stderr so far (static buffer). */
const char *svc_log(svc *s);
/* Wait until the daemon's stderr contains needle. */
bool svc_log_wait(svc *s, const char *needle, int timeout_ms);

/* Connect, retrying for up to timeout_ms (the socket may not exist yet). */
ringlm_conn *svc_connect(svc *s, int timeout_ms);

typedef struct svc_result {
    int final_type, status, finish;
    size_t n_tokens;
    char msg[256];
} svc_result;
/* Read the events of req until its final one. Returns 0 or the ringlm error. */
int svc_collect(ringlm_conn *c, ringlm_req req, svc_result *r, int timeout_ms);

long long svc_now_ms(void);

#endif
