/* kind.c - store_kind() (store.h): which backend a database string
 * selects. Apart from store.c so that config.c can check a `db` value
 * without linking the backends (the fuzz harness links config alone). */
#include <string.h>
#include <strings.h>

#include "store/store.h"

int store_kind(const char *db)
{
    if (!db)
        return STORE_KIND_SQLITE;
    if (strncasecmp(db, "postgresql://", 13) == 0 ||
        strncasecmp(db, "postgres://", 11) == 0)
        return STORE_KIND_PG;
    /* "scheme://..." of any other scheme is a mistake, not a file name:
     * a file called "mysql:" would surprise whoever typed it. */
    const char *colon = strstr(db, "://");
    if (colon && colon > db) {
        for (const char *p = db; p < colon; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '+' || *p == '-' ||
                  *p == '.'))
                return STORE_KIND_SQLITE;
        return STORE_KIND_UNKNOWN;
    }
    return STORE_KIND_SQLITE;
}
