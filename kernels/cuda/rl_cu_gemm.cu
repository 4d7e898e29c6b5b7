/* rl_cu_gemm.cu - prefill matrix products: dequantize the weight to fp16,
 * then one cuBLAS tensor-core GEMM (fp16 inputs, fp32 accumulation/output).
 *
 * Staged GEMMs: the handle keeps a ring of fp16 weight buffers and a side
 * stream. rl_cu_gemm_stage() dequantizes the next weight into the next buffer
 * on the side stream (after the GEMM that last read that buffer, through an
 * event), so the dequantization of weight i+1 (memory-bound) runs while the
 * GEMM of weight i (tensor cores) runs on the main stream. */
#include <stdlib.h>
#include <string.h>

#include <cublas_v2.h>

#include "rl_cu_common.cuh"

#define GEMM_MAX_BUF 4

struct rl_cu_blas {
    cublasHandle_t h;
    cudaStream_t s, side;
    /* staging ring */
    int n_buf;
    int64_t buf_elems;
    void *buf[GEMM_MAX_BUF];
    cudaEvent_t ready[GEMM_MAX_BUF], done[GEMM_MAX_BUF];
    const void *staged[GEMM_MAX_BUF]; /* w->q of the weight in each buffer */
    unsigned head, tail;              /* stage at head, consume at tail */
};

extern "C" int rl_cu_blas_create(rl_cu_blas **out, cudaStream_t s)
{
    rl_cu_blas *b = (rl_cu_blas *)calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    if (cublasCreate(&b->h) != CUBLAS_STATUS_SUCCESS) {
        free(b);
        rl_cu_check(cudaErrorUnknown, "cublasCreate");
        return -EIO;
    }
    cublasSetStream(b->h, s);
    cublasSetMathMode(b->h, CUBLAS_DEFAULT_MATH);
    b->s = s;
    *out = b;
    return 0;
}

extern "C" void rl_cu_blas_destroy(rl_cu_blas *b)
{
    if (!b)
        return;
    if (b->side)
        cudaStreamSynchronize(b->side);
    for (int i = 0; i < b->n_buf; i++) {
        cudaFree(b->buf[i]);
        cudaEventDestroy(b->ready[i]);
        cudaEventDestroy(b->done[i]);
    }
    if (b->side)
        cudaStreamDestroy(b->side);
    cublasDestroy(b->h);
    free(b);
}

/* ---- fast dequantization (Q4_0, Q8_0 planes) --------------------------------
 * Four threads per 32-block, each writing 8 halves as one 16-byte store, so a
 * warp writes 512 contiguous bytes. Q4_0: (nibble - 8) * d built as half2
 * (0x6400 | n) - 1032 (exact), times d: the correctly rounded product, as the
 * fp32 path gives. */
__global__ void k_q4_0_to_f16(const uint2 *__restrict__ q, const __half *__restrict__ d, int64_t n_blk,
                              uint4 *__restrict__ out)
{
    int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int64_t blk = t >> 2;
    if (blk >= n_blk)
        return;
    int j = (int)(t & 3); /* elements 8j..8j+7: low nibbles (j<2) or high nibbles (j>=2) of bytes 8(j&1).. */
    uint2 w = __ldg(q + blk * 2 + (j & 1));
    __half2 d2 = __half2half2(__ldg(d + blk));
    int sh = (j >> 1) * 4;
    uint32_t a = (w.x >> sh) & 0x0F0F0F0Fu, c = (w.y >> sh) & 0x0F0F0F0Fu;
    const __half2 off = __half2half2(__ushort_as_half(0x6408)); /* 1032 */
    uint32_t p[4] = {__byte_perm(a, 0x64646464u, 0x4140), __byte_perm(a, 0x64646464u, 0x4342),
                     __byte_perm(c, 0x64646464u, 0x4140), __byte_perm(c, 0x64646464u, 0x4342)};
    uint4 o;
    uint32_t *po = (uint32_t *)&o;
#pragma unroll
    for (int k = 0; k < 4; k++) {
        __half2 h = __hmul2(__hsub2(*(__half2 *)&p[k], off), d2);
        po[k] = *(uint32_t *)&h;
    }
    out[t] = o;
}

__global__ void k_q8_0_to_f16(const uint2 *__restrict__ q, const __half *__restrict__ d, int64_t n_blk,
                              uint4 *__restrict__ out)
{
    int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int64_t blk = t >> 2;
    if (blk >= n_blk)
        return;
    uint2 w = __ldg(q + t); /* 8 int8 */
    float dv = __half2float(__ldg(d + blk));
    const int8_t *v = (const int8_t *)&w;
    uint4 o;
    __half2 *po = (__half2 *)&o;
#pragma unroll
    for (int k = 0; k < 4; k++)
        po[k] = __floats2half2_rn((float)v[2 * k] * dv, (float)v[2 * k + 1] * dv);
    out[t] = o;
}

static int to_f16(const rl_cu_mat *w, void *dst, cudaStream_t s)
{
    int64_t n_blk = w->rows * (w->cols / 32), threads = n_blk * 4;
    unsigned grid = (unsigned)((threads + 255) / 256);
    if (w->type == RL_TYPE_Q4_0 && w->cols % 32 == 0) {
        k_q4_0_to_f16<<<grid, 256, 0, s>>>((const uint2 *)w->q, (const __half *)w->d, n_blk, (uint4 *)dst);
        return RL_CU_LAUNCHED("q4_0_to_f16");
    }
    if (w->type == RL_TYPE_Q8_0 && w->cols % 32 == 0) {
        k_q8_0_to_f16<<<grid, 256, 0, s>>>((const uint2 *)w->q, (const __half *)w->d, n_blk, (uint4 *)dst);
        return RL_CU_LAUNCHED("q8_0_to_f16");
    }
    return rl_cu_mat_to_f16(w, 0, w->rows, dst, s);
}

extern "C" int rl_cu_gemm_to_f16(const rl_cu_mat *w, void *d_dst_f16, cudaStream_t s)
{
    return to_f16(w, d_dst_f16, s);
}

static int gemm_f16(rl_cu_blas *b, const rl_cu_mat *w, const void *d_x, int n, float *d_y, bool accumulate,
                    const void *d_wf16)
{
    /* Row-major Y[n][rows] = X[n][cols] W^T is, column-major, Y^T = W^T' X':
     * A = W viewed as cols x rows (transposed), B = X viewed as cols x n. */
    float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    cublasStatus_t st = cublasGemmEx(b->h, CUBLAS_OP_T, CUBLAS_OP_N, (int)w->rows, n, (int)w->cols, &alpha,
                                     d_wf16, CUDA_R_16F, (int)w->cols, d_x, CUDA_R_16F, (int)w->cols,
                                     &beta, d_y, CUDA_R_32F, (int)w->rows, CUBLAS_COMPUTE_32F,
                                     CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) {
        rl_cu_check(cudaErrorUnknown, "cublasGemmEx");
        return -EIO;
    }
    return 0;
}

extern "C" int rl_cu_gemm_f16(rl_cu_blas *b, const void *d_w, int64_t rows, int64_t cols, const void *d_x, int n,
                              float *d_y, bool accumulate)
{
    if (n <= 0 || rows <= 0 || cols <= 0 || rows > INT32_MAX || cols > INT32_MAX)
        return -EINVAL;
    /* Row-major Y[n][rows] = X[n][cols] W^T is, column-major, Y^T = W^T' X':
     * A = W viewed as cols x rows (transposed), B = X viewed as cols x n. */
    float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    cublasStatus_t st = cublasGemmEx(b->h, CUBLAS_OP_T, CUBLAS_OP_N, (int)rows, n, (int)cols, &alpha,
                                     d_w, CUDA_R_16F, (int)cols, d_x, CUDA_R_16F, (int)cols,
                                     &beta, d_y, CUDA_R_32F, (int)rows, CUBLAS_COMPUTE_32F,
                                     CUBLAS_GEMM_DEFAULT);
    if (st != CUBLAS_STATUS_SUCCESS) {
        rl_cu_check(cudaErrorUnknown, "cublasGemmEx");
        return -EIO;
    }
    return 0;
}

extern "C" int rl_cu_gemm(rl_cu_blas *b, const rl_cu_mat *w, const void *d_x, int n, float *d_y,
                          bool accumulate, void *d_wscratch)
{
    if (n <= 0)
        return -EINVAL;
    int rc = to_f16(w, d_wscratch, b->s);
    return rc ? rc : gemm_f16(b, w, d_x, n, d_y, accumulate, d_wscratch);
}

/* ---- staged GEMMs ------------------------------------------------------------ */
extern "C" int rl_cu_gemm_reserve(rl_cu_blas *b, int64_t max_elems, int n_buf)
{
    if (n_buf < 1 || n_buf > GEMM_MAX_BUF || max_elems <= 0 || b->n_buf)
        return -EINVAL;
    int lo = 0, hi = 0;
    cudaDeviceGetStreamPriorityRange(&lo, &hi);
    if (rl_cu_check(cudaStreamCreateWithPriority(&b->side, cudaStreamNonBlocking, lo), "gemm side stream"))
        return -EIO;
    for (int i = 0; i < n_buf; i++) {
        if (rl_cu_check(cudaMalloc(&b->buf[i], (size_t)max_elems * 2), "cudaMalloc(gemm staging)"))
            return -ENOMEM;
        b->n_buf = i + 1; /* so that destroy frees what exists */
        if (rl_cu_check(cudaEventCreateWithFlags(&b->ready[i], cudaEventDisableTiming), "event") ||
            rl_cu_check(cudaEventCreateWithFlags(&b->done[i], cudaEventDisableTiming), "event"))
            return -EIO;
        /* Record both once, so every wait has a recorded event to wait on. */
        cudaEventRecord(b->done[i], b->s);
        cudaEventRecord(b->ready[i], b->side);
    }
    b->buf_elems = max_elems;
    b->head = b->tail = 0;
    return 0;
}

extern "C" void rl_cu_gemm_reset(rl_cu_blas *b)
{
    b->head = b->tail = 0;
}

extern "C" int rl_cu_gemm_stage(rl_cu_blas *b, const rl_cu_mat *w)
{
    if (!b->n_buf || w->rows * w->cols > b->buf_elems)
        return -EINVAL;
    if (b->head - b->tail >= (unsigned)b->n_buf)
        return -EBUSY; /* every buffer holds a weight not consumed yet */
    int k = (int)(b->head % b->n_buf);
    /* The side stream waits until the last GEMM that read buffer k is done. */
    if (rl_cu_check(cudaStreamWaitEvent(b->side, b->done[k], 0), "gemm stage wait"))
        return -EIO;
    int rc = to_f16(w, b->buf[k], b->side);
    if (rc)
        return rc;
    if (rl_cu_check(cudaEventRecord(b->ready[k], b->side), "gemm stage record"))
        return -EIO;
    b->staged[k] = w->q;
    b->head++;
    return 0;
}

extern "C" int rl_cu_gemm_staged(rl_cu_blas *b, const rl_cu_mat *w, const void *d_x, int n, float *d_y,
                                 bool accumulate)
{
    if (n <= 0 || b->head == b->tail)
        return -EINVAL;
    int k = (int)(b->tail % b->n_buf);
    if (b->staged[k] != w->q)
        return -EINVAL; /* staged out of order */
    if (rl_cu_check(cudaStreamWaitEvent(b->s, b->ready[k], 0), "gemm wait staged"))
        return -EIO;
    int rc = gemm_f16(b, w, d_x, n, d_y, accumulate, b->buf[k]);
    if (rc)
        return rc;
    if (rl_cu_check(cudaEventRecord(b->done[k], b->s), "gemm done record"))
        return -EIO;
    b->tail++;
    return 0;
}
