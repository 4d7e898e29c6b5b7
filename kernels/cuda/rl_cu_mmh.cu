/* rl_cu_mmh.cu - batched fp16 tensor-core products over Q4_0/Q8_0 weights:
 * argument checks, the choice of CTA size and K split, the Q4_0
 * instantiation (kernel in rl_cu_mmh.cuh; Q8_0 in rl_cu_mmh_q8_0.cu). */
#include <stdlib.h>
#include <string.h>

#include "rl_cu_mmh.cuh"

RL_CU_MMH_DEFINE(RL_TYPE_Q4_0, q4_0)

const int rl_mmh::warp_options[3] = {4, 6, 8};

/* An integer setting from the environment if it lies in [lo, hi], else 0;
 * read once per cache. */
static int env_setting(const char *name, int lo, int hi, int *cache)
{
    if (*cache < 0) {
        const char *e = getenv(name);
        int v = e ? atoi(e) : 0;
        *cache = v >= lo && v <= hi ? v : 0;
    }
    return *cache;
}

/* Forced plan parts (0: automatic), from RL_CU_MMH_WARPS=4|6|8,
 * RL_CU_MMH_SPLIT=1..8 and RL_CU_MMH_REDUCE=cluster|workspace on first use,
 * or rl_cu_mmh_force. */
static int f_warps = -1, f_split = -1, f_reduce = -1;

static void read_env(void)
{
    if (f_reduce >= 0)
        return;
    env_setting("RL_CU_MMH_WARPS", 4, 8, &f_warps);
    if (f_warps == 5 || f_warps == 7)
        f_warps = 0;
    env_setting("RL_CU_MMH_SPLIT", 1, 8, &f_split);
    const char *e = getenv("RL_CU_MMH_REDUCE");
    f_reduce = !e ? 0 : !strcmp(e, "cluster") ? 1 : !strcmp(e, "workspace") ? 2 : 0;
}

extern "C" int rl_cu_mmh_force(int warps, int split, int reduce)
{
    if ((warps && warps != 4 && warps != 6 && warps != 8) || split < 0 || split > 8 || reduce < 0 || reduce > 2)
        return -EINVAL;
    read_env();
    f_warps = warps, f_split = split, f_reduce = reduce;
    return 0;
}

static int forced_warps(void)
{
    read_env();
    return f_warps;
}

static int forced_split(void)
{
    read_env();
    return f_split;
}

/* How a K split is reduced (unless forced): through the workspace, which
 * measured faster than clusters at every batch (7B Q4_0 step products at 9 /
 * 16 / 32 / 64 rows: 2.76 / 3.01 / 4.20 / 6.88 ms against 3.99 / 4.20 / 5.13 /
 * 7.06 ms; docs/PERFORMANCE.md). */
static bool use_cluster(void)
{
    read_env();
    return f_reduce == 1;
}

/* Largest K split considered: RL_CU_MMH_MAX_SPLIT, else for clusters 2 up
 * to 32 rows and 4 above, for the workspace 8. Large clusters cost far more
 * than the model below says: on the H100 a cluster of 8 made a 2048 x 2048
 * product take 26 us at 20 rows (10-12 us with clusters of 2), and caps of
 * 2 / 4 / 8 gave the 7B step's products 4.1 / 5.0 / 4.6 ms at 16 rows,
 * 5.2 / 6.8 / 8.1 at 32 and 8.3 / 7.1 / 9.6 at 64 (tools/gpu-mmh.sh,
 * docs/PERFORMANCE.md). */
static int max_split(int nb, bool cluster)
{
    static int mx = -1;
    int v = env_setting("RL_CU_MMH_MAX_SPLIT", 1, 8, &mx);
    return v ? v : !cluster ? 8 : nb > 32 ? 4 : 2;
}

/* Estimated time, in row-chunks of work per SM, of every CTA size and K
 * split: waves of resident CTAs (CTAs sharing an SM share its time), each
 * CTA's chunks plus ~3 chunks of pipeline fill, plus the reduction (cluster:
 * a cost per rank; workspace: every rank stores its partial tile and the
 * last one reads them all, a partial costing its bytes over a chunk's (Q4_0
 * weights and fp16 activations) in chunks). The row tile (32, 48 or 64 outputs per warp group) decides how well
 * the tiles fill the SMs: 7B matrices on 132 SMs mostly take 6 warps. nb:
 * batch columns of the tile (8 * NT). */
rl_mmh::plan rl_mmh::choose(int64_t rows_out, bool glu, int64_t nch, int nb, const int (&per_sm)[3])
{
    const bool cluster = use_cluster();
    plan best = {8, 1, cluster};
    double best_cost = 1e300;
    const int64_t sms = rl_cu_sm_count();
    for (int i = 0; i < 3; i++) {
        int w = warp_options[i];
        if (forced_warps() && w != forced_warps())
            continue;
        int64_t bm = 32 * w, no = glu ? bm / 2 : bm, tiles = (rows_out + no - 1) / no, slots = per_sm[i] * sms;
        double part = 4.0 * nb * bm / (64.0 * bm + 256.0 * nb); /* a partial tile's bytes over a chunk's */
        int top = max_split(nb, cluster) > forced_split() ? max_split(nb, cluster) : forced_split();
        for (int split = 1; split <= top; split++) {
            if (split > 1 && nch < 2 * split)
                break;
            if (split > 1 && !cluster && (tiles > WS_TILES || tiles * split * bm * nb > WS_FLOATS))
                break;
            if (forced_split() && split != forced_split())
                continue;
            int64_t waves = (tiles * split + slots - 1) / slots;
            double red = split == 1 ? 0.0 : cluster ? 0.5 * split * bm : (split + 1.0) * bm * part;
            double cost = (double)waves * per_sm[i] * bm * ((nch + split - 1) / split + 3) + red;
            if (cost < best_cost) {
                best_cost = cost;
                best = {w, split, cluster};
            }
        }
    }
    return best;
}

int rl_mmh::check_args(const rl_cu_mat *m, const rl_cu_act *x, int batch, int mode, const rl_cu_act *y)
{
    if (!m || !x || !y)
        return -EINVAL;
    if (m->type != RL_TYPE_Q4_0 && m->type != RL_TYPE_Q8_0)
        return -ENOTSUP;
    if (!x->h || ((uintptr_t)x->h & 15) || rl_cu_batched_args(m, x, batch, mode, y))
        return -EINVAL;
    if ((uint64_t)m->rows * (uint64_t)(m->cols / 32) * (m->type == RL_TYPE_Q4_0 ? 16 : 32) >= (1ull << 32))
        return -ENOTSUP; /* the kernels keep 32-bit offsets into the quant plane */
    return 0;
}

extern "C" int rl_cu_mmh(const rl_cu_mat *m, const rl_cu_act *x, int batch, int mode, rl_cu_act *y, cudaStream_t s)
{
    if (int rc = rl_mmh::check_args(m, x, batch, mode, y))
        return rc;
    if (m->type == RL_TYPE_Q4_0)
        rl_cu_mmh_q4_0(*m, *x, batch, mode, *y, s);
    else
        rl_cu_mmh_q8_0(*m, *x, batch, mode, *y, s);
    return RL_CU_LAUNCHED("mmh");
}

extern "C" int rl_cu_mmh_plan(const rl_cu_mat *m, int batch, int mode, int *warps, int *split)
{
    if (!m || (m->type != RL_TYPE_Q4_0 && m->type != RL_TYPE_Q8_0) || batch < 1 || batch > RL_CU_MAX_MM_BATCH ||
        m->cols < 32)
        return -EINVAL;
    rl_mmh::plan p = m->type == RL_TYPE_Q4_0 ? rl_cu_mmh_plan_q4_0(*m, batch, mode) : rl_cu_mmh_plan_q8_0(*m, batch, mode);
    if (warps)
        *warps = p.warps;
    if (split)
        *split = p.split;
    return 0;
}
