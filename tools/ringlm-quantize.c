/* ringlm-quantize - convert the float weights of a GGUF model to another type.
 *
 *   ringlm-quantize IN.gguf OUT.gguf TYPE [--threads T] [--tensor-type PATTERN=TYPE ...]
 *
 * 2-D (and higher) F32/F16/BF16 tensors are converted to TYPE (falling back
 * to Q8_0 or F32 for rows that do not fit TYPE's block); 1-D tensors (norms)
 * and tensors already quantized are copied unchanged. TYPE may be a mix
 * (Q4_K_M, Q5_K_M) and --tensor-type overrides it per tensor name, as in
 * ringlm-mkmodel (mk_rule). All metadata is copied; general.file_type (and
 * general.quantization_version) are set for TYPE. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mk_convert.h"
#include "rl_gguf.h"

typedef struct src_rows {
    const rl_gguf_tensor *t;
    const rl_type_traits *tr;
    size_t row_bytes;
} src_rows;

static void src_row(void *vctx, int64_t row, float *dst, int64_t n)
{
    const src_rows *s = vctx;
    s->tr->to_float((const uint8_t *)s->t->data + (size_t)row * s->row_bytes, dst, n);
}

static bool is_float(rl_type t) { return t == RL_TYPE_F32 || t == RL_TYPE_F16 || t == RL_TYPE_BF16; }

static rl_type target_type(const rl_gguf_tensor *t, const mk_rule *rule)
{
    if (t->n_dims < 2 || !is_float(t->type)) return t->type;
    return mk_pick_type(mk_rule_type(rule, t->name), t->ne[0], t->name);
}

static int usage(void)
{
    fprintf(stderr, "usage: ringlm-quantize IN.gguf OUT.gguf TYPE [--threads T] [--tensor-type PATTERN=TYPE ...]\n"
                    "types: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q4_K Q5_K Q6_K; mixes: Q4_K_M Q5_K_M\n");
    return 2;
}

int main(int argc, char **argv)
{
    int threads = 2;
    if (argc < 4) return usage();
    mk_rule rule;
    if (mk_rule_init(&rule, argv[3])) {
        fprintf(stderr, "ringlm-quantize: unknown or unsupported type '%s'\n", argv[3]);
        return usage();
    }
    for (int i = 4; i < argc; i += 2) {
        if (i + 1 >= argc) return usage();
        if (strcmp(argv[i], "--threads") == 0) {
            threads = atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--tensor-type") != 0 || mk_rule_add_override(&rule, argv[i + 1])) {
            fprintf(stderr, "ringlm-quantize: bad option '%s %s'\n", argv[i], argv[i + 1]);
            return usage();
        }
    }
    if (threads < 1 || threads > 64) return usage();
    const rl_type_traits *wt = rl_type_get((uint32_t)rule.base);
    rl_gguf *g;
    char err[512];
    if (rl_gguf_open(argv[1], &g, err, sizeof err)) {
        fprintf(stderr, "ringlm-quantize: %s\n", err);
        return 1;
    }
    rl_gguf_writer *w = rl_gguf_writer_new();
    int rc = w ? 0 : -ENOMEM;
    for (uint64_t i = 0; !rc && i < g->n_kv; i++) {
        const rl_gguf_kv *kv = &g->kv[i];
        if (rl_gguf_str_eq(kv->key, "general.file_type") || rl_gguf_str_eq(kv->key, "general.quantization_version"))
            continue;
        rc = rl_gguf_writer_copy_kv(w, kv);
    }
    if (!rc) rc = rl_gguf_writer_u32(w, "general.file_type", mk_rule_file_type(&rule));
    if (!rc && (!is_float(rule.base) || rule.n_over)) rc = rl_gguf_writer_u32(w, "general.quantization_version", 2);
    rl_type *types = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *types);
    if (!rc && !types) rc = -ENOMEM;
    for (uint64_t i = 0; !rc && i < g->n_tensors; i++) {
        const rl_gguf_tensor *t = &g->tensors[i];
        types[i] = target_type(t, &rule);
        rc = rl_gguf_writer_tensor_decl(w, t->name, types[i], t->n_dims, t->ne);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mk_report_fallbacks(wt->name);
    if (!rc) rc = rl_gguf_writer_begin(w, argv[2]);
    uint64_t in_bytes = 0, out_bytes = 0, converted = 0;
    for (uint64_t i = 0; !rc && i < g->n_tensors; i++) {
        const rl_gguf_tensor *t = &g->tensors[i];
        in_bytes += t->nbytes;
        if (types[i] == t->type) {
            rc = rl_gguf_writer_put(w, t->data, t->nbytes);
            out_bytes += t->nbytes;
            continue;
        }
        src_rows s = {t, rl_type_get(t->type), rl_type_row_size(t->type, t->ne[0])};
        int64_t rows = (int64_t)(t->nbytes / s.row_bytes);
        rc = mk_stream_tensor(w, types[i], t->ne[0], rows, src_row, &s, threads);
        out_bytes += rl_type_row_size(types[i], t->ne[0]) * (uint64_t)rows;
        converted++;
    }
    if (!rc) rc = rl_gguf_writer_finish(w);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc) {
        fprintf(stderr, "ringlm-quantize: writing %s failed: %s\n", argv[2], strerror(-rc));
        unlink(argv[2]);
    } else {
        printf("%s: %llu of %llu tensors converted to %s, %.1f MB -> %.1f MB in %.2f s\n", argv[2],
               (unsigned long long)converted, (unsigned long long)g->n_tensors, rule.name, (double)in_bytes / 1e6,
               (double)out_bytes / 1e6,
               (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
    }
    free(types);
    rl_gguf_writer_free(w);
    rl_gguf_close(g);
    return rc ? 1 : 0;
}
