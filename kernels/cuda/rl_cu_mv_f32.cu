/* rl_cu_mv_f32.cu - F32 matrix-vector kernels (instantiation). */
#include "rl_cu_matvec.cuh"

RL_CU_MV_DEFINE(RL_TYPE_F32, f32)
RL_TL_TU(mv_f32)
