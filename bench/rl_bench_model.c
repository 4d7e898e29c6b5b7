/* rl_bench_model.c - `ringlm-bench model`: prefill and generation speed of the
 * CPU engine on one sequence.
 *
 *   ringlm-bench model --model F [--device cpu|cuda] [--threads N] [--prompt 128] [--gen 128]
 *                      [--kv f16|q8_0] [--bw GB/s] [--json]
 *
 * The roofline fractions: generation reads every weight byte once per token, so
 * its ceiling is bandwidth / weight bytes (--bw: 30.6 GB/s for the CPU machine,
 * 2920 GB/s for the H100 by default, both measured); prefill needs 2 FLOPs per
 * weight element per token, against 750 TFLOP/s (bf16 cuBLAS, measured) on CUDA.
 *
 * The prompt is made of fixed pseudo-random token ids (no tokenizer needed, so
 * random-weight models work). Prefill runs as one step of the whole prompt;
 * time to first token covers it and the first sample: the median over --reps
 * fresh sequences (default 5), whose prompts differ from each other and from
 * the warm-up's in their first token, so that none of them reuses a cached
 * prompt block (the engine's prefix cache would otherwise skip most of the
 * prefill; prefix_hit_tokens in the output proves it stayed 0). Generation speed counts
 * the remaining gen-1 decode steps. prefill_cpu_s / gen_cpu_s: CPU seconds the
 * process used in each phase (all threads; spinning included), for shared machines. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "rl_llm.h"
#ifdef RL_HAVE_CUDA_ENGINE
#include "rl_engine_cuda.h"
#endif

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
    fprintf(stderr, "usage: ringlm-bench model --model FILE [--device cpu|cuda] [--threads N] [--prompt N] "
                    "[--gen N] [--reps N] [--kv f16|q8_0] [--bw GB/s] [--json]\n");
    return 2;
}

int rl_bench_model_main(int argc, char **argv)
{
    const char *path = NULL;
    int threads = 0, prompt = 128, gen = 128, json = 0, cuda = 0, reps = 5;
    double bw_gbs = 0;
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
        } else if (strcmp(a, "--reps") == 0 && v) {
            reps = atoi(v), i++;
        } else if (strcmp(a, "--device") == 0 && v) {
            if (strcmp(v, "cuda") == 0)
                cuda = 1;
            else if (strcmp(v, "cpu") != 0)
                return usage();
            i++;
        } else if (strcmp(a, "--bw") == 0 && v) {
            bw_gbs = atof(v), i++;
        } else if (strcmp(a, "--kv") == 0 && v) {
            kv_type = strcasecmp(v, "q8_0") == 0 ? RL_TYPE_Q8_0 : strcasecmp(v, "f32") == 0 ? RL_TYPE_F32 : RL_TYPE_F16;
            i++;
        } else {
            return usage();
        }
    }
    if (!path || prompt < 1 || prompt > 8192 || gen < 2 || gen > 100000 || reps < 1 || reps > 100)
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
    int rc;
    if (cuda) {
#ifdef RL_HAVE_CUDA_ENGINE
        rl_cuda_opts co = {.n_ctx = o.n_ctx, .step_tokens = o.step_tokens, .kv_q8 = kv_type == RL_TYPE_Q8_0};
        rc = rl_engine_cuda_create_opts(path, &co, &e, err, sizeof err);
#else
        snprintf(err, sizeof err, "built without CUDA");
        rc = -ENOTSUP;
#endif
    } else {
        rc = rl_engine_llm_create_opts(path, &o, &e, err, sizeof err);
    }
    if (rc < 0) {
        fprintf(stderr, "ringlm-bench model: %s\n", err);
        return 1;
    }
    t_load = now_s() - t_load;
    rl_engine_info info;
    e->ops->get_info(e, &info);
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)prompt);
    uint32_t range = info.n_vocab > 4 ? info.n_vocab - 3 : 1;
    if ((uint32_t)reps >= range)
        reps = (int)range - 1 > 0 ? (int)range - 1 : 1;
    for (int i = 0; i < prompt; i++) /* fixed pseudo-random ids, skipping the first few (control tokens) */
        toks[i] = (int32_t)(3 + ((uint32_t)i * 2654435761u >> 7) % range);
    int32_t first = toks[0];
    rl_seq_desc d = {.prompt = toks, .n_prompt = (uint32_t)prompt, .max_tokens = (uint32_t)gen,
                     .sampling = {.temperature = 0, .top_p = 1, .repeat_penalty = 1}};
    rl_seq *s = NULL;
    /* Warm-up: one short sequence first, so one-time costs (page faults of the
     * weights, cuBLAS handles, CUDA graph capture) stay out of the timings. Its
     * prompt (first token `first`) shares no block with the measured ones. */
    rl_seq_desc wd = d;
    wd.n_prompt = prompt < 32 ? (uint32_t)prompt : 32;
    wd.max_tokens = 4;
    if ((rc = e->ops->seq_new(e, &wd, &s)) == 0) {
        rl_step_item w = {.seq = s};
        for (int k = 0; k < 64 && e->ops->step(e, &w, 1) == 0 && w.status == 0; k++)
            if (w.token >= 0 && ++rc >= 3)
                break;
        e->ops->seq_free(e, s);
        s = NULL;
    }
    rl_engine_stats st0 = {0}, st1 = {0};
    if (e->ops->get_stats)
        e->ops->get_stats(e, &st0);
    /* Time to first token: the median over reps fresh prompts (the first token
     * differs from the warm-up's and between reps: no prefix-cache hit). The
     * last one goes on to generate. */
    double ttfts[100], c_prefill = 0;
    rl_step_item it = {0};
    for (int r = 0; r < reps; r++) {
        toks[0] = (int32_t)(3 + ((uint32_t)(first - 3) + 1u + (uint32_t)r) % range);
        if (s)
            e->ops->seq_free(e, s);
        s = NULL;
        if ((rc = e->ops->seq_new(e, &d, &s)) < 0) {
            fprintf(stderr, "ringlm-bench model: seq_new: %s\n", strerror(-rc));
            return 1;
        }
        it = (rl_step_item){.seq = s};
        double c0 = cpu_s(), t0 = now_s();
        do {
            if ((rc = e->ops->step(e, &it, 1)) < 0 || it.status < 0) {
                fprintf(stderr, "ringlm-bench model: step failed\n");
                return 1;
            }
        } while (it.token < 0);
        ttfts[r] = now_s() - t0;
        c_prefill += cpu_s() - c0;
    }
    if (e->ops->get_stats)
        e->ops->get_stats(e, &st1);
    c_prefill /= reps;
    for (int a = 1; a < reps; a++) /* insertion sort: reps <= 100 */
        for (int b = a; b > 0 && ttfts[b] < ttfts[b - 1]; b--) {
            double x = ttfts[b];
            ttfts[b] = ttfts[b - 1];
            ttfts[b - 1] = x;
        }
    double ttft = reps % 2 ? ttfts[reps / 2] : (ttfts[reps / 2 - 1] + ttfts[reps / 2]) / 2;
    unsigned long long hit_tokens = (unsigned long long)(st1.prefix_hit_tokens - st0.prefix_hit_tokens);
    double t1 = now_s(), c1 = cpu_s();
    for (int g = 1; g < gen; g++)
        if ((rc = e->ops->step(e, &it, 1)) < 0 || it.status < 0) {
            fprintf(stderr, "ringlm-bench model: step failed\n");
            return 1;
        }
    double t_gen = now_s() - t1, c_gen = cpu_s() - c1;
    double prefill_tok_s = prompt / ttft, gen_tok_s = (gen - 1) / t_gen;
    int nth = threads > 0 ? threads : 0;
    /* rooflines: weight bytes per generated token; 2 FLOPs per matrix weight per prompt token */
    if (bw_gbs <= 0)
        bw_gbs = cuda ? 2920.0 : 30.6;
    double kv_dim = info.n_head ? (double)info.n_embd * info.n_head_kv / info.n_head : 0;
    double params = (double)info.n_layer * ((double)info.n_embd * (2.0 * info.n_embd + 2.0 * kv_dim) +
                                            3.0 * info.n_embd * info.n_ff) +
                    (double)info.n_vocab * info.n_embd;
    double gen_roof = bw_gbs * 1e9 / (double)info.weight_bytes;
    double prefill_frac = cuda ? prefill_tok_s * 2.0 * params / 750e12 : 0;
    if (json)
        printf("{\"model\":\"%s\",\"device\":\"%s\",\"type\":\"%s\",\"threads\":%d,\"prompt\":%d,"
               "\"gen\":%d,\"load_s\":%.3f,\"ttft_ms\":%.3f,\"ttft_reps\":%d,\"prefix_hit_tokens\":%llu,\"prefill_tok_s\":%.2f,\"gen_tok_s\":%.2f,"
               "\"prefill_cpu_s\":%.3f,\"gen_cpu_s\":%.3f,\"weight_bytes\":%llu,"
               "\"gen_roofline_tok_s\":%.1f,\"gen_roofline_frac\":%.3f,\"prefill_peak_frac\":%.4f}\n",
               path, cuda ? "cuda" : "cpu", info.type, nth, prompt, gen, t_load, ttft * 1e3, reps, hit_tokens,
               prefill_tok_s, gen_tok_s, c_prefill, c_gen, (unsigned long long)info.weight_bytes, gen_roof,
               gen_tok_s / gen_roof, prefill_frac);
    else
        printf("model %s (%s, %u layers, n_embd %u) on %s\nload %.2f s\nprefill %d tokens: %.1f tok/s (time to "
               "first token %.3f ms, median of %d, %llu prefix-hit tokens; %.4f CPU s)\ngeneration %d tokens: %.2f tok/s (%.2f CPU s), "
               "%.0f%% of the %.0f tok/s roofline at %.1f GB/s\n",
               path, info.type, info.n_layer, info.n_embd, cuda ? "cuda" : "cpu", t_load, prompt,
               prefill_tok_s, ttft * 1e3, reps, hit_tokens, c_prefill, gen - 1, gen_tok_s, c_gen, 100.0 * gen_tok_s / gen_roof,
               gen_roof, bw_gbs);
    e->ops->seq_free(e, s);
    e->ops->destroy(e);
    free(toks);
    return 0;
}
