/* test_web.c - credentials, the session cookie, CSRF and origins
 * (src/auth/web.c): each rule of docs/security.md that web.h decides,
 * with the inputs a hostile client can send. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/jwt.h"
#include "auth/web.h"

#define HOST "127.0.0.1:8080"
#define OWN "http://" HOST

static int setup(void **state)
{
    return auth_init();
}

static void test_decode(void **state)
{
    char out[8];
    const char *s = "a%20b+c";
    assert_int_equal(web_decode(s, s + strlen(s), 1, out, sizeof out), 5);
    assert_string_equal(out, "a b c");
    assert_int_equal(web_decode(s, s + strlen(s), 0, out, sizeof out), 5);
    assert_string_equal(out, "a b+c");
    /* Bad escapes, a NUL, too long for out. */
    const char *bad[] = {"%", "%2", "%zz", "a%g0", "%00", "12345678"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(web_decode(bad[i], bad[i] + strlen(bad[i]), 1, out,
                                    sizeof out),
                         -1);
    /* Exactly fits: 7 bytes and the NUL. */
    s = "1234567";
    assert_int_equal(web_decode(s, s + 7, 0, out, sizeof out), 7);
    assert_int_equal(web_decode(s, s, 0, out, sizeof out), 0);
    assert_string_equal(out, "");
    assert_int_equal(web_decode(s, s + 1, 0, out, 0), -1);
}

static void test_query_get(void **state)
{
    char out[16];
    const char *q = "a=1&token=x%2By&tok=2&empty=&bad=%zz&"
                    "long=0123456789abcdef";
    size_t n = strlen(q);
    assert_int_equal(web_query_get(q, n, "token", out, sizeof out), 3);
    assert_string_equal(out, "x+y");
    assert_int_equal(web_query_get(q, n, "a", out, sizeof out), 1);
    assert_int_equal(web_query_get(q, n, "tok", out, sizeof out), 1);
    assert_string_equal(out, "2");
    assert_int_equal(web_query_get(q, n, "empty", out, sizeof out), 0);
    assert_int_equal(web_query_get(q, n, "bad", out, sizeof out), -2);
    assert_int_equal(web_query_get(q, n, "long", out, sizeof out), -2);
    assert_int_equal(web_query_get(q, n, "nope", out, sizeof out), -1);
    assert_int_equal(web_query_get(q, n, "to", out, sizeof out), -1);
    /* A name without '=' is not a value; the length bounds the search. */
    assert_int_equal(web_query_get("token&x=1", 9, "token", out, sizeof out),
                     -1);
    assert_int_equal(web_query_get("a=1&token=2", 5, "token", out,
                                   sizeof out),
                     -1);
    assert_int_equal(web_query_get(NULL, 0, "token", out, sizeof out), -1);
    assert_int_equal(web_query_get("", 0, "token", out, sizeof out), -1);
}

static void test_bearer(void **state)
{
    assert_string_equal(web_bearer("Bearer abc"), "abc");
    assert_string_equal(web_bearer("bearer   abc"), "abc");
    assert_string_equal(web_bearer("BEARER "), "");
    assert_null(web_bearer(NULL));
    assert_null(web_bearer(""));
    assert_null(web_bearer("Bearer"));
    assert_null(web_bearer("Basic abc"));
    assert_null(web_bearer("Bearerabc"));
    assert_null(web_bearer(" Bearer abc"));
}

static void test_admin(void **state)
{
    char key[65], hdr[80];
    memset(key, 'a', 64);
    key[64] = '\0';
    snprintf(hdr, sizeof hdr, "Admin %s", key);
    assert_int_equal(web_admin_ok(hdr, key), 1);
    hdr[10] = 'b';
    assert_int_equal(web_admin_ok(hdr, key), 0);
    snprintf(hdr, sizeof hdr, "admin %s", key);   /* the scheme's case */
    assert_int_equal(web_admin_ok(hdr, key), 0);
    snprintf(hdr, sizeof hdr, "Admin %sa", key);  /* one byte too many */
    assert_int_equal(web_admin_ok(hdr, key), 0);
    snprintf(hdr, sizeof hdr, "Admin %.63s", key);
    assert_int_equal(web_admin_ok(hdr, key), 0);
    assert_int_equal(web_admin_ok(NULL, key), 0);
    assert_int_equal(web_admin_ok("Admin ", ""), 0);
    assert_int_equal(web_admin_ok("Bearer x", key), 0);
}

static void test_session_cookie(void **state)
{
    char out[256], big[300];
    assert_int_equal(web_session_cookie("a=1; presenced_session=tok; b=2",
                                        out, sizeof out),
                     3);
    assert_string_equal(out, "tok");
    assert_int_equal(web_session_cookie("presenced_session=", out,
                                        sizeof out),
                     0);
    assert_int_equal(web_session_cookie(NULL, out, sizeof out), -1);
    assert_int_equal(web_session_cookie("", out, sizeof out), -1);
    assert_int_equal(web_session_cookie("xpresenced_session=tok", out,
                                        sizeof out),
                     -1);
    assert_int_equal(web_session_cookie("presenced_sessionx=tok", out,
                                        sizeof out),
                     -1);
    /* WEB_SESSION_MAX bytes are read, one more is not, whatever room. */
    memcpy(big, "presenced_session=", 18);
    memset(big + 18, 'x', WEB_SESSION_MAX);
    big[18 + WEB_SESSION_MAX] = '\0';
    assert_int_equal(web_session_cookie(big, out, sizeof out),
                     WEB_SESSION_MAX);
    big[18 + WEB_SESSION_MAX] = 'x';
    big[19 + WEB_SESSION_MAX] = '\0';
    assert_int_equal(web_session_cookie(big, out, sizeof out), -1);
    assert_int_equal(web_session_cookie("presenced_session=abcd", out, 4),
                     -1);
}

static void test_credential(void **state)
{
    char buf[JWT_MAX_LEN + 1];
    struct web_cred c;
    struct web_req r = {.authorization = "Bearer B",
                        .cookie = "presenced_session=S"};
    unsigned all = WEB_FROM_QUERY | WEB_FROM_BEARER | WEB_FROM_COOKIE;

    /* ?token= first, then the bearer, then the cookie. */
    web_credential(&r, "token=Q", 7, all, buf, sizeof buf, &c);
    assert_int_equal(c.kind, WEB_CRED_TOKEN);
    assert_string_equal(c.token, "Q");
    assert_int_equal(c.len, 1);
    web_credential(&r, "token=Q", 7, WEB_FROM_BEARER | WEB_FROM_COOKIE, buf,
                   sizeof buf, &c);
    assert_int_equal(c.kind, WEB_CRED_TOKEN);
    assert_string_equal(c.token, "B");
    web_credential(&r, NULL, 0, WEB_FROM_COOKIE, buf, sizeof buf, &c);
    assert_int_equal(c.kind, WEB_CRED_SESSION);
    assert_string_equal(c.token, "S");
    /* An undecodable ?token= is absent: the bearer is used. */
    web_credential(&r, "token=%zz", 9, all, buf, sizeof buf, &c);
    assert_string_equal(c.token, "B");
    /* An empty or bad Bearer is still the credential: it is refused,
     * never passed over for the cookie. */
    r.authorization = "Bearer ";
    web_credential(&r, NULL, 0, all, buf, sizeof buf, &c);
    assert_int_equal(c.kind, WEB_CRED_TOKEN);
    assert_int_equal(c.len, 0);
    /* Another scheme is no bearer. */
    r.authorization = "Basic x";
    web_credential(&r, NULL, 0, all, buf, sizeof buf, &c);
    assert_int_equal(c.kind, WEB_CRED_SESSION);
    /* An empty cookie, or none: nothing. */
    r.cookie = "presenced_session=";
    web_credential(&r, NULL, 0, all, buf, sizeof buf, &c);
    assert_int_equal(c.kind, WEB_CRED_NONE);
    assert_null(c.token);
    r.cookie = NULL;
    r.authorization = NULL;
    web_credential(&r, "", 0, all, buf, sizeof buf, &c);
    assert_int_equal(c.kind, WEB_CRED_NONE);
    /* ?token= too long for the buffer is absent. */
    web_credential(&r, "token=12345", 11, all, buf, 5, &c);
    assert_int_equal(c.kind, WEB_CRED_NONE);
    web_credential(&r, "token=", 6, all, buf, sizeof buf, &c);
    assert_int_equal(c.kind, WEB_CRED_TOKEN);
    assert_int_equal(c.len, 0);
}

static void test_set_cookie(void **state)
{
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(web_set_cookie(&b, "tok", 3600, 0, 0), 0);
    assert_string_equal(b.data, "Set-Cookie: presenced_session=tok; Path=/; "
                                "HttpOnly; SameSite=Lax; Max-Age=3600\r\n");
    buf_reset(&b);
    web_set_cookie(&b, "", 0, 1, 0);
    assert_string_equal(b.data, "Set-Cookie: presenced_session=; Path=/; "
                                "HttpOnly; SameSite=Lax; Max-Age=0; "
                                "Secure\r\n");
    buf_reset(&b);
    web_set_cookie(&b, "t", 1, 0, 1);
    assert_non_null(strstr(b.data, "; Secure\r\n"));
    buf_dispose(&b);
    /* A full buffer is an error, not a cut header. */
    buf_init(&b, 10);
    assert_int_equal(web_set_cookie(&b, "tok", 1, 0, 0), BUF_ETOOBIG);
    buf_dispose(&b);
}

static void test_origin(void **state)
{
    struct web_req r = {.origin = OWN, .host = HOST};
    assert_int_equal(web_origin_ok(&r, ""), 1);
    assert_int_equal(web_origin_ok(&r, NULL), 1);
    r.https = 1;    /* the page came over TLS: its origin is https:// */
    assert_int_equal(web_origin_ok(&r, ""), 0);
    r.origin = "https://" HOST;
    assert_int_equal(web_origin_ok(&r, ""), 1);
    r.https = 0;
    r.origin = "http://evil.example";
    assert_int_equal(web_origin_ok(&r, ""), 0);
    assert_int_equal(web_origin_ok(&r, "http://evil.example"), 1);
    assert_int_equal(web_origin_ok(&r, "*"), 1);
    /* A list replaces the default. */
    r.origin = OWN;
    assert_int_equal(web_origin_ok(&r, "http://other.example"), 0);
    r.origin = "null";
    assert_int_equal(web_origin_ok(&r, "*"), 0);
    r.origin = NULL;
    assert_int_equal(web_origin_ok(&r, "*"), 0);
    r.origin = "";
    assert_int_equal(web_origin_ok(&r, "*"), 0);
    r.origin = OWN;
    r.host = NULL;
    assert_int_equal(web_origin_ok(&r, ""), 0);
}

static void test_csrf(void **state)
{
    struct web_req r = {.host = HOST};
    /* Not by cookie: always. */
    assert_int_equal(web_csrf_ok(&r, "", 0), 1);
    r.origin = "http://evil.example";
    assert_int_equal(web_csrf_ok(&r, "", 0), 1);
    /* By cookie: an allowed Origin, or no Origin and X-Requested-With. */
    assert_int_equal(web_csrf_ok(&r, "", 1), 0);
    r.xrw = "XMLHttpRequest";   /* does not excuse a foreign Origin */
    assert_int_equal(web_csrf_ok(&r, "", 1), 0);
    r.origin = OWN;
    assert_int_equal(web_csrf_ok(&r, "", 1), 1);
    r.origin = NULL;
    assert_int_equal(web_csrf_ok(&r, "", 1), 1);
    r.xrw = "";                 /* present, whatever its value */
    assert_int_equal(web_csrf_ok(&r, "", 1), 1);
    r.xrw = NULL;
    assert_int_equal(web_csrf_ok(&r, "", 1), 0);
    r.origin = "null";
    assert_int_equal(web_csrf_ok(&r, "*", 1), 0);
}

static void test_login_origin(void **state)
{
    struct web_req r = {.host = HOST};
    assert_int_equal(web_login_ok(&r, ""), 1);  /* no Origin: a script */
    r.origin = OWN;
    assert_int_equal(web_login_ok(&r, ""), 1);
    r.origin = "http://evil.example";
    assert_int_equal(web_login_ok(&r, ""), 0);
    r.origin = "";
    assert_int_equal(web_login_ok(&r, ""), 0);
}

static void test_socket_origin(void **state)
{
    struct web_req r = {.host = HOST, .origin = "http://evil.example"};
    /* No cookie at all, or a token: the Origin does not matter. */
    assert_int_equal(web_socket_ok(&r, "", 0), 1);
    r.cookie = "presenced_session=x";
    assert_int_equal(web_socket_ok(&r, "", 1), 1);
    /* A cookie (any) without a token: the Origin must be allowed. */
    assert_int_equal(web_socket_ok(&r, "", 0), 0);
    r.cookie = "a=b";
    assert_int_equal(web_socket_ok(&r, "", 0), 0);
    r.origin = NULL;
    assert_int_equal(web_socket_ok(&r, "", 0), 0);
    r.origin = OWN;
    assert_int_equal(web_socket_ok(&r, "", 0), 1);
}

static void test_is_json(void **state)
{
    assert_int_equal(web_is_json("application/json"), 1);
    assert_int_equal(web_is_json("Application/JSON; charset=utf-8"), 1);
    assert_int_equal(web_is_json("application/json\t"), 1);
    assert_int_equal(web_is_json("application/json "), 1);
    assert_int_equal(web_is_json("application/jsonx"), 0);
    assert_int_equal(web_is_json("application/json-patch+json"), 0);
    assert_int_equal(web_is_json("text/plain"), 0);
    assert_int_equal(web_is_json("application/x-www-form-urlencoded"), 0);
    assert_int_equal(web_is_json(""), 0);
    assert_int_equal(web_is_json(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_query_get),
        cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_admin),
        cmocka_unit_test(test_session_cookie),
        cmocka_unit_test(test_credential),
        cmocka_unit_test(test_set_cookie),
        cmocka_unit_test(test_origin),
        cmocka_unit_test(test_csrf),
        cmocka_unit_test(test_login_origin),
        cmocka_unit_test(test_socket_origin),
        cmocka_unit_test(test_is_json),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
