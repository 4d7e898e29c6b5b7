/* rl_cu_ops.cu - element-wise and row kernels: RMSNorm (+ int8 quantization),
 * quantization, RoPE fused with the KV-cache write, SwiGLU, fp16 conversion,
 * argmax. */
#include "rl_cu_common.cuh"

/* ---- RMSNorm ---------------------------------------------------------------- */
/* One block per row. Rows of up to 32 * 8 blocks of 32 keep their values in
 * registers (one pass over memory, all loads issued at once); longer rows
 * take a second pass. */
#define NORM_THREADS 1024
#define NORM_MAXB 8
__global__ void k_rmsnorm(const float *x, const float *w, float eps, int64_t n, rl_cu_act y)
{
    RL_TL_BLOCK(RL_TL_RMSNORM);
    rl_pdl_trigger();
    __shared__ float sh[32];
    int b = blockIdx.x;
    const float *xr = x + b * n;
    float *yr = y.f + b * n;
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    if (n % 32 == 0 && n / 32 <= (int64_t)nw * NORM_MAXB) {
        float xv[NORM_MAXB], wv[NORM_MAXB], ss = 0.0f;
        /* The norm's weights do not depend on the previous kernel: loaded before waiting for it. */
#pragma unroll
        for (int k = 0; k < NORM_MAXB; k++) {
            int64_t i = (int64_t)(warp + k * nw) * 32 + lane;
            wv[k] = i < n ? w[i] : 0.0f;
        }
        rl_pdl_wait();
        RL_TL_WAITED();
#pragma unroll
        for (int k = 0; k < NORM_MAXB; k++) {
            int64_t i = (int64_t)(warp + k * nw) * 32 + lane;
            xv[k] = i < n ? xr[i] : 0.0f;
            ss += xv[k] * xv[k];
        }
        /* deferred (y.ss): the consumer divides by the RMS */
        float rs = y.ss ? 1.0f : rsqrtf(rl_block_sum(ss, sh) / (float)n + eps);
        __syncthreads(); /* every x is read before y (which may alias x) is written */
#pragma unroll
        for (int k = 0; k < NORM_MAXB; k++) {
            int64_t blk = warp + k * nw;
            if (blk * 32 >= n)
                break; /* warp-uniform */
            float v = xv[k] * rs * wv[k];
            yr[blk * 32 + lane] = v;
            if (y.q)
                rl_quant_act(v, y, b * n + blk * 32);
            if (y.ss) {
                float bs = rl_warp_sum(xv[k] * xv[k]);
                if (lane == 0)
                    y.ss[b * (n / 32) + blk] = bs;
            }
        }
        return;
    }
    rl_pdl_wait();
    RL_TL_WAITED();
    if (y.ss) { /* deferred, long rows (n % 32 == 0): a warp per block */
        for (int64_t blk = warp; blk < n / 32; blk += nw) {
            int64_t i = blk * 32 + lane;
            float xi = xr[i], v = xi * w[i];
            yr[i] = v;
            if (y.q)
                rl_quant_act(v, y, b * n + blk * 32);
            float bs = rl_warp_sum(xi * xi);
            if (lane == 0)
                y.ss[b * (n / 32) + blk] = bs;
        }
        return;
    }
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
        ss += xr[i] * xr[i];
    ss = rl_block_sum(ss, sh);
    float rs = rsqrtf(ss / (float)n + eps);
    __syncthreads(); /* everyone has read x before y (which may alias x) is written */
    if (y.q && n % 32 == 0) {
        for (int64_t blk = warp; blk < n / 32; blk += nw) {
            int64_t i = blk * 32 + lane;
            float v = xr[i] * rs * w[i];
            yr[i] = v;
            rl_quant_act(v, y, b * n + blk * 32);
        }
    } else {
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
            yr[i] = xr[i] * rs * w[i];
    }
}

extern "C" int rl_cu_rmsnorm(const float *d_x, const float *d_w, float eps, int64_t n, int batch,
                             const rl_cu_act *y, cudaStream_t s)
{
    if (batch < 1 || n <= 0 || y->n != n || (y->ss && n % 32))
        return -EINVAL;
    /* Measured (H100): 256 threads x 16 values was slower for decode (7B 388 vs 430 tok/s). */
    rl_launch(k_rmsnorm, dim3(batch), dim3(NORM_THREADS), s, d_x, d_w, eps, n, *y);
    return RL_CU_LAUNCHED("rmsnorm");
}

/* Prefill: RMSNorm straight to fp16 (the GEMM input), one block per row. */
__global__ void k_rmsnorm_f16(const float *x, const float *w, float eps, int64_t n, __half *y)
{
    rl_pdl_trigger();
    rl_pdl_wait();
    __shared__ float sh[32];
    const float *xr = x + blockIdx.x * n;
    __half *yr = y + blockIdx.x * n;
    float ss = 0.0f;
    if (n % 4 == 0) {
        for (int64_t i = threadIdx.x; i < n / 4; i += blockDim.x) {
            float4 v = ((const float4 *)xr)[i];
            ss += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
        }
    } else {
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
            ss += xr[i] * xr[i];
    }
    ss = rl_block_sum(ss, sh);
    float rs = rsqrtf(ss / (float)n + eps);
    if (n % 4 == 0) {
        for (int64_t i = threadIdx.x; i < n / 4; i += blockDim.x) {
            float4 v = ((const float4 *)xr)[i], g = ((const float4 *)w)[i];
            __half2 a = __floats2half2_rn(v.x * rs * g.x, v.y * rs * g.y);
            __half2 b = __floats2half2_rn(v.z * rs * g.z, v.w * rs * g.w);
            ((__half2 *)yr)[2 * i] = a;
            ((__half2 *)yr)[2 * i + 1] = b;
        }
    } else {
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
            yr[i] = __float2half(xr[i] * rs * w[i]);
    }
}

extern "C" int rl_cu_rmsnorm_f16(const float *d_x, const float *d_w, float eps, int64_t n, int batch, void *d_y_f16,
                                 cudaStream_t s)
{
    if (batch < 1 || n <= 0)
        return -EINVAL;
    rl_launch(k_rmsnorm_f16, dim3(batch), dim3(256), s, d_x, d_w, eps, n, (__half *)d_y_f16);
    return RL_CU_LAUNCHED("rmsnorm_f16");
}

__global__ void k_quantize(rl_cu_act x, int64_t total_blocks)
{
    RL_TL_BLOCK(RL_TL_QUANT);
    rl_pdl_trigger();
    rl_pdl_wait();
    RL_TL_WAITED();
    int64_t blk = (int64_t)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
    if (blk >= total_blocks)
        return;
    int lane = threadIdx.x & 31;
    rl_quant_act(x.f[blk * 32 + lane], x, blk * 32);
}

extern "C" int rl_cu_quantize(const rl_cu_act *x, int batch, cudaStream_t s)
{
    if (batch < 1 || x->n % 32 || !x->q || !x->ds)
        return -EINVAL;
    int64_t nb = (int64_t)batch * x->n / 32;
    rl_launch(k_quantize, dim3((unsigned)((nb + 7) / 8)), dim3(256), s, *x, nb);
    return RL_CU_LAUNCHED("quantize");
}

__global__ void k_add_bias(float *y, const float *bias, int64_t n, int64_t total)
{
    rl_pdl_trigger();
    rl_pdl_wait();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x)
        y[i] += bias[i % n];
}

extern "C" int rl_cu_add_bias(float *d_y, const float *d_bias, int64_t n, int batch, cudaStream_t s)
{
    if (n <= 0 || batch < 1)
        return -EINVAL;
    int64_t total = n * batch, g = (total + 255) / 256;
    rl_launch(k_add_bias, dim3((unsigned)(g < 4096 ? g : 4096)), dim3(256), s, d_y, d_bias, n, total);
    return RL_CU_LAUNCHED("add_bias");
}

/* ---- conversions, SwiGLU --------------------------------------------------- */
__global__ void k_f32_to_f16(const float *x, __half *y, int64_t n)
{
    rl_pdl_trigger();
    rl_pdl_wait();
    int64_t stride = (int64_t)gridDim.x * blockDim.x, t = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
    if (n % 4 == 0) {
        for (int64_t i = t; i < n / 4; i += stride) {
            float4 v = ((const float4 *)x)[i];
            __half2 a = __floats2half2_rn(v.x, v.y), b = __floats2half2_rn(v.z, v.w);
            uint2 o = {*(uint32_t *)&a, *(uint32_t *)&b};
            ((uint2 *)y)[i] = o;
        }
        return;
    }
    for (int64_t i = t; i < n; i += stride)
        y[i] = __float2half(x[i]);
}

extern "C" int rl_cu_f32_to_f16(const float *d_x, void *d_y, int64_t n, cudaStream_t s)
{
    if (n <= 0)
        return -EINVAL;
    int64_t g = (n / 4 + 255) / 256 + 1;
    rl_launch(k_f32_to_f16, dim3((unsigned)(g < 8192 ? g : 8192)), dim3(256), s, d_x, (__half *)d_y, n);
    return RL_CU_LAUNCHED("f32_to_f16");
}

__global__ void k_swiglu(const float *gu, int64_t n, int64_t total, float *y)
{
    RL_TL_BLOCK(RL_TL_SWIGLU);
    rl_pdl_trigger();
    rl_pdl_wait();
    RL_TL_WAITED();
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        int64_t b = i / n, j = i % n;
        y[i] = rl_silu(gu[b * 2 * n + j]) * gu[b * 2 * n + n + j];
    }
}

extern "C" int rl_cu_swiglu(const float *d_gu, int64_t n, int batch, float *d_y, cudaStream_t s)
{
    if (n <= 0 || batch < 1)
        return -EINVAL;
    int64_t total = n * batch, g = (total + 255) / 256;
    k_swiglu<<<(unsigned)(g < 4096 ? g : 4096), 256, 0, s>>>(d_gu, n, total, d_y);
    return RL_CU_LAUNCHED("swiglu");
}

/* Prefill: y_f16 = silu(g) * u, straight to the down GEMM's fp16 input.
 * Grid (column chunks, row); float4 loads when n % 4 == 0. */
__global__ void k_swiglu_f16(const float *gu, int64_t n, __half *y)
{
    rl_pdl_trigger();
    rl_pdl_wait();
    const float *g = gu + (int64_t)blockIdx.y * 2 * n, *u = g + n;
    __half *yr = y + (int64_t)blockIdx.y * n;
    int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, stride = (int64_t)gridDim.x * blockDim.x;
    if (n % 4 == 0) {
        for (int64_t i = t; i < n / 4; i += stride) {
            float4 a = ((const float4 *)g)[i], c = ((const float4 *)u)[i];
            __half2 lo = __floats2half2_rn(rl_silu(a.x) * c.x, rl_silu(a.y) * c.y);
            __half2 hi = __floats2half2_rn(rl_silu(a.z) * c.z, rl_silu(a.w) * c.w);
            uint2 o = {*(uint32_t *)&lo, *(uint32_t *)&hi};
            ((uint2 *)yr)[i] = o;
        }
        return;
    }
    for (int64_t i = t; i < n; i += stride)
        yr[i] = __float2half(rl_silu(g[i]) * u[i]);
}

extern "C" int rl_cu_swiglu_f16(const float *d_gu, int64_t n, int batch, void *d_y_f16, cudaStream_t s)
{
    if (n <= 0 || batch < 1 || batch > 65535)
        return -EINVAL;
    int64_t g = (n / 4 + 255) / 256;
    g = g < 1 ? 1 : g > 64 ? 64 : g;
    rl_launch(k_swiglu_f16, dim3((unsigned)g, batch), dim3(256), s, d_gu, n, (__half *)d_y_f16);
    return RL_CU_LAUNCHED("swiglu_f16");
}

/* RoPE + KV write: rl_cu_kv.cu */


/* ---- argmax ------------------------------------------------------------------ */
__device__ __forceinline__ void better(float &v, int &i, float v2, int i2)
{
    if (v2 > v || (v2 == v && i2 < i)) {
        v = v2;
        i = i2;
    }
}

__global__ void k_argmax(const float *logits, int64_t n, int32_t *out)
{
    RL_TL_BLOCK(RL_TL_ARGMAX);
    rl_pdl_trigger();
    rl_pdl_wait();
    RL_TL_WAITED();
    __shared__ float sv[32];
    __shared__ int si[32];
    const float *l = logits + blockIdx.x * n;
    float v = -INFINITY;
    int idx = 0x7fffffff;
    auto take = [&](float x, int64_t i) {
        if (x == x) /* NaN never wins */
            better(v, idx, x, (int)i);
    };
    if (n % 4 == 0 && (uintptr_t)l % 16 == 0) {
        /* float4s, AV of them a thread in flight at once: a 32,000-token row
         * is one round trip to L2 (the scalar loop below took about four) */
        constexpr int AV = 8;
        const float4 *l4 = (const float4 *)l;
        const int64_t n4 = n / 4;
        for (int64_t base = 0; base < n4; base += AV * blockDim.x) {
            float4 a[AV];
#pragma unroll
            for (int k = 0; k < AV; k++) {
                int64_t j = base + k * blockDim.x + threadIdx.x;
                a[k] = j < n4 ? l4[j] : make_float4(NAN, NAN, NAN, NAN);
            }
#pragma unroll
            for (int k = 0; k < AV; k++) {
                int64_t j = 4 * (base + k * blockDim.x + threadIdx.x);
                take(a[k].x, j), take(a[k].y, j + 1), take(a[k].z, j + 2), take(a[k].w, j + 3);
            }
        }
    } else {
#pragma unroll 8
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
            take(l[i], i);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1)
        better(v, idx, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, idx, o));
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    if (lane == 0) {
        sv[w] = v;
        si[w] = idx;
    }
    __syncthreads();
    if (w == 0) {
        v = lane < (int)(blockDim.x >> 5) ? sv[lane] : -INFINITY;
        idx = lane < (int)(blockDim.x >> 5) ? si[lane] : 0x7fffffff;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1)
            better(v, idx, __shfl_xor_sync(0xffffffffu, v, o), __shfl_xor_sync(0xffffffffu, idx, o));
        if (lane == 0)
            out[blockIdx.x] = idx == 0x7fffffff ? 0 : idx;
    }
}

extern "C" int rl_cu_argmax(const float *d_logits, int64_t n_vocab, int batch, int32_t *d_out, cudaStream_t s)
{
    if (n_vocab <= 0 || batch < 1)
        return -EINVAL;
    rl_launch(k_argmax, dim3(batch), dim3(1024), s, d_logits, n_vocab, d_out);
    return RL_CU_LAUNCHED("argmax");
}

RL_TL_TU(ops)
