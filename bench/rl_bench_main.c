/* rl_bench_main.c - ringlm-bench: dispatch to a subcommand. */
#include "rl_bench.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: ringlm-bench transport [--json] [--spin-us N] [--iters N]\n"
               "       ringlm-bench model --model F [--device cpu|cuda] [options]\n"
               "       ringlm-bench cuda --shape tinyllama-1.1b|llama2-7b --type T [--kernels] (GPU kernels, no file)\n"
               "       ringlm-bench load --clients N [--model F | --socket PATH] [--requests R] [--json]\n"
               "       ringlm-bench sample [--vocab N] [--draws D] [--top-k K] [--json]\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "transport") == 0)
        return rl_bench_transport_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "model") == 0)
        return rl_bench_model_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "cuda") == 0) {
#ifdef RL_HAVE_CUDA_ENGINE
        return rl_bench_cuda_main(argc - 1, argv + 1);
#else
        fprintf(stderr, "ringlm-bench: built without CUDA\n");
        return 2;
#endif
    }
    if (strcmp(argv[1], "load") == 0)
        return rl_bench_load_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "sample") == 0)
        return rl_bench_sample_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
