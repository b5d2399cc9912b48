/* loop.c - one event loop: its listener, its clock, its flusher and its
 * wake-up handle.
 *
 * With several loops each has its own listening socket bound to the same
 * address (SO_REUSEPORT), and the kernel spreads new connections over
 * them. The real-time clock is read once per event (loop_now) the way
 * Redis caches mstime. Out of descriptors, a listener is closed for a
 * moment rather than spun on (on_connection()). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "net/net_int.h"
#include "util/log.h"
#include "util/xalloc.h"

#define REAP_MS 100
#define ACCEPT_PAUSE_MS 250 /* out of descriptors: listener closed this long */

static _Thread_local struct loop *tl_loop;

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t loop_now(struct loop *lp)
{
    lp->now = wall_ms();
    return lp->now;
}

int64_t loop_time(const struct loop *lp) { return lp->now; }
struct loop *loop_current(void) { return tl_loop; }
uv_loop_t *loop_uv(struct loop *lp) { return &lp->uv; }
unsigned loop_id(const struct loop *lp) { return lp->o.id; }
void *loop_data(const struct loop *lp) { return lp->o.data; }
void loop_set_max_out(struct loop *lp, size_t n) { lp->o.max_out = n; }

/* Logs a libuv call that failed and returns its result, so that each
 * failure is said once, where it happened. */
static int checked(int r, const char *what)
{
    if (r < 0)
        log_error("%s: %s", what, uv_strerror(r));
    return r;
}

void loop_wake(struct loop *lp)
{
    checked(uv_async_send(&lp->wake), "waking a loop");
}

static void on_wake(uv_async_t *a)
{
    struct loop *lp = a->data;
    loop_now(lp);
    lp->o.on_wake(lp);
}

static void on_reap(uv_timer_t *t)
{
    struct loop *lp = t->data;
    loop_now(lp);
    conn_reap(lp);
}

static void on_prepare(uv_prepare_t *p) { conn_flush_pending(p->data); }

static int open_listener(struct loop *lp);
static void on_accept_resume(uv_timer_t *t);

/* The listener is closed (paused, or a reopening failed): try again after
 * a pause, unless the loop is stopping. */
static void resume_later(struct loop *lp)
{
    if (!lp->stopping)
        checked(uv_timer_start(&lp->accept_timer, on_accept_resume,
                               ACCEPT_PAUSE_MS, 0),
                "listener closed for good: cannot start its timer");
}

static void on_listener_paused(uv_handle_t *h) { resume_later(h->data); }

/* Stops accepting for a moment: closing the listener drops the peers
 * waiting in it, and it is reopened after a pause. */
static void pause_accepting(struct loop *lp)
{
    if (lp->accept_paused || lp->stopping)
        return;
    lp->accept_paused = 1;
    lp->listening = 0;
    uv_close((uv_handle_t *)&lp->listener, on_listener_paused);
}

static void on_accept_resume(uv_timer_t *t)
{
    struct loop *lp = t->data;
    if (lp->stopping)
        return;
    int r = open_listener(lp);
    if (r != 0) {
        /* Still out of descriptors, most likely. */
        log_error("cannot reopen the listener: %s", uv_strerror(r));
        if (lp->listening) {
            lp->listening = 0;
            uv_close((uv_handle_t *)&lp->listener, on_listener_paused);
        } else {
            resume_later(lp); /* no handle to close */
        }
        return;
    }
    lp->accept_paused = 0;
    log_info("accepting new connections again");
}

static void on_connection(uv_stream_t *l, int status)
{
    struct loop *lp = l->data;
    loop_now(lp);
    if (status < 0) {
        /* Say so once a second, not once per refused peer. */
        if (lp->now - lp->last_accept_log >= 1000) {
            lp->last_accept_log = lp->now;
            log_warn("accept: %s (new connections refused for now)",
                     uv_strerror(status));
        }
        /* Out of descriptors. libuv then drops the waiting peers with a
         * descriptor it keeps in reserve per loop; but with several loops
         * another thread can take the reserve's slot, and libuv then
         * calls us again at once, forever, and the loop never gets back
         * to its connections (pings, pongs, SIGTERM). Closing the
         * listener ends that; it is reopened after a pause. Live
         * connections go on throughout. */
        if (status == UV_EMFILE || status == UV_ENFILE)
            pause_accepting(lp);
        return;
    }
    /* No handle could be made for the peer (logged): libuv keeps it in
     * the listener and accepts no other until it is taken. Closing the
     * listener drops it. */
    if (conn_accept(lp) != 0)
        pause_accepting(lp);
}

/* Binds the listener's socket. */
static int bind_listener(struct loop *lp)
{
    const struct sockaddr *sa = (const struct sockaddr *)&lp->ss;
    if (!lp->reuseport)
        return uv_tcp_bind(&lp->listener, sa, 0);
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
    if (fd < 0)
        return uv_translate_sys_error(errno);
    int one = 1;
    socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        bind(fd, sa, len) != 0) {
        int e = errno;
        close(fd);
        return uv_translate_sys_error(e);
    }
    int r = uv_tcp_open(&lp->listener, fd);
    if (r != 0)
        close(fd);
    return r;
}

/* Makes the listener and listens on lp->ss: 0, or a UV_E* code; then
 * lp->listening says whether a handle was made (the caller closes it). */
static int open_listener(struct loop *lp)
{
    int r = uv_tcp_init(&lp->uv, &lp->listener);
    if (r != 0)
        return r;
    lp->listener.data = lp;
    lp->listening = 1;
    r = bind_listener(lp);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&lp->listener, 4096, on_connection);
    return r;
}

int loop_listen(struct loop *lp, const struct sockaddr *sa, int reuseport)
{
    memcpy(&lp->ss, sa, sa->sa_family == AF_INET6
                            ? sizeof(struct sockaddr_in6)
                            : sizeof(struct sockaddr_in));
    lp->reuseport = reuseport;
    return open_listener(lp);
}

int loop_bound(struct loop *lp, struct sockaddr_storage *ss)
{
    /* Port 0: from now on the listener reopens on the port it got. */
    int len = sizeof lp->ss;
    int r = uv_tcp_getsockname(&lp->listener, (struct sockaddr *)&lp->ss,
                               &len);
    *ss = lp->ss;
    return r;
}

void loop_stop_accepting(struct loop *lp)
{
    if (lp->stopping)
        return;
    lp->stopping = 1;
    if (lp->listening) {
        lp->listening = 0;
        uv_close((uv_handle_t *)&lp->listener, NULL);
    }
    uv_timer_stop(&lp->accept_timer);
}

/* uv_walk callback: closes every handle; connections through
 * conn_close(). */
static void close_one(uv_handle_t *h, void *arg)
{
    struct loop *lp = arg;
    if (uv_is_closing(h))
        return;
    if (h->type == UV_TCP && h != (uv_handle_t *)&lp->listener) {
        conn_close(container_of((uv_tcp_t *)h, struct conn, _tcp));
        return;
    }
    uv_close(h, NULL);
}

void loop_close(struct loop *lp)
{
    loop_stop_accepting(lp);
    uv_walk(&lp->uv, close_one, lp);
}

int loop_new(struct loop **out, const struct loop_opts *o)
{
    struct loop *lp = xcalloc(1, sizeof *lp);
    lp->o = *o;
    list_init(&lp->pending);
    list_init(&lp->lingering);
    list_init(&lp->waiting);
    int r = checked(uv_loop_init(&lp->uv), "cannot make an event loop");
    if (r != 0) {
        free(lp); /* a loop that failed to initialise is not closed */
        return r;
    }
    /* From here on loop_free() closes whichever handles were made. */
    r = checked(uv_timer_init(&lp->uv, &lp->reap), "cannot make a timer");
    lp->reap.data = lp;
    if (r == 0)
        r = checked(uv_timer_init(&lp->uv, &lp->accept_timer),
                    "cannot make a timer");
    lp->accept_timer.data = lp;
    if (r == 0)
        r = checked(uv_prepare_init(&lp->uv, &lp->flusher),
                    "cannot make a loop's flusher");
    lp->flusher.data = lp;
    if (r == 0)
        r = checked(uv_async_init(&lp->uv, &lp->wake, on_wake),
                    "cannot make a loop's wake-up handle");
    lp->wake.data = lp;
    if (r == 0)
        r = checked(uv_timer_start(&lp->reap, on_reap, REAP_MS, REAP_MS),
                    "cannot start a loop's timer");
    if (r == 0)
        r = checked(uv_prepare_start(&lp->flusher, on_prepare),
                    "cannot start a loop's flusher");
    if (r != 0) {
        loop_free(lp);
        return r;
    }
    lp->now = wall_ms();
    *out = lp;
    return 0;
}

void loop_run(struct loop *lp)
{
    tl_loop = lp;
    loop_now(lp);
    uv_run(&lp->uv, UV_RUN_DEFAULT);
    tl_loop = NULL;
}

void loop_free(struct loop *lp)
{
    if (!lp)
        return;
    if (uv_loop_close(&lp->uv) != 0) {
        uv_walk(&lp->uv, close_one, lp);
        uv_run(&lp->uv, UV_RUN_DEFAULT);
        checked(uv_loop_close(&lp->uv), "closing a loop");
    }
    free(lp);
}
