/* api.h - the routes: the JSON API, the pages, the WebSocket endpoints,
 * health (docs/protocol.md "HTTP API").
 *
 * http/ hands over each complete request; api/ authenticates it, routes it
 * through one table (api.c) and answers it exactly once, now or later
 * (a login, a channel list: after work on another thread). The rules of credentials,
 * cookies, CSRF and origins are auth/web.h's; api/ applies them.
 *
 * Each loop has its struct api_loop, which the server sets up and hands
 * to http/ as the request callback's data: the routes of that loop read
 * its copy of the settings and the JWT secret, and reach the shared state
 * through the hub, holding the hub's lock while they use it. */
#ifndef API_H
#define API_H
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "util/list.h"

struct http_conn;
struct http_req;
struct hub;
struct loop;
struct sessions;
struct storeq;

/* What every loop's routes share (hub lock). */
struct api_shared {
    unsigned logins;            /* logins queued or being checked */
    char admin_key[65];         /* the CLI's key for this run (read-only) */
    /* The live login sessions, so that a cookie or a login JWT is checked
     * without the store (auth/sessions.h); the store has the same rows,
     * written before a login is answered. */
    struct sessions *sessions;
};

/* One loop's routes. Fields are its thread's, but for *shared. */
struct api_loop {
    struct hub *hub;
    struct loop *lp;
    struct api_shared *shared;
    struct config cfg;          /* this loop's copy (SIGHUP updates it) */
    unsigned char secret[512];  /* ... and of the JWT secret */
    size_t secret_len;
    struct list logins;         /* logins queued on the thread pool */
};

/* Once at start (prepares the timing-equalizing dummy hash). 0 or -1. */
int api_init(void);
/* Before the loops run: shared->sessions made and filled with the live
 * sessions of the store (storeq_call()). 0, or a negative STORE_E* code. */
int api_shared_init(struct api_shared *shared, struct storeq *q,
                    int64_t now_ms);
void api_shared_dispose(struct api_shared *shared);
/* A login session another node of the cluster made or ended (hub.h
 * hub_session_cb; ud: the struct api_shared). Lock held. */
void api_session_hook(void *ud, int add, int64_t id,
                      const unsigned char hash[32], const char *org,
                      const char *user, int64_t expires_ms);
/* Hub lock held, on a loop: forgets expired sessions, in memory and (a
 * store job) in the store. */
void api_sweep(struct api_shared *shared, struct hub *hub, int64_t now_ms);
void api_loop_init(struct api_loop *a, struct hub *hub, struct loop *lp,
                   struct api_shared *shared);
/* http_request_cb (http/http.h) for the connections of a loop whose
 * api_loop is the http_conn's data: r is lent for the call (http.c frees
 * it after). Takes the hub lock. The request is answered before this
 * returns, or later through a deferred copy of its context (api_int.h). */
void api_handle(struct http_conn *h, struct http_req *r);
/* On the loop's thread at shutdown: logins still queued are answered 503
 * at once instead of being checked. */
void api_stop(struct api_loop *a);
#endif
