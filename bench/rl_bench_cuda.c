/* rl_bench_cuda.c - `ringlm-bench cuda`: generation and prefill speed of the
 * CUDA model, with the fraction of the roofline (--bw GB/s, default the
 * H100's measured 2,920; --copy measures the device's own copy bandwidth) for the
 * weight bytes a generated token reads, as the device holds them: Q4_K and
 * Q5_K rows padded to 128-byte lines count their padding, at most 127 bytes a
 * row; `ringlm-bench model` counts the file's bytes; 750 TFLOP/s for prefill
 * GEMMs).
 *
 *   ringlm-bench-cuda --shape llama2-7b --type q4_0 [--gen 128] [--prompt 512]
 *                     [--batch 1..64] [--no-graph] [--kernels] [--profile] [--prefill-profile] [--json]
 *                     [--timeline] [--timeline-csv FILE] [--timeline-raw FILE]  (a -Dgpu_timeline=true build: bench/rl_bench_tl.c)
 *                     [--bw GB/s]  (the copy bandwidth the roofline assumes)
 *   ringlm-bench-cuda --copy [--json]  (device-to-device copy of 2 GiB, bytes read plus written)
 *   ringlm-bench-cuda --mm [--split 1|2|4|8] [--mm-batch N] [--mm-kernel mm|matvec|mmq|mmh|mms|mmw] [--json]
 *                     (rl_cu_mm, rl_cu_mmq vs rl_cu_matvec, 7B shapes; the filters keep one column)
 *
 * Models of real shapes are made on the device with random weights (valid
 * blocks, sane scales), so no multi-GiB file has to travel. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "rl_bench_tl.h"
#include "rl_cu_model.h"
#include "rl_cuda.h"

#define ROOF_BW_DEFAULT 2.92e12
#define ROOF_FLOPS 750e12

typedef struct shape {
    const char *name;
    uint32_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff;
} shape;

static const shape shapes[] = {
    {"tinyllama-1.1b", 32000, 2048, 22, 32, 4, 5632},
    {"llama2-7b", 32000, 4096, 32, 32, 32, 11008},
    {"stories-tiny", 512, 64, 5, 8, 4, 192},
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Matrix-vector bandwidth per type: rotate over enough matrices to defeat L2. */
static void bench_kernels(int batch)
{
    const rl_type types[] = {RL_TYPE_Q4_0, RL_TYPE_Q8_0, RL_TYPE_Q4_K, RL_TYPE_Q5_K, RL_TYPE_Q6_K, RL_TYPE_F16, RL_TYPE_BF16};
    const int64_t dims[][2] = {{4096, 4096}, {22016, 4096}, {4096, 11008}, {32000, 4096}};
    /* RL_BENCH_MV_ONLY=TYPE: one weight type; RL_BENCH_MV_GLU=1: GLU mode (rows/2 outputs). */
    const char *only = getenv("RL_BENCH_MV_ONLY");
    const char *glu_env = getenv("RL_BENCH_MV_GLU");
    int mode = glu_env && glu_env[0] == '1' ? RL_CU_MV_GLU : RL_CU_MV_STORE;
    printf("%-6s %-12s %5s %10s %10s%s\n", "type", "rows x cols", "batch", "us", "GB/s", mode ? " (GLU)" : "");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (size_t di = 0; di < 4; di++) {
            int64_t rows = dims[di][0], cols = dims[di][1];
            if (only && strcasecmp(only, rl_type_get(types[ti])->name))
                continue;
            size_t bytes = rl_cu_mat_bytes(types[ti], rows, cols);
            int nm = (int)(400e6 / bytes) + 1;
            if (nm > 64)
                nm = 64;
            rl_cu_mat *m = calloc(nm, sizeof *m);
            int ok = 1;
            for (int i = 0; i < nm && ok; i++)
                ok = !rl_cu_mat_alloc(&m[i], types[ti], rows, cols) && !rl_cu_mat_fill_random(&m[i], i + 1, 0);
            rl_cu_act x = {.n = cols}, y = {.n = mode == RL_CU_MV_GLU ? rows / 2 : rows};
            ok = ok && !cudaMalloc((void **)&x.f, cols * 4 * 8) && !cudaMalloc((void **)&x.q, cols * 8) &&
                 !cudaMalloc((void **)&x.ds, cols / 32 * 8 * 8) && !cudaMalloc((void **)&y.f, rows * 4 * 8);
            if (ok) {
                cudaMemset(x.f, 0, cols * 4 * 8);
                rl_cu_quantize(&x, batch, 0);
                for (int i = 0; i < nm; i++)
                    rl_cu_matvec(&m[i], &x, batch, mode, &y, 0);
                cudaEvent_t e0, e1;
                cudaEventCreate(&e0);
                cudaEventCreate(&e1);
                int reps = 20 * nm;
                cudaEventRecord(e0, 0);
                for (int r = 0; r < reps; r++)
                    rl_cu_matvec(&m[r % nm], &x, batch, mode, &y, 0);
                cudaEventRecord(e1, 0);
                cudaEventSynchronize(e1);
                float ms = 0;
                cudaEventElapsedTime(&ms, e0, e1);
                double us = ms * 1e3 / reps;
                printf("%-6s %5lldx%-6lld %5d %10.2f %10.1f%s\n", rl_type_get(types[ti]) ? rl_type_get(types[ti])->name : "?",
                       (long long)rows, (long long)cols, batch, us, bytes / us * 1e-3,
                       cudaGetLastError() ? " ERROR" : "");
                cudaEventDestroy(e0);
                cudaEventDestroy(e1);
            }
            for (int i = 0; i < nm; i++)
                rl_cu_mat_free(&m[i]);
            free(m);
            cudaFree(x.f), cudaFree(x.q), cudaFree(x.ds), cudaFree(y.f);
        }
}

/* ---- batched matrix products (rl_cu_mm) on the Llama-2-7B decode shapes ---- */
typedef struct mm_shape {
    const char *name;
    int64_t rows, cols;
    int mode, per_step; /* matrices of this shape per decode step */
} mm_shape;

static const mm_shape mm_shapes[] = {
    {"qkv", 12288, 4096, RL_CU_MV_STORE, 32},
    {"o", 4096, 4096, RL_CU_MV_ADD, 32},
    {"gate_up", 22016, 4096, RL_CU_MV_GLU, 32},
    {"down", 4096, 11008, RL_CU_MV_ADD, 32},
    {"output", 32000, 4096, RL_CU_MV_STORE, 1},
};

/* Microseconds per product, rotating over copies of the matrix (>= 400 MB
 * together, so L2 holds none of them) like a decode step's stream of weights.
 * kernel 0: rl_cu_mm, 1: rl_cu_matvec, 2: rl_cu_mmq, 3: rl_cu_mmh, 4: rl_cu_mms, 5: rl_cu_mmw (Q4_0). -1 on error. */
static int mm_run(int kernel, rl_cu_mat *m, rl_cu_act *x, rl_cu_act *y, int batch, int mode)
{
    return kernel == 1 ? rl_cu_matvec(m, x, batch, mode, y, 0)
         : kernel == 2 ? rl_cu_mmq(m, x, batch, mode, y, 0)
         : kernel == 3 ? rl_cu_mmh(m, x, batch, mode, y, 0)
         : kernel == 4 ? rl_cu_mms(m, x, batch, mode, y, 0)
         : kernel == 5 ? rl_cu_mmw(m, x, batch, mode, y, 0) : rl_cu_mm(m, x, batch, mode, y, 0);
}

static const char *const mm_kernel_name[] = {"mm", "matvec", "mmq", "mmh", "mms", "mmw"};

static double mm_time(rl_cu_mat *m, int nm, rl_cu_act *x, rl_cu_act *y, int batch, int mode, int kernel)
{
    int rc = 0;
    for (int i = 0; i < nm && !rc; i++) /* warm-up (and per-kernel attributes) */
        rc = mm_run(kernel, &m[i], x, y, batch, mode);
    if (rc || cudaDeviceSynchronize() != cudaSuccess)
        return -1;
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    int reps = 10 * nm < 40 ? 40 : 10 * nm;
    cudaEventRecord(e0, 0);
    for (int r = 0; r < reps; r++)
        mm_run(kernel, &m[r % nm], x, y, batch, mode);
    cudaEventRecord(e1, 0);
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return cudaGetLastError() == cudaSuccess ? ms * 1e3 / reps : -1;
}

/* ringlm-bench cuda --mm [--json] [--split N]: rl_cu_matvec at batch 8,
 * rl_cu_mm and rl_cu_mmq at batch 9/16/32/64 on each 7B matrix, Q4_0 and Q8_0;
 * then the sum over one decode step's matrices (32 layers + output).
 * --split forces rl_cu_mm's K split only. */
static int bench_mm(int json, int split, int only_batch, const char *only_kernel)
{
    const rl_type types[] = {RL_TYPE_Q4_0, RL_TYPE_Q8_0};
    enum { NK = 23 };
    const int kbatch[NK] = {8, 9, 16, 32, 64, 9, 16, 32, 64, 9, 16, 20, 32, 48, 64, 9, 16, 20, 32, 64, 40, 48, 64};
    const int kkind[NK] = {1, 0, 0, 0, 0, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 5, 5, 5};
    const int64_t maxb = RL_CU_MAX_MM_BATCH, maxn = 32000;
    rl_cu_act x = {0}, y = {0};
    if (cudaMalloc((void **)&x.f, maxb * 11008 * 4) || cudaMalloc((void **)&x.q, maxb * 11008) ||
        cudaMalloc((void **)&x.ds, maxb * 11008 / 32 * 8) || cudaMalloc((void **)&x.h, maxb * 11008 * 2) ||
        cudaMalloc((void **)&y.f, maxb * maxn * 4) || cudaMalloc((void **)&y.h, maxb * maxn * 2) ||
        cudaMalloc((void **)&y.q, maxb * maxn) || cudaMalloc((void **)&y.ds, maxb * maxn / 32 * 8)) {
        fprintf(stderr, "cudaMalloc failed\n");
        return 1;
    }
    { /* random activations (zeros would hide work and can run faster than real data) */
        size_t nx = (size_t)maxb * 11008;
        float *hx = malloc(nx * sizeof *hx);
        uint32_t r = 12345;
        for (size_t i = 0; hx && i < nx; i++) {
            r = r * 1664525u + 1013904223u;
            hx[i] = (float)(r >> 8) / 16777216.0f * 2.0f - 1.0f;
        }
        if (!hx || cudaMemcpy(x.f, hx, nx * sizeof *hx, cudaMemcpyHostToDevice) != cudaSuccess) {
            free(hx);
            fprintf(stderr, "activations: upload failed\n");
            return 1;
        }
        free(hx);
    }
    cudaMemset(y.f, 0, maxb * maxn * 4);
    rl_cu_mm_force_split(split);
    if (!json)
        printf("%-5s %-8s %-12s %-7s %5s %9s %8s %8s\n", "type", "matrix", "rows x cols", "kernel", "batch", "us",
               "GB/s", "TFLOP/s");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        double step_us[NK] = {0};
        int ok = 1;
        for (size_t si = 0; si < sizeof mm_shapes / sizeof mm_shapes[0] && ok; si++) {
            const mm_shape *sh = &mm_shapes[si];
            size_t bytes = rl_cu_mat_bytes(types[ti], sh->rows, sh->cols);
            int nm = (int)(400e6 / bytes) + 1;
            rl_cu_mat *m = calloc(nm, sizeof *m);
            for (int i = 0; i < nm && ok; i++)
                ok = !rl_cu_mat_alloc(&m[i], types[ti], sh->rows, sh->cols) && !rl_cu_mat_fill_random(&m[i], i + 1, 0);
            x.n = sh->cols;
            y.n = sh->mode == RL_CU_MV_GLU ? sh->rows / 2 : sh->rows;
            ok = ok && !rl_cu_quantize(&x, (int)maxb, 0);
            for (int k = 0; k < NK && ok; k++) {
                if ((only_batch && kbatch[k] != only_batch) || (only_kernel && strcmp(only_kernel, mm_kernel_name[kkind[k]])))
                    continue;
                if (kkind[k] == 5 && types[ti] != RL_TYPE_Q4_0) /* rl_cu_mmw: Q4_0 only */
                    continue;
                double us = mm_time(m, nm, &x, &y, kbatch[k], sh->mode, kkind[k]);
                if (us < 0) {
                    fprintf(stderr, "%s %s: %s\n", mm_kernel_name[kkind[k]], sh->name, rl_cu_last_error());
                    ok = 0;
                    break;
                }
                double gbs = bytes / us * 1e-3, tfl = 2.0 * sh->rows * sh->cols * kbatch[k] / us * 1e-6;
                step_us[k] += us * sh->per_step;
                if (json)
                    printf("{\"bench\":\"cuda_mm\",\"type\":\"%s\",\"matrix\":\"%s\",\"rows\":%lld,\"cols\":%lld,"
                           "\"kernel\":\"%s\",\"batch\":%d,\"split\":%d,\"us\":%.2f,\"weight_gb_s\":%.1f,"
                           "\"tflop_s\":%.2f}\n",
                           rl_type_get(types[ti])->name, sh->name, (long long)sh->rows, (long long)sh->cols,
                           mm_kernel_name[kkind[k]], kbatch[k], split, us, gbs, tfl);
                else {
                    int pw = 0, ps = 0; /* rl_cu_mmh's plan: warps per CTA, K split */
                    if (kkind[k] == 3)
                        rl_cu_mmh_plan(&m[0], kbatch[k], sh->mode, &pw, &ps);
                    printf("%-5s %-8s %5lldx%-6lld %-7s %5d %9.2f %8.1f %8.2f", rl_type_get(types[ti])->name,
                           sh->name, (long long)sh->rows, (long long)sh->cols, mm_kernel_name[kkind[k]], kbatch[k],
                           us, gbs, tfl);
                    printf(pw ? "  plan %dw x%d\n" : "\n", pw, ps);
                }
            }
            for (int i = 0; i < nm; i++)
                rl_cu_mat_free(&m[i]);
            free(m);
        }
        for (int k = 0; k < NK && ok; k++) {
            if (step_us[k] == 0)
                continue;
            if (json)
                printf("{\"bench\":\"cuda_mm_step\",\"shape\":\"llama2-7b\",\"type\":\"%s\",\"kernel\":\"%s\","
                       "\"batch\":%d,\"split\":%d,\"step_ms\":%.3f,\"tok_s\":%.0f}\n",
                       rl_type_get(types[ti])->name, mm_kernel_name[kkind[k]], kbatch[k], split, step_us[k] * 1e-3,
                       kbatch[k] / (step_us[k] * 1e-6));
            else
                printf("llama2-7b %s step matmuls, %s batch %d: %.3f ms (%.0f tok/s from matmuls alone)\n",
                       rl_type_get(types[ti])->name, mm_kernel_name[kkind[k]], kbatch[k], step_us[k] * 1e-3,
                       kbatch[k] / (step_us[k] * 1e-6));
        }
        if (!ok)
            return 1;
    }
    rl_cu_mm_force_split(0);
    cudaFree(x.f), cudaFree(x.q), cudaFree(x.ds), cudaFree(y.f), cudaFree(y.q), cudaFree(y.ds);
    cudaFree(x.h), cudaFree(y.h);
    return 0;
}

/* ---- prefill profile: each op of one layer alone, for n prompt tokens ---- */
typedef struct pf_ctx {
    rl_cu_mat w[4]; /* qkv, o, gate/up, down */
    rl_cu_blas *blas;
    rl_cu_rope rope;
    int n;
    int64_t E, F, qd, qkvd;
    float *x, *qkv, *q, *gu, *nw;
    rl_cu_act xn, attn;
    void *xh, *wh, *kc, *vc, *scr;
    int32_t *pos, *slot;
} pf_ctx;

enum { PF_NORM, PF_NORM16, PF_CONV_E, PF_CONV_F, PF_DQ_OLD, PF_DQ_NEW = PF_DQ_OLD + 4, PF_GEMM = PF_DQ_NEW + 4,
       PF_ROPE = PF_GEMM + 4, PF_ATT_OLD, PF_ATT_NEW, PF_SWIGLU, PF_SWIGLU16, PF_N };

static int pf_op(pf_ctx *c, int op)
{
    cudaStream_t s = 0;
    if (op >= PF_DQ_OLD && op < PF_DQ_OLD + 4)
        return rl_cu_mat_to_f16(&c->w[op - PF_DQ_OLD], 0, c->w[op - PF_DQ_OLD].rows, c->wh, s);
    if (op >= PF_DQ_NEW && op < PF_DQ_NEW + 4)
        return rl_cu_gemm_to_f16(&c->w[op - PF_DQ_NEW], c->wh, s);
    if (op >= PF_GEMM && op < PF_GEMM + 4) {
        const rl_cu_mat *w = &c->w[op - PF_GEMM];
        float *y = op - PF_GEMM == 0 ? c->qkv : op - PF_GEMM == 2 ? c->gu : c->x;
        return rl_cu_gemm_staged(c->blas, w, c->xh, c->n, y, op - PF_GEMM == 1 || op - PF_GEMM == 3);
    }
    switch (op) {
    case PF_NORM: return rl_cu_rmsnorm(c->x, c->nw, 1e-5f, c->E, c->n, &c->xn, s);
    case PF_NORM16: return rl_cu_rmsnorm_f16(c->x, c->nw, 1e-5f, c->E, c->n, c->xh, s);
    case PF_CONV_E: return rl_cu_f32_to_f16(c->xn.f, c->xh, c->n * c->E, s);
    case PF_CONV_F: return rl_cu_f32_to_f16(c->gu, c->xh, c->n * c->F, s);
    case PF_ROPE: return rl_cu_rope_kv(c->qkv, c->n, c->pos, c->slot, &c->rope, c->n, c->q, c->kc, c->vc, s);
    case PF_ATT_OLD:
        return rl_cu_attn_decode(c->q, c->kc, c->vc, c->pos, c->slot, c->n, &c->rope, c->n, 0, c->scr, &c->attn, s);
    case PF_ATT_NEW: return rl_cu_attn_prefill(c->q, c->n, 0, 0, &c->rope, c->kc, c->vc, c->n, &c->attn, s);
    case PF_SWIGLU: return rl_cu_swiglu(c->gu, c->F, c->n, c->gu + (size_t)c->n * c->F, s);
    default: return rl_cu_swiglu_f16(c->gu, c->F, c->n, c->xh, s);
    }
}

static const char *const pf_names[PF_N] = {
    "rmsnorm f32", "rmsnorm -> f16", "f32->f16 (n_embd)", "f32->f16 (n_ff)", "dequant old qkv", "dequant old o",
    "dequant old gate/up", "dequant old down", "dequant new qkv", "dequant new o", "dequant new gate/up",
    "dequant new down", "gemm qkv", "gemm o", "gemm gate/up", "gemm down", "rope+kv", "attention old (decode)",
    "attention new (flash)", "swiglu f32", "swiglu -> f16"};

static int bench_prefill_profile(const char *shape_name, rl_type t, int n, const uint32_t *sh)
{
    pf_ctx c = {.n = n};
    uint32_t n_embd = sh[0], n_head = sh[1], n_head_kv = sh[2], n_ff = sh[3], n_layer = sh[4];
    int hd = (int)(n_embd / n_head);
    c.E = n_embd;
    c.F = n_ff;
    c.qd = (int64_t)n_head * hd;
    c.qkvd = c.qd + 2 * (int64_t)n_head_kv * hd;
    c.rope = (rl_cu_rope){.n_head = (int)n_head, .n_head_kv = (int)n_head_kv, .head_dim = hd, .n_rot = hd,
                          .freq_base = 10000.0f};
    int64_t rows[4] = {c.qkvd, c.E, 2 * c.F, c.E}, cols[4] = {c.E, c.qd, c.E, c.F}, maxw = 0;
    int rc = 0;
    for (int i = 0; i < 4 && !rc; i++) {
        rc = rl_cu_mat_alloc(&c.w[i], t, rows[i], cols[i]);
        rc = rc ? rc : rl_cu_mat_fill_random(&c.w[i], 77 + i, 0);
        maxw = rows[i] * cols[i] > maxw ? rows[i] * cols[i] : maxw;
    }
    int64_t xh_n = c.F > c.qd ? c.F : c.qd;
    size_t scr = rl_cu_attn_scratch_size(n, (int)n_head, hd, 0); /* unsplit: counters only */
    float *h = malloc((size_t)n * 2 * c.F * 4);
    int32_t *ids = malloc((size_t)n * 8);
    rc = rc || !h || !ids || cudaMalloc((void **)&c.x, (size_t)n * c.E * 4) || cudaMalloc((void **)&c.qkv, (size_t)n * c.qkvd * 4) ||
         cudaMalloc((void **)&c.q, (size_t)n * c.qd * 4) || cudaMalloc((void **)&c.gu, (size_t)n * 3 * c.F * 4) ||
         cudaMalloc((void **)&c.nw, c.E * 4) || cudaMalloc((void **)&c.xn.f, (size_t)n * c.E * 4) ||
         cudaMalloc((void **)&c.attn.f, (size_t)n * c.qd * 4) || cudaMalloc(&c.xh, (size_t)n * xh_n * 2) ||
         cudaMalloc(&c.wh, (size_t)maxw * 2) || cudaMalloc(&c.kc, (size_t)n * c.qkvd * 2) ||
         cudaMalloc(&c.vc, (size_t)n * c.qkvd * 2) || cudaMalloc(&c.scr, scr) || cudaMemset(c.scr, 0, scr) ||
         cudaMalloc((void **)&c.pos, n * 4) || cudaMalloc((void **)&c.slot, n * 4) ||
         rl_cu_blas_create(&c.blas, 0) || rl_cu_gemm_reserve(c.blas, maxw, 1);
    if (rc) {
        fprintf(stderr, "prefill profile: setup failed: %s\n", rl_cu_last_error());
        return 1;
    }
    c.xn.n = c.E;
    c.attn.n = c.qd;
    /* Sane random activations (no zeros: they hide wrong indexing and run fast). */
    for (size_t i = 0; i < (size_t)n * 2 * c.F; i++)
        h[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
    cudaMemcpy(c.x, h, (size_t)n * c.E * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(c.qkv, h, (size_t)n * c.qkvd * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(c.gu, h, (size_t)n * 2 * c.F * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(c.nw, h, c.E * 4, cudaMemcpyHostToDevice);
    for (int i = 0; i < n; i++) {
        ids[i] = i;
        ids[n + i] = 0;
    }
    cudaMemcpy(c.pos, ids, n * 4, cudaMemcpyHostToDevice);
    cudaMemcpy(c.slot, ids + n, n * 4, cudaMemcpyHostToDevice);
    rl_cu_f32_to_f16(c.x, c.xh, (int64_t)n * c.E, 0);
    pf_op(&c, PF_ROPE); /* fill the cache */
    double us[PF_N];
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    for (int op = 0; op < PF_N; op++) {
        float best = 1e30f;
        for (int it = 0; it < 6; it++) {
            if (op >= PF_GEMM && op < PF_GEMM + 4) {
                rl_cu_gemm_reset(c.blas);
                rl_cu_gemm_stage(c.blas, &c.w[op - PF_GEMM]);
            }
            if (op == PF_CONV_F || op == PF_SWIGLU || op == PF_SWIGLU16) /* restore sane values in gu */
                cudaMemcpy(c.gu, h, (size_t)n * 2 * c.F * 4, cudaMemcpyHostToDevice);
            cudaDeviceSynchronize();
            cudaEventRecord(e0, 0);
            rc = pf_op(&c, op);
            cudaEventRecord(e1, 0);
            if (rc || cudaEventSynchronize(e1)) {
                fprintf(stderr, "prefill profile: %s failed (%d): %s\n", pf_names[op], rc, rl_cu_last_error());
                return 1;
            }
            float ms;
            cudaEventElapsedTime(&ms, e0, e1);
            if (it > 0 && ms < best)
                best = ms;
        }
        us[op] = best * 1e3;
    }
    double gemm = 0, dq_old = 0, dq_new = 0;
    for (int i = 0; i < 4; i++) {
        gemm += us[PF_GEMM + i];
        dq_old += us[PF_DQ_OLD + i];
        dq_new += us[PF_DQ_NEW + i];
    }
    double old_l = 2 * us[PF_NORM] + 2 * us[PF_CONV_E] + us[PF_CONV_F] + dq_old + gemm + us[PF_ROPE] + us[PF_ATT_OLD] +
                   us[PF_SWIGLU] + us[PF_CONV_E] * c.qd / c.E;
    double new_l = 2 * us[PF_NORM16] + us[PF_CONV_E] * c.qd / c.E + dq_new + gemm + us[PF_ROPE] + us[PF_ATT_NEW] +
                   us[PF_SWIGLU16];
    printf("prefill profile: %s %s, %d tokens, one layer (x %u layers), each op alone, best of 5\n", shape_name,
           rl_type_get(t)->name, n, n_layer);
    for (int op = 0; op < PF_N; op++) {
        double extra = 0;
        if (op >= PF_GEMM && op < PF_GEMM + 4)
            extra = 2.0 * n * rows[op - PF_GEMM] * cols[op - PF_GEMM] / (us[op] * 1e-6) / 1e12;
        if (op >= PF_DQ_OLD && op < PF_DQ_NEW + 4) {
            int i = (op - PF_DQ_OLD) % 4;
            extra = (rl_cu_mat_bytes(t, rows[i], cols[i]) + 2.0 * rows[i] * cols[i]) / (us[op] * 1e-6) / 1e12;
        }
        printf("  %-24s %9.1f us%s", pf_names[op], us[op], extra > 0 ? "" : "\n");
        if (extra > 0)
            printf("  (%.2f %s)\n", extra, op >= PF_GEMM ? "TFLOP/s" : "TB/s");
    }
    printf("  per layer: old path %.1f us -> %.0f tok/s; new path, no overlap %.1f us -> %.0f tok/s; "
           "gemm alone %.1f us -> %.0f tok/s\n",
           old_l, n / (old_l * n_layer * 1e-6), new_l, n / (new_l * n_layer * 1e-6), gemm,
           n / (gemm * n_layer * 1e-6));
    for (int i = 0; i < 4; i++)
        rl_cu_mat_free(&c.w[i]);
    rl_cu_blas_destroy(c.blas);
    cudaFree(c.x), cudaFree(c.qkv), cudaFree(c.q), cudaFree(c.gu), cudaFree(c.nw), cudaFree(c.xn.f);
    cudaFree(c.attn.f), cudaFree(c.xh), cudaFree(c.wh), cudaFree(c.kc), cudaFree(c.vc), cudaFree(c.scr);
    cudaFree(c.pos), cudaFree(c.slot);
    free(h), free(ids);
    return 0;
}

/* The memory ceiling: a 2 GiB device-to-device copy, 3 warm-ups then 10
 * timed, counting bytes read plus bytes written (METHOD.md's convention).
 * Both buffers hold non-zero data. Prints the best and the median GB/s. */
static int bench_copy(int json)
{
    const size_t n = (size_t)2 << 30;
    void *a = NULL, *b = NULL;
    cudaEvent_t e0, e1;
    if (cudaMalloc(&a, n) != cudaSuccess || cudaMalloc(&b, n) != cudaSuccess) {
        fprintf(stderr, "ringlm-bench cuda --copy: cannot allocate 2 x 2 GiB\n");
        cudaFree(a);
        return 1;
    }
    cudaMemset(a, 0x5a, n);
    cudaMemset(b, 0xa5, n);
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    double gbs[10];
    int bad = 0;
    for (int i = -3; i < 10; i++) {
        cudaEventRecord(e0, 0);
        if (cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice, 0) != cudaSuccess)
            bad = 1;
        cudaEventRecord(e1, 0);
        if (cudaEventSynchronize(e1) != cudaSuccess)
            bad = 1;
        float ms = 0;
        cudaEventElapsedTime(&ms, e0, e1);
        if (i >= 0)
            gbs[i] = 2.0 * (double)n / (ms * 1e-3) / 1e9;
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    cudaFree(a);
    cudaFree(b);
    if (bad) {
        fprintf(stderr, "ringlm-bench cuda --copy: a copy failed\n");
        return 1;
    }
    qsort(gbs, 10, sizeof gbs[0], cmp_d);
    if (json)
        printf("{\"bench\":\"cuda_copy\",\"bytes\":%zu,\"best_gb_s\":%.1f,\"median_gb_s\":%.1f}\n", n, gbs[9],
               (gbs[4] + gbs[5]) / 2);
    else
        printf("device-to-device copy of %zu MiB: best %.1f GB/s, median %.1f GB/s (read + written)\n", n >> 20,
               gbs[9], (gbs[4] + gbs[5]) / 2);
    return 0;
}

int rl_bench_cuda_main(int argc, char **argv)
{
    double roof_bw = ROOF_BW_DEFAULT;
    int copy = 0;
    const char *shape_name = "tinyllama-1.1b", *type_name = "q4_0";
    int n_gen = 128, n_prompt = 512, batch = 1, graphs = 1, kernels = 0, json = 0, profile = 0, mm = 0, split = 0;
    int mm_batch = 0;
    const char *mm_kernel = NULL;
    int pf_profile = 0, kv_q8 = 0, timeline = 0;
    const char *tl_csv = NULL, *tl_raw = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--shape") && i + 1 < argc)
            shape_name = argv[++i];
        else if (!strcmp(argv[i], "--type") && i + 1 < argc)
            type_name = argv[++i];
        else if (!strcmp(argv[i], "--gen") && i + 1 < argc)
            n_gen = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--prompt") && i + 1 < argc)
            n_prompt = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-graph"))
            graphs = 0;
        else if (!strcmp(argv[i], "--kernels"))
            kernels = 1;
        else if (!strcmp(argv[i], "--mm"))
            mm = 1;
        else if (!strcmp(argv[i], "--mm-batch") && i + 1 < argc)
            mm_batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--mm-kernel") && i + 1 < argc)
            mm_kernel = argv[++i];
        else if (!strcmp(argv[i], "--split") && i + 1 < argc)
            split = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--profile"))
            profile = 1;
        else if (!strcmp(argv[i], "--timeline"))
            timeline = 1;
        else if (!strcmp(argv[i], "--timeline-csv") && i + 1 < argc)
            timeline = 1, tl_csv = argv[++i];
        else if (!strcmp(argv[i], "--timeline-raw") && i + 1 < argc)
            timeline = 1, tl_raw = argv[++i];
        else if (!strcmp(argv[i], "--prefill-profile"))
            pf_profile = 1;
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--copy"))
            copy = 1;
        else if (!strcmp(argv[i], "--bw") && i + 1 < argc && atof(argv[i + 1]) > 0)
            roof_bw = atof(argv[++i]) * 1e9;
        else if (!strcmp(argv[i], "--kv") && i + 1 < argc && (!strcmp(argv[i + 1], "f16") || !strcmp(argv[i + 1], "q8_0")))
            kv_q8 = !strcmp(argv[++i], "q8_0");
        else {
            fprintf(stderr, "usage: %s [--shape tinyllama-1.1b|llama2-7b] [--type q4_0|q8_0|f16|q4_k_m|...] [--gen N] "
                            "[--prompt N] [--batch 1..64] [--kv f16|q8_0] [--no-graph] [--kernels] [--profile] [--prefill-profile] [--timeline] [--timeline-csv FILE] [--timeline-raw FILE] [--bw GB/s] [--json]\n"
                            "       %s --mm [--split 1|2|4|8] [--mm-batch N] [--mm-kernel K] [--json]  (batched rl_cu_mm and rl_cu_mmq on the 7B shapes)\n", argv[0],
                    argv[0]);
            return 2;
        }
    }
    if (rl_cu_device_count() <= 0) {
        printf("no CUDA device: skipping\n");
        return 77;
    }
    if (copy)
        return bench_copy(json);
    if (mm)
        return bench_mm(json, split, mm_batch, mm_kernel);
    if (kernels) {
        bench_kernels(batch < 1 ? 1 : batch);
        return 0;
    }
    const shape *sh = NULL;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (!strcmp(shapes[i].name, shape_name))
            sh = &shapes[i];
    /* q4_k_m / q5_k_m: the mix of ringlm-mkmodel (attn_v, ffn_down Q6_K in even layers; output Q6_K). */
    bool mix = !strcasecmp(type_name, "q4_k_m") || !strcasecmp(type_name, "q5_k_m");
    int t = mix ? (type_name[1] == '4' ? RL_TYPE_Q4_K : RL_TYPE_Q5_K) : rl_type_from_name(type_name);
    if (!sh || t < 0 || !rl_cu_type_supported((rl_type)t) || batch < 1 || batch > RL_CU_MAX_STEP_BATCH || n_gen < 1 ||
        n_prompt < 1) {
        fprintf(stderr, "bad --shape, --type, --batch, --gen or --prompt\n");
        return 2;
    }
    if (pf_profile) {
        uint32_t shp[5] = {sh->n_embd, sh->n_head, sh->n_head_kv, sh->n_ff, sh->n_layer};
        return bench_prefill_profile(sh->name, (rl_type)t, n_prompt, shp);
    }
    rl_cu_model_cfg c = {.n_vocab = sh->n_vocab, .n_embd = sh->n_embd, .n_layer = sh->n_layer,
                         .n_head = sh->n_head, .n_head_kv = sh->n_head_kv, .head_dim = sh->n_embd / sh->n_head,
                         .n_ff = sh->n_ff, .rms_eps = 1e-5f, .rope_base = 10000.0f,
                         .n_ctx = (uint32_t)(n_prompt + n_gen + 8), .n_slots = (uint32_t)batch,
                         .max_prefill = (uint32_t)n_prompt, .kv_q8 = kv_q8 != 0};
    rl_cu_model_types ty = {(rl_type)t, mix ? RL_TYPE_Q6_K : (rl_type)t, (rl_type)t, (rl_type)t, (rl_type)t, (rl_type)t};
    rl_cu_layer_types *lts = mix ? calloc(c.n_layer, sizeof *lts) : NULL;
    for (uint32_t l = 0; lts && l < c.n_layer; l++) {
        for (int r = 0; r < RL_CU_W_N; r++)
            lts[l].t[r] = (rl_type)t;
        if (l % 2 == 0)
            lts[l].t[RL_CU_W_V] = lts[l].t[RL_CU_W_DOWN] = RL_TYPE_Q6_K;
    }
    rl_cu_model *m;
    char err[256];
    int rc = rl_cu_model_new_mixed(&c, &ty, lts, &m, err, sizeof err);
    free(lts);
    if (rc) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    rl_cu_model_set_graphs(m, graphs);
    if ((rc = rl_cu_model_fill_random(m, 1234))) {
        fprintf(stderr, "fill: %s\n", rl_cu_last_error());
        return 1;
    }
    int32_t *prompt = malloc(n_prompt * 4), tok[RL_CU_MAX_STEP_BATCH], pos[RL_CU_MAX_STEP_BATCH],
                                         slot[RL_CU_MAX_STEP_BATCH];
    for (int i = 0; i < n_prompt; i++)
        prompt[i] = (int32_t)((i * 7919u + 13) % c.n_vocab);
    /* Prefill: one warm-up, then the median of 3. */
    double tp[3];
    for (int r = -1; r < 3; r++) {
        for (int b = 0; b < batch; b++) {
            double t0 = now_s();
            rc = rl_cu_model_prefill(m, b, 0, prompt, n_prompt, &tok[b], NULL);
            if (rc) {
                fprintf(stderr, "prefill failed (%d): %s\n", rc, rl_cu_last_error());
                return 1;
            }
            if (r >= 0 && b == 0)
                tp[r] = now_s() - t0;
        }
    }
    qsort(tp, 3, sizeof tp[0], cmp_d);
    double prefill_tps = n_prompt / tp[1];
    /* Generation: the greedy token feeds back; 8 warm-up steps capture the graph. */
    int p = n_prompt;
    double tg0 = 0;
    for (int i = -8; i < n_gen && p < (int)c.n_ctx; i++, p++) {
        if (i == 0)
            tg0 = now_s();
        for (int b = 0; b < batch; b++) {
            pos[b] = p;
            slot[b] = b;
        }
        rc = rl_cu_model_decode(m, batch, tok, pos, slot, tok, NULL);
        if (rc) {
            fprintf(stderr, "decode failed (%d): %s\n", rc, rl_cu_last_error());
            return 1;
        }
    }
    double tg = now_s() - tg0;
    /* the same step's graph back to back: the GPU's part of a step alone */
    double replay_us = 0;
    if (graphs && rl_cu_model_replay(m, batch, 32, &replay_us))
        replay_us = 0;
    if (timeline && graphs && rl_bench_timeline(m, batch, tl_csv, tl_raw))
        return 1;
    if (profile)
        rl_cu_model_profile(m, batch, n_prompt + n_gen / 2, stdout);
    double gen_tps = n_gen * batch / tg;
    uint64_t wbytes = rl_cu_model_weight_bytes(m) - rl_cu_mat_bytes((rl_type)t, c.n_vocab, c.n_embd);
    double gen_roof = wbytes * (n_gen / tg) / roof_bw;
    uint64_t hd = c.head_dim, qkvd = (uint64_t)(c.n_head + 2 * c.n_head_kv) * hd;
    double layer_params = (double)c.n_embd * (qkvd + (double)c.n_head * hd + 3.0 * c.n_ff);
    double flops = 2.0 * layer_params * c.n_layer * n_prompt +
                   2.0 * 2.0 * c.n_layer * c.n_head * hd * (double)n_prompt * n_prompt / 2.0 +
                   2.0 * c.n_vocab * c.n_embd;
    double prefill_roof = flops / tp[1] / ROOF_FLOPS;
    /* which products a one-sequence step ran on (rl_cu_mvb or the matvecs) */
    const char *step_path = batch == 1 && rl_cu_model_mvb_step(m, 1) ? "mvb" : "matvec";
    if (json)
        printf("{\"bench\":\"cuda\",\"shape\":\"%s\",\"type\":\"%s\",\"kv\":\"%s\",\"batch\":%d,\"graphs\":%s,"
               "\"step\":\"%s\",\"gen_tokens\":%d,\"gen_tok_s\":%.1f,\"gen_roofline\":%.3f,\"prompt_tokens\":%d,"
               "\"prefill_tok_s\":%.1f,\"prefill_roofline\":%.3f,\"weight_bytes_per_token\":%llu,"
               "\"step_us\":%.1f,\"replay_step_us\":%.1f,\"roofline_gb_s\":%.0f}\n",
               sh->name, mix ? type_name : rl_type_get(t)->name, kv_q8 ? "q8_0" : "f16", batch, graphs ? "true" : "false",
               step_path, n_gen, gen_tps, gen_roof, n_prompt,
               prefill_tps, prefill_roof, (unsigned long long)wbytes, tg * 1e6 / n_gen, replay_us, roof_bw / 1e9);
    else
        printf("cuda %-15s %-5s kv %-4s batch %d%s%s%s: gen %8.1f tok/s (%4.1f%% of %.2f TB/s roofline, %.1f MB/token) | "
               "prefill %d: %8.1f tok/s (%4.1f%% of 750 TFLOP/s) | step %.1f us, graph alone %.1f us\n",
               sh->name, mix ? type_name : rl_type_get(t)->name, kv_q8 ? "q8_0" : "f16", batch, graphs ? "" : " (no graph)",
               batch == 1 ? " " : "", batch == 1 ? step_path : "", gen_tps, 100 * gen_roof,
               roof_bw / 1e12, wbytes / 1e6, n_prompt, prefill_tps, 100 * prefill_roof, tg * 1e6 / n_gen, replay_us);
    free(prompt);
    rl_cu_model_free(m);
    return 0;
}

#ifdef RL_BENCH_CUDA_MAIN
int main(int argc, char **argv)
{
    return rl_bench_cuda_main(argc, argv);
}
#endif
