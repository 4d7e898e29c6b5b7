/* rl_cu_l2pf.c - L2 prefetch ranges over a matrix's leading rows (plain C:
 * tested in every build, tests/cuda/test_cu_l2pf.c). */
#include "rl_cu_l2pf.h"

#include <stddef.h>

int rl_cu_l2pf_count(const rl_cu_l2pf *pf)
{
    int k = 0;
    while (k < RL_CU_L2PF_N && pf->n[k])
        k++;
    return k;
}

/* [p, p + n) trimmed to 16-byte bounds: its start rounded up, its end down. */
static int put(rl_cu_l2pf *pf, int k, const uint8_t *p, int64_t n)
{
    uintptr_t s = ((uintptr_t)p + 15) & ~(uintptr_t)15, e = ((uintptr_t)p + (uintptr_t)n) & ~(uintptr_t)15;
    if (e <= s || e - s > UINT32_MAX - 15)
        return k;
    pf->a[k] = (const void *)s;
    pf->n[k] = (uint32_t)(e - s);
    return k + 1;
}

int rl_cu_l2pf_rows(rl_cu_l2pf *pf, const rl_cu_l2pf_mat *m, bool halves, int64_t *budget)
{
    if (!pf || !m || !budget || !m->q || m->rows <= 0 || m->ld <= 0 || (m->d && m->d_row <= 0) ||
        (halves && m->rows % 2))
        return -1;
    const int parts = halves ? 2 : 1, planes = m->d ? 2 : 1, k0 = rl_cu_l2pf_count(pf);
    if (k0 + parts * planes > RL_CU_L2PF_N)
        return -1;
    if (*budget <= 0)
        return 0;
    const int64_t half = m->rows / parts, row_bytes = m->ld + (m->d ? m->d_row : 0);
    int64_t rows = *budget / parts / row_bytes;
    rows = rows < 1 ? 1 : rows > half ? half : rows;
    /* at most 4 GiB a range (the prefetch's length is 32 bits) */
    if (rows * m->ld > (int64_t)UINT32_MAX - 15)
        rows = ((int64_t)UINT32_MAX - 15) / m->ld;
    int k = k0;
    for (int p = 0; p < parts; p++) {
        k = put(pf, k, (const uint8_t *)m->q + p * half * m->ld, rows * m->ld);
        if (m->d)
            k = put(pf, k, (const uint8_t *)m->d + p * half * m->d_row, rows * m->d_row);
    }
    *budget -= parts * rows * row_bytes;
    return k - k0;
}
