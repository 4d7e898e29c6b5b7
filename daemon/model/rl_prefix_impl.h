/* rl_prefix_impl.h - the prefix cache's state, shared by rl_prefix.c (the
 * cache) and rl_prefix_seq.c (the sequences using it). Private. */
#ifndef RL_PREFIX_IMPL_H
#define RL_PREFIX_IMPL_H

#include "rl_prefix.h"

#define RL_PREFIX_NONE UINT32_MAX

typedef struct rl_prefix_ent {
    uint64_t serial;        /* 0: slot unused */
    uint64_t parent;
    int32_t toks[RL_KV_BLOCK];
    uint32_t hnext;         /* bucket chain */
    uint32_t prev, next;    /* LRU list, head = most recent */
} rl_prefix_ent;

struct rl_prefix {
    rl_kv *kv;
    uint32_t n_blocks, n_ent;
    rl_prefix_ent *e;
    uint32_t *bucket, mask;
    uint32_t head, tail;
    uint64_t next_serial;
    /* sequences (rl_prefix_seq.c) */
    struct rl_prefix_seq *seqs;
    uint64_t next_age;
    rl_prefix_stats st;
};

/* Block b is in the cache. */
bool rl_prefix_cached(const rl_prefix *p, uint32_t b);

#endif
