/* rl_cu_mv_q4_0.cu - Q4_0 matrix-vector kernels (instantiation). */
#include "rl_cu_matvec.cuh"

RL_CU_MV_DEFINE(RL_TYPE_Q4_0, q4_0)
RL_TL_TU(mv_q4_0)
