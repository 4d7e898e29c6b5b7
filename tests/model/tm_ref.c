/* tm_ref.c - the float64 reference forward pass (tests only).
 *
 * Written to read like the paper, with no tricks: every weight is dequantized
 * to double up front, each token is processed alone, attention is a plain
 * softmax over all previous positions, RoPE angles are pos * base^(-2i/d). */
#include "tm_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl_gguf.h"

typedef struct ref_layer {
    double *attn_norm, *ffn_norm, *wq, *wk, *wv, *wo, *w1, *w2, *w3, *bq, *bk, *bv;
} ref_layer;

struct tm_ref {
    uint32_t n_vocab, dim, n_layer, n_head, n_kv, hd, ffn, pos, max_pos;
    double eps, base;
    bool neox;
    double *embd, *out_norm, *out, *freq_factor;
    ref_layer *L;
    double *kcache, *vcache; /* [layer][pos][n_kv*hd] */
    double *x, *xb, *q, *k, *v, *att, *h1, *h3, *logits, *scores;
};

/* Whole tensor as doubles (NULL when absent). */
static double *load(const rl_gguf *g, const char *name, size_t *n_out)
{
    const rl_gguf_tensor *t = rl_gguf_find_tensor(g, name);
    if (!t)
        return NULL;
    size_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++)
        n *= (size_t)t->ne[d];
    float *f = malloc(sizeof(float) * n);
    rl_type_get(t->type)->to_float(t->data, f, (int64_t)n);
    double *o = malloc(sizeof(double) * n);
    for (size_t i = 0; i < n; i++)
        o[i] = f[i];
    free(f);
    if (n_out)
        *n_out = n;
    return o;
}

static uint32_t meta_u32(const rl_gguf *g, const char *arch, const char *k, uint32_t def)
{
    uint32_t v;
    return rl_gguf_get_arch_u32(g, arch, k, &v) ? v : def;
}

tm_ref *tm_ref_open(const char *path)
{
    rl_gguf *g;
    char err[256];
    if (rl_gguf_open(path, &g, err, sizeof err) < 0)
        return NULL;
    rl_types_init();
    tm_ref *r = calloc(1, sizeof(*r));
    rl_gguf_str a;
    rl_gguf_get_str(g, "general.architecture", &a);
    char arch[32];
    snprintf(arch, sizeof arch, "%.*s", (int)a.len, a.ptr);
    r->neox = strcmp(arch, "qwen2") == 0;
    r->dim = meta_u32(g, arch, "embedding_length", 0);
    r->n_layer = meta_u32(g, arch, "block_count", 0);
    r->n_head = meta_u32(g, arch, "attention.head_count", 0);
    r->n_kv = meta_u32(g, arch, "attention.head_count_kv", r->n_head);
    r->ffn = meta_u32(g, arch, "feed_forward_length", 0);
    r->max_pos = meta_u32(g, arch, "context_length", 2048);
    r->hd = r->dim / r->n_head;
    float f;
    r->eps = rl_gguf_get_arch_f32(g, arch, "attention.layer_norm_rms_epsilon", &f) ? f : 1e-5;
    r->base = rl_gguf_get_arch_f32(g, arch, "rope.freq_base", &f) ? f : 10000.0;
    size_t n;
    r->embd = load(g, "token_embd.weight", &n);
    r->n_vocab = (uint32_t)(n / r->dim);
    r->out_norm = load(g, "output_norm.weight", NULL);
    r->out = load(g, "output.weight", NULL);
    if (!r->out) /* tied embeddings */
        r->out = load(g, "token_embd.weight", NULL);
    r->freq_factor = load(g, "rope_freqs.weight", NULL);
    r->L = calloc(r->n_layer, sizeof(ref_layer));
    char k[128];
    for (uint32_t l = 0; l < r->n_layer; l++) {
#define LD(field, s) (snprintf(k, sizeof k, "blk.%u." s, l), r->L[l].field = load(g, k, NULL))
        LD(attn_norm, "attn_norm.weight");
        LD(ffn_norm, "ffn_norm.weight");
        LD(wq, "attn_q.weight");
        LD(wk, "attn_k.weight");
        LD(wv, "attn_v.weight");
        LD(wo, "attn_output.weight");
        LD(w1, "ffn_gate.weight");
        LD(w2, "ffn_down.weight");
        LD(w3, "ffn_up.weight");
        LD(bq, "attn_q.bias");
        LD(bk, "attn_k.bias");
        LD(bv, "attn_v.bias");
#undef LD
    }
    rl_gguf_close(g);
    size_t kvd = (size_t)r->n_kv * r->hd;
    r->kcache = calloc((size_t)r->n_layer * r->max_pos * kvd, sizeof(double));
    r->vcache = calloc((size_t)r->n_layer * r->max_pos * kvd, sizeof(double));
    r->x = calloc(r->dim, sizeof(double));
    r->xb = calloc(r->dim, sizeof(double));
    r->q = calloc(r->dim, sizeof(double));
    r->k = calloc(kvd, sizeof(double));
    r->v = calloc(kvd, sizeof(double));
    r->att = calloc(r->dim, sizeof(double));
    r->h1 = calloc(r->ffn, sizeof(double));
    r->h3 = calloc(r->ffn, sizeof(double));
    r->logits = calloc(r->n_vocab, sizeof(double));
    r->scores = calloc(r->max_pos, sizeof(double));
    return r;
}

void tm_ref_free(tm_ref *r)
{
    if (!r)
        return;
    for (uint32_t l = 0; l < r->n_layer; l++) {
        double **p = (double **)&r->L[l];
        for (size_t i = 0; i < sizeof(ref_layer) / sizeof(double *); i++)
            free(p[i]);
    }
    free(r->L);
    free(r->embd); free(r->out_norm); free(r->out); free(r->freq_factor);
    free(r->kcache); free(r->vcache); free(r->x); free(r->xb); free(r->q); free(r->k); free(r->v);
    free(r->att); free(r->h1); free(r->h3); free(r->logits); free(r->scores);
    free(r);
}

uint32_t tm_ref_n_vocab(const tm_ref *r)
{
    return r->n_vocab;
}

/* ---- building blocks ---- */

static void rmsnorm(double *o, const double *x, const double *w, uint32_t n, double eps)
{
    double ss = 0;
    for (uint32_t i = 0; i < n; i++)
        ss += x[i] * x[i];
    double s = 1.0 / sqrt(ss / n + eps);
    for (uint32_t i = 0; i < n; i++)
        o[i] = x[i] * s * w[i];
}

/* o[r] = sum_i W[r][i] x[i]; W has `rows` rows of n (GGUF: ne0 = n). */
static void matvec(double *o, const double *W, const double *x, uint32_t n, uint32_t rows)
{
    for (uint32_t r = 0; r < rows; r++) {
        double s = 0;
        for (uint32_t i = 0; i < n; i++)
            s += W[(size_t)r * n + i] * x[i];
        o[r] = s;
    }
}

static void rope(const tm_ref *r, double *v, uint32_t n_heads, uint32_t pos)
{
    uint32_t half = r->hd / 2;
    for (uint32_t h = 0; h < n_heads; h++)
        for (uint32_t i = 0; i < half; i++) {
            double theta = pos * pow(r->base, -2.0 * i / r->hd);
            if (r->freq_factor)
                theta /= r->freq_factor[i];
            double *hv = v + h * r->hd;
            uint32_t a = r->neox ? i : 2 * i, b = r->neox ? i + half : 2 * i + 1;
            double x0 = hv[a], x1 = hv[b];
            hv[a] = x0 * cos(theta) - x1 * sin(theta);
            hv[b] = x0 * sin(theta) + x1 * cos(theta);
        }
}

/* ---- the transformer, one token ---- */

const double *tm_ref_step(tm_ref *r, int32_t tok)
{
    uint32_t D = r->dim, hd = r->hd, kvd = r->n_kv * hd, pos = r->pos++;
    memcpy(r->x, r->embd + (size_t)tok * D, sizeof(double) * D);
    for (uint32_t l = 0; l < r->n_layer; l++) {
        const ref_layer *L = &r->L[l];
        /* attention */
        rmsnorm(r->xb, r->x, L->attn_norm, D, r->eps);
        matvec(r->q, L->wq, r->xb, D, D);
        matvec(r->k, L->wk, r->xb, D, kvd);
        matvec(r->v, L->wv, r->xb, D, kvd);
        for (uint32_t i = 0; L->bq && i < D; i++)
            r->q[i] += L->bq[i];
        for (uint32_t i = 0; L->bk && i < kvd; i++) {
            r->k[i] += L->bk[i];
            r->v[i] += L->bv[i];
        }
        rope(r, r->q, r->n_head, pos);
        rope(r, r->k, r->n_kv, pos);
        double *kc = r->kcache + (size_t)l * r->max_pos * kvd, *vc = r->vcache + (size_t)l * r->max_pos * kvd;
        memcpy(kc + (size_t)pos * kvd, r->k, sizeof(double) * kvd);
        memcpy(vc + (size_t)pos * kvd, r->v, sizeof(double) * kvd);
        for (uint32_t h = 0; h < r->n_head; h++) {
            uint32_t kh = h / (r->n_head / r->n_kv);
            const double *q = r->q + h * hd;
            double mx = -INFINITY, sum = 0;
            for (uint32_t t = 0; t <= pos; t++) {
                double s = 0;
                for (uint32_t i = 0; i < hd; i++)
                    s += q[i] * kc[(size_t)t * kvd + kh * hd + i];
                r->scores[t] = s / sqrt((double)hd);
                mx = fmax(mx, r->scores[t]);
            }
            for (uint32_t t = 0; t <= pos; t++)
                sum += (r->scores[t] = exp(r->scores[t] - mx));
            for (uint32_t i = 0; i < hd; i++) {
                double o = 0;
                for (uint32_t t = 0; t <= pos; t++)
                    o += r->scores[t] / sum * vc[(size_t)t * kvd + kh * hd + i];
                r->att[h * hd + i] = o;
            }
        }
        matvec(r->xb, L->wo, r->att, D, D);
        for (uint32_t i = 0; i < D; i++)
            r->x[i] += r->xb[i];
        /* feed-forward: w2(silu(w1 x) * w3 x) */
        rmsnorm(r->xb, r->x, L->ffn_norm, D, r->eps);
        matvec(r->h1, L->w1, r->xb, D, r->ffn);
        matvec(r->h3, L->w3, r->xb, D, r->ffn);
        for (uint32_t i = 0; i < r->ffn; i++)
            r->h1[i] = r->h1[i] / (1.0 + exp(-r->h1[i])) * r->h3[i];
        matvec(r->xb, L->w2, r->h1, r->ffn, D);
        for (uint32_t i = 0; i < D; i++)
            r->x[i] += r->xb[i];
    }
    rmsnorm(r->xb, r->x, r->out_norm, D, r->eps);
    matvec(r->logits, r->out, r->xb, D, r->n_vocab);
    return r->logits;
}
