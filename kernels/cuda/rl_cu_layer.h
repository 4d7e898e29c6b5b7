/* rl_cu_layer.h - private to kernels/cuda: a layer's weight matrices with a
 * type per role (files that mix types per tensor, such as Q4_K_M), and the
 * layer's Q|K|V and gate/up products over them, fused or per matrix. Used by
 * rl_cu_model.c. */
#ifndef RL_CU_LAYER_H
#define RL_CU_LAYER_H

#include "rl_cu_model.h"

/* The types of layer l: layers[l], or ty's qkv/o/gu/down when layers is NULL. */
rl_cu_layer_types rl_cu_layer_types_of(const rl_cu_model_types *ty, const rl_cu_layer_types *layers, uint32_t l);
/* Device bytes of the layer's matrices; 0, with a message naming the tensor in
 * err, when one of them has no CUDA kernel. */
uint64_t rl_cu_layer_plan(const rl_cu_model_cfg *c, const rl_cu_layer_types *lt, uint32_t l, char *err,
                          size_t errlen);
/* Whether any matrix of the layer reads the normed input (Q, K, V, gate, up),
 * the attention output (O) or the GLU output (down) as int8 blocks. */
void rl_cu_layer_q8_needs(const rl_cu_layer_types *lt, bool *xn, bool *attn, bool *ffn);
/* Allocate the matrices (fused Q|K|V and gate|up where their types agree). */
int rl_cu_layer_alloc(const rl_cu_model_cfg *c, const rl_cu_layer_types *lt, rl_cu_layer *L);
/* Free the matrices (not the norms or bias). */
void rl_cu_layer_free_mats(rl_cu_layer *L);
/* Device bytes of the matrices. */
uint64_t rl_cu_layer_bytes(const rl_cu_layer *L);
/* Random weights (benchmarks). */
int rl_cu_layer_fill_random(rl_cu_layer *L, uint64_t seed, cudaStream_t s);
/* The matrix holding role's rows, and the first of them there. */
rl_cu_mat *rl_cu_layer_role(const rl_cu_model_cfg *c, rl_cu_layer *L, rl_cu_role role, int64_t *row0);
/* The matrices of the layer's Q|K|V rows in row order (wqkv, then wk and wv
 * where used): their count, 1 to 3. */
int rl_cu_layer_qkv_parts(const rl_cu_layer *L, const rl_cu_mat *p[3]);

/* y = W x for n rows (1..any) in a matvec mode, with the best kernel for n:
 * rl_cu_matvec up to RL_CU_MAX_BATCH rows (Q4_0 with fp16 activations: up to
 * 3, RL_CU_MATVEC_MAX); more: rl_cu_mmw / rl_cu_mms / rl_cu_mmh (fp16 copy of the activations) or rl_cu_mmq for Q4_0/Q8_0 with int8
 * activations (int8 tensor cores; RL_CU_MMQ=0: off), else rl_cu_mm (tensor cores, each
 * weight byte read once), except F32 weights (reference models: exact fp32, so
 * a sequence's tokens never depend on its batch), Q5_K and strided outputs,
 * which take rl_cu_matvec per RL_CU_MAX_BATCH rows. */
int rl_cu_product(const rl_cu_mat *w, const rl_cu_act *x, int n, int mode, rl_cu_act *y, cudaStream_t s);
/* Whether rl_cu_product takes rl_cu_matvec for w at n rows (x_h: the input
 * has its fp16 plane); only there may the input be a deferred norm (x->ss). */
bool rl_cu_product_is_matvec(const rl_cu_mat *w, bool x_h, int n);
/* Decode: d_qkv[n][q|k|v] (+ bias) = the layer's Q, K, V of the normed rows xn
 * (int8 blocks filled where a matrix needs them). */
int rl_cu_layer_qkv(const rl_cu_model_cfg *c, const rl_cu_layer *L, const rl_cu_act *xn, int n, float *d_qkv,
                    cudaStream_t s);
/* Decode: ffn = silu(gate) * up of xn, with ffn->q filled when set: one GLU
 * matvec, or (separate gate and up matrices) two matvecs into the scratch
 * d_gu [n][2 n_ff], SwiGLU and quantization. */
int rl_cu_layer_glu(const rl_cu_model_cfg *c, const rl_cu_layer *L, const rl_cu_act *xn, int n, float *d_gu,
                    rl_cu_act *ffn, cudaStream_t s);
/* Prefill: d_y[n][rows] = the n fp16 rows d_xh times the concatenated parts
 * (qkv: Q|K|V, bias added; gu: gate|up), dequantized into the fp16 scratch. */
int rl_cu_layer_gemm_qkv(const rl_cu_model_cfg *c, const rl_cu_layer *L, rl_cu_blas *b, const void *d_xh, int n,
                         void *d_wscratch, float *d_qkv, cudaStream_t s);
int rl_cu_layer_gemm_gu(const rl_cu_layer *L, rl_cu_blas *b, const void *d_xh, int n, void *d_wscratch,
                        float *d_gu, cudaStream_t s);

/* Columns of the Q|K|V activation rows. */
static inline int64_t rl_cu_qkv_dim(const rl_cu_model_cfg *c)
{
    return (int64_t)(c->n_head + 2 * c->n_head_kv) * c->head_dim;
}

#endif
