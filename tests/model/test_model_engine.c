/* test_model_engine.c - the LLM engine end to end on the real stories260K model. */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rl_llm.h"
#include "tm_util.h"

#define NGEN 48

static rl_engine *open_engine(int threads, uint32_t n_ctx, uint32_t step_tokens)
{
    const char *p = tm_stories_path();
    if (!p)
        return NULL;
    rl_llm_opts o;
    rl_llm_opts_default(&o);
    o.n_threads = threads;
    o.n_ctx = n_ctx;
    o.step_tokens = step_tokens;
    rl_engine *e = NULL;
    char err[256];
    int rc = rl_engine_llm_create_opts(p, &o, &e, err, sizeof err);
    ck_assert_msg(rc == 0, "create: %s", err);
    return e;
}

static int tokenize(rl_engine *e, const char *text, int32_t *toks, int cap)
{
    return e->ops->tokenize(e, text, strlen(text), true, toks, (size_t)cap);
}

static rl_seq *new_greedy(rl_engine *e, const char *text, uint32_t max_tokens)
{
    int32_t toks[64];
    int n = tokenize(e, text, toks, 64);
    ck_assert_int_gt(n, 1);
    rl_seq_desc d = {.prompt = toks, .n_prompt = (uint32_t)n, .max_tokens = max_tokens,
                     .sampling = {.temperature = 0, .top_p = 1, .repeat_penalty = 1}};
    rl_seq *s;
    ck_assert_int_eq(e->ops->seq_new(e, &d, &s), 0);
    return s;
}

/* Step the given sequences together until each has NGEN tokens. */
static void generate(rl_engine *e, rl_seq **seqs, uint32_t n, int32_t out[][NGEN])
{
    uint32_t got[8] = {0};
    rl_step_item it[8];
    for (int guard = 0; guard < 1000; guard++) {
        uint32_t m = 0, idx[8];
        for (uint32_t i = 0; i < n; i++)
            if (got[i] < NGEN) {
                idx[m] = i;
                it[m++] = (rl_step_item){.seq = seqs[i]};
            }
        if (m == 0)
            return;
        ck_assert_int_eq(e->ops->step(e, it, m), 0);
        for (uint32_t j = 0; j < m; j++) {
            ck_assert_int_eq(it[j].status, 0);
            if (it[j].token >= 0)
                out[idx[j]][got[idx[j]]++] = it[j].token;
        }
    }
    ck_abort_msg("generation did not finish");
}

START_TEST(greedy_story_is_readable_english)
{
    rl_engine *e = open_engine(2, 256, 512);
    if (!e)
        return;
    rl_seq *s = new_greedy(e, "Once upon a time", NGEN);
    int32_t toks[1][NGEN];
    generate(e, &s, 1, toks);
    char text[4096] = "";
    size_t len = 0;
    for (int i = 0; i < NGEN && !e->ops->is_eog(e, toks[0][i]); i++) {
        int n = e->ops->token_piece(e, toks[0][i], text + len, sizeof text - len - 1);
        ck_assert_int_ge(n, 0);
        len += (size_t)n;
    }
    text[len] = 0;
    printf("story: Once upon a time%s\n", text);
    for (size_t i = 0; i < len; i++)
        ck_assert_msg(isprint((unsigned char)text[i]) || text[i] == '\n', "byte %d", text[i]);
    ck_assert_ptr_nonnull(strstr(text, " was"));
    ck_assert_ptr_nonnull(strstr(text, " the"));
    ck_assert_ptr_nonnull(strchr(text, '.'));
    e->ops->seq_free(e, s);
    e->ops->destroy(e);
}
END_TEST

START_TEST(two_runs_give_identical_tokens)
{
    int32_t a[1][NGEN], b[1][NGEN];
    for (int r = 0; r < 2; r++) {
        rl_engine *e = open_engine(r + 1, 256, 512);
        if (!e)
            return;
        rl_seq *s = new_greedy(e, "Once upon a time", NGEN);
        generate(e, &s, 1, r ? b : a);
        e->ops->seq_free(e, s);
        e->ops->destroy(e);
    }
    ck_assert_mem_eq(a, b, sizeof a);
}
END_TEST

START_TEST(batched_with_others_equals_alone_even_with_small_chunks)
{
    const char *texts[3] = {"Once upon a time", "The dog ran", "Lily and Tom went to the park"};
    int32_t alone[3][NGEN], together[3][NGEN];
    rl_engine *e = open_engine(2, 256, 512);
    if (!e)
        return;
    for (int i = 0; i < 3; i++) {
        rl_seq *s = new_greedy(e, texts[i], NGEN);
        generate(e, &s, 1, &alone[i]);
        e->ops->seq_free(e, s);
    }
    e->ops->destroy(e);
    e = open_engine(2, 256, 3); /* 3 tokens per step: prompts go in chunks beside decodes */
    rl_seq *ss[3];
    for (int i = 0; i < 3; i++)
        ss[i] = new_greedy(e, texts[i], NGEN);
    generate(e, ss, 3, together);
    for (int i = 0; i < 3; i++)
        e->ops->seq_free(e, ss[i]);
    e->ops->destroy(e);
    ck_assert_mem_eq(alone, together, sizeof alone);
}
END_TEST

START_TEST(context_overflow_fails_only_that_sequence)
{
    rl_engine *e = open_engine(1, 32, 512);
    if (!e)
        return;
    int32_t toks[40];
    for (int i = 0; i < 40; i++)
        toks[i] = 100 + i;
    rl_seq_desc d = {.prompt = toks, .n_prompt = 30, .max_tokens = 10, .sampling = {.top_p = 1, .repeat_penalty = 1}};
    rl_seq *s, *t;
    ck_assert_int_eq(e->ops->seq_new(e, &d, &s), -E2BIG);
    d.max_tokens = 2;
    ck_assert_int_eq(e->ops->seq_new(e, &d, &s), 0);
    d.n_prompt = 3;
    ck_assert_int_eq(e->ops->seq_new(e, &d, &t), 0);
    rl_step_item it[2] = {{.seq = s}, {.seq = t}};
    int s_status = 0;
    for (int i = 0; i < 8; i++) { /* s runs past its budget into the context end */
        ck_assert_int_eq(e->ops->step(e, it, 2), 0);
        ck_assert_int_eq(it[1].status, 0);
        if (it[0].status) {
            s_status = it[0].status;
            break;
        }
    }
    ck_assert_int_eq(s_status, -ENOSPC);
    rl_llm_kv_stats st;
    rl_engine_llm_kv_stats(e, &st);
    ck_assert_uint_gt(st.blocks_used, 0);
    e->ops->seq_free(e, s);
    e->ops->seq_free(e, t);
    rl_engine_llm_kv_stats(e, &st);
    ck_assert_uint_eq(st.blocks_used, 0);
    e->ops->destroy(e);
}
END_TEST

START_TEST(duplicate_or_null_items_fail_alone)
{
    rl_engine *e = open_engine(1, 64, 0);
    if (!e)
        return;
    rl_seq *s = new_greedy(e, "Once upon a time", 4), *t = new_greedy(e, "The dog", 4);
    rl_step_item it[4] = {{.seq = s}, {.seq = NULL}, {.seq = s}, {.seq = t}};
    ck_assert_int_eq(e->ops->step(e, it, 4), 0);
    ck_assert_int_eq(it[0].status, 0);
    ck_assert_int_ge(it[0].token, 0);
    ck_assert_int_eq(it[1].status, -EINVAL);
    ck_assert_int_eq(it[2].status, -EINVAL);
    ck_assert_int_eq(it[3].status, 0);
    ck_assert_int_ge(it[3].token, 0);
    e->ops->seq_free(e, s);
    e->ops->seq_free(e, t);
    e->ops->destroy(e);
}
END_TEST

START_TEST(info_describes_the_model)
{
    rl_engine *e = open_engine(1, 0, 0);
    if (!e)
        return;
    rl_engine_info in;
    e->ops->get_info(e, &in);
    ck_assert_str_eq(in.arch, "llama");
    ck_assert_str_eq(in.backend, "cpu");
    ck_assert_str_eq(in.type, "F32");
    ck_assert_uint_eq(in.n_vocab, 512);
    ck_assert_uint_eq(in.n_layer, 5);
    ck_assert_uint_eq(in.n_embd, 64);
    ck_assert_uint_eq(in.n_head, 8);
    ck_assert_uint_eq(in.n_head_kv, 4);
    ck_assert_uint_eq(in.n_ff, 172);
    ck_assert_uint_eq(in.n_ctx, 2048);
    ck_assert_ptr_null(rl_engine_llm_tokenizer_error(e));
    ck_assert_int_eq(in.bos, 1);
    ck_assert_int_eq(in.eos, 2);
    ck_assert_uint_eq(in.kv_bytes, 0);
    ck_assert_uint_gt(in.weight_bytes, 1000000);
    e->ops->destroy(e);
}
END_TEST

START_TEST(bad_prompt_tokens_are_refused)
{
    rl_engine *e = open_engine(1, 64, 0);
    if (!e)
        return;
    int32_t toks[2] = {1, 512};
    rl_seq_desc d = {.prompt = toks, .n_prompt = 2, .max_tokens = 4, .sampling = {.top_p = 1, .repeat_penalty = 1}};
    rl_seq *s = NULL;
    ck_assert_int_eq(e->ops->seq_new(e, &d, &s), -EINVAL);
    d.n_prompt = 0;
    ck_assert_int_eq(e->ops->seq_new(e, &d, &s), -EINVAL);
    ck_assert_ptr_null(s);
    e->ops->destroy(e);
}
END_TEST

START_TEST(missing_model_file_is_a_clear_error)
{
    rl_engine *e = NULL;
    char err[256] = "";
    ck_assert_int_lt(rl_engine_llm_create("/nonexistent/model.gguf", 1, &e, err, sizeof err), 0);
    ck_assert_ptr_null(e);
    ck_assert(strlen(err) > 0);
}
END_TEST

static void on_progress(void *ctx, float frac)
{
    float *last = ctx;
    ck_assert(frac >= *last && frac <= 1.f);
    *last = frac;
}

START_TEST(loading_reports_progress_up_to_one)
{
    const char *p = tm_stories_path();
    if (!p)
        return;
    rl_llm_opts o;
    rl_llm_opts_default(&o);
    float last = -1.f;
    o.progress = on_progress;
    o.progress_ctx = &last;
    rl_engine *e;
    char err[256];
    ck_assert_int_eq(rl_engine_llm_create_opts(p, &o, &e, err, sizeof err), 0);
    ck_assert(last == 1.f);
    e->ops->destroy(e);
}
END_TEST

START_TEST(q8_0_kv_is_refused_clearly_when_heads_are_too_small)
{
    const char *p = tm_stories_path(); /* head dimension 8: not a whole Q8_0 block */
    if (!p)
        return;
    rl_llm_opts o;
    rl_llm_opts_default(&o);
    o.kv_type = RL_TYPE_Q8_0;
    rl_engine *e = NULL;
    char err[256] = "";
    ck_assert_int_eq(rl_engine_llm_create_opts(p, &o, &e, err, sizeof err), -EINVAL);
    ck_assert_ptr_null(e);
    ck_assert_ptr_nonnull(strstr(err, "head dimension"));
}
END_TEST

START_TEST(q8_0_kv_engine_runs_a_random_model_without_tokenizer)
{
    char path[] = "/tmp/rl_test_engine_XXXXXX";
    tm_spec sp = tm_default_spec(RL_TYPE_Q4_0);
    ck_assert_int_eq(tm_make_model(&sp, path), 0);
    rl_llm_opts o;
    rl_llm_opts_default(&o);
    o.kv_type = RL_TYPE_Q8_0;
    o.n_threads = 2;
    rl_engine *e;
    char err[256];
    ck_assert_int_eq(rl_engine_llm_create_opts(path, &o, &e, err, sizeof err), 0);
    ck_assert_ptr_nonnull(rl_engine_llm_tokenizer_error(e));
    int32_t buf[4];
    ck_assert_int_eq(e->ops->tokenize(e, "x", 1, true, buf, 4), -ENOTSUP);
    int32_t prompt[5] = {1, 2, 3, 4, 5};
    rl_seq_desc d = {.prompt = prompt, .n_prompt = 5, .max_tokens = 8,
                     .sampling = {.temperature = 0.8f, .top_k = 40, .top_p = 0.9f, .min_p = 0.05f,
                                  .repeat_penalty = 1.1f, .repeat_last_n = 16, .seed = 9}};
    rl_seq *s;
    ck_assert_int_eq(e->ops->seq_new(e, &d, &s), 0);
    rl_step_item it = {.seq = s};
    int got = 0;
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(e->ops->step(e, &it, 1), 0);
        ck_assert_int_eq(it.status, 0);
        ck_assert(it.token >= 0 && it.token < 320);
        got++;
    }
    ck_assert_int_eq(got, 8);
    rl_engine_info in;
    e->ops->get_info(e, &in);
    ck_assert_str_eq(in.type, "Q4_0");
    ck_assert_uint_eq(in.kv_bytes, rl_kv_block_bytes(2, 2, 64, RL_TYPE_Q8_0)); /* 13 positions: one block */
    e->ops->seq_free(e, s);
    e->ops->destroy(e);
    unlink(path);
}
END_TEST

START_TEST(chat_format_and_token_pieces_go_through_the_tokenizer)
{
    rl_engine *e = open_engine(1, 64, 0);
    if (!e)
        return;
    rl_chat_msg m = {.role = "user", .content = "hello", .content_len = 5};
    char out[256];
    int n = e->ops->chat_format(e, &m, 1, out, sizeof out);
    ck_assert_int_gt(n, 5);
    ck_assert_ptr_nonnull(memmem(out, (size_t)n, "hello", 5));
    rl_chat_msg bad = {.role = "wizard", .content = "x", .content_len = 1};
    ck_assert_int_lt(e->ops->chat_format(e, &bad, 1, out, sizeof out), 0);
    char pc[16];
    ck_assert_int_lt(e->ops->token_piece(e, 100000, pc, sizeof pc), 0);
    e->ops->destroy(e);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model_engine");
    TCase *tc = tcase_create("engine");
    tcase_add_test(tc, greedy_story_is_readable_english);
    tcase_add_test(tc, two_runs_give_identical_tokens);
    tcase_add_test(tc, batched_with_others_equals_alone_even_with_small_chunks);
    tcase_add_test(tc, context_overflow_fails_only_that_sequence);
    tcase_add_test(tc, info_describes_the_model);
    tcase_add_test(tc, duplicate_or_null_items_fail_alone);
    tcase_add_test(tc, bad_prompt_tokens_are_refused);
    tcase_add_test(tc, missing_model_file_is_a_clear_error);
    tcase_add_test(tc, loading_reports_progress_up_to_one);
    tcase_add_test(tc, q8_0_kv_is_refused_clearly_when_heads_are_too_small);
    tcase_add_test(tc, q8_0_kv_engine_runs_a_random_model_without_tokenizer);
    tcase_add_test(tc, chat_format_and_token_pieces_go_through_the_tokenizer);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
