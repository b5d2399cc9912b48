/* store_int.h - what a store backend provides (store.h is what callers see).
 *
 * A backend defines its own struct whose first member is a struct store,
 * fills a const struct store_ops with every entry (none may be NULL), and
 * is chosen by store_open() from the database string: a postgresql:// or
 * postgres:// URI is PostgreSQL (store_pg.c), anything else a SQLite file
 * (store_sqlite.c). The entries have the contracts of the store.h
 * functions of the same names; store.c only dispatches. */
#ifndef STORE_INT_H
#define STORE_INT_H
#include "store/store.h"

struct store_ops {
    const char *name; /* "sqlite", "postgresql" */
    void (*close)(struct store *s);
    int (*begin)(struct store *s);
    int (*commit)(struct store *s);
    int (*rollback)(struct store *s);
    int (*org_add)(struct store *s, const char *id, const char *name);
    int (*org_exists)(struct store *s, const char *id);
    int (*user_add)(struct store *s, const char *org, const char *id,
                    const char *email, const char *name, const char *pw_hash,
                    char *id_out);
    int (*user_get)(struct store *s, const char *org, const char *id,
                    struct store_user *out);
    int (*user_by_email)(struct store *s, const char *email,
                         struct store_user *out);
    int (*user_set_name)(struct store *s, const char *org, const char *id,
                         const char *name);
    int (*user_set_presence)(struct store *s, const char *org, const char *id,
                             int status, int manual, int64_t last_seen_ms);
    int (*user_each)(struct store *s, const char *org, store_user_cb *cb,
                     void *ud);
    int (*reset_stale)(struct store *s, int64_t cutoff_ms);
    int (*user_count)(struct store *s, const char *org);
    int64_t (*data_version)(struct store *s);
    int (*session_add)(struct store *s, const unsigned char hash[32],
                       const char *org, const char *user, int64_t expires_ms,
                       int64_t *id_out);
    int (*session_get)(struct store *s, const unsigned char hash[32],
                       int64_t now_ms, struct store_session *out);
    int (*session_get_by_id)(struct store *s, int64_t id, int64_t now_ms,
                             struct store_session *out);
    int (*session_each)(struct store *s, int64_t now_ms,
                        store_session_row_cb *cb, void *ud);
    int (*session_delete)(struct store *s, int64_t id);
    int (*session_purge)(struct store *s, int64_t now_ms);
    int (*session_trim)(struct store *s, const char *org, const char *user,
                        int keep, int64_t now_ms, store_session_cb *cb,
                        void *ud);
    int (*channel_add)(struct store *s, const char *org, const char *name,
                       const char *const *members, size_t n, char *id_out);
    int (*project_add)(struct store *s, const char *org, const char *name,
                       const char *const *members, size_t n, char *id_out);
    int (*channel_each)(struct store *s, const char *org, store_group_cb *cb,
                        void *ud);
    int (*project_each)(struct store *s, const char *org, store_group_cb *cb,
                        void *ud);
    int (*channel_members)(struct store *s, const char *org, const char *id,
                           char *name_out, store_member_cb *cb, void *ud);
    int (*project_members)(struct store *s, const char *org, const char *id,
                           char *name_out, store_member_cb *cb, void *ud);
    int (*server_set)(struct store *s, const struct store_server *srv);
    int (*server_get)(struct store *s, struct store_server *out);
    int (*server_clear)(struct store *s, int64_t pid);
    void (*set_busy_timeout)(struct store *s, int ms);
    int (*check)(struct store *s, char *err);
    int (*presence_write)(struct store *s, const struct store_presence *rows,
                          size_t n);
    int (*extra_set)(struct store *s, const char *org, const char *user,
                     const char *json);
    int (*extra_each)(struct store *s, const char *org, store_extra_cb *cb,
                      void *ud);
    int (*presets_get)(struct store *s, const char *org, char *out, size_t cap);
    int (*presets_set)(struct store *s, const char *org, const char *json);
};

struct store {
    const struct store_ops *ops;
};

/* ------------------------------------------------------------------------
 * Helpers shared by the backends (store.c)
 * ------------------------------------------------------------------------ */

/* How often a generated id is retried when it collides with an existing
 * one. 48 random bits make even one collision unlikely; eight in a row
 * means the random source is broken, and we say so rather than spin. */
#define STORE_ID_TRIES 8
#define STORE_PW_HASH_MAX (sizeof(((struct store_user *)0)->pw_hash) - 1)

/* printf into err (STORE_ERRLEN bytes); err NULL is a no-op. */
void store_set_err(char *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int64_t store_now_ms(void); /* wall clock, for created_ms */
/* store.h limits: ids are non-empty and at most STORE_ID_MAX bytes; the
 * other strings are bounded so that they fit the out-structs unchanged. */
int store_id_ok(const char *id);
int store_len_ok(const char *s, size_t max);
/* Writes prefix + 12 lowercase hex digits from libsodium's CSPRNG (out
 * holds STORE_ID_MAX + 1 bytes; sodium_init() must have run). */
void store_gen_id(char *out, const char *prefix);

/* Backends: open the database at path/uri (store.h store_open contract). */
int store_sqlite_open(struct store **out, const char *path, char *err);
int store_pg_open(struct store **out, const char *uri, char *err);
int store_sqlite_lock(const char *path, int *fd_out, int64_t *holder,
                      char *err);
int store_sqlite_lock_holder(const char *path, int64_t *pid);
#endif
