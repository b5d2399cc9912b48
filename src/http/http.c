/* http.c - HTTP/1.1 requests over a connection, with libhttp-parser.
 *
 * The parser is fed from conn->in and pauses after each complete request,
 * so requests are served one at a time per connection (pipelined ones wait
 * in conn->in). Only the headers presenced uses are kept; the request line
 * and headers together are capped at HTTP_MAX_HEADER (431 past it) and the
 * body at HTTP_MAX_BODY (413).
 *
 * The parser library is built lenient: it takes a space inside or after a
 * header name and any one-digit HTTP version. Where RFC 9112 says a server
 * must reject, the callbacks below do (400): a header name of anything but
 * token characters (so no whitespace before the colon, 5.1), a version
 * other than 1.0 or 1.1 (2.3), and an HTTP/1.1 request without exactly one
 * Host (3.2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "net/server.h"
#include "presence/msg.h"
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

static struct conn *conn_of(http_parser *p) { return p->data; }

static int refuse(struct conn *c, int why)
{
    c->h->req->complete = -why;
    return -1; /* an error to the parser (1 from headers_complete would
                  mean "no body") */
}

static int count(struct conn *c, size_t n)
{
    c->h->req->header_bytes += n;
    return c->h->req->header_bytes > HTTP_MAX_HEADER
               ? refuse(c, TOO_BIG_HEADER)
               : 0;
}

static int on_begin(http_parser *p)
{
    struct conn *c = conn_of(p);
    http_req_free(c->h->req);
    c->h->req = req_new((size_t)c->lp->cfg.max_body);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t n)
{
    struct conn *c = conn_of(p);
    if (count(c, n) || buf_append(&c->h->req->url, at, n))
        return refuse(c, TOO_BIG_HEADER);
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
    struct conn *c = conn_of(p);
    struct http_req *r = c->h->req;
    if (r->in_value) {
        int why = store_header(r);
        if (why)
            return refuse(c, why);
        r->in_value = 0;
    }
    /* The name may come in pieces; each byte is checked as it comes. A
     * space before the colon reaches us as the end of the name. */
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)at[i]))
            return refuse(c, BAD_FIELD_NAME);
    if (count(c, n) || buf_append(&r->hname, at, n))
        return refuse(c, TOO_BIG_HEADER);
    return 0;
}

static int on_hvalue(http_parser *p, const char *at, size_t n)
{
    struct conn *c = conn_of(p);
    struct http_req *r = c->h->req;
    r->in_value = 1;
    if (count(c, n) || buf_append(&r->hvalue, at, n))
        return refuse(c, TOO_BIG_HEADER);
    return 0;
}

static int on_headers_done(http_parser *p)
{
    struct conn *c = conn_of(p);
    struct http_req *r = c->h->req;
    int why = store_header(r);
    if (why)
        return refuse(c, why);
    /* HTTP/0.9 (no version at all) comes out as 0.9; 1.2, 2.0 as such. */
    if (p->http_major != 1 || p->http_minor > 1)
        return refuse(c, BAD_VERSION);
    /* HTTP/1.0 may leave Host out (RFC 9112 3.2 binds 1.1 clients). */
    if (p->http_minor == 1 && !r->host)
        return refuse(c, NO_HOST);
    r->method = p->method;
    r->keep_alive = http_should_keep_alive(p);
    if (p->content_length != ULLONG_MAX &&
        p->content_length > (uint64_t)c->lp->cfg.max_body)
        return refuse(c, TOO_BIG_BODY);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t n)
{
    struct conn *c = conn_of(p);
    if (buf_append(&c->h->req->body, at, n))
        return refuse(c, TOO_BIG_BODY);
    return 0;
}

static int on_complete(http_parser *p)
{
    struct conn *c = conn_of(p);
    c->h->req->complete = 1;
    http_parser_pause(p, 1);
    return 0;
}

static void parse(struct conn *c);

static const http_parser_settings settings = {
    .on_message_begin = on_begin,
    .on_url = on_url,
    .on_header_field = on_hfield,
    .on_header_value = on_hvalue,
    .on_headers_complete = on_headers_done,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

void http_conn_init(struct conn *c)
{
    c->h = xcalloc(1, sizeof *c->h);
    buf_init(&c->h->in, HTTP_MAX_HEADER + (size_t)c->lp->cfg.max_body + 1024);
    http_parser_init(&c->h->parser, HTTP_REQUEST);
    c->h->parser.data = c;
}

void http_conn_free(struct conn *c)
{
    if (!c->h)
        return;
    buf_dispose(&c->h->in);
    http_req_free(c->h->req);
    free(c->h);
    c->h = NULL;
}

void http_on_data(struct conn *c)
{
    /* A response written inside the loop below resumes reading through
     * http_done(); the loop itself then goes on with the next pipelined
     * request, instead of a recursion as deep as the pipeline. */
    if (c->parsing)
        return;
    c->parsing = 1;
    conn_ref(c);
    parse(c);
    c->parsing = 0;
    conn_unref(c);
}

static void parse(struct conn *c)
{
    while (c->state == CONN_HTTP && c->h->in.len) {
        size_t n = http_parser_execute(&c->h->parser, &settings, c->h->in.data,
                                       c->h->in.len);
        enum http_errno e = HTTP_PARSER_ERRNO(&c->h->parser);
        struct http_req *r = c->h->req;
        if (r && r->complete < 0) {
            int why = -r->complete;
            http_error(c, refusals[why].status, refusals[why].code,
                       refusals[why].message);
            conn_close_after_write(c);
            return;
        }
        if (e != HPE_OK && e != HPE_PAUSED) {
            http_error(c, 400, "bad_request", http_errno_description(e));
            conn_close_after_write(c);
            return;
        }
        buf_consume(&c->h->in, n);
        if (!r || r->complete != 1)
            return; /* need more bytes */
        c->h->req = NULL;
        conn_set_state(c, CONN_BUSY);
        list_remove(&c->timer_link);
        api_handle(c, r); /* takes the server lock */
        http_req_free(r);
        if (c->state != CONN_HTTP && c->state != CONN_BUSY) {
            /* Upgraded (or closing): no more requests on it. */
            http_conn_free(c);
            return;
        }
    }
}

void http_done(struct conn *c)
{
    if (c->state != CONN_BUSY)
        return;
    conn_set_state(c, CONN_HTTP);
    conn_wait_request(c);
    http_parser_pause(&c->h->parser, 0);
    http_on_data(c);
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

void http_respond(struct conn *c, int status, const char *extra_headers,
                  const char *content_type, const char *body, size_t len)
{
    if (c->state == CONN_CLOSED)
        return;
    int keep = c->state == CONN_BUSY && c->h->parser.http_major == 1 &&
               http_should_keep_alive(&c->h->parser) && status < 400 &&
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
    if (len && c->h->parser.method != HTTP_HEAD && status != 304)
        buf_append(&b, body, len);
    conn_send_bytes(c, b.data, b.len);
    buf_dispose(&b);
    if (keep)
        http_done(c);
    else
        conn_close_after_write(c);
}

void http_respond_json(struct conn *c, int status, const char *extra_headers,
                       const struct buf *body)
{
    http_respond(c, status, extra_headers, "application/json", body->data,
                 body->len);
}

void http_error(struct conn *c, int status, const char *code,
                const char *message)
{
    http_error_ex(c, status, NULL, code, message);
}

void http_error_ex(struct conn *c, int status, const char *extra_headers,
                   const char *code, const char *message)
{
    struct buf b;
    buf_init(&b, 0);
    buf_puts(&b, "{\"error\":{\"code\":");
    msg_append_string(&b, code);
    buf_puts(&b, ",\"message\":");
    msg_append_string(&b, message);
    buf_puts(&b, "}}");
    http_respond_json(c, status, extra_headers, &b);
    buf_dispose(&b);
}
