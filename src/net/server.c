/* server.c - the loops: listeners, timers, signals, start and stop.
 *
 * An event loop per core (setting `loops`), each on its own thread with
 * its own listening socket; the kernel spreads new connections over them
 * (SO_REUSEPORT). Loop 0 runs on the main thread and also owns signals
 * and the core's timers. The real-time clock is read once per event
 * (loop_now) the way Redis caches mstime, and once more under the lock
 * for the presence core (server_lock), so the core never sees time go
 * back when two loops take turns. Timers: every loop's `tick` answers
 * slow requests and ends lingering sockets, and its `heartbeat` pings its
 * connections and drops silent ones; loop 0's `tick` also closes
 * presence windows at their deadlines, `flush` writes batched presence
 * rows, `sweep` resets stale statuses. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "api/api.h"
#include "net/server.h"
#include "presence/presence.h"
#include "store/store.h"
#include "util/log.h"
#include "util/rate.h"
#include "util/xalloc.h"
#include "ws/frame.h"

#define TICK_MS 100
#define ACCEPT_PAUSE_MS 250 /* out of descriptors: listener closed this long */
#define STOP_DELAY_MS 200 /* close frames get this long to leave */
#define TRIM_CHURN 1000   /* connects + closes that make a burst */

static _Thread_local struct loop *tl_loop;
static _Thread_local unsigned tl_depth;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t loop_now(struct loop *lp)
{
    lp->now = wall_ms();
    return lp->now;
}

struct loop *loop_current(void) { return tl_loop; }

/* Logs a libuv call that failed (what: which call, on what) and returns
 * its result, so that each failure is said once, where it happened. */
static int checked(int r, const char *what)
{
    if (r < 0)
        log_error("%s: %s", what, uv_strerror(r));
    return r;
}

void loop_wake(struct loop *lp)
{
    /* Lock held. Once a loop has closed its handles (stopping 2) nothing
     * is posted to it: it has no connections left. */
    if (lp->stopping < 2)
        checked(uv_async_send(&lp->wake), "waking a loop");
}

/* 0 or a UV_E* code (logged): only a closing timer refuses to start. */
static int restart_timer(uv_timer_t *t, uv_timer_cb cb, int64_t ms,
                         const char *what)
{
    return checked(uv_timer_start(t, cb, (uint64_t)ms, (uint64_t)ms), what);
}

static void on_heartbeat(uv_timer_t *t);

void server_lock(struct server *srv)
{
    if (tl_depth++)
        return;
    pthread_mutex_lock(&srv->lock);
    int64_t t = wall_ms();
    if (t > srv->now)
        srv->now = t;
    struct loop *lp = tl_loop;
    if (!lp || lp->srv != srv)
        return;
    if (lp->reload) {
        /* SIGHUP: this loop's copy of the settings, and its heartbeat. */
        lp->reload = 0;
        lp->cfg = srv->cfg;
        memcpy(lp->secret, srv->secret, srv->secret_len);
        lp->secret_len = srv->secret_len;
        if (!lp->stopping)
            restart_timer(&lp->heartbeat, on_heartbeat, lp->cfg.heartbeat_ms,
                          "SIGHUP: restarting the heartbeat timer");
    }
    if (lp->nposts)
        hub_run_posts(lp);
}

void server_unlock(struct server *srv)
{
    if (--tl_depth)
        return;
    pthread_mutex_unlock(&srv->lock);
}

static void *of(uv_handle_t *h) { return h->data; }

static int init_listener(struct loop *lp);
static int open_listener(struct loop *lp, const struct sockaddr *sa,
                         int reuseport);

static void on_accept_resume(uv_timer_t *t);

/* The listener is closed (paused, or a reopening failed): try again after
 * a pause, unless the loop is stopping. */
static void resume_later(struct loop *lp)
{
    if (!lp->stopping)
        checked(uv_timer_start(&lp->accept_timer, on_accept_resume,
                               ACCEPT_PAUSE_MS, 0),
                "listener closed for good: cannot start its timer");
}

static void on_listener_paused(uv_handle_t *h) { resume_later(h->data); }

/* Stops accepting for a moment: closing the listener drops the peers
 * waiting in it, and it is reopened after a pause. */
static void pause_accepting(struct loop *lp)
{
    if (lp->accept_paused || lp->stopping)
        return;
    lp->accept_paused = 1;
    uv_close((uv_handle_t *)&lp->listener, on_listener_paused);
}

static void on_accept_resume(uv_timer_t *t)
{
    struct loop *lp = of((uv_handle_t *)t);
    struct server *srv = lp->srv;
    if (lp->stopping)
        return;
    int r = init_listener(lp);
    if (r != 0) {
        log_error("cannot reopen the listener: %s", uv_strerror(r));
        resume_later(lp); /* no handle to close */
        return;
    }
    r = open_listener(lp, (const struct sockaddr *)&srv->listen_ss,
                      srv->nloops > 1);
    if (r != 0) {
        /* Still out of descriptors, most likely: said once already. */
        uv_close((uv_handle_t *)&lp->listener, on_listener_paused);
        return;
    }
    lp->accept_paused = 0;
    log_info("accepting new connections again");
}

static void on_connection(uv_stream_t *l, int status)
{
    struct loop *lp = l->data;
    loop_now(lp);
    if (status < 0) {
        /* Say so once a second, not once per refused peer. */
        if (lp->now - lp->last_accept_log >= 1000) {
            lp->last_accept_log = lp->now;
            log_warn("accept: %s (new connections refused for now)",
                     uv_strerror(status));
        }
        /* Out of descriptors. libuv then drops the waiting peers with a
         * descriptor it keeps in reserve per loop; but with several loops
         * another thread can take the reserve's slot, and libuv then
         * calls us again at once, forever, and the loop never gets back
         * to its connections (pings, pongs, SIGTERM). Closing the
         * listener ends that; it is reopened after a pause. Live
         * connections go on throughout. */
        if (status == UV_EMFILE || status == UV_ENFILE)
            pause_accepting(lp);
        return;
    }
    /* No handle could be made for the peer (logged): libuv keeps it in
     * the listener and accepts no other until it is taken. Closing the
     * listener drops it. */
    if (conn_start(lp, l) != 0)
        pause_accepting(lp);
}

static void on_tick(uv_timer_t *t)
{
    struct loop *lp = of((uv_handle_t *)t);
    struct server *srv = lp->srv;
    loop_now(lp);
    conn_reap(lp);
    if (lp->id != 0)
        return;
    server_lock(srv);
    presence_tick(srv->presence, srv->now);
    /* Online counts for subscribers: at most once a second. */
    int trim = 0;
    if (srv->now - srv->last_online >= 1000) {
        srv->last_online = srv->now;
        hub_send_online(srv);
        /* After a burst of connects or closes, once a quiet second has
         * passed: the burst's transient buffers (snapshots and events
         * queued to thousands of sockets) are freed, but the allocator
         * keeps their pages. Give them back, so that memory follows the
         * connections held rather than the peak. */
        trim = srv->churn >= TRIM_CHURN && srv->churn == srv->last_churn;
        if (trim) {
            srv->churn = 0;
            hub_drop_caches(srv);
        }
        srv->last_churn = srv->churn;
    }
    server_unlock(srv);
    if (trim)
        malloc_trim(0);
}

static void on_heartbeat(uv_timer_t *t)
{
    struct loop *lp = of((uv_handle_t *)t);
    loop_now(lp);
    server_lock(lp->srv);
    hub_heartbeat(lp);
    server_unlock(lp->srv);
}

static void on_flush(uv_timer_t *t)
{
    struct server *srv = of((uv_handle_t *)t);
    server_lock(srv);
    hub_flush_store(srv);
    server_unlock(srv);
}

static void on_sweep(uv_timer_t *t)
{
    struct server *srv = of((uv_handle_t *)t);
    server_lock(srv);
    hub_sweep(srv, srv->cfg.stale_after_ms);
    server_unlock(srv);
}

static void on_prepare(uv_prepare_t *p)
{
    conn_flush_pending(of((uv_handle_t *)p));
}

/* uv_walk callback: closes every handle of a loop. arg is the loop's
 * listener, the one TCP handle that is not a connection. */
static void close_all(uv_handle_t *h, void *arg)
{
    if (uv_is_closing(h))
        return;
    if (h->type == UV_TCP && h != arg) {
        struct conn *c = container_of((uv_tcp_t *)h, struct conn, tcp);
        conn_close(c);
        return;
    }
    uv_close(h, NULL);
}

static void on_loop_stopped(uv_timer_t *t)
{
    struct loop *lp = of((uv_handle_t *)t);
    struct server *srv = lp->srv;
    loop_now(lp);
    if (lp->id == 0) {
        /* The other loops have closed their connections by now: wait for
         * their threads, then write what is pending. */
        for (unsigned i = 1; i < srv->nloops; i++)
            checked(uv_thread_join(&srv->loops[i]->thread),
                    "waiting for a loop thread");
        server_lock(srv);
        hub_flush_store(srv);
        store_server_clear(srv->store, (int64_t)getpid());
        server_unlock(srv);
    }
    /* posts are dropped from here on: the lock keeps others out. */
    server_lock(srv);
    lp->stopping = 2;
    server_unlock(srv);
    uv_walk(&lp->uv, close_all, &lp->listener);
}

/* On lp's thread, lock held: stop accepting, close every connection with
 * 1001, and end the loop shortly after. */
static void loop_begin_stop(struct loop *lp)
{
    if (lp->stopping)
        return;
    lp->stopping = 1;
    /* Paused, the listener is closed, or was never reopened. */
    if (!lp->accept_paused)
        uv_close((uv_handle_t *)&lp->listener, NULL);
    uv_timer_stop(&lp->accept_timer);
    uv_timer_stop(&lp->tick);
    uv_timer_stop(&lp->heartbeat);
    hub_shutdown(lp);
    api_stop(lp); /* queued logins are answered 503, not checked */
    checked(uv_timer_start(&lp->stop_timer, on_loop_stopped, STOP_DELAY_MS,
                           0),
            "stopping a loop: cannot start its stop timer");
}

static void on_wake(uv_async_t *a)
{
    struct loop *lp = of((uv_handle_t *)a);
    struct server *srv = lp->srv;
    loop_now(lp);
    server_lock(srv); /* runs the posts */
    if (srv->stopping && !lp->stopping)
        loop_begin_stop(lp);
    server_unlock(srv);
}

static void begin_stop(struct server *srv, const char *why)
{
    server_lock(srv);
    if (srv->stopping) {
        server_unlock(srv);
        return;
    }
    unsigned n = 0;
    for (unsigned i = 0; i < srv->nloops; i++)
        n += srv->loops[i]->nconns_ws;
    log_info("%s: stopping (closing %u connections)", why, n);
    srv->stopping = 1;
    uv_timer_stop(&srv->sweep);
    uv_timer_stop(&srv->flush);
    for (unsigned i = 1; i < srv->nloops; i++)
        loop_wake(srv->loops[i]);
    loop_begin_stop(srv->loops[0]);
    server_unlock(srv);
}

/* SIGHUP: everything but the address, the database, the number of loops
 * and demo mode takes effect now; windows already open keep their
 * deadlines. Lock held. */
static void reload(struct server *srv)
{
    struct config c;
    char err[CONFIG_ERRLEN] = "no reload source";
    if (!srv->reload || srv->reload(srv->reload_ud, &c, err) != 0) {
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
    struct presence_opts o = {c.grace_ms, c.login_grace_ms,
                              c.restart_grace_ms};
    presence_set_opts(srv->presence, &o);
    restart_timer(&srv->flush, on_flush, c.flush_ms,
                  "SIGHUP: restarting the flush timer");
    restart_timer(&srv->sweep, on_sweep, c.sweep_ms,
                  "SIGHUP: restarting the sweep timer");
    /* Each loop takes the new settings the next time it takes the lock;
     * this one (loop 0) at once. */
    for (unsigned i = 0; i < srv->nloops; i++) {
        srv->loops[i]->reload = 1;
        if (i)
            loop_wake(srv->loops[i]);
    }
    srv->loops[0]->reload = 0;
    srv->loops[0]->cfg = srv->cfg;
    memcpy(srv->loops[0]->secret, srv->secret, srv->secret_len);
    srv->loops[0]->secret_len = srv->secret_len;
    restart_timer(&srv->loops[0]->heartbeat, on_heartbeat, c.heartbeat_ms,
                  "SIGHUP: restarting the heartbeat timer");
    log_info("SIGHUP: configuration reloaded");
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct server *srv = of((uv_handle_t *)s);
    loop_now(srv->loops[0]);
    if (signum == SIGHUP) {
        server_lock(srv);
        reload(srv);
        server_unlock(srv);
        return;
    }
    begin_stop(srv, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

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
    return 1; /* demo: caller derives one */
}

/* Binds the socket of an initialised listener. */
static int bind_listener(struct loop *lp, const struct sockaddr *sa,
                         int reuseport)
{
    if (!reuseport)
        return uv_tcp_bind(&lp->listener, sa, 0);
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
    if (fd < 0)
        return uv_translate_sys_error(errno);
    int one = 1;
    socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        bind(fd, sa, len) != 0) {
        int e = errno;
        close(fd);
        return uv_translate_sys_error(e);
    }
    return uv_tcp_open(&lp->listener, fd);
}

/* The handle of a loop's listener: 0, or a UV_E* code and then there is
 * no handle to close. */
static int init_listener(struct loop *lp)
{
    int r = uv_tcp_init(&lp->uv, &lp->listener);
    if (r == 0)
        lp->listener.data = lp;
    return r;
}

/* Makes an initialised listener listen. With several loops each has its
 * own, bound to the same address with SO_REUSEPORT, so that the kernel
 * hands each new connection to one of them; the first binds (port 0:
 * picks the port) and the others follow it. 0 or a UV_E* code; the
 * handle stays open either way (the caller closes it). */
static int open_listener(struct loop *lp, const struct sockaddr *sa,
                         int reuseport)
{
    int r = bind_listener(lp, sa, reuseport);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&lp->listener, 4096, on_connection);
    return r;
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

static void loop_free(struct loop *lp);

/* A new loop in *out, its handles initialised but not started: 0, or a
 * UV_E* code (logged) and nothing is left of it. */
static int loop_new(struct server *srv, unsigned id, struct loop **out)
{
    struct loop *lp = xcalloc(1, sizeof *lp);
    lp->srv = srv;
    lp->id = id;
    lp->cfg = srv->cfg;
    memcpy(lp->secret, srv->secret, srv->secret_len);
    lp->secret_len = srv->secret_len;
    list_init(&lp->conns);
    list_init(&lp->pending);
    list_init(&lp->lingering);
    list_init(&lp->waiting);
    list_init(&lp->logins);
    int r = checked(uv_loop_init(&lp->uv), "cannot make an event loop");
    if (r != 0) {
        free(lp); /* a loop that failed to initialise is not closed */
        return r;
    }
    /* From here on loop_free() closes whichever handles were made. */
    uv_timer_t *timers[] = {&lp->tick, &lp->heartbeat, &lp->stop_timer,
                            &lp->accept_timer};
    for (size_t i = 0; r == 0 && i < ARRAY_LEN(timers); i++) {
        r = checked(uv_timer_init(&lp->uv, timers[i]),
                    "cannot make a loop's timer");
        timers[i]->data = lp;
    }
    if (r == 0)
        r = checked(uv_prepare_init(&lp->uv, &lp->flusher),
                    "cannot make a loop's flusher");
    lp->flusher.data = lp;
    if (r == 0)
        r = checked(uv_async_init(&lp->uv, &lp->wake, on_wake),
                    "cannot make a loop's wake-up handle");
    lp->wake.data = lp;
    if (r != 0) {
        loop_free(lp);
        return r;
    }
    lp->now = wall_ms();
    *out = lp;
    return 0;
}

/* Starts a loop's timers and flusher: 0 or a UV_E* code (logged). */
static int loop_start(struct loop *lp)
{
    int r = checked(uv_timer_start(&lp->tick, on_tick, TICK_MS, TICK_MS),
                    "cannot start a loop's tick timer");
    if (r == 0)
        r = restart_timer(&lp->heartbeat, on_heartbeat, lp->cfg.heartbeat_ms,
                          "cannot start a loop's heartbeat timer");
    if (r == 0)
        r = checked(uv_prepare_start(&lp->flusher, on_prepare),
                    "cannot start a loop's flusher");
    return r;
}

static void loop_run(void *arg)
{
    struct loop *lp = arg;
    tl_loop = lp;
    uv_run(&lp->uv, UV_RUN_DEFAULT);
    hub_thread_done();
    ws_pool_free();
    frame_thread_done();
    tl_loop = NULL;
}

/* After loop_run(), or instead of it when the start failed: then the
 * timers, the async, the prepare and the listener (if it was opened) are
 * still open, and no connection is. */
static void loop_free(struct loop *lp)
{
    if (uv_loop_close(&lp->uv) != 0) {
        uv_walk(&lp->uv, close_all, &lp->listener);
        uv_run(&lp->uv, UV_RUN_DEFAULT);
        checked(uv_loop_close(&lp->uv), "closing a loop");
    }
    free(lp->posts);
    free(lp);
}

/* A loop thread could not start: those that did (loops 1..n-1) stop as
 * at SIGTERM, and are waited for. */
static void stop_threads(struct server *srv, unsigned n)
{
    server_lock(srv);
    srv->stopping = 1;
    for (unsigned i = 1; i < n; i++)
        loop_wake(srv->loops[i]);
    server_unlock(srv);
    for (unsigned i = 1; i < n; i++)
        checked(uv_thread_join(&srv->loops[i]->thread),
                "waiting for a loop thread");
}

int server_demo_secret(const char *db, char *out, size_t outlen);

int server_run(const struct config *cfg, server_reload_cb *reload_cb,
               void *ud)
{
    struct server *srv = xcalloc(1, sizeof *srv);
    int rc = -1, lockfd = -1;
    srv->cfg = *cfg;
    srv->reload = reload_cb;
    srv->reload_ud = ud;
    /* Held for microseconds at a time: spin a little before sleeping
     * (glibc's adaptive mutex), rather than pay a futex wake-up. */
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&srv->lock, &ma);
    pthread_mutexattr_destroy(&ma);
    list_init(&srv->online_dirty);
    srv->rates = rate_new();
    srv->now = wall_ms();
    signal(SIGPIPE, SIG_IGN);
    unsigned nloops = cfg->loops > 0 ? (unsigned)cfg->loops
                                     : uv_available_parallelism();
    if (nloops > SERVER_MAX_LOOPS)
        nloops = SERVER_MAX_LOOPS;
    if (nloops < 1)
        nloops = 1;

    /* Each way the start can fail says why in one line, and the checks
     * that need nothing opened come first. */
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (parse_listen(cfg->listen, &ss) != 0) {
        log_error("bad listen address %s (use an IP address and a port, "
                  "e.g. 127.0.0.1:8080 or [::1]:8080)", cfg->listen);
        goto out_free;
    }
    /* One server per database: a second one would take over the
     * registration that CLI commands use to find the first, and two
     * presence states would write the same rows. */
    char err[STORE_ERRLEN] = "";
    int64_t holder = 0;
    int lr = store_lock(cfg->db, &lockfd, &holder, err);
    if (lr == STORE_EBUSY) {
        if (holder > 0)
            log_error("database %s is already served by another presenced "
                      "(pid %lld)", cfg->db, (long long)holder);
        else
            log_error("database %s is already served by another presenced",
                      cfg->db);
        goto out_free;
    }
    if (lr != 0) {
        log_error("cannot open database %s: %s", cfg->db, err);
        goto out_free;
    }
    /* One loop binds without SO_REUSEPORT and finds out for itself. */
    int r;
    if (nloops > 1 && sockaddr_port(&ss) != 0 &&
        (r = probe_address((struct sockaddr *)&ss)) != 0) {
        listen_failed(cfg->listen, r);
        goto out_free;
    }

    int sec = load_secret(srv);
    if (sec < 0)
        goto out_free;
    if (sec == 1) {
        char s[128];
        if (server_demo_secret(cfg->db, s, sizeof s) != 0)
            goto out_free;
        srv->secret_len = strlen(s);
        memcpy(srv->secret, s, srv->secret_len);
        log_warn("demo mode: using the generated secret in %s.secret",
                 cfg->db);
    }

    if (store_open(&srv->store, cfg->db, err) != 0) {
        log_error("cannot open database %s: %s", cfg->db, err);
        goto out_free;
    }
    /* A lock held by another process (a CLI command) must not stall a
     * loop for long: writes that fail are retried at the next flush. */
    store_set_busy_timeout(srv->store, 250);

    /* srv->nloops counts the loops made so far: those are freed below. */
    for (unsigned i = 0; i < nloops; i++) {
        if (loop_new(srv, i, &srv->loops[i]) != 0)
            goto out_loops;
        srv->nloops++;
    }
    tl_loop = srv->loops[0];
    if (hub_init(srv) != 0) {
        log_error("cannot load users from %s", cfg->db);
        goto out_loops;
    }
    for (unsigned i = 0; i < nloops; i++) {
        struct loop *lp = srv->loops[i];
        r = init_listener(lp);
        if (r == 0)
            r = open_listener(lp, (struct sockaddr *)&ss, nloops > 1);
        if (r != 0) {
            listen_failed(cfg->listen, r);
            goto out_loops;
        }
        if (i == 0) {
            /* Port 0: the others bind the port the first one got. */
            int len = sizeof ss;
            r = uv_tcp_getsockname(&lp->listener, (struct sockaddr *)&ss,
                                   &len);
            if (r != 0) {
                log_error("cannot tell the address %s was bound to: %s",
                          cfg->listen, uv_strerror(r));
                goto out_loops;
            }
            srv->listen_ss = ss;
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
    uv_loop_t *main_loop = &srv->loops[0]->uv;
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
    for (unsigned i = 0; i < nloops; i++)
        if (loop_start(srv->loops[i]) != 0)
            goto out_loops;

    /* Register so that CLI commands hand their work to us. */
    struct store_server reg = {.pid = getpid(), .started_ms = srv->now};
    snprintf(reg.listen, sizeof reg.listen, "%s", srv->listen_addr);
    auth_random_hex(srv->admin_key, 32);
    memcpy(reg.admin_key, srv->admin_key, sizeof reg.admin_key);
    if (store_server_set(srv->store, &reg) != 0)
        log_warn("could not register in the database; cleanup-stale will "
                 "not reach this server");

    for (unsigned i = 1; i < nloops; i++) {
        r = uv_thread_create(&srv->loops[i]->thread, loop_run, srv->loops[i]);
        if (r != 0) {
            stop_threads(srv, i);
            store_server_clear(srv->store, (int64_t)getpid());
            /* Last, so that the reason ends the log. */
            log_error("cannot start the thread of loop %u: %s", i,
                      uv_strerror(r));
            goto out_loops;
        }
    }
    log_info("presenced listening on http://%s (db %s, %u loop%s, grace "
             "%lldms, heartbeat %lldms)",
             srv->listen_addr, cfg->db, nloops, nloops == 1 ? "" : "s",
             (long long)cfg->grace_ms, (long long)cfg->heartbeat_ms);
    loop_run(srv->loops[0]);
    log_info("stopped");
    rc = 0;

out_loops:
    tl_loop = NULL;
    for (unsigned i = 0; i < srv->nloops; i++)
        loop_free(srv->loops[i]);
    hub_dispose(srv);
    ws_pool_free();
    store_close(srv->store);
out_free:
    /* Last: the next server may start once the database is closed. */
    if (lockfd >= 0)
        close(lockfd);
    rate_free(srv->rates);
    pthread_mutex_destroy(&srv->lock);
    free(srv);
    return rc;
}
