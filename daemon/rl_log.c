/* rl_log.c - logging to the journal (structured fields) or to a terminal. */
#include "rl_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#define RL_LOG_MAX_FIELDS 16
#define RL_LOG_BUF 2048

/* Relaxed: level and target are independent flags; a racing reader printing
 * one message with the old value is harmless. */
static _Atomic int g_level = LOG_INFO;
static _Atomic int g_target = RL_LOG_AUTO;

static const char *const level_names[8] = {"emerg", "alert", "crit", "err",
                                           "warning", "notice", "info", "debug"};

void rl_log_set_level(int prio)
{
    if (prio < LOG_EMERG)
        prio = LOG_EMERG;
    if (prio > LOG_DEBUG)
        prio = LOG_DEBUG;
    atomic_store_explicit(&g_level, prio, memory_order_relaxed);
}

int rl_log_get_level(void) { return atomic_load_explicit(&g_level, memory_order_relaxed); }

const char *rl_log_level_name(int prio)
{
    return (prio >= 0 && prio <= 7) ? level_names[prio] : "unknown";
}

int rl_log_level_parse(const char *s)
{
    if (!s)
        return -1;
    if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
        return s[0] - '0';
    for (int i = 0; i < 8; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "error") == 0)
        return LOG_ERR;
    if (strcasecmp(s, "warn") == 0)
        return LOG_WARNING;
    return -1;
}

bool rl_log_stderr_is_journal(void)
{
    const char *e = getenv("JOURNAL_STREAM");
    if (!e || !*e)
        return false;
    char *end;
    unsigned long long dev = strtoull(e, &end, 10);
    if (*end != ':')
        return false;
    unsigned long long ino = strtoull(end + 1, &end, 10);
    if (*end != '\0')
        return false;
    struct stat st;
    if (fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void rl_log_set_target(rl_log_target t)
{
    if (t == RL_LOG_AUTO)
        t = rl_log_stderr_is_journal() ? RL_LOG_JOURNAL : RL_LOG_CONSOLE;
    /* libsystemd drops records silently when journald is absent: keep them. */
    if (t == RL_LOG_JOURNAL && access("/run/systemd/journal/socket", W_OK) != 0)
        t = RL_LOG_CONSOLE;
    atomic_store_explicit(&g_target, (int)t, memory_order_relaxed);
}

rl_log_target rl_log_get_target(void)
{
    int t = atomic_load_explicit(&g_target, memory_order_relaxed);
    if (t == RL_LOG_AUTO) {
        rl_log_set_target(RL_LOG_AUTO);
        t = atomic_load_explicit(&g_target, memory_order_relaxed);
    }
    return (rl_log_target)t;
}

static bool is_field_line(const char *s, size_t len)
{
    if (len < 2 || !(s[0] >= 'A' && s[0] <= 'Z'))
        return false;
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        if (c == '=')
            return i < 64;
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return false;
}

/* Emits one record. text is split in place at newlines when parse_fields. */
static void emit(int prio, char *text, bool parse_fields)
{
    char *fields[RL_LOG_MAX_FIELDS];
    size_t nf = 0;
    char msgbuf[RL_LOG_BUF];
    if (parse_fields) {
        /* Field lines become fields; any other line stays in the message. */
        char *nl = strchr(text, '\n');
        size_t ml = nl ? (size_t)(nl - text) : strlen(text);
        memcpy(msgbuf, text, ml);
        while (nl) {
            char *start = nl + 1;
            nl = strchr(start, '\n');
            size_t len = nl ? (size_t)(nl - start) : strlen(start);
            if (nl)
                *nl = '\0';
            if (nf < RL_LOG_MAX_FIELDS && is_field_line(start, len)) {
                fields[nf++] = start;
            } else if (ml + 1 + len < sizeof msgbuf) {
                msgbuf[ml++] = '\n';
                memcpy(msgbuf + ml, start, len);
                ml += len;
            }
        }
        msgbuf[ml] = '\0';
        text = msgbuf;
    }

    if (rl_log_get_target() == RL_LOG_JOURNAL) {
        char pbuf[16], mbuf_hdr[] = "MESSAGE=";
        struct iovec iov[RL_LOG_MAX_FIELDS + 4];
        int n = 0;
        snprintf(pbuf, sizeof pbuf, "PRIORITY=%d", prio);
        iov[n++] = (struct iovec){pbuf, strlen(pbuf)};
        /* MESSAGE= then the text: two iovecs would be two fields, so copy. */
        char msg[RL_LOG_BUF + sizeof mbuf_hdr];
        int ml = snprintf(msg, sizeof msg, "%s%s", mbuf_hdr, text);
        if (ml < 0)
            return;
        if ((size_t)ml >= sizeof msg)
            ml = (int)sizeof msg - 1;
        iov[n++] = (struct iovec){msg, (size_t)ml};
        iov[n++] = (struct iovec){"SYSLOG_IDENTIFIER=ringlmd", strlen("SYSLOG_IDENTIFIER=ringlmd")};
        for (size_t i = 0; i < nf; i++)
            iov[n++] = (struct iovec){fields[i], strlen(fields[i])};
        if (sd_journal_sendv(iov, n) >= 0)
            return;
        /* journald refused it: fall through to stderr so nothing is lost */
    }

    char line[RL_LOG_BUF + 512];
    size_t off = 0;
    off += (size_t)snprintf(line, sizeof line, "ringlmd[%d]: %s: %s", (int)getpid(),
                            rl_log_level_name(prio), text);
    if (off >= sizeof line)
        off = sizeof line - 1;
    for (size_t i = 0; i < nf && off < sizeof line - 1; i++) {
        int w = snprintf(line + off, sizeof line - off, "%s%s", i == 0 ? " [" : " ", fields[i]);
        off = (w < 0 || (size_t)w >= sizeof line - off) ? sizeof line - 1 : off + (size_t)w;
    }
    if (nf && off < sizeof line - 1)
        line[off++] = ']';
    /* One write() per record: lines of concurrent threads never interleave. */
    if (off >= sizeof line - 1)
        off = sizeof line - 2;
    line[off++] = '\n';
    ssize_t r = write(STDERR_FILENO, line, off);
    (void)r;
}

static void vlog(int prio, bool fields, const char *fmt, va_list ap)
{
    if (prio > atomic_load_explicit(&g_level, memory_order_relaxed))
        return;
    char buf[RL_LOG_BUF];
    vsnprintf(buf, sizeof buf, fmt, ap);
    emit(prio, buf, fields);
}

void rl_log(int prio, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(prio, false, fmt, ap);
    va_end(ap);
}

void rl_log_fields(int prio, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog(prio, true, fmt, ap);
    va_end(ap);
}
