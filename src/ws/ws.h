/* ws.h - WebSocket (RFC 6455) over a transport connection, with wslay.
 *
 * ws_accept() takes a connection over from HTTP after a valid upgrade
 * request: it answers 101 and installs itself as the connection's handler
 * (net/net.h). wslay parses client frames (masking, fragments, control
 * frames, sizes) and answers pings and closes itself; each complete text
 * or binary message goes to the owner's on_msg callback. It knows nothing
 * of presence.
 *
 * Memory: the owner embeds struct ws_conn in its own per-connection state
 * and frees it in on_free (libuv's rule: the caller owns the handle). A
 * wslay context (~8.5 KiB) is held only while a message is under way.
 *
 * Threads: everything on the connection's loop thread. */
#ifndef WS_H
#define WS_H
#include <stddef.h>
#include <stdint.h>

#include "net/net.h"

struct frame;
struct http_conn;
struct http_req;
struct ws_conn;
struct ws_ctx;

/* Close codes we send (RFC 6455 7.4.1), by their RFC names. */
enum ws_close_code {
    WS_CLOSE_NORMAL = 1000,      /* normal closure */
    WS_CLOSE_GOING_AWAY = 1001,  /* server shutting down, peer silent */
    WS_CLOSE_PROTOCOL = 1002,    /* protocol error */
    WS_CLOSE_BAD_DATA = 1007,    /* invalid frame payload data (UTF-8) */
    WS_CLOSE_POLICY = 1008,      /* policy violation (logout, limits) */
    WS_CLOSE_TOO_BIG = 1009,     /* message too big */
    WS_CLOSE_INTERNAL = 1011,    /* internal server error */
};

struct ws_callbacks {
    /* The 101 is queued: the owner's greeting goes out before anything
     * answers the client's first frames. May close w. */
    void (*on_open)(struct ws_conn *w);
    /* A complete message (lent for the call); binary: a binary frame. */
    void (*on_msg)(struct ws_conn *w, const char *data, size_t len,
                   int binary);
    /* The connection stops (close handshake, error, or the peer left):
     * nothing more should be sent. Called once. */
    void (*on_closing)(struct ws_conn *w);
    /* Last: free the memory w is embedded in. */
    void (*on_free)(struct ws_conn *w);
};

/* Fields starting with `_` are ws.c's. */
struct ws_conn {
    struct conn *c;
    int64_t last_rx_ms;         /* when the peer last sent anything */
    const struct ws_callbacks *_cb;
    struct ws_ctx *_ctx;        /* wslay's, while a message is under way */
    size_t _max_msg;
    unsigned _echo : 1;
};

/* 0 if r is a valid upgrade request, else -1 after a 400/426 answer. */
int ws_upgrade_check(struct http_conn *h, const struct http_req *r);
/* For a request that passed ws_upgrade_check(): queues the 101 response
 * and makes h's connection a WebSocket served through w (the HTTP state
 * is gone after this). max_msg caps a message; echo: answer each message
 * with itself (the /ws/echo endpoint; cb may then have no on_msg).
 * Calls cb->on_open, then reads the frames the client sent behind its
 * request. Returns 0, or -1 after an error answer (w untouched, not
 * owned by the connection). */
int ws_accept(struct ws_conn *w, struct http_conn *h, const struct http_req *r,
              const struct ws_callbacks *cb, size_t max_msg, int echo);
/* 1 while messages may be sent to w. Inline: called per delivery. */
static inline int ws_is_open(const struct ws_conn *w)
{
    return conn_is_open(w->c);
}
/* Queues f to w (takes a reference). */
static inline void ws_send(struct ws_conn *w, struct frame *f)
{
    conn_send(w->c, f);
}
/* Starts the close handshake with code and reason; does nothing once a
 * close has begun. */
void ws_close(struct ws_conn *w, enum ws_close_code code, const char *reason);
void ws_pool_free(void); /* at thread exit: the idle contexts */
#endif
