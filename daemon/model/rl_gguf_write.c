/* rl_gguf_write.c - GGUF v3 writer: metadata is serialized as it is added,
 * tensors are either copied (rl_gguf_writer_tensor + _write) or declared and
 * streamed (rl_gguf_writer_tensor_decl + _begin/_put/_finish). */
#include "rl_gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct wtensor {
    char name[128];
    rl_type type;
    uint32_t n_dims;
    int64_t ne[RL_GGUF_MAX_DIMS];
    uint64_t nbytes, offset;
    void *data; /* NULL when declared for streaming */
} wtensor;

struct rl_gguf_writer {
    uint8_t *kvbuf;          /* serialized metadata entries */
    size_t kvlen, kvcap;
    char **keys;
    size_t n_kv, keycap;
    wtensor *t;
    size_t n_t, tcap;
    uint32_t alignment;
    bool streamed;           /* tensors were declared without data */
    FILE *f;                 /* open while streaming */
    size_t next;             /* next tensor to put */
    uint64_t pos;            /* bytes of data section written */
    bool failed;
};

rl_gguf_writer *rl_gguf_writer_new(void)
{
    rl_gguf_writer *w = calloc(1, sizeof *w);
    if (w) w->alignment = 32;
    return w;
}

void rl_gguf_writer_free(rl_gguf_writer *w)
{
    if (!w) return;
    if (w->f) fclose(w->f);
    for (size_t i = 0; i < w->n_kv; i++) free(w->keys[i]);
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].data);
    free(w->keys);
    free(w->t);
    free(w->kvbuf);
    free(w);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need) {
        if (n > SIZE_MAX / 2 / elem) return -ENOMEM;
        n *= 2;
    }
    void *q = realloc(*p, n * elem);
    if (!q) return -ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

static int put(rl_gguf_writer *w, const void *p, size_t n)
{
    int rc = grow((void **)&w->kvbuf, &w->kvcap, w->kvlen + n, 1);
    if (rc) return rc;
    if (n) memcpy(w->kvbuf + w->kvlen, p, n);
    w->kvlen += n;
    return 0;
}

static int put_u32(rl_gguf_writer *w, uint32_t v) { return put(w, &v, 4); }
static int put_u64(rl_gguf_writer *w, uint64_t v) { return put(w, &v, 8); }
static int put_str(rl_gguf_writer *w, const char *p, uint64_t n)
{
    int rc = put_u64(w, n);
    return rc ? rc : put(w, p, (size_t)n);
}

/* Start an entry: reject duplicates and streaming-in-progress, write key and type. */
static int begin_kv(rl_gguf_writer *w, const char *key, rl_gguf_vtype t)
{
    if (!w || !key || !*key || w->f) return -EINVAL;
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0) return -EEXIST;
    int rc = grow((void **)&w->keys, &w->keycap, w->n_kv + 1, sizeof *w->keys);
    if (rc) return rc;
    char *k = strdup(key);
    if (!k) return -ENOMEM;
    w->keys[w->n_kv++] = k;
    if ((rc = put_str(w, key, strlen(key)))) return rc;
    return put_u32(w, (uint32_t)t);
}

static int scalar(rl_gguf_writer *w, const char *key, rl_gguf_vtype t, const void *v, size_t n)
{
    int rc = begin_kv(w, key, t);
    return rc ? rc : put(w, v, n);
}

int rl_gguf_writer_u32(rl_gguf_writer *w, const char *key, uint32_t v)
{
    if (key && strcmp(key, "general.alignment") == 0) {
        if (v == 0 || (v & (v - 1))) return -EINVAL;
        int rc = scalar(w, key, RL_GGUF_U32, &v, 4);
        if (!rc) w->alignment = v;
        return rc;
    }
    return scalar(w, key, RL_GGUF_U32, &v, 4);
}
int rl_gguf_writer_i32(rl_gguf_writer *w, const char *key, int32_t v) { return scalar(w, key, RL_GGUF_I32, &v, 4); }
int rl_gguf_writer_f32(rl_gguf_writer *w, const char *key, float v) { return scalar(w, key, RL_GGUF_F32, &v, 4); }
int rl_gguf_writer_u64(rl_gguf_writer *w, const char *key, uint64_t v) { return scalar(w, key, RL_GGUF_U64, &v, 8); }
int rl_gguf_writer_i64(rl_gguf_writer *w, const char *key, int64_t v) { return scalar(w, key, RL_GGUF_I64, &v, 8); }
int rl_gguf_writer_f64(rl_gguf_writer *w, const char *key, double v) { return scalar(w, key, RL_GGUF_F64, &v, 8); }
int rl_gguf_writer_bool(rl_gguf_writer *w, const char *key, bool v)
{
    uint8_t b = v ? 1 : 0;
    return scalar(w, key, RL_GGUF_BOOL, &b, 1);
}

int rl_gguf_writer_str(rl_gguf_writer *w, const char *key, const char *v)
{
    if (!v) return -EINVAL;
    int rc = begin_kv(w, key, RL_GGUF_STR);
    return rc ? rc : put_str(w, v, strlen(v));
}

int rl_gguf_writer_arr(rl_gguf_writer *w, const char *key, rl_gguf_vtype et, const void *data, uint64_t n)
{
    size_t es = rl_gguf_vtype_size(et);
    if (!es || (n && !data) || n > SIZE_MAX / es) return -EINVAL;
    int rc = begin_kv(w, key, RL_GGUF_ARR);
    if (rc || (rc = put_u32(w, (uint32_t)et)) || (rc = put_u64(w, n))) return rc;
    return put(w, data, (size_t)(n * es));
}

int rl_gguf_writer_arr_str(rl_gguf_writer *w, const char *key, const char *const *v, uint64_t n)
{
    if (n && !v) return -EINVAL;
    for (uint64_t i = 0; i < n; i++)
        if (!v[i]) return -EINVAL;
    int rc = begin_kv(w, key, RL_GGUF_ARR);
    if (rc || (rc = put_u32(w, RL_GGUF_STR)) || (rc = put_u64(w, n))) return rc;
    for (uint64_t i = 0; i < n; i++)
        if ((rc = put_str(w, v[i], strlen(v[i])))) return rc;
    return 0;
}

static int copy_value(rl_gguf_writer *w, const char *key, const rl_gguf_kv *kv)
{
    if (strcmp(key, "general.alignment") == 0) {
        uint32_t a;
        if (kv->type != RL_GGUF_U32) return -EINVAL;
        memcpy(&a, kv->data, 4);
        return rl_gguf_writer_u32(w, key, a);
    }
    int rc;
    if (kv->type == RL_GGUF_STR) {
        if ((rc = begin_kv(w, key, RL_GGUF_STR))) return rc;
        return put_str(w, kv->str.ptr, kv->str.len);
    }
    if (kv->type != RL_GGUF_ARR) {
        size_t es = rl_gguf_vtype_size(kv->type);
        return es ? scalar(w, key, kv->type, kv->data, es) : -EINVAL;
    }
    if (kv->arr_type != RL_GGUF_STR) return rl_gguf_writer_arr(w, key, kv->arr_type, kv->data, kv->arr_n);
    if ((rc = begin_kv(w, key, RL_GGUF_ARR)) || (rc = put_u32(w, RL_GGUF_STR)) || (rc = put_u64(w, kv->arr_n)))
        return rc;
    for (uint64_t i = 0; i < kv->arr_n; i++)
        if ((rc = put_str(w, kv->strs[i].ptr, kv->strs[i].len))) return rc;
    return 0;
}

int rl_gguf_writer_copy_kv(rl_gguf_writer *w, const rl_gguf_kv *kv)
{
    if (!kv || kv->key.len == 0 || kv->key.len > 65535 || memchr(kv->key.ptr, 0, kv->key.len)) return -EINVAL;
    char *key = strndup(kv->key.ptr, (size_t)kv->key.len);
    if (!key) return -ENOMEM;
    int rc = copy_value(w, key, kv);
    free(key);
    return rc;
}

/* Validate and append a tensor record; data copied when non-NULL. */
static int add_tensor(rl_gguf_writer *w, const char *name, rl_type type, uint32_t n_dims, const int64_t *ne,
                      const void *data, uint64_t nbytes, bool with_data)
{
    if (!w || !name || !ne || w->f) return -EINVAL;
    size_t nl = strlen(name);
    if (nl == 0 || nl >= sizeof w->t[0].name || n_dims < 1 || n_dims > RL_GGUF_MAX_DIMS) return -EINVAL;
    if (w->n_t && w->streamed != !with_data) return -EINVAL;
    const rl_type_traits *tr = rl_type_get((uint32_t)type);
    if (!tr) return -EINVAL;
    int64_t rows = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] <= 0) return -EINVAL;
        if (d && __builtin_mul_overflow(rows, ne[d], &rows)) return -EOVERFLOW;
    }
    size_t row = rl_type_row_size(type, ne[0]);
    uint64_t want;
    if (!row || __builtin_mul_overflow((uint64_t)row, (uint64_t)rows, &want)) return -EINVAL;
    if (with_data && (want != nbytes || !data || nbytes > SIZE_MAX)) return -EINVAL;
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) return -EEXIST;
    int rc = grow((void **)&w->t, &w->tcap, w->n_t + 1, sizeof *w->t);
    if (rc) return rc;
    wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    memcpy(t->name, name, nl + 1);
    t->type = type;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < RL_GGUF_MAX_DIMS; d++) t->ne[d] = d < n_dims ? ne[d] : 1;
    t->nbytes = want;
    if (with_data) {
        t->data = malloc(want ? (size_t)want : 1);
        if (!t->data) return -ENOMEM;
        memcpy(t->data, data, (size_t)want);
    }
    w->streamed = !with_data;
    w->n_t++;
    return 0;
}

int rl_gguf_writer_tensor(rl_gguf_writer *w, const char *name, rl_type type, uint32_t n_dims,
                          const int64_t *ne, const void *data, uint64_t nbytes)
{
    return add_tensor(w, name, type, n_dims, ne, data, nbytes, true);
}

int rl_gguf_writer_tensor_decl(rl_gguf_writer *w, const char *name, rl_type type, uint32_t n_dims,
                               const int64_t *ne)
{
    return add_tensor(w, name, type, n_dims, ne, NULL, 0, false);
}

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

static int fput(rl_gguf_writer *w, const void *p, size_t n)
{
    if (n && fwrite(p, 1, n, w->f) != n) {
        w->failed = true;
        return errno ? -errno : -EIO;
    }
    return 0;
}

static int pad(rl_gguf_writer *w, uint64_t n)
{
    static const uint8_t zeros[256];
    while (n) {
        size_t k = n > sizeof zeros ? sizeof zeros : (size_t)n;
        int rc = fput(w, zeros, k);
        if (rc) return rc;
        n -= k;
    }
    return 0;
}

/* Open path and write everything up to the start of the data section. */
static int write_head(rl_gguf_writer *w, const char *path)
{
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        w->t[i].offset = off;
        off = align_up(off + w->t[i].nbytes, w->alignment);
    }
    w->f = fopen(path, "wb");
    if (!w->f) return -errno;
    setvbuf(w->f, NULL, _IOFBF, 1 << 20);
    w->failed = false;
    uint32_t hdr[2] = {0x46554747u, 3};
    uint64_t counts[2] = {w->n_t, w->n_kv};
    int rc;
    if ((rc = fput(w, hdr, sizeof hdr)) || (rc = fput(w, counts, sizeof counts)) || (rc = fput(w, w->kvbuf, w->kvlen)))
        return rc;
    uint64_t pos = sizeof hdr + sizeof counts + w->kvlen;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        uint64_t nl = strlen(t->name);
        uint32_t type = (uint32_t)t->type;
        if ((rc = fput(w, &nl, 8)) || (rc = fput(w, t->name, nl)) || (rc = fput(w, &t->n_dims, 4)) ||
            (rc = fput(w, t->ne, 8 * t->n_dims)) || (rc = fput(w, &type, 4)) || (rc = fput(w, &t->offset, 8)))
            return rc;
        pos += 8 + nl + 4 + 8 * t->n_dims + 4 + 8;
    }
    w->next = 0;
    w->pos = 0;
    return pad(w, align_up(pos, w->alignment) - pos);
}

int rl_gguf_writer_put(rl_gguf_writer *w, const void *data, uint64_t nbytes)
{
    if (!w || !w->f || w->next >= w->n_t || (nbytes && !data)) return -EINVAL;
    wtensor *t = &w->t[w->next];
    /* w->pos is within [t->offset - padding, t->offset + t->nbytes). */
    uint64_t start = w->pos < t->offset ? t->offset : w->pos, done = start - t->offset;
    if (nbytes > t->nbytes - done) return -EINVAL;
    int rc = pad(w, start - w->pos);
    if (rc || (rc = fput(w, data, (size_t)nbytes))) return rc;
    w->pos = start + nbytes;
    if (done + nbytes == t->nbytes) w->next++;
    return 0;
}

static int close_file(rl_gguf_writer *w)
{
    int rc = 0;
    if (w->n_t && w->next == w->n_t) rc = pad(w, align_up(w->pos, w->alignment) - w->pos);
    if (fclose(w->f) != 0 && !rc) rc = errno ? -errno : -EIO;
    w->f = NULL;
    return rc ? rc : w->failed ? -EIO : 0;
}

int rl_gguf_writer_begin(rl_gguf_writer *w, const char *path)
{
    if (!w || !path || w->f || (w->n_t && !w->streamed)) return -EINVAL;
    int rc = write_head(w, path);
    if (rc && w->f) {
        fclose(w->f);
        w->f = NULL;
    }
    return rc;
}

int rl_gguf_writer_finish(rl_gguf_writer *w)
{
    if (!w || !w->f) return -EINVAL;
    bool complete = w->next == w->n_t;
    int rc = close_file(w);
    return complete ? rc : -EINVAL;
}

int rl_gguf_writer_write(rl_gguf_writer *w, const char *path)
{
    if (!w || !path || w->f || (w->n_t && w->streamed)) return -EINVAL;
    int rc = write_head(w, path);
    for (size_t i = 0; !rc && i < w->n_t; i++) rc = rl_gguf_writer_put(w, w->t[i].data, w->t[i].nbytes);
    if (w->f) {
        int rc2 = close_file(w);
        if (!rc) rc = rc2;
    }
    return rc;
}
