/* fuzz_cookie.c - cookies, origins, query strings and path ids.
 *
 * auth_cookie_get() and auth_origin_allowed() (src/auth/auth.c) decide who
 * is let in; web_query_get() and web_decode() (src/auth/web.c) read
 * ?token= and the ids in /api/users/ID, /api/channels/ID, which the route
 * matcher of api/api.c takes out of the path. api.c is #included (h2o
 * t/00unit style) to reach its static matcher; everything else it calls
 * is the real code or fake_server.c.
 *
 * Input: one byte for the output buffer size, then NUL-separated fields:
 *   cookie header, cookie name, Origin, allowed_origins, Host,
 *   query string, query name, path id
 * Checked beyond memory safety (outputs go to heap buffers of exactly the
 * stated size, so ASan sees any overrun):
 *   - a cookie value found is NUL-terminated, fits, and occurs in the
 *     header; an empty name finds nothing;
 *   - auth_origin_allowed() agrees with a reference reading of auth.h
 *     (listed, or "*" for anything but "null", or with no list the
 *     server's own http://Host);
 *   - a decoded value fits, is NUL-terminated, holds no NUL, and a string
 *     percent-encoded then decoded comes back the same; so does every
 *     named segment the route matcher decodes. */
#include "api/api.c"

#include "fuzz.h"

struct field {
    const char *p;
    size_t n;
};

static int ref_origin(const char *origin, const char *allowed,
                      const char *host)
{
    if (!*origin)
        return 0;
    int is_null = !strcmp(origin, "null");
    int any = 0, star = 0;
    const char *p = allowed;
    for (;;) {
        size_t n = strcspn(p, ",");
        const char *s = p, *e = p + n;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > s) {
            any = 1;
            if (e - s == 1 && *s == '*')
                star = 1;
            else if ((size_t)(e - s) == strlen(origin) &&
                     !memcmp(s, origin, (size_t)(e - s)))
                return 1;
        }
        if (!p[n])
            break;
        p += n + 1;
    }
    if (any)
        return star && !is_null;
    if (is_null || !*host)
        return 0;
    return !strncmp(origin, "http://", 7) && !strcmp(origin + 7, host);
}

static void check_decoded(const char *out, int rc, size_t outlen)
{
    if (rc < 0)
        return;
    CHECK((size_t)rc < outlen, "decoded %d bytes into %zu", rc, outlen);
    CHECK(out[rc] == '\0' && strlen(out) == (size_t)rc,
          "decoded value not NUL-terminated or holding a NUL");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t outlen = 1 + data[0] % 160;
    /* NUL-separated fields; missing ones are empty. The copy keeps each
     * NUL-terminated for the functions that take C strings. */
    char *copy = xmalloc(size);
    memcpy(copy, data + 1, size - 1);
    copy[size - 1] = '\0';
    struct field f[8];
    char *p = copy, *end = copy + size - 1;
    for (int i = 0; i < 8; i++) {
        f[i].p = p <= end ? p : "";
        f[i].n = strlen(f[i].p);
        p += f[i].n + 1;
    }
    char *out = xmalloc(outlen);

    /* Cookies: by length, so the header may hold NULs of its own. */
    const char *name = f[1].n ? f[1].p : WEB_COOKIE;
    int rc = auth_cookie_get(f[0].p, f[0].n, name, out, outlen);
    if (rc >= 0) {
        CHECK((size_t)rc < outlen && out[rc] == '\0', "cookie of %d", rc);
        CHECK(memmem(f[0].p, f[0].n, out, (size_t)rc), "cookie not in header");
    }
    CHECK(auth_cookie_get(f[0].p, f[0].n, "", out, outlen) == -1,
          "empty cookie name found something");

    /* Origins. */
    int ok = auth_origin_allowed(f[2].p, f[3].p, f[4].p);
    int want = ref_origin(f[2].p, f[3].p, f[4].p);
    CHECK(ok == want, "origin \"%s\" allowed=\"%s\" host=\"%s\": %d, want %d",
          f[2].p, f[3].p, f[4].p, ok, want);

    /* Query strings: the fuzzed name, and the two api/ reads. */
    const char *names[] = {f[6].n ? f[6].p : "token", "token",
                           "older_than_ms"};
    for (size_t i = 0; i < ARRAY_LEN(names); i++) {
        memset(out, 0x55, outlen);
        rc = web_query_get(f[5].p, f[5].n, names[i], out, outlen);
        check_decoded(out, rc, outlen);
    }

    /* Path ids, as /api/users/ID reads them (no '+' to space). */
    char id[STORE_ID_MAX + 1];
    rc = web_decode(f[7].p, f[7].p + f[7].n, 0, id, sizeof id);
    check_decoded(id, rc, sizeof id);
    /* The same bytes as a path, and after each route's prefix. */
    static const char *const prefixes[] = {"", "/api/users/",
                                           "/api/channels/", "/channels/"};
    for (size_t i = 0; i < ARRAY_LEN(prefixes); i++) {
        struct buf path;
        buf_init(&path, 0);
        buf_puts(&path, prefixes[i]);
        buf_append(&path, f[7].p, f[7].n);
        struct api_req rq = {.path = path.data, .plen = path.len};
        const struct route *rt = route_find(&rq);
        CHECK(rq.nparams <= API_MAX_PARAMS, "%u params", rq.nparams);
        for (unsigned k = 0; rt && k < rq.nparams; k++)
            check_decoded(rq.params[k].value, rq.params[k].len,
                          sizeof rq.params[k].value);
        const char *v = api_param(&rq, "id");
        CHECK(!v || strlen(v) > 0, "empty id");
        buf_dispose(&path);
    }

    /* Round trip: the path id percent-encoded in a query string. */
    struct buf q;
    buf_init(&q, 0);
    buf_puts(&q, "a=1&x=");
    for (size_t i = 0; i < f[7].n; i++)
        buf_printf(&q, "%%%02X", (unsigned char)f[7].p[i]);
    buf_puts(&q, "&b");
    rc = web_query_get(q.data, q.len, "x", out, outlen);
    if (f[7].n < outlen) {
        CHECK(rc == (int)f[7].n && !memcmp(out, f[7].p, f[7].n),
              "percent-encoding did not round-trip");
    } else {
        CHECK(rc == -2, "value longer than the buffer decoded");
    }
    buf_dispose(&q);

    free(out);
    free(copy);
    return 0;
}
