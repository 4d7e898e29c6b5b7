/* ringlm_impl.h - private state of a libringlm connection (shared by the
 * client's source files and the transport tests, which corrupt regions on
 * purpose). Not installed. */
#ifndef RINGLM_IMPL_H
#define RINGLM_IMPL_H

#include "ringlm.h"
#include "rl_ring.h"
#include "rl_wire.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct ringlm_rel {
    uint64_t end;  /* result-arena position after the payload */
    bool released;
} ringlm_rel;

struct ringlm_conn {
    int sock, sq_bell, cq_bell, epfd;
    void *base;
    size_t size;
    rl_wire_header *hdr;
    uint32_t req_off, req_size, res_off, res_size;
    rl_ring sq, cq;
    int spin_us;
    int dead; /* 0, or the error every call now returns */

    /* request arena: circular, freed as the daemon consumes SQ entries */
    uint64_t req_head;    /* next allocation position */
    uint64_t req_free;    /* everything before this is free */
    uint64_t *slot_end;   /* per SQ slot: req_head after its payload */
    uint32_t sq_reclaimed;/* SQ head already accounted for */

    uint32_t next_id;

    /* received, not yet delivered completions (FIFO over all requests) */
    rl_wire_cqe *evq;
    uint64_t *evq_seq; /* release-tracker sequence number of each */
    size_t evq_head, evq_n, evq_cap; /* live entries: [evq_head, evq_head + evq_n) */

    /* delivered-or-not payloads in completion order, for the release mark */
    ringlm_rel *rel;
    size_t rel_head, rel_n, rel_cap; /* circular */
    uint64_t rel_base;               /* sequence number of rel[rel_head] */
    uint64_t rel_next;               /* sequence number of the next completion */
    uint64_t released_mark;
};

/* Library-internal functions: not exported from libringlm.so. */
#define RINGLM_INTERNAL __attribute__((visibility("hidden")))

/* Set the thread's last error message; returns rc. */
RINGLM_INTERNAL int ringlm_fail(int rc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Pull every completion out of the CQ into evq. Returns count or -errno. */
RINGLM_INTERNAL int ringlm_drain(ringlm_conn *c);
/* Wait until the CQ has entries or the timeout passes (spin, then sleep). */
RINGLM_INTERNAL int ringlm_wait(ringlm_conn *c, int timeout_ms);
/* Non-blocking look at the socket: -ECONNRESET (and c->dead set) when the daemon is gone. */
RINGLM_INTERNAL int ringlm_check_peer(ringlm_conn *c);
/* Submit a control entry without payload (NOP, INFO, CANCEL). */
RINGLM_INTERNAL int ringlm_submit_ctl(ringlm_conn *c, uint8_t op, uint32_t target, ringlm_req *req);

#endif
