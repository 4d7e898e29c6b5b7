/* rl_unicode.h - the small Unicode toolkit the tokenizers need: strict UTF-8
 * decoding, encoding, and character classes from the generated range table
 * (rl_unicode_tables.c, made by tools/gen_unicode.py). */
#ifndef RL_UNICODE_H
#define RL_UNICODE_H

#include <stddef.h>
#include <stdint.h>

enum {
    RL_UC_LETTER = 1,   /* \p{L} */
    RL_UC_NUMBER = 2,   /* \p{N} */
    RL_UC_PUNCT = 4,    /* \p{P} */
    RL_UC_SYMBOL = 8,   /* \p{S} */
    RL_UC_MARK = 16,    /* \p{M} */
    RL_UC_SPACE = 32,   /* White_Space */
    RL_UC_CASED = 64    /* Lu, Ll, Lt */
};

extern const uint32_t rl_unicode_ranges[];
extern const uint32_t rl_unicode_n_ranges;
extern const char rl_unicode_version[];

/* Class flags of a codepoint (0 for values beyond U+10FFFF). */
uint32_t rl_unicode_flags(uint32_t cp);

/* Decode one strict UTF-8 character from s[0..n) (n >= 1). On success returns its
 * length (1..4) and stores the codepoint. On an invalid or truncated sequence returns
 * the negated length of the longest valid prefix (at least 1, i.e. -1..-3); *cp is
 * set to U+FFFD. *incomplete (may be NULL) tells whether the failure is only because
 * the input ended before the character did. */
int rl_utf8_decode(const uint8_t *s, size_t n, uint32_t *cp, int *incomplete);
/* Encode cp (<= U+10FFFF) into out[4]; returns the length. */
int rl_utf8_encode(uint32_t cp, char *out);

#endif
