/* rl_cu_mmh_q8_0.cu - Q8_0 instantiation of the fp16 tensor-core products (rl_cu_mmh.cuh). */
#include "rl_cu_mmh.cuh"

RL_CU_MMH_DEFINE(RL_TYPE_Q8_0, q8_0)
