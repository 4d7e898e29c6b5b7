/* rl_cu_hosttab.c - sorted table of registered host ranges (see the header). */
#include "rl_cu_hosttab.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Index of the first range whose start is > p (0..n). */
static uint32_t upper(const rl_cu_hosttab *t, uintptr_t p)
{
    uint32_t lo = 0, hi = t->n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t->e[mid].host <= p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int rl_cu_hosttab_add(rl_cu_hosttab *t, const void *host, size_t len, uint64_t dev)
{
    uintptr_t h = (uintptr_t)host;
    if (!host || len == 0 || h + len < h || dev == 0 || dev + len < dev)
        return -EINVAL;
    uint32_t i = upper(t, h);
    /* disjoint from the range before (starts <= h) and the one after (> h) */
    if (i > 0 && t->e[i - 1].host + t->e[i - 1].len > h)
        return -EEXIST;
    if (i < t->n && h + len > t->e[i].host)
        return -EEXIST;
    if (t->n == t->cap) {
        uint32_t cap = t->cap ? 2 * t->cap : 8;
        rl_cu_hosttab_ent *p = realloc(t->e, cap * sizeof *p);
        if (!p)
            return -ENOMEM;
        t->e = p;
        t->cap = cap;
    }
    memmove(t->e + i + 1, t->e + i, (t->n - i) * sizeof *t->e);
    t->e[i] = (rl_cu_hosttab_ent){.host = h, .len = len, .dev = dev};
    t->n++;
    return 0;
}

int rl_cu_hosttab_del(rl_cu_hosttab *t, const void *host, rl_cu_hosttab_ent *out)
{
    uintptr_t h = (uintptr_t)host;
    uint32_t i = upper(t, h);
    if (i == 0 || t->e[i - 1].host != h)
        return -ENOENT;
    i--;
    if (out)
        *out = t->e[i];
    memmove(t->e + i, t->e + i + 1, (t->n - i - 1) * sizeof *t->e);
    t->n--;
    return 0;
}

uint64_t rl_cu_hosttab_dev(const rl_cu_hosttab *t, const void *p, size_t len)
{
    uintptr_t h = (uintptr_t)p;
    if (!t || !p || len == 0 || h + len < h)
        return 0;
    uint32_t i = upper(t, h);
    if (i == 0)
        return 0;
    const rl_cu_hosttab_ent *e = &t->e[i - 1];
    uintptr_t off = h - e->host; /* e->host <= h */
    if (off > e->len || len > e->len - off)
        return 0;
    return e->dev + off;
}

void rl_cu_hosttab_free(rl_cu_hosttab *t)
{
    free(t->e);
    memset(t, 0, sizeof *t);
}
