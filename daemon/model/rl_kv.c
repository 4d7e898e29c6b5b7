/* rl_kv.c - paged KV cache: a block pool with a free stack, block tables per sequence. */
#include "rl_kv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct rl_kv {
    uint32_t n_layer, n_head_kv, head_dim;
    rl_type type;
    const rl_type_traits *tt;
    size_t row_bytes;   /* one head, one position */
    size_t block_bytes;
    uint32_t n_blocks;
    uint8_t *mem;
    size_t mem_size;
    uint32_t *free_stack;
    uint32_t n_free;
    uint32_t *ref;      /* holders of each block (sequences, the prefix cache); 0: free */
    uint8_t *cached;    /* the prefix cache holds the block (rl_kv_set_cached) */
    uint32_t n_idle;    /* blocks cached with ref 1: held by the cache alone */
    int (*copy)(void *ctx, uint32_t dst, uint32_t src); /* external storage: block copy */
    void *copy_ctx;
};

size_t rl_kv_block_bytes(uint32_t n_layer, uint32_t n_head_kv, uint32_t head_dim, rl_type type)
{
    return rl_type_row_size(type, head_dim) * RL_KV_BLOCK * n_head_kv * 2 * n_layer;
}

/* A pool of n_blocks free blocks of this shape, without storage. */
static rl_kv *pool_new(uint32_t n_layer, uint32_t n_head_kv, uint32_t head_dim, rl_type type, size_t block_bytes,
                       uint32_t n_blocks)
{
    rl_kv *kv = calloc(1, sizeof(*kv));
    if (!kv)
        return NULL;
    kv->n_layer = n_layer;
    kv->n_head_kv = n_head_kv;
    kv->head_dim = head_dim;
    kv->type = type;
    kv->tt = rl_type_get(type);
    kv->row_bytes = rl_type_row_size(type, head_dim);
    kv->block_bytes = block_bytes;
    kv->n_blocks = n_blocks;
    kv->free_stack = malloc(sizeof(uint32_t) * n_blocks);
    kv->ref = calloc(n_blocks, sizeof(uint32_t));
    kv->cached = calloc(n_blocks, 1);
    if (!kv->free_stack || !kv->ref || !kv->cached) {
        rl_kv_free(kv);
        return NULL;
    }
    /* low block ids on top of the stack, so a lightly used pool stays compact */
    for (uint32_t i = 0; i < n_blocks; i++)
        kv->free_stack[i] = n_blocks - 1 - i;
    kv->n_free = n_blocks;
    return kv;
}

int rl_kv_new(rl_kv **out, uint32_t n_layer, uint32_t n_head_kv, uint32_t head_dim, rl_type type,
              uint32_t n_blocks, char *err, size_t errlen)
{
    *out = NULL;
    const rl_type_traits *tt = rl_type_get(type);
    if (type != RL_TYPE_F32 && type != RL_TYPE_F16 && type != RL_TYPE_Q8_0) {
        snprintf(err, errlen, "KV cache type must be F32, F16 or Q8_0");
        return -EINVAL;
    }
    if (!tt || !tt->to_float || !tt->from_float || rl_type_row_size(type, head_dim) == 0) {
        snprintf(err, errlen, "KV cache type %s does not fit head dimension %u", tt && tt->name ? tt->name : "?",
                 head_dim);
        return -EINVAL;
    }
    if (n_blocks == 0 || n_layer == 0 || n_head_kv == 0) {
        snprintf(err, errlen, "empty KV cache");
        return -EINVAL;
    }
    size_t bb = rl_kv_block_bytes(n_layer, n_head_kv, head_dim, type);
    if (bb > SIZE_MAX / n_blocks) {
        snprintf(err, errlen, "KV cache too large");
        return -ENOMEM;
    }
    rl_kv *kv = pool_new(n_layer, n_head_kv, head_dim, type, bb, n_blocks);
    if (kv) {
        kv->mem_size = bb * n_blocks;
        kv->mem = mmap(NULL, kv->mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (kv->mem == MAP_FAILED)
            kv->mem = NULL;
    }
    if (!kv || !kv->mem) {
        snprintf(err, errlen, "cannot reserve %zu bytes of KV cache", bb * n_blocks);
        rl_kv_free(kv);
        return -ENOMEM;
    }
    *out = kv;
    return 0;
}

int rl_kv_new_external(rl_kv **out, uint32_t n_layer, uint32_t n_head_kv, uint32_t head_dim, uint32_t n_blocks,
                       size_t block_bytes, int (*copy)(void *ctx, uint32_t dst, uint32_t src), void *copy_ctx,
                       char *err, size_t errlen)
{
    *out = NULL;
    if (n_blocks == 0 || n_layer == 0 || n_head_kv == 0 || head_dim == 0 || !copy) {
        snprintf(err, errlen, "empty KV cache");
        return -EINVAL;
    }
    rl_kv *kv = pool_new(n_layer, n_head_kv, head_dim, RL_TYPE_F16, block_bytes, n_blocks);
    if (!kv) {
        snprintf(err, errlen, "out of memory for the KV block tables");
        return -ENOMEM;
    }
    kv->copy = copy;
    kv->copy_ctx = copy_ctx;
    *out = kv;
    return 0;
}

void rl_kv_free(rl_kv *kv)
{
    if (!kv)
        return;
    if (kv->mem)
        munmap(kv->mem, kv->mem_size);
    free(kv->free_stack);
    free(kv->ref);
    free(kv->cached);
    free(kv);
}

rl_type rl_kv_type(const rl_kv *kv)
{
    return kv->type;
}

size_t rl_kv_row_bytes(const rl_kv *kv)
{
    return kv->row_bytes;
}

void rl_kv_get_stats(const rl_kv *kv, rl_kv_stats *st)
{
    /* relaxed: get_info may read the count from another thread while the
     * compute thread changes it; a momentarily stale figure is fine */
    uint32_t nf = __atomic_load_n(&kv->n_free, __ATOMIC_RELAXED);
    st->blocks_total = kv->n_blocks;
    st->blocks_free = nf;
    st->blocks_used = kv->n_blocks - nf;
    st->block_bytes = kv->block_bytes;
}

static int table_room(rl_kv_seq *s, uint32_t need)
{
    if (need <= s->cap)
        return 0;
    uint32_t cap = s->cap ? s->cap : 8;
    while (cap < need)
        cap *= 2;
    uint32_t *nb = realloc(s->blocks, sizeof(uint32_t) * cap);
    if (!nb)
        return -ENOMEM;
    s->blocks = nb;
    s->cap = cap;
    return 0;
}

/* Every change of a reference count goes through here: it keeps n_idle, the
 * cached blocks that only the cache holds, exact without scanning the cache. */
static void ref_to(rl_kv *kv, uint32_t b, uint32_t r)
{
    if (kv->cached[b]) {
        if (kv->ref[b] == 1)
            kv->n_idle--;
        if (r == 1)
            kv->n_idle++;
    }
    kv->ref[b] = r;
}

static uint32_t take_block(rl_kv *kv)
{
    uint32_t b = kv->free_stack[kv->n_free - 1];
    __atomic_store_n(&kv->n_free, kv->n_free - 1, __ATOMIC_RELAXED); /* see rl_kv_get_stats */
    kv->cached[b] = 0; /* a free block is in no cache */
    ref_to(kv, b, 1);
    return b;
}

int rl_kv_reserve(rl_kv *kv, rl_kv_seq *s, uint32_t n_pos)
{
    uint32_t need = (n_pos + RL_KV_BLOCK - 1) / RL_KV_BLOCK;
    if (need <= s->n_blocks)
        return 0;
    uint32_t more = need - s->n_blocks;
    if (more > kv->n_free)
        return -ENOSPC;
    if (table_room(s, need) < 0)
        return -ENOMEM;
    while (s->n_blocks < need)
        s->blocks[s->n_blocks++] = take_block(kv);
    return 0;
}

void rl_kv_release(rl_kv *kv, rl_kv_seq *s)
{
    for (uint32_t i = 0; i < s->n_blocks; i++)
        rl_kv_block_unref(kv, s->blocks[i]);
    free(s->blocks);
    *s = (rl_kv_seq){0};
}

/* ---- shared blocks (prefix cache) ---- */

void rl_kv_block_ref(rl_kv *kv, uint32_t b)
{
    ref_to(kv, b, kv->ref[b] + 1);
}

void rl_kv_block_unref(rl_kv *kv, uint32_t b)
{
    if (kv->ref[b] == 0)
        return;
    ref_to(kv, b, kv->ref[b] - 1);
    if (kv->ref[b] == 0) {
        kv->cached[b] = 0;
        kv->free_stack[kv->n_free] = b;
        __atomic_store_n(&kv->n_free, kv->n_free + 1, __ATOMIC_RELAXED); /* see rl_kv_get_stats */
    }
}

uint32_t rl_kv_block_refs(const rl_kv *kv, uint32_t b)
{
    return b < kv->n_blocks ? kv->ref[b] : 0;
}

void rl_kv_set_cached(rl_kv *kv, uint32_t b, bool cached)
{
    if (b >= kv->n_blocks || kv->ref[b] == 0 || kv->cached[b] == cached)
        return;
    kv->cached[b] = cached;
    if (kv->ref[b] == 1) {
        if (cached)
            kv->n_idle++;
        else
            kv->n_idle--;
    }
}

uint32_t rl_kv_cached_idle(const rl_kv *kv)
{
    return kv->n_idle;
}

int rl_kv_attach(rl_kv *kv, rl_kv_seq *s, uint32_t b)
{
    if (b >= kv->n_blocks || kv->ref[b] == 0 || s->n_pos != s->n_blocks * RL_KV_BLOCK)
        return -EINVAL;
    if (table_room(s, s->n_blocks + 1) < 0)
        return -ENOMEM;
    ref_to(kv, b, kv->ref[b] + 1);
    s->blocks[s->n_blocks++] = b;
    s->n_pos += RL_KV_BLOCK;
    return 0;
}

int rl_kv_make_writable(rl_kv *kv, rl_kv_seq *s, uint32_t pos_from, uint32_t pos_to)
{
    for (uint32_t i = pos_from / RL_KV_BLOCK; i < s->n_blocks && (uint64_t)i * RL_KV_BLOCK < pos_to; i++) {
        uint32_t old = s->blocks[i];
        if (kv->ref[old] <= 1)
            continue;
        if (kv->n_free == 0)
            return -ENOSPC;
        uint32_t b = take_block(kv);
        if (kv->copy) {
            int rc = kv->copy(kv->copy_ctx, b, old);
            if (rc < 0) {
                rl_kv_block_unref(kv, b); /* back to the pool; s keeps the shared block */
                return rc;
            }
        } else {
            memcpy(kv->mem + (size_t)b * kv->block_bytes, kv->mem + (size_t)old * kv->block_bytes, kv->block_bytes);
        }
        ref_to(kv, old, kv->ref[old] - 1); /* still > 0: the others keep it */
        s->blocks[i] = b;
    }
    return 0;
}

static inline uint8_t *rows_at(const rl_kv *kv, uint32_t block, uint32_t layer, int which, uint32_t head)
{
    size_t off = (size_t)block * kv->block_bytes +
                 (((size_t)layer * 2 + (size_t)which) * kv->n_head_kv + head) * RL_KV_BLOCK * kv->row_bytes;
    return kv->mem + off;
}

const void *rl_kv_rows(const rl_kv *kv, const rl_kv_seq *s, uint32_t i, uint32_t layer, int which, uint32_t head)
{
    return rows_at(kv, s->blocks[i], layer, which, head);
}

void rl_kv_store(rl_kv *kv, const rl_kv_seq *s, uint32_t layer, uint32_t pos, const float *k, const float *v)
{
    uint32_t b = s->blocks[pos / RL_KV_BLOCK], slot = pos % RL_KV_BLOCK;
    for (uint32_t h = 0; h < kv->n_head_kv; h++) {
        kv->tt->from_float(k + (size_t)h * kv->head_dim, rows_at(kv, b, layer, 0, h) + slot * kv->row_bytes,
                           kv->head_dim);
        kv->tt->from_float(v + (size_t)h * kv->head_dim, rows_at(kv, b, layer, 1, h) + slot * kv->row_bytes,
                           kv->head_dim);
    }
}
