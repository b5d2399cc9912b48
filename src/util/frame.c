/* frame.c - see frame.h. */
#include "util/frame.h"

#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

struct frame *frame_new_raw(const void *bytes, size_t len)
{
    struct frame *f = xmalloc(sizeof *f + len);
    memcpy(f->data, bytes, len);
    atomic_init(&f->refs, 1);
    f->len = (uint32_t)len;
    return f;
}

void frame_unref(struct frame *f)
{
    if (f && atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) == 1)
        free(f);
}
