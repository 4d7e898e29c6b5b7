/* ringlm_tokenize.c - `ringlm tokenize --model FILE [--add-special] [--parse-special] TEXT`:
 * prints the token ids of TEXT, space-separated on one line. It reads the
 * model's vocabulary directly (no daemon needed); no BOS/EOS unless asked. */
#include "ringlm_cli.h"

#include "rl_gguf.h"
#include "rl_tokenizer.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rl_cli_tokenize(int argc, char **argv)
{
    const char *model = NULL;
    bool add_special = false, parse_special = false;
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'},
        {"add-special", no_argument, 0, 'a'},
        {"parse-special", no_argument, 0, 'p'},
        {0, 0, 0, 0},
    };
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "m:", lo, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 'a': add_special = true; break;
        case 'p': parse_special = true; break;
        default: goto usage;
        }
    }
    if (!model || optind + 1 != argc)
        goto usage;

    const char *text = argv[optind];
    char err[256] = "";
    rl_gguf *g = NULL;
    rl_tokenizer *t = NULL;
    int32_t *ids = NULL;
    int rc = rl_gguf_open(model, &g, err, sizeof err);
    if (rc == 0)
        rc = rl_tokenizer_load(g, &t, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "ringlm tokenize: %s: %s\n", model, err[0] ? err : strerror(-rc));
        rc = 1;
        goto out;
    }
    size_t len = strlen(text), cap = len + 8;
    for (;;) {
        int32_t *n = realloc(ids, cap * sizeof *ids);
        if (!n) {
            fprintf(stderr, "ringlm tokenize: out of memory\n");
            rc = 1;
            goto out;
        }
        ids = n;
        int k = rl_tokenize(t, text, len, add_special, parse_special, ids, cap);
        if (k < 0) {
            fprintf(stderr, "ringlm tokenize: %s\n", strerror(-k));
            rc = 1;
            goto out;
        }
        if ((size_t)k <= cap) {
            for (int i = 0; i < k; i++)
                printf(i ? " %d" : "%d", ids[i]);
            putchar('\n');
            rc = 0;
            goto out;
        }
        cap = (size_t)k;
    }
out:
    free(ids);
    if (t)
        rl_tokenizer_free(t);
    if (g)
        rl_gguf_close(g);
    return rc;
usage:
    fprintf(stderr, "usage: ringlm tokenize --model FILE [--add-special] [--parse-special] TEXT\n");
    return 2;
}
