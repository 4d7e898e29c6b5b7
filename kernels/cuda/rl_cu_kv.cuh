/* rl_cu_kv.cuh - how the RoPE+KV-write and attention kernels find a KV row:
 * two addressing policies with one interface, so each kernel is written once.
 *   rl_kv_slots: the contiguous cache, [slot][n_ctx][n_head_kv * head_dim] per layer
 *                (kernel tests, rl_cu_rope_kv / rl_cu_attn_decode);
 *   rl_kv_paged: the block pool of rl_cuda.h (rl_cu_kv), through block tables.
 * ok(b, p): query/token row b may use position p (its slot or block-table row
 * exists and p is inside it). k()/v(): the row of kv head h at position t;
 * reads through an out-of-range block id land in block 0 (memory stays in
 * bounds; the host never hands such ids out), writes go through wk()/wv(),
 * which return NULL for them. */
#ifndef RL_CU_KV_CUH
#define RL_CU_KV_CUH

#include "rl_cu_common.cuh"

struct rl_kv_slots {
    __half *kc, *vc;
    const int32_t *slot;
    int64_t n_ctx;
    int kvdim, hd;
    __device__ __forceinline__ bool ok(int b, int64_t p) const { return p >= 0 && p < n_ctx && slot[b] >= 0; }
    __device__ __forceinline__ int64_t off(int b, int h, int64_t t) const
    {
        return ((int64_t)slot[b] * n_ctx + t) * kvdim + (int64_t)h * hd;
    }
    __device__ __forceinline__ const __half *k(int b, int h, int64_t t) const { return kc + off(b, h, t); }
    __device__ __forceinline__ const __half *v(int b, int h, int64_t t) const { return vc + off(b, h, t); }
    __device__ __forceinline__ __half *wk(int b, int h, int64_t t) const { return kc + off(b, h, t); }
    __device__ __forceinline__ __half *wv(int b, int h, int64_t t) const { return vc + off(b, h, t); }
};

struct rl_kv_paged {
    __half *pool;
    const int32_t *bt;  /* [rows][stride] */
    const int32_t *row; /* per token / query: its block-table row, < 0: none */
    uint32_t stride, n_blocks, n_layer, n_head_kv, layer;
    int hd;
    __device__ __forceinline__ bool ok(int b, int64_t p) const
    {
        return row[b] >= 0 && p >= 0 && p < (int64_t)stride * RL_CU_KV_BLOCK;
    }
    __device__ __forceinline__ int64_t block(int b, int64_t t) const
    {
        return bt[(int64_t)row[b] * stride + t / RL_CU_KV_BLOCK];
    }
    __device__ __forceinline__ int64_t off(int64_t blk, int which, int h, int64_t t) const
    {
        return ((((blk * n_layer + layer) * 2 + which) * n_head_kv + h) * RL_CU_KV_BLOCK + t % RL_CU_KV_BLOCK) *
               (int64_t)hd;
    }
    __device__ __forceinline__ const __half *k(int b, int h, int64_t t) const
    {
        int64_t blk = block(b, t);
        return pool + off(blk >= 0 && blk < n_blocks ? blk : 0, 0, h, t);
    }
    __device__ __forceinline__ const __half *v(int b, int h, int64_t t) const
    {
        int64_t blk = block(b, t);
        return pool + off(blk >= 0 && blk < n_blocks ? blk : 0, 1, h, t);
    }
    __device__ __forceinline__ __half *wk(int b, int h, int64_t t) const
    {
        int64_t blk = block(b, t);
        return blk >= 0 && blk < n_blocks ? pool + off(blk, 0, h, t) : nullptr;
    }
    __device__ __forceinline__ __half *wv(int b, int h, int64_t t) const
    {
        int64_t blk = block(b, t);
        return blk >= 0 && blk < n_blocks ? pool + off(blk, 1, h, t) : nullptr;
    }
};

static inline rl_kv_paged rl_kv_paged_make(const rl_cu_kv *kv, const int32_t *d_row, uint32_t layer)
{
    rl_kv_paged a;
    a.pool = (__half *)kv->pool;
    a.bt = kv->bt;
    a.row = d_row;
    a.stride = kv->bt_stride;
    a.n_blocks = kv->n_blocks;
    a.n_layer = kv->n_layer;
    a.n_head_kv = kv->n_head_kv;
    a.layer = layer;
    a.hd = (int)kv->head_dim;
    return a;
}

static inline bool rl_kv_paged_valid(const rl_cu_kv *kv, const rl_cu_rope *r, uint32_t layer)
{
    return kv && kv->pool && kv->bt && kv->bt_stride > 0 && kv->n_blocks > 0 && layer < kv->n_layer &&
           kv->n_head_kv == (uint32_t)r->n_head_kv && kv->head_dim == (uint32_t)r->head_dim;
}

#endif
