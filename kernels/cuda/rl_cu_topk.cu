/* rl_cu_topk.cu - the k best logits of each output row, on the device, so a
 * sampled request sends k candidates (a few hundred bytes) to the host
 * instead of its whole row (128 KB for a 32,000-token vocabulary).
 *
 * One block per row. A radix select over an order-preserving 32-bit key of
 * the logit (8 bits a pass, most significant first) finds the key T of the
 * k-th best and how many of the keys equal to T belong to the k; a last pass
 * gathers every key above T and, in ascending id order, that many equal to
 * T; the k are then ranked in shared memory. The order is the host
 * sampler's (rl_sample.c): logit descending, ties by lower id, -0 equal to +0.
 * A row holding NaN or an infinity is flagged (ok 0) and left to the host.
 * Log-probabilities need the softmax's normalizer too: with lse, a last pass
 * sums exp(logit - best) over the row. */
#include "rl_cu_common.cuh"

#define TOPK_THREADS 1024

/* Ascending with the value for finite floats; -0 and +0 share a key. */
__device__ __forceinline__ uint32_t tk_key(float v)
{
    uint32_t u = __float_as_uint(v == 0.0f ? 0.0f : v);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ bool tk_before(rl_cu_cand a, rl_cu_cand b)
{
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

/* Warp 0: the bin (scanning from 255 down) where the running count of hist
 * reaches *need; *need becomes the count still wanted within that bin. */
__device__ void tk_pick_bin(const uint32_t *hist, uint32_t *prefix, uint32_t *need, int shift)
{
    int lane = threadIdx.x & 31;
    uint32_t sum = 0;
#pragma unroll
    for (int j = 0; j < 8; j++)
        sum += hist[255 - 8 * lane - j]; /* lane 0 holds the top bins */
    uint32_t incl = sum;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
        uint32_t t = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o)
            incl += t;
    }
    uint32_t want = *need;
    unsigned hit = __ballot_sync(0xffffffffu, incl >= want);
    int first = __ffs(hit) - 1; /* exists: the row holds at least need keys under this prefix */
    if (lane == first) {
        uint32_t cum = incl - sum;
        for (int j = 0; j < 8; j++) {
            int b = 255 - 8 * lane - j;
            if (cum + hist[b] >= want) {
                *prefix |= (uint32_t)b << shift;
                *need = want - cum;
                break;
            }
            cum += hist[b];
        }
    }
}

__global__ void __launch_bounds__(TOPK_THREADS) k_topk(const float *logits, int64_t n, const int32_t *rows,
                                                         const int32_t *ks, int stride, rl_cu_cand *cand,
                                                         int32_t *ok, float *lse)
{
    rl_pdl_trigger();
    rl_pdl_wait();
    __shared__ uint32_t hist[256], s_warp[TOPK_THREADS / 32];
    __shared__ uint32_t s_prefix, s_need, s_n;
    __shared__ float s_best, s_part[TOPK_THREADS / 32];
    __shared__ int s_bad;
    __shared__ rl_cu_cand s_c[RL_CU_TOPK_MAX];
    int o = blockIdx.x;
    int k = ks[o];
    if (k <= 0)
        return;
    if (k > RL_CU_TOPK_MAX)
        k = RL_CU_TOPK_MAX;
    if (k > stride)
        k = stride;
    if ((int64_t)k > n)
        k = (int)n;
    const float *x = logits + (int64_t)(rows ? rows[o] : o) * n;
    if (threadIdx.x == 0) {
        s_prefix = 0;
        s_need = (uint32_t)k;
        s_bad = 0;
        s_n = 0;
    }
    uint32_t mask = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
        for (int i = threadIdx.x; i < 256; i += blockDim.x)
            hist[i] = 0;
        __syncthreads();
        uint32_t prefix = s_prefix;
        bool bad = false;
        /* whole warps per round; lanes of one bin add once (logits crowd a few
         * exponents, so the first pass would serialize on a handful of bins) */
        for (int64_t base = 0; base < n; base += blockDim.x) {
            int64_t i = base + threadIdx.x;
            uint32_t bin = 256; /* none */
            if (i < n) {
                float v = x[i];
                bad |= !isfinite(v);
                uint32_t key = tk_key(v);
                if ((key & mask) == prefix)
                    bin = (key >> shift) & 255u;
            }
            unsigned peers = __match_any_sync(0xffffffffu, bin);
            if (bin < 256 && (threadIdx.x & 31) == __ffs(peers) - 1)
                atomicAdd(&hist[bin], (uint32_t)__popc(peers));
        }
        if (bad)
            s_bad = 1;
        __syncthreads();
        if (s_bad) { /* uniform: the host samples this row */
            if (threadIdx.x == 0)
                ok[o] = 0;
            return;
        }
        if (threadIdx.x < 32)
            tk_pick_bin(hist, &s_prefix, &s_need, shift);
        mask |= 255u << shift;
        __syncthreads();
    }
    /* Gather: every key above T, and the first `need` keys equal to T in id order. */
    const uint32_t T = s_prefix, need = s_need;
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    uint32_t eq_before = 0; /* keys equal to T in earlier chunks */
    for (int64_t base = 0; base < n; base += blockDim.x) {
        int64_t i = base + threadIdx.x;
        float v = i < n ? x[i] : 0.0f;
        uint32_t key = i < n ? tk_key(v) : 0;
        bool eq = i < n && key == T;
        if (i < n && key > T)
            s_c[atomicAdd(&s_n, 1u)] = rl_cu_cand{v, (int32_t)i};
        unsigned bal = __ballot_sync(0xffffffffu, eq);
        if (lane == 0)
            s_warp[w] = __popc(bal);
        __syncthreads();
        uint32_t rank = eq_before + __popc(bal & ((1u << lane) - 1u)), total = 0;
        for (int j = 0; j < nw; j++) {
            rank += j < w ? s_warp[j] : 0;
            total += s_warp[j];
        }
        if (eq && rank < need)
            s_c[atomicAdd(&s_n, 1u)] = rl_cu_cand{v, (int32_t)i};
        eq_before += total;
        __syncthreads();
    }
    /* s_c holds exactly k, distinct ids: rank each by counting those before it. */
    if (threadIdx.x < k) {
        rl_cu_cand c = s_c[threadIdx.x];
        int r = 0;
        for (int j = 0; j < k; j++)
            r += tk_before(s_c[j], c);
        cand[(int64_t)o * stride + r] = c;
        if (r == 0)
            s_best = c.logit;
    }
    if (threadIdx.x == 0)
        ok[o] = 1;
    if (!lse)
        return;
    __syncthreads();
    float best = s_best, sum = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        sum += __expf(x[i] - best);
    sum = rl_warp_sum(sum);
    if (lane == 0)
        s_part[w] = sum;
    __syncthreads();
    if (w == 0) {
        sum = rl_warp_sum(lane < nw ? s_part[lane] : 0.0f);
        if (lane == 0)
            lse[o] = logf(sum);
    }
}

extern "C" int rl_cu_topk(const float *d_logits, int64_t n_vocab, const int32_t *d_rows, const int32_t *d_k,
                          int n_out, int stride, rl_cu_cand *d_cand, int32_t *d_ok, float *d_lse, cudaStream_t s)
{
    if (n_vocab <= 0 || n_out < 1 || stride < 1 || stride > RL_CU_TOPK_MAX)
        return -EINVAL;
    rl_launch(k_topk, dim3(n_out), dim3(TOPK_THREADS), s, d_logits, n_vocab, d_rows, d_k, stride, d_cand, d_ok, d_lse);
    return RL_CU_LAUNCHED("top-k");
}
