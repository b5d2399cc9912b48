/* errf.c - see errf.h. */
#include "util/errf.h"

#include <stdarg.h>
#include <stdio.h>

int errf(char *err, size_t cap, int rc, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return rc;
}
