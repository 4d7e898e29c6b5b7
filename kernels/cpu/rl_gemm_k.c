/* rl_gemm_k.c - int8 micro-kernels for the K-quants Q4_K, Q5_K and Q6_K against
 * Q8_K activations (their vec_dot_type): up to 4 weight rows x 4 tokens,
 * AVX-512 VNNI on 256-bit registers (as rl_gemm_q.c).
 *
 * Rows go one after another (a single stream for the hardware prefetcher);
 * per 256-weight super-block of a row the weights are unpacked once into
 * eight registers of 32 unsigned bytes, the sub-block scales into 16-bit
 * words, and both serve every token of the tile. Per token and register:
 *   vpmaddubsw  weight (u8) x activation (s8), pairs summed to int16; no
 *               saturation: 2 x 63 x 128 < 32768;
 *   vpdpwssd    times the register's sub-block scales (16-bit words), added
 *               into int32 lanes (exact: at most 8 x 4.2M per lane).
 * The offsets come from Q8_K's sums of 16 activations: Q4_K's mins
 * (dmin * m_j * sum a) and Q6_K's -32 (32 * sc_j * sum a). Per super-block
 * two float FMAs per output. Every (row, token) output goes through the same
 * instructions whatever the tile shape, so results do not depend on
 * batching; they differ from the traits' vec_dot (other float order) within
 * rounding. Without AVX-512 VNNI the same tiles run on AVX2: vpmaddwd + add
 * for vpdpwssd, scale words broadcast from memory for vpermw; the integers are
 * the same, so are the bits. */
#include "rl_gemm.h"
#include "rl_quant.h"

#include <string.h>

int rl_gemm_q_level(void); /* rl_gemm_q.c: 2 AVX-512 VNNI, 1 AVX2, 0 neither */

#if defined(__x86_64__)
#include <immintrin.h>

#define UNROLL _Pragma("GCC unroll 8")
/* Software prefetch distance along a row, bytes. One token against Q4_K
 * rows of 2048, 2 threads: 19.8 GB/s with none, 32 at 4 KiB, 40-41 at 32 KiB
 * (Q6_K 23 -> 42-43; docs/PERFORMANCE.md). */
#ifndef K_PF
#define K_PF 32768
#endif

/* One row's super-block, unpacked: w[i] holds weights 32i..32i+31 as
 * unsigned bytes, sc[i] the scale of each of its 16-bit pairs, off the
 * offset's factors (to multiply Q8_K's 16 sums), d and doff the float
 * scales of the product and of the offset term. */
typedef struct kblock {
    __m256i w[8], sc[8], off;
    float d, doff;
} kblock;

typedef void (*ktile_fn)(int64_t, const uint8_t *, size_t, int, const uint8_t *, size_t, float *, size_t);

#define KVNNI 1
#define KATTR __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,f16c,avx2,fma")))
#define KN(name) name##_vnni
#define KDPWSSD(S, P, C) _mm256_dpwssd_epi32(S, P, C)
#include "rl_gemm_k_tiles.h"
#undef KVNNI
#undef KATTR
#undef KN
#undef KDPWSSD

#define KVNNI 0
#define KATTR __attribute__((target("f16c,avx2,fma")))
#define KN(name) name##_avx2
#define KDPWSSD(S, P, C) _mm256_add_epi32(S, _mm256_madd_epi16(P, C))
#include "rl_gemm_k_tiles.h"
#undef KVNNI
#undef KATTR
#undef KN
#undef KDPWSSD

/* [level - 1][nt - 1]: level 1 AVX2, 2 VNNI (rl_gemm_q_level) */
#define KROW(T, SFX) {T##_1_##SFX, T##_2_##SFX, T##_3_##SFX, T##_4_##SFX}
static const ktile_fn q4_k_tiles[2][4] = {KROW(q4_k, avx2), KROW(q4_k, vnni)};
static const ktile_fn q5_k_tiles[2][4] = {KROW(q5_k, avx2), KROW(q5_k, vnni)};
static const ktile_fn q6_k_tiles[2][4] = {KROW(q6_k, avx2), KROW(q6_k, vnni)};

/* One entry point per weight type and level over its table, and the types
 * they serve; the level is chosen once per matrix, in rl_gemm_k_kernel. */
#define KTILE_FN(NAME, TAB, L)                                                                        \
    static void NAME(int64_t k, const void *w, size_t w_stride, int nr, const void *a, size_t a_stride, int nt, \
                     float *y, size_t ldy)                                                            \
    {                                                                                                 \
        TAB[L][nt - 1](k / RL_QK_K, w, w_stride, nr, a, a_stride, y, ldy);                            \
    }
#define KTILE_FNS(NAME, TAB) KTILE_FN(NAME##_avx2, TAB, 0) KTILE_FN(NAME##_vnni, TAB, 1)
KTILE_FNS(q4_k_tile, q4_k_tiles)
KTILE_FNS(q5_k_tile, q5_k_tiles)
KTILE_FNS(q6_k_tile, q6_k_tiles)

#define KKERNEL(T, NAME) {T, {NAME##_avx2, NAME##_vnni}}
static const struct {
    rl_type type;
    rl_gemm_tile_fn tile[2]; /* [level - 1] */
} k_kernels[] = {KKERNEL(RL_TYPE_Q4_K, q4_k_tile), KKERNEL(RL_TYPE_Q5_K, q5_k_tile), KKERNEL(RL_TYPE_Q6_K, q6_k_tile)};
#endif

rl_gemm_tile_fn rl_gemm_k_kernel(rl_type wt)
{
#if defined(__x86_64__)
    int l = rl_gemm_q_level();
    if (l > 0 && rl_type_get(wt) && rl_type_get(wt)->vec_dot_type == RL_TYPE_Q8_K)
        for (size_t i = 0; i < sizeof k_kernels / sizeof k_kernels[0]; i++)
            if (k_kernels[i].type == wt)
                return k_kernels[i].tile[l - 1];
#endif
    (void)wt;
    return NULL;
}
