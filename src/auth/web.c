/* web.c - the rules of a browser's credentials (see web.h).
 *
 * Only decisions over strings: the session lookup, the 401/403 answers
 * and the JWT verification are api/'s. */
#include "auth/web.h"

#include <string.h>
#include <strings.h>

#include "auth/auth.h"

/* ---- decoding ------------------------------------------------------- */

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

int web_decode(const char *s, const char *e, int plus, char *out,
               size_t outlen)
{
    size_t o = 0;
    if (outlen == 0)
        return -1;
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

int web_query_get(const char *q, size_t qlen, const char *name, char *out,
                  size_t outlen)
{
    if (!q)
        return -1;
    size_t nl = strlen(name);
    const char *p = q, *end = q + qlen;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if ((size_t)(e - p) > nl && memcmp(p, name, nl) == 0 &&
            p[nl] == '=') {
            int n = web_decode(p + nl + 1, e, 1, out, outlen);
            return n < 0 ? -2 : n;
        }
        p = e + 1;
    }
    return -1;
}

/* ---- credentials ---------------------------------------------------- */

const char *web_bearer(const char *authorization)
{
    if (!authorization || strncasecmp(authorization, "Bearer ", 7))
        return NULL;
    const char *t = authorization + 7;
    while (*t == ' ')
        t++;
    return t;
}

int web_admin_ok(const char *authorization, const char *key)
{
    const char *a = authorization;
    return a && key && strncmp(a, "Admin ", 6) == 0 &&
           strlen(a + 6) == 64 && strlen(key) == 64 &&
           auth_equal(a + 6, key, 64);
}

int web_session_cookie(const char *cookie, char *out, size_t outlen)
{
    if (!cookie)
        return -1;
    if (outlen > WEB_SESSION_MAX + 1)
        outlen = WEB_SESSION_MAX + 1;
    return auth_cookie_get(cookie, strlen(cookie), WEB_COOKIE, out, outlen);
}

void web_credential(const struct web_req *r, const char *query, size_t qlen,
                    unsigned from, char *buf, size_t buflen,
                    struct web_cred *out)
{
    const char *b = from & WEB_FROM_BEARER ? web_bearer(r->authorization)
                                           : NULL;
    int n;
    memset(out, 0, sizeof *out);
    if ((from & WEB_FROM_QUERY) &&
        (n = web_query_get(query, qlen, "token", buf, buflen)) >= 0) {
        out->kind = WEB_CRED_TOKEN;
        out->token = buf;
        out->len = (size_t)n;
    } else if (b) {
        out->kind = WEB_CRED_TOKEN;
        out->token = b;
        out->len = strlen(b);
    } else if ((from & WEB_FROM_COOKIE) &&
               (n = web_session_cookie(r->cookie, buf, buflen)) > 0) {
        out->kind = WEB_CRED_SESSION;
        out->token = buf;
        out->len = (size_t)n;
    }
}

/* ---- the session cookie -------------------------------------------- */

int web_set_cookie(struct buf *out, const char *value, int64_t max_age_s,
                   int https, int secure_cookies)
{
    return buf_printf(out,
                      "Set-Cookie: " WEB_COOKIE "=%s; Path=/; HttpOnly; "
                      "SameSite=Lax; Max-Age=%lld%s\r\n",
                      value, (long long)max_age_s,
                      https || secure_cookies ? "; Secure" : "");
}

/* ---- origins and CSRF ---------------------------------------------- */

int web_origin_ok(const struct web_req *r, const char *allowed)
{
    return r->origin &&
           auth_origin_allowed_tls(r->origin, allowed ? allowed : "",
                                   r->host ? r->host : "", r->https);
}

int web_csrf_ok(const struct web_req *r, const char *allowed,
                int via_cookie)
{
    if (!via_cookie)
        return 1;
    return r->origin ? web_origin_ok(r, allowed) : r->xrw != NULL;
}

int web_login_ok(const struct web_req *r, const char *allowed)
{
    return !r->origin || web_origin_ok(r, allowed);
}

int web_socket_ok(const struct web_req *r, const char *allowed,
                  int by_token)
{
    return by_token || !r->cookie || web_origin_ok(r, allowed);
}

int web_is_json(const char *ct)
{
    static const char want[] = "application/json";
    size_t n = sizeof want - 1;
    if (!ct || strncasecmp(ct, want, n) != 0)
        return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ' || ct[n] == '\t';
}
