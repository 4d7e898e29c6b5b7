/* rl_cu_mm.cu - batched tensor-core matrix products: dispatch by weight type
 * (kernels in rl_cu_mm.cuh, one instantiation file per type), the K split. */
#include "rl_cu_mm.cuh"

static const struct {
    rl_type t;
    rl_cu_mm_fn fn;
} mm_table[] = {
    {RL_TYPE_Q4_0, rl_cu_mm_q4_0}, {RL_TYPE_Q8_0, rl_cu_mm_q8_0}, {RL_TYPE_Q4_K, rl_cu_mm_q4_k},
    {RL_TYPE_Q6_K, rl_cu_mm_q6_k}, {RL_TYPE_F16, rl_cu_mm_f16},   {RL_TYPE_BF16, rl_cu_mm_bf16},
    {RL_TYPE_F32, rl_cu_mm_f32},
};

static int g_force_split; /* 0: automatic */

extern "C" void rl_cu_mm_force_split(int split)
{
    g_force_split = split;
}

int rl_cu_sm_count()
{
    static int n;
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

int rl_cu_cluster_split(int64_t tiles, int64_t nch, int64_t slots)
{
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

/* The forced split (tests, benchmarks), else the cost model at the kernel's
 * occupancy of 2 CTAs per SM. */
int rl_mm::choose_split(int64_t tiles, int64_t nch)
{
    int best = 1;
    if (g_force_split > 0) {
        while (best * 2 <= g_force_split && best * 2 <= 8 && best * 2 <= nch)
            best *= 2;
        return best;
    }
    return rl_cu_cluster_split(tiles, nch, 2 * (int64_t)rl_cu_sm_count()); /* 2 CTAs per SM */
}

int rl_cu_batched_args(const rl_cu_mat *m, const rl_cu_act *x, int batch, int mode, const rl_cu_act *y)
{
    if (!m->q || !m->d || !y->f || batch < 1 || batch > RL_CU_MAX_MM_BATCH || m->rows < 1 || m->cols < 32 ||
        m->cols % 32 || x->n != m->cols || (x->stride && x->stride != x->n) || mode < RL_CU_MV_STORE ||
        mode > RL_CU_MV_GLU || (mode == RL_CU_MV_GLU && m->rows % 2))
        return -EINVAL;
    int64_t n_out = mode == RL_CU_MV_GLU ? m->rows / 2 : m->rows;
    if (y->n != n_out || (y->stride && (y->stride < n_out || mode == RL_CU_MV_GLU)))
        return -EINVAL;
    if (mode == RL_CU_MV_GLU && y->q && n_out % 32 == 0 && !y->ds)
        return -EINVAL;
    return 0;
}

extern "C" int rl_cu_mm(const rl_cu_mat *m, const rl_cu_act *x, int batch, int mode, rl_cu_act *y, cudaStream_t s)
{
    if (!m || !x || !y || !m->q || !x->f || !y->f || batch < 1 || batch > RL_CU_MAX_MM_BATCH ||
        x->n != m->cols || mode < RL_CU_MV_STORE || mode > RL_CU_MV_GLU || (mode == RL_CU_MV_GLU && m->rows % 2))
        return -EINVAL;
    int64_t n_out = mode == RL_CU_MV_GLU ? m->rows / 2 : m->rows;
    if (y->n != n_out)
        return -EINVAL;
    bool flt = m->type == RL_TYPE_F32 || m->type == RL_TYPE_F16 || m->type == RL_TYPE_BF16;
    if (flt && m->cols % 8) {
        /* Float rows not in 16-byte units (tiny models): the matvec's scalar
         * path, RL_CU_MAX_BATCH sequences at a time. */
        for (int b0 = 0; b0 < batch; b0 += RL_CU_MAX_BATCH) {
            int nb = batch - b0 < RL_CU_MAX_BATCH ? batch - b0 : RL_CU_MAX_BATCH;
            rl_cu_act xs = {}, ys = {};
            xs.f = x->f + b0 * x->n, xs.n = x->n;
            ys.f = y->f + b0 * n_out, ys.n = n_out;
            ys.q = y->q ? y->q + b0 * n_out : NULL;
            ys.ds = y->ds ? y->ds + b0 * (n_out / 32) * 2 : NULL;
            int rc = rl_cu_matvec(m, &xs, nb, mode, &ys, s);
            if (rc)
                return rc;
        }
        return 0;
    }
    for (size_t i = 0; i < sizeof mm_table / sizeof mm_table[0]; i++)
        if (mm_table[i].t == m->type) {
            mm_table[i].fn(*m, *x, batch, mode, *y, s);
            return RL_CU_LAUNCHED("mm");
        }
    return -EINVAL;
}
