/* members.c - the caller's organization: its members (/api/me,
 * /api/users/ID, /api/presence), the caller's status (PUT /api/status),
 * and its channels and projects with their members. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "auth/web.h"
#include "presence/extra.h"
#include "presence/msg.h"
#include "presence/presence.h"
#include "store/queue.h"
#include "store/store.h"
#include "util/xalloc.h"
#include "util/utf8.h"

/* ---- members -------------------------------------------------------- */

/* The caller as a member, plus its manual status (null if none), which
 * only the caller may see: others see the effective status. */
static void me_cb(void *ud, const struct presence_member *m)
{
    struct buf *b = ud;
    buf_puts(b, "{");
    msg_member_self_fields(b, m);
    buf_puts(b, ",\"manual\":");
    msg_append_string(b, m->manual == PRESENCE_UNSET
                             ? NULL
                             : presence_status_name(m->manual));
    /* The owner's own settings, the schedule and choices included. */
    buf_puts(b, ",\"settings\":");
    extra_encode(b, m->x);
    buf_puts(b, "}");
}

void api_me(struct api_req *q)
{
    struct buf b;
    buf_init(&b, 0);
    if (hub_get_self(q->srv->hub, q->who.org, q->who.user, me_cb, &b) != 0)
        http_error(q->c, 404, "not_found", "no such user");
    else
        http_respond_json(q->c, 200, NULL, &b);
    buf_dispose(&b);
}

void api_user(struct api_req *q)
{
    const char *id = api_param(q, "id");
    if (!id)
        http_error(q->c, 404, "not_found", "no such user");
    else
        api_respond_member(q, id);
}

/* A JSON array being written, one element at a time. */
struct list_ctx {
    struct api_loop *srv;
    const char *org;
    struct buf *b;
    size_t n;
};

static void list_cb(void *ud, const struct presence_member *m)
{
    struct list_ctx *l = ud;
    if (l->n++)
        buf_puts(l->b, ",");
    msg_encode_member(l->b, m);
}

/* Lock held: the organization's members, as the store had them when the
 * sync read it. */
static void presence_answer(void *arg)
{
    struct api_req *q = arg;
    if (api_req_live(q)) {
        struct api_loop *srv = q->srv;
        struct buf b;
        struct list_ctx l = {srv, q->who.org, &b, 0};
        buf_init(&b, 0);
        buf_puts(&b, "{\"org\":");
        msg_append_string(&b, q->who.org);
        buf_printf(&b, ",\"seq\":%llu,\"members\":[",
                   (unsigned long long)presence_org_seq(hub_view(srv->hub),
                                                        q->who.org));
        presence_each(hub_view(srv->hub), q->who.org, list_cb, &l);
        buf_puts(&b, "]}");
        http_respond_json(q->c, 200, NULL, &b);
        buf_dispose(&b);
    }
    api_req_free(q);
}

void api_presence(struct api_req *q)
{
    /* The whole organization, members the CLI added since we loaded
     * included: answered once the store has said (a read on the store
     * thread; events and pings never wait for it). */
    hub_sync_org(q->srv->hub, q->who.org, presence_answer,
                 api_req_defer(q));
}

/* ---- status, message, Do Not Disturb, profile ------------------------ */

/* PUT /api/status, /api/dnd and /api/profile: one update through
 * hub_update() (which refuses unknown keys); body_key wraps the body under
 * that key first ("dnd"; a body of null then turns it all off, as
 * "dnd": null does elsewhere), and allowed, if given, narrows the keys
 * further. Answers with the caller as /api/me shows it. */
static void update(struct api_req *q, const char *body_key,
                   const char *const *allowed)
{
    const struct http_req *r = q->r;
    json_t *j;
    if (body_key && r->body.len == 4 && memcmp(r->body.data, "null", 4) == 0 &&
        web_is_json(r->content_type))
        j = json_null();
    else if (!(j = api_body_json(q)))
        return;
    if (allowed) {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            size_t i = 0;
            while (allowed[i] && strcmp(allowed[i], k) != 0)
                i++;
            if (!allowed[i]) {
                char msg[160];
                snprintf(msg, sizeof msg, "unknown field \"%.*s\"",
                         utf8_prefix(k, 64), k);
                json_decref(j);
                http_error(q->c, 400, "bad_request", msg);
                return;
            }
        }
    }
    if (body_key)
        j = json_pack("{s:o}", body_key, j);
    if (!hub_status_allowed(q->srv->hub, q->who.org, q->who.user)) {
        json_decref(j);
        http_error_ex(q->c, 429, "Retry-After: 1\r\n", "rate_limited",
                      "too many status changes; slow down");
        return;
    }
    const char *code;
    char err[256];
    int rc = hub_update(q->srv->hub, q->who.org, q->who.user,
                        (const struct json_t *)j, &code, err, sizeof err);
    json_decref(j);
    if (rc != 0) {
        http_error(q->c, strcmp(code, "not_found") == 0 ? 404
                         : strcmp(code, "not_supported") == 0 ? 501 : 400,
                   code, err);
        return;
    }
    api_me(q);
}

void api_status(struct api_req *q) { update(q, NULL, NULL); }

void api_dnd(struct api_req *q) { update(q, "dnd", NULL); }

void api_profile(struct api_req *q)
{
    static const char *const keys[] = {"tz", "hide_last_seen", NULL};
    update(q, NULL, keys);
}

/* GET /api/users/ID/notify: the one question a chat backend asks before a
 * push or a sound. */
void api_notify(struct api_req *q)
{
    const char *id = api_param(q, "id");
    int64_t until = 0;
    int rc = id ? presence_notify(hub_view(q->srv->hub), q->who.org, id,
                                  hub_now(q->srv->hub), &until)
                : PRESENCE_ENOENT;
    if (rc < 0)
        http_error(q->c, 404, "not_found", "no such user");
    else if (rc)
        api_respond_pack(q, 200, NULL, "{s:b}", "notify", 1);
    else if (until > 0)
        api_respond_pack(q, 200, NULL, "{s:b, s:s, s:I}", "notify", 0,
                         "reason", "dnd", "until", (json_int_t)until);
    else
        api_respond_pack(q, 200, NULL, "{s:b, s:s, s:n}", "notify", 0,
                         "reason", "dnd", "until");
}

/* ---- channels and projects ------------------------------------------- */

/* Channels and projects are read on the store thread (a job), then
 * answered on the loop with each member's presence. */
struct group {
    char id[STORE_ID_MAX + 1];
    char name[STORE_NAME_MAX + 1];
    char **members;
    size_t n, cap;
};

struct group_job {
    struct api_req *q;
    int project;
    int one;                    /* GET .../:id: one group, else all */
    char org[STORE_ID_MAX + 1];
    struct group *v;
    size_t n, cap;
};

static struct group *group_new(struct group_job *j, const char *id,
                               const char *name)
{
    if (j->n == j->cap) {
        j->cap = j->cap ? j->cap * 2 : 8;
        j->v = xrealloc(j->v, j->cap * sizeof *j->v);
    }
    struct group *g = &j->v[j->n++];
    memset(g, 0, sizeof *g);
    snprintf(g->id, sizeof g->id, "%s", id);
    snprintf(g->name, sizeof g->name, "%s", name ? name : "");
    return g;
}

static void group_cb(void *ud, const char *id, const char *name, int nmem)
{
    group_new(ud, id, name);
}

static void member_cb(void *ud, const char *user)
{
    struct group *g = ud;
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 16;
        g->members = xrealloc(g->members, g->cap * sizeof *g->members);
    }
    g->members[g->n++] = xstrdup(user);
}

static int members_of(struct store *s, struct group_job *j, struct group *g)
{
    return j->project ? store_project_members(s, j->org, g->id, g->name,
                                              member_cb, g)
                      : store_channel_members(s, j->org, g->id, g->name,
                                              member_cb, g);
}

static int group_run(struct store *s, void *ud)
{
    struct group_job *j = ud;
    if (j->one)
        return members_of(s, j, &j->v[0]);
    int rc = j->project ? store_project_each(s, j->org, group_cb, j)
                        : store_channel_each(s, j->org, group_cb, j);
    for (size_t i = 0; rc == 0 && i < j->n; i++)
        rc = members_of(s, j, &j->v[i]);
    return rc;
}

static void group_job_free(struct group_job *j)
{
    for (size_t i = 0; i < j->n; i++) {
        for (size_t k = 0; k < j->v[i].n; k++)
            free(j->v[i].members[k]);
        free(j->v[i].members);
    }
    free(j->v);
    api_req_free(j->q);
    free(j);
}

static void public_cb(void *ud, const struct presence_member *m)
{
    msg_encode_member(ud, m);
}

/* {"id":..,"name":..,"members":[member...]}: members as presence shows
 * them (one the store has and the core does not is left out). */
static void encode_group(struct presence *p, const char *org,
                         const struct group *g, struct buf *b)
{
    buf_puts(b, "{\"id\":");
    msg_append_string(b, g->id);
    buf_puts(b, ",\"name\":");
    msg_append_string(b, g->name);
    buf_puts(b, ",\"members\":[");
    size_t n = 0;
    for (size_t i = 0; i < g->n; i++) {
        size_t before = b->len;
        if (n)
            buf_puts(b, ",");
        if (presence_get(p, org, g->members[i], public_cb, b) == 0) {
            n++;
        } else {
            b->len = before;
            b->data[b->len] = '\0';
        }
    }
    buf_puts(b, "]}");
}

/* Lock held: the answer, once every member is known to the core. */
static void group_answer(void *arg)
{
    struct group_job *j = arg;
    struct api_req *q = j->q;
    if (api_req_live(q)) {
        struct presence *p = hub_view(q->srv->hub);
        struct buf b;
        buf_init(&b, 0);
        if (!j->one)
            buf_puts(&b, j->project ? "{\"projects\":[" : "{\"channels\":[");
        for (size_t i = 0; i < j->n; i++) {
            if (i)
                buf_puts(&b, ",");
            encode_group(p, j->org, &j->v[i], &b);
        }
        if (!j->one)
            buf_puts(&b, "]}");
        http_respond_json(q->c, 200, NULL, &b);
        buf_dispose(&b);
    }
    group_job_free(j);
}

static void group_done(void *ud, int rc)
{
    struct group_job *j = ud;
    struct api_req *q = j->q;
    struct hub *hub = q->srv->hub;
    hub_lock(hub);
    if (!api_req_live(q)) {
        group_job_free(j);
    } else if (rc == STORE_ENOENT && j->one) {
        http_error(q->c, 404, "not_found",
                   j->project ? "no such project" : "no such channel");
        group_job_free(j);
    } else if (rc != 0) {
        api_store_error(q, rc, "read the database");
        group_job_free(j);
    } else {
        /* Members the CLI added since we loaded: loaded first. */
        struct presence *p = hub_view(hub);
        int missing = 0;
        for (size_t i = 0; !missing && i < j->n; i++)
            for (size_t k = 0; !missing && k < j->v[i].n; k++)
                missing = presence_get(p, j->org, j->v[i].members[k], NULL,
                                       NULL) != 0;
        if (missing)
            hub_sync_org(hub, j->org, group_answer, j);
        else
            group_answer(j);
    }
    hub_unlock(hub);
}

static void groups_read(struct api_req *q, int project, const char *one)
{
    struct group_job *j = xcalloc(1, sizeof *j);
    j->project = project;
    snprintf(j->org, sizeof j->org, "%s", q->who.org);
    if (one) {
        j->one = 1;
        group_new(j, one, NULL);
    }
    if (hub_submit(q->srv->hub, group_run, group_done, j, STOREQ_READ) != 0) {
        group_job_free(j);
        http_error_ex(q->c, 503, "Retry-After: 1\r\n", "busy",
                      "the database is busy; try again");
        return;
    }
    j->q = api_req_defer(q);
}

static void group(struct api_req *q, int project)
{
    const char *id = api_param(q, "id");
    if (!id) {
        http_error(q->c, 404, "not_found", "no such channel or project");
        return;
    }
    groups_read(q, project, id);
}

static void groups(struct api_req *q, int project)
{
    groups_read(q, project, NULL);
}

void api_channels(struct api_req *q) { groups(q, 0); }
void api_projects(struct api_req *q) { groups(q, 1); }
void api_channel(struct api_req *q) { group(q, 0); }
void api_project(struct api_req *q) { group(q, 1); }
