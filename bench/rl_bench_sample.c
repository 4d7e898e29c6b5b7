/* rl_bench_sample.c - ringlm-bench sample: the host sampler alone.
 *
 *   ringlm-bench sample [--vocab N] [--draws D] [--temperature T] [--top-k K]
 *                       [--top-p P] [--min-p M] [--json]
 *
 * D draws from one sampler (seed 1) over logits of N tokens (a fixed
 * pseudo-random row, one value nudged per draw so the rows differ), the
 * library's default parameters unless given: microseconds per draw, and a
 * checksum of the tokens drawn (equal checksums: equal tokens). */
#include "rl_bench.h"
#include "rl_ops.h"
#include "rl_sample.h"

#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int rl_bench_sample_main(int argc, char **argv)
{
    uint32_t vocab = 32000, draws = 200;
    rl_sampling p = {.temperature = 0.8f, .top_k = 40, .top_p = 0.95f, .min_p = 0.05f, .repeat_penalty = 1.0f,
                     .repeat_last_n = 64, .seed = 1};
    int json = 0, ch;
    float skew = 1; /* logits 20 u^skew - 8: 1 flat, higher: few tokens near the top, as a model's */
    static const struct option lo[] = {
        {"vocab", 1, 0, 'v'}, {"draws", 1, 0, 'd'}, {"temperature", 1, 0, 't'}, {"top-k", 1, 0, 'k'},
        {"top-p", 1, 0, 'p'}, {"min-p", 1, 0, 'm'}, {"json", 0, 0, 'j'}, {"help", 0, 0, 'h'},
        {"skew", 1, 0, 's'}, {0, 0, 0, 0},
    };
    optind = 1;
    while ((ch = getopt_long(argc, argv, "v:d:t:k:p:m:jhs:", lo, NULL)) != -1) {
        switch (ch) {
        case 'v': vocab = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'd': draws = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 't': p.temperature = strtof(optarg, NULL); break;
        case 'k': p.top_k = atoi(optarg); break;
        case 'p': p.top_p = strtof(optarg, NULL); break;
        case 'm': p.min_p = strtof(optarg, NULL); break;
        case 'j': json = 1; break;
        case 's': skew = strtof(optarg, NULL); break;
        default:
            fprintf(ch == 'h' ? stdout : stderr, "usage: ringlm-bench sample [--vocab N] [--draws D] [--temperature T] "
                                                 "[--top-k K] [--top-p P] [--min-p M] [--skew S] [--json]\n");
            return ch == 'h' ? 0 : 2;
        }
    }
    if (vocab < 2 || vocab > (1u << 24) || draws == 0 || draws > 1000000) {
        fprintf(stderr, "ringlm-bench sample: --vocab 2..16777216, --draws 1..1000000\n");
        return 2;
    }
    rl_ops_init(); /* the SIMD kernels the engines use (exp) */
    rl_sampler s;
    float *row = malloc(sizeof(float) * vocab), *w = malloc(sizeof(float) * vocab);
    if (!row || !w || rl_sample_init(&s, &p, vocab) < 0) {
        fprintf(stderr, "ringlm-bench sample: out of memory\n");
        free(row), free(w);
        return 1;
    }
    uint64_t x = 88172645463325252ull;
    for (uint32_t i = 0; i < vocab; i++) { /* logits spread over ~20 units, as a model's are */
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        row[i] = powf((float)(x >> 40) / (float)(1u << 24), skew) * 20.0f - 8.0f;
    }
    uint64_t sum = 0;
    double t0 = now_us();
    for (uint32_t d = 0; d < draws; d++) {
        memcpy(w, row, sizeof(float) * vocab);
        w[d % vocab] += 1.0f;
        sum += (uint64_t)rl_sample_next(&s, w);
    }
    double us = (now_us() - t0) / draws;
    if (json)
        printf("{\"bench\":\"sample\",\"vocab\":%u,\"draws\":%u,\"temperature\":%g,\"top_k\":%d,\"top_p\":%g,"
               "\"min_p\":%g,\"skew\":%g,\"us_per_draw\":%.2f,\"token_sum\":%llu}\n",
               vocab, draws, p.temperature, p.top_k, p.top_p, p.min_p, skew, us, (unsigned long long)sum);
    else
        printf("sample: %u-token vocabulary, %u draws: %.2f us per draw (token sum %llu)\n", vocab, draws, us,
               (unsigned long long)sum);
    rl_sample_free(&s);
    free(row), free(w);
    return 0;
}
