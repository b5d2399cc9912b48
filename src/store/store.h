/* store.h - the database: organizations, users, login sessions, channels,
 * projects, users' extras, organizations' status-message presets, and the
 * running server's registration.
 *
 * Two backends behind one interface (store_int.h): a SQLite file (the
 * default) and PostgreSQL (a postgresql:// or postgres:// URI, through
 * libpq). The data model, limits and error codes are the same on both.
 *
 * One database connection per struct store (for SQLite opened without
 * SQLite's own mutex, SQLITE_OPEN_NOMUTEX): calls on one store must never
 * overlap. The CLI
 * uses its store from its one thread; the server uses one store from its
 * store thread only (store/queue.h), never from a loop thread or under the
 * hub's lock. Every statement is prepared once at open
 * and bound with parameters (never string-built SQL).
 * The schema is versioned (PRAGMA user_version) and migrated forward at
 * open; the journal is WAL with a busy timeout, so the CLI and a running
 * server can share the file. No status history is kept: a user row holds
 * only the current status and last_seen, and a user's extras (status
 * message, Do Not Disturb) only their current value.
 *
 * Errors: functions return 0 or a negative STORE_E* code; where a char *err
 * of STORE_ERRLEN bytes is taken, a human-readable reason is written there.
 * Strings in out-structs are copied into fixed arrays (limits below);
 * strings handed to callbacks are lent for the duration of the call. */
#ifndef STORE_H
#define STORE_H
#include <stddef.h>
#include <stdint.h>

#define STORE_ERRLEN 256
#define STORE_ID_MAX 128    /* org and user ids, bytes */
#define STORE_EMAIL_MAX 254
#define STORE_NAME_MAX 200  /* display names, channel and project names */
#define STORE_EXTRA_MAX 4096   /* bytes of one user's extras JSON */
#define STORE_PRESETS_MAX 8192 /* bytes of one organization's presets JSON */

enum {
    STORE_EIO = -1,       /* SQLite failed (busy, disk full, corrupt...) */
    STORE_ENOENT = -2,    /* no such row */
    STORE_EEXIST = -3,    /* unique constraint (id or email taken) */
    STORE_EINVAL = -4,    /* argument out of limits (length, empty id) */
    STORE_EBUSY = -5,     /* the database is held by another server */
    STORE_EDOWN = -6,     /* the database server is unreachable (PostgreSQL
                             down or restarting): try again later */
};

/* At most this many connections (store threads) per process: db_pool. */
#define STORE_POOL_MAX 64

/* store_kind(): which backend a database string selects. */
enum { STORE_KIND_SQLITE, STORE_KIND_PG, STORE_KIND_UNKNOWN };

struct store;

struct store_user {
    char org[STORE_ID_MAX + 1];
    char id[STORE_ID_MAX + 1];
    char email[STORE_EMAIL_MAX + 1];   /* "" if none (token-provisioned) */
    char name[STORE_NAME_MAX + 1];
    char pw_hash[128];                 /* argon2id string, "" if none */
    int status;                        /* enum presence_status, 0..3 */
    int manual;                        /* -1 none, else 0..3 */
    int64_t last_seen_ms;              /* 0 if never */
};

struct store_session {
    int64_t id;
    char org[STORE_ID_MAX + 1];
    char user[STORE_ID_MAX + 1];
    int64_t expires_ms;
};

struct store_server {
    int64_t pid;
    char listen[128];     /* "127.0.0.1:8080" */
    char admin_key[65];   /* hex, random per start */
    int64_t started_ms;
};

/* STORE_KIND_PG for a postgresql:// or postgres:// URI, STORE_KIND_UNKNOWN
 * for any other "scheme://", else STORE_KIND_SQLITE (a file path). */
int store_kind(const char *db);

/* SQLite: opens or creates the file, enables WAL, foreign keys and a 5 s
 * busy timeout, creates or migrates the schema. ":memory:" works for tests.
 * PostgreSQL: connects, creates or migrates the schema, prepares every
 * statement. Either refuses a schema newer than this binary knows.
 * err gets a one-line reason, never a password. STORE_EINVAL for an
 * unknown scheme; STORE_EDOWN if the server cannot be reached. */
int store_open(struct store **out, const char *db, char *err);
void store_close(struct store *s); /* NULL is a no-op */
const char *store_strerror(int rc);
const char *store_backend(const struct store *s); /* "sqlite", "postgresql" */
/* db as it may be logged: a URI's password (user:PASSWORD@, or a
 * password=... query parameter) becomes "***". Always NUL-terminated;
 * truncated to cap. Returns out. */
char *store_redact(const char *db, char *out, size_t cap);

/* Transactions, for batching (BEGIN IMMEDIATE / COMMIT / ROLLBACK). */
int store_begin(struct store *s);
int store_commit(struct store *s);
int store_rollback(struct store *s);

/* Organizations. name may be NULL (then the id). */
int store_org_add(struct store *s, const char *id, const char *name);
int store_org_exists(struct store *s, const char *id); /* 1, 0 or <0 */

/* Users. id NULL means generate one ("u_" + 12 random hex chars); the id
 * used is copied to id_out (STORE_ID_MAX + 1 bytes) when id_out is not
 * NULL. email and pw_hash may be NULL. The organization must exist
 * (STORE_ENOENT otherwise). Email is unique across all organizations, and
 * compared case-insensitively. New users start OFFLINE, no manual status. */
int store_user_add(struct store *s, const char *org, const char *id,
                   const char *email, const char *name, const char *pw_hash,
                   char *id_out);
int store_user_get(struct store *s, const char *org, const char *id,
                   struct store_user *out);
int store_user_by_email(struct store *s, const char *email,
                        struct store_user *out);
int store_user_set_name(struct store *s, const char *org, const char *id,
                        const char *name);
/* Writes the presence fields of one user; manual -1 clears it. */
int store_user_set_presence(struct store *s, const char *org, const char *id,
                            int status, int manual, int64_t last_seen_ms);
/* A batch of presence writes: one transaction, all or nothing (a failed
 * batch leaves nothing written and may be run again). PostgreSQL does it
 * as one multi-row statement. Rows name existing users; others are
 * skipped. At most one row per user. */
struct store_presence {
    const char *org, *user;
    int status, manual;
    int64_t last_seen_ms;
};
int store_presence_write(struct store *s, const struct store_presence *rows,
                         size_t n);
typedef void store_user_cb(void *ud, const struct store_user *u);
/* Every user of every organization (org NULL) or of one organization. */
int store_user_each(struct store *s, const char *org, store_user_cb *cb,
                    void *ud);
/* Users stored as not OFFLINE whose last_seen is before cutoff_ms go
 * OFFLINE; returns how many (>= 0) or a STORE_E* code. */
int store_reset_stale(struct store *s, int64_t cutoff_ms);
int store_user_count(struct store *s, const char *org); /* >= 0 or error */
/* A number that changes when another connection (a CLI command) commits
 * to the file, and only then (PRAGMA data_version); < 0 on error. */
int64_t store_data_version(struct store *s);

/* A user's extras (status message, DND, time zone, privacy; the settings
 * form of presence/extra.h), as JSON text the store neither parses nor
 * checks: the caller makes and reads it. Upsert: the row holds the whole
 * current value, nothing of the past. json NULL or "" deletes the row
 * (no row: nothing set). STORE_EINVAL for a bad id or json longer than
 * STORE_EXTRA_MAX bytes; STORE_ENOENT if the user does not exist (for a
 * delete too). The row goes with its user (ON DELETE CASCADE). */
int store_extra_set(struct store *s, const char *org, const char *user,
                    const char *json);
/* Every row (org NULL) or one organization's, ordered by org, user. The
 * strings are lent for the call; cb may call other store functions but
 * not store_extra_each. */
typedef void store_extra_cb(void *ud, const char *org, const char *user,
                            const char *json);
int store_extra_each(struct store *s, const char *org, store_extra_cb *cb,
                     void *ud);

/* An organization's status-message presets, as opaque JSON text (api/
 * presets.h makes and checks it). Returns 0 with the JSON in out (cap
 * bytes, NUL-terminated; STORE_EINVAL if it does not fit), STORE_ENOENT
 * if none are set (the caller then uses the defaults; an unknown
 * organization has none either). */
int store_presets_get(struct store *s, const char *org, char *out,
                      size_t cap);
/* Upsert. json NULL (or ""): back to the defaults (the row is deleted).
 * STORE_ENOENT for an unknown organization, STORE_EINVAL over
 * STORE_PRESETS_MAX bytes. The row goes with its organization. */
int store_presets_set(struct store *s, const char *org, const char *json);

/* Login sessions: only a SHA-256 hash of the token is stored. */
int store_session_add(struct store *s, const unsigned char hash[32],
                      const char *org, const char *user, int64_t expires_ms,
                      int64_t *id_out);
/* STORE_ENOENT if absent or expired at now_ms. */
int store_session_get(struct store *s, const unsigned char hash[32],
                      int64_t now_ms, struct store_session *out);
/* The same by session id (a login JWT's sid claim). */
int store_session_get_by_id(struct store *s, int64_t id, int64_t now_ms,
                            struct store_session *out);
/* Every session live at now_ms (expires_ms > now_ms), in id order, with
 * its token hash: for loading the in-memory table (auth/sessions.h) at
 * start. The session and the hash are lent for the call; cb may call other
 * store functions but not store_session_each. */
typedef void store_session_row_cb(void *ud, const struct store_session *s,
                                  const unsigned char hash[32]);
int store_session_each(struct store *s, int64_t now_ms,
                       store_session_row_cb *cb, void *ud);
int store_session_delete(struct store *s, int64_t id);
int store_session_purge(struct store *s, int64_t now_ms); /* expired ones */
/* Deletes a user's live sessions but the newest 'keep', calling cb with
 * each id deleted. Returns how many, or a negative STORE_E* code. */
typedef void store_session_cb(void *ud, int64_t id);
int store_session_trim(struct store *s, const char *org, const char *user,
                       int keep, int64_t now_ms, store_session_cb *cb,
                       void *ud);

/* Channels and projects: a name and a set of member user ids of the same
 * organization. Returns STORE_ENOENT if a member is not in that
 * organization (and adds nothing). The new id ("c_..." / "p_...") goes to
 * id_out (STORE_ID_MAX + 1 bytes). */
int store_channel_add(struct store *s, const char *org, const char *name,
                      const char *const *members, size_t n, char *id_out);
int store_project_add(struct store *s, const char *org, const char *name,
                      const char *const *members, size_t n, char *id_out);
/* Lists: cb(ud, id, name, member_count) for each channel/project of org. */
typedef void store_group_cb(void *ud, const char *id, const char *name,
                            int nmembers);
int store_channel_each(struct store *s, const char *org, store_group_cb *cb,
                       void *ud);
int store_project_each(struct store *s, const char *org, store_group_cb *cb,
                       void *ud);
/* Members of one channel/project of org: cb(ud, user_id) each.
 * STORE_ENOENT if no such channel/project in that organization. Writes
 * the name to name_out (STORE_NAME_MAX + 1 bytes) if not NULL. */
typedef void store_member_cb(void *ud, const char *user);
int store_channel_members(struct store *s, const char *org, const char *id,
                          char *name_out, store_member_cb *cb, void *ud);
int store_project_members(struct store *s, const char *org, const char *id,
                          char *name_out, store_member_cb *cb, void *ud);

/* The running server registers itself so that CLI commands (cleanup-stale)
 * can hand their work to it rather than race it. */
int store_server_set(struct store *s, const struct store_server *srv);
int store_server_get(struct store *s, struct store_server *out);
int store_server_clear(struct store *s, int64_t pid);

/* One server per database file. store_lock() takes an exclusive lock on
 * PATH.lock (created beside the file, mode 0600) and stores in *fd_out the
 * descriptor that holds it: the lock lasts until that descriptor is closed
 * or the process ends, however it ends (kill -9 included). The file itself
 * is left in place. Returns 0; STORE_EBUSY if another process holds the
 * lock (*holder gets its pid, 0 if it cannot be told); STORE_EIO with a
 * reason in err if the lock file cannot be opened. A database without a
 * file (":memory:", "") needs no lock: 0 and *fd_out = -1.
 *
 * The lock is a POSIX record lock, so that store_lock_holder() can ask
 * who holds it without taking it. A process loses such a lock when it
 * closes any descriptor of the file: open PATH.lock nowhere else in the
 * process that holds it. */
int store_lock(const char *path, int *fd_out, int64_t *holder, char *err);
/* 1 if a process holds PATH.lock (*pid gets its pid, 0 if it cannot be
 * told), 0 if none does, -1 if it cannot be told (no lock file: no server
 * of this version has run on the database). Takes no lock. */
int store_lock_holder(const char *path, int64_t *pid);

/* How long a call waits for another process's lock before STORE_EIO
 * (default 5000 ms; the server's store thread uses 1000 ms per try, and
 * retries the writes that must not be lost). */
void store_set_busy_timeout(struct store *s, int ms);

/* PRAGMA integrity_check == "ok": 0, else STORE_EIO. */
int store_check(struct store *s, char *err);
#endif
