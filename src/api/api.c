/* api.c - the route table, the request context, authentication and
 * dispatch; health and the admin sweep.
 *
 * A request is read once, before the hub's lock: its target parsed, its
 * route matched, its credential taken from where the route accepts one
 * (auth/web.h) and a JWT verified. Under the lock, dispatch() answers 404
 * or 405, checks what the route needs (enum api_need) and runs its
 * handler with the context (struct api_req). The organization of the
 * caller scopes every read: another organization's users are simply not
 * found (404), never "forbidden", so that nothing reveals they exist. */
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api_int.h"
#include "auth/auth.h"
#include "auth/sessions.h"
#include "presence/msg.h"
#include "presence/presence.h"
#include "util/log.h"
#include "util/xalloc.h"

static void not_found(struct api_req *q)
{
    http_error(q->c, 404, "not_found", "no such endpoint");
}

/* ---- the route table ------------------------------------------------ */

/* A pattern matches a path byte for byte, but for its named segments:
 * ":name" is one non-empty segment (up to the next '/'), "*name" (last)
 * the rest of the path, at least one byte; either is percent-decoded into
 * the context (api_param()), and may go unnamed.
 *
 * The first route whose pattern matches the path decides. Routes of one
 * pattern are listed together, the first whose method fits is taken
 * (HTTP_GET takes HEAD too), and if none fits the answer is 405 "use" the
 * first one's. A path no pattern matches is 404 "no such page": the API
 * and the WebSocket endpoints end with catch-alls of their own. */
static const struct route {
    int method; /* enum http_method, or API_ANY */
    const char *pattern;
    enum api_need need;
    api_route_cb *handler;
} routes[] = {
    {API_ANY, "/ws/presence", API_SOCKET, api_ws_presence},
    {API_ANY, "/ws/presence/", API_SOCKET, api_ws_presence},
    {API_ANY, "/ws/echo", API_NONE, api_ws_echo},
    {API_ANY, "/ws/", API_NONE, not_found},
    {API_ANY, "/ws/*", API_NONE, not_found},
    {API_ANY, "/healthz", API_NONE, api_healthz},
    {HTTP_POST, "/api/login", API_NONE, api_login},
    {HTTP_POST, "/api/admin/cleanup-stale", API_ADMIN, api_cleanup},
    {API_ANY, "/static/*", API_NONE, api_asset},
    {HTTP_GET, "/", API_PAGE, api_page},
    {HTTP_GET, "/login", API_NONE, api_page},
    {HTTP_GET, "/channels", API_PAGE, api_page},
    {HTTP_GET, "/members", API_PAGE, api_page},
    {HTTP_GET, "/channels/:id", API_PAGE, api_page},
    {HTTP_GET, "/users/:id", API_PAGE, api_page},
    {HTTP_GET, "/projects/:id", API_PAGE, api_page},
    {HTTP_GET, "/projects", API_PAGE, api_page},
    {HTTP_POST, "/api/logout", API_USER, api_logout},
    {HTTP_PUT, "/api/status", API_USER, api_status},
    {HTTP_PUT, "/api/dnd", API_USER, api_dnd},
    {HTTP_PUT, "/api/profile", API_USER, api_profile},
    {HTTP_GET, "/api/status/presets", API_USER, api_presets},
    {HTTP_GET, "/api/admin/presets", API_ADMIN, api_admin_presets},
    {HTTP_PUT, "/api/admin/presets", API_ADMIN, api_admin_presets},
    {HTTP_DELETE, "/api/admin/presets", API_ADMIN, api_admin_presets},
    {HTTP_GET, "/api/me", API_USER, api_me},
    {HTTP_GET, "/api/presence", API_USER, api_presence},
    {HTTP_GET, "/api/channels", API_USER, api_channels},
    {HTTP_GET, "/api/projects", API_USER, api_projects},
    {HTTP_GET, "/api/channels/:id", API_USER, api_channel},
    {HTTP_GET, "/api/projects/:id", API_USER, api_project},
    {HTTP_GET, "/api/users/:id/notify", API_USER, api_notify},
    {HTTP_GET, "/api/users/*id", API_USER, api_user},
    {HTTP_GET, "/api/members", API_USER, api_members},
    /* Everything else under /api/ is read-only, and not found. */
    {HTTP_GET, "/api/", API_USER, not_found},
    {HTTP_GET, "/api/*", API_USER, not_found},
    /* Any other path: a page nobody has (the HTML 404 page to a browser's
     * GET, docs/protocol.md "Unknown pages"), or the JSON 404 as before. */
    {API_ANY, "/*", API_NONE, api_page_missing},
};

static int add_param(struct api_req *q, const char *name, size_t name_len,
                     const char *s, const char *e)
{
    if (!name_len)
        return 0;
    if (q->nparams == API_MAX_PARAMS)
        return -1; /* a pattern with too many: never matches */
    struct api_param *p = &q->params[q->nparams++];
    p->name = name;
    p->name_len = name_len;
    p->len = web_decode(s, e, 0, p->value, sizeof p->value);
    if (p->len == 0)
        p->len = -1;
    return 0;
}

/* 1 if q's path matches pattern, its named segments then in q. */
static int match(const char *pattern, struct api_req *q)
{
    const char *pat = pattern, *p = q->path, *end = q->path + q->plen;
    q->nparams = 0;
    while (*pat) {
        if (*pat != ':' && *pat != '*') {
            if (p == end || *p != *pat)
                return 0;
            p++;
            pat++;
            continue;
        }
        const char *e = end;
        if (*pat == ':') {
            e = memchr(p, '/', (size_t)(end - p));
            if (!e)
                e = end;
        }
        const char *name = pat + 1;
        size_t nlen = strcspn(name, "/");
        if (e == p || add_param(q, name, nlen, p, e) != 0)
            return 0;
        pat = name + nlen;
        p = e;
    }
    return p == end;
}

/* The first route whose pattern matches q's path, or NULL. */
static const struct route *route_find(struct api_req *q)
{
    for (size_t i = 0; i < ARRAY_LEN(routes); i++)
        if (match(routes[i].pattern, q)) {
            q->pattern = routes[i].pattern;
            return &routes[i];
        }
    return NULL;
}

static int method_fits(int want, int method)
{
    return want == API_ANY || want == method ||
           (want == HTTP_GET && method == HTTP_HEAD);
}

/* Of rt and the routes of the same pattern after it, the first whose
 * method fits, or NULL. */
static const struct route *route_method(const struct route *rt, int method)
{
    const struct route *end = routes + ARRAY_LEN(routes);
    for (const struct route *x = rt; x < end; x++) {
        if (strcmp(x->pattern, rt->pattern) != 0)
            break;
        if (method_fits(x->method, method))
            return x;
    }
    return NULL;
}

const char *api_param(const struct api_req *q, const char *name)
{
    size_t n = strlen(name);
    for (unsigned i = 0; i < q->nparams; i++) {
        const struct api_param *p = &q->params[i];
        if (p->name_len == n && memcmp(p->name, name, n) == 0)
            return p->len > 0 ? p->value : NULL;
    }
    return NULL;
}

/* ---- the context ---------------------------------------------------- */

/* Where each need takes a credential from. */
static unsigned cred_sources(enum api_need need)
{
    switch (need) {
    case API_SOCKET:
        return WEB_FROM_QUERY | WEB_FROM_BEARER | WEB_FROM_COOKIE;
    case API_USER:
        return WEB_FROM_BEARER | WEB_FROM_COOKIE;
    case API_PAGE:
        return WEB_FROM_COOKIE;
    default:
        return 0;
    }
}

/* Parses r's target into q: 0, or -1 if it is no path. */
static int parse_target(struct api_req *q, const struct http_req *r)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (!r->url.len ||
        http_parser_parse_url(r->url.data, r->url.len, 0, &u) != 0 ||
        !(u.field_set & (1 << UF_PATH)))
        return -1;
    q->path = r->url.data + u.field_data[UF_PATH].off;
    q->plen = u.field_data[UF_PATH].len;
    if (u.field_set & (1 << UF_QUERY)) {
        q->query = r->url.data + u.field_data[UF_QUERY].off;
        q->qlen = u.field_data[UF_QUERY].len;
    }
    return 0;
}

/* Reads the credential of q's route into q->cred; a JWT is verified here,
 * with secret (the loop's copy), outside the lock: the signature check
 * needs nothing shared, and a connect storm should not queue behind it.
 * Returns the token (lent from r or buf) for a check again under the
 * lock, or NULL. */
static void read_cred(struct api_req *q, enum api_need need,
                      struct api_loop *lp, char *buf, size_t buflen,
                      struct web_cred *wc)
{
    web_credential(&q->web, q->query, q->qlen, cred_sources(need), buf, buflen,
                   wc);
    q->cred.kind = wc->kind;
    if (wc->kind == WEB_CRED_TOKEN)
        q->cred.jwt_rc =
            jwt_verify(wc->token, wc->len, lp->secret, lp->secret_len,
                       loop_now(lp->lp) / 1000, &q->cred.claims);
    else if (wc->kind == WEB_CRED_SESSION)
        auth_token_hash(wc->token, wc->len, q->cred.session);
}

/* The caller from q->cred into q->who; 0, or -1 with a reason. For a JWT
 * minted by a login (sid), that session must still be live. */
static int identify(struct api_req *q, const char **why)
{
    struct api_loop *srv = q->srv;
    struct api_who *w = &q->who;
    struct sessions_entry s;
    memset(w, 0, sizeof *w);
    if (q->cred.kind == WEB_CRED_TOKEN) {
        const struct jwt_claims *cl = &q->cred.claims;
        if (q->cred.jwt_rc != 0) {
            *why = jwt_strerror(q->cred.jwt_rc);
            return -1;
        }
        if (cl->sid > 0 &&
            (sessions_get_by_id(srv->shared->sessions, cl->sid,
                                hub_now(srv->hub), &s) != 0 ||
             strcmp(s.org, cl->org) || strcmp(s.user, cl->sub))) {
            q->session_miss = 1;
            *why = "session has ended";
            return -1;
        }
        snprintf(w->org, sizeof w->org, "%s", cl->org);
        snprintf(w->user, sizeof w->user, "%s", cl->sub);
        snprintf(w->name, sizeof w->name, "%s", cl->name);
        w->session = cl->sid > 0 ? (uint64_t)cl->sid : 0;
        return 0;
    }
    if (q->cred.kind == WEB_CRED_SESSION) {
        if (sessions_get_by_hash(srv->shared->sessions, q->cred.session,
                                 hub_now(srv->hub), &s) != 0) {
            q->session_miss = 1;
            *why = "session expired or logged out";
            return -1;
        }
        snprintf(w->org, sizeof w->org, "%s", s.org);
        snprintf(w->user, sizeof w->user, "%s", s.user);
        w->session = (uint64_t)s.id;
        w->via_cookie = 1;
        return 0;
    }
    *why = "missing credentials";
    return -1;
}

/* The request again, once this node has heard all the cluster said
 * before now (lock held, on its loop). */
struct later_req {
    struct http_conn *c;
    struct http_req *r;
};

static void redeliver(void *arg)
{
    struct later_req *l = arg;
    struct conn *c = l->c->c;
    http_redeliver(l->c, l->r);
    conn_unref(c); /* may free the connection */
    free(l);
}

/* docs/cluster.md: a session made on another node a moment ago may not be
 * in this node's table yet. Asked again, once, after a barrier behind
 * whatever the cluster published before: then a miss is a miss. 1 if the
 * request was put off (no answer now). */
static int miss_later(struct api_req *q)
{
    if (!q->session_miss || !q->r || q->r->again ||
        !hub_cluster_state(q->srv->hub))
        return 0;
    q->r->again = 1;
    http_keep(q->r);
    struct later_req *l = xmalloc(sizeof *l);
    *l = (struct later_req){q->c, q->r};
    conn_ref(q->c->c);
    hub_barrier_then(q->srv->hub, redeliver, l);
    return 1;
}

int api_authenticate(struct api_req *q)
{
    const char *why;
    if (identify(q, &why) != 0) {
        if (miss_later(q))
            return -1;
        http_error(q->c, 401, "unauthorized", why);
        return -1;
    }
    if (hub_ensure_user(q->srv->hub, q->who.org, q->who.user, q->who.name) !=
        0) {
        http_error(q->c, 401, "unauthorized", "unknown user");
        return -1;
    }
    q->authed = 1;
    return 0;
}

struct api_req *api_req_defer(const struct api_req *q)
{
    struct api_req *d = xmalloc(sizeof *d);
    *d = *q;
    d->r = NULL;
    d->path = d->query = NULL;
    d->plen = d->qlen = 0;
    memset(&d->web, 0, sizeof d->web);
    d->web.https = q->https;
    conn_ref(d->c->c);
    return d;
}

int api_req_live(const struct api_req *q)
{
    return http_busy(q->c);
}

void api_req_free(struct api_req *q)
{
    if (!q)
        return;
    conn_unref(q->c->c);
    free(q);
}

/* ---- dispatch ------------------------------------------------------- */

static void dispatch(struct api_req *q, const struct route *rt)
{
    const struct config *cfg = &q->srv->cfg;
    const char *why;
    if (!rt) {
        http_error(q->c, 404, "not_found", "no such page");
        return;
    }
    if (rt->need == API_USER && api_authenticate(q) != 0)
        return;
    const struct route *m = route_method(rt, q->method);
    if (!m) {
        char msg[32];
        snprintf(msg, sizeof msg, "use %s",
                 http_method_str((enum http_method)rt->method));
        http_error(q->c, 405, "method_not_allowed", msg);
        return;
    }
    switch (m->need) {
    case API_ADMIN:
        if (!web_admin_ok(q->web.authorization, q->srv->shared->admin_key)) {
            http_error(q->c, 401, "unauthorized", "admin key required");
            return;
        }
        break;
    case API_PAGE:
        if (identify(q, &why) != 0) {
            if (!miss_later(q))
                api_page_login(q);
            return;
        }
        break;
    case API_USER:
        if (q->method != HTTP_GET && q->method != HTTP_HEAD &&
            !web_csrf_ok(&q->web, cfg->allowed_origins, q->who.via_cookie)) {
            http_error(q->c, 403, "csrf",
                       "cross-site request refused (Origin not allowed)");
            return;
        }
        break;
    case API_NONE:
    case API_SOCKET:
        break;
    }
    m->handler(q);
}

void api_handle(struct http_conn *c, struct http_req *r)
{
    /* This loop's routes; the settings and secret are this thread's copy
     * (SIGHUP replaces them on this thread only, under the hub lock). */
    struct api_loop *lp = http_data(c), *srv = lp;
    struct api_req q;
    memset(&q, 0, sizeof q);
    q.c = c;
    q.srv = srv;
    q.r = r;
    q.method = r->method;
    /* Where it comes from: the peer, or the client a trusted proxy
     * names (docs/security.md trusted_proxies). */
    auth_client_addr(c->peer, r->forwarded_for, r->real_ip,
                     lp->cfg.trusted_proxies, r->client, sizeof r->client);
    r->https = r->forwarded_proto && lp->cfg.trusted_proxies[0] &&
               strcasecmp(r->forwarded_proto, "https") == 0 &&
               auth_addr_listed(lp->cfg.trusted_proxies, c->peer);
    snprintf(q.client, sizeof q.client, "%s", r->client);
    q.https = r->https;
    q.web = (struct web_req){
        .authorization = r->authorization,
        .cookie = r->cookie,
        .origin = r->origin,
        .xrw = r->xrw,
        .host = r->host,
        .https = r->https,
    };

    /* Outside the lock: the target, the route and the credential. */
    int bad = parse_target(&q, r);
    const struct route *rt = bad ? NULL : route_find(&q);
    char buf[JWT_MAX_LEN + 1];
    struct web_cred wc;
    if (rt)
        read_cred(&q, rt->need, lp, buf, sizeof buf, &wc);

    hub_lock(srv->hub);
    if (bad)
        http_error(c, 400, "bad_request", "bad request target");
    else
        dispatch(&q, rt);
    hub_unlock(srv->hub);
}

/* ---- helpers -------------------------------------------------------- */

json_t *api_body_json(struct api_req *q)
{
    const struct http_req *r = q->r;
    if (!web_is_json(r->content_type)) {
        http_error(q->c, 415, "unsupported_media_type",
                   "the body must be JSON (Content-Type: application/json)");
        return NULL;
    }
    json_error_t e;
    json_t *j = json_loadb(r->body.data ? r->body.data : "", r->body.len,
                           JSON_REJECT_DUPLICATES, &e);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        http_error(q->c, 400, "bad_request", "body must be a JSON object");
        return NULL;
    }
    return j;
}

void api_respond_pack(struct api_req *q, int status, const char *extra_headers,
                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *j = json_vpack_ex(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s) {
        http_error(q->c, 500, "internal", "could not encode the answer");
        return;
    }
    http_respond(q->c, status, extra_headers, "application/json", s, strlen(s));
    free(s);
}

/* A member as the caller itself sees it (its login, /api/me, its own
 * status and page): the truth, its connections included. */
static void self_cb(void *ud, const struct presence_member *m)
{
    msg_encode_member_self(ud, m);
}

/* A member as the other members see it: someone who appears offline
 * looks really offline (docs/protocol.md "Presence rules"). */
static void public_cb(void *ud, const struct presence_member *m)
{
    msg_encode_member(ud, m);
}

/* Answers q with user, or 404; 1 if the user was found. */
static int answer_member(struct api_req *q, const char *user)
{
    const struct api_who *w = &q->who;
    struct buf b;
    buf_init(&b, 0);
    int rc = strcmp(user, w->user)
                 ? presence_get(hub_view(q->srv->hub), w->org, user,
                                public_cb, &b)
                 : hub_get_self(q->srv->hub, w->org, user, self_cb, &b);
    if (rc == 0)
        http_respond_json(q->c, 200, NULL, &b);
    buf_dispose(&b);
    return rc == 0;
}

/* A member not loaded, asked for again once the store has said whether
 * the CLI added it since. */
struct later_member {
    struct api_req *q;
    char user[STORE_ID_MAX + 1];
};

static void member_later(void *arg)
{
    struct later_member *l = arg;
    if (api_req_live(l->q) && !answer_member(l->q, l->user))
        http_error(l->q->c, 404, "not_found", "no such user");
    api_req_free(l->q);
    free(l);
}

void api_respond_member(struct api_req *q, const char *user)
{
    if (answer_member(q, user))
        return;
    /* Perhaps added by the CLI since the organization was loaded. */
    struct later_member *l = xcalloc(1, sizeof *l);
    snprintf(l->user, sizeof l->user, "%s", user);
    l->q = api_req_defer(q);
    hub_sync_org(q->srv->hub, q->who.org, member_later, l);
}

/* ---- health and the admin sweep -------------------------------------- */

void api_healthz(struct api_req *q)
{
    struct api_loop *srv = q->srv;
    /* WebSocket connections per event loop (the kernel spreads new
     * connections over the loops' listeners). */
    json_t *loops = json_array();
    for (unsigned i = 0; i < hub_nloops(srv->hub); i++)
        json_array_append_new(loops, json_integer(hub_nconns(srv->hub, i)));
    const char *cl = hub_cluster_state(srv->hub);
    if (cl)
        api_respond_pack(q, 200, NULL, "{s:s, s:o, s:{s:s, s:s}}", "status",
                         "ok", "loops", loops, "cluster", "node",
                         hub_node(srv->hub), "state", cl);
    else
        api_respond_pack(q, 200, NULL, "{s:s, s:o}", "status", "ok",
                         "loops", loops);
}

void api_cleanup(struct api_req *q)
{
    struct api_loop *srv = q->srv;
    char v[32];
    int64_t older = srv->cfg.stale_after_ms;
    if (web_query_get(q->query, q->qlen, "older_than_ms", v, sizeof v) > 0)
        older = strtoll(v, NULL, 10);
    if (older < 0) {
        http_error(q->c, 400, "bad_request", "older_than_ms must be >= 0");
        return;
    }
    api_respond_pack(q, 200, NULL, "{s:i}", "reset",
                     hub_sweep(srv->hub, older));
}

void api_loop_init(struct api_loop *a, struct hub *hub, struct loop *lp,
                   struct api_shared *shared)
{
    memset(a, 0, sizeof *a);
    a->hub = hub;
    a->lp = lp;
    a->shared = shared;
    list_init(&a->logins);
}

void api_store_error(struct api_req *q, int rc, const char *what)
{
    char msg[128];
    switch (rc) {
    case STORE_EDOWN:
        http_error_ex(q->c, 503, "Retry-After: 1\r\n", "unavailable",
                      "the database is unavailable; try again");
        break;
    case STORE_EIO:
    case STOREQ_EFULL:
        http_error_ex(q->c, 503, "Retry-After: 1\r\n", "busy",
                      "the database is busy; try again");
        break;
    case STOREQ_ECLOSED:
        http_error(q->c, 503, "unavailable", "the server is shutting down");
        break;
    default:
        snprintf(msg, sizeof msg, "could not %s", what);
        http_error(q->c, 500, "internal", msg);
        break;
    }
}
