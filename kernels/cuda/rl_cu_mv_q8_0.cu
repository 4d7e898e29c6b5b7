/* rl_cu_mv_q8_0.cu - Q8_0 matrix-vector kernels (instantiation). */
#include "rl_cu_matvec.cuh"

RL_CU_MV_DEFINE(RL_TYPE_Q8_0, q8_0)
RL_TL_TU(mv_q8_0)
