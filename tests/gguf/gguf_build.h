/* gguf_build.h - tests only: build raw GGUF bytes field by field, so tests can
 * write valid files and then corrupt exactly one field. */
#ifndef GGUF_BUILD_H
#define GGUF_BUILD_H

#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct gb {
    uint8_t *p;
    size_t n, cap;
} gb;

static inline void gb_raw(gb *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static inline void gb_u8(gb *b, uint8_t v) { gb_raw(b, &v, 1); }
static inline void gb_u16(gb *b, uint16_t v) { gb_raw(b, &v, 2); }
static inline void gb_u32(gb *b, uint32_t v) { gb_raw(b, &v, 4); }
static inline void gb_u64(gb *b, uint64_t v) { gb_raw(b, &v, 8); }
static inline void gb_str(gb *b, const char *s)
{
    gb_u64(b, strlen(s));
    gb_raw(b, s, strlen(s));
}
static inline void gb_pad(gb *b, size_t align)
{
    while (b->n % align) gb_u8(b, 0);
}
/* Header: magic, version, counts. */
static inline void gb_header(gb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    gb_raw(b, "GGUF", 4);
    gb_u32(b, version);
    gb_u64(b, n_tensors);
    gb_u64(b, n_kv);
}
/* A tensor info record with n_dims dims. */
static inline void gb_tinfo(gb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off)
{
    gb_str(b, name);
    gb_u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++) gb_u64(b, ne[i]);
    gb_u32(b, type);
    gb_u64(b, off);
}
/* Copy into an exact-size heap buffer, so ASan catches any read past the end. */
static inline uint8_t *gb_exact(const gb *b, size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    memcpy(p, b->p, n);
    return p;
}

#endif
