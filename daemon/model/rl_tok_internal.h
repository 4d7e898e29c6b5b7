/* rl_tok_internal.h - the tokenizer's private structures, shared by rl_tok_*.c.
 *
 * A tokenizer is built from an in-memory vocabulary (rl_tok_vocab, filled either
 * by rl_tok_load.c from GGUF metadata or directly by tests and fuzzers). */
#ifndef RL_TOK_INTERNAL_H
#define RL_TOK_INTERNAL_H

#include "rl_tokenizer.h"

enum { RL_TOK_SPM = 1, RL_TOK_BPE = 2 };

/* tokenizer.ggml.token_type values */
enum {
    RL_TT_UNDEFINED = 0, RL_TT_NORMAL = 1, RL_TT_UNKNOWN = 2, RL_TT_CONTROL = 3,
    RL_TT_USER = 4, RL_TT_UNUSED = 5, RL_TT_BYTE = 6
};

/* Pre-tokenizer rule sets of byte-level BPE (tokenizer.ggml.pre). */
typedef enum rl_tok_pre {
    RL_PRE_GPT2 = 0,      /* default, gpt-2, mpt, olmo */
    RL_PRE_LLAMA3,        /* llama-bpe */
    RL_PRE_QWEN2,
    RL_PRE_STARCODER,     /* starcoder, refact, smollm */
    RL_PRE_FALCON,
    RL_PRE_DEEPSEEK_LLM,
    RL_PRE_DEEPSEEK_CODER
} rl_tok_pre;

/* The input to rl_tok_build. Strings need not be NUL-terminated. */
typedef struct rl_tok_vocab {
    int model;                   /* RL_TOK_SPM or RL_TOK_BPE */
    rl_tok_pre pre;
    uint32_t n;
    const rl_gguf_str *tokens;   /* n */
    const float *scores;         /* n, or NULL (all 0) */
    const int32_t *types;        /* n, or NULL (all normal) */
    uint64_t n_merges;
    const rl_gguf_str *merges;   /* "left right" */
    int32_t bos, eos, unk, pad, eot; /* -1 = none */
    int add_bos, add_eos, add_space_prefix; /* -1 = the model kind's default */
    rl_gguf_str chat_template;   /* ptr NULL = none */
} rl_tok_vocab;

int rl_tok_build(const rl_tok_vocab *v, rl_tokenizer **out, char *err, size_t errlen);
/* Pre-tokenizer name -> rule set; -1 when unknown. NULL or "" means default. */
int rl_tok_pre_from_name(const char *name, size_t len);

/* Open-addressing string -> id map. */
typedef struct rl_tok_map {
    int32_t *slots;   /* -1 = empty */
    uint32_t mask;
} rl_tok_map;

/* Merge rank table: (left id, right id) -> rank and result. */
typedef struct rl_tok_merge {
    uint64_t key;     /* ((uint64_t)left << 32) | right; UINT64_MAX = empty */
    uint32_t rank;
    int32_t result;
} rl_tok_merge;

struct rl_tokenizer {
    int model;
    rl_tok_pre pre;
    uint32_t n;
    char *text;              /* all token texts, back to back */
    uint32_t *off, *len;     /* token i is text[off[i] .. off[i]+len[i]) */
    float *scores;
    uint8_t *types;
    char *piece;             /* each token's bytes as they appear in text */
    uint32_t *poff, *plen;
    rl_tok_map map;          /* token text -> id (for SPM: only mergeable types) */
    rl_tok_merge *merges;
    uint64_t merge_mask;     /* capacity - 1, 0 when no table */
    int32_t byte_tok[256];   /* SPM: <0xXX>; BPE: the token of the byte's mapped char */
    char benc[256][2];       /* BPE: each byte's mapped character, UTF-8 */
    uint8_t benc_len[256];
    int32_t bos, eos, unk, pad, eot;
    bool add_bos, add_eos, add_space_prefix, ignore_merges;
    int32_t *special;        /* control/user tokens matched in text, by first byte then longest */
    uint32_t n_special;
    uint32_t special_start[257];
    int32_t *eog;
    uint32_t n_eog;
    char *chat_template;
    size_t chat_len;
};

uint64_t rl_tok_hash(const char *p, size_t n);
int32_t rl_tok_map_find(const rl_tok_map *m, const rl_tokenizer *t, const char *p, size_t n);
/* The merge for a pair, or NULL. */
const rl_tok_merge *rl_tok_merge_find(const rl_tokenizer *t, int32_t a, int32_t b);

/* Growable id output: counts past cap without writing. */
typedef struct rl_tok_out {
    int32_t *ids;
    size_t cap, n;
} rl_tok_out;
static inline void rl_tok_emit(rl_tok_out *o, int32_t id)
{
    if (o->n < o->cap)
        o->ids[o->n] = id;
    o->n++;
}

/* Tokenize one plain-text fragment (no special tokens inside). 0 or -ENOMEM. */
int rl_tok_spm_encode(const rl_tokenizer *t, const char *s, size_t n, bool space_prefix, rl_tok_out *o);
int rl_tok_bpe_encode(const rl_tokenizer *t, const char *s, size_t n, rl_tok_out *o);

/* Pre-tokenizer: split s[0..n) into words. Calls fn(ctx, start, len) for each word in
 * order (the words cover the text). Returns 0, -ENOMEM, or fn's first nonzero result. */
typedef int (*rl_tok_word_fn)(void *ctx, size_t start, size_t len);
int rl_tok_pretokenize(rl_tok_pre pre, const char *s, size_t n, rl_tok_word_fn fn, void *ctx);

/* Binary heap of merge candidates shared by SPM and BPE. */
typedef struct rl_tok_cand {
    float score;        /* higher first (BPE stores -rank) */
    uint32_t left, right;
    int32_t id;         /* the merged token */
    uint32_t size;      /* SPM: merged length in bytes; BPE: unused */
} rl_tok_cand;
typedef struct rl_tok_heap {
    rl_tok_cand *a;
    size_t n, cap;
} rl_tok_heap;
int rl_tok_heap_push(rl_tok_heap *h, rl_tok_cand c);
bool rl_tok_heap_pop(rl_tok_heap *h, rl_tok_cand *c);

#endif
