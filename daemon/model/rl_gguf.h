/* rl_gguf.h - GGUF v2/v3 reader (over mmap or a memory buffer) and writer.
 *
 * The reader checks every count, offset and size against the file before use;
 * on failure it returns a negative errno and writes a message naming what is
 * wrong into err. Strings point into the mapping and are NOT NUL-terminated.
 */
#ifndef RL_GGUF_H
#define RL_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rl_types.h"

typedef enum rl_gguf_vtype {
    RL_GGUF_U8 = 0, RL_GGUF_I8 = 1, RL_GGUF_U16 = 2, RL_GGUF_I16 = 3,
    RL_GGUF_U32 = 4, RL_GGUF_I32 = 5, RL_GGUF_F32 = 6, RL_GGUF_BOOL = 7,
    RL_GGUF_STR = 8, RL_GGUF_ARR = 9, RL_GGUF_U64 = 10, RL_GGUF_I64 = 11,
    RL_GGUF_F64 = 12
} rl_gguf_vtype;

typedef struct rl_gguf_str {
    const char *ptr;
    uint64_t len;
} rl_gguf_str;

typedef struct rl_gguf_kv {
    rl_gguf_str key;
    rl_gguf_vtype type;      /* value type */
    rl_gguf_vtype arr_type;  /* element type when type == RL_GGUF_ARR */
    uint64_t arr_n;          /* element count when type == RL_GGUF_ARR */
    const uint8_t *data;     /* the raw value (scalars, fixed-size arrays) */
    rl_gguf_str *strs;       /* parsed elements of a string array (else NULL) */
    rl_gguf_str str;         /* the value of a string */
} rl_gguf_kv;

#define RL_GGUF_MAX_DIMS 4

typedef struct rl_gguf_tensor {
    char name[128];          /* NUL-terminated copy */
    uint32_t n_dims;
    int64_t ne[RL_GGUF_MAX_DIMS]; /* ne[0] is the contiguous (row) dimension; unused = 1 */
    rl_type type;
    uint64_t offset;         /* from the start of the data section */
    uint64_t nbytes;
    const void *data;        /* inside the mapping, aligned */
} rl_gguf_tensor;

typedef struct rl_gguf {
    uint32_t version;
    uint32_t alignment;
    uint64_t n_kv, n_tensors;
    rl_gguf_kv *kv;
    rl_gguf_tensor *tensors;
    const uint8_t *base;     /* whole file */
    size_t size;
    bool mapped;             /* base was mmap'ed by rl_gguf_open */
} rl_gguf;

int rl_gguf_open(const char *path, rl_gguf **out, char *err, size_t errlen);
/* Parse a buffer the caller keeps alive until rl_gguf_close (used by fuzzers/tests). */
int rl_gguf_open_mem(const void *data, size_t size, rl_gguf **out, char *err, size_t errlen);
void rl_gguf_close(rl_gguf *g);

/* Lookups return NULL/false when missing or of an incompatible type. */
const rl_gguf_kv *rl_gguf_get(const rl_gguf *g, const char *key);
/* Any integer type whose value fits. */
bool rl_gguf_get_u32(const rl_gguf *g, const char *key, uint32_t *out);
bool rl_gguf_get_i64(const rl_gguf *g, const char *key, int64_t *out);
/* F32 or F64 (and integers). */
bool rl_gguf_get_f32(const rl_gguf *g, const char *key, float *out);
bool rl_gguf_get_bool(const rl_gguf *g, const char *key, bool *out);
bool rl_gguf_get_str(const rl_gguf *g, const char *key, rl_gguf_str *out);
/* "{arch}.{suffix}" helpers, e.g. rl_gguf_get_arch_u32(g, "llama", "block_count", &n). */
bool rl_gguf_get_arch_u32(const rl_gguf *g, const char *arch, const char *suffix, uint32_t *out);
bool rl_gguf_get_arch_f32(const rl_gguf *g, const char *arch, const char *suffix, float *out);
const rl_gguf_tensor *rl_gguf_find_tensor(const rl_gguf *g, const char *name);
/* Bytes of one element of a fixed-size value type; 0 for STR, ARR and unknown types. */
size_t rl_gguf_vtype_size(uint32_t t);
/* Compare an rl_gguf_str with a C string. */
bool rl_gguf_str_eq(rl_gguf_str s, const char *c);
/* Element i of a numeric array (added by modeldata). kv->data is only
 * byte-aligned inside the file, so read arrays through these (or memcpy), not
 * through a cast pointer. _f32 takes float and integer elements, _i64 integer
 * elements whose value fits; false when i >= arr_n or the type does not fit. */
bool rl_gguf_arr_f32(const rl_gguf_kv *kv, uint64_t i, float *out);
bool rl_gguf_arr_i64(const rl_gguf_kv *kv, uint64_t i, int64_t *out);

/* Writer: collects metadata and tensors, then writes a GGUF v3 file. */
typedef struct rl_gguf_writer rl_gguf_writer;
rl_gguf_writer *rl_gguf_writer_new(void);
void rl_gguf_writer_free(rl_gguf_writer *w);
int rl_gguf_writer_u32(rl_gguf_writer *w, const char *key, uint32_t v);
int rl_gguf_writer_i32(rl_gguf_writer *w, const char *key, int32_t v);
int rl_gguf_writer_f32(rl_gguf_writer *w, const char *key, float v);
int rl_gguf_writer_bool(rl_gguf_writer *w, const char *key, bool v);
int rl_gguf_writer_str(rl_gguf_writer *w, const char *key, const char *v);
/* Arrays of fixed-size elements (u8..f64): data holds n elements of type et. */
int rl_gguf_writer_arr(rl_gguf_writer *w, const char *key, rl_gguf_vtype et, const void *data, uint64_t n);
int rl_gguf_writer_arr_str(rl_gguf_writer *w, const char *key, const char *const *v, uint64_t n);
/* Copy an existing key/value (any type) from a reader. */
int rl_gguf_writer_copy_kv(rl_gguf_writer *w, const rl_gguf_kv *kv);
/* Add a tensor; data (nbytes = row size * rows) is copied. */
int rl_gguf_writer_tensor(rl_gguf_writer *w, const char *name, rl_type type, uint32_t n_dims,
                          const int64_t *ne, const void *data, uint64_t nbytes);
int rl_gguf_writer_write(rl_gguf_writer *w, const char *path);

/* Streaming writer (added by modeldata), for files too big to hold in memory:
 * declare every tensor with rl_gguf_writer_tensor_decl (no data), then
 * rl_gguf_writer_begin writes the header, metadata and tensor infos,
 * rl_gguf_writer_put appends data bytes in declaration order (a tensor may be
 * written in several pieces; a piece may not run past the current tensor's
 * end), and rl_gguf_writer_finish checks all were written and closes the file.
 * Do not mix with rl_gguf_writer_tensor. */
int rl_gguf_writer_tensor_decl(rl_gguf_writer *w, const char *name, rl_type type, uint32_t n_dims,
                               const int64_t *ne);
int rl_gguf_writer_begin(rl_gguf_writer *w, const char *path);
int rl_gguf_writer_put(rl_gguf_writer *w, const void *data, uint64_t nbytes);
int rl_gguf_writer_finish(rl_gguf_writer *w);
/* More scalar setters (added by modeldata). A key set twice is rejected (-EEXIST).
 * Setting "general.alignment" (u32, power of two) changes the data alignment. */
int rl_gguf_writer_u64(rl_gguf_writer *w, const char *key, uint64_t v);
int rl_gguf_writer_i64(rl_gguf_writer *w, const char *key, int64_t v);
int rl_gguf_writer_f64(rl_gguf_writer *w, const char *key, double v);

#endif
