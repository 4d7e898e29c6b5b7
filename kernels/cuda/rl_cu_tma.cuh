/* rl_cu_tma.cuh - tensor-map copies (TMA, sm_90): the host side that
 * describes a 2-D or 3-D region of global memory (cuTensorMapEncodeTiled,
 * reached through the runtime so nothing links libcuda) and the device side
 * that copies one box of it into shared memory, completing its bytes on an
 * mbarrier. Used by rl_cu_mmt (the prefill GEMM) and rl_cu_mvb (the
 * one-sequence products). Boxes past a map's edge read as zeros, and their
 * whole size still counts on the barrier. */
#ifndef RL_CU_TMA_CUH
#define RL_CU_TMA_CUH

#include <cuda.h>
#include <cudaTypedefs.h>

#include "rl_cu_async.cuh"

namespace rl_tma {

/* The box of map tm at element (x0, x1) into dst (16-byte aligned; 128 for
 * the swizzled maps' 1,024), completing its bytes on bar. */
__device__ __forceinline__ void load_2d(void *dst, const CUtensorMap *tm, int x0, int x1, uint64_t *bar)
{
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], "
                 "[%4];" ::"r"(rl_async::sm_addr(dst)),
                 "l"((uint64_t)tm), "r"(x0), "r"(x1), "r"(rl_async::sm_addr(bar))
                 : "memory");
}

/* The 3-D form: box at (x0, x1, x2). */
__device__ __forceinline__ void load_3d(void *dst, const CUtensorMap *tm, int x0, int x1, int x2, uint64_t *bar)
{
    asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, "
                 "%4}], [%5];" ::"r"(rl_async::sm_addr(dst)),
                 "l"((uint64_t)tm), "r"(x0), "r"(x1), "r"(x2), "r"(rl_async::sm_addr(bar))
                 : "memory");
}

/* The driver's encoder, looked up once (NULL: no driver that has it). */
static inline PFN_cuTensorMapEncodeTiled_v12000 encoder(void)
{
    static PFN_cuTensorMapEncodeTiled_v12000 fn;
    static bool tried;
    if (!tried) {
        tried = true;
        void *p = NULL;
        cudaDriverEntryPointQueryResult q;
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q) ==
                cudaSuccess &&
            q == cudaDriverEntryPointSuccess)
            fn = (PFN_cuTensorMapEncodeTiled_v12000)p;
        cudaGetLastError();
    }
    return fn;
}

/* A 2-D map of rows x cols elements of type t (pitch in bytes), boxes of
 * box_c x box_r, with or without the 128-byte swizzle. */
static inline bool map_2d(CUtensorMap *tm, CUtensorMapDataType t, const void *base, uint64_t cols, uint64_t rows,
                          uint64_t pitch, uint32_t box_c, uint32_t box_r, bool swz)
{
    cuuint64_t dims[2] = {cols, rows}, strides[1] = {pitch};
    cuuint32_t box[2] = {box_c, box_r}, es[2] = {1, 1};
    PFN_cuTensorMapEncodeTiled_v12000 enc = encoder();
    return enc && enc(tm, t, 2, (void *)base, dims, strides, box, es, CU_TENSOR_MAP_INTERLEAVE_NONE,
                      swz ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_NONE,
                      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

/* A 3-D map of n2 x n1 x n0 elements (pitches p1, p2 bytes), boxes of b0 x b1 x 1. */
static inline bool map_3d(CUtensorMap *tm, CUtensorMapDataType t, const void *base, uint64_t n0, uint64_t n1,
                          uint64_t n2, uint64_t p1, uint64_t p2, uint32_t b0, uint32_t b1, bool swz)
{
    cuuint64_t dims[3] = {n0, n1, n2}, strides[2] = {p1, p2};
    cuuint32_t box[3] = {b0, b1, 1}, es[3] = {1, 1, 1};
    PFN_cuTensorMapEncodeTiled_v12000 enc = encoder();
    return enc && enc(tm, t, 3, (void *)base, dims, strides, box, es, CU_TENSOR_MAP_INTERLEAVE_NONE,
                      swz ? CU_TENSOR_MAP_SWIZZLE_128B : CU_TENSOR_MAP_SWIZZLE_NONE,
                      CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

} /* namespace rl_tma */

#endif
