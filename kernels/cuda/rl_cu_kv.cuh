/* rl_cu_kv.cuh - how the RoPE+KV-write and attention kernels find a KV row:
 * two addressing policies with one interface, so each kernel is written once.
 *   rl_kv_slots: the contiguous cache, [slot][n_ctx][n_head_kv * head_dim] per layer
 *                (kernel tests, rl_cu_rope_kv / rl_cu_attn_decode), fp16;
 *   rl_kv_paged<E>: the block pool of rl_cuda.h (rl_cu_kv), through block
 *                tables, fp16 (E = rl_kv_f16) or int8 with scales (rl_kv_q8).
 * ok(b, p): query/token row b may use position p (its slot or block-table row
 * exists and p is inside it). k()/v(): the row (E::row) of kv head h at
 * position t; reads through an out-of-range block id land in block 0 (memory
 * stays in bounds; the host never hands such ids out), writes go through
 * wk()/wv(), whose rows are null (E::nil) for them.
 *
 * Elements: a kernel reads 8 consecutive values of a row at a time (column c
 * a multiple of 8) as E::v8 (ld8) and turns them into floats (f8) or fp16
 * (h8); ld1 reads one value. */
#ifndef RL_CU_KV_CUH
#define RL_CU_KV_CUH

#include "rl_cu_common.cuh"

/* RoPE, one element pair k (its dims by the rope's pairing: 2k, 2k + 1, or
 * k, k + n_rot / 2 for NeoX) at position p: the angle's sine and cosine
 * (rl_rope_sincos), then the rotation (rl_rope_rot, explicit roundings), so
 * every kernel that rotates (k_rope_kv, rl_cu_mvb's fused store) gives the
 * same bits.
 * The angle x = p * f (a float, as the CPU computes it) in half turns,
 * x / pi, is reduced into [-1, 1] in double precision (exact but for the
 * one product's rounding) and handed to sincospif: no argument reduction
 * with a table in local memory, which sincosf keeps for |x| > 105,615 and
 * which gives every kernel calling it a 32-byte stack frame (session 26:
 * timing unchanged either way, docs/PERFORMANCE.md). */
__device__ __forceinline__ void rl_rope_sincos(const rl_cu_rope &r, int k, int p, float &sn, float &cs)
{
    float f = r.inv_freq ? r.inv_freq[k] : powf(r.freq_base, -2.0f * (float)k / (float)r.n_rot);
    double t = (double)((float)p * f) * 0.31830988618379067154; /* 1 / pi */
    t -= 2.0 * rint(0.5 * t);
    sincospif((float)t, &sn, &cs);
}

__device__ __forceinline__ void rl_rope_rot(float a, float c, float cs, float sn, float &v0, float &v1)
{
    v0 = __fsub_rn(__fmul_rn(a, cs), __fmul_rn(c, sn));
    v1 = __fadd_rn(__fmul_rn(a, sn), __fmul_rn(c, cs));
}

/* fp16 rows. */
struct rl_kv_f16 {
    typedef const __half *row;
    typedef __half *wrow;
    typedef uint4 v8;
    static constexpr bool Q8 = false;
    __device__ static __forceinline__ bool nil(row r) { return r == nullptr; }
    __device__ static __forceinline__ v8 ld8(row r, int c) { return *(const uint4 *)(r + c); }
    __device__ static __forceinline__ float ld1(row r, int c) { return __half2float(r[c]); }
    __device__ static __forceinline__ void f8(const v8 &v, float (&f)[8])
    {
        const __half2 *h2 = (const __half2 *)&v;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            float2 x = __half22float2(h2[k]);
            f[2 * k] = x.x, f[2 * k + 1] = x.y;
        }
    }
    __device__ static __forceinline__ uint4 h8(const v8 &v) { return v; }
    __device__ static __forceinline__ v8 zero() { return make_uint4(0, 0, 0, 0); }
    __device__ static __forceinline__ row ro(wrow w) { return w; } /* a written row, read */
    /* The row `stride` rows of hd values after r in a run of rows (below). */
    __device__ static __forceinline__ row skip(row r, int64_t stride, int hd) { return r + stride * hd; }
};

/* The 4 signed bytes of w as exact floats without the slow integer-to-float
 * conversion: byte + 128 becomes the low mantissa bits of 2^23 (one byte
 * permute each), and 2^23 + 128 is subtracted. */
__device__ __forceinline__ void rl_s8x4_f(uint32_t w, float (&f)[4])
{
    uint32_t u = w ^ 0x80808080u;
#pragma unroll
    for (int k = 0; k < 4; k++)
        f[k] = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7540u + k)) - 8388736.0f;
}

/* int8 rows, one fp16 scale per 32 values (rl_cuda.h, rl_cu_kv). */
struct rl_kv_q8_row {
    const int8_t *q;
    const __half *d;
};
struct rl_kv_q8_wrow {
    int8_t *q;
    __half *d;
};
struct rl_kv_q8_v8 {
    uint2 q;
    float d;
};
struct rl_kv_q8 {
    typedef rl_kv_q8_row row;
    typedef rl_kv_q8_wrow wrow;
    typedef rl_kv_q8_v8 v8;
    static constexpr bool Q8 = true;
    __device__ static __forceinline__ bool nil(row r) { return r.q == nullptr; }
    __device__ static __forceinline__ bool nil(wrow r) { return r.q == nullptr; }
    __device__ static __forceinline__ row ro(wrow w) { return row{w.q, w.d}; } /* a written row, read */
    __device__ static __forceinline__ row skip(row r, int64_t stride, int hd)
    {
        return row{r.q + stride * hd, r.d + stride * (hd / 32)};
    }
    __device__ static __forceinline__ v8 ld8(row r, int c)
    {
        v8 v;
        v.q = *(const uint2 *)(r.q + c);
        v.d = __half2float(r.d[c / 32]);
        return v;
    }
    __device__ static __forceinline__ float ld1(row r, int c) { return (float)r.q[c] * __half2float(r.d[c / 32]); }
    __device__ static __forceinline__ void f8(const v8 &v, float (&f)[8])
    {
        float a[4], b[4];
        rl_s8x4_f(v.q.x, a);
        rl_s8x4_f(v.q.y, b);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            f[k] = a[k] * v.d;
            f[4 + k] = b[k] * v.d;
        }
    }
    __device__ static __forceinline__ uint4 h8(const v8 &v)
    {
        float f[8];
        f8(v, f);
        uint4 u;
        uint32_t *w = (uint32_t *)&u;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            __half2 h = __floats2half2_rn(f[2 * k], f[2 * k + 1]);
            w[k] = *(uint32_t *)&h;
        }
        return u;
    }
    /* d * sum_i q[i] * x[c + i] over one 32-value group (c % 32 == 0): two
     * 16-byte loads and one scale, the scale applied once. */
    __device__ static __forceinline__ float dot32(row r, int c, const float *q)
    {
        uint4 u[2] = {*(const uint4 *)(r.q + c), *(const uint4 *)(r.q + c + 16)};
        float d = __half2float(r.d[c / 32]), s0 = 0.0f, s1 = 0.0f;
        const uint32_t *w = (const uint32_t *)u;
#pragma unroll
        for (int k = 0; k < 8; k++) {
            float f[4];
            rl_s8x4_f(w[k], f);
#pragma unroll
            for (int e = 0; e < 4; e += 2) {
                s0 += q[4 * k + e] * f[e];
                s1 += q[4 * k + e + 1] * f[e + 1];
            }
        }
        return d * (s0 + s1);
    }
    __device__ static __forceinline__ v8 zero()
    {
        v8 v;
        v.q = make_uint2(0, 0);
        v.d = 0.0f;
        return v;
    }
    /* Bytes of one (block, layer, K or V, head) unit of RL_CU_KV_BLOCK rows. */
    __host__ __device__ static __forceinline__ int64_t unit_bytes(int hd)
    {
        return (int64_t)RL_CU_KV_BLOCK * hd * 17 / 16;
    }
};

/* Quantize the rows of a head (hd values, in shared memory) into w: the
 * calling threads (all of the block's, each with its own index `i` < n_thr)
 * take values 2i, 2i + 1; the 16 threads of a 32-value group sit in one
 * half-warp (n_thr a multiple of 16). */
__device__ __forceinline__ void rl_kv_q8_store(const float *vals, int hd, int i, rl_kv_q8_wrow w)
{
    bool in = 2 * i < hd;
    float a = in ? vals[2 * i] : 0.0f, b = in ? vals[2 * i + 1] : 0.0f;
    float m = fmaxf(fabsf(a), fabsf(b));
#pragma unroll
    for (int o = 8; o >= 1; o >>= 1)
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
    float d = m / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
    if (!in || !w.q)
        return;
    int qa = max(-127, min(127, __float2int_rn(a * id))), qb = max(-127, min(127, __float2int_rn(b * id)));
    *(uint16_t *)(w.q + 2 * i) = (uint16_t)((qa & 0xff) | ((qb & 0xff) << 8));
    if ((2 * i) % 32 == 0)
        w.d[2 * i / 32] = __float2half(d);
}

struct rl_kv_slots : rl_kv_f16 {
    __half *kc, *vc;
    const int32_t *slot;
    int64_t n_ctx;
    int kvdim, hd;
    __device__ __forceinline__ bool ok(int b, int64_t p) const { return p >= 0 && p < n_ctx && slot[b] >= 0; }
    __device__ __forceinline__ int64_t off(int b, int h, int64_t t) const
    {
        return ((int64_t)slot[b] * n_ctx + t) * kvdim + (int64_t)h * hd;
    }
    __device__ __forceinline__ row k(int b, int h, int64_t t) const { return kc + off(b, h, t); }
    __device__ __forceinline__ row v(int b, int h, int64_t t) const { return vc + off(b, h, t); }
    __device__ __forceinline__ wrow wk(int b, int h, int64_t t) const { return kc + off(b, h, t); }
    __device__ __forceinline__ wrow wv(int b, int h, int64_t t) const { return vc + off(b, h, t); }
    /* Runs: the K and V rows of positions t0, t0 + 1, ... t0 + RL_CU_KV_BLOCK
     * - 1 (t0 a multiple of RL_CU_KV_BLOCK, all below the query's length) are
     * run_row(k0, j), run_row(v0, j): one address computation per run. */
    __device__ __forceinline__ void runs(int b, int h, int64_t t0, row &k0, row &v0) const
    {
        k0 = k(b, h, t0);
        v0 = v(b, h, t0);
    }
    __device__ __forceinline__ row run_row(row r0, int j) const { return skip(r0, (int64_t)j * (kvdim / hd), hd); }
};

static inline rl_kv_slots rl_kv_slots_make(void *kc, void *vc, const int32_t *slot, int64_t n_ctx, int kvdim, int hd)
{
    rl_kv_slots a;
    a.kc = (__half *)kc;
    a.vc = (__half *)vc;
    a.slot = slot;
    a.n_ctx = n_ctx;
    a.kvdim = kvdim;
    a.hd = hd;
    return a;
}

template <class E> struct rl_kv_paged : E {
    typedef typename E::row row;
    typedef typename E::wrow wrow;
    unsigned char *pool;
    const int32_t *bt;  /* [rows][stride] */
    const int32_t *row_of; /* per token / query: its block-table row, < 0: none */
    uint32_t stride, n_blocks, n_layer, n_head_kv, layer;
    int hd;
    __device__ __forceinline__ bool ok(int b, int64_t p) const
    {
        return row_of[b] >= 0 && p >= 0 && p < (int64_t)stride * RL_CU_KV_BLOCK;
    }
    __device__ __forceinline__ int64_t block(int b, int64_t t) const
    {
        return bt[(int64_t)row_of[b] * stride + t / RL_CU_KV_BLOCK];
    }
    /* Row `which` (0 K, 1 V) of head h at position t of block blk (also the
     * prefill kernels' addressing, rl_cu_attn_prefill.cu). */
    __device__ __forceinline__ wrow at(int64_t blk, int which, int h, int64_t t) const
    {
        int64_t unit = ((blk * n_layer + layer) * 2 + which) * n_head_kv + h;
        int s = (int)(t % RL_CU_KV_BLOCK);
        if constexpr (E::Q8) {
            unsigned char *u = pool + unit * rl_kv_q8::unit_bytes(hd);
            return wrow{(int8_t *)(u + (int64_t)s * hd), (__half *)(u + (int64_t)RL_CU_KV_BLOCK * hd) + s * (hd / 32)};
        } else {
            return (__half *)pool + (unit * RL_CU_KV_BLOCK + s) * (int64_t)hd;
        }
    }
    __device__ __forceinline__ row rd(int b, int which, int h, int64_t t) const
    {
        int64_t blk = block(b, t);
        return E::ro(at(blk >= 0 && blk < n_blocks ? blk : 0, which, h, t));
    }
    __device__ __forceinline__ wrow wr(int b, int which, int h, int64_t t) const
    {
        int64_t blk = block(b, t);
        if (blk >= 0 && blk < n_blocks)
            return at(blk, which, h, t);
        wrow none{};
        return none;
    }
    __device__ __forceinline__ row k(int b, int h, int64_t t) const { return rd(b, 0, h, t); }
    __device__ __forceinline__ row v(int b, int h, int64_t t) const { return rd(b, 1, h, t); }
    __device__ __forceinline__ wrow wk(int b, int h, int64_t t) const { return wr(b, 0, h, t); }
    __device__ __forceinline__ wrow wv(int b, int h, int64_t t) const { return wr(b, 1, h, t); }
    /* Runs (as rl_kv_slots::runs): the rows of one block, one table lookup. */
    __device__ __forceinline__ void runs(int b, int h, int64_t t0, row &k0, row &v0) const
    {
        int64_t blk = block(b, t0);
        blk = blk >= 0 && blk < n_blocks ? blk : 0;
        k0 = E::ro(at(blk, 0, h, t0));
        v0 = E::ro(at(blk, 1, h, t0));
    }
    __device__ __forceinline__ row run_row(row r0, int j) const { return E::skip(r0, j, hd); }
};

template <class E>
static inline rl_kv_paged<E> rl_kv_paged_make(const rl_cu_kv *kv, const int32_t *d_row, uint32_t layer)
{
    rl_kv_paged<E> a;
    a.pool = (unsigned char *)kv->pool;
    a.bt = kv->bt;
    a.row_of = d_row;
    a.stride = kv->bt_stride;
    a.n_blocks = kv->n_blocks;
    a.n_layer = kv->n_layer;
    a.n_head_kv = kv->n_head_kv;
    a.layer = layer;
    a.hd = (int)kv->head_dim;
    return a;
}

/* Whether RoPE can run with r: even head size and rotated dims, whole
 * groups of q heads per KV head (the RoPE kernel and rl_cu_mvb's fused
 * store). */
static inline bool rl_rope_valid(const rl_cu_rope *r)
{
    return r->head_dim > 0 && r->head_dim % 2 == 0 && r->n_rot > 0 && r->n_rot <= r->head_dim && r->n_rot % 2 == 0 &&
           r->n_head_kv > 0 && r->n_head % r->n_head_kv == 0;
}

static inline bool rl_kv_paged_valid(const rl_cu_kv *kv, const rl_cu_rope *r, uint32_t layer)
{
    return kv && kv->pool && kv->bt && kv->bt_stride > 0 && kv->n_blocks > 0 && layer < kv->n_layer &&
           kv->n_head_kv == (uint32_t)r->n_head_kv && kv->head_dim == (uint32_t)r->head_dim &&
           (!kv->q8 || kv->head_dim % 32 == 0);
}

#endif
