/* rl_cu_mv_q4_k.cu - Q4_K matrix-vector kernels (instantiation). */
#include "rl_cu_matvec.cuh"

RL_CU_MV_DEFINE(RL_TYPE_Q4_K, q4_k)
RL_TL_TU(mv_q4_k)
