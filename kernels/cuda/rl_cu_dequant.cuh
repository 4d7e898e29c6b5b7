/* rl_cu_dequant.cuh - per-block dequantization on the device, by type.
 *
 * Layout facts (GGUF): Q4_0 = fp16 d + 16 bytes, value (nibble - 8) * d, low
 * nibbles are elements 0..15, high nibbles 16..31 (repacked here: quants and
 * scales in separate planes). Q8_0 = fp16 d + 32 int8 (repacked likewise).
 * Q4_K = 144-byte super-block of 256: fp16 d, fp16 dmin, 12 bytes of 6-bit
 * scales/mins for 8 sub-blocks, 128 bytes of nibbles (each 32-byte group holds
 * two sub-blocks: low nibbles first). Q5_K = 176 bytes: as Q4_K, but qh[32]
 * (bytes 16..47) before the 128 bytes of nibbles (48..175): element l of
 * sub-block j takes bit j of qh[l] as its fifth bit. Q6_K = 210 bytes: ql[128], qh[64],
 * int8 scales[16], fp16 d; value d * scale * (6-bit q - 32).
 *
 * On the device a Q6_K row is packed in groups of up to 8 blocks so that every
 * field stays 16-byte aligned without padding (210 bytes a block on average,
 * as in the file; 224-byte padded slots until session 21):
 *
 *   group g of a row (blocks 8g .. 8g+7):
 *   +----------------------+------------------+-----+------------------+
 *   | d[0..7] fp16 (16 B)  | block 8g  (208 B)| ... | block 8g+7 (208 B)|
 *   +----------------------+------------------+-----+------------------+
 *   block = ql[128] qh[64] scales[16] (the GGUF block without its d)
 *
 * A full group is 1,680 bytes; a row's last group may hold fewer blocks (its
 * d header is still 16 bytes). rl_q6k_* give the offsets.
 */
#ifndef RL_CU_DEQUANT_CUH
#define RL_CU_DEQUANT_CUH

#include "rl_cu_common.cuh"

#define RL_Q4K_BYTES 144
#define RL_Q5K_BYTES 176
#define RL_Q6K_BYTES 210 /* a GGUF block */
#define RL_Q6K_PACK 208  /* a block on the device: the GGUF block without its d */
#define RL_Q6K_GROUP (16 + 8 * RL_Q6K_PACK) /* 8 blocks and their d header: 1,680 bytes */

/* Device bytes of a Q6_K row of nbk blocks (a multiple of 16). */
__host__ __device__ constexpr int64_t rl_q6k_row_bytes(int64_t nbk)
{
    return nbk * RL_Q6K_PACK + (nbk + 7) / 8 * 16;
}

/* Offset of block k's values (ql) and of its fp16 d within a device row. */
__host__ __device__ constexpr int64_t rl_q6k_block_off(int64_t k)
{
    return k / 8 * RL_Q6K_GROUP + 16 + k % 8 * RL_Q6K_PACK;
}

__host__ __device__ constexpr int64_t rl_q6k_d_off(int64_t k)
{
    return k / 8 * RL_Q6K_GROUP + k % 8 * 2;
}

/* 6-bit scale and min of sub-block j (0..7) of a Q4_K (Q5_K) super-block,
 * from its 12 scale bytes as three little-endian words (bytes 0-3, 4-7,
 * 8-11), in registers (a byte array indexed by j lives in local memory). */
__device__ __forceinline__ void rl_q4k_scale_min_w(uint32_t w0, uint32_t w1, uint32_t w2, int j, int *s, int *m)
{
    /* j < 4: s, m = bits 0-5 of byte j of w0, w1; else the low 4 bits from
     * byte j - 4 of w2 (m: its high nibble) and the high 2 from bits 6-7 of
     * byte j - 4 of w0 (w1). One form with the words, shifts and masks chosen
     * by j (the same for every unit of a lane in rl_cu_mvb), no select
     * between two results. */
    const int sh = 8 * (j & 3);
    const bool hi = j & 4;
    const uint32_t ms = hi ? 0x0Fu : 0x3Fu, mh = hi ? 0x30u : 0u;
    const uint32_t ls = hi ? w2 : w0, lm = hi ? w2 >> 4 : w1;
    *s = (int)(((ls >> sh) & ms) | ((w0 >> (sh + 2)) & mh));
    *m = (int)(((lm >> sh) & ms) | ((w1 >> (sh + 2)) & mh));
}

/* The same from the scale bytes in memory (4-byte aligned: a block's byte 4). */
__device__ __forceinline__ void rl_q4k_scale_min(const uint8_t *sc, int j, int *s, int *m)
{
    const uint32_t *w = (const uint32_t *)sc;
    rl_q4k_scale_min_w(w[0], w[1], w[2], j, s, m);
}

/* Dequantize the 32-element sub-block `blk` (counted in 32s along the row) of
 * row `row` into out[32]. Only for the block types. */
__device__ __forceinline__ void rl_dequant32(const rl_cu_mat m, int64_t row, int64_t blk, float *out)
{
    int64_t nb = m.cols / 32;
    switch (m.type) {
    case RL_TYPE_Q4_0: {
        const uint8_t *q = (const uint8_t *)m.q + (row * nb + blk) * 16;
        float d = rl_h2f(((const uint16_t *)m.d)[row * nb + blk]);
        for (int i = 0; i < 16; i++) {
            out[i] = ((q[i] & 0xF) - 8) * d;
            out[i + 16] = ((q[i] >> 4) - 8) * d;
        }
        break;
    }
    case RL_TYPE_Q8_0: {
        const int8_t *q = (const int8_t *)m.q + (row * nb + blk) * 32;
        float d = rl_h2f(((const uint16_t *)m.d)[row * nb + blk]);
        for (int i = 0; i < 32; i++)
            out[i] = q[i] * d;
        break;
    }
    case RL_TYPE_Q4_K: {
        const uint8_t *b = (const uint8_t *)m.q + row * m.ld + blk / 8 * RL_Q4K_BYTES;
        int j = (int)(blk % 8), s, mn;
        float d = rl_h2f(((const uint16_t *)b)[0]), dmin = rl_h2f(((const uint16_t *)b)[1]);
        rl_q4k_scale_min(b + 4, j, &s, &mn);
        const uint8_t *q = b + 16 + (j / 2) * 32;
        float ds = d * s, dm = dmin * mn;
        int sh = (j & 1) * 4;
        for (int i = 0; i < 32; i++)
            out[i] = ds * ((q[i] >> sh) & 0xF) - dm;
        break;
    }
    case RL_TYPE_Q5_K: {
        const uint8_t *b = (const uint8_t *)m.q + row * m.ld + blk / 8 * RL_Q5K_BYTES;
        int j = (int)(blk % 8), s, mn;
        float d = rl_h2f(((const uint16_t *)b)[0]), dmin = rl_h2f(((const uint16_t *)b)[1]);
        rl_q4k_scale_min(b + 4, j, &s, &mn);
        const uint8_t *qh = b + 16, *q = b + 48 + (j / 2) * 32;
        float ds = d * s, dm = dmin * mn;
        int sh = (j & 1) * 4;
        for (int i = 0; i < 32; i++)
            out[i] = ds * (((q[i] >> sh) & 0xF) | (((qh[i] >> j) & 1) << 4)) - dm;
        break;
    }
    case RL_TYPE_Q6_K: {
        const uint8_t *r = (const uint8_t *)m.q + row * m.ld;
        const uint8_t *b = r + rl_q6k_block_off(blk / 8), *dp = r + rl_q6k_d_off(blk / 8);
        int j = (int)(blk % 8), n = j / 4, jj = j % 4;
        const uint8_t *ql = b + n * 64 + (jj & 1) * 32;
        const uint8_t *qh = b + 128 + n * 32;
        const int8_t *sc = (const int8_t *)(b + 192) + n * 8 + jj * 2;
        float d = rl_h2f(*(const uint16_t *)dp);
        int lsh = (jj >> 1) * 4, hsh = 2 * jj;
        for (int i = 0; i < 32; i++) {
            int v = ((ql[i] >> lsh) & 0xF) | (((qh[i] >> hsh) & 3) << 4);
            out[i] = d * sc[i / 16] * (v - 32);
        }
        break;
    }
    default:
        for (int i = 0; i < 32; i++)
            out[i] = 0.0f;
        break;
    }
}

/* Element `col` of row `row` for the plain float types. */
__device__ __forceinline__ float rl_float_elem(const rl_cu_mat m, int64_t row, int64_t col)
{
    int64_t i = row * m.cols + col;
    switch (m.type) {
    case RL_TYPE_F32: return ((const float *)m.q)[i];
    case RL_TYPE_F16: return rl_h2f(((const uint16_t *)m.q)[i]);
    case RL_TYPE_BF16: return __bfloat162float(__ushort_as_bfloat16(((const uint16_t *)m.q)[i]));
    default: return 0.0f;
    }
}

__device__ __forceinline__ bool rl_is_float_type(rl_type t)
{
    return t == RL_TYPE_F32 || t == RL_TYPE_F16 || t == RL_TYPE_BF16;
}

#endif
