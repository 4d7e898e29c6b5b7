/* rl_cu_mat.cu - device weights: error state, upload (with Q4_0/Q8_0
 * repacking), random fill for benchmarks, dequantization to fp16/fp32. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl_cu_dequant.cuh"

static __thread char g_err[256];

extern "C" const char *rl_cu_last_error(void)
{
    return g_err;
}

extern "C" int rl_cu_check(cudaError_t e, const char *what)
{
    if (e == cudaSuccess)
        return 0;
    snprintf(g_err, sizeof g_err, "%s: %s", what, cudaGetErrorString(e));
    return -EIO;
}

extern "C" int rl_cu_check_launch(const char *what)
{
    return rl_cu_check(cudaGetLastError(), what);
}

bool rl_cu_pdl_enabled()
{
    static int on = -1;
    return rl_env_switch("RL_CU_PDL", true, &on);
}

extern "C" int rl_cu_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); /* clear the sticky "no driver" status */
        return 0;
    }
    return n;
}

extern "C" bool rl_cu_type_supported(rl_type t)
{
    switch (t) {
    case RL_TYPE_F32: case RL_TYPE_F16: case RL_TYPE_BF16:
    case RL_TYPE_Q4_0: case RL_TYPE_Q8_0: case RL_TYPE_Q4_K: case RL_TYPE_Q5_K: case RL_TYPE_Q6_K:
        return true;
    default:
        return false;
    }
}

/* Q4_K and Q5_K rows start on 128-byte lines (RL_CU_KROW128=0: packed, for
 * measurements): a 7B down row (43 blocks) is 6,192 bytes of Q4_K, so
 * without padding seven of eight rows' bulk copies (rl_cu_mvb: 2,304 bytes
 * of Q4_K, 2,816 of Q5_K, whole lines) start mid-line. Q6_K rows stay
 * packed: their 1,680-byte chunks do not keep a line's alignment anyway. */
static bool krow128(void)
{
    static int on = -1;
    return rl_env_switch("RL_CU_KROW128", true, &on);
}

static bool is_kquant(rl_type t)
{
    return t == RL_TYPE_Q4_K || t == RL_TYPE_Q5_K || t == RL_TYPE_Q6_K;
}

/* Bytes of nbk K-quant blocks packed in a row (Q4_K, Q5_K: the file's row;
 * Q6_K: in groups behind their d headers). */
static size_t kquant_packed(rl_type t, int64_t nbk)
{
    return t == RL_TYPE_Q4_K ? (size_t)nbk * RL_Q4K_BYTES : t == RL_TYPE_Q5_K ? (size_t)nbk * RL_Q5K_BYTES
         : (size_t)rl_q6k_row_bytes(nbk);
}

/* Bytes of a K-quant row on the device: the packed blocks, Q4_K and Q5_K
 * rounded up to 128 unless packed rows are asked for; 0 when cols does not
 * fit the type. */
static size_t kquant_ld(rl_type t, int64_t cols)
{
    if (cols % 256)
        return 0;
    size_t b = kquant_packed(t, cols / 256);
    return t != RL_TYPE_Q6_K && krow128() ? (b + 127) / 128 * 128 : b;
}

extern "C" size_t rl_cu_mat_bytes(rl_type t, int64_t rows, int64_t cols)
{
    if (rows <= 0 || cols <= 0)
        return 0;
    size_t r = (size_t)rows;
    if (is_kquant(t))
        return r * kquant_ld(t, cols);
    switch (t) {
    case RL_TYPE_F32: return cols % 4 ? 0 : r * cols * 4;
    case RL_TYPE_F16: case RL_TYPE_BF16: return cols % 4 ? 0 : r * cols * 2;
    case RL_TYPE_Q4_0: return cols % 32 ? 0 : r * (cols / 32) * 18;
    case RL_TYPE_Q8_0: return cols % 32 ? 0 : r * (cols / 32) * 34;
    default: return 0;
    }
}

/* Bytes of the quant plane per row (the scale plane is 2 bytes per 32). */
static size_t qplane_row(rl_type t, int64_t cols)
{
    switch (t) {
    case RL_TYPE_Q4_0: return (size_t)cols / 2;
    case RL_TYPE_Q8_0: return (size_t)cols;
    default: return rl_cu_mat_bytes(t, 1, cols);
    }
}

static bool has_scale_plane(rl_type t)
{
    return t == RL_TYPE_Q4_0 || t == RL_TYPE_Q8_0;
}

extern "C" int rl_cu_mat_alloc(rl_cu_mat *m, rl_type t, int64_t rows, int64_t cols)
{
    memset(m, 0, sizeof *m);
    size_t total = rl_cu_mat_bytes(t, rows, cols);
    if (!rl_cu_type_supported(t) || total == 0) {
        snprintf(g_err, sizeof g_err, "unsupported matrix: type %d, %lld x %lld", (int)t,
                 (long long)rows, (long long)cols);
        return -EINVAL;
    }
    m->type = t;
    m->rows = rows;
    m->cols = cols;
    m->ld = (int64_t)qplane_row(t, cols);
    size_t qb = qplane_row(t, cols) * (size_t)rows;
    int rc = rl_cu_check(cudaMalloc(&m->q, qb), "cudaMalloc(weights)");
    if (rc)
        return rc;
    m->bytes = qb;
    if (has_scale_plane(t)) {
        size_t db = (size_t)rows * (size_t)(cols / 32) * 2;
        rc = rl_cu_check(cudaMalloc(&m->d, db), "cudaMalloc(scales)");
        if (rc) {
            cudaFree(m->q);
            m->q = NULL;
            return rc;
        }
        m->bytes += db;
    }
    return 0;
}

extern "C" void rl_cu_mat_free(rl_cu_mat *m)
{
    if (!m)
        return;
    cudaFree(m->q);
    cudaFree(m->d);
    memset(m, 0, sizeof *m);
}

extern "C" int rl_cu_mat_set_rows(rl_cu_mat *m, int64_t row0, const void *host, int64_t n_rows)
{
    if (row0 < 0 || n_rows < 0 || row0 + n_rows > m->rows)
        return -EINVAL;
    if (n_rows == 0)
        return 0;
    size_t qrow = qplane_row(m->type, m->cols);
    if (m->type == RL_TYPE_Q4_K || m->type == RL_TYPE_Q5_K) { /* the file's rows, each at its line */
        size_t fr = kquant_packed(m->type, m->cols / 256);
        return rl_cu_check(cudaMemcpy2D((uint8_t *)m->q + row0 * qrow, qrow, host, fr, fr, n_rows,
                                        cudaMemcpyHostToDevice), "upload weights");
    }
    if (m->type == RL_TYPE_Q6_K) { /* each 210-byte block: its d to the group's header */
        int64_t nbk = m->cols / 256;
        uint8_t *t = (uint8_t *)calloc((size_t)n_rows, qrow);
        if (!t)
            return -ENOMEM;
        for (int64_t r = 0; r < n_rows; r++)
            for (int64_t k = 0; k < nbk; k++) {
                const uint8_t *b = (const uint8_t *)host + (r * nbk + k) * RL_Q6K_BYTES;
                memcpy(t + r * qrow + rl_q6k_block_off(k), b, RL_Q6K_PACK);
                memcpy(t + r * qrow + rl_q6k_d_off(k), b + RL_Q6K_PACK, 2);
            }
        int rc = rl_cu_check(cudaMemcpy((uint8_t *)m->q + row0 * qrow, t, qrow * n_rows, cudaMemcpyHostToDevice),
                             "upload weights");
        free(t);
        return rc;
    }
    if (!has_scale_plane(m->type))
        return rl_cu_check(cudaMemcpy((uint8_t *)m->q + row0 * qrow, host, qrow * n_rows,
                                      cudaMemcpyHostToDevice), "upload weights");
    /* Split blocks into quants and scales. */
    int64_t nb = m->cols / 32;
    size_t bsz = m->type == RL_TYPE_Q4_0 ? 18 : 34, qb = bsz - 2;
    size_t n_blocks = (size_t)n_rows * nb;
    uint8_t *tq = (uint8_t *)malloc(n_blocks * qb);
    uint16_t *td = (uint16_t *)malloc(n_blocks * 2);
    if (!tq || !td) {
        free(tq);
        free(td);
        return -ENOMEM;
    }
    const uint8_t *src = (const uint8_t *)host;
    for (size_t i = 0; i < n_blocks; i++) {
        memcpy(&td[i], src + i * bsz, 2);
        memcpy(tq + i * qb, src + i * bsz + 2, qb);
    }
    int rc = rl_cu_check(cudaMemcpy((uint8_t *)m->q + row0 * qrow, tq, n_blocks * qb,
                                    cudaMemcpyHostToDevice), "upload quants");
    if (!rc)
        rc = rl_cu_check(cudaMemcpy((uint16_t *)m->d + row0 * nb, td, n_blocks * 2,
                                    cudaMemcpyHostToDevice), "upload scales");
    free(tq);
    free(td);
    return rc;
}

/* ---- random fill ---------------------------------------------------------- */
__device__ __forceinline__ uint32_t rl_hash(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return (uint32_t)x;
}

/* Uniform in [-1, 1). */
__device__ __forceinline__ float rl_unif(uint64_t seed, uint64_t i)
{
    return (rl_hash(seed * 0x9E3779B97F4A7C15ULL + i) >> 8) * (2.0f / 16777216.0f) - 1.0f;
}

__global__ void k_fill_bytes(uint32_t *p, size_t n_words, uint64_t seed)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n_words;
         i += (size_t)gridDim.x * blockDim.x)
        p[i] = rl_hash(seed + i);
}

/* Plain floats: uniform * amp. */
__global__ void k_fill_float(rl_cu_mat m, uint64_t seed, float amp)
{
    size_t n = (size_t)m.rows * m.cols;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float v = rl_unif(seed, i) * amp;
        if (m.type == RL_TYPE_F32)
            ((float *)m.q)[i] = v;
        else if (m.type == RL_TYPE_F16)
            ((__half *)m.q)[i] = __float2half(v);
        else
            ((__nv_bfloat16 *)m.q)[i] = __float2bfloat16(v);
    }
}

/* Scales: fp16 planes (Q4_0/Q8_0) or the scale fields inside K blocks. */
__global__ void k_fill_scales(rl_cu_mat m, uint64_t seed, float amp)
{
    bool k = m.type == RL_TYPE_Q4_K || m.type == RL_TYPE_Q5_K || m.type == RL_TYPE_Q6_K;
    size_t nsb = k ? (size_t)m.rows * (m.cols / 256) : (size_t)m.rows * (m.cols / 32);
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < nsb;
         i += (size_t)gridDim.x * blockDim.x) {
        __half d = __float2half(amp * (0.5f + 0.5f * fabsf(rl_unif(seed, i))));
        if (m.type == RL_TYPE_Q4_0 || m.type == RL_TYPE_Q8_0) {
            ((__half *)m.d)[i] = d;
        } else if (m.type == RL_TYPE_Q4_K || m.type == RL_TYPE_Q5_K) {
            size_t bb = m.type == RL_TYPE_Q4_K ? RL_Q4K_BYTES : RL_Q5K_BYTES, nbk = m.cols / 256;
            __half *b = (__half *)((uint8_t *)m.q + i / nbk * m.ld + i % nbk * bb);
            b[0] = d;
            b[1] = __float2half(__half2float(d) * (m.type == RL_TYPE_Q4_K ? 8.0f : 16.0f));
        } else {
            int64_t nbk = m.cols / 256, row = (int64_t)(i / nbk), k = (int64_t)(i % nbk);
            *(__half *)((uint8_t *)m.q + row * m.ld + rl_q6k_d_off(k)) = d;
        }
    }
}

extern "C" int rl_cu_mat_fill_random(rl_cu_mat *m, uint64_t seed, cudaStream_t s)
{
    /* Amplitudes keep W x of the order of x. */
    float amp = 1.0f / sqrtf((float)m->cols);
    if (m->type == RL_TYPE_F32 || m->type == RL_TYPE_F16 || m->type == RL_TYPE_BF16) {
        k_fill_float<<<1024, 256, 0, s>>>(*m, seed, amp * 1.7f);
        return RL_CU_LAUNCHED("fill_float");
    }
    size_t qb = qplane_row(m->type, m->cols) * (size_t)m->rows;
    k_fill_bytes<<<1024, 256, 0, s>>>((uint32_t *)m->q, qb / 4, seed);
    int rc = RL_CU_LAUNCHED("fill_bytes");
    if (rc)
        return rc;
    float qamp = m->type == RL_TYPE_Q4_0 ? amp / 4.0f : m->type == RL_TYPE_Q8_0 ? amp / 64.0f
               : m->type == RL_TYPE_Q4_K ? amp / 256.0f : m->type == RL_TYPE_Q5_K ? amp / 512.0f
               : amp / 1024.0f;
    k_fill_scales<<<1024, 256, 0, s>>>(*m, seed ^ 0x5555, qamp);
    return RL_CU_LAUNCHED("fill_scales");
}

/* ---- dequantization ------------------------------------------------------- */
__global__ void k_to_f16_blocks(rl_cu_mat m, int64_t row0, int64_t n_rows, __half *dst)
{
    int64_t nb = m.cols / 32, total = n_rows * nb;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t r = i / nb, b = i % nb;
        float v[32];
        rl_dequant32(m, row0 + r, b, v);
        __align__(16) __half h[32];
#pragma unroll
        for (int k = 0; k < 32; k++)
            h[k] = __float2half(v[k]);
        uint4 *o = (uint4 *)(dst + r * m.cols + b * 32);
#pragma unroll
        for (int k = 0; k < 4; k++)
            o[k] = ((const uint4 *)h)[k];
    }
}

__global__ void k_to_f16_float(rl_cu_mat m, int64_t row0, int64_t n_rows, __half *dst)
{
    int64_t total = n_rows * m.cols;
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = __float2half(rl_float_elem(m, row0 + i / m.cols, i % m.cols));
}

extern "C" int rl_cu_mat_to_f16(const rl_cu_mat *m, int64_t row0, int64_t n_rows, void *dst,
                                cudaStream_t s)
{
    if (row0 < 0 || n_rows <= 0 || row0 + n_rows > m->rows)
        return -EINVAL;
    if (m->type == RL_TYPE_F32 || m->type == RL_TYPE_F16 || m->type == RL_TYPE_BF16)
        k_to_f16_float<<<2048, 256, 0, s>>>(*m, row0, n_rows, (__half *)dst);
    else
        k_to_f16_blocks<<<2048, 256, 0, s>>>(*m, row0, n_rows, (__half *)dst);
    return RL_CU_LAUNCHED("mat_to_f16");
}

__global__ void k_get_rows(rl_cu_mat m, const int32_t *ids, int n, float *dst, bool vec)
{
    RL_TL_BLOCK(RL_TL_GET_ROWS);
    rl_pdl_trigger();
    rl_pdl_wait();
    RL_TL_WAITED();
    int i = blockIdx.y;
    int64_t r = ids[i];
    float *o = dst + (int64_t)i * m.cols;
    if (r < 0 || r >= m.rows) { /* hostile id: zeros rather than a wild read */
        for (int64_t c = threadIdx.x; c < m.cols; c += blockDim.x)
            o[c] = 0.0f;
        return;
    }
    if (rl_is_float_type(m.type)) {
        for (int64_t c = threadIdx.x; c < m.cols; c += blockDim.x)
            o[c] = rl_float_elem(m, r, c);
        return;
    }
    if (vec && (m.type == RL_TYPE_Q4_0 || m.type == RL_TYPE_Q8_0)) {
        /* Four consecutive values a thread from the repacked planes: one
         * 4-byte load of quants, one float4 store, a warp's stores one
         * 512-byte run (the step's embedding row: one loop round at 4,096
         * wide; the per-block loop below left a 7B step's first product
         * waiting ~2 us longer, its stores 128 bytes apart). rl_dequant32's
         * arithmetic, so the same values. */
        const int64_t nb = m.cols / 32;
        const uint16_t *dp = (const uint16_t *)m.d + r * nb;
        const bool q4 = m.type == RL_TYPE_Q4_0;
        for (int64_t c = 4 * (int64_t)threadIdx.x; c < m.cols; c += 4 * (int64_t)blockDim.x) {
            const int64_t blk = c / 32;
            const int k = (int)(c % 32);
            const float d = rl_h2f(dp[blk]);
            float v[4];
            if (q4) {
                const uint32_t w = *(const uint32_t *)((const uint8_t *)m.q + (r * nb + blk) * 16 + (k & 15));
                const int sh = k >= 16 ? 4 : 0;
                for (int e = 0; e < 4; e++)
                    v[e] = ((int)((w >> (8 * e + sh)) & 0xF) - 8) * d;
            } else {
                const uint32_t w = *(const uint32_t *)((const int8_t *)m.q + (r * nb + blk) * 32 + k);
                for (int e = 0; e < 4; e++)
                    v[e] = (int8_t)(w >> (8 * e)) * d;
            }
            *(float4 *)(o + c) = make_float4(v[0], v[1], v[2], v[3]);
        }
        return;
    }
    for (int64_t b = threadIdx.x; b < m.cols / 32; b += blockDim.x) {
        float v[32];
        rl_dequant32(m, r, b, v);
        for (int k = 0; k < 32; k++)
            o[b * 32 + k] = v[k];
    }
}

extern "C" int rl_cu_mat_get_rows(const rl_cu_mat *m, const int32_t *d_ids, int n, float *d_dst,
                                  cudaStream_t s)
{
    if (n <= 0 || n > 65535)
        return -EINVAL;
    static int vec = -1; /* RL_CU_ROWS_VEC=0: Q4_0/Q8_0 rows a 32-block a thread too (measurements) */
    bool v = rl_env_switch("RL_CU_ROWS_VEC", true, &vec) && (uintptr_t)d_dst % 16 == 0; /* float4 stores */
    rl_launch(k_get_rows, dim3(1, n), dim3(1024), s, *m, d_ids, n, d_dst, v);
    return RL_CU_LAUNCHED("get_rows");
}

RL_TL_TU(mat)
