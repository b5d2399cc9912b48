/* extra.h - the JSON of a user's extras (struct presence_extra): the
 * status message, Do Not Disturb, time zone and privacy settings.
 *
 * Two forms. The settings form is what the store keeps (one TEXT column)
 * and what GET /api/me shows its owner:
 *   {"message":{"text":..,"emoji":..|null,"expires":ms|null,
 *               "clear_status":bool}|null,
 *    "dnd":{"until":ms|null,"schedule":[...dnd.h wire form...],
 *           "while_busy":bool},
 *    "tz":..|null,"hide_last_seen":bool}
 * The patch form is what a client sends (PUT /api/status, PUT /api/dnd,
 * PUT /api/profile, the WebSocket "update" message): the same keys, each
 * optional (absent: unchanged), with friendlier values for times ("30m",
 * "1h", "4h", "today", "week", "never", ms since the epoch, or ISO 8601).
 *
 * Pure: jansson in, structs out; the caller passes now. Strings of a
 * struct extra_rec live in its own arrays: copy the struct as a whole and
 * call extra_rec_fix() so its pointers follow. */
#ifndef EXTRA_H
#define EXTRA_H
#include <stddef.h>
#include <stdint.h>

#include "presence/presence.h"
#include "util/buf.h"

struct json_t;

struct extra_rec {
    struct presence_extra x;    /* text, emoji point into the arrays */
    char text[PRESENCE_TEXT_MAX * 4 + 1];
    char emoji[PRESENCE_EMOJI_MAX * 4 + 1];
};

/* A record holding what x holds (NULL: nothing set). */
void extra_rec_from(struct extra_rec *r, const struct presence_extra *x);
/* Points r->x's strings at r's own arrays again (after a struct copy). */
void extra_rec_fix(struct extra_rec *r);

/* The settings form of x (NULL: nothing set), appended to b. 0 or
 * BUF_ETOOBIG. */
int extra_encode(struct buf *b, const struct presence_extra *x);
/* Parses the settings form (as the store keeps it) into r. 0 or -1. */
int extra_parse(const char *json, size_t len, struct extra_rec *r);

/* Patch errors: the wire code of each is extra_error_code(). */
enum {
    EXTRA_EFIELD = -1,    /* "bad_request": a field of the wrong type */
    EXTRA_EMESSAGE = -2,  /* "invalid_message": text or emoji too long,
                             control characters */
    EXTRA_EEXPIRY = -3,   /* "invalid_expiry": unknown form, or not after
                             now */
    EXTRA_ETZ = -4,       /* "invalid_tz": not an IANA zone */
    EXTRA_ESCHEDULE = -5, /* "invalid_schedule": dnd.h refuses it */
    EXTRA_EDND = -6,      /* "invalid_dnd": a DND end not after now */
};
const char *extra_error_code(int rc);

/* Applies the patch keys of obj (a JSON object; other keys are ignored)
 * to r, at now: "message", "dnd", "tz", "hide_last_seen". A time of day
 * ("today", "week") is taken in the zone r holds after the patch (UTC if
 * none). Returns 0, or an EXTRA_E* code with err set (errlen bytes) and r
 * unchanged. *touched gets which parts changed: EXTRA_T_* bits. */
enum { EXTRA_T_MESSAGE = 1, EXTRA_T_DND = 2, EXTRA_T_PROFILE = 4 };
int extra_patch(struct extra_rec *r, const struct json_t *obj, int64_t now,
                unsigned *touched, char *err, size_t errlen);

/* Checks a status message's text: at most maxcp code points, no control
 * characters (C0, DEL, C1, U+2028/2029). 0 or -1 with err set. */
int extra_check_text(const char *s, size_t maxcp, char *err, size_t errlen);
#endif
