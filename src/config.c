/* config.c - settings from defaults, a file, the environment and flags.
 *
 * One table below lists every setting: its key, its type, where it lives in
 * struct config, its default (as text, parsed by the same code as user
 * input, so a default can never be something a user could not type), its
 * limits and its help line. Every source of settings - defaults, file,
 * environment, flags - goes through the one apply() that parses and
 * validates by type, so the rules cannot drift apart between sources. */
#include "config.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <unistd.h>

#include "auth/auth.h"
#include "cluster/uri.h"
#include "store/store.h"
#include "util/log.h"
#include "util/xalloc.h"
#include "util/errf.h"

enum type {
    T_STRING,
    T_DURATION,
    T_SIZE,
    T_INT,
    T_BOOL,
    T_LEVEL,
    T_LISTEN,
    T_ADDRS,
    T_REDIS,   /* "" or a URI of cluster/uri.h */
    T_CLUSTER, /* a name: min..size-1 of [A-Za-z0-9_.-] */
    T_NODE_ID  /* the same and ':' */
};

struct setting {
    const char *key;
    enum type type;
    size_t offset;
    size_t size;      /* of the member: array size for strings */
    int64_t min, max; /* numbers, after parsing (ms, bytes, count); names:
                         the length */
    const char *def;
    const char *help;
};

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
/* Durations are added to "now" in ms all over the server; ten years keeps
 * every such sum far from int64 overflow. */
#define DUR_MAX (3650 * DAY)
#define KIB 1024LL
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)

#define AT(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)
#define STR(k, f, d, h)                                                        \
    {                                                                          \
        k, T_STRING, AT(f), 0, 0, d, h                                         \
    }
#define DUR(k, f, lo, d, h)                                                    \
    {                                                                          \
        k, T_DURATION, AT(f), lo, DUR_MAX, d, h                                \
    }

static const struct setting settings[] = {
    {"listen", T_LISTEN, AT(listen), 0, 0, "127.0.0.1:8080",
     "address to listen on, HOST:PORT (port 0: any free port)"},
    {"loops", T_INT, AT(loops), 0, 64, "0",
     "event loops (threads) serving connections; 0: one per core"},
    STR("db", db, "presenced.db",
        "SQLite database file, or a postgresql:// URI"),
    {"db_pool", T_INT, AT(db_pool), 1, STORE_POOL_MAX, "4",
     "PostgreSQL connections, each on a store thread (SQLite: always 1)"},
    {"redis", T_REDIS, AT(redis), 0, 0, "",
     "Redis of the cluster: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or "
     "unix:///PATH[?db=N] (\"\": no cluster, a single server)"},
    {"cluster", T_CLUSTER, AT(cluster), 1, 64, "presenced",
     "cluster name, prefix of every Redis key and channel, so that "
     "clusters can share a Redis (1 to 64 of A-Z a-z 0-9 _ . -)"},
    {"node_id", T_NODE_ID, AT(node_id), 0, 128, "",
     "this node's id in the cluster, stable across restarts (1 to 128 of "
     "A-Z a-z 0-9 _ . : -; \"\": host name:listen port)"},
    {"node_ttl", T_DURATION, AT(node_ttl_ms), SEC, HOUR, "5s",
     "a cluster node silent this long is dead (its liveness key expires)"},
    STR("jwt_secret", jwt_secret, "",
        "HS256 secret for bearer JWTs (\"\": none; --demo makes one)"),
    STR("allowed_origins", allowed_origins, "",
        "comma-separated browser origins allowed, * for any "
        "(\"\": the server's own)"),
    {"log_level", T_LEVEL, AT(log_level), 0, 0, "info",
     "debug, info, warn or error"},
    DUR("grace", grace_ms, 0, "5s",
        "keep a user's status this long after the last connection closes"),
    DUR("heartbeat", heartbeat_ms, 100, "30s",
        "interval at which clients must show they are alive"),
    DUR("away_after", away_after_ms, 1, "5m",
        "idle time after which a client reports AWAY"),
    DUR("offline_after", offline_after_ms, 1, "30m",
        "idle time after which a client reports OFFLINE"),
    DUR("stale_after", stale_after_ms, 1, "30m",
        "users unseen this long with no connection go OFFLINE"),
    DUR("login_grace", login_grace_ms, 1, "60s",
        "a login counts as ONLINE this long before a connection opens"),
    DUR("restart_grace", restart_grace_ms, 1, "30s",
        "after a restart, stored statuses are kept this long"),
    DUR("session_ttl", session_ttl_ms, 1, "30d", "login session lifetime"),
    DUR("flush", flush_ms, 1, "15s",
        "interval of batched last_seen writes to the database"),
    DUR("sweep", sweep_ms, 1, "1m", "interval of the stale-user sweep"),
    {"max_msg", T_SIZE, AT(max_msg), KIB, 16 * MIB, "64k",
     "largest WebSocket message accepted"},
    {"login_limit", T_INT, AT(login_limit), 1, 1000000, "10",
     "failed logins allowed per window, per address and per email"},
    DUR("login_window", login_window_ms, 1, "5m",
        "window of the failed-login limit"),
    {"login_queue", T_INT, AT(login_queue), 1, 1000000, "64",
     "logins waiting for a password check at once (503 past it)"},
    DUR("login_timeout", login_timeout_ms, 1, "10s",
        "a login not checked within this is answered 503, unchecked"),
    {"trusted_proxies", T_ADDRS, AT(trusted_proxies), 0, 0, "",
     "proxy addresses/CIDRs whose X-Forwarded-For, X-Real-IP and "
     "X-Forwarded-Proto are believed"},
    {"secure_cookies", T_BOOL, AT(secure_cookies), 0, 1, "0",
     "always mark the session cookie Secure (it is anyway when a trusted "
     "proxy says https)"},
    {"max_sessions", T_INT, AT(max_sessions), 1, 1000000, "50",
     "live login sessions per user; the oldest is revoked past it"},
    /* At most what POST /api/login takes (1023 bytes): a longer minimum
     * would leave no password that can both be set and used. */
    {"min_password", T_INT, AT(min_password), 1, 1023, "8",
     "shortest password `user add` accepts, in characters"},
    DUR("header_timeout", header_timeout_ms, 100, "10s",
        "time allowed for a request's line and headers (slowloris)"),
    {"max_body", T_SIZE, AT(max_body), KIB, 16 * MIB, "64k",
     "largest HTTP request body accepted (413 past it)"},
    {"max_out", T_SIZE, AT(max_out), 64 * KIB, GIB, "1m",
     "bytes queued to one client before it is dropped as too slow"},
    {"max_conns_per_user", T_INT, AT(max_conns_per_user), 1, 1000000, "32",
     "open WebSocket connections allowed per user"},
    {"conn_rate", T_INT, AT(conn_rate), 1, 1000000, "50",
     "new connections accepted per client address per second"},
    {"msg_rate", T_INT, AT(msg_rate), 1, 1000000, "20",
     "WebSocket messages per connection per second (burst: twice)"},
    {"status_rate", T_INT, AT(status_rate), 1, 1000000, "10",
     "status changes per user per second, WebSocket and HTTP together"},
    {"large_org", T_INT, AT(large_org), 1, 100000000, "1000",
     "members from which subscribers get only the users they subscribed to"},
    {"echo_endpoint", T_BOOL, AT(echo_endpoint), 0, 1, "0",
     "mount /ws/echo (no authentication) for WebSocket conformance suites"},
    {"demo", T_BOOL, AT(demo), 0, 1, "0",
     "demo mode (generates a JWT secret if none is set)"},
};

#define ENV_PREFIX "PRESENCED_"
#define ERR_VALUE_MAX 64 /* bytes of a bad value quoted back */

#define seterr(err, ...) ((void)errf((err), CONFIG_ERRLEN, 0, __VA_ARGS__))

/* ---- Parsing numbers --------------------------------------------------- */

/* Reads one or more decimal digits at *s. -1 on none or on overflow. No
 * sign is accepted: every setting is a count, a size or a length of time. */
static int parse_digits(const char **s, int64_t *out)
{
    const char *p = *s;
    int64_t v = 0;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        int d = *p - '0';
        if (v > (INT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *s = p;
    *out = v;
    return 0;
}

struct unit {
    const char *name;
    int64_t mult;
};

static int parse_with_units(const char *s, const struct unit *units,
                            size_t nunits, int64_t *out)
{
    int64_t n;
    if (!s || parse_digits(&s, &n))
        return -1;
    for (size_t i = 0; i < nunits; i++) {
        if (strcmp(s, units[i].name) != 0)
            continue;
        if (n > INT64_MAX / units[i].mult)
            return -1;
        *out = n * units[i].mult;
        return 0;
    }
    return -1;
}

/* The bare number comes first: it is the unit a number alone means. */
static const struct unit duration_units[] = {
    {"", SEC}, {"ms", 1}, {"s", SEC}, {"m", MIN}, {"h", HOUR}, {"d", DAY},
};
static const struct unit size_units[] = {
    {"", 1},
    {"k", KIB},
    {"m", MIB},
    {"g", GIB},
};

int config_parse_duration(const char *s, int64_t *ms)
{
    return parse_with_units(s, duration_units, ARRAY_LEN(duration_units), ms);
}

int config_parse_size(const char *s, int64_t *bytes)
{
    return parse_with_units(s, size_units, ARRAY_LEN(size_units), bytes);
}

/* Shortest exact spelling of v in the given units, for error messages. */
static void format_units(char *out, size_t outlen, int64_t v,
                         const struct unit *units, size_t nunits)
{
    const struct unit *best = NULL;
    for (size_t i = 1; i < nunits; i++)
        if (v != 0 && v % units[i].mult == 0 &&
            (!best || units[i].mult > best->mult))
            best = &units[i];
    if (best)
        snprintf(out, outlen, "%lld%s", (long long)(v / best->mult),
                 best->name);
    else
        snprintf(out, outlen, "%lld", (long long)v);
}

static int parse_bool(const char *s, int *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* HOST:PORT, port 0..65535 (0: the kernel picks one, which the tests use).
 * An IPv6 host is bracketed, as in a URL: [::1]:8080. Whether the host
 * resolves is for net/ to find out. */
static int check_listen(const char *v)
{
    const char *colon = strrchr(v, ':');
    if (!colon || colon == v)
        return -1;
    const char *port = colon + 1;
    size_t nport = strlen(port);
    int64_t n;
    const char *p = port;
    if (nport == 0 || nport > 5 || parse_digits(&p, &n) || *p || n > 65535)
        return -1;
    size_t nhost = (size_t)(colon - v);
    int bracketed = v[0] == '[';
    if (bracketed && (nhost < 3 || v[nhost - 1] != ']'))
        return -1;
    for (size_t i = bracketed; i < nhost - bracketed; i++) {
        unsigned char ch = (unsigned char)v[i];
        if (ch <= ' ' || ch >= 0x7f || ch == '[' || ch == ']' ||
            (ch == ':' && !bracketed))
            return -1;
    }
    return 0;
}

/* docs/cluster.md: cluster names and node ids go into Redis key names,
 * where ':' separates the parts. A cluster name has no ':', so that no
 * name can reach into the keys of another cluster; a node id may have
 * one (host:port). */
static int name_char(char ch, int colon)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-' ||
           (colon && ch == ':');
}

static int check_name(const char *v, size_t min, int colon)
{
    if (strlen(v) < min)
        return -1;
    for (; *v; v++)
        if (!name_char(*v, colon))
            return -1;
    return 0;
}

/* ---- Applying one setting --------------------------------------------- */

static const struct setting *find(const char *key)
{
    /* '-' and '_' are the same in keys, so --away-after and away_after
     * both work. */
    for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
        const char *a = settings[i].key, *b = key;
        while (*a && (*a == *b || (*a == '_' && *b == '-'))) {
            a++;
            b++;
        }
        if (!*a && !*b)
            return &settings[i];
    }
    return NULL;
}

static int range_error(const struct setting *s, const char *label,
                       const char *value, int64_t v, char *err)
{
    char lo[32], hi[32];
    const struct unit *u = NULL;
    size_t nu = 0;
    if (s->type == T_DURATION) {
        u = duration_units;
        nu = ARRAY_LEN(duration_units);
    } else if (s->type == T_SIZE) {
        u = size_units;
        nu = ARRAY_LEN(size_units);
    }
    if (u) {
        format_units(lo, sizeof lo, s->min, u, nu);
        format_units(hi, sizeof hi, s->max, u, nu);
    } else {
        snprintf(lo, sizeof lo, "%lld", (long long)s->min);
        snprintf(hi, sizeof hi, "%lld", (long long)s->max);
    }
    if (v < s->min)
        seterr(err, "%s: \"%.*s\" is too %s (at least %s)", label,
               ERR_VALUE_MAX, value, s->type == T_DURATION ? "short" : "small",
               lo);
    else
        seterr(err, "%s: \"%.*s\" is too %s (at most %s)", label, ERR_VALUE_MAX,
               value, s->type == T_DURATION ? "long" : "large", hi);
    return -1;
}

/* Parses and validates value for s, then stores it. On error the config
 * is untouched and err names 'label' (the key, or the variable). */
static int apply(struct config *c, const struct setting *s, const char *value,
                 const char *label, char *err)
{
    char *field = (char *)c + s->offset;
    int64_t v = 0;
    int b;
    size_t len = strlen(value);

    switch (s->type) {
    case T_STRING:
    case T_LISTEN:
    case T_LEVEL:
    case T_ADDRS:
    case T_REDIS:
    case T_CLUSTER:
    case T_NODE_ID:
        /* The value is not quoted back: jwt_secret is one of these. */
        if (len >= s->size) {
            seterr(err, "%s: value too long (%zu bytes, at most %zu)", label,
                   len, s->size - 1);
            return -1;
        }
        if (strcmp(s->key, "db") == 0 &&
            store_kind(value) == STORE_KIND_UNKNOWN) {
            /* Not quoted back either: a URI may hold a password. */
            seterr(err,
                   "%s: unknown database scheme (use a SQLite file path "
                   "or a postgresql:// URI)",
                   label);
            return -1;
        }
        if (s->type == T_REDIS && len > 0) {
            struct cluster_uri u;
            char why[CLUSTER_URI_ERRLEN];
            int bad = cluster_uri_parse(value, &u, why);
            explicit_bzero(&u, sizeof u);
            /* Not quoted back: the URI may hold a password, and the
             * parser's reason quotes nothing of it. */
            if (bad) {
                seterr(err, "%s: bad Redis URI: %s", label, why);
                return -1;
            }
        }
        if ((s->type == T_CLUSTER || s->type == T_NODE_ID) &&
            check_name(value, (size_t)s->min, s->type == T_NODE_ID)) {
            seterr(err, "%s: bad %s \"%.*s\" (%lld to %lld of A-Z a-z 0-9 "
                        "_ . %s-%s)",
                   label, s->type == T_CLUSTER ? "name" : "id",
                   ERR_VALUE_MAX, value, (long long)(s->min ? s->min : 1),
                   (long long)s->max, s->type == T_NODE_ID ? ": " : "",
                   s->type == T_NODE_ID ? ", or \"\" for host name:port"
                                        : "");
            return -1;
        }
        if (s->type == T_LISTEN && check_listen(value)) {
            seterr(err,
                   "%s: bad address \"%.*s\" (use HOST:PORT, e.g. "
                   "127.0.0.1:8080)",
                   label, ERR_VALUE_MAX, value);
            return -1;
        }
        if (s->type == T_ADDRS && auth_addr_list_check(value)) {
            seterr(err,
                   "%s: bad address list \"%.*s\" (use addresses or "
                   "CIDR blocks, e.g. 127.0.0.1, ::1, 10.0.0.0/8)",
                   label, ERR_VALUE_MAX, value);
            return -1;
        }
        if (s->type == T_LEVEL) {
            enum log_level l;
            if (log_parse_level(value, &l)) {
                seterr(err,
                       "%s: bad level \"%.*s\" (use debug, info, warn, "
                       "error)",
                       label, ERR_VALUE_MAX, value);
                return -1;
            }
        }
        memcpy(field, value, len + 1);
        return 0;
    case T_DURATION:
        if (config_parse_duration(value, &v)) {
            seterr(err, "%s: bad duration \"%.*s\" (use 250ms, 5s, 30m, 1h)",
                   label, ERR_VALUE_MAX, value);
            return -1;
        }
        break;
    case T_SIZE:
        if (config_parse_size(value, &v)) {
            seterr(err, "%s: bad size \"%.*s\" (use 64k, 1m, or bytes)", label,
                   ERR_VALUE_MAX, value);
            return -1;
        }
        break;
    case T_INT: {
        const char *p = value;
        if (parse_digits(&p, &v) || *p) {
            seterr(err, "%s: bad number \"%.*s\"", label, ERR_VALUE_MAX, value);
            return -1;
        }
        break;
    }
    case T_BOOL:
        if (parse_bool(value, &b)) {
            seterr(err,
                   "%s: bad boolean \"%.*s\" (use true/false, yes/no, "
                   "on/off, 1/0)",
                   label, ERR_VALUE_MAX, value);
            return -1;
        }
        assert(s->size == sizeof(int));
        *(int *)field = b;
        return 0;
    }
    if (v < s->min || v > s->max)
        return range_error(s, label, value, v, err);
    assert(s->size == sizeof(int64_t));
    *(int64_t *)field = v;
    return 0;
}

/* ---- Sources ----------------------------------------------------------- */

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
        char err[CONFIG_ERRLEN];
        /* A default that fails its own rules is a bug in the table. */
        if (apply(c, &settings[i], settings[i].def, settings[i].key, err)) {
            fprintf(stderr, "config: bad built-in default: %s\n", err);
            abort();
        }
    }
}

int config_set(struct config *c, const char *key, const char *value, char *err)
{
    const struct setting *s = key ? find(key) : NULL;
    if (!s) {
        seterr(err, "unknown setting \"%.*s\"", ERR_VALUE_MAX, key ? key : "");
        return -1;
    }
    if (!value) {
        seterr(err, "%s: missing value", s->key);
        return -1;
    }
    return apply(c, s, value, s->key, err);
}

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* Trims in place; returns the new start. */
static char *strip(char *s)
{
    while (is_space(*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && is_space(s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* One "key = value" line (already stripped, not blank, not a comment).
 * 0, or -1 with a reason that the caller prefixes with FILE:LINE. */
static int file_line(struct config *c, char *line, char *err)
{
    char *eq = strchr(line, '=');
    if (!eq) {
        seterr(err, "expected key = value");
        return -1;
    }
    *eq = '\0';
    char *key = strip(line), *value = strip(eq + 1);
    if (!*key) {
        seterr(err, "expected key = value");
        return -1;
    }
    /* Quotes keep leading or trailing spaces in a value; there are no
     * escapes inside them. */
    size_t n = strlen(value);
    if (n > 0 && value[0] == '"') {
        if (n < 2 || value[n - 1] != '"') {
            seterr(err, "%s: missing closing quote", key);
            return -1;
        }
        value[n - 1] = '\0';
        value++;
    }
    return config_set(c, key, value, err);
}

int config_load_file(struct config *c, const char *path, char *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        seterr(err, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL, why[CONFIG_ERRLEN];
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, rc = 0;
    while ((n = getline(&line, &cap, f)) >= 0) {
        char *s = line;
        lineno++;
        if ((size_t)n != strlen(line)) {
            seterr(err, "%s:%d: NUL byte in line", path, lineno);
            rc = -1;
            break;
        }
        /* Editors on some systems start a UTF-8 file with a BOM. */
        if (lineno == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
            s += 3;
        s = strip(s);
        /* '#' starts a comment only at the start of a line, so that values
         * such as secrets may contain it. */
        if (!*s || *s == '#')
            continue;
        if (file_line(c, s, why)) {
            seterr(err, "%s:%d: %s", path, lineno, why);
            rc = -1;
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        seterr(err, "%s: %s", path, strerror(errno));
        rc = -1;
    }
    free(line);
    fclose(f);
    return rc;
}

/* "grace" -> "PRESENCED_GRACE" */
static void env_name(const char *key, char *out, size_t outlen)
{
    size_t n = (size_t)snprintf(out, outlen, ENV_PREFIX "%s", key);
    for (size_t i = sizeof ENV_PREFIX - 1; i < n && i < outlen; i++)
        if (out[i] >= 'a' && out[i] <= 'z')
            out[i] = (char)(out[i] - 'a' + 'A');
}

int config_load_env(struct config *c, char *const *envp, char *err)
{
    static const char *not_settings[] = {
        ENV_PREFIX "CONFIG", /* names the file, read before this */
        ENV_PREFIX "BIN",    /* the binary under test, for the test suite */
    };
    size_t plen = sizeof ENV_PREFIX - 1;
    for (; envp && *envp; envp++) {
        const char *e = *envp, *eq = strchr(e, '=');
        if (strncmp(e, ENV_PREFIX, plen) != 0 || !eq)
            continue;
        size_t nlen = (size_t)(eq - e);
        int skip = 0;
        for (size_t i = 0; i < ARRAY_LEN(not_settings); i++)
            if (strlen(not_settings[i]) == nlen &&
                strncmp(e, not_settings[i], nlen) == 0)
                skip = 1;
        if (skip)
            continue;
        /* An unknown PRESENCED_ variable is an error, not ignored: a typo
         * such as PRESENCED_JWT_SECERT must not silently leave the secret
         * unset. */
        const struct setting *s = NULL;
        char name[64];
        for (size_t i = 0; i < ARRAY_LEN(settings) && !s; i++) {
            env_name(settings[i].key, name, sizeof name);
            if (strlen(name) == nlen && strncmp(e, name, nlen) == 0)
                s = &settings[i];
        }
        if (!s) {
            seterr(err, "%.*s: unknown setting (see --help)",
                   (int)(nlen < ERR_VALUE_MAX ? nlen : ERR_VALUE_MAX), e);
            return -1;
        }
        if (apply(c, s, eq + 1, name, err))
            return -1;
    }
    return 0;
}

int config_node_id(const struct config *c, char *out, size_t n)
{
    enum { ID_MAX = sizeof c->node_id - 1 };
    if (c->node_id[0]) {
        size_t len = strlen(c->node_id);
        if (len >= n)
            return -1;
        memcpy(out, c->node_id, len + 1);
        return 0;
    }
    char host[256];
    if (gethostname(host, sizeof host) != 0)
        return -1;
    host[sizeof host - 1] = '\0';
    /* listen is HOST:PORT (check_listen), the port after the last ':'. */
    const char *colon = strrchr(c->listen, ':');
    const char *port = colon ? colon + 1 : "0";
    size_t nport = strlen(port), nhost = strlen(host);
    if (nhost == 0 || nport + 2 > ID_MAX)
        return -1;
    if (nhost + 1 + nport > ID_MAX)
        nhost = ID_MAX - 1 - nport;
    if (nhost + 1 + nport >= n)
        return -1;
    /* A host name is letters, digits, '-' and '.' (RFC 1123), but nothing
     * enforces it: the id must stay a valid node_id whatever it is. */
    for (size_t i = 0; i < nhost; i++)
        out[i] = name_char(host[i], 0) ? host[i] : '_';
    out[nhost] = ':';
    memcpy(out + nhost + 1, port, nport + 1);
    return 0;
}

void config_each(config_setting_cb *cb, void *ud)
{
    for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
        char env[64];
        env_name(settings[i].key, env, sizeof env);
        cb(ud, settings[i].key, env, settings[i].def, settings[i].help);
    }
}
