/* log.c - see log.h. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum log_level min_level = LOG_INFO;
static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void log_set_level(enum log_level l) { min_level = l; }

int log_parse_level(const char *s, enum log_level *out)
{
    static const char *lower[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, lower[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    return -1;
}

void log_msg(enum log_level l, const char *fmt, ...)
{
    if (l < min_level)
        return;
    struct timespec ts;
    struct tm tm;
    char line[1024], when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* One fprintf per line so concurrent writers do not interleave. */
    fprintf(stderr, "%s.%03ldZ %s %s\n", when, ts.tv_nsec / 1000000L,
            names[l], line);
}
