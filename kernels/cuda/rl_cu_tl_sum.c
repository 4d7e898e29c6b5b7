/* rl_cu_tl_sum.c - the step timeline's records grouped by launch, and the
 * kernels' names (plain C: tested in every build, tests/cuda/test_cu_tl.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rl_cu_tl.h"

const char *rl_cu_tl_tag_name(uint32_t tag)
{
    static const char *const names[RL_TL_N_TAGS] = {"?", "get_rows", "mvb", "rope", "attn", "matvec",
                                                    "argmax", "rmsnorm", "quantize", "swiglu"};
    return tag < RL_TL_N_TAGS ? names[tag] : "?";
}

static int by_grid(const void *a, const void *b)
{
    const rl_cu_tl_rec *x = a, *y = b;
    return x->grid < y->grid ? -1 : x->grid > y->grid;
}

static int by_start(const void *a, const void *b)
{
    const rl_cu_tl_launch *x = a, *y = b;
    return x->t0 < y->t0 ? -1 : x->t0 > y->t0;
}

int rl_cu_tl_launches(const rl_cu_tl_rec *rec, size_t n, rl_cu_tl_launch **out)
{
    *out = NULL;
    rl_cu_tl_rec *s = malloc((n ? n : 1) * sizeof *s);
    rl_cu_tl_launch *l = calloc(n ? n : 1, sizeof *l);
    if (!s || !l) {
        free(s);
        free(l);
        return -ENOMEM;
    }
    if (n)
        memcpy(s, rec, n * sizeof *s);
    qsort(s, n, sizeof *s, by_grid);
    int nl = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || s[i].grid != s[i - 1].grid) {
            rl_cu_tl_launch *c = &l[nl++];
            c->tag = s[i].tag, c->n_blocks = s[i].n_blocks;
            c->t0 = c->t1_min = UINT64_MAX;
        }
        rl_cu_tl_launch *c = &l[nl - 1];
        c->n_rec++;
        c->t0 = s[i].t0 < c->t0 ? s[i].t0 : c->t0;
        c->t1_min = s[i].t1 < c->t1_min ? s[i].t1 : c->t1_min;
        c->t1_max = s[i].t1 > c->t1_max ? s[i].t1 : c->t1_max;
        for (int k = 0; k < RL_TL_MARKS; k++)
            c->mk_max[k] = s[i].mk[k] > c->mk_max[k] ? s[i].mk[k] : c->mk_max[k];
        if (s[i].tw) {
            c->tw_min = !c->tw_min || s[i].tw < c->tw_min ? s[i].tw : c->tw_min;
            c->tw_max = s[i].tw > c->tw_max ? s[i].tw : c->tw_max;
        }
    }
    free(s);
    qsort(l, nl, sizeof *l, by_start);
    *out = l;
    return nl;
}
