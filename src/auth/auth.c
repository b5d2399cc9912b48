/* auth.c - passwords, session tokens, cookies and origins (see auth.h).
 *
 * Everything secret goes through libsodium: argon2id for passwords, the
 * system RNG for tokens, SHA-256 for the stored form of a token, and
 * sodium_memcmp wherever a secret is compared. The cookie and origin
 * helpers are plain string code; they are here because they decide who is
 * let in. */
#include "auth/auth.h"

#include <sodium.h>
#include <string.h>

/* auth.h documents argon2id; crypto_pwhash_str() uses the library default,
 * so make a future libsodium that changes it fail to build, not silently
 * downgrade or change the stored format. */
_Static_assert(crypto_pwhash_ALG_DEFAULT == crypto_pwhash_ALG_ARGON2ID13,
               "crypto_pwhash_str must produce argon2id hashes");
_Static_assert(AUTH_HASH_MAX == crypto_pwhash_STRBYTES,
               "AUTH_HASH_MAX is crypto_pwhash_STRBYTES");

#define TOKEN_BYTES 32

int auth_init(void)
{
    /* 1 means "already initialised", which is fine. */
    return sodium_init() < 0 ? -1 : 0;
}

int auth_password_hash(const char *password, char out[AUTH_HASH_MAX])
{
    /* Fails only when the system cannot give the 64 MiB argon2id asks
     * for; the caller reports that rather than storing a weaker hash. */
    if (crypto_pwhash_str(out, password, strlen(password),
                          crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

int auth_password_verify(const char *hash, const char *password)
{
    /* A hash that fills its array has no terminator inside it, and an
     * empty one ("no password set", as store/ keeps it) matches nothing. */
    if (!hash || !password || hash[0] == '\0' ||
        strnlen(hash, AUTH_HASH_MAX) == AUTH_HASH_MAX)
        return 0;
    return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

void auth_token_new(char out[AUTH_TOKEN_LEN + 1])
{
    unsigned char raw[TOKEN_BYTES];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(out, AUTH_TOKEN_LEN + 1, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
}

void auth_token_hash(const char *token, size_t len, unsigned char out[32])
{
    crypto_hash_sha256(out, (const unsigned char *)token, len);
}

void auth_random_hex(char *out, size_t n)
{
    /* In chunks, so that any n works without an allocation. */
    unsigned char raw[32];
    out[0] = '\0';
    while (n > 0) {
        size_t k = n < sizeof raw ? n : sizeof raw;
        randombytes_buf(raw, k);
        sodium_bin2hex(out, 2 * k + 1, raw, k);
        out += 2 * k;
        n -= k;
    }
    sodium_memzero(raw, sizeof raw);
}

int auth_equal(const void *a, const void *b, size_t n)
{
    return sodium_memcmp(a, b, n) == 0;
}

/* ---- Cookie header ----------------------------------------------------- */

static int is_ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* Trims optional whitespace from both ends of [*s, *e). */
static void trim(const char **s, const char **e)
{
    while (*s < *e && is_ows(**s))
        (*s)++;
    while (*e > *s && is_ows((*e)[-1]))
        (*e)--;
}

int auth_cookie_get(const char *header, size_t header_len, const char *name,
                    char *out, size_t outlen)
{
    if (!header || !name || !name[0] || !out || outlen == 0)
        return -1;
    size_t name_len = strlen(name);
    const char *p = header, *end = header + header_len;

    /* RFC 6265 5.4: pairs separated by ';'. Browsers send "; " but
     * proxies and hand-written clients vary, so whitespace around names,
     * '=' and values is ignored. A pair without '=' has no name and can
     * never match. The first pair with the name wins (the browser puts
     * the most specific path first). */
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *pe = semi ? semi : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        if (eq) {
            const char *ns = p, *ne = eq, *vs = eq + 1, *ve = pe;
            trim(&ns, &ne);
            /* Whole-name comparison: "sid" must not match "xsid". */
            if ((size_t)(ne - ns) == name_len &&
                memcmp(ns, name, name_len) == 0) {
                trim(&vs, &ve);
                /* RFC 6265 4.1.1: a value may be wrapped in DQUOTEs,
                 * which are not part of it. */
                if (ve - vs >= 2 && vs[0] == '"' && ve[-1] == '"') {
                    vs++;
                    ve--;
                }
                size_t n = (size_t)(ve - vs);
                if (n > outlen - 1)
                    return -1;
                memcpy(out, vs, n);
                out[n] = '\0';
                return (int)n;
            }
        }
        p = pe + 1;
    }
    return -1;
}

/* ---- Origin check ------------------------------------------------------ */

int auth_origin_allowed(const char *origin, const char *allowed,
                        const char *host)
{
    if (!origin || !origin[0])
        return 0;
    /* A sandboxed frame or a file:// page sends "null"; any such page
     * would share it, so only an explicit listing lets it in, never "*"
     * and never the same-origin default. */
    int is_null = strcmp(origin, "null") == 0;
    size_t olen = strlen(origin);
    int any_entry = 0;

    for (const char *p = allowed ? allowed : ""; *p;) {
        const char *comma = strchr(p, ',');
        const char *s = p, *e = comma ? comma : p + strlen(p);
        p = comma ? comma + 1 : e;
        trim(&s, &e);
        if (s == e)
            continue;
        any_entry = 1;
        if (e - s == 1 && *s == '*') {
            if (!is_null)
                return 1;
            continue;
        }
        if ((size_t)(e - s) == olen && memcmp(s, origin, olen) == 0)
            return 1;
    }
    if (any_entry || is_null || !host || !host[0])
        return 0;

    /* No list: only the server's own origin, as the browser builds it
     * from the URL it loaded the page from. */
    static const char scheme[] = "http://";
    size_t slen = sizeof scheme - 1;
    return olen == slen + strlen(host) &&
           memcmp(origin, scheme, slen) == 0 &&
           strcmp(origin + slen, host) == 0;
}
