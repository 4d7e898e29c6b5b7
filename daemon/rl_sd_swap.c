/* rl_sd_swap.c - replacing the model while serving (SIGHUP with a new model).
 *
 * Everything here runs on the loop thread. rl_daemon_swap_engine() parks a
 * loaded engine in d->swap_engine; from then on handle_generate() hands new
 * generate requests (already copied out of the client's arena) to
 * rl_swap_defer(), which queues them. Requests that were running finish on
 * the old engine. Each loop iteration calls rl_swap_step(): once no client
 * holds a request any more, the worker thread is stopped, the old engine
 * destroyed, a worker started on the new one, and the queue replayed in
 * arrival order through rl_loop_generate(). Connections stay open throughout.
 */
#include "rl_daemon_impl.h"
#include "rl_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define RL_SWAP_MAX_WAITING 4096u /* waiting requests kept across all clients */

typedef struct rl_swap_req {
    struct rl_swap_req *next;
    rl_conn *c; /* one reference */
    uint32_t req_id, len;
    uint8_t *copy;
} rl_swap_req;

int rl_daemon_swap_engine(rl_daemon *d, struct rl_engine *e, void (*on_swapped)(rl_daemon *d, int rc, void *user),
                          void *user)
{
    if (d->stopping)
        return -ESHUTDOWN;
    if (d->swap_engine)
        return -EBUSY;
    d->swap_engine = e;
    d->swap_cb = on_swapped;
    d->swap_user = user;
    d->swap_q = NULL;
    d->swap_tail = &d->swap_q;
    d->swap_n = 0;
    rl_log(LOG_INFO, "new engine loaded; %u requests finish on the old one first",
           rl_worker_active(d->worker));
    return 0;
}

bool rl_swap_defer(rl_daemon *d, rl_conn *c, uint32_t req_id, uint8_t *copy, uint32_t len)
{
    if (!d->swap_engine)
        return false;
    rl_swap_req *q = d->swap_n < RL_SWAP_MAX_WAITING ? malloc(sizeof *q) : NULL;
    if (!q) {
        rl_loop_post_error(d, c, req_id, -EBUSY, "too many requests waiting for the new model");
        free(copy);
        return true;
    }
    rl_conn_ref(c);
    *q = (rl_swap_req){.c = c, .req_id = req_id, .len = len, .copy = copy};
    *d->swap_tail = q;
    d->swap_tail = &q->next;
    d->swap_n++;
    return true;
}

/* Nothing of any client is held by the worker (queued, running or draining). */
static bool drained(rl_daemon *d)
{
    if (rl_worker_active(d->worker) != 0)
        return false;
    for (rl_conn *c = d->conns; c; c = c->loop_next)
        /* acquire: pairs with the worker's release when it frees a request */
        if (atomic_load_explicit(&c->n_reqs, memory_order_acquire) != 0)
            return false;
    return true;
}

static void replay(rl_daemon *d, bool run)
{
    rl_swap_req *q = d->swap_q;
    d->swap_q = NULL;
    d->swap_tail = &d->swap_q;
    d->swap_n = 0;
    while (q) {
        rl_swap_req *next = q->next;
        bool live = !atomic_load(&q->c->dead) && !atomic_load(&q->c->corrupt);
        if (run && live)
            rl_loop_generate(d, q->c, q->req_id, q->copy, q->len); /* frees copy */
        else {
            if (live)
                rl_loop_post_error(d, q->c, q->req_id, -ESHUTDOWN, "daemon is stopping");
            free(q->copy);
        }
        rl_conn_unref(q->c);
        free(q);
        q = next;
    }
}

bool rl_swap_step(rl_daemon *d)
{
    if (!d->swap_engine || !drained(d))
        return false;
    rl_engine *next = d->swap_engine;
    d->swap_engine = NULL;
    /* Start the new worker first: if that fails, the old one keeps serving. */
    rl_worker *w = NULL;
    int rc = rl_worker_start(&w, next, d->opts.spin_us, d->worker_fd);
    if (rc < 0) {
        rl_log(LOG_ERR, "worker thread for the new engine: %s; keeping the old engine", strerror(-rc));
        next->ops->destroy(next);
    } else {
        rl_worker_stop(d->worker); /* idle: returns at once */
        d->engine->ops->destroy(d->engine);
        d->worker = w;
        d->engine = next;
        d->engine->ops->get_info(d->engine, &d->info);
        rl_log(LOG_NOTICE, "engine swapped: %s (%s, %s), vocab %u, context %u; %u waiting requests start",
               d->info.name, d->info.arch, d->info.backend, d->info.n_vocab, d->info.n_ctx, d->swap_n);
    }
    if (d->swap_cb)
        d->swap_cb(d, rc < 0 ? rc : 0, d->swap_user);
    replay(d, true); /* on whichever engine now serves */
    return true;
}

void rl_swap_abort(rl_daemon *d)
{
    if (!d->swap_engine)
        return;
    replay(d, false);
    d->swap_engine->ops->destroy(d->swap_engine);
    d->swap_engine = NULL;
    if (d->swap_cb)
        d->swap_cb(d, -ESHUTDOWN, d->swap_user);
}

void rl_swap_free(rl_daemon *d)
{
    if (!d->swap_engine)
        return;
    /* After run(): the loop is gone, so drop the waiting requests silently. */
    while (d->swap_q) {
        rl_swap_req *q = d->swap_q;
        d->swap_q = q->next;
        free(q->copy);
        rl_conn_unref(q->c);
        free(q);
    }
    d->swap_engine->ops->destroy(d->swap_engine);
    d->swap_engine = NULL;
}
