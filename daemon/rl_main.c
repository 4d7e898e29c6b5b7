/* rl_main.c - ringlmd entry point: parse options, create the daemon, run. */
#include "rl_cfg.h"
#include "rl_daemon.h"
#include "rl_log.h"
#include "rl_sd_service.h"

#include "rl_config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ringlmd [options]\n"
            "  --config FILE      configuration file (default " RL_CFG_DEFAULT_FILE ")\n"
            "  --socket PATH      listen on PATH (default %s)\n"
            "  --model PATH       GGUF model to serve (default: the test engine)\n"
            "  --device NAME      cpu | cuda (the model's backend; default cpu)\n"
            "  --engine NAME      test | llm | cuda (llm = the CPU model)\n"
            "  --threads N        compute threads\n"
            "  --spin-us N        adaptive spin window in microseconds (default 50, 0: sleep)\n"
            "  --max-clients N    concurrent clients (default 64)\n"
            "  --step-tokens N    tokens per engine step: decodes + prompt chunks (default 512)\n"
            "  --kv-mb N          KV cache pool in MiB (default: 4 full contexts)\n"
            "  --kv-type T        KV cache values: f16 (default) or q8_0 (int8, a scale per 32)\n"
            "  --prefill-weights W  CUDA prompt steps: auto (default: fp16 weight copies when they take\n"
            "                     at most 1/4 of the free GPU memory), f16 (require them) or quantized (none)\n"
            "  --client-queue N   requests in flight per client (default 1024; more: -EAGAIN)\n"
            "  --client-kv N      KV positions (prompt+generated) in flight per client (default: half the pool; -EDQUOT)\n"
            "  --verbose          debug logging\n"
            "  --version\n",
            RL_DEFAULT_SOCKET);
}

/* A bad command line: the service state goes (systemd sees the failure), exit status 2. */
static int bad_option(rl_service *svc)
{
    rl_service_end(svc, -EINVAL);
    return 2;
}

int main(int argc, char **argv)
{
    rl_daemon_opts o;
    rl_daemon_opts_default(&o);
    o.handle_signals = true;
    rl_service *svc; /* config file, journal, systemd; options below override the file */
    if (rl_service_begin(&svc, &o, &argc, argv) < 0)
        return 1;
    static const struct option lo[] = {
        {"socket", required_argument, 0, 's'},  {"model", required_argument, 0, 'm'},
        {"engine", required_argument, 0, 'e'},  {"threads", required_argument, 0, 't'},
        {"spin-us", required_argument, 0, 'S'}, {"max-clients", required_argument, 0, 'c'},
        {"step-tokens", required_argument, 0, 'B'}, {"kv-mb", required_argument, 0, 'K'},
        {"client-queue", required_argument, 0, 'Q'}, {"client-kv", required_argument, 0, 'C'},
        {"kv-type", required_argument, 0, 'T'}, {"prefill-weights", required_argument, 0, 'W'},
        {"verbose", no_argument, 0, 'v'},       {"version", no_argument, 0, 'V'},
        {"help", no_argument, 0, 'h'},          {"device", required_argument, 0, 'D'},
        {0, 0, 0, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "s:m:e:t:S:c:B:K:Q:C:T:W:vVh", lo, NULL)) != -1) {
        switch (ch) {
        case 's': o.socket_path = optarg; break;
        case 'm': o.model_path = optarg; break;
        case 'e': o.engine = optarg; break;
        case 'D':
            if (strcmp(optarg, "cpu") == 0)
                o.engine = "llm";
            else if (strcmp(optarg, "cuda") == 0)
                o.engine = "cuda";
            else {
                fprintf(stderr, "ringlmd: --device must be cpu or cuda\n");
                return bad_option(svc);
            }
            break;
        case 't': o.n_threads = atoi(optarg); break;
        case 'S': o.spin_us = atoi(optarg); break;
        case 'c': o.max_clients = atoi(optarg); break;
        case 'B': o.step_tokens = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'K': o.kv_budget_bytes = strtoull(optarg, NULL, 10) << 20; break;
        case 'Q': o.client_max_queued = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'C': o.client_max_kv_tokens = strtoull(optarg, NULL, 10); break;
        case 'T':
            if (rl_cfg_kv_type(optarg, &o.kv_q8)) {
                fprintf(stderr, "ringlmd: --kv-type must be f16 or q8_0\n");
                return bad_option(svc);
            }
            break;
        case 'W': {
            rl_prefill_weights pw;
            if (rl_cfg_prefill_weights(optarg, &pw)) {
                fprintf(stderr, "ringlmd: --prefill-weights must be auto, f16 or quantized (not '%s')\n", optarg);
                return bad_option(svc);
            }
            o.prefill_weights = (int)pw;
            break;
        }
        case 'v': rl_log_set_level(LOG_DEBUG); break;
        case 'V':
            printf("ringlmd %s\n", RL_VERSION);
            rl_service_discard(svc);
            return 0;
        case 'h':
            usage(stdout);
            rl_service_discard(svc);
            return 0;
        default: usage(stderr); return bad_option(svc);
        }
    }
    if (optind < argc) {
        usage(stderr);
        return bad_option(svc);
    }
    rl_daemon *d;
    char err[256];
    int rc = rl_daemon_create(&o, &d, err, sizeof err);
    if (rc < 0) {
        rl_log(LOG_ERR, "%s", err);
        rl_service_end(svc, rc);
        return 1;
    }
    rl_service_attach(svc, d);
    rc = rl_daemon_run(d);
    rl_daemon_destroy(d);
    rl_service_end(svc, rc);
    return rc < 0 ? 1 : 0;
}
