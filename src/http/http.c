/* http.c - HTTP/1.1 requests over a connection, with libhttp-parser.
 *
 * The parser is fed from h->_in and pauses after each complete request,
 * so requests are served one at a time per connection (pipelined ones wait
 * in h->_in). Only the headers presenced uses are kept; the request line
 * and headers together are capped at HTTP_MAX_HEADER (431 past it) and the
 * body at the max_body setting (413).
 *
 * The parser library is built lenient: it takes a space inside or after a
 * header name and any one-digit HTTP version. Where RFC 9112 says a server
 * must reject, the callbacks below do (400): a header name of anything but
 * token characters (so no whitespace before the colon, 5.1), a version
 * other than 1.0 or 1.1 (2.3), and an HTTP/1.1 request without exactly one
 * Host (3.2). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"
#include "net/net.h"
#include "util/log.h"
#include "util/xalloc.h"

/* Why a request was refused before it was complete (req->complete holds
 * the negative); see refusals[] for the answers. */
enum {
    TOO_BIG_HEADER = 1,
    TOO_BIG_BODY,
    BAD_FIELD_NAME,
    BAD_VERSION,
    NO_HOST,
    TWO_HOSTS,
};

static const struct {
    int status;
    const char *code, *message;
} refusals[] = {
    [TOO_BIG_HEADER] = {431, "too_large", "request line or headers too large"},
    [TOO_BIG_BODY] = {413, "too_large", "request body too large"},
    [BAD_FIELD_NAME] = {400, "bad_request",
                        "header name with a character other than a token's "
                        "(whitespace before the colon?)"},
    [BAD_VERSION] = {400, "bad_request",
                     "HTTP version not supported (1.0 and 1.1 only)"},
    [NO_HOST] = {400, "bad_request", "HTTP/1.1 request without a Host header"},
    [TWO_HOSTS] = {400, "bad_request", "more than one Host header"},
};

static struct http_req *req_new(size_t max_body)
{
    struct http_req *r = xcalloc(1, sizeof *r);
    buf_init(&r->url, HTTP_MAX_HEADER);
    buf_init(&r->body, max_body);
    buf_init(&r->hname, HTTP_MAX_HEADER);
    buf_init(&r->hvalue, HTTP_MAX_HEADER);
    return r;
}

void http_req_free(struct http_req *r)
{
    if (!r)
        return;
    buf_dispose(&r->url);
    buf_dispose(&r->body);
    buf_dispose(&r->hname);
    buf_dispose(&r->hvalue);
    char **fields[] = {&r->host, &r->origin, &r->upgrade, &r->connection,
                       &r->ws_key, &r->ws_version, &r->authorization,
                       &r->cookie, &r->xrw, &r->content_type,
                       &r->if_none_match, &r->forwarded_for, &r->real_ip,
                       &r->forwarded_proto};
    for (size_t i = 0; i < ARRAY_LEN(fields); i++)
        free(*fields[i]);
    free(r);
}

static struct http_conn *conn_of(http_parser *p) { return p->data; }

static int refuse(struct http_conn *h, int why)
{
    h->_req->complete = -why;
    return -1; /* an error to the parser (1 from headers_complete would
                  mean "no body") */
}

static int count(struct http_conn *h, size_t n)
{
    h->_req->header_bytes += n;
    return h->_req->header_bytes > HTTP_MAX_HEADER
               ? refuse(h, TOO_BIG_HEADER)
               : 0;
}

static int on_begin(http_parser *p)
{
    struct http_conn *h = conn_of(p);
    http_req_free(h->_req);
    h->_req = req_new(h->o.max_body);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct http_conn *h = conn_of(p);
    if (count(h, n) || buf_append(&h->_req->url, at, n))
        return refuse(h, TOO_BIG_HEADER);
    return 0;
}

/* RFC 9110 5.6.2: tchar, what a header name is made of. */
static int is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Keeps the headers we use; a repeated one keeps its first value, so a
 * second Authorization or Origin cannot override the first. A second Host
 * is refused outright: two servers (a proxy and us) could each believe a
 * different one. Returns 0 or a refusal. */
static int store_header(struct http_req *r)
{
    static const struct {
        const char *name;
        size_t off;
    } keep[] = {
        {"host", offsetof(struct http_req, host)},
        {"origin", offsetof(struct http_req, origin)},
        {"upgrade", offsetof(struct http_req, upgrade)},
        {"connection", offsetof(struct http_req, connection)},
        {"sec-websocket-key", offsetof(struct http_req, ws_key)},
        {"sec-websocket-version", offsetof(struct http_req, ws_version)},
        {"authorization", offsetof(struct http_req, authorization)},
        {"cookie", offsetof(struct http_req, cookie)},
        {"x-requested-with", offsetof(struct http_req, xrw)},
        {"content-type", offsetof(struct http_req, content_type)},
        {"if-none-match", offsetof(struct http_req, if_none_match)},
        {"x-forwarded-for", offsetof(struct http_req, forwarded_for)},
        {"x-real-ip", offsetof(struct http_req, real_ip)},
        {"x-forwarded-proto", offsetof(struct http_req, forwarded_proto)},
    };
    if (!r->hname.len)
        return 0;
    for (size_t i = 0; i < ARRAY_LEN(keep); i++) {
        if (strcasecmp(r->hname.data, keep[i].name) == 0) {
            char **slot = (char **)((char *)r + keep[i].off);
            const char *v = r->hvalue.len ? r->hvalue.data : "";
            if (*slot && slot == &r->host)
                return TWO_HOSTS;
            if (!*slot) {
                *slot = xstrdup(v);
            } else if (slot == &r->forwarded_for) {
                /* A list split over several lines is one list (RFC 9110
                 * 5.3), and the hop nearest to us is the last one. */
                size_t n = strlen(*slot);
                *slot = xrealloc(*slot, n + 2 + strlen(v) + 1);
                sprintf(*slot + n, ", %s", v);
            }
            break;
        }
    }
    buf_reset(&r->hname);
    buf_reset(&r->hvalue);
    return 0;
}

static int on_hfield(http_parser *p, const char *at, size_t n)
{
    struct http_conn *h = conn_of(p);
    struct http_req *r = h->_req;
    if (r->in_value) {
        int why = store_header(r);
        if (why)
            return refuse(h, why);
        r->in_value = 0;
    }
    /* The name may come in pieces; each byte is checked as it comes. A
     * space before the colon reaches us as the end of the name. */
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)at[i]))
            return refuse(h, BAD_FIELD_NAME);
    if (count(h, n) || buf_append(&r->hname, at, n))
        return refuse(h, TOO_BIG_HEADER);
    return 0;
}

static int on_hvalue(http_parser *p, const char *at, size_t n)
{
    struct http_conn *h = conn_of(p);
    struct http_req *r = h->_req;
    r->in_value = 1;
    if (count(h, n) || buf_append(&r->hvalue, at, n))
        return refuse(h, TOO_BIG_HEADER);
    return 0;
}

static int on_headers_done(http_parser *p)
{
    struct http_conn *h = conn_of(p);
    struct http_req *r = h->_req;
    int why = store_header(r);
    if (why)
        return refuse(h, why);
    /* HTTP/0.9 (no version at all) comes out as 0.9; 1.2, 2.0 as such. */
    if (p->http_major != 1 || p->http_minor > 1)
        return refuse(h, BAD_VERSION);
    /* HTTP/1.0 may leave Host out (RFC 9112 3.2 binds 1.1 clients). */
    if (p->http_minor == 1 && !r->host)
        return refuse(h, NO_HOST);
    r->method = p->method;
    r->keep_alive = http_should_keep_alive(p);
    if (p->content_length != ULLONG_MAX &&
        p->content_length > (uint64_t)h->o.max_body)
        return refuse(h, TOO_BIG_BODY);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct http_conn *h = conn_of(p);
    if (buf_append(&h->_req->body, at, n))
        return refuse(h, TOO_BIG_BODY);
    return 0;
}

static int on_complete(http_parser *p)
{
    struct http_conn *h = conn_of(p);
    h->_req->complete = 1;
    http_parser_pause(p, 1);
    return 0;
}

static void parse(struct http_conn *h);

static const http_parser_settings settings = {
    .on_message_begin = on_begin,
    .on_url = on_url,
    .on_header_field = on_hfield,
    .on_header_value = on_hvalue,
    .on_headers_complete = on_headers_done,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

static struct http_conn *of(struct conn *c) { return c->data; }

static void conn_free(struct http_conn *h)
{
    buf_dispose(&h->_in);
    http_req_free(h->_req);
    free(h);
}

static void on_data(struct conn *c, const char *data, size_t len)
{
    struct http_conn *h = of(c);
    if (buf_append(&h->_in, data, len)) {
        http_error(h, 431, "too_large", "request too large");
        return;
    }
    if (h->_busy)
        return; /* pipelined: parsed once the answer is out */
    /* A response written inside the loop below resumes reading through
     * done(); the loop itself then goes on with the next pipelined
     * request, instead of a recursion as deep as the pipeline. */
    if (h->_parsing)
        return;
    h->_parsing = 1;
    conn_ref(c);
    parse(h);
    h->_parsing = 0;
    if (h->_handed_over)
        conn_free(h); /* the new handler owns the connection now */
    conn_unref(c);
}

/* A half-close after a request: the client waits for its answer. */
static int on_eof(struct conn *c) { return of(c)->_busy; }

static void on_timeout(struct conn *c)
{
    struct http_conn *h = of(c);
    /* A request that trickles in (slowloris) must not hold a socket
     * forever. */
    if (!h->_busy)
        http_error(h, 408, "timeout", "request not received in time");
}

static void on_closing(struct conn *c)
{
    struct http_conn *h = of(c);
    http_abort_cb *abort = h->_abort;
    h->_abort = NULL;
    if (abort)
        abort(h->_abort_arg);
}

static void on_free(struct conn *c) { conn_free(of(c)); }

static const struct conn_handler handler = {
    .on_data = on_data,
    .on_eof = on_eof,
    .on_timeout = on_timeout,
    .on_closing = on_closing,
    .on_free = on_free,
};

void http_conn_new(struct conn *c, const struct http_opts *o)
{
    struct http_conn *h = xcalloc(1, sizeof *h);
    h->c = c;
    h->o = *o;
    if (o->peer)
        snprintf(h->peer, sizeof h->peer, "%s", o->peer);
    else
        conn_peer(c, h->peer, sizeof h->peer);
    h->o.peer = NULL; /* the caller's string */
    buf_init(&h->_in, HTTP_MAX_HEADER + o->max_body + 1024);
    http_parser_init(&h->_parser, HTTP_REQUEST);
    h->_parser.data = h;
    conn_set_handler(c, &handler, h);
    conn_set_deadline(c, o->header_timeout_ms);
}

static void parse(struct http_conn *h)
{
    struct conn *c = h->c;
    while (conn_is_open(c) && !h->_busy && !h->_handed_over && h->_in.len) {
        size_t n = http_parser_execute(&h->_parser, &settings, h->_in.data,
                                       h->_in.len);
        enum http_errno e = HTTP_PARSER_ERRNO(&h->_parser);
        struct http_req *r = h->_req;
        if (r && r->complete < 0) {
            int why = -r->complete;
            http_error(h, refusals[why].status, refusals[why].code,
                       refusals[why].message);
            return;
        }
        if (e != HPE_OK && e != HPE_PAUSED) {
            http_error(h, 400, "bad_request", http_errno_description(e));
            return;
        }
        buf_consume(&h->_in, n);
        if (!r || r->complete != 1)
            return; /* need more bytes */
        h->_req = NULL;
        h->_busy = 1;
        conn_clear_deadline(c);
        h->o.on_request(h, r);
        if (!r->_kept)
            http_req_free(r);
    }
}

void http_keep(struct http_req *r) { r->_kept = 1; }

void http_redeliver(struct http_conn *h, struct http_req *r)
{
    r->_kept = 0;
    if (http_busy(h))
        h->o.on_request(h, r);
    if (!r->_kept)
        http_req_free(r);
}

/* An answer is queued: read the next request. */
static void done(struct http_conn *h)
{
    if (!h->_busy)
        return;
    h->_busy = 0;
    h->_abort = NULL;
    conn_set_deadline(h->c, h->o.header_timeout_ms);
    http_parser_pause(&h->_parser, 0);
    if (h->_parsing || !h->_in.len)
        return;
    h->_parsing = 1;
    conn_ref(h->c);
    parse(h);
    h->_parsing = 0;
    struct conn *c = h->c;
    if (h->_handed_over)
        conn_free(h);
    conn_unref(c);
}

void http_wait(struct http_conn *h, http_abort_cb *abort, void *arg)
{
    h->_abort = abort;
    h->_abort_arg = arg;
}

int http_busy(const struct http_conn *h)
{
    return h->_busy && conn_is_open(h->c);
}

char *http_hand_over(struct http_conn *h, size_t *len)
{
    char *rest = buf_steal(&h->_in, len);
    h->_handed_over = 1;
    h->_busy = 0;
    h->_abort = NULL;
    conn_clear_deadline(h->c);
    /* Inside the parse loop, that loop frees it once it unwinds. */
    if (!h->_parsing)
        conn_free(h);
    return rest;
}

static const char *reason(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return status >= 500 ? "Internal Server Error" : "Error";
    }
}

void http_respond(struct http_conn *h, int status, const char *extra_headers,
                  const char *content_type, const char *body, size_t len)
{
    struct conn *c = h->c;
    if (!conn_is_open(c))
        return;
    int keep = h->_busy && h->_parser.http_major == 1 &&
               http_should_keep_alive(&h->_parser) && status < 400 &&
               !c->peer_eof;
    struct buf b;
    buf_init(&b, 0);
    /* API answers are never cached unless the caller says otherwise. */
    int own_cache = extra_headers && strstr(extra_headers, "Cache-Control:");
    buf_printf(&b,
               "HTTP/1.1 %d %s\r\n"
               "Content-Type: %s\r\n"
               "Content-Length: %zu\r\n"
               "%s"
               "X-Content-Type-Options: nosniff\r\n"
               "Connection: %s\r\n%s\r\n",
               status, reason(status), content_type, len,
               own_cache ? "" : "Cache-Control: no-store\r\n",
               keep ? "keep-alive" : "close",
               extra_headers ? extra_headers : "");
    if (len && h->_parser.method != HTTP_HEAD && status != 304)
        buf_append(&b, body, len);
    conn_send_bytes(c, b.data, b.len);
    buf_dispose(&b);
    if (keep)
        done(h);
    else
        conn_close_after_write(c);
}

void http_respond_json(struct http_conn *h, int status,
                       const char *extra_headers, const struct buf *body)
{
    http_respond(h, status, extra_headers, "application/json", body->data,
                 body->len);
}

void http_error(struct http_conn *h, int status, const char *code,
                const char *message)
{
    http_error_ex(h, status, NULL, code, message);
}

void http_error_ex(struct http_conn *h, int status, const char *extra_headers,
                   const char *code, const char *message)
{
    /* json_string() refuses invalid UTF-8: a message that is not (it
     * quotes client input) goes out without its detail. */
    json_t *e = json_pack("{s:{s:s,s:s?}}", "error", "code", code, "message",
                          message);
    if (!e)
        e = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message",
                      "(not UTF-8)");
    char *body = e ? json_dumps(e, JSON_COMPACT) : NULL;
    json_decref(e);
    if (!body)
        abort(); /* out of memory */
    http_respond(h, status, extra_headers, "application/json", body,
                 strlen(body));
    free(body);
}
