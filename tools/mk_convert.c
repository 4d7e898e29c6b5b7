/* mk_convert.c - chunked, multi-threaded row conversion into a streaming GGUF writer. */
#include "mk_convert.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CHUNK_FLOATS (4u << 20) /* 16 MiB of floats per chunk and thread */

typedef struct part {
    const rl_type_traits *tr;
    mk_row_fn gen;
    void *ctx;
    int64_t ne0, r0, r1;
    size_t row_bytes;
    float *tmp;     /* one row of floats */
    uint8_t *out;   /* rows [r0, r1) converted, relative to the chunk start */
} part;

static void *convert_part(void *arg)
{
    part *p = arg;
    for (int64_t r = p->r0; r < p->r1; r++) {
        p->gen(p->ctx, r, p->tmp, p->ne0);
        p->tr->from_float(p->tmp, p->out + (size_t)(r - p->r0) * p->row_bytes, p->ne0);
    }
    return NULL;
}

int mk_stream_tensor(rl_gguf_writer *w, rl_type type, int64_t ne0, int64_t nrows, mk_row_fn gen, void *ctx,
                     int threads)
{
    const rl_type_traits *tr = rl_type_get((uint32_t)type);
    size_t row_bytes = rl_type_row_size(type, ne0);
    if (!tr || !tr->from_float || !row_bytes || nrows <= 0) return -EINVAL;
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    int64_t chunk_rows = (int64_t)(CHUNK_FLOATS / (uint64_t)ne0) * threads;
    if (chunk_rows < threads) chunk_rows = threads;
    if (chunk_rows > nrows) chunk_rows = nrows;
    uint8_t *buf = malloc((size_t)chunk_rows * row_bytes);
    float *tmp = malloc(sizeof(float) * (size_t)ne0 * (size_t)threads);
    int rc = buf && tmp ? 0 : -ENOMEM;
    for (int64_t c0 = 0; !rc && c0 < nrows; c0 += chunk_rows) {
        int64_t c1 = c0 + chunk_rows < nrows ? c0 + chunk_rows : nrows, n = c1 - c0;
        part parts[64];
        pthread_t th[64];
        bool started[64] = {false};
        for (int t = 0; t < threads; t++) {
            int64_t a = c0 + n * t / threads, b = c0 + n * (t + 1) / threads;
            parts[t] = (part){tr, gen, ctx, ne0, a, b, row_bytes, tmp + (size_t)ne0 * t, buf + (size_t)(a - c0) * row_bytes};
            /* The last part runs on this thread, as does any we could not start. */
            started[t] = t < threads - 1 && pthread_create(&th[t], NULL, convert_part, &parts[t]) == 0;
            if (!started[t]) convert_part(&parts[t]);
        }
        for (int t = 0; t < threads; t++)
            if (started[t]) pthread_join(th[t], NULL);
        rc = rl_gguf_writer_put(w, buf, (uint64_t)n * row_bytes);
    }
    free(buf);
    free(tmp);
    return rc;
}

static unsigned fallback_n[RL_TYPE_COUNT], fallback_f32; /* the tools are single-threaded here */

/* Rows that are not a multiple of the wanted block: the 32-weight stand-in
 * a K-quant mix uses for them (Q4_K -> Q5_0, Q5_K -> Q5_1, anything else ->
 * Q8_0; llama.cpp's quantizer does the same, so SmolLM's and Qwen2-0.5B's
 * Q4_K_M files hold Q5_0), else F32. */
rl_type mk_pick_type(rl_type want, int64_t ne0, const char *name)
{
    const rl_type_traits *tr = rl_type_get((uint32_t)want);
    if (tr && ne0 % tr->block_size == 0) return want;
    (void)name;
    if (ne0 % 32 == 0) {
        rl_type alt = want == RL_TYPE_Q4_K ? RL_TYPE_Q5_0 : want == RL_TYPE_Q5_K ? RL_TYPE_Q5_1 : RL_TYPE_Q8_0;
        if (alt != want) {
            fallback_n[alt]++;
            return alt;
        }
    }
    fallback_f32++;
    return RL_TYPE_F32;
}

void mk_report_fallbacks(const char *want)
{
    for (int t = 0; t < RL_TYPE_COUNT; t++)
        if (fallback_n[t])
            fprintf(stderr, "note: %u tensors stored as %s: their rows are not a multiple of the %s block\n",
                    fallback_n[t], rl_type_get((uint32_t)t)->name, want);
    if (fallback_f32)
        fprintf(stderr, "note: %u tensors stored as F32: their rows are not a multiple of 32\n", fallback_f32);
}

uint32_t mk_file_type(rl_type t)
{
    switch (t) {
    case RL_TYPE_F32: return 0;
    case RL_TYPE_F16: return 1;
    case RL_TYPE_Q4_0: return 2;
    case RL_TYPE_Q4_1: return 3;
    case RL_TYPE_Q8_0: return 7;
    case RL_TYPE_Q5_0: return 8;
    case RL_TYPE_Q5_1: return 9;
    case RL_TYPE_Q4_K: return 14; /* Q4_K_S: every weight Q4_K */
    case RL_TYPE_Q5_K: return 16; /* Q5_K_S */
    case RL_TYPE_Q6_K: return 18;
    case RL_TYPE_BF16: return 32;
    default: return 0;
    }
}

/* A type usable for weights: known, quantizable and computable (not Q8_K). */
static bool weight_type_ok(int t)
{
    const rl_type_traits *tr = t >= 0 ? rl_type_get((uint32_t)t) : NULL;
    return tr && tr->from_float && tr->vec_dot && t != RL_TYPE_Q8_K;
}

int mk_rule_init(mk_rule *r, const char *type_name)
{
    memset(r, 0, sizeof *r);
    int t = rl_type_from_name(type_name);
    if (strcasecmp(type_name, "Q4_K_M") == 0 || strcasecmp(type_name, "Q5_K_M") == 0) {
        t = type_name[1] == '4' ? RL_TYPE_Q4_K : RL_TYPE_Q5_K;
        r->mix = true;
    }
    if (!weight_type_ok(t) || strlen(type_name) >= sizeof r->name) return -1;
    r->base = (rl_type)t;
    strcpy(r->name, type_name);
    return 0;
}

int mk_rule_add_override(mk_rule *r, const char *spec)
{
    const char *eq = strrchr(spec, '=');
    int t = eq ? rl_type_from_name(eq + 1) : -1;
    size_t plen = eq ? (size_t)(eq - spec) : 0;
    if (!eq || plen == 0 || plen >= sizeof r->pat[0] || !weight_type_ok(t) || r->n_over == MK_MAX_OVERRIDES)
        return -1;
    memcpy(r->pat[r->n_over], spec, plen);
    r->pat[r->n_over][plen] = 0;
    r->over[r->n_over++] = (rl_type)t;
    return 0;
}

rl_type mk_rule_type(const mk_rule *r, const char *name)
{
    rl_type t = r->base;
    if (r->mix) {
        int layer = -1;
        if (strncmp(name, "blk.", 4) == 0) layer = atoi(name + 4);
        bool more_bits = layer >= 0 && layer % 2 == 0;
        if (strcmp(name, "output.weight") == 0 ||
            (more_bits && (strstr(name, ".attn_v.") || strstr(name, ".ffn_down."))))
            t = RL_TYPE_Q6_K;
    }
    for (int i = 0; i < r->n_over; i++)
        if (strstr(name, r->pat[i])) t = r->over[i];
    return t;
}

uint32_t mk_rule_file_type(const mk_rule *r)
{
    if (r->mix) return r->base == RL_TYPE_Q4_K ? 15 : 17; /* llama.cpp: mostly Q4_K_M / Q5_K_M */
    return mk_file_type(r->base);
}
