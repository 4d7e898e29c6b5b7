/* Hostile clients: corrupt indices, offsets past the arena, huge lengths,
 * garbage opcodes and payloads, bad release marks, wrong protocol version,
 * absurd sampling values. The daemon answers with an error completion or drops
 * that client; it stays alive and other clients do not notice. */
#include "ringlm_impl.h"
#include "rl_req.h"
#include "tt_main.h"
#include "tt_util.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <math.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static tt_daemon td;
static ringlm_conn *bystander;
static void setup(void)
{
    tt_start(&td, 50);
    bystander = tt_connect(&td);
}
static void teardown(void)
{
    /* The other client never noticed. */
    ck_assert_int_eq(ringlm_ping(bystander, 5000), 0);
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(bystander, "fine", 4, NULL, &r), 0);
    tt_result res;
    ck_assert_int_eq(tt_collect(bystander, r, &res, 5000), 0);
    ck_assert_str_eq(res.text, "fine");
    tt_result_free(&res);
    ringlm_close(bystander);
    tt_stop(&td);
}

static void raw_sqe(ringlm_conn *c, uint8_t op, uint32_t id, uint32_t off, uint32_t len)
{
    rl_wire_sqe e = {.opcode = op, .req_id = id, .off = off, .len = len};
    *(rl_wire_sqe *)rl_ring_prod_slot(&c->sq, 0) = e;
    rl_ring_publish(&c->sq, 1);
    rl_bell_ring(c->sq_bell);
}

/* Expect an ERROR completion with status want for request id. */
static void expect_error(ringlm_conn *c, uint32_t id, int want)
{
    ringlm_event ev;
    ck_assert_int_eq(ringlm_next(c, id, &ev, 5000), 0);
    ck_assert_int_eq(ev.type, RINGLM_EV_ERROR);
    ck_assert_int_eq(ev.status, want);
    ck_assert_uint_gt(ev.text_len, 0);
    ringlm_release(c, &ev);
    ck_assert_int_eq(ringlm_ping(c, 5000), 0); /* still connected */
}

static void expect_dropped(ringlm_conn *c)
{
    ringlm_event ev;
    ck_assert_int_eq(ringlm_next(c, 0, &ev, 10000), -ECONNRESET);
    rl_daemon_stats st;
    rl_daemon_get_stats(td.d, &st);
    ck_assert_uint_ge(st.n_corrupt, 1);
}

START_TEST(test_offset_past_the_arena_is_an_error)
{
    ringlm_conn *c = tt_connect(&td);
    raw_sqe(c, RL_WIRE_OP_GENERATE, 77, c->req_size - 8, 100);
    expect_error(c, 77, -EINVAL);
    ringlm_close(c);
}
END_TEST

START_TEST(test_huge_length_is_an_error)
{
    ringlm_conn *c = tt_connect(&td);
    raw_sqe(c, RL_WIRE_OP_GENERATE, 78, 0, 0xffffffffu);
    expect_error(c, 78, -EINVAL);
    raw_sqe(c, RL_WIRE_OP_GENERATE, 79, 0xfffffff0u, 0x20);
    expect_error(c, 79, -EINVAL);
    ringlm_close(c);
}
END_TEST

START_TEST(test_garbage_opcode_is_an_error)
{
    ringlm_conn *c = tt_connect(&td);
    raw_sqe(c, 0xee, 80, 0, 0);
    expect_error(c, 80, -EINVAL);
    ringlm_close(c);
}
END_TEST

START_TEST(test_garbage_payload_is_an_error)
{
    ringlm_conn *c = tt_connect(&td);
    unsigned char *arena = (unsigned char *)c->base + c->req_off;
    for (int i = 0; i < 256; i++)
        arena[i] = (unsigned char)(i * 37 + 11);
    raw_sqe(c, RL_WIRE_OP_GENERATE, 81, 0, 256);
    expect_error(c, 81, -EINVAL);
    /* A well-formed header whose prompt length points past the payload. */
    rl_wire_req h = {.kind = RL_WIRE_PROMPT_TEXT, .prompt_len = 1000, .max_tokens = 4,
                     .top_p = 1, .repeat_penalty = 1};
    memcpy(arena, &h, sizeof h);
    raw_sqe(c, RL_WIRE_OP_GENERATE, 82, 0, sizeof h + 10);
    expect_error(c, 82, -EINVAL);
    ringlm_close(c);
}
END_TEST

START_TEST(test_unknown_request_flags_are_an_error)
{
    ringlm_conn *c = tt_connect(&td);
    unsigned char *arena = (unsigned char *)c->base + c->req_off;
    rl_wire_req h = {.kind = RL_WIRE_PROMPT_TEXT, .prompt_len = 2, .max_tokens = 4,
                     .top_p = 1, .repeat_penalty = 1, .flags = 0x80};
    memcpy(arena, &h, sizeof h);
    memcpy(arena + sizeof h, "hi", 2);
    raw_sqe(c, RL_WIRE_OP_GENERATE, 83, 0, sizeof h + 2);
    expect_error(c, 83, -EINVAL);
    ringlm_close(c);
}
END_TEST

/* n_logprobs above 20 is refused; 20 is served, with NaN values where the
 * engine (the test engine here) computes none, one group per token. */
START_TEST(test_logprobs_beyond_the_limit_are_an_error)
{
    ringlm_conn *c = tt_connect(&td);
    ringlm_params p;
    ringlm_params_default(&p);
    p.max_tokens = 3;
    ringlm_req r;
    for (int n = 21; n <= 255; n += 234) {
        p.logprobs = (uint8_t)n;
        ck_assert_int_eq(ringlm_submit_text(c, "hi", 2, &p, &r), 0);
        expect_error(c, r, -EINVAL);
    }
    p.logprobs = 20;
    ck_assert_int_eq(ringlm_submit_text(c, "hi", 2, &p, &r), 0);
    size_t got = 0;
    for (;;) {
        ringlm_event ev;
        ck_assert_int_eq(ringlm_next(c, r, &ev, 5000), 0);
        int type = ev.type;
        ck_assert_int_ne(type, RINGLM_EV_ERROR);
        if (type == RINGLM_EV_TOKENS) {
            ck_assert_ptr_nonnull(ev.logprobs);
            ck_assert_uint_eq(ev.n_top_logprobs, 20);
            for (size_t t = 0; t < ev.n_tokens; t++) {
                ck_assert_int_eq(ev.logprobs[t * 21].token, ev.tokens[t]);
                ck_assert(isnan(ev.logprobs[t * 21].logprob));
            }
            got += ev.n_tokens;
        }
        ringlm_release(c, &ev);
        if (type == RINGLM_EV_DONE)
            break;
    }
    ck_assert_uint_ge(got, 1);
    ringlm_close(c);
}
END_TEST

START_TEST(test_tail_beyond_ring_drops_the_client)
{
    ringlm_conn *c = tt_connect(&td);
    atomic_store(&c->sq.ctl->tail, c->sq.local + 100000);
    rl_bell_ring(c->sq_bell);
    expect_dropped(c);
    ringlm_close(c);
}
END_TEST

START_TEST(test_corrupt_completion_head_drops_the_client)
{
    ringlm_conn *c = tt_connect(&td);
    atomic_store(&c->cq.ctl->head, 0x80000000u);
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(c, "x", 1, NULL, &r), 0);
    expect_dropped(c);
    ringlm_close(c);
}
END_TEST

START_TEST(test_release_mark_beyond_results_drops_the_client)
{
    ringlm_conn *c = tt_connect(&td);
    atomic_store(&c->hdr->res_released, (uint64_t)1 << 40);
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(c, "x", 1, NULL, &r), 0);
    expect_dropped(c);
    ringlm_close(c);
}
END_TEST

START_TEST(test_wrong_protocol_version_gets_a_clear_error)
{
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, td.sock);
    ck_assert_int_eq(connect(s, (struct sockaddr *)&sa, sizeof sa), 0);
    rl_wire_hello h = {.magic = RL_WIRE_MAGIC, .version = 999};
    ck_assert_int_eq(send(s, &h, sizeof h, 0), sizeof h);
    rl_wire_welcome w;
    ck_assert_int_eq(recv(s, &w, sizeof w, MSG_WAITALL), sizeof w);
    ck_assert_int_eq(w.status, -EPROTO);
    ck_assert_ptr_nonnull(strstr(w.message, "version 999"));
    char b;
    ck_assert_int_eq(recv(s, &b, 1, 0), 0); /* and then the hang-up */
    close(s);
}
END_TEST

static void expect_rejected(ringlm_params *p, const char *word)
{
    ringlm_conn *c = tt_connect(&td);
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(c, "abc", 3, p, &r), 0);
    tt_result res;
    ck_assert_int_eq(tt_collect(c, r, &res, 5000), 0);
    ck_assert_int_eq(res.final_type, RINGLM_EV_ERROR);
    ck_assert_int_eq(res.status, -EINVAL);
    ck_assert_msg(strstr(res.msg, word), "message '%s' lacks '%s'", res.msg, word);
    tt_result_free(&res);
    ringlm_close(c);
}

START_TEST(test_absurd_sampling_values_are_rejected)
{
    ringlm_params p;
#define CASE(field, value, word)                                                                   \
    ringlm_params_default(&p);                                                                     \
    p.field = value;                                                                               \
    expect_rejected(&p, word)
    CASE(temperature, NAN, "temperature");
    CASE(temperature, INFINITY, "temperature");
    CASE(temperature, -1.0f, "temperature");
    CASE(top_p, 0.0f, "top_p");
    CASE(top_p, 1.5f, "top_p");
    CASE(top_p, NAN, "top_p");
    CASE(min_p, -0.5f, "min_p");
    CASE(repeat_penalty, 0.0f, "repeat_penalty");
    CASE(repeat_penalty, -INFINITY, "repeat_penalty");
    CASE(top_k, -3, "top_k");
    CASE(repeat_last_n, -1, "repeat_last_n");
    CASE(max_tokens, 0, "max_tokens");
    CASE(max_tokens, 1u << 30, "max_tokens");
#undef CASE
}
END_TEST

START_TEST(test_request_beyond_the_context_is_rejected)
{
    ringlm_conn *c = tt_connect(&td);
    ringlm_params p;
    ringlm_params_default(&p);
    p.max_tokens = 100000; /* test engine context: 4096 */
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(c, "abc", 3, &p, &r), 0);
    tt_result res;
    ck_assert_int_eq(tt_collect(c, r, &res, 5000), 0);
    ck_assert_int_eq(res.final_type, RINGLM_EV_ERROR);
    ck_assert_int_eq(res.status, -E2BIG);
    tt_result_free(&res);
    ringlm_close(c);
}
END_TEST

START_TEST(test_invalid_utf8_prompt_is_rejected)
{
    ringlm_conn *c = tt_connect(&td);
    ringlm_req r;
    ck_assert_int_eq(ringlm_submit_text(c, "a\xff", 2, NULL, &r), 0);
    tt_result res;
    ck_assert_int_eq(tt_collect(c, r, &res, 5000), 0);
    ck_assert_int_eq(res.final_type, RINGLM_EV_ERROR);
    ck_assert_int_eq(res.status, -EILSEQ);
    tt_result_free(&res);
    int32_t bad[] = {65, 9999};
    ck_assert_int_eq(ringlm_submit_tokens(c, bad, 2, NULL, &r), 0);
    ck_assert_int_eq(tt_collect(c, r, &res, 5000), 0);
    ck_assert_int_eq(res.status, -EINVAL);
    tt_result_free(&res);
    ringlm_close(c);
}
END_TEST

/* Handshake by hand; returns the socket and fills fds[3]. */
static int raw_connect(int fds[3])
{
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, td.sock);
    ck_assert_int_eq(connect(s, (struct sockaddr *)&sa, sizeof sa), 0);
    rl_wire_hello h = {.magic = RL_WIRE_MAGIC, .version = RL_WIRE_VERSION};
    ck_assert_int_eq(send(s, &h, sizeof h, 0), sizeof h);
    rl_wire_welcome w;
    struct iovec iov = {.iov_base = &w, .iov_len = sizeof w};
    union {
        char buf[CMSG_SPACE(3 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf};
    ck_assert_int_eq(recvmsg(s, &mh, 0), sizeof w);
    ck_assert_int_eq(w.status, 0);
    struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
    ck_assert_ptr_nonnull(cm);
    ck_assert_int_eq(cm->cmsg_type, SCM_RIGHTS);
    memcpy(fds, CMSG_DATA(cm), 3 * sizeof(int));
    return s;
}

START_TEST(test_region_size_is_sealed)
{
    int fds[3];
    int s = raw_connect(fds);
    int seals = fcntl(fds[0], F_GET_SEALS);
    ck_assert_int_eq(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
                     F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    ck_assert_int_eq(ftruncate(fds[0], 4096), -1); /* a client cannot pull pages away */
    ck_assert_int_eq(errno, EPERM);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    close(s);
}
END_TEST

START_TEST(test_each_client_gets_its_own_region)
{
    int a[3], b[3];
    int sa = raw_connect(a), sb = raw_connect(b);
    struct stat x, y;
    ck_assert_int_eq(fstat(a[0], &x), 0);
    ck_assert_int_eq(fstat(b[0], &y), 0);
    ck_assert(x.st_ino != y.st_ino || x.st_dev != y.st_dev);
    for (int i = 0; i < 3; i++) {
        close(a[i]);
        close(b[i]);
    }
    close(sa);
    close(sb);
}
END_TEST

static Suite *hostile_suite(void)
{
    Suite *s = suite_create("hostile");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_offset_past_the_arena_is_an_error);
    tcase_add_test(tc, test_huge_length_is_an_error);
    tcase_add_test(tc, test_garbage_opcode_is_an_error);
    tcase_add_test(tc, test_garbage_payload_is_an_error);
    tcase_add_test(tc, test_unknown_request_flags_are_an_error);
    tcase_add_test(tc, test_logprobs_beyond_the_limit_are_an_error);
    tcase_add_test(tc, test_tail_beyond_ring_drops_the_client);
    tcase_add_test(tc, test_corrupt_completion_head_drops_the_client);
    tcase_add_test(tc, test_release_mark_beyond_results_drops_the_client);
    tcase_add_test(tc, test_wrong_protocol_version_gets_a_clear_error);
    tcase_add_test(tc, test_region_size_is_sealed);
    tcase_add_test(tc, test_each_client_gets_its_own_region);
    tcase_add_test(tc, test_absurd_sampling_values_are_rejected);
    tcase_add_test(tc, test_request_beyond_the_context_is_rejected);
    tcase_add_test(tc, test_invalid_utf8_prompt_is_rejected);
    suite_add_tcase(s, tc);
    return s;
}
TT_MAIN(hostile_suite)
