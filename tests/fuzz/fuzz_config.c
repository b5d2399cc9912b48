/* fuzz_config.c - settings from text (src/config.c).
 *
 * The input is a configuration file. It is loaded with config_load_file()
 * (from a memfd, through /proc/self/fd) and compared with a reference
 * reading of the format config.h documents - "key = value" lines, '#'
 * comments and blank lines skipped, surrounding blanks trimmed, a value in
 * double quotes keeps its blanks, a UTF-8 BOM allowed first - applied with
 * config_set() line by line: both must agree on success, and on success
 * give the same configuration. Then:
 *   - the first line is given as the value of every setting (and the
 *     second as a key): a refused value leaves the configuration
 *     untouched, every error is a NUL-terminated line, and a refused
 *     jwt_secret is never quoted back;
 *   - the first line goes through config_parse_duration/size: a parsed
 *     value is not negative and its canonical spelling parses to it;
 *   - the lines become an environment for config_load_env(). */
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

static const char *keys[64];
static size_t nkeys;

static void add_key(void *ud, const char *key, const char *env,
                    const char *def, const char *help)
{
    if (nkeys < ARRAY_LEN(keys))
        keys[nkeys++] = key;
}

static void check_err(const char *err)
{
    CHECK(strnlen(err, CONFIG_ERRLEN) < CONFIG_ERRLEN,
          "error not NUL-terminated");
    CHECK(err[0], "empty error");
    CHECK(!strchr(err, '\n'), "error spans lines: %s", err);
}

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* Trims [*s, *e) of blanks. */
static void trim(char **s, char **e)
{
    while (*s < *e && is_blank(**s))
        (*s)++;
    while (*e > *s && is_blank((*e)[-1]))
        (*e)--;
}

/* The reference reading: 0, or -1 where config_load_file must fail. */
static int reference_load(struct config *c, const char *data, size_t size)
{
    char err[CONFIG_ERRLEN];
    char *copy = xmalloc(size + 1);
    memcpy(copy, data, size);
    copy[size] = '\0';
    int rc = 0;
    char *p = copy, *end = copy + size;
    for (int lineno = 1; p < end; lineno++) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *e = nl ? nl + 1 : end;
        char *s = p;
        p = e;
        if (memchr(s, '\0', (size_t)(e - s))) {
            rc = -1; /* a NUL byte in a line */
            break;
        }
        if (lineno == 1 && e - s >= 3 && !memcmp(s, "\xef\xbb\xbf", 3))
            s += 3;
        trim(&s, &e);
        if (s == e || *s == '#')
            continue;
        char *eq = memchr(s, '=', (size_t)(e - s));
        if (!eq) {
            rc = -1;
            break;
        }
        char *ks = s, *ke = eq, *vs = eq + 1, *ve = e;
        trim(&ks, &ke);
        trim(&vs, &ve);
        if (ks == ke) {
            rc = -1;
            break;
        }
        if (vs < ve && *vs == '"') {
            if (ve - vs < 2 || ve[-1] != '"') {
                rc = -1;
                break;
            }
            vs++;
            ve--;
        }
        *ke = '\0';
        *ve = '\0';
        if (config_set(c, ks, vs, err) != 0) {
            rc = -1;
            break;
        }
    }
    free(copy);
    return rc;
}

static void check_number(const char *s)
{
    int64_t v, again;
    char canon[32];
    if (config_parse_duration(s, &v) == 0) {
        CHECK(v >= 0, "negative duration from \"%s\"", s);
        snprintf(canon, sizeof canon, "%lldms", (long long)v);
        CHECK(config_parse_duration(canon, &again) == 0 && again == v,
              "duration %s does not round-trip", canon);
        CHECK(strspn(s, "0123456789") > 0, "duration without digits");
    }
    if (config_parse_size(s, &v) == 0) {
        CHECK(v >= 0, "negative size from \"%s\"", s);
        snprintf(canon, sizeof canon, "%lld", (long long)v);
        CHECK(config_parse_size(canon, &again) == 0 && again == v,
              "size %s does not round-trip", canon);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    char err[CONFIG_ERRLEN];
    if (fd < 0) {
        fd = memfd_create("fuzz_config", 0);
        CHECK(fd >= 0, "memfd_create");
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        config_each(add_key, NULL);
        CHECK(nkeys > 0, "no settings");
    }
    if (size > 64 * 1024)
        return 0;

    /* The file, and the reference reading of it. */
    CHECK(ftruncate(fd, 0) == 0, "ftruncate");
    CHECK(pwrite(fd, data, size, 0) == (ssize_t)size, "pwrite");
    struct config a, b;
    config_defaults(&a);
    config_defaults(&b);
    memset(err, 0x55, sizeof err);
    int rc = config_load_file(&a, path, err);
    int ref = reference_load(&b, (const char *)data, size);
    if (rc != 0) {
        check_err(err);
        CHECK(!strncmp(err, path, strlen(path)), "error without the file");
    }
    CHECK(rc == ref, "config_load_file says %d, the documented format %d%s%s",
          rc, ref, rc ? ": " : "", rc ? err : "");
    if (rc == 0)
        CHECK(memcmp(&a, &b, sizeof a) == 0,
              "file and line-by-line settings differ");

    /* Lines, NUL-terminated. */
    char *text = xmalloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    char *lines[33];
    size_t nlines = 0;
    for (char *q = text; nlines < 32;) {
        lines[nlines++] = q;
        char *nl = strchr(q, '\n');
        if (!nl)
            break;
        *nl = '\0';
        q = nl + 1;
    }
    lines[nlines] = NULL;

    /* Every setting, with the first line as its value. */
    const char *value = lines[0];
    for (size_t i = 0; i < nkeys; i++) {
        struct config before = a;
        memset(err, 0x55, sizeof err);
        if (config_set(&a, keys[i], value, err) != 0) {
            check_err(err);
            CHECK(memcmp(&before, &a, sizeof a) == 0,
                  "refused %s changed the configuration", keys[i]);
            if (!strcmp(keys[i], "jwt_secret") && strlen(value) >= 8)
                CHECK(!strstr(err, value), "jwt_secret quoted in an error");
        }
    }
    if (nlines > 1) {
        struct config before = a;
        if (config_set(&a, lines[1], value, err) != 0) {
            check_err(err);
            CHECK(memcmp(&before, &a, sizeof a) == 0,
                  "refused key changed the configuration");
        }
    }
    check_number(value);

    /* The lines as an environment. */
    if (config_load_env(&b, lines, err) != 0)
        check_err(err);
    free(text);
    return 0;
}
