/* rl_engine_llm.c - rl_engine over the model: sequences, batched steps with
 * paged KV, prefix sharing and preemption, sampling, tokenizer. The forward
 * pass is the CPU's (rl_forward) or a device backend's (rl_llm_backend: CUDA). */
#include "rl_llm.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rl_gemm.h"
#include "rl_kv.h"
#include "rl_model.h"
#include "rl_ops.h"
#include "rl_pool.h"
#include "rl_prefix.h"
#include "rl_logprob.h"
#include "rl_sample.h"
#include "rl_engine_text.h"

typedef struct llm {
    rl_engine base;
    rl_model *m;
    rl_engine_text text;     /* tokenizer and chat template */
    rl_pool *pool;
    rl_pool *spool;          /* device backends: threads for sampling a step's rows (lazily) */
    rl_kv *kv;
    rl_fwd *fwd;
    const rl_llm_backend *be; /* NULL: the CPU forward pass; closed with the engine */
    uint32_t n_ctx, step_tokens;
    rl_fwd_seq *fseqs;       /* step scratch */
    uint32_t *fitem;         /* fseqs[i] belongs to items[fitem[i]] */
    int32_t *argtok;         /* backend: greedy tokens chosen on the device, per fseq */
    float *logits;           /* step_tokens rows of n_vocab, allocated lazily per row count */
    uint32_t logit_rows;
    uint64_t step_id;        /* counts steps */
    rl_prefix *prefix;       /* shared prompt blocks, preemption (batch) */
    pthread_mutex_t st_mu;   /* guards st: published by the compute thread, read by get_stats */
    rl_engine_stats st;
} llm;

/* Tokens whose KV the sequence needs live in ps.toks[0, ps.n_toks); kv.n_pos of
 * them are in the cache. kv.n_pos < ps.n_toks: prompt phase (the prompt, or
 * after a preemption the prompt and the tokens generated so far, recomputed
 * without sampling while next >= 0). */
struct rl_seq {
    rl_prefix_seq ps;
    uint32_t max_tokens, n_gen;
    int32_t next;               /* sampled token still to be fed, or -1 */
    uint64_t step_id;           /* last step that took this sequence (duplicate guard) */
    rl_kv_seq kv;
    rl_sampler smp;
    bool greedy;                /* the argmax is the sampler's choice (device backends pick it there) */
    uint32_t n_lp;              /* log-probability alternatives per token (0: none) */
    rl_token_logprob *lp;       /* 1 + n_lp: the last token's, then the most likely */
};

static llm *impl(rl_engine *e)
{
    return (llm *)e->impl;
}

void rl_llm_opts_default(rl_llm_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->kv_type = RL_TYPE_F16;
    o->step_tokens = 512;
}

/* ---- sequences ---- */

static int llm_seq_new(rl_engine *e, const rl_seq_desc *d, rl_seq **out)
{
    llm *L = impl(e);
    *out = NULL;
    if (!d || !d->prompt || d->n_prompt == 0)
        return -EINVAL;
    if ((uint64_t)d->n_prompt + d->max_tokens > L->n_ctx)
        return -E2BIG;
    for (uint32_t i = 0; i < d->n_prompt; i++)
        if (d->prompt[i] < 0 || (uint32_t)d->prompt[i] >= L->m->hp.n_vocab)
            return -EINVAL;
    if (d->n_logprobs > RL_LOGPROBS_MAX)
        return -EINVAL;
    rl_seq *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->n_lp = d->n_logprobs; /* (beyond the vocabulary: id -1, -inf) */
    if (s->n_lp && !(s->lp = calloc(1 + s->n_lp, sizeof(*s->lp)))) {
        free(s);
        return -ENOMEM;
    }
    if (rl_prefix_seq_init(L->prefix, &s->ps, &s->kv, d->prompt, d->n_prompt, d->max_tokens, d->priority) < 0) {
        free(s->lp);
        free(s);
        return -ENOMEM;
    }
    if (rl_sample_init(&s->smp, &d->sampling, L->m->hp.n_vocab) < 0) {
        rl_prefix_seq_fini(L->prefix, &s->ps);
        free(s->lp);
        free(s);
        return -ENOMEM;
    }
    s->max_tokens = d->max_tokens;
    s->next = -1;
    s->greedy = (s->smp.p.temperature <= 0 || s->smp.p.top_k == 1) &&
                (s->smp.p.repeat_penalty == 1.0f || s->smp.p.repeat_last_n == 0);
    for (uint32_t i = 0; i < d->n_prompt; i++)
        rl_sample_accept(&s->smp, d->prompt[i]);
    *out = s;
    return 0;
}

/* Counters of the step just run (n_seqs 0: only the KV figures changed). The
 * idle count is kept by the pool as references change (no scan of the cache). */
static void publish_stats(llm *L, uint32_t n_seqs, uint32_t n_tokens, uint32_t n_sampled, uint32_t n_top,
                          uint64_t step_ns, uint64_t fwd_ns)
{
    rl_kv_stats ks;
    rl_kv_get_stats(L->kv, &ks);
    rl_prefix_stats ps;
    rl_prefix_get_stats(L->prefix, &ps);
    uint32_t idle = rl_prefix_idle_blocks(L->prefix);
    pthread_mutex_lock(&L->st_mu);
    rl_engine_stats *st = &L->st;
    if (n_seqs) {
        st->steps++;
        st->batch_seqs += n_seqs;
        st->batch_tokens += n_tokens;
        if (n_seqs > st->max_batch)
            st->max_batch = n_seqs;
    }
    st->sampled += n_sampled;
    st->sampled_top_k += n_top;
    st->step_ns += step_ns;
    st->forward_ns += fwd_ns;
    if (n_tokens > n_seqs) { /* a step that carried prompt tokens */
        st->prompt_steps++;
        st->prompt_step_ns += step_ns;
    }
    st->step_tokens = L->step_tokens;
    st->prefix_lookups = ps.lookups;
    st->prefix_hits = ps.hits;
    st->prefix_lookup_tokens = ps.lookup_tokens;
    st->prefix_hit_tokens = ps.hit_tokens;
    st->preempted = ps.preempted;
    st->kv_blocks_total = ks.blocks_total;
    st->kv_blocks_free = ks.blocks_free;
    st->kv_blocks_cached = idle;
    st->kv_blocks_used = ks.blocks_used - idle;
    st->kv_block_bytes = ks.block_bytes;
    st->kv_block_positions = RL_KV_BLOCK;
    pthread_mutex_unlock(&L->st_mu);
}

static void llm_get_stats(rl_engine *e, rl_engine_stats *out)
{
    llm *L = impl(e);
    pthread_mutex_lock(&L->st_mu);
    *out = L->st;
    pthread_mutex_unlock(&L->st_mu);
}

static void llm_seq_free(rl_engine *e, rl_seq *s)
{
    if (!s)
        return;
    rl_prefix_seq_fini(impl(e)->prefix, &s->ps); /* releases its KV blocks now */
    rl_sample_free(&s->smp);
    free(s->lp);
    free(s);
    publish_stats(impl(e), 0, 0, 0, 0, 0, 0);
}

/* ---- the step: gather, one forward, sample ---- */

static int ensure_logits(llm *L, uint32_t rows)
{
    if (rows <= L->logit_rows)
        return 0;
    float *p = realloc(L->logits, sizeof(float) * L->m->hp.n_vocab * rows);
    if (!p)
        return -ENOMEM;
    L->logits = p;
    L->logit_rows = rows;
    return 0;
}

/* Host sampling of a step's rows, spread over threads: each row has its own
 * sampler and logits, so rows are independent; tokens land in argtok. */
typedef struct sample_job {
    llm *L;
    rl_step_item *items;
    const uint32_t *rows; /* fseq indices with logits */
    uint32_t n;
    atomic_uint next;
} sample_job;

/* Log-probabilities from a device's candidates (fs->top_k >= n_lp of them,
 * the chosen token among them) and the row's normalizer. */
static void top_logprobs(rl_seq *s, const rl_fwd_seq *fs, int32_t tok)
{
    rl_lp_norm nm = {.max = fs->top[0].logit, .lse = fs->norm, .n_vocab = s->smp.n_vocab};
    s->lp[0] = (rl_token_logprob){tok, NAN};
    for (uint32_t i = 0; i < fs->top_k; i++) {
        float v = rl_logprob_value(&nm, fs->top[i].logit);
        if (i < s->n_lp)
            s->lp[1 + i] = (rl_token_logprob){fs->top[i].id, v};
        if (fs->top[i].id == tok)
            s->lp[0].logprob = v;
    }
    for (uint32_t i = fs->top_k; i < s->n_lp; i++) /* a vocabulary smaller than n_lp */
        s->lp[1 + i] = (rl_token_logprob){-1, -INFINITY};
}

static void sample_rows_fn(void *ctx, int ith, int nth)
{
    (void)ith, (void)nth;
    sample_job *j = ctx;
    for (uint32_t i; (i = atomic_fetch_add(&j->next, 1)) < j->n;) {
        uint32_t f = j->rows[i];
        rl_seq *s = j->items[j->L->fitem[f]].seq;
        const rl_fwd_seq *fs = &j->L->fseqs[f];
        if (fs->top) { /* the device's k best, the sampler's own k first */
            int32_t tok = rl_sample_next_top(&s->smp, fs->top, rl_sample_top_only(&s->smp, UINT32_MAX));
            if (s->n_lp)
                top_logprobs(s, fs, tok);
            j->L->argtok[f] = tok;
            continue;
        }
        rl_lp_norm nm;
        if (s->n_lp) /* from the row as the model gave it: before the sampler's penalty */
            rl_logprob_row(fs->logits, s->smp.n_vocab, s->n_lp, &nm, s->lp + 1);
        int32_t tok = rl_sample_next(&s->smp, fs->logits);
        if (s->n_lp)
            s->lp[0] = (rl_token_logprob){tok, rl_logprob_value(&nm, rl_sample_raw_logit(&s->smp, fs->logits, tok))};
        j->L->argtok[f] = tok;
    }
}

/* The rows of fseqs[0..nf) with logits get their token in argtok: on the
 * forward's pool (CPU), or on a few threads of the engine's own (device
 * backends: a 32,000-token vocabulary costs ~0.1 ms a row even with top-k by
 * heap, so 64 sampling clients would add milliseconds to every step). */
static void sample_rows(llm *L, rl_step_item *items, uint32_t nf)
{
    uint32_t *rows = L->fitem + L->step_tokens; /* scratch after fitem */
    uint32_t n = 0;
    for (uint32_t j = 0; j < nf; j++)
        if (L->fseqs[j].logits)
            rows[n++] = j;
    if (n == 0)
        return;
    if (n > 1 && L->be && !L->spool) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        if (nc >= 2)
            L->spool = rl_pool_new(nc > 8 ? 8 : (int)nc);
    }
    rl_pool *p = L->be ? L->spool : L->pool;
    sample_job j = {.L = L, .items = items, .rows = rows, .n = n};
    atomic_init(&j.next, 0);
    if (n > 1 && p)
        rl_pool_run(p, sample_rows_fn, &j);
    else
        sample_rows_fn(&j, 0, 1);
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int llm_step(rl_engine *e, rl_step_item *items, uint32_t n)
{
    uint64_t t_step = now_ns();
    llm *L = impl(e);
    uint32_t budget = L->step_tokens, nf = 0, n_logits = 0, n_tok = 0;
    uint64_t id = ++L->step_id;
    for (uint32_t i = 0; i < n; i++) {
        items[i].token = -1;
        items[i].logprobs = NULL;
        items[i].status = 0;
        rl_seq *s = items[i].seq;
        if (!s || s->step_id == id) /* a sequence may appear once per step */
            items[i].status = -EINVAL;
        else
            s->step_id = id;
    }
    /* Priority levels from the highest down (latency-critical first, so they can
     * take KV from lower ones); in each, pass 0 resumes preempted sequences
     * (recomputing their KV; they are older than whoever took it, so they may
     * take it back), pass 1 takes decode tokens (latency), pass 2 prompt chunks
     * with what is left, in the order given. */
    int level = 256;
    for (;;) {
        int pr = -1;
        for (uint32_t i = 0; i < n; i++)
            if (items[i].seq && items[i].seq->ps.priority < level && items[i].seq->ps.priority > pr)
                pr = items[i].seq->ps.priority;
        if (pr < 0)
            break;
        level = pr;
    for (int pass = 0; pass < 3; pass++) {
        for (uint32_t i = 0; i < n && budget > 0 && nf < L->step_tokens; i++) {
            rl_seq *s = items[i].seq;
            if (items[i].status < 0)
                continue;
            if (s->ps.in_step || s->ps.priority != pr)
                continue; /* taken by an earlier pass, or another priority level */
            bool decode = s->kv.n_pos == s->ps.n_toks;
            int want_pass = decode ? 1 : s->next >= 0 ? 0 : 2;
            if (want_pass != pass)
                continue;
            if (decode && s->next < 0) { /* finished prompt but nothing sampled: cannot happen */
                items[i].status = -EINVAL;
                continue;
            }
            if (!decode && s->kv.n_pos == 0)
                rl_prefix_seq_attach(L->prefix, &s->ps); /* shared prompt blocks skip their prefill */
            uint32_t take = decode ? 1 : s->ps.n_toks - s->kv.n_pos;
            if (take > budget)
                take = budget;
            uint32_t need = s->kv.n_pos + take;
            int rc = need > L->n_ctx ? -ENOSPC : rl_prefix_seq_reserve(L->prefix, &s->ps, need);
            if (rc == -EAGAIN)
                continue; /* yielded its KV to others: recomputes in a later step */
            if (rc < 0) {
                items[i].status = rc;
                continue;
            }
            s->ps.in_step = true;
            /* logits when this completes the prompt of a sequence that has not sampled yet */
            bool want = decode || (s->next < 0 && need == s->ps.n_toks);
            L->fseqs[nf] = (rl_fwd_seq){.kv = &s->kv, .tokens = decode ? &s->next : s->ps.toks + s->kv.n_pos, .n_tok = take};
            if (want)
                n_logits++;
            L->fitem[nf++] = i;
            budget -= take;
            n_tok += take;
        }
    }
    }
    if (nf == 0) {
        publish_stats(L, 0, 0, 0, 0, 0, 0); /* evictions or preemptions may have happened */
        return 0;
    }
    int rc = 0;
    if (ensure_logits(L, n_logits) < 0) {
        rc = -ENOMEM;
        goto fail_all;
    }
    uint32_t r = 0;
    for (uint32_t j = 0; j < nf; j++) {
        rl_seq *s = items[L->fitem[j]].seq;
        bool decode = s->kv.n_pos == s->ps.n_toks;
        L->fseqs[j].argmax = NULL;
        L->fseqs[j].tok_dst = NULL;
        if (!(decode || (s->next < 0 && s->kv.n_pos + L->fseqs[j].n_tok == s->ps.n_toks)))
            continue;
        if (L->be && s->greedy && !s->n_lp) { /* only the token leaves the device */
            L->fseqs[j].argmax = &L->argtok[j];
            L->fseqs[j].tok_dst = items[L->fitem[j]].tok_dst; /* the device may write it too */
        }
        else {
            L->fseqs[j].logits = L->logits + (size_t)(r++) * L->m->hp.n_vocab;
            /* the device may send the k best logits alone when they decide the draw
             * (and, for log-probabilities, hold the n_lp best and come with the normalizer) */
            uint32_t k = L->be ? rl_sample_top_only(&s->smp, L->be->max_top_k) : 0;
            uint32_t n_lp = s->n_lp < L->m->hp.n_vocab ? s->n_lp : L->m->hp.n_vocab;
            L->fseqs[j].top_k = k && n_lp > k ? n_lp : k;
            L->fseqs[j].top_norm = s->n_lp > 0;
        }
    }
    uint64_t f0 = now_ns();
    rc = L->be ? L->be->forward(L->be->ctx, L->fseqs, nf) : rl_forward(L->fwd, L->fseqs, nf);
    uint64_t fwd_ns = now_ns() - f0;
    if (rc < 0)
        goto fail_all;
    sample_rows(L, items, nf);
    for (uint32_t j = 0; j < nf; j++) {
        rl_step_item *it = &items[L->fitem[j]];
        rl_seq *s = it->seq;
        s->ps.in_step = false;
        if (L->fseqs[j].tokens == &s->next)
            rl_prefix_seq_push(&s->ps, s->next); /* fed: now part of the history */
        else
            rl_prefix_seq_register(L->prefix, &s->ps);
        if (!L->fseqs[j].logits && !L->fseqs[j].argmax)
            continue;
        int32_t tok = L->argtok[j]; /* the device's argmax (fseqs[j].argmax points here), or sample_rows' draw */
        rl_sample_accept(&s->smp, tok);
        s->next = tok;
        s->n_gen++;
        it->token = tok;
        it->logprobs = s->n_lp ? s->lp : NULL;
        /* zero copy: the id goes to the client's cell, unless the device wrote it there */
        if (it->tok_dst && !(L->fseqs[j].argmax && L->fseqs[j].tok_dst == NULL))
            *it->tok_dst = tok;
    }
    uint32_t n_sampled = 0, n_top = 0;
    for (uint32_t j = 0; j < nf; j++) {
        const rl_sampling *sp = &items[L->fitem[j]].seq->smp.p;
        bool drawn = L->fseqs[j].logits && sp->temperature > 0 && sp->top_k != 1; /* not an argmax */
        n_sampled += drawn;
        n_top += drawn && L->fseqs[j].top;
    }
    publish_stats(L, nf, n_tok, n_sampled, n_top, now_ns() - t_step, fwd_ns);
    return 0;
fail_all:
    for (uint32_t j = 0; j < nf; j++)
        items[L->fitem[j]].seq->ps.in_step = false;
    publish_stats(L, 0, 0, 0, 0, 0, 0);
    for (uint32_t i = 0; i < n; i++)
        items[i].status = rc;
    return rc;
}

/* ---- text ---- */

static int llm_tokenize(rl_engine *e, const char *text, size_t len, bool add_special,
                        bool parse_special, int32_t *out, size_t cap)
{
    return rl_engine_text_tokenize(&impl(e)->text, text, len, add_special, parse_special, out, cap);
}

static int llm_token_piece(rl_engine *e, int32_t tok, char *buf, size_t cap)
{
    return rl_engine_text_piece(&impl(e)->text, tok, buf, cap);
}

static bool llm_is_eog(rl_engine *e, int32_t tok)
{
    return rl_engine_text_is_eog(&impl(e)->text, tok);
}

static int llm_chat_tokenize(rl_engine *e, const rl_chat_msg *msgs, uint32_t n, bool add_special,
                             int32_t *out, size_t cap)
{
    return rl_engine_text_chat_tokenize(&impl(e)->text, msgs, n, add_special, out, cap);
}

static int llm_chat_format(rl_engine *e, const rl_chat_msg *msgs, uint32_t n, char *out, size_t cap)
{
    return rl_engine_text_chat(&impl(e)->text, msgs, n, out, cap);
}

static void llm_get_info(rl_engine *e, rl_engine_info *info)
{
    llm *L = impl(e);
    rl_engine_text_model_info(&L->text, L->m, info);
    snprintf(info->backend, sizeof info->backend, "%s", L->be ? L->be->name : "cpu");
    info->n_ctx = L->n_ctx;
    rl_kv_stats st;
    rl_kv_get_stats(L->kv, &st);
    info->kv_bytes = (uint64_t)st.blocks_used * st.block_bytes;
}

const char *rl_engine_llm_tokenizer_error(rl_engine *e)
{
    return impl(e)->text.tok ? NULL : impl(e)->text.err;
}

void rl_engine_llm_kv_stats(rl_engine *e, rl_llm_kv_stats *out)
{
    rl_kv_stats st;
    rl_kv_get_stats(impl(e)->kv, &st);
    /* blocks only the prefix cache holds are reclaimable at once: count them free */
    uint32_t idle = rl_prefix_idle_blocks(impl(e)->prefix);
    out->blocks_total = st.blocks_total;
    out->blocks_used = st.blocks_used - idle;
    out->blocks_free = st.blocks_free + idle;
    out->block_positions = RL_KV_BLOCK;
    out->block_bytes = st.block_bytes;
}

static void llm_destroy(rl_engine *e)
{
    if (!e)
        return;
    llm *L = impl(e);
    rl_fwd_free(L->fwd);
    rl_prefix_free(L->prefix); /* before the pool it holds blocks of */
    rl_kv_free(L->kv);
    if (L->be)
        L->be->close(L->be->ctx);
    pthread_mutex_destroy(&L->st_mu);
    rl_pool_free(L->pool);
    rl_pool_free(L->spool);
    rl_engine_text_free(&L->text);
    rl_model_free(L->m);
    free(L->fseqs);
    free(L->fitem);
    free(L->argtok);
    free(L->logits);
    free(L);
}

/* Zero copy: the CPU writes host memory directly; a device backend registers it. */
static int llm_map_region(rl_engine *e, void *base, size_t len)
{
    llm *L = impl(e);
    if (!base || !len)
        return -EINVAL;
    return L->be && L->be->map_region ? L->be->map_region(L->be->ctx, base, len) : 0;
}

static void llm_unmap_region(rl_engine *e, void *base)
{
    llm *L = impl(e);
    if (L->be && L->be->unmap_region)
        L->be->unmap_region(L->be->ctx, base);
}

static const rl_engine_ops llm_ops = {
    .seq_new = llm_seq_new, .seq_free = llm_seq_free, .step = llm_step, .tokenize = llm_tokenize,
    .token_piece = llm_token_piece, .is_eog = llm_is_eog, .chat_format = llm_chat_format,
    .chat_tokenize = llm_chat_tokenize,
    .get_info = llm_get_info, .destroy = llm_destroy, .get_stats = llm_get_stats,
    .map_region = llm_map_region, .unmap_region = llm_unmap_region,
};

/* ---- creation ---- */

/* Touch every page of the weights once so the first request does not pay the
 * page faults, reporting progress as we go. */
static void prefault(const rl_model *m, const rl_llm_opts *o)
{
    const volatile uint8_t *p = m->gguf->base;
    size_t n = m->gguf->size, step = 4096, chunk = n / 64 + 1;
    uint8_t sink = 0;
    for (size_t i = 0; i < n; i += step) {
        sink ^= p[i];
        if (o->progress && i / chunk != (i + step) / chunk)
            o->progress(o->progress_ctx, 0.1f + 0.85f * (float)i / (float)n);
    }
    (void)sink;
}

int rl_engine_llm_create_opts(const char *path, const rl_llm_opts *opts, rl_engine **out, char *err, size_t errlen)
{
    *out = NULL;
    rl_llm_opts o;
    if (opts)
        o = *opts;
    else
        rl_llm_opts_default(&o);
    if (o.step_tokens == 0)
        o.step_tokens = 512;
    if (o.step_tokens > 8192)
        o.step_tokens = 8192;
    rl_ops_init();
    rl_gemm_init();
    llm *L = calloc(1, sizeof(*L));
    if (!L) {
        if (o.backend)
            o.backend->close(o.backend->ctx);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    L->base.ops = &llm_ops;
    L->base.impl = L;
    L->be = o.backend;
    pthread_mutex_init(&L->st_mu, NULL);
    if (o.progress)
        o.progress(o.progress_ctx, 0.f);
    int rc = rl_model_load(path, &L->m, err, errlen);
    if (rc < 0)
        goto bad;
    if (o.progress)
        o.progress(o.progress_ctx, 0.1f);
    const rl_model_hparams *hp = &L->m->hp;
    rl_engine_text_init(&L->text, L->m->gguf);
    L->n_ctx = o.n_ctx ? o.n_ctx : hp->n_ctx_train;
    if (L->n_ctx > 1u << 20) /* a hostile context_length must not size the pool */
        L->n_ctx = 1u << 20;
    L->step_tokens = o.step_tokens;
    uint32_t ctx_blocks = (L->n_ctx + RL_KV_BLOCK - 1) / RL_KV_BLOCK;
    size_t bb = rl_kv_block_bytes(hp->n_layer, hp->n_head_kv, hp->head_dim, o.kv_type);
    uint64_t n_blocks = o.kv_budget_bytes && bb ? o.kv_budget_bytes / bb : (uint64_t)ctx_blocks * 4;
    if (n_blocks > 1u << 22) /* 64M positions in all; the free list stays small */
        n_blocks = 1u << 22;
    if (n_blocks == 0) {
        snprintf(err, errlen, "KV budget smaller than one block (%zu bytes)", bb);
        rc = -EINVAL;
        goto bad;
    }
    if (L->be) { /* the device holds the KV storage: it may pick the pool size */
        uint32_t nb = o.kv_budget_bytes ? (uint32_t)n_blocks : 0;
        if ((rc = L->be->open(L->be->ctx, L->m, L->n_ctx, L->step_tokens, &nb, err, errlen)) < 0)
            goto bad;
        n_blocks = nb;
        rc = rl_kv_new_external(&L->kv, hp->n_layer, hp->n_head_kv, hp->head_dim, nb, L->be->block_bytes(L->be->ctx),
                                L->be->copy_block, L->be->ctx, err, errlen);
    } else {
        rc = rl_kv_new(&L->kv, hp->n_layer, hp->n_head_kv, hp->head_dim, o.kv_type, (uint32_t)n_blocks, err, errlen);
    }
    if (rc < 0)
        goto bad;
    if (rl_prefix_new(&L->prefix, L->kv, (uint32_t)n_blocks) < 0) {
        snprintf(err, errlen, "out of memory for the prefix cache");
        rc = -ENOMEM;
        goto bad;
    }
    L->fseqs = calloc(L->step_tokens, sizeof(rl_fwd_seq));
    L->fitem = malloc(sizeof(uint32_t) * L->step_tokens * 2); /* then sample_rows' scratch */
    L->argtok = malloc(sizeof(int32_t) * L->step_tokens);
    if (!L->be) {
        L->pool = rl_pool_new(o.n_threads);
        if (L->pool && rl_fwd_new(L->m, L->kv, L->pool, L->step_tokens, &L->fwd) < 0)
            L->fwd = NULL;
    }
    if (!L->fseqs || !L->fitem || !L->argtok || (!L->be && (!L->pool || !L->fwd))) {
        snprintf(err, errlen, "out of memory for compute buffers");
        rc = -ENOMEM;
        goto bad;
    }
    publish_stats(L, 0, 0, 0, 0, 0, 0); /* pool figures from the start */
    if (!L->be) /* a backend read every weight while uploading */
        prefault(L->m, &o);
    if (o.progress)
        o.progress(o.progress_ctx, 1.f);
    *out = &L->base;
    return 0;
bad:
    llm_destroy(&L->base);
    return rc;
}

int rl_engine_llm_create(const char *path, int n_threads, rl_engine **out, char *err, size_t errlen)
{
    rl_llm_opts o;
    rl_llm_opts_default(&o);
    o.n_threads = n_threads;
    return rl_engine_llm_create_opts(path, &o, out, err, errlen);
}
