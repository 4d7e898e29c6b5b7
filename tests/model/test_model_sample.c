/* test_model_sample.c - sampling: determinism, greedy equivalences, filters. */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "rl_logprob.h"
#include "rl_sample.h"

#define NV 50

static void logits_fill(float *l)
{
    for (int i = 0; i < NV; i++)
        l[i] = sinf((float)i * 1.7f) * 3.f;
}

static int32_t draw(const rl_sampling *p, int n, int32_t *out)
{
    rl_sampler s;
    ck_assert_int_eq(rl_sample_init(&s, p, NV), 0);
    float l[NV];
    for (int i = 0; i < n; i++) {
        logits_fill(l);
        out[i] = rl_sample_next(&s, l);
        ck_assert(out[i] >= 0 && out[i] < NV);
        rl_sample_accept(&s, out[i]);
    }
    rl_sample_free(&s);
    return out[0];
}

static int32_t argmax(void)
{
    float l[NV];
    logits_fill(l);
    int b = 0;
    for (int i = 1; i < NV; i++)
        if (l[i] > l[b])
            b = i;
    return b;
}

START_TEST(same_seed_same_tokens_other_seed_other_tokens)
{
    rl_sampling p = {.temperature = 1.5f, .top_p = 1, .repeat_penalty = 1, .seed = 42};
    int32_t a[64], b[64], c[64];
    draw(&p, 64, a);
    draw(&p, 64, b);
    p.seed = 43;
    draw(&p, 64, c);
    ck_assert_mem_eq(a, b, sizeof a);
    ck_assert(memcmp(a, c, sizeof a) != 0);
}
END_TEST

START_TEST(top_k_one_equals_greedy)
{
    rl_sampling p = {.temperature = 2.f, .top_k = 1, .top_p = 1, .repeat_penalty = 1, .seed = 7};
    int32_t a[16];
    draw(&p, 16, a);
    for (int i = 0; i < 16; i++)
        ck_assert_int_eq(a[i], argmax());
}
END_TEST

START_TEST(zero_temperature_is_greedy)
{
    rl_sampling p = {.temperature = 0, .top_p = 1, .repeat_penalty = 1, .seed = 7};
    int32_t a[4];
    draw(&p, 4, a);
    ck_assert_int_eq(a[0], argmax());
}
END_TEST

START_TEST(top_k_limits_choices_to_k_best)
{
    rl_sampling p = {.temperature = 100.f, .top_k = 3, .top_p = 1, .repeat_penalty = 1, .seed = 1};
    int32_t a[200];
    draw(&p, 200, a);
    float l[NV];
    logits_fill(l);
    int seen[NV] = {0}, distinct = 0;
    for (int i = 0; i < 200; i++) {
        distinct += !seen[a[i]];
        seen[a[i]] = 1;
        int better = 0;
        for (int j = 0; j < NV; j++)
            better += l[j] > l[a[i]];
        ck_assert_int_lt(better, 3);
    }
    ck_assert_int_eq(distinct, 3); /* a flat temperature reaches all three */
}
END_TEST

START_TEST(tiny_top_p_and_full_min_p_act_as_greedy)
{
    rl_sampling p = {.temperature = 5.f, .top_p = 1e-6f, .repeat_penalty = 1, .seed = 3};
    int32_t a[32];
    draw(&p, 32, a);
    for (int i = 0; i < 32; i++)
        ck_assert_int_eq(a[i], argmax());
    rl_sampling q = {.temperature = 5.f, .top_p = 1, .min_p = 1.f, .repeat_penalty = 1, .seed = 3};
    draw(&q, 32, a);
    for (int i = 0; i < 32; i++)
        ck_assert_int_eq(a[i], argmax());
}
END_TEST

START_TEST(repetition_penalty_moves_greedy_off_a_repeated_token)
{
    rl_sampling p = {.temperature = 0, .top_p = 1, .repeat_penalty = 1e6f, .repeat_last_n = 8, .seed = 0};
    rl_sampler s;
    ck_assert_int_eq(rl_sample_init(&s, &p, NV), 0);
    float l[NV];
    logits_fill(l);
    int32_t first = rl_sample_next(&s, l);
    ck_assert_int_eq(first, argmax());
    rl_sample_accept(&s, first);
    logits_fill(l);
    ck_assert_int_ne(rl_sample_next(&s, l), first);
    rl_sample_free(&s);
}
END_TEST

START_TEST(absurd_values_are_clamped_not_crashing)
{
    rl_sampling p = {.temperature = 1e30f, .top_k = -5, .top_p = 1e9f, .min_p = -3.f, .repeat_penalty = -2.f,
                     .repeat_last_n = 2000000000, .seed = UINT64_MAX};
    int32_t a[64];
    draw(&p, 64, a); /* every draw in range (checked in draw) */
    rl_sampling q = {.temperature = 1e-30f, .top_k = 1 << 30, .top_p = 0, .min_p = 1e9f, .repeat_penalty = 1e30f,
                     .repeat_last_n = 1, .seed = 0};
    draw(&q, 64, a);
    float l[NV];
    for (int i = 0; i < NV; i++)
        l[i] = -INFINITY;
    l[17] = 0;
    rl_sampler s;
    rl_sampling r = {.temperature = 1.f, .top_p = 1, .repeat_penalty = 1};
    ck_assert_int_eq(rl_sample_init(&s, &r, NV), 0);
    ck_assert_int_eq(rl_sample_next(&s, l), 17);
    rl_sample_free(&s);
}
END_TEST

/* Top-k picks its k candidates with a heap (in one pass with the maximum when
 * every logit is finite), not by sorting the vocabulary: the tokens drawn
 * equal those of a sampler without top-k given only the k best logits (the
 * rest pushed out of reach), for the same seed, with ties (the lower id
 * first), -0 beside +0, -inf and NaN logits, and k from 2 to the vocabulary.
 * Without top-k the candidates are radix-sorted (more than 64 of them), with
 * it the heap's k go through qsort: the two sorts checked against each other. */
typedef struct ranked {
    float v;
    int32_t id;
} ranked;

static int ranked_cmp(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->v != y->v)
        return x->v > y->v ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

START_TEST(top_k_by_heap_draws_as_the_k_best_alone)
{
    enum { V = 3000 };
    static const int32_t ks[] = {2, 3, 40, 100, V - 1, V};
    float *l = malloc(V * sizeof(float)), *la = malloc(V * sizeof(float)), *lb = malloc(V * sizeof(float));
    ranked *r = malloc(V * sizeof(ranked));
    uint64_t st = 12345;
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
        rl_sampling pa = {.temperature = 0.8f, .top_k = ks[ki], .top_p = 0.95f, .min_p = ki % 2 ? 0.05f : 0,
                          .repeat_penalty = 1, .seed = 77 + ki};
        rl_sampling pb = pa;
        pb.top_k = 0;
        rl_sampler a, b;
        ck_assert_int_eq(rl_sample_init(&a, &pa, V), 0);
        ck_assert_int_eq(rl_sample_init(&b, &pb, V), 0);
        for (int draw_i = 0; draw_i < 60; draw_i++) {
            for (int i = 0; i < V; i++) {
                st = st * 6364136223846793005ull + 1442695040888963407ull;
                l[i] = (float)((st >> 40) % 64) * 0.25f - 6.f; /* ties */
            }
            l[(draw_i * 11 + 3) % V] = -0.0f; /* equal to +0: ordered by id like it */
            if (draw_i % 2) { /* non-finite logits: the two-pass path; else the one-pass one */
                l[(draw_i * 7) % V] = -INFINITY;
                l[(draw_i * 13 + 5) % V] = NAN;
            }
            /* the k best under the sampler's order (NaN counts as -inf) */
            for (int i = 0; i < V; i++)
                r[i] = (ranked){isnan(l[i]) ? -INFINITY : l[i], i};
            qsort(r, V, sizeof(ranked), ranked_cmp);
            for (int i = 0; i < V; i++)
                lb[i] = -1e30f; /* out of reach: below the best by far more than 40 / inv_t */
            for (int i = 0; i < ks[ki]; i++)
                lb[r[i].id] = l[r[i].id];
            memcpy(la, l, V * sizeof(float));
            int32_t ta = rl_sample_next(&a, la), tb = rl_sample_next(&b, lb);
            ck_assert_msg(ta == tb, "k %d draw %d: heap %d, sorted %d", ks[ki], draw_i, ta, tb);
        }
        rl_sample_free(&a);
        rl_sample_free(&b);
    }
    free(l), free(la), free(lb), free(r);
}
END_TEST

/* -0 and +0 are equal logits: the lower id comes first in both sorts (radix
 * without top-k, qsort with it), so a top-p that keeps one candidate keeps
 * token 100 (-0), never 200 (+0). */
START_TEST(minus_zero_ties_plus_zero_by_id_in_both_sorts)
{
    enum { V = 3000 };
    float *l = malloc(V * sizeof(float));
    for (int k = 0; k <= 40; k += 40)
        for (uint64_t seed = 0; seed < 8; seed++) {
            for (int i = 0; i < V; i++)
                l[i] = -20.0f - (float)((i * 7919) % 900) / 100.0f; /* candidates, but far below */
            l[100] = -0.0f;
            l[200] = 0.0f;
            rl_sampling p = {.temperature = 0.8f, .top_k = k, .top_p = 0.3f, .repeat_penalty = 1, .seed = seed};
            rl_sampler s;
            ck_assert_int_eq(rl_sample_init(&s, &p, V), 0);
            ck_assert_int_eq(rl_sample_next(&s, l), 100);
            rl_sample_free(&s);
        }
    free(l);
}
END_TEST

/* A device sends the k best logits of a finite row instead of the row: the
 * draw from them is the draw from the row, for every k and filter, with ties
 * and -0 among the candidates. */
START_TEST(draw_from_the_k_best_equals_draw_from_the_row)
{
    enum { V = 3000 };
    static const int32_t ks[] = {2, 3, 40, 256};
    float *l = malloc(V * sizeof(float));
    ranked *r = malloc(V * sizeof(ranked));
    rl_sample_cand *c = malloc(V * sizeof(rl_sample_cand));
    uint64_t st = 999;
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
        for (int f = 0; f < 3; f++) {
            rl_sampling p = {.temperature = f == 2 ? 0.05f : 1.1f, .top_k = ks[ki], .top_p = f == 1 ? 0.9f : 1,
                             .min_p = f == 1 ? 0.05f : 0, .repeat_penalty = 1, .seed = 5 + ki + 10 * (uint64_t)f};
            rl_sampler a, b;
            ck_assert_int_eq(rl_sample_init(&a, &p, V), 0);
            ck_assert_int_eq(rl_sample_init(&b, &p, V), 0);
            ck_assert_uint_eq(rl_sample_top_only(&b, 256), (uint32_t)ks[ki]);
            int differ = 0;
            int32_t first = -1;
            for (int d = 0; d < 80; d++) {
                for (int i = 0; i < V; i++) {
                    st = st * 6364136223846793005ull + 1442695040888963407ull;
                    l[i] = (float)((st >> 40) % 256) * 0.05f - 6.f; /* ties */
                }
                l[(d * 11 + 3) % V] = -0.0f;
                l[(d * 17 + 1) % V] = 0.0f;
                for (int i = 0; i < V; i++)
                    r[i] = (ranked){l[i], i};
                qsort(r, V, sizeof(ranked), ranked_cmp);
                for (int i = 0; i < ks[ki]; i++)
                    c[i] = (rl_sample_cand){l[r[i].id], r[i].id}; /* the raw value: -0 stays -0 */
                int32_t ta = rl_sample_next(&a, l), tb = rl_sample_next_top(&b, c, (uint32_t)ks[ki]);
                ck_assert_msg(ta == tb, "k %d filters %d draw %d: row %d, k best %d", ks[ki], f, d, ta, tb);
                differ |= d > 0 && ta != first;
                first = d == 0 ? ta : first;
            }
            ck_assert(differ); /* it sampled, not just took the best */
            rl_sample_free(&a);
            rl_sample_free(&b);
        }
    free(l), free(r), free(c);
}
END_TEST

/* Only draws that the k best decide go through the device's candidates. */
START_TEST(top_only_needs_sampling_top_k_and_no_pending_penalty)
{
    rl_sampling p = {.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .repeat_penalty = 1, .seed = 1};
    rl_sampler s;
    ck_assert_int_eq(rl_sample_init(&s, &p, NV), 0);
    ck_assert_uint_eq(rl_sample_top_only(&s, 256), 40);
    ck_assert_uint_eq(rl_sample_top_only(&s, 39), 0); /* more than the device gives */
    rl_sample_free(&s);
    static const struct {
        rl_sampling p;
        uint32_t k;
    } q[] = {
        {{.temperature = 0, .top_k = 40, .repeat_penalty = 1}, 1},      /* greedy: the best alone */
        {{.temperature = 0.8f, .top_k = 1, .repeat_penalty = 1}, 1},    /* greedy */
        {{.temperature = 0.8f, .top_k = 0, .repeat_penalty = 1}, 0},    /* no top-k: the row */
        {{.temperature = 1e-39f, .top_k = 40, .repeat_penalty = 1}, 0}, /* 1 / t overflows */
    };
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        ck_assert_int_eq(rl_sample_init(&s, &q[i].p, NV), 0);
        ck_assert_uint_eq(rl_sample_top_only(&s, 256), q[i].k);
        ck_assert_uint_eq(rl_sample_top_only(&s, 0), 0); /* a device without candidates */
        if (q[i].k == 1) { /* the best of the row, lowest id on ties */
            float l[NV];
            logits_fill(l);
            rl_sample_cand c = {l[argmax()], argmax()};
            ck_assert_int_eq(rl_sample_next_top(&s, &c, 1), argmax());
        }
        rl_sample_free(&s);
    }
    rl_sampling pen = {.temperature = 0.8f, .top_k = 40, .repeat_penalty = 1.3f, .repeat_last_n = 8, .seed = 1};
    ck_assert_int_eq(rl_sample_init(&s, &pen, NV), 0);
    ck_assert_uint_eq(rl_sample_top_only(&s, 256), 40); /* nothing to penalize yet */
    rl_sample_accept(&s, 7);
    ck_assert_uint_eq(rl_sample_top_only(&s, 256), 0); /* the penalty changes the row first */
    rl_sample_free(&s);
}
END_TEST

/* Log-probabilities of a row against a plain double-precision log-softmax:
 * the n best in order (ties by lower id), NaN as no chance, +inf taking all. */
START_TEST(logprobs_are_the_log_softmax_and_its_best)
{
    enum { V = 5000, N = 20 };
    float *l = malloc(V * sizeof(float));
    ranked *r = malloc(V * sizeof(ranked));
    rl_token_logprob top[N];
    uint64_t st = 4242;
    for (int round = 0; round < 6; round++) {
        for (int i = 0; i < V; i++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            l[i] = round % 2 ? (float)((st >> 40) % 64) * 0.5f - 20.f : (float)((st >> 33) % 100000) * 1e-4f * 30.f;
        }
        if (round >= 2)
            l[17] = NAN, l[18] = -INFINITY;
        rl_lp_norm nm;
        rl_logprob_row(l, V, N, &nm, top);
        double mx = -INFINITY, sum = 0;
        for (int i = 0; i < V; i++)
            if (!isnan(l[i]) && l[i] > mx)
                mx = l[i];
        for (int i = 0; i < V; i++)
            if (!isnan(l[i]))
                sum += exp((double)l[i] - mx);
        for (int i = 0; i < V; i++)
            r[i] = (ranked){isnan(l[i]) ? -INFINITY : l[i], i};
        qsort(r, V, sizeof(ranked), ranked_cmp);
        double mass = 0;
        for (int j = 0; j < N; j++) {
            double want = (double)l[r[j].id] - mx - log(sum);
            ck_assert_int_eq(top[j].id, r[j].id);
            ck_assert_msg(fabs(top[j].logprob - want) <= 1e-5 * (1 + fabs(want)), "round %d #%d: %g, want %g", round,
                          j, top[j].logprob, want);
            mass += exp(top[j].logprob);
        }
        ck_assert(mass <= 1 + 1e-5);
        for (int i = 0; i < V; i += 97) {
            double want = isnan(l[i]) ? -INFINITY : (double)l[i] - mx - log(sum);
            float got = rl_logprob_value(&nm, l[i]);
            ck_assert(isinf(want) ? got == -INFINITY : fabs(got - want) <= 1e-5 * (1 + fabs(want)));
        }
    }
    /* two +inf logits share everything; the rest get nothing */
    for (int i = 0; i < V; i++)
        l[i] = (float)i;
    l[10] = l[20] = INFINITY;
    rl_lp_norm nm;
    rl_logprob_row(l, V, 3, &nm, top);
    ck_assert_int_eq(top[0].id, 10);
    ck_assert_int_eq(top[1].id, 20);
    ck_assert_float_eq_tol(top[0].logprob, -logf(2.f), 1e-6f);
    ck_assert(top[2].logprob == -INFINITY);
    /* more asked than the vocabulary holds: the rest are id -1, -inf */
    float tiny[2] = {0.f, 0.f};
    rl_logprob_row(tiny, 2, 4, &nm, top);
    ck_assert_int_eq(top[0].id, 0);
    ck_assert_int_eq(top[1].id, 1);
    ck_assert_float_eq_tol(top[1].logprob, -logf(2.f), 1e-6f);
    ck_assert(top[2].id == -1 && top[2].logprob == -INFINITY && top[3].id == -1);
    free(l), free(r);
}
END_TEST

/* The penalty changes the row in place; the chosen token's logit as the model
 * gave it stays known (its log-probability is the model's). */
START_TEST(raw_logit_of_a_penalized_choice_is_the_models)
{
    rl_sampling p = {.temperature = 0, .repeat_penalty = 1.25f, .repeat_last_n = 4, .seed = 1};
    rl_sampler s;
    ck_assert_int_eq(rl_sample_init(&s, &p, NV), 0);
    rl_sample_accept(&s, 7);
    rl_sample_accept(&s, 9);
    float l[NV];
    for (int i = 0; i < NV; i++)
        l[i] = -1.f;
    l[7] = 5.f;  /* penalized to 4, still the best */
    l[9] = -2.f; /* penalized to -2.5 */
    ck_assert_int_eq(rl_sample_next(&s, l), 7);
    ck_assert_float_eq(l[7], 4.f);
    ck_assert_float_eq(rl_sample_raw_logit(&s, l, 7), 5.f);
    ck_assert_float_eq(rl_sample_raw_logit(&s, l, 9), -2.f);
    ck_assert_float_eq(rl_sample_raw_logit(&s, l, 3), -1.f);
    rl_sample_free(&s);
}
END_TEST

/* Without top-k the draw orders only what it needs (min-p's set, the likely
 * part of top-p's prefix); with top-k = the vocabulary the heap hands it
 * everything sorted. Same tokens, for peaked and flat rows and each filter. */
START_TEST(unsorted_candidates_draw_as_the_sorted_vocabulary)
{
    enum { V = 32000 };
    float *l = malloc(V * sizeof(float)), *la = malloc(V * sizeof(float));
    uint64_t st = 77;
    static const float tp[] = {0.9f, 0.5f, 1.f, 0.99f}, mp[] = {0.f, 0.05f, 0.f, 0.2f};
    for (int shape = 0; shape < 3; shape++)
        for (int f = 0; f < 4; f++) {
            rl_sampling pa = {.temperature = 0.9f, .top_k = 0, .top_p = tp[f], .min_p = mp[f], .repeat_penalty = 1,
                              .seed = 3 + (uint64_t)f};
            rl_sampling pb = pa;
            pb.top_k = V;
            rl_sampler a, b;
            ck_assert_int_eq(rl_sample_init(&a, &pa, V), 0);
            ck_assert_int_eq(rl_sample_init(&b, &pb, V), 0);
            int32_t first = -1;
            bool differ = false;
            for (int d = 0; d < 12; d++) {
                for (int i = 0; i < V; i++) {
                    st = st * 6364136223846793005ull + 1442695040888963407ull;
                    float u = (float)(st >> 40) / (float)(1u << 24);
                    l[i] = shape == 0 ? u * 20.f - 8.f : shape == 1 ? powf(u, 32.f) * 20.f - 8.f
                                                                   : floorf(powf(u, 8.f) * 64.f) * 0.3f; /* ties */
                }
                memcpy(la, l, V * sizeof(float));
                int32_t ta = rl_sample_next(&a, la), tb = rl_sample_next(&b, l);
                ck_assert_msg(ta == tb, "shape %d filters %d draw %d: unsorted %d, sorted %d", shape, f, d, ta, tb);
                differ |= d > 0 && ta != first;
                first = d == 0 ? ta : first;
            }
            ck_assert(differ);
            rl_sample_free(&a);
            rl_sample_free(&b);
        }
    free(l), free(la);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model_sample");
    TCase *tc = tcase_create("sample");
    tcase_add_test(tc, same_seed_same_tokens_other_seed_other_tokens);
    tcase_add_test(tc, top_k_one_equals_greedy);
    tcase_add_test(tc, zero_temperature_is_greedy);
    tcase_add_test(tc, top_k_limits_choices_to_k_best);
    tcase_add_test(tc, tiny_top_p_and_full_min_p_act_as_greedy);
    tcase_add_test(tc, repetition_penalty_moves_greedy_off_a_repeated_token);
    tcase_add_test(tc, absurd_values_are_clamped_not_crashing);
    tcase_add_test(tc, top_k_by_heap_draws_as_the_k_best_alone);
    tcase_add_test(tc, minus_zero_ties_plus_zero_by_id_in_both_sorts);
    tcase_add_test(tc, draw_from_the_k_best_equals_draw_from_the_row);
    tcase_add_test(tc, top_only_needs_sampling_top_k_and_no_pending_penalty);
    tcase_add_test(tc, logprobs_are_the_log_softmax_and_its_best);
    tcase_add_test(tc, raw_logit_of_a_penalized_choice_is_the_models);
    tcase_add_test(tc, unsorted_candidates_draw_as_the_sorted_vocabulary);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
