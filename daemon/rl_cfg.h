/* rl_cfg.h - ringlmd's configuration file (/etc/ringlm/ringlmd.conf).
 *
 * Format: one "key = value" per line; '#' or ';' starts a comment line;
 * blank lines are ignored; values may be wrapped in double quotes (for
 * leading/trailing spaces or '#'). Unknown keys, bad values and overlong
 * lines are errors reported with the line number. Durations take a unit:
 * "us", "ms", "s", "min" (a bare number means the key's documented unit).
 *
 * Keys and defaults (see units/ringlmd.conf and docs/SERVICE.md):
 *   model             =          (none: the built-in test engine)
 *   socket            = /run/ringlm/ringlm.sock   (RL_DEFAULT_SOCKET)
 *   threads           = 0        (0: all online CPUs)
 *   device            = cpu      (cpu | cuda | test)
 *   spin_window       = 50us     (busy-poll before sleeping; bare number: us)
 *   shutdown_deadline = 10s      (bare number: seconds)
 *   max_clients       = 64
 *   log_level         = info     (err | warning | notice | info | debug)
 *   step_tokens       = 512      (tokens per engine step, 0..8192; 0: engine default)
 *   kv_mb             = 0        (KV cache pool in MiB, 0..1048576; 0: 4 full contexts)
 *   client_queue      = 1024     (requests in flight per client, 1..1024)
 *   client_kv         = 0        (KV positions in flight per client; 0: half the pool)
 *   kv_type           = f16      (KV cache values: f16 | q8_0, int8 with a scale per 32)
 *   prefill_weights   = auto     (CUDA prompt steps: auto | f16 | quantized; rl_prefill_weights)
 * The last six apply at the next restart (a reload logs the change only).
 */
#ifndef RL_CFG_H
#define RL_CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rl_config.h" /* RL_SYSCONFDIR, RL_DEFAULT_SOCKET */

#define RL_CFG_PATH_MAX 4096
#define RL_CFG_SOCKET_MAX 108 /* sizeof(sockaddr_un.sun_path) */
#define RL_CFG_DEFAULT_FILE RL_SYSCONFDIR "/ringlm/ringlmd.conf"
#define RL_CFG_STEP_TOKENS_DEFAULT 512u /* = the LLM engine's default */
#define RL_CFG_STEP_TOKENS_MAX 8192u    /* the LLM engine clamps to this */
#define RL_CFG_KV_MB_MAX (1ull << 20)    /* 1 TiB; kv_mb << 20 cannot overflow */
#define RL_CFG_CLIENT_QUEUE_MAX 1024u   /* = RL_SCHED_DEFAULT_QUEUED, the transport's cap */
#define RL_CFG_CLIENT_KV_MAX 0xffffffffull

typedef enum rl_cfg_device {
    RL_DEVICE_CPU = 0,
    RL_DEVICE_CUDA,
    RL_DEVICE_TEST, /* the transport's test engine (no model file) */
} rl_cfg_device;

/* prefill_weights: fp16 copies of the layer weights that the CUDA engine keeps
 * resident for prompt (prefill) steps, about 2 bytes per weight. The numeric
 * values equal rl_cu_w16_mode's (kernels/cuda/rl_cu_model.h: RL_CU_W16_AUTO,
 * RL_CU_W16_OFF, RL_CU_W16_ON) and are passed on as rl_cuda_opts.w16 as they
 * are (rl_engine_select.c asserts the equality where CUDA is built). The CPU
 * engine has no such copies: there the setting has no effect. */
typedef enum rl_prefill_weights {
    RL_PW_AUTO = 0,      /* "auto": kept when they take at most a quarter of the free device memory */
    RL_PW_QUANTIZED = 1, /* "quantized": none; each weight dequantized during every prompt step */
    RL_PW_F16 = 2,       /* "f16": required; the load fails with -ENOMEM when they do not fit */
} rl_prefill_weights;

typedef struct rl_cfg {
    char model[RL_CFG_PATH_MAX];
    char socket[RL_CFG_SOCKET_MAX];
    uint32_t threads;            /* 0: all online CPUs */
    rl_cfg_device device;
    uint64_t spin_window_us;     /* <= 1 s */
    uint64_t shutdown_deadline_us; /* <= 1 h */
    uint32_t max_clients;        /* 1..65536 */
    int log_level;               /* LOG_ERR..LOG_DEBUG */
    /* batching (rl_daemon_opts of the same names) */
    uint32_t step_tokens;        /* 0..8192; 0: the engine's default */
    uint64_t kv_mb;              /* 0..1048576 (1 TiB); 0: room for 4 full contexts */
    uint32_t client_queue;       /* 1..1024 (the transport's cap) */
    uint64_t client_kv;          /* 0..4294967295; 0: half the pool */
    bool kv_q8;                  /* kv_type = q8_0 (else f16) */
    rl_prefill_weights prefill_weights; /* CUDA prompt steps' fp16 weight copies */
} rl_cfg;

void rl_cfg_defaults(rl_cfg *c);

/* A kv_type value: "f16" (*q8 = false) or "q8_0" (true). 0, or -EINVAL with
 * *q8 unchanged. (The key and ringlmd --kv-type.) */
int rl_cfg_kv_type(const char *value, bool *q8);

/* A prefill_weights value: "auto", "f16" or "quantized". 0, or -EINVAL with
 * *pw unchanged. (The key and ringlmd --prefill-weights.) */
int rl_cfg_prefill_weights(const char *value, rl_prefill_weights *pw);
/* The value's name as the file writes it ("?" for none of the three). */
const char *rl_cfg_prefill_weights_name(rl_prefill_weights pw);

/* Set one key from its text value. Returns 0, -ENOENT (unknown key) or
 * -EINVAL/-ERANGE/-ENAMETOOLONG with a message in err. c is unchanged on error. */
int rl_cfg_set(rl_cfg *c, const char *key, const char *value, char *err, size_t errlen);

/* Parse a whole file's text over the values already in c. All or nothing:
 * on error c is unchanged and err says "line N: ...". */
int rl_cfg_parse(rl_cfg *c, const char *text, size_t len, char *err, size_t errlen);

/* Read and parse a file (at most 1 MiB). A missing file is an error here;
 * the caller decides whether the default path may be absent. */
int rl_cfg_load(rl_cfg *c, const char *path, char *err, size_t errlen);

/* The value of key formatted as the file would write it. Returns the length,
 * or -ENOENT for an unknown key. */
int rl_cfg_format(const rl_cfg *c, const char *key, char *buf, size_t n);

/* Calls cb for each key whose value differs between a and b (in file order);
 * returns the number of differences. cb may be NULL. */
typedef void (*rl_cfg_diff_cb)(void *ud, const char *key, const char *old_val, const char *new_val);
unsigned rl_cfg_diff(const rl_cfg *a, const rl_cfg *b, rl_cfg_diff_cb cb, void *ud);

const char *rl_cfg_device_name(rl_cfg_device d);

#endif
