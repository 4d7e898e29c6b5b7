/* rl_bench_load.c - ringlm-bench load: many clients at once.
 *
 *   ringlm-bench load --clients N [--model F | --socket PATH] [--requests R]
 *                     [--max-tokens T] [--prefix P] [--suffix S] [--threads T]
 *                     [--step-tokens B] [--kv-mb M] [--sample] [--logprobs L] [--json]
 *
 * N client threads, each with its own libringlm connection, each streaming R
 * requests one after another: a shared P-token "system prompt" then S tokens
 * of its own, greedy (--sample: the library's default sampling, temperature
 * 0.8, top-k 40, top-p 0.95, min-p 0.05, a seed per request), T tokens
 * generated (--logprobs: each with its log-probability and the L best's). With --model the daemon runs in this
 * process (its compute threads share the machine with the clients); with
 * --socket an already running ringlmd is measured. Reports aggregate generated
 * tokens/s, time to first token and inter-token latency p50/p99 (client-side
 * clocks), the per-client p99 spread (max client p99 / median client p99), the
 * KV memory peak, the prefix-cache hit rate and the batch sizes. */
#include "rl_bench.h"
#include "rl_daemon.h"
#include "rl_log.h"
#include "ringlm.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct dvec {
    double *v;
    size_t n, cap;
} dvec;

static void dpush(dvec *d, double x)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 256;
        double *p = realloc(d->v, cap * sizeof *p);
        if (!p)
            return;
        d->v = p;
        d->cap = cap;
    }
    d->v[d->n++] = x;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* q in [0, 1] of a sorted vector (nearest rank). */
static double pct(const dvec *d, double q)
{
    if (!d->n)
        return 0;
    size_t i = (size_t)(q * (double)(d->n - 1) + 0.5);
    return d->v[i < d->n ? i : d->n - 1];
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

typedef struct cfg {
    const char *sock;
    uint32_t clients, requests, max_tokens, prefix, suffix, vocab;
    int sample; /* 1: the library's default sampling, a seed per request; 0: greedy */
    uint8_t logprobs; /* ringlm_params.logprobs */
} cfg;

typedef struct client {
    const cfg *cf;
    uint32_t id;
    pthread_barrier_t *start;
    dvec ttft, itl;
    uint64_t gen_tokens, errors;
    char err[160];
} client;

static uint32_t mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    return x ^ (x >> 16);
}

static void make_prompt(const cfg *cf, uint32_t client, uint32_t req, int32_t *t)
{
    uint32_t n = cf->prefix + cf->suffix, range = cf->vocab > 8 ? cf->vocab - 4 : 1;
    t[0] = 1; /* BOS of Llama vocabularies */
    for (uint32_t i = 1; i < n; i++) {
        uint32_t seed = i < cf->prefix ? mix(i) : mix(i * 7919u + client * 104729u + req * 1299709u + 1u);
        t[i] = (int32_t)(3 + seed % range);
    }
}

static void *client_main(void *arg)
{
    client *cl = arg;
    const cfg *cf = cl->cf;
    ringlm_opts o = {.spin_us = 0, .timeout_ms = 30000}; /* many clients on few cores: sleep */
    ringlm_conn *c = NULL;
    int rc = ringlm_connect(cf->sock, &o, &c);
    pthread_barrier_wait(cl->start);
    if (rc < 0) {
        snprintf(cl->err, sizeof cl->err, "connect: %s", ringlm_last_error());
        cl->errors += cf->requests;
        return NULL;
    }
    uint32_t n = cf->prefix + cf->suffix;
    int32_t *toks = malloc(sizeof(int32_t) * n);
    ringlm_params p;
    ringlm_params_default(&p);
    if (!cf->sample)
        p.temperature = 0;
    p.max_tokens = cf->max_tokens;
    p.logprobs = cf->logprobs;
    for (uint32_t r = 0; toks && r < cf->requests; r++) {
        make_prompt(cf, cl->id, r, toks);
        p.seed = (uint64_t)cl->id * 1000003u + r;
        ringlm_req req;
        double t0 = now_ms(), last = 0;
        if ((rc = ringlm_submit_tokens(c, toks, n, &p, &req)) < 0) {
            snprintf(cl->err, sizeof cl->err, "submit: %s", ringlm_last_error());
            cl->errors++;
            continue;
        }
        for (;;) {
            ringlm_event ev;
            if ((rc = ringlm_next(c, req, &ev, 120000)) < 0) {
                snprintf(cl->err, sizeof cl->err, "next: %s", ringlm_strerror(rc));
                cl->errors++;
                break;
            }
            int type = ev.type;
            if (type == RINGLM_EV_TOKENS && ev.n_tokens) {
                double t = now_ms();
                if (!last)
                    dpush(&cl->ttft, t - t0);
                else /* several tokens in one event share the gap */
                    for (size_t k = 0; k < ev.n_tokens; k++)
                        dpush(&cl->itl, (t - last) / (double)ev.n_tokens);
                last = t;
                cl->gen_tokens += ev.n_tokens;
            } else if (type == RINGLM_EV_ERROR) {
                snprintf(cl->err, sizeof cl->err, "request: %.*s (%d)", (int)ev.text_len, ev.text, ev.status);
                cl->errors++;
            }
            ringlm_release(c, &ev);
            if (type == RINGLM_EV_DONE || type == RINGLM_EV_ERROR)
                break;
        }
    }
    free(toks);
    ringlm_close(c);
    return NULL;
}

typedef struct daemon_thr {
    rl_daemon *d;
    pthread_t thr;
    int rc;
} daemon_thr;

static void *daemon_main(void *arg)
{
    daemon_thr *t = arg;
    t->rc = rl_daemon_run(t->d);
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: ringlm-bench load --clients N [--model F | --socket PATH] [--requests R]\n"
               "         [--max-tokens T] [--prefix P] [--suffix S] [--threads T] [--step-tokens B]\n"
               "         [--kv-mb M] [--sample] [--logprobs L] [--json]\n");
}

int rl_bench_load_main(int argc, char **argv)
{
    cfg cf = {.clients = 8, .requests = 4, .max_tokens = 32, .prefix = 64, .suffix = 16};
    const char *model = NULL, *sock = NULL;
    int threads = 0, json = 0;
    uint32_t step_tokens = 0;
    uint64_t kv_mb = 0;
    static const struct option lo[] = {
        {"clients", 1, 0, 'c'}, {"model", 1, 0, 'm'}, {"socket", 1, 0, 's'}, {"requests", 1, 0, 'r'},
        {"max-tokens", 1, 0, 'n'}, {"prefix", 1, 0, 'p'}, {"suffix", 1, 0, 'x'}, {"threads", 1, 0, 't'},
        {"step-tokens", 1, 0, 'b'}, {"kv-mb", 1, 0, 'k'}, {"json", 0, 0, 'j'}, {"help", 0, 0, 'h'},
        {"sample", 0, 0, 'S'}, {"logprobs", 1, 0, 'L'},
        {0, 0, 0, 0},
    };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:m:s:r:n:p:x:t:b:k:jhSL:", lo, NULL)) != -1) {
        switch (ch) {
        case 'c': cf.clients = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'm': model = optarg; break;
        case 's': sock = optarg; break;
        case 'r': cf.requests = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'n': cf.max_tokens = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'p': cf.prefix = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'x': cf.suffix = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 't': threads = atoi(optarg); break;
        case 'b': step_tokens = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'k': kv_mb = strtoull(optarg, NULL, 10); break;
        case 'j': json = 1; break;
        case 'S': cf.sample = 1; break;
        case 'L': cf.logprobs = (uint8_t)atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || cf.clients == 0 || cf.clients > 4096 || cf.requests == 0 || cf.max_tokens == 0 ||
        cf.prefix + cf.suffix < 2 || cf.prefix + cf.suffix > 100000 || (!model && !sock)) {
        usage(stderr);
        return 2;
    }
    /* In-process daemon on a private socket. */
    daemon_thr dt = {0};
    char dir[64] = "", path[128];
    if (!sock) {
        /* RINGLM_TRACE_TTFT: the daemon's spans (rl_worker_trace.h) are info lines */
        const char *tr = getenv("RINGLM_TRACE_TTFT");
        rl_log_set_level(tr && *tr && strcmp(tr, "0") != 0 ? LOG_INFO : LOG_WARNING);
        snprintf(dir, sizeof dir, "/tmp/ringlm-bench-XXXXXX");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
        snprintf(path, sizeof path, "%s/ringlm.sock", dir);
        rl_daemon_opts o;
        rl_daemon_opts_default(&o);
        o.socket_path = path;
        o.model_path = model;
        o.n_threads = threads;
        o.max_clients = (int)cf.clients + 4;
        o.step_tokens = step_tokens;
        o.kv_budget_bytes = kv_mb << 20;
        char err[256];
        if (rl_daemon_create(&o, &dt.d, err, sizeof err) < 0) {
            fprintf(stderr, "ringlm-bench load: %s\n", err);
            rmdir(dir);
            return 1;
        }
        pthread_create(&dt.thr, NULL, daemon_main, &dt);
        sock = path;
    }
    cf.sock = sock;
    ringlm_conn *mon = NULL;
    ringlm_daemon_info i0 = {0}, i1 = {0};
    int rc = ringlm_connect(sock, NULL, &mon);
    if (rc == 0)
        rc = ringlm_info(mon, &i0, 10000);
    if (rc < 0) {
        fprintf(stderr, "ringlm-bench load: %s\n", ringlm_last_error());
        return 1;
    }
    cf.vocab = i0.n_vocab;
    client *cl = calloc(cf.clients, sizeof *cl);
    pthread_t *th = calloc(cf.clients, sizeof *th);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, cf.clients + 1);
    for (uint32_t i = 0; i < cf.clients; i++) {
        cl[i] = (client){.cf = &cf, .id = i, .start = &start};
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 256 << 10);
        pthread_create(&th[i], &a, client_main, &cl[i]);
        pthread_attr_destroy(&a);
    }
    pthread_barrier_wait(&start);
    double t0 = now_ms();
    /* sample the KV pool while the clients run */
    uint64_t kv_peak_blocks = 0, kv_peak_bytes = 0;
    atomic_uint done = 0;
    (void)done;
    for (uint32_t i = 0; i < cf.clients; i++) {
        for (;;) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 5 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            if (pthread_timedjoin_np(th[i], NULL, &ts) == 0)
                break;
            ringlm_daemon_info in;
            if (ringlm_info(mon, &in, 10000) == 0) {
                uint64_t used = (uint64_t)in.sched.kv_blocks_used + in.sched.kv_blocks_cached;
                if (used > kv_peak_blocks) {
                    kv_peak_blocks = used;
                    kv_peak_bytes = used * in.sched.kv_block_bytes;
                }
            }
        }
    }
    double wall = (now_ms() - t0) / 1e3;
    ringlm_info(mon, &i1, 10000);
    /* aggregate */
    dvec ttft = {0}, itl = {0}, cp99 = {0};
    uint64_t gen = 0, errors = 0;
    const char *last_err = "";
    for (uint32_t i = 0; i < cf.clients; i++) {
        for (size_t k = 0; k < cl[i].ttft.n; k++)
            dpush(&ttft, cl[i].ttft.v[k]);
        for (size_t k = 0; k < cl[i].itl.n; k++)
            dpush(&itl, cl[i].itl.v[k]);
        qsort(cl[i].itl.v, cl[i].itl.n, sizeof(double), cmp_d);
        if (cl[i].itl.n)
            dpush(&cp99, pct(&cl[i].itl, 0.99));
        gen += cl[i].gen_tokens;
        errors += cl[i].errors;
        if (cl[i].err[0])
            last_err = cl[i].err;
    }
    qsort(ttft.v, ttft.n, sizeof(double), cmp_d);
    qsort(itl.v, itl.n, sizeof(double), cmp_d);
    qsort(cp99.v, cp99.n, sizeof(double), cmp_d);
    double med_p99 = pct(&cp99, 0.5), spread = med_p99 > 0 ? (cp99.n ? cp99.v[cp99.n - 1] : 0) / med_p99 : 0;
    uint64_t steps = i1.sched.steps - i0.sched.steps;
    double mean_batch = steps ? (double)(i1.sched.batch_seqs - i0.sched.batch_seqs) / (double)steps : 0;
    uint64_t look = i1.sched.prefix_lookup_tokens - i0.sched.prefix_lookup_tokens;
    double hit_rate = look ? (double)(i1.sched.prefix_hit_tokens - i0.sched.prefix_hit_tokens) / (double)look : 0;
    double tps = wall > 0 ? (double)gen / wall : 0;
    if (json) {
        printf("{\"bench\":\"load\",\"model\":\"%s\",\"backend\":\"%s\",\"clients\":%u,\"requests\":%u,"
               "\"max_tokens\":%u,\"prompt_tokens\":%u,\"prefix_tokens\":%u,\"step_tokens\":%u,\"wall_s\":%.3f,"
               "\"gen_tokens\":%llu,\"gen_tok_s\":%.1f,\"ttft_ms\":{\"p50\":%.3f,\"p99\":%.3f},"
               "\"itl_ms\":{\"p50\":%.3f,\"p99\":%.3f},\"client_itl_p99_spread\":%.3f,\"kv_peak_blocks\":%llu,"
               "\"kv_peak_bytes\":%llu,\"prefix_hit_rate\":%.4f,\"mean_batch\":%.2f,\"max_batch\":%u,"
               "\"steps\":%llu,\"preempted\":%llu,\"errors\":%llu,\"sampling\":\"%s\",\"logprobs\":%u,"
               "\"sampled\":%llu,\"sampled_top_k\":%llu}\n",
               i0.name, i0.backend, cf.clients, cf.requests, cf.max_tokens, cf.prefix + cf.suffix, cf.prefix,
               i1.sched.step_tokens, wall, (unsigned long long)gen, tps, pct(&ttft, 0.5), pct(&ttft, 0.99),
               pct(&itl, 0.5), pct(&itl, 0.99), spread, (unsigned long long)kv_peak_blocks,
               (unsigned long long)kv_peak_bytes, hit_rate, mean_batch, i1.sched.max_batch,
               (unsigned long long)steps, (unsigned long long)(i1.sched.preempted - i0.sched.preempted),
               (unsigned long long)errors, cf.sample ? "default" : "greedy", cf.logprobs,
               (unsigned long long)(i1.sched.sampled - i0.sched.sampled),
               (unsigned long long)(i1.sched.sampled_top_k - i0.sched.sampled_top_k));
    } else {
        printf("load: %u clients x %u requests (%u prompt tokens, %u shared; %u generated), model %s (%s)\n",
               cf.clients, cf.requests, cf.prefix + cf.suffix, cf.prefix, cf.max_tokens, i0.name, i0.backend);
        printf("  generated   %llu tokens in %.2f s: %.1f tok/s aggregate\n", (unsigned long long)gen, wall, tps);
        printf("  ttft        p50 %.2f ms  p99 %.2f ms\n", pct(&ttft, 0.5), pct(&ttft, 0.99));
        printf("  inter-token p50 %.2f ms  p99 %.2f ms  (client p99 spread %.2fx)\n", pct(&itl, 0.5),
               pct(&itl, 0.99), spread);
        printf("  batch       mean %.2f  max %u  steps %llu  preempted %llu\n", mean_batch, i1.sched.max_batch,
               (unsigned long long)steps, (unsigned long long)(i1.sched.preempted - i0.sched.preempted));
        printf("  kv          peak %llu blocks (%.2f MiB)  prefix hit rate %.1f%%\n",
               (unsigned long long)kv_peak_blocks, (double)kv_peak_bytes / (1 << 20), 100 * hit_rate);
        if (errors)
            printf("  errors      %llu (last: %s)\n", (unsigned long long)errors, last_err);
    }
    ringlm_close(mon);
    for (uint32_t i = 0; i < cf.clients; i++) {
        free(cl[i].ttft.v);
        free(cl[i].itl.v);
    }
    free(ttft.v);
    free(itl.v);
    free(cp99.v);
    free(cl);
    free(th);
    pthread_barrier_destroy(&start);
    if (dt.d) {
        rl_daemon_request_stop(dt.d, 0);
        pthread_join(dt.thr, NULL);
        rl_daemon_destroy(dt.d);
        rmdir(dir);
    }
    return errors ? 1 : 0;
}
