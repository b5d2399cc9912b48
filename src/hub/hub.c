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

#include "net/server.h"
#include "presence/msg.h"
#include "presence/presence.h"
#include "store/store.h"
#include "util/log.h"
#include "util/rate.h"
#include "util/xalloc.h"
#include "ws/frame.h"
#include "ws/ws.h"

/* One encoding buffer per thread: events and snapshots are built here and
 * copied once into their frame. A per-thread cache, not state of the
 * server's: nothing in it outlives the call that fills it. */
static _Thread_local struct buf enc;

/* What one loop hands another (struct post). */
enum post_kind {
    POST_EVENT,       /* f about user: org-wide receivers, and subscribers
                         as hub_publish() says */
    POST_SUBSCRIBERS, /* f to the org's subscribers (online count) */
    POST_END_SESSION, /* close user's connections of session (logout) */
};

/* Pending store writes that failed, kept for the next flush (the store may
 * be locked or full for a while; presence keeps serving from memory), in
 * server.pw. */
struct pending_write {
    char *org, *user;
    int status, manual;
    int64_t last_seen;
};

/* An empty list per loop. */
static struct list *lists_new(struct server *srv)
{
    struct list *l = xcalloc(srv->nloops, sizeof *l);
    for (unsigned i = 0; i < srv->nloops; i++)
        list_init(&l[i]);
    return l;
}

static struct hub_org *org_get(struct server *srv, const char *id, int create)
{
    struct hub_org *o;
    HASH_FIND_STR(srv->orgs, id, o);
    if (!o && create) {
        o = xcalloc(1, sizeof *o);
        o->id = xstrdup(id);
        o->conns = lists_new(srv);
        o->subscribers = lists_new(srv);
        o->nconns = xcalloc(srv->nloops, sizeof *o->nconns);
        list_init(&o->online_link);
        o->synced_version = -1; /* never synced */
        HASH_ADD_KEYPTR(hh, srv->orgs, o->id, strlen(o->id), o);
    }
    return o;
}

static int is_large(struct server *srv, const char *org)
{
    return presence_org_size(srv->presence, org, NULL) >=
           (unsigned)srv->cfg.large_org;
}

static void send_list(struct list *l, struct frame *f)
{
    struct list *pos, *tmp;
    list_each_safe(pos, tmp, l) {
        struct conn *c = list_entry(pos, struct conn, org_link);
        if (c->state == CONN_WS)
            conn_send(c, f);
    }
}

static struct watch *watch_new(struct server *srv, const char *user)
{
    struct watch *w = xcalloc(1, sizeof *w);
    w->user = xstrdup(user);
    w->subs = lists_new(srv);
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
            struct conn *c = list_entry(pos, struct conn, org_link);
            if (c->session_id != session || strcmp(c->user, user) != 0)
                continue;
            if (close)
                ws_close(c, WS_CLOSE_POLICY, "logged out");
            else
                c->pc = NULL;
        }
    }
}

/* Carries out a post on lp's own connections (lp's thread, lock held). */
static void run_post(struct loop *lp, const struct post *p)
{
    struct server *srv = lp->srv;
    struct hub_org *o = p->o;
    switch (p->kind) {
    case POST_EVENT:
        send_list(&o->conns[lp->id], p->f);
        if (list_empty(&o->subscribers[lp->id]))
            break;
        if (!is_large(srv, o->id)) {
            send_list(&o->subscribers[lp->id], p->f);
            break;
        }
        struct watch *w;
        HASH_FIND_STR(o->watches, p->user, w);
        if (w) {
            struct list *pos, *tmp;
            list_each_safe(pos, tmp, &w->subs[lp->id]) {
                struct sub *s = list_entry(pos, struct sub, watch_link);
                if (s->c->state == CONN_WS)
                    conn_send(s->c, p->f);
            }
        }
        break;
    case POST_SUBSCRIBERS:
        send_list(&o->subscribers[lp->id], p->f);
        break;
    case POST_END_SESSION:
        session_conns(o, lp->id, p->user, p->session, 1);
        break;
    }
}

/* Does p on every loop with a connection in p->o: at once on this
 * thread's loop, posted to the others. A loop
 * runs its posts whenever it takes the lock, before anything else, so
 * what it sends keeps the order in which events were made. */
static void post_all(struct server *srv, const struct post *p)
{
    struct loop *me = loop_current();
    for (unsigned i = 0; i < srv->nloops; i++) {
        struct loop *lp = srv->loops[i];
        if (!p->o->nconns[i])
            continue;
        if (lp == me) {
            run_post(lp, p);
            continue;
        }
        if (lp->nposts == lp->capposts) {
            lp->capposts = lp->capposts ? lp->capposts * 2 : 64;
            lp->posts = xrealloc(lp->posts, lp->capposts * sizeof *lp->posts);
        }
        struct post *q = &lp->posts[lp->nposts++];
        *q = *p;
        q->user = p->user ? xstrdup(p->user) : NULL;
        if (q->f)
            frame_ref(q->f);
        if (lp->nposts == 1)
            loop_wake(lp);
    }
}

void hub_run_posts(struct loop *lp)
{
    /* Posts made while these run (a close announcing a disconnect) are
     * for other loops or run at once; none is added to lp's own list. */
    for (size_t i = 0; i < lp->nposts; i++) {
        struct post *p = &lp->posts[i];
        run_post(lp, p);
        frame_unref(p->f);
        free(p->user);
    }
    lp->nposts = 0;
    if (lp->capposts > 1024) {
        free(lp->posts);
        lp->posts = NULL;
        lp->capposts = 0;
    }
}

/* Queues frame f, an event about user, to every connection of org that
 * should see it: org-wide receivers always; subscribers too in a small
 * organization, and in a large one only those who follow the user. This
 * is the one place that says "announce this to organization X". */
static void hub_publish(struct server *srv, const char *org,
                        const char *user, struct frame *f)
{
    struct hub_org *o = org_get(srv, org, 0);
    if (!o)
        return;
    struct post p = {.kind = POST_EVENT, .o = o, .user = (char *)user,
                     .f = f};
    post_all(srv, &p);
    if (o->nsubscribers && is_large(srv, org) &&
        !list_linked(&o->online_link))
        list_insert_tail(&srv->online_dirty, &o->online_link);
}

static void on_announce(void *ud, const struct presence_event *ev)
{
    struct server *srv = ud;
    buf_reset(&enc);
    msg_encode_presence(&enc, ev);
    struct frame *f = frame_new_text(enc.data, enc.len);
    hub_publish(srv, ev->m.org, ev->m.user, f);
    frame_unref(f);
    log_debug("presence %s/%s %s (%s) seq %llu", ev->m.org, ev->m.user,
              presence_status_name(ev->m.status),
              presence_reason_name(ev->reason),
              (unsigned long long)ev->seq);
}

void hub_send_online(struct server *srv)
{
    struct list *pos, *tmp;
    list_each_safe(pos, tmp, &srv->online_dirty) {
        struct hub_org *o = list_entry(pos, struct hub_org, online_link);
        list_remove(pos);
        unsigned online;
        presence_org_size(srv->presence, o->id, &online);
        if (online == o->online_sent || !o->nsubscribers)
            continue;
        o->online_sent = online;
        buf_reset(&enc);
        msg_encode_online(&enc, online,
                          presence_org_seq(srv->presence, o->id));
        struct frame *f = frame_new_text(enc.data, enc.len);
        struct post p = {.kind = POST_SUBSCRIBERS, .o = o, .f = f};
        post_all(srv, &p);
        frame_unref(f);
    }
}

/* ---- subscriptions ---------------------------------------------------- */

static struct sub *find_sub(struct conn *c, struct watch *w)
{
    /* Walk the shorter of the two lists. */
    struct list *pos;
    unsigned n = 0;
    list_each(pos, &w->subs[c->lp->id]) {
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

static void drop_subs(struct conn *c)
{
    struct hub_org *o = org_get(c->srv, c->org, 0);
    struct list *pos, *tmp;
    list_each_safe(pos, tmp, &c->subs) {
        drop_sub(o, list_entry(pos, struct sub, conn_link));
    }
}

/* Moves c from the org-wide list to the subscribers. */
static void make_subscriber(struct conn *c, struct hub_org *o)
{
    if (c->subscriber)
        return;
    c->subscriber = 1;
    list_remove(&c->org_link);
    list_insert_tail(&o->subscribers[c->lp->id], &c->org_link);
    o->nsubscribers++;
}

static void on_load(void *ud, const struct store_user *u)
{
    struct server *srv = ud;
    presence_add_user(srv->presence, u->org, u->id, u->name, u->status,
                      u->manual, u->last_seen_ms, srv->now);
}

int hub_init(struct server *srv)
{
    buf_init(&enc, 0);
    struct presence_opts o = {
        .grace_ms = srv->cfg.grace_ms,
        .login_grace_ms = srv->cfg.login_grace_ms,
        .restart_grace_ms = srv->cfg.restart_grace_ms,
    };
    srv->presence = presence_new(&o, on_announce, srv);
    srv->ping = frame_new(WSLAY_PING, "", 0);
    /* Users stored as not OFFLINE start in a restore window: after a
     * crash they go OFFLINE unless they reconnect (docs/protocol.md). */
    if (store_user_each(srv->store, NULL, on_load, srv) != 0)
        return -1;
    return 0;
}

static void send_text(struct conn *c, const struct buf *b)
{
    struct frame *f = frame_new_text(b->data, b->len);
    conn_send(c, f);
    frame_unref(f);
}

static void send_error(struct conn *c, const char *code, const char *message)
{
    buf_reset(&enc);
    msg_encode_error(&enc, code, message);
    send_text(c, &enc);
}

static void on_self(void *ud, const struct presence_member *m)
{
    struct msg_hello *h = ud;
    h->status = m->status;
    h->manual = m->manual;
    h->name = m->name;
    buf_reset(&enc);
    msg_encode_hello(&enc, h);
}

static void on_member(void *ud, const struct presence_member *m)
{
    msg_snapshot_member(&enc, m);
}

static void on_load_missing(void *ud, const struct store_user *u)
{
    struct server *srv = ud;
    if (presence_get(srv->presence, u->org, u->id, NULL, NULL) != 0)
        on_load(ud, u);
}

void hub_sync_org(struct server *srv, const char *org)
{
    /* Users added by the CLI while we run are only in the database. Only
     * another process's commit can have added any, and SQLite's
     * data_version says whether one happened: a connect costs no count
     * of the organization unless it did. */
    struct hub_org *o = org_get(srv, org, 1);
    int64_t v = store_data_version(srv->store);
    if (v >= 0 && v == o->synced_version)
        return;
    int n = store_user_count(srv->store, org);
    if (n >= 0 && (unsigned)n != presence_org_size(srv->presence, org, NULL))
        store_user_each(srv->store, org, on_load_missing, srv);
    o->synced_version = v;
}

void hub_attach(struct conn *c)
{
    static const enum presence_status idle[] = {
        PRESENCE_ONLINE, PRESENCE_AWAY, PRESENCE_OFFLINE, PRESENCE_OFFLINE,
    };
    struct server *srv = c->srv;
    /* Connect before joining the organization's list: the snapshot then
     * includes this connection's own change, and the event (seq N) goes
     * only to the others. The connection opens with the page's idle state
     * (?auto=), so that event is already the settled result. */
    c->pc = presence_connect(srv->presence, c->org, c->user, c->session_id,
                             idle[c->idle_at_connect], srv->now);
    if (!c->pc) {
        c->org = c->user = NULL; /* the caller's strings */
        ws_close(c, WS_CLOSE_INTERNAL, "unknown user");
        return;
    }
    c->org = presence_conn_org(c->pc);
    c->user = presence_conn_user(c->pc);
    struct msg_hello h = {
        .user = c->user, .org = c->org,
        .heartbeat_s = srv->cfg.heartbeat_ms / 1000,
        .away_after_s = srv->cfg.away_after_ms / 1000,
        .offline_after_s = srv->cfg.offline_after_ms / 1000,
        .max_msg = srv->cfg.max_msg,
    };
    if (h.heartbeat_s < 1)
        h.heartbeat_s = 1;
    presence_get(srv->presence, c->org, c->user, on_self, &h);
    send_text(c, &enc);

    struct hub_org *o = org_get(srv, c->org, 1);
    hub_sync_org(srv, c->org);
    uint64_t seq = presence_org_seq(srv->presence, c->org);
    unsigned online, nusers = presence_org_size(srv->presence, c->org,
                                                &online);
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
            presence_each(srv->presence, c->org, on_member, NULL);
            msg_snapshot_end(&enc);
            o->snap = frame_new_text(enc.data, enc.len);
            o->snap_seq = seq;
            o->snap_users = nusers;
        }
        conn_send(c, o->snap);
    }

    list_insert_tail(c->subscriber ? &o->subscribers[c->lp->id]
                                   : &o->conns[c->lp->id],
                     &c->org_link);
    o->nconns[c->lp->id]++;
    if (c->subscriber)
        o->nsubscribers++;
    list_insert_tail(&c->lp->conns, &c->all_link);
    c->lp->nconns_ws++;
    srv->churn++;
}

void hub_detach(struct conn *c)
{
    struct server *srv = c->srv;
    server_lock(srv);
    if (list_linked(&c->org_link)) {
        list_remove(&c->org_link);
        struct hub_org *o = org_get(srv, c->org, 0);
        if (o) {
            o->nconns[c->lp->id]--;
            if (c->subscriber)
                o->nsubscribers--;
        }
        drop_subs(c);
    }
    if (list_linked(&c->all_link)) {
        list_remove(&c->all_link);
        c->lp->nconns_ws--;
        srv->churn++;
    }
    /* At shutdown connections close without a status change: the users
     * stay as they are in the store and get a restore window on restart,
     * so a deploy does not flap everyone OFFLINE and back. */
    if (c->pc && !srv->stopping)
        presence_disconnect(srv->presence, c->pc, srv->now, 0);
    c->pc = NULL;
    server_unlock(srv);
}

/* Collects a member's presence fields (for immediate writes). */
struct fields {
    int status, manual;
    int64_t last_seen;
};

static void get_fields(void *ud, const struct presence_member *m)
{
    struct fields *f = ud;
    f->status = m->status;
    f->manual = m->manual;
    f->last_seen = m->last_seen_ms;
}

int hub_set_manual(struct server *srv, const char *org, const char *user,
                   int status)
{
    int rc = presence_set_manual(srv->presence, org, user, status, srv->now);
    if (rc != 0)
        return rc;
    struct fields f;
    if (presence_get(srv->presence, org, user, get_fields, &f) == 0 &&
        store_user_set_presence(srv->store, org, user, f.status, f.manual,
                                f.last_seen) != 0)
        log_error("could not store manual status of %s/%s; kept in memory",
                  org, user);
    return 0;
}

struct sub_ctx {
    struct conn *c;
    struct hub_org *o;
    int over;
};

static void subscribe_member(void *ud, const struct presence_member *m)
{
    struct sub_ctx *x = ud;
    struct conn *c = x->c;
    struct watch *w;
    HASH_FIND_STR(x->o->watches, m->user, w);
    if (!w) {
        w = watch_new(c->srv, m->user);
        HASH_ADD_KEYPTR(hh, x->o->watches, w->user, strlen(w->user), w);
    } else if (find_sub(c, w)) {
        msg_snapshot_member(&enc, m); /* again: the client asked */
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
    list_insert_tail(&w->subs[c->lp->id], &s->watch_link);
    w->nsubs++;
    list_insert_tail(&c->subs, &s->conn_link);
    c->nsubs++;
    msg_snapshot_member(&enc, m);
}

/* docs/protocol.md "Subscriptions": answers with a partial snapshot of
 * the users subscribed to (unknown ids are left out, as are users of any
 * other organization: they are simply not found). */
static void subscribe(struct conn *c, const struct msg_in *m)
{
    struct server *srv = c->srv;
    struct hub_org *o = org_get(srv, c->org, 1);
    hub_sync_org(srv, c->org); /* members the CLI added since */
    struct sub_ctx x = {c, o, 0};
    make_subscriber(c, o);
    unsigned online;
    presence_org_size(srv->presence, c->org, &online);
    buf_reset(&enc);
    msg_snapshot_begin_partial(&enc, presence_org_seq(srv->presence, c->org),
                               online);
    for (size_t i = 0; i < m->nusers; i++)
        presence_get(srv->presence, c->org, m->users[i], subscribe_member,
                     &x);
    msg_snapshot_end(&enc);
    send_text(c, &enc);
    if (x.over)
        send_error(c, "too_many_subscriptions",
                   "at most 10000 subscriptions per connection");
}

static void unsubscribe(struct conn *c, const struct msg_in *m)
{
    struct hub_org *o = org_get(c->srv, c->org, 0);
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

void hub_on_message(struct conn *c, const char *data, size_t len,
                    int binary)
{
    struct server *srv = c->srv;
    if (binary) {
        send_error(c, "bad_message", "binary frames are not supported");
        return;
    }
    /* docs/security.md: messages per connection per second. A client over
     * it is told once per second; one far over it is cut off. */
    if (srv->now - c->msg_window >= 1000) {
        c->msg_window = srv->now;
        c->msg_count = 0;
    }
    if (++c->msg_count > (uint32_t)srv->cfg.msg_rate) {
        if (c->msg_count == (uint32_t)srv->cfg.msg_rate + 1)
            send_error(c, "rate_limited",
                       "too many messages; slow down");
        else if (c->msg_count > 10 * (uint32_t)srv->cfg.msg_rate)
            ws_close(c, WS_CLOSE_POLICY, "message rate limit");
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
        if (!hub_status_allowed(srv, c->org, c->user)) {
            send_error(c, "rate_limited",
                       "too many status changes; slow down");
            break;
        }
        if (m.is_auto)
            rc = presence_conn_auto(srv->presence, c->pc, m.status, srv->now);
        else
            rc = hub_set_manual(srv, c->org, c->user, m.status);
        if (rc != 0)
            send_error(c, "invalid_status", "status not allowed here");
        break;
    }
    msg_in_dispose(&m);
}

void hub_heartbeat(struct loop *lp)
{
    struct server *srv = lp->srv;
    int64_t dead = lp->now - lp->cfg.heartbeat_ms * 5 / 2;
    struct list *pos, *tmp;
    list_each_safe(pos, tmp, &lp->conns) {
        struct conn *c = list_entry(pos, struct conn, all_link);
        if (c->last_rx_ms < dead) {
            log_info("%s: %s/%s answered nothing for %lld ms, closing",
                     c->peer, c->org, c->user,
                     (long long)(lp->now - c->last_rx_ms));
            ws_close(c, WS_CLOSE_GOING_AWAY, "heartbeat timeout");
        } else if (c->state == CONN_WS) {
            conn_send(c, srv->ping);
        }
    }
}

static void collect_dirty(void *ud, const struct presence_member *m)
{
    struct server *srv = ud;
    if (srv->pw_len == srv->pw_cap) {
        srv->pw_cap = srv->pw_cap ? srv->pw_cap * 2 : 64;
        srv->pw = xrealloc(srv->pw, srv->pw_cap * sizeof *srv->pw);
    }
    srv->pw[srv->pw_len++] = (struct pending_write){
        xstrdup(m->org), xstrdup(m->user), m->status, m->manual,
        m->last_seen_ms,
    };
}

static void drop_pending_writes(struct server *srv)
{
    for (size_t i = 0; i < srv->pw_len; i++) {
        free(srv->pw[i].org);
        free(srv->pw[i].user);
    }
    srv->pw_len = 0;
}

void hub_flush_store(struct server *srv)
{
    presence_drain_dirty(srv->presence, collect_dirty, srv);
    struct pending_write *pw = srv->pw;
    if (!srv->pw_len)
        return;
    int rc = store_begin(srv->store);
    for (size_t i = 0; rc == 0 && i < srv->pw_len; i++) {
        rc = store_user_set_presence(srv->store, pw[i].org, pw[i].user,
                                     pw[i].status, pw[i].manual,
                                     pw[i].last_seen);
        if (rc == STORE_ENOENT || rc == STORE_EINVAL)
            rc = 0; /* user row gone: nothing to keep */
    }
    if (rc == 0)
        rc = store_commit(srv->store);
    if (rc != 0) {
        store_rollback(srv->store);
        log_error("store: could not write %zu presence rows (%s); will retry",
                  srv->pw_len, store_strerror(rc));
        return;
    }
    drop_pending_writes(srv);
}

int hub_sweep(struct server *srv, int64_t older_than_ms)
{
    int n = presence_sweep_stale(srv->presence, srv->now, older_than_ms);
    if (n > 0)
        log_info("reset %d stale statuses to OFFLINE", n);
    hub_flush_store(srv);
    store_session_purge(srv->store, srv->now);
    rate_prune(srv->rates, srv->now);
    return n;
}

void hub_end_session(struct server *srv, const char *org, const char *user,
                     uint64_t session_id)
{
    struct hub_org *o = org_get(srv, org, 0);
    if (o && session_id) /* presence_logout() below frees the handles */
        for (unsigned i = 0; i < srv->nloops; i++)
            session_conns(o, i, user, session_id, 0);
    /* docs/protocol.md: logout is OFFLINE at once, no grace, one event. */
    presence_logout(srv->presence, org, user, session_id, srv->now);
    if (o && session_id) {
        struct post p = {.kind = POST_END_SESSION, .o = o,
                         .user = (char *)user, .session = session_id};
        post_all(srv, &p);
    }
}

void hub_revoke_session(struct server *srv, const char *org,
                        const char *user, uint64_t session_id)
{
    struct hub_org *o = org_get(srv, org, 0);
    if (!o || !session_id)
        return;
    struct post p = {.kind = POST_END_SESSION, .o = o, .user = (char *)user,
                     .session = session_id};
    post_all(srv, &p);
}

int hub_status_allowed(struct server *srv, const char *org, const char *user)
{
    /* One budget per user, whichever way the changes come (WebSocket
     * frames on any of its connections, PUT /api/status): each one is
     * announced to the organization and may be written to the store. */
    char key[2 * STORE_ID_MAX + 16];
    snprintf(key, sizeof key, "status:%zu:%s/%s", strlen(org), org, user);
    return rate_add(srv->rates, key, 1000, srv->now) <= srv->cfg.status_rate;
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

int hub_ensure_user(struct server *srv, const char *org, const char *user,
                    const char *name)
{
    struct store_user u;
    struct name_check nc = {name, 0};
    /* The common case, a known user with an unchanged name, costs no
     * database read: a reconnect storm stays in memory. */
    if (presence_get(srv->presence, org, user, same_name, &nc) == 0 &&
        nc.same)
        return 0;
    int rc = store_user_get(srv->store, org, user, &u);
    if (rc == STORE_ENOENT) {
        rc = store_org_exists(srv->store, org);
        if (rc == 0)
            rc = store_org_add(srv->store, org, NULL);
        else if (rc == 1)
            rc = 0;
        if (rc == 0 || rc == STORE_EEXIST)
            rc = store_user_add(srv->store, org, user, NULL,
                                name && *name ? name : user, NULL, NULL);
        if (rc == STORE_EEXIST)
            rc = 0;
        if (rc != 0)
            return rc;
        log_info("provisioned user %s/%s from a token", org, user);
        rc = store_user_get(srv->store, org, user, &u);
        if (rc != 0)
            return rc;
    } else if (rc != 0) {
        return rc;
    } else if (name && *name && strcmp(name, u.name) != 0) {
        if (store_user_set_name(srv->store, org, user, name) == 0)
            snprintf(u.name, sizeof u.name, "%s", name);
        struct hub_org *o = org_get(srv, org, 0);
        if (o) { /* the cached snapshot shows the old name */
            frame_unref(o->snap);
            o->snap = NULL;
        }
    }
    /* For a known user this only refreshes the name. */
    return presence_add_user(srv->presence, org, user, u.name, u.status,
                             u.manual, u.last_seen_ms, srv->now);
}

void hub_drop_caches(struct server *srv)
{
    struct hub_org *o, *t;
    HASH_ITER(hh, srv->orgs, o, t) {
        frame_unref(o->snap);
        o->snap = NULL;
    }
}

void hub_shutdown(struct loop *lp)
{
    struct list *pos, *tmp;
    list_each_safe(pos, tmp, &lp->conns) {
        struct conn *c = list_entry(pos, struct conn, all_link);
        ws_close(c, WS_CLOSE_GOING_AWAY, "server shutting down");
    }
}

void hub_dispose(struct server *srv)
{
    struct hub_org *o, *t;
    HASH_ITER(hh, srv->orgs, o, t) {
        struct watch *w, *wt;
        HASH_ITER(hh, o->watches, w, wt) {
            struct list *pos, *tmp;
            for (unsigned i = 0; i < srv->nloops; i++)
                list_each_safe(pos, tmp, &w->subs[i]) {
                    free(list_entry(pos, struct sub, watch_link));
                }
            w->nsubs = 0;
            watch_release(o, w);
        }
        HASH_DEL(srv->orgs, o);
        frame_unref(o->snap);
        free(o->conns);
        free(o->subscribers);
        free(o->nconns);
        free(o->id);
        free(o);
    }
    drop_pending_writes(srv);
    free(srv->pw);
    srv->pw = NULL;
    srv->pw_cap = 0;
    presence_free(srv->presence);
    srv->presence = NULL;
    frame_unref(srv->ping);
    hub_thread_done();
}

void hub_thread_done(void)
{
    buf_dispose(&enc);
}
