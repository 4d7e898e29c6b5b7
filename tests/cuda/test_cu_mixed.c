/* test_cu_mixed.c - the CUDA model on files that mix weight types per tensor
 * (Q4_K_M / Q5_K_M as written by ringlm-mkmodel: argv[1], else the build
 * tree's tools/ringlm-mkmodel), against the float64
 * reference forward pass of tests/model (tm_ref): logits after prefill and
 * after batched decode steps (with the fp16 and the int8 KV cache), and
 * generation through the CUDA engine. The mix
 * also splits Q/K/V and gate/up types inside layers, so both the fused and
 * the per-matrix products run. Exits 77 without a GPU. */
#include <errno.h>
#include <limits.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tcu_util.h"

#include "rl_cu_layer.h"
#include "rl_cu_model.h"
#include "rl_cu_model_impl.h"
#include "rl_engine_cuda.h"
#include "rl_model.h"
#include "tm_util.h"

/* int8 activations per 32-block in every matvec (the reference is float64
 * throughout): the CPU path with Q8_0 activations measures ~1e-2 on these
 * random models, so 3e-2 is the CPU reference test's bound for Q8_0. A wrong
 * row layout or type dispatch gives 0.1..1. */
#define BOUND 3e-2

static const char *mkmodel;
static char tmpdir[64];

static const char *const mixes[] = {"Q4_K_M", "Q5_K_M"};

/* ringlm-mkmodel ARGS --out path (stdout discarded); the test fails if it does. */
static void mkmodel_run(const char *path, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s %s --out %s >/dev/null", mkmodel, args, path);
    int st = system(cmd);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s failed", cmd);
}

/* Whether this device runs rl_cu_mvb (sm_90). */
static bool mvb_device(void)
{
    rl_cu_mat probe = {.type = RL_TYPE_Q4_0, .rows = 8, .cols = 256, .q = (void *)16, .d = (void *)16};
    return rl_cu_mvb_ok(&probe, RL_CU_MV_STORE);
}

/* 4 layers: 0 and 2 have attn_v/ffn_down Q6_K (Q, K, V split), 1 has ffn_up
 * Q5_K (gate, up split), 2 an F16 attn_output, 3 a Q8_0 attn_k (split). */
static void make_mixed(const char *mix, char *path, size_t n)
{
    snprintf(path, n, "%s/%s.gguf", tmpdir, mix);
    if (access(path, R_OK) == 0)
        return;
    char args[512];
    snprintf(args, sizeof args,
             "--shape tiny256 --type %s --layers 4 --seed 5 --tensor-type blk.1.ffn_up=Q5_K "
             "--tensor-type blk.2.attn_output=F16 --tensor-type blk.3.attn_k=Q8_0",
             mix);
    mkmodel_run(path, args);
}

/* A tiny256 file of this type from ringlm-mkmodel with this seed, in tmpdir. */
static void make_typed(const char *type, int seed, char *path, size_t n)
{
    snprintf(path, n, "%s/%s_s%d.gguf", tmpdir, type, seed);
    char args[128];
    snprintf(args, sizeof args, "--shape tiny256 --type %s --seed %d", type, seed);
    mkmodel_run(path, args);
}

static void make_q4_0(int seed, char *path, size_t n)
{
    make_typed("Q4_0", seed, path, n);
}

static double rel_err_d(const float *a, const double *ref, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (!isfinite(a[i]))
            return INFINITY;
    return tm_rel_err(a, ref, n);
}

/* Whether a layer of m holds a matrix of type a or b. */
static bool has_type(const rl_model *m, rl_type a, rl_type b)
{
    for (uint32_t l = 0; l < m->hp.n_layer; l++) {
        const rl_layer *L = &m->layers[l];
        const rl_weight *w[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++)
            if (w[i]->type == a || w[i]->type == b)
                return true;
    }
    return false;
}

/* rl_cu_mvb's automatic choice at under 4,096 wide: K-quants, F16/BF16 or
 * Q8_0 matrices (Q4_1, Q5_0 and Q5_1 go up as Q8_0), and every layer matrix
 * of a type and shape it takes (F32 is not; rows of 256 and more are, rows
 * of 64 are not). */
static bool mvb_auto_expected(const rl_model *m)
{
    return (has_type(m, RL_TYPE_Q4_K, RL_TYPE_Q5_K) || has_type(m, RL_TYPE_Q6_K, RL_TYPE_F16) ||
            has_type(m, RL_TYPE_BF16, RL_TYPE_Q8_0) || has_type(m, RL_TYPE_Q4_1, RL_TYPE_Q5_0) ||
            has_type(m, RL_TYPE_Q5_1, RL_TYPE_Q5_1)) &&
           !has_type(m, RL_TYPE_F32, RL_TYPE_F32) && m->hp.n_embd % 256 == 0;
}

/* Prefill three sequences of the model at path into their own slots, then
 * two batched decode steps and a one-sequence step; every row of logits
 * against the float64 reference of the same file (tm_ref) within BOUND.
 * defer: the one-sequence step's norms deferred (else norm kernels); mvb: that
 * step on rl_cu_mvb. */
enum { MVB_OFF, MVB_ON };
static void check_against_reference(rl_model *m, const char *path, const char *mix, bool kv_q8, bool defer,
                                    int mvb)
{
    char err[256] = "";
    uint32_t V = m->hp.n_vocab;
    rl_cu_model *g;
    ck_assert_msg(rl_cu_model_from_cpu(m, 128, 3, 0, 64, kv_q8, RL_CU_W16_AUTO, &g, err, sizeof err) == 0, "%s", err);
    rl_cu_model_set_norm_defer(g, defer);
    rl_cu_model_set_mvb(g, -1); /* automatic: narrow models stay on the matvecs, unless they hold K-quants, floats or Q8_0 */
    bool kq = mvb_auto_expected(m) && mvb_device();
    if (m->hp.n_embd < RL_CU_MVB_MIN_EMBD)
        ck_assert_msg(rl_cu_model_mvb_step(g, 1) == kq, "%s: %u wide %son rl_cu_mvb", mix, m->hp.n_embd,
                      kq ? "not " : "");
    rl_cu_model_set_mvb(g, mvb ? 1 : 0); /* the one-sequence step (step 2 below) on rl_cu_mvb or not */
    ck_assert_msg(rl_cu_model_mvb_step(g, 1) == (mvb != MVB_OFF), "%s: one-sequence steps %son rl_cu_mvb", mix,
                  mvb ? "not " : "");
    uint64_t s = tcu_seed(mix);
    enum { NS = 3 };
    tm_ref *ref[NS];
    int32_t next[NS], pos[NS], slot[NS], out[NS];
    float *lg = malloc((size_t)NS * V * 4);
    for (int i = 0; i < NS; i++) { /* prefill each sequence into its own slot */
        int n = 5 + (int)(tcu_rng_next(&s) % 20);
        int32_t prompt[32];
        prompt[0] = 1;
        for (int k = 1; k < n; k++)
            prompt[k] = 3 + (int32_t)(tcu_rng_next(&s) % (V - 3));
        ref[i] = tm_ref_open(path);
        ck_assert_ptr_nonnull(ref[i]);
        const double *want = NULL;
        for (int k = 0; k < n; k++)
            want = tm_ref_step(ref[i], prompt[k]);
        for (uint32_t k = 0; k < V; k++)
            lg[k] = NAN;
        ck_assert_msg(rl_cu_model_prefill(g, i, 0, prompt, n, &next[i], lg) == 0, "%s", rl_cu_last_error());
        double e = rel_err_d(lg, want, V);
        fprintf(stderr, "%s kv %s prefill seq %d (%d tokens): rel err %g\n", mix, kv_q8 ? "q8_0" : "f16", i, n, e);
        ck_assert_msg(e < BOUND, "%s prefill seq %d: rel err %g", mix, i, e);
        pos[i] = n;
        slot[i] = i;
    }
    /* Two batched steps: all three in slot order, then two in reverse order;
     * then one sequence alone (the one-row step: deferred norms). */
    for (int step = 0; step < 3; step++) {
        int nb = step == 0 ? NS : step == 1 ? 2 : 1;
        int32_t t[NS], p[NS], sl[NS];
        int who[NS];
        for (int j = 0; j < nb; j++) {
            who[j] = step == 0 ? j : step == 1 ? NS - 1 - 2 * j : 1; /* step 1: sequences 2 and 0 */
            t[j] = next[who[j]];
            p[j] = pos[who[j]];
            sl[j] = slot[who[j]];
        }
        for (size_t k = 0; k < (size_t)NS * V; k++)
            lg[k] = NAN;
        ck_assert_msg(rl_cu_model_decode(g, nb, t, p, sl, out, lg) == 0, "%s", rl_cu_last_error());
        for (int j = 0; j < nb; j++) {
            int i = who[j];
            const double *want = tm_ref_step(ref[i], t[j]);
            double e = rel_err_d(lg + (size_t)j * V, want, V);
            fprintf(stderr, "%s kv %s decode step %d seq %d (batch %d): rel err %g\n", mix, kv_q8 ? "q8_0" : "f16", step, i,
                    nb, e);
            ck_assert_msg(e < BOUND, "%s decode step %d seq %d: rel err %g", mix, step, i, e);
            int32_t best = 0;
            for (uint32_t k = 1; k < V; k++)
                if (lg[(size_t)j * V + k] > lg[(size_t)j * V + best])
                    best = (int32_t)k;
            ck_assert_int_eq(out[j], best); /* the device argmax is that of the logits */
            next[i] = out[j];
            pos[i]++;
        }
    }
    for (int i = 0; i < NS; i++)
        tm_ref_free(ref[i]);
    free(lg);
    rl_cu_model_free(g);
}

START_TEST(mixed_logits_match_reference_after_prefill_and_batched_decode)
{
    const char *mix = mixes[_i % 2];
    bool kv_q8 = _i == 2 || _i == 3 || _i == 7; /* the int8 KV cache: within the same bound */
    bool defer = _i < 4 || _i >= 6;             /* 4, 5: every RMSNorm a kernel of its own */
    int mvb = _i >= 6 ? MVB_ON : MVB_OFF;       /* 6, 7: the one-sequence step on rl_cu_mvb */
    if (mvb && !mvb_device()) {
        fprintf(stderr, "rl_cu_mvb: no sm_90 device: not tested\n");
        return;
    }
    char path[128], err[256] = "";
    make_mixed(mix, path, sizeof path);
    rl_model *m;
    ck_assert_msg(rl_model_load(path, &m, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(m->layers[0].wv.type, RL_TYPE_Q6_K); /* the mix is really mixed */
    ck_assert_int_ne(m->layers[0].wq.type, RL_TYPE_Q6_K);
    ck_assert_int_eq(m->layers[1].w_up.type, RL_TYPE_Q5_K);
    ck_assert_int_eq(m->layers[3].wk.type, RL_TYPE_Q8_0);
    check_against_reference(m, path, mix, kv_q8, defer, mvb);
    rl_model_free(m);
}
END_TEST

/* Q4_1, Q5_0 and Q5_1 have no GPU kernels: they go up as Q8_0 (requantized
 * on the host at load). 0: tiny256 with those types put on single matrices;
 * 1: shape tiny, rows of 64, where a Q4_K_M mix stores Q5_0 and Q8_0 for
 * every matrix (the case of SmolLM's and Qwen2-0.5B's files). */
START_TEST(legacy_32_block_types_go_up_as_q8_0_and_match_reference)
{
    char path[128], cmd[1024], err[256] = "";
    snprintf(path, sizeof path, "%s/legacy%d.gguf", tmpdir, _i);
    if (_i == 0)
        snprintf(cmd, sizeof cmd,
                 "%s --shape tiny256 --type Q4_K_M --layers 3 --seed 9 --out %s --tensor-type blk.0.attn_q=Q5_0 "
                 "--tensor-type blk.1.ffn_gate=Q4_1 --tensor-type blk.2.ffn_down=Q5_1 --tensor-type output=Q5_0 >/dev/null",
                 mkmodel, path);
    else
        snprintf(cmd, sizeof cmd, "%s --shape tiny --type Q4_K_M --layers 2 --seed 9 --out %s 2>/dev/null", mkmodel, path);
    int st = system(cmd);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s failed", cmd);
    rl_model *m;
    ck_assert_msg(rl_model_load(path, &m, err, sizeof err) == 0, "%s", err);
    if (_i == 0) {
        ck_assert_int_eq(m->layers[0].wq.type, RL_TYPE_Q5_0);
        ck_assert_int_eq(m->layers[1].w_gate.type, RL_TYPE_Q4_1);
        ck_assert_int_eq(m->layers[2].w_down.type, RL_TYPE_Q5_1);
    } else {
        ck_assert_int_eq(m->layers[0].wq.type, RL_TYPE_Q5_0);
        ck_assert_int_eq(m->output.type, RL_TYPE_Q8_0);
    }
    check_against_reference(m, path, _i ? "rows of 64" : "legacy types", false, true, MVB_OFF);
    rl_model_free(m);
}
END_TEST

/* A Q4_0, a Q8_0 and an F16 file's one-sequence steps on rl_cu_mvb (weights
 * by bulk copies, the norms inside the products; the 300-row output product
 * falls back to the matvec) against the float64 reference, with the fp16 and
 * the int8 KV (_i: bit 0 the KV type, _i / 2 the weight type); 6, 7: a
 * Q4_K_M file with F32 matrices that rl_cu_mvb does not take, which run on
 * the matvecs in between (a split V, a split up beside an rl_cu_mvb gate, a
 * down), forced onto rl_cu_mvb (the automatic choice leaves such a file on
 * the matvecs). */
START_TEST(one_sequence_steps_on_bulk_copies_match_reference)
{
    static const char *const types[] = {"Q4_0", "Q8_0", "F16", "Q4_K_M"};
    char path[128], err[256] = "", mix[32];
    if (_i < 6) {
        make_typed(types[_i / 2], 13, path, sizeof path);
    } else {
        snprintf(path, sizeof path, "%s/f32parts.gguf", tmpdir);
        mkmodel_run(path, "--shape tiny256 --type Q4_K_M --layers 3 --seed 13 --tensor-type blk.0.attn_v=F32 "
                          "--tensor-type blk.1.ffn_up=F32 --tensor-type blk.2.ffn_down=F32");
    }
    snprintf(mix, sizeof mix, "%s%s mvb", types[_i / 2], _i >= 6 ? "+F32" : "");
    rl_model *m;
    ck_assert_msg(rl_model_load(path, &m, err, sizeof err) == 0, "%s", err);
    if (_i >= 6)
        ck_assert(m->layers[0].wv.type == RL_TYPE_F32 && m->layers[1].w_up.type == RL_TYPE_F32 &&
                  m->layers[2].w_down.type == RL_TYPE_F32 && m->layers[1].w_gate.type == RL_TYPE_Q4_K);
    if (!mvb_device())
        fprintf(stderr, "rl_cu_mvb: no sm_90 device: not tested\n");
    else
        check_against_reference(m, path, mix, _i & 1, true, MVB_ON);
    rl_model_free(m);
}
END_TEST

/* Prompt steps of more than 64 tokens on a Q4_0 model: the direct products
 * (rl_cu_mmw, in passes of at most 64 rows) against the dequantize-and-cuBLAS
 * path (both multiply the same fp16 activations by the same fp16 weights:
 * only the fp32 sums' order differs) and both against the float64
 * reference. Says so and returns where the device has no rl_cu_mmw. */
START_TEST(q4_0_prompt_steps_direct_products_match_cublas_and_reference)
{
    char path[128], err[256] = "";
    make_q4_0(9, path, sizeof path);
    rl_model *m;
    ck_assert_msg(rl_model_load(path, &m, err, sizeof err) == 0, "%s", err);
    uint32_t V = m->hp.n_vocab;
    rl_cu_model *g;
    ck_assert_msg(rl_cu_model_from_cpu(m, 256, 2, 0, 256, false, RL_CU_W16_AUTO, &g, err, sizeof err) == 0, "%s", err);
    if (rl_cu_model_direct_max(g) == 0) {
        fprintf(stderr, "direct products: no rl_cu_mmw on this device (compute capability 9.0): not tested\n");
    } else {
        uint64_t s = tcu_seed("direct");
        static const int lens[] = {65, 100, 200};
        float *lg[2] = {malloc(V * 4), malloc(V * 4)};
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
            int n = lens[li];
            int32_t prompt[256], tok[2];
            prompt[0] = 1;
            for (int k = 1; k < n; k++)
                prompt[k] = 3 + (int32_t)(tcu_rng_next(&s) % (V - 3));
            tm_ref *ref = tm_ref_open(path);
            ck_assert_ptr_nonnull(ref);
            const double *want = NULL;
            for (int k = 0; k < n; k++)
                want = tm_ref_step(ref, prompt[k]);
            for (int d = 0; d < 2; d++) {
                rl_cu_model_set_direct_max(g, d ? 256 : 0);
                ck_assert_int_eq(rl_cu_model_direct_max(g), d ? 256 : 0);
                for (uint32_t k = 0; k < V; k++)
                    lg[d][k] = NAN;
                ck_assert_msg(rl_cu_model_prefill(g, d, 0, prompt, n, &tok[d], lg[d]) == 0, "%s", rl_cu_last_error());
                double e = rel_err_d(lg[d], want, V);
                fprintf(stderr, "Q4_0 prompt of %d tokens, %s: rel err %g\n", n, d ? "direct" : "cuBLAS", e);
                ck_assert_msg(e < BOUND, "%d tokens, %s: rel err %g", n, d ? "direct" : "cuBLAS", e);
            }
            double diff = tcu_rel_err_f(lg[1], lg[0], V);
            fprintf(stderr, "Q4_0 prompt of %d tokens: direct vs cuBLAS %g\n", n, diff);
            ck_assert_msg(diff < 1e-3, "%d tokens: direct vs cuBLAS %g", n, diff);
            ck_assert_int_eq(tok[0], tok[1]);
            tm_ref_free(ref);
        }
        free(lg[0]), free(lg[1]);
    }
    rl_cu_model_free(g);
    rl_model_free(m);
}
END_TEST

/* Prompt steps (more than 64 tokens: cuBLAS) on the resident fp16 copies
 * against the per-step dequantization, on a mixed file (split Q|K|V and
 * gate|up layers, an F16 O matrix used in place) and a Q4_0 one: the copies
 * hold exactly the fp16 values the staging writes, so the logits agree to
 * rounding. Then new weights (rl_cu_model_fill_random, the same seed on both
 * models): the copies must follow them, not keep the old ones. */
START_TEST(prompt_steps_on_fp16_copies_match_staged_dequantization)
{
    char path[128], err[256] = "";
    if (_i == 0)
        make_mixed("Q4_K_M", path, sizeof path);
    else
        make_q4_0(11, path, sizeof path);
    rl_model *m;
    ck_assert_msg(rl_model_load(path, &m, err, sizeof err) == 0, "%s", err);
    const rl_model_hparams *hp = &m->hp;
    uint32_t V = hp->n_vocab;
    rl_cu_model *g[2]; /* copies on, off */
    ck_assert_msg(rl_cu_model_from_cpu(m, 256, 1, 0, 256, false, RL_CU_W16_ON, &g[0], err, sizeof err) == 0, "%s", err);
    ck_assert_msg(rl_cu_model_from_cpu(m, 256, 1, 0, 256, false, RL_CU_W16_OFF, &g[1], err, sizeof err) == 0, "%s", err);
    /* every product's rows x cols in fp16, but the mixed file's F16 O of layer 2 (in place) */
    uint64_t E = hp->n_embd, F = hp->n_ff, qd = (uint64_t)hp->n_head * hp->head_dim,
             qkvd = qd + 2ull * hp->n_head_kv * hp->head_dim;
    uint64_t want = hp->n_layer * (qkvd * E + E * qd + 2 * F * E + E * F) * 2 - (_i == 0 ? E * qd * 2 : 0);
    ck_assert_uint_eq(rl_cu_model_w16_bytes(g[0]), want);
    ck_assert_uint_eq(rl_cu_model_w16_bytes(g[1]), 0);
    float *lg[2][2];
    int32_t prompt[100], tok[2][2];
    uint64_t s = tcu_seed("w16");
    prompt[0] = 1;
    for (int k = 1; k < 100; k++)
        prompt[k] = 3 + (int32_t)(tcu_rng_next(&s) % (V - 3));
    for (int round = 0; round < 2; round++) {
        for (int w = 0; w < 2; w++) {
            if (round == 1)
                ck_assert_int_eq(rl_cu_model_fill_random(g[w], 1234), 0);
            rl_cu_model_set_direct_max(g[w], 0);
            lg[round][w] = malloc(V * 4);
            for (uint32_t k = 0; k < V; k++)
                lg[round][w][k] = NAN;
            ck_assert_msg(rl_cu_model_prefill(g[w], 0, 0, prompt, 100, &tok[round][w], lg[round][w]) == 0, "%s",
                          rl_cu_last_error());
        }
        double d = tcu_rel_err_f(lg[round][0], lg[round][1], V);
        fprintf(stderr, "%s, %s weights: fp16 copies vs staged %g\n", _i ? "Q4_0" : "Q4_K_M", round ? "new" : "file", d);
        ck_assert_msg(d < 1e-5, "round %d: fp16 copies vs staged %g", round, d);
        ck_assert_int_eq(tok[round][0], tok[round][1]);
    }
    ck_assert_msg(tcu_rel_err_f(lg[1][1], lg[0][1], V) > 1e-2, "new weights did not change the logits");
    if (_i == 0) { /* and the file's weights against the float64 reference */
        tm_ref *ref = tm_ref_open(path);
        ck_assert_ptr_nonnull(ref);
        const double *r = NULL;
        for (int k = 0; k < 100; k++)
            r = tm_ref_step(ref, prompt[k]);
        double e = rel_err_d(lg[0][0], r, V);
        fprintf(stderr, "Q4_K_M prompt of 100 tokens on fp16 copies: rel err %g\n", e);
        ck_assert_msg(e < BOUND, "rel err %g", e);
        tm_ref_free(ref);
    }
    for (int r = 0; r < 2; r++)
        free(lg[r][0]), free(lg[r][1]);
    rl_cu_model_free(g[0]);
    rl_cu_model_free(g[1]);
    rl_model_free(m);
}
END_TEST

/* Q, K, V biases (Qwen2) on a layer whose V has its own type (Q, K, V split
 * on the GPU): prompt steps on the fp16 copies (one GEMM over the
 * concatenated parts, then the bias over every Q|K|V column) and on the
 * staging (the split layer's own GEMM) against the float64 reference. */
START_TEST(qwen2_split_qkv_prompt_steps_add_every_bias)
{
    char path[64] = "/tmp/rl_cu_qwen2_XXXXXX", err[256] = "";
    tm_spec sp = tm_default_spec(RL_TYPE_Q8_0);
    sp.arch = "qwen2";
    sp.v_own_type = true;
    sp.v_type = RL_TYPE_Q4_0;
    ck_assert_int_eq(tm_make_model(&sp, path), 0);
    rl_model *m;
    ck_assert_msg(rl_model_load(path, &m, err, sizeof err) == 0, "%s", err);
    ck_assert_ptr_nonnull(m->layers[0].bq);
    ck_assert_int_ne(m->layers[0].wv.type, m->layers[0].wq.type); /* split */
    uint32_t V = m->hp.n_vocab;
    int32_t prompt[100];
    uint64_t s = tcu_seed("qwen2 split");
    prompt[0] = 1;
    for (int k = 1; k < 100; k++)
        prompt[k] = 3 + (int32_t)(tcu_rng_next(&s) % (V - 3));
    tm_ref *ref = tm_ref_open(path);
    ck_assert_ptr_nonnull(ref);
    const double *want = NULL;
    for (int k = 0; k < 100; k++)
        want = tm_ref_step(ref, prompt[k]);
    float *lg = malloc(V * 4);
    for (int w = 0; w < 2; w++) {
        rl_cu_model *g;
        ck_assert_msg(rl_cu_model_from_cpu(m, 256, 1, 0, 256, false, w ? RL_CU_W16_OFF : RL_CU_W16_ON, &g, err,
                                           sizeof err) == 0, "%s", err);
        ck_assert(w ? rl_cu_model_w16_bytes(g) == 0 : rl_cu_model_w16_bytes(g) > 0);
        const rl_cu_mat *parts[3]; /* Q and K of one type share a matrix, V its own */
        const char *qk = getenv("RL_CU_QK_FUSE");
        const bool three = qk && qk[0] == '0'; /* Q|K fused only with V */
        ck_assert_int_eq(rl_cu_layer_qkv_parts(&g->layers[0], parts), three ? 3 : 2);
        ck_assert_int_eq(parts[0]->rows, (int64_t)(m->hp.n_head + (three ? 0 : m->hp.n_head_kv)) * m->hp.head_dim);
        ck_assert_int_eq(parts[three ? 2 : 1]->type, RL_TYPE_Q4_0);
        for (uint32_t k = 0; k < V; k++)
            lg[k] = NAN;
        int32_t tok;
        ck_assert_msg(rl_cu_model_prefill(g, 0, 0, prompt, 100, &tok, lg) == 0, "%s", rl_cu_last_error());
        double e = rel_err_d(lg, want, V);
        fprintf(stderr, "qwen2, split Q|K|V, 100-token prompt, %s: rel err %g\n", w ? "staged" : "fp16 copies", e);
        ck_assert_msg(e < BOUND, "%s: rel err %g", w ? "staged" : "fp16 copies", e);
        rl_cu_model_free(g);
    }
    free(lg);
    tm_ref_free(ref);
    rl_model_free(m);
    unlink(path);
}
END_TEST

/* Greedy tokens of one request through the engine. */
static int generate(rl_engine *e, const int32_t *prompt, uint32_t np, int32_t *out, int n)
{
    rl_seq_desc d = {.prompt = prompt, .n_prompt = np, .max_tokens = (uint32_t)n,
                     .sampling = {.temperature = 0, .top_p = 1, .repeat_penalty = 1}};
    rl_seq *s;
    ck_assert_int_eq(e->ops->seq_new(e, &d, &s), 0);
    int k = 0;
    for (int guard = 0; k < n && guard < 4 * n + 8; guard++) {
        rl_step_item it = {.seq = s};
        ck_assert_int_eq(e->ops->step(e, &it, 1), 0);
        ck_assert_int_eq(it.status, 0);
        if (it.token >= 0)
            out[k++] = it.token;
    }
    e->ops->seq_free(e, s);
    return k;
}

START_TEST(engine_generates_from_mixed_file)
{
    char path[128], err[256] = "";
    make_mixed(mixes[_i], path, sizeof path);
    rl_engine *gpu;
    ck_assert_msg(rl_engine_cuda_create(path, 1, &gpu, err, sizeof err) == 0, "%s", err);
    rl_engine_info info;
    gpu->ops->get_info(gpu, &info);
    ck_assert_str_eq(info.backend, "cuda");
    int32_t prompt[6] = {1, 17, 42, 99, 7, 250}, a[12], b[12];
    int na = generate(gpu, prompt, 6, a, 12), nb = generate(gpu, prompt, 6, b, 12);
    ck_assert_int_eq(na, 12);
    ck_assert_int_eq(na, nb);
    for (int i = 0; i < na; i++) {
        ck_assert(a[i] >= 0 && a[i] < 300);
        ck_assert_int_eq(a[i], b[i]); /* greedy: the same tokens again */
    }
    gpu->ops->destroy(gpu);
}
END_TEST

int main(int argc, char **argv)
{
    /* argv[1] (meson), else the build tree's tools/ringlm-mkmodel beside tests/cuda/ (GPU scripts). */
    static char guess[PATH_MAX + 32];
    if (argc >= 2) {
        mkmodel = argv[1];
    } else {
        ssize_t k = readlink("/proc/self/exe", guess, PATH_MAX);
        char *slash = k > 0 ? (guess[k] = 0, strrchr(guess, '/')) : NULL;
        if (!slash) {
            fprintf(stderr, "usage: test_cu_mixed RINGLM-MKMODEL\n");
            return 2;
        }
        strcpy(slash, "/../../tools/ringlm-mkmodel");
        mkmodel = guess;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/rl_cu_mixed_XXXXXX");
    if (!mkdtemp(tmpdir))
        return 2;
    Suite *s = suite_create("cuda_mixed");
    TCase *tc = tcase_create("mixed");
    tcase_set_timeout(tc, 300);
    /* x {f16, q8_0} KV, deferred norms; x f16 KV, norm kernels */
    tcase_add_loop_test(tc, mixed_logits_match_reference_after_prefill_and_batched_decode, 0, 8);
    tcase_add_loop_test(tc, engine_generates_from_mixed_file, 0, 2);
    tcase_add_loop_test(tc, legacy_32_block_types_go_up_as_q8_0_and_match_reference, 0, 2);
    tcase_add_test(tc, q4_0_prompt_steps_direct_products_match_cublas_and_reference);
    tcase_add_loop_test(tc, one_sequence_steps_on_bulk_copies_match_reference, 0, 8);
    tcase_add_loop_test(tc, prompt_steps_on_fp16_copies_match_staged_dequantization, 0, 2);
    tcase_add_test(tc, qwen2_split_qkv_prompt_steps_add_every_bias);
    suite_add_tcase(s, tc);
    int rc = tcu_main(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return rc;
}
