/* test_model_load.c - hostile or unsupported model files give clear errors. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tm_util.h"

static int load_spec(const tm_spec *sp, char *err, size_t errlen)
{
    char path[] = "/tmp/rl_test_load_XXXXXX";
    ck_assert_int_eq(tm_make_model(sp, path), 0);
    rl_model *m = NULL;
    int rc = rl_model_load(path, &m, err, errlen);
    if (rc == 0)
        rl_model_free(m);
    else
        ck_assert_ptr_null(m);
    unlink(path);
    return rc;
}

START_TEST(valid_model_loads_with_its_shape)
{
    tm_spec sp = tm_default_spec(RL_TYPE_Q4_0);
    char path[] = "/tmp/rl_test_load_XXXXXX", err[256];
    ck_assert_int_eq(tm_make_model(&sp, path), 0);
    rl_model *m;
    ck_assert_int_eq(rl_model_load(path, &m, err, sizeof err), 0);
    ck_assert_uint_eq(m->hp.n_vocab, 320);
    ck_assert_uint_eq(m->hp.head_dim, 64);
    ck_assert_uint_eq(m->hp.n_head_kv, 2);
    ck_assert_int_eq(m->main_type, RL_TYPE_Q4_0);
    ck_assert_ptr_ne(m->output.data, m->tok_embd.data);
    rl_model_free(m);
    unlink(path);
}
END_TEST

START_TEST(unsupported_architecture_is_refused_by_name)
{
    tm_spec sp = tm_default_spec(RL_TYPE_F32);
    sp.arch = "gpt2";
    char err[256] = "";
    ck_assert_int_eq(load_spec(&sp, err, sizeof err), -ENOTSUP);
    ck_assert_ptr_nonnull(strstr(err, "gpt2"));
}
END_TEST

START_TEST(misshaped_matrix_is_refused_naming_the_tensor)
{
    tm_spec sp = tm_default_spec(RL_TYPE_F32);
    sp.bad_shape = "blk.1.attn_k.weight";
    char err[256] = "";
    ck_assert_int_eq(load_spec(&sp, err, sizeof err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "blk.1.attn_k.weight"));
}
END_TEST

START_TEST(misshaped_norm_is_refused)
{
    tm_spec sp = tm_default_spec(RL_TYPE_F32);
    sp.bad_shape = "blk.0.ffn_norm.weight";
    char err[256] = "";
    ck_assert_int_eq(load_spec(&sp, err, sizeof err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "blk.0.ffn_norm.weight"));
}
END_TEST

START_TEST(missing_tensor_is_refused_naming_it)
{
    tm_spec sp = tm_default_spec(RL_TYPE_F32);
    sp.missing = "blk.1.ffn_down.weight";
    char err[256] = "";
    ck_assert_int_eq(load_spec(&sp, err, sizeof err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "blk.1.ffn_down.weight"));
}
END_TEST

START_TEST(unsupported_tensor_type_is_refused_by_name)
{
    tm_spec sp = tm_default_spec(RL_TYPE_F32);
    sp.raw_unsupported = "blk.0.ffn_up.weight";
    char err[256] = "";
    ck_assert_int_eq(load_spec(&sp, err, sizeof err), -ENOTSUP);
    ck_assert_ptr_nonnull(strstr(err, "blk.0.ffn_up.weight"));
    ck_assert_ptr_nonnull(strstr(err, "Q2_K"));
}
END_TEST

START_TEST(missing_output_weight_means_tied_embeddings)
{
    tm_spec sp = tm_default_spec(RL_TYPE_F32);
    sp.tied = true;
    char path[] = "/tmp/rl_test_load_XXXXXX", err[256];
    ck_assert_int_eq(tm_make_model(&sp, path), 0);
    rl_model *m;
    ck_assert_int_eq(rl_model_load(path, &m, err, sizeof err), 0);
    ck_assert_ptr_eq(m->output.data, m->tok_embd.data);
    rl_model_free(m);
    unlink(path);
}
END_TEST

START_TEST(head_count_not_dividing_embedding_is_refused)
{
    tm_spec sp = tm_default_spec(RL_TYPE_F32);
    sp.n_head = 3; /* 256 / 3 */
    sp.n_head_kv = 3;
    char err[256] = "";
    ck_assert_int_lt(load_spec(&sp, err, sizeof err), 0);
    ck_assert(strlen(err) > 0);
}
END_TEST

START_TEST(truncated_file_is_refused)
{
    tm_spec sp = tm_default_spec(RL_TYPE_F32);
    char path[] = "/tmp/rl_test_load_XXXXXX", err[256] = "";
    ck_assert_int_eq(tm_make_model(&sp, path), 0);
    ck_assert_int_eq(truncate(path, 4096), 0);
    rl_model *m = NULL;
    ck_assert_int_lt(rl_model_load(path, &m, err, sizeof err), 0);
    ck_assert_ptr_null(m);
    ck_assert(strlen(err) > 0);
    unlink(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("model_load");
    TCase *tc = tcase_create("load");
    tcase_add_test(tc, valid_model_loads_with_its_shape);
    tcase_add_test(tc, unsupported_architecture_is_refused_by_name);
    tcase_add_test(tc, misshaped_matrix_is_refused_naming_the_tensor);
    tcase_add_test(tc, misshaped_norm_is_refused);
    tcase_add_test(tc, missing_tensor_is_refused_naming_it);
    tcase_add_test(tc, missing_output_weight_means_tied_embeddings);
    tcase_add_test(tc, unsupported_tensor_type_is_refused_by_name);
    tcase_add_test(tc, head_count_not_dividing_embedding_is_refused);
    tcase_add_test(tc, truncated_file_is_refused);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? EXIT_FAILURE : EXIT_SUCCESS;
}
