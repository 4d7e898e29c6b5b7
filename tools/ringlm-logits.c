/* ringlm-logits - the logits of the last position of one token sequence, for
 * checking the engines against an outside implementation (tools/hf_check.py).
 *
 *   ringlm-logits --model F.gguf [--device cpu|cuda] --tokens "1 5 9 ..."
 *                 [--threads N] [--decode N]
 *
 * The prompt runs as one sequence: all tokens but the last --decode N (default
 * 0) in one batch (prefill), then those N one at a time (decode steps). Prints
 * n_vocab values (%.9g: a float32 round-trips exactly) on one line.
 * CPU: rl_forward with an F32 KV cache; CUDA: rl_cu_model_prefill / rl_cu_model_decode (fp16 KV cache). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl_kv.h"
#include "rl_model.h"
#include "rl_pool.h"
#ifdef RL_LOGITS_CUDA
#include "rl_cu_model.h"
#include "rl_engine_cuda.h"
#endif

#define MAX_TOKENS 4096

static void usage(void)
{
    fprintf(stderr, "usage: ringlm-logits --model F.gguf [--device cpu|cuda] --tokens \"1 5 9 ...\" "
                    "[--threads N] [--decode N]\n");
}

/* Parse whitespace-separated token ids; returns the count or -1. */
static int parse_tokens(const char *s, int32_t *out, int cap)
{
    int n = 0;
    while (*s) {
        while (*s == ' ' || *s == '\t' || *s == ',' || *s == '\n')
            s++;
        if (!*s)
            break;
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > INT32_MAX || n >= cap)
            return -1;
        out[n++] = (int32_t)v;
        s = end;
    }
    return n;
}

static int run_cpu(const rl_model *m, const int32_t *tok, int n, int n_decode, int threads, float *logits)
{
    char err[256] = "";
    uint32_t blocks = (uint32_t)(n + RL_KV_BLOCK) / RL_KV_BLOCK + 1;
    rl_kv *kv;
    int rc = rl_kv_new(&kv, m->hp.n_layer, m->hp.n_head_kv, m->hp.head_dim, RL_TYPE_F32, blocks, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "ringlm-logits: kv cache: %s\n", err);
        return rc;
    }
    rl_pool *pool = rl_pool_new(threads);
    rl_fwd *f = NULL;
    rl_kv_seq seq = {0};
    if (!pool || (rc = rl_fwd_new(m, kv, pool, (uint32_t)n, &f)) < 0) {
        fprintf(stderr, "ringlm-logits: forward pass setup failed\n");
        rc = rc < 0 ? rc : -ENOMEM;
        goto out;
    }
    if ((rc = rl_kv_reserve(kv, &seq, (uint32_t)n)) < 0) {
        fprintf(stderr, "ringlm-logits: kv reserve failed (%d)\n", rc);
        goto out;
    }
    int n_pre = n - n_decode;
    if (n_pre > 0) {
        rl_fwd_seq fs = {.kv = &seq, .tokens = tok, .n_tok = (uint32_t)n_pre, .logits = logits};
        if ((rc = rl_forward(f, &fs, 1)) < 0)
            goto fwd_fail;
    }
    for (int i = n_pre; i < n; i++) {
        rl_fwd_seq fs = {.kv = &seq, .tokens = tok + i, .n_tok = 1, .logits = logits};
        if ((rc = rl_forward(f, &fs, 1)) < 0)
            goto fwd_fail;
    }
    goto out;
fwd_fail:
    fprintf(stderr, "ringlm-logits: forward pass failed (%s)\n", strerror(-rc));
out:
    rl_kv_release(kv, &seq);
    rl_fwd_free(f);
    rl_pool_free(pool);
    rl_kv_free(kv);
    return rc;
}

#ifdef RL_LOGITS_CUDA
static int run_cuda(const rl_model *m, const int32_t *tok, int n, int n_decode, float *logits)
{
    char err[512] = "";
    rl_cu_model *g;
    uint32_t ctx = ((uint32_t)n + 63) / 64 * 64;
    int rc = rl_cu_model_from_cpu(m, ctx, 1, 0, ctx, false, RL_CU_W16_AUTO, &g, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "ringlm-logits: cuda model: %s\n", err);
        return rc;
    }
    int n_pre = n - n_decode;
    int32_t out_tok;
    if (n_pre > 0 && (rc = rl_cu_model_prefill(g, 0, 0, tok, n_pre, &out_tok, logits)) < 0)
        fprintf(stderr, "ringlm-logits: cuda prefill: %s\n", rl_cu_last_error());
    for (int i = n_pre; rc == 0 && i < n; i++) {
        int32_t pos = i, slot = 0;
        if ((rc = rl_cu_model_decode(g, 1, tok + i, &pos, &slot, &out_tok, logits)) < 0)
            fprintf(stderr, "ringlm-logits: cuda decode: %s\n", rl_cu_last_error());
    }
    rl_cu_model_free(g);
    return rc;
}
#endif

int main(int argc, char **argv)
{
    const char *model = NULL, *device = "cpu", *tokens = NULL;
    int threads = 1, n_decode = 0;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"device", required_argument, 0, 'd'},
        {"tokens", required_argument, 0, 't'}, {"threads", required_argument, 0, 'j'},
        {"decode", required_argument, 0, 'D'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "m:d:t:j:D:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model = optarg; break;
        case 'd': device = optarg; break;
        case 't': tokens = optarg; break;
        case 'j': threads = atoi(optarg); break;
        case 'D': n_decode = atoi(optarg); break;
        default: usage(); return c == 'h' ? 0 : 2;
        }
    }
    if (!model || !tokens || threads < 1 || threads > 1024 || n_decode < 0) {
        usage();
        return 2;
    }
    bool cuda = strcmp(device, "cuda") == 0;
    if (!cuda && strcmp(device, "cpu") != 0) {
        fprintf(stderr, "ringlm-logits: unknown device '%s' (cpu or cuda)\n", device);
        return 2;
    }
#ifndef RL_LOGITS_CUDA
    if (cuda) {
        fprintf(stderr, "ringlm-logits: the CUDA engine is not built in (meson found no CUDA)\n");
        return 3;
    }
#endif
    static int32_t tok[MAX_TOKENS];
    int n = parse_tokens(tokens, tok, MAX_TOKENS);
    if (n <= 0) {
        fprintf(stderr, "ringlm-logits: --tokens needs 1..%d non-negative integers\n", MAX_TOKENS);
        return 2;
    }
    if (n_decode > n) {
        fprintf(stderr, "ringlm-logits: --decode %d exceeds the %d tokens\n", n_decode, n);
        return 2;
    }
    char err[512] = "";
    rl_model *m;
    if (rl_model_load(model, &m, err, sizeof err) < 0) {
        fprintf(stderr, "ringlm-logits: %s: %s\n", model, err);
        return 1;
    }
    uint32_t V = m->hp.n_vocab;
    for (int i = 0; i < n; i++)
        if ((uint32_t)tok[i] >= V) {
            fprintf(stderr, "ringlm-logits: token %d is outside the vocabulary (%u)\n", tok[i], V);
            rl_model_free(m);
            return 2;
        }
    if ((uint32_t)n > m->hp.n_ctx_train && m->hp.n_ctx_train > 0)
        fprintf(stderr, "ringlm-logits: note: %d tokens exceed the training context %u\n", n, m->hp.n_ctx_train);
    float *logits = malloc(sizeof(float) * V);
    if (!logits) {
        rl_model_free(m);
        return 1;
    }
    for (uint32_t i = 0; i < V; i++)
        logits[i] = NAN; /* a path that writes nothing shows as nan */
    int rc;
#ifdef RL_LOGITS_CUDA
    if (cuda)
        rc = run_cuda(m, tok, n, n_decode, logits);
    else
#endif
        rc = run_cpu(m, tok, n, n_decode, threads, logits);
    if (rc == 0) {
        for (uint32_t i = 0; i < V; i++)
            printf(i ? " %.9g" : "%.9g", (double)logits[i]);
        printf("\n");
    }
    free(logits);
    rl_model_free(m);
    return rc == 0 ? 0 : 1;
}
