/* rl_cu_tl.cuh - the step timeline (device side): each block of an
 * instrumented kernel records when it started, when its PDL wait returned
 * and when it ended, on the GPU's global timer, so that a step's kernels can
 * be laid out as they ran inside one graph replay (rl_cu_tl.cu reads the
 * records back). Built only with -Dgpu_timeline=true (RL_CU_TIMELINE): in
 * every other build the macros below are empty and no kernel changes.
 *
 * In a kernel: RL_TL_BLOCK(tag) first (an RAII object: the block's thread 0
 * takes a record slot at once and writes the record when it leaves, by any
 * return), RL_TL_WAITED() right after the kernel's rl_pdl_wait(),
 * RL_TL_MARK(i, v) where the kernel has computed v (i < RL_TL_MARKS: the
 * kernel's own stages; the timer is read once v is there). Thread 0
 * records for its block: where it leaves early (the producer lane of
 * rl_cu_mvb is not thread 0) the block's end is its own. Each translation
 * unit with instrumented kernels has its own copy of the log's address and
 * names a setter for it with RL_TL_TU(name); rl_cu_tl.cu calls them all. */
#ifndef RL_CU_TL_CUH
#define RL_CU_TL_CUH

#include <stdint.h>

#include "rl_cu_tl.h"

#ifdef RL_CU_TIMELINE
namespace rl_tl {

static __constant__ rl_cu_tl_rec *log_rec; /* NULL: not armed */
static __constant__ unsigned *log_n;
static __constant__ unsigned log_cap;

__device__ __forceinline__ uint64_t now()
{
    uint64_t t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

struct blk {
    uint64_t t0, tw, mk[RL_TL_MARKS];
    unsigned idx;
    unsigned tag;
    bool on;
    __device__ __forceinline__ explicit blk(unsigned tg) : t0(0), tw(0), mk{}, idx(0), tag(tg), on(false)
    {
        if (threadIdx.x == 0 && threadIdx.y == 0 && log_rec) {
            t0 = now();
            idx = atomicAdd(log_n, 1u); /* used only at the end: its latency hides under the block's work */
            on = true;
        }
    }
    __device__ __forceinline__ void waited()
    {
        if (on && !tw)
            tw = now();
    }
    /* mark i once v is computed (the timer read depends on it) */
    __device__ __forceinline__ void mark(int i, float v)
    {
        if (on) {
            uint64_t t;
            asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t) : "f"(v));
            mk[i] = t;
        }
    }
    __device__ __forceinline__ ~blk()
    {
        if (!on || idx >= log_cap)
            return;
        uint64_t grid, t1 = now();
        unsigned sm;
        asm volatile("mov.u64 %0, %%gridid;" : "=l"(grid));
        asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
        rl_cu_tl_rec r;
        r.t0 = t0, r.tw = tw, r.t1 = t1, r.grid = grid;
        for (int i = 0; i < RL_TL_MARKS; i++)
            r.mk[i] = mk[i];
        r.tag = tag, r.block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z), r.sm = sm;
        r.n_blocks = gridDim.x * gridDim.y * gridDim.z;
        log_rec[idx] = r;
    }
};

} /* namespace rl_tl */

#define RL_TL_BLOCK(tag) rl_tl::blk rl_tl_b_(tag)
#define RL_TL_WAITED() rl_tl_b_.waited()
#define RL_TL_MARK(i, v) rl_tl_b_.mark(i, v)
#define RL_TL_TU(name)                                                                                          \
    extern "C" int rl_cu_tl_set_##name(rl_cu_tl_rec *rec, unsigned *n, unsigned cap)                         \
    {                                                                                                           \
        cudaError_t e = cudaMemcpyToSymbol(rl_tl::log_rec, &rec, sizeof rec);                                   \
        if (e == cudaSuccess)                                                                                   \
            e = cudaMemcpyToSymbol(rl_tl::log_n, &n, sizeof n);                                                 \
        if (e == cudaSuccess)                                                                                   \
            e = cudaMemcpyToSymbol(rl_tl::log_cap, &cap, sizeof cap);                                           \
        return rl_cu_check(e, "timeline symbols");                                                             \
    }
#else
#define RL_TL_BLOCK(tag) ((void)0)
#define RL_TL_WAITED() ((void)0)
#define RL_TL_MARK(i, v) ((void)0)
#define RL_TL_TU(name)
#endif

#endif
