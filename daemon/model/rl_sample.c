/* rl_sample.c - penalties, greedy, top-k / temperature / min-p / top-p sampling. */
#include "rl_sample.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64: spreads a seed into a non-zero state; xorshift64* draws. */
static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

int rl_sample_init(rl_sampler *s, const rl_sampling *p, uint32_t n_vocab)
{
    memset(s, 0, sizeof(*s));
    s->p = *p;
    s->n_vocab = n_vocab;
    /* hostile-but-validated values: clamp to sane meanings */
    if (!(s->p.temperature > 0) || !isfinite(s->p.temperature))
        s->p.temperature = 0;
    if (s->p.top_k < 0 || (uint32_t)s->p.top_k > n_vocab)
        s->p.top_k = 0;
    if (!(s->p.top_p < 1) || !isfinite(s->p.top_p))
        s->p.top_p = 1;
    if (!(s->p.min_p > 0) || !isfinite(s->p.min_p))
        s->p.min_p = 0;
    if (s->p.min_p > 1)
        s->p.min_p = 1;
    if (!(s->p.repeat_penalty > 0) || !isfinite(s->p.repeat_penalty))
        s->p.repeat_penalty = 1;
    if (s->p.repeat_last_n < 0)
        s->p.repeat_last_n = 0;
    if ((uint32_t)s->p.repeat_last_n > 65536)
        s->p.repeat_last_n = 65536;
    s->rng = splitmix64(p->seed);
    if (s->rng == 0)
        s->rng = 1;
    s->cand = malloc(sizeof(rl_sample_cand) * n_vocab);
    s->seen = calloc((n_vocab + 7) / 8, 1);
    bool pen = s->p.repeat_last_n > 0 && s->p.repeat_penalty != 1;
    if (pen) {
        s->recent = malloc(sizeof(int32_t) * (size_t)s->p.repeat_last_n);
        s->pen_id = malloc(sizeof(int32_t) * (size_t)s->p.repeat_last_n);
        s->pen_val = malloc(sizeof(float) * (size_t)s->p.repeat_last_n);
    }
    if (!s->cand || !s->seen || (pen && (!s->recent || !s->pen_id || !s->pen_val))) {
        rl_sample_free(s);
        return -ENOMEM;
    }
    return 0;
}

void rl_sample_free(rl_sampler *s)
{
    free(s->cand);
    free(s->q);
    free(s->kept);
    free(s->ktmp);
    free(s->seen);
    free(s->recent);
    free(s->pen_id);
    free(s->pen_val);
    s->pen_id = NULL;
    s->pen_val = NULL;
    s->cand = NULL;
    s->q = NULL;
    s->kept = s->ktmp = NULL;
    s->scratch_cap = 0;
    s->seen = NULL;
    s->recent = NULL;
}

void rl_sample_accept(rl_sampler *s, int32_t tok)
{
    if (!s->recent)
        return;
    s->recent[s->head] = tok;
    s->head = (s->head + 1) % (uint32_t)s->p.repeat_last_n;
    if (s->n_recent < (uint32_t)s->p.repeat_last_n)
        s->n_recent++;
}

static void apply_penalty(rl_sampler *s, float *logits)
{
    float pen = s->p.repeat_penalty;
    for (uint32_t i = 0; i < s->n_recent; i++) {
        int32_t t = s->recent[i];
        if (t < 0 || (uint32_t)t >= s->n_vocab || (s->seen[t >> 3] & (1u << (t & 7))))
            continue;
        s->seen[t >> 3] |= (uint8_t)(1u << (t & 7));
        s->pen_id[s->n_pen] = t;
        s->pen_val[s->n_pen++] = logits[t];
        logits[t] = logits[t] > 0 ? logits[t] / pen : logits[t] * pen;
    }
    for (uint32_t i = 0; i < s->n_recent; i++) {
        int32_t t = s->recent[i];
        if (t >= 0 && (uint32_t)t < s->n_vocab)
            s->seen[t >> 3] = 0;
    }
}

/* The candidates' order: descending by logit, ties by lower id (candidates
 * hold no NaN), a total order, so results never depend on a sort's stability. */
static inline int cand_before(const rl_sample_cand *a, const rl_sample_cand *b)
{
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int cand_cmp(const void *a, const void *b)
{
    return cand_before(a, b) ? -1 : cand_before(b, a) ? 1 : 0;
}

/* The first largest logit; NaN never wins (the device's argmax agrees). */
static int32_t argmax(const float *logits, uint32_t n)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (logits[i] > logits[best] || (isnan(logits[best]) && !isnan(logits[i])))
            best = i;
    return (int32_t)best;
}


/* h[0..n) is a heap whose root comes last in the candidates' order: restore
 * it below i. */
static void heap_down(rl_sample_cand *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && cand_before(&h[m], &h[l]))
            m = l;
        if (r < n && cand_before(&h[m], &h[r]))
            m = r;
        if (m == i)
            return;
        rl_sample_cand t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void heap_up(rl_sample_cand *h, uint32_t i)
{
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!cand_before(&h[p], &h[i]))
            return;
        rl_sample_cand t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

/* Offer x to the k best kept in the heap c[0..nc): taken while the heap has
 * room, else in place of its root when x comes before it. Returns the new
 * count. (Inline: the scan's hot loop; the rare insertions stay calls.) */
static inline uint32_t heap_offer(rl_sample_cand *c, uint32_t nc, uint32_t k, rl_sample_cand x)
{
    if (nc < k) {
        c[nc] = x;
        heap_up(c, nc);
        return nc + 1;
    }
    if (cand_before(&x, &c[0])) {
        c[0] = x;
        heap_down(c, nc, 0);
    }
    return nc;
}

/* The candidates: every token whose logit is within 40 / inv_t of mx (a NaN
 * logit as -inf; with mx infinite, the logits equal to it). With k > 0 the k
 * best under cand_cmp, sorted (picked through a heap of k: O(n log k) instead
 * of sorting the vocabulary for every token);
 * with k = 0 all of them in id order, *best the first largest (the draw
 * orders only as much of them as it needs). Returns the count. */
static uint32_t candidates(rl_sampler *s, const float *logits, float mx, float inv_t, uint32_t k, uint32_t *best)
{
    rl_sample_cand *c = s->cand;
    uint32_t nc = 0;
    *best = 0;
    for (uint32_t i = 0; i < s->n_vocab; i++) {
        float z = (logits[i] - mx) * inv_t;
        if (!(z > -40.f || isnan(z)))
            continue;
        rl_sample_cand x = {isnan(logits[i]) ? -INFINITY : logits[i], (int32_t)i};
        if (k == 0) {
            if (nc && x.logit > c[*best].logit)
                *best = nc;
            c[nc++] = x;
        } else {
            nc = heap_offer(c, nc, k, x);
        }
    }
    if (k > 0)
        qsort(c, nc, sizeof(*c), cand_cmp);
    return nc;
}

/* Penalty applied, not greedy: the candidates in two passes (maximum, then
 * the threshold and top-k), then the draw. */
static int32_t sample_two_pass(rl_sampler *s, float *logits, float inv_t)
{
    uint32_t n = s->n_vocab;
    float mx = logits[argmax(logits, n)];
    /* Candidates whose probability relative to the best is below e^-40 can
     * never be drawn by a double-precision uniform; skip them up front. */
    uint32_t best, k = s->p.top_k > 0 ? (uint32_t)s->p.top_k : 0;
    uint32_t nc = candidates(s, logits, mx, inv_t, k, &best);
    if (nc == 0)
        return argmax(logits, n);
    return rl_sample_draw(s, s->cand, nc, best, k > 0, inv_t);
}

/* The k best of logits under cand_cmp in one pass with their maximum (for
 * top_k > 0), then the threshold on the k alone: for finite logits and
 * temperature the threshold keeps an upper set of the order, so this is the
 * two-pass result. -1 when a logit is NaN or infinite (there a candidate's z
 * can be NaN, which passes whatever its rank): then the two-pass path.
 * Returns the candidates' count, sorted. */
static int64_t top_k_one_pass(rl_sampler *s, const float *logits, float inv_t, uint32_t k)
{
    rl_sample_cand *c = s->cand;
    uint32_t nc = 0;
    float mx = logits[0];
    for (uint32_t i = 0; i < s->n_vocab; i++) {
        float v = logits[i];
        if (!isfinite(v))
            return -1;
        mx = v > mx ? v : mx;
        nc = heap_offer(c, nc, k, (rl_sample_cand){v, (int32_t)i});
    }
    qsort(c, nc, sizeof(*c), cand_cmp);
    uint32_t keep = 0;
    while (keep < nc && (c[keep].logit - mx) * inv_t > -40.f)
        keep++;
    return keep;
}

int32_t rl_sample_next(rl_sampler *s, float *logits)
{
    uint32_t n = s->n_vocab;
    s->n_pen = 0;
    if (s->recent && s->n_recent)
        apply_penalty(s, logits);
    if (s->p.temperature <= 0 || s->p.top_k == 1)
        return argmax(logits, n);
    float inv_t = 1.f / s->p.temperature;
    if (s->p.top_k > 0 && isfinite(inv_t)) {
        int64_t nc = top_k_one_pass(s, logits, inv_t, (uint32_t)s->p.top_k);
        if (nc > 0)
            return rl_sample_draw(s, s->cand, (uint32_t)nc, 0, true, inv_t);
        if (nc == 0)
            return argmax(logits, n);
    }
    return sample_two_pass(s, logits, inv_t);
}

float rl_sample_raw_logit(const rl_sampler *s, const float *logits, int32_t tok)
{
    for (uint32_t i = 0; i < s->n_pen; i++)
        if (s->pen_id[i] == tok)
            return s->pen_val[i];
    return logits[tok];
}

uint32_t rl_sample_top_only(const rl_sampler *s, uint32_t max_k)
{
    if ((s->recent && s->n_recent) || max_k == 0)
        return 0;
    if (s->p.temperature <= 0 || s->p.top_k == 1) /* greedy: the best alone */
        return 1;
    if (s->p.top_k <= 1 || (uint32_t)s->p.top_k > max_k || !isfinite(1.f / s->p.temperature))
        return 0;
    return (uint32_t)s->p.top_k;
}

int32_t rl_sample_next_top(rl_sampler *s, const rl_sample_cand *c, uint32_t k)
{
    /* top_k_one_pass's result for a finite row: the k best (one set in one
     * order under cand_cmp), then the threshold against the best */
    s->n_pen = 0;
    if (s->p.temperature <= 0 || s->p.top_k == 1)
        return c[0].id; /* argmax's choice: the lowest id of the largest */
    float inv_t = 1.f / s->p.temperature;
    uint32_t keep = 0;
    while (keep < k && (c[keep].logit - c[0].logit) * inv_t > -40.f)
        keep++;
    return rl_sample_draw(s, c, keep, 0, true, inv_t);
}
