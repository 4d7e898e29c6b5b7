/* rl_sd.h - ringlmd's systemd integration: readiness/status notification
 * (sd_notify), the watchdog decision, and socket activation.
 *
 * All functions are no-ops (returning 0) when $NOTIFY_SOCKET is unset, so the
 * daemon calls them unconditionally. Thread-safe: sd_notify sends one datagram
 * per call; the watchdog state belongs to the event-loop thread. */
#ifndef RL_SD_H
#define RL_SD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Read $NOTIFY_SOCKET / $WATCHDOG_USEC / $WATCHDOG_PID (once, at start; they
 * stay in the environment). Returns the watchdog interval in us, 0 if off. */
uint64_t rl_sd_init(void);

/* True when $NOTIFY_SOCKET was set at rl_sd_init (we run under systemd's
 * Type=notify or a test's fake notify socket). */
bool rl_sd_notify_enabled(void);

/* "STATUS=<text>". */
int rl_sd_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Loader progress: "STATUS=<what> <pct>%" sent only when the integer percent
 * changes (and at 100%). Progress also proves liveness, so a watchdog ping is
 * sent with it (at most every interval/4). Suitable as the body of a model
 * loader's progress callback. total == 0 is treated as 0%. */
int rl_sd_status_progress(const char *what, uint64_t done, uint64_t total);

/* "READY=1" with "STATUS=<status>" and "MAINPID=<getpid()>". Call once the
 * daemon can serve (listen socket open, engine created). */
int rl_sd_ready(const char *status);

/* "RELOADING=1" with "MONOTONIC_USEC=<CLOCK_MONOTONIC now>" (systemd >= 253's
 * Type=notify-reload wants it; older ones ignore it) and a STATUS=. Follow it
 * with rl_sd_ready() once the reload is done or failed. */
int rl_sd_reloading(const char *status);

/* "STOPPING=1" with a STATUS=. */
int rl_sd_stopping(const char *status);

/* "WATCHDOG=1" now. Prefer rl_sd_watchdog_tick(). */
int rl_sd_watchdog_ping(void);

/* --- watchdog decision (event loop) ---------------------------------------
 * The event loop calls rl_sd_watchdog_tick() at least every
 * rl_sd_watchdog_period_us() with the compute worker's progress counter
 * (incremented once per finished step) and whether the worker is busy (has
 * work it is supposed to be stepping). It pings systemd when due and only
 * while the worker is idle or its counter moved within the last watchdog
 * interval: a step stuck longer than WatchdogSec= stops the pings and systemd
 * restarts the service. Returns 1 if it pinged, 0 if not due, -1 if withheld
 * because the worker is stuck. */
typedef struct rl_sd_watchdog {
    uint64_t interval_us;    /* WatchdogSec= in us; 0: disabled */
    uint64_t last_ping_us;   /* monotonic time of the last ping */
    uint64_t last_change_us; /* monotonic time the progress counter last moved (or went idle) */
    uint64_t last_progress;
    bool stuck_logged;
} rl_sd_watchdog;

void rl_sd_watchdog_init(rl_sd_watchdog *w, uint64_t interval_us, uint64_t now_us);
int rl_sd_watchdog_tick(rl_sd_watchdog *w, uint64_t now_us, uint64_t progress, bool busy);
/* How often the loop should call tick: interval/4 (0 when disabled). */
uint64_t rl_sd_watchdog_period_us(const rl_sd_watchdog *w);

/* CLOCK_MONOTONIC in microseconds. */
uint64_t rl_sd_now_us(void);

/* --- listen socket -----------------------------------------------------------
 * Socket activation: when systemd (or systemd-socket-activate, or a test
 * setting LISTEN_FDS/LISTEN_PID) passed exactly one listening AF_UNIX
 * SOCK_STREAM socket, return it (*activated = true). When none was passed,
 * create, bind (replacing a stale socket file) and listen on `path` with mode
 * 0660. Anything else (several fds, a non-stream or non-unix fd) is a clear
 * error: -EINVAL with the reason in err. Returns the fd (CLOEXEC) or -errno. */
int rl_sd_listen(const char *path, bool *activated, char *err, size_t errlen);

/* Only the activation part: the passed fd, -ENODATA when not socket-activated,
 * or -EINVAL (wrong number or kind of fds; err says which). */
int rl_sd_listen_activated(char *err, size_t errlen);

#endif
