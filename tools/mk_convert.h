/* mk_convert.h - shared by ringlm-mkmodel and ringlm-quantize: produce a
 * tensor's rows as floats, convert them to the target type on several
 * threads, and stream them into a GGUF writer chunk by chunk (so a 7B model
 * never has to be held in memory). */
#ifndef MK_CONVERT_H
#define MK_CONVERT_H

#include <stdint.h>

#include "rl_gguf.h"

/* Write the float values of row `row` (n elements) into dst. Called from
 * several threads at once for different rows. */
typedef void (*mk_row_fn)(void *ctx, int64_t row, float *dst, int64_t n);

/* Stream nrows rows of ne0 elements, converted to type, as the next tensor's data. */
int mk_stream_tensor(rl_gguf_writer *w, rl_type type, int64_t ne0, int64_t nrows, mk_row_fn gen, void *ctx,
                     int threads);

/* The type a 2-D weight with rows of ne0 gets when `want` is asked for: want
 * itself when ne0 fits its block size, else Q8_0 if that fits (for K-quants),
 * else F32. Fallbacks are counted for mk_report_fallbacks. */
rl_type mk_pick_type(rl_type want, int64_t ne0, const char *name);
/* Print one note per fallback type used so far. */
void mk_report_fallbacks(const char *want);

/* The general.file_type value (llama.cpp's ftype numbering) for a model mostly of type t. */
uint32_t mk_file_type(rl_type t);

#endif
