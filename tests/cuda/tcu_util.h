/* tcu_util.h - helpers for the CUDA kernel tests: device buffers, random
 * data, relative error, and the skip rule (exit 77 without a GPU). */
#ifndef TCU_UTIL_H
#define TCU_UTIL_H

#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rl_cuda.h"
#include "rl_types.h"

#define CU_OK(x) ck_assert_msg((x) == 0, "%s failed: %s", #x, rl_cu_last_error())

static inline uint64_t tcu_rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Uniform in [-1, 1). */
static inline float tcu_unif(uint64_t *s)
{
    return (float)((tcu_rng_next(s) >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* A fresh seed per call, so every run draws new inputs (printed for replay). */
static inline uint64_t tcu_seed(const char *what)
{
    static uint64_t counter;
    uint64_t s = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ULL + (++counter) * 0xBF58476D1CE4E5B9ULL + 1;
    const char *fix = getenv("RL_TEST_SEED");
    if (fix)
        s = strtoull(fix, NULL, 0) + counter;
    fprintf(stderr, "%s: seed %llu\n", what, (unsigned long long)s);
    return s;
}

static inline float *tcu_rand_vec(uint64_t *s, size_t n, float amp)
{
    float *v = malloc(n * sizeof *v);
    ck_assert_ptr_nonnull(v);
    for (size_t i = 0; i < n; i++)
        v[i] = tcu_unif(s) * amp;
    return v;
}

/* x[b] / rms(x[b]) * g for batch rows of n (float64 inside, eps 1e-5) into
 * out (float64) and/or outf (float), either may be NULL. */
static inline void tcu_ref_rmsnorm(const float *x, const float *g, int64_t n, int batch, double *out, float *outf)
{
    for (int b = 0; b < batch; b++) {
        double sq = 0;
        for (int64_t i = 0; i < n; i++)
            sq += (double)x[b * n + i] * x[b * n + i];
        double rs = 1.0 / sqrt(sq / n + 1e-5);
        for (int64_t i = 0; i < n; i++) {
            double v = x[b * n + i] * rs * g[i];
            if (out)
                out[b * n + i] = v;
            if (outf)
                outf[b * n + i] = (float)v;
        }
    }
}

static inline void *tcu_dev(size_t bytes)
{
    void *p = NULL;
    ck_assert_msg(cudaMalloc(&p, bytes) == cudaSuccess, "cudaMalloc %zu", bytes);
    ck_assert_msg(cudaMemset(p, 0xFF, bytes) == cudaSuccess, "poison"); /* 0xFFFFFFFF is a NaN */
    return p;
}

static inline void *tcu_up(const void *h, size_t bytes)
{
    void *d = tcu_dev(bytes);
    ck_assert(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice) == cudaSuccess);
    return d;
}

static inline void tcu_down(void *h, const void *d, size_t bytes)
{
    ck_assert(cudaDeviceSynchronize() == cudaSuccess);
    ck_assert(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost) == cudaSuccess);
}

/* ||out - ref|| / ||ref||; any NaN/Inf in out gives +inf. */
static inline double tcu_rel_err(const float *out, const double *ref, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(out[i]))
            return INFINITY;
        double d = (double)out[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* The same against a float reference (another kernel's output). */
static inline double tcu_rel_err_f(const float *out, const float *ref, size_t n)
{
    double *d = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++)
        d[i] = ref[i];
    double e = tcu_rel_err(out, d, n);
    free(d);
    return e;
}

/* Random weights of type t quantized by the CPU codec; ref (rows x cols) gets
 * the exact dequantized values. */
static inline void tcu_make_weight(rl_type t, int64_t rows, int64_t cols, uint64_t *s, rl_cu_mat *m, float *ref)
{
    const rl_type_traits *tr = rl_type_get(t);
    size_t rb = rl_type_row_size(t, cols);
    uint8_t *raw = malloc(rb * rows);
    float *row = malloc(cols * sizeof(float));
    ck_assert(raw && row);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t c = 0; c < cols; c++)
            row[c] = tcu_unif(s) * (1.0f + (float)(r % 7));
        tr->from_float(row, raw + r * rb, cols);
        tr->to_float(raw + r * rb, ref + r * cols, cols);
    }
    CU_OK(rl_cu_mat_alloc(m, t, rows, cols));
    CU_OK(rl_cu_mat_set_rows(m, 0, raw, rows));
    free(raw);
    free(row);
}

/* Run a Check suite, or skip (77) when no CUDA device is present. */
/* The shared test model (RL_SHARED_DIR/models/stories260K.gguf) into path;
 * false when RL_SHARED_DIR is unset or the file is missing. */
static inline bool tcu_shared_model(char *path, size_t cap)
{
    const char *dir = getenv("RL_SHARED_DIR");
    if (!dir)
        return false;
    snprintf(path, cap, "%s/models/stories260K.gguf", dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    fclose(f);
    return true;
}

static inline int tcu_main(Suite *s)
{
    if (rl_cu_device_count() <= 0) {
        printf("no CUDA device: skipping\n");
        srunner_free(srunner_create(s)); /* frees the suite (LeakSanitizer) */
        return 77;
    }
    rl_types_init();
    SRunner *r = srunner_create(s);
    /* CUDA does not survive fork() once initialised (the device probe above
     * did that), so the tests run in this process. */
    srunner_set_fork_status(r, CK_NOFORK);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}

#endif
