/* rl_log.h - the daemon's logging: syslog priorities, to the journal when run
 * by systemd (structured fields), to stderr otherwise. Thread-safe.
 *
 * Target selection (rl_log_set_target, default RL_LOG_AUTO): the journal when
 * $JOURNAL_STREAM names the device:inode of our stderr (systemd connected
 * stderr to journald), plain readable lines on stderr otherwise. */
#ifndef RL_LOG_H
#define RL_LOG_H

#include <stdbool.h>
#include <syslog.h> /* LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG */

typedef enum rl_log_target {
    RL_LOG_AUTO = 0, /* journal if $JOURNAL_STREAM matches stderr, else console */
    RL_LOG_CONSOLE,  /* "ringlmd: info: message [KEY=value ...]" on stderr */
    RL_LOG_JOURNAL,  /* sd_journal_sendv with PRIORITY=, MESSAGE= and fields */
} rl_log_target;

/* Minimum priority printed (default LOG_INFO). */
void rl_log_set_level(int prio);
int rl_log_get_level(void);
/* Choose the sink; RL_LOG_AUTO re-examines $JOURNAL_STREAM and stderr. */
void rl_log_set_target(rl_log_target t);
/* True when $JOURNAL_STREAM ("dev:inode") names the file behind fd 2. */
bool rl_log_stderr_is_journal(void);
/* The sink in use (never RL_LOG_AUTO). */
rl_log_target rl_log_get_target(void);

/* A plain message. The text is never parsed for fields. */
void rl_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A structured message: the formatted text is "message\nKEY=value\nKEY=value".
 * The first line is MESSAGE=; each later line that starts with an upper-case
 * field name ([A-Z][A-Z0-9_]*=) becomes a journal field (on the console they
 * are shown in brackets). Use RL_-prefixed names: RL_CLIENT_PID=, RL_REQUESTS=,
 * RL_MODEL=... Keep client-controlled text out of the field lines. Example:
 *   rl_log_fields(LOG_INFO, "client connected\nRL_CLIENT_PID=%d", pid); */
void rl_log_fields(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "err", "warning", "notice", "info", "debug" (also "error", "warn", or a
 * digit 0-7) -> LOG_*; -1 when unknown. */
int rl_log_level_parse(const char *s);
const char *rl_log_level_name(int prio);

#endif
