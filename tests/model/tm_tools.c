/* tm_tools.c - temporary runner for `ringlm-bench model` until the lead wires
 * bench/rl_bench_model.c into ringlm-bench:
 *   tm-tools model --model F [--threads N] [--prompt 128] [--gen 128] [--kv f16|q8_0] [--json]
 * (models: ringlm-mkmodel --shape tinyllama-1.1b --type Q4_0 --out /tmp/m.gguf) */
#include <stdio.h>
#include <string.h>

int rl_bench_model_main(int argc, char **argv);

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "model") == 0)
        return rl_bench_model_main(argc - 1, argv + 1);
    fprintf(stderr, "usage: tm-tools model --model FILE [--threads N] [--prompt N] [--gen N] [--json]\n");
    return 2;
}
