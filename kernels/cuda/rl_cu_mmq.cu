/* rl_cu_mmq.cu - batched int8 tensor-core matrix products (Q4_0, Q8_0):
 * argument checks, the K split, Q4_0 instantiation (kernel in rl_cu_mmq.cuh;
 * Q8_0 in rl_cu_mmq_q8_0.cu). */
#include "rl_cu_mmq.cuh"

RL_CU_MMQ_DEFINE(RL_TYPE_Q4_0, q4_0)

extern "C" int rl_cu_mmq(const rl_cu_mat *m, const rl_cu_act *x, int batch, int mode, rl_cu_act *y, cudaStream_t s)
{
    if (!m || !x || !y)
        return -EINVAL;
    if (m->type != RL_TYPE_Q4_0 && m->type != RL_TYPE_Q8_0)
        return -ENOTSUP;
    if (!x->q || !x->ds || rl_cu_batched_args(m, x, batch, mode, y))
        return -EINVAL;
    if (m->type == RL_TYPE_Q4_0)
        rl_cu_mmq_q4_0(*m, *x, batch, mode, *y, s);
    else
        rl_cu_mmq_q8_0(*m, *x, batch, mode, *y, s);
    return RL_CU_LAUNCHED("mmq");
}
