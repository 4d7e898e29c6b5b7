/* rl_quant_k.c - row converters for the 256-element K-quant super-blocks
 * Q4_K, Q5_K, Q6_K and the activation type Q8_K (layouts in rl_quant.h).
 *
 * Quantizing Q4_K/Q5_K: each 32-element sub-block gets x ~ s*q - m (q in
 * 0..nmax, m >= 0), fitted by alternating rounding and a least-squares refit;
 * the 8 scales and 8 mins are then quantized to 6 bits against the super-block
 * d and dmin, and the q are recomputed with those stored values. */
#include <math.h>

#include "rl_quant.h"

static void store_h(uint8_t *p, float v)
{
    uint16_t h = rl_fp32_to_fp16(v);
    memcpy(p, &h, 2);
}

/* Fit x[0..31] ~ s*q - m with q in 0..nmax, m >= 0. */
static void fit_scale_min(const float *x, int nmax, float *s_out, float *m_out)
{
    float mn = 0, mx = -INFINITY;
    for (int i = 0; i < 32; i++) {
        mn = fminf(mn, x[i]);
        mx = fmaxf(mx, x[i]);
    }
    float s = (mx - mn) / (float)nmax, m = -mn;
    if (!(s > 0) || !isfinite(s)) {
        *s_out = 0;
        *m_out = isfinite(m) ? m : 0;
        return;
    }
    float best_s = s, best_m = m, best_err = INFINITY;
    for (int it = 0; it < 4; it++) {
        float A = 0, B = 0, D = 0, E = 0, err = 0, inv = 1.0f / s;
        for (int i = 0; i < 32; i++) {
            float q = (float)rl_qround((x[i] + m) * inv, 0, (float)nmax);
            float e = s * q - m - x[i];
            err += e * e;
            A += q * q;
            B += q;
            D += q * x[i];
            E += x[i];
        }
        if (err < best_err) {
            best_err = err;
            best_s = s;
            best_m = m;
        }
        float det = A * 32 - B * B; /* exact: A, B are small integers */
        if (det <= 0) break;
        float ns = (32 * D - B * E) / det, nm = (B * ns - E) / 32;
        if (nm < 0) {
            nm = 0;
            ns = D / A;
        }
        if (!(ns > 0)) break;
        s = ns;
        m = nm;
    }
    *s_out = best_s;
    *m_out = best_m;
}

static void pack_scales(uint8_t *out, const uint8_t *sc, const uint8_t *m)
{
    for (int j = 0; j < 4; j++) {
        out[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
        out[j + 4] = (uint8_t)(m[j] | ((m[j + 4] >> 4) << 6));
        out[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
    }
}

/* Shared Q4_K/Q5_K super-block quantizer: writes d, dmin, scales and q[256] (0..nmax). */
static void quant_kx(const float *x, int nmax, uint8_t *b, uint8_t *q)
{
    float s[8], m[8], smax = 0, mmax = 0;
    for (int j = 0; j < 8; j++) {
        fit_scale_min(x + 32 * j, nmax, &s[j], &m[j]);
        smax = fmaxf(smax, s[j]);
        mmax = fmaxf(mmax, m[j]);
    }
    store_h(b, smax / 63.0f);
    store_h(b + 2, mmax / 63.0f);
    float d = rl_ldh(b), dmin = rl_ldh(b + 2);
    uint8_t sc[8], mq[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = (uint8_t)(d > 0 ? rl_qround(s[j] / d, 0, 63) : 0);
        mq[j] = (uint8_t)(dmin > 0 ? rl_qround(m[j] / dmin, 0, 63) : 0);
    }
    pack_scales(b + 4, sc, mq);
    for (int j = 0; j < 8; j++) {
        float ds = d * sc[j], dm = dmin * mq[j], id = ds > 0 ? 1.0f / ds : 0;
        for (int i = 0; i < 32; i++)
            q[32 * j + i] = (uint8_t)rl_qround((x[32 * j + i] + dm) * id, 0, (float)nmax);
    }
}

void rl_q4_k_from_float(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst, q[RL_QK_K];
    for (int64_t i = 0; i < n / RL_QK_K; i++, b += RL_Q4_K_BYTES) {
        quant_kx(src + RL_QK_K * i, 15, b, q);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) b[16 + 32 * c + l] = (uint8_t)(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
    }
}

void rl_q4_k_to_float(const void *src, float *dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / RL_QK_K; i++, b += RL_Q4_K_BYTES) {
        float d = rl_ldh(b), dmin = rl_ldh(b + 2);
        float *y = dst + RL_QK_K * i;
        for (int c = 0; c < 4; c++) {
            uint8_t s0, m0, s1, m1;
            rl_q4k_scale_min(b + 4, 2 * c, &s0, &m0);
            rl_q4k_scale_min(b + 4, 2 * c + 1, &s1, &m1);
            const uint8_t *qs = b + 16 + 32 * c;
            for (int l = 0; l < 32; l++) {
                y[64 * c + l] = d * s0 * (qs[l] & 0xF) - dmin * m0;
                y[64 * c + 32 + l] = d * s1 * (qs[l] >> 4) - dmin * m1;
            }
        }
    }
}

void rl_q5_k_from_float(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst, q[RL_QK_K];
    for (int64_t i = 0; i < n / RL_QK_K; i++, b += RL_Q5_K_BYTES) {
        quant_kx(src + RL_QK_K * i, 31, b, q);
        uint8_t *qh = b + 16, *qs = b + 48;
        memset(qh, 0, 32);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                int lo = q[64 * c + l], hi = q[64 * c + 32 + l];
                qs[32 * c + l] = (uint8_t)((lo & 0xF) | ((hi & 0xF) << 4));
                qh[l] |= (uint8_t)(((lo >> 4) << (2 * c)) | ((hi >> 4) << (2 * c + 1)));
            }
    }
}

void rl_q5_k_to_float(const void *src, float *dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / RL_QK_K; i++, b += RL_Q5_K_BYTES) {
        float d = rl_ldh(b), dmin = rl_ldh(b + 2);
        const uint8_t *qh = b + 16;
        float *y = dst + RL_QK_K * i;
        for (int c = 0; c < 4; c++) {
            uint8_t s0, m0, s1, m1;
            rl_q4k_scale_min(b + 4, 2 * c, &s0, &m0);
            rl_q4k_scale_min(b + 4, 2 * c + 1, &s1, &m1);
            const uint8_t *qs = b + 48 + 32 * c;
            for (int l = 0; l < 32; l++) {
                int lo = (qs[l] & 0xF) | (((qh[l] >> (2 * c)) & 1) << 4);
                int hi = (qs[l] >> 4) | (((qh[l] >> (2 * c + 1)) & 1) << 4);
                y[64 * c + l] = d * s0 * lo - dmin * m0;
                y[64 * c + 32 + l] = d * s1 * hi - dmin * m1;
            }
        }
    }
}

void rl_q6_k_from_float(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst, q[RL_QK_K];
    for (int64_t i = 0; i < n / RL_QK_K; i++, b += RL_Q6_K_BYTES) {
        const float *x = src + RL_QK_K * i;
        float s[16], smax = 0;
        for (int g = 0; g < 16; g++) {
            s[g] = rl_absmax_value(x + 16 * g, 16) / -32.0f; /* the largest magnitude maps to -32 */
            smax = fmaxf(smax, fabsf(s[g]));
        }
        store_h(b + 208, smax / 127.0f);
        float d = rl_ldh(b + 208);
        int8_t *sc = (int8_t *)(b + 192);
        for (int g = 0; g < 16; g++) {
            sc[g] = (int8_t)(d > 0 ? rl_qround(s[g] / d, -127, 127) : 0);
            float ds = d * sc[g], id = ds != 0 ? 1.0f / ds : 0;
            for (int k = 0; k < 16; k++) q[16 * g + k] = (uint8_t)(rl_qround(x[16 * g + k] * id, -32, 31) + 32);
        }
        for (int h = 0; h < 2; h++) {
            uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
            const uint8_t *Q = q + 128 * h;
            for (int l = 0; l < 32; l++) {
                int q1 = Q[l], q2 = Q[32 + l], q3 = Q[64 + l], q4 = Q[96 + l];
                ql[l] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
                ql[32 + l] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
                qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
    }
}

void rl_q6_k_to_float(const void *src, float *dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / RL_QK_K; i++, b += RL_Q6_K_BYTES) {
        float d = rl_ldh(b + 208);
        const int8_t *sc = (const int8_t *)(b + 192);
        float *y = dst + RL_QK_K * i;
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
            float *Y = y + 128 * h;
            const int8_t *S = sc + 8 * h;
            for (int l = 0; l < 32; l++) {
                int q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32;
                int q2 = ((ql[32 + l] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[32 + l] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                Y[l] = d * S[l / 16] * q1;
                Y[32 + l] = d * S[2 + l / 16] * q2;
                Y[64 + l] = d * S[4 + l / 16] * q3;
                Y[96 + l] = d * S[6 + l / 16] * q4;
            }
        }
    }
}

void rl_q8_k_from_float(const float *src, void *dst, int64_t n)
{
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / RL_QK_K; i++, b += RL_Q8_K_BYTES) {
        const float *x = src + RL_QK_K * i;
        float amax = 0;
        for (int k = 0; k < RL_QK_K; k++) amax = fmaxf(amax, fabsf(x[k]));
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0; /* symmetric: q in -127..127 */
        memcpy(b, &d, 4);
        int8_t *q = (int8_t *)(b + 4);
        for (int g = 0; g < 16; g++) {
            int16_t sum = 0;
            for (int k = 0; k < 16; k++) {
                q[16 * g + k] = (int8_t)rl_qround(x[16 * g + k] * id, -127, 127);
                sum = (int16_t)(sum + q[16 * g + k]);
            }
            memcpy(b + 260 + 2 * g, &sum, 2);
        }
    }
}

void rl_q8_k_to_float(const void *src, float *dst, int64_t n)
{
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / RL_QK_K; i++, b += RL_Q8_K_BYTES) {
        float d = rl_ldf(b);
        const int8_t *q = (const int8_t *)(b + 4);
        for (int k = 0; k < RL_QK_K; k++) dst[RL_QK_K * i + k] = d * q[k];
    }
}
