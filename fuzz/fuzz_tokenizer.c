/* fuzz_tokenizer.c - libFuzzer target for the tokenizers and detokenizer.
 *
 * Vocabularies: ggml-vocab-llama-spm.gguf and ggml-vocab-gpt-2.gguf from
 * $RL_SHARED_DIR/tokenizer when present, else small synthetic ones. The first input
 * byte picks what to do with the rest:
 *   0: SPM tokenize (bit 3: parse_special, bit 4: add_special)
 *   1: BPE tokenize, and check the pieces give the input back
 *   2: every pre-tokenizer, checking the words cover the text in order
 *   3: bytes as token ids (16 bits each) through the streaming detokenizer
 *   4: chat rendering of the bytes as message contents, every family
 *   5: the bytes as a GGUF file: load its tokenizer, then tokenize and detokenize */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl_tok_internal.h"
#include "rl_unicode.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static rl_tokenizer *spm, *bpe;

static rl_tokenizer *from_file(const char *name)
{
    const char *dir = getenv("RL_SHARED_DIR");
    if (!dir)
        return NULL;
    char path[4096], err[256];
    snprintf(path, sizeof path, "%s/tokenizer/ggml-vocab-%s.gguf", dir, name);
    rl_gguf *g;
    rl_tokenizer *t = NULL;
    if (rl_gguf_open(path, &g, err, sizeof err) != 0)
        return NULL;
    if (rl_tokenizer_load(g, &t, err, sizeof err) != 0)
        t = NULL;
    rl_gguf_close(g);
    return t;
}

/* 256 byte tokens (SPM "<0xXX>" or BPE byte characters), a few pieces, merges. */
static rl_tokenizer *synthetic(int model)
{
    static char text[300][16];
    static rl_gguf_str toks[300];
    static int32_t types[300];
    static float scores[300];
    uint32_t n = 0;
    for (int b = 0; b < 256; b++, n++) {
        if (model == RL_TOK_SPM) {
            snprintf(text[n], 16, "<0x%02X>", b);
            types[n] = RL_TT_BYTE;
        } else {
            uint32_t cp = (uint32_t)b, k = 0;
            if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)) {
                for (int c = 0; c < b; c++)
                    k += !((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174);
                cp = 256 + k;
            }
            text[n][rl_utf8_encode(cp, text[n])] = '\0';
            types[n] = RL_TT_NORMAL;
        }
    }
    const char *extra[] = {"\xE2\x96\x81", "a", "b", "ab", "\342\226\201a", "<|end|>", "<u>"};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++, n++) {
        snprintf(text[n], 16, "%s", extra[i]);
        types[n] = i == 5 ? RL_TT_CONTROL : i == 6 ? RL_TT_USER : RL_TT_NORMAL;
        scores[n] = -(float)i;
    }
    for (uint32_t i = 0; i < n; i++)
        toks[i] = (rl_gguf_str){text[i], strlen(text[i])};
    static rl_gguf_str merges[1] = {{"a b", 3}};
    rl_tok_vocab v = {0};
    v.model = model;
    v.n = n;
    v.tokens = toks;
    v.types = types;
    v.scores = scores;
    v.n_merges = model == RL_TOK_BPE ? 1 : 0;
    v.merges = merges;
    v.bos = v.eos = v.unk = v.pad = v.eot = -1;
    v.add_bos = v.add_eos = v.add_space_prefix = -1;
    rl_tokenizer *t = NULL;
    char err[256];
    if (rl_tok_build(&v, &t, err, sizeof err) != 0)
        abort();
    return t;
}

static void init(void)
{
    if (spm)
        return;
    spm = from_file("llama-spm");
    if (!spm)
        spm = synthetic(RL_TOK_SPM);
    bpe = from_file("gpt-2");
    if (!bpe)
        bpe = synthetic(RL_TOK_BPE);
}

static int32_t *tokenize(const rl_tokenizer *t, const char *s, size_t n, bool add, bool parse, int *count)
{
    int k = rl_tokenize(t, s, n, add, parse, NULL, 0);
    if (k < 0)
        abort();
    int32_t *ids = malloc((size_t)k * sizeof *ids + 1);
    if (rl_tokenize(t, s, n, add, parse, ids, (size_t)k) != k)
        abort();
    for (int i = 0; i < k; i++)
        if (ids[i] < 0 || (uint32_t)ids[i] >= rl_tokenizer_n_vocab(t))
            abort();
    *count = k;
    return ids;
}

static char *pieces(const rl_tokenizer *t, const int32_t *ids, int k, size_t *len)
{
    size_t cap = 64, o = 0;
    char *buf = malloc(cap);
    for (int i = 0; i < k; i++) {
        int m = rl_token_to_piece(t, ids[i], NULL, 0);
        if (m < 0)
            abort();
        if (o + (size_t)m > cap) {
            cap = (o + (size_t)m) * 2;
            buf = realloc(buf, cap);
        }
        if (rl_token_to_piece(t, ids[i], buf + o, (size_t)m) != m)
            abort();
        o += (size_t)m;
    }
    *len = o;
    return buf;
}

static int cover(void *ctx, size_t start, size_t len)
{
    size_t *next = ctx;
    if (start != *next || len == 0)
        abort();
    *next = start + len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    if (size < 1)
        return 0;
    uint8_t op = data[0];
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    char *copy = malloc(n + 1); /* exact-size copy so ASan sees overreads */
    memcpy(copy, s, n);
    int k;
    switch (op & 7) {
    case 0: {
        int32_t *ids = tokenize(spm, copy, n, op & 16, op & 8, &k);
        free(ids);
        break;
    }
    case 1: {
        int32_t *ids = tokenize(bpe, copy, n, false, false, &k);
        size_t len;
        char *back = pieces(bpe, ids, k, &len);
        if (len != n || memcmp(back, copy, n) != 0)
            abort(); /* byte-level BPE is lossless */
        free(back);
        free(ids);
        break;
    }
    case 2:
        for (int p = RL_PRE_GPT2; p <= RL_PRE_DEEPSEEK_CODER; p++) {
            size_t next = 0;
            if (rl_tok_pretokenize((rl_tok_pre)p, copy, n, cover, &next) != 0 || next != n)
                abort();
        }
        break;
    case 3: {
        const rl_tokenizer *t = (op & 8) ? bpe : spm;
        rl_detok d = {0};
        char out[64];
        for (size_t i = 0; i + 1 < n; i += 2) {
            int32_t id = (int32_t)(((uint8_t)copy[i] | (uint8_t)copy[i + 1] << 8) % rl_tokenizer_n_vocab(t));
            int m = rl_detok_push(&d, t, id, out, sizeof out);
            if (m < 0 || d.n_pending > 3)
                abort();
        }
        if (rl_detok_flush(&d, out, sizeof out) < 0)
            abort();
        break;
    }
    case 4: {
        const char *roles[3] = {"system", "user", "assistant"};
        const char *texts[3] = {copy, copy + n / 3, copy + 2 * n / 3};
        size_t lens[3] = {n / 3, n / 3, n - 2 * (n / 3)};
        char out[256];
        for (int tm = RL_CHAT_CHATML; tm <= RL_CHAT_MISTRAL; tm++)
            if (rl_chat_render((rl_chat_tmpl)tm, roles, texts, lens, 3, out, sizeof out) < 0)
                abort();
        (void)rl_chat_detect(copy, n);
        break;
    }
    case 5: {
        rl_gguf *g;
        rl_tokenizer *t;
        char err[256];
        if (rl_gguf_open_mem(copy, n, &g, err, sizeof err) != 0)
            break;
        if (rl_tokenizer_load(g, &t, err, sizeof err) == 0) {
            rl_gguf_close(g); /* the tokenizer must not keep pointers into the file */
            static const char text[] = "Hello  w\xC3\xB6rld <s>\n\xF0\x9F\x98\x80 12345 <|im_end|>";
            int32_t *ids = tokenize(t, text, sizeof text - 1, true, true, &k);
            rl_detok d = {0};
            char out[64];
            for (int i = 0; i < k; i++)
                if (rl_detok_push(&d, t, ids[i], out, sizeof out) < 0)
                    abort();
            (void)rl_tokenizer_is_eog(t, k ? ids[0] : 0);
            free(ids);
            rl_tokenizer_free(t);
        } else {
            rl_gguf_close(g);
        }
        break;
    }
    default:
        break;
    }
    free(copy);
    return 0;
}
