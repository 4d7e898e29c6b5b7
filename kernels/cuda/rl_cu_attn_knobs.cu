/* rl_cu_attn_knobs.cu - the decode attention's kernel choice and switches
 * (rl_cu_attn_knobs.h), apart from the kernels in rl_cu_attn.cu. */
#include <stdlib.h>
#include <string.h>

#include "rl_cu_attn_knobs.h"
#include "rl_cu_common.cuh"

/* Which split-mode kernel serves head sizes 64 and 128: 0 the warp kernel
 * (default), 1 the block kernel, 2 the warp kernel with int8 rows of 128 on
 * tensor cores (attn_tc below); rl_cu_attn_force or RL_CU_ATTN_KERNEL=warp|block. */
static int attn_forced = -1;
extern "C" void rl_cu_attn_force(int kernel)
{
    attn_forced = kernel;
}

int rl_cu_attn_kernel(void)
{
    if (attn_forced >= 0)
        return attn_forced;
    static int env = -1;
    if (env < 0) {
        const char *e = getenv("RL_CU_ATTN_KERNEL");
        env = e && !strcmp(e, "block") ? 1 : 0;
    }
    return env;
}

/* RL_CU_ATTN_BAR2=1: the warp kernel's second barrier per chunk again
 * (measurements; the chunk's shared sets alternate without it). */
bool attn_bar2(void)
{
    static int on = -1;
    return rl_env_switch("RL_CU_ATTN_BAR2", false, &on);
}

/* One token per launch: k_attn_warp reads its first chunk's rows before the
 * token's own before the PDL wait (RL_CU_ATTN_EARLY=0: after, for
 * measurements), and since session 25 keeps that chunk's KV block looked up
 * then for the token's own row after the wait (RL_CU_ATTN_RUNS=0: looks it
 * up again, for measurements). 0 off, 1 early, 2 early with the block kept. */
int attn_early(void)
{
    static int on = -1, runs = -1;
    if (!rl_env_switch("RL_CU_ATTN_EARLY", true, &on))
        return 0;
    return rl_env_switch("RL_CU_ATTN_RUNS", true, &runs) ? 2 : 1;
}

/* The warp kernel's in-block merge for one block per head (default on;
 * RL_CU_ATTN_DIRECT=0: partials and the counted merge, for measurements). */
bool attn_direct(void)
{
    static int on = -1;
    return rl_env_switch("RL_CU_ATTN_DIRECT", true, &on);
}

/* Queries of at most this many chunks go to one block of their head with
 * the in-block merge (default 1; RL_CU_ATTN_DMAX=n, 0: never, for
 * measurements). A short context's split blocks otherwise store partials,
 * count in and merge in a second pass for one chunk of work. H100, session
 * 23, from an empty context (128 generated): TinyLlama Q4_0 1,922-1,924
 * against 1,834-1,857 tok/s, 7B Q4_0 630-633 against 623-630; 2 chunks
 * measured no better, 3 slower (one block's chunks one after the other). */
int attn_dmax(void)
{
    static int n = -1;
    if (n < 0) {
        const char *e = getenv("RL_CU_ATTN_DMAX");
        n = e && atoi(e) >= 0 && atoi(e) <= 1024 ? atoi(e) : 1;
    }
    return n;
}

/* The split merge's arrival as one acquire-release atomic (default on;
 * RL_CU_ATTN_ACQREL=0: two sequentially consistent fences around a relaxed
 * atomic, for measurements). H100, session 20: TinyLlama Q4_0 single stream
 * 1,714-1,734 against 1,696-1,700 tok/s, 7B Q4_0 549-556 against 545-546;
 * the attention alone 5.00 against 5.44 us a layer (TinyLlama). */
bool attn_acqrel(void)
{
    static int on = -1;
    return rl_env_switch("RL_CU_ATTN_ACQREL", true, &on);
}

/* int8 rows of 128 on tensor cores (attc::chunk): opt-in, RL_CU_ATTN_TC=1 or
 * rl_cu_attn_force(2). Correct, but 4% slower than the CUDA-core chunk on the
 * H100 at batch 64 (44.1 against 42.4 us per 7B layer, session 13): both wait
 * on their loads more than they compute. */
bool attn_tc(void)
{
    static int on = -1;
    if (attn_forced >= 0)
        return attn_forced == 2;
    return rl_env_switch("RL_CU_ATTN_TC", false, &on);
}

/* One token: the warp kernel launched in clusters of two blocks, so that a
 * query of two chunks (65-128 positions) is merged through the first
 * block's shared memory rather than partials, a counter and a second pass
 * (session 25, RL_CU_ATTN_PAIR=1; H100: 7B Q4_0 from an empty context
 * 636-644 against 633-638 tok/s, TinyLlama 1,985 against 1,922). The form
 * measured then wrote into the first block before a cluster barrier had
 * shown it started (racecheck: "a block that might not have entered yet");
 * the form here arrives on that barrier first. Session 26 (H100): racecheck
 * and memcheck of test_cu_paged (pairs forced on) clean; replayed 7B step
 * 1,568.8 / 1,567.4 against 1,569.8 / 1,570.8 us, TinyLlama 509.3 / 508.9
 * against 512.1 / 511.6 us; engine 642.2 / 645.9 against 641.8 / 638.3
 * tok/s. On by default (RL_CU_ATTN_PAIR=0: off). */
static int pair_forced = -1;
extern "C" void rl_cu_attn_set_pair(int on)
{
    pair_forced = on < 0 ? -1 : on > 0;
}

bool attn_pair(void)
{
    static int on = -1;
    if (pair_forced >= 0)
        return pair_forced;
    return rl_env_switch("RL_CU_ATTN_PAIR", true, &on);
}
