/* rl_prefix_seq.c - sequences over the shared KV pool: token history, prefix
 * attach and registration, and room-making when the pool is full (evict idle
 * cached blocks, then preempt the newest lowest-priority sequence). */
#include "rl_prefix_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int rl_prefix_seq_init(rl_prefix *p, rl_prefix_seq *s, rl_kv_seq *kv, const int32_t *prompt, uint32_t n_prompt,
                       uint32_t max_tokens, uint8_t priority)
{
    memset(s, 0, sizeof *s);
    uint64_t cap = (uint64_t)n_prompt + max_tokens + 1;
    if (cap > UINT32_MAX / sizeof(int32_t))
        return -E2BIG;
    s->toks = malloc(sizeof(int32_t) * cap);
    if (!s->toks)
        return -ENOMEM;
    memcpy(s->toks, prompt, sizeof(int32_t) * n_prompt);
    s->n_toks = s->n_prompt = n_prompt;
    s->cap = (uint32_t)cap;
    s->kv = kv;
    s->priority = priority;
    s->age = ++p->next_age;
    s->next = p->seqs;
    if (p->seqs)
        p->seqs->prev = s;
    p->seqs = s;
    return 0;
}

uint32_t rl_prefix_seq_fini(rl_prefix *p, rl_prefix_seq *s)
{
    if (!s->toks)
        return 0;
    uint32_t idle = 0;
    for (uint32_t i = 0; i < s->kv->n_blocks; i++) {
        uint32_t b = s->kv->blocks[i];
        idle += rl_prefix_cached(p, b) && rl_kv_block_refs(p->kv, b) == 2; /* s and the cache */
    }
    rl_kv_release(p->kv, s->kv);
    if (s->prev)
        s->prev->next = s->next;
    else
        p->seqs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    free(s->toks);
    memset(s, 0, sizeof *s);
    return idle;
}

void rl_prefix_seq_push(rl_prefix_seq *s, int32_t tok)
{
    if (s->n_toks < s->cap)
        s->toks[s->n_toks++] = tok;
}

uint32_t rl_prefix_seq_attach(rl_prefix *p, rl_prefix_seq *s)
{
    if (s->kv->n_pos != 0 || s->n_toks == 0)
        return 0;
    s->chain = 0;
    s->n_reg = 0;
    s->no_reg = false;
    /* only prompt blocks are cached; keep one token to compute (its logits) */
    uint32_t max = (s->n_toks - 1) / RL_KV_BLOCK, pb = s->n_prompt / RL_KV_BLOCK;
    if (max > pb)
        max = pb;
    uint32_t n = 0;
    for (; n < max; n++) {
        uint64_t serial;
        int64_t b = rl_prefix_find(p, s->chain, s->toks + (size_t)n * RL_KV_BLOCK, &serial);
        if (b < 0 || rl_kv_attach(p->kv, s->kv, (uint32_t)b) < 0)
            break;
        s->chain = serial;
        s->n_reg = n + 1;
    }
    s->attached = n * RL_KV_BLOCK;
    s->counted = false; /* counted once it really runs (rl_prefix_seq_register) */
    return s->attached;
}

static bool below(const rl_prefix_seq *v, const rl_prefix_seq *s)
{
    return v->priority < s->priority || (v->priority == s->priority && v->age > s->age);
}

/* The newest lowest-priority sequence below s that holds blocks and is not in
 * the running step. */
static rl_prefix_seq *pick_victim(rl_prefix *p, const rl_prefix_seq *s)
{
    rl_prefix_seq *best = NULL;
    for (rl_prefix_seq *v = p->seqs; v; v = v->next) {
        if (v == s || v->in_step || v->kv->n_blocks == 0 || !below(v, s))
            continue;
        if (!best || below(v, best))
            best = v;
    }
    return best;
}

static void preempt(rl_prefix *p, rl_prefix_seq *v, bool count)
{
    /* Its tokens stay in toks: it recomputes them (without sampling) later. */
    rl_kv_release(p->kv, v->kv);
    v->chain = 0;
    v->n_reg = 0;
    v->attached = 0;
    v->counted = false;
    if (count) {
        v->n_preempted++;
        p->st.preempted++;
    }
}

static bool others_hold_blocks(const rl_prefix *p, const rl_prefix_seq *s)
{
    for (const rl_prefix_seq *v = p->seqs; v; v = v->next)
        if (v != s && v->kv->n_blocks)
            return true;
    return false;
}

int rl_prefix_seq_reserve(rl_prefix *p, rl_prefix_seq *s, uint32_t n_pos)
{
    for (;;) {
        int rc = rl_kv_reserve(p->kv, s->kv, n_pos);
        if (rc == 0)
            rc = rl_kv_make_writable(p->kv, s->kv, s->kv->n_pos, n_pos);
        if (rc != -ENOSPC)
            return rc;
        if (rl_prefix_evict_one(p))
            continue;
        rl_prefix_seq *v = pick_victim(p, s);
        if (!v)
            break;
        preempt(p, v, true);
    }
    /* Nobody below s to take from: s waits for the others to finish, unless
     * it could not fit even alone. */
    if (!others_hold_blocks(p, s))
        return -ENOSPC;
    /* a sequence that only held blocks from the cache just waits: not counted */
    if (s->kv->n_blocks)
        preempt(p, s, s->kv->n_pos > s->attached);
    return -EAGAIN;
}

void rl_prefix_seq_register(rl_prefix *p, rl_prefix_seq *s)
{
    if (!s->counted) {
        s->counted = true;
        p->st.lookups++;
        p->st.lookup_tokens += s->n_toks;
        if (s->attached) {
            p->st.hits++;
            p->st.hit_tokens += s->attached;
        }
    }
    while (!s->no_reg && (s->n_reg + 1) * RL_KV_BLOCK <= s->kv->n_pos &&
           (s->n_reg + 1) * RL_KV_BLOCK <= s->n_prompt) {
        uint64_t serial = rl_prefix_add(p, s->chain, s->toks + (size_t)s->n_reg * RL_KV_BLOCK,
                                        s->kv->blocks[s->n_reg]);
        if (!serial) {
            s->no_reg = true;
            return;
        }
        s->chain = serial;
        s->n_reg++;
    }
}

void rl_prefix_get_stats(const rl_prefix *p, rl_prefix_stats *st)
{
    *st = p->st;
}
