/* api_int.h - shared inside src/api/ only: the request context every
 * handler is given, the route table's types, the helpers and the handlers.
 *
 * Files: api.c (the route table, the context, authentication, dispatch,
 * health and the admin sweep), login.c (login and logout, the password
 * check on the thread pool), members.c (members, presence, status,
 * channels, projects), directory.c (the members directory, a page at a
 * time), pages.c (the HTML pages, the 404 page and their assets),
 * socket.c (the WebSocket endpoints). */
#ifndef API_INT_H
#define API_INT_H
#include <jansson.h>
#include <stdint.h>

#include "api/api.h"
#include "auth/jwt.h"
#include "auth/web.h"
#include "http/http.h"
#include "hub/hub.h"
#include "net/net.h"
#include "store/store.h"

#define API_ANY (-1)            /* a route's method: any */
#define API_MAX_PARAMS 2        /* named segments in one pattern */

/* What a route needs before its handler runs (api.c dispatch()). */
enum api_need {
    API_NONE,       /* anyone */
    API_ADMIN,      /* "Authorization: Admin <key>": else 401 */
    API_PAGE,       /* a live session cookie: else 302 to /login */
    API_USER,       /* a bearer JWT or the session cookie: else 401, and
                       that before the method is checked, so that a caller
                       without credentials learns nothing of the API's
                       shape; changes made by cookie pass the CSRF rule */
    API_SOCKET,     /* a ?token=, a bearer JWT or the cookie, checked by
                       the handler itself (api_authenticate()) after the
                       handshake's own checks */
};

/* The caller, once authenticated. */
struct api_who {
    char org[STORE_ID_MAX + 1];
    char user[STORE_ID_MAX + 1];
    char name[STORE_NAME_MAX + 1];  /* from the JWT; "" by cookie */
    uint64_t session;               /* login session; 0 for a plain JWT */
    int via_cookie;
};

/* A named segment of the route's pattern (":id", "*id"), decoded. */
struct api_param {
    const char *name;               /* into the pattern: not terminated */
    size_t name_len;
    int len;                        /* -1: malformed, empty or too long */
    char value[STORE_ID_MAX + 1];
};

/* The credential the request presents, read once, before the hub's lock
 * (auth/web.h web_credential() says which): a JWT verified there, a
 * session cookie hashed there. The store is asked under the lock. */
struct api_cred {
    enum web_cred_kind kind;
    int jwt_rc;                     /* WEB_CRED_TOKEN: jwt_verify() */
    struct jwt_claims claims;       /* ... when jwt_rc is 0 */
    unsigned char session[32];      /* WEB_CRED_SESSION: its SHA-256 */
};

/* The request being served, as every handler sees it.
 *
 * Who owns it: api_handle() builds it on its stack and lends it to the
 * handler for the call. A handler answers exactly once: before it returns
 * (http_respond(), http_error(), hub_accept() on q->c), or later. To answer
 * later it calls api_req_defer() before returning, which gives a heap copy
 * that keeps q->c alive; whoever finishes the work (on q->c's loop thread,
 * hub lock held) answers through it if api_req_live(), then calls
 * api_req_free() exactly once, answered or not. Everything in the struct
 * is a copy, but for the fields marked lent: those point into the request,
 * which http.c frees once api_handle() returns, and are NULL (0) in a
 * deferred copy. A handler that finishes later reads what it needs of
 * them (the body, the query) before deferring. */
struct api_req {
    struct http_conn *c;
    struct api_loop *srv;
    struct http_req *r;             /* lent */
    const char *path, *query;       /* lent; query NULL if none */
    size_t plen, qlen;
    struct web_req web;             /* lent: r's headers for auth/web.h */
    int method;                     /* enum http_method */
    const char *pattern;            /* the route's (static) */
    char client[48];                /* who sent it (trusted_proxies) */
    int https;                      /* it reached the proxy over TLS */
    struct api_param params[API_MAX_PARAMS];
    unsigned nparams;
    struct api_cred cred;
    struct api_who who;             /* valid once authed */
    int authed;
    int session_miss;               /* the session was not in the table */
};

typedef void api_route_cb(struct api_req *q);

/* ---- the context (api.c) -------------------------------------------- */

/* The decoded value of the path's segment name (as in the pattern, ":id"
 * -> "id"), or NULL if the pattern has none or it did not decode (a bad
 * escape, a NUL, longer than STORE_ID_MAX). */
const char *api_param(const struct api_req *q, const char *name);
/* For API_SOCKET routes: identifies the caller from q->cred into q->who
 * and makes sure it exists (token provisioning). 0, or -1 after a 401. */
int api_authenticate(struct api_req *q);
/* A heap copy of q for answering later (see struct api_req), holding a
 * reference on q->c. Never fails. */
struct api_req *api_req_defer(const struct api_req *q);
/* 1 if q->c still waits for this answer (not reset or closed since). */
int api_req_live(const struct api_req *q);
/* Frees a deferred copy and drops its reference on q->c (which may free
 * the connection). On q->c's loop thread. NULL is a no-op. */
void api_req_free(struct api_req *q);

/* ---- helpers (api.c) ------------------------------------------------ */

/* The body of a state-changing request as a JSON object (the caller
 * json_decref()s it); NULL after a 415 or 400 answer. */
json_t *api_body_json(struct api_req *q);
/* Answers status with the JSON that jansson's json_pack(fmt, ...) builds
 * (compact, keys in order); extra_headers as http_respond(). */
void api_respond_pack(struct api_req *q, int status,
                      const char *extra_headers, const char *fmt, ...);
/* Answers 200 with user of the caller's organization as the caller sees
 * it (itself: the truth; another: as presence_public() shows it), or 404
 * "no such user". */
void api_respond_member(struct api_req *q, const char *user);

/* ---- handlers ------------------------------------------------------- */

/* The answer when the store could not do a job: 503 with Retry-After for
 * a database that is down (STORE_EDOWN), busy (STORE_EIO) or a full or
 * closing queue; 500 otherwise. what: "read the database", ... */
void api_store_error(struct api_req *q, int rc, const char *what);

void api_healthz(struct api_req *q);         /* api.c */
void api_cleanup(struct api_req *q);
void api_login(struct api_req *q);           /* login.c */
void api_logout(struct api_req *q);
void api_me(struct api_req *q);              /* members.c */
void api_presence(struct api_req *q);
void api_status(struct api_req *q);
void api_dnd(struct api_req *q);
void api_profile(struct api_req *q);
void api_notify(struct api_req *q);
void api_presets(struct api_req *q);        /* presets.c */
void api_admin_presets(struct api_req *q);
void api_user(struct api_req *q);
void api_channels(struct api_req *q);
void api_channel(struct api_req *q);
void api_projects(struct api_req *q);
void api_project(struct api_req *q);
/* GET /api/members?q=&offset=&limit=: one page of the caller's
 * organization, sorted by name, or 400 for a bad parameter. */
void api_members(struct api_req *q);         /* directory.c */
void api_page(struct api_req *q);            /* pages.c */
void api_asset(struct api_req *q);
/* An API_PAGE route without a live session: 302 to the login page. */
void api_page_login(struct api_req *q);
/* A path no other route takes: the HTML 404 page for a GET outside /api,
 * /ws and /static (anyone may see it), else the JSON 404 "no such page". */
void api_page_missing(struct api_req *q);
void api_ws_presence(struct api_req *q);     /* socket.c */
void api_ws_echo(struct api_req *q);
#endif
