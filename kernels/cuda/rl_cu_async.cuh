/* rl_cu_async.cuh - cp.async (global -> shared memory copies that bypass the
 * registers) for the pipelined batched products (rl_cu_mmq, rl_cu_mmh); the
 * mbarriers and bulk copies of the TMA pipelines (rl_cu_mmt, rl_cu_mvb). */
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

/* ---- mbarriers and bulk copies (sm_90): the pipelines of rl_cu_mmt and rl_cu_mvb ---- */
__device__ __forceinline__ void bar_init(uint64_t *b, unsigned count)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(sm_addr(b)), "r"(count) : "memory");
}

__device__ __forceinline__ void bar_expect(uint64_t *b, unsigned bytes)
{
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(sm_addr(b)), "r"(bytes) : "memory");
}

__device__ __forceinline__ void bar_arrive(uint64_t *b)
{
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(sm_addr(b)) : "memory");
}

__device__ __forceinline__ void bar_wait(uint64_t *b, unsigned parity)
{
    unsigned done;
    do {
        asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                     "selp.u32 %0, 1, 0, p;\n}\n"
                     : "=r"(done)
                     : "r"(sm_addr(b)), "r"(parity)
                     : "memory");
    } while (!done);
}

/* One bulk copy of bytes (a multiple of 16, both addresses 16-byte
 * aligned) from global src into shared dst, completing its bytes on bar. */
__device__ __forceinline__ void bulk_copy(void *dst, const void *src, unsigned bytes, uint64_t *bar)
{
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
                     sm_addr(dst)),
                 "l"(src), "r"(bytes), "r"(sm_addr(bar))
                 : "memory");
}

} /* namespace rl_async */

#endif
