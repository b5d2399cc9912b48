/* jwt.h - HS256 JSON Web Tokens: verify (and sign, for the CLI and tests).
 *
 * Pure: no I/O, no clock (now is an argument). HMAC-SHA256 and base64url
 * come from libsodium; the signature is compared in constant time. Only
 * alg "HS256" is accepted ("none" and every other alg are refused before
 * any other check), the header must be a JSON object, and the claims:
 *   sub  string, 1..STORE_ID_MAX bytes, required (user id)
 *   org  string, 1..STORE_ID_MAX bytes, required (organization id)
 *   name string, at most 200 bytes, optional
 *   exp  integer seconds, required; the token is expired when now >= exp
 *   nbf  integer seconds, optional; refused while now < nbf
 *   iat  integer seconds, optional, ignored
 *   sid  integer >= 0, optional: the login session that minted the token
 *        (the caller checks that session is still live)
 * A token longer than JWT_MAX_LEN is refused as malformed. */
#ifndef JWT_H
#define JWT_H
#include <stddef.h>
#include <stdint.h>

#define JWT_MAX_LEN 4096

enum {
    JWT_EFORMAT = -1,  /* not three base64url parts, bad JSON, too long */
    JWT_EALG = -2,     /* alg missing or not HS256 */
    JWT_ESIG = -3,     /* signature does not match */
    JWT_EEXPIRED = -4, /* now >= exp */
    JWT_ENBF = -5,     /* now < nbf */
    JWT_ECLAIMS = -6,  /* sub/org/exp missing, wrong type or too long */
};

struct jwt_claims {
    char sub[129];
    char org[129];
    char name[201];   /* "" if absent */
    int64_t exp;      /* seconds since the epoch */
    int64_t nbf;      /* 0 if absent */
    int64_t sid;      /* 0 if absent */
};

/* Verifies token (len bytes, need not be NUL-terminated) against secret at
 * time now_s (seconds). Returns 0 and fills *out, or a JWT_E* code. */
int jwt_verify(const char *token, size_t len, const void *secret,
               size_t secret_len, int64_t now_s, struct jwt_claims *out);

/* Writes a signed HS256 token for c (name omitted when empty, nbf when 0)
 * into out (NUL-terminated). Returns its length, or -1 if outlen is too
 * small. */
int jwt_sign(const struct jwt_claims *c, const void *secret,
             size_t secret_len, char *out, size_t outlen);

const char *jwt_strerror(int rc);
#endif
