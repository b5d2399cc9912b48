/* fuzz_http.c - HTTP requests as the server reads them off a socket.
 *
 * Input: a flags byte, a chunker seed byte, then the bytes a client sends.
 * They reach the real http.c (libhttp-parser glue), api/ (routing;
 * authentication by token, bearer or cookie; JSON bodies), ws.c (the
 * upgrade, then frames sent right behind it), hub.c and store.c, in reads
 * of sizes chosen by the seed, with only the transport and the clock faked
 * (fake_server.c). Flags: bits 0-1 allowed_origins, bits 2-3 the time
 * between reads (1 ms to 11 s: the header timeout), bit 4 a SIGTERM-style
 * shutdown at the end, bit 5 the peer hangs up, bit 6 /ws/echo is mounted
 * (echo_endpoint).
 *
 * Checked beyond "no crash, no leak, no undefined behaviour":
 *   - what api_handle() is given: a complete request on a connection
 *     awaiting its answer, url and body within HTTP_MAX_HEADER / max_body
 *     and NUL-terminated, every kept header NUL-terminated within the
 *     header cap;
 *   - every request is answered exactly once (api/api.h's promise), now
 *     or later (a login, a store job: api_req_defer());
 *   - every response is well formed and JSON bodies parse (fake_server.c),
 *     every frame after a 101 too;
 *   - nothing of o1 or o2 reaches a client that never authenticated into
 *     that organization (fake_server.c, fuzz_isolation).
 * api_handle is wrapped with the linker (-Wl,--wrap=api_handle), so api/
 * is linked unchanged. */
#include <string.h>

#include "fuzz.h"
#include "http/http.h"
#include "net/net.h"

void __real_api_handle(struct http_conn *h, struct http_req *r);

static const char *const origins[] = {
    NULL, /* the default: only the server's own */
    "*",
    "http://app.example.com, https://other.example",
    "null",
};

/* Answers given by api_handle calls that have returned (see below). */
static long attributed;

static void check_header(const char *s, const char *name)
{
    if (s)
        CHECK(strnlen(s, HTTP_MAX_HEADER + 1) <= HTTP_MAX_HEADER,
              "header %s longer than the header cap", name);
}

void __wrap_api_handle(struct http_conn *h, struct http_req *r)
{
    struct conn *c = h->c; /* alive for the call: http.c holds a ref */
    CHECK(http_busy(h), "api_handle on a connection not awaiting it");
    CHECK(h->_req == NULL, "request still owned by the parser");
    CHECK(r->complete == 1, "incomplete request routed");
    CHECK(r->header_bytes <= HTTP_MAX_HEADER, "header bytes %zu",
          r->header_bytes);
    CHECK(r->url.len <= HTTP_MAX_HEADER, "url of %zu bytes", r->url.len);
    CHECK(r->body.len <= h->o.max_body, "body of %zu bytes", r->body.len);
    CHECK(!r->url.len || r->url.data[r->url.len] == '\0', "url not NUL-ended");
    CHECK(!r->body.len || r->body.data[r->body.len] == '\0',
          "body not NUL-ended");
    CHECK(r->keep_alive == 0 || r->keep_alive == 1, "keep_alive %d",
          r->keep_alive);
    check_header(r->host, "host");
    check_header(r->origin, "origin");
    check_header(r->upgrade, "upgrade");
    check_header(r->connection, "connection");
    check_header(r->ws_key, "sec-websocket-key");
    check_header(r->ws_version, "sec-websocket-version");
    check_header(r->authorization, "authorization");
    check_header(r->cookie, "cookie");
    check_header(r->xrw, "x-requested-with");
    check_header(r->content_type, "content-type");

    /* A keep-alive answer resumes parsing, so the next pipelined request
     * is routed from inside this one's answer: count only the answers not
     * attributed to those nested calls. */
    long start = fuzz_answers, nested = attributed;
    unsigned refs = c->_refs;
    __real_api_handle(h, r);
    long mine = (fuzz_answers - start) - (attributed - nested);
    attributed += mine;
    if (mine == 0)
        CHECK(c->_refs > refs || c->state == CONN_CLOSED,
              "request %.*s left unanswered", (int)r->url.len,
              r->url.data);
    else
        CHECK(mine == 1, "request %.*s answered %ld times",
              (int)r->url.len, r->url.data, mine);
}

static const int64_t steps[] = {1, 1000, 3000, 11000};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint8_t flags = data[0];
    struct config cfg;
    config_defaults(&cfg);
    if (origins[flags & 3])
        snprintf(cfg.allowed_origins, sizeof cfg.allowed_origins, "%s",
                 origins[flags & 3]);
    cfg.echo_endpoint = (flags & 0x40) != 0;
    struct fake_server *srv = fake_server_new(&cfg);
    fuzz_isolation = !memmem(data, size, "-secret", 7);
    struct fake_sock *s = fake_accept(srv);
    CHECK(s, "first connection refused");
    struct chunker ch;
    chunker_init(&ch, data[1]);
    const uint8_t *p = data + 2;
    size_t left = size - 2;
    while (left) {
        size_t n = chunker_next(&ch, left);
        if (fake_read(s, p, n, steps[(flags >> 2) & 3]) != 0)
            break;
        p += n;
        left -= n;
    }
    if (flags & 0x20)
        fake_hangup(s);
    fake_server_free(srv, flags & 0x10);
    return 0;
}
