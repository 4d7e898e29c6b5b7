/* rl_log.h - the daemon's logging: syslog priorities, to the journal when run
 * by systemd (structured fields), to stderr otherwise. Thread-safe. */
#ifndef RL_LOG_H
#define RL_LOG_H

#include <syslog.h> /* LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG */

/* Minimum priority printed (default LOG_INFO). */
void rl_log_set_level(int prio);
void rl_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
