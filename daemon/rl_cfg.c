/* rl_cfg.c - parse, validate and compare ringlmd's configuration. */
#include "rl_cfg.h"
#include "rl_err.h"
#include "rl_log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_MAX_LEN 8192
#define FILE_MAX_LEN (1u << 20)

static const char *const keys[] = {"model", "socket", "threads", "device", "spin_window",
                                   "shutdown_deadline", "max_clients", "log_level",
                                   "step_tokens", "kv_mb", "client_queue", "client_kv", "kv_type",
                                   "prefill_weights"};
#define N_KEYS (sizeof keys / sizeof keys[0])


const char *rl_cfg_device_name(rl_cfg_device d)
{
    switch (d) {
    case RL_DEVICE_CPU: return "cpu";
    case RL_DEVICE_CUDA: return "cuda";
    case RL_DEVICE_TEST: return "test";
    }
    return "?";
}

void rl_cfg_defaults(rl_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->model[0] = '\0'; /* none: the daemon serves its built-in test engine */
    snprintf(c->socket, sizeof c->socket, "%s", RL_DEFAULT_SOCKET);
    c->threads = 0;
    c->device = RL_DEVICE_CPU;
    c->spin_window_us = 50;
    c->shutdown_deadline_us = 10ull * 1000000;
    c->max_clients = 64;
    c->log_level = LOG_INFO;
    c->step_tokens = RL_CFG_STEP_TOKENS_DEFAULT;
    c->kv_mb = 0;
    c->client_queue = RL_CFG_CLIENT_QUEUE_MAX;
    c->client_kv = 0;
    c->kv_q8 = false;
    c->prefill_weights = RL_PW_AUTO;
}

int rl_cfg_kv_type(const char *value, bool *q8)
{
    if (strcmp(value, "f16") != 0 && strcmp(value, "q8_0") != 0)
        return -EINVAL;
    *q8 = strcmp(value, "q8_0") == 0;
    return 0;
}

int rl_cfg_prefill_weights(const char *value, rl_prefill_weights *pw)
{
    if (strcmp(value, "auto") == 0)
        *pw = RL_PW_AUTO;
    else if (strcmp(value, "f16") == 0)
        *pw = RL_PW_F16;
    else if (strcmp(value, "quantized") == 0)
        *pw = RL_PW_QUANTIZED;
    else
        return -EINVAL;
    return 0;
}

const char *rl_cfg_prefill_weights_name(rl_prefill_weights pw)
{
    switch (pw) {
    case RL_PW_AUTO: return "auto";
    case RL_PW_QUANTIZED: return "quantized";
    case RL_PW_F16: return "f16";
    }
    return "?";
}

/* Decimal unsigned integer, no sign, no trailing junk. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    if (!(*s >= '0' && *s <= '9'))
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0')
        return -EINVAL;
    if (errno == ERANGE || v > max)
        return -ERANGE;
    *out = v;
    return 0;
}

/* "<n>[us|ms|s|min]" -> microseconds; a bare number has unit default_mult. */
static int parse_duration(const char *s, uint64_t default_mult, uint64_t max_us, uint64_t *out)
{
    char num[32];
    size_t i = 0;
    while (s[i] >= '0' && s[i] <= '9' && i < sizeof num - 1) {
        num[i] = s[i];
        i++;
    }
    num[i] = '\0';
    if (i == 0 || (s[i] >= '0' && s[i] <= '9'))
        return -EINVAL;
    const char *unit = s + i;
    while (*unit == ' ')
        unit++;
    uint64_t mult;
    if (*unit == '\0')
        mult = default_mult;
    else if (strcmp(unit, "us") == 0 || strcmp(unit, "usec") == 0)
        mult = 1;
    else if (strcmp(unit, "ms") == 0 || strcmp(unit, "msec") == 0)
        mult = 1000;
    else if (strcmp(unit, "s") == 0 || strcmp(unit, "sec") == 0)
        mult = 1000000;
    else if (strcmp(unit, "min") == 0)
        mult = 60000000;
    else
        return -EINVAL;
    uint64_t v;
    int rc = parse_u64(num, UINT64_MAX, &v);
    if (rc)
        return rc;
    if (v > max_us / mult)
        return -ERANGE;
    *out = v * mult;
    return 0;
}

static int set_path(char *dst, size_t cap, const char *key, const char *value, bool must_be_absolute,
                    bool allow_empty, char *err, size_t errlen)
{
    size_t len = strlen(value);
    if (len == 0 && !allow_empty)
        return rl_fail(err, errlen, -EINVAL, "%s: empty path", key);
    if (len >= cap)
        return rl_fail(err, errlen, -ENAMETOOLONG, "%s: path longer than %zu bytes", key, cap - 1);
    if (len > 0 && must_be_absolute && value[0] != '/')
        return rl_fail(err, errlen, -EINVAL, "%s: '%s' is not an absolute path", key, value);
    memcpy(dst, value, len + 1);
    return 0;
}

int rl_cfg_set(rl_cfg *c, const char *key, const char *value, char *err, size_t errlen)
{
    uint64_t v;
    int rc;
    if (strcmp(key, "model") == 0)
        return set_path(c->model, sizeof c->model, key, value, false, true, err, errlen);
    if (strcmp(key, "socket") == 0)
        return set_path(c->socket, sizeof c->socket, key, value, true, false, err, errlen);
    if (strcmp(key, "threads") == 0) {
        if ((rc = parse_u64(value, 1024, &v)))
            return rl_fail(err, errlen, rc, "threads: '%s' is not a number in 0..1024", value);
        c->threads = (uint32_t)v;
        return 0;
    }
    if (strcmp(key, "device") == 0) {
        if (strcasecmp(value, "cpu") == 0)
            c->device = RL_DEVICE_CPU;
        else if (strcasecmp(value, "cuda") == 0 || strcasecmp(value, "gpu") == 0)
            c->device = RL_DEVICE_CUDA;
        else if (strcasecmp(value, "test") == 0)
            c->device = RL_DEVICE_TEST;
        else
            return rl_fail(err, errlen, -EINVAL, "device: '%s' is not cpu, cuda or test", value);
        return 0;
    }
    if (strcmp(key, "spin_window") == 0) {
        if ((rc = parse_duration(value, 1, 1000000, &v)))
            return rl_fail(err, errlen, rc, "spin_window: '%s' is not a duration up to 1s", value);
        c->spin_window_us = v;
        return 0;
    }
    if (strcmp(key, "shutdown_deadline") == 0) {
        if ((rc = parse_duration(value, 1000000, 3600ull * 1000000, &v)))
            return rl_fail(err, errlen, rc, "shutdown_deadline: '%s' is not a duration up to 1h", value);
        c->shutdown_deadline_us = v;
        return 0;
    }
    if (strcmp(key, "max_clients") == 0) {
        if ((rc = parse_u64(value, 65536, &v)) || v == 0)
            return rl_fail(err, errlen, rc ? rc : -ERANGE, "max_clients: '%s' is not in 1..65536", value);
        c->max_clients = (uint32_t)v;
        return 0;
    }
    if (strcmp(key, "log_level") == 0) {
        int l = rl_log_level_parse(value);
        if (l < 0)
            return rl_fail(err, errlen, -EINVAL,
                        "log_level: '%s' is not err, warning, notice, info or debug", value);
        c->log_level = l;
        return 0;
    }
    if (strcmp(key, "step_tokens") == 0) {
        if ((rc = parse_u64(value, RL_CFG_STEP_TOKENS_MAX, &v)))
            return rl_fail(err, errlen, rc, "step_tokens: '%s' is not a number in 0..%u", value,
                           RL_CFG_STEP_TOKENS_MAX);
        c->step_tokens = (uint32_t)v;
        return 0;
    }
    if (strcmp(key, "kv_mb") == 0) {
        if ((rc = parse_u64(value, RL_CFG_KV_MB_MAX, &v)))
            return rl_fail(err, errlen, rc, "kv_mb: '%s' is not a number of MiB in 0..%llu", value,
                           RL_CFG_KV_MB_MAX);
        c->kv_mb = v;
        return 0;
    }
    if (strcmp(key, "client_queue") == 0) {
        if ((rc = parse_u64(value, RL_CFG_CLIENT_QUEUE_MAX, &v)) || v == 0)
            return rl_fail(err, errlen, rc ? rc : -ERANGE, "client_queue: '%s' is not in 1..%u", value,
                           RL_CFG_CLIENT_QUEUE_MAX);
        c->client_queue = (uint32_t)v;
        return 0;
    }
    if (strcmp(key, "client_kv") == 0) {
        if ((rc = parse_u64(value, RL_CFG_CLIENT_KV_MAX, &v)))
            return rl_fail(err, errlen, rc, "client_kv: '%s' is not a number in 0..%llu", value,
                           RL_CFG_CLIENT_KV_MAX);
        c->client_kv = v;
        return 0;
    }
    if (strcmp(key, "kv_type") == 0) {
        if (rl_cfg_kv_type(value, &c->kv_q8))
            return rl_fail(err, errlen, -EINVAL, "kv_type: '%s' is not f16 or q8_0", value);
        return 0;
    }
    if (strcmp(key, "prefill_weights") == 0) {
        if (rl_cfg_prefill_weights(value, &c->prefill_weights))
            return rl_fail(err, errlen, -EINVAL, "prefill_weights: '%s' is not auto, f16 or quantized", value);
        return 0;
    }
    return rl_fail(err, errlen, -ENOENT, "unknown key '%s'", key);
}

static char *trim(char *s, char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        end--;
    *end = '\0';
    return s;
}

int rl_cfg_parse(rl_cfg *c, const char *text, size_t len, char *err, size_t errlen)
{
    rl_cfg tmp = *c; /* all or nothing */
    char line[LINE_MAX_LEN];
    size_t pos = 0;
    unsigned lineno = 0;
    while (pos < len) {
        lineno++;
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - (text + pos)) : len - pos;
        if (ll >= sizeof line)
            return rl_fail(err, errlen, -E2BIG, "line %u: longer than %d bytes", lineno, LINE_MAX_LEN - 1);
        memcpy(line, text + pos, ll);
        line[ll] = '\0';
        pos += ll + (nl ? 1 : 0);
        if (memchr(line, '\0', ll))
            return rl_fail(err, errlen, -EINVAL, "line %u: NUL byte", lineno);

        char *s = trim(line, line + ll);
        if (*s == '\0' || *s == '#' || *s == ';')
            continue;
        char *eq = strchr(s, '=');
        if (!eq)
            return rl_fail(err, errlen, -EINVAL, "line %u: expected 'key = value'", lineno);
        char *key = trim(s, eq);
        char *val = trim(eq + 1, eq + 1 + strlen(eq + 1));
        if (*key == '\0')
            return rl_fail(err, errlen, -EINVAL, "line %u: missing key", lineno);
        size_t vl = strlen(val);
        if (vl >= 1 && val[0] == '"') {
            if (vl < 2 || val[vl - 1] != '"')
                return rl_fail(err, errlen, -EINVAL, "line %u: unterminated quote", lineno);
            val[vl - 1] = '\0';
            val++;
        }
        char e2[256];
        int rc = rl_cfg_set(&tmp, key, val, e2, sizeof e2);
        if (rc)
            return rl_fail(err, errlen, rc, "line %u: %s", lineno, e2);
    }
    *c = tmp;
    return 0;
}

int rl_cfg_load(rl_cfg *c, const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        return rl_fail(err, errlen, -e, "%s: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return rl_fail(err, errlen, -EINVAL, "%s: not a regular file", path);
    }
    if (st.st_size > (off_t)FILE_MAX_LEN) {
        close(fd);
        return rl_fail(err, errlen, -EFBIG, "%s: larger than %u bytes", path, FILE_MAX_LEN);
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return rl_fail(err, errlen, -ENOMEM, "%s: out of memory", path);
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    char e2[256];
    int rc = rl_cfg_parse(c, buf, got, e2, sizeof e2);
    free(buf);
    if (rc)
        return rl_fail(err, errlen, rc, "%s: %s", path, e2);
    return 0;
}

static int fmt_duration(uint64_t us, char *buf, size_t n)
{
    if (us != 0 && us % 1000000 == 0)
        return snprintf(buf, n, "%" PRIu64 "s", us / 1000000);
    if (us != 0 && us % 1000 == 0)
        return snprintf(buf, n, "%" PRIu64 "ms", us / 1000);
    return snprintf(buf, n, "%" PRIu64 "us", us);
}

int rl_cfg_format(const rl_cfg *c, const char *key, char *buf, size_t n)
{
    if (strcmp(key, "model") == 0)
        return snprintf(buf, n, "%s", c->model);
    if (strcmp(key, "socket") == 0)
        return snprintf(buf, n, "%s", c->socket);
    if (strcmp(key, "threads") == 0)
        return snprintf(buf, n, "%" PRIu32, c->threads);
    if (strcmp(key, "device") == 0)
        return snprintf(buf, n, "%s", rl_cfg_device_name(c->device));
    if (strcmp(key, "spin_window") == 0)
        return fmt_duration(c->spin_window_us, buf, n);
    if (strcmp(key, "shutdown_deadline") == 0)
        return fmt_duration(c->shutdown_deadline_us, buf, n);
    if (strcmp(key, "max_clients") == 0)
        return snprintf(buf, n, "%" PRIu32, c->max_clients);
    if (strcmp(key, "log_level") == 0)
        return snprintf(buf, n, "%s", rl_log_level_name(c->log_level));
    if (strcmp(key, "step_tokens") == 0)
        return snprintf(buf, n, "%" PRIu32, c->step_tokens);
    if (strcmp(key, "kv_mb") == 0)
        return snprintf(buf, n, "%" PRIu64, c->kv_mb);
    if (strcmp(key, "client_queue") == 0)
        return snprintf(buf, n, "%" PRIu32, c->client_queue);
    if (strcmp(key, "client_kv") == 0)
        return snprintf(buf, n, "%" PRIu64, c->client_kv);
    if (strcmp(key, "kv_type") == 0)
        return snprintf(buf, n, "%s", c->kv_q8 ? "q8_0" : "f16");
    if (strcmp(key, "prefill_weights") == 0)
        return snprintf(buf, n, "%s", rl_cfg_prefill_weights_name(c->prefill_weights));
    return -ENOENT;
}

unsigned rl_cfg_diff(const rl_cfg *a, const rl_cfg *b, rl_cfg_diff_cb cb, void *ud)
{
    unsigned n = 0;
    char va[RL_CFG_PATH_MAX + 8], vb[RL_CFG_PATH_MAX + 8];
    for (size_t i = 0; i < N_KEYS; i++) {
        rl_cfg_format(a, keys[i], va, sizeof va);
        rl_cfg_format(b, keys[i], vb, sizeof vb);
        if (strcmp(va, vb) != 0) {
            n++;
            if (cb)
                cb(ud, keys[i], va, vb);
        }
    }
    return n;
}
