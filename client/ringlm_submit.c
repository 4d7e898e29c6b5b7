/* ringlm_submit.c - encode requests into the request arena and the SQ. */
#include "ringlm_impl.h"

#include <errno.h>
#include <string.h>
#include <time.h>

/* Reclaim arena space of SQ entries the daemon has consumed. */
static void reclaim(ringlm_conn *c)
{
    /* acquire: pairs with the daemon's release store of head: it copied the
     * payloads of consumed entries before we overwrite them. */
    uint32_t head = atomic_load_explicit(&c->sq.ctl->head, memory_order_acquire);
    if (head - c->sq_reclaimed > c->sq.n) /* nonsense from a broken daemon */
        return;
    if (head != c->sq_reclaimed) {
        c->req_free = c->slot_end[(head - 1) & (c->sq.n - 1)];
        c->sq_reclaimed = head;
    }
}

/* Allocate len bytes of the request arena; returns the offset or -EAGAIN. */
static int64_t arena_alloc(ringlm_conn *c, size_t len)
{
    size_t len8 = (len + 63) & ~(size_t)63;
    if (len8 > c->req_size)
        return -E2BIG;
    reclaim(c);
    uint64_t pos = c->req_head;
    uint32_t off = (uint32_t)(pos % c->req_size);
    if (off + len8 > c->req_size) {
        pos += c->req_size - off;
        off = 0;
    }
    if (pos + len8 - c->req_free > c->req_size)
        return -EAGAIN;
    c->req_head = pos + len8;
    return off;
}

/* Publish one SQE (slot_end records the arena position for reclaiming). */
static void push_sqe(ringlm_conn *c, const rl_wire_sqe *e)
{
    *(rl_wire_sqe *)rl_ring_prod_slot(&c->sq, 0) = *e;
    c->slot_end[c->sq.local & (c->sq.n - 1)] = c->req_head;
    rl_ring_publish(&c->sq, 1); /* release: payload and entry before tail */
    if (rl_ring_needs_bell(&c->sq))
        rl_bell_ring(c->sq_bell);
}

static void sleep_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

/* Wait (bounded) for a free SQ slot and len bytes of arena. */
static int64_t reserve(ringlm_conn *c, size_t len)
{
    for (int tries = 0;; tries++) {
        if (c->dead)
            return ringlm_fail(c->dead, "connection lost");
        int64_t space = rl_ring_space(&c->sq);
        if (space == RL_RING_CORRUPT)
            return ringlm_fail(-EPROTO, "submission ring corrupt");
        int64_t off = space > 0 ? arena_alloc(c, len) : -EAGAIN;
        if (off != -EAGAIN)
            return off < 0 ? ringlm_fail((int)off, "request larger than the request arena") : off;
        if (tries >= 20000) /* about 2 s */
            return ringlm_fail(-EAGAIN, "submission ring or request arena full");
        /* The daemon drains the SQ unless it waits for us to read results, or died. */
        if (ringlm_check_peer(c) < 0)
            return c->dead;
        ringlm_drain(c);
        rl_bell_ring(c->sq_bell);
        sleep_us(100);
    }
}

static int check_params(const ringlm_params *p)
{
    if (p->n_stop > RL_WIRE_MAX_STOP)
        return ringlm_fail(-E2BIG, "at most %u stop strings", RL_WIRE_MAX_STOP);
    for (uint32_t i = 0; i < p->n_stop; i++)
        if (!p->stop || !p->stop[i])
            return ringlm_fail(-EINVAL, "NULL stop string");
    return 0;
}

static size_t stop_bytes(const ringlm_params *p)
{
    size_t n = 0;
    for (uint32_t i = 0; i < p->n_stop; i++)
        n += 4 + strlen(p->stop[i]);
    return n;
}

static char *put32(char *d, uint32_t v)
{
    memcpy(d, &v, 4);
    return d + 4;
}

typedef struct chunk {
    const void *p;
    size_t n;
} chunk;

/* Write header + prompt section (given by a callback) + stops, then the SQE. */
static int submit(ringlm_conn *c, uint32_t kind, size_t prompt_len,
                  void (*write_prompt)(char *dst, const void *arg), const void *arg,
                  const ringlm_params *params, ringlm_req *req)
{
    ringlm_params def;
    if (!params) {
        ringlm_params_default(&def);
        params = &def;
    }
    int rc = check_params(params);
    if (rc < 0)
        return rc;
    if (prompt_len > UINT32_MAX / 2)
        return ringlm_fail(-E2BIG, "prompt too large");
    size_t len = sizeof(rl_wire_req) + prompt_len + stop_bytes(params);
    int64_t off = reserve(c, len);
    if (off < 0)
        return (int)off;
    char *dst = (char *)c->base + c->req_off + off;
    rl_wire_req h = {
        .kind = kind,
        .prompt_len = (uint32_t)prompt_len,
        .n_stop = params->n_stop,
        .max_tokens = params->max_tokens,
        .temperature = params->temperature,
        .top_p = params->top_p,
        .min_p = params->min_p,
        .repeat_penalty = params->repeat_penalty,
        .top_k = params->top_k,
        .repeat_last_n = params->repeat_last_n,
        .seed = params->seed,
        .priority = params->priority,
        .flags = params->parse_special ? RL_WIRE_REQ_PARSE_SPECIAL : 0,
        .n_logprobs = params->logprobs,
    };
    memcpy(dst, &h, sizeof h);
    write_prompt(dst + sizeof h, arg);
    char *p = dst + sizeof h + prompt_len;
    for (uint32_t i = 0; i < params->n_stop; i++) {
        size_t sl = strlen(params->stop[i]);
        p = put32(p, (uint32_t)sl);
        memcpy(p, params->stop[i], sl);
        p += sl;
    }
    uint32_t id = c->next_id++;
    if (c->next_id == 0)
        c->next_id = 1;
    rl_wire_sqe e = {.opcode = RL_WIRE_OP_GENERATE, .req_id = id, .off = (uint32_t)off,
                     .len = (uint32_t)len};
    push_sqe(c, &e);
    *req = id;
    return 0;
}

static void write_chunk(char *dst, const void *arg)
{
    const chunk *ch = arg;
    memcpy(dst, ch->p, ch->n);
}

int ringlm_submit_text(ringlm_conn *c, const char *prompt, size_t len, const ringlm_params *params,
                       ringlm_req *req)
{
    if (!prompt && len)
        return ringlm_fail(-EINVAL, "NULL prompt");
    chunk ch = {prompt, len};
    return submit(c, RL_WIRE_PROMPT_TEXT, len, write_chunk, &ch, params, req);
}

int ringlm_submit_tokens(ringlm_conn *c, const int32_t *ids, size_t n, const ringlm_params *params,
                         ringlm_req *req)
{
    if (n > UINT32_MAX / 8)
        return ringlm_fail(-E2BIG, "prompt too large");
    if (!ids && n)
        return ringlm_fail(-EINVAL, "NULL token ids");
    chunk ch = {ids, n * sizeof(int32_t)};
    return submit(c, RL_WIRE_PROMPT_TOKENS, ch.n, write_chunk, &ch, params, req);
}

typedef struct chat_arg {
    const ringlm_chat_msg *msgs;
    const uint32_t *roles;
    size_t n;
} chat_arg;

static void write_chat(char *dst, const void *arg)
{
    const chat_arg *a = arg;
    for (size_t i = 0; i < a->n; i++) {
        size_t l = strlen(a->msgs[i].content);
        dst = put32(dst, a->roles[i]);
        dst = put32(dst, (uint32_t)l);
        memcpy(dst, a->msgs[i].content, l);
        dst += l;
    }
}

int ringlm_submit_chat(ringlm_conn *c, const ringlm_chat_msg *msgs, size_t n,
                       const ringlm_params *params, ringlm_req *req)
{
    if (n == 0 || n > RL_WIRE_MAX_CHAT_MSGS)
        return ringlm_fail(-EINVAL, "chat needs 1 to %u messages", RL_WIRE_MAX_CHAT_MSGS);
    uint32_t roles[RL_WIRE_MAX_CHAT_MSGS];
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const char *r = msgs[i].role;
        if (!r || !msgs[i].content)
            return ringlm_fail(-EINVAL, "chat message without role or content");
        if (strcmp(r, "system") == 0)
            roles[i] = RL_WIRE_ROLE_SYSTEM;
        else if (strcmp(r, "user") == 0)
            roles[i] = RL_WIRE_ROLE_USER;
        else if (strcmp(r, "assistant") == 0)
            roles[i] = RL_WIRE_ROLE_ASSISTANT;
        else
            return ringlm_fail(-EINVAL, "unknown chat role '%s'", r);
        total += 8 + strlen(msgs[i].content);
    }
    chat_arg a = {msgs, roles, n};
    return submit(c, RL_WIRE_PROMPT_CHAT, total, write_chat, &a, params, req);
}

int ringlm_submit_ctl(ringlm_conn *c, uint8_t op, uint32_t target, ringlm_req *req)
{
    int64_t off = reserve(c, 0);
    if (off < 0)
        return (int)off;
    uint32_t id = c->next_id++;
    if (c->next_id == 0)
        c->next_id = 1;
    rl_wire_sqe e = {.opcode = op, .req_id = id, .target = target};
    push_sqe(c, &e);
    if (req)
        *req = id;
    return 0;
}

int ringlm_cancel(ringlm_conn *c, ringlm_req req)
{
    return ringlm_submit_ctl(c, RL_WIRE_OP_CANCEL, req, NULL);
}
