/* login.c - POST /api/login and POST /api/logout (docs/security.md).
 *
 * A login takes three steps and none on the loop but their completions:
 * the user is read on the store thread (lookup_done()), the password
 * checked on libuv's thread pool (argon2id, tens of milliseconds;
 * login_done() answers a failure), the session written on the store
 * thread (session_done() answers). The handler defers its request
 * (api_req_defer()) into a struct login_job that carries it through. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api_int.h"
#include "auth/auth.h"
#include "auth/sessions.h"
#include "store/queue.h"
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

/* Gives back what login_reserve() counted: for a check that succeeded,
 * and for one that never ran because the database could not be asked
 * (the user's fault neither way: a database outage must not lock
 * everyone out for a login_window). */
static void login_release(struct api_loop *srv, const char *ipkey,
                          const char *emailkey, int64_t reserved_at)
{
    rate_sub(hub_rates(srv->hub), ipkey, reserved_at, hub_now(srv->hub));
    rate_sub(hub_rates(srv->hub), emailkey, reserved_at, hub_now(srv->hub));
}

enum login_result {
    LOGIN_FAILED,
    LOGIN_OK,
    LOGIN_LATE,     /* waited past login_timeout: not checked */
};

/* One login, from its request to its answer: the user is looked up on
 * the store thread, the password checked on the thread pool, the session
 * written on the store thread again, and each step comes back to the
 * loop. It owns its deferred request q (freed in finish()). */
struct login_job {
    uv_work_t req;
    struct api_req *q;
    struct list link;           /* in api_loop.logins */
    int in_pool;                /* req is queued on the thread pool */
    int looking_up;             /* the user is being read (store thread) */
    int told;                   /* answered 503 at shutdown (api_stop) */
    int lookup_rc;              /* store_user_by_email() */
    struct store_user u;
    int found;
    enum login_result result;
    int64_t reserved_at;        /* when login_reserve() counted it */
    int64_t deadline;           /* check it only before this */
    char email[STORE_EMAIL_MAX + 1];
    char password[1024];
    char ipkey[64], emailkey[STORE_EMAIL_MAX + 8];
    /* The new session (login_ok()). */
    char token[AUTH_TOKEN_LEN + 1];
    unsigned char hash[32];
    int64_t expires, sid;
    int64_t max_sessions;
    int64_t *trimmed;           /* sessions past max_sessions, deleted */
    size_t ntrimmed, captrimmed;
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

/* Lock held: the login is over, answered or not. */
static void finish(struct login_job *j)
{
    j->q->srv->shared->logins--;
    list_remove(&j->link);
    http_wait(j->q->c, NULL, NULL);
    api_req_free(j->q);
    sodium_memzero(j->password, sizeof j->password);
    sodium_memzero(j->token, sizeof j->token);
    free(j->trimmed);
    free(j);
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

static void fields_cb(void *ud, const struct presence_member *m)
{
    msg_member_self_fields(ud, m);
}

/* ---- the session, on the store thread --------------------------------- */

static void trimmed_cb(void *ud, int64_t id)
{
    struct login_job *j = ud;
    if (j->ntrimmed == j->captrimmed) {
        j->captrimmed = j->captrimmed ? 2 * j->captrimmed : 8;
        j->trimmed = xrealloc(j->trimmed,
                              j->captrimmed * sizeof *j->trimmed);
    }
    j->trimmed[j->ntrimmed++] = id;
}

static int session_run(struct store *s, void *ud)
{
    struct login_job *j = ud;
    /* Run again if the database was held: nothing of a failed try
     * stays (one transaction). */
    j->ntrimmed = 0;
    int rc = store_begin(s);
    if (rc == 0)
        rc = store_session_add(s, j->hash, j->u.org, j->u.id, j->expires,
                               &j->sid);
    /* docs/security.md max_sessions: the oldest sessions past the cap are
     * revoked, their sockets closed. */
    if (rc == 0 && store_session_trim(s, j->u.org, j->u.id,
                                      (int)j->max_sessions, clock_ms(),
                                      trimmed_cb, j) < 0)
        rc = STORE_EIO;
    if (rc == 0)
        rc = store_commit(s);
    if (rc != 0)
        store_rollback(s);
    return rc;
}

static void session_told(void *arg);

/* Back on the loop with the session written: into the table in memory,
 * and the answer. */
static void session_done(void *ud, int rc)
{
    struct login_job *j = ud;
    struct api_req *q = j->q;
    struct api_loop *srv = q->srv;
    loop_now(srv->lp);
    hub_lock(srv->hub);
    if (rc != 0) {
        log_error("login of %s/%s: could not store the session: %s",
                  j->u.org, j->u.id, store_strerror(rc));
        if (api_req_live(q))
            api_store_error(q, rc, "create a session");
        finish(j);
        hub_unlock(srv->hub);
        return;
    }
    struct sessions *t = srv->shared->sessions;
    if (sessions_add(t, j->sid, j->hash, j->u.org, j->u.id, j->expires) !=
        0)
        log_error("login of %s/%s: session %lld twice", j->u.org, j->u.id,
                  (long long)j->sid);
    for (size_t i = 0; i < j->ntrimmed; i++) {
        sessions_delete(t, j->trimmed[i]);
        hub_session_changed(srv->hub, 0, j->trimmed[i], NULL, j->u.org,
                            j->u.id, 0);
        hub_revoke_session(srv->hub, j->u.org, j->u.id,
                           (uint64_t)j->trimmed[i]);
    }
    /* In a cluster the answer waits until Redis has handed the session
     * to the other nodes, so that its cookie works on whichever node the
     * next request reaches. */
    hub_session_changed_then(srv->hub, j->sid, j->hash, j->u.org, j->u.id,
                             j->expires, session_told, j);
    hub_unlock(srv->hub);
}

/* Lock held, on the login's loop: the session is known everywhere. */
static void session_told(void *arg)
{
    struct login_job *j = arg;
    struct api_req *q = j->q;
    struct api_loop *srv = q->srv;
    hub_lock(srv->hub);
    if (hub_ensure_user(srv->hub, j->u.org, j->u.id, NULL) != 0) {
        if (api_req_live(q))
            http_error(q->c, 500, "internal", "could not create a session");
        finish(j);
        hub_unlock(srv->hub);
        return;
    }
    presence_login(hub_presence(srv->hub), j->u.org, j->u.id,
                   hub_now(srv->hub));
    if (!api_req_live(q)) {
        finish(j);
        hub_unlock(srv->hub);
        return;
    }
    struct jwt_claims cl = {.exp = j->expires / 1000, .sid = j->sid};
    snprintf(cl.sub, sizeof cl.sub, "%s", j->u.id);
    snprintf(cl.org, sizeof cl.org, "%s", j->u.org);
    snprintf(cl.name, sizeof cl.name, "%s", j->u.name);
    char jwt[JWT_MAX_LEN];
    if (jwt_sign(&cl, srv->secret, srv->secret_len, jwt, sizeof jwt) < 0) {
        http_error(q->c, 500, "internal", "could not sign a token");
        finish(j);
        hub_unlock(srv->hub);
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
    if (hub_get_self(srv->hub, j->u.org, j->u.id, fields_cb, &b) != 0) {
        http_error(q->c, 500, "internal", "could not create a session");
    } else {
        buf_printf(&b, "},\"token\":\"%s\",\"expires\":%lld}", jwt,
                   (long long)j->expires);
        web_set_cookie(&hdr, j->token, srv->cfg.session_ttl_ms / 1000,
                       q->https, srv->cfg.secure_cookies);
        log_info("%s: login %s/%s", q->client, j->u.org, j->u.id);
        http_respond_json(q->c, 200, hdr.data, &b);
    }
    buf_dispose(&b);
    buf_dispose(&hdr);
    finish(j);
    hub_unlock(srv->hub);
}

/* Lock held: the password is right. */
static void login_ok(struct login_job *j)
{
    struct api_loop *srv = j->q->srv;
    login_release(srv, j->ipkey, j->emailkey, j->reserved_at);
    /* A new random session id at every login: a token planted before the
     * login (session fixation) is never promoted. */
    auth_token_new(j->token);
    auth_token_hash(j->token, strlen(j->token), j->hash);
    j->expires = hub_now(srv->hub) + srv->cfg.session_ttl_ms;
    j->max_sessions = srv->cfg.max_sessions;
    /* Written before it is answered: a session we told about must
     * survive a restart. Retried while another process holds the
     * database. */
    int rc = hub_submit(srv->hub, session_run, session_done, j,
                        STOREQ_RETRY);
    if (rc != 0) {
        http_error_ex(j->q->c, 503, "Retry-After: 1\r\n", "busy",
                      "the database is busy; try again");
        finish(j);
    }
}

static void login_done(uv_work_t *req, int status)
{
    struct login_job *j = container_of(req, struct login_job, req);
    struct api_req *q = j->q;
    struct http_conn *c = q->c;
    struct api_loop *srv = q->srv;
    loop_now(srv->lp);
    hub_lock(srv->hub);
    j->in_pool = 0;
    if (j->told) {
        /* Answered by api_stop(): nothing more to say. */
    } else if (!api_req_live(q)) {
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
        /* Counted on every node of a cluster too (login_limit is
         * cluster-wide). */
        hub_login_failed(srv->hub, j->ipkey, j->emailkey);
        http_error(c, 401, "invalid_credentials", "wrong email or password");
    } else {
        login_ok(j); /* answers or finishes later */
        hub_unlock(srv->hub);
        return;
    }
    finish(j);
    hub_unlock(srv->hub);
}

/* ---- the user, on the store thread ------------------------------------ */

static int lookup_run(struct store *s, void *ud)
{
    struct login_job *j = ud;
    j->lookup_rc = store_user_by_email(s, j->email, &j->u);
    j->found = j->lookup_rc == 0;
    return j->lookup_rc == STORE_ENOENT ? 0 : j->lookup_rc;
}

/* Back on the loop: the password check goes to the thread pool, unless
 * the client left meanwhile (then it is not worth doing). */
static void lookup_done(void *ud, int rc)
{
    struct login_job *j = ud;
    struct api_req *q = j->q;
    struct api_loop *srv = q->srv;
    loop_now(srv->lp);
    hub_lock(srv->hub);
    j->looking_up = 0;
    if (j->told) {
        finish(j);
    } else if (!api_req_live(q)) {
        log_info("%s: login for %s abandoned before its check", q->client,
                 j->emailkey + 6);
        finish(j);
    } else if (rc != 0) {
        login_release(srv, j->ipkey, j->emailkey, j->reserved_at);
        api_store_error(q, rc, "read the database");
        finish(j);
    } else {
        /* argon2id takes tens of milliseconds: off the loop thread. */
        int r = uv_queue_work(loop_uv(srv->lp), &j->req, login_work,
                              login_done);
        if (r != 0) {
            log_error("login: cannot queue the password check: %s",
                      uv_strerror(r));
            http_error(q->c, 503, "unavailable",
                       "cannot check passwords now");
            finish(j);
        } else {
            j->in_pool = 1;
        }
    }
    hub_unlock(srv->hub);
}

/* The client left: work queued for it is not worth doing; it is called
 * back cancelled unless it runs (UV_EBUSY: then it ends on its own, and
 * is called back too). A step on the store thread ends on its own. */
static void cancel_login(void *arg)
{
    struct login_job *j = arg;
    if (j->in_pool)
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
    snprintf(job->email, sizeof job->email, "%s", email);
    snprintf(job->password, sizeof job->password, "%s", pw);
    json_decref(j);
    job->looking_up = 1;
    if (hub_submit(srv->hub, lookup_run, lookup_done, job, STOREQ_READ) != 0) {
        login_release(srv, job->ipkey, job->emailkey, job->reserved_at);
        sodium_memzero(job->password, sizeof job->password);
        free(job);
        http_error_ex(q->c, 503, "Retry-After: 1\r\n", "busy",
                      "the database is busy; try again");
        return;
    }
    job->q = api_req_defer(q);
    log_debug("%s: login for %s queued", q->client, job->emailkey + 6);
    http_wait(q->c, cancel_login, job);
    srv->shared->logins++;
    list_insert_tail(&srv->logins, &job->link);
}

void api_stop(struct api_loop *a)
{
    struct list *pos, *tmp;
    list_each_safe(pos, tmp, &a->logins) {
        struct login_job *j = list_entry(pos, struct login_job, link);
        /* Answered now, not when the cancelled work or the store thread
         * comes back: that may be after the loop has closed the
         * connection (STOP_DELAY_MS), and the 503 would be lost. A check
         * already running (UV_EBUSY) ends and is answered as usual. */
        int now = j->in_pool ? uv_cancel((uv_req_t *)&j->req) == 0
                             : j->looking_up;
        if (now && api_req_live(j->q)) {
            http_error(j->q->c, 503, "unavailable",
                       "the server is shutting down");
            j->told = 1;
        }
    }
}

/* A session's row, deleted on the store thread (retried while another
 * process holds the database; the table in memory forgot it already). */
static int session_delete_run(struct store *s, void *ud)
{
    int rc = store_session_delete(s, *(int64_t *)ud);
    return rc == STORE_ENOENT ? 0 : rc;
}

static void session_delete_done(void *ud, int rc)
{
    if (rc != 0)
        log_error("could not delete session %lld: %s",
                  (long long)*(int64_t *)ud, store_strerror(rc));
    free(ud);
}

void api_logout(struct api_req *q)
{
    struct api_loop *srv = q->srv;
    const struct api_who *w = &q->who;
    if (w->session) {
        int64_t *id = xmalloc(sizeof *id);
        *id = (int64_t)w->session;
        sessions_delete(srv->shared->sessions, *id);
        /* Not a revoke on the others: the kick of hub_end_session() below
         * closes the session's sockets there as a logout. */
        hub_session_changed(srv->hub, 0, *id, NULL, NULL, NULL, 0);
        if (hub_submit(srv->hub, session_delete_run, session_delete_done, id,
                       STOREQ_RETRY | STOREQ_DURABLE) != 0) {
            log_error("could not delete session %lld: the store queue is "
                      "full", (long long)*id);
            free(id);
        }
        hub_end_session(srv->hub, w->org, w->user, w->session);
    }
    log_info("%s: logout %s/%s", q->client, w->org, w->user);
    struct buf hdr;
    buf_init(&hdr, 0);
    web_set_cookie(&hdr, "", 0, q->https, srv->cfg.secure_cookies);
    api_respond_pack(q, 200, hdr.data, "{s:b}", "ok", 1);
    buf_dispose(&hdr);
}

/* ---- the table of sessions -------------------------------------------- */

static void load_session(void *ud, const struct store_session *row,
                         const unsigned char hash[32])
{
    sessions_add(ud, row->id, hash, row->org, row->user, row->expires_ms);
}

struct load_ctx {
    struct sessions *t;
    int64_t now;
};

static int load_run(struct store *s, void *ud)
{
    struct load_ctx *l = ud;
    return store_session_each(s, l->now, load_session, l->t);
}

void api_session_hook(void *ud, int add, int64_t id,
                      const unsigned char hash[32], const char *org,
                      const char *user, int64_t expires_ms)
{
    struct api_shared *shared = ud;
    if (add)
        sessions_add(shared->sessions, id, hash, org, user, expires_ms);
    else
        sessions_delete(shared->sessions, id);
}

int api_shared_init(struct api_shared *shared, struct storeq *q,
                    int64_t now_ms)
{
    shared->sessions = sessions_new();
    struct load_ctx l = {shared->sessions, now_ms};
    return storeq_call(q, load_run, &l, STOREQ_READ);
}

void api_shared_dispose(struct api_shared *shared)
{
    sessions_free(shared->sessions);
    shared->sessions = NULL;
}

static int purge_run(struct store *s, void *ud)
{
    return store_session_purge(s, *(int64_t *)ud);
}

static void purge_done(void *ud, int rc) { free(ud); }

void api_sweep(struct api_shared *shared, struct hub *hub, int64_t now_ms)
{
    sessions_purge(shared->sessions, now_ms);
    int64_t *now = xmalloc(sizeof *now);
    *now = now_ms;
    if (hub_submit(hub, purge_run, purge_done, now, 0) != 0)
        free(now); /* the next sweep does it */
}
