/* rl_tok_pre.c - byte-level BPE pre-tokenizers, written by hand.
 *
 * Each rule set of tokenizer.ggml.pre is a list of regular expressions applied in
 * turn: every expression splits each current segment into its matches and the gaps
 * between them (a segment is matched on its own, so its end acts as the end of the
 * text). Instead of a regex engine, each expression is a small matcher that returns
 * the length of the match starting at a given character (0: none), mirroring the
 * expression's alternation order and greedy/backtracking behaviour. */
#include "rl_tok_internal.h"
#include "rl_unicode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct pre_text {
    uint32_t *cp;     /* codepoints (invalid bytes read as U+FFFD) */
    uint8_t *fl;      /* class flags */
    size_t *boff;     /* byte offset of each codepoint, plus the end */
    uint8_t *cut;     /* cut[i]: a segment starts at codepoint i */
    size_t m;
} pre_text;

#define IS_L(x, i) ((x)->fl[i] & RL_UC_LETTER)
#define IS_N(x, i) ((x)->fl[i] & RL_UC_NUMBER)
#define IS_P(x, i) ((x)->fl[i] & RL_UC_PUNCT)
#define IS_W(x, i) ((x)->fl[i] & RL_UC_SPACE)
#define IS_NL(x, i) ((x)->cp[i] == '\r' || (x)->cp[i] == '\n')
/* [^\s\p{L}\p{N}] */
#define IS_OTHER(x, i) (!((x)->fl[i] & (RL_UC_LETTER | RL_UC_NUMBER | RL_UC_SPACE)))

typedef size_t (*matcher)(const pre_text *x, size_t i, size_t end);

static size_t run(const pre_text *x, size_t i, size_t end, uint32_t flag)
{
    size_t j = i;
    while (j < end && (x->fl[j] & flag))
        j++;
    return j - i;
}

static size_t run_other(const pre_text *x, size_t i, size_t end)
{
    size_t j = i;
    while (j < end && IS_OTHER(x, j))
        j++;
    return j - i;
}

static int lower(uint32_t c)
{
    return c >= 'A' && c <= 'Z' ? (int)(c + 32) : (int)c;
}

/* 's 't 're 've 'm 'll 'd (optionally case-insensitive) at i: length or 0. */
static size_t contraction(const pre_text *x, size_t i, size_t end, bool icase)
{
    if (x->cp[i] != '\'' || i + 1 >= end)
        return 0;
    int a = icase ? lower(x->cp[i + 1]) : (int)x->cp[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd')
        return 2;
    if (i + 2 >= end)
        return 0;
    int b = icase ? lower(x->cp[i + 2]) : (int)x->cp[i + 2];
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l'))
        return 3;
    return 0;
}

/* \s+(?!\S)|\s+ at a whitespace character. */
static size_t spaces(const pre_text *x, size_t i, size_t end)
{
    size_t r = run(x, i, end, RL_UC_SPACE);
    if (i + r < end && r > 1)
        return r - 1; /* leave the last space to the word that follows */
    return r;
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static size_t m_gpt2(const pre_text *x, size_t i, size_t end)
{
    size_t k = contraction(x, i, end, false);
    if (k)
        return k;
    size_t j = i + (x->cp[i] == ' ' && i + 1 < end);
    if (IS_L(x, j))
        return j - i + run(x, j, end, RL_UC_LETTER);
    if (IS_N(x, j))
        return j - i + run(x, j, end, RL_UC_NUMBER);
    if (IS_OTHER(x, j))
        return j - i + run_other(x, j, end);
    return spaces(x, i, end);
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,D}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 * \s*[\r\n]+|\s+(?!\S)|\s+   with D = 3 (llama3) or 1 (qwen2). */
static size_t m_llama3_common(const pre_text *x, size_t i, size_t end, size_t maxd)
{
    size_t k = contraction(x, i, end, true);
    if (k)
        return k;
    if (IS_L(x, i))
        return run(x, i, end, RL_UC_LETTER);
    if (!IS_NL(x, i) && !IS_N(x, i) && i + 1 < end && IS_L(x, i + 1))
        return 1 + run(x, i + 1, end, RL_UC_LETTER);
    if (IS_N(x, i)) {
        size_t r = run(x, i, end, RL_UC_NUMBER);
        return r < maxd ? r : maxd;
    }
    size_t j = i + (x->cp[i] == ' ' && i + 1 < end);
    if (IS_OTHER(x, j)) {
        j += run_other(x, j, end);
        while (j < end && IS_NL(x, j))
            j++;
        return j - i;
    }
    /* at whitespace: \s*[\r\n]+ ends after the run's last newline */
    size_t r = run(x, i, end, RL_UC_SPACE);
    for (size_t q = i + r; q > i; q--)
        if (IS_NL(x, q - 1))
            return q - i;
    return spaces(x, i, end);
}

static size_t m_llama3(const pre_text *x, size_t i, size_t end) { return m_llama3_common(x, i, end, 3); }
static size_t m_qwen2(const pre_text *x, size_t i, size_t end) { return m_llama3_common(x, i, end, 1); }

/* [\r\n] */
static size_t m_newline(const pre_text *x, size_t i, size_t end) { return IS_NL(x, i) ? 1 : 0; }
/* \p{N} */
static size_t m_digit1(const pre_text *x, size_t i, size_t end) { return IS_N(x, i) ? 1 : 0; }
/* \p{N}+ */
static size_t m_digits(const pre_text *x, size_t i, size_t end) { return run(x, i, end, RL_UC_NUMBER); }

/* \s?X+ for a flag class X */
static size_t opt_space_run(const pre_text *x, size_t i, size_t end, uint32_t flag)
{
    if (x->fl[i] & flag)
        return run(x, i, end, flag);
    if (IS_W(x, i) && i + 1 < end && (x->fl[i + 1] & flag))
        return 1 + run(x, i + 1, end, flag);
    return 0;
}
static size_t m_space_letters(const pre_text *x, size_t i, size_t end) { return opt_space_run(x, i, end, RL_UC_LETTER); }
static size_t m_space_punct(const pre_text *x, size_t i, size_t end) { return opt_space_run(x, i, end, RL_UC_PUNCT); }
/* deepseek-llm's letter class is a long list of cased-letter ranges: cased letters here. */
static size_t m_space_cased(const pre_text *x, size_t i, size_t end) { return opt_space_run(x, i, end, RL_UC_CASED); }

static bool is_cjk(uint32_t c) /* [一-龥ࠀ-一가-퟿] */
{
    return (c >= 0x4E00 && c <= 0x9FA5) || (c >= 0x0800 && c <= 0x4E00) || (c >= 0xAC00 && c <= 0xD7FF);
}
static size_t m_cjk(const pre_text *x, size_t i, size_t end)
{
    size_t j = i;
    while (j < end && is_cjk(x->cp[j]))
        j++;
    return j - i;
}

static bool is_ds_punct(uint32_t c) /* [!-/:-~！-／：-～‘-‟　-。] */
{
    return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x7E) || (c >= 0xFF01 && c <= 0xFF0F) ||
           (c >= 0xFF1A && c <= 0xFF5E) || (c >= 0x2018 && c <= 0x201F) || (c >= 0x3000 && c <= 0x3002);
}
static size_t m_ds_punct(const pre_text *x, size_t i, size_t end)
{
    size_t j = i + (IS_W(x, i) && i + 1 < end && is_ds_punct(x->cp[i + 1]));
    size_t k = j;
    while (k < end && is_ds_punct(x->cp[k]))
        k++;
    return k > j ? k - i : 0;
}

static bool is_falcon_punct(const pre_text *x, size_t i) /* [\p{P}\$\+<=>\^~\|`] */
{
    uint32_t c = x->cp[i];
    return IS_P(x, i) || c == '$' || c == '+' || c == '<' || c == '=' || c == '>' || c == '^' || c == '~' ||
           c == '|' || c == '`';
}
static size_t m_falcon_punct(const pre_text *x, size_t i, size_t end)
{
    size_t j = i;
    while (j < end && is_falcon_punct(x, j))
        j++;
    return j - i;
}
/* [0-9][0-9][0-9] */
static size_t m_three_digits(const pre_text *x, size_t i, size_t end)
{
    if (i + 3 > end)
        return 0;
    for (size_t k = i; k < i + 3; k++)
        if (x->cp[k] < '0' || x->cp[k] > '9')
            return 0;
    return 3;
}

/* Split every segment by the matches of f (leftmost, then after the match). */
static void stage(pre_text *x, matcher f)
{
    size_t a = 0;
    while (a < x->m) {
        size_t b = a + 1;
        while (b < x->m && !x->cut[b])
            b++;
        for (size_t i = a; i < b;) {
            size_t k = f(x, i, b);
            if (k == 0) {
                i++;
                continue;
            }
            x->cut[i] = 1;
            if (i + k < b)
                x->cut[i + k] = 1;
            i += k;
        }
        a = b;
    }
}

/* \s+$ : the whitespace at the end of each segment. */
static void stage_trailing_space(pre_text *x)
{
    size_t a = 0;
    while (a < x->m) {
        size_t b = a + 1;
        while (b < x->m && !x->cut[b])
            b++;
        size_t i = b;
        while (i > a && IS_W(x, i - 1))
            i--;
        if (i < b)
            x->cut[i] = 1;
        a = b;
    }
}

int rl_tok_pre_from_name(const char *name, size_t len)
{
    static const struct { const char *name; rl_tok_pre pre; } names[] = {
        {"default", RL_PRE_GPT2}, {"gpt-2", RL_PRE_GPT2}, {"gpt2", RL_PRE_GPT2}, {"mpt", RL_PRE_GPT2},
        {"olmo", RL_PRE_GPT2}, {"llama-bpe", RL_PRE_LLAMA3}, {"llama3", RL_PRE_LLAMA3},
        {"qwen2", RL_PRE_QWEN2}, {"stablelm2", RL_PRE_QWEN2}, {"starcoder", RL_PRE_STARCODER},
        {"refact", RL_PRE_STARCODER}, {"smollm", RL_PRE_STARCODER}, {"falcon", RL_PRE_FALCON},
        {"deepseek-llm", RL_PRE_DEEPSEEK_LLM}, {"deepseek-coder", RL_PRE_DEEPSEEK_CODER},
    };
    if (!name || len == 0)
        return RL_PRE_GPT2;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == len && memcmp(names[i].name, name, len) == 0)
            return (int)names[i].pre;
    return -1;
}

static void split(pre_text *x, rl_tok_pre pre)
{
    switch (pre) {
    case RL_PRE_GPT2:
        stage(x, m_gpt2);
        break;
    case RL_PRE_LLAMA3:
        stage(x, m_llama3);
        break;
    case RL_PRE_QWEN2:
        stage(x, m_qwen2);
        break;
    case RL_PRE_STARCODER:
        stage(x, m_digit1);
        stage(x, m_gpt2);
        break;
    case RL_PRE_FALCON:
        stage(x, m_falcon_punct);
        stage(x, m_gpt2);
        stage(x, m_three_digits);
        break;
    case RL_PRE_DEEPSEEK_LLM:
        stage(x, m_newline);
        stage(x, m_space_cased);
        stage(x, m_ds_punct);
        stage_trailing_space(x);
        stage(x, m_cjk);
        stage(x, m_digits);
        break;
    case RL_PRE_DEEPSEEK_CODER:
        stage(x, m_newline);
        stage(x, m_space_letters);
        stage(x, m_space_punct);
        stage(x, m_cjk);
        stage(x, m_digit1);
        break;
    }
}

int rl_tok_pretokenize(rl_tok_pre pre, const char *s, size_t n, rl_tok_word_fn fn, void *ctx)
{
    if (n == 0)
        return 0;
    pre_text x = {0};
    x.cp = malloc(n * sizeof *x.cp);
    x.fl = malloc(n);
    x.boff = malloc((n + 1) * sizeof *x.boff);
    x.cut = calloc(n + 1, 1);
    int rc = 0;
    if (!x.cp || !x.fl || !x.boff || !x.cut) {
        rc = -ENOMEM;
        goto out;
    }
    for (size_t o = 0; o < n;) {
        uint32_t c;
        int k = rl_utf8_decode((const uint8_t *)s + o, n - o, &c, NULL);
        if (k < 0)
            k = 1; /* an invalid byte stands alone (as U+FFFD) */
        x.cp[x.m] = c;
        x.fl[x.m] = (uint8_t)rl_unicode_flags(c);
        x.boff[x.m++] = o;
        o += (size_t)k;
    }
    x.boff[x.m] = n;
    x.cut[0] = 1;
    split(&x, pre);
    for (size_t a = 0; a < x.m && rc == 0;) {
        size_t b = a + 1;
        while (b < x.m && !x.cut[b])
            b++;
        rc = fn(ctx, x.boff[a], x.boff[b] - x.boff[a]);
        a = b;
    }
out:
    free(x.cp);
    free(x.fl);
    free(x.boff);
    free(x.cut);
    return rc;
}
