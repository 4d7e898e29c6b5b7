/* rl_bench_transport.c - transport latency and throughput.
 *
 * Starts ringlmd's core in-process (test engine) on a socket in a temporary
 * directory and measures, in one run:
 *  - ring round trip (NOP -> PONG through SQ, daemon loop, CQ) with the adaptive
 *    spin window (default 50 us, --spin-us) on both sides;
 *  - a plain Unix-socket request/response (32 bytes each way, blocking) between
 *    two threads, for comparison;
 *  - the ring round trip with pure sleeping waits (spin 0 on both sides);
 *  - a one-token generation round trip (submit -> TOKENS + DONE), in both modes;
 *  - throughput (round trips per second) with 1, 8 and 64 connected clients,
 *    one thread per client, each with one request in flight.
 */
#include "rl_bench.h"
#include "rl_daemon.h"
#include "ringlm.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct lat {
    double p50, p99, p999, mean;
} lat;

typedef struct bdaemon {
    rl_daemon *d;
    pthread_t thr;
    char dir[64], sock[128];
} bdaemon;

static void *daemon_thread(void *arg)
{
    rl_daemon_run(((bdaemon *)arg)->d);
    return NULL;
}

static int bd_start(bdaemon *b, int spin_us)
{
    snprintf(b->dir, sizeof b->dir, "/tmp/ringlm-bench-XXXXXX");
    if (!mkdtemp(b->dir))
        return -errno;
    snprintf(b->sock, sizeof b->sock, "%s/s", b->dir);
    rl_daemon_opts o;
    rl_daemon_opts_default(&o);
    o.socket_path = b->sock;
    o.spin_us = spin_us;
    o.engine = "test";
    o.max_clients = 128;
    char err[256];
    int rc = rl_daemon_create(&o, &b->d, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "ringlm-bench: %s\n", err);
        return rc;
    }
    return -pthread_create(&b->thr, NULL, daemon_thread, b);
}

static void bd_stop(bdaemon *b)
{
    rl_daemon_request_stop(b->d, 0);
    pthread_join(b->thr, NULL);
    rl_daemon_destroy(b->d);
    rmdir(b->dir);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static lat summarize(uint64_t *ns, int n)
{
    qsort(ns, (size_t)n, sizeof *ns, cmp_u64);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)ns[i];
    lat l = {
        .p50 = ns[n / 2] / 1e3,
        .p99 = ns[(int)((double)n * 0.99)] / 1e3,
        .p999 = ns[(int)((double)n * 0.999)] / 1e3,
        .mean = sum / n / 1e3,
    };
    return l;
}

static int ring_latency(const char *sock, int spin_us, int iters, int gen, lat *out)
{
    ringlm_opts co = {.spin_us = spin_us};
    ringlm_conn *c;
    int rc = ringlm_connect(sock, &co, &c);
    if (rc < 0)
        return rc;
    uint64_t *ns = malloc((size_t)iters * sizeof *ns);
    ringlm_params p;
    ringlm_params_default(&p);
    p.max_tokens = 1;
    int warm = iters / 10 + 100;
    for (int i = -warm; i < iters && rc == 0; i++) {
        uint64_t t0 = rl_now_ns();
        if (!gen) {
            rc = ringlm_ping(c, 10000);
        } else {
            ringlm_req r;
            rc = ringlm_submit_text(c, "a", 1, &p, &r);
            for (int done = 0; rc == 0 && !done;) {
                ringlm_event ev;
                rc = ringlm_next(c, r, &ev, 10000);
                if (rc == 0) {
                    done = ev.type != RINGLM_EV_TOKENS;
                    ringlm_release(c, &ev);
                }
            }
        }
        if (i >= 0)
            ns[i] = rl_now_ns() - t0;
    }
    if (rc == 0)
        *out = summarize(ns, iters);
    free(ns);
    ringlm_close(c);
    return rc;
}

static void *echo_server(void *arg)
{
    int fd = *(int *)arg;
    char buf[32];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, MSG_WAITALL);
        if (n != (ssize_t)sizeof buf || send(fd, buf, sizeof buf, MSG_NOSIGNAL) != (ssize_t)sizeof buf)
            break;
    }
    return NULL;
}

static int unix_latency(int iters, lat *out)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    pthread_t t;
    pthread_create(&t, NULL, echo_server, &sv[1]);
    uint64_t *ns = malloc((size_t)iters * sizeof *ns);
    char buf[32] = {1};
    int warm = iters / 10 + 100, rc = 0;
    for (int i = -warm; i < iters; i++) {
        uint64_t t0 = rl_now_ns();
        if (send(sv[0], buf, sizeof buf, MSG_NOSIGNAL) != (ssize_t)sizeof buf ||
            recv(sv[0], buf, sizeof buf, MSG_WAITALL) != (ssize_t)sizeof buf) {
            rc = -EIO;
            break;
        }
        if (i >= 0)
            ns[i] = rl_now_ns() - t0;
    }
    shutdown(sv[0], SHUT_RDWR);
    pthread_join(t, NULL);
    close(sv[0]);
    close(sv[1]);
    if (rc == 0)
        *out = summarize(ns, iters);
    free(ns);
    return rc;
}

typedef struct tp_arg {
    const char *sock;
    int spin_us;
    atomic_int *go;
    atomic_int *stop;
    uint64_t count;
    int rc;
} tp_arg;

static void *tp_client(void *arg)
{
    tp_arg *a = arg;
    ringlm_opts co = {.spin_us = a->spin_us};
    ringlm_conn *c;
    a->rc = ringlm_connect(a->sock, &co, &c);
    if (a->rc < 0)
        return NULL;
    while (!atomic_load(a->go))
        usleep(100);
    while (!atomic_load(a->stop)) {
        if ((a->rc = ringlm_ping(c, 10000)) < 0)
            break;
        a->count++;
    }
    ringlm_close(c);
    return NULL;
}

static double throughput(const char *sock, int spin_us, int n_clients, double seconds)
{
    atomic_int go = 0, stop = 0;
    tp_arg *a = calloc((size_t)n_clients, sizeof *a);
    pthread_t *t = calloc((size_t)n_clients, sizeof *t);
    for (int i = 0; i < n_clients; i++) {
        a[i] = (tp_arg){.sock = sock, .spin_us = spin_us, .go = &go, .stop = &stop};
        pthread_create(&t[i], NULL, tp_client, &a[i]);
    }
    usleep(200000); /* all connected */
    uint64_t t0 = rl_now_ns();
    atomic_store(&go, 1);
    usleep((useconds_t)(seconds * 1e6));
    atomic_store(&stop, 1);
    uint64_t total = 0;
    for (int i = 0; i < n_clients; i++) {
        pthread_join(t[i], NULL);
        total += a[i].count;
        if (a[i].rc < 0)
            fprintf(stderr, "ringlm-bench: client %d: %s\n", i, ringlm_strerror(a[i].rc));
    }
    double el = (double)(rl_now_ns() - t0) / 1e9;
    free(a);
    free(t);
    return (double)total / el;
}

static void print_lat(const char *name, const lat *l)
{
    printf("%-34s p50 %8.2f us   p99 %8.2f us   p99.9 %8.2f us   mean %8.2f us\n", name, l->p50,
           l->p99, l->p999, l->mean);
}

static void json_lat(const lat *l)
{
    printf("{\"p50_us\":%.3f,\"p99_us\":%.3f,\"p999_us\":%.3f,\"mean_us\":%.3f}", l->p50, l->p99,
           l->p999, l->mean);
}

int rl_bench_transport_main(int argc, char **argv)
{
    int json = 0, spin_us = 50, iters = 20000;
    double seconds = 1.0;
    static const struct option lo[] = {
        {"json", no_argument, 0, 'j'},
        {"spin-us", required_argument, 0, 's'},
        {"iters", required_argument, 0, 'i'},
        {"seconds", required_argument, 0, 'S'},
        {0, 0, 0, 0},
    };
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'j': json = 1; break;
        case 's': spin_us = atoi(optarg); break;
        case 'i': iters = atoi(optarg); break;
        case 'S': seconds = atof(optarg); break;
        default:
            fprintf(stderr, "usage: ringlm-bench transport [--json] [--spin-us N] [--iters N] [--seconds S]\n");
            return 2;
        }
    }
    if (iters < 100)
        iters = 100;
    lat ring = {0}, uds = {0}, sleeping = {0}, gen = {0}, gen_sleep = {0};
    double tp[3] = {0};
    static const int n_cl[3] = {1, 8, 64};
    bdaemon b = {0};
    if (bd_start(&b, spin_us) < 0)
        return 1;
    int rc = ring_latency(b.sock, spin_us, iters, 0, &ring);
    if (rc == 0)
        rc = ring_latency(b.sock, spin_us, iters / 4, 1, &gen);
    for (int i = 0; i < 3 && rc == 0; i++)
        tp[i] = throughput(b.sock, spin_us, n_cl[i], seconds);
    bd_stop(&b);
    if (rc == 0)
        rc = unix_latency(iters, &uds);
    if (rc == 0 && bd_start(&b, 0) == 0) {
        rc = ring_latency(b.sock, 0, iters, 0, &sleeping);
        if (rc == 0)
            rc = ring_latency(b.sock, 0, iters / 4, 1, &gen_sleep);
        bd_stop(&b);
    }
    if (rc < 0) {
        fprintf(stderr, "ringlm-bench: %s (%s)\n", ringlm_strerror(rc), ringlm_last_error());
        return 1;
    }
    if (json) {
        printf("{\"spin_us\":%d,\"iters\":%d,\"p50_us\":%.3f,\"p99_us\":%.3f,\"p999_us\":%.3f,"
               "\"mean_us\":%.3f,\"unix_socket\":",
               spin_us, iters, ring.p50, ring.p99, ring.p999, ring.mean);
        json_lat(&uds);
        printf(",\"sleeping\":{\"p50_us\":%.3f,\"p99_us\":%.3f,\"p999_us\":%.3f,\"mean_us\":%.3f,"
               "\"generate_1token\":",
               sleeping.p50, sleeping.p99, sleeping.p999, sleeping.mean);
        json_lat(&gen_sleep);
        printf("}");
        printf(",\"generate_1token\":");
        json_lat(&gen);
        printf(",\"throughput_rps\":{\"1\":%.0f,\"8\":%.0f,\"64\":%.0f}}\n", tp[0], tp[1], tp[2]);
    } else {
        char name[64];
        snprintf(name, sizeof name, "ring round trip (spin %d us)", spin_us);
        print_lat(name, &ring);
        print_lat("unix socket round trip", &uds);
        print_lat("ring round trip (sleeping, spin 0)", &sleeping);
        print_lat("generate 1 token (test engine)", &gen);
        print_lat("generate 1 token (sleeping)", &gen_sleep);
        for (int i = 0; i < 3; i++)
            printf("throughput, %2d client(s)            %10.0f round trips/s\n", n_cl[i], tp[i]);
    }
    return 0;
}
