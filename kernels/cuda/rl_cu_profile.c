/* rl_cu_profile.c - time each op of the GPU decode step alone. */
#include <errno.h>

#include "rl_cu_layer.h"
#include "rl_cu_model_impl.h"

/* ---- profile: each op of the decode step alone, as a graph of R repeats ---- */
enum { P_EMBD, P_NORM, P_QKV, P_ROPE, P_ATTN, P_O, P_GU, P_DOWN, P_OUT, P_ARGMAX, P_N };
static const char *const p_names[P_N] = {"embed", "rmsnorm", "qkv matvec", "rope+kv", "attention",
                                         "o matvec+add", "gate/up glu", "down matvec+add", "output matvec", "argmax"};

/* The step's rl_cu_mvb product that op is (RL_CU_MVB_*), or -1. */
static int mvb_which(int op)
{
    switch (op) {
    case P_QKV: return RL_CU_MVB_QKV;
    case P_O: return RL_CU_MVB_O;
    case P_GU: return RL_CU_MVB_GU;
    case P_DOWN: return RL_CU_MVB_DOWN;
    case P_OUT: return RL_CU_MVB_OUT;
    default: return -1;
    }
}

/* One op as the step runs it; defer: the step's deferred norms (the residual
 * products carry them, the products after them read xn.ss); mvb: the step on
 * rl_cu_mvb (a product's norm inside it, or its kernel with the matvec where
 * rl_cu_mvb does not take the matrix). */
static int enqueue_op(rl_cu_model *m, int op, int n, uint32_t l, bool defer, bool mvb)
{
    if (mvb && mvb_which(op) >= 0)
        return rl_cu_mvb_run(m, mvb_which(op), l);
    const rl_cu_model_cfg *c = &m->c;
    rl_cu_layer *L = &m->layers[l];
    cudaStream_t s = m->s;
    rl_cu_act xres = {.f = m->x, .n = c->n_embd}, xn = m->xn;
    if (defer)
        xn.ss = m->xss, xn.eps = c->rms_eps;
    const int32_t *pos = m->d_in + m->max_rows, *row = m->d_in + 2 * (size_t)m->max_rows;
    switch (op) {
    case P_EMBD: return rl_cu_mat_get_rows(&m->tok_embd, m->d_in, n, m->x, s);
    case P_NORM: return rl_cu_rmsnorm(m->x, L->attn_norm, c->rms_eps, c->n_embd, n, &xn, s);
    case P_QKV: return rl_cu_layer_qkv(c, L, &xn, n, m->qkv, s);
    case P_ROPE: return rl_cu_rope_kv_paged(m->qkv, n, pos, row, &m->rope, &m->kv, l, m->q, s);
    case P_ATTN:
        return rl_cu_attn_paged(m->q, pos, row, n, &m->rope, &m->kv, l, rl_cu_attn_splits(n, c->n_head),
                                m->attn_scratch, &m->attn, s);
    case P_O:
        return defer ? rl_cu_matvec_add_norm(&L->wo, &m->attn, n, &xres, L->ffn_norm, &xn, s)
                     : rl_cu_model_product(m, &L->wo, &m->attn, n, RL_CU_MV_ADD, &xres);
    case P_GU: return rl_cu_layer_glu(c, L, &xn, n, m->gu, &m->ffn, s);
    case P_DOWN:
        return defer ? rl_cu_matvec_add_norm(&L->wdown, &m->ffn, n, &xres, rl_cu_next_norm(m, l), &xn, s)
                     : rl_cu_model_product(m, &L->wdown, &m->ffn, n, RL_CU_MV_ADD, &xres);
    case P_OUT: return rl_cu_model_product(m, &m->output, &xn, n, RL_CU_MV_STORE, &m->logits);
    default: return rl_cu_argmax(m->logits.f, c->n_vocab, n, m->d_out, s);
    }
}

int rl_cu_model_profile(rl_cu_model *m, int n, int32_t pos, FILE *out)
{
    if (n < 1 || (uint32_t)n > m->max_batch || (uint32_t)n > m->c.n_slots || pos < 0 || (uint32_t)pos >= m->c.n_ctx)
        return -EINVAL;
    /* sequence i: token i at pos in slot i (the slot API's fixed blocks) */
    size_t rows = m->max_rows;
    int32_t *h = m->h_in, *bt = m->h_in + 4 * rows;
    for (int i = 0; i < n; i++) {
        h[i] = i;
        h[rows + i] = pos;
        h[2 * rows + i] = i;
        for (uint32_t k = 0; k < m->bt_stride; k++)
            bt[(size_t)i * m->bt_stride + k] = (int32_t)(i * m->bt_stride + k);
    }
    RL_CU_TRY(rl_cu_check(cudaMemcpy(m->d_in, h, 4 * rows * 4, cudaMemcpyHostToDevice), "ids"));
    RL_CU_TRY(rl_cu_check(cudaMemcpy(m->d_bt, bt, (size_t)n * m->bt_stride * 4, cudaMemcpyHostToDevice), "tables"));
    const int R = 64;
    bool mvb = rl_cu_model_mvb_step(m, n), defer = !mvb && rl_cu_step_norm_deferred(m, n);
    double us[P_N];
    cudaEvent_t e0, e1;
    RL_CU_TRY(rl_cu_check(cudaEventCreate(&e0), "event"));
    RL_CU_TRY(rl_cu_check(cudaEventCreate(&e1), "event"));
    for (int op = 0; op < P_N; op++) {
        cudaGraph_t g;
        cudaGraphExec_t ge;
        RL_CU_TRY(rl_cu_check(cudaStreamBeginCapture(m->s, cudaStreamCaptureModeThreadLocal), "capture"));
        int rc = 0;
        for (int r = 0; r < R && !rc; r++)
            /* cycle layers: weights from DRAM */
            rc = enqueue_op(m, op, n, (uint32_t)r % m->c.n_layer, defer, mvb);
        cudaError_t e = cudaStreamEndCapture(m->s, &g);
        RL_CU_TRY(rc);
        RL_CU_TRY(rl_cu_check(e, "end capture"));
        e = cudaGraphInstantiate(&ge, g, 0);
        cudaGraphDestroy(g);
        RL_CU_TRY(rl_cu_check(e, "instantiate"));
        float best = 1e30f;
        for (int it = 0; it < 4; it++) {
            cudaEventRecord(e0, m->s);
            cudaGraphLaunch(ge, m->s);
            cudaEventRecord(e1, m->s);
            RL_CU_TRY(rl_cu_check(cudaEventSynchronize(e1), "profile"));
            float ms;
            cudaEventElapsedTime(&ms, e0, e1);
            if (it > 0 && ms < best)
                best = ms;
        }
        cudaGraphExecDestroy(ge);
        us[op] = best * 1e3 / R;
    }
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    /* deferred: only the first norm is a kernel; mvb: none of its own (inside
     * the products, or counted with the product that needs one) */
    int norms = mvb ? 0 : defer ? 1 : 2 * (int)m->c.n_layer + 1;
    double per_layer = us[P_QKV] + us[P_ROPE] + us[P_ATTN] + us[P_O] + us[P_GU] + us[P_DOWN];
    double total = us[P_EMBD] + m->c.n_layer * per_layer + norms * us[P_NORM] + us[P_OUT] + us[P_ARGMAX];
    fprintf(out, "profile: batch %d, position %d (each op alone, graph of %d, median-free best of 3)%s\n", n, pos, R,
            mvb     ? "; products on rl_cu_mvb, the norms inside them"
            : defer ? "; norms deferred into the o/down products"
                    : "");
    for (int op = 0; op < P_N; op++) {
        int times = op == P_EMBD || op == P_OUT || op == P_ARGMAX ? 1 : op == P_NORM ? norms : (int)m->c.n_layer;
        fprintf(out, "  %-16s %8.2f us x %3d = %8.1f us (%4.1f%%)\n", p_names[op], us[op], times, us[op] * times,
                100.0 * us[op] * times / total);
    }
    fprintf(out, "  sum %.1f us/token -> %.0f tok/s\n", total, 1e6 / total * n);
    return 0;
}
