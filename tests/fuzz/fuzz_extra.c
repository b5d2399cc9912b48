/* fuzz_extra.c - the status message / Do Not Disturb JSON (extra.h,
 * dnd.h): what a client sends in PUT /api/status, /api/dnd, /api/profile
 * and the WebSocket "update" message.
 *
 * The whole input is one JSON text. Checked:
 *   - extra_patch() either refuses it with a known wire code and a
 *     NUL-terminated UTF-8 reason, leaving the record as it was, or leaves
 *     a record the core accepts (presence_set_extra() returns 0 at the same
 *     now) whose text obeys extra_check_text();
 *   - the settings form of that record parses back to the same fields;
 *   - dnd_sched_parse() on the same bytes never returns DND_OK for a
 *     schedule dnd_sched_check() refuses, and its format parses back to
 *     the same schedule. */
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "presence/dnd.h"
#include "presence/extra.h"
#include "presence/presence.h"

#define NOW 1774267200000LL /* Monday 2026-03-23 12:00Z */

static void check_sched(const uint8_t *data, size_t size)
{
    struct dnd_sched s, back;
    char err[160], out[DND_FORMAT_MAX];
    if (dnd_sched_parse((const char *)data, size, &s, err, sizeof err) !=
        DND_OK) {
        CHECK(fuzz_utf8_valid((const unsigned char *)err, strlen(err)),
              "reason is not UTF-8");
        return;
    }
    CHECK(dnd_sched_check(&s, NULL, 0) == DND_OK, "parsed a bad schedule");
    int n = dnd_sched_format(&s, out, sizeof out);
    CHECK(n > 0, "format failed");
    CHECK(dnd_sched_parse(out, (size_t)n, &back, err, sizeof err) == DND_OK,
          "format does not parse back: %s", out);
    CHECK(back.n == s.n && memcmp(back.e, s.e, s.n * sizeof *s.e) == 0,
          "round trip changed the schedule: %s", out);
    struct dnd_state st;
    CHECK(dnd_eval(&s, "Europe/Paris", NOW, &st) == 0, "eval failed");
    CHECK(!st.on || st.until_ms == -1 || st.until_ms > NOW, "until %lld",
          (long long)st.until_ms);
    CHECK(st.next_ms == -1 || st.next_ms > NOW, "next %lld",
          (long long)st.next_ms);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_sched(data, size);
    json_error_t je;
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES,
                           &je);
    if (!j)
        return 0;
    struct extra_rec r, before;
    char err[256];
    unsigned touched;
    extra_rec_from(&r, NULL);
    memcpy(r.x.tz, "Europe/Paris", sizeof "Europe/Paris");
    before = r;
    int rc = extra_patch(&r, (const struct json_t *)j, NOW, &touched, err,
                         sizeof err);
    json_decref(j);
    if (rc != 0) {
        const char *code = extra_error_code(rc);
        CHECK(code && *code, "no code for %d", rc);
        CHECK(fuzz_utf8_valid((const unsigned char *)err, strlen(err)),
              "reason is not UTF-8");
        CHECK(memcmp(&r.x.tz, &before.x.tz, sizeof r.x.tz) == 0 &&
                  strcmp(r.text, before.text) == 0 &&
                  r.x.dnd_until_ms == before.x.dnd_until_ms,
              "a refused patch changed the record");
        return 0;
    }
    if (r.x.text)
        CHECK(extra_check_text(r.x.text, PRESENCE_TEXT_MAX, NULL, 0) == 0,
              "text accepted that the checker refuses");
    /* The core takes what the patch accepted. */
    struct presence *p = presence_new(NULL, NULL, NULL);
    CHECK(presence_add_user(p, "o", "u", NULL, PRESENCE_OFFLINE,
                            PRESENCE_UNSET, 0, NOW) == 0, "add");
    CHECK(presence_set_extra(p, "o", "u", &r.x, PRESENCE_KEEP,
                             PRESENCE_R_MESSAGE, NOW) == 0,
          "the core refused what the patch accepted");
    presence_tick(p, NOW + 7LL * 24 * 3600 * 1000);
    presence_free(p);
    /* The settings form round-trips. */
    struct buf b;
    struct extra_rec back;
    buf_init(&b, 0);
    CHECK(extra_encode(&b, &r.x) == 0, "encode");
    CHECK(extra_parse(b.data, b.len, &back) == 0, "settings do not parse: %.*s",
          (int)b.len, b.data);
    CHECK(strcmp(back.text, r.text) == 0 && strcmp(back.emoji, r.emoji) == 0 &&
              back.x.expires_ms == r.x.expires_ms &&
              back.x.dnd_until_ms == r.x.dnd_until_ms &&
              back.x.sched.n == r.x.sched.n &&
              strcmp(back.x.tz, r.x.tz) == 0 &&
              back.x.hide_last_seen == r.x.hide_last_seen,
          "settings round trip changed the record: %.*s", (int)b.len, b.data);
    buf_dispose(&b);
    return 0;
}
