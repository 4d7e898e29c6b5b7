/* Zero copy: token ids written by the engine through rl_step_item.tok_dst into
 * the client's region are what the client reads (docs/TRANSPORT.md). The test
 * engine stores token ^ X through tok_dst while it reports token to the daemon,
 * so an id the client reads tells where it came from. */
#include "tt_main.h"
#include "tt_util.h"
#include "rl_conn.h"
#include "rl_engine_test.h"

#include <check.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define X 0x40000000

static tt_daemon td;
static void setup(void) { tt_start(&td, 50); }
static void teardown(void) { tt_stop(&td); }

static void nap_ms(int ms)
{
    struct timespec ts = {0, ms * 1000000L};
    nanosleep(&ts, NULL);
}

static int wait_regions(int n)
{
    for (int i = 0; i < 5000 && rl_engine_test_regions() != n; i++)
        nap_ms(2);
    return rl_engine_test_regions();
}

/* Generate the echo of prompt; ids[] gets every id the client saw (in order),
 * events are released at once unless hold. Returns the number of ids. */
static size_t run(ringlm_conn *c, const char *prompt, int32_t *ids, size_t cap, char *text,
                  bool hold)
{
    ringlm_params p;
    ringlm_params_default(&p);
    p.max_tokens = 2000;
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(c, prompt, strlen(prompt), &p, &r), 0);
    size_t n = 0, tl = 0, n_held = 0;
    ringlm_event *held = calloc(4096, sizeof *held);
    ck_assert_ptr_nonnull(held);
    for (;;) {
        ringlm_event ev;
        ck_assert_int_eq(ringlm_next(c, r, &ev, 10000), 0);
        if (ev.type == RINGLM_EV_TOKENS) {
            for (size_t i = 0; i < ev.n_tokens && n < cap; i++)
                ids[n++] = ev.tokens[i];
            memcpy(text + tl, ev.text, ev.text_len);
            tl += ev.text_len;
        } else {
            ck_assert_msg(ev.type == RINGLM_EV_DONE, "final %d status %d", ev.type, ev.status);
        }
        int type = ev.type;
        if (hold && type == RINGLM_EV_TOKENS && n_held < 4096) {
            held[n_held++] = ev;
        } else {
            ringlm_release(c, &ev);
        }
        if (type != RINGLM_EV_TOKENS)
            break;
    }
    /* Held events still show the ids they were published with: their cells
     * were not handed to the engine again while the client held them. */
    size_t k = 0;
    for (size_t i = 0; i < n_held; i++)
        for (size_t j = 0; j < held[i].n_tokens; j++, k++)
            ck_assert_int_eq(held[i].tokens[j], ids[k]);
    for (size_t i = 0; i < n_held; i++)
        ringlm_release(c, &held[i]);
    free(held);
    text[tl] = 0;
    return n;
}

START_TEST(test_client_reads_the_ids_the_engine_wrote_through_tok_dst)
{
    rl_engine_test_set_tokdst_xor(X);
    ringlm_conn *c = tt_connect(&td);
    int32_t ids[64];
    char text[256];
    size_t n = run(c, "zero copy", ids, 64, text, false);
    ck_assert_uint_eq(n, 9);
    for (size_t i = 0; i < n; i++) /* the engine's store, not the daemon's copy */
        ck_assert_int_eq(ids[i], "zero copy"[i] ^ X);
    ck_assert_str_eq(text, "zero copy"); /* the daemon used items[i].token */
    ringlm_close(c);
}
END_TEST

START_TEST(test_ids_are_copied_when_the_engine_cannot_map_the_region)
{
    rl_engine_test_set_tokdst_xor(X);
    rl_engine_test_set_map_fail(true);
    ringlm_conn *c = tt_connect(&td);
    int32_t ids[64];
    char text[256];
    size_t n = run(c, "copied", ids, 64, text, false);
    ck_assert_uint_eq(n, 6);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(ids[i], "copied"[i]);
    ck_assert_str_eq(text, "copied");
    ck_assert_int_eq(rl_engine_test_regions(), 0);
    ringlm_close(c);
}
END_TEST

/* 300 tokens while the client holds every event: the 256 cells are used once,
 * then the daemon copies; nothing held is overwritten. */
START_TEST(test_held_events_keep_their_cells_and_later_ids_are_copied)
{
    rl_engine_test_set_tokdst_xor(X);
    ringlm_conn *c = tt_connect(&td);
    char prompt[301], text[1024];
    for (int i = 0; i < 300; i++)
        prompt[i] = (char)('a' + i % 26);
    prompt[300] = 0;
    int32_t ids[400];
    size_t n = run(c, prompt, ids, 400, text, true);
    ck_assert_uint_eq(n, 300);
    ck_assert_str_eq(text, prompt);
    size_t from_cells = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert(ids[i] == prompt[i] || ids[i] == (prompt[i] ^ X));
        from_cells += ids[i] != prompt[i];
    }
    ck_assert_uint_eq(from_cells, 256);
    ringlm_close(c);
}
END_TEST

/* Released events give their cells back: with the client keeping up (5 ms
 * steps), more ids than there are cells come from cells. */
START_TEST(test_released_cells_are_reused)
{
    rl_engine_test_set_tokdst_xor(X);
    ringlm_conn *c = tt_connect(&td);
    enum { N = 320 };
    char prompt[N + 1], text[2 * N];
    int32_t ids[N + 16];
    memcpy(prompt, "__slow__", 8);
    for (int i = 8; i < N; i++)
        prompt[i] = (char)('A' + i % 26);
    prompt[N] = 0;
    size_t n = run(c, prompt, ids, N + 16, text, false);
    ck_assert_uint_eq(n, N);
    ck_assert_str_eq(text, prompt);
    size_t from_cells = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert(ids[i] == prompt[i] || ids[i] == (prompt[i] ^ X));
        from_cells += ids[i] != prompt[i];
    }
    ck_assert_uint_gt(from_cells, 256);
    ringlm_close(c);
}
END_TEST

/* A token whose text does not fit its cell (a held stop-string prefix of 127
 * bytes released with it): the id goes out from the cell, the text follows in
 * a text-only TOKENS event. */
START_TEST(test_text_longer_than_a_cell_follows_in_its_own_event)
{
    rl_engine_test_set_tokdst_xor(X);
    ringlm_conn *c = tt_connect(&td);
    char stop[129], prompt[130];
    memset(stop, 'a', 127);
    stop[127] = 'b';
    stop[128] = 0;
    memset(prompt, 'a', 127);
    prompt[127] = 'c';
    prompt[128] = 0;
    ringlm_params p;
    ringlm_params_default(&p);
    const char *stops[1] = {stop};
    p.stop = stops;
    p.n_stop = 1;
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(c, prompt, 128, &p, &r), 0);
    char text[512];
    size_t tl = 0, n = 0;
    bool id_alone = false;
    for (;;) {
        ringlm_event ev;
        ck_assert_int_eq(ringlm_next(c, r, &ev, 10000), 0);
        int type = ev.type;
        if (type == RINGLM_EV_TOKENS) {
            for (size_t i = 0; i < ev.n_tokens; i++, n++)
                ck_assert_int_eq(ev.tokens[i], prompt[n] ^ X);
            if (ev.n_tokens == 1 && ev.tokens[0] == ('c' ^ X)) {
                ck_assert_uint_eq(ev.text_len, 0); /* 128 bytes do not fit a cell */
                id_alone = true;
            }
            memcpy(text + tl, ev.text, ev.text_len);
            tl += ev.text_len;
        } else {
            ck_assert_int_eq(type, RINGLM_EV_DONE);
        }
        ringlm_release(c, &ev);
        if (type != RINGLM_EV_TOKENS)
            break;
    }
    text[tl] = 0;
    ck_assert(id_alone);
    ck_assert_uint_eq(n, 128);
    ck_assert_str_eq(text, prompt);
    ringlm_close(c);
}
END_TEST

START_TEST(test_region_is_unmapped_when_the_client_leaves)
{
    ringlm_conn *c = tt_connect(&td);
    int32_t ids[8];
    char text[64];
    run(c, "hi", ids, 8, text, false);
    ck_assert_int_eq(rl_engine_test_regions(), 1); /* mapped when it connected */
    /* only the cells' pages (the engine pins what it maps), and every id went there */
    ck_assert_uint_le(rl_engine_test_largest_range(), RL_CONN_CELLS_BYTES + 65536);
    ck_assert_uint_ge(rl_engine_test_largest_range(), RL_CONN_CELLS_BYTES);
    ringlm_close(c);
    ck_assert_int_eq(wait_regions(0), 0);
    ck_assert_int_eq(rl_engine_test_range_errors(), 0);
}
END_TEST

/* The region is mapped once the handshake is done, before any request: the
 * registration's cost (cudaHostRegister on the GPU) stays out of the steps
 * that serve the client's first request. */
START_TEST(test_region_is_mapped_when_the_client_connects)
{
    ringlm_conn *c = tt_connect(&td);
    ck_assert_int_eq(wait_regions(1), 1);
    int32_t ids[8];
    char text[64];
    ck_assert_uint_eq(run(c, "hi", ids, 8, text, false), 2);
    ck_assert_int_eq(rl_engine_test_regions(), 1); /* the same mapping served it */
    ringlm_close(c);
    ck_assert_int_eq(wait_regions(0), 0);
    ck_assert_int_eq(rl_engine_test_range_errors(), 0);
}
END_TEST

START_TEST(test_regions_are_unmapped_when_the_daemon_stops)
{
    ringlm_conn *a = tt_connect(&td), *b = tt_connect(&td);
    int32_t ids[8];
    char text[64];
    run(a, "a", ids, 8, text, false);
    run(b, "b", ids, 8, text, false);
    ck_assert_int_eq(rl_engine_test_regions(), 2);
    tt_stop(&td); /* clients still connected */
    ck_assert_int_eq(rl_engine_test_regions(), 0);
    ringlm_close(a);
    ringlm_close(b);
    tt_start(&td, 50); /* for the teardown */
}
END_TEST

/* Pings and INFO answered by the loop interleave with cell events; release
 * marks stay in order (a corrupt mark would disconnect the client). Events
 * pile up unreleased here, so ids come from cells or, once all are held, copies. */
START_TEST(test_loop_answers_interleave_with_cell_events)
{
    rl_engine_test_set_tokdst_xor(X);
    ringlm_conn *c = tt_connect(&td);
    char prompt[201];
    for (int i = 0; i < 200; i++)
        prompt[i] = (char)('a' + i % 26);
    prompt[200] = 0;
    ringlm_req r[4];
    size_t pos[4] = {0};
    for (int k = 0; k < 4; k++)
        ck_assert_int_eq(ringlm_submit_text(c, prompt, 200, NULL, &r[k]), 0);
    int done = 0, ntok = 0;
    while (done < 4) {
        ck_assert_int_eq(ringlm_ping(c, 5000), 0);
        ringlm_daemon_info in;
        ck_assert_int_eq(ringlm_info(c, &in, 5000), 0);
        ringlm_event ev;
        ck_assert_int_eq(ringlm_next(c, 0, &ev, 5000), 0);
        int k = 0;
        while (k < 4 && r[k] != ev.req)
            k++;
        ck_assert_int_lt(k, 4);
        if (ev.type == RINGLM_EV_TOKENS) {
            ck_assert_uint_eq(ev.text_len, ev.n_tokens);
            for (size_t i = 0; i < ev.n_tokens; i++, ntok++, pos[k]++) {
                ck_assert_int_eq(ev.text[i], prompt[pos[k]]);
                ck_assert(ev.tokens[i] == prompt[pos[k]] || ev.tokens[i] == (prompt[pos[k]] ^ X));
            }
        } else {
            ck_assert_int_eq(ev.type, RINGLM_EV_DONE);
            done++;
        }
        ringlm_release(c, &ev);
    }
    ck_assert_int_eq(ntok, 800);
    ringlm_close(c);
}
END_TEST

/* Engine swap: the old engine's mappings go with it, the new engine maps the
 * region again at the client's next request. */
static atomic_int want_swap, swapped;
static void on_swapped(rl_daemon *d, int rc, void *user)
{
    (void)d;
    (void)user;
    atomic_store(&swapped, rc == 0 ? 1 : -1);
}
static void swap_tick(rl_daemon *d, void *user)
{
    (void)user;
    if (!atomic_exchange(&want_swap, 0))
        return;
    rl_engine *e;
    ck_assert_int_eq(rl_engine_test_create(&e), 0);
    if (rl_daemon_swap_engine(d, e, on_swapped, NULL) < 0) {
        e->ops->destroy(e);
        atomic_store(&swapped, -1);
    }
}

START_TEST(test_engine_swap_maps_the_region_into_the_new_engine)
{
    rl_engine_test_set_tokdst_xor(X);
    rl_daemon_opts o;
    rl_daemon_opts_default(&o);
    rl_daemon_hooks h = {.on_tick = swap_tick, .tick_ms = 2};
    tt_daemon t;
    tt_start_opts(&t, &o, &h);
    ringlm_conn *c = tt_connect(&t);
    int32_t ids[8];
    char text[64];
    ck_assert_uint_eq(run(c, "one", ids, 8, text, false), 3);
    ck_assert_int_eq(rl_engine_test_regions(), 1);
    atomic_store(&want_swap, 1);
    for (int i = 0; i < 5000 && !atomic_load(&swapped); i++)
        nap_ms(2);
    ck_assert_int_eq(atomic_load(&swapped), 1);
    ck_assert_int_eq(rl_engine_test_regions(), 0); /* unmapped before the old engine went */
    ck_assert_uint_eq(run(c, "two", ids, 8, text, false), 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(ids[i], "two"[i] ^ X);
    ck_assert_int_eq(rl_engine_test_regions(), 1);
    ringlm_close(c);
    tt_stop(&t);
    ck_assert_int_eq(rl_engine_test_regions(), 0);
}
END_TEST

static Suite *zerocopy_suite(void)
{
    Suite *s = suite_create("zerocopy");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_client_reads_the_ids_the_engine_wrote_through_tok_dst);
    tcase_add_test(tc, test_ids_are_copied_when_the_engine_cannot_map_the_region);
    tcase_add_test(tc, test_region_is_mapped_when_the_client_connects);
    tcase_add_test(tc, test_held_events_keep_their_cells_and_later_ids_are_copied);
    tcase_add_test(tc, test_released_cells_are_reused);
    tcase_add_test(tc, test_text_longer_than_a_cell_follows_in_its_own_event);
    tcase_add_test(tc, test_region_is_unmapped_when_the_client_leaves);
    tcase_add_test(tc, test_regions_are_unmapped_when_the_daemon_stops);
    tcase_add_test(tc, test_loop_answers_interleave_with_cell_events);
    suite_add_tcase(s, tc);
    TCase *sw = tcase_create("swap");
    tcase_add_test(sw, test_engine_swap_maps_the_region_into_the_new_engine);
    suite_add_tcase(s, sw);
    return s;
}

TT_MAIN(zerocopy_suite)
