/* rl_cu_mv_q6_k.cu - Q6_K matrix-vector kernels (instantiation). */
#include "rl_cu_matvec.cuh"

RL_CU_MV_DEFINE(RL_TYPE_Q6_K, q6_k)
RL_TL_TU(mv_q6_k)
