/* tok_chat_test.c - chat template detection and rendering in each family's
 * documented format (the leading BOS is left to the tokenizer). */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rl_tokenizer.h"

static const char *const roles3[] = {"system", "user", "assistant", "user"};
static const char *const texts3[] = {"Be brief.", "Hi", "Hello!", "Bye"};

static void check_render(rl_chat_tmpl tm, const char *const *roles, const char *const *texts, uint32_t n,
                         const char *want)
{
    char out[1024];
    int k = rl_chat_render(tm, roles, texts, NULL, n, out, sizeof out);
    ck_assert_int_ge(k, 0);
    ck_assert_msg((size_t)k == strlen(want) && memcmp(out, want, (size_t)k) == 0, "template %d:\n want \"%s\"\n got  \"%.*s\"",
                  (int)tm, want, k, out);
}

START_TEST(chatml_renders_turns_and_assistant_prefix)
{
    check_render(RL_CHAT_CHATML, roles3, texts3, 4,
                 "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                 "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
                 "<|im_start|>assistant\n");
}
END_TEST

START_TEST(llama3_renders_headers_and_eot)
{
    check_render(RL_CHAT_LLAMA3, roles3, texts3, 4,
                 "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n");
}
END_TEST

START_TEST(llama2_puts_system_in_sys_block_of_first_turn)
{
    check_render(RL_CHAT_LLAMA2, roles3, texts3, 4,
                 "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Bye [/INST]");
}
END_TEST

START_TEST(mistral_prepends_system_to_first_user_message)
{
    check_render(RL_CHAT_MISTRAL, roles3, texts3, 4, "[INST] Be brief.\n\nHi [/INST] Hello!</s>[INST] Bye [/INST]");
}
END_TEST

START_TEST(render_without_messages_is_the_assistant_prefix)
{
    check_render(RL_CHAT_CHATML, NULL, NULL, 0, "<|im_start|>assistant\n");
}
END_TEST

START_TEST(render_rejects_unknown_role)
{
    const char *roles[] = {"tool"}, *texts[] = {"x"};
    char out[64];
    ck_assert_int_eq(rl_chat_render(RL_CHAT_CHATML, roles, texts, NULL, 1, out, sizeof out), -EINVAL);
    ck_assert_int_eq(rl_chat_render((rl_chat_tmpl)99, roles3, texts3, NULL, 1, out, sizeof out), -EINVAL);
}
END_TEST

START_TEST(render_reports_length_beyond_capacity)
{
    char out[8];
    memset(out, 'z', sizeof out);
    int k = rl_chat_render(RL_CHAT_CHATML, roles3, texts3, NULL, 2, out, 4);
    ck_assert_int_gt(k, 8);
    ck_assert_int_eq(memcmp(out, "<|im", 4), 0);
    ck_assert_int_eq(out[4], 'z');
}
END_TEST

START_TEST(render_uses_content_lengths)
{
    const char *roles[] = {"user"}, *texts[] = {"Hi there"};
    size_t lens[] = {2};
    char out[128];
    int k = rl_chat_render(RL_CHAT_CHATML, roles, texts, lens, 1, out, sizeof out);
    const char *want = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";
    ck_assert_int_eq(k, (int)strlen(want));
    ck_assert_int_eq(memcmp(out, want, (size_t)k), 0);
}
END_TEST

static rl_chat_tmpl detect(const char *s) { return rl_chat_detect(s, s ? strlen(s) : 0); }

START_TEST(detect_picks_family_from_markers)
{
    ck_assert_int_eq(detect("{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>"), RL_CHAT_LLAMA3);
    ck_assert_int_eq(detect("{{ '<|im_start|>' + message['role'] }}"), RL_CHAT_CHATML);
    ck_assert_int_eq(detect("{{ bos_token + '[INST] ' + '<<SYS>>\\n' }}"), RL_CHAT_LLAMA2);
    ck_assert_int_eq(detect("{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}"), RL_CHAT_MISTRAL);
    ck_assert_int_eq(detect(NULL), RL_CHAT_CHATML);
    ck_assert_int_eq(detect("something else"), RL_CHAT_CHATML);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tokenizer_chat");
    TCase *tc = tcase_create("chat");
    tcase_add_test(tc, chatml_renders_turns_and_assistant_prefix);
    tcase_add_test(tc, llama3_renders_headers_and_eot);
    tcase_add_test(tc, llama2_puts_system_in_sys_block_of_first_turn);
    tcase_add_test(tc, mistral_prepends_system_to_first_user_message);
    tcase_add_test(tc, render_without_messages_is_the_assistant_prefix);
    tcase_add_test(tc, render_rejects_unknown_role);
    tcase_add_test(tc, render_reports_length_beyond_capacity);
    tcase_add_test(tc, render_uses_content_lengths);
    tcase_add_test(tc, detect_picks_family_from_markers);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
