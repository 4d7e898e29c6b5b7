/* rl_tok_encode.c - the merge loops: SentencePiece-style best-score bigram merging
 * with byte fallback, and byte-level BPE merging by rank. Both keep the symbols in a
 * doubly linked list and the merge candidates in a binary heap; a candidate whose
 * symbols changed since it was queued is dropped when popped (their byte lengths no
 * longer add up), so each merge costs O(log n). */
#include "rl_tok_internal.h"
#include "rl_unicode.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Heap order: higher score first, then the leftmost symbol. */
static bool before(const rl_tok_cand *a, const rl_tok_cand *b)
{
    if (a->score != b->score)
        return a->score > b->score;
    return a->left < b->left;
}

int rl_tok_heap_push(rl_tok_heap *h, rl_tok_cand c)
{
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 64;
        rl_tok_cand *a = realloc(h->a, nc * sizeof *a);
        if (!a)
            return -ENOMEM;
        h->a = a;
        h->cap = nc;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&c, &h->a[p]))
            break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = c;
    return 0;
}

bool rl_tok_heap_pop(rl_tok_heap *h, rl_tok_cand *c)
{
    if (h->n == 0)
        return false;
    *c = h->a[0];
    rl_tok_cand last = h->a[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, best = l;
        if (l >= h->n)
            break;
        if (l + 1 < h->n && before(&h->a[l + 1], &h->a[l]))
            best = l + 1;
        if (!before(&h->a[best], &last))
            break;
        h->a[i] = h->a[best];
        i = best;
    }
    if (h->n)
        h->a[i] = last;
    return true;
}

typedef struct sym {
    uint32_t start, len;   /* bytes of the symbol; len 0 = merged away */
    int32_t prev, next;    /* -1 at the ends */
    int32_t id;            /* its token, -1 if none */
} sym;

typedef struct merger {
    const rl_tokenizer *t;
    const char *text;
    sym *s;
    rl_tok_heap heap;
} merger;

/* SPM: queue the pair (l, r) when their concatenated text is a token. */
static int spm_try(merger *m, int32_t l, int32_t r)
{
    if (l < 0 || r < 0)
        return 0;
    uint32_t size = m->s[l].len + m->s[r].len;
    int32_t id = rl_tok_map_find(&m->t->map, m->t, m->text + m->s[l].start, size);
    if (id < 0)
        return 0;
    rl_tok_cand c = {m->t->scores[id], (uint32_t)l, (uint32_t)r, id, size};
    return rl_tok_heap_push(&m->heap, c);
}

/* BPE: queue the pair (l, r) when a merge exists for their tokens. */
static int bpe_try(merger *m, int32_t l, int32_t r)
{
    if (l < 0 || r < 0)
        return 0;
    const rl_tok_merge *mg = rl_tok_merge_find(m->t, m->s[l].id, m->s[r].id);
    if (!mg)
        return 0;
    rl_tok_cand c = {-(float)mg->rank, (uint32_t)l, (uint32_t)r, mg->result, m->s[l].len + m->s[r].len};
    return rl_tok_heap_push(&m->heap, c);
}

typedef int (*try_fn)(merger *m, int32_t l, int32_t r);

static int merge_all(merger *m, size_t nsym, try_fn try)
{
    int rc = 0;
    m->heap.n = 0;
    for (size_t i = 0; i + 1 < nsym && rc == 0; i++)
        rc = try(m, (int32_t)i, (int32_t)i + 1);
    rl_tok_cand c;
    while (rc == 0 && rl_tok_heap_pop(&m->heap, &c)) {
        sym *l = &m->s[c.left], *r = &m->s[c.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != c.size)
            continue; /* stale: one side merged with something else meanwhile */
        l->len += r->len;
        l->id = c.id;
        l->next = r->next;
        if (r->next >= 0)
            m->s[r->next].prev = (int32_t)c.left;
        r->len = 0;
        rc = try(m, l->prev, (int32_t)c.left);
        if (rc == 0)
            rc = try(m, (int32_t)c.left, l->next);
    }
    return rc;
}

int rl_tok_spm_encode(const rl_tokenizer *t, const char *s, size_t n, bool space_prefix, rl_tok_out *o)
{
    static const char sp[3] = {'\xE2', '\x96', '\x81'}; /* U+2581 stands for a space */
    size_t cap = 3 * n + 3;
    char *text = malloc(cap);
    sym *syms = malloc((n + 1) * sizeof *syms);
    merger m = {t, text, syms, {0}};
    int rc = 0;
    if (!text || !syms) {
        rc = -ENOMEM;
        goto out;
    }
    size_t len = 0;
    if (space_prefix) {
        memcpy(text, sp, 3);
        len = 3;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(text + len, sp, 3);
            len += 3;
        } else {
            text[len++] = s[i];
        }
    }
    size_t nsym = 0;
    for (size_t i = 0; i < len;) {
        uint32_t c;
        int k = rl_utf8_decode((const uint8_t *)text + i, len - i, &c, NULL);
        if (k < 0)
            k = 1;
        syms[nsym] = (sym){(uint32_t)i, (uint32_t)k, (int32_t)nsym - 1,
                           i + (size_t)k < len ? (int32_t)nsym + 1 : -1,
                           rl_tok_map_find(&t->map, t, text + i, (size_t)k)};
        nsym++;
        i += (size_t)k;
    }
    rc = merge_all(&m, nsym, spm_try);
    if (rc < 0 || nsym == 0)
        goto out;
    for (int32_t i = 0; i >= 0; i = syms[i].next) {
        if (syms[i].id >= 0) {
            rl_tok_emit(o, syms[i].id);
            continue;
        }
        /* a character with no token: one byte token per byte */
        bool missing = false;
        for (uint32_t b = 0; b < syms[i].len; b++) {
            int32_t bt = t->byte_tok[(uint8_t)text[syms[i].start + b]];
            if (bt >= 0)
                rl_tok_emit(o, bt);
            else
                missing = true;
        }
        if (missing && t->unk >= 0)
            rl_tok_emit(o, t->unk);
    }
out:
    free(m.heap.a);
    free(text);
    free(syms);
    return rc;
}

typedef struct bpe_ctx {
    merger m;
    const char *s;
    char *enc;        /* scratch for the byte-level encoded word */
    rl_tok_out *o;
} bpe_ctx;

static int bpe_word(void *vctx, size_t start, size_t len)
{
    bpe_ctx *x = vctx;
    const rl_tokenizer *t = x->m.t;
    const uint8_t *w = (const uint8_t *)x->s + start;
    if (t->ignore_merges) {
        size_t e = 0;
        for (size_t i = 0; i < len; i++) {
            memcpy(x->enc + e, t->benc[w[i]], t->benc_len[w[i]]);
            e += t->benc_len[w[i]];
        }
        int32_t id = rl_tok_map_find(&t->map, t, x->enc, e);
        if (id >= 0) {
            rl_tok_emit(x->o, id);
            return 0;
        }
    }
    sym *s = x->m.s;
    for (size_t i = 0; i < len; i++)
        s[i] = (sym){(uint32_t)i, 1, (int32_t)i - 1, i + 1 < len ? (int32_t)i + 1 : -1, t->byte_tok[w[i]]};
    int rc = merge_all(&x->m, len, bpe_try);
    if (rc < 0)
        return rc;
    for (int32_t i = 0; i >= 0; i = s[i].next) {
        if (s[i].id >= 0)
            rl_tok_emit(x->o, s[i].id);
        else if (t->unk >= 0)
            rl_tok_emit(x->o, t->unk);
    }
    return 0;
}

int rl_tok_bpe_encode(const rl_tokenizer *t, const char *s, size_t n, rl_tok_out *o)
{
    if (n == 0)
        return 0;
    bpe_ctx x = {{t, NULL, NULL, {0}}, s, NULL, o};
    x.m.s = malloc(n * sizeof *x.m.s);
    x.enc = malloc(2 * n);
    int rc = -ENOMEM;
    if (x.m.s && x.enc)
        rc = rl_tok_pretokenize(t->pre, s, n, bpe_word, &x);
    free(x.m.heap.a);
    free(x.m.s);
    free(x.enc);
    return rc;
}
