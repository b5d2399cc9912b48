/* hub.c - glue between the presence core, the sockets and the store.
 *
 * The core decides; the hub carries out. Each announcement is encoded once
 * into one frame and that frame is queued, by reference, to every open
 * connection of the organization (hub_publish: the one place that says
 * "announce this to organization X", where events from other nodes will
 * also arrive). The store sees the core's changes in batches, never per
 * heartbeat: hub_flush_store() drains the core's dirty set in one
 * transaction every `flush`; manual statuses, which a user expects to
 * survive anything, are written at once. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <time.h>
#include <jansson.h>
#include <uthash.h>

#include "hub/hub.h"
#include "cluster/cluster.h"
#include "http/http.h"
#include "net/net.h"
#include "presence/extra.h"
#include "presence/msg.h"
#include "presence/presence.h"
#include "store/queue.h"
#include "store/store.h"
#include "util/log.h"
#include "util/rate.h"
#include "util/xalloc.h"
#include "ws/frame.h"
#include "ws/ws.h"
#include "util/utf8.h"

/* One encoding buffer per thread: events and snapshots are built here and
 * copied once into their frame. A per-thread cache, not state of the
 * server's: nothing in it outlives the call that fills it, and callbacks
 * that encode are handed it (their ud), never reach for it. */
static _Thread_local struct buf enc;

/* The connections of one organization, by loop. Org-wide receivers are on
 * conns; subscribers on subscribers, and on the watch of each user they
 * follow. Arrays have one entry per loop. */
struct hub_org {
    char *id;
    struct list *conns;         /* struct hub_conn.org_link: org-wide */
    struct list *subscribers;   /* struct hub_conn.org_link: subscribers */
    unsigned *nconns;           /* both lists, per loop */
    unsigned nsubscribers;      /* all loops */
    struct watch *watches;      /* uthash by user id */
    struct list online_link;    /* in hub.online_dirty */
    unsigned online_sent;       /* last online count told subscribers */
    struct frame *snap;         /* the org-wide snapshot, while current */
    uint64_t snap_seq;          /* ... as of this seq */
    unsigned snap_users;        /* ... and this many members */
    int64_t synced_version;     /* store_data_version() at the last sync */
    struct org_sync *sync;      /* per loop: hub_sync_org() */
    /* Cluster (docs/cluster.md "Order and gaps"): the view of this
     * organization is as of the last resync, and events that came while
     * one was asked for wait in 'held' (seq order restored after it). */
    int synced, resyncing;
    int retried;                /* a resync asked again once */
    struct held_event *held;
    size_t nheld, capheld;
    UT_hash_handle hh;
};

/* An event kept while its organization resyncs. */
struct held_event {
    uint64_t seq;
    int status, manual, self;
    unsigned nconns;
    int64_t last_seen;
    char *user, *name, *frame;
    size_t frame_len;
};

/* What waits for a sync of an organization (hub_sync_org()). */
struct waiter {
    hub_done_cb *then;
    void *arg;
    struct waiter *next;
};

/* The syncs of one organization on one loop: at most one in flight, and
 * one more asked for meanwhile (its waiters wait for that one, which
 * reads after whatever made them ask). A connect burst costs two. */
struct org_sync {
    int running;
    int again;
    struct waiter *waiters, **tail;
};

/* The subscribers of one user. */
struct watch {
    char *user;
    struct list *subs;          /* struct sub.watch_link, per loop */
    unsigned nsubs;
    UT_hash_handle hh;
};

struct sub {
    struct hub_conn *c;
    struct watch *w;
    struct list watch_link;
    struct list conn_link;
};

/* A presence WebSocket connection: the hub's part of it. */
struct hub_conn {
    struct ws_conn ws;          /* the transport below it */
    struct hub *hb;
    struct presence_conn *pc;
    uint64_t session_id;
    /* The presence core's ids (stable: the core never drops a user while
     * it runs); the caller's strings during hub_accept(). */
    const char *org, *user;
    struct list org_link;       /* in struct hub_org.conns[loop] */
    struct list all_link;       /* in hub_loop.conns (heartbeats) */
    int64_t msg_window;         /* msg_rate: start of this second */
    uint32_t msg_count;
    struct list subs;           /* struct sub.conn_link */
    unsigned nsubs;
    unsigned subscriber : 1;
    unsigned idle_at_connect : 2;
};

/* Work one loop hands another (under the lock). */
struct post {
    int kind;                   /* enum post_kind */
    hub_done_cb *call;          /* POST_CALL */
    void *arg;
    struct hub_org *o;
    char *user;
    struct frame *f;
    uint64_t session;
};

/* One loop's part of the hub (lock). */
struct hub_loop {
    struct loop *lp;
    struct storeq_client *sq;   /* its end of the store queue */
    struct list conns;          /* its presence connections */
    unsigned nconns;
    int closed;                 /* nothing more is posted to it */
    struct post *posts;
    size_t nposts, capposts;
};

struct hub {
    pthread_mutex_t lock;
    struct config cfg;
    struct storeq *q;           /* the store, on its own thread */
    struct presence *presence;
    struct hub_org *orgs;       /* uthash by id */
    struct list online_dirty;   /* large orgs whose online count moved */
    struct frame *ping;         /* shared heartbeat ping frame */
    struct rate_table *rates;   /* logins, new connections, statuses */
    int stopping;
    unsigned long churn;        /* connects + closes since the last trim */
    /* Rows a full store queue refused, kept for the next flush. */
    struct pending_write *pw;
    size_t pw_len, pw_cap;
    int64_t now;                /* ms since the epoch, as of hub_lock() */
    /* store_data_version(): as the users were loaded, and as last polled
     * (hub_poll_store()). Only another process's commit moves it; while it
     * does not, no organization needs a sync at connect. */
    int64_t loaded_version, seen_version;
    int polling;                /* a poll is in flight */
    /* Cluster mode (cfg.redis set): the core above holds this node's own
     * connections and windows, the view the cluster's records. */
    struct cluster *cl;
    struct presence *view;
    int cl_up;                  /* Redis reachable and synced (lock) */
    char node[160];
    hub_session_cb *session_cb;
    void *session_ud;
    /* Users whose change this node showed while Redis was away, for the
     * push after it returns ("org\0user" each). */
    char **gone;
    size_t ngone, capgone;
    unsigned nloops;
    struct hub_loop loops[HUB_MAX_LOOPS];
};

/* The lock's depth on this thread (re-entrant). */
static _Thread_local unsigned tl_depth;

/* What members see: the cluster's records on a cluster node, else the
 * core itself. */
#define VIEW(hb) ((hb)->view ? (hb)->view : (hb)->presence)

/* The index of c's loop. */
static unsigned lid(const struct hub_conn *c) { return loop_id(c->ws.c->lp); }

/* What one loop hands another (struct post). */
enum post_kind {
    POST_EVENT,       /* f about user: org-wide receivers, and subscribers
                         as hub_publish() says */
    POST_SUBSCRIBERS, /* f to the org's subscribers (online count) */
    POST_END_SESSION, /* close user's connections of session (logout) */
    POST_SNAPSHOT,    /* f, a fresh snapshot, to the org-wide receivers;
                         each subscriber its own partial one (resync) */
    POST_CALL,        /* call(arg), once, on that loop */
};

/* Presence rows drained from the core and not yet handed to the store
 * queue (in hub.pw): those of a flush the full queue refused wait for the
 * next one. */
struct pending_write {
    char *org, *user;
    int status, manual;
    int64_t last_seen;
    char *extra;        /* extras changed: settings JSON, "" for none;
                           NULL: unchanged */
};

/* An empty list per loop. */
static struct list *lists_new(struct hub *hb)
{
    struct list *l = xcalloc(hb->nloops, sizeof *l);
    for (unsigned i = 0; i < hb->nloops; i++)
        list_init(&l[i]);
    return l;
}

static struct hub_org *org_get(struct hub *hb, const char *id, int create)
{
    struct hub_org *o;
    HASH_FIND_STR(hb->orgs, id, o);
    if (!o && create) {
        o = xcalloc(1, sizeof *o);
        o->id = xstrdup(id);
        o->conns = lists_new(hb);
        o->subscribers = lists_new(hb);
        o->nconns = xcalloc(hb->nloops, sizeof *o->nconns);
        o->sync = xcalloc(hb->nloops, sizeof *o->sync);
        list_init(&o->online_link);
        /* Complete as loaded at start, or as of the last poll's version
         * if made since (its users were synced with it, if any). */
        o->synced_version = hb->loaded_version;
        HASH_ADD_KEYPTR(hh, hb->orgs, o->id, strlen(o->id), o);
    }
    return o;
}

static int is_large(struct hub *hb, const char *org)
{
    return presence_org_size(VIEW(hb), org, NULL) >=
           (unsigned)hb->cfg.large_org;
}

static void send_list(struct list *l, struct frame *f)
{
    struct list *pos, *tmp;
    list_each_safe(pos, tmp, l) {
        struct hub_conn *c = list_entry(pos, struct hub_conn, org_link);
        if (ws_is_open(&c->ws))
            ws_send(&c->ws, f);
    }
}

static struct watch *watch_new(struct hub *hb, const char *user)
{
    struct watch *w = xcalloc(1, sizeof *w);
    w->user = xstrdup(user);
    w->subs = lists_new(hb);
    return w;
}

/* Frees w once nobody subscribes to it. */
static void watch_release(struct hub_org *o, struct watch *w)
{
    if (w->nsubs)
        return;
    HASH_DEL(o->watches, w);
    free(w->subs);
    free(w->user);
    free(w);
}

/* The connections of org on loop i that belong to user's login session:
 * closed (1008) if close, else told that the core dropped their handle
 * (any loop's, under the lock: hub fields only). */
static void session_conns(struct hub_org *o, unsigned i, const char *user,
                          uint64_t session, int close)
{
    struct list *lists[2] = {&o->conns[i], &o->subscribers[i]};
    for (int k = 0; k < 2; k++) {
        struct list *pos, *tmp;
        list_each_safe(pos, tmp, lists[k]) {
            struct hub_conn *c = list_entry(pos, struct hub_conn, org_link);
            if (c->session_id != session || strcmp(c->user, user) != 0)
                continue;
            if (close)
                ws_close(&c->ws, WS_CLOSE_POLICY, "logged out");
            else
                c->pc = NULL;
        }
    }
}

static void send_partial(struct hub *hb, struct hub_conn *c);

/* Carries out a post on loop i's own connections (its thread, lock
 * held). */
static void run_post(struct hub *hb, unsigned i, const struct post *p)
{
    struct hub_org *o = p->o;
    switch (p->kind) {
    case POST_EVENT:
        send_list(&o->conns[i], p->f);
        if (list_empty(&o->subscribers[i]))
            break;
        if (!is_large(hb, o->id)) {
            send_list(&o->subscribers[i], p->f);
            break;
        }
        struct watch *w;
        HASH_FIND_STR(o->watches, p->user, w);
        if (w) {
            struct list *pos, *tmp;
            list_each_safe(pos, tmp, &w->subs[i]) {
                struct sub *s = list_entry(pos, struct sub, watch_link);
                if (ws_is_open(&s->c->ws))
                    ws_send(&s->c->ws, p->f);
            }
        }
        break;
    case POST_SUBSCRIBERS:
        send_list(&o->subscribers[i], p->f);
        break;
    case POST_END_SESSION:
        session_conns(o, i, p->user, p->session, 1);
        break;
    case POST_CALL:
        p->call(p->arg);
        break;
    case POST_SNAPSHOT: {
        send_list(&o->conns[i], p->f);
        struct list *pos, *tmp;
        list_each_safe(pos, tmp, &o->subscribers[i]) {
            struct hub_conn *c = list_entry(pos, struct hub_conn, org_link);
            if (ws_is_open(&c->ws))
                send_partial(hb, c);
        }
        break;
    }
    }
}

/* Does p on every loop with a connection in p->o: at once on this
 * thread's loop, posted to the others. A loop runs its posts whenever it
 * takes the lock, before anything else, so what it sends keeps the order
 * in which events were made. */
static void post_all(struct hub *hb, const struct post *p)
{
    struct loop *me = loop_current();
    for (unsigned i = 0; i < hb->nloops; i++) {
        struct hub_loop *hl = &hb->loops[i];
        if (!p->o->nconns[i])
            continue;
        if (hl->lp == me) {
            run_post(hb, i, p);
            continue;
        }
        if (hl->closed)
            continue; /* its connections are gone */
        if (hl->nposts == hl->capposts) {
            hl->capposts = hl->capposts ? hl->capposts * 2 : 64;
            hl->posts = xrealloc(hl->posts, hl->capposts * sizeof *hl->posts);
        }
        struct post *q = &hl->posts[hl->nposts++];
        *q = *p;
        q->user = p->user ? xstrdup(p->user) : NULL;
        if (q->f)
            frame_ref(q->f);
        if (hl->nposts == 1)
            loop_wake(hl->lp);
    }
}

/* Delivers what other loops posted to loop i (hub_lock() does this). */
static void run_posts(struct hub *hb, unsigned i)
{
    struct hub_loop *hl = &hb->loops[i];
    /* Posts made while these run (a close announcing a disconnect) are
     * for other loops or run at once; none is added to this list. */
    for (size_t k = 0; k < hl->nposts; k++) {
        struct post *p = &hl->posts[k];
        run_post(hb, i, p);
        frame_unref(p->f);
        free(p->user);
    }
    hl->nposts = 0;
    if (hl->capposts > 1024) {
        free(hl->posts);
        hl->posts = NULL;
        hl->capposts = 0;
    }
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void hub_lock(struct hub *hb)
{
    if (tl_depth++)
        return;
    pthread_mutex_lock(&hb->lock);
    /* The core must never see time go back when two loops take turns. */
    int64_t t = wall_ms();
    if (t > hb->now)
        hb->now = t;
    struct loop *lp = loop_current();
    if (!lp)
        return;
    unsigned i = loop_id(lp);
    if (i < hb->nloops && hb->loops[i].lp == lp && hb->loops[i].nposts)
        run_posts(hb, i);
}

void hub_unlock(struct hub *hb)
{
    if (--tl_depth)
        return;
    pthread_mutex_unlock(&hb->lock);
}

int64_t hub_now(const struct hub *hb) { return hb->now; }
struct presence *hub_presence(struct hub *hb) { return hb->presence; }
struct presence *hub_view(struct hub *hb) { return VIEW(hb); }
struct rate_table *hub_rates(struct hub *hb) { return hb->rates; }
unsigned hub_nconns(const struct hub *hb, unsigned i)
{
    return hb->loops[i].nconns;
}
unsigned hub_nloops(const struct hub *hb) { return hb->nloops; }
unsigned long hub_churn(const struct hub *hb) { return hb->churn; }
void hub_stopping(struct hub *hb) { hb->stopping = 1; }
void hub_loop_closed(struct hub *hb, unsigned i) { hb->loops[i].closed = 1; }

void hub_set_loop(struct hub *hb, unsigned i, struct loop *lp,
                  struct storeq_client *sq)
{
    hb->loops[i].lp = lp;
    hb->loops[i].sq = sq;
}

int hub_submit(struct hub *hb, storeq_run_cb *run, storeq_done_cb *done,
               void *ud, unsigned flags)
{
    struct loop *lp = loop_current();
    unsigned i = lp ? loop_id(lp) : 0;
    if (!lp || i >= hb->nloops || hb->loops[i].lp != lp)
        return STOREQ_ECLOSED; /* not on a loop of ours */
    return storeq_submit(hb->loops[i].sq, run, done, ud, flags);
}

void hub_reload(struct hub *hb, const struct config *cfg)
{
    hb->cfg = *cfg;
    struct presence_opts o = {cfg->grace_ms, cfg->login_grace_ms,
                              cfg->restart_grace_ms};
    presence_set_opts(hb->presence, &o);
}

void hub_tick(struct hub *hb) { presence_tick(hb->presence, hb->now); }

/* Queues frame f, an event about user, to every connection of org that
 * should see it: org-wide receivers always; subscribers too in a small
 * organization, and in a large one only those who follow the user. This
 * is the one place that says "announce this to organization X". */
static void hub_publish(struct hub *hb, const char *org,
                        const char *user, struct frame *f)
{
    struct hub_org *o = org_get(hb, org, 0);
    if (!o)
        return;
    struct post p = {.kind = POST_EVENT, .o = o, .user = (char *)user,
                     .f = f};
    post_all(hb, &p);
    if (o->nsubscribers && is_large(hb, org) &&
        !list_linked(&o->online_link))
        list_insert_tail(&hb->online_dirty, &o->online_link);
}

static void on_announce(void *ud, const struct presence_event *ev)
{
    struct hub *hb = ud;
    /* A cluster node's core decides only what the node contributes; what
     * its members see comes back from Redis (on_touch()). */
    if (hb->view)
        return;
    buf_reset(&enc);
    msg_encode_presence(&enc, ev);
    struct frame *f = frame_new_text(enc.data, enc.len);
    hub_publish(hb, ev->m.org, ev->m.user, f);
    frame_unref(f);
    log_debug("presence %s/%s %s (%s) seq %llu", ev->m.org, ev->m.user,
              presence_status_name(ev->m.status),
              presence_reason_name(ev->reason),
              (unsigned long long)ev->seq);
}

void hub_send_online(struct hub *hb)
{
    struct list *pos, *tmp;
    list_each_safe(pos, tmp, &hb->online_dirty) {
        struct hub_org *o = list_entry(pos, struct hub_org, online_link);
        list_remove(pos);
        unsigned online;
        presence_org_size(VIEW(hb), o->id, &online);
        if (online == o->online_sent || !o->nsubscribers)
            continue;
        o->online_sent = online;
        buf_reset(&enc);
        msg_encode_online(&enc, online, presence_org_seq(VIEW(hb), o->id));
        struct frame *f = frame_new_text(enc.data, enc.len);
        struct post p = {.kind = POST_SUBSCRIBERS, .o = o, .f = f};
        post_all(hb, &p);
        frame_unref(f);
    }
}

/* ---- subscriptions ---------------------------------------------------- */

static struct sub *find_sub(struct hub_conn *c, struct watch *w)
{
    /* Walk the shorter of the two lists. */
    struct list *pos;
    unsigned n = 0;
    list_each(pos, &w->subs[lid(c)]) {
        if (++n > c->nsubs)
            break;
        struct sub *s = list_entry(pos, struct sub, watch_link);
        if (s->c == c)
            return s;
    }
    if (n <= c->nsubs)
        return NULL;
    list_each(pos, &c->subs) {
        struct sub *s = list_entry(pos, struct sub, conn_link);
        if (s->w == w)
            return s;
    }
    return NULL;
}

static void drop_sub(struct hub_org *o, struct sub *s)
{
    struct watch *w = s->w;
    list_remove(&s->watch_link);
    list_remove(&s->conn_link);
    s->c->nsubs--;
    free(s);
    w->nsubs--;
    watch_release(o, w);
}

static void drop_subs(struct hub_conn *c)
{
    struct hub_org *o = org_get(c->hb, c->org, 0);
    struct list *pos, *tmp;
    list_each_safe(pos, tmp, &c->subs) {
        drop_sub(o, list_entry(pos, struct sub, conn_link));
    }
}

/* Moves c from the org-wide list to the subscribers. */
static void make_subscriber(struct hub_conn *c, struct hub_org *o)
{
    if (c->subscriber)
        return;
    c->subscriber = 1;
    list_remove(&c->org_link);
    list_insert_tail(&o->subscribers[lid(c)], &c->org_link);
    o->nsubscribers++;
}

static void on_touch(void *ud, const char *org, const char *user,
                     enum presence_reason reason);
static int cluster_set_manual(struct hub *hb, const char *org,
                              const char *user, int status);
static void drop_held(struct hub_org *o);

static void on_load(void *ud, const struct store_user *u)
{
    struct hub *hb = ud;
    if (!hb->view) {
        presence_add_user(hb->presence, u->org, u->id, u->name, u->status,
                          u->manual, u->last_seen_ms, hb->now);
        return;
    }
    /* Cluster: the node's own core starts with nothing of its own (a
     * restart takes back its contributions from Redis, on_claim()); the
     * view shows what the store has until the first resync replaces it. */
    presence_add_user(hb->presence, u->org, u->id, u->name, PRESENCE_OFFLINE,
                      PRESENCE_UNSET, u->last_seen_ms, hb->now);
    presence_add_user(hb->view, u->org, u->id, u->name, PRESENCE_OFFLINE,
                      u->manual, u->last_seen_ms, hb->now);
}

/* A user's extras as stored. A row this build cannot read is logged and
 * left in the store as it is, never a reason not to start. */
static void on_load_extra(void *ud, const char *org, const char *user,
                          const char *json)
{
    struct hub *hb = ud;
    struct extra_rec r;
    if (extra_parse(json, strlen(json), &r) != 0 ||
        presence_load_extra(VIEW(hb), org, user, &r.x, hb->now) != 0)
        log_warn("store: extras of %s/%s unreadable, ignored", org, user);
}

static int load_run(struct store *s, void *ud)
{
    struct hub *hb = ud;
    /* The version first: a commit during the read makes it look stale,
     * never the other way round. */
    hb->loaded_version = store_data_version(s);
    int rc = store_user_each(s, NULL, on_load, ud);
    return rc ? rc : store_extra_each(s, NULL, on_load_extra, ud);
}

int hub_new(struct hub **out, const struct config *cfg, struct storeq *q,
            unsigned nloops)
{
    struct hub *hb = xcalloc(1, sizeof *hb);
    /* Held briefly (no store call, no write under it): spin a little
     * before sleeping (glibc's adaptive mutex), rather than pay a futex
     * wake-up. */
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&hb->lock, &ma);
    pthread_mutexattr_destroy(&ma);
    hb->cfg = *cfg;
    hb->q = q;
    hb->nloops = nloops < HUB_MAX_LOOPS ? nloops : HUB_MAX_LOOPS;
    for (unsigned i = 0; i < hb->nloops; i++)
        list_init(&hb->loops[i].conns);
    list_init(&hb->online_dirty);
    hb->rates = rate_new();
    hb->now = wall_ms();
    buf_init(&enc, 0);
    struct presence_opts o = {
        .grace_ms = hb->cfg.grace_ms,
        .login_grace_ms = hb->cfg.login_grace_ms,
        .restart_grace_ms = hb->cfg.restart_grace_ms,
    };
    hb->presence = presence_new(&o, on_announce, hb);
    if (cfg->redis[0]) {
        hb->view = presence_new(&o, NULL, NULL);
        presence_set_watch(hb->presence, on_touch, hb);
    }
    hb->ping = frame_new(0x9, "", 0) /* ping */;
    /* Users stored as not OFFLINE start in a restore window: after a
     * crash they go OFFLINE unless they reconnect (docs/protocol.md). */
    /* Before the loops run: the store thread fills the core while this
     * thread waits, so the two never touch it at once. */
    if (storeq_call(q, load_run, hb, STOREQ_READ) != 0) {
        hub_free(hb);
        return -1;
    }
    hb->seen_version = hb->loaded_version;
    /* Messages and DND ends that passed while the server was down are
     * cleared before the first request can see them (nobody is connected
     * yet to hear of it; the store is told at the first flush). */
    presence_tick(VIEW(hb), hb->now);
    *out = hb;
    return 0;
}

static void send_text(struct hub_conn *c, const struct buf *b)
{
    struct frame *f = frame_new_text(b->data, b->len);
    ws_send(&c->ws, f);
    frame_unref(f);
}

static void send_error(struct hub_conn *c, const char *code, const char *message)
{
    buf_reset(&enc);
    msg_encode_error(&enc, code, message);
    send_text(c, &enc);
}

/* The hello of a new connection, encoded into out. */
struct hello_ctx {
    struct msg_hello h;
    struct buf *out;
};

static void on_self(void *ud, const struct presence_member *m)
{
    struct hello_ctx *x = ud;
    x->h.status = m->status;
    x->h.manual = m->manual;
    x->h.name = m->name;
    buf_reset(x->out);
    msg_encode_hello(x->out, &x->h);
}

static void on_member(void *ud, const struct presence_member *m)
{
    msg_snapshot_member(ud, m); /* the snapshot being encoded */
}

/* ---- users the CLI adds while we run --------------------------------- */

/* A sync of one organization: read on the store thread, applied on the
 * loop that asked, then its waiters run there, lock held. */
struct sync_job {
    struct hub *hb;
    char *org;
    unsigned loop;              /* the loop it was submitted on */
    int64_t known_version;      /* the org's synced_version at submit */
    int64_t version;            /* store_data_version() as read */
    struct store_user *users;   /* the org's users, if the version moved */
    size_t n, cap;
    struct waiter *waiters;
};

static void collect_user(void *ud, const struct store_user *u)
{
    struct sync_job *j = ud;
    if (j->n == j->cap) {
        j->cap = j->cap ? 2 * j->cap : 16;
        j->users = xrealloc(j->users, j->cap * sizeof *j->users);
    }
    j->users[j->n++] = *u;
}

static int sync_run(struct store *s, void *ud)
{
    struct sync_job *j = ud;
    /* Only another process's commit can have added users, and SQLite's
     * data_version says whether one happened: most syncs read nothing
     * more. */
    j->version = store_data_version(s);
    if (j->version >= 0 && j->version == j->known_version)
        return 0;
    return store_user_each(s, j->org, collect_user, j);
}

static void run_waiters(struct waiter *w)
{
    while (w) {
        struct waiter *next = w->next;
        w->then(w->arg);
        free(w);
        w = next;
    }
}

static void sync_start(struct hub *hb, struct hub_org *o, unsigned i);

static void sync_done(void *ud, int rc)
{
    struct sync_job *j = ud;
    struct hub *hb = j->hb;
    hub_lock(hb);
    struct hub_org *o = org_get(hb, j->org, 1);
    if (rc == 0) {
        for (size_t k = 0; k < j->n; k++)
            if (presence_get(hb->presence, j->org, j->users[k].id, NULL,
                             NULL) != 0)
                on_load(hb, &j->users[k]);
        if (j->version > o->synced_version)
            o->synced_version = j->version;
    }
    struct org_sync *sy = &o->sync[j->loop];
    sy->running = 0;
    run_waiters(j->waiters);
    if (sy->again)
        sync_start(hb, o, j->loop);
    hub_unlock(hb);
    free(j->users);
    free(j->org);
    free(j);
}

/* Lock held, on loop i: submits a sync for the waiters gathered. */
static void sync_start(struct hub *hb, struct hub_org *o, unsigned i)
{
    struct org_sync *sy = &o->sync[i];
    struct sync_job *j = xcalloc(1, sizeof *j);
    j->hb = hb;
    j->org = xstrdup(o->id);
    j->loop = i;
    j->known_version = o->synced_version;
    j->waiters = sy->waiters;
    sy->waiters = NULL;
    sy->tail = &sy->waiters;
    sy->again = 0;
    if (hub_submit(hb, sync_run, sync_done, j, STOREQ_READ) != 0) {
        /* The store is busy or closing: what memory has will do. */
        struct waiter *w = j->waiters;
        free(j->org);
        free(j);
        run_waiters(w);
        return;
    }
    sy->running = 1;
}

void hub_sync_org(struct hub *hb, const char *org, hub_done_cb *then,
                  void *arg)
{
    struct loop *lp = loop_current();
    unsigned i = lp ? loop_id(lp) : 0;
    if (!lp || i >= hb->nloops || hb->loops[i].lp != lp) {
        if (then) /* not on a loop of ours: no store to ask */
            then(arg);
        return;
    }
    struct hub_org *o = org_get(hb, org, 1);
    struct org_sync *sy = &o->sync[i];
    if (!sy->tail)
        sy->tail = &sy->waiters;
    if (then) {
        struct waiter *w = xmalloc(sizeof *w);
        *w = (struct waiter){then, arg, NULL};
        *sy->tail = w;
        sy->tail = &w->next;
    }
    if (sy->running)
        sy->again = 1; /* after the one in flight, which read too early */
    else
        sync_start(hb, o, i);
}

/* A look at store_data_version(), for hub_poll_store(). */
struct poll_job {
    struct hub *hb;
    int64_t version;
};

static int poll_run(struct store *s, void *ud)
{
    struct poll_job *p = ud;
    p->version = store_data_version(s);
    return p->version < 0 ? (int)p->version : 0;
}

static void poll_done(void *ud, int rc)
{
    struct poll_job *p = ud;
    hub_lock(p->hb);
    p->hb->polling = 0;
    if (rc == 0)
        p->hb->seen_version = p->version;
    hub_unlock(p->hb);
    free(p);
}

void hub_poll_store(struct hub *hb)
{
    if (hb->polling)
        return;
    struct poll_job *p = xcalloc(1, sizeof *p);
    p->hb = hb;
    if (hub_submit(hb, poll_run, poll_done, p, STOREQ_READ) != 0) {
        free(p);
        return;
    }
    hb->polling = 1;
}

/* ws on_open: the 101 is queued; hello and snapshot go next. */
static void on_open(struct ws_conn *w)
{
    struct hub_conn *c = (struct hub_conn *)w;
    static const enum presence_status idle[] = {
        PRESENCE_ONLINE, PRESENCE_AWAY, PRESENCE_OFFLINE, PRESENCE_OFFLINE,
    };
    struct hub *hb = c->hb;
    /* Connect before joining the organization's list: the snapshot then
     * includes this connection's own change, and the event (seq N) goes
     * only to the others. The connection opens with the page's idle state
     * (?auto=), so that event is already the settled result. */
    c->pc = presence_connect(hb->presence, c->org, c->user, c->session_id,
                             idle[c->idle_at_connect], hb->now);
    if (!c->pc) {
        c->org = c->user = NULL; /* the caller's strings */
        ws_close(&c->ws, WS_CLOSE_INTERNAL, "unknown user");
        return;
    }
    c->org = presence_conn_org(c->pc);
    c->user = presence_conn_user(c->pc);
    struct hello_ctx x = {
        .h = {
            .user = c->user, .org = c->org,
            .heartbeat_s = hb->cfg.heartbeat_ms / 1000,
            .away_after_s = hb->cfg.away_after_ms / 1000,
            .offline_after_s = hb->cfg.offline_after_ms / 1000,
            .max_msg = hb->cfg.max_msg,
        },
        .out = &enc,
    };
    if (x.h.heartbeat_s < 1)
        x.h.heartbeat_s = 1;
    hub_get_self(hb, c->org, c->user, on_self, &x);
    send_text(c, x.out);

    struct hub_org *o = org_get(hb, c->org, 1);
    /* Members the CLI added since: in this snapshot if already loaded,
     * else in the next (never waited for: a connect must not queue
     * behind the store). Asked only once a poll saw another process
     * commit. */
    if (hb->seen_version != o->synced_version)
        hub_sync_org(hb, c->org, NULL, NULL);
    /* A cluster node that has not yet read this organization from Redis
     * asks now; the connection gets a fresh snapshot when it is in. */
    if (hb->view && !o->synced && !o->resyncing && hb->cl_up) {
        o->resyncing = 1;
        cluster_resync(hb->cl, c->org);
    }
    uint64_t seq = presence_org_seq(VIEW(hb), c->org);
    unsigned online, nusers = presence_org_size(VIEW(hb), c->org, &online);
    if (c->subscriber) {
        /* docs/protocol.md: a subscriber starts with no members, only the
         * count, and adds the people it shows with "subscribe". */
        buf_reset(&enc);
        msg_snapshot_begin_partial(&enc, seq, online);
        msg_snapshot_end(&enc);
        send_text(c, &enc);
    } else {
        /* One snapshot per organization, rebuilt only when an event or a
         * new member made it stale: a reconnect storm encodes it once. */
        if (!o->snap || o->snap_seq != seq || o->snap_users != nusers) {
            frame_unref(o->snap);
            buf_reset(&enc);
            msg_snapshot_begin(&enc, seq);
            presence_each(VIEW(hb), c->org, on_member, &enc);
            msg_snapshot_end(&enc);
            o->snap = frame_new_text(enc.data, enc.len);
            o->snap_seq = seq;
            o->snap_users = nusers;
        }
        ws_send(&c->ws, o->snap);
    }

    list_insert_tail(c->subscriber ? &o->subscribers[lid(c)]
                                   : &o->conns[lid(c)],
                     &c->org_link);
    o->nconns[lid(c)]++;
    if (c->subscriber)
        o->nsubscribers++;
    list_insert_tail(&hb->loops[lid(c)].conns, &c->all_link);
    hb->loops[lid(c)].nconns++;
    hb->churn++;
}

/* ws on_closing: leave the organization; the user's presence follows. */
static void on_closing(struct ws_conn *w)
{
    struct hub_conn *c = (struct hub_conn *)w;
    struct hub *hb = c->hb;
    hub_lock(hb);
    if (list_linked(&c->org_link)) {
        list_remove(&c->org_link);
        struct hub_org *o = org_get(hb, c->org, 0);
        if (o) {
            o->nconns[lid(c)]--;
            if (c->subscriber)
                o->nsubscribers--;
        }
        drop_subs(c);
    }
    if (list_linked(&c->all_link)) {
        list_remove(&c->all_link);
        hb->loops[lid(c)].nconns--;
        hb->churn++;
    }
    /* At shutdown connections close without a status change: the users
     * stay as they are in the store and get a restore window on restart,
     * so a deploy does not flap everyone OFFLINE and back. */
    if (c->pc && !hb->stopping)
        presence_disconnect(hb->presence, c->pc, hb->now, 0);
    c->pc = NULL;
    hub_unlock(hb);
}

static void on_free(struct ws_conn *w) { free(w); }

static void on_msg(struct ws_conn *w, const char *data, size_t len,
                   int binary);

static const struct ws_callbacks callbacks = {
    .on_open = on_open,
    .on_msg = on_msg,
    .on_closing = on_closing,
    .on_free = on_free,
};

int hub_accept(struct hub *hb, struct http_conn *h, const struct http_req *r,
               const struct hub_who *who)
{
    struct hub_conn *c = xcalloc(1, sizeof *c);
    c->hb = hb;
    c->org = who->org; /* borrowed: on_open() points them at the core's */
    c->user = who->user;
    c->session_id = who->session;
    c->subscriber = who->subscriber ? 1 : 0;
    c->idle_at_connect = (unsigned)who->idle_at_connect & 3;
    list_init(&c->org_link);
    list_init(&c->all_link);
    list_init(&c->subs);
    if (ws_accept(&c->ws, h, r, &callbacks, (size_t)hb->cfg.max_msg, 0)) {
        free(c);
        return -1;
    }
    return 0;
}

int hub_set_manual(struct hub *hb, const char *org, const char *user,
                   int status)
{
    if (hb->view)
        return cluster_set_manual(hb, org, user, status);
    int rc = presence_set_manual(hb->presence, org, user, status, hb->now);
    if (rc != 0)
        return rc;
    /* A person expects a status they chose to survive anything: written
     * at once (with whatever else is dirty), not at the next flush. */
    hub_flush_store(hb);
    return 0;
}

static void copy_extra(void *ud, const struct presence_member *m)
{
    extra_rec_from(ud, m->x);
}

int hub_update(struct hub *hb, const char *org, const char *user,
               const struct json_t *obj0, const char **code, char *err,
               size_t errlen)
{
    const json_t *obj = (const json_t *)obj0;
    static const char *const keys[] = {"message", "dnd", "tz",
                                       "hide_last_seen"};
    int patch = 0, manual = PRESENCE_KEEP;
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        patch |= json_object_get(obj, keys[i]) != NULL;
    /* A misspelt key would otherwise be a change silently not made. */
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        size_t i = 0;
        while (i < sizeof keys / sizeof *keys && strcmp(keys[i], k) != 0)
            i++;
        if (i == sizeof keys / sizeof *keys && strcmp(k, "status") != 0 &&
            strcmp(k, "type") != 0) {
            *code = "bad_request";
            snprintf(err, errlen, "unknown field \"%.*s\"",
                     utf8_prefix(k, 64), k);
            return -1;
        }
    }
    const json_t *st = json_object_get(obj, "status");
    enum presence_status s;
    if (st || !patch) {
        if (!json_is_string(st) ||
            presence_status_parse(json_string_value(st), &s) != 0) {
            *code = "invalid_status";
            snprintf(err, errlen,
                     "status must be one of ONLINE, AWAY, BUSY, OFFLINE");
            return -1;
        }
        manual = (int)s;
    }
    if (!patch) {
        if (hub_set_manual(hb, org, user, manual) == 0)
            return 0;
        *code = "invalid_status";
        snprintf(err, errlen, "status not allowed");
        return -1;
    }
    if (hb->view) {
        /* docs/cluster.md: the extras do not travel through Redis yet. */
        *code = "not_supported";
        snprintf(err, errlen, "status messages and Do Not Disturb are not "
                              "available in a cluster yet");
        return -1;
    }
    struct extra_rec r;
    unsigned touched = 0;
    if (presence_get(hb->presence, org, user, copy_extra, &r) != 0) {
        *code = "not_found";
        snprintf(err, errlen, "no such user");
        return -1;
    }
    int rc = extra_patch(&r, obj0, hb->now, &touched, err, errlen);
    if (rc != 0) {
        *code = extra_error_code(rc);
        return -1;
    }
    enum presence_reason why = touched & EXTRA_T_MESSAGE ? PRESENCE_R_MESSAGE
                               : touched & EXTRA_T_DND   ? PRESENCE_R_DND
                                                         : PRESENCE_R_PROFILE;
    if (presence_set_extra(hb->presence, org, user, &r.x, manual, why,
                           hb->now) != 0) {
        *code = "bad_request";
        snprintf(err, errlen, "not allowed");
        return -1;
    }
    hub_flush_store(hb); /* as a manual status: kept at once */
    return 0;
}

struct sub_ctx {
    struct hub_conn *c;
    struct hub_org *o;
    int over;
    struct buf *out;            /* the partial snapshot being encoded */
};

static void subscribe_member(void *ud, const struct presence_member *m)
{
    struct sub_ctx *x = ud;
    struct hub_conn *c = x->c;
    struct watch *w;
    HASH_FIND_STR(x->o->watches, m->user, w);
    if (!w) {
        w = watch_new(c->hb, m->user);
        HASH_ADD_KEYPTR(hh, x->o->watches, w->user, strlen(w->user), w);
    } else if (find_sub(c, w)) {
        msg_snapshot_member(x->out, m); /* again: the client asked */
        return;
    }
    if (c->nsubs >= HUB_MAX_SUBS) {
        x->over = 1;
        watch_release(x->o, w);
        return;
    }
    struct sub *s = xcalloc(1, sizeof *s);
    s->c = c;
    s->w = w;
    list_insert_tail(&w->subs[lid(c)], &s->watch_link);
    w->nsubs++;
    list_insert_tail(&c->subs, &s->conn_link);
    c->nsubs++;
    msg_snapshot_member(x->out, m);
}

/* docs/protocol.md "Subscriptions": answers with a partial snapshot of
 * the users subscribed to (unknown ids are left out, as are users of any
 * other organization: they are simply not found). */
static void do_subscribe(struct hub_conn *c, const char *const *users,
                         size_t n)
{
    struct hub *hb = c->hb;
    struct hub_org *o = org_get(hb, c->org, 1);
    struct sub_ctx x = {c, o, 0, &enc};
    make_subscriber(c, o);
    unsigned online;
    presence_org_size(VIEW(hb), c->org, &online);
    buf_reset(&enc);
    msg_snapshot_begin_partial(&enc, presence_org_seq(VIEW(hb), c->org),
                               online);
    for (size_t i = 0; i < n; i++)
        presence_get(VIEW(hb), c->org, users[i], subscribe_member, &x);
    msg_snapshot_end(&enc);
    send_text(c, &enc);
    if (x.over)
        send_error(c, "too_many_subscriptions",
                   "at most 10000 subscriptions per connection");
}

/* A subscription waiting for the store to say whether users the core
 * does not know were added by the CLI since. */
struct later_sub {
    struct hub_conn *c;
    char **users;
    size_t n;
};

static void subscribe_later(void *arg)
{
    struct later_sub *l = arg;
    struct conn *tc = l->c->ws.c;
    if (ws_is_open(&l->c->ws) && l->c->pc)
        do_subscribe(l->c, (const char *const *)l->users, l->n);
    for (size_t i = 0; i < l->n; i++)
        free(l->users[i]);
    free(l->users);
    free(l);
    conn_unref(tc); /* may free the connection */
}

static void subscribe(struct hub_conn *c, const struct msg_in *m)
{
    struct hub *hb = c->hb;
    size_t unknown = 0;
    for (size_t i = 0; i < m->nusers; i++)
        unknown += presence_get(VIEW(hb), c->org, m->users[i], NULL,
                                NULL) != 0;
    if (!unknown) {
        do_subscribe(c, m->users, m->nusers);
        return;
    }
    /* Perhaps members the CLI added since we loaded: the answer waits for
     * the store's word (other frames go on meanwhile). */
    struct later_sub *l = xcalloc(1, sizeof *l);
    l->c = c;
    l->n = m->nusers;
    l->users = xcalloc(m->nusers, sizeof *l->users);
    for (size_t i = 0; i < m->nusers; i++)
        l->users[i] = xstrdup(m->users[i]);
    conn_ref(c->ws.c);
    hub_sync_org(hb, c->org, subscribe_later, l);
}

static void unsubscribe(struct hub_conn *c, const struct msg_in *m)
{
    struct hub_org *o = org_get(c->hb, c->org, 0);
    if (!o)
        return;
    for (size_t i = 0; i < m->nusers; i++) {
        struct watch *w;
        HASH_FIND_STR(o->watches, m->users[i], w);
        struct sub *s = w ? find_sub(c, w) : NULL;
        if (s)
            drop_sub(o, s);
    }
}

static void on_message(struct hub_conn *c, const char *data, size_t len,
                       int binary)
{
    struct hub *hb = c->hb;
    if (binary) {
        send_error(c, "bad_message", "binary frames are not supported");
        return;
    }
    /* docs/security.md: messages per connection per second. A client over
     * it is told once per second; one far over it is cut off. */
    if (hb->now - c->msg_window >= 1000) {
        c->msg_window = hb->now;
        c->msg_count = 0;
    }
    if (++c->msg_count > (uint32_t)hb->cfg.msg_rate) {
        if (c->msg_count == (uint32_t)hb->cfg.msg_rate + 1)
            send_error(c, "rate_limited",
                       "too many messages; slow down");
        else if (c->msg_count > 10 * (uint32_t)hb->cfg.msg_rate)
            ws_close(&c->ws, WS_CLOSE_POLICY, "message rate limit");
        return;
    }
    struct msg_in m;
    char err[128];
    int rc = msg_parse(data ? data : "", len, &m, err, sizeof err);
    if (rc != 0) {
        send_error(c, msg_error_code(rc), err);
        return;
    }
    switch (m.type) {
    case MSG_SUBSCRIBE:
        subscribe(c, &m);
        break;
    case MSG_UNSUBSCRIBE:
        unsubscribe(c, &m);
        break;
    case MSG_PING:
        buf_reset(&enc);
        msg_encode_pong(&enc);
        send_text(c, &enc);
        break;
    case MSG_STATUS:
        if (!c->pc)
            break;
        if (!hub_status_allowed(hb, c->org, c->user)) {
            send_error(c, "rate_limited",
                       "too many status changes; slow down");
            break;
        }
        if (m.is_auto)
            rc = presence_conn_auto(hb->presence, c->pc, m.status, hb->now);
        else
            rc = hub_set_manual(hb, c->org, c->user, m.status);
        if (rc != 0)
            send_error(c, "invalid_status", "status not allowed here");
        break;
    case MSG_UPDATE: {
        const char *code;
        if (!hub_status_allowed(hb, c->org, c->user)) {
            send_error(c, "rate_limited",
                       "too many status changes; slow down");
            break;
        }
        if (hub_update(hb, c->org, c->user, m._json, &code, err,
                       sizeof err) != 0)
            send_error(c, code, err);
        break;
    }
    }
    msg_in_dispose(&m);
}

static void on_msg(struct ws_conn *w, const char *data, size_t len,
                   int binary)
{
    struct hub_conn *c = (struct hub_conn *)w;
    hub_lock(c->hb);
    if (binary)
        on_message(c, NULL, 0, 1); /* answered as bad_message */
    else
        on_message(c, data, len, 0);
    hub_unlock(c->hb);
}

void hub_heartbeat(struct hub *hb, unsigned i)
{
    struct loop *lp = hb->loops[i].lp;
    int64_t now = loop_time(lp);
    int64_t dead = now - hb->cfg.heartbeat_ms * 5 / 2;
    struct list *pos, *tmp;
    list_each_safe(pos, tmp, &hb->loops[i].conns) {
        struct hub_conn *c = list_entry(pos, struct hub_conn, all_link);
        if (c->ws.last_rx_ms < dead) {
            char peer[48];
            conn_peer(c->ws.c, peer, sizeof peer);
            log_info("%s: %s/%s answered nothing for %lld ms, closing",
                     peer, c->org, c->user,
                     (long long)(now - c->ws.last_rx_ms));
            ws_close(&c->ws, WS_CLOSE_GOING_AWAY, "heartbeat timeout");
        } else if (ws_is_open(&c->ws)) {
            ws_send(&c->ws, hb->ping);
        }
    }
}

static void collect_dirty(void *ud, const struct presence_member *m)
{
    struct hub *hb = ud;
    if (hb->pw_len == hb->pw_cap) {
        hb->pw_cap = hb->pw_cap ? hb->pw_cap * 2 : 64;
        hb->pw = xrealloc(hb->pw, hb->pw_cap * sizeof *hb->pw);
    }
    char *extra = NULL;
    if (m->x_dirty) {
        struct buf b;
        buf_init(&b, 0);
        if (m->x)
            extra_encode(&b, m->x);
        extra = xstrndup(b.data ? b.data : "", b.len);
        buf_dispose(&b);
    }
    hb->pw[hb->pw_len++] = (struct pending_write){
        xstrdup(m->org), xstrdup(m->user), m->status, m->manual,
        m->last_seen_ms, extra,
    };
}

static void drop_pending_writes(struct hub *hb)
{
    for (size_t i = 0; i < hb->pw_len; i++) {
        free(hb->pw[i].org);
        free(hb->pw[i].user);
        free(hb->pw[i].extra);
    }
    hb->pw_len = 0;
}

/* Presence rows written in one transaction on the store thread. */
struct flush_job {
    struct pending_write *pw;
    size_t n;
};

static int flush_run(struct store *s, void *ud)
{
    struct flush_job *j = ud;
    struct store_presence *rows = xcalloc(j->n, sizeof *rows);
    for (size_t i = 0; i < j->n; i++)
        rows[i] = (struct store_presence){
            j->pw[i].org, j->pw[i].user, j->pw[i].status, j->pw[i].manual,
            j->pw[i].last_seen,
        };
    /* One transaction, all or nothing: a failed batch is run again. */
    int rc = store_presence_write(s, rows, j->n);
    free(rows);
    /* Extras are written after: a retried batch writes both again, which
     * is harmless (each write sets the whole current value). */
    for (size_t i = 0; rc == 0 && i < j->n; i++)
        if (j->pw[i].extra) {
            rc = store_extra_set(s, j->pw[i].org, j->pw[i].user,
                                 j->pw[i].extra);
            if (rc == STORE_ENOENT)
                rc = 0; /* the user is gone: nothing to keep */
        }
    return rc;
}

static void flush_done(void *ud, int rc)
{
    struct flush_job *j = ud;
    if (rc != 0)
        log_error("store: could not write %zu presence rows (%s)", j->n,
                  store_strerror(rc));
    for (size_t i = 0; i < j->n; i++) {
        free(j->pw[i].org);
        free(j->pw[i].user);
        free(j->pw[i].extra);
    }
    free(j->pw);
    free(j);
}

static void drop_member(void *ud, const struct presence_member *m)
{
    (void)ud;
    (void)m;
}

void hub_flush_store(struct hub *hb)
{
    if (hb->view) {
        /* The rows are the cluster's records, written by the node whose
         * change they were (so once, cluster-wide); the node's own core
         * has nothing to store. */
        presence_drain_dirty(hb->presence, drop_member, NULL);
        presence_drain_dirty(hb->view, collect_dirty, hb);
    } else {
        presence_drain_dirty(hb->presence, collect_dirty, hb);
    }
    if (!hb->pw_len)
        return;
    struct flush_job *j = xmalloc(sizeof *j);
    j->pw = hb->pw;
    j->n = hb->pw_len;
    /* A lock held by another process delays the job (and those behind
     * it), never a loop; it is retried until it is written. */
    if (hub_submit(hb, flush_run, flush_done, j,
                   STOREQ_RETRY | STOREQ_DURABLE) != 0) {
        free(j); /* the queue is full: kept for the next flush */
        log_warn("store: %zu presence rows wait for the next flush",
                 hb->pw_len);
        return;
    }
    hb->pw = NULL;
    hb->pw_len = hb->pw_cap = 0;
}

int hub_sweep(struct hub *hb, int64_t older_than_ms)
{
    int n = presence_sweep_stale(hb->presence, hb->now, older_than_ms);
    if (n > 0)
        log_info("reset %d stale statuses to OFFLINE", n);
    hub_flush_store(hb);
    rate_prune(hb->rates, hb->now);
    return n;
}

void hub_end_session(struct hub *hb, const char *org, const char *user,
                     uint64_t session_id)
{
    struct hub_org *o = org_get(hb, org, 0);
    if (o && session_id) /* presence_logout() below frees the handles */
        for (unsigned i = 0; i < hb->nloops; i++)
            session_conns(o, i, user, session_id, 0);
    /* docs/protocol.md: logout is OFFLINE at once, no grace, one event. */
    presence_logout(hb->presence, org, user, session_id, hb->now);
    if (o && session_id) {
        struct post p = {.kind = POST_END_SESSION, .o = o,
                         .user = (char *)user, .session = session_id};
        post_all(hb, &p);
    }
    /* The session's sockets on other nodes close too. */
    if (hb->cl && session_id)
        cluster_kick(hb->cl, org, user, session_id);
}

void hub_revoke_session(struct hub *hb, const char *org,
                        const char *user, uint64_t session_id)
{
    struct hub_org *o = org_get(hb, org, 0);
    if (!o || !session_id)
        return;
    struct post p = {.kind = POST_END_SESSION, .o = o, .user = (char *)user,
                     .session = session_id};
    post_all(hb, &p);
}

int hub_status_allowed(struct hub *hb, const char *org, const char *user)
{
    /* One budget per user, whichever way the changes come (WebSocket
     * frames on any of its connections, PUT /api/status): each one is
     * announced to the organization and may be written to the store. */
    char key[2 * STORE_ID_MAX + 16];
    snprintf(key, sizeof key, "status:%zu:%s/%s", strlen(org), org, user);
    return rate_add(hb->rates, key, 1000, hb->now) <= hb->cfg.status_rate;
}

struct name_check {
    const char *name;
    int same;
};

static void same_name(void *ud, const struct presence_member *m)
{
    struct name_check *nc = ud;
    nc->same = !nc->name || !*nc->name || strcmp(nc->name, m->name) == 0;
}

/* Makes the rows of a user a token names (token provisioning), or
 * updates its name, on the store thread. */
struct ensure_job {
    struct hub *hb;
    char org[STORE_ID_MAX + 1], user[STORE_ID_MAX + 1];
    char name[STORE_NAME_MAX + 1];    /* the token's, "" if none */
    struct store_user u;              /* as stored after the run */
    int created;
};

static int ensure_run(struct store *s, void *ud)
{
    struct ensure_job *j = ud;
    int rc = store_user_get(s, j->org, j->user, &j->u);
    if (rc == STORE_ENOENT) {
        rc = store_org_exists(s, j->org);
        if (rc == 0)
            rc = store_org_add(s, j->org, NULL);
        else if (rc == 1)
            rc = 0;
        if (rc == 0 || rc == STORE_EEXIST)
            rc = store_user_add(s, j->org, j->user, NULL,
                                j->name[0] ? j->name : j->user, NULL, NULL);
        if (rc == STORE_EEXIST)
            rc = 0;
        j->created = rc == 0;
        if (rc == 0)
            rc = store_user_get(s, j->org, j->user, &j->u);
    } else if (rc == 0 && j->name[0] && strcmp(j->name, j->u.name) != 0) {
        rc = store_user_set_name(s, j->org, j->user, j->name);
        if (rc == 0)
            snprintf(j->u.name, sizeof j->u.name, "%s", j->name);
    }
    return rc;
}

/* The snapshot cached for org shows an old name. */
static void drop_snapshot(struct hub *hb, const char *org)
{
    struct hub_org *o = org_get(hb, org, 0);
    if (o) {
        frame_unref(o->snap);
        o->snap = NULL;
    }
}

static void ensure_done(void *ud, int rc)
{
    struct ensure_job *j = ud;
    struct hub *hb = j->hb;
    hub_lock(hb);
    if (rc != 0) {
        log_error("could not store user %s/%s: %s", j->org, j->user,
                  store_strerror(rc));
    } else {
        if (j->created)
            log_info("provisioned user %s/%s from a token", j->org, j->user);
        /* A user the CLI made while we ran has its stored name: shown
         * once known, unless the token names it. */
        struct name_check nc = {j->u.name, 0};
        if (!j->name[0] &&
            presence_get(hb->presence, j->org, j->user, same_name, &nc) ==
                0 &&
            !nc.same) {
            presence_add_user(hb->presence, j->org, j->user, j->u.name,
                              hb->view ? PRESENCE_OFFLINE : j->u.status,
                              hb->view ? PRESENCE_UNSET : j->u.manual,
                              j->u.last_seen_ms, hb->now);
            if (hb->view)
                presence_add_user(hb->view, j->org, j->user, j->u.name,
                                  PRESENCE_OFFLINE, j->u.manual,
                                  j->u.last_seen_ms, hb->now);
            drop_snapshot(hb, j->org);
        }
    }
    hub_unlock(hb);
    free(j);
}

int hub_ensure_user(struct hub *hb, const char *org, const char *user,
                    const char *name)
{
    struct name_check nc = {name, 0};
    /* The common case, a known user with an unchanged name, costs no
     * store work: a reconnect storm stays in memory. */
    int known = presence_get(hb->presence, org, user, same_name, &nc) == 0;
    if (known && nc.same)
        return 0;
    /* The store's limits, checked here: the rows are made later. */
    if (!org || !*org || strnlen(org, STORE_ID_MAX + 1) > STORE_ID_MAX ||
        !user || !*user || strnlen(user, STORE_ID_MAX + 1) > STORE_ID_MAX ||
        (name && strnlen(name, STORE_NAME_MAX + 1) > STORE_NAME_MAX))
        return STORE_EINVAL;
    /* In memory at once, so that the connection goes on; the rows follow
     * on the store thread. A user unknown here is new, or was added by
     * the CLI since we loaded: either way OFFLINE with no manual status
     * as stored. For a known user this only refreshes the name. */
    int rc = presence_add_user(hb->presence, org, user,
                               name && *name ? name : user, PRESENCE_OFFLINE,
                               -1, 0, hb->now);
    if (rc != 0)
        return rc;
    if (hb->view)
        presence_add_user(hb->view, org, user, name && *name ? name : user,
                          PRESENCE_OFFLINE, -1, 0, hb->now);
    if (known)
        drop_snapshot(hb, org);
    struct ensure_job *j = xcalloc(1, sizeof *j);
    j->hb = hb;
    snprintf(j->org, sizeof j->org, "%s", org);
    snprintf(j->user, sizeof j->user, "%s", user);
    snprintf(j->name, sizeof j->name, "%s", name ? name : "");
    if (hub_submit(hb, ensure_run, ensure_done, j,
                   STOREQ_RETRY | STOREQ_DURABLE) != 0) {
        log_error("could not store user %s/%s: the store queue is full",
                  org, user);
        free(j);
    }
    return 0;
}

unsigned long hub_drop_caches(struct hub *hb)
{
    struct hub_org *o, *t;
    HASH_ITER(hh, hb->orgs, o, t) {
        frame_unref(o->snap);
        o->snap = NULL;
    }
    unsigned long n = hb->churn;
    hb->churn = 0;
    return n;
}

void hub_shutdown(struct hub *hb, unsigned i)
{
    struct list *pos, *tmp;
    list_each_safe(pos, tmp, &hb->loops[i].conns) {
        struct hub_conn *c = list_entry(pos, struct hub_conn, all_link);
        ws_close(&c->ws, WS_CLOSE_GOING_AWAY, "server shutting down");
    }
}

void hub_free(struct hub *hb)
{
    if (!hb)
        return;
    struct hub_org *o, *t;
    HASH_ITER(hh, hb->orgs, o, t) {
        struct watch *w, *wt;
        HASH_ITER(hh, o->watches, w, wt) {
            struct list *pos, *tmp;
            for (unsigned i = 0; i < hb->nloops; i++)
                list_each_safe(pos, tmp, &w->subs[i]) {
                    free(list_entry(pos, struct sub, watch_link));
                }
            w->nsubs = 0;
            watch_release(o, w);
        }
        HASH_DEL(hb->orgs, o);
        drop_held(o);
        frame_unref(o->snap);
        free(o->conns);
        free(o->subscribers);
        free(o->nconns);
        free(o->sync);
        free(o->id);
        free(o);
    }
    drop_pending_writes(hb);
    free(hb->pw);
    hb->pw = NULL;
    hb->pw_cap = 0;
    presence_free(hb->presence);
    hb->presence = NULL;
    presence_free(hb->view);
    hb->view = NULL;
    for (size_t i = 0; i < hb->ngone; i++)
        free(hb->gone[i]);
    free(hb->gone);
    frame_unref(hb->ping);
    for (unsigned i = 0; i < hb->nloops; i++) {
        struct hub_loop *hl = &hb->loops[i];
        for (size_t k = 0; k < hl->nposts; k++) {
            frame_unref(hl->posts[k].f);
            free(hl->posts[k].user);
        }
        free(hl->posts);
    }
    rate_free(hb->rates);
    pthread_mutex_destroy(&hb->lock);
    free(hb);
    hub_thread_done();
}

void hub_thread_done(void)
{
    buf_dispose(&enc);
}

/* ---- cluster (docs/cluster.md) ---------------------------------------
 * The node's core decides what this node contributes; on_touch() hands
 * each change to Redis. What members see is the view, set only from what
 * Redis sends back (events in seq order, record updates, resyncs), so
 * every node shows the same thing in the same order. While Redis is
 * unreachable the node shows its own clients' changes itself (degraded),
 * numbered on from the view's seq; the push and resync after the
 * reconnect replace that with the merged truth. */

static void drop_held(struct hub_org *o)
{
    for (size_t i = 0; i < o->nheld; i++) {
        free(o->held[i].user);
        free(o->held[i].name);
        free(o->held[i].frame);
    }
    free(o->held);
    o->held = NULL;
    o->nheld = o->capheld = 0;
}

static void part_member(void *ud, const struct presence_member *m)
{
    msg_snapshot_member(ud, m);
}

/* A subscriber's fresh partial snapshot: the users it follows. */
static void send_partial(struct hub *hb, struct hub_conn *c)
{
    unsigned online;
    presence_org_size(VIEW(hb), c->org, &online);
    buf_reset(&enc);
    msg_snapshot_begin_partial(&enc, presence_org_seq(VIEW(hb), c->org),
                               online);
    struct list *pos;
    list_each(pos, &c->subs) {
        struct sub *s = list_entry(pos, struct sub, conn_link);
        presence_get(VIEW(hb), c->org, s->w->user, part_member, &enc);
    }
    msg_snapshot_end(&enc);
    send_text(c, &enc);
}

struct self_ctx {
    struct hub *hb;
    presence_member_cb *cb;
    void *ud;
};

/* The user's own view: the cluster's record, with what this node already
 * knows of its own connections (their change is on its way to Redis). */
static void self_cb(void *ud, const struct presence_member *m0)
{
    struct self_ctx *x = ud;
    struct presence_member m = *m0;
    struct presence_contrib c;
    if (presence_contribution(x->hb->presence, m.org, m.user, &c, 0) == 0 &&
        c.present) {
        if (m.manual != PRESENCE_UNSET)
            m.status = m.manual;
        else if (m.status == PRESENCE_OFFLINE || m.status == PRESENCE_BUSY ||
                 c.auto_status > m.status)
            m.status = c.auto_status;
        if (m.nconns < c.nconns)
            m.nconns = c.nconns;
    }
    x->cb(x->ud, &m);
}

int hub_get_self(struct hub *hb, const char *org, const char *user,
                 presence_member_cb *cb, void *ud)
{
    if (!hb->view)
        return presence_get(hb->presence, org, user, cb, ud);
    struct self_ctx x = {hb, cb, ud};
    return presence_get(hb->view, org, user, cb ? self_cb : NULL, &x);
}

/* A member of the view, copied (ids and name lent by the caller). */
struct rec_copy {
    int found;
    struct presence_member m;
};

static void copy_member(void *ud, const struct presence_member *m)
{
    struct rec_copy *r = ud;
    r->found = 1;
    r->m = *m;
}

/* Remembers org/user for the push after Redis returns (bounded: past
 * that the resync's OFFLINE, with an older last_seen, will do). */
static void note_gone(struct hub *hb, const char *org, const char *user)
{
    if (hb->ngone >= 100000)
        return;
    if (hb->ngone == hb->capgone) {
        hb->capgone = hb->capgone ? 2 * hb->capgone : 16;
        hb->gone = xrealloc(hb->gone, hb->capgone * sizeof *hb->gone);
    }
    size_t lo = strlen(org), lu = strlen(user);
    char *k = xmalloc(lo + lu + 2);
    memcpy(k, org, lo + 1);
    memcpy(k + lo + 1, user, lu + 1);
    hb->gone[hb->ngone++] = k;
}

/* Degraded: this node's own change, shown to its clients at once. */
static void local_event(struct hub *hb, const char *org, const char *user,
                        const struct presence_contrib *c,
                        enum presence_reason reason)
{
    struct rec_copy cur = {0};
    presence_get(hb->view, org, user, copy_member, &cur);
    if (!cur.found)
        return;
    int manual = cur.m.manual;
    int st = !c->present ? PRESENCE_OFFLINE
             : manual != PRESENCE_UNSET ? manual
                                        : (int)c->auto_status;
    struct presence_member nm = cur.m;
    nm.name = c->name;
    nm.status = (enum presence_status)st;
    nm.nconns = c->nconns;
    if (manual != PRESENCE_OFFLINE && c->last_seen_ms > nm.last_seen_ms)
        nm.last_seen_ms = c->last_seen_ms;
    if (st == (int)cur.m.status) {
        presence_mirror_set(hb->view, &nm, 0, 1);
        return;
    }
    note_gone(hb, org, user);
    struct presence_event ev = {.m = nm, .reason = reason};
    ev.seq = presence_org_seq(hb->view, org) + 1;
    presence_mirror_set(hb->view, &nm, ev.seq, 1);
    buf_reset(&enc);
    msg_encode_presence(&enc, &ev);
    struct frame *f = frame_new_text(enc.data, enc.len);
    hub_publish(hb, org, user, f);
    frame_unref(f);
}

static void on_touch(void *ud, const char *org, const char *user,
                     enum presence_reason reason)
{
    struct hub *hb = ud;
    struct presence_contrib c;
    if (presence_contribution(hb->presence, org, user, &c, 1) != 0 ||
        !c.changed)
        return;
    struct rec_copy cur = {0};
    presence_get(hb->view, org, user, copy_member, &cur);
    cluster_contribute(hb->cl, org, user, c.present, c.auto_status,
                       c.nconns, c.last_seen_ms, presence_reason_name(reason),
                       c.name, cur.found ? (int)cur.m.manual : -1);
    if (!hb->cl_up)
        local_event(hb, org, user, &c, reason);
}

static int cluster_set_manual(struct hub *hb, const char *org,
                              const char *user, int status)
{
    if (status != PRESENCE_ONLINE && status != PRESENCE_AWAY &&
        status != PRESENCE_BUSY && status != PRESENCE_OFFLINE)
        return PRESENCE_EINVAL;
    struct rec_copy cur = {0};
    presence_get(hb->view, org, user, copy_member, &cur);
    if (!cur.found)
        return PRESENCE_ENOENT;
    int m = status == PRESENCE_ONLINE ? PRESENCE_UNSET : status;
    cluster_manual(hb->cl, org, user, m, cur.m.name, hb->now);
    /* Known here at once (the user's own answers, the store); the status
     * it leads to comes back as the event. */
    struct presence_member nm = cur.m;
    nm.manual = (enum presence_status)m;
    if (!hb->cl_up) {
        struct presence_contrib c;
        presence_mirror_set(hb->view, &nm, 0, 1);
        presence_contribution(hb->presence, org, user, &c, 0);
        local_event(hb, org, user, &c, PRESENCE_R_MANUAL);
    } else {
        presence_mirror_set(hb->view, &nm, 0, 1);
    }
    hub_flush_store(hb);
    return 0;
}

static int valid_manual(int m)
{
    return m == PRESENCE_UNSET || m == PRESENCE_AWAY || m == PRESENCE_BUSY ||
           m == PRESENCE_OFFLINE;
}

static void apply_rec(struct hub *hb, const char *org,
                      const struct cluster_rec *r, uint64_t seq, int dirty)
{
    struct presence_member m = {
        .org = org, .user = r->user, .name = r->name,
        .status = (enum presence_status)r->status,
        .manual = (enum presence_status)(valid_manual(r->manual)
                                             ? r->manual
                                             : PRESENCE_UNSET),
        .last_seen_ms = r->last_seen_ms, .nconns = r->nconns,
    };
    presence_mirror_set(hb->view, &m, seq, dirty);
}

static void hold(struct hub_org *o, const struct cluster_event *ev, int self)
{
    if (o->nheld >= 10000)
        return; /* past that the next resync says it all */
    if (o->nheld == o->capheld) {
        o->capheld = o->capheld ? 2 * o->capheld : 16;
        o->held = xrealloc(o->held, o->capheld * sizeof *o->held);
    }
    struct held_event *h = &o->held[o->nheld++];
    h->seq = ev->seq;
    h->status = ev->r.status;
    h->manual = ev->r.manual;
    h->nconns = ev->r.nconns;
    h->last_seen = ev->r.last_seen_ms;
    h->self = self;
    h->user = xstrdup(ev->r.user);
    h->name = xstrdup(ev->r.name);
    h->frame = xmalloc(ev->frame_len + 1);
    memcpy(h->frame, ev->frame, ev->frame_len);
    h->frame[ev->frame_len] = '\0';
    h->frame_len = ev->frame_len;
}

static void ask_resync(struct hub *hb, struct hub_org *o)
{
    if (o->resyncing)
        return;
    o->resyncing = 1;
    cluster_resync(hb->cl, o->id);
}

/* Event seq of o, in order: applied to the view and sent to o's
 * connections; a gap asks for a resync and keeps the event. */
static void apply_event(struct hub *hb, struct hub_org *o,
                        const struct cluster_event *ev, int self)
{
    uint64_t cur = presence_org_seq(hb->view, o->id);
    if (ev->seq <= cur)
        return; /* already in the view */
    if (ev->seq != cur + 1) {
        log_info("cluster: %s: event %llu after %llu, resyncing", o->id,
                 (unsigned long long)ev->seq, (unsigned long long)cur);
        hold(o, ev, self);
        ask_resync(hb, o);
        return;
    }
    apply_rec(hb, o->id, &ev->r, ev->seq, self);
    struct frame *f = frame_new_text(ev->frame, ev->frame_len);
    hub_publish(hb, o->id, ev->r.user, f);
    frame_unref(f);
    /* A manual status this node set is written at once, as on one node. */
    if (self && memmem(ev->frame, ev->frame_len, "\"reason\":\"manual\"", 17))
        hub_flush_store(hb);
}

static void cb_event(void *ud, const struct cluster_event *ev)
{
    struct hub *hb = ud;
    hub_lock(hb);
    struct hub_org *o = org_get(hb, ev->org, 1);
    int self = strcmp(ev->origin, hb->node) == 0;
    if (ev->seq == 0) {
        apply_rec(hb, ev->org, &ev->r, 0, self);
        if (self)
            hub_flush_store(hb);
    } else if (o->resyncing) {
        hold(o, ev, self);
    } else {
        apply_event(hb, o, ev, self);
    }
    hub_unlock(hb);
}

static void cb_kick(void *ud, const char *org, const char *user,
                    uint64_t session)
{
    struct hub *hb = ud;
    hub_lock(hb);
    struct hub_org *o = org_get(hb, org, 0);
    if (o)
        for (unsigned i = 0; i < hb->nloops; i++)
            session_conns(o, i, user, session, 0);
    presence_logout(hb->presence, org, user, session, hb->now);
    if (o) {
        struct post p = {.kind = POST_END_SESSION, .o = o,
                         .user = (char *)user, .session = session};
        post_all(hb, &p);
    }
    hub_unlock(hb);
}

/* The users a resync did not name: OFFLINE (Redis holds every user it
 * has heard of; one it has not is nowhere). */
struct seen {
    const char *id;
    UT_hash_handle hh;
};

struct unnamed_ctx {
    struct seen *seen;
    char **users;
    size_t n, cap;
};

static void collect_unnamed(void *ud, const struct presence_member *m)
{
    struct unnamed_ctx *x = ud;
    struct seen *s;
    HASH_FIND_STR(x->seen, m->user, s);
    if (s || (m->status == PRESENCE_OFFLINE && m->nconns == 0))
        return;
    if (x->n == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 16;
        x->users = xrealloc(x->users, x->cap * sizeof *x->users);
    }
    x->users[x->n++] = xstrdup(m->user);
}

static int held_cmp(const void *a, const void *b)
{
    const struct held_event *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void cb_resync(void *ud, const char *org, uint64_t seq,
                      const struct cluster_rec *recs, size_t n)
{
    struct hub *hb = ud;
    hub_lock(hb);
    struct hub_org *o = org_get(hb, org, 1);
    /* Whether the clients' view moves: if not (a reconnect after a blip,
     * nothing missed), no snapshot goes out. */
    int changed = !o->synced || presence_org_seq(hb->view, org) != seq;
    struct seen *seen = NULL, *sv = xcalloc(n ? n : 1, sizeof *sv);
    for (size_t i = 0; i < n; i++) {
        sv[i].id = recs[i].user;
        HASH_ADD_KEYPTR(hh, seen, sv[i].id, strlen(sv[i].id), &sv[i]);
        if (!changed) {
            struct rec_copy cur = {0};
            presence_get(hb->view, org, recs[i].user, copy_member, &cur);
            changed = !cur.found || (int)cur.m.status != recs[i].status ||
                      (int)cur.m.manual != recs[i].manual ||
                      cur.m.nconns != recs[i].nconns ||
                      cur.m.last_seen_ms < recs[i].last_seen_ms ||
                      strcmp(cur.m.name, recs[i].name) != 0;
        }
        apply_rec(hb, org, &recs[i], 0, 0);
    }
    struct unnamed_ctx x = {.seen = seen};
    presence_each(hb->view, org, collect_unnamed, &x);
    for (size_t i = 0; i < x.n; i++) {
        struct rec_copy cur = {0};
        presence_get(hb->view, org, x.users[i], copy_member, &cur);
        cur.m.status = PRESENCE_OFFLINE;
        cur.m.nconns = 0;
        presence_mirror_set(hb->view, &cur.m, 0, 0);
        free(x.users[i]);
        changed = 1;
    }
    free(x.users);
    HASH_CLEAR(hh, seen);
    free(sv);
    presence_mirror_org(hb->view, org, seq);
    o->synced = 1;
    o->resyncing = 0;
    /* docs/protocol.md: a snapshot may come at any time; this one is the
     * truth as of seq, and what follows it continues from there. */
    frame_unref(o->snap);
    o->snap = NULL;
    int any = 0;
    for (unsigned i = 0; i < hb->nloops; i++)
        any |= o->nconns[i] != 0;
    if (any && changed) {
        buf_reset(&enc);
        msg_snapshot_begin(&enc, seq);
        presence_each(hb->view, org, on_member, &enc);
        msg_snapshot_end(&enc);
        struct frame *f = frame_new_text(enc.data, enc.len);
        struct post p = {.kind = POST_SNAPSHOT, .o = o, .f = f};
        post_all(hb, &p);
        frame_unref(f);
    }
    /* What came meanwhile, in order (a new gap asks again). */
    struct held_event *h = o->held;
    size_t nh = o->nheld;
    o->held = NULL;
    o->nheld = o->capheld = 0;
    int dropped = 0;
    if (nh)
        qsort(h, nh, sizeof *h, held_cmp);
    for (size_t i = 0; i < nh; i++) {
        struct cluster_event ev = {
            .org = org, .seq = h[i].seq, .frame = h[i].frame,
            .frame_len = h[i].frame_len,
            .r = {.user = h[i].user, .name = h[i].name,
                  .status = h[i].status, .manual = h[i].manual,
                  .nconns = h[i].nconns, .last_seen_ms = h[i].last_seen},
        };
        /* Applied while they follow on. One still past a gap is dropped,
         * not held again (a bogus seq far ahead would resync forever),
         * and one more resync is asked for, once: if the event is real,
         * that one's records have it. */
        uint64_t cur = presence_org_seq(hb->view, org);
        if (h[i].seq == cur + 1 && !o->resyncing) {
            apply_event(hb, o, &ev, h[i].self);
        } else if (h[i].seq > cur + 1 && !o->resyncing) {
            log_warn("cluster: %s: event %llu is past the resync (%llu)%s",
                     org, (unsigned long long)h[i].seq,
                     (unsigned long long)cur,
                     o->retried ? ": dropped" : ": resyncing again");
            if (!o->retried) {
                o->retried = 1;
                ask_resync(hb, o);
            }
            dropped = 1;
        }
        free(h[i].user);
        free(h[i].name);
        free(h[i].frame);
    }
    free(h);
    if (!dropped)
        o->retried = 0;
    hub_unlock(hb);
}

static void cb_claim(void *ud, const char *org, const char *user,
                     int auto_status)
{
    struct hub *hb = ud;
    hub_lock(hb);
    if (auto_status < PRESENCE_OFFLINE || auto_status > PRESENCE_ONLINE)
        auto_status = PRESENCE_ONLINE;
    presence_restore(hb->presence, org, user,
                     (enum presence_status)auto_status, hb->now);
    hub_unlock(hb);
}

static void sync_member(void *ud, const struct presence_member *m)
{
    struct hub *hb = ud;
    struct presence_contrib c;
    if (presence_contribution(hb->presence, m->org, m->user, &c, 1) != 0 ||
        !c.present)
        return;
    struct rec_copy cur = {0};
    presence_get(hb->view, m->org, m->user, copy_member, &cur);
    cluster_sync_add(hb->cl, m->org, m->user, 1, c.auto_status, c.nconns,
                     c.last_seen_ms, c.name,
                     cur.found ? (int)cur.m.manual : -1);
}

static void note_org(void *ud, const struct presence_member *m)
{
    struct hub *hb = ud;
    org_get(hb, m->org, 1);
}

static void cb_up(void *ud, int first, const char *const *orgs, size_t n)
{
    struct hub *hb = ud;
    hub_lock(hb);
    hb->cl_up = 1;
    /* Every organization the view or Redis knows. */
    presence_each_all(hb->view, note_org, hb);
    for (size_t i = 0; i < n; i++)
        org_get(hb, orgs[i], 1);
    struct hub_org *o, *t;
    if (!first) {
        /* docs/cluster.md "Failures": everything this node holds, and
         * its clients' seq of each organization as a floor. */
        cluster_sync_begin(hb->cl);
        presence_each_all(hb->presence, sync_member, hb);
        for (size_t i = 0; i < hb->ngone; i++) {
            const char *org = hb->gone[i], *user = org + strlen(org) + 1;
            struct presence_contrib c;
            struct rec_copy cur = {0};
            presence_get(hb->view, org, user, copy_member, &cur);
            if (presence_contribution(hb->presence, org, user, &c, 0) == 0 &&
                !c.present && cur.found)
                cluster_sync_add(hb->cl, org, user, 0, PRESENCE_OFFLINE, 0,
                                 cur.m.last_seen_ms, c.name,
                                 (int)cur.m.manual);
        }
        HASH_ITER(hh, hb->orgs, o, t) {
            uint64_t seq = presence_org_seq(hb->view, o->id);
            if (seq)
                cluster_sync_floor(hb->cl, o->id, seq);
        }
        cluster_sync_end(hb->cl);
    }
    for (size_t i = 0; i < hb->ngone; i++)
        free(hb->gone[i]);
    hb->ngone = 0;
    HASH_ITER(hh, hb->orgs, o, t) {
        o->resyncing = 0;
        ask_resync(hb, o);
    }
    hub_unlock(hb);
}

static void cb_down(void *ud)
{
    struct hub *hb = ud;
    hub_lock(hb);
    hb->cl_up = 0;
    /* Events held for a resync that will not come: the one after the
     * reconnect covers them. */
    struct hub_org *o, *t;
    HASH_ITER(hh, hb->orgs, o, t) {
        drop_held(o);
        o->resyncing = 0;
    }
    hub_unlock(hb);
}

void hub_login_failed(struct hub *hb, const char *ipkey,
                      const char *emailkey)
{
    if (!hb->cl)
        return;
    const char *keys[2] = {ipkey, emailkey};
    cluster_count(hb->cl, keys, 2);
}

void hub_set_session_hook(struct hub *hb, hub_session_cb *cb, void *ud)
{
    hb->session_cb = cb;
    hb->session_ud = ud;
}

void hub_session_changed(struct hub *hb, int add, int64_t id,
                         const unsigned char *hash, const char *org,
                         const char *user, int64_t expires_ms)
{
    if (hb->cl)
        cluster_session(hb->cl, add, id, hash, org, user, expires_ms, NULL,
                        NULL);
}

struct told {
    struct hub *hb;
    unsigned loop;
    hub_done_cb *then;
    void *arg;
};

/* On loop 0, no lock: Redis answered (or the message was dropped). */
static void session_acked(void *arg)
{
    struct told *t = arg;
    struct hub *hb = t->hb;
    hub_lock(hb);
    struct hub_loop *hl = &hb->loops[t->loop];
    struct post p = {.kind = POST_CALL, .call = t->then, .arg = t->arg};
    if (hl->lp == loop_current()) {
        t->then(t->arg);
    } else if (!hl->closed) {
        if (hl->nposts == hl->capposts) {
            hl->capposts = hl->capposts ? hl->capposts * 2 : 64;
            hl->posts = xrealloc(hl->posts, hl->capposts * sizeof *hl->posts);
        }
        hl->posts[hl->nposts++] = p;
        if (hl->nposts == 1)
            loop_wake(hl->lp);
    }
    hub_unlock(hb);
    free(t);
}

/* A waiter for then(arg) back on the calling loop, or NULL when there is
 * nothing to wait for (no cluster, not on a loop of ours). */
static struct told *told_new(struct hub *hb, hub_done_cb *then, void *arg)
{
    struct loop *lp = loop_current();
    unsigned i = lp ? loop_id(lp) : 0;
    if (!hb->cl || !lp || i >= hb->nloops || hb->loops[i].lp != lp)
        return NULL;
    struct told *t = xmalloc(sizeof *t);
    *t = (struct told){hb, i, then, arg};
    return t;
}

void hub_barrier_then(struct hub *hb, hub_done_cb *then, void *arg)
{
    struct told *t = told_new(hb, then, arg);
    if (!t)
        then(arg);
    else
        cluster_barrier(hb->cl, session_acked, t);
}

void hub_session_changed_then(struct hub *hb, int64_t id,
                              const unsigned char *hash, const char *org,
                              const char *user, int64_t expires_ms,
                              hub_done_cb *then, void *arg)
{
    struct told *t = told_new(hb, then, arg);
    if (!t)
        then(arg);
    else
        cluster_session(hb->cl, 1, id, hash, org, user, expires_ms,
                        session_acked, t);
}

static void cb_session(void *ud, int add, int64_t id,
                       const unsigned char hash[32], const char *org,
                       const char *user, int64_t expires_ms)
{
    struct hub *hb = ud;
    hub_lock(hb);
    if (hb->session_cb)
        hb->session_cb(hb->session_ud, add, id, hash, org, user, expires_ms);
    if (!add && org[0] && user[0])
        hub_revoke_session(hb, org, user, (uint64_t)id);
    hub_unlock(hb);
}

static void cb_count(void *ud, const char *key)
{
    struct hub *hb = ud;
    hub_lock(hb);
    rate_add(hb->rates, key, hb->cfg.login_window_ms, hb->now);
    hub_unlock(hb);
}

static unsigned cb_nconns(void *ud)
{
    struct hub *hb = ud;
    unsigned n = 0;
    hub_lock(hb);
    for (unsigned i = 0; i < hb->nloops; i++)
        n += hb->loops[i].nconns;
    hub_unlock(hb);
    return n;
}

void hub_cluster_callbacks(struct cluster_callbacks *cb)
{
    *cb = (struct cluster_callbacks){
        .on_event = cb_event, .on_kick = cb_kick, .on_resync = cb_resync,
        .on_claim = cb_claim, .on_up = cb_up, .on_down = cb_down,
        .on_count = cb_count, .on_session = cb_session,
        .nconns = cb_nconns,
    };
}

void hub_set_cluster(struct hub *hb, struct cluster *cl)
{
    hb->cl = cl;
    snprintf(hb->node, sizeof hb->node, "%s", cluster_node(cl));
}

const char *hub_cluster_state(const struct hub *hb)
{
    if (!hb->cl)
        return NULL;
    return hb->cl_up ? "ok" : "degraded";
}

const char *hub_node(const struct hub *hb) { return hb->node; }
