/* store.c - see store.h: picks the backend from the database string and
 * dispatches every call to it (store_int.h). */
#include "store/store.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "store/store_int.h"

#define ID_RANDOM_BYTES 6

void store_set_err(char *err, const char *fmt, ...)
{
    va_list ap;
    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(err, STORE_ERRLEN, fmt, ap);
    va_end(ap);
}

int64_t store_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int store_id_ok(const char *id)
{
    return id && id[0] && strnlen(id, STORE_ID_MAX + 1) <= STORE_ID_MAX;
}

int store_len_ok(const char *s, size_t max)
{
    return s && strnlen(s, max + 1) <= max;
}

void store_gen_id(char *out, const char *prefix)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[ID_RANDOM_BYTES];
    size_t n = strlen(prefix);
    randombytes_buf(r, sizeof r);
    memcpy(out, prefix, n);
    for (size_t i = 0; i < sizeof r; i++) {
        out[n++] = hex[r[i] >> 4];
        out[n++] = hex[r[i] & 15];
    }
    out[n] = '\0';
}

int store_open(struct store **out, const char *db, char *err)
{
    switch (store_kind(db)) {
    case STORE_KIND_PG:
        return store_pg_open(out, db, err);
    case STORE_KIND_UNKNOWN:
        *out = NULL;
        if (err)
            strcpy(err, "unknown database scheme (use a file path or "
                        "postgresql://)");
        return STORE_EINVAL;
    default:
        return store_sqlite_open(out, db, err);
    }
}

void store_close(struct store *s)
{
    if (s)
        s->ops->close(s);
}

const char *store_backend(const struct store *s)
{
    return s->ops->name;
}

char *store_redact(const char *db, char *out, size_t cap)
{
    size_t o = 0;
    const char *p = db ? db : "";
    const char *auth = strstr(p, "://");
    const char *at = NULL, *colon = NULL;

    if (cap == 0)
        return out;
#define PUT(ch)                                                                \
    do {                                                                       \
        if (o + 1 < cap)                                                       \
            out[o++] = (ch);                                                   \
    } while (0)
    if (auth) {
        auth += 3;
        /* The userinfo ends at the last '@' before the host part. */
        for (const char *q = auth; *q && *q != '/' && *q != '?'; q++)
            if (*q == '@')
                at = q;
        if (at)
            colon = memchr(auth, ':', (size_t)(at - auth));
    }
    while (*p) {
        if (colon && p == colon + 1) {
            for (const char *r = "***"; *r; r++)
                PUT(*r);
            p = at;
            continue;
        }
        /* password=... in the query string, up to the next '&'. */
        if ((p == db || p[-1] == '?' || p[-1] == '&' || p[-1] == ' ') &&
            strncasecmp(p, "password=", 9) == 0) {
            for (const char *r = "password=***"; *r; r++)
                PUT(*r);
            p += 9;
            while (*p && *p != '&' && *p != ' ')
                p++;
            continue;
        }
        PUT(*p);
        p++;
    }
#undef PUT
    out[o] = '\0';
    return out;
}

const char *store_strerror(int rc)
{
    switch (rc) {
    case 0:
        return "ok";
    case STORE_EIO:
        return "database error";
    case STORE_ENOENT:
        return "not found";
    case STORE_EEXIST:
        return "already exists";
    case STORE_EINVAL:
        return "invalid argument";
    case STORE_EBUSY:
        return "in use by another server";
    case STORE_EDOWN:
        return "database unavailable";
    default:
        return "unknown store error";
    }
}

/* Only a SQLite file is locked: a PostgreSQL database is shared by design
 * (several nodes, next to the CLI). */
int store_lock(const char *db, int *fd_out, int64_t *holder, char *err)
{
    if (store_kind(db) != STORE_KIND_SQLITE) {
        *fd_out = -1;
        return 0;
    }
    return store_sqlite_lock(db, fd_out, holder, err);
}

int store_lock_holder(const char *db, int64_t *pid)
{
    if (store_kind(db) != STORE_KIND_SQLITE)
        return -1;
    return store_sqlite_lock_holder(db, pid);
}

int store_presence_write(struct store *s, const struct store_presence *rows,
                         size_t n)
{
    if (n == 0)
        return 0;
    return s->ops->presence_write(s, rows, n);
}

int store_begin(struct store *s)
{
    return s->ops->begin(s);
}

int store_commit(struct store *s)
{
    return s->ops->commit(s);
}

int store_rollback(struct store *s)
{
    return s->ops->rollback(s);
}

int store_org_add(struct store *s, const char *id, const char *name)
{
    return s->ops->org_add(s, id, name);
}

int store_org_exists(struct store *s, const char *id)
{
    return s->ops->org_exists(s, id);
}

int store_user_add(struct store *s, const char *org, const char *id,
                   const char *email, const char *name, const char *pw_hash,
                   char *id_out)
{
    return s->ops->user_add(s, org, id, email, name, pw_hash, id_out);
}

int store_user_get(struct store *s, const char *org, const char *id,
                   struct store_user *out)
{
    return s->ops->user_get(s, org, id, out);
}

int store_user_by_email(struct store *s, const char *email,
                        struct store_user *out)
{
    return s->ops->user_by_email(s, email, out);
}

int store_user_set_name(struct store *s, const char *org, const char *id,
                        const char *name)
{
    return s->ops->user_set_name(s, org, id, name);
}

int store_user_set_presence(struct store *s, const char *org, const char *id,
                            int status, int manual, int64_t last_seen_ms)
{
    return s->ops->user_set_presence(s, org, id, status, manual, last_seen_ms);
}

int store_user_each(struct store *s, const char *org, store_user_cb *cb,
                    void *ud)
{
    return s->ops->user_each(s, org, cb, ud);
}

int store_reset_stale(struct store *s, int64_t cutoff_ms)
{
    return s->ops->reset_stale(s, cutoff_ms);
}

int store_user_count(struct store *s, const char *org)
{
    return s->ops->user_count(s, org);
}

int64_t store_data_version(struct store *s)
{
    return s->ops->data_version(s);
}

int store_extra_set(struct store *s, const char *org, const char *user,
                    const char *json)
{
    return s->ops->extra_set(s, org, user, json);
}

int store_extra_each(struct store *s, const char *org, store_extra_cb *cb,
                     void *ud)
{
    return s->ops->extra_each(s, org, cb, ud);
}

int store_presets_get(struct store *s, const char *org, char *out, size_t cap)
{
    return s->ops->presets_get(s, org, out, cap);
}

int store_presets_set(struct store *s, const char *org, const char *json)
{
    return s->ops->presets_set(s, org, json);
}

int store_session_add(struct store *s, const unsigned char hash[32],
                      const char *org, const char *user, int64_t expires_ms,
                      int64_t *id_out)
{
    return s->ops->session_add(s, hash, org, user, expires_ms, id_out);
}

int store_session_get(struct store *s, const unsigned char hash[32],
                      int64_t now_ms, struct store_session *out)
{
    return s->ops->session_get(s, hash, now_ms, out);
}

int store_session_get_by_id(struct store *s, int64_t id, int64_t now_ms,
                            struct store_session *out)
{
    return s->ops->session_get_by_id(s, id, now_ms, out);
}

int store_session_each(struct store *s, int64_t now_ms,
                       store_session_row_cb *cb, void *ud)
{
    return s->ops->session_each(s, now_ms, cb, ud);
}

int store_session_delete(struct store *s, int64_t id)
{
    return s->ops->session_delete(s, id);
}

int store_session_purge(struct store *s, int64_t now_ms)
{
    return s->ops->session_purge(s, now_ms);
}

int store_session_trim(struct store *s, const char *org, const char *user,
                       int keep, int64_t now_ms, store_session_cb *cb, void *ud)
{
    return s->ops->session_trim(s, org, user, keep, now_ms, cb, ud);
}

int store_channel_add(struct store *s, const char *org, const char *name,
                      const char *const *members, size_t n, char *id_out)
{
    return s->ops->channel_add(s, org, name, members, n, id_out);
}

int store_project_add(struct store *s, const char *org, const char *name,
                      const char *const *members, size_t n, char *id_out)
{
    return s->ops->project_add(s, org, name, members, n, id_out);
}

int store_channel_each(struct store *s, const char *org, store_group_cb *cb,
                       void *ud)
{
    return s->ops->channel_each(s, org, cb, ud);
}

int store_project_each(struct store *s, const char *org, store_group_cb *cb,
                       void *ud)
{
    return s->ops->project_each(s, org, cb, ud);
}

int store_channel_members(struct store *s, const char *org, const char *id,
                          char *name_out, store_member_cb *cb, void *ud)
{
    return s->ops->channel_members(s, org, id, name_out, cb, ud);
}

int store_project_members(struct store *s, const char *org, const char *id,
                          char *name_out, store_member_cb *cb, void *ud)
{
    return s->ops->project_members(s, org, id, name_out, cb, ud);
}

int store_server_set(struct store *s, const struct store_server *srv)
{
    return s->ops->server_set(s, srv);
}

int store_server_get(struct store *s, struct store_server *out)
{
    return s->ops->server_get(s, out);
}

int store_server_clear(struct store *s, int64_t pid)
{
    return s->ops->server_clear(s, pid);
}

void store_set_busy_timeout(struct store *s, int ms)
{
    s->ops->set_busy_timeout(s, ms);
}

int store_check(struct store *s, char *err)
{
    return s->ops->check(s, err);
}
