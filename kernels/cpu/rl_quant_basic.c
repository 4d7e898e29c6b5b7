/* rl_quant_basic.c - row converters for F32, F16, BF16, Q8_0 and Q4_0
 * (layouts in rl_quant.h). Quantizers clamp through fminf/fmaxf so that
 * non-finite input can never reach an out-of-range float->int conversion. */
#include <math.h>

#include "rl_quant.h"

void rl_f32_to_float(const void *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }
void rl_f32_from_float(const float *src, void *dst, int64_t n) { memcpy(dst, src, (size_t)n * 4); }

void rl_f16_to_float(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) dst[i] = rl_ldh(p + 2 * i);
}

void rl_f16_from_float(const float *src, void *dst, int64_t n)
{
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = rl_fp32_to_fp16(src[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

void rl_bf16_to_float(const void *src, float *dst, int64_t n)
{
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) dst[i] = rl_bf16_to_fp32(rl_ld16(p + 2 * i));
}

void rl_bf16_from_float(const float *src, void *dst, int64_t n)
{
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = rl_fp32_to_bf16(src[i]);
        memcpy(p + 2 * i, &h, 2);
    }
}

void rl_q8_0_to_float(const void *src, float *dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += RL_Q8_0_BYTES) {
        float d = rl_ldh(b);
        const int8_t *q = (const int8_t *)(b + 2);
        for (int j = 0; j < 32; j++) dst[32 * i + j] = d * (float)q[j];
    }
}

void rl_q8_0_from_float(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 32; i++, b += RL_Q8_0_BYTES) {
        const float *x = src + 32 * i;
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[j]));
        uint16_t dh = rl_fp32_to_fp16(amax / 127.0f);
        memcpy(b, &dh, 2);
        float d = rl_fp16_to_fp32(dh), id = d != 0 ? 1.0f / d : 0.0f; /* quantize with the stored scale */
        int8_t *q = (int8_t *)(b + 2);
        for (int j = 0; j < 32; j++) q[j] = (int8_t)rl_qround(x[j] * id, -127, 127);
    }
}

void rl_q4_0_to_float(const void *src, float *dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += RL_Q4_0_BYTES) {
        float d = rl_ldh(b);
        for (int j = 0; j < 16; j++) {
            dst[32 * i + j] = d * (float)((b[2 + j] & 0xF) - 8);
            dst[32 * i + j + 16] = d * (float)((b[2 + j] >> 4) - 8);
        }
    }
}

void rl_q4_0_from_float(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 32; i++, b += RL_Q4_0_BYTES) {
        const float *x = src + 32 * i;
        /* The element of largest magnitude maps to -8, using the full signed range. */
        uint16_t dh = rl_fp32_to_fp16(rl_absmax_value(x, 32) / -8.0f);
        memcpy(b, &dh, 2);
        float d = rl_fp16_to_fp32(dh), id = d != 0 ? 1.0f / d : 0.0f;
        for (int j = 0; j < 16; j++) {
            int lo = rl_qround(x[j] * id + 8, 0, 15);
            int hi = rl_qround(x[j + 16] * id + 8, 0, 15);
            b[2 + j] = (uint8_t)(lo | (hi << 4));
        }
    }
}
