/* rl_wreq.h - a request as the compute worker holds it (rl_worker.c): its
 * sequence, stop strings and the output waiting to be posted. Internal to the
 * daemon's worker (rl_worker.c, rl_wreq.c). */
#ifndef RL_WREQ_H
#define RL_WREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rl_conn.h"
#include "rl_engine.h"
#include "rl_req.h"
#include "rl_wire.h"
#include "rl_worker.h"
#include "rl_worker_trace.h"

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

struct rl_wreq {
    rl_conn *conn;
    uint32_t id;
    rl_seq *seq;
    int32_t *prompt;
    uint32_t n_prompt;
    rl_sampling sampling;
    uint8_t priority;
    uint32_t max_tokens, n_gen;
    uint32_t n_stop;
    char *stop[RL_WIRE_MAX_STOP];
    uint32_t stop_len[RL_WIRE_MAX_STOP];
    rl_req_utf8_stream u8;
    buf hold; /* released text that might still begin a stop string */
    buf out;  /* text ready to post */
    int32_t *ids;
    uint32_t n_ids, cap_ids;
    uint8_t n_lp;          /* log-probability alternatives per token (0: none) */
    rl_wire_logprob *lp;   /* (1 + n_lp) per id in ids, room for cap_ids */
    uint32_t cell; /* zero copy: this step's token cell (rl_conn.h), when has_cell */
    bool has_cell;
    bool final, posted, dropped;
    uint16_t final_type;
    int32_t final_status;
    rl_wire_done done;
    char msg[RL_WIRE_MAX_ERRMSG];
    uint64_t t_recv, t_admit, t_first, t_last;
    rl_ttft_stamps tr; /* RINGLM_TRACE_TTFT (rl_worker_trace.h) */
    bool traced;
};

bool rl_buf_reserve(buf *b, size_t more);
/* Room for one more token id (and its log-probabilities); false: out of memory. */
bool rl_wreq_reserve_id(rl_wreq *r);
/* Append a generated token and, with n_lp, its log-probabilities (lp: 1 + n_lp
 * entries from the engine, or NULL: NaN, none given). Room reserved. */
void rl_wreq_push_id(rl_wreq *r, int32_t tok, const rl_token_logprob *lp);

#endif
