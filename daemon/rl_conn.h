/* rl_conn.h - one client connection: its region, doorbells and the daemon's
 * producer state for its completion ring and result arena.
 *
 * Sharing: the loop thread owns the socket, the submission side (sq) and the
 * loop_* fields. The completion side (cq, res_*) is written under out_lock by
 * whichever daemon thread posts (loop or worker): one producer at a time.
 * Lifetime: reference counted; the loop holds one reference while the client is
 * connected (and its io_uring operations are in flight), every worker message
 * and request holds one.
 */
#ifndef RL_CONN_H
#define RL_CONN_H

#include "rl_ring.h"
#include "rl_wire.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Requests one client may have in flight; more are answered -EBUSY at once. */
#define RL_CONN_MAX_REQS 1024u

/* Zero-copy token cells (docs/TRANSPORT.md "Zero copy"): the last
 * RL_CONN_CELLS * RL_CONN_CELL_BYTES bytes of the result arena are cells that
 * the circular allocator never uses. Before a step the worker takes a free cell
 * per request and the engine writes the sampled id into its first word
 * (rl_step_item.tok_dst); after the step the cell is published as a TOKENS
 * payload {id, text}. Its release is tracked by an 8-byte ticket allocated from
 * the circular arena at publication (the completion's res_end), so completions
 * keep arena order and the cell is reused only once the client's release mark
 * passed its ticket. */
#define RL_CONN_CELLS 256u
#define RL_CONN_CELL_BYTES 128u
#define RL_CONN_CELLS_BYTES (RL_CONN_CELLS * RL_CONN_CELL_BYTES)

typedef struct rl_conn {
    /* immutable after rl_conn_create */
    uint64_t id;
    int memfd;
    void *base;
    rl_wire_header *hdr;
    uint32_t size, req_off, req_size, res_off, res_size;
    int sq_bell;      /* daemon end: the loop reads it */
    int cq_bell;      /* daemon end: the daemon writes it */
    int client_fds[3];/* sent to the client, then closed */
    pid_t pid;
    uid_t uid;

    atomic_int refs;
    atomic_bool dead;       /* closing: posts fail, requests are dropped */
    atomic_bool corrupt;    /* the client corrupted its region; the loop disconnects it */
    atomic_bool want_space; /* a post found no room; the doorbell should kick the worker */
    atomic_uint n_reqs;     /* requests of this client held by the daemon (bounded) */

    /* completion side, under out_lock */
    pthread_mutex_t out_lock;
    rl_ring cq;
    uint64_t res_head;     /* next free arena position */
    uint64_t res_released; /* last validated client watermark */
    bool cq_dirty;         /* posted since the last rl_conn_kick */
    uint32_t cell_off;     /* arena offset of the cells (= circular part's size) */
    uint32_t cell_hint;    /* where the next free-cell search starts */
    uint64_t cell_ticket[RL_CONN_CELLS]; /* 0 free, RL_CONN_CELL_TAKEN, else ticket end */

    /* worker thread only: 0 region not offered to the engine yet, 1 mapped by
     * map_region, -1 map_region failed or unsupported (copies) */
    int8_t wk_zc;

    /* loop thread only */
    rl_ring sq;
    int sock;
    int loop_state;   /* rl_loop.c */
    int loop_inflight;/* io_uring operations in flight */
    uint64_t accepted_ns;
    uint64_t bell_buf;
    bool has_deferred;
    rl_wire_cqe deferred;
    char deferred_payload[sizeof(rl_wire_info) > 256 ? sizeof(rl_wire_info) : 256]; /* INFO (batch stats) fits */
    struct rl_conn *loop_next, *loop_prev;
} rl_conn;

/* Create region, doorbells and seals for an accepted socket (one reference). */
int rl_conn_create(int sock, uint64_t id, rl_conn **out, char *err, size_t errlen);
void rl_conn_ref(rl_conn *c);
void rl_conn_unref(rl_conn *c);

/* Post one completion with an optional payload made of two parts (copied into
 * the result arena). Takes out_lock. Returns 0, -EAGAIN (CQ or arena full:
 * space_wanted set, retry after a doorbell), -EPIPE (dead or corrupt). */
int rl_conn_post(rl_conn *c, uint32_t req_id, uint16_t type, int32_t status, uint32_t n_tokens,
                 const void *a, size_t alen, const void *b, size_t blen);
/* A TOKENS completion: ids, then lp_len bytes of log-probabilities (flags
 * RL_WIRE_CQE_LOGPROBS | n), then text; as rl_conn_post. */
int rl_conn_post_tokens(rl_conn *c, uint32_t req_id, uint16_t flags, uint32_t n_tokens, const int32_t *ids,
                        const void *lp, size_t lp_len, const char *text, size_t text_len);
/* Ring the client's completion doorbell when it sleeps and something was posted. */
void rl_conn_kick(rl_conn *c);

/* The range an engine must be able to write for zero copy: the token cells,
 * widened down to a page boundary (map_region's base and length; ~9 pages
 * instead of the whole ~2.2 MiB region, so registering it pins far less). */
void rl_conn_cells_range(const rl_conn *c, void **base, size_t *len);
/* ---- zero-copy token cells (worker thread, around one engine step) ---- */
#define RL_CONN_CELL_TAKEN UINT64_MAX
/* Take a free cell; returns its id word inside the region (8-aligned), or NULL
 * (none free: the caller copies as before). */
int32_t *rl_conn_cell_take(rl_conn *c, uint32_t *cell);
/* Publish TOKENS {n_tokens 1: the id the engine wrote into the cell, then
 * text} (text_len <= RL_CONN_CELL_BYTES - 4). Returns 0; -EAGAIN when the CQ or
 * the arena has no room for the ticket (the cell is freed: the caller posts a
 * copy later); -EPIPE dead or corrupt. */
int rl_conn_cell_post(rl_conn *c, uint32_t cell, uint32_t req_id, const char *text,
                      size_t text_len);
/* Give an unused cell back. */
void rl_conn_cell_put(rl_conn *c, uint32_t cell);

/* The bytes [off, off+len) of the request arena, or NULL when out of bounds. */
const uint8_t *rl_conn_req_bytes(rl_conn *c, uint32_t off, uint32_t len);

#endif
