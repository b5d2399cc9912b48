/* login.c - POST /api/login and POST /api/logout (docs/security.md).
 *
 * A login's password check (argon2id, tens of milliseconds) runs on
 * libuv's thread pool: the handler defers its request (api_req_defer())
 * into a struct login_job, and login_done() answers it back on the loop. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api_int.h"
#include "auth/auth.h"
#include "presence/msg.h"
#include "presence/presence.h"
#include "util/log.h"
#include "util/rate.h"
#include "util/xalloc.h"

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

/* One login on the thread pool. It owns its deferred request q (freed
 * in login_done()); the conn's work points at req while it is queued. */
struct login_job {
    uv_work_t req;
    struct api_req *q;
    struct list link;           /* in loop.logins */
    struct store_user u;
    int found;
    enum login_result result;
    int64_t reserved_at;        /* when login_reserve() counted it */
    int64_t deadline;           /* check it only before this */
    char password[1024];
    char ipkey[64], emailkey[STORE_EMAIL_MAX + 8];
};

/* A hash to verify against when the email is unknown, so that the answer
 * takes as long either way and does not reveal which emails exist. */
static char dummy_hash[AUTH_HASH_MAX];

int api_init(void)
{
    return auth_password_hash("not a password of anyone", dummy_hash);
}

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
    hub_revoke_session(j->q->srv->hub, j->u.org, j->u.id, (uint64_t)id);
}

static void fields_cb(void *ud, const struct presence_member *m)
{
    msg_member_self_fields(ud, m);
}

static void login_ok(struct login_job *j)
{
    struct api_req *q = j->q;
    struct api_loop *srv = q->srv;
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
        http_error(q->c, 500, "internal", "could not create a session");
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
        http_error(q->c, 500, "internal", "could not sign a token");
        return;
    }
    /* The member as /api/me shows it, plus org and email. */
    struct buf b, hdr;
    buf_init(&b, 0);
    buf_init(&hdr, 0);
    buf_puts(&b, "{\"user\":{\"org\":");
    msg_append_string(&b, j->u.org);
    buf_puts(&b, ",\"email\":");
    msg_append_string(&b, j->u.email);
    buf_puts(&b, ",");
    if (presence_get(hub_presence(srv->hub), j->u.org, j->u.id, fields_cb, &b) != 0) {
        buf_dispose(&b);
        http_error(q->c, 500, "internal", "could not create a session");
        return;
    }
    buf_printf(&b, "},\"token\":\"%s\",\"expires\":%lld}", jwt,
               (long long)expires);
    web_set_cookie(&hdr, tok, srv->cfg.session_ttl_ms / 1000, q->https,
                   srv->cfg.secure_cookies);
    log_info("%s: login %s/%s", q->client, j->u.org, j->u.id);
    http_respond_json(q->c, 200, hdr.data, &b);
    buf_dispose(&b);
    buf_dispose(&hdr);
}

static void login_done(uv_work_t *req, int status)
{
    struct login_job *j = container_of(req, struct login_job, req);
    struct api_req *q = j->q;
    struct http_conn *c = q->c;
    struct api_loop *srv = q->srv;
    loop_now(srv->lp);
    hub_lock(srv->hub);
    srv->shared->logins--;
    list_remove(&j->link);
    http_wait(c, NULL, NULL);
    if (!api_req_live(q)) {
        /* The client reset the connection: the attempt still counts (it
         * was reserved), but nothing is answered. */
        log_info("%s: login for %s abandoned %s its check", q->client,
                 j->emailkey + 6,
                 status == UV_ECANCELED ? "before" : "after");
    } else if (status == UV_ECANCELED) {
        http_error(c, 503, "unavailable", "the server is shutting down");
    } else if (j->result == LOGIN_LATE) {
        log_warn("%s: login for %s not checked in time", q->client,
                 j->emailkey + 6);
        http_error_ex(c, 503, "Retry-After: 1\r\n", "busy",
                      "too many logins at once; try again");
    } else if (j->result == LOGIN_FAILED) {
        log_info("%s: failed login for %s", q->client, j->emailkey + 6);
        http_error(c, 401, "invalid_credentials", "wrong email or password");
    } else {
        login_ok(j);
    }
    hub_unlock(srv->hub);
    api_req_free(q);
    free(j);
}

static void cancel_login(void *arg)
{
    struct login_job *j = arg;
    (void)uv_cancel((uv_req_t *)&j->req);
}

void api_login(struct api_req *q)
{
    struct api_loop *srv = q->srv;
    if (!web_login_ok(&q->web, srv->cfg.allowed_origins)) {
        http_error(q->c, 403, "csrf",
                   "cross-site request refused (Origin not allowed)");
        return;
    }
    json_t *j = api_body_json(q);
    if (!j)
        return;
    const char *email = json_string_value(json_object_get(j, "email"));
    const char *pw = json_string_value(json_object_get(j, "password"));
    if (!email || !pw || !*email || strlen(email) > STORE_EMAIL_MAX ||
        strlen(pw) >= 1024) {
        json_decref(j);
        http_error(q->c, 400, "bad_request",
                   "email and password (strings) are required");
        return;
    }
    if (srv->shared->logins >= (unsigned)srv->cfg.login_queue) {
        json_decref(j);
        http_error_ex(q->c, 503, "Retry-After: 1\r\n", "busy",
                      "too many logins at once; try again");
        return;
    }
    struct login_job *job = xcalloc(1, sizeof *job);
    snprintf(job->ipkey, sizeof job->ipkey, "ip:%s", q->client);
    snprintf(job->emailkey, sizeof job->emailkey, "email:%s", email);
    for (char *p = job->emailkey; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    int64_t wait = login_reserve(srv, job->ipkey, job->emailkey);
    if (wait) {
        char hdr[64];
        snprintf(hdr, sizeof hdr, "Retry-After: %lld\r\n", (long long)wait);
        http_error_ex(q->c, 429, hdr, "rate_limited",
                      "too many failed logins; try again later");
        json_decref(j);
        free(job);
        return;
    }
    job->reserved_at = hub_now(srv->hub);
    job->deadline = hub_now(srv->hub) + srv->cfg.login_timeout_ms;
    job->found = store_user_by_email(hub_store(srv->hub), email, &job->u) == 0;
    snprintf(job->password, sizeof job->password, "%s", pw);
    json_decref(j);
    job->q = api_req_defer(q);
    /* argon2id takes tens of milliseconds: off the loop thread. */
    int rc = uv_queue_work(loop_uv(srv->lp), &job->req, login_work,
                           login_done);
    if (rc != 0) {
        log_error("login: cannot queue the password check: %s",
                  uv_strerror(rc));
        sodium_memzero(job->password, sizeof job->password);
        api_req_free(job->q);
        free(job);
        http_error(q->c, 503, "unavailable", "cannot check passwords now");
        return;
    }
    log_debug("%s: login for %s queued", q->client, job->emailkey + 6);
    /* Work queued for a peer that is gone is not worth doing; it is
     * called back cancelled unless it runs (UV_EBUSY: then it ends on
     * its own, and is called back too). */
    http_wait(q->c, cancel_login, job);
    srv->shared->logins++;
    list_insert_tail(&srv->logins, &job->link);
}

void api_stop(struct api_loop *a)
{
    struct list *pos, *tmp;
    list_each_safe(pos, tmp, &a->logins) {
        struct login_job *j = list_entry(pos, struct login_job, link);
        uv_cancel((uv_req_t *)&j->req); /* UV_EBUSY if running: it ends */
    }
}

void api_logout(struct api_req *q)
{
    struct api_loop *srv = q->srv;
    const struct api_who *w = &q->who;
    if (w->session) {
        store_session_delete(hub_store(srv->hub), (int64_t)w->session);
        hub_end_session(srv->hub, w->org, w->user, w->session);
    }
    log_info("%s: logout %s/%s", q->client, w->org, w->user);
    struct buf hdr;
    buf_init(&hdr, 0);
    web_set_cookie(&hdr, "", 0, q->https, srv->cfg.secure_cookies);
    api_respond_pack(q, 200, hdr.data, "{s:b}", "ok", 1);
    buf_dispose(&hdr);
}
