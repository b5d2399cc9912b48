/* static.c - looks up the embedded web/ files. */
#include <string.h>

#include "http/assets.h"

const struct asset *assets_find(const char *path, size_t len)
{
    for (const struct asset *a = assets; a->path; a++)
        if (strlen(a->path) == len && memcmp(a->path, path, len) == 0)
            return a;
    return NULL;
}
