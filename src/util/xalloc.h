/* xalloc.h - allocation that aborts on out-of-memory.
 *
 * A server cannot do anything useful once malloc fails, so callers never test
 * for NULL (as Redis zmalloc and h2o_mem_alloc). Libraries we call (SQLite)
 * still report their own NOMEM; store/ handles that. */
#ifndef XALLOC_H
#define XALLOC_H
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);            /* NULL in, NULL out */
char *xstrndup(const char *s, size_t n); /* always NUL-terminates */

#define container_of(ptr, type, member) \
    ((type *)((char *)(ptr) - offsetof(type, member)))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#endif
