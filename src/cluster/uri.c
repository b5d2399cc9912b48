/* uri.c - parses the redis setting (uri.h).
 *
 * Errors say what is wrong and what to write instead, and quote nothing of
 * the input: a URI holds a password, and a typo (a missing ':' or '@')
 * can move the password to where a host or a port was expected, so no
 * part of it is safe to echo. */
#include "cluster/uri.h"
#include "util/errf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

/* The longest path a Unix socket address holds (sun_path, NUL included):
 * a longer one could never be connected to, so it is refused here rather
 * than at connect time. */
#define UNIX_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

#define seterr(err, ...) ((void)errf((err), CLUSTER_URI_ERRLEN, 0, __VA_ARGS__))

static int prefix(const char *s, const char *p)
{
    return strncasecmp(s, p, strlen(p)) == 0;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into out (cap bytes, NUL included). 0, or -1
 * with a reason naming 'what'. */
static int decode(const char *s, size_t n, char *out, size_t cap,
                  const char *what, char *err)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int ch = (unsigned char)s[i];
        if (ch == '%') {
            int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                seterr(err, "%s has a bad %%-escape (write %%XX, two hex "
                            "digits)", what);
                return -1;
            }
            ch = hi << 4 | lo;
            i += 2;
            if (ch == 0) {
                seterr(err, "%s holds a NUL byte (%%00)", what);
                return -1;
            }
        }
        if (o + 1 >= cap) {
            seterr(err, "%s is longer than %zu bytes", what, cap - 1);
            return -1;
        }
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return 0;
}

/* Decimal digits s[0..n), at most max: 0 with the value, or -1 (none, a
 * non-digit, or past max). */
static int number(const char *s, size_t n, long long max, long long *out)
{
    long long v = 0;
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
        if (v > max)
            return -1;
    }
    *out = v;
    return 0;
}

static int host_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_';
}

static int ipv6_char(char ch)
{
    return hexval(ch) >= 0 || ch == ':' || ch == '.';
}

/* After "redis://": [[user]:password@]host[:port][/db] */
static int parse_tcp(const char *s, struct cluster_uri *u, char *err)
{
    /* The last '@' ends the credentials, so that a password with an '@' or
     * a '/' of its own still works unescaped. */
    const char *at = strrchr(s, '@'), *p = s;
    if (at) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        if (!colon) {
            seterr(err, "credentials without a password (write "
                        "redis://:PASSWORD@HOST or "
                        "redis://USER:PASSWORD@HOST)");
            return -1;
        }
        if (decode(s, (size_t)(colon - s), u->user, sizeof u->user,
                   "the user name", err) ||
            decode(colon + 1, (size_t)(at - colon - 1), u->password,
                   sizeof u->password, "the password", err))
            return -1;
        if (!u->password[0]) {
            seterr(err, "the password is empty (leave out \":@\" for no "
                        "password)");
            return -1;
        }
        p = at + 1;
    }

    const char *host = p;
    size_t nhost;
    if (*p == '[') {
        const char *end = strchr(p, ']');
        if (!end) {
            seterr(err, "an IPv6 address without its closing ']'");
            return -1;
        }
        host = p + 1;
        nhost = (size_t)(end - host);
        for (size_t i = 0; i < nhost; i++)
            if (!ipv6_char(host[i])) {
                seterr(err, "a bad character in the IPv6 address (write "
                            "it as [::1])");
                return -1;
            }
        if (nhost && !memchr(host, ':', nhost)) {
            seterr(err, "brackets around a host that is not an IPv6 "
                        "address");
            return -1;
        }
        p = end + 1;
    } else {
        nhost = strcspn(p, ":/?#");
        for (size_t i = 0; i < nhost; i++)
            if (!host_char(host[i])) {
                seterr(err, "a bad character in the host (a name, an "
                            "IPv4 address, or an IPv6 one as [::1])");
                return -1;
            }
        p += nhost;
    }
    if (nhost == 0) {
        seterr(err, "no host (write redis://HOST:PORT)");
        return -1;
    }
    if (nhost >= sizeof u->host) {
        seterr(err, "the host is longer than %zu bytes", sizeof u->host - 1);
        return -1;
    }
    memcpy(u->host, host, nhost);
    u->host[nhost] = '\0';

    long long v;
    u->port = CLUSTER_URI_PORT;
    if (*p == ':') {
        size_t n = strcspn(++p, "/?#");
        if (number(p, n, 65535, &v) || v == 0) {
            seterr(err, "the port is not a number from 1 to 65535");
            return -1;
        }
        u->port = (int)v;
        p += n;
    } else if (*p && *p != '/' && *p != '?') {
        seterr(err, "unexpected characters after the host");
        return -1;
    }
    if (*p == '/') {
        size_t n = strcspn(++p, "?#");
        if (n && number(p, n, 2147483647, &v)) {
            seterr(err, "the database is not a number from 0 to "
                        "2147483647 (write redis://HOST:PORT/DB)");
            return -1;
        }
        u->db = n ? (int)v : 0;
        p += n;
    }
    if (*p == '?') {
        seterr(err, "redis:// takes no query (?...); the database goes in "
                    "the path, redis://HOST:PORT/DB");
        return -1;
    }
    if (*p) {
        seterr(err, "unexpected characters after the database");
        return -1;
    }
    return 0;
}

/* After "unix://": /absolute/path[?db=N] */
static int parse_unix(const char *s, struct cluster_uri *u, char *err)
{
    if (*s != '/') {
        seterr(err, "the socket path is not absolute (write "
                    "unix:///path/to/redis.sock)");
        return -1;
    }
    size_t n = strcspn(s, "?#");
    if (n > UNIX_PATH_MAX) {
        seterr(err, "the socket path is longer than %zu bytes (what a Unix "
                    "socket address holds)", (size_t)UNIX_PATH_MAX);
        return -1;
    }
    memcpy(u->path, s, n);
    u->path[n] = '\0';
    s += n;
    if (*s == '?') {
        long long v;
        s++;
        if (strncmp(s, "db=", 3) != 0 || strchr(s, '&') || strchr(s, '#')) {
            seterr(err, "the only query unix:// takes is ?db=N");
            return -1;
        }
        if (number(s + 3, strlen(s + 3), 2147483647, &v)) {
            seterr(err, "the database is not a number from 0 to "
                        "2147483647 (write unix:///path?db=N)");
            return -1;
        }
        u->db = (int)v;
        s += strlen(s);
    }
    if (*s) {
        seterr(err, "unexpected characters after the socket path");
        return -1;
    }
    return 0;
}

int cluster_uri_parse(const char *s, struct cluster_uri *out, char *err)
{
    struct cluster_uri u;
    int rc = -1;

    memset(&u, 0, sizeof u);
    if (!s || !*s) {
        seterr(err, "empty Redis URI (write redis://HOST:PORT or "
                    "unix:///path)");
        return -1;
    }
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            seterr(err, "a control character in the Redis URI");
            return -1;
        }
    if (prefix(s, "redis://"))
        rc = parse_tcp(s + 8, &u, err);
    else if (prefix(s, "unix://"))
        rc = parse_unix(s + 7, &u, err);
    else if (prefix(s, "rediss:"))
        seterr(err, "TLS (rediss://) is not supported; use redis:// "
                    "(through a TLS tunnel if need be) or unix://");
    else if (prefix(s, "redis:") || prefix(s, "unix:"))
        seterr(err, "malformed Redis URI (write redis://HOST:PORT or "
                    "unix:///path)");
    else
        seterr(err, "unknown scheme for Redis (use redis://HOST:PORT or "
                    "unix:///path)");
    if (rc == 0)
        *out = u;
    /* The password was copied to *out or is dropped: not left on the
     * stack either way. */
    explicit_bzero(&u, sizeof u);
    return rc;
}

const char *cluster_uri_redacted(const struct cluster_uri *u, char *buf,
                                 size_t n)
{
    if (n == 0)
        return buf;
    if (u->path[0]) {
        if (u->db)
            snprintf(buf, n, "unix://%s?db=%d", u->path, u->db);
        else
            snprintf(buf, n, "unix://%s", u->path);
        return buf;
    }
    int v6 = strchr(u->host, ':') != NULL;
    snprintf(buf, n, "redis://%s%s%s%s:%d/%d",
             u->password[0] || u->user[0] ? "***@" : "", v6 ? "[" : "",
             u->host, v6 ? "]" : "", u->port, u->db);
    return buf;
}
