/* storebench.c - a store's work, timed, straight through store.h.
 *
 *   storebench flush --db DB --rows N --orgs O [--status S]
 *   storebench login --db DB --rows N --logins M
 *
 * Users o<i % O>/u<i> (i < N) must exist in DB (a SQLite file or a
 * postgresql:// URI). The program opens the store as the server does
 * (store_open), reads every user once as the server does at start
 * (store_user_each: the same pages are then cached), and times one
 * store_presence_write() of N rows: status S (default 1, ONLINE), no
 * manual status, last_seen now. That call is what a server's flush runs
 * on its store thread (hub.c flush_run()), so this is the database work
 * of a flush of N dirty users, without the 100,000 connections it would
 * take to make them dirty (a process here holds at most 20,000
 * descriptors).
 *
 * login: the database part of M logins, one after the other on one
 * connection, as api/login.c does it (the password check, argon2id on the
 * thread pool, is left out): the user read by email (u<i % N>@bench.
 * example must exist), then in one transaction the new session and the
 * trim of the user's sessions past max_sessions (50). Reports the time
 * per login and what one store thread could sustain.
 *
 * Prints a human line and one JSON line starting with {"scenario":. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "store/store.h"

static void count_cb(void *ud, const struct store_user *u)
{
    (void)u;
    (*(long *)ud)++;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: storebench flush --db DB --rows N --orgs O "
               "[--status S]\n"
               "       storebench login --db DB --rows N --logins M\n");
}

static void trimmed_cb(void *ud, int64_t id)
{
    (void)id;
    (*(long *)ud)++;
}

/* api/login.c lookup_run() and session_run(), M times. */
static int bench_login(struct store *s, long users, long logins)
{
    struct hist h = {0};
    long trimmed = 0;
    int64_t t0 = now_ns();
    for (long i = 0; i < logins; i++) {
        char email[64];
        struct store_user u;
        unsigned char hash[32];
        int64_t id, t = now_ns();
        snprintf(email, sizeof email, "u%ld@bench.example", i % users);
        int rc = store_user_by_email(s, email, &u);
        if (rc != 0) {
            fprintf(stderr, "storebench: %s: %s\n", email,
                    store_strerror(rc));
            return 1;
        }
        randombytes_buf(hash, sizeof hash);
        rc = store_begin(s);
        if (rc == 0)
            rc = store_session_add(s, hash, u.org, u.id,
                                   wall_ms() + 86400000, &id);
        if (rc == 0 && store_session_trim(s, u.org, u.id, 50, wall_ms(),
                                          trimmed_cb, &trimmed) < 0)
            rc = STORE_EIO;
        if (rc == 0)
            rc = store_commit(s);
        if (rc != 0) {
            store_rollback(s);
            fprintf(stderr, "storebench: session: %s\n", store_strerror(rc));
            return 1;
        }
        hist_add(&h, now_ns() - t);
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    printf("login: %s, %ld logins' database work in %.3f s: %.0f/s on one "
           "connection; p50 %.2f ms, p99 %.2f ms\n",
           store_backend(s), logins, secs, logins / secs,
           (double)hist_pct(&h, 0.5) / 1e6, (double)hist_pct(&h, 0.99) / 1e6);
    int first = 1;
    printf("{");
    json_kv_s(stdout, "scenario", "login_db", &first);
    json_kv_s(stdout, "backend", store_backend(s), &first);
    json_kv_i(stdout, "logins", logins, &first);
    json_kv_d(stdout, "logins_per_s", logins / secs, &first);
    json_kv_d(stdout, "ms_per_login", secs * 1e3 / logins, &first);
    json_kv_d(stdout, "p50_ms", (double)hist_pct(&h, 0.5) / 1e6, &first);
    json_kv_d(stdout, "p99_ms", (double)hist_pct(&h, 0.99) / 1e6, &first);
    json_kv_i(stdout, "trimmed", trimmed, &first);
    printf("}\n");
    return 0;
}

int main(int argc, char **argv)
{
    const char *db = NULL;
    long rows = 0, orgs = 0, status = 1, logins = 0;
    int login = argc >= 2 && !strcmp(argv[1], "login");
    if (argc < 2 || (strcmp(argv[1], "flush") && !login)) {
        usage(stderr);
        return 2;
    }
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--db"))
            db = argv[i + 1];
        else if (!strcmp(argv[i], "--rows"))
            rows = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--orgs"))
            orgs = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--status"))
            status = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--logins"))
            logins = atol(argv[i + 1]);
        else {
            usage(stderr);
            return 2;
        }
    }
    if (login)
        orgs = 1;
    if (!db || rows < 1 || orgs < 1 || orgs > rows || status < 0 ||
        status > 3 || (login && logins < 1) || sodium_init() < 0) {
        usage(stderr);
        return 2;
    }
    char err[STORE_ERRLEN] = "";
    struct store *s;
    int64_t t0 = now_ns();
    int rc = store_open(&s, db, err);
    if (rc != 0) {
        fprintf(stderr, "storebench: open: %s: %s\n", store_strerror(rc),
                err);
        return 1;
    }
    int64_t t_open = now_ns() - t0;
    long users = 0;
    t0 = now_ns();
    rc = store_user_each(s, NULL, count_cb, &users);
    int64_t t_load = now_ns() - t0;
    if (rc != 0 || users < rows) {
        fprintf(stderr, "storebench: %ld users in the database, need %ld "
                        "(%s)\n", users, rows, store_strerror(rc));
        store_close(s);
        return 1;
    }
    if (login) {
        rc = bench_login(s, rows, logins);
        store_close(s);
        return rc;
    }

    /* The rows are built before the clock starts: the server's flush has
     * its pending rows ready too (collect_dirty()). */
    struct store_presence *p = calloc((size_t)rows, sizeof *p);
    char *names = malloc((size_t)rows * 48);
    if (!p || !names)
        abort();
    int64_t now = wall_ms();
    for (long i = 0; i < rows; i++) {
        char *o = names + i * 48, *u = o + 24;
        snprintf(o, 24, "o%ld", i % orgs);
        snprintf(u, 24, "u%ld", i);
        p[i] = (struct store_presence){o, u, (int)status, -1, now};
    }
    t0 = now_ns();
    rc = store_presence_write(s, p, (size_t)rows);
    int64_t t_write = now_ns() - t0;
    if (rc != 0) {
        fprintf(stderr, "storebench: store_presence_write: %s\n",
                store_strerror(rc));
        store_close(s);
        return 1;
    }
    /* Check that the rows were written. */
    struct store_user u;
    rc = store_user_get(s, p[rows - 1].org, p[rows - 1].user, &u);
    int ok = rc == 0 && u.status == status && u.last_seen_ms == now;
    double ms = (double)t_write / 1e6;
    printf("flush: %s, %ld rows in %.1f ms: %.0f rows/s (open %.1f ms, "
           "reading %ld users %.1f ms)%s\n",
           store_backend(s), rows, ms, rows / (ms / 1e3),
           (double)t_open / 1e6, users, (double)t_load / 1e6,
           ok ? "" : " - last row NOT written");
    int first = 1;
    printf("{");
    json_kv_s(stdout, "scenario", "flush", &first);
    json_kv_s(stdout, "backend", store_backend(s), &first);
    json_kv_i(stdout, "rows", rows, &first);
    json_kv_d(stdout, "flush_ms", ms, &first);
    json_kv_d(stdout, "rows_per_s", rows / (ms / 1e3), &first);
    json_kv_d(stdout, "open_ms", (double)t_open / 1e6, &first);
    json_kv_d(stdout, "load_ms", (double)t_load / 1e6, &first);
    json_kv_i(stdout, "users", users, &first);
    json_kv_i(stdout, "verified", ok, &first);
    printf("}\n");
    free(p);
    free(names);
    store_close(s);
    return ok ? 0 : 1;
}
