/* rl_cu_w16.c - resident fp16 copies of the layer weights for the large path.
 *
 * Steps of more than max_batch tokens multiply fp16 weights on cuBLAS. Without
 * copies, every such step dequantizes all layer weights again into a staging
 * ring (rl_cu_gemm_stage), which on a 7B Q4_0 model writes 13.5 GB per step
 * and runs beside the GEMMs, competing for memory bandwidth and SMs. With
 * them, a step reads the copies directly: memory for speed, chosen by
 * rl_cu_model_cfg.w16 (rl_cu_w16_mode).
 *
 * Product k of the large path (k / 4 = layer, k % 4 = Q|K|V, O, gate|up,
 * down) has one fp16 row-major matrix: its parts concatenated by rows where a
 * file mixes types inside the layer (the rows rl_cu_layer_gemm_* build in the
 * scratch). A single F16 part is used in place. The copies are filled lazily
 * by the first large step (or the warm-up) after the weights changed: every
 * accessor that hands out a weight for writing clears w16_ready. */
#include <errno.h>
#include <stdlib.h>

#include "rl_cu_layer.h"
#include "rl_cu_model_impl.h"

void rl_cu_w16_dims(const rl_cu_model_cfg *c, uint32_t k, int64_t *rows, int64_t *cols)
{
    int64_t E = c->n_embd, F = c->n_ff, qd = (int64_t)c->n_head * c->head_dim;
    switch (k % 4) {
    case 0: *rows = rl_cu_qkv_dim(c), *cols = E; break;
    case 1: *rows = E, *cols = qd; break;
    case 2: *rows = 2 * F, *cols = E; break;
    default: *rows = E, *cols = F; break;
    }
}

/* Whether product k % 4 of a layer of these types is one F16 matrix (used in place). */
static bool in_place(const rl_cu_layer_types *lt, uint32_t k)
{
    const rl_type *t = lt->t;
    switch (k % 4) {
    case 0: return t[RL_CU_W_Q] == RL_TYPE_F16 && t[RL_CU_W_K] == RL_TYPE_F16 && t[RL_CU_W_V] == RL_TYPE_F16;
    case 1: return t[RL_CU_W_O] == RL_TYPE_F16;
    case 2: return t[RL_CU_W_GATE] == RL_TYPE_F16 && t[RL_CU_W_UP] == RL_TYPE_F16;
    default: return t[RL_CU_W_DOWN] == RL_TYPE_F16;
    }
}

uint64_t rl_cu_w16_bytes(const rl_cu_model_cfg *c, const rl_cu_model_types *ty, const rl_cu_layer_types *lts)
{
    uint64_t b = 0;
    for (uint32_t l = 0; l < c->n_layer; l++) {
        rl_cu_layer_types lt = rl_cu_layer_types_of(ty, lts, l);
        for (uint32_t k = 0; k < 4; k++) {
            int64_t rows, cols;
            rl_cu_w16_dims(c, k, &rows, &cols);
            if (!in_place(&lt, k))
                b += (uint64_t)rows * cols * 2;
        }
    }
    return b;
}

/* The parts of product k of layer L, in row order. */
static int parts_of(rl_cu_layer *L, uint32_t k, const rl_cu_mat *p[3])
{
    switch (k % 4) {
    case 0:
        return rl_cu_layer_qkv_parts(L, p);
    case 1: p[0] = &L->wo; return 1;
    case 2:
        p[0] = &L->wgu, p[1] = &L->wup;
        return L->wup.q ? 2 : 1;
    default: p[0] = &L->wdown; return 1;
    }
}

/* A product of one F16 matrix is multiplied in place (no copy). */
static bool parts_in_place(const rl_cu_mat *const p[3], int np)
{
    return np == 1 && p[0]->type == RL_TYPE_F16;
}

int rl_cu_w16_alloc(rl_cu_model *m, uint64_t bytes)
{
    uint32_t nk = 4 * m->c.n_layer;
    m->w16p = calloc(nk, sizeof *m->w16p);
    if (!m->w16p)
        return -ENOMEM;
    if (bytes && rl_cu_check(cudaMalloc(&m->w16, bytes), "cudaMalloc(fp16 weight copies)")) {
        free(m->w16p);
        m->w16p = NULL;
        m->w16 = NULL;
        return -ENOMEM;
    }
    uint64_t off = 0;
    for (uint32_t k = 0; k < nk; k++) {
        const rl_cu_mat *p[3];
        int np = parts_of(&m->layers[k / 4], k, p);
        if (parts_in_place(p, np)) {
            m->w16p[k] = p[0]->q;
            continue;
        }
        int64_t rows, cols;
        rl_cu_w16_dims(&m->c, k, &rows, &cols);
        m->w16p[k] = (char *)m->w16 + off;
        off += (uint64_t)rows * cols * 2;
    }
    m->w16_bytes = bytes;
    m->w16_ready = false;
    return off == bytes ? 0 : -EINVAL; /* the plan's types are the layers' */
}

void rl_cu_w16_free(rl_cu_model *m)
{
    cudaFree(m->w16);
    free(m->w16p);
    m->w16 = NULL;
    m->w16p = NULL;
    m->w16_bytes = 0;
    m->w16_ready = false;
}

int rl_cu_w16_sync(rl_cu_model *m)
{
    if (!m->w16p || m->w16_ready)
        return 0;
    for (uint32_t k = 0; k < 4 * m->c.n_layer; k++) {
        const rl_cu_mat *p[3];
        int np = parts_of(&m->layers[k / 4], k, p);
        if (parts_in_place(p, np))
            continue;
        int64_t off = 0;
        for (int i = 0; i < np; i++) {
            RL_CU_TRY(rl_cu_gemm_to_f16(p[i], (uint16_t *)m->w16p[k] + off, m->s));
            off += p[i]->rows * p[i]->cols;
        }
    }
    m->w16_ready = true;
    return 0;
}

int rl_cu_w16_env(int mode)
{
    const char *e = getenv("RL_CU_W16");
    if (mode != RL_CU_W16_AUTO || !e || (e[0] != '0' && e[0] != '1') || e[1])
        return mode;
    return e[0] == '1' ? RL_CU_W16_ON : RL_CU_W16_OFF;
}

uint64_t rl_cu_model_w16_bytes(const rl_cu_model *m) { return m->w16p ? m->w16_bytes : 0; }
