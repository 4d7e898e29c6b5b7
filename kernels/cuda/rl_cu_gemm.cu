/* rl_cu_gemm.cu - prefill matrix products: dequantize the weight to fp16,
 * then one cuBLAS tensor-core GEMM (fp16 inputs, fp32 accumulation/output). */
#include <stdlib.h>

#include <cublas_v2.h>

#include "rl_cu_common.cuh"

struct rl_cu_blas {
    cublasHandle_t h;
    cudaStream_t s;
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
    cublasDestroy(b->h);
    free(b);
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
    int rc = rl_cu_mat_to_f16(w, 0, w->rows, d_wscratch, b->s);
    if (rc)
        return rc;
    return rl_cu_gemm_f16(b, d_wscratch, w->rows, w->cols, d_x, n, d_y, accumulate);
}
