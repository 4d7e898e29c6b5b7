/* rl_tok_build.c - builds a tokenizer from an in-memory vocabulary: token texts,
 * lookup maps, merge ranks, pieces for detokenizing, special and end-of-generation
 * token lists. Everything in the vocabulary is checked (it comes from files). */
#include "rl_tok_internal.h"
#include "rl_err.h"
#include "rl_unicode.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RL_TOK_MAX_VOCAB (1u << 22)
#define RL_TOK_MAX_MERGES (1u << 22)
#define RL_TOK_MAX_TOKLEN 65536u


uint64_t rl_tok_hash(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 0x100000001b3ull;
    }
    return h ^ (h >> 29);
}

static bool tok_eq(const rl_tokenizer *t, int32_t id, const char *p, size_t n)
{
    return t->len[id] == n && memcmp(t->text + t->off[id], p, n) == 0;
}

int32_t rl_tok_map_find(const rl_tok_map *m, const rl_tokenizer *t, const char *p, size_t n)
{
    if (!m->slots || n == 0)
        return -1;
    for (uint64_t i = rl_tok_hash(p, n) & m->mask;; i = (i + 1) & m->mask) {
        int32_t id = m->slots[i];
        if (id < 0)
            return -1;
        if (tok_eq(t, id, p, n))
            return id;
    }
}

/* Insert id; a later token with the same text replaces the earlier one. */
static void map_put(rl_tok_map *m, const rl_tokenizer *t, int32_t id)
{
    const char *p = t->text + t->off[id];
    size_t n = t->len[id];
    for (uint64_t i = rl_tok_hash(p, n) & m->mask;; i = (i + 1) & m->mask) {
        if (m->slots[i] < 0 || tok_eq(t, m->slots[i], p, n)) {
            m->slots[i] = id;
            return;
        }
    }
}

static uint64_t pair_hash(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    return k;
}

const rl_tok_merge *rl_tok_merge_find(const rl_tokenizer *t, int32_t a, int32_t b)
{
    if (!t->merges || a < 0 || b < 0)
        return NULL;
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    for (uint64_t i = pair_hash(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
        const rl_tok_merge *m = &t->merges[i];
        if (m->key == UINT64_MAX)
            return NULL;
        if (m->key == key)
            return m;
    }
}

/* GPT-2 byte-level mapping: printable bytes map to themselves, the rest to U+0100.. */
static uint32_t byte_to_cp(uint8_t b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)
        return b;
    uint32_t k = 0;
    for (uint32_t c = 0; c < b; c++)
        if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174))
            k++;
    return 256 + k;
}

static int cp_to_byte(uint32_t cp)
{
    if (cp < 256)
        return ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || cp >= 174) ? (int)cp : -1;
    for (uint32_t b = 0; b < 256; b++)
        if (byte_to_cp((uint8_t)b) == cp)
            return (int)b;
    return -1;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* "<0xXX>" -> byte value, or -1. */
static int parse_byte_token(const char *p, size_t n)
{
    if (n != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>')
        return -1;
    int h = hexval(p[3]), l = hexval(p[4]);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
}

/* Bytes of token id as it appears in text; writes into out (capacity >= len). */
static size_t make_piece(const rl_tokenizer *t, int32_t id, const int16_t *cp_byte, char *out)
{
    const char *p = t->text + t->off[id];
    size_t n = t->len[id], o = 0;
    uint8_t ty = t->types[id];
    if (ty == RL_TT_CONTROL || ty == RL_TT_UNKNOWN || ty == RL_TT_UNUSED)
        return 0;
    if (ty == RL_TT_USER) {
        memcpy(out, p, n);
        return n;
    }
    if (t->model == RL_TOK_SPM) {
        if (ty == RL_TT_BYTE) {
            out[0] = (char)parse_byte_token(p, n);
            return 1;
        }
        for (size_t i = 0; i < n;) {
            if (i + 3 <= n && memcmp(p + i, "\xE2\x96\x81", 3) == 0) { /* U+2581 */
                out[o++] = ' ';
                i += 3;
            } else {
                out[o++] = p[i++];
            }
        }
        return o;
    }
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = rl_utf8_decode((const uint8_t *)p + i, n - i, &cp, NULL);
        if (k > 0 && cp < 324 && cp_byte[cp] != -1) {
            out[o++] = (char)(uint8_t)cp_byte[cp];
        } else { /* not a mapped character: keep the bytes as they are */
            size_t m = k > 0 ? (size_t)k : (size_t)-k;
            memcpy(out + o, p + i, m);
            o += m;
            k = (int)m;
        }
        i += (size_t)k;
    }
    return o;
}

static int cmp_special(const void *pa, const void *pb, void *ctx)
{
    const rl_tokenizer *t = ctx;
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    uint8_t fa = (uint8_t)t->text[t->off[a]], fb = (uint8_t)t->text[t->off[b]];
    if (fa != fb)
        return fa < fb ? -1 : 1;
    if (t->len[a] != t->len[b])
        return t->len[a] > t->len[b] ? -1 : 1;
    return a < b ? -1 : (a > b);
}

static const char *const eog_texts[] = {
    "<|eot_id|>", "<|eom_id|>", "<|im_end|>", "<|end|>", "<|endoftext|>", "<end_of_turn>",
    "<|EOT|>", "<EOT>", "<|end_of_text|>", "<\357\275\234end\342\226\201of\342\226\201sentence\357\275\234>" /* DeepSeek */,
};

static void add_eog(rl_tokenizer *t, int32_t id)
{
    if (id < 0)
        return;
    for (uint32_t i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id)
            return;
    t->eog[t->n_eog++] = id;
}

static int check_id(int32_t id, uint32_t n, const char *what, char *err, size_t errlen)
{
    if (id < -1 || (id >= 0 && (uint32_t)id >= n))
        return rl_fail(err, errlen, -EINVAL, "tokenizer: %s token id %d out of range (vocabulary of %u)",
                    what, id, n);
    return 0;
}

static int build_merges(rl_tokenizer *t, const rl_tok_vocab *v, char *err, size_t errlen)
{
    if (v->n_merges == 0)
        return 0;
    uint64_t cap = 16;
    while (cap < v->n_merges * 2)
        cap <<= 1;
    t->merges = malloc(cap * sizeof *t->merges);
    if (!t->merges)
        return rl_fail(err, errlen, -ENOMEM, "tokenizer: out of memory for %llu merges",
                    (unsigned long long)v->n_merges);
    for (uint64_t i = 0; i < cap; i++)
        t->merges[i].key = UINT64_MAX;
    t->merge_mask = cap - 1;
    char *buf = NULL;
    size_t bufcap = 0;
    for (uint64_t r = 0; r < v->n_merges; r++) {
        const char *p = v->merges[r].ptr;
        size_t n = v->merges[r].len;
        if (!p || n < 3 || n > 2 * RL_TOK_MAX_TOKLEN)
            continue; /* unusable merge: ignored */
        const char *sp = memchr(p + 1, ' ', n - 1); /* the first part may itself be a space */
        if (!sp || sp == p + n - 1)
            continue;
        size_t ln = (size_t)(sp - p), rn = n - ln - 1;
        int32_t a = rl_tok_map_find(&t->map, t, p, ln), b = rl_tok_map_find(&t->map, t, sp + 1, rn);
        if (a < 0 || b < 0)
            continue;
        if (bufcap < ln + rn) {
            free(buf);
            bufcap = ln + rn;
            buf = malloc(bufcap);
            if (!buf)
                return rl_fail(err, errlen, -ENOMEM, "tokenizer: out of memory");
        }
        memcpy(buf, p, ln);
        memcpy(buf + ln, sp + 1, rn);
        int32_t res = rl_tok_map_find(&t->map, t, buf, ln + rn);
        if (res < 0)
            continue;
        uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
        for (uint64_t i = pair_hash(key) & t->merge_mask;; i = (i + 1) & t->merge_mask) {
            rl_tok_merge *m = &t->merges[i];
            if (m->key == key)
                break; /* duplicate: the first (best) rank stays */
            if (m->key == UINT64_MAX) {
                m->key = key;
                m->rank = (uint32_t)r;
                m->result = res;
                break;
            }
        }
    }
    free(buf);
    return 0;
}

static int build(rl_tokenizer *t, const rl_tok_vocab *v, char *err, size_t errlen)
{
    uint32_t n = v->n;
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (v->tokens[i].len > RL_TOK_MAX_TOKLEN || (!v->tokens[i].ptr && v->tokens[i].len))
            return rl_fail(err, errlen, -EINVAL, "tokenizer: token %u is %llu bytes long", i,
                        (unsigned long long)v->tokens[i].len);
        total += v->tokens[i].len;
    }
    t->text = malloc(total + 1);
    t->off = malloc(n * sizeof *t->off);
    t->len = malloc(n * sizeof *t->len);
    t->scores = malloc(n * sizeof *t->scores);
    t->types = malloc(n);
    t->poff = malloc(n * sizeof *t->poff);
    t->plen = malloc(n * sizeof *t->plen);
    t->piece = malloc(total + 1); /* a piece is never longer than its text */
    uint32_t cap = 16;
    while (cap < (uint64_t)n * 2)
        cap <<= 1;
    t->map.slots = malloc((size_t)cap * sizeof(int32_t));
    t->map.mask = cap - 1;
    t->eog = malloc(sizeof(int32_t) * (2 + sizeof eog_texts / sizeof eog_texts[0]));
    if (!t->text || !t->off || !t->len || !t->scores || !t->types || !t->poff || !t->plen || !t->piece ||
        !t->map.slots || !t->eog)
        return rl_fail(err, errlen, -ENOMEM, "tokenizer: out of memory for %u tokens", n);
    memset(t->map.slots, 0xFF, (size_t)cap * sizeof(int32_t));

    size_t o = 0;
    uint32_t n_special = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (v->tokens[i].len)
            memcpy(t->text + o, v->tokens[i].ptr, v->tokens[i].len);
        t->off[i] = (uint32_t)o;
        t->len[i] = (uint32_t)v->tokens[i].len;
        o += v->tokens[i].len;
        float s = v->scores ? v->scores[i] : 0.0f;
        if (s != s)
            return rl_fail(err, errlen, -EINVAL, "tokenizer: score of token %u is NaN", i);
        t->scores[i] = s;
        int32_t ty = v->types ? v->types[i] : RL_TT_NORMAL;
        if (ty < RL_TT_UNDEFINED || ty > RL_TT_BYTE)
            return rl_fail(err, errlen, -EINVAL, "tokenizer: token %u has invalid type %d", i, ty);
        if (ty == RL_TT_UNDEFINED)
            ty = RL_TT_NORMAL;
        t->types[i] = (uint8_t)ty;
        if (ty == RL_TT_BYTE && v->model == RL_TOK_SPM) {
            int b = parse_byte_token(v->tokens[i].ptr, v->tokens[i].len);
            if (b < 0)
                return rl_fail(err, errlen, -EINVAL, "tokenizer: byte token %u is not of the form <0xXX>", i);
            t->byte_tok[b] = (int32_t)i;
        }
        if ((ty == RL_TT_CONTROL || ty == RL_TT_USER || ty == RL_TT_UNKNOWN) && t->len[i] > 0)
            n_special++;
    }
    /* Lookup map: the types text can turn into (control/unknown/unused never come from text). */
    for (uint32_t i = 0; i < n; i++) {
        uint8_t ty = t->types[i];
        if (t->len[i] > 0 && (ty == RL_TT_NORMAL || ty == RL_TT_USER || ty == RL_TT_BYTE))
            map_put(&t->map, t, (int32_t)i);
    }

    int16_t cp_byte[324];
    memset(cp_byte, -1, sizeof cp_byte);
    for (uint32_t c = 0; c < 324; c++) {
        int b = cp_to_byte(c);
        cp_byte[c] = (int16_t)b;
    }
    if (v->model == RL_TOK_BPE) {
        for (int b = 0; b < 256; b++) {
            char u[4];
            int k = rl_utf8_encode(byte_to_cp((uint8_t)b), u);
            t->byte_tok[b] = rl_tok_map_find(&t->map, t, u, (size_t)k);
            memcpy(t->benc[b], u, (size_t)k); /* k <= 2: the mapped characters are below U+0800 */
            t->benc_len[b] = (uint8_t)k;
        }
    }
    size_t po = 0;
    for (uint32_t i = 0; i < n; i++) {
        t->poff[i] = (uint32_t)po;
        t->plen[i] = (uint32_t)make_piece(t, (int32_t)i, cp_byte, t->piece + po);
        po += t->plen[i];
    }

    t->special = malloc((n_special ? n_special : 1) * sizeof *t->special);
    if (!t->special)
        return rl_fail(err, errlen, -ENOMEM, "tokenizer: out of memory");
    for (uint32_t i = 0; i < n; i++) {
        uint8_t ty = t->types[i];
        if ((ty == RL_TT_CONTROL || ty == RL_TT_USER || ty == RL_TT_UNKNOWN) && t->len[i] > 0)
            t->special[t->n_special++] = (int32_t)i;
    }
    qsort_r(t->special, t->n_special, sizeof *t->special, cmp_special, t);
    uint32_t k = 0;
    for (uint32_t b = 0; b <= 256; b++) {
        while (k < t->n_special && (uint8_t)t->text[t->off[t->special[k]]] < b)
            k++;
        t->special_start[b] = b == 256 ? t->n_special : k;
    }

    add_eog(t, t->eos);
    add_eog(t, t->eot);
    for (size_t e = 0; e < sizeof eog_texts / sizeof eog_texts[0]; e++) {
        for (uint32_t j = t->special_start[(uint8_t)eog_texts[e][0]];
             j < t->special_start[(uint8_t)eog_texts[e][0] + 1]; j++) {
            int32_t id = t->special[j];
            if (tok_eq(t, id, eog_texts[e], strlen(eog_texts[e]))) {
                add_eog(t, id);
                break;
            }
        }
    }
    return build_merges(t, v, err, errlen);
}

int rl_tok_build(const rl_tok_vocab *v, rl_tokenizer **out, char *err, size_t errlen)
{
    if (!v || !out)
        return rl_fail(err, errlen, -EINVAL, "tokenizer: no vocabulary");
    *out = NULL;
    if (v->model != RL_TOK_SPM && v->model != RL_TOK_BPE)
        return rl_fail(err, errlen, -EINVAL, "tokenizer: unsupported model kind %d", v->model);
    if (v->n == 0 || v->n > RL_TOK_MAX_VOCAB || !v->tokens)
        return rl_fail(err, errlen, -EINVAL, "tokenizer: vocabulary size %u out of range (1..%u)", v->n,
                    RL_TOK_MAX_VOCAB);
    if (v->n_merges > RL_TOK_MAX_MERGES || (v->n_merges && !v->merges))
        return rl_fail(err, errlen, -EINVAL, "tokenizer: %llu merges (at most %u)",
                    (unsigned long long)v->n_merges, RL_TOK_MAX_MERGES);
    if (v->model == RL_TOK_BPE && v->n_merges == 0)
        return rl_fail(err, errlen, -EINVAL, "tokenizer: byte-level BPE vocabulary without merges");
    if ((unsigned)v->pre > RL_PRE_DEEPSEEK_CODER)
        return rl_fail(err, errlen, -EINVAL, "tokenizer: invalid pre-tokenizer %d", (int)v->pre);
    int rc;
    if ((rc = check_id(v->bos, v->n, "BOS", err, errlen)) || (rc = check_id(v->eos, v->n, "EOS", err, errlen)) ||
        (rc = check_id(v->unk, v->n, "unknown", err, errlen)) ||
        (rc = check_id(v->pad, v->n, "padding", err, errlen)) ||
        (rc = check_id(v->eot, v->n, "end-of-turn", err, errlen)))
        return rc;
    if (v->chat_template.len > (1u << 24))
        return rl_fail(err, errlen, -EINVAL, "tokenizer: chat template too long");

    rl_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return rl_fail(err, errlen, -ENOMEM, "tokenizer: out of memory");
    t->model = v->model;
    t->pre = v->pre;
    t->n = v->n;
    t->bos = v->bos;
    t->eos = v->eos;
    t->unk = v->unk;
    t->pad = v->pad;
    t->eot = v->eot;
    bool spm = v->model == RL_TOK_SPM;
    t->add_bos = v->add_bos < 0 ? spm : v->add_bos != 0;
    t->add_eos = v->add_eos < 0 ? false : v->add_eos != 0;
    t->add_space_prefix = v->add_space_prefix < 0 ? spm : v->add_space_prefix != 0;
    t->ignore_merges = v->model == RL_TOK_BPE && v->pre == RL_PRE_LLAMA3;
    for (int b = 0; b < 256; b++)
        t->byte_tok[b] = -1;
    if (v->chat_template.ptr) {
        t->chat_template = malloc(v->chat_template.len + 1);
        if (!t->chat_template) {
            rl_tokenizer_free(t);
            return rl_fail(err, errlen, -ENOMEM, "tokenizer: out of memory");
        }
        memcpy(t->chat_template, v->chat_template.ptr, v->chat_template.len);
        t->chat_template[v->chat_template.len] = '\0';
        t->chat_len = v->chat_template.len;
    }
    rc = build(t, v, err, errlen);
    if (rc < 0) {
        rl_tokenizer_free(t);
        return rc;
    }
    if (t->add_bos && t->bos < 0)
        t->add_bos = false;
    if (t->add_eos && t->eos < 0)
        t->add_eos = false;
    *out = t;
    return 0;
}

void rl_tokenizer_free(rl_tokenizer *t)
{
    if (!t)
        return;
    free(t->text);
    free(t->off);
    free(t->len);
    free(t->scores);
    free(t->types);
    free(t->piece);
    free(t->poff);
    free(t->plen);
    free(t->map.slots);
    free(t->merges);
    free(t->special);
    free(t->eog);
    free(t->chat_template);
    free(t);
}
