/* rl_cu_mms_q8_0.cu - Q8_0 instantiation of the small-batch products (rl_cu_mms.cuh). */
#include "rl_cu_mms.cuh"

RL_CU_MMS_DEFINE(RL_TYPE_Q8_0, q8_0)
