/* auth.h - passwords, login-session tokens, cookies, origins.
 *
 * Pure helpers over libsodium: no I/O except the system RNG. Passwords are
 * hashed with argon2id (crypto_pwhash_str, interactive limits); session
 * tokens are 32 random bytes in base64url, and only their SHA-256 is stored;
 * secrets are compared in constant time. */
#ifndef AUTH_H
#define AUTH_H
#include <stddef.h>
#include <stdint.h>

#define AUTH_HASH_MAX 128   /* crypto_pwhash_STRBYTES */
#define AUTH_TOKEN_LEN 43   /* 32 bytes base64url without padding */

/* Must be called once before anything else here (sodium_init). 0 or -1. */
int auth_init(void);

/* Writes an argon2id hash string (NUL-terminated) into out. 0 or -1. */
int auth_password_hash(const char *password, char out[AUTH_HASH_MAX]);
/* 1 if password matches hash, else 0 (also for a malformed hash). */
int auth_password_verify(const char *hash, const char *password);

/* Writes a new random token (AUTH_TOKEN_LEN chars + NUL). */
void auth_token_new(char out[AUTH_TOKEN_LEN + 1]);
/* SHA-256 of the token's bytes. */
void auth_token_hash(const char *token, size_t len, unsigned char out[32]);
/* Hex of n random bytes into out (2n + 1 bytes). */
void auth_random_hex(char *out, size_t n);

/* Constant-time equality of two n-byte buffers: 1 equal, 0 not. */
int auth_equal(const void *a, const void *b, size_t n);

/* Finds cookie 'name' in a Cookie header value ("a=1; b=2"). Copies its
 * value into out (NUL-terminated) and returns its length, or -1 if absent
 * or longer than outlen - 1. */
int auth_cookie_get(const char *header, size_t header_len, const char *name,
                    char *out, size_t outlen);

/* 1 if origin (an Origin header value, e.g. "http://127.0.0.1:8080") is
 * allowed: listed in allowed (comma-separated, "*" allows any), or, when
 * allowed is empty, the server's own: "http://" + host where host is the
 * request's Host header value. 0 otherwise (also for origin "null"). */
int auth_origin_allowed(const char *origin, const char *allowed,
                        const char *host);
/* The same for a page served over TLS (behind a proxy that terminates
 * it): the server's own origin is then "https://" + host. */
int auth_origin_allowed_tls(const char *origin, const char *allowed,
                            const char *host, int https);

/* Address lists ("trusted_proxies"): comma-separated IPv4 or IPv6
 * addresses and CIDR blocks, e.g. "127.0.0.1, ::1, 10.0.0.0/8". An
 * IPv4-mapped IPv6 address (::ffff:1.2.3.4) counts as the IPv4 one. */

/* 0 if list is well formed ("" is: nothing listed), else -1. */
int auth_addr_list_check(const char *list);
/* 1 if addr (textual) is in list, 0 if not or not an address. */
int auth_addr_listed(const char *list, const char *addr);

/* The address a request comes from, into out (NUL-terminated): peer (the
 * socket's address), unless peer is listed in trusted, a proxy that says
 * whom it forwards: then the nearest X-Forwarded-For entry (xff, walked
 * from the right) that is not itself a trusted proxy, or else x_real_ip.
 * Headers from anyone else are ignored: a client cannot choose its own
 * address. xff and x_real_ip may be NULL. */
void auth_client_addr(const char *peer, const char *xff,
                      const char *x_real_ip, const char *trusted, char *out,
                      size_t outlen);
#endif
