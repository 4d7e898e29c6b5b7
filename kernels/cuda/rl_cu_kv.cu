/* rl_cu_kv.cu - the KV cache's kernels: RoPE fused with the KV write (contiguous
 * slots or the paged pool, fp16 or int8, one kernel body through rl_cu_kv.cuh),
 * block copies for copy-on-write of shared prefix blocks. */
#include "rl_cu_kv.cuh"

/* One block per (token row, group of heads of q, k and v): ROPE_Y heads at a
 * time (threadIdx.y), one thread per element pair (threadIdx.x), so a thread
 * computes its pair's angle once for all the heads it visits. q heads are
 * rotated into q_out; k heads rotated and v heads copied into the cache at
 * the token's position (skipped when the row has no valid place). An int8
 * cache (KV::Q8) gets a rotated k head through shared memory (the pairs of
 * NeoX rotation are not the pairs of the quantization), then quantized per
 * 32 (rl_kv_q8_store); each y row syncs alone (a warp, or a named barrier). */
constexpr int ROPE_Y = 4;

__device__ __forceinline__ void rope_row_sync(int y)
{
    if (blockDim.x == 32)
        __syncwarp();
    else
        asm volatile("bar.sync %0, %1;" ::"r"(1 + y), "r"(blockDim.x) : "memory");
}

/* A K (h < n_head + n_head_kv) or V head's cache row at position p of token
 * row b (null when the row has no valid place). */
template <class KV>
__device__ __forceinline__ typename KV::wrow rope_dst(const KV &A, const rl_cu_rope &r, bool ok, int b, int h, int p)
{
    if (!ok)
        return typename KV::wrow{};
    return h >= r.n_head + r.n_head_kv ? A.wv(b, h - r.n_head - r.n_head_kv, p) : A.wk(b, h - r.n_head, p);
}

/* early: the position, its angles and the first head's cache row (the
 * step's inputs: uploaded before the step's first kernel, which every PDL
 * launch follows) before the PDL wait, so after it only the Q|K|V values
 * are waited for (RL_CU_ROPE_EARLY). */
template <class KV>
__global__ void k_rope_kv(const float *qkv, const int32_t *pos, KV A, rl_cu_rope r, float *q_out, int hpb,
                          bool early)
{
    __shared__ float vals[KV::Q8 ? ROPE_Y * 512 : 1];
    RL_TL_BLOCK(RL_TL_ROPE);
    rl_pdl_trigger();
    int b = blockIdx.y, hd = r.head_dim, k = threadIdx.x, y = threadIdx.y;
    int nh = r.n_head + 2 * r.n_head_kv, qdim = r.n_head * hd, kvdim = r.n_head_kv * hd;
    int half_rot = r.n_rot / 2;
    bool in = 2 * k < hd, rot = in && k < half_rot;
    int i0 = rot && r.neox ? k : 2 * k, i1 = rot && r.neox ? k + half_rot : 2 * k + 1;
    const int hf = (int)blockIdx.x * hpb + y, h1 = min(nh, (int)(blockIdx.x + 1) * hpb);
    int p = 0;
    bool ok = false;
    float sn = 0.0f, cs = 1.0f;
    typename KV::wrow d0{};
    auto place = [&]() {
        p = pos[b];
        ok = A.ok(b, p);
        if (rot)
            rl_rope_sincos(r, k, p, sn, cs);
        if (hf < h1 && hf >= r.n_head)
            d0 = rope_dst(A, r, ok, b, hf, p);
    };
    if (early)
        place();
    rl_pdl_wait();
    RL_TL_WAITED();
    if (!early)
        place();
    const float *row = qkv + (int64_t)b * (qdim + 2 * kvdim);
    for (int h = hf; h < h1; h += ROPE_Y) { /* the same heads for a whole y row */
        const float *src = row + h * hd;
        if (h >= r.n_head + r.n_head_kv) { /* V: plain copy */
            typename KV::wrow dv = h == hf ? d0 : rope_dst(A, r, ok, b, h, p);
            if constexpr (KV::Q8) {
                rl_kv_q8_store(src, hd, k, dv); /* straight from qkv: no rotation */
            } else if (in && !KV::nil(dv)) {
                dv[2 * k] = __float2half(src[2 * k]);
                dv[2 * k + 1] = __float2half(src[2 * k + 1]);
            }
            continue;
        }
        float v0 = 0.0f, v1 = 0.0f;
        if (in) {
            rl_rope_rot(src[i0], src[i1], cs, sn, v0, v1);
        }
        if (h < r.n_head) {
            if (in) {
                float *dq = q_out + (int64_t)b * qdim + h * hd;
                dq[i0] = v0;
                dq[i1] = v1;
            }
            continue;
        }
        typename KV::wrow dk = h == hf ? d0 : rope_dst(A, r, ok, b, h, p);
        if constexpr (KV::Q8) { /* the rotated head in shared memory, then quantized per 32 */
            float *vy = vals + y * 512;
            if (in) {
                vy[i0] = v0;
                vy[i1] = v1;
            }
            rope_row_sync(y);
            rl_kv_q8_store(vy, hd, k, dk);
            rope_row_sync(y); /* before the row's next k head overwrites vy */
        } else if (in && !KV::nil(dk)) {
            dk[i0] = __float2half(v0);
            dk[i1] = __float2half(v1);
        }
    }
}

static bool rope_args_ok(int batch, const rl_cu_rope *r)
{
    return batch >= 1 && batch <= 65535 && rl_rope_valid(r);
}

/* RL_CU_ROPE_EARLY=0: the position and cache row looked up after the PDL
 * wait (measurements). */
static bool rope_early(void)
{
    static int on = -1;
    return rl_env_switch("RL_CU_ROPE_EARLY", true, &on);
}

template <class KV>
static int rope_launch(const float *d_qkv, int batch, const int32_t *d_pos, KV A, const rl_cu_rope *r, float *d_q,
                       cudaStream_t s)
{
    if (KV::Q8 && (r->head_dim % 32 || r->head_dim > 512))
        return -EINVAL;
    int threads = (r->head_dim / 2 + 31) / 32 * 32, nh = r->n_head + 2 * r->n_head_kv;
    /* heads per block: every head its own y row for small batches (enough blocks), more rows of heads per
     * block for large ones (fewer, longer blocks; a 512-token prompt step of 96 heads: 1,536 blocks) */
    int hpb = ROPE_Y * (batch >= 128 ? 8 : batch >= 16 ? 2 : 1);
    rl_launch(k_rope_kv<KV>, dim3((nh + hpb - 1) / hpb, batch), dim3(threads, ROPE_Y), s, d_qkv, d_pos, A, *r, d_q,
              hpb, rope_early());
    return RL_CU_LAUNCHED("rope_kv");
}

extern "C" int rl_cu_rope_kv(const float *d_qkv, int batch, const int32_t *d_pos, const int32_t *d_slot,
                             const rl_cu_rope *r, int64_t n_ctx, float *d_q, void *d_kcache, void *d_vcache,
                             cudaStream_t s)
{
    if (!rope_args_ok(batch, r))
        return -EINVAL;
    rl_kv_slots A = rl_kv_slots_make((void *)d_kcache, (void *)d_vcache, d_slot, n_ctx, r->n_head_kv * r->head_dim,
                                     r->head_dim);
    return rope_launch(d_qkv, batch, d_pos, A, r, d_q, s);
}

extern "C" int rl_cu_rope_kv_paged(const float *d_qkv, int n_tok, const int32_t *d_pos, const int32_t *d_row,
                                   const rl_cu_rope *r, const rl_cu_kv *kv, uint32_t layer, float *d_q,
                                   cudaStream_t s)
{
    if (!rope_args_ok(n_tok, r) || !rl_kv_paged_valid(kv, r, layer))
        return -EINVAL;
    if (kv->q8)
        return rope_launch(d_qkv, n_tok, d_pos, rl_kv_paged_make<rl_kv_q8>(kv, d_row, layer), r, d_q, s);
    return rope_launch(d_qkv, n_tok, d_pos, rl_kv_paged_make<rl_kv_f16>(kv, d_row, layer), r, d_q, s);
}

extern "C" size_t rl_cu_kv_block_bytes(uint32_t n_layer, uint32_t n_head_kv, uint32_t head_dim, bool q8)
{
    if (q8)
        return head_dim % 32 ? 0 : (size_t)n_layer * 2 * n_head_kv * (size_t)rl_kv_q8::unit_bytes((int)head_dim);
    return (size_t)n_layer * 2 * n_head_kv * RL_CU_KV_BLOCK * head_dim * sizeof(__half);
}

extern "C" int rl_cu_kv_copy_block(const rl_cu_kv *kv, uint32_t dst, uint32_t src, cudaStream_t s)
{
    if (!kv || !kv->pool || dst >= kv->n_blocks || src >= kv->n_blocks)
        return -EINVAL;
    size_t bb = rl_cu_kv_block_bytes(kv->n_layer, kv->n_head_kv, kv->head_dim, kv->q8);
    char *p = (char *)kv->pool;
    return rl_cu_check(cudaMemcpyAsync(p + dst * bb, p + src * bb, bb, cudaMemcpyDeviceToDevice, s), "KV block copy");
}

RL_TL_TU(kv)
