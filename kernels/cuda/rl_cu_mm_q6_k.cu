/* rl_cu_mm_q6_k.cu - Q6_K batched tensor-core matrix products (instantiation). */
#include "rl_cu_mm.cuh"

RL_CU_MM_DEFINE(RL_TYPE_Q6_K, q6_k)
