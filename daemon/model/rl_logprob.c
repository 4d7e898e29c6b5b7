/* rl_logprob.c - log-probabilities of a logits row. */
#include "rl_logprob.h"

#include <math.h>

/* a before b: larger logit, ties by lower id (NaN as -inf) */
static int lp_before(float a, int32_t ia, float b, int32_t ib)
{
    return a > b || (a == b && ia < ib);
}

void rl_logprob_row(const float *row, uint32_t n_vocab, uint32_t n, rl_lp_norm *nm, rl_token_logprob *top)
{
    float mx = -INFINITY;
    uint32_t n_inf = 0, have = 0;
    for (uint32_t i = 0; i < n_vocab; i++) {
        float x = isnan(row[i]) ? -INFINITY : row[i];
        mx = x > mx ? x : mx;
        n_inf += x == INFINITY;
        if (n == 0 || (have == n && !lp_before(x, (int32_t)i, top[n - 1].logprob, top[n - 1].id)))
            continue;
        /* insert into the sorted n best (raw logits for now) */
        uint32_t j = have < n ? have++ : n - 1;
        while (j > 0 && lp_before(x, (int32_t)i, top[j - 1].logprob, top[j - 1].id)) {
            top[j] = top[j - 1];
            j--;
        }
        top[j] = (rl_token_logprob){(int32_t)i, x};
    }
    double sum = 0;
    if (isfinite(mx))
        for (uint32_t i = 0; i < n_vocab; i++)
            if (!isnan(row[i]))
                sum += exp((double)row[i] - mx);
    *nm = (rl_lp_norm){.max = mx, .lse = isfinite(mx) ? log(sum) : 0, .n_max_inf = n_inf, .n_vocab = n_vocab};
    for (uint32_t j = 0; j < have; j++)
        top[j].logprob = rl_logprob_value(nm, top[j].logprob);
    for (uint32_t j = have; j < n; j++) /* n > n_vocab */
        top[j] = (rl_token_logprob){-1, -INFINITY};
}

float rl_logprob_value(const rl_lp_norm *nm, float x)
{
    if (isnan(x))
        return -INFINITY;
    if (nm->max == INFINITY) /* the infinite logits share everything */
        return x == INFINITY ? (float)-log((double)nm->n_max_inf) : -INFINITY;
    if (nm->max == -INFINITY) /* no finite logit: uniform */
        return (float)-log((double)nm->n_vocab);
    return (float)((double)x - nm->max - nm->lse);
}
