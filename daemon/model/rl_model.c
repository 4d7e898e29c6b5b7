/* rl_model.c - load a Llama/Qwen2 model from GGUF and check it completely. */
#include "rl_model.h"
#include "rl_err.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RL_MAX_HEAD_DIM 1024


void rl_weight_row(const rl_weight *w, int64_t row, float *dst)
{
    size_t rb = rl_type_row_size(w->type, w->ne0);
    rl_type_get(w->type)->to_float((const uint8_t *)w->data + (size_t)row * rb, dst, w->ne0);
}

/* A matrix usable by the kernels: known type with vec_dot, shape ne0 x ne1. */
static int get_weight(rl_model *m, const char *name, int64_t ne0, int64_t ne1, rl_weight *out,
                      bool optional, char *err, size_t errlen)
{
    const rl_gguf_tensor *t = rl_gguf_find_tensor(m->gguf, name);
    if (!t) {
        if (optional)
            return 1;
        return rl_fail(err, errlen, -EINVAL, "tensor %s is missing", name);
    }
    const rl_type_traits *tt = rl_type_get(t->type);
    if (!tt || !tt->name)
        return rl_fail(err, errlen, -ENOTSUP, "tensor %s has unknown type %d", name, (int)t->type);
    if (!tt->supported || !tt->vec_dot || !tt->to_float)
        return rl_fail(err, errlen, -ENOTSUP, "tensor %s has unsupported type %s", name, tt->name);
    const rl_type_traits *vt = rl_type_get(tt->vec_dot_type);
    if (!vt || (tt->vec_dot_type != RL_TYPE_F32 && !vt->from_float))
        return rl_fail(err, errlen, -ENOTSUP, "tensor %s: type %s has no activation format", name, tt->name);
    if (t->n_dims != 2 || t->ne[0] != ne0 || t->ne[1] != ne1)
        return rl_fail(err, errlen, -EINVAL, "tensor %s has shape [%lld, %lld] (%u dims), expected [%lld, %lld]",
                    name, (long long)t->ne[0], (long long)t->ne[1], t->n_dims, (long long)ne0, (long long)ne1);
    size_t rb = rl_type_row_size(t->type, ne0);
    if (rb == 0 || rl_type_row_size(tt->vec_dot_type, ne0) == 0)
        return rl_fail(err, errlen, -EINVAL, "tensor %s: row of %lld is not a whole number of %s blocks",
                    name, (long long)ne0, tt->name);
    if (t->nbytes < rb * (uint64_t)ne1 || !t->data)
        return rl_fail(err, errlen, -EINVAL, "tensor %s: data is shorter than its shape", name);
    *out = (rl_weight){t->data, t->type, ne0, ne1};
    m->weight_bytes += rb * (uint64_t)ne1;
    return 0;
}

/* A vector of n values converted to float (norms, biases). */
static int get_vector(rl_model *m, const char *name, int64_t n, float **out, bool optional, char *err,
                      size_t errlen)
{
    *out = NULL;
    const rl_gguf_tensor *t = rl_gguf_find_tensor(m->gguf, name);
    if (!t) {
        if (optional)
            return 1;
        return rl_fail(err, errlen, -EINVAL, "tensor %s is missing", name);
    }
    const rl_type_traits *tt = rl_type_get(t->type);
    if (!tt || !tt->name || !tt->supported || !tt->to_float)
        return rl_fail(err, errlen, -ENOTSUP, "tensor %s has unsupported type %d", name, (int)t->type);
    int64_t cnt = 1;
    for (uint32_t d = 0; d < t->n_dims; d++)
        cnt *= t->ne[d];
    if (t->n_dims < 1 || t->n_dims > 2 || t->ne[0] != n || cnt != n)
        return rl_fail(err, errlen, -EINVAL, "tensor %s has shape [%lld...] (%u dims), expected [%lld]", name,
                    (long long)t->ne[0], t->n_dims, (long long)n);
    size_t rb = rl_type_row_size(t->type, n);
    if (rb == 0 || t->nbytes < rb || !t->data)
        return rl_fail(err, errlen, -EINVAL, "tensor %s: bad size", name);
    *out = malloc(sizeof(float) * (size_t)n);
    if (!*out)
        return rl_fail(err, errlen, -ENOMEM, "out of memory");
    tt->to_float(t->data, *out, n);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite((*out)[i]))
            return rl_fail(err, errlen, -EINVAL, "tensor %s holds a non-finite value", name);
    m->weight_bytes += rb;
    return 0;
}

static int read_hparams(rl_model *m, char *err, size_t errlen)
{
    const rl_gguf *g = m->gguf;
    rl_model_hparams *hp = &m->hp;
    rl_gguf_str s;
    if (!rl_gguf_get_str(g, "general.architecture", &s))
        return rl_fail(err, errlen, -EINVAL, "general.architecture is missing");
    if (rl_gguf_str_eq(s, "llama"))
        strcpy(hp->arch, "llama");
    else if (rl_gguf_str_eq(s, "qwen2"))
        strcpy(hp->arch, "qwen2");
    else
        return rl_fail(err, errlen, -ENOTSUP, "unsupported architecture '%.*s' (llama and qwen2 are)",
                    (int)(s.len > 32 ? 32 : s.len), s.ptr);
    hp->rope_neox = strcmp(hp->arch, "qwen2") == 0;
    if (rl_gguf_get_str(g, "general.name", &s)) {
        size_t n = s.len < sizeof(hp->name) - 1 ? s.len : sizeof(hp->name) - 1;
        memcpy(hp->name, s.ptr, n);
        hp->name[n] = 0;
    }
    const char *a = hp->arch;
    if (!rl_gguf_get_arch_u32(g, a, "embedding_length", &hp->n_embd) ||
        !rl_gguf_get_arch_u32(g, a, "block_count", &hp->n_layer) ||
        !rl_gguf_get_arch_u32(g, a, "feed_forward_length", &hp->n_ff) ||
        !rl_gguf_get_arch_u32(g, a, "attention.head_count", &hp->n_head))
        return rl_fail(err, errlen, -EINVAL, "%s: embedding_length, block_count, feed_forward_length or "
                    "attention.head_count is missing", a);
    if (!rl_gguf_get_arch_u32(g, a, "attention.head_count_kv", &hp->n_head_kv))
        hp->n_head_kv = hp->n_head;
    if (!rl_gguf_get_arch_u32(g, a, "context_length", &hp->n_ctx_train))
        hp->n_ctx_train = 2048;
    if (!rl_gguf_get_arch_f32(g, a, "attention.layer_norm_rms_epsilon", &hp->rms_eps))
        hp->rms_eps = 1e-5f;
    if (!rl_gguf_get_arch_f32(g, a, "rope.freq_base", &hp->rope_base))
        hp->rope_base = 10000.f;
    hp->rope_scale = 1.f;
    if (rl_gguf_get_str(g, "llama.rope.scaling.type", &s) || rl_gguf_get_str(g, "qwen2.rope.scaling.type", &s)) {
        float f;
        if (rl_gguf_str_eq(s, "linear") && rl_gguf_get_arch_f32(g, a, "rope.scaling.factor", &f) && f > 0)
            hp->rope_scale = f;
    }
    if (hp->n_embd == 0 || hp->n_embd > 65536 || hp->n_layer == 0 || hp->n_layer > 1024 ||
        hp->n_ff == 0 || hp->n_ff > 1 << 20 || hp->n_head == 0 || hp->n_head > 1024 ||
        hp->n_head_kv == 0 || hp->n_head % hp->n_head_kv != 0 || hp->n_embd % hp->n_head != 0)
        return rl_fail(err, errlen, -EINVAL, "inconsistent sizes: n_embd %u, n_layer %u, n_ff %u, n_head %u, n_head_kv %u",
                    hp->n_embd, hp->n_layer, hp->n_ff, hp->n_head, hp->n_head_kv);
    hp->head_dim = hp->n_embd / hp->n_head;
    uint32_t kl;
    if (rl_gguf_get_arch_u32(g, a, "attention.key_length", &kl) && kl != hp->head_dim)
        return rl_fail(err, errlen, -ENOTSUP, "attention.key_length %u != n_embd/n_head %u", kl, hp->head_dim);
    if (rl_gguf_get_arch_u32(g, a, "rope.dimension_count", &kl) && kl != hp->head_dim)
        return rl_fail(err, errlen, -ENOTSUP, "partial RoPE (rope.dimension_count %u, head %u)", kl, hp->head_dim);
    if (hp->head_dim % 2 || hp->head_dim > RL_MAX_HEAD_DIM)
        return rl_fail(err, errlen, -EINVAL, "head dimension %u must be even and <= %d", hp->head_dim, RL_MAX_HEAD_DIM);
    if (!(hp->rms_eps > 0 && hp->rms_eps < 1) || !(hp->rope_base > 1 && isfinite(hp->rope_base)) ||
        !isfinite(hp->rope_scale))
        return rl_fail(err, errlen, -EINVAL, "bad rms epsilon %g or rope base %g", hp->rms_eps, hp->rope_base);
    if (hp->n_ctx_train == 0)
        hp->n_ctx_train = 2048;
    return 0;
}

/* Angular frequencies: base^(-2i/d), divided by rope_freqs.weight factors
 * (Llama 3 long-context scaling) when present. */
static int rope_setup(rl_model *m, char *err, size_t errlen)
{
    int half = (int)m->hp.head_dim / 2;
    m->rope_inv_freq = malloc(sizeof(float) * (size_t)half);
    if (!m->rope_inv_freq)
        return rl_fail(err, errlen, -ENOMEM, "out of memory");
    float *factors = NULL;
    int rc = get_vector(m, "rope_freqs.weight", half, &factors, true, err, errlen);
    if (rc < 0)
        return rc;
    /* Llama 3 scaling given as metadata (when no rope_freqs tensor carries it):
     * long wavelengths slowed by `factor`, short ones kept, a smooth ramp between. */
    float l3_factor = 0, l3_lo = 1, l3_hi = 4, l3_ctx = 8192;
    rl_gguf_str st;
    char key[64];
    snprintf(key, sizeof key, "%s.rope.scaling.type", m->hp.arch);
    if (!factors && rl_gguf_get_str(m->gguf, key, &st) && rl_gguf_str_eq(st, "llama3")) {
        const char *a = m->hp.arch;
        if (!rl_gguf_get_arch_f32(m->gguf, a, "rope.scaling.factor", &l3_factor) || !(l3_factor >= 1) ||
            (rl_gguf_get_arch_f32(m->gguf, a, "rope.scaling.low_freq_factor", &l3_lo), !(l3_lo > 0)) ||
            (rl_gguf_get_arch_f32(m->gguf, a, "rope.scaling.high_freq_factor", &l3_hi), !(l3_hi > l3_lo)) ||
            (rl_gguf_get_arch_f32(m->gguf, a, "rope.scaling.original_context_length", &l3_ctx), !(l3_ctx > 0)))
            return rl_fail(err, errlen, -EINVAL, "llama3 rope scaling needs factor >= 1 and low < high frequency factors");
    }
    for (int i = 0; i < half; i++) {
        double f = pow(m->hp.rope_base, -2.0 * i / (double)m->hp.head_dim) / m->hp.rope_scale;
        if (l3_factor > 0) {
            double wavelen = 2 * M_PI / f, lo_wl = l3_ctx / l3_lo, hi_wl = l3_ctx / l3_hi;
            if (wavelen > lo_wl) {
                f /= l3_factor;
            } else if (wavelen >= hi_wl) {
                double smooth = (l3_ctx / wavelen - l3_lo) / (l3_hi - l3_lo);
                f = (1 - smooth) * f / l3_factor + smooth * f;
            }
        }
        if (factors) {
            if (!(factors[i] > 0)) {
                free(factors);
                return rl_fail(err, errlen, -EINVAL, "rope_freqs.weight holds a non-positive factor");
            }
            f /= factors[i];
        }
        m->rope_inv_freq[i] = (float)f;
    }
    free(factors);
    return 0;
}

static int load_layers(rl_model *m, char *err, size_t errlen)
{
    const rl_model_hparams *hp = &m->hp;
    int64_t E = hp->n_embd, Q = (int64_t)hp->n_head * hp->head_dim, KV = (int64_t)hp->n_head_kv * hp->head_dim;
    m->layers = calloc(hp->n_layer, sizeof(rl_layer));
    if (!m->layers)
        return rl_fail(err, errlen, -ENOMEM, "out of memory");
    char nm[128];
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        rl_layer *L = &m->layers[l];
        int rc;
#define W(field, suffix, n0, n1)                                                              \
        snprintf(nm, sizeof nm, "blk.%u." suffix ".weight", l);                           \
        if ((rc = get_weight(m, nm, n0, n1, &L->field, false, err, errlen)) < 0) return rc;
#define V(field, suffix, n, opt)                                                              \
        snprintf(nm, sizeof nm, "blk.%u." suffix, l);                                      \
        if ((rc = get_vector(m, nm, n, &L->field, opt, err, errlen)) < 0) return rc;
        V(attn_norm, "attn_norm.weight", E, false)
        V(ffn_norm, "ffn_norm.weight", E, false)
        W(wq, "attn_q", E, Q)
        W(wk, "attn_k", E, KV)
        W(wv, "attn_v", E, KV)
        W(wo, "attn_output", Q, E)
        W(w_gate, "ffn_gate", E, hp->n_ff)
        W(w_up, "ffn_up", E, hp->n_ff)
        W(w_down, "ffn_down", hp->n_ff, E)
        V(bq, "attn_q.bias", Q, true)
        V(bk, "attn_k.bias", KV, true)
        V(bv, "attn_v.bias", KV, true)
#undef W
#undef V
    }
    return 0;
}

static void pick_main_type(rl_model *m)
{
    uint64_t bytes[RL_TYPE_COUNT] = {0};
    for (uint32_t l = 0; l < m->hp.n_layer; l++) {
        const rl_weight *ws[] = {&m->layers[l].wq, &m->layers[l].wk, &m->layers[l].wv, &m->layers[l].wo,
                                 &m->layers[l].w_gate, &m->layers[l].w_up, &m->layers[l].w_down};
        for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++)
            bytes[ws[i]->type] += rl_type_row_size(ws[i]->type, ws[i]->ne0) * (uint64_t)ws[i]->ne1;
    }
    int best = 0;
    for (int t = 1; t < RL_TYPE_COUNT; t++)
        if (bytes[t] > bytes[best])
            best = t;
    m->main_type = (rl_type)best;
}

int rl_model_from_gguf(rl_gguf *g, rl_model **out, char *err, size_t errlen)
{
    *out = NULL;
    rl_types_init();
    rl_model *m = calloc(1, sizeof(*m));
    if (!m)
        return rl_fail(err, errlen, -ENOMEM, "out of memory");
    m->gguf = g;
    int rc = read_hparams(m, err, errlen);
    if (rc < 0)
        goto bad;
    const rl_gguf_tensor *te = rl_gguf_find_tensor(g, "token_embd.weight");
    if (!te) {
        rc = rl_fail(err, errlen, -EINVAL, "tensor token_embd.weight is missing");
        goto bad;
    }
    if (te->n_dims != 2 || te->ne[1] <= 0 || te->ne[1] > (1 << 24)) {
        rc = rl_fail(err, errlen, -EINVAL, "token_embd.weight has a bad shape");
        goto bad;
    }
    m->hp.n_vocab = (uint32_t)te->ne[1];
    if ((rc = get_weight(m, "token_embd.weight", m->hp.n_embd, m->hp.n_vocab, &m->tok_embd, false, err, errlen)) < 0)
        goto bad;
    rc = get_weight(m, "output.weight", m->hp.n_embd, m->hp.n_vocab, &m->output, true, err, errlen);
    if (rc < 0)
        goto bad;
    if (rc == 1) /* tied embeddings: the output projection shares token_embd */
        m->output = m->tok_embd;
    if ((rc = get_vector(m, "output_norm.weight", m->hp.n_embd, &m->output_norm, false, err, errlen)) < 0)
        goto bad;
    if ((rc = load_layers(m, err, errlen)) < 0 || (rc = rope_setup(m, err, errlen)) < 0)
        goto bad;
    pick_main_type(m);
    *out = m;
    return 0;
bad:
    m->gguf = NULL; /* the caller keeps g on failure */
    rl_model_free(m);
    return rc;
}

int rl_model_load(const char *path, rl_model **out, char *err, size_t errlen)
{
    rl_gguf *g = NULL;
    int rc = rl_gguf_open(path, &g, err, errlen);
    if (rc < 0)
        return rc;
    rc = rl_model_from_gguf(g, out, err, errlen);
    if (rc < 0)
        rl_gguf_close(g);
    return rc;
}

void rl_model_free(rl_model *m)
{
    if (!m)
        return;
    if (m->layers) {
        for (uint32_t l = 0; l < m->hp.n_layer; l++) {
            rl_layer *L = &m->layers[l];
            free(L->attn_norm);
            free(L->ffn_norm);
            free(L->bq);
            free(L->bk);
            free(L->bv);
        }
        free(m->layers);
    }
    free(m->output_norm);
    free(m->rope_inv_freq);
    if (m->gguf)
        rl_gguf_close(m->gguf);
    free(m);
}
