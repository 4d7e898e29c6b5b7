/* rl_cu_cluster.cuh - what the split-K kernels (rl_cu_mm, rl_cu_mmq, rl_cu_mmh)
 * share: the SM count, the choice of the K split over a thread-block cluster,
 * a launch with programmatic dependent launch and the cluster shape, and the
 * cluster reduction and epilogue of their partial tiles. */
#ifndef RL_CU_CLUSTER_CUH
#define RL_CU_CLUSTER_CUH

#include <cooperative_groups.h>
#include <type_traits>

#include "rl_cu_common.cuh"

/* Smallest estimated time over splits 1, 2, 4, 8 for `tiles` row tiles of
 * `nch` K chunks with `slots` CTAs resident at once: waves divided by the
 * split, plus a cost per rank for the cluster reduction; every rank keeps at
 * least 2 chunks of K. */
int rl_cu_cluster_split(int64_t tiles, int64_t nch, int64_t slots);

/* The arguments rl_cu_mmq and rl_cu_mmh share: Q4_0/Q8_0-style quant and
 * scale planes, 1..RL_CU_MAX_MM_BATCH rows, K a multiple of 32, dense x, a
 * mode, n_out outputs (a row stride only outside GLU), and ds wherever GLU
 * quantizes. 0 or -EINVAL. */
int rl_cu_batched_args(const rl_cu_mat *m, const rl_cu_act *x, int batch, int mode, const rl_cu_act *y);

/* f(std::integral_constant<int, NT>()) with NT = nt clamped to 1..MAX: one
 * kernel instantiation per batch tile count, no hand-written switch. */
template <int MAX, typename F> static inline void rl_dispatch_nt(int nt, F &&f)
{
    if constexpr (MAX > 1) {
        if (nt >= MAX)
            f(std::integral_constant<int, MAX>());
        else
            rl_dispatch_nt<MAX - 1>(nt, f);
    } else {
        f(std::integral_constant<int, 1>());
    }
}

/* k<<<grid, block, smem, s>>>(args...) as clusters of cx CTAs along x (grid.x
 * a multiple of cx), with programmatic stream serialization when enabled. */
template <typename... KArgs, typename... Args>
static inline void rl_launch_cluster_grid(void (*k)(KArgs...), dim3 grid, unsigned cx, dim3 block, size_t smem,
                                          cudaStream_t s, Args... args)
{
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = s;
    cudaLaunchAttribute at[2];
    int na = 0;
    if (rl_cu_pdl_enabled()) {
        at[na].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        at[na++].val.programmaticStreamSerializationAllowed = 1;
    }
    if (cx > 1) {
        at[na].id = cudaLaunchAttributeClusterDimension;
        at[na].val.clusterDim.x = cx;
        at[na].val.clusterDim.y = 1;
        at[na++].val.clusterDim.z = 1;
    }
    cfg.attrs = at;
    cfg.numAttrs = na;
    cudaLaunchKernelEx(&cfg, k, ((KArgs)args)...);
}

/* k<<<tiles * split, block, smem, s>>>(args...) as clusters of `split` CTAs
 * along x, with programmatic stream serialization when enabled. */
template <typename... KArgs, typename... Args>
static inline void rl_launch_cluster(void (*k)(KArgs...), int64_t tiles, int split, dim3 block, size_t smem,
                                     cudaStream_t s, Args... args)
{
    rl_launch_cluster_grid(k, dim3((unsigned)(tiles * split)), (unsigned)split, block, smem, s, args...);
}

/* Matrix row of local row r of a batched kernel's tile of NO outputs from o0
 * (GLU: local rows from NO are the matching up rows, n_out on). Clamped: rows
 * past the end are loaded, never written. */
template <bool GLU>
__device__ __forceinline__ int64_t rl_tile_row(int r, int64_t o0, int64_t NO, int64_t n_out)
{
    if (GLU) {
        int64_t o = o0 + r % NO;
        return (o < n_out ? o : n_out - 1) + (r >= NO ? n_out : 0);
    }
    return o0 + r < n_out ? o0 + r : n_out - 1;
}

/* The share of a batched kernel's CTA (or warp): output tile `tile`, NO
 * outputs from o0 (GLU: NO gate rows and their up rows), and part `part` of
 * `parts` of its K: chunks [c0, c1) of the nch chunks of CB quant blocks (nb
 * per row). rl_cu_mmq, rl_cu_mmh and rl_cu_mmw cut K between the CTAs of a
 * tile (part = rank), rl_cu_mms between the warps of a CTA. */
struct rl_tile_plan {
    int64_t n_out, o0, nb, c0, c1;
};

template <bool GLU>
__device__ __forceinline__ rl_tile_plan rl_tile_plan_of(const rl_cu_mat &m, int NO, int CB, int64_t tile, int part,
                                                        int parts)
{
    rl_tile_plan p;
    p.n_out = GLU ? m.rows / 2 : m.rows;
    p.o0 = tile * NO;
    p.nb = m.cols / 32;
    const int64_t nch = (p.nb + CB - 1) / CB;
    p.c0 = nch * part / parts;
    p.c1 = nch * (part + 1) / parts;
    return p;
}

/* Where the epilogue finds rank r's partial value of local row i, batch row
 * b: the cluster's shared memory (each rank's Cs [local row][LDC]), or a
 * workspace in global memory ([rank][batch row][BM local rows], written by
 * rl_mmh::finish_dist). */
template <int LDC> struct rl_part_cluster {
    const float *Cs;
    int rank;
    static constexpr bool CLUSTER = true;
    __device__ __forceinline__ const float *base(int r) const
    {
        return r == rank ? Cs : cooperative_groups::this_cluster().map_shared_rank(Cs, (unsigned)r);
    }
    __device__ __forceinline__ float at(const float *p, int i, int b) const { return p[i * LDC + b]; }
};

template <int BM, int NB> struct rl_part_ws {
    const float *ws; /* the tile's rank 0 */
    static constexpr bool CLUSTER = false;
    __device__ __forceinline__ const float *base(int r) const { return ws + (int64_t)r * BM * NB; }
    __device__ __forceinline__ float at(const float *p, int i, int b) const { return __ldcg(p + b * BM + i); }
};

/* The epilogue of a split-K CTA (rl_cu_mm, rl_cu_mmq, rl_cu_mmh, rl_cu_mmt).
 * Its rank's partial tile is complete where src reads it (cluster: Cs, this
 * CTA's fp32 partial [local row][LDC] in shared memory, after the caller's
 * barrier; GLU: local rows < NO are gate rows, the rest the matching up
 * rows); Vs has room for [NB][NO] floats (GLU only). Rank r of the split
 * sums batch rows r, r + split, ... over every rank's tile in rank order
 * (deterministic, no atomics), applies STORE / ADD / GLU for outputs o0 ..
 * o0 + NO - 1, and quantizes GLU outputs to int8 (and fp16 when y.h) one warp
 * per 32-output block. All threads of the CTA call it. */
template <bool GLU, int NO, int THREADS, class Src>
__device__ __forceinline__ void rl_split_epilogue(const Src &src, float *Vs, int64_t o0, int64_t n_out, int batch,
                                                  int rank, int split, int mode, const rl_cu_act &y)
{
    namespace cg = cooperative_groups;
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    if (Src::CLUSTER && split > 1)
        cg::this_cluster().sync(); /* every rank's partial tile is in its shared memory */
    const int nbr = (batch - rank + split - 1) / split, total = NO * nbr;
    const int64_t ys = y.stride ? y.stride : n_out;
    /* U outputs per thread at a time: all their loads (local and distributed
     * shared memory or the workspace, and in ADD mode the destinations in
     * global memory; hundreds of cycles each) are issued before any store,
     * which the compiler could not move them across. */
    constexpr int U = 4;
    for (int base = tid; base < total; base += U * THREADS) {
        float gs[U], u[U], old[U];
#pragma unroll
        for (int q = 0; q < U; q++) {
            gs[q] = u[q] = old[q] = 0.0f;
            int idx = base + q * THREADS;
            if (mode == RL_CU_MV_ADD && idx < total) { /* the destinations too, with the other loads */
                int b = rank + split * (idx / NO), i = idx % NO;
                if (o0 + i < n_out)
                    old[q] = y.f[b * ys + o0 + i];
            }
        }
#pragma unroll
        for (int r = 0; r < 8; r++) {
            if (r < split) {
                const float *C = src.base(r);
#pragma unroll
                for (int q = 0; q < U; q++) {
                    int idx = base + q * THREADS;
                    if (idx < total) {
                        int b = rank + split * (idx / NO), i = idx % NO;
                        gs[q] += src.at(C, i, b);
                        if (GLU)
                            u[q] += src.at(C, i + NO, b);
                    }
                }
            }
        }
#pragma unroll
        for (int q = 0; q < U; q++) {
            int idx = base + q * THREADS;
            if (idx >= total)
                break;
            int b = rank + split * (idx / NO), i = idx % NO;
            float v = GLU ? rl_silu(gs[q]) * u[q] : gs[q];
            int64_t o = o0 + i;
            if (o < n_out) {
                y.f[b * ys + o] = mode == RL_CU_MV_ADD ? old[q] + v : v;
            }
            if (GLU)
                Vs[b * NO + i] = v;
        }
    }
    if constexpr (GLU) { /* (NO / 32 would be 0 for a 16-row tile outside GLU) */
        static_assert(NO % 32 == 0, "GLU tiles quantize whole 32-output blocks");
        if (y.q != nullptr && n_out % 32 == 0) {
            __syncthreads();
            for (int t = warp; t < nbr * (NO / 32); t += THREADS / 32) {
                int b = rank + split * (t / (NO / 32)), k = t % (NO / 32);
                int64_t o = o0 + k * 32;
                if (o < n_out)
                    rl_quant_act(Vs[b * NO + k * 32 + lane], y, b * n_out + o);
            }
        }
    }
    if (Src::CLUSTER && split > 1)
        cg::this_cluster().sync(); /* keep the partial tiles alive until every rank has read them */
}

/* The cluster form (rl_cu_mm, rl_cu_mmq, rl_cu_mmh): partials in each rank's Cs. */
template <bool GLU, int NO, int LDC, int THREADS>
__device__ __forceinline__ void rl_cluster_epilogue(const float *Cs, float *Vs, int64_t o0, int64_t n_out, int batch,
                                                    int rank, int split, int mode, const rl_cu_act &y)
{
    rl_split_epilogue<GLU, NO, THREADS>(rl_part_cluster<LDC>{Cs, rank}, Vs, o0, n_out, batch, rank, split, mode, y);
}

#endif
