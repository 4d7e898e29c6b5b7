/* fuzz_config.c - libFuzzer target over ringlmd's configuration parser:
 * rl_cfg_parse on an exact-size copy of the input (ASan catches any read past
 * it), then, when it parses, every key formatted and set again (the round trip
 * must succeed and change nothing) and the diff against the defaults. Any
 * crash, sanitizer report or abort() is a bug. */
#include "rl_cfg.h"

#include <stdlib.h>
#include <string.h>

static const char *const fuzz_keys[] = {"model",       "socket",      "threads",      "device",
                                        "spin_window", "shutdown_deadline", "max_clients",
                                        "log_level",   "step_tokens", "kv_mb",        "client_queue",
                                        "client_kv",   "kv_type",     "prefill_weights"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    rl_cfg c, d;
    rl_cfg_defaults(&c);
    rl_cfg_defaults(&d);
    char err[256];
    int rc = rl_cfg_parse(&c, copy, size, err, sizeof err);
    free(copy);
    if (rc != 0) {
        /* all or nothing: a failed parse leaves the configuration alone */
        if (memcmp(&c, &d, sizeof c) != 0)
            abort();
        if (memchr(err, '\0', sizeof err) == NULL)
            abort();
        return 0;
    }
    /* Whatever parsed formats back to text that parses to the same value. */
    static char v[RL_CFG_PATH_MAX + 8];
    for (size_t i = 0; i < sizeof fuzz_keys / sizeof fuzz_keys[0]; i++) {
        int n = rl_cfg_format(&c, fuzz_keys[i], v, sizeof v);
        if (n < 0 || (size_t)n >= sizeof v)
            abort();
        rl_cfg e = c;
        if (rl_cfg_set(&e, fuzz_keys[i], v, err, sizeof err) != 0)
            abort();
        if (rl_cfg_diff(&c, &e, NULL, NULL) != 0)
            abort();
    }
    rl_cfg_diff(&d, &c, NULL, NULL);
    return 0;
}
