/* rl_engine_select.c - engine selection: --engine test|llm, --model PATH. */
#include "rl_engine_select.h"
#include "rl_engine_test.h"
#ifdef RL_HAVE_LLM
#include "rl_llm.h"
#endif
#ifdef RL_HAVE_CUDA_ENGINE
#include "rl_engine_cuda.h"
#endif

#include <errno.h>
#include <stdio.h>
#include <string.h>

int rl_engine_open(const rl_daemon_opts *o, rl_engine **out, char *err, size_t errlen)
{
    const char *name = o->engine;
    if (!name)
        name = o->model_path ? "llm" : "test";
    if (strcmp(name, "test") == 0) {
        int rc = rl_engine_test_create(out);
        if (rc < 0)
            snprintf(err, errlen, "test engine: %s", strerror(-rc));
        return rc;
    }
    if (strcmp(name, "llm") == 0) {
        if (!o->model_path) {
            snprintf(err, errlen, "engine llm needs --model PATH");
            return -EINVAL;
        }
#ifdef RL_HAVE_LLM
        rl_llm_opts lo;
        rl_llm_opts_default(&lo);
        lo.n_threads = o->n_threads;
        lo.step_tokens = o->step_tokens;
        lo.kv_budget_bytes = o->kv_budget_bytes;
        lo.kv_type = o->kv_q8 ? RL_TYPE_Q8_0 : RL_TYPE_F16;
        lo.progress = o->load_progress; /* "loading weights N%" to systemd */
        lo.progress_ctx = o->load_progress_ctx;
        return rl_engine_llm_create_opts(o->model_path, &lo, out, err, errlen);
#else
        snprintf(err, errlen, "this ringlmd was built without the model engine (%s)", o->model_path);
        return -ENOTSUP;
#endif
    }
    if (strcmp(name, "cuda") == 0) {
        if (!o->model_path) {
            snprintf(err, errlen, "engine cuda needs --model PATH");
            return -EINVAL;
        }
#ifdef RL_HAVE_CUDA_ENGINE
        rl_cuda_opts co = {.step_tokens = o->step_tokens, .kv_budget_bytes = o->kv_budget_bytes, .kv_q8 = o->kv_q8,
                           .progress = o->load_progress, .progress_ctx = o->load_progress_ctx};
        return rl_engine_cuda_create_opts(o->model_path, &co, out, err, errlen);
#else
        snprintf(err, errlen, "this ringlmd was built without CUDA (rebuild with nvcc and cuBLAS present)");
        return -ENOTSUP;
#endif
    }
    snprintf(err, errlen, "unknown engine '%s' (test, llm, cuda)", name);
    return -EINVAL;
}
