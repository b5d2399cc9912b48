/* http.h - HTTP/1.1 requests and responses over a transport connection.
 *
 * http_conn_new() makes a connection speak HTTP: it installs itself as the
 * connection's handler (net/net.h), parses requests with libhttp-parser,
 * and hands each complete one to its owner's callback, one at a time
 * (pipelined requests wait). The owner answers with http_respond*() or
 * http_error*(), at once or later (the connection is then "busy": reading
 * stops until the answer), or hands the connection to another protocol
 * (ws_accept(), ws/ws.h). It knows nothing of routes, users or presence.
 *
 * Limits: request line and headers together HTTP_MAX_HEADER (431), body
 * max_body (413), a request must arrive within header_timeout (408).
 *
 * Threads: everything on the connection's loop thread. */
#ifndef HTTP_H
#define HTTP_H
#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

struct conn;
struct http_conn;

#define HTTP_MAX_HEADER (16 * 1024) /* request line + headers: 431 past it */

/* The parts of a request we keep; strings NUL-terminated, owned by the
 * request (http_req_free()). */
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
    int again;                  /* the owner's: delivered a second time */
    int _kept;                  /* http_keep(): the owner frees it */
    int keep_alive;
    /* parser scratch */
    struct buf hname, hvalue;
    int in_value;
    size_t header_bytes;
    int complete;
};
void http_req_free(struct http_req *r); /* NULL is a no-op */

/* A complete request, lent for the call (freed after it returns). The
 * connection is busy until an answer is queued (http_respond*()), the
 * connection closes, or it is handed over (ws_accept()). */
typedef void http_request_cb(struct http_conn *h, struct http_req *r);
/* The connection closed while an answer was awaited (http_wait()). */
typedef void http_abort_cb(void *arg);

struct http_opts {
    const char *peer;           /* the peer's address, if known; NULL: asked */
    size_t max_body;
    int64_t header_timeout_ms;
    http_request_cb *on_request;
    void *data;                 /* the owner's: http_data() */
};

/* Makes c speak HTTP (its handler from now on). Fields starting with `_`
 * are http.c's. */
struct http_conn {
    struct conn *c;
    char peer[48];              /* the peer's address, as text */
    struct http_opts o;
    http_parser _parser;
    struct http_req *_req;      /* while reading a request */
    struct buf _in;             /* unparsed input */
    unsigned _busy : 1;         /* a request is being answered */
    unsigned _parsing : 1;      /* inside the parse loop */
    unsigned _handed_over : 1;  /* another protocol took the connection */
    http_abort_cb *_abort;
    void *_abort_arg;
};
void http_conn_new(struct conn *c, const struct http_opts *o);
static inline void *http_data(const struct http_conn *h) { return h->o.data; }

/* Writes a response; extra_headers is "" or CRLF-ended lines. Keeps the
 * connection open if the request allowed it (and the answer is not an
 * error), else closes it after the write. */
void http_respond(struct http_conn *h, int status, const char *extra_headers,
                  const char *content_type, const char *body, size_t len);
void http_respond_json(struct http_conn *h, int status,
                       const char *extra_headers, const struct buf *body);
/* {"error":{"code":...,"message":...}} with status. */
void http_error(struct http_conn *h, int status, const char *code,
                const char *message);
void http_error_ex(struct http_conn *h, int status, const char *extra_headers,
                   const char *code, const char *message);
/* The answer will come later: if the connection closes first, abort(arg)
 * is called once (cancel the work). Cleared by the answer, or by
 * http_wait(h, NULL, NULL). */
void http_wait(struct http_conn *h, http_abort_cb *abort, void *arg);
/* Inside on_request: the owner keeps r (the connection stays busy) and
 * hands it back with http_redeliver(), which calls on_request with it
 * again (then frees it unless kept again), or frees it with
 * http_req_free() if the connection is gone meanwhile. */
void http_keep(struct http_req *r);
void http_redeliver(struct http_conn *h, struct http_req *r);
/* 1 while a request awaits its answer on an open connection. */
int http_busy(const struct http_conn *h);
/* For a protocol taking the connection over (ws_accept()): the input read
 * past the request, moved out (*len bytes, caller frees); the HTTP state
 * is freed when the new handler is installed. */
char *http_hand_over(struct http_conn *h, size_t *len);
#endif
