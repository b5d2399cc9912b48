/* log.c - see log.h. */
#include "util/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "util/utf8.h"

/* Set on SIGHUP (loop 0) while every loop thread reads it: atomic. Relaxed
 * is enough: a line logged at the old level just after a reload is
 * harmless, and nothing else is ordered by it. */
static atomic_int min_level = LOG_INFO;
static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

void log_set_level(enum log_level l)
{
    atomic_store_explicit(&min_level, (int)l, memory_order_relaxed);
}

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

/* Copies the message in to out, escaped as log.h says. out must hold
 * 4 * strlen(in) + 1 bytes: no byte becomes more than four. */
static void escape(char *out, const char *in)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)in;
    size_t left = strlen(in);
    while (left) {
        unsigned char c = *p;
        size_t n = c >= 0x80 ? utf8_seq_len(p, left) : 0;
        /* U+0080..U+009F are control characters too (C1: a terminal may
         * take U+009B for the start of an escape sequence); their two
         * bytes are escaped one at a time below, as is a byte that is
         * not part of well-formed UTF-8. */
        if (n && !(c == 0xc2 && p[1] < 0xa0)) {
            memcpy(out, p, n);
            out += n;
            p += n;
            left -= n;
            continue;
        }
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            *out++ = (char)c;
        } else {
            *out++ = '\\';
            switch (c) {
            case '\\': *out++ = '\\'; break;
            case '\n': *out++ = 'n'; break;
            case '\r': *out++ = 'r'; break;
            case '\t': *out++ = 't'; break;
            default:
                *out++ = 'x';
                *out++ = hex[c >> 4];
                *out++ = hex[c & 15];
            }
        }
        p++;
        left--;
    }
    *out = '\0';
}

void log_msg(enum log_level l, const char *fmt, ...)
{
    if ((int)l < atomic_load_explicit(&min_level, memory_order_relaxed))
        return;
    struct timespec ts;
    struct tm tm;
    char line[1024], safe[4 * sizeof line], when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    /* The message may quote anything a client sent (an email, a user id
     * from a token): escaped, it stays on its one line and cannot pass
     * for a line of ours. The newline below is the only one written. */
    escape(safe, line);
    /* One fprintf per line so concurrent writers do not interleave. */
    fprintf(stderr, "%s.%03ldZ %s %s\n", when, ts.tv_nsec / 1000000L,
            names[l], safe);
}
