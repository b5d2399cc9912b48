/* uvfail.c - makes one libuv call of presenced fail, for
 * test_uv_errors.py. Built as a shared object and loaded with LD_PRELOAD:
 * presenced calls libuv through its PLT, so these definitions come first
 * and hand every other call on to the real libuv.
 *
 * Set in the environment:
 *   UVFAIL_CALL  the function to fail (one of those defined below)
 *   UVFAIL_NTH   which of its calls fails, from 1 (default 1); only that
 *                one, the others go through
 *   UVFAIL_FILE  if set, calls made while this file does not exist are
 *                not counted (so a test can fail a call at a moment of
 *                its choosing, after start-up)
 * A failing call returns an error as libuv would, without calling libuv:
 * the handle is left uninitialised, as libuv leaves it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

static atomic_long calls;

static int fail(const char *name)
{
    const char *call = getenv("UVFAIL_CALL");
    if (!call || strcmp(call, name) != 0)
        return 0;
    const char *file = getenv("UVFAIL_FILE");
    if (file && access(file, F_OK) != 0)
        return 0;
    const char *nth = getenv("UVFAIL_NTH");
    long want = nth ? atol(nth) : 1;
    return atomic_fetch_add(&calls, 1) + 1 == want;
}

#define REAL(name) ((__typeof__(&name))dlsym(RTLD_NEXT, #name))

int uv_loop_init(uv_loop_t *l)
{
    return fail(__func__) ? UV_EMFILE : REAL(uv_loop_init)(l);
}

int uv_async_init(uv_loop_t *l, uv_async_t *a, uv_async_cb cb)
{
    return fail(__func__) ? UV_EMFILE : REAL(uv_async_init)(l, a, cb);
}

int uv_signal_init(uv_loop_t *l, uv_signal_t *s)
{
    return fail(__func__) ? UV_EMFILE : REAL(uv_signal_init)(l, s);
}

int uv_timer_start(uv_timer_t *t, uv_timer_cb cb, uint64_t timeout,
                   uint64_t repeat)
{
    return fail(__func__) ? UV_EINVAL
                          : REAL(uv_timer_start)(t, cb, timeout, repeat);
}

int uv_prepare_start(uv_prepare_t *p, uv_prepare_cb cb)
{
    return fail(__func__) ? UV_EINVAL : REAL(uv_prepare_start)(p, cb);
}

int uv_thread_create(uv_thread_t *t, uv_thread_cb entry, void *arg)
{
    return fail(__func__) ? UV_EAGAIN : REAL(uv_thread_create)(t, entry, arg);
}

int uv_tcp_init(uv_loop_t *l, uv_tcp_t *h)
{
    return fail(__func__) ? UV_EMFILE : REAL(uv_tcp_init)(l, h);
}

int uv_tcp_getsockname(const uv_tcp_t *h, struct sockaddr *name, int *len)
{
    return fail(__func__) ? UV_EBADF : REAL(uv_tcp_getsockname)(h, name, len);
}

int uv_read_start(uv_stream_t *s, uv_alloc_cb alloc_cb, uv_read_cb read_cb)
{
    return fail(__func__) ? UV_ENOTCONN
                          : REAL(uv_read_start)(s, alloc_cb, read_cb);
}
