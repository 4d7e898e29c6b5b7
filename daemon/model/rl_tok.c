/* rl_tok.c - the public tokenizer calls: special-token splitting and dispatch to
 * the SPM or BPE encoder, pieces, end-of-generation tokens, streaming detokenizer. */
#include "rl_tok_internal.h"
#include "rl_unicode.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

#define RL_TOK_MAX_INPUT (16u << 20) /* prompts are far smaller; bounds the scratch memory */

/* The longest special token whose text starts at s and fits in n bytes
 * (user-defined tokens always, control and unknown ones only when they fit in
 * ctl_n bytes; ctl_n 0: none), or -1. */
static int32_t match_special(const rl_tokenizer *t, const char *s, size_t n, size_t ctl_n)
{
    uint8_t b = (uint8_t)s[0];
    for (uint32_t j = t->special_start[b]; j < t->special_start[b + 1]; j++) {
        int32_t id = t->special[j];
        if (t->types[id] != RL_TT_USER && t->len[id] > ctl_n)
            continue;
        if (t->len[id] <= n && memcmp(t->text + t->off[id], s, t->len[id]) == 0)
            return id;
    }
    return -1;
}

static int encode_text(const rl_tokenizer *t, const char *s, size_t n, bool *prev_special, rl_tok_out *o)
{
    if (n == 0)
        return 0;
    int rc;
    if (t->model == RL_TOK_SPM)
        rc = rl_tok_spm_encode(t, s, n, t->add_space_prefix && *prev_special, o);
    else
        rc = rl_tok_bpe_encode(t, s, n, o);
    *prev_special = false;
    return rc;
}

/* Control/unknown tokens match only where allowed: everywhere with parse_special
 * and no spans; inside one of the sorted spans (token wholly within it) otherwise.
 * The text between two matched special tokens is always encoded in one pass. */
static int tokenize_core(const rl_tokenizer *t, const char *text, size_t len, bool add_special,
                         bool parse_special, const rl_tok_span *spans, size_t n_spans,
                         int32_t *out, size_t cap)
{
    if (!t || (!text && len) || (!out && cap) || (n_spans && !spans))
        return -EINVAL;
    if (len > RL_TOK_MAX_INPUT)
        return -E2BIG;
    for (size_t k = 0; k < n_spans; k++)
        if (spans[k].off > len || spans[k].len > len - spans[k].off ||
            (k && spans[k].off < spans[k - 1].off + spans[k - 1].len))
            return -EINVAL;
    rl_tok_out o = {out, cap, 0};
    bool prev_special = true; /* SPM: the first text gets the space prefix */
    if (add_special && t->add_bos)
        rl_tok_emit(&o, t->bos);
    size_t seg = 0, k = 0;
    for (size_t i = 0; i < len;) {
        int32_t id = -1;
        if (t->n_special) {
            size_t ctl_n = parse_special ? len - i : 0; /* how far a control token may reach */
            if (spans) {
                while (k < n_spans && spans[k].off + spans[k].len <= i)
                    k++;
                ctl_n = k < n_spans && spans[k].off <= i ? spans[k].off + spans[k].len - i : 0;
            }
            id = match_special(t, text + i, len - i, ctl_n);
        }
        if (id < 0) {
            i++;
            continue;
        }
        int rc = encode_text(t, text + seg, i - seg, &prev_special, &o);
        if (rc < 0)
            return rc;
        rl_tok_emit(&o, id);
        prev_special = true;
        i += t->len[id];
        seg = i;
    }
    int rc = encode_text(t, text + seg, len - seg, &prev_special, &o);
    if (rc < 0)
        return rc;
    if (add_special && t->add_eos)
        rl_tok_emit(&o, t->eos);
    return o.n > INT_MAX ? -EOVERFLOW : (int)o.n;
}

int rl_tokenize(const rl_tokenizer *t, const char *text, size_t len, bool add_special,
                bool parse_special, int32_t *out, size_t cap)
{
    return tokenize_core(t, text, len, add_special, parse_special, NULL, 0, out, cap);
}

int rl_tokenize_spans(const rl_tokenizer *t, const char *text, size_t len, bool add_special,
                      const rl_tok_span *special_ok, size_t n_spans, int32_t *out, size_t cap)
{
    static const rl_tok_span none = {0, 0};
    return tokenize_core(t, text, len, add_special, true, n_spans ? special_ok : &none, n_spans, out, cap);
}

int rl_token_to_piece(const rl_tokenizer *t, int32_t tok, char *buf, size_t cap)
{
    if (!t || tok < 0 || (uint32_t)tok >= t->n || (!buf && cap))
        return -EINVAL;
    uint32_t n = t->plen[tok];
    if (n && cap)
        memcpy(buf, t->piece + t->poff[tok], n < cap ? n : cap);
    return (int)n;
}

uint32_t rl_tokenizer_n_vocab(const rl_tokenizer *t) { return t ? t->n : 0; }
int32_t rl_tokenizer_bos(const rl_tokenizer *t) { return t ? t->bos : -1; }
int32_t rl_tokenizer_eos(const rl_tokenizer *t) { return t ? t->eos : -1; }

bool rl_tokenizer_adds_bos(const rl_tokenizer *t) { return t && t->add_bos; }

bool rl_tokenizer_is_eog(const rl_tokenizer *t, int32_t tok)
{
    if (!t || tok < 0)
        return false;
    for (uint32_t i = 0; i < t->n_eog; i++)
        if (t->eog[i] == tok)
            return true;
    return false;
}

const char *rl_tokenizer_chat_template(const rl_tokenizer *t, size_t *len)
{
    if (len)
        *len = t && t->chat_template ? t->chat_len : 0;
    return t ? t->chat_template : NULL;
}

/* Decode a ++ b as UTF-8 into out (writing only within cap); returns the bytes
 * needed. A valid but unfinished character at the end is left in *keep unless
 * final; every invalid sequence becomes U+FFFD. */
static size_t detok_scan(const char *a, size_t na, const char *b, size_t nb, bool final, char *out,
                         size_t cap, size_t *keep)
{
    size_t n = na + nb, o = 0;
    *keep = 0;
    for (size_t i = 0; i < n;) {
        uint8_t c[4];
        size_t m = n - i < 4 ? n - i : 4;
        for (size_t k = 0; k < m; k++)
            c[k] = (uint8_t)(i + k < na ? a[i + k] : b[i + k - na]);
        uint32_t cp;
        int incomplete;
        int k = rl_utf8_decode(c, m, &cp, &incomplete);
        const uint8_t *src = c;
        size_t w;
        if (k > 0) {
            w = (size_t)k;
        } else if (incomplete && !final) {
            *keep = n - i;
            break;
        } else {
            src = (const uint8_t *)"\xEF\xBF\xBD";
            w = 3;
            k = -k;
        }
        if (o + w <= cap)
            memcpy(out + o, src, w);
        o += w;
        i += (size_t)k;
    }
    return o;
}

int rl_detok_push(rl_detok *d, const rl_tokenizer *t, int32_t tok, char *out, size_t cap)
{
    if (!d || !t || tok < 0 || (uint32_t)tok >= t->n || (!out && cap) || d->n_pending >= 4)
        return -EINVAL;
    size_t keep;
    size_t need = detok_scan(d->pending, d->n_pending, t->piece + t->poff[tok], t->plen[tok], false, out,
                             cap, &keep);
    if (need > INT_MAX)
        return -EOVERFLOW;
    if (need > cap)
        return (int)need; /* nothing consumed: the caller retries with more room */
    /* keep <= 3: an unfinished character is at most 3 bytes */
    char tail[4];
    size_t total = d->n_pending + t->plen[tok];
    for (size_t k = 0; k < keep; k++) {
        size_t i = total - keep + k;
        tail[k] = i < d->n_pending ? d->pending[i] : t->piece[t->poff[tok] + i - d->n_pending];
    }
    memcpy(d->pending, tail, keep);
    d->n_pending = (uint32_t)keep;
    return (int)need;
}

int rl_detok_flush(rl_detok *d, char *out, size_t cap)
{
    if (!d || (!out && cap) || d->n_pending >= 4)
        return -EINVAL;
    size_t keep;
    size_t need = detok_scan(d->pending, d->n_pending, "", 0, true, out, cap, &keep);
    if (need <= cap)
        d->n_pending = 0;
    return (int)need;
}
