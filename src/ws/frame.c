/* frame.c - see frame.h. */
#include "ws/frame.h"

#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#include "util/xalloc.h"

/* wslay's frame layer writes the frame through a send callback; we point it
 * at the new frame's memory. Our callback always takes every byte, so each
 * wslay_frame_send() completes its frame and leaves the context ready for
 * the next one: one context per thread serves every frame. */
struct capture {
    char *dst;
    size_t n, cap;
};

static ssize_t capture_send(const uint8_t *data, size_t len, int flags,
                            void *ud)
{
    struct capture *c = ud;
    if (len > c->cap - c->n)
        return -1;
    memcpy(c->dst + c->n, data, len);
    c->n += len;
    return (ssize_t)len;
}

static _Thread_local wslay_frame_context_ptr ctx;
static _Thread_local struct capture cap;

void frame_thread_done(void)
{
    wslay_frame_context_free(ctx);
    ctx = NULL;
}

struct frame *frame_new(int opcode, const void *payload, size_t len)
{
    if (!ctx) {
        struct wslay_frame_callbacks cb = {capture_send, NULL, NULL};
        if (wslay_frame_context_init(&ctx, &cb, &cap) != 0)
            abort();
    }
    size_t max = len + 14; /* 2 + 8 length bytes, no mask: at most 10 */
    struct frame *f = xmalloc(sizeof *f + max);
    cap.dst = f->data;
    cap.n = 0;
    cap.cap = max;
    struct wslay_frame_iocb io = {
        .fin = 1, .rsv = 0, .opcode = (uint8_t)opcode,
        .payload_length = len, .mask = 0,
        .data = payload, .data_length = len,
    };
    ssize_t r = wslay_frame_send(ctx, &io);
    if (r < 0 || (size_t)r != len)
        abort(); /* cannot happen: the callback takes everything */
    atomic_init(&f->refs, 1);
    f->len = (uint32_t)cap.n;
    return f;
}

struct frame *frame_new_close(uint16_t code, const char *reason)
{
    char p[125];
    size_t n = reason ? strlen(reason) : 0;
    if (n > sizeof p - 2)
        n = sizeof p - 2;
    p[0] = (char)(code >> 8);
    p[1] = (char)(code & 0xff);
    if (n)
        memcpy(p + 2, reason, n);
    return frame_new(WSLAY_CONNECTION_CLOSE, p, n + 2);
}
