/* test_extra.c - status messages, Do Not Disturb and privacy in the pure
 * presence core (presence_set_extra(), presence_tick()), and their JSON
 * (presence/extra.h), against a fake clock.
 *
 * Instants are UTC literals worked out by hand; Paris is UTC+1 until
 * 2026-03-29 02:00 local, UTC+2 after. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "presence/extra.h"
#include "presence/presence.h"
#include "util/buf.h"

#define MIN 60000LL
#define HOUR (60 * MIN)
/* Monday 2026-03-23 12:00Z (13:00 in Paris). */
#define MON_NOON 1774267200000LL
/* Monday 2026-03-23 18:00 Paris = 17:00Z. */
#define MON_1800_PARIS 1774285200000LL
/* Tuesday 2026-03-24 09:00 Paris = 08:00Z. */
#define TUE_0900_PARIS 1774339200000LL
/* Tuesday 2026-03-24 00:00 Paris = Monday 23:00Z. */
#define TUE_0000_PARIS 1774306800000LL
/* Sunday 2026-03-29 01:00 Paris (CET) = 00:00Z; 09:00 (CEST) = 07:00Z. */
#define SUN_0100_PARIS 1774742400000LL
#define SUN_0900_PARIS 1774767600000LL

struct fx {
    struct presence *p;
    char log[8192];
    int dnd[64];
    int64_t until[64], last_seen[64];
    int has_text[64];
    size_t n;
};

static void on_event(void *ud, const struct presence_event *ev)
{
    struct fx *f = ud;
    size_t len = strlen(f->log);
    snprintf(f->log + len, sizeof f->log - len, "%s %s %s%s%s;", ev->m.user,
             presence_status_name(ev->m.status),
             presence_reason_name(ev->reason),
             ev->m.x && ev->m.x->text ? " " : "",
             ev->m.x && ev->m.x->text ? ev->m.x->text : "");
    if (f->n < 64) {
        f->dnd[f->n] = ev->m.dnd;
        f->until[f->n] = ev->m.dnd_until_ms;
        f->last_seen[f->n] = ev->m.last_seen_ms;
        f->has_text[f->n] = ev->m.x && ev->m.x->text;
    }
    f->n++;
}

#define expect_log(f, want)                                                   \
    do {                                                                      \
        char got_[sizeof((f)->log)];                                          \
        memcpy(got_, (f)->log, sizeof got_);                                  \
        (f)->log[0] = '\0';                                                   \
        assert_string_equal(got_, (want));                                    \
    } while (0)

static const struct presence_opts opts = {5000, 60000, 30000};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->p = presence_new(&opts, on_event, f);
    assert_int_equal(presence_add_user(f->p, "o", "u1", "Ann",
                                       PRESENCE_OFFLINE, PRESENCE_UNSET, 0, 0),
                     0);
    assert_int_equal(presence_add_user(f->p, "o", "u2", "Bob",
                                       PRESENCE_OFFLINE, PRESENCE_UNSET, 0, 0),
                     0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    assert_string_equal(f->log, "");
    presence_free(f->p);
    free(f);
    return 0;
}

static struct presence_member got;
static void get_cb(void *ud, const struct presence_member *m)
{
    (void)ud;
    got = *m;
}

static const struct presence_member *get(struct fx *f, const char *user)
{
    assert_int_equal(presence_get(f->p, "o", user, get_cb, NULL), 0);
    return &got;
}

static struct presence_extra msg(const char *text, int64_t expires)
{
    struct presence_extra x;
    memset(&x, 0, sizeof x);
    x.text = text;
    x.expires_ms = expires;
    return x;
}

static int set(struct fx *f, const char *user, const struct presence_extra *x,
               enum presence_status manual, int64_t now)
{
    return presence_set_extra(f->p, "o", user, x, manual, PRESENCE_R_MESSAGE,
                              now);
}

/* A message is announced once; the same again is not; it clears by itself
 * at its expiry, not a millisecond before, with reason expired. */
static void test_message_expiry(void **state)
{
    struct fx *f = *state;
    int64_t t0 = MON_NOON;
    assert_non_null(presence_connect(f->p, "o", "u1", 0, PRESENCE_ONLINE, t0));
    expect_log(f, "u1 ONLINE connect;");

    struct presence_extra x = msg("In a meeting", t0 + HOUR);
    x.emoji = "\xF0\x9F\x93\x85";
    assert_int_equal(set(f, "u1", &x, PRESENCE_KEEP, t0), 0);
    expect_log(f, "u1 ONLINE message In a meeting;");
    assert_int_equal(set(f, "u1", &x, PRESENCE_KEEP, t0 + 1), 0);
    expect_log(f, "");
    assert_string_equal(get(f, "u1")->x->emoji, "\xF0\x9F\x93\x85");

    assert_int_equal(presence_tick(f->p, t0 + HOUR - 1), t0 + HOUR);
    expect_log(f, "");
    presence_tick(f->p, t0 + HOUR);
    expect_log(f, "u1 ONLINE expired;");
    assert_null(get(f, "u1")->x);
    assert_int_equal(presence_tick(f->p, t0 + 2 * HOUR), -1);
    expect_log(f, "");
}

/* Set together with BUSY and "clear the status too": one event for both,
 * and the expiry takes both away. */
static void test_message_clears_status(void **state)
{
    struct fx *f = *state;
    int64_t t0 = MON_NOON;
    assert_non_null(presence_connect(f->p, "o", "u1", 0, PRESENCE_ONLINE, t0));
    expect_log(f, "u1 ONLINE connect;");
    struct presence_extra x = msg("Focus", t0 + 30 * MIN);
    x.clear_status = 1;
    assert_int_equal(set(f, "u1", &x, PRESENCE_BUSY, t0), 0);
    expect_log(f, "u1 BUSY manual Focus;");
    presence_tick(f->p, t0 + 30 * MIN);
    expect_log(f, "u1 ONLINE expired;");
    assert_int_equal(get(f, "u1")->manual, PRESENCE_UNSET);

    /* Without clear_status the status stays. */
    x = msg("Lunch", t0 + HOUR);
    assert_int_equal(set(f, "u1", &x, PRESENCE_BUSY, t0 + 31 * MIN), 0);
    expect_log(f, "u1 BUSY manual Lunch;");
    presence_tick(f->p, t0 + HOUR);
    expect_log(f, "u1 BUSY expired;");
    assert_int_equal(get(f, "u1")->manual, PRESENCE_BUSY);
}

/* Bad times change nothing. */
static void test_refused(void **state)
{
    struct fx *f = *state;
    int64_t t0 = MON_NOON;
    struct presence_extra x = msg("Late", t0);
    assert_int_equal(set(f, "u1", &x, PRESENCE_KEEP, t0), PRESENCE_EINVAL);
    x = msg("ok", 0);
    x.dnd_until_ms = t0 - 1;
    assert_int_equal(set(f, "u1", &x, PRESENCE_KEEP, t0), PRESENCE_EINVAL);
    x = msg("ok", 0);
    snprintf(x.tz, sizeof x.tz, "Mars/Olympus");
    assert_int_equal(set(f, "u1", &x, PRESENCE_KEEP, t0), PRESENCE_EINVAL);
    x = msg("ok", 0);
    x.sched.n = 2;
    x.sched.e[0] = (struct dnd_entry){1, 9 * 60, 12 * 60};
    x.sched.e[1] = (struct dnd_entry){1, 11 * 60, 13 * 60};
    assert_int_equal(set(f, "u1", &x, PRESENCE_KEEP, t0), PRESENCE_EINVAL);
    assert_int_equal(set(f, "nobody", &x, PRESENCE_KEEP, t0),
                     PRESENCE_EINVAL);
    x = msg("ok", 0);
    assert_int_equal(set(f, "nobody", &x, PRESENCE_KEEP, t0),
                     PRESENCE_ENOENT);
    assert_null(get(f, "u1")->x);
    expect_log(f, "");
}

/* DND on until a time, then off by itself; notify says so meanwhile. */
static void test_dnd_until(void **state)
{
    struct fx *f = *state;
    int64_t t0 = MON_NOON, until;
    struct presence_extra x = msg(NULL, 0);
    x.dnd_until_ms = t0 + HOUR;
    assert_int_equal(presence_set_extra(f->p, "o", "u2", &x, PRESENCE_KEEP,
                                        PRESENCE_R_DND, t0),
                     0);
    expect_log(f, "u2 OFFLINE dnd;");
    assert_int_equal(f->dnd[0], 1);
    assert_int_equal(f->until[0], t0 + HOUR);
    assert_int_equal(presence_notify(f->p, "o", "u2", t0, &until), 0);
    assert_int_equal(until, t0 + HOUR);
    assert_int_equal(presence_notify(f->p, "o", "u1", t0, &until), 1);
    f->n = 0;
    presence_tick(f->p, t0 + HOUR);
    expect_log(f, "u2 OFFLINE dnd;");
    assert_int_equal(f->dnd[0], 0);
    assert_int_equal(presence_notify(f->p, "o", "u2", t0 + HOUR, NULL), 1);
    assert_int_equal(presence_notify(f->p, "o", "nobody", t0, NULL),
                     PRESENCE_ENOENT);
}

/* Weekdays 18:00-09:00 in Paris: off at 17:59, on at 18:00 sharp until
 * Tuesday 09:00 (the tick's deadline says when), off again then. */
static void test_dnd_schedule(void **state)
{
    struct fx *f = *state;
    struct presence_extra x = msg(NULL, 0);
    snprintf(x.tz, sizeof x.tz, "Europe/Paris");
    x.sched.n = 1;
    x.sched.e[0] = (struct dnd_entry){0x1f, 18 * 60, 9 * 60};
    int64_t t = MON_1800_PARIS - MIN;
    assert_int_equal(presence_set_extra(f->p, "o", "u1", &x, PRESENCE_KEEP,
                                        PRESENCE_R_DND, t),
                     0);
    expect_log(f, "u1 OFFLINE dnd;"); /* the zone is news to others */
    f->n = 0;
    assert_int_equal(get(f, "u1")->dnd, 0);
    assert_int_equal(presence_tick(f->p, t), MON_1800_PARIS);
    presence_tick(f->p, MON_1800_PARIS - 1);
    expect_log(f, "");
    assert_int_equal(presence_tick(f->p, MON_1800_PARIS), TUE_0900_PARIS);
    expect_log(f, "u1 OFFLINE dnd;");
    assert_int_equal(f->dnd[0], 1);
    assert_int_equal(f->until[0], TUE_0900_PARIS);
    f->n = 0;
    presence_tick(f->p, TUE_0900_PARIS);
    expect_log(f, "u1 OFFLINE dnd;");
    assert_int_equal(f->dnd[0], 0);
}

/* Across the spring-forward night in Paris: 01:00-09:00 daily starts at
 * 00:00Z and ends at 07:00Z (09:00 CEST): 7 hours, not 8. */
static void test_dnd_dst(void **state)
{
    struct fx *f = *state;
    struct presence_extra x = msg(NULL, 0);
    snprintf(x.tz, sizeof x.tz, "Europe/Paris");
    x.sched.n = 1;
    x.sched.e[0] = (struct dnd_entry){0x7f, 60, 9 * 60};
    int64_t t = SUN_0100_PARIS - 30 * MIN;
    assert_int_equal(presence_set_extra(f->p, "o", "u1", &x, PRESENCE_KEEP,
                                        PRESENCE_R_DND, t),
                     0);
    expect_log(f, "u1 OFFLINE dnd;");
    f->n = 0;
    assert_int_equal(presence_tick(f->p, t), SUN_0100_PARIS);
    assert_int_equal(presence_tick(f->p, SUN_0100_PARIS), SUN_0900_PARIS);
    expect_log(f, "u1 OFFLINE dnd;");
    assert_int_equal(f->until[0], SUN_0900_PARIS);
    f->n = 0;
    presence_tick(f->p, SUN_0900_PARIS);
    expect_log(f, "u1 OFFLINE dnd;");
    assert_int_equal(f->dnd[0], 0);
}

/* "While BUSY": DND follows the status, with no known end. */
static void test_dnd_while_busy(void **state)
{
    struct fx *f = *state;
    int64_t t0 = MON_NOON;
    assert_non_null(presence_connect(f->p, "o", "u1", 0, PRESENCE_ONLINE, t0));
    expect_log(f, "u1 ONLINE connect;");
    struct presence_extra x = msg(NULL, 0);
    x.dnd_busy = 1;
    assert_int_equal(presence_set_extra(f->p, "o", "u1", &x, PRESENCE_KEEP,
                                        PRESENCE_R_DND, t0),
                     0);
    expect_log(f, ""); /* nothing others see changed yet */
    f->n = 0;
    assert_int_equal(presence_set_manual(f->p, "o", "u1", PRESENCE_BUSY, t0),
                     0);
    expect_log(f, "u1 BUSY manual;");
    assert_int_equal(f->dnd[0], 1);
    assert_int_equal(f->until[0], -1);
    f->n = 0;
    assert_int_equal(presence_set_manual(f->p, "o", "u1", PRESENCE_ONLINE, t0),
                     0);
    expect_log(f, "u1 ONLINE manual;");
    assert_int_equal(f->dnd[0], 0);
}

/* A restart in the middle of an expiry window: loaded as stored, cleared
 * (and stored again, x_dirty) at the first tick if the time has passed,
 * else at its time. */
static void dirty_cb(void *ud, const struct presence_member *m)
{
    int *n = ud;
    if (m->x_dirty)
        (*n)++;
}

static void test_load_after_restart(void **state)
{
    struct fx *f = *state;
    int64_t t0 = MON_NOON, dirty = 0;
    struct presence_extra x = msg("Old", t0 - MIN);
    assert_int_equal(presence_load_extra(f->p, "o", "u1", &x, t0), 0);
    x = msg("Still", t0 + MIN);
    assert_int_equal(presence_load_extra(f->p, "o", "u2", &x, t0), 0);
    expect_log(f, "");
    int n = 0;
    presence_drain_dirty(f->p, dirty_cb, &n);
    assert_int_equal(n, 0); /* nothing to write back yet */
    assert_int_equal(presence_tick(f->p, t0), t0 + MIN);
    expect_log(f, "u1 OFFLINE expired;");
    presence_drain_dirty(f->p, dirty_cb, &n);
    assert_int_equal(n, 1);
    presence_tick(f->p, t0 + MIN);
    expect_log(f, "u2 OFFLINE expired;");
    (void)dirty;
}

/* Hidden last_seen: others see none; the member itself still does. */
static void test_hide_last_seen(void **state)
{
    struct fx *f = *state;
    int64_t t0 = MON_NOON;
    struct presence_conn *c =
        presence_connect(f->p, "o", "u1", 0, PRESENCE_ONLINE, t0);
    presence_disconnect(f->p, c, t0 + 1, PRESENCE_NOW);
    expect_log(f, "u1 ONLINE connect;u1 OFFLINE disconnect;");
    struct presence_extra x = msg(NULL, 0);
    x.hide_last_seen = 1;
    assert_int_equal(presence_set_extra(f->p, "o", "u1", &x, PRESENCE_KEEP,
                                        PRESENCE_R_PROFILE, t0 + 2),
                     0);
    expect_log(f, "u1 OFFLINE profile;");
    struct presence_member m = *get(f, "u1");
    assert_int_equal(m.last_seen_ms, t0 + 1);
    presence_public(&m);
    assert_int_equal(m.last_seen_ms, 0);
}

/* Many users with expiries: each clears at its own time, in order. */
static void test_many_expiries(void **state)
{
    struct fx *f = *state;
    int64_t t0 = MON_NOON;
    char id[16];
    for (int i = 0; i < 500; i++) {
        snprintf(id, sizeof id, "m%d", i);
        assert_int_equal(presence_add_user(f->p, "big", id, NULL,
                                           PRESENCE_OFFLINE, PRESENCE_UNSET,
                                           0, 0),
                         0);
        /* 0, 7, 14, ... minutes mod 500: every minute a distinct user. */
        struct presence_extra x = msg("m", t0 + MIN * (1 + (i * 7) % 500));
        assert_int_equal(presence_set_extra(f->p, "big", id, &x,
                                            PRESENCE_KEEP, PRESENCE_R_MESSAGE,
                                            t0),
                         0);
    }
    f->n = 0;
    f->log[0] = 0;
    for (int k = 1; k <= 500; k++) {
        size_t before = f->n;
        int64_t next = presence_tick(f->p, t0 + MIN * k);
        assert_int_equal(f->n - before, 1);
        assert_int_equal(next, k < 500 ? t0 + MIN * (k + 1) : -1);
        f->log[0] = 0;
    }
}

/* ---- the JSON ---------------------------------------------------------- */

static int patch(struct extra_rec *r, const char *json, int64_t now,
                 char *err)
{
    json_error_t je;
    json_t *j = json_loads(json, 0, &je);
    assert_non_null(j);
    int rc = extra_patch(r, (const struct json_t *)j, now, NULL, err, 160);
    json_decref(j);
    return rc;
}

static void test_patch(void **state)
{
    (void)state;
    struct extra_rec r;
    char err[160];
    int64_t t0 = MON_NOON;
    extra_rec_from(&r, NULL);
    assert_int_equal(patch(&r, "{\"message\":{\"text\":\"In a meeting\","
                               "\"emoji\":\"\xF0\x9F\x93\x85\","
                               "\"expires\":\"30m\"}}", t0, err), 0);
    assert_string_equal(r.x.text, "In a meeting");
    assert_int_equal(r.x.expires_ms, t0 + 30 * MIN);
    /* "today" is the end of the day where the user is, after the patch. */
    assert_int_equal(patch(&r, "{\"tz\":\"Europe/Paris\",\"message\":{"
                               "\"text\":\"Out sick\",\"expires\":\"today\"}}",
                           t0, err), 0);
    assert_int_equal(r.x.expires_ms, TUE_0000_PARIS);
    assert_int_equal(patch(&r, "{\"message\":{\"text\":\"x\",\"expires\":"
                               "\"2026-03-24T09:00+01:00\"}}", t0, err), 0);
    assert_int_equal(r.x.expires_ms, TUE_0900_PARIS);
    assert_int_equal(patch(&r, "{\"message\":{\"text\":\"x\",\"expires\":"
                               "\"2026-03-24T08:00:00.000Z\"}}", t0, err), 0);
    assert_int_equal(r.x.expires_ms, TUE_0900_PARIS);

    struct extra_rec before = r;
    /* 101 characters (of two bytes each) is one too many; 100 is fine. */
    char long_text[300] = "{\"message\":{\"text\":\"";
    for (int i = 0; i < 101; i++)
        strcat(long_text, "\xC3\xA9");
    strcat(long_text, "\"}}");
    assert_int_equal(patch(&r, long_text, t0, err), EXTRA_EMESSAGE);
    assert_memory_equal(&r, &before, sizeof r - sizeof r.text - sizeof r.emoji);
    memcpy(long_text + strlen(long_text) - 5, "\"}}", 4);
    assert_int_equal(patch(&r, long_text, t0, err), 0);
    r = before;
    extra_rec_fix(&r);
    assert_int_equal(patch(&r, "{\"message\":{\"text\":\"a\\u0007b\"}}", t0,
                           err), EXTRA_EMESSAGE);
    assert_int_equal(patch(&r, "{\"message\":{\"text\":\"a\\u2028b\"}}", t0,
                           err), EXTRA_EMESSAGE);
    assert_int_equal(patch(&r, "{\"message\":{\"text\":\"x\",\"expires\":"
                               "\"2020-01-01T00:00Z\"}}", t0, err),
                     EXTRA_EEXPIRY);
    assert_int_equal(patch(&r, "{\"message\":{\"text\":\"x\",\"expires\":"
                               "\"2026-03-24T09:00\"}}", t0, err),
                     EXTRA_EEXPIRY); /* no offset: refused, not guessed */
    assert_int_equal(patch(&r, "{\"message\":{\"text\":\"x\",\"expires\":"
                               "\"soon\"}}", t0, err), EXTRA_EEXPIRY);
    assert_int_equal(patch(&r, "{\"tz\":\"Mars/Olympus\"}", t0, err),
                     EXTRA_ETZ);
    assert_int_equal(patch(&r, "{\"dnd\":{\"until\":1}}", t0, err),
                     EXTRA_EDND);
    assert_int_equal(patch(&r, "{\"dnd\":{\"schedule\":[{\"days\":[\"mon\"],"
                               "\"start\":\"09:00\",\"end\":\"12:00\"},"
                               "{\"days\":[\"mon\"],\"start\":\"11:00\","
                               "\"end\":\"13:00\"}]}}", t0, err),
                     EXTRA_ESCHEDULE);
    assert_int_equal(patch(&r, "{\"dnd\":{\"schedule\":[]}}", t0, err), 0);
    assert_int_equal(patch(&r, "{\"dnd\":{\"schedule\":[{\"days\":[],"
                               "\"start\":\"09:00\",\"end\":\"12:00\"}]}}",
                           t0, err),
                     EXTRA_ESCHEDULE);
    assert_int_equal(patch(&r, "{\"hide_last_seen\":\"yes\"}", t0, err),
                     EXTRA_EFIELD);
    assert_string_equal(r.x.text, "x");
    assert_string_equal(r.x.tz, "Europe/Paris");
    assert_int_equal(patch(&r, "{\"message\":null}", t0, err), 0);
    assert_null(r.x.text);
}

static void test_encode_parse(void **state)
{
    (void)state;
    struct extra_rec r, back;
    char err[160];
    struct buf b;
    extra_rec_from(&r, NULL);
    assert_int_equal(patch(&r, "{\"tz\":\"America/New_York\","
                               "\"hide_last_seen\":true,"
                               "\"message\":{\"text\":\"On \\\"vacation\\\"\","
                               "\"emoji\":\"\xF0\x9F\x8C\xB4\",\"expires\":"
                               "\"week\",\"clear_status\":true},"
                               "\"dnd\":{\"until\":\"4h\",\"while_busy\":true,"
                               "\"schedule\":[{\"days\":[\"sat\",\"sun\"],"
                               "\"start\":\"00:00\",\"end\":\"24:00\"}]}}",
                           MON_NOON, err), 0);
    buf_init(&b, 0);
    assert_int_equal(extra_encode(&b, &r.x), 0);
    assert_int_equal(extra_parse(b.data, b.len, &back), 0);
    assert_string_equal(back.x.text, "On \"vacation\"");
    assert_string_equal(back.x.emoji, "\xF0\x9F\x8C\xB4");
    assert_int_equal(back.x.expires_ms, r.x.expires_ms);
    assert_int_equal(back.x.clear_status, 1);
    assert_int_equal(back.x.dnd_until_ms, MON_NOON + 4 * HOUR);
    assert_int_equal(back.x.dnd_busy, 1);
    assert_int_equal(back.x.sched.n, 1);
    assert_int_equal(back.x.sched.e[0].days, 0x60);
    assert_string_equal(back.x.tz, "America/New_York");
    assert_int_equal(back.x.hide_last_seen, 1);
    buf_reset(&b);
    assert_int_equal(extra_encode(&b, NULL), 0);
    assert_int_equal(extra_parse(b.data, b.len, &back), 0);
    assert_null(back.x.text);
    assert_int_equal(extra_parse("not json", 8, &back), -1);
    buf_dispose(&b);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_message_expiry),
        T(test_message_clears_status),
        T(test_refused),
        T(test_dnd_until),
        T(test_dnd_schedule),
        T(test_dnd_dst),
        T(test_dnd_while_busy),
        T(test_load_after_restart),
        T(test_hide_last_seen),
        T(test_many_expiries),
        cmocka_unit_test(test_patch),
        cmocka_unit_test(test_encode_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
