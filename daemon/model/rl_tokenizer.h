/* rl_tokenizer.h - tokenizers built from GGUF metadata.
 *
 * tokenizer.ggml.model "llama": SentencePiece-style (scores, byte fallback).
 * tokenizer.ggml.model "gpt2":  byte-level BPE (merges) with the pre-tokenizer
 * named by tokenizer.ggml.pre.
 */
#ifndef RL_TOKENIZER_H
#define RL_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rl_gguf.h"

typedef struct rl_tokenizer rl_tokenizer;

int rl_tokenizer_load(const rl_gguf *g, rl_tokenizer **out, char *err, size_t errlen);
void rl_tokenizer_free(rl_tokenizer *t);

/* Text -> ids. add_special: BOS (and EOS) as the metadata asks.
 * parse_special: text of control tokens ("<|eot_id|>") becomes those tokens.
 * (User-defined tokens, type 4, are matched either way, as the reference tokenizers do.)
 * Returns the count (may exceed cap: nothing beyond cap is written), or a negative errno
 * (-EINVAL bad arguments, -E2BIG text over 16 MiB, -ENOMEM). */
int rl_tokenize(const rl_tokenizer *t, const char *text, size_t len, bool add_special,
                bool parse_special, int32_t *out, size_t cap);
/* Added: a byte range [off, off + len) of a text. */
typedef struct rl_tok_span {
    size_t off, len;
} rl_tok_span;
/* Added: rl_tokenize for text that mixes trusted markup with untrusted content
 * (chat templates). Control and unknown tokens match only when their whole text
 * lies inside one of the special_ok spans (sorted, non-overlapping; n_spans 0:
 * nowhere); user-defined tokens match anywhere. Text between matched special
 * tokens is encoded in one pass exactly as rl_tokenize does, so when no content
 * spells a control token the ids equal rl_tokenize(..., parse_special=true).
 * Returns as rl_tokenize (-EINVAL also for spans out of order or past len). */
int rl_tokenize_spans(const rl_tokenizer *t, const char *text, size_t len, bool add_special,
                      const rl_tok_span *special_ok, size_t n_spans, int32_t *out, size_t cap);
/* Bytes of one token as it appears in text (byte tokens decoded, SPM's U+2581
 * as space, byte-level BPE mapped back to bytes; control tokens render as "").
 * Returns the length (may exceed cap), or -EINVAL for an invalid id. */
int rl_token_to_piece(const rl_tokenizer *t, int32_t tok, char *buf, size_t cap);

uint32_t rl_tokenizer_n_vocab(const rl_tokenizer *t);
int32_t rl_tokenizer_bos(const rl_tokenizer *t); /* -1 if none */
int32_t rl_tokenizer_eos(const rl_tokenizer *t); /* -1 if none */
bool rl_tokenizer_is_eog(const rl_tokenizer *t, int32_t tok);
/* Added by tokenizer: whether rl_tokenize with add_special puts BOS first. */
bool rl_tokenizer_adds_bos(const rl_tokenizer *t);
/* Added by tokenizer: tokenizer.chat_template (NUL-terminated, *len bytes), or NULL. */
const char *rl_tokenizer_chat_template(const rl_tokenizer *t, size_t *len);

/* Streaming detokenizer: never emits a partial UTF-8 character. */
typedef struct rl_detok {
    char pending[8];
    uint32_t n_pending;
} rl_detok;
/* Append the piece of tok; writes the complete characters to out and returns
 * their length (may exceed cap, in which case nothing is consumed). */
int rl_detok_push(rl_detok *d, const rl_tokenizer *t, int32_t tok, char *out, size_t cap);
/* Flush what is left at the end of a stream (invalid bytes become U+FFFD). */
int rl_detok_flush(rl_detok *d, char *out, size_t cap);

/* Chat templates: llama2, llama3, chatml, mistral, picked from tokenizer.chat_template. */
typedef enum rl_chat_tmpl {
    RL_CHAT_CHATML = 0, RL_CHAT_LLAMA2, RL_CHAT_LLAMA3, RL_CHAT_MISTRAL
} rl_chat_tmpl;
rl_chat_tmpl rl_chat_detect(const char *tmpl_or_null, size_t len);
/* Render messages (role, content) and the assistant prefix. Returns the length
 * (may exceed cap) or a negative errno (-EINVAL: unknown role). */
int rl_chat_render(rl_chat_tmpl tmpl, const char *const *roles, const char *const *contents,
                   const size_t *content_lens, uint32_t n, char *out, size_t cap);
/* Added: rl_chat_render that also reports the spans of the template's own text
 * (everything but message contents) for rl_tokenize_spans. Writes at most
 * span_cap spans and stores the count in *n_spans (at most n + 1 for every
 * family, so span_cap = n + 1 always suffices; more: nothing beyond span_cap). */
int rl_chat_render_spans(rl_chat_tmpl tmpl, const char *const *roles, const char *const *contents,
                         const size_t *content_lens, uint32_t n, char *out, size_t cap,
                         rl_tok_span *spans, size_t span_cap, size_t *n_spans);

#endif
