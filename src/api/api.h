/* api.h - the routes: the JSON API, the pages, the WebSocket endpoints,
 * health (docs/protocol.md "HTTP API").
 *
 * http/ hands over each complete request; api/ authenticates it, routes it
 * through one table (api.c) and answers it exactly once, now or later
 * (a login answers from the thread pool). The rules of credentials,
 * cookies, CSRF and origins are auth/web.h's; api/ applies them and looks
 * sessions up in the store. */
#ifndef API_H
#define API_H

struct conn;
struct http_req;
struct loop;

/* Routes one complete request of c, which is in CONN_BUSY: r is lent for
 * the call (http.c frees it after). Takes the server lock. The request is
 * answered before this returns, or later through a deferred copy of its
 * context (api_int.h), c staying in CONN_BUSY until then. */
void api_handle(struct conn *c, struct http_req *r);
/* Once at start (prepares the timing-equalizing dummy hash). 0 or -1. */
int api_init(void);
/* On lp's thread at shutdown: logins still queued are answered 503 at
 * once instead of being checked. */
void api_stop(struct loop *lp);
#endif
