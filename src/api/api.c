/* api.c - routes: the JSON API, the WebSocket endpoint, health.
 *
 * Every handler answers exactly once (http_respond / http_error, or
 * ws_upgrade). Authentication is here too: a bearer JWT, a `?token=` on the
 * WebSocket, or the login session cookie, checked against the store. The
 * organization of the caller scopes every read: another organization's
 * users are simply not found (404), never "forbidden", so that nothing
 * reveals they exist. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include <strings.h>
#include <time.h>

#include "auth/auth.h"
#include "auth/jwt.h"
#include "http/assets.h"
#include "api/api.h"
#include "http/http.h"
#include "hub/hub.h"
#include "net/net.h"
#include "ws/ws.h"
#include "presence/msg.h"
#include "presence/presence.h"
#include "store/store.h"
#include "util/log.h"
#include "util/rate.h"
#include "util/xalloc.h"

#define COOKIE_NAME "presenced_session"

/* The routes' loop: the http connection's data (server.c). */
static struct api_loop *A(struct http_conn *h) { return http_data(h); }

struct who {
    char org[STORE_ID_MAX + 1];
    char user[STORE_ID_MAX + 1];
    char name[STORE_NAME_MAX + 1];
    uint64_t session;
    int via_cookie;
};

/* ---- small helpers ---------------------------------------------------- */

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, e) into out. Returns the length, or -1 if
 * malformed or too long. */
static int decode(const char *s, const char *e, int plus, char *out,
                  size_t outlen)
{
    size_t o = 0;
    for (; s < e; s++) {
        int ch = (unsigned char)*s;
        if (ch == '%') {
            if (e - s < 3 || hexval(s[1]) < 0 || hexval(s[2]) < 0)
                return -1;
            ch = hexval(s[1]) * 16 + hexval(s[2]);
            s += 2;
        } else if (ch == '+' && plus) {
            ch = ' ';
        }
        if (ch == 0 || o + 1 >= outlen)
            return -1;
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return (int)o;
}

/* Finds name in a query string and decodes its value into out. Returns
 * the length, -1 if absent, or -2 if present but malformed or too long. */
static int query_get(const char *q, size_t qlen, const char *name, char *out,
                     size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = q, *end = q + qlen;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if ((size_t)(e - p) > nl && memcmp(p, name, nl) == 0 &&
            p[nl] == '=') {
            int n = decode(p + nl + 1, e, 1, out, outlen);
            return n < 0 ? -2 : n;
        }
        p = e + 1;
    }
    return -1;
}

/* docs/protocol.md "?auto=": the page's idle state when it connects, as
 * struct conn.idle_at_connect (0 ONLINE, also when absent; 1 AWAY;
 * 2 OFFLINE), or -1 for any other value. */
static int ws_auto(const char *q, size_t qlen)
{
    static const char *const names[] = {"ONLINE", "AWAY", "OFFLINE"};
    char v[8];
    int n = q ? query_get(q, qlen, "auto", v, sizeof v) : -1;
    if (n == -1)
        return 0;
    for (int i = 0; n >= 0 && i < 3; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    return -1;
}

static const char *bearer(const struct http_req *r)
{
    if (!r->authorization || strncasecmp(r->authorization, "Bearer ", 7))
        return NULL;
    const char *t = r->authorization + 7;
    while (*t == ' ')
        t++;
    return t;
}

/* A WebSocket upgrade's token, verified before the server lock is taken:
 * the signature check needs nothing shared, and a connect storm should not
 * queue up behind it. */
struct prejwt {
    const char *tok;
    int rc;
    struct jwt_claims cl;
};
static _Thread_local struct prejwt *pre;

/* Verifies a JWT; for one minted by a login (sid), the session must still
 * be live. Returns 0 or -1 with a reason. */
static int check_jwt(struct api_loop *srv, const char *tok, struct who *w,
                     const char **why)
{
    struct jwt_claims cl;
    int rc;
    if (pre && pre->tok && !strcmp(pre->tok, tok)) {
        rc = pre->rc;
        cl = pre->cl;
    } else {
        rc = jwt_verify(tok, strlen(tok), srv->secret, srv->secret_len,
                        hub_now(srv->hub) / 1000, &cl);
    }
    if (rc != 0) {
        *why = jwt_strerror(rc);
        return -1;
    }
    if (cl.sid > 0) {
        struct store_session s;
        if (store_session_get_by_id(hub_store(srv->hub), cl.sid, hub_now(srv->hub), &s) != 0 ||
            strcmp(s.org, cl.org) || strcmp(s.user, cl.sub)) {
            *why = "session has ended";
            return -1;
        }
    }
    memset(w, 0, sizeof *w);
    snprintf(w->org, sizeof w->org, "%s", cl.org);
    snprintf(w->user, sizeof w->user, "%s", cl.sub);
    snprintf(w->name, sizeof w->name, "%s", cl.name);
    w->session = cl.sid > 0 ? (uint64_t)cl.sid : 0;
    return 0;
}

static int check_cookie(struct api_loop *srv, const struct http_req *r,
                        struct who *w, const char **why)
{
    char tok[128];
    int n = r->cookie ? auth_cookie_get(r->cookie, strlen(r->cookie),
                                        COOKIE_NAME, tok, sizeof tok)
                      : -1;
    if (n <= 0) {
        *why = "missing credentials";
        return -1;
    }
    unsigned char h[32];
    auth_token_hash(tok, (size_t)n, h);
    struct store_session s;
    if (store_session_get(hub_store(srv->hub), h, hub_now(srv->hub), &s) != 0) {
        *why = "session expired or logged out";
        return -1;
    }
    memset(w, 0, sizeof *w);
    snprintf(w->org, sizeof w->org, "%s", s.org);
    snprintf(w->user, sizeof w->user, "%s", s.user);
    w->session = (uint64_t)s.id;
    w->via_cookie = 1;
    return 0;
}

static int origin_ok(struct api_loop *srv, const struct http_req *r)
{
    return r->origin &&
           auth_origin_allowed_tls(r->origin, srv->cfg.allowed_origins,
                                   r->host ? r->host : "", r->https);
}

/* Authenticates a request; on failure answers it and returns -1. */
static int authenticate(struct http_conn *c, struct http_req *r, const char *query,
                        size_t qlen, struct who *w)
{
    struct api_loop *srv = A(c);
    const char *why = "missing credentials";
    char tok[JWT_MAX_LEN + 1];
    const char *b = bearer(r);
    int rc;
    if (query && query_get(query, qlen, "token", tok, sizeof tok) >= 0)
        rc = check_jwt(srv, tok, w, &why);
    else if (b)
        rc = check_jwt(srv, b, w, &why);
    else
        rc = check_cookie(srv, r, w, &why);
    if (rc != 0) {
        http_error(c, 401, "unauthorized", why);
        return -1;
    }
    if (hub_ensure_user(srv->hub, w->org, w->user, w->name) != 0) {
        http_error(c, 401, "unauthorized", "unknown user");
        return -1;
    }
    return 0;
}

/* Cookie-authenticated changes must come from one of our pages. */
static int csrf_ok(struct http_conn *c, struct http_req *r, const struct who *w)
{
    if (!w->via_cookie)
        return 1;
    if (r->origin ? origin_ok(A(c), r) : r->xrw != NULL)
        return 1;
    http_error(c, 403, "csrf",
               "cross-site request refused (Origin not allowed)");
    return 0;
}

/* "application/json", any case, with or without parameters. */
static int is_json_type(const char *ct)
{
    static const char want[] = "application/json";
    size_t n = sizeof want - 1;
    if (!ct || strncasecmp(ct, want, n) != 0)
        return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}

/* The body of a state-changing request as a JSON object; NULL after an
 * answer. Only application/json is read: an HTML form on another site
 * can send text/plain or a form encoding without a preflight, never
 * JSON, so this is half of the CSRF rule (csrf_ok() is the other). */
static json_t *body_json(struct http_conn *c, struct http_req *r)
{
    if (!is_json_type(r->content_type)) {
        http_error(c, 415, "unsupported_media_type",
                   "the body must be JSON (Content-Type: application/json)");
        return NULL;
    }
    json_error_t e;
    json_t *j = json_loadb(r->body.data ? r->body.data : "", r->body.len,
                           JSON_REJECT_DUPLICATES, &e);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        http_error(c, 400, "bad_request", "body must be a JSON object");
        return NULL;
    }
    return j;
}

static void count_conns(void *ud, const struct presence_member *m)
{
    *(unsigned *)ud = m->nconns;
}

/* A member as the caller itself sees it (its login, /api/me, its own
 * status and page): the truth, its connections included. */
static void member_cb(void *ud, const struct presence_member *m)
{
    msg_encode_member_self(ud, m);
}

/* A member as the other members see it: someone who appears offline
 * looks really offline (docs/protocol.md "Presence rules"). */
static void public_cb(void *ud, const struct presence_member *m)
{
    msg_encode_member(ud, m);
}

static void list_cb(void *ud, const struct presence_member *m)
{
    struct buf *b = ud;
    if (b->data[b->len - 1] != '[')
        buf_puts(b, ",");
    msg_encode_member(b, m);
}

/* user of w's organization, as w sees it. */
static void respond_member(struct http_conn *c, const struct who *w,
                           const char *user)
{
    struct buf b;
    buf_init(&b, 0);
    presence_member_cb *cb = strcmp(user, w->user) ? public_cb : member_cb;
    int rc = presence_get(hub_presence(A(c)->hub), w->org, user, cb, &b);
    if (rc != 0) {
        /* Perhaps added by the CLI since the organization was loaded. */
        hub_sync_org(A(c)->hub, w->org);
        rc = presence_get(hub_presence(A(c)->hub), w->org, user, cb, &b);
    }
    if (rc != 0)
        http_error(c, 404, "not_found", "no such user");
    else
        http_respond_json(c, 200, NULL, &b);
    buf_dispose(&b);
}

/* ---- login and logout -------------------------------------------------- */

/* docs/security.md login_limit: every password check is counted when it
 * is let in, not when it finishes, so that no number of requests sent at
 * once gets more than login_limit checks per address and per email into
 * a window. A check that succeeds is given back. */
static int64_t login_reserve(struct api_loop *srv, const char *ipkey,
                             const char *emailkey)
{
    const char *keys[2] = {ipkey, emailkey};
    for (int i = 0; i < 2; i++)
        if (rate_count(hub_rates(srv->hub), keys[i], srv->cfg.login_window_ms,
                       hub_now(srv->hub)) >= srv->cfg.login_limit)
            return rate_wait(hub_rates(srv->hub), keys[i], hub_now(srv->hub)) / 1000 + 1;
    for (int i = 0; i < 2; i++)
        rate_add(hub_rates(srv->hub), keys[i], srv->cfg.login_window_ms, hub_now(srv->hub));
    return 0;
}

enum login_result {
    LOGIN_FAILED,
    LOGIN_OK,
    LOGIN_LATE,     /* waited past login_timeout: not checked */
};

struct login_job {
    uv_work_t req;
    struct http_conn *c;
    struct list link;           /* in loop.logins */
    struct store_user u;
    int found;
    enum login_result result;
    int64_t reserved_at;        /* when login_reserve() counted it */
    int64_t deadline;           /* check it only before this */
    char password[1024];
    char ipkey[64], emailkey[STORE_EMAIL_MAX + 8];
    char client[48];
    int https;                  /* the request came over TLS */
};

/* A hash to verify against when the email is unknown, so that the answer
 * takes as long either way and does not reveal which emails exist. */
static char dummy_hash[AUTH_HASH_MAX];

static int64_t clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* On the thread pool. A login that waited in the queue past its deadline
 * is not checked: its client has given up or soon will, and hashing it
 * would only make the queue behind it wait longer. */
static void login_work(uv_work_t *req)
{
    struct login_job *j = container_of(req, struct login_job, req);
    if (clock_ms() > j->deadline) {
        j->result = LOGIN_LATE;
    } else {
        const char *h = j->found && j->u.pw_hash[0] ? j->u.pw_hash
                                                    : dummy_hash;
        j->result = auth_password_verify(h, j->password) && j->found &&
                            j->u.pw_hash[0]
                        ? LOGIN_OK
                        : LOGIN_FAILED;
    }
    sodium_memzero(j->password, sizeof j->password);
}

static void revoke_cb(void *ud, int64_t id)
{
    struct login_job *j = ud;
    hub_revoke_session(A(j->c)->hub, j->u.org, j->u.id, (uint64_t)id);
}

/* The session cookie; Secure whenever the page came over TLS (a trusted
 * proxy said so) or the settings say every page does. */
static void cookie_header(struct api_loop *srv, int https, const char *value,
                          int64_t max_age_s, struct buf *out)
{
    buf_printf(out,
               "Set-Cookie: " COOKIE_NAME "=%s; Path=/; HttpOnly; "
               "SameSite=Lax; Max-Age=%lld%s\r\n",
               value, (long long)max_age_s,
               https || srv->cfg.secure_cookies ? "; Secure" : "");
}

static void login_ok(struct http_conn *c, struct login_job *j)
{
    struct api_loop *srv = A(c);
    rate_sub(hub_rates(srv->hub), j->ipkey, j->reserved_at, hub_now(srv->hub));
    rate_sub(hub_rates(srv->hub), j->emailkey, j->reserved_at, hub_now(srv->hub));
    /* A new random session id at every login: a token planted before the
     * login (session fixation) is never promoted. */
    char tok[AUTH_TOKEN_LEN + 1];
    unsigned char h[32];
    auth_token_new(tok);
    auth_token_hash(tok, strlen(tok), h);
    int64_t expires = hub_now(srv->hub) + srv->cfg.session_ttl_ms;
    int64_t sid;
    if (store_session_add(hub_store(srv->hub), h, j->u.org, j->u.id, expires, &sid) ||
        hub_ensure_user(srv->hub, j->u.org, j->u.id, NULL) != 0) {
        http_error(c, 500, "internal", "could not create a session");
        return;
    }
    /* docs/security.md max_sessions: the oldest sessions past the cap are
     * revoked, their sockets closed. */
    if (store_session_trim(hub_store(srv->hub), j->u.org, j->u.id,
                           (int)srv->cfg.max_sessions, hub_now(srv->hub), revoke_cb,
                           j) < 0)
        log_warn("could not trim the sessions of %s/%s", j->u.org, j->u.id);
    presence_login(hub_presence(srv->hub), j->u.org, j->u.id, hub_now(srv->hub));

    struct jwt_claims cl = {.exp = expires / 1000, .sid = sid};
    snprintf(cl.sub, sizeof cl.sub, "%s", j->u.id);
    snprintf(cl.org, sizeof cl.org, "%s", j->u.org);
    snprintf(cl.name, sizeof cl.name, "%s", j->u.name);
    char jwt[JWT_MAX_LEN];
    if (jwt_sign(&cl, srv->secret, srv->secret_len, jwt, sizeof jwt) < 0) {
        http_error(c, 500, "internal", "could not sign a token");
        return;
    }
    struct buf b, hdr;
    buf_init(&b, 0);
    buf_init(&hdr, 0);
    /* The member as /api/me shows it, plus org and email. */
    struct buf m;
    buf_init(&m, 0);
    presence_get(hub_presence(srv->hub), j->u.org, j->u.id, member_cb, &m);
    buf_puts(&b, "{\"user\":{\"org\":");
    msg_append_string(&b, j->u.org);
    buf_puts(&b, ",\"email\":");
    msg_append_string(&b, j->u.email);
    buf_puts(&b, ",");
    buf_append(&b, m.data + 1, m.len - 2); /* the member's fields */
    buf_dispose(&m);
    buf_printf(&b, "},\"token\":\"%s\",\"expires\":%lld}", jwt,
               (long long)expires);
    cookie_header(srv, j->https, tok, srv->cfg.session_ttl_ms / 1000, &hdr);
    log_info("%s: login %s/%s", j->client, j->u.org, j->u.id);
    http_respond_json(c, 200, hdr.data, &b);
    buf_dispose(&b);
    buf_dispose(&hdr);
}

static void login_done(uv_work_t *req, int status)
{
    struct login_job *j = container_of(req, struct login_job, req);
    struct http_conn *c = j->c;
    struct api_loop *srv = A(c);
    loop_now(srv->lp);
    hub_lock(srv->hub);
    srv->shared->logins--;
    list_remove(&j->link);
    http_wait(c, NULL, NULL);
    if (!http_busy(c)) {
        /* The client reset the connection: the attempt still counts (it
         * was reserved), but nothing is answered. */
        log_info("%s: login for %s abandoned %s its check", j->client,
                 j->emailkey + 6,
                 status == UV_ECANCELED ? "before" : "after");
    } else if (status == UV_ECANCELED) {
        http_error(c, 503, "unavailable", "the server is shutting down");
    } else if (j->result == LOGIN_LATE) {
        log_warn("%s: login for %s not checked in time", j->client,
                 j->emailkey + 6);
        http_error_ex(c, 503, "Retry-After: 1\r\n", "busy",
                      "too many logins at once; try again");
    } else if (j->result == LOGIN_FAILED) {
        log_info("%s: failed login for %s", j->client, j->emailkey + 6);
        http_error(c, 401, "invalid_credentials", "wrong email or password");
    } else {
        login_ok(c, j);
    }
    hub_unlock(srv->hub);
    conn_unref(c->c);
    free(j);
}
static void cancel_login(void *arg)
{
    struct login_job *j = arg;
    (void)uv_cancel((uv_req_t *)&j->req);
}

static void api_login(struct http_conn *c, struct http_req *r)
{
    struct api_loop *srv = A(c);
    /* Login CSRF: another site's page must not sign its visitor in as
     * someone else. Browsers send Origin with every POST. */
    if (r->origin && !origin_ok(srv, r)) {
        http_error(c, 403, "csrf",
                   "cross-site request refused (Origin not allowed)");
        return;
    }
    json_t *j = body_json(c, r);
    if (!j)
        return;
    const char *email = json_string_value(json_object_get(j, "email"));
    const char *pw = json_string_value(json_object_get(j, "password"));
    if (!email || !pw || !*email || strlen(email) > STORE_EMAIL_MAX ||
        strlen(pw) >= 1024) {
        json_decref(j);
        http_error(c, 400, "bad_request",
                   "email and password (strings) are required");
        return;
    }
    if (srv->shared->logins >= (unsigned)srv->cfg.login_queue) {
        json_decref(j);
        http_error_ex(c, 503, "Retry-After: 1\r\n", "busy",
                      "too many logins at once; try again");
        return;
    }
    struct login_job *job = xcalloc(1, sizeof *job);
    snprintf(job->ipkey, sizeof job->ipkey, "ip:%s", r->client);
    snprintf(job->emailkey, sizeof job->emailkey, "email:%s", email);
    for (char *p = job->emailkey; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    int64_t wait = login_reserve(srv, job->ipkey, job->emailkey);
    if (wait) {
        char hdr[64];
        snprintf(hdr, sizeof hdr, "Retry-After: %lld\r\n", (long long)wait);
        http_error_ex(c, 429, hdr, "rate_limited",
                      "too many failed logins; try again later");
        json_decref(j);
        free(job);
        return;
    }
    job->reserved_at = hub_now(srv->hub);
    job->deadline = hub_now(srv->hub) + srv->cfg.login_timeout_ms;
    job->https = r->https;
    snprintf(job->client, sizeof job->client, "%s", r->client);
    job->found = store_user_by_email(hub_store(srv->hub), email, &job->u) == 0;
    snprintf(job->password, sizeof job->password, "%s", pw);
    json_decref(j);
    job->c = c;
    /* argon2id takes tens of milliseconds: off the loop thread. */
    int rc = uv_queue_work(loop_uv(srv->lp), &job->req, login_work,
                           login_done);
    if (rc != 0) {
        log_error("login: cannot queue the password check: %s",
                  uv_strerror(rc));
        sodium_memzero(job->password, sizeof job->password);
        free(job);
        http_error(c, 503, "unavailable", "cannot check passwords now");
        return;
    }
    log_debug("%s: login for %s queued", r->client, job->emailkey + 6);
    conn_ref(c->c);
    /* Work queued for a peer that is gone is not worth doing; it is
     * called back cancelled unless it runs (UV_EBUSY: then it ends on
     * its own, and is called back too). */
    http_wait(c, cancel_login, job);
    srv->shared->logins++;
    list_insert_tail(&srv->logins, &job->link);
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

void api_stop(struct api_loop *a)
{
    struct list *pos, *tmp;
    list_each_safe(pos, tmp, &a->logins) {
        struct login_job *j = list_entry(pos, struct login_job, link);
        uv_cancel((uv_req_t *)&j->req); /* UV_EBUSY if running: it ends */
    }
}

static void api_logout(struct http_conn *c, struct http_req *r, struct who *w)
{
    struct api_loop *srv = A(c);
    if (!csrf_ok(c, r, w))
        return;
    if (w->session) {
        store_session_delete(hub_store(srv->hub), (int64_t)w->session);
        hub_end_session(srv->hub, w->org, w->user, w->session);
    }
    log_info("%s: logout %s/%s", r->client, w->org, w->user);
    struct buf b, hdr;
    buf_init(&b, 0);
    buf_init(&hdr, 0);
    buf_puts(&b, "{\"ok\":true}");
    cookie_header(srv, r->https, "", 0, &hdr);
    http_respond_json(c, 200, hdr.data, &b);
    buf_dispose(&b);
    buf_dispose(&hdr);
}

/* ---- the rest ----------------------------------------------------------- */

static void api_status(struct http_conn *c, struct http_req *r, struct who *w)
{
    if (!csrf_ok(c, r, w))
        return;
    json_t *j = body_json(c, r);
    if (!j)
        return;
    const char *s = json_string_value(json_object_get(j, "status"));
    enum presence_status st;
    if (!s || presence_status_parse(s, &st) != 0) {
        json_decref(j);
        http_error(c, 400, "invalid_status",
                   "status must be one of ONLINE, AWAY, BUSY, OFFLINE");
        return;
    }
    json_decref(j);
    if (!hub_status_allowed(A(c)->hub, w->org, w->user)) {
        http_error_ex(c, 429, "Retry-After: 1\r\n", "rate_limited",
                      "too many status changes; slow down");
        return;
    }
    if (hub_set_manual(A(c)->hub, w->org, w->user, st) != 0) {
        http_error(c, 400, "invalid_status", "status not allowed");
        return;
    }
    respond_member(c, w, w->user);
}

static void manual_cb(void *ud, const struct presence_member *m)
{
    *(int *)ud = m->manual;
}

/* The caller as a member, plus its manual status (null if none), which
 * only the caller may see: others see the effective status. */
static void api_me(struct http_conn *c, struct who *w)
{
    struct buf b;
    int manual = PRESENCE_UNSET;
    buf_init(&b, 0);
    if (presence_get(hub_presence(A(c)->hub), w->org, w->user, member_cb, &b) != 0) {
        buf_dispose(&b);
        http_error(c, 404, "not_found", "no such user");
        return;
    }
    presence_get(hub_presence(A(c)->hub), w->org, w->user, manual_cb, &manual);
    b.len--; /* the closing brace */
    buf_puts(&b, ",\"manual\":");
    if (manual == PRESENCE_UNSET)
        buf_puts(&b, "null");
    else
        msg_append_string(&b, presence_status_name(manual));
    buf_puts(&b, "}");
    http_respond_json(c, 200, NULL, &b);
    buf_dispose(&b);
}

static void api_presence(struct http_conn *c, struct who *w)
{
    struct api_loop *srv = A(c);
    struct buf b;
    buf_init(&b, 0);
    hub_sync_org(srv->hub, w->org);
    buf_puts(&b, "{\"org\":");
    msg_append_string(&b, w->org);
    buf_printf(&b, ",\"seq\":%llu,\"members\":[",
               (unsigned long long)presence_org_seq(hub_presence(srv->hub), w->org));
    presence_each(hub_presence(srv->hub), w->org, list_cb, &b);
    buf_puts(&b, "]}");
    http_respond_json(c, 200, NULL, &b);
    buf_dispose(&b);
}

static void api_cleanup(struct http_conn *c, struct http_req *r, const char *q,
                        size_t qlen)
{
    struct api_loop *srv = A(c);
    const char *a = r->authorization;
    if (!a || strncmp(a, "Admin ", 6) != 0 || strlen(a + 6) != 64 ||
        !auth_equal(a + 6, srv->shared->admin_key, 64)) {
        http_error(c, 401, "unauthorized", "admin key required");
        return;
    }
    char v[32];
    int64_t older = srv->cfg.stale_after_ms;
    if (q && query_get(q, qlen, "older_than_ms", v, sizeof v) > 0)
        older = strtoll(v, NULL, 10);
    if (older < 0) {
        http_error(c, 400, "bad_request", "older_than_ms must be >= 0");
        return;
    }
    int n = hub_sweep(srv->hub, older);
    struct buf b;
    buf_init(&b, 0);
    buf_printf(&b, "{\"reset\":%d}", n);
    http_respond_json(c, 200, NULL, &b);
    buf_dispose(&b);
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

struct member_ctx {
    struct api_loop *srv;
    const char *org;
    struct buf *b;
};

static void group_member_cb(void *ud, const char *user)
{
    struct member_ctx *m = ud;
    struct buf *b = m->b;
    size_t before = b->len;
    if (b->data[b->len - 1] != '[')
        buf_puts(b, ",");
    if (presence_get(hub_presence(m->srv->hub), m->org, user, public_cb, b) != 0) {
        /* A member the server has not loaded (added by the CLI since it
         * started): shown as stored, OFFLINE until it connects. */
        b->len = before;
        b->data[b->len] = '\0';
        if (hub_ensure_user(m->srv->hub, m->org, user, NULL) == 0) {
            if (b->data[b->len - 1] != '[')
                buf_puts(b, ",");
            presence_get(hub_presence(m->srv->hub), m->org, user, public_cb, b);
        }
    }
}

/* {"id":..,"name":..,"members":[member...]} of one channel or project;
 * -1 (nothing written) if it is not in org. */
static int encode_group(struct api_loop *srv, const char *org, const char *id,
                        int project, struct buf *b)
{
    char name[STORE_NAME_MAX + 1];
    struct buf members;
    buf_init(&members, 0);
    buf_puts(&members, "[");
    struct member_ctx m = {srv, org, &members};
    int rc = project ? store_project_members(hub_store(srv->hub), org, id, name,
                                             group_member_cb, &m)
                     : store_channel_members(hub_store(srv->hub), org, id, name,
                                             group_member_cb, &m);
    if (rc == 0) {
        buf_puts(&members, "]");
        buf_puts(b, "{\"id\":");
        msg_append_string(b, id);
        buf_puts(b, ",\"name\":");
        msg_append_string(b, name);
        buf_puts(b, ",\"members\":");
        buf_append(b, members.data, members.len);
        buf_puts(b, "}");
    }
    buf_dispose(&members);
    return rc == 0 ? 0 : -1;
}

static void api_groups(struct http_conn *c, struct who *w, int project,
                       const char *id)
{
    struct api_loop *srv = A(c);
    struct buf b;
    buf_init(&b, 0);
    if (id) {
        if (encode_group(srv, w->org, id, project, &b) != 0)
            http_error(c, 404, "not_found",
                       project ? "no such project" : "no such channel");
        else
            http_respond_json(c, 200, NULL, &b);
        buf_dispose(&b);
        return;
    }
    struct group_list l = {0};
    int rc = project ? store_project_each(hub_store(srv->hub), w->org, group_cb, &l)
                     : store_channel_each(hub_store(srv->hub), w->org, group_cb, &l);
    if (rc != 0) {
        free(l.v);
        buf_dispose(&b);
        http_error(c, 500, "internal", "could not read the database");
        return;
    }
    buf_puts(&b, project ? "{\"projects\":[" : "{\"channels\":[");
    for (size_t i = 0; i < l.n; i++) {
        if (i)
            buf_puts(&b, ",");
        encode_group(srv, w->org, l.v[i].id, project, &b);
    }
    buf_puts(&b, "]}");
    free(l.v);
    http_respond_json(c, 200, NULL, &b);
    buf_dispose(&b);
}

/* ---- pages ---------------------------------------------------------- */

/* Pages are static shells that load their data from the API, so user
 * text only ever reaches the DOM as text (textContent), never as HTML. */
#define PAGE_HEADERS                                                      \
    "Content-Security-Policy: default-src 'self'; script-src 'self'; "    \
    "style-src 'self'; img-src 'self' data:; connect-src 'self'; "        \
    "worker-src 'self'; frame-ancestors 'none'; base-uri 'none'; "        \
    "form-action 'self'\r\n"                                            \
    "X-Frame-Options: DENY\r\n"                                          \
    "Referrer-Policy: same-origin\r\n"

/* Files are revalidated on each use (no-cache) and answered 304 while
 * the browser's copy is current: pages change with each build. */
static void serve_asset(struct http_conn *c, struct http_req *r,
                        const struct asset *a)
{
    char hdr[1024];
    snprintf(hdr, sizeof hdr, PAGE_HEADERS "Cache-Control: no-cache\r\n"
             "ETag: %s\r\n", a->etag);
    if (r->if_none_match && strcmp(r->if_none_match, a->etag) == 0)
        http_respond(c, 304, hdr, a->type, "", 0);
    else
        http_respond(c, 200, hdr, a->type, (const char *)a->data, a->len);
}

static int prefix_id(const char *path, size_t plen, const char *prefix)
{
    size_t n = strlen(prefix);
    return plen > n && memcmp(path, prefix, n) == 0 &&
           !memchr(path + n, '/', plen - n);
}

/* Maps a page route to its shell; NULL if path is no page. */
static const char *page_for(const char *path, size_t plen)
{
    static const struct {
        const char *route, *file;
    } exact[] = {
        {"/", "/index.html"},       {"/login", "/login.html"},
        {"/channels", "/channels.html"}, {"/members", "/members.html"},
    };
    for (size_t i = 0; i < ARRAY_LEN(exact); i++)
        if (strlen(exact[i].route) == plen &&
            memcmp(exact[i].route, path, plen) == 0)
            return exact[i].file;
    if (prefix_id(path, plen, "/channels/"))
        return "/channel.html";
    if (prefix_id(path, plen, "/users/"))
        return "/user.html";
    if (prefix_id(path, plen, "/projects/"))
        return "/project.html";
    return NULL;
}

static int try_page(struct http_conn *c, struct http_req *r, const char *path,
                    size_t plen)
{
    if (plen > 8 && memcmp(path, "/static/", 8) == 0) {
        const struct asset *a = assets_find(path, plen);
        if (!a)
            http_error(c, 404, "not_found", "no such file");
        else
            serve_asset(c, r, a);
        return 1;
    }
    const char *file = page_for(path, plen);
    if (!file)
        return 0;
    if (r->method != HTTP_GET && r->method != HTTP_HEAD) {
        http_error(c, 405, "method_not_allowed", "use GET");
        return 1;
    }
    struct who w;
    const char *why;
    if (strcmp(file, "/login.html") != 0 &&
        check_cookie(A(c), r, &w, &why) != 0) {
        /* next= (path and query, percent-encoded) brings the visitor back
         * here after signing in; login.js goes there only if same-origin. */
        static const char keep[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "abcdefghijklmnopqrstuvwxyz0123456789/-._~";
        const char *end = r->url.data + r->url.len;
        const char *hash = memchr(path, '#', (size_t)(end - path));
        end = hash ? hash : end;
        struct buf loc;
        buf_init(&loc, 0);
        buf_puts(&loc, "Location: /login");
        for (const char *s = path; end - path > 1 && s < end; s++) {
            if (s == path)
                buf_puts(&loc, "?next=");
            if (*s && strchr(keep, *s))
                buf_append(&loc, s, 1);
            else
                buf_printf(&loc, "%%%02X", (unsigned char)*s);
        }
        buf_puts(&loc, "\r\n");
        http_respond(c, 302, loc.data, "text/plain", "", 0);
        buf_dispose(&loc);
        return 1;
    }
    const struct asset *a = assets_find(file, strlen(file));
    if (!a)
        http_error(c, 404, "not_found", "page not built");
    else
        serve_asset(c, r, a);
    return 1;
}

static int is(const struct http_req *r, int method, const char *path,
              size_t plen, const char *want)
{
    return strlen(want) == plen && memcmp(path, want, plen) == 0 &&
           (method < 0 || r->method == method);
}

static void route(struct http_conn *c, struct http_req *r);

/* /ws/echo: the connection's memory is its ws_conn alone. */
static void echo_free(struct ws_conn *w) { free(w); }
static const struct ws_callbacks echo_callbacks = {.on_free = echo_free};

void api_handle(struct http_conn *c, struct http_req *r)
{
    /* Outside the lock: the signature of a WebSocket upgrade's token. */
    struct api_loop *lp = A(c);
    struct prejwt p = {0};
    char tok[JWT_MAX_LEN + 1];
    const char *qs = r->url.data ? memchr(r->url.data, '?', r->url.len) : NULL;
    if (r->url.len >= 12 && !memcmp(r->url.data, "/ws/presence", 12)) {
        const char *b = bearer(r);
        if (qs && query_get(qs + 1, r->url.len - (size_t)(qs + 1 - r->url.data),
                            "token", tok, sizeof tok) >= 0)
            p.tok = tok;
        else if (b)
            p.tok = b;
        if (p.tok)
            p.rc = jwt_verify(p.tok, strlen(p.tok), lp->secret,
                              lp->secret_len, loop_now(lp->lp) / 1000, &p.cl);
    }
    /* Where it comes from: the peer, or the client a trusted proxy
     * names (docs/security.md trusted_proxies). */
    auth_client_addr(c->peer, r->forwarded_for, r->real_ip,
                     lp->cfg.trusted_proxies, r->client, sizeof r->client);
    r->https = r->forwarded_proto && lp->cfg.trusted_proxies[0] &&
               strcasecmp(r->forwarded_proto, "https") == 0 &&
               auth_addr_listed(lp->cfg.trusted_proxies, c->peer);
    hub_lock(A(c)->hub);
    pre = &p;
    route(c, r);
    pre = NULL;
    hub_unlock(A(c)->hub);
}

static void route(struct http_conn *c, struct http_req *r)
{
    struct api_loop *srv = A(c);
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (!r->url.len ||
        http_parser_parse_url(r->url.data, r->url.len, 0, &u) != 0 ||
        !(u.field_set & (1 << UF_PATH))) {
        http_error(c, 400, "bad_request", "bad request target");
        return;
    }
    const char *path = r->url.data + u.field_data[UF_PATH].off;
    size_t plen = u.field_data[UF_PATH].len;
    const char *q = NULL;
    size_t qlen = 0;
    if (u.field_set & (1 << UF_QUERY)) {
        q = r->url.data + u.field_data[UF_QUERY].off;
        qlen = u.field_data[UF_QUERY].len;
    }
    struct who w;

    if (is(r, -1, path, plen, "/ws/presence/") ||
        is(r, -1, path, plen, "/ws/presence")) {
        if (ws_upgrade_check(c, r) != 0)
            return;
        int idle = ws_auto(q, qlen);
        if (idle < 0) {
            http_error(c, 400, "bad_request",
                       "auto must be ONLINE, AWAY or OFFLINE");
            return;
        }
        /* A cookie carries ambient authority: a page of another site
         * must not open a socket as the user (cross-site WebSocket
         * hijacking). Tokens are never ambient, so need no check. */
        char tok[JWT_MAX_LEN + 1];
        int by_token = bearer(r) ||
                       (q && query_get(q, qlen, "token", tok, sizeof tok) >= 0);
        if (!by_token && r->cookie && !origin_ok(srv, r)) {
            http_error(c, 403, "forbidden_origin",
                       "Origin not allowed for cookie authentication");
            return;
        }
        if (authenticate(c, r, q, qlen, &w) != 0)
            return;
        unsigned n = 0;
        presence_get(hub_presence(srv->hub), w.org, w.user, count_conns, &n);
        if (n >= (unsigned)srv->cfg.max_conns_per_user) {
            http_error(c, 429, "too_many_connections",
                       "too many open connections for this user");
            return;
        }
        char sub[4];
        struct hub_who who = {
            .org = w.org, .user = w.user, .session = w.session,
            .idle_at_connect = idle,
            .subscriber = q && query_get(q, qlen, "subscribe", sub,
                                         sizeof sub) > 0 &&
                          strcmp(sub, "0") != 0,
        };
        hub_accept(srv->hub, c, r, &who);
        return;
    }
    if (is(r, -1, path, plen, "/ws/echo") && srv->cfg.echo_endpoint) {
        if (ws_upgrade_check(c, r) == 0) {
            struct ws_conn *e = xcalloc(1, sizeof *e);
            if (ws_accept(e, c, r, &echo_callbacks, (size_t)srv->cfg.max_msg,
                          1) != 0)
                free(e);
        }
        return;
    }
    if (plen >= 4 && memcmp(path, "/ws/", 4) == 0) {
        http_error(c, 404, "not_found", "no such endpoint");
        return;
    }
    if (is(r, -1, path, plen, "/healthz")) {
        struct buf b;
        buf_init(&b, 0);
        /* WebSocket connections per event loop (the kernel spreads new
         * connections over the loops' listeners). */
        struct api_loop *srv = A(c);
        buf_puts(&b, "{\"status\":\"ok\",\"loops\":[");
        for (unsigned i = 0; i < hub_nloops(srv->hub); i++)
            buf_printf(&b, "%s%u", i ? "," : "", hub_nconns(srv->hub, i));
        buf_puts(&b, "]}");
        http_respond_json(c, 200, NULL, &b);
        buf_dispose(&b);
        return;
    }
    if (is(r, -1, path, plen, "/api/login")) {
        if (r->method != HTTP_POST)
            http_error(c, 405, "method_not_allowed", "use POST");
        else
            api_login(c, r);
        return;
    }
    if (is(r, -1, path, plen, "/api/admin/cleanup-stale")) {
        if (r->method != HTTP_POST)
            http_error(c, 405, "method_not_allowed", "use POST");
        else
            api_cleanup(c, r, q, qlen);
        return;
    }
    if (try_page(c, r, path, plen))
        return;
    if (plen < 5 || memcmp(path, "/api/", 5) != 0) {
        http_error(c, 404, "not_found", "no such page");
        return;
    }
    /* Everything below needs a caller. */
    if (authenticate(c, r, NULL, 0, &w) != 0)
        return;
    if (is(r, -1, path, plen, "/api/logout")) {
        if (r->method != HTTP_POST)
            http_error(c, 405, "method_not_allowed", "use POST");
        else
            api_logout(c, r, &w);
    } else if (is(r, -1, path, plen, "/api/status")) {
        if (r->method != HTTP_PUT)
            http_error(c, 405, "method_not_allowed", "use PUT");
        else
            api_status(c, r, &w);
    } else if (r->method != HTTP_GET && r->method != HTTP_HEAD &&
               !is(r, -1, path, plen, "/api/logout") &&
               !is(r, -1, path, plen, "/api/status")) {
        /* Everything else under /api/ is read-only. */
        http_error(c, 405, "method_not_allowed", "use GET");
    } else if (is(r, -1, path, plen, "/api/me")) {
        api_me(c, &w);
    } else if (is(r, -1, path, plen, "/api/presence")) {
        api_presence(c, &w);
    } else if (is(r, -1, path, plen, "/api/channels")) {
        api_groups(c, &w, 0, NULL);
    } else if (is(r, -1, path, plen, "/api/projects")) {
        api_groups(c, &w, 1, NULL);
    } else if (prefix_id(path, plen, "/api/channels/") ||
               prefix_id(path, plen, "/api/projects/")) {
        int project = path[5] == 'p';
        char id[STORE_ID_MAX + 1];
        /* "/api/channels/" and "/api/projects/" are both 14 bytes. */
        if (decode(path + 14, path + plen, 0, id, sizeof id) <= 0)
            http_error(c, 404, "not_found", "no such channel or project");
        else
            api_groups(c, &w, project, id);
    } else if (plen > 11 && memcmp(path, "/api/users/", 11) == 0) {
        char id[STORE_ID_MAX + 1];
        if (decode(path + 11, path + plen, 0, id, sizeof id) <= 0)
            http_error(c, 404, "not_found", "no such user");
        else
            respond_member(c, &w, id);
    } else {
        http_error(c, 404, "not_found", "no such endpoint");
    }
}

int api_init(void)
{
    return auth_password_hash("not a password of anyone", dummy_hash);
}
