/* ringlm.h - client library of ringlmd (libringlm).
 *
 * A client connects to the daemon over a Unix socket; the daemon hands it a
 * private shared-memory region with a submission ring, a completion ring and
 * two data arenas. Requests are written into the region; generated tokens are
 * read straight out of it (zero copy): the text and token ids of an event point
 * into the shared mapping and stay valid until ringlm_release().
 *
 * Errors: functions return 0 (or a count) on success and a negative errno on
 * failure; ringlm_strerror() names it and ringlm_last_error() gives a message
 * about the last failure on the calling thread. When the daemon dies, calls fail
 * promptly with -ECONNRESET (submissions, which make no system call, may still
 * succeed until the submission ring is full; any wait reports the loss).
 *
 * Thread safety: a ringlm_conn is not internally locked. Use one connection
 * from one thread at a time (or serialize calls on it yourself); different
 * connections are fully independent. ringlm_params_default, ringlm_strerror and
 * ringlm_last_error are thread-safe.
 */
#ifndef RINGLM_H
#define RINGLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ringlm_conn ringlm_conn;
typedef uint32_t ringlm_req; /* request handle, unique per connection, never 0 */

typedef struct ringlm_opts {
    int spin_us;    /* adaptive spin window while waiting (default 50; 0: sleep at once; -1: default) */
    int timeout_ms; /* connect/handshake timeout (default 5000; <= 0: default) */
} ringlm_opts;

/* Sampling and limits of one request. Start from ringlm_params_default(). */
typedef struct ringlm_params {
    float temperature;     /* >= 0; 0: greedy (default 0.8) */
    int32_t top_k;         /* >= 0; 0: off (default 40) */
    float top_p;           /* (0, 1]; 1: off (default 0.95) */
    float min_p;           /* [0, 1]; 0: off (default 0.05) */
    float repeat_penalty;  /* > 0; 1: off (default 1.0) */
    int32_t repeat_last_n; /* tokens the penalty looks at (default 64) */
    uint64_t seed;         /* same seed and input: same output (default 0) */
    uint32_t max_tokens;   /* generation budget, 1 .. 1048576 (default 256) */
    const char *const *stop; /* stop strings (UTF-8, 1..128 bytes each), at most 8 */
    uint32_t n_stop;
    uint8_t priority;      /* 0 normal, higher: more latency-critical */
    bool parse_special;    /* text prompts: spelled-out control tokens ("<|im_start|>")
                            * become those tokens (default false: they stay text, so
                            * untrusted text cannot forge turns). Chat requests always
                            * use the model's own template markers. */
    uint8_t logprobs;      /* 0 (default): none; 1..20: every generated token comes with its
                            * log-probability and the `logprobs` most likely tokens'
                            * (ringlm_event.logprobs); more is refused (-EINVAL) */
} ringlm_params;

typedef struct ringlm_chat_msg {
    const char *role;    /* "system", "user" or "assistant" */
    const char *content; /* UTF-8, NUL-terminated */
} ringlm_chat_msg;

enum ringlm_event_type {
    RINGLM_EV_TOKENS = 1, /* generated text and token ids */
    RINGLM_EV_DONE = 2,   /* the request finished (last event); finish and timings are set */
    RINGLM_EV_ERROR = 3,  /* the request failed (last event); status and text (message) are set */
};

enum ringlm_finish {
    RINGLM_FINISH_EOS = 1,       /* the model ended the text */
    RINGLM_FINISH_STOP = 2,      /* a stop string matched (it is not part of the text) */
    RINGLM_FINISH_LENGTH = 3,    /* max_tokens reached */
    RINGLM_FINISH_CANCELLED = 4, /* ringlm_cancel (status -ECANCELED) */
};

typedef struct ringlm_timings {
    uint32_t prompt_tokens, gen_tokens;
    double prompt_tps, gen_tps; /* tokens per second */
    double ttft_ms;             /* request received -> first token */
    double total_ms;            /* request received -> done */
} ringlm_timings;

/* A token and its natural-log probability under the model: the softmax of
 * the logits, before repetition penalty, temperature and filters. NaN when
 * the daemon's engine computes none. */
typedef struct ringlm_logprob {
    int32_t token;
    float logprob;
} ringlm_logprob;

typedef struct ringlm_event {
    ringlm_req req;
    int type;               /* enum ringlm_event_type */
    int status;             /* 0, or -errno (ERROR; DONE when cancelled: -ECANCELED) */
    const char *text;       /* TOKENS: complete UTF-8 characters; ERROR: the message. Not NUL-terminated. */
    size_t text_len;
    const int32_t *tokens;  /* TOKENS: ids generated since the previous event */
    size_t n_tokens;
    int finish;             /* DONE: enum ringlm_finish */
    ringlm_timings timings; /* DONE */
    /* TOKENS of a request with params.logprobs = n: n_tokens groups of 1 + n
     * entries, in shared memory like tokens: the generated token's own, then
     * the n most likely tokens at that position, best first (ties by lower
     * id). NULL otherwise. Since ABI 1. */
    const ringlm_logprob *logprobs;
    size_t n_top_logprobs;  /* n */
    uint64_t priv_;         /* for ringlm_release */
} ringlm_event;

typedef struct ringlm_daemon_info {
    char daemon_version[16];
    uint32_t protocol;
    uint32_t n_clients;
    char name[64], arch[32], backend[16], type[16];
    uint32_t n_vocab, n_ctx, n_layer, n_embd, n_head, n_head_kv, n_ff;
    int32_t bos, eos;
    uint64_t weight_bytes, kv_bytes;
    /* Scheduler statistics since the daemon started (zero when the engine keeps none). */
    struct {
        uint64_t steps;          /* engine steps that ran the model */
        uint64_t batch_seqs;     /* sum of sequences per step (mean batch = batch_seqs / steps) */
        uint64_t batch_tokens;   /* sum of tokens per step */
        uint32_t max_batch;      /* most sequences in one step */
        uint32_t step_tokens;    /* per-step token budget */
        uint64_t prefix_lookups, prefix_hits;            /* prompts, and those that reused cached blocks */
        uint64_t prefix_lookup_tokens, prefix_hit_tokens;
        uint64_t preempted;      /* requests whose KV was taken back and recomputed */
        uint32_t kv_blocks_total, kv_blocks_used, kv_blocks_free, kv_blocks_cached;
        uint64_t kv_block_bytes;
        uint64_t sampled;        /* tokens drawn by a sampler (not greedy; since ABI 1) */
        uint64_t sampled_top_k;  /* of those, drawn from the k best logits the GPU sent, not the row */
    } sched;
} ringlm_daemon_info;

/* Connect. socket_path NULL: $RINGLM_SOCKET, else the built-in default
 * (/run/ringlm/ringlm.sock). opts may be NULL. A daemon speaking another
 * protocol version answers -EPROTO (see ringlm_last_error()). */
int ringlm_connect(const char *socket_path, const ringlm_opts *opts, ringlm_conn **out);
/* Disconnect and unmap; events not yet released become invalid. NULL is fine. */
void ringlm_close(ringlm_conn *c);

void ringlm_params_default(ringlm_params *p);

/* Submit a request; *req identifies its events. params NULL: defaults. Several
 * requests may be in flight per connection. No system call unless the daemon
 * sleeps. When the submission ring or request arena is full this waits for the
 * daemon to take entries (up to about 2 s), then returns -EAGAIN. A request the
 * daemon refuses (bad sampling values, prompt too long, too many in flight...)
 * still returns 0 here: its only event is then RINGLM_EV_ERROR. */
int ringlm_submit_text(ringlm_conn *c, const char *prompt, size_t len, const ringlm_params *params,
                       ringlm_req *req);
int ringlm_submit_tokens(ringlm_conn *c, const int32_t *ids, size_t n, const ringlm_params *params,
                         ringlm_req *req);
int ringlm_submit_chat(ringlm_conn *c, const ringlm_chat_msg *msgs, size_t n,
                       const ringlm_params *params, ringlm_req *req);

/* Ask the daemon to stop a request; its last event is then DONE with finish
 * CANCELLED (unless it had already finished). */
int ringlm_cancel(ringlm_conn *c, ringlm_req req);

/* Next event of request req (0: of any request), in order per request.
 * timeout_ms: 0 poll, < 0 wait forever. Returns 0 with *ev filled, -EAGAIN
 * (timeout 0, nothing ready), -ETIMEDOUT, -ECONNRESET (daemon gone). The event's
 * pointers stay valid until ringlm_release(c, ev). Release every event, and
 * promptly: the daemon pauses a request while the result arena is full. */
int ringlm_next(ringlm_conn *c, ringlm_req req, ringlm_event *ev, int timeout_ms);
/* Give an event's shared memory back to the daemon. */
void ringlm_release(ringlm_conn *c, ringlm_event *ev);

/* A descriptor for the application's own poll/epoll/io_uring loop: readable
 * when events may be ready or the daemon hung up. Then call ringlm_next(..., 0)
 * until -EAGAIN (which re-arms the notification). */
int ringlm_fd(ringlm_conn *c);

/* Daemon and model information. */
int ringlm_info(ringlm_conn *c, ringlm_daemon_info *info, int timeout_ms);
/* One empty round trip through the rings (transport latency). */
int ringlm_ping(ringlm_conn *c, int timeout_ms);

/* Name of a (negative or positive) errno value; never NULL. Thread-safe. */
const char *ringlm_strerror(int err);
/* Message about the last failed call on this thread ("" if none). */
const char *ringlm_last_error(void);

#ifdef __cplusplus
}
#endif
#endif
