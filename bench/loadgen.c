/* loadgen.c - load generator for presenced, speaking docs/protocol.md.
 *
 * One thread, one epoll set, non-blocking sockets. Every connection is a
 * real WebSocket client: it mints its own HS256 token (the project's
 * jwt_sign), upgrades with a random key and checks Sec-WebSocket-Accept,
 * and lets wslay's event API do the framing (masking, pings, close).
 * Connection i is user "u<i>" of organization "o<i % orgs>"; connections
 * bind one of several loopback source addresses (127.0.0.2 ...) before
 * connecting, so the ephemeral ports of one address do not run out.
 *
 * Scenarios (each prints a human summary and one JSON line that starts
 * with {"scenario":):
 *   hold       N idle connections: connect time, server RSS before and
 *              after, bytes per connection, idle CPU of the server.
 *   fanout     N connections, S senders flipping their status; deliveries
 *              per second, send-to-receipt latency, lost deliveries.
 *   storm      N connections at once: upgrades per second, time from the
 *              first connect to the last snapshot.
 *   provision  N connections in batches, then closed: creates the users
 *              (and their per-user state) before a measured run.
 *
 * With --cookies FILE a connection authenticates as a browser does, with
 * its login session's cookie (line i of FILE is connection i's token,
 * sent as Cookie: presenced_session=...) and the Origin a page of the
 * server would send, instead of a token in the query.
 *
 * How fanout measures (see also bench/README.md):
 *   - Each sender has at most one change in flight. It sends at time t
 *     (CLOCK_MONOTONIC) and remembers t and the status it asked for.
 *   - The first receiver that sees an event for that user with that status
 *     binds the event's (org, seq) to t; every receipt of that seq then
 *     records now - t (delivery latency). The receipt that completes the
 *     organization (receipts == members) records the event latency ("to
 *     the last receipt") and frees the sender for its next change.
 *   - Loss: each receiver starts at its snapshot's seq (docs/protocol.md:
 *     events not above it are in the snapshot) and checks that every later
 *     seq arrives once and in order. When the measured window starts the
 *     organization is quiet and every receiver is at the same seq s0; at
 *     the end the organization's last seq is s1. Expected deliveries are
 *     (s1 - s0 + changes that produced no event at all) x members; lost =
 *     expected - received, per organization. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "auth/jwt.h"
#include "common.h"

#define READ_BUF (256 * 1024)
#define HS_CAP (JWT_MAX_LEN + 1024)
#define RING 4096 /* events remembered per organization */
#define MAX_EVENTS 1024

/* ---- state ----------------------------------------------------------- */

enum cstate { C_IDLE, C_CONNECTING, C_HANDSHAKE, C_WS, C_CLOSED };

struct client {
    int fd;
    int idx, org;
    uint8_t state;
    uint8_t got_hello, got_snap, failed;
    uint8_t pending, matched, queued, out_on;
    int8_t status;      /* own effective status: hello, then own events */
    int8_t manual;      /* hello said a manual status is set */
    int8_t sent_status; /* what the change in flight asked for */
    wslay_event_context_ptr ws;
    char *hs; /* request being sent, then response being read */
    unsigned hs_len, hs_sent;
    char accept[32];   /* expected Sec-WebSocket-Accept */
    const uint8_t *rx; /* bytes being fed to wslay */
    size_t rx_len;
    uint64_t snap_seq, last_seq, deliveries, gaps, dups;
    int64_t t_start, t_upgraded, t_ready, sent_ns;
};

struct event {
    uint64_t seq;
    int64_t sent; /* 0: not caused by one of our changes */
    uint32_t receipts;
    int32_t sender;
    int done; /* reached every member */
};

struct org {
    int members;  /* clients of this org that have their snapshot */
    int members0; /* members when the measured window started */
    uint64_t start_seq, max_seq;
    uint64_t sends, matched, completed, unanswered, incomplete;
    uint64_t deliveries, spurious;
    struct event *ring;
};

static struct {
    /* options */
    const char *scenario, *host, *secret, *path, *label, *flip, *cookies;
    int port, nconns, norgs, nsenders, nsrc, server_pid, json_only;
    double rate, seconds, connect_rate, idle_seconds, idle_warmup, app_ping;
    double setup_timeout, event_timeout;
    int max_pending, batch;
    /* runtime */
    int ep;
    struct sockaddr_in dst;
    struct client *cl;
    struct org *orgs;
    char **cookie; /* --cookies: connection i's session token, or NULL */
    uint8_t *rbuf;
    int conn_lo, conn_hi, next_conn; /* connecting [lo, hi) */
    int64_t connect_t0;
    int in_progress; /* connecting, not yet ready */
    int ready, ever_ready, upgraded, failed, closed_unexpected;
    int64_t t_first_connect, t_last_upgraded, t_last_ready, last_event;
    struct hist conn_lat; /* connect -> snapshot */
    uint64_t snap_bytes, snaps, pings, pongs, errors, early, gaps, dups;
    uint64_t presence_rx; /* every event received, setup included */
    char first_error[256];
    /* fanout */
    int measuring, sending, closed_loop;
    int *sendq, sendq_len;
    uint64_t sends, skipped, deliveries, timeouts;
    int64_t t_send0, t_rate0, t_last_delivery, next_timeout_check;
    int rr; /* round-robin cursor over senders */
    struct hist lat, lat_last;
    /* app pings */
    int64_t ping_next;
    int ping_cursor;
    /* CPU over the last connect phase, % of a core */
    long long cpu_server0, overflows0, drops0, overflows, drops;
    int64_t cpu_self0;
    double connect_server_cpu, connect_self_cpu;
} G;

static void fail_note(const char *fmt, const char *a, int b)
{
    if (!G.first_error[0])
        snprintf(G.first_error, sizeof G.first_error, fmt, a, b);
}

/* ---- WebSocket glue (wslay event API) ------------------------------- */

static void set_out(struct client *c, int on)
{
    if (c->out_on == on || c->fd < 0)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0),
                             .data.ptr = c};
    epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->out_on = (uint8_t)on;
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       int flags, void *ud)
{
    (void)flags;
    struct client *c = ud;
    if (!c->rx_len) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < c->rx_len ? len : c->rx_len;
    memcpy(buf, c->rx, n);
    c->rx += n;
    c->rx_len -= n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len, int flags, void *ud)
{
    (void)flags;
    struct client *c = ud;
    ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
    if (n < 0) {
        wslay_event_set_error(ctx, errno == EAGAIN
                                       ? WSLAY_ERR_WOULDBLOCK
                                       : WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return n;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                      void *ud)
{
    (void)ctx;
    (void)ud;
    randombytes_buf(buf, len);
    return 0;
}

static void on_text(struct client *c, const char *m, size_t n);

static void on_msg(wslay_event_context_ptr ctx,
                   const struct wslay_event_on_msg_recv_arg *arg, void *ud)
{
    (void)ctx;
    struct client *c = ud;
    if (arg->opcode == WSLAY_TEXT_FRAME)
        on_text(c, (const char *)arg->msg, arg->msg_length);
    else if (arg->opcode == WSLAY_PING)
        G.pings++; /* wslay answers it */
    else if (arg->opcode == WSLAY_CONNECTION_CLOSE)
        fail_note("server closed a connection (code %s%d)", "",
                  arg->status_code);
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .genmask_callback = genmask_cb,
    .on_msg_recv_callback = on_msg,
};

static void client_close(struct client *c, int expected)
{
    if (c->fd < 0)
        return;
    close(c->fd);
    c->fd = -1;
    if (c->ws)
        wslay_event_context_free(c->ws);
    c->ws = NULL;
    free(c->hs);
    c->hs = NULL;
    if (!c->got_snap && c->state != C_IDLE) {
        c->failed = 1;
        G.failed++;
        G.in_progress--;
    } else if (c->got_snap) {
        G.orgs[c->org].members--;
        G.ready--;
        if (!expected)
            G.closed_unexpected++;
    }
    c->state = C_CLOSED;
}

/* Sends what wslay has queued; closes when the close handshake is over. */
static void ws_flush(struct client *c)
{
    if (!c->ws)
        return;
    if (wslay_event_send(c->ws) != 0) {
        client_close(c, 0);
        return;
    }
    if (!wslay_event_want_read(c->ws) && !wslay_event_want_write(c->ws)) {
        client_close(c, 0);
        return;
    }
    set_out(c, wslay_event_want_write(c->ws));
}

static int ws_send_text(struct client *c, const char *s, size_t n)
{
    struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)s, n};
    if (!c->ws || wslay_event_queue_msg(c->ws, &m) != 0)
        return -1;
    ws_flush(c);
    return 0;
}

/* ---- protocol: what the receivers do -------------------------------- */

static int user_index(const char *s, size_t n)
{
    if (n < 2 || s[0] != 'u')
        return -1;
    long v = 0;
    for (size_t i = 1; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v < G.nconns ? (int)v : -1;
}

static void queue_send(struct client *s)
{
    if (!s->queued) {
        s->queued = 1;
        G.sendq[G.sendq_len++] = s->idx;
    }
}

static void on_presence(struct client *c, const char *m, size_t n)
{
    const char *u, *st;
    size_t ul, stl;
    uint64_t seq;
    if (json_str(m, n, "\"user\":", &u, &ul) ||
        json_str(m, n, "\"status\":", &st, &stl) ||
        json_u64(m, n, ",\"seq\":", &seq)) {
        G.errors++;
        fail_note("unparsable presence event%s (%d)", "", (int)n);
        return;
    }
    if (!c->got_snap) {
        G.early++; /* an event before the snapshot: protocol bug */
        return;
    }
    if (seq <= c->snap_seq)
        return; /* docs/protocol.md: already in the snapshot */
    if (seq <= c->last_seq) {
        c->dups++;
        G.dups++;
        return;
    }
    if (seq != c->last_seq + 1) {
        c->gaps += seq - c->last_seq - 1;
        G.gaps += seq - c->last_seq - 1;
    }
    c->last_seq = seq;
    G.presence_rx++;
    int64_t t = now_ns();
    G.last_event = t;
    struct org *o = &G.orgs[c->org];
    if (seq > o->max_seq)
        o->max_seq = seq;
    int user = user_index(u, ul);
    int status = status_parse(st, stl);
    if (user == c->idx)
        c->status = (int8_t)status;
    if (!G.measuring || seq <= o->start_seq)
        return;

    c->deliveries++;
    o->deliveries++;
    G.deliveries++;
    G.t_last_delivery = t;
    if (!o->ring)
        o->ring = calloc(RING, sizeof *o->ring);
    struct event *ev = &o->ring[seq % RING];
    if (ev->seq != seq) {
        *ev = (struct event){.seq = seq, .sender = -1};
        struct client *s = user >= 0 ? &G.cl[user] : NULL;
        if (s && s->org == c->org && s->pending && !s->matched &&
            s->sent_status == status) {
            s->matched = 1;
            ev->sender = user;
            ev->sent = s->sent_ns;
            o->matched++;
        } else {
            o->spurious++;
        }
    }
    ev->receipts++;
    if (!ev->sent)
        return;
    int64_t lat = t - ev->sent;
    hist_add(&G.lat, lat);
    /* A member that closed meanwhile does not hold the sender up; its
     * missing deliveries count as lost (members0). */
    if (!ev->done && ev->receipts >= (uint32_t)o->members) {
        ev->done = 1;
        hist_add(&G.lat_last, lat);
        o->completed++;
        struct client *s = &G.cl[ev->sender];
        s->pending = 0;
        if (G.sending && G.closed_loop)
            queue_send(s);
    }
}

static void on_text(struct client *c, const char *m, size_t n)
{
    const char *t;
    size_t tl;
    if (json_str(m, n, "\"type\":", &t, &tl)) {
        G.errors++;
        return;
    }
    if (tl == 8 && !memcmp(t, "presence", 8)) {
        on_presence(c, m, n);
    } else if (tl == 8 && !memcmp(t, "snapshot", 8)) {
        uint64_t seq = 0;
        if (json_u64(m, n, "\"seq\":", &seq) || !c->got_hello || c->got_snap) {
            G.errors++;
            fail_note("unexpected snapshot%s (%d)", "", c->idx);
            return;
        }
        int64_t now = now_ns();
        c->snap_seq = c->last_seq = seq;
        c->got_snap = 1;
        c->t_ready = now;
        G.ready++;
        G.ever_ready++;
        G.in_progress--;
        G.orgs[c->org].members++;
        if (seq > G.orgs[c->org].max_seq)
            G.orgs[c->org].max_seq = seq;
        G.t_last_ready = now;
        G.snap_bytes += n;
        G.snaps++;
        hist_add(&G.conn_lat, now - c->t_start);
    } else if (tl == 5 && !memcmp(t, "hello", 5)) {
        const char *v;
        size_t vl;
        c->got_hello = 1;
        if (json_str(m, n, "\"status\":", &v, &vl) == 0)
            c->status = (int8_t)status_parse(v, vl);
        c->manual = json_str(m, n, "\"manual\":", &v, &vl) == 0;
    } else if (tl == 4 && !memcmp(t, "pong", 4)) {
        G.pongs++;
    } else if (tl == 5 && !memcmp(t, "error", 5)) {
        G.errors++;
        if (!G.first_error[0])
            snprintf(G.first_error, sizeof G.first_error, "%.*s",
                     (int)(n < 200 ? n : 200), m);
    }
}

/* ---- connections ----------------------------------------------------- */

/* Mints the token, picks the key and writes the request, so that the
 * measured connect phase holds only what a client does on the wire. */
static void prepare(struct client *c)
{
    if (c->hs)
        return;
    char tok[JWT_MAX_LEN] = "";
    if (!G.cookie) {
        struct jwt_claims cl = {.exp = wall_ms() / 1000 + 4 * 3600};
        snprintf(cl.sub, sizeof cl.sub, "u%d", c->idx);
        snprintf(cl.org, sizeof cl.org, "o%d", c->org);
        if (jwt_sign(&cl, G.secret, strlen(G.secret), tok, sizeof tok) < 0)
            abort();
    }
    unsigned char raw[16], sha[EVP_MAX_MD_SIZE];
    unsigned shalen = 0;
    char key[32], in[96];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(key, sizeof key, raw, sizeof raw,
                      sodium_base64_VARIANT_ORIGINAL);
    int kn =
        snprintf(in, sizeof in, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    EVP_Digest(in, (size_t)kn, sha, &shalen, EVP_sha1(), NULL);
    sodium_bin2base64(c->accept, sizeof c->accept, sha, shalen,
                      sodium_base64_VARIANT_ORIGINAL);
    c->hs = malloc(HS_CAP);
    if (G.cookie) {
        /* A browser's connect: the session cookie, and the page's
         * Origin, which the server checks for cookie authentication. */
        c->hs_len = (unsigned)snprintf(
            c->hs, HS_CAP,
            "GET %s HTTP/1.1\r\n"
            "Host: %s:%d\r\n"
            "Origin: http://%s:%d\r\n"
            "Cookie: presenced_session=%s\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            "Sec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "X-Bench-Id: %d %d\r\n\r\n",
            G.path, G.host, G.port, G.host, G.port, G.cookie[c->idx], key,
            c->org, c->idx);
        c->hs_sent = 0;
        return;
    }
    /* X-Bench-Id names the connection for bench/floor, which checks no
     * token; presenced ignores the header. */
    int n = snprintf(c->hs, HS_CAP,
                     "GET %s?token=%s HTTP/1.1\r\n"
                     "Host: %s:%d\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "X-Bench-Id: %d %d\r\n\r\n",
                     G.path, tok, G.host, G.port, key, c->org, c->idx);
    c->hs_len = (unsigned)n;
    c->hs_sent = 0;
}

static int start_connect(struct client *c)
{
    prepare(c);
    int64_t now = now_ns();
    if (!G.t_first_connect)
        G.t_first_connect = now;
    c->t_start = now;
    c->state = C_CONNECTING;
    G.in_progress++;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail_note("socket: %s (%d)", strerror(errno), c->idx);
        c->fd = -1;
        c->failed = 1;
        G.failed++;
        G.in_progress--;
        c->state = C_CLOSED;
        return -1;
    }
    c->fd = fd;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (G.nsrc > 0) {
        /* The port is picked at connect() time, per 4-tuple. */
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(c->idx % G.nsrc));
        if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
            fail_note("bind: %s (%d)", strerror(errno), c->idx);
            client_close(c, 0);
            return -1;
        }
    }
    if (connect(fd, (struct sockaddr *)&G.dst, sizeof G.dst) != 0 &&
        errno != EINPROGRESS) {
        fail_note("connect: %s (%d)", strerror(errno), c->idx);
        client_close(c, 0);
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
    epoll_ctl(G.ep, EPOLL_CTL_ADD, fd, &ev);
    c->out_on = 1;
    return 0;
}

static void on_writable(struct client *c)
{
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            fail_note("connect: %s (%d)", strerror(err), c->idx);
            client_close(c, 0);
            return;
        }
        ssize_t n = send(c->fd, c->hs + c->hs_sent, c->hs_len - c->hs_sent,
                         MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN) {
                fail_note("send: %s (%d)", strerror(errno), c->idx);
                client_close(c, 0);
            }
            return;
        }
        c->hs_sent += (unsigned)n;
        if (c->hs_sent == c->hs_len) {
            c->state = C_HANDSHAKE;
            c->hs_len = 0;
            set_out(c, 0);
        }
        return;
    }
    if (c->state == C_WS)
        ws_flush(c);
}

static void feed_ws(struct client *c, const uint8_t *p, size_t n)
{
    c->rx = p;
    c->rx_len = n;
    int rc = wslay_event_recv(c->ws);
    c->rx_len = 0;
    if (rc != 0) {
        client_close(c, 0);
        return;
    }
    if (c->fd >= 0 && wslay_event_want_write(c->ws))
        ws_flush(c);
}

/* Reads the 101 answer; returns how many bytes of p belong to it, or -1
 * when the connection failed or the header is not complete yet. */
static long handshake(struct client *c, const uint8_t *p, size_t n)
{
    unsigned old = c->hs_len;
    size_t take = n < HS_CAP - 1 - old ? n : HS_CAP - 1 - old;
    memcpy(c->hs + old, p, take);
    c->hs_len += (unsigned)take;
    c->hs[c->hs_len] = '\0';
    char *end = strstr(c->hs, "\r\n\r\n");
    if (!end) {
        if (c->hs_len >= HS_CAP - 1) {
            fail_note("response header too long%s (%d)", "", c->idx);
            client_close(c, 0);
        }
        return -1;
    }
    long used = (long)(end + 4 - c->hs) - (long)old;
    if (strncmp(c->hs, "HTTP/1.1 101 ", 13) != 0) {
        char *eol = strstr(c->hs, "\r\n");
        *eol = '\0';
        fail_note("upgrade refused: %s (%d)", c->hs, c->idx);
        client_close(c, 0);
        return -1;
    }
    char *acc = strcasestr(c->hs, "\r\nSec-WebSocket-Accept:");
    if (acc) {
        acc += 23;
        while (*acc == ' ')
            acc++;
    }
    if (!acc || strncmp(acc, c->accept, strlen(c->accept)) != 0) {
        fail_note("bad Sec-WebSocket-Accept%s (%d)", "", c->idx);
        client_close(c, 0);
        return -1;
    }
    free(c->hs);
    c->hs = NULL;
    if (wslay_event_context_client_init(&c->ws, &callbacks, c) != 0)
        abort();
    c->state = C_WS;
    c->t_upgraded = now_ns();
    G.upgraded++;
    G.t_last_upgraded = c->t_upgraded;
    return used;
}

static void on_readable(struct client *c)
{
    for (int round = 0; round < 4 && c->fd >= 0; round++) {
        ssize_t n = read(c->fd, G.rbuf, READ_BUF);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            fail_note("read: %s (%d)", strerror(errno), c->idx);
            client_close(c, 0);
            return;
        }
        if (n == 0) {
            if (c->state != C_WS || !c->got_snap)
                fail_note("server hung up during the handshake%s (%d)", "",
                          c->idx);
            client_close(c, 0);
            return;
        }
        const uint8_t *p = G.rbuf;
        size_t len = (size_t)n;
        if (c->state == C_HANDSHAKE) {
            long used = handshake(c, p, len);
            if (used < 0)
                return;
            p += used;
            len -= (size_t)used;
        }
        if (c->state == C_WS && len)
            feed_ws(c, p, len);
        if (n < READ_BUF)
            return;
    }
}

/* ---- the loop -------------------------------------------------------- */

static void send_change(struct client *s)
{
    int st;
    int auto_ = G.flip && !strcmp(G.flip, "auto");
    if (auto_)
        st = s->status == ST_AWAY ? ST_ONLINE : ST_AWAY;
    else
        st = s->status == ST_BUSY ? ST_ONLINE : ST_BUSY;
    char msg[96];
    int n =
        snprintf(msg, sizeof msg, "{\"type\":\"status\",\"status\":\"%s\"%s}",
                 status_name(st), auto_ ? ",\"auto\":true" : "");
    s->pending = 1;
    s->matched = 0;
    s->sent_status = (int8_t)st;
    s->sent_ns = now_ns();
    if (!G.t_send0)
        G.t_send0 = s->sent_ns;
    G.sends++;
    G.orgs[s->org].sends++;
    if (ws_send_text(s, msg, (size_t)n) != 0)
        s->pending = 0;
}

/* Issues the connects that are due: at most connect_rate per second (0:
 * no rate) and at most max_pending handshakes at a time (0: no cap). */
static void pace_connects(int64_t now)
{
    if (G.next_conn >= G.conn_hi)
        return;
    long due = G.conn_hi - G.next_conn;
    if (G.connect_rate > 0) {
        long allowed =
            (long)((double)(now - G.connect_t0) / 1e9 * G.connect_rate) + 1 -
            (G.next_conn - G.conn_lo);
        if (allowed < due)
            due = allowed;
    }
    if (G.max_pending > 0 && due > G.max_pending - G.in_progress)
        due = G.max_pending - G.in_progress;
    if (due > 512)
        due = 512; /* let the loop answer the server in between */
    for (long i = 0; i < due; i++)
        start_connect(&G.cl[G.next_conn++]);
}

static void pace_sends(int64_t now)
{
    if (!G.sending)
        return;
    if (G.closed_loop) {
        for (int i = 0; i < G.sendq_len; i++) {
            struct client *s = &G.cl[G.sendq[i]];
            s->queued = 0;
            if (s->fd >= 0 && !s->pending)
                send_change(s);
        }
        G.sendq_len = 0;
        return;
    }
    uint64_t due = (uint64_t)((double)(now - G.t_rate0) / 1e9 * G.rate) + 1;
    while (G.sends + G.skipped < due) {
        struct client *s = NULL;
        for (int k = 0; k < G.nsenders; k++) {
            struct client *t = &G.cl[(G.rr + k) % G.nsenders];
            if (t->fd >= 0 && !t->pending) {
                s = t;
                G.rr = (G.rr + k + 1) % G.nsenders;
                break;
            }
        }
        if (!s) {
            G.skipped++; /* every sender still has a change in flight */
            continue;
        }
        send_change(s);
    }
}

/* Gives up on changes whose event did not reach every member in time. */
static void check_timeouts(int64_t now)
{
    if (now < G.next_timeout_check)
        return;
    G.next_timeout_check = now + 100 * 1000000LL;
    int64_t limit = (int64_t)(G.event_timeout * 1e9);
    for (int i = 0; i < G.nsenders; i++) {
        struct client *s = &G.cl[i];
        if (!s->pending || now - s->sent_ns < limit)
            continue;
        s->pending = 0;
        G.timeouts++;
        if (s->matched)
            G.orgs[s->org].incomplete++;
        else
            G.orgs[s->org].unanswered++;
        if (G.sending && G.closed_loop)
            queue_send(s);
    }
}

static void app_pings(int64_t now)
{
    if (G.app_ping <= 0 || now < G.ping_next)
        return;
    /* Every connection pings once per app_ping seconds, spread over ten
     * slices a second. */
    G.ping_next = now + 100 * 1000000LL;
    int per = (int)((double)G.nconns / (G.app_ping * 10)) + 1;
    static const char ping[] = "{\"type\":\"ping\"}";
    for (int i = 0; i < per; i++) {
        struct client *c = &G.cl[G.ping_cursor];
        G.ping_cursor = (G.ping_cursor + 1) % G.nconns;
        if (c->state == C_WS && c->got_snap)
            ws_send_text(c, ping, sizeof ping - 1);
    }
}

static void loop_once(int timeout_ms)
{
    struct epoll_event evs[MAX_EVENTS];
    int n = epoll_wait(G.ep, evs, MAX_EVENTS, timeout_ms);
    for (int i = 0; i < n; i++) {
        struct client *c = evs[i].data.ptr;
        if (c->fd < 0)
            continue;
        if (evs[i].events & EPOLLOUT)
            on_writable(c);
        if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
            on_readable(c);
    }
    int64_t now = now_ns();
    pace_connects(now);
    pace_sends(now);
    if (G.sending || G.measuring)
        check_timeouts(now);
    app_pings(now);
}

static int busy(void)
{
    return G.next_conn < G.conn_hi || (G.sending && !G.closed_loop) ||
           G.app_ping > 0;
}

/* Runs the loop until pred() holds or the deadline passes; returns
 * whether pred() holds. */
static int run_until(int (*pred)(void), int64_t deadline)
{
    while (!pred()) {
        if (now_ns() >= deadline)
            return pred();
        loop_once(busy() ? 1 : 5);
    }
    return 1;
}

static void run_for(double seconds)
{
    int64_t end = now_ns() + (int64_t)(seconds * 1e9);
    while (now_ns() < end)
        loop_once(busy() ? 1 : 10);
}

static int all_settled(void)
{
    return G.next_conn >= G.conn_hi && G.in_progress == 0;
}

/* Connects clients [lo, hi) and waits for their snapshots. */
static int connect_range(int lo, int hi, double timeout_s)
{
    for (int i = lo; i < hi; i++)
        prepare(&G.cl[i]);
    G.cpu_server0 = G.server_pid ? proc_cpu_ticks(G.server_pid) : -1;
    G.cpu_self0 = self_cpu_ns();
    G.overflows0 = kernel_tcpext("ListenOverflows");
    G.drops0 = kernel_tcpext("ListenDrops");
    G.conn_lo = G.next_conn = lo;
    G.conn_hi = hi;
    G.connect_t0 = now_ns();
    pace_connects(G.connect_t0);
    int ok = run_until(all_settled, G.connect_t0 + (int64_t)(timeout_s * 1e9));
    double win = (double)(now_ns() - G.connect_t0) / 1e9;
    long long cpu1 = G.server_pid ? proc_cpu_ticks(G.server_pid) : -1;
    G.connect_server_cpu = G.cpu_server0 >= 0
                               ? (double)(cpu1 - G.cpu_server0) /
                                     (double)sysconf(_SC_CLK_TCK) / win * 100
                               : -1;
    G.connect_self_cpu =
        (double)(self_cpu_ns() - G.cpu_self0) / 1e9 / win * 100;
    /* The kernel's accept queue: SYNs dropped because it was full show
     * up as one-second (then three-second) retransmits in connect time.
     * Machine-wide counters; other listeners rarely overflow. */
    G.overflows += kernel_tcpext("ListenOverflows") - G.overflows0;
    G.drops += kernel_tcpext("ListenDrops") - G.drops0;
    return ok;
}

static int64_t quiet_since;
static int quiet(void)
{
    return now_ns() - G.last_event > 500 * 1000000LL &&
           now_ns() - quiet_since > 500 * 1000000LL;
}

/* Waits until no event has arrived for half a second (the connect events
 * of the setup have been delivered), at most timeout_s. */
static void settle(double timeout_s)
{
    quiet_since = now_ns();
    run_until(quiet, quiet_since + (int64_t)(timeout_s * 1e9));
}

static void close_all(void)
{
    for (int i = 0; i < G.nconns; i++)
        client_close(&G.cl[i], 1);
}

/* ---- reporting ------------------------------------------------------- */

static double ms(int64_t ns)
{
    return (double)ns / 1e6;
}

static void head(const char *scenario, int *first)
{
    printf("{");
    json_kv_s(stdout, "scenario", scenario, first);
    if (G.label)
        json_kv_s(stdout, "label", G.label, first);
    json_kv_i(stdout, "conns", G.nconns, first);
    json_kv_i(stdout, "orgs", G.norgs, first);
}

static void conn_fields(int *first)
{
    json_kv_i(stdout, "connected", G.ever_ready, first);
    json_kv_i(stdout, "failed", G.failed, first);
    json_kv_d(
        stdout, "connect_s",
        G.t_last_ready ? (double)(G.t_last_ready - G.t_first_connect) / 1e9 : 0,
        first);
    json_kv_d(stdout, "conn_p50_ms", ms(hist_pct(&G.conn_lat, 0.5)), first);
    json_kv_d(stdout, "conn_p99_ms", ms(hist_pct(&G.conn_lat, 0.99)), first);
    json_kv_d(stdout, "conn_max_ms", ms(G.conn_lat.max), first);
    json_kv_i(stdout, "snapshot_avg_bytes",
              G.snaps ? (long long)(G.snap_bytes / G.snaps) : 0, first);
    json_kv_d(stdout, "connect_server_cpu_pct", G.connect_server_cpu, first);
    json_kv_d(stdout, "connect_loadgen_cpu_pct", G.connect_self_cpu, first);
    json_kv_i(stdout, "listen_overflows", G.overflows, first);
    json_kv_i(stdout, "listen_drops", G.drops, first);
}

static void tail_fields(int *first)
{
    json_kv_i(stdout, "presence_rx", (long long)G.presence_rx, first);
    json_kv_i(stdout, "closed_unexpected", G.closed_unexpected, first);
    json_kv_i(stdout, "protocol_errors", (long long)(G.errors + G.early),
              first);
    if (G.first_error[0]) {
        char clean[256];
        size_t j = 0;
        for (size_t i = 0; G.first_error[i] && j < sizeof clean - 1; i++)
            if (G.first_error[i] != '"' && G.first_error[i] != '\\')
                clean[j++] = G.first_error[i];
        clean[j] = '\0';
        json_kv_s(stdout, "first_error", clean, first);
    }
    printf("}\n");
    fflush(stdout);
}

static void human(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void human(const char *fmt, ...)
{
    if (G.json_only)
        return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fflush(stdout);
}

static void human_connect(void)
{
    human("  connected %d of %d (%d failed) in %.3f s (%.0f/s); "
          "connect->snapshot p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
          G.ever_ready, G.nconns, G.failed,
          G.t_last_ready ? (double)(G.t_last_ready - G.t_first_connect) / 1e9
                         : 0,
          G.t_last_ready > G.t_first_connect
              ? G.ever_ready /
                    ((double)(G.t_last_ready - G.t_first_connect) / 1e9)
              : 0,
          ms(hist_pct(&G.conn_lat, 0.5)), ms(hist_pct(&G.conn_lat, 0.99)),
          ms(G.conn_lat.max));
    human("  CPU while connecting: server %.0f %% of a core, loadgen %.0f %%; "
          "listen queue overflows %lld, drops %lld\n",
          G.connect_server_cpu, G.connect_self_cpu, G.overflows, G.drops);
    if (G.first_error[0])
        human("  first error: %s\n", G.first_error);
}

/* ---- scenarios ------------------------------------------------------- */

static int scenario_hold(void)
{
    long long rss0 = G.server_pid ? proc_rss(G.server_pid) : -1;
    long long slab0 = kernel_slab(), tcp0 = kernel_tcp_mem();
    human("hold: %d connections in %d organizations\n", G.nconns, G.norgs);
    connect_range(0, G.nconns, G.setup_timeout);
    human_connect();
    settle(30);
    long long rss1 = G.server_pid ? proc_rss(G.server_pid) : -1;
    long long slab1 = kernel_slab(), tcp1 = kernel_tcp_mem();
    double peak_per_conn =
        rss0 >= 0 && G.ready ? (double)(rss1 - rss0) / G.ready : -1;
    double kper = G.ready ? (double)(slab1 - slab0) / (2.0 * G.ready) : -1;
    human("  server RSS %.1f MiB -> %.1f MiB right after connecting: %.0f "
          "bytes per connection\n",
          rss0 / 1048576.0, rss1 / 1048576.0, peak_per_conn);
    human("  kernel slab +%.1f MiB for %d socket pairs: ~%.0f bytes per "
          "socket\n",
          (slab1 - slab0) / 1048576.0, G.ready, kper);

    /* The connect burst leaves work behind it (the batched store write of
     * everyone's new status, the allocator trim): idle means after it. */
    run_for(G.idle_warmup);
    long long cpu0 = G.server_pid ? proc_cpu_ticks(G.server_pid) : -1;
    uint64_t pings0 = G.pings;
    int64_t t0 = now_ns();
    run_for(G.idle_seconds);
    int64_t t1 = now_ns();
    long long cpu1 = G.server_pid ? proc_cpu_ticks(G.server_pid) : -1;
    long long rss2 = G.server_pid ? proc_rss(G.server_pid) : -1;
    double win = (double)(t1 - t0) / 1e9;
    double idle_pct = cpu0 >= 0 ? (double)(cpu1 - cpu0) /
                                      (double)sysconf(_SC_CLK_TCK) / win * 100
                                : -1;
    double at_1m = G.ready ? idle_pct * 1e6 / G.ready : -1;
    /* What holding the connections costs, once the connect burst's
     * transient buffers (queued snapshots and events) are gone. */
    double per_conn =
        rss0 >= 0 && G.ready ? (double)(rss2 - rss0) / G.ready : -1;
    human("  server RSS %.1f MiB after the idle window: %.0f bytes per "
          "connection held\n", rss2 / 1048576.0, per_conn);
    human("  idle %.1f s: server CPU %.2f %% of a core (%llu server pings "
          "answered) -> %.1f %% of a core at 1,000,000 connections\n",
          win, idle_pct, (unsigned long long)(G.pings - pings0), at_1m);

    int first = 1;
    head("hold", &first);
    conn_fields(&first);
    json_kv_i(stdout, "rss_before", rss0, &first);
    json_kv_i(stdout, "rss_after", rss1, &first);
    json_kv_i(stdout, "rss_after_idle", rss2, &first);
    json_kv_d(stdout, "bytes_per_conn", per_conn, &first);
    json_kv_d(stdout, "bytes_per_conn_after_connect", peak_per_conn, &first);
    json_kv_i(stdout, "slab_delta", slab1 - slab0, &first);
    json_kv_i(stdout, "tcp_mem_delta", tcp1 - tcp0, &first);
    json_kv_d(stdout, "kernel_bytes_per_socket", kper, &first);
    json_kv_d(stdout, "idle_seconds", win, &first);
    json_kv_d(stdout, "idle_cpu_pct", idle_pct, &first);
    json_kv_d(stdout, "idle_cpu_pct_at_1m", at_1m, &first);
    json_kv_i(stdout, "server_pings", (long long)(G.pings - pings0), &first);
    json_kv_i(stdout, "app_pongs", (long long)G.pongs, &first);
    tail_fields(&first);
    int ok = G.ready == G.nconns && !G.closed_unexpected && !G.errors;
    close_all();
    return ok ? 0 : 1;
}

static int scenario_storm(void)
{
    human("storm: %d connections at once in %d organizations\n", G.nconns,
          G.norgs);
    G.connect_rate = 0;
    G.max_pending = 0;
    connect_range(0, G.nconns, G.setup_timeout);
    human_connect();
    double up_s = (double)(G.t_last_upgraded - G.t_first_connect) / 1e9;
    double last_s = (double)(G.t_last_ready - G.t_first_connect) / 1e9;
    human("  %d upgrades in %.3f s: %.0f upgrades/s; last snapshot %.3f s "
          "after the first connect\n",
          G.upgraded, up_s, up_s > 0 ? G.upgraded / up_s : 0, last_s);
    int first = 1;
    head("storm", &first);
    conn_fields(&first);
    json_kv_i(stdout, "upgraded", G.upgraded, &first);
    json_kv_d(stdout, "upgrades_per_s", up_s > 0 ? G.upgraded / up_s : 0,
              &first);
    json_kv_d(stdout, "last_snapshot_s", last_s, &first);
    tail_fields(&first);
    int ok = G.ready == G.nconns && !G.errors;
    close_all();
    return ok ? 0 : 1;
}

static int scenario_provision(void)
{
    human("provision: %d users in %d organizations, %d at a time\n", G.nconns,
          G.norgs, G.batch);
    for (int lo = 0; lo < G.nconns; lo += G.batch) {
        int hi = lo + G.batch < G.nconns ? lo + G.batch : G.nconns;
        connect_range(lo, hi, G.setup_timeout);
        for (int i = lo; i < hi; i++)
            client_close(&G.cl[i], 1);
    }
    human_connect();
    int first = 1;
    head("provision", &first);
    conn_fields(&first);
    tail_fields(&first);
    return G.failed ? 1 : 0;
}

static int org_caught_up(void)
{
    for (int i = 0; i < G.nconns; i++) {
        struct client *c = &G.cl[i];
        if (c->got_snap && c->fd >= 0 && c->last_seq != G.orgs[c->org].max_seq)
            return 0;
    }
    return 1;
}

static int drained(void)
{
    for (int i = 0; i < G.nsenders; i++)
        if (G.cl[i].pending)
            return 0;
    return 1;
}

static int scenario_fanout(void)
{
    human("fanout: %d connections in %d organizations, %d senders, %s\n",
          G.nconns, G.norgs, G.nsenders,
          G.rate > 0 ? "paced" : "closed loop (one change in flight each)");
    connect_range(0, G.nconns, G.setup_timeout);
    human_connect();
    if (G.ready != G.nconns) {
        fprintf(stderr, "loadgen: only %d of %d connected\n", G.ready,
                G.nconns);
        int first = 1;
        head("fanout", &first);
        conn_fields(&first);
        tail_fields(&first);
        return 1;
    }
    /* Auto flips need no manual status in the way. */
    if (G.flip && !strcmp(G.flip, "auto")) {
        static const char clear[] =
            "{\"type\":\"status\",\"status\":\"ONLINE\"}";
        for (int i = 0; i < G.nsenders; i++)
            if (G.cl[i].manual)
                ws_send_text(&G.cl[i], clear, sizeof clear - 1);
    }
    settle(60);
    if (!org_caught_up())
        settle(10);
    for (int k = 0; k < G.norgs; k++) {
        G.orgs[k].start_seq = G.orgs[k].max_seq;
        G.orgs[k].members0 = G.orgs[k].members;
    }
    G.measuring = 1;

    long long cpu0 = G.server_pid ? proc_cpu_ticks(G.server_pid) : -1;
    int64_t self0 = self_cpu_ns();
    G.sending = 1;
    G.closed_loop = G.rate <= 0;
    if (G.closed_loop)
        for (int i = 0; i < G.nsenders; i++)
            queue_send(&G.cl[i]);
    int64_t t0 = now_ns();
    G.t_send0 = 0;
    G.t_rate0 = t0;
    run_for(G.seconds);
    G.sending = 0;
    run_until(drained,
              now_ns() + (int64_t)(G.event_timeout * 1e9) + 200 * 1000000LL);
    /* Count what is still in flight, as if its time were up. */
    G.next_timeout_check = 0;
    check_timeouts(now_ns() + (int64_t)(G.event_timeout * 1e9) + 1);
    settle(2);
    int64_t t1 = now_ns();
    long long cpu1 = G.server_pid ? proc_cpu_ticks(G.server_pid) : -1;
    int64_t self1 = self_cpu_ns();
    double win_all = (double)(t1 - t0) / 1e9;
    double win = G.t_last_delivery > G.t_send0
                     ? (double)(G.t_last_delivery - G.t_send0) / 1e9
                     : win_all;

    /* Loss, per organization (see the file comment). */
    long long lost = 0, expected = 0, events = 0, unanswered = 0;
    long long *lost_org = calloc((size_t)G.norgs, sizeof *lost_org);
    for (int k = 0; k < G.norgs; k++) {
        struct org *o = &G.orgs[k];
        long long ev = (long long)(o->max_seq - o->start_seq);
        long long exp = (ev + (long long)o->unanswered) * o->members0;
        lost_org[k] = exp - (long long)o->deliveries;
        lost += lost_org[k];
        expected += exp;
        events += ev;
        unanswered += (long long)o->unanswered;
    }
    double dps = win > 0 ? (double)G.deliveries / win : 0;
    double scpu = cpu0 >= 0 ? (double)(cpu1 - cpu0) /
                                  (double)sysconf(_SC_CLK_TCK) / win_all * 100
                            : -1;
    double lcpu = (double)(self1 - self0) / 1e9 / win_all * 100;
    human("  %llu changes sent (%llu skipped: sender busy), %lld events, "
          "%llu deliveries in %.3f s: %.0f deliveries/s\n",
          (unsigned long long)G.sends, (unsigned long long)G.skipped, events,
          (unsigned long long)G.deliveries, win, dps);
    human("  delivery latency p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, "
          "max %.3f ms\n",
          ms(hist_pct(&G.lat, 0.5)), ms(hist_pct(&G.lat, 0.99)),
          ms(hist_pct(&G.lat, 0.999)), ms(G.lat.max));
    human("  change to last receipt p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
          ms(hist_pct(&G.lat_last, 0.5)), ms(hist_pct(&G.lat_last, 0.99)),
          ms(G.lat_last.max));
    human("  lost %lld of %lld expected deliveries (%lld changes without an "
          "event, %llu seq gaps, %llu duplicates, %d connections closed)\n",
          lost, expected, unanswered, (unsigned long long)G.gaps,
          (unsigned long long)G.dups, G.closed_unexpected);
    human("  CPU: server %.0f %% of a core, loadgen %.0f %%\n", scpu, lcpu);

    int first = 1;
    head("fanout", &first);
    json_kv_i(stdout, "senders", G.nsenders, &first);
    json_kv_d(stdout, "rate", G.rate, &first);
    json_kv_s(stdout, "flip", G.flip ? G.flip : "manual", &first);
    conn_fields(&first);
    json_kv_d(stdout, "seconds", win, &first);
    json_kv_i(stdout, "sends", (long long)G.sends, &first);
    json_kv_i(stdout, "skipped", (long long)G.skipped, &first);
    json_kv_i(stdout, "events", events, &first);
    json_kv_i(stdout, "deliveries", (long long)G.deliveries, &first);
    json_kv_d(stdout, "deliveries_per_s", dps, &first);
    json_kv_d(stdout, "events_per_s", win > 0 ? events / win : 0, &first);
    json_kv_d(stdout, "p50_ms", ms(hist_pct(&G.lat, 0.5)), &first);
    json_kv_d(stdout, "p99_ms", ms(hist_pct(&G.lat, 0.99)), &first);
    json_kv_d(stdout, "p999_ms", ms(hist_pct(&G.lat, 0.999)), &first);
    json_kv_d(stdout, "max_ms", ms(G.lat.max), &first);
    json_kv_d(stdout, "last_p50_ms", ms(hist_pct(&G.lat_last, 0.5)), &first);
    json_kv_d(stdout, "last_p99_ms", ms(hist_pct(&G.lat_last, 0.99)), &first);
    json_kv_d(stdout, "last_max_ms", ms(G.lat_last.max), &first);
    json_kv_i(stdout, "expected", expected, &first);
    json_kv_i(stdout, "lost", lost, &first);
    json_kv_i(stdout, "unanswered", unanswered, &first);
    json_kv_i(stdout, "gaps", (long long)G.gaps, &first);
    json_kv_i(stdout, "dups", (long long)G.dups, &first);
    json_kv_i(stdout, "timeouts", (long long)G.timeouts, &first);
    json_kv_d(stdout, "server_cpu_pct", scpu, &first);
    json_kv_d(stdout, "loadgen_cpu_pct", lcpu, &first);
    if (G.norgs <= 100) {
        printf(",\"lost_per_org\":[");
        for (int k = 0; k < G.norgs; k++)
            printf("%s%lld", k ? "," : "", lost_org[k]);
        printf("]");
    }
    tail_fields(&first);
    free(lost_org);
    int ok = lost == 0 && G.gaps == 0 && G.dups == 0 && !G.errors && !G.early &&
             G.sends > 0 && !G.closed_unexpected;
    close_all();
    return ok ? 0 : 1;
}

/* ---- main ------------------------------------------------------------ */

static const char *const usage_lines[] = {
    "usage: loadgen SCENARIO [options]",
    "scenarios: hold | fanout | storm | provision",
    "  --host H           server address, loopback only (127.0.0.1)",
    "  --port P           server port (required)",
    "  --secret S         the server's PRESENCED_JWT_SECRET (required)",
    "  --path P           WebSocket path (/ws/presence/)",
    "  --conns N          connections (100)",
    "  --orgs O           organizations; connection i is o<i%O>/u<i> (1)",
    "  --senders S        fanout: connections flipping their status (1)",
    "  --rate R           fanout: changes per second in total; 0: each",
    "                     sender sends its next change once the last one",
    "                     reached every member (0)",
    "  --flip manual|auto fanout: BUSY<->ONLINE, or AWAY<->ONLINE on the",
    "                     sender's connection (manual)",
    "  --seconds T        fanout: how long to send (5)",
    "  --event-timeout T  fanout: give up on a change after T s (5)",
    "  --idle-seconds T   hold: CPU measurement window (10)",
    "  --idle-warmup T    hold: idle time before that window (0)",
    "  --app-ping T       send {\"type\":\"ping\"} every T s per connection",
    "  --connect-rate R   connects per second, 0: no limit (0)",
    "  --max-pending N    handshakes in flight at most, 0: no cap (1000)",
    "  --batch N          provision: connections per batch (1000)",
    "  --source-addrs K   bind 127.0.0.2 .. 127.0.0.K+1 (4; 0: no bind)",
    "  --server-pid PID   read the server's RSS and CPU from /proc",
    "  --setup-timeout T  connect phase limit in seconds (180)",
    "  --label L          copied into the JSON line",
    "  --cookies FILE     authenticate with session cookies (line i:",
    "                     connection i's token) and an Origin, no token",
    "  --json-only        print only the JSON line",
};

/* --cookies: one token per line, line i for connection i. */
static int load_cookies(void)
{
    FILE *f = fopen(G.cookies, "r");
    if (!f) {
        perror(G.cookies);
        return -1;
    }
    G.cookie = calloc((size_t)G.nconns, sizeof *G.cookie);
    char line[256];
    int n = 0;
    while (n < G.nconns && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || strspn(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghij"
                                     "klmnopqrstuvwxyz0123456789-_") !=
                            strlen(line))
            break;
        G.cookie[n++] = strdup(line);
    }
    fclose(f);
    if (n < G.nconns) {
        fprintf(stderr, "loadgen: %s: %d good tokens, need %d\n", G.cookies,
                n, G.nconns);
        return -1;
    }
    return 0;
}

static void usage(FILE *f)
{
    for (size_t i = 0; i < sizeof usage_lines / sizeof *usage_lines; i++)
        fprintf(f, "%s\n", usage_lines[i]);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argv[1][0] == '-') {
        usage(argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
        return argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
    }
    G.scenario = argv[1];
    G.host = "127.0.0.1";
    G.path = "/ws/presence/";
    G.nconns = 100;
    G.norgs = 1;
    G.nsenders = 1;
    G.seconds = 5;
    G.event_timeout = 5;
    G.idle_seconds = 10;
    G.max_pending = 1000;
    G.batch = 1000;
    G.nsrc = 4;
    G.setup_timeout = 180;
    static const struct option opts[] = {{"host", 1, 0, 'h'},
                                         {"port", 1, 0, 'p'},
                                         {"secret", 1, 0, 's'},
                                         {"path", 1, 0, 'P'},
                                         {"conns", 1, 0, 'n'},
                                         {"orgs", 1, 0, 'o'},
                                         {"senders", 1, 0, 'S'},
                                         {"rate", 1, 0, 'r'},
                                         {"flip", 1, 0, 'f'},
                                         {"seconds", 1, 0, 't'},
                                         {"event-timeout", 1, 0, 'E'},
                                         {"idle-seconds", 1, 0, 'i'},
                                         {"idle-warmup", 1, 0, 'W'},
                                         {"app-ping", 1, 0, 'a'},
                                         {"connect-rate", 1, 0, 'c'},
                                         {"max-pending", 1, 0, 'm'},
                                         {"batch", 1, 0, 'b'},
                                         {"source-addrs", 1, 0, 'k'},
                                         {"server-pid", 1, 0, 'x'},
                                         {"setup-timeout", 1, 0, 'T'},
                                         {"label", 1, 0, 'l'},
                                         {"cookies", 1, 0, 'C'},
                                         {"json-only", 0, 0, 'j'},
                                         {"help", 0, 0, '?'},
                                         {0, 0, 0, 0}};
    int ch;
    optind = 2;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            G.host = optarg;
            break;
        case 'p':
            G.port = atoi(optarg);
            break;
        case 's':
            G.secret = optarg;
            break;
        case 'P':
            G.path = optarg;
            break;
        case 'n':
            G.nconns = atoi(optarg);
            break;
        case 'o':
            G.norgs = atoi(optarg);
            break;
        case 'S':
            G.nsenders = atoi(optarg);
            break;
        case 'r':
            G.rate = atof(optarg);
            break;
        case 'f':
            G.flip = optarg;
            break;
        case 't':
            G.seconds = atof(optarg);
            break;
        case 'E':
            G.event_timeout = atof(optarg);
            break;
        case 'W':
            G.idle_warmup = atof(optarg);
            break;
        case 'i':
            G.idle_seconds = atof(optarg);
            break;
        case 'a':
            G.app_ping = atof(optarg);
            break;
        case 'c':
            G.connect_rate = atof(optarg);
            break;
        case 'm':
            G.max_pending = atoi(optarg);
            break;
        case 'b':
            G.batch = atoi(optarg);
            break;
        case 'k':
            G.nsrc = atoi(optarg);
            break;
        case 'x':
            G.server_pid = atoi(optarg);
            break;
        case 'T':
            G.setup_timeout = atof(optarg);
            break;
        case 'l':
            G.label = optarg;
            break;
        case 'C':
            G.cookies = optarg;
            break;
        case 'j':
            G.json_only = 1;
            break;
        case '?':
        default:
            usage(stderr);
            return 2;
        }
    }
    if (G.flip && strcmp(G.flip, "manual") && strcmp(G.flip, "auto")) {
        fprintf(stderr, "loadgen: --flip is manual or auto\n");
        return 2;
    }
    if (strcmp(G.scenario, "hold") && strcmp(G.scenario, "fanout") &&
        strcmp(G.scenario, "storm") && strcmp(G.scenario, "provision")) {
        fprintf(stderr, "loadgen: unknown scenario %s\n", G.scenario);
        return 2;
    }
    if (!G.port || (!G.secret && !G.cookies) || G.nconns < 1 || G.norgs < 1 ||
        G.norgs > G.nconns || G.nsenders < 1 || G.nsenders > G.nconns ||
        G.nsrc < 0 || G.nsrc > 250 || G.batch < 1) {
        fprintf(stderr, "loadgen: need --port, --secret, 1 <= --orgs <= "
                        "--conns, 1 <= --senders <= --conns\n");
        return 2;
    }
    /* Loopback only: this tool must never load another machine. */
    G.dst.sin_family = AF_INET;
    G.dst.sin_port = htons((uint16_t)G.port);
    if (inet_pton(AF_INET, G.host, &G.dst.sin_addr) != 1 ||
        (ntohl(G.dst.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "loadgen: --host must be an IPv4 loopback address\n");
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    if (G.cookies && load_cookies() != 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    /* Bounded in time whatever happens: the alarm kills a stuck run. */
    alarm((unsigned)(G.setup_timeout * 2 + G.seconds + G.idle_seconds +
                     G.idle_warmup +
                     G.event_timeout + 120));
    long lim = raise_nofile();
    if (lim > 0 && G.nconns + 16 > lim) {
        fprintf(stderr,
                "loadgen: %d connections need more than the %ld "
                "descriptors this process may hold\n",
                G.nconns, lim);
        return 2;
    }
    G.ep = epoll_create1(EPOLL_CLOEXEC);
    G.cl = calloc((size_t)G.nconns, sizeof *G.cl);
    G.orgs = calloc((size_t)G.norgs, sizeof *G.orgs);
    G.rbuf = malloc(READ_BUF);
    G.sendq = calloc((size_t)G.nsenders, sizeof *G.sendq);
    for (int i = 0; i < G.nconns; i++) {
        G.cl[i].fd = -1;
        G.cl[i].idx = i;
        G.cl[i].org = i % G.norgs;
        G.cl[i].status = ST_NONE;
    }
    int rc;
    if (!strcmp(G.scenario, "hold"))
        rc = scenario_hold();
    else if (!strcmp(G.scenario, "storm"))
        rc = scenario_storm();
    else if (!strcmp(G.scenario, "provision"))
        rc = scenario_provision();
    else
        rc = scenario_fanout();
    for (int k = 0; k < G.norgs; k++)
        free(G.orgs[k].ring);
    free(G.orgs);
    free(G.cl);
    free(G.rbuf);
    free(G.sendq);
    if (G.cookie)
        for (int i = 0; i < G.nconns; i++)
            free(G.cookie[i]);
    free(G.cookie);
    close(G.ep);
    return rc;
}
