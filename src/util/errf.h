/* errf.h - a one-line reason for a caller's error buffer.
 *
 * Parsers and checkers take an optional char *err of cap bytes and write
 * why they refused into it; this is the one place that does the writing.
 * Pure: no allocation, no I/O. */
#ifndef ERRF_H
#define ERRF_H
#include <stddef.h>

/* Formats into err (cap bytes, always NUL-terminated, truncated if need
 * be) unless err is NULL or cap 0; returns rc, so a caller can
 * `return errf(err, cap, E_SOMETHING, "...")`. */
int errf(char *err, size_t cap, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#endif
