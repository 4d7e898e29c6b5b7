/* rl_cu_mv_f16.cu - F16 matrix-vector kernels (instantiation). */
#include "rl_cu_matvec.cuh"

RL_CU_MV_DEFINE(RL_TYPE_F16, f16)
RL_TL_TU(mv_f16)
