/* copy.c - see copy.h: SQLite file -> PostgreSQL, every row, ids kept.
 *
 * Each table goes across as one COPY ... FROM STDIN in text format, fed
 * from one SELECT * on the source: the column names come from the
 * source, so a column added to both schemas later needs no change here.
 * Values are written by their SQLite storage class: NULL as \N, integers
 * in decimal, text escaped (backslash, tab, newline, carriage return),
 * blobs as bytea hex (\\x...). PostgreSQL checks every value against its
 * own column types and constraints; one refusal rolls the whole copy
 * back. */
#include "store/copy.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/store.h"
#include "util/xalloc.h"

/* Parents before children, so that every foreign key finds its row.
 * Tables of later schema versions go at the end, so that the counts
 * `db copy` prints keep their order. */
static const char *const tables[STORE_COPY_NTABLES] = {
    "organizations",   "users",           "sessions",
    "channels",        "channel_members", "projects",
    "project_members", "user_extras",     "org_presets",
};

/* COPY data is handed to libpq in chunks of this size. */
#define CHUNK (64 * 1024)

struct copy {
    sqlite3 *db;
    PGconn *pg;
    char *password; /* the target's, to keep out of messages; or NULL */
    char *err;
    size_t len;
    char out[CHUNK];
};

/* ------------------------------------------------------------------------
 * Messages
 * ------------------------------------------------------------------------ */

/* Writes one line to c->err: the first line of the formatted text, with
 * every occurrence of the target's password replaced by "***". libpq's
 * messages do not show the password; this makes sure no message of ours
 * or of a server ever does. */
static void fail(struct copy *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fail(struct copy *c, const char *fmt, ...)
{
    char line[STORE_ERRLEN * 2];
    va_list ap;

    if (!c->err)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    line[strcspn(line, "\r\n")] = '\0';
    size_t o = 0, plen = c->password ? strlen(c->password) : 0;
    for (const char *p = line; *p && o + 1 < STORE_ERRLEN;) {
        if (plen && strncmp(p, c->password, plen) == 0) {
            for (const char *r = "***"; *r && o + 1 < STORE_ERRLEN; r++)
                c->err[o++] = *r;
            p += plen;
            continue;
        }
        c->err[o++] = *p++;
    }
    c->err[o] = '\0';
}

/* libpq's reason, trimmed to its first line (fail() does that). */
static const char *pg_reason(PGconn *pg, PGresult *r)
{
    const char *m = r ? PQresultErrorMessage(r) : "";
    if (!m || !*m)
        m = PQerrorMessage(pg);
    return m && *m ? m : "unknown error";
}

/* The password the URI gives libpq, if any (malloc'd). */
static char *uri_password(const char *uri)
{
    char *perr = NULL, *pw = NULL;
    PQconninfoOption *opts = PQconninfoParse(uri, &perr);
    PQfreemem(perr);
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (!strcmp(o->keyword, "password") && o->val && *o->val)
            pw = xstrdup(o->val);
    PQconninfoFree(opts);
    return pw;
}

/* ------------------------------------------------------------------------
 * PostgreSQL side
 * ------------------------------------------------------------------------ */

/* Runs SQL that returns no rows (or whose rows are not wanted). */
static int pg_exec(struct copy *c, const char *sql, const char *what)
{
    PGresult *r = PQexec(c->pg, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fail(c, "%s: %s", what, pg_reason(c->pg, r));
    PQclear(r);
    return ok ? 0 : STORE_EIO;
}

/* Rows in the target's data tables, or < 0. */
static int64_t target_rows(struct copy *c)
{
    char sql[1024];
    size_t o = 0;
    int64_t n = -1;

    o += (size_t)snprintf(sql, sizeof sql, "SELECT 0");
    for (int i = 0; i < STORE_COPY_NTABLES; i++)
        o += (size_t)snprintf(sql + o, sizeof sql - o,
                              " + (SELECT count(*) FROM \"%s\")", tables[i]);
    PGresult *r = PQexec(c->pg, sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    else
        fail(c, "count the target's rows: %s", pg_reason(c->pg, r));
    PQclear(r);
    return n;
}

/* One TRUNCATE of the data tables together (their foreign keys point
 * only at one another), inside the copy's transaction: a rollback brings
 * the rows back. It is several times faster than DELETE, which checks
 * every foreign key row by row. It fires no DELETE trigger, but each COPY
 * that follows fires the backend's change-counter triggers (even with no
 * rows), so servers on the target still learn of the change. */
static int empty_target(struct copy *c)
{
    char sql[256];
    size_t o = (size_t)snprintf(sql, sizeof sql, "TRUNCATE");
    for (int i = 0; i < STORE_COPY_NTABLES; i++)
        o += (size_t)snprintf(sql + o, sizeof sql - o, "%s \"%s\"",
                              i ? "," : "", tables[i]);
    return pg_exec(c, sql, "empty the target");
}

static int flush(struct copy *c)
{
    if (c->len && PQputCopyData(c->pg, c->out, (int)c->len) != 1)
        return -1;
    c->len = 0;
    return 0;
}

static int put(struct copy *c, const char *p, size_t n)
{
    while (n) {
        if (c->len == CHUNK && flush(c))
            return -1;
        size_t k = CHUNK - c->len < n ? CHUNK - c->len : n;
        memcpy(c->out + c->len, p, k);
        c->len += k;
        p += k;
        n -= k;
    }
    return 0;
}

/* One value in COPY's text format. */
static int put_value(struct copy *c, sqlite3_stmt *st, int col)
{
    static const char hex[] = "0123456789abcdef";
    char num[32];
    int n;

    switch (sqlite3_column_type(st, col)) {
    case SQLITE_NULL:
        return put(c, "\\N", 2);
    case SQLITE_INTEGER:
        n = snprintf(num, sizeof num, "%lld",
                     (long long)sqlite3_column_int64(st, col));
        return put(c, num, (size_t)n);
    case SQLITE_FLOAT:
        n = snprintf(num, sizeof num, "%.17g", sqlite3_column_double(st, col));
        return put(c, num, (size_t)n);
    case SQLITE_BLOB: {
        /* bytea's hex form, its backslash escaped for COPY: \\x0a1b... */
        const unsigned char *b = sqlite3_column_blob(st, col);
        size_t len = (size_t)sqlite3_column_bytes(st, col);
        if (put(c, "\\\\x", 3))
            return -1;
        for (size_t i = 0; i < len; i++) {
            char pair[2] = {hex[b[i] >> 4], hex[b[i] & 15]};
            if (put(c, pair, 2))
                return -1;
        }
        return 0;
    }
    default: {
        const unsigned char *t = sqlite3_column_text(st, col);
        size_t len = (size_t)sqlite3_column_bytes(st, col);
        size_t from = 0;
        /* Only these four bytes mean something in a COPY text field. */
        for (size_t i = 0; i < len; i++) {
            const char *esc = t[i] == '\\'   ? "\\\\"
                              : t[i] == '\t' ? "\\t"
                              : t[i] == '\n' ? "\\n"
                              : t[i] == '\r' ? "\\r"
                                             : NULL;
            if (!esc)
                continue;
            if (put(c, (const char *)t + from, i - from) || put(c, esc, 2))
                return -1;
            from = i + 1;
        }
        return put(c, (const char *)t + from, len - from);
    }
    }
}

/* Appends "name" to sql as a quoted identifier ("" doubles a quote). */
static void put_ident(char *sql, size_t cap, size_t *o, const char *name)
{
    if (*o + 1 < cap)
        sql[(*o)++] = '"';
    for (; *name && *o + 2 < cap; name++) {
        if (*name == '"')
            sql[(*o)++] = '"';
        sql[(*o)++] = *name;
    }
    if (*o + 1 < cap)
        sql[(*o)++] = '"';
    sql[*o] = '\0';
}

/* Copies one table; its row count goes to *rows. */
static int copy_table(struct copy *c, const char *table, int64_t *rows)
{
    char sql[2048];
    size_t o = 0;
    sqlite3_stmt *st = NULL;
    PGresult *r;
    int rc, src;
    int64_t n = 0;

    snprintf(sql, sizeof sql, "SELECT * FROM \"%s\"", table);
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
        fail(c, "read %s: %s", table, sqlite3_errmsg(c->db));
        return STORE_EIO;
    }
    int ncol = sqlite3_column_count(st);
    o = (size_t)snprintf(sql, sizeof sql, "COPY \"%s\" (", table);
    for (int i = 0; i < ncol; i++) {
        if (i)
            sql[o++] = ',';
        put_ident(sql, sizeof sql - 32, &o, sqlite3_column_name(st, i));
    }
    snprintf(sql + o, sizeof sql - o, ") FROM STDIN");

    r = PQexec(c->pg, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        fail(c, "copy %s: %s", table, pg_reason(c->pg, r));
        PQclear(r);
        sqlite3_finalize(st);
        return STORE_EIO;
    }
    PQclear(r);

    c->len = 0;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        int bad = 0;
        for (int i = 0; !bad && i < ncol; i++)
            bad = (i && put(c, "\t", 1)) || put_value(c, st, i);
        if (bad || put(c, "\n", 1))
            break;
        n++;
    }
    rc = STORE_EIO;
    if (src == SQLITE_ROW) { /* libpq refused the data */
        fail(c, "copy %s: %s", table, pg_reason(c->pg, NULL));
        PQputCopyEnd(c->pg, "copy aborted");
    } else if (src != SQLITE_DONE) {
        /* Ending the COPY with a message makes the server abort it. */
        fail(c, "read %s: %s", table, sqlite3_errmsg(c->db));
        PQputCopyEnd(c->pg, "the source could not be read");
    } else if (flush(c) || PQputCopyEnd(c->pg, NULL) != 1) {
        fail(c, "copy %s: %s", table, pg_reason(c->pg, NULL));
    } else {
        rc = 0;
    }
    sqlite3_finalize(st);

    /* The COPY's own outcome (PostgreSQL checks every row only now), then
     * the end of results. */
    while ((r = PQgetResult(c->pg)) != NULL) {
        ExecStatusType rs = PQresultStatus(r);
        if (rc == 0 && rs != PGRES_COMMAND_OK) {
            fail(c, "copy %s: %s", table, pg_reason(c->pg, r));
            rc = STORE_EIO;
        } else if (rc == 0 && strtoll(PQcmdTuples(r), NULL, 10) != n) {
            fail(c, "copy %s: %s rows written of %lld read", table,
                 PQcmdTuples(r), (long long)n);
            rc = STORE_EIO;
        }
        PQclear(r);
        if (rs == PGRES_COPY_IN) /* cannot happen after PQputCopyEnd */
            break;
    }
    *rows = n;
    return rc;
}

/* New logins take ids from the sessions identity: it must start past the
 * ids copied, or the next login would collide with a copied session. */
static int advance_sessions(struct copy *c)
{
    return pg_exec(c,
                   "SELECT setval(pg_get_serial_sequence('sessions', 'id'), "
                   "COALESCE((SELECT max(id) FROM sessions), 0) + 1, false)",
                   "advance the sessions id sequence");
}

/* ------------------------------------------------------------------------
 * The copy
 * ------------------------------------------------------------------------ */

/* store_open() on each side creates or migrates its schema, so that both
 * have the columns this binary knows; the handles are not used further. */
static int prepare_schema(struct copy *c, const char *db, const char *side)
{
    struct store *s;
    char e[STORE_ERRLEN] = "";
    int rc = store_open(&s, db, e);
    if (rc) {
        fail(c, "%s: %s", side, *e ? e : store_strerror(rc));
        return rc == STORE_EDOWN ? STORE_EDOWN : STORE_EIO;
    }
    store_close(s);
    return 0;
}

static int run(struct copy *c, const char *from, const char *to, int force,
               struct store_copy_result *res)
{
    int rc;

    if ((rc = prepare_schema(c, from, "source")) ||
        (rc = prepare_schema(c, to, "target")))
        return rc;

    /* Read-only: the copy never writes to the source, and WAL lets it
     * read beside a running server without waiting for it. */
    if (sqlite3_open_v2(from, &c->db, SQLITE_OPEN_READONLY |
                                          SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        fail(c, "source: %s",
             c->db ? sqlite3_errmsg(c->db) : "cannot open");
        return STORE_EIO;
    }
    sqlite3_busy_timeout(c->db, 5000);

    c->pg = PQconnectdb(to);
    if (PQstatus(c->pg) != CONNECTION_OK) {
        fail(c, "target: %s", pg_reason(c->pg, NULL));
        return STORE_EIO;
    }
    if (PQsetClientEncoding(c->pg, "UTF8") != 0) {
        fail(c, "target: %s", pg_reason(c->pg, NULL));
        return STORE_EIO;
    }

    if (pg_exec(c, "BEGIN", "begin"))
        return STORE_EIO;
    int64_t have = target_rows(c);
    if (have < 0)
        return STORE_EIO;
    if (have > 0 && !force) {
        res->target_rows = have;
        fail(c, "target database is not empty (%lld rows); use --force to "
                "replace them",
             (long long)have);
        return STORE_EEXIST;
    }
    if (have > 0 && (rc = empty_target(c)))
        return rc;

    /* One read transaction over every table: a consistent snapshot even
     * while a server writes to the file. */
    if (sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
        fail(c, "source: %s", sqlite3_errmsg(c->db));
        return STORE_EIO;
    }
    for (int i = 0; i < STORE_COPY_NTABLES; i++) {
        if ((rc = copy_table(c, tables[i], &res->rows[i])))
            return rc;
        res->total += res->rows[i];
    }
    sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    if (advance_sessions(c) || pg_exec(c, "COMMIT", "commit"))
        return STORE_EIO;
    return 0;
}

int store_copy(const char *from, const char *to, int force,
               struct store_copy_result *res, char *err)
{
    struct copy *c = xcalloc(1, sizeof *c);
    struct stat sb;
    int rc;

    memset(res, 0, sizeof *res);
    for (int i = 0; i < STORE_COPY_NTABLES; i++)
        res->table[i] = tables[i];
    if (err)
        err[0] = '\0';
    c->err = err;
    c->password = to ? uri_password(to) : NULL;

    if (!from || store_kind(from) != STORE_KIND_SQLITE) {
        fail(c, "the source must be a SQLite file");
        rc = STORE_EINVAL;
    } else if (!to || store_kind(to) != STORE_KIND_PG) {
        fail(c, "the target must be a postgresql:// URI (only SQLite to "
                "PostgreSQL is supported)");
        rc = STORE_EINVAL;
    } else if (stat(from, &sb) != 0) {
        /* store_open() would create it: an empty copy is not what was
         * asked for. */
        fail(c, "%s: no such file", from);
        rc = STORE_ENOENT;
    } else if (!S_ISREG(sb.st_mode)) {
        fail(c, "%s: not a file", from);
        rc = STORE_EINVAL;
    } else {
        rc = run(c, from, to, force, res);
    }

    /* Closing the connection would roll back too; saying so is clearer
     * in the server's log. */
    if (rc && c->pg && (PQtransactionStatus(c->pg) == PQTRANS_INTRANS ||
                        PQtransactionStatus(c->pg) == PQTRANS_INERROR))
        PQclear(PQexec(c->pg, "ROLLBACK"));
    if (c->pg)
        PQfinish(c->pg);
    sqlite3_close(c->db);
    free(c->password);
    free(c);
    if (rc)
        res->total = 0;
    return rc;
}
