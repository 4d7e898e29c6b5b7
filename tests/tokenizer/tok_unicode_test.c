/* tok_unicode_test.c - the generated character classes and strict UTF-8 decoding. */
#include <check.h>
#include <stdlib.h>

#include "rl_unicode.h"

START_TEST(classes_of_sample_characters)
{
    ck_assert_uint_eq(rl_unicode_flags('a'), RL_UC_LETTER | RL_UC_CASED);
    ck_assert_uint_eq(rl_unicode_flags(0x4E2D), RL_UC_LETTER);            /* 中: Lo, uncased */
    ck_assert_uint_eq(rl_unicode_flags('7'), RL_UC_NUMBER);
    ck_assert_uint_eq(rl_unicode_flags(0xBD), RL_UC_NUMBER);              /* ½: No */
    ck_assert_uint_eq(rl_unicode_flags('!'), RL_UC_PUNCT);
    ck_assert_uint_eq(rl_unicode_flags('$'), RL_UC_SYMBOL);
    ck_assert_uint_eq(rl_unicode_flags(0x1F600), RL_UC_SYMBOL);           /* 😀: So */
    ck_assert_uint_eq(rl_unicode_flags(0x0301), RL_UC_MARK);
    ck_assert_uint_eq(rl_unicode_flags(' '), RL_UC_SPACE);
    ck_assert_uint_eq(rl_unicode_flags('\n'), RL_UC_SPACE);
    ck_assert_uint_eq(rl_unicode_flags(0x3000), RL_UC_SPACE);             /* ideographic space: Zs */
    ck_assert_uint_eq(rl_unicode_flags(0x1C), 0);                         /* not White_Space */
    ck_assert_uint_eq(rl_unicode_flags(0x10FFFF), 0);
    ck_assert_uint_eq(rl_unicode_flags(0x110000), 0);
}
END_TEST

static int dec(const char *s, size_t n, uint32_t *cp, int *inc)
{
    return rl_utf8_decode((const uint8_t *)s, n, cp, inc);
}

START_TEST(utf8_decoder_is_strict)
{
    uint32_t cp;
    int inc;
    ck_assert_int_eq(dec("\xF0\x9F\x98\x80", 4, &cp, &inc), 4);
    ck_assert_uint_eq(cp, 0x1F600);
    ck_assert_int_eq(dec("\xC0\xAF", 2, &cp, &inc), -1);         /* overlong */
    ck_assert_int_eq(dec("\xE0\x80\xAF", 3, &cp, &inc), -1);     /* overlong */
    ck_assert_int_eq(dec("\xED\xA0\x80", 3, &cp, &inc), -1);     /* surrogate */
    ck_assert_int_eq(dec("\xF4\x90\x80\x80", 4, &cp, &inc), -1); /* above U+10FFFF */
    ck_assert_int_eq(dec("\x80", 1, &cp, &inc), -1);
    ck_assert_uint_eq(cp, 0xFFFD);
    ck_assert_int_eq(dec("\xE2\x82", 2, &cp, &inc), -2);         /* truncated */
    ck_assert_int_eq(inc, 1);
    ck_assert_int_eq(dec("\xE2\x82" "A", 3, &cp, &inc), -2);     /* broken */
    ck_assert_int_eq(inc, 0);
}
END_TEST

START_TEST(utf8_encode_decode_round_trip)
{
    const uint32_t cps[] = {0, 0x7F, 0x80, 0x7FF, 0x800, 0xFFFF, 0x10000, 0x10FFFF};
    for (size_t i = 0; i < sizeof cps / sizeof cps[0]; i++) {
        char b[4];
        int n = rl_utf8_encode(cps[i], b);
        uint32_t cp;
        ck_assert_int_eq(rl_utf8_decode((const uint8_t *)b, (size_t)n, &cp, NULL), n);
        ck_assert_uint_eq(cp, cps[i]);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tokenizer_unicode");
    TCase *tc = tcase_create("unicode");
    tcase_add_test(tc, classes_of_sample_characters);
    tcase_add_test(tc, utf8_decoder_is_strict);
    tcase_add_test(tc, utf8_encode_decode_round_trip);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
