/* frame.h - reference-counted, fully encoded outgoing WebSocket frames.
 *
 * Server frames are unmasked, so a frame's bytes (header and payload) are
 * the same for every recipient: an event is encoded once, into one frame,
 * and each recipient's queue holds a reference (docs/design.md "fan-out").
 * The header is produced by wslay's frame layer, not by hand.
 *
 * Ownership: frame_new*() returns a frame with one reference, owned by the
 * caller; frame_ref() adds one; frame_unref() drops one and frees the frame
 * at zero. Frames are immutable once made, and shared between loops: the
 * count is atomic (relaxed to take, acquire-release to drop). */
#ifndef FRAME_H
#define FRAME_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct frame {
    _Atomic unsigned refs;
    uint32_t len;      /* bytes in data: header + payload */
    char data[];
};

/* A final, unmasked frame of opcode (wslay_opcode) around payload. */
struct frame *frame_new(int opcode, const void *payload, size_t len);
static inline struct frame *frame_new_text(const void *p, size_t len)
{
    return frame_new(0x1, p, len);
}
/* Raw bytes, already framed (wslay's own control frames go through here). */
struct frame *frame_new_raw(const void *bytes, size_t len);
/* A close frame with a status code (a WS_CLOSE_*, ws/ws.h) and a short
 * reason. */
struct frame *frame_new_close(uint16_t code, const char *reason);

static inline struct frame *frame_ref(struct frame *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}
void frame_unref(struct frame *f); /* NULL is a no-op */
/* Frees the calling thread's frame-building context (at thread exit). */
void frame_thread_done(void);
#endif
