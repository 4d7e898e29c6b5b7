/* rl_cu_mm_q8_0.cu - Q8_0 batched tensor-core matrix products (instantiation). */
#include "rl_cu_mm.cuh"

RL_CU_MM_DEFINE(RL_TYPE_Q8_0, q8_0)
