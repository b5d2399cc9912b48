/* jwt.c - HS256 JSON Web Tokens (RFC 7519, JWS compact form of RFC 7515).
 *
 * Verification runs its checks in a fixed order so that the cheapest and
 * least trusting come first: shape (length, three base64url parts), header
 * JSON and alg, the signature, and only then the claims. The payload is not
 * even parsed until its signature has been checked, so a forged token never
 * reaches the JSON parser with attacker-chosen claims. */
#include "auth/jwt.h"

#include <jansson.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define SIG_LEN crypto_auth_hmacsha256_BYTES
#define ID_MAX 128    /* STORE_ID_MAX; auth/ does not include store/ */
#define NAME_MAX_LEN 200

_Static_assert(sizeof(((struct jwt_claims *)0)->sub) == ID_MAX + 1,
               "sub array matches the documented limit");
_Static_assert(sizeof(((struct jwt_claims *)0)->name) == NAME_MAX_LEN + 1,
               "name array matches the documented limit");

/* The only header we ever write. */
static const char header_json[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* Decodes one base64url part (no padding). 0, or -1 if it is not canonical
 * base64url; libsodium also refuses stray trailing bits, so each token has
 * exactly one spelling. */
static int b64_decode(const char *s, size_t n, unsigned char *out,
                      size_t outlen, size_t *len)
{
    return sodium_base642bin(out, outlen, s, n, NULL, len, NULL,
                             sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

static void mac(const void *secret, size_t secret_len, const char *data,
                size_t n, unsigned char out[SIG_LEN])
{
    /* The init/update/final form takes a key of any length (HMAC hashes
     * long keys), unlike crypto_auth_hmacsha256() whose key is 32 bytes. */
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, secret, secret_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)data, n);
    crypto_auth_hmacsha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

static int check_header(const unsigned char *p, size_t n)
{
    /* Duplicate keys are refused: two "alg" members could be read one way
     * here and another way by some other verifier. */
    json_t *h = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, NULL);
    if (!h || !json_is_object(h)) {
        json_decref(h);
        return JWT_EFORMAT;
    }
    int rc = 0;
    json_t *alg = json_object_get(h, "alg");
    /* Exact, case-sensitive match: "none", "hs256" and "HS512" all fail. */
    if (!json_is_string(alg) || json_string_length(alg) != 5 ||
        memcmp(json_string_value(alg), "HS256", 5) != 0)
        rc = JWT_EALG;
    /* RFC 7515 4.1.11: we implement no extensions, so a token that marks
     * any as critical must be refused rather than half-understood. */
    else if (json_object_get(h, "crit"))
        rc = JWT_EFORMAT;
    json_decref(h);
    return rc;
}

/* Copies a string claim of 1..max bytes (0..max when optional). */
static int get_string(json_t *claims, const char *key, int required,
                      size_t max, char *out)
{
    json_t *v = json_object_get(claims, key);
    if (!v) {
        out[0] = '\0';
        return required ? JWT_ECLAIMS : 0;
    }
    if (!json_is_string(v))
        return JWT_ECLAIMS;
    size_t n = json_string_length(v);
    if (n > max || (required && n == 0))
        return JWT_ECLAIMS;
    /* jansson refuses \u0000 unless JSON_ALLOW_NUL, so the value cannot
     * hold an embedded NUL that would shorten the id behind our back. */
    memcpy(out, json_string_value(v), n);
    out[n] = '\0';
    return 0;
}

static int get_int(json_t *claims, const char *key, int required,
                   int64_t *out)
{
    json_t *v = json_object_get(claims, key);
    *out = 0;
    if (!v)
        return required ? JWT_ECLAIMS : 0;
    if (!json_is_integer(v))
        return JWT_ECLAIMS;
    *out = (int64_t)json_integer_value(v);
    return 0;
}

static int read_claims(const unsigned char *p, size_t n, struct jwt_claims *c)
{
    json_t *j = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, NULL);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return JWT_EFORMAT;
    }
    int rc = get_string(j, "sub", 1, ID_MAX, c->sub);
    if (!rc)
        rc = get_string(j, "org", 1, ID_MAX, c->org);
    if (!rc)
        rc = get_string(j, "name", 0, NAME_MAX_LEN, c->name);
    if (!rc)
        rc = get_int(j, "exp", 1, &c->exp);
    if (!rc)
        rc = get_int(j, "nbf", 0, &c->nbf);
    if (!rc)
        rc = get_int(j, "sid", 0, &c->sid);
    if (!rc && c->sid < 0)
        rc = JWT_ECLAIMS;
    json_decref(j);
    return rc;
}

int jwt_verify(const char *token, size_t len, const void *secret,
               size_t secret_len, int64_t now_s, struct jwt_claims *out)
{
    /* Decoded parts are never longer than the token itself. */
    unsigned char head[JWT_MAX_LEN], body[JWT_MAX_LEN], sig[JWT_MAX_LEN];
    unsigned char want[SIG_LEN];
    size_t head_len, body_len, sig_len;

    if (!token || len == 0 || len > JWT_MAX_LEN)
        return JWT_EFORMAT;
    /* Padding is not part of the compact form (RFC 7515 2). */
    if (memchr(token, '=', len))
        return JWT_EFORMAT;
    const char *end = token + len;
    const char *dot1 = memchr(token, '.', len);
    if (!dot1)
        return JWT_EFORMAT;
    const char *dot2 = memchr(dot1 + 1, '.', (size_t)(end - dot1 - 1));
    if (!dot2 || memchr(dot2 + 1, '.', (size_t)(end - dot2 - 1)))
        return JWT_EFORMAT;
    if (dot1 == token || dot2 == dot1 + 1)
        return JWT_EFORMAT;

    if (b64_decode(token, (size_t)(dot1 - token), head, sizeof head,
                   &head_len) ||
        b64_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), body, sizeof body,
                   &body_len) ||
        b64_decode(dot2 + 1, (size_t)(end - dot2 - 1), sig, sizeof sig,
                   &sig_len))
        return JWT_EFORMAT;

    /* The alg is checked before the signature so that "none" (with or
     * without a signature) is refused for what it is. */
    int rc = check_header(head, head_len);
    if (rc)
        return rc;

    /* An empty secret would let anyone mint tokens; nothing verifies
     * against it. */
    if (secret_len == 0 || sig_len != SIG_LEN)
        return JWT_ESIG;
    mac(secret, secret_len, token, (size_t)(dot2 - token), want);
    if (sodium_memcmp(want, sig, SIG_LEN) != 0)
        return JWT_ESIG;

    struct jwt_claims c;
    memset(&c, 0, sizeof c);
    if ((rc = read_claims(body, body_len, &c)))
        return rc;
    /* RFC 7519 4.1.4: the token must not be accepted on or after exp. */
    if (now_s >= c.exp)
        return JWT_EEXPIRED;
    if (now_s < c.nbf)
        return JWT_ENBF;
    *out = c;
    return 0;
}

/* Appends base64url(p) at out + *pos if it fits in outlen (NUL included). */
static int put_b64(char *out, size_t outlen, size_t *pos,
                   const void *p, size_t n)
{
    size_t need = sodium_base64_encoded_len(
        n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    /* sodium_bin2base64 aborts on a short buffer, so check first. */
    if (need > outlen - *pos)
        return -1;
    sodium_bin2base64(out + *pos, need, p, n,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    *pos += need - 1;
    return 0;
}

static int put_char(char *out, size_t outlen, size_t *pos, char ch)
{
    if (outlen - *pos < 2)
        return -1;
    out[(*pos)++] = ch;
    out[*pos] = '\0';
    return 0;
}

static char *claims_json(const struct jwt_claims *c)
{
    /* strnlen: the arrays are fixed, so never read past them even if the
     * caller forgot a terminator. */
    json_t *j = json_object();
    int bad = 0;
    bad |= json_object_set_new(j, "sub",
                               json_stringn(c->sub,
                                            strnlen(c->sub, ID_MAX)));
    bad |= json_object_set_new(j, "org",
                               json_stringn(c->org,
                                            strnlen(c->org, ID_MAX)));
    if (c->name[0])
        bad |= json_object_set_new(
            j, "name", json_stringn(c->name, strnlen(c->name, NAME_MAX_LEN)));
    bad |= json_object_set_new(j, "exp", json_integer(c->exp));
    if (c->nbf)
        bad |= json_object_set_new(j, "nbf", json_integer(c->nbf));
    if (c->sid)
        bad |= json_object_set_new(j, "sid", json_integer(c->sid));
    /* json_stringn() returns NULL for invalid UTF-8, which makes the set
     * fail; such claims could not be verified anyway. */
    char *s = bad ? NULL : json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

int jwt_sign(const struct jwt_claims *c, const void *secret,
             size_t secret_len, char *out, size_t outlen)
{
    unsigned char sig[SIG_LEN];
    size_t pos = 0;

    if (secret_len == 0 || outlen == 0)
        return -1;
    char *body = claims_json(c);
    if (!body)
        return -1;
    int rc = -1;
    if (put_b64(out, outlen, &pos, header_json, sizeof header_json - 1) ||
        put_char(out, outlen, &pos, '.') ||
        put_b64(out, outlen, &pos, body, strlen(body)))
        goto done;
    mac(secret, secret_len, out, pos, sig);
    if (put_char(out, outlen, &pos, '.') ||
        put_b64(out, outlen, &pos, sig, sizeof sig))
        goto done;
    rc = (int)pos;
done:
    free(body);
    if (rc < 0)
        out[0] = '\0';
    return rc;
}

const char *jwt_strerror(int rc)
{
    switch (rc) {
    case 0: return "ok";
    case JWT_EFORMAT: return "malformed token";
    case JWT_EALG: return "unsupported alg (only HS256)";
    case JWT_ESIG: return "bad signature";
    case JWT_EEXPIRED: return "token expired";
    case JWT_ENBF: return "token not yet valid";
    case JWT_ECLAIMS: return "missing or invalid claims";
    default: return "unknown error";
    }
}
