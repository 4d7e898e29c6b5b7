/* test_batch_engine.c - continuous batching in the model engine: batched greedy
 * output equals solo output, shared prefixes never leak, preemption under a
 * tiny KV pool recomputes exactly, freeing returns blocks at once. Built twice:
 * on the CPU engine, and with TB_CUDA on the CUDA engine (skips without a GPU). */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tb_util.h"

#define NV 320 /* vocabulary of the test model */

static void fill(int32_t *t, uint32_t n, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 12345u;
    for (uint32_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        t[i] = (int32_t)(3 + (x >> 8) % (NV - 3));
    }
}

static void expect_solo(const tb_req *r, uint32_t n, uint32_t step_tokens)
{
    for (uint32_t i = 0; i < n; i++) {
        int32_t solo[TB_MAXGEN];
        tb_solo(&r[i], step_tokens, solo);
        ck_assert_uint_eq(r[i].got, r[i].n_gen);
        for (uint32_t k = 0; k < r[i].n_gen; k++)
            ck_assert_msg(r[i].out[k] == solo[k], "request %u token %u: batched %d, solo %d", i, k, r[i].out[k],
                          solo[k]);
    }
}

START_TEST(batched_greedy_equals_solo)
{
    /* lengths around the step budget: chunked prefills mixed with decodes */
    static const uint32_t len[6] = {5, 40, 17, 3, 70, 16};
    int32_t prompts[6][70];
    tb_req r[6];
    memset(r, 0, sizeof r);
    for (int i = 0; i < 6; i++) {
        fill(prompts[i], len[i], (uint32_t)i + 1);
        r[i] = (tb_req){.prompt = prompts[i], .n_prompt = len[i], .n_gen = 20, .start_step = (uint32_t)i * 3};
    }
    rl_engine *e = tb_engine(24, 0, 0);
    tb_run(e, r, 6);
    rl_engine_stats st;
    tb_stats(e, &st);
    ck_assert_uint_ge(st.max_batch, 4); /* they really ran together */
    ck_assert_uint_eq(st.step_tokens, 24);
    ck_assert_uint_le(st.batch_tokens, st.steps * 24); /* the budget held */
    /* the steps' time, and the forward passes' share of it */
    ck_assert(st.forward_ns > 0 && st.step_ns >= st.forward_ns);
    e->ops->destroy(e);
    expect_solo(r, 6, 24);
}
END_TEST

START_TEST(long_prompt_does_not_stall_decodes)
{
    /* a 200-token prompt arrives while another request decodes: the decoder
     * gets a token in every step while the prompt is chunked in */
    int32_t a[8], b[200];
    fill(a, 8, 7);
    fill(b, 200, 8);
    tb_req r[2] = {{.prompt = a, .n_prompt = 8, .n_gen = 30},
                   {.prompt = b, .n_prompt = 200, .n_gen = 4, .start_step = 2}};
    rl_engine *e = tb_engine(32, 0, 0);
    uint32_t steps = tb_run(e, r, 2);
    e->ops->destroy(e);
    /* request 0: first token at step 0 then one per step, uninterrupted */
    ck_assert_uint_eq(r[0].first_step, 0);
    ck_assert_uint_ge(steps, 30);
    /* request 1 needed ceil(200 / 31) chunk steps at least before its first token */
    ck_assert_uint_ge(r[1].first_step, 2 + 200 / 32);
    expect_solo(r, 2, 32);
}
END_TEST

START_TEST(shared_prefix_is_reused_and_never_leaks)
{
    enum { N = 8, PRE = 50 };
    int32_t p[N][PRE + 12];
    tb_req r[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++) {
        fill(p[i], PRE, 99); /* the same system prompt */
        fill(p[i] + PRE, 3 + (uint32_t)i, 1000 + (uint32_t)i); /* distinct questions */
        r[i] = (tb_req){.prompt = p[i], .n_prompt = PRE + 3 + (uint32_t)i, .n_gen = 16,
                        .start_step = i == 0 ? 0 : 4 + (uint32_t)i};
    }
    rl_engine *e = tb_engine(64, 0, 0);
    tb_run(e, r, N);
    rl_engine_stats st;
    tb_stats(e, &st);
    /* each later request found the 3 full blocks of the system prompt */
    ck_assert_uint_ge(st.prefix_hits, N - 1);
    ck_assert_uint_ge(st.prefix_hit_tokens, (uint64_t)(N - 1) * 48);
    ck_assert_uint_eq(st.kv_blocks_used, 0);
    ck_assert_uint_gt(st.kv_blocks_cached, 0);
    e->ops->destroy(e);
    expect_solo(r, N, 64);
}
END_TEST

START_TEST(identical_prompts_diverge_only_by_their_own_tokens)
{
    /* same prompt, one block exactly: the second attaches the first's block,
     * then both write their own continuation into separate blocks */
    int32_t p[32], q[33];
    fill(p, 32, 5);
    memcpy(q, p, sizeof p);
    q[32] = 77;
    tb_req r[3] = {{.prompt = p, .n_prompt = 32, .n_gen = 24},
                   {.prompt = p, .n_prompt = 32, .n_gen = 24, .start_step = 3},
                   {.prompt = q, .n_prompt = 33, .n_gen = 24, .start_step = 5}};
    rl_engine *e = tb_engine(64, 0, 0);
    tb_run(e, r, 3);
    e->ops->destroy(e);
    ck_assert_mem_eq(r[0].out, r[1].out, sizeof(int32_t) * 24);
    expect_solo(r, 3, 64);
}
END_TEST

START_TEST(preemption_under_tiny_pool_keeps_outputs)
{
    /* 12 blocks: 4 requests of ~40 positions (3 blocks each) plus growth do
     * not fit together; some are preempted and recomputed */
    enum { N = 4 };
    int32_t p[N][30];
    tb_req r[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++) {
        fill(p[i], 30, 300 + (uint32_t)i);
        r[i] = (tb_req){.prompt = p[i], .n_prompt = 30, .n_gen = 30, .start_step = (uint32_t)i};
    }
    rl_engine *e = tb_engine(64, 10, 128);
    tb_run(e, r, N);
    rl_engine_stats st;
    tb_stats(e, &st);
    ck_assert_uint_gt(st.preempted, 0);
    ck_assert_uint_eq(st.kv_blocks_total, 10);
    ck_assert_uint_eq(st.kv_blocks_used, 0);
    e->ops->destroy(e);
    expect_solo(r, N, 64);
}
END_TEST

START_TEST(preemption_takes_the_low_priority_request)
{
    /* the pool fits one request; a latency-critical one arriving later takes
     * the blocks of the running normal one, and finishes first */
    int32_t a[30], b[30];
    fill(a, 30, 11);
    fill(b, 30, 12);
    tb_req r[2] = {{.prompt = a, .n_prompt = 30, .n_gen = 30},
                   {.prompt = b, .n_prompt = 30, .n_gen = 10, .start_step = 3, .priority = 1}};
    rl_engine *e = tb_engine(64, 4, 64);
    tb_run(e, r, 2);
    rl_engine_stats st;
    tb_stats(e, &st);
    ck_assert_uint_ge(st.preempted, 1);
    e->ops->destroy(e);
    ck_assert_uint_eq(r[1].first_step, 3);
    expect_solo(r, 2, 64);
}
END_TEST

START_TEST(oversized_request_fails_alone)
{
    /* a request that cannot fit the pool even alone gets -ENOSPC */
    int32_t a[60];
    fill(a, 60, 13);
    rl_engine *e = tb_engine(64, 2, 128);
    rl_seq_desc d = {.prompt = a, .n_prompt = 60, .max_tokens = 4,
                     .sampling = {.temperature = 0, .top_p = 1, .repeat_penalty = 1}};
    rl_seq *s;
    ck_assert_int_eq(e->ops->seq_new(e, &d, &s), 0);
    rl_step_item it = {.seq = s};
    ck_assert_int_eq(e->ops->step(e, &it, 1), 0);
    ck_assert_int_eq(it.status, -ENOSPC);
    e->ops->seq_free(e, s);
    e->ops->destroy(e);
}
END_TEST

START_TEST(freeing_a_sequence_returns_its_blocks_at_once)
{
    int32_t a[40], b[40];
    fill(a, 40, 21);
    fill(b, 40, 22);
    rl_engine *e = tb_engine(64, 0, 0);
    rl_seq_desc d = {.prompt = a, .n_prompt = 40, .max_tokens = 20,
                     .sampling = {.temperature = 0, .top_p = 1, .repeat_penalty = 1}};
    rl_seq *s, *t;
    ck_assert_int_eq(e->ops->seq_new(e, &d, &s), 0);
    rl_step_item it = {.seq = s};
    ck_assert_int_eq(e->ops->step(e, &it, 1), 0);
    rl_engine_stats before, mid, after;
    tb_stats(e, &before);
    d.prompt = b;
    ck_assert_int_eq(e->ops->seq_new(e, &d, &t), 0);
    rl_step_item two[2] = {{.seq = s}, {.seq = t}};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(e->ops->step(e, two, 2), 0);
    tb_stats(e, &mid);
    ck_assert_uint_gt(mid.kv_blocks_used, before.kv_blocks_used);
    e->ops->seq_free(e, t); /* cancelled mid-generation */
    tb_stats(e, &after);
    ck_assert_uint_eq(after.kv_blocks_used, before.kv_blocks_used);
    e->ops->seq_free(e, s);
    tb_stats(e, &after);
    ck_assert_uint_eq(after.kv_blocks_used, 0);
    ck_assert_uint_eq(after.kv_blocks_used + after.kv_blocks_free + after.kv_blocks_cached, after.kv_blocks_total);
    e->ops->destroy(e);
}
END_TEST

/* Sampled requests (temperature, top-k, top-p, min-p; each its own seed) draw
 * the same tokens alone and batched: the rows of a step are sampled on
 * several threads, each from its own sampler. */
static void run_sampled(rl_engine *e, rl_seq **s, uint32_t n, uint32_t n_tok, int32_t (*out)[12])
{
    rl_step_item it[4];
    for (uint32_t k = 0; k < n_tok;) {
        for (uint32_t i = 0; i < n; i++)
            it[i] = (rl_step_item){.seq = s[i]};
        ck_assert_int_eq(e->ops->step(e, it, n), 0);
        bool any = false;
        for (uint32_t i = 0; i < n; i++) {
            ck_assert_int_eq(it[i].status, 0);
            if (it[i].token >= 0) {
                out[i][k] = it[i].token;
                any = true;
            }
        }
        k += any;
    }
}

START_TEST(sampled_requests_draw_the_same_alone_and_batched)
{
    int32_t prompts[4][9];
    rl_seq_desc d[4];
    for (int i = 0; i < 4; i++) {
        fill(prompts[i], 9, (uint32_t)i + 40);
        d[i] = (rl_seq_desc){.prompt = prompts[i], .n_prompt = 9, .max_tokens = 12,
                             .sampling = {.temperature = 1.2f, .top_k = 40, .top_p = 0.95f, .min_p = 0.02f,
                                          .repeat_penalty = 1, .seed = 1000u + (uint64_t)i}};
    }
    rl_engine *e = tb_engine(64, 0, 0);
    int32_t solo[4][12], batched[4][12];
    for (int i = 0; i < 4; i++) {
        rl_seq *s;
        ck_assert_int_eq(e->ops->seq_new(e, &d[i], &s), 0);
        run_sampled(e, &s, 1, 12, &solo[i]);
        e->ops->seq_free(e, s);
    }
    rl_seq *all[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(e->ops->seq_new(e, &d[i], &all[i]), 0);
    run_sampled(e, all, 4, 12, batched); /* the same prompt length: every step takes all four */
    bool differ = false;
    for (int i = 0; i < 4; i++) {
        for (int k = 0; k < 12; k++)
            ck_assert_msg(batched[i][k] == solo[i][k], "request %d token %d: batched %d, solo %d", i, k,
                          batched[i][k], solo[i][k]);
        differ |= memcmp(solo[i], solo[0], sizeof solo[0]) != 0;
        e->ops->seq_free(e, all[i]);
    }
    ck_assert(differ); /* the seeds (and prompts) made them draw differently */
    e->ops->destroy(e);
}
END_TEST

#ifdef TB_CUDA
/* The CUDA engine sends a sampled row's k best logits instead of the row:
 * the tokens are those the whole rows give (RL_CU_TOPK=0), batched, for k
 * 40 and 256 and beside a request the device cannot serve so (penalty). */
START_TEST(device_top_k_draws_as_the_whole_row)
{
    int32_t prompts[4][9];
    rl_seq_desc d[4];
    static const int32_t ks[4] = {40, 256, 40, 7};
    for (int i = 0; i < 4; i++) {
        fill(prompts[i], 9, (uint32_t)i + 70);
        d[i] = (rl_seq_desc){.prompt = prompts[i], .n_prompt = 9, .max_tokens = 12,
                             .sampling = {.temperature = 1.5f, .top_k = ks[i], .top_p = 0.98f, .min_p = 0.01f,
                                          .repeat_penalty = i == 2 ? 1.2f : 1, .repeat_last_n = 16,
                                          .seed = 31u + (uint64_t)i}};
    }
    int32_t got[2][4][12];
    for (int mode = 0; mode < 2; mode++) {
        if (mode == 0)
            setenv("RL_CU_TOPK", "0", 1);
        rl_engine *e = tb_engine(64, 0, 0);
        unsetenv("RL_CU_TOPK");
        rl_seq *all[4];
        for (int i = 0; i < 4; i++)
            ck_assert_int_eq(e->ops->seq_new(e, &d[i], &all[i]), 0);
        run_sampled(e, all, 4, 12, got[mode]);
        rl_engine_stats st;
        e->ops->get_stats(e, &st);
        ck_assert_uint_ge(st.sampled, 4 * 12);
        if (mode == 0)
            ck_assert_uint_eq(st.sampled_top_k, 0);
        else /* all but the penalized request's draws after its first */
            ck_assert_uint_ge(st.sampled_top_k, 3 * 12);
        for (int i = 0; i < 4; i++)
            e->ops->seq_free(e, all[i]);
        e->ops->destroy(e);
    }
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 12; k++)
            ck_assert_msg(got[1][i][k] == got[0][i][k], "request %d token %d: top-k %d, whole row %d", i, k,
                          got[1][i][k], got[0][i][k]);
}
END_TEST

/* Log-probabilities from the device's candidates and normalizer (fp32) are
 * the host's from the whole row (double), and the tokens are the same:
 * greedy, sampled with top-k above and below the count asked for. */
START_TEST(device_logprobs_match_the_whole_rows)
{
    enum { NS = 3, NT = 8, NL = 6 };
    int32_t prompts[NS][9];
    rl_seq_desc d[NS];
    static const int32_t ks[NS] = {40, 40, 3};
    for (int i = 0; i < NS; i++) {
        fill(prompts[i], 9, (uint32_t)i + 120);
        d[i] = (rl_seq_desc){.prompt = prompts[i], .n_prompt = 9, .max_tokens = NT, .n_logprobs = NL,
                             .sampling = {.temperature = i ? 1.2f : 0, .top_k = ks[i], .top_p = 1,
                                          .repeat_penalty = 1, .seed = 77u + (uint64_t)i}};
    }
    static rl_token_logprob lp[2][NS][NT][1 + NL];
    int32_t tok[2][NS][NT];
    for (int mode = 0; mode < 2; mode++) {
        if (mode == 0)
            setenv("RL_CU_TOPK", "0", 1);
        rl_engine *e = tb_engine(64, 0, 0);
        unsetenv("RL_CU_TOPK");
        rl_seq *sq[NS];
        for (int i = 0; i < NS; i++)
            ck_assert_int_eq(e->ops->seq_new(e, &d[i], &sq[i]), 0);
        for (uint32_t k = 0; k < NT;) {
            rl_step_item it[NS];
            for (int i = 0; i < NS; i++)
                it[i] = (rl_step_item){.seq = sq[i]};
            ck_assert_int_eq(e->ops->step(e, it, NS), 0);
            if (it[0].token < 0)
                continue;
            for (int i = 0; i < NS; i++) {
                tok[mode][i][k] = it[i].token;
                ck_assert_ptr_nonnull(it[i].logprobs);
                memcpy(lp[mode][i][k], it[i].logprobs, sizeof lp[mode][i][k]);
            }
            k++;
        }
        rl_engine_stats st;
        e->ops->get_stats(e, &st);
        ck_assert_uint_eq(st.sampled_top_k, mode ? 2 * NT : 0); /* the greedy one is not counted */
        for (int i = 0; i < NS; i++)
            e->ops->seq_free(e, sq[i]);
        e->ops->destroy(e);
    }
    for (int i = 0; i < NS; i++)
        for (int k = 0; k < NT; k++) {
            ck_assert_int_eq(tok[1][i][k], tok[0][i][k]);
            for (int a = 0; a <= NL; a++) {
                const rl_token_logprob *x = &lp[1][i][k][a], *y = &lp[0][i][k][a];
                ck_assert_msg(x->id == y->id && fabsf(x->logprob - y->logprob) <= 1e-4f * (1 + fabsf(y->logprob)),
                              "request %d token %d #%d: device %d %g, row %d %g", i, k, a, x->id, x->logprob, y->id,
                              y->logprob);
            }
        }
}
END_TEST

/* More sampled outputs than a graph step holds (70 > 64): the cuBLAS path,
 * its outputs in two chunks, candidates from each; the same tokens and
 * log-probabilities as whole rows. */
START_TEST(device_top_k_on_the_large_path_in_chunks)
{
    enum { NS = 70, NT = 3, NL = 3 };
    static int32_t prompts[NS][3];
    static rl_seq_desc d[NS];
    for (int i = 0; i < NS; i++) {
        fill(prompts[i], 3, (uint32_t)i + 200);
        d[i] = (rl_seq_desc){.prompt = prompts[i], .n_prompt = 3, .max_tokens = NT, .n_logprobs = i % 2 ? NL : 0,
                             .sampling = {.temperature = 1.1f, .top_k = 40, .top_p = 1, .repeat_penalty = 1,
                                          .seed = 900u + (uint64_t)i}};
    }
    static int32_t tok[2][NS][NT];
    static rl_token_logprob lp[2][NS][NT][1 + NL];
    uint64_t top_draws = 0;
    for (int mode = 0; mode < 2; mode++) {
        if (mode == 0)
            setenv("RL_CU_TOPK", "0", 1);
        rl_engine *e = tb_engine(512, 0, 0);
        unsetenv("RL_CU_TOPK");
        static rl_seq *sq[NS];
        for (int i = 0; i < NS; i++)
            ck_assert_int_eq(e->ops->seq_new(e, &d[i], &sq[i]), 0);
        for (uint32_t k = 0; k < NT;) {
            static rl_step_item it[NS];
            for (int i = 0; i < NS; i++)
                it[i] = (rl_step_item){.seq = sq[i]};
            ck_assert_int_eq(e->ops->step(e, it, NS), 0);
            for (int i = 0; i < NS; i++) { /* every prompt fits the first step: all or none */
                ck_assert_int_ge(it[i].token, 0);
                tok[mode][i][k] = it[i].token;
                if (i % 2)
                    memcpy(lp[mode][i][k], it[i].logprobs, sizeof lp[mode][i][k]);
            }
            k++;
        }
        rl_engine_stats st;
        e->ops->get_stats(e, &st);
        if (mode)
            top_draws = st.sampled_top_k;
        for (int i = 0; i < NS; i++)
            e->ops->seq_free(e, sq[i]);
        e->ops->destroy(e);
    }
    ck_assert_uint_eq(top_draws, (uint64_t)NS * NT);
    for (int i = 0; i < NS; i++)
        for (int k = 0; k < NT; k++) {
            ck_assert_msg(tok[1][i][k] == tok[0][i][k], "request %d token %d: top-k %d, whole row %d", i, k,
                          tok[1][i][k], tok[0][i][k]);
            for (int a = 0; i % 2 && a <= NL; a++)
                ck_assert(lp[1][i][k][a].id == lp[0][i][k][a].id &&
                          fabsf(lp[1][i][k][a].logprob - lp[0][i][k][a].logprob) <=
                              1e-4f * (1 + fabsf(lp[0][i][k][a].logprob)));
        }
}
END_TEST
#endif

/* Asking for log-probabilities changes no token (greedy, sampled, with a
 * repetition penalty: the values are the model's, before it) and they agree
 * with the tokens: the chosen one first, the best after it in order. */
START_TEST(logprobs_leave_the_tokens_as_they_were)
{
    enum { NS = 3, NT = 10, NL = 4 };
    int32_t prompts[NS][9];
    rl_seq_desc d[NS];
    for (int i = 0; i < NS; i++) {
        fill(prompts[i], 9, (uint32_t)i + 90);
        d[i] = (rl_seq_desc){.prompt = prompts[i], .n_prompt = 9, .max_tokens = NT,
                             .sampling = {.temperature = i ? 1.3f : 0, .top_k = 40, .top_p = 1,
                                          .repeat_penalty = i == 2 ? 1.5f : 1, .repeat_last_n = 32,
                                          .seed = 5u + (uint64_t)i}};
    }
    rl_engine *e = tb_engine(64, 0, 0);
    int32_t tok[2][NS][NT];
    int matched_alt = 0;
    for (int with = 0; with < 2; with++) {
        rl_seq *s[NS];
        for (int i = 0; i < NS; i++) {
            d[i].n_logprobs = with ? NL : 0;
            ck_assert_int_eq(e->ops->seq_new(e, &d[i], &s[i]), 0);
        }
        for (uint32_t k = 0; k < NT;) {
            rl_step_item it[NS];
            for (int i = 0; i < NS; i++)
                it[i] = (rl_step_item){.seq = s[i]};
            ck_assert_int_eq(e->ops->step(e, it, NS), 0);
            if (it[0].token < 0)
                continue; /* (the same prompt length: all or none) */
            for (int i = 0; i < NS; i++) {
                ck_assert_int_ge(it[i].token, 0);
                tok[with][i][k] = it[i].token;
                if (!with) {
                    ck_assert_ptr_null(it[i].logprobs);
                    continue;
                }
                const rl_token_logprob *g = it[i].logprobs;
                ck_assert_ptr_nonnull(g);
                ck_assert_int_eq(g[0].id, it[i].token);
                ck_assert(g[0].logprob <= 0 && isfinite(g[0].logprob));
                double mass = 0;
                for (int a = 1; a <= NL; a++) {
                    ck_assert(g[a].logprob <= 0 && isfinite(g[a].logprob));
                    if (a > 1)
                        ck_assert(g[a].logprob < g[a - 1].logprob ||
                                  (g[a].logprob == g[a - 1].logprob && g[a].id > g[a - 1].id));
                    if (g[a].id == g[0].id) {
                        ck_assert_float_eq(g[a].logprob, g[0].logprob); /* the model's value, whatever the penalty */
                        matched_alt += i > 0;
                    }
                    mass += exp(g[a].logprob);
                }
                ck_assert(mass <= 1 + 1e-4);
                if (i == 0) /* greedy: the best itself (no penalty) */
                    ck_assert_int_eq(g[1].id, g[0].id);
            }
            k++;
        }
        for (int i = 0; i < NS; i++)
            e->ops->seq_free(e, s[i]);
    }
    for (int i = 0; i < NS; i++)
        for (int k = 0; k < NT; k++)
            ck_assert_msg(tok[1][i][k] == tok[0][i][k], "request %d token %d: %d with log-probabilities, %d without",
                          i, k, tok[1][i][k], tok[0][i][k]);
    ck_assert_int_gt(matched_alt, 0); /* some sampled token was among the best: its values compared */
    e->ops->destroy(e);
}
END_TEST

START_TEST(stories_batched_with_shared_prefix_equals_solo)
{
    /* the real model (F32 weights, F32 KV here): 6 requests sharing a
     * 40-token prefix, arriving over time, each equal to its solo run */
    const char *dir = getenv("RL_SHARED_DIR");
    static char path[512];
    if (!dir) {
        printf("skip: RL_SHARED_DIR not set\n");
        return;
    }
    snprintf(path, sizeof path, "%s/models/stories260K.gguf", dir);
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("skip: %s missing\n", path);
        return;
    }
    fclose(f);
    tb_use_model(path);
    enum { N = 6, PRE = 40 };
    int32_t p[N][PRE + 10];
    tb_req r[N];
    memset(r, 0, sizeof r);
    for (int i = 0; i < N; i++) {
        fill(p[i], PRE, 4242);
        p[i][0] = 1; /* BOS */
        fill(p[i] + PRE, 2 + (uint32_t)i, 50 + (uint32_t)i);
        r[i] = (tb_req){.prompt = p[i], .n_prompt = PRE + 2 + (uint32_t)i, .n_gen = 24, .start_step = (uint32_t)i * 2};
    }
    rl_engine *e = tb_engine(32, 0, 256);
    tb_run(e, r, N);
    rl_engine_stats st;
    tb_stats(e, &st);
    ck_assert_uint_ge(st.prefix_hits, 1);
    ck_assert_uint_ge(st.max_batch, 3);
    e->ops->destroy(e);
    expect_solo(r, N, 32);
    tb_use_model(NULL);
}
END_TEST

#ifdef TB_CUDA
int tb_cuda_setup(void);
#endif

int main(void)
{
#ifdef TB_CUDA
    /* the same scenarios on the GPU engine: its batched tokens must equal its solo tokens */
    int skip = tb_cuda_setup();
    if (skip)
        return skip;
#endif
    Suite *s = suite_create("batch_engine");
    TCase *tc = tcase_create("engine");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, batched_greedy_equals_solo);
    tcase_add_test(tc, long_prompt_does_not_stall_decodes);
    tcase_add_test(tc, shared_prefix_is_reused_and_never_leaks);
    tcase_add_test(tc, identical_prompts_diverge_only_by_their_own_tokens);
    tcase_add_test(tc, preemption_under_tiny_pool_keeps_outputs);
    tcase_add_test(tc, preemption_takes_the_low_priority_request);
    tcase_add_test(tc, oversized_request_fails_alone);
    tcase_add_test(tc, freeing_a_sequence_returns_its_blocks_at_once);
    tcase_add_test(tc, sampled_requests_draw_the_same_alone_and_batched);
    tcase_add_test(tc, logprobs_leave_the_tokens_as_they_were);
#ifdef TB_CUDA
    tcase_add_test(tc, device_top_k_draws_as_the_whole_row);
    tcase_add_test(tc, device_logprobs_match_the_whole_rows);
    tcase_add_test(tc, device_top_k_on_the_large_path_in_chunks);
#endif
    tcase_add_test(tc, stories_batched_with_shared_prefix_equals_solo);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
#ifdef TB_CUDA
    srunner_set_fork_status(sr, CK_NOFORK); /* CUDA does not survive fork() once initialised */
#endif
    srunner_run_all(sr, CK_ENV);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
