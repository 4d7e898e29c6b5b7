/* rl_tok_load.c - rl_tokenizer_load: reads the tokenizer.* metadata of a GGUF file,
 * checks every key's type and length, and builds the tokenizer from it. */
#include "rl_tok_internal.h"
#include "rl_err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static int get_id_mode(const rl_gguf *g, const char *key, int32_t *out, bool lenient, uint32_t n_vocab,
                       char *err, size_t errlen)
{
    *out = -1;
    if (!rl_gguf_get(g, key))
        return 0;
    int64_t v;
    if (!rl_gguf_get_i64(g, key, &v))
        return rl_fail(err, errlen, -EINVAL, "tokenizer: %s is not an integer", key);
    if (v == -1 || v == (int64_t)UINT32_MAX || (lenient && (v < 0 || v >= (int64_t)n_vocab)))
        return 0;
    if (v < -1 || v > INT32_MAX)
        return rl_fail(err, errlen, -EINVAL, "tokenizer: %s = %lld out of range", key, (long long)v);
    *out = (int32_t)v;
    return 0;
}

/* Optional token id: missing -> -1; present must be an integer. -1 and UINT32_MAX
 * (how converters write "none") give -1; other values are range-checked by
 * rl_tok_build, except in lenient mode (padding: not needed for tokenizing), where
 * any value beyond the vocabulary also means none. */
static int get_id(const rl_gguf *g, const char *key, int32_t *out, char *err, size_t errlen)
{
    return get_id_mode(g, key, out, false, 0, err, errlen);
}

/* Optional bool: missing -> -1 (default), else 0/1. */
static int get_flag(const rl_gguf *g, const char *key, int *out, char *err, size_t errlen)
{
    *out = -1;
    if (!rl_gguf_get(g, key))
        return 0;
    bool b;
    if (!rl_gguf_get_bool(g, key, &b))
        return rl_fail(err, errlen, -EINVAL, "tokenizer: %s is not a bool", key);
    *out = b;
    return 0;
}

static const rl_gguf_kv *get_arr(const rl_gguf *g, const char *key, rl_gguf_vtype et, bool required,
                                 int *rc, char *err, size_t errlen)
{
    const rl_gguf_kv *kv = rl_gguf_get(g, key);
    *rc = 0;
    if (!kv) {
        if (required)
            *rc = rl_fail(err, errlen, -EINVAL, "tokenizer: %s missing", key);
        return NULL;
    }
    if (kv->type != RL_GGUF_ARR || kv->arr_type != et || (et == RL_GGUF_STR && !kv->strs && kv->arr_n) ||
        (et != RL_GGUF_STR && !kv->data && kv->arr_n)) {
        *rc = rl_fail(err, errlen, -EINVAL, "tokenizer: %s is not an array of the expected type", key);
        return NULL;
    }
    return kv;
}

int rl_tokenizer_load(const rl_gguf *g, rl_tokenizer **out, char *err, size_t errlen)
{
    if (!g || !out)
        return rl_fail(err, errlen, -EINVAL, "tokenizer: no file");
    *out = NULL;
    rl_tok_vocab v;
    memset(&v, 0, sizeof v);
    rl_gguf_str model;
    if (!rl_gguf_get(g, "tokenizer.ggml.model"))
        return rl_fail(err, errlen, -EINVAL, "tokenizer: tokenizer.ggml.model missing");
    if (!rl_gguf_get_str(g, "tokenizer.ggml.model", &model))
        return rl_fail(err, errlen, -EINVAL, "tokenizer: tokenizer.ggml.model is not a string");
    if (rl_gguf_str_eq(model, "llama"))
        v.model = RL_TOK_SPM;
    else if (rl_gguf_str_eq(model, "gpt2"))
        v.model = RL_TOK_BPE;
    else
        return rl_fail(err, errlen, -ENOTSUP, "tokenizer: unsupported tokenizer model '%.*s' (llama, gpt2)",
                    (int)(model.len > 64 ? 64 : model.len), model.ptr);

    if (v.model == RL_TOK_BPE) {
        rl_gguf_str pre = {NULL, 0};
        if (rl_gguf_get(g, "tokenizer.ggml.pre") && !rl_gguf_get_str(g, "tokenizer.ggml.pre", &pre))
            return rl_fail(err, errlen, -EINVAL, "tokenizer: tokenizer.ggml.pre is not a string");
        int p = rl_tok_pre_from_name(pre.ptr, pre.len);
        if (p < 0)
            return rl_fail(err, errlen, -ENOTSUP, "tokenizer: unsupported pre-tokenizer '%.*s'",
                        (int)(pre.len > 64 ? 64 : pre.len), pre.ptr);
        v.pre = (rl_tok_pre)p;
    }

    int rc;
    const rl_gguf_kv *toks = get_arr(g, "tokenizer.ggml.tokens", RL_GGUF_STR, true, &rc, err, errlen);
    if (!toks)
        return rc;
    if (toks->arr_n == 0 || toks->arr_n > (1u << 22))
        return rl_fail(err, errlen, -EINVAL, "tokenizer: %llu tokens (1..%u)", (unsigned long long)toks->arr_n,
                    1u << 22);
    v.n = (uint32_t)toks->arr_n;
    v.tokens = toks->strs;

    const rl_gguf_kv *scores = get_arr(g, "tokenizer.ggml.scores", RL_GGUF_F32, false, &rc, err, errlen);
    if (rc)
        return rc;
    const rl_gguf_kv *types = get_arr(g, "tokenizer.ggml.token_type", RL_GGUF_I32, false, &rc, err, errlen);
    if (rc)
        return rc;
    if ((scores && scores->arr_n != v.n) || (types && types->arr_n != v.n))
        return rl_fail(err, errlen, -EINVAL, "tokenizer: %s has %llu entries for %u tokens",
                    scores && scores->arr_n != v.n ? "tokenizer.ggml.scores" : "tokenizer.ggml.token_type",
                    (unsigned long long)(scores && scores->arr_n != v.n ? scores->arr_n : types->arr_n), v.n);
    const rl_gguf_kv *merges = NULL;
    if (v.model == RL_TOK_BPE) {
        merges = get_arr(g, "tokenizer.ggml.merges", RL_GGUF_STR, true, &rc, err, errlen);
        if (!merges)
            return rc;
        v.n_merges = merges->arr_n;
        v.merges = merges->strs;
    }
    if ((rc = get_id(g, "tokenizer.ggml.bos_token_id", &v.bos, err, errlen)) ||
        (rc = get_id(g, "tokenizer.ggml.eos_token_id", &v.eos, err, errlen)) ||
        (rc = get_id(g, "tokenizer.ggml.unknown_token_id", &v.unk, err, errlen)) ||
        (rc = get_id_mode(g, "tokenizer.ggml.padding_token_id", &v.pad, true, v.n, err, errlen)) ||
        (rc = get_id(g, "tokenizer.ggml.eot_token_id", &v.eot, err, errlen)) ||
        (rc = get_flag(g, "tokenizer.ggml.add_bos_token", &v.add_bos, err, errlen)) ||
        (rc = get_flag(g, "tokenizer.ggml.add_eos_token", &v.add_eos, err, errlen)) ||
        (rc = get_flag(g, "tokenizer.ggml.add_space_prefix", &v.add_space_prefix, err, errlen)))
        return rc;
    if (rl_gguf_get(g, "tokenizer.chat_template") &&
        !rl_gguf_get_str(g, "tokenizer.chat_template", &v.chat_template))
        return rl_fail(err, errlen, -EINVAL, "tokenizer: tokenizer.chat_template is not a string");

    /* Copy the fixed-size arrays out: in the file they may be unaligned. */
    float *sc = NULL;
    int32_t *ty = NULL;
    if (scores) {
        sc = malloc((size_t)v.n * sizeof *sc);
        if (!sc)
            return rl_fail(err, errlen, -ENOMEM, "tokenizer: out of memory");
        memcpy(sc, scores->data, (size_t)v.n * sizeof *sc);
        v.scores = sc;
    }
    if (types) {
        ty = malloc((size_t)v.n * sizeof *ty);
        if (!ty) {
            free(sc);
            return rl_fail(err, errlen, -ENOMEM, "tokenizer: out of memory");
        }
        memcpy(ty, types->data, (size_t)v.n * sizeof *ty);
        v.types = ty;
    }
    rc = rl_tok_build(&v, out, err, errlen);
    free(sc);
    free(ty);
    return rc;
}
