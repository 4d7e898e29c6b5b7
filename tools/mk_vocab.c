/* mk_vocab.c - synthetic or copied vocabularies for ringlm-mkmodel. */
#include "mk_vocab.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SP_SPACE "\xe2\x96\x81" /* U+2581, SentencePiece's word-start marker */

/* Bijective base-26 spelling of k: a..z, aa..zz, aaa... */
static void word_of(uint64_t k, char *out)
{
    char tmp[16];
    int n = 0;
    k++;
    while (k && n < 15) {
        k--;
        tmp[n++] = (char)('a' + k % 26);
        k /= 26;
    }
    for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    out[n] = 0;
}

int mk_vocab_synthetic(rl_gguf_writer *w, uint32_t n)
{
    if (n < 259) return -EINVAL;
    char **tok = calloc(n, sizeof *tok);
    float *score = calloc(n, sizeof *score);
    int32_t *type = calloc(n, sizeof *type);
    int rc = tok && score && type ? 0 : -ENOMEM;
    uint32_t i = 0;
    char buf[32];
    for (; !rc && i < n; i++) {
        if (i == 0) snprintf(buf, sizeof buf, "<unk>");
        else if (i == 1) snprintf(buf, sizeof buf, "<s>");
        else if (i == 2) snprintf(buf, sizeof buf, "</s>");
        else if (i < 259) snprintf(buf, sizeof buf, "<0x%02X>", i - 3);
        else if (i == 259) snprintf(buf, sizeof buf, SP_SPACE);
        else if (i < 260 + 94) snprintf(buf, sizeof buf, "%c", (char)('!' + (i - 260))); /* printable ASCII */
        else {
            /* "\u2581a".."\u2581z", then "\u2581aa", "aa", "\u2581ab", "ab", ...
             * (bare one-letter words are already among the ASCII pieces) */
            uint32_t k = i - (260 + 94), wi = k < 26 ? k : 26 + (k - 26) / 2;
            bool bare = k >= 26 && (k - 26) % 2;
            word_of(wi, buf + 3);
            if (!bare) memcpy(buf, SP_SPACE, 3);
            else memmove(buf, buf + 3, strlen(buf + 3) + 1);
        }
        type[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;
        score[i] = i < 259 ? 0.0f : -(float)(i - 259);
        if (!(tok[i] = strdup(buf))) rc = -ENOMEM;
    }
    if (!rc) rc = rl_gguf_writer_str(w, "tokenizer.ggml.model", "llama");
    if (!rc) rc = rl_gguf_writer_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tok, n);
    if (!rc) rc = rl_gguf_writer_arr(w, "tokenizer.ggml.scores", RL_GGUF_F32, score, n);
    if (!rc) rc = rl_gguf_writer_arr(w, "tokenizer.ggml.token_type", RL_GGUF_I32, type, n);
    if (!rc) rc = rl_gguf_writer_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    if (!rc) rc = rl_gguf_writer_u32(w, "tokenizer.ggml.bos_token_id", 1);
    if (!rc) rc = rl_gguf_writer_u32(w, "tokenizer.ggml.eos_token_id", 2);
    if (!rc) rc = rl_gguf_writer_bool(w, "tokenizer.ggml.add_bos_token", true);
    for (uint32_t j = 0; tok && j < n; j++) free(tok[j]);
    free(tok);
    free(score);
    free(type);
    return rc;
}

int mk_vocab_copy(rl_gguf_writer *w, const rl_gguf *src, uint32_t *n)
{
    *n = 0;
    for (uint64_t i = 0; i < src->n_kv; i++) {
        const rl_gguf_kv *kv = &src->kv[i];
        if (kv->key.len < 10 || memcmp(kv->key.ptr, "tokenizer.", 10) != 0) continue;
        int rc = rl_gguf_writer_copy_kv(w, kv);
        if (rc) return rc;
        if (rl_gguf_str_eq(kv->key, "tokenizer.ggml.tokens") && kv->type == RL_GGUF_ARR &&
            kv->arr_type == RL_GGUF_STR && kv->arr_n <= UINT32_MAX)
            *n = (uint32_t)kv->arr_n;
    }
    return 0;
}
