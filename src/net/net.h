/* net.h - the transport: event loops, TCP connections, output queues and
 * connection deadlines.
 *
 * It knows nothing of HTTP, WebSocket or presence. A loop accepts
 * connections and hands each new one to its owner (loop_opts.on_accept),
 * which installs a handler (conn_set_handler); from then on the transport
 * hands that handler the bytes it reads, the peer's half-close, a passed
 * deadline and the close, the way h2o's sockets call `sock->cb` and libuv
 * calls a uv_read_cb. A protocol above changes a connection's handler when
 * it changes protocol (an HTTP upgrade to WebSocket).
 *
 * Threads: each loop runs on one thread (loop_run()); a connection belongs
 * to one loop for life, and every function here but loop_wake() must be
 * called on its loop's thread. Nothing here takes a lock.
 *
 * Output is a queue of frame references (util/frame.h: immutable, shared
 * between recipients), written in batches (uv_try_write first, of up to
 * 64 frames, the rest by uv_write) once per loop turn, just before
 * the loop polls. A connection whose queue passes max_out is closed rather
 * than allowed to grow.
 *
 * Errors: functions that can fail return 0 or a negative UV_E* code, and
 * log the failure once, where it happens. */
#ifndef NET_H
#define NET_H
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "util/list.h"

struct frame;
struct loop;
struct conn;

#define CONN_SMALL_Q 2 /* frames queued in the connection itself */

/* What the transport tells the protocol a connection speaks. Each is
 * called on the connection's loop thread; c stays valid for the call. */
struct conn_handler {
    /* Bytes read (lent for the call). */
    void (*on_data)(struct conn *c, const char *data, size_t len);
    /* The peer half-closed (FIN). Return 1 to keep the connection open
     * (an answer is being prepared; reading stops), 0 to close it. */
    int (*on_eof)(struct conn *c);
    /* The deadline set with conn_set_deadline() passed. */
    void (*on_timeout)(struct conn *c);
    /* The connection stops: the first conn_close() or
     * conn_close_after_write(). Nothing more should be queued to it. */
    void (*on_closing)(struct conn *c);
    /* Last: free what the handler's data holds. Called once, from the
     * close callback, when no reference (conn_ref()) is left. */
    void (*on_free)(struct conn *c);
};

/* A connection moves OPEN -> CLOSING -> CLOSED, or OPEN -> CLOSED;
 * conn_set_state() in conn.c asserts every move. */
enum conn_state {
    CONN_OPEN,     /* reading and writing */
    CONN_CLOSING,  /* flush what is queued, then close */
    CONN_CLOSED,   /* uv_close called; freed in its callback */
};

/* One TCP connection. Fields starting with `_` are the transport's. */
struct conn {
    uv_tcp_t _tcp;              /* first: handle <-> conn */
    struct loop *lp;            /* the loop (thread) that owns it */
    const struct conn_handler *_cb;
    void *data;                 /* the handler's */
    enum conn_state state;      /* read-only above */
    unsigned _refs;
    unsigned _close_after_write : 1;
    unsigned _overflow : 1;     /* queue cap hit: closed by the flusher */
    unsigned _shut : 1;         /* uv_shutdown() called */
    unsigned _lingering : 1;    /* _timer_link is in the lingering list */
    unsigned peer_eof : 1;      /* the peer half-closed (read-only above) */
    /* Output: a ring of frame references. */
    struct frame **_outq;       /* _out_small, or malloc'd past it */
    struct frame *_out_small[CONN_SMALL_Q];
    unsigned _out_head, _out_len, _out_cap, _out_inflight;
    size_t _out_bytes;
    struct frame *_big;         /* queued, over max_out alone: not counted */
    uv_write_t *_wreq;          /* only while a write is in flight */
    struct list _pending_link;  /* has output to flush */
    struct list _timer_link;    /* a deadline, or lingering */
    int64_t _deadline;
};

/* Called with each new connection, on its loop: install a handler or
 * close it. */
typedef void loop_accept_cb(struct loop *lp, struct conn *c);
/* Called on lp's thread after loop_wake() (several wakes may merge). */
typedef void loop_wake_cb(struct loop *lp);

struct loop_opts {
    unsigned id;                /* the owner's index for this loop */
    loop_accept_cb *on_accept;
    loop_wake_cb *on_wake;
    void *data;                 /* the owner's, loop_data() */
    size_t max_out;             /* output queue cap per connection, bytes */
};

/* A new loop in *out (not yet listening or running): 0, or a UV_E* code
 * and nothing is left to free. */
int loop_new(struct loop **out, const struct loop_opts *o);
/* After loop_run() returned, or instead of it: closes what is open and
 * frees the loop. NULL is a no-op. */
void loop_free(struct loop *lp);
/* Listens on sa; reuseport: share the address with the other loops
 * (SO_REUSEPORT), which then bind the port the first one got. 0 or a
 * UV_E* code (the caller logs it: it knows the address as written). */
int loop_listen(struct loop *lp, const struct sockaddr *sa, int reuseport);
/* The address the listening listener is bound to (the port chosen for
 * port 0, kept for reopening it). 0 or a UV_E* code. */
int loop_bound(struct loop *lp, struct sockaddr_storage *ss);
/* Runs the loop until loop_close() has closed everything; sets the
 * thread's loop_current() meanwhile. */
void loop_run(struct loop *lp);
/* Stops accepting: closes the listener. */
void loop_stop_accepting(struct loop *lp);
/* Closes every connection (conn_close) and every handle of the loop,
 * the owner's included, so that loop_run() returns. */
void loop_close(struct loop *lp);

uv_loop_t *loop_uv(struct loop *lp);  /* for the owner's timers */
unsigned loop_id(const struct loop *lp);
void *loop_data(const struct loop *lp);
/* Refreshes the loop's clock from the real-time clock and returns it
 * (ms since the epoch); loop_time() returns it as last refreshed. */
int64_t loop_now(struct loop *lp);
int64_t loop_time(const struct loop *lp);
/* Any thread: on_wake will run on lp's thread soon. */
void loop_wake(struct loop *lp);
void loop_set_max_out(struct loop *lp, size_t max_out);
/* The loop of the calling thread; NULL off the loop threads. */
struct loop *loop_current(void);

/* Installs c's handler (and its data); replaces the previous one. */
void conn_set_handler(struct conn *c, const struct conn_handler *h,
                      void *data);
static inline int conn_is_open(const struct conn *c)
{
    return c->state == CONN_OPEN;
}
/* The peer's address as text ("?" if it cannot be told). */
void conn_peer(struct conn *c, char *out, size_t len);
/* Queues f (takes a new reference). Dropped if c is closing. */
void conn_send(struct conn *c, struct frame *f);
void conn_send_bytes(struct conn *c, const void *p, size_t n); /* copies */
/* Flushes what is queued, then closes (after the peer hangs up, or a
 * linger time). */
void conn_close_after_write(struct conn *c);
void conn_close(struct conn *c); /* at once; safe to repeat */
/* References keep the memory (not the socket) alive across async work. */
void conn_ref(struct conn *c);
void conn_unref(struct conn *c);
/* Calls on_timeout once at ms from now (the loop checks every 100 ms);
 * a new call replaces the old deadline. */
void conn_set_deadline(struct conn *c, int64_t ms);
void conn_clear_deadline(struct conn *c);
#endif
