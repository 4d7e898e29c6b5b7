/* rl_bench_cuda.c - `ringlm-bench cuda`: generation and prefill speed of the
 * CUDA model, with the fraction of the H100 roofline (2.92 TB/s for the
 * weight bytes a generated token reads; 750 TFLOP/s for prefill GEMMs).
 *
 *   ringlm-bench-cuda --shape llama2-7b --type q4_0 [--gen 128] [--prompt 512]
 *                     [--batch 1] [--no-graph] [--kernels] [--profile] [--json]
 *
 * Models of real shapes are made on the device with random weights (valid
 * blocks, sane scales), so no multi-GiB file has to travel. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rl_cu_model.h"
#include "rl_cuda.h"

#define ROOF_BW 2.92e12
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
    printf("%-6s %-12s %5s %10s %10s\n", "type", "rows x cols", "batch", "us", "GB/s");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (size_t di = 0; di < 4; di++) {
            int64_t rows = dims[di][0], cols = dims[di][1];
            size_t bytes = rl_cu_mat_bytes(types[ti], rows, cols);
            int nm = (int)(400e6 / bytes) + 1;
            if (nm > 64)
                nm = 64;
            rl_cu_mat *m = calloc(nm, sizeof *m);
            int ok = 1;
            for (int i = 0; i < nm && ok; i++)
                ok = !rl_cu_mat_alloc(&m[i], types[ti], rows, cols) && !rl_cu_mat_fill_random(&m[i], i + 1, 0);
            rl_cu_act x = {.n = cols}, y = {.n = rows};
            ok = ok && !cudaMalloc((void **)&x.f, cols * 4 * 8) && !cudaMalloc((void **)&x.q, cols * 8) &&
                 !cudaMalloc((void **)&x.ds, cols / 32 * 8 * 8) && !cudaMalloc((void **)&y.f, rows * 4 * 8);
            if (ok) {
                cudaMemset(x.f, 0, cols * 4 * 8);
                rl_cu_quantize(&x, batch, 0);
                for (int i = 0; i < nm; i++)
                    rl_cu_matvec(&m[i], &x, batch, RL_CU_MV_STORE, &y, 0);
                cudaEvent_t e0, e1;
                cudaEventCreate(&e0);
                cudaEventCreate(&e1);
                int reps = 20 * nm;
                cudaEventRecord(e0, 0);
                for (int r = 0; r < reps; r++)
                    rl_cu_matvec(&m[r % nm], &x, batch, RL_CU_MV_STORE, &y, 0);
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

int rl_bench_cuda_main(int argc, char **argv)
{
    const char *shape_name = "tinyllama-1.1b", *type_name = "q4_0";
    int n_gen = 128, n_prompt = 512, batch = 1, graphs = 1, kernels = 0, json = 0, profile = 0;
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
        else if (!strcmp(argv[i], "--profile"))
            profile = 1;
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else {
            fprintf(stderr, "usage: %s [--shape tinyllama-1.1b|llama2-7b] [--type q4_0|q8_0|f16|q4_k_m|...] [--gen N] "
                            "[--prompt N] [--batch 1..8] [--no-graph] [--kernels] [--json]\n", argv[0]);
            return 2;
        }
    }
    if (rl_cu_device_count() <= 0) {
        printf("no CUDA device: skipping\n");
        return 77;
    }
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
    if (!sh || t < 0 || !rl_cu_type_supported((rl_type)t) || batch < 1 || batch > RL_CU_MAX_BATCH || n_gen < 1 ||
        n_prompt < 1) {
        fprintf(stderr, "bad --shape, --type, --batch, --gen or --prompt\n");
        return 2;
    }
    rl_cu_model_cfg c = {.n_vocab = sh->n_vocab, .n_embd = sh->n_embd, .n_layer = sh->n_layer,
                         .n_head = sh->n_head, .n_head_kv = sh->n_head_kv, .head_dim = sh->n_embd / sh->n_head,
                         .n_ff = sh->n_ff, .rms_eps = 1e-5f, .rope_base = 10000.0f,
                         .n_ctx = (uint32_t)(n_prompt + n_gen + 8), .n_slots = (uint32_t)batch,
                         .max_prefill = (uint32_t)n_prompt};
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
    int32_t *prompt = malloc(n_prompt * 4), tok[RL_CU_MAX_BATCH], pos[RL_CU_MAX_BATCH], slot[RL_CU_MAX_BATCH];
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
    if (profile)
        rl_cu_model_profile(m, batch, n_prompt + n_gen / 2, stdout);
    double gen_tps = n_gen * batch / tg;
    uint64_t wbytes = rl_cu_model_weight_bytes(m) - rl_cu_mat_bytes((rl_type)t, c.n_vocab, c.n_embd);
    double gen_roof = wbytes * (n_gen / tg) / ROOF_BW;
    uint64_t hd = c.head_dim, qkvd = (uint64_t)(c.n_head + 2 * c.n_head_kv) * hd;
    double layer_params = (double)c.n_embd * (qkvd + (double)c.n_head * hd + 3.0 * c.n_ff);
    double flops = 2.0 * layer_params * c.n_layer * n_prompt +
                   2.0 * 2.0 * c.n_layer * c.n_head * hd * (double)n_prompt * n_prompt / 2.0 +
                   2.0 * c.n_vocab * c.n_embd;
    double prefill_roof = flops / tp[1] / ROOF_FLOPS;
    if (json)
        printf("{\"bench\":\"cuda\",\"shape\":\"%s\",\"type\":\"%s\",\"batch\":%d,\"graphs\":%s,"
               "\"gen_tokens\":%d,\"gen_tok_s\":%.1f,\"gen_roofline\":%.3f,\"prompt_tokens\":%d,"
               "\"prefill_tok_s\":%.1f,\"prefill_roofline\":%.3f,\"weight_bytes_per_token\":%llu}\n",
               sh->name, mix ? type_name : rl_type_get(t)->name, batch, graphs ? "true" : "false", n_gen, gen_tps, gen_roof, n_prompt,
               prefill_tps, prefill_roof, (unsigned long long)wbytes);
    else
        printf("cuda %-15s %-5s batch %d%s: gen %8.1f tok/s (%4.1f%% of %.2f TB/s roofline, %.1f MB/token) | "
               "prefill %d: %8.1f tok/s (%4.1f%% of 750 TFLOP/s)\n",
               sh->name, mix ? type_name : rl_type_get(t)->name, batch, graphs ? "" : " (no graph)", gen_tps, 100 * gen_roof,
               ROOF_BW / 1e12, wbytes / 1e6, n_prompt, prefill_tps, 100 * prefill_roof);
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
