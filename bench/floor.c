/* floor.c - "the floor": the least a presence server could do per event.
 *
 * A stand-in server for loadgen's fanout scenario that keeps only the
 * machine's share of the work: accept, answer the upgrade, and for every
 * status message a sender sends, build one presence frame (the same
 * fields, ~150 bytes, unmasked) and push it to every connection of the
 * sender's organization, each socket's queued frames with one writev per
 * loop turn (at most 64 frames per call, as presenced does). No token
 * check, no presence rules, no database, no JSON parser, no libuv. Because
 * loadgen drives it exactly as it drives presenced (same receivers, same
 * closed loop, same measurements), every presenced figure can be quoted as
 * a fraction of the floor's, measured in the same run.
 *
 * Connections name themselves with loadgen's "X-Bench-Id: ORG USER"
 * header. Client frames are read with wslay's event API (which unmasks
 * them and answers pings); frames out are built with wslay's frame layer.
 * The program stops by itself after --max-seconds, or on SIGTERM/SIGINT,
 * and prints one JSON line of counters. Loopback only. */
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "common.h"

#define REQ_CAP 8192
#define WRITE_BATCH 64
#define READ_BUF (64 * 1024)

struct ref {
    unsigned refs;
    uint32_t len;
    uint8_t data[];
};

struct fconn {
    int fd, org, user, pos;
    uint8_t ws_on, pending, out_on, dead;
    char *req;
    unsigned req_len;
    wslay_event_context_ptr ws;
    const uint8_t *rx;
    size_t rx_len;
    struct ref **q; /* ring of frame references */
    unsigned qhead, qlen, qcap;
    size_t off; /* bytes of q[qhead] already written */
    struct fconn *next_pending;
};

struct forg {
    uint64_t seq;
    struct fconn **m;
    int n, cap;
};

static struct {
    int ep, lfd;
    struct forg *orgs;
    int norgs;
    struct fconn *pending;
    uint8_t rbuf[READ_BUF];
    uint64_t events, deliveries, writevs, bytes, conns;
    volatile sig_atomic_t stop;
} F;

static void on_signal(int s)
{
    (void)s;
    F.stop = 1;
}

/* ---- frames and queues ----------------------------------------------- */

static struct ref *ref_new(int opcode, const void *p, size_t len)
{
    struct ref *r = malloc(sizeof *r + len + 10);
    int n = frame_encode(opcode, p, len, r->data, len + 10);
    if (n < 0)
        abort();
    r->refs = 1;
    r->len = (uint32_t)n;
    return r;
}

static struct ref *ref_raw(const void *p, size_t len)
{
    struct ref *r = malloc(sizeof *r + len);
    memcpy(r->data, p, len);
    r->refs = 1;
    r->len = (uint32_t)len;
    return r;
}

static void unref(struct ref *r)
{
    if (--r->refs == 0)
        free(r);
}

static void enqueue(struct fconn *c, struct ref *r)
{
    if (c->dead)
        return;
    if (c->qlen == c->qcap) {
        unsigned cap = c->qcap ? c->qcap * 2 : 8;
        struct ref **q = malloc(cap * sizeof *q);
        for (unsigned i = 0; i < c->qlen; i++)
            q[i] = c->q[(c->qhead + i) % c->qcap];
        free(c->q);
        c->q = q;
        c->qhead = 0;
        c->qcap = cap;
    }
    r->refs++;
    c->q[(c->qhead + c->qlen++) % c->qcap] = r;
    if (!c->pending) {
        c->pending = 1;
        c->next_pending = F.pending;
        F.pending = c;
    }
}

static void set_out(struct fconn *c, int on)
{
    if (c->out_on == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0),
                             .data.ptr = c};
    epoll_ctl(F.ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->out_on = (uint8_t)on;
}

static void conn_free(struct fconn *c)
{
    while (c->qlen) {
        unref(c->q[c->qhead]);
        c->qhead = (c->qhead + 1) % c->qcap;
        c->qlen--;
    }
    free(c->q);
    free(c->req);
    if (c->ws)
        wslay_event_context_free(c->ws);
    free(c);
}

/* Marks c dead and drops it from its organization; it is freed after the
 * flush, since it may sit on the pending list. */
static void conn_close(struct fconn *c)
{
    if (c->dead)
        return;
    c->dead = 1;
    epoll_ctl(F.ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->ws_on) {
        struct forg *o = &F.orgs[c->org];
        o->m[c->pos] = o->m[--o->n];
        o->m[c->pos]->pos = c->pos;
    }
    if (!c->pending) {
        c->pending = 1;
        c->next_pending = F.pending;
        F.pending = c;
    }
}

/* Writes c's queue: one writev of up to WRITE_BATCH frames, repeated while
 * the socket takes everything. */
static void flush(struct fconn *c)
{
    while (c->qlen) {
        struct iovec iov[WRITE_BATCH];
        unsigned n = c->qlen < WRITE_BATCH ? c->qlen : WRITE_BATCH;
        for (unsigned i = 0; i < n; i++) {
            struct ref *r = c->q[(c->qhead + i) % c->qcap];
            iov[i].iov_base = r->data + (i ? 0 : c->off);
            iov[i].iov_len = r->len - (i ? 0 : c->off);
        }
        ssize_t w = writev(c->fd, iov, (int)n);
        F.writevs++;
        if (w < 0) {
            if (errno == EAGAIN) {
                set_out(c, 1);
                return;
            }
            conn_close(c);
            return;
        }
        F.bytes += (uint64_t)w;
        size_t left = (size_t)w;
        while (c->qlen) {
            struct ref *r = c->q[c->qhead];
            size_t rest = r->len - c->off;
            if (left < rest) {
                c->off += left;
                break;
            }
            left -= rest;
            c->off = 0;
            unref(r);
            c->qhead = (c->qhead + 1) % c->qcap;
            c->qlen--;
        }
        if (c->qlen) { /* short write: the socket is full */
            set_out(c, 1);
            return;
        }
    }
    set_out(c, 0);
    if (c->qcap > 64) { /* buffers only while data is pending */
        free(c->q);
        c->q = NULL;
        c->qcap = c->qhead = 0;
    }
}

static void flush_pending(void)
{
    struct fconn *c = F.pending;
    F.pending = NULL;
    while (c) {
        struct fconn *next = c->next_pending;
        c->pending = 0;
        if (c->dead)
            conn_free(c);
        else if (!c->out_on)
            flush(c);
        c = next;
    }
}

/* ---- the one thing a presence server must do ------------------------ */

static void publish(struct fconn *from, int status, int is_auto)
{
    struct forg *o = &F.orgs[from->org];
    char json[256];
    const char *reason = !is_auto              ? "manual"
                         : status == ST_ONLINE ? "active"
                                               : "idle";
    int n =
        snprintf(json, sizeof json,
                 "{\"type\":\"presence\",\"user\":\"u%d\",\"name\":\"u%d\","
                 "\"status\":\"%s\",\"last_seen\":%lld,\"seq\":%llu,"
                 "\"reason\":\"%s\"}",
                 from->user, from->user, status_name(status),
                 (long long)wall_ms(), (unsigned long long)++o->seq, reason);
    struct ref *r = ref_new(WSLAY_TEXT_FRAME, json, (size_t)n);
    for (int i = 0; i < o->n; i++)
        enqueue(o->m[i], r);
    unref(r);
    F.events++;
    F.deliveries += (uint64_t)o->n;
}

static void send_text(struct fconn *c, const char *s, size_t n)
{
    struct ref *r = ref_new(WSLAY_TEXT_FRAME, s, n);
    enqueue(c, r);
    unref(r);
}

static void on_text(struct fconn *c, const char *m, size_t n)
{
    const char *t, *v;
    size_t tl, vl;
    if (json_str(m, n, "\"type\":", &t, &tl) != 0)
        return;
    if (tl == 6 && !memcmp(t, "status", 6) &&
        json_str(m, n, "\"status\":", &v, &vl) == 0) {
        int st = status_parse(v, vl);
        if (st != ST_NONE)
            publish(c, st, memmem(m, n, "\"auto\":true", 11) != NULL);
    } else if (tl == 4 && !memcmp(t, "ping", 4)) {
        static const char pong[] = "{\"type\":\"pong\"}";
        send_text(c, pong, sizeof pong - 1);
    }
}

/* ---- wslay (client frames in; its control frames out) --------------- */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       int flags, void *ud)
{
    (void)flags;
    struct fconn *c = ud;
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
    (void)ctx;
    (void)flags;
    struct fconn *c = ud;
    struct ref *r = ref_raw(data, len);
    enqueue(c, r);
    unref(r);
    return (ssize_t)len;
}

static void on_msg(wslay_event_context_ptr ctx,
                   const struct wslay_event_on_msg_recv_arg *arg, void *ud)
{
    (void)ctx;
    if (arg->opcode == WSLAY_TEXT_FRAME)
        on_text(ud, (const char *)arg->msg, arg->msg_length);
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .on_msg_recv_callback = on_msg,
};

static void feed_ws(struct fconn *c, const uint8_t *p, size_t n)
{
    c->rx = p;
    c->rx_len = n;
    int rc = wslay_event_recv(c->ws);
    c->rx_len = 0;
    if (rc == 0)
        rc = wslay_event_send(c->ws);
    if (rc != 0 ||
        (!wslay_event_want_read(c->ws) && !wslay_event_want_write(c->ws)))
        conn_close(c);
}

/* ---- the upgrade ---------------------------------------------------- */

static const char *header(const char *req, const char *name)
{
    const char *p = strcasestr(req, name);
    if (!p)
        return NULL;
    p += strlen(name);
    while (*p == ' ')
        p++;
    return p;
}

static struct forg *org_at(int k)
{
    if (k >= F.norgs) {
        int n = k + 1 > F.norgs * 2 ? k + 1 : F.norgs * 2;
        F.orgs = realloc(F.orgs, (size_t)n * sizeof *F.orgs);
        memset(F.orgs + F.norgs, 0, (size_t)(n - F.norgs) * sizeof *F.orgs);
        F.norgs = n;
    }
    return &F.orgs[k];
}

/* Answers a complete request; returns the bytes it used, or -1. */
static long upgrade(struct fconn *c)
{
    char *end = strstr(c->req, "\r\n\r\n");
    if (!end)
        return c->req_len >= REQ_CAP - 1 ? -1 : 0;
    long used = end + 4 - c->req;
    end[2] = '\0';
    const char *id = header(c->req, "\r\nX-Bench-Id:");
    const char *key = header(c->req, "\r\nSec-WebSocket-Key:");
    int org, user;
    if (!id || !key || sscanf(id, "%d %d", &org, &user) != 2 || org < 0 ||
        user < 0 || org > 10000000) {
        static const char bad[] = "HTTP/1.1 400 Bad Request\r\n"
                                  "Content-Length: 0\r\n\r\n";
        if (write(c->fd, bad, sizeof bad - 1) < 0) {
            /* closing anyway */
        }
        return -1;
    }
    size_t kl = strcspn(key, "\r\n ");
    char in[128];
    unsigned char sha[EVP_MAX_MD_SIZE];
    unsigned shalen = 0;
    char accept[64], resp[256];
    int n = snprintf(in, sizeof in, "%.*s258EAFA5-E914-47DA-95CA-C5AB0DC85B11",
                     (int)(kl < 64 ? kl : 64), key);
    EVP_Digest(in, (size_t)n, sha, &shalen, EVP_sha1(), NULL);
    sodium_bin2base64(accept, sizeof accept, sha, shalen,
                      sodium_base64_VARIANT_ORIGINAL);
    n = snprintf(resp, sizeof resp,
                 "HTTP/1.1 101 Switching Protocols\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\n\r\n",
                 accept);
    struct ref *r = ref_raw(resp, (size_t)n);
    enqueue(c, r);
    unref(r);

    c->org = org;
    c->user = user;
    struct forg *o = org_at(org);
    char json[320];
    n = snprintf(json, sizeof json,
                 "{\"type\":\"hello\",\"user\":\"u%d\",\"org\":\"o%d\","
                 "\"name\":\"u%d\",\"heartbeat\":30,\"away_after\":300,"
                 "\"offline_after\":1800,\"status\":\"ONLINE\","
                 "\"manual\":null,\"max_message\":65536}",
                 user, org, user);
    send_text(c, json, (size_t)n);
    n = snprintf(json, sizeof json,
                 "{\"type\":\"snapshot\",\"seq\":%llu,\"members\":[]}",
                 (unsigned long long)o->seq);
    send_text(c, json, (size_t)n);

    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 64;
        o->m = realloc(o->m, (size_t)o->cap * sizeof *o->m);
    }
    c->pos = o->n;
    o->m[o->n++] = c;
    if (wslay_event_context_server_init(&c->ws, &callbacks, c) != 0)
        abort();
    c->ws_on = 1;
    free(c->req);
    c->req = NULL;
    F.conns++;
    return used;
}

static void on_readable(struct fconn *c)
{
    ssize_t n = read(c->fd, F.rbuf, sizeof F.rbuf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        conn_close(c);
        return;
    }
    if (c->ws_on) {
        feed_ws(c, F.rbuf, (size_t)n);
        return;
    }
    size_t take = (size_t)n < REQ_CAP - 1 - c->req_len
                      ? (size_t)n
                      : REQ_CAP - 1 - c->req_len;
    unsigned old = c->req_len;
    memcpy(c->req + old, F.rbuf, take);
    c->req_len += (unsigned)take;
    c->req[c->req_len] = '\0';
    long used = upgrade(c);
    if (used < 0) {
        conn_close(c);
        return;
    }
    if (c->ws_on && (size_t)used - old < (size_t)n)
        feed_ws(c, F.rbuf + (used - old), (size_t)n - (size_t)(used - old));
}

static void on_accept(void)
{
    for (int i = 0; i < 256; i++) {
        int fd = accept4(F.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct fconn *c = calloc(1, sizeof *c);
        c->fd = fd;
        c->req = malloc(REQ_CAP);
        c->req[0] = '\0';
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(F.ep, EPOLL_CTL_ADD, fd, &ev);
    }
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    int port = 0;
    double max_seconds = 600, heartbeat = 0;
    static const struct option opts[] = {{"host", 1, 0, 'h'},
                                         {"heartbeat", 1, 0, 'b'},
                                         {"port", 1, 0, 'p'},
                                         {"max-seconds", 1, 0, 't'},
                                         {"help", 0, 0, '?'},
                                         {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'h':
            host = optarg;
            break;
        case 'p':
            port = atoi(optarg);
            break;
        case 't':
            max_seconds = atof(optarg);
            break;
        case 'b':
            heartbeat = atof(optarg);
            break;
        default:
            fprintf(stderr,
                    "usage: floor [--host 127.0.0.1] [--port P (0: any)]"
                    " [--max-seconds T (600)] [--heartbeat T (0: none)]\n");
            return 2;
        }
    }
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
        (ntohl(a.sin_addr.s_addr) >> 24) != 127) {
        fprintf(stderr, "floor: --host must be an IPv4 loopback address\n");
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    F.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(F.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(F.lfd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(F.lfd, 4096) != 0) {
        perror("floor: listen");
        return 1;
    }
    socklen_t al = sizeof a;
    getsockname(F.lfd, (struct sockaddr *)&a, &al);
    printf("floor listening on %s:%d\n", host, ntohs(a.sin_port));
    fflush(stdout);
    F.ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(F.ep, EPOLL_CTL_ADD, F.lfd, &lev);

    int64_t deadline = now_ns() + (int64_t)(max_seconds * 1e9);
    int64_t beat_ns = (int64_t)(heartbeat * 1e9), next_beat = now_ns() + beat_ns;
    struct epoll_event evs[1024];
    while (!F.stop && now_ns() < deadline) {
        if (beat_ns && now_ns() >= next_beat) {
            /* The heartbeat floor: one 2-byte ping per connection, one
             * send() each, nothing else (the pong is read and dropped). */
            static const uint8_t ping[2] = {0x89, 0x00};
            next_beat += beat_ns;
            for (int o = 0; o < F.norgs; o++)
                for (int k = 0; k < F.orgs[o].n; k++)
                    if (!F.orgs[o].m[k]->dead)
                        (void)send(F.orgs[o].m[k]->fd, ping, 2, MSG_NOSIGNAL);
        }
        int n = epoll_wait(F.ep, evs, 1024, 100);
        for (int i = 0; i < n; i++) {
            struct fconn *c = evs[i].data.ptr;
            if (!c) {
                on_accept();
                continue;
            }
            if (c->dead)
                continue;
            if (evs[i].events & EPOLLOUT)
                flush(c); /* clears EPOLLOUT once the queue is empty */
            if (!c->dead && (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
                on_readable(c);
        }
        flush_pending();
    }
    printf("{\"floor\":{\"conns\":%llu,\"events\":%llu,\"deliveries\":%llu,"
           "\"writev\":%llu,\"bytes\":%llu}}\n",
           (unsigned long long)F.conns, (unsigned long long)F.events,
           (unsigned long long)F.deliveries, (unsigned long long)F.writevs,
           (unsigned long long)F.bytes);
    return 0;
}
