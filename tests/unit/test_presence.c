/* test_presence.c - unit tests for the pure presence core.
 *
 * As wslay's tests: each test scripts events against a fake clock, the
 * announce callback appends one line per event to a log, and the test
 * compares the log with the exact expected sequence, then clears it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "presence/presence.h"

#define GRACE 5000
#define LOGIN 60000
#define RESTART 30000

struct rec {
    char org[16], user[16], name[16];
    enum presence_status status, manual;
    enum presence_reason reason;
    uint64_t seq;
    int64_t last_seen;
    unsigned nconns;
};

struct fx {
    struct presence *p;
    char log[4096];       /* "org/user STATUS reason seq;" per event */
    struct rec ev[64];    /* the same events, field by field */
    size_t n;
};

static void copy(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src);
}

static void on_event(void *ud, const struct presence_event *ev)
{
    struct fx *f = ud;
    struct rec *r;
    size_t len = strlen(f->log);

    snprintf(f->log + len, sizeof(f->log) - len, "%s/%s %s %s %llu;",
             ev->m.org, ev->m.user, presence_status_name(ev->m.status),
             presence_reason_name(ev->reason), (unsigned long long)ev->seq);
    assert_true(f->n < 64);
    r = &f->ev[f->n++];
    /* Strings are lent: copy them. */
    copy(r->org, sizeof(r->org), ev->m.org);
    copy(r->user, sizeof(r->user), ev->m.user);
    copy(r->name, sizeof(r->name), ev->m.name);
    r->status = ev->m.status;
    r->manual = ev->m.manual;
    r->reason = ev->reason;
    r->seq = ev->seq;
    r->last_seen = ev->m.last_seen_ms;
    r->nconns = ev->m.nconns;
}

/* Asserts the events since the last check, at the caller's line. The log
 * is cleared first so that a failure is reported once, not again by the
 * teardown. */
#define expect_log(f, want) \
    do { \
        char got_[sizeof((f)->log)]; \
        memcpy(got_, (f)->log, sizeof(got_)); \
        (f)->log[0] = '\0'; \
        (f)->n = 0; \
        assert_string_equal(got_, (want)); \
    } while (0)

static const struct presence_opts opts = {GRACE, LOGIN, RESTART};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    f->p = presence_new(&opts, on_event, f);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    /* Every test must have checked every event it caused. */
    assert_string_equal(f->log, "");
    presence_free(f->p);
    free(f);
    return 0;
}

static void add(struct fx *f, const char *org, const char *user)
{
    assert_int_equal(presence_add_user(f->p, org, user, NULL,
                                       PRESENCE_OFFLINE, PRESENCE_UNSET, 0, 0),
                     0);
}

/* One member snapshot through presence_get. */
static void get_cb(void *ud, const struct presence_member *m)
{
    struct rec *r = ud;

    copy(r->org, sizeof(r->org), m->org);
    copy(r->user, sizeof(r->user), m->user);
    copy(r->name, sizeof(r->name), m->name);
    r->status = m->status;
    r->manual = m->manual;
    r->last_seen = m->last_seen_ms;
    r->nconns = m->nconns;
}

static struct rec get(struct fx *f, const char *org, const char *user)
{
    struct rec r;

    memset(&r, 0, sizeof(r));
    assert_int_equal(presence_get(f->p, org, user, get_cb, &r), 0);
    return r;
}

/* Collects member ids ("org/user status;") in call order. */
struct list_acc {
    char s[1024];
    int n;
};

static void list_cb(void *ud, const struct presence_member *m)
{
    struct list_acc *a = ud;
    size_t len = strlen(a->s);

    snprintf(a->s + len, sizeof(a->s) - len, "%s/%s %s;", m->org, m->user,
             presence_status_name(m->status));
    a->n++;
}

/* ------------------------------------------------------------------------ */

static void test_names(void **state)
{
    enum presence_status s = PRESENCE_UNSET;

    (void)state;
    assert_string_equal(presence_status_name(PRESENCE_ONLINE), "ONLINE");
    assert_string_equal(presence_status_name(PRESENCE_AWAY), "AWAY");
    assert_string_equal(presence_status_name(PRESENCE_BUSY), "BUSY");
    assert_string_equal(presence_status_name(PRESENCE_OFFLINE), "OFFLINE");
    assert_string_equal(presence_reason_name(PRESENCE_R_CONNECT), "connect");
    assert_string_equal(presence_reason_name(PRESENCE_R_IDLE), "idle");
    assert_string_equal(presence_reason_name(PRESENCE_R_ACTIVE), "active");
    assert_string_equal(presence_reason_name(PRESENCE_R_MANUAL), "manual");
    assert_string_equal(presence_reason_name(PRESENCE_R_LOGIN), "login");
    assert_string_equal(presence_reason_name(PRESENCE_R_LOGOUT), "logout");
    assert_string_equal(presence_reason_name(PRESENCE_R_DISCONNECT),
                        "disconnect");
    assert_string_equal(presence_reason_name(PRESENCE_R_GRACE_EXPIRED),
                        "grace_expired");
    assert_string_equal(presence_reason_name(PRESENCE_R_STALE), "stale");
    assert_string_equal(presence_reason_name(PRESENCE_R_RESTART), "restart");

    assert_int_equal(presence_status_parse("ONLINE", &s), 0);
    assert_int_equal(s, PRESENCE_ONLINE);
    assert_int_equal(presence_status_parse("AWAY", &s), 0);
    assert_int_equal(s, PRESENCE_AWAY);
    assert_int_equal(presence_status_parse("BUSY", &s), 0);
    assert_int_equal(s, PRESENCE_BUSY);
    assert_int_equal(presence_status_parse("OFFLINE", &s), 0);
    assert_int_equal(s, PRESENCE_OFFLINE);
    s = PRESENCE_UNSET;
    assert_int_equal(presence_status_parse("online", &s), -1);
    assert_int_equal(presence_status_parse("Busy", &s), -1);
    assert_int_equal(presence_status_parse("ONLINE ", &s), -1);
    assert_int_equal(presence_status_parse("", &s), -1);
    assert_int_equal(presence_status_parse("UNSET", &s), -1);
    assert_int_equal(presence_status_parse(NULL, &s), -1);
    assert_int_equal(s, PRESENCE_UNSET);
}

static void test_connect_disconnect_now(void **state)
{
    struct fx *f = *state;
    struct presence_conn *c;
    struct rec r;

    add(f, "acme", "alice");
    c = presence_connect(f->p, "acme", "alice", 7, PRESENCE_ONLINE, 1000);
    assert_non_null(c);
    expect_log(f, "acme/alice ONLINE connect 1;");
    r = get(f, "acme", "alice");
    assert_int_equal(r.status, PRESENCE_ONLINE);
    assert_int_equal(r.manual, PRESENCE_UNSET);
    assert_int_equal(r.nconns, 1);
    assert_int_equal(r.last_seen, 1000);

    presence_disconnect(f->p, c, 2000, PRESENCE_NOW);
    expect_log(f, "acme/alice OFFLINE disconnect 2;");
    r = get(f, "acme", "alice");
    assert_int_equal(r.nconns, 0);
    assert_int_equal(r.last_seen, 2000);
    assert_int_equal(presence_tick(f->p, 100000), -1);
    expect_log(f, "");
}

static void test_event_fields(void **state)
{
    struct fx *f = *state;

    assert_int_equal(presence_add_user(f->p, "acme", "bob", "Bob B",
                                       PRESENCE_OFFLINE, PRESENCE_BUSY, 5, 0),
                     0);
    assert_non_null(presence_connect(f->p, "acme", "bob", 0,
                                     PRESENCE_ONLINE, 1234));
    assert_int_equal(f->n, 1);
    assert_string_equal(f->ev[0].org, "acme");
    assert_string_equal(f->ev[0].user, "bob");
    assert_string_equal(f->ev[0].name, "Bob B");
    assert_int_equal(f->ev[0].status, PRESENCE_BUSY);
    assert_int_equal(f->ev[0].manual, PRESENCE_BUSY);
    assert_int_equal(f->ev[0].reason, PRESENCE_R_CONNECT);
    assert_int_equal(f->ev[0].seq, 1);
    assert_int_equal(f->ev[0].last_seen, 1234);
    assert_int_equal(f->ev[0].nconns, 1);
    expect_log(f, "acme/bob BUSY connect 1;");
}

static void test_multi_conn_aggregation(void **state)
{
    struct fx *f = *state;
    struct presence_conn *c1, *c2, *c3;

    add(f, "acme", "alice");
    c1 = presence_connect(f->p, "acme", "alice", 1, PRESENCE_ONLINE, 100);
    c2 = presence_connect(f->p, "acme", "alice", 2, PRESENCE_ONLINE, 100);
    c3 = presence_connect(f->p, "acme", "alice", 3, PRESENCE_ONLINE, 100);
    expect_log(f, "acme/alice ONLINE connect 1;");
    assert_int_equal(get(f, "acme", "alice").nconns, 3);

    /* ONLINE wins while any connection is ONLINE. */
    assert_int_equal(presence_conn_auto(f->p, c1, PRESENCE_AWAY, 200), 0);
    assert_int_equal(presence_conn_auto(f->p, c2, PRESENCE_OFFLINE, 200), 0);
    expect_log(f, "");
    assert_int_equal(presence_conn_auto(f->p, c3, PRESENCE_AWAY, 200), 0);
    expect_log(f, "acme/alice AWAY idle 2;");
    /* AWAY wins over OFFLINE. */
    assert_int_equal(presence_conn_auto(f->p, c1, PRESENCE_OFFLINE, 300), 0);
    expect_log(f, "");
    assert_int_equal(presence_conn_auto(f->p, c3, PRESENCE_OFFLINE, 300), 0);
    expect_log(f, "acme/alice OFFLINE idle 3;");
    assert_int_equal(get(f, "acme", "alice").nconns, 3);
    /* Up from OFFLINE: AWAY then ONLINE, both "active". */
    assert_int_equal(presence_conn_auto(f->p, c3, PRESENCE_AWAY, 400), 0);
    assert_int_equal(presence_conn_auto(f->p, c2, PRESENCE_ONLINE, 400), 0);
    expect_log(f, "acme/alice AWAY active 4;acme/alice ONLINE active 5;");
    /* A disconnect leaving connections whose aggregate differs. */
    presence_disconnect(f->p, c2, 500, 0);
    expect_log(f, "acme/alice AWAY disconnect 6;");
    /* One leaving the aggregate unchanged announces nothing. */
    presence_disconnect(f->p, c1, 600, 0);
    expect_log(f, "");
    /* A new connection raises AWAY to ONLINE. */
    c1 = presence_connect(f->p, "acme", "alice", 4, PRESENCE_ONLINE, 700);
    expect_log(f, "acme/alice ONLINE connect 7;");
    presence_disconnect(f->p, c1, 800, PRESENCE_NOW);
    expect_log(f, "acme/alice AWAY disconnect 8;");
    presence_disconnect(f->p, c3, 900, PRESENCE_NOW);
    expect_log(f, "acme/alice OFFLINE disconnect 9;");
}

static void test_same_status_twice(void **state)
{
    struct fx *f = *state;
    struct presence_conn *c;

    add(f, "acme", "alice");
    c = presence_connect(f->p, "acme", "alice", 0, PRESENCE_ONLINE, 100);
    assert_non_null(presence_connect(f->p, "acme", "alice", 0,
                                     PRESENCE_ONLINE, 100));
    assert_int_equal(presence_conn_auto(f->p, c, PRESENCE_ONLINE, 150), 0);
    expect_log(f, "acme/alice ONLINE connect 1;");
    assert_int_equal(presence_set_manual(f->p, "acme", "alice", PRESENCE_BUSY,
                                         200), 0);
    assert_int_equal(presence_set_manual(f->p, "acme", "alice", PRESENCE_BUSY,
                                         300), 0);
    expect_log(f, "acme/alice BUSY manual 2;");
    assert_int_equal(presence_set_manual(f->p, "acme", "alice",
                                         PRESENCE_ONLINE, 400), 0);
    assert_int_equal(presence_set_manual(f->p, "acme", "alice",
                                         PRESENCE_ONLINE, 500), 0);
    expect_log(f, "acme/alice ONLINE manual 3;");
    /* A login with a connection open opens no window. */
    assert_int_equal(presence_login(f->p, "acme", "alice", 600), 0);
    assert_int_equal(presence_tick(f->p, 600), -1);
    expect_log(f, "");
}

static void test_invalid_args(void **state)
{
    struct fx *f = *state;
    struct presence_conn *c;
    struct rec r;

    add(f, "acme", "alice");
    assert_int_equal(presence_add_user(f->p, "acme", "x", NULL,
                                       PRESENCE_UNSET, PRESENCE_UNSET, 0, 0),
                     PRESENCE_EINVAL);
    assert_int_equal(presence_add_user(f->p, "acme", "x", NULL,
                                       PRESENCE_OFFLINE, PRESENCE_ONLINE, 0, 0),
                     PRESENCE_EINVAL);
    assert_int_equal(presence_add_user(f->p, NULL, "x", NULL,
                                       PRESENCE_OFFLINE, PRESENCE_UNSET, 0, 0),
                     PRESENCE_EINVAL);
    assert_int_equal(presence_add_user(f->p, "acme", NULL, NULL,
                                       PRESENCE_OFFLINE, PRESENCE_UNSET, 0, 0),
                     PRESENCE_EINVAL);
    assert_int_equal(presence_get(f->p, "acme", "x", get_cb, &r),
                     PRESENCE_ENOENT);

    c = presence_connect(f->p, "acme", "alice", 0, PRESENCE_ONLINE, 100);
    expect_log(f, "acme/alice ONLINE connect 1;");
    assert_int_equal(presence_conn_auto(f->p, c, PRESENCE_BUSY, 200),
                     PRESENCE_EINVAL);
    assert_int_equal(presence_conn_auto(f->p, c, PRESENCE_UNSET, 200),
                     PRESENCE_EINVAL);
    assert_int_equal(presence_set_manual(f->p, "acme", "alice",
                                         PRESENCE_UNSET, 200),
                     PRESENCE_EINVAL);
    assert_int_equal(presence_set_manual(f->p, "acme", "bob", PRESENCE_BUSY,
                                         200), PRESENCE_ENOENT);
    assert_int_equal(presence_set_manual(f->p, "other", "alice",
                                         PRESENCE_BUSY, 200), PRESENCE_ENOENT);
    assert_int_equal(presence_login(f->p, "acme", "bob", 200),
                     PRESENCE_ENOENT);
    assert_int_equal(presence_logout(f->p, "other", "alice", 0, 200),
                     PRESENCE_ENOENT);
    assert_null(presence_connect(f->p, "acme", "bob", 0, PRESENCE_ONLINE, 200));
    assert_null(presence_connect(f->p, "other", "alice", 0,
                                 PRESENCE_ONLINE, 200));
    assert_int_equal(presence_get(f->p, "other", "alice", get_cb, &r),
                     PRESENCE_ENOENT);
    /* Nothing above changed anything. */
    r = get(f, "acme", "alice");
    assert_int_equal(r.status, PRESENCE_ONLINE);
    assert_int_equal(r.manual, PRESENCE_UNSET);
    assert_int_equal(r.last_seen, 100);
    assert_int_equal(r.nconns, 1);
    expect_log(f, "");
}

static void test_manual_busy_survives_reconnect(void **state)
{
    struct fx *f = *state;
    struct presence_conn *c;

    add(f, "acme", "alice");
    c = presence_connect(f->p, "acme", "alice", 0, PRESENCE_ONLINE, 100);
    assert_int_equal(presence_set_manual(f->p, "acme", "alice", PRESENCE_BUSY,
                                         200), 0);
    expect_log(f, "acme/alice ONLINE connect 1;acme/alice BUSY manual 2;");
    /* Manual overrides auto reports. */
    assert_int_equal(presence_conn_auto(f->p, c, PRESENCE_AWAY, 300), 0);
    assert_int_equal(presence_conn_auto(f->p, c, PRESENCE_ONLINE, 400), 0);
    expect_log(f, "");
    presence_disconnect(f->p, c, 500, PRESENCE_NOW);
    expect_log(f, "acme/alice OFFLINE disconnect 3;");
    assert_int_equal(get(f, "acme", "alice").manual, PRESENCE_BUSY);
    c = presence_connect(f->p, "acme", "alice", 0, PRESENCE_ONLINE, 600);
    expect_log(f, "acme/alice BUSY connect 4;");
    /* Manual ONLINE clears it: the connection (AWAY) rules again. */
    assert_int_equal(presence_conn_auto(f->p, c, PRESENCE_AWAY, 700), 0);
    expect_log(f, "");
    assert_int_equal(presence_set_manual(f->p, "acme", "alice",
                                         PRESENCE_ONLINE, 800), 0);
    expect_log(f, "acme/alice AWAY manual 5;");
    assert_int_equal(get(f, "acme", "alice").manual, PRESENCE_UNSET);
    /* Manual AWAY while AWAY: effective unchanged, nothing announced. */
    assert_int_equal(presence_set_manual(f->p, "acme", "alice", PRESENCE_AWAY,
                                         900), 0);
    expect_log(f, "");
    assert_int_equal(get(f, "acme", "alice").manual, PRESENCE_AWAY);
    assert_int_equal(presence_conn_auto(f->p, c, PRESENCE_ONLINE, 1000), 0);
    expect_log(f, "");
}

static void test_appear_offline(void **state)
{
    struct fx *f = *state;
    struct rec r;

    add(f, "acme", "alice");
    assert_non_null(presence_connect(f->p, "acme", "alice", 0,
                                     PRESENCE_ONLINE, 100));
    assert_int_equal(presence_set_manual(f->p, "acme", "alice",
                                         PRESENCE_OFFLINE, 200), 0);
    expect_log(f, "acme/alice ONLINE connect 1;acme/alice OFFLINE manual 2;");
    assert_non_null(presence_connect(f->p, "acme", "alice", 0,
                                     PRESENCE_ONLINE, 300));
    assert_int_equal(presence_login(f->p, "acme", "alice", 350), 0);
    expect_log(f, "");
    r = get(f, "acme", "alice");
    assert_int_equal(r.status, PRESENCE_OFFLINE);
    assert_int_equal(r.manual, PRESENCE_OFFLINE);
    assert_int_equal(r.nconns, 2);
    assert_int_equal(presence_set_manual(f->p, "acme", "alice",
                                         PRESENCE_ONLINE, 400), 0);
    expect_log(f, "acme/alice ONLINE manual 3;");
}

/* A drain that records last_seen too: what the store would be given. */
struct seen_acc {
    char s[512];
};

static void seen_cb(void *ud, const struct presence_member *m)
{
    struct seen_acc *a = ud;
    size_t len = strlen(a->s);

    snprintf(a->s + len, sizeof(a->s) - len, "%s %s %lld;", m->user,
             presence_status_name(m->status), (long long)m->last_seen_ms);
}

/* What another member sees of one member (presence_public). */
static struct rec seen_by_others(struct fx *f, const char *org,
                                 const char *user)
{
    struct rec r;
    struct presence_member m;

    r = get(f, org, user);
    memset(&m, 0, sizeof m); /* no extras: presence_public() reads m.x */
    m.org = org;
    m.user = user;
    m.name = r.name;
    m.status = r.status;
    m.manual = r.manual;
    m.last_seen_ms = r.last_seen;
    m.nconns = r.nconns;
    presence_public(&m);
    r.status = m.status;
    r.manual = m.manual;
    r.last_seen = m.last_seen_ms;
    r.nconns = m.nconns;
    return r;
}

/* Hardening II #9: while a user appears offline, nothing it does shows:
 * no event, last_seen frozen at the moment it went invisible (in memory
 * and in what the store is given), no connection count for others. */
static void test_appear_offline_reveals_nothing(void **state)
{
    struct fx *f = *state;
    struct presence_conn *c1, *c2;
    struct seen_acc acc;
    struct rec inv, off;

    add(f, "acme", "alice");
    add(f, "acme", "bob");
    /* bob is really offline: connected once, gone at 150. */
    c1 = presence_connect(f->p, "acme", "bob", 0, PRESENCE_ONLINE, 100);
    presence_disconnect(f->p, c1, 150, PRESENCE_NOW);
    c1 = presence_connect(f->p, "acme", "alice", 0, PRESENCE_ONLINE, 100);
    assert_int_equal(presence_set_manual(f->p, "acme", "alice",
                                         PRESENCE_OFFLINE, 200), 0);
    expect_log(f, "acme/bob ONLINE connect 1;acme/bob OFFLINE disconnect 2;"
                  "acme/alice ONLINE connect 3;"
                  "acme/alice OFFLINE manual 4;");
    /* The store is told when it went: like a disconnect at 200. */
    memset(&acc, 0, sizeof(acc));
    presence_drain_dirty(f->p, seen_cb, &acc);
    assert_string_equal(acc.s, "bob OFFLINE 150;alice OFFLINE 200;");

    /* Everything a connected, active person does. */
    c2 = presence_connect(f->p, "acme", "alice", 5, PRESENCE_ONLINE, 1000);
    assert_int_equal(presence_conn_auto(f->p, c1, PRESENCE_AWAY, 2000), 0);
    assert_int_equal(presence_conn_auto(f->p, c1, PRESENCE_ONLINE, 3000), 0);
    assert_int_equal(presence_conn_auto(f->p, c2, PRESENCE_ONLINE, 3500), 0);
    assert_int_equal(presence_login(f->p, "acme", "alice", 4000), 0);
    assert_int_equal(presence_set_manual(f->p, "acme", "alice",
                                         PRESENCE_OFFLINE, 4500), 0);
    presence_disconnect(f->p, c1, 5000, 0);
    assert_int_equal(presence_tick(f->p, 5000 + GRACE), -1);
    assert_int_equal(presence_sweep_stale(f->p, 1000000, 1), 0);
    expect_log(f, "");
    assert_int_equal(get(f, "acme", "alice").last_seen, 200);
    memset(&acc, 0, sizeof(acc));
    presence_drain_dirty(f->p, seen_cb, &acc);
    assert_string_equal(acc.s, ""); /* nothing new for the store */

    /* Field by field, others see alice as they see bob (bar the time). */
    inv = seen_by_others(f, "acme", "alice");
    off = seen_by_others(f, "acme", "bob");
    assert_int_equal(inv.status, PRESENCE_OFFLINE);
    assert_int_equal(inv.status, off.status);
    assert_int_equal(inv.manual, off.manual);
    assert_int_equal(inv.nconns, 0);
    assert_int_equal(inv.nconns, off.nconns);
    assert_int_equal(inv.last_seen, 200);
    assert_int_equal(off.last_seen, 150);
    /* The user itself still has the truth. */
    inv = get(f, "acme", "alice");
    assert_int_equal(inv.nconns, 1);
    assert_int_equal(inv.manual, PRESENCE_OFFLINE);

    /* A logout (c2's session), still invisible: nothing either. */
    assert_int_equal(presence_logout(f->p, "acme", "alice", 5, 6000), 0);
    expect_log(f, "");
    assert_int_equal(get(f, "acme", "alice").last_seen, 200);

    /* Coming back: last_seen moves to that moment. */
    c1 = presence_connect(f->p, "acme", "alice", 0, PRESENCE_ONLINE, 7000);
    expect_log(f, "");
    assert_int_equal(presence_set_manual(f->p, "acme", "alice",
                                         PRESENCE_ONLINE, 8000), 0);
    expect_log(f, "acme/alice ONLINE manual 5;");
    assert_int_equal(get(f, "acme", "alice").last_seen, 8000);
    assert_int_equal(seen_by_others(f, "acme", "alice").nconns, 1);
    /* Another manual status than OFFLINE also ends it. */
    assert_int_equal(presence_set_manual(f->p, "acme", "alice",
                                         PRESENCE_OFFLINE, 9000), 0);
    assert_int_equal(presence_conn_auto(f->p, c1, PRESENCE_ONLINE, 9500), 0);
    assert_int_equal(get(f, "acme", "alice").last_seen, 9000);
    assert_int_equal(presence_set_manual(f->p, "acme", "alice",
                                         PRESENCE_BUSY, 10000), 0);
    expect_log(f, "acme/alice OFFLINE manual 6;acme/alice BUSY manual 7;");
    assert_int_equal(get(f, "acme", "alice").last_seen, 10000);
    presence_disconnect(f->p, c1, 11000, PRESENCE_NOW);
    expect_log(f, "acme/alice OFFLINE disconnect 8;");
}

/* The event of going invisible carries the frozen time, and a restart
 * from what the store kept shows nothing: no restore window, no event,
 * the same last_seen. */
static void test_appear_offline_across_restart(void **state)
{
    struct fx *f = *state;
    struct presence *p2;
    struct presence_conn *c;
    struct seen_acc acc;

    add(f, "acme", "alice");
    c = presence_connect(f->p, "acme", "alice", 0, PRESENCE_ONLINE, 100);
    assert_int_equal(presence_set_manual(f->p, "acme", "alice",
                                         PRESENCE_OFFLINE, 200), 0);
    assert_int_equal(f->ev[1].last_seen, 200);
    expect_log(f, "acme/alice ONLINE connect 1;acme/alice OFFLINE manual 2;");
    assert_int_equal(presence_conn_auto(f->p, c, PRESENCE_ONLINE, 300), 0);
    memset(&acc, 0, sizeof(acc));
    presence_drain_dirty(f->p, seen_cb, &acc);
    assert_string_equal(acc.s, "alice OFFLINE 200;");

    /* The new process; even a row claiming ONLINE (an older build) is
     * loaded as OFFLINE when the manual status is OFFLINE. */
    p2 = presence_new(&opts, on_event, f);
    assert_int_equal(presence_add_user(p2, "acme", "alice", NULL,
                                       PRESENCE_ONLINE, PRESENCE_OFFLINE, 200,
                                       1000), 0);
    assert_int_equal(presence_add_user(p2, "acme", "bob", NULL,
                                       PRESENCE_OFFLINE, PRESENCE_OFFLINE,
                                       200, 1000), 0);
    assert_int_equal(presence_tick(p2, 1000), -1); /* no window */
    c = presence_connect(p2, "acme", "alice", 0, PRESENCE_ONLINE, 1500);
    assert_int_equal(presence_tick(p2, 1000 + RESTART), -1);
    expect_log(f, "");
    memset(&acc, 0, sizeof(acc));
    presence_drain_dirty(p2, seen_cb, &acc);
    assert_string_equal(acc.s, "");
    presence_disconnect(p2, c, 2000, 0);
    presence_free(p2);
    expect_log(f, "");
}

/* presence_public changes nobody who does not appear offline. */
static void test_public_only_hides_invisible(void **state)
{
    struct fx *f = *state;
    static const enum presence_status manuals[] = {
        PRESENCE_UNSET, PRESENCE_AWAY, PRESENCE_BUSY,
    };
    struct presence_member m = {
        .org = "acme", .user = "alice", .name = "alice",
        .status = PRESENCE_ONLINE, .last_seen_ms = 5, .nconns = 3,
    };

    (void)f;
    for (size_t i = 0; i < 3; i++) {
        struct presence_member before = m;
        m.manual = manuals[i];
        before.manual = manuals[i];
        presence_public(&m);
        assert_int_equal(m.status, before.status);
        assert_int_equal(m.manual, before.manual);
        assert_int_equal(m.last_seen_ms, before.last_seen_ms);
        assert_int_equal(m.nconns, 3);
    }
    m.manual = PRESENCE_OFFLINE;
    m.status = PRESENCE_OFFLINE;
    presence_public(&m);
    assert_int_equal(m.status, PRESENCE_OFFLINE);
    assert_int_equal(m.manual, PRESENCE_UNSET);
    assert_int_equal(m.last_seen_ms, 5);
    assert_int_equal(m.nconns, 0);
}

/* Hardening II #18: a connection opens with the page's idle state, so
 * an idle person reconnecting announces nothing when its effective status
 * does not change, and otherwise only the settled result. */
static void test_connect_idle_across_drop(void **state)
{
    struct fx *f = *state;
    struct presence_conn *c;

    add(f, "acme", "away");
    add(f, "acme", "gone");
    c = presence_connect(f->p, "acme", "away", 0, PRESENCE_AWAY, 100);
    expect_log(f, "acme/away AWAY connect 1;");
    assert_int_equal(get(f, "acme", "away").last_seen, 0); /* no activity */
    /* Dropped socket, back inside grace, still idle: nothing. */
    presence_disconnect(f->p, c, 1000, 0);
    c = presence_connect(f->p, "acme", "away", 0, PRESENCE_AWAY, 2000);
    assert_int_equal(presence_tick(f->p, 1000 + GRACE), -1);
    expect_log(f, "");
    assert_int_equal(get(f, "acme", "away").status, PRESENCE_AWAY);
    assert_int_equal(get(f, "acme", "away").last_seen, 1000);
    /* Activity after the reconnect is announced as usual. */
    assert_int_equal(presence_conn_auto(f->p, c, PRESENCE_ONLINE, 3000), 0);
    expect_log(f, "acme/away ONLINE active 2;");
    assert_int_equal(get(f, "acme", "away").last_seen, 3000);

    /* Idle long enough to show OFFLINE while connected. */
    c = presence_connect(f->p, "acme", "gone", 0, PRESENCE_OFFLINE, 100);
    expect_log(f, "");
    presence_disconnect(f->p, c, 1000, 0);
    assert_int_equal(presence_tick(f->p, 1000 + GRACE), -1);
    c = presence_connect(f->p, "acme", "gone", 0, PRESENCE_OFFLINE,
                         1000 + GRACE + 1);
    expect_log(f, "");
    assert_int_equal(get(f, "acme", "gone").nconns, 1);
    assert_int_equal(get(f, "acme", "gone").status, PRESENCE_OFFLINE);
    presence_disconnect(f->p, c, 100000, PRESENCE_NOW);
    expect_log(f, "");
}

static void test_connect_idle_settled_result(void **state)
{
    struct fx *f = *state;
    struct presence_conn *c, *c2;

    add(f, "acme", "alice");
    /* Grace expired: OFFLINE, then the reconnect is AWAY, never ONLINE. */
    c = presence_connect(f->p, "acme", "alice", 0, PRESENCE_ONLINE, 100);
    assert_int_equal(presence_conn_auto(f->p, c, PRESENCE_AWAY, 200), 0);
    presence_disconnect(f->p, c, 300, 0);
    assert_int_equal(presence_tick(f->p, 300 + GRACE), -1);
    expect_log(f, "acme/alice ONLINE connect 1;acme/alice AWAY idle 2;"
                  "acme/alice OFFLINE grace_expired 3;");
    c = presence_connect(f->p, "acme", "alice", 0, PRESENCE_AWAY, 9000);
    expect_log(f, "acme/alice AWAY connect 4;");
    /* Left ONLINE, back idle inside grace: one event, reason idle. */
    assert_int_equal(presence_conn_auto(f->p, c, PRESENCE_ONLINE, 9100), 0);
    presence_disconnect(f->p, c, 9200, 0);
    expect_log(f, "acme/alice ONLINE active 5;");
    c = presence_connect(f->p, "acme", "alice", 0, PRESENCE_OFFLINE, 9300);
    expect_log(f, "acme/alice OFFLINE idle 6;");
    assert_int_equal(get(f, "acme", "alice").last_seen, 9200);
    /* Another tab, active: the most present status rules. */
    c2 = presence_connect(f->p, "acme", "alice", 0, PRESENCE_ONLINE, 9400);
    expect_log(f, "acme/alice ONLINE connect 7;");
    assert_int_equal(get(f, "acme", "alice").last_seen, 9400);
    presence_disconnect(f->p, c2, 9500, PRESENCE_NOW);
    expect_log(f, "acme/alice OFFLINE disconnect 8;");
    /* A manual status still wins over an idle connect. */
    assert_int_equal(presence_set_manual(f->p, "acme", "alice", PRESENCE_BUSY,
                                         9600), 0);
    expect_log(f, "acme/alice BUSY manual 9;");
    c2 = presence_connect(f->p, "acme", "alice", 0, PRESENCE_AWAY, 9700);
    expect_log(f, "");
    presence_disconnect(f->p, c2, 9800, PRESENCE_NOW);
    presence_disconnect(f->p, c, 9800, PRESENCE_NOW);
    expect_log(f, "acme/alice OFFLINE disconnect 10;");
    /* BUSY (or anything else) is no idle state: refused, nothing kept. */
    assert_null(presence_connect(f->p, "acme", "alice", 0, PRESENCE_BUSY,
                                 9900));
    assert_null(presence_connect(f->p, "acme", "alice", 0, PRESENCE_UNSET,
                                 9900));
    assert_int_equal(get(f, "acme", "alice").nconns, 0);
    expect_log(f, "");
}

static void test_connect_idle_across_restart(void **state)
{
    struct fx *f = *state;
    struct presence_conn *a, *o;

    /* As hub_init loads them: AWAY is restored, idle-OFFLINE was stored
     * OFFLINE (its effective status). */
    assert_int_equal(presence_add_user(f->p, "acme", "away", NULL,
                                       PRESENCE_AWAY, PRESENCE_UNSET, 500,
                                       1000), 0);
    assert_int_equal(presence_add_user(f->p, "acme", "gone", NULL,
                                       PRESENCE_OFFLINE, PRESENCE_UNSET, 500,
                                       1000), 0);
    a = presence_connect(f->p, "acme", "away", 0, PRESENCE_AWAY, 2000);
    o = presence_connect(f->p, "acme", "gone", 0, PRESENCE_OFFLINE, 2000);
    assert_int_equal(presence_tick(f->p, 1000 + RESTART), -1);
    expect_log(f, "");
    assert_int_equal(get(f, "acme", "away").status, PRESENCE_AWAY);
    assert_int_equal(get(f, "acme", "gone").status, PRESENCE_OFFLINE);
    /* Not activity: last_seen is as stored. */
    assert_int_equal(get(f, "acme", "away").last_seen, 500);
    assert_int_equal(get(f, "acme", "gone").last_seen, 500);
    presence_disconnect(f->p, a, 3000, PRESENCE_NOW);
    presence_disconnect(f->p, o, 3000, PRESENCE_NOW);
    expect_log(f, "acme/away OFFLINE disconnect 1;");
}

static void test_manual_while_offline(void **state)
{
    struct fx *f = *state;
    struct rec r;

    add(f, "acme", "alice");
    assert_int_equal(presence_set_manual(f->p, "acme", "alice", PRESENCE_BUSY,
                                         100), 0);
    expect_log(f, "");
    r = get(f, "acme", "alice");
    assert_int_equal(r.status, PRESENCE_OFFLINE);
    assert_int_equal(r.manual, PRESENCE_BUSY);
    assert_int_equal(r.last_seen, 100);
    assert_non_null(presence_connect(f->p, "acme", "alice", 0,
                                     PRESENCE_ONLINE, 200));
    expect_log(f, "acme/alice BUSY connect 1;");
}

static void test_grace_reconnect_inside(void **state)
{
    struct fx *f = *state;
    struct presence_conn *c;

    add(f, "acme", "alice");
    c = presence_connect(f->p, "acme", "alice", 0, PRESENCE_ONLINE, 100);
    expect_log(f, "acme/alice ONLINE connect 1;");
    presence_disconnect(f->p, c, 1000, 0);
    expect_log(f, "");
    assert_int_equal(get(f, "acme", "alice").status, PRESENCE_ONLINE);
    assert_int_equal(get(f, "acme", "alice").nconns, 0);
    assert_int_equal(presence_tick(f->p, 5999), 1000 + GRACE);
    expect_log(f, "");
    c = presence_connect(f->p, "acme", "alice", 0, PRESENCE_ONLINE, 5999);
    expect_log(f, "");
    /* The reconnect ended the window. */
    assert_int_equal(presence_tick(f->p, 100000), -1);
    expect_log(f, "");
    assert_int_equal(get(f, "acme", "alice").nconns, 1);

    /* The window keeps AWAY; reconnecting (ONLINE) raises it. */
    assert_int_equal(presence_conn_auto(f->p, c, PRESENCE_AWAY, 100000), 0);
    expect_log(f, "acme/alice AWAY idle 2;");
    presence_disconnect(f->p, c, 100001, 0);
    expect_log(f, "");
    assert_int_equal(get(f, "acme", "alice").status, PRESENCE_AWAY);
    assert_non_null(presence_connect(f->p, "acme", "alice", 0,
                                     PRESENCE_ONLINE, 100002));
    expect_log(f, "acme/alice ONLINE connect 3;");
}

static void test_grace_expiry(void **state)
{
    struct fx *f = *state;
    struct presence_conn *c;

    add(f, "acme", "alice");
    c = presence_connect(f->p, "acme", "alice", 0, PRESENCE_ONLINE, 100);
    presence_disconnect(f->p, c, 1000, 0);
    expect_log(f, "acme/alice ONLINE connect 1;");
    assert_int_equal(presence_tick(f->p, 1000 + GRACE - 1), 1000 + GRACE);
    expect_log(f, "");
    assert_int_equal(presence_tick(f->p, 1000 + GRACE), -1);
    expect_log(f, "acme/alice OFFLINE grace_expired 2;");
    assert_int_equal(presence_tick(f->p, 1000 + GRACE + 1), -1);
    assert_int_equal(presence_tick(f->p, 1000000), -1);
    expect_log(f, "");
    assert_int_equal(get(f, "acme", "alice").last_seen, 1000);
    /* A later connect is a plain first connection. */
    assert_non_null(presence_connect(f->p, "acme", "alice", 0,
                                     PRESENCE_ONLINE, 9000));
    expect_log(f, "acme/alice ONLINE connect 3;");
}

static void test_grace_while_manual(void **state)
{
    struct fx *f = *state;
    struct presence_conn *c;

    add(f, "acme", "alice");
    c = presence_connect(f->p, "acme", "alice", 0, PRESENCE_ONLINE, 100);
    assert_int_equal(presence_set_manual(f->p, "acme", "alice", PRESENCE_BUSY,
                                         100), 0);
    presence_disconnect(f->p, c, 1000, 0);
    expect_log(f, "acme/alice ONLINE connect 1;acme/alice BUSY manual 2;");
    assert_int_equal(presence_tick(f->p, 1000 + GRACE), -1);
    expect_log(f, "acme/alice OFFLINE grace_expired 3;");
}

static void test_now_skips_grace(void **state)
{
    struct fx *f = *state;
    struct presence_conn *c;
    struct presence_opts o = {0, LOGIN, RESTART};
    struct presence *p0;

    add(f, "acme", "alice");
    c = presence_connect(f->p, "acme", "alice", 0, PRESENCE_ONLINE, 100);
    presence_disconnect(f->p, c, 200, PRESENCE_NOW);
    expect_log(f, "acme/alice ONLINE connect 1;"
                  "acme/alice OFFLINE disconnect 2;");
    assert_int_equal(presence_tick(f->p, 1000000), -1);
    expect_log(f, "");

    /* grace_ms 0 behaves like PRESENCE_NOW. */
    p0 = presence_new(&o, on_event, f);
    assert_int_equal(presence_add_user(p0, "acme", "bob", NULL,
                                       PRESENCE_OFFLINE, PRESENCE_UNSET, 0, 0),
                     0);
    c = presence_connect(p0, "acme", "bob", 0, PRESENCE_ONLINE, 100);
    presence_disconnect(p0, c, 200, 0);
    expect_log(f, "acme/bob ONLINE connect 1;acme/bob OFFLINE disconnect 2;");
    assert_int_equal(presence_tick(p0, 1000000), -1);
    expect_log(f, "");
    presence_free(p0);
}

static void test_login_window_expiry(void **state)
{
    struct fx *f = *state;

    add(f, "acme", "alice");
    assert_int_equal(presence_login(f->p, "acme", "alice", 1000), 0);
    expect_log(f, "acme/alice ONLINE login 1;");
    assert_int_equal(get(f, "acme", "alice").last_seen, 1000);
    assert_int_equal(presence_tick(f->p, 1000 + LOGIN - 1), 1000 + LOGIN);
    /* A second login extends the window. */
    assert_int_equal(presence_login(f->p, "acme", "alice", 30000), 0);
    assert_int_equal(presence_tick(f->p, 1000 + LOGIN), 30000 + LOGIN);
    expect_log(f, "");
    assert_int_equal(presence_tick(f->p, 30000 + LOGIN), -1);
    expect_log(f, "acme/alice OFFLINE grace_expired 2;");

    /* With a manual status the login shows it. */
    assert_int_equal(presence_set_manual(f->p, "acme", "alice", PRESENCE_BUSY,
                                         200000), 0);
    expect_log(f, "");
    assert_int_equal(presence_login(f->p, "acme", "alice", 200000), 0);
    expect_log(f, "acme/alice BUSY login 3;");
    assert_int_equal(presence_tick(f->p, 200000 + LOGIN), -1);
    expect_log(f, "acme/alice OFFLINE grace_expired 4;");
}

static void test_login_then_connect(void **state)
{
    struct fx *f = *state;
    struct presence_conn *c;

    add(f, "acme", "alice");
    assert_int_equal(presence_login(f->p, "acme", "alice", 1000), 0);
    expect_log(f, "acme/alice ONLINE login 1;");
    c = presence_connect(f->p, "acme", "alice", 9, PRESENCE_ONLINE, 2000);
    expect_log(f, "");
    assert_int_equal(get(f, "acme", "alice").last_seen, 2000);
    /* The connection ended the window: nothing expires. */
    assert_int_equal(presence_tick(f->p, 2000), -1);
    assert_int_equal(presence_tick(f->p, 1000 + LOGIN), -1);
    expect_log(f, "");
    assert_int_equal(presence_conn_auto(f->p, c, PRESENCE_AWAY, 70000), 0);
    expect_log(f, "acme/alice AWAY idle 2;");
}

static void test_logout(void **state)
{
    struct fx *f = *state;
    struct presence_conn *c1, *c2;

    add(f, "acme", "alice");
    /* Inside the login window, no connection. */
    assert_int_equal(presence_login(f->p, "acme", "alice", 1000), 0);
    assert_int_equal(presence_logout(f->p, "acme", "alice", 0, 2000), 0);
    expect_log(f, "acme/alice ONLINE login 1;acme/alice OFFLINE logout 2;");
    assert_int_equal(get(f, "acme", "alice").last_seen, 2000);
    assert_int_equal(presence_tick(f->p, 1000000), -1);
    expect_log(f, "");

    /* Inside the grace window. */
    c1 = presence_connect(f->p, "acme", "alice", 1, PRESENCE_ONLINE, 3000);
    presence_disconnect(f->p, c1, 3100, 0);
    assert_int_equal(presence_logout(f->p, "acme", "alice", 1, 3200), 0);
    expect_log(f, "acme/alice ONLINE connect 3;acme/alice OFFLINE logout 4;");
    assert_int_equal(presence_tick(f->p, 1000000), -1);
    expect_log(f, "");

    /* Another session's connection stays and keeps ruling. */
    c1 = presence_connect(f->p, "acme", "alice", 1, PRESENCE_ONLINE, 4000);
    c2 = presence_connect(f->p, "acme", "alice", 2, PRESENCE_ONLINE, 4000);
    assert_int_equal(presence_conn_auto(f->p, c2, PRESENCE_AWAY, 4100), 0);
    expect_log(f, "acme/alice ONLINE connect 5;");
    /* Logging session 1 out closes c1 (the core frees it) and announces
     * once, with reason logout, what c2 now shows. */
    assert_int_equal(presence_logout(f->p, "acme", "alice", 1, 4300), 0);
    expect_log(f, "acme/alice AWAY logout 6;");
    assert_int_equal(get(f, "acme", "alice").status, PRESENCE_AWAY);
    assert_int_equal(get(f, "acme", "alice").nconns, 1);
    assert_int_equal(get(f, "acme", "alice").last_seen, 4300);
    presence_disconnect(f->p, c2, 4400, 0);
    expect_log(f, "");

    /* The last connection of the session: OFFLINE at once, no grace, one
     * event with reason logout (not disconnect). */
    c1 = presence_connect(f->p, "acme", "alice", 7, PRESENCE_ONLINE, 5000);
    expect_log(f, "acme/alice ONLINE connect 7;");
    assert_int_equal(presence_logout(f->p, "acme", "alice", 7, 5100), 0);
    expect_log(f, "acme/alice OFFLINE logout 8;");
    assert_int_equal(get(f, "acme", "alice").nconns, 0);
    assert_int_equal(presence_tick(f->p, 1000000), -1);
    expect_log(f, "");
}

static void test_restore(void **state)
{
    struct fx *f = *state;
    struct rec r;

    assert_int_equal(presence_add_user(f->p, "acme", "alice", "Alice",
                                       PRESENCE_ONLINE, PRESENCE_UNSET, 500,
                                       1000), 0);
    assert_int_equal(presence_add_user(f->p, "acme", "bob", NULL,
                                       PRESENCE_AWAY, PRESENCE_UNSET, 500,
                                       1000), 0);
    assert_int_equal(presence_add_user(f->p, "acme", "carol", NULL,
                                       PRESENCE_ONLINE, PRESENCE_UNSET, 500,
                                       1000), 0);
    assert_int_equal(presence_add_user(f->p, "acme", "dave", NULL,
                                       PRESENCE_BUSY, PRESENCE_BUSY, 500,
                                       1000), 0);
    assert_int_equal(presence_add_user(f->p, "acme", "erin", NULL,
                                       PRESENCE_OFFLINE, PRESENCE_AWAY, 500,
                                       1000), 0);
    expect_log(f, "");
    r = get(f, "acme", "alice");
    assert_int_equal(r.status, PRESENCE_ONLINE);
    assert_int_equal(r.last_seen, 500);
    assert_string_equal(r.name, "Alice");
    r = get(f, "acme", "dave");
    assert_int_equal(r.status, PRESENCE_BUSY);
    assert_int_equal(r.manual, PRESENCE_BUSY);
    r = get(f, "acme", "erin");
    assert_int_equal(r.status, PRESENCE_OFFLINE);
    assert_int_equal(r.manual, PRESENCE_AWAY);

    /* Adding again only updates the name: no new window, same status. */
    assert_int_equal(presence_add_user(f->p, "acme", "alice", "Alice A",
                                       PRESENCE_OFFLINE, PRESENCE_BUSY, 0,
                                       20000), 0);
    r = get(f, "acme", "alice");
    assert_string_equal(r.name, "Alice A");
    assert_int_equal(r.status, PRESENCE_ONLINE);
    assert_int_equal(r.manual, PRESENCE_UNSET);
    assert_int_equal(r.last_seen, 500);

    /* Reconnects inside the window: same status (nothing), raised (bob). */
    assert_non_null(presence_connect(f->p, "acme", "carol", 0,
                                     PRESENCE_ONLINE, 2000));
    assert_non_null(presence_connect(f->p, "acme", "bob", 0,
                                     PRESENCE_ONLINE, 2000));
    expect_log(f, "acme/bob ONLINE connect 1;");

    assert_int_equal(presence_tick(f->p, 1000 + RESTART - 1), 1000 + RESTART);
    expect_log(f, "");
    assert_int_equal(presence_tick(f->p, 1000 + RESTART), -1);
    /* Window lists are FIFO by deadline: add order. */
    expect_log(f, "acme/alice OFFLINE restart 2;acme/dave OFFLINE restart 3;");
    assert_int_equal(presence_tick(f->p, 1000000), -1);
    expect_log(f, "");
}

static void test_stale_sweep(void **state)
{
    struct fx *f = *state;
    struct presence_conn *c, *c2;

    add(f, "acme", "alice"); /* login window, no connection */
    add(f, "acme", "bob");   /* connected */
    add(f, "acme", "carol"); /* offline */
    add(f, "acme", "dave");  /* login window, recent */
    add(f, "acme", "erin");  /* login window, exactly at the limit */
    assert_int_equal(presence_login(f->p, "acme", "alice", 1000), 0);
    c = presence_connect(f->p, "acme", "bob", 0, PRESENCE_ONLINE, 1000);
    assert_int_equal(presence_login(f->p, "acme", "dave", 9000), 0);
    assert_int_equal(presence_login(f->p, "acme", "erin", 5000), 0);
    expect_log(f, "acme/alice ONLINE login 1;acme/bob ONLINE connect 2;"
                  "acme/dave ONLINE login 3;acme/erin ONLINE login 4;");
    /* Appearing offline inside a grace window: already OFFLINE, so it is
     * neither swept nor counted. */
    add(f, "acme", "fred");
    c2 = presence_connect(f->p, "acme", "fred", 0, PRESENCE_ONLINE, 1000);
    assert_int_equal(presence_set_manual(f->p, "acme", "fred",
                                         PRESENCE_OFFLINE, 1000), 0);
    presence_disconnect(f->p, c2, 1000, 0);
    expect_log(f, "acme/fred ONLINE connect 5;acme/fred OFFLINE manual 6;");

    assert_int_equal(presence_sweep_stale(f->p, 10000, 5000), 1);
    expect_log(f, "acme/alice OFFLINE stale 7;");
    assert_int_equal(get(f, "acme", "bob").status, PRESENCE_ONLINE);
    assert_int_equal(get(f, "acme", "erin").status, PRESENCE_ONLINE);
    /* The swept user's window ended; the others' remain. */
    assert_int_equal(presence_tick(f->p, 1000 + LOGIN), 5000 + LOGIN);
    expect_log(f, "");
    assert_int_equal(presence_sweep_stale(f->p, 10000, 5000), 0);
    assert_int_equal(presence_sweep_stale(f->p, 10001, 5000), 1);
    expect_log(f, "acme/erin OFFLINE stale 8;");
    assert_int_equal(presence_sweep_stale(f->p, 1000000, 5000), 1);
    expect_log(f, "acme/dave OFFLINE stale 9;");
    assert_int_equal(presence_tick(f->p, 1000000), -1);
    expect_log(f, "");
    presence_disconnect(f->p, c, 1000001, PRESENCE_NOW);
    expect_log(f, "acme/bob OFFLINE disconnect 10;");
}

static void test_seq_per_org(void **state)
{
    struct fx *f = *state;
    struct presence_conn *a, *b;
    struct list_acc acc;
    size_t i;

    add(f, "acme", "alice");
    add(f, "initech", "alice"); /* same user id, other org */
    a = presence_connect(f->p, "acme", "alice", 0, PRESENCE_ONLINE, 100);
    b = presence_connect(f->p, "initech", "alice", 0, PRESENCE_ONLINE, 100);
    assert_int_equal(presence_conn_auto(f->p, a, PRESENCE_AWAY, 200), 0);
    assert_int_equal(presence_conn_auto(f->p, a, PRESENCE_ONLINE, 300), 0);
    assert_int_equal(presence_conn_auto(f->p, b, PRESENCE_AWAY, 400), 0);
    assert_int_equal(f->n, 5);
    for (i = 0; i < f->n; i++)
        assert_string_equal(f->ev[i].user, "alice");
    expect_log(f, "acme/alice ONLINE connect 1;"
                  "initech/alice ONLINE connect 1;"
                  "acme/alice AWAY idle 2;"
                  "acme/alice ONLINE active 3;"
                  "initech/alice AWAY idle 2;");
    assert_string_equal(presence_conn_org(a), "acme");
    assert_string_equal(presence_conn_org(b), "initech");

    memset(&acc, 0, sizeof(acc));
    assert_int_equal(presence_each(f->p, "acme", list_cb, &acc), 3);
    assert_string_equal(acc.s, "acme/alice ONLINE;");
    memset(&acc, 0, sizeof(acc));
    assert_int_equal(presence_each(f->p, "initech", list_cb, &acc), 2);
    assert_string_equal(acc.s, "initech/alice AWAY;");
    memset(&acc, 0, sizeof(acc));
    assert_int_equal(presence_each(f->p, "nope", list_cb, &acc), 0);
    assert_int_equal(acc.n, 0);
    presence_disconnect(f->p, a, 500, PRESENCE_NOW);
    expect_log(f, "acme/alice OFFLINE disconnect 4;");
    presence_disconnect(f->p, b, 500, PRESENCE_NOW);
    expect_log(f, "initech/alice OFFLINE disconnect 3;");
}

static void test_drain_dirty(void **state)
{
    struct fx *f = *state;
    struct presence_conn *c;
    struct list_acc acc;

    add(f, "acme", "alice");
    add(f, "acme", "bob");
    memset(&acc, 0, sizeof(acc));
    presence_drain_dirty(f->p, list_cb, &acc);
    assert_int_equal(acc.n, 0);

    /* Several changes, one entry. */
    c = presence_connect(f->p, "acme", "alice", 0, PRESENCE_ONLINE, 100);
    assert_int_equal(presence_conn_auto(f->p, c, PRESENCE_AWAY, 200), 0);
    assert_int_equal(presence_conn_auto(f->p, c, PRESENCE_ONLINE, 300), 0);
    assert_int_equal(presence_conn_auto(f->p, c, PRESENCE_AWAY, 400), 0);
    expect_log(f, "acme/alice ONLINE connect 1;acme/alice AWAY idle 2;"
                  "acme/alice ONLINE active 3;acme/alice AWAY idle 4;");
    presence_drain_dirty(f->p, list_cb, &acc);
    assert_string_equal(acc.s, "acme/alice AWAY;");
    memset(&acc, 0, sizeof(acc));
    presence_drain_dirty(f->p, list_cb, &acc);
    assert_int_equal(acc.n, 0);

    /* AWAY/OFFLINE reports repeating the same status change nothing. */
    assert_int_equal(presence_conn_auto(f->p, c, PRESENCE_AWAY, 500), 0);
    presence_drain_dirty(f->p, list_cb, &acc);
    assert_int_equal(acc.n, 0);

    /* last_seen alone: dirty, but not announced. */
    presence_disconnect(f->p, c, 600, 0);
    expect_log(f, "");
    presence_drain_dirty(f->p, list_cb, &acc);
    assert_string_equal(acc.s, "acme/alice AWAY;");
    assert_int_equal(get(f, "acme", "alice").last_seen, 600);
    memset(&acc, 0, sizeof(acc));
    c = presence_connect(f->p, "acme", "alice", 0, PRESENCE_ONLINE, 700);
    expect_log(f, "acme/alice ONLINE connect 5;");
    presence_drain_dirty(f->p, list_cb, &acc);
    memset(&acc, 0, sizeof(acc));
    assert_int_equal(presence_conn_auto(f->p, c, PRESENCE_ONLINE, 800), 0);
    expect_log(f, "");
    presence_drain_dirty(f->p, list_cb, &acc);
    assert_string_equal(acc.s, "acme/alice ONLINE;");
    assert_int_equal(get(f, "acme", "alice").last_seen, 800);
    memset(&acc, 0, sizeof(acc));

    /* Manual status alone (no effective change) makes bob dirty. */
    assert_int_equal(presence_set_manual(f->p, "acme", "bob", PRESENCE_BUSY,
                                         800), 0);
    expect_log(f, "");
    presence_drain_dirty(f->p, list_cb, &acc);
    assert_string_equal(acc.s, "acme/bob OFFLINE;");
    memset(&acc, 0, sizeof(acc));
    /* Same time (last_seen unchanged), other manual status: still dirty;
     * the same manual status again: not. */
    assert_int_equal(presence_set_manual(f->p, "acme", "bob", PRESENCE_AWAY,
                                         800), 0);
    presence_drain_dirty(f->p, list_cb, &acc);
    assert_string_equal(acc.s, "acme/bob OFFLINE;");
    memset(&acc, 0, sizeof(acc));
    assert_int_equal(presence_set_manual(f->p, "acme", "bob", PRESENCE_AWAY,
                                         800), 0);
    presence_drain_dirty(f->p, list_cb, &acc);
    assert_int_equal(acc.n, 0);

    /* A window closing is a change too. */
    presence_disconnect(f->p, c, 900, 0);
    presence_drain_dirty(f->p, list_cb, &acc);
    memset(&acc, 0, sizeof(acc));
    assert_int_equal(presence_tick(f->p, 900 + GRACE), -1);
    expect_log(f, "acme/alice OFFLINE grace_expired 6;");
    presence_drain_dirty(f->p, list_cb, &acc);
    assert_string_equal(acc.s, "acme/alice OFFLINE;");
}

static void test_tick_deadline(void **state)
{
    struct fx *f = *state;
    struct presence_conn *c;

    assert_int_equal(presence_tick(f->p, 0), -1);
    assert_int_equal(presence_add_user(f->p, "acme", "r", NULL,
                                       PRESENCE_ONLINE, PRESENCE_UNSET, 0, 0),
                     0);
    add(f, "acme", "g");
    add(f, "acme", "l");
    c = presence_connect(f->p, "acme", "g", 0, PRESENCE_ONLINE, 1000);
    presence_disconnect(f->p, c, 1000, 0);
    assert_int_equal(presence_login(f->p, "acme", "l", 2000), 0);
    expect_log(f, "acme/g ONLINE connect 1;acme/l ONLINE login 2;");
    assert_int_equal(presence_tick(f->p, 0), 1000 + GRACE);
    assert_int_equal(presence_tick(f->p, 1000 + GRACE), RESTART);
    expect_log(f, "acme/g OFFLINE grace_expired 3;");
    assert_int_equal(presence_tick(f->p, RESTART), 2000 + LOGIN);
    expect_log(f, "acme/r OFFLINE restart 4;");
    assert_int_equal(presence_tick(f->p, 2000 + LOGIN), -1);
    expect_log(f, "acme/l OFFLINE grace_expired 5;");

    /* A clock stepping back still yields the earliest deadline first. */
    c = presence_connect(f->p, "acme", "g", 0, PRESENCE_ONLINE, 100000);
    presence_disconnect(f->p, c, 100000, 0);
    c = presence_connect(f->p, "acme", "l", 0, PRESENCE_ONLINE, 90000);
    presence_disconnect(f->p, c, 90000, 0);
    expect_log(f, "acme/g ONLINE connect 6;acme/l ONLINE connect 7;");
    assert_int_equal(presence_tick(f->p, 0), 90000 + GRACE);
    assert_int_equal(presence_tick(f->p, 90000 + GRACE), 100000 + GRACE);
    expect_log(f, "acme/l OFFLINE grace_expired 8;");
    assert_int_equal(presence_tick(f->p, 100000 + GRACE), -1);
    expect_log(f, "acme/g OFFLINE grace_expired 9;");
}

static void test_each(void **state)
{
    struct fx *f = *state;
    struct list_acc acc;
    struct rec r;

    assert_int_equal(presence_add_user(f->p, "acme", "alice", "Alice",
                                       PRESENCE_OFFLINE, PRESENCE_UNSET, 0, 0),
                     0);
    add(f, "acme", "bob");
    add(f, "acme", "carol");
    add(f, "initech", "dave");
    assert_non_null(presence_connect(f->p, "acme", "bob", 0,
                                     PRESENCE_ONLINE, 100));
    assert_non_null(presence_connect(f->p, "acme", "bob", 0,
                                     PRESENCE_ONLINE, 100));
    expect_log(f, "acme/bob ONLINE connect 1;");

    memset(&acc, 0, sizeof(acc));
    assert_int_equal(presence_each(f->p, "acme", list_cb, &acc), 1);
    assert_int_equal(acc.n, 3);
    /* Any order is allowed: check membership. */
    assert_non_null(strstr(acc.s, "acme/alice OFFLINE;"));
    assert_non_null(strstr(acc.s, "acme/bob ONLINE;"));
    assert_non_null(strstr(acc.s, "acme/carol OFFLINE;"));
    assert_null(strstr(acc.s, "dave"));

    memset(&acc, 0, sizeof(acc));
    assert_int_equal(presence_each(f->p, "initech", list_cb, &acc), 0);
    assert_string_equal(acc.s, "initech/dave OFFLINE;");

    memset(&acc, 0, sizeof(acc));
    presence_each_all(f->p, list_cb, &acc);
    assert_int_equal(acc.n, 4);
    assert_non_null(strstr(acc.s, "initech/dave OFFLINE;"));

    r = get(f, "acme", "bob");
    assert_string_equal(r.org, "acme");
    assert_string_equal(r.user, "bob");
    assert_string_equal(r.name, "bob"); /* no name: the id */
    assert_int_equal(r.nconns, 2);
    assert_string_equal(get(f, "acme", "alice").name, "Alice");
}

/* A callback may read the core: it sees the state it announces. */
struct reader {
    struct presence *p;
    struct rec seen[8];
    uint64_t each_seq[8];
    int n;
};

static void reader_cb(void *ud, const struct presence_event *ev)
{
    struct reader *rd = ud;
    struct list_acc acc;

    assert_true(rd->n < 8);
    assert_int_equal(presence_get(rd->p, ev->m.org, ev->m.user, get_cb,
                                  &rd->seen[rd->n]), 0);
    memset(&acc, 0, sizeof(acc));
    rd->each_seq[rd->n] = presence_each(rd->p, ev->m.org, list_cb, &acc);
    rd->n++;
}

static void test_callback_reads_state(void **state)
{
    struct reader rd;
    struct presence_conn *c1, *c2;

    (void)state;
    memset(&rd, 0, sizeof(rd));
    rd.p = presence_new(&opts, reader_cb, &rd);
    assert_int_equal(presence_add_user(rd.p, "acme", "alice", NULL,
                                       PRESENCE_OFFLINE, PRESENCE_UNSET, 0, 0),
                     0);
    c1 = presence_connect(rd.p, "acme", "alice", 0, PRESENCE_ONLINE, 100);
    c2 = presence_connect(rd.p, "acme", "alice", 0, PRESENCE_ONLINE, 100);
    assert_int_equal(presence_conn_auto(rd.p, c2, PRESENCE_AWAY, 200), 0);
    presence_disconnect(rd.p, c1, 300, PRESENCE_NOW);
    assert_int_equal(rd.n, 2);
    assert_int_equal(rd.seen[0].status, PRESENCE_ONLINE);
    assert_int_equal(rd.seen[0].nconns, 1);
    assert_int_equal(rd.each_seq[0], 1);
    assert_int_equal(rd.seen[1].status, PRESENCE_AWAY);
    assert_int_equal(rd.seen[1].nconns, 1);
    assert_int_equal(rd.seen[1].last_seen, 300);
    assert_int_equal(rd.each_seq[1], 2);
    presence_disconnect(rd.p, c2, 400, 0);
    assert_int_equal(presence_tick(rd.p, 400 + GRACE), -1);
    assert_int_equal(rd.n, 3);
    assert_int_equal(rd.seen[2].status, PRESENCE_OFFLINE);
    assert_int_equal(rd.seen[2].nconns, 0);
    presence_free(rd.p);
}

static void test_conn_accessors(void **state)
{
    struct fx *f = *state;
    struct presence_conn *c;

    add(f, "acme", "alice");
    c = presence_connect(f->p, "acme", "alice", 0xfeedbeefcafeULL,
                         PRESENCE_ONLINE, 100);
    expect_log(f, "acme/alice ONLINE connect 1;");
    assert_string_equal(presence_conn_org(c), "acme");
    assert_string_equal(presence_conn_user(c), "alice");
    assert_int_equal(presence_conn_session(c), 0xfeedbeefcafeULL);
}

static void test_free_with_open_conns(void **state)
{
    struct fx *f = *state;
    struct presence *p;
    char user[16];
    int i;

    presence_free(NULL);
    /* Open conns, windows and dirty users are all freed by presence_free;
     * ASan and valgrind check the rest. */
    p = presence_new(&opts, NULL, NULL);
    for (i = 0; i < 60; i++) {
        const char *org = i % 2 ? "a" : "b";
        struct presence_conn *c;

        snprintf(user, sizeof(user), "u%d", i);
        assert_int_equal(presence_add_user(p, org, user,
                                           i % 3 ? "Name" : NULL,
                                           i % 4 ? PRESENCE_OFFLINE
                                                 : PRESENCE_ONLINE,
                                           PRESENCE_UNSET, 0, 0), 0);
        assert_int_equal(presence_add_user(p, org, user, "Renamed",
                                           PRESENCE_OFFLINE, PRESENCE_UNSET,
                                           0, 0), 0);
        switch (i % 5) {
        case 0: /* left in a grace window */
            c = presence_connect(p, org, user, 0, PRESENCE_ONLINE, 1);
            presence_disconnect(p, c, 2, 0);
            break;
        case 1: /* left in a login window */
            assert_int_equal(presence_login(p, org, user, 1), 0);
            break;
        case 2: /* two open connections */
            assert_non_null(presence_connect(p, org, user, 0,
                                             PRESENCE_ONLINE, 1));
            /* fall through */
        case 3:
            assert_non_null(presence_connect(p, org, user, 0,
                                             PRESENCE_ONLINE, 1));
            break;
        default: /* restore window or never connected */
            break;
        }
    }
    presence_free(p);

    /* The fixture's core too, with an open connection. */
    add(f, "acme", "alice");
    assert_non_null(presence_connect(f->p, "acme", "alice", 0,
                                     PRESENCE_ONLINE, 100));
    expect_log(f, "acme/alice ONLINE connect 1;");
}

static void test_default_opts(void **state)
{
    struct fx *f = *state;
    struct presence *p = presence_new(NULL, on_event, f);
    struct presence_conn *c;

    assert_int_equal(presence_add_user(p, "acme", "alice", NULL,
                                       PRESENCE_AWAY, PRESENCE_UNSET, 0, 0),
                     0);
    assert_int_equal(presence_tick(p, 0), 30000);
    assert_int_equal(presence_login(p, "acme", "alice", 0), 0);
    expect_log(f, "acme/alice ONLINE login 1;");
    assert_int_equal(presence_tick(p, 0), 60000);
    c = presence_connect(p, "acme", "alice", 0, PRESENCE_ONLINE, 0);
    presence_disconnect(p, c, 0, 0);
    assert_int_equal(presence_tick(p, 0), 5000);
    expect_log(f, "");
    presence_free(p);
}

static void test_org_size_and_online(void **state)
{
    struct fx *f = *state;
    struct presence_conn *c;
    unsigned online = 99;

    assert_int_equal(presence_org_size(f->p, "nope", &online), 0);
    assert_int_equal(online, 0);
    add(f, "acme", "alice");
    add(f, "acme", "bob");
    assert_int_equal(presence_add_user(f->p, "acme", "carol", NULL,
                                       PRESENCE_AWAY, PRESENCE_UNSET, 1, 10),
                     0);
    add(f, "other", "dan");
    assert_int_equal(presence_org_size(f->p, "acme", &online), 3);
    assert_int_equal(online, 1); /* carol, restored AWAY */
    c = presence_connect(f->p, "acme", "alice", 0, PRESENCE_ONLINE, 100);
    assert_int_equal(presence_org_size(f->p, "acme", &online), 3);
    assert_int_equal(online, 2);
    assert_int_equal(presence_set_manual(f->p, "acme", "alice",
                                         PRESENCE_OFFLINE, 110), 0);
    presence_org_size(f->p, "acme", &online);
    assert_int_equal(online, 1); /* appear offline counts as offline */
    presence_tick(f->p, 1000000); /* carol's restore window closes */
    presence_org_size(f->p, "acme", &online);
    assert_int_equal(online, 0);
    assert_int_equal(presence_org_size(f->p, "other", NULL), 1);
    presence_disconnect(f->p, c, 1000001, PRESENCE_NOW);
    expect_log(f, "acme/alice ONLINE connect 1;acme/alice OFFLINE manual 2;"
                  "acme/carol OFFLINE restart 3;");
}


/* ---- cluster nodes ---------------------------------------------------- */

/* The watch log: "org/user reason;" per change, and each contribution. */
struct watch_acc {
    struct presence *p;
    char s[2048];
};

static void on_watch(void *ud, const char *org, const char *user,
                     enum presence_reason reason)
{
    struct watch_acc *a = ud;
    struct presence_contrib c;
    size_t len = strlen(a->s);

    /* Allowed inside the callback, and remembered. */
    assert_int_equal(presence_contribution(a->p, org, user, &c, 1), 0);
    snprintf(a->s + len, sizeof(a->s) - len, "%s/%s %s %d %s %u%s;", org,
             user, presence_reason_name(reason), c.present,
             presence_status_name(c.auto_status), c.nconns,
             c.changed ? "" : " same");
}

static void test_watch_every_change(void **state)
{
    struct fx *f = *state;
    struct watch_acc a = {.p = f->p};
    struct presence_conn *c1, *c2;

    presence_set_watch(f->p, on_watch, &a);
    add(f, "acme", "alice");
    c1 = presence_connect(f->p, "acme", "alice", 0, PRESENCE_ONLINE, 1000);
    /* A second tab changes no status (no event) but the contribution. */
    c2 = presence_connect(f->p, "acme", "alice", 0, PRESENCE_AWAY, 1100);
    assert_int_equal(presence_conn_auto(f->p, c1, PRESENCE_AWAY, 1200), 0);
    presence_disconnect(f->p, c1, 1300, 0);
    presence_disconnect(f->p, c2, 1400, 0);
    presence_tick(f->p, 1400 + GRACE);
    assert_string_equal(a.s,
        "acme/alice connect 1 ONLINE 1;"
        "acme/alice connect 1 ONLINE 2;"
        "acme/alice idle 1 AWAY 2;"
        "acme/alice disconnect 1 AWAY 1;"
        "acme/alice disconnect 1 AWAY 0;"      /* grace keeps it */
        "acme/alice grace_expired 0 OFFLINE 0;");
    expect_log(f, "acme/alice ONLINE connect 1;acme/alice AWAY idle 2;"
                  "acme/alice OFFLINE grace_expired 3;");
}

static void test_contribution_ignores_manual(void **state)
{
    struct fx *f = *state;
    struct presence_contrib c;
    struct presence_conn *k;

    add(f, "acme", "bob");
    assert_int_equal(presence_contribution(f->p, "acme", "bob", &c, 1), 0);
    assert_int_equal(c.present, 0);
    assert_int_equal(c.changed, 0);
    k = presence_connect(f->p, "acme", "bob", 0, PRESENCE_ONLINE, 10);
    assert_int_equal(presence_set_manual(f->p, "acme", "bob", PRESENCE_BUSY,
                                         20), 0);
    /* What the node sees of its connections; the cluster applies BUSY. */
    assert_int_equal(presence_contribution(f->p, "acme", "bob", &c, 0), 0);
    assert_int_equal(c.present, 1);
    assert_int_equal(c.auto_status, PRESENCE_ONLINE);
    assert_int_equal(c.nconns, 1);
    assert_int_equal(c.changed, 1);
    /* Not remembered: still a change. */
    assert_int_equal(presence_contribution(f->p, "acme", "bob", &c, 1), 0);
    assert_int_equal(c.changed, 1);
    assert_int_equal(presence_contribution(f->p, "acme", "bob", &c, 1), 0);
    assert_int_equal(c.changed, 0);
    /* A window that keeps BUSY contributes ONLINE. */
    presence_disconnect(f->p, k, 30, 0);
    assert_int_equal(presence_contribution(f->p, "acme", "bob", &c, 1), 0);
    assert_int_equal(c.present, 1);
    assert_int_equal(c.auto_status, PRESENCE_ONLINE);
    assert_int_equal(c.nconns, 0);
    assert_int_equal(presence_contribution(f->p, "acme", "nobody", &c, 1),
                     PRESENCE_ENOENT);
    presence_tick(f->p, 30 + GRACE);
    expect_log(f, "acme/bob ONLINE connect 1;acme/bob BUSY manual 2;"
                  "acme/bob OFFLINE grace_expired 3;");
}

static void test_restore_from_cluster(void **state)
{
    struct fx *f = *state;
    struct presence_contrib c;
    struct presence_conn *k;

    add(f, "acme", "carol");
    add(f, "acme", "dave");
    assert_int_equal(presence_restore(f->p, "acme", "carol", PRESENCE_AWAY,
                                      100), 0);
    assert_int_equal(presence_restore(f->p, "acme", "dave", PRESENCE_ONLINE,
                                      100), 0);
    assert_int_equal(presence_restore(f->p, "acme", "nobody",
                                      PRESENCE_ONLINE, 100), PRESENCE_ENOENT);
    assert_int_equal(presence_restore(f->p, "acme", "dave", PRESENCE_BUSY,
                                      100), PRESENCE_EINVAL);
    /* Counted as contributed already: nothing to hand out. */
    assert_int_equal(presence_contribution(f->p, "acme", "carol", &c, 1), 0);
    assert_int_equal(c.present, 1);
    assert_int_equal(c.auto_status, PRESENCE_AWAY);
    assert_int_equal(c.changed, 0);
    /* dave comes back inside the window: no flap; carol does not. */
    k = presence_connect(f->p, "acme", "dave", 0, PRESENCE_ONLINE, 200);
    presence_tick(f->p, 100 + RESTART);
    assert_int_equal(presence_contribution(f->p, "acme", "carol", &c, 1), 0);
    assert_int_equal(c.present, 0);
    assert_int_equal(c.changed, 1);
    presence_disconnect(f->p, k, 100 + RESTART, PRESENCE_NOW);
    expect_log(f, "acme/carol OFFLINE restart 1;"
                  "acme/dave OFFLINE disconnect 2;");
}

static void test_mirror_set(void **state)
{
    struct fx *f = *state;
    struct presence *m = presence_new(&opts, NULL, NULL);
    struct presence_member in = {
        .org = "acme", .user = "erin", .name = "Erin",
        .status = PRESENCE_BUSY, .manual = PRESENCE_BUSY,
        .last_seen_ms = 500, .nconns = 3,
    };
    struct rec r;
    unsigned online;

    (void)f;
    assert_int_equal(presence_mirror_set(m, &in, 7, 1), 0);
    assert_int_equal(presence_org_seq(m, "acme"), 7);
    memset(&r, 0, sizeof(r));
    assert_int_equal(presence_get(m, "acme", "erin", get_cb, &r), 0);
    assert_string_equal(r.name, "Erin");
    assert_int_equal(r.status, PRESENCE_BUSY);
    assert_int_equal(r.manual, PRESENCE_BUSY);
    assert_int_equal(r.last_seen, 500);
    assert_int_equal(r.nconns, 3);
    presence_org_size(m, "acme", &online);
    assert_int_equal(online, 1);
    /* A lower seq leaves the organization's; last_seen never goes back. */
    in.status = PRESENCE_OFFLINE;
    in.manual = PRESENCE_UNSET;
    in.last_seen_ms = 100;
    in.nconns = 0;
    assert_int_equal(presence_mirror_set(m, &in, 3, 0), 0);
    assert_int_equal(presence_org_seq(m, "acme"), 7);
    assert_int_equal(presence_get(m, "acme", "erin", get_cb, &r), 0);
    assert_int_equal(r.status, PRESENCE_OFFLINE);
    assert_int_equal(r.last_seen, 500);
    assert_int_equal(r.nconns, 0);
    presence_org_size(m, "acme", &online);
    assert_int_equal(online, 0);
    /* A resync sets the seq exactly, even lower (Redis came back empty). */
    presence_mirror_org(m, "acme", 2);
    assert_int_equal(presence_org_seq(m, "acme"), 2);
    presence_mirror_org(m, "new", 5);
    assert_int_equal(presence_org_seq(m, "new"), 5);
    in.status = (enum presence_status)9;
    assert_int_equal(presence_mirror_set(m, &in, 8, 0), PRESENCE_EINVAL);
    /* Only the dirty one is drained. */
    struct list_acc a = {"", 0};
    presence_drain_dirty(m, list_cb, &a);
    assert_string_equal(a.s, "acme/erin OFFLINE;");
    presence_free(m);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_names),
        T(test_connect_disconnect_now),
        T(test_event_fields),
        T(test_multi_conn_aggregation),
        T(test_same_status_twice),
        T(test_invalid_args),
        T(test_manual_busy_survives_reconnect),
        T(test_appear_offline),
        T(test_appear_offline_reveals_nothing),
        T(test_appear_offline_across_restart),
        T(test_public_only_hides_invisible),
        T(test_manual_while_offline),
        T(test_grace_reconnect_inside),
        T(test_connect_idle_across_drop),
        T(test_connect_idle_settled_result),
        T(test_connect_idle_across_restart),
        T(test_grace_expiry),
        T(test_grace_while_manual),
        T(test_now_skips_grace),
        T(test_login_window_expiry),
        T(test_login_then_connect),
        T(test_logout),
        T(test_org_size_and_online),
        T(test_restore),
        T(test_stale_sweep),
        T(test_seq_per_org),
        T(test_drain_dirty),
        T(test_tick_deadline),
        T(test_each),
        T(test_callback_reads_state),
        T(test_conn_accessors),
        T(test_free_with_open_conns),
        T(test_default_opts),
        T(test_watch_every_change),
        T(test_contribution_ignores_manual),
        T(test_restore_from_cluster),
        T(test_mirror_set),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
