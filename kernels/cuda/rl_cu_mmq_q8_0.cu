/* rl_cu_mmq_q8_0.cu - Q8_0 instantiation of the int8 tensor-core products (rl_cu_mmq.cuh). */
#include "rl_cu_mmq.cuh"

RL_CU_MMQ_DEFINE(RL_TYPE_Q8_0, q8_0)
