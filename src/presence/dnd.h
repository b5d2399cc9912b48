/* dnd.h - Do Not Disturb schedules, and the time-zone arithmetic they need.
 *
 * Pure: no I/O, no clock. Callers pass instants in (ms since the epoch, UTC)
 * and get instants back. All time-zone work is ICU's (IANA names, local
 * fields, DST rules); nothing here knows a rule of its own, and nothing
 * touches TZ or localtime(), which are process-wide state. No global
 * mutable state either: each call opens its own ICU calendar and closes it,
 * so any thread may call anything at any time.
 *
 * Local wall times that do not exist (the hour skipped when clocks spring
 * forward) resolve to the first instant after the gap: 02:30 on the night
 * Paris goes from 02:00 to 03:00 is 03:00 local. Wall times that happen
 * twice (the hour repeated when clocks fall back) resolve to the first
 * occurrence. */
#ifndef DND_H
#define DND_H
#include <stddef.h>
#include <stdint.h>

struct json_t; /* jansson's json_t */

/* ---- time zones -------------------------------------------------------
 * Zones are IANA names as ICU knows them ("Europe/Paris",
 * "America/New_York", "UTC"), case as written. Every function below takes
 * a NUL-terminated name and treats one tz_valid() refuses as an error. */

#define TZ_NAME_MAX 64 /* bytes, without the NUL */
/* Instants taken: 1970-01-01 to 9999-12-31 23:59:59.999 UTC. ICU would
 * clamp anything far outside and answer nonsense, so every function below
 * treats an instant out of this range as it treats an invalid zone. */
#define TZ_TIME_MAX INT64_C(253402300799999)

/* 1 if tz is 1..TZ_NAME_MAX bytes of [A-Za-z0-9/_+-] and a zone of ICU's
 * own copy of the IANA data (docs/design.md), aliases such as "US/Eastern"
 * included (and so ICU's old three-letter ids, "PST"); 0 for anything
 * else: NULL, "", "../etc", "Mars/Olympus", "europe/paris", custom offsets
 * such as "GMT+5", and ICU's "Etc/Unknown", which it hands out silently
 * for names it lacks. */
int tz_valid(const char *tz);

/* The zone's UTC offset at t_ms in minutes (DST included, east positive,
 * seconds of old local mean times truncated), or 0 for an invalid zone. */
int tz_offset_min(const char *tz, int64_t t_ms);

/* The next local midnight after now (the start of tomorrow, local), or -1
 * for an invalid zone. A midnight that falls in a gap is the end of it. */
int64_t tz_end_of_day(const char *tz, int64_t now);

/* The next local Monday 00:00 after now (a week on, if now is exactly
 * Monday 00:00), or -1 for an invalid zone. */
int64_t tz_end_of_week(const char *tz, int64_t now);

/* Local wall time in a zone, for tests and for the API's "local time". */
struct tz_local {
    int year, month /* 1-12 */, day /* 1-31 */;
    int wday /* 0 = Monday .. 6 = Sunday */, hour, minute;
};
/* Fills out with the wall time at t_ms in tz. 0, or -1 for an invalid
 * zone (out untouched). */
int tz_local(const char *tz, int64_t t_ms, struct tz_local *out);

/* ---- schedules --------------------------------------------------------
 * A weekly schedule of local times. Each entry covers, on each of its
 * days, local time [start, end). end <= start means it ends on the next
 * day (Monday 18:00-09:00 ends Tuesday 09:00); 0-1440 is the whole day,
 * and end 1440 is the next midnight. Entries start on their own days
 * only: "weekdays 18:00-09:00" with "sat,sun 00:00-24:00" leaves Monday
 * 00:00-09:00 free, since Sunday's entry ends at midnight; "mon
 * 00:00-09:00" covers it. */

#define DND_ENTRIES_MAX 14
#define DND_DAYS_ALL 0x7fu
/* Bytes dnd_sched_format() needs for any schedule, the NUL included. */
#define DND_FORMAT_MAX 1164

struct dnd_entry {
    unsigned days;          /* bit 0 Monday .. bit 6 Sunday */
    int start_min, end_min; /* 0..1440; start 1440 is refused */
};
struct dnd_sched {
    unsigned n;
    struct dnd_entry e[DND_ENTRIES_MAX];
};

enum {
    DND_OK = 0,
    DND_EEMPTY = -1,   /* an entry with no day, or start == end */
    DND_EOVERLAP = -2, /* two entries overlap (dnd_sched_check()) */
    DND_ERANGE = -3,   /* minutes outside 0..1440 (or start 24:00), days
                          beyond bit 6, more than DND_ENTRIES_MAX entries */
    DND_ESYNTAX = -4,  /* not the wire form (dnd_sched_parse()) */
};

/* Returns DND_OK or the first DND_E* code found, entry by entry, then
 * overlaps; on error writes a one-line reason into err (cap bytes; err
 * may be NULL), naming the entry, counted from 1 as in the wire array.
 * Two entries overlap when they share a day and their intervals starting
 * on that day intersect: "weekdays 18:00-09:00" with "Sat,Sun 00:00-24:00"
 * is fine, since Friday's entry runs into Saturday but they start on
 * different days. Overlaps across days are merged by dnd_eval(). */
int dnd_sched_check(const struct dnd_sched *s, char *err, size_t cap);

/* The wire form, a JSON array of at most DND_ENTRIES_MAX entries:
 *   [{"days":["mon","tue","wed","thu","fri"],"start":"18:00","end":"09:00"},
 *    {"days":["sat","sun"],"start":"00:00","end":"24:00"}]
 * Each entry has exactly those three fields: days in lower case ("mon" ..
 * "sun"), none twice; times as HH:MM, 00:00..24:00. An empty array is the
 * empty schedule. */

/* Parses len bytes of JSON text (no NUL needed) into *out, then checks it
 * with dnd_sched_check(). Returns DND_OK, DND_ESYNTAX (not JSON, not that
 * shape, "9:00", an unknown or repeated day name), DND_ERANGE ("25:00",
 * "12:60", too many entries) or a code of dnd_sched_check(), with err set
 * as there. *out is written only on DND_OK. */
int dnd_sched_parse(const char *json, size_t len, struct dnd_sched *out,
                    char *err, size_t cap);
/* The same from an array already parsed; arr is lent, not kept. */
int dnd_sched_from_json(const struct json_t *arr, struct dnd_sched *out,
                        char *err, size_t cap);

/* Writes s in the wire form (compact, days in week order) and a NUL into
 * out. Returns the length without the NUL, or -1 if cap bytes are too few
 * (DND_FORMAT_MAX always suffice) or s holds a value the form cannot show
 * (see DND_ERANGE); out is then "" if cap > 0. Checks nothing else. */
int dnd_sched_format(const struct dnd_sched *s, char *out, size_t cap);

/* The state of a schedule at now, in zone tz.
 *   on:       now is inside one of its intervals;
 *   until_ms: if on, the end of the run of back-to-back or overlapping
 *             intervals that contains now, or -1 if that run never ends
 *             (the schedule covers the whole week); -1 if off;
 *   next_ms:  the next instant the state changes: until_ms if on, else
 *             the next start; -1 if never (an empty schedule, never on).
 * Intervals are laid on local dates and each bound converted on its own
 * date, so 23- and 25-hour days come out right: 01:00-09:00 lasts 7 hours
 * on the night clocks spring forward. Returns 0, or -1 for an invalid
 * zone or a schedule dnd_sched_check() refuses (out untouched). */
struct dnd_state {
    int on;
    int64_t until_ms, next_ms;
};
int dnd_eval(const struct dnd_sched *s, const char *tz, int64_t now,
             struct dnd_state *out);
#endif
