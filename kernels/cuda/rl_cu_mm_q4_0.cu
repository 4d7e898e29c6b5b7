/* rl_cu_mm_q4_0.cu - Q4_0 batched tensor-core matrix products (instantiation). */
#include "rl_cu_mm.cuh"

RL_CU_MM_DEFINE(RL_TYPE_Q4_0, q4_0)
