/* test_model_batch.c - results must not depend on batching or chunking. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tm_util.h"

static char g_path[64];

static void make(rl_type t)
{
    strcpy(g_path, "/tmp/rl_test_batch_XXXXXX");
    tm_spec sp = tm_default_spec(t);
    ck_assert_int_eq(tm_make_model(&sp, g_path), 0);
}

/* Greedy-decode n tokens for each of 3 prompts: alone (one sequence per forward
 * call) or together (all three in every forward call). */
#define NSEQ 3
#define NGEN 12
static const int32_t prompts[NSEQ][6] = {{1, 5, 9, 200, 31, 7}, {1, 300, 2}, {1, 44, 45, 46, 47}};
static const uint32_t plen[NSEQ] = {6, 3, 5};

static void run_greedy(rl_type t, bool together, int32_t out[NSEQ][NGEN], float *last_logits)
{
    tm_run r;
    ck_assert_int_eq(tm_run_open(&r, g_path, RL_TYPE_F32, 64, 2, 64), 0);
    uint32_t V = r.m->hp.n_vocab;
    float *lg = malloc(sizeof(float) * V * NSEQ);
    rl_kv_seq kv[NSEQ] = {0};
    int32_t next[NSEQ];
    if (together) {
        rl_fwd_seq fs[NSEQ];
        for (int s = 0; s < NSEQ; s++) {
            ck_assert_int_eq(rl_kv_reserve(r.kv, &kv[s], plen[s] + NGEN), 0);
            fs[s] = (rl_fwd_seq){.kv = &kv[s], .tokens = prompts[s], .n_tok = plen[s], .logits = lg + (size_t)s * V};
        }
        ck_assert_int_eq(rl_forward(r.f, fs, NSEQ), 0);
        for (int g = 0; g < NGEN; g++) {
            for (int s = 0; s < NSEQ; s++) {
                out[s][g] = next[s] = tm_argmax_f(lg + (size_t)s * V, V);
                fs[s] = (rl_fwd_seq){.kv = &kv[s], .tokens = &next[s], .n_tok = 1, .logits = lg + (size_t)s * V};
            }
            ck_assert_int_eq(rl_forward(r.f, fs, NSEQ), 0);
        }
    } else {
        for (int s = 0; s < NSEQ; s++) {
            ck_assert_int_eq(tm_run_feed(&r, &kv[s], prompts[s], plen[s], lg + (size_t)s * V), 0);
            for (int g = 0; g < NGEN; g++) {
                out[s][g] = next[s] = tm_argmax_f(lg + (size_t)s * V, V);
                ck_assert_int_eq(tm_run_feed(&r, &kv[s], &next[s], 1, lg + (size_t)s * V), 0);
            }
        }
    }
    memcpy(last_logits, lg, sizeof(float) * V * NSEQ);
    for (int s = 0; s < NSEQ; s++)
        rl_kv_release(r.kv, &kv[s]);
    free(lg);
    tm_run_close(&r);
}

static void batched_equals_alone(rl_type t, bool exact_logits)
{
    make(t);
    int32_t a[NSEQ][NGEN], b[NSEQ][NGEN];
    float *la = malloc(sizeof(float) * 320 * NSEQ), *lb = malloc(sizeof(float) * 320 * NSEQ);
    run_greedy(t, false, a, la);
    run_greedy(t, true, b, lb);
    ck_assert_mem_eq(a, b, sizeof a);
    if (exact_logits)
        ck_assert_mem_eq(la, lb, sizeof(float) * 320 * NSEQ);
    free(la);
    free(lb);
    unlink(g_path);
}

START_TEST(f32_batched_sequences_give_identical_logits_and_tokens) { batched_equals_alone(RL_TYPE_F32, true); }
END_TEST
START_TEST(q4_0_batched_sequences_give_identical_tokens) { batched_equals_alone(RL_TYPE_Q4_0, true); }
END_TEST
START_TEST(q8_0_batched_sequences_give_identical_tokens) { batched_equals_alone(RL_TYPE_Q8_0, true); }
END_TEST
START_TEST(q4_k_batched_sequences_give_identical_tokens) { batched_equals_alone(RL_TYPE_Q4_K, true); }
END_TEST

/* A 40-token prompt fed at once or in chunks of 1, 7 and 16 tokens. */
static void chunked(rl_type t, rl_type kvt)
{
    make(t);
    int32_t p[40];
    for (int i = 0; i < 40; i++)
        p[i] = (i * 37 + 11) % 320;
    const uint32_t chunks[] = {40, 1, 7, 16};
    float ref[320], lg[320];
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        tm_run r;
        ck_assert_int_eq(tm_run_open(&r, g_path, kvt, 64, 2, 64), 0);
        rl_kv_seq kv = {0};
        for (uint32_t i = 0; i < 40; i += chunks[c]) {
            uint32_t n = 40 - i < chunks[c] ? 40 - i : chunks[c];
            ck_assert_int_eq(tm_run_feed(&r, &kv, p + i, n, lg), 0);
        }
        if (c == 0) {
            memcpy(ref, lg, sizeof ref);
        } else {
            double num = 0, den = 0;
            for (int i = 0; i < 320; i++) {
                num += (lg[i] - ref[i]) * (lg[i] - ref[i]);
                den += ref[i] * ref[i];
            }
            ck_assert_msg(sqrt(num / den) < 1e-5, "chunk %u: rel diff %g", chunks[c], sqrt(num / den));
        }
        rl_kv_release(r.kv, &kv);
        tm_run_close(&r);
    }
    unlink(g_path);
}

START_TEST(f32_prefill_in_chunks_equals_one_chunk) { chunked(RL_TYPE_F32, RL_TYPE_F32); }
END_TEST
START_TEST(q4_0_prefill_in_chunks_equals_one_chunk_with_f16_kv) { chunked(RL_TYPE_Q4_0, RL_TYPE_F16); }
END_TEST

START_TEST(one_thread_and_two_threads_agree)
{
    make(RL_TYPE_Q4_0);
    float l1[320], l2[320];
    int32_t p[5] = {1, 2, 3, 4, 5};
    for (int th = 1; th <= 2; th++) {
        tm_run r;
        ck_assert_int_eq(tm_run_open(&r, g_path, RL_TYPE_F16, 64, th, 64), 0);
        rl_kv_seq kv = {0};
        ck_assert_int_eq(tm_run_feed(&r, &kv, p, 5, th == 1 ? l1 : l2), 0);
        rl_kv_release(r.kv, &kv);
        tm_run_close(&r);
    }
    ck_assert_mem_eq(l1, l2, sizeof l1);
    unlink(g_path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model_batch");
    TCase *tc = tcase_create("batch");
    tcase_add_test(tc, f32_batched_sequences_give_identical_logits_and_tokens);
    tcase_add_test(tc, q4_0_batched_sequences_give_identical_tokens);
    tcase_add_test(tc, q8_0_batched_sequences_give_identical_tokens);
    tcase_add_test(tc, q4_k_batched_sequences_give_identical_tokens);
    tcase_add_test(tc, f32_prefill_in_chunks_equals_one_chunk);
    tcase_add_test(tc, q4_0_prefill_in_chunks_equals_one_chunk_with_f16_kv);
    tcase_add_test(tc, one_thread_and_two_threads_agree);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
