/* test_gguf_write.c - the GGUF writer: round trips through the reader, the
 * streaming API, and argument checks. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rl_gguf.h"

static void tmp_path(char *buf, size_t n)
{
    snprintf(buf, n, "/tmp/rl_gguf_test_XXXXXX");
    int fd = mkstemp(buf);
    ck_assert_int_ge(fd, 0);
    close(fd);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(*n + 1);
    ck_assert_uint_eq(fread(p, 1, *n, f), *n);
    fclose(f);
    return p;
}

/* Fill a writer with one of everything (metadata only). */
static void add_metadata(rl_gguf_writer *w)
{
    ck_assert_int_eq(rl_gguf_writer_str(w, "general.architecture", "llama"), 0);
    ck_assert_int_eq(rl_gguf_writer_u32(w, "llama.block_count", 22), 0);
    ck_assert_int_eq(rl_gguf_writer_i32(w, "x.i32", -9), 0);
    ck_assert_int_eq(rl_gguf_writer_f32(w, "x.f32", 0.25f), 0);
    ck_assert_int_eq(rl_gguf_writer_bool(w, "x.bool", true), 0);
    ck_assert_int_eq(rl_gguf_writer_u64(w, "x.u64", 1ull << 50), 0);
    ck_assert_int_eq(rl_gguf_writer_i64(w, "x.i64", -3), 0);
    ck_assert_int_eq(rl_gguf_writer_f64(w, "x.f64", 1e-6), 0);
    float sc[3] = {0.5f, -1, 2};
    ck_assert_int_eq(rl_gguf_writer_arr(w, "x.scores", RL_GGUF_F32, sc, 3), 0);
    const char *toks[3] = {"<unk>", "\xe2\x96\x81the", ""};
    ck_assert_int_eq(rl_gguf_writer_arr_str(w, "x.tokens", toks, 3), 0);
}

START_TEST(round_trip_metadata_and_tensors)
{
    rl_gguf_writer *w = rl_gguf_writer_new();
    add_metadata(w);
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint8_t q[2 * 18];
    for (int i = 0; i < 36; i++) q[i] = (uint8_t)(i * 7);
    int64_t ne_a[2] = {3, 2}, ne_q[2] = {32, 2};
    ck_assert_int_eq(rl_gguf_writer_tensor(w, "a", RL_TYPE_F32, 2, ne_a, a, sizeof a), 0);
    ck_assert_int_eq(rl_gguf_writer_tensor(w, "q", RL_TYPE_Q4_0, 2, ne_q, q, sizeof q), 0);
    char path[64];
    tmp_path(path, sizeof path);
    ck_assert_int_eq(rl_gguf_writer_write(w, path), 0);
    rl_gguf_writer_free(w);

    rl_gguf *g;
    char err[256];
    ck_assert_msg(rl_gguf_open(path, &g, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(g->version, 3);
    ck_assert_uint_eq(g->n_kv, 10);
    uint32_t u;
    int64_t i;
    float f;
    bool b;
    rl_gguf_str s;
    ck_assert(rl_gguf_get_str(g, "general.architecture", &s) && rl_gguf_str_eq(s, "llama"));
    ck_assert(rl_gguf_get_u32(g, "llama.block_count", &u) && u == 22);
    ck_assert(rl_gguf_get_i64(g, "x.i32", &i) && i == -9);
    ck_assert(rl_gguf_get_f32(g, "x.f32", &f) && f == 0.25f);
    ck_assert(rl_gguf_get_bool(g, "x.bool", &b) && b);
    ck_assert(rl_gguf_get_i64(g, "x.u64", &i) && i == (1ll << 50));
    ck_assert(rl_gguf_get_i64(g, "x.i64", &i) && i == -3);
    ck_assert(rl_gguf_get_f32(g, "x.f64", &f) && f == 1e-6f);
    const rl_gguf_kv *kv = rl_gguf_get(g, "x.tokens");
    ck_assert(kv && kv->arr_n == 3 && rl_gguf_str_eq(kv->strs[1], "\xe2\x96\x81the"));
    kv = rl_gguf_get(g, "x.scores");
    float sc1;
    memcpy(&sc1, kv->data + 4, 4);
    ck_assert(kv->arr_type == RL_GGUF_F32 && sc1 == -1.0f);
    const rl_gguf_tensor *ta = rl_gguf_find_tensor(g, "a"), *tq = rl_gguf_find_tensor(g, "q");
    ck_assert(ta && tq && ta->ne[0] == 3 && ta->ne[1] == 2 && tq->type == RL_TYPE_Q4_0 && tq->nbytes == 36);
    ck_assert_int_eq(memcmp(ta->data, a, sizeof a), 0);
    ck_assert_int_eq(memcmp(tq->data, q, sizeof q), 0);
    ck_assert_uint_eq(tq->offset % 32, 0);
    rl_gguf_close(g);
    unlink(path);
}
END_TEST

START_TEST(copy_kv_reproduces_every_entry)
{
    rl_gguf_writer *w = rl_gguf_writer_new();
    add_metadata(w);
    char p1[64], p2[64];
    tmp_path(p1, sizeof p1);
    tmp_path(p2, sizeof p2);
    ck_assert_int_eq(rl_gguf_writer_write(w, p1), 0);
    rl_gguf_writer_free(w);
    rl_gguf *g;
    char err[256];
    ck_assert_int_eq(rl_gguf_open(p1, &g, err, sizeof err), 0);
    w = rl_gguf_writer_new();
    for (uint64_t i = 0; i < g->n_kv; i++) ck_assert_int_eq(rl_gguf_writer_copy_kv(w, &g->kv[i]), 0);
    ck_assert_int_eq(rl_gguf_writer_write(w, p2), 0);
    rl_gguf_writer_free(w);
    rl_gguf_close(g);
    size_t n1, n2;
    uint8_t *a = slurp(p1, &n1), *b = slurp(p2, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_int_eq(memcmp(a, b, n1), 0);
    free(a);
    free(b);
    unlink(p1);
    unlink(p2);
}
END_TEST

START_TEST(streaming_matches_in_memory_writer)
{
    float x[40], y[8];
    for (int i = 0; i < 40; i++) x[i] = (float)i / 3;
    for (int i = 0; i < 8; i++) y[i] = -(float)i;
    int64_t nx[2] = {5, 8}, ny[1] = {8};
    char p1[64], p2[64];
    tmp_path(p1, sizeof p1);
    tmp_path(p2, sizeof p2);
    rl_gguf_writer *w = rl_gguf_writer_new();
    add_metadata(w);
    ck_assert_int_eq(rl_gguf_writer_tensor(w, "x", RL_TYPE_F32, 2, nx, x, sizeof x), 0);
    ck_assert_int_eq(rl_gguf_writer_tensor(w, "y", RL_TYPE_F32, 1, ny, y, sizeof y), 0);
    ck_assert_int_eq(rl_gguf_writer_write(w, p1), 0);
    rl_gguf_writer_free(w);
    w = rl_gguf_writer_new();
    add_metadata(w);
    ck_assert_int_eq(rl_gguf_writer_tensor_decl(w, "x", RL_TYPE_F32, 2, nx), 0);
    ck_assert_int_eq(rl_gguf_writer_tensor_decl(w, "y", RL_TYPE_F32, 1, ny), 0);
    ck_assert_int_eq(rl_gguf_writer_begin(w, p2), 0);
    float big[41] = {0};
    ck_assert_int_eq(rl_gguf_writer_put(w, big, sizeof big), -EINVAL); /* runs past the end of "x" */
    ck_assert_int_eq(rl_gguf_writer_put(w, x, 13 * sizeof(float)), 0); /* "x" in two pieces */
    ck_assert_int_eq(rl_gguf_writer_put(w, x + 13, 27 * sizeof(float)), 0);
    ck_assert_int_eq(rl_gguf_writer_put(w, y, sizeof y), 0);
    ck_assert_int_eq(rl_gguf_writer_finish(w), 0);
    rl_gguf_writer_free(w);
    size_t n1, n2;
    uint8_t *a = slurp(p1, &n1), *b = slurp(p2, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_int_eq(memcmp(a, b, n1), 0);
    free(a);
    free(b);
    unlink(p1);
    unlink(p2);
}
END_TEST

START_TEST(streaming_finish_rejects_missing_tensors)
{
    int64_t ne[1] = {4};
    char p[64];
    tmp_path(p, sizeof p);
    rl_gguf_writer *w = rl_gguf_writer_new();
    ck_assert_int_eq(rl_gguf_writer_tensor_decl(w, "a", RL_TYPE_F32, 1, ne), 0);
    ck_assert_int_eq(rl_gguf_writer_tensor_decl(w, "b", RL_TYPE_F32, 1, ne), 0);
    ck_assert_int_eq(rl_gguf_writer_begin(w, p), 0);
    float v[4] = {0};
    ck_assert_int_eq(rl_gguf_writer_put(w, v, sizeof v), 0);
    ck_assert_int_eq(rl_gguf_writer_finish(w), -EINVAL);
    rl_gguf_writer_free(w);
    unlink(p);
}
END_TEST

START_TEST(writer_rejects_bad_arguments)
{
    rl_gguf_writer *w = rl_gguf_writer_new();
    float v[32] = {0};
    int64_t ne[1] = {32}, odd[1] = {31}, zero[2] = {32, 0};
    ck_assert_int_eq(rl_gguf_writer_u32(w, "k", 1), 0);
    ck_assert_int_eq(rl_gguf_writer_u32(w, "k", 2), -EEXIST);
    ck_assert_int_eq(rl_gguf_writer_u32(w, "general.alignment", 24), -EINVAL);
    ck_assert_int_eq(rl_gguf_writer_tensor(w, "t", RL_TYPE_F32, 1, ne, v, 100), -EINVAL);
    ck_assert_int_eq(rl_gguf_writer_tensor(w, "t", RL_TYPE_Q4_0, 1, odd, v, 18), -EINVAL);
    ck_assert_int_eq(rl_gguf_writer_tensor(w, "t", RL_TYPE_F32, 2, zero, v, 0), -EINVAL);
    ck_assert_int_eq(rl_gguf_writer_tensor(w, "t", 39, 1, ne, v, 128), -EINVAL);
    ck_assert_int_eq(rl_gguf_writer_tensor(w, "t", RL_TYPE_F32, 1, ne, v, 128), 0);
    ck_assert_int_eq(rl_gguf_writer_tensor(w, "t", RL_TYPE_F32, 1, ne, v, 128), -EEXIST);
    ck_assert_int_eq(rl_gguf_writer_tensor_decl(w, "u", RL_TYPE_F32, 1, ne), -EINVAL); /* no mixing */
    rl_gguf_writer_free(w);
}
END_TEST

START_TEST(custom_alignment_round_trips)
{
    rl_gguf_writer *w = rl_gguf_writer_new();
    ck_assert_int_eq(rl_gguf_writer_u32(w, "general.alignment", 128), 0);
    float v[3] = {1, 2, 3};
    int64_t ne[1] = {3};
    ck_assert_int_eq(rl_gguf_writer_tensor(w, "a", RL_TYPE_F32, 1, ne, v, sizeof v), 0);
    ck_assert_int_eq(rl_gguf_writer_tensor(w, "b", RL_TYPE_F32, 1, ne, v, sizeof v), 0);
    char p[64];
    tmp_path(p, sizeof p);
    ck_assert_int_eq(rl_gguf_writer_write(w, p), 0);
    rl_gguf_writer_free(w);
    rl_gguf *g;
    char err[256];
    ck_assert_msg(rl_gguf_open(p, &g, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(g->alignment, 128);
    const rl_gguf_tensor *b = rl_gguf_find_tensor(g, "b");
    ck_assert_uint_eq(b->offset, 128);
    ck_assert_uint_eq(((uintptr_t)b->data - (uintptr_t)g->base) % 128, 0);
    ck_assert(((const float *)b->data)[2] == 3.0f);
    rl_gguf_close(g);
    unlink(p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gguf_write");
    TCase *tc = tcase_create("write");
    tcase_add_test(tc, round_trip_metadata_and_tensors);
    tcase_add_test(tc, copy_kv_reproduces_every_entry);
    tcase_add_test(tc, streaming_matches_in_memory_writer);
    tcase_add_test(tc, streaming_finish_rejects_missing_tensors);
    tcase_add_test(tc, writer_rejects_bad_arguments);
    tcase_add_test(tc, custom_alignment_round_trips);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
