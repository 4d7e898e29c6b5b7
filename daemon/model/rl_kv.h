/* rl_kv.h - the paged KV cache.
 *
 * One pool of fixed-size blocks of RL_KV_BLOCK positions, shared by every
 * sequence; each sequence has a block table mapping its positions to blocks
 * (position p lives in blocks[p / RL_KV_BLOCK], slot p % RL_KV_BLOCK).
 * A block holds, for every layer, K and V of RL_KV_BLOCK positions, laid out
 * per KV head so a head's rows for the block are contiguous:
 *   block[layer][K|V][kv_head][slot][head_dim values of type]
 * Types: F16 (default), Q8_0 (head_dim a multiple of 32), F32 (exact, tests).
 * The pool is reserved with MAP_NORESERVE: untouched blocks cost no memory. */
#ifndef RL_KV_H
#define RL_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rl_types.h"

#define RL_KV_BLOCK 16

typedef struct rl_kv rl_kv;

typedef struct rl_kv_seq {
    uint32_t *blocks;    /* block table */
    uint32_t n_blocks;   /* blocks held */
    uint32_t cap;        /* table capacity */
    uint32_t n_pos;      /* positions written */
} rl_kv_seq;

typedef struct rl_kv_stats {
    uint32_t blocks_total, blocks_used, blocks_free;
    size_t block_bytes;
} rl_kv_stats;

/* n_blocks: pool size. Returns 0, -EINVAL (type/shape) or -ENOMEM, message in err. */
int rl_kv_new(rl_kv **out, uint32_t n_layer, uint32_t n_head_kv, uint32_t head_dim, rl_type type,
              uint32_t n_blocks, char *err, size_t errlen);
/* A pool whose storage lives elsewhere (a device backend): bookkeeping only
 * (block tables, reference counts, copy-on-write through copy()); rl_kv_store
 * and rl_kv_rows must not be used on it. */
int rl_kv_new_external(rl_kv **out, uint32_t n_layer, uint32_t n_head_kv, uint32_t head_dim, uint32_t n_blocks,
                       size_t block_bytes, int (*copy)(void *ctx, uint32_t dst, uint32_t src), void *copy_ctx,
                       char *err, size_t errlen);
void rl_kv_free(rl_kv *kv);
rl_type rl_kv_type(const rl_kv *kv);
void rl_kv_get_stats(const rl_kv *kv, rl_kv_stats *st);
/* Bytes of one block (all layers, K and V). */
size_t rl_kv_block_bytes(uint32_t n_layer, uint32_t n_head_kv, uint32_t head_dim, rl_type type);

/* Make room for positions [0, n_pos) of s. -ENOSPC when the pool is exhausted
 * (nothing is taken then). */
int rl_kv_reserve(rl_kv *kv, rl_kv_seq *s, uint32_t n_pos);
/* Give back every block of s and reset it (a shared block stays with its other holders). */
void rl_kv_release(rl_kv *kv, rl_kv_seq *s);

/* Shared blocks (the prefix cache, rl_prefix.h). Each block is reference-counted:
 * a sequence's block table holds one reference per entry, the prefix cache one
 * per cached block; a block returns to the pool when its count drops to 0. */
void rl_kv_block_ref(rl_kv *kv, uint32_t b);
void rl_kv_block_unref(rl_kv *kv, uint32_t b);
uint32_t rl_kv_block_refs(const rl_kv *kv, uint32_t b);
/* The prefix cache marks the blocks it holds a reference on (after taking it,
 * before dropping it), so that the pool counts the cached blocks nobody else
 * holds as reference counts change: rl_kv_cached_idle is O(1), not a scan of
 * the cache (which fills the whole pool in a long-running daemon). A block that
 * returns to the pool is unmarked. */
void rl_kv_set_cached(rl_kv *kv, uint32_t b, bool cached);
uint32_t rl_kv_cached_idle(const rl_kv *kv);
/* Append the full, held block b to s (s must end on a block boundary); n_pos
 * grows by RL_KV_BLOCK. -EINVAL (free block, unaligned s) or -ENOMEM. */
int rl_kv_attach(rl_kv *kv, rl_kv_seq *s, uint32_t b);
/* Copy-on-write: give s private copies of the shared blocks covering positions
 * [pos_from, pos_to) before they are written. -ENOSPC when the pool is empty. */
int rl_kv_make_writable(rl_kv *kv, rl_kv_seq *s, uint32_t pos_from, uint32_t pos_to);

/* Write K and V (n_head_kv * head_dim floats each) of one position. */
void rl_kv_store(rl_kv *kv, const rl_kv_seq *s, uint32_t layer, uint32_t pos, const float *k, const float *v);
/* K (which 0) or V (which 1) rows of one head in the i-th block of s:
 * RL_KV_BLOCK rows of head_dim values of the cache type. */
const void *rl_kv_rows(const rl_kv *kv, const rl_kv_seq *s, uint32_t i, uint32_t layer, int which, uint32_t head);
/* Bytes of one head row. */
size_t rl_kv_row_bytes(const rl_kv *kv);

#endif
