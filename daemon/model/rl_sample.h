/* rl_sample.h - token sampling, one sampler per sequence.
 *
 * Order: repetition penalty over the last repeat_last_n tokens (each distinct
 * token once: positive logits divided, negative multiplied), then greedy when
 * temperature <= 0; otherwise top-k, softmax at the temperature, min-p, top-p,
 * and a draw from the sequence's own RNG (seeded by the seed alone, so equal
 * seeds and inputs give equal tokens whatever else runs in the batch). */
#ifndef RL_SAMPLE_H
#define RL_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>

#include "rl_engine.h"
#include "rl_model.h"

typedef rl_logit_cand rl_sample_cand;

/* A candidate the draw keeps, with its probability (rl_sample_draw.c). */
typedef struct rl_sample_kept {
    float logit;
    int32_t id;
    float q;
} rl_sample_kept;

typedef struct rl_sampler {
    rl_sampling p;
    uint32_t n_vocab;
    uint64_t rng;
    int32_t *recent;          /* ring of the last repeat_last_n tokens */
    int32_t *pen_id;          /* the last draw's penalized tokens and their logits before it */
    float *pen_val;
    uint32_t n_pen;
    uint32_t n_recent, head;
    uint8_t *seen;            /* n_vocab bits, scratch for the penalty */
    rl_sample_cand *cand;     /* n_vocab scratch */
    float *q;                 /* the draw's scratch (scratch_cap each), grown on use */
    rl_sample_kept *kept, *ktmp;
    uint32_t scratch_cap;
} rl_sampler;

/* Returns 0 or -ENOMEM. Out-of-range values are clamped to their "off" meaning. */
int rl_sample_init(rl_sampler *s, const rl_sampling *p, uint32_t n_vocab);
void rl_sample_free(rl_sampler *s);
/* Remember a token (prompt or generated) for the repetition penalty. */
void rl_sample_accept(rl_sampler *s, int32_t tok);
/* Choose the next token from logits (n_vocab values, modified in place). */
int32_t rl_sample_next(rl_sampler *s, float *logits);
/* The logit of tok in the row given to the last rl_sample_next as it was
 * before the repetition penalty changed it. */
float rl_sample_raw_logit(const rl_sampler *s, const float *logits, int32_t tok);
/* The draw (rl_sample_draw.c) from nc candidates c, in the sampler's order
 * (sorted: logit descending, ties by lower id) or in id order, c[best] the
 * best of them: probabilities at the temperature (their normalizer summed in
 * fixed point, the same in any order), min-p as a set, top-p and the uniform
 * along the order. The same set gives the same token either way. */
int32_t rl_sample_draw(rl_sampler *s, const rl_sample_cand *c, uint32_t nc, uint32_t best, bool sorted,
                       float inv_t);
/* k > 0 when the next draw can be made from the row's k best logits alone
 * (no repetition penalty pending, and greedy: k = 1, or temperature > 0 with
 * 1 < top_k = k <= max_k), so a device may send those instead of the row; else 0. */
uint32_t rl_sample_top_only(const rl_sampler *s, uint32_t max_k);
/* The next token from c, the k = rl_sample_top_only() best logits of a row
 * whose logits are all finite, best first (logit descending, ties by lower
 * id): the token rl_sample_next gives for the whole row. */
int32_t rl_sample_next_top(rl_sampler *s, const rl_sample_cand *c, uint32_t k);

#endif
