/* ringlm-kbench - throughput of the vec_dot kernels on a weight matrix large
 * enough to stream from DRAM (a matrix-vector product split over threads).
 *
 *   ringlm-kbench [--type Q4_0,Q8_0,...] [--n 2048] [--mb 256] [--threads 2]
 *                 [--iters 10] [--single | --gemm [--tokens T]] [--cpu-time] [--json]
 *
 * Reports the best of --iters runs as GB/s of weights read and ns per row.
 * --single uses vec_dot per row instead of vec_dot_rows. --gemm times what
 * the model runs: rl_gemm_run (the thread pool, the tiles and their
 * prefetching) for T tokens (default 1: decode). Type READ is no kernel: a
 * plain streaming read of the same bytes, the memory roofline. --cpu-time (one
 * thread only) times with the thread's CPU clock, which stays meaningful on a
 * machine busy with other work. Which kernel level
 * runs follows rl_types_init (RINGLM_CPU_KERNELS=scalar|avx2 caps it). */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <immintrin.h>

#include "rl_gemm.h"
#include "rl_types.h"

typedef struct job {
    const rl_type_traits *t;
    const uint8_t *w;
    const void *a;
    int64_t n, r0, r1;
    size_t rs;
    float *out;
    bool single;
} job;

static void *run_job(void *p)
{
    job *j = p;
    if (j->single)
        for (int64_t r = j->r0; r < j->r1; r++) j->out[r] = j->t->vec_dot(j->n, j->w + (size_t)r * j->rs, j->a);
    else
        j->t->vec_dot_rows(j->n, j->w + (size_t)j->r0 * j->rs, j->rs, j->r1 - j->r0, j->a, j->out + j->r0);
    return NULL;
}

static bool cpu_clock;

static double now(void)
{
    struct timespec t;
    clock_gettime(cpu_clock ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

typedef struct read_job {
    const uint8_t *p;
    size_t n;
    uint64_t sum;
} read_job;

/* The best of iters runs of run() over jobs[0..threads-1] (job k, each
 * `size` bytes, on thread k; job 0 on this thread), in seconds. */
static double best_fanout(void *(*run)(void *), void *jobs, size_t size, int threads, int iters)
{
    double best = 1e30;
    for (int it = 0; it < iters; it++) {
        pthread_t th[64];
        double t0 = now();
        for (int k = 1; k < threads; k++)
            pthread_create(&th[k], NULL, run, (char *)jobs + size * (size_t)k);
        run(jobs);
        for (int k = 1; k < threads; k++)
            pthread_join(th[k], NULL);
        double dt = now() - t0;
        if (dt < best)
            best = dt;
    }
    return best;
}

/* Streaming read, 4 independent 32-byte loads per step (READ). */
__attribute__((target("avx2"))) static void *read_run(void *v)
{
    read_job *j = v;
    const __m256i *p = (const __m256i *)j->p;
    __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i + 4 <= j->n / 32; i += 4) {
        s0 = _mm256_xor_si256(s0, _mm256_load_si256(p + i));
        s1 = _mm256_xor_si256(s1, _mm256_load_si256(p + i + 1));
        s2 = _mm256_xor_si256(s2, _mm256_load_si256(p + i + 2));
        s3 = _mm256_xor_si256(s3, _mm256_load_si256(p + i + 3));
    }
    s0 = _mm256_xor_si256(_mm256_xor_si256(s0, s1), _mm256_xor_si256(s2, s3));
    j->sum = (uint64_t)_mm256_extract_epi64(s0, 0);
    return NULL;
}

static double bench_read(double mb, int threads, int iters)
{
    size_t per = ((size_t)(mb * 1e6) / (size_t)threads) & ~(size_t)127;
    uint8_t *buf = aligned_alloc(64, per * (size_t)threads);
    if (!buf)
        return -1;
    memset(buf, 1, per * (size_t)threads);
    read_job j[64];
    for (int k = 0; k < threads; k++)
        j[k] = (read_job){buf + per * (size_t)k, per, 0};
    double best = best_fanout(read_run, j, sizeof j[0], threads, iters);
    free(buf);
    return (double)per * threads / best / 1e9;
}

/* rl_gemm_run on rows x n weights of type id against `tokens` activation rows;
 * returns the best time in seconds, or -1. */
static double bench_gemm(int id, const uint8_t *w, int64_t rows, int64_t n, int tokens, int threads, int iters)
{
    float *x = malloc(sizeof(float) * (size_t)(n * tokens)), *y = malloc(sizeof(float) * (size_t)(rows * tokens));
    void *scr = malloc(rl_gemm_scratch_size((rl_type)id, n, tokens) + 1);
    rl_pool *p = rl_pool_new(threads);
    double best = -1;
    if (x && y && scr && p) {
        for (int64_t i = 0; i < n * tokens; i++) x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
        rl_gemm_act act = {0};
        if (rl_gemm_prepare(p, &act, (rl_type)id, x, tokens, n, scr) == 0) {
            best = 1e30;
            for (int it = 0; it < iters; it++) {
                double t0 = now();
                rl_gemm_run(p, w, (rl_type)id, rows, &act, y, rows);
                double dt = now() - t0;
                if (dt < best) best = dt;
            }
        }
    }
    rl_pool_free(p);
    free(x);
    free(y);
    free(scr);
    return best;
}

/* --gemm: time rl_gemm_run on the matrix and print one result; 0 or -1. */
static int gemm_report(const rl_type_traits *t, int id, const uint8_t *w, int64_t rows, int64_t n, size_t rs,
                       int gemm_tokens, int threads, int iters, bool json, const bool *first)
{
    double best = bench_gemm(id, w, rows, n, gemm_tokens, threads, iters);
    double gbs = best > 0 ? (double)rs * (double)rows / best / 1e9 : 0;
    double gmacs = best > 0 ? (double)rows * (double)n * gemm_tokens / best / 1e9 : 0;
    if (best > 0 && json)
        printf("%s{\"type\":\"%s\",\"n\":%lld,\"rows\":%lld,\"threads\":%d,\"api\":\"gemm\",\"tokens\":%d,"
               "\"gb_per_s\":%.3f,\"gmac_per_s\":%.2f}",
               *first ? "" : ",\n", t->name, (long long)n, (long long)rows, threads, gemm_tokens, gbs, gmacs);
    else if (best > 0)
        printf("%-5s n=%lld rows=%lld threads=%d gemm, %d token(s): %.2f GB/s of weights, %.2f GMAC/s\n", t->name,
               (long long)n, (long long)rows, threads, gemm_tokens, gbs, gmacs);
    return best > 0 ? 0 : -1;
}

/* vec_dot or vec_dot_rows over each thread's share of the rows, one result. */
static void vecdot_report(const rl_type_traits *t, const uint8_t *w, const void *a, float *out, int64_t rows,
                          int64_t n, size_t rs, int threads, int iters, bool single, bool json, const bool *first)
{
    job j[64];
    for (int k = 0; k < threads; k++)
        j[k] = (job){t, w, a, n, rows * k / threads, rows * (k + 1) / threads, rs, out, single};
    double best = best_fanout(run_job, j, sizeof j[0], threads, iters);
    double gbs = (double)rs * (double)rows / best / 1e9, ns_row = best * 1e9 / (double)rows * threads;
    const char *kern = t->vec_dot == t->vec_dot_ref ? "scalar" : "simd";
    if (json)
        printf("%s{\"type\":\"%s\",\"n\":%lld,\"rows\":%lld,\"threads\":%d,\"api\":\"%s\",\"kernel\":\"%s\","
               "\"gb_per_s\":%.3f,\"ns_per_row_per_thread\":%.1f}",
               *first ? "" : ",\n", t->name, (long long)n, (long long)rows, threads, single ? "vec_dot" : "vec_dot_rows",
               kern, gbs, ns_row);
    else
        printf("%-5s n=%lld rows=%lld threads=%d %s (%s): %.2f GB/s, %.1f ns/row/thread\n", t->name, (long long)n,
               (long long)rows, threads, single ? "vec_dot" : "vec_dot_rows", kern, gbs, ns_row);
}

/* One type: build the matrix, time the product; returns 0 or -1. */
static int bench(const char *name, int64_t n, double mb, int threads, int iters, bool single, int gemm_tokens,
                 bool json, bool *first)
{
    if (strcmp(name, "READ") == 0) {
        double gbs = bench_read(mb, threads, iters);
        if (gbs < 0)
            return -1;
        if (json)
            printf("%s{\"type\":\"READ\",\"mb\":%.0f,\"threads\":%d,\"gb_per_s\":%.3f}", *first ? "" : ",\n", mb,
                   threads, gbs);
        else
            printf("READ  %.0f MB threads=%d: %.2f GB/s\n", mb, threads, gbs);
        *first = false;
        return 0;
    }
    int id = rl_type_from_name(name);
    const rl_type_traits *t = id >= 0 ? rl_type_get((uint32_t)id) : NULL;
    if (!t || !t->vec_dot || !t->from_float) {
        fprintf(stderr, "ringlm-kbench: no kernel for type '%s'\n", name);
        return -1;
    }
    size_t rs = rl_type_row_size((rl_type)id, n);
    if (!rs) {
        fprintf(stderr, "ringlm-kbench: n=%lld is not a multiple of the %s block\n", (long long)n, t->name);
        return -1;
    }
    int64_t rows = (int64_t)(mb * 1e6 / (double)rs);
    if (rows < threads) rows = threads;
    const rl_type_traits *at = rl_type_get(t->vec_dot_type);
    uint8_t *w = malloc(rs * (size_t)rows);
    float *x = malloc(sizeof(float) * (size_t)n), *out = malloc(sizeof(float) * (size_t)rows);
    void *a = malloc(rl_type_row_size(t->vec_dot_type, n));
    if (!w || !x || !out || !a) {
        fprintf(stderr, "ringlm-kbench: out of memory\n");
        return -1;
    }
    for (int64_t i = 0; i < n; i++) x[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    t->from_float(x, w, n);
    for (int64_t r = 1; r < rows; r++) memcpy(w + (size_t)r * rs, w, rs);
    at->from_float(x, a, n);
    int rc = 0;
    if (gemm_tokens > 0)
        rc = gemm_report(t, id, w, rows, n, rs, gemm_tokens, threads, iters, json, first);
    else
        vecdot_report(t, w, a, out, rows, n, rs, threads, iters, single, json, first);
    *first = false;
    free(w);
    free(x);
    free(out);
    free(a);
    return rc;
}

int main(int argc, char **argv)
{
    char types[256] = "Q4_0,Q8_0,Q4_K,Q6_K,F16";
    long n = 2048, threads = 2, iters = 10, tokens = 1;
    bool gemm = false;
    double mb = 256;
    bool json = false, single = false;
    static const struct option opts[] = {{"type", 1, 0, 't'}, {"n", 1, 0, 'n'}, {"mb", 1, 0, 'm'},
                                         {"threads", 1, 0, 'j'}, {"iters", 1, 0, 'i'}, {"json", 0, 0, 'J'},
                                         {"single", 0, 0, 's'}, {"cpu-time", 0, 0, 'c'}, {"gemm", 0, 0, 'g'},
                                         {"tokens", 1, 0, 'T'}, {0, 0, 0, 0}};
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 't': snprintf(types, sizeof types, "%s", optarg); break;
        case 'n': n = strtol(optarg, NULL, 10); break;
        case 'm': mb = strtod(optarg, NULL); break;
        case 'j': threads = strtol(optarg, NULL, 10); break;
        case 'i': iters = strtol(optarg, NULL, 10); break;
        case 'J': json = true; break;
        case 's': single = true; break;
        case 'c': cpu_clock = true; break;
        case 'g': gemm = true; break;
        case 'T': tokens = strtol(optarg, NULL, 10); break;
        default:
            fprintf(stderr, "usage: ringlm-kbench [--type T,...] [--n N] [--mb MB] [--threads T] [--iters I] "
                            "[--single | --gemm [--tokens T]] [--cpu-time] [--json]\n");
            return 2;
        }
    }
    if (n <= 0 || threads < 1 || threads > 64 || iters < 1 || !(mb > 0) || (cpu_clock && threads != 1) ||
        tokens < 1 || tokens > 4096 || (gemm && single)) {
        fprintf(stderr, "ringlm-kbench: bad arguments\n");
        return 2;
    }
    bool first = true;
    int rc = 0;
    if (json) printf("[");
    for (char *save = NULL, *tok = strtok_r(types, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
        if (bench(tok, n, mb, (int)threads, (int)iters, single, gemm ? (int)tokens : 0, json, &first)) rc = 1;
    if (json) printf("]\n");
    return rc;
}
