/* rl_cu_mms.cu - small-batch fp16 tensor-core products over Q4_0/Q8_0
 * weights (kernel in rl_cu_mms.cuh): argument checks, groups of
 * RL_CU_MMS_MAX_BATCH rows, the Q4_0 instantiation (Q8_0 in
 * rl_cu_mms_q8_0.cu). */
#include "rl_cu_mms.cuh"

RL_CU_MMS_DEFINE(RL_TYPE_Q4_0, q4_0)

extern "C" int rl_cu_mms(const rl_cu_mat *m, const rl_cu_act *x, int batch, int mode, rl_cu_act *y, cudaStream_t s)
{
    if (int rc = rl_mmh::check_args(m, x, batch, mode, y))
        return rc;
    for (int b0 = 0; b0 < batch; b0 += RL_CU_MMS_MAX_BATCH) {
        int n = batch - b0 < RL_CU_MMS_MAX_BATCH ? batch - b0 : RL_CU_MMS_MAX_BATCH;
        rl_cu_act xs = rl_cu_act_rows(x, b0), ys = rl_cu_act_rows(y, b0);
        if (m->type == RL_TYPE_Q4_0)
            rl_cu_mms_q4_0(*m, xs, n, mode, ys, s);
        else
            rl_cu_mms_q8_0(*m, xs, n, mode, ys, s);
    }
    return RL_CU_LAUNCHED("mms");
}
