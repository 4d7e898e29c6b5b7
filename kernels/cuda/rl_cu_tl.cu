/* rl_cu_tl.cu - the step timeline's host side: arms the log of every
 * instrumented translation unit (rl_cu_tl.cuh), reads the records back and
 * groups them by launch. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rl_cu_common.cuh"
#include "rl_cu_tl.cuh"

const char *rl_cu_tl_tag_name(uint32_t tag)
{
    static const char *const names[RL_TL_N_TAGS] = {"?", "get_rows", "mvb", "rope", "attn", "matvec",
                                                    "argmax", "rmsnorm", "quantize", "swiglu"};
    return tag < RL_TL_N_TAGS ? names[tag] : "?";
}

#ifdef RL_CU_TIMELINE
/* one setter per instrumented translation unit (RL_TL_TU) */
extern "C" int rl_cu_tl_set_mvb(rl_cu_tl_rec *, unsigned *, unsigned);
extern "C" int rl_cu_tl_set_kv(rl_cu_tl_rec *, unsigned *, unsigned);
extern "C" int rl_cu_tl_set_attn(rl_cu_tl_rec *, unsigned *, unsigned);
extern "C" int rl_cu_tl_set_mv_q4_0(rl_cu_tl_rec *, unsigned *, unsigned);
extern "C" int rl_cu_tl_set_ops(rl_cu_tl_rec *, unsigned *, unsigned);
extern "C" int rl_cu_tl_set_mat(rl_cu_tl_rec *, unsigned *, unsigned);

static rl_cu_tl_rec *d_rec;
static unsigned *d_n;
static size_t rec_cap;

static int set_all(rl_cu_tl_rec *rec, unsigned *n, unsigned cap)
{
    int (*const set[])(rl_cu_tl_rec *, unsigned *, unsigned) = {rl_cu_tl_set_mvb, rl_cu_tl_set_kv,
                                                                 rl_cu_tl_set_attn, rl_cu_tl_set_mv_q4_0,
                                                                 rl_cu_tl_set_ops, rl_cu_tl_set_mat};
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++)
        if (set[i](rec, n, cap))
            return rl_cu_check(cudaGetLastError(), "timeline symbols");
    return 0;
}

extern "C" int rl_cu_tl_arm(size_t cap)
{
    if (cap == 0 || cap > (1u << 26))
        return -EINVAL;
    RL_CU_TRY(rl_cu_check(cudaDeviceSynchronize(), "timeline"));
    if (cap > rec_cap) {
        cudaFree(d_rec);
        d_rec = NULL;
        rec_cap = 0;
        RL_CU_TRY(rl_cu_check(cudaMalloc((void **)&d_rec, cap * sizeof *d_rec), "timeline log"));
        rec_cap = cap;
    }
    if (!d_n)
        RL_CU_TRY(rl_cu_check(cudaMalloc((void **)&d_n, sizeof *d_n), "timeline count"));
    RL_CU_TRY(rl_cu_check(cudaMemset(d_n, 0, sizeof *d_n), "timeline count"));
    return set_all(d_rec, d_n, (unsigned)cap);
}

extern "C" int rl_cu_tl_collect(rl_cu_tl_rec **rec, size_t *n)
{
    *rec = NULL;
    *n = 0;
    if (!d_rec)
        return -EINVAL;
    RL_CU_TRY(rl_cu_check(cudaDeviceSynchronize(), "timeline"));
    RL_CU_TRY(set_all(NULL, NULL, 0));
    unsigned cnt = 0;
    RL_CU_TRY(rl_cu_check(cudaMemcpy(&cnt, d_n, sizeof cnt, cudaMemcpyDeviceToHost), "timeline count"));
    size_t k = cnt < rec_cap ? cnt : rec_cap;
    rl_cu_tl_rec *h = (rl_cu_tl_rec *)malloc((k ? k : 1) * sizeof *h);
    if (!h)
        return -ENOMEM;
    if (k && rl_cu_check(cudaMemcpy(h, d_rec, k * sizeof *h, cudaMemcpyDeviceToHost), "timeline log")) {
        free(h);
        return -EIO;
    }
    *rec = h;
    *n = k;
    return 0;
}
#else
extern "C" int rl_cu_tl_arm(size_t cap)
{
    (void)cap;
    return -ENOTSUP;
}

extern "C" int rl_cu_tl_collect(rl_cu_tl_rec **rec, size_t *n)
{
    *rec = NULL;
    *n = 0;
    return -ENOTSUP;
}
#endif

static int by_grid(const void *a, const void *b)
{
    const rl_cu_tl_rec *x = (const rl_cu_tl_rec *)a, *y = (const rl_cu_tl_rec *)b;
    return x->grid < y->grid ? -1 : x->grid > y->grid;
}

static int by_start(const void *a, const void *b)
{
    const rl_cu_tl_launch *x = (const rl_cu_tl_launch *)a, *y = (const rl_cu_tl_launch *)b;
    return x->t0 < y->t0 ? -1 : x->t0 > y->t0;
}

extern "C" int rl_cu_tl_launches(const rl_cu_tl_rec *rec, size_t n, rl_cu_tl_launch **out)
{
    *out = NULL;
    rl_cu_tl_rec *s = (rl_cu_tl_rec *)malloc((n ? n : 1) * sizeof *s);
    rl_cu_tl_launch *l = (rl_cu_tl_launch *)calloc(n ? n : 1, sizeof *l);
    if (!s || !l) {
        free(s);
        free(l);
        return -ENOMEM;
    }
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
