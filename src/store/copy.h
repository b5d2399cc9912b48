/* copy.h - moves a SQLite database into PostgreSQL (presenced db copy).
 *
 * Every row of the nine data tables (organizations, users, sessions,
 * channels, channel_members, projects, project_members, and since schema
 * version 2 user_extras and org_presets) goes across with its ids,
 * session token hashes, password hashes, presence fields and extras JSON
 * exactly as stored. Not copied: the running server's registration
 * (server) and PostgreSQL's own bookkeeping tables.
 *
 * This works below store.h on purpose: the store.h calls make new ids and
 * new session rows, and one statement per row would take minutes for a
 * large database. The copy reads the file with sqlite3 and writes with
 * libpq's COPY FROM STDIN; store_open() is used first on both sides only
 * so that each schema is created or migrated by its own backend. The
 * server never calls this. */
#ifndef STORE_COPY_H
#define STORE_COPY_H
#include <stdint.h>

#define STORE_COPY_NTABLES 9

struct store_copy_result {
    /* The tables in the order they are copied (parents before children),
     * and how many rows each received. */
    const char *table[STORE_COPY_NTABLES];
    int64_t rows[STORE_COPY_NTABLES];
    int64_t total;
    /* With STORE_EEXIST: how many rows the target's tables held. */
    int64_t target_rows;
};

/* Copies the SQLite file 'from' into the PostgreSQL database at the URI
 * 'to', in one PostgreSQL transaction: all of it or, on any error,
 * nothing. The source is read in one read transaction (a snapshot: a
 * server may keep running on it) through a read-only connection; it is
 * changed only if store_open() has to migrate an older schema. After the
 * copy, the sessions id sequence is moved past the largest id copied.
 *
 * A target whose data tables hold any row is refused unless 'force', in
 * which case those rows are deleted first, in the same transaction.
 *
 * Returns 0 with the counts in *res; else a negative STORE_E* code with
 * one line in err (STORE_ERRLEN bytes) that never shows a password:
 *   STORE_ENOENT  'from' does not exist (nothing is created)
 *   STORE_EINVAL  'from' is not a SQLite path or 'to' not a PostgreSQL URI
 *   STORE_EEXIST  the target is not empty and !force (res->target_rows)
 *   STORE_EDOWN   the PostgreSQL server cannot be reached
 *   STORE_EIO     anything else (authentication, a missing database, a
 *                 row PostgreSQL refuses, a SQLite error) */
int store_copy(const char *from, const char *to, int force,
               struct store_copy_result *res, char *err);
#endif
