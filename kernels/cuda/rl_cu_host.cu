/* rl_cu_host.cu - zero copy across the process boundary: client regions
 * (memfd shared memory of libringlm clients) registered with CUDA as mapped
 * host memory, the lookup of the device address of a host address inside
 * them, and the kernels that write sampled token ids through those mappings. */
#include "rl_cu_common.cuh"
#include "rl_cu_hosttab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rl_cu_hostmap {
    rl_cu_hosttab tab;
    bool warned; /* a refused registration was logged */
};

extern "C" int rl_cu_hostmap_new(rl_cu_hostmap **out)
{
    *out = (rl_cu_hostmap *)calloc(1, sizeof(rl_cu_hostmap));
    return *out ? 0 : -ENOMEM;
}

extern "C" void rl_cu_hostmap_free(rl_cu_hostmap *hm)
{
    if (!hm)
        return;
    /* Callers unmap first; whatever is left is unregistered here so that the
     * pages are unpinned before their owner unmaps them. */
    for (uint32_t i = 0; i < hm->tab.n; i++)
        cudaHostUnregister((void *)hm->tab.e[i].host);
    cudaGetLastError(); /* do not leave a stale error to the next launch check */
    rl_cu_hosttab_free(&hm->tab);
    free(hm);
}

extern "C" int rl_cu_host_register(rl_cu_hostmap *hm, void *base, size_t len)
{
    if (!hm || !base || !len)
        return -EINVAL;
    const char *env = getenv("RL_CU_ZEROCOPY");
    if (env && strcmp(env, "0") == 0)
        return -ENOTSUP;
    if (rl_cu_hosttab_dev(&hm->tab, base, 1) != 0)
        return -EEXIST;
    /* Mapped: the device may read and write it through a device address
     * (over PCIe/NVLink-C2C); portable: every context sees it as pinned. */
    cudaError_t e = cudaHostRegister(base, len, cudaHostRegisterMapped | cudaHostRegisterPortable);
    if (e != cudaSuccess) {
        cudaGetLastError(); /* a refusal is not a launch error of the next kernel */
        if (!hm->warned) {
            hm->warned = true;
            fprintf(stderr, "cuda: cannot register client memory (%s): token ids are copied\n",
                    cudaGetErrorString(e));
        }
        return -EIO;
    }
    void *dev = NULL;
    e = cudaHostGetDevicePointer(&dev, base, 0);
    int rc = e == cudaSuccess ? rl_cu_hosttab_add(&hm->tab, base, len, (uint64_t)(uintptr_t)dev)
                              : -EIO;
    if (rc) {
        cudaGetLastError();
        cudaHostUnregister(base);
        cudaGetLastError();
        if (!hm->warned) {
            hm->warned = true;
            fprintf(stderr, "cuda: no device address for client memory (%s): token ids are copied\n",
                    e == cudaSuccess ? strerror(-rc) : cudaGetErrorString(e));
        }
        return rc;
    }
    return 0;
}

extern "C" int rl_cu_host_unregister(rl_cu_hostmap *hm, void *base)
{
    if (!hm)
        return -ENOENT;
    int rc = rl_cu_hosttab_del(&hm->tab, base, NULL);
    if (rc)
        return rc;
    /* The caller guarantees no kernel that writes here is in flight (the
     * engine's steps are synchronous and this runs between them). */
    cudaError_t e = cudaHostUnregister(base);
    if (e != cudaSuccess)
        cudaGetLastError();
    return e == cudaSuccess ? 0 : -EIO;
}

extern "C" uint64_t rl_cu_host_dev_ptr(const rl_cu_hostmap *hm, const void *host, size_t len)
{
    return hm ? rl_cu_hosttab_dev(&hm->tab, host, len) : 0;
}

/* Write tok[i] to dst[i] (a device address of mapped host memory; 0: skip).
 * The fence makes the stores visible system-wide before the kernel ends, so
 * the host sees them once it synchronized with the stream (and a later event
 * or sync orders them before the daemon publishes the completion). */
__device__ __forceinline__ void put_token(uint64_t dst, int32_t tok)
{
    if (!dst)
        return;
    *(volatile int32_t *)(uintptr_t)dst = tok;
    __threadfence_system();
}

__global__ void k_scatter_tokens(const int32_t *tok, const uint64_t *dst, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n)
        put_token(dst[i], tok[i]);
}

__global__ void k_scatter_tokens_v(const int32_t *tok, rl_cu_tok_dst dst, int n)
{
    int i = threadIdx.x;
    if (i < n)
        put_token(dst.p[i], tok[i]);
}

extern "C" int rl_cu_scatter_tokens(const int32_t *d_tok, const uint64_t *d_dst_ptrs, int n,
                                    cudaStream_t s)
{
    if (n < 0)
        return -EINVAL;
    if (n == 0)
        return 0;
    k_scatter_tokens<<<(n + 127) / 128, 128, 0, s>>>(d_tok, d_dst_ptrs, n);
    return RL_CU_LAUNCHED("scatter tokens");
}

extern "C" int rl_cu_scatter_tokens_v(const int32_t *d_tok, const rl_cu_tok_dst *dst, int n,
                                      cudaStream_t s)
{
    if (n < 0 || n > RL_CU_MAX_BATCH || !dst)
        return -EINVAL;
    if (n == 0)
        return 0;
    k_scatter_tokens_v<<<1, RL_CU_MAX_BATCH, 0, s>>>(d_tok, *dst, n);
    return RL_CU_LAUNCHED("scatter tokens");
}
