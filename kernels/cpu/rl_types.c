/* rl_types.c - the type traits table (indexed by ggml type id), half/bfloat16
 * conversions, and run-time selection of SIMD vec_dot kernels. */
#include "rl_types.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "rl_quant.h"

/* Types we compute with carry functions; the rest are known by size only, so
 * files using them parse (and a model loader can say which type it lacks).
 * vec_dot_rows (and the SIMD kernels) are filled in by select_kernels. */
#define COMPUTE(nm, bs, ts, tf, ff, vdt, vd)                                                                  \
    {.name = nm, .block_size = bs, .type_size = ts, .supported = true, .to_float = tf, .from_float = ff,      \
     .vec_dot_type = vdt, .vec_dot = vd, .vec_dot_ref = vd}
#define SIZE_ONLY(nm, bs, ts, vdt) {.name = nm, .block_size = bs, .type_size = ts, .vec_dot_type = vdt}

static rl_type_traits table[RL_TYPE_COUNT] = {
    [RL_TYPE_F32] = COMPUTE("F32", 1, 4, rl_f32_to_float, rl_f32_from_float, RL_TYPE_F32, rl_vd_f32_ref),
    [RL_TYPE_F16] = COMPUTE("F16", 1, 2, rl_f16_to_float, rl_f16_from_float, RL_TYPE_F32, rl_vd_f16_ref),
    [RL_TYPE_BF16] = COMPUTE("BF16", 1, 2, rl_bf16_to_float, rl_bf16_from_float, RL_TYPE_F32, rl_vd_bf16_ref),
    [RL_TYPE_Q8_0] = COMPUTE("Q8_0", 32, 34, rl_q8_0_to_float, rl_q8_0_from_float, RL_TYPE_Q8_0, rl_vd_q8_0_ref),
    [RL_TYPE_Q4_0] = COMPUTE("Q4_0", 32, 18, rl_q4_0_to_float, rl_q4_0_from_float, RL_TYPE_Q8_0, rl_vd_q4_0_ref),
    [RL_TYPE_Q4_K] = COMPUTE("Q4_K", 256, 144, rl_q4_k_to_float, rl_q4_k_from_float, RL_TYPE_Q8_K, rl_vd_q4_k_ref),
    [RL_TYPE_Q5_K] = COMPUTE("Q5_K", 256, 176, rl_q5_k_to_float, rl_q5_k_from_float, RL_TYPE_Q8_K, rl_vd_q5_k_ref),
    [RL_TYPE_Q6_K] = COMPUTE("Q6_K", 256, 210, rl_q6_k_to_float, rl_q6_k_from_float, RL_TYPE_Q8_K, rl_vd_q6_k_ref),
    /* Q8_K is an activation format only (no vec_dot of its own). */
    [RL_TYPE_Q8_K] = COMPUTE("Q8_K", 256, 292, rl_q8_k_to_float, rl_q8_k_from_float, RL_TYPE_Q8_K, NULL),
    /* The K-quant mixes' stand-ins for rows that are not a multiple of 256 */
    [RL_TYPE_Q4_1] = COMPUTE("Q4_1", 32, 20, rl_q4_1_to_float, rl_q4_1_from_float, RL_TYPE_Q8_0, rl_vd_q4_1_ref),
    [RL_TYPE_Q5_0] = COMPUTE("Q5_0", 32, 22, rl_q5_0_to_float, rl_q5_0_from_float, RL_TYPE_Q8_0, rl_vd_q5_0_ref),
    [RL_TYPE_Q5_1] = COMPUTE("Q5_1", 32, 24, rl_q5_1_to_float, rl_q5_1_from_float, RL_TYPE_Q8_0, rl_vd_q5_1_ref),
    /* Known layouts we do not compute with. */
    [RL_TYPE_Q8_1] = SIZE_ONLY("Q8_1", 32, 36, RL_TYPE_Q8_1),
    [RL_TYPE_Q2_K] = SIZE_ONLY("Q2_K", 256, 84, RL_TYPE_Q8_K),
    [RL_TYPE_Q3_K] = SIZE_ONLY("Q3_K", 256, 110, RL_TYPE_Q8_K),
    [20] = SIZE_ONLY("IQ4_NL", 32, 18, RL_TYPE_Q8_0),
    [23] = SIZE_ONLY("IQ4_XS", 256, 136, RL_TYPE_Q8_K),
    [24] = SIZE_ONLY("I8", 1, 1, 24),
    [25] = SIZE_ONLY("I16", 1, 2, 25),
    [26] = SIZE_ONLY("I32", 1, 4, 26),
    [27] = SIZE_ONLY("I64", 1, 8, 27),
    [28] = SIZE_ONLY("F64", 1, 8, 28),
};

/* vec_dot_rows for types without a multi-row kernel: one vec_dot per row. */
#define ROWS_GENERIC(T, id)                                                                                  \
    static void rows_##T(int64_t n, const void *w, size_t rs, int64_t nr, const void *a, float *out)         \
    {                                                                                                        \
        rl_vec_dot_fn f = table[id].vec_dot;                                                                 \
        for (int64_t r = 0; r < nr; r++) out[r] = f(n, (const uint8_t *)w + (size_t)r * rs, a);            \
    }
ROWS_GENERIC(f32, RL_TYPE_F32)
ROWS_GENERIC(f16, RL_TYPE_F16)
ROWS_GENERIC(bf16, RL_TYPE_BF16)
ROWS_GENERIC(q8_0, RL_TYPE_Q8_0)
ROWS_GENERIC(q4_0, RL_TYPE_Q4_0)
ROWS_GENERIC(q4_k, RL_TYPE_Q4_K)
ROWS_GENERIC(q5_k, RL_TYPE_Q5_K)
ROWS_GENERIC(q6_k, RL_TYPE_Q6_K)
ROWS_GENERIC(q4_1, RL_TYPE_Q4_1)
ROWS_GENERIC(q5_0, RL_TYPE_Q5_0)
ROWS_GENERIC(q5_1, RL_TYPE_Q5_1)

const rl_type_traits *rl_type_get(uint32_t type)
{
    rl_types_init();
    if (type >= RL_TYPE_COUNT || !table[type].name) return NULL;
    return &table[type];
}

int rl_type_from_name(const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < RL_TYPE_COUNT; i++)
        if (table[i].name && strcasecmp(table[i].name, name) == 0) return i;
    return -1;
}

size_t rl_type_row_size(rl_type t, int64_t n)
{
    const rl_type_traits *tr = rl_type_get((uint32_t)t);
    if (!tr || n <= 0 || n % tr->block_size) return 0;
    return (size_t)(n / tr->block_size) * tr->type_size;
}

static void select_kernels(void)
{
    table[RL_TYPE_F32].vec_dot_rows = rows_f32;
    table[RL_TYPE_F16].vec_dot_rows = rows_f16;
    table[RL_TYPE_BF16].vec_dot_rows = rows_bf16;
    table[RL_TYPE_Q8_0].vec_dot_rows = rows_q8_0;
    table[RL_TYPE_Q4_0].vec_dot_rows = rows_q4_0;
    table[RL_TYPE_Q4_K].vec_dot_rows = rows_q4_k;
    table[RL_TYPE_Q5_K].vec_dot_rows = rows_q5_k;
    table[RL_TYPE_Q6_K].vec_dot_rows = rows_q6_k;
    table[RL_TYPE_Q4_1].vec_dot_rows = rows_q4_1;
    table[RL_TYPE_Q5_0].vec_dot_rows = rows_q5_0;
    table[RL_TYPE_Q5_1].vec_dot_rows = rows_q5_1;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    unsigned eax, ebx, ecx = 0, edx;
    bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)); /* not in clang's cpu_supports list */
    bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
    bool vnni = avx2 && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") &&
                __builtin_cpu_supports("avx512bw");
    const char *cap = getenv("RINGLM_CPU_KERNELS");
    if (cap && strcmp(cap, "scalar") == 0) avx2 = vnni = false;
    if (cap && strcmp(cap, "avx2") == 0) vnni = false;
    for (int i = 0; i < RL_TYPE_COUNT; i++) table[i].vec_dot = table[i].vec_dot_ref;
    if (avx2) rl_vd_select_avx2(table);
    if (avx2) rl_quant_select_avx2(table);
    if (vnni) rl_vd_select_vnni(table);
#else
    for (int i = 0; i < RL_TYPE_COUNT; i++) table[i].vec_dot = table[i].vec_dot_ref;
#endif
}

void rl_types_init(void)
{
    /* pthread_once: later or concurrent callers wait for the first and then see its writes. */
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, select_kernels);
}

/* ---- IEEE binary16 and bfloat16 ---- */

float rl_fp16_to_fp32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        float v = (float)mant * 0x1p-24f; /* zero or subnormal: mant units of 2^-24 */
        return sign ? -v : v;
    }
    if (exp == 31) bits = sign | 0x7f800000u | (mant << 13);
    else bits = sign | ((exp + 112) << 23) | (mant << 13);
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t rl_fp32_to_fp16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00 | (uint16_t)((ax >> 13) & 0x1ff); /* NaN stays (quiet) NaN */
    if (ax >= 0x477ff000u) return sign | 0x7c00;   /* >= 65520 rounds to infinity */
    if (ax < 0x38800000u) {                         /* below 2^-14: subnormal half */
        if (ax <= 0x33000000u) return sign;          /* <= 2^-25 rounds (ties-to-even) to zero */
        uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u, shift = 126 - e; /* 14..24 */
        uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1))) h++;
        return sign | (uint16_t)h;
    }
    uint32_t h = (ax - 0x38000000u) >> 13, rem = ax & 0x1fffu; /* rebias 127 -> 15 */
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;   /* a carry moves into the exponent correctly */
    return sign | (uint16_t)h;
}

float rl_bf16_to_fp32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t rl_fp32_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1);                                           /* round to nearest even */
    return (uint16_t)(x >> 16);
}
