/* tok_synth.h - tests only: small synthetic vocabularies built with rl_tok_build. */
#ifndef TOK_SYNTH_H
#define TOK_SYNTH_H

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl_tok_internal.h"
#include "rl_unicode.h"

typedef struct synth {
    rl_gguf_str tok[600];
    char text[600][16];
    float score[600];
    int32_t type[600];
    uint32_t n;
    rl_gguf_str merge[16];
    char mtext[16][16];
    uint32_t n_merges;
} synth;

static inline int32_t synth_add(synth *s, const char *text, float score, int32_t type)
{
    uint32_t i = s->n++;
    snprintf(s->text[i], sizeof s->text[i], "%s", text);
    s->tok[i] = (rl_gguf_str){s->text[i], strlen(s->text[i])};
    s->score[i] = score;
    s->type[i] = type;
    return (int32_t)i;
}

/* SentencePiece-style: <unk> <s> </s>, 256 byte tokens, then a few pieces. */
static inline rl_tokenizer *synth_spm(synth *s, int add_bos, int add_eos)
{
    memset(s, 0, sizeof *s);
    synth_add(s, "<unk>", 0, RL_TT_UNKNOWN);
    synth_add(s, "<s>", 0, RL_TT_CONTROL);
    synth_add(s, "</s>", 0, RL_TT_CONTROL);
    for (int b = 0; b < 256; b++) {
        char t[8];
        snprintf(t, sizeof t, "<0x%02X>", b);
        synth_add(s, t, 0, RL_TT_BYTE);
    }
    /* 259.. */
    synth_add(s, "\xE2\x96\x81", -1, RL_TT_NORMAL);          /* ▁ */
    synth_add(s, "h", -2, RL_TT_NORMAL);
    synth_add(s, "i", -2, RL_TT_NORMAL);
    synth_add(s, "\xE2\x96\x81h", -3, RL_TT_NORMAL);         /* ▁h */
    synth_add(s, "hi", -1.5f, RL_TT_NORMAL);
    synth_add(s, "\xE2\x96\x81hi", -0.5f, RL_TT_NORMAL);     /* ▁hi */
    synth_add(s, "<|eot|>", 0, RL_TT_CONTROL);
    synth_add(s, "<|im_end|>", 0, RL_TT_CONTROL);
    synth_add(s, "<my>", 0, RL_TT_USER);
    rl_tok_vocab v = {0};
    v.model = RL_TOK_SPM;
    v.n = s->n;
    v.tokens = s->tok;
    v.scores = s->score;
    v.types = s->type;
    v.bos = 1;
    v.eos = 2;
    v.unk = 0;
    v.pad = -1;
    v.eot = -1;
    v.add_bos = add_bos;
    v.add_eos = add_eos;
    v.add_space_prefix = -1;
    rl_tokenizer *t = NULL;
    char err[256] = "";
    ck_assert_msg(rl_tok_build(&v, &t, err, sizeof err) == 0, "%s", err);
    return t;
}

static inline int32_t synth_id(const synth *s, const char *text)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (strcmp(s->text[i], text) == 0)
            return (int32_t)i;
    ck_abort_msg("no token %s", text);
    return -1;
}

/* GPT-2 byte-level character of byte b, UTF-8, NUL-terminated. */
static inline void synth_byte_char(int b, char out[4])
{
    uint32_t cp = (uint32_t)b, k = 0;
    if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174)) {
        for (int c = 0; c < b; c++)
            if (!((c >= 33 && c <= 126) || (c >= 161 && c <= 172) || c >= 174))
                k++;
        cp = 256 + k;
    }
    int n = rl_utf8_encode(cp, out);
    out[n] = '\0';
}

/* Byte-level BPE: the 256 byte characters, then n merges ("a b" -> result, in
 * rank order), then the control tokens; BOS and EOS are the control token eos. */
static inline rl_tokenizer *synth_bpe_with(synth *s, rl_tok_pre pre, const char *const *merges,
                                           const char *const *results, int n,
                                           const char *const *controls, int n_controls,
                                           const char *eos)
{
    memset(s, 0, sizeof *s);
    for (int b = 0; b < 256; b++) {
        char c[4];
        synth_byte_char(b, c);
        synth_add(s, c, 0, RL_TT_NORMAL);
    }
    ck_assert_int_le(n, 16);
    for (int i = 0; i < n; i++) {
        synth_add(s, results[i], 0, RL_TT_NORMAL);
        snprintf(s->mtext[i], sizeof s->mtext[i], "%s", merges[i]);
        s->merge[i] = (rl_gguf_str){s->mtext[i], strlen(s->mtext[i])};
    }
    s->n_merges = n;
    for (int i = 0; i < n_controls; i++)
        synth_add(s, controls[i], 0, RL_TT_CONTROL);
    rl_tok_vocab v = {0};
    v.model = RL_TOK_BPE;
    v.pre = pre;
    v.n = s->n;
    v.tokens = s->tok;
    v.types = s->type;
    v.n_merges = s->n_merges;
    v.merges = s->merge;
    v.bos = v.eos = synth_id(s, eos);
    v.unk = v.pad = v.eot = -1;
    v.add_bos = v.add_eos = v.add_space_prefix = -1;
    rl_tokenizer *t = NULL;
    char err[256] = "";
    ck_assert_msg(rl_tok_build(&v, &t, err, sizeof err) == 0, "%s", err);
    return t;
}

/* Byte-level BPE: the 256 byte characters, merges "l l", "h e", "he ll", "hell o",
 * and the control token <|endoftext|>. */
static inline rl_tokenizer *synth_bpe(synth *s, rl_tok_pre pre)
{
    static const char *const merges[] = {"l l", "h e", "he ll", "hell o"};
    static const char *const results[] = {"ll", "he", "hell", "hello"};
    static const char *const controls[] = {"<|endoftext|>"};
    return synth_bpe_with(s, pre, merges, results, 4, controls, 1, "<|endoftext|>");
}

#endif
