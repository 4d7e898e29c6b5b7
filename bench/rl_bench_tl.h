/* rl_bench_tl.h - ringlm-bench-cuda --timeline (bench/rl_bench_tl.c). */
#ifndef RL_BENCH_TL_H
#define RL_BENCH_TL_H

#include "rl_cu_model.h"

/* Replay the captured step of `batch` sequences with the kernels' timeline
 * armed and print each kind of launch's waits and runs (csv: every launch,
 * raw_csv: every block's record, each when not NULL). 1 when the build
 * records no timeline or a call fails. */
int rl_bench_timeline(rl_cu_model *m, int batch, const char *csv, const char *raw_csv);

#endif
