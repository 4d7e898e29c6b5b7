/* rl_cu_mms.cu - small-batch fp16 tensor-core products over Q4_0/Q8_0
 * weights (kernel in rl_cu_mms.cuh): argument checks, groups of
 * RL_CU_MMS_MAX_BATCH rows, the Q4_0 instantiation (Q8_0 in
 * rl_cu_mms_q8_0.cu). */
#include "rl_cu_mms.cuh"

RL_CU_MMS_DEFINE(RL_TYPE_Q4_0, q4_0)

/* Rows b0.. of an activation (an output's stride kept). */
static rl_cu_act rows_from(const rl_cu_act &a, int b0)
{
    rl_cu_act r = a;
    r.f += (int64_t)b0 * (a.stride ? a.stride : a.n);
    if (a.q) {
        r.q += (int64_t)b0 * a.n;
        r.ds += (int64_t)b0 * (a.n / 32) * 2;
    }
    if (a.h)
        r.h += (int64_t)b0 * a.n;
    return r;
}

extern "C" int rl_cu_mms(const rl_cu_mat *m, const rl_cu_act *x, int batch, int mode, rl_cu_act *y, cudaStream_t s)
{
    if (!m || !x || !y)
        return -EINVAL;
    if (m->type != RL_TYPE_Q4_0 && m->type != RL_TYPE_Q8_0)
        return -ENOTSUP;
    if (!x->h || ((uintptr_t)x->h & 15) || rl_cu_batched_args(m, x, batch, mode, y))
        return -EINVAL;
    if ((uint64_t)m->rows * (uint64_t)(m->cols / 32) * (m->type == RL_TYPE_Q4_0 ? 16 : 32) >= (1ull << 32))
        return -ENOTSUP; /* the kernel keeps 32-bit offsets into the quant plane */
    for (int b0 = 0; b0 < batch; b0 += RL_CU_MMS_MAX_BATCH) {
        int n = batch - b0 < RL_CU_MMS_MAX_BATCH ? batch - b0 : RL_CU_MMS_MAX_BATCH;
        rl_cu_act xs = rows_from(*x, b0), ys = rows_from(*y, b0);
        if (m->type == RL_TYPE_Q4_0)
            rl_cu_mms_q4_0(*m, xs, n, mode, ys, s);
        else
            rl_cu_mms_q8_0(*m, xs, n, mode, ys, s);
    }
    return RL_CU_LAUNCHED("mms");
}
