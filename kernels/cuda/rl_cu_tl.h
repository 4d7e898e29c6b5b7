/* rl_cu_tl.h - the step timeline (host side, C-callable): what each block
 * of an instrumented kernel recorded in one run of a step (rl_cu_tl.cuh),
 * and the per-launch summary the benchmark prints. Only a build with
 * -Dgpu_timeline=true records; elsewhere rl_cu_tl_arm() returns -ENOTSUP. */
#ifndef RL_CU_TL_H
#define RL_CU_TL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The kinds of kernel a record names (rl_cu_tl_tag_name). */
enum {
    RL_TL_GET_ROWS = 1,
    RL_TL_MVB,
    RL_TL_ROPE,
    RL_TL_ATTN,
    RL_TL_MATVEC,
    RL_TL_ARGMAX,
    RL_TL_RMSNORM,
    RL_TL_QUANT,
    RL_TL_SWIGLU,
    RL_TL_N_TAGS
};

/* One block's record; times in ns of the GPU's global timer. tw is 0 where
 * the block's thread 0 left before the kernel's PDL wait. */
#define RL_TL_MARKS 4
typedef struct rl_cu_tl_rec {
    uint64_t t0, tw, t1;         /* start, PDL wait returned, end (thread 0) */
    uint64_t grid;               /* the launch (%gridid) */
    uint64_t mk[RL_TL_MARKS];    /* the kernel's own marks (RL_TL_MARK), 0: not reached */
    uint32_t tag, block, sm, n_blocks;
} rl_cu_tl_rec;

/* One launch, from its blocks' records: the earliest start, the first and
 * last PDL wait to return, the first and last block to end. */
typedef struct rl_cu_tl_launch {
    uint32_t tag, n_blocks, n_rec;
    uint64_t t0, tw_min, tw_max, t1_min, t1_max;
    uint64_t mk_max[RL_TL_MARKS]; /* each mark's latest block (0: none reached it) */
} rl_cu_tl_launch;

const char *rl_cu_tl_tag_name(uint32_t tag);
/* Arm the log for up to cap records (every instrumented kernel writes to it
 * from its next launch on); -ENOTSUP without the timeline build. */
int rl_cu_tl_arm(size_t cap);
/* Stop recording; the records so far into *rec (malloc'd, the caller frees)
 * and their count (at most the cap) into *n; -ENOTSUP as above. */
int rl_cu_tl_collect(rl_cu_tl_rec **rec, size_t *n);
/* Group records by launch, ordered by start: *out malloc'd (the caller
 * frees), the number of launches returned (negative on failure). */
int rl_cu_tl_launches(const rl_cu_tl_rec *rec, size_t n, rl_cu_tl_launch **out);

#ifdef __cplusplus
}
#endif

#endif
