/* store.c - see store.h.
 *
 * One sqlite3 handle and a fixed table of statements prepared at open.
 * Every public function binds, steps, and resets its statement before it
 * returns, on success and on every error path: a statement left mid-step
 * keeps a read transaction open, and in WAL mode that pins the log and
 * blocks checkpoints for the server and the CLI alike.
 *
 * SQLite is a library that reports its own out-of-memory and disk-full
 * conditions; those become STORE_EIO with one log line, never an abort. Only
 * our own allocation of struct store goes through xalloc. */
#include "store/store.h"
#include "store/store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"
#include "util/xalloc.h"

/* ------------------------------------------------------------------------
 * Schema
 * ------------------------------------------------------------------------ */

/* Migration steps: migrations[i] takes a database from user_version i to
 * i + 1, inside one transaction. Append new steps; never edit a released
 * one, since databases in the field have already run it.
 *
 * Version 1. Ids are TEXT compared with BINARY collation, so any byte
 * sequence without NUL is a distinct id. Emails are unique across all
 * organizations, compared with NOCASE (ASCII case folding); NULL means a
 * token-provisioned user without one, and NULLs never collide. There is
 * deliberately no status history table: a user row holds only the current
 * status, the manual override, and last_seen. The partial index serves the
 * stale sweep, which only ever looks at users that are not OFFLINE. Child
 * sides of foreign keys are indexed so that cascades do not scan. */
static const char *const migrations[] = {
    "CREATE TABLE organizations("
    "  id TEXT NOT NULL PRIMARY KEY,"
    "  name TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL"
    ");"
    "CREATE TABLE users("
    "  org TEXT NOT NULL REFERENCES organizations(id),"
    "  id TEXT NOT NULL,"
    "  email TEXT UNIQUE COLLATE NOCASE,"
    "  name TEXT NOT NULL,"
    "  pw_hash TEXT,"
    "  status INTEGER NOT NULL DEFAULT 0 CHECK(status BETWEEN 0 AND 3),"
    "  manual INTEGER CHECK(manual BETWEEN 0 AND 3),"
    "  last_seen_ms INTEGER NOT NULL DEFAULT 0,"
    "  created_ms INTEGER NOT NULL,"
    "  PRIMARY KEY(org, id)"
    ");"
    "CREATE INDEX users_awake ON users(last_seen_ms) WHERE status <> 0;"
    "CREATE TABLE sessions("
    "  id INTEGER PRIMARY KEY,"
    "  token_hash BLOB NOT NULL UNIQUE CHECK(length(token_hash) = 32),"
    "  org TEXT NOT NULL,"
    "  user TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  expires_ms INTEGER NOT NULL,"
    "  FOREIGN KEY(org, user) REFERENCES users(org, id) ON DELETE CASCADE"
    ");"
    "CREATE INDEX sessions_expires ON sessions(expires_ms);"
    "CREATE INDEX sessions_user ON sessions(org, user);"
    "CREATE TABLE channels("
    "  org TEXT NOT NULL REFERENCES organizations(id),"
    "  id TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  PRIMARY KEY(org, id)"
    ");"
    "CREATE TABLE channel_members("
    "  org TEXT NOT NULL,"
    "  channel TEXT NOT NULL,"
    "  user TEXT NOT NULL,"
    "  PRIMARY KEY(org, channel, user),"
    "  FOREIGN KEY(org, channel) REFERENCES channels(org, id)"
    "    ON DELETE CASCADE,"
    "  FOREIGN KEY(org, user) REFERENCES users(org, id) ON DELETE CASCADE"
    ") WITHOUT ROWID;"
    "CREATE INDEX channel_members_user ON channel_members(org, user);"
    "CREATE TABLE projects("
    "  org TEXT NOT NULL REFERENCES organizations(id),"
    "  id TEXT NOT NULL,"
    "  name TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  PRIMARY KEY(org, id)"
    ");"
    "CREATE TABLE project_members("
    "  org TEXT NOT NULL,"
    "  project TEXT NOT NULL,"
    "  user TEXT NOT NULL,"
    "  PRIMARY KEY(org, project, user),"
    "  FOREIGN KEY(org, project) REFERENCES projects(org, id)"
    "    ON DELETE CASCADE,"
    "  FOREIGN KEY(org, user) REFERENCES users(org, id) ON DELETE CASCADE"
    ") WITHOUT ROWID;"
    "CREATE INDEX project_members_user ON project_members(org, user);"
    "CREATE TABLE server("
    "  id INTEGER PRIMARY KEY CHECK(id = 1),"
    "  pid INTEGER NOT NULL,"
    "  listen TEXT NOT NULL,"
    "  admin_key TEXT NOT NULL,"
    "  started_ms INTEGER NOT NULL"
    ");",

    /* Version 2 (issue 13). A user's extras (status message, Do Not
     * Disturb, time zone, privacy) and an organization's status-message
     * presets, each one row of opaque JSON text that the caller makes and
     * parses. Current state only, like the user row: a new value replaces
     * the old one, and no table keeps what was set before. Each row goes
     * with its user or organization (ON DELETE CASCADE); the primary keys
     * are the child sides of those foreign keys, so no index is needed. A
     * user or organization without a row has nothing set (the caller's
     * defaults). */
    "CREATE TABLE user_extras("
    "  org TEXT NOT NULL,"
    "  user TEXT NOT NULL,"
    "  data TEXT NOT NULL,"
    "  PRIMARY KEY(org, user),"
    "  FOREIGN KEY(org, user) REFERENCES users(org, id) ON DELETE CASCADE"
    ") WITHOUT ROWID;"
    "CREATE TABLE org_presets("
    "  org TEXT NOT NULL PRIMARY KEY"
    "    REFERENCES organizations(id) ON DELETE CASCADE,"
    "  data TEXT NOT NULL"
    ");",
};

#define SCHEMA_VERSION ((int)ARRAY_LEN(migrations))

/* ------------------------------------------------------------------------
 * Statements
 * ------------------------------------------------------------------------ */

enum stmt {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_ORG_ADD,
    ST_ORG_EXISTS,
    ST_USER_ADD,
    ST_USER_GET,
    ST_USER_BY_EMAIL,
    ST_USER_SET_NAME,
    ST_USER_SET_PRESENCE,
    ST_USER_EACH_ALL,
    ST_USER_EACH_ORG,
    ST_USER_COUNT_ALL,
    ST_USER_COUNT_ORG,
    ST_DATA_VERSION,
    ST_RESET_STALE,
    ST_SESSION_ADD,
    ST_SESSION_GET,
    ST_SESSION_GET_ID,
    ST_SESSION_DELETE,
    ST_SESSION_PURGE,
    ST_SESSION_OLDEST,
    ST_SESSION_EACH,
    ST_CHANNEL_ADD,
    ST_CHANNEL_MEMBER_ADD,
    ST_CHANNEL_EACH,
    ST_CHANNEL_GET,
    ST_CHANNEL_MEMBERS,
    ST_PROJECT_ADD,
    ST_PROJECT_MEMBER_ADD,
    ST_PROJECT_EACH,
    ST_PROJECT_GET,
    ST_PROJECT_MEMBERS,
    ST_SERVER_SET,
    ST_SERVER_GET,
    ST_SERVER_CLEAR,
    ST_CHECK,
    ST_USER_EXISTS,
    ST_EXTRA_SET,
    ST_EXTRA_DELETE,
    ST_EXTRA_EACH_ALL,
    ST_EXTRA_EACH_ORG,
    ST_PRESETS_GET,
    ST_PRESETS_SET,
    ST_PRESETS_DELETE,
    ST__COUNT
};

/* Column order of every user read; read_user() depends on it. */
#define USER_COLS "org, id, email, name, pw_hash, status, manual, last_seen_ms"

/* One member count per row, counted by a correlated subquery so that
 * groups without members are listed with 0. */
#define GROUP_EACH(tbl, mtbl, col)                                             \
    "SELECT g.id, g.name, (SELECT count(*) FROM " mtbl " m"                    \
    " WHERE m.org = g.org AND m." col " = g.id)"                               \
    " FROM " tbl " g WHERE g.org = ?1 ORDER BY g.name, g.id"

static const char *const sql[ST__COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT store_group",
    [ST_RELEASE] = "RELEASE store_group",
    [ST_ROLLBACK_TO] = "ROLLBACK TO store_group",
    [ST_ORG_ADD] = "INSERT INTO organizations(id, name, created_ms)"
                   " VALUES(?1, ?2, ?3)",
    [ST_ORG_EXISTS] = "SELECT 1 FROM organizations WHERE id = ?1",
    [ST_USER_ADD] = "INSERT INTO users(org, id, email, name, pw_hash,"
                    " created_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_USER_GET] = "SELECT " USER_COLS " FROM users"
                    " WHERE org = ?1 AND id = ?2",
    /* The column's NOCASE collation applies to this comparison. */
    [ST_USER_BY_EMAIL] = "SELECT " USER_COLS " FROM users WHERE email = ?1",
    [ST_USER_SET_NAME] = "UPDATE users SET name = ?3"
                         " WHERE org = ?1 AND id = ?2",
    [ST_USER_SET_PRESENCE] = "UPDATE users SET status = ?3, manual = ?4,"
                             " last_seen_ms = ?5 WHERE org = ?1 AND id = ?2",
    [ST_USER_EACH_ALL] = "SELECT " USER_COLS " FROM users ORDER BY org, id",
    [ST_USER_EACH_ORG] = "SELECT " USER_COLS " FROM users WHERE org = ?1"
                         " ORDER BY id",
    [ST_USER_COUNT_ALL] = "SELECT count(*) FROM users",
    [ST_USER_COUNT_ORG] = "SELECT count(*) FROM users WHERE org = ?1",
    [ST_DATA_VERSION] = "PRAGMA data_version",
    /* The WHERE matches the users_awake partial index term for term. */
    [ST_RESET_STALE] = "UPDATE users SET status = 0"
                       " WHERE status <> 0 AND last_seen_ms < ?1",
    [ST_SESSION_ADD] = "INSERT INTO sessions(token_hash, org, user,"
                       " created_ms, expires_ms) VALUES(?1, ?2, ?3, ?4, ?5)",
    [ST_SESSION_GET] = "SELECT id, org, user, expires_ms FROM sessions"
                       " WHERE token_hash = ?1 AND expires_ms > ?2",
    [ST_SESSION_GET_ID] = "SELECT id, org, user, expires_ms FROM sessions"
                          " WHERE id = ?1 AND expires_ms > ?2",
    [ST_SESSION_DELETE] = "DELETE FROM sessions WHERE id = ?1",
    [ST_SESSION_PURGE] = "DELETE FROM sessions WHERE expires_ms <= ?1",
    [ST_SESSION_OLDEST] = "SELECT id FROM sessions WHERE org = ?1"
                          " AND user = ?2 AND expires_ms > ?3"
                          " ORDER BY id DESC LIMIT -1 OFFSET ?4",
    [ST_SESSION_EACH] = "SELECT id, org, user, expires_ms, token_hash"
                        " FROM sessions WHERE expires_ms > ?1 ORDER BY id",
    [ST_CHANNEL_ADD] = "INSERT INTO channels(org, id, name, created_ms)"
                       " VALUES(?1, ?2, ?3, ?4)",
    /* OR IGNORE drops duplicate members; it does not apply to foreign
     * keys, so a member outside the organization still fails. */
    [ST_CHANNEL_MEMBER_ADD] = "INSERT OR IGNORE INTO channel_members(org,"
                              " channel, user) VALUES(?1, ?2, ?3)",
    [ST_CHANNEL_EACH] = GROUP_EACH("channels", "channel_members", "channel"),
    [ST_CHANNEL_GET] = "SELECT name FROM channels WHERE org = ?1 AND id = ?2",
    [ST_CHANNEL_MEMBERS] = "SELECT user FROM channel_members"
                           " WHERE org = ?1 AND channel = ?2 ORDER BY user",
    [ST_PROJECT_ADD] = "INSERT INTO projects(org, id, name, created_ms)"
                       " VALUES(?1, ?2, ?3, ?4)",
    [ST_PROJECT_MEMBER_ADD] = "INSERT OR IGNORE INTO project_members(org,"
                              " project, user) VALUES(?1, ?2, ?3)",
    [ST_PROJECT_EACH] = GROUP_EACH("projects", "project_members", "project"),
    [ST_PROJECT_GET] = "SELECT name FROM projects WHERE org = ?1 AND id = ?2",
    [ST_PROJECT_MEMBERS] = "SELECT user FROM project_members"
                           " WHERE org = ?1 AND project = ?2 ORDER BY user",
    [ST_SERVER_SET] = "INSERT OR REPLACE INTO server(id, pid, listen,"
                      " admin_key, started_ms) VALUES(1, ?1, ?2, ?3, ?4)",
    [ST_SERVER_GET] = "SELECT pid, listen, admin_key, started_ms FROM server"
                      " WHERE id = 1",
    [ST_SERVER_CLEAR] = "DELETE FROM server WHERE id = 1 AND pid = ?1",
    [ST_CHECK] = "PRAGMA integrity_check",
    [ST_USER_EXISTS] = "SELECT 1 FROM users WHERE org = ?1 AND id = ?2",
    /* Upserts that write nothing (no change: STORE_ENOENT) when the
     * parent row is missing, rather than fail its foreign key, the same
     * statement as on PostgreSQL (where a failed statement would doom
     * the caller's transaction). The WHERE also keeps SQLite's parser
     * from reading ON CONFLICT as a join constraint. */
    [ST_EXTRA_SET] = "INSERT INTO user_extras(org, user, data)"
                     " SELECT ?1, ?2, ?3 WHERE EXISTS(SELECT 1 FROM users"
                     " WHERE org = ?1 AND id = ?2)"
                     " ON CONFLICT(org, user) DO UPDATE"
                     " SET data = excluded.data",
    [ST_EXTRA_DELETE] = "DELETE FROM user_extras WHERE org = ?1"
                        " AND user = ?2",
    [ST_EXTRA_EACH_ALL] = "SELECT org, user, data FROM user_extras"
                          " ORDER BY org, user",
    [ST_EXTRA_EACH_ORG] = "SELECT org, user, data FROM user_extras"
                          " WHERE org = ?1 ORDER BY user",
    [ST_PRESETS_GET] = "SELECT data FROM org_presets WHERE org = ?1",
    [ST_PRESETS_SET] = "INSERT INTO org_presets(org, data)"
                       " SELECT ?1, ?2 WHERE EXISTS(SELECT 1"
                       " FROM organizations WHERE id = ?1)"
                       " ON CONFLICT(org) DO UPDATE SET data = excluded.data",
    [ST_PRESETS_DELETE] = "DELETE FROM org_presets WHERE org = ?1",
};

struct sq {
    struct store base; /* first: ops */
    sqlite3 *db;
    sqlite3_stmt *st[ST__COUNT];
    int rc; /* raw SQLite code of the last exec(), for retry decisions */
};

/* Channels and projects share every line of code; only the statements and
 * the id prefix differ. */
struct group_kind {
    const char *prefix;
    const char *what;
    enum stmt add, member_add, each, get, members;
};

static const struct group_kind channel_kind = {
    "c_",
    "channel",
    ST_CHANNEL_ADD,
    ST_CHANNEL_MEMBER_ADD,
    ST_CHANNEL_EACH,
    ST_CHANNEL_GET,
    ST_CHANNEL_MEMBERS,
};
static const struct group_kind project_kind = {
    "p_",
    "project",
    ST_PROJECT_ADD,
    ST_PROJECT_MEMBER_ADD,
    ST_PROJECT_EACH,
    ST_PROJECT_GET,
    ST_PROJECT_MEMBERS,
};

/* ------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------ */

/* Maps a failed SQLite result to a STORE_E* code. Constraint failures are
 * the caller's expected outcomes and are not logged; anything else is a
 * real failure (I/O, NOMEM, FULL, BUSY past the timeout, corruption) and
 * gets one log line with SQLite's own message. */
static int fail(struct sq *s, int rc, const char *what)
{
    switch (rc) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
        return STORE_EEXIST;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return STORE_ENOENT;
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_NOTNULL:
        return STORE_EINVAL;
    default:
        log_error("store: %s: %s (%d)", what, sqlite3_errmsg(s->db), rc);
        return STORE_EIO;
    }
}

/* Binds parameters 1, 2, ... as fmt says, one letter each:
 *   t  const char *, NULL binds NULL
 *   e  const char *, NULL or "" binds NULL (optional email, pw_hash)
 *   i  int
 *   m  int, -1 binds NULL (no manual status)
 *   I  int64_t
 *   h  const unsigned char[32] as a BLOB
 * Strings are bound SQLITE_STATIC without a copy: done() clears the
 * bindings before the caller's strings can go away. Returns a SQLite
 * code. */
static int vbind(sqlite3_stmt *st, const char *fmt, va_list ap)
{
    int rc = SQLITE_OK;
    /* A parameter left unbound reads as NULL and would surface as a
     * misleading constraint error; a missing letter is a bug here. */
    if ((int)strlen(fmt) != sqlite3_bind_parameter_count(st)) {
        log_error("store: %zu parameters given for \"%s\"", strlen(fmt),
                  sqlite3_sql(st));
        return SQLITE_MISUSE;
    }
    for (int i = 1; *fmt && rc == SQLITE_OK; fmt++, i++) {
        const char *t;
        int n;
        switch (*fmt) {
        case 't':
        case 'e':
            t = va_arg(ap, const char *);
            if (!t || (*fmt == 'e' && !t[0]))
                rc = sqlite3_bind_null(st, i);
            else
                rc = sqlite3_bind_text(st, i, t, -1, SQLITE_STATIC);
            break;
        case 'i':
            rc = sqlite3_bind_int(st, i, va_arg(ap, int));
            break;
        case 'm':
            n = va_arg(ap, int);
            rc = n < 0 ? sqlite3_bind_null(st, i) : sqlite3_bind_int(st, i, n);
            break;
        case 'I':
            rc = sqlite3_bind_int64(st, i, va_arg(ap, int64_t));
            break;
        case 'h':
            rc = sqlite3_bind_blob(st, i, va_arg(ap, const unsigned char *), 32,
                                   SQLITE_STATIC);
            break;
        default:
            /* A bad format letter is a bug in this file. */
            rc = SQLITE_MISUSE;
        }
    }
    return rc;
}

static int bind(sqlite3_stmt *st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vbind(st, fmt, ap);
    va_end(ap);
    return rc;
}

/* Every statement goes through here after use, on every path. */
static void done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Runs a statement that returns no rows. Returns 0 or a STORE_E* code and
 * leaves the raw SQLite code in s->rc; the statement is reset. */
static int exec(struct sq *s, enum stmt i, const char *what, const char *fmt,
                ...)
{
    sqlite3_stmt *st = s->st[i];
    va_list ap;
    va_start(ap, fmt);
    int rc = vbind(st, fmt, ap);
    va_end(ap);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    s->rc = rc;
    rc = rc == SQLITE_DONE ? 0 : fail(s, rc, what);
    done(st);
    return rc;
}

/* A cursor statement is busy while an _each callback runs. Calling the
 * same _each again from inside that callback would reset the outer walk
 * under its feet, so that is refused rather than silently truncated. */
static sqlite3_stmt *cursor(struct sq *s, enum stmt i)
{
    if (sqlite3_stmt_busy(s->st[i])) {
        log_error("store: reentrant use of \"%s\" refused", sql[i]);
        return NULL;
    }
    return s->st[i];
}

/* Copies text column i into dst (cap bytes, always NUL-terminated); NULL
 * becomes "". A value longer than cap - 1 is cut; our writers enforce the
 * same limits, so only a file edited by hand can hold one. Returns 0, or
 * STORE_EIO when SQLite ran out of memory converting the value. */
static int col_text(struct sq *s, sqlite3_stmt *st, int i, char *dst,
                    size_t cap)
{
    dst[0] = '\0';
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return 0;
    const unsigned char *p = sqlite3_column_text(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    if (!p)
        return sqlite3_errcode(s->db) == SQLITE_NOMEM
                   ? fail(s, SQLITE_NOMEM, "read column")
                   : 0;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return 0;
}

/* Reads a row in USER_COLS order. */
static int read_user(struct sq *s, sqlite3_stmt *st, struct store_user *u)
{
    memset(u, 0, sizeof *u);
    if (col_text(s, st, 0, u->org, sizeof u->org) ||
        col_text(s, st, 1, u->id, sizeof u->id) ||
        col_text(s, st, 2, u->email, sizeof u->email) ||
        col_text(s, st, 3, u->name, sizeof u->name) ||
        col_text(s, st, 4, u->pw_hash, sizeof u->pw_hash))
        return STORE_EIO;
    u->status = sqlite3_column_int(st, 5);
    u->manual = sqlite3_column_type(st, 6) == SQLITE_NULL
                    ? -1
                    : sqlite3_column_int(st, 6);
    u->last_seen_ms = sqlite3_column_int64(st, 7);
    return 0;
}

/* Writes that must be all-or-nothing use these. Outside a transaction they
 * take the write lock up front (BEGIN IMMEDIATE, so the busy timeout
 * applies to getting it); inside the caller's store_begin() they use a
 * savepoint, so a failure undoes only our part of the caller's batch. */
static int tx_open(struct sq *s, int *nested)
{
    *nested = !sqlite3_get_autocommit(s->db);
    return exec(s, *nested ? ST_SAVEPOINT : ST_BEGIN, "begin", "");
}

static void tx_abort(struct sq *s, int nested)
{
    /* SQLite rolls the whole transaction back by itself after some errors
     * (NOMEM, FULL, IOERR); then there is nothing left to undo. */
    if (sqlite3_get_autocommit(s->db))
        return;
    if (nested) {
        exec(s, ST_ROLLBACK_TO, "rollback to savepoint", "");
        exec(s, ST_RELEASE, "release savepoint", "");
    } else {
        exec(s, ST_ROLLBACK, "rollback", "");
    }
}

static int tx_close(struct sq *s, int nested)
{
    int rc = exec(s, nested ? ST_RELEASE : ST_COMMIT, "commit", "");
    if (rc != 0)
        tx_abort(s, nested);
    return rc;
}

/* ------------------------------------------------------------------------
 * Open, migrate, close
 * ------------------------------------------------------------------------ */

/* Runs a one-row pragma and copies its text result into out. */
static int pragma_text(sqlite3 *db, const char *q, char *out, size_t cap)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, q, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    out[0] = '\0';
    if (rc == SQLITE_ROW) {
        const unsigned char *p = sqlite3_column_text(st, 0);
        snprintf(out, cap, "%s", p ? (const char *)p : "");
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

static int user_version(sqlite3 *db, int *v)
{
    char buf[32];
    int rc = pragma_text(db, "PRAGMA user_version", buf, sizeof buf);
    *v = 0;
    if (rc == SQLITE_OK)
        *v = (int)strtol(buf, NULL, 10);
    return rc;
}

/* Runs SQL text through sqlite3_exec, describing a failure in err. */
static int exec_text(sqlite3 *db, const char *q, const char *what, char *err)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, q, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        store_set_err(err, "%s: %s", what, msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return rc;
}

/* Brings the schema to SCHEMA_VERSION, one transaction per step. The
 * version is read again under the write lock because another process (the
 * CLI beside a server) may have migrated the file since our first look. */
static int migrate(sqlite3 *db, char *err)
{
    for (;;) {
        char q[64];
        int v, rc = user_version(db, &v);
        if (rc != SQLITE_OK) {
            store_set_err(err, "read schema version: %s", sqlite3_errmsg(db));
            return STORE_EIO;
        }
        if (v > SCHEMA_VERSION) {
            store_set_err(err,
                          "database schema version %d is newer than this "
                          "presenced (%d)",
                          v, SCHEMA_VERSION);
            return STORE_EIO;
        }
        if (v == SCHEMA_VERSION)
            return 0;
        if (exec_text(db, "BEGIN IMMEDIATE", "begin migration", err))
            return STORE_EIO;
        rc = user_version(db, &v);
        if (rc != SQLITE_OK) {
            store_set_err(err, "read schema version: %s", sqlite3_errmsg(db));
            goto rollback;
        }
        if (v < 0 || v >= SCHEMA_VERSION) {
            /* Someone else finished meanwhile (or went past us): look
             * again outside the transaction. */
            exec_text(db, "ROLLBACK", "rollback", NULL);
            if (v == SCHEMA_VERSION)
                return 0;
            if (v < 0) {
                store_set_err(err, "database schema version %d is invalid", v);
                return STORE_EIO;
            }
            continue;
        }
        snprintf(q, sizeof q, "PRAGMA user_version = %d", v + 1);
        if (exec_text(db, migrations[v], "migrate schema", err) ||
            exec_text(db, q, "set schema version", err) ||
            exec_text(db, "COMMIT", "commit migration", err))
            goto rollback;
        log_info("store: database schema migrated to version %d", v + 1);
        continue;
    rollback:
        if (!sqlite3_get_autocommit(db))
            exec_text(db, "ROLLBACK", "rollback", NULL);
        return STORE_EIO;
    }
}

static const struct store_ops sq_ops;
static void sq_close(struct store *base_);

int store_sqlite_open(struct store **out, const char *path, char *err)
{
    struct sq *s;
    char mode[32];
    int rc;

    *out = NULL;
    if (err)
        err[0] = '\0';
    if (!path) {
        store_set_err(err, "no database path");
        return STORE_EINVAL;
    }
    /* Generated ids come from libsodium's CSPRNG; sodium_init() is
     * idempotent, so every store may call it. */
    if (sodium_init() < 0) {
        store_set_err(err, "libsodium failed to initialize");
        return STORE_EIO;
    }
    s = xcalloc(1, sizeof *s);
    s->base.ops = &sq_ops;
    rc = sqlite3_open_v2(
        path, &s->db,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        store_set_err(err, "open %s: %s", path,
                      s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        goto fail;
    }
    /* Extended codes tell a duplicate key from a missing parent row. */
    sqlite3_extended_result_codes(s->db, 1);
    /* Set before anything takes a lock: the CLI and a running server share
     * the file, and either may briefly hold the write lock. */
    sqlite3_busy_timeout(s->db, 5000);

    /* An in-memory or temporary database has no file name and no use for
     * WAL (SQLite answers "memory"). A file must end up in WAL: readers
     * then never wait for the writer, which the server relies on. */
    if (sqlite3_db_filename(s->db, "main") &&
        sqlite3_db_filename(s->db, "main")[0]) {
        rc = pragma_text(s->db, "PRAGMA journal_mode=WAL", mode, sizeof mode);
        if (rc != SQLITE_OK) {
            store_set_err(err, "enable WAL on %s: %s", path,
                          sqlite3_errmsg(s->db));
            goto fail;
        }
        if (strcmp(mode, "wal") != 0) {
            store_set_err(err, "enable WAL on %s: journal mode is %s", path,
                          mode);
            goto fail;
        }
    }
    if (exec_text(s->db, "PRAGMA foreign_keys=ON", "enable foreign keys",
                  err) ||
        exec_text(s->db, "PRAGMA synchronous=NORMAL", "set synchronous", err))
        goto fail;
    /* A build without foreign keys would accept the pragma and ignore it,
     * and then users of unknown organizations would slip in. */
    rc = pragma_text(s->db, "PRAGMA foreign_keys", mode, sizeof mode);
    if (rc != SQLITE_OK || strcmp(mode, "1") != 0) {
        store_set_err(err, "foreign keys are not available in this SQLite");
        goto fail;
    }
    if (migrate(s->db, err))
        goto fail;
    for (int i = 0; i < ST__COUNT; i++) {
        rc = sqlite3_prepare_v3(s->db, sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                &s->st[i], NULL);
        if (rc != SQLITE_OK) {
            store_set_err(err, "prepare \"%s\": %s", sql[i],
                          sqlite3_errmsg(s->db));
            goto fail;
        }
    }
    *out = &s->base;
    return 0;

fail:
    sq_close(&s->base);
    return STORE_EIO;
}

static void sq_close(struct store *base_)
{
    struct sq *s = (struct sq *)base_;
    if (!s)
        return;
    for (int i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(s->st[i]);
    /* With every statement finalized this only fails on a bug; the
     * handle is then left to leak rather than be used after free. */
    if (sqlite3_close(s->db) != SQLITE_OK)
        log_error("store: close: %s", sqlite3_errmsg(s->db));
    free(s);
}

/* ------------------------------------------------------------------------
 * Transactions
 * ------------------------------------------------------------------------ */

static int sq_begin(struct store *base_)
{
    struct sq *s = (struct sq *)base_;
    return exec(s, ST_BEGIN, "begin", "");
}

static int sq_commit(struct store *base_)
{
    struct sq *s = (struct sq *)base_;
    return exec(s, ST_COMMIT, "commit", "");
}

/* Rolling back when no transaction is open (SQLite may already have rolled
 * it back after an I/O error) succeeds: the caller's goal is met. */
static int sq_rollback(struct store *base_)
{
    struct sq *s = (struct sq *)base_;
    if (sqlite3_get_autocommit(s->db))
        return 0;
    return exec(s, ST_ROLLBACK, "rollback", "");
}

/* ------------------------------------------------------------------------
 * Organizations and users
 * ------------------------------------------------------------------------ */

static int sq_org_add(struct store *base_, const char *id, const char *name)
{
    struct sq *s = (struct sq *)base_;
    if (!store_id_ok(id) || (name && !store_len_ok(name, STORE_NAME_MAX)))
        return STORE_EINVAL;
    return exec(s, ST_ORG_ADD, "add organization", "ttI", id, name ? name : id,
                store_now_ms());
}

static int sq_org_exists(struct store *base_, const char *id)
{
    struct sq *s = (struct sq *)base_;
    sqlite3_stmt *st = s->st[ST_ORG_EXISTS];
    int rc;
    if (!store_id_ok(id))
        return STORE_EINVAL;
    rc = bind(st, "t", id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    rc = rc == SQLITE_ROW    ? 1
         : rc == SQLITE_DONE ? 0
                             : fail(s, rc, "find organization");
    done(st);
    return rc;
}

static int sq_user_add(struct store *base_, const char *org, const char *id,
                       const char *email, const char *name, const char *pw_hash,
                       char *id_out)
{
    struct sq *s = (struct sq *)base_;
    char gen[STORE_ID_MAX + 1];
    int rc;

    if (!store_id_ok(org) || (id && !store_id_ok(id)) ||
        (email && !store_len_ok(email, STORE_EMAIL_MAX)) ||
        !store_len_ok(name, STORE_NAME_MAX) ||
        (pw_hash && !store_len_ok(pw_hash, STORE_PW_HASH_MAX)))
        return STORE_EINVAL;
    for (int tries = 0;; tries++) {
        if (!id)
            store_gen_id(gen, "u_");
        rc = exec(s, ST_USER_ADD, "add user", "tteteI", org, id ? id : gen,
                  email, name, pw_hash, store_now_ms());
        /* A primary key clash on a generated id is bad luck, not the
         * caller's error; a clash on the email is theirs. */
        if (rc == STORE_EEXIST && !id &&
            s->rc == SQLITE_CONSTRAINT_PRIMARYKEY && tries + 1 < STORE_ID_TRIES)
            continue;
        break;
    }
    if (rc == 0 && id_out)
        snprintf(id_out, STORE_ID_MAX + 1, "%s", id ? id : gen);
    return rc;
}

/* Steps a statement expected to yield at most one user row. */
static int get_user(struct sq *s, sqlite3_stmt *st, struct store_user *out,
                    const char *what)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = read_user(s, st, out);
    else if (rc == SQLITE_DONE)
        rc = STORE_ENOENT;
    else
        rc = fail(s, rc, what);
    done(st);
    return rc;
}

static int sq_user_get(struct store *base_, const char *org, const char *id,
                       struct store_user *out)
{
    struct sq *s = (struct sq *)base_;
    sqlite3_stmt *st = s->st[ST_USER_GET];
    int rc;
    if (!store_id_ok(org) || !store_id_ok(id))
        return STORE_EINVAL;
    rc = bind(st, "tt", org, id);
    if (rc != SQLITE_OK) {
        rc = fail(s, rc, "get user");
        done(st);
        return rc;
    }
    return get_user(s, st, out, "get user");
}

static int sq_user_by_email(struct store *base_, const char *email,
                            struct store_user *out)
{
    struct sq *s = (struct sq *)base_;
    sqlite3_stmt *st = s->st[ST_USER_BY_EMAIL];
    int rc;
    if (!store_len_ok(email, STORE_EMAIL_MAX))
        return STORE_EINVAL;
    /* "" is stored as NULL (no email), so it never matches anyone. */
    rc = bind(st, "e", email);
    if (rc != SQLITE_OK) {
        rc = fail(s, rc, "find user by email");
        done(st);
        return rc;
    }
    return get_user(s, st, out, "find user by email");
}

static int sq_user_set_name(struct store *base_, const char *org,
                            const char *id, const char *name)
{
    struct sq *s = (struct sq *)base_;
    int rc;
    if (!store_id_ok(org) || !store_id_ok(id) ||
        !store_len_ok(name, STORE_NAME_MAX))
        return STORE_EINVAL;
    rc = exec(s, ST_USER_SET_NAME, "rename user", "ttt", org, id, name);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        rc = STORE_ENOENT;
    return rc;
}

static int sq_user_set_presence(struct store *base_, const char *org,
                                const char *id, int status, int manual,
                                int64_t last_seen_ms)
{
    struct sq *s = (struct sq *)base_;
    int rc;
    if (!store_id_ok(org) || !store_id_ok(id) || status < 0 || status > 3 ||
        manual < -1 || manual > 3)
        return STORE_EINVAL;
    rc = exec(s, ST_USER_SET_PRESENCE, "store presence", "ttimI", org, id,
              status, manual, last_seen_ms);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        rc = STORE_ENOENT;
    return rc;
}

/* The callback gets a struct of our own, filled from the row: it may call
 * other store functions (a write while this read is open is fine on one
 * connection), but not store_user_each itself. */
static int sq_user_each(struct store *base_, const char *org, store_user_cb *cb,
                        void *ud)
{
    struct sq *s = (struct sq *)base_;
    struct store_user u;
    sqlite3_stmt *st;
    int rc;

    if (org && !store_id_ok(org))
        return STORE_EINVAL;
    st = cursor(s, org ? ST_USER_EACH_ORG : ST_USER_EACH_ALL);
    if (!st)
        return STORE_EIO;
    rc = org ? bind(st, "t", org) : SQLITE_OK;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (read_user(s, st, &u)) {
            done(st);
            return STORE_EIO;
        }
        cb(ud, &u);
        rc = SQLITE_OK;
    }
    rc = rc == SQLITE_DONE ? 0 : fail(s, rc, "list users");
    done(st);
    return rc;
}

static int sq_reset_stale(struct store *base_, int64_t cutoff_ms)
{
    struct sq *s = (struct sq *)base_;
    int rc = exec(s, ST_RESET_STALE, "reset stale users", "I", cutoff_ms);
    return rc ? rc : sqlite3_changes(s->db);
}

static int sq_user_count(struct store *base_, const char *org)
{
    struct sq *s = (struct sq *)base_;
    sqlite3_stmt *st;
    int rc;
    if (org && !store_id_ok(org))
        return STORE_EINVAL;
    st = s->st[org ? ST_USER_COUNT_ORG : ST_USER_COUNT_ALL];
    rc = org ? bind(st, "t", org) : SQLITE_OK;
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    rc = rc == SQLITE_ROW ? sqlite3_column_int(st, 0)
                          : fail(s, rc, "count users");
    done(st);
    return rc;
}

static int64_t sq_data_version(struct store *base_)
{
    struct sq *s = (struct sq *)base_;
    sqlite3_stmt *st = s->st[ST_DATA_VERSION];
    int rc = sqlite3_step(st);
    int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0)
                                 : fail(s, rc, "data_version");
    done(st);
    return v;
}

/* ------------------------------------------------------------------------
 * Extras and presets
 * ------------------------------------------------------------------------ */

/* 1 if the user exists, 0 if not, else a STORE_E* code. */
static int user_exists(struct sq *s, const char *org, const char *id)
{
    sqlite3_stmt *st = s->st[ST_USER_EXISTS];
    int rc = bind(st, "tt", org, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    rc = rc == SQLITE_ROW    ? 1
         : rc == SQLITE_DONE ? 0
                             : fail(s, rc, "find user");
    done(st);
    return rc;
}

static int sq_extra_set(struct store *base_, const char *org, const char *user,
                        const char *json)
{
    struct sq *s = (struct sq *)base_;
    int rc;
    if (!store_id_ok(org) || !store_id_ok(user))
        return STORE_EINVAL;
    if (!json || !json[0]) {
        rc = exec(s, ST_EXTRA_DELETE, "delete extras", "tt", org, user);
        /* Nothing deleted: nothing was set, or there is no such user. */
        if (rc == 0 && sqlite3_changes(s->db) == 0) {
            rc = user_exists(s, org, user);
            rc = rc == 1 ? 0 : rc == 0 ? STORE_ENOENT : rc;
        }
        return rc;
    }
    if (!store_len_ok(json, STORE_EXTRA_MAX))
        return STORE_EINVAL;
    rc = exec(s, ST_EXTRA_SET, "store extras", "ttt", org, user, json);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        rc = STORE_ENOENT;
    return rc;
}

/* The callback gets SQLite's own copies of the row's text, valid until
 * the next step: long rows are handed over whole, never cut. */
static int sq_extra_each(struct store *base_, const char *org,
                         store_extra_cb *cb, void *ud)
{
    struct sq *s = (struct sq *)base_;
    sqlite3_stmt *st;
    int rc;

    if (org && !store_id_ok(org))
        return STORE_EINVAL;
    st = cursor(s, org ? ST_EXTRA_EACH_ORG : ST_EXTRA_EACH_ALL);
    if (!st)
        return STORE_EIO;
    rc = org ? bind(st, "t", org) : SQLITE_OK;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *o = (const char *)sqlite3_column_text(st, 0);
        const char *u = (const char *)sqlite3_column_text(st, 1);
        const char *j = (const char *)sqlite3_column_text(st, 2);
        /* The columns are NOT NULL: NULL here is SQLite out of memory. */
        if (!o || !u || !j) {
            done(st);
            return fail(s, SQLITE_NOMEM, "list extras");
        }
        cb(ud, o, u, j);
        rc = SQLITE_OK;
    }
    rc = rc == SQLITE_DONE ? 0 : fail(s, rc, "list extras");
    done(st);
    return rc;
}

static int sq_presets_get(struct store *base_, const char *org, char *out,
                          size_t cap)
{
    struct sq *s = (struct sq *)base_;
    sqlite3_stmt *st = s->st[ST_PRESETS_GET];
    int rc;

    if (!out || cap == 0)
        return STORE_EINVAL;
    out[0] = '\0';
    if (!store_id_ok(org))
        return STORE_EINVAL;
    rc = bind(st, "t", org);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const unsigned char *p = sqlite3_column_text(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        if (!p)
            rc = fail(s, SQLITE_NOMEM, "get presets");
        else if (n >= cap)
            rc = STORE_EINVAL;
        else {
            memcpy(out, p, n);
            out[n] = '\0';
            rc = 0;
        }
    } else {
        rc = rc == SQLITE_DONE ? STORE_ENOENT : fail(s, rc, "get presets");
    }
    done(st);
    return rc;
}

static int sq_presets_set(struct store *base_, const char *org,
                          const char *json)
{
    struct sq *s = (struct sq *)base_;
    int rc;
    if (!store_id_ok(org))
        return STORE_EINVAL;
    if (!json || !json[0]) {
        rc = exec(s, ST_PRESETS_DELETE, "delete presets", "t", org);
        if (rc == 0 && sqlite3_changes(s->db) == 0) {
            rc = sq_org_exists(base_, org);
            rc = rc == 1 ? 0 : rc == 0 ? STORE_ENOENT : rc;
        }
        return rc;
    }
    if (!store_len_ok(json, STORE_PRESETS_MAX))
        return STORE_EINVAL;
    rc = exec(s, ST_PRESETS_SET, "store presets", "tt", org, json);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        rc = STORE_ENOENT;
    return rc;
}

/* ------------------------------------------------------------------------
 * Sessions
 * ------------------------------------------------------------------------ */

static int sq_session_add(struct store *base_, const unsigned char hash[32],
                          const char *org, const char *user, int64_t expires_ms,
                          int64_t *id_out)
{
    struct sq *s = (struct sq *)base_;
    int rc;
    if (!hash || !store_id_ok(org) || !store_id_ok(user))
        return STORE_EINVAL;
    rc = exec(s, ST_SESSION_ADD, "add session", "httII", hash, org, user,
              store_now_ms(), expires_ms);
    if (rc == 0 && id_out)
        *id_out = sqlite3_last_insert_rowid(s->db);
    return rc;
}

/* Reads the row a session statement found (bound by the caller). */
static int session_row(struct sq *s, sqlite3_stmt *st, int rc,
                       struct store_session *out)
{
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        out->id = sqlite3_column_int64(st, 0);
        out->expires_ms = sqlite3_column_int64(st, 3);
        rc = col_text(s, st, 1, out->org, sizeof out->org);
        if (rc == 0)
            rc = col_text(s, st, 2, out->user, sizeof out->user);
    } else {
        rc = rc == SQLITE_DONE ? STORE_ENOENT : fail(s, rc, "get session");
    }
    done(st);
    return rc;
}

static int sq_session_get(struct store *base_, const unsigned char hash[32],
                          int64_t now_ms, struct store_session *out)
{
    struct sq *s = (struct sq *)base_;
    sqlite3_stmt *st = s->st[ST_SESSION_GET];
    if (!hash)
        return STORE_EINVAL;
    return session_row(s, st, bind(st, "hI", hash, now_ms), out);
}

static int sq_session_get_by_id(struct store *base_, int64_t id, int64_t now_ms,
                                struct store_session *out)
{
    struct sq *s = (struct sq *)base_;
    sqlite3_stmt *st = s->st[ST_SESSION_GET_ID];
    return session_row(s, st, bind(st, "II", id, now_ms), out);
}

static int sq_session_each(struct store *base_, int64_t now_ms,
                           store_session_row_cb *cb, void *ud)
{
    struct sq *s = (struct sq *)base_;
    struct store_session ss;
    unsigned char hash[32];
    sqlite3_stmt *st = cursor(s, ST_SESSION_EACH);
    int rc;

    if (!st)
        return STORE_EIO;
    rc = bind(st, "I", now_ms);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *h = sqlite3_column_blob(st, 4);
        memset(&ss, 0, sizeof ss);
        ss.id = sqlite3_column_int64(st, 0);
        ss.expires_ms = sqlite3_column_int64(st, 3);
        /* The CHECK constraint keeps every hash at 32 bytes; a NULL here
         * is SQLite out of memory. */
        if (!h || sqlite3_column_bytes(st, 4) != 32 ||
            col_text(s, st, 1, ss.org, sizeof ss.org) ||
            col_text(s, st, 2, ss.user, sizeof ss.user)) {
            done(st);
            return fail(s, SQLITE_NOMEM, "list sessions");
        }
        memcpy(hash, h, 32);
        cb(ud, &ss, hash);
        rc = SQLITE_OK;
    }
    rc = rc == SQLITE_DONE ? 0 : fail(s, rc, "list sessions");
    done(st);
    return rc;
}

static int sq_session_delete(struct store *base_, int64_t id)
{
    struct sq *s = (struct sq *)base_;
    int rc = exec(s, ST_SESSION_DELETE, "delete session", "I", id);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        rc = STORE_ENOENT;
    return rc;
}

static int sq_session_purge(struct store *base_, int64_t now_ms)
{
    struct sq *s = (struct sq *)base_;
    int rc = exec(s, ST_SESSION_PURGE, "purge sessions", "I", now_ms);
    return rc ? rc : sqlite3_changes(s->db);
}

static int sq_session_trim(struct store *base_, const char *org,
                           const char *user, int keep, int64_t now_ms,
                           store_session_cb *cb, void *ud)
{
    struct sq *s = (struct sq *)base_;
    if (!store_id_ok(org) || !store_id_ok(user) || keep < 0)
        return STORE_EINVAL;
    /* Ids first, deletes after: the statement is done before any write. */
    sqlite3_stmt *st = s->st[ST_SESSION_OLDEST];
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    int rc = bind(st, "ttII", org, user, now_ms, (int64_t)keep);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            ids = xrealloc(ids, cap * sizeof *ids);
        }
        ids[n++] = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    rc = rc == SQLITE_DONE || rc == SQLITE_OK ? 0 : fail(s, rc, "old sessions");
    done(st);
    int deleted = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int d = sq_session_delete(&s->base, ids[i]);
        if (d == STORE_ENOENT)
            continue;
        rc = d;
        if (d == 0) {
            deleted++;
            if (cb)
                cb(ud, ids[i]);
        }
    }
    free(ids);
    return rc ? rc : deleted;
}

/* ------------------------------------------------------------------------
 * Channels and projects
 * ------------------------------------------------------------------------ */

/* Inserts the group and its members under one transaction (or savepoint).
 * A member outside org fails its foreign key into users(org, id), which
 * comes back as STORE_ENOENT after everything is rolled back. */
static int group_add(struct sq *s, const struct group_kind *k, const char *org,
                     const char *name, const char *const *members, size_t n,
                     char *id_out)
{
    char id[STORE_ID_MAX + 1];
    int rc, nested;

    if (!store_id_ok(org) || !store_len_ok(name, STORE_NAME_MAX) ||
        (n && !members))
        return STORE_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!store_id_ok(members[i]))
            return STORE_EINVAL;

    for (int tries = 0;; tries++) {
        int clash;
        store_gen_id(id, k->prefix);
        if ((rc = tx_open(s, &nested)) != 0)
            return rc;
        rc = exec(s, k->add, k->what, "tttI", org, id, name, store_now_ms());
        /* Read now: the rollback below overwrites s->rc. */
        clash = rc == STORE_EEXIST && s->rc == SQLITE_CONSTRAINT_PRIMARYKEY;
        for (size_t i = 0; rc == 0 && i < n; i++)
            rc = exec(s, k->member_add, k->what, "ttt", org, id, members[i]);
        if (rc == 0)
            rc = tx_close(s, nested);
        else
            tx_abort(s, nested);
        if (clash && tries + 1 < STORE_ID_TRIES)
            continue;
        break;
    }
    if (rc == 0 && id_out)
        memcpy(id_out, id, strlen(id) + 1);
    return rc;
}

/* Strings are copied out of the row before the callback sees them, so
 * they stay valid even if the callback uses other statements. */
static int group_each(struct sq *s, const struct group_kind *k, const char *org,
                      store_group_cb *cb, void *ud)
{
    char id[STORE_ID_MAX + 1], name[STORE_NAME_MAX + 1];
    sqlite3_stmt *st;
    int rc;

    if (!store_id_ok(org))
        return STORE_EINVAL;
    if (!(st = cursor(s, k->each)))
        return STORE_EIO;
    rc = bind(st, "t", org);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (col_text(s, st, 0, id, sizeof id) ||
            col_text(s, st, 1, name, sizeof name)) {
            done(st);
            return STORE_EIO;
        }
        cb(ud, id, name, sqlite3_column_int(st, 2));
        rc = SQLITE_OK;
    }
    rc = rc == SQLITE_DONE ? 0 : fail(s, rc, "list groups");
    done(st);
    return rc;
}

static int group_members(struct sq *s, const struct group_kind *k,
                         const char *org, const char *id, char *name_out,
                         store_member_cb *cb, void *ud)
{
    char user[STORE_ID_MAX + 1], name[STORE_NAME_MAX + 1];
    sqlite3_stmt *st = s->st[k->get];
    int rc;

    if (!store_id_ok(org) || !store_id_ok(id))
        return STORE_EINVAL;
    /* The group itself first: an empty group and a missing one differ. */
    rc = bind(st, "tt", org, id);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        rc = col_text(s, st, 0, name, sizeof name);
    else
        rc = rc == SQLITE_DONE ? STORE_ENOENT : fail(s, rc, k->what);
    done(st);
    if (rc)
        return rc;
    if (name_out)
        memcpy(name_out, name, strlen(name) + 1);

    if (!(st = cursor(s, k->members)))
        return STORE_EIO;
    rc = bind(st, "tt", org, id);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (col_text(s, st, 0, user, sizeof user)) {
            done(st);
            return STORE_EIO;
        }
        cb(ud, user);
        rc = SQLITE_OK;
    }
    rc = rc == SQLITE_DONE ? 0 : fail(s, rc, "list members");
    done(st);
    return rc;
}

static int sq_channel_add(struct store *base_, const char *org,
                          const char *name, const char *const *members,
                          size_t n, char *id_out)
{
    struct sq *s = (struct sq *)base_;
    return group_add(s, &channel_kind, org, name, members, n, id_out);
}

static int sq_project_add(struct store *base_, const char *org,
                          const char *name, const char *const *members,
                          size_t n, char *id_out)
{
    struct sq *s = (struct sq *)base_;
    return group_add(s, &project_kind, org, name, members, n, id_out);
}

static int sq_channel_each(struct store *base_, const char *org,
                           store_group_cb *cb, void *ud)
{
    struct sq *s = (struct sq *)base_;
    return group_each(s, &channel_kind, org, cb, ud);
}

static int sq_project_each(struct store *base_, const char *org,
                           store_group_cb *cb, void *ud)
{
    struct sq *s = (struct sq *)base_;
    return group_each(s, &project_kind, org, cb, ud);
}

static int sq_channel_members(struct store *base_, const char *org,
                              const char *id, char *name_out,
                              store_member_cb *cb, void *ud)
{
    struct sq *s = (struct sq *)base_;
    return group_members(s, &channel_kind, org, id, name_out, cb, ud);
}

static int sq_project_members(struct store *base_, const char *org,
                              const char *id, char *name_out,
                              store_member_cb *cb, void *ud)
{
    struct sq *s = (struct sq *)base_;
    return group_members(s, &project_kind, org, id, name_out, cb, ud);
}

/* ------------------------------------------------------------------------
 * Server registration and checks
 * ------------------------------------------------------------------------ */

static int sq_server_set(struct store *base_, const struct store_server *srv)
{
    struct sq *s = (struct sq *)base_;
    /* The strings are fixed arrays; one without its NUL is a caller bug
     * that would otherwise read past the struct. */
    if (!srv ||
        strnlen(srv->listen, sizeof srv->listen) == sizeof srv->listen ||
        strnlen(srv->admin_key, sizeof srv->admin_key) == sizeof srv->admin_key)
        return STORE_EINVAL;
    return exec(s, ST_SERVER_SET, "register server", "IttI", srv->pid,
                srv->listen, srv->admin_key, srv->started_ms);
}

static int sq_server_get(struct store *base_, struct store_server *out)
{
    struct sq *s = (struct sq *)base_;
    sqlite3_stmt *st = s->st[ST_SERVER_GET];
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        out->pid = sqlite3_column_int64(st, 0);
        out->started_ms = sqlite3_column_int64(st, 3);
        rc = col_text(s, st, 1, out->listen, sizeof out->listen);
        if (rc == 0)
            rc = col_text(s, st, 2, out->admin_key, sizeof out->admin_key);
    } else {
        rc = rc == SQLITE_DONE ? STORE_ENOENT : fail(s, rc, "get server");
    }
    done(st);
    return rc;
}

/* Only the registering process clears the row: a server that starts while
 * an old one is shutting down must not lose its registration to the old
 * one's exit. STORE_ENOENT when nothing matched. */
static int sq_server_clear(struct store *base_, int64_t pid)
{
    struct sq *s = (struct sq *)base_;
    int rc = exec(s, ST_SERVER_CLEAR, "unregister server", "I", pid);
    if (rc == 0 && sqlite3_changes(s->db) == 0)
        rc = STORE_ENOENT;
    return rc;
}

static void sq_set_busy_timeout(struct store *base_, int ms)
{
    struct sq *s = (struct sq *)base_;
    sqlite3_busy_timeout(s->db, ms);
}

static int sq_check(struct store *base_, char *err)
{
    struct sq *s = (struct sq *)base_;
    sqlite3_stmt *st = s->st[ST_CHECK];
    int rc;

    if (err)
        err[0] = '\0';
    /* integrity_check answers one row "ok", or one row per problem. */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *line = sqlite3_column_text(st, 0);
        if (!line || strcmp((const char *)line, "ok") != 0) {
            store_set_err(err, "%s",
                          line ? (const char *)line : "out of memory");
            done(st);
            return STORE_EIO;
        }
    }
    if (rc != SQLITE_DONE) {
        /* A file too damaged to walk fails here rather than with rows. */
        store_set_err(err, "%s", sqlite3_errmsg(s->db));
        log_error("store: integrity check: %s (%d)", sqlite3_errmsg(s->db), rc);
        done(st);
        return STORE_EIO;
    }
    done(st);
    return 0;
}

/* ------------------------------------------------------------------------
 * One server per database
 * ------------------------------------------------------------------------ */

/* The lock lives in a file of its own rather than on the database: SQLite
 * keeps POSIX locks on the database file, and a process drops every such
 * lock on a file when it closes any descriptor of it, so a second
 * descriptor of ours on the database would undo SQLite's locking. */
static int lock_path(const char *path, char *out, size_t cap)
{
    if (!path || !path[0] || !strcmp(path, ":memory:"))
        return 0;
    int n = snprintf(out, cap, "%s.lock", path);
    return n > 0 && (size_t)n < cap ? 1 : -1;
}

int store_sqlite_lock(const char *path, int *fd_out, int64_t *holder, char *err)
{
    char lp[4096];
    *fd_out = -1;
    *holder = 0;
    if (err)
        err[0] = '\0';
    int has = lock_path(path, lp, sizeof lp);
    if (has == 0)
        return 0;
    if (has < 0) {
        store_set_err(err, "database path too long");
        return STORE_EIO;
    }
    int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        store_set_err(err, "cannot open %s: %s", lp, strerror(errno));
        return STORE_EIO;
    }
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &fl) == 0) {
        *fd_out = fd;
        return 0;
    }
    int e = errno;
    if (e == EACCES || e == EAGAIN) {
        struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
        if (fcntl(fd, F_GETLK, &q) == 0 && q.l_type != F_UNLCK)
            *holder = q.l_pid;
        close(fd);
        return STORE_EBUSY;
    }
    store_set_err(err, "cannot lock %s: %s", lp, strerror(e));
    close(fd);
    return STORE_EIO;
}

int store_sqlite_lock_holder(const char *path, int64_t *pid)
{
    char lp[4096];
    *pid = 0;
    if (lock_path(path, lp, sizeof lp) <= 0)
        return -1;
    int fd = open(lp, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -1;
    struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    int rc = fcntl(fd, F_GETLK, &q);
    close(fd);
    if (rc != 0)
        return -1;
    if (q.l_type == F_UNLCK)
        return 0;
    *pid = q.l_pid;
    return 1;
}

/* Writes rows in one transaction, all or nothing (a failed batch is
 * rolled back and may be run again). */
static int sq_presence_write(struct store *base_,
                             const struct store_presence *rows, size_t n)
{
    int rc = sq_begin(base_);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        rc = sq_user_set_presence(base_, rows[i].org, rows[i].user,
                                  rows[i].status, rows[i].manual,
                                  rows[i].last_seen_ms);
        if (rc == STORE_ENOENT || rc == STORE_EINVAL)
            rc = 0; /* the user row is gone: nothing to keep */
    }
    if (rc == 0)
        rc = sq_commit(base_);
    if (rc != 0)
        sq_rollback(base_);
    return rc;
}

static const struct store_ops sq_ops = {
    .name = "sqlite",
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .org_add = sq_org_add,
    .org_exists = sq_org_exists,
    .user_add = sq_user_add,
    .user_get = sq_user_get,
    .user_by_email = sq_user_by_email,
    .user_set_name = sq_user_set_name,
    .user_set_presence = sq_user_set_presence,
    .user_each = sq_user_each,
    .reset_stale = sq_reset_stale,
    .user_count = sq_user_count,
    .data_version = sq_data_version,
    .session_add = sq_session_add,
    .session_get = sq_session_get,
    .session_get_by_id = sq_session_get_by_id,
    .session_each = sq_session_each,
    .session_delete = sq_session_delete,
    .session_purge = sq_session_purge,
    .session_trim = sq_session_trim,
    .channel_add = sq_channel_add,
    .project_add = sq_project_add,
    .channel_each = sq_channel_each,
    .project_each = sq_project_each,
    .channel_members = sq_channel_members,
    .project_members = sq_project_members,
    .server_set = sq_server_set,
    .server_get = sq_server_get,
    .server_clear = sq_server_clear,
    .set_busy_timeout = sq_set_busy_timeout,
    .check = sq_check,
    .presence_write = sq_presence_write,
    .extra_set = sq_extra_set,
    .extra_each = sq_extra_each,
    .presets_get = sq_presets_get,
    .presets_set = sq_presets_set,
};
