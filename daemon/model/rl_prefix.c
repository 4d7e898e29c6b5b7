/* rl_prefix.c - prefix cache: (parent serial, block tokens) -> KV block, with
 * LRU eviction of blocks that only the cache holds. Entries are indexed by
 * block id (a block is cached at most once). */
#include "rl_prefix_impl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint32_t hash_of(uint64_t parent, const int32_t *toks)
{
    uint64_t h = parent * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    for (int i = 0; i < RL_KV_BLOCK; i++) {
        h ^= (uint32_t)toks[i];
        h *= 0xFF51AFD7ED558CCDull;
        h ^= h >> 29;
    }
    return (uint32_t)(h ^ (h >> 32));
}

int rl_prefix_new(rl_prefix **out, rl_kv *kv, uint32_t n_blocks)
{
    *out = NULL;
    rl_prefix *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    uint32_t nb = 1;
    while (nb < n_blocks && nb < (1u << 30))
        nb <<= 1;
    p->kv = kv;
    p->n_blocks = n_blocks;
    p->mask = nb - 1;
    p->e = calloc(n_blocks, sizeof *p->e);
    p->bucket = malloc(sizeof(uint32_t) * nb);
    if (!p->e || !p->bucket) {
        free(p->e);
        free(p->bucket);
        free(p);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < nb; i++)
        p->bucket[i] = RL_PREFIX_NONE;
    p->head = p->tail = RL_PREFIX_NONE;
    p->next_serial = 1;
    *out = p;
    return 0;
}

static void lru_unlink(rl_prefix *p, uint32_t b)
{
    rl_prefix_ent *x = &p->e[b];
    if (x->prev != RL_PREFIX_NONE)
        p->e[x->prev].next = x->next;
    else
        p->head = x->next;
    if (x->next != RL_PREFIX_NONE)
        p->e[x->next].prev = x->prev;
    else
        p->tail = x->prev;
}

static void lru_push_front(rl_prefix *p, uint32_t b)
{
    rl_prefix_ent *x = &p->e[b];
    x->prev = RL_PREFIX_NONE;
    x->next = p->head;
    if (p->head != RL_PREFIX_NONE)
        p->e[p->head].prev = b;
    p->head = b;
    if (p->tail == RL_PREFIX_NONE)
        p->tail = b;
}

static void drop(rl_prefix *p, uint32_t b)
{
    rl_prefix_ent *x = &p->e[b];
    uint32_t *link = &p->bucket[hash_of(x->parent, x->toks) & p->mask];
    while (*link != b)
        link = &p->e[*link].hnext;
    *link = x->hnext;
    lru_unlink(p, b);
    x->serial = 0;
    p->n_ent--;
    rl_kv_set_cached(p->kv, b, false);
    rl_kv_block_unref(p->kv, b);
}

void rl_prefix_free(rl_prefix *p)
{
    if (!p)
        return;
    while (p->head != RL_PREFIX_NONE)
        drop(p, p->head);
    free(p->e);
    free(p->bucket);
    free(p);
}

static uint32_t lookup(const rl_prefix *p, uint64_t parent, const int32_t *toks)
{
    for (uint32_t b = p->bucket[hash_of(parent, toks) & p->mask]; b != RL_PREFIX_NONE; b = p->e[b].hnext) {
        const rl_prefix_ent *x = &p->e[b];
        if (x->parent == parent && memcmp(x->toks, toks, sizeof x->toks) == 0)
            return b;
    }
    return RL_PREFIX_NONE;
}

int64_t rl_prefix_find(rl_prefix *p, uint64_t parent, const int32_t *toks, uint64_t *serial)
{
    uint32_t b = lookup(p, parent, toks);
    if (b == RL_PREFIX_NONE)
        return -1;
    lru_unlink(p, b);
    lru_push_front(p, b);
    *serial = p->e[b].serial;
    return b;
}

uint64_t rl_prefix_add(rl_prefix *p, uint64_t parent, const int32_t *toks, uint32_t b)
{
    uint32_t have = lookup(p, parent, toks);
    if (have != RL_PREFIX_NONE)
        return p->e[have].serial;
    if (b >= p->n_blocks)
        return 0;
    if (p->e[b].serial) /* already cached under another chain: keep the first */
        return 0;
    rl_prefix_ent *x = &p->e[b];
    x->serial = p->next_serial++;
    x->parent = parent;
    memcpy(x->toks, toks, sizeof x->toks);
    uint32_t *head = &p->bucket[hash_of(parent, toks) & p->mask];
    x->hnext = *head;
    *head = b;
    lru_push_front(p, b);
    p->n_ent++;
    rl_kv_block_ref(p->kv, b);
    rl_kv_set_cached(p->kv, b, true);
    return x->serial;
}

bool rl_prefix_evict_one(rl_prefix *p)
{
    /* Every cached block also held by a sequence (a full pool under load): no
     * walk over the whole cache to find that out. */
    if (rl_kv_cached_idle(p->kv) == 0)
        return false;
    for (uint32_t b = p->tail; b != RL_PREFIX_NONE; b = p->e[b].prev) {
        if (rl_kv_block_refs(p->kv, b) == 1) {
            drop(p, b);
            return true;
        }
    }
    return false;
}

uint32_t rl_prefix_entries(const rl_prefix *p)
{
    return p->n_ent;
}

bool rl_prefix_cached(const rl_prefix *p, uint32_t b)
{
    return b < p->n_blocks && p->e[b].serial != 0;
}

/* Counted by the pool as references change: the engine asks after every step,
 * and a scan of the cache cost ~12 us per step on the CPU with 10,000 cached
 * blocks (docs/PERFORMANCE.md, TTFT session 3). */
uint32_t rl_prefix_idle_blocks(const rl_prefix *p)
{
    return rl_kv_cached_idle(p->kv);
}

