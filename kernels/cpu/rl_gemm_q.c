/* rl_gemm_q.c - int8 micro-kernels (4 weight rows x 4 tokens) for Q4_0 and Q8_0
 * weights against Q8_0 activations. Filled in with the SIMD work; NULL means
 * "use the traits' vec_dot". */
#include "rl_gemm.h"

rl_gemm_tile_fn rl_gemm_q_kernel(rl_type wt)
{
    (void)wt;
    return NULL;
}
