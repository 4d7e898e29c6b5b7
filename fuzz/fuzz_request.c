/* fuzz_request.c - libFuzzer target over the daemon's request decoding:
 * rl_req_decode (bounds, sampling validation, prompt kinds, stop strings) and
 * rl_req_prompt_tokens with the test engine, plus the UTF-8 stream and the stop
 * scan fed with the decoded pieces. Any crash or sanitizer report is a bug. */
#include "rl_engine_test.h"
#include "rl_req.h"

#include <stdlib.h>
#include <string.h>

static rl_engine *g_engine;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_engine && rl_engine_test_create(&g_engine) < 0)
        abort();
    /* The daemon decodes a private copy: do the same (exact-size buffer, so
     * ASan catches any read past the payload). */
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    static rl_req_parsed p;
    char err[RL_WIRE_MAX_ERRMSG];
    if (rl_req_decode(copy, size, RL_TEST_VOCAB, &p, err, sizeof err) == 0) {
        int32_t *ids = NULL;
        uint32_t n = 0;
        if (rl_req_prompt_tokens(g_engine, &p, &ids, &n, err, sizeof err) == 0)
            free(ids);
        if (p.n_stop && p.kind == RL_WIRE_PROMPT_TEXT) {
            size_t emit;
            rl_req_stop_scan((const char *)p.prompt, p.prompt_len, p.stop, p.stop_len, p.n_stop, &emit);
            if (emit > p.prompt_len)
                abort();
        }
    }
    /* Raw bytes through the streaming decoder: output must be valid UTF-8. */
    rl_req_utf8_stream st = {0};
    char *out = malloc(3 * (size + 4));
    size_t k = rl_req_utf8_feed(&st, (const char *)data, size, out);
    k += rl_req_utf8_finish(&st, out + k);
    if (!rl_req_utf8_valid((const uint8_t *)out, k))
        abort();
    free(out);
    free(copy);
    return 0;
}
