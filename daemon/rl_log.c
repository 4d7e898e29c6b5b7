/* rl_log.c - minimal stderr logger; the service work replaces the sink with the journal. */
#include "rl_log.h"

#include <stdarg.h>
#include <stdio.h>

static int g_level = LOG_INFO;

void rl_log_set_level(int prio) { g_level = prio; }

void rl_log(int prio, const char *fmt, ...)
{
    if (prio > g_level)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* "<N>" prefixes are understood by journald when stderr is a journal stream. */
    fprintf(stderr, "<%d>ringlmd: %s\n", prio, buf);
}
