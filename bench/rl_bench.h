/* rl_bench.h - ringlm-bench subcommands. Each returns a process exit status. */
#ifndef RL_BENCH_H
#define RL_BENCH_H

/* ringlm-bench transport [--json] [--spin-us N] [--iters N] */
int rl_bench_transport_main(int argc, char **argv);
/* ringlm-bench model ... (bench/rl_bench_model.c, owned by the CPU-model work) */
int rl_bench_model_main(int argc, char **argv);
/* ringlm-bench load --clients N ... (bench/rl_bench_load.c: many clients at once) */
int rl_bench_load_main(int argc, char **argv);
/* ringlm-bench sample ... (bench/rl_bench_sample.c: the host sampler alone) */
int rl_bench_sample_main(int argc, char **argv);

/* ringlm-bench cuda ... (bench/rl_bench_cuda.c: GPU model on random weights of a named shape) */
int rl_bench_cuda_main(int argc, char **argv);

#endif
