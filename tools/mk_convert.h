/* mk_convert.h - shared by ringlm-mkmodel and ringlm-quantize: produce a
 * tensor's rows as floats, convert them to the target type on several
 * threads, and stream them into a GGUF writer chunk by chunk (so a 7B model
 * never has to be held in memory). */
#ifndef MK_CONVERT_H
#define MK_CONVERT_H

#include <stdbool.h>
#include <stdint.h>

#include "rl_gguf.h"

/* Write the float values of row `row` (n elements) into dst. Called from
 * several threads at once for different rows. */
typedef void (*mk_row_fn)(void *ctx, int64_t row, float *dst, int64_t n);

/* Stream nrows rows of ne0 elements, converted to type, as the next tensor's data. */
int mk_stream_tensor(rl_gguf_writer *w, rl_type type, int64_t ne0, int64_t nrows, mk_row_fn gen, void *ctx,
                     int threads);

/* The type a 2-D weight with rows of ne0 gets when `want` is asked for: want
 * itself when ne0 fits its block size, else its 32-weight stand-in if ne0 is
 * a multiple of 32 (Q4_K -> Q5_0, Q5_K -> Q5_1, others -> Q8_0), else F32.
 * Fallbacks are counted for mk_report_fallbacks. */
rl_type mk_pick_type(rl_type want, int64_t ne0, const char *name);
/* Print one note per fallback type used so far. */
void mk_report_fallbacks(const char *want);

/* The general.file_type value (llama.cpp's ftype numbering) for a model mostly of type t. */
uint32_t mk_file_type(rl_type t);

/* A per-tensor type rule: one type for every matrix, or a mix like the
 * real-world files (Q4_K_M / Q5_K_M: output.weight Q6_K, attn_v and ffn_down
 * Q6_K in even-numbered layers, every other matrix Q4_K / Q5_K), then
 * PATTERN=TYPE overrides for matrices whose name contains PATTERN (the last
 * match wins). */
#define MK_MAX_OVERRIDES 16
typedef struct mk_rule {
    rl_type base;     /* every matrix, or the mix's main type */
    bool mix;
    char name[16];    /* as given ("Q4_K_M") */
    int n_over;
    char pat[MK_MAX_OVERRIDES][64];
    rl_type over[MK_MAX_OVERRIDES];
} mk_rule;
/* A type or mix name; -1 when unknown or not a weight type. */
int mk_rule_init(mk_rule *r, const char *type_name);
/* Add "PATTERN=TYPE"; -1 when malformed, the type is unusable or there are too many. */
int mk_rule_add_override(mk_rule *r, const char *spec);
/* The type the rule gives the matrix `name` (layer from "blk.N." in it). */
rl_type mk_rule_type(const mk_rule *r, const char *name);
/* general.file_type for the rule. */
uint32_t mk_rule_file_type(const mk_rule *r);

#endif
