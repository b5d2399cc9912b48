/* test_dnd.c - Do Not Disturb schedules and time zones (presence/dnd.c).
 *
 * The clock is fake: every "now" is a fixed instant. Expected instants are
 * written as UTC wall times, U(y, mo, d, h, mi), with the local time and
 * offset they stand for in a comment, worked out by hand from the zones'
 * rules (EU: last Sunday of March 01:00Z to last Sunday of October 01:00Z;
 * US: second Sunday of March 02:00 local to first Sunday of November 02:00
 * local), never from the code under test. U() itself is plain civil-date
 * arithmetic, checked against known epoch values first. */
/* cmocka.h needs these first, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
/* clang-format on */

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "presence/dnd.h"

#define PARIS "Europe/Paris"
#define NYC "America/New_York"

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's
 * days_from_civil), then ms. */
static int64_t U(int y, int m, int d, int h, int mi)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;
    return ((days * 24 + h) * 60 + mi) * 60000;
}
#define MIN 60000LL
#define HOUR (60 * MIN)

static void test_utc_helper(void **state)
{
    assert_int_equal(U(1970, 1, 1, 0, 0), 0);
    assert_int_equal(U(2000, 3, 1, 0, 0), 951868800000LL);
    /* date -ud 2026-01-05T17:00Z +%s */
    assert_int_equal(U(2026, 1, 5, 17, 0), 1767632400000LL);
    assert_int_equal(U(2026, 11, 1, 5, 30), 1793511000000LL);
}

/* ---- time zones ------------------------------------------------------ */

static void test_tz_valid(void **state)
{
    char longname[TZ_NAME_MAX + 2];
    assert_int_equal(tz_valid("Europe/Paris"), 1);
    assert_int_equal(tz_valid("America/New_York"), 1);
    assert_int_equal(tz_valid("UTC"), 1);
    assert_int_equal(tz_valid("Etc/GMT+5"), 1);
    assert_int_equal(tz_valid("US/Eastern"), 1); /* an alias */
    assert_int_equal(tz_valid("America/Port-au-Prince"), 1);

    assert_int_equal(tz_valid("Mars/Olympus"), 0);
    assert_int_equal(tz_valid(""), 0);
    assert_int_equal(tz_valid(NULL), 0);
    assert_int_equal(tz_valid("../etc"), 0);
    assert_int_equal(tz_valid("/etc/localtime"), 0);
    assert_int_equal(tz_valid("Europe/Paris "), 0);
    assert_int_equal(tz_valid("europe/paris"), 0); /* case as written */
    assert_int_equal(tz_valid("Etc/Unknown"), 0);  /* ICU's fallback */
    assert_int_equal(tz_valid("GMT+5"), 0);        /* a custom offset */
    assert_int_equal(tz_valid("GMT+05:00"), 0);
    assert_int_equal(tz_valid("Europe/Par\xc3\xa9s"), 0);

    /* 64 bytes of the right shape pass the length check and fail the
     * lookup; 65 fail the length check. */
    memset(longname, 'A', sizeof longname);
    longname[TZ_NAME_MAX] = '\0';
    assert_int_equal(tz_valid(longname), 0);
    longname[TZ_NAME_MAX] = 'A';
    longname[TZ_NAME_MAX + 1] = '\0';
    assert_int_equal(tz_valid(longname), 0);
}

static void test_tz_offset(void **state)
{
    assert_int_equal(tz_offset_min(PARIS, U(2026, 1, 15, 12, 0)), 60);
    assert_int_equal(tz_offset_min(PARIS, U(2026, 7, 15, 12, 0)), 120);
    /* The EU switch is at 01:00Z: one minute either side. */
    assert_int_equal(tz_offset_min(PARIS, U(2026, 3, 29, 0, 59)), 60);
    assert_int_equal(tz_offset_min(PARIS, U(2026, 3, 29, 1, 0)), 120);
    assert_int_equal(tz_offset_min(PARIS, U(2026, 10, 25, 0, 59)), 120);
    assert_int_equal(tz_offset_min(PARIS, U(2026, 10, 25, 1, 0)), 60);
    /* US: 02:00 EST = 07:00Z; 02:00 EDT = 06:00Z. */
    assert_int_equal(tz_offset_min(NYC, U(2026, 3, 8, 6, 59)), -300);
    assert_int_equal(tz_offset_min(NYC, U(2026, 3, 8, 7, 0)), -240);
    assert_int_equal(tz_offset_min(NYC, U(2026, 11, 1, 5, 59)), -240);
    assert_int_equal(tz_offset_min(NYC, U(2026, 11, 1, 6, 0)), -300);
    assert_int_equal(tz_offset_min("Asia/Kathmandu", U(2026, 1, 1, 0, 0)), 345);
    assert_int_equal(tz_offset_min("UTC", U(2026, 7, 1, 0, 0)), 0);
    assert_int_equal(tz_offset_min("Mars/Olympus", U(2026, 7, 1, 0, 0)), 0);
}

static void test_tz_local(void **state)
{
    struct tz_local l;
    /* 2026-03-29 01:00Z is 03:00 CEST, the first instant after the gap,
     * a Sunday. */
    assert_int_equal(tz_local(PARIS, U(2026, 3, 29, 1, 0), &l), 0);
    assert_int_equal(l.year, 2026);
    assert_int_equal(l.month, 3);
    assert_int_equal(l.day, 29);
    assert_int_equal(l.wday, 6);
    assert_int_equal(l.hour, 3);
    assert_int_equal(l.minute, 0);
    /* One minute before: 01:59 CET. */
    assert_int_equal(tz_local(PARIS, U(2026, 3, 29, 0, 59), &l), 0);
    assert_int_equal(l.hour, 1);
    assert_int_equal(l.minute, 59);
    /* 2026-01-01 04:30Z is Wednesday 2025-12-31 23:30 in New York. */
    assert_int_equal(tz_local(NYC, U(2026, 1, 1, 4, 30), &l), 0);
    assert_int_equal(l.year, 2025);
    assert_int_equal(l.month, 12);
    assert_int_equal(l.day, 31);
    assert_int_equal(l.wday, 2);
    assert_int_equal(l.hour, 23);
    assert_int_equal(l.minute, 30);
    /* 2026-01-05 is a Monday. */
    assert_int_equal(tz_local("UTC", U(2026, 1, 5, 0, 0), &l), 0);
    assert_int_equal(l.wday, 0);
    assert_int_equal(tz_local("Mars/Olympus", 0, &l), -1);
}

static void test_end_of_day(void **state)
{
    /* Saturday 2026-03-28 12:00 CET (11:00Z) -> Sunday 00:00 CET. */
    assert_int_equal(tz_end_of_day(PARIS, U(2026, 3, 28, 11, 0)),
                     U(2026, 3, 28, 23, 0));
    /* Sunday 2026-03-29 is 23 hours long in Paris: its midnight is 23:00Z
     * on the 28th (CET) and the next is 22:00Z on the 29th (CEST). */
    assert_int_equal(tz_end_of_day(PARIS, U(2026, 3, 28, 23, 0)),
                     U(2026, 3, 29, 22, 0));
    assert_int_equal(U(2026, 3, 29, 22, 0) - U(2026, 3, 28, 23, 0), 23 * HOUR);
    /* 12:00 CEST (10:00Z) the same day -> the same midnight. */
    assert_int_equal(tz_end_of_day(PARIS, U(2026, 3, 29, 10, 0)),
                     U(2026, 3, 29, 22, 0));
    /* One ms before midnight, and midnight itself: "after now". */
    assert_int_equal(tz_end_of_day(PARIS, U(2026, 3, 29, 22, 0) - 1),
                     U(2026, 3, 29, 22, 0));
    assert_int_equal(tz_end_of_day(PARIS, U(2026, 3, 29, 22, 0)),
                     U(2026, 3, 30, 22, 0));
    /* Sunday 2026-10-25 is 25 hours long: 00:00 CEST = 22:00Z on the
     * 24th, the next midnight 00:00 CET = 23:00Z on the 25th. */
    assert_int_equal(tz_end_of_day(PARIS, U(2026, 10, 25, 11, 0)),
                     U(2026, 10, 25, 23, 0));
    assert_int_equal(tz_end_of_day(PARIS, U(2026, 10, 24, 22, 0)),
                     U(2026, 10, 25, 23, 0));

    /* New York, Sunday 2026-03-08 (23 h): 12:00 EDT = 16:00Z -> Monday
     * 00:00 EDT = 04:00Z; from 00:00 EST (05:00Z) it is the same. */
    assert_int_equal(tz_end_of_day(NYC, U(2026, 3, 8, 16, 0)),
                     U(2026, 3, 9, 4, 0));
    assert_int_equal(tz_end_of_day(NYC, U(2026, 3, 8, 5, 0)),
                     U(2026, 3, 9, 4, 0));
    /* Sunday 2026-11-01 (25 h), at 01:30 EDT (05:30Z, the first 01:30)
     * and at 01:30 EST (06:30Z, the second) -> Monday 00:00 EST = 05:00Z. */
    assert_int_equal(tz_end_of_day(NYC, U(2026, 11, 1, 5, 30)),
                     U(2026, 11, 2, 5, 0));
    assert_int_equal(tz_end_of_day(NYC, U(2026, 11, 1, 6, 30)),
                     U(2026, 11, 2, 5, 0));
    /* Late evening local is already the next day in UTC: Wednesday
     * 2025-12-31 23:30 EST (04:30Z on the 1st) -> 00:00 EST = 05:00Z. */
    assert_int_equal(tz_end_of_day(NYC, U(2026, 1, 1, 4, 30)),
                     U(2026, 1, 1, 5, 0));

    /* Month and year ends. */
    assert_int_equal(tz_end_of_day("UTC", U(2026, 12, 31, 23, 59)),
                     U(2027, 1, 1, 0, 0));
    assert_int_equal(tz_end_of_day("UTC", U(2028, 2, 28, 12, 0)),
                     U(2028, 2, 29, 0, 0));
    assert_int_equal(tz_end_of_day("Mars/Olympus", 0), -1);
}

static void test_end_of_week(void **state)
{
    /* Sunday 2026-03-29 12:00 CEST -> Monday 2026-03-30 00:00 CEST. */
    assert_int_equal(tz_end_of_week(PARIS, U(2026, 3, 29, 10, 0)),
                     U(2026, 3, 29, 22, 0));
    /* Wednesday 2026-03-25 12:00 CET (11:00Z): the week holds the 23-hour
     * Sunday, and still ends at Monday 00:00 CEST. */
    assert_int_equal(tz_end_of_week(PARIS, U(2026, 3, 25, 11, 0)),
                     U(2026, 3, 29, 22, 0));
    /* Monday 2026-01-05 00:00 CET (23:00Z on the 4th): a week on. */
    assert_int_equal(tz_end_of_week(PARIS, U(2026, 1, 4, 23, 0)),
                     U(2026, 1, 11, 23, 0));
    /* The same instant is Sunday 18:00 in New York -> Monday 00:00 EST. */
    assert_int_equal(tz_end_of_week(NYC, U(2026, 1, 4, 23, 0)),
                     U(2026, 1, 5, 5, 0));
    /* Wednesday 2026-03-04 15:00 EST (20:00Z) -> Monday 2026-03-09
     * 00:00 EDT (04:00Z), past the spring-forward Sunday. */
    assert_int_equal(tz_end_of_week(NYC, U(2026, 3, 4, 20, 0)),
                     U(2026, 3, 9, 4, 0));
    /* Saturday 2026-10-31 12:00 EDT (16:00Z) -> Monday 2026-11-02 00:00
     * EST (05:00Z), past the fall-back Sunday. */
    assert_int_equal(tz_end_of_week(NYC, U(2026, 10, 31, 16, 0)),
                     U(2026, 11, 2, 5, 0));
    assert_int_equal(tz_end_of_week("", 0), -1);
}

/* Zones whose clocks jump at midnight: the day starts at the end of the
 * gap. */
static void test_midnight_gaps(void **state)
{
    struct tz_local l;
    /* Havana, Sunday 2026-03-08: 00:00 CST (-5) becomes 01:00 CDT (-4) =
     * 05:00Z. From Saturday 12:00 CST (17:00Z). */
    assert_int_equal(tz_end_of_day("America/Havana", U(2026, 3, 7, 17, 0)),
                     U(2026, 3, 8, 5, 0));
    /* Santiago, Sunday 2026-09-06: 00:00 (-4) becomes 01:00 (-3) =
     * 04:00Z. From Saturday 12:00 -4 (16:00Z). */
    assert_int_equal(tz_end_of_day("America/Santiago", U(2026, 9, 5, 16, 0)),
                     U(2026, 9, 6, 4, 0));
    /* Apia skipped Friday 2011-12-30 whole: Thursday 24:00 -10 (10:00Z)
     * was Saturday 00:00 +14. From Thursday 12:00 -10 (22:00Z). */
    assert_int_equal(tz_end_of_day("Pacific/Apia", U(2011, 12, 29, 22, 0)),
                     U(2011, 12, 30, 10, 0));
    assert_int_equal(tz_local("Pacific/Apia", U(2011, 12, 30, 10, 0), &l), 0);
    assert_int_equal(l.day, 31);
    assert_int_equal(l.wday, 5);
    assert_int_equal(l.hour, 0);
}

/* ---- schedules ------------------------------------------------------- */

#define MON 0x01u
#define TUE 0x02u
#define WED 0x04u
#define THU 0x08u
#define FRI 0x10u
#define SAT 0x20u
#define SUN 0x40u
#define WEEKDAYS (MON | TUE | WED | THU | FRI)
#define HM(h, m) ((h)*60 + (m))

/* Weekdays 18:00-09:00, weekends all day. */
static const struct dnd_sched evenings = {
    2, {{WEEKDAYS, HM(18, 0), HM(9, 0)}, {SAT | SUN, 0, 1440}}};
/* The same with Monday 00:00-09:00, so that the weekend runs into the
 * working week's first morning. */
static const struct dnd_sched nights = {3,
                                        {{WEEKDAYS, HM(18, 0), HM(9, 0)},
                                         {SAT | SUN, 0, 1440},
                                         {MON, 0, HM(9, 0)}}};

static struct dnd_state eval(const struct dnd_sched *s, const char *tz,
                             int64_t now)
{
    struct dnd_state st;
    memset(&st, 0x55, sizeof st);
    if (dnd_eval(s, tz, now, &st) != 0)
        fail_msg("dnd_eval failed at %lld", (long long)now);
    return st;
}
#define ON(s, tz, now, until)                                                  \
    do {                                                                       \
        struct dnd_state st_ = eval(s, tz, now);                               \
        assert_int_equal(st_.on, 1);                                           \
        assert_int_equal(st_.until_ms, (until));                               \
        assert_int_equal(st_.next_ms, (until));                                \
    } while (0)
#define OFF(s, tz, now, next)                                                  \
    do {                                                                       \
        struct dnd_state st_ = eval(s, tz, now);                               \
        assert_int_equal(st_.on, 0);                                           \
        assert_int_equal(st_.until_ms, -1);                                    \
        assert_int_equal(st_.next_ms, (next));                                 \
    } while (0)

static void test_eval_evenings(void **state)
{
    /* January 2026, Paris on CET (+1). Monday 2026-01-05 17:59 CET =
     * 16:59Z: off, starts at 18:00 CET = 17:00Z. */
    OFF(&evenings, PARIS, U(2026, 1, 5, 16, 59), U(2026, 1, 5, 17, 0));
    OFF(&evenings, PARIS, U(2026, 1, 5, 17, 0) - 1, U(2026, 1, 5, 17, 0));
    /* 18:00 CET: on until Tuesday 09:00 CET = 08:00Z. */
    ON(&evenings, PARIS, U(2026, 1, 5, 17, 0), U(2026, 1, 6, 8, 0));
    /* Tuesday 08:59 CET still on; 09:00 off until 18:00 (17:00Z). */
    ON(&evenings, PARIS, U(2026, 1, 6, 7, 59), U(2026, 1, 6, 8, 0));
    OFF(&evenings, PARIS, U(2026, 1, 6, 8, 0), U(2026, 1, 6, 17, 0));
    /* Wednesday 12:00 CET (11:00Z): off until 18:00 CET. */
    OFF(&evenings, PARIS, U(2026, 1, 7, 11, 0), U(2026, 1, 7, 17, 0));
    /* Friday 2026-01-09 20:00 CET (19:00Z): Friday's evening runs into
     * Saturday, then the weekend. Nothing covers Monday 00:00-09:00 (the
     * weekday entries start in the evening and Sunday is not one), so the
     * run ends with Sunday: Monday 2026-01-12 00:00 CET = 2026-01-11
     * 23:00Z. */
    ON(&evenings, PARIS, U(2026, 1, 9, 19, 0), U(2026, 1, 11, 23, 0));
    /* Saturday 10:00 (the run began the day before) and Sunday 23:59 are
     * in the same run; Monday 00:00 and 08:59 are off until 18:00. */
    ON(&evenings, PARIS, U(2026, 1, 10, 9, 0), U(2026, 1, 11, 23, 0));
    ON(&evenings, PARIS, U(2026, 1, 11, 22, 59), U(2026, 1, 11, 23, 0));
    OFF(&evenings, PARIS, U(2026, 1, 11, 23, 0), U(2026, 1, 12, 17, 0));
    OFF(&evenings, PARIS, U(2026, 1, 12, 7, 59), U(2026, 1, 12, 17, 0));

    /* With Monday 00:00-09:00 added, Friday 20:00 runs to Monday 09:00
     * CET = 08:00Z, and Monday 09:00 is off until 18:00. */
    ON(&nights, PARIS, U(2026, 1, 9, 19, 0), U(2026, 1, 12, 8, 0));
    ON(&nights, PARIS, U(2026, 1, 10, 9, 0), U(2026, 1, 12, 8, 0));
    ON(&nights, PARIS, U(2026, 1, 11, 23, 0), U(2026, 1, 12, 8, 0));
    ON(&nights, PARIS, U(2026, 1, 12, 7, 59), U(2026, 1, 12, 8, 0));
    OFF(&nights, PARIS, U(2026, 1, 12, 8, 0), U(2026, 1, 12, 17, 0));
    OFF(&nights, PARIS, U(2026, 1, 7, 11, 0), U(2026, 1, 7, 17, 0));

    /* The same schedules read in New York (EST, -5): the same instants
     * mean other local times. 16:59Z is Monday 11:59 EST: off until
     * 18:00 EST = 23:00Z. */
    OFF(&evenings, NYC, U(2026, 1, 5, 16, 59), U(2026, 1, 5, 23, 0));
    /* Saturday 2026-01-10 10:00 EST (15:00Z): on until Monday 00:00 EST =
     * 05:00Z, or with the Monday morning 09:00 EST = 14:00Z. */
    ON(&evenings, NYC, U(2026, 1, 10, 15, 0), U(2026, 1, 12, 5, 0));
    ON(&nights, NYC, U(2026, 1, 10, 15, 0), U(2026, 1, 12, 14, 0));

    /* Across the EU switch: Friday 2026-03-27 20:00 CET (19:00Z) is on
     * until Monday 2026-03-30 00:00, now CEST (+2): 2026-03-29 22:00Z;
     * with the Monday morning, until 09:00 CEST = 07:00Z. */
    ON(&evenings, PARIS, U(2026, 3, 27, 19, 0), U(2026, 3, 29, 22, 0));
    ON(&nights, PARIS, U(2026, 3, 27, 19, 0), U(2026, 3, 30, 7, 0));
    /* The week before (CET: 08:00Z) and after (CEST: 07:00Z). */
    ON(&nights, PARIS, U(2026, 3, 20, 19, 0), U(2026, 3, 23, 8, 0));
    ON(&nights, PARIS, U(2026, 4, 3, 18, 0), U(2026, 4, 6, 7, 0));
}

static void test_eval_dst_nights(void **state)
{
    /* 01:00-09:00 every day. */
    const struct dnd_sched s = {1, {{DND_DAYS_ALL, HM(1, 0), HM(9, 0)}}};

    /* Paris, Sunday 2026-03-29: 01:00 CET = 00:00Z; 09:00 CEST = 07:00Z
     * (7 hours). */
    OFF(&s, PARIS, U(2026, 3, 28, 23, 30), U(2026, 3, 29, 0, 0));
    ON(&s, PARIS, U(2026, 3, 29, 0, 0), U(2026, 3, 29, 7, 0));
    ON(&s, PARIS, U(2026, 3, 29, 0, 30), U(2026, 3, 29, 7, 0));
    ON(&s, PARIS, U(2026, 3, 29, 1, 0), U(2026, 3, 29, 7, 0));
    OFF(&s, PARIS, U(2026, 3, 29, 7, 0), U(2026, 3, 29, 23, 0));
    /* The day before, on CET: 09:00 = 08:00Z. */
    ON(&s, PARIS, U(2026, 3, 28, 1, 0), U(2026, 3, 28, 8, 0));

    /* Paris, Sunday 2026-10-25: 01:00 CEST = 23:00Z on the 24th; 09:00
     * CET = 08:00Z (9 hours). Inside the repeated hour, both times. */
    OFF(&s, PARIS, U(2026, 10, 24, 22, 59), U(2026, 10, 24, 23, 0));
    ON(&s, PARIS, U(2026, 10, 24, 23, 30), U(2026, 10, 25, 8, 0));
    ON(&s, PARIS, U(2026, 10, 25, 0, 30), U(2026, 10, 25, 8, 0));
    ON(&s, PARIS, U(2026, 10, 25, 1, 30), U(2026, 10, 25, 8, 0));
    ON(&s, PARIS, U(2026, 10, 25, 5, 0), U(2026, 10, 25, 8, 0));
    /* The next night: 01:00 CET = 00:00Z on the 26th. */
    OFF(&s, PARIS, U(2026, 10, 25, 8, 0), U(2026, 10, 26, 0, 0));

    /* New York, Sunday 2026-03-08: 01:00 EST = 06:00Z; 09:00 EDT =
     * 13:00Z. The day before: 09:00 EST = 14:00Z. */
    ON(&s, NYC, U(2026, 3, 8, 6, 30), U(2026, 3, 8, 13, 0));
    ON(&s, NYC, U(2026, 3, 8, 7, 0), U(2026, 3, 8, 13, 0));
    ON(&s, NYC, U(2026, 3, 7, 6, 0), U(2026, 3, 7, 14, 0));
    OFF(&s, NYC, U(2026, 3, 7, 14, 0), U(2026, 3, 8, 6, 0));
    /* The next night: 01:00 EDT = 05:00Z. */
    OFF(&s, NYC, U(2026, 3, 8, 13, 0), U(2026, 3, 9, 5, 0));

    /* New York, Sunday 2026-11-01: 01:00 EDT (the first one) = 05:00Z;
     * 09:00 EST = 14:00Z. 01:30 EDT (05:30Z) and 01:30 EST (06:30Z) are
     * both inside. */
    OFF(&s, NYC, U(2026, 11, 1, 4, 59), U(2026, 11, 1, 5, 0));
    ON(&s, NYC, U(2026, 11, 1, 5, 0), U(2026, 11, 1, 14, 0));
    ON(&s, NYC, U(2026, 11, 1, 5, 30), U(2026, 11, 1, 14, 0));
    ON(&s, NYC, U(2026, 11, 1, 6, 30), U(2026, 11, 1, 14, 0));
    /* The next night: 01:00 EST = 06:00Z. */
    OFF(&s, NYC, U(2026, 11, 1, 14, 0), U(2026, 11, 2, 6, 0));
}

static void test_eval_gap_and_repeat(void **state)
{
    /* Sunday 02:30-04:00. */
    const struct dnd_sched s = {1, {{SUN, HM(2, 30), HM(4, 0)}}};
    /* Paris 2026-03-29: 02:30 does not exist; the entry starts at the
     * first instant after the gap, 03:00 CEST = 01:00Z, and ends 04:00
     * CEST = 02:00Z. 01:59 CET = 00:59Z is before it. */
    OFF(&s, PARIS, U(2026, 3, 29, 0, 59), U(2026, 3, 29, 1, 0));
    ON(&s, PARIS, U(2026, 3, 29, 1, 0), U(2026, 3, 29, 2, 0));
    /* Paris 2026-10-25: 02:30 happens twice; the first, 02:30 CEST =
     * 00:30Z, starts it; 04:00 CET = 03:00Z ends it. */
    OFF(&s, PARIS, U(2026, 10, 25, 0, 29), U(2026, 10, 25, 0, 30));
    ON(&s, PARIS, U(2026, 10, 25, 0, 30), U(2026, 10, 25, 3, 0));
    /* New York 2026-03-08: 02:30 -> 03:00 EDT = 07:00Z; 04:00 EDT =
     * 08:00Z. */
    OFF(&s, NYC, U(2026, 3, 8, 6, 59), U(2026, 3, 8, 7, 0));
    ON(&s, NYC, U(2026, 3, 8, 7, 0), U(2026, 3, 8, 8, 0));

    /* Sunday 02:15-02:45 lies wholly in the Paris gap: that Sunday it is
     * empty, and the next start is a week on, 02:15 CEST = 00:15Z. */
    const struct dnd_sched g = {1, {{SUN, HM(2, 15), HM(2, 45)}}};
    OFF(&g, PARIS, U(2026, 3, 29, 0, 30), U(2026, 4, 5, 0, 15));
    OFF(&g, PARIS, U(2026, 3, 29, 1, 0), U(2026, 4, 5, 0, 15));
    /* Midnight-to-02:30 on that night ends at 03:00 CEST (01:00Z). */
    const struct dnd_sched m = {1, {{SUN, 0, HM(2, 30)}}};
    ON(&m, PARIS, U(2026, 3, 28, 23, 0), U(2026, 3, 29, 1, 0));

    /* Havana's Sunday 2026-03-08 starts at 01:00 CDT (05:00Z): 00:00-02:00
     * runs 05:00Z-06:00Z. */
    OFF(&m, "America/Havana", U(2026, 3, 8, 4, 59), U(2026, 3, 8, 5, 0));
    const struct dnd_sched h = {1, {{SUN, 0, HM(2, 0)}}};
    ON(&h, "America/Havana", U(2026, 3, 8, 5, 0), U(2026, 3, 8, 6, 0));
    /* A Friday entry on the Friday Apia skipped: empty; from Thursday
     * 2011-12-29 12:00 -10 (22:00Z) the next start is Friday 2012-01-06
     * 09:00 +14 = 2012-01-05 19:00Z. */
    const struct dnd_sched f = {1, {{FRI, HM(9, 0), HM(17, 0)}}};
    OFF(&f, "Pacific/Apia", U(2011, 12, 29, 22, 0), U(2012, 1, 5, 19, 0));
}

static void test_eval_whole_week(void **state)
{
    const struct dnd_sched all = {1, {{DND_DAYS_ALL, 0, 1440}}};
    struct dnd_state st = eval(&all, PARIS, U(2026, 3, 29, 1, 0));
    assert_int_equal(st.on, 1);
    assert_int_equal(st.until_ms, -1);
    assert_int_equal(st.next_ms, -1);
    st = eval(&all, NYC, U(2026, 11, 1, 6, 30));
    assert_int_equal(st.on, 1);
    assert_int_equal(st.until_ms, -1);

    /* The whole week again, from back-to-back pieces: weekdays 09-18 and
     * 18-09, Monday 00-09, the weekend. */
    const struct dnd_sched pieces = {4,
                                     {{WEEKDAYS, HM(9, 0), HM(18, 0)},
                                      {WEEKDAYS, HM(18, 0), HM(9, 0)},
                                      {MON, 0, HM(9, 0)},
                                      {SAT | SUN, 0, 1440}}};
    assert_int_equal(dnd_sched_check(&pieces, NULL, 0), DND_OK);
    /* Every 23 h 7 min from Saturday 2026-03-21 00:00Z, over the EU
     * switch. */
    for (int i = 0; i < 14; i++) {
        st = eval(&pieces, PARIS,
                  U(2026, 3, 21, 0, 0) + i * (23 * HOUR + 7 * MIN));
        assert_int_equal(st.on, 1);
        assert_int_equal(st.until_ms, -1);
        assert_int_equal(st.next_ms, -1);
    }

    /* All but Monday 00:00-00:01: the run ends almost a week on, which
     * is not "never". Mondays in Paris: 2026-01-12 00:00 CET =
     * 2026-01-11 23:00Z, 2026-01-19 00:00 CET = 2026-01-18 23:00Z. */
    const struct dnd_sched almost = {
        2, {{MON, HM(0, 1), 0}, {DND_DAYS_ALL & ~MON, 0, 1440}}};
    OFF(&almost, PARIS, U(2026, 1, 11, 23, 0), U(2026, 1, 11, 23, 1));
    ON(&almost, PARIS, U(2026, 1, 11, 23, 1), U(2026, 1, 18, 23, 0));
    ON(&almost, PARIS, U(2026, 1, 13, 11, 0), U(2026, 1, 18, 23, 0));
    ON(&almost, PARIS, U(2026, 1, 18, 22, 59), U(2026, 1, 18, 23, 0));
}

static void test_eval_edges(void **state)
{
    const struct dnd_sched empty = {0};
    struct dnd_state st = eval(&empty, PARIS, U(2026, 1, 5, 12, 0));
    assert_int_equal(st.on, 0);
    assert_int_equal(st.until_ms, -1);
    assert_int_equal(st.next_ms, -1);

    /* Invalid zone, or a schedule the checker refuses: -1, out as was. */
    st.on = 7;
    assert_int_equal(dnd_eval(&evenings, "Mars/Olympus", 0, &st), -1);
    assert_int_equal(dnd_eval(&evenings, "", 0, &st), -1);
    const struct dnd_sched bad = {1, {{MON, 0, 1441}}};
    assert_int_equal(dnd_eval(&bad, PARIS, 0, &st), -1);
    assert_int_equal(st.on, 7);

    /* Entries of other days that overlap merge into one run: Monday
     * 18:00-09:00 and Tuesday 08:00-10:00 (UTC) -> Tuesday 10:00Z. */
    const struct dnd_sched cross = {
        2, {{MON, HM(18, 0), HM(9, 0)}, {TUE, HM(8, 0), HM(10, 0)}}};
    ON(&cross, "UTC", U(2026, 1, 5, 20, 0), U(2026, 1, 6, 10, 0));
    /* Once a week, Sunday 12:00: the next start is six days on. */
    const struct dnd_sched weekly = {1, {{SUN, HM(12, 0), HM(13, 0)}}};
    OFF(&weekly, "UTC", U(2026, 1, 5, 0, 0), U(2026, 1, 11, 12, 0));
    OFF(&weekly, "UTC", U(2026, 1, 11, 13, 0), U(2026, 1, 18, 12, 0));
    /* Ending at 24:00 and at 00:00 of the next day are the same. */
    const struct dnd_sched e24 = {1, {{MON, HM(20, 0), 1440}}};
    const struct dnd_sched e00 = {1, {{MON, HM(20, 0), 0}}};
    ON(&e24, "UTC", U(2026, 1, 5, 21, 0), U(2026, 1, 6, 0, 0));
    ON(&e00, "UTC", U(2026, 1, 5, 21, 0), U(2026, 1, 6, 0, 0));
}

/* Several threads evaluating at once agree with one thread (no shared
 * state; ASan/TSan builds make a race visible). */
#define THREADS 4
static void *eval_many(void *arg)
{
    int *ok = arg;
    *ok = 1;
    for (int i = 0; i < 200; i++) {
        struct dnd_state st;
        /* Saturday 2026-01-10 from 12:00Z (13:00 CET, 07:00 EST): on
         * until Monday 09:00 local, 08:00Z or 14:00Z; the day ends at
         * Sunday 00:00 CET = 23:00Z. */
        int64_t now = U(2026, 1, 10, 12, 0) + i * MIN;
        if (dnd_eval(&nights, i % 2 ? PARIS : NYC, now, &st) != 0 ||
            !(i % 2 ? st.until_ms == U(2026, 1, 12, 8, 0)
                    : st.until_ms == U(2026, 1, 12, 14, 0)) ||
            tz_end_of_day(PARIS, now) != U(2026, 1, 10, 23, 0))
            *ok = 0;
    }
    return NULL;
}

static void test_threads(void **state)
{
    pthread_t t[THREADS];
    int ok[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, eval_many, &ok[i]), 0);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(ok[i], 1);
    }
}

/* Instants outside 1970..9999 are refused, not clamped. */
static void test_time_range(void **state)
{
    struct tz_local l;
    struct dnd_state st;
    assert_int_equal(TZ_TIME_MAX + 1, U(10000, 1, 1, 0, 0));
    assert_int_equal(tz_end_of_day("UTC", 0), U(1970, 1, 2, 0, 0));
    /* 1970-01-01 was a Thursday: the next Monday is the 5th. */
    assert_int_equal(tz_end_of_week("UTC", 0), U(1970, 1, 5, 0, 0));
    assert_int_equal(tz_local("UTC", TZ_TIME_MAX, &l), 0);
    assert_int_equal(l.year, 9999);
    assert_int_equal(l.month, 12);
    assert_int_equal(l.day, 31);
    assert_int_equal(l.hour, 23);
    assert_int_equal(dnd_eval(&evenings, PARIS, TZ_TIME_MAX, &st), 0);

    const int64_t bad[] = {-1, TZ_TIME_MAX + 1, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(tz_end_of_day("UTC", bad[i]), -1);
        assert_int_equal(tz_end_of_week(PARIS, bad[i]), -1);
        assert_int_equal(tz_offset_min(PARIS, bad[i]), 0);
        assert_int_equal(tz_local(PARIS, bad[i], &l), -1);
        assert_int_equal(dnd_eval(&evenings, PARIS, bad[i], &st), -1);
    }
}

/* ---- checking -------------------------------------------------------- */

static int check(const struct dnd_sched *s, const char *want_in_err)
{
    char err[128] = "";
    int rc = dnd_sched_check(s, err, sizeof err);
    if (rc != DND_OK && want_in_err && !strstr(err, want_in_err))
        fail_msg("reason \"%s\" lacks \"%s\"", err, want_in_err);
    if (rc != DND_OK && (strchr(err, '\n') || !err[0]))
        fail_msg("reason \"%s\" is not one line", err);
    return rc;
}

static void test_check(void **state)
{
    struct dnd_sched s = evenings;
    assert_int_equal(check(&s, NULL), DND_OK);
    assert_int_equal(check(&(struct dnd_sched){0}, NULL), DND_OK);
    s = (struct dnd_sched){1, {{MON, 0, 1440}}};
    assert_int_equal(check(&s, NULL), DND_OK);
    /* Back to back on one day is no overlap. */
    s = (struct dnd_sched){
        2, {{MON, HM(9, 0), HM(12, 0)}, {MON | TUE, HM(12, 0), HM(13, 0)}}};
    assert_int_equal(check(&s, NULL), DND_OK);
    /* Monday's night running into Tuesday's morning: different days. */
    s = (struct dnd_sched){
        2, {{MON, HM(18, 0), HM(9, 0)}, {TUE, HM(8, 0), HM(10, 0)}}};
    assert_int_equal(check(&s, NULL), DND_OK);

    /* Overlaps: on a shared day, including an overnight entry's tail. */
    s = (struct dnd_sched){
        2, {{MON, HM(9, 0), HM(12, 0)}, {TUE | MON, HM(11, 0), HM(13, 0)}}};
    assert_int_equal(check(&s, "entries 1 and 2 overlap on mon"), DND_EOVERLAP);
    s = (struct dnd_sched){3,
                           {{SAT, 0, HM(1, 0)},
                            {WED | THU, HM(18, 0), HM(9, 0)},
                            {THU, HM(23, 0), HM(23, 30)}}};
    assert_int_equal(check(&s, "entries 2 and 3 overlap on thu"), DND_EOVERLAP);
    s = (struct dnd_sched){2, {{FRI, HM(18, 0), HM(9, 0)}, {FRI, 0, 1440}}};
    assert_int_equal(check(&s, "overlap"), DND_EOVERLAP);
    s = (struct dnd_sched){2, {{SUN, 0, 1440}, {SUN, 0, 1440}}};
    assert_int_equal(check(&s, "overlap on sun"), DND_EOVERLAP);

    /* Empty entries. */
    s = (struct dnd_sched){2, {{MON, 0, 60}, {0, HM(9, 0), HM(10, 0)}}};
    assert_int_equal(check(&s, "entry 2: no days"), DND_EEMPTY);
    s = (struct dnd_sched){1, {{MON, HM(9, 0), HM(9, 0)}}};
    assert_int_equal(check(&s, "entry 1"), DND_EEMPTY);
    s = (struct dnd_sched){1, {{MON, 0, 0}}};
    assert_int_equal(check(&s, "entry 1"), DND_EEMPTY);

    /* Ranges. */
    s = (struct dnd_sched){1, {{MON, -1, 60}}};
    assert_int_equal(check(&s, "entry 1"), DND_ERANGE);
    s = (struct dnd_sched){1, {{MON, 0, 1441}}};
    assert_int_equal(check(&s, "entry 1"), DND_ERANGE);
    s = (struct dnd_sched){1, {{MON, 1440, 60}}};
    assert_int_equal(check(&s, "24:00"), DND_ERANGE);
    s = (struct dnd_sched){2, {{MON, 0, 60}, {0x80u | TUE, 0, 60}}};
    assert_int_equal(check(&s, "entry 2"), DND_ERANGE); /* an 8th day */
    s = (struct dnd_sched){1, {{0xffffffffu, 0, 60}}};
    assert_int_equal(check(&s, "entry 1"), DND_ERANGE);
    s = (struct dnd_sched){0};
    s.n = DND_ENTRIES_MAX + 1;
    assert_int_equal(check(&s, "14"), DND_ERANGE);
    /* A range error is reported before an emptiness one in the same
     * entry, and a small buffer is cut, not overrun. */
    char tiny[6];
    s = (struct dnd_sched){1, {{0x100u, 5000, 5000}}};
    assert_int_equal(dnd_sched_check(&s, tiny, sizeof tiny), DND_ERANGE);
    assert_string_equal(tiny, "entry");
}

/* ---- the wire form --------------------------------------------------- */

static const char example[] =
    "[{\"days\":[\"mon\",\"tue\",\"wed\",\"thu\",\"fri\"],"
    "\"start\":\"18:00\",\"end\":\"09:00\"},"
    "{\"days\":[\"sat\",\"sun\"],\"start\":\"00:00\",\"end\":\"24:00\"}]";

static int parse(const char *json, struct dnd_sched *out, char *err)
{
    err[0] = '\0';
    int rc = dnd_sched_parse(json, strlen(json), out, err, 128);
    if (rc != DND_OK && (!err[0] || strchr(err, '\n')))
        fail_msg("%s: no one-line reason (\"%s\")", json, err);
    return rc;
}
#define REFUSED(json, code)                                                    \
    do {                                                                       \
        struct dnd_sched s_ = evenings;                                        \
        char e_[128];                                                          \
        int rc_ = parse(json, &s_, e_);                                        \
        if (rc_ != (code))                                                     \
            fail_msg("%s: got %d (%s), want %d", json, rc_, e_, (code));       \
        /* untouched on error */                                               \
        assert_memory_equal(&s_, &evenings, sizeof s_);                        \
    } while (0)
#define ENTRY(days, start, end)                                                \
    "{\"days\":" days ",\"start\":\"" start "\",\"end\":\"" end "\"}"

static void test_parse(void **state)
{
    struct dnd_sched s;
    char err[128], out[DND_FORMAT_MAX];
    assert_int_equal(parse(example, &s, err), DND_OK);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.e[0].days, WEEKDAYS);
    assert_int_equal(s.e[0].start_min, 18 * 60);
    assert_int_equal(s.e[0].end_min, 9 * 60);
    assert_int_equal(s.e[1].days, SAT | SUN);
    assert_int_equal(s.e[1].start_min, 0);
    assert_int_equal(s.e[1].end_min, 1440);
    /* Round trip: the compact form comes back byte for byte. */
    assert_int_equal(dnd_sched_format(&s, out, sizeof out),
                     (int)strlen(example));
    assert_string_equal(out, example);

    /* Spacing, key order and day order are free; format normalizes. */
    assert_int_equal(
        parse(" [ { \"end\" : \"23:59\", \"days\" : [\"sun\", \"mon\"],"
              " \"start\" : \"00:01\" } ]\n",
              &s, err),
        DND_OK);
    assert_int_equal(s.e[0].days, SUN | MON);
    assert_int_equal(s.e[0].start_min, 1);
    assert_int_equal(s.e[0].end_min, 1439);
    dnd_sched_format(&s, out, sizeof out);
    assert_string_equal(out,
                        "[" ENTRY("[\"mon\",\"sun\"]", "00:01", "23:59") "]");
    assert_int_equal(parse("[]", &s, err), DND_OK);
    assert_int_equal(s.n, 0);

    /* Not JSON, not the shape. */
    REFUSED("", DND_ESYNTAX);
    REFUSED("[{", DND_ESYNTAX);
    REFUSED("[] x", DND_ESYNTAX);
    REFUSED("{}", DND_ESYNTAX);
    REFUSED("\"mon\"", DND_ESYNTAX);
    REFUSED("[1]", DND_ESYNTAX);
    REFUSED("[{\"days\":[\"mon\"],\"start\":\"09:00\"}]", DND_ESYNTAX);
    REFUSED("[{\"days\":[\"mon\"],\"start\":\"09:00\",\"end\":\"10:00\","
            "\"tz\":\"UTC\"}]",
            DND_ESYNTAX);
    REFUSED("[{\"days\":[\"mon\"],\"start\":\"09:00\",\"ends\":\"10:00\"}]",
            DND_ESYNTAX);
    REFUSED("[{\"days\":[\"mon\"],\"start\":\"09:00\",\"start\":\"08:00\","
            "\"end\":\"10:00\"}]",
            DND_ESYNTAX); /* a duplicate key */
    REFUSED("[" ENTRY("\"mon\"", "09:00", "10:00") "]", DND_ESYNTAX);
    REFUSED("[{\"days\":[\"mon\"],\"start\":540,\"end\":\"10:00\"}]",
            DND_ESYNTAX);
    /* Times: HH:MM exactly. */
    REFUSED("[" ENTRY("[\"mon\"]", "9:00", "10:00") "]", DND_ESYNTAX);
    REFUSED("[" ENTRY("[\"mon\"]", "09:00", "10:0") "]", DND_ESYNTAX);
    REFUSED("[" ENTRY("[\"mon\"]", "09.00", "10:00") "]", DND_ESYNTAX);
    REFUSED("[" ENTRY("[\"mon\"]", "09:00 ", "10:00") "]", DND_ESYNTAX);
    REFUSED("[" ENTRY("[\"mon\"]", "-9:00", "10:00") "]", DND_ESYNTAX);
    REFUSED("[" ENTRY("[\"mon\"]", "09:00", "") "]", DND_ESYNTAX);
    REFUSED("[" ENTRY("[\"mon\"]", "09:00", "10:00\\u0000") "]", DND_ESYNTAX);
    /* Times out of range. */
    REFUSED("[" ENTRY("[\"mon\"]", "25:00", "10:00") "]", DND_ERANGE);
    REFUSED("[" ENTRY("[\"mon\"]", "09:00", "24:01") "]", DND_ERANGE);
    REFUSED("[" ENTRY("[\"mon\"]", "09:60", "10:00") "]", DND_ERANGE);
    REFUSED("[" ENTRY("[\"mon\"]", "24:00", "10:00") "]", DND_ERANGE);
    /* Days. */
    REFUSED("[" ENTRY("[\"Mon\"]", "09:00", "10:00") "]", DND_ESYNTAX);
    REFUSED("[" ENTRY("[\"monday\"]", "09:00", "10:00") "]", DND_ESYNTAX);
    REFUSED("[" ENTRY("[\"mars\"]", "09:00", "10:00") "]", DND_ESYNTAX);
    REFUSED("[" ENTRY("[\"mon\\u0000\"]", "09:00", "10:00") "]", DND_ESYNTAX);
    REFUSED("[" ENTRY("[1]", "09:00", "10:00") "]", DND_ESYNTAX);
    REFUSED("[" ENTRY("[\"mon\",\"tue\",\"mon\"]", "09:00", "10:00") "]",
            DND_ESYNTAX);
    /* What the checker refuses. */
    REFUSED("[" ENTRY("[]", "09:00", "10:00") "]", DND_EEMPTY);
    REFUSED("[" ENTRY("[\"mon\"]", "09:00", "09:00") "]", DND_EEMPTY);
    REFUSED("[" ENTRY("[\"mon\"]", "09:00",
                      "12:00") "," ENTRY("[\"mon\"]", "11:00", "13:00") "]",
            DND_EOVERLAP);
    /* 15 entries. */
    char many[2048] = "[";
    for (int i = 0; i < DND_ENTRIES_MAX + 1; i++)
        snprintf(many + strlen(many), sizeof many - strlen(many),
                 "%s{\"days\":[\"mon\"],\"start\":\"%02d:00\","
                 "\"end\":\"%02d:30\"}",
                 i ? "," : "", i, i);
    strcat(many, "]");
    REFUSED(many, DND_ERANGE);
    /* 14 are fine. */
    strcpy(strrchr(many, '{') - 1, "]");
    assert_int_equal(parse(many, &s, err), DND_OK);
    assert_int_equal(s.n, DND_ENTRIES_MAX);

    /* The reason names the entry (from 1). */
    parse("[" ENTRY("[\"mon\"]", "09:00",
                    "10:00") "," ENTRY("[\"tue\"]", "9:00", "10:00") "]",
          &s, err);
    assert_non_null(strstr(err, "entry 2"));
    /* NULL text, and a length that stops inside the text. */
    assert_int_equal(dnd_sched_parse(NULL, 0, &s, err, sizeof err),
                     DND_ESYNTAX);
    assert_int_equal(
        dnd_sched_parse(example, sizeof example - 2, &s, err, sizeof err),
        DND_ESYNTAX);
}

static void test_from_json(void **state)
{
    struct dnd_sched s;
    char err[128];
    json_t *j = json_loads(example, 0, NULL);
    assert_non_null(j);
    assert_int_equal(dnd_sched_from_json(j, &s, err, sizeof err), DND_OK);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.e[0].days, WEEKDAYS);
    json_decref(j);
    j = json_pack("{s:[]}", "days");
    assert_int_equal(dnd_sched_from_json(j, &s, err, sizeof err), DND_ESYNTAX);
    json_decref(j);
    assert_int_equal(dnd_sched_from_json(NULL, &s, err, sizeof err),
                     DND_ESYNTAX);
}

static void test_format(void **state)
{
    char out[DND_FORMAT_MAX], small[16];
    struct dnd_sched s = {0}, back;
    /* The longest schedule there is fits DND_FORMAT_MAX exactly (format
     * does not check overlaps). */
    s.n = DND_ENTRIES_MAX;
    for (unsigned i = 0; i < s.n; i++)
        s.e[i] = (struct dnd_entry){DND_DAYS_ALL, 1439, 1440};
    int n = dnd_sched_format(&s, out, sizeof out);
    assert_int_equal(n, DND_FORMAT_MAX - 1);
    assert_int_equal(dnd_sched_format(&s, out, sizeof out - 1), -1);
    assert_string_equal(out, "");

    /* Round trip from the struct side, every minute form. */
    s = (struct dnd_sched){3,
                           {{MON | WED | SUN, 0, 1},
                            {TUE, HM(23, 59), HM(0, 0)},
                            {SAT, HM(12, 34), 1440}}};
    n = dnd_sched_format(&s, out, sizeof out);
    assert_int_equal(n, (int)strlen(out));
    assert_string_equal(
        out, "[" ENTRY("[\"mon\",\"wed\",\"sun\"]", "00:00", "00:01") "," ENTRY(
                 "[\"tue\"]", "23:59", "00:00") "," ENTRY("[\"sat\"]", "12:34",
                                                          "24:00") "]");
    assert_int_equal(dnd_sched_parse(out, (size_t)n, &back, NULL, 0), DND_OK);
    assert_memory_equal(&back, &s, sizeof s);

    /* Too small a buffer, and values the wire form cannot show. */
    assert_int_equal(dnd_sched_format(&s, small, sizeof small), -1);
    assert_string_equal(small, "");
    assert_int_equal(dnd_sched_format(&s, small, 0), -1);
    s.e[1].end_min = 1441;
    assert_int_equal(dnd_sched_format(&s, out, sizeof out), -1);
    s = (struct dnd_sched){0};
    assert_int_equal(dnd_sched_format(&s, small, sizeof small), 2);
    assert_string_equal(small, "[]");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utc_helper),
        cmocka_unit_test(test_tz_valid),
        cmocka_unit_test(test_tz_offset),
        cmocka_unit_test(test_tz_local),
        cmocka_unit_test(test_end_of_day),
        cmocka_unit_test(test_end_of_week),
        cmocka_unit_test(test_midnight_gaps),
        cmocka_unit_test(test_eval_evenings),
        cmocka_unit_test(test_eval_dst_nights),
        cmocka_unit_test(test_eval_gap_and_repeat),
        cmocka_unit_test(test_eval_whole_week),
        cmocka_unit_test(test_eval_edges),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_time_range),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_from_json),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
