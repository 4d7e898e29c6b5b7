/* rl_cu_l2pf.h - L2 prefetch hints: byte ranges of device memory that a
 * kernel's blocks ask the L2 cache to fetch while the step's path runs
 * through kernels that read little (the RoPE and the attention), so that
 * the product after them finds its first weights in L2 instead of DRAM.
 * Plain C (no CUDA): the ranges are built on the host and passed by value
 * to a kernel, which splits each range evenly over its blocks
 * (rl_l2pf_issue in rl_cu_common.cuh; sm_90's bulk L2 prefetch). */
#ifndef RL_CU_L2PF_H
#define RL_CU_L2PF_H

#include <stdbool.h>
#include <stdint.h>

#define RL_CU_L2PF_N 6

/* Up to RL_CU_L2PF_N ranges; unused ones have n == 0. Every start and
 * length is a multiple of 16 bytes (rl_cu_l2pf_rows keeps them so). */
typedef struct rl_cu_l2pf {
    const void *a[RL_CU_L2PF_N];
    uint32_t n[RL_CU_L2PF_N];
} rl_cu_l2pf;

/* A matrix's planes as rl_cu_l2pf_rows needs them (rl_cu_mat's q, d, ld). */
typedef struct rl_cu_l2pf_mat {
    const void *q; /* rows of ld bytes */
    const void *d; /* rows of d_row bytes (Q4_0 / Q8_0 scales), or NULL */
    int64_t rows, ld, d_row;
} rl_cu_l2pf_mat;

/* Appends to pf the leading rows of m, in the order the batch-1 products
 * (rl_cu_mvb's tiles, the matvecs' CTAs) stream them first: with halves
 * (a fused gate|up matrix), the same number of leading rows of each half;
 * each plane's rows are one range. Takes as many rows as *budget bytes pay
 * for (at least one while the budget is positive, at most all) and lowers
 * *budget by what they hold. Starts rounded up and lengths down to 16
 * bytes. Returns the ranges appended, or -1 when pf lacks room for them
 * (pf unchanged) or m is malformed. */
int rl_cu_l2pf_rows(rl_cu_l2pf *pf, const rl_cu_l2pf_mat *m, bool halves, int64_t *budget);

/* The number of ranges in use in pf. */
int rl_cu_l2pf_count(const rl_cu_l2pf *pf);

#endif
