/* ws.h - WebSocket constants shared by ws/ and the modules that close
 * WebSocket connections (hub/).
 *
 * ws.c's functions (upgrade, data, close) are declared in net/server.h,
 * with the rest of the connection glue. */
#ifndef WS_H
#define WS_H

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
#endif
