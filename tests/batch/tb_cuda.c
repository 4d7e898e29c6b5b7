/* tb_cuda.c - the CUDA engine for the batching tests (test_batch_engine built
 * with TB_CUDA): the same scenarios, the same solo-vs-batched comparisons. */
#include <check.h>
#include <stdio.h>

#include "rl_cuda.h"
#include "rl_engine_cuda.h"
#include "tb_util.h"

static rl_engine *cuda_factory(const char *path, uint32_t step_tokens, uint64_t kv_budget_bytes, uint32_t n_ctx)
{
    rl_cuda_opts o = {.n_ctx = n_ctx, .step_tokens = step_tokens, .kv_budget_bytes = kv_budget_bytes};
    rl_engine *e = NULL;
    char err[256] = "";
    int rc = rl_engine_cuda_create_opts(path, &o, &e, err, sizeof err);
    ck_assert_msg(rc == 0, "cuda engine: %s", err);
    return e;
}

/* 0 when the CUDA engine is in place; 77 (skip) without a GPU. */
int tb_cuda_setup(void)
{
    if (rl_cu_device_count() <= 0) {
        printf("no CUDA device: skipping\n");
        return 77;
    }
    tb_set_factory(cuda_factory);
    return 0;
}
