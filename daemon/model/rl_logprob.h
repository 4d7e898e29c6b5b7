/* rl_logprob.h - log-probabilities of a logits row: the softmax's normalizer
 * and the most likely tokens, for requests that ask for them
 * (rl_seq_desc.n_logprobs). */
#ifndef RL_LOGPROB_H
#define RL_LOGPROB_H

#include <stdint.h>

#include "rl_engine.h"

/* The normalizer of a row (NaN counts as -inf). */
typedef struct rl_lp_norm {
    float max;     /* the largest logit */
    double lse;    /* log(sum exp(logit - max)) over the finite ones, when max is finite */
    uint32_t n_max_inf; /* logits equal to +inf (they share all the mass) */
    uint32_t n_vocab;
} rl_lp_norm;

/* The normalizer of row[0..n_vocab), and its n most likely tokens with their
 * log-probabilities in top[0..n), best first, ties by lower id (beyond n_vocab:
 * id -1, -inf). */
void rl_logprob_row(const float *row, uint32_t n_vocab, uint32_t n, rl_lp_norm *nm, rl_token_logprob *top);
/* The log-probability of a token whose logit is x in that row. */
float rl_logprob_value(const rl_lp_norm *nm, float x);

#endif
