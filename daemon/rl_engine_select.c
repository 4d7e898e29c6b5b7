/* rl_engine_select.c - engine selection: --engine test|llm, --model PATH. */
#include "rl_engine_select.h"
#include "rl_engine_test.h"
#ifdef RL_HAVE_LLM
#include "rl_llm.h"
#endif
#ifdef RL_HAVE_CUDA_ENGINE
#include "rl_cu_model.h" /* rl_cu_w16_mode */
#include "rl_engine_cuda.h"
#endif
#include "rl_cfg.h" /* rl_prefill_weights */
#include "rl_log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#ifdef RL_HAVE_CUDA_ENGINE
/* rl_daemon_opts.prefill_weights goes to rl_cuda_opts.w16 as it is. */
_Static_assert(RL_PW_AUTO == (int)RL_CU_W16_AUTO && RL_PW_QUANTIZED == (int)RL_CU_W16_OFF &&
                   RL_PW_F16 == (int)RL_CU_W16_ON,
               "rl_prefill_weights (rl_cfg.h) must equal rl_cu_w16_mode (rl_cu_model.h)");
#endif

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
        if (o->prefill_weights != RL_PW_AUTO) /* the CPU engine keeps no fp16 weight copies */
            rl_log(LOG_INFO, "prefill_weights = %s has no effect on the CPU engine",
                   rl_cfg_prefill_weights_name((rl_prefill_weights)o->prefill_weights));
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
                           .w16 = o->prefill_weights, /* = rl_cu_w16_mode (asserted above) */
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
