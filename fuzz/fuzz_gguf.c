/* fuzz_gguf.c - libFuzzer target: parse arbitrary bytes as GGUF and touch
 * everything the reader hands back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rl_gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy so ASan sees any read past the end. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    rl_gguf *g;
    char err[256];
    if (rl_gguf_open_mem(buf, size, &g, err, sizeof err) == 0) {
        volatile uint64_t sink = 0;
        for (uint64_t i = 0; i < g->n_kv; i++) {
            const rl_gguf_kv *kv = &g->kv[i];
            char key[64];
            size_t n = kv->key.len < sizeof key - 1 ? (size_t)kv->key.len : sizeof key - 1;
            memcpy(key, kv->key.ptr, n);
            key[n] = 0;
            uint32_t u;
            int64_t v;
            float f;
            bool b;
            rl_gguf_str s;
            sink += rl_gguf_get_u32(g, key, &u) + rl_gguf_get_i64(g, key, &v) + rl_gguf_get_f32(g, key, &f) +
                    rl_gguf_get_bool(g, key, &b) + rl_gguf_get_str(g, key, &s);
            if (kv->type == RL_GGUF_STR && kv->str.len) sink += (uint8_t)kv->str.ptr[kv->str.len - 1];
            float af;
            int64_t ai;
            if (kv->type == RL_GGUF_ARR && kv->arr_n)
                sink += rl_gguf_arr_f32(kv, kv->arr_n - 1, &af) + rl_gguf_arr_i64(kv, kv->arr_n - 1, &ai) +
                        rl_gguf_arr_i64(kv, kv->arr_n, &ai);
            if (kv->strs)
                for (uint64_t j = 0; j < kv->arr_n; j++)
                    if (kv->strs[j].len) sink += (uint8_t)kv->strs[j].ptr[kv->strs[j].len - 1];
        }
        for (uint64_t i = 0; i < g->n_tensors; i++) {
            const rl_gguf_tensor *t = &g->tensors[i];
            if (rl_gguf_find_tensor(g, t->name) != t) abort();
            if (t->nbytes) sink += ((const uint8_t *)t->data)[t->nbytes - 1] + ((const uint8_t *)t->data)[0];
        }
        (void)sink;
        rl_gguf_close(g);
    }
    free(buf);
    return 0;
}
