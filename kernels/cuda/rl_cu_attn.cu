/* rl_cu_attn.cu - attention of single query tokens over the KV cache
 * (contiguous slots or the paged pool, fp16 or int8, one kernel body through
 * rl_cu_kv.cuh).
 * Grouped-query heads read their shared KV head.
 *
 * Split mode (n_split >= 1, flash-decoding): the positions of a query are cut
 * into fixed chunks of RL_CU_ATTN_CHUNK; the n_split blocks of a head take
 * chunks sp, sp + n_split, ... and each chunk's softmax partial (max, sum,
 * weighted V) is computed from scratch and stored on its own; the last block
 * of the head to arrive merges the partials in chunk order. A query's result
 * therefore depends only on its own data, never on n_split or on what else is
 * in the batch: batched and solo decoding give the same bits.
 * Unsplit mode (n_split == 0, prefill): one block per head runs an online
 * softmax over all positions and writes the result directly.
 * Two kernels: k_attn_warp (split mode, head sizes 64 and 128: the warps of a
 * block work on their own parts of a chunk) and k_attn (the block kernel: any
 * head size, both modes). */
#include <stdlib.h>
#include <string.h>

#include "rl_cu_attw.cuh"

/* Blocks per head: about two waves over the SMs, at least RL_CU_ATTN_MIN_SPLIT
 * (environment, for measurements; default 1), at most 32. */
extern "C" int rl_cu_attn_splits(int batch, int n_head)
{
    static int min_split = -1, force = 0;
    if (min_split < 0) {
        const char *e = getenv("RL_CU_ATTN_MIN_SPLIT");
        min_split = e ? atoi(e) : 1;
        if (min_split < 1 || min_split > 32)
            min_split = 1;
        const char *f = getenv("RL_CU_ATTN_SPLITS"); /* measurements: this many, whatever the batch */
        force = f && atoi(f) >= 1 && atoi(f) <= 32 ? atoi(f) : 0;
    }
    if (force)
        return force;
    int want = (2 * rl_cu_sm_count() + batch * n_head - 1) / (batch * n_head);
    want = want < min_split ? min_split : want;
    return want > 32 ? 32 : want;
}

/* Scratch: see rl_cu_attw.cuh (counters, then chunk partials). */
static int64_t n_chunks(int64_t n_ctx)
{
    return (n_ctx + ATT_TILE - 1) / ATT_TILE;
}

extern "C" size_t rl_cu_attn_scratch_size(int batch, int n_head, int head_dim, int64_t n_ctx)
{
    return COUNTERS_BYTES + (size_t)batch * n_head * n_chunks(n_ctx) * (head_dim + 2) * sizeof(float);
}

/* Per-block state of a softmax over some positions. */
struct att_state {
    float m, l, acc[8];
};

/* st.acc[0..7] += w * the 8 values of v. */
template <class KV> __device__ __forceinline__ void att_add_v(att_state &st, float w, const typename KV::v8 &v)
{
    float f[8];
    KV::f8(v, f);
#pragma unroll
    for (int k = 0; k < 8; k++)
        st.acc[k] += w * f[k];
}

/* Fold positions [t0, t1) (t1 - t0 <= ATT_UTILE) of query b, head h into st.
 * Thread (g, pg) accumulates dims 8g..8g+7 over positions pg, pg + P, ... */
template <int HDC, class KV>
__device__ __forceinline__ void att_tile(const KV &A, int b, int kvh, int64_t t0, int64_t t1, const float *sq,
                                         float *ss, float *red, int hd, att_state &st)
{
    const bool vec = hd % 8 == 0;
    const int G = vec ? hd / 8 : 1, P = ATT_THREADS / G;
    const int tid = threadIdx.x, g = tid % G, pg = tid / G;
    int nt = (int)(t1 - t0);
    /* Head size known (decode, one chunk per tile): this thread's V rows are
     * loaded now, with the K rows, instead of one memory round trip later. */
    constexpr int VP = HDC ? ATT_TILE / (ATT_THREADS / (HDC / 8)) : 1;
    typename KV::v8 vpre[VP];
    const bool pre = HDC != 0 && nt <= ATT_TILE; /* (the unsplit mode's longer tiles never come here) */
    if (pre) {
#pragma unroll
        for (int i = 0; i < VP; i++) {
            int j = pg + i * P;
            vpre[i] = j < nt ? KV::ld8(A.v(b, kvh, t0 + j), 8 * g) : KV::zero();
        }
    }
    if (vec && hd % 16 == 0) {
        /* Scores: two neighbouring threads per position, half the dims each,
         * combined with one shuffle (every thread busy for a 64-position chunk). */
        const int hh = hd / 2, half = tid & 1;
        for (int j0 = 0; j0 < nt; j0 += ATT_THREADS / 2) {
            int j = j0 + (tid >> 1);
            float dot = 0.0f;
            if (j < nt) {
                typename KV::row kr = A.k(b, kvh, t0 + j);
                const float *qh = sq + half * hh;
                if constexpr (KV::Q8) { /* whole 32-value groups: 16-byte loads, one scale each */
                    if (hh % 32 == 0) {
#pragma unroll(HDC ? 2 : 1)
                        for (int d = 0; d < hh; d += 32)
                            dot += KV::dot32(kr, half * hh + d, qh + d);
                    }
                }
#pragma unroll(HDC ? 8 : 4)
                for (int d = 0; d < hh && !(KV::Q8 && hh % 32 == 0); d += 8) {
                    float f[8];
                    KV::f8(KV::ld8(kr, half * hh + d), f);
#pragma unroll
                    for (int k = 0; k < 4; k++)
                        dot += qh[d + 2 * k] * f[2 * k] + qh[d + 2 * k + 1] * f[2 * k + 1];
                }
            }
            dot += __shfl_xor_sync(0xffffffffu, dot, 1);
            if (j < nt && !half)
                ss[j] = dot;
        }
    } else {
        /* Scores: one thread per position, independent 16-byte loads. */
        for (int j = tid; j < nt; j += ATT_THREADS) {
            typename KV::row kr = A.k(b, kvh, t0 + j);
            float dot = 0.0f;
            if (vec) {
#pragma unroll(HDC ? 16 : 4)
                for (int d = 0; d < hd; d += 8) {
                    float f[8];
                    KV::f8(KV::ld8(kr, d), f);
#pragma unroll
                    for (int k = 0; k < 4; k++)
                        dot += sq[d + 2 * k] * f[2 * k] + sq[d + 2 * k + 1] * f[2 * k + 1];
                }
            } else {
                for (int d = 0; d < hd; d++)
                    dot += sq[d] * KV::ld1(kr, d);
            }
            ss[j] = dot;
        }
    }
    __syncthreads();
    float tmax = -INFINITY;
    for (int j = tid; j < nt; j += ATT_THREADS)
        tmax = fmaxf(tmax, ss[j]);
    tmax = rl_block_max(tmax, red);
    float m_new = fmaxf(st.m, tmax);
    float corr = __expf(st.m - m_new); /* m = -inf on the first tile: 0 */
    float psum = 0.0f;
    for (int j = tid; j < nt; j += ATT_THREADS) {
        float e = __expf(ss[j] - m_new);
        ss[j] = e;
        psum += e;
    }
    psum = rl_block_sum(psum, red); /* its barriers also publish ss */
    st.l = st.l * corr + psum;
#pragma unroll
    for (int e = 0; e < 8; e++)
        st.acc[e] *= corr;
    if (pre) {
#pragma unroll
        for (int i = 0; i < VP; i++) {
            int j = pg + i * P;
            if (j >= nt)
                break;
            att_add_v<KV>(st, ss[j], vpre[i]);
        }
    } else if (vec) {
#pragma unroll 4
        for (int j = pg; pg < P && j < nt; j += P) { /* threads past G*P idle */
            att_add_v<KV>(st, ss[j], KV::ld8(A.v(b, kvh, t0 + j), 8 * g));
        }
    } else if (tid < hd) {
        for (int j = 0; j < nt; j++)
            st.acc[0] += ss[j] * KV::ld1(A.v(b, kvh, t0 + j), tid);
    }
    st.m = m_new;
    __syncthreads(); /* ss is rewritten by the next tile */
}

/* Sum the position groups of st.acc into dst[0..hd) (vred: scratch in shared memory). */
__device__ __forceinline__ void att_reduce(const att_state &st, float *vred, int hd, float *dst)
{
    const bool vec = hd % 8 == 0;
    const int G = vec ? hd / 8 : 1, P = ATT_THREADS / G;
    const int tid = threadIdx.x, g = tid % G, pg = tid / G;
    if (vec) {
        if (pg < P)
#pragma unroll
            for (int e = 0; e < 8; e++)
                vred[pg * hd + 8 * g + e] = st.acc[e];
    } else if (tid < hd) {
        vred[tid] = st.acc[0];
    }
    __syncthreads();
    for (int d = tid; d < hd; d += ATT_THREADS) {
        float v = 0.0f;
        if (vec)
            for (int k = 0; k < P; k++)
                v += vred[k * hd + d];
        else
            v = vred[d];
        dst[d] = v;
    }
    __syncthreads(); /* vred is reused */
}

/* Grid (max(n_split, 1), n_head, batch). kmax: chunk partial slots per (row, head). */
template <int HDC, class KV> /* head dim known at compile time (0: read from r); KV addressing */
__global__ void __launch_bounds__(ATT_THREADS)
k_attn(const float *q, KV A, const int32_t *pos, rl_cu_rope r, bool split, int64_t kmax, unsigned *counters,
       float *scratch, rl_cu_act out, bool acqrel)
{
    __shared__ float sq[ATT_MAX_HD];
    __shared__ float ss[ATT_UTILE > ATT_TILE ? ATT_UTILE : ATT_TILE];
    __shared__ float red[32];
    __shared__ float vred[ATT_THREADS * 8];
    __shared__ float part[ATT_MAX_HD];
    rl_pdl_trigger();
    rl_pdl_wait();
    int sp = blockIdx.x, h = blockIdx.y, b = blockIdx.z, n_split = gridDim.x;
    const int hd = HDC ? HDC : r.head_dim;
    int kvh = h / (r.n_head / r.n_head_kv);
    int tid = threadIdx.x;
    int64_t len = att_len(A, pos, b, split, kmax);
    float scale = rsqrtf((float)hd);
    for (int d = tid; d < hd; d += ATT_THREADS)
        sq[d] = q[((int64_t)b * r.n_head + h) * hd + d] * scale;
    __syncthreads();
    if (!split) { /* one block: online softmax over everything */
        att_state st = {-INFINITY, 0.0f, {0, 0, 0, 0, 0, 0, 0, 0}};
        for (int64_t t0 = 0; t0 < len; t0 += ATT_UTILE)
            att_tile<HDC>(A, b, kvh, t0, t0 + ATT_UTILE < len ? t0 + ATT_UTILE : len, sq, ss, red, hd, st);
        att_reduce(st, vred, hd, part);
        for (int d0 = 0; d0 < hd; d0 += ATT_THREADS) {
            int d = d0 + tid;
            float v = d < hd && st.l > 0.0f ? part[d] / st.l : 0.0f;
            att_emit(out, b, h, hd, d0, v);
        }
        return;
    }
    float *base = att_partials(scratch, b, h, r.n_head, hd, kmax);
    int64_t nch = (len + ATT_TILE - 1) / ATT_TILE;
    for (int64_t c = sp; c < nch; c += n_split) {
        att_state st = {-INFINITY, 0.0f, {0, 0, 0, 0, 0, 0, 0, 0}};
        int64_t t0 = c * ATT_TILE;
        att_tile<HDC>(A, b, kvh, t0, t0 + ATT_TILE < len ? t0 + ATT_TILE : len, sq, ss, red, hd, st);
        float *o = base + c * (hd + 2);
        att_reduce(st, vred, hd, o);
        if (tid == 0) {
            o[hd] = st.m;
            o[hd + 1] = st.l;
        }
    }
    att_count_in_and_merge(out, b, h, hd, nch, base, counters + (int64_t)b * r.n_head + h, (int)gridDim.x, acqrel);
}

static bool attn_args_ok(int batch, int n_split, const rl_cu_rope *r, const rl_cu_act *out)
{
    return batch >= 1 && batch <= 65535 && n_split >= 0 && n_split <= 1024 && r->head_dim > 0 &&
           r->head_dim <= ATT_MAX_HD && r->n_head_kv > 0 && r->n_head % r->n_head_kv == 0 &&
           out->n == (int64_t)r->n_head * r->head_dim && (int64_t)batch * r->n_head <= ATT_MAX_COUNTERS &&
           !(r->head_dim % 8 && r->head_dim > ATT_THREADS);
}

/* Which split-mode kernel serves head sizes 64 and 128: 0 the warp kernel
 * (default), 1 the block kernel, 2 the warp kernel with int8 rows of 128 on
 * tensor cores (attn_tc below); rl_cu_attn_force or RL_CU_ATTN_KERNEL=warp|block. */
static int attn_forced = -1;
extern "C" void rl_cu_attn_force(int kernel)
{
    attn_forced = kernel;
}

static int rl_cu_attn_kernel(void)
{
    if (attn_forced >= 0)
        return attn_forced;
    static int env = -1;
    if (env < 0) {
        const char *e = getenv("RL_CU_ATTN_KERNEL");
        env = e && !strcmp(e, "block") ? 1 : 0;
    }
    return env;
}

/* RL_CU_ATTN_BAR2=1: the warp kernel's second barrier per chunk again
 * (measurements; the chunk's shared sets alternate without it). */
static bool attn_bar2(void)
{
    static int on = -1;
    return rl_env_switch("RL_CU_ATTN_BAR2", false, &on);
}

/* One token per launch: k_attn_warp reads its first chunk's rows before the
 * token's own before the PDL wait (RL_CU_ATTN_EARLY=0: after, for
 * measurements). */
static bool attn_early(void)
{
    static int on = -1;
    return rl_env_switch("RL_CU_ATTN_EARLY", true, &on);
}

/* The warp kernel's in-block merge for one block per head (default on;
 * RL_CU_ATTN_DIRECT=0: partials and the counted merge, for measurements). */
static bool attn_direct(void)
{
    static int on = -1;
    return rl_env_switch("RL_CU_ATTN_DIRECT", true, &on);
}

/* Queries of at most this many chunks go to one block of their head with
 * the in-block merge (default 1; RL_CU_ATTN_DMAX=n, 0: never, for
 * measurements). A short context's split blocks otherwise store partials,
 * count in and merge in a second pass for one chunk of work. H100, session
 * 23, from an empty context (128 generated): TinyLlama Q4_0 1,922-1,924
 * against 1,834-1,857 tok/s, 7B Q4_0 630-633 against 623-630; 2 chunks
 * measured no better, 3 slower (one block's chunks one after the other). */
static int attn_dmax(void)
{
    static int n = -1;
    if (n < 0) {
        const char *e = getenv("RL_CU_ATTN_DMAX");
        n = e && atoi(e) >= 0 && atoi(e) <= 1024 ? atoi(e) : 1;
    }
    return n;
}

/* The split merge's arrival as one acquire-release atomic (default on;
 * RL_CU_ATTN_ACQREL=0: two sequentially consistent fences around a relaxed
 * atomic, for measurements). H100, session 20: TinyLlama Q4_0 single stream
 * 1,714-1,734 against 1,696-1,700 tok/s, 7B Q4_0 549-556 against 545-546;
 * the attention alone 5.00 against 5.44 us a layer (TinyLlama). */
static bool attn_acqrel(void)
{
    static int on = -1;
    return rl_env_switch("RL_CU_ATTN_ACQREL", true, &on);
}

/* int8 rows of 128 on tensor cores (attc::chunk): opt-in, RL_CU_ATTN_TC=1 or
 * rl_cu_attn_force(2). Correct, but 4% slower than the CUDA-core chunk on the
 * H100 at batch 64 (44.1 against 42.4 us per 7B layer, session 13): both wait
 * on their loads more than they compute. */
static bool attn_tc(void)
{
    static int on = -1;
    if (attn_forced >= 0)
        return attn_forced == 2;
    return rl_env_switch("RL_CU_ATTN_TC", false, &on);
}

/* k_attn_warp's switches, for the fused O launch (rl_cu_attn_o.cu). */
attw_opts rl_cu_attw_opts(void)
{
    return attw_opts{attn_direct(), attn_dmax(), attn_bar2(), attn_early(), attn_acqrel(), rl_cu_attn_kernel(), attn_tc()};
}

template <class KV>
static bool attn_tc_launch(bool occ, dim3 grid, dim3 block, cudaStream_t s, const float *d_q, KV A,
                           const int32_t *d_pos, const rl_cu_rope *r, int64_t kmax, unsigned *counters,
                           float *partials, const rl_cu_act *out)
{
    if constexpr (KV::Q8) {
        if (r->head_dim != 128 || !attn_tc())
            return false;
        rl_launch(occ ? k_attn_warp<128, KV, 6, true> : k_attn_warp<128, KV, 1, true>, grid, block, s, d_q, A,
                  d_pos, *r, kmax, counters, partials, *out, attn_direct(), attn_dmax(), attn_bar2(), false,
                  attn_acqrel(), attw_o{});
        return true;
    } else {
        (void)occ, (void)grid, (void)block, (void)s, (void)d_q, (void)A, (void)d_pos, (void)r, (void)kmax;
        (void)counters, (void)partials, (void)out;
        return false;
    }
}

template <class KV>
static int attn_launch(const float *d_q, KV A, const int32_t *d_pos, int batch, const rl_cu_rope *r, int n_split,
                       int64_t n_ctx, void *d_scratch, const rl_cu_act *out, cudaStream_t s)
{
    unsigned *counters = (unsigned *)d_scratch;
    float *partials = (float *)((char *)d_scratch + COUNTERS_BYTES);
    bool split = n_split > 0;
    int64_t kmax = n_chunks(n_ctx);
    dim3 grid(split ? n_split : 1, r->n_head, batch), block(ATT_THREADS);
    /* Specialised head sizes pay off for decode (few blocks, latency-bound);
     * prefill (unsplit, thousands of blocks) measured faster generic. */
    int kern = rl_cu_attn_kernel();
    /* The warp kernel: with more blocks than one wave holds at 4 per SM (large
     * batches), registers for 6 per SM; else every load of a chunk in flight
     * at once (about 120 registers), which the single stream needs. */
    bool occ = (int64_t)grid.x * grid.y * grid.z > 4 * (int64_t)rl_cu_sm_count();
    bool early = batch == 1 && attn_early(); /* one token: see k_attn_warp */
    if (r->head_dim == 64 && split && kern != 1)
        rl_launch(occ ? k_attn_warp<64, KV, 6> : k_attn_warp<64, KV, 1>, grid, block, s, d_q, A, d_pos, *r, kmax,
                  counters, partials, *out, attn_direct(), attn_dmax(), attn_bar2(), early, attn_acqrel(),
                  attw_o{});
    else if (r->head_dim == 128 && split && kern != 1 &&
             attn_tc_launch(occ, grid, block, s, d_q, A, d_pos, r, kmax, counters, partials, out))
        ; /* launched */
    else if (r->head_dim == 128 && split && kern != 1)
        rl_launch(occ ? k_attn_warp<128, KV, 6> : k_attn_warp<128, KV, 1>, grid, block, s, d_q, A, d_pos, *r, kmax,
                  counters, partials, *out, attn_direct(), attn_dmax(), attn_bar2(), early, attn_acqrel(),
                  attw_o{});
    else if (r->head_dim == 64 && split)
        rl_launch(k_attn<64, KV>, grid, block, s, d_q, A, d_pos, *r, split, kmax, counters, partials, *out, attn_acqrel());
    else if (r->head_dim == 128 && split)
        rl_launch(k_attn<128, KV>, grid, block, s, d_q, A, d_pos, *r, split, kmax, counters, partials, *out, attn_acqrel());
    else
        rl_launch(k_attn<0, KV>, grid, block, s, d_q, A, d_pos, *r, split, kmax, counters, partials, *out, attn_acqrel());
    return RL_CU_LAUNCHED("attention");
}

extern "C" int rl_cu_attn_decode(const float *d_q, const void *d_kcache, const void *d_vcache,
                                 const int32_t *d_pos, const int32_t *d_slot, int batch, const rl_cu_rope *r,
                                 int64_t n_ctx, int n_split, void *d_scratch, const rl_cu_act *out,
                                 cudaStream_t s)
{
    if (!attn_args_ok(batch, n_split, r, out) || n_ctx < 1)
        return -EINVAL;
    rl_kv_slots A = rl_kv_slots_make((void *)d_kcache, (void *)d_vcache, d_slot, n_ctx, r->n_head_kv * r->head_dim,
                                     r->head_dim);
    return attn_launch(d_q, A, d_pos, batch, r, n_split, n_ctx, d_scratch, out, s);
}

extern "C" int rl_cu_attn_paged(const float *d_q, const int32_t *d_pos, const int32_t *d_row, int n_tok,
                                const rl_cu_rope *r, const rl_cu_kv *kv, uint32_t layer, int n_split,
                                void *d_scratch, const rl_cu_act *out, cudaStream_t s)
{
    if (!attn_args_ok(n_tok, n_split, r, out) || !rl_kv_paged_valid(kv, r, layer))
        return -EINVAL;
    int64_t n_ctx = (int64_t)kv->bt_stride * RL_CU_KV_BLOCK;
    if (kv->q8)
        return attn_launch(d_q, rl_kv_paged_make<rl_kv_q8>(kv, d_row, layer), d_pos, n_tok, r, n_split, n_ctx,
                           d_scratch, out, s);
    return attn_launch(d_q, rl_kv_paged_make<rl_kv_f16>(kv, d_row, layer), d_pos, n_tok, r, n_split, n_ctx,
                       d_scratch, out, s);
}
