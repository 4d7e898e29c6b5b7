/* tok_speed.c - not a test: times tokenizing a ~2,000-token prompt (the vocabulary's
 * own .inp texts, repeated) for each vocabulary given, for the figures quoted in
 * reports until ringlm-bench has a tokenizer case.
 * Usage: tok_speed ggml-vocab-NAME.gguf... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rl_tokenizer.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    static char text[1 << 20], base[1 << 16];
    static int32_t ids[1 << 18];
    for (int a = 1; a < argc; a++) {
        char path[4096], err[256] = "";
        snprintf(path, sizeof path, "%s.inp", argv[a]);
        FILE *f = fopen(path, "rb");
        size_t bn = f ? fread(base, 1, sizeof base, f) : 0;
        if (f)
            fclose(f);
        if (bn == 0) {
            bn = strlen(strcpy(base, "The quick brown fox jumps over the lazy dog. "));
        }
        rl_gguf *g;
        rl_tokenizer *t;
        double t0 = now();
        if (rl_gguf_open(argv[a], &g, err, sizeof err) || rl_tokenizer_load(g, &t, err, sizeof err)) {
            fprintf(stderr, "%s: %s\n", argv[a], err);
            return 1;
        }
        double load = now() - t0;
        size_t n = 0;
        int k = 0;
        while (k < 2000 && n + bn <= sizeof text) {
            memcpy(text + n, base, bn);
            n += bn;
            k = rl_tokenize(t, text, n, false, false, ids, sizeof ids / sizeof ids[0]);
        }
        int iters = 200;
        t0 = now();
        for (int i = 0; i < iters; i++)
            rl_tokenize(t, text, n, true, true, ids, sizeof ids / sizeof ids[0]);
        double per = (now() - t0) / iters;
        printf("%s: load %.1f ms; %zu bytes -> %d tokens in %.3f ms\n", argv[a], load * 1e3, n, k, per * 1e3);
        rl_tokenizer_free(t);
        rl_gguf_close(g);
    }
    return 0;
}
