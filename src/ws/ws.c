/* ws.c - WebSocket over a connection: the upgrade, and wslay's event API.
 *
 * wslay parses client frames (masking, fragments, control frames, sizes)
 * and answers pings and closes itself. What it wants to send goes through
 * send_cb into the connection's frame queue, where broadcast frames made
 * once for many recipients (hub.c) join it. Because send_cb always takes
 * every byte, wslay never leaves a frame half-written in the queue, so its
 * frames and ours never interleave.
 *
 * Memory: a wslay context is about 8.5 KiB (two 4 KiB frame buffers). An
 * idle connection holds none: a context is taken from a small per-thread
 * pool when bytes arrive and given back as soon as the input ends exactly
 * on a message boundary with nothing left to send (idle()). Such a
 * context is in the state wslay starts in (next byte is a frame header,
 * no message, empty queues), so it may serve another connection; its
 * user data is a slot that says which. */
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <wslay/wslay.h>

#include "http/http.h"
#include "net/net.h"
#include "util/log.h"
#include "util/utf8.h"
#include "util/xalloc.h"
#include "ws/frame.h"
#include "ws/ws.h"

/* A wslay context and the connection it serves now. */
struct ws_ctx {
    wslay_event_context_ptr ev;
    struct ws_conn *w;
    uint64_t fed, framed;       /* bytes given to wslay; in its frames */
    int in_msg;                 /* a fragmented message is open */
    /* The payload of a close frame being read, checked whole when the
     * frame ends (see close_check()). Control frames carry 125 bytes at
     * most: wslay refuses longer ones. */
    int in_close;
    uint8_t close_len;
    uint8_t close_buf[125];
    /* The bytes on_data() is feeding to wslay: lent by its caller, set
     * only for the duration of that call. */
    const uint8_t *rx;
    size_t rx_len;
};

/* Idle contexts kept for reuse, per thread. A per-thread cache of
 * allocations, not state of any connection's: a context in it serves
 * none (see the file comment). */
#define WS_POOL 64
static _Thread_local struct ws_ctx *pool[WS_POOL];
static _Thread_local unsigned npool;

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       int flags, void *ud)
{
    struct ws_ctx *w = ud;
    if (!w->rx_len) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < w->rx_len ? len : w->rx_len;
    memcpy(buf, w->rx, n);
    w->rx += n;
    w->rx_len -= n;
    w->fed += n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len, int flags, void *ud)
{
    struct conn *c = ((struct ws_ctx *)ud)->w->c;
    if (c->state == CONN_CLOSED) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    conn_send_bytes(c, data, len);
    return (ssize_t)len;
}

static void on_msg(wslay_event_context_ptr ctx,
                   const struct wslay_event_on_msg_recv_arg *arg, void *ud)
{
    struct ws_conn *w = ((struct ws_ctx *)ud)->w;
    if (!conn_is_open(w->c))
        return;
    if (w->_echo) {
        /* /ws/echo: the same frame code, answering each message with
         * itself (conformance suites drive it). */
        if (arg->opcode == WSLAY_TEXT_FRAME ||
            arg->opcode == WSLAY_BINARY_FRAME) {
            struct wslay_event_msg m = {arg->opcode, arg->msg,
                                        arg->msg_length};
            wslay_event_queue_msg(ctx, &m);
        }
        return;
    }
    if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
        return;
    w->_cb->on_msg(w, (const char *)arg->msg, arg->msg_length,
                   arg->opcode == WSLAY_BINARY_FRAME);
}

/* Counts the bytes of every frame wslay accepted, header included (wslay
 * refuses non-minimal lengths, and a client's frames are masked, so the
 * header size follows from the payload length), and whether a fragmented
 * message is open. Input ends on a boundary when all bytes fed were
 * framed so. */
static void on_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *a,
                           void *ud)
{
    struct ws_ctx *w = ud;
    uint64_t len = a->payload_length;
    w->framed += 2 + 4 + (len < 126 ? 0 : len < 65536 ? 2 : 8) + len;
    if (a->opcode == WSLAY_TEXT_FRAME || a->opcode == WSLAY_BINARY_FRAME)
        w->in_msg = !a->fin;
    else if (a->opcode == WSLAY_CONTINUATION_FRAME && a->fin)
        w->in_msg = 0;
    w->in_close = a->opcode == WSLAY_CONNECTION_CLOSE;
    w->close_len = 0;
}

static void on_frame_chunk(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_chunk_arg *a,
                           void *ud)
{
    struct ws_ctx *w = ud;
    if (!w->in_close)
        return;
    size_t room = sizeof w->close_buf - w->close_len;
    size_t n = a->data_length < room ? a->data_length : room;
    memcpy(w->close_buf + w->close_len, a->data, n);
    w->close_len += (uint8_t)n;
}

/* RFC 6455 7.4: the codes a peer may send. 1004-1006 and 1015 are never
 * sent, 1016-2999 are unassigned, 3000-4999 belong to applications. This
 * is the set wslay checks too (it also refuses 1012-1014). */
static int close_code_ok(unsigned code)
{
    return (code >= 1000 && code <= 1011 && code != 1004 && code != 1005 &&
            code != 1006) ||
           (code >= 3000 && code <= 4999);
}

/* Checks a close frame's payload (RFC 6455 5.5.1): empty, or a valid code
 * and a UTF-8 reason. Returns 0, or the close code to answer with and its
 * reason in *why. wslay answers a 1-byte payload with an empty close, and
 * checks the reason's UTF-8 piece by piece as reads bring it, skipping the
 * first two bytes of every piece: invalid bytes at the start of a later
 * piece went through, so the whole payload is checked here. (The same
 * skip can make wslay answer 1007 to a valid reason cut inside a
 * multi-byte character; nothing here can undo that, and such a client is
 * closing anyway.) */
static unsigned close_check(const struct ws_ctx *w, const char **why)
{
    if (w->close_len == 0)
        return 0;
    if (w->close_len == 1) {
        *why = "close payload of one byte";
        return WS_CLOSE_PROTOCOL;
    }
    if (!close_code_ok((unsigned)w->close_buf[0] << 8 | w->close_buf[1])) {
        *why = "invalid close code";
        return WS_CLOSE_PROTOCOL;
    }
    if (!utf8_valid(w->close_buf + 2, w->close_len - 2u)) {
        *why = "close reason is not UTF-8";
        return WS_CLOSE_BAD_DATA;
    }
    return 0;
}

/* A bad close is answered with ours, queued before wslay's own echo of
 * it, which wslay then finds it may no longer queue. */
static void on_frame_end(wslay_event_context_ptr ctx, void *ud)
{
    struct ws_ctx *w = ud;
    if (!w->in_close)
        return;
    w->in_close = 0;
    const char *why = NULL;
    unsigned code = close_check(w, &why);
    if (code)
        wslay_event_queue_close(ctx, (uint16_t)code, (const uint8_t *)why,
                                strlen(why));
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .on_msg_recv_callback = on_msg,
    .on_frame_recv_start_callback = on_frame_start,
    .on_frame_recv_chunk_callback = on_frame_chunk,
    .on_frame_recv_end_callback = on_frame_end,
};

/* The connection's wslay context, from the pool or new; NULL if out of
 * memory. */
static wslay_event_context_ptr ws_ctx(struct ws_conn *wc)
{
    if (wc->_ctx)
        return wc->_ctx->ev;
    struct ws_ctx *w;
    if (npool) {
        w = pool[--npool];
    } else {
        w = xcalloc(1, sizeof *w);
        if (wslay_event_context_server_init(&w->ev, &callbacks, w) != 0) {
            free(w);
            return NULL;
        }
    }
    wslay_event_config_set_max_recv_msg_length(w->ev,
                                               (uint64_t)wc->_max_msg);
    w->w = wc;
    w->fed = w->framed = 0;
    w->in_msg = 0;
    w->in_close = 0;
    w->close_len = 0;
    wc->_ctx = w;
    return w->ev;
}

static void ws_ctx_drop(struct ws_ctx *w, int reusable)
{
    if (reusable && npool < WS_POOL) {
        w->w = NULL;
        pool[npool++] = w;
        return;
    }
    wslay_event_context_free(w->ev);
    free(w);
}

/* Gives the context back if the connection is between messages: every
 * byte read belongs to a complete frame, no fragmented message is open,
 * nothing waits to be sent, and no close has begun. */
static void idle(struct ws_conn *wc)
{
    struct ws_ctx *w = wc->_ctx;
    if (!w || !conn_is_open(wc->c) || w->fed != w->framed || w->in_msg ||
        !wslay_event_want_read(w->ev) ||
        wslay_event_want_write(w->ev) ||
        wslay_event_get_close_received(w->ev) ||
        wslay_event_get_close_sent(w->ev))
        return;
    wc->_ctx = NULL;
    ws_ctx_drop(w, 1);
}

/* Pushes what wslay has queued into our frame queue, and closes once the
 * close handshake is over (wslay wants neither to read nor to write). */
static void pump(struct ws_conn *w)
{
    struct conn *c = w->c;
    if (c->state == CONN_CLOSED)
        return;
    wslay_event_context_ptr ev = w->_ctx->ev;
    if (wslay_event_send(ev) != 0) {
        conn_close(c);
        return;
    }
    if (!wslay_event_want_read(ev) && !wslay_event_want_write(ev)) {
        conn_close_after_write(c);
        return;
    }
    idle(w);
}

static void on_data(struct conn *c, const char *data, size_t len)
{
    struct ws_conn *wc = c->data;
    wc->last_rx_ms = loop_time(c->lp);
    wslay_event_context_ptr ev = ws_ctx(wc);
    if (!ev) {
        conn_close(c);
        return;
    }
    /* The context stays wc's until after the call: only pump() gives it
     * back to the pool, and the connection is freed later, in its close
     * callback. */
    struct ws_ctx *w = wc->_ctx;
    w->rx = (const uint8_t *)data;
    w->rx_len = len;
    int rc = wslay_event_recv(ev);
    w->rx = NULL;
    w->rx_len = 0;
    if (c->state == CONN_CLOSED)
        return;
    if (rc != 0) {
        /* A frame wslay refuses outright (fragmented or oversized control
         * frame, ...): the client still deserves to hear why, RFC 6455
         * 7.4.1 "protocol error", unless a close already went out. */
        if (!wslay_event_get_close_sent(ev)) {
            struct frame *f = frame_new_close(WS_CLOSE_PROTOCOL,
                                              "protocol error");
            conn_send(c, f);
            frame_unref(f);
        }
        conn_close_after_write(c);
        return;
    }
    pump(wc);
}

static int on_eof(struct conn *c) { return 0; }

static void on_closing(struct conn *c)
{
    struct ws_conn *w = c->data;
    if (w->_cb->on_closing)
        w->_cb->on_closing(w);
}

static void on_free(struct conn *c)
{
    struct ws_conn *w = c->data;
    if (w->_ctx)
        ws_ctx_drop(w->_ctx, 0); /* state unknown: not reused */
    w->_ctx = NULL;
    if (w->_cb->on_free)
        w->_cb->on_free(w);
}

static const struct conn_handler handler = {
    .on_data = on_data,
    .on_eof = on_eof,
    .on_closing = on_closing,
    .on_free = on_free,
};

void ws_close(struct ws_conn *w, enum ws_close_code code, const char *reason)
{
    struct conn *c = w->c;
    if (!conn_is_open(c))
        return;
    wslay_event_context_ptr ev = ws_ctx(w);
    if (!ev) {
        conn_close(c);
        return;
    }
    wslay_event_queue_close(ev, (uint16_t)code, (const uint8_t *)reason,
                            reason ? strlen(reason) : 0);
    if (wslay_event_send(ev) != 0) {
        conn_close(c);
        return;
    }
    conn_close_after_write(c);
}

void ws_pool_free(void)
{
    while (npool)
        ws_ctx_drop(pool[--npool], 0);
}

static int has_token(const char *list, const char *token)
{
    /* Comma-separated, case-insensitive ("keep-alive, Upgrade"). */
    size_t tl = strlen(token);
    const char *p = list;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == tl && strncasecmp(p, token, tl) == 0)
            return 1;
        p = e;
    }
    return 0;
}

/* Checks the handshake headers (RFC 6455 4.2.1). Returns NULL if fine,
 * else the reason. */
static const char *check_upgrade(const struct http_req *r, int *status)
{
    *status = 400;
    if (r->method != HTTP_GET)
        return "WebSocket upgrade needs GET";
    if (!r->upgrade || strcasecmp(r->upgrade, "websocket") != 0)
        return "missing Upgrade: websocket";
    if (!r->connection || !has_token(r->connection, "upgrade"))
        return "missing Connection: Upgrade";
    if (!r->ws_version || strcmp(r->ws_version, "13") != 0) {
        *status = 426;
        return "unsupported Sec-WebSocket-Version (13 only)";
    }
    unsigned char key[32];
    size_t klen = 0;
    if (!r->ws_key ||
        sodium_base642bin(key, sizeof key, r->ws_key, strlen(r->ws_key),
                          NULL, &klen, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        klen != 16)
        return "bad Sec-WebSocket-Key";
    return NULL;
}

int ws_upgrade_check(struct http_conn *h, const struct http_req *r)
{
    int status;
    const char *why = check_upgrade(r, &status);
    if (!why)
        return 0;
    http_error_ex(h, status,
                  status == 426 ? "Sec-WebSocket-Version: 13\r\n" : "",
                  "bad_upgrade", why);
    return -1;
}

int ws_accept(struct ws_conn *w, struct http_conn *h, const struct http_req *r,
              const struct ws_callbacks *cb, size_t max_msg, int echo)
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    /* libsodium has no SHA-1, which RFC 6455 requires: libcrypto's. */
    unsigned char sha[EVP_MAX_MD_SIZE];
    unsigned shalen = 0;
    char accept[64], in[128];
    int n = snprintf(in, sizeof in, "%s%s", r->ws_key, guid);
    if (n < 0 || (size_t)n >= sizeof in ||
        !EVP_Digest(in, (size_t)n, sha, &shalen, EVP_sha1(), NULL)) {
        http_error(h, 500, "internal", "SHA-1 failed");
        return -1;
    }
    sodium_bin2base64(accept, sizeof accept, sha, shalen,
                      sodium_base64_VARIANT_ORIGINAL);

    struct conn *c = h->c;
    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b,
               "HTTP/1.1 101 Switching Protocols\r\n"
               "Upgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               "Sec-WebSocket-Accept: %s\r\n\r\n",
               accept);
    conn_send_bytes(c, b.data, b.len);
    buf_dispose(&b);

    size_t nrest;
    char *rest = http_hand_over(h, &nrest); /* h is gone */
    w->c = c;
    w->_cb = cb;
    w->_ctx = NULL;
    w->_max_msg = max_msg;
    w->_echo = echo ? 1 : 0;
    w->last_rx_ms = loop_time(c->lp);
    conn_set_handler(c, &handler, w);
    if (cb->on_open)
        cb->on_open(w);
    /* Frames the client sent right behind its request. */
    if (conn_is_open(c) && nrest)
        on_data(c, rest, nrest);
    free(rest);
    return 0;
}
