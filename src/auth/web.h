/* web.h - the rules of a browser's credentials: which token a request
 * presents (bearer header, ?token=, the session cookie), the session
 * cookie itself, CSRF, and the Origin checks (docs/security.md).
 *
 * Pure: strings and settings in, decisions out. No I/O, no clock, no
 * store, no lock; nothing is kept. api/ reads a request through these,
 * then looks the session up and answers. Every string argument may be
 * NULL where it stands for a header (a header the request did not send). */
#ifndef WEB_H
#define WEB_H
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

#define WEB_COOKIE "presenced_session"
#define WEB_SESSION_MAX 127  /* longest session cookie value read */

/* The headers the rules read, borrowed from a request. */
struct web_req {
    const char *authorization, *cookie, *origin, *xrw, *host;
    int https;          /* reached us over TLS (a trusted proxy said so) */
};

/* ---- decoding ------------------------------------------------------- */

/* Percent-decodes [s, e) into out (NUL-terminated); plus: '+' is a space
 * (query strings, not paths). Returns the length, or -1 if malformed
 * (a bad escape, a NUL) or longer than outlen - 1. */
int web_decode(const char *s, const char *e, int plus, char *out,
               size_t outlen);
/* Finds name in a query string (without the '?') and decodes its value
 * into out. Returns the length, -1 if absent, or -2 if present but
 * malformed or too long. */
int web_query_get(const char *q, size_t qlen, const char *name, char *out,
                  size_t outlen);

/* ---- credentials ---------------------------------------------------- */

/* The token of "Bearer <token>" (scheme in any case, spaces after it
 * skipped): a pointer into authorization, or NULL for any other value. */
const char *web_bearer(const char *authorization);

/* 1 if authorization is "Admin <key>" with key (64 bytes) compared in
 * constant time, else 0. */
int web_admin_ok(const char *authorization, const char *key);

/* The value of the session cookie in a Cookie header, into out. Returns
 * its length; 0 if empty; -1 if absent or longer than WEB_SESSION_MAX or
 * than outlen - 1. */
int web_session_cookie(const char *cookie, char *out, size_t outlen);

/* Where a route accepts a credential from (flags). */
enum {
    WEB_FROM_QUERY = 1,     /* ?token= (WebSocket upgrades) */
    WEB_FROM_BEARER = 2,    /* Authorization: Bearer */
    WEB_FROM_COOKIE = 4,    /* the session cookie */
};

enum web_cred_kind {
    WEB_CRED_NONE,      /* nothing usable: "missing credentials" */
    WEB_CRED_TOKEN,     /* a JWT (not yet verified) */
    WEB_CRED_SESSION,   /* a session cookie value (not yet looked up) */
};

/* A credential, borrowed: token points into r's headers or into the
 * caller's buffer, and is NUL-terminated. */
struct web_cred {
    enum web_cred_kind kind;
    const char *token;
    size_t len;
};

/* The one credential a request presents, from the sources in from, in
 * this order (docs/security.md "Credentials"): a ?token= that decodes
 * (into buf), else any Bearer header, even an empty or a bad one (it is
 * then refused, never passed over for the cookie), else a non-empty
 * session cookie (into buf). buf should hold JWT_MAX_LEN + 1 bytes: a
 * ?token= longer than buflen - 1 counts as absent. query is the query
 * string without '?', or NULL. */
void web_credential(const struct web_req *r, const char *query, size_t qlen,
                    unsigned from, char *buf, size_t buflen,
                    struct web_cred *out);

/* ---- the session cookie -------------------------------------------- */

/* Appends the Set-Cookie header line (CRLF-ended) for the session cookie:
 * value for max_age_s seconds ("" and 0 clear it). HttpOnly, SameSite=Lax,
 * Path=/; Secure whenever the request came over TLS or secure_cookies
 * says every page does. Returns 0 or BUF_ETOOBIG. */
int web_set_cookie(struct buf *out, const char *value, int64_t max_age_s,
                   int https, int secure_cookies);

/* ---- origins and CSRF ---------------------------------------------- */

/* 1 if r has an Origin and it is allowed (auth_origin_allowed_tls():
 * listed in allowed, or the server's own for r's Host and scheme). */
int web_origin_ok(const struct web_req *r, const char *allowed);

/* A state-changing request authenticated by the cookie must come from one
 * of our pages: an allowed Origin, or with no Origin an X-Requested-With
 * (which no cross-site form can add without a preflight). A request
 * authenticated otherwise (a token is never ambient) always passes.
 * 1 pass, 0 refuse (403 "csrf"). */
int web_csrf_ok(const struct web_req *r, const char *allowed,
                int via_cookie);

/* Login CSRF: another site's page must not sign its visitor in as someone
 * else. Browsers send Origin with every POST; a request with one must be
 * allowed. 1 pass, 0 refuse (403 "csrf"). */
int web_login_ok(const struct web_req *r, const char *allowed);

/* Cross-site WebSocket hijacking: an upgrade that would be authenticated
 * by a cookie (it sends any Cookie header and no token) must come from an
 * allowed Origin. by_token: the upgrade presents a token (WEB_CRED_TOKEN).
 * 1 pass, 0 refuse (403 "forbidden_origin"). */
int web_socket_ok(const struct web_req *r, const char *allowed,
                  int by_token);

/* 1 if ct is "application/json" (any case, with or without parameters).
 * A cross-site form can send text/plain or a form encoding without a
 * preflight, never JSON: this is the other half of the CSRF rule. */
int web_is_json(const char *ct);
#endif
