/* rate.c - see rate.h. */
#include "util/rate.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "util/xalloc.h"

struct entry {
    char *key;
    int64_t start, window_ms, count;
    UT_hash_handle hh;
};

struct rate_table {
    struct entry *map;
};

struct rate_table *rate_new(void) { return xcalloc(1, sizeof(struct rate_table)); }

static void drop(struct rate_table *t, struct entry *e)
{
    HASH_DEL(t->map, e);
    free(e->key);
    free(e);
}

void rate_free(struct rate_table *t)
{
    if (!t)
        return;
    struct entry *e, *tmp;
    HASH_ITER(hh, t->map, e, tmp) {
        drop(t, e);
    }
    free(t);
}

static struct entry *live(struct rate_table *t, const char *key, int64_t now)
{
    struct entry *e;
    HASH_FIND_STR(t->map, key, e);
    if (e && e->start + e->window_ms <= now) {
        drop(t, e);
        e = NULL;
    }
    return e;
}

int64_t rate_count(struct rate_table *t, const char *key, int64_t window_ms,
                   int64_t now)
{
    struct entry *e = live(t, key, now);
    return e ? e->count : 0;
}

int64_t rate_add(struct rate_table *t, const char *key, int64_t window_ms,
                 int64_t now)
{
    struct entry *e = live(t, key, now);
    if (!e) {
        e = xcalloc(1, sizeof *e);
        e->key = xstrdup(key);
        e->start = now;
        e->window_ms = window_ms;
        HASH_ADD_KEYPTR(hh, t->map, e->key, strlen(e->key), e);
    }
    return ++e->count;
}

int64_t rate_wait(struct rate_table *t, const char *key, int64_t now)
{
    struct entry *e = live(t, key, now);
    return e ? e->start + e->window_ms - now : 0;
}

void rate_sub(struct rate_table *t, const char *key, int64_t added_at,
              int64_t now)
{
    struct entry *e = live(t, key, now);
    if (e && e->start <= added_at && e->count > 0)
        e->count--;
}

void rate_forget(struct rate_table *t, const char *key)
{
    struct entry *e;
    HASH_FIND_STR(t->map, key, e);
    if (e)
        drop(t, e);
}

unsigned rate_prune(struct rate_table *t, int64_t now)
{
    struct entry *e, *tmp;
    HASH_ITER(hh, t->map, e, tmp) {
        if (e->start + e->window_ms <= now)
            drop(t, e);
    }
    return HASH_COUNT(t->map);
}
