/* rl_cu_mm_bf16.cu - BF16 batched tensor-core matrix products (instantiation). */
#include "rl_cu_mm.cuh"

RL_CU_MM_DEFINE(RL_TYPE_BF16, bf16)
