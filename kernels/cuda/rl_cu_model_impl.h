/* rl_cu_model_impl.h - the GPU model's state, shared by its files:
 * rl_cu_model.c (plan, allocation, weights), rl_cu_step.c (the forward step:
 * graph-captured small batches, cuBLAS for large ones) and rl_cu_profile.c. */
#ifndef RL_CU_MODEL_IMPL_H
#define RL_CU_MODEL_IMPL_H

#include "rl_cu_model.h"

/* Token counts with their own captured graph; a step of n tokens replays the
 * smallest bucket >= n with the rest padded (row -1: no KV written or read). */
#define RL_CU_N_BUCKETS 14
extern const int rl_cu_buckets[RL_CU_N_BUCKETS];

struct rl_cu_model {
    rl_cu_model_cfg c;
    rl_cu_model_types t;
    rl_cu_mat tok_embd, output;
    float *output_norm;
    rl_cu_layer *layers;
    rl_cu_kv kv;              /* the paged pool; kv.bt points at d_bt */
    uint32_t bt_stride;       /* block-table entries per sequence: ceil(n_ctx / RL_CU_KV_BLOCK) */
    uint32_t max_rows;        /* tokens per forward: max(max_batch, max_prefill) */
    uint32_t max_batch;       /* tokens per graph-captured step (<= RL_CU_MAX_STEP_BATCH) */
    float *x;                 /* residual [rows][n_embd] */
    rl_cu_act xn, attn, ffn;  /* normed input, attention output, GLU output */
    float *xss;               /* [rows][n_embd / 32]: xn.ss of a deferred norm (rl_cu_act.ss), or NULL */
    int norm_defer;           /* rl_cu_model_set_norm_defer (-1: RL_CU_NORM_DEFER not read yet) */
    int mvb;                  /* rl_cu_model_set_mvb: 0, 1, MVB_AUTO (-1: RL_CU_MVB not read yet) */
    float *qkv, *q, *gu;      /* [rows][qkv dim], [rows][q dim], GEMM path [rows][2 n_ff] */
    float *xo;                /* GEMM path: rows that need logits, gathered [max_batch][n_embd] */
    rl_cu_act logits;         /* [max_batch][n_vocab] */
    void *attn_scratch;
    int32_t *d_in;            /* tokens | pos | row | out index, max_rows each */
    int32_t *d_bt;            /* block tables [max_rows][bt_stride] */
    int32_t *d_out;           /* argmax per logits row [max_batch] */
    int32_t *h_in;            /* pinned staging: d_in's layout, then the block tables */
    int32_t *h_out;           /* pinned [max_batch] */
    uint64_t *d_dst, *h_dst;  /* zero copy: device addresses for the tokens [max_rows], and staging */
    int32_t *d_topk;          /* per output: top-k wanted [max_rows], found ok [max_batch], then
                                 candidates [max_batch][RL_CU_TOPK_MAX] (rl_cu_cand) */
    int32_t *h_topk;          /* pinned, grown on demand (h_topk_bytes): per output k | ok | normalizer,
                                 then the candidates, n_out x the step's largest k */
    size_t h_topk_bytes;
    void *xh, *wscratch;      /* GEMM path: fp16 activations and dequantized weight */
    cudaStream_t s;
    rl_cu_blas *blas;
    cudaGraphExec_t graph[RL_CU_N_BUCKETS];
    bool use_graphs;
    int direct_want;          /* large path: Q4_0 products of up to this many rows on rl_cu_mmw
                                 (RL_CU_DIRECT_MAX, rl_cu_model_set_direct_max; -1: not read yet) */
    void *w16;                /* fp16 copies of the layer matrices (one allocation), or NULL */
    const void **w16p;        /* [4 n_layer] or NULL: product k's fp16 rows (k % 4: Q|K|V, O, gate|up,
                                 down), in w16 or, for an F16 matrix, the matrix itself */
    uint64_t w16_bytes;
    bool w16_ready;           /* the copies hold the current weights (the weight accessors clear it) */
    int direct_ok;            /* every staged matrix is Q4_0 and the device has rl_cu_mmw (-1: not checked) */
    rl_cu_rope rope;
    float *inv_freq;          /* n_rot/2, or NULL (computed from rope_base) */
    uint64_t weight_bytes, kv_bytes, scratch_bytes;
};

/* d_topk's layout (int32 units): k per output [rows], ok per output
 * [max_batch], normalizer per output (float) [max_batch], candidates (8-byte
 * aligned) [max_batch][RL_CU_TOPK_MAX]. */
static inline size_t rl_cu_topk_ok_off(uint32_t rows)
{
    return rows;
}
static inline size_t rl_cu_topk_lse_off(uint32_t rows, uint32_t max_batch)
{
    return (size_t)rows + max_batch;
}
static inline size_t rl_cu_topk_cand_off(uint32_t rows, uint32_t max_batch)
{
    return ((size_t)rows + 2 * (size_t)max_batch + 1) & ~(size_t)1;
}
static inline size_t rl_cu_topk_dev_bytes(uint32_t rows, uint32_t max_batch)
{
    return rl_cu_topk_cand_off(rows, max_batch) * 4 + (size_t)max_batch * RL_CU_TOPK_MAX * sizeof(rl_cu_cand);
}

/* The weight of the RMSNorm after layer l: layer l + 1's attention norm, or
 * the output norm after the last layer. */
static inline const float *rl_cu_next_norm(const rl_cu_model *m, uint32_t l)
{
    return l + 1 < m->c.n_layer ? m->layers[l + 1].attn_norm : m->output_norm;
}

/* Whether a matrix-vector step of n tokens defers its RMSNorms into the
 * residual products (rl_cu_step.c; rl_cu_matvec_add_norm). */
bool rl_cu_step_norm_deferred(rl_cu_model *m, int n);


/* The fp16 copies (rl_cu_w16.c): allocate `bytes` (rl_cu_w16_bytes of the
 * model's layer types: the plan's figure) and point w16p into it; free them;
 * fill them from the weights when not w16_ready (on the model's stream). */
int rl_cu_w16_alloc(rl_cu_model *m, uint64_t bytes);
void rl_cu_w16_free(rl_cu_model *m);
int rl_cu_w16_sync(rl_cu_model *m);
/* Rows and columns of product k's fp16 matrix. */
void rl_cu_w16_dims(const rl_cu_model_cfg *c, uint32_t k, int64_t *rows, int64_t *cols);

/* Offsets into d_in / h_in (int32 units): token ids, positions, block-table
 * rows, output rows; rl_cu_din: where one of them starts on the device. */
enum { RL_CU_IN_TOK = 0, RL_CU_IN_POS = 1, RL_CU_IN_ROW = 2, RL_CU_IN_OUT = 3 };

static inline int32_t *rl_cu_din(rl_cu_model *m, int which)
{
    return m->d_in + (size_t)which * m->max_rows;
}

/* The one-sequence step's products on rl_cu_mvb (rl_cu_step_mvb.c), in their
 * order within a layer; RL_CU_MVB_OUT: the output product (after the last). */
enum { RL_CU_MVB_QKV, RL_CU_MVB_O, RL_CU_MVB_GU, RL_CU_MVB_DOWN, RL_CU_MVB_OUT };
/* One matrix of such a product: y = W x (STORE), y += W x (ADD) or
 * silu(Wg x) * (Wu x) (GLU), x normalized by the RMSNorm of weight g first
 * when g is set. */
typedef struct rl_cu_mvb_part {
    const rl_cu_mat *m;
    const float *x, *g;
    float *y;
    int mode;
} rl_cu_mvb_part;
/* The matrices of product `which` of layer l (l unused for the output) as
 * the step runs them, into p: 1, or 3 for split Q, K, V, or 2 for split gate
 * and up (two STOREs into m->gu, then a SwiGLU). Returns the count. */
int rl_cu_mvb_parts(rl_cu_model *m, int which, uint32_t l, rl_cu_mvb_part p[3]);
/* That product on the model's stream: rl_cu_mvb for each matrix it takes,
 * the matvec path (a norm or quantization kernel first) for the others and
 * for the O products of the types the step leaves to the matvec
 * (rl_cu_step_mvb.c, o_on_matvec). */
int rl_cu_mvb_run(rl_cu_model *m, int which, uint32_t l);
/* The one-sequence step on rl_cu_mvb (rl_cu_step_mvb.c; where
 * rl_cu_model_mvb_step says so): every layer, the output, the argmax. */
int rl_cu_step_mvb(rl_cu_model *m);

/* Forget the captured graphs (their parameters changed). */
void rl_cu_model_drop_graphs(rl_cu_model *m);
/* y = W x for n rows of x in the step's mode, the best kernel for n. */
int rl_cu_model_product(rl_cu_model *m, const rl_cu_mat *w, const rl_cu_act *x, int n, int mode, rl_cu_act *y);

#endif
