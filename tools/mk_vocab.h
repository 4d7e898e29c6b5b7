/* mk_vocab.h - vocabulary metadata for ringlm-mkmodel. */
#ifndef MK_VOCAB_H
#define MK_VOCAB_H

#include <stdint.h>

#include "rl_gguf.h"

/* A synthetic SentencePiece-style ("llama") vocabulary of n tokens (n >= 259):
 * <unk> <s> </s>, the 256 byte tokens <0x00>..<0xFF>, then unique printable
 * pieces (ASCII characters, then "\u2581word" / "word" pairs) with descending
 * scores; token_type marks unknown (2), control (3), byte (6) and normal (1). */
int mk_vocab_synthetic(rl_gguf_writer *w, uint32_t n);

/* Copy every tokenizer.* key of src; *n gets the token count (0 when src has
 * no tokenizer.ggml.tokens string array). */
int mk_vocab_copy(rl_gguf_writer *w, const rl_gguf *src, uint32_t *n);

#endif
