/* rl_cu_step_mvb.c - the GPU model's one-sequence step on rl_cu_mvb (the
 * weights streamed by bulk copies, the norms inside the products; a layer's
 * products optionally chained in one launch) and when the step takes it. */
#include <stdlib.h>

#include "rl_cu_layer.h"
#include "rl_cu_model_impl.h"

enum { MVB_AUTO = 2 };

rl_cu_chain_prod rl_cu_mvb_prod(rl_cu_model *m, int which, uint32_t l)
{
    rl_cu_layer *L = &m->layers[l];
    switch (which) {
    case RL_CU_MVB_QKV: return (rl_cu_chain_prod){L->wqkv, m->x, L->attn_norm, m->qkv, RL_CU_MV_STORE};
    case RL_CU_MVB_O: return (rl_cu_chain_prod){L->wo, m->attn.f, NULL, m->x, RL_CU_MV_ADD};
    case RL_CU_MVB_GU: return (rl_cu_chain_prod){L->wgu, m->x, L->ffn_norm, m->ffn.f, RL_CU_MV_GLU};
    case RL_CU_MVB_DOWN: return (rl_cu_chain_prod){L->wdown, m->ffn.f, NULL, m->x, RL_CU_MV_ADD};
    default: return (rl_cu_chain_prod){m->output, m->x, m->output_norm, m->logits.f, RL_CU_MV_STORE};
    }
}

int rl_cu_mvb_run(rl_cu_model *m, int which, uint32_t l)
{
    rl_cu_chain_prod p = rl_cu_mvb_prod(m, which, l);
    return rl_cu_mvb(&p.m, p.x, p.g, m->c.rms_eps, p.mode, p.y, m->s);
}

void rl_cu_model_set_mvb_chain(rl_cu_model *m, bool on)
{
    rl_cu_flag_set(m, &m->mvb_chain, on);
}

void rl_cu_model_set_mvb(rl_cu_model *m, int on)
{
    int f = on < 0 ? MVB_AUTO : on > 0;
    if (m->mvb != f)
        rl_cu_model_drop_graphs(m);
    m->mvb = f;
}

/* Whether a step of n tokens runs on rl_cu_mvb: one sequence, every layer's
 * fused Q|K|V and gate|up and its O and down taken by rl_cu_mvb, and on
 * (rl_cu_model_set_mvb or RL_CU_MVB=1) or automatic (the default) with the
 * model at least RL_CU_MVB_MIN_EMBD wide. Measured on an H100 (session 16,
 * docs/PERFORMANCE.md): Llama 2 7B (4,096 wide) Q4_0 527-531 tok/s against
 * 475-477 on the matvecs, Q8_0 345-352 against 313-314, F16 206-208 against
 * 173-174; TinyLlama Q4_0 (2,048) 1,447-1,521 against 1,650 (a kernel's
 * fixed start and end weigh more on small products; its other types were
 * not measured on this path). */
bool rl_cu_model_mvb_step(rl_cu_model *m, int n)
{
    if (m->mvb < 0) {
        const char *e = getenv("RL_CU_MVB");
        m->mvb = e && e[0] == '1' ? 1 : e && e[0] == '0' ? 0 : MVB_AUTO;
    }
    if (n != 1 || m->mvb == 0 || (m->mvb == MVB_AUTO && m->c.n_embd < RL_CU_MVB_MIN_EMBD))
        return false;
    for (uint32_t l = 0; l < m->c.n_layer; l++) {
        if (m->layers[l].wk.q || m->layers[l].wup.q)
            return false; /* split Q, K, V or gate, up */
        for (int k = RL_CU_MVB_QKV; k <= RL_CU_MVB_DOWN; k++) {
            rl_cu_chain_prod p = rl_cu_mvb_prod(m, k, l);
            if (!rl_cu_mvb_ok(&p.m, p.mode))
                return false;
        }
    }
    return true;
}

/* One sequence on rl_cu_mvb: each product quantizes its fp32 input itself,
 * the norms inside the products that read them; the output product too where
 * rl_cu_mvb takes it. */
int rl_cu_step_mvb(rl_cu_model *m)
{
    const rl_cu_model_cfg *c = &m->c;
    cudaStream_t s = m->s;
    float eps = c->rms_eps;
    int n_split = rl_cu_attn_splits(1, c->n_head);
    const int32_t *pos = rl_cu_din(m, RL_CU_IN_POS), *row = rl_cu_din(m, RL_CU_IN_ROW);
    bool chain = rl_cu_flag_get(&m->mvb_chain, "RL_CU_MVB_CHAIN", false);
    bool out_mvb = rl_cu_mvb_ok(&m->output, RL_CU_MV_STORE);
    RL_CU_TRY(rl_cu_mat_get_rows(&m->tok_embd, rl_cu_din(m, RL_CU_IN_TOK), 1, m->x, s));
    if (chain)
        RL_CU_TRY(rl_cu_mvb_run(m, RL_CU_MVB_QKV, 0));
    for (uint32_t l = 0; l < c->n_layer; l++) {
        rl_cu_layer *L = &m->layers[l];
        if (!chain) /* chained: this Q|K|V ran in the layer before's launch */
            RL_CU_TRY(rl_cu_mvb_run(m, RL_CU_MVB_QKV, l));
        if (L->bqkv)
            RL_CU_TRY(rl_cu_add_bias(m->qkv, L->bqkv, rl_cu_qkv_dim(c), 1, s));
        RL_CU_TRY(rl_cu_rope_kv_paged(m->qkv, 1, pos, row, &m->rope, &m->kv, l, m->q, s));
        RL_CU_TRY(rl_cu_attn_paged(m->q, pos, row, 1, &m->rope, &m->kv, l, n_split, m->attn_scratch, &m->attn, s));
        if (chain) { /* O, gate/up, down and the next Q|K|V (or the output) in one launch */
            rl_cu_chain_prod p[RL_CU_CHAIN_MAX];
            int np = 0;
            for (int k = RL_CU_MVB_O; k <= RL_CU_MVB_DOWN; k++)
                p[np++] = rl_cu_mvb_prod(m, k, l);
            if (l + 1 < c->n_layer)
                p[np++] = rl_cu_mvb_prod(m, RL_CU_MVB_QKV, l + 1);
            else if (out_mvb)
                p[np++] = rl_cu_mvb_prod(m, RL_CU_MVB_OUT, 0);
            RL_CU_TRY(rl_cu_mvb_chain(p, np, eps, m->chain_done + (size_t)l * (RL_CU_CHAIN_MAX + 1), s));
            continue;
        }
        for (int k = RL_CU_MVB_O; k <= RL_CU_MVB_DOWN; k++)
            RL_CU_TRY(rl_cu_mvb_run(m, k, l));
    }
    if (out_mvb) {
        if (!chain)
            RL_CU_TRY(rl_cu_mvb_run(m, RL_CU_MVB_OUT, 0));
    } else {
        RL_CU_TRY(rl_cu_rmsnorm(m->x, m->output_norm, eps, c->n_embd, 1, &m->xn, s));
        RL_CU_TRY(rl_cu_model_product(m, &m->output, &m->xn, 1, RL_CU_MV_STORE, &m->logits));
    }
    return rl_cu_argmax(m->logits.f, c->n_vocab, 1, m->d_out, s);
}

