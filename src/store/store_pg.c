/* store_pg.c - the PostgreSQL backend (stub until the libpq backend lands). */
#include <string.h>

#include "store/store_int.h"

int store_pg_open(struct store **out, const char *uri, char *err)
{
    (void)uri;
    *out = NULL;
    if (err)
        strcpy(err, "PostgreSQL backend not built yet");
    return STORE_EIO;
}
