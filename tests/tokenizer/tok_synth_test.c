/* tok_synth_test.c - tokenizer behaviours on small synthetic vocabularies: special
 * tokens, BOS/EOS, byte fallback, BPE merge order, pieces, end-of-generation,
 * output capacity, pre-tokenizer splits. */
#include "tok_synth.h"

static int tok(const rl_tokenizer *t, const char *s, bool add_special, bool parse_special, int32_t *out,
               size_t cap)
{
    return rl_tokenize(t, s, strlen(s), add_special, parse_special, out, cap);
}

START_TEST(special_text_becomes_control_token_only_when_parsing_special)
{
    synth s;
    rl_tokenizer *t = synth_spm(&s, 0, 0);
    int32_t ids[64];
    int32_t eot = synth_id(&s, "<|eot|>");
    int n = tok(t, "hi<|eot|>", false, true, ids, 64);
    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(ids[0], synth_id(&s, "\xE2\x96\x81hi"));
    ck_assert_int_eq(ids[1], eot);
    n = tok(t, "hi<|eot|>", false, false, ids, 64);
    ck_assert_int_gt(n, 2);
    for (int i = 0; i < n; i++)
        ck_assert_int_ne(ids[i], eot);
    rl_tokenizer_free(t);
}
END_TEST

START_TEST(user_defined_token_matched_without_parse_special)
{
    synth s;
    rl_tokenizer *t = synth_spm(&s, 0, 0);
    int32_t ids[64];
    int n = tok(t, "<my>", false, false, ids, 64);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(ids[0], synth_id(&s, "<my>"));
    rl_tokenizer_free(t);
}
END_TEST

START_TEST(bos_and_eos_added_as_metadata_asks)
{
    synth s;
    rl_tokenizer *t = synth_spm(&s, 1, 1);
    int32_t ids[64];
    ck_assert(rl_tokenizer_adds_bos(t));
    int n = tok(t, "hi", true, false, ids, 64);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(ids[0], 1);
    ck_assert_int_eq(ids[2], 2);
    n = tok(t, "hi", false, false, ids, 64);
    ck_assert_int_eq(n, 1);
    rl_tokenizer_free(t);
    t = synth_spm(&s, 0, 0);
    ck_assert(!rl_tokenizer_adds_bos(t));
    n = tok(t, "hi", true, false, ids, 64);
    ck_assert_int_eq(n, 1);
    rl_tokenizer_free(t);
}
END_TEST

START_TEST(spm_unknown_character_falls_back_to_byte_tokens)
{
    synth s;
    rl_tokenizer *t = synth_spm(&s, 0, 0);
    int32_t ids[64];
    int n = tok(t, "\xC3\xA9", false, false, ids, 64); /* é: not a piece */
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(ids[0], synth_id(&s, "\xE2\x96\x81"));
    ck_assert_int_eq(ids[1], synth_id(&s, "<0xC3>"));
    ck_assert_int_eq(ids[2], synth_id(&s, "<0xA9>"));
    rl_tokenizer_free(t);
}
END_TEST

START_TEST(spm_empty_text_gives_no_tokens)
{
    synth s;
    rl_tokenizer *t = synth_spm(&s, 1, 0);
    int32_t ids[4];
    ck_assert_int_eq(tok(t, "", false, false, ids, 4), 0);
    ck_assert_int_eq(tok(t, "", true, false, ids, 4), 1);
    rl_tokenizer_free(t);
}
END_TEST

START_TEST(bpe_merges_apply_by_rank)
{
    synth s;
    rl_tokenizer *t = synth_bpe(&s, RL_PRE_GPT2);
    int32_t ids[64];
    ck_assert_int_eq(tok(t, "hello", false, false, ids, 64), 1);
    ck_assert_int_eq(ids[0], synth_id(&s, "hello"));
    ck_assert_int_eq(tok(t, "lll", false, false, ids, 64), 2); /* leftmost pair first */
    ck_assert_int_eq(ids[0], synth_id(&s, "ll"));
    ck_assert_int_eq(ids[1], synth_id(&s, "l"));
    ck_assert_int_eq(tok(t, "hel", false, false, ids, 64), 2);
    ck_assert_int_eq(ids[0], synth_id(&s, "he"));
    rl_tokenizer_free(t);
}
END_TEST

START_TEST(bpe_piece_maps_bytes_back)
{
    synth s;
    rl_tokenizer *t = synth_bpe(&s, RL_PRE_GPT2);
    int32_t ids[64];
    const char *text = " a\n\xF0\x9F\x98\x80\xFF\xC3";
    int n = tok(t, text, false, false, ids, 64);
    char buf[64];
    size_t o = 0;
    for (int i = 0; i < n; i++)
        o += (size_t)rl_token_to_piece(t, ids[i], buf + o, sizeof buf - o);
    ck_assert_uint_eq(o, strlen(text));
    ck_assert_int_eq(memcmp(buf, text, o), 0);
    rl_tokenizer_free(t);
}
END_TEST

START_TEST(pieces_render_space_bytes_and_hide_control)
{
    synth s;
    rl_tokenizer *t = synth_spm(&s, 0, 0);
    char buf[16];
    ck_assert_int_eq(rl_token_to_piece(t, synth_id(&s, "\xE2\x96\x81hi"), buf, sizeof buf), 3);
    ck_assert_int_eq(memcmp(buf, " hi", 3), 0);
    ck_assert_int_eq(rl_token_to_piece(t, synth_id(&s, "<0x41>"), buf, sizeof buf), 1);
    ck_assert_int_eq(buf[0], 'A');
    ck_assert_int_eq(rl_token_to_piece(t, synth_id(&s, "<|eot|>"), buf, sizeof buf), 0);
    ck_assert_int_eq(rl_token_to_piece(t, -1, buf, sizeof buf), -EINVAL);
    ck_assert_int_eq(rl_token_to_piece(t, (int32_t)rl_tokenizer_n_vocab(t), buf, sizeof buf), -EINVAL);
    rl_tokenizer_free(t);
}
END_TEST

START_TEST(eog_is_eos_and_end_of_turn_tokens)
{
    synth s;
    rl_tokenizer *t = synth_spm(&s, 0, 0);
    ck_assert(rl_tokenizer_is_eog(t, rl_tokenizer_eos(t)));
    ck_assert(rl_tokenizer_is_eog(t, synth_id(&s, "<|im_end|>")));
    ck_assert(!rl_tokenizer_is_eog(t, synth_id(&s, "<|eot|>")));
    ck_assert(!rl_tokenizer_is_eog(t, rl_tokenizer_bos(t)));
    ck_assert(!rl_tokenizer_is_eog(t, -1));
    rl_tokenizer_free(t);
}
END_TEST

START_TEST(tokenize_reports_full_count_beyond_capacity)
{
    synth s;
    rl_tokenizer *t = synth_spm(&s, 1, 0);
    int32_t ids[3] = {-7, -7, -7};
    int n = tok(t, "hi hi hi hi", true, false, ids, 2);
    ck_assert_int_eq(n, 5);
    ck_assert_int_eq(ids[0], 1);
    ck_assert_int_eq(ids[2], -7);
    ck_assert_int_eq(tok(t, "hi", true, false, NULL, 0), 2);
    ck_assert_int_eq(rl_tokenize(t, NULL, 5, true, false, ids, 3), -EINVAL);
    rl_tokenizer_free(t);
}
END_TEST

/* Words of the pre-tokenizer, joined with '|'. */
static int collect(void *ctx, size_t start, size_t len)
{
    char **p = ctx;
    char *buf = p[0];
    const char *src = p[1];
    size_t o = strlen(buf);
    if (o)
        buf[o++] = '|';
    memcpy(buf + o, src + start, len);
    buf[o + len] = '\0';
    return 0;
}

static void check_split(rl_tok_pre pre, const char *text, const char *want)
{
    char buf[512] = "";
    char *ctx[2] = {buf, (char *)text};
    ck_assert_int_eq(rl_tok_pretokenize(pre, text, strlen(text), collect, ctx), 0);
    ck_assert_msg(strcmp(buf, want) == 0, "pre %d: \"%s\"\n want \"%s\"\n got  \"%s\"", (int)pre, text, want, buf);
}

START_TEST(pretokenizer_llama3_splits_like_its_regex)
{
    check_split(RL_PRE_LLAMA3, "Hello world's  123456 !!\n\n x", "Hello| world|'s| | |123|456| !!\n\n| x");
    check_split(RL_PRE_LLAMA3, "I'VE \"quoted\"\n\n  next", "I|'VE| \"|quoted|\"\n\n| | next");
}
END_TEST

START_TEST(pretokenizer_qwen2_splits_digits_singly)
{
    check_split(RL_PRE_QWEN2, "ab 1234", "ab| |1|2|3|4");
}
END_TEST

START_TEST(pretokenizer_gpt2_splits_like_its_regex)
{
    check_split(RL_PRE_GPT2, "Hello world's  123456 !!\n\n x", "Hello| world|'s| | 123456| !!|\n\n| x");
    check_split(RL_PRE_GPT2, "I'VE", "I|'|VE");
}
END_TEST

START_TEST(pretokenizer_starcoder_splits_digits_first)
{
    check_split(RL_PRE_STARCODER, "x  12 y", "x|  |1|2| y");
}
END_TEST

START_TEST(pretokenizer_falcon_splits_punctuation_runs_and_digit_triples)
{
    check_split(RL_PRE_FALCON, "a+=b 1234567", "a|+=|b| |123|456|7");
    check_split(RL_PRE_FALCON, "1234567", "123|456|7");
}
END_TEST

START_TEST(pretokenizer_deepseek_coder_rules)
{
    check_split(RL_PRE_DEEPSEEK_CODER, "ab 12,\ncd", "ab| |1|2|,|\n|cd");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tokenizer_synthetic");
    TCase *tc = tcase_create("synthetic");
    tcase_add_test(tc, special_text_becomes_control_token_only_when_parsing_special);
    tcase_add_test(tc, user_defined_token_matched_without_parse_special);
    tcase_add_test(tc, bos_and_eos_added_as_metadata_asks);
    tcase_add_test(tc, spm_unknown_character_falls_back_to_byte_tokens);
    tcase_add_test(tc, spm_empty_text_gives_no_tokens);
    tcase_add_test(tc, bpe_merges_apply_by_rank);
    tcase_add_test(tc, bpe_piece_maps_bytes_back);
    tcase_add_test(tc, pieces_render_space_bytes_and_hide_control);
    tcase_add_test(tc, eog_is_eos_and_end_of_turn_tokens);
    tcase_add_test(tc, tokenize_reports_full_count_beyond_capacity);
    tcase_add_test(tc, pretokenizer_llama3_splits_like_its_regex);
    tcase_add_test(tc, pretokenizer_qwen2_splits_digits_singly);
    tcase_add_test(tc, pretokenizer_gpt2_splits_like_its_regex);
    tcase_add_test(tc, pretokenizer_starcoder_splits_digits_first);
    tcase_add_test(tc, pretokenizer_falcon_splits_punctuation_runs_and_digit_triples);
    tcase_add_test(tc, pretokenizer_deepseek_coder_rules);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
