/* auth.c - passwords, session tokens, cookies and origins (see auth.h).
 *
 * Everything secret goes through libsodium: argon2id for passwords, the
 * system RNG for tokens, SHA-256 for the stored form of a token, and
 * sodium_memcmp wherever a secret is compared. The cookie and origin
 * helpers are plain string code; they are here because they decide who is
 * let in. */
#include "auth/auth.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Steps through a comma-separated list: the next non-empty item, trimmed,
 * in *s..*e; 0 when there is none left. */
static int next_item(const char **p, const char **s, const char **e)
{
    while (**p) {
        const char *comma = strchr(*p, ',');
        *s = *p;
        *e = comma ? comma : *p + strlen(*p);
        *p = comma ? comma + 1 : *e;
        trim(s, e);
        if (*s != *e)
            return 1;
    }
    return 0;
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
    return auth_origin_allowed_tls(origin, allowed, host, 0);
}

int auth_origin_allowed_tls(const char *origin, const char *allowed,
                            const char *host, int https)
{
    if (!origin || !origin[0])
        return 0;
    /* A sandboxed frame or a file:// page sends "null"; any such page
     * would share it, so only an explicit listing lets it in, never "*"
     * and never the same-origin default. */
    int is_null = strcmp(origin, "null") == 0;
    size_t olen = strlen(origin);
    int any_entry = 0;

    const char *p = allowed ? allowed : "", *s, *e;
    while (next_item(&p, &s, &e)) {
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
    const char *scheme = https ? "https://" : "http://";
    size_t slen = strlen(scheme);
    return olen == slen + strlen(host) &&
           memcmp(origin, scheme, slen) == 0 &&
           strcmp(origin + slen, host) == 0;
}

/* ---- address lists -------------------------------------------------- */

/* An address as 16 bytes (IPv4 as ::ffff:a.b.c.d) for prefix matching. */
struct addr {
    unsigned char b[16];
};

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0,
                                            0, 0, 0, 0, 0xff, 0xff};

/* Parses s..e as an address; returns its bit length (32 or 128), or -1. */
static int addr_parse(const char *s, const char *e, struct addr *a)
{
    char tmp[INET6_ADDRSTRLEN + 1];
    size_t n = (size_t)(e - s);
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    memcpy(a->b, v4_mapped, sizeof v4_mapped);
    if (inet_pton(AF_INET, tmp, a->b + 12) == 1)
        return 32;
    if (inet_pton(AF_INET6, tmp, a->b) != 1)
        return -1;
    return memcmp(a->b, v4_mapped, sizeof v4_mapped) == 0 ? 32 : 128;
}

/* One list entry s..e, "ADDR" or "ADDR/BITS": the address and the number
 * of leading bits of the 16-byte form that must match; -1 if malformed. */
static int entry_parse(const char *s, const char *e, struct addr *a)
{
    const char *slash = memchr(s, '/', (size_t)(e - s));
    int len = addr_parse(s, slash ? slash : e, a);
    if (len < 0)
        return -1;
    if (!slash)
        return 128;
    const char *p = slash + 1;
    if (p == e || e - p > 3)
        return -1;
    int bits = 0;
    for (; p < e; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        bits = bits * 10 + (*p - '0');
    }
    if (bits > len)
        return -1;
    return bits + (128 - len); /* an IPv4 prefix after the 96 mapped bits */
}

static int prefix_equal(const struct addr *x, const struct addr *y, int bits)
{
    int bytes = bits / 8, rest = bits % 8;
    if (memcmp(x->b, y->b, (size_t)bytes) != 0)
        return 0;
    if (!rest)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (x->b[bytes] & mask) == (y->b[bytes] & mask);
}

/* 1 if want matches an entry of list, 0 if none does, -1 at the first
 * malformed entry (want NULL: only checks the list). */
static int list_match(const char *list, const struct addr *want)
{
    const char *p = list ? list : "", *s, *e;
    while (next_item(&p, &s, &e)) {
        struct addr a;
        int bits = entry_parse(s, e, &a);
        if (bits < 0)
            return -1;
        if (want && prefix_equal(&a, want, bits))
            return 1;
    }
    return 0;
}

int auth_addr_list_check(const char *list)
{
    return list_match(list, NULL) < 0 ? -1 : 0;
}

int auth_addr_listed(const char *list, const char *addr)
{
    struct addr a;
    if (!addr || addr_parse(addr, addr + strlen(addr), &a) < 0)
        return 0;
    return list_match(list, &a) == 1;
}

/* Copies s..e (an address that parsed) into out. */
static void put(char *out, size_t outlen, const char *s, const char *e)
{
    snprintf(out, outlen, "%.*s", (int)(e - s), s);
}

void auth_client_addr(const char *peer, const char *xff,
                      const char *x_real_ip, const char *trusted, char *out,
                      size_t outlen)
{
    snprintf(out, outlen, "%s", peer);
    if (!trusted || !*trusted || !auth_addr_listed(trusted, peer))
        return;
    struct addr a;
    if (xff && *xff) {
        /* Each proxy appends the address it got the request from; the
         * entries left of the first one no trusted proxy added are the
         * client's to write, so they are never believed. */
        const char *end = xff + strlen(xff);
        while (end > xff) {
            const char *s = end;
            while (s > xff && s[-1] != ',')
                s--;
            const char *e = end;
            end = s > xff ? s - 1 : xff;
            trim(&s, &e);
            if (addr_parse(s, e, &a) < 0)
                return; /* garbage: the last trusted hop it is */
            put(out, outlen, s, e);
            if (list_match(trusted, &a) != 1)
                return;
        }
        return;
    }
    if (x_real_ip && *x_real_ip) {
        const char *s = x_real_ip, *e = s + strlen(s);
        trim(&s, &e);
        if (addr_parse(s, e, &a) >= 0)
            put(out, outlen, s, e);
    }
}
