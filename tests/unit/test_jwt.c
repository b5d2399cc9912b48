/* test_jwt.c - HS256 verify and sign (src/auth/jwt.c).
 *
 * Tokens under test are assembled here from raw header and payload JSON, so
 * that each refusal path can be reached with exactly one thing wrong. The
 * known-answer vectors were computed once with Python's hmac and base64
 * modules, independently of libsodium and of this code. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"

#define SECRET "unit-test secret"
#define NOW 1700000000

static const char hs256[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

static void b64(const void *p, size_t n, char *out, size_t outlen)
{
    sodium_bin2base64(out, outlen, p, n,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

/* header.payload.signature; the signature is an HMAC with 'secret', or the
 * literal 'sig' when given (NULL secret and sig: empty signature). */
static void make_token(char *out, size_t outlen, const char *header,
                       const char *payload, const char *secret,
                       const char *sig)
{
    char h[2048], p[8192], s[64];
    unsigned char mac[32];
    b64(header, strlen(header), h, sizeof h);
    b64(payload, strlen(payload), p, sizeof p);
    /* Long on purpose: oversized tokens are a case under test. */
    size_t hl = strlen(h), pl = strlen(p);
    assert_true(hl + 1 + pl < outlen);
    memcpy(out, h, hl);
    out[hl] = '.';
    memcpy(out + hl + 1, p, pl + 1);
    if (secret) {
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret,
                                    strlen(secret));
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)out,
                                      strlen(out));
        crypto_auth_hmacsha256_final(&st, mac);
        b64(mac, sizeof mac, s, sizeof s);
    } else {
        snprintf(s, sizeof s, "%s", sig ? sig : "");
    }
    size_t n = strlen(out);
    snprintf(out + n, outlen - n, ".%s", s);
}

static int verify(const char *tok, struct jwt_claims *c)
{
    return jwt_verify(tok, strlen(tok), SECRET, strlen(SECRET), NOW, c);
}

/* Verifies a token with the standard header and the given payload. */
static int verify_payload(const char *payload)
{
    char tok[8192];
    struct jwt_claims c;
    make_token(tok, sizeof tok, hs256, payload, SECRET, NULL);
    return verify(tok, &c);
}

static void test_round_trip(void **state)
{
    struct jwt_claims in, out;
    char tok[JWT_MAX_LEN + 1];
    memset(&in, 0, sizeof in);
    strcpy(in.sub, "user-1");
    strcpy(in.org, "org-1");
    strcpy(in.name, "Zoë \"Z\" <z@x>");
    in.exp = NOW + 60;
    in.nbf = NOW - 60;
    int n = jwt_sign(&in, SECRET, strlen(SECRET), tok, sizeof tok);
    assert_true(n > 0);
    assert_int_equal((size_t)n, strlen(tok));
    assert_int_equal(verify(tok, &out), 0);
    assert_string_equal(out.sub, "user-1");
    assert_string_equal(out.org, "org-1");
    assert_string_equal(out.name, in.name);
    assert_int_equal(out.exp, NOW + 60);
    assert_int_equal(out.nbf, NOW - 60);

    /* No name, no nbf: both come back empty. */
    in.name[0] = '\0';
    in.nbf = 0;
    assert_true(jwt_sign(&in, SECRET, strlen(SECRET), tok, sizeof tok) > 0);
    assert_null(strstr(tok, "=")); /* no padding */
    assert_int_equal(verify(tok, &out), 0);
    assert_string_equal(out.name, "");
    assert_int_equal(out.nbf, 0);
}

static void test_sign_known_answer(void **state)
{
    /* Python: header {"alg":"HS256","typ":"JWT"}, payload {"sub":"u-1",
     * "org":"o-1","name":"Bob","exp":2000000000,"nbf":1500000000}. */
    static const char want[] =
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
        "eyJzdWIiOiJ1LTEiLCJvcmciOiJvLTEiLCJuYW1lIjoiQm9iIiwiZXhwIjoyMDAwMDAw"
        "MDAwLCJuYmYiOjE1MDAwMDAwMDB9."
        "6fP17DiMo7i91YjorUnoUy1WeV8EF8H3jOZ57xI8Uuo";
    static const char key[] = "kat-secret: not 32 bytes long, on purpose";
    struct jwt_claims c;
    char tok[1024];
    memset(&c, 0, sizeof c);
    strcpy(c.sub, "u-1");
    strcpy(c.org, "o-1");
    strcpy(c.name, "Bob");
    c.exp = 2000000000;
    c.nbf = 1500000000;
    assert_int_equal(jwt_sign(&c, key, strlen(key), tok, sizeof tok),
                     (int)strlen(want));
    assert_string_equal(tok, want);
}

static void test_verify_known_answer(void **state)
{
    /* Python, other key order in the header, an escaped name and an iat:
     * {"typ":"JWT","alg":"HS256"} . {"sub":"u-42","org":"acme",
     * "name":"Ana \u00c9lise","iat":1700000000,"exp":2000000000,
     * "nbf":1600000000} */
    static const char tok[] =
        "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9."
        "eyJzdWIiOiJ1LTQyIiwib3JnIjoiYWNtZSIsIm5hbWUiOiJBbmEgXHUwMGM5bGlzZSIs"
        "ImlhdCI6MTcwMDAwMDAwMCwiZXhwIjoyMDAwMDAwMDAwLCJuYmYiOjE2MDAwMDAwMDB9."
        "-o1Rc0zMiFc1mdRskrjLMxQBCnhdmy5Gp5F3vx-dQnQ";
    static const char key[] = "kat-secret: not 32 bytes long, on purpose";
    struct jwt_claims c;
    assert_int_equal(jwt_verify(tok, strlen(tok), key, strlen(key), NOW, &c),
                     0);
    assert_string_equal(c.sub, "u-42");
    assert_string_equal(c.org, "acme");
    assert_string_equal(c.name, "Ana \xc3\x89lise");
    assert_int_equal(c.exp, 2000000000);
    assert_int_equal(c.nbf, 1600000000);
    /* One key byte short: the signature no longer matches. */
    assert_int_equal(jwt_verify(tok, strlen(tok), key, strlen(key) - 1, NOW,
                                &c),
                     JWT_ESIG);
}

static void test_not_nul_terminated(void **state)
{
    char tok[1024], big[2048];
    struct jwt_claims c;
    make_token(tok, sizeof tok, hs256,
               "{\"sub\":\"a\",\"org\":\"b\",\"exp\":2000000000}", SECRET,
               NULL);
    size_t n = strlen(tok);
    memcpy(big, tok, n);
    memset(big + n, 'A', sizeof big - n); /* no terminator after it */
    assert_int_equal(jwt_verify(big, n, SECRET, strlen(SECRET), NOW, &c), 0);
    assert_string_equal(c.sub, "a");
}

static void test_forged_signature(void **state)
{
    char tok[1024];
    struct jwt_claims c;
    make_token(tok, sizeof tok, hs256,
               "{\"sub\":\"a\",\"org\":\"b\",\"exp\":2000000000}", SECRET,
               NULL);
    /* Flip one character in the middle of the signature ('A' <-> 'B' keeps
     * it valid base64url with canonical trailing bits). */
    char *sig = strrchr(tok, '.') + 1;
    sig[10] = sig[10] == 'A' ? 'B' : 'A';
    assert_int_equal(verify(tok, &c), JWT_ESIG);

    /* Changing the payload after signing also fails. */
    char tok2[1024], forged[2048];
    make_token(tok2, sizeof tok2, hs256,
               "{\"sub\":\"admin\",\"org\":\"b\",\"exp\":2000000000}", SECRET,
               NULL);
    make_token(tok, sizeof tok, hs256,
               "{\"sub\":\"a\",\"org\":\"b\",\"exp\":2000000000}", SECRET,
               NULL);
    /* tok2's header.payload with tok's signature. */
    snprintf(forged, sizeof forged, "%.*s%s",
             (int)(strrchr(tok2, '.') - tok2), tok2, strrchr(tok, '.'));
    assert_int_equal(verify(forged, &c), JWT_ESIG);
}

static void test_other_secret(void **state)
{
    char tok[1024];
    struct jwt_claims c;
    make_token(tok, sizeof tok, hs256,
               "{\"sub\":\"a\",\"org\":\"b\",\"exp\":2000000000}",
               "another secret", NULL);
    assert_int_equal(verify(tok, &c), JWT_ESIG);
    /* A prefix of the real secret is another secret too. */
    make_token(tok, sizeof tok, hs256,
               "{\"sub\":\"a\",\"org\":\"b\",\"exp\":2000000000}", "unit",
               NULL);
    assert_int_equal(verify(tok, &c), JWT_ESIG);
}

static void test_empty_secret(void **state)
{
    char tok[1024];
    struct jwt_claims c;
    make_token(tok, sizeof tok, hs256,
               "{\"sub\":\"a\",\"org\":\"b\",\"exp\":2000000000}", "", NULL);
    assert_int_equal(jwt_verify(tok, strlen(tok), "", 0, NOW, &c), JWT_ESIG);
    memset(&c, 0, sizeof c);
    strcpy(c.sub, "a");
    strcpy(c.org, "b");
    c.exp = 2000000000;
    assert_int_equal(jwt_sign(&c, "", 0, tok, sizeof tok), -1);
}

static void test_alg(void **state)
{
    static const char body[] =
        "{\"sub\":\"a\",\"org\":\"b\",\"exp\":2000000000}";
    static const struct {
        const char *header;
        int signed_;
        int want;
    } cases[] = {
        {"{\"alg\":\"none\",\"typ\":\"JWT\"}", 0, JWT_EALG},
        {"{\"alg\":\"none\"}", 1, JWT_EALG},
        {"{\"alg\":\"HS512\",\"typ\":\"JWT\"}", 1, JWT_EALG},
        {"{\"alg\":\"RS256\"}", 1, JWT_EALG},
        {"{\"alg\":\"hs256\"}", 1, JWT_EALG},
        {"{\"alg\":\"HS256 \"}", 1, JWT_EALG},
        {"{\"alg\":null}", 1, JWT_EALG},
        {"{\"alg\":256}", 1, JWT_EALG},
        {"{\"typ\":\"JWT\"}", 1, JWT_EALG},
        {"{}", 1, JWT_EALG},
        /* typ is optional; crit and duplicate keys are refused. */
        {"{\"alg\":\"HS256\"}", 1, 0},
        {"{\"alg\":\"HS256\",\"typ\":\"whatever\"}", 1, 0},
        {"{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", 1, JWT_EFORMAT},
        {"{\"alg\":\"none\",\"alg\":\"HS256\"}", 1, JWT_EFORMAT},
        {"[\"HS256\"]", 1, JWT_EFORMAT},
        {"\"HS256\"", 1, JWT_EFORMAT},
        {"{\"alg\":\"HS256\"", 1, JWT_EFORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char tok[1024];
        struct jwt_claims c;
        make_token(tok, sizeof tok, cases[i].header, body,
                   cases[i].signed_ ? SECRET : NULL, NULL);
        int rc = verify(tok, &c);
        if (rc != cases[i].want)
            fail_msg("header %s: got %d want %d", cases[i].header, rc,
                     cases[i].want);
    }
}

static void test_alg_none_with_real_signature(void **state)
{
    /* Even a signature that is a valid HMAC does not rescue alg none. */
    char tok[1024], sig[64];
    unsigned char mac[32];
    make_token(tok, sizeof tok, "{\"alg\":\"none\"}",
               "{\"sub\":\"a\",\"org\":\"b\",\"exp\":2000000000}", NULL,
               NULL);
    *strrchr(tok, '.') = '\0';
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)SECRET,
                                strlen(SECRET));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)tok,
                                  strlen(tok));
    crypto_auth_hmacsha256_final(&st, mac);
    b64(mac, sizeof mac, sig, sizeof sig);
    strcat(tok, ".");
    strcat(tok, sig);
    struct jwt_claims c;
    assert_int_equal(verify(tok, &c), JWT_EALG);
}

static void test_time(void **state)
{
    char p[256];
    /* now == exp is expired (RFC 7519: "on or after"). */
    snprintf(p, sizeof p, "{\"sub\":\"a\",\"org\":\"b\",\"exp\":%d}", NOW);
    assert_int_equal(verify_payload(p), JWT_EEXPIRED);
    snprintf(p, sizeof p, "{\"sub\":\"a\",\"org\":\"b\",\"exp\":%d}",
             NOW + 1);
    assert_int_equal(verify_payload(p), 0);
    snprintf(p, sizeof p, "{\"sub\":\"a\",\"org\":\"b\",\"exp\":-1}");
    assert_int_equal(verify_payload(p), JWT_EEXPIRED);
    /* nbf in the future, at now, in the past. */
    snprintf(p, sizeof p,
             "{\"sub\":\"a\",\"org\":\"b\",\"exp\":%d,\"nbf\":%d}",
             NOW + 100, NOW + 1);
    assert_int_equal(verify_payload(p), JWT_ENBF);
    snprintf(p, sizeof p,
             "{\"sub\":\"a\",\"org\":\"b\",\"exp\":%d,\"nbf\":%d}",
             NOW + 100, NOW);
    assert_int_equal(verify_payload(p), 0);
    snprintf(p, sizeof p,
             "{\"sub\":\"a\",\"org\":\"b\",\"exp\":%d,\"nbf\":%d,"
             "\"iat\":\"ignored\"}",
             NOW + 100, NOW - 5);
    assert_int_equal(verify_payload(p), 0);
}

static void test_claims(void **state)
{
    char long_id[200], p[1024];
    static const struct {
        const char *payload;
        int want;
    } cases[] = {
        {"{\"org\":\"b\",\"exp\":2000000000}", JWT_ECLAIMS},
        {"{\"sub\":\"a\",\"exp\":2000000000}", JWT_ECLAIMS},
        {"{\"sub\":\"a\",\"org\":\"b\"}", JWT_ECLAIMS},
        {"{\"sub\":\"a\",\"org\":\"b\",\"exp\":\"2000000000\"}", JWT_ECLAIMS},
        {"{\"sub\":\"a\",\"org\":\"b\",\"exp\":2000000000.5}", JWT_ECLAIMS},
        {"{\"sub\":\"a\",\"org\":\"b\",\"exp\":null}", JWT_ECLAIMS},
        {"{\"sub\":\"a\",\"org\":\"b\",\"exp\":2000000000,\"nbf\":\"1\"}",
         JWT_ECLAIMS},
        {"{\"sub\":\"\",\"org\":\"b\",\"exp\":2000000000}", JWT_ECLAIMS},
        {"{\"sub\":\"a\",\"org\":\"\",\"exp\":2000000000}", JWT_ECLAIMS},
        {"{\"sub\":1,\"org\":\"b\",\"exp\":2000000000}", JWT_ECLAIMS},
        {"{\"sub\":\"a\",\"org\":[\"b\"],\"exp\":2000000000}", JWT_ECLAIMS},
        {"{\"sub\":\"a\",\"org\":\"b\",\"name\":7,\"exp\":2000000000}",
         JWT_ECLAIMS},
        {"{\"sub\":\"a\",\"org\":\"b\",\"name\":\"\",\"exp\":2000000000}", 0},
        /* jansson refuses an embedded NUL; that is a malformed token. */
        {"{\"sub\":\"a\\u0000b\",\"org\":\"b\",\"exp\":2000000000}",
         JWT_EFORMAT},
        /* Integers beyond int64 do not parse. */
        {"{\"sub\":\"a\",\"org\":\"b\",\"exp\":99999999999999999999999}",
         JWT_EFORMAT},
        {"{\"sub\":\"a\",\"sub\":\"b\",\"org\":\"b\",\"exp\":2000000000}",
         JWT_EFORMAT},
        {"[1,2]", JWT_EFORMAT},
        {"not json", JWT_EFORMAT},
        {"{\"sub\":\"a\",\"org\":\"b\",\"exp\":2000000000} trailing",
         JWT_EFORMAT},
        {"{\"sub\":\"\xff\",\"org\":\"b\",\"exp\":2000000000}", JWT_EFORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = verify_payload(cases[i].payload);
        if (rc != cases[i].want)
            fail_msg("payload %s: got %d want %d", cases[i].payload, rc,
                     cases[i].want);
    }

    /* Id length limits: 128 bytes fit, 129 do not. */
    memset(long_id, 'x', 128);
    long_id[128] = '\0';
    snprintf(p, sizeof p, "{\"sub\":\"%s\",\"org\":\"b\",\"exp\":2000000000}",
             long_id);
    assert_int_equal(verify_payload(p), 0);
    snprintf(p, sizeof p, "{\"sub\":\"a\",\"org\":\"%sy\",\"exp\":2000000000}",
             long_id);
    assert_int_equal(verify_payload(p), JWT_ECLAIMS);
    snprintf(p, sizeof p, "{\"sub\":\"%sy\",\"org\":\"b\",\"exp\":2000000000}",
             long_id);
    assert_int_equal(verify_payload(p), JWT_ECLAIMS);

    /* Name: 200 bytes fit, 201 do not. */
    char name[202];
    memset(name, 'n', 200);
    name[200] = '\0';
    snprintf(p, sizeof p,
             "{\"sub\":\"a\",\"org\":\"b\",\"name\":\"%s\",\"exp\":2000000000}",
             name);
    assert_int_equal(verify_payload(p), 0);
    strcat(name, "n");
    snprintf(p, sizeof p,
             "{\"sub\":\"a\",\"org\":\"b\",\"name\":\"%s\",\"exp\":2000000000}",
             name);
    assert_int_equal(verify_payload(p), JWT_ECLAIMS);
}

static void test_format(void **state)
{
    char tok[JWT_MAX_LEN], bad[JWT_MAX_LEN * 2];
    struct jwt_claims c;
    make_token(tok, sizeof tok, hs256,
               "{\"sub\":\"a\",\"org\":\"b\",\"exp\":2000000000}", SECRET,
               NULL);
    assert_int_equal(verify(tok, &c), 0);

    /* Two parts. */
    snprintf(bad, sizeof bad, "%.*s", (int)(strrchr(tok, '.') - tok), tok);
    assert_int_equal(verify(bad, &c), JWT_EFORMAT);
    /* Four parts. */
    snprintf(bad, sizeof bad, "%s.AAAA", tok);
    assert_int_equal(verify(bad, &c), JWT_EFORMAT);
    snprintf(bad, sizeof bad, "%s.", tok);
    assert_int_equal(verify(bad, &c), JWT_EFORMAT);
    /* One part, empty, only dots. */
    assert_int_equal(verify("abc", &c), JWT_EFORMAT);
    assert_int_equal(verify("", &c), JWT_EFORMAT);
    assert_int_equal(verify("..", &c), JWT_EFORMAT);
    assert_int_equal(jwt_verify(NULL, 0, SECRET, strlen(SECRET), NOW, &c),
                     JWT_EFORMAT);
    /* Padding anywhere. */
    snprintf(bad, sizeof bad, "%s=", tok);
    assert_int_equal(verify(bad, &c), JWT_EFORMAT);
    /* Characters outside base64url: '+' '/' (standard alphabet), space,
     * '*', and a NUL inside the given length. */
    static const char swaps[] = {'+', '/', ' ', '*', '\0'};
    for (size_t i = 0; i < sizeof swaps; i++) {
        size_t n = strlen(tok);
        memcpy(bad, tok, n + 1);
        bad[3] = swaps[i];
        assert_int_equal(jwt_verify(bad, n, SECRET, strlen(SECRET), NOW, &c),
                         JWT_EFORMAT);
    }
    /* A part whose length is 1 mod 4 cannot be base64. */
    snprintf(bad, sizeof bad, "A.%s", strchr(tok, '.') + 1);
    assert_int_equal(verify(bad, &c), JWT_EFORMAT);
    /* Wrong signature length is a bad signature. */
    snprintf(bad, sizeof bad, "%.*s.AAAA", (int)(strrchr(tok, '.') - tok),
             tok);
    assert_int_equal(verify(bad, &c), JWT_ESIG);
}

static void test_too_long(void **state)
{
    /* A validly signed token just over the limit is refused unread; one at
     * the limit is accepted. Pad with a name-less filler claim. */
    char payload[JWT_MAX_LEN], tok[JWT_MAX_LEN * 2];
    struct jwt_claims c;
    int found_ok = 0, found_long = 0;
    for (int fill = 2900; fill < 3100; fill++) {
        snprintf(payload, sizeof payload,
                 "{\"sub\":\"a\",\"org\":\"b\",\"exp\":2000000000,"
                 "\"pad\":\"%0*d\"}", fill, 0);
        make_token(tok, sizeof tok, hs256, payload, SECRET, NULL);
        size_t n = strlen(tok);
        int rc = verify(tok, &c);
        if (n <= JWT_MAX_LEN) {
            assert_int_equal(rc, 0);
            found_ok |= n == JWT_MAX_LEN || n >= JWT_MAX_LEN - 3;
        } else {
            assert_int_equal(rc, JWT_EFORMAT);
            found_long = 1;
        }
    }
    assert_true(found_ok);
    assert_true(found_long);
}

static void test_sign_short_buffer(void **state)
{
    struct jwt_claims c;
    char tok[1024];
    memset(&c, 0, sizeof c);
    strcpy(c.sub, "a");
    strcpy(c.org, "b");
    c.exp = 2000000000;
    int n = jwt_sign(&c, SECRET, strlen(SECRET), tok, sizeof tok);
    assert_true(n > 0);
    /* Exactly enough room (token + NUL) works; one byte less does not. */
    char *exact = malloc((size_t)n + 1);
    assert_int_equal(jwt_sign(&c, SECRET, strlen(SECRET), exact,
                              (size_t)n + 1),
                     n);
    assert_string_equal(exact, tok);
    assert_int_equal(jwt_sign(&c, SECRET, strlen(SECRET), exact, (size_t)n),
                     -1);
    for (size_t len = 0; len < 40; len++)
        assert_int_equal(jwt_sign(&c, SECRET, strlen(SECRET), exact, len),
                         -1);
    free(exact);
    /* Invalid UTF-8 cannot be signed. */
    strcpy(c.name, "\xff");
    assert_int_equal(jwt_sign(&c, SECRET, strlen(SECRET), tok, sizeof tok),
                     -1);
}

static void test_strerror(void **state)
{
    int codes[] = {JWT_EFORMAT, JWT_EALG, JWT_ESIG, JWT_EEXPIRED, JWT_ENBF,
                   JWT_ECLAIMS};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        assert_non_null(jwt_strerror(codes[i]));
        assert_string_not_equal(jwt_strerror(codes[i]), "unknown error");
    }
    assert_string_equal(jwt_strerror(-99), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_sign_known_answer),
        cmocka_unit_test(test_verify_known_answer),
        cmocka_unit_test(test_not_nul_terminated),
        cmocka_unit_test(test_forged_signature),
        cmocka_unit_test(test_other_secret),
        cmocka_unit_test(test_empty_secret),
        cmocka_unit_test(test_alg),
        cmocka_unit_test(test_alg_none_with_real_signature),
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_claims),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_too_long),
        cmocka_unit_test(test_sign_short_buffer),
        cmocka_unit_test(test_strerror),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
