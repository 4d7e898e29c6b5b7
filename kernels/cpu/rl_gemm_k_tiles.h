/* rl_gemm_k_tiles.h - the body of rl_gemm_k.c's tiles, included once per
 * instruction set: KVNNI 1 (AVX-512 VNNI on 256-bit registers) or 0 (AVX2),
 * KATTR the target attribute, KN(name) the name with the set's suffix,
 * KDPWSSD the int16-pair multiply-add into int32. Not a public header. */
KATTR static inline float KN(hsum256)(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

KATTR static inline float KN(ld_half)(const uint8_t *p)
{
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* Q4_K, 144 bytes: d, dmin (halves), 12 bytes of 6-bit scales and mins for
 * 8 sub-blocks of 32, 128 bytes of nibbles (per 64 weights: low nibbles the
 * first 32, high nibbles the next 32). Weight = d * sc_j * q - dmin * m_j.
 * Q5_K (bits 5), 176 bytes: the same with 32 bytes of fifth bits before the
 * nibbles: weight 32 j + l takes bit j of qh[l]. */
KATTR static inline void KN(unpack_kx)(const uint8_t *x, kblock *k, int bits)
{
    uint32_t A, B, C;
    memcpy(&A, x + 4, 4);
    memcpy(&B, x + 8, 4);
    memcpy(&C, x + 12, 4);
    uint32_t s0 = A & 0x3f3f3f3fu, s1 = (C & 0x0f0f0f0fu) | (((A >> 6) & 0x03030303u) << 4);
    uint32_t m0 = B & 0x3f3f3f3fu, m1 = ((C >> 4) & 0x0f0f0f0fu) | (((B >> 6) & 0x03030303u) << 4);
    __m256i sc16 = _mm256_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)s1, (int)s0)); /* words 0..7: sc_0..sc_7 */
    __m128i mv = _mm_set_epi32(0, 0, (int)m1, (int)m0);
    k->off = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mv, mv)); /* m_0 m_0 m_1 m_1 ... : one per 16 sums */
#if KVNNI
    UNROLL for (int j = 0; j < 8; j++)
        k->sc[j] = _mm256_permutexvar_epi16(_mm256_set1_epi16((short)j), sc16);
#else
    uint8_t scb[8];
    memcpy(scb, &s0, 4);
    memcpy(scb + 4, &s1, 4);
    UNROLL for (int j = 0; j < 8; j++)
        k->sc[j] = _mm256_set1_epi16((short)scb[j]);
    (void)sc16;
#endif
    const __m256i m4 = _mm256_set1_epi8(0x0f), b4 = _mm256_set1_epi8(0x10);
    const uint8_t *qs = x + (bits == 4 ? 16 : 48);
    __m256i qh = bits == 5 ? _mm256_loadu_si256((const __m256i *)(x + 16)) : _mm256_setzero_si256();
    UNROLL for (int c = 0; c < 4; c++) {
        __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
        k->w[2 * c] = _mm256_and_si256(q, m4);
        k->w[2 * c + 1] = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
        if (bits == 5) { /* bit 2c of qh to bit 4 of the low half, bit 2c + 1 of the high */
            k->w[2 * c] = _mm256_or_si256(k->w[2 * c], _mm256_and_si256(_mm256_slli_epi16(qh, 4), b4));
            k->w[2 * c + 1] = _mm256_or_si256(k->w[2 * c + 1], _mm256_and_si256(_mm256_slli_epi16(qh, 3), b4));
            qh = _mm256_srli_epi16(qh, 2);
        }
    }
    k->d = KN(ld_half)(x);
    k->doff = KN(ld_half)(x + 2);
}

KATTR static inline void KN(unpack_q4_k)(const uint8_t *x, kblock *k) { KN(unpack_kx)(x, k, 4); }
KATTR static inline void KN(unpack_q5_k)(const uint8_t *x, kblock *k) { KN(unpack_kx)(x, k, 5); }

/* Q6_K, 210 bytes: 128 bytes of low nibbles, 64 of 2-bit highs, 16 int8
 * scales (one per 16 weights), d (half). Per 128 weights: ql[0..63],
 * qh[0..31]; weight 32i + l of the half takes ql[l + 32 (i & 1)]'s low
 * (i < 2) or high nibble and bits 2i..2i+1 of qh[l]; value q - 32. */
KATTR static inline void KN(unpack_q6_k)(const uint8_t *x, kblock *k)
{
    __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(x + 192))); /* sc_0..sc_15 */
#if KVNNI
    UNROLL for (int i = 0; i < 8; i++) /* register i: sub-blocks 2i (low lane) and 2i + 1 (high lane) */
        k->sc[i] = _mm256_permutexvar_epi16(
            _mm256_set_epi16(2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1, 2 * i + 1,
                             2 * i, 2 * i, 2 * i, 2 * i, 2 * i, 2 * i, 2 * i, 2 * i),
            sc16);
#else
    const int8_t *scs = (const int8_t *)(x + 192);
    UNROLL for (int i = 0; i < 8; i++)
        k->sc[i] = _mm256_set_m128i(_mm_set1_epi16(scs[2 * i + 1]), _mm_set1_epi16(scs[2 * i]));
#endif
    k->off = sc16;
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(0x03);
    UNROLL for (int h = 0; h < 2; h++) {
        const uint8_t *ql = x + 64 * h, *qhp = x + 128 + 32 * h;
        __m256i l0 = _mm256_loadu_si256((const __m256i *)ql), l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
        __m256i qh = _mm256_loadu_si256((const __m256i *)qhp);
        __m256i h0 = _mm256_slli_epi16(_mm256_and_si256(qh, m2), 4);
        __m256i h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m2), 4);
        __m256i h2 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m2), 4);
        __m256i h3 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m2), 4);
        k->w[4 * h + 0] = _mm256_or_si256(_mm256_and_si256(l0, m4), h0);
        k->w[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(l1, m4), h1);
        k->w[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), h2);
        k->w[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4), h3);
    }
    k->d = KN(ld_half)(x + 208);
    k->doff = 32.0f * k->d;
}

/* One token against an unpacked super-block: acc += d da sum(sc q a) - doff da sum(off * sums16).
 * Four int32 chains (integer sums are exact in any order). */
KATTR static inline __m256 KN(kdot)(const kblock *k, const uint8_t *a, __m256 acc)
{
    const uint8_t *aq = a + 4;
    __m256i s[4];
    UNROLL for (int i = 0; i < 4; i++)
        s[i] = KDPWSSD(_mm256_setzero_si256(),
                       _mm256_maddubs_epi16(k->w[i], _mm256_loadu_si256((const __m256i *)(aq + 32 * i))), k->sc[i]);
    UNROLL for (int i = 4; i < 8; i++)
        s[i - 4] = KDPWSSD(s[i - 4], _mm256_maddubs_epi16(k->w[i], _mm256_loadu_si256((const __m256i *)(aq + 32 * i))),
                           k->sc[i]);
    __m256i isum = _mm256_add_epi32(_mm256_add_epi32(s[0], s[1]), _mm256_add_epi32(s[2], s[3]));
    __m256i osum = _mm256_madd_epi16(k->off, _mm256_loadu_si256((const __m256i *)(a + 4 + RL_QK_K)));
    float da;
    memcpy(&da, a, 4);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(k->d * da), acc);
    return _mm256_fnmadd_ps(_mm256_cvtepi32_ps(osum), _mm256_set1_ps(k->doff * da), acc);
}

#define KTILE(NAME, UNPACK, BYTES, NT)                                                                      \
    KATTR static void KN(NAME##_##NT)(int64_t nb, const uint8_t *W, size_t w_stride, int nr, const uint8_t *A, \
                                    size_t a_stride, float *y, size_t ldy)                                 \
    {                                                                                                      \
        for (int r = 0; r < nr; r++) {                                                                     \
            __m256 acc[NT];                                                                                \
            UNROLL for (int t = 0; t < NT; t++) acc[t] = _mm256_setzero_ps();                              \
            const uint8_t *x = W + r * w_stride;                                                           \
            for (int64_t b = 0; b < nb; b++, x += BYTES) {                                                 \
                /* the stream ahead: the hardware prefetcher alone leaves the loads waiting */             \
                UNROLL for (int o = 0; o < BYTES; o += 64)                                                 \
                    _mm_prefetch((const char *)(x + K_PF + o), _MM_HINT_T0);                               \
                kblock k;                                                                                  \
                KN(UNPACK)(x, &k);                                                                         \
                UNROLL for (int t = 0; t < NT; t++)                                                        \
                    acc[t] = KN(kdot)(&k, A + t * a_stride + (size_t)b * RL_Q8_K_BYTES, acc[t]);           \
            }                                                                                              \
            UNROLL for (int t = 0; t < NT; t++) y[t * ldy + r] = KN(hsum256)(acc[t]);                      \
        }                                                                                                  \
    }
/* 1..4 tokens per tile for each K-quant type */
#define KTILES(name, unpack, bytes)                                                                        \
    KTILE(name, unpack, bytes, 1)                                                                          \
    KTILE(name, unpack, bytes, 2)                                                                          \
    KTILE(name, unpack, bytes, 3)                                                                          \
    KTILE(name, unpack, bytes, 4)
KTILES(q4_k, unpack_q4_k, RL_Q4_K_BYTES)
KTILES(q5_k, unpack_q5_k, RL_Q5_K_BYTES)
KTILES(q6_k, unpack_q6_k, RL_Q6_K_BYTES)
#undef KTILES

#undef KTILE
