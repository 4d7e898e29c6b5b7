/* rl_bench_model.c - placeholder; the CPU-model work replaces this file. */
#include "rl_bench.h"

#include <stdio.h>

int rl_bench_model_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "model benchmark not built\n");
    return 2;
}
