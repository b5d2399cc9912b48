/* sessions.c - see sessions.h.
 *
 * Layout. Each entry sits in two uthash tables at once (by id, by token
 * hash) and in its user's list, which is kept sorted by id, highest first,
 * so that sessions_user_ids() reads it in order. Users are found in a third
 * table keyed by "org\0user". A user's record goes away with its last
 * entry, so memory follows the number of sessions. */
#include "auth/sessions.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <utlist.h>

#include "util/xalloc.h"

struct user;

struct entry {
    struct sessions_entry e;
    struct user *u;
    struct entry *prev, *next; /* in u->list */
    UT_hash_handle hh_id, hh_hash;
};

struct user {
    char *key; /* org, NUL, user, NUL */
    size_t keylen;
    struct entry *list; /* highest id first */
    UT_hash_handle hh;
};

struct sessions {
    struct entry *by_id, *by_hash;
    struct user *users;
};

struct sessions *sessions_new(void)
{
    return xcalloc(1, sizeof(struct sessions));
}

static int id_ok(const char *s)
{
    return s && s[0] && strnlen(s, SESSIONS_ID_MAX + 1) <= SESSIONS_ID_MAX;
}

/* Builds the user key into buf (2 * (SESSIONS_ID_MAX + 1) bytes); returns
 * its length, both NULs included. */
static size_t user_key(char *buf, const char *org, const char *user)
{
    size_t no = strlen(org) + 1, nu = strlen(user) + 1;
    memcpy(buf, org, no);
    memcpy(buf + no, user, nu);
    return no + nu;
}

static struct user *find_user(const struct sessions *t, const char *org,
                              const char *user)
{
    char key[2 * (SESSIONS_ID_MAX + 1)];
    size_t n = user_key(key, org, user);
    struct user *u;
    HASH_FIND(hh, t->users, key, n, u);
    return u;
}

static void drop(struct sessions *t, struct entry *x)
{
    struct user *u = x->u;
    HASH_DELETE(hh_id, t->by_id, x);
    HASH_DELETE(hh_hash, t->by_hash, x);
    DL_DELETE(u->list, x);
    if (!u->list) {
        HASH_DEL(t->users, u);
        free(u->key);
        free(u);
    }
    free(x);
}

void sessions_free(struct sessions *t)
{
    struct entry *x, *tmp;
    if (!t)
        return;
    HASH_ITER(hh_id, t->by_id, x, tmp) {
        drop(t, x);
    }
    free(t);
}

int sessions_add(struct sessions *t, int64_t id, const unsigned char hash[32],
                 const char *org, const char *user, int64_t expires_ms)
{
    struct entry *x, *at;
    struct user *u;

    if (id <= 0 || !hash || !id_ok(org) || !id_ok(user))
        return SESSIONS_EINVAL;
    HASH_FIND(hh_id, t->by_id, &id, sizeof id, x);
    if (!x)
        HASH_FIND(hh_hash, t->by_hash, hash, 32, x);
    if (x)
        return SESSIONS_EEXIST;

    u = find_user(t, org, user);
    if (!u) {
        char key[2 * (SESSIONS_ID_MAX + 1)];
        u = xcalloc(1, sizeof *u);
        u->keylen = user_key(key, org, user);
        u->key = xmalloc(u->keylen);
        memcpy(u->key, key, u->keylen);
        HASH_ADD_KEYPTR(hh, t->users, u->key, u->keylen, u);
    }
    x = xcalloc(1, sizeof *x);
    x->e.id = id;
    memcpy(x->e.hash, hash, 32);
    strcpy(x->e.org, org);
    strcpy(x->e.user, user);
    x->e.expires_ms = expires_ms;
    x->u = u;
    HASH_ADD(hh_id, t->by_id, e.id, sizeof x->e.id, x);
    HASH_ADD(hh_hash, t->by_hash, e.hash, 32, x);
    /* Logins get growing ids, so the new entry nearly always goes first:
     * the walk stops at once. */
    DL_FOREACH(u->list, at) {
        if (at->e.id < id)
            break;
    }
    if (at)
        DL_PREPEND_ELEM(u->list, at, x);
    else
        DL_APPEND(u->list, x);
    return 0;
}

static int copy_live(const struct entry *x, int64_t now_ms,
                     struct sessions_entry *out)
{
    if (!x || x->e.expires_ms <= now_ms)
        return SESSIONS_ENOENT;
    *out = x->e;
    return 0;
}

int sessions_get_by_hash(const struct sessions *t,
                         const unsigned char hash[32], int64_t now_ms,
                         struct sessions_entry *out)
{
    struct entry *x = NULL;
    if (hash)
        HASH_FIND(hh_hash, t->by_hash, hash, 32, x);
    return copy_live(x, now_ms, out);
}

int sessions_get_by_id(const struct sessions *t, int64_t id, int64_t now_ms,
                       struct sessions_entry *out)
{
    struct entry *x;
    HASH_FIND(hh_id, t->by_id, &id, sizeof id, x);
    return copy_live(x, now_ms, out);
}

int sessions_delete(struct sessions *t, int64_t id)
{
    struct entry *x;
    HASH_FIND(hh_id, t->by_id, &id, sizeof id, x);
    if (!x)
        return SESSIONS_ENOENT;
    drop(t, x);
    return 0;
}

int sessions_purge(struct sessions *t, int64_t now_ms)
{
    struct entry *x, *tmp;
    int n = 0;
    HASH_ITER(hh_id, t->by_id, x, tmp) {
        if (x->e.expires_ms <= now_ms) {
            drop(t, x);
            n++;
        }
    }
    return n;
}

size_t sessions_user_ids(const struct sessions *t, const char *org,
                         const char *user, int64_t now_ms, int64_t *ids,
                         size_t cap)
{
    struct entry *x;
    struct user *u;
    size_t n = 0;
    if (!id_ok(org) || !id_ok(user))
        return 0;
    u = find_user(t, org, user);
    if (!u)
        return 0;
    DL_FOREACH(u->list, x) {
        if (x->e.expires_ms <= now_ms)
            continue;
        if (n < cap)
            ids[n] = x->e.id;
        n++;
    }
    return n;
}

size_t sessions_count(const struct sessions *t)
{
    return HASH_CNT(hh_id, t->by_id);
}

const char *sessions_strerror(int rc)
{
    switch (rc) {
    case 0:
        return "ok";
    case SESSIONS_ENOENT:
        return "no such session";
    case SESSIONS_EEXIST:
        return "session already exists";
    case SESSIONS_EINVAL:
        return "invalid argument";
    default:
        return "unknown sessions error";
    }
}
