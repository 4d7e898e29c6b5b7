/* rl_sd_service.c - configuration, logging and systemd notification around rl_daemon. */
#include "rl_sd_service.h"
#include "rl_engine_select.h"
#include "rl_log.h"
#include "rl_sd.h"

#include <pthread.h>
#include <stdatomic.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Command-line options of rl_main.c that override a configuration key. */
static const struct {
    const char *lopt;
    char sopt;
    const char *key;
} overrides[] = {
    {"socket", 's', "socket"},    {"model", 'm', "model"},         {"engine", 'e', "device"},
    {"threads", 't', "threads"},  {"spin-us", 'S', "spin_window"}, {"max-clients", 'c', "max_clients"},
    {"verbose", 'v', "log_level"},  {"step-tokens", 'B', "step_tokens"}, {"kv-mb", 'K', "kv_mb"},
    {"client-queue", 'Q', "client_queue"}, {"client-kv", 'C', "client_kv"}, {"kv-type", 'T', "kv_type"},
    {"prefill-weights", 'W', "prefill_weights"},
};
#define N_OVERRIDES (sizeof overrides / sizeof overrides[0])

struct rl_service {
    rl_cfg cfg;
    char cfg_path[RL_CFG_PATH_MAX];
    bool cfg_explicit;
    bool overridden[N_OVERRIDES];
    bool activated;
    const rl_daemon_opts *opts; /* main's options: read back after its getopt */
    rl_daemon *d;
    rl_sd_watchdog wd;
    char last_status[256];

    /* model swap on reload (loop thread, except the loader's results) */
    bool loading;          /* a loader thread runs or a swap is pending */
    bool swap_requested;   /* handed to rl_daemon_swap_engine */
    pthread_t loader;
    rl_cfg want;           /* the configuration being switched to */
    rl_daemon_opts load_opts;
    atomic_bool load_done; /* release by the loader, acquire by on_tick */
    int load_rc;
    rl_engine *load_engine;
    char load_err[256];
};

/* Takes --config out of argv; records the overriding options present. */
static int scan_args(rl_service *s, int *argc, char **argv)
{
    int out = 1;
    bool end_of_opts = false;
    for (int i = 1; i < *argc; i++) {
        char *a = argv[i];
        if (!end_of_opts && strcmp(a, "--") == 0)
            end_of_opts = true;
        if (!end_of_opts && strncmp(a, "--config", 8) == 0 && (a[8] == '\0' || a[8] == '=')) {
            const char *path = a[8] == '=' ? a + 9 : (i + 1 < *argc ? argv[++i] : NULL);
            if (!path || !*path) {
                rl_log(LOG_ERR, "--config needs a file name");
                return -EINVAL;
            }
            if (strlen(path) >= sizeof s->cfg_path) {
                rl_log(LOG_ERR, "--config: path too long");
                return -ENAMETOOLONG;
            }
            snprintf(s->cfg_path, sizeof s->cfg_path, "%s", path);
            s->cfg_explicit = true;
            continue;
        }
        if (!end_of_opts && a[0] == '-') {
            for (size_t k = 0; k < N_OVERRIDES; k++) {
                size_t l = strlen(overrides[k].lopt);
                if ((a[1] == '-' && strncmp(a + 2, overrides[k].lopt, l) == 0 &&
                     (a[2 + l] == '\0' || a[2 + l] == '=')) ||
                    (a[1] == overrides[k].sopt))
                    s->overridden[k] = true;
            }
        }
        argv[out++] = a;
    }
    argv[out] = NULL;
    *argc = out;
    return 0;
}

/* The model's file name for STATUS= lines (the full path is in the journal). */
static const char *model_label(const rl_service *s)
{
    if (!s->cfg.model[0])
        return "test engine";
    const char *slash = strrchr(s->cfg.model, '/');
    return slash && slash[1] ? slash + 1 : s->cfg.model;
}

/* Loads the configuration file into c (over the defaults). */
static int load_cfg(const rl_service *s, rl_cfg *c)
{
    char err[512];
    rl_cfg_defaults(c);
    int rc = rl_cfg_load(c, s->cfg_path, err, sizeof err);
    if (rc == -ENOENT && !s->cfg_explicit) {
        rl_log(LOG_DEBUG, "no configuration file %s; using the defaults", s->cfg_path);
        return 0;
    }
    if (rc < 0)
        rl_log_fields(LOG_ERR, "configuration: %s\nRL_CONFIG=%s", err, s->cfg_path);
    return rc;
}

/* Model loader progress -> "STATUS=loading weights N%" (and watchdog pings). */
static void on_load_progress(void *ctx, float frac)
{
    (void)ctx;
    if (!(frac >= 0.f)) /* NaN or negative */
        frac = 0.f;
    if (frac > 1.f)
        frac = 1.f;
    rl_sd_status_progress("loading weights", (uint64_t)(frac * 1000.f), 1000);
}

static void opts_from_cfg(rl_service *s, const rl_cfg *c, rl_daemon_opts *o)
{
    o->socket_path = c->socket;
    o->n_threads = (int)c->threads;
    o->model_path = c->model[0] ? c->model : NULL;
    if (c->device == RL_DEVICE_TEST)
        o->engine = "test";
    else if (c->device == RL_DEVICE_CUDA && c->model[0])
        o->engine = "cuda";
    else
        o->engine = c->model[0] ? "llm" : NULL; /* no model: the daemon's test engine */
    o->spin_us = (int)c->spin_window_us;
    o->max_clients = (int)c->max_clients;
    uint64_t ms = c->shutdown_deadline_us / 1000;
    o->stop_deadline_ms = ms ? (unsigned)ms : 1;
    o->step_tokens = c->step_tokens;
    o->kv_budget_bytes = c->kv_mb << 20; /* kv_mb <= RL_CFG_KV_MB_MAX: no overflow */
    o->client_max_queued = c->client_queue;
    o->client_max_kv_tokens = c->client_kv;
    o->kv_q8 = c->kv_q8;
    o->prefill_weights = (int)c->prefill_weights;
    o->load_progress = on_load_progress;
    o->load_progress_ctx = s;
}

int rl_service_begin(rl_service **out, rl_daemon_opts *o, int *argc, char **argv)
{
    *out = NULL;
    rl_log_set_target(RL_LOG_AUTO);
    rl_service *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    snprintf(s->cfg_path, sizeof s->cfg_path, "%s", RL_CFG_DEFAULT_FILE);
    s->opts = o;
    int rc = scan_args(s, argc, argv);
    if (rc == 0)
        rc = load_cfg(s, &s->cfg);
    if (rc < 0) {
        free(s);
        return rc;
    }
    rl_log_set_level(s->cfg.log_level);

    uint64_t wd_us = rl_sd_init();
    rl_sd_watchdog_init(&s->wd, wd_us, rl_sd_now_us());

    char err[512];
    int fd = rl_sd_listen_activated(err, sizeof err);
    if (fd < 0 && fd != -ENODATA) {
        rl_log(LOG_ERR, "%s", err);
        rl_sd_status("failed: %s", err);
        free(s);
        return fd;
    }
    opts_from_cfg(s, &s->cfg, o);
    if (fd >= 0) {
        s->activated = true;
        o->listen_fd = fd;
    }
    rl_sd_status("loading %.160s", model_label(s));
    *out = s;
    return 0;
}

const rl_cfg *rl_service_cfg(const rl_service *s) { return &s->cfg; }

static void update_status(rl_service *s, bool force)
{
    rl_daemon_stats st;
    rl_daemon_get_stats(s->d, &st);
    char text[256];
    snprintf(text, sizeof text, "serving %.160s: %u clients, %u requests", model_label(s),
             st.n_clients, st.n_requests);
    if (force || strcmp(text, s->last_status) != 0) {
        memcpy(s->last_status, text, sizeof text);
        rl_sd_status("%s", text);
    }
}

static void check_loader(rl_service *s);

static void on_tick(rl_daemon *d, void *user)
{
    rl_service *s = user;
    rl_daemon_stats st;
    rl_daemon_get_stats(d, &st);
    /* Busy = inside an engine step; progress = finished steps. A step running
     * longer than WatchdogSec withholds the pings (see rl_sd_watchdog_tick). */
    rl_sd_watchdog_tick(&s->wd, rl_sd_now_us(), st.worker_steps, st.step_started_ns != 0);
    check_loader(s);
    if (!s->wd.stuck_logged && !s->loading)
        update_status(s, false);
}

static void on_ready(rl_daemon *d, void *user)
{
    rl_service *s = user;
    char text[256];
    snprintf(text, sizeof text, "serving %.160s: 0 clients, 0 requests", model_label(s));
    memcpy(s->last_status, text, sizeof text);
    rl_sd_ready(text);
    rl_sd_watchdog_tick(&s->wd, rl_sd_now_us(), 0, false);
    rl_log_fields(LOG_NOTICE, "ready\nRL_MODEL=%s", s->cfg.model[0] ? s->cfg.model : "test");
}

static void on_stopping(rl_daemon *d, void *user)
{
    rl_daemon_stats st;
    rl_daemon_get_stats(d, &st);
    char text[128];
    snprintf(text, sizeof text, "stopping: %u requests in flight, %u clients", st.n_requests, st.n_clients);
    rl_sd_stopping(text);
    rl_log_fields(LOG_NOTICE, "stopping\nRL_REQUESTS=%u\nRL_CLIENTS=%u", st.n_requests, st.n_clients);
}

/* What a reload does with a changed key: apply it at once, load a new engine
 * and swap it in while serving, or leave it for the next restart. */
enum { KEY_LIVE, KEY_SWAP, KEY_RESTART };
static int key_kind(const char *key)
{
    if (strcmp(key, "log_level") == 0 || strcmp(key, "max_clients") == 0 ||
        strcmp(key, "shutdown_deadline") == 0)
        return KEY_LIVE;
    if (strcmp(key, "model") == 0 || strcmp(key, "device") == 0 || strcmp(key, "threads") == 0)
        return KEY_SWAP;
    return KEY_RESTART;
}

typedef struct reload_ctx {
    rl_service *s;
    rl_cfg *next;
    unsigned n_applied, n_pending, n_swap;
} reload_ctx;

static void on_change(void *ud, const char *key, const char *old_val, const char *new_val)
{
    reload_ctx *r = ud;
    int kind = key_kind(key);
    static const char *const how[] = {"", " (loading it; running requests finish first)",
                                      " (takes effect at the next restart)"};
    rl_log_fields(LOG_NOTICE, "configuration: %s changed from '%s' to '%s'%s\nRL_CONFIG_KEY=%s", key,
                  old_val, new_val, how[kind], key);
    if (kind == KEY_LIVE) {
        r->n_applied++;
        return;
    }
    /* keep the running value so that the state reported stays true; a swap
     * takes the new one once the new engine serves */
    char v[RL_CFG_PATH_MAX + 8];
    rl_cfg_format(&r->s->cfg, key, v, sizeof v);
    rl_cfg_set(r->next, key, v, NULL, 0);
    if (kind == KEY_SWAP)
        r->n_swap++;
    else
        r->n_pending++;
}

static void *loader_main(void *arg)
{
    rl_service *s = arg;
    rl_engine *e = NULL;
    s->load_rc = rl_engine_open(&s->load_opts, &e, s->load_err, sizeof s->load_err);
    s->load_engine = s->load_rc < 0 ? NULL : e;
    /* release: the results above are complete before on_tick sees the flag */
    atomic_store_explicit(&s->load_done, true, memory_order_release);
    return NULL;
}

static const char *want_label(const rl_service *s)
{
    return s->want.model[0] ? s->want.model : "test engine";
}

static void start_swap(rl_service *s)
{
    rl_daemon_opts_default(&s->load_opts);
    opts_from_cfg(s, &s->want, &s->load_opts);
    /* step_tokens, kv_mb, kv_type and prefill_weights apply at the next
     * restart: the new engine gets the running values (main's options,
     * command line included) */
    s->load_opts.step_tokens = s->opts->step_tokens;
    s->load_opts.kv_budget_bytes = s->opts->kv_budget_bytes;
    s->load_opts.kv_q8 = s->opts->kv_q8;
    s->load_opts.prefill_weights = s->opts->prefill_weights;
    atomic_store_explicit(&s->load_done, false, memory_order_relaxed);
    s->load_engine = NULL;
    s->loading = true;
    s->swap_requested = false;
    rl_sd_status("loading %.200s while serving", want_label(s));
    int rc = pthread_create(&s->loader, NULL, loader_main, s);
    if (rc != 0) {
        s->loading = false;
        rl_log(LOG_ERR, "model loader thread: %s; keeping the running model", strerror(rc));
    }
}

static void on_swapped(rl_daemon *d, int rc, void *user)
{
    rl_service *s = user;
    s->loading = false;
    s->swap_requested = false;
    if (rc == 0) {
        memcpy(s->cfg.model, s->want.model, sizeof s->cfg.model);
        s->cfg.device = s->want.device;
        s->cfg.threads = s->want.threads;
        rl_log_fields(LOG_NOTICE, "now serving %s\nRL_MODEL=%s", want_label(s), want_label(s));
    } else if (rc != -ESHUTDOWN) {
        rl_log(LOG_ERR, "model swap failed (%s); keeping %s", strerror(-rc),
               s->cfg.model[0] ? s->cfg.model : "the test engine");
    }
    if (rc != -ESHUTDOWN) {
        update_status(s, true);
        rl_sd_ready(s->last_status);
    }
}

/* on_tick: hand a finished load to the daemon. */
static void check_loader(rl_service *s)
{
    if (!s->loading || s->swap_requested ||
        !atomic_load_explicit(&s->load_done, memory_order_acquire))
        return;
    pthread_join(s->loader, NULL);
    if (s->load_rc < 0) {
        rl_log_fields(LOG_ERR, "loading %s failed: %s; keeping the running model\nRL_MODEL=%s",
                      want_label(s), s->load_err, want_label(s));
        s->loading = false;
        update_status(s, true);
        rl_sd_ready(s->last_status);
        return;
    }
    rl_engine *e = s->load_engine;
    s->load_engine = NULL;
    s->swap_requested = true;
    int rc = rl_daemon_swap_engine(s->d, e, on_swapped, s);
    if (rc < 0) {
        e->ops->destroy(e);
        on_swapped(s->d, rc, s);
    }
}

static void on_reload(rl_daemon *d, void *user)
{
    rl_service *s = user;
    if (s->loading) {
        rl_log(LOG_WARNING, "reload ignored: a model swap is still in progress");
        return;
    }
    rl_sd_reloading("reloading configuration");
    rl_cfg next;
    int rc = load_cfg(s, &next);
    if (rc < 0) {
        rl_log(LOG_ERR, "reload failed; keeping the running configuration");
        update_status(s, true);
        rl_sd_ready(s->last_status);
        return;
    }
    /* Values given on the command line win over the file, as at start. */
    char v[RL_CFG_PATH_MAX + 8];
    for (size_t k = 0; k < N_OVERRIDES; k++) {
        if (!s->overridden[k])
            continue;
        rl_cfg_format(&s->cfg, overrides[k].key, v, sizeof v);
        rl_cfg_set(&next, overrides[k].key, v, NULL, 0);
    }
    s->want = next;
    reload_ctx r = {.s = s, .next = &next};
    unsigned n = rl_cfg_diff(&s->cfg, &next, on_change, &r);
    s->cfg = next;
    rl_log_set_level(s->cfg.log_level);
    uint64_t ms = s->cfg.shutdown_deadline_us / 1000;
    rl_daemon_set_limits(d, (int)s->cfg.max_clients, ms ? (unsigned)ms : 1);
    rl_log_fields(LOG_INFO,
                  "configuration reloaded: %u changes, %u applied, %u for a new engine, %u at next restart"
                  "\nRL_CONFIG=%s",
                  n, r.n_applied, r.n_swap, r.n_pending, s->cfg_path);
    if (r.n_swap) {
        start_swap(s); /* READY=1 follows once the new engine serves */
        if (s->loading)
            return;
    }
    update_status(s, true);
    rl_sd_ready(s->last_status);
}

/* The command line overrode some keys after begin(): record the values in
 * effect, so that a reload keeps them rather than the file's. */
static void sync_overrides(rl_service *s)
{
    const rl_daemon_opts *o = s->opts;
    char v[32];
    for (size_t k = 0; k < N_OVERRIDES; k++) {
        if (!s->overridden[k])
            continue;
        const char *key = overrides[k].key;
        if (strcmp(key, "socket") == 0 && o->socket_path)
            rl_cfg_set(&s->cfg, key, o->socket_path, NULL, 0);
        else if (strcmp(key, "model") == 0)
            rl_cfg_set(&s->cfg, key, o->model_path ? o->model_path : "", NULL, 0);
        else if (strcmp(key, "device") == 0 && o->engine)
            s->cfg.device = strcmp(o->engine, "test") == 0 ? RL_DEVICE_TEST
                            : s->cfg.device == RL_DEVICE_TEST ? RL_DEVICE_CPU
                                                              : s->cfg.device;
        else if (strcmp(key, "threads") == 0 && o->n_threads >= 0)
            s->cfg.threads = (uint32_t)o->n_threads;
        else if (strcmp(key, "spin_window") == 0 && o->spin_us >= 0) {
            snprintf(v, sizeof v, "%dus", o->spin_us);
            rl_cfg_set(&s->cfg, key, v, NULL, 0);
        } else if (strcmp(key, "max_clients") == 0 && o->max_clients > 0)
            s->cfg.max_clients = (uint32_t)o->max_clients;
        else if (strcmp(key, "log_level") == 0)
            s->cfg.log_level = rl_log_get_level();
        /* batching: the value in effect, within the file's ranges (the engine
         * clamps step_tokens; the transport caps the queue) */
        else if (strcmp(key, "step_tokens") == 0)
            s->cfg.step_tokens = o->step_tokens < RL_CFG_STEP_TOKENS_MAX ? o->step_tokens
                                                                         : RL_CFG_STEP_TOKENS_MAX;
        else if (strcmp(key, "kv_mb") == 0) {
            uint64_t mb = o->kv_budget_bytes >> 20;
            s->cfg.kv_mb = mb < RL_CFG_KV_MB_MAX ? mb : RL_CFG_KV_MB_MAX;
        } else if (strcmp(key, "client_queue") == 0)
            s->cfg.client_queue = o->client_max_queued == 0 || o->client_max_queued > RL_CFG_CLIENT_QUEUE_MAX
                                      ? RL_CFG_CLIENT_QUEUE_MAX
                                      : o->client_max_queued;
        else if (strcmp(key, "kv_type") == 0)
            s->cfg.kv_q8 = o->kv_q8;
        else if (strcmp(key, "prefill_weights") == 0)
            s->cfg.prefill_weights = (rl_prefill_weights)o->prefill_weights;
        else if (strcmp(key, "client_kv") == 0)
            s->cfg.client_kv = o->client_max_kv_tokens < RL_CFG_CLIENT_KV_MAX ? o->client_max_kv_tokens
                                                                              : RL_CFG_CLIENT_KV_MAX;
    }
}

void rl_service_attach(rl_service *s, rl_daemon *d)
{
    s->d = d;
    sync_overrides(s);
    rl_log_fields(LOG_INFO, "ringlmd %s: config %s%s, %s, shutdown deadline %" PRIu64 " ms\nRL_MODEL=%s\nRL_CONFIG=%s",
                  RL_VERSION, s->cfg_path, s->cfg_explicit ? "" : " (default path)",
                  s->activated ? "socket-activated" : "own socket", s->cfg.shutdown_deadline_us / 1000,
                  s->cfg.model[0] ? s->cfg.model : "(test engine)", s->cfg_path);
    if (s->wd.interval_us)
        rl_log(LOG_INFO, "watchdog every %" PRIu64 " ms", s->wd.interval_us / 1000);
    unsigned tick_ms = 1000;
    uint64_t period = rl_sd_watchdog_period_us(&s->wd) / 1000;
    if (period && period < tick_ms)
        tick_ms = period ? (unsigned)period : 1;
    rl_daemon_hooks h = {
        .on_tick = on_tick,
        .on_reload = on_reload,
        .on_ready = on_ready,
        .on_stopping = on_stopping,
        .tick_ms = tick_ms,
        .user = s,
    };
    rl_daemon_set_hooks(d, &h);
}

void rl_service_end(rl_service *s, int rc)
{
    if (!s)
        return;
    if (s->loading && !s->swap_requested) {
        /* a load still running at exit: wait for it, then drop its engine */
        pthread_join(s->loader, NULL);
        if (s->load_engine)
            s->load_engine->ops->destroy(s->load_engine);
    }
    if (rc < 0) {
        rl_sd_status("failed: %s", strerror(-rc));
        rl_log(LOG_ERR, "exiting after an error: %s", strerror(-rc));
    } else {
        rl_log(LOG_INFO, "exiting");
    }
    free(s);
}

void rl_service_discard(rl_service *s)
{
    free(s); /* nothing else exists before rl_service_attach (no loader, no hooks) */
}
