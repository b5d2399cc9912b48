/* presets.c - the status messages an organization offers its members to
 * pick (GET /api/status/presets), and their editing with the admin key
 * (GET/PUT/DELETE /api/admin/presets?org=ID; `presenced presets` does the
 * same on the database).
 *
 * The presets are read from the store on each request (a job on the store
 * thread): pages ask once per visit, and a change by the CLI is then seen
 * at once without a cache to invalidate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "api/presets.h"
#include "auth/web.h"
#include "presence/extra.h"
#include "presence/msg.h"
#include "presence/presence.h"
#include "store/store.h"
#include "util/xalloc.h"

const char presets_default[] =
    "[{\"text\":\"In a meeting\",\"emoji\":\"\xF0\x9F\x93\x85\","
    "\"expires\":\"1h\"},"
    "{\"text\":\"Commuting\",\"emoji\":\"\xF0\x9F\x9A\x8C\","
    "\"expires\":\"30m\"},"
    "{\"text\":\"Out sick\",\"emoji\":\"\xF0\x9F\xA4\x92\","
    "\"expires\":\"today\"},"
    "{\"text\":\"On vacation\",\"emoji\":\"\xF0\x9F\x8C\xB4\","
    "\"expires\":\"never\"},"
    "{\"text\":\"Working remotely\",\"emoji\":\"\xF0\x9F\x8F\xA0\","
    "\"expires\":\"today\"}]";

static const char *const expiries[] = {"30m", "1h", "4h", "today", "week",
                                       "never"};

int presets_check(const json_t *a, char *err, size_t errlen)
{
    if (!json_is_array(a)) {
        snprintf(err, errlen, "presets must be an array");
        return -1;
    }
    if (json_array_size(a) > PRESETS_MAX) {
        snprintf(err, errlen, "at most %d presets", PRESETS_MAX);
        return -1;
    }
    size_t i;
    const json_t *p;
    json_array_foreach(a, i, p) {
        const json_t *t = json_object_get(p, "text"),
                     *e = json_object_get(p, "emoji"),
                     *x = json_object_get(p, "expires");
        char why[96];
        if (!json_is_object(p) || !json_is_string(t) ||
            !*json_string_value(t)) {
            snprintf(err, errlen, "preset %zu: text must be a string", i + 1);
            return -1;
        }
        if (json_object_size(p) > (size_t)(1 + !!e + !!x)) {
            snprintf(err, errlen, "preset %zu: only text, emoji, expires",
                     i + 1);
            return -1;
        }
        if (extra_check_text(json_string_value(t), PRESENCE_TEXT_MAX, why,
                             sizeof why) != 0 ||
            (e && (!json_is_string(e) ||
                   extra_check_text(json_string_value(e), PRESENCE_EMOJI_MAX,
                                    why, sizeof why) != 0))) {
            snprintf(err, errlen, "preset %zu: %s", i + 1,
                     json_is_string(e) || !e ? why : "emoji must be a string");
            return -1;
        }
        size_t k = 0;
        if (x) {
            const char *xs = json_string_value(x);
            while (xs && k < sizeof expiries / sizeof *expiries &&
                   strcmp(xs, expiries[k]) != 0)
                k++;
        }
        if (x && k == sizeof expiries / sizeof *expiries) {
            snprintf(err, errlen, "preset %zu: expires must be one of 30m, 1h, "
                                  "4h, today, week, never", i + 1);
            return -1;
        }
    }
    return 0;
}

/* ---- the job ---------------------------------------------------------- */

struct presets_job {
    struct api_req *q;
    char org[STORE_ID_MAX + 1];
    int op;                     /* 0 read, 1 write, 2 reset */
    char *json;                 /* write: the new presets; read: the answer */
};

static int presets_run(struct store *s, void *ud)
{
    struct presets_job *j = ud;
    if (j->op == 1 || j->op == 2) {
        int rc = store_presets_set(s, j->org, j->op == 1 ? j->json : NULL);
        if (rc != 0)
            return rc;
        free(j->json);
        j->json = NULL;
    }
    char *out = xmalloc(STORE_PRESETS_MAX + 1);
    int rc = store_presets_get(s, j->org, out, STORE_PRESETS_MAX + 1);
    if (rc == STORE_ENOENT) {
        /* Unknown organizations read as the defaults too, so the admin
         * read cannot tell which exist; a write says. */
        snprintf(out, STORE_PRESETS_MAX + 1, "%s", presets_default);
        rc = 0;
    }
    j->json = out;
    return rc;
}

static void presets_done(void *ud, int rc)
{
    struct presets_job *j = ud;
    struct api_req *q = j->q;
    struct hub *hub = q->srv->hub;
    hub_lock(hub);
    if (api_req_live(q)) {
        if (rc == STORE_ENOENT)
            http_error(q->c, 404, "not_found", "no such organization");
        else if (rc != 0)
            api_store_error(q, rc, "read the presets");
        else {
            struct buf b;
            buf_init(&b, 0);
            buf_puts(&b, "{\"org\":");
            msg_append_string(&b, j->org);
            buf_puts(&b, ",\"presets\":");
            buf_puts(&b, j->json);
            buf_puts(&b, "}");
            http_respond_json(q->c, 200, NULL, &b);
            buf_dispose(&b);
        }
    }
    api_req_free(q);
    hub_unlock(hub);
    free(j->json);
    free(j);
}

static void start(struct api_req *q, const char *org, int op, char *json)
{
    struct presets_job *j = xcalloc(1, sizeof *j);
    snprintf(j->org, sizeof j->org, "%s", org);
    j->op = op;
    j->json = json;
    unsigned flags = op ? STOREQ_RETRY | STOREQ_DURABLE : STOREQ_READ;
    if (hub_submit(q->srv->hub, presets_run, presets_done, j, flags) != 0) {
        free(j->json);
        free(j);
        http_error_ex(q->c, 503, "Retry-After: 1\r\n", "busy",
                      "the database is busy; try again");
        return;
    }
    j->q = api_req_defer(q);
}

void api_presets(struct api_req *q) { start(q, q->who.org, 0, NULL); }

void api_admin_presets(struct api_req *q)
{
    char org[STORE_ID_MAX + 1];
    if (web_query_get(q->query, q->qlen, "org", org, sizeof org) <= 0) {
        http_error(q->c, 400, "bad_request", "org=ID is required");
        return;
    }
    if (q->method == HTTP_GET) {
        start(q, org, 0, NULL);
        return;
    }
    if (q->method == HTTP_DELETE) {
        start(q, org, 2, NULL);
        return;
    }
    /* The array itself, or {"presets": [...]}: api_body_json() takes
     * objects only. */
    const struct http_req *r = q->r;
    if (!web_is_json(r->content_type)) {
        http_error(q->c, 415, "unsupported_media_type",
                   "the body must be JSON (Content-Type: application/json)");
        return;
    }
    json_error_t je;
    json_t *j = json_loadb(r->body.data ? r->body.data : "", r->body.len,
                           JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        http_error(q->c, 400, "bad_request", "the body is not JSON");
        return;
    }
    const json_t *a = json_is_object(j) ? json_object_get(j, "presets") : j;
    char err[160];
    if (presets_check(a, err, sizeof err) != 0) {
        json_decref(j);
        http_error(q->c, 400, "invalid_presets", err);
        return;
    }
    char *text = json_dumps(a, JSON_COMPACT);
    json_decref(j);
    if (!text || strlen(text) > STORE_PRESETS_MAX) {
        free(text);
        http_error(q->c, 400, "invalid_presets", "presets are too long");
        return;
    }
    start(q, org, 1, text);
}
