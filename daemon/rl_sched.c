/* rl_sched.c - admission limits and per-step order (see rl_sched.h). */
#include "rl_sched.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int rl_sched_admit(const rl_sched_limits *lim, const rl_sched_usage *u, uint64_t n_tokens, char *msg,
                   size_t msglen)
{
    uint32_t maxq = lim && lim->max_queued ? lim->max_queued : RL_SCHED_DEFAULT_QUEUED;
    if (u->n_req >= maxq) {
        snprintf(msg, msglen, "too many requests in flight for this client (limit %u): retry later", maxq);
        return -EAGAIN;
    }
    uint64_t maxkv = lim ? lim->max_kv_tokens : 0;
    if (maxkv && u->n_req > 0 && u->kv_tokens + n_tokens > maxkv) {
        snprintf(msg, msglen,
                 "KV quota of this client exceeded (%llu tokens in flight + %llu > limit %llu): retry later",
                 (unsigned long long)u->kv_tokens, (unsigned long long)n_tokens, (unsigned long long)maxkv);
        return -EDQUOT;
    }
    return 0;
}

/* rank_ = round * n_clients + rotated client slot, where round is the k-th
 * entry of that client: priority first, then rank, then arrival. */
static int cmp_ent(const void *a, const void *b)
{
    const rl_sched_ent *x = a, *y = b;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    if (x->rank_ != y->rank_)
        return x->rank_ < y->rank_ ? -1 : 1;
    return x->index < y->index ? -1 : (x->index > y->index);
}

void rl_sched_order(rl_sched_ent *ents, uint32_t n, uint32_t rotate)
{
    if (n < 2)
        return;
    /* Distinct clients in order of first appearance: a linear scan per entry,
     * bounded by MAXC clients (beyond that: arrival order). */
    enum { MAXC = 1024 };
    const void *cl[MAXC];
    uint32_t cnt[MAXC];
    uint32_t nc = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t c = 0;
        while (c < nc && cl[c] != ents[i].client)
            c++;
        if (c == nc) {
            if (nc == MAXC) {
                for (uint32_t k = 0; k < n; k++)
                    ents[k].rank_ = ents[k].index;
                goto sort;
            }
            cl[nc] = ents[i].client;
            cnt[nc++] = 0;
        }
        ents[i].rank_ = c;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t c = ents[i].rank_;
        uint32_t round = cnt[c]++;
        uint32_t rot = (c + nc - rotate % nc) % nc;
        ents[i].rank_ = round * nc + rot;
    }
sort:
    qsort(ents, n, sizeof *ents, cmp_ent);
}
