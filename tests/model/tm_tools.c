/* tm_tools.c - temporary executables for measuring until ringlm-bench and
 * ringlm-mkmodel exist:
 *   tm-tools mkmodel OUT SHAPE TYPE     (SHAPE: tiny | stories | tinyllama; TYPE: f32, q4_0, ...)
 *   tm-tools model --model F ...        (= ringlm-bench model) */
#include <stdio.h>
#include <string.h>

#include "tm_util.h"

int rl_bench_model_main(int argc, char **argv);

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "model") == 0)
        return rl_bench_model_main(argc - 1, argv + 1);
    if (argc == 5 && strcmp(argv[1], "mkmodel") == 0) {
        int t = rl_type_from_name(argv[4]);
        if (t < 0)
            return 2;
        tm_spec sp = tm_default_spec((rl_type)t);
        if (strcmp(argv[3], "tinyllama") == 0)
            sp = (tm_spec){.arch = "llama", .type = (rl_type)t, .n_vocab = 32000, .n_embd = 2048, .n_layer = 22,
                           .n_head = 32, .n_head_kv = 4, .n_ff = 5632, .n_ctx = 2048, .rope_base = 10000.f, .seed = 1};
        char path[4096];
        snprintf(path, sizeof path, "%s.XXXXXX", argv[2]);
        if (tm_make_model(&sp, path) != 0)
            return 1;
        if (rename(path, argv[2]) != 0)
            return 1;
        return 0;
    }
    fprintf(stderr, "usage: tm-tools mkmodel OUT tiny|tinyllama TYPE | tm-tools model --model F ...\n");
    return 2;
}
