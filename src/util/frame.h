/* frame.h - reference-counted, immutable byte strings queued to sockets.
 *
 * A frame's bytes are the same for every recipient: an event is encoded
 * once, into one frame, and each recipient's output queue holds a
 * reference (docs/design.md "fan-out"). ws/frame.h makes WebSocket frames
 * of this type; net/ queues and writes them, whatever they hold.
 *
 * Ownership: frame_new*() returns a frame with one reference, owned by the
 * caller; frame_ref() adds one; frame_unref() drops one and frees the frame
 * at zero. Frames are immutable once made, and shared between loops: the
 * count is atomic (relaxed to take, acquire-release to drop). */
#ifndef UTIL_FRAME_H
#define UTIL_FRAME_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct frame {
    _Atomic unsigned refs;
    uint32_t len;      /* bytes in data */
    char data[];
};

/* A copy of len bytes. */
struct frame *frame_new_raw(const void *bytes, size_t len);

static inline struct frame *frame_ref(struct frame *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}
void frame_unref(struct frame *f); /* NULL is a no-op */
#endif
