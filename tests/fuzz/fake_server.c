/* fake_server.c - a fake transport, and the server on it, for the fuzz
 * targets.
 *
 * The seam is net/net.h: this file implements it over fake sockets, and
 * everything above runs unchanged, wired as server/server.c wires it: a
 * new connection gets http_conn_new() with api_handle() as its request
 * callback, and http/, api/, ws/, hub/, presence/, auth/ and store/
 * (SQLite, in memory, as seeded for every server) are the real code. The
 * store queue (store/queue.h) is this file's too: a job runs at once on
 * the submitting thread, and its done callback at the end of the turn.
 * A fake socket hands its connection's handler the reads the harness
 * chooses, its hang-ups and the deadlines the fake clock passes; what the
 * handler queues is checked instead of sent:
 *   - every HTTP response (checked when it is queued, conn_send_bytes())
 *     has a status line, no bare CR or LF or NUL inside its head, a
 *     Content-Length equal to its body, and a JSON body that parses if it
 *     says it is JSON; none is queued on a closing connection;
 *   - after a 101, every frame is final, unmasked, of a known opcode, a
 *     control frame at most 125 bytes, a text frame UTF-8 JSON, a close
 *     frame a valid code and a UTF-8 reason;
 *   - nothing of one organization reaches a client that never
 *     authenticated as a member of it (fuzz_isolation).
 * The peer reads everything: what is queued in a turn is written whole at
 * its end, and a connection closing after its writes closes then (conn.c
 * would linger until the peer hangs up). No input is long enough to pass
 * conn.c's output cap, so there is none here.
 *
 * Time is fake_turn()'s clock, for the transport and for the hub (the
 * Makefile points hub.c's clock_gettime() at fuzz_clock_gettime()); the
 * timers of server.c run from it. The thread pool is real: fake_turn()
 * runs the libuv loop until a login's work is done, and the store jobs'
 * done callbacks, until neither is left, so that every input runs the
 * same way each time. api/login.c's own clock stays real, and is ahead of
 * the fake one: every login is past its deadline and answered 503 without
 * its password being hashed. */
#include <jansson.h>
#include <sqlite3.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <uv.h>

#include "api/api.h"
#include "auth/auth.h"
#include "auth/jwt.h"
#include "auth/sessions.h"
#include "fuzz.h"
#include "http/assets.h"
#include "http/http.h"
#include "hub/hub.h"
#include "net/net.h"
#include "presence/presence.h"
#include "store/queue.h"
#include "store/store.h"
#include "util/frame.h"
#include "util/log.h"
#include "util/rate.h"
#include "ws/ws.h"

#define MAX_SOCKS 8
#define READ_MAX (64 * 1024) /* conn.c's read buffer */
#define PEER "192.0.2.1"

/* ---- The loop: one, the harness's ------------------------------------- */

struct loop {
    uv_loop_t uv;               /* real: the thread pool reports to it */
    int64_t now;                /* the fake clock */
};
static struct loop floop;

uv_loop_t *loop_uv(struct loop *lp) { return &lp->uv; }
unsigned loop_id(const struct loop *lp) { return 0; }
int64_t loop_now(struct loop *lp) { return lp->now; }
int64_t loop_time(const struct loop *lp) { return lp->now; }
void loop_wake(struct loop *lp) {} /* one loop: nothing is posted */
struct loop *loop_current(void) { return &floop; }

/* hub.c's clock_gettime() (see the Makefile). */
int fuzz_clock_gettime(clockid_t id, struct timespec *ts)
{
    if (id != CLOCK_REALTIME)
        return clock_gettime(id, ts);
    ts->tv_sec = floop.now / 1000;
    ts->tv_nsec = floop.now % 1000 * 1000000;
    return 0;
}

struct fake_server {
    struct hub *hub;
    struct api_shared shared;
    struct api_loop api;
    struct storeq_client sq;    /* the loop's end of the store queue */
    int64_t last_online, last_heartbeat, last_flush, last_sweep;
};

struct hub *fake_hub(struct fake_server *srv) { return srv->hub; }

/* ---- Fake sockets ------------------------------------------------------ */

struct fake_sock {
    struct fake_server *srv;
    struct conn *c;             /* NULL once freed */
    const struct conn_handler *http; /* the first handler: HTTP's */
    struct frame **q;           /* queued, written at the end of a turn */
    unsigned nq, capq;
    int waiting;                /* a deadline is set */
    int released;               /* closed: the transport's reference gone */
    int upgraded;               /* a 101 was queued: responses are over */
    int wire_upgraded;          /* a 101 was written: frames follow */
    struct buf frames;          /* written frame bytes not yet checked */
};

static struct fake_sock socks[MAX_SOCKS];
static size_t nsocks;

static struct fake_sock *sock_of(struct conn *c) { return c->_tcp.data; }

int fuzz_isolation;
static unsigned orgs_seen; /* bit 0: o1, bit 1: o2 */
long fuzz_answers;

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

/* One complete HTTP response, as http_respond() or ws_accept() makes it,
 * to h's request. Returns its status. */
static int check_response(struct http_conn *h, const char *p, size_t n)
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
    if (h->_parser.method == HTTP_HEAD)
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

/* The frames written so far; a frame split over two writes waits. */
static void check_frames(struct fake_sock *s, int echo)
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
            if (echo)
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
static int trace;

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

/* Writes what s has queued, as its peer reads it, and closes it if it
 * was to close after that. Returns 1 if it did anything. */
static int flush(struct fake_sock *s)
{
    struct conn *c = s->c;
    if (!c || c->state == CONN_CLOSED || (!s->nq && !c->_close_after_write))
        return 0;
    int echo = c->_cb != s->http && ((struct ws_conn *)c->data)->_echo;
    for (unsigned i = 0; i < s->nq; i++) {
        const char *p = s->q[i]->data;
        size_t n = s->q[i]->len;
        if (trace)
            trace_bytes(s, p, n);
        check_isolation(p, n);
        if (!s->wire_upgraded) {
            /* Each queued response is one frame (one conn_send_bytes). */
            CHECK(n >= 12 && memcmp(p, "HTTP/1.1 ", 9) == 0,
                  "bytes before the 101 that are not a response");
            s->wire_upgraded = memcmp(p + 9, "101", 3) == 0;
        } else {
            CHECK(buf_append(&s->frames, p, n) == 0, "frame buffer");
        }
        frame_unref(s->q[i]);
    }
    s->nq = 0;
    check_frames(s, echo);
    if (c->_close_after_write)
        conn_close(c);
    return 1;
}

/* ---- net/net.h, on the fake sockets ------------------------------------ */

void conn_set_handler(struct conn *c, const struct conn_handler *h,
                      void *data)
{
    struct fake_sock *s = sock_of(c);
    if (!s->http)
        s->http = h;
    c->_cb = h;
    c->data = data;
}

void conn_peer(struct conn *c, char *out, size_t len)
{
    snprintf(out, len, PEER);
}

void conn_send(struct conn *c, struct frame *f)
{
    struct fake_sock *s = sock_of(c);
    if (c->state == CONN_CLOSED)
        return;
    if (s->nq == s->capq) {
        s->capq = s->capq ? 2 * s->capq : 16;
        s->q = xrealloc(s->q, s->capq * sizeof *s->q);
    }
    s->q[s->nq++] = frame_ref(f);
}

void conn_send_bytes(struct conn *c, const void *p, size_t n)
{
    struct fake_sock *s = sock_of(c);
    if (!s->upgraded && c->state != CONN_CLOSED) {
        /* Nothing answers on a closing connection (http_respond() checks,
         * a login finishing late checks http_busy()): a response there is
         * a request answered twice. */
        CHECK(c->state != CONN_CLOSING,
              "a response queued on a closing connection: %.*s",
              (int)(n < 60 ? n : 60), (const char *)p);
        CHECK(c->_cb == s->http, "bytes before a 101 not from HTTP");
        struct http_conn *h = c->data;
        if (h->_busy)
            fuzz_answers++;
        if (check_response(h, p, n) == 101)
            s->upgraded = 1;
    }
    struct frame *f = frame_new_raw(p, n);
    conn_send(c, f);
    frame_unref(f);
}

void conn_close(struct conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    int was_open = c->state == CONN_OPEN;
    struct fake_sock *s = sock_of(c);
    c->state = CONN_CLOSED;
    s->waiting = 0;
    if (was_open && c->_cb && c->_cb->on_closing)
        c->_cb->on_closing(c);
    for (unsigned i = 0; i < s->nq; i++) /* never written */
        frame_unref(s->q[i]);
    s->nq = 0;
    /* The transport's reference goes in the close callback, at the end of
     * the turn (reap_closed()). */
}

void conn_close_after_write(struct conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    if (c->state == CONN_OPEN) {
        c->state = CONN_CLOSING;
        sock_of(c)->waiting = 0;
        if (c->_cb && c->_cb->on_closing)
            c->_cb->on_closing(c);
    }
    c->_close_after_write = 1;
}

void conn_ref(struct conn *c) { c->_refs++; }

void conn_unref(struct conn *c)
{
    CHECK(c->_refs > 0, "conn_unref without a reference");
    if (--c->_refs)
        return;
    CHECK(c->state == CONN_CLOSED, "last reference dropped on an open "
                                   "connection");
    if (c->_cb && c->_cb->on_free)
        c->_cb->on_free(c);
    sock_of(c)->c = NULL;
    free(c);
}

void conn_set_deadline(struct conn *c, int64_t ms)
{
    if (c->state != CONN_OPEN)
        return;
    c->_deadline = floop.now + ms;
    sock_of(c)->waiting = 1;
}

void conn_clear_deadline(struct conn *c) { sock_of(c)->waiting = 0; }

/* ---- store/queue.h, in step with the loop ------------------------------ */

/* Not store/queue.c's thread: a job runs at once, on the submitting
 * thread (ud is lent to the queue by the submit, so it must be filled
 * already, as the store thread may run it at once too), and its done
 * waits for the end of the turn, as it would come back on a later loop
 * turn. Jobs and dones keep their order, and every input runs the same
 * way each time. No other process holds the database, so STOREQ_RETRY
 * changes nothing, and max_jobs is not reached. */
struct storeq {
    struct store *s;
    int closed;
};

struct storeq_job {
    struct storeq_job *next;
    storeq_done_cb *done;
    void *ud;
    int rc;
};

static struct storeq fq;

int storeq_client_init(struct storeq *q, struct storeq_client *c,
                       uv_loop_t *loop)
{
    memset(c, 0, sizeof *c);
    c->_q = q;
    return 0;
}

int storeq_submit(struct storeq_client *c, storeq_run_cb *run,
                  storeq_done_cb *done, void *ud, unsigned flags)
{
    if (c->_q->closed)
        return STOREQ_ECLOSED;
    struct storeq_job *j = xcalloc(1, sizeof *j);
    j->done = done;
    j->ud = ud;
    j->rc = run(c->_q->s, ud);
    if (c->_tail)
        c->_tail->next = j;
    else
        c->_head = j;
    c->_tail = j;
    c->_inflight++;
    return 0;
}

int storeq_call(struct storeq *q, storeq_run_cb *run, void *ud,
                unsigned flags)
{
    return q->closed ? STOREQ_ECLOSED : run(q->s, ud);
}

/* Every job has run already: closing only refuses later submits. */
void storeq_close(struct storeq *q) { q->closed = 1; }

/* The done callbacks due on c, and those of the jobs they submit. Returns
 * 1 if any ran. */
static int deliver(struct storeq_client *c)
{
    int ran = 0;
    while (c->_head) {
        struct storeq_job *j = c->_head;
        c->_head = j->next;
        if (!c->_head)
            c->_tail = NULL;
        c->_inflight--;
        j->done(j->ud, j->rc);
        free(j);
        ran = 1;
    }
    return ran;
}

void storeq_client_close(struct storeq_client *c, uv_close_cb cb)
{
    deliver(c);
    if (cb)
        cb((uv_handle_t *)&c->_async);
}

/* ---- The harness side -------------------------------------------------- */

/* Close callbacks: drops the transport's reference of each connection
 * closed since. Returns 1 if there was any. */
static int reap_closed(void)
{
    int ran = 0;
    for (size_t i = 0; i < nsocks; i++) {
        struct fake_sock *s = &socks[i];
        if (s->c && s->c->state == CONN_CLOSED && !s->released) {
            s->released = 1;
            conn_unref(s->c);
            ran = 1;
        }
    }
    return ran;
}

void fake_turn(struct fake_server *srv, int64_t advance_ms)
{
    floop.now += advance_ms;
    int64_t now = floop.now;
    const struct config *cfg = &srv->api.cfg;
    /* server.c's timers, those that are due. */
    hub_lock(srv->hub);
    hub_tick(srv->hub);
    if (now - srv->last_online >= 1000) {
        srv->last_online = now;
        hub_send_online(srv->hub);
    }
    if (now - srv->last_heartbeat >= cfg->heartbeat_ms) {
        srv->last_heartbeat = now;
        hub_heartbeat(srv->hub, 0);
    }
    if (now - srv->last_flush >= cfg->flush_ms) {
        srv->last_flush = now;
        hub_flush_store(srv->hub);
    }
    if (now - srv->last_sweep >= cfg->sweep_ms) {
        srv->last_sweep = now;
        hub_sweep(srv->hub, cfg->stale_after_ms);
        api_sweep(&srv->shared, srv->hub, hub_now(srv->hub));
    }
    hub_unlock(srv->hub);
    /* The transport's deadlines. */
    for (size_t i = 0; i < nsocks; i++) {
        struct conn *c = socks[i].c;
        if (c && socks[i].waiting && c->_deadline <= now) {
            socks[i].waiting = 0;
            if (c->state == CONN_OPEN && c->_cb->on_timeout)
                c->_cb->on_timeout(c);
        }
    }
    int more;
    do {
        while (uv_run(&floop.uv, UV_RUN_DEFAULT)) /* the thread pool */
            ;
        more = deliver(&srv->sq);
        for (size_t i = 0; i < nsocks; i++)
            more |= flush(&socks[i]);
        more |= reap_closed();
    } while (more);
}

struct fake_sock *fake_accept(struct fake_server *srv)
{
    CHECK(nsocks < MAX_SOCKS, "too many sockets for the harness");
    struct fake_sock *s = &socks[nsocks++];
    memset(s, 0, sizeof *s);
    s->srv = srv;
    buf_init(&s->frames, 0);
    struct conn *c = xcalloc(1, sizeof *c);
    c->lp = &floop;
    c->state = CONN_OPEN;
    c->_refs = 1;
    c->_tcp.data = s;
    s->c = c;
    /* server.c's on_accept(). */
    struct hub *hb = srv->hub;
    hub_lock(hb);
    int64_t n = rate_add(hub_rates(hb), "conn:" PEER, 1000, hub_now(hb));
    hub_unlock(hb);
    if (n > srv->api.cfg.conn_rate) {
        conn_close(c);
    } else {
        struct http_opts o = {
            .max_body = (size_t)srv->api.cfg.max_body,
            .header_timeout_ms = srv->api.cfg.header_timeout_ms,
            .on_request = api_handle,
            .data = &srv->api,
        };
        http_conn_new(c, &o);
    }
    fake_turn(srv, 0);
    return s->c ? s : NULL; /* refused (conn_rate) */
}

int fake_upgraded(struct fake_sock *s) { return s->upgraded; }

static int reading(const struct fake_sock *s)
{
    return s->c && s->c->state == CONN_OPEN && !s->c->peer_eof;
}

int fake_read(struct fake_sock *s, const void *p, size_t n,
              int64_t advance_ms)
{
    const char *q = p;
    while (n && reading(s)) {
        size_t k = n < READ_MAX ? n : READ_MAX;
        s->c->_cb->on_data(s->c, q, k);
        q += k;
        n -= k;
    }
    fake_turn(s->srv, advance_ms);
    return reading(s) ? 0 : -1;
}

void fake_hangup(struct fake_sock *s)
{
    struct conn *c = s->c;
    if (c && c->state != CONN_CLOSED && !c->peer_eof) {
        /* conn.c: a half-close while an answer is made waits for it. */
        if (c->state == CONN_OPEN && c->_cb->on_eof && c->_cb->on_eof(c))
            c->peer_eof = 1;
        else
            conn_close(c);
    }
    fake_turn(s->srv, 0);
}

/* ---- store/: SQLite in memory --------------------------------------- */

/* One store for the process, seeded once: opening one (its schema, its
 * prepared statements) costs more than a whole input. A copy of the rows
 * a server writes is kept in an attached database, and the next server
 * starts from them again: undo[] puts back what an update hook saw
 * change, and nothing else may change (restore_store() checks). */
static struct store *store;
static sqlite3 *store_db;
static const struct {
    const char *table, *sql;
} undo[] = {
    {"", "BEGIN"},
    {"sessions", "DELETE FROM main.sessions"},
    {"sessions", "INSERT INTO main.sessions SELECT * FROM seed.sessions"},
    {"users", "UPDATE main.users AS u SET email = s.email, name = s.name,"
              " pw_hash = s.pw_hash, status = s.status, manual = s.manual,"
              " last_seen_ms = s.last_seen_ms FROM seed.users AS s"
              " WHERE u.org = s.org AND u.id = s.id"},
    {"users", "DELETE FROM main.users WHERE NOT EXISTS (SELECT 1 FROM"
              " seed.users AS s WHERE s.org = users.org AND s.id = users.id)"},
    {"organizations", "DELETE FROM main.organizations WHERE id NOT IN"
                      " (SELECT id FROM seed.organizations)"},
    {"", "COMMIT"},
};
static sqlite3_stmt *undo_st[ARRAY_LEN(undo)];
static unsigned changed;        /* bit i: undo[i].table was written */
static int64_t seen, base;      /* rows the hook saw; total_changes then */

/* Wrapped (-Wl,--wrap=sqlite3_open_v2): catches store_open()'s handle,
 * for what store.h cannot do: the seeds of fixed ids, and their copy. */
int __real_sqlite3_open_v2(const char *name, sqlite3 **db, int flags,
                           const char *vfs);

int __wrap_sqlite3_open_v2(const char *name, sqlite3 **db, int flags,
                           const char *vfs)
{
    int rc = __real_sqlite3_open_v2(name, db, flags, vfs);
    store_db = *db;
    return rc;
}

static void on_change(void *ud, int op, const char *db, const char *table,
                      sqlite3_int64 rowid)
{
    int known = 0;
    seen++;
    for (size_t i = 0; i < ARRAY_LEN(undo); i++)
        if (!strcmp(table, undo[i].table)) {
            changed |= 1u << i;
            known = 1;
        }
    CHECK(known, "the server wrote to %s, which the harness does not "
          "restore", table);
}

static void sql(const char *q)
{
    CHECK(sqlite3_exec(store_db, q, NULL, NULL, NULL) == SQLITE_OK, "%s: %s",
          q, sqlite3_errmsg(store_db));
}

static void seed_store(void)
{
    char err[STORE_ERRLEN];
    CHECK(store_open(&store, ":memory:", err) == 0, "store_open: %s", err);
    struct store *st = store;
    int rc = store_org_add(st, "o1", NULL) | store_org_add(st, "o2", NULL) |
             store_user_add(st, "o1", "u1", "ann@example.com", "Ann", NULL,
                            NULL) |
             store_user_add(st, "o1", "u2", "bob@example.com",
                            "Bob \xc3\xa9 o1-secret", NULL, NULL) |
             store_user_add(st, "o2", "u3", "cy@example.com",
                            "Cy o2-secret", NULL, NULL) |
             /* in a restore window */
             store_user_set_presence(st, "o1", "u2", PRESENCE_AWAY, -1, 0);
    unsigned char h[32];
    int64_t sid = 0;
    auth_token_hash(FUZZ_SESSION_TOKEN, strlen(FUZZ_SESSION_TOKEN), h);
    rc |= store_session_add(st, h, "o1", "u1", FUZZ_NOW_MS + 3600 * 1000,
                            &sid);
    CHECK(rc == 0 && sid == 1, "seeding the store");
    /* Channels and projects by the ids the corpus names. */
    sql("INSERT INTO channels VALUES ('o1', 'c_general', 'general o1-secret',"
        " 0), ('o2', 'c_other', 'other o2-secret', 0);"
        "INSERT INTO channel_members VALUES ('o1', 'c_general', 'u1'),"
        " ('o1', 'c_general', 'u2'), ('o2', 'c_other', 'u3');"
        "INSERT INTO projects VALUES"
        " ('o1', 'p_launch', 'Launch \"Q4\" \xf0\x9f\x9a\x80', 0);"
        "INSERT INTO project_members VALUES ('o1', 'p_launch', 'u1');"
        "ATTACH ':memory:' AS seed;"
        "CREATE TABLE seed.organizations AS SELECT * FROM main.organizations;"
        "CREATE TABLE seed.users AS SELECT * FROM main.users;"
        "CREATE TABLE seed.sessions AS SELECT * FROM main.sessions;");
    for (size_t i = 0; i < ARRAY_LEN(undo); i++)
        CHECK(sqlite3_prepare_v2(store_db, undo[i].sql, -1, &undo_st[i],
                                 NULL) == SQLITE_OK,
              "%s: %s", undo[i].sql, sqlite3_errmsg(store_db));
    sqlite3_update_hook(store_db, on_change, NULL);
    base = sqlite3_total_changes64(store_db);
}

/* Puts back the seeds the last server changed. */
static void restore_store(void)
{
    /* The hook sees no WITHOUT ROWID table: a change it did not see is
     * to channel or project members. */
    CHECK(sqlite3_total_changes64(store_db) - base == seen,
          "the server wrote to members, which the harness does not restore");
    if (!changed)
        return;
    for (size_t i = 0; i < ARRAY_LEN(undo); i++) {
        if (*undo[i].table && !(changed >> i & 1))
            continue;
        CHECK(sqlite3_step(undo_st[i]) == SQLITE_DONE, "%s: %s", undo[i].sql,
              sqlite3_errmsg(store_db));
        sqlite3_reset(undo_st[i]);
    }
    changed = 0;
    seen = 0;
    base = sqlite3_total_changes64(store_db);
}

/* Wrapped (-Wl,--wrap=...): who a token or a session cookie
 * authenticated (api/ reads the session table, auth/sessions.h), and
 * what the hub stores. */
int __real_jwt_verify(const char *token, size_t len, const void *secret,
                      size_t secret_len, int64_t now_s,
                      struct jwt_claims *out);
int __real_sessions_get_by_hash(const struct sessions *t,
                                const unsigned char hash[32], int64_t now_ms,
                                struct sessions_entry *out);
int __real_store_presence_write(struct store *s,
                                const struct store_presence *rows, size_t n);

int __wrap_jwt_verify(const char *token, size_t len, const void *secret,
                      size_t secret_len, int64_t now_s,
                      struct jwt_claims *out)
{
    int rc = __real_jwt_verify(token, len, secret, secret_len, now_s, out);
    if (rc == 0)
        fuzz_saw_org(out->org);
    return rc;
}

int __wrap_sessions_get_by_hash(const struct sessions *t,
                                const unsigned char hash[32], int64_t now_ms,
                                struct sessions_entry *out)
{
    int rc = __real_sessions_get_by_hash(t, hash, now_ms, out);
    if (rc == 0)
        fuzz_saw_org(out->org);
    return rc;
}

int __wrap_store_presence_write(struct store *s,
                                const struct store_presence *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        CHECK(rows[i].status >= 0 && rows[i].status <= 3 &&
                  rows[i].manual >= -1 && rows[i].manual <= 3,
              "stored status %d manual %d", rows[i].status, rows[i].manual);
    return __real_store_presence_write(s, rows, n);
}

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

struct fake_server *fake_server_new(const struct config *cfg)
{
    static int ready;
    if (!ready) {
        CHECK(uv_loop_init(&floop.uv) == 0, "uv_loop_init");
        CHECK(auth_init() == 0 && api_init() == 0, "auth_init, api_init");
        log_set_level((enum log_level)(LOG_ERROR + 1)); /* quiet */
        trace = getenv("FUZZ_TRACE") != NULL;
        seed_store();
        ready = 1;
    }
    struct fake_server *srv = xcalloc(1, sizeof *srv);
    floop.now = FUZZ_NOW_MS;
    srv->last_online = srv->last_heartbeat = srv->last_flush =
        srv->last_sweep = floop.now;
    fuzz_isolation = 0;
    orgs_seen = 0;
    nsocks = 0;
    struct config c;
    if (cfg)
        c = *cfg;
    else
        config_defaults(&c);
    /* As server_run() sets them up. */
    restore_store();
    fq.s = store;
    fq.closed = 0;
    storeq_client_init(&fq, &srv->sq, &floop.uv);
    CHECK(hub_new(&srv->hub, &c, &fq, 1) == 0, "hub_new");
    CHECK(api_shared_init(&srv->shared, &fq, hub_now(srv->hub)) == 0,
          "api_shared_init");
    hub_set_loop(srv->hub, 0, &floop, &srv->sq);
    snprintf(srv->shared.admin_key, sizeof srv->shared.admin_key, "%s",
             FUZZ_ADMIN_KEY);
    api_loop_init(&srv->api, srv->hub, &floop, &srv->shared);
    srv->api.cfg = c;
    srv->api.secret_len = strlen(FUZZ_JWT_SECRET);
    memcpy(srv->api.secret, FUZZ_JWT_SECRET, srv->api.secret_len);
    return srv;
}

void fake_server_free(struct fake_server *srv, int shutdown)
{
    struct hub *hb = srv->hub;
    if (shutdown) {
        /* SIGTERM, as server.c's begin_stop(): 1001 to every WebSocket,
         * then the loop closes 200 ms later. */
        hub_lock(hb);
        hub_stopping(hb);
        hub_shutdown(hb, 0);
        api_stop(&srv->api);
        hub_unlock(hb);
        fake_turn(srv, 200);
    }
    for (size_t i = 0; i < nsocks; i++) /* loop_close() */
        if (socks[i].c)
            conn_close(socks[i].c);
    fake_turn(srv, 0);
    for (size_t i = 0; i < nsocks; i++) {
        CHECK(!socks[i].c, "connection %zu not freed", i);
        CHECK(!socks[i].nq, "output left on connection %zu", i);
        buf_dispose(&socks[i].frames);
        free(socks[i].q);
    }
    nsocks = 0;
    CHECK(!uv_loop_alive(&floop.uv), "callbacks left");
    CHECK(hub_nconns(hb, 0) == 0, "WebSocket connections left in the hub");
    /* server.c's on_loop_stopped() and worker_end(). */
    hub_lock(hb);
    hub_flush_store(hb);
    hub_unlock(hb);
    storeq_close(&fq);
    storeq_client_close(&srv->sq, NULL);
    CHECK(!srv->sq._inflight, "store jobs left");
    hub_free(hb);
    api_shared_dispose(&srv->shared);
    free(srv);
}
