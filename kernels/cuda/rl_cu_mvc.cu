/* rl_cu_mvc.cu - rl_cu_mvb_chain: several one-sequence products, each
 * reading the one before's output, in one persistent launch.
 *
 * Why (docs/PERFORMANCE.md, "Batch 1: weights streamed by bulk copies"):
 * on rl_cu_mvb the 7B products run at 87-97% of the copy bandwidth, but each
 * launch pays its start (the first copies' latency, the activation's
 * preparation) and its end (the last stages' arithmetic) with the memory
 * idle: the O product takes 5.2 us for 3.2 us of bytes, and at 2,048 wide
 * (TinyLlama) rl_cu_mvb loses to the matvecs. Here the producer lane of each
 * CTA streams the weights of every product of the chain without a break
 * (weights never depend on activations), so the next product's first stages
 * arrive while the consumers finish this one and wait for the others.
 *
 * - Products p = 0..n-1 in order: y_p = W_p x_p (STORE), y_p += W_p x_p
 *   (ADD) or silu(Wg x) * (Wu x) (GLU), x_p normalized first when g_p is set,
 *   each on rl_cu_mvb's tiles (8 outputs, 2 KB copies per row and chunk).
 *   A stage always holds 8 weight rows: a GLU tile's chunk is two stages
 *   (its gate rows, then its up rows).
 * - Grid-wide order: when a CTA's consumers have written their outputs of
 *   product p, thread 0 fences and adds 1 to done[p]; before preparing
 *   x_{p+1}, a CTA waits until done[p] counts every CTA. The activation and
 *   the residual are read past L1 (other CTAs wrote them in this launch).
 *   The last CTA to leave sets the counters back to zero for the next launch.
 * - Every CTA must be resident at once (a CTA waits for all the others):
 *   one CTA per SM by its shared memory, grid = the SM count; the launch
 *   before it may still hold SMs (PDL), which it releases without waiting on
 *   this one.
 *
 * Same types and shapes as rl_cu_mvb, one type per chain, the widest input
 * within the shared memory (rl_cu_mvb's bound). A measurement path, not yet
 * run on a GPU (written at the end of session 16): RL_CU_MVB_CHAIN=1 in the
 * step. */
#include "rl_cu_mvb.cuh"

namespace rl_mvb {

struct chain_args {
    rl_cu_chain_prod p[RL_CU_CHAIN_MAX];
    int n;
    float eps;
    unsigned *done; /* n counters, then the leaving count */
};

__device__ __forceinline__ unsigned ld_acquire(const unsigned *p)
{
    unsigned v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}

template <int T>
__global__ void __launch_bounds__(THREADS, 1) k_mvc(const chain_args a)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    using C = cfg<T, false>; /* stages of TR rows */
    constexpr int CK = C::CK, QROW = C::QROW, DROW = C::DROW, RB = C::RB;
    extern __shared__ __align__(128) uint8_t sm[];
    int64_t max_cols = 0;
    for (int p = 0; p < a.n; p++)
        max_cols = a.p[p].m.cols > max_cols ? a.p[p].m.cols : max_cols;
    int8_t *xq = (int8_t *)(sm + RB);
    float *xds = (float *)(sm + RB + max_cols), *xf = (float *)(sm + RB);
    uint64_t *full = (uint64_t *)(sm + RB + x_bytes(C::FX, max_cols));
    uint64_t *empty = full + C::S;
    float *red = (float *)(empty + C::S);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    ring_start<C::S>(full, empty);

    if (warp == CW) { /* the producer: every product's weights, one stage of TR rows at a time */
        if (lane != 0)
            return;
        int64_t i = 0;
        for (int p = 0; p < a.n; p++) {
            const rl_cu_mat &m = a.p[p].m;
            const bool glu = a.p[p].mode == RL_CU_MV_GLU;
            const uint8_t *q = (const uint8_t *)m.q;
            const uint16_t *d = (const uint16_t *)m.d;
            const int64_t nb = m.cols / 32, n_out = glu ? m.rows / 2 : m.rows, nch = (nb + CK - 1) / CK;
            for (int64_t t = blockIdx.x; t < n_out / TR; t += gridDim.x)
                for (int64_t c = 0; c < nch; c++)
                    for (int h = 0; h <= (int)glu; h++, i++) {
                        int s = (int)(i % C::S);
                        int64_t cu = nb - c * CK < CK ? nb - c * CK : CK;
                        uint8_t *st = sm + (size_t)s * C::STG;
                        bar_wait(&empty[s], ((unsigned)(i / C::S) & 1) ^ 1);
                        bar_expect(&full[s], (unsigned)(TR * cu * (C::QB + (C::FX ? 0 : 2))));
                        for (int r = 0; r < TR; r++) {
                            int64_t row = h * n_out + t * TR + r;
                            bulk_copy(st + r * QROW, q + (row * nb + c * CK) * C::QB, (unsigned)(cu * C::QB),
                                      &full[s]);
                            if (!C::FX)
                                bulk_copy(st + TR * QROW + r * DROW, d + row * nb + c * CK, (unsigned)(cu * 2),
                                          &full[s]);
                        }
                    }
        }
        return;
    }

    /* consumers: warp w, output o = w % TR of each tile, half h = w / TR */
    const int o = warp % TR, hw = warp / TR;
    int64_t i = 0;
    int tl = 0;
    for (int p = 0; p < a.n; p++) {
        const rl_cu_chain_prod &P = a.p[p];
        const bool glu = P.mode == RL_CU_MV_GLU;
        const int64_t cols = P.m.cols, nb = cols / 32, n_out = glu ? P.m.rows / 2 : P.m.rows;
        const int64_t nch = (nb + CK - 1) / CK;
        if (p == 0) {
            rl_pdl_wait();
        } else { /* every CTA's outputs of product p - 1 */
            if (threadIdx.x == 0) {
                /* a CTA that never counts (not resident: the assumption
                 * above broken) stops the launch with an error after
                 * seconds instead of hanging the stream */
                for (unsigned spins = 0; ld_acquire(&a.done[p - 1]) < gridDim.x; spins++) {
                    if (spins == (1u << 25))
                        __trap();
                    __nanosleep(64);
                }
                __threadfence();
            }
            asm volatile("bar.sync 1, %0;" ::"n"(NT) : "memory");
        }
        if (p == 0)
            prepare_x<C::FX, false>(P.x, P.g, a.eps, cols, xq, xds, xf, red);
        else
            prepare_x<C::FX, true>(P.x, P.g, a.eps, cols, xq, xds, xf, red);
        const rl_cu_act xs = shared_act<C::FX>(xq, xds, xf, cols);
        for (int64_t t = blockIdx.x; t < n_out / TR; t += gridDim.x, tl++) {
            float acc = 0.0f, accu = 0.0f; /* gate (or the only row), up */
            for (int64_t c = 0; c < nch; c++) {
                int64_t cu = nb - c * CK < CK ? nb - c * CK : CK;
                for (int h = 0; h <= (int)glu; h++, i++) {
                    int s = (int)(i % C::S);
                    bar_wait(&full[s], (unsigned)(i / C::S) & 1);
                    const uint8_t *st = sm + (size_t)s * C::STG;
                    float part = 0.0f;
#pragma unroll
                    for (int k = 0; k < C::NU / 32 / H; k++) {
                        int j = lane + 32 * (k * H + hw);
                        if (j >= cu * C::UPB)
                            break;
                        wunit<T> w = sload<T>(st + o * QROW, st + TR * QROW + o * DROW, j);
                        part += wdot<T>(w, xs, 0, c * C::NU + j);
                    }
                    if (h)
                        accu += part;
                    else
                        acc += part;
                    __syncwarp();
                    if (lane == 0)
                        bar_arrive(&empty[s]);
                }
            }
            float g0 = rl_warp_sum(acc), u0 = glu ? rl_warp_sum(accu) : 0.0f;
            float *half = red + 16 + (tl & 1) * 16;
            if (hw == 1 && lane == 0)
                half[o] = g0, half[TR + o] = u0;
            asm volatile("bar.sync 1, %0;" ::"n"(NT) : "memory");
            if (hw == 1 || lane != 0)
                continue;
            g0 += half[o], u0 += half[TR + o];
            int64_t r = t * TR + o;
            if (glu)
                P.y[r] = rl_silu(g0) * u0;
            else
                P.y[r] = P.mode == RL_CU_MV_ADD ? __ldcg(P.y + r) + g0 : g0;
        }
        /* this CTA's outputs of product p are written: each writer's fence,
         * the CTA's barrier, then one count */
        __threadfence();
        asm volatile("bar.sync 1, %0;" ::"n"(NT) : "memory");
        if (threadIdx.x == 0) {
            __threadfence();
            atomicAdd(&a.done[p], 1u);
        }
    }
    /* the last CTA to leave resets the counters (every CTA passed every wait) */
    if (threadIdx.x == 0) {
        __threadfence();
        if (atomicAdd(&a.done[a.n], 1u) == gridDim.x - 1) {
            for (int p = 0; p <= a.n; p++)
                a.done[p] = 0;
            __threadfence();
        }
    }
#endif
}

template <int T> static int launch_chain(const chain_args &a, size_t smem, cudaStream_t s)
{
    static size_t set_for = 0;
    if (!smem_limit(k_mvc<T>, smem, &set_for))
        return -ENOTSUP;
    rl_launch_smem(k_mvc<T>, dim3((unsigned)rl_cu_sm_count()), dim3(THREADS), smem, s, a);
    return RL_CU_LAUNCHED("mvb chain");
}

} /* namespace rl_mvb */

extern "C" int rl_cu_mvb_chain(const rl_cu_chain_prod *p, int n, float eps, unsigned *d_done, cudaStream_t s)
{
    if (n < 1 || n > RL_CU_CHAIN_MAX || !d_done)
        return -EINVAL;
    rl_mvb::chain_args a = {};
    int64_t max_cols = 0;
    for (int k = 0; k < n; k++) {
        const rl_cu_chain_prod &q = p[k];
        if (q.mode != RL_CU_MV_STORE && q.mode != RL_CU_MV_ADD && q.mode != RL_CU_MV_GLU)
            return -EINVAL;
        if (!q.x || !q.y || (uintptr_t)q.x % 16 || (uintptr_t)q.g % 16 || !rl_cu_mvb_ok(&q.m, q.mode) ||
            q.m.type != p[0].m.type)
            return -ENOTSUP; /* one weight type per chain */
        max_cols = q.m.cols > max_cols ? q.m.cols : max_cols;
        a.p[k] = q;
    }
    a.n = n, a.eps = eps, a.done = d_done;
    bool fx = rl_mvb::float_w(p[0].m.type);
    size_t rb = 0;
    switch (p[0].m.type) {
    case RL_TYPE_Q4_0: rb = rl_mvb::cfg<RL_TYPE_Q4_0, false>::RB; break;
    case RL_TYPE_Q8_0: rb = rl_mvb::cfg<RL_TYPE_Q8_0, false>::RB; break;
    case RL_TYPE_F16: rb = rl_mvb::cfg<RL_TYPE_F16, false>::RB; break;
    default: rb = rl_mvb::cfg<RL_TYPE_BF16, false>::RB; break;
    }
    size_t smem = rl_mvb::smem_bytes(rb, fx, max_cols);
    if (smem > 227 * 1024)
        return -ENOTSUP;
    switch (p[0].m.type) {
    case RL_TYPE_Q4_0: return rl_mvb::launch_chain<RL_TYPE_Q4_0>(a, smem, s);
    case RL_TYPE_Q8_0: return rl_mvb::launch_chain<RL_TYPE_Q8_0>(a, smem, s);
    case RL_TYPE_F16: return rl_mvb::launch_chain<RL_TYPE_F16>(a, smem, s);
    default: return rl_mvb::launch_chain<RL_TYPE_BF16>(a, smem, s);
    }
}
