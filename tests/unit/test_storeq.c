/* test_storeq.c - the asynchronous store (store/queue.c) with a real libuv
 * loop on the test's thread and a real SQLite file: job order, which
 * thread runs what, a write blocked by another connection's BEGIN
 * EXCLUSIVE completing once the lock is released, the queue cap, shutdown
 * with jobs queued, and every test ending with uv_loop_close() == 0. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "store/queue.h"
#include "store/store.h"

/* ------------------------------------------------------------------------
 * Fixture: a temp database file, a loop, a queue and one client
 * ------------------------------------------------------------------------ */

#define NJOBS 200

struct fx {
    char dir[64];
    char path[128];
    struct store *s;        /* ss[0] */
    struct store *ss[4];    /* one per store thread */
    int nstores;
    struct storeq *q;
    uv_loop_t loop;
    struct storeq_client c;
    uv_thread_t main_thread;
    /* What the jobs saw. */
    atomic_int ran;       /* runs (all attempts) */
    int run_order[NJOBS]; /* job index, in run order (store thread) */
    int done_order[NJOBS];
    int done_rc[NJOBS];
    int ndone;
    atomic_int on_loop_thread; /* runs on the loop's thread: must stay 0 */
    int done_off_loop;    /* dones not on the loop thread: must stay 0 */
    uv_sem_t gate;
    atomic_int attempts;  /* of the retried write */
    int closed;
};

struct job {
    struct fx *f;
    int i;
};

static struct job jobs[NJOBS];

/* A queue with nstores store threads, each with a connection of its own
 * to the same file. */
static void fx_open_n(struct fx *f, int nstores, size_t max_jobs,
                      int busy_ms)
{
    char err[STORE_ERRLEN];
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_storeq.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/presenced.db", f->dir);
    f->nstores = nstores;
    for (int i = 0; i < nstores; i++)
        if (store_open(&f->ss[i], f->path, err) != 0)
            fail_msg("store_open: %s", err);
    f->s = f->ss[0];
    f->main_thread = uv_thread_self();
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(
        storeq_new(&f->q, f->ss, (size_t)nstores, max_jobs, busy_ms), 0);
    assert_int_equal(storeq_client_init(f->q, &f->c, &f->loop), 0);
    assert_int_equal(uv_sem_init(&f->gate, 0), 0);
    for (int i = 0; i < NJOBS; i++)
        jobs[i] = (struct job){f, i};
}

static void fx_open(struct fx *f, size_t max_jobs, int busy_ms)
{
    fx_open_n(f, 1, max_jobs, busy_ms);
}

static void on_client_closed(uv_handle_t *h)
{
    struct storeq_client *c = (struct storeq_client *)h;
    struct fx *f = (struct fx *)((char *)c - offsetof(struct fx, c));
    f->closed = 1;
}

/* queue.h order of shutdown: queue, then client on its loop, then free.
 * The loop must end with nothing left open. */
static void fx_close(struct fx *f)
{
    char p[160];
    storeq_close(f->q);
    storeq_client_close(&f->c, on_client_closed);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_true(f->closed);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    storeq_free(f->q);
    for (int i = 0; i < f->nstores; i++)
        store_close(f->ss[i]);
    uv_sem_destroy(&f->gate);
    assert_int_equal(atomic_load(&f->on_loop_thread), 0);
    assert_int_equal(f->done_off_loop, 0);
    unlink(f->path);
    snprintf(p, sizeof p, "%s-wal", f->path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", f->path);
    unlink(p);
    snprintf(p, sizeof p, "%s.lock", f->path);
    unlink(p);
    rmdir(f->dir);
}

/* Runs the loop until n dones have been seen (the client's async handle
 * keeps the loop alive between them). */
static void run_until_done(struct fx *f, int n)
{
    while (f->ndone < n)
        uv_run(&f->loop, UV_RUN_ONCE);
}

static void note_run(struct fx *f, int i)
{
    int k = atomic_fetch_add(&f->ran, 1);
    if (uv_thread_equal(&f->main_thread, &(uv_thread_t){uv_thread_self()}))
        atomic_fetch_add(&f->on_loop_thread, 1);
    if (k < NJOBS)
        f->run_order[k] = i;
}

static void done_note(void *ud, int rc)
{
    struct job *j = ud;
    struct fx *f = j->f;
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&f->main_thread, &self))
        f->done_off_loop++;
    f->done_order[f->ndone] = j->i;
    f->done_rc[j->i] = rc;
    f->ndone++;
}

/* A real write per job: org "o<i>". */
static int run_org_add(struct store *s, void *ud)
{
    struct job *j = ud;
    char id[16];
    note_run(j->f, j->i);
    snprintf(id, sizeof id, "o%d", j->i);
    return store_org_add(s, id, NULL);
}

static int run_gate(struct store *s, void *ud)
{
    struct job *j = ud;
    note_run(j->f, j->i);
    uv_sem_wait(&j->f->gate);
    (void)s;
    return 0;
}

static int run_nothing(struct store *s, void *ud)
{
    struct job *j = ud;
    note_run(j->f, j->i);
    (void)s;
    return 7; /* any value: handed to done as it is */
}

struct call_ud {
    const char *org;
    int exists;
};

static int run_org_exists(struct store *s, void *ud)
{
    struct call_ud *c = ud;
    c->exists = store_org_exists(s, c->org);
    return c->exists < 0 ? c->exists : 0;
}

/* ------------------------------------------------------------------------
 * Order and threads
 * ------------------------------------------------------------------------ */

/* Jobs run in submit order on the store thread (not the loop's); each
 * done comes back on the loop thread, in the same order; a done may
 * submit again. */
static void done_resubmit(void *ud, int rc)
{
    struct job *j = ud;
    done_note(ud, rc);
    if (j->i == 0)
        assert_int_equal(storeq_submit(&j->f->c, run_nothing, done_note,
                                       &jobs[NJOBS - 1], 0),
                         0);
}

static void test_order_and_threads(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    fx_open(f, 1000, 1000);
    assert_int_equal(storeq_submit(&f->c, run_org_add, done_resubmit,
                                   &jobs[0], 0),
                     0);
    for (int i = 1; i < NJOBS - 1; i++)
        assert_int_equal(storeq_submit(&f->c, run_org_add, done_note,
                                       &jobs[i], 0),
                         0);
    run_until_done(f, NJOBS);
    for (int i = 0; i < NJOBS; i++) {
        assert_int_equal(f->run_order[i], i);
        assert_int_equal(f->done_order[i], i);
        assert_int_equal(f->done_rc[i], i == NJOBS - 1 ? 7 : 0);
    }
    assert_int_equal(storeq_len(f->q), 0);
    /* The writes are in the file. */
    struct call_ud c = {"o198", -9};
    assert_int_equal(storeq_call(f->q, run_org_exists, &c, 0), 0);
    assert_int_equal(c.exists, 1);
    fx_close(f);
    free(f);
    (void)state;
}

/* ------------------------------------------------------------------------
 * storeq_call
 * ------------------------------------------------------------------------ */

static int run_add_org_x(struct store *s, void *ud)
{
    (void)ud;
    return store_org_add(s, "x", NULL);
}

/* Start-up use, before the loop runs: synchronous, after the jobs already
 * queued; refused once the queue is closing. */
static void test_call(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct call_ud c = {"o0", -9};
    fx_open(f, 10, 1000);
    assert_int_equal(storeq_submit(&f->c, run_org_add, done_note, &jobs[0],
                                   0),
                     0);
    /* Queued behind the submit above: it sees its org. */
    assert_int_equal(storeq_call(f->q, run_org_exists, &c, 0), 0);
    assert_int_equal(c.exists, 1);
    assert_int_equal(storeq_call(f->q, run_add_org_x, NULL, 0), 0);
    assert_int_equal(storeq_call(f->q, run_add_org_x, NULL, 0),
                     STORE_EEXIST);
    run_until_done(f, 1);
    storeq_close(f->q);
    assert_int_equal(storeq_call(f->q, run_add_org_x, NULL, 0),
                     STOREQ_ECLOSED);
    assert_string_equal(storeq_strerror(STOREQ_ECLOSED),
                        "store queue closed");
    assert_string_equal(storeq_strerror(STORE_EEXIST), "already exists");
    fx_close(f);
    free(f);
    storeq_free(NULL);
    (void)state;
}

/* ------------------------------------------------------------------------
 * Another process's lock
 * ------------------------------------------------------------------------ */

static int run_set_manual(struct store *s, void *ud)
{
    struct job *j = ud;
    if (j->i == 1)
        atomic_fetch_add(&j->f->attempts, 1);
    note_run(j->f, j->i);
    return store_user_set_presence(s, "o", "ann", 3, 3, 1234);
}

static int run_read_manual(struct store *s, void *ud)
{
    struct job *j = ud;
    struct store_user u;
    note_run(j->f, j->i);
    int rc = store_user_get(s, "o", "ann", &u);
    return rc ? rc : 10 + u.manual; /* none: 9 */
}

static int seed_ann(struct store *s, void *ud)
{
    int rc = store_org_add(s, "o", NULL);
    (void)ud;
    return rc ? rc : store_user_add(s, "o", "ann", NULL, "Ann", NULL, NULL);
}

struct holder {
    struct fx *f;
    sqlite3 *db;
    uv_timer_t timer;
    uint64_t started, released;
};

/* Holds the lock at least 1 s, and until the retried write has been
 * tried twice (so it did meet the lock), then commits. */
static void on_poll(uv_timer_t *t)
{
    struct holder *h = t->data;
    if (uv_now(t->loop) - h->started < 1000 ||
        atomic_load(&h->f->attempts) < 2 || h->f->ndone < 1)
        return;
    assert_int_equal(sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL),
                     SQLITE_OK);
    h->released = uv_now(t->loop);
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
}

struct stamp {
    struct fx *f;
    uint64_t at[3];
};
static struct stamp stamps;

static void done_stamp(void *ud, int rc)
{
    struct job *j = ud;
    stamps.at[j->i] = uv_now(&j->f->loop);
    done_note(ud, rc);
}

/* A second connection holds BEGIN EXCLUSIVE on the same file. A write
 * without STOREQ_RETRY fails (STORE_EIO after the busy timeout, handed to
 * done); a STOREQ_RETRY write is retried and completes once the lock is
 * released; a read queued behind it then sees that write. The loop keeps
 * running all along. */
static void test_lock_held_by_another_connection(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct holder h = {0};
    fx_open(f, 100, 50);
    stamps.f = f;
    assert_int_equal(storeq_call(f->q, seed_ann, NULL, 0), 0);

    assert_int_equal(sqlite3_open_v2(f->path, &h.db, SQLITE_OPEN_READWRITE,
                                     NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(h.db, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
                     SQLITE_OK);
    h.f = f;
    h.timer.data = &h;
    assert_int_equal(uv_timer_init(&f->loop, &h.timer), 0);
    uv_update_time(&f->loop);
    h.started = uv_now(&f->loop);
    assert_int_equal(uv_timer_start(&h.timer, on_poll, 10, 10), 0);

    assert_int_equal(storeq_submit(&f->c, run_set_manual, done_stamp,
                                   &jobs[0], 0),
                     0);
    assert_int_equal(storeq_submit(&f->c, run_set_manual, done_stamp,
                                   &jobs[1], STOREQ_RETRY),
                     0);
    assert_int_equal(storeq_submit(&f->c, run_read_manual, done_stamp,
                                   &jobs[2], 0),
                     0);
    run_until_done(f, 3);

    assert_int_equal(f->done_rc[0], STORE_EIO);
    assert_true(stamps.at[0] <= h.released);
    assert_int_equal(f->done_rc[1], 0);
    assert_true(atomic_load(&f->attempts) >= 2);
    assert_true(stamps.at[1] >= h.released);
    assert_int_equal(f->done_rc[2], 13); /* the manual status written */
    assert_int_equal(f->done_order[0], 0);
    assert_int_equal(f->done_order[1], 1);
    assert_int_equal(f->done_order[2], 2);
    sqlite3_close(h.db);
    fx_close(f);
    free(f);
    (void)state;
}

/* At shutdown a retried write that still meets the lock is given up after
 * STOREQ_CLOSE_TRIES more attempts (done gets STORE_EIO, it is logged),
 * and the jobs behind it still run. */
static void test_close_gives_up_a_blocked_write(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    sqlite3 *db;
    fx_open(f, 100, 20);
    assert_int_equal(storeq_call(f->q, seed_ann, NULL, 0), 0);
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE,
                                     NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(storeq_submit(&f->c, run_set_manual, done_note,
                                   &jobs[1], STOREQ_RETRY),
                     0);
    assert_int_equal(storeq_submit(&f->c, run_read_manual, done_note,
                                   &jobs[2], 0),
                     0);
    /* Let it meet the lock at least once before closing. */
    while (atomic_load(&f->attempts) < 1)
        uv_sleep(5);
    storeq_close(f->q);
    assert_int_equal(storeq_submit(&f->c, run_nothing, done_note, &jobs[3],
                                   0),
                     STOREQ_ECLOSED);
    run_until_done(f, 2);
    assert_int_equal(f->done_rc[1], STORE_EIO);
    assert_int_equal(f->done_rc[2], 9); /* never written: no manual */
    assert_true(atomic_load(&f->attempts) >= 1 + STOREQ_CLOSE_TRIES);
    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    fx_close(f);
    free(f);
    (void)state;
}

/* ------------------------------------------------------------------------
 * Cap and shutdown
 * ------------------------------------------------------------------------ */

/* max_jobs counts the running job and the queued ones: one past is
 * refused with STOREQ_EFULL and nothing is called for it. */
static void test_cap(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    fx_open(f, 4, 1000);
    assert_int_equal(storeq_submit(&f->c, run_gate, done_note, &jobs[0], 0),
                     0);
    for (int i = 1; i < 4; i++)
        assert_int_equal(storeq_submit(&f->c, run_nothing, done_note,
                                       &jobs[i], 0),
                         0);
    assert_int_equal(storeq_len(f->q), 4);
    assert_int_equal(storeq_submit(&f->c, run_nothing, done_note, &jobs[4],
                                   STOREQ_RETRY),
                     STOREQ_EFULL);
    assert_string_equal(storeq_strerror(STOREQ_EFULL), "store queue full");
    uv_sem_post(&f->gate);
    run_until_done(f, 4);
    assert_int_equal(storeq_len(f->q), 0);
    assert_int_equal(f->done_rc[4], 0); /* never set: never called */
    assert_int_equal(atomic_load(&f->ran), 4);
    /* Room again. */
    assert_int_equal(storeq_submit(&f->c, run_nothing, done_note, &jobs[4],
                                   0),
                     0);
    run_until_done(f, 5);
    assert_int_equal(f->done_rc[4], 7);
    fx_close(f);
    free(f);
    (void)state;
}

static void open_gate_later(void *arg)
{
    struct fx *f = arg;
    uv_sleep(100);
    uv_sem_post(&f->gate);
}

/* storeq_close() with jobs queued runs them all before it returns; their
 * dones then come on the loop as usual, and the loop ends clean. */
static void test_close_runs_queued_jobs(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    uv_thread_t t;
    fx_open(f, 1000, 1000);
    assert_int_equal(storeq_submit(&f->c, run_gate, done_note, &jobs[0], 0),
                     0);
    for (int i = 1; i < 100; i++)
        assert_int_equal(storeq_submit(&f->c, run_org_add, done_note,
                                       &jobs[i], STOREQ_RETRY),
                         0);
    assert_int_equal(uv_thread_create(&t, open_gate_later, f), 0);
    storeq_close(f->q);
    assert_int_equal(atomic_load(&f->ran), 100);
    assert_int_equal(f->ndone, 0); /* not before the loop delivers them */
    assert_int_equal(uv_thread_join(&t), 0);
    run_until_done(f, 100);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(f->done_order[i], i);
        assert_int_equal(f->done_rc[i], 0);
    }
    /* The store is the caller's again once the queue is closed. */
    assert_int_equal(store_org_exists(f->s, "o99"), 1);
    storeq_close(f->q); /* a second close does nothing */
    fx_close(f);
    free(f);
    (void)state;
}

/* ------------------------------------------------------------------------
 * A pool of store threads
 * ------------------------------------------------------------------------ */

/* How many jobs run at once, and the most seen. */
static atomic_int running_now, running_max, reads_finished;
static atomic_int write_saw_reads_finished, write_saw_running;

static void note_running(int delta)
{
    int now = atomic_fetch_add(&running_now, delta) + delta;
    int max = atomic_load(&running_max);
    while (now > max && !atomic_compare_exchange_weak(&running_max, &max, now))
        ;
}

/* Waits (up to 10 s, far beyond any scheduling delay) until three reads
 * run at once: with a pool of three that must happen; a queue that ran
 * them one by one would time out here and the test would fail below. */
static int run_read_together(struct store *s, void *ud)
{
    struct job *j = ud;
    (void)s;
    note_run(j->f, j->i);
    note_running(1);
    for (int waited = 0; atomic_load(&running_max) < 3 && waited < 10000;
         waited++)
        usleep(1000);
    int together = atomic_load(&running_max) >= 3;
    note_running(-1);
    atomic_fetch_add(&reads_finished, 1);
    return together ? 0 : -42;
}

static int run_write_alone(struct store *s, void *ud)
{
    struct job *j = ud;
    note_run(j->f, j->i);
    note_running(1);
    atomic_store(&write_saw_reads_finished, atomic_load(&reads_finished));
    atomic_store(&write_saw_running, atomic_load(&running_now));
    int rc = store_org_add(s, "w", NULL);
    note_running(-1);
    return rc;
}

/* READ jobs side by side on three threads; the write after them waits for
 * all three and runs alone; a READ after the write sees it. */
static void test_pool_reads_overlap_writes_alone(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    atomic_store(&running_now, 0);
    atomic_store(&running_max, 0);
    atomic_store(&reads_finished, 0);
    fx_open_n(f, 3, 100, 1000);
    for (int i = 0; i < 3; i++)
        assert_int_equal(storeq_submit(&f->c, run_read_together, done_note,
                                       &jobs[i], STOREQ_READ),
                         0);
    assert_int_equal(
        storeq_submit(&f->c, run_write_alone, done_note, &jobs[3], 0), 0);
    struct call_ud c = {"w", -9};
    run_until_done(f, 4);
    for (int i = 0; i < 3; i++)
        assert_int_equal(f->done_rc[i], 0);
    assert_int_equal(f->done_rc[3], 0);
    assert_int_equal(atomic_load(&write_saw_reads_finished), 3);
    assert_int_equal(atomic_load(&write_saw_running), 1);
    assert_int_equal(storeq_call(f->q, run_org_exists, &c, STOREQ_READ), 0);
    assert_int_equal(c.exists, 1);
    fx_close(f);
    free(f);
    (void)state;
}

/* The database "down": a DURABLE write fails with STORE_EDOWN until the
 * test brings it back. Meanwhile other jobs are answered STORE_EDOWN
 * without running, and a second DURABLE job waits behind the first. */
static atomic_int db_down, durable_runs;

static int run_durable(struct store *s, void *ud)
{
    struct job *j = ud;
    (void)s;
    atomic_fetch_add(&durable_runs, 1);
    if (atomic_load(&db_down))
        return STORE_EDOWN;
    note_run(j->f, j->i);
    return 0;
}

static void test_down_fails_others_keeps_durable(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    atomic_store(&db_down, 1);
    atomic_store(&durable_runs, 0);
    fx_open_n(f, 2, 100, 1000);
    unsigned durable = STOREQ_RETRY | STOREQ_DURABLE;
    assert_int_equal(
        storeq_submit(&f->c, run_durable, done_note, &jobs[0], durable), 0);
    /* Queued behind it: a read and a plain write. */
    assert_int_equal(storeq_submit(&f->c, run_nothing, done_note, &jobs[1],
                                   STOREQ_READ),
                     0);
    assert_int_equal(
        storeq_submit(&f->c, run_nothing, done_note, &jobs[2], 0), 0);
    assert_int_equal(
        storeq_submit(&f->c, run_durable, done_note, &jobs[3], durable), 0);
    run_until_done(f, 2);
    /* Neither ran: both answered STORE_EDOWN; the durable ones wait. */
    assert_int_equal(f->done_rc[1], STORE_EDOWN);
    assert_int_equal(f->done_rc[2], STORE_EDOWN);
    assert_int_equal(atomic_load(&f->ran), 0);
    /* Submitted while down: answered at once too. */
    assert_int_equal(
        storeq_submit(&f->c, run_nothing, done_note, &jobs[4], 0), 0);
    run_until_done(f, 3);
    assert_int_equal(f->done_order[2], 4);
    assert_int_equal(f->done_rc[4], STORE_EDOWN);
    assert_true(atomic_load(&durable_runs) >= 1);
    /* Back: both durable writes land, in order; then jobs run again. */
    atomic_store(&db_down, 0);
    run_until_done(f, 5);
    assert_int_equal(f->done_order[3], 0);
    assert_int_equal(f->done_order[4], 3);
    assert_int_equal(f->done_rc[0], 0);
    assert_int_equal(f->done_rc[3], 0);
    assert_int_equal(f->run_order[0], 0);
    assert_int_equal(f->run_order[1], 3);
    assert_int_equal(
        storeq_submit(&f->c, run_nothing, done_note, &jobs[5], 0), 0);
    run_until_done(f, 6);
    assert_int_equal(f->done_rc[5], 7);
    fx_close(f);
    free(f);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_threads),
        cmocka_unit_test(test_call),
        cmocka_unit_test(test_lock_held_by_another_connection),
        cmocka_unit_test(test_close_gives_up_a_blocked_write),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_close_runs_queued_jobs),
        cmocka_unit_test(test_pool_reads_overlap_writes_alone),
        cmocka_unit_test(test_down_fails_others_keeps_durable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
