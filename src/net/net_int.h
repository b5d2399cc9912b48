/* net_int.h - what loop.c and conn.c share inside net/. */
#ifndef NET_INT_H
#define NET_INT_H
#include "net/net.h"
#include "util/list.h"

struct loop {
    struct loop_opts o;
    uv_loop_t uv;
    uv_tcp_t listener;
    int listening;              /* listener open */
    int accept_paused;          /* listener closed: out of descriptors */
    int stopping;               /* loop_stop_accepting() called */
    int reuseport;
    struct sockaddr_storage ss; /* as bound, for reopening */
    uv_timer_t reap;            /* deadlines and lingering sockets */
    uv_timer_t accept_timer;    /* reopens the listener after a pause */
    uv_prepare_t flusher;       /* writes queued output before polling */
    uv_async_t wake;
    int64_t now;                /* ms since the epoch, refreshed per event */
    int64_t last_accept_log;
    struct list pending;        /* connections with output to write */
    struct list lingering;      /* half-closed, draining input until EOF */
    struct list waiting;        /* connections with a deadline */
    unsigned nconns;            /* open connection handles */
};

/* conn.c, for loop.c */
/* Accepts the next peer of lp's listener. Returns 0 once the peer is off
 * the listener: handed to on_accept, or closed at once (a failed accept).
 * Returns a negative UV_E* code (logged) if no handle could be made for
 * it: libuv then keeps the peer in the listener and accepts no other
 * until it is taken, so the caller must close the listener. */
int conn_accept(struct loop *lp);
void conn_flush_pending(struct loop *lp);
/* Calls on_timeout for passed deadlines; closes lingering connections
 * whose time is up. */
void conn_reap(struct loop *lp);
#endif
