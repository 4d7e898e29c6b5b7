/* rl_cu_mmq.cu - batched int8 tensor-core matrix products (Q4_0, Q8_0):
 * argument checks, the K split, Q4_0 instantiation (kernel in rl_cu_mmq.cuh;
 * Q8_0 in rl_cu_mmq_q8_0.cu). */
#include "rl_cu_mmq.cuh"

RL_CU_MMQ_DEFINE(RL_TYPE_Q4_0, q4_0)

static int sm_count()
{
    static int n; /* device attributes are not stream work: fine during graph capture */
    if (n == 0) {
        int dev = 0, v = 0;
        if (cudaGetDevice(&dev) != cudaSuccess ||
            cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || v <= 0) {
            cudaGetLastError();
            v = 132;
        }
        n = v;
    }
    return n;
}

/* Smallest estimated time over splits 1, 2, 4, 8: waves of per_sm CTAs per
 * SM divided by the split, plus a cost per rank for the cluster reduction;
 * every rank keeps at least 2 chunks of K. */
int rl_mmq::choose_split(int64_t tiles, int64_t nch, int per_sm)
{
    const int64_t slots = (int64_t)per_sm * sm_count();
    int best = 1;
    double best_cost = 1e30;
    for (int s = 1; s <= 8; s *= 2) {
        if (s > 1 && nch < 2 * s)
            break;
        double cost = (double)((tiles * s + slots - 1) / slots) / s + 0.03 * s;
        if (cost < best_cost) {
            best_cost = cost;
            best = s;
        }
    }
    return best;
}

extern "C" int rl_cu_mmq(const rl_cu_mat *m, const rl_cu_act *x, int batch, int mode, rl_cu_act *y, cudaStream_t s)
{
    if (!m || !x || !y)
        return -EINVAL;
    if (m->type != RL_TYPE_Q4_0 && m->type != RL_TYPE_Q8_0)
        return -ENOTSUP;
    if (!m->q || !m->d || !x->q || !x->ds || !y->f || batch < 1 || batch > RL_CU_MAX_MM_BATCH || m->rows < 1 ||
        m->cols < 32 || m->cols % 32 || x->n != m->cols || (x->stride && x->stride != x->n) ||
        mode < RL_CU_MV_STORE || mode > RL_CU_MV_GLU || (mode == RL_CU_MV_GLU && m->rows % 2))
        return -EINVAL;
    int64_t n_out = mode == RL_CU_MV_GLU ? m->rows / 2 : m->rows;
    if (y->n != n_out || (y->stride && (y->stride < n_out || mode == RL_CU_MV_GLU)))
        return -EINVAL;
    if (mode == RL_CU_MV_GLU && y->q && n_out % 32 == 0 && !y->ds)
        return -EINVAL;
    if (m->type == RL_TYPE_Q4_0)
        rl_cu_mmq_q4_0(*m, *x, batch, mode, *y, s);
    else
        rl_cu_mmq_q8_0(*m, *x, batch, mode, *y, s);
    return RL_CU_LAUNCHED("mmq");
}
