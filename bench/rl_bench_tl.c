/* rl_bench_tl.c - ringlm-bench-cuda --timeline: the one-sequence (or batch)
 * step's graph replayed with the kernels' timeline armed (a build with
 * -Dgpu_timeline=true, kernels/cuda/rl_cu_tl.cuh), laid out per launch.
 *
 * For each launch, against the launch before it in the step: `wait` is how
 * long after that launch's last block ended the first of this one's PDL
 * waits returned (the dependency's own latency), `run` how long after that
 * this launch's last block ended (its time on the critical path), `early`
 * how long before the previous launch's end its first block started. The
 * summary averages them over the launches of each kind, a kind being a
 * kernel with its neighbours' kernels (so a layer's Q|K|V, gate/up and down
 * products on rl_cu_mvb stay apart), over the replays after the first, and
 * the kernel's own marks (RL_TL_MARK: the latest block to reach each) after
 * the launch's first PDL wait returned. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rl_bench_tl.h"
#include "rl_cu_tl.h"

#define TL_REPLAYS 4
#define TL_KINDS 64

typedef struct {
    uint32_t prev, tag, next;
    int n, mkn[RL_TL_MARKS];
    double wait, run, early, tail, mk[RL_TL_MARKS];
} tl_kind;

static double us(int64_t ns)
{
    return (double)ns / 1e3;
}

static tl_kind *kind_of(tl_kind *k, int *nk, uint32_t prev, uint32_t tag, uint32_t next)
{
    for (int i = 0; i < *nk; i++)
        if (k[i].prev == prev && k[i].tag == tag && k[i].next == next)
            return &k[i];
    if (*nk == TL_KINDS)
        return NULL;
    k[*nk] = (tl_kind){.prev = prev, .tag = tag, .next = next};
    return &k[(*nk)++];
}

/* Every block's record of replay s into raw (times in us from the replay's
 * first start; sorted by launch and block later, by whoever reads it). */
static void write_raw(FILE *raw, int s, const rl_cu_tl_rec *rec, size_t n)
{
    uint64_t base = UINT64_MAX;
    for (size_t i = 0; i < n; i++)
        base = rec[i].t0 < base ? rec[i].t0 : base;
    for (size_t i = 0; i < n; i++) {
        const rl_cu_tl_rec *r = &rec[i];
        fprintf(raw, "%d,%llu,%s,%u,%u,%u,%.3f,%.3f,%.3f", s, (unsigned long long)r->grid, rl_cu_tl_tag_name(r->tag),
                r->n_blocks, r->block, r->sm, us((int64_t)(r->t0 - base)),
                r->tw ? us((int64_t)(r->tw - base)) : -1.0, us((int64_t)(r->t1 - base)));
        for (int j = 0; j < RL_TL_MARKS; j++)
            fprintf(raw, ",%.3f", r->mk[j] ? us((int64_t)(r->mk[j] - base)) : -1.0);
        fputc('\n', raw);
    }
}

/* One replay (number s) of the step with the log armed: its launches in
 * order of start; every block's record into raw when it is not NULL. */
static int one_replay(rl_cu_model *m, int batch, double *step_us, rl_cu_tl_launch **l, FILE *raw, int s)
{
    int rc = rl_cu_tl_arm(1u << 20);
    if (rc == -ENOTSUP) {
        fprintf(stderr, "timeline: this build records none (meson setup -Dgpu_timeline=true)\n");
        return -1;
    }
    rl_cu_tl_rec *rec;
    size_t n;
    if (rc || rl_cu_model_replay(m, batch, 1, step_us) || rl_cu_tl_collect(&rec, &n)) {
        fprintf(stderr, "timeline: %s\n", rl_cu_last_error());
        return -1;
    }
    if (raw)
        write_raw(raw, s, rec, n);
    int nl = rl_cu_tl_launches(rec, n, l);
    free(rec);
    if (nl > 0)
        return nl;
    if (nl == 0)
        free(*l);
    fprintf(stderr, "timeline: no records\n");
    return -1;
}

/* rl_bench_timeline with its files open (f, raw: NULL when not asked for). */
static int timeline_to(rl_cu_model *m, int batch, FILE *f, FILE *raw)
{
    if (raw)
        fprintf(raw, "step,grid,kernel,blocks,block,sm,t0_us,tw_us,t1_us,m0_us,m1_us,m2_us,m3_us\n");
    if (f)
        fprintf(f, "step,i,kernel,blocks,records,t0_us,tw_min_us,tw_max_us,t1_min_us,t1_max_us,m0_us,m1_us,m2_us,m3_us\n");
    tl_kind k[TL_KINDS];
    int nk = 0, steps = 0, nl = 0;
    double span = 0, run_sum = 0, wait_sum = 0, graph_us = 0;
    for (int s = 0; s < TL_REPLAYS; s++) {
        rl_cu_tl_launch *l;
        double step_us = 0;
        if ((nl = one_replay(m, batch, &step_us, &l, raw, s)) < 0)
            return 1;
        uint64_t base = l[0].t0;
        for (int i = 0; i < nl; i++) {
            const rl_cu_tl_launch *c = &l[i];
            if (f) {
                fprintf(f, "%d,%d,%s,%u,%u,%.3f,%.3f,%.3f,%.3f,%.3f", s, i, rl_cu_tl_tag_name(c->tag), c->n_blocks,
                        c->n_rec, us((int64_t)(c->t0 - base)), c->tw_min ? us((int64_t)(c->tw_min - base)) : -1.0,
                        c->tw_max ? us((int64_t)(c->tw_max - base)) : -1.0, us((int64_t)(c->t1_min - base)),
                        us((int64_t)(c->t1_max - base)));
                for (int j = 0; j < RL_TL_MARKS; j++)
                    fprintf(f, ",%.3f", c->mk_max[j] ? us((int64_t)(c->mk_max[j] - base)) : -1.0);
                fputc('\n', f);
            }
            if (s == 0 || i == 0)
                continue; /* the first replay warms; a step's first launch follows the graph before */
            const rl_cu_tl_launch *p = &l[i - 1];
            tl_kind *kd = kind_of(k, &nk, p->tag, c->tag, i + 1 < nl ? l[i + 1].tag : 0);
            uint64_t tw = c->tw_min ? c->tw_min : c->t0;
            double wt = us((int64_t)(tw - p->t1_max)), rn = us((int64_t)(c->t1_max - tw));
            if (kd) {
                kd->n++;
                kd->wait += wt;
                kd->run += rn;
                kd->early += us((int64_t)(p->t1_max - c->t0));
                kd->tail += us((int64_t)(c->t1_max - c->t1_min));
                for (int j = 0; j < RL_TL_MARKS; j++)
                    if (c->mk_max[j]) {
                        kd->mkn[j]++;
                        kd->mk[j] += us((int64_t)(c->mk_max[j] - tw));
                    }
            }
            wait_sum += wt;
            run_sum += rn;
        }
        if (s > 0) {
            span += us((int64_t)(l[nl - 1].t1_max - base));
            graph_us += step_us;
            steps++;
        }
        free(l);
    }
    printf("timeline: %d launches a step, %d replays after the first: graph %.1f us a step (timed by events), span "
           "%.1f us (first start to last end), waits %.1f us, runs %.1f us\n",
           nl, steps, graph_us / steps, span / steps, wait_sum / steps, run_sum / steps);
    printf("%-30s %6s %8s %8s %8s %8s %10s  %s\n", "kernel (before / after)", "count", "wait", "run", "early", "tail",
           "us a step", "marks after the wait");
    for (int i = 0; i < nk; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s (%s / %s)", rl_cu_tl_tag_name(k[i].tag), rl_cu_tl_tag_name(k[i].prev),
                 k[i].next ? rl_cu_tl_tag_name(k[i].next) : "-");
        double c = k[i].n;
        printf("%-30s %6d %8.2f %8.2f %8.2f %8.2f %10.1f ", name, k[i].n / steps, k[i].wait / c, k[i].run / c,
               k[i].early / c, k[i].tail / c, (k[i].wait + k[i].run) / steps);
        for (int j = 0; j < RL_TL_MARKS; j++)
            if (k[i].mkn[j])
                printf(" m%d %.2f", j, k[i].mk[j] / k[i].mkn[j]);
        putchar('\n');
    }
    return 0;
}

int rl_bench_timeline(rl_cu_model *m, int batch, const char *csv, const char *raw_csv)
{
    FILE *f = csv ? fopen(csv, "w") : NULL, *raw = raw_csv ? fopen(raw_csv, "w") : NULL;
    int rc = 1;
    if ((csv && !f) || (raw_csv && !raw))
        perror(csv && !f ? csv : raw_csv);
    else
        rc = timeline_to(m, batch, f, raw);
    if (f)
        fclose(f);
    if (raw)
        fclose(raw);
    return rc;
}
