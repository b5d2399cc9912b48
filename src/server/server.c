/* server.c - the daemon, assembled (server.h): it makes the loops, the
 * hub, the store and the routes, wires each connection to HTTP and the
 * routes, runs the timers and answers signals.
 *
 * Timers: every loop's `heartbeat` pings its connections and drops silent
 * ones; loop 0's `tick` also closes presence windows at their deadlines
 * and tells subscribers online counts, `flush` writes batched presence
 * rows, `sweep` resets stale statuses. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "api/api.h"
#include "auth/auth.h"
#include "http/http.h"
#include "cluster/cluster.h"
#include "hub/hub.h"
#include "net/net.h"
#include "server/server.h"
#include "store/queue.h"
#include "store/store.h"
#include "util/log.h"
#include "util/rate.h"
#include "util/xalloc.h"
#include "ws/frame.h"
#include "ws/ws.h"

#define TICK_MS 100
#define STOP_DELAY_MS 200   /* close frames get this long to leave */
#define TRIM_CHURN 1000     /* connects + closes that make a burst */
#define STORE_MAX_JOBS 4096 /* store jobs queued: 503 past it */
#define STORE_BUSY_MS 1000  /* a job waits this long per try for a lock */
#define POLL_TICKS 3        /* ticks between looks at the store's version */
#define MAX_LOOPS HUB_MAX_LOOPS

struct server;

/* One loop and what the server keeps for it. */
struct worker {
    struct server *srv;
    unsigned id;
    struct loop *lp;
    uv_timer_t tick, heartbeat, stop_timer;
    int timers;              /* how many of them were initialised */
    uv_thread_t thread;      /* loops 1..n-1 */
    struct api_loop api;     /* its routes, its copy of the settings */
    struct storeq_client sq; /* its end of the store queue */
    int sq_open;
    int reload;   /* hub lock: take srv->cfg again */
    int stopping; /* 1 closing, 2 closed (hub lock) */
};

struct server {
    struct hub *hub;
    struct store *store;                  /* stores[0], the main thread's once q
                                             has stopped */
    struct store *stores[STORE_POOL_MAX]; /* one per store thread */
    size_t nstores;
    struct storeq *q;
    unsigned nloops;
    struct worker *w[MAX_LOOPS];
    uv_timer_t flush, sweep; /* on loop 0 */
    struct cluster *cl;      /* on loop 0; NULL without redis */
    uv_signal_t sigterm, sigint, sighup;
    struct server_hooks hooks;
    struct api_shared shared;
    /* Under the hub lock once the loops run: */
    struct config cfg;
    unsigned char secret[512];
    size_t secret_len;
    int stopping;
    int finishing;            /* the store queue is closed: loops end */
    unsigned long last_churn; /* hub_churn() as of the last check */
    int64_t last_online;      /* when hub_send_online() last ran */
    unsigned long ticks;      /* loop 0's ticks so far */
    char listen_addr[128];    /* actual address, after bind */
};

static int checked(int r, const char *what)
{
    if (r < 0)
        log_error("%s: %s", what, uv_strerror(r));
    return r;
}

/* 0 or a UV_E* code (logged): only a closing timer refuses to start. */
static int restart_timer(uv_timer_t *t, uv_timer_cb cb, int64_t ms,
                         const char *what)
{
    return checked(uv_timer_start(t, cb, (uint64_t)ms, (uint64_t)ms), what);
}

static void *of(uv_handle_t *h)
{
    return h->data;
}

/* ---- connections ------------------------------------------------------ */

static void on_accept(struct loop *lp, struct conn *c)
{
    struct worker *w = loop_data(lp);
    struct hub *hb = w->srv->hub;
    /* docs/security.md: new connections per address per second. */
    char peer[48], key[64];
    conn_peer(c, peer, sizeof peer);
    snprintf(key, sizeof key, "conn:%s", peer);
    hub_lock(hb);
    int64_t n = rate_add(hub_rates(hb), key, 1000, hub_now(hb));
    hub_unlock(hb);
    if (n > w->api.cfg.conn_rate) {
        conn_close(c);
        return;
    }
    struct http_opts o = {
        .peer = peer,
        .max_body = (size_t)w->api.cfg.max_body,
        .header_timeout_ms = w->api.cfg.header_timeout_ms,
        .on_request = api_handle,
        .data = &w->api,
    };
    http_conn_new(c, &o);
}

/* ---- timers ----------------------------------------------------------- */

static void on_tick(uv_timer_t *t)
{
    struct worker *w = of((uv_handle_t *)t);
    struct server *srv = w->srv;
    loop_now(w->lp);
    hub_lock(srv->hub);
    hub_tick(srv->hub);
    /* Has a CLI command committed? (then connects sync their org) */
    if (++srv->ticks % POLL_TICKS == 0)
        hub_poll_store(srv->hub);
    /* Online counts for subscribers: at most once a second. */
    int trim = 0;
    int64_t now = hub_now(srv->hub);
    if (now - srv->last_online >= 1000) {
        srv->last_online = now;
        hub_send_online(srv->hub);
        /* After a burst of connects or closes, once a quiet second has
         * passed: the burst's transient buffers (snapshots and events
         * queued to thousands of sockets) are freed, but the allocator
         * keeps their pages. Give them back, so that memory follows the
         * connections held rather than the peak. */
        unsigned long churn = hub_churn(srv->hub);
        trim = churn >= TRIM_CHURN && churn == srv->last_churn;
        if (trim)
            hub_drop_caches(srv->hub);
        srv->last_churn = hub_churn(srv->hub);
    }
    hub_unlock(srv->hub);
    if (trim)
        malloc_trim(0);
}

static void on_heartbeat(uv_timer_t *t)
{
    struct worker *w = of((uv_handle_t *)t);
    loop_now(w->lp);
    hub_lock(w->srv->hub);
    hub_heartbeat(w->srv->hub, w->id);
    hub_unlock(w->srv->hub);
}

static void on_flush(uv_timer_t *t)
{
    struct server *srv = of((uv_handle_t *)t);
    hub_lock(srv->hub);
    hub_flush_store(srv->hub);
    hub_unlock(srv->hub);
}

static void on_sweep(uv_timer_t *t)
{
    struct server *srv = of((uv_handle_t *)t);
    hub_lock(srv->hub);
    hub_sweep(srv->hub, srv->cfg.stale_after_ms);
    api_sweep(&srv->shared, srv->hub, hub_now(srv->hub));
    hub_unlock(srv->hub);
}

/* ---- settings --------------------------------------------------------- */

/* Hub lock held: this loop takes the server's settings (SIGHUP). */
static void take_settings(struct worker *w)
{
    struct server *srv = w->srv;
    w->reload = 0;
    w->api.cfg = srv->cfg;
    memcpy(w->api.secret, srv->secret, srv->secret_len);
    w->api.secret_len = srv->secret_len;
    loop_set_max_out(w->lp, (size_t)srv->cfg.max_out);
    if (!w->stopping)
        restart_timer(&w->heartbeat, on_heartbeat, srv->cfg.heartbeat_ms,
                      "SIGHUP: restarting the heartbeat timer");
}

/* SIGHUP: everything but the address, the database, the number of loops
 * and demo mode takes effect now; windows already open keep their
 * deadlines. Hub lock held. */
static void reload(struct server *srv)
{
    struct config c;
    char err[CONFIG_ERRLEN] = "no reload source";
    if (!srv->hooks.reload || srv->hooks.reload(srv->hooks.ud, &c, err) != 0) {
        log_error("SIGHUP: configuration not reloaded: %s", err);
        return;
    }
    if (strcmp(c.listen, srv->cfg.listen) || strcmp(c.db, srv->cfg.db) ||
        c.loops != srv->cfg.loops)
        log_warn("SIGHUP: listen, db and loops change only at restart");
    snprintf(c.listen, sizeof c.listen, "%s", srv->cfg.listen);
    snprintf(c.db, sizeof c.db, "%s", srv->cfg.db);
    c.demo = srv->cfg.demo;
    c.loops = srv->cfg.loops;
    size_t n = strlen(c.jwt_secret);
    if (n >= 32) {
        memcpy(srv->secret, c.jwt_secret, n);
        srv->secret_len = n;
    } else if (n || !srv->cfg.demo) {
        log_error("SIGHUP: jwt_secret shorter than 32 bytes; not reloaded");
        return;
    }
    srv->cfg = c;
    enum log_level lvl;
    if (log_parse_level(c.log_level, &lvl) == 0)
        log_set_level(lvl);
    hub_reload(srv->hub, &c);
    restart_timer(&srv->flush, on_flush, c.flush_ms,
                  "SIGHUP: restarting the flush timer");
    restart_timer(&srv->sweep, on_sweep, c.sweep_ms,
                  "SIGHUP: restarting the sweep timer");
    /* Each loop takes the new settings when it wakes; this one (loop 0)
     * at once. */
    for (unsigned i = 1; i < srv->nloops; i++) {
        srv->w[i]->reload = 1;
        loop_wake(srv->w[i]->lp);
    }
    take_settings(srv->w[0]);
    log_info("SIGHUP: configuration reloaded");
}

/* ---- stopping --------------------------------------------------------- */

/* On w's thread: the store queue is closed, so no job of w's is left:
 * its client, then the loop, close. */
static void worker_end(struct worker *w)
{
    if (w->sq_open) {
        w->sq_open = 0;
        storeq_client_close(&w->sq, NULL); /* delivers what is done */
    }
    loop_close(w->lp);
}

/* A loop's connections have had STOP_DELAY_MS to take their close frames.
 * Loops 1..n-1 then wait for loop 0, which writes what is pending and
 * closes the store queue (the jobs already queued run first), and only
 * then do the loops close their ends of it and end. */
static void on_loop_stopped(uv_timer_t *t)
{
    struct worker *w = of((uv_handle_t *)t);
    struct server *srv = w->srv;
    loop_now(w->lp);
    /* Posts are dropped from here on: the lock keeps others out. */
    hub_lock(srv->hub);
    w->stopping = 2;
    hub_loop_closed(srv->hub, w->id);
    if (w->id == 0)
        hub_flush_store(srv->hub);
    int finish = srv->finishing;
    hub_unlock(srv->hub);
    if (w->id != 0) {
        if (finish) /* stop_threads(): loop 0 never ran */
            worker_end(w);
        return; /* else until loop 0 says finish (on_wake) */
    }
    storeq_close(srv->q);
    hub_lock(srv->hub);
    srv->finishing = 1;
    for (unsigned i = 1; i < srv->nloops; i++)
        loop_wake(srv->w[i]->lp);
    hub_unlock(srv->hub);
    for (unsigned i = 1; i < srv->nloops; i++)
        checked(uv_thread_join(&srv->w[i]->thread),
                "waiting for a loop thread");
    worker_end(w);
}

/* On w's thread, hub lock held: stop accepting, close every connection
 * with 1001, and end the loop shortly after. */
static void worker_begin_stop(struct worker *w)
{
    if (w->stopping)
        return;
    w->stopping = 1;
    loop_stop_accepting(w->lp);
    uv_timer_stop(&w->tick);
    uv_timer_stop(&w->heartbeat);
    hub_shutdown(w->srv->hub, w->id);
    api_stop(&w->api); /* queued logins are answered 503, not checked */
    checked(uv_timer_start(&w->stop_timer, on_loop_stopped, STOP_DELAY_MS, 0),
            "stopping a loop: cannot start its stop timer");
}

static void on_wake(struct loop *lp)
{
    struct worker *w = loop_data(lp);
    struct server *srv = w->srv;
    hub_lock(srv->hub); /* runs the posts */
    if (w->reload)
        take_settings(w);
    if (srv->stopping && !w->stopping)
        worker_begin_stop(w);
    int finish = srv->finishing && w->stopping == 2 && w->id != 0;
    hub_unlock(srv->hub);
    if (finish)
        worker_end(w);
}

static void begin_stop(struct server *srv, const char *why)
{
    hub_lock(srv->hub);
    if (srv->stopping) {
        hub_unlock(srv->hub);
        return;
    }
    unsigned n = 0;
    for (unsigned i = 0; i < srv->nloops; i++)
        n += hub_nconns(srv->hub, i);
    log_info("%s: stopping (closing %u connections)", why, n);
    srv->stopping = 1;
    hub_stopping(srv->hub);
    uv_timer_stop(&srv->sweep);
    uv_timer_stop(&srv->flush);
    /* The node's contributions stay in Redis: a restart with the same id
     * takes them back, and if none comes the others reap them. */
    cluster_close(srv->cl);
    for (unsigned i = 1; i < srv->nloops; i++)
        if (srv->w[i]->stopping < 2)
            loop_wake(srv->w[i]->lp);
    worker_begin_stop(srv->w[0]);
    hub_unlock(srv->hub);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct server *srv = of((uv_handle_t *)s);
    loop_now(srv->w[0]->lp);
    if (signum == SIGHUP) {
        hub_lock(srv->hub);
        reload(srv);
        hub_unlock(srv->hub);
        return;
    }
    begin_stop(srv, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- start ------------------------------------------------------------ */

static int parse_listen(const char *s, struct sockaddr_storage *ss)
{
    char host[128];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof host)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    int port = atoi(colon + 1);
    if (host[0] == '[') { /* [::1]:8080 */
        size_t n = strlen(host);
        if (n < 2 || host[n - 1] != ']')
            return -1;
        host[n - 1] = '\0';
        return uv_ip6_addr(host + 1, port, (struct sockaddr_in6 *)ss);
    }
    return uv_ip4_addr(host, port, (struct sockaddr_in *)ss);
}

static unsigned sockaddr_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

/* With several loops every listener sets SO_REUSEPORT, and the kernel lets
 * any other socket of the same user that sets it too share the address:
 * a second server would start silently and take half of the clients, with
 * a state of its own. A socket bound without SO_REUSEPORT shares with no
 * one, so if it cannot bind, someone already listens there. (Two servers
 * started in the same instant may still both pass; the database lock
 * stops them when they share a database.) 0 or a UV_E* code. */
static int probe_address(const struct sockaddr *sa)
{
    socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return uv_translate_sys_error(errno);
    /* As the listeners do: an earlier run's connection in TIME_WAIT is not
     * someone listening. */
    int one = 1, rc = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, sa, len) != 0)
        rc = uv_translate_sys_error(errno);
    close(fd);
    return rc;
}

static void listen_failed(const char *addr, int r)
{
    log_error("cannot listen on %s: %s%s", addr, uv_strerror(r),
              r == UV_EADDRINUSE ? " (another server listens there)" : "");
}

static int load_secret(struct server *srv)
{
    const char *s = srv->cfg.jwt_secret;
    size_t n = strlen(s);
    if (n >= 32 && strcmp(s, "change-me-change-me-change-me-change-me") != 0) {
        memcpy(srv->secret, s, n);
        srv->secret_len = n;
        return 0;
    }
    if (!srv->cfg.demo) {
        log_error("jwt_secret must be set to at least 32 bytes "
                  "(PRESENCED_JWT_SECRET); only --demo runs without one");
        return -1;
    }
    char d[128];
    if (!srv->hooks.demo_secret ||
        srv->hooks.demo_secret(srv->hooks.ud, srv->cfg.db, d, sizeof d) != 0)
        return -1;
    srv->secret_len = strlen(d);
    memcpy(srv->secret, d, srv->secret_len);
    log_warn("demo mode: using the generated secret in %s.secret", srv->cfg.db);
    return 0;
}

static int register_run(struct store *s, void *ud)
{
    return store_server_set(s, ud);
}

/* A worker for loop id, its loop and timers made (not started): 0, or a
 * UV_E* code (logged) and nothing is left of it. */
static int worker_new(struct server *srv, unsigned id, struct worker **out)
{
    struct worker *w = xcalloc(1, sizeof *w);
    w->srv = srv;
    w->id = id;
    struct loop_opts o = {
        .id = id,
        .on_accept = on_accept,
        .on_wake = on_wake,
        .data = w,
        .max_out = (size_t)srv->cfg.max_out,
    };
    int r = loop_new(&w->lp, &o);
    if (r != 0) {
        free(w);
        return r;
    }
    r = checked(storeq_client_init(srv->q, &w->sq, loop_uv(w->lp)),
                "cannot make a loop's end of the store queue");
    if (r != 0) {
        loop_free(w->lp);
        free(w);
        return r;
    }
    w->sq_open = 1;
    api_loop_init(&w->api, srv->hub, w->lp, &srv->shared);
    w->api.cfg = srv->cfg;
    memcpy(w->api.secret, srv->secret, srv->secret_len);
    w->api.secret_len = srv->secret_len;
    uv_timer_t *timers[] = {&w->tick, &w->heartbeat, &w->stop_timer};
    for (size_t i = 0; r == 0 && i < ARRAY_LEN(timers); i++) {
        r = checked(uv_timer_init(loop_uv(w->lp), timers[i]),
                    "cannot make a loop's timer");
        timers[i]->data = w;
    }
    *out = w; /* worker_free() closes what was made */
    return r;
}

static int worker_start(struct worker *w)
{
    int r = 0;
    if (w->id == 0)
        r = checked(uv_timer_start(&w->tick, on_tick, TICK_MS, TICK_MS),
                    "cannot start a loop's tick timer");
    if (r == 0)
        r = restart_timer(&w->heartbeat, on_heartbeat, w->srv->cfg.heartbeat_ms,
                          "cannot start a loop's heartbeat timer");
    return r;
}

static void worker_run(void *arg)
{
    struct worker *w = arg;
    loop_run(w->lp);
    hub_thread_done();
    ws_pool_free();
    frame_thread_done();
}

static void worker_free(struct worker *w)
{
    if (!w)
        return;
    loop_free(w->lp); /* closes the timers too, if still open */
    free(w);
}

/* A loop thread could not start: those that did (loops 1..n-1) stop as
 * at SIGTERM, and are waited for. */
static void stop_threads(struct server *srv, unsigned n)
{
    storeq_close(srv->q);
    hub_lock(srv->hub);
    srv->stopping = 1;
    srv->finishing = 1;
    hub_stopping(srv->hub);
    for (unsigned i = 1; i < n; i++)
        loop_wake(srv->w[i]->lp);
    hub_unlock(srv->hub);
    for (unsigned i = 1; i < n; i++)
        checked(uv_thread_join(&srv->w[i]->thread),
                "waiting for a loop thread");
}

int server_run(const struct config *cfg, const struct server_hooks *hooks)
{
    struct server *srv = xcalloc(1, sizeof *srv);
    int rc = -1, lockfd = -1;
    srv->cfg = *cfg;
    srv->hooks = *hooks;
    signal(SIGPIPE, SIG_IGN);
    unsigned nloops =
        cfg->loops > 0 ? (unsigned)cfg->loops : uv_available_parallelism();
    if (nloops > MAX_LOOPS)
        nloops = MAX_LOOPS;
    if (nloops < 1)
        nloops = 1;

    /* Each way the start can fail says why in one line, and the checks
     * that need nothing opened come first. */
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (parse_listen(cfg->listen, &ss) != 0) {
        log_error("bad listen address %s (use an IP address and a port, "
                  "e.g. 127.0.0.1:8080 or [::1]:8080)",
                  cfg->listen);
        goto out_free;
    }
    /* One server per database: a second one would take over the
     * registration that CLI commands use to find the first, and two
     * presence states would write the same rows. */
    char err[STORE_ERRLEN] = "";
    char dbname[sizeof cfg->db];
    store_redact(cfg->db, dbname, sizeof dbname); /* for logs */
    int64_t holder = 0;
    int lr = store_lock(cfg->db, &lockfd, &holder, err);
    if (lr == STORE_EBUSY) {
        if (holder > 0)
            log_error("database %s is already served by another presenced "
                      "(pid %lld)",
                      dbname, (long long)holder);
        else
            log_error("database %s is already served by another presenced",
                      dbname);
        goto out_free;
    }
    if (lr != 0) {
        log_error("cannot open database %s: %s", dbname, err);
        goto out_free;
    }
    /* One loop binds without SO_REUSEPORT and finds out for itself. */
    int r;
    if (nloops > 1 && sockaddr_port(&ss) != 0 &&
        (r = probe_address((struct sockaddr *)&ss)) != 0) {
        listen_failed(cfg->listen, r);
        goto out_free;
    }
    if (load_secret(srv) != 0)
        goto out_free;
    /* SQLite allows one writer at a time: one connection. PostgreSQL gets
     * a pool, each connection with a store thread of its own. */
    size_t npool =
        store_kind(cfg->db) == STORE_KIND_PG ? (size_t)cfg->db_pool : 1;
    for (; srv->nstores < npool; srv->nstores++) {
        if (store_open(&srv->stores[srv->nstores], cfg->db, err) != 0) {
            log_error("cannot open database %s: %s", dbname, err);
            goto out_store;
        }
    }
    srv->store = srv->stores[0];
    log_info("store: %s, %zu connection%s", store_backend(srv->store),
             srv->nstores, srv->nstores == 1 ? "" : "s");
    /* The store runs on threads of its own: a lock another process
     * holds (a CLI command, a backup) or a database restarting delays
     * its jobs, never a loop. Each try waits STORE_BUSY_MS for the lock;
     * writes are retried. */
    r = storeq_new(&srv->q, srv->stores, srv->nstores, STORE_MAX_JOBS,
                   STORE_BUSY_MS);
    if (r != 0) {
        log_error("cannot start the store threads: %s", uv_strerror(r));
        goto out_store;
    }
    if (hub_new(&srv->hub, cfg, srv->q, nloops) != 0) {
        log_error("cannot load users from %s", dbname);
        goto out_queue;
    }
    if (api_shared_init(&srv->shared, srv->q, hub_now(srv->hub)) != 0) {
        log_error("cannot load login sessions from %s", dbname);
        goto out_loops;
    }
    hub_set_session_hook(srv->hub, api_session_hook, &srv->shared);

    /* srv->nloops counts the workers made so far: those are freed below. */
    for (unsigned i = 0; i < nloops; i++) {
        struct worker *w = NULL;
        r = worker_new(srv, i, &w);
        if (w) {
            srv->w[srv->nloops++] = w;
            hub_set_loop(srv->hub, i, w->lp, &w->sq);
        }
        if (r != 0)
            goto out_loops;
    }
    for (unsigned i = 0; i < nloops; i++) {
        /* Port 0: the others bind the port the first one got. */
        r = loop_listen(srv->w[i]->lp, (struct sockaddr *)&ss, nloops > 1);
        if (r != 0) {
            listen_failed(cfg->listen, r);
            goto out_loops;
        }
        if (i == 0 && (r = loop_bound(srv->w[0]->lp, &ss)) != 0) {
            log_error("cannot tell the address %s was bound to: %s",
                      cfg->listen, uv_strerror(r));
            goto out_loops;
        }
    }
    char host[64] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET) {
        checked(uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof host),
                "formatting the listen address");
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        snprintf(srv->listen_addr, sizeof srv->listen_addr, "%s:%d", host,
                 port);
    } else {
        checked(uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof host),
                "formatting the listen address");
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        snprintf(srv->listen_addr, sizeof srv->listen_addr, "[%s]:%d", host,
                 port);
    }

    /* Timers and signals before the registration below, so that a start
     * that fails here leaves nothing in the database. A handle that was
     * initialised is closed by loop_free() whatever happens next. */
    uv_loop_t *main_loop = loop_uv(srv->w[0]->lp);
    uv_timer_t *timers[] = {&srv->flush, &srv->sweep};
    for (size_t i = 0; i < ARRAY_LEN(timers); i++) {
        if (checked(uv_timer_init(main_loop, timers[i]),
                    "cannot make the store timers") != 0)
            goto out_loops;
        timers[i]->data = srv;
    }
    if (checked(uv_timer_start(&srv->flush, on_flush, (uint64_t)cfg->flush_ms,
                               (uint64_t)cfg->flush_ms),
                "cannot start the flush timer") != 0 ||
        checked(uv_timer_start(&srv->sweep, on_sweep, (uint64_t)cfg->sweep_ms,
                               (uint64_t)cfg->sweep_ms),
                "cannot start the sweep timer") != 0)
        goto out_loops;
    uv_signal_t *sigs[] = {&srv->sigterm, &srv->sigint, &srv->sighup};
    int signums[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < ARRAY_LEN(sigs); i++) {
        if (checked(uv_signal_init(main_loop, sigs[i]),
                    "cannot watch signals") != 0)
            goto out_loops;
        sigs[i]->data = srv;
        if (checked(uv_signal_start(sigs[i], on_signal, signums[i]),
                    "cannot watch signals") != 0)
            goto out_loops;
    }
    if (cfg->redis[0]) {
        struct cluster_callbacks cb;
        hub_cluster_callbacks(&cb);
        char node[160], cerr[256] = "";
        config_node_id(cfg, node, sizeof node);
        struct cluster_opts co = {
            .uri = cfg->redis, .name = cfg->cluster, .node = node,
            .listen = srv->listen_addr, .node_ttl_ms = cfg->node_ttl_ms,
            .grace_ms = cfg->grace_ms, .started_ms = hub_now(srv->hub),
        };
        if (cluster_new(&srv->cl, &co, main_loop, &cb, srv->hub, cerr) != 0) {
            log_error("cluster: %s", cerr);
            goto out_loops;
        }
        hub_set_cluster(srv->hub, srv->cl);
    }
    for (unsigned i = 0; i < nloops; i++)
        if (worker_start(srv->w[i]) != 0)
            goto out_loops;

    /* Register so that CLI commands hand their work to us. */
    struct store_server reg = {.pid = getpid(),
                               .started_ms = hub_now(srv->hub)};
    snprintf(reg.listen, sizeof reg.listen, "%s", srv->listen_addr);
    auth_random_hex(srv->shared.admin_key, 32);
    memcpy(reg.admin_key, srv->shared.admin_key, sizeof reg.admin_key);
    if (storeq_call(srv->q, register_run, &reg, 0) != 0)
        log_warn("could not register in the database; cleanup-stale will "
                 "not reach this server");

    for (unsigned i = 1; i < nloops; i++) {
        r = uv_thread_create(&srv->w[i]->thread, worker_run, srv->w[i]);
        if (r != 0) {
            stop_threads(srv, i);
            store_server_clear(srv->store, (int64_t)getpid()); /* ours */
            /* Last, so that the reason ends the log. */
            log_error("cannot start the thread of loop %u: %s", i,
                      uv_strerror(r));
            goto out_loops;
        }
    }
    log_info("presenced listening on http://%s (db %s, %u loop%s, grace "
             "%lldms, heartbeat %lldms)",
             srv->listen_addr, dbname, nloops, nloops == 1 ? "" : "s",
             (long long)cfg->grace_ms, (long long)cfg->heartbeat_ms);
    worker_run(srv->w[0]);
    /* The store thread is gone (on_loop_stopped): the store is ours. */
    store_server_clear(srv->store, (int64_t)getpid());
    log_info("stopped");
    rc = 0;

out_loops:
    storeq_close(srv->q); /* no-op if done */
    cluster_close(srv->cl);
    for (unsigned i = 0; i < srv->nloops; i++)
        worker_free(srv->w[i]);
    cluster_free(srv->cl); /* its handles closed with loop 0 */
    hub_free(srv->hub);
    api_shared_dispose(&srv->shared);
    ws_pool_free();
out_queue:
    storeq_close(srv->q);
    storeq_free(srv->q);
out_store:
    for (size_t i = 0; i < srv->nstores; i++)
        store_close(srv->stores[i]);
out_free:
    /* Last: the next server may start once the database is closed. */
    if (lockfd >= 0)
        close(lockfd);
    free(srv);
    return rc;
}
