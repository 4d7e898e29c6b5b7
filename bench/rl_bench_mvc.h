/* rl_bench_mvc.h - `ringlm-bench-cuda --mvc` (rl_bench_mvc.c). */
#ifndef RL_BENCH_MVC_H
#define RL_BENCH_MVC_H

#include <stdint.h>

#include "rl_types.h"

/* rl_cu_mvb one by one against rl_cu_mvc chains on a layer's gate/up (2f x
 * e), down (e x f) and Q|K|V (q x e) matrices of type t: us per layer. */
int rl_bench_mvc(rl_type t, int64_t e, int64_t f, int64_t q, int json);

#endif
