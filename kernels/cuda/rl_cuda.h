/* rl_cuda.h - C-callable CUDA kernels of ringlm (prefix rl_cu_).
 *
 * Every function returns 0 or a negative errno-style code; on a CUDA error the
 * text is kept per thread in rl_cu_last_error(). All pointers named d_* or
 * held in the structs below are device memory. Kernels are enqueued on the
 * given stream and are safe to capture into a CUDA graph (no host syncs, no
 * allocation) unless said otherwise.
 *
 * Weights live on the device in their quantized form. Q4_0 and Q8_0 are
 * repacked on upload into two planes (quants row-major, fp16 scales beside) so
 * that each 32-element block is one or two aligned 16-byte loads; every other
 * type keeps the GGUF block layout byte for byte.
 *
 * Activations travel as rl_cu_act: fp32 values plus, where the consumer is a
 * Q4_0/Q8_0 matrix, the same values quantized to int8 per 32-block with a
 * scale (d) and d * sum(q) per block, for dp4a dot products.
 */
#ifndef RL_CUDA_H
#define RL_CUDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "rl_types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest batch of the generation kernels (sequences advanced in one step). */
#define RL_CU_MAX_BATCH 8

/* Number of usable CUDA devices; 0 when there is no driver or no GPU. */
int rl_cu_device_count(void);
/* Text of the last error on this thread ("" when none). */
const char *rl_cu_last_error(void);
/* Record a CUDA status: 0 when cudaSuccess, else -EIO with the text kept. */
int rl_cu_check(cudaError_t e, const char *what);
/* The status of the last launch on this thread (cudaGetLastError). */
int rl_cu_check_launch(const char *what);
/* Return a nonzero status (0 or a negative errno-style code) to the caller. */
#define RL_CU_TRY(x)           \
    do {                       \
        int rc_ = (x);         \
        if (rc_)               \
            return rc_;        \
    } while (0)

/* ---- weights ---------------------------------------------------------- */
typedef struct rl_cu_mat {
    rl_type type;
    int64_t rows, cols;
    void *q;      /* quants, or the GGUF blocks, or plain elements */
    void *d;      /* Q4_0/Q8_0: fp16 scale per 32-block, [rows][cols/32]; else NULL */
    size_t bytes; /* device bytes held by q and d */
    int64_t ld;   /* bytes from one row of q to the next (rl_cu_mat_alloc; the K-quants' kernels address rows by it) */
} rl_cu_mat;

/* Types with device kernels: F32, F16, BF16, Q4_0, Q8_0, Q4_K, Q5_K, Q6_K. */
bool rl_cu_type_supported(rl_type t);
/* Whether a matrix of type t multiplies int8 activations (rl_cu_act.q/ds):
 * the quantized types; the float ones read rl_cu_act.f. */
static inline bool rl_cu_type_q8(rl_type t)
{
    return t == RL_TYPE_Q4_0 || t == RL_TYPE_Q8_0 || t == RL_TYPE_Q4_K || t == RL_TYPE_Q5_K || t == RL_TYPE_Q6_K;
}
/* Device bytes of a rows x cols matrix of type t; 0 when the type is not
 * supported or cols is not a multiple of its block size (or of 8 for floats). */
size_t rl_cu_mat_bytes(rl_type t, int64_t rows, int64_t cols);
int rl_cu_mat_alloc(rl_cu_mat *m, rl_type t, int64_t rows, int64_t cols);
/* Copy n_rows rows in GGUF layout from host memory to rows row0.. (repacking). */
int rl_cu_mat_set_rows(rl_cu_mat *m, int64_t row0, const void *host, int64_t n_rows);
/* Fill with valid random blocks (scales in a sane range), for benchmarks. */
int rl_cu_mat_fill_random(rl_cu_mat *m, uint64_t seed, cudaStream_t s);
void rl_cu_mat_free(rl_cu_mat *m);
/* Dequantize rows row0..row0+n_rows-1 to fp16 (dst: n_rows x cols, row-major). */
int rl_cu_mat_to_f16(const rl_cu_mat *m, int64_t row0, int64_t n_rows, void *d_dst_f16,
                     cudaStream_t s);
/* Gather rows d_ids[0..n-1] (each checked against rows) as fp32 into dst[n][cols]. */
int rl_cu_mat_get_rows(const rl_cu_mat *m, const int32_t *d_ids, int n, float *d_dst,
                       cudaStream_t s);

/* ---- activations ---------------------------------------------------------- */
typedef struct rl_cu_act {
    float *f;   /* [batch][n] */
    int8_t *q;  /* [batch][n] int8, or NULL when not needed */
    float *ds;  /* [batch][n/32][2]: d, d*sum(q) */
    int64_t n;
    int64_t stride; /* floats between batch rows of f; 0: n. Only a matvec output
                       in STORE/ADD mode may set it (e.g. to write Q, K and V of
                       separate matrices into the rows of one [batch][q|k|v]) */
    uint16_t *h;    /* [batch][n] fp16 of d * q (the int8 values, for the fp16
                       tensor-core products of rl_cu_mmh), or NULL. Written
                       wherever q is, when both are set */
    float *ss;      /* deferred RMSNorm, or NULL: [batch][n/32] sums of squares
                       of the residual per 32-block, while f/q/h hold the
                       residual times the norm's weight, not yet divided by its
                       RMS; a consumer scales its dot products by
                       rsqrt(sum(ss) / n + eps). Only rl_cu_matvec reads it
                       (rl_cu_product refuses it on any other kernel) */
    float eps;      /* with ss: the norm's epsilon */
} rl_cu_act;

/* Rows b0.. of an activation (every plane; an output's stride kept). */
static inline rl_cu_act rl_cu_act_rows(const rl_cu_act *a, int b0)
{
    rl_cu_act r = *a;
    r.f += (int64_t)b0 * (a->stride ? a->stride : a->n);
    if (a->q) {
        r.q += (int64_t)b0 * a->n;
        r.ds += (int64_t)b0 * (a->n / 32) * 2;
    }
    if (a->h)
        r.h += (int64_t)b0 * a->n;
    return r;
}

/* Quantize x->f into x->q/x->ds (n must be a multiple of 32). */
int rl_cu_quantize(const rl_cu_act *x, int batch, cudaStream_t s);

/* ---- matrix-vector products (generation) --------------------------------- */
enum {
    RL_CU_MV_STORE = 0, /* y = W x */
    RL_CU_MV_ADD = 1,   /* y += W x (residual) */
    RL_CU_MV_GLU = 2    /* W holds gate rows then up rows: y = silu(Wg x) * (Wu x), rows/2 outputs */
};
/* batch 1..RL_CU_MAX_BATCH. x->q must be filled for the quantized weight types
 * (Q4_0, Q8_0, Q4_K, Q5_K, Q6_K). In GLU mode y->q (when non-NULL and rows/2
 * is a multiple of 32) is filled too. y->stride (>= y->n) is honoured in
 * STORE/ADD mode; GLU mode refuses it. */
int rl_cu_matvec(const rl_cu_mat *m, const rl_cu_act *x, int batch, int mode, rl_cu_act *y,
                 cudaStream_t s);
/* The residual product with the next RMSNorm in its epilogue (deferred, see
 * rl_cu_act.ss): y += W x (y dense, the residual), then xn = y * g (f, and
 * q/ds/h where set) and xn->ss = the per-32-block sums of squares of y, so the
 * next products need no norm kernel. y->n % 32 == 0, xn->n == y->n, xn->ss
 * set. -ENOTSUP where rl_cu_matvec_norm_ok says no. */
int rl_cu_matvec_add_norm(const rl_cu_mat *m, const rl_cu_act *x, int batch, rl_cu_act *y, const float *d_g,
                          const rl_cu_act *xn, cudaStream_t s);
/* One sequence, weights streamed by bulk copies into shared memory
 * (rl_cu_mvb.cu; sm_90; the types of rl_cu_mvb_ok): y = W x (STORE), y += W x
 * (ADD) or y = silu(Wg x) * (Wu x) (GLU) with x fp32 [cols], quantized to
 * int8 blocks by each CTA (kept fp32 for F16/BF16 weights), after
 * an RMSNorm (weight d_g, eps) when d_g is set; y fp32 [rows or rows / 2].
 * -ENOTSUP where rl_cu_mvb_ok says no or d_x / d_g is not 16-byte aligned
 * (read as float4s). The one-sequence step's products where
 * rl_cu_model_mvb_step says so. */
int rl_cu_mvb(const rl_cu_mat *m, const float *d_x, const float *d_g, float eps, int mode, float *d_y,
              cudaStream_t s);
/* rl_cu_mvb with fp16 hand-offs (hflags): RL_CU_MVB_HOUT, a GLU product
 * writes y as halves (magnitudes past 65,504 saturate); RL_CU_MVB_HIN, a
 * product without a norm over int8 weights (not F16/BF16) reads x as halves
 * (the same int8 blocks as rl_cu_mvb from their values as floats). -EINVAL
 * for other uses. The one-sequence step hands its GLU output to the down
 * product so (rl_cu_step_mvb.c, ffn_h16). */
enum { RL_CU_MVB_HOUT = 1, RL_CU_MVB_HIN = 2 };
int rl_cu_mvb_ex(const rl_cu_mat *m, const void *d_x, const float *d_g, float eps, int mode, void *d_y, int hflags,
                 cudaStream_t s);
/* Whether rl_cu_mvb takes m in mode: Q4_0, Q8_0, Q4_K, Q5_K, Q6_K, F16 or
 * BF16, cols a multiple of 256, outputs a multiple of 8, aligned planes, an
 * sm_90 device. */
bool rl_cu_mvb_ok(const rl_cu_mat *m, int mode);
/* Whether rl_cu_matvec_add_norm takes this matrix (its vector kernels: a
 * multiple of 32 rows, float rows a multiple of 8 long). */
bool rl_cu_matvec_norm_ok(const rl_cu_mat *m);

/* ---- batched matrix products (continuous batching) -------------------------- */
/* Largest batch of rl_cu_mm. */
#define RL_CU_MAX_MM_BATCH 64
/* Same contract as rl_cu_matvec (modes STORE / ADD / GLU, rl_cu_act in/out,
 * y->q/y->ds filled in GLU mode when y->q != NULL and rows/2 is a multiple of
 * 32) for batch 1..RL_CU_MAX_MM_BATCH: weight tiles dequantized to fp16 in
 * shared memory and multiplied on tensor cores (fp32 accumulation), each
 * weight byte read once for the whole batch. Reads x->f only (rounded to fp16
 * on the way: values must stay within +-65504; x->q is not needed), so
 * results differ from rl_cu_matvec by fp16 rounding (~5e-4 relative).
 * Launches one kernel (float rows not a multiple of 8: rl_cu_matvec per 8
 * sequences); no allocation, no host sync: capturable in a CUDA graph.
 * Matrices with few row tiles split K over a thread-block cluster (2..8
 * CTAs, reduced through distributed shared memory, deterministic).
 * H100, Llama-2-7B Q4_0 matrices: one step's matrix products take 6.2 ms at
 * batch 16 and 13.5 ms at 64, against 4.1 ms for rl_cu_matvec at batch 8: use
 * rl_cu_matvec up to RL_CU_MAX_BATCH sequences, rl_cu_mm above. */
int rl_cu_mm(const rl_cu_mat *m, const rl_cu_act *x, int batch, int mode, rl_cu_act *y, cudaStream_t s);
/* For tests and benchmarks: force the K split of rl_cu_mm (1, 2, 4 or 8;
 * capped by the matrix's 128-column chunks); 0 restores the automatic choice.
 * A process-wide setting, not synchronized: set it before launching. */
void rl_cu_mm_force_split(int split);
/* Same contract as rl_cu_matvec (STORE / ADD / GLU; in GLU mode y->q/y->ds
 * filled when y->q != NULL and rows/2 is a multiple of 32; y->stride honoured
 * in STORE/ADD) for Q4_0 and Q8_0 weights and batch 1..RL_CU_MAX_MM_BATCH, on
 * the int8 tensor cores: x->q/x->ds (the int8 activations with per-32-block
 * scale d and d*sum(q), see rl_cu_quantize; x->f is not read) times the
 * weights' int8 quants, one mma (m16n8k32) per 32-wide quant block, scaled by
 * d_w * d_x per block in fp32 (Q4_0: raw nibbles, the -8 folded through
 * d*sum(q) as in the matvec), so results match rl_cu_matvec's to fp32
 * rounding. Each weight byte is read once per call (cp.async pipeline); few
 * row tiles split K over a thread-block cluster, reduced in rank order
 * (deterministic). One launch, no allocation, no host sync: capturable in a
 * CUDA graph; programmatic dependent launch (weights are fetched before
 * waiting for the previous kernel). -ENOTSUP for other weight types (callers
 * then use rl_cu_mm), -EINVAL for bad arguments. */
int rl_cu_mmq(const rl_cu_mat *m, const rl_cu_act *x, int batch, int mode, rl_cu_act *y, cudaStream_t s);

/* y = W x (STORE / ADD / GLU, as rl_cu_matvec; a row stride only in STORE and
 * ADD) for Q4_0 and Q8_0 weights and batch 1..RL_CU_MAX_MM_BATCH, on the fp16
 * tensor cores: x->h (the fp16 copy of the int8 activations, d * q, written
 * by whatever writes x->q when x->h is set; 16-byte aligned) times the weights
 * dequantized to fp16 in registers (scale applied), fp32 accumulation. Each
 * weight byte is read once per call (cp.async pipeline); the CTA size (4, 6
 * or 8 warps) and a K split (1..8) are chosen to fill the SMs. The split's
 * partial tiles go through a device-global workspace (or, when forced, a
 * thread-block cluster) and are summed in rank order: deterministic. Calls
 * with a split share that workspace, so they must not run concurrently on
 * two streams. GLU outputs are quantized to y->q/y->ds (and y->h) when
 * set. Capturable; programmatic dependent launch. -ENOTSUP for other weight
 * types, -EINVAL for bad arguments (x->h missing included). */
int rl_cu_mmh(const rl_cu_mat *m, const rl_cu_act *x, int batch, int mode, rl_cu_act *y, cudaStream_t s);

/* rl_cu_mmh's contract (STORE / ADD / GLU with quantization, y->stride in
 * STORE/ADD, x->h) for small batches: a CTA owns 32 or 64 weight rows and
 * its warps split K between them, summing their tiles in shared memory in
 * warp order (deterministic; no workspace, no K split between CTAs). Rows in
 * groups of RL_CU_MMS_MAX_BATCH (each group reads the weights once); the
 * engine uses it up to 24 rows for matrices of at most 16 MB (RL_CU_MMS=0:
 * never, 1: always; RL_CU_MMS_MAX_MB), rl_cu_mmh elsewhere.
 * Capturable; programmatic dependent launch. -ENOTSUP for other weight
 * types, -EINVAL for bad arguments. */
#define RL_CU_MMS_MAX_BATCH 32
int rl_cu_mms(const rl_cu_mat *m, const rl_cu_act *x, int batch, int mode, rl_cu_act *y, cudaStream_t s);
/* The same products as rl_cu_mmh for Q4_0 weights on Hopper's warpgroup
 * tensor-core instruction (wgmma; the batch padded to 64 rows, so meant for
 * 33..64): -ENOTSUP for other types or where the device is not compute
 * capability 9.0 (the sm_90a code). Same arguments and results as rl_cu_mmh
 * (fp32 sums in another order). */
int rl_cu_mmw(const rl_cu_mat *m, const rl_cu_act *x, int batch, int mode, rl_cu_act *y, cudaStream_t s);
/* Force rl_cu_mmw's CTA shape (tests, measurements): wg warpgroups (2, 3 or
 * 4; 0: automatic) of mt 64-row tiles each (1, or 2 with 3 warpgroups; 0:
 * automatic). -EINVAL for other values. */
int rl_cu_mmw_force(int wg, int mt);
/* rl_cu_mmw runs on this device (compute capability 9.0, the sm_90a code). */
bool rl_cu_mmw_available(void);
/* rl_cu_mmw's TMA pipeline (rl_cu_mmw runs it where it can): a producer
 * warp fills the stages with tensor-map copies, the warpgroups consume them
 * independently (mbarriers, no CTA-wide barrier per chunk). -ENOTSUP unless
 * Q4_0 with blocks per row a multiple of 8, 16-byte aligned planes, compute
 * capability 9.0 and the driver's tensor maps; otherwise as rl_cu_mmw. */
int rl_cu_mmt(const rl_cu_mat *m, const rl_cu_act *x, int batch, int mode, rl_cu_act *y, cudaStream_t s);
/* Force rl_cu_mmt's warpgroups per CTA (2, 3 or 4; 0: automatic; -1: off,
 * rl_cu_mmt refuses and rl_cu_mmw keeps its register pipeline). The
 * environment sets the initial value (RL_CU_MMT=0|2|3|4). -EINVAL for
 * other values. */
int rl_cu_mmt_force(int wg);
/* CTAs that share each activation copy of rl_cu_mmt: 2 (clusters of two
 * row tiles, TMA multicast) or 1. The environment sets the initial value
 * (RL_CU_MMT_MC). -EINVAL for other values. */
int rl_cu_mmt_multicast(int ctas);
/* How rl_cu_mmt reduces a K split whose CTAs fit the device in one wave: 1
 * (default) every rank sums its share of the batch rows once all ranks of the
 * tile stored their partials, and the plan counts it cheap; 0 the last CTA of
 * the tile sums everything (always so beyond one wave or with multicast
 * pairs); 2 plans as 1 and reduces as 0 (the same splits, so the same bits as
 * 1: for tests). The environment sets the initial value
 * (RL_CU_MMT_DIST=0|1|2). -EINVAL for other values. */
int rl_cu_mmt_dist(int on);
/* rl_cu_mmt's plan for m in mode: warpgroups per CTA, K split, and whether
 * the split is reduced by every rank (rl_cu_mmt_dist). -EINVAL where
 * rl_cu_mmt cannot take m. */
int rl_cu_mmt_plan(const rl_cu_mat *m, int mode, int *wg, int *split, int *shared);

/* Force parts of rl_cu_mmh's plan, for tests and measurements (0: automatic):
 * warps per CTA (4, 6 or 8), K split (1..8), reduction (1: cluster, 2:
 * workspace). The environment sets the initial values (RL_CU_MMH_WARPS,
 * RL_CU_MMH_SPLIT, RL_CU_MMH_REDUCE=cluster|workspace). Not thread-safe: call
 * while no other thread launches. A forced split applies only where K has at
 * least 2 chunks of 128 per rank. 0, or -EINVAL. */
int rl_cu_mmh_force(int warps, int split, int reduce);
/* The plan rl_cu_mmh would launch for this matrix, batch and mode (warps per
 * CTA, K split between CTAs), forced parts included; 0 or -EINVAL. */
int rl_cu_mmh_plan(const rl_cu_mat *m, int batch, int mode, int *warps, int *split);

/* ---- element-wise ops ---------------------------------------------------- */
/* y = x / rms(x) * w per row; fills y->q/ds too when y->q != NULL. With
 * y->ss set, the deferred form (rl_cu_act.ss): y = x * w and the per-block
 * sums of squares (n % 32 == 0). */
int rl_cu_rmsnorm(const float *d_x, const float *d_w, float eps, int64_t n, int batch,
                  const rl_cu_act *y, cudaStream_t s);
/* y[b][i] += bias[i] for batch rows of n. */
int rl_cu_add_bias(float *d_y, const float *d_bias, int64_t n, int batch, cudaStream_t s);
/* Prefill: y_f16[b] = x[b] / rms(x[b]) * w as fp16 (the GEMM input). */
int rl_cu_rmsnorm_f16(const float *d_x, const float *d_w, float eps, int64_t n, int batch, void *d_y_f16,
                      cudaStream_t s);
/* Prefill: y_f16[i][j] = silu(g) * u as fp16, gu as for rl_cu_swiglu. */
int rl_cu_swiglu_f16(const float *d_gu, int64_t n, int batch, void *d_y_f16, cudaStream_t s);
/* fp32 -> fp16, n elements. */
int rl_cu_f32_to_f16(const float *d_x, void *d_y_f16, int64_t n, cudaStream_t s);
/* y[i][j] = silu(g[i][j]) * u[i][j] where gu[i] = [g (n) | u (n)]. */
int rl_cu_swiglu(const float *d_gu, int64_t n, int batch, float *d_y, cudaStream_t s);

/* KV cache: fp16, [slot][n_ctx][n_head_kv * head_dim] for K and for V. */
typedef struct rl_cu_rope {
    int n_head, n_head_kv, head_dim, n_rot; /* n_rot <= head_dim, even */
    float freq_base;
    bool neox; /* pairs (i, i + n_rot/2) instead of (2i, 2i+1) */
    const float *inv_freq; /* device, n_rot/2 angular frequencies; NULL: freq_base^(-2i/n_rot) */
} rl_cu_rope;
/* qkv[b] = [q (n_head*hd) | k (n_head_kv*hd) | v]. Rotates q into d_q and k,
 * and writes k and v to the cache at (d_slot[b], d_pos[b]). */
int rl_cu_rope_kv(const float *d_qkv, int batch, const int32_t *d_pos, const int32_t *d_slot,
                  const rl_cu_rope *r, int64_t n_ctx, float *d_q, void *d_kcache, void *d_vcache,
                  cudaStream_t s);

/* Attention of batch queries over the cache, each seeing positions 0..d_pos[b]
 * of slot d_slot[b]. n_split >= 1: flash-decoding, n_split blocks per head
 * share fixed chunks of RL_CU_ATTN_CHUNK positions whose partials are merged
 * in chunk order, so a query's result never depends on n_split or on the rest
 * of the batch (batched and solo decoding agree bit for bit). n_split == 0:
 * one block per head (prefill: many queries). The scratch needs
 * rl_cu_attn_scratch_size (n_ctx: the most positions a query may see) and must
 * be zeroed once before its first use (it holds arrival counters the kernel
 * leaves at zero). Writes out->f (and out->q when set and head_dim % 32 == 0).
 * With one query (batch 1) the split kernel reads the KV rows before its
 * position before it waits for the kernel launched just before it (PDL): that
 * kernel may write the query's own row (RoPE + KV write), no earlier one. */
#define RL_CU_ATTN_CHUNK 64
size_t rl_cu_attn_scratch_size(int batch, int n_head, int head_dim, int64_t n_ctx);
int rl_cu_attn_splits(int batch, int n_head);
/* Split-mode kernel for head sizes 64 and 128, for tests and measurements:
 * -1 automatic (the warp kernel, or RL_CU_ATTN_KERNEL=warp|block), 0 the warp
 * kernel (each warp a part of a chunk, no barrier inside), 1 the block kernel,
 * 2 the warp kernel with int8 rows of 128 on tensor cores (opt-in otherwise
 * through RL_CU_ATTN_TC=1; rl_cu_attn_tc.cuh). */
void rl_cu_attn_force(int kernel);
/* One-token launches of the warp kernel in clusters of two blocks (a query of
 * two chunks merged through shared memory), for tests and measurements: -1
 * the default (on; RL_CU_ATTN_PAIR=0: off), 0 off, 1 on. */
void rl_cu_attn_set_pair(int on);
int rl_cu_attn_decode(const float *d_q, const void *d_kcache, const void *d_vcache,
                      const int32_t *d_pos, const int32_t *d_slot, int batch, const rl_cu_rope *r,
                      int64_t n_ctx, int n_split, void *d_scratch, const rl_cu_act *out,
                      cudaStream_t s);

/* ---- paged KV cache ----------------------------------------------------------
 * The CPU's rl_kv layout on the device: a pool of blocks of RL_CU_KV_BLOCK
 * positions; block b holds, for each layer, K then V, each
 * [n_head_kv][RL_CU_KV_BLOCK][head_dim] fp16, so the row of (block b, layer l,
 * which 0=K/1=V, kv head h, slot s) starts at half offset
 *   ((((b * n_layer + l) * 2 + which) * n_head_kv + h) * RL_CU_KV_BLOCK + s) * head_dim.
 * With q8 set (int8 KV, head_dim a multiple of 32), each such unit of
 * RL_CU_KV_BLOCK rows is instead RL_CU_KV_BLOCK x head_dim int8 quants (row s
 * at byte s * head_dim) followed by the rows' fp16 scales, head_dim / 32 per
 * row (row s at scale s * head_dim / 32): the values of Q8_0 blocks, d =
 * max|x| / 127, q = round(x / d), 17 / 32 of the fp16 bytes. Units are
 * RL_CU_KV_BLOCK * head_dim * 17 / 16 bytes apart, in the same order.
 * A sequence's block table (device int32, bt_stride entries per sequence) maps
 * position p to block bt[p / RL_CU_KV_BLOCK], slot p % RL_CU_KV_BLOCK. Block
 * ids are checked against n_blocks on the device: a write through a bad id is
 * skipped, a read lands in block 0 (memory stays in bounds). */
#define RL_CU_KV_BLOCK 16
typedef struct rl_cu_kv {
    void *pool;            /* n_blocks blocks, fp16 (or int8 + scales when q8) */
    uint32_t n_blocks, n_layer, n_head_kv, head_dim;
    bool q8;               /* int8 rows with fp16 scales per 32 (see above) */
    const int32_t *bt;     /* block tables, [sequences][bt_stride] */
    uint32_t bt_stride;
} rl_cu_kv;
/* Bytes of one block (q8: the int8 layout); 0 when q8 and head_dim % 32. */
size_t rl_cu_kv_block_bytes(uint32_t n_layer, uint32_t n_head_kv, uint32_t head_dim, bool q8);
/* Token t (0..n_tok-1) belongs to block-table row d_row[t] at position d_pos[t].
 * qkv[t] = [q | k | v]: rotates q into d_q and k, writes k and v of layer into
 * the pool (q8: quantized per 32, as rl_cu_kv says). */
int rl_cu_rope_kv_paged(const float *d_qkv, int n_tok, const int32_t *d_pos, const int32_t *d_row,
                        const rl_cu_rope *r, const rl_cu_kv *kv, uint32_t layer, float *d_q,
                        cudaStream_t s);
/* rl_cu_rope_kv_paged fused into rl_cu_mvb (one token, no bias): m holds rows
 * row0 .. row0 + rows - 1 of the token's [q | k | v] (row0 a multiple of 8;
 * Q, K and V may be one matrix or several, each its own call); instead of
 * storing them the product rotates its q rows into d_q (the same offsets)
 * and its k rows, and writes k and v rows into layer's pool at (d_row[0],
 * d_pos[0]), the same bits as the product then rl_cu_rope_kv_paged. Needs
 * what rl_cu_mvb_rope_ok says (pairs (2i, 2i + 1), fp16 pool); else -ENOTSUP;
 * rows past the token's [q | k | v]: -EINVAL. */
typedef struct rl_cu_mvb_rope {
    const rl_cu_rope *r;
    const rl_cu_kv *kv;
    uint32_t layer;
    const int32_t *d_pos, *d_row; /* the token's position and block-table row */
    float *d_q;                   /* [n_head * head_dim], 8-byte aligned */
    int64_t row0;
} rl_cu_mvb_rope;
int rl_cu_mvb_rope_kv(const rl_cu_mat *m, const float *d_x, const float *d_g, float eps, const rl_cu_mvb_rope *rp,
                      cudaStream_t s);
/* Whether rl_cu_mvb_rope_kv takes m with this rope and pool: rl_cu_mvb_ok(m,
 * STORE), not NeoX, an fp16 pool, head_dim a multiple of 8, at most 32
 * tiles of 8 rows a CTA (rows <= 256 * SMs: 33,792 on an H100). Off by
 * default in the step (rl_cu_step_mvb.c: measured slower there). */
bool rl_cu_mvb_rope_ok(const rl_cu_mat *m, const rl_cu_rope *r, const rl_cu_kv *kv);
/* Attention of n_tok queries (as above: row d_row[t], seeing positions 0..d_pos[t])
 * over layer's paged KV; split modes and scratch as rl_cu_attn_decode (batch =
 * n_tok, n_ctx = bt_stride * RL_CU_KV_BLOCK). Serves decode and, one query per
 * token, prefill. */
int rl_cu_attn_paged(const float *d_q, const int32_t *d_pos, const int32_t *d_row, int n_tok,
                     const rl_cu_rope *r, const rl_cu_kv *kv, uint32_t layer, int n_split,
                     void *d_scratch, const rl_cu_act *out, cudaStream_t s);
/* Causal attention of the n_q queries d_q[n_q][n_head * head_dim] at positions
 * pos0..pos0+n_q-1 of block-table row bt_row over layer's paged KV (positions
 * 0..pos0+n_q-1 already in the pool): tiled flash attention for prefill, GQA.
 * Positions in a block with a bad id are skipped. Writes out->f (and out->q
 * when set and head_dim % 32 == 0). No scratch. head_dim <= 256; 64 and 128
 * run on tensor cores (Q and P rounded to fp16, fp32 accumulation: ~1e-3
 * relative; RL_CU_ATTN_TC=0 forces the fp32 kernel), other sizes in fp32. */
int rl_cu_attn_prefill_paged(const float *d_q, int n_q, int32_t pos0, uint32_t bt_row, const rl_cu_rope *r,
                             const rl_cu_kv *kv, uint32_t layer, const rl_cu_act *out, cudaStream_t s);
/* The same over the per-slot cache of rl_cu_rope_kv (slot `slot`, n_ctx positions per slot). */
int rl_cu_attn_prefill(const float *d_q, int n_q, int32_t pos0, int32_t slot, const rl_cu_rope *r,
                       const void *d_kcache, const void *d_vcache, int64_t n_ctx, const rl_cu_act *out,
                       cudaStream_t s);
/* Copy block src to block dst (all layers): copy-on-write of shared prefix blocks. */
int rl_cu_kv_copy_block(const rl_cu_kv *kv, uint32_t dst, uint32_t src, cudaStream_t s);

/* ---- sampling -------------------------------------------------------------- */
/* d_out[b] = argmax of logits row b (lowest index on ties). */
int rl_cu_argmax(const float *d_logits, int64_t n_vocab, int batch, int32_t *d_out,
                 cudaStream_t s);

/* A token and its logit. */
typedef struct rl_cu_cand {
    float logit;
    int32_t id;
} rl_cu_cand;
#define RL_CU_TOPK_MAX 256
/* The k best of each of n_out logits rows (rl_cu_topk.cu): output o reads row
 * d_rows[o] of d_logits (o when d_rows is NULL) and wants d_k[o] candidates
 * (0: none; at most stride <= RL_CU_TOPK_MAX); they go to d_cand[o * stride ...]
 * best first, logit descending and ties by lower id (-0 equal to +0), and
 * d_ok[o] = 1; a row holding NaN or an infinity gets d_ok[o] = 0 instead.
 * With d_lse, also d_lse[o] = log(sum over the row of exp(logit - best)) (the
 * softmax's normalizer, fp32) for each finite row. */
int rl_cu_topk(const float *d_logits, int64_t n_vocab, const int32_t *d_rows, const int32_t *d_k, int n_out,
               int stride, rl_cu_cand *d_cand, int32_t *d_ok, float *d_lse, cudaStream_t s);

/* ---- zero copy: client regions mapped into the device (rl_cu_host.cu) ----
 * A hostmap holds host ranges registered with cudaHostRegister (mapped,
 * portable) and their device addresses. Not thread-safe: one owner thread (the
 * engine's), and never while a kernel that writes a range is in flight when
 * that range is unregistered. Registration may be refused (no mapped-memory
 * support, ulimit -l, RL_CU_ZEROCOPY=0): the caller then copies (logged once). */
typedef struct rl_cu_hostmap rl_cu_hostmap;
int rl_cu_hostmap_new(rl_cu_hostmap **out);
/* Unregisters whatever is still registered, then frees. NULL is fine. */
void rl_cu_hostmap_free(rl_cu_hostmap *hm);
/* 0, -EINVAL, -EEXIST (overlaps a registered range), -ENOTSUP (RL_CU_ZEROCOPY=0),
 * -EIO (CUDA refused), -ENOMEM. Not capturable (a host-synchronous call). */
int rl_cu_host_register(rl_cu_hostmap *hm, void *base, size_t len);
/* The range that starts at base. 0, -ENOENT, -EIO. */
int rl_cu_host_unregister(rl_cu_hostmap *hm, void *base);
/* Device address of [host, host+len) when it lies inside one registered
 * range, else 0 (hm may be NULL). */
uint64_t rl_cu_host_dev_ptr(const rl_cu_hostmap *hm, const void *host, size_t len);
/* *(int32_t *)d_dst_ptrs[i] = d_tok[i] for i < n, skipping 0 entries; the
 * addresses are device addresses of mapped host memory (or device memory).
 * Stores are fenced system-wide: the host reads them after synchronizing with
 * the stream. Capturable (the pointer array lives in device memory). */
int rl_cu_scatter_tokens(const int32_t *d_tok, const uint64_t *d_dst_ptrs, int n, cudaStream_t s);
/* The same with up to RL_CU_MAX_BATCH addresses passed by value (kernel
 * parameters: no copy to the device; a captured graph would keep the values
 * of capture time, so launch it outside graphs). */
typedef struct rl_cu_tok_dst {
    uint64_t p[RL_CU_MAX_BATCH];
} rl_cu_tok_dst;
int rl_cu_scatter_tokens_v(const int32_t *d_tok, const rl_cu_tok_dst *dst, int n, cudaStream_t s);

/* ---- prefill GEMM (cuBLAS) ------------------------------------------------ */
typedef struct rl_cu_blas rl_cu_blas;
int rl_cu_blas_create(rl_cu_blas **out, cudaStream_t s);
void rl_cu_blas_destroy(rl_cu_blas *b);
/* Y[n][rows] (+)= X[n][cols] * W^T with X fp16 and W dequantized into the
 * caller's fp16 scratch (>= rows*cols halves), fp32 accumulation. */
int rl_cu_gemm(rl_cu_blas *b, const rl_cu_mat *w, const void *d_x_f16, int n, float *d_y,
               bool accumulate, void *d_wscratch_f16);
/* The same with a weight already in fp16: W rows x cols, row-major (e.g.
 * several matrices dequantized one after the other with rl_cu_mat_to_f16). */
int rl_cu_gemm_f16(rl_cu_blas *b, const void *d_w_f16, int64_t rows, int64_t cols, const void *d_x_f16, int n,
                   float *d_y, bool accumulate);
/* Dequantize all of w to fp16 (dst: rows x cols); Q4_0/Q8_0 take a fast path. */
int rl_cu_gemm_to_f16(const rl_cu_mat *w, void *d_dst_f16, cudaStream_t s);
/* Staged GEMMs (prefill): b keeps n_buf (1..4) fp16 buffers of max_elems and a
 * side stream. rl_cu_gemm_stage dequantizes w into the next buffer on the side
 * stream (once the GEMM that last read it is done), overlapping the GEMMs on
 * b's stream; rl_cu_gemm_staged consumes the oldest staged weight, which must
 * be w (-EINVAL otherwise). Stage returns -EBUSY when every buffer is taken.
 * rl_cu_gemm_reset forgets staged weights (after an error). Not for capture. */
int rl_cu_gemm_reserve(rl_cu_blas *b, int64_t max_elems, int n_buf);
int rl_cu_gemm_stage(rl_cu_blas *b, const rl_cu_mat *w);
int rl_cu_gemm_staged(rl_cu_blas *b, const rl_cu_mat *w, const void *d_x_f16, int n, float *d_y,
                      bool accumulate);
void rl_cu_gemm_reset(rl_cu_blas *b);

#ifdef __cplusplus
}
#endif

#endif
