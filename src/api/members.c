/* members.c - the caller's organization: its members (/api/me,
 * /api/users/ID, /api/presence), the caller's status (PUT /api/status),
 * and its channels and projects with their members. */
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "presence/msg.h"
#include "presence/presence.h"
#include "util/xalloc.h"

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
    buf_puts(b, "}");
}

void api_me(struct api_req *q)
{
    struct buf b;
    buf_init(&b, 0);
    if (presence_get(hub_presence(q->srv->hub), q->who.org, q->who.user, me_cb, &b) !=
        0)
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

void api_presence(struct api_req *q)
{
    struct api_loop *srv = q->srv;
    struct buf b;
    struct list_ctx l = {srv, q->who.org, &b, 0};
    buf_init(&b, 0);
    hub_sync_org(srv->hub, q->who.org);
    buf_puts(&b, "{\"org\":");
    msg_append_string(&b, q->who.org);
    buf_printf(&b, ",\"seq\":%llu,\"members\":[",
               (unsigned long long)presence_org_seq(hub_presence(srv->hub),
                                                    q->who.org));
    presence_each(hub_presence(srv->hub), q->who.org, list_cb, &l);
    buf_puts(&b, "]}");
    http_respond_json(q->c, 200, NULL, &b);
    buf_dispose(&b);
}

/* ---- status --------------------------------------------------------- */

void api_status(struct api_req *q)
{
    json_t *j = api_body_json(q);
    if (!j)
        return;
    const char *s = json_string_value(json_object_get(j, "status"));
    enum presence_status st;
    if (!s || presence_status_parse(s, &st) != 0) {
        json_decref(j);
        http_error(q->c, 400, "invalid_status",
                   "status must be one of ONLINE, AWAY, BUSY, OFFLINE");
        return;
    }
    json_decref(j);
    if (!hub_status_allowed(q->srv->hub, q->who.org, q->who.user)) {
        http_error_ex(q->c, 429, "Retry-After: 1\r\n", "rate_limited",
                      "too many status changes; slow down");
        return;
    }
    if (hub_set_manual(q->srv->hub, q->who.org, q->who.user, st) != 0) {
        http_error(q->c, 400, "invalid_status", "status not allowed");
        return;
    }
    api_respond_member(q, q->who.user);
}

/* ---- channels and projects ------------------------------------------- */

struct group {
    char id[STORE_ID_MAX + 1];
    char name[STORE_NAME_MAX + 1];
};

struct group_list {
    struct group *v;
    size_t n, cap;
};

static void group_cb(void *ud, const char *id, const char *name, int nmem)
{
    struct group_list *l = ud;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    snprintf(l->v[l->n].id, sizeof l->v[l->n].id, "%s", id);
    snprintf(l->v[l->n].name, sizeof l->v[l->n].name, "%s", name);
    l->n++;
}

static void exists_cb(void *ud, const struct presence_member *m)
{
}

static void public_cb(void *ud, const struct presence_member *m)
{
    msg_encode_member(ud, m);
}

static void group_member_cb(void *ud, const char *user)
{
    struct list_ctx *l = ud;
    struct presence *p = hub_presence(l->srv->hub);
    /* A member the server has not loaded (added by the CLI since it
     * started): shown as stored, OFFLINE until it connects. */
    if (presence_get(p, l->org, user, exists_cb, NULL) != 0 &&
        hub_ensure_user(l->srv->hub, l->org, user, NULL) != 0)
        return;
    if (l->n++)
        buf_puts(l->b, ",");
    presence_get(p, l->org, user, public_cb, l->b);
}

/* {"id":..,"name":..,"members":[member...]} of one channel or project;
 * -1 (nothing written) if it is not in org. */
static int encode_group(struct api_loop *srv, const char *org, const char *id,
                        int project, struct buf *b)
{
    char name[STORE_NAME_MAX + 1];
    struct buf members;
    struct list_ctx l = {srv, org, &members, 0};
    buf_init(&members, 0);
    /* The name comes with the members: the object is written after. */
    int rc = project ? store_project_members(hub_store(srv->hub), org, id, name,
                                             group_member_cb, &l)
                     : store_channel_members(hub_store(srv->hub), org, id, name,
                                             group_member_cb, &l);
    if (rc == 0) {
        buf_puts(b, "{\"id\":");
        msg_append_string(b, id);
        buf_puts(b, ",\"name\":");
        msg_append_string(b, name);
        buf_puts(b, ",\"members\":[");
        buf_append(b, members.data, members.len);
        buf_puts(b, "]}");
    }
    buf_dispose(&members);
    return rc == 0 ? 0 : -1;
}

static void group(struct api_req *q, int project)
{
    const char *id = api_param(q, "id");
    struct buf b;
    buf_init(&b, 0);
    if (!id || encode_group(q->srv, q->who.org, id, project, &b) != 0)
        http_error(q->c, 404, "not_found",
                   !id ? "no such channel or project"
                   : project ? "no such project"
                             : "no such channel");
    else
        http_respond_json(q->c, 200, NULL, &b);
    buf_dispose(&b);
}

static void groups(struct api_req *q, int project)
{
    struct api_loop *srv = q->srv;
    struct group_list l = {0};
    int rc = project ? store_project_each(hub_store(srv->hub), q->who.org, group_cb, &l)
                     : store_channel_each(hub_store(srv->hub), q->who.org, group_cb,
                                          &l);
    if (rc != 0) {
        free(l.v);
        http_error(q->c, 500, "internal", "could not read the database");
        return;
    }
    struct buf b;
    buf_init(&b, 0);
    buf_puts(&b, project ? "{\"projects\":[" : "{\"channels\":[");
    for (size_t i = 0; i < l.n; i++) {
        if (i)
            buf_puts(&b, ",");
        encode_group(srv, q->who.org, l.v[i].id, project, &b);
    }
    buf_puts(&b, "]}");
    free(l.v);
    http_respond_json(q->c, 200, NULL, &b);
    buf_dispose(&b);
}

void api_channels(struct api_req *q) { groups(q, 0); }
void api_projects(struct api_req *q) { groups(q, 1); }
void api_channel(struct api_req *q) { group(q, 0); }
void api_project(struct api_req *q) { group(q, 1); }
