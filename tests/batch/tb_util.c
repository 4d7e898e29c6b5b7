/* tb_util.c - batching test helpers. */
#include "tb_util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tm_util.h"

static char g_path[64];
static const char *g_other;
static tb_factory g_factory;

void tb_set_factory(tb_factory f)
{
    g_factory = f;
}

void tb_use_model(const char *path)
{
    g_other = path;
}

static void remove_model(void)
{
    if (g_path[0])
        unlink(g_path);
}

const char *tb_model_path(void)
{
    if (!g_path[0]) {
        strcpy(g_path, "/tmp/rl_test_batchm_XXXXXX");
        tm_spec sp = tm_default_spec(RL_TYPE_F32);
        sp.n_ctx = 512;
        ck_assert_int_eq(tm_make_model(&sp, g_path), 0);
        atexit(remove_model);
    }
    return g_path;
}

rl_engine *tb_engine(uint32_t step_tokens, uint32_t kv_blocks, uint32_t n_ctx)
{
    if (g_factory) {
        uint64_t budget = 0;
        if (kv_blocks) {
            rl_model *m;
            char err[256];
            ck_assert_int_eq(rl_model_load(g_other ? g_other : tb_model_path(), &m, err, sizeof err), 0);
            budget = (uint64_t)kv_blocks *
                     rl_kv_block_bytes(m->hp.n_layer, m->hp.n_head_kv, m->hp.head_dim, RL_TYPE_F16);
            rl_model_free(m);
        }
        rl_engine *e = g_factory(g_other ? g_other : tb_model_path(), step_tokens, budget, n_ctx);
        ck_assert_ptr_nonnull(e);
        return e;
    }
    rl_llm_opts o;
    rl_llm_opts_default(&o);
    o.n_threads = 2;
    o.kv_type = RL_TYPE_F32;
    o.step_tokens = step_tokens;
    o.n_ctx = n_ctx;
    if (kv_blocks && !g_other) {
        tm_spec sp = tm_default_spec(RL_TYPE_F32);
        o.kv_budget_bytes = (uint64_t)kv_blocks *
                            rl_kv_block_bytes(sp.n_layer, sp.n_head_kv, sp.n_embd / sp.n_head, RL_TYPE_F32);
    }
    rl_engine *e = NULL;
    char err[256];
    int rc = rl_engine_llm_create_opts(g_other ? g_other : tb_model_path(), &o, &e, err, sizeof err);
    ck_assert_msg(rc == 0, "create: %s", err);
    return e;
}

uint32_t tb_run(rl_engine *e, tb_req *r, uint32_t n)
{
    rl_step_item *it = calloc(n, sizeof *it);
    uint32_t *idx = calloc(n, sizeof *idx);
    ck_assert_ptr_nonnull(it);
    uint32_t step = 0;
    for (uint32_t i = 0; i < n; i++) {
        r[i].got = 0;
        r[i].seq = NULL;
        r[i].first_step = UINT32_MAX;
    }
    for (;; step++) {
        ck_assert_uint_lt(step, 20000);
        uint32_t live = 0, m = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (r[i].got < r[i].n_gen && step >= r[i].start_step && !r[i].seq) {
                rl_seq_desc d = {.prompt = r[i].prompt, .n_prompt = r[i].n_prompt, .max_tokens = r[i].n_gen,
                                 .sampling = {.temperature = 0, .top_p = 1, .repeat_penalty = 1},
                                 .priority = r[i].priority};
                ck_assert_int_eq(e->ops->seq_new(e, &d, &r[i].seq), 0);
            }
            live += r[i].got < r[i].n_gen;
        }
        if (!live)
            break;
        for (int pr = 255; pr >= 0; pr--)
            for (uint32_t i = 0; i < n; i++)
                if (r[i].seq && r[i].priority == pr) {
                    idx[m] = i;
                    it[m++] = (rl_step_item){.seq = r[i].seq};
                }
        if (!m)
            continue;
        ck_assert_int_eq(e->ops->step(e, it, m), 0);
        for (uint32_t k = 0; k < m; k++) {
            tb_req *q = &r[idx[k]];
            ck_assert_msg(it[k].status == 0, "request %u failed: %d", idx[k], it[k].status);
            if (it[k].token < 0)
                continue;
            if (q->got == 0)
                q->first_step = step;
            q->out[q->got++] = it[k].token;
            if (q->got == q->n_gen) {
                e->ops->seq_free(e, q->seq);
                q->seq = NULL;
            }
        }
    }
    free(it);
    free(idx);
    return step;
}

void tb_solo(const tb_req *r, uint32_t step_tokens, int32_t *out)
{
    rl_engine *e = tb_engine(step_tokens, 0, 0);
    tb_req q = *r;
    q.start_step = 0;
    tb_run(e, &q, 1);
    memcpy(out, q.out, sizeof(int32_t) * q.n_gen);
    e->ops->destroy(e);
}

void tb_stats(rl_engine *e, rl_engine_stats *st)
{
    ck_assert_ptr_nonnull(e->ops->get_stats);
    e->ops->get_stats(e, st);
}
