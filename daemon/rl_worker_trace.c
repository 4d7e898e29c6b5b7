/* rl_worker_trace.c - time-to-first-token spans inside the daemon (see
 * rl_worker_trace.h). Worker thread only. */
#include "rl_worker_trace.h"
#include "rl_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { WINDOW = 256 };

enum { SP_TOKENIZE, SP_HANDOFF, SP_ADMIT, SP_PREFILL, SP_LAST_STEP, SP_PUBLISH, SP_TOTAL, N_SPANS };

static const char *const span_names[N_SPANS] = {
    "decode+tokenize", "to worker", "admit+wait", "prefill", "last step", "publish", "total",
};

struct rl_worker_trace {
    double v[N_SPANS][WINDOW]; /* microseconds */
    uint32_t steps[WINDOW];
    uint32_t n;
    uint64_t reported;
};

rl_worker_trace *rl_worker_trace_new(void)
{
    const char *e = getenv("RINGLM_TRACE_TTFT");
    if (!e || !*e || strcmp(e, "0") == 0)
        return NULL;
    rl_worker_trace *t = calloc(1, sizeof *t);
    if (!t)
        rl_log(LOG_WARNING, "RINGLM_TRACE_TTFT: out of memory, no trace");
    else
        rl_log(LOG_INFO, "RINGLM_TRACE_TTFT: time-to-first-token spans are logged every %d requests", WINDOW);
    return t;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(rl_worker_trace *t)
{
    if (!t->n)
        return;
    char line[512];
    size_t off = 0;
    for (int k = 0; k < N_SPANS && off < sizeof line; k++) {
        double *v = t->v[k];
        qsort(v, t->n, sizeof *v, cmp_d);
        /* nearest rank */
        double p50 = v[(t->n - 1) / 2], p90 = v[(size_t)((t->n - 1) * 0.9 + 0.5)];
        int w = snprintf(line + off, sizeof line - off, "%s%s %.1f/%.1f", k ? ", " : "", span_names[k], p50, p90);
        if (w > 0)
            off += (size_t)w;
    }
    uint32_t max_steps = 0;
    for (uint32_t i = 0; i < t->n; i++)
        max_steps = t->steps[i] > max_steps ? t->steps[i] : max_steps;
    rl_log(LOG_INFO, "ttft trace, requests %llu-%llu, p50/p90 us: %s; prefill steps <= %u",
           (unsigned long long)t->reported + 1, (unsigned long long)(t->reported + t->n), line, max_steps);
    t->reported += t->n;
    t->n = 0;
}

static double us(uint64_t a, uint64_t b)
{
    return b >= a ? (double)(b - a) / 1e3 : 0;
}

void rl_worker_trace_add(rl_worker_trace *t, const rl_ttft_stamps *s, uint32_t req_id)
{
    if (!t)
        return;
    double sp[N_SPANS] = {
        [SP_TOKENIZE] = us(s->seen, s->recv),   [SP_HANDOFF] = us(s->recv, s->pick),
        [SP_ADMIT] = us(s->pick, s->step0),     [SP_PREFILL] = us(s->step0, s->first),
        [SP_LAST_STEP] = us(s->stepn, s->first), [SP_PUBLISH] = us(s->first, s->posted),
        [SP_TOTAL] = us(s->seen, s->posted),
    };
    for (int k = 0; k < N_SPANS; k++)
        t->v[k][t->n] = sp[k];
    t->steps[t->n] = s->steps;
    rl_log(LOG_DEBUG, "ttft trace: request %u: tokenize %.1f, to worker %.1f, admit+wait %.1f, prefill %.1f "
           "(%u steps, last %.1f), publish %.1f, total %.1f us",
           req_id, sp[SP_TOKENIZE], sp[SP_HANDOFF], sp[SP_ADMIT], sp[SP_PREFILL], s->steps, sp[SP_LAST_STEP],
           sp[SP_PUBLISH], sp[SP_TOTAL]);
    if (++t->n == WINDOW)
        report(t);
}

void rl_worker_trace_free(rl_worker_trace *t)
{
    if (!t)
        return;
    report(t);
    free(t);
}
