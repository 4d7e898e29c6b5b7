/* rl_cu_attn.cu - attention of single query tokens over the fp16 KV cache,
 * split across blocks (flash-decoding): each block scores one slice of the
 * positions for one head with an online softmax, and the last block of each
 * head to finish merges the slices. Grouped-query heads read their shared KV head. Prefill uses the
 * same kernels with one query per prompt token (causal by each one's pos). */
#include "rl_cu_kv.cuh"

#define ATT_THREADS 128
#define ATT_TILE 128
#define ATT_MAX_HD 256

extern "C" int rl_cu_attn_splits(int batch, int n_head)
{
    int want = (2 * 132 + batch * n_head - 1) / (batch * n_head);
    return want < 1 ? 1 : want > 32 ? 32 : want;
}

/* Scratch: a fixed area of arrival counters, one per (batch row, head), then
 * the partials. Fixed, so that calls with different batch sizes sharing one
 * scratch never read each other's partials as counters. The counters must be
 * zero before the first launch (cudaMemset once); every launch leaves them
 * zero again. */
#define ATT_MAX_COUNTERS 65536
static size_t counters_bytes(int batch, int n_head)
{
    (void)batch;
    (void)n_head;
    return ATT_MAX_COUNTERS * sizeof(unsigned);
}

extern "C" size_t rl_cu_attn_scratch_bytes(int batch, int n_head, int head_dim, int n_split)
{
    return counters_bytes(batch, n_head) + (size_t)batch * n_head * n_split * (head_dim + 2) * sizeof(float);
}

/* Grid (n_split, n_head, batch). Each block: online softmax over its slice
 * of positions; the last block to finish a head merges all slices (arrival
 * counted with an atomic after a fence) and resets the counter. */
template <int HDC, class KV> /* head dim known at compile time (0: read from r); KV addressing */
__global__ void __launch_bounds__(ATT_THREADS)
k_attn_split(const float *q, KV A, const int32_t *pos, rl_cu_rope r, unsigned *counters, float *scratch,
             rl_cu_act out)
{
    __shared__ float sq[ATT_MAX_HD];
    __shared__ float ss[ATT_TILE];
    __shared__ float red[32];
    __shared__ float vred[ATT_THREADS * 8];
    __shared__ bool s_last;
    rl_pdl_trigger();
    rl_pdl_wait();
    int sp = blockIdx.x, h = blockIdx.y, b = blockIdx.z, n_split = gridDim.x;
    const int hd = HDC ? HDC : r.head_dim;
    int kvh = h / (r.n_head / r.n_head_kv);
    int tid = threadIdx.x;
    int p = pos[b];
    int64_t len = A.ok(b, p) ? (int64_t)p + 1 : 0;
    int64_t chunk = (len + n_split - 1) / n_split;
    int64_t t0 = sp * chunk, t1 = t0 + chunk < len ? t0 + chunk : len;
    float scale = rsqrtf((float)hd);
    for (int d = tid; d < hd; d += ATT_THREADS)
        sq[d] = q[((int64_t)b * r.n_head + h) * hd + d] * scale;
    const bool vec = hd % 8 == 0;
    const int G = vec ? hd / 8 : 1, P = ATT_THREADS / G; /* dim groups of 8, position groups */
    const int g = tid % G, pg = tid / G;
    float m = -INFINITY, l = 0.0f, acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    __syncthreads();
    for (int64_t tile = t0; tile < t1; tile += ATT_TILE) {
        int nt = (int)(t1 - tile < ATT_TILE ? t1 - tile : ATT_TILE);
        /* Scores: one thread per position, independent 16-byte loads. */
        for (int j = tid; j < nt; j += ATT_THREADS) {
            const __half *kr = A.k(b, kvh, tile + j);
            float dot = 0.0f;
            if (vec) {
#pragma unroll(HDC ? 16 : 4)
                for (int d = 0; d < hd; d += 8) {
                    uint4 raw = *(const uint4 *)(kr + d);
                    const __half2 *h2 = (const __half2 *)&raw;
#pragma unroll
                    for (int k = 0; k < 4; k++) {
                        float2 f = __half22float2(h2[k]);
                        dot += sq[d + 2 * k] * f.x + sq[d + 2 * k + 1] * f.y;
                    }
                }
            } else {
                for (int d = 0; d < hd; d++)
                    dot += sq[d] * __half2float(kr[d]);
            }
            ss[j] = dot;
        }
        __syncthreads();
        float tmax = -INFINITY;
        for (int j = tid; j < nt; j += ATT_THREADS)
            tmax = fmaxf(tmax, ss[j]);
        tmax = rl_block_max(tmax, red);
        float m_new = fmaxf(m, tmax);
        float corr = __expf(m - m_new); /* m = -inf on the first tile: 0 */
        float psum = 0.0f;
        for (int j = tid; j < nt; j += ATT_THREADS) {
            float e = __expf(ss[j] - m_new);
            ss[j] = e;
            psum += e;
        }
        psum = rl_block_sum(psum, red); /* its barriers also publish ss */
        l = l * corr + psum;
#pragma unroll
        for (int e = 0; e < 8; e++)
            acc[e] *= corr;
        if (vec) { /* thread (g, pg): dims 8g..8g+7 over positions pg, pg+P, ... */
#pragma unroll 4
            for (int j = pg; pg < P && j < nt; j += P) { /* threads past G*P idle */
                uint4 raw = *(const uint4 *)(A.v(b, kvh, tile + j) + 8 * g);
                const __half2 *h2 = (const __half2 *)&raw;
                float w = ss[j];
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    float2 f = __half22float2(h2[k]);
                    acc[2 * k] += w * f.x;
                    acc[2 * k + 1] += w * f.y;
                }
            }
        } else if (tid < hd) {
            for (int j = 0; j < nt; j++)
                acc[0] += ss[j] * __half2float(A.v(b, kvh, tile + j)[tid]);
        }
        m = m_new;
        __syncthreads(); /* ss is rewritten by the next tile */
    }
    float *o = scratch + (((int64_t)b * r.n_head + h) * n_split + sp) * (hd + 2);
    if (vec) { /* sum the position groups */
        if (pg < P)
#pragma unroll
            for (int e = 0; e < 8; e++)
                vred[pg * hd + 8 * g + e] = acc[e];
        __syncthreads();
        for (int d = tid; d < hd; d += ATT_THREADS) {
            float v = 0.0f;
            for (int k = 0; k < P; k++)
                v += vred[k * hd + d];
            o[d] = v;
        }
    } else if (tid < hd) {
        vred[tid] = acc[0];
        o[tid] = acc[0];
    }
    int64_t dim = (int64_t)r.n_head * hd;
    if (n_split == 1) { /* nothing to merge: normalize and write out directly */
        __syncthreads();
        for (int d0 = 0; d0 < hd; d0 += ATT_THREADS) {
            int d = d0 + tid;
            float v = 0.0f;
            if (d < hd) {
                if (vec)
                    for (int k = 0; k < P; k++)
                        v += vred[k * hd + d];
                else
                    v = vred[d];
                v = l > 0.0f ? v / l : 0.0f;
                out.f[b * dim + h * hd + d] = v;
            }
            if (out.q && hd % 32 == 0 && d0 + (tid & ~31) < hd) {
                int64_t blk = (h * hd + d) / 32;
                rl_quant_block_warp(v, out.q + b * dim + blk * 32, out.ds + (b * (dim / 32) + blk) * 2);
            }
        }
        return;
    }
    if (tid == 0) {
        o[hd] = m;
        o[hd + 1] = l;
    }
    /* Make this block's partial visible device-wide before counting in. */
    __threadfence();
    __syncthreads();
    unsigned *cnt = counters + (int64_t)b * r.n_head + h;
    if (tid == 0)
        s_last = atomicAdd(cnt, 1u) == (unsigned)n_split - 1;
    __syncthreads();
    if (!s_last)
        return;
    __threadfence(); /* order our reads of the other blocks' partials after the count */
    const float *base = scratch + ((int64_t)b * r.n_head + h) * n_split * (hd + 2);
    float M = -INFINITY;
#pragma unroll 8
    for (int k = 0; k < n_split; k++)
        M = fmaxf(M, __ldcg(base + k * (hd + 2) + hd));
    for (int d0 = 0; d0 < hd; d0 += ATT_THREADS) {
        int d = d0 + tid;
        float num = 0.0f, den = 0.0f;
        if (M != -INFINITY) {
#pragma unroll 8
            for (int k = 0; k < n_split; k++) {
                const float *pk = base + k * (hd + 2);
                float w = __expf(__ldcg(pk + hd) - M);
                den += __ldcg(pk + hd + 1) * w;
                if (d < hd)
                    num += __ldcg(pk + d) * w;
            }
        }
        float v = den > 0.0f ? num / den : 0.0f;
        if (d < hd)
            out.f[b * dim + h * hd + d] = v;
        if (out.q && hd % 32 == 0 && d0 + (tid & ~31) < hd) { /* whole warps inside the head */
            int64_t blk = (h * hd + d) / 32;
            rl_quant_block_warp(v, out.q + b * dim + blk * 32, out.ds + (b * (dim / 32) + blk) * 2);
        }
    }
    if (tid == 0)
        *cnt = 0; /* ready for the next launch (graph replays) */
}

static bool attn_args_ok(int batch, int n_split, const rl_cu_rope *r, const rl_cu_act *out)
{
    return batch >= 1 && batch <= 65535 && n_split >= 1 && r->head_dim > 0 && r->head_dim <= ATT_MAX_HD &&
           r->n_head_kv > 0 && r->n_head % r->n_head_kv == 0 && out->n == (int64_t)r->n_head * r->head_dim &&
           (int64_t)batch * r->n_head <= ATT_MAX_COUNTERS && !(r->head_dim % 8 && r->head_dim > ATT_THREADS);
}

template <class KV>
static int attn_launch(const float *d_q, KV A, const int32_t *d_pos, int batch, const rl_cu_rope *r, int n_split,
                       void *d_scratch, const rl_cu_act *out, cudaStream_t s)
{
    unsigned *counters = (unsigned *)d_scratch;
    float *partials = (float *)((char *)d_scratch + counters_bytes(batch, r->n_head));
    dim3 grid(n_split, r->n_head, batch), block(ATT_THREADS);
    /* Specialised head sizes pay off for decode (few blocks, latency-bound);
     * prefill (unsplit, thousands of blocks) measured faster generic. */
    if (r->head_dim == 64 && n_split > 1)
        rl_launch(k_attn_split<64, KV>, grid, block, s, d_q, A, d_pos, *r, counters, partials, *out);
    else if (r->head_dim == 128 && n_split > 1)
        rl_launch(k_attn_split<128, KV>, grid, block, s, d_q, A, d_pos, *r, counters, partials, *out);
    else
        rl_launch(k_attn_split<0, KV>, grid, block, s, d_q, A, d_pos, *r, counters, partials, *out);
    return RL_CU_LAUNCHED("attn_split");
}

extern "C" int rl_cu_attn_decode(const float *d_q, const void *d_kcache, const void *d_vcache,
                                 const int32_t *d_pos, const int32_t *d_slot, int batch, const rl_cu_rope *r,
                                 int64_t n_ctx, int n_split, void *d_scratch, const rl_cu_act *out,
                                 cudaStream_t s)
{
    if (!attn_args_ok(batch, n_split, r, out))
        return -EINVAL;
    rl_kv_slots A = {(__half *)d_kcache, (__half *)d_vcache, d_slot, n_ctx, r->n_head_kv * r->head_dim, r->head_dim};
    return attn_launch(d_q, A, d_pos, batch, r, n_split, d_scratch, out, s);
}

extern "C" int rl_cu_attn_paged(const float *d_q, const int32_t *d_pos, const int32_t *d_row, int n_tok,
                                const rl_cu_rope *r, const rl_cu_kv *kv, uint32_t layer, int n_split,
                                void *d_scratch, const rl_cu_act *out, cudaStream_t s)
{
    if (!attn_args_ok(n_tok, n_split, r, out) || !rl_kv_paged_valid(kv, r, layer))
        return -EINVAL;
    return attn_launch(d_q, rl_kv_paged_make(kv, d_row, layer), d_pos, n_tok, r, n_split, d_scratch, out, s);
}
