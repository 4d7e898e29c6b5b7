/* tm_model.c - random-weight GGUF models for tests, and the optimized-path driver. */
#include "tm_util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rl_gemm.h"
#include "rl_gguf.h"
#include "rl_ops.h"

tm_spec tm_default_spec(rl_type type)
{
    return (tm_spec){.arch = "llama", .type = type, .n_vocab = 320, .n_embd = 256, .n_layer = 2,
                     .n_head = 4, .n_head_kv = 2, .n_ff = 512, .n_ctx = 256, .rope_base = 10000.f, .seed = 1};
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static float rng_uniform(uint64_t *s, float a)
{
    return ((float)(rng_next(s) >> 40) / (float)(1 << 24) * 2.f - 1.f) * a;
}

static const tm_spec *g_spec;

static int add_matrix(rl_gguf_writer *w, const char *name, rl_type t, int64_t ne0, int64_t ne1, float scale,
                      uint64_t *rng)
{
    if (g_spec->missing && strcmp(name, g_spec->missing) == 0)
        return 0;
    if (g_spec->bad_shape && strcmp(name, g_spec->bad_shape) == 0)
        ne1++;
    if (g_spec->raw_unsupported && strcmp(name, g_spec->raw_unsupported) == 0) {
        size_t nb = (size_t)(ne0 / 256) * 84 * (size_t)ne1; /* Q2_K: a known layout no kernel computes */
        void *z = calloc(1, nb);
        int64_t ne[2] = {ne0, ne1};
        int rc = rl_gguf_writer_tensor(w, name, RL_TYPE_Q2_K, 2, ne, z, nb);
        free(z);
        return rc;
    }
    const rl_type_traits *tt = rl_type_get(t);
    size_t rb = rl_type_row_size(t, ne0);
    float *row = malloc(sizeof(float) * (size_t)ne0);
    uint8_t *data = malloc(rb * (size_t)ne1);
    for (int64_t r = 0; r < ne1; r++) {
        for (int64_t i = 0; i < ne0; i++)
            row[i] = rng_uniform(rng, scale);
        tt->from_float(row, data + (size_t)r * rb, ne0);
    }
    int64_t ne[2] = {ne0, ne1};
    int rc = rl_gguf_writer_tensor(w, name, t, 2, ne, data, rb * (size_t)ne1);
    free(row);
    free(data);
    return rc;
}

static int add_vector(rl_gguf_writer *w, const char *name, int64_t n, float center, float spread, uint64_t *rng)
{
    if (g_spec->missing && strcmp(name, g_spec->missing) == 0)
        return 0;
    if (g_spec->bad_shape && strcmp(name, g_spec->bad_shape) == 0)
        n++;
    float *v = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        v[i] = center + rng_uniform(rng, spread);
    int64_t ne[1] = {n};
    int rc = rl_gguf_writer_tensor(w, name, RL_TYPE_F32, 1, ne, v, sizeof(float) * (size_t)n);
    free(v);
    return rc;
}

int tm_make_model(const tm_spec *sp, char *path)
{
    int fd = mkstemp(path);
    if (fd < 0)
        return -errno;
    close(fd);
    rl_types_init();
    g_spec = sp;
    uint64_t rng = sp->seed * 0x9e3779b97f4a7c15ull + 12345;
    rl_gguf_writer *w = rl_gguf_writer_new();
    char k[128];
    const char *a = sp->arch;
    uint32_t hd = sp->n_embd / sp->n_head, Q = sp->n_embd, KV = hd * sp->n_head_kv;
    rl_gguf_writer_str(w, "general.architecture", a);
    rl_gguf_writer_str(w, "general.name", "test-model");
#define KU(suffix, v) snprintf(k, sizeof k, "%s." suffix, a), rl_gguf_writer_u32(w, k, v)
    KU("context_length", sp->n_ctx);
    KU("embedding_length", sp->n_embd);
    KU("block_count", sp->n_layer);
    KU("feed_forward_length", sp->n_ff);
    KU("attention.head_count", sp->n_head);
    KU("attention.head_count_kv", sp->n_head_kv);
#undef KU
    snprintf(k, sizeof k, "%s.attention.layer_norm_rms_epsilon", a);
    rl_gguf_writer_f32(w, k, 1e-5f);
    snprintf(k, sizeof k, "%s.rope.freq_base", a);
    rl_gguf_writer_f32(w, k, sp->rope_base);
    float s_e = 1.f / sqrtf((float)sp->n_embd), s_f = 1.f / sqrtf((float)sp->n_ff);
    add_matrix(w, "token_embd.weight", sp->type, sp->n_embd, sp->n_vocab, 1.f, &rng);
    add_vector(w, "output_norm.weight", sp->n_embd, 1.f, 0.2f, &rng);
    if (!sp->tied)
        add_matrix(w, "output.weight", sp->type, sp->n_embd, sp->n_vocab, 2.f * s_e, &rng);
    if (sp->rope_freqs && sp->rope_freqs_values) {
        int64_t ne[1] = {hd / 2};
        rl_gguf_writer_tensor(w, "rope_freqs.weight", RL_TYPE_F32, 1, ne, sp->rope_freqs_values, sizeof(float) * hd / 2);
    } else if (sp->rope_freqs) {
        add_vector(w, "rope_freqs.weight", hd / 2, 4.f, 3.f, &rng);
    }
    if (sp->llama3_factor > 0) {
        snprintf(k, sizeof k, "%s.rope.scaling.type", a);
        rl_gguf_writer_str(w, k, "llama3");
        snprintf(k, sizeof k, "%s.rope.scaling.factor", a);
        rl_gguf_writer_f32(w, k, sp->llama3_factor);
        snprintf(k, sizeof k, "%s.rope.scaling.low_freq_factor", a);
        rl_gguf_writer_f32(w, k, 1.f);
        snprintf(k, sizeof k, "%s.rope.scaling.high_freq_factor", a);
        rl_gguf_writer_f32(w, k, 4.f);
        snprintf(k, sizeof k, "%s.rope.scaling.original_context_length", a);
        rl_gguf_writer_f32(w, k, 64.f);
    }
    for (uint32_t l = 0; l < sp->n_layer; l++) {
#define NM(s) (snprintf(k, sizeof k, "blk.%u." s, l), k)
        add_vector(w, NM("attn_norm.weight"), sp->n_embd, 1.f, 0.2f, &rng);
        add_vector(w, NM("ffn_norm.weight"), sp->n_embd, 1.f, 0.2f, &rng);
        add_matrix(w, NM("attn_q.weight"), sp->type, sp->n_embd, Q, 2.f * s_e, &rng);
        add_matrix(w, NM("attn_k.weight"), sp->type, sp->n_embd, KV, 2.f * s_e, &rng);
        add_matrix(w, NM("attn_v.weight"), sp->v_own_type ? sp->v_type : sp->type, sp->n_embd, KV, 2.f * s_e, &rng);
        add_matrix(w, NM("attn_output.weight"), sp->type, Q, sp->n_embd, s_e, &rng);
        add_matrix(w, NM("ffn_gate.weight"), sp->type, sp->n_embd, sp->n_ff, 2.f * s_e, &rng);
        add_matrix(w, NM("ffn_up.weight"), sp->type, sp->n_embd, sp->n_ff, 2.f * s_e, &rng);
        add_matrix(w, NM("ffn_down.weight"), sp->type, sp->n_ff, sp->n_embd, s_f, &rng);
        if (strcmp(a, "qwen2") == 0) {
            add_vector(w, NM("attn_q.bias"), Q, 0.f, 0.3f, &rng);
            add_vector(w, NM("attn_k.bias"), KV, 0.f, 0.3f, &rng);
            add_vector(w, NM("attn_v.bias"), KV, 0.f, 0.3f, &rng);
        }
#undef NM
    }
    int rc = rl_gguf_writer_write(w, path);
    rl_gguf_writer_free(w);
    return rc;
}

int tm_run_open(tm_run *r, const char *path, rl_type kv_type, uint32_t n_blocks, int threads, uint32_t max_tokens)
{
    char err[256];
    memset(r, 0, sizeof(*r));
    rl_ops_init();
    rl_gemm_init();
    int rc = rl_model_load(path, &r->m, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "load: %s\n", err);
        return rc;
    }
    const rl_model_hparams *hp = &r->m->hp;
    if ((rc = rl_kv_new(&r->kv, hp->n_layer, hp->n_head_kv, hp->head_dim, kv_type, n_blocks, err, sizeof err)) < 0)
        return rc;
    r->pool = rl_pool_new(threads);
    return rl_fwd_new(r->m, r->kv, r->pool, max_tokens, &r->f);
}

void tm_run_close(tm_run *r)
{
    rl_fwd_free(r->f);
    rl_pool_free(r->pool);
    rl_kv_free(r->kv);
    rl_model_free(r->m);
}

int tm_run_feed(tm_run *r, rl_kv_seq *s, const int32_t *toks, uint32_t n, float *out)
{
    int rc = rl_kv_reserve(r->kv, s, s->n_pos + n);
    if (rc < 0)
        return rc;
    rl_fwd_seq fs = {.kv = s, .tokens = toks, .n_tok = n, .logits = out};
    return rl_forward(r->f, &fs, 1);
}

double tm_rel_err(const float *a, const double *b, uint32_t n)
{
    double num = 0, den = 0;
    for (uint32_t i = 0; i < n; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}

int32_t tm_argmax_f(const float *x, uint32_t n)
{
    uint32_t b = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return (int32_t)b;
}

int32_t tm_argmax_d(const double *x, uint32_t n)
{
    uint32_t b = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[b])
            b = i;
    return (int32_t)b;
}

const char *tm_stories_path(void)
{
    static char buf[4096];
    const char *d = getenv("RL_SHARED_DIR");
    if (!d) {
        printf("skip: RL_SHARED_DIR not set\n");
        return NULL;
    }
    snprintf(buf, sizeof buf, "%s/models/stories260K.gguf", d);
    if (access(buf, R_OK) != 0) {
        printf("skip: %s missing\n", buf);
        return NULL;
    }
    return buf;
}
