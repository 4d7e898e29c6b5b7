/* tcu_kv.h - the paged KV pool the CUDA KV tests share: a case of a few
 * sequences whose block tables are shuffled distinct ids of a pool with some
 * blocks that belong to nobody, layer LAYER of NL, and the pool's addressing
 * (rl_cuda.h, rl_cu_kv). */
#ifndef TCU_KV_H
#define TCU_KV_H

#include "tcu_util.h"

enum { NL = 3, LAYER = 1 };

typedef struct pool_case {
    rl_cu_rope r;
    int n_seq, n_ctx, stride; /* stride: blocks per sequence */
    uint32_t n_blocks;
    int32_t *bt;              /* [n_seq][stride], shuffled distinct ids */
} pool_case;

static inline void make_case(pool_case *c, uint64_t *s, int head_dim, bool neox)
{
    c->r = (rl_cu_rope){.n_head = 8, .n_head_kv = 2, .head_dim = head_dim, .n_rot = head_dim, .freq_base = 1e4f,
                        .neox = neox};
    c->n_seq = 3;
    c->n_ctx = 300;
    c->stride = (c->n_ctx + RL_CU_KV_BLOCK - 1) / RL_CU_KV_BLOCK;
    c->n_blocks = (uint32_t)(c->n_seq * c->stride + 5); /* some blocks belong to nobody */
    uint32_t *perm = malloc(sizeof(uint32_t) * c->n_blocks);
    for (uint32_t i = 0; i < c->n_blocks; i++)
        perm[i] = i;
    for (uint32_t i = c->n_blocks - 1; i > 0; i--) {
        uint32_t j = (uint32_t)(tcu_rng_next(s) % (i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    c->bt = malloc(sizeof(int32_t) * c->n_seq * c->stride);
    for (int i = 0; i < c->n_seq * c->stride; i++)
        c->bt[i] = (int32_t)perm[i];
    free(perm);
}

static inline rl_cu_kv dev_kv(const pool_case *c, void *pool, int32_t *d_bt, bool q8)
{
    return (rl_cu_kv){.pool = pool, .n_blocks = c->n_blocks, .n_layer = NL, .n_head_kv = (uint32_t)c->r.n_head_kv,
                      .head_dim = (uint32_t)c->r.head_dim, .q8 = q8, .bt = d_bt, .bt_stride = (uint32_t)c->stride};
}

/* Index of the (block, layer LAYER, K|V, head) unit of RL_CU_KV_BLOCK rows. */
static inline size_t unit_of(const pool_case *c, int64_t blk, int which, int h)
{
    return (((size_t)blk * NL + LAYER) * 2 + which) * c->r.n_head_kv + h;
}

/* fp16 pool: element offset of the row of (block, K|V, head, position t). */
static inline size_t pool_off(const pool_case *c, int64_t blk, int which, int h, int t)
{
    return (unit_of(c, blk, which, h) * RL_CU_KV_BLOCK + t % RL_CU_KV_BLOCK) * c->r.head_dim;
}

#endif
