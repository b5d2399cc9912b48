/* server.c - the loop: listener, timers, signals, start and stop.
 *
 * One uv loop on one thread. The real-time clock is read once per event
 * (server_now) and handed to the presence core, the way Redis caches
 * mstime. Timers: `tick` closes presence windows at their deadlines,
 * `heartbeat` pings every connection and drops silent ones, `flush` writes
 * batched presence rows, `sweep` resets stale statuses. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/auth.h"
#include "net/rate.h"
#include "net/server.h"
#include "presence/presence.h"
#include "store/store.h"
#include "util/log.h"
#include "util/xalloc.h"

#define TICK_MS 100

int64_t server_now(struct server *srv)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    srv->now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return srv->now;
}

static struct server *of(uv_handle_t *h) { return h->data; }

static void on_connection(uv_stream_t *l, int status)
{
    struct server *srv = l->data;
    if (status < 0) {
        /* Out of descriptors: libuv accepts and drops the waiting peers
         * and tries again at the next one; live connections go on. Say so
         * once a second, not once per refused peer. */
        static int64_t last_log;
        server_now(srv);
        if (srv->now - last_log >= 1000) {
            last_log = srv->now;
            log_warn("accept: %s (new connections refused for now)",
                     uv_strerror(status));
        }
        return;
    }
    server_now(srv);
    conn_start(srv, l);
}

static void on_tick(uv_timer_t *t)
{
    struct server *srv = of((uv_handle_t *)t);
    presence_tick(srv->presence, server_now(srv));
    conn_reap(srv);
    /* Online counts for subscribers: at most once a second. */
    static int64_t last_online;
    if (srv->now - last_online >= 1000) {
        last_online = srv->now;
        hub_send_online(srv);
    }
}

static void on_heartbeat(uv_timer_t *t)
{
    struct server *srv = of((uv_handle_t *)t);
    server_now(srv);
    hub_heartbeat(srv);
}

static void on_flush(uv_timer_t *t)
{
    struct server *srv = of((uv_handle_t *)t);
    server_now(srv);
    hub_flush_store(srv);
}

static void on_sweep(uv_timer_t *t)
{
    struct server *srv = of((uv_handle_t *)t);
    server_now(srv);
    hub_sweep(srv, srv->cfg.stale_after_ms);
}

static void on_prepare(uv_prepare_t *p)
{
    conn_flush_pending(of((uv_handle_t *)p));
}

static void close_all(uv_handle_t *h, void *arg)
{
    if (uv_is_closing(h))
        return;
    if (h->type == UV_TCP && h->data != arg) {
        /* A connection (the listener's data is the server). */
        struct conn *c = container_of((uv_tcp_t *)h, struct conn, tcp);
        conn_close(c);
        return;
    }
    uv_close(h, NULL);
}

static void on_stop_timer(uv_timer_t *t)
{
    struct server *srv = of((uv_handle_t *)t);
    server_now(srv);
    hub_flush_store(srv);
    store_server_clear(srv->store, (int64_t)getpid());
    uv_walk(srv->loop, close_all, srv);
}

static uv_timer_t stop_timer;

static void begin_stop(struct server *srv, const char *why)
{
    if (srv->stopping)
        return;
    log_info("%s: stopping (closing %u connections)", why, srv->nconns_ws);
    server_now(srv);
    hub_shutdown(srv);
    srv->stopping = 1;
    uv_close((uv_handle_t *)&srv->listener, NULL);
    uv_timer_stop(&srv->tick);
    uv_timer_stop(&srv->heartbeat);
    uv_timer_stop(&srv->sweep);
    uv_timer_stop(&srv->flush);
    /* Give close frames a moment to leave, then write and exit. */
    uv_timer_init(srv->loop, &stop_timer);
    stop_timer.data = srv;
    uv_timer_start(&stop_timer, on_stop_timer, 200, 0);
}

static void restart_timer(uv_timer_t *t, uv_timer_cb cb, int64_t ms)
{
    uv_timer_start(t, cb, (uint64_t)ms, (uint64_t)ms);
}

/* SIGHUP: everything but the address, the database and demo mode takes
 * effect now; windows already open keep their deadlines. */
static void reload(struct server *srv)
{
    struct config c;
    char err[CONFIG_ERRLEN] = "no reload source";
    if (!srv->reload || srv->reload(srv->reload_ud, &c, err) != 0) {
        log_error("SIGHUP: configuration not reloaded: %s", err);
        return;
    }
    if (strcmp(c.listen, srv->cfg.listen) || strcmp(c.db, srv->cfg.db))
        log_warn("SIGHUP: listen and db change only at restart");
    snprintf(c.listen, sizeof c.listen, "%s", srv->cfg.listen);
    snprintf(c.db, sizeof c.db, "%s", srv->cfg.db);
    c.demo = srv->cfg.demo;
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
    restart_timer(&srv->heartbeat, on_heartbeat, c.heartbeat_ms);
    restart_timer(&srv->flush, on_flush, c.flush_ms);
    restart_timer(&srv->sweep, on_sweep, c.sweep_ms);
    log_info("SIGHUP: configuration reloaded");
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct server *srv = of((uv_handle_t *)s);
    if (signum == SIGHUP) {
        server_now(srv);
        reload(srv);
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

int server_demo_secret(const char *db, char *out, size_t outlen);

int server_run(const struct config *cfg, server_reload_cb *reload_cb,
               void *ud)
{
    struct server *srv = xcalloc(1, sizeof *srv);
    int rc = -1;
    srv->cfg = *cfg;
    srv->reload = reload_cb;
    srv->reload_ud = ud;
    list_init(&srv->conns);
    list_init(&srv->pending);
    list_init(&srv->lingering);
    list_init(&srv->waiting);
    list_init(&srv->online_dirty);
    srv->rates = rate_new();
    server_now(srv);
    signal(SIGPIPE, SIG_IGN);

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

    char err[STORE_ERRLEN] = "";
    if (store_open(&srv->store, cfg->db, err) != 0) {
        log_error("cannot open database %s: %s", cfg->db, err);
        goto out_free;
    }
    /* A lock held by another process (a CLI command) must not stall the
     * loop for long: writes that fail are retried at the next flush. */
    store_set_busy_timeout(srv->store, 250);
    if (hub_init(srv) != 0) {
        log_error("cannot load users from %s", cfg->db);
        goto out_store;
    }

    srv->loop = xmalloc(sizeof *srv->loop);
    uv_loop_init(srv->loop);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (parse_listen(cfg->listen, &ss) != 0) {
        log_error("bad listen address %s", cfg->listen);
        goto out_loop;
    }
    uv_tcp_init(srv->loop, &srv->listener);
    srv->listener.data = srv;
    int r = uv_tcp_bind(&srv->listener, (struct sockaddr *)&ss, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&srv->listener, 4096, on_connection);
    if (r != 0) {
        log_error("cannot listen on %s: %s", cfg->listen, uv_strerror(r));
        uv_close((uv_handle_t *)&srv->listener, NULL);
        uv_run(srv->loop, UV_RUN_DEFAULT);
        goto out_loop;
    }
    int len = sizeof ss;
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len);
    char host[64] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET) {
        uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof host);
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        snprintf(srv->listen_addr, sizeof srv->listen_addr, "%s:%d", host,
                 port);
    } else {
        uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof host);
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        snprintf(srv->listen_addr, sizeof srv->listen_addr, "[%s]:%d", host,
                 port);
    }

    /* Register so that CLI commands hand their work to us. */
    struct store_server reg = {.pid = getpid(), .started_ms = srv->now};
    snprintf(reg.listen, sizeof reg.listen, "%s", srv->listen_addr);
    auth_random_hex(srv->admin_key, 32);
    memcpy(reg.admin_key, srv->admin_key, sizeof reg.admin_key);
    if (store_server_set(srv->store, &reg) != 0)
        log_warn("could not register in the database; cleanup-stale will "
                 "not reach this server");

    uv_timer_t *timers[] = {&srv->tick, &srv->heartbeat, &srv->flush,
                            &srv->sweep};
    for (size_t i = 0; i < ARRAY_LEN(timers); i++) {
        uv_timer_init(srv->loop, timers[i]);
        timers[i]->data = srv;
    }
    uv_timer_start(&srv->tick, on_tick, TICK_MS, TICK_MS);
    uv_timer_start(&srv->heartbeat, on_heartbeat, (uint64_t)cfg->heartbeat_ms,
                   (uint64_t)cfg->heartbeat_ms);
    uv_timer_start(&srv->flush, on_flush, (uint64_t)cfg->flush_ms,
                   (uint64_t)cfg->flush_ms);
    uv_timer_start(&srv->sweep, on_sweep, (uint64_t)cfg->sweep_ms,
                   (uint64_t)cfg->sweep_ms);
    uv_prepare_init(srv->loop, &srv->flusher);
    srv->flusher.data = srv;
    uv_prepare_start(&srv->flusher, on_prepare);
    uv_signal_t *sigs[] = {&srv->sigterm, &srv->sigint, &srv->sighup};
    int signums[] = {SIGTERM, SIGINT, SIGHUP};
    for (size_t i = 0; i < ARRAY_LEN(sigs); i++) {
        uv_signal_init(srv->loop, sigs[i]);
        sigs[i]->data = srv;
        uv_signal_start(sigs[i], on_signal, signums[i]);
    }

    log_info("presenced listening on http://%s (db %s, grace %lldms, "
             "heartbeat %lldms)",
             srv->listen_addr, cfg->db, (long long)cfg->grace_ms,
             (long long)cfg->heartbeat_ms);
    uv_run(srv->loop, UV_RUN_DEFAULT);
    log_info("stopped");
    rc = 0;

out_loop:
    if (uv_loop_close(srv->loop) != 0) {
        uv_walk(srv->loop, close_all, srv);
        uv_run(srv->loop, UV_RUN_DEFAULT);
        uv_loop_close(srv->loop);
    }
    free(srv->loop);
out_store:
    hub_dispose(srv);
    ws_pool_free();
    store_close(srv->store);
out_free:
    rate_free(srv->rates);
    free(srv);
    return rc;
}
