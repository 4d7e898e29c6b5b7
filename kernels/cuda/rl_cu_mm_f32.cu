/* rl_cu_mm_f32.cu - F32 batched tensor-core matrix products (instantiation). */
#include "rl_cu_mm.cuh"

RL_CU_MM_DEFINE(RL_TYPE_F32, f32)
