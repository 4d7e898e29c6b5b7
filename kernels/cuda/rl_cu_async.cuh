/* rl_cu_async.cuh - cp.async (global -> shared memory copies that bypass the
 * registers) for the pipelined batched products (rl_cu_mmq, rl_cu_mmh). */
#ifndef RL_CU_ASYNC_CUH
#define RL_CU_ASYNC_CUH

#include "rl_cu_common.cuh"

namespace rl_async {

__device__ __forceinline__ unsigned sm_addr(const void *p)
{
    return (unsigned)__cvta_generic_to_shared(p);
}

/* cp.async of 16 / 8 / 4 bytes; !valid writes zeros (src-size 0, nothing read). */
__device__ __forceinline__ void cp16(void *dst, const void *src, bool valid)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(sm_addr(dst)), "l"(src), "r"(valid ? 16 : 0)
                 : "memory");
}

__device__ __forceinline__ void cp8(void *dst, const void *src, bool valid)
{
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;" ::"r"(sm_addr(dst)), "l"(src), "r"(valid ? 8 : 0)
                 : "memory");
}

__device__ __forceinline__ void cp4(void *dst, const void *src, bool valid)
{
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(sm_addr(dst)), "l"(src), "r"(valid ? 4 : 0)
                 : "memory");
}

/* Close the group of copies issued since the last commit. */
__device__ __forceinline__ void cp_commit()
{
    asm volatile("cp.async.commit_group;" ::: "memory");
}

/* Wait until at most N committed groups are still in flight. */
template <int N> __device__ __forceinline__ void cp_wait()
{
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}

} /* namespace rl_async */

#endif
