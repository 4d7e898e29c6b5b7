/* tok_detok_test.c - the streaming detokenizer never emits part of a UTF-8
 * character, turns invalid bytes into U+FFFD, and consumes nothing when the
 * output does not fit. */
#include "tok_synth.h"

static int32_t byte_id(const synth *s, unsigned b)
{
    char t[8];
    snprintf(t, sizeof t, "<0x%02X>", b);
    return synth_id(s, t);
}

START_TEST(detok_holds_emoji_bytes_until_complete)
{
    synth s;
    rl_tokenizer *t = synth_spm(&s, 0, 0);
    rl_detok d = {0};
    const unsigned char emoji[4] = {0xF0, 0x9F, 0x98, 0x80};
    char out[16];
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(rl_detok_push(&d, t, byte_id(&s, emoji[i]), out, sizeof out), 0);
    ck_assert_int_eq(rl_detok_push(&d, t, byte_id(&s, emoji[3]), out, sizeof out), 4);
    ck_assert_int_eq(memcmp(out, emoji, 4), 0);
    ck_assert_int_eq(rl_detok_flush(&d, out, sizeof out), 0);
    rl_tokenizer_free(t);
}
END_TEST

START_TEST(detok_passes_text_pieces_through)
{
    synth s;
    rl_tokenizer *t = synth_spm(&s, 0, 0);
    rl_detok d = {0};
    char out[16];
    ck_assert_int_eq(rl_detok_push(&d, t, synth_id(&s, "\xE2\x96\x81hi"), out, sizeof out), 3);
    ck_assert_int_eq(memcmp(out, " hi", 3), 0);
    ck_assert_int_eq(rl_detok_push(&d, t, synth_id(&s, "<|eot|>"), out, sizeof out), 0);
    rl_tokenizer_free(t);
}
END_TEST

START_TEST(detok_invalid_byte_becomes_replacement_character)
{
    synth s;
    rl_tokenizer *t = synth_spm(&s, 0, 0);
    rl_detok d = {0};
    char out[16];
    ck_assert_int_eq(rl_detok_push(&d, t, byte_id(&s, 0xFF), out, sizeof out), 3);
    ck_assert_int_eq(memcmp(out, "\xEF\xBF\xBD", 3), 0);
    /* a lead byte followed by a non-continuation: U+FFFD then the ASCII byte */
    ck_assert_int_eq(rl_detok_push(&d, t, byte_id(&s, 0xE2), out, sizeof out), 0);
    ck_assert_int_eq(rl_detok_push(&d, t, byte_id(&s, 'A'), out, sizeof out), 4);
    ck_assert_int_eq(memcmp(out, "\xEF\xBF\xBD" "A", 4), 0);
    rl_tokenizer_free(t);
}
END_TEST

START_TEST(detok_flush_replaces_unfinished_character)
{
    synth s;
    rl_tokenizer *t = synth_spm(&s, 0, 0);
    rl_detok d = {0};
    char out[16];
    ck_assert_int_eq(rl_detok_push(&d, t, byte_id(&s, 0xF0), out, sizeof out), 0);
    ck_assert_int_eq(rl_detok_push(&d, t, byte_id(&s, 0x9F), out, sizeof out), 0);
    ck_assert_int_eq(rl_detok_flush(&d, out, sizeof out), 3);
    ck_assert_int_eq(memcmp(out, "\xEF\xBF\xBD", 3), 0);
    ck_assert_uint_eq(d.n_pending, 0);
    ck_assert_int_eq(rl_detok_flush(&d, out, sizeof out), 0);
    rl_tokenizer_free(t);
}
END_TEST

START_TEST(detok_too_small_output_consumes_nothing)
{
    synth s;
    rl_tokenizer *t = synth_spm(&s, 0, 0);
    rl_detok d = {0};
    char out[16];
    ck_assert_int_eq(rl_detok_push(&d, t, byte_id(&s, 0xC3), out, sizeof out), 0);
    ck_assert_int_eq(rl_detok_push(&d, t, byte_id(&s, 0xA9), out, 1), 2); /* é needs 2 */
    ck_assert_uint_eq(d.n_pending, 1);
    ck_assert_int_eq(rl_detok_push(&d, t, byte_id(&s, 0xA9), out, 2), 2);
    ck_assert_int_eq(memcmp(out, "\xC3\xA9", 2), 0);
    ck_assert_int_eq(rl_detok_push(&d, t, -5, out, 2), -EINVAL);
    rl_tokenizer_free(t);
}
END_TEST

START_TEST(detok_of_tokenized_emoji_gives_it_back)
{
    synth s;
    rl_tokenizer *t = synth_spm(&s, 0, 0);
    const char *text = "hi \xF0\x9F\x98\x80 hi";
    int32_t ids[32];
    int n = rl_tokenize(t, text, strlen(text), false, false, ids, 32);
    ck_assert_int_gt(n, 4);
    rl_detok d = {0};
    char out[64];
    size_t o = 0;
    for (int i = 0; i < n; i++) {
        int k = rl_detok_push(&d, t, ids[i], out + o, sizeof out - o);
        ck_assert_int_ge(k, 0);
        o += (size_t)k;
    }
    o += (size_t)rl_detok_flush(&d, out + o, sizeof out - o);
    ck_assert_uint_eq(o, strlen(text) + 1);
    ck_assert_int_eq(memcmp(out + 1, text, strlen(text)), 0);
    rl_tokenizer_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tokenizer_detok");
    TCase *tc = tcase_create("detok");
    tcase_add_test(tc, detok_holds_emoji_bytes_until_complete);
    tcase_add_test(tc, detok_passes_text_pieces_through);
    tcase_add_test(tc, detok_invalid_byte_becomes_replacement_character);
    tcase_add_test(tc, detok_flush_replaces_unfinished_character);
    tcase_add_test(tc, detok_too_small_output_consumes_nothing);
    tcase_add_test(tc, detok_of_tokenized_emoji_gives_it_back);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
