/* rl_prefix.h - the prefix cache: full KV blocks of recent prompts, found again
 * by their token chain so that requests starting with the same tokens (a system
 * prompt) share those blocks instead of computing them again.
 *
 * A cached block is identified by (parent, tokens): parent is the serial number
 * of the entry of the block before it (0 for the first block of a sequence) and
 * tokens are the RL_KV_BLOCK tokens it holds. Equal chains therefore mean equal
 * token prefixes, compared exactly (the hash only picks the bucket). Serial
 * numbers are never reused, so the children of an evicted entry can no longer
 * match anything and age out.
 *
 * The cache holds one reference on each cached block (rl_kv_block_ref); a block
 * only the cache holds is free to evict, least recently used first. Sequences
 * that attach a cached block share it read-only: it is full, and a sequence only
 * writes positions after it (rl_kv_make_writable copies a shared block anyway).
 *
 * Single-threaded: the engine's compute thread. */
#ifndef RL_PREFIX_H
#define RL_PREFIX_H

#include <stdbool.h>
#include <stdint.h>

#include <stdbool.h>

#include "rl_kv.h"

typedef struct rl_prefix rl_prefix;

/* n_blocks: the pool size of kv. Returns 0 or -ENOMEM. */
int rl_prefix_new(rl_prefix **out, rl_kv *kv, uint32_t n_blocks);
/* Drops every entry (their references) and frees the cache. NULL is fine. */
void rl_prefix_free(rl_prefix *p);

/* The cached block holding toks[0..RL_KV_BLOCK) after the entry `parent`, or
 * -1. On a hit *serial is that entry's serial and it becomes most recent. */
int64_t rl_prefix_find(rl_prefix *p, uint64_t parent, const int32_t *toks, uint64_t *serial);
/* Remember that block b (held by the caller, full) holds toks after `parent`.
 * Returns the entry's serial: a new one (the cache takes a reference on b), or
 * that of an equal entry already cached (b is then not taken). 0: no memory for
 * it (nothing cached; callers just stop registering). */
uint64_t rl_prefix_add(rl_prefix *p, uint64_t parent, const int32_t *toks, uint32_t b);
/* Evict the least recently used entry whose block nobody else holds, freeing
 * the block. false when there is none. */
bool rl_prefix_evict_one(rl_prefix *p);
/* Entries cached now. */
uint32_t rl_prefix_entries(const rl_prefix *p);
/* Cached blocks that nobody but the cache holds (reclaimable at once); O(1):
 * the pool keeps the count (rl_kv_cached_idle). */
uint32_t rl_prefix_idle_blocks(const rl_prefix *p);

/* ---- sequences (rl_prefix_seq.c) ----
 * What the engine keeps per sequence so that its KV can be shared, evicted and
 * recomputed: every token whose KV the sequence needs (prompt, then each
 * generated token once it was fed), its position in the cache's chain, its
 * priority and age. A sequence is in its prompt phase while kv->n_pos < n_toks:
 * at first only the prompt, after a preemption the prompt plus the tokens
 * generated so far (recomputed without sampling). */
typedef struct rl_prefix_seq {
    int32_t *toks;
    uint32_t n_toks, n_prompt, cap;
    rl_kv_seq *kv;
    uint64_t chain;      /* serial of the cache entry of block n_reg - 1; 0: none */
    uint32_t n_reg;      /* leading blocks whose cache entry is known */
    bool no_reg;         /* stop registering (cache out of room) */
    bool counted;        /* this (re)start is in the lookup statistics */
    uint32_t attached;   /* positions attached from the cache at this (re)start */
    bool in_step;        /* gathered into the running step: not a preemption victim */
    uint8_t priority;
    uint64_t age;        /* admission order: larger is newer */
    uint32_t n_preempted;
    struct rl_prefix_seq *prev, *next;
} rl_prefix_seq;

typedef struct rl_prefix_stats {
    uint64_t lookups, hits;          /* prompt starts looked up, and those that found blocks */
    uint64_t lookup_tokens, hit_tokens;
    uint64_t preempted;              /* sequences whose blocks were taken back */
} rl_prefix_stats;

/* Start tracking a sequence (copies prompt; room for max_tokens more). -ENOMEM. */
int rl_prefix_seq_init(rl_prefix *p, rl_prefix_seq *s, rl_kv_seq *kv, const int32_t *prompt, uint32_t n_prompt,
                       uint32_t max_tokens, uint8_t priority);
/* Stop tracking it and release its KV. Returns how many of its blocks are now
 * held only by the cache (idle), so callers can keep a count without a scan. */
uint32_t rl_prefix_seq_fini(rl_prefix *p, rl_prefix_seq *s);
/* A fed generated token joins the history. */
void rl_prefix_seq_push(rl_prefix_seq *s, int32_t tok);
/* At the start of (re)computation (kv->n_pos == 0): attach the cached blocks of
 * the longest known prefix, leaving at least one token to compute. Returns the
 * positions attached. */
uint32_t rl_prefix_seq_attach(rl_prefix *p, rl_prefix_seq *s);
/* Make room for positions [0, n_pos) and private copies of the blocks about to
 * be written from kv->n_pos on. When the pool is full: evict idle cached blocks,
 * then preempt the newest lowest-priority sequence below s not in the step.
 * Returns 0; -EAGAIN when s itself had to yield (its blocks were released, it
 * recomputes later); -ENOSPC when s cannot fit even alone; -ENOMEM. */
int rl_prefix_seq_reserve(rl_prefix *p, rl_prefix_seq *s, uint32_t n_pos);
/* After a forward pass: cache the prompt blocks s completed. */
void rl_prefix_seq_register(rl_prefix *p, rl_prefix_seq *s);
void rl_prefix_get_stats(const rl_prefix *p, rl_prefix_stats *st);

#endif
