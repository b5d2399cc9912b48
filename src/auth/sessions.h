/* sessions.h - the live login sessions, in memory.
 *
 * A cookie connect (or a login JWT's sid check) looks its session up here
 * instead of reading the database, so that the hot path never waits on
 * SQLite (issue 10). The table mirrors the sessions table: it is loaded at
 * start (store_session_each) and every login, logout, trim and purge is
 * applied to both, here at once and in the store through the store queue
 * (store/queue.h).
 *
 * Entries are found by the SHA-256 hash of the token (32 bytes, as stored;
 * the token itself is never kept) and by session id; a user's entries are
 * also listed, newest (highest id) first, as store_session_trim orders
 * them. An entry is live while now_ms < expires_ms: an expired entry reads
 * as absent before sessions_purge() removes it.
 *
 * Pure data: no I/O, no clock, no locking. The owner serializes every call
 * (the server, under its lock). Strings are copied in; results are copied
 * out, so nothing handed back points into the table. */
#ifndef SESSIONS_H
#define SESSIONS_H
#include <stddef.h>
#include <stdint.h>

#define SESSIONS_ID_MAX 128 /* org and user ids, bytes (= STORE_ID_MAX) */

enum {
    SESSIONS_ENOENT = -1, /* no live entry */
    SESSIONS_EEXIST = -2, /* that id or that hash is already in the table */
    SESSIONS_EINVAL = -3, /* empty or too long org/user, id <= 0 */
};

struct sessions;        /* opaque */

struct sessions_entry {
    int64_t id;
    unsigned char hash[32];
    char org[SESSIONS_ID_MAX + 1];
    char user[SESSIONS_ID_MAX + 1];
    int64_t expires_ms;
};

struct sessions *sessions_new(void);
void sessions_free(struct sessions *t); /* NULL is a no-op */

/* Adds a session. Returns 0 or SESSIONS_EEXIST / SESSIONS_EINVAL (and
 * adds nothing). An already expired entry may be added; it reads as
 * absent. */
int sessions_add(struct sessions *t, int64_t id, const unsigned char hash[32],
                 const char *org, const char *user, int64_t expires_ms);

/* Copies the entry live at now_ms into *out. Returns 0 or
 * SESSIONS_ENOENT (absent or expired; *out untouched). */
int sessions_get_by_hash(const struct sessions *t,
                         const unsigned char hash[32], int64_t now_ms,
                         struct sessions_entry *out);
int sessions_get_by_id(const struct sessions *t, int64_t id, int64_t now_ms,
                       struct sessions_entry *out);

/* Removes the entry, live or expired. Returns 0 or SESSIONS_ENOENT. */
int sessions_delete(struct sessions *t, int64_t id);

/* Removes every entry expired at now_ms; returns how many. */
int sessions_purge(struct sessions *t, int64_t now_ms);

/* The ids of org/user's sessions live at now_ms, newest (highest id)
 * first: the first min(count, cap) go to ids. Returns the count, which may
 * exceed cap (as snprintf does), so that a caller trimming to max_sessions
 * passes cap = max_sessions + 1 and revokes from index max_sessions on. */
size_t sessions_user_ids(const struct sessions *t, const char *org,
                         const char *user, int64_t now_ms, int64_t *ids,
                         size_t cap);

/* Entries in the table, expired ones included until purged. */
size_t sessions_count(const struct sessions *t);

const char *sessions_strerror(int rc);
#endif
