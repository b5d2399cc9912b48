/* conn.c - one TCP connection: accept, read, the output queue, close.
 *
 * Reading uses one buffer per loop (data is handled synchronously in the
 * read callback, before the next read), so an idle connection owns no read
 * buffer. Output is a queue of frame references; the prepare handle writes
 * each connection's whole queue with one uv_write (a writev) per loop turn,
 * so many events for one socket cost one system call. A connection whose
 * queue passes CONN_MAX_OUT is dropped rather than allowed to grow. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/server.h"
#include "util/log.h"
#include "util/rate.h"
#include "util/xalloc.h"
#include "ws/frame.h"

#define READ_BUF (64 * 1024)
#define LINGER_MS 2000 /* how long a half-closed peer may keep sending */
#define WRITE_BATCH 64 /* frames per uv_write */

static _Thread_local char read_buf[READ_BUF]; /* one per loop */

static void on_close(uv_handle_t *h)
{
    struct conn *c = container_of((uv_tcp_t *)h, struct conn, tcp);
    /* Cancelled writes have been called back before this; drop the rest. */
    for (unsigned i = 0; i < c->out_len; i++)
        frame_unref(c->outq[(c->out_head + i) % c->out_cap]);
    c->out_len = 0;
    c->lp->nconns_all--;
    conn_unref(c);
}

/* The moves enum conn_state allows. */
static inline int state_move_ok(enum conn_state from, enum conn_state to)
{
    switch (to) {
    case CONN_HTTP:
        return from == CONN_BUSY;
    case CONN_BUSY:
        return from == CONN_HTTP;
    case CONN_WS:
        return from == CONN_BUSY;
    case CONN_CLOSING:
        return from == CONN_HTTP || from == CONN_BUSY || from == CONN_WS;
    case CONN_CLOSED:
        return from != CONN_CLOSED;
    }
    return 0;
}

void conn_set_state(struct conn *c, enum conn_state s)
{
    assert(state_move_ok(c->state, s));
    c->state = s;
}

void conn_ref(struct conn *c) { c->refs++; }

void conn_unref(struct conn *c)
{
    if (--c->refs)
        return;
    if (c->outq != c->out_small)
        free(c->outq);
    http_conn_free(c);
    ws_conn_free(c);
    free(c);
}

void conn_close(struct conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    conn_set_state(c, CONN_CLOSED);
    /* Work queued for a peer that is gone is not worth doing (a login's
     * password check); it is called back cancelled unless it runs
     * (UV_EBUSY: then it ends on its own, and is called back too). */
    if (c->work)
        (void)uv_cancel((uv_req_t *)c->work);
    hub_detach(c);
    list_remove(&c->pending_link);
    list_remove(&c->timer_link);
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = container_of((uv_tcp_t *)req->handle, struct conn, tcp);
    free(req);
    /* The FIN could not be sent (the socket failed): nothing more can
     * come or go, so there is nothing to linger for. UV_ECANCELED: the
     * connection is closing already. */
    if (status < 0 && status != UV_ECANCELED) {
        log_debug("%s: shutdown: %s", c->peer, uv_strerror(status));
        conn_close(c);
    }
}

/* Everything is written: send FIN, but keep reading (and dropping) what
 * the peer still sends until it closes too. Closing with unread input
 * would make the kernel answer with a reset, which can destroy our last
 * frames (a close frame, an error page) in flight. */
static void linger(struct conn *c)
{
    if (c->shut)
        return;
    if (c->peer_eof) {
        /* The peer half-closed first and has everything: nothing to
         * drain, so no reset can overtake our last bytes. */
        conn_close(c);
        return;
    }
    c->shut = 1;
    uv_shutdown_t *req = xmalloc(sizeof *req);
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(req);
        conn_close(c);
    }
}

void conn_wait_request(struct conn *c)
{
    if (c->lingering)
        return;
    list_remove(&c->timer_link);
    c->deadline = c->lp->now + c->lp->cfg.header_timeout_ms;
    list_insert_tail(&c->lp->waiting, &c->timer_link);
}

void conn_reap(struct loop *lp)
{
    struct list *pos, *tmp;
    list_each_safe(pos, tmp, &lp->waiting) {
        struct conn *c = list_entry(pos, struct conn, timer_link);
        if (c->deadline > lp->now)
            break; /* appended in deadline order */
        list_remove(pos);
        if (c->state == CONN_HTTP) {
            /* A request that trickles in (slowloris) must not hold a
             * socket forever. */
            http_error(c, 408, "timeout", "request not received in time");
            conn_close_after_write(c);
        }
    }
    list_each_safe(pos, tmp, &lp->lingering) {
        struct conn *c = list_entry(pos, struct conn, timer_link);
        if (c->deadline > lp->now)
            break; /* appended in deadline order */
        conn_close(c);
    }
}

void conn_close_after_write(struct conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    if (c->state != CONN_CLOSING) {
        conn_set_state(c, CONN_CLOSING);
        hub_detach(c); /* no more broadcasts to a closing socket */
    }
    c->close_after_write = 1;
    /* A peer gets LINGER_MS to take what is queued and to hang up; one
     * that reads nothing cannot hold the socket open. */
    if (!c->lingering) {
        list_remove(&c->timer_link); /* no longer awaiting a request */
        c->lingering = 1;
        c->deadline = c->lp->now + LINGER_MS;
        list_insert_tail(&c->lp->lingering, &c->timer_link);
    }
    if (c->out_len == 0 && !c->out_inflight)
        linger(c);
}

/* Bytes queued that max_out judges: all but one large answer. */
static size_t counted(const struct conn *c)
{
    return c->out_bytes - (c->big ? c->big->len : 0);
}

static void slow_consumer(struct conn *c)
{
    log_warn("%s: output queue over %lld bytes, closing", c->peer,
             (long long)c->lp->cfg.max_out);
    c->overflow = 1;
}

void conn_send(struct conn *c, struct frame *f)
{
    if (c->state == CONN_CLOSED || c->overflow)
        return;
    /* docs/security.md max_out judges a client by what it fails to read,
     * not by the size of one answer or one burst. A frame larger than the
     * cap on its own (the snapshot of a large organization, a long member
     * list) is let through uncounted, one at a time. A burst made in one
     * loop turn is judged after the flusher has offered it to the socket
     * (conn_flush_pending()), so a client that keeps up takes it; only
     * while an earlier write still waits for the peer, which is then
     * behind, does the cap apply as frames arrive. A turn's burst is
     * bounded at 4 x max_out. */
    size_t max = (size_t)c->lp->cfg.max_out;
    size_t limit = c->out_inflight ? max : 4 * max;
    if (f->len > max && !c->big) {
        c->big = f;
    } else if (counted(c) + f->len > limit) {
        /* docs/protocol.md: a client that does not read is dropped. Not
         * here, though: we may be inside a presence announcement, and
         * closing would feed the core a disconnect while it is busy. The
         * flusher closes it at the end of this loop turn. */
        slow_consumer(c);
        if (!list_linked(&c->pending_link))
            list_insert_tail(&c->lp->pending, &c->pending_link);
        return;
    }
    if (c->out_len == c->out_cap) {
        unsigned cap = c->out_cap * 2;
        struct frame **q = xmalloc(cap * sizeof *q);
        for (unsigned i = 0; i < c->out_len; i++)
            q[i] = c->outq[(c->out_head + i) % c->out_cap];
        if (c->outq != c->out_small)
            free(c->outq);
        c->outq = q;
        c->out_head = 0;
        c->out_cap = cap;
    }
    c->outq[(c->out_head + c->out_len) % c->out_cap] = frame_ref(f);
    c->out_len++;
    c->out_bytes += f->len;
    if (!list_linked(&c->pending_link) && !c->out_inflight)
        list_insert_tail(&c->lp->pending, &c->pending_link);
}

void conn_send_bytes(struct conn *c, const void *p, size_t n)
{
    struct frame *f = frame_new_raw(p, n);
    conn_send(c, f);
    frame_unref(f);
}

static void start_write(struct conn *c);

/* Drops the first k queued frames: they have been written. */
static void release(struct conn *c, unsigned k)
{
    for (unsigned i = 0; i < k; i++) {
        struct frame *f = c->outq[c->out_head];
        c->out_bytes -= f->len;
        if (f == c->big)
            c->big = NULL;
        frame_unref(f);
        c->out_head = (c->out_head + 1) % c->out_cap;
        c->out_len--;
    }
    if (c->out_len == 0 && c->outq != c->out_small) {
        /* Buffers only while data is pending: an idle connection's queue
         * is the two slots inside it. */
        free(c->outq);
        c->outq = c->out_small;
        c->out_cap = CONN_SMALL_Q;
        c->out_head = 0;
    }
}

static void on_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    free(req);
    c->wreq = NULL;
    release(c, c->out_inflight);
    c->out_inflight = 0;
    if (status < 0) {
        if (status != UV_ECANCELED)
            conn_close(c);
        return;
    }
    if (c->state == CONN_CLOSED)
        return;
    if (c->out_len)
        start_write(c);
    else if (c->close_after_write)
        linger(c);
}

/* Writes the queue: first straight to the socket (uv_try_write), which is
 * all it takes while the peer keeps up, and only what the kernel did not
 * take goes to uv_write. That spares libuv's poll re-arming, an
 * epoll_ctl per write, that a plain uv_write costs even when it completes
 * at once. */
static void start_write(struct conn *c)
{
    uv_buf_t bufs[WRITE_BATCH];
    while (c->out_len && c->state != CONN_CLOSED) {
        unsigned n = c->out_len < WRITE_BATCH ? c->out_len : WRITE_BATCH;
        for (unsigned i = 0; i < n; i++) {
            struct frame *f = c->outq[(c->out_head + i) % c->out_cap];
            bufs[i] = uv_buf_init(f->data, f->len);
        }
        int w = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
        if (w == UV_EAGAIN)
            w = 0;
        if (w < 0) {
            conn_close(c);
            return;
        }
        size_t left = (size_t)w;
        unsigned done = 0;
        while (done < n && left >= bufs[done].len)
            left -= bufs[done++].len;
        release(c, done);
        if (done == n)
            continue; /* all of this batch went: the next one */
        /* The rest waits for the socket; the first frame partly sent. */
        bufs[done].base += left;
        bufs[done].len -= (unsigned)left;
        c->out_inflight = n - done;
        c->wreq = xmalloc(sizeof *c->wreq);
        c->wreq->data = c;
        if (uv_write(c->wreq, (uv_stream_t *)&c->tcp, bufs + done,
                     n - done, on_write) < 0) {
            free(c->wreq);
            c->wreq = NULL;
            c->out_inflight = 0;
            conn_close(c);
        }
        return;
    }
    if (c->state != CONN_CLOSED && c->close_after_write)
        linger(c);
}

void conn_flush_pending(struct loop *lp)
{
    struct list *pos, *tmp;
    list_each_safe(pos, tmp, &lp->pending) {
        struct conn *c = list_entry(pos, struct conn, pending_link);
        list_remove(pos);
        if (!c->overflow && c->state != CONN_CLOSED && !c->out_inflight &&
            c->out_len) {
            start_write(c);
            if (c->state != CONN_CLOSED && !c->overflow &&
                counted(c) > (size_t)lp->cfg.max_out)
                slow_consumer(c); /* what the socket did not take */
        }
        if (c->overflow)
            conn_close(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    *b = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = container_of((uv_tcp_t *)s, struct conn, tcp);
    loop_now(c->lp);
    if (nread == UV_EOF && c->state == CONN_BUSY) {
        /* A half-close (FIN) after a request: the client waits for its
         * answer, then we close. A reset, by contrast, means it left. */
        c->peer_eof = 1;
        uv_read_stop(s);
        return;
    }
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0 || c->state == CONN_CLOSING)
        return; /* closing: input is dropped */
    if (c->state == CONN_WS) {
        ws_on_data(c, b->base, (size_t)nread);
        return;
    }
    if ((c->state != CONN_HTTP && c->state != CONN_BUSY) || !c->h)
        return;
    if (buf_append(&c->h->in, b->base, (size_t)nread)) {
        http_error(c, 431, "too_large", "request too large");
        conn_close_after_write(c);
        return;
    }
    if (c->state == CONN_HTTP)
        http_on_data(c);
}

int conn_start(struct loop *lp, uv_stream_t *listener)
{
    struct server *srv = lp->srv;
    struct conn *c = xcalloc(1, sizeof *c);
    c->state = CONN_HTTP; /* the first state: not a move */
    c->srv = srv;
    c->lp = lp;
    c->outq = c->out_small;
    c->out_cap = CONN_SMALL_Q;
    c->refs = 1;
    list_init(&c->org_link);
    list_init(&c->all_link);
    list_init(&c->pending_link);
    list_init(&c->timer_link);
    list_init(&c->subs);
    int r = uv_tcp_init(&lp->uv, &c->tcp);
    if (r != 0) {
        /* No handle, so nothing to close or count. */
        log_error("cannot make a handle for a new connection: %s",
                  uv_strerror(r));
        free(c);
        return r;
    }
    lp->nconns_all++; /* on_close() counts it out */
    r = uv_accept(listener, (uv_stream_t *)&c->tcp);
    if (r < 0) {
        log_debug("accept: %s", uv_strerror(r));
        conn_set_state(c, CONN_CLOSED);
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return 0;
    }
    r = uv_tcp_nodelay(&c->tcp, 1);
    if (r != 0) /* frames may then wait for Nagle: slower, not wrong */
        log_warn("TCP_NODELAY: %s", uv_strerror(r));
    struct sockaddr_storage ss;
    int len = sizeof ss;
    strcpy(c->peer, "?");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        r = 0;
        if (ss.ss_family == AF_INET)
            r = uv_ip4_name((struct sockaddr_in *)&ss, c->peer,
                            sizeof c->peer);
        else if (ss.ss_family == AF_INET6)
            r = uv_ip6_name((struct sockaddr_in6 *)&ss, c->peer,
                            sizeof c->peer);
        if (r != 0)
            strcpy(c->peer, "?");
    }
    /* docs/security.md: new connections per address per second. */
    char key[64];
    snprintf(key, sizeof key, "conn:%s", c->peer);
    server_lock(srv);
    int64_t n = rate_add(srv->rates, key, 1000, srv->now);
    server_unlock(srv);
    if (n > lp->cfg.conn_rate) {
        conn_set_state(c, CONN_CLOSED);
        uv_close((uv_handle_t *)&c->tcp, on_close);
        return 0;
    }
    http_conn_init(c);
    r = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (r != 0) {
        /* Never read, it would wait for its request timeout in vain. */
        log_warn("%s: cannot read: %s", c->peer, uv_strerror(r));
        conn_close(c);
        return 0;
    }
    conn_wait_request(c);
    return 0;
}
