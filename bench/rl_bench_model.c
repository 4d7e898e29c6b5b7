/* rl_bench_model.c - `ringlm-bench model`: prefill and generation speed of the
 * CPU engine on one sequence.
 *
 *   ringlm-bench model --model F [--threads N] [--prompt 128] [--gen 128] [--kv f16|q8_0] [--json]
 *
 * The prompt is made of fixed pseudo-random token ids (no tokenizer needed, so
 * random-weight models work). Prefill runs as one step of the whole prompt;
 * time to first token covers it and the first sample. Generation speed counts
 * the remaining gen-1 decode steps. prefill_cpu_s / gen_cpu_s: CPU seconds the
 * process used in each phase (all threads; spinning included), for shared machines. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "rl_llm.h"

int rl_bench_model_main(int argc, char **argv);

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds of the whole process (all threads): on a shared machine,
 * tokens per CPU-second with --threads 1 shows the kernels' own speed. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int usage(void)
{
    fprintf(stderr, "usage: ringlm-bench model --model FILE [--threads N] [--prompt N] [--gen N] "
                    "[--kv f16|q8_0] [--json]\n");
    return 2;
}

int rl_bench_model_main(int argc, char **argv)
{
    const char *path = NULL;
    int threads = 0, prompt = 128, gen = 128, json = 0;
    rl_type kv_type = RL_TYPE_F16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "model") == 0 && i == 1)
            continue;
        if (strcmp(a, "--json") == 0) {
            json = 1;
        } else if (strcmp(a, "--model") == 0 && v) {
            path = v, i++;
        } else if (strcmp(a, "--threads") == 0 && v) {
            threads = atoi(v), i++;
        } else if (strcmp(a, "--prompt") == 0 && v) {
            prompt = atoi(v), i++;
        } else if (strcmp(a, "--gen") == 0 && v) {
            gen = atoi(v), i++;
        } else if (strcmp(a, "--kv") == 0 && v) {
            kv_type = strcasecmp(v, "q8_0") == 0 ? RL_TYPE_Q8_0 : strcasecmp(v, "f32") == 0 ? RL_TYPE_F32 : RL_TYPE_F16;
            i++;
        } else {
            return usage();
        }
    }
    if (!path || prompt < 1 || prompt > 8192 || gen < 2 || gen > 100000)
        return usage();
    rl_llm_opts o;
    rl_llm_opts_default(&o);
    o.n_threads = threads;
    o.n_ctx = (uint32_t)(prompt + gen + 16);
    o.step_tokens = (uint32_t)(prompt > 512 ? prompt : 512);
    o.kv_type = kv_type;
    rl_engine *e;
    char err[256];
    double t_load = now_s();
    int rc = rl_engine_llm_create_opts(path, &o, &e, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "ringlm-bench model: %s\n", err);
        return 1;
    }
    t_load = now_s() - t_load;
    rl_engine_info info;
    e->ops->get_info(e, &info);
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)prompt);
    for (int i = 0; i < prompt; i++) /* fixed pseudo-random ids, skipping the first few (control tokens) */
        toks[i] = (int32_t)(3 + ((uint32_t)i * 2654435761u >> 7) % (info.n_vocab - 3));
    rl_seq_desc d = {.prompt = toks, .n_prompt = (uint32_t)prompt, .max_tokens = (uint32_t)gen,
                     .sampling = {.temperature = 0, .top_p = 1, .repeat_penalty = 1}};
    rl_seq *s;
    if ((rc = e->ops->seq_new(e, &d, &s)) < 0) {
        fprintf(stderr, "ringlm-bench model: seq_new: %s\n", strerror(-rc));
        return 1;
    }
    rl_step_item it = {.seq = s};
    double c0 = cpu_s(), t0 = now_s();
    do {
        if ((rc = e->ops->step(e, &it, 1)) < 0 || it.status < 0) {
            fprintf(stderr, "ringlm-bench model: step failed\n");
            return 1;
        }
    } while (it.token < 0);
    double ttft = now_s() - t0, c_prefill = cpu_s() - c0, t1 = now_s(), c1 = cpu_s();
    for (int g = 1; g < gen; g++)
        if ((rc = e->ops->step(e, &it, 1)) < 0 || it.status < 0) {
            fprintf(stderr, "ringlm-bench model: step failed\n");
            return 1;
        }
    double t_gen = now_s() - t1, c_gen = cpu_s() - c1;
    double prefill_tok_s = prompt / ttft, gen_tok_s = (gen - 1) / t_gen;
    int nth = threads > 0 ? threads : 0;
    if (json)
        printf("{\"model\":\"%s\",\"type\":\"%s\",\"threads\":%d,\"prompt\":%d,\"gen\":%d,"
               "\"load_s\":%.3f,\"ttft_ms\":%.2f,\"prefill_tok_s\":%.2f,\"gen_tok_s\":%.2f,"
               "\"prefill_cpu_s\":%.3f,\"gen_cpu_s\":%.3f}\n",
               path, info.type, nth, prompt, gen, t_load, ttft * 1e3, prefill_tok_s, gen_tok_s, c_prefill, c_gen);
    else
        printf("model %s (%s, %u layers, n_embd %u)\nload %.2f s\nprefill %d tokens: %.1f tok/s (time to "
               "first token %.1f ms, %.2f CPU s)\ngeneration %d tokens: %.2f tok/s (%.2f CPU s)\n",
               path, info.type, info.n_layer, info.n_embd, t_load, prompt, prefill_tok_s, ttft * 1e3, c_prefill,
               gen - 1, gen_tok_s, c_gen);
    e->ops->seq_free(e, s);
    e->ops->destroy(e);
    free(toks);
    return 0;
}
