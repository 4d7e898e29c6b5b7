/* rl_sd.c - sd_notify messages and the watchdog decision. */
#include "rl_sd.h"
#include "rl_log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

static bool g_notify;
static uint64_t g_wd_usec;
/* Progress de-duplication: the loader may call from any one thread; relaxed
 * is enough because a duplicate or skipped STATUS line is harmless. */
static _Atomic int g_last_pct = -1;
static _Atomic uint64_t g_last_progress_ping;

uint64_t rl_sd_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t rl_sd_init(void)
{
    const char *ns = getenv("NOTIFY_SOCKET");
    g_notify = ns && *ns;
    uint64_t usec = 0;
    /* Checks WATCHDOG_PID == getpid() too, so a forked child never pings. */
    if (sd_watchdog_enabled(0, &usec) <= 0)
        usec = 0;
    g_wd_usec = usec;
    atomic_store_explicit(&g_last_pct, -1, memory_order_relaxed);
    return usec;
}

bool rl_sd_notify_enabled(void) { return g_notify; }

static int notify(const char *msg)
{
    if (!g_notify)
        return 0;
    int rc = sd_notify(0, msg);
    if (rc < 0)
        rl_log(LOG_WARNING, "sd_notify failed: %d", rc);
    return rc;
}

static int notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int notifyf(const char *fmt, ...)
{
    if (!g_notify)
        return 0;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return notify(buf);
}

/* STATUS= is one line: newlines in the text would start a new assignment. */
static void one_line(char *s)
{
    for (; *s; s++)
        if (*s == '\n' || *s == '\r')
            *s = ' ';
}

int rl_sd_status(const char *fmt, ...)
{
    if (!g_notify)
        return 0;
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    one_line(text);
    return notifyf("STATUS=%s", text);
}

int rl_sd_status_progress(const char *what, uint64_t done, uint64_t total)
{
    int pct = 0;
    if (total > 0)
        pct = done >= total ? 100 : (int)((double)done * 100.0 / (double)total);
    int prev = atomic_exchange_explicit(&g_last_pct, pct, memory_order_relaxed);
    int rc = 0;
    if (pct != prev)
        rc = rl_sd_status("%s %d%%", what ? what : "loading", pct);
    if (g_wd_usec) {
        uint64_t now = rl_sd_now_us();
        uint64_t last = atomic_load_explicit(&g_last_progress_ping, memory_order_relaxed);
        if (now - last >= g_wd_usec / 4) {
            atomic_store_explicit(&g_last_progress_ping, now, memory_order_relaxed);
            rl_sd_watchdog_ping();
        }
    }
    return rc;
}

int rl_sd_ready(const char *status)
{
    char text[512];
    snprintf(text, sizeof text, "%s", status ? status : "serving");
    one_line(text);
    atomic_store_explicit(&g_last_pct, -1, memory_order_relaxed);
    return notifyf("READY=1\nSTATUS=%s\nMAINPID=%d", text, (int)getpid());
}

int rl_sd_reloading(const char *status)
{
    char text[512];
    snprintf(text, sizeof text, "%s", status ? status : "reloading configuration");
    one_line(text);
    return notifyf("RELOADING=1\nSTATUS=%s\nMONOTONIC_USEC=%" PRIu64, text, rl_sd_now_us());
}

int rl_sd_stopping(const char *status)
{
    char text[512];
    snprintf(text, sizeof text, "%s", status ? status : "shutting down");
    one_line(text);
    return notifyf("STOPPING=1\nSTATUS=%s", text);
}

int rl_sd_watchdog_ping(void) { return g_wd_usec ? notify("WATCHDOG=1") : 0; }

void rl_sd_watchdog_init(rl_sd_watchdog *w, uint64_t interval_us, uint64_t now_us)
{
    w->interval_us = interval_us;
    w->last_ping_us = 0; /* first tick pings at once */
    w->last_change_us = now_us;
    w->last_progress = 0;
    w->stuck_logged = false;
}

uint64_t rl_sd_watchdog_period_us(const rl_sd_watchdog *w) { return w->interval_us / 4; }

int rl_sd_watchdog_tick(rl_sd_watchdog *w, uint64_t now_us, uint64_t progress, bool busy)
{
    if (w->interval_us == 0)
        return 0;
    if (!busy || progress != w->last_progress) {
        w->last_progress = progress;
        w->last_change_us = now_us;
        if (w->stuck_logged)
            rl_log(LOG_NOTICE, "compute worker moving again; watchdog pings resumed");
        w->stuck_logged = false;
    }
    if (now_us - w->last_change_us > w->interval_us) {
        if (!w->stuck_logged) {
            rl_log_fields(LOG_ERR,
                          "compute worker stuck on one step for %" PRIu64
                          " ms; withholding watchdog pings\nRL_WORKER_STEPS=%" PRIu64,
                          (now_us - w->last_change_us) / 1000, progress);
            rl_sd_status("compute worker stuck; waiting for the watchdog");
            w->stuck_logged = true;
        }
        return -1;
    }
    /* Ping at half the interval, as sd_watchdog_enabled(3) recommends; half a
     * tick of slack so that a tick arriving a hair early does not push the
     * ping a whole tick later (worst spacing: interval/2 + period/2 + jitter). */
    if (w->last_ping_us == 0 ||
        now_us - w->last_ping_us + rl_sd_watchdog_period_us(w) / 2 >= w->interval_us / 2) {
        w->last_ping_us = now_us;
        rl_sd_watchdog_ping();
        return 1;
    }
    return 0;
}
