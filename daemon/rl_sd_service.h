/* rl_sd_service.h - ringlmd's service layer around the daemon core: the
 * configuration file, journal logging, socket activation and sd_notify
 * (STATUS/READY/WATCHDOG/RELOADING/STOPPING). rl_main.c calls three hooks:
 *
 *   rl_service *svc;
 *   if (rl_service_begin(&svc, &opts, &argc, argv) < 0) return 1;  // before getopt
 *   ... getopt: command-line options override the file ...
 *   rl_daemon_create(&opts, &d, ...);   (on failure: rl_service_end(svc, rc))
 *   rl_service_attach(svc, d);
 *   rc = rl_daemon_run(d);
 *   rl_service_end(svc, rc);
 */
#ifndef RL_SD_SERVICE_H
#define RL_SD_SERVICE_H

#include "rl_cfg.h"
#include "rl_daemon.h"

typedef struct rl_service rl_service;

/* Takes "--config PATH" / "-c PATH" / "--config=PATH" out of argv (the rest is
 * left for the caller's getopt) and notes which other options are present so
 * a reload keeps them. Loads the file (RL_CFG_DEFAULT_FILE may be missing;
 * an explicit one may not), sets the log level and target, reads
 * NOTIFY_SOCKET/WATCHDOG_USEC, takes a socket-activated listening fd, and
 * fills o from the configuration. Returns 0, or -errno after logging why. */
int rl_service_begin(rl_service **out, rl_daemon_opts *o, int *argc, char **argv);

/* The configuration in effect (after begin; reloads update it). */
const rl_cfg *rl_service_cfg(const rl_service *s);

/* After rl_daemon_create: installs the tick (watchdog), reload, ready and
 * stopping hooks. */
void rl_service_attach(rl_service *s, rl_daemon *d);

/* After rl_daemon_run (or a failed create): final STATUS=, frees s. */
void rl_service_end(rl_service *s, int rc);
/* Before rl_service_attach, for an exit that is not a failure (--help,
 * --version): frees s without a status or a log line. */
void rl_service_discard(rl_service *s);

#endif
