/* rl_cu_mvc.cu - a chain of one-sequence products in one launch: rl_cu_mvb's
 * streaming kernel (rl_cu_mvb.cu) over up to RL_CU_MVC_MAX products, each
 * reading the one before it (a layer's gate/up, its down product, the next
 * layer's Q|K|V or the output product).
 *
 * Why: between two rl_cu_mvb launches the memory goes idle. A CTA of the
 * next product starts on an SM only once the CTA of the one before has left
 * it (each holds a 144 KB ring), fills its ring before the PDL wait and then
 * stops streaming until the whole grid before is complete and it has
 * prepared its activation; the SMs freed last start with an empty ring. Here
 * the persistent CTAs keep one ring across the products: the producer lane
 * streams the next product's weights as soon as stages are free, while the
 * consumers finish the product before and wait for every CTA's outputs of it
 * (a counter per product boundary, instead of the grid's completion).
 *
 * - A stage is one chunk of 8 weight rows (GLU: a tile's chunk is two
 *   stages, its 8 gate rows then its 8 up rows), so every product of the
 *   chain shares the ring's stage size; one weight type for the chain.
 * - The arithmetic is rl_cu_mvb's (same activation, same sums in the same
 *   order): the chain's outputs are rl_cu_mvb's, bit for bit.
 * - Product k > 0 starts in a CTA when all its consumer warps are done with
 *   k - 1 (a barrier), its thread 0 has counted the CTA in on the boundary's
 *   counter (release) and seen every CTA there (acquire); the activation is
 *   then read through L2 only (written by other CTAs of this launch).
 * - Every CTA must be resident at once (the counters wait for all of them):
 *   one CTA per SM, as many as SMs, where the occupancy query allows one.
 * - The last CTA out zeroes the counters for the next launch (graph
 *   replays): by then every CTA has passed every wait. */
#include "rl_cu_mvb.cuh"

namespace rl_mvb {

using namespace rl_async;

struct mvc_args {
    rl_cu_mvc_seg s[RL_CU_MVC_MAX];
    int n;
    float eps;
    unsigned *sync; /* RL_CU_MVC_MAX boundary counters, then the exit counter */
};

__device__ __forceinline__ unsigned ld_acquire(const unsigned *p)
{
    unsigned v;
    asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
    return v;
}

/* Segment k's outputs (rows or GLU outputs) and 32-column blocks. */
__device__ __forceinline__ int64_t seg_out(const rl_cu_mvc_seg &g)
{
    return g.mode == RL_CU_MV_GLU ? g.m.rows / 2 : g.m.rows;
}

/* A consumer warp's tiles of one product (GLU: each chunk's gate stage, then
 * its up stage), from ring stage i on; tl counts the CTA's tiles (the half
 * sums' buffer parity). rl_cu_mvb's loop, GLU a template parameter so that
 * the register budget stays rl_cu_mvb's. */
template <int T, bool GLU, int KPL, bool ARC>
__device__ __forceinline__ void tiles(const uint8_t *sm, uint64_t *full, uint64_t *empty, float *red,
                                      const rl_cu_act &xs, const xunit (&xa)[ARC ? KPL : 1], bool areg, int nb,
                                      int ntiles, int nch, float *y, int mode, int &i, int &tl)
{
    using C = cfg<T, false>;
    constexpr int CK = C::CK, QROW = C::QROW, DROW = C::DROW, S = C::S;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, o = warp % TR, h = warp / TR;
    for (int t = blockIdx.x; t < ntiles; t += gridDim.x, tl++) {
        float acc = 0.0f, accu = 0.0f;
        for (int c = 0; c < nch; c++)
#pragma unroll
            for (int hf = 0; hf < (GLU ? 2 : 1); hf++, i++) {
                int s = i % S;
                bar_wait(&full[s], (unsigned)(i / S) & 1);
                const uint8_t *st = sm + (size_t)s * C::STG;
                int cu = nb - c * CK < CK ? nb - c * CK : CK;
                float sum = hf ? accu : acc; /* the gate or up row's sum so far */
#pragma unroll
                for (int kk = 0; kk < KPL; kk++) {
                    int j = lane + 32 * (kk * H + h);
                    if (j >= cu * C::UPB)
                        break;
                    const int u = c * C::NU + j;
                    const wunit<T> w = sload<T>(st + o * QROW, st + TR * QROW + o * DROW, j);
                    xunit xu{};
                    if constexpr (ARC)
                        xu = areg ? xa[kk] : xload(xs, 0, u);
                    else
                        xu = xload(xs, 0, u);
                    sum += wdot_x<T>(w, xu);
                }
                if (hf)
                    accu = sum;
                else
                    acc = sum;
                __syncwarp();
                if (lane == 0)
                    bar_arrive(&empty[s]);
            }
        acc = rl_warp_sum(acc);
        if (GLU)
            accu = rl_warp_sum(accu);
        float *half = red + 16 + (tl & 1) * 16; /* the second half's sums: rl_cu_mvb's pair barrier */
        if (h == 1 && lane == 0)
            half[o] = acc, half[TR + o] = accu;
        asm volatile("bar.sync %0, 64;" ::"r"(2 + o) : "memory");
        if (h == 1 || lane != 0)
            continue;
        acc += half[o], accu += half[TR + o];
        int r = t * TR + o;
        if (GLU)
            y[r] = rl_silu(acc) * accu;
        else
            y[r] = mode == RL_CU_MV_ADD ? __ldcg(y + r) + acc : acc;
    }
}

template <int T>
__global__ void __launch_bounds__(THREADS, 1) k_mvc(const mvc_args a, int64_t xmax, int dbg)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    using C = cfg<T, false>;
    static_assert(!C::FX, "int8 activations only");
    constexpr int CK = C::CK, QROW = C::QROW, DROW = C::DROW, RB = C::RB, S = C::S;
    extern __shared__ __align__(128) uint8_t sm[];
    int8_t *xq = (int8_t *)(sm + RB);
    float *xds = (float *)(sm + RB + xmax), *xf = nullptr;
    uint64_t *full = (uint64_t *)(sm + RB + x_bytes(false, xmax));
    uint64_t *empty = full + S;
    float *red = (float *)(empty + S);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    ring_start<S>(full, empty);

    if (warp == CW) { /* the producer: lane 0 streams every product's weights in turn (no wait) */
        if (lane != 0)
            return;
        int i = 0;
#pragma unroll /* constant indices: the products' parameters stay in the constant bank */
        for (int k = 0; k < RL_CU_MVC_MAX; k++) {
            if (k >= a.n)
                break;
            const rl_cu_mat &m = a.s[k].m;
            const int halves = a.s[k].mode == RL_CU_MV_GLU ? 2 : 1;
            const int nb = (int)(m.cols / 32), n_out = (int)seg_out(a.s[k]), ntiles = n_out / TR, nch = (nb + CK - 1) / CK;
            const uint8_t *q = (const uint8_t *)m.q;
            const uint16_t *d = (const uint16_t *)m.d;
            const int64_t rowb = C::KQ ? m.ld : q_span<T>(nb);
            for (int t = blockIdx.x; t < ntiles; t += gridDim.x)
                for (int c = 0; c < nch; c++)
                    for (int hf = 0; hf < halves; hf++, i++) {
                        int s = i % S;
                        int cu = nb - c * CK < CK ? nb - c * CK : CK;
                        uint8_t *st = sm + (size_t)s * C::STG;
                        bar_wait(&empty[s], ((unsigned)(i / S) & 1) ^ 1);
                        const unsigned qlen = (unsigned)q_span<T>(cu);
                        bar_expect(&full[s], (unsigned)TR * (qlen + (unsigned)(cu * C::DB)));
                        for (int r = 0; r < TR; r++) {
                            int64_t row = (int64_t)hf * n_out + t * TR + r;
                            bulk_copy(st + r * QROW, q + row * rowb + c * QROW, qlen, &full[s]);
                            if (C::DB)
                                bulk_copy(st + TR * QROW + r * DROW, d + row * nb + c * CK, (unsigned)(cu * 2),
                                          &full[s]);
                        }
                    }
        }
        return;
    }

    /* consumers: warp w, output o = w % TR of each tile, half h = w / TR */
    const int h = warp / TR;
    constexpr int KPL = C::NU / 32 / H;
    constexpr bool ARC = KPL == 2;
    int i = 0, tl = 0;
#pragma unroll
    for (int k = 0; k < RL_CU_MVC_MAX; k++) {
        if (k >= a.n)
            break;
        const rl_cu_mvc_seg &sg = a.s[k];
        const int64_t cols = sg.m.cols;
        const int nb = (int)(cols / 32), ntiles = (int)seg_out(sg) / TR, nch = (nb + CK - 1) / CK;
        const bool glu = sg.mode == RL_CU_MV_GLU;
        if (k == 0) {
            rl_pdl_wait();
        } else {
            asm volatile("bar.sync 1, %0;" ::"n"(NT) : "memory"); /* this CTA's outputs of k - 1 are written */
            if (threadIdx.x == 0) {
                unsigned *cnt = a.sync + (k - 1);
                __threadfence();
                atomicAdd(cnt, 1u);
                while (!(dbg & 1) && ld_acquire(cnt) < gridDim.x)
                    __nanosleep(32);
                __threadfence();
            }
            asm volatile("bar.sync 1, %0;" ::"n"(NT) : "memory");
        }
        /* x through L2 only (other CTAs of this launch wrote it, k > 0); the
         * norm's weights read after the sum of squares (prepare_x: rl_cu_mvb's
         * register-held variant, prepare_xg, spills here) */
        prepare_x<false, true>(sg.x, sg.g, a.eps, cols, xq, xds, xf, red);
        const rl_cu_act xs = shared_act<false>(xq, xds, xf, cols);
        /* a lane's activation units in registers where a row is one chunk of
         * two units a lane (rl_cu_mvb's rule) */
        const bool areg = ARC && nch == 1 && !(dbg & 2);
        xunit xa[ARC ? KPL : 1];
        if constexpr (ARC) {
#pragma unroll
            for (int u0 = 0; u0 < KPL; u0++) {
                int u = lane + 32 * (u0 * H + h);
                xa[u0] = areg && u < nb ? xload(xs, 0, u) : xunit{};
            }
        }
        if (glu)
            tiles<T, true, KPL, ARC>(sm, full, empty, red, xs, xa, areg, nb, ntiles, nch, sg.y, sg.mode, i, tl);
        else
            tiles<T, false, KPL, ARC>(sm, full, empty, red, xs, xa, areg, nb, ntiles, nch, sg.y, sg.mode, i, tl);
    }
    asm volatile("bar.sync 1, %0;" ::"n"(NT) : "memory");
    if (threadIdx.x == 0 && atomicAdd(a.sync + RL_CU_MVC_MAX, 1u) == gridDim.x - 1) {
        for (int k = 0; k <= RL_CU_MVC_MAX; k++)
            a.sync[k] = 0;
    }
#endif
}

template <int T> static int launch(const mvc_args &a, int64_t xmax, cudaStream_t s)
{
    size_t smem = smem_bytes(cfg<T, false>::RB, false, xmax);
    static size_t set_for = 0;
    static int resident = -1; /* CTAs per SM at this size (queried once it is set) */
    if (!smem_limit(k_mvc<T>, smem, &set_for))
        return -ENOTSUP;
    if (resident < 0 &&
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, k_mvc<T>, THREADS, set_for) != cudaSuccess)
        resident = 0;
    if (resident < 1)
        return -ENOTSUP;
    static int dbg = -1; /* measurements: RL_CU_MVC_DBG bits 1 no counter wait (wrong results), 2 no areg */
    if (dbg < 0)
        dbg = getenv("RL_CU_MVC_DBG") ? atoi(getenv("RL_CU_MVC_DBG")) : 0;
    rl_launch_smem(k_mvc<T>, dim3((unsigned)rl_cu_sm_count()), dim3(THREADS), smem, s, a, xmax, dbg);
    return RL_CU_LAUNCHED("mvc");
}

typedef int (*launch_fn)(const mvc_args &, int64_t, cudaStream_t);
static const struct {
    int type;
    launch_fn fn;
} launches[] = {
    {RL_TYPE_Q4_0, launch<RL_TYPE_Q4_0>}, {RL_TYPE_Q8_0, launch<RL_TYPE_Q8_0>}, {RL_TYPE_Q4_K, launch<RL_TYPE_Q4_K>},
    {RL_TYPE_Q5_K, launch<RL_TYPE_Q5_K>}, {RL_TYPE_Q6_K, launch<RL_TYPE_Q6_K>},
};

static launch_fn launch_of(int type)
{
    for (const auto &r : launches)
        if (r.type == type)
            return r.fn;
    return nullptr;
}

} /* namespace rl_mvb */

extern "C" bool rl_cu_mvc_ok(const rl_cu_mvc_seg *seg, int n)
{
    if (n < 1 || n > RL_CU_MVC_MAX || !rl_mvb::launch_of(seg[0].m.type))
        return false;
    int64_t xmax = 0;
    for (int k = 0; k < n; k++) {
        const rl_cu_mvc_seg &g = seg[k];
        if (g.m.type != seg[0].m.type || !rl_cu_mvb_ok(&g.m, g.mode) || !g.x || !g.y || (uintptr_t)g.x % 16 ||
            (uintptr_t)g.g % 16 ||
            (g.mode != RL_CU_MV_STORE && g.mode != RL_CU_MV_ADD && g.mode != RL_CU_MV_GLU))
            return false;
        xmax = g.m.cols > xmax ? g.m.cols : xmax;
    }
    return rl_mvb::smem_bytes(rl_mvb::RMAX, false, xmax) <= 227 * 1024;
}

extern "C" int rl_cu_mvc(const rl_cu_mvc_seg *seg, int n, float eps, unsigned *d_sync, cudaStream_t s)
{
    if (!d_sync || !rl_cu_mvc_ok(seg, n))
        return -ENOTSUP;
    rl_mvb::mvc_args a = {};
    int64_t xmax = 0;
    for (int k = 0; k < n; k++) {
        a.s[k] = seg[k];
        xmax = seg[k].m.cols > xmax ? seg[k].m.cols : xmax;
    }
    a.n = n, a.eps = eps, a.sync = d_sync;
    return rl_mvb::launch_of(seg[0].m.type)(a, xmax, s);
}
