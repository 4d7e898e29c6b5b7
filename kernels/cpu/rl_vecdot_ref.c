/* rl_vecdot_ref.c - plain scalar vec_dot references, one per weight type,
 * written straight from the block layouts in rl_quant.h. The SIMD kernels are
 * tested against these. */
#include "rl_quant.h"

float rl_vd_f32_ref(int64_t n, const void *w, const void *a)
{
    const float *x = w, *y = a;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * y[i];
    return (float)s;
}

float rl_vd_f16_ref(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w;
    const float *y = a;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)rl_ldh(x + 2 * i) * y[i];
    return (float)s;
}

float rl_vd_bf16_ref(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w;
    const float *y = a;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)rl_bf16_to_fp32(rl_ld16(x + 2 * i)) * y[i];
    return (float)s;
}

float rl_vd_q8_0_ref(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++, x += RL_Q8_0_BYTES, y += RL_Q8_0_BYTES) {
        int sum = 0;
        for (int j = 0; j < 32; j++) sum += (int8_t)x[2 + j] * (int8_t)y[2 + j];
        s += rl_ldh(x) * rl_ldh(y) * (float)sum;
    }
    return s;
}

float rl_vd_q4_0_ref(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++, x += RL_Q4_0_BYTES, y += RL_Q8_0_BYTES) {
        int sum = 0;
        for (int j = 0; j < 16; j++)
            sum += ((x[2 + j] & 0xF) - 8) * (int8_t)y[2 + j] + ((x[2 + j] >> 4) - 8) * (int8_t)y[2 + 16 + j];
        s += rl_ldh(x) * rl_ldh(y) * (float)sum;
    }
    return s;
}

/* Q4_K/Q5_K: sum_j d*sc_j*dot(q, y_j) - dmin*m_j*sum(y_j), all times the Q8_K d. */
static float dot_kx(int64_t n, const uint8_t *x, const uint8_t *y, int bits)
{
    float s = 0;
    size_t bsz = bits == 4 ? RL_Q4_K_BYTES : RL_Q5_K_BYTES;
    for (int64_t i = 0; i < n / RL_QK_K; i++, x += bsz, y += RL_Q8_K_BYTES) {
        const uint8_t *qs = x + (bits == 4 ? 16 : 48), *qh = x + 16;
        const int8_t *q8 = (const int8_t *)(y + 4);
        int sumi = 0, summ = 0;
        for (int c = 0; c < 4; c++) {
            uint8_t s0, m0, s1, m1;
            rl_q4k_scale_min(x + 4, 2 * c, &s0, &m0);
            rl_q4k_scale_min(x + 4, 2 * c + 1, &s1, &m1);
            int d0 = 0, d1 = 0;
            for (int l = 0; l < 32; l++) {
                int lo = qs[32 * c + l] & 0xF, hi = qs[32 * c + l] >> 4;
                if (bits == 5) {
                    lo |= ((qh[l] >> (2 * c)) & 1) << 4;
                    hi |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
                }
                d0 += lo * q8[64 * c + l];
                d1 += hi * q8[64 * c + 32 + l];
            }
            sumi += s0 * d0 + s1 * d1;
            summ += m0 * (rl_ldi16(y + 260 + 2 * (4 * c)) + rl_ldi16(y + 260 + 2 * (4 * c + 1))) +
                    m1 * (rl_ldi16(y + 260 + 2 * (4 * c + 2)) + rl_ldi16(y + 260 + 2 * (4 * c + 3)));
        }
        float dy = rl_ldf(y);
        s += dy * (rl_ldh(x) * (float)sumi - rl_ldh(x + 2) * (float)summ);
    }
    return s;
}

float rl_vd_q4_k_ref(int64_t n, const void *w, const void *a) { return dot_kx(n, w, a, 4); }
float rl_vd_q5_k_ref(int64_t n, const void *w, const void *a) { return dot_kx(n, w, a, 5); }

float rl_vd_q6_k_ref(int64_t n, const void *w, const void *a)
{
    const uint8_t *x = w, *y = a;
    float s = 0;
    for (int64_t i = 0; i < n / RL_QK_K; i++, x += RL_Q6_K_BYTES, y += RL_Q8_K_BYTES) {
        const int8_t *sc = (const int8_t *)(x + 192), *q8 = (const int8_t *)(y + 4);
        int sumi = 0;
        for (int h = 0; h < 2; h++) {
            const uint8_t *ql = x + 64 * h, *qh = x + 128 + 32 * h;
            const int8_t *Y = q8 + 128 * h, *S = sc + 8 * h;
            for (int l = 0; l < 32; l++) {
                int q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32;
                int q2 = ((ql[32 + l] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[32 + l] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                sumi += S[l / 16] * q1 * Y[l] + S[2 + l / 16] * q2 * Y[32 + l] + S[4 + l / 16] * q3 * Y[64 + l] +
                        S[6 + l / 16] * q4 * Y[96 + l];
            }
        }
        s += rl_ldf(y) * rl_ldh(x + 208) * (float)sumi;
    }
    return s;
}
