/* tok_vectors_test.c - the shared tokenizer test vectors: for every
 * $RL_SHARED_DIR/tokenizer/ggml-vocab-NAME.gguf with .inp/.out, each text must
 * tokenize (no BOS/EOS, special text not parsed) to exactly the expected ids, and
 * the pieces of those ids must give the text back. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl_tokenizer.h"

#define SEP "\n__ggml_vocab_test__\n"

typedef struct vectors {
    rl_gguf *g;
    rl_tokenizer *t;
    char *inp, *outp;
    size_t n_inp, n_outp;
} vectors;

static char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)sz + 1);
    if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        free(b);
        b = NULL;
    }
    fclose(f);
    if (b) {
        b[sz] = '\0';
        *n = (size_t)sz;
    }
    return b;
}

/* Loads the vocabulary and its vectors; false (after printing why) when the shared
 * directory is not there. */
static bool open_vectors(const char *name, vectors *v)
{
    memset(v, 0, sizeof *v);
    const char *dir = getenv("RL_SHARED_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer/ggml-vocab-%s.gguf", dir ? dir : "", name);
    FILE *probe = dir ? fopen(path, "rb") : NULL;
    if (!probe) {
        printf("SKIP %s: %s not found (RL_SHARED_DIR unset or missing)\n", name, path);
        return false;
    }
    fclose(probe);
    char err[256] = "";
    ck_assert_msg(rl_gguf_open(path, &v->g, err, sizeof err) == 0, "%s: %s", path, err);
    ck_assert_msg(rl_tokenizer_load(v->g, &v->t, err, sizeof err) == 0, "%s: %s", path, err);
    char p2[4200];
    snprintf(p2, sizeof p2, "%s.inp", path);
    v->inp = slurp(p2, &v->n_inp);
    snprintf(p2, sizeof p2, "%s.out", path);
    v->outp = slurp(p2, &v->n_outp);
    ck_assert_msg(v->inp && v->outp, "%s: missing .inp/.out", path);
    return true;
}

static void close_vectors(vectors *v)
{
    rl_tokenizer_free(v->t);
    rl_gguf_close(v->g);
    free(v->inp);
    free(v->outp);
}

/* Next text of .inp (texts are separated by SEP; the file ends with SEP). */
static bool next_text(vectors *v, size_t *pos, const char **s, size_t *n)
{
    if (*pos >= v->n_inp)
        return false;
    const char *start = v->inp + *pos;
    const char *e = strstr(start, SEP);
    if (!e) {
        *s = start;
        *n = v->n_inp - *pos;
        *pos = v->n_inp;
        return *n > 0;
    }
    *s = start;
    *n = (size_t)(e - start);
    *pos += *n + strlen(SEP);
    return true;
}

static size_t parse_ids(char **line, int32_t *ids, size_t cap)
{
    size_t n = 0;
    char *p = *line;
    while (*p && *p != '\n') {
        char *e;
        long x = strtol(p, &e, 10);
        if (e == p) {
            p++;
            continue;
        }
        if (n < cap)
            ids[n] = (int32_t)x;
        n++;
        p = e;
    }
    *line = *p ? p + 1 : p;
    return n;
}

static void fmt_ids(char *buf, size_t cap, const int32_t *ids, size_t n)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && o + 12 < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, " %d", ids[i]);
}

static void check_vocab(const char *name)
{
    vectors v;
    if (!open_vectors(name, &v))
        return;
    size_t pos = 0, n_texts = 0;
    char *line = v.outp;
    const char *s;
    size_t n;
    enum { CAP = 4096 };
    int32_t *want = malloc(CAP * sizeof *want), *got = malloc(CAP * sizeof *got);
    while (next_text(&v, &pos, &s, &n)) {
        ck_assert_msg(*line, "%s: fewer expected lines than texts", name);
        size_t nw = parse_ids(&line, want, CAP);
        int ng = rl_tokenize(v.t, s, n, false, false, got, CAP);
        ck_assert_int_ge(ng, 0);
        if ((size_t)ng != nw || memcmp(want, got, nw * sizeof *got) != 0) {
            char a[2048], b[2048];
            fmt_ids(a, sizeof a, want, nw);
            fmt_ids(b, sizeof b, got, (size_t)ng);
            ck_abort_msg("%s: text #%zu \"%.*s\"\n expected:%s\n got:     %s", name, n_texts, (int)n, s, a, b);
        }
        n_texts++;
    }
    ck_assert_msg(n_texts > 10, "%s: only %zu texts", name, n_texts);
    free(want);
    free(got);
    close_vectors(&v);
}

/* Concatenated pieces of the tokenization give back the text (SentencePiece adds
 * the one leading space of its dummy prefix). */
static void check_roundtrip(const char *name, bool spm)
{
    vectors v;
    if (!open_vectors(name, &v))
        return;
    size_t pos = 0;
    const char *s;
    size_t n;
    int32_t ids[4096];
    char *back = malloc(1 << 16);
    while (next_text(&v, &pos, &s, &n)) {
        int k = rl_tokenize(v.t, s, n, false, false, ids, 4096);
        ck_assert_int_ge(k, 0);
        size_t o = 0;
        for (int i = 0; i < k; i++) {
            int m = rl_token_to_piece(v.t, ids[i], back + o, (1 << 16) - o);
            ck_assert_int_ge(m, 0);
            o += (size_t)m;
        }
        const char *b = back;
        if (spm && n > 0) {
            ck_assert_msg(o > 0 && back[0] == ' ', "%s: no leading space for \"%.*s\"", name, (int)n, s);
            b++;
            o--;
        }
        ck_assert_msg(o == n && memcmp(b, s, n) == 0, "%s: round trip of \"%.*s\" gave \"%.*s\"", name, (int)n, s,
                      (int)o, b);
    }
    free(back);
    close_vectors(&v);
}

START_TEST(vocab_llama_spm_matches_expected_ids) { check_vocab("llama-spm"); }
END_TEST
START_TEST(vocab_phi3_matches_expected_ids) { check_vocab("phi-3"); }
END_TEST
START_TEST(vocab_gpt2_matches_expected_ids) { check_vocab("gpt-2"); }
END_TEST
START_TEST(vocab_mpt_matches_expected_ids) { check_vocab("mpt"); }
END_TEST
START_TEST(vocab_refact_matches_expected_ids) { check_vocab("refact"); }
END_TEST
START_TEST(vocab_deepseek_coder_matches_expected_ids) { check_vocab("deepseek-coder"); }
END_TEST

START_TEST(roundtrip_llama_spm) { check_roundtrip("llama-spm", true); }
END_TEST
START_TEST(roundtrip_gpt2) { check_roundtrip("gpt-2", false); }
END_TEST
START_TEST(roundtrip_mpt) { check_roundtrip("mpt", false); }
END_TEST
START_TEST(roundtrip_refact) { check_roundtrip("refact", false); }
END_TEST
START_TEST(roundtrip_deepseek_coder) { check_roundtrip("deepseek-coder", false); }
END_TEST

/* phi-3 marks <|end|> as a control token: one id when parsing special text, plain
 * text otherwise; <|end|> also ends generation. */
START_TEST(phi3_control_token_parsed_only_when_asked)
{
    vectors v;
    if (!open_vectors("phi-3", &v))
        return;
    const char *text = "Hi<|end|>";
    int32_t on[32], off[32];
    int n_on = rl_tokenize(v.t, text, strlen(text), false, true, on, 32);
    int n_off = rl_tokenize(v.t, text, strlen(text), false, false, off, 32);
    ck_assert_int_ge(n_on, 2);
    char piece[32];
    int32_t end = on[n_on - 1];
    ck_assert_int_eq(rl_token_to_piece(v.t, end, piece, sizeof piece), 0); /* control: renders as "" */
    ck_assert(rl_tokenizer_is_eog(v.t, end));
    ck_assert_int_gt(n_off, n_on);
    for (int i = 0; i < n_off; i++)
        ck_assert_int_ne(off[i], end);
    close_vectors(&v);
}
END_TEST

/* The test model's vocabulary (which writes UINT32_MAX for "no padding token"). */
START_TEST(stories260k_tokenizer_loads_and_roundtrips)
{
    const char *dir = getenv("RL_SHARED_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/models/stories260K.gguf", dir ? dir : "");
    FILE *probe = dir ? fopen(path, "rb") : NULL;
    if (!probe) {
        printf("SKIP stories260K: %s not found\n", path);
        return;
    }
    fclose(probe);
    rl_gguf *g;
    rl_tokenizer *t;
    char err[256] = "";
    ck_assert_msg(rl_gguf_open(path, &g, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(rl_tokenizer_load(g, &t, err, sizeof err) == 0, "%s", err);
    const char *text = "Once upon a time, Lily saw a big \xF0\x9F\x90\xB6.";
    int32_t ids[128];
    int n = rl_tokenize(t, text, strlen(text), true, false, ids, 128);
    ck_assert_int_gt(n, 3);
    ck_assert_int_eq(ids[0], rl_tokenizer_bos(t));
    char back[256];
    size_t o = 0;
    for (int i = 1; i < n; i++)
        o += (size_t)rl_token_to_piece(t, ids[i], back + o, sizeof back - o);
    ck_assert_uint_eq(o, strlen(text) + 1);
    ck_assert_int_eq(memcmp(back + 1, text, strlen(text)), 0);
    ck_assert(rl_tokenizer_is_eog(t, rl_tokenizer_eos(t)));
    rl_tokenizer_free(t);
    rl_gguf_close(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tokenizer_vectors");
    TCase *tc = tcase_create("vectors");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, vocab_llama_spm_matches_expected_ids);
    tcase_add_test(tc, vocab_phi3_matches_expected_ids);
    tcase_add_test(tc, vocab_gpt2_matches_expected_ids);
    tcase_add_test(tc, vocab_mpt_matches_expected_ids);
    tcase_add_test(tc, vocab_refact_matches_expected_ids);
    tcase_add_test(tc, vocab_deepseek_coder_matches_expected_ids);
    tcase_add_test(tc, roundtrip_llama_spm);
    tcase_add_test(tc, roundtrip_gpt2);
    tcase_add_test(tc, roundtrip_mpt);
    tcase_add_test(tc, roundtrip_refact);
    tcase_add_test(tc, roundtrip_deepseek_coder);
    tcase_add_test(tc, stories260k_tokenizer_loads_and_roundtrips);
    tcase_add_test(tc, phi3_control_token_parsed_only_when_asked);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
