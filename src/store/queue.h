/* queue.h - the store, asynchronous: store threads run every database job.
 *
 * The event loops never call SQLite. They submit a job - a run function
 * that gets the struct store * (store.h) on the store thread, and a done
 * function that then gets run's result back on the submitting loop's
 * thread - and carry on. A database held by another process (a CLI
 * command, `sqlite3` with BEGIN EXCLUSIVE) then delays the jobs, never the
 * loops: pings, presence events and /healthz keep being answered. Nothing
 * in this interface is SQLite's, so another store (PostgreSQL) can sit
 * behind it unchanged: jobs only see the opaque struct store.
 *
 * Threads. One store thread per struct store given to storeq_new (a
 * connection each; SQLite gets one, PostgreSQL a pool of db_pool).
 *
 * Order. Jobs start in the order they were submitted (across all clients:
 * the order of the storeq_submit calls). A job runs alone, after every job
 * before it has finished, unless it is flagged STOREQ_READ: consecutive
 * READ jobs run side by side on the pool's threads, and the next write
 * waits for them. So every job sees the effects of every write submitted
 * before it, as with one thread. A client's done callbacks run in the
 * order its jobs finish (its submits' order, but for READ jobs that
 * overtake one another).
 *
 * Down. A PostgreSQL that is down or restarting makes jobs fail with
 * STORE_EDOWN (the backend reconnects with backoff, store_pg.c). A job
 * flagged STOREQ_DURABLE (a write nobody waits on that must not be lost:
 * presence flushes, provisioned users, logouts) is then run again with
 * the backoff below until the database returns, the jobs behind it wait,
 * and while it waits every other job, queued or submitted, is answered
 * STORE_EDOWN at once without running (its caller answers 503, nothing
 * hangs); DURABLE ones queue behind it, in order.
 *
 * Busy. The store thread's connection gets a busy timeout (busy_ms): a
 * held lock first delays a job inside SQLite. A job submitted with
 * STOREQ_RETRY whose run still returns STORE_EIO is run again, with a
 * backoff (10 ms doubling to 1 s) between attempts, until it returns
 * something else: a write that must not be lost (a manual status, a new
 * session) waits out the lock, and the jobs behind it wait for it, in
 * order. Without STOREQ_RETRY (reads, writes the caller redoes anyway),
 * run's result goes to done as it is. A run that may be retried must
 * leave nothing half done when it fails (roll back its transaction).
 *
 * Bounded. At most max_jobs are queued or running; past that,
 * storeq_submit refuses with STOREQ_EFULL and the caller answers 503
 * (a held lock with a stream of writes behind it does not grow memory).
 *
 * Threads and order of shutdown:
 *   storeq_new, storeq_close, storeq_free: the owner's thread (main).
 *   storeq_client_init, storeq_submit, storeq_client_close: the client's
 *     loop thread (the one running the loop passed to init).
 *   storeq_call: any thread but the store thread (start-up, before the
 *     loops run; it blocks the caller until the job is done).
 *   storeq_len: any thread.
 * To stop: (1) storeq_close(q) runs what is queued and joins the store
 * thread; done callbacks of the last jobs are then delivered by the loops
 * as usual; (2) each loop calls storeq_client_close() on its own thread
 * before its loop ends (this first runs every done still pending for that
 * client), and the loop runs until the close callback; (3) once every
 * client is closed, storeq_free(q); the store is the caller's again from
 * (1) on. A client must not be closed while a job of its own is still
 * queued or running, which (1) guarantees.
 *
 * Ownership. ud is lent to the queue by a successful storeq_submit until
 * done(ud, rc) returns: the queue passes it to run (on the store thread)
 * and then to done (on the loop thread) and never touches it otherwise;
 * run and done never overlap (done starts after run returned). done is
 * called exactly once for every job accepted, also at shutdown. A refused
 * submit (< 0) calls nothing: ud stays the caller's. */
#ifndef STORE_QUEUE_H
#define STORE_QUEUE_H
#include <stddef.h>
#include <uv.h>

struct store;
struct storeq;          /* opaque */

/* Runs on the store thread; returns 0 or a negative code (STORE_E* or
 * the caller's own), handed to done. */
typedef int storeq_run_cb(struct store *s, void *ud);
/* Runs on the client's loop thread. */
typedef void storeq_done_cb(void *ud, int rc);

/* Flags of storeq_submit / storeq_call. */
enum {
    STOREQ_RETRY = 1 << 0,   /* again while STORE_EIO (busy) */
    STOREQ_DURABLE = 1 << 1, /* again while STORE_EDOWN (see Down) */
    STOREQ_READ = 1 << 2,    /* may run beside other READ jobs */
};

/* Errors of the queue itself, apart from STORE_E* (-1..-5). */
enum {
    STOREQ_EFULL = -100,   /* max_jobs queued: try later (HTTP 503) */
    STOREQ_ECLOSED = -101, /* storeq_close() has begun */
};

/* A loop's end of the queue, embedded by value in the loop's state. The
 * fields are the queue's. */
struct storeq_client {
    uv_async_t _async;
    struct storeq *_q;
    struct storeq_job *_head, *_tail; /* finished; under the queue mutex */
    size_t _inflight;                 /* submitted, done not yet called */
};

/* Starts one store thread for each of the n stores (opened by the caller,
 * n >= 1). Each store belongs to its thread until storeq_close() returns;
 * the array itself is copied. busy_ms is set as each store's busy timeout
 * (store_set_busy_timeout): each attempt of a job waits that long for
 * another process's lock. Returns 0 or a negative UV_E* code. */
int storeq_new(struct storeq **out, struct store *const *stores, size_t n,
               size_t max_jobs, int busy_ms);

/* Runs every job queued, then joins the store threads. A STOREQ_RETRY job
 * that still fails is tried STOREQ_CLOSE_TRIES more times once closing
 * has begun, then given up (logged; done gets STORE_EIO). Later submits
 * get STOREQ_ECLOSED. A second call does nothing. */
#define STOREQ_CLOSE_TRIES 3
void storeq_close(struct storeq *q);
/* After storeq_close() and every client closed. NULL is a no-op. */
void storeq_free(struct storeq *q);

/* Jobs queued or running now. */
size_t storeq_len(struct storeq *q);

/* Binds c to loop (a uv_async_t on it; the loop stays alive until the
 * client is closed). Returns 0 or a negative UV_E* code. */
int storeq_client_init(struct storeq *q, struct storeq_client *c,
                       uv_loop_t *loop);
/* Runs the done callbacks already due, then closes the client's handle;
 * cb (may be NULL) is called from the loop once it is closed, after which
 * c may be freed. */
void storeq_client_close(struct storeq_client *c, uv_close_cb cb);

/* Queues run(store, ud) on the store thread, then done(ud, rc) on c's
 * loop. run and done must not be NULL. flags: 0 or STOREQ_RETRY. Returns
 * 0, or STOREQ_EFULL / STOREQ_ECLOSED (nothing queued, nothing called). */
int storeq_submit(struct storeq_client *c, storeq_run_cb *run,
                  storeq_done_cb *done, void *ud, unsigned flags);

/* Runs run(store, ud) on the store thread, after the jobs already queued,
 * and returns its result, or STOREQ_ECLOSED. Not subject to max_jobs. */
int storeq_call(struct storeq *q, storeq_run_cb *run, void *ud,
                unsigned flags);

const char *storeq_strerror(int rc);
#endif
