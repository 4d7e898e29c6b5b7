/* rl_engine.h - the compute backend interface of ringlmd.
 *
 * The daemon's request layer (tokenizing, detokenizing, stop strings, streaming
 * results to clients) talks to the model only through this table of functions.
 * Backends: the transport's test engine (rl_engine_test), the CPU model
 * (rl_engine_llm with the CPU kernels) and, when built, the CUDA model.
 *
 * Threading: all calls on one engine come from one thread (the daemon's compute
 * worker), except get_info/tokenize/token_piece/is_eog/chat_format, which are
 * read-only and may be called from any thread once the engine is created.
 *
 * Batching: step() takes many sequences at once. Each item either consumes
 * (part of) its pending prompt or produces one token; an engine may process
 * prompts in chunks (chunked prefill), so a sequence can need several steps
 * before its first token. The KV cache is owned by the engine, per sequence,
 * so that it can be paged and shared behind this interface.
 */
#ifndef RL_ENGINE_H
#define RL_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rl_engine rl_engine;
typedef struct rl_seq rl_seq; /* engine-private per-request state */

/* Sampling parameters, already validated by the daemon (finite, in range). */
typedef struct rl_sampling {
    float temperature;    /* <= 0: greedy (argmax) */
    int32_t top_k;        /* <= 0: off */
    float top_p;          /* >= 1: off */
    float min_p;          /* <= 0: off */
    float repeat_penalty; /* 1: off */
    int32_t repeat_last_n;/* tokens considered by the penalty; 0: off */
    uint64_t seed;        /* same seed + same inputs => same tokens */
} rl_sampling;

typedef struct rl_engine_info {
    char name[64];       /* model name (general.name) */
    char arch[32];       /* "llama", "qwen2", "test" */
    char backend[16];    /* "cpu", "cuda", "test" */
    char type[16];       /* dominant weight type, e.g. "Q4_0" */
    uint32_t n_vocab, n_ctx, n_layer, n_embd, n_head, n_head_kv, n_ff;
    uint64_t weight_bytes; /* bytes of weights as stored */
    uint64_t kv_bytes;     /* bytes of KV cache currently allocated */
    int32_t bos, eos;
} rl_engine_info;

typedef struct rl_seq_desc {
    const int32_t *prompt; /* copied by seq_new */
    uint32_t n_prompt;     /* >= 1 */
    uint32_t max_tokens;   /* generation budget; the engine reserves n_prompt + max_tokens of context */
    rl_sampling sampling;
    uint8_t priority;      /* 0 normal, higher = more latency-critical */
    uint8_t n_logprobs;    /* 0, or each sampled token comes with log-probabilities
                            * (rl_step_item.logprobs; at most RL_LOGPROBS_MAX) */
} rl_seq_desc;

#define RL_LOGPROBS_MAX 20
/* A token and its natural-log probability under the model (the softmax of the
 * logits, before repetition penalty, temperature and filters). */
typedef struct rl_token_logprob {
    int32_t id;
    float logprob;
} rl_token_logprob;

typedef struct rl_step_item {
    rl_seq *seq;    /* in */
    int32_t token;  /* out: the sampled token, or -1 when the step only consumed prompt */
    int32_t status; /* out: 0, or a negative errno for this sequence only (-ENOSPC: context full) */
    /* Added (zero copy, docs/TRANSPORT.md). in: NULL, or a host address inside a
     * region given to map_region where the engine also stores the sampled token
     * id whenever it returns token >= 0 (the GPU may write it through its
     * mapping before the step returns). The daemon keeps using token and never
     * reads this word back (the client can rewrite it). Set only for engines
     * with map_region; they must honour it for every sampled token. */
    int32_t *tok_dst;
    /* out, with token >= 0 and the sequence's n_logprobs > 0: NULL (an engine
     * without them), or 1 + n_logprobs entries: the token's own, then the
     * n_logprobs most likely, best first (ties by lower id). The engine's
     * memory, valid until the sequence's next step or its free. */
    const rl_token_logprob *logprobs;
} rl_step_item;

/* Scheduler statistics (get_stats). Counters since the engine started. */
typedef struct rl_engine_stats {
    uint64_t steps;          /* steps that ran the model */
    uint64_t batch_seqs;     /* sum over those steps of the sequences in the step */
    uint64_t batch_tokens;   /* sum over those steps of the tokens computed */
    uint32_t max_batch;      /* most sequences in one step */
    uint32_t step_tokens;    /* per-step token budget */
    uint64_t prefix_lookups, prefix_hits;           /* prompt starts, and those that reused cached blocks */
    uint64_t prefix_lookup_tokens, prefix_hit_tokens;
    uint64_t preempted;      /* sequences whose KV was taken back (recomputed later) */
    uint32_t kv_blocks_total;
    uint32_t kv_blocks_used;   /* held by sequences */
    uint32_t kv_blocks_free;
    uint32_t kv_blocks_cached; /* held only by the prefix cache (reclaimable) */
    uint64_t kv_block_bytes;
    uint32_t kv_block_positions;
    uint64_t sampled;        /* tokens drawn by a sampler (requests that are not greedy) */
    uint64_t sampled_top_k;  /* of those, drawn from a device's k best logits instead of the row */
    /* Wall time of the steps that ran the model, and of their forward passes
     * (for a device: the host's part of it too, up to the results); the rest
     * is the host's scheduling and sampling around them, during which a
     * device idles. Logged when the daemon stops. */
    uint64_t step_ns, forward_ns;
    /* Of those, the steps that computed more tokens than sequences (prompt
     * chunks), and their wall time. */
    uint64_t prompt_steps, prompt_step_ns;
} rl_engine_stats;

/* One chat message; the roles are "system", "user", "assistant". */
typedef struct rl_chat_msg {
    const char *role;
    const char *content;
    size_t content_len;
} rl_chat_msg;

typedef struct rl_engine_ops {
    /* Create a sequence for a prompt. Returns 0 or a negative errno
     * (-E2BIG: prompt + max_tokens exceed the context, -ENOMEM). */
    int (*seq_new)(rl_engine *e, const rl_seq_desc *desc, rl_seq **out);
    /* Free a sequence and its KV cache at once (cancel, client death, done). */
    void (*seq_free)(rl_engine *e, rl_seq *seq);
    /* Advance n sequences by one step. Returns 0, or a negative errno when the
     * whole step failed (every item is then failed too). Per-sequence failures
     * are reported in items[i].status. */
    int (*step)(rl_engine *e, rl_step_item *items, uint32_t n);
    /* Text -> token ids. add_special: BOS/EOS as the model asks. parse_special:
     * text spelling a control token ("<|eot_id|>") becomes that token; only for
     * text the daemon built (chat templates) or a client asked for explicitly,
     * so that user text cannot forge turn boundaries. Returns the number of ids
     * (which may exceed cap: call again with a larger buffer), or a negative errno. */
    int (*tokenize)(rl_engine *e, const char *text, size_t len, bool add_special,
                    bool parse_special, int32_t *out, size_t cap);
    /* The bytes of one token (may be a partial UTF-8 sequence). Returns the
     * length (may exceed cap), or a negative errno for an invalid id. */
    int (*token_piece)(rl_engine *e, int32_t tok, char *buf, size_t cap);
    /* True for end-of-generation tokens (EOS, EOT...). */
    bool (*is_eog)(rl_engine *e, int32_t tok);
    /* Render chat messages with the model's template, adding the assistant
     * prefix. Returns the length (may exceed cap) or a negative errno. */
    int (*chat_format)(rl_engine *e, const rl_chat_msg *msgs, uint32_t n, char *out, size_t cap);
    void (*get_info)(rl_engine *e, rl_engine_info *info);
    void (*destroy)(rl_engine *e);
    /* Optional (NULL: none). Scheduler statistics; callable from any thread. */
    void (*get_stats)(rl_engine *e, rl_engine_stats *st);
    /* Added, optional (NULL: the daemon tokenizes chat_format's text with
     * parse_special). Render msgs as chat_format does and tokenize the result
     * with only the template's own markers as control tokens: message contents
     * are plain text, so they cannot forge turns. Returns the id count (may
     * exceed cap) or a negative errno. Callable from any thread. */
    int (*chat_tokenize)(rl_engine *e, const rl_chat_msg *msgs, uint32_t n, bool add_special,
                         int32_t *out, size_t cap);
    /* Added, optional (both NULL: the daemon copies token ids as before). The
     * part [base, base+len) of a client's shared region that holds its token
     * cells (rl_conn_cells_range) was mapped: make it writable by the engine's
     * device (CUDA: host-registered, mapped) so that tok_dst may point into it. Returns 0, or a negative errno (the daemon then copies for
     * that client). unmap_region(base) comes before the region is unmapped;
     * the engine must not touch it afterwards. Both are called on the thread
     * that calls step, between steps (never while one runs), like seq_new. */
    int (*map_region)(rl_engine *e, void *base, size_t len);
    void (*unmap_region)(rl_engine *e, void *base);
} rl_engine_ops;

struct rl_engine {
    const rl_engine_ops *ops;
    void *impl;
};

#endif
