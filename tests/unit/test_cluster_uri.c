/* test_cluster_uri.c - the redis setting's URIs (cluster/uri.c): the forms
 * taken, every form refused, and that no reason ever shows the password. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cluster/uri.h"

#define PW "hunter2-Secret"

static struct cluster_uri parse_ok(const char *s)
{
    struct cluster_uri u;
    char err[CLUSTER_URI_ERRLEN] = "";
    memset(&u, 0x55, sizeof u);
    if (cluster_uri_parse(s, &u, err) != 0)
        fail_msg("%s: %s", s, err);
    return u;
}

static void test_tcp_forms(void **state)
{
    struct cluster_uri u = parse_ok("redis://127.0.0.1");
    assert_string_equal(u.host, "127.0.0.1");
    assert_int_equal(u.port, 6379);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.path, "");
    assert_string_equal(u.password, "");
    assert_string_equal(u.user, "");

    u = parse_ok("redis://redis.example:6380/3");
    assert_string_equal(u.host, "redis.example");
    assert_int_equal(u.port, 6380);
    assert_int_equal(u.db, 3);

    u = parse_ok("redis://h/");
    assert_int_equal(u.db, 0);
    u = parse_ok("redis://h:1/");
    assert_int_equal(u.port, 1);
    u = parse_ok("redis://h:65535/2147483647");
    assert_int_equal(u.port, 65535);
    assert_int_equal(u.db, 2147483647);
    u = parse_ok("REDIS://My-Host_1.local:7000");
    assert_string_equal(u.host, "My-Host_1.local");

    u = parse_ok("redis://:" PW "@10.0.0.1:6379/1");
    assert_string_equal(u.password, PW);
    assert_string_equal(u.user, "");
    assert_string_equal(u.host, "10.0.0.1");
    assert_int_equal(u.db, 1);

    u = parse_ok("redis://app:" PW "@h");
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, PW);

    /* Percent-decoding, and the last '@' ends the credentials: '@', '/'
     * and ':' in a password work escaped or not. */
    u = parse_ok("redis://a%40b:p%40ss%2Fw%3Ard%25@h");
    assert_string_equal(u.user, "a@b");
    assert_string_equal(u.password, "p@ss/w:rd%");
    u = parse_ok("redis://:p@ss/w:rd@h:6390/4");
    assert_string_equal(u.password, "p@ss/w:rd");
    assert_string_equal(u.host, "h");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 4);

    u = parse_ok("redis://[::1]");
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 6379);
    u = parse_ok("redis://:x@[2001:db8::7]:6390/5");
    assert_string_equal(u.host, "2001:db8::7");
    assert_int_equal(u.port, 6390);
    assert_int_equal(u.db, 5);
    u = parse_ok("redis://[::ffff:127.0.0.1]:1");
    assert_string_equal(u.host, "::ffff:127.0.0.1");

    /* The longest parts that fit. */
    char s[1200], host[256], pw[256], user[128];
    memset(host, 'h', 255);
    host[255] = '\0';
    memset(pw, 'p', 255);
    pw[255] = '\0';
    memset(user, 'u', 127);
    user[127] = '\0';
    snprintf(s, sizeof s, "redis://%s:%s@%s", user, pw, host);
    u = parse_ok(s);
    assert_string_equal(u.host, host);
    assert_string_equal(u.password, pw);
    assert_string_equal(u.user, user);
}

static void test_unix_forms(void **state)
{
    struct cluster_uri u = parse_ok("unix:///run/redis/redis.sock");
    assert_string_equal(u.path, "/run/redis/redis.sock");
    assert_string_equal(u.host, "");
    assert_int_equal(u.port, 0);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.password, "");

    u = parse_ok("UNIX:///tmp/r.sock?db=7");
    assert_string_equal(u.path, "/tmp/r.sock");
    assert_int_equal(u.db, 7);

    char s[200], path[120];
    memset(path, 'a', sizeof path);
    path[0] = '/';
    path[107] = '\0'; /* 107 bytes: what sun_path holds */
    snprintf(s, sizeof s, "unix://%s", path);
    u = parse_ok(s);
    assert_string_equal(u.path, path);
}

/* Each is refused, with a reason, without touching *u. */
static const struct {
    const char *uri;
    const char *why; /* a word of the reason */
} bad[] = {
    {"", "empty"},
    {"127.0.0.1:6379", "scheme"},
    {"http://h:6379", "scheme"},
    {"postgresql://u:" PW "@h/d", "scheme"},
    {"rediss://:" PW "@h:6379", "TLS"},
    {"redis:h:6379", "malformed"},
    {"redis:/h", "malformed"},
    {"unix:/tmp/r.sock", "malformed"},
    {"redis://", "no host"},
    {"redis://:6379", "no host"},
    {"redis:///0", "no host"},
    {"redis://:" PW "@", "no host"},
    {"redis://:" PW "@:6379/0", "no host"},
    {"redis://[]:6379", "no host"},
    {"redis://h:0", "port"},
    {"redis://h:65536", "port"},
    {"redis://h:99999999999999999999", "port"},
    {"redis://h:", "port"},
    {"redis://h:-1", "port"},
    {"redis://h:+80", "port"},
    {"redis://h:80x", "port"},
    {"redis://h:" PW, "port"},
    {"redis://h:6379:1", "port"},
    {"redis://h/x", "database"},
    {"redis://h/-1", "database"},
    {"redis://h/1/2", "database"},
    {"redis://h/2147483648", "database"},
    {"redis://h/0?db=1", "query"},
    {"redis://h?password=" PW, "query"},
    {"redis://h/0#frag", "unexpected"},
    {"redis://h st", "character"},
    {"redis://h\tst", "control"},
    {"redis://:" PW "\n@h", "control"},
    {"redis://h\xc3\xa9", "character"},
    {"redis://[::1", "closing"},
    {"redis://[::1]x", "unexpected"},
    {"redis://[::g]", "IPv6"},
    {"redis://[127.0.0.1]", "not an IPv6"},
    {"redis://" PW "@h", "without a password"},
    {"redis://user" PW "@h", "without a password"},
    {"redis://:@h", "empty"},
    {"redis://u:@h", "empty"},
    {"redis://:" PW "%@h", "escape"},
    {"redis://:" PW "%4@h", "escape"},
    {"redis://:" PW "%zz@h", "escape"},
    {"redis://:" PW "%00@h", "NUL"},
    {"redis://u%4:" PW "@h", "escape"},
    {"unix://", "absolute"},
    {"unix://tmp/r.sock", "absolute"},
    {"unix://localhost/tmp/r.sock", "absolute"},
    {"unix:///tmp/r.sock?db=x", "database"},
    {"unix:///tmp/r.sock?db=", "database"},
    {"unix:///tmp/r.sock?db=1&password=" PW, "query"},
    {"unix:///tmp/r.sock?password=" PW, "query"},
    {"unix:///tmp/r.sock#x", "unexpected"},
};

static void test_bad_forms(void **state)
{
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct cluster_uri u, before;
        char err[CLUSTER_URI_ERRLEN] = "";
        memset(&u, 0x55, sizeof u);
        before = u;
        if (cluster_uri_parse(bad[i].uri, &u, err) != -1)
            fail_msg("accepted: %s", bad[i].uri);
        if (!strstr(err, bad[i].why))
            fail_msg("%s: reason \"%s\" lacks \"%s\"", bad[i].uri, err,
                     bad[i].why);
        /* No reason shows the password, nor any part of the URI. */
        if (strstr(err, PW) || strstr(err, "hunter2"))
            fail_msg("%s: the reason shows the password: %s", bad[i].uri,
                     err);
        assert_memory_equal(&u, &before, sizeof u);
    }
    assert_int_equal(cluster_uri_parse(NULL, NULL, NULL), -1);
    struct cluster_uri u;
    assert_int_equal(cluster_uri_parse("nope://", &u, NULL), -1);
}

static void test_too_long(void **state)
{
    char s[2000], part[600], err[CLUSTER_URI_ERRLEN];
    struct cluster_uri u;

    memset(part, 'h', 256);
    part[256] = '\0';
    snprintf(s, sizeof s, "redis://%s:6379", part);
    assert_int_equal(cluster_uri_parse(s, &u, err), -1);
    assert_non_null(strstr(err, "host is longer than 255"));

    memset(part, 'p', 256);
    part[256] = '\0';
    snprintf(s, sizeof s, "redis://:%s@h", part);
    assert_int_equal(cluster_uri_parse(s, &u, err), -1);
    assert_non_null(strstr(err, "password is longer than 255"));
    assert_null(strstr(err, "ppp"));
    /* Escapes count as the byte they stand for: 255 of them fit. */
    char *p = s + sprintf(s, "redis://:");
    for (int i = 0; i < 255; i++)
        p += sprintf(p, "%%41");
    sprintf(p, "@h");
    assert_int_equal(cluster_uri_parse(s, &u, err), 0);
    assert_int_equal(strlen(u.password), 255);

    memset(part, 'u', 128);
    part[128] = '\0';
    snprintf(s, sizeof s, "redis://%s:" PW "@h", part);
    assert_int_equal(cluster_uri_parse(s, &u, err), -1);
    assert_non_null(strstr(err, "user name is longer than 127"));
    assert_null(strstr(err, PW));

    memset(part, 'a', 108);
    part[0] = '/';
    part[108] = '\0';
    snprintf(s, sizeof s, "unix://%s", part);
    assert_int_equal(cluster_uri_parse(s, &u, err), -1);
    assert_non_null(strstr(err, "longer than 107"));
}

static void test_redacted(void **state)
{
    char buf[600];
    struct cluster_uri u = parse_ok("redis://:" PW "@127.0.0.1:6379/0");
    assert_string_equal(cluster_uri_redacted(&u, buf, sizeof buf),
                        "redis://***@127.0.0.1:6379/0");
    u = parse_ok("redis://app:" PW "@h:7000/2");
    assert_string_equal(cluster_uri_redacted(&u, buf, sizeof buf),
                        "redis://***@h:7000/2");
    u = parse_ok("redis://h");
    assert_string_equal(cluster_uri_redacted(&u, buf, sizeof buf),
                        "redis://h:6379/0");
    u = parse_ok("redis://:" PW "@[::1]:6390/1");
    assert_string_equal(cluster_uri_redacted(&u, buf, sizeof buf),
                        "redis://***@[::1]:6390/1");
    u = parse_ok("unix:///run/redis.sock");
    assert_string_equal(cluster_uri_redacted(&u, buf, sizeof buf),
                        "unix:///run/redis.sock");
    u = parse_ok("unix:///run/redis.sock?db=3");
    assert_string_equal(cluster_uri_redacted(&u, buf, sizeof buf),
                        "unix:///run/redis.sock?db=3");
    /* A short buffer is cut, still terminated; none is left alone. */
    u = parse_ok("redis://h");
    assert_string_equal(cluster_uri_redacted(&u, buf, 9), "redis://");
    buf[0] = 'x';
    assert_ptr_equal(cluster_uri_redacted(&u, buf, 0), buf);
    assert_int_equal(buf[0], 'x');
}

/* The redacted form parses back to the same address (less the secret). */
static void test_redacted_round_trip(void **state)
{
    static const char *uris[] = {
        "redis://h", "redis://[::1]:6390/9", "redis://10.1.2.3:1/0",
        "unix:///tmp/x.sock", "unix:///tmp/x.sock?db=12",
    };
    for (size_t i = 0; i < sizeof uris / sizeof *uris; i++) {
        char buf[600];
        struct cluster_uri a = parse_ok(uris[i]);
        struct cluster_uri b = parse_ok(cluster_uri_redacted(&a, buf,
                                                             sizeof buf));
        assert_string_equal(a.host, b.host);
        assert_string_equal(a.path, b.path);
        assert_int_equal(a.port, b.port);
        assert_int_equal(a.db, b.db);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp_forms),
        cmocka_unit_test(test_unix_forms),
        cmocka_unit_test(test_bad_forms),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_redacted),
        cmocka_unit_test(test_redacted_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
