/* test_gguf_read.c - the GGUF reader: every metadata type, lookups, and
 * clean errors for every truncation and each corrupted field. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_build.h"
#include "rl_gguf.h"

/* A small valid file: every scalar type, two arrays, two tensors. */
static void small_valid(gb *b)
{
    gb_header(b, 3, 2, 15);
    gb_str(b, "general.architecture"); gb_u32(b, RL_GGUF_STR); gb_str(b, "llama");
    gb_str(b, "t.u8"); gb_u32(b, RL_GGUF_U8); gb_u8(b, 200);
    gb_str(b, "t.i8"); gb_u32(b, RL_GGUF_I8); gb_u8(b, (uint8_t)-5);
    gb_str(b, "t.u16"); gb_u32(b, RL_GGUF_U16); gb_u16(b, 60000);
    gb_str(b, "t.i16"); gb_u32(b, RL_GGUF_I16); gb_u16(b, (uint16_t)-300);
    gb_str(b, "t.u32"); gb_u32(b, RL_GGUF_U32); gb_u32(b, 4000000000u);
    gb_str(b, "t.i32"); gb_u32(b, RL_GGUF_I32); gb_u32(b, (uint32_t)-7);
    float f = 1.5f; gb_str(b, "t.f32"); gb_u32(b, RL_GGUF_F32); gb_raw(b, &f, 4);
    gb_str(b, "t.bool"); gb_u32(b, RL_GGUF_BOOL); gb_u8(b, 1);
    gb_str(b, "t.u64"); gb_u32(b, RL_GGUF_U64); gb_u64(b, 1ull << 40);
    gb_str(b, "t.i64"); gb_u32(b, RL_GGUF_I64); gb_u64(b, (uint64_t)-(1ll << 40));
    double d = 2.25; gb_str(b, "t.f64"); gb_u32(b, RL_GGUF_F64); gb_raw(b, &d, 8);
    gb_str(b, "t.arr_i32"); gb_u32(b, RL_GGUF_ARR); gb_u32(b, RL_GGUF_I32); gb_u64(b, 3);
    gb_u32(b, 1); gb_u32(b, 2); gb_u32(b, 3);
    gb_str(b, "t.arr_str"); gb_u32(b, RL_GGUF_ARR); gb_u32(b, RL_GGUF_STR); gb_u64(b, 3);
    gb_str(b, "a"); gb_str(b, "bc"); gb_str(b, "");
    gb_str(b, "llama.block_count"); gb_u32(b, RL_GGUF_U32); gb_u32(b, 2);
    uint64_t ne_a[2] = {4, 2}, ne_b[1] = {32};
    gb_tinfo(b, "a", 2, ne_a, RL_TYPE_F32, 0);
    gb_tinfo(b, "b", 1, ne_b, RL_TYPE_Q8_0, 32);
    gb_pad(b, 32);
    for (int i = 0; i < 8; i++) { float v = (float)i; gb_raw(b, &v, 4); }
    for (int i = 0; i < 34; i++) gb_u8(b, (uint8_t)i);
}

static int open_gb(const gb *b, rl_gguf **g, char *err, size_t n)
{
    return rl_gguf_open_mem(b->p, b->n, g, err, n);
}

START_TEST(reads_every_metadata_type)
{
    gb b = {0};
    small_valid(&b);
    rl_gguf *g;
    char err[256];
    ck_assert_int_eq(open_gb(&b, &g, err, sizeof err), 0);
    ck_assert_uint_eq(g->version, 3);
    ck_assert_uint_eq(g->n_kv, 15);
    uint32_t u;
    int64_t i;
    float f;
    bool bo;
    rl_gguf_str s;
    ck_assert(rl_gguf_get_str(g, "general.architecture", &s) && rl_gguf_str_eq(s, "llama"));
    ck_assert(rl_gguf_get_u32(g, "t.u8", &u) && u == 200);
    ck_assert(rl_gguf_get_i64(g, "t.i8", &i) && i == -5);
    ck_assert(rl_gguf_get_u32(g, "t.u16", &u) && u == 60000);
    ck_assert(rl_gguf_get_i64(g, "t.i16", &i) && i == -300);
    ck_assert(rl_gguf_get_u32(g, "t.u32", &u) && u == 4000000000u);
    ck_assert(rl_gguf_get_i64(g, "t.i32", &i) && i == -7);
    ck_assert(rl_gguf_get_f32(g, "t.f32", &f) && f == 1.5f);
    ck_assert(rl_gguf_get_bool(g, "t.bool", &bo) && bo);
    ck_assert(rl_gguf_get_i64(g, "t.u64", &i) && i == (1ll << 40));
    ck_assert(rl_gguf_get_i64(g, "t.i64", &i) && i == -(1ll << 40));
    ck_assert(rl_gguf_get_f32(g, "t.f64", &f) && f == 2.25f);
    const rl_gguf_kv *kv = rl_gguf_get(g, "t.arr_i32");
    ck_assert_ptr_nonnull(kv);
    ck_assert(kv->type == RL_GGUF_ARR && kv->arr_type == RL_GGUF_I32 && kv->arr_n == 3);
    int32_t third;
    memcpy(&third, kv->data + 8, 4);
    ck_assert_int_eq(third, 3);
    kv = rl_gguf_get(g, "t.arr_str");
    ck_assert(kv && kv->arr_type == RL_GGUF_STR && kv->arr_n == 3 && kv->strs);
    ck_assert(rl_gguf_str_eq(kv->strs[0], "a") && rl_gguf_str_eq(kv->strs[1], "bc") && kv->strs[2].len == 0);
    ck_assert(rl_gguf_get_arch_u32(g, "llama", "block_count", &u) && u == 2);
    rl_gguf_close(g);
    free(b.p);
}
END_TEST

START_TEST(getters_reject_wrong_type_or_range)
{
    gb b = {0};
    small_valid(&b);
    rl_gguf *g;
    char err[256];
    ck_assert_int_eq(open_gb(&b, &g, err, sizeof err), 0);
    uint32_t u;
    rl_gguf_str s;
    bool bo;
    ck_assert(!rl_gguf_get_u32(g, "t.i32", &u));          /* negative */
    ck_assert(!rl_gguf_get_u32(g, "t.u64", &u));          /* > 2^32 */
    ck_assert(!rl_gguf_get_str(g, "t.u32", &s));
    ck_assert(!rl_gguf_get_bool(g, "t.u8", &bo));
    ck_assert(!rl_gguf_get_u32(g, "general.architecture", &u));
    ck_assert(!rl_gguf_get_u32(g, "no.such.key", &u));
    ck_assert_ptr_null(rl_gguf_get(g, "t.u3"));
    rl_gguf_close(g);
    free(b.p);
}
END_TEST

START_TEST(array_element_getters)
{
    gb b = {0};
    small_valid(&b);
    rl_gguf *g;
    char err[256];
    ck_assert_int_eq(open_gb(&b, &g, err, sizeof err), 0);
    const rl_gguf_kv *kv = rl_gguf_get(g, "t.arr_i32");
    int64_t v;
    float f;
    ck_assert(rl_gguf_arr_i64(kv, 2, &v) && v == 3);
    ck_assert(rl_gguf_arr_f32(kv, 0, &f) && f == 1.0f);
    ck_assert(!rl_gguf_arr_i64(kv, 3, &v));                              /* past the end */
    ck_assert(!rl_gguf_arr_i64(rl_gguf_get(g, "t.arr_str"), 0, &v));    /* strings */
    ck_assert(!rl_gguf_arr_f32(rl_gguf_get(g, "t.u32"), 0, &f));        /* not an array */
    ck_assert(!rl_gguf_arr_f32(NULL, 0, &f));
    rl_gguf_close(g);
    free(b.p);
}
END_TEST

START_TEST(reads_tensor_infos_and_data)
{
    gb b = {0};
    small_valid(&b);
    rl_gguf *g;
    char err[256];
    ck_assert_int_eq(open_gb(&b, &g, err, sizeof err), 0);
    ck_assert_uint_eq(g->n_tensors, 2);
    ck_assert_uint_eq(g->alignment, 32);
    const rl_gguf_tensor *a = rl_gguf_find_tensor(g, "a"), *t = rl_gguf_find_tensor(g, "b");
    ck_assert(a && t);
    ck_assert(a->n_dims == 2 && a->ne[0] == 4 && a->ne[1] == 2 && a->ne[2] == 1 && a->type == RL_TYPE_F32);
    ck_assert_uint_eq(a->nbytes, 32);
    ck_assert_uint_eq(t->nbytes, 34);
    ck_assert_uint_eq(((uintptr_t)a->data - (uintptr_t)g->base) % 32, 0);
    float v;
    memcpy(&v, (const uint8_t *)a->data + 4 * 7, 4);
    ck_assert(v == 7.0f);
    ck_assert_uint_eq(((const uint8_t *)t->data)[33], 33);
    ck_assert_ptr_null(rl_gguf_find_tensor(g, "c"));
    rl_gguf_close(g);
    free(b.p);
}
END_TEST

START_TEST(every_truncation_fails_cleanly)
{
    gb b = {0};
    small_valid(&b);
    for (size_t n = 0; n < b.n; n++) {
        uint8_t *p = gb_exact(&b, n);
        rl_gguf *g = (rl_gguf *)1;
        char err[256] = "";
        int rc = rl_gguf_open_mem(p, n, &g, err, sizeof err);
        ck_assert_msg(rc < 0, "truncated to %zu bytes was accepted", n);
        ck_assert_ptr_null(g);
        ck_assert_msg(err[0] != 0, "no message at length %zu", n);
        free(p);
    }
    free(b.p);
}
END_TEST

/* Build a one-tensor file with the given fields and expect an error containing want. */
static void expect_tensor_error(uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off, size_t data,
                                const char *want)
{
    gb b = {0};
    gb_header(&b, 3, 1, 0);
    gb_tinfo(&b, "blk.0.attn_q.weight", n_dims, ne, type, off);
    gb_pad(&b, 32);
    for (size_t i = 0; i < data; i++) gb_u8(&b, 0);
    rl_gguf *g;
    char err[256] = "";
    ck_assert_int_lt(open_gb(&b, &g, err, sizeof err), 0);
    ck_assert_msg(strstr(err, want), "error '%s' lacks '%s'", err, want);
    free(b.p);
}

START_TEST(rejects_tensor_data_past_end)
{
    uint64_t ne[2] = {8, 4};
    expect_tensor_error(2, ne, RL_TYPE_F32, 0, 127, "tensor 'blk.0.attn_q.weight': data [");
    expect_tensor_error(2, ne, RL_TYPE_F32, 0, 127, "past end of file");
    expect_tensor_error(2, ne, RL_TYPE_F32, 1ull << 62, 128, "past end of file");
}
END_TEST

START_TEST(rejects_bad_dimensions)
{
    uint64_t zero[2] = {8, 0}, big[4] = {1ull << 32, 1ull << 32, 1, 1}, neg[1] = {1ull << 63};
    uint64_t five[5] = {1, 1, 1, 1, 1};
    expect_tensor_error(2, zero, RL_TYPE_F32, 0, 256, "must be positive");
    expect_tensor_error(2, big, RL_TYPE_F32, 0, 256, "overflows");
    expect_tensor_error(1, neg, RL_TYPE_F32, 0, 256, "must be positive");
    expect_tensor_error(5, five, RL_TYPE_F32, 0, 256, "dimensions");
    expect_tensor_error(0, five, RL_TYPE_F32, 0, 256, "dimensions");
    uint64_t huge_bytes[2] = {1ull << 40, 1ull << 22};
    expect_tensor_error(2, huge_bytes, RL_TYPE_F32, 0, 256, "overflows");
}
END_TEST

START_TEST(rejects_unknown_type_and_partial_block)
{
    uint64_t ne[1] = {32}, odd[1] = {33};
    expect_tensor_error(1, ne, 39, 0, 256, "unknown type 39");
    expect_tensor_error(1, ne, 1000, 0, 256, "unknown type 1000");
    expect_tensor_error(1, odd, RL_TYPE_Q4_0, 0, 256, "block size");
}
END_TEST

START_TEST(rejects_misaligned_tensor_offset)
{
    uint64_t ne[1] = {4};
    expect_tensor_error(1, ne, RL_TYPE_F32, 4, 256, "alignment");
}
END_TEST

START_TEST(rejects_duplicate_tensor_names)
{
    gb b = {0};
    gb_header(&b, 3, 2, 0);
    uint64_t ne[1] = {8};
    gb_tinfo(&b, "w", 1, ne, RL_TYPE_F32, 0);
    gb_tinfo(&b, "w", 1, ne, RL_TYPE_F32, 32);
    gb_pad(&b, 32);
    for (int i = 0; i < 64; i++) gb_u8(&b, 0);
    rl_gguf *g;
    char err[256];
    ck_assert_int_lt(open_gb(&b, &g, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "duplicate tensor name 'w'"));
    free(b.p);
}
END_TEST

START_TEST(error_messages_have_no_control_bytes)
{
    gb b = {0};
    gb_header(&b, 3, 1, 0);
    uint64_t ne[1] = {8};
    gb_tinfo(&b, "evil\n\x1b[31mname", 1, ne, RL_TYPE_F32, 0);
    gb_pad(&b, 32);
    rl_gguf *g;
    char err[256];
    ck_assert_int_lt(open_gb(&b, &g, err, sizeof err), 0); /* data past end of file */
    ck_assert_ptr_nonnull(strstr(err, "evil??[31mname"));
    free(b.p);
}
END_TEST

START_TEST(rejects_duplicate_keys)
{
    gb b = {0};
    gb_header(&b, 3, 0, 2);
    gb_str(&b, "k"); gb_u32(&b, RL_GGUF_U8); gb_u8(&b, 1);
    gb_str(&b, "k"); gb_u32(&b, RL_GGUF_U8); gb_u8(&b, 2);
    rl_gguf *g;
    char err[256];
    ck_assert_int_lt(open_gb(&b, &g, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "duplicate metadata key 'k'"));
    free(b.p);
}
END_TEST

/* One kv whose value is given raw; expect an error containing want. */
static void expect_kv_error(uint32_t vtype, const void *val, size_t vlen, const char *want)
{
    gb b = {0};
    gb_header(&b, 3, 0, 1);
    gb_str(&b, "general.alignment");
    gb_u32(&b, vtype);
    gb_raw(&b, val, vlen);
    for (int i = 0; i < 64; i++) gb_u8(&b, 0);
    rl_gguf *g;
    char err[256] = "";
    ck_assert_int_lt(open_gb(&b, &g, err, sizeof err), 0);
    ck_assert_msg(strstr(err, want), "error '%s' lacks '%s'", err, want);
    free(b.p);
}

START_TEST(rejects_bad_alignment)
{
    uint32_t v = 48, z = 0;
    expect_kv_error(RL_GGUF_U32, &v, 4, "not a power of two");
    expect_kv_error(RL_GGUF_U32, &z, 4, "not a power of two");
    expect_kv_error(RL_GGUF_STR, "\x01\0\0\0\0\0\0\0x", 9, "general.alignment");
}
END_TEST

START_TEST(rejects_bad_value_types)
{
    uint8_t nested[12] = {RL_GGUF_ARR, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
    uint8_t badelem[12] = {77, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
    uint8_t huge_arr[12] = {RL_GGUF_U32, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f};
    uint8_t huge_strs[12] = {RL_GGUF_STR, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0};
    uint8_t long_str[8] = {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0};
    expect_kv_error(13, nested, 0, "unknown value type 13");
    expect_kv_error(RL_GGUF_ARR, nested, sizeof nested, "nested arrays");
    expect_kv_error(RL_GGUF_ARR, badelem, sizeof badelem, "unknown array element type 77");
    expect_kv_error(RL_GGUF_ARR, huge_arr, sizeof huge_arr, "past end of file");
    expect_kv_error(RL_GGUF_ARR, huge_strs, sizeof huge_strs, "cannot fit");
    expect_kv_error(RL_GGUF_STR, long_str, sizeof long_str, "exceeds");
}
END_TEST

static void expect_header_error(uint32_t version, uint64_t nt, uint64_t nkv, const char *want)
{
    gb b = {0};
    gb_header(&b, version, nt, nkv);
    for (int i = 0; i < 256; i++) gb_u8(&b, 0);
    rl_gguf *g;
    char err[256] = "";
    ck_assert_int_lt(open_gb(&b, &g, err, sizeof err), 0);
    ck_assert_msg(strstr(err, want), "error '%s' lacks '%s'", err, want);
    free(b.p);
}

START_TEST(rejects_bad_header)
{
    expect_header_error(1, 0, 0, "version 1");
    expect_header_error(4, 0, 0, "unsupported GGUF version 4");
    expect_header_error(0x03000000, 0, 0, "big-endian");
    expect_header_error(3, 1ull << 60, 0, "tensor count");
    expect_header_error(3, 0, 1ull << 60, "metadata count");
    gb b = {0};
    gb_raw(&b, "GGML", 4);
    gb_u32(&b, 3);
    rl_gguf *g;
    char err[256];
    ck_assert_int_lt(open_gb(&b, &g, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "bad magic"));
    free(b.p);
}
END_TEST

START_TEST(honors_custom_alignment)
{
    gb b = {0};
    gb_header(&b, 2, 1, 1);
    gb_str(&b, "general.alignment"); gb_u32(&b, RL_GGUF_U32); gb_u32(&b, 64);
    uint64_t ne[1] = {4};
    gb_tinfo(&b, "x", 1, ne, RL_TYPE_F32, 0);
    gb_pad(&b, 64);
    float v[4] = {1, 2, 3, 4};
    gb_raw(&b, v, 16);
    rl_gguf *g;
    char err[256];
    ck_assert_int_eq(open_gb(&b, &g, err, sizeof err), 0);
    ck_assert_uint_eq(g->alignment, 64);
    ck_assert_uint_eq(g->version, 2);
    const rl_gguf_tensor *t = rl_gguf_find_tensor(g, "x");
    ck_assert_uint_eq(((uintptr_t)t->data - (uintptr_t)g->base) % 64, 0);
    ck_assert(((const float *)t->data)[3] == 4.0f);
    rl_gguf_close(g);
    free(b.p);
}
END_TEST

START_TEST(open_reports_missing_file)
{
    rl_gguf *g;
    char err[256] = "";
    ck_assert_int_lt(rl_gguf_open("/nonexistent/dir/model.gguf", &g, err, sizeof err), 0);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/dir/model.gguf"));
    ck_assert_int_lt(rl_gguf_open("/", &g, err, sizeof err), 0);
}
END_TEST

START_TEST(loads_stories260k_shape)
{
    const char *dir = getenv("RL_SHARED_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/models/stories260K.gguf", dir ? dir : "../shared");
    FILE *f = fopen(path, "rb");
    if (!f) {
        printf("skip: %s not found\n", path);
        return;
    }
    fclose(f);
    rl_gguf *g;
    char err[512];
    ck_assert_msg(rl_gguf_open(path, &g, err, sizeof err) == 0, "%s", err);
    ck_assert(g->mapped && g->size == 1185376 && g->alignment == 32);
    uint32_t v;
    rl_gguf_str s;
    ck_assert(rl_gguf_get_str(g, "general.architecture", &s) && rl_gguf_str_eq(s, "llama"));
    ck_assert(rl_gguf_get_arch_u32(g, "llama", "embedding_length", &v) && v == 64);
    ck_assert(rl_gguf_get_arch_u32(g, "llama", "feed_forward_length", &v) && v == 172);
    ck_assert(rl_gguf_get_arch_u32(g, "llama", "block_count", &v) && v == 5);
    ck_assert(rl_gguf_get_arch_u32(g, "llama", "attention.head_count", &v) && v == 8);
    ck_assert(rl_gguf_get_arch_u32(g, "llama", "attention.head_count_kv", &v) && v == 4);
    ck_assert(rl_gguf_get_arch_u32(g, "llama", "context_length", &v) && v == 2048);
    float eps;
    ck_assert(rl_gguf_get_arch_f32(g, "llama", "attention.layer_norm_rms_epsilon", &eps) && eps == 1e-5f);
    const rl_gguf_kv *tok = rl_gguf_get(g, "tokenizer.ggml.tokens");
    ck_assert(tok && tok->type == RL_GGUF_ARR && tok->arr_type == RL_GGUF_STR && tok->arr_n == 512);
    const rl_gguf_tensor *e = rl_gguf_find_tensor(g, "token_embd.weight");
    ck_assert(e && e->ne[0] == 64 && e->ne[1] == 512 && e->type == RL_TYPE_F32);
    const rl_gguf_tensor *k = rl_gguf_find_tensor(g, "blk.4.attn_k.weight");
    ck_assert(k && k->ne[0] == 64 && k->ne[1] == 32);
    const rl_gguf_tensor *up = rl_gguf_find_tensor(g, "blk.0.ffn_up.weight");
    ck_assert(up && up->ne[0] == 64 && up->ne[1] == 172);
    /* The shared README says there is no output.weight; this copy of the file
     * does carry one, a byte-identical copy of token_embd.weight. */
    const rl_gguf_tensor *o = rl_gguf_find_tensor(g, "output.weight");
    ck_assert(o && o->ne[0] == 64 && o->ne[1] == 512 && memcmp(o->data, e->data, e->nbytes) == 0);
    ck_assert_uint_eq(g->n_tensors, 3 + 5 * 9);
    rl_gguf_close(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gguf_read");
    TCase *tc = tcase_create("read");
    tcase_add_test(tc, reads_every_metadata_type);
    tcase_add_test(tc, getters_reject_wrong_type_or_range);
    tcase_add_test(tc, array_element_getters);
    tcase_add_test(tc, reads_tensor_infos_and_data);
    tcase_add_test(tc, every_truncation_fails_cleanly);
    tcase_add_test(tc, rejects_tensor_data_past_end);
    tcase_add_test(tc, rejects_bad_dimensions);
    tcase_add_test(tc, rejects_unknown_type_and_partial_block);
    tcase_add_test(tc, rejects_misaligned_tensor_offset);
    tcase_add_test(tc, rejects_duplicate_tensor_names);
    tcase_add_test(tc, rejects_duplicate_keys);
    tcase_add_test(tc, error_messages_have_no_control_bytes);
    tcase_add_test(tc, rejects_bad_alignment);
    tcase_add_test(tc, rejects_bad_value_types);
    tcase_add_test(tc, rejects_bad_header);
    tcase_add_test(tc, honors_custom_alignment);
    tcase_add_test(tc, open_reports_missing_file);
    tcase_add_test(tc, loads_stories260k_shape);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
