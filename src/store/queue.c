/* queue.c - see queue.h.
 *
 * One mutex guards the queue (a singly linked FIFO of jobs not yet
 * started), its length, what is running, the closing and down flags and
 * every client's list of finished jobs. Two condition variables: 'work'
 * wakes the store threads (a job, a job finished, or closing; it also cuts
 * a retry's backoff short), 'called' wakes storeq_call callers.
 *
 * Jobs start in FIFO order, only from the head: the head starts when
 * nothing runs, or when it is a STOREQ_READ job and only READ jobs run.
 * So a write never overlaps anything and sees every job before it done,
 * and a read sees every write before it done. A finished job moves to its
 * client's list and the client's uv_async_t is sent while the mutex is still
 * held: the client cannot have seen its last done and closed its handle in
 * between. */
#include "store/queue.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

#include "store/store.h"
#include "util/log.h"
#include "util/xalloc.h"

struct storeq_job {
    struct storeq_job *next;
    storeq_run_cb *run;
    storeq_done_cb *done;
    void *ud;
    unsigned flags;
    struct storeq_client *c; /* NULL for storeq_call */
    int rc;
    int finished; /* storeq_call: run has returned */
};

struct storeq {
    uv_mutex_t mu;
    uv_cond_t work, called;
    size_t nthreads, nstarted;
    uv_thread_t *threads;
    struct store **stores; /* one per thread, lent by the caller */
    struct storeq_job *head, *tail;
    size_t len, max_jobs;
    size_t running, running_writes;
    int closing, joined;
    int down; /* a DURABLE job is waiting out STORE_EDOWN */
};

struct worker_arg {
    struct storeq *q;
    struct store *s;
};

#define BACKOFF_FIRST_MS 10
#define BACKOFF_MAX_MS 1000

/* ------------------------------------------------------------------------
 * The store thread
 * ------------------------------------------------------------------------ */

/* Hands a finished job to its client (or its storeq_call caller). Under
 * the mutex. */
static void finish(struct storeq *q, struct storeq_job *j, int rc)
{
    j->rc = rc;
    j->next = NULL;
    if (!j->c) {
        j->finished = 1;
        uv_cond_broadcast(&q->called);
        return;
    }
    struct storeq_client *c = j->c;
    if (c->_tail)
        c->_tail->next = j;
    else
        c->_head = j;
    c->_tail = j;
    uv_async_send(&c->_async);
}

/* While the database is down, a job that need not outlive the outage is
 * answered STORE_EDOWN at once (the caller answers 503) rather than wait
 * behind the DURABLE job that is waiting it out. Under the mutex. */
static void fail_waiting(struct storeq *q)
{
    struct storeq_job **pp = &q->head, *j;
    q->tail = NULL;
    while ((j = *pp)) {
        if (j->flags & STOREQ_DURABLE) {
            q->tail = j;
            pp = &j->next;
            continue;
        }
        *pp = j->next;
        q->len--;
        finish(q, j, STORE_EDOWN);
    }
}

static void set_down(struct storeq *q, int down)
{
    uv_mutex_lock(&q->mu);
    if (down && !q->down)
        log_warn("store queue: database unavailable; keeping %s writes "
                 "until it returns, failing other jobs",
                 "durable");
    if (!down && q->down)
        log_info("store queue: database available again");
    q->down = down;
    if (down)
        fail_waiting(q);
    uv_mutex_unlock(&q->mu);
}

/* Runs a job, again while it is a STOREQ_RETRY job that fails with
 * STORE_EIO (busy), or a STOREQ_DURABLE one that fails with STORE_EDOWN.
 * Called without the mutex. */
static int run_job(struct storeq *q, struct store *s, struct storeq_job *j)
{
    int rc = j->run(s, j->ud);
    int64_t delay = BACKOFF_FIRST_MS;
    int tries = 1, late = 0;

    for (;;) {
        int again = (rc == STORE_EIO && (j->flags & STOREQ_RETRY)) ||
                    (rc == STORE_EDOWN && (j->flags & STOREQ_DURABLE));
        if (!again)
            break;
        if (rc == STORE_EDOWN)
            set_down(q, 1);
        uv_mutex_lock(&q->mu);
        if (q->closing && late++ >= STOREQ_CLOSE_TRIES) {
            uv_mutex_unlock(&q->mu);
            log_error("store queue: gave up a write after %d attempts at "
                      "shutdown (database busy or failing)",
                      tries);
            return rc;
        }
        /* Closing wakes this wait: shutdown does not sit out a backoff.
         * A submit wakes it too, and is then failed if the database is
         * down; the backoff itself runs to its end. */
        uint64_t until = uv_hrtime() + (uint64_t)delay * 1000000;
        while (!q->closing) {
            uint64_t now = uv_hrtime();
            if (now >= until)
                break;
            uv_cond_timedwait(&q->work, &q->mu, until - now);
            if (q->down)
                fail_waiting(q);
        }
        uv_mutex_unlock(&q->mu);
        if (tries == 1)
            log_warn("store queue: database %s; retrying a write",
                     rc == STORE_EDOWN ? "unavailable" : "busy");
        rc = j->run(s, j->ud);
        tries++;
        delay = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
    }
    if (q->down && rc != STORE_EDOWN)
        set_down(q, 0);
    if (tries > 1 && rc == 0)
        log_info("store queue: write done after %d attempts", tries);
    return rc;
}

/* The head may start: nothing runs, or it reads and only reads run. */
static int can_start(const struct storeq *q)
{
    const struct storeq_job *j = q->head;
    if (!j)
        return 0;
    if (q->running == 0)
        return 1;
    return (j->flags & STOREQ_READ) && q->running_writes == 0;
}

static void store_thread(void *arg)
{
    struct worker_arg *wa = arg;
    struct storeq *q = wa->q;
    struct store *s = wa->s;
    free(wa);

    uv_mutex_lock(&q->mu);
    for (;;) {
        while (!can_start(q) && !(q->closing && !q->head))
            uv_cond_wait(&q->work, &q->mu);
        struct storeq_job *j = q->head;
        if (!j)
            break; /* closing, and nothing left */
        q->head = j->next;
        if (!q->head)
            q->tail = NULL;
        int write = !(j->flags & STOREQ_READ);
        q->running++;
        q->running_writes += (size_t)write;
        /* Another thread may start the next read at once. */
        if (q->head)
            uv_cond_signal(&q->work);
        uv_mutex_unlock(&q->mu);

        int rc = run_job(q, s, j);

        uv_mutex_lock(&q->mu);
        q->len--;
        q->running--;
        q->running_writes -= (size_t)write;
        finish(q, j, rc);
        uv_cond_broadcast(&q->work);
    }
    /* Wake the others: they may be waiting for this one to finish. */
    uv_cond_broadcast(&q->work);
    uv_mutex_unlock(&q->mu);
}

/* ------------------------------------------------------------------------
 * Queue
 * ------------------------------------------------------------------------ */

int storeq_new(struct storeq **out, struct store *const *stores, size_t n,
               size_t max_jobs, int busy_ms)
{
    struct storeq *q = xcalloc(1, sizeof *q);
    int rc;

    *out = NULL;
    assert(n >= 1);
    q->nthreads = n;
    q->threads = xcalloc(n, sizeof *q->threads);
    q->stores = xcalloc(n, sizeof *q->stores);
    q->max_jobs = max_jobs;
    for (size_t i = 0; i < n; i++) {
        q->stores[i] = stores[i];
        store_set_busy_timeout(stores[i], busy_ms);
    }
    if ((rc = uv_mutex_init(&q->mu)) != 0)
        goto fail_mu;
    if ((rc = uv_cond_init(&q->work)) != 0)
        goto fail_work;
    if ((rc = uv_cond_init(&q->called)) != 0)
        goto fail_called;
    for (; q->nstarted < n; q->nstarted++) {
        struct worker_arg *wa = xmalloc(sizeof *wa);
        *wa = (struct worker_arg){q, stores[q->nstarted]};
        if ((rc = uv_thread_create(&q->threads[q->nstarted], store_thread,
                                   wa)) != 0) {
            free(wa);
            goto fail_thread;
        }
    }
    *out = q;
    return 0;

fail_thread:
    storeq_close(q); /* joins the threads started */
    uv_cond_destroy(&q->called);
fail_called:
    uv_cond_destroy(&q->work);
fail_work:
    uv_mutex_destroy(&q->mu);
fail_mu:
    free(q->threads);
    free(q->stores);
    free(q);
    return rc;
}

void storeq_close(struct storeq *q)
{
    uv_mutex_lock(&q->mu);
    if (q->joined) {
        uv_mutex_unlock(&q->mu);
        return;
    }
    q->closing = 1;
    uv_cond_broadcast(&q->work);
    uv_mutex_unlock(&q->mu);
    for (size_t i = 0; i < q->nstarted; i++)
        uv_thread_join(&q->threads[i]);
    uv_mutex_lock(&q->mu);
    q->joined = 1;
    uv_mutex_unlock(&q->mu);
}

void storeq_free(struct storeq *q)
{
    if (!q)
        return;
    storeq_close(q);
    uv_cond_destroy(&q->called);
    uv_cond_destroy(&q->work);
    uv_mutex_destroy(&q->mu);
    free(q->threads);
    free(q->stores);
    free(q);
}

size_t storeq_len(struct storeq *q)
{
    uv_mutex_lock(&q->mu);
    size_t n = q->len;
    uv_mutex_unlock(&q->mu);
    return n;
}

/* Appends j under the mutex, unless closing. */
static int enqueue(struct storeq *q, struct storeq_job *j, int capped)
{
    if (q->closing)
        return STOREQ_ECLOSED;
    if (capped && q->len >= q->max_jobs)
        return STOREQ_EFULL;
    if (q->down && !(j->flags & STOREQ_DURABLE)) {
        /* Answered at once, through the client as any result. */
        finish(q, j, STORE_EDOWN);
        return 0;
    }
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->len++;
    uv_cond_signal(&q->work);
    return 0;
}

int storeq_call(struct storeq *q, storeq_run_cb *run, void *ud, unsigned flags)
{
    struct storeq_job j = {.run = run, .ud = ud, .flags = flags};
    uv_mutex_lock(&q->mu);
    int rc = enqueue(q, &j, 0);
    if (rc == 0) {
        while (!j.finished)
            uv_cond_wait(&q->called, &q->mu);
        rc = j.rc;
    }
    uv_mutex_unlock(&q->mu);
    return rc;
}

/* ------------------------------------------------------------------------
 * Clients
 * ------------------------------------------------------------------------ */

/* Runs the done callbacks due. The list is taken under the mutex and
 * walked without it, so that done may submit again. */
static void deliver(struct storeq_client *c)
{
    uv_mutex_lock(&c->_q->mu);
    struct storeq_job *j = c->_head;
    c->_head = c->_tail = NULL;
    uv_mutex_unlock(&c->_q->mu);
    while (j) {
        struct storeq_job *next = j->next;
        c->_inflight--;
        j->done(j->ud, j->rc);
        free(j);
        j = next;
    }
}

static void on_async(uv_async_t *a)
{
    deliver(container_of(a, struct storeq_client, _async));
}

int storeq_client_init(struct storeq *q, struct storeq_client *c,
                       uv_loop_t *loop)
{
    c->_q = q;
    c->_head = c->_tail = NULL;
    c->_inflight = 0;
    return uv_async_init(loop, &c->_async, on_async);
}

void storeq_client_close(struct storeq_client *c, uv_close_cb cb)
{
    deliver(c);
    /* queue.h: close the queue first. A job still out would have no loop
     * to come back to, and its uv_async_send no handle. */
    assert(c->_inflight == 0);
    uv_close((uv_handle_t *)&c->_async, cb);
}

int storeq_submit(struct storeq_client *c, storeq_run_cb *run,
                  storeq_done_cb *done, void *ud, unsigned flags)
{
    struct storeq_job *j = xcalloc(1, sizeof *j);
    j->run = run;
    j->done = done;
    j->ud = ud;
    j->flags = flags;
    j->c = c;
    uv_mutex_lock(&c->_q->mu);
    int rc = enqueue(c->_q, j, 1);
    uv_mutex_unlock(&c->_q->mu);
    if (rc != 0) {
        free(j);
        return rc;
    }
    c->_inflight++;
    return 0;
}

const char *storeq_strerror(int rc)
{
    switch (rc) {
    case STOREQ_EFULL:
        return "store queue full";
    case STOREQ_ECLOSED:
        return "store queue closed";
    default:
        return store_strerror(rc);
    }
}
