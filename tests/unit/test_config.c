/* test_config.c - defaults, parsing, file and environment (src/config.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

/* Writes text to a new temporary file; returns its path (static). */
static const char *write_file(const char *text)
{
    static char path[64];
    strcpy(path, "/tmp/test_config_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t n = strlen(text);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    close(fd);
    return path;
}

static void test_defaults(void **state)
{
    struct config c;
    memset(&c, 0x55, sizeof c);
    config_defaults(&c);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_string_equal(c.db, "presenced.db");
    assert_string_equal(c.jwt_secret, "");
    assert_string_equal(c.allowed_origins, "");
    assert_string_equal(c.log_level, "info");
    assert_int_equal(c.grace_ms, 5000);
    assert_int_equal(c.heartbeat_ms, 30000);
    assert_int_equal(c.away_after_ms, 5 * 60000);
    assert_int_equal(c.offline_after_ms, 30 * 60000);
    assert_int_equal(c.stale_after_ms, 30 * 60000);
    assert_int_equal(c.login_grace_ms, 60000);
    assert_int_equal(c.restart_grace_ms, 30000);
    assert_int_equal(c.session_ttl_ms, 30LL * 86400000);
    assert_int_equal(c.flush_ms, 15000);
    assert_int_equal(c.sweep_ms, 60000);
    assert_int_equal(c.max_msg, 65536);
    assert_int_equal(c.login_limit, 10);
    assert_int_equal(c.login_window_ms, 5 * 60000);
    assert_int_equal(c.min_password, 8);
    assert_int_equal(c.demo, 0);
    assert_string_equal(c.redis, "");
    assert_string_equal(c.cluster, "presenced");
    assert_string_equal(c.node_id, "");
    assert_int_equal(c.node_ttl_ms, 5000);
}

static void test_durations(void **state)
{
    static const struct {
        const char *s;
        int rc;
        int64_t ms;
    } cases[] = {
        {"250ms", 0, 250},
        {"5s", 0, 5000},
        {"30m", 0, 1800000},
        {"1h", 0, 3600000},
        {"2d", 0, 172800000},
        {"10", 0, 10000},
        {"0", 0, 0},
        {"0ms", 0, 0},
        {"007s", 0, 7000},
        {"9223372036854775807ms", 0, INT64_MAX},
        {"", -1, 0},
        {"-1s", -1, 0},
        {"+1s", -1, 0},
        {"5x", -1, 0},
        {"5 s", -1, 0},
        {" 5s", -1, 0},
        {"5s ", -1, 0},
        {"1.5s", -1, 0},
        {"5S", -1, 0},
        {"5sec", -1, 0},
        {"s", -1, 0},
        {"ms", -1, 0},
        {"5ms5", -1, 0},
        {"99999999999999999999h", -1, 0},
        {"9223372036854775808ms", -1, 0},
        {"9223372036854775807s", -1, 0},
        {"106751991167301d", -1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = -12345;
        int rc = config_parse_duration(cases[i].s, &ms);
        if (rc != cases[i].rc)
            fail_msg("duration \"%s\": rc %d", cases[i].s, rc);
        if (rc == 0 && ms != cases[i].ms)
            fail_msg("duration \"%s\": %lld ms", cases[i].s, (long long)ms);
        if (rc != 0 && ms != -12345)
            fail_msg("duration \"%s\": output written on error", cases[i].s);
    }
    int64_t ms;
    assert_int_equal(config_parse_duration(NULL, &ms), -1);
}

static void test_sizes(void **state)
{
    static const struct {
        const char *s;
        int rc;
        int64_t bytes;
    } cases[] = {
        {"64k", 0, 65536},     {"1m", 0, 1048576}, {"1g", 0, 1073741824},
        {"100", 0, 100},       {"0", 0, 0},        {"", -1, 0},
        {"-1", -1, 0},         {"1kb", -1, 0},     {"1K", -1, 0},
        {"1 k", -1, 0},        {"k", -1, 0},       {"1t", -1, 0},
        {"9999999999999g", -1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t b = -1;
        int rc = config_parse_size(cases[i].s, &b);
        if (rc != cases[i].rc || (rc == 0 && b != cases[i].bytes))
            fail_msg("size \"%s\": rc %d, %lld", cases[i].s, rc,
                     (long long)b);
    }
}

static void test_set_each_type(void **state)
{
    struct config c;
    char err[CONFIG_ERRLEN];
    config_defaults(&c);
    assert_int_equal(config_set(&c, "db", "/tmp/x.db", err), 0);
    assert_string_equal(c.db, "/tmp/x.db");
    assert_int_equal(config_set(&c, "jwt_secret", "s3cr3t # not a comment",
                                err),
                     0);
    assert_string_equal(c.jwt_secret, "s3cr3t # not a comment");
    assert_int_equal(config_set(&c, "listen", "0.0.0.0:0", err), 0);
    assert_string_equal(c.listen, "0.0.0.0:0");
    assert_int_equal(config_set(&c, "log_level", "debug", err), 0);
    assert_string_equal(c.log_level, "debug");
    assert_int_equal(config_set(&c, "grace", "0", err), 0); /* may be 0 */
    assert_int_equal(c.grace_ms, 0);
    assert_int_equal(config_set(&c, "loops", "0", err), 0); /* per core */
    assert_int_equal(c.loops, 0);
    assert_int_equal(config_set(&c, "loops", "64", err), 0);
    assert_int_equal(c.loops, 64);
    assert_int_not_equal(config_set(&c, "loops", "65", err), 0);
    assert_int_not_equal(config_set(&c, "loops", "-1", err), 0);
    assert_int_not_equal(config_set(&c, "loops", "two", err), 0);
    assert_int_equal(c.loops, 64); /* refused values change nothing */
    assert_int_equal(config_set(&c, "heartbeat", "100ms", err), 0);
    assert_int_equal(c.heartbeat_ms, 100);
    assert_int_equal(config_set(&c, "session_ttl", "7d", err), 0);
    assert_int_equal(c.session_ttl_ms, 7LL * 86400000);
    assert_int_equal(config_set(&c, "max_msg", "1k", err), 0);
    assert_int_equal(c.max_msg, 1024);
    assert_int_equal(config_set(&c, "max_msg", "16m", err), 0);
    assert_int_equal(c.max_msg, 16 << 20);
    assert_int_equal(config_set(&c, "login_limit", "3", err), 0);
    assert_int_equal(c.login_limit, 3);
    /* Dashes and underscores are interchangeable in keys. */
    assert_int_equal(config_set(&c, "away-after", "90s", err), 0);
    assert_int_equal(c.away_after_ms, 90000);
    assert_int_equal(config_set(&c, "allowed-origins", "*", err), 0);
    assert_string_equal(c.allowed_origins, "*");

    static const struct {
        const char *v;
        int want;
    } bools[] = {{"1", 1},    {"0", 0},   {"true", 1}, {"false", 0},
                 {"yes", 1},  {"no", 0},  {"on", 1},   {"off", 0},
                 {"TRUE", 1}, {"Off", 0}};
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
        c.demo = -1;
        assert_int_equal(config_set(&c, "demo", bools[i].v, err), 0);
        assert_int_equal(c.demo, bools[i].want);
    }

    static const char *listens[] = {"127.0.0.1:8080", "localhost:1",
                                    "[::1]:65535", "example.com:443",
                                    "0.0.0.0:0"};
    for (size_t i = 0; i < sizeof listens / sizeof listens[0]; i++)
        if (config_set(&c, "listen", listens[i], err) != 0)
            fail_msg("listen %s: %s", listens[i], err);
}

static void test_set_errors(void **state)
{
    static const struct {
        const char *key, *value, *want;
    } cases[] = {
        {"grace", "5 parsecs",
         "grace: bad duration \"5 parsecs\" (use 250ms, 5s, 30m, 1h)"},
        {"heartbeat", "99ms",
         "heartbeat: \"99ms\" is too short (at least 100ms)"},
        {"away_after", "0", "away_after: \"0\" is too short (at least 1ms)"},
        {"session_ttl", "3651d",
         "session_ttl: \"3651d\" is too long (at most 3650d)"},
        {"flush", "-1s",
         "flush: bad duration \"-1s\" (use 250ms, 5s, 30m, 1h)"},
        {"max_msg", "1023", "max_msg: \"1023\" is too small (at least 1k)"},
        {"max_msg", "17m", "max_msg: \"17m\" is too large (at most 16m)"},
        {"max_msg", "lots",
         "max_msg: bad size \"lots\" (use 64k, 1m, or bytes)"},
        {"login_limit", "0", "login_limit: \"0\" is too small (at least 1)"},
        {"login_limit", "ten", "login_limit: bad number \"ten\""},
        {"login_limit", "-3", "login_limit: bad number \"-3\""},
        {"trusted_proxies", "10.0.0.0/33",
         "trusted_proxies: bad address list \"10.0.0.0/33\" (use addresses "
         "or CIDR blocks, e.g. 127.0.0.1, ::1, 10.0.0.0/8)"},
        {"trusted_proxies", "proxy.example",
         "trusted_proxies: bad address list \"proxy.example\" (use "
         "addresses or CIDR blocks, e.g. 127.0.0.1, ::1, 10.0.0.0/8)"},
        {"login_queue", "0", "login_queue: \"0\" is too small (at least 1)"},
        {"min_password", "0", "min_password: \"0\" is too small (at least 1)"},
        {"min_password", "1024",
         "min_password: \"1024\" is too large (at most 1023)"},
        {"demo", "maybe",
         "demo: bad boolean \"maybe\" (use true/false, yes/no, on/off, 1/0)"},
        {"log_level", "verbose",
         "log_level: bad level \"verbose\" (use debug, info, warn, error)"},
        {"log_level", "INFO",
         "log_level: bad level \"INFO\" (use debug, info, warn, error)"},
        {"listen", "8080",
         "listen: bad address \"8080\" (use HOST:PORT, e.g. 127.0.0.1:8080)"},
        {"nosuch", "1", "unknown setting \"nosuch\""},
        {"Grace", "1", "unknown setting \"Grace\""},
        {"grace ", "1", "unknown setting \"grace \""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config c, before;
        char err[CONFIG_ERRLEN] = "";
        config_defaults(&c);
        before = c;
        assert_int_equal(config_set(&c, cases[i].key, cases[i].value, err),
                         -1);
        assert_string_equal(err, cases[i].want);
        /* A refused value leaves the config as it was. */
        assert_memory_equal(&c, &before, sizeof c);
    }
}

static void test_listen_errors(void **state)
{
    static const char *bad[] = {
        "", ":8080", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
        "127.0.0.1:99999999", "127.0.0.1:-1", "127.0.0.1:80x",
        "127.0.0.1: 80", "::1:8080", "[::1]8080", "[]:80", "[::1:80",
        "a b:80", "host:+80",
    };
    struct config c;
    char err[CONFIG_ERRLEN];
    config_defaults(&c);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (config_set(&c, "listen", bad[i], err) != -1)
            fail_msg("listen \"%s\" accepted", bad[i]);
        if (!strstr(err, "listen: bad address"))
            fail_msg("listen \"%s\": %s", bad[i], err);
    }
    assert_string_equal(c.listen, "127.0.0.1:8080");
}

static void test_too_long_string(void **state)
{
    struct config c;
    char err[CONFIG_ERRLEN], v[2048];
    config_defaults(&c);
    memset(v, 's', sizeof v);
    v[511] = '\0';
    assert_int_equal(config_set(&c, "jwt_secret", v, err), 0);
    assert_int_equal(strlen(c.jwt_secret), 511);
    v[511] = 's';
    v[512] = '\0';
    assert_int_equal(config_set(&c, "jwt_secret", v, err), -1);
    /* The secret is not quoted back into a message that may be logged. */
    assert_null(strstr(err, "sss"));
    assert_string_equal(err,
                        "jwt_secret: value too long (512 bytes, at most 511)");
    memset(v, 'd', 1024);
    v[1024] = '\0';
    assert_int_equal(config_set(&c, "db", v, err), -1);
    assert_string_equal(err, "db: value too long (1024 bytes, at most 1023)");
    /* A very long bad value is cut in the message, which still fits. */
    memset(v, '9', sizeof v - 1);
    v[sizeof v - 1] = '\0';
    assert_int_equal(config_set(&c, "grace", v, err), -1);
    assert_true(strlen(err) < CONFIG_ERRLEN);
    assert_true(strncmp(err, "grace: bad duration \"999", 24) == 0);
}

static void test_file(void **state)
{
    const char *path = write_file(
        "\xef\xbb\xbf# presenced test config\n"
        "\n"
        "   # indented comment\n"
        "listen = 0.0.0.0:9000\n"
        "db=\"/var/lib/presenced/p.db\"\n"
        "jwt-secret = \"  spaced # secret  \"\n"
        "\tgrace\t=\t250ms  \r\n"
        "away-after = 2m\n"
        "allowed_origins = http://a.example, http://b.example\n"
        "log_level = warn\n"
        "max_msg = 1m\n"
        "demo = yes\n"
        "login_limit = 5\n"
        "db = \"\"\n"
        "heartbeat = 10s");  /* no final newline */
    struct config c;
    char err[CONFIG_ERRLEN] = "";
    config_defaults(&c);
    int rc = config_load_file(&c, path, err);
    unlink(path);
    if (rc)
        fail_msg("%s", err);
    assert_string_equal(c.listen, "0.0.0.0:9000");
    assert_string_equal(c.db, ""); /* the later line wins */
    assert_string_equal(c.jwt_secret, "  spaced # secret  ");
    assert_int_equal(c.grace_ms, 250);
    assert_int_equal(c.away_after_ms, 120000);
    assert_string_equal(c.allowed_origins,
                        "http://a.example, http://b.example");
    assert_string_equal(c.log_level, "warn");
    assert_int_equal(c.max_msg, 1 << 20);
    assert_int_equal(c.demo, 1);
    assert_int_equal(c.login_limit, 5);
    assert_int_equal(c.heartbeat_ms, 10000);
    /* Untouched settings keep their defaults. */
    assert_int_equal(c.sweep_ms, 60000);
}

static void check_file_error(const char *text, const char *want_suffix)
{
    const char *path = write_file(text);
    char want[512], err[CONFIG_ERRLEN] = "";
    struct config c;
    config_defaults(&c);
    snprintf(want, sizeof want, "%s:%s", path, want_suffix);
    int rc = config_load_file(&c, path, err);
    unlink(path);
    assert_int_equal(rc, -1);
    assert_string_equal(err, want);
}

static void test_file_errors(void **state)
{
    check_file_error("# ok\ngrace = 1s\nfoo = 1\n",
                     "3: unknown setting \"foo\"");
    check_file_error("\n\n\n\ngrace 5s\n", "5: expected key = value");
    check_file_error("= 5s\n", "1: expected key = value");
    check_file_error("grace = 5 parsecs\n",
                     "1: grace: bad duration \"5 parsecs\" "
                     "(use 250ms, 5s, 30m, 1h)");
    check_file_error("db = \"open\n", "1: db: missing closing quote");
    check_file_error("db = \"\n", "1: db: missing closing quote");
    check_file_error("grace = 1s # trailing comments are values\n",
                     "1: grace: bad duration \"1s # trailing comments are "
                     "values\" (use 250ms, 5s, 30m, 1h)");

    char err[CONFIG_ERRLEN];
    struct config c;
    config_defaults(&c);
    assert_int_equal(config_load_file(&c, "/nonexistent/presenced.conf", err),
                     -1);
    assert_string_equal(err,
                        "/nonexistent/presenced.conf: No such file or "
                        "directory");
    assert_int_equal(config_load_file(&c, "/tmp", err), -1);
    assert_true(strncmp(err, "/tmp: ", 6) == 0);
}

static void test_env(void **state)
{
    char *envp[] = {
        "PATH=/usr/bin",
        "PRESENCED_CONFIG=/etc/presenced.conf",
        "PRESENCED_BIN=/tmp/presenced",
        "PRESENCED_GRACE=2s",
        "PRESENCED_JWT_SECRET=from-env",
        "PRESENCED_AWAY_AFTER=1m",
        "presenced_grace=9s", /* not ours: the prefix is upper case */
        "PRESENCED",
        NULL,
    };
    struct config c;
    char err[CONFIG_ERRLEN] = "";
    config_defaults(&c);
    const char *path = write_file("grace = 7s\njwt_secret = from-file\n"
                                  "heartbeat = 5s\n");
    assert_int_equal(config_load_file(&c, path, err), 0);
    unlink(path);
    assert_int_equal(c.grace_ms, 7000);
    if (config_load_env(&c, envp, err))
        fail_msg("%s", err);
    /* File then environment: the environment wins where both set. */
    assert_int_equal(c.grace_ms, 2000);
    assert_string_equal(c.jwt_secret, "from-env");
    assert_int_equal(c.away_after_ms, 60000);
    assert_int_equal(c.heartbeat_ms, 5000);

    assert_int_equal(config_load_env(&c, NULL, err), 0);
    char *empty[] = {NULL};
    assert_int_equal(config_load_env(&c, empty, err), 0);
}

static void test_env_errors(void **state)
{
    struct config c;
    char err[CONFIG_ERRLEN];
    config_defaults(&c);

    char *typo[] = {"PRESENCED_JWT_SECERT=x", NULL};
    assert_int_equal(config_load_env(&c, typo, err), -1);
    assert_string_equal(err, "PRESENCED_JWT_SECERT: unknown setting "
                             "(see --help)");
    char *lower[] = {"PRESENCED_grace=1s", NULL};
    assert_int_equal(config_load_env(&c, lower, err), -1);
    char *dash[] = {"PRESENCED_AWAY-AFTER=1s", NULL};
    assert_int_equal(config_load_env(&c, dash, err), -1);
    char *bare[] = {"PRESENCED_=1", NULL};
    assert_int_equal(config_load_env(&c, bare, err), -1);
    char *bad[] = {"PRESENCED_GRACE=soon", NULL};
    assert_int_equal(config_load_env(&c, bad, err), -1);
    assert_string_equal(err, "PRESENCED_GRACE: bad duration \"soon\" "
                             "(use 250ms, 5s, 30m, 1h)");
    assert_int_equal(c.grace_ms, 5000);
}

struct each_acc {
    int n;
    int saw_jwt, saw_grace;
};

static void each_cb(void *ud, const char *key, const char *env,
                    const char *def, const char *help)
{
    struct each_acc *a = ud;
    a->n++;
    assert_non_null(def);
    assert_true(strlen(help) > 0);
    if (strcmp(key, "jwt_secret") == 0) {
        assert_string_equal(env, "PRESENCED_JWT_SECRET");
        assert_string_equal(def, "");
        a->saw_jwt = 1;
    }
    if (strcmp(key, "grace") == 0) {
        assert_string_equal(env, "PRESENCED_GRACE");
        assert_string_equal(def, "5s");
        a->saw_grace = 1;
    }
    /* Every listed setting can be set by its key and env name. */
    struct config c;
    char err[CONFIG_ERRLEN], var[1200];
    config_defaults(&c);
    if (config_set(&c, key, def, err))
        fail_msg("default of %s: %s", key, err);
    snprintf(var, sizeof var, "%s=%s", env, def);
    char *envp[] = {var, NULL};
    if (config_load_env(&c, envp, err))
        fail_msg("%s: %s", env, err);
}

/* db picks the backend by scheme: a path, postgresql:// or postgres://;
 * another scheme is a usage error that never echoes the value (a URI
 * may hold a password). */
static void test_db_scheme(void **state)
{
    struct config c;
    char err[256];
    (void)state;
    config_defaults(&c);
    assert_int_equal(config_set(&c, "db", "/var/lib/presenced.db", err), 0);
    assert_int_equal(config_set(&c, "db", "postgresql://u:pw@h:5432/d", err),
                     0);
    assert_string_equal(c.db, "postgresql://u:pw@h:5432/d");
    assert_int_equal(config_set(&c, "db", "POSTGRES://u@h/d", err), 0);
    assert_int_equal(config_set(&c, "db", "mysql://u:hunter2@h/d", err), -1);
    assert_non_null(strstr(err, "unknown database scheme"));
    assert_null(strstr(err, "hunter2"));
    assert_string_equal(c.db, "POSTGRES://u@h/d"); /* unchanged */
    /* Not a scheme: a file name with "://" after a slash. */
    assert_int_equal(config_set(&c, "db", "./a://b.db", err), 0);
    assert_int_equal(config_set(&c, "db_pool", "0", err), -1);
    assert_int_equal(config_set(&c, "db_pool", "8", err), 0);
    assert_int_equal(c.db_pool, 8);
}

/* docs/cluster.md: redis is empty or a URI that cluster/uri.c takes, and
 * a refused one is never quoted back (it may hold a password). */
static void test_redis(void **state)
{
    struct config c;
    char err[CONFIG_ERRLEN];
    config_defaults(&c);
    assert_int_equal(config_set(&c, "redis", "redis://127.0.0.1:6379/0", err),
                     0);
    assert_int_equal(config_set(&c, "redis", "redis://:hunter2@h", err), 0);
    assert_string_equal(c.redis, "redis://:hunter2@h");
    assert_int_equal(config_set(&c, "redis", "unix:///run/r.sock", err), 0);
    assert_int_equal(config_set(&c, "redis", "", err), 0);
    assert_string_equal(c.redis, "");

    static const char *bad[] = {
        "mysql://:hunter2@h",   "redis://:hunter2@h:0",
        "redis://:hunter2@",    "redis://:hunter2@h/x",
        "redis://h:hunter2",    "unix://hunter2/r.sock",
        "redis://hunter2@h",    "rediss://:hunter2@h",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (config_set(&c, "redis", bad[i], err) != -1)
            fail_msg("accepted %s", bad[i]);
        if (strncmp(err, "redis: bad Redis URI: ", 22) != 0 ||
            strstr(err, "hunter2"))
            fail_msg("%s: %s", bad[i], err);
    }
    assert_string_equal(c.redis, ""); /* unchanged */
    char *envp[] = {"PRESENCED_REDIS=redis://:hunter2@h:99999", NULL};
    assert_int_equal(config_load_env(&c, envp, err), -1);
    assert_non_null(strstr(err, "PRESENCED_REDIS: bad Redis URI: "));
    assert_null(strstr(err, "hunter2"));
}

static void test_cluster_names(void **state)
{
    struct config c;
    char err[CONFIG_ERRLEN], long_name[200];
    config_defaults(&c);
    assert_int_equal(config_set(&c, "cluster", "prod-eu_1.a", err), 0);
    assert_string_equal(c.cluster, "prod-eu_1.a");
    assert_int_equal(config_set(&c, "cluster", "", err), -1);
    assert_string_equal(err, "cluster: bad name \"\" (1 to 64 of A-Z a-z "
                             "0-9 _ . -)");
    /* No ':': a name must not reach into another cluster's keys. */
    assert_int_equal(config_set(&c, "cluster", "a:b", err), -1);
    assert_int_equal(config_set(&c, "cluster", "a b", err), -1);
    assert_int_equal(config_set(&c, "cluster", "caf\xc3\xa9", err), -1);
    memset(long_name, 'x', 64);
    long_name[64] = '\0';
    assert_int_equal(config_set(&c, "cluster", long_name, err), 0);
    long_name[64] = 'x';
    long_name[65] = '\0';
    assert_int_equal(config_set(&c, "cluster", long_name, err), -1);
    assert_non_null(strstr(err, "at most 64"));
    assert_string_equal(c.cluster, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                                   "xxxxxxxxxxxxxxxxxxxxxxxx");

    assert_int_equal(config_set(&c, "node_id", "web-1.example:8080", err), 0);
    assert_string_equal(c.node_id, "web-1.example:8080");
    assert_int_equal(config_set(&c, "node_id", "", err), 0);
    assert_int_equal(config_set(&c, "node_id", "a/b", err), -1);
    assert_string_equal(err, "node_id: bad id \"a/b\" (1 to 128 of A-Z a-z "
                             "0-9 _ . : -, or \"\" for host name:port)");
    memset(long_name, 'n', 128);
    long_name[128] = '\0';
    assert_int_equal(config_set(&c, "node_id", long_name, err), 0);
    long_name[128] = 'n';
    long_name[129] = '\0';
    assert_int_equal(config_set(&c, "node_id", long_name, err), -1);

    assert_int_equal(config_set(&c, "node_ttl", "1s", err), 0);
    assert_int_equal(c.node_ttl_ms, 1000);
    assert_int_equal(config_set(&c, "node_ttl", "1h", err), 0);
    assert_int_equal(c.node_ttl_ms, 3600000);
    assert_int_equal(config_set(&c, "node_ttl", "999ms", err), -1);
    assert_string_equal(err, "node_ttl: \"999ms\" is too short (at least "
                             "1s)");
    assert_int_equal(config_set(&c, "node_ttl", "61m", err), -1);
    assert_string_equal(err, "node_ttl: \"61m\" is too long (at most 1h)");
}

static void test_node_id(void **state)
{
    struct config c;
    char err[CONFIG_ERRLEN], id[129], host[256], want[300];
    config_defaults(&c);

    /* The default: host name and the port of listen. */
    assert_int_equal(gethostname(host, sizeof host), 0);
    assert_int_equal(config_set(&c, "listen", "[::1]:9123", err), 0);
    assert_int_equal(config_node_id(&c, id, sizeof id), 0);
    snprintf(want, sizeof want, "%s:9123", host);
    for (char *p = want; *p && p < want + strlen(host); p++)
        if (!(*p == '-' || *p == '.' || *p == '_' ||
              (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
              (*p >= 'A' && *p <= 'Z')))
            *p = '_';
    assert_string_equal(id, want);
    /* Whatever the host name, what comes out is a valid node_id. */
    assert_int_equal(config_set(&c, "node_id", id, err), 0);
    assert_int_equal(config_set(&c, "node_id", "", err), 0);
    /* Too short a buffer is refused, not cut. */
    assert_int_equal(config_node_id(&c, id, strlen(want)), -1);
    assert_int_equal(config_node_id(&c, id, strlen(want) + 1), 0);

    /* An explicit id is returned as is. */
    assert_int_equal(config_set(&c, "node_id", "n1", err), 0);
    assert_int_equal(config_node_id(&c, id, sizeof id), 0);
    assert_string_equal(id, "n1");
    assert_int_equal(config_node_id(&c, id, 2), -1);
    assert_int_equal(config_node_id(&c, id, 3), 0);
}

static void test_each(void **state)
{
    struct each_acc a = {0};
    config_each(each_cb, &a);
    assert_int_equal(a.n, 40);
    assert_true(a.saw_jwt && a.saw_grace);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_set_each_type),
        cmocka_unit_test(test_set_errors),
        cmocka_unit_test(test_listen_errors),
        cmocka_unit_test(test_too_long_string),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_env_errors),
        cmocka_unit_test(test_each),
        cmocka_unit_test(test_db_scheme),
        cmocka_unit_test(test_redis),
        cmocka_unit_test(test_cluster_names),
        cmocka_unit_test(test_node_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
