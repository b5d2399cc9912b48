/* extra.c - the JSON of a user's extras (see extra.h). */
#include "presence/extra.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "presence/dnd.h"
#include "presence/msg.h"
#include "util/errf.h"
#include "util/utf8.h"


static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

void extra_rec_fix(struct extra_rec *r)
{
    r->x.text = r->text[0] ? r->text : NULL;
    r->x.emoji = r->emoji[0] ? r->emoji : NULL;
}

void extra_rec_from(struct extra_rec *r, const struct presence_extra *x)
{
    memset(r, 0, sizeof *r);
    if (x) {
        r->x = *x;
        copy_str(r->text, sizeof r->text, x->text);
        copy_str(r->emoji, sizeof r->emoji, x->emoji);
    }
    extra_rec_fix(r);
}

/* ---- the settings form ------------------------------------------------ */

static int put_ms(struct buf *b, int64_t ms)
{
    return ms > 0 ? buf_printf(b, "%lld", (long long)ms)
                  : buf_append(b, "null", 4);
}

int extra_encode(struct buf *b, const struct presence_extra *x)
{
    static const struct presence_extra none;
    char sched[DND_FORMAT_MAX];
    size_t start = b->len;
    if (!x)
        x = &none;
    if (dnd_sched_format(&x->sched, sched, sizeof sched) < 0)
        snprintf(sched, sizeof sched, "[]");
    int rc = buf_puts(b, "{\"message\":");
    if (!rc && x->text && *x->text)
        rc = buf_puts(b, "{\"text\":") || msg_append_string(b, x->text) ||
             buf_puts(b, ",\"emoji\":") ||
             msg_append_string(b, x->emoji && *x->emoji ? x->emoji : NULL) ||
             buf_puts(b, ",\"expires\":") || put_ms(b, x->expires_ms) ||
             buf_printf(b, ",\"clear_status\":%s}",
                        x->clear_status ? "true" : "false");
    else if (!rc)
        rc = buf_puts(b, "null");
    rc = rc || buf_puts(b, ",\"dnd\":{\"until\":") ||
         put_ms(b, x->dnd_until_ms) || buf_puts(b, ",\"schedule\":") ||
         buf_puts(b, sched) ||
         buf_printf(b, ",\"while_busy\":%s},\"tz\":",
                    x->dnd_busy ? "true" : "false") ||
         msg_append_string(b, x->tz[0] ? x->tz : NULL) ||
         buf_printf(b, ",\"hide_last_seen\":%s}",
                    x->hide_last_seen ? "true" : "false");
    if (rc)
        b->len = start;
    return rc;
}

static int64_t int_or_zero(const json_t *v)
{
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

int extra_parse(const char *json, size_t len, struct extra_rec *r)
{
    json_error_t je;
    json_t *root = json_loadb(json, len, 0, &je);
    struct extra_rec out;
    int rc = -1;

    memset(&out, 0, sizeof out);
    if (!json_is_object(root))
        goto done;
    const json_t *m = json_object_get(root, "message");
    if (json_is_object(m)) {
        copy_str(out.text, sizeof out.text,
                 json_string_value(json_object_get(m, "text")));
        copy_str(out.emoji, sizeof out.emoji,
                 json_string_value(json_object_get(m, "emoji")));
        out.x.expires_ms = int_or_zero(json_object_get(m, "expires"));
        out.x.clear_status = json_is_true(json_object_get(m, "clear_status"));
    }
    const json_t *d = json_object_get(root, "dnd");
    if (json_is_object(d)) {
        out.x.dnd_until_ms = int_or_zero(json_object_get(d, "until"));
        out.x.dnd_busy = json_is_true(json_object_get(d, "while_busy"));
        const json_t *s = json_object_get(d, "schedule");
        if (json_is_array(s) &&
            dnd_sched_from_json((const struct json_t *)s, &out.x.sched, NULL,
                                0) != DND_OK)
            goto done;
    }
    copy_str(out.x.tz, sizeof out.x.tz,
             json_string_value(json_object_get(root, "tz")));
    out.x.hide_last_seen = json_is_true(json_object_get(root,
                                                        "hide_last_seen"));
    *r = out;
    extra_rec_fix(r);
    rc = 0;
done:
    json_decref(root);
    return rc;
}

/* ---- the patch form ---------------------------------------------------- */

const char *extra_error_code(int rc)
{
    switch (rc) {
    case EXTRA_EMESSAGE: return "invalid_message";
    case EXTRA_EEXPIRY: return "invalid_expiry";
    case EXTRA_ETZ: return "invalid_tz";
    case EXTRA_ESCHEDULE: return "invalid_schedule";
    case EXTRA_EDND: return "invalid_dnd";
    case EXTRA_EFIELD:
    default: return "bad_request";
    }
}

/* The code point at s (well-formed UTF-8, as jansson guarantees), and its
 * length in *n. */
static unsigned decode(const unsigned char *s, size_t *n)
{
    if (s[0] < 0x80) {
        *n = 1;
        return s[0];
    }
    if (s[0] < 0xe0) {
        *n = 2;
        return (unsigned)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
    }
    if (s[0] < 0xf0) {
        *n = 3;
        return (unsigned)(s[0] & 0x0f) << 12 | (unsigned)(s[1] & 0x3f) << 6 |
               (s[2] & 0x3f);
    }
    *n = 4;
    return (unsigned)(s[0] & 0x07) << 18 | (unsigned)(s[1] & 0x3f) << 12 |
           (unsigned)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
}

int extra_check_text(const char *s, size_t maxcp, char *err, size_t errlen)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t ncp = 0, n;
    while (*p) {
        unsigned cp = decode(p, &n);
        /* Controls would break a line of the page, or a log line; the
         * line and paragraph separators too. */
        if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0) || cp == 0x2028 ||
            cp == 0x2029)
            return errf(err, errlen, -1,
                        "control characters are not allowed (U+%04X)", cp);
        if (++ncp > maxcp)
            return errf(err, errlen, -1, "at most %zu characters", maxcp);
        p += n;
    }
    return 0;
}

static int64_t days_from_civil(int y, unsigned m, unsigned d)
{
    /* Days since 1970-01-01 of a proleptic Gregorian date. */
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* ISO 8601 with an explicit offset: 2026-12-08T17:30[:00[.000]](Z|+01:00).
 * A time without an offset would mean a zone we would have to guess. */
static int parse_iso(const char *s, int64_t *out)
{
    int y, mo, d, h, mi, sec = 0, ms = 0, n = 0, oh = 0, om = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d%n", &y, &mo, &d, &h, &mi, &n) != 5 ||
        n != 16)
        return -1;
    s += n;
    if (*s == ':') {
        if (sscanf(s, ":%2d%n", &sec, &n) != 1 || n != 3)
            return -1;
        s += n;
        if (*s == '.') {
            int digits = 0;
            for (s++; *s >= '0' && *s <= '9'; s++, digits++)
                if (digits < 3)
                    ms = ms * 10 + (*s - '0');
            if (!digits)
                return -1;
            for (; digits < 3; digits++)
                ms *= 10;
        }
    }
    int sign = 0;
    if (*s == 'Z' && !s[1])
        sign = 1;
    else if ((*s == '+' || *s == '-') &&
             sscanf(s + 1, "%2d:%2d%n", &oh, &om, &n) == 2 && n == 5 &&
             !s[6])
        sign = *s == '+' ? 1 : -1;
    if (!sign || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 60 || oh > 23 || om > 59 || y < 1970)
        return -1;
    int64_t t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 +
                h * 3600 + mi * 60 + sec;
    t -= sign * (oh * 3600 + om * 60);
    *out = t * 1000 + ms;
    return 0;
}

/* A time as a client gives it; 0 means "never". -1 for an unknown form. */
static int parse_when(const json_t *v, const char *tz, int64_t now,
                      int64_t *out)
{
    if (!v || json_is_null(v)) {
        *out = 0;
        return 0;
    }
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return *out > 0 ? 0 : -1;
    }
    const char *s = json_string_value(v);
    if (!s)
        return -1;
    if (strcmp(s, "never") == 0) {
        *out = 0;
        return 0;
    }
    if (strcmp(s, "today") == 0 || strcmp(s, "week") == 0) {
        *out = s[0] == 't' ? tz_end_of_day(tz, now) : tz_end_of_week(tz, now);
        return *out > 0 ? 0 : -1;
    }
    /* "<n>m", "<n>h", "<n>d": from now, at most a year. */
    char unit = 0, extra;
    long n;
    if (sscanf(s, "%ld%c%c", &n, &unit, &extra) == 2 && n > 0 &&
        (s[0] >= '0' && s[0] <= '9')) {
        int64_t ms = unit == 'm' ? 60000 : unit == 'h' ? 3600000
                                 : unit == 'd' ? 86400000 : 0;
        if (!ms || n > 366 * 86400000LL / ms)
            return -1;
        *out = now + n * ms;
        return 0;
    }
    return parse_iso(s, out);
}

static const char *zone_of(const struct extra_rec *r)
{
    return r->x.tz[0] ? r->x.tz : "UTC";
}

/* 0 if every key of o is one of keys (NULL-terminated), else the
 * EXTRA_EFIELD of the first that is not: a misspelt key would otherwise
 * be a change silently not made. */
static int only_keys(const json_t *o, const char *what,
                     const char *const *keys, char *err, size_t errlen)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) {
        size_t i = 0;
        while (keys[i] && strcmp(keys[i], k) != 0)
            i++;
        if (!keys[i])
            return errf(err, errlen, EXTRA_EFIELD, "unknown field %s.%.*s",
                        what, utf8_prefix(k, 64), k);
    }
    return 0;
}

static int patch_message(struct extra_rec *r, const json_t *m, int64_t now,
                         char *err, size_t errlen)
{
    if (json_is_null(m)) {
        r->text[0] = r->emoji[0] = 0;
        r->x.expires_ms = 0;
        r->x.clear_status = 0;
        return 0;
    }
    if (!json_is_object(m))
        return errf(err, errlen, EXTRA_EFIELD,
                    "message must be an object or null");
    static const char *const keys[] = {"text", "emoji", "expires",
                                       "clear_status", NULL};
    int rc = only_keys(m, "message", keys, err, errlen);
    if (rc)
        return rc;
    const json_t *t = json_object_get(m, "text"),
                 *e = json_object_get(m, "emoji"),
                 *c = json_object_get(m, "clear_status");
    if (!json_is_string(t))
        return errf(err, errlen, EXTRA_EMESSAGE, "message.text must be a string");
    if (e && !json_is_null(e) && !json_is_string(e))
        return errf(err, errlen, EXTRA_EMESSAGE,
                    "message.emoji must be a string or null");
    if (c && !json_is_boolean(c))
        return errf(err, errlen, EXTRA_EFIELD,
                    "message.clear_status must be true or false");
    char why[96];
    if (extra_check_text(json_string_value(t), PRESENCE_TEXT_MAX, why,
                         sizeof why) != 0)
        return errf(err, errlen, EXTRA_EMESSAGE, "message.text: %s", why);
    if (json_is_string(e) &&
        extra_check_text(json_string_value(e), PRESENCE_EMOJI_MAX, why,
                         sizeof why) != 0)
        return errf(err, errlen, EXTRA_EMESSAGE, "message.emoji: %s", why);
    int64_t exp;
    if (parse_when(json_object_get(m, "expires"), zone_of(r), now, &exp) != 0)
        return errf(err, errlen, EXTRA_EEXPIRY,
                    "message.expires must be \"30m\", \"1h\", \"4h\", "
                    "\"today\", \"week\", \"never\", ms since the epoch or "
                    "an ISO 8601 time with an offset");
    if (exp && exp <= now)
        return errf(err, errlen, EXTRA_EEXPIRY,
                    "message.expires is not in the future");
    copy_str(r->text, sizeof r->text, json_string_value(t));
    copy_str(r->emoji, sizeof r->emoji, r->text[0] ? json_string_value(e) : "");
    r->x.expires_ms = r->text[0] ? exp : 0;
    r->x.clear_status = r->text[0] && json_is_true(c);
    return 0;
}

static int patch_dnd(struct extra_rec *r, const json_t *d, int64_t now,
                     char *err, size_t errlen)
{
    if (json_is_null(d)) {
        r->x.dnd_until_ms = 0;
        memset(&r->x.sched, 0, sizeof r->x.sched);
        r->x.dnd_busy = 0;
        return 0;
    }
    if (!json_is_object(d))
        return errf(err, errlen, EXTRA_EFIELD, "dnd must be an object or null");
    static const char *const keys[] = {"until", "schedule", "while_busy",
                                       NULL};
    int rc = only_keys(d, "dnd", keys, err, errlen);
    if (rc)
        return rc;
    const json_t *u = json_object_get(d, "until"),
                 *s = json_object_get(d, "schedule"),
                 *b = json_object_get(d, "while_busy");
    if (b && !json_is_boolean(b))
        return errf(err, errlen, EXTRA_EFIELD,
                    "dnd.while_busy must be true or false");
    struct dnd_sched sched = r->x.sched;
    if (s) {
        char why[128];
        if (json_is_null(s))
            memset(&sched, 0, sizeof sched);
        else if (!json_is_array(s))
            return errf(err, errlen, EXTRA_ESCHEDULE,
                        "dnd.schedule must be an array or null");
        else if (dnd_sched_from_json((const struct json_t *)s, &sched, why,
                                     sizeof why) != DND_OK)
            return errf(err, errlen, EXTRA_ESCHEDULE, "dnd.schedule: %s", why);
    }
    int64_t until = r->x.dnd_until_ms;
    if (json_object_get(d, "until")) {
        if (parse_when(u, zone_of(r), now, &until) != 0)
            return errf(err, errlen, EXTRA_EDND,
                        "dnd.until must be \"30m\", \"1h\", \"today\", ..., "
                        "ms since the epoch, an ISO 8601 time or null");
        if (until && until <= now)
            return errf(err, errlen, EXTRA_EDND,
                        "dnd.until is not in the future");
    }
    r->x.dnd_until_ms = until;
    r->x.sched = sched;
    if (b)
        r->x.dnd_busy = json_is_true(b);
    return 0;
}

int extra_patch(struct extra_rec *r, const struct json_t *obj0, int64_t now,
                unsigned *touched, char *err, size_t errlen)
{
    const json_t *obj = (const json_t *)obj0;
    struct extra_rec n = *r;
    unsigned t = 0;
    int rc;

    extra_rec_fix(&n);
    if (!json_is_object(obj))
        return errf(err, errlen, EXTRA_EFIELD, "body must be a JSON object");
    /* The zone first: "today" in a message means today where the user is
     * after this very change. */
    const json_t *tz = json_object_get(obj, "tz");
    if (tz) {
        if (json_is_null(tz))
            n.x.tz[0] = 0;
        else if (!json_is_string(tz) || !tz_valid(json_string_value(tz)))
            return errf(err, errlen, EXTRA_ETZ,
                        "tz must be an IANA time zone name such as "
                        "\"Europe/Paris\", or null");
        else
            copy_str(n.x.tz, sizeof n.x.tz, json_string_value(tz));
        t |= EXTRA_T_PROFILE;
    }
    const json_t *h = json_object_get(obj, "hide_last_seen");
    if (h) {
        if (!json_is_boolean(h))
            return errf(err, errlen, EXTRA_EFIELD,
                        "hide_last_seen must be true or false");
        n.x.hide_last_seen = json_is_true(h);
        t |= EXTRA_T_PROFILE;
    }
    const json_t *m = json_object_get(obj, "message");
    if (m) {
        if ((rc = patch_message(&n, m, now, err, errlen)) != 0)
            return rc;
        t |= EXTRA_T_MESSAGE;
    }
    const json_t *d = json_object_get(obj, "dnd");
    if (d) {
        if ((rc = patch_dnd(&n, d, now, err, errlen)) != 0)
            return rc;
        t |= EXTRA_T_DND;
    }
    *r = n;
    extra_rec_fix(r);
    if (touched)
        *touched = t;
    return 0;
}
