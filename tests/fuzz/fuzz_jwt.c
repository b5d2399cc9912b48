/* fuzz_jwt.c - HS256 token verification (src/auth/jwt.c).
 *
 * The whole input is a token, verified with the harness secret at the
 * harness time. An accepted token must carry claims the contract allows
 * (sub and org of 1..128 bytes, exp in the future, nbf not, sid >= 0), and
 * signing those claims again must give a token that verifies to the same.
 *
 * When the input holds at least three NUL bytes it also describes claims:
 *   sub NUL org NUL name NUL [exp nbf sid as little-endian int64s]
 * They are signed, and the result must verify exactly as the contract
 * says (JWT_ECLAIMS for an empty sub or org or a negative sid, then
 * JWT_EEXPIRED, then JWT_ENBF, else 0 with the same claims); with another
 * secret or with any one character changed, the token must not verify.
 * Tokens never contain NUL, so the corpus of real tokens is unaffected. */
#include <string.h>

#include "auth/jwt.h"
#include "fuzz.h"

#define NOW_S (FUZZ_NOW_MS / 1000)

static const char secret[] = FUZZ_JWT_SECRET;

static void check_claims(const struct jwt_claims *c)
{
    size_t sub = strnlen(c->sub, sizeof c->sub);
    size_t org = strnlen(c->org, sizeof c->org);
    CHECK(sub > 0 && sub < sizeof c->sub, "sub of %zu bytes", sub);
    CHECK(org > 0 && org < sizeof c->org, "org of %zu bytes", org);
    CHECK(strnlen(c->name, sizeof c->name) < sizeof c->name, "name");
    CHECK(NOW_S < c->exp, "accepted at %lld with exp %lld",
          (long long)NOW_S, (long long)c->exp);
    CHECK(NOW_S >= c->nbf, "accepted before nbf");
    CHECK(c->sid >= 0, "negative sid accepted");
}

static int same(const struct jwt_claims *a, const struct jwt_claims *b)
{
    return !strcmp(a->sub, b->sub) && !strcmp(a->org, b->org) &&
           !strcmp(a->name, b->name) && a->exp == b->exp &&
           a->nbf == b->nbf && a->sid == b->sid;
}

static int expected(const struct jwt_claims *c)
{
    if (!c->sub[0] || !c->org[0] || c->sid < 0)
        return JWT_ECLAIMS;
    if (NOW_S >= c->exp)
        return JWT_EEXPIRED;
    if (NOW_S < c->nbf)
        return JWT_ENBF;
    return 0;
}

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void sign_and_verify(const struct jwt_claims *c, unsigned pick)
{
    char tok[JWT_MAX_LEN];
    int n = jwt_sign(c, secret, sizeof secret - 1, tok, sizeof tok);
    if (n < 0)
        return; /* claims that cannot be JSON (invalid UTF-8) */
    CHECK((size_t)n == strlen(tok), "jwt_sign length");
    struct jwt_claims out;
    int rc = jwt_verify(tok, (size_t)n, secret, sizeof secret - 1, NOW_S,
                        &out);
    CHECK(rc == expected(c), "signed claims verify as %d (%s), want %d",
          rc, jwt_strerror(rc), expected(c));
    if (rc == 0)
        CHECK(same(c, &out), "claims changed in a round trip");

    /* Another secret: the signature must fail. */
    rc = jwt_verify(tok, (size_t)n, "another secret", 14, NOW_S, &out);
    CHECK(rc == JWT_ESIG, "verified with another secret (%d)", rc);

    /* Any one character changed: never accepted. */
    size_t at = pick % (size_t)n;
    char was = tok[at];
    tok[at] = b64url[(pick / 7) % 64];
    if (tok[at] == was)
        tok[at] = was == 'A' ? 'B' : 'A';
    if (was == '.')
        tok[at] = '.' + 1; /* '/' is not base64url */
    rc = jwt_verify(tok, (size_t)n, secret, sizeof secret - 1, NOW_S, &out);
    CHECK(rc != 0, "token with byte %zu changed still verifies", at);
}

static int64_t le64(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++)
        v |= (uint64_t)(i < n ? p[i] : 0) << (8 * i);
    return (int64_t)v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct jwt_claims c;
    memset(&c, 0x5a, sizeof c);
    int rc = jwt_verify((const char *)data, size, secret, sizeof secret - 1,
                        NOW_S, &c);
    if (rc == 0) {
        check_claims(&c);
        sign_and_verify(&c, (unsigned)size);
    } else {
        CHECK(rc >= JWT_ECLAIMS && rc <= JWT_EFORMAT, "rc %d", rc);
        CHECK(strcmp(jwt_strerror(rc), "unknown error") != 0, "strerror");
    }

    /* sub NUL org NUL name NUL numbers */
    const uint8_t *part[4];
    size_t len[4], k = 0;
    const uint8_t *p = data, *end = data + size;
    while (k < 3) {
        const uint8_t *z = memchr(p, 0, (size_t)(end - p));
        if (!z)
            return 0;
        part[k] = p;
        len[k++] = (size_t)(z - p);
        p = z + 1;
    }
    part[3] = p;
    len[3] = (size_t)(end - p);
    memset(&c, 0, sizeof c);
    memcpy(c.sub, part[0], len[0] < 128 ? len[0] : 128);
    memcpy(c.org, part[1], len[1] < 128 ? len[1] : 128);
    memcpy(c.name, part[2], len[2] < 200 ? len[2] : 200);
    c.exp = le64(part[3], len[3]);
    c.nbf = len[3] > 8 ? le64(part[3] + 8, len[3] - 8) : 0;
    c.sid = len[3] > 16 ? le64(part[3] + 16, len[3] - 16) : 0;
    sign_and_verify(&c, (unsigned)(size * 31 + data[0]));
    return 0;
}
