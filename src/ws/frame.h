/* frame.h - fully encoded outgoing WebSocket frames (util/frame.h).
 *
 * Server frames are unmasked, so a frame's bytes (header and payload) are
 * the same for every recipient. The header is produced by wslay's frame
 * layer, not by hand. Ownership as in util/frame.h. */
#ifndef FRAME_H
#define FRAME_H
#include <stddef.h>
#include <stdint.h>

#include "util/frame.h"

/* A final, unmasked frame of opcode (wslay_opcode) around payload. */
struct frame *frame_new(int opcode, const void *payload, size_t len);
static inline struct frame *frame_new_text(const void *p, size_t len)
{
    return frame_new(0x1, p, len);
}
/* A close frame with a status code (a WS_CLOSE_*, ws/ws.h) and a short
 * reason. */
struct frame *frame_new_close(uint16_t code, const char *reason);
/* Frees the calling thread's frame-building context (at thread exit). */
void frame_thread_done(void);
#endif
