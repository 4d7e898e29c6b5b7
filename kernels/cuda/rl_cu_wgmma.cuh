/* rl_cu_wgmma.cuh - what the warpgroup products rl_cu_mmw and rl_cu_mmt
 * share (sm_90a): the wgmma fence, commit and wait, the m64n64k16 product
 * with A (dequantized Q4_0 weights) from registers, and the dequantization of
 * a quant block of two rows into its A fragments.
 *
 * A fragments: warp w of a warpgroup holds rows 16w + g and 16w + g + 8 (g =
 * lane / 4) and, per 16-wide K slice, elements 2t, 2t+1, 2t+8, 2t+9 (t = lane
 * % 4). A Q4_0 block (32 elements, 16 bytes, element e in byte e % 16, nibble
 * e / 16) is two slices: low nibbles, then high nibbles, of the same four
 * bytes 2t, 2t+1, 2t+8, 2t+9. */
#ifndef RL_CU_WGMMA_CUH
#define RL_CU_WGMMA_CUH

#include "rl_cu_common.cuh"

namespace rl_wgmma {

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define RL_WGMMA_DEVICE 1 /* the sm_90a code: the wgmma kernels have bodies */

__device__ __forceinline__ void wg_fence()
{
    asm volatile("wgmma.fence.sync.aligned;" ::: "memory");
}
__device__ __forceinline__ void wg_commit()
{
    asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory");
}
template <int N> __device__ __forceinline__ void wg_wait()
{
    asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(N) : "memory");
}

/* d (64 x 64 fp32, this thread's 32) += A (64 x 16 fp16, registers) * B (16 x 64, shared memory). */
__device__ __forceinline__ void wgmma_64x64(float (&d)[32], const uint32_t (&a)[4], uint64_t desc)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 "
                 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
                 "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, "
                 "{%32, %33, %34, %35}, %36, p, 1, 1, 0;\n}\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
                   "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]),
                   "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]),
                   "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]),
                   "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc), "r"(1));
}
#endif

/* Slice h (0: low nibbles, 1: high) of the four gathered bytes v as two
 * fp16 pairs (elements 2t, 2t+1 and 2t+8, 2t+9), scale d applied. */
__device__ __forceinline__ void deq_slice(uint32_t v, int h, __half2 d, uint32_t &lo, uint32_t &hi)
{
    uint32_t n = (v >> (4 * h)) & 0x0F0F0F0Fu;
    __half2 a, b, off = __float2half2_rn(1032.0f);
    rl_bytes_to_h2(n, a, b);
    lo = rl_h2_bits(__hmul2(__hsub2(a, off), d));
    hi = rl_h2_bits(__hmul2(__hsub2(b, off), d));
}

/* Rows r and r + 8 of a quant block as the A fragments of its two slices
 * (lo: low nibbles, hi: high): qa / qb the words with bytes 2t, 2t+1 and
 * 2t+8, 2t+9 of each row (word t / 2 and 2 + t / 2), sel the byte permute
 * that gathers this lane's four bytes, d the rows' scales. */
__device__ __forceinline__ void a_frags(uint32_t qa0, uint32_t qb0, uint32_t qa1, uint32_t qb1, __half2 d0, __half2 d1,
                                        uint32_t sel, uint32_t (&lo)[4], uint32_t (&hi)[4])
{
    const uint32_t v0 = __byte_perm(qa0, qb0, sel), v1 = __byte_perm(qa1, qb1, sel);
    deq_slice(v0, 0, d0, lo[0], lo[2]);
    deq_slice(v1, 0, d1, lo[1], lo[3]);
    deq_slice(v0, 1, d0, hi[0], hi[2]);
    deq_slice(v1, 1, d1, hi[1], hi[3]);
}

} /* namespace rl_wgmma */

#endif
