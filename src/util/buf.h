/* buf.h - a growable byte buffer with a hard cap (as curl's dynbuf).
 *
 * Every buffer fed by the network has a cap; hitting it is an error for the
 * caller to act on (usually: close the connection), never silent growth. The
 * buffer owns its memory; buf_dispose() frees it and leaves an empty buffer. */
#ifndef BUF_H
#define BUF_H
#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data;   /* NUL-terminated when len > 0 or after any append */
    size_t len;
    size_t cap;   /* allocated */
    size_t max;   /* hard cap on len; 0 means unlimited */
};

enum { BUF_ETOOBIG = -1 };

void buf_init(struct buf *b, size_t max);
void buf_dispose(struct buf *b);
/* Each returns 0, or BUF_ETOOBIG leaving the buffer unchanged. */
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes. */
void buf_consume(struct buf *b, size_t n);
void buf_reset(struct buf *b); /* len = 0, keeps memory */
/* Hands the memory to the caller (free() it); the buffer is left empty. */
char *buf_steal(struct buf *b, size_t *len);
#endif
