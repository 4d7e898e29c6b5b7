/* rl_cu_mv_bf16.cu - BF16 matrix-vector kernels (instantiation). */
#include "rl_cu_matvec.cuh"

RL_CU_MV_DEFINE(RL_TYPE_BF16, bf16)
RL_TL_TU(mv_bf16)
