/* rl_engine_test.c - deterministic engine for tests: echoes the prompt back. */
#include "rl_engine_test.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PREFILL_CHUNK 8u

static atomic_uint g_unhang_gen; /* bumped by rl_engine_test_unhang */
static atomic_int g_tokdst_xor;   /* rl_engine_test_set_tokdst_xor */
static atomic_int g_regions;      /* mapped regions */
static atomic_bool g_map_fail;

/* The mapped ranges (map_region's base and length), to check that every
 * tok_dst falls inside one and that unmap_region names one. */
enum { MAX_RANGES = 64 };
static pthread_mutex_t g_rmu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char *base;
    size_t len;
} g_range[MAX_RANGES];
static atomic_int g_range_errors;
static atomic_size_t g_range_max;

void rl_engine_test_set_tokdst_xor(int32_t x) { atomic_store(&g_tokdst_xor, x); }
int rl_engine_test_regions(void) { return atomic_load(&g_regions); }
int rl_engine_test_range_errors(void) { return atomic_load(&g_range_errors); }
size_t rl_engine_test_largest_range(void) { return atomic_load(&g_range_max); }

static bool in_range(const void *p, size_t n)
{
    pthread_mutex_lock(&g_rmu);
    bool in = false;
    for (int i = 0; i < MAX_RANGES && !in; i++)
        in = g_range[i].base && (const char *)p >= g_range[i].base &&
             (const char *)p + n <= g_range[i].base + g_range[i].len;
    pthread_mutex_unlock(&g_rmu);
    return in;
}
void rl_engine_test_set_map_fail(bool fail) { atomic_store(&g_map_fail, fail); }

struct rl_seq {
    int32_t *prompt;
    uint32_t n_prompt;
    uint32_t consumed; /* prompt tokens prefilled */
    uint32_t emitted;  /* echo position (over non-special prompt tokens) */
    int slow, hang;
    unsigned hang_gen; /* hangs until g_unhang_gen moves past this */
};

void rl_engine_test_unhang(void)
{
    atomic_fetch_add(&g_unhang_gen, 1);
}

static int starts_with(const int32_t *p, uint32_t n, const char *s)
{
    uint32_t i = 0;
    if (n > 0 && p[0] == RL_TEST_BOS)
        p++, n--;
    for (; s[i]; i++)
        if (i >= n || p[i] != (unsigned char)s[i])
            return 0;
    return 1;
}

static int t_seq_new(rl_engine *e, const rl_seq_desc *d, rl_seq **out)
{
    (void)e;
    if (!d->prompt || d->n_prompt == 0)
        return -EINVAL;
    if ((uint64_t)d->n_prompt + d->max_tokens > RL_TEST_CTX)
        return -E2BIG;
    for (uint32_t i = 0; i < d->n_prompt; i++)
        if (d->prompt[i] < 0 || d->prompt[i] >= RL_TEST_VOCAB)
            return -EINVAL;
    rl_seq *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->prompt = malloc(d->n_prompt * sizeof(int32_t));
    if (!s->prompt) {
        free(s);
        return -ENOMEM;
    }
    memcpy(s->prompt, d->prompt, d->n_prompt * sizeof(int32_t));
    s->n_prompt = d->n_prompt;
    s->slow = starts_with(s->prompt, s->n_prompt, "__slow__");
    s->hang = starts_with(s->prompt, s->n_prompt, "__hang__");
    s->hang_gen = atomic_load(&g_unhang_gen);
    *out = s;
    return 0;
}

static void t_seq_free(rl_engine *e, rl_seq *s)
{
    (void)e;
    if (s) {
        free(s->prompt);
        free(s);
    }
}

static int32_t next_token(rl_seq *s)
{
    while (s->emitted < s->n_prompt) {
        int32_t t = s->prompt[s->emitted++];
        if (t < 256)
            return t;
    }
    return RL_TEST_EOS;
}

static int t_step(rl_engine *e, rl_step_item *items, uint32_t n)
{
    (void)e;
    int slow = 0, hang = 0;
    unsigned hang_gen = 0;
    for (uint32_t i = 0; i < n; i++) {
        rl_seq *s = items[i].seq;
        slow |= s->slow;
        if (s->hang && !hang) {
            hang = 1;
            hang_gen = s->hang_gen;
        }
        items[i].status = 0;
        if (s->consumed < s->n_prompt) {
            uint32_t left = s->n_prompt - s->consumed;
            s->consumed += left < PREFILL_CHUNK ? left : PREFILL_CHUNK;
            if (s->consumed < s->n_prompt) {
                items[i].token = -1;
                continue;
            }
        }
        items[i].token = next_token(s);
        if (items[i].tok_dst) { /* zero copy: where the client reads the id */
            if (!in_range(items[i].tok_dst, sizeof(int32_t)))
                atomic_fetch_add(&g_range_errors, 1);
            *items[i].tok_dst = items[i].token ^ atomic_load(&g_tokdst_xor);
        }
    }
    while (hang && atomic_load(&g_unhang_gen) == hang_gen) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    if (slow) {
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

static int t_tokenize(rl_engine *e, const char *text, size_t len, bool add_special,
                      bool parse_special, int32_t *out, size_t cap)
{
    (void)e;
    (void)parse_special; /* bytes have no control-token spellings */
    size_t n = len + (add_special ? 1 : 0);
    if (n > (size_t)INT32_MAX)
        return -E2BIG;
    size_t k = 0;
    if (add_special && k < cap)
        out[k] = RL_TEST_BOS;
    k = add_special ? 1 : 0;
    for (size_t i = 0; i < len; i++, k++)
        if (k < cap)
            out[k] = (unsigned char)text[i];
    return (int)n;
}

static int t_token_piece(rl_engine *e, int32_t tok, char *buf, size_t cap)
{
    (void)e;
    if (tok < 0 || tok >= RL_TEST_VOCAB)
        return -EINVAL;
    if (tok >= 256)
        return 0;
    if (cap >= 1)
        buf[0] = (char)tok;
    return 1;
}

static bool t_is_eog(rl_engine *e, int32_t tok)
{
    (void)e;
    return tok == RL_TEST_EOS;
}

static int t_chat_format(rl_engine *e, const rl_chat_msg *m, uint32_t n, char *out, size_t cap)
{
    (void)e;
    size_t k = 0;
#define PUT(p, l)                                                                                  \
    do {                                                                                           \
        size_t l_ = (l);                                                                           \
        if (k < cap)                                                                               \
            memcpy(out + k, (p), k + l_ <= cap ? l_ : cap - k);                                    \
        k += l_;                                                                                   \
    } while (0)
    for (uint32_t i = 0; i < n; i++) {
        if (!m[i].role)
            return -EINVAL;
        PUT("<|", 2);
        PUT(m[i].role, strlen(m[i].role));
        PUT("|>", 2);
        PUT(m[i].content, m[i].content_len);
        PUT("\n", 1);
    }
    PUT("<|assistant|>", 13);
#undef PUT
    if (k > (size_t)INT32_MAX)
        return -E2BIG;
    return (int)k;
}

static void t_get_info(rl_engine *e, rl_engine_info *info)
{
    (void)e;
    memset(info, 0, sizeof *info);
    strcpy(info->name, "ringlm-test");
    strcpy(info->arch, "test");
    strcpy(info->backend, "test");
    strcpy(info->type, "none");
    info->n_vocab = RL_TEST_VOCAB;
    info->n_ctx = RL_TEST_CTX;
    info->n_layer = 1;
    info->n_embd = 1;
    info->n_head = 1;
    info->n_head_kv = 1;
    info->n_ff = 1;
    info->bos = RL_TEST_BOS;
    info->eos = RL_TEST_EOS;
}

static void t_destroy(rl_engine *e)
{
    free(e);
}

static int t_map_region(rl_engine *e, void *base, size_t len)
{
    (void)e;
    if (!base || !len)
        return -EINVAL;
    if (atomic_load(&g_map_fail))
        return -ENOTSUP;
    pthread_mutex_lock(&g_rmu);
    int i = 0;
    while (i < MAX_RANGES && g_range[i].base)
        i++;
    if (i < MAX_RANGES) {
        g_range[i].base = base;
        g_range[i].len = len;
    }
    pthread_mutex_unlock(&g_rmu);
    if (i == MAX_RANGES)
        return -ENOMEM;
    if (len > atomic_load(&g_range_max))
        atomic_store(&g_range_max, len);
    atomic_fetch_add(&g_regions, 1);
    return 0;
}

static void t_unmap_region(rl_engine *e, void *base)
{
    (void)e;
    pthread_mutex_lock(&g_rmu);
    int i = 0;
    while (i < MAX_RANGES && g_range[i].base != base)
        i++;
    if (i < MAX_RANGES)
        g_range[i].base = NULL;
    pthread_mutex_unlock(&g_rmu);
    if (i == MAX_RANGES) /* not a base that map_region was given */
        atomic_fetch_add(&g_range_errors, 1);
    atomic_fetch_sub(&g_regions, 1);
}

static const rl_engine_ops test_ops = {
    .map_region = t_map_region,
    .unmap_region = t_unmap_region,
    .seq_new = t_seq_new,
    .seq_free = t_seq_free,
    .step = t_step,
    .tokenize = t_tokenize,
    .token_piece = t_token_piece,
    .is_eog = t_is_eog,
    .chat_format = t_chat_format,
    .get_info = t_get_info,
    .destroy = t_destroy,
};

int rl_engine_test_create(rl_engine **out)
{
    rl_engine *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    e->ops = &test_ops;
    *out = e;
    return 0;
}
