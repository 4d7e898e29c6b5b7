/* tok_load_test.c - rl_tokenizer_load on GGUF metadata built in memory: a valid
 * vocabulary loads, and each kind of corrupt or unsupported metadata is rejected
 * with an error message instead of crashing. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rl_tokenizer.h"

/* A GGUF v3 file with no tensors, written key by key. */
typedef struct gg {
    uint8_t buf[1 << 16];
    size_t n;
    uint64_t n_kv;
} gg;

static void raw(gg *g, const void *p, size_t n)
{
    ck_assert(g->n + n <= sizeof g->buf);
    memcpy(g->buf + g->n, p, n);
    g->n += n;
}
static void u32(gg *g, uint32_t v) { raw(g, &v, 4); }
static void u64(gg *g, uint64_t v) { raw(g, &v, 8); }
static void str(gg *g, const char *s) { u64(g, strlen(s)); raw(g, s, strlen(s)); }
static void key(gg *g, const char *k, uint32_t type) { str(g, k); u32(g, type); g->n_kv++; }
static void kv_str(gg *g, const char *k, const char *v) { key(g, k, RL_GGUF_STR); str(g, v); }
static void kv_u32(gg *g, const char *k, uint32_t v) { key(g, k, RL_GGUF_U32); u32(g, v); }
static void kv_bool(gg *g, const char *k, uint8_t v) { key(g, k, RL_GGUF_BOOL); raw(g, &v, 1); }
static void kv_strs(gg *g, const char *k, const char *const *v, uint64_t n)
{
    key(g, k, RL_GGUF_ARR);
    u32(g, RL_GGUF_STR);
    u64(g, n);
    for (uint64_t i = 0; i < n; i++)
        str(g, v[i]);
}
static void kv_arr(gg *g, const char *k, uint32_t et, const void *d, uint64_t n, size_t esz)
{
    key(g, k, RL_GGUF_ARR);
    u32(g, et);
    u64(g, n);
    raw(g, d, n * esz);
}

static const char *const toks[] = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "\342\226\201a"};
static const float scores[] = {0, 0, 0, -1, -2, -0.5f};
static const int32_t types[] = {2, 3, 3, 1, 1, 1};

/* Which part of a valid SentencePiece vocabulary to break. */
enum fault {
    OK, NO_MODEL, BAD_MODEL, MODEL_NOT_STRING, NO_TOKENS, TOKENS_NOT_STRINGS, SHORT_SCORES, BAD_TYPE_VALUE,
    TYPES_WRONG_TYPE, BOS_OUT_OF_RANGE, EOS_NOT_INT, ADD_BOS_NOT_BOOL, PAD_NONE
};

static void build(gg *g, enum fault f)
{
    memset(g, 0, sizeof *g);
    if (f != NO_MODEL) {
        if (f == MODEL_NOT_STRING)
            kv_u32(g, "tokenizer.ggml.model", 1);
        else
            kv_str(g, "tokenizer.ggml.model", f == BAD_MODEL ? "bert" : "llama");
    }
    if (f == TOKENS_NOT_STRINGS)
        kv_arr(g, "tokenizer.ggml.tokens", RL_GGUF_I32, types, 6, 4);
    else if (f != NO_TOKENS)
        kv_strs(g, "tokenizer.ggml.tokens", toks, 6);
    kv_arr(g, "tokenizer.ggml.scores", RL_GGUF_F32, scores, f == SHORT_SCORES ? 5 : 6, 4);
    int32_t ty[6];
    memcpy(ty, types, sizeof ty);
    if (f == BAD_TYPE_VALUE)
        ty[4] = 9;
    if (f == TYPES_WRONG_TYPE)
        kv_arr(g, "tokenizer.ggml.token_type", RL_GGUF_F32, scores, 6, 4);
    else
        kv_arr(g, "tokenizer.ggml.token_type", RL_GGUF_I32, ty, 6, 4);
    kv_u32(g, "tokenizer.ggml.bos_token_id", f == BOS_OUT_OF_RANGE ? 6 : 1);
    if (f == EOS_NOT_INT)
        kv_str(g, "tokenizer.ggml.eos_token_id", "2");
    else
        kv_u32(g, "tokenizer.ggml.eos_token_id", 2);
    if (f == PAD_NONE) /* converters write UINT32_MAX for "no such token" */
        kv_u32(g, "tokenizer.ggml.padding_token_id", UINT32_MAX);
    if (f == ADD_BOS_NOT_BOOL)
        kv_u32(g, "tokenizer.ggml.add_bos_token", 1);
    else
        kv_bool(g, "tokenizer.ggml.add_bos_token", 1);
    /* prepend the header now that n_kv is known */
    uint8_t hdr[24];
    memcpy(hdr, "GGUF", 4);
    uint32_t ver = 3;
    uint64_t nt = 0;
    memcpy(hdr + 4, &ver, 4);
    memcpy(hdr + 8, &nt, 8);
    memcpy(hdr + 16, &g->n_kv, 8);
    ck_assert(g->n + 24 <= sizeof g->buf);
    memmove(g->buf + 24, g->buf, g->n);
    memcpy(g->buf, hdr, 24);
    g->n += 24;
}

static int load(enum fault f, rl_tokenizer **t, char *err, size_t errlen)
{
    static gg g;
    build(&g, f);
    rl_gguf *file = NULL;
    char gerr[256] = "";
    ck_assert_msg(rl_gguf_open_mem(g.buf, g.n, &file, gerr, sizeof gerr) == 0, "%s", gerr);
    err[0] = '\0';
    int rc = rl_tokenizer_load(file, t, err, errlen);
    rl_gguf_close(file); /* the tokenizer keeps its own copies */
    return rc;
}

START_TEST(valid_spm_metadata_loads_and_tokenizes)
{
    rl_tokenizer *t = NULL;
    char err[256];
    ck_assert_msg(load(OK, &t, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(rl_tokenizer_n_vocab(t), 6);
    int32_t ids[8];
    ck_assert_int_eq(rl_tokenize(t, "a", 1, true, false, ids, 8), 2);
    ck_assert_int_eq(ids[0], 1);
    ck_assert_int_eq(ids[1], 5);
    rl_tokenizer_free(t);
}
END_TEST

START_TEST(padding_id_uint32_max_means_none)
{
    rl_tokenizer *t = NULL;
    char err[256];
    ck_assert_msg(load(PAD_NONE, &t, err, sizeof err) == 0, "%s", err);
    rl_tokenizer_free(t);
}
END_TEST

static void expect_rejected(enum fault f, const char *needle)
{
    rl_tokenizer *t = (rl_tokenizer *)&t;
    char err[256];
    int rc = load(f, &t, err, sizeof err);
    ck_assert_msg(rc < 0, "fault %d accepted", (int)f);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(err, needle), "fault %d: error \"%s\" does not mention \"%s\"", (int)f, err, needle);
}

START_TEST(missing_model_rejected) { expect_rejected(NO_MODEL, "tokenizer.ggml.model"); }
END_TEST
START_TEST(unsupported_model_rejected) { expect_rejected(BAD_MODEL, "bert"); }
END_TEST
START_TEST(model_of_wrong_type_rejected) { expect_rejected(MODEL_NOT_STRING, "tokenizer.ggml.model"); }
END_TEST
START_TEST(missing_tokens_rejected) { expect_rejected(NO_TOKENS, "tokenizer.ggml.tokens"); }
END_TEST
START_TEST(tokens_not_strings_rejected) { expect_rejected(TOKENS_NOT_STRINGS, "tokenizer.ggml.tokens"); }
END_TEST
START_TEST(scores_of_wrong_length_rejected) { expect_rejected(SHORT_SCORES, "scores"); }
END_TEST
START_TEST(invalid_token_type_rejected) { expect_rejected(BAD_TYPE_VALUE, "type"); }
END_TEST
START_TEST(token_types_of_wrong_type_rejected) { expect_rejected(TYPES_WRONG_TYPE, "token_type"); }
END_TEST
START_TEST(bos_id_out_of_range_rejected) { expect_rejected(BOS_OUT_OF_RANGE, "BOS"); }
END_TEST
START_TEST(eos_id_not_integer_rejected) { expect_rejected(EOS_NOT_INT, "eos_token_id"); }
END_TEST
START_TEST(add_bos_not_bool_rejected) { expect_rejected(ADD_BOS_NOT_BOOL, "add_bos_token"); }
END_TEST

START_TEST(unknown_pre_tokenizer_rejected)
{
    static gg g;
    memset(&g, 0, sizeof g);
    const char *bt[] = {"a", "b", "ab"}, *mg[] = {"a b"};
    kv_str(&g, "tokenizer.ggml.model", "gpt2");
    kv_str(&g, "tokenizer.ggml.pre", "no-such-pre");
    kv_strs(&g, "tokenizer.ggml.tokens", bt, 3);
    kv_strs(&g, "tokenizer.ggml.merges", mg, 1);
    uint8_t hdr[24] = "GGUF";
    uint32_t ver = 3;
    memcpy(hdr + 4, &ver, 4);
    memcpy(hdr + 16, &g.n_kv, 8);
    memmove(g.buf + 24, g.buf, g.n);
    memcpy(g.buf, hdr, 24);
    g.n += 24;
    rl_gguf *file = NULL;
    char err[256] = "";
    ck_assert_int_eq(rl_gguf_open_mem(g.buf, g.n, &file, err, sizeof err), 0);
    rl_tokenizer *t = NULL;
    ck_assert_int_lt(rl_tokenizer_load(file, &t, err, sizeof err), 0);
    ck_assert_msg(strstr(err, "no-such-pre"), "%s", err);
    rl_gguf_close(file);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tokenizer_load");
    TCase *tc = tcase_create("load");
    tcase_add_test(tc, valid_spm_metadata_loads_and_tokenizes);
    tcase_add_test(tc, padding_id_uint32_max_means_none);
    tcase_add_test(tc, missing_model_rejected);
    tcase_add_test(tc, unsupported_model_rejected);
    tcase_add_test(tc, model_of_wrong_type_rejected);
    tcase_add_test(tc, missing_tokens_rejected);
    tcase_add_test(tc, tokens_not_strings_rejected);
    tcase_add_test(tc, scores_of_wrong_length_rejected);
    tcase_add_test(tc, invalid_token_type_rejected);
    tcase_add_test(tc, token_types_of_wrong_type_rejected);
    tcase_add_test(tc, bos_id_out_of_range_rejected);
    tcase_add_test(tc, eos_id_not_integer_rejected);
    tcase_add_test(tc, add_bos_not_bool_rejected);
    tcase_add_test(tc, unknown_pre_tokenizer_rejected);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
