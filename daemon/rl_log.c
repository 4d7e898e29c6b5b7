/* rl_log.c - minimal stderr logger; the service work replaces the sink with the journal. */
#include "rl_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

static atomic_int g_level = LOG_INFO; /* read by every thread that logs */

void rl_log_set_level(int prio) { atomic_store_explicit(&g_level, prio, memory_order_relaxed); }

void rl_log(int prio, const char *fmt, ...)
{
    if (prio > atomic_load_explicit(&g_level, memory_order_relaxed))
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    /* "<N>" prefixes are understood by journald when stderr is a journal stream. */
    fprintf(stderr, "<%d>ringlmd: %s\n", prio, buf);
}
