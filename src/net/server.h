/* server.h - the daemon: an event loop per core, each with its listener
 * and its connections, and the glue between them and the presence core
 * and the store.
 *
 * Layers (docs/design.md): net/ owns sockets and timers; http/ parses
 * requests and routes them; ws/ speaks WebSocket over a connection; hub/
 * turns presence announcements into frames for an organization's sockets
 * and into batched store writes. presence/ and store/ know nothing of
 * sockets.
 *
 * Threads (docs/design.md "Loops"): `loops` I/O threads, each running a
 * struct loop: its own libuv loop, listening socket (SO_REUSEPORT: the
 * kernel spreads new connections), connections and timers. A connection
 * belongs to one loop for life, and only that loop's thread touches its
 * socket, its output queue and its state. The shared part - presence
 * core, store, organizations, subscriptions - is one struct server
 * behind one lock (server_lock()), taken for each request, message,
 * connect and close; the hub fields of any connection (pc, org_link,
 * subs) may be read or changed by any thread holding it. Output for
 * another loop's connections is posted to that loop (hub.c), which
 * delivers it under the lock before anything else it does there, so
 * every client sees events in order. Password hashing runs on libuv's
 * thread pool (api/login.c). */
#ifndef SERVER_H
#define SERVER_H
#include <http_parser.h>
#include <pthread.h>
#include <stdint.h>
#include <uv.h>
#include <uthash.h>
#include <wslay/wslay.h>

#include "config.h"
#include "util/buf.h"
#include "util/list.h"

struct presence;
struct presence_conn;
struct store;
struct frame;
struct ws_ctx;

/* Builds the configuration again (SIGHUP): 0, or -1 with a reason. */
typedef int server_reload_cb(void *ud, struct config *out, char *err);

#define HTTP_MAX_HEADER (16 * 1024) /* request line + headers: 431 past it */
#define CONN_SMALL_Q 2  /* frames queued in the connection itself */

/* A connection starts in CONN_HTTP, and moves only through
 * conn_set_state(), which asserts that the move is one of these:
 *   CONN_HTTP -> CONN_BUSY      a complete request is being served
 *   CONN_BUSY -> CONN_HTTP      answered, kept alive: the next request
 *   CONN_BUSY -> CONN_WS        upgraded
 *   CONN_HTTP, CONN_BUSY or CONN_WS -> CONN_CLOSING
 *                               an answer that ends it, a close handshake
 *   any state but CONN_CLOSED -> CONN_CLOSED
 *                               conn_close(), or refused at accept
 * CONN_CLOSED is final. */
enum conn_state {
    CONN_HTTP,     /* reading requests */
    CONN_BUSY,     /* a request is being served (thread pool work) */
    CONN_WS,       /* upgraded */
    CONN_CLOSING,  /* flush what is queued, then close */
    CONN_CLOSED,   /* uv_close called; freed in its callback */
};

/* The parts of a request we keep; strings NUL-terminated, owned by conn. */
struct http_req {
    int method;                 /* enum http_method */
    struct buf url;
    struct buf body;
    char *host, *origin, *upgrade, *connection, *ws_key, *ws_version,
        *authorization, *cookie, *xrw, *content_type, *if_none_match,
        *forwarded_for, *real_ip, *forwarded_proto;
    /* Set by the router: where the request comes from (the client behind
     * a trusted proxy), and whether it reached the proxy over TLS. */
    char client[48];
    int https;
    int keep_alive;
    /* parser scratch */
    struct buf hname, hvalue;
    int in_value;
    size_t header_bytes;
    int complete;
};

/* A connection's HTTP state, dropped once it is a WebSocket. */
struct http_conn {
    http_parser parser;
    struct http_req *req;       /* while reading a request */
    struct buf in;              /* unparsed input */
};

struct conn {
    uv_tcp_t tcp;               /* first: handle <-> conn */
    struct server *srv;
    struct loop *lp;            /* the loop (thread) that owns it */
    enum conn_state state;
    unsigned refs;              /* pending thread-pool work holds one */
    uv_work_t *work;            /* that work, cancelled if the peer resets */
    /* Flags. */
    unsigned close_after_write : 1;
    unsigned overflow : 1;      /* queue cap hit: closed by the flusher */
    unsigned shut : 1;          /* uv_shutdown() called */
    unsigned lingering : 1;     /* timer_link is in loop.lingering */
    unsigned subscriber : 1;    /* wants only the users it subscribed to */
    unsigned idle_at_connect : 2; /* ?auto=: 0 ONLINE (or absent), 1 AWAY,
                                     2 OFFLINE (docs/protocol.md) */
    unsigned echo : 1;          /* /ws/echo: no presence, echoes messages */
    unsigned parsing : 1;       /* inside http_on_data() */
    unsigned peer_eof : 1;      /* the peer half-closed during a request */
    char peer[48];              /* client address, for limits and logs */

    struct http_conn *h;        /* until the upgrade: HTTP state */

    /* WebSocket */
    /* wslay's context, only while a message or a close is under way
     * (ws.c ws_idle()). */
    struct ws_ctx *ws;
    struct presence_conn *pc;
    uint64_t session_id;
    /* The presence core's ids (stable: the core never drops a user while
     * it runs); the caller's strings during ws_upgrade(). */
    const char *org, *user;
    struct list org_link;       /* in struct hub_org.conns[lp->id] */
    struct list all_link;       /* in loop.conns (heartbeats) */
    int64_t last_rx_ms;

    /* Output: a queue of frame references, written with one writev per
     * loop turn (uv_write of many buffers). */
    struct frame **outq;        /* ring: out_small, or malloc'd past it */
    struct frame *out_small[CONN_SMALL_Q];
    unsigned out_head, out_len, out_cap, out_inflight;
    size_t out_bytes;
    struct frame *big;          /* queued, over max_out alone: not counted */
    uv_write_t *wreq;           /* only while a write is in flight */
    struct list pending_link;   /* in loop.pending: has output to flush */
    /* In loop.waiting while a request is awaited (deadline: header_timeout),
     * or in loop.lingering after shutdown() (deadline: linger); never
     * both. */
    struct list timer_link;
    int64_t deadline;
    int64_t msg_window;         /* msg_rate: start of this second */
    uint32_t msg_count;
    struct list subs;           /* struct sub.conn_link */
    unsigned nsubs;
};

/* The connections of one organization, by loop. Org-wide receivers are on
 * conns; subscribers on subscribers, and on the watch of each user they
 * follow. Arrays have one entry per loop. */
struct hub_org {
    char *id;
    struct list *conns;         /* struct conn.org_link: org-wide */
    struct list *subscribers;   /* struct conn.org_link: subscribers */
    unsigned *nconns;           /* both lists, per loop */
    unsigned nsubscribers;      /* all loops */
    struct watch *watches;      /* uthash by user id */
    struct list online_link;    /* in server.online_dirty */
    unsigned online_sent;       /* last online count told subscribers */
    struct frame *snap;         /* the org-wide snapshot, while current */
    uint64_t snap_seq;          /* ... as of this seq */
    unsigned snap_users;        /* ... and this many members */
    int64_t synced_version;     /* store_data_version() at the last sync */
    UT_hash_handle hh;
};

/* The subscribers of one user. */
struct watch {
    char *user;
    struct list *subs;          /* struct sub.watch_link, per loop */
    unsigned nsubs;
    UT_hash_handle hh;
};

struct sub {
    struct conn *c;
    struct watch *w;
    struct list watch_link;
    struct list conn_link;
};

#define HUB_MAX_SUBS 10000      /* subscriptions per connection */

#define SERVER_MAX_LOOPS 64

/* Work one loop hands another (under the server lock; hub.c). */
struct post {
    int kind;                   /* enum post_kind in hub.c */
    struct hub_org *o;
    char *user;
    struct frame *f;
    uint64_t session;
};

/* One event loop and what it owns. Fields are its thread's alone, but for
 * posts (server lock). */
struct loop {
    struct server *srv;
    unsigned id;                /* index in server.loops */
    uv_loop_t uv;
    uv_tcp_t listener;
    uv_timer_t tick, heartbeat, stop_timer;
    uv_timer_t accept_timer;    /* reopens the listener after a pause */
    int accept_paused;          /* listener closed: out of descriptors */
    uv_prepare_t flusher;       /* writes queued output before polling */
    uv_async_t wake;            /* posts arrived, or stop */
    uv_thread_t thread;         /* loops 1..n-1 */
    struct config cfg;          /* this thread's copy (SIGHUP updates it) */
    unsigned char secret[512];  /* ... and of the JWT secret */
    size_t secret_len;
    int64_t now;                /* ms since the epoch, refreshed per event */
    struct list conns;          /* its WebSocket connections */
    struct list pending;        /* connections with output to write */
    struct list lingering;      /* half-closed, draining input until EOF */
    struct list waiting;        /* HTTP connections awaiting a request */
    struct list logins;         /* logins queued on the thread pool */
    unsigned nconns_ws;         /* server lock: /healthz reads every loop's */
    unsigned nconns_all;        /* open handles, WebSocket or not */
    int stopping;               /* 1 closing, 2 closed; set under the lock,
                                   read by loop_wake() from any loop */
    int64_t last_accept_log;
    struct post *posts;         /* server lock */
    size_t nposts, capposts;
    int reload;                 /* server lock: take srv->cfg again */
};

struct server {
    struct loop *loops[SERVER_MAX_LOOPS];
    unsigned nloops;
    /* server_lock(): everything below, but for what start-up sets before
     * the loops run and never changes (admin_key, listen_addr, listen_ss,
     * reload, reload_ud). */
    pthread_mutex_t lock;
    uv_timer_t flush, sweep;    /* on loop 0 */
    uv_signal_t sigterm, sigint, sighup;
    struct config cfg;
    struct store *store;
    struct presence *presence;
    struct hub_org *orgs;       /* uthash by id */
    struct list online_dirty;   /* large orgs whose online count moved */
    struct frame *ping;         /* shared heartbeat ping frame */
    struct rate_table *rates;   /* logins, new connections, statuses */
    unsigned logins;            /* logins queued or being checked */
    unsigned char secret[512];
    size_t secret_len;
    char admin_key[65];
    char listen_addr[128];      /* actual address, after bind */
    struct sockaddr_storage listen_ss; /* ... as bound, for reopening */
    int stopping;
    unsigned long churn;        /* connects + closes since memory was trimmed */
    unsigned long last_churn;   /* ... as of the last check (on_tick) */
    int64_t last_online;        /* when hub_send_online() last ran */
    /* hub.c: presence rows whose store write failed, kept for the next
     * flush (struct pending_write is hub.c's). */
    struct pending_write *pw;
    size_t pw_len, pw_cap;
    server_reload_cb *reload;
    void *reload_ud;
    int64_t now;                /* ms since the epoch, as of server_lock() */
};

/* Runs the server until SIGTERM/SIGINT. cfg is copied. On SIGHUP, reload
 * (may be NULL) gives the new configuration. Returns 0 on a clean stop,
 * -1 if it could not start (reason logged). */
int server_run(const struct config *cfg, server_reload_cb *reload, void *ud);

/* Refreshes lp->now from the real-time clock and returns it. */
int64_t loop_now(struct loop *lp);

/* The server lock, which guards struct server and the hub fields of every
 * connection. Re-entrant on one thread. Taking it refreshes srv->now
 * (never backwards) and first delivers what other loops posted to this
 * thread's loop. */
void server_lock(struct server *srv);
void server_unlock(struct server *srv);
/* The loop of the calling thread; NULL off the loop threads. */
struct loop *loop_current(void);
void loop_wake(struct loop *lp);  /* lock held: run its posts soon */

/* net/conn.c */
/* Moves c to state s; asserts the move is allowed (enum conn_state). */
void conn_set_state(struct conn *c, enum conn_state s);
void conn_send(struct conn *c, struct frame *f); /* takes a new reference */
void conn_send_bytes(struct conn *c, const void *p, size_t n); /* copies */
/* Flushes what is queued, then closes. */
void conn_close_after_write(struct conn *c);
void conn_close(struct conn *c); /* at once; safe to repeat */
void conn_ref(struct conn *c);
void conn_unref(struct conn *c);
/* Accepts the next peer of listener. Returns 0 once the peer is off the
 * listener: served, or closed at once (a failed accept or read, over
 * conn_rate). Returns a negative UV_E* code (logged) if no handle could
 * be made for it: libuv then keeps the peer in the listener and accepts
 * no other until it is taken, so the caller must close the listener. */
int conn_start(struct loop *lp, uv_stream_t *listener);
void conn_flush_pending(struct loop *lp);
/* Closes lingering connections, and answers 408 to requests that did not
 * arrive in time (slowloris), whose time is up. */
void conn_reap(struct loop *lp);
/* (Re)starts the header_timeout clock of a connection awaiting a request. */
void conn_wait_request(struct conn *c);

/* http/http.c */
void http_conn_init(struct conn *c); /* allocates c->h */
void http_conn_free(struct conn *c);
void http_on_data(struct conn *c);   /* parse c->in */
void http_req_free(struct http_req *r);
/* Writes a response with a JSON body; extra_headers is "" or CRLF-ended
 * lines. Keeps the connection open if the request allowed it. */
void http_respond(struct conn *c, int status, const char *extra_headers,
                  const char *content_type, const char *body, size_t len);
void http_respond_json(struct conn *c, int status, const char *extra_headers,
                       const struct buf *body);
void http_error(struct conn *c, int status, const char *code,
                const char *message);
void http_error_ex(struct conn *c, int status, const char *extra_headers,
                   const char *code, const char *message);
/* Called when a response has been queued: resumes reading requests. */
void http_done(struct conn *c);

/* ws/ws.c */
/* 0 if r is a valid upgrade request, else -1 after a 400/426 answer. */
int ws_upgrade_check(struct conn *c, struct http_req *r);
/* For a request that passed ws_upgrade_check(): queues the 101 response
 * and switches c to CONN_WS (authenticated as org/user/session, which are
 * borrowed for the call; org NULL: the echo endpoint). Returns 0, or -1
 * after responding with an error. */
int ws_upgrade(struct conn *c, struct http_req *r, const char *org,
               const char *user, uint64_t session_id);
void ws_on_data(struct conn *c, const void *data, size_t len);
/* Starts the close handshake with code (a WS_CLOSE_*, ws/ws.h); does
 * nothing unless c is in CONN_WS. */
void ws_close(struct conn *c, uint16_t code, const char *reason);
void ws_conn_free(struct conn *c);
void ws_pool_free(void);             /* at exit: the idle contexts */

/* hub/hub.c: everything with the server lock held. */
int hub_init(struct server *srv);
void hub_dispose(struct server *srv);
void hub_attach(struct conn *c);     /* after upgrade: join org, hello */
void hub_detach(struct conn *c);     /* on close */
void hub_on_message(struct conn *c, const char *data, size_t len,
                    int binary);
/* docs/security.md status_rate: 1 if user may change its status now
 * (counts this change), 0 if over the limit. */
int hub_status_allowed(struct server *srv, const char *org,
                       const char *user);
/* Closes the connections of one login session (1008) and leaves the
 * user's presence to their closing (grace), unlike a logout. */
void hub_revoke_session(struct server *srv, const char *org,
                        const char *user, uint64_t session_id);
/* Manual status from the API or a frame: core, then the store at once. */
int hub_set_manual(struct server *srv, const char *org, const char *user,
                   int status);
void hub_heartbeat(struct loop *lp);  /* its connections */
/* Delivers what other loops posted to lp (server_lock() does this). */
void hub_run_posts(struct loop *lp);
/* Tells subscribers of large organizations their new online count (at
 * most once per call per organization; called every second). */
void hub_send_online(struct server *srv);
void hub_flush_store(struct server *srv);
int hub_sweep(struct server *srv, int64_t older_than_ms);
/* Closes every connection of a login session (1008) without grace. */
void hub_end_session(struct server *srv, const char *org, const char *user,
                     uint64_t session_id);
/* Makes sure org/user exist in store and presence (token provisioning). */
int hub_ensure_user(struct server *srv, const char *org, const char *user,
                    const char *name);
void hub_shutdown(struct loop *lp);   /* closes its connections (1001) */
void hub_thread_done(void);          /* frees this thread's buffers */
/* Drops the cached organization snapshots (rebuilt at the next connect):
 * they serve connect bursts, and are dead weight after one. */
void hub_drop_caches(struct server *srv);
/* Loads members the store has and the core lacks (added by the CLI). */
void hub_sync_org(struct server *srv, const char *org);
#endif
