/* rl_quant_legacy.c - the older 32-weight block types Q4_1, Q5_0 and Q5_1:
 * row converters and scalar vec_dot references against Q8_0 activations.
 *
 * They matter because the K-quant mixes fall back to them: a Q4_K_M file of a
 * model whose rows are not a multiple of 256 (SmolLM's 576, Qwen2-0.5B's 896)
 * stores those matrices as Q5_0 (Q4_K's stand-in), Q5_1 (Q5_K's) and Q8_0.
 *
 *   Q4_1 20 B: f16 d | f16 m | u8 qs[16]                x = d*q + m, q 4-bit
 *   Q5_0 22 B: f16 d | u8 qh[4] | u8 qs[16]             x = d*(q - 16), q 5-bit
 *   Q5_1 24 B: f16 d | f16 m | u8 qh[4] | u8 qs[16]     x = d*q + m, q 5-bit
 * qs[j]: low nibble = element j, high nibble = element j + 16 (j < 16); the
 * fifth bit of element e is bit e of qh (a little-endian uint32). */
#include <math.h>

#include "rl_quant.h"

/* The 32 unsigned quants of a block (4 or 5 bits). */
static void unpack32(const uint8_t *qs, const uint8_t *qh, uint8_t q[32])
{
    uint32_t h = 0;
    if (qh)
        memcpy(&h, qh, 4);
    for (int j = 0; j < 16; j++) {
        q[j] = (uint8_t)((qs[j] & 0xF) | (((h >> j) & 1) << 4));
        q[j + 16] = (uint8_t)((qs[j] >> 4) | (((h >> (j + 16)) & 1) << 4));
    }
}

static void pack32(const uint8_t q[32], uint8_t *qs, uint8_t *qh)
{
    uint32_t h = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4));
        h |= (uint32_t)((q[j] >> 4) & 1) << j;
        h |= (uint32_t)((q[j + 16] >> 4) & 1) << (j + 16);
    }
    if (qh)
        memcpy(qh, &h, 4);
}

/* Offsets of the parts in a block of each type. */
typedef struct legacy {
    size_t bytes, qh, qs; /* qh 0: none */
    bool has_min;
    int levels; /* 16 or 32 */
} legacy;

static const legacy L41 = {RL_Q4_1_BYTES, 0, 4, true, 16};
static const legacy L50 = {RL_Q5_0_BYTES, 2, 6, false, 32};
static const legacy L51 = {RL_Q5_1_BYTES, 4, 8, true, 32};

static void to_float(const legacy *t, const void *src, float *dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += t->bytes) {
        uint8_t q[32];
        unpack32(b + t->qs, t->qh ? b + t->qh : NULL, q);
        float d = rl_ldh(b), m = t->has_min ? rl_ldh(b + 2) : 0.f;
        for (int j = 0; j < 32; j++)
            dst[32 * i + j] = t->has_min ? d * (float)q[j] + m : d * (float)(q[j] - 16);
    }
}

static void from_float(const legacy *t, const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 32; i++, b += t->bytes) {
        const float *x = src + 32 * i;
        uint8_t q[32];
        if (t->has_min) { /* the range [min, max] onto 0..levels-1 */
            float lo = x[0], hi = x[0];
            for (int j = 1; j < 32; j++) {
                lo = fminf(lo, x[j]);
                hi = fmaxf(hi, x[j]);
            }
            uint16_t dh = rl_fp32_to_fp16((hi - lo) / (float)(t->levels - 1)), mh = rl_fp32_to_fp16(lo);
            memcpy(b, &dh, 2);
            memcpy(b + 2, &mh, 2);
            float d = rl_fp16_to_fp32(dh), m = rl_fp16_to_fp32(mh), id = d != 0 ? 1.0f / d : 0.0f;
            for (int j = 0; j < 32; j++)
                q[j] = (uint8_t)rl_qround((x[j] - m) * id, 0, t->levels - 1);
        } else { /* Q5_0: the element of largest magnitude maps to -16 */
            uint16_t dh = rl_fp32_to_fp16(rl_absmax_value(x, 32) / -16.0f);
            memcpy(b, &dh, 2);
            float d = rl_fp16_to_fp32(dh), id = d != 0 ? 1.0f / d : 0.0f;
            for (int j = 0; j < 32; j++)
                q[j] = (uint8_t)rl_qround(x[j] * id + 16, 0, 31);
        }
        pack32(q, b + t->qs, t->qh ? b + t->qh : NULL);
    }
}

/* Against Q8_0: d*dy*sum(q*y) (+ m*dy*sum(y), or - 16*d*dy*sum(y) for Q5_0). */
static float vd_ref(const legacy *t, int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++, x += t->bytes, y += RL_Q8_0_BYTES) {
        uint8_t q[32];
        unpack32(x + t->qs, t->qh ? x + t->qh : NULL, q);
        int sqy = 0, sy = 0;
        for (int j = 0; j < 32; j++) {
            sqy += q[j] * (int8_t)y[2 + j];
            sy += (int8_t)y[2 + j];
        }
        float d = rl_ldh(x), dy = rl_ldh(y);
        if (t->has_min)
            s += d * dy * (float)sqy + rl_ldh(x + 2) * dy * (float)sy;
        else
            s += d * dy * (float)(sqy - 16 * sy);
    }
    return s;
}

void rl_q4_1_to_float(const void *src, float *dst, int64_t n) { to_float(&L41, src, dst, n); }
void rl_q4_1_from_float(const float *src, void *dst, int64_t n) { from_float(&L41, src, dst, n); }
float rl_vd_q4_1_ref(int64_t n, const void *w, const void *a) { return vd_ref(&L41, n, w, a); }
void rl_q5_0_to_float(const void *src, float *dst, int64_t n) { to_float(&L50, src, dst, n); }
void rl_q5_0_from_float(const float *src, void *dst, int64_t n) { from_float(&L50, src, dst, n); }
float rl_vd_q5_0_ref(int64_t n, const void *w, const void *a) { return vd_ref(&L50, n, w, a); }
void rl_q5_1_to_float(const void *src, float *dst, int64_t n) { to_float(&L51, src, dst, n); }
void rl_q5_1_from_float(const float *src, void *dst, int64_t n) { from_float(&L51, src, dst, n); }
float rl_vd_q5_1_ref(int64_t n, const void *w, const void *a) { return vd_ref(&L51, n, w, a); }
