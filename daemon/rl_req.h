/* rl_req.h - request decoding and validation, UTF-8 streaming and stop strings.
 *
 * rl_req_decode works on a private copy of the payload (the caller copied it out
 * of shared memory first): it is a pure function of those bytes, fuzzed by
 * fuzz/fuzz_request.c.
 */
#ifndef RL_REQ_H
#define RL_REQ_H

#include "rl_engine.h"
#include "rl_wire.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rl_req_parsed {
    uint32_t kind;         /* RL_WIRE_PROMPT_* */
    const uint8_t *prompt; /* into the decoded buffer */
    uint32_t prompt_len;   /* bytes */
    uint32_t n_tokens;     /* RL_WIRE_PROMPT_TOKENS: ids (read with memcpy: unaligned) */
    uint32_t n_msgs;       /* RL_WIRE_PROMPT_CHAT */
    rl_chat_msg msgs[RL_WIRE_MAX_CHAT_MSGS];
    uint32_t n_stop;
    const char *stop[RL_WIRE_MAX_STOP];
    uint32_t stop_len[RL_WIRE_MAX_STOP];
    uint32_t max_tokens;
    rl_sampling sampling;
    uint8_t priority;
    uint8_t flags;         /* RL_WIRE_REQ_* */
    uint8_t n_logprobs;    /* alternatives per generated token (0: no log-probabilities) */
} rl_req_parsed;

/* Decode and validate a GENERATE payload. n_vocab bounds token ids. Returns 0
 * or a negative errno (-EINVAL, -EILSEQ, -E2BIG) with a message in err. */
int rl_req_decode(const uint8_t *buf, size_t len, uint32_t n_vocab, rl_req_parsed *out, char *err,
                  size_t errlen);

/* The prompt as token ids (tokenize text, render chat then tokenize, or copy).
 * *ids is malloc'ed. Returns 0 or a negative errno with a message. */
int rl_req_prompt_tokens(rl_engine *e, const rl_req_parsed *p, int32_t **ids, uint32_t *n,
                         char *err, size_t errlen);

/* ---- UTF-8 ---- */
bool rl_req_utf8_valid(const uint8_t *s, size_t n);

/* Streaming decoder: bytes of token pieces in, complete valid UTF-8 out.
 * Incomplete trailing bytes wait in the state; invalid bytes become U+FFFD. */
typedef struct rl_req_utf8_stream {
    uint8_t part[4];
    uint8_t n_part;
} rl_req_utf8_stream;

/* out needs room for 3 * (n + 4) bytes. Returns bytes written. */
size_t rl_req_utf8_feed(rl_req_utf8_stream *st, const char *in, size_t n, char *out);
/* End of stream: an incomplete character becomes U+FFFD. out: >= 3 bytes. */
size_t rl_req_utf8_finish(rl_req_utf8_stream *st, char *out);

/* ---- stop strings ---- */
/* Scan held text. Returns true when a stop string occurs: *emit is the length
 * before its first occurrence. Otherwise *emit is how much can be released: all
 * but the longest suffix that could still begin a stop string. */
bool rl_req_stop_scan(const char *text, size_t n, const char *const *stop, const uint32_t *stop_len,
                  uint32_t n_stop, size_t *emit);

#endif
