/* dnd.c - Do Not Disturb schedules over ICU calendars (dnd.h).
 *
 * Every instant comes from an ICU calendar opened for the call, set to a
 * local date and time in the zone and asked for its milliseconds; the
 * calendar applies the zone's rules. Nothing is cached, so there is no
 * state for two threads to share: ICU's own caches (zone data) are
 * thread-safe. */
#include "presence/dnd.h"
#include "util/errf.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/ucal.h>

static const char *const day_name[7] = {"mon", "tue", "wed", "thu",
                                        "fri", "sat", "sun"};


/* ---- time zones ------------------------------------------------------ */

/* Copies an ASCII zone name into UTF-16; -1 unless tz_valid()'s shape. */
static int zone_utf16(const char *tz, UChar *id)
{
    size_t n = 0;
    if (!tz)
        return -1;
    for (; tz[n]; n++) {
        unsigned char ch = (unsigned char)tz[n];
        if (n == TZ_NAME_MAX)
            return -1;
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
              (ch >= '0' && ch <= '9') || ch == '/' || ch == '_' || ch == '+' ||
              ch == '-'))
            return -1;
        id[n] = ch;
    }
    return n ? (int)n : -1;
}

int tz_valid(const char *tz)
{
    UChar id[TZ_NAME_MAX], canon[2 * TZ_NAME_MAX];
    UBool is_system = 0;
    UErrorCode st = U_ZERO_ERROR;
    int n = zone_utf16(tz, id);
    if (n < 0)
        return 0;
    /* ucal_open() takes any name and silently falls back to Etc/Unknown,
     * so ask for the canonical id instead: unknown names fail, and custom
     * ones ("GMT+5") and Etc/Unknown itself are not system ids. */
    ucal_getCanonicalTimeZoneID(id, n, canon, 2 * TZ_NAME_MAX, &is_system, &st);
    return U_SUCCESS(st) && is_system;
}

static int time_ok(int64_t t)
{
    return t >= 0 && t <= TZ_TIME_MAX;
}

/* A Gregorian calendar in tz, or NULL for an invalid zone. The wall-time
 * attributes are dnd.h's rule: a skipped time is the first instant after
 * the gap (ICU's default would use the offset from before it, 02:30 ->
 * 03:30), a repeated one its first occurrence (ICU's default, said again
 * here so that it is visible). */
static UCalendar *cal_open(const char *tz)
{
    UChar id[TZ_NAME_MAX];
    UErrorCode st = U_ZERO_ERROR;
    int n = zone_utf16(tz, id);
    if (n < 0 || !tz_valid(tz))
        return NULL;
    UCalendar *c = ucal_open(id, n, "root", UCAL_GREGORIAN, &st);
    if (U_FAILURE(st)) {
        if (c)
            ucal_close(c);
        return NULL;
    }
    ucal_setAttribute(c, UCAL_SKIPPED_WALL_TIME, UCAL_WALLTIME_NEXT_VALID);
    ucal_setAttribute(c, UCAL_REPEATED_WALL_TIME, UCAL_WALLTIME_FIRST);
    return c;
}

/* The local date at t: year, month 0-11, day of month, and the day of the
 * week 0 = Monday. 0 or -1. */
struct ldate {
    int year, month0, day, wday;
};
static int local_date(UCalendar *c, int64_t t, struct ldate *d, int *hour,
                      int *minute)
{
    UErrorCode st = U_ZERO_ERROR;
    ucal_setMillis(c, (UDate)t, &st);
    d->year = ucal_get(c, UCAL_EXTENDED_YEAR, &st);
    d->month0 = ucal_get(c, UCAL_MONTH, &st);
    d->day = ucal_get(c, UCAL_DATE, &st);
    /* ICU counts 1 = Sunday .. 7 = Saturday. */
    d->wday = (ucal_get(c, UCAL_DAY_OF_WEEK, &st) + 5) % 7;
    if (hour)
        *hour = ucal_get(c, UCAL_HOUR_OF_DAY, &st);
    if (minute)
        *minute = ucal_get(c, UCAL_MINUTE, &st);
    return U_SUCCESS(st) ? 0 : -1;
}

/* The instant of local time 'min' minutes (may exceed 1440) into the day
 * 'days' after d. The calendar is lenient, so day 32 is the 1st of the
 * next month, and each date gets its own offset: a 23- or 25-hour day
 * needs nothing special. 0 or -1. */
static int local_ms(UCalendar *c, const struct ldate *d, int days, int min,
                    int64_t *out)
{
    UErrorCode st = U_ZERO_ERROR;
    days += min / 1440;
    min %= 1440;
    ucal_clear(c);
    ucal_set(c, UCAL_EXTENDED_YEAR, d->year);
    ucal_set(c, UCAL_MONTH, d->month0);
    ucal_set(c, UCAL_DATE, d->day + days);
    ucal_set(c, UCAL_HOUR_OF_DAY, min / 60);
    ucal_set(c, UCAL_MINUTE, min % 60);
    UDate ms = ucal_getMillis(c, &st);
    if (U_FAILURE(st))
        return -1;
    *out = (int64_t)ms;
    return 0;
}

int tz_offset_min(const char *tz, int64_t t_ms)
{
    UErrorCode st = U_ZERO_ERROR;
    UCalendar *c = time_ok(t_ms) ? cal_open(tz) : NULL;
    if (!c)
        return 0;
    ucal_setMillis(c, (UDate)t_ms, &st);
    int ms =
        ucal_get(c, UCAL_ZONE_OFFSET, &st) + ucal_get(c, UCAL_DST_OFFSET, &st);
    ucal_close(c);
    return U_SUCCESS(st) ? ms / 60000 : 0;
}

/* The first instant of the next local day after now, or of the next
 * Monday if monday is set; -1 for an invalid zone. */
static int64_t next_day_start(const char *tz, int64_t now, int monday)
{
    struct ldate d;
    int64_t t = -1;
    UCalendar *c = time_ok(now) ? cal_open(tz) : NULL;
    if (!c)
        return -1;
    /* 7 - wday is 1..7: a Monday's own midnight is not "after" it. */
    if (local_date(c, now, &d, NULL, NULL) != 0 ||
        local_ms(c, &d, monday ? 7 - d.wday : 1, 0, &t) != 0)
        t = -1;
    ucal_close(c);
    return t;
}

int64_t tz_end_of_day(const char *tz, int64_t now)
{
    return next_day_start(tz, now, 0);
}

int64_t tz_end_of_week(const char *tz, int64_t now)
{
    return next_day_start(tz, now, 1);
}

int tz_local(const char *tz, int64_t t_ms, struct tz_local *out)
{
    struct ldate d;
    int hour, minute, rc;
    UCalendar *c = time_ok(t_ms) ? cal_open(tz) : NULL;
    if (!c)
        return -1;
    rc = local_date(c, t_ms, &d, &hour, &minute);
    ucal_close(c);
    if (rc != 0)
        return -1;
    *out = (struct tz_local){.year = d.year,
                             .month = d.month0 + 1,
                             .day = d.day,
                             .wday = d.wday,
                             .hour = hour,
                             .minute = minute};
    return 0;
}

/* ---- checking -------------------------------------------------------- */

/* An entry's length in nominal minutes, 1..1440; end <= start runs into
 * the next day. Only for entries that passed entry_check(). */
static int entry_len(const struct dnd_entry *e)
{
    return e->end_min > e->start_min ? e->end_min - e->start_min
                                     : e->end_min + 1440 - e->start_min;
}

static int entry_check(const struct dnd_entry *e, unsigned i, char *err,
                       size_t cap)
{
    if (e->days & ~DND_DAYS_ALL)
        return errf(err, cap, DND_ERANGE, "entry %u: days beyond Sunday", i);
    if (e->start_min < 0 || e->start_min > 1440 || e->end_min < 0 ||
        e->end_min > 1440)
        return errf(err, cap, DND_ERANGE, "entry %u: times must be 00:00..24:00",
                   i);
    /* 24:00-09:00 would start on the day after the one it names. */
    if (e->start_min == 1440)
        return errf(err, cap, DND_ERANGE,
                   "entry %u: start 24:00 (use 00:00 of the next day)", i);
    if (!e->days)
        return errf(err, cap, DND_EEMPTY, "entry %u: no days", i);
    if (e->start_min == e->end_min)
        return errf(err, cap, DND_EEMPTY, "entry %u: start and end are the same",
                   i);
    return DND_OK;
}

int dnd_sched_check(const struct dnd_sched *s, char *err, size_t cap)
{
    int rc;
    if (s->n > DND_ENTRIES_MAX)
        return errf(err, cap, DND_ERANGE, "more than %d entries",
                   DND_ENTRIES_MAX);
    for (unsigned i = 0; i < s->n; i++)
        if ((rc = entry_check(&s->e[i], i + 1, err, cap)) != DND_OK)
            return rc;
    /* Intervals starting on the same day, in minutes from its midnight. */
    for (unsigned i = 0; i < s->n; i++)
        for (unsigned j = i + 1; j < s->n; j++) {
            const struct dnd_entry *a = &s->e[i], *b = &s->e[j];
            unsigned both = a->days & b->days;
            if (!both)
                continue;
            int lo = a->start_min > b->start_min ? a->start_min : b->start_min;
            int ea = a->start_min + entry_len(a);
            int eb = b->start_min + entry_len(b);
            if (lo < (ea < eb ? ea : eb)) {
                int d = __builtin_ctz(both);
                return errf(err, cap, DND_EOVERLAP,
                           "entries %u and %u overlap on %s", i + 1, j + 1,
                           day_name[d]);
            }
        }
    return DND_OK;
}

/* ---- the wire form --------------------------------------------------- */

/* "HH:MM", 00:00..24:00, into minutes. */
static int parse_hhmm(const json_t *v, const char *what, unsigned i, int *out,
                      char *err, size_t cap)
{
    const char *s = json_string_value(v);
    if (!s || json_string_length(v) != 5 || s[2] != ':' || s[0] < '0' ||
        s[0] > '9' || s[1] < '0' || s[1] > '9' || s[3] < '0' || s[3] > '9' ||
        s[4] < '0' || s[4] > '9')
        return errf(err, cap, DND_ESYNTAX,
                   "entry %u: %s must be a string \"HH:MM\"", i, what);
    int h = (s[0] - '0') * 10 + (s[1] - '0');
    int m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h * 60 + m > 1440)
        return errf(err, cap, DND_ERANGE, "entry %u: %s must be 00:00..24:00", i,
                   what);
    *out = h * 60 + m;
    return DND_OK;
}

static int parse_days(const json_t *v, unsigned i, unsigned *out, char *err,
                      size_t cap)
{
    size_t k;
    const json_t *d;
    unsigned days = 0;
    if (!json_is_array(v))
        return errf(err, cap, DND_ESYNTAX,
                   "entry %u: days must be an array of day names", i);
    json_array_foreach(v, k, d)
    {
        const char *s = json_string_value(d);
        unsigned bit = 0;
        for (int w = 0; s && w < 7; w++)
            if (strcmp(s, day_name[w]) == 0 && json_string_length(d) == 3)
                bit = 1u << w;
        if (!bit)
            return errf(err, cap, DND_ESYNTAX,
                       "entry %u: days must be \"mon\" .. \"sun\"", i);
        if (days & bit)
            return errf(err, cap, DND_ESYNTAX, "entry %u: %s is listed twice", i,
                       s);
        days |= bit;
    }
    *out = days; /* none: dnd_sched_check() says DND_EEMPTY */
    return DND_OK;
}

int dnd_sched_from_json(const struct json_t *arr, struct dnd_sched *out,
                        char *err, size_t cap)
{
    struct dnd_sched s = {0};
    size_t i;
    const json_t *v;
    int rc;
    if (!json_is_array(arr))
        return errf(err, cap, DND_ESYNTAX, "schedule must be a JSON array");
    if (json_array_size(arr) > DND_ENTRIES_MAX)
        return errf(err, cap, DND_ERANGE, "more than %d entries",
                   DND_ENTRIES_MAX);
    json_array_foreach(arr, i, v)
    {
        struct dnd_entry *e = &s.e[i];
        unsigned no = (unsigned)i + 1;
        /* Exactly the three fields: a misspelt "ends" must not be
         * dropped without a word. */
        if (!json_is_object(v) || json_object_size(v) != 3 ||
            !json_object_get(v, "days") || !json_object_get(v, "start") ||
            !json_object_get(v, "end"))
            return errf(err, cap, DND_ESYNTAX,
                       "entry %u: must be {\"days\":[..],\"start\":\"HH:MM\","
                       "\"end\":\"HH:MM\"}",
                       no);
        if ((rc = parse_days(json_object_get(v, "days"), no, &e->days, err,
                             cap)) != DND_OK ||
            (rc = parse_hhmm(json_object_get(v, "start"), "start", no,
                             &e->start_min, err, cap)) != DND_OK ||
            (rc = parse_hhmm(json_object_get(v, "end"), "end", no, &e->end_min,
                             err, cap)) != DND_OK)
            return rc;
        s.n++;
    }
    if ((rc = dnd_sched_check(&s, err, cap)) != DND_OK)
        return rc;
    *out = s;
    return DND_OK;
}

int dnd_sched_parse(const char *json, size_t len, struct dnd_sched *out,
                    char *err, size_t cap)
{
    json_error_t je;
    if (!json)
        return errf(err, cap, DND_ESYNTAX, "no schedule");
    /* Duplicate keys refused, so that "start" cannot mean two things. */
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        /* Not je.text: jansson quotes the input, which may not be UTF-8,
         * and the reason goes back to the client. */
        return errf(err, cap, DND_ESYNTAX, "not JSON (at byte %d)",
                   je.position);
    int rc = dnd_sched_from_json(root, out, err, cap);
    json_decref(root);
    return rc;
}

int dnd_sched_format(const struct dnd_sched *s, char *out, size_t cap)
{
    size_t len = 0;
    int n;
#define PUT(...)                                                               \
    do {                                                                       \
        n = snprintf(out + len, cap - len, __VA_ARGS__);                       \
        if (n < 0 || (size_t)n >= cap - len)                                   \
            goto fail;                                                         \
        len += (size_t)n;                                                      \
    } while (0)
    if (!cap)
        return -1;
    if (s->n > DND_ENTRIES_MAX)
        goto fail;
    PUT("[");
    for (unsigned i = 0; i < s->n; i++) {
        const struct dnd_entry *e = &s->e[i];
        const char *sep = "";
        if (e->days & ~DND_DAYS_ALL || e->start_min < 0 ||
            e->start_min > 1440 || e->end_min < 0 || e->end_min > 1440)
            goto fail;
        PUT("%s{\"days\":[", i ? "," : "");
        for (int w = 0; w < 7; w++)
            if (e->days & (1u << w)) {
                PUT("%s\"%s\"", sep, day_name[w]);
                sep = ",";
            }
        PUT("],\"start\":\"%02d:%02d\",\"end\":\"%02d:%02d\"}",
            e->start_min / 60, e->start_min % 60, e->end_min / 60,
            e->end_min % 60);
    }
    PUT("]");
#undef PUT
    return (int)len;
fail:
    out[0] = '\0';
    return -1;
}

/* ---- evaluation ------------------------------------------------------ */

/* Dates laid out around now's: from the day before (its evening entry
 * may still run) to EVAL_LAST days after. A run that does not cover the
 * whole week ends within 7 days of now's date, so by the start of day
 * EVAL_LAST + 1, the first instant an interval not laid out could start;
 * a run reaching that far covers the whole week and never ends. */
#define EVAL_FIRST (-1)
#define EVAL_LAST 8
#define EVAL_MAX ((EVAL_LAST - EVAL_FIRST + 1) * DND_ENTRIES_MAX)

struct span {
    int64_t start, end;
};

static int span_cmp(const void *a, const void *b)
{
    const struct span *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

int dnd_eval(const struct dnd_sched *s, const char *tz, int64_t now,
             struct dnd_state *out)
{
    struct span sp[EVAL_MAX];
    struct ldate d;
    int64_t horizon;
    unsigned n = 0;
    int rc = -1;
    if (dnd_sched_check(s, NULL, 0) != DND_OK || !time_ok(now))
        return -1;
    UCalendar *c = cal_open(tz);
    if (!c)
        return -1;
    if (local_date(c, now, &d, NULL, NULL) != 0 ||
        local_ms(c, &d, EVAL_LAST + 1, 0, &horizon) != 0)
        goto done;
    for (int k = EVAL_FIRST; k <= EVAL_LAST; k++) {
        unsigned bit = 1u << ((d.wday + k + 7) % 7);
        for (unsigned i = 0; i < s->n; i++) {
            const struct dnd_entry *e = &s->e[i];
            struct span x;
            if (!(e->days & bit))
                continue;
            if (local_ms(c, &d, k, e->start_min, &x.start) != 0 ||
                local_ms(c, &d, k, e->start_min + entry_len(e), &x.end) != 0)
                goto done;
            /* An interval that lies wholly in a gap is empty. */
            if (x.end > x.start)
                sp[n++] = x;
        }
    }
    qsort(sp, n, sizeof sp[0], span_cmp);

    *out = (struct dnd_state){.on = 0, .until_ms = -1, .next_ms = -1};
    for (unsigned i = 0; i < n;) {
        /* Merge the run that starts at sp[i]: back-to-back counts. */
        struct span run = sp[i++];
        while (i < n && sp[i].start <= run.end) {
            if (sp[i].end > run.end)
                run.end = sp[i].end;
            i++;
        }
        if (run.end <= now)
            continue;
        if (run.start <= now) {
            out->on = 1;
            out->until_ms = run.end >= horizon ? -1 : run.end;
        }
        out->next_ms = out->on ? out->until_ms : run.start;
        break;
    }
    rc = 0;
done:
    ucal_close(c);
    return rc;
}
