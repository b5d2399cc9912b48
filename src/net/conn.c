/* conn.c - one TCP connection: accept, read, the output queue, deadlines,
 * close. What is read goes to the connection's handler (net.h).
 *
 * Reading uses one buffer per loop (data is handled synchronously in the
 * read callback, before the next read), so an idle connection owns no read
 * buffer. Output is a queue of frame references; the prepare handle writes
 * each connection's queue with a few writev calls per loop turn,
 * so many events for one socket cost one system call. A connection whose
 * queue passes max_out is dropped rather than allowed to grow. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_int.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "util/frame.h"

#define READ_BUF (64 * 1024)
#define LINGER_MS 2000 /* how long a half-closed peer may keep sending */
#define WRITE_BATCH 64 /* frames per uv_write */

static _Thread_local char read_buf[READ_BUF]; /* one per loop */

static struct conn *of(uv_handle_t *h)
{
    return container_of((uv_tcp_t *)h, struct conn, _tcp);
}

static void on_close(uv_handle_t *h)
{
    struct conn *c = of(h);
    /* Cancelled writes have been called back before this; drop the rest. */
    for (unsigned i = 0; i < c->_out_len; i++)
        frame_unref(c->_outq[(c->_out_head + i) % c->_out_cap]);
    c->_out_len = 0;
    c->lp->nconns--;
    conn_unref(c);
}

/* The moves enum conn_state allows. */
static inline int state_move_ok(enum conn_state from, enum conn_state to)
{
    switch (to) {
    case CONN_OPEN:
        return 0;
    case CONN_CLOSING:
        return from == CONN_OPEN;
    case CONN_CLOSED:
        return from != CONN_CLOSED;
    }
    return 0;
}

static void set_state(struct conn *c, enum conn_state s)
{
    assert(state_move_ok(c->state, s));
    c->state = s;
}

void conn_set_handler(struct conn *c, const struct conn_handler *h,
                      void *data)
{
    c->_cb = h;
    c->data = data;
}

void conn_ref(struct conn *c) { c->_refs++; }

void conn_unref(struct conn *c)
{
    if (--c->_refs)
        return;
    if (c->_outq != c->_out_small)
        free(c->_outq);
    if (c->_cb && c->_cb->on_free)
        c->_cb->on_free(c);
    free(c);
}

/* The handler hears once that the connection stops. */
static void closing(struct conn *c)
{
    if (c->_cb && c->_cb->on_closing)
        c->_cb->on_closing(c);
}

void conn_close(struct conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    int was_open = c->state == CONN_OPEN;
    set_state(c, CONN_CLOSED);
    if (was_open)
        closing(c);
    list_remove(&c->_pending_link);
    list_remove(&c->_timer_link);
    uv_close((uv_handle_t *)&c->_tcp, on_close);
}

void conn_peer(struct conn *c, char *out, size_t len)
{
    struct sockaddr_storage ss;
    int n = sizeof ss, r = -1;
    if (uv_tcp_getpeername(&c->_tcp, (struct sockaddr *)&ss, &n) == 0) {
        if (ss.ss_family == AF_INET)
            r = uv_ip4_name((struct sockaddr_in *)&ss, out, len);
        else if (ss.ss_family == AF_INET6)
            r = uv_ip6_name((struct sockaddr_in6 *)&ss, out, len);
    }
    if (r != 0)
        snprintf(out, len, "?");
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct conn *c = of((uv_handle_t *)req->handle);
    free(req);
    /* The FIN could not be sent (the socket failed): nothing more can
     * come or go, so there is nothing to linger for. UV_ECANCELED: the
     * connection is closing already. */
    if (status < 0 && status != UV_ECANCELED) {
        log_debug("shutdown: %s", uv_strerror(status));
        conn_close(c);
    }
}

/* Everything is written: send FIN, but keep reading (and dropping) what
 * the peer still sends until it closes too. Closing with unread input
 * would make the kernel answer with a reset, which can destroy our last
 * frames (a close frame, an error page) in flight. */
static void linger(struct conn *c)
{
    if (c->_shut)
        return;
    if (c->peer_eof) {
        /* The peer half-closed first and has everything: nothing to
         * drain, so no reset can overtake our last bytes. */
        conn_close(c);
        return;
    }
    c->_shut = 1;
    uv_shutdown_t *req = xmalloc(sizeof *req);
    if (uv_shutdown(req, (uv_stream_t *)&c->_tcp, on_shutdown) != 0) {
        free(req);
        conn_close(c);
    }
}

void conn_set_deadline(struct conn *c, int64_t ms)
{
    if (c->_lingering || c->state != CONN_OPEN)
        return;
    list_remove(&c->_timer_link);
    c->_deadline = c->lp->now + ms;
    list_insert_tail(&c->lp->waiting, &c->_timer_link);
}

void conn_clear_deadline(struct conn *c)
{
    if (!c->_lingering)
        list_remove(&c->_timer_link);
}

void conn_reap(struct loop *lp)
{
    /* Deadlines may come in any order: the whole list is looked at (it
     * holds connections awaiting a request, a few). */
    struct list *pos, *tmp;
    list_each_safe(pos, tmp, &lp->waiting) {
        struct conn *c = list_entry(pos, struct conn, _timer_link);
        if (c->_deadline > lp->now)
            continue;
        list_remove(pos);
        if (c->state == CONN_OPEN && c->_cb && c->_cb->on_timeout)
            c->_cb->on_timeout(c);
    }
    list_each_safe(pos, tmp, &lp->lingering) {
        struct conn *c = list_entry(pos, struct conn, _timer_link);
        if (c->_deadline > lp->now)
            break; /* appended in deadline order */
        conn_close(c);
    }
}

void conn_close_after_write(struct conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    if (c->state != CONN_CLOSING) {
        set_state(c, CONN_CLOSING);
        closing(c); /* no more broadcasts to a closing socket */
    }
    c->_close_after_write = 1;
    /* A peer gets LINGER_MS to take what is queued and to hang up; one
     * that reads nothing cannot hold the socket open. */
    if (!c->_lingering) {
        list_remove(&c->_timer_link); /* no longer awaiting a deadline */
        c->_lingering = 1;
        c->_deadline = c->lp->now + LINGER_MS;
        list_insert_tail(&c->lp->lingering, &c->_timer_link);
    }
    if (c->_out_len == 0 && !c->_out_inflight)
        linger(c);
}

/* Bytes queued that max_out judges: all but one large answer. */
static size_t counted(const struct conn *c)
{
    return c->_out_bytes - (c->_big ? c->_big->len : 0);
}

static void slow_consumer(struct conn *c)
{
    char peer[48];
    conn_peer(c, peer, sizeof peer);
    log_warn("%s: output queue over %zu bytes, closing", peer,
             c->lp->o.max_out);
    c->_overflow = 1;
}

void conn_send(struct conn *c, struct frame *f)
{
    if (c->state == CONN_CLOSED || c->_overflow)
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
    size_t max = c->lp->o.max_out;
    size_t limit = c->_out_inflight ? max : 4 * max;
    if (f->len > max && !c->_big) {
        c->_big = f;
    } else if (counted(c) + f->len > limit) {
        /* docs/protocol.md: a client that does not read is dropped. Not
         * here, though: we may be inside a presence announcement, and
         * closing would feed the core a disconnect while it is busy. The
         * flusher closes it at the end of this loop turn. */
        slow_consumer(c);
        if (!list_linked(&c->_pending_link))
            list_insert_tail(&c->lp->pending, &c->_pending_link);
        return;
    }
    if (c->_out_len == c->_out_cap) {
        unsigned cap = c->_out_cap * 2;
        struct frame **q = xmalloc(cap * sizeof *q);
        for (unsigned i = 0; i < c->_out_len; i++)
            q[i] = c->_outq[(c->_out_head + i) % c->_out_cap];
        if (c->_outq != c->_out_small)
            free(c->_outq);
        c->_outq = q;
        c->_out_head = 0;
        c->_out_cap = cap;
    }
    c->_outq[(c->_out_head + c->_out_len) % c->_out_cap] = frame_ref(f);
    c->_out_len++;
    c->_out_bytes += f->len;
    if (!list_linked(&c->_pending_link) && !c->_out_inflight)
        list_insert_tail(&c->lp->pending, &c->_pending_link);
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
        struct frame *f = c->_outq[c->_out_head];
        c->_out_bytes -= f->len;
        if (f == c->_big)
            c->_big = NULL;
        frame_unref(f);
        c->_out_head = (c->_out_head + 1) % c->_out_cap;
        c->_out_len--;
    }
    if (c->_out_len == 0 && c->_outq != c->_out_small) {
        /* Buffers only while data is pending: an idle connection's queue
         * is the two slots inside it. */
        free(c->_outq);
        c->_outq = c->_out_small;
        c->_out_cap = CONN_SMALL_Q;
        c->_out_head = 0;
    }
}

static void on_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    free(req);
    c->_wreq = NULL;
    release(c, c->_out_inflight);
    c->_out_inflight = 0;
    if (status < 0) {
        if (status != UV_ECANCELED)
            conn_close(c);
        return;
    }
    if (c->state == CONN_CLOSED)
        return;
    if (c->_out_len)
        start_write(c);
    else if (c->_close_after_write)
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
    while (c->_out_len && c->state != CONN_CLOSED) {
        unsigned n = c->_out_len < WRITE_BATCH ? c->_out_len : WRITE_BATCH;
        for (unsigned i = 0; i < n; i++) {
            struct frame *f = c->_outq[(c->_out_head + i) % c->_out_cap];
            bufs[i] = uv_buf_init(f->data, f->len);
        }
        int w = uv_try_write((uv_stream_t *)&c->_tcp, bufs, n);
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
        c->_out_inflight = n - done;
        c->_wreq = xmalloc(sizeof *c->_wreq);
        c->_wreq->data = c;
        if (uv_write(c->_wreq, (uv_stream_t *)&c->_tcp, bufs + done,
                     n - done, on_write) < 0) {
            free(c->_wreq);
            c->_wreq = NULL;
            c->_out_inflight = 0;
            conn_close(c);
        }
        return;
    }
    if (c->state != CONN_CLOSED && c->_close_after_write)
        linger(c);
}

void conn_flush_pending(struct loop *lp)
{
    struct list *pos, *tmp;
    list_each_safe(pos, tmp, &lp->pending) {
        struct conn *c = list_entry(pos, struct conn, _pending_link);
        list_remove(pos);
        if (!c->_overflow && c->state != CONN_CLOSED && !c->_out_inflight &&
            c->_out_len) {
            start_write(c);
            if (c->state != CONN_CLOSED && !c->_overflow &&
                counted(c) > lp->o.max_out)
                slow_consumer(c); /* what the socket did not take */
        }
        if (c->_overflow)
            conn_close(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    *b = uv_buf_init(read_buf, sizeof read_buf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = of((uv_handle_t *)s);
    loop_now(c->lp);
    if (nread == UV_EOF && c->state == CONN_OPEN && c->_cb->on_eof &&
        c->_cb->on_eof(c)) {
        /* A half-close (FIN) while an answer is being made: the client
         * waits for it, then we close. A reset, by contrast, means it
         * left. */
        c->peer_eof = 1;
        uv_read_stop(s);
        return;
    }
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0 || c->state != CONN_OPEN)
        return; /* closing: input is dropped */
    c->_cb->on_data(c, b->base, (size_t)nread);
}

int conn_accept(struct loop *lp)
{
    struct conn *c = xcalloc(1, sizeof *c);
    c->state = CONN_OPEN; /* the first state: not a move */
    c->lp = lp;
    c->_outq = c->_out_small;
    c->_out_cap = CONN_SMALL_Q;
    c->_refs = 1;
    list_init(&c->_pending_link);
    list_init(&c->_timer_link);
    int r = uv_tcp_init(&lp->uv, &c->_tcp);
    if (r != 0) {
        /* No handle, so nothing to close or count. */
        log_error("cannot make a handle for a new connection: %s",
                  uv_strerror(r));
        free(c);
        return r;
    }
    lp->nconns++; /* on_close() counts it out */
    r = uv_accept((uv_stream_t *)&lp->listener, (uv_stream_t *)&c->_tcp);
    if (r < 0) {
        log_debug("accept: %s", uv_strerror(r));
        set_state(c, CONN_CLOSED);
        uv_close((uv_handle_t *)&c->_tcp, on_close);
        return 0;
    }
    r = uv_tcp_nodelay(&c->_tcp, 1);
    if (r != 0) /* frames may then wait for Nagle: slower, not wrong */
        log_warn("TCP_NODELAY: %s", uv_strerror(r));
    lp->o.on_accept(lp, c);
    if (c->state != CONN_OPEN)
        return 0; /* refused */
    assert(c->_cb && c->_cb->on_data);
    r = uv_read_start((uv_stream_t *)&c->_tcp, on_alloc, on_read);
    if (r != 0) {
        /* Never read, it would wait for its request timeout in vain. */
        log_warn("cannot read a new connection: %s", uv_strerror(r));
        conn_close(c);
    }
    return 0;
}
