/* presence.c - the pure presence core: see presence.h for the model.
 *
 * Layout. Organizations live in one uthash table keyed by id; each holds a
 * uthash table of its users keyed by user id. A user keeps the list of its
 * open connections and, so that the effective status is O(1) to recompute,
 * counts of those connections by auto status. A user is on at most one of
 * three window lists (grace, login, restore) and possibly on the dirty list.
 *
 * Windows. Every window of one kind has the same length, so while time does
 * not go backwards a window list stays sorted by deadline when users are
 * appended at its tail. presence_tick() therefore only looks at list heads,
 * and never scans the users. Insertion still walks back from the tail past
 * later deadlines, which keeps the lists sorted (at a cost) if the caller's
 * clock ever steps back.
 *
 * Invariant: a user is inside a window only while it has no connection, and
 * a user with no connection and no window is OFFLINE. So the users that
 * presence_sweep_stale() may affect are all on the window lists.
 *
 * Callbacks. Every entry point brings the core to a consistent state before
 * it announces, so the announce callback may make read-only calls
 * (presence_get, presence_each, presence_each_all, the connection
 * accessors). It must not mutate the core; debug builds assert that. */
#include "presence/presence.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/list.h"
#include "util/xalloc.h"

/* uthash allocates its bucket arrays; route that through xalloc so an OOM
 * aborts like everywhere else instead of calling exit(-1). */
#define uthash_malloc(sz) xmalloc(sz)
#define uthash_free(ptr, sz) free(ptr)
#include <uthash.h>

enum window { W_NONE, W_GRACE, W_LOGIN, W_RESTORE, W_COUNT };

static const struct presence_opts default_opts = {
    .grace_ms = 5000,
    .login_grace_ms = 60000,
    .restart_grace_ms = 30000,
};

struct org {
    UT_hash_handle hh;
    struct user *users; /* uthash, keyed by user id */
    uint64_t seq;       /* last seq announced; 0 before the first */
    unsigned nusers;
    unsigned nonline;   /* members whose effective status is not OFFLINE */
    char id[];
};

struct user {
    UT_hash_handle hh;
    struct org *org;
    char *name;              /* == id when no distinct name was given */
    struct list conns;       /* struct presence_conn.link */
    struct list window_link; /* on p->windows[window] while window set */
    struct list dirty_link;  /* on p->dirty while dirty */
    int64_t last_seen;
    int64_t deadline;        /* of the current window */
    unsigned n_auto[3];      /* connections by auto status (OFFLINE..ONLINE) */
    signed char status;      /* effective */
    signed char manual;      /* PRESENCE_UNSET if none */
    signed char c_auto;      /* the contribution last handed out, with
                                c_present and c_nconns */
    /* Bits, so that the extras pointer costs no more per user than it
     * must (one user per idle connection: per-user bytes count). */
    unsigned char base : 2;     /* status a window keeps without connection
                                   (OFFLINE..BUSY) */
    unsigned char window : 2;   /* enum window */
    unsigned char c_present : 1;
    unsigned char x_dirty : 1;  /* extras changed since the last drain */
    unsigned c_nconns;
    unsigned mirror_nconns;  /* presence_mirror_set(): the cluster's count */
    struct xrec *x;          /* extras (presence_set_extra()); NULL: none */
    char id[];
};

/* A user's extras as the core keeps them: the public struct with its
 * strings owned here, the schedule's state as of its last evaluation, and
 * the next instant something about them changes by itself. Users with a
 * deadline are on the core's heap, keyed by it. */
struct xrec {
    struct presence_extra pub;  /* text/emoji point to the copies below */
    char *text, *emoji;
    struct dnd_state st;        /* the schedule's, at the last evaluation */
    int64_t deadline;           /* -1: nothing pending */
    size_t heap_i;              /* index in p->heap; NOT_QUEUED if none */
};
#define NOT_QUEUED ((size_t)-1)

struct presence_conn {
    struct user *user;
    struct list link; /* on user->conns */
    uint64_t session;
    signed char auto_status;
};

struct presence {
    struct presence_opts o;
    presence_event_cb *announce;
    void *ud;
    struct org *orgs;                 /* uthash, keyed by org id */
    struct list windows[W_COUNT];     /* [W_NONE] unused */
    struct list dirty;
    int in_cb;                        /* inside 'announce' */
    presence_touch_cb *watch;         /* presence_set_watch() */
    void *watch_ud;
    struct user **heap;               /* min-heap of users by x->deadline */
    size_t nheap, capheap;
};

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static int64_t clamp0(int64_t v) { return v < 0 ? 0 : v; }

static unsigned nconns(const struct user *u)
{
    return u->n_auto[PRESENCE_OFFLINE] + u->n_auto[PRESENCE_AWAY] +
           u->n_auto[PRESENCE_ONLINE] + u->mirror_nconns;
}

/* The most present auto status over the connections (ONLINE > AWAY >
 * OFFLINE); the enum values are ordered that way on purpose. */
static enum presence_status aggregate(const struct user *u)
{
    if (u->n_auto[PRESENCE_ONLINE])
        return PRESENCE_ONLINE;
    if (u->n_auto[PRESENCE_AWAY])
        return PRESENCE_AWAY;
    return PRESENCE_OFFLINE;
}

/* docs/protocol.md "Presence rules": manual wins while present; otherwise
 * the connections rule, or the window keeps its status; else OFFLINE. */
static enum presence_status effective(const struct user *u)
{
    if (nconns(u) == 0 && u->window == W_NONE)
        return PRESENCE_OFFLINE;
    if (u->manual != PRESENCE_UNSET)
        return u->manual;
    return nconns(u) ? aggregate(u) : (enum presence_status)u->base;
}

static void mark_dirty(struct presence *p, struct user *u)
{
    if (!list_linked(&u->dirty_link))
        list_insert_tail(&p->dirty, &u->dirty_link);
}

/* last_seen never moves back, even if the caller's clock does. While the
 * user appears offline it does not move at all (presence.h "Appear
 * offline"): others would see it advance on every connect and activity. */
static void touch(struct presence *p, struct user *u, int64_t now)
{
    if (u->manual == PRESENCE_OFFLINE)
        return;
    if (now > u->last_seen) {
        u->last_seen = now;
        mark_dirty(p, u);
    }
}

static void window_close(struct user *u)
{
    list_remove(&u->window_link);
    u->window = W_NONE;
}

/* Opens (or moves) the user's single window; any other window ends. */
static void window_open(struct presence *p, struct user *u, enum window w,
                        int64_t deadline, enum presence_status base)
{
    struct list *head = &p->windows[w], *pos;

    list_remove(&u->window_link);
    u->window = (unsigned char)w;
    u->deadline = deadline;
    u->base = (signed char)base;
    for (pos = head->prev; pos != head; pos = pos->prev)
        if (list_entry(pos, struct user, window_link)->deadline <= deadline)
            break;
    list_insert_tail(pos->next, &u->window_link); /* i.e. after pos */
}

/* Do Not Disturb as others see it: on while a manual end is ahead (the
 * tick clears dnd_until_ms when it passes), while the schedule says so, or
 * while BUSY if so chosen. The end is the latest of those that are on; one
 * without a known end (BUSY, an endless schedule) makes it unknown. */
static void dnd_now(const struct user *u, int *on, int64_t *until)
{
    const struct xrec *x = u->x;
    *on = 0;
    *until = 0;
    if (!x)
        return;
    int by_busy = x->pub.dnd_busy && u->status == PRESENCE_BUSY;
    if (x->pub.dnd_until_ms) {
        *on = 1;
        *until = x->pub.dnd_until_ms;
    }
    if (x->pub.sched.n && x->st.on) {
        if (!*on || x->st.until_ms < 0 || x->st.until_ms > *until)
            *until = x->st.until_ms;
        *on = 1;
    }
    if (by_busy) {
        *on = 1;
        *until = -1;
    }
}

static void fill_member(const struct user *u, struct presence_member *m)
{
    m->org = u->org->id;
    m->user = u->id;
    m->name = u->name;
    m->status = (enum presence_status)u->status;
    m->manual = (enum presence_status)u->manual;
    m->last_seen_ms = u->last_seen;
    m->nconns = nconns(u);
    m->x = u->x ? &u->x->pub : NULL;
    dnd_now(u, &m->dnd, &m->dnd_until_ms);
    m->x_dirty = u->x_dirty;
}

/* Recomputes the effective status and, only if it changed, announces it
 * with the org's next seq. The caller has finished mutating the user, so
 * the callback sees a consistent core. */
static void announce_if(struct presence *p, struct user *u,
                        enum presence_reason reason, int force);

static void update(struct presence *p, struct user *u,
                   enum presence_reason reason)
{
    announce_if(p, u, reason, 0);
}

/* update(), and announce even if only what else others see changed
 * (force): a message, DND, the zone or a privacy setting. */
static void announce_if(struct presence *p, struct user *u,
                        enum presence_reason reason, int force)
{
    enum presence_status s = effective(u);
    struct presence_event ev;

    /* Every entry point that changes a user ends here: a cluster node
     * hears of each change of what it contributes (presence.h). */
    if (p->watch) {
        p->in_cb = 1;
        p->watch(p->watch_ud, u->org->id, u->id, reason);
        p->in_cb = 0;
    }
    /* docs/protocol.md: only a change of what others see is announced,
     * and setting the same status twice announces nothing. */
    if (s == u->status && !force)
        return;
    if (s != u->status) {
        u->org->nonline += (s != PRESENCE_OFFLINE) -
                           (u->status != PRESENCE_OFFLINE);
        u->status = (signed char)s;
        mark_dirty(p, u);
    }
    ev.seq = ++u->org->seq;
    ev.reason = reason;
    fill_member(u, &ev.m);
    if (p->announce) {
        p->in_cb = 1;
        p->announce(p->ud, &ev);
        p->in_cb = 0;
    }
}

static struct org *find_org(struct presence *p, const char *org)
{
    struct org *o = NULL;

    if (org)
        HASH_FIND_STR(p->orgs, org, o);
    return o;
}

static struct user *find_user(struct presence *p, const char *org,
                              const char *user)
{
    struct org *o = find_org(p, org);
    struct user *u = NULL;

    if (o && user)
        HASH_FIND_STR(o->users, user, u);
    return u;
}

static void set_name(struct user *u, const char *name)
{
    if (name == u->name)
        return; /* the caller handed back our own (a mirror's copy) */
    if (u->name != u->id)
        free(u->name);
    /* docs/protocol.md: a member without a display name shows its id. */
    u->name = (name && strcmp(name, u->id) != 0) ? xstrdup(name) : u->id;
}

static int valid_auto(enum presence_status s)
{
    return s == PRESENCE_ONLINE || s == PRESENCE_AWAY ||
           s == PRESENCE_OFFLINE;
}

static int valid_stored(enum presence_status s)
{
    return valid_auto(s) || s == PRESENCE_BUSY;
}

/* ------------------------------------------------------------------------ */
/* Extras: status message, Do Not Disturb, profile (presence_set_extra())   */
/* ------------------------------------------------------------------------ */

static void xrec_free(struct xrec *x)
{
    if (!x)
        return;
    free(x->text);
    free(x->emoji);
    free(x);
}

/* The heap of users with a pending extras deadline: a binary min-heap on
 * x->deadline, so presence_tick() looks only at its top, however many
 * users have schedules. Each xrec knows its index. */
static int64_t heap_key(struct presence *p, size_t i)
{
    return p->heap[i]->x->deadline;
}

static void heap_swap(struct presence *p, size_t i, size_t j)
{
    struct user *t = p->heap[i];
    p->heap[i] = p->heap[j];
    p->heap[j] = t;
    p->heap[i]->x->heap_i = i;
    p->heap[j]->x->heap_i = j;
}

static void heap_fix(struct presence *p, size_t i)
{
    while (i > 0 && heap_key(p, (i - 1) / 2) > heap_key(p, i)) {
        heap_swap(p, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < p->nheap && heap_key(p, l) < heap_key(p, m))
            m = l;
        if (r < p->nheap && heap_key(p, r) < heap_key(p, m))
            m = r;
        if (m == i)
            return;
        heap_swap(p, i, m);
        i = m;
    }
}

static void heap_remove(struct presence *p, struct user *u)
{
    size_t i = u->x->heap_i;
    if (i == NOT_QUEUED)
        return;
    u->x->heap_i = NOT_QUEUED;
    if (i != --p->nheap) {
        p->heap[i] = p->heap[p->nheap];
        p->heap[i]->x->heap_i = i;
        heap_fix(p, i);
    }
}

/* Puts u on the heap at its deadline, or off it if it has none. */
static void heap_set(struct presence *p, struct user *u)
{
    struct xrec *x = u->x;
    if (x->deadline < 0) {
        heap_remove(p, u);
        return;
    }
    if (x->heap_i == NOT_QUEUED) {
        if (p->nheap == p->capheap) {
            p->capheap = p->capheap ? 2 * p->capheap : 16;
            p->heap = xrealloc(p->heap, p->capheap * sizeof *p->heap);
        }
        x->heap_i = p->nheap;
        p->heap[p->nheap++] = u;
    }
    heap_fix(p, x->heap_i);
}

static int64_t earliest(int64_t a, int64_t b)
{
    if (a <= 0)
        return b;
    if (b <= 0)
        return a;
    return a < b ? a : b;
}

/* Evaluates the schedule at now and computes the next deadline: the
 * message's expiry, the manual DND end, the schedule's next change. */
static void xrec_plan(struct presence *p, struct user *u, int64_t now)
{
    struct xrec *x = u->x;
    x->st = (struct dnd_state){0, 0, -1};
    if (x->pub.sched.n &&
        dnd_eval(&x->pub.sched, x->pub.tz[0] ? x->pub.tz : "UTC", now,
                 &x->st) != 0)
        x->st = (struct dnd_state){0, 0, -1};
    int64_t d = 0;
    if (x->text)
        d = earliest(d, x->pub.expires_ms);
    d = earliest(d, x->pub.dnd_until_ms);
    d = earliest(d, x->st.next_ms);
    x->deadline = d > 0 ? d : -1;
    heap_set(p, u);
}

static int xrec_empty(const struct xrec *x)
{
    return !x->text && !x->pub.dnd_until_ms && !x->pub.sched.n &&
           !x->pub.dnd_busy && !x->pub.tz[0] && !x->pub.hide_last_seen;
}

/* Installs *in (copied) as u's extras; frees them when nothing is set. */
static void xrec_install(struct presence *p, struct user *u,
                         const struct presence_extra *in, int64_t now)
{
    struct xrec *x = u->x;
    if (!x) {
        x = xcalloc(1, sizeof *x);
        x->heap_i = NOT_QUEUED;
        u->x = x;
    }
    free(x->text);
    free(x->emoji);
    x->pub = *in;
    x->text = in->text && *in->text ? xstrdup(in->text) : NULL;
    x->emoji = x->text && in->emoji && *in->emoji ? xstrdup(in->emoji) : NULL;
    if (!x->text) {
        x->pub.expires_ms = 0;
        x->pub.clear_status = 0;
    }
    x->pub.text = x->text;
    x->pub.emoji = x->emoji;
    u->x_dirty = 1;
    mark_dirty(p, u);
    if (xrec_empty(x)) {
        heap_remove(p, u);
        xrec_free(x);
        u->x = NULL;
        return;
    }
    xrec_plan(p, u, now);
}

/* What others see of u besides its status, copied, to tell whether a
 * change must be announced. */
#define TEXT_BYTES (PRESENCE_TEXT_MAX * 4)
#define EMOJI_BYTES (PRESENCE_EMOJI_MAX * 4)
struct seen {
    char text[TEXT_BYTES + 1], emoji[EMOJI_BYTES + 1], tz[TZ_NAME_MAX + 1];
    int64_t expires, dnd_until;
    int dnd, hide;
};

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

static void seen_of(const struct user *u, struct seen *v)
{
    memset(v, 0, sizeof *v);
    if (u->x) {
        copy_str(v->text, sizeof v->text, u->x->text);
        copy_str(v->emoji, sizeof v->emoji, u->x->emoji);
        copy_str(v->tz, sizeof v->tz, u->x->pub.tz);
        v->expires = u->x->pub.expires_ms;
        v->hide = u->x->pub.hide_last_seen;
    }
    dnd_now(u, &v->dnd, &v->dnd_until);
}

static int seen_differ(const struct seen *a, const struct seen *b)
{
    return strcmp(a->text, b->text) || strcmp(a->emoji, b->emoji) ||
           strcmp(a->tz, b->tz) || a->expires != b->expires ||
           a->dnd != b->dnd || a->hide != b->hide ||
           a->dnd_until != b->dnd_until;
}

/* ------------------------------------------------------------------------ */
/* Lifetime                                                                 */
/* ------------------------------------------------------------------------ */

struct presence *presence_new(const struct presence_opts *o,
                              presence_event_cb *announce, void *ud)
{
    struct presence *p = xcalloc(1, sizeof(*p));
    int i;

    p->o = o ? *o : default_opts;
    p->o.grace_ms = clamp0(p->o.grace_ms);
    p->o.login_grace_ms = clamp0(p->o.login_grace_ms);
    p->o.restart_grace_ms = clamp0(p->o.restart_grace_ms);
    p->announce = announce;
    p->ud = ud;
    for (i = 0; i < W_COUNT; i++)
        list_init(&p->windows[i]);
    list_init(&p->dirty);
    return p;
}

void presence_set_opts(struct presence *p, const struct presence_opts *o)
{
    /* Windows already open keep their deadlines; new ones use these.
     * window_open() keeps each list sorted whatever the lengths. */
    p->o = *o;
    p->o.grace_ms = clamp0(p->o.grace_ms);
    p->o.login_grace_ms = clamp0(p->o.login_grace_ms);
    p->o.restart_grace_ms = clamp0(p->o.restart_grace_ms);
}

void presence_free(struct presence *p)
{
    struct org *o, *otmp;
    struct user *u, *utmp;
    struct list *pos, *tmp;

    if (!p)
        return;
    assert(!p->in_cb);
    HASH_ITER(hh, p->orgs, o, otmp) {
        HASH_ITER(hh, o->users, u, utmp) {
            list_each_safe(pos, tmp, &u->conns)
                free(list_entry(pos, struct presence_conn, link));
            HASH_DEL(o->users, u);
            if (u->name != u->id)
                free(u->name);
            xrec_free(u->x);
            free(u);
        }
        HASH_DEL(p->orgs, o);
        free(o);
    }
    free(p->heap);
    free(p);
}

/* ------------------------------------------------------------------------ */
/* Members and connections                                                  */
/* ------------------------------------------------------------------------ */

int presence_add_user(struct presence *p, const char *org, const char *user,
                      const char *name, enum presence_status stored,
                      enum presence_status manual, int64_t last_seen_ms,
                      int64_t now)
{
    struct org *o;
    struct user *u;
    size_t n;

    assert(!p->in_cb);
    if (!org || !*org || !user || !*user || !valid_stored(stored) ||
        !(manual == PRESENCE_UNSET || manual == PRESENCE_BUSY ||
          manual == PRESENCE_AWAY || manual == PRESENCE_OFFLINE))
        return PRESENCE_EINVAL;
    o = find_org(p, org);
    if (!o) {
        n = strlen(org);
        o = xcalloc(1, sizeof(*o) + n + 1);
        memcpy(o->id, org, n + 1);
        HASH_ADD_KEYPTR(hh, p->orgs, o->id, n, o);
    }
    HASH_FIND_STR(o->users, user, u);
    if (u) {
        set_name(u, name);
        return 0;
    }
    n = strlen(user);
    u = xcalloc(1, sizeof(*u) + n + 1);
    memcpy(u->id, user, n + 1);
    u->org = o;
    u->name = u->id;
    set_name(u, name);
    list_init(&u->conns);
    list_init(&u->window_link);
    list_init(&u->dirty_link);
    u->last_seen = last_seen_ms;
    u->manual = (signed char)manual;
    u->window = W_NONE;
    /* A user who appears offline is OFFLINE whatever a row written by an
     * older build says: no restore window showing it ONLINE, no restart
     * event. */
    if (manual == PRESENCE_OFFLINE)
        stored = PRESENCE_OFFLINE;
    /* docs/protocol.md: after a restart a user keeps its stored status for
     * restart_grace_ms, so that a restart does not flap the whole org. The
     * stored status is shown as is, even if it disagrees with 'manual'. */
    u->status = (signed char)stored;
    o->nusers++;
    o->nonline += stored != PRESENCE_OFFLINE;
    u->base = (signed char)stored;
    if (stored != PRESENCE_OFFLINE)
        window_open(p, u, W_RESTORE, now + p->o.restart_grace_ms, stored);
    HASH_ADD_KEYPTR(hh, o->users, u->id, n, u);
    return 0;
}

struct presence_conn *presence_connect(struct presence *p, const char *org,
                                       const char *user, uint64_t session_id,
                                       enum presence_status auto_status,
                                       int64_t now)
{
    struct user *u;
    struct presence_conn *c;
    enum presence_status old;

    assert(!p->in_cb);
    u = find_user(p, org, user);
    if (!u || !valid_auto(auto_status))
        return NULL;
    old = (enum presence_status)u->status;
    c = xmalloc(sizeof(*c));
    c->user = u;
    c->session = session_id;
    /* docs/protocol.md "?auto=": the connection opens with the idle
     * detector's state, so the one announcement (if any) is the settled
     * result, never ONLINE then idle a moment later. */
    c->auto_status = (signed char)auto_status;
    list_insert_tail(&u->conns, &c->link);
    u->n_auto[auto_status]++;
    /* Any window ends: the connection now rules. */
    window_close(u);
    /* An idle page connecting is no sign of life. */
    if (auto_status == PRESENCE_ONLINE)
        touch(p, u, now);
    update(p, u, effective(u) < old ? PRESENCE_R_IDLE : PRESENCE_R_CONNECT);
    return c;
}

int presence_conn_auto(struct presence *p, struct presence_conn *c,
                       enum presence_status auto_status, int64_t now)
{
    struct user *u;
    enum presence_status old;

    assert(!p->in_cb);
    if (!c || !valid_auto(auto_status))
        return PRESENCE_EINVAL;
    u = c->user;
    old = (enum presence_status)u->status;
    if (auto_status == PRESENCE_ONLINE)
        touch(p, u, now);
    if (auto_status == c->auto_status)
        return 0;
    u->n_auto[c->auto_status]--;
    u->n_auto[auto_status]++;
    c->auto_status = (signed char)auto_status;
    update(p, u, effective(u) > old ? PRESENCE_R_ACTIVE : PRESENCE_R_IDLE);
    return 0;
}

void presence_disconnect(struct presence *p, struct presence_conn *c,
                         int64_t now, int flags)
{
    struct user *u;

    assert(!p->in_cb);
    if (!c)
        return;
    u = c->user;
    list_remove(&c->link);
    u->n_auto[c->auto_status]--;
    touch(p, u, now);
    /* docs/protocol.md: the last connection closing starts the grace window
     * (page navigation must not flap) unless told to skip it. The window
     * keeps what this connection showed. */
    if (nconns(u) == 0 && !(flags & PRESENCE_NOW) && p->o.grace_ms > 0)
        window_open(p, u, W_GRACE, now + p->o.grace_ms,
                    (enum presence_status)c->auto_status);
    free(c);
    update(p, u, PRESENCE_R_DISCONNECT);
}

const char *presence_conn_org(const struct presence_conn *c)
{
    return c->user->org->id;
}

const char *presence_conn_user(const struct presence_conn *c)
{
    return c->user->id;
}

uint64_t presence_conn_session(const struct presence_conn *c)
{
    return c->session;
}

/* ------------------------------------------------------------------------ */
/* Manual status, login, logout                                             */
/* ------------------------------------------------------------------------ */

int presence_set_manual(struct presence *p, const char *org, const char *user,
                        enum presence_status s, int64_t now)
{
    struct user *u;
    signed char m;

    assert(!p->in_cb);
    if (!valid_stored(s))
        return PRESENCE_EINVAL;
    u = find_user(p, org, user);
    if (!u)
        return PRESENCE_ENOENT;
    /* docs/protocol.md: choosing ONLINE means "no manual status". */
    m = s == PRESENCE_ONLINE ? PRESENCE_UNSET : (signed char)s;
    /* Touched before and after the change: going invisible freezes
     * last_seen at this moment, coming back moves it to this moment, and
     * touch() does nothing while invisible. */
    touch(p, u, now);
    if (m != u->manual) {
        u->manual = m;
        mark_dirty(p, u);
    }
    touch(p, u, now);
    update(p, u, PRESENCE_R_MANUAL);
    return 0;
}

/* Checks what the core can check of x at now (see presence.h). */
static int extra_valid(const struct presence_extra *x, int64_t now,
                       int loading)
{
    if (x->text && strlen(x->text) > TEXT_BYTES)
        return 0;
    if (x->emoji && strlen(x->emoji) > EMOJI_BYTES)
        return 0;
    if (x->expires_ms < 0 || x->dnd_until_ms < 0)
        return 0;
    if (!loading && ((x->text && *x->text && x->expires_ms &&
                      x->expires_ms <= now) ||
                     (x->dnd_until_ms && x->dnd_until_ms <= now)))
        return 0;
    if (x->tz[0] && !tz_valid(x->tz))
        return 0;
    return dnd_sched_check(&x->sched, NULL, 0) == DND_OK;
}

int presence_set_extra(struct presence *p, const char *org, const char *user,
                       const struct presence_extra *x,
                       enum presence_status manual,
                       enum presence_reason reason, int64_t now)
{
    struct user *u;
    struct seen before, after;
    signed char m;

    assert(!p->in_cb);
    if (manual != PRESENCE_KEEP && !valid_stored(manual))
        return PRESENCE_EINVAL;
    if (!extra_valid(x, now, 0))
        return PRESENCE_EINVAL;
    u = find_user(p, org, user);
    if (!u)
        return PRESENCE_ENOENT;
    seen_of(u, &before);
    xrec_install(p, u, x, now);
    if (manual != PRESENCE_KEEP) {
        /* As presence_set_manual(): touched on both sides of the change. */
        m = manual == PRESENCE_ONLINE ? PRESENCE_UNSET : (signed char)manual;
        touch(p, u, now);
        if (m != u->manual) {
            u->manual = m;
            mark_dirty(p, u);
            reason = PRESENCE_R_MANUAL;
        }
        touch(p, u, now);
    }
    seen_of(u, &after);
    announce_if(p, u, reason, seen_differ(&before, &after));
    return 0;
}

int presence_load_extra(struct presence *p, const char *org,
                        const char *user, const struct presence_extra *x,
                        int64_t now)
{
    struct user *u;

    assert(!p->in_cb);
    if (!extra_valid(x, now, 1))
        return PRESENCE_EINVAL;
    u = find_user(p, org, user);
    if (!u)
        return PRESENCE_ENOENT;
    xrec_install(p, u, x, now);
    u->x_dirty = 0; /* it came from the store */
    /* A message or DND end already past is due at once: the next tick
     * clears and announces it (presence.h). */
    if (u->x && ((u->x->text && u->x->pub.expires_ms &&
                  u->x->pub.expires_ms <= now) ||
                 (u->x->pub.dnd_until_ms && u->x->pub.dnd_until_ms <= now))) {
        u->x->deadline = now;
        heap_set(p, u);
    }
    return 0;
}

int presence_notify(struct presence *p, const char *org, const char *user,
                    int64_t now, int64_t *until)
{
    struct user *u = find_user(p, org, user);
    int on;
    int64_t end;

    (void)now; /* the state is kept current by presence_tick() */
    if (!u)
        return PRESENCE_ENOENT;
    dnd_now(u, &on, &end);
    if (until)
        *until = end;
    return !on;
}

/* The extras deadline of u has come: clears an expired message (and the
 * manual status with it if so chosen), ends a manual DND that is over,
 * moves the schedule on; announces once if others see a change. */
static void xrec_due(struct presence *p, struct user *u, int64_t now)
{
    struct xrec *x = u->x;
    struct seen before, after;
    enum presence_reason reason = PRESENCE_R_DND;

    seen_of(u, &before);
    struct presence_extra nx = x->pub;
    if (x->text && x->pub.expires_ms && x->pub.expires_ms <= now) {
        nx.text = nx.emoji = NULL;
        nx.expires_ms = 0;
        reason = PRESENCE_R_EXPIRED;
        if (x->pub.clear_status && u->manual != PRESENCE_UNSET) {
            touch(p, u, now);
            u->manual = PRESENCE_UNSET;
            mark_dirty(p, u);
            touch(p, u, now);
        }
    }
    if (nx.dnd_until_ms && nx.dnd_until_ms <= now)
        nx.dnd_until_ms = 0;
    if (reason == PRESENCE_R_EXPIRED || nx.dnd_until_ms != x->pub.dnd_until_ms)
        xrec_install(p, u, &nx, now); /* may free x */
    else
        xrec_plan(p, u, now);          /* the schedule moved on */
    seen_of(u, &after);
    announce_if(p, u, reason, seen_differ(&before, &after));
}

int presence_login(struct presence *p, const char *org, const char *user,
                   int64_t now)
{
    struct user *u;

    assert(!p->in_cb);
    u = find_user(p, org, user);
    if (!u)
        return PRESENCE_ENOENT;
    touch(p, u, now);
    /* With a connection open the connections rule and no window is needed
     * (windows only matter without one). Otherwise the login window shows
     * the user ONLINE until its first connection, replacing any grace or
     * restore window. */
    if (nconns(u) == 0)
        window_open(p, u, W_LOGIN, now + p->o.login_grace_ms,
                    PRESENCE_ONLINE);
    update(p, u, PRESENCE_R_LOGIN);
    return 0;
}

int presence_logout(struct presence *p, const char *org, const char *user,
                    uint64_t session_id, int64_t now)
{
    struct user *u;
    struct list *pos, *tmp;

    assert(!p->in_cb);
    u = find_user(p, org, user);
    if (!u)
        return PRESENCE_ENOENT;
    /* The session's connections go without a grace window and without an
     * event of their own: the one event below says "logout". */
    if (session_id) {
        list_each_safe(pos, tmp, &u->conns) {
            struct presence_conn *c =
                list_entry(pos, struct presence_conn, link);
            if (c->session != session_id)
                continue;
            list_remove(&c->link);
            u->n_auto[c->auto_status]--;
            free(c);
        }
    }
    touch(p, u, now);
    window_close(u);
    update(p, u, PRESENCE_R_LOGOUT);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Time                                                                     */
/* ------------------------------------------------------------------------ */

int64_t presence_tick(struct presence *p, int64_t now)
{
    static const enum presence_reason why[W_COUNT] = {
        [W_GRACE] = PRESENCE_R_GRACE_EXPIRED,
        [W_LOGIN] = PRESENCE_R_GRACE_EXPIRED,
        [W_RESTORE] = PRESENCE_R_RESTART,
    };
    int64_t next = -1;
    struct user *u;
    int w;

    assert(!p->in_cb);
    for (w = W_GRACE; w < W_COUNT; w++) {
        /* Lists are sorted by deadline: stop at the first one in the
         * future, which is also this kind's earliest pending deadline. */
        while (!list_empty(&p->windows[w])) {
            u = list_entry(p->windows[w].next, struct user, window_link);
            if (u->deadline > now) {
                if (next < 0 || u->deadline < next)
                    next = u->deadline;
                break;
            }
            window_close(u);
            update(p, u, why[w]);
        }
    }
    /* Extras: the heap's top is the earliest. A deadline that does not
     * move (a clock gone back, a schedule that cannot be evaluated) is
     * dropped rather than retried in a loop. */
    while (p->nheap) {
        u = p->heap[0];
        int64_t d = u->x->deadline;
        if (d > now) {
            if (next < 0 || d < next)
                next = d;
            break;
        }
        xrec_due(p, u, now);
        if (u->x && u->x->heap_i == 0 && u->x->deadline <= now) {
            heap_remove(p, u);
            u->x->deadline = -1;
        }
    }
    return next;
}

int presence_sweep_stale(struct presence *p, int64_t now,
                         int64_t older_than_ms)
{
    struct list *pos, *tmp;
    struct user *u;
    int w, n = 0;

    assert(!p->in_cb);
    /* See the invariant at the top: only users inside a window can be
     * present without a connection. */
    for (w = W_GRACE; w < W_COUNT; w++) {
        list_each_safe(pos, tmp, &p->windows[w]) {
            u = list_entry(pos, struct user, window_link);
            assert(nconns(u) == 0);
            if (u->status == PRESENCE_OFFLINE ||
                u->last_seen >= now - older_than_ms)
                continue;
            window_close(u);
            update(p, u, PRESENCE_R_STALE);
            n++;
        }
    }
    return n;
}

/* ------------------------------------------------------------------------ */
/* Listing                                                                  */
/* ------------------------------------------------------------------------ */

int presence_get(struct presence *p, const char *org, const char *user,
                 presence_member_cb *cb, void *ud)
{
    struct user *u = find_user(p, org, user);
    struct presence_member m;

    if (!u)
        return PRESENCE_ENOENT;
    if (cb) {
        fill_member(u, &m);
        cb(ud, &m);
    }
    return 0;
}

void presence_public(struct presence_member *m)
{
    /* presence.h "Appear offline": status and last_seen are already what
     * others may see; what is left is what only the user may know. */
    if (m->manual == PRESENCE_OFFLINE) {
        m->status = PRESENCE_OFFLINE; /* effective() says so already */
        m->nconns = 0;
        m->manual = PRESENCE_UNSET;
    }
    if (m->x && m->x->hide_last_seen)
        m->last_seen_ms = 0;
}

static void each_user(struct org *o, presence_member_cb *cb, void *ud)
{
    struct user *u, *tmp;
    struct presence_member m;

    HASH_ITER(hh, o->users, u, tmp) {
        fill_member(u, &m);
        cb(ud, &m);
    }
}

uint64_t presence_each(struct presence *p, const char *org,
                       presence_member_cb *cb, void *ud)
{
    struct org *o = find_org(p, org);

    if (!o)
        return 0;
    each_user(o, cb, ud);
    return o->seq;
}

uint64_t presence_org_seq(struct presence *p, const char *org)
{
    struct org *o = find_org(p, org);

    return o ? o->seq : 0;
}

unsigned presence_org_size(struct presence *p, const char *org,
                           unsigned *online)
{
    struct org *o = find_org(p, org);

    if (online)
        *online = o ? o->nonline : 0;
    return o ? o->nusers : 0;
}

void presence_each_all(struct presence *p, presence_member_cb *cb, void *ud)
{
    struct org *o, *tmp;

    HASH_ITER(hh, p->orgs, o, tmp)
        each_user(o, cb, ud);
}

void presence_drain_dirty(struct presence *p, presence_member_cb *cb,
                          void *ud)
{
    struct list *pos, *tmp;
    struct user *u;
    struct presence_member m;

    assert(!p->in_cb);
    list_each_safe(pos, tmp, &p->dirty) {
        u = list_entry(pos, struct user, dirty_link);
        list_remove(pos);
        fill_member(u, &m);
        u->x_dirty = 0;
        cb(ud, &m);
    }
}

/* ------------------------------------------------------------------------ */
/* Cluster nodes                                                            */
/* ------------------------------------------------------------------------ */

void presence_set_watch(struct presence *p, presence_touch_cb *cb, void *ud)
{
    p->watch = cb;
    p->watch_ud = ud;
}

int presence_contribution(struct presence *p, const char *org,
                          const char *user, struct presence_contrib *out,
                          int remember)
{
    struct user *u = find_user(p, org, user);
    unsigned n;

    if (!u)
        return PRESENCE_ENOENT;
    n = nconns(u);
    out->present = n > 0 || u->window != W_NONE;
    if (n)
        out->auto_status = aggregate(u);
    else if (out->present)
        /* A window keeps what the user showed; a manual status kept by a
         * window (BUSY) counts as active: the cluster applies the manual
         * status itself. */
        out->auto_status = u->base == PRESENCE_BUSY
                               ? PRESENCE_ONLINE
                               : (enum presence_status)u->base;
    else
        out->auto_status = PRESENCE_OFFLINE;
    out->nconns = n;
    out->last_seen_ms = u->last_seen;
    out->name = u->name;
    out->changed = out->present != u->c_present ||
                   (signed char)out->auto_status != u->c_auto ||
                   n != u->c_nconns;
    if (!remember)
        return 0;
    u->c_present = (unsigned char)out->present;
    u->c_auto = (signed char)out->auto_status;
    u->c_nconns = n;
    return 0;
}

int presence_restore(struct presence *p, const char *org, const char *user,
                     enum presence_status auto_status, int64_t now)
{
    struct user *u;

    assert(!p->in_cb);
    u = find_user(p, org, user);
    if (!u)
        return PRESENCE_ENOENT;
    if (!valid_auto(auto_status))
        return PRESENCE_EINVAL;
    if (nconns(u) || u->window != W_NONE)
        return 0;
    window_open(p, u, W_RESTORE, now + p->o.restart_grace_ms, auto_status);
    /* What the cluster already holds for us: no change to hand out. */
    u->c_present = 1;
    u->c_auto = (signed char)auto_status;
    u->c_nconns = 0;
    u->org->nonline += auto_status != PRESENCE_OFFLINE &&
                       u->status == PRESENCE_OFFLINE;
    if (auto_status != PRESENCE_OFFLINE && u->status == PRESENCE_OFFLINE)
        u->status = (signed char)auto_status;
    return 0;
}

int presence_mirror_set(struct presence *p, const struct presence_member *m,
                        uint64_t seq, int dirty)
{
    struct user *u;

    assert(!p->in_cb);
    if (presence_add_user(p, m->org, m->user, m->name, PRESENCE_OFFLINE,
                          PRESENCE_UNSET, m->last_seen_ms, 0) != 0)
        return PRESENCE_EINVAL;
    if (!valid_stored(m->status))
        return PRESENCE_EINVAL;
    u = find_user(p, m->org, m->user);
    if (u->window != W_NONE)
        window_close(u); /* a mirror keeps no windows of its own */
    u->org->nonline += (m->status != PRESENCE_OFFLINE) -
                       (u->status != PRESENCE_OFFLINE);
    u->status = (signed char)m->status;
    u->manual = (signed char)m->manual;
    if (m->last_seen_ms > u->last_seen)
        u->last_seen = m->last_seen_ms;
    u->mirror_nconns = m->nconns;
    if (seq > u->org->seq)
        u->org->seq = seq;
    if (dirty)
        mark_dirty(p, u);
    return 0;
}

void presence_mirror_org(struct presence *p, const char *org, uint64_t seq)
{
    struct org *o = find_org(p, org);
    if (!o) {
        size_t n = strlen(org);
        o = xcalloc(1, sizeof(*o) + n + 1);
        memcpy(o->id, org, n + 1);
        HASH_ADD_KEYPTR(hh, p->orgs, o->id, n, o);
    }
    o->seq = seq;
}

/* ------------------------------------------------------------------------ */
/* Names                                                                    */
/* ------------------------------------------------------------------------ */

static const char *const status_names[] = {
    [PRESENCE_OFFLINE] = "OFFLINE",
    [PRESENCE_AWAY] = "AWAY",
    [PRESENCE_ONLINE] = "ONLINE",
    [PRESENCE_BUSY] = "BUSY",
};

static const char *const reason_names[] = {
    [PRESENCE_R_CONNECT] = "connect",
    [PRESENCE_R_IDLE] = "idle",
    [PRESENCE_R_ACTIVE] = "active",
    [PRESENCE_R_MANUAL] = "manual",
    [PRESENCE_R_LOGIN] = "login",
    [PRESENCE_R_LOGOUT] = "logout",
    [PRESENCE_R_DISCONNECT] = "disconnect",
    [PRESENCE_R_GRACE_EXPIRED] = "grace_expired",
    [PRESENCE_R_STALE] = "stale",
    [PRESENCE_R_RESTART] = "restart",
    [PRESENCE_R_MESSAGE] = "message",
    [PRESENCE_R_EXPIRED] = "expired",
    [PRESENCE_R_DND] = "dnd",
    [PRESENCE_R_PROFILE] = "profile",
};

const char *presence_status_name(enum presence_status s)
{
    if (s == PRESENCE_UNSET)
        return "UNSET";
    if ((int)s < 0 || (size_t)s >= ARRAY_LEN(status_names))
        return "?";
    return status_names[s];
}

int presence_status_parse(const char *s, enum presence_status *out)
{
    size_t i;

    if (!s)
        return -1;
    for (i = 0; i < ARRAY_LEN(status_names); i++) {
        if (strcmp(s, status_names[i]) == 0) {
            *out = (enum presence_status)i;
            return 0;
        }
    }
    return -1;
}

const char *presence_reason_name(enum presence_reason r)
{
    if ((int)r < 0 || (size_t)r >= ARRAY_LEN(reason_names))
        return "?";
    return reason_names[r];
}
