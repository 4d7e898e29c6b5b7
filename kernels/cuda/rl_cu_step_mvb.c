/* rl_cu_step_mvb.c - the GPU model's one-sequence step on rl_cu_mvb (the
 * weights streamed by bulk copies, the norms inside the products) and when
 * the step takes it. */
#include <stdlib.h>

#include "rl_cu_layer.h"
#include "rl_cu_model_impl.h"

enum { MVB_AUTO = 2 };

int rl_cu_mvb_parts(rl_cu_model *m, int which, uint32_t l, rl_cu_mvb_part p[3])
{
    rl_cu_layer *L = &m->layers[l];
    switch (which) {
    case RL_CU_MVB_QKV: {
        const rl_cu_mat *mats[3];
        int n = rl_cu_layer_qkv_parts(L, mats);
        int64_t off = 0;
        for (int i = 0; i < n; off += mats[i]->rows, i++)
            p[i] = (rl_cu_mvb_part){mats[i], m->x, L->attn_norm, m->qkv + off, RL_CU_MV_STORE};
        return n;
    }
    case RL_CU_MVB_O: p[0] = (rl_cu_mvb_part){&L->wo, m->attn.f, NULL, m->x, RL_CU_MV_ADD}; return 1;
    case RL_CU_MVB_GU:
        if (!L->wup.q) {
            p[0] = (rl_cu_mvb_part){&L->wgu, m->x, L->ffn_norm, m->ffn.f, RL_CU_MV_GLU};
            return 1;
        }
        p[0] = (rl_cu_mvb_part){&L->wgu, m->x, L->ffn_norm, m->gu, RL_CU_MV_STORE};
        p[1] = (rl_cu_mvb_part){&L->wup, m->x, L->ffn_norm, m->gu + m->c.n_ff, RL_CU_MV_STORE};
        return 2;
    case RL_CU_MVB_DOWN: p[0] = (rl_cu_mvb_part){&L->wdown, m->ffn.f, NULL, m->x, RL_CU_MV_ADD}; return 1;
    default: p[0] = (rl_cu_mvb_part){&m->output, m->x, m->output_norm, m->logits.f, RL_CU_MV_STORE}; return 1;
    }
}

/* A matrix rl_cu_mvb does not take (or an O product left to the matvec by
 * choice: o_on_matvec below), as the matvec step runs it: its normed
 * input in m->xn (a norm kernel), or the GLU output quantized for an int8
 * product; the output fp32 (GLU: m->ffn, quantized by the product). */
static int part_on_matvec(rl_cu_model *m, const rl_cu_mvb_part *p)
{
    cudaStream_t s = m->s;
    rl_cu_act *x = p->x == m->attn.f ? &m->attn : &m->ffn;
    if (p->g) {
        RL_CU_TRY(rl_cu_rmsnorm(p->x, p->g, m->c.rms_eps, p->m->cols, 1, &m->xn, s));
        x = &m->xn;
    } else if (x->q && rl_cu_type_q8(p->m->type) && (x == &m->ffn || m->c.head_dim % 32)) {
        /* rl_cu_mvb and rl_cu_swiglu write f only, the attention q only
         * for head sizes that are multiples of 32 */
        RL_CU_TRY(rl_cu_quantize(x, 1, s));
    }
    if (p->mode == RL_CU_MV_GLU)
        return rl_cu_model_product(m, p->m, x, 1, RL_CU_MV_GLU, &m->ffn);
    rl_cu_act y = {.f = p->y, .n = p->m->rows};
    return rl_cu_model_product(m, p->m, x, 1, p->mode, &y);
}

/* Whether the one-sequence step runs the O product (weights of type t) on
 * the dp4a matvec rather than rl_cu_mvb. Inside the step rl_cu_mvb's O
 * costs far more than alone (H100, session 22: leaving it out of the 7B Q4_0
 * step saves 8.0 us a layer, against 4.8 us for the product alone and 3.2 us
 * of weights at the copy bandwidth): its CTAs, one per SM with a 144 KB
 * ring, start streaming only once the attention's blocks have left, where
 * the matvec's small CTAs load their weights before the PDL wait beside
 * them. 7B Q4_0 580-584 tok/s against 557-559, Q4_K_M 497-501 against
 * 477-480, Q8_0 368.6 against 360.6, TinyLlama Q4_K_M 1,699-1,709 against
 * 1,608-1,611; not faster for Q5_K (Q5_K_M 424.7 against 427.8), Q6_K
 * (392.0 / 391.0) or F16 (210.0 / 215.0), which keep rl_cu_mvb.
 * RL_CU_MVB_O=1: rl_cu_mvb for every type it takes, 0: the matvec for
 * every type (measurements). */
static bool o_on_matvec(rl_type t)
{
    static int v = -2;
    if (v == -2) {
        const char *e = getenv("RL_CU_MVB_O");
        v = e && e[0] == '1' ? 1 : e && e[0] == '0' ? 0 : -1;
    }
    if (v >= 0)
        return v == 0;
    return t == RL_TYPE_Q4_0 || t == RL_TYPE_Q8_0 || t == RL_TYPE_Q4_K;
}

/* Where part p of product `which` runs in the one-sequence step: 1 on
 * rl_cu_mvb, 0 on the matvec path by choice (o_on_matvec), -1 on the matvec
 * path because rl_cu_mvb does not take it. */
static int part_place(const rl_cu_mvb_part *p, int which)
{
    static int mv = -1; /* RL_CU_MVB_MV: products forced onto the matvec (measurement) */
    if (mv < 0) {
        const char *e = getenv("RL_CU_MVB_MV");
        mv = e ? atoi(e) & 15 : 0;
    }
    if ((which == RL_CU_MVB_O && o_on_matvec(p->m->type)) || (which <= RL_CU_MVB_DOWN && (mv >> which & 1)))
        return 0;
    return rl_cu_mvb_ok(p->m, p->mode) ? 1 : -1;
}

/* Whether layer l's GLU output goes from the gate/up product to the down
 * product as halves (rl_cu_mvb_ex's hand-off): both on rl_cu_mvb, gate and
 * up fused, int8 down weights. Each of the down product's CTAs reads its
 * whole input after its PDL wait, 11,008 values for a 7B model: as floats
 * that took 3.1 us of a 9.3 us product (session 31's per-block timeline;
 * 132 CTAs x 44 KB out of L2 while the weights stream), as halves the step
 * ran 1,291-1,292 against 1,333-1,334 us (7B Q4_0, H200; Q8_0 1,906
 * against 1,936, Q4_K_M 1,650 against 1,652). The rounding to fp16 comes
 * before the int8 quantization of 32-blocks, which loses far more; values
 * past 65,504 saturate. Default on; RL_CU_MVB_H16=0: floats. */
static bool ffn_h16(rl_cu_model *m, uint32_t l)
{
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("RL_CU_MVB_H16");
        on = !(e && e[0] == '0');
    }
    if (!on)
        return false;
    rl_cu_mvb_part g[3], d[3];
    if (rl_cu_mvb_parts(m, RL_CU_MVB_GU, l, g) != 1 || rl_cu_mvb_parts(m, RL_CU_MVB_DOWN, l, d) != 1)
        return false;
    return part_place(&g[0], RL_CU_MVB_GU) == 1 && part_place(&d[0], RL_CU_MVB_DOWN) == 1 &&
           rl_cu_type_q8(d[0].m->type);
}

int rl_cu_mvb_run(rl_cu_model *m, int which, uint32_t l)
{
    rl_cu_mvb_part p[3];
    int n = rl_cu_mvb_parts(m, which, l, p);
    int hf = (which == RL_CU_MVB_GU || which == RL_CU_MVB_DOWN) && ffn_h16(m, l)
                 ? (which == RL_CU_MVB_GU ? RL_CU_MVB_HOUT : RL_CU_MVB_HIN)
                 : 0;
    for (int i = 0; i < n; i++) {
        if (part_place(&p[i], which) == 1)
            RL_CU_TRY(rl_cu_mvb_ex(p[i].m, p[i].x, p[i].g, m->c.rms_eps, p[i].mode, p[i].y, hf, m->s));
        else
            RL_CU_TRY(part_on_matvec(m, &p[i]));
    }
    if (which == RL_CU_MVB_GU && n == 2) /* split gate and up */
        return rl_cu_swiglu(m->gu, m->c.n_ff, 1, m->ffn.f, m->s);
    return 0;
}

/* Whether layer l's Q|K|V products rotate q and k and write the KV rows
 * themselves (rl_cu_mvb_rope_kv: no RoPE kernel between them and the
 * attention): every part on rl_cu_mvb and taken there, no bias. Off by
 * default, RL_CU_MVB_ROPE=1: on. Measured on an H100 (session 26,
 * docs/PERFORMANCE.md): slower than the RoPE kernel in every form measured
 * (7B Q4_0 replayed step 1,617-1,631 against 1,567-1,569 us with the
 * products compiled apart); the committed form, its lookups and angles in a
 * warp of their own (rope_prep), has not run on a GPU yet. */
static bool qkv_rope_fused(const rl_cu_model *m, uint32_t l, const rl_cu_mvb_part *p, int n)
{
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("RL_CU_MVB_ROPE");
        on = e && e[0] == '1';
    }
    if (!on || m->layers[l].bqkv)
        return false;
    for (int i = 0; i < n; i++)
        if (part_place(&p[i], RL_CU_MVB_QKV) != 1 || !rl_cu_mvb_rope_ok(p[i].m, &m->rope, &m->kv))
            return false;
    return true;
}

/* Layer l's Q|K|V products, then the RoPE and KV write: fused into the
 * products where qkv_rope_fused says so. */
static int qkv_rope(rl_cu_model *m, uint32_t l, const int32_t *pos, const int32_t *row)
{
    rl_cu_mvb_part p[3];
    int n = rl_cu_mvb_parts(m, RL_CU_MVB_QKV, l, p);
    if (!qkv_rope_fused(m, l, p, n)) {
        RL_CU_TRY(rl_cu_mvb_run(m, RL_CU_MVB_QKV, l));
        if (m->layers[l].bqkv)
            RL_CU_TRY(rl_cu_add_bias(m->qkv, m->layers[l].bqkv, rl_cu_qkv_dim(&m->c), 1, m->s));
        return rl_cu_rope_kv_paged(m->qkv, 1, pos, row, &m->rope, &m->kv, l, m->q, m->s);
    }
    for (int i = 0; i < n; i++) {
        rl_cu_mvb_rope rp = {&m->rope, &m->kv, l, pos, row, m->q, p[i].y - m->qkv};
        RL_CU_TRY(rl_cu_mvb_rope_kv(p[i].m, p[i].x, p[i].g, m->c.rms_eps, &rp, m->s));
    }
    return 0;
}

void rl_cu_model_set_mvb(rl_cu_model *m, int on)
{
    int f = on < 0 ? MVB_AUTO : on > 0;
    if (m->mvb != f)
        rl_cu_model_drop_graphs(m);
    m->mvb = f;
}

/* Whether any layer matrix is a K-quant, F16/BF16 or Q8_0: the types whose
 * matvec step loses to the rl_cu_mvb step at any width (TinyLlama, 2,048
 * wide: Q4_K_M 1,339 against 1,251 tok/s in session 17, F16 977-980 against
 * 760-762 in session 18; Q8_0 1,602-1,607 against 1,475-1,485 in session 22,
 * once that step left the O product to the matvec; Q4_0 stays faster on the
 * matvec step there, 1,742-1,749 against 1,717-1,734). */
static bool has_slow_matvec(const rl_cu_model *m)
{
    for (uint32_t l = 0; l < m->c.n_layer; l++) {
        const rl_cu_layer *L = &m->layers[l];
        const rl_cu_mat *w[7] = {&L->wqkv, &L->wk, &L->wv, &L->wo, &L->wgu, &L->wup, &L->wdown};
        for (int i = 0; i < 7; i++)
            if (w[i]->q && (w[i]->type == RL_TYPE_Q4_K || w[i]->type == RL_TYPE_Q5_K || w[i]->type == RL_TYPE_Q6_K ||
                            w[i]->type == RL_TYPE_F16 || w[i]->type == RL_TYPE_BF16 || w[i]->type == RL_TYPE_Q8_0))
                return true;
    }
    return false;
}

/* Whether a step of n tokens runs on rl_cu_mvb: one sequence, and on
 * (rl_cu_model_set_mvb or RL_CU_MVB=1) with rl_cu_mvb taking at least one
 * matrix of every layer, or automatic (the default) with rl_cu_mvb taking
 * every matrix of every layer but the O products it leaves to the matvec by
 * choice (o_on_matvec; the matvec step, with its deferred norms,
 * serves files where many matrices would need a norm kernel each, such as a
 * SmolLM Q4_K_M's Q5_0 matrices 576 wide) and the model at least
 * RL_CU_MVB_MIN_EMBD wide or holding K-quant, F16/BF16 or Q8_0 matrices.
 * Measured on an H100 (sessions 16-18, docs/PERFORMANCE.md): Llama 2 7B
 * (4,096 wide) Q4_0 524-531 tok/s against 475-478 on the matvecs, Q8_0
 * 345-352 against 313-314, F16 206-208 against 173-174, Q4_K_M 407-414
 * against 337-339, Q6_K 334-335 against 207-208; TinyLlama (2,048 wide) Q4_0
 * 1,503-1,509 against 1,690-1,691 and Q8_0 1,363-1,371 against 1,444-1,448
 * (a kernel's fixed start and end weigh more on small products), but Q4_K_M
 * 1,339 against 1,251 and F16 977-980 against 760-762. */
bool rl_cu_model_mvb_step(rl_cu_model *m, int n)
{
    if (m->mvb < 0) {
        const char *e = getenv("RL_CU_MVB");
        m->mvb = e && e[0] == '1' ? 1 : e && e[0] == '0' ? 0 : MVB_AUTO;
    }
    bool automatic = m->mvb == MVB_AUTO;
    if (n != 1 || m->mvb == 0 || (automatic && m->c.n_embd < RL_CU_MVB_MIN_EMBD && !has_slow_matvec(m)))
        return false;
    for (uint32_t l = 0; l < m->c.n_layer; l++) {
        int taken = 0, chosen = 0, all = 0; /* on rl_cu_mvb; there or on the matvec by choice */
        for (int k = RL_CU_MVB_QKV; k <= RL_CU_MVB_DOWN; k++) {
            rl_cu_mvb_part p[3];
            int np = rl_cu_mvb_parts(m, k, l, p);
            for (int i = 0; i < np; i++, all++) {
                int at = part_place(&p[i], k);
                taken += at == 1;
                chosen += at >= 0;
            }
        }
        if (taken == 0 || (automatic && chosen < all))
            return false;
    }
    return true;
}

/* One sequence on rl_cu_mvb: each product quantizes its fp32 input itself,
 * the norms inside the products that read them; the output product too. */
int rl_cu_step_mvb(rl_cu_model *m)
{
    const rl_cu_model_cfg *c = &m->c;
    cudaStream_t s = m->s;
    int n_split = rl_cu_attn_splits(1, c->n_head);
    const int32_t *pos = rl_cu_din(m, RL_CU_IN_POS), *row = rl_cu_din(m, RL_CU_IN_ROW);
    RL_CU_TRY(rl_cu_mat_get_rows(&m->tok_embd, rl_cu_din(m, RL_CU_IN_TOK), 1, m->x, s));
    for (uint32_t l = 0; l < c->n_layer; l++) {
        RL_CU_TRY(qkv_rope(m, l, pos, row));
        RL_CU_TRY(rl_cu_attn_paged(m->q, pos, row, 1, &m->rope, &m->kv, l, n_split, m->attn_scratch, &m->attn, s));
        for (int k = RL_CU_MVB_O; k <= RL_CU_MVB_DOWN; k++)
            RL_CU_TRY(rl_cu_mvb_run(m, k, l));
    }
    RL_CU_TRY(rl_cu_mvb_run(m, RL_CU_MVB_OUT, 0));
    return rl_cu_argmax(m->logits.f, c->n_vocab, 1, m->d_out, s);
}
