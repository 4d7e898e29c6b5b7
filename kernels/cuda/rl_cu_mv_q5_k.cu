/* rl_cu_mv_q5_k.cu - Q5_K matrix-vector kernels (instantiation). */
#include "rl_cu_matvec.cuh"

RL_CU_MV_DEFINE(RL_TYPE_Q5_K, q5_k)
RL_TL_TU(mv_q5_k)
