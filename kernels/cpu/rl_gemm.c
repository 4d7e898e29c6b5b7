/* rl_gemm.c - tiled matrix multiplication through the type traits table.
 *
 * Trick: tiles of RL_GEMM_ROWS weight rows x RL_GEMM_TOKS tokens; inside a tile
 * a micro-kernel works on 4 rows x 4 tokens so each weight block loaded into
 * registers is used 4 times (rl_gemm_q.c has the int8 ones for Q4_0, Q4_1,
 * Q5_0, Q5_1 and Q8_0, rl_gemm_k.c for Q4_K, Q5_K and Q6_K, rl_gemm_f.c the
 * float ones for F32/F16/BF16; the int8 ones with AVX-512 VNNI or AVX2).
 * Types without a micro-kernel go through the traits' vec_dot, one (row,
 * token) at a time. */
#include "rl_gemm.h"

#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#define RL_GEMM_ROWS 16
#define RL_GEMM_TOKS 32

/* From rl_gemm_q.c: a SIMD micro-kernel for wt, or NULL; its activation format. */
rl_gemm_tile_fn rl_gemm_q_kernel(rl_type wt);
/* From rl_gemm_f.c: a SIMD micro-kernel for F32/F16/BF16 weights on float activations, or NULL. */
rl_gemm_tile_fn rl_gemm_f_kernel(rl_type wt);
/* From rl_gemm_k.c: a SIMD micro-kernel for Q4_K/Q5_K/Q6_K weights on Q8_K activations, or NULL. */
rl_gemm_tile_fn rl_gemm_k_kernel(rl_type wt);
size_t rl_gemm_q_packed_row(int64_t k);
void rl_gemm_q_pack(const void *q8_0_row, void *dst, int64_t k, rl_type wt);
void rl_gemm_q_quant_pack(const float *x, void *dst, int64_t k, rl_type wt);

size_t rl_gemm_scratch_size(rl_type wt, int64_t k, int64_t n_tok)
{
    const rl_type_traits *tt = rl_type_get(wt);
    if (!tt || !tt->supported)
        return 0;
    size_t n = rl_type_row_size(tt->vec_dot_type, k) * (size_t)n_tok;
    if (rl_gemm_q_kernel(wt))
        n += rl_gemm_q_packed_row(k) * (size_t)n_tok;
    return n;
}

typedef struct prep_ctx {
    const float *x;
    int64_t k, n_tok;
    rl_from_float_fn conv;
    uint8_t *dst;
    size_t row_bytes;
    uint8_t *packed;     /* non-NULL: also repack for the micro-kernel */
    size_t packed_bytes;
    rl_type wt;          /* the packing depends on the weight type */
    _Atomic int64_t next; /* next row to convert (rows are handed out dynamically) */
} prep_ctx;

static void prep_worker(void *vc, int ith, int nth)
{
    prep_ctx *c = vc;
    for (;;) {
        /* relaxed: only hands out distinct rows; the pool's barrier publishes them */
        int64_t t = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (t >= c->n_tok)
            break;
        if (c->packed) /* quantize and repack in one pass */
            rl_gemm_q_quant_pack(c->x + t * c->k, c->packed + (size_t)t * c->packed_bytes, c->k, c->wt);
        else
            c->conv(c->x + t * c->k, c->dst + (size_t)t * c->row_bytes, c->k);
    }
}

int rl_gemm_prepare(rl_pool *p, rl_gemm_act *a, rl_type wt, const float *x, int64_t n_tok, int64_t k,
                    void *scratch)
{
    const rl_type_traits *tt = rl_type_get(wt);
    if (!tt || !tt->supported || !tt->vec_dot)
        return -EINVAL;
    rl_type vt = tt->vec_dot_type;
    const rl_type_traits *vtt = rl_type_get(vt);
    size_t rb = rl_type_row_size(vt, k);
    if (!vtt || rb == 0 || rl_type_row_size(wt, k) == 0)
        return -EINVAL;
    int packed = rl_gemm_q_kernel(wt) != NULL ? (int)wt + 1 : 0;
    if (a->x == x && a->k == k && a->n_tok == n_tok && a->type == vt && a->packed == packed && a->data)
        return 0; /* already converted for this type */
    a->x = x;
    a->k = k;
    a->n_tok = n_tok;
    a->type = vt;
    a->row_bytes = rb;
    a->packed = packed;
    if (vt == RL_TYPE_F32) { /* use the floats as they are */
        a->data = x;
        return 0;
    }
    if (!vtt->from_float)
        return -EINVAL;
    prep_ctx c = {x, k, n_tok, vtt->from_float, scratch, rb, NULL, 0, wt, 0};
    if (packed) {
        c.packed = (uint8_t *)scratch + rb * (size_t)n_tok;
        c.packed_bytes = rl_gemm_q_packed_row(k);
        a->row_bytes = c.packed_bytes;
    }
    if (n_tok == 1)
        prep_worker(&c, 0, 1);
    else
        rl_pool_run(p, prep_worker, &c);
    a->data = packed ? (const void *)c.packed : scratch;
    return 0;
}

/* Generic tile: one vec_dot per (row, token). */


/* One matrix of a run: its tiles are items [first, first + n_rt * n_tt). */
typedef struct run_mat {
    const uint8_t *w;
    size_t w_stride;
    int64_t n_rows, k;
    const rl_gemm_act *a;
    float *y;
    int64_t ldy;
    rl_vec_dot_fn dot;
    rl_gemm_tile_fn tile;
    bool any_tokens;     /* the tile takes any token count (the float tiles): one call per row strip */
    int64_t n_rt, n_tt, first;
} run_mat;

typedef struct run_ctx {
    run_mat m[RL_GEMM_MAX_JOBS];
    int n;
    int64_t n_items;
    _Atomic int64_t next;
} run_ctx;

static void tile_generic(const run_mat *c, int64_t r0, int nr, int64_t t0, int nt)
{
    const uint8_t *ad = c->a->data;
    for (int i = 0; i < nr; i++) {
        const uint8_t *wr = c->w + (size_t)(r0 + i) * c->w_stride;
        for (int j = 0; j < nt; j++)
            c->y[(t0 + j) * c->ldy + r0 + i] = c->dot(c->k, wr, ad + (size_t)(t0 + j) * c->a->row_bytes);
    }
}

static void run_item(const run_mat *c, int64_t it)
{
    /* token tile outer: the tile's packed activations stay in L2 while weight rows stream past */
    int64_t tt = it / c->n_rt, rt = it % c->n_rt;
    int64_t r0 = rt * RL_GEMM_ROWS, t0 = tt * RL_GEMM_TOKS;
    int64_t r1 = r0 + RL_GEMM_ROWS < c->n_rows ? r0 + RL_GEMM_ROWS : c->n_rows;
    int64_t t1 = t0 + RL_GEMM_TOKS < c->a->n_tok ? t0 + RL_GEMM_TOKS : c->a->n_tok;
    if (!c->tile) {
        tile_generic(c, r0, (int)(r1 - r0), t0, (int)(t1 - t0));
        return;
    }
    const uint8_t *ad = c->a->data;
    /* One token (decode) too goes 4 weight rows at a time: a single row is one
     * FMA chain, latency-bound (rl_gemm_q.c prefetches the rows 32 ahead, which
     * the 4 interleaved streams need). Every tile shape gives bit-identical
     * results, so this choice never changes outputs. */
    for (int64_t r = r0; r < r1; r += RL_GEMM_TILE_R) {
        int nr = r1 - r < RL_GEMM_TILE_R ? (int)(r1 - r) : RL_GEMM_TILE_R;
        int64_t tstep = c->any_tokens ? t1 - t0 : RL_GEMM_TILE_T;
        for (int64_t t = t0; t < t1; t += tstep) {
            int nt = t1 - t < tstep ? (int)(t1 - t) : (int)tstep;
            c->tile(c->k, c->w + (size_t)r * c->w_stride, c->w_stride, nr, ad + (size_t)t * c->a->row_bytes,
                    c->a->row_bytes, nt, c->y + t * c->ldy + r, (size_t)c->ldy);
        }
    }
}

static void run_worker(void *vc, int ith, int nth)
{
    run_ctx *c = vc;
    int j = 0;
    for (;;) {
        /* relaxed: the counter only hands out distinct items; results are
         * published by rl_pool_run's completion barrier */
        int64_t it = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (it >= c->n_items)
            break;
        while (it >= c->m[j].first + c->m[j].n_rt * c->m[j].n_tt) /* items only grow: never look back */
            j++;
        run_item(&c->m[j], it - c->m[j].first);
    }
}

void rl_gemm_run_many(rl_pool *p, const rl_gemm_job *jobs, int n)
{
    run_ctx c = {.n = n};
    for (int i = 0; i < n && i < RL_GEMM_MAX_JOBS; i++) {
        const rl_gemm_job *jb = &jobs[i];
        const rl_type_traits *tt = rl_type_get(jb->wt);
        rl_gemm_tile_fn tile = NULL;
        if (jb->a->packed) /* int8 tiles on repacked activations */
            tile = rl_gemm_q_kernel(jb->wt);
        else if (jb->a->type == RL_TYPE_F32) /* float tiles on the activations as they are */
            tile = rl_gemm_f_kernel(jb->wt);
        else if (jb->a->type == RL_TYPE_Q8_K) /* K-quant tiles on the Q8_K rows */
            tile = rl_gemm_k_kernel(jb->wt);
        c.m[i] = (run_mat){
            .w = jb->w, .w_stride = rl_type_row_size(jb->wt, jb->a->k), .n_rows = jb->n_rows, .k = jb->a->k,
            .a = jb->a, .y = jb->y, .ldy = jb->ldy, .dot = tt->vec_dot,
            .tile = tile, .any_tokens = tile && jb->a->type == RL_TYPE_F32,
            .n_rt = (jb->n_rows + RL_GEMM_ROWS - 1) / RL_GEMM_ROWS,
            .n_tt = (jb->a->n_tok + RL_GEMM_TOKS - 1) / RL_GEMM_TOKS, .first = c.n_items,
        };
        c.n_items += c.m[i].n_rt * c.m[i].n_tt;
    }
    atomic_init(&c.next, 0);
    rl_pool_run(p, run_worker, &c);
}

void rl_gemm_run(rl_pool *p, const void *w, rl_type wt, int64_t n_rows, const rl_gemm_act *a,
                 float *y, int64_t ldy)
{
    rl_gemm_job j = {w, wt, n_rows, a, y, ldy};
    rl_gemm_run_many(p, &j, 1);
}

rl_gemm_tile_fn rl_gemm_tile_kernel(rl_type wt)
{
    rl_gemm_tile_fn f = rl_gemm_q_kernel(wt);
    if (!f)
        f = rl_gemm_k_kernel(wt);
    return f ? f : rl_gemm_f_kernel(wt);
}

void rl_gemm_init(void)
{
    rl_types_init();
}
