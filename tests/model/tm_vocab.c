/* tm_vocab.c - a minimal SentencePiece vocabulary for tests (longest match). */
#include "tm_util.h"

#include <stdlib.h>
#include <string.h>

#include "rl_gguf.h"

struct tm_vocab {
    rl_gguf *g;
    const rl_gguf_kv *tokens;
};

tm_vocab *tm_vocab_open(const char *path)
{
    char err[256];
    tm_vocab *v = calloc(1, sizeof(*v));
    if (rl_gguf_open(path, &v->g, err, sizeof err) < 0) {
        free(v);
        return NULL;
    }
    v->tokens = rl_gguf_get(v->g, "tokenizer.ggml.tokens");
    if (!v->tokens || !v->tokens->strs) {
        tm_vocab_free(v);
        return NULL;
    }
    return v;
}

void tm_vocab_free(tm_vocab *v)
{
    if (!v)
        return;
    rl_gguf_close(v->g);
    free(v);
}

int tm_vocab_encode(const tm_vocab *v, const char *text, int32_t *out, int cap)
{
    char buf[1024];
    size_t n = 0;
    for (const char *p = text; *p && n + 4 < sizeof buf; p++) { /* SPM: a leading space, spaces as U+2581 */
        if (p == text || *p == ' ') {
            memcpy(buf + n, "\xe2\x96\x81", 3);
            n += 3;
            if (*p == ' ')
                continue;
        }
        buf[n++] = *p;
    }
    int k = 0;
    out[k++] = 1;
    for (size_t i = 0; i < n && k < cap;) {
        int32_t best = -1;
        size_t best_len = 0;
        for (uint64_t t = 0; t < v->tokens->arr_n; t++) {
            rl_gguf_str s = v->tokens->strs[t];
            if (s.len > best_len && s.len <= n - i && memcmp(s.ptr, buf + i, s.len) == 0) {
                best = (int32_t)t;
                best_len = s.len;
            }
        }
        if (best < 0)
            return -1;
        out[k++] = best;
        i += best_len;
    }
    return k;
}

int tm_vocab_piece(const tm_vocab *v, int32_t tok, char *buf, size_t cap)
{
    if (tok < 0 || (uint64_t)tok >= v->tokens->arr_n)
        return 0;
    rl_gguf_str s = v->tokens->strs[tok];
    size_t n = 0;
    for (size_t i = 0; i < s.len && n + 1 < cap; i++) {
        if (i + 2 < s.len && memcmp(s.ptr + i, "\xe2\x96\x81", 3) == 0) {
            buf[n++] = ' ';
            i += 2;
        } else {
            buf[n++] = s.ptr[i];
        }
    }
    return (int)n;
}
