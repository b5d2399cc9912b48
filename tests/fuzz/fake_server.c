/* fake_server.c - a socket, a loop and a database for the fuzz targets.
 *
 * Everything from net/conn.c up runs unchanged: conn.c itself is included
 * below with the few libuv calls that touch a socket (uv_tcp_init,
 * uv_accept, uv_read_start, uv_write, uv_shutdown, uv_close...) redirected
 * to fakes, and http/, ws/, hub/, presence/ and auth/ are linked as they
 * are. A fake socket hands conn.c the reads the harness chooses, and what
 * conn.c writes is checked instead of sent:
 *   - every HTTP response (checked when it is queued, by wrapping
 *     conn_send_bytes) has a status line, no bare CR or LF or NUL inside
 *     its head, a Content-Length equal to its body, and a JSON body that
 *     parses if it says it is JSON;
 *   - after a 101, every frame is final, unmasked, of a known opcode, a
 *     control frame at most 125 bytes, a text frame UTF-8 JSON, a close
 *     frame a valid code and a UTF-8 reason;
 *   - nothing of one organization reaches a client that never
 *     authenticated as a member of it (fuzz_isolation).
 * The timers of net/server.c are run by fake_turn() from a fake clock, and
 * store/ is a few arrays (see "store/" below), reset for every server.
 *
 * The thread pool is real: a login checks its password there, and
 * fake_turn() runs the loop until that work is done, so that every input
 * runs the same way each time. */
#include <jansson.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "auth/auth.h"
#include "auth/jwt.h"
#include "fuzz.h"
#include "http/assets.h"
#include "presence/presence.h"
#include "store/store.h"
#include "util/log.h"
#include "util/rate.h"
#include "util/xalloc.h"
#include "ws/frame.h"

/* ---- net/conn.c, on fake sockets --------------------------------------- */

static int fake_uv_tcp_init(uv_loop_t *loop, uv_tcp_t *h);
static int fake_uv_accept(uv_stream_t *server, uv_stream_t *client);
static int fake_uv_tcp_nodelay(uv_tcp_t *h, int enable);
static int fake_uv_tcp_getpeername(const uv_tcp_t *h, struct sockaddr *name,
                                   int *namelen);
static int fake_uv_read_start(uv_stream_t *s, uv_alloc_cb alloc_cb,
                              uv_read_cb read_cb);
static int fake_uv_read_stop(uv_stream_t *s) __attribute__((unused));
static int fake_uv_write(uv_write_t *req, uv_stream_t *s,
                         const uv_buf_t bufs[], unsigned nbufs,
                         uv_write_cb cb);
static int fake_uv_shutdown(uv_shutdown_t *req, uv_stream_t *s,
                            uv_shutdown_cb cb);
static void fake_uv_close(uv_handle_t *h, uv_close_cb cb);
static int fake_uv_is_closing(const uv_handle_t *h) __attribute__((unused));

#define uv_tcp_init fake_uv_tcp_init
#define uv_accept fake_uv_accept
#define uv_tcp_nodelay fake_uv_tcp_nodelay
#define uv_tcp_getpeername fake_uv_tcp_getpeername
#define uv_read_start fake_uv_read_start
#define uv_read_stop fake_uv_read_stop
#define uv_write fake_uv_write
#define uv_shutdown fake_uv_shutdown
#define uv_close fake_uv_close
#define uv_is_closing fake_uv_is_closing
/* Wrapped below, to check each response as it is queued. */
#define conn_send_bytes real_conn_send_bytes
#include "net/conn.c"
#undef conn_send_bytes
#undef uv_tcp_init
#undef uv_accept
#undef uv_tcp_nodelay
#undef uv_tcp_getpeername
#undef uv_read_start
#undef uv_read_stop
#undef uv_write
#undef uv_shutdown
#undef uv_close
#undef uv_is_closing

/* ---- Fake sockets ------------------------------------------------------ */

#define MAX_SOCKS 8

struct fake_sock {
    uv_tcp_t *h;            /* conn.c's handle: &conn->tcp */
    struct server *srv;
    uv_alloc_cb alloc_cb;
    uv_read_cb read_cb;
    int reading;
    int closing;            /* uv_close() called */
    int freed;              /* its close callback ran: conn is gone */
    int shut;               /* uv_shutdown() called */
    int upgraded;           /* a 101 was queued: responses are over */
    int wire_upgraded;      /* a 101 was written: frames follow */
    int echo;               /* a /ws/echo connection: text is not JSON */
    struct buf frames;      /* written frame bytes not yet checked */
    size_t written;
};

static struct fake_sock socks[MAX_SOCKS];

int fuzz_isolation;
static unsigned orgs_seen; /* bit 0: o1, bit 1: o2 */

void fuzz_saw_org(const char *org)
{
    if (!strcmp(org, "o1"))
        orgs_seen |= 1;
    else if (!strcmp(org, "o2"))
        orgs_seen |= 2;
}

/* docs/security.md isolation: o1's names reach only a caller of o1, and
 * o2's only a caller of o2. */
static void check_isolation(const char *p, size_t n)
{
    if (!fuzz_isolation)
        return;
    CHECK((orgs_seen & 1) || !memmem(p, n, "o1-secret", 9),
          "o1 data sent to a client that never authenticated as o1");
    CHECK((orgs_seen & 2) || !memmem(p, n, "o2-secret", 9),
          "o2 data sent to a client that never authenticated as o2");
}
static size_t nsocks;
static struct server *cur_srv;

/* Completions libuv would deliver on a later loop turn. */
enum { EV_WRITE, EV_SHUTDOWN, EV_CLOSE };
struct event {
    int type;
    void *req;
    void *cb;
};
static struct event *events;
static size_t nevents, events_cap;

static void push_event(int type, void *req, void *cb)
{
    if (nevents == events_cap) {
        events_cap = events_cap ? 2 * events_cap : 16;
        events = xrealloc(events, events_cap * sizeof *events);
    }
    events[nevents++] = (struct event){type, req, cb};
}

static struct fake_sock *sock_of(const void *h)
{
    for (size_t i = 0; i < nsocks; i++)
        if (socks[i].h == h && !socks[i].freed)
            return &socks[i];
    CHECK(0, "libuv call on a handle that is not an open socket");
    return NULL;
}

long fuzz_answers;

/* Header value of name in a response head [p, e), or NULL. */
static const char *find_header(const char *p, const char *e, const char *name,
                               size_t *vlen)
{
    size_t nl = strlen(name);
    while (p < e) {
        const char *eol = memmem(p, (size_t)(e - p), "\r\n", 2);
        if (!eol)
            eol = e;
        if ((size_t)(eol - p) > nl && strncasecmp(p, name, nl) == 0 &&
            p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < eol && *v == ' ')
                v++;
            *vlen = (size_t)(eol - v);
            return v;
        }
        p = eol + 2;
    }
    return NULL;
}

/* One complete HTTP response, as http_respond() or ws_upgrade() makes it.
 * Returns its status. */
static int check_response(struct conn *c, const char *p, size_t n)
{
    CHECK(n >= 17 && memcmp(p, "HTTP/1.1 ", 9) == 0,
          "response does not start with a status line: %.*s",
          (int)(n < 40 ? n : 40), p);
    int status = atoi(p + 9);
    CHECK(status >= 100 && status <= 599 && p[12] == ' ', "bad status %d",
          status);
    const char *end = memmem(p, n, "\r\n\r\n", 4);
    CHECK(end, "response head not terminated");
    const char *head_end = end + 2, *body = end + 4;
    size_t body_len = n - (size_t)(body - p);
    /* Response splitting: a header line holds no CR or LF of its own. */
    for (const char *q = p; q < head_end; q++) {
        if (*q == '\r')
            CHECK(q[1] == '\n', "bare CR in a response header");
        if (*q == '\n')
            CHECK(q > p && q[-1] == '\r', "bare LF in a response header");
        CHECK(*q != '\0', "NUL in a response header");
    }
    if (status == 101) {
        CHECK(body_len == 0, "101 with a body");
        return status;
    }
    size_t vlen;
    const char *cl = find_header(p, head_end, "Content-Length", &vlen);
    CHECK(cl, "response without Content-Length");
    size_t want = strtoull(cl, NULL, 10);
    if (c->h && c->h->parser.method == HTTP_HEAD)
        CHECK(body_len == 0 || body_len == want, "HEAD body");
    else
        CHECK(body_len == want, "Content-Length %zu, body %zu", want,
              body_len);
    const char *ct = find_header(p, head_end, "Content-Type", &vlen);
    CHECK(ct, "response without Content-Type");
    if (body_len && vlen >= 16 && memcmp(ct, "application/json", 16) == 0) {
        CHECK(fuzz_utf8_valid((const unsigned char *)body, body_len),
              "JSON body is not UTF-8");
        json_error_t je;
        json_t *j = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, &je);
        CHECK(j && json_is_object(j), "JSON body does not parse: %s: %.*s",
              je.text, (int)body_len, body);
        json_decref(j);
    }
    return status;
}

void conn_send_bytes(struct conn *c, const void *p, size_t n)
{
    struct fake_sock *s = sock_of(&c->tcp);
    if (!s->upgraded && c->state != CONN_CLOSED) {
        /* Nothing answers in CONN_CLOSING (the parser stops, conn.c drops
         * input, a login finishing late checks for CONN_BUSY): a response
         * there is a request answered twice. */
        CHECK(c->state != CONN_CLOSING,
              "a response queued on a closing connection: %.*s",
              (int)(n < 60 ? n : 60), (const char *)p);
        if (c->state == CONN_BUSY)
            fuzz_answers++;
        if (check_response(c, p, n) == 101)
            s->upgraded = 1;
    }
    real_conn_send_bytes(c, p, n);
}

/* The frames written so far; a frame split over two writes waits. */
static void check_frames(struct fake_sock *s)
{
    struct buf *b = &s->frames;
    const unsigned char *p = (const unsigned char *)b->data;
    size_t n = b->len, i = 0;
    while (n - i >= 2) {
        int fin = p[i] >> 7, rsv = (p[i] >> 4) & 7, op = p[i] & 15;
        int masked = p[i + 1] >> 7;
        uint64_t len = p[i + 1] & 127;
        size_t h = 2;
        CHECK(fin && !rsv && !masked, "server frame %02x %02x", p[i],
              p[i + 1]);
        CHECK(op == 1 || op == 2 || op == 8 || op == 9 || op == 10,
              "server frame opcode %d", op);
        if (len == 126) {
            if (n - i < 4)
                break;
            len = (uint64_t)p[i + 2] << 8 | p[i + 3];
            h = 4;
        } else if (len == 127) {
            if (n - i < 10)
                break;
            len = 0;
            for (int k = 0; k < 8; k++)
                len = len << 8 | p[i + 2 + k];
            h = 10;
        }
        if (len > n - i - h)
            break;
        const unsigned char *pl = p + i + h;
        if (op >= 8)
            CHECK(len <= 125, "control frame of %llu bytes",
                  (unsigned long long)len);
        if (op == 1) {
            CHECK(fuzz_utf8_valid(pl, len), "text frame is not UTF-8");
            if (s->echo)
                goto next; /* /ws/echo returns what it was sent */
            json_t *j = json_loadb((const char *)pl, len,
                                   JSON_REJECT_DUPLICATES, NULL);
            CHECK(j && json_is_object(j), "text frame is not JSON: %.*s",
                  (int)len, pl);
            json_decref(j);
        }
        if (op == 8 && len) {
            CHECK(len >= 2, "close frame with a 1-byte payload");
            int code = pl[0] << 8 | pl[1];
            CHECK(code >= 1000 && code < 5000 && code != 1004 &&
                      code != 1005 && code != 1006 && code != 1015,
                  "close code %d", code);
            CHECK(fuzz_utf8_valid(pl + 2, len - 2), "close reason UTF-8");
        }
    next:
        i += h + len;
    }
    buf_consume(b, i);
}

/* FUZZ_TRACE=1 in the environment prints what each socket is sent, for
 * reading a reproducer's run. */
static int trace = -1;

static void trace_bytes(struct fake_sock *s, const char *p, size_t n)
{
    fprintf(stderr, "[sock %d] ", (int)(s - socks));
    for (size_t i = 0; i < n && i < 400; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '\\')
            fputc(ch, stderr);
        else
            fprintf(stderr, "\\x%02x", ch);
    }
    fprintf(stderr, "%s\n", n > 400 ? "..." : "");
}

static int fake_uv_tcp_init(uv_loop_t *loop, uv_tcp_t *h)
{
    CHECK(nsocks < MAX_SOCKS, "too many sockets for the harness");
    memset(h, 0, sizeof *h);
    h->loop = loop;
    h->type = UV_TCP;
    struct fake_sock *s = &socks[nsocks++];
    memset(s, 0, sizeof *s);
    s->h = h;
    s->srv = cur_srv;
    buf_init(&s->frames, 0);
    return 0;
}

static int fake_uv_accept(uv_stream_t *server, uv_stream_t *client)
{
    return 0;
}

static int fake_uv_tcp_nodelay(uv_tcp_t *h, int enable) { return 0; }

static int fake_uv_tcp_getpeername(const uv_tcp_t *h, struct sockaddr *name,
                                   int *namelen)
{
    struct sockaddr_in sin;
    CHECK(*namelen >= (int)sizeof sin, "getpeername buffer");
    uv_ip4_addr("192.0.2.1", 40000, &sin);
    memcpy(name, &sin, sizeof sin);
    *namelen = sizeof sin;
    return 0;
}

static int fake_uv_read_start(uv_stream_t *st, uv_alloc_cb alloc_cb,
                              uv_read_cb read_cb)
{
    struct fake_sock *s = sock_of(st);
    CHECK(!s->closing, "uv_read_start on a closing handle");
    s->alloc_cb = alloc_cb;
    s->read_cb = read_cb;
    s->reading = 1;
    return 0;
}

static int fake_uv_read_stop(uv_stream_t *st)
{
    sock_of(st)->reading = 0;
    return 0;
}

static int fake_uv_write(uv_write_t *req, uv_stream_t *st,
                         const uv_buf_t bufs[], unsigned nbufs,
                         uv_write_cb cb)
{
    struct fake_sock *s = sock_of(st);
    CHECK(!s->closing, "uv_write on a closing handle");
    CHECK(!s->shut, "uv_write after uv_shutdown");
    CHECK(nbufs > 0, "empty uv_write");
    s->echo = container_of(s->h, struct conn, tcp)->echo;
    for (unsigned i = 0; i < nbufs; i++) {
        const char *p = bufs[i].base;
        size_t n = bufs[i].len;
        s->written += n;
        if (trace)
            trace_bytes(s, p, n);
        check_isolation(p, n);
        if (!s->wire_upgraded) {
            /* Each queued response is one buffer (one conn_send). */
            CHECK(n >= 12 && memcmp(p, "HTTP/1.1 ", 9) == 0,
                  "bytes before the 101 that are not a response");
            if (memcmp(p + 9, "101", 3) == 0)
                s->wire_upgraded = 1;
            continue;
        }
        CHECK(buf_append(&s->frames, p, n) == 0, "frame buffer");
    }
    check_frames(s);
    req->handle = st;
    push_event(EV_WRITE, req, (void *)cb);
    return 0;
}

static int fake_uv_shutdown(uv_shutdown_t *req, uv_stream_t *st,
                            uv_shutdown_cb cb)
{
    struct fake_sock *s = sock_of(st);
    if (s->closing || s->shut)
        return UV_ENOTCONN;
    s->shut = 1;
    req->handle = st;
    push_event(EV_SHUTDOWN, req, (void *)cb);
    return 0;
}

static void fake_uv_close(uv_handle_t *h, uv_close_cb cb)
{
    struct fake_sock *s = sock_of(h);
    CHECK(!s->closing, "uv_close called twice");
    s->closing = 1;
    s->reading = 0;
    push_event(EV_CLOSE, h, (void *)cb);
}

static int fake_uv_is_closing(const uv_handle_t *h)
{
    return sock_of(h)->closing;
}

/* Delivers the completions, as the loop's poll and closing phases do:
 * writes and shutdowns first (cancelled if their handle is closing), then
 * close callbacks. Callbacks may queue more; runs until none are left. */
static int run_events(void)
{
    int ran = 0;
    while (nevents) {
        size_t n = nevents;
        struct event *ev = xmalloc(n * sizeof *ev);
        memcpy(ev, events, n * sizeof *ev);
        nevents = 0;
        for (int pass = 0; pass < 2; pass++) {
            for (size_t i = 0; i < n; i++) {
                if ((ev[i].type == EV_CLOSE) != pass)
                    continue;
                ran = 1;
                if (ev[i].type == EV_WRITE) {
                    uv_write_t *req = ev[i].req;
                    int st = sock_of(req->handle)->closing ? UV_ECANCELED : 0;
                    ((uv_write_cb)ev[i].cb)(req, st);
                } else if (ev[i].type == EV_SHUTDOWN) {
                    uv_shutdown_t *req = ev[i].req;
                    ((uv_shutdown_cb)ev[i].cb)(req, 0);
                } else {
                    struct fake_sock *s = sock_of(ev[i].req);
                    s->freed = 1;
                    if (ev[i].cb)
                        ((uv_close_cb)ev[i].cb)(ev[i].req);
                }
            }
        }
        free(ev);
    }
    return ran;
}

/* ---- net/server.c ------------------------------------------------------ */

/* One loop, the harness's. Its libuv loop is real (the thread pool runs
 * on it); its clock is fake_turn()'s: it moves only when the harness says
 * so. With one loop nothing is ever posted, and the lock has nothing to
 * guard. */
static struct loop floop;

int64_t loop_now(struct loop *lp)
{
    lp->now = lp->srv->now;
    return lp->now;
}
void server_lock(struct server *srv)
{
    floop.now = srv->now;
    if (floop.nposts)
        hub_run_posts(&floop);
}
void server_unlock(struct server *srv) {}
struct loop *loop_current(void) { return &floop; }
void loop_wake(struct loop *lp) {}

/* ---- The harness side -------------------------------------------------- */

static int loop_ready;
static uv_tcp_t listener;
static int64_t last_heartbeat, last_flush, last_sweep;

struct fake_sock *fake_accept(struct server *srv)
{
    size_t before = nsocks;
    cur_srv = srv;
    floop.now = srv->now;
    conn_start(&floop, (uv_stream_t *)&listener);
    CHECK(nsocks == before + 1, "conn_start made no handle");
    struct fake_sock *s = &socks[before];
    fake_turn(srv, 0);
    return s->freed ? NULL : s; /* refused (conn_rate) */
}

struct conn *fake_conn(struct fake_sock *s)
{
    return s && !s->freed ? container_of(s->h, struct conn, tcp) : NULL;
}

int fake_upgraded(struct fake_sock *s) { return s->upgraded; }
size_t fake_written(struct fake_sock *s) { return s->written; }

int fake_read(struct fake_sock *s, const void *p, size_t n,
              int64_t advance_ms)
{
    const char *q = p;
    while (n && s->reading && !s->freed) {
        uv_buf_t b = uv_buf_init(NULL, 0);
        s->alloc_cb((uv_handle_t *)s->h, 65536, &b);
        CHECK(b.base && b.len, "no read buffer");
        size_t k = n < b.len ? n : b.len;
        memcpy(b.base, q, k);
        s->read_cb((uv_stream_t *)s->h, (ssize_t)k, &b);
        q += k;
        n -= k;
    }
    fake_turn(s->srv, advance_ms);
    struct conn *c = fake_conn(s);
    return c && s->reading && c->state != CONN_CLOSING ? 0 : -1;
}

void fake_hangup(struct fake_sock *s)
{
    if (!s->freed && s->reading) {
        uv_buf_t b = uv_buf_init(NULL, 0);
        s->read_cb((uv_stream_t *)s->h, UV_EOF, &b);
    }
    fake_turn(s->srv, 0);
}

void fake_turn(struct server *srv, int64_t advance_ms)
{
    srv->now += advance_ms;
    floop.now = srv->now;
    /* net/server.c's timers, in the order a loop turn would run them. */
    presence_tick(srv->presence, srv->now);
    conn_reap(&floop);
    if (srv->now - last_heartbeat >= srv->cfg.heartbeat_ms) {
        last_heartbeat = srv->now;
        hub_heartbeat(&floop);
    }
    if (srv->now - last_flush >= srv->cfg.flush_ms) {
        last_flush = srv->now;
        hub_flush_store(srv);
    }
    if (srv->now - last_sweep >= srv->cfg.sweep_ms) {
        last_sweep = srv->now;
        hub_sweep(srv, srv->cfg.stale_after_ms);
    }
    int more;
    do {
        while (uv_run(&floop.uv, UV_RUN_DEFAULT)) /* the thread pool */
            ;
        conn_flush_pending(&floop); /* the prepare handle */
        more = run_events();
    } while (more || !list_empty(&floop.pending));
}

/* ---- store/ ------------------------------------------------------------ */

#define MAX_ORGS 8
#define MAX_USERS 16
#define MAX_SESSIONS 8

struct fake_group {
    const char *org, *id, *name;
    const char *members[3];
};

static const struct fake_group channels[] = {
    {"o1", "c_general", "general o1-secret", {"u1", "u2", NULL}},
    {"o2", "c_other", "other o2-secret", {"u3", NULL, NULL}},
};
static const struct fake_group projects[] = {
    {"o1", "p_launch", "Launch \"Q4\" \xf0\x9f\x9a\x80", {"u1", NULL, NULL}},
};

struct fake_session {
    int64_t id;
    unsigned char hash[32];
    char org[STORE_ID_MAX + 1], user[STORE_ID_MAX + 1];
    int64_t expires;
};

static struct {
    char orgs[MAX_ORGS][STORE_ID_MAX + 1];
    size_t norgs;
    struct store_user users[MAX_USERS];
    size_t nusers;
    struct fake_session sessions[MAX_SESSIONS];
    size_t nsessions;
    int64_t next_sid;
    int in_tx;
} db;

static int id_ok(const char *s)
{
    return s && *s && strlen(s) <= STORE_ID_MAX;
}

static struct store_user *user_find(const char *org, const char *id)
{
    for (size_t i = 0; i < db.nusers; i++)
        if (!strcmp(db.users[i].org, org) && !strcmp(db.users[i].id, id))
            return &db.users[i];
    return NULL;
}

static void fake_store_reset(void)
{
    memset(&db, 0, sizeof db);
    store_org_add(NULL, "o1", NULL);
    store_org_add(NULL, "o2", NULL);
    store_user_add(NULL, "o1", "u1", "ann@example.com", "Ann", NULL, NULL);
    store_user_add(NULL, "o1", "u2", "bob@example.com",
                   "Bob \xc3\xa9 o1-secret", NULL, NULL);
    store_user_add(NULL, "o2", "u3", "cy@example.com", "Cy o2-secret", NULL,
                   NULL);
    user_find("o1", "u2")->status = PRESENCE_AWAY; /* in a restore window */
    int64_t sid;
    unsigned char h[32];
    auth_token_hash(FUZZ_SESSION_TOKEN, strlen(FUZZ_SESSION_TOKEN), h);
    store_session_add(NULL, h, "o1", "u1", FUZZ_NOW_MS + 3600 * 1000, &sid);
}

const char *store_strerror(int rc) { return rc ? "fake store error" : "ok"; }

int store_begin(struct store *s)
{
    if (db.in_tx)
        return STORE_EIO;
    db.in_tx = 1;
    return 0;
}

int store_commit(struct store *s)
{
    db.in_tx = 0;
    return 0;
}

int store_rollback(struct store *s)
{
    db.in_tx = 0;
    return 0;
}

int store_org_add(struct store *s, const char *id, const char *name)
{
    if (!id_ok(id))
        return STORE_EINVAL;
    for (size_t i = 0; i < db.norgs; i++)
        if (!strcmp(db.orgs[i], id))
            return STORE_EEXIST;
    if (db.norgs == MAX_ORGS)
        return STORE_EIO; /* a full disk, as far as callers can tell */
    snprintf(db.orgs[db.norgs++], STORE_ID_MAX + 1, "%s", id);
    return 0;
}

int store_org_exists(struct store *s, const char *id)
{
    for (size_t i = 0; i < db.norgs; i++)
        if (!strcmp(db.orgs[i], id))
            return 1;
    return 0;
}

int store_user_add(struct store *s, const char *org, const char *id,
                   const char *email, const char *name, const char *pw_hash,
                   char *id_out)
{
    char gen[32];
    if (!id) {
        snprintf(gen, sizeof gen, "u_%012zu", db.nusers);
        id = gen;
    }
    if (!id_ok(org) || !id_ok(id) || (name && strlen(name) > STORE_NAME_MAX))
        return STORE_EINVAL;
    if (!store_org_exists(s, org))
        return STORE_ENOENT;
    if (user_find(org, id))
        return STORE_EEXIST;
    if (db.nusers == MAX_USERS)
        return STORE_EIO;
    struct store_user *u = &db.users[db.nusers++];
    memset(u, 0, sizeof *u);
    snprintf(u->org, sizeof u->org, "%s", org);
    snprintf(u->id, sizeof u->id, "%s", id);
    snprintf(u->email, sizeof u->email, "%s", email ? email : "");
    snprintf(u->name, sizeof u->name, "%s", name ? name : id);
    /* No password is ever set: a correct one would cost an argon2id
     * verification per input. Logins all fail, after the same path. */
    u->status = PRESENCE_OFFLINE;
    u->manual = -1;
    if (id_out)
        snprintf(id_out, STORE_ID_MAX + 1, "%s", id);
    return 0;
}

int store_user_get(struct store *s, const char *org, const char *id,
                   struct store_user *out)
{
    struct store_user *u = user_find(org, id);
    if (!u)
        return STORE_ENOENT;
    *out = *u;
    return 0;
}

int store_user_by_email(struct store *s, const char *email,
                        struct store_user *out)
{
    for (size_t i = 0; i < db.nusers; i++)
        if (db.users[i].email[0] && !strcasecmp(db.users[i].email, email)) {
            *out = db.users[i];
            return 0;
        }
    return STORE_ENOENT;
}

int store_user_set_name(struct store *s, const char *org, const char *id,
                        const char *name)
{
    struct store_user *u = user_find(org, id);
    if (!u)
        return STORE_ENOENT;
    if (!name || strlen(name) > STORE_NAME_MAX)
        return STORE_EINVAL;
    snprintf(u->name, sizeof u->name, "%s", name);
    return 0;
}

int store_user_set_presence(struct store *s, const char *org, const char *id,
                            int status, int manual, int64_t last_seen_ms)
{
    struct store_user *u = user_find(org, id);
    if (!u)
        return STORE_ENOENT;
    CHECK(status >= 0 && status <= 3 && manual >= -1 && manual <= 3,
          "stored status %d manual %d", status, manual);
    u->status = status;
    u->manual = manual;
    u->last_seen_ms = last_seen_ms;
    return 0;
}

int store_user_each(struct store *s, const char *org, store_user_cb *cb,
                    void *ud)
{
    for (size_t i = 0; i < db.nusers; i++)
        if (!org || !strcmp(db.users[i].org, org))
            cb(ud, &db.users[i]);
    return 0;
}

int store_session_add(struct store *s, const unsigned char hash[32],
                      const char *org, const char *user, int64_t expires_ms,
                      int64_t *id_out)
{
    if (db.nsessions == MAX_SESSIONS)
        return STORE_EIO;
    struct fake_session *e = &db.sessions[db.nsessions++];
    e->id = ++db.next_sid;
    memcpy(e->hash, hash, 32);
    snprintf(e->org, sizeof e->org, "%s", org);
    snprintf(e->user, sizeof e->user, "%s", user);
    e->expires = expires_ms;
    *id_out = e->id;
    return 0;
}

static int session_out(const struct fake_session *e, int64_t now,
                       struct store_session *out)
{
    if (e->expires <= now)
        return STORE_ENOENT;
    out->id = e->id;
    snprintf(out->org, sizeof out->org, "%s", e->org);
    snprintf(out->user, sizeof out->user, "%s", e->user);
    out->expires_ms = e->expires;
    return 0;
}

int store_session_get(struct store *s, const unsigned char hash[32],
                      int64_t now_ms, struct store_session *out)
{
    for (size_t i = 0; i < db.nsessions; i++)
        if (!memcmp(db.sessions[i].hash, hash, 32)) {
            int rc = session_out(&db.sessions[i], now_ms, out);
            if (rc == 0)
                fuzz_saw_org(out->org); /* a cookie authenticated */
            return rc;
        }
    return STORE_ENOENT;
}

int store_session_get_by_id(struct store *s, int64_t id, int64_t now_ms,
                            struct store_session *out)
{
    for (size_t i = 0; i < db.nsessions; i++)
        if (db.sessions[i].id == id)
            return session_out(&db.sessions[i], now_ms, out);
    return STORE_ENOENT;
}

/* Wrapped (-Wl,--wrap=jwt_verify): notes who a token authenticated. */
int __real_jwt_verify(const char *token, size_t len, const void *secret,
                      size_t secret_len, int64_t now_s,
                      struct jwt_claims *out);

int __wrap_jwt_verify(const char *token, size_t len, const void *secret,
                      size_t secret_len, int64_t now_s,
                      struct jwt_claims *out)
{
    int rc = __real_jwt_verify(token, len, secret, secret_len, now_s, out);
    if (rc == 0)
        fuzz_saw_org(out->org);
    return rc;
}

int store_session_delete(struct store *s, int64_t id)
{
    for (size_t i = 0; i < db.nsessions; i++)
        if (db.sessions[i].id == id)
            db.sessions[i].expires = 0;
    return 0;
}

int store_session_purge(struct store *s, int64_t now_ms) { return 0; }
/* Few sessions per user here: nothing to trim. */
int store_session_trim(struct store *s, const char *org, const char *user,
                       int keep, int64_t now_ms, store_session_cb *cb,
                       void *ud)
{
    return 0;
}

static int group_each(const struct fake_group *g, size_t n, const char *org,
                      store_group_cb *cb, void *ud)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(g[i].org, org)) {
            int k = 0;
            while (k < 3 && g[i].members[k])
                k++;
            cb(ud, g[i].id, g[i].name, k);
        }
    return 0;
}

static int group_members(const struct fake_group *g, size_t n,
                         const char *org, const char *id, char *name_out,
                         store_member_cb *cb, void *ud)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(g[i].org, org) || strcmp(g[i].id, id))
            continue;
        if (name_out)
            snprintf(name_out, STORE_NAME_MAX + 1, "%s", g[i].name);
        for (int k = 0; k < 3 && g[i].members[k]; k++)
            cb(ud, g[i].members[k]);
        return 0;
    }
    return STORE_ENOENT;
}

int store_channel_each(struct store *s, const char *org, store_group_cb *cb,
                       void *ud)
{
    return group_each(channels, ARRAY_LEN(channels), org, cb, ud);
}

int store_project_each(struct store *s, const char *org, store_group_cb *cb,
                       void *ud)
{
    return group_each(projects, ARRAY_LEN(projects), org, cb, ud);
}

int store_channel_members(struct store *s, const char *org, const char *id,
                          char *name_out, store_member_cb *cb, void *ud)
{
    return group_members(channels, ARRAY_LEN(channels), org, id, name_out,
                         cb, ud);
}

int store_project_members(struct store *s, const char *org, const char *id,
                          char *name_out, store_member_cb *cb, void *ud)
{
    return group_members(projects, ARRAY_LEN(projects), org, id, name_out,
                         cb, ud);
}

int store_reset_stale(struct store *s, int64_t cutoff_ms)
{
    int n = 0;
    for (size_t i = 0; i < db.nusers; i++)
        if (db.users[i].status != PRESENCE_OFFLINE &&
            db.users[i].last_seen_ms < cutoff_ms) {
            db.users[i].status = PRESENCE_OFFLINE;
            n++;
        }
    return n;
}

int store_user_count(struct store *s, const char *org)
{
    int n = 0;
    for (size_t i = 0; i < db.nusers; i++)
        n += !strcmp(db.users[i].org, org);
    return n;
}

/* No other process shares the fake: the version never moves, so the hub
 * counts an organization only on its first sync. */
int64_t store_data_version(struct store *s)
{
    return 1;
}

/* The rest of store.h: not reached from a request, present so that the
 * fake stands for the whole module. */
int store_open(struct store **out, const char *path, char *err)
{
    *out = (struct store *)&db;
    return 0;
}

void store_close(struct store *s) {}

int store_channel_add(struct store *s, const char *org, const char *name,
                      const char *const *members, size_t n, char *id_out)
{
    return STORE_EIO;
}

int store_project_add(struct store *s, const char *org, const char *name,
                      const char *const *members, size_t n, char *id_out)
{
    return STORE_EIO;
}

int store_server_set(struct store *s, const struct store_server *srv)
{
    return 0;
}

int store_server_get(struct store *s, struct store_server *out)
{
    return STORE_ENOENT;
}

int store_server_clear(struct store *s, int64_t pid) { return 0; }
void store_set_busy_timeout(struct store *s, int ms) {}
int store_check(struct store *s, char *err) { return 0; }

/* ---- Embedded assets (tools/embed.sh makes the real table) ------------- */

static const unsigned char page[] = "<!doctype html><title>x</title>";
static const unsigned char script[] = "console.log(1);";
const struct asset assets[] = {
    {"/index.html", "text/html; charset=utf-8", page, sizeof page - 1,
     "\"1\""},
    {"/login.html", "text/html; charset=utf-8", page, sizeof page - 1,
     "\"2\""},
    {"/user.html", "text/html; charset=utf-8", page, sizeof page - 1,
     "\"3\""},
    {"/static/app.js", "text/javascript; charset=utf-8", script,
     sizeof script - 1, "\"4\""},
    {NULL, NULL, NULL, 0, NULL},
};

/* ---- The server -------------------------------------------------------- */

struct server *fake_server_new(const char *allowed_origins)
{
    if (!loop_ready) {
        CHECK(uv_loop_init(&floop.uv) == 0, "uv_loop_init");
        CHECK(auth_init() == 0, "auth_init");
        log_set_level((enum log_level)(LOG_ERROR + 1)); /* quiet */
        loop_ready = 1;
    }
    if (trace < 0)
        trace = getenv("FUZZ_TRACE") != NULL;
    struct server *srv = xcalloc(1, sizeof *srv);
    /* As server_run() sets it up. */
    config_defaults(&srv->cfg);
    if (allowed_origins)
        snprintf(srv->cfg.allowed_origins, sizeof srv->cfg.allowed_origins,
                 "%s", allowed_origins);
    srv->nloops = 1;
    srv->loops[0] = &floop;
    floop.srv = srv;
    floop.id = 0;
    floop.cfg = srv->cfg;
    floop.stopping = 0;
    list_init(&floop.conns);
    list_init(&floop.pending);
    list_init(&floop.lingering);
    list_init(&floop.waiting);
    list_init(&floop.logins);
    srv->rates = rate_new();
    srv->store = (struct store *)&db;
    srv->secret_len = strlen(FUZZ_JWT_SECRET);
    memcpy(srv->secret, FUZZ_JWT_SECRET, srv->secret_len);
    memcpy(floop.secret, FUZZ_JWT_SECRET, srv->secret_len);
    floop.secret_len = srv->secret_len;
    snprintf(srv->admin_key, sizeof srv->admin_key, "%s", FUZZ_ADMIN_KEY);
    srv->now = FUZZ_NOW_MS;
    floop.now = srv->now;
    fuzz_isolation = 0;
    orgs_seen = 0;
    last_heartbeat = last_flush = last_sweep = srv->now;
    fake_store_reset();
    CHECK(hub_init(srv) == 0, "hub_init");
    nsocks = 0;
    cur_srv = srv;
    return srv;
}

void fake_server_free(struct server *srv, int shutdown)
{
    if (shutdown) {
        /* SIGTERM: 1001 to every WebSocket, then everything closes. */
        hub_shutdown(&floop);
        srv->stopping = 1;
        fake_turn(srv, 200);
    }
    for (size_t i = 0; i < nsocks; i++)
        if (!socks[i].freed) {
            struct conn *c = fake_conn(&socks[i]);
            if (!socks[i].closing)
                conn_close(c);
        }
    fake_turn(srv, 0);
    for (size_t i = 0; i < nsocks; i++) {
        CHECK(socks[i].freed, "socket %zu not closed", i);
        buf_dispose(&socks[i].frames);
    }
    nsocks = 0;
    CHECK(nevents == 0, "callbacks left");
    CHECK(floop.nconns_all == 0, "%u connections left", floop.nconns_all);
    CHECK(floop.nconns_ws == 0 && list_empty(&floop.conns),
          "WebSocket connections left in the hub");
    CHECK(list_empty(&floop.pending) && list_empty(&floop.lingering) &&
              list_empty(&floop.waiting),
          "loop lists not empty");
    hub_flush_store(srv);
    hub_dispose(srv);
    rate_free(srv->rates);
    free(srv);
    free(events);
    events = NULL;
    events_cap = 0;
}
