/* ringlm_cli.c - the `ringlm` command: generate, chat, info. */
#include "ringlm.h"
#include "ringlm_cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: ringlm [--socket PATH] COMMAND [options]\n"
               "  generate [-n N] [--temp T] [--seed S] [--top-k K] [--top-p P] [--min-p P]\n"
               "           [--repeat-penalty R] [--stop STR]... [--priority N] [--timings]\n"
               "           [--logprobs N] \"prompt\"   (N <= 20: each token's log-probability and the\n"
               "           N likeliest tokens', on stderr)\n"
               "  chat     [same sampling options] [--system TEXT]   (user lines from stdin)\n"
               "  info     [--json]\n"
               "  tokenize --model FILE [--add-special] [--parse-special] TEXT\n"
               "The socket defaults to $RINGLM_SOCKET, then the built-in path.\n");
}

static int die(const char *what, int rc)
{
    fprintf(stderr, "ringlm: %s: %s (%s)\n", what, ringlm_strerror(rc), ringlm_last_error());
    return 1;
}

typedef struct gen_opts {
    ringlm_params p;
    const char *stop[8];
    int timings;
    const char *system;
} gen_opts;

/* Parse sampling options; returns optind of the first operand or -1. */
static int parse_gen(int argc, char **argv, gen_opts *g)
{
    ringlm_params_default(&g->p);
    g->p.stop = g->stop;
    static const struct option lo[] = {
        {"temp", required_argument, 0, 't'},   {"seed", required_argument, 0, 's'},
        {"top-k", required_argument, 0, 'k'},  {"top-p", required_argument, 0, 'p'},
        {"min-p", required_argument, 0, 'm'},  {"repeat-penalty", required_argument, 0, 'r'},
        {"stop", required_argument, 0, 'S'},   {"timings", no_argument, 0, 'T'},
        {"system", required_argument, 0, 'y'}, {"priority", required_argument, 0, 'P'},
        {"logprobs", required_argument, 0, 'L'}, {0, 0, 0, 0},
    };
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "n:", lo, NULL)) != -1) {
        switch (ch) {
        case 'n': g->p.max_tokens = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 't': g->p.temperature = strtof(optarg, NULL); break;
        case 's': g->p.seed = strtoull(optarg, NULL, 10); break;
        case 'k': g->p.top_k = atoi(optarg); break;
        case 'p': g->p.top_p = strtof(optarg, NULL); break;
        case 'm': g->p.min_p = strtof(optarg, NULL); break;
        case 'r': g->p.repeat_penalty = strtof(optarg, NULL); break;
        case 'S':
            if (g->p.n_stop >= 8) {
                fprintf(stderr, "ringlm: at most 8 --stop\n");
                return -1;
            }
            g->stop[g->p.n_stop++] = optarg;
            break;
        case 'T': g->timings = 1; break;
        case 'P': { /* 0 normal, higher: latency-critical (scheduled first) */
            unsigned long v = strtoul(optarg, NULL, 10);
            g->p.priority = (uint8_t)(v > 255 ? 255 : v);
            break;
        }
        case 'y': g->system = optarg; break;
        case 'L': { /* the daemon refuses more than 20 */
            unsigned long v = strtoul(optarg, NULL, 10);
            g->p.logprobs = (uint8_t)(v > 255 ? 255 : v);
            break;
        }
        default: return -1;
        }
    }
    return optind;
}

/* Stream one request to stdout; append the text to *acc when given. */
static int stream(ringlm_conn *c, ringlm_req r, int timings, char **acc, size_t *acc_len)
{
    for (;;) {
        ringlm_event ev;
        int rc = ringlm_next(c, r, &ev, -1);
        if (rc < 0)
            return die("reading results", rc);
        if (ev.type == RINGLM_EV_TOKENS) {
            fwrite(ev.text, 1, ev.text_len, stdout);
            fflush(stdout);
            for (size_t t = 0; ev.logprobs && t < ev.n_tokens; t++) { /* token lp | best alternatives */
                const ringlm_logprob *g = ev.logprobs + t * (1 + ev.n_top_logprobs);
                fprintf(stderr, "\n[token %d %.4f |", g[0].token, g[0].logprob);
                for (size_t k = 1; k <= ev.n_top_logprobs; k++)
                    fprintf(stderr, " %d %.4f", g[k].token, g[k].logprob);
                fprintf(stderr, "]\n");
            }
            if (acc) {
                char *n = realloc(*acc, *acc_len + ev.text_len + 1);
                if (n) {
                    memcpy(n + *acc_len, ev.text, ev.text_len);
                    *acc_len += ev.text_len;
                    n[*acc_len] = 0;
                    *acc = n;
                }
            }
            ringlm_release(c, &ev);
            continue;
        }
        int ret = 0;
        if (ev.type == RINGLM_EV_ERROR) {
            fprintf(stderr, "\nringlm: request failed: %s: %.*s\n", ringlm_strerror(ev.status),
                    (int)ev.text_len, ev.text);
            ret = 1;
        } else if (timings) {
            const ringlm_timings *t = &ev.timings;
            fprintf(stderr,
                    "\n[prompt %u tokens, %.1f tok/s; generated %u tokens, %.1f tok/s; "
                    "first token %.2f ms; total %.2f ms]\n",
                    t->prompt_tokens, t->prompt_tps, t->gen_tokens, t->gen_tps, t->ttft_ms,
                    t->total_ms);
        }
        ringlm_release(c, &ev);
        return ret;
    }
}

static int cmd_generate(ringlm_conn *c, int argc, char **argv)
{
    gen_opts g = {0};
    int i = parse_gen(argc, argv, &g);
    if (i < 0 || i != argc - 1) {
        usage(stderr);
        return 2;
    }
    ringlm_req r;
    int rc = ringlm_submit_text(c, argv[i], strlen(argv[i]), &g.p, &r);
    if (rc < 0)
        return die("submit", rc);
    rc = stream(c, r, g.timings, NULL, NULL);
    printf("\n");
    return rc;
}

typedef struct history {
    ringlm_chat_msg *msgs;
    char **texts; /* owned copies of the contents */
    size_t n;
} history;

/* Append a message; takes ownership of text. Returns 0 or -ENOMEM. */
static int history_push(history *h, const char *role, char *text)
{
    if (!text)
        return -ENOMEM;
    ringlm_chat_msg *m = realloc(h->msgs, (h->n + 1) * sizeof *m);
    if (!m) {
        free(text);
        return -ENOMEM;
    }
    h->msgs = m;
    char **t = realloc(h->texts, (h->n + 1) * sizeof *t);
    if (!t) {
        free(text);
        return -ENOMEM;
    }
    h->texts = t;
    h->texts[h->n] = text;
    h->msgs[h->n] = (ringlm_chat_msg){role, text};
    h->n++;
    return 0;
}

static void history_free(history *h)
{
    for (size_t k = 0; k < h->n; k++)
        free(h->texts[k]);
    free(h->texts);
    free(h->msgs);
}

static int cmd_chat(ringlm_conn *c, int argc, char **argv)
{
    gen_opts g = {0};
    int i = parse_gen(argc, argv, &g);
    if (i < 0 || i != argc) {
        usage(stderr);
        return 2;
    }
    history h = {0};
    int ret = 0;
    if (g.system && history_push(&h, "system", strdup(g.system)) < 0)
        return die("chat", -ENOMEM);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    fprintf(stderr, "> ");
    while ((len = getline(&line, &cap, stdin)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = 0;
        if (len == 0) {
            fprintf(stderr, "> ");
            continue;
        }
        if (history_push(&h, "user", strdup(line)) < 0) {
            ret = die("chat", -ENOMEM);
            break;
        }
        ringlm_req r;
        int rc = ringlm_submit_chat(c, h.msgs, h.n, &g.p, &r);
        if (rc < 0) {
            ret = die("submit", rc);
            break;
        }
        char *answer = NULL;
        size_t alen = 0;
        rc = stream(c, r, g.timings, &answer, &alen);
        printf("\n");
        if (rc) {
            free(answer);
            ret = rc;
            break;
        }
        if (history_push(&h, "assistant", answer ? answer : strdup("")) < 0) {
            ret = die("chat", -ENOMEM);
            break;
        }
        fprintf(stderr, "> ");
    }
    free(line);
    history_free(&h);
    return ret;
}

/* The daemon's batching statistics as flat keys of the info object. */
static void print_sched_json(const ringlm_daemon_info *in)
{
    unsigned long long steps = in->sched.steps;
    double mean = steps ? (double)in->sched.batch_seqs / (double)steps : 0;
    printf("\"steps\":%llu,\"max_batch\":%u,\"mean_batch\":%.3f,\"step_tokens\":%u,"
           "\"prefix_lookups\":%llu,\"prefix_hits\":%llu,\"prefix_lookup_tokens\":%llu,"
           "\"prefix_hit_tokens\":%llu,\"preempted\":%llu,\"kv_blocks_total\":%u,\"kv_blocks_used\":%u,"
           "\"kv_blocks_free\":%u,\"kv_blocks_cached\":%u,\"kv_block_bytes\":%llu,\"sampled\":%llu,"
           "\"sampled_top_k\":%llu",
           steps, in->sched.max_batch, mean, in->sched.step_tokens,
           (unsigned long long)in->sched.prefix_lookups, (unsigned long long)in->sched.prefix_hits,
           (unsigned long long)in->sched.prefix_lookup_tokens, (unsigned long long)in->sched.prefix_hit_tokens,
           (unsigned long long)in->sched.preempted, in->sched.kv_blocks_total, in->sched.kv_blocks_used,
           in->sched.kv_blocks_free, in->sched.kv_blocks_cached, (unsigned long long)in->sched.kv_block_bytes,
           (unsigned long long)in->sched.sampled, (unsigned long long)in->sched.sampled_top_k);
}

static int cmd_info(ringlm_conn *c, int argc, char **argv)
{
    int json = argc == 2 && strcmp(argv[1], "--json") == 0;
    if (argc > 2 || (argc == 2 && !json)) {
        usage(stderr);
        return 2;
    }
    ringlm_daemon_info in;
    int rc = ringlm_info(c, &in, 10000);
    if (rc < 0)
        return die("info", rc);
    if (json) {
        /* The strings come from the model file: escape them. */
        printf("{\"daemon_version\":\"%s\",\"protocol\":%u,\"clients\":%u,", in.daemon_version,
               in.protocol, in.n_clients);
        const char *keys[] = {"name", "arch", "backend", "type"};
        const char *vals[] = {in.name, in.arch, in.backend, in.type};
        for (int k = 0; k < 4; k++) {
            printf("\"%s\":\"", keys[k]);
            for (const unsigned char *s = (const unsigned char *)vals[k]; *s; s++) {
                if (*s == '"' || *s == '\\')
                    printf("\\%c", *s);
                else if (*s < 0x20)
                    printf("\\u%04x", *s);
                else
                    putchar(*s);
            }
            printf("\",");
        }
        printf("\"n_vocab\":%u,\"n_ctx\":%u,\"n_layer\":%u,\"n_embd\":%u,\"n_head\":%u,"
               "\"n_head_kv\":%u,\"n_ff\":%u,\"bos\":%d,\"eos\":%d,\"weight_bytes\":%llu,"
               "\"kv_bytes\":%llu,",
               in.n_vocab, in.n_ctx, in.n_layer, in.n_embd, in.n_head, in.n_head_kv, in.n_ff,
               in.bos, in.eos, (unsigned long long)in.weight_bytes,
               (unsigned long long)in.kv_bytes);
        print_sched_json(&in);
        printf("}\n");
    } else {
        printf("ringlmd %s (protocol %u), %u client(s)\n", in.daemon_version, in.protocol,
               in.n_clients);
        printf("model    %s\narch     %s\nbackend  %s\ntype     %s\n", in.name, in.arch,
               in.backend, in.type);
        printf("vocab    %u\ncontext  %u\nlayers   %u\nembd     %u\nheads    %u (kv %u)\nff       %u\n",
               in.n_vocab, in.n_ctx, in.n_layer, in.n_embd, in.n_head, in.n_head_kv, in.n_ff);
        printf("weights  %llu bytes\nkv cache %llu bytes\n", (unsigned long long)in.weight_bytes,
               (unsigned long long)in.kv_bytes);
        if (in.sched.steps || in.sched.kv_blocks_total)
            printf("batching %llu steps, batch max %u mean %.2f, prefix hits %llu (%llu tokens), "
                   "preempted %llu, kv blocks %u used %u cached %u free\n",
                   (unsigned long long)in.sched.steps, in.sched.max_batch,
                   in.sched.steps ? (double)in.sched.batch_seqs / (double)in.sched.steps : 0.0,
                   (unsigned long long)in.sched.prefix_hits, (unsigned long long)in.sched.prefix_hit_tokens,
                   (unsigned long long)in.sched.preempted, in.sched.kv_blocks_used, in.sched.kv_blocks_cached,
                   in.sched.kv_blocks_free);
        if (in.sched.sampled)
            printf("sampling %llu tokens drawn, %llu of them from the device's best candidates\n",
                   (unsigned long long)in.sched.sampled, (unsigned long long)in.sched.sampled_top_k);
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *sock = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
            sock = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[i];
    if (strcmp(cmd, "tokenize") == 0) /* reads the model file itself: no daemon */
        return rl_cli_tokenize(argc - i, argv + i);
    int (*fn)(ringlm_conn *, int, char **) = NULL;
    if (strcmp(cmd, "generate") == 0)
        fn = cmd_generate;
    else if (strcmp(cmd, "chat") == 0)
        fn = cmd_chat;
    else if (strcmp(cmd, "info") == 0)
        fn = cmd_info;
    else {
        usage(stderr);
        return 2;
    }
    ringlm_conn *c;
    int rc = ringlm_connect(sock, NULL, &c);
    if (rc < 0)
        return die("connect", rc);
    rc = fn(c, argc - i, argv + i);
    ringlm_close(c);
    return rc;
}
