/* rl_cu_mm_q4_k.cu - Q4_K batched tensor-core matrix products (instantiation). */
#include "rl_cu_mm.cuh"

RL_CU_MM_DEFINE(RL_TYPE_Q4_K, q4_k)
