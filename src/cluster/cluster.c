/* cluster.c - the node's two Redis connections (see cluster.h).
 *
 * Every change goes through the cluster script (cluster.lua, compiled in
 * as cluster_lua[] by tools/embed_lua.sh), loaded with SCRIPT LOAD on each
 * new connection and called with EVALSHA, whose SHA-1 is computed here so
 * that commands can follow the load in the same pipeline. Contributions
 * queued between two wakes of the loop go out as one call, in order.
 *
 * Liveness: a beat every quarter of node_ttl (at most every 250 ms) sets
 * this node's key and reaps the dead. A connection that leaves a command
 * unanswered for node_ttl (a Redis that is stopped, or a network that
 * dropped without a reset) is dropped and made again, so a node notices a
 * stuck Redis as well as a closed one. */
#include "cluster/cluster.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/adapters/libuv.h>
#include <openssl/sha.h>

#include "cluster/uri.h"
#include "util/log.h"
#include "util/xalloc.h"

extern const char cluster_lua[];
extern const size_t cluster_lua_len;

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 2000
#define CONTRIB_BATCH 256       /* groups per EVALSHA contrib */
#define HELD_MAX 10000          /* manual statuses kept while down */

/* An argument vector for redisAsyncCommandArgv (owned strings). */
struct argv {
    char **v;
    size_t *len;
    int n, cap;
};

static void argv_add(struct argv *a, const char *s, size_t n)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 16;
        a->v = xrealloc(a->v, (size_t)a->cap * sizeof *a->v);
        a->len = xrealloc(a->len, (size_t)a->cap * sizeof *a->len);
    }
    a->v[a->n] = xmalloc(n + 1);
    memcpy(a->v[a->n], s, n);
    a->v[a->n][n] = '\0';
    a->len[a->n++] = n;
}

static void argv_str(struct argv *a, const char *s)
{
    argv_add(a, s ? s : "", s ? strlen(s) : 0);
}

static void argv_int(struct argv *a, long long v)
{
    char b[32];
    int n = snprintf(b, sizeof b, "%lld", v);
    argv_add(a, b, (size_t)n);
}

static void argv_dispose(struct argv *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    free(a->len);
    memset(a, 0, sizeof *a);
}

/* What other threads queue for the loop. */
enum out_kind { OUT_CONTRIB, OUT_MANUAL, OUT_KICK, OUT_RESYNC, OUT_BARRIER };

/* A barrier waiting for its own message to come back. */
struct barrier {
    uint64_t token;
    void (*done)(void *arg);
    void *arg;
    struct barrier *next;
};

struct out {
    enum out_kind kind;
    void (*done)(void *arg);    /* OUT_KICK: when answered or dropped */
    void *done_arg;
    struct argv a;              /* contrib: its 9 fields; else the args */
    char *org;                  /* resync */
    struct out *next;
};

struct outq {
    struct out *head, **tail;
    size_t n;
};

struct cluster {
    uv_loop_t *loop;
    struct cluster_callbacks cb;
    void *ud;
    struct cluster_uri uri;
    char *name, *node, *listen, *prefix, *pattern, *counts;
    size_t prefix_len;
    int64_t ttl_ms, grace_ms, started_ms, beat_ms;
    char sha[41];

    redisAsyncContext *cmd, *sub;
    int cmd_ready, sub_ready;   /* script loaded / psubscribed */
    enum cluster_state state;
    int claimed;                /* the first connection's claim is done */
    unsigned beats;             /* answered since the last up() */
    int closing;
    int64_t backoff_ms;
    /* Watchdog: commands sent and not answered, and when one last was. */
    unsigned outstanding;
    uint64_t progress_at;       /* uv_now() */

    uv_async_t wake;
    uv_timer_t beat, retry;
    int handles;                /* open handles, for cluster_close() */

    pthread_mutex_t mu;         /* guards q */
    struct outq q;
    struct outq held;           /* manual statuses kept while down */

    struct barrier *barriers;   /* loop thread only */
    uint64_t barrier_seq;
    struct argv sync;           /* being built (cluster_sync_*) */
    int sync_floors;
};

static void connect_both(struct cluster *cl);
static void go_down(struct cluster *cl, const char *why,
                    const redisAsyncContext *dying);

/* ---- the queue -------------------------------------------------------- */

static void outq_push(struct outq *q, struct out *o)
{
    if (!q->tail)
        q->tail = &q->head;
    o->next = NULL;
    *q->tail = o;
    q->tail = &o->next;
    q->n++;
}

static struct out *outq_take(struct outq *q)
{
    struct out *h = q->head;
    q->head = NULL;
    q->tail = &q->head;
    q->n = 0;
    return h;
}

static void out_free(struct out *o)
{
    if (o->done) /* never sent: its waiter goes on */
        o->done(o->done_arg);
    argv_dispose(&o->a);
    free(o->org);
    free(o);
}

static void enqueue(struct cluster *cl, struct out *o)
{
    pthread_mutex_lock(&cl->mu);
    outq_push(&cl->q, o);
    int first = cl->q.n == 1;
    pthread_mutex_unlock(&cl->mu);
    if (first)
        uv_async_send(&cl->wake);
}

/* ---- commands --------------------------------------------------------- */

typedef void reply_cb(struct cluster *cl, redisReply *r, void *arg);

struct call {
    struct cluster *cl;
    reply_cb *fn;
    void *arg;
};

static void on_reply(redisAsyncContext *ac, void *reply, void *priv)
{
    struct call *c = priv;
    struct cluster *cl = c->cl;
    if (ac == cl->cmd && cl->outstanding) {
        cl->outstanding--;
        cl->progress_at = uv_now(cl->loop);
    }
    redisReply *r = reply;
    if (r && r->type == REDIS_REPLY_ERROR)
        log_warn("cluster: redis answered: %.200s", r->str);
    if (c->fn)
        c->fn(cl, r, c->arg);
    free(c);
}

/* Sends a; 0, or -1 if the connection is gone (a stays the caller's). */
static int send_argv(struct cluster *cl, struct argv *a, reply_cb *fn,
                     void *arg)
{
    if (!cl->cmd)
        return -1;
    struct call *c = xmalloc(sizeof *c);
    *c = (struct call){cl, fn, arg};
    if (redisAsyncCommandArgv(cl->cmd, on_reply, c, a->n,
                              (const char **)a->v, a->len) != REDIS_OK) {
        free(c);
        return -1;
    }
    if (cl->outstanding++ == 0)
        cl->progress_at = uv_now(cl->loop);
    return 0;
}

/* A new vector: EVALSHA sha 0 cmd prefix. */
static void script_argv(struct cluster *cl, struct argv *a, const char *cmd)
{
    memset(a, 0, sizeof *a);
    argv_str(a, "EVALSHA");
    argv_str(a, cl->sha);
    argv_str(a, "0");
    argv_str(a, cmd);
    argv_str(a, cl->prefix);
}

static void script(struct cluster *cl, struct argv *a, reply_cb *fn,
                   void *arg)
{
    send_argv(cl, a, fn, arg);
    argv_dispose(a);
}

/* ---- resync and claims ------------------------------------------------ */

static void resync_done(struct cluster *cl, redisReply *r, void *arg)
{
    char *org = arg;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_ARRAY) {
        uint64_t seq = strtoull(r->element[0]->type == REDIS_REPLY_STRING
                                    ? r->element[0]->str
                                    : "0",
                                NULL, 10);
        redisReply *h = r->element[1];
        size_t n = h->elements / 2, k = 0;
        struct cluster_rec *recs = xcalloc(n ? n : 1, sizeof *recs);
        for (size_t i = 0; i + 1 < h->elements; i += 2) {
            struct cluster_rec *x = &recs[k];
            const char *v = h->element[i + 1]->str;
            long long ls = 0;
            unsigned nc = 0;
            int off = 0;
            if (sscanf(v, "%d|%d|%lld|%u|%n", &x->status, &x->manual, &ls,
                       &nc, &off) != 4 || off <= 0)
                continue;
            x->user = h->element[i]->str;
            x->name = v + off;
            x->last_seen_ms = ls;
            x->nconns = nc;
            k++;
        }
        if (cl->cb.on_resync)
            cl->cb.on_resync(cl->ud, org, seq, recs, k);
        free(recs);
    }
    free(org);
}

static void up(struct cluster *cl, const char *const *orgs, size_t n)
{
    int first = cl->state == CLUSTER_STARTING;
    /* Contributions queued while down are older than what the owner is
     * about to push: drop them (the manual statuses stay, in order). */
    pthread_mutex_lock(&cl->mu);
    struct out *o = outq_take(&cl->q), *next;
    for (; o; o = next) {
        next = o->next;
        if (o->kind == OUT_MANUAL)
            outq_push(&cl->held, o);
        else
            out_free(o);
    }
    pthread_mutex_unlock(&cl->mu);
    if (cl->state != CLUSTER_UP)
        log_info("cluster: node %s connected to redis (%s)", cl->node,
                 first ? "joining" : "back, resyncing");
    cl->state = CLUSTER_UP;
    cl->backoff_ms = RETRY_MIN_MS;
    cl->beats = 0;
    if (cl->cb.on_up)
        cl->cb.on_up(cl->ud, first, orgs, n);
    /* What waited: after the owner's push, so Redis has the node's state
     * before these apply on top of it. */
    for (o = outq_take(&cl->held); o; o = next) {
        next = o->next;
        script(cl, &o->a, NULL, NULL);
        out_free(o);
    }
    uv_async_send(&cl->wake);
}

static void orgs_done(struct cluster *cl, redisReply *r, void *arg)
{
    (void)arg;
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return; /* the connection went: the next one tries again */
    const char **orgs = xcalloc(r->elements + 1, sizeof *orgs);
    size_t n = 0;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            orgs[n++] = r->element[i]->str;
    up(cl, orgs, n);
    free(orgs);
}

static void ask_orgs(struct cluster *cl)
{
    struct argv a;
    script_argv(cl, &a, "orgs");
    script(cl, &a, orgs_done, NULL);
}

static void claim_done(struct cluster *cl, redisReply *r, void *arg)
{
    (void)arg;
    if (!r || r->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i + 2 < r->elements; i += 3) {
        if (cl->cb.on_claim)
            cl->cb.on_claim(cl->ud, r->element[i]->str,
                            r->element[i + 1]->str,
                            atoi(r->element[i + 2]->str));
    }
    cl->claimed = 1;
    ask_orgs(cl);
}

/* Both connections are ready: claims (first time), then the orgs. */
static void both_ready(struct cluster *cl)
{
    if (!cl->cmd_ready || !cl->sub_ready)
        return;
    if (!cl->claimed) {
        struct argv a;
        script_argv(cl, &a, "claim");
        argv_str(&a, cl->node);
        script(cl, &a, claim_done, NULL);
        return;
    }
    ask_orgs(cl);
}

static void script_loaded(struct cluster *cl, redisReply *r, void *arg)
{
    (void)arg;
    if (!r || r->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(r->str, cl->sha) != 0)
        log_warn("cluster: redis gave the script another sha (%s)", r->str);
    cl->cmd_ready = 1;
    both_ready(cl);
}

/* ---- the subscription ------------------------------------------------- */

/* "E seq status manual nconns ls origin ulen nlen\n" user name frame, or
 * "U status ..." (no seq, no frame), or "K session ulen origin\n" user. */
static void on_message(struct cluster *cl, const char *org, const char *p,
                       size_t n)
{
    const char *nl = memchr(p, '\n', n);
    if (!nl || n < 2)
        return;
    size_t head = (size_t)(nl - p);
    char line[512];
    if (head >= sizeof line)
        return;
    memcpy(line, p, head);
    line[head] = '\0';
    const char *body = nl + 1;
    size_t blen = n - head - 1;
    if (p[0] == 'K') {
        unsigned long long session;
        size_t ulen;
        char origin[160];
        if (sscanf(line, "K %llu %zu %159s", &session, &ulen, origin) != 3 ||
            ulen > blen || strcmp(origin, cl->node) == 0)
            return; /* ours: closed where the logout happened */
        char *user = xmalloc(ulen + 1);
        memcpy(user, body, ulen);
        user[ulen] = '\0';
        if (cl->cb.on_kick)
            cl->cb.on_kick(cl->ud, org, user, session);
        free(user);
        return;
    }
    struct cluster_event ev = {.org = org};
    unsigned long long seq = 0;
    long long ls;
    size_t ulen, nlen;
    char origin[160];
    int got;
    if (p[0] == 'E')
        got = sscanf(line, "E %llu %d %d %u %lld %159s %zu %zu", &seq,
                     &ev.r.status, &ev.r.manual, &ev.r.nconns, &ls, origin,
                     &ulen, &nlen) == 8;
    else if (p[0] == 'U')
        got = sscanf(line, "U %d %d %u %lld %159s %zu %zu", &ev.r.status,
                     &ev.r.manual, &ev.r.nconns, &ls, origin, &ulen,
                     &nlen) == 7;
    else
        return;
    if (!got || ulen + nlen > blen || ulen == 0)
        return;
    char *user = xmalloc(ulen + 1), *name = xmalloc(nlen + 1);
    memcpy(user, body, ulen);
    user[ulen] = '\0';
    memcpy(name, body + ulen, nlen);
    name[nlen] = '\0';
    ev.r.user = user;
    ev.r.name = name;
    ev.r.last_seen_ms = ls;
    ev.origin = origin;
    ev.seq = seq;
    ev.frame = body + ulen + nlen;
    ev.frame_len = blen - ulen - nlen;
    if (cl->cb.on_event)
        cl->cb.on_event(cl->ud, &ev);
    free(user);
    free(name);
}

/* "S <origin> <add> <id> <expires> <olen> <ulen>\n" hash[32] org user. */
static void on_session_msg(struct cluster *cl, const char *p, size_t n)
{
    char origin[160];
    int add, off = 0;
    long long id, exp;
    size_t olen, ulen;
    if (sscanf(p, "S %159s %d %lld %lld %zu %zu%n", origin, &add, &id, &exp,
               &olen, &ulen, &off) != 6 ||
        strcmp(origin, cl->node) == 0 || (size_t)off >= n || p[off] != '\n')
        return;
    const char *b = p + off + 1;
    if ((size_t)(b - p) + 32 + olen + ulen > n)
        return;
    char *org = xmalloc(olen + 1), *user = xmalloc(ulen + 1);
    memcpy(org, b + 32, olen);
    org[olen] = '\0';
    memcpy(user, b + 32 + olen, ulen);
    user[ulen] = '\0';
    if (cl->cb.on_session)
        cl->cb.on_session(cl->ud, add, id, (const unsigned char *)b, org,
                          user, exp);
    free(org);
    free(user);
}

/* "L <origin> <n>\n" then n keys, each "<len> <key>". */
static void on_counts(struct cluster *cl, const char *p, size_t n)
{
    char origin[160];
    unsigned nk;
    int off = 0;
    if (n > 2 && p[0] == 'S') {
        on_session_msg(cl, p, n);
        return;
    }
    if (n > 2 && p[0] == 'B') {
        unsigned long long token;
        char node[160];
        if (sscanf(p, "B %159s %llu", node, &token) != 2 ||
            strcmp(node, cl->node) != 0)
            return;
        for (struct barrier **b = &cl->barriers; *b; b = &(*b)->next) {
            if ((*b)->token != token)
                continue;
            struct barrier *x = *b;
            *b = x->next;
            x->done(x->arg);
            free(x);
            return;
        }
        return;
    }
    if (n < 2 || p[0] != 'L' ||
        sscanf(p, "L %159s %u%n", origin, &nk, &off) != 2 ||
        strcmp(origin, cl->node) == 0 || (size_t)off >= n ||
        p[off] != '\n')
        return; /* our own were counted where they happened */
    size_t i = (size_t)off + 1;
    for (unsigned k = 0; k < nk && i < n; k++) {
        size_t len = 0;
        int used = 0;
        if (sscanf(p + i, "%zu %n", &len, &used) != 1 || used <= 0 ||
            i + (size_t)used + len > n)
            return;
        i += (size_t)used;
        char *key = xmalloc(len + 1);
        memcpy(key, p + i, len);
        key[len] = '\0';
        if (cl->cb.on_count)
            cl->cb.on_count(cl->ud, key);
        free(key);
        i += len;
    }
}

static void on_sub(redisAsyncContext *ac, void *reply, void *priv)
{
    struct cluster *cl = priv;
    redisReply *r = reply;
    (void)ac;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3)
        return;
    const char *type = r->element[0]->str;
    if (strcmp(type, "psubscribe") == 0) {
        cl->sub_ready = 1;
        both_ready(cl);
        return;
    }
    if (strcmp(type, "message") == 0 && r->elements == 3) {
        on_counts(cl, r->element[2]->str, r->element[2]->len);
        return;
    }
    if (strcmp(type, "pmessage") != 0 || r->elements != 4)
        return;
    redisReply *ch = r->element[2], *msg = r->element[3];
    /* The pattern is our prefix: the channel names the organization, and
     * an event goes only to that organization's connections. */
    if (ch->len <= cl->prefix_len + 2 ||
        memcmp(ch->str, cl->prefix, cl->prefix_len) != 0 ||
        memcmp(ch->str + cl->prefix_len, "e:", 2) != 0)
        return;
    on_message(cl, ch->str + cl->prefix_len + 2, msg->str, msg->len);
}

/* ---- connecting ------------------------------------------------------- */

static redisAsyncContext *open_one(struct cluster *cl)
{
    redisAsyncContext *ac =
        cl->uri.path[0] ? redisAsyncConnectUnix(cl->uri.path)
                        : redisAsyncConnect(cl->uri.host, cl->uri.port);
    if (!ac)
        return NULL;
    if (ac->err) {
        log_debug("cluster: cannot connect: %s", ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = cl;
    if (redisLibuvAttach(ac, cl->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        return NULL;
    }
    return ac;
}

/* A command sent first on a new connection, before any send_argv(). */
static void send_first(struct cluster *cl, redisAsyncContext *ac,
                       struct argv *a)
{
    struct call *c = xcalloc(1, sizeof *c);
    c->cl = cl;
    redisAsyncCommandArgv(ac, on_reply, c, a->n, (const char **)a->v,
                          a->len);
    if (ac == cl->cmd && cl->outstanding++ == 0)
        cl->progress_at = uv_now(cl->loop);
    argv_dispose(a);
}

static void auth_select(struct cluster *cl, redisAsyncContext *ac)
{
    struct argv a = {0};
    if (cl->uri.password[0]) {
        argv_str(&a, "AUTH");
        if (cl->uri.user[0])
            argv_str(&a, cl->uri.user);
        argv_str(&a, cl->uri.password);
        send_first(cl, ac, &a);
    }
    if (cl->uri.db) {
        argv_str(&a, "SELECT");
        argv_int(&a, cl->uri.db);
        send_first(cl, ac, &a);
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct cluster *cl = ac->data;
    if (ac != cl->cmd && ac != cl->sub)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        if (ac == cl->cmd)
            cl->cmd = NULL;
        if (ac == cl->sub)
            cl->sub = NULL;
        go_down(cl, ac->errstr, ac);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct cluster *cl = ac->data;
    if (ac != cl->cmd && ac != cl->sub)
        return; /* one we dropped ourselves */
    if (ac == cl->cmd)
        cl->cmd = NULL;
    if (ac == cl->sub)
        cl->sub = NULL;
    if (!cl->closing)
        go_down(cl, status == REDIS_OK ? "connection closed" : ac->errstr,
                ac);
}

static void retry_cb(uv_timer_t *t)
{
    struct cluster *cl = t->data;
    if (!cl->closing && !cl->cmd && !cl->sub)
        connect_both(cl);
}

/* Drops both connections and tries again after the backoff. dying: a
 * context whose own callback this is (hiredis frees it after). */
static void go_down(struct cluster *cl, const char *why,
                    const redisAsyncContext *dying)
{
    if (cl->closing)
        return;
    if (cl->state == CLUSTER_UP) {
        log_warn("cluster: node %s lost redis (%s): degraded, serving its "
                 "own clients",
                 cl->node, why ? why : "?");
        cl->state = CLUSTER_DOWN;
        if (cl->cb.on_down)
            cl->cb.on_down(cl->ud);
    } else if (cl->state == CLUSTER_STARTING && cl->backoff_ms ==
                                                    RETRY_MIN_MS) {
        log_warn("cluster: node %s cannot reach redis yet (%s); retrying",
                 cl->node, why ? why : "?");
    }
    cl->cmd_ready = cl->sub_ready = 0;
    cl->outstanding = 0;
    /* Nothing more will come back: the waiters go on. */
    while (cl->barriers) {
        struct barrier *x = cl->barriers;
        cl->barriers = x->next;
        x->done(x->arg);
        free(x);
    }
    /* Freed at once: a subscribed context would wait forever for its
     * replies to end before a graceful disconnect. Its callbacks see the
     * pointers cleared, and its pending replies come back NULL. */
    redisAsyncContext *c = cl->cmd, *s = cl->sub;
    cl->cmd = cl->sub = NULL;
    if (c && c != dying)
        redisAsyncFree(c);
    if (s && s != dying)
        redisAsyncFree(s);
    if (!uv_is_active((uv_handle_t *)&cl->retry)) {
        uv_timer_start(&cl->retry, retry_cb, (uint64_t)cl->backoff_ms, 0);
        cl->backoff_ms *= 2;
        if (cl->backoff_ms > RETRY_MAX_MS)
            cl->backoff_ms = RETRY_MAX_MS;
    }
}

static void connect_both(struct cluster *cl)
{
    cl->cmd = open_one(cl);
    cl->sub = cl->cmd ? open_one(cl) : NULL;
    if (!cl->cmd || !cl->sub) {
        go_down(cl, "cannot connect", NULL);
        return;
    }
    cl->outstanding = 0;
    redisAsyncSetConnectCallback(cl->cmd, on_connect);
    redisAsyncSetDisconnectCallback(cl->cmd, on_disconnect);
    redisAsyncSetConnectCallback(cl->sub, on_connect);
    redisAsyncSetDisconnectCallback(cl->sub, on_disconnect);
    auth_select(cl, cl->cmd);
    auth_select(cl, cl->sub);
    struct argv a = {0};
    argv_str(&a, "SCRIPT");
    argv_str(&a, "LOAD");
    argv_add(&a, cluster_lua, cluster_lua_len);
    script(cl, &a, script_loaded, NULL);
    /* The counts channel first: ready means both are subscribed. */
    redisAsyncCommand(cl->sub, on_sub, cl, "SUBSCRIBE %b", cl->counts,
                      strlen(cl->counts));
    redisAsyncCommand(cl->sub, on_sub, cl, "PSUBSCRIBE %b", cl->pattern,
                      strlen(cl->pattern));
}

/* ---- the loop's side -------------------------------------------------- */

struct done_ctx {
    void (*done)(void *arg);
    void *arg;
};

static void call_done(struct cluster *cl, redisReply *r, void *arg)
{
    struct done_ctx *d = arg;
    (void)cl;
    (void)r;
    d->done(d->arg);
    free(d);
}

static void flush_contribs(struct cluster *cl, struct out **o)
{
    struct argv a;
    script_argv(cl, &a, "contrib");
    argv_str(&a, cl->node);
    int groups = 0;
    while (*o && (*o)->kind == OUT_CONTRIB && groups < CONTRIB_BATCH) {
        struct out *x = *o;
        for (int i = 0; i < x->a.n; i++)
            argv_add(&a, x->a.v[i], x->a.len[i]);
        groups++;
        *o = x->next;
        out_free(x);
    }
    script(cl, &a, NULL, NULL);
}

static void wake_cb(uv_async_t *h)
{
    struct cluster *cl = h->data;
    pthread_mutex_lock(&cl->mu);
    struct out *o = outq_take(&cl->q);
    pthread_mutex_unlock(&cl->mu);
    int live = cl->state == CLUSTER_UP && cl->cmd;
    while (o) {
        if (!live) {
            struct out *next = o->next;
            if (o->kind == OUT_MANUAL && cl->held.n < HELD_MAX)
                outq_push(&cl->held, o);
            else
                out_free(o);
            o = next;
            continue;
        }
        if (o->kind == OUT_CONTRIB) {
            flush_contribs(cl, &o);
            continue;
        }
        struct out *next = o->next;
        if (o->kind == OUT_BARRIER) {
            struct barrier *x = xmalloc(sizeof *x);
            *x = (struct barrier){++cl->barrier_seq, o->done, o->done_arg,
                                  cl->barriers};
            struct argv a = {0};
            char msg[200];
            argv_str(&a, "PUBLISH");
            argv_str(&a, cl->counts);
            snprintf(msg, sizeof msg, "B %s %llu", cl->node,
                     (unsigned long long)x->token);
            argv_str(&a, msg);
            if (send_argv(cl, &a, NULL, NULL) == 0) {
                cl->barriers = x;
                o->done = NULL; /* the message's return runs it */
            } else {
                free(x);
            }
            argv_dispose(&a);
        } else if (o->kind == OUT_RESYNC) {
            struct argv a;
            script_argv(cl, &a, "resync");
            argv_str(&a, o->org);
            script(cl, &a, resync_done, xstrdup(o->org));
        } else if (o->done) {
            struct done_ctx *d = xmalloc(sizeof *d);
            d->done = o->done;
            d->arg = o->done_arg;
            if (send_argv(cl, &o->a, call_done, d) == 0)
                o->done = NULL; /* call_done runs it */
            else
                free(d);
        } else {
            send_argv(cl, &o->a, NULL, NULL);
        }
        out_free(o);
        o = next;
    }
}

/* A node the others reaped (it stood still past node_ttl + grace) pushes
 * everything again, as after a reconnect. */
static void beat_done(struct cluster *cl, redisReply *r, void *arg)
{
    (void)arg;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[1]->type != REDIS_REPLY_INTEGER || cl->state != CLUSTER_UP)
        return;
    if (r->element[1]->integer == 0 && cl->beats++ > 0) {
        log_warn("cluster: node %s was taken for dead; pushing its state "
                 "again", cl->node);
        ask_orgs(cl);
    } else if (r->element[1]->integer != 0) {
        cl->beats++;
    }
}

static void beat_cb(uv_timer_t *t)
{
    struct cluster *cl = t->data;
    if (cl->cmd && cl->outstanding &&
        uv_now(cl->loop) - cl->progress_at > (uint64_t)cl->ttl_ms) {
        go_down(cl, "redis does not answer", NULL);
        return;
    }
    if (cl->state != CLUSTER_UP || !cl->cmd)
        return;
    struct argv a;
    script_argv(cl, &a, "beat");
    argv_str(&a, cl->node);
    argv_int(&a, cl->ttl_ms);
    argv_int(&a, cl->cb.nconns ? cl->cb.nconns(cl->ud) : 0);
    argv_int(&a, cl->started_ms);
    argv_str(&a, cl->listen);
    int64_t after = cl->ttl_ms + cl->grace_ms - cl->beat_ms;
    argv_int(&a, after > cl->ttl_ms ? after : cl->ttl_ms);
    script(cl, &a, beat_done, NULL);
}

/* ---- public ----------------------------------------------------------- */

static void sha1_hex(const char *s, size_t n, char out[41])
{
    unsigned char d[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)s, n, d);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

int cluster_new(struct cluster **out, const struct cluster_opts *o,
                uv_loop_t *loop, const struct cluster_callbacks *cb,
                void *ud, char *err)
{
    struct cluster *cl = xcalloc(1, sizeof *cl);
    if (cluster_uri_parse(o->uri, &cl->uri, err) != 0) {
        free(cl);
        return -1;
    }
    cl->loop = loop;
    cl->cb = *cb;
    cl->ud = ud;
    cl->name = xstrdup(o->name);
    cl->node = xstrdup(o->node);
    cl->listen = xstrdup(o->listen ? o->listen : "");
    size_t n = strlen(o->name) + 16;
    cl->prefix = xmalloc(n);
    snprintf(cl->prefix, n, "presenced:%s:", o->name);
    cl->prefix_len = strlen(cl->prefix);
    cl->pattern = xmalloc(n + 4);
    snprintf(cl->pattern, n + 4, "%se:*", cl->prefix);
    cl->counts = xmalloc(n + 4);
    snprintf(cl->counts, n + 4, "%sl", cl->prefix);
    cl->ttl_ms = o->node_ttl_ms;
    cl->grace_ms = o->grace_ms;
    cl->started_ms = o->started_ms;
    cl->beat_ms = cl->ttl_ms / 4 < 250 ? cl->ttl_ms / 4 : 250;
    if (cl->beat_ms < 50)
        cl->beat_ms = 50;
    cl->backoff_ms = RETRY_MIN_MS;
    cl->state = CLUSTER_STARTING;
    sha1_hex(cluster_lua, cluster_lua_len, cl->sha);
    pthread_mutex_init(&cl->mu, NULL);
    int r = uv_async_init(loop, &cl->wake, wake_cb);
    if (r == 0) {
        cl->handles++;
        r = uv_timer_init(loop, &cl->beat);
    }
    if (r == 0) {
        cl->handles++;
        r = uv_timer_init(loop, &cl->retry);
    }
    if (r == 0)
        cl->handles++;
    cl->wake.data = cl->beat.data = cl->retry.data = cl;
    if (r == 0)
        r = uv_timer_start(&cl->beat, beat_cb, (uint64_t)cl->beat_ms,
                           (uint64_t)cl->beat_ms);
    if (r != 0) {
        snprintf(err, 256, "cannot start the cluster timers: %s",
                 uv_strerror(r));
        cluster_close(cl);
        *out = cl; /* the caller runs the loop, then cluster_free() */
        return -1;
    }
    char shown[600];
    log_info("cluster: node %s of cluster %s, redis %s", cl->node, cl->name,
             cluster_uri_redacted(&cl->uri, shown, sizeof shown));
    connect_both(cl);
    *out = cl;
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct cluster *cl = h->data;
    cl->handles--;
}

void cluster_close(struct cluster *cl)
{
    if (!cl || cl->closing)
        return;
    cl->closing = 1;
    if (cl->cmd)
        redisAsyncFree(cl->cmd);
    if (cl->sub)
        redisAsyncFree(cl->sub);
    cl->cmd = cl->sub = NULL;
    uv_handle_t *hs[] = {(uv_handle_t *)&cl->wake, (uv_handle_t *)&cl->beat,
                         (uv_handle_t *)&cl->retry};
    for (size_t i = 0; i < 3; i++)
        if (hs[i]->loop && !uv_is_closing(hs[i]))
            uv_close(hs[i], on_handle_closed);
}

void cluster_free(struct cluster *cl)
{
    if (!cl)
        return;
    struct out *o, *next;
    for (o = outq_take(&cl->q); o; o = next) {
        next = o->next;
        out_free(o);
    }
    for (o = outq_take(&cl->held); o; o = next) {
        next = o->next;
        out_free(o);
    }
    while (cl->barriers) { /* the loops are gone: nobody to tell */
        struct barrier *x = cl->barriers;
        cl->barriers = x->next;
        free(x);
    }
    argv_dispose(&cl->sync);
    pthread_mutex_destroy(&cl->mu);
    free(cl->name);
    free(cl->node);
    free(cl->listen);
    free(cl->prefix);
    free(cl->pattern);
    free(cl->counts);
    free(cl);
}

enum cluster_state cluster_state(const struct cluster *cl)
{
    return cl->state;
}

const char *cluster_node(const struct cluster *cl) { return cl->node; }

static void contrib_fields(struct argv *a, const char *org, const char *user,
                           int present, int auto_status, unsigned nconns,
                           int64_t last_seen_ms, const char *reason,
                           const char *name, int manual_hint)
{
    argv_str(a, org);
    argv_str(a, user);
    argv_int(a, present ? 1 : 0);
    argv_int(a, auto_status);
    argv_int(a, nconns);
    argv_int(a, last_seen_ms);
    argv_str(a, reason);
    argv_str(a, name);
    argv_int(a, manual_hint);
}

void cluster_contribute(struct cluster *cl, const char *org,
                        const char *user, int present, int auto_status,
                        unsigned nconns, int64_t last_seen_ms,
                        const char *reason, const char *name,
                        int manual_hint)
{
    struct out *o = xcalloc(1, sizeof *o);
    o->kind = OUT_CONTRIB;
    contrib_fields(&o->a, org, user, present, auto_status, nconns,
                   last_seen_ms, reason, name, manual_hint);
    enqueue(cl, o);
}

void cluster_manual(struct cluster *cl, const char *org, const char *user,
                    int manual, const char *name, int64_t now_ms)
{
    struct out *o = xcalloc(1, sizeof *o);
    o->kind = OUT_MANUAL;
    script_argv(cl, &o->a, "manual");
    argv_str(&o->a, cl->node);
    argv_str(&o->a, org);
    argv_str(&o->a, user);
    argv_int(&o->a, manual);
    argv_str(&o->a, name);
    argv_int(&o->a, now_ms);
    enqueue(cl, o);
}

void cluster_kick(struct cluster *cl, const char *org, const char *user,
                  uint64_t session)
{
    struct out *o = xcalloc(1, sizeof *o);
    o->kind = OUT_KICK;
    argv_str(&o->a, "PUBLISH");
    size_t n = cl->prefix_len + strlen(org) + 3;
    char *ch = xmalloc(n);
    snprintf(ch, n, "%se:%s", cl->prefix, org);
    argv_str(&o->a, ch);
    free(ch);
    size_t ul = strlen(user);
    char *msg = xmalloc(ul + strlen(cl->node) + 64);
    int h = sprintf(msg, "K %llu %zu %s\n", (unsigned long long)session, ul,
                    cl->node);
    memcpy(msg + h, user, ul);
    argv_add(&o->a, msg, (size_t)h + ul);
    free(msg);
    enqueue(cl, o);
}

void cluster_count(struct cluster *cl, const char *const *keys, size_t n)
{
    struct out *o = xcalloc(1, sizeof *o);
    o->kind = OUT_KICK; /* a plain PUBLISH, dropped while down */
    argv_str(&o->a, "PUBLISH");
    argv_str(&o->a, cl->counts);
    size_t cap = 64 + strlen(cl->node), len;
    for (size_t i = 0; i < n; i++)
        cap += strlen(keys[i]) + 24;
    char *msg = xmalloc(cap);
    len = (size_t)snprintf(msg, cap, "L %s %zu\n", cl->node, n);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(msg + len, cap - len, "%zu %s",
                                strlen(keys[i]), keys[i]);
    argv_add(&o->a, msg, len);
    free(msg);
    enqueue(cl, o);
}

void cluster_session(struct cluster *cl, int add, int64_t id,
                     const unsigned char *hash, const char *org,
                     const char *user, int64_t expires_ms,
                     void (*done)(void *arg), void *arg)
{
    static const unsigned char none[32];
    struct out *o = xcalloc(1, sizeof *o);
    o->kind = OUT_KICK; /* a plain PUBLISH, dropped while down */
    argv_str(&o->a, "PUBLISH");
    argv_str(&o->a, cl->counts);
    org = org ? org : "";
    user = user ? user : "";
    size_t olen = strlen(org), ulen = strlen(user);
    char *msg = xmalloc(strlen(cl->node) + olen + ulen + 160);
    int h = sprintf(msg, "S %s %d %lld %lld %zu %zu\n", cl->node, add ? 1 : 0,
                    (long long)id, (long long)expires_ms, olen, ulen);
    memcpy(msg + h, hash ? hash : none, 32);
    memcpy(msg + h + 32, org, olen);
    memcpy(msg + h + 32 + olen, user, ulen);
    argv_add(&o->a, msg, (size_t)h + 32 + olen + ulen);
    free(msg);
    o->done = done;
    o->done_arg = arg;
    enqueue(cl, o);
}

void cluster_barrier(struct cluster *cl, void (*done)(void *arg), void *arg)
{
    struct out *o = xcalloc(1, sizeof *o);
    o->kind = OUT_BARRIER;
    o->done = done;
    o->done_arg = arg;
    enqueue(cl, o);
}

void cluster_resync(struct cluster *cl, const char *org)
{
    struct out *o = xcalloc(1, sizeof *o);
    o->kind = OUT_RESYNC;
    o->org = xstrdup(org);
    enqueue(cl, o);
}

void cluster_sync_begin(struct cluster *cl)
{
    argv_dispose(&cl->sync);
    script_argv(cl, &cl->sync, "sync");
    argv_str(&cl->sync, cl->node);
    cl->sync_floors = 0;
}

void cluster_sync_add(struct cluster *cl, const char *org, const char *user,
                      int present, int auto_status, unsigned nconns,
                      int64_t last_seen_ms, const char *name,
                      int manual_hint)
{
    contrib_fields(&cl->sync, org, user, present, auto_status, nconns,
                   last_seen_ms, present ? "connect" : "disconnect", name,
                   manual_hint);
}

void cluster_sync_floor(struct cluster *cl, const char *org, uint64_t seq)
{
    if (!cl->sync_floors++)
        argv_str(&cl->sync, "--");
    argv_str(&cl->sync, org);
    argv_int(&cl->sync, (long long)seq);
}

void cluster_sync_end(struct cluster *cl)
{
    script(cl, &cl->sync, NULL, NULL);
    memset(&cl->sync, 0, sizeof cl->sync);
}
