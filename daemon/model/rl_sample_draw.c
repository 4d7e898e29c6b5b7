/* rl_sample_draw.c - the sampler's draw from its candidates: probabilities at
 * the temperature, min-p, top-p and the uniform from the sequence's RNG.
 *
 * The candidates come either in the sampler's order (logit descending, ties by
 * lower id: top-k's k, or a device's) or in id order (no top-k: the whole
 * vocabulary within reach). Every step is defined so that both give the same
 * token for the same set:
 * - the normalizer is summed in fixed point, so its value does not depend on
 *   the order;
 * - min-p keeps a set (q >= min_p x the best's q), not a prefix;
 * - only top-p and the draw walk the order, so an unordered set is sorted
 *   after min-p has thinned it (radix, stable from id order). */
#include "rl_sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rl_ops.h"

static double rng_uniform(uint64_t *st)
{
    uint64_t x = *st;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *st = x;
    return (double)((x * 0x2545f4914f6cdd1dull) >> 11) / 9007199254740992.0; /* [0, 1) */
}

/* v x 2^80 as an integer (each value rounded on its own, so the sum is the
 * same in any order); 0 for NaN, negatives and zero. v <= 1 here. */
static unsigned __int128 fix80(float v)
{
    if (!(v > 0))
        return 0;
    if (v > 1)
        v = 1;
    uint32_t b;
    memcpy(&b, &v, sizeof b);
    int e = (int)(b >> 23);
    uint32_t m = b & 0x7fffffu;
    if (e)
        m |= 0x800000u;
    else
        e = 1;
    int sh = e - 150 + 80; /* v = m 2^(e - 150) */
    if (sh >= 0)
        return (unsigned __int128)m << sh;
    return -sh < 24 ? (unsigned __int128)(m >> -sh) : 0;
}

/* q[i] = exp((c[i].logit - top) * inv_t), top the best logit; returns the
 * inverse of their sum (0 when it is 0). A best of +inf shares everything
 * among the +inf logits; no finite logit at all (-inf) gives each the same. */
static double weights(const rl_sample_cand *c, uint32_t nc, float top, float inv_t, float *q)
{
    if (isinf(top)) {
        for (uint32_t i = 0; i < nc; i++)
            q[i] = top > 0 ? (float)(c[i].logit == top) : 1.f;
    } else {
        for (uint32_t i = 0; i < nc; i++)
            q[i] = (c[i].logit - top) * inv_t;
        rl_ops_exp(q, q, (int)nc);
    }
    unsigned __int128 acc = 0;
    for (uint32_t i = 0; i < nc; i++)
        acc += fix80(q[i]);
    double sum = ldexp((double)acc, -80);
    return sum > 0 ? 1.0 / sum : 0;
}

/* ---- ordering the kept candidates ---- */

static inline int kept_before(const rl_sample_kept *a, const rl_sample_kept *b)
{
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

static int kept_cmp(const void *a, const void *b)
{
    return kept_before(a, b) ? -1 : kept_before(b, a) ? 1 : 0;
}

/* An order-preserving 32-bit key of the logit, descending; -0 as +0. */
static uint32_t desc_key(float v)
{
    uint32_t u;
    if (v == 0)
        v = 0;
    memcpy(&u, &v, sizeof u);
    u = (u & 0x80000000u) ? ~u : u | 0x80000000u;
    return ~u;
}

/* Sort k[0..n) (in id order) best first: LSD radix on the key, 3 passes of 11
 * bits, stable, so equal logits keep ascending ids. tmp holds n. */
static void radix_sort_desc(rl_sample_kept *k, uint32_t n, rl_sample_kept *tmp)
{
    rl_sample_kept *src = k, *dst = tmp;
    for (int shift = 0; shift < 33; shift += 11) {
        uint32_t cnt[2048] = {0};
        for (uint32_t i = 0; i < n; i++)
            cnt[(desc_key(src[i].logit) >> shift) & 2047u]++;
        for (uint32_t b = 0, sum = 0; b < 2048; b++) {
            uint32_t t = cnt[b];
            cnt[b] = sum;
            sum += t;
        }
        for (uint32_t i = 0; i < n; i++)
            dst[cnt[(desc_key(src[i].logit) >> shift) & 2047u]++] = src[i];
        rl_sample_kept *t = src;
        src = dst;
        dst = t;
    }
    if (src != k)
        memcpy(k, src, sizeof(*k) * n);
}

/* The shortest prefix of k[0..n) (in the order) whose q reach top_p: *len;
 * false when the whole of it falls short (*len = n). */
static bool top_p_walk(const rl_sample_kept *k, uint32_t n, double top_p, uint32_t *len)
{
    double cum = 0;
    for (uint32_t i = 0; i < n; i++) {
        cum += k[i].q;
        if (cum >= top_p) {
            *len = i + 1;
            return true;
        }
    }
    *len = n;
    return false;
}

static bool scratch(rl_sampler *s, uint32_t n)
{
    if (n <= s->scratch_cap)
        return true;
    float *q = realloc(s->q, sizeof(*q) * n);
    if (q)
        s->q = q;
    rl_sample_kept *k = realloc(s->kept, sizeof(*k) * n);
    if (k)
        s->kept = k;
    rl_sample_kept *t = realloc(s->ktmp, sizeof(*t) * 2 * (size_t)n);
    if (t)
        s->ktmp = t;
    if (!q || !k || !t)
        return false;
    s->scratch_cap = n;
    return true;
}

int32_t rl_sample_draw(rl_sampler *s, const rl_sample_cand *c, uint32_t nc, uint32_t best, bool sorted, float inv_t)
{
    if (nc == 0) /* (callers pass at least the best) */
        return -1;
    if (!scratch(s, nc))
        return c[best].id; /* out of memory: the best */
    float *q = s->q;
    double inv_sum = weights(c, nc, c[best].logit, inv_t, q);
    /* min-p: the set with a weight >= min_p x the best's (which always stays);
     * only those are normalized */
    float lim = s->p.min_p > 0 ? s->p.min_p * q[best] : -1.f;
    rl_sample_kept *k = s->kept;
    uint32_t nk = 0;
    for (uint32_t i = 0; i < nc; i++)
        if (q[i] >= lim || i == best)
            k[nk++] = (rl_sample_kept){c[i].logit, c[i].id, q[i] > 0 ? (float)(q[i] * inv_sum) : 0.f};
    /* top-p: the shortest prefix in the order reaching top_p. Unordered and
     * many, the likely ones are sorted first, and all of them only when the
     * walk cannot be trusted to stop among those. */
    uint32_t n = nk;
    bool done = false;
    if (!sorted && s->p.top_p < 1 && nk > 1024) {
        /* Those with q >= t hold all but nk t <= (1 - top_p) / 2 of the mass,
         * so the prefix lies among them unless it reaches q near t, where
         * rounding may order a candidate outside before one inside: walked
         * sorted, and trusted when it stops at q >= 2t. */
        double t = (1.0 - s->p.top_p) * 0.5 / nk;
        rl_sample_kept *u = s->ktmp + s->scratch_cap;
        uint32_t m = 0;
        for (uint32_t i = 0; i < nk; i++)
            if (k[i].q >= t)
                u[m++] = k[i];
        if (m <= nk / 2) { /* (else sorting them all costs about the same) */
            radix_sort_desc(u, m, s->ktmp);
            if (top_p_walk(u, m, s->p.top_p, &n) && u[n - 1].q >= 2 * t) {
                k = u;
                done = true;
            }
        }
    }
    if (!done) { /* everything kept, in the order */
        if (!sorted && nk > 64)
            radix_sort_desc(k, nk, s->ktmp); /* (built in id order: the ties' order) */
        else if (!sorted)
            qsort(k, nk, sizeof(*k), kept_cmp);
        if (s->p.top_p < 1)
            top_p_walk(k, nk, s->p.top_p, &n);
    }
    double total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += k[i].q;
    double u = rng_uniform(&s->rng) * total, acc = 0;
    for (uint32_t i = 0; i < n; i++) {
        acc += k[i].q;
        if (u < acc)
            return k[i].id;
    }
    return k[n - 1].id;
}
