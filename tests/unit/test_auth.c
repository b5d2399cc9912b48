/* test_auth.c - passwords, tokens, cookies and origins (src/auth/auth.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "auth/auth.h"

static int setup(void **state)
{
    return auth_init();
}

static void test_password(void **state)
{
    char h[AUTH_HASH_MAX], h2[AUTH_HASH_MAX];
    assert_int_equal(auth_password_hash("correct horse", h), 0);
    assert_true(strncmp(h, "$argon2id$", 10) == 0);
    assert_true(strlen(h) < AUTH_HASH_MAX);
    assert_int_equal(auth_password_verify(h, "correct horse"), 1);
    assert_int_equal(auth_password_verify(h, "correct horsE"), 0);
    assert_int_equal(auth_password_verify(h, "correct hors"), 0);
    assert_int_equal(auth_password_verify(h, ""), 0);
    /* Salted: the same password hashes differently each time. */
    assert_int_equal(auth_password_hash("correct horse", h2), 0);
    assert_string_not_equal(h, h2);
    assert_int_equal(auth_password_verify(h2, "correct horse"), 1);
    /* An empty password is still a password. */
    assert_int_equal(auth_password_hash("", h2), 0);
    assert_int_equal(auth_password_verify(h2, ""), 1);
    assert_int_equal(auth_password_verify(h2, " "), 0);
}

static void test_password_malformed_hash(void **state)
{
    char h[AUTH_HASH_MAX], bad[AUTH_HASH_MAX];
    assert_int_equal(auth_password_hash("pw", h), 0);
    assert_int_equal(auth_password_verify("", "pw"), 0);
    assert_int_equal(auth_password_verify(NULL, "pw"), 0);
    assert_int_equal(auth_password_verify("pw", "pw"), 0);
    assert_int_equal(auth_password_verify("$argon2id$", "pw"), 0);
    assert_int_equal(auth_password_verify("$argon2id$v=19$m=65536,t=2,p=1$",
                                          "pw"),
                     0);
    /* Truncated. */
    snprintf(bad, sizeof bad, "%.*s", (int)strlen(h) - 5, h);
    assert_int_equal(auth_password_verify(bad, "pw"), 0);
    /* One character of the digest changed. */
    strcpy(bad, h);
    size_t last = strlen(bad) - 2;
    bad[last] = bad[last] == 'A' ? 'B' : 'A';
    assert_int_equal(auth_password_verify(bad, "pw"), 0);
    /* No terminator inside the array. */
    memset(bad, 'a', sizeof bad);
    assert_int_equal(auth_password_verify(bad, "pw"), 0);
}

static void test_token(void **state)
{
    char t[AUTH_TOKEN_LEN + 1], u[AUTH_TOKEN_LEN + 1];
    for (int round = 0; round < 50; round++) {
        memset(t, '#', sizeof t);
        auth_token_new(t);
        assert_int_equal(strlen(t), AUTH_TOKEN_LEN);
        for (int i = 0; i < AUTH_TOKEN_LEN; i++) {
            char ch = t[i];
            int ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                     (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
            if (!ok)
                fail_msg("bad char %c in token %s", ch, t);
        }
        auth_token_new(u);
        assert_string_not_equal(t, u);
    }
}

static void test_token_hash(void **state)
{
    /* SHA-256("abc"), FIPS 180-2 appendix B.1. */
    static const unsigned char want[32] = {
        0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
        0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
        0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    unsigned char h[32], h2[32];
    auth_token_hash("abcdef", 3, h);
    assert_memory_equal(h, want, 32);
    auth_token_hash("abd", 3, h2);
    assert_memory_not_equal(h, h2, 32);
}

static void test_random_hex(void **state)
{
    char a[200], b[200];
    for (size_t n = 0; n < 90; n += 7) {
        memset(a, '#', sizeof a);
        auth_random_hex(a, n);
        assert_int_equal(strlen(a), 2 * n);
        assert_int_equal(strspn(a, "0123456789abcdef"), 2 * n);
        assert_int_equal(a[2 * n + 1], '#'); /* wrote 2n + 1 bytes only */
    }
    auth_random_hex(a, 32);
    auth_random_hex(b, 32);
    assert_string_not_equal(a, b);
}

static void test_equal(void **state)
{
    assert_int_equal(auth_equal("abcd", "abcd", 4), 1);
    assert_int_equal(auth_equal("abcd", "abce", 4), 0);
    assert_int_equal(auth_equal("xbcd", "abcd", 4), 0);
    assert_int_equal(auth_equal("abcd", "abce", 3), 1);
    assert_int_equal(auth_equal("a", "b", 0), 1);
}

static void test_cookie(void **state)
{
    static const struct {
        const char *header, *name;
        int want_len;
        const char *want;
    } cases[] = {
        {"sid=abc", "sid", 3, "abc"},
        {"a=1; sid=abc; b=2", "sid", 3, "abc"},
        {"a=1;sid=abc;b=2", "sid", 3, "abc"},
        {"  sid  =  abc  ; b=2", "sid", 3, "abc"},
        {"a=1;\tsid=abc\t", "sid", 3, "abc"},
        {"sid=\"quoted value\"", "sid", 12, "quoted value"},
        {"sid=\"\"", "sid", 0, ""},
        {"sid=\"", "sid", 1, "\""},
        {"sid=", "sid", 0, ""},
        {"sid=; b=2", "sid", 0, ""},
        {"sid", "sid", -1, NULL},            /* no '=' */
        {"sid; b=2", "sid", -1, NULL},
        {"b=2; sid", "sid", -1, NULL},
        {"xsid=1", "sid", -1, NULL},         /* prefix of another name */
        {"sidx=1", "sid", -1, NULL},
        {"xsid=1; sid=2", "sid", 1, "2"},
        {"sid_old=1; sid=2", "sid", 1, "2"},
        {"a=sid=1", "sid", -1, NULL},        /* in another's value */
        {"a=x; sid=1=2", "sid", 3, "1=2"},   /* '=' inside a value */
        {"sid=1; sid=2", "sid", 1, "1"},     /* first wins */
        {"SID=1", "sid", -1, NULL},          /* names are case-sensitive */
        {"", "sid", -1, NULL},
        {";;; ;", "sid", -1, NULL},
        {";sid=z;", "sid", 1, "z"},
        {"=1; sid=2", "sid", 1, "2"},
        {"a=1", "", -1, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[64];
        memset(out, '#', sizeof out);
        int n = auth_cookie_get(cases[i].header, strlen(cases[i].header),
                                cases[i].name, out, sizeof out);
        if (n != cases[i].want_len)
            fail_msg("cookie %s [%s]: got %d want %d", cases[i].header,
                     cases[i].name, n, cases[i].want_len);
        if (n >= 0 && strcmp(out, cases[i].want) != 0)
            fail_msg("cookie %s: got \"%s\" want \"%s\"", cases[i].header,
                     out, cases[i].want);
    }
}

static void test_cookie_limits(void **state)
{
    char out[4];
    /* header_len bounds the search: the header need not end in NUL. */
    static const char h[] = "sid=abcXYZ";
    assert_int_equal(auth_cookie_get(h, 7, "sid", out, sizeof out), 3);
    assert_string_equal(out, "abc");
    assert_int_equal(auth_cookie_get(h, 2, "sid", out, sizeof out), -1);
    assert_int_equal(auth_cookie_get(h, 0, "sid", out, sizeof out), -1);
    /* A value that does not fit is absent, not truncated. */
    assert_int_equal(auth_cookie_get("sid=abcd", 8, "sid", out, sizeof out),
                     -1);
    assert_int_equal(auth_cookie_get("sid=abc", 7, "sid", out, 0), -1);
    assert_int_equal(auth_cookie_get("sid=", 4, "sid", out, 1), 0);
    assert_string_equal(out, "");
}

static void test_origin(void **state)
{
    static const struct {
        const char *origin, *allowed, *host;
        int want;
    } cases[] = {
        /* No list: only the server's own origin. */
        {"http://127.0.0.1:8080", "", "127.0.0.1:8080", 1},
        {"http://127.0.0.1:8080", NULL, "127.0.0.1:8080", 1},
        {"http://127.0.0.1:8081", "", "127.0.0.1:8080", 0},
        {"http://127.0.0.1", "", "127.0.0.1:8080", 0},
        {"http://127.0.0.1:8080", "", "127.0.0.1", 0},
        {"https://127.0.0.1:8080", "", "127.0.0.1:8080", 0},
        {"http://evil.example", "", "evil.example:80", 0},
        {"http://localhost:8080x", "", "localhost:8080", 0},
        {"http://localhost:8080", "", "", 0},
        {"http://localhost:8080", "", NULL, 0},
        {"http://", "", "", 0},
        {"", "", "x", 0},
        {NULL, "", "x", 0},
        {"null", "", "null", 0},
        {"null", NULL, "x", 0},
        {"http://a.b", " , ", "a.b", 1}, /* blank list = no list */
        /* A list replaces the default. */
        {"http://app.example", "http://app.example", "x:1", 1},
        {"http://app.example",
         "http://other.example, http://app.example ", "x:1", 1},
        {"http://app.example", " http://app.example,", "x:1", 1},
        {"http://app.example:443", "http://app.example", "x:1", 0},
        {"http://app.example", "http://app.example:443", "x:1", 0},
        {"http://app.examplE", "http://app.example", "x:1", 0},
        {"http://app.exam", "http://app.example", "x:1", 0},
        {"http://x:1", "http://app.example", "x:1", 0},
        {"*", "http://app.example", "x:1", 0},
        {"http://anything.example", "*", "x:1", 1},
        {"http://anything.example", "http://a.example, *", "x:1", 1},
        {"http://anything.example", "**", "x:1", 0},
        /* "null" only when listed explicitly. */
        {"null", "*", "x:1", 0},
        {"null", "http://a.example,null", "x:1", 1},
        {"null", " null ", "x:1", 1},
        {"nul", "null", "x:1", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = auth_origin_allowed(cases[i].origin, cases[i].allowed,
                                      cases[i].host);
        if (got != cases[i].want)
            fail_msg("origin %s allowed [%s] host %s: got %d",
                     cases[i].origin ? cases[i].origin : "(null)",
                     cases[i].allowed ? cases[i].allowed : "(null)",
                     cases[i].host ? cases[i].host : "(null)", got);
    }
}

static void test_origin_tls(void **state)
{
    (void)state;
    /* Behind a TLS proxy the page's own origin is https://host. */
    assert_int_equal(auth_origin_allowed_tls("https://p.example", "",
                                             "p.example", 1), 1);
    assert_int_equal(auth_origin_allowed_tls("http://p.example", "",
                                             "p.example", 1), 0);
    assert_int_equal(auth_origin_allowed_tls("https://p.example", "",
                                             "p.example", 0), 0);
    assert_int_equal(auth_origin_allowed_tls("https://evil.example", "",
                                             "p.example", 1), 0);
    assert_int_equal(auth_origin_allowed_tls("null", "", "p.example", 1), 0);
}

static void test_addr_list(void **state)
{
    (void)state;
    assert_int_equal(auth_addr_list_check(""), 0);
    assert_int_equal(auth_addr_list_check("127.0.0.1, ::1,10.0.0.0/8"), 0);
    assert_int_equal(auth_addr_list_check("fd00::/8 , 192.168.1.0/24"), 0);
    assert_int_equal(auth_addr_list_check("10.0.0.0/33"), -1);
    assert_int_equal(auth_addr_list_check("::/129"), -1);
    assert_int_equal(auth_addr_list_check("10.0.0.0/"), -1);
    assert_int_equal(auth_addr_list_check("10.0.0.0/x"), -1);
    assert_int_equal(auth_addr_list_check("localhost"), -1);
    assert_int_equal(auth_addr_list_check("127.0.0.1, nope"), -1);
    assert_int_equal(auth_addr_list_check("1.2.3"), -1);

    const char *l = "127.0.0.1, 10.0.0.0/8, fd00::/8, 192.168.1.128/25";
    assert_int_equal(auth_addr_listed(l, "127.0.0.1"), 1);
    assert_int_equal(auth_addr_listed(l, "127.0.0.2"), 0);
    assert_int_equal(auth_addr_listed(l, "10.200.3.4"), 1);
    assert_int_equal(auth_addr_listed(l, "11.0.0.1"), 0);
    assert_int_equal(auth_addr_listed(l, "fd12::1"), 1);
    assert_int_equal(auth_addr_listed(l, "fe80::1"), 0);
    assert_int_equal(auth_addr_listed(l, "192.168.1.200"), 1);
    assert_int_equal(auth_addr_listed(l, "192.168.1.100"), 0);
    /* An IPv4-mapped IPv6 peer is the IPv4 address. */
    assert_int_equal(auth_addr_listed(l, "::ffff:127.0.0.1"), 1);
    assert_int_equal(auth_addr_listed(l, "::ffff:127.0.0.2"), 0);
    assert_int_equal(auth_addr_listed(l, "not an address"), 0);
    assert_int_equal(auth_addr_listed("", "127.0.0.1"), 0);
    assert_int_equal(auth_addr_listed("0.0.0.0/0", "8.8.8.8"), 1);
    assert_int_equal(auth_addr_listed("0.0.0.0/0", "2001:db8::1"), 0);
    assert_int_equal(auth_addr_listed("::/0", "2001:db8::1"), 1);
}

static void test_client_addr(void **state)
{
    (void)state;
    char out[64];
    const char *t = "127.0.0.1, 10.0.0.0/8";
    /* Not from a trusted proxy: the headers are the client's own words. */
    auth_client_addr("203.0.113.9", "1.1.1.1", "2.2.2.2", t, out, sizeof out);
    assert_string_equal(out, "203.0.113.9");
    auth_client_addr("127.0.0.1", "1.1.1.1", NULL, "", out, sizeof out);
    assert_string_equal(out, "127.0.0.1");
    /* From the proxy: the nearest untrusted hop, walking from the right;
     * whatever the client put further left is ignored. */
    auth_client_addr("127.0.0.1", "6.6.6.6, 198.51.100.7", NULL, t, out,
                     sizeof out);
    assert_string_equal(out, "198.51.100.7");
    auth_client_addr("127.0.0.1", "6.6.6.6, 198.51.100.7, 10.1.2.3", NULL,
                     t, out, sizeof out);
    assert_string_equal(out, "198.51.100.7");
    auth_client_addr("127.0.0.1", " 2001:db8::5 ", NULL, t, out, sizeof out);
    assert_string_equal(out, "2001:db8::5");
    /* All hops trusted: the leftmost. */
    auth_client_addr("127.0.0.1", "10.9.9.9, 10.1.1.1", NULL, t, out,
                     sizeof out);
    assert_string_equal(out, "10.9.9.9");
    /* Garbage stops the walk at the last good hop. */
    auth_client_addr("127.0.0.1", "198.51.100.7, evil\r\nX: y", NULL, t, out,
                     sizeof out);
    assert_string_equal(out, "127.0.0.1");
    auth_client_addr("127.0.0.1", "junk, 10.1.1.1", NULL, t, out, sizeof out);
    assert_string_equal(out, "10.1.1.1");
    /* X-Real-IP when there is no X-Forwarded-For. */
    auth_client_addr("127.0.0.1", NULL, "198.51.100.8", t, out, sizeof out);
    assert_string_equal(out, "198.51.100.8");
    auth_client_addr("127.0.0.1", "", " 198.51.100.8 ", t, out, sizeof out);
    assert_string_equal(out, "198.51.100.8");
    auth_client_addr("127.0.0.1", NULL, "not-an-ip", t, out, sizeof out);
    assert_string_equal(out, "127.0.0.1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password),
        cmocka_unit_test(test_password_malformed_hash),
        cmocka_unit_test(test_token),
        cmocka_unit_test(test_token_hash),
        cmocka_unit_test(test_random_hex),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_cookie),
        cmocka_unit_test(test_cookie_limits),
        cmocka_unit_test(test_origin),
        cmocka_unit_test(test_origin_tls),
        cmocka_unit_test(test_addr_list),
        cmocka_unit_test(test_client_addr),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
