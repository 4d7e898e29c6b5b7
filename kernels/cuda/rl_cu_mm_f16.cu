/* rl_cu_mm_f16.cu - F16 batched tensor-core matrix products (instantiation). */
#include "rl_cu_mm.cuh"

RL_CU_MM_DEFINE(RL_TYPE_F16, f16)
