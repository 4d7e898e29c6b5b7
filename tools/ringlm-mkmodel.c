/* ringlm-mkmodel - write a Llama-architecture GGUF with random weights for a
 * named shape, for tests and benchmarks without downloading real models.
 *
 *   ringlm-mkmodel --shape NAME --type TYPE --out FILE [--vocab VOCAB.gguf]
 *                  [--seed S] [--layers N] [--threads T] [--tensor-type PATTERN=TYPE ...]
 *
 * TYPE is one type for every matrix, or a mix like the real-world files:
 * Q4_K_M (Q5_K_M): output.weight Q6_K, attn_v and ffn_down Q6_K in the
 * even-numbered layers (0, 2, ...), every other matrix Q4_K (Q5_K).
 * --tensor-type (repeatable) then sets TYPE for every matrix whose name
 * contains PATTERN ("ffn_up", "blk.1.attn_k"); the last match wins. The values
 * do not depend on the types: the same seed gives the same weights before
 * quantization, whatever TYPE.
 *
 * Weights are N(0, 0.02)-like (sum of four uniforms), norms 1 + N(0, 0.02)
 * and stay F32, like every 1-D tensor. Every row is generated from its own
 * seed (seed, tensor, row), so the output does not depend on --threads.
 * Tensors are generated, converted and written chunk by chunk. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mk_convert.h"
#include "mk_vocab.h"
#include "rl_gguf.h"

typedef struct shape {
    const char *name;
    uint32_t dim, layers, heads, kv_heads, ffn, vocab, ctx;
    float rope_base, eps;
    bool tied; /* no output.weight: the output projection reuses token_embd */
} shape;

static const shape shapes[] = {
    {"tiny", 64, 2, 4, 2, 128, 300, 256, 10000.0f, 1e-5f, false},
    {"tiny256", 256, 2, 4, 2, 512, 300, 256, 10000.0f, 1e-5f, false}, /* rows fit K-quant blocks */
    {"stories260k", 64, 5, 8, 4, 172, 512, 2048, 10000.0f, 1e-5f, true},
    {"tinyllama-1.1b", 2048, 22, 32, 4, 5632, 32000, 2048, 10000.0f, 1e-5f, false},
    {"llama2-7b", 4096, 32, 32, 32, 11008, 32000, 4096, 10000.0f, 1e-5f, false},
    {"llama3-8b", 4096, 32, 32, 8, 14336, 128256, 8192, 500000.0f, 1e-5f, false},
    /* rows of 576: no K-quant block fits, so its Q4_K_M files hold Q5_0 */
    {"smollm-135m", 576, 30, 9, 3, 1536, 49152, 2048, 10000.0f, 1e-5f, true},
};

typedef struct tensor {
    char name[64];
    uint32_t n_dims;
    int64_t ne[2];
    rl_type type;
    float mean, std;
} tensor;

typedef struct gen_ctx {
    uint64_t seed;
    uint32_t id;
    float mean, std;
} gen_ctx;

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* One row: approximately normal values from the sum of four 16-bit uniforms
 * (variance 4/12 of the unit range, rescaled to 1). */
static void gen_row(void *vctx, int64_t row, float *dst, int64_t n)
{
    const gen_ctx *c = vctx;
    uint64_t s = c->seed ^ ((uint64_t)c->id << 40) ^ (uint64_t)row * 0xd1b54a32d192ed03ull;
    const float k = c->std * 1.7320508f / 65536.0f; /* sqrt(3) / 2^16 */
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = splitmix(&s);
        int32_t sum = (int32_t)(r & 0xffff) + (int32_t)((r >> 16) & 0xffff) + (int32_t)((r >> 32) & 0xffff) +
                      (int32_t)(r >> 48) - 2 * 65535;
        dst[i] = c->mean + k * (float)sum;
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: ringlm-mkmodel --shape NAME --type TYPE --out FILE [--vocab VOCAB.gguf] [--seed S]\n"
               "                      [--layers N] [--threads T] [--tensor-type PATTERN=TYPE ...]\n"
               "shapes:");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) fprintf(f, " %s", shapes[i].name);
    fprintf(f, "\ntypes: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K; mixes: Q4_K_M Q5_K_M\n");
}

static int add_tensor(tensor *t, size_t *n, const char *name, uint32_t n_dims, int64_t ne0, int64_t ne1,
                      const mk_rule *rule)
{
    rl_type want = mk_rule_type(rule, name);
    tensor *x = &t[(*n)++];
    snprintf(x->name, sizeof x->name, "%s", name);
    x->n_dims = n_dims;
    x->ne[0] = ne0;
    x->ne[1] = ne1;
    x->mean = n_dims == 1 ? 1.0f : 0.0f;
    x->std = 0.02f;
    x->type = n_dims == 1 ? RL_TYPE_F32 : mk_pick_type(want, ne0, name);
    return 0;
}

/* The tensor list in file order: embeddings, the blocks, the final norm and output. */
static tensor *build_tensors(const shape *s, uint32_t n_vocab, const mk_rule *want, size_t *count)
{
    tensor *t = calloc(3 + 9 * (size_t)s->layers, sizeof *t);
    if (!t) return NULL;
    size_t n = 0;
    int64_t dim = s->dim, kv = (int64_t)s->dim / s->heads * s->kv_heads, ffn = s->ffn;
    add_tensor(t, &n, "token_embd.weight", 2, dim, n_vocab, want);
    for (uint32_t l = 0; l < s->layers; l++) {
        char nm[64];
#define T(suffix, nd, a, b) (snprintf(nm, sizeof nm, "blk.%u." suffix ".weight", l), add_tensor(t, &n, nm, nd, a, b, want))
        T("attn_norm", 1, dim, 1);
        T("attn_q", 2, dim, dim);
        T("attn_k", 2, dim, kv);
        T("attn_v", 2, dim, kv);
        T("attn_output", 2, dim, dim);
        T("ffn_norm", 1, dim, 1);
        T("ffn_gate", 2, dim, ffn);
        T("ffn_up", 2, dim, ffn);
        T("ffn_down", 2, ffn, dim);
#undef T
    }
    add_tensor(t, &n, "output_norm.weight", 1, dim, 1, want);
    if (!s->tied) add_tensor(t, &n, "output.weight", 2, dim, n_vocab, want);
    *count = n;
    return t;
}

static int write_metadata(rl_gguf_writer *w, const shape *s, uint32_t n_vocab, const mk_rule *rule)
{
    char name[96];
    rl_type type = rule->base;
    snprintf(name, sizeof name, "ringlm-mkmodel %s %s%s", s->name, rule->name, rule->n_over ? " (with overrides)" : "");
    uint32_t ftype = mk_rule_file_type(rule);
    int rc = 0;
    rc = rc ? rc : rl_gguf_writer_str(w, "general.architecture", "llama");
    rc = rc ? rc : rl_gguf_writer_str(w, "general.name", name);
    rc = rc ? rc : rl_gguf_writer_u32(w, "general.file_type", ftype);
    if ((type != RL_TYPE_F32 && type != RL_TYPE_F16 && type != RL_TYPE_BF16) || rule->n_over)
        rc = rc ? rc : rl_gguf_writer_u32(w, "general.quantization_version", 2);
    rc = rc ? rc : rl_gguf_writer_u32(w, "llama.context_length", s->ctx);
    rc = rc ? rc : rl_gguf_writer_u32(w, "llama.embedding_length", s->dim);
    rc = rc ? rc : rl_gguf_writer_u32(w, "llama.block_count", s->layers);
    rc = rc ? rc : rl_gguf_writer_u32(w, "llama.feed_forward_length", s->ffn);
    rc = rc ? rc : rl_gguf_writer_u32(w, "llama.attention.head_count", s->heads);
    rc = rc ? rc : rl_gguf_writer_u32(w, "llama.attention.head_count_kv", s->kv_heads);
    rc = rc ? rc : rl_gguf_writer_f32(w, "llama.attention.layer_norm_rms_epsilon", s->eps);
    rc = rc ? rc : rl_gguf_writer_f32(w, "llama.rope.freq_base", s->rope_base);
    rc = rc ? rc : rl_gguf_writer_u32(w, "llama.rope.dimension_count", s->dim / s->heads);
    rc = rc ? rc : rl_gguf_writer_u32(w, "llama.vocab_size", n_vocab);
    return rc;
}

int main(int argc, char **argv)
{
    const char *shape_name = NULL, *type_name = NULL, *out = NULL, *vocab = NULL;
    uint64_t seed = 1;
    long layers = -1, threads = 2;
    static const struct option opts[] = {
        {"shape", 1, 0, 's'}, {"type", 1, 0, 't'}, {"out", 1, 0, 'o'}, {"vocab", 1, 0, 'v'},
        {"seed", 1, 0, 'S'}, {"layers", 1, 0, 'l'}, {"threads", 1, 0, 'j'}, {"help", 0, 0, 'h'},
        {"tensor-type", 1, 0, 'T'}, {0, 0, 0, 0},
    };
    const char *overrides[MK_MAX_OVERRIDES + 1];
    int n_over = 0;
    for (int c; (c = getopt_long(argc, argv, "h", opts, NULL)) != -1;) {
        switch (c) {
        case 's': shape_name = optarg; break;
        case 't': type_name = optarg; break;
        case 'o': out = optarg; break;
        case 'v': vocab = optarg; break;
        case 'S': seed = strtoull(optarg, NULL, 0); break;
        case 'l': layers = strtol(optarg, NULL, 10); break;
        case 'j': threads = strtol(optarg, NULL, 10); break;
        case 'T':
            if (n_over > MK_MAX_OVERRIDES) {
                fprintf(stderr, "ringlm-mkmodel: at most %d --tensor-type\n", MK_MAX_OVERRIDES);
                return 2;
            }
            overrides[n_over++] = optarg;
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!shape_name || !type_name || !out || optind != argc) {
        usage(stderr);
        return 2;
    }
    shape s = {0};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        if (strcasecmp(shapes[i].name, shape_name) == 0) s = shapes[i];
    mk_rule rule;
    bool type_ok = mk_rule_init(&rule, type_name) == 0;
    if (!s.name || !type_ok) {
        fprintf(stderr, "ringlm-mkmodel: unknown %s '%s'\n", s.name ? "type" : "shape", s.name ? type_name : shape_name);
        usage(stderr);
        return 2;
    }
    if (layers == 0 || layers > 1000 || threads < 1 || threads > 64) {
        fprintf(stderr, "ringlm-mkmodel: --layers must be 1..1000 and --threads 1..64\n");
        return 2;
    }
    if (layers > 0) s.layers = (uint32_t)layers;
    for (int i = 0; i < n_over; i++)
        if (mk_rule_add_override(&rule, overrides[i])) {
            fprintf(stderr, "ringlm-mkmodel: bad --tensor-type '%s' (PATTERN=TYPE, at most %d)\n", overrides[i],
                    MK_MAX_OVERRIDES);
            return 2;
        }
    const rl_type_traits *tr = rl_type_get((uint32_t)rule.base);

    rl_gguf_writer *w = rl_gguf_writer_new();
    rl_gguf *vg = NULL;
    uint32_t n_vocab = s.vocab;
    int rc = w ? 0 : -ENOMEM;
    if (!rc && vocab) {
        char err[512];
        if ((rc = rl_gguf_open(vocab, &vg, err, sizeof err))) {
            fprintf(stderr, "ringlm-mkmodel: %s\n", err);
            rl_gguf_writer_free(w);
            return 1;
        }
    }
    if (!rc && vg) {
        rc = mk_vocab_copy(w, vg, &n_vocab);
        if (!rc && n_vocab == 0) {
            fprintf(stderr, "ringlm-mkmodel: %s has no tokenizer.ggml.tokens\n", vocab);
            rc = -EINVAL;
        }
        if (!rc && n_vocab != s.vocab)
            fprintf(stderr, "note: vocabulary of %u tokens from %s replaces the shape's %u\n", n_vocab, vocab, s.vocab);
    } else if (!rc) {
        rc = mk_vocab_synthetic(w, n_vocab);
    }
    if (!rc) rc = write_metadata(w, &s, n_vocab, &rule);
    size_t nt = 0;
    tensor *t = rc ? NULL : build_tensors(&s, n_vocab, &rule, &nt);
    if (!rc && !t) rc = -ENOMEM;
    for (size_t i = 0; !rc && i < nt; i++) rc = rl_gguf_writer_tensor_decl(w, t[i].name, t[i].type, t[i].n_dims, t[i].ne);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mk_report_fallbacks(tr->name);
    if (!rc) rc = rl_gguf_writer_begin(w, out);
    uint64_t bytes = 0;
    for (size_t i = 0; !rc && i < nt; i++) {
        gen_ctx g = {seed, (uint32_t)i, t[i].mean, t[i].std};
        int64_t rows = t[i].n_dims == 1 ? 1 : t[i].ne[1];
        rc = mk_stream_tensor(w, t[i].type, t[i].ne[0], rows, gen_row, &g, (int)threads);
        bytes += rl_type_row_size(t[i].type, t[i].ne[0]) * (uint64_t)rows;
    }
    if (!rc) rc = rl_gguf_writer_finish(w);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc) {
        fprintf(stderr, "ringlm-mkmodel: writing %s failed: %s\n", out, strerror(-rc));
        unlink(out);
    } else {
        printf("%s: %s %s, %u layers, %u tokens, %zu tensors, %.1f MB of weights in %.2f s\n", out, s.name, rule.name,
               s.layers, n_vocab, nt, (double)bytes / 1e6,
               (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
    }
    free(t);
    rl_gguf_writer_free(w);
    rl_gguf_close(vg);
    return rc ? 1 : 0;
}
