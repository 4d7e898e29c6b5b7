/* rl_cu_cluster.cuh - host side of the split-K kernels (rl_cu_mm, rl_cu_mmq):
 * the SM count, the choice of the K split over a thread-block cluster, and a
 * launch with programmatic dependent launch and the cluster shape. */
#ifndef RL_CU_CLUSTER_CUH
#define RL_CU_CLUSTER_CUH

#include "rl_cu_common.cuh"

/* SMs of the current device (132 when the query fails); cached. Device
 * attributes are not stream work, so this is fine during a graph capture. */
int rl_cu_sm_count();

/* Smallest estimated time over splits 1, 2, 4, 8 for `tiles` row tiles of
 * `nch` K chunks with `slots` CTAs resident at once: waves divided by the
 * split, plus a cost per rank for the cluster reduction; every rank keeps at
 * least 2 chunks of K. */
int rl_cu_cluster_split(int64_t tiles, int64_t nch, int64_t slots);

/* k<<<tiles * split, block, smem, s>>>(args...) as clusters of `split` CTAs
 * along x, with programmatic stream serialization when enabled. */
template <typename... KArgs, typename... Args>
static inline void rl_launch_cluster(void (*k)(KArgs...), int64_t tiles, int split, dim3 block, size_t smem,
                                     cudaStream_t s, Args... args)
{
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3((unsigned)(tiles * split));
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = s;
    cudaLaunchAttribute at[2];
    int na = 0;
    if (rl_cu_pdl_enabled()) {
        at[na].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        at[na++].val.programmaticStreamSerializationAllowed = 1;
    }
    if (split > 1) {
        at[na].id = cudaLaunchAttributeClusterDimension;
        at[na].val.clusterDim.x = (unsigned)split;
        at[na].val.clusterDim.y = 1;
        at[na++].val.clusterDim.z = 1;
    }
    cfg.attrs = at;
    cfg.numAttrs = na;
    cudaLaunchKernelEx(&cfg, k, ((KArgs)args)...);
}

#endif
