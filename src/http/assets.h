/* assets.h - the files of web/, compiled in by tools/embed.sh.
 *
 * The table ends with an entry whose path is NULL. Data is static and
 * read-only; each entry's etag changes with its content. */
#ifndef ASSETS_H
#define ASSETS_H
#include <stddef.h>

struct asset {
    const char *path;   /* "/static/presence.js", relative to web/ */
    const char *type;   /* Content-Type */
    const unsigned char *data;
    size_t len;
    const char *etag;   /* quoted */
};

extern const struct asset assets[];

/* The asset at path (len bytes, no NUL needed), or NULL. */
const struct asset *assets_find(const char *path, size_t len);
#endif
