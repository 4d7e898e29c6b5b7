/* test_tools.c - ringlm-mkmodel and ringlm-quantize, run as programs
 * (argv[1], argv[2]) and their output read back with the GGUF reader. */
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rl_gguf.h"
#include "rl_kv.h"
#include "rl_llm.h"
#include "rl_model.h"
#include "rl_pool.h"

/* Weight quantization alone moves these random models' logits: measured 0.145 for
 * the mix below (uniform Q4_K 0.19, Q5_K 0.09); another seed's model is 1.37 away. */
#define BOUND_MIX_TWIN 0.3

static const char *mkmodel, *quantize;
static char tmpdir[64];

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static rl_gguf *open_ok(const char *path)
{
    rl_gguf *g;
    char err[512];
    ck_assert_msg(rl_gguf_open(path, &g, err, sizeof err) == 0, "%s", err);
    return g;
}

static uint32_t u32_of(const rl_gguf *g, const char *key)
{
    uint32_t v;
    ck_assert_msg(rl_gguf_get_u32(g, key, &v), "missing %s", key);
    return v;
}

/* Mean and standard deviation of a tensor's dequantized values. */
static void tensor_stats(const rl_gguf_tensor *t, double *mean, double *sd)
{
    int64_t n = (int64_t)(t->nbytes / rl_type_get(t->type)->type_size) * rl_type_get(t->type)->block_size;
    float *v = malloc(sizeof(float) * (size_t)n);
    rl_type_get(t->type)->to_float(t->data, v, n);
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) {
        s += v[i];
        s2 += (double)v[i] * v[i];
    }
    *mean = s / (double)n;
    *sd = sqrt(s2 / (double)n - *mean * *mean);
    free(v);
}

START_TEST(mkmodel_tiny_has_llama_shape)
{
    char out[128];
    snprintf(out, sizeof out, "%s/tiny.gguf", tmpdir);
    ck_assert_int_eq(run("%s --shape tiny --type Q4_0 --out %s --seed 7 >/dev/null", mkmodel, out), 0);
    rl_gguf *g = open_ok(out);
    rl_gguf_str arch;
    ck_assert(rl_gguf_get_str(g, "general.architecture", &arch) && rl_gguf_str_eq(arch, "llama"));
    ck_assert_uint_eq(u32_of(g, "llama.embedding_length"), 64);
    ck_assert_uint_eq(u32_of(g, "llama.block_count"), 2);
    ck_assert_uint_eq(u32_of(g, "llama.attention.head_count"), 4);
    ck_assert_uint_eq(u32_of(g, "llama.attention.head_count_kv"), 2);
    ck_assert_uint_eq(u32_of(g, "llama.feed_forward_length"), 128);
    ck_assert_uint_eq(u32_of(g, "llama.context_length"), 256);
    ck_assert_uint_eq(u32_of(g, "llama.rope.dimension_count"), 16);
    ck_assert_uint_eq(u32_of(g, "general.file_type"), 2);
    float eps, base;
    ck_assert(rl_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps) && eps == 1e-5f);
    ck_assert(rl_gguf_get_f32(g, "llama.rope.freq_base", &base) && base == 10000.0f);
    ck_assert_uint_eq(g->n_tensors, 3 + 2 * 9);
    const rl_gguf_tensor *q = rl_gguf_find_tensor(g, "blk.1.attn_q.weight"), *k = rl_gguf_find_tensor(g, "blk.1.attn_k.weight");
    const rl_gguf_tensor *down = rl_gguf_find_tensor(g, "blk.0.ffn_down.weight"), *norm = rl_gguf_find_tensor(g, "blk.0.ffn_norm.weight");
    const rl_gguf_tensor *emb = rl_gguf_find_tensor(g, "token_embd.weight"), *o = rl_gguf_find_tensor(g, "output.weight");
    ck_assert(q && k && down && norm && emb && o && rl_gguf_find_tensor(g, "output_norm.weight"));
    ck_assert(q->type == RL_TYPE_Q4_0 && q->ne[0] == 64 && q->ne[1] == 64);
    ck_assert(k->ne[0] == 64 && k->ne[1] == 32);
    ck_assert(down->ne[0] == 128 && down->ne[1] == 64);
    ck_assert(norm->type == RL_TYPE_F32 && norm->n_dims == 1 && norm->ne[0] == 64);
    ck_assert(emb->ne[1] == 300 && o->ne[1] == 300);
    double mean, sd;
    tensor_stats(down, &mean, &sd);
    ck_assert_msg(fabs(mean) < 0.002 && sd > 0.016 && sd < 0.024, "weights mean %g sd %g", mean, sd);
    tensor_stats(norm, &mean, &sd);
    ck_assert_msg(fabs(mean - 1) < 0.01 && sd < 0.03, "norm mean %g sd %g", mean, sd);
    rl_gguf_close(g);
}
END_TEST

START_TEST(mkmodel_synthetic_vocab_is_sentencepiece_style)
{
    char out[128];
    snprintf(out, sizeof out, "%s/vocab.gguf", tmpdir);
    ck_assert_int_eq(run("%s --shape tiny --type F32 --out %s >/dev/null", mkmodel, out), 0);
    rl_gguf *g = open_ok(out);
    rl_gguf_str model;
    ck_assert(rl_gguf_get_str(g, "tokenizer.ggml.model", &model) && rl_gguf_str_eq(model, "llama"));
    const rl_gguf_kv *tok = rl_gguf_get(g, "tokenizer.ggml.tokens"), *ty = rl_gguf_get(g, "tokenizer.ggml.token_type");
    const rl_gguf_kv *sc = rl_gguf_get(g, "tokenizer.ggml.scores");
    ck_assert(tok && ty && sc && tok->arr_n == 300 && ty->arr_n == 300 && sc->arr_n == 300);
    ck_assert(rl_gguf_str_eq(tok->strs[0], "<unk>") && rl_gguf_str_eq(tok->strs[1], "<s>") &&
              rl_gguf_str_eq(tok->strs[2], "</s>"));
    ck_assert(rl_gguf_str_eq(tok->strs[3], "<0x00>") && rl_gguf_str_eq(tok->strs[258], "<0xFF>"));
    ck_assert(rl_gguf_str_eq(tok->strs[259], "\xe2\x96\x81"));
    int32_t types[300];
    memcpy(types, ty->data, sizeof types);
    ck_assert(types[0] == 2 && types[1] == 3 && types[2] == 3 && types[3] == 6 && types[258] == 6 && types[299] == 1);
    for (int i = 0; i < 300; i++)
        for (int j = i + 1; j < 300; j++)
            ck_assert_msg(tok->strs[i].len != tok->strs[j].len ||
                              memcmp(tok->strs[i].ptr, tok->strs[j].ptr, tok->strs[i].len) != 0,
                          "tokens %d and %d are equal", i, j);
    ck_assert_uint_eq(u32_of(g, "tokenizer.ggml.bos_token_id"), 1);
    ck_assert_uint_eq(u32_of(g, "tokenizer.ggml.eos_token_id"), 2);
    rl_gguf_close(g);
}
END_TEST

START_TEST(mkmodel_stories260k_is_tied)
{
    char out[128];
    snprintf(out, sizeof out, "%s/st.gguf", tmpdir);
    ck_assert_int_eq(run("%s --shape stories260k --type Q8_0 --out %s >/dev/null 2>&1", mkmodel, out), 0);
    rl_gguf *g = open_ok(out);
    ck_assert_ptr_null(rl_gguf_find_tensor(g, "output.weight"));
    ck_assert_uint_eq(g->n_tensors, 2 + 5 * 9);
    ck_assert_uint_eq(u32_of(g, "llama.feed_forward_length"), 172);
    const rl_gguf_tensor *down = rl_gguf_find_tensor(g, "blk.4.ffn_down.weight");
    ck_assert(down && down->ne[0] == 172 && down->type == RL_TYPE_F32); /* 172 fits no block: F32 */
    ck_assert(rl_gguf_find_tensor(g, "blk.4.ffn_up.weight")->type == RL_TYPE_Q8_0);
    rl_gguf_close(g);
}
END_TEST

START_TEST(mkmodel_output_is_independent_of_threads)
{
    char a[128], b[128];
    snprintf(a, sizeof a, "%s/t1.gguf", tmpdir);
    snprintf(b, sizeof b, "%s/t2.gguf", tmpdir);
    ck_assert_int_eq(run("%s --shape tiny256 --type Q4_K --threads 1 --seed 3 --out %s >/dev/null", mkmodel, a), 0);
    ck_assert_int_eq(run("%s --shape tiny256 --type Q4_K --threads 3 --seed 3 --out %s >/dev/null", mkmodel, b), 0);
    ck_assert_int_eq(run("cmp -s %s %s", a, b), 0);
    ck_assert_int_eq(run("%s --shape tiny256 --type Q4_K --threads 1 --seed 4 --out %s >/dev/null", mkmodel, b), 0);
    ck_assert_int_ne(run("cmp -s %s %s", a, b), 0);
}
END_TEST

START_TEST(mkmodel_copies_vocab_file)
{
    const char *dir = getenv("RL_SHARED_DIR");
    char voc[1024], out[128];
    snprintf(voc, sizeof voc, "%s/tokenizer/ggml-vocab-llama-spm.gguf", dir ? dir : "../shared");
    if (access(voc, R_OK) != 0) {
        printf("skip: %s not found\n", voc);
        return;
    }
    snprintf(out, sizeof out, "%s/voc.gguf", tmpdir);
    ck_assert_int_eq(run("%s --shape tiny --type F16 --vocab %s --out %s >/dev/null 2>&1", mkmodel, voc, out), 0);
    rl_gguf *g = open_ok(out), *v = open_ok(voc);
    const rl_gguf_kv *a = rl_gguf_get(g, "tokenizer.ggml.tokens"), *b = rl_gguf_get(v, "tokenizer.ggml.tokens");
    ck_assert(a && b && a->arr_n == b->arr_n);
    for (uint64_t i = 0; i < a->arr_n; i++)
        ck_assert(a->strs[i].len == b->strs[i].len && memcmp(a->strs[i].ptr, b->strs[i].ptr, a->strs[i].len) == 0);
    ck_assert_int_eq(rl_gguf_find_tensor(g, "token_embd.weight")->ne[1], (int64_t)b->arr_n);
    ck_assert_uint_eq(u32_of(g, "llama.vocab_size"), (uint32_t)b->arr_n);
    rl_gguf_close(g);
    rl_gguf_close(v);
}
END_TEST

static rl_type type_of(const rl_gguf *g, const char *name)
{
    const rl_gguf_tensor *t = rl_gguf_find_tensor(g, name);
    ck_assert_msg(t != NULL, "missing %s", name);
    return t->type;
}

START_TEST(mkmodel_k_m_mixes_types_per_tensor)
{
    /* Q4_K_M / Q5_K_M: output Q6_K, attn_v and ffn_down Q6_K in even layers, the rest the base type. */
    const char *mix = _i ? "Q5_K_M" : "Q4_K_M";
    rl_type base = _i ? RL_TYPE_Q5_K : RL_TYPE_Q4_K;
    char out[128];
    snprintf(out, sizeof out, "%s/%s.gguf", tmpdir, mix);
    ck_assert_int_eq(run("%s --shape tiny256 --type %s --layers 3 --out %s >/dev/null", mkmodel, mix, out), 0);
    rl_gguf *g = open_ok(out);
    ck_assert_uint_eq(u32_of(g, "general.file_type"), _i ? 17 : 15);
    ck_assert_int_eq(type_of(g, "token_embd.weight"), base);
    ck_assert_int_eq(type_of(g, "output.weight"), RL_TYPE_Q6_K);
    ck_assert_int_eq(type_of(g, "output_norm.weight"), RL_TYPE_F32);
    const char *roles[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
    for (int l = 0; l < 3; l++)
        for (int r = 0; r < 7; r++) {
            char nm[64];
            snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, roles[r]);
            bool six = l % 2 == 0 && (r == 2 || r == 6);
            ck_assert_msg(type_of(g, nm) == (six ? RL_TYPE_Q6_K : base), "%s %s", mix, nm);
        }
    rl_gguf_close(g);
}
END_TEST

START_TEST(mkmodel_tensor_type_overrides_by_pattern)
{
    char out[128];
    snprintf(out, sizeof out, "%s/over.gguf", tmpdir);
    ck_assert_int_eq(run("%s --shape tiny256 --type Q4_K --out %s --tensor-type ffn_up=Q8_0 "
                         "--tensor-type blk.1.attn_k=Q5_K --tensor-type blk.1.ffn_up=F16 >/dev/null",
                         mkmodel, out), 0);
    rl_gguf *g = open_ok(out);
    ck_assert_int_eq(type_of(g, "blk.0.ffn_up.weight"), RL_TYPE_Q8_0);
    ck_assert_int_eq(type_of(g, "blk.1.ffn_up.weight"), RL_TYPE_F16); /* the last match wins */
    ck_assert_int_eq(type_of(g, "blk.1.attn_k.weight"), RL_TYPE_Q5_K);
    ck_assert_int_eq(type_of(g, "blk.0.attn_k.weight"), RL_TYPE_Q4_K);
    ck_assert_int_eq(type_of(g, "blk.1.ffn_gate.weight"), RL_TYPE_Q4_K);
    rl_gguf_close(g);
    ck_assert_int_eq(run("%s --shape tiny256 --type Q4_K --out %s --tensor-type ffn_up 2>/dev/null", mkmodel, out), 2);
    ck_assert_int_eq(run("%s --shape tiny256 --type Q4_K --out %s --tensor-type =Q4_K 2>/dev/null", mkmodel, out), 2);
    ck_assert_int_eq(run("%s --shape tiny256 --type Q4_K --out %s --tensor-type up=Q8_K 2>/dev/null", mkmodel, out), 2);
}
END_TEST

/* Logits after feeding toks to a fresh CPU model of path (one thread, F32 KV). */
static float *cpu_logits(const char *path, const int32_t *toks, uint32_t n, rl_model **mout)
{
    char err[256] = "";
    rl_model *m;
    ck_assert_msg(rl_model_load(path, &m, err, sizeof err) == 0, "%s: %s", path, err);
    rl_kv *kv;
    ck_assert_msg(rl_kv_new(&kv, m->hp.n_layer, m->hp.n_head_kv, m->hp.head_dim, RL_TYPE_F32, 16, err, sizeof err) == 0,
                  "%s", err);
    rl_pool *pool = rl_pool_new(1);
    rl_fwd *f;
    ck_assert(pool && rl_fwd_new(m, kv, pool, 64, &f) == 0);
    rl_kv_seq seq = {0};
    ck_assert(rl_kv_reserve(kv, &seq, n) == 0);
    float *lg = malloc(sizeof(float) * m->hp.n_vocab);
    rl_fwd_seq fs = {.kv = &seq, .tokens = toks, .n_tok = n, .logits = lg};
    ck_assert_int_eq(rl_forward(f, &fs, 1), 0);
    rl_kv_release(kv, &seq);
    rl_fwd_free(f);
    rl_pool_free(pool);
    rl_kv_free(kv);
    *mout = m;
    return lg;
}

/* Relative L2 error of logits b against the F32 twin's a; b all finite. */
static double twin_rel_err(const float *a, const float *b, uint32_t n)
{
    double e2 = 0, s2 = 0;
    for (uint32_t i = 0; i < n; i++) {
        ck_assert(isfinite(b[i]));
        e2 += (double)(a[i] - b[i]) * (a[i] - b[i]);
        s2 += (double)a[i] * a[i];
    }
    return sqrt(e2 / s2);
}

START_TEST(mixed_type_model_runs_on_cpu_close_to_its_f32_twin)
{
    /* Same seed: the same weights before quantization. A mix that also splits
     * Q/K/V (attn_k Q8_0) and gate/up (ffn_up Q5_K) types inside a layer. */
    char f32[128], mixed[128];
    snprintf(f32, sizeof f32, "%s/twin_f32.gguf", tmpdir);
    snprintf(mixed, sizeof mixed, "%s/twin_mix.gguf", tmpdir);
    ck_assert_int_eq(run("%s --shape tiny256 --type F32 --layers 3 --seed 11 --out %s >/dev/null", mkmodel, f32), 0);
    ck_assert_int_eq(run("%s --shape tiny256 --type Q4_K_M --layers 3 --seed 11 --out %s --tensor-type blk.1.ffn_up=Q5_K "
                         "--tensor-type blk.2.attn_k=Q8_0 >/dev/null", mkmodel, mixed), 0);
    int32_t toks[20];
    for (int i = 0; i < 20; i++)
        toks[i] = 3 + (i * 37) % 290;
    rl_model *mf, *mm;
    float *a = cpu_logits(f32, toks, 20, &mf), *b = cpu_logits(mixed, toks, 20, &mm);
    ck_assert_int_eq(mm->layers[0].wv.type, RL_TYPE_Q6_K);
    ck_assert_int_eq(mm->layers[0].wq.type, RL_TYPE_Q4_K);
    ck_assert_int_eq(mm->layers[1].w_up.type, RL_TYPE_Q5_K);
    ck_assert_int_eq(mm->layers[1].w_gate.type, RL_TYPE_Q4_K);
    ck_assert_int_eq(mm->layers[2].wk.type, RL_TYPE_Q8_0);
    ck_assert_int_eq(mm->output.type, RL_TYPE_Q6_K);
    double rel = twin_rel_err(a, b, mf->hp.n_vocab);
    printf("mixed Q4_K_M vs F32 twin: logits rel err %.4g\n", rel);
    ck_assert_msg(rel < BOUND_MIX_TWIN, "mixed-type logits rel err %g vs the F32 twin", rel);
    free(a), free(b);
    rl_model_free(mf);
    rl_model_free(mm);
}
END_TEST

/* Rows of 64 (shape tiny): no K-quant block fits, so a Q4_K_M mix stores
 * Q5_0 (Q5_K_M: Q5_1) where it wants Q4_K and Q8_0 where it wants Q6_K, as
 * llama.cpp's files of small models do; the CPU runs them close to the F32
 * twin. */
START_TEST(k_m_mix_on_short_rows_takes_the_32_block_stand_ins)
{
    const char *mix = _i ? "Q5_K_M" : "Q4_K_M";
    rl_type stand_in = _i ? RL_TYPE_Q5_1 : RL_TYPE_Q5_0;
    char f32[128], mixed[128];
    snprintf(f32, sizeof f32, "%s/short_f32.gguf", tmpdir);
    snprintf(mixed, sizeof mixed, "%s/short_%s.gguf", tmpdir, mix);
    ck_assert_int_eq(run("%s --shape tiny --type F32 --layers 2 --seed 5 --out %s >/dev/null", mkmodel, f32), 0);
    ck_assert_int_eq(run("%s --shape tiny --type %s --layers 2 --seed 5 --out %s 2>/dev/null", mkmodel, mix, mixed), 0);
    rl_gguf *g = open_ok(mixed);
    ck_assert_int_eq(type_of(g, "blk.0.attn_q.weight"), stand_in);
    ck_assert_int_eq(type_of(g, "blk.1.ffn_down.weight"), stand_in);
    ck_assert_int_eq(type_of(g, "blk.0.attn_v.weight"), RL_TYPE_Q8_0); /* Q6_K's stand-in */
    ck_assert_int_eq(type_of(g, "output.weight"), RL_TYPE_Q8_0);
    rl_gguf_close(g);
    int32_t toks[12];
    for (int i = 0; i < 12; i++)
        toks[i] = 3 + (i * 37) % 290;
    rl_model *mf, *mm;
    float *a = cpu_logits(f32, toks, 12, &mf), *b = cpu_logits(mixed, toks, 12, &mm);
    double rel = twin_rel_err(a, b, mf->hp.n_vocab);
    printf("%s on rows of 64 vs F32 twin: logits rel err %.4g\n", mix, rel);
    ck_assert_msg(rel < BOUND_MIX_TWIN, "%s logits rel err %g vs the F32 twin", mix, rel);
    free(a), free(b);
    rl_model_free(mf);
    rl_model_free(mm);
}
END_TEST

START_TEST(mixed_type_model_generates_through_cpu_engine)
{
    char mixed[128], err[256] = "";
    snprintf(mixed, sizeof mixed, "%s/engine_mix.gguf", tmpdir);
    ck_assert_int_eq(run("%s --shape tiny256 --type Q5_K_M --layers 2 --seed 3 --out %s --tensor-type ffn_gate=Q8_0 "
                         ">/dev/null", mkmodel, mixed), 0);
    int32_t prompt[7] = {1, 40, 41, 200, 7, 99, 12};
    rl_model *m;
    float *lg = cpu_logits(mixed, prompt, 7, &m);
    int32_t best = 0;
    for (uint32_t i = 1; i < m->hp.n_vocab; i++)
        if (lg[i] > lg[best])
            best = (int32_t)i;
    rl_engine *e;
    ck_assert_msg(rl_engine_llm_create(mixed, 1, &e, err, sizeof err) == 0, "%s", err);
    rl_seq_desc d = {.prompt = prompt, .n_prompt = 7, .max_tokens = 4,
                     .sampling = {.temperature = 0, .top_p = 1, .repeat_penalty = 1}};
    rl_seq *sq;
    ck_assert_int_eq(e->ops->seq_new(e, &d, &sq), 0);
    int32_t first = -1;
    for (int guard = 0; first < 0 && guard < 16; guard++) {
        rl_step_item it = {.seq = sq};
        ck_assert_int_eq(e->ops->step(e, &it, 1), 0);
        ck_assert_int_eq(it.status, 0);
        first = it.token;
    }
    /* greedy: the argmax of the forward pass's logits (or a tie within rounding) */
    ck_assert(first >= 0 && (uint32_t)first < m->hp.n_vocab);
    ck_assert_msg(lg[first] >= lg[best] - 1e-4f * fabsf(lg[best]), "engine token %d (%g), argmax %d (%g)", first,
                  lg[first], best, lg[best]);
    e->ops->seq_free(e, sq);
    e->ops->destroy(e);
    free(lg);
    rl_model_free(m);
}
END_TEST

/* Quantize an F32 model and compare every tensor with its source. */
static void quantize_and_compare(const char *type_name, rl_type want, double bound)
{
    char src[128], dst[128];
    snprintf(src, sizeof src, "%s/f32.gguf", tmpdir);
    snprintf(dst, sizeof dst, "%s/q_%s.gguf", tmpdir, type_name);
    ck_assert_int_eq(run("%s --shape tiny256 --type F32 --out %s >/dev/null", mkmodel, src), 0);
    ck_assert_int_eq(run("%s %s %s %s >/dev/null", quantize, src, dst, type_name), 0);
    rl_gguf *a = open_ok(src), *b = open_ok(dst);
    ck_assert_uint_eq(a->n_tensors, b->n_tensors);
    ck_assert_uint_eq(b->n_kv, a->n_kv + 1); /* + general.quantization_version */
    ck_assert_uint_ne(u32_of(b, "general.file_type"), 0);
    const rl_gguf_kv *ta = rl_gguf_get(a, "tokenizer.ggml.tokens"), *tb = rl_gguf_get(b, "tokenizer.ggml.tokens");
    ck_assert(tb && tb->arr_n == ta->arr_n);
    for (uint64_t i = 0; i < ta->arr_n; i++)
        ck_assert(ta->strs[i].len == tb->strs[i].len && memcmp(ta->strs[i].ptr, tb->strs[i].ptr, ta->strs[i].len) == 0);
    for (uint64_t i = 0; i < a->n_tensors; i++) {
        const rl_gguf_tensor *x = &a->tensors[i], *y = rl_gguf_find_tensor(b, x->name);
        ck_assert(y && y->ne[0] == x->ne[0] && y->ne[1] == x->ne[1]);
        int64_t n = x->ne[0] * x->ne[1];
        if (x->n_dims == 1) {
            ck_assert(y->type == RL_TYPE_F32 && memcmp(x->data, y->data, x->nbytes) == 0);
            continue;
        }
        ck_assert_int_eq(y->type, want);
        float *v = malloc(sizeof(float) * (size_t)n);
        rl_type_get(y->type)->to_float(y->data, v, n);
        const float *o = x->data;
        double e2 = 0, s2 = 0;
        for (int64_t j = 0; j < n; j++) {
            e2 += (double)(v[j] - o[j]) * (v[j] - o[j]);
            s2 += (double)o[j] * o[j];
        }
        free(v);
        ck_assert_msg(sqrt(e2 / s2) < bound, "%s %s: relative error %g", type_name, x->name, sqrt(e2 / s2));
    }
    rl_gguf_close(a);
    rl_gguf_close(b);
}

START_TEST(quantize_q8_0_within_bounds) { quantize_and_compare("Q8_0", RL_TYPE_Q8_0, 0.01); }
END_TEST
START_TEST(quantize_legacy_32_block_types_within_bounds)
{
    static const struct {
        const char *name;
        rl_type t;
        double bound;
    } c[] = {{"Q5_0", RL_TYPE_Q5_0, 0.063}, {"Q5_1", RL_TYPE_Q5_1, 0.05}, {"Q4_1", RL_TYPE_Q4_1, 0.10}};
    quantize_and_compare(c[_i].name, c[_i].t, c[_i].bound);
}
END_TEST
START_TEST(quantize_q4_0_within_bounds) { quantize_and_compare("Q4_0", RL_TYPE_Q4_0, 0.12); }
END_TEST
START_TEST(quantize_q4_k_within_bounds) { quantize_and_compare("Q4_K", RL_TYPE_Q4_K, 0.09); }
END_TEST
START_TEST(quantize_q5_k_within_bounds) { quantize_and_compare("Q5_K", RL_TYPE_Q5_K, 0.06); }
END_TEST

START_TEST(quantize_k_m_mix_equals_mkmodel_mix)
{
    /* The same rule in both tools: quantizing the F32 twin gives mkmodel's Q4_K_M bytes. */
    char f32[128], a[128], b[128];
    snprintf(f32, sizeof f32, "%s/km_f32.gguf", tmpdir);
    snprintf(a, sizeof a, "%s/km_mk.gguf", tmpdir);
    snprintf(b, sizeof b, "%s/km_q.gguf", tmpdir);
    ck_assert_int_eq(run("%s --shape tiny256 --type F32 --layers 3 --seed 8 --out %s >/dev/null", mkmodel, f32), 0);
    ck_assert_int_eq(run("%s --shape tiny256 --type Q4_K_M --layers 3 --seed 8 --out %s --tensor-type blk.1.attn_q=Q8_0 "
                         ">/dev/null", mkmodel, a), 0);
    ck_assert_int_eq(run("%s %s %s Q4_K_M --tensor-type blk.1.attn_q=Q8_0 --threads 1 >/dev/null", quantize, f32, b), 0);
    rl_gguf *ga = open_ok(a), *gb = open_ok(b);
    ck_assert_uint_eq(u32_of(gb, "general.file_type"), 15);
    ck_assert_uint_eq(ga->n_tensors, gb->n_tensors);
    for (uint64_t i = 0; i < ga->n_tensors; i++) {
        const rl_gguf_tensor *x = &ga->tensors[i], *y = rl_gguf_find_tensor(gb, x->name);
        ck_assert_msg(y && y->type == x->type && y->nbytes == x->nbytes, "%s", x->name);
        ck_assert_msg(memcmp(x->data, y->data, x->nbytes) == 0, "%s differs", x->name);
    }
    ck_assert_int_eq(rl_gguf_find_tensor(gb, "blk.1.attn_q.weight")->type, RL_TYPE_Q8_0);
    ck_assert_int_eq(rl_gguf_find_tensor(gb, "blk.2.ffn_down.weight")->type, RL_TYPE_Q6_K);
    rl_gguf_close(ga);
    rl_gguf_close(gb);
    ck_assert_int_eq(run("%s %s %s Q4_K_M --tensor-type nope 2>/dev/null", quantize, f32, b), 2);
}
END_TEST

START_TEST(quantize_rejects_bad_input)
{
    char bad[128];
    snprintf(bad, sizeof bad, "%s/bad.gguf", tmpdir);
    FILE *f = fopen(bad, "wb");
    fputs("GGUF\x03\0\0\0garbage", f);
    fclose(f);
    ck_assert_int_eq(run("%s %s %s/x.gguf Q4_0 2>/dev/null", quantize, bad, tmpdir), 1);
    ck_assert_int_eq(run("%s %s/none.gguf %s/x.gguf Q4_0 2>/dev/null", quantize, tmpdir, tmpdir), 1);
    ck_assert_int_eq(run("%s %s %s/x.gguf Q9_9 2>/dev/null", quantize, bad, tmpdir), 2);
    ck_assert_int_ne(access(bad, R_OK), -1);
    char x[128];
    snprintf(x, sizeof x, "%s/x.gguf", tmpdir);
    ck_assert_int_eq(access(x, F_OK), -1); /* no output left behind */
    ck_assert_int_eq(run("%s --shape nope --type Q4_0 --out %s 2>/dev/null", mkmodel, x), 2);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test_tools MKMODEL QUANTIZE\n");
        return 2;
    }
    mkmodel = argv[1];
    quantize = argv[2];
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rl_tools_test_XXXXXX");
    if (!mkdtemp(tmpdir)) return 2;
    Suite *s = suite_create("tools");
    TCase *tc = tcase_create("tools");
    tcase_add_test(tc, mkmodel_tiny_has_llama_shape);
    tcase_add_test(tc, mkmodel_synthetic_vocab_is_sentencepiece_style);
    tcase_add_test(tc, mkmodel_stories260k_is_tied);
    tcase_add_test(tc, mkmodel_output_is_independent_of_threads);
    tcase_add_test(tc, mkmodel_copies_vocab_file);
    tcase_add_test(tc, quantize_q8_0_within_bounds);
    tcase_add_loop_test(tc, quantize_legacy_32_block_types_within_bounds, 0, 3);
    tcase_add_test(tc, quantize_q4_0_within_bounds);
    tcase_add_test(tc, quantize_q4_k_within_bounds);
    tcase_add_test(tc, quantize_q5_k_within_bounds);
    tcase_add_test(tc, quantize_rejects_bad_input);
    tcase_add_test(tc, quantize_k_m_mix_equals_mkmodel_mix);
    tcase_add_loop_test(tc, mkmodel_k_m_mixes_types_per_tensor, 0, 2);
    tcase_add_test(tc, mkmodel_tensor_type_overrides_by_pattern);
    tcase_add_test(tc, mixed_type_model_runs_on_cpu_close_to_its_f32_twin);
    tcase_add_loop_test(tc, k_m_mix_on_short_rows_takes_the_32_block_stand_ins, 0, 2);
    tcase_add_test(tc, mixed_type_model_generates_through_cpu_engine);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    run("rm -rf %s", tmpdir);
    return failed ? 1 : 0;
}
