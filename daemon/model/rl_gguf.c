/* rl_gguf.c - GGUF v2/v3 reader over mmap or a memory buffer.
 *
 * Layout (little-endian): "GGUF" u32 version, u64 n_tensors, u64 n_kv,
 * n_kv x {string key, u32 type, value}, n_tensors x {string name, u32 n_dims,
 * u64 ne[n_dims], u32 type, u64 offset}, padding to general.alignment, data.
 * A string is u64 length + bytes. Every read below is bounds-checked against
 * the remaining bytes before it happens; counts are bounded by what could fit.
 */
#include "rl_gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC 0x46554747u /* "GGUF" read as a little-endian u32 */
#define GGUF_DEFAULT_ALIGN 32u
#define GGUF_MAX_KEY 65535u

/* The public struct plus name indexes (open addressing, power-of-two size). */
typedef struct gguf_priv {
    rl_gguf pub;
    uint32_t *kidx, *tidx;   /* slot -> index+1, 0 = empty */
    size_t kcap, tcap;
} gguf_priv;

typedef struct reader {
    const uint8_t *p;
    size_t size, off;
    char *err;
    size_t errlen;
} reader;

static int fail(reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(reader *r, const char *fmt, ...)
{
    if (r->err && r->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err, r->errlen, fmt, ap);
        va_end(ap);
        /* Names and keys come from the file: no control bytes into logs. */
        for (char *c = r->err; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    }
    return -EINVAL;
}

static size_t left(const reader *r) { return r->size - r->off; }

static int need(reader *r, uint64_t n, const char *what)
{
    if (n > left(r))
        return fail(r, "truncated file: %s at offset %zu needs %llu bytes, only %zu left (size %zu)",
                    what, r->off, (unsigned long long)n, left(r), r->size);
    return 0;
}

static int rd_u32(reader *r, uint32_t *v, const char *what)
{
    int rc = need(r, 4, what);
    if (rc) return rc;
    memcpy(v, r->p + r->off, 4);
    r->off += 4;
    return 0;
}

static int rd_u64(reader *r, uint64_t *v, const char *what)
{
    int rc = need(r, 8, what);
    if (rc) return rc;
    memcpy(v, r->p + r->off, 8);
    r->off += 8;
    return 0;
}

static int rd_str(reader *r, rl_gguf_str *s, const char *what)
{
    uint64_t len;
    int rc = rd_u64(r, &len, what);
    if (rc) return rc;
    if (len > left(r))
        return fail(r, "%s: string length %llu at offset %zu exceeds the %zu bytes left (size %zu)",
                    what, (unsigned long long)len, r->off - 8, left(r), r->size);
    s->ptr = (const char *)r->p + r->off;
    s->len = len;
    r->off += (size_t)len;
    return 0;
}

size_t rl_gguf_vtype_size(uint32_t t)
{
    switch (t) {
    case RL_GGUF_U8: case RL_GGUF_I8: case RL_GGUF_BOOL: return 1;
    case RL_GGUF_U16: case RL_GGUF_I16: return 2;
    case RL_GGUF_U32: case RL_GGUF_I32: case RL_GGUF_F32: return 4;
    case RL_GGUF_U64: case RL_GGUF_I64: case RL_GGUF_F64: return 8;
    default: return 0;
    }
}

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static size_t index_cap(uint64_t n)
{
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    return cap;
}

/* Name of entry i, for the key index (kind 0) or the tensor index (kind 1). */
static rl_gguf_str entry_name(const gguf_priv *g, int kind, size_t i)
{
    if (kind == 0) return g->pub.kv[i].key;
    rl_gguf_str s = {g->pub.tensors[i].name, strlen(g->pub.tensors[i].name)};
    return s;
}

/* Insert entry i; returns the index of an existing entry with the same name, or -1. */
static int64_t index_insert(gguf_priv *g, int kind, size_t i)
{
    uint32_t *tab = kind ? g->tidx : g->kidx;
    size_t mask = (kind ? g->tcap : g->kcap) - 1;
    rl_gguf_str s = entry_name(g, kind, i);
    for (size_t slot = hash_bytes(s.ptr, s.len) & mask;; slot = (slot + 1) & mask) {
        if (!tab[slot]) {
            tab[slot] = (uint32_t)(i + 1);
            return -1;
        }
        rl_gguf_str o = entry_name(g, kind, tab[slot] - 1);
        if (o.len == s.len && memcmp(o.ptr, s.ptr, s.len) == 0) return tab[slot] - 1;
    }
}

static int64_t index_find(const gguf_priv *g, int kind, const char *name)
{
    const uint32_t *tab = kind ? g->tidx : g->kidx;
    size_t cap = kind ? g->tcap : g->kcap;
    if (!tab) return -1;
    size_t n = strlen(name);
    for (size_t slot = hash_bytes(name, n) & (cap - 1);; slot = (slot + 1) & (cap - 1)) {
        if (!tab[slot]) return -1;
        rl_gguf_str o = entry_name(g, kind, tab[slot] - 1);
        if (o.len == n && memcmp(o.ptr, name, n) == 0) return tab[slot] - 1;
    }
}

static int parse_kv(reader *r, gguf_priv *g, uint64_t i)
{
    rl_gguf_kv *kv = &g->pub.kv[i];
    char what[64];
    snprintf(what, sizeof what, "key of metadata entry %llu", (unsigned long long)i);
    int rc = rd_str(r, &kv->key, what);
    if (rc) return rc;
    int kl = kv->key.len > 80 ? 80 : (int)kv->key.len;
    if (kv->key.len == 0 || kv->key.len > GGUF_MAX_KEY)
        return fail(r, "metadata entry %llu: key length %llu out of range 1..%u",
                    (unsigned long long)i, (unsigned long long)kv->key.len, GGUF_MAX_KEY);
    uint32_t t;
    if ((rc = rd_u32(r, &t, "metadata value type"))) return rc;
    if (t > RL_GGUF_F64)
        return fail(r, "key '%.*s': unknown value type %u", kl, kv->key.ptr, t);
    kv->type = (rl_gguf_vtype)t;
    kv->data = r->p + r->off;
    if (t == RL_GGUF_STR) return rd_str(r, &kv->str, "string value");
    if (t != RL_GGUF_ARR) {
        if ((rc = need(r, rl_gguf_vtype_size(t), "metadata value"))) return rc;
        r->off += rl_gguf_vtype_size(t);
        return 0;
    }
    uint32_t et;
    uint64_t n;
    if ((rc = rd_u32(r, &et, "array element type")) || (rc = rd_u64(r, &n, "array length"))) return rc;
    if (et > RL_GGUF_F64)
        return fail(r, "key '%.*s': unknown array element type %u", kl, kv->key.ptr, et);
    if (et == RL_GGUF_ARR)
        return fail(r, "key '%.*s': nested arrays are not supported", kl, kv->key.ptr);
    kv->arr_type = (rl_gguf_vtype)et;
    kv->arr_n = n;
    kv->data = r->p + r->off;
    if (et != RL_GGUF_STR) {
        size_t es = rl_gguf_vtype_size(et);
        if (n > left(r) / es)
            return fail(r, "key '%.*s': array of %llu elements of %zu bytes at offset %zu past end of file (size %zu)",
                        kl, kv->key.ptr, (unsigned long long)n, es, r->off, r->size);
        r->off += (size_t)n * es;
        return 0;
    }
    if (n > left(r) / 8) /* each string needs at least its 8-byte length */
        return fail(r, "key '%.*s': string array count %llu cannot fit in the %zu bytes left",
                    kl, kv->key.ptr, (unsigned long long)n, left(r));
    kv->strs = calloc(n ? (size_t)n : 1, sizeof *kv->strs);
    if (!kv->strs) return -ENOMEM;
    for (uint64_t j = 0; j < n; j++) {
        snprintf(what, sizeof what, "element %llu of a string array", (unsigned long long)j);
        if ((rc = rd_str(r, &kv->strs[j], what))) return rc;
    }
    return 0;
}

static int parse_tensor(reader *r, gguf_priv *g, uint64_t i)
{
    rl_gguf_tensor *t = &g->pub.tensors[i];
    rl_gguf_str name;
    char what[64];
    snprintf(what, sizeof what, "name of tensor %llu", (unsigned long long)i);
    int rc = rd_str(r, &name, what);
    if (rc) return rc;
    if (name.len == 0 || name.len >= sizeof t->name)
        return fail(r, "tensor %llu: name length %llu out of range 1..%zu",
                    (unsigned long long)i, (unsigned long long)name.len, sizeof t->name - 1);
    if (memchr(name.ptr, 0, name.len))
        return fail(r, "tensor %llu: name contains a NUL byte", (unsigned long long)i);
    memcpy(t->name, name.ptr, name.len);
    t->name[name.len] = 0;
    if ((rc = rd_u32(r, &t->n_dims, "tensor dimension count"))) return rc;
    if (t->n_dims < 1 || t->n_dims > RL_GGUF_MAX_DIMS)
        return fail(r, "tensor '%s': %u dimensions, expected 1..%d", t->name, t->n_dims, RL_GGUF_MAX_DIMS);
    int64_t nrows = 1;
    for (uint32_t d = 0; d < RL_GGUF_MAX_DIMS; d++) {
        uint64_t v = 1;
        if (d < t->n_dims && (rc = rd_u64(r, &v, "tensor dimension"))) return rc;
        if (v == 0 || v > (uint64_t)INT64_MAX)
            return fail(r, "tensor '%s': dimension %u is %llu, must be positive", t->name, d,
                        (unsigned long long)v);
        t->ne[d] = (int64_t)v;
        if (d > 0 && __builtin_mul_overflow(nrows, t->ne[d], &nrows))
            return fail(r, "tensor '%s': element count overflows", t->name);
    }
    int64_t nel;
    if (__builtin_mul_overflow(nrows, t->ne[0], &nel))
        return fail(r, "tensor '%s': element count overflows", t->name);
    uint32_t type;
    if ((rc = rd_u32(r, &type, "tensor type"))) return rc;
    const rl_type_traits *tr = rl_type_get(type);
    if (!tr) return fail(r, "tensor '%s': unknown type %u", t->name, type);
    t->type = (rl_type)type;
    if (t->ne[0] % tr->block_size)
        return fail(r, "tensor '%s': row length %lld is not a multiple of the %s block size %u", t->name,
                    (long long)t->ne[0], tr->name, tr->block_size);
    uint64_t row;
    if (__builtin_mul_overflow((uint64_t)(t->ne[0] / tr->block_size), (uint64_t)tr->type_size, &row) ||
        __builtin_mul_overflow(row, (uint64_t)nrows, &t->nbytes))
        return fail(r, "tensor '%s': byte size overflows", t->name);
    if ((rc = rd_u64(r, &t->offset, "tensor data offset"))) return rc;
    if (t->offset % g->pub.alignment)
        return fail(r, "tensor '%s': data offset %llu is not a multiple of the alignment %u", t->name,
                    (unsigned long long)t->offset, g->pub.alignment);
    return 0;
}

static int parse_alignment(reader *r, gguf_priv *g)
{
    g->pub.alignment = GGUF_DEFAULT_ALIGN;
    const rl_gguf_kv *kv = rl_gguf_get(&g->pub, "general.alignment");
    if (!kv) return 0;
    uint32_t a;
    if (!rl_gguf_get_u32(&g->pub, "general.alignment", &a))
        return fail(r, "general.alignment has type %d or a value out of range, expected u32", kv->type);
    if (a == 0 || (a & (a - 1)))
        return fail(r, "general.alignment = %u is not a power of two", a);
    g->pub.alignment = a;
    return 0;
}

static int parse(reader *r, gguf_priv *g)
{
    uint32_t magic, version;
    int rc;
    if ((rc = rd_u32(r, &magic, "magic"))) return rc;
    if (magic != GGUF_MAGIC) return fail(r, "not a GGUF file (bad magic 0x%08x)", magic);
    if ((rc = rd_u32(r, &version, "version"))) return rc;
    if (version == 1) return fail(r, "GGUF version 1 is not supported (need 2 or 3)");
    if (version != 2 && version != 3) {
        if ((version & 0xffff) == 0)
            return fail(r, "big-endian GGUF (version field 0x%08x) is not supported", version);
        return fail(r, "unsupported GGUF version %u (need 2 or 3)", version);
    }
    g->pub.version = version;
    uint64_t nt, nkv;
    if ((rc = rd_u64(r, &nt, "tensor count")) || (rc = rd_u64(r, &nkv, "metadata count"))) return rc;
    /* Bound counts by the bytes left: an entry takes >= 13 bytes, a tensor info >= 32. */
    if (nkv > left(r) / 13)
        return fail(r, "metadata count %llu cannot fit in the %zu bytes left", (unsigned long long)nkv, left(r));
    if (nt > left(r) / 32)
        return fail(r, "tensor count %llu cannot fit in the %zu bytes left", (unsigned long long)nt, left(r));
    if (nkv > UINT32_MAX - 1 || nt > UINT32_MAX - 1) return fail(r, "too many entries");
    g->pub.kv = calloc(nkv ? (size_t)nkv : 1, sizeof *g->pub.kv);
    g->kcap = index_cap(nkv);
    g->kidx = calloc(g->kcap, sizeof *g->kidx);
    if (!g->pub.kv || !g->kidx) return -ENOMEM;
    for (uint64_t i = 0; i < nkv; i++) {
        g->pub.n_kv = i + 1; /* so close() frees what was parsed */
        if ((rc = parse_kv(r, g, i))) return rc;
        if (index_insert(g, 0, (size_t)i) >= 0)
            return fail(r, "duplicate metadata key '%.*s'", (int)(g->pub.kv[i].key.len > 80 ? 80 : g->pub.kv[i].key.len),
                        g->pub.kv[i].key.ptr);
    }
    if ((rc = parse_alignment(r, g))) return rc;

    g->pub.tensors = calloc(nt ? (size_t)nt : 1, sizeof *g->pub.tensors);
    g->tcap = index_cap(nt);
    g->tidx = calloc(g->tcap, sizeof *g->tidx);
    if (!g->pub.tensors || !g->tidx) return -ENOMEM;
    for (uint64_t i = 0; i < nt; i++) {
        if ((rc = parse_tensor(r, g, i))) return rc;
        g->pub.n_tensors = i + 1;
        if (index_insert(g, 1, (size_t)i) >= 0)
            return fail(r, "duplicate tensor name '%s'", g->pub.tensors[i].name);
    }
    if (nt == 0) return 0;
    size_t a = g->pub.alignment;
    size_t data = (r->off + (a - 1)) & ~(a - 1);
    if (data < r->off || data > r->size)
        return fail(r, "data section start %zu past end of file (size %zu)", data, r->size);
    size_t avail = r->size - data;
    for (uint64_t i = 0; i < nt; i++) {
        rl_gguf_tensor *t = &g->pub.tensors[i];
        if (t->offset > avail || t->nbytes > avail - t->offset)
            return fail(r, "tensor '%s': data [%llu, %llu) past end of file (size %zu)", t->name,
                        (unsigned long long)(data + t->offset),
                        (unsigned long long)(data + t->offset + t->nbytes), r->size);
        t->data = r->p + data + t->offset;
    }
    return 0;
}

static int open_common(const void *data, size_t size, bool mapped, rl_gguf **out, char *err, size_t errlen)
{
    *out = NULL;
    if (err && errlen) err[0] = 0;
    gguf_priv *g = calloc(1, sizeof *g);
    if (!g) return -ENOMEM;
    g->pub.base = data;
    g->pub.size = size;
    g->pub.mapped = mapped;
    reader r = {data, size, 0, err, errlen};
    int rc = parse(&r, g);
    if (rc) {
        if (rc == -ENOMEM && err && errlen) snprintf(err, errlen, "out of memory while parsing GGUF");
        g->pub.mapped = false; /* the caller unmaps on failure */
        rl_gguf_close(&g->pub);
        return rc;
    }
    *out = &g->pub;
    return 0;
}

int rl_gguf_open_mem(const void *data, size_t size, rl_gguf **out, char *err, size_t errlen)
{
    if (!data && size) return -EINVAL;
    return open_common(data, size, false, out, err, errlen);
}

int rl_gguf_open(const char *path, rl_gguf **out, char *err, size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    struct stat st;
    const char *why = NULL;
    int e = 0;
    if (fstat(fd, &st) < 0) {
        e = errno;
        why = strerror(e);
    } else if (!S_ISREG(st.st_mode)) {
        why = "not a regular file";
    } else if (st.st_size == 0) {
        why = "empty file";
    }
    if (why) {
        snprintf(err, errlen, "%s: %s", path, why);
        close(fd);
        return e ? -e : -EINVAL;
    }
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    e = errno;
    close(fd);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "%s: mmap: %s", path, strerror(e));
        return -e;
    }
    char msg[256];
    int rc = open_common(p, (size_t)st.st_size, true, out, msg, sizeof msg);
    if (rc) {
        munmap(p, (size_t)st.st_size);
        snprintf(err, errlen, "%s: %s", path, msg);
    }
    return rc;
}

void rl_gguf_close(rl_gguf *pub)
{
    if (!pub) return;
    gguf_priv *g = (gguf_priv *)pub;
    if (pub->kv)
        for (uint64_t i = 0; i < pub->n_kv; i++) free(pub->kv[i].strs);
    free(pub->kv);
    free(pub->tensors);
    free(g->kidx);
    free(g->tidx);
    if (pub->mapped) munmap((void *)pub->base, pub->size);
    free(g);
}

/* ---- lookups ---- */

const rl_gguf_kv *rl_gguf_get(const rl_gguf *g, const char *key)
{
    if (!g || !key) return NULL;
    int64_t i = index_find((const gguf_priv *)g, 0, key);
    return i < 0 ? NULL : &g->kv[i];
}

const rl_gguf_tensor *rl_gguf_find_tensor(const rl_gguf *g, const char *name)
{
    if (!g || !name) return NULL;
    int64_t i = index_find((const gguf_priv *)g, 1, name);
    return i < 0 ? NULL : &g->tensors[i];
}

bool rl_gguf_str_eq(rl_gguf_str s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && (n == 0 || memcmp(s.ptr, c, n) == 0);
}

/* Integer value of type t at p; *neg set for negative signed values. */
static bool int_at(rl_gguf_vtype t, const uint8_t *p, uint64_t *mag, bool *neg)
{
    *neg = false;
    int64_t s;
    switch (t) {
    case RL_GGUF_U8: *mag = p[0]; return true;
    case RL_GGUF_U16: { uint16_t v; memcpy(&v, p, 2); *mag = v; return true; }
    case RL_GGUF_U32: { uint32_t v; memcpy(&v, p, 4); *mag = v; return true; }
    case RL_GGUF_U64: memcpy(mag, p, 8); return true;
    case RL_GGUF_I8: s = (int8_t)p[0]; break;
    case RL_GGUF_I16: { int16_t v; memcpy(&v, p, 2); s = v; break; }
    case RL_GGUF_I32: { int32_t v; memcpy(&v, p, 4); s = v; break; }
    case RL_GGUF_I64: memcpy(&s, p, 8); break;
    default: return false;
    }
    *neg = s < 0;
    *mag = s < 0 ? (uint64_t)0 - (uint64_t)s : (uint64_t)s;
    return true;
}

static bool kv_int(const rl_gguf_kv *kv, uint64_t *mag, bool *neg) { return int_at(kv->type, kv->data, mag, neg); }

static bool i64_of(uint64_t m, bool neg, int64_t *out)
{
    if (!neg && m > (uint64_t)INT64_MAX) return false;
    if (neg && m > (uint64_t)INT64_MAX + 1) return false;
    *out = neg ? (int64_t)(0 - m) : (int64_t)m;
    return true;
}

/* Address of element i of a numeric array, or NULL. */
static const uint8_t *arr_elem(const rl_gguf_kv *kv, uint64_t i)
{
    if (!kv || kv->type != RL_GGUF_ARR || i >= kv->arr_n) return NULL;
    size_t es = rl_gguf_vtype_size(kv->arr_type);
    return es && kv->arr_type != RL_GGUF_BOOL ? kv->data + i * es : NULL; /* i * es < file size */
}

bool rl_gguf_arr_i64(const rl_gguf_kv *kv, uint64_t i, int64_t *out)
{
    const uint8_t *p = arr_elem(kv, i);
    uint64_t m;
    bool neg;
    return p && int_at(kv->arr_type, p, &m, &neg) && i64_of(m, neg, out);
}

bool rl_gguf_arr_f32(const rl_gguf_kv *kv, uint64_t i, float *out)
{
    const uint8_t *p = arr_elem(kv, i);
    if (!p) return false;
    if (kv->arr_type == RL_GGUF_F32) { memcpy(out, p, 4); return true; }
    if (kv->arr_type == RL_GGUF_F64) { double d; memcpy(&d, p, 8); *out = (float)d; return true; }
    uint64_t m;
    bool neg;
    if (!int_at(kv->arr_type, p, &m, &neg)) return false;
    *out = neg ? -(float)m : (float)m;
    return true;
}

bool rl_gguf_get_u32(const rl_gguf *g, const char *key, uint32_t *out)
{
    const rl_gguf_kv *kv = rl_gguf_get(g, key);
    uint64_t m;
    bool neg;
    if (!kv || !kv_int(kv, &m, &neg) || neg || m > UINT32_MAX) return false;
    *out = (uint32_t)m;
    return true;
}

bool rl_gguf_get_i64(const rl_gguf *g, const char *key, int64_t *out)
{
    const rl_gguf_kv *kv = rl_gguf_get(g, key);
    uint64_t m;
    bool neg;
    return kv && kv_int(kv, &m, &neg) && i64_of(m, neg, out);
}

bool rl_gguf_get_f32(const rl_gguf *g, const char *key, float *out)
{
    const rl_gguf_kv *kv = rl_gguf_get(g, key);
    if (!kv) return false;
    if (kv->type == RL_GGUF_F32) { memcpy(out, kv->data, 4); return true; }
    if (kv->type == RL_GGUF_F64) { double d; memcpy(&d, kv->data, 8); *out = (float)d; return true; }
    uint64_t m;
    bool neg;
    if (!kv_int(kv, &m, &neg)) return false;
    *out = neg ? -(float)m : (float)m;
    return true;
}

bool rl_gguf_get_bool(const rl_gguf *g, const char *key, bool *out)
{
    const rl_gguf_kv *kv = rl_gguf_get(g, key);
    if (!kv || kv->type != RL_GGUF_BOOL) return false;
    *out = kv->data[0] != 0;
    return true;
}

bool rl_gguf_get_str(const rl_gguf *g, const char *key, rl_gguf_str *out)
{
    const rl_gguf_kv *kv = rl_gguf_get(g, key);
    if (!kv || kv->type != RL_GGUF_STR) return false;
    *out = kv->str;
    return true;
}

static bool arch_key(char *buf, size_t n, const char *arch, const char *suffix)
{
    int k = snprintf(buf, n, "%s.%s", arch, suffix);
    return k > 0 && (size_t)k < n;
}

bool rl_gguf_get_arch_u32(const rl_gguf *g, const char *arch, const char *suffix, uint32_t *out)
{
    char key[256];
    return arch_key(key, sizeof key, arch, suffix) && rl_gguf_get_u32(g, key, out);
}

bool rl_gguf_get_arch_f32(const rl_gguf *g, const char *arch, const char *suffix, float *out)
{
    char key[256];
    return arch_key(key, sizeof key, arch, suffix) && rl_gguf_get_f32(g, key, out);
}
