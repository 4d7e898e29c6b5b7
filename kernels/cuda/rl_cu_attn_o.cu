/* rl_cu_attn_o.cu - one query's attention and the O product in one launch
 * (k_attn_warp with O blocks: rl_cu_attw.cuh).
 *
 * Why: in the one-sequence step the O product's weights (7B Q4_0: 9.4 MB,
 * 3.2 us at the copy bandwidth) streamed only once the attention was over,
 * and the attention itself, a few us at a short context, leaves the memory
 * idle. Here the O blocks copy their rows of W_o into shared memory when the
 * launch starts, beside the attention's blocks, and only the dot products
 * wait for the heads' outputs. */
#include <errno.h>
#include <stdlib.h>

#include "rl_cu_attw.cuh"

/* W_o types served: those with an int8 activation and an rl_mvb::sload. */
static bool atto_type(rl_type t)
{
    return t == RL_TYPE_Q4_0 || t == RL_TYPE_Q8_0 || t == RL_TYPE_Q4_K || t == RL_TYPE_Q5_K || t == RL_TYPE_Q6_K;
}

static size_t atto_smem_for(rl_type t, int64_t cols)
{
    switch (t) {
    case RL_TYPE_Q4_0: return atto_smem<RL_TYPE_Q4_0>(cols);
    case RL_TYPE_Q8_0: return atto_smem<RL_TYPE_Q8_0>(cols);
    case RL_TYPE_Q4_K: return atto_smem<RL_TYPE_Q4_K>(cols);
    case RL_TYPE_Q5_K: return atto_smem<RL_TYPE_Q5_K>(cols);
    default: return atto_smem<RL_TYPE_Q6_K>(cols);
    }
}

extern "C" bool rl_cu_attn_o_ok(const rl_cu_mat *wo, const rl_cu_rope *r, const rl_cu_act *out)
{
    attw_opts o = rl_cu_attw_opts();
    int64_t cols = (int64_t)r->n_head * r->head_dim;
    return wo && wo->q && atto_type(wo->type) && wo->cols == cols && cols % 256 == 0 && wo->rows % ATTO_ROWS == 0 &&
           wo->rows > 0 && (uintptr_t)wo->q % 16 == 0 && (uintptr_t)wo->d % 16 == 0 &&
           (wo->type == RL_TYPE_Q4_0 || wo->type == RL_TYPE_Q8_0 || wo->ld % 16 == 0) &&
           (r->head_dim == 64 || r->head_dim == 128) && out && out->q && out->ds && out->n == cols &&
           o.kernel == 0 && !(o.tc && r->head_dim == 128) && rl_mvb::sm90() && atto_smem_for(wo->type, cols) <= 200 * 1024;
}

template <class KV, int T>
static int launch(const float *d_q, KV A, const int32_t *d_pos, const rl_cu_rope *r, int n_split, int64_t kmax,
                  void *d_scratch, const rl_cu_act *out, const rl_cu_mat *wo, float *d_y, cudaStream_t s)
{
    attw_opts o = rl_cu_attw_opts();
    unsigned *counters = (unsigned *)d_scratch;
    float *partials = (float *)((char *)d_scratch + COUNTERS_BYTES);
    int64_t per_z = (int64_t)n_split * r->n_head, n_o = wo->rows / ATTO_ROWS;
    static int when = -1, sleep_ns = -1;
    if (when < 0) {
        const char *e = getenv("RL_CU_ATTO_WHEN"), *z = getenv("RL_CU_ATTO_SLEEP");
        when = e ? atoi(e) : 0;
        sleep_ns = z ? atoi(z) : 0;
    }
    attw_o fo = {*wo, d_y, counters + ATT_MAX_COUNTERS - 2, n_o, when, sleep_ns};
    dim3 grid(n_split, r->n_head, 1 + (unsigned)((n_o + per_z - 1) / per_z)), block(ATT_THREADS);
    size_t smem = atto_smem<T>(wo->cols);
    if (r->head_dim == 64) {
        static size_t set_for = 0;
        if (!rl_mvb::smem_limit(k_attn_warp<64, KV, 1, false, T>, smem, &set_for))
            return -ENOTSUP;
        rl_launch_smem(k_attn_warp<64, KV, 1, false, T>, grid, block, smem, s, d_q, A, d_pos, *r, kmax, counters,
                       partials, *out, o.direct, o.dmax, o.bar2, o.early, o.acqrel, fo);
    } else {
        static size_t set_for = 0;
        if (!rl_mvb::smem_limit(k_attn_warp<128, KV, 1, false, T>, smem, &set_for))
            return -ENOTSUP;
        rl_launch_smem(k_attn_warp<128, KV, 1, false, T>, grid, block, smem, s, d_q, A, d_pos, *r, kmax, counters,
                       partials, *out, o.direct, o.dmax, o.bar2, o.early, o.acqrel, fo);
    }
    return RL_CU_LAUNCHED("attention and O");
}

/* Table of the launches by W_o type, per KV addressing. */
template <class KV> struct atto_row {
    int type;
    int (*fn)(const float *, KV, const int32_t *, const rl_cu_rope *, int, int64_t, void *, const rl_cu_act *,
              const rl_cu_mat *, float *, cudaStream_t);
};
template <class KV> static const atto_row<KV> atto_launches[] = {
    {RL_TYPE_Q4_0, launch<KV, RL_TYPE_Q4_0>}, {RL_TYPE_Q8_0, launch<KV, RL_TYPE_Q8_0>},
    {RL_TYPE_Q4_K, launch<KV, RL_TYPE_Q4_K>}, {RL_TYPE_Q5_K, launch<KV, RL_TYPE_Q5_K>},
    {RL_TYPE_Q6_K, launch<KV, RL_TYPE_Q6_K>},
};

template <class KV>
static int launch_type(const float *d_q, KV A, const int32_t *d_pos, const rl_cu_rope *r, int n_split, int64_t kmax,
                       void *d_scratch, const rl_cu_act *out, const rl_cu_mat *wo, float *d_y, cudaStream_t s)
{
    for (const atto_row<KV> &e : atto_launches<KV>)
        if (e.type == wo->type)
            return e.fn(d_q, A, d_pos, r, n_split, kmax, d_scratch, out, wo, d_y, s);
    return -ENOTSUP;
}

extern "C" int rl_cu_attn_o_paged(const float *d_q, const int32_t *d_pos, const int32_t *d_row, const rl_cu_rope *r,
                                  const rl_cu_kv *kv, uint32_t layer, int n_split, void *d_scratch,
                                  const rl_cu_act *out, const rl_cu_mat *wo, float *d_y, cudaStream_t s)
{
    if (n_split < 1 || n_split > 1024 || !d_y || !rl_kv_paged_valid(kv, r, layer) || r->n_head_kv <= 0 ||
        r->n_head % r->n_head_kv)
        return -EINVAL;
    if (!rl_cu_attn_o_ok(wo, r, out))
        return -ENOTSUP;
    int64_t kmax = (int64_t)kv->bt_stride; /* chunks of the context: RL_CU_KV_BLOCK positions a block */
    kmax = kmax * RL_CU_KV_BLOCK / ATT_TILE + (kmax * RL_CU_KV_BLOCK % ATT_TILE != 0);
    if (kv->q8)
        return launch_type(d_q, rl_kv_paged_make<rl_kv_q8>(kv, d_row, layer), d_pos, r, n_split, kmax, d_scratch,
                           out, wo, d_y, s);
    return launch_type(d_q, rl_kv_paged_make<rl_kv_f16>(kv, d_row, layer), d_pos, r, n_split, kmax, d_scratch, out,
                       wo, d_y, s);
}
