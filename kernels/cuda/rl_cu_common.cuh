/* rl_cu_common.cuh - helpers shared by the CUDA kernels (device side). */
#ifndef RL_CU_COMMON_CUH
#define RL_CU_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <errno.h>
#include <stdint.h>

#include "rl_cu_env.h"
#include "rl_cuda.h"
#include "rl_cu_tl.cuh"

#define RL_CU_WARP 32

/* SMs of the current device (132 when the query fails); cached. Device
 * attributes are not stream work, so this is fine during a graph capture. */
int rl_cu_sm_count();

/* Launch-time error check used by every host wrapper. */
#define RL_CU_LAUNCHED(what) rl_cu_check_launch(what)

/* Programmatic dependent launch (sm_90): a kernel launched with
 * rl_launch() may start while the previous kernel in the stream drains. It
 * must not read what that kernel writes, nor write anything, before
 * rl_pdl_wait() (which waits for the previous grid to complete and its memory
 * to be visible). rl_pdl_trigger() lets the next kernel start launching. Both
 * are no-ops for a kernel launched without the attribute. */
__device__ __forceinline__ void rl_pdl_wait()
{
    asm volatile("griddepcontrol.wait;" ::: "memory");
}

__device__ __forceinline__ void rl_pdl_trigger()
{
    asm volatile("griddepcontrol.launch_dependents;" :::);
}

__device__ __forceinline__ void rl_prefetch_l2(const void *p)
{
    asm volatile("prefetch.global.L2 [%0];" ::"l"(p));
}

/* Whether launches use programmatic dependent launch (env RL_CU_PDL=0: off). */
bool rl_cu_pdl_enabled();

/* Launch k<<<grid, block, smem, s>>>(args...) with programmatic stream
 * serialization allowed (see rl_pdl_wait). */
template <typename... KArgs, typename... Args>
static inline void rl_launch_smem(void (*k)(KArgs...), dim3 grid, dim3 block, size_t smem, cudaStream_t s,
                                  Args... args)
{
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = smem;
    cfg.stream = s;
    cudaLaunchAttribute at[1];
    at[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    at[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = at;
    cfg.numAttrs = rl_cu_pdl_enabled() ? 1 : 0;
    cudaLaunchKernelEx(&cfg, k, ((KArgs)args)...);
}

/* rl_launch_smem without dynamic shared memory. */
template <typename... KArgs, typename... Args>
static inline void rl_launch(void (*k)(KArgs...), dim3 grid, dim3 block, cudaStream_t s, Args... args)
{
    rl_launch_smem(k, grid, block, 0, s, args...);
}

__device__ __forceinline__ float rl_warp_sum(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float rl_warp_max(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ float rl_h2f(uint16_t h)
{
    return __half2float(__ushort_as_half(h));
}

__device__ __forceinline__ float rl_silu(float x)
{
    return x / (1.0f + __expf(-x));
}

/* Block-wide sum over blockDim.x threads (a multiple of 32, <= 1024); every
 * thread gets the total. sh must hold 32 floats. */
__device__ __forceinline__ float rl_block_sum(float v, float *sh)
{
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = rl_warp_sum(v);
    __syncthreads(); /* sh may still be read from a previous call */
    if (lane == 0)
        sh[w] = v;
    __syncthreads();
    float t = lane < nw ? sh[lane] : 0.0f;
    return rl_warp_sum(t);
}

__device__ __forceinline__ float rl_block_max(float v, float *sh)
{
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = rl_warp_max(v);
    __syncthreads();
    if (lane == 0)
        sh[w] = v;
    __syncthreads();
    float t = lane < nw ? sh[lane] : -INFINITY;
    return rl_warp_max(t);
}

/* Quantize one 32-block held one value per lane: writes q[lane] and, from
 * lane 0, ds = {d, d*sum(q)}; with h, also h[lane] = fp16(d * q[lane]). */
__device__ __forceinline__ void rl_quant_block_warp(float v, int8_t *q, float *ds, __half *h = nullptr)
{
    int lane = threadIdx.x & 31;
    float amax = rl_warp_max(fabsf(v));
    float d = amax / 127.0f;
    float id = d > 0.0f ? 1.0f / d : 0.0f;
    int qi = __float2int_rn(v * id);
    q[lane] = (int8_t)qi;
    if (h)
        h[lane] = __float2half_rn(d * (float)qi);
    float sum = rl_warp_sum((float)qi);
    if (lane == 0) {
        ds[0] = d;
        ds[1] = d * sum;
    }
}

/* fp16 pairs as their 32 bits and back. */
__device__ __forceinline__ uint32_t rl_h2_bits(__half2 h)
{
    return *(const uint32_t *)&h;
}

__device__ __forceinline__ __half2 rl_bits_h2(uint32_t u)
{
    return *(const __half2 *)&u;
}

/* Four bytes (each < 256) of v as halves 1024 + byte (0x64xx is 1024 + xx):
 * lo = bytes 0, 1; hi = bytes 2, 3. Exact; subtracting 1024 + an offset
 * (also exact) gives the signed value (dequantization). */
__device__ __forceinline__ void rl_bytes_to_h2(uint32_t v, __half2 &lo, __half2 &hi)
{
    lo = rl_bits_h2(__byte_perm(v, 0x64646464u, 0x5140));
    hi = rl_bits_h2(__byte_perm(v, 0x64646464u, 0x7362));
}

/* rl_quant_block_warp into activation a at element off (a block start):
 * q, ds and, when a.h is set, the fp16 of d * q (what the int8 value means). */
__device__ __forceinline__ void rl_quant_act(float v, const rl_cu_act &a, int64_t off)
{
    rl_quant_block_warp(v, a.q + off, a.ds + off / 32 * 2, a.h ? (__half *)a.h + off : nullptr);
}

#endif
