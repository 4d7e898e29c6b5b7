/* rl_bench_mvc.c - `ringlm-bench-cuda --mvc`: one layer's gate/up, down and
 * the next Q|K|V products as rl_cu_mvb launches one after the other against
 * rl_cu_mvc chains of one, two and three of them, us per layer, on a model
 * shape's matrices (rotating over enough layers' copies to defeat L2). */
#include <stdio.h>
#include <stdlib.h>

#include "rl_bench_mvc.h"
#include "rl_cuda.h"

#define SETS 6

typedef struct {
    rl_cu_mat w[3]; /* gate/up, down, Q|K|V */
    unsigned *sync;
} layer_set;

typedef struct {
    layer_set set[SETS];
    float *x, *ffn, *qkv, *g;
    float eps;
} mvc_ctx;

static void segs(const mvc_ctx *c, int si, rl_cu_mvc_seg seg[3])
{
    const layer_set *L = &c->set[si];
    seg[0] = (rl_cu_mvc_seg){L->w[0], c->x, c->g, c->ffn, RL_CU_MV_GLU};
    seg[1] = (rl_cu_mvc_seg){L->w[1], c->ffn, NULL, c->x, RL_CU_MV_ADD};
    seg[2] = (rl_cu_mvc_seg){L->w[2], c->x, c->g, c->qkv, RL_CU_MV_STORE};
}

/* variant v: 0 the first n products on rl_cu_mvb, 1 as one rl_cu_mvc chain */
static int run(const mvc_ctx *c, int si, int v, int n)
{
    rl_cu_mvc_seg seg[3];
    segs(c, si, seg);
    if (v == 1)
        return rl_cu_mvc(seg, n, c->eps, c->set[si].sync, 0);
    for (int k = 0; k < n; k++) {
        int rc = rl_cu_mvb(&seg[k].m, seg[k].x, seg[k].g, c->eps, seg[k].mode, seg[k].y, 0);
        if (rc)
            return rc;
    }
    return 0;
}

static double time_us(const mvc_ctx *c, int v, int n)
{
    for (int i = 0; i < SETS; i++)
        if (run(c, i, v, n))
            return -1;
    if (cudaDeviceSynchronize() != cudaSuccess)
        return -1;
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0);
    cudaEventCreate(&e1);
    const int reps = 20 * SETS;
    cudaEventRecord(e0, 0);
    for (int r = 0; r < reps; r++)
        run(c, r % SETS, v, n);
    cudaEventRecord(e1, 0);
    cudaEventSynchronize(e1);
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return cudaGetLastError() == cudaSuccess ? ms * 1e3 / reps : -1;
}

int rl_bench_mvc(rl_type t, int64_t e, int64_t f, int64_t q, int json)
{
    mvc_ctx c = {.eps = 1e-5f};
    const int64_t rows[3] = {2 * f, e, q}, cols[3] = {e, f, e};
    int rc = 0;
    for (int s = 0; s < SETS && !rc; s++) {
        for (int k = 0; k < 3 && !rc; k++)
            rc = rl_cu_mat_alloc(&c.set[s].w[k], t, rows[k], cols[k]) ||
                 rl_cu_mat_fill_random(&c.set[s].w[k], 1000 + 3 * s + k, 0);
        rc = rc || cudaMalloc((void **)&c.set[s].sync, (RL_CU_MVC_MAX + 1) * 4) != cudaSuccess ||
             cudaMemset(c.set[s].sync, 0, (RL_CU_MVC_MAX + 1) * 4) != cudaSuccess;
    }
    size_t big = (size_t)(f > q ? f : q) * 4;
    rc = rc || cudaMalloc((void **)&c.x, (size_t)e * 4) != cudaSuccess ||
         cudaMalloc((void **)&c.ffn, big) != cudaSuccess || cudaMalloc((void **)&c.qkv, big) != cudaSuccess ||
         cudaMalloc((void **)&c.g, (size_t)e * 4) != cudaSuccess;
    rc = rc || cudaMemset(c.x, 0, (size_t)e * 4) != cudaSuccess || cudaMemset(c.g, 0, (size_t)e * 4) != cudaSuccess;
    if (rc) {
        fprintf(stderr, "mvc bench: allocation failed: %s\n", rl_cu_last_error());
        return 1;
    }
    static const char *const what[3] = {"gate/up", "gate/up+down", "gate/up+down+qkv"};
    for (int n = 1; n <= 3; n++) {
        double a = time_us(&c, 0, n), b = time_us(&c, 1, n);
        if (json)
            printf("{\"bench\":\"mvc\",\"type\":\"%s\",\"products\":\"%s\",\"mvb_us\":%.2f,\"mvc_us\":%.2f}\n",
                   rl_type_get(t)->name, what[n - 1], a, b);
        else
            printf("%-5s %-18s rl_cu_mvb one by one %8.2f us | rl_cu_mvc chain %8.2f us\n", rl_type_get(t)->name,
                   what[n - 1], a, b);
    }
    for (int s = 0; s < SETS; s++) {
        for (int k = 0; k < 3; k++)
            rl_cu_mat_free(&c.set[s].w[k]);
        cudaFree(c.set[s].sync);
    }
    cudaFree(c.x), cudaFree(c.ffn), cudaFree(c.qkv), cudaFree(c.g);
    return 0;
}
