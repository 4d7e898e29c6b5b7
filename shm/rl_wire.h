/* rl_wire.h - THE wire format between libringlm and ringlmd.
 *
 * Connection: a Unix stream socket. The client sends rl_wire_hello; the daemon
 * answers rl_wire_welcome with three descriptors attached (SCM_RIGHTS) when the
 * status is 0: [0] the region memfd (size sealed: F_SEAL_SHRINK|F_SEAL_GROW|
 * F_SEAL_SEAL), [1] the submission doorbell (eventfd the client writes, the
 * daemon reads), [2] the completion doorbell (eventfd the daemon writes, the
 * client reads). After the handshake nothing more travels on the socket; its
 * hang-up tells either side that the other is gone. Each client gets its own
 * region: clients never share memory.
 *
 * Region (one per client, offsets in rl_wire_header; all offsets 64-aligned):
 *
 *   0            +--------------------------------------------+
 *                | rl_wire_header: magic, version, sizes,     |
 *                | offsets; res_released (client cache line); |
 *                | space_wanted (daemon cache line)           |
 *   sq_off       +--------------------------------------------+
 *                | SQ ctl: head | tail | need_wakeup          |  client -> daemon
 *                |   (each on its own 64-byte line)           |  producer: client
 *                | rl_wire_sqe[sq_entries]                    |  consumer: daemon loop
 *   cq_off       +--------------------------------------------+
 *                | CQ ctl: head | tail | need_wakeup          |  daemon -> client
 *                | rl_wire_cqe[cq_entries]                    |  producer: daemon
 *   req_off      +--------------------------------------------+
 *                | request arena (req_size bytes)             |  written by the client,
 *                |  rl_wire_req + prompt + stop strings       |  read (copied) by the daemon
 *   res_off      +--------------------------------------------+
 *                | result arena (res_size bytes)              |  written by the daemon,
 *                |  token ids + text, timings, messages       |  released by the client
 *                |  (the daemon keeps its last 32 KiB as      |
 *                |  token cells: see below)                   |
 *   region_size  +--------------------------------------------+
 *
 * Rings: single-producer single-consumer, head and tail are free-running
 * uint32 counters (index = counter & (entries - 1)); empty when head == tail,
 * full when tail - head == entries. The producer writes the entry, then stores
 * tail with release; the consumer loads tail with acquire, reads the entry, then
 * stores head with release (so the producer may reuse the slot).
 *
 * Need-wakeup (as io_uring SQ polling): a consumer that stops spinning stores
 * need_wakeup = 1, issues a seq_cst fence, and re-checks the ring before it
 * sleeps on its doorbell. A producer publishes tail, issues a seq_cst fence and
 * loads need_wakeup; only when set does it clear it (exchange) and write the
 * doorbell. While the consumer is awake no syscall is made per message.
 *
 * Request arena: the client allocates each request's payload circularly; the
 * daemon copies the payload out when it consumes the SQE, so once SQ head has
 * passed an entry its payload space is free again.
 *
 * Result arena: the daemon allocates circularly with a free-running 64-bit
 * position (offset = position % res_size; a payload never wraps: the space up to
 * the end is skipped). Each CQE carries res_end, the position just after its
 * payload. The client releases payloads (in any order), and publishes in
 * res_released the end of the longest released prefix; the daemon may reuse
 * everything before it. When the daemon finds the CQ or the arena full it sets
 * space_wanted; a client that consumes CQEs or releases payloads and sees it set
 * clears it and rings the submission doorbell.
 *
 * Token cells (daemon side only, no client change): the daemon may place a
 * TOKENS payload of one id in a fixed cell at the end of the result arena,
 * where its engine (the GPU) wrote the id directly. Such a CQE is ordinary:
 * off/len inside res_size, res_end the end of a small ticket allocated in
 * arena order; the daemon reuses the cell only after the release mark passed
 * that res_end. Clients need no change (docs/TRANSPORT.md "Zero copy").
 *
 * Everything in the region is hostile to the daemon: it keeps its own copies of
 * sizes and its own head/tail counters, reads each shared index once, and
 * bounds-checks every offset and length.
 */
#ifndef RL_WIRE_H
#define RL_WIRE_H

#include <stdatomic.h>
#include <stdint.h>

#define RL_WIRE_MAGIC 0x314d4c52u /* "RLM1" little-endian */
#define RL_WIRE_VERSION 1u

#define RL_WIRE_SQ_ENTRIES 256u
#define RL_WIRE_CQ_ENTRIES 4096u
#define RL_WIRE_REQ_SIZE (1u << 20)
#define RL_WIRE_RES_SIZE (1u << 20)

/* Limits the daemon enforces on requests. */
#define RL_WIRE_MAX_STOP 8u          /* stop strings per request */
#define RL_WIRE_MAX_STOP_LEN 128u    /* bytes per stop string */
#define RL_WIRE_MAX_CHAT_MSGS 256u
#define RL_WIRE_MAX_TOKENS (1u << 20)/* generation budget upper bound */
#define RL_WIRE_MAX_ERRMSG 200u
#define RL_WIRE_MAX_LOGPROBS 20u     /* alternatives per token (rl_wire_req.n_logprobs) */

_Static_assert(ATOMIC_INT_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2,
               "shared-memory atomics must be lock-free");

/* ---- handshake (socket) ---- */
typedef struct rl_wire_hello {
    uint32_t magic;   /* RL_WIRE_MAGIC */
    uint32_t version; /* RL_WIRE_VERSION */
    uint32_t flags;   /* 0 */
    uint32_t reserved;
} rl_wire_hello;

typedef struct rl_wire_welcome {
    uint32_t magic;       /* RL_WIRE_MAGIC */
    uint32_t version;     /* the daemon's RL_WIRE_VERSION */
    int32_t status;       /* 0, or -EPROTO (bad version/magic), -EUSERS (too many clients), ... */
    uint32_t region_size; /* size of the memfd (status 0) */
    char message[112];    /* NUL-terminated explanation when status != 0 */
} rl_wire_welcome;

/* ---- region ---- */
typedef struct rl_wire_ring_ctl {
    _Alignas(64) _Atomic uint32_t head;     /* written by the consumer only */
    _Alignas(64) _Atomic uint32_t tail;     /* written by the producer only */
    _Alignas(64) _Atomic uint32_t need_wakeup; /* set by the consumer, cleared by the producer */
    uint8_t pad_[60];
} rl_wire_ring_ctl;

typedef struct rl_wire_header {
    uint32_t magic, version;
    uint32_t region_size;
    uint32_t sq_off, sq_entries; /* sq_off points at an rl_wire_ring_ctl, entries follow it */
    uint32_t cq_off, cq_entries;
    uint32_t req_off, req_size;
    uint32_t res_off, res_size;
    uint32_t reserved_[5];
    _Alignas(64) _Atomic uint64_t res_released; /* written by the client only */
    _Alignas(64) _Atomic uint32_t space_wanted; /* set by the daemon, cleared by the client */
    uint8_t pad_[60];
} rl_wire_header;

/* Submission opcodes. */
enum {
    RL_WIRE_OP_NOP = 0,      /* completes at once with RL_WIRE_EV_PONG (transport round trip) */
    RL_WIRE_OP_GENERATE = 1, /* payload: rl_wire_req + sections */
    RL_WIRE_OP_CANCEL = 2,   /* target = req_id to cancel; no completion of its own */
    RL_WIRE_OP_INFO = 3,     /* completes with RL_WIRE_EV_INFO, payload rl_wire_info */
};

typedef struct rl_wire_sqe {
    uint8_t opcode;
    uint8_t flags;     /* 0 */
    uint16_t reserved;
    uint32_t req_id;   /* client-chosen, non-zero, unique among its requests in flight */
    uint32_t off;      /* payload offset inside the request arena */
    uint32_t len;      /* payload length */
    uint32_t target;   /* RL_WIRE_OP_CANCEL: the req_id to cancel */
    uint32_t pad_[3];
} rl_wire_sqe;
_Static_assert(sizeof(rl_wire_sqe) == 32, "sqe is 32 bytes");

/* Prompt kinds of RL_WIRE_OP_GENERATE. */
enum {
    RL_WIRE_PROMPT_TEXT = 0,   /* prompt section: UTF-8 text (BOS is added) */
    RL_WIRE_PROMPT_TOKENS = 1, /* prompt section: int32 token ids, used as given */
    RL_WIRE_PROMPT_CHAT = 2,   /* prompt section: messages {u32 role; u32 len; bytes} */
};
enum { RL_WIRE_ROLE_SYSTEM = 0, RL_WIRE_ROLE_USER = 1, RL_WIRE_ROLE_ASSISTANT = 2 };

/* Payload of RL_WIRE_OP_GENERATE: this header, then prompt_len bytes of prompt
 * section, then n_stop stop strings {u32 len; bytes}. The payload length must
 * match exactly. Integers are host-endian (same host). */
typedef struct rl_wire_req {
    uint32_t kind;       /* RL_WIRE_PROMPT_* */
    uint32_t prompt_len; /* bytes of the prompt section */
    uint32_t n_stop;
    uint32_t max_tokens; /* 1 .. RL_WIRE_MAX_TOKENS */
    float temperature;   /* >= 0, finite; 0 = greedy */
    float top_p;         /* (0, 1] */
    float min_p;         /* [0, 1] */
    float repeat_penalty;/* > 0, finite; 1 = off */
    int32_t top_k;       /* >= 0; 0 = off */
    int32_t repeat_last_n; /* >= 0 */
    uint64_t seed;
    uint8_t priority;
    uint8_t flags;       /* RL_WIRE_REQ_* ; unknown bits are refused */
    uint8_t n_logprobs;  /* 0 .. RL_WIRE_MAX_LOGPROBS: with n > 0 each generated token comes
                          * with its log-probability and the n most likely tokens' (RL_WIRE_CQE_LOGPROBS) */
    uint8_t pad_[5];
} rl_wire_req;

/* rl_wire_req.flags */
enum {
    /* A text prompt's spelled-out control tokens ("<|im_start|>") become those
     * tokens. Off by default so user text cannot forge turn boundaries. */
    RL_WIRE_REQ_PARSE_SPECIAL = 1u << 0,
    RL_WIRE_REQ_KNOWN_FLAGS = RL_WIRE_REQ_PARSE_SPECIAL,
};
_Static_assert(sizeof(rl_wire_req) == 56, "rl_wire_req layout");

/* Completion types. */
enum {
    RL_WIRE_EV_TOKENS = 1, /* payload: int32 ids[n_tokens], [logprobs: see RL_WIRE_CQE_LOGPROBS],
                            * then text (valid UTF-8) */
    RL_WIRE_EV_DONE = 2,   /* final; payload rl_wire_done; status 0 or -ECANCELED */
    RL_WIRE_EV_ERROR = 3,  /* final; status = -errno; payload: message text (may be empty) */
    RL_WIRE_EV_PONG = 4,   /* answer to RL_WIRE_OP_NOP, no payload */
    RL_WIRE_EV_INFO = 5,   /* answer to RL_WIRE_OP_INFO, payload rl_wire_info */
};

typedef struct rl_wire_cqe {
    uint32_t req_id;
    uint16_t type;     /* RL_WIRE_EV_* */
    uint16_t flags;
    int32_t status;
    uint32_t n_tokens; /* RL_WIRE_EV_TOKENS: ids at the start of the payload */
    uint32_t off;      /* payload offset inside the result arena (8-aligned) */
    uint32_t len;      /* payload length; 0: no payload */
    uint64_t res_end;  /* arena position after this payload (release watermark) */
} rl_wire_cqe;
_Static_assert(sizeof(rl_wire_cqe) == 32, "cqe is 32 bytes");

/* rl_wire_cqe.flags of RL_WIRE_EV_TOKENS. With RL_WIRE_CQE_LOGPROBS, n =
 * flags & RL_WIRE_CQE_LOGPROBS_N, and the ids are followed by n_tokens groups
 * of 1 + n rl_wire_logprob: the generated token's own log-probability, then
 * the n most likely tokens at that position, best first (ties by lower id; id -1
 * and -inf past the end of a vocabulary smaller than n).
 * They are the model's distribution (natural log of the softmax of the
 * logits), before repetition penalty, temperature and filters. */
enum {
    RL_WIRE_CQE_LOGPROBS = 1u << 15,
    RL_WIRE_CQE_LOGPROBS_N = 0xffu,
};
typedef struct rl_wire_logprob {
    int32_t id;
    float logprob; /* <= 0; -inf for a token the model gives no chance */
} rl_wire_logprob;
_Static_assert(sizeof(rl_wire_logprob) == 8, "logprob entry is 8 bytes");

enum {
    RL_WIRE_FINISH_EOS = 1,
    RL_WIRE_FINISH_STOP = 2,
    RL_WIRE_FINISH_LENGTH = 3,
    RL_WIRE_FINISH_CANCELLED = 4,
};

typedef struct rl_wire_done {
    uint32_t finish;      /* RL_WIRE_FINISH_* */
    uint32_t n_prompt;    /* prompt tokens */
    uint32_t n_gen;       /* generated tokens (including EOS when it ended the request) */
    uint32_t reserved;
    double prompt_tps;    /* prompt tokens per second */
    double gen_tps;       /* generated tokens per second */
    uint64_t ttft_ns;     /* request received -> first token sampled */
    uint64_t total_ns;    /* request received -> done */
} rl_wire_done;

typedef struct rl_wire_info {
    char daemon_version[16];
    uint32_t protocol;
    uint32_t n_clients;
    char name[64], arch[32], backend[16], type[16];
    uint32_t n_vocab, n_ctx, n_layer, n_embd, n_head, n_head_kv, n_ff;
    int32_t bos, eos;
    uint32_t reserved;
    uint64_t weight_bytes, kv_bytes;
    /* Scheduler statistics (appended; zero when the engine keeps none). A
     * reader copies min(len, its sizeof), so either side may be older. */
    uint64_t steps, batch_seqs, batch_tokens;
    uint32_t max_batch, step_tokens;
    uint64_t prefix_lookups, prefix_hits, prefix_lookup_tokens, prefix_hit_tokens;
    uint64_t preempted;
    uint32_t kv_blocks_total, kv_blocks_used, kv_blocks_free, kv_blocks_cached;
    uint64_t kv_block_bytes;
    uint64_t sampled, sampled_top_k; /* sampled tokens; of those, drawn from the device's k best */
} rl_wire_info;

/* Ring control blocks and entry arrays inside a region. */
static inline rl_wire_ring_ctl *rl_wire_ctl(void *base, uint32_t off)
{
    return (rl_wire_ring_ctl *)((char *)base + off);
}
static inline void *rl_wire_entries(void *base, uint32_t off)
{
    return (char *)base + off + sizeof(rl_wire_ring_ctl);
}

/* Compute the standard layout for the given sizes (used by the daemon). */
static inline uint32_t rl_wire_layout(rl_wire_header *h, uint32_t sq_entries, uint32_t cq_entries,
                                      uint32_t req_size, uint32_t res_size)
{
    uint32_t off = 4096;
    h->magic = RL_WIRE_MAGIC;
    h->version = RL_WIRE_VERSION;
    h->sq_off = off;
    h->sq_entries = sq_entries;
    off += (uint32_t)sizeof(rl_wire_ring_ctl) + sq_entries * (uint32_t)sizeof(rl_wire_sqe);
    off = (off + 4095u) & ~4095u;
    h->cq_off = off;
    h->cq_entries = cq_entries;
    off += (uint32_t)sizeof(rl_wire_ring_ctl) + cq_entries * (uint32_t)sizeof(rl_wire_cqe);
    off = (off + 4095u) & ~4095u;
    h->req_off = off;
    h->req_size = req_size;
    off += req_size;
    h->res_off = off;
    h->res_size = res_size;
    off += res_size;
    h->region_size = off;
    return off;
}

#endif
