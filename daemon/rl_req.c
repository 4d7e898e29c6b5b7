/* rl_req.c - decode/validate GENERATE payloads, UTF-8 streaming, stop strings. */
#include "rl_req.h"
#include "rl_unicode.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *err, size_t errlen, int rc, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return rc;
}

static uint32_t rd32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static const char *const role_names[] = {"system", "user", "assistant"};

static int check_sampling(const rl_wire_req *h, char *err, size_t errlen)
{
    if (!isfinite(h->temperature) || h->temperature < 0.0f || h->temperature > 100.0f)
        return fail(err, errlen, -EINVAL, "temperature must be finite and in [0, 100]");
    if (!isfinite(h->top_p) || !(h->top_p > 0.0f) || h->top_p > 1.0f)
        return fail(err, errlen, -EINVAL, "top_p must be in (0, 1]");
    if (!isfinite(h->min_p) || h->min_p < 0.0f || h->min_p > 1.0f)
        return fail(err, errlen, -EINVAL, "min_p must be in [0, 1]");
    if (!isfinite(h->repeat_penalty) || !(h->repeat_penalty > 0.0f) || h->repeat_penalty > 100.0f)
        return fail(err, errlen, -EINVAL, "repeat_penalty must be in (0, 100]");
    if (h->top_k < 0 || h->top_k > (1 << 24))
        return fail(err, errlen, -EINVAL, "top_k must be in [0, 16777216]");
    if (h->repeat_last_n < 0 || h->repeat_last_n > (1 << 20))
        return fail(err, errlen, -EINVAL, "repeat_last_n must be in [0, 1048576]");
    if (h->max_tokens < 1 || h->max_tokens > RL_WIRE_MAX_TOKENS)
        return fail(err, errlen, -EINVAL, "max_tokens must be in [1, 1048576]");
    return 0;
}

static int decode_chat(const uint8_t *p, uint32_t len, rl_req_parsed *out, char *err, size_t errlen)
{
    uint32_t pos = 0, n = 0;
    while (pos < len) {
        if (len - pos < 8)
            return fail(err, errlen, -EINVAL, "truncated chat message header");
        uint32_t role = rd32(p + pos), clen = rd32(p + pos + 4);
        pos += 8;
        if (role > RL_WIRE_ROLE_ASSISTANT)
            return fail(err, errlen, -EINVAL, "unknown chat role");
        if (clen > len - pos)
            return fail(err, errlen, -EINVAL, "chat message length past the prompt section");
        if (n >= RL_WIRE_MAX_CHAT_MSGS)
            return fail(err, errlen, -E2BIG, "too many chat messages");
        if (!rl_req_utf8_valid(p + pos, clen))
            return fail(err, errlen, -EILSEQ, "chat message is not valid UTF-8");
        out->msgs[n].role = role_names[role];
        out->msgs[n].content = (const char *)p + pos;
        out->msgs[n].content_len = clen;
        n++;
        pos += clen;
    }
    if (n == 0)
        return fail(err, errlen, -EINVAL, "chat request without messages");
    out->n_msgs = n;
    return 0;
}

int rl_req_decode(const uint8_t *buf, size_t len, uint32_t n_vocab, rl_req_parsed *out, char *err,
                  size_t errlen)
{
    rl_wire_req h;
    if (len < sizeof h)
        return fail(err, errlen, -EINVAL, "payload shorter than the request header");
    memcpy(&h, buf, sizeof h);
    memset(out, 0, offsetof(rl_req_parsed, msgs));
    out->n_msgs = 0;
    out->n_stop = 0;
    int rc = check_sampling(&h, err, errlen);
    if (rc < 0)
        return rc;
    size_t rest = len - sizeof h;
    if (h.prompt_len == 0)
        return fail(err, errlen, -EINVAL, "empty prompt");
    if (h.prompt_len > rest)
        return fail(err, errlen, -EINVAL, "prompt length past the payload");
    const uint8_t *prompt = buf + sizeof h;
    out->kind = h.kind;
    out->prompt = prompt;
    out->prompt_len = h.prompt_len;
    switch (h.kind) {
    case RL_WIRE_PROMPT_TEXT:
        if (!rl_req_utf8_valid(prompt, h.prompt_len))
            return fail(err, errlen, -EILSEQ, "prompt is not valid UTF-8");
        break;
    case RL_WIRE_PROMPT_TOKENS:
        if (h.prompt_len % 4)
            return fail(err, errlen, -EINVAL, "token prompt length not a multiple of 4");
        out->n_tokens = h.prompt_len / 4;
        for (uint32_t i = 0; i < out->n_tokens; i++) {
            uint32_t id = rd32(prompt + 4 * (size_t)i);
            if (id >= n_vocab)
                return fail(err, errlen, -EINVAL, "token id outside the vocabulary");
        }
        break;
    case RL_WIRE_PROMPT_CHAT:
        rc = decode_chat(prompt, h.prompt_len, out, err, errlen);
        if (rc < 0)
            return rc;
        break;
    default:
        return fail(err, errlen, -EINVAL, "unknown prompt kind");
    }
    if (h.n_stop > RL_WIRE_MAX_STOP)
        return fail(err, errlen, -E2BIG, "too many stop strings");
    size_t pos = sizeof h + h.prompt_len;
    for (uint32_t i = 0; i < h.n_stop; i++) {
        if (len - pos < 4)
            return fail(err, errlen, -EINVAL, "truncated stop string");
        uint32_t sl = rd32(buf + pos);
        pos += 4;
        if (sl == 0 || sl > RL_WIRE_MAX_STOP_LEN)
            return fail(err, errlen, -EINVAL, "stop string length must be in [1, 128]");
        if (sl > len - pos)
            return fail(err, errlen, -EINVAL, "stop string past the payload");
        if (!rl_req_utf8_valid(buf + pos, sl))
            return fail(err, errlen, -EILSEQ, "stop string is not valid UTF-8");
        out->stop[i] = (const char *)buf + pos;
        out->stop_len[i] = sl;
        pos += sl;
    }
    if (pos != len)
        return fail(err, errlen, -EINVAL, "trailing bytes after the request");
    out->n_stop = h.n_stop;
    out->max_tokens = h.max_tokens;
    out->priority = h.priority;
    if (h.flags & ~RL_WIRE_REQ_KNOWN_FLAGS)
        return fail(err, errlen, -EINVAL, "unknown request flags");
    out->flags = h.flags;
    if (h.n_logprobs > RL_WIRE_MAX_LOGPROBS)
        return fail(err, errlen, -EINVAL, "n_logprobs must be in [0, 20]");
    out->n_logprobs = h.n_logprobs;
    out->sampling.temperature = h.temperature;
    out->sampling.top_k = h.top_k;
    out->sampling.top_p = h.top_p;
    out->sampling.min_p = h.min_p;
    out->sampling.repeat_penalty = h.repeat_penalty;
    out->sampling.repeat_last_n = h.repeat_last_n;
    out->sampling.seed = h.seed;
    return 0;
}

/* One tokenizer call shape for the retry loop below. */
typedef struct tok_call {
    const char *text; /* text prompts */
    size_t len;
    bool parse_special;
    const rl_req_parsed *chat; /* chat requests (engine chat_tokenize) */
} tok_call;

static int tok_call_run(rl_engine *e, const tok_call *c, int32_t *out, size_t cap)
{
    if (c->chat) /* only the template's own markers become control tokens */
        return e->ops->chat_tokenize(e, c->chat->msgs, c->chat->n_msgs, true, out, cap);
    return e->ops->tokenize(e, c->text, c->len, true, c->parse_special, out, cap);
}

/* Run the tokenizer into a buffer of cap ids, once more with the size it asks for. */
static int tokenize_all(rl_engine *e, const tok_call *c, size_t cap, const char *what,
                        int32_t **ids, uint32_t *n, char *err, size_t errlen)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int32_t *buf = malloc(cap * sizeof *buf);
        if (!buf)
            return fail(err, errlen, -ENOMEM, "out of memory");
        int r = tok_call_run(e, c, buf, cap);
        if (r < 0) {
            free(buf);
            snprintf(err, errlen, "%s failed: %s", what, strerror(-r));
            return r;
        }
        if ((size_t)r <= cap) {
            if (r == 0) {
                free(buf);
                return fail(err, errlen, -EINVAL, "prompt has no tokens");
            }
            *ids = buf;
            *n = (uint32_t)r;
            return 0;
        }
        free(buf);
        cap = (size_t)r;
    }
    return fail(err, errlen, -EIO, "tokenizer size changed between calls");
}

int rl_req_prompt_tokens(rl_engine *e, const rl_req_parsed *p, int32_t **ids, uint32_t *n,
                         char *err, size_t errlen)
{
    if (p->kind == RL_WIRE_PROMPT_TOKENS) {
        int32_t *buf = malloc((size_t)p->n_tokens * sizeof *buf);
        if (!buf)
            return fail(err, errlen, -ENOMEM, "out of memory");
        memcpy(buf, p->prompt, (size_t)p->n_tokens * sizeof *buf);
        *ids = buf;
        *n = p->n_tokens;
        return 0;
    }
    if (p->kind == RL_WIRE_PROMPT_TEXT) {
        tok_call c = {.text = (const char *)p->prompt, .len = p->prompt_len,
                      .parse_special = (p->flags & RL_WIRE_REQ_PARSE_SPECIAL) != 0};
        return tokenize_all(e, &c, (size_t)p->prompt_len + 16, "tokenizer", ids, n, err, errlen);
    }
    if (e->ops->chat_tokenize) {
        tok_call c = {.chat = p};
        return tokenize_all(e, &c, (size_t)p->prompt_len + 64 * (size_t)p->n_msgs + 256,
                            "chat template", ids, n, err, errlen);
    }
    size_t cap = (size_t)p->prompt_len + 64 * (size_t)p->n_msgs + 256;
    for (int attempt = 0; attempt < 2; attempt++) {
        char *text = malloc(cap);
        if (!text)
            return fail(err, errlen, -ENOMEM, "out of memory");
        int r = e->ops->chat_format(e, p->msgs, p->n_msgs, text, cap);
        if (r < 0) {
            free(text);
            snprintf(err, errlen, "chat template failed: %s", strerror(-r));
            return r;
        }
        if ((size_t)r <= cap) {
            /* engines without chat_tokenize: the template spells its turn markers
             * as control-token text (and so could message contents) */
            tok_call c = {.text = text, .len = (size_t)r, .parse_special = true};
            int rc = tokenize_all(e, &c, (size_t)r + 16, "tokenizer", ids, n, err, errlen);
            free(text);
            return rc;
        }
        free(text);
        cap = (size_t)r;
    }
    return fail(err, errlen, -EIO, "chat template size changed between calls");
}

/* ---- UTF-8 ---- */

/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF) is
 * decoded by the one decoder the tokenizers use, rl_utf8_decode. */
bool rl_req_utf8_valid(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = rl_utf8_decode(s + i, n - i, &cp, NULL);
        if (k <= 0)
            return false;
        i += (size_t)k;
    }
    return true;
}

static size_t put_fffd(char *out)
{
    out[0] = (char)0xEF;
    out[1] = (char)0xBF;
    out[2] = (char)0xBD;
    return 3;
}

size_t rl_req_utf8_feed(rl_req_utf8_stream *st, const char *in, size_t n, char *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)in[i];
        st->part[st->n_part++] = b;
        for (;;) {
            uint32_t cp;
            int incomplete;
            int r = rl_utf8_decode(st->part, st->n_part, &cp, &incomplete);
            if (r > 0) { /* a whole character: the bytes held so far */
                memcpy(out + k, st->part, (size_t)r);
                k += (size_t)r;
                st->n_part = 0;
                break;
            }
            if (incomplete) /* wait for the next byte */
                break;
            k += put_fffd(out + k);
            if (st->n_part == 1) { /* a byte that cannot start a character */
                st->n_part = 0;
                break;
            }
            st->part[0] = b; /* broken sequence; b starts afresh */
            st->n_part = 1;
        }
    }
    return k;
}

size_t rl_req_utf8_finish(rl_req_utf8_stream *st, char *out)
{
    if (!st->n_part)
        return 0;
    st->n_part = 0;
    return put_fffd(out);
}

/* ---- stop strings ---- */

bool rl_req_stop_scan(const char *text, size_t n, const char *const *stop, const uint32_t *stop_len,
                  uint32_t n_stop, size_t *emit)
{
    size_t first = n;
    bool found = false;
    for (uint32_t s = 0; s < n_stop; s++) {
        if (stop_len[s] > n)
            continue;
        const char *hit = memmem(text, n, stop[s], stop_len[s]);
        if (hit && (size_t)(hit - text) < first) {
            first = (size_t)(hit - text);
            found = true;
        }
    }
    if (found) {
        *emit = first;
        return true;
    }
    size_t keep = 0;
    for (uint32_t s = 0; s < n_stop; s++) {
        size_t maxk = stop_len[s] - 1 < n ? stop_len[s] - 1 : n;
        for (size_t k = maxk; k > keep; k--)
            if (memcmp(text + n - k, stop[s], k) == 0) {
                keep = k;
                break;
            }
    }
    *emit = n - keep;
    return false;
}
