/* test_store.c - unit tests for store/: schema, constraints, round trips,
 * and two handles sharing one WAL file, against real SQLite files in a
 * mkdtemp directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "util/log.h"

/* ------------------------------------------------------------------------
 * Random source seam
 * ------------------------------------------------------------------------ */

/* This definition interposes libsodium's randombytes_buf for the test
 * binary, so that an id collision, which real randomness makes
 * practically impossible, can be forced. While forced_calls > 0 each call
 * returns bytes all equal to forced_byte; otherwise it is the kernel's
 * CSPRNG, as in production. */
void randombytes_buf(void *const buf, const size_t size);

static int forced_calls;
static unsigned char forced_byte;

void randombytes_buf(void *const buf, const size_t size)
{
    unsigned char *p = buf;
    size_t got = 0;
    if (forced_calls > 0) {
        forced_calls--;
        memset(buf, forced_byte, size);
        return;
    }
    while (got < size) {
        ssize_t n = getrandom(p + got, size - got, 0);
        if (n < 0 && errno != EINTR)
            abort();
        if (n > 0)
            got += (size_t)n;
    }
}

/* ------------------------------------------------------------------------
 * Fixture and helpers
 * ------------------------------------------------------------------------ */

/* The backend-independent tests run on SQLite, and again on PostgreSQL
 * when PRESENCED_TEST_PG holds a URI (tests/pgcluster.py run sets it; make
 * unit-pg). pg_uri is set while the PostgreSQL group runs; its tests start
 * from an empty database (pg_reset). */
static const char *pg_uri;

/* Runs constant SQL on a connection of the test's own. */
static PGconn *pg_raw(void)
{
    PGconn *c = PQconnectdb(pg_uri);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect: %s", PQerrorMessage(c));
    PGresult *r = PQexec(c, "SET client_min_messages = warning");
    PQclear(r);
    return c;
}

static void pg_sql(PGconn *c, const char *q)
{
    PGresult *r = PQexec(c, q);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", q, PQresultErrorMessage(r));
    PQclear(r);
}

static int64_t pg_int(PGconn *c, const char *q)
{
    PGresult *r = PQexec(c, q);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
        fail_msg("%s: %s", q, PQresultErrorMessage(r));
    int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static void pg_exec1(const char *q)
{
    PGconn *c = pg_raw();
    pg_sql(c, q);
    PQfinish(c);
}

/* An empty database: every table, function and trigger of the store goes
 * with the schema. */
static void pg_reset(void)
{
    pg_exec1("DROP SCHEMA public CASCADE; CREATE SCHEMA public");
}

struct fx {
    char dir[64];
    char path[1024]; /* a file, or the PostgreSQL URI */
    struct store *s;
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    char err[STORE_ERRLEN];
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/test_store.XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof f->path, "%s/presenced.db", f->dir);
    if (pg_uri) {
        pg_reset();
        snprintf(f->path, sizeof f->path, "%s", pg_uri);
    }
    if (store_open(&f->s, f->path, err) != 0) {
        fprintf(stderr, "store_open: %s\n", err);
        rmdir(f->dir);
        free(f);
        return -1;
    }
    forced_calls = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char p[sizeof f->path + 8];
    store_close(f->s);
    /* The -wal and -shm files go away with the last connection, but a
     * test that failed midway may leave them (and an extra handle). */
    if (!pg_uri) {
        unlink(f->path);
        snprintf(p, sizeof p, "%s-wal", f->path);
        unlink(p);
        snprintf(p, sizeof p, "%s-shm", f->path);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static struct store *mem_open(void)
{
    struct store *s = NULL;
    char err[STORE_ERRLEN];
    if (pg_uri)
        pg_reset();
    int rc = store_open(&s, pg_uri ? pg_uri : ":memory:", err);
    if (rc != 0)
        fail_msg("store_open(:memory:): %s", err);
    assert_non_null(s);
    return s;
}

static sqlite3 *raw_open(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL),
                     SQLITE_OK);
    return db;
}

/* First column of the first row of q, as text, into out. */
static void raw_text(sqlite3 *db, const char *q, char *out, size_t cap)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
}

static int raw_int(sqlite3 *db, const char *q)
{
    char buf[64];
    raw_text(db, q, buf, sizeof buf);
    return atoi(buf);
}

/* First column of the first row of q on the fixture's database. */
static int64_t db_int(const struct fx *f, const char *q)
{
    if (pg_uri) {
        PGconn *c = pg_raw();
        int64_t v = pg_int(c, q);
        PQfinish(c);
        return v;
    }
    sqlite3 *db = raw_open(f->path);
    int v = raw_int(db, q);
    sqlite3_close(db);
    return v;
}

static int schema_version(const struct fx *f)
{
    return (int)db_int(f, pg_uri ? "SELECT version FROM presenced_schema"
                                 : "PRAGMA user_version");
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Adds org and users u... to it, asserting success. */
static void seed(struct store *s, const char *org, const char *const *users,
                 size_t n)
{
    assert_int_equal(store_org_add(s, org, NULL), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(
            store_user_add(s, org, users[i], NULL, users[i], NULL, NULL), 0);
}

/* Collects callback output as one string: "a,b,c," (room for a whole
 * extras row of STORE_EXTRA_MAX bytes, and more) */
struct acc {
    char text[4 * STORE_EXTRA_MAX];
    int n;
};

static void acc_add(struct acc *a, const char *s)
{
    size_t len = strlen(a->text);
    snprintf(a->text + len, sizeof a->text - len, "%s,", s);
    a->n++;
}

static void user_cb(void *ud, const struct store_user *u)
{
    char line[512];
    snprintf(line, sizeof line, "%s/%s:%d:%d:%lld", u->org, u->id, u->status,
             u->manual, (long long)u->last_seen_ms);
    acc_add(ud, line);
}

static void group_cb(void *ud, const char *id, const char *name, int n)
{
    char line[512];
    snprintf(line, sizeof line, "%s=%d", name, n);
    acc_add(ud, line);
    (void)id;
}

static void member_cb(void *ud, const char *user)
{
    acc_add(ud, user);
}

static void extra_cb(void *ud, const char *org, const char *user,
                     const char *json)
{
    char line[STORE_EXTRA_MAX + 512];
    snprintf(line, sizeof line, "%s/%s=%s", org, user, json);
    acc_add(ud, line);
}

static int is_generated(const char *id, const char *prefix)
{
    if (strncmp(id, prefix, 2) != 0 || strlen(id) != 14)
        return 0;
    for (int i = 2; i < 14; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return 0;
    return 1;
}

/* ------------------------------------------------------------------------
 * Open, schema, reopen
 * ------------------------------------------------------------------------ */

static void test_memory_open(void **state)
{
    struct store *s = mem_open();
    assert_int_equal(store_org_add(s, "acme", "Acme"), 0);
    assert_int_equal(store_org_exists(s, "acme"), 1);
    assert_int_equal(store_org_exists(s, "nope"), 0);
    store_close(s);
    store_close(NULL);
    (void)state;
}

static void test_strerror(void **state)
{
    const int codes[] = {STORE_EIO, STORE_ENOENT, STORE_EEXIST, STORE_EINVAL,
                         STORE_EBUSY};
    for (size_t i = 0; i < 5; i++) {
        assert_non_null(store_strerror(codes[i]));
        assert_true(strlen(store_strerror(codes[i])) > 0);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(store_strerror(codes[i]),
                                    store_strerror(codes[j]));
    }
    (void)state;
}

/* One server per database: while a process holds the lock another is
 * refused and told its pid, anyone may ask who holds it, and the lock goes
 * with its process. */
static void test_lock(void **state)
{
    char path[] = "/tmp/test_store_lock_XXXXXX", lockpath[64], err[256], ch;
    int tfd = mkstemp(path), ready[2], done[2], fd, st;
    int64_t pid, holder;
    assert_true(tfd >= 0);
    close(tfd);
    snprintf(lockpath, sizeof lockpath, "%s.lock", path);
    assert_int_equal(store_lock_holder(path, &pid), -1); /* no file yet */
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(done), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(ready[0]);
        close(done[1]);
        if (store_lock(path, &fd, &holder, NULL) != 0 || fd < 0)
            _exit(1);
        if (write(ready[1], "x", 1) != 1)
            _exit(1);
        ssize_t r = read(done[0], &ch, 1); /* EOF: the parent is done */
        _exit(r == 0 ? 0 : 1);
    }
    close(ready[1]);
    close(done[0]);
    assert_int_equal(read(ready[0], &ch, 1), 1);
    assert_int_equal(store_lock_holder(path, &pid), 1);
    assert_int_equal(pid, child);
    assert_int_equal(store_lock(path, &fd, &holder, err), STORE_EBUSY);
    assert_int_equal(fd, -1);
    assert_int_equal(holder, child);
    close(done[1]);
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    close(ready[0]);
    assert_int_equal(store_lock_holder(path, &pid), 0);
    assert_int_equal(store_lock(path, &fd, &holder, err), 0);
    assert_true(fd >= 0);
    close(fd);
    /* Without a file there is nothing to share. */
    assert_int_equal(store_lock(":memory:", &fd, &holder, err), 0);
    assert_int_equal(fd, -1);
    /* A lock file that cannot be made: a reason, not a refusal. */
    assert_int_equal(store_lock("/nonexistent/dir/x.db", &fd, &holder, err),
                     STORE_EIO);
    assert_non_null(strstr(err, "x.db.lock"));
    unlink(path);
    unlink(lockpath);
    (void)state;
}

static void test_reopen_keeps_data(void **state)
{
    struct fx *f = *state;
    struct store_user u;
    char err[STORE_ERRLEN];
    int v;

    assert_int_equal(store_org_add(f->s, "acme", "Acme Inc"), 0);
    assert_int_equal(store_user_add(f->s, "acme", "ann", "ann@acme.test",
                                    "Ann", "$argon2id$x", NULL),
                     0);
    assert_int_equal(store_user_set_presence(f->s, "acme", "ann", 3, 3, 77),
                     0);
    store_close(f->s);
    f->s = NULL;

    v = schema_version(f);
    assert_true(v >= 1);

    assert_int_equal(store_open(&f->s, f->path, err), 0);
    assert_int_equal(store_org_exists(f->s, "acme"), 1);
    assert_int_equal(store_user_get(f->s, "acme", "ann", &u), 0);
    assert_string_equal(u.email, "ann@acme.test");
    assert_string_equal(u.name, "Ann");
    assert_string_equal(u.pw_hash, "$argon2id$x");
    assert_int_equal(u.status, 3);
    assert_int_equal(u.manual, 3);
    assert_int_equal(u.last_seen_ms, 77);

    assert_int_equal(schema_version(f), v);
}

static void test_wal_mode(void **state)
{
    struct fx *f = *state;
    char mode[32];
    sqlite3 *db = raw_open(f->path);
    raw_text(db, "PRAGMA journal_mode", mode, sizeof mode);
    assert_string_equal(mode, "wal");
    sqlite3_close(db);
}

/* No history of statuses, by design (privacy). */
static void test_no_history_table(void **state)
{
    struct fx *f = *state;
    if (pg_uri) {
        /* The store's ten tables, and its own two (presenced_*). */
        assert_int_equal(db_int(f, "SELECT count(*) FROM pg_tables"
                                   " WHERE schemaname = 'public' AND"
                                   " (tablename LIKE '%hist%' OR tablename"
                                   " LIKE '%log%' OR tablename LIKE"
                                   " '%event%')"),
                         0);
        assert_int_equal(db_int(f, "SELECT count(*) FROM pg_tables"
                                   " WHERE schemaname = 'public'"),
                         10 + 2);
        return;
    }
    sqlite3 *db = raw_open(f->path);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema"
                                 " WHERE type = 'table' AND (name LIKE"
                                 " '%hist%' OR name LIKE '%log%' OR name"
                                 " LIKE '%event%')"),
                     0);
    assert_int_equal(raw_int(db, "SELECT count(*) FROM sqlite_schema"
                                 " WHERE type = 'table'"),
                     10);
    sqlite3_close(db);
}

static void test_future_version_refused(void **state)
{
    struct fx *f = *state;
    char err[STORE_ERRLEN], q[64], want[STORE_ERRLEN];
    struct store *s2 = (struct store *)&err; /* must be reset to NULL */
    sqlite3 *db;
    int v;

    store_close(f->s);
    f->s = NULL;
    db = raw_open(f->path);
    v = raw_int(db, "PRAGMA user_version");
    snprintf(q, sizeof q, "PRAGMA user_version = %d", v + 1);
    assert_int_equal(sqlite3_exec(db, q, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);

    assert_int_equal(store_open(&s2, f->path, err), STORE_EIO);
    assert_null(s2);
    snprintf(want, sizeof want,
             "database schema version %d is newer than this presenced (%d)",
             v + 1, v);
    assert_string_equal(err, want);

    /* Nothing was changed: the version is still the future one. */
    db = raw_open(f->path);
    assert_int_equal(raw_int(db, "PRAGMA user_version"), v + 1);
    sqlite3_close(db);
}

static void test_not_a_database(void **state)
{
    struct fx *f = *state;
    char path[160], err[STORE_ERRLEN] = "";
    struct store *s2 = NULL;
    FILE *fp;

    snprintf(path, sizeof path, "%s/garbage.db", f->dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 200; i++)
        fputs("this is not an SQLite database\n", fp);
    fclose(fp);
    assert_int_equal(store_open(&s2, path, err), STORE_EIO);
    assert_null(s2);
    assert_true(strlen(err) > 0);
    unlink(path);
}

static void test_check_ok(void **state)
{
    struct fx *f = *state;
    char err[STORE_ERRLEN] = "junk";
    assert_int_equal(store_check(f->s, err), 0);
    assert_string_equal(err, "");
    assert_int_equal(store_check(f->s, NULL), 0);
}

/* ------------------------------------------------------------------------
 * Organizations and users
 * ------------------------------------------------------------------------ */

static void test_org_user_basic(void **state)
{
    struct store *s = mem_open();
    struct store_user u;
    char id[STORE_ID_MAX + 1];

    assert_int_equal(store_org_add(s, "acme", NULL), 0);
    assert_int_equal(store_user_add(s, "acme", "ann", "Ann@Acme.Test",
                                    "Ann A.", "$argon2id$v=19$abc", id),
                     0);
    assert_string_equal(id, "ann");
    assert_int_equal(store_user_get(s, "acme", "ann", &u), 0);
    assert_string_equal(u.org, "acme");
    assert_string_equal(u.id, "ann");
    assert_string_equal(u.email, "Ann@Acme.Test");
    assert_string_equal(u.name, "Ann A.");
    assert_string_equal(u.pw_hash, "$argon2id$v=19$abc");
    assert_int_equal(u.status, 0);
    assert_int_equal(u.manual, -1);
    assert_int_equal(u.last_seen_ms, 0);

    /* Email lookups ignore case. */
    memset(&u, 0, sizeof u);
    assert_int_equal(store_user_by_email(s, "ann@acme.test", &u), 0);
    assert_string_equal(u.id, "ann");
    assert_int_equal(store_user_by_email(s, "ANN@ACME.TEST", &u), 0);
    assert_string_equal(u.id, "ann");
    assert_int_equal(store_user_by_email(s, "bob@acme.test", &u),
                     STORE_ENOENT);
    assert_int_equal(store_user_by_email(s, "", &u), STORE_ENOENT);

    /* Token-provisioned: no email, no password. */
    assert_int_equal(store_user_add(s, "acme", "tok", NULL, "Tok", NULL,
                                    NULL),
                     0);
    assert_int_equal(store_user_get(s, "acme", "tok", &u), 0);
    assert_string_equal(u.email, "");
    assert_string_equal(u.pw_hash, "");
    /* Several users without email do not collide. */
    assert_int_equal(store_user_add(s, "acme", "tok2", NULL, "T2", NULL,
                                    NULL),
                     0);
    assert_int_equal(store_user_add(s, "acme", "tok3", "", "T3", "", NULL),
                     0);

    assert_int_equal(store_user_get(s, "acme", "nobody", &u), STORE_ENOENT);
    assert_int_equal(store_user_get(s, "other", "ann", &u), STORE_ENOENT);

    assert_int_equal(store_user_set_name(s, "acme", "ann", "Ann B."), 0);
    assert_int_equal(store_user_get(s, "acme", "ann", &u), 0);
    assert_string_equal(u.name, "Ann B.");
    assert_int_equal(store_user_set_name(s, "acme", "nobody", "X"),
                     STORE_ENOENT);

    assert_int_equal(store_user_count(s, "acme"), 4);
    assert_int_equal(store_user_count(s, "other"), 0);
    assert_int_equal(store_user_count(s, NULL), 4);
    store_close(s);
    (void)state;
}

static void test_duplicates(void **state)
{
    struct store *s = mem_open();
    struct store_user u;

    assert_int_equal(store_org_add(s, "acme", "Acme"), 0);
    assert_int_equal(store_org_add(s, "acme", "Again"), STORE_EEXIST);
    assert_int_equal(store_org_add(s, "beta", "Beta"), 0);
    assert_int_equal(store_user_add(s, "acme", "ann", "ann@x.test", "Ann",
                                    NULL, NULL),
                     0);
    assert_int_equal(store_user_add(s, "acme", "ann", NULL, "Ann 2", NULL,
                                    NULL),
                     STORE_EEXIST);
    /* Same id in another organization is another user. */
    assert_int_equal(store_user_add(s, "beta", "ann", NULL, "Ann B", NULL,
                                    NULL),
                     0);
    /* Email is unique across organizations, ignoring case. */
    assert_int_equal(store_user_add(s, "acme", "bob", "ANN@X.TEST", "Bob",
                                    NULL, NULL),
                     STORE_EEXIST);
    assert_int_equal(store_user_add(s, "beta", "bob", "Ann@x.Test", "Bob",
                                    NULL, NULL),
                     STORE_EEXIST);
    /* A generated id does not turn an email clash into a retry loop. */
    assert_int_equal(store_user_add(s, "beta", NULL, "ann@x.test", "Bob",
                                    NULL, NULL),
                     STORE_EEXIST);
    assert_int_equal(store_user_get(s, "acme", "bob", &u), STORE_ENOENT);
    assert_int_equal(store_user_get(s, "acme", "ann", &u), 0);
    assert_string_equal(u.name, "Ann");
    assert_int_equal(store_user_count(s, NULL), 2);
    store_close(s);
    (void)state;
}

static void test_user_unknown_org(void **state)
{
    struct store *s = mem_open();
    assert_int_equal(store_user_add(s, "ghost", "ann", NULL, "Ann", NULL,
                                    NULL),
                     STORE_ENOENT);
    assert_int_equal(store_user_add(s, "ghost", NULL, NULL, "Ann", NULL,
                                    NULL),
                     STORE_ENOENT);
    assert_int_equal(store_user_count(s, NULL), 0);
    store_close(s);
    (void)state;
}

static void test_validation(void **state)
{
    struct store *s = mem_open();
    struct store_user u;
    struct store_session ss;
    struct store_server srv;
    unsigned char hash[32] = {0};
    char id128[STORE_ID_MAX + 1], id129[STORE_ID_MAX + 2];
    char name200[STORE_NAME_MAX + 1], name201[STORE_NAME_MAX + 2];
    char mail254[STORE_EMAIL_MAX + 1], mail255[STORE_EMAIL_MAX + 2];
    char pw127[128], pw128[129];

    memset(id128, 'i', STORE_ID_MAX);
    id128[STORE_ID_MAX] = '\0';
    memset(id129, 'j', STORE_ID_MAX + 1);
    id129[STORE_ID_MAX + 1] = '\0';
    memset(name200, 'n', STORE_NAME_MAX);
    name200[STORE_NAME_MAX] = '\0';
    memset(name201, 'n', STORE_NAME_MAX + 1);
    name201[STORE_NAME_MAX + 1] = '\0';
    memset(mail254, 'm', STORE_EMAIL_MAX);
    memcpy(mail254 + STORE_EMAIL_MAX - 5, "@x.io", 5);
    mail254[STORE_EMAIL_MAX] = '\0';
    memset(mail255, 'm', STORE_EMAIL_MAX + 1);
    mail255[STORE_EMAIL_MAX + 1] = '\0';
    memset(pw127, 'p', 127);
    pw127[127] = '\0';
    memset(pw128, 'p', 128);
    pw128[128] = '\0';

    /* Organizations. */
    assert_int_equal(store_org_add(s, "", "X"), STORE_EINVAL);
    assert_int_equal(store_org_add(s, NULL, "X"), STORE_EINVAL);
    assert_int_equal(store_org_add(s, id129, "X"), STORE_EINVAL);
    assert_int_equal(store_org_add(s, "o", name201), STORE_EINVAL);
    assert_int_equal(store_org_exists(s, ""), STORE_EINVAL);
    assert_int_equal(store_org_add(s, id128, name200), 0);
    assert_int_equal(store_org_exists(s, id128), 1);
    assert_int_equal(store_org_add(s, "o", NULL), 0);

    /* Users: every limit exactly, and one past it. */
    assert_int_equal(store_user_add(s, "o", "", NULL, "N", NULL, NULL),
                     STORE_EINVAL);
    assert_int_equal(store_user_add(s, "", "u", NULL, "N", NULL, NULL),
                     STORE_EINVAL);
    assert_int_equal(store_user_add(s, "o", id129, NULL, "N", NULL, NULL),
                     STORE_EINVAL);
    assert_int_equal(store_user_add(s, "o", "u", NULL, name201, NULL, NULL),
                     STORE_EINVAL);
    assert_int_equal(store_user_add(s, "o", "u", NULL, NULL, NULL, NULL),
                     STORE_EINVAL);
    assert_int_equal(store_user_add(s, "o", "u", mail255, "N", NULL, NULL),
                     STORE_EINVAL);
    assert_int_equal(store_user_add(s, "o", "u", NULL, "N", pw128, NULL),
                     STORE_EINVAL);
    assert_int_equal(store_user_count(s, NULL), 0);
    assert_int_equal(store_user_add(s, "o", id128, mail254, name200, pw127,
                                    NULL),
                     0);
    assert_int_equal(store_user_get(s, "o", id128, &u), 0);
    assert_string_equal(u.id, id128);
    assert_string_equal(u.email, mail254);
    assert_string_equal(u.name, name200);
    assert_string_equal(u.pw_hash, pw127);
    assert_int_equal(store_user_get(s, "o", "", &u), STORE_EINVAL);
    assert_int_equal(store_user_get(s, "o", id129, &u), STORE_EINVAL);
    assert_int_equal(store_user_by_email(s, mail255, &u), STORE_EINVAL);
    assert_int_equal(store_user_set_name(s, "o", id128, name201),
                     STORE_EINVAL);

    /* Presence fields. */
    assert_int_equal(store_user_set_presence(s, "o", id128, 4, -1, 1),
                     STORE_EINVAL);
    assert_int_equal(store_user_set_presence(s, "o", id128, -1, -1, 1),
                     STORE_EINVAL);
    assert_int_equal(store_user_set_presence(s, "o", id128, 1, 4, 1),
                     STORE_EINVAL);
    assert_int_equal(store_user_set_presence(s, "o", id128, 1, -2, 1),
                     STORE_EINVAL);
    for (int st = 0; st <= 3; st++)
        for (int m = -1; m <= 3; m++)
            assert_int_equal(store_user_set_presence(s, "o", id128, st, m, 5),
                             0);
    assert_int_equal(store_user_set_presence(s, "o", "ghost", 1, -1, 1),
                     STORE_ENOENT);

    /* Sessions, groups, server. */
    assert_int_equal(store_session_add(s, NULL, "o", id128, 1, NULL),
                     STORE_EINVAL);
    assert_int_equal(store_session_add(s, hash, "", id128, 1, NULL),
                     STORE_EINVAL);
    assert_int_equal(store_session_get(s, NULL, 0, &ss), STORE_EINVAL);
    {
        const char *bad[] = {id128, ""};
        const char *too_long[] = {id129};
        assert_int_equal(store_channel_add(s, "o", "c", bad, 2, NULL),
                         STORE_EINVAL);
        assert_int_equal(store_channel_add(s, "o", "c", too_long, 1, NULL),
                         STORE_EINVAL);
        assert_int_equal(store_channel_add(s, "o", name201, NULL, 0, NULL),
                         STORE_EINVAL);
        assert_int_equal(store_channel_add(s, "o", NULL, NULL, 0, NULL),
                         STORE_EINVAL);
        assert_int_equal(store_project_add(s, "", "p", NULL, 0, NULL),
                         STORE_EINVAL);
        assert_int_equal(store_channel_members(s, "o", "", NULL, member_cb,
                                               NULL),
                         STORE_EINVAL);
    }
    memset(&srv, 'x', sizeof srv); /* strings without NUL */
    assert_int_equal(store_server_set(s, &srv), STORE_EINVAL);
    assert_int_equal(store_server_get(s, &srv), STORE_ENOENT);
    store_close(s);
    (void)state;
}

static void test_generated_ids(void **state)
{
    struct store *s = mem_open();
    char a[STORE_ID_MAX + 1], b[STORE_ID_MAX + 1], c[STORE_ID_MAX + 1];
    char p[STORE_ID_MAX + 1];
    struct store_user u;

    assert_int_equal(store_org_add(s, "o", NULL), 0);
    assert_int_equal(store_user_add(s, "o", NULL, NULL, "A", NULL, a), 0);
    assert_int_equal(store_user_add(s, "o", NULL, NULL, "B", NULL, b), 0);
    assert_true(is_generated(a, "u_"));
    assert_true(is_generated(b, "u_"));
    assert_string_not_equal(a, b);
    assert_int_equal(store_user_get(s, "o", a, &u), 0);
    assert_string_equal(u.name, "A");
    /* id_out may be NULL. */
    assert_int_equal(store_user_add(s, "o", NULL, NULL, "C", NULL, NULL), 0);
    assert_int_equal(store_user_count(s, "o"), 3);

    assert_int_equal(store_channel_add(s, "o", "ch", NULL, 0, c), 0);
    assert_int_equal(store_project_add(s, "o", "pr", NULL, 0, p), 0);
    assert_true(is_generated(c, "c_"));
    assert_true(is_generated(p, "p_"));
    store_close(s);
    (void)state;
}

/* A generated id that is already taken is replaced, not reported. */
static void test_generated_id_collision(void **state)
{
    struct store *s = mem_open();
    char a[STORE_ID_MAX + 1], b[STORE_ID_MAX + 1], c1[STORE_ID_MAX + 1];
    char c2[STORE_ID_MAX + 1];
    const char *members[] = {"m"};
    struct acc acc = {0};

    assert_int_equal(store_org_add(s, "o", NULL), 0);
    assert_int_equal(store_user_add(s, "o", "m", NULL, "M", NULL, NULL), 0);

    forced_byte = 0xab;
    forced_calls = 1;
    assert_int_equal(store_user_add(s, "o", NULL, NULL, "A", NULL, a), 0);
    assert_string_equal(a, "u_abababababab");
    forced_calls = 1; /* the same id first, then real randomness */
    assert_int_equal(store_user_add(s, "o", NULL, NULL, "B", NULL, b), 0);
    assert_int_equal(forced_calls, 0);
    assert_true(is_generated(b, "u_"));
    assert_string_not_equal(a, b);

    /* A source stuck on one value gives up rather than loop forever. */
    forced_calls = 1000;
    assert_int_equal(store_user_add(s, "o", NULL, NULL, "C", NULL, NULL),
                     STORE_EEXIST);
    assert_true(forced_calls < 1000 && forced_calls > 900);
    forced_calls = 0;
    assert_int_equal(store_user_count(s, "o"), 3);

    /* Groups retry too, inside their transaction, members included. */
    forced_calls = 1;
    assert_int_equal(store_channel_add(s, "o", "one", members, 1, c1), 0);
    assert_string_equal(c1, "c_abababababab");
    forced_calls = 1;
    assert_int_equal(store_channel_add(s, "o", "two", members, 1, c2), 0);
    assert_string_not_equal(c1, c2);
    assert_int_equal(store_channel_each(s, "o", group_cb, &acc), 0);
    assert_string_equal(acc.text, "one=1,two=1,");
    store_close(s);
    (void)state;
}

static void test_tricky_strings(void **state)
{
    struct fx *f = *state;
    struct store_user u;
    struct acc acc = {0};
    char emoji200[STORE_NAME_MAX + 1], emoji204[STORE_NAME_MAX + 5];
    const char *inject = "'); DROP TABLE users;--";
    const char *quotes = "O'Brien \"Bob\" `x` \\ %s %n";
    const char *ctrl = "a\x01\x1f\t\r\nb\x7f";
    /* SQLite keeps any bytes; PostgreSQL's text holds UTF-8 only, and
     * refuses the rest (below). */
    const char *odd_org = pg_uri ? "org with 'quotes', spaces and \xc3\xa9"
                                 : "org with 'quotes', spaces and \xff\xfe"
                                   " bytes";
    const char *odd_id = pg_uri ? "id\n\"; DELETE FROM users; --\\"
                                : "id\n\"; DELETE FROM users; --\xc3";

    emoji200[0] = '\0';
    for (int i = 0; i < 50; i++)
        strcat(emoji200, "\xf0\x9f\x98\x80"); /* U+1F600, 4 bytes */
    assert_int_equal(strlen(emoji200), 200);
    snprintf(emoji204, sizeof emoji204, "%s\xf0\x9f\x98\x80", emoji200);

    assert_int_equal(store_org_add(f->s, odd_org, inject), 0);
    assert_int_equal(store_org_exists(f->s, odd_org), 1);
    assert_int_equal(store_user_add(f->s, odd_org, odd_id,
                                    "o'brien+\"x\"@example.test", quotes,
                                    NULL, NULL),
                     0);
    assert_int_equal(store_user_add(f->s, odd_org, inject, NULL, inject,
                                    NULL, NULL),
                     0);
    assert_int_equal(store_user_add(f->s, odd_org, "e", NULL, emoji200,
                                    NULL, NULL),
                     0);
    assert_int_equal(store_user_add(f->s, odd_org, "e2", NULL, emoji204,
                                    NULL, NULL),
                     STORE_EINVAL);
    assert_int_equal(store_user_add(f->s, odd_org, "c", NULL, ctrl, NULL,
                                    NULL),
                     0);

    assert_int_equal(store_user_get(f->s, odd_org, odd_id, &u), 0);
    assert_string_equal(u.org, odd_org);
    assert_string_equal(u.id, odd_id);
    assert_string_equal(u.name, quotes);
    assert_int_equal(store_user_by_email(f->s, "O'BRIEN+\"X\"@example.test",
                                         &u),
                     0);
    assert_string_equal(u.id, odd_id);
    assert_int_equal(store_user_get(f->s, odd_org, inject, &u), 0);
    assert_string_equal(u.name, inject);
    assert_int_equal(store_user_get(f->s, odd_org, "e", &u), 0);
    assert_memory_equal(u.name, emoji200, 201);
    assert_int_equal(store_user_get(f->s, odd_org, "c", &u), 0);
    assert_string_equal(u.name, ctrl);
    /* An id differing only in a trailing byte is another id. */
    assert_int_equal(store_user_get(f->s, odd_org, "e ", &u), STORE_ENOENT);

    assert_int_equal(store_channel_add(f->s, odd_org, emoji200, NULL, 0,
                                       NULL),
                     0);
    assert_int_equal(store_channel_each(f->s, odd_org, group_cb, &acc), 0);
    assert_int_equal(acc.n, 1);
    assert_memory_equal(acc.text, emoji200, 200);

    /* The injection text was data: the table is still there. */
    assert_int_equal(db_int(f, "SELECT count(*) FROM users"), 4);

    if (pg_uri) {
        /* Not UTF-8: refused on the way in, absent on the way out. */
        assert_int_equal(store_org_add(f->s, "bad\xff", NULL), STORE_EINVAL);
        assert_int_equal(store_user_add(f->s, odd_org, "x", NULL, "\xc3",
                                        NULL, NULL),
                         STORE_EINVAL);
        assert_int_equal(store_org_exists(f->s, "bad\xff"), 0);
        assert_int_equal(store_user_get(f->s, odd_org, "\xfe", &u),
                         STORE_ENOENT);
        assert_int_equal(store_user_count(f->s, NULL), 4);
    }
}

/* ------------------------------------------------------------------------
 * Presence fields, listing, stale reset
 * ------------------------------------------------------------------------ */

static void test_presence_and_each(void **state)
{
    struct store *s = mem_open();
    struct acc all = {0}, one = {0};
    const char *zu[] = {"zed", "amy"};
    const char *au[] = {"mia", "bo"};

    seed(s, "zeta", zu, 2);
    seed(s, "alpha", au, 2);
    assert_int_equal(store_user_set_presence(s, "zeta", "amy", 1, -1, 100),
                     0);
    assert_int_equal(store_user_set_presence(s, "alpha", "mia", 3, 3, 200),
                     0);
    assert_int_equal(store_user_set_presence(s, "alpha", "bo", 2, 2, 300),
                     0);
    /* manual -1 clears a manual status. */
    assert_int_equal(store_user_set_presence(s, "alpha", "bo", 2, -1, 301),
                     0);

    assert_int_equal(store_user_each(s, NULL, user_cb, &all), 0);
    assert_string_equal(all.text, "alpha/bo:2:-1:301,alpha/mia:3:3:200,"
                                  "zeta/amy:1:-1:100,zeta/zed:0:-1:0,");
    assert_int_equal(store_user_each(s, "zeta", user_cb, &one), 0);
    assert_string_equal(one.text, "zeta/amy:1:-1:100,zeta/zed:0:-1:0,");
    memset(&one, 0, sizeof one);
    assert_int_equal(store_user_each(s, "nobody", user_cb, &one), 0);
    assert_int_equal(one.n, 0);
    store_close(s);
    (void)state;
}

struct reenter {
    struct store *s;
    int inner_rc;
    int calls;
};

static void reenter_cb(void *ud, const struct store_user *u)
{
    struct reenter *r = ud;
    struct acc acc = {0};
    r->calls++;
    r->inner_rc = store_user_each(r->s, NULL, user_cb, &acc);
    /* Other statements are fine from inside the walk. */
    assert_int_equal(store_user_set_presence(r->s, u->org, u->id, 1, -1, 9),
                     0);
}

static void test_each_reentry(void **state)
{
    struct store *s = mem_open();
    const char *us[] = {"a", "b"};
    struct reenter r = {s, 0, 0};
    struct acc acc = {0};

    seed(s, "o", us, 2);
    log_set_level(LOG_ERROR + 1); /* the refusal is logged; keep quiet */
    assert_int_equal(store_user_each(s, NULL, reenter_cb, &r), 0);
    log_set_level(LOG_WARN);
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.inner_rc, STORE_EIO);
    assert_int_equal(store_user_each(s, "o", user_cb, &acc), 0);
    assert_string_equal(acc.text, "o/a:1:-1:9,o/b:1:-1:9,");
    store_close(s);
    (void)state;
}

static void test_reset_stale(void **state)
{
    struct store *s = mem_open();
    const char *us[] = {"a", "b", "c", "d", "e"};
    struct acc acc = {0};

    seed(s, "o", us, 5);
    assert_int_equal(store_user_set_presence(s, "o", "a", 1, -1, 1000), 0);
    assert_int_equal(store_user_set_presence(s, "o", "b", 2, -1, 5000), 0);
    assert_int_equal(store_user_set_presence(s, "o", "c", 0, -1, 100), 0);
    assert_int_equal(store_user_set_presence(s, "o", "d", 3, 3, 2000), 0);
    assert_int_equal(store_user_set_presence(s, "o", "e", 1, -1, 3000), 0);

    /* a and d are old and not OFFLINE; c is old but already OFFLINE; e is
     * exactly at the cutoff, which is not before it. */
    assert_int_equal(store_reset_stale(s, 3000), 2);
    assert_int_equal(store_user_each(s, "o", user_cb, &acc), 0);
    assert_string_equal(acc.text, "o/a:0:-1:1000,o/b:2:-1:5000,"
                                  "o/c:0:-1:100,o/d:0:3:2000,"
                                  "o/e:1:-1:3000,");
    assert_int_equal(store_reset_stale(s, 3000), 0);
    assert_int_equal(store_reset_stale(s, 3001), 1);
    assert_int_equal(store_reset_stale(s, INT64_MAX), 1);
    assert_int_equal(store_reset_stale(s, INT64_MAX), 0);
    store_close(s);
    (void)state;
}

/* ------------------------------------------------------------------------
 * Sessions
 * ------------------------------------------------------------------------ */

static void test_sessions(void **state)
{
    struct store *s = mem_open();
    const char *us[] = {"ann"};
    unsigned char h1[32], h2[32], h3[32], h4[32];
    struct store_session ss;
    int64_t id1 = 0, id2 = 0, id3 = 0;

    memset(h1, 1, 32);
    memset(h2, 2, 32);
    memset(h3, 3, 32);
    memset(h4, 4, 32);
    h4[31] = 0; /* differs from h1..h3 and contains a NUL byte */
    seed(s, "o", us, 1);

    assert_int_equal(store_session_add(s, h1, "o", "ann", 10000, &id1), 0);
    assert_int_equal(store_session_add(s, h2, "o", "ann", 5000, &id2), 0);
    assert_int_equal(store_session_add(s, h3, "o", "ann", 20000, &id3), 0);
    assert_true(id1 > 0 && id2 > 0 && id3 > 0);
    assert_true(id1 != id2 && id2 != id3);
    assert_int_equal(store_session_add(s, h1, "o", "ann", 99999, NULL),
                     STORE_EEXIST);
    assert_int_equal(store_session_add(s, h4, "o", "bob", 99999, NULL),
                     STORE_ENOENT);
    assert_int_equal(store_session_add(s, h4, "x", "ann", 99999, NULL),
                     STORE_ENOENT);

    memset(&ss, 0, sizeof ss);
    assert_int_equal(store_session_get(s, h1, 9999, &ss), 0);
    assert_int_equal(ss.id, id1);
    assert_string_equal(ss.org, "o");
    assert_string_equal(ss.user, "ann");
    assert_int_equal(ss.expires_ms, 10000);
    /* Expired at exactly expires_ms. */
    assert_int_equal(store_session_get(s, h1, 10000, &ss), STORE_ENOENT);
    assert_int_equal(store_session_get(s, h4, 0, &ss), STORE_ENOENT);

    /* Purge removes the two expired by 10000 and keeps the third. */
    assert_int_equal(store_session_purge(s, 10000), 2);
    assert_int_equal(store_session_purge(s, 10000), 0);
    assert_int_equal(store_session_get(s, h1, 0, &ss), STORE_ENOENT);
    assert_int_equal(store_session_get(s, h2, 0, &ss), STORE_ENOENT);
    assert_int_equal(store_session_get(s, h3, 0, &ss), 0);
    assert_int_equal(ss.id, id3);

    assert_int_equal(store_session_delete(s, id3), 0);
    assert_int_equal(store_session_delete(s, id3), STORE_ENOENT);
    assert_int_equal(store_session_get(s, h3, 0, &ss), STORE_ENOENT);
    store_close(s);
    (void)state;
}

static void session_row_cb(void *ud, const struct store_session *ss,
                           const unsigned char hash[32])
{
    char line[512];
    snprintf(line, sizeof line, "%lld:%s/%s:%lld:%02x%02x",
             (long long)ss->id, ss->org, ss->user, (long long)ss->expires_ms,
             hash[0], hash[31]);
    acc_add(ud, line);
}

/* Deletes the session the callback is handed, from inside the walk. */
static void session_delete_cb(void *ud, const struct store_session *ss,
                              const unsigned char hash[32])
{
    struct store *s = ud;
    assert_int_equal(store_session_delete(s, ss->id), 0);
    (void)hash;
}

/* store_session_each lists live sessions in id order with their hashes,
 * the way the server loads its in-memory table at start. */
static void test_session_each(void **state)
{
    struct store *s = mem_open();
    const char *us[] = {"ann", "bob"};
    unsigned char h1[32], h2[32], h3[32];
    int64_t id1 = 0, id2 = 0, id3 = 0;
    struct acc acc = {0};
    char want[512];

    memset(h1, 0xa1, 32);
    memset(h2, 0xb2, 32);
    memset(h3, 0xc3, 32);
    h3[31] = 0;
    seed(s, "o", us, 2);
    assert_int_equal(store_session_each(s, 0, session_row_cb, &acc), 0);
    assert_int_equal(acc.n, 0);

    assert_int_equal(store_session_add(s, h1, "o", "ann", 10000, &id1), 0);
    assert_int_equal(store_session_add(s, h2, "o", "bob", 5000, &id2), 0);
    assert_int_equal(store_session_add(s, h3, "o", "ann", 20000, &id3), 0);

    assert_int_equal(store_session_each(s, 4999, session_row_cb, &acc), 0);
    snprintf(want, sizeof want,
             "%lld:o/ann:10000:a1a1,%lld:o/bob:5000:b2b2,"
             "%lld:o/ann:20000:c300,",
             (long long)id1, (long long)id2, (long long)id3);
    assert_string_equal(acc.text, want);

    /* Expired at exactly expires_ms, as store_session_get. */
    memset(&acc, 0, sizeof acc);
    assert_int_equal(store_session_each(s, 10000, session_row_cb, &acc), 0);
    snprintf(want, sizeof want, "%lld:o/ann:20000:c300,", (long long)id3);
    assert_string_equal(acc.text, want);

    /* A write from inside the walk is fine on one connection. */
    assert_int_equal(store_session_each(s, 0, session_delete_cb, s), 0);
    memset(&acc, 0, sizeof acc);
    assert_int_equal(store_session_each(s, 0, session_row_cb, &acc), 0);
    assert_int_equal(acc.n, 0);
    store_close(s);
    (void)state;
}

/* ------------------------------------------------------------------------
 * Channels and projects
 * ------------------------------------------------------------------------ */

struct group_api {
    const char *prefix;
    const char *members_table;
    int (*add)(struct store *, const char *, const char *,
               const char *const *, size_t, char *);
    int (*each)(struct store *, const char *, store_group_cb *, void *);
    int (*members)(struct store *, const char *, const char *, char *,
                   store_member_cb *, void *);
};

static const struct group_api channels = {
    "c_", "channel_members", store_channel_add, store_channel_each,
    store_channel_members,
};
static const struct group_api projects = {
    "p_", "project_members", store_project_add, store_project_each,
    store_project_members,
};

static void groups(struct fx *f, const struct group_api *g)
{
    const char *au[] = {"u1", "u2", "u3"};
    const char *bu[] = {"x1", "u9"};
    const char *general[] = {"u2", "u1", "u2", "u1"};
    const char *cross[] = {"u1", "x1"};
    const char *ghost[] = {"nobody"};
    const char *three[] = {"u3"};
    char gid[STORE_ID_MAX + 1], a1[STORE_ID_MAX + 1], a2[STORE_ID_MAX + 1];
    char name[STORE_NAME_MAX + 1];
    char q[128];
    struct acc acc = {0};

    seed(f->s, "a", au, 3);
    seed(f->s, "b", bu, 2);

    /* A member of another organization, or of none: nothing is added. */
    assert_int_equal(g->add(f->s, "a", "mixed", cross, 2, gid),
                     STORE_ENOENT);
    assert_int_equal(g->add(f->s, "a", "ghost", ghost, 1, gid),
                     STORE_ENOENT);
    assert_int_equal(g->add(f->s, "nope", "x", NULL, 0, gid), STORE_ENOENT);
    assert_int_equal(g->each(f->s, "a", group_cb, &acc), 0);
    assert_int_equal(acc.n, 0);
    snprintf(q, sizeof q, "SELECT count(*) FROM %s", g->members_table);
    assert_int_equal(db_int(f, q), 0);

    /* Duplicates in the member list count once. */
    assert_int_equal(g->add(f->s, "a", "general", general, 4, gid), 0);
    assert_true(is_generated(gid, g->prefix));
    assert_int_equal(g->add(f->s, "a", "alpha", three, 1, a1), 0);
    assert_int_equal(g->add(f->s, "a", "alpha", NULL, 0, a2), 0);
    assert_int_equal(g->add(f->s, "b", "bee", bu, 2, NULL), 0);
    assert_int_equal(db_int(f, q), 2 + 1 + 2);

    /* Ordered by name, then id. */
    memset(&acc, 0, sizeof acc);
    assert_int_equal(g->each(f->s, "a", group_cb, &acc), 0);
    assert_string_equal(acc.text, strcmp(a1, a2) < 0
                                      ? "alpha=1,alpha=0,general=2,"
                                      : "alpha=0,alpha=1,general=2,");

    memset(&acc, 0, sizeof acc);
    assert_int_equal(g->members(f->s, "a", gid, name, member_cb, &acc), 0);
    assert_string_equal(name, "general");
    assert_string_equal(acc.text, "u1,u2,");
    memset(&acc, 0, sizeof acc);
    assert_int_equal(g->members(f->s, "a", a2, NULL, member_cb, &acc), 0);
    assert_int_equal(acc.n, 0);

    /* Another organization's group does not exist from here. */
    assert_int_equal(g->members(f->s, "b", gid, name, member_cb, &acc),
                     STORE_ENOENT);
    assert_int_equal(g->members(f->s, "a", "c_000000000000", name,
                                member_cb, &acc),
                     STORE_ENOENT);
}

static void test_channels(void **state)
{
    groups(*state, &channels);
}

static void test_projects(void **state)
{
    groups(*state, &projects);
}

/* ------------------------------------------------------------------------
 * Transactions
 * ------------------------------------------------------------------------ */

static void test_transactions(void **state)
{
    struct store *s = mem_open();
    const char *us[] = {"u"};
    const char *bad[] = {"u", "ghost"};
    char cid[STORE_ID_MAX + 1];
    struct acc acc = {0};

    seed(s, "o", us, 1);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_org_add(s, "gone", NULL), 0);
    assert_int_equal(store_rollback(s), 0);
    assert_int_equal(store_org_exists(s, "gone"), 0);
    assert_int_equal(store_rollback(s), 0); /* nothing open: fine */

    /* A failed group add inside a batch undoes only itself. */
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_org_add(s, "kept", NULL), 0);
    assert_int_equal(store_channel_add(s, "o", "bad", bad, 2, cid),
                     STORE_ENOENT);
    assert_int_equal(store_channel_add(s, "o", "good", us, 1, cid), 0);
    assert_int_equal(store_commit(s), 0);
    assert_int_equal(store_org_exists(s, "kept"), 1);
    assert_int_equal(store_channel_each(s, "o", group_cb, &acc), 0);
    assert_string_equal(acc.text, "good=1,");

    log_set_level(LOG_ERROR + 1); /* the next two log SQLite's refusal */
    assert_int_equal(store_commit(s), STORE_EIO);
    assert_int_equal(store_begin(s), 0);
    assert_int_equal(store_begin(s), STORE_EIO);
    log_set_level(LOG_WARN);
    assert_int_equal(store_rollback(s), 0);
    store_close(s);
    (void)state;
}

/* ------------------------------------------------------------------------
 * Server registration
 * ------------------------------------------------------------------------ */

static void test_server(void **state)
{
    struct fx *f = *state;
    struct store_server a = {0}, b = {0}, got;

    assert_int_equal(store_server_get(f->s, &got), STORE_ENOENT);
    a.pid = 42;
    snprintf(a.listen, sizeof a.listen, "127.0.0.1:8080");
    memset(a.admin_key, 'f', 64);
    a.started_ms = 1234;
    assert_int_equal(store_server_set(f->s, &a), 0);
    memset(&got, 0x55, sizeof got);
    assert_int_equal(store_server_get(f->s, &got), 0);
    assert_int_equal(got.pid, 42);
    assert_string_equal(got.listen, "127.0.0.1:8080");
    assert_string_equal(got.admin_key, a.admin_key);
    assert_int_equal(got.started_ms, 1234);

    b.pid = 43;
    snprintf(b.listen, sizeof b.listen, "[::1]:9090");
    snprintf(b.admin_key, sizeof b.admin_key, "00ff");
    b.started_ms = 5678;
    assert_int_equal(store_server_set(f->s, &b), 0);
    assert_int_equal(store_server_get(f->s, &got), 0);
    assert_int_equal(got.pid, 43);
    assert_string_equal(got.listen, "[::1]:9090");

    /* The old server's exit must not remove the new registration. */
    assert_int_equal(store_server_clear(f->s, 42), STORE_ENOENT);
    assert_int_equal(store_server_get(f->s, &got), 0);
    assert_int_equal(got.pid, 43);
    assert_int_equal(store_server_clear(f->s, 43), 0);
    assert_int_equal(store_server_get(f->s, &got), STORE_ENOENT);
    assert_int_equal(store_server_clear(f->s, 43), STORE_ENOENT);
}

/* ------------------------------------------------------------------------
 * Sharing the file
 * ------------------------------------------------------------------------ */

struct holder {
    struct store *s;
    int rc;
};

static void *commit_later(void *arg)
{
    struct holder *h = arg;
    struct timespec ts = {0, 300 * 1000000L};
    nanosleep(&ts, NULL);
    h->rc = store_commit(h->s);
    return NULL;
}

/* The CLI beside a running server: a second handle whose write arrives
 * while the first holds the write lock waits for it (busy timeout) instead
 * of failing. */
static void test_data_version(void **state)
{
    struct fx *f = *state;
    struct store *cli = NULL;
    char err[STORE_ERRLEN];

    assert_int_equal(store_open(&cli, f->path, err), 0);
    int64_t v0 = store_data_version(f->s);
    assert_true(v0 >= 0);
    /* Our own commits do not move it... */
    assert_int_equal(store_org_add(f->s, "mine", NULL), 0);
    assert_int_equal(store_data_version(f->s), v0);
    /* ...another connection's do. */
    assert_int_equal(store_org_add(cli, "theirs", NULL), 0);
    int64_t v1 = store_data_version(f->s);
    assert_true(v1 != v0);
    assert_int_equal(store_data_version(f->s), v1);
    store_close(cli);
}

static void test_two_handles(void **state)
{
    struct fx *f = *state;
    struct store *cli = NULL;
    struct holder h = {f->s, -99};
    char err[STORE_ERRLEN];
    pthread_t t;
    int64_t t0, waited;

    assert_int_equal(store_open(&cli, f->path, err), 0);
    /* Plain interleaved writes. */
    assert_int_equal(store_org_add(f->s, "srv", NULL), 0);
    assert_int_equal(store_org_add(cli, "cli", NULL), 0);
    assert_int_equal(store_org_exists(f->s, "cli"), 1);
    assert_int_equal(store_org_exists(cli, "srv"), 1);

    /* Contended write. */
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_org_add(f->s, "held", NULL), 0);
    assert_int_equal(pthread_create(&t, NULL, commit_later, &h), 0);
    t0 = mono_ms();
    assert_int_equal(store_org_add(cli, "waited", NULL), 0);
    waited = mono_ms() - t0;
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(h.rc, 0);
    assert_true(waited >= 200);
    assert_true(waited < 5000);
    assert_int_equal(store_org_exists(cli, "held"), 1);
    assert_int_equal(store_org_exists(f->s, "waited"), 1);

    /* Migration at open under a live handle is a no-op. */
    store_close(cli);
    assert_int_equal(store_open(&cli, f->path, err), 0);
    assert_int_equal(store_user_count(cli, NULL), 0);
    store_close(cli);
}

/* Returns the "busy" column of a TRUNCATE checkpoint from a fresh handle:
 * 0 when no connection holds a read snapshot. A statement left unreset by
 * the store would hold one and make this 1. */
static int checkpoint_busy(const char *path)
{
    sqlite3 *db = raw_open(path);
    int busy = raw_int(db, "PRAGMA wal_checkpoint(TRUNCATE)");
    sqlite3_close(db);
    return busy;
}

static void test_no_statement_left_open(void **state)
{
    struct fx *f = *state;
    const char *us[] = {"a", "b"};
    const char *bad[] = {"a", "zz"};
    unsigned char h[32] = {9};
    struct store_user u;
    struct store_session ss;
    struct store_server srv;
    struct acc acc = {0};
    char cid[STORE_ID_MAX + 1], err[STORE_ERRLEN];
    sqlite3 *reader;

    /* The probe works: an open read transaction elsewhere is seen. */
    reader = raw_open(f->path);
    assert_int_equal(sqlite3_exec(reader, "BEGIN", NULL, NULL, NULL), 0);
    assert_int_equal(raw_int(reader, "SELECT count(*) FROM users"), 0);
    assert_int_equal(store_org_add(f->s, "o", NULL), 0);
    assert_int_equal(checkpoint_busy(f->path), 1);
    assert_int_equal(sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL), 0);
    sqlite3_close(reader);
    assert_int_equal(checkpoint_busy(f->path), 0);

    /* Every kind of call, success and failure paths. */
    assert_int_equal(store_user_add(f->s, "o", "a", NULL, "A", NULL, NULL),
                     0);
    assert_int_equal(store_user_add(f->s, "o", "b", NULL, "B", NULL, NULL),
                     0);
    assert_int_equal(store_user_add(f->s, "o", "a", NULL, "A", NULL, NULL),
                     STORE_EEXIST);
    assert_int_equal(store_user_add(f->s, "q", "a", NULL, "A", NULL, NULL),
                     STORE_ENOENT);
    assert_int_equal(store_org_exists(f->s, "o"), 1);
    assert_int_equal(store_org_exists(f->s, "q"), 0);
    assert_int_equal(store_user_get(f->s, "o", "a", &u), 0);
    assert_int_equal(store_user_get(f->s, "o", "x", &u), STORE_ENOENT);
    assert_int_equal(store_user_by_email(f->s, "x@y", &u), STORE_ENOENT);
    assert_int_equal(store_user_each(f->s, NULL, user_cb, &acc), 0);
    assert_int_equal(store_user_each(f->s, "o", user_cb, &acc), 0);
    assert_int_equal(store_user_count(f->s, NULL), 2);
    assert_int_equal(store_user_count(f->s, "o"), 2);
    assert_int_equal(store_session_add(f->s, h, "o", "a", 10, NULL), 0);
    assert_int_equal(store_session_get(f->s, h, 0, &ss), 0);
    assert_int_equal(store_session_get(f->s, h, 10, &ss), STORE_ENOENT);
    assert_int_equal(store_channel_add(f->s, "o", "c", us, 2, cid), 0);
    assert_int_equal(store_channel_add(f->s, "o", "c", bad, 2, NULL),
                     STORE_ENOENT);
    assert_int_equal(store_channel_each(f->s, "o", group_cb, &acc), 0);
    assert_int_equal(store_channel_members(f->s, "o", cid, NULL, member_cb,
                                           &acc),
                     0);
    assert_int_equal(store_project_members(f->s, "o", cid, NULL, member_cb,
                                           &acc),
                     STORE_ENOENT);
    assert_int_equal(store_server_get(f->s, &srv), STORE_ENOENT);
    assert_int_equal(store_extra_set(f->s, "o", "a", "{}"), 0);
    assert_int_equal(store_extra_set(f->s, "o", "zz", "{}"), STORE_ENOENT);
    assert_int_equal(store_extra_set(f->s, "o", "b", NULL), 0);
    assert_int_equal(store_extra_set(f->s, "o", "zz", NULL), STORE_ENOENT);
    assert_int_equal(store_extra_each(f->s, NULL, extra_cb, &acc), 0);
    assert_int_equal(store_extra_each(f->s, "o", extra_cb, &acc), 0);
    assert_int_equal(store_presets_set(f->s, "o", "[]"), 0);
    assert_int_equal(store_presets_get(f->s, "o", err, sizeof err), 0);
    assert_int_equal(store_presets_get(f->s, "o", err, 1), STORE_EINVAL);
    assert_int_equal(store_presets_get(f->s, "q", err, sizeof err),
                     STORE_ENOENT);
    assert_int_equal(store_presets_set(f->s, "q", NULL), STORE_ENOENT);
    assert_int_equal(store_presets_set(f->s, "q", "[]"), STORE_ENOENT);
    assert_int_equal(store_check(f->s, err), 0);
    assert_int_equal(checkpoint_busy(f->path), 0);
}

/* ------------------------------------------------------------------------
 * Extras and presets (schema version 2)
 * ------------------------------------------------------------------------ */

/* Runs constant SQL on the fixture's database, from a connection of the
 * test's own (foreign keys on, as the store has them). */
static void db_exec(const struct fx *f, const char *q)
{
    if (pg_uri) {
        pg_exec1(q);
        return;
    }
    sqlite3 *db = raw_open(f->path);
    assert_int_equal(sqlite3_exec(db, "PRAGMA foreign_keys=ON", NULL, NULL,
                                  NULL),
                     SQLITE_OK);
    char *msg = NULL;
    if (sqlite3_exec(db, q, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", q, msg);
    sqlite3_close(db);
}

/* A string of n bytes of valid JSON: a quoted run of 'x'. */
static char *json_of(size_t n)
{
    char *j = malloc(n + 1);
    assert_non_null(j);
    assert_true(n >= 2);
    memset(j, 'x', n);
    j[0] = j[n - 1] = '"';
    j[n] = '\0';
    return j;
}

static void test_extras(void **state)
{
    struct store *s = mem_open();
    struct acc all = {0}, one = {0};
    const char *zu[] = {"zed", "amy"};
    const char *au[] = {"mia", "bo"};
    const char *dnd = "{\"message\":{\"text\":\"In a meeting \xf0\x9f\x93\x85"
                      " 'quoted' \\\"x\\\"\",\"emoji\":null},"
                      "\"tz\":\"Europe/Paris\",\"hide_last_seen\":true}";

    seed(s, "zeta", zu, 2);
    seed(s, "alpha", au, 2);
    /* Nothing set: no rows. */
    assert_int_equal(store_extra_each(s, NULL, extra_cb, &all), 0);
    assert_int_equal(all.n, 0);

    assert_int_equal(store_extra_set(s, "zeta", "zed", "{\"a\":1}"), 0);
    assert_int_equal(store_extra_set(s, "alpha", "mia", dnd), 0);
    assert_int_equal(store_extra_set(s, "zeta", "amy", "{}"), 0);
    /* Upsert: the second write replaces the first, no second row. */
    assert_int_equal(store_extra_set(s, "zeta", "zed", "{\"a\":2}"), 0);
    assert_int_equal(store_extra_each(s, NULL, extra_cb, &all), 0);
    char want[1024];
    snprintf(want, sizeof want,
             "alpha/mia=%s,zeta/amy={},zeta/zed={\"a\":2},", dnd);
    assert_string_equal(all.text, want);
    assert_int_equal(store_extra_each(s, "zeta", extra_cb, &one), 0);
    assert_string_equal(one.text, "zeta/amy={},zeta/zed={\"a\":2},");
    memset(&one, 0, sizeof one);
    assert_int_equal(store_extra_each(s, "nobody", extra_cb, &one), 0);
    assert_int_equal(one.n, 0);

    /* NULL and "" delete; deleting what is not set is no error. */
    assert_int_equal(store_extra_set(s, "zeta", "zed", NULL), 0);
    assert_int_equal(store_extra_set(s, "zeta", "amy", ""), 0);
    assert_int_equal(store_extra_set(s, "zeta", "amy", NULL), 0);
    assert_int_equal(store_extra_set(s, "alpha", "bo", ""), 0);
    memset(&all, 0, sizeof all);
    assert_int_equal(store_extra_each(s, NULL, extra_cb, &all), 0);
    snprintf(want, sizeof want, "alpha/mia=%s,", dnd);
    assert_string_equal(all.text, want);

    /* No such user (or organization): set and delete alike. */
    assert_int_equal(store_extra_set(s, "zeta", "ghost", "{}"), STORE_ENOENT);
    assert_int_equal(store_extra_set(s, "zeta", "ghost", NULL), STORE_ENOENT);
    assert_int_equal(store_extra_set(s, "nowhere", "zed", "{}"),
                     STORE_ENOENT);
    assert_int_equal(store_extra_set(s, "nowhere", "zed", ""), STORE_ENOENT);
    /* A user of another organization is not this one's. */
    assert_int_equal(store_extra_set(s, "alpha", "zed", "{}"), STORE_ENOENT);

    /* Limits: STORE_EXTRA_MAX bytes go in and come back whole. */
    char *big = json_of(STORE_EXTRA_MAX), *over = json_of(STORE_EXTRA_MAX + 1);
    assert_int_equal(store_extra_set(s, "zeta", "zed", big), 0);
    assert_int_equal(store_extra_set(s, "zeta", "amy", over), STORE_EINVAL);
    memset(&one, 0, sizeof one);
    assert_int_equal(store_extra_each(s, "zeta", extra_cb, &one), 0);
    assert_int_equal(one.n, 1);
    assert_int_equal(strlen(one.text), strlen("zeta/zed=,") + STORE_EXTRA_MAX);
    assert_memory_equal(one.text + strlen("zeta/zed="), big, STORE_EXTRA_MAX);
    /* Refused values change nothing. */
    assert_int_equal(store_extra_set(s, "zeta", "zed", over), STORE_EINVAL);
    memset(&one, 0, sizeof one);
    assert_int_equal(store_extra_each(s, "zeta", extra_cb, &one), 0);
    assert_int_equal(one.n, 1);
    free(big);
    free(over);
    assert_int_equal(store_extra_set(s, "", "zed", "{}"), STORE_EINVAL);
    assert_int_equal(store_extra_set(s, "zeta", "", "{}"), STORE_EINVAL);
    assert_int_equal(store_extra_set(s, NULL, "zed", "{}"), STORE_EINVAL);
    assert_int_equal(store_extra_set(s, "zeta", NULL, NULL), STORE_EINVAL);
    assert_int_equal(store_extra_each(s, "", extra_cb, &one), STORE_EINVAL);
    if (pg_uri) {
        /* PostgreSQL's text is UTF-8: an id that is not names nobody, a
         * value that is not is refused. */
        assert_int_equal(store_extra_set(s, "zeta", "z\xff", "{}"),
                         STORE_ENOENT);
        assert_int_equal(store_extra_set(s, "zeta", "amy", "\"\xc3\""),
                         STORE_EINVAL);
        assert_int_equal(store_extra_each(s, "z\xff", extra_cb, &one), 0);
    }
    store_close(s);
    (void)state;
}

/* A walk may run other statements from its callback, but not itself. */
struct extra_reenter {
    struct store *s;
    int inner_rc, calls;
};

static void extra_reenter_cb(void *ud, const char *org, const char *user,
                             const char *json)
{
    struct extra_reenter *r = ud;
    struct acc acc = {0};
    struct store_user u;
    r->calls++;
    r->inner_rc = store_extra_each(r->s, NULL, extra_cb, &acc);
    assert_int_equal(store_user_get(r->s, org, user, &u), 0);
    assert_string_equal(u.id, user);
    assert_string_equal(json, "{}");
}

static void test_extras_reentry(void **state)
{
    struct store *s = mem_open();
    const char *us[] = {"a", "b"};
    struct extra_reenter r = {s, 0, 0};

    seed(s, "o", us, 2);
    assert_int_equal(store_extra_set(s, "o", "a", "{}"), 0);
    assert_int_equal(store_extra_set(s, "o", "b", "{}"), 0);
    log_set_level(LOG_ERROR + 1); /* the refusal is logged; keep quiet */
    assert_int_equal(store_extra_each(s, NULL, extra_reenter_cb, &r), 0);
    log_set_level(LOG_WARN);
    assert_int_equal(r.calls, 2);
    assert_int_equal(r.inner_rc, STORE_EIO);
    store_close(s);
    (void)state;
}

/* The store has no user or organization delete: the schema's cascades
 * are checked by deleting the rows from outside. */
static void test_extras_cascade(void **state)
{
    struct fx *f = *state;
    const char *us[] = {"a", "b"};
    char out[64];

    seed(f->s, "o", us, 2);
    assert_int_equal(store_org_add(f->s, "empty", NULL), 0);
    assert_int_equal(store_extra_set(f->s, "o", "a", "{\"x\":1}"), 0);
    assert_int_equal(store_extra_set(f->s, "o", "b", "{\"x\":2}"), 0);
    assert_int_equal(store_presets_set(f->s, "empty", "[]"), 0);
    db_exec(f, "DELETE FROM users WHERE org = 'o' AND id = 'a'");
    assert_int_equal(db_int(f, "SELECT count(*) FROM user_extras"), 1);
    struct acc acc = {0};
    assert_int_equal(store_extra_each(f->s, NULL, extra_cb, &acc), 0);
    assert_string_equal(acc.text, "o/b={\"x\":2},");
    db_exec(f, "DELETE FROM organizations WHERE id = 'empty'");
    assert_int_equal(db_int(f, "SELECT count(*) FROM org_presets"), 0);
    assert_int_equal(store_presets_get(f->s, "empty", out, sizeof out),
                     STORE_ENOENT);
}

static void test_presets(void **state)
{
    struct store *s = mem_open();
    char out[STORE_PRESETS_MAX + 1];
    const char *p1 = "[{\"text\":\"Lunch\",\"emoji\":\"\xf0\x9f\x8d\x94\","
                     "\"expires\":\"1h\"}]";
    const char *p2 = "[]";

    assert_int_equal(store_org_add(s, "o", NULL), 0);
    assert_int_equal(store_org_add(s, "p", NULL), 0);
    strcpy(out, "junk");
    assert_int_equal(store_presets_get(s, "o", out, sizeof out),
                     STORE_ENOENT);
    assert_string_equal(out, "");
    assert_int_equal(store_presets_set(s, "o", p1), 0);
    assert_int_equal(store_presets_get(s, "o", out, sizeof out), 0);
    assert_string_equal(out, p1);
    assert_int_equal(store_presets_get(s, "p", out, sizeof out),
                     STORE_ENOENT);
    /* Replaced, not added to. */
    assert_int_equal(store_presets_set(s, "o", p2), 0);
    assert_int_equal(store_presets_get(s, "o", out, sizeof out), 0);
    assert_string_equal(out, p2);
    assert_int_equal(store_presets_set(s, "o", p1), 0);
    /* Exactly fits with its NUL; one byte less does not. */
    assert_int_equal(store_presets_get(s, "o", out, strlen(p1) + 1), 0);
    assert_string_equal(out, p1);
    assert_int_equal(store_presets_get(s, "o", out, strlen(p1)),
                     STORE_EINVAL);
    assert_int_equal(store_presets_get(s, "o", out, 0), STORE_EINVAL);
    assert_int_equal(store_presets_get(s, "o", NULL, 10), STORE_EINVAL);

    /* Back to the defaults: NULL (or ""), twice is fine. */
    assert_int_equal(store_presets_set(s, "o", NULL), 0);
    assert_int_equal(store_presets_get(s, "o", out, sizeof out),
                     STORE_ENOENT);
    assert_int_equal(store_presets_set(s, "o", NULL), 0);
    assert_int_equal(store_presets_set(s, "o", p2), 0);
    assert_int_equal(store_presets_set(s, "o", ""), 0);
    assert_int_equal(store_presets_get(s, "o", out, sizeof out),
                     STORE_ENOENT);

    /* Unknown organization: set and reset alike; get has none. */
    assert_int_equal(store_presets_set(s, "ghost", p1), STORE_ENOENT);
    assert_int_equal(store_presets_set(s, "ghost", NULL), STORE_ENOENT);
    assert_int_equal(store_presets_get(s, "ghost", out, sizeof out),
                     STORE_ENOENT);

    /* Limits. */
    char *big = json_of(STORE_PRESETS_MAX);
    char *over = json_of(STORE_PRESETS_MAX + 1);
    assert_int_equal(store_presets_set(s, "p", big), 0);
    assert_int_equal(store_presets_get(s, "p", out, sizeof out), 0);
    assert_string_equal(out, big);
    assert_int_equal(store_presets_set(s, "p", over), STORE_EINVAL);
    assert_int_equal(store_presets_get(s, "p", out, sizeof out), 0);
    assert_string_equal(out, big);
    free(big);
    free(over);
    assert_int_equal(store_presets_set(s, "", p1), STORE_EINVAL);
    assert_int_equal(store_presets_set(s, NULL, p1), STORE_EINVAL);
    assert_int_equal(store_presets_get(s, "", out, sizeof out), STORE_EINVAL);
    if (pg_uri) {
        assert_int_equal(store_presets_set(s, "o\xff", p1), STORE_ENOENT);
        assert_int_equal(store_presets_set(s, "o", "\"\xc3\""), STORE_EINVAL);
        assert_int_equal(store_presets_get(s, "o\xff", out, sizeof out),
                         STORE_ENOENT);
    }
    store_close(s);
    (void)state;
}

/* A version 1 database (the two tables of version 2 gone, the version
 * put back) is migrated at open and keeps every row; opening again
 * changes nothing. */
static void test_migrate_v1(void **state)
{
    struct fx *f = *state;
    struct store_user u;
    char err[STORE_ERRLEN], out[64];

    assert_int_equal(store_org_add(f->s, "o", NULL), 0);
    assert_int_equal(store_user_add(f->s, "o", "ann", NULL, "Ann", NULL,
                                    NULL),
                     0);
    assert_int_equal(store_user_set_presence(f->s, "o", "ann", 3, 3, 1234),
                     0);
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(schema_version(f), 2);
    db_exec(f, "DROP TABLE user_extras; DROP TABLE org_presets");
    db_exec(f, pg_uri ? "UPDATE presenced_schema SET version = 1"
                      : "PRAGMA user_version = 1");
    assert_int_equal(schema_version(f), 1);

    for (int i = 0; i < 2; i++) {
        assert_int_equal(store_open(&f->s, f->path, err), 0);
        assert_int_equal(schema_version(f), 2);
        assert_int_equal(store_user_get(f->s, "o", "ann", &u), 0);
        assert_int_equal(u.status, 3);
        assert_int_equal(u.manual, 3);
        assert_int_equal(u.last_seen_ms, 1234);
        if (i == 0) {
            assert_int_equal(store_presets_get(f->s, "o", out, sizeof out),
                             STORE_ENOENT);
            assert_int_equal(store_extra_set(f->s, "o", "ann", "{}"), 0);
            assert_int_equal(store_presets_set(f->s, "o", "[]"), 0);
        } else {
            assert_int_equal(store_presets_get(f->s, "o", out, sizeof out),
                             0);
            assert_string_equal(out, "[]");
        }
        store_close(f->s);
        f->s = NULL;
    }
    assert_int_equal(db_int(f, "SELECT count(*) FROM user_extras"), 1);
    assert_int_equal(store_open(&f->s, f->path, err), 0);
}

/* ------------------------------------------------------------------------
 * PostgreSQL only
 * ------------------------------------------------------------------------ */

struct opener {
    struct store *s;
    int rc;
    char err[STORE_ERRLEN];
};

static void *open_thread(void *arg)
{
    struct opener *o = arg;
    o->rc = store_open(&o->s, pg_uri, o->err);
    return NULL;
}

/* The version lives in presenced_schema (one row); opening again changes
 * nothing; two servers opening an empty database at once migrate it once
 * (the advisory lock), and both work. */
static void test_pg_schema_version(void **state)
{
    struct fx *f = *state;
    struct opener a = {0}, b = {0};
    pthread_t ta, tb;

    assert_string_equal(store_backend(f->s), "postgresql");
    assert_int_equal(db_int(f, "SELECT count(*) FROM presenced_schema"), 1);
    int v = schema_version(f);
    assert_true(v >= 1);
    assert_int_equal(store_org_add(f->s, "o", NULL), 0);
    store_close(f->s);
    f->s = NULL;
    for (int i = 0; i < 2; i++) {
        char err[STORE_ERRLEN];
        assert_int_equal(store_open(&f->s, pg_uri, err), 0);
        assert_int_equal(store_org_exists(f->s, "o"), 1);
        store_close(f->s);
        f->s = NULL;
    }
    assert_int_equal(schema_version(f), v);
    assert_int_equal(db_int(f, "SELECT count(*) FROM presenced_schema"), 1);

    pg_reset();
    assert_int_equal(pthread_create(&ta, NULL, open_thread, &a), 0);
    assert_int_equal(pthread_create(&tb, NULL, open_thread, &b), 0);
    assert_int_equal(pthread_join(ta, NULL), 0);
    assert_int_equal(pthread_join(tb, NULL), 0);
    if (a.rc || b.rc)
        fail_msg("concurrent open: %s / %s", a.err, b.err);
    assert_int_equal(store_org_add(a.s, "x", NULL), 0);
    assert_int_equal(store_org_exists(b.s, "x"), 1);
    assert_int_equal(schema_version(f), v);
    store_close(a.s);
    store_close(b.s);
}

static void test_pg_future_version_refused(void **state)
{
    struct fx *f = *state;
    char err[STORE_ERRLEN], q[80], want[STORE_ERRLEN];
    struct store *s2 = (struct store *)&err; /* must be reset to NULL */

    store_close(f->s);
    f->s = NULL;
    int v = schema_version(f);
    snprintf(q, sizeof q, "UPDATE presenced_schema SET version = %d", v + 1);
    pg_exec1(q);
    assert_int_equal(store_open(&s2, pg_uri, err), STORE_EIO);
    assert_null(s2);
    snprintf(want, sizeof want,
             "database schema version %d is newer than this presenced (%d);"
             " upgrade presenced",
             v + 1, v);
    assert_string_equal(err, want);
    assert_int_equal(schema_version(f), v + 1);
}

/* pg_uri with its password replaced (user:PASSWORD@). */
static void uri_with_password(char *out, size_t cap, const char *pw)
{
    const char *auth = strstr(pg_uri, "://") + 3;
    const char *at = strchr(auth, '@');
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    assert_non_null(colon);
    snprintf(out, cap, "%.*s:%s%s", (int)(colon - pg_uri), pg_uri, pw, at);
}

/* Reasons on one line, without the password; STORE_EDOWN only when no
 * server answered. */
static void test_pg_open_errors(void **state)
{
    char uri[1024], err[STORE_ERRLEN];
    struct store *s = NULL;
    const char *pw = strchr(strstr(pg_uri, "://") + 3, ':') + 1;
    char secret[256];
    snprintf(secret, sizeof secret, "%.*s", (int)(strchr(pw, '@') - pw), pw);

    uri_with_password(uri, sizeof uri, "Wrong-Secret-123");
    assert_int_equal(store_open(&s, uri, err), STORE_EIO);
    assert_null(s);
    assert_non_null(strstr(err, "password authentication failed"));
    assert_null(strchr(err, '\n'));
    assert_null(strstr(err, "Wrong-Secret-123"));
    assert_null(strstr(err, secret));

    /* A database that does not exist. */
    snprintf(uri, sizeof uri, "%.*s/no_such_db",
             (int)(strrchr(pg_uri, '/') - pg_uri), pg_uri);
    assert_int_equal(store_open(&s, uri, err), STORE_EIO);
    assert_non_null(strstr(err, "no_such_db"));
    assert_null(strchr(err, '\n'));
    assert_null(strstr(err, secret));

    /* Nothing listens on port 1 (privileged, never ours). */
    assert_int_equal(store_open(&s, "postgresql://u:Secret-9@127.0.0.1:1/x",
                                err),
                     STORE_EDOWN);
    assert_null(s);
    assert_true(strlen(err) > 0);
    assert_null(strchr(err, '\n'));
    assert_null(strstr(err, "Secret-9"));

    assert_int_equal(store_open(&s, "postgresql://h/x?nonsense=1", err),
                     STORE_EINVAL);
    assert_null(s);
    (void)state;
}

/* Rows that name a user: 1 + (i % 3) users "u<i>" of org o, all
 * inserted by one statement (100,000 store_user_add calls would take
 * minutes). */
#define BULK 100000

static void bulk_rows(struct store_presence *rows, char (*ids)[16], int base)
{
    for (int i = 0; i < BULK; i++) {
        /* Every 1000th row names a user that does not exist. */
        snprintf(ids[i], sizeof ids[i], i % 1000 == 7 ? "ghost%d" : "u%d", i);
        rows[i].org = "o";
        rows[i].user = ids[i];
        rows[i].status = (i + base) % 4;
        rows[i].manual = (i + base) % 5 - 1;
        rows[i].last_seen_ms = (int64_t)i * 7 + base;
    }
}

/* One call, 100,000 rows: the rows land, rows naming no user are skipped
 * (none is created), quotes and backslashes in ids survive the array
 * encoding, and a batch that fails leaves nothing written. */
static void test_pg_presence_write_bulk(void **state)
{
    struct fx *f = *state;
    struct store_presence *rows = calloc(BULK, sizeof *rows);
    char(*ids)[16] = calloc(BULK, 16);
    struct store_user u;
    const char *odd[] = {"q\"uo\\te", "a,b{c} d", "NULL"};
    assert_non_null(rows);
    assert_non_null(ids);

    assert_int_equal(store_org_add(f->s, "o", NULL), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(store_user_add(f->s, "o", odd[i], NULL, "x", NULL,
                                        NULL),
                         0);
    pg_exec1("INSERT INTO users(org, id, name, created_ms)"
             " SELECT 'o', 'u' || g, 'n', 0 FROM generate_series(0, 99999) g"
             " WHERE g % 1000 <> 7");
    assert_int_equal(store_user_count(f->s, "o"), 3 + BULK - BULK / 1000);

    bulk_rows(rows, ids, 0);
    /* The odd ids take three of the ghost rows' places. */
    for (int i = 0; i < 3; i++)
        rows[7 + 1000 * i].user = odd[i];
    int64_t t0 = mono_ms();
    assert_int_equal(store_presence_write(f->s, rows, BULK), 0);
    print_message("presence_write of %d rows: %lld ms\n", BULK,
                  (long long)(mono_ms() - t0));

    const char *match = "SELECT count(*) FROM users WHERE id ~ '^u[0-9]+$'"
                        " AND status = (substr(id, 2)::int + %d) %% 4"
                        " AND coalesce(manual, -1) ="
                        " (substr(id, 2)::int + %d) %% 5 - 1"
                        " AND last_seen_ms = substr(id, 2)::bigint * 7 + %d";
    char q[512];
    snprintf(q, sizeof q, match, 0, 0, 0);
    assert_int_equal(db_int(f, q), BULK - BULK / 1000);
    assert_int_equal(store_user_count(f->s, NULL), 3 + BULK - BULK / 1000);
    for (int i = 0; i < 3; i++) {
        int k = 7 + 1000 * i;
        assert_int_equal(store_user_get(f->s, "o", odd[i], &u), 0);
        assert_int_equal(u.status, k % 4);
        assert_int_equal(u.manual, k % 5 - 1);
        assert_int_equal(u.last_seen_ms, (int64_t)k * 7);
    }

    /* A batch that fails on one row (a trigger refuses it) writes none. */
    pg_exec1("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS"
             " $$BEGIN IF NEW.id = 'u50000' THEN RAISE EXCEPTION 'refused';"
             " END IF; RETURN NEW; END$$;"
             "CREATE TRIGGER refuse BEFORE UPDATE ON users FOR EACH ROW"
             " EXECUTE FUNCTION refuse()");
    bulk_rows(rows, ids, 1);
    log_set_level(LOG_ERROR + 1);
    assert_int_equal(store_presence_write(f->s, rows, BULK), STORE_EIO);
    log_set_level(LOG_WARN);
    snprintf(q, sizeof q, match, 1, 1, 1);
    assert_int_equal(db_int(f, q), 0);
    snprintf(q, sizeof q, match, 0, 0, 0);
    assert_int_equal(db_int(f, q), BULK - BULK / 1000);
    /* The store is fine afterwards. */
    pg_exec1("DROP TRIGGER refuse ON users");
    assert_int_equal(store_presence_write(f->s, rows, BULK), 0);
    snprintf(q, sizeof q, match, 1, 1, 1);
    assert_int_equal(db_int(f, q), BULK - BULK / 1000);
    free(rows);
    free(ids);
}

/* data_version moves on writes to what a server caches (by anyone, this
 * connection included), never on presence. */
static void test_pg_data_version(void **state)
{
    struct fx *f = *state;
    struct store *cli = NULL;
    char err[STORE_ERRLEN];
    struct store_presence p = {"o", "ann", 1, -1, 5};

    assert_int_equal(store_open(&cli, f->path, err), 0);
    int64_t v0 = store_data_version(f->s);
    assert_true(v0 >= 0);
    assert_int_equal(store_data_version(f->s), v0);
    assert_int_equal(store_org_add(cli, "o", NULL), 0);
    int64_t v1 = store_data_version(f->s);
    assert_true(v1 != v0);
    assert_int_equal(store_user_add(f->s, "o", "ann", NULL, "Ann", NULL,
                                    NULL),
                     0);
    int64_t v2 = store_data_version(f->s);
    assert_true(v2 != v1);

    assert_int_equal(store_presence_write(f->s, &p, 1), 0);
    assert_int_equal(store_user_set_presence(cli, "o", "ann", 2, 2, 9), 0);
    assert_int_equal(store_reset_stale(f->s, 100), 1);
    /* Extras go with the presence batch: they do not move it either. */
    assert_int_equal(store_extra_set(cli, "o", "ann", "{\"a\":1}"), 0);
    assert_int_equal(store_extra_set(f->s, "o", "ann", NULL), 0);
    assert_int_equal(store_data_version(f->s), v2);
    /* An organization's presets do, as its name does. */
    assert_int_equal(store_presets_set(cli, "o", "[]"), 0);
    int64_t v2p = store_data_version(f->s);
    assert_true(v2p != v2);
    assert_int_equal(store_presets_set(cli, "o", NULL), 0);
    assert_true(store_data_version(f->s) != v2p);
    v2 = store_data_version(f->s);

    assert_int_equal(store_user_set_name(cli, "o", "ann", "Ann B"), 0);
    int64_t v3 = store_data_version(f->s);
    assert_true(v3 != v2);
    const char *us[] = {"ann"};
    assert_int_equal(store_channel_add(cli, "o", "c", us, 1, NULL), 0);
    assert_true(store_data_version(f->s) != v3);
    store_close(cli);
}

/* This connection's backend killed by the server (an administrator, a
 * failover): the op that finds out returns STORE_EDOWN, the next one
 * reconnects and works; a transaction open then is gone (commit
 * STORE_EDOWN, rollback fine). */
/* (A test that failed before may have left a connection open: it is
 * killed too, harmlessly.) */
/* pg_terminate_backend() only signals: the backend may still answer a
 * query sent at once (seen on a loaded machine). Kills, then waits until
 * no such backend is left (bounded), so the next op finds it gone. */
static int64_t kill_backends(const struct fx *f)
{
    const char *kill = "SELECT count(pg_terminate_backend(pid))"
                       " FROM pg_stat_activity"
                       " WHERE application_name = 'presenced'"
                       " AND pid <> pg_backend_pid()";
    const char *left = "SELECT count(*) FROM pg_stat_activity"
                       " WHERE application_name = 'presenced'"
                       " AND pid <> pg_backend_pid()";
    int64_t n = db_int(f, kill);
    for (int i = 0; i < 1000 && db_int(f, left) > 0; i++)
        usleep(10000);
    return n;
}

static void test_pg_reconnect_terminated(void **state)
{
    struct fx *f = *state;

    assert_int_equal(store_org_add(f->s, "o", NULL), 0);
    log_set_level(LOG_ERROR + 1);
    assert_true(kill_backends(f) >= 1);
    /* Outside a transaction the loss is found before the op (the socket
     * is seen closed while idle: reconnected, answered) or by it
     * (STORE_EDOWN): the next op works either way. */
    int rc = store_org_exists(f->s, "o");
    assert_true(rc == STORE_EDOWN || rc == 1);
    assert_int_equal(store_org_exists(f->s, "o"), 1);

    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_org_add(f->s, "lost", NULL), 0);
    assert_true(kill_backends(f) >= 1);
    assert_int_equal(store_org_add(f->s, "more", NULL), STORE_EDOWN);
    assert_int_equal(store_org_add(f->s, "more", NULL), STORE_EDOWN);
    assert_int_equal(store_commit(f->s), STORE_EDOWN);
    assert_int_equal(store_org_exists(f->s, "lost"), 0);

    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_org_add(f->s, "lost2", NULL), 0);
    assert_true(kill_backends(f) >= 1);
    assert_int_equal(store_rollback(f->s), 0);
    assert_int_equal(store_org_exists(f->s, "lost2"), 0);
    assert_int_equal(store_org_add(f->s, "after", NULL), 0);
    log_set_level(LOG_WARN);
    assert_int_equal(store_org_exists(f->s, "after"), 1);
}

static void pg_ctl(const char *verb)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s %s", getenv("PRESENCED_TEST_PG_CTL"), verb);
    assert_int_equal(system(cmd), 0);
}

/* The server stopped and started again (PRESENCED_TEST_PG_CTL, from
 * tests/pgcluster.py): while it is down every op returns STORE_EDOWN
 * without waiting out a connect timeout, and after it is back the same
 * store works again. */
static void test_pg_restart(void **state)
{
    struct fx *f = *state;
    int64_t t0, slowest = 0;
    int rc = -99;

    if (!getenv("PRESENCED_TEST_PG_CTL")) {
        print_message("no PRESENCED_TEST_PG_CTL: restart not tested\n");
        skip();
    }
    assert_int_equal(store_org_add(f->s, "o", NULL), 0);
    assert_int_equal(store_begin(f->s), 0);
    assert_int_equal(store_org_add(f->s, "inflight", NULL), 0);
    log_set_level(LOG_ERROR + 1);
    pg_ctl("stop");
    assert_int_equal(store_commit(f->s), STORE_EDOWN);
    assert_int_equal(store_rollback(f->s), 0);
    for (int i = 0; i < 50; i++) {
        t0 = mono_ms();
        assert_int_equal(store_org_exists(f->s, "o"), STORE_EDOWN);
        if (mono_ms() - t0 > slowest)
            slowest = mono_ms() - t0;
    }
    /* Far below connect_timeout (5 s): nothing waits for the server. */
    assert_true(slowest < 2500);
    struct store *s2 = NULL;
    char err[STORE_ERRLEN];
    assert_int_equal(store_open(&s2, pg_uri, err), STORE_EDOWN);

    pg_ctl("start");
    /* The backoff is at most 2 s: within a generous deadline it works. */
    t0 = mono_ms();
    while (mono_ms() - t0 < 30000) {
        rc = store_org_exists(f->s, "o");
        if (rc != STORE_EDOWN)
            break;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    log_set_level(LOG_WARN);
    assert_int_equal(rc, 1);
    assert_int_equal(store_org_exists(f->s, "inflight"), 0);
    assert_int_equal(store_org_add(f->s, "after", NULL), 0);
}

/* Tests of the store's contract, run on every backend. */
#define COMMON_TESTS                                                           \
    cmocka_unit_test(test_memory_open),                                        \
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup,         \
                                        teardown),                             \
        cmocka_unit_test_setup_teardown(test_no_history_table, setup,          \
                                        teardown),                             \
        cmocka_unit_test_setup_teardown(test_check_ok, setup, teardown),       \
        cmocka_unit_test(test_org_user_basic),                                 \
        cmocka_unit_test(test_duplicates),                                     \
        cmocka_unit_test(test_user_unknown_org),                               \
        cmocka_unit_test(test_validation),                                     \
        cmocka_unit_test(test_generated_ids),                                  \
        cmocka_unit_test(test_generated_id_collision),                         \
        cmocka_unit_test_setup_teardown(test_tricky_strings, setup,            \
                                        teardown),                             \
        cmocka_unit_test(test_presence_and_each),                              \
        cmocka_unit_test(test_each_reentry),                                   \
        cmocka_unit_test(test_reset_stale),                                    \
        cmocka_unit_test(test_sessions),                                       \
        cmocka_unit_test(test_session_each),                                   \
        cmocka_unit_test_setup_teardown(test_channels, setup, teardown),       \
        cmocka_unit_test_setup_teardown(test_projects, setup, teardown),       \
        cmocka_unit_test(test_transactions),                                   \
        cmocka_unit_test_setup_teardown(test_server, setup, teardown),       \
        cmocka_unit_test(test_extras),                                         \
        cmocka_unit_test(test_extras_reentry),                                 \
        cmocka_unit_test_setup_teardown(test_extras_cascade, setup,            \
                                        teardown),                             \
        cmocka_unit_test(test_presets),                                        \
        cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown)

/* Without PRESENCED_TEST_PG: SQLite only, as always. With it: SQLite, then
 * PostgreSQL; PRESENCED_TEST_DB_ONLY_PG=1 skips SQLite (make unit-pg). */
int main(void)
{
    const struct CMUnitTest sqlite_tests[] = {
        COMMON_TESTS,
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_lock),
        cmocka_unit_test_setup_teardown(test_wal_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_future_version_refused, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_two_handles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_statement_left_open, setup,
                                        teardown),
    };
    const struct CMUnitTest pg_tests[] = {
        COMMON_TESTS,
        cmocka_unit_test_setup_teardown(test_pg_schema_version, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pg_future_version_refused,
                                        setup, teardown),
        cmocka_unit_test(test_pg_open_errors),
        cmocka_unit_test_setup_teardown(test_pg_presence_write_bulk, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pg_data_version, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pg_reconnect_terminated, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pg_restart, setup, teardown),
    };
    const char *uri = getenv("PRESENCED_TEST_PG");
    const char *only = getenv("PRESENCED_TEST_DB_ONLY_PG");
    int fails = 0;

    /* Schema migrations log at INFO; the tests want only problems. */
    log_set_level(LOG_WARN);
    if (only && only[0] && strcmp(only, "0") != 0) {
        if (!uri || !uri[0]) {
            fprintf(stderr, "test_store: PRESENCED_TEST_DB_ONLY_PG without "
                            "PRESENCED_TEST_PG (use tests/pgcluster.py run)\n");
            return 1;
        }
    } else {
        fails += cmocka_run_group_tests_name("sqlite", sqlite_tests, NULL,
                                             NULL);
    }
    if (uri && uri[0]) {
        pg_uri = uri;
        fails += cmocka_run_group_tests_name("postgresql", pg_tests, NULL,
                                             NULL);
    }
    return fails ? 1 : 0;
}
