/* rl_cu_tl.cu - the step timeline's host side: arms the log of every
 * instrumented translation unit (rl_cu_tl.cuh) and reads the records back
 * (rl_cu_tl_sum.c groups them by launch). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rl_cu_common.cuh"
#include "rl_cu_tl.cuh"

#ifdef RL_CU_TIMELINE
/* The instrumented translation units, each with its setter (RL_TL_TU). */
#define RL_TL_UNITS(X)                                                                                           \
    X(mvb) X(kv) X(attn) X(ops) X(mat) X(mv_q4_0) X(mv_q8_0) X(mv_q4_k) X(mv_q5_k) X(mv_q6_k) X(mv_f16) X(mv_bf16) \
        X(mv_f32)
#define RL_TL_DECLARE(name) extern "C" int rl_cu_tl_set_##name(rl_cu_tl_rec *, unsigned *, unsigned);
RL_TL_UNITS(RL_TL_DECLARE)

static rl_cu_tl_rec *d_rec;
static unsigned *d_n;
static size_t rec_cap;

static int set_all(rl_cu_tl_rec *rec, unsigned *n, unsigned cap)
{
#define RL_TL_SETTER(name) rl_cu_tl_set_##name,
    int (*const set[])(rl_cu_tl_rec *, unsigned *, unsigned) = {RL_TL_UNITS(RL_TL_SETTER)};
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++)
        RL_CU_TRY(set[i](rec, n, cap));
    return 0;
}

extern "C" int rl_cu_tl_arm(size_t cap)
{
    if (cap == 0 || cap > (1u << 26))
        return -EINVAL;
    RL_CU_TRY(rl_cu_check(cudaDeviceSynchronize(), "timeline"));
    if (cap > rec_cap) {
        cudaFree(d_rec);
        d_rec = NULL;
        rec_cap = 0;
        RL_CU_TRY(rl_cu_check(cudaMalloc((void **)&d_rec, cap * sizeof *d_rec), "timeline log"));
        rec_cap = cap;
    }
    if (!d_n)
        RL_CU_TRY(rl_cu_check(cudaMalloc((void **)&d_n, sizeof *d_n), "timeline count"));
    RL_CU_TRY(rl_cu_check(cudaMemset(d_n, 0, sizeof *d_n), "timeline count"));
    return set_all(d_rec, d_n, (unsigned)cap);
}

extern "C" int rl_cu_tl_collect(rl_cu_tl_rec **rec, size_t *n)
{
    *rec = NULL;
    *n = 0;
    if (!d_rec)
        return -EINVAL;
    RL_CU_TRY(rl_cu_check(cudaDeviceSynchronize(), "timeline"));
    RL_CU_TRY(set_all(NULL, NULL, 0));
    unsigned cnt = 0;
    RL_CU_TRY(rl_cu_check(cudaMemcpy(&cnt, d_n, sizeof cnt, cudaMemcpyDeviceToHost), "timeline count"));
    size_t k = cnt < rec_cap ? cnt : rec_cap;
    rl_cu_tl_rec *h = (rl_cu_tl_rec *)malloc((k ? k : 1) * sizeof *h);
    if (!h)
        return -ENOMEM;
    if (k && rl_cu_check(cudaMemcpy(h, d_rec, k * sizeof *h, cudaMemcpyDeviceToHost), "timeline log")) {
        free(h);
        return -EIO;
    }
    *rec = h;
    *n = k;
    return 0;
}
#else
extern "C" int rl_cu_tl_arm(size_t cap)
{
    (void)cap;
    return -ENOTSUP;
}

extern "C" int rl_cu_tl_collect(rl_cu_tl_rec **rec, size_t *n)
{
    *rec = NULL;
    *n = 0;
    return -ENOTSUP;
}
#endif
