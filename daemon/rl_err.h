/* rl_err.h - the one way ringlm code reports a failure with a message:
 * write the message into the caller's buffer (when it has one) and return the
 * negative errno, so a check reads `return rl_fail(err, errlen, -EINVAL, "...")`. */
#ifndef RL_ERR_H
#define RL_ERR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

static inline int rl_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int rl_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

#endif
