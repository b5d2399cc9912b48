/* test_msg.c - protocol JSON codecs (src/presence/msg.c).
 *
 * Outputs are compared byte for byte with the formats in msg.h, and every
 * encoder's output is also re-parsed with jansson to prove it is JSON. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "presence/msg.h"


static int parse(const char *s, struct msg_in *m, char *err, size_t errlen)
{
    return msg_parse(s, strlen(s), m, err, errlen);
}

/* Asserts that b holds a single valid JSON text and returns it parsed. */
static json_t *must_parse(const struct buf *b)
{
    json_error_t je;
    json_t *j = json_loadb(b->data, b->len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        fail_msg("not JSON (%s): %.*s", je.text, (int)b->len, b->data);
    return j;
}

/* ---- Parsing ----------------------------------------------------------- */

static void test_parse_ok(void **state)
{
    static const struct {
        const char *in;
        enum msg_type type;
        enum presence_status status;
        int is_auto;
    } cases[] = {
        {"{\"type\":\"ping\"}", MSG_PING, 0, 0},
        {" { \"type\" : \"ping\" , \"extra\" : [1, {\"x\":null}] } ", MSG_PING,
         0, 0},
        {"{\"type\":\"status\",\"status\":\"ONLINE\"}", MSG_STATUS,
         PRESENCE_ONLINE, 0},
        {"{\"type\":\"status\",\"status\":\"AWAY\"}", MSG_STATUS,
         PRESENCE_AWAY, 0},
        {"{\"type\":\"status\",\"status\":\"BUSY\"}", MSG_STATUS,
         PRESENCE_BUSY, 0},
        {"{\"type\":\"status\",\"status\":\"OFFLINE\"}", MSG_STATUS,
         PRESENCE_OFFLINE, 0},
        {"{\"status\":\"AWAY\",\"auto\":true,\"type\":\"status\"}", MSG_STATUS,
         PRESENCE_AWAY, 1},
        {"{\"type\":\"status\",\"status\":\"ONLINE\",\"auto\":true}",
         MSG_STATUS, PRESENCE_ONLINE, 1},
        {"{\"type\":\"status\",\"status\":\"OFFLINE\",\"auto\":true}",
         MSG_STATUS, PRESENCE_OFFLINE, 1},
        /* "auto": false is the same as absent, so BUSY is fine. */
        {"{\"type\":\"status\",\"status\":\"BUSY\",\"auto\":false}",
         MSG_STATUS, PRESENCE_BUSY, 0},
        /* Unknown fields are ignored, whatever they hold. */
        {"{\"type\":\"status\",\"status\":\"AWAY\",\"at\":1e300,"
         "\"note\":\"\xf0\x9f\x98\x80\"}",
         MSG_STATUS, PRESENCE_AWAY, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct msg_in m;
        char err[128] = "";
        memset(&m, 0x5a, sizeof m);
        int rc = parse(cases[i].in, &m, err, sizeof err);
        if (rc != 0)
            fail_msg("%s: rc %d (%s)", cases[i].in, rc, err);
        assert_int_equal(m.type, cases[i].type);
        if (m.type == MSG_STATUS) {
            assert_int_equal(m.status, cases[i].status);
            assert_int_equal(m.is_auto, cases[i].is_auto);
        }
    }
}

static void test_parse_not_nul_terminated(void **state)
{
    static const char in[] = "{\"type\":\"ping\"}{\"type\":\"status\"}";
    struct msg_in m;
    char err[64];
    assert_int_equal(msg_parse(in, 15, &m, err, sizeof err), 0);
    assert_int_equal(m.type, MSG_PING);
    /* The whole buffer is two texts: trailing data is not JSON. */
    assert_int_equal(msg_parse(in, sizeof in - 1, &m, err, sizeof err),
                     MSG_EJSON);
}

static void test_parse_errors(void **state)
{
    static const struct {
        const char *in;
        int rc;
    } cases[] = {
        /* Not JSON. */
        {"", MSG_EJSON},
        {" ", MSG_EJSON},
        {"{", MSG_EJSON},
        {"{\"type\":\"ping\",}", MSG_EJSON},
        {"{'type':'ping'}", MSG_EJSON},
        {"{\"type\":\"ping\"} x", MSG_EJSON},
        {"{\"type\":\"ping\"}{}", MSG_EJSON},
        {"ping", MSG_EJSON},
        {"{\"type\":\"ping\",\"type\":\"status\"}", MSG_EJSON},
        {"{\"type\":\"ping\",\"type\":\"ping\"}", MSG_EJSON},
        {"{\"type\":\"ping\",\"n\":123456789012345678901234567890}",
         MSG_EJSON},
        {"{\"type\":\"ping\",\"n\":1e99999}", MSG_EJSON},
        {"{\"type\":\"ping\",\"n\":-1e99999}", MSG_EJSON},
        {"{\"type\":\"ping\\u0000\"}", MSG_EJSON},
        {"{\"type\":\"ping\",\"x\":\"\\ud800\"}", MSG_EJSON},
        /* Invalid UTF-8: a stray continuation byte, a lone lead byte, an
         * overlong '/', an encoded surrogate, and above U+10FFFF. */
        {"{\"type\":\"ping\",\"x\":\"\x80\"}", MSG_EJSON},
        {"{\"type\":\"ping\",\"x\":\"\xc3\"}", MSG_EJSON},
        {"{\"type\":\"ping\",\"x\":\"\xc0\xaf\"}", MSG_EJSON},
        {"{\"type\":\"ping\",\"x\":\"\xed\xa0\x80\"}", MSG_EJSON},
        {"{\"type\":\"ping\",\"x\":\"\xf4\x90\x80\x80\"}", MSG_EJSON},
        {"{\"type\":\"ping\",\"\xff\":1}", MSG_EJSON},
        /* Not an object. */
        {"[]", MSG_EROOT},
        {"[{\"type\":\"ping\"}]", MSG_EROOT},
        {"\"x\"", MSG_EROOT},
        {"1", MSG_EROOT},
        {"-0.5", MSG_EROOT},
        {"null", MSG_EROOT},
        {"true", MSG_EROOT},
        /* type */
        {"{}", MSG_ETYPE},
        {"{\"Type\":\"ping\"}", MSG_ETYPE},
        {"{\"type\":null}", MSG_ETYPE},
        {"{\"type\":1}", MSG_ETYPE},
        {"{\"type\":[\"ping\"]}", MSG_ETYPE},
        {"{\"type\":\"PING\"}", MSG_ETYPE},
        {"{\"type\":\"pong\"}", MSG_ETYPE},
        {"{\"type\":\"ping \"}", MSG_ETYPE},
        {"{\"type\":\"\"}", MSG_ETYPE},
        {"{\"type\":\"hello\"}", MSG_ETYPE},
        /* status */
        {"{\"type\":\"status\"}", MSG_ESTATUS},
        {"{\"type\":\"status\",\"status\":null}", MSG_ESTATUS},
        {"{\"type\":\"status\",\"status\":2}", MSG_ESTATUS},
        {"{\"type\":\"status\",\"status\":\"online\"}", MSG_ESTATUS},
        {"{\"type\":\"status\",\"status\":\"Online\"}", MSG_ESTATUS},
        {"{\"type\":\"status\",\"status\":\"ONLINE \"}", MSG_ESTATUS},
        {"{\"type\":\"status\",\"status\":\"\"}", MSG_ESTATUS},
        {"{\"type\":\"status\",\"status\":\"UNSET\"}", MSG_ESTATUS},
        {"{\"type\":\"status\",\"status\":\"INVISIBLE\"}", MSG_ESTATUS},
        {"{\"type\":\"status\",\"status\":\"BUSY\",\"auto\":true}",
         MSG_ESTATUS},
        /* auto */
        {"{\"type\":\"status\",\"status\":\"AWAY\",\"auto\":\"true\"}",
         MSG_EFIELD},
        {"{\"type\":\"status\",\"status\":\"AWAY\",\"auto\":1}", MSG_EFIELD},
        {"{\"type\":\"status\",\"status\":\"AWAY\",\"auto\":0}", MSG_EFIELD},
        {"{\"type\":\"status\",\"status\":\"AWAY\",\"auto\":null}",
         MSG_EFIELD},
        {"{\"type\":\"status\",\"status\":\"AWAY\",\"auto\":{}}", MSG_EFIELD},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct msg_in m, before;
        char err[128] = "";
        memset(&m, 0x5a, sizeof m);
        before = m;
        int rc = parse(cases[i].in, &m, err, sizeof err);
        if (rc != cases[i].rc)
            fail_msg("%s: rc %d want %d (%s)", cases[i].in, rc, cases[i].rc,
                     err);
        if (!err[0])
            fail_msg("%s: no reason", cases[i].in);
        /* The reason goes back in a text frame: it must be valid UTF-8,
         * which for these fixed reasons means plain ASCII. */
        for (const char *p = err; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                fail_msg("%s: reason has byte 0x%02x", cases[i].in,
                         (unsigned char)*p);
        assert_memory_equal(&m, &before, sizeof m);
    }
}

static void test_parse_reasons(void **state)
{
    struct msg_in m;
    char err[128];
    assert_int_equal(parse("{\"type\":\"status\",\"status\":\"x\"}", &m, err,
                           sizeof err),
                     MSG_ESTATUS);
    assert_string_equal(err,
                        "status must be one of ONLINE, AWAY, BUSY, OFFLINE");
    assert_int_equal(parse("{\"type\":\"status\",\"status\":\"BUSY\","
                           "\"auto\":true}",
                           &m, err, sizeof err),
                     MSG_ESTATUS);
    assert_string_equal(err, "BUSY cannot be an automatic status");
    assert_int_equal(parse("{\"type\":\"status\",\"status\":\"AWAY\","
                           "\"auto\":1}",
                           &m, err, sizeof err),
                     MSG_EFIELD);
    assert_string_equal(err, "auto must be true or false");
    assert_int_equal(parse("[]", &m, err, sizeof err), MSG_EROOT);
    assert_string_equal(err, "message must be a JSON object");
    assert_int_equal(parse("{\"type\":\"x\"}", &m, err, sizeof err),
                     MSG_ETYPE);
    assert_string_equal(err, "type must be \"status\", \"update\", "
                             "\"ping\", \"subscribe\" or \"unsubscribe\"");
    assert_int_equal(parse("{\"type\":\"ping\",\"x\":\"\xff\"}", &m, err,
                           sizeof err),
                     MSG_EJSON);
    assert_true(strncmp(err, "message is not valid UTF-8", 26) == 0);
    assert_int_equal(parse("{\"a\":1,\"a\":2}", &m, err, sizeof err),
                     MSG_EJSON);
    assert_true(strncmp(err, "message has a duplicate key", 27) == 0);

    /* A short or absent err buffer is fine. */
    char tiny[8];
    assert_int_equal(parse("[]", &m, tiny, sizeof tiny), MSG_EROOT);
    assert_string_equal(tiny, "message");
    assert_int_equal(parse("[]", &m, NULL, 0), MSG_EROOT);
    assert_int_equal(msg_parse(NULL, 0, &m, err, sizeof err), MSG_EJSON);
}

static void test_parse_deep_nesting(void **state)
{
    size_t n = 100000;
    char *s = malloc(2 * n + 1);
    struct msg_in m;
    char err[128];
    memset(s, '[', n);
    assert_int_equal(msg_parse(s, n, &m, err, sizeof err), MSG_EJSON);
    memset(s + n, ']', n);
    assert_int_equal(msg_parse(s, 2 * n, &m, err, sizeof err), MSG_EJSON);
    assert_true(strncmp(err, "message is nested too deeply", 28) == 0);
    /* Objects nested inside an otherwise good message. */
    size_t k = 0;
    k += (size_t)sprintf(s, "{\"type\":\"ping\",\"x\":");
    for (size_t i = 0; i < 30000; i++) {
        memcpy(s + k, "{\"a\":", 5);
        k += 5;
    }
    assert_int_equal(msg_parse(s, k, &m, err, sizeof err), MSG_EJSON);
    /* Moderate depth is fine, and the root is still judged. */
    memset(s, '[', 100);
    memset(s + 100, ']', 100);
    assert_int_equal(msg_parse(s, 200, &m, err, sizeof err), MSG_EROOT);
    free(s);
}

static void test_error_code(void **state)
{
    assert_string_equal(msg_error_code(MSG_EJSON), "bad_json");
    assert_string_equal(msg_error_code(MSG_EROOT), "bad_message");
    assert_string_equal(msg_error_code(MSG_EFIELD), "bad_message");
    assert_string_equal(msg_error_code(MSG_ETYPE), "unknown_type");
    assert_string_equal(msg_error_code(MSG_ESTATUS), "invalid_status");
}

/* ---- Strings ----------------------------------------------------------- */

static void check_string(const char *in, const char *want)
{
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(msg_append_string(&b, in), 0);
    assert_string_equal(b.data, want);
    assert_int_equal(b.len, strlen(want));
    buf_dispose(&b);
}

static void test_append_string(void **state)
{
    check_string("", "\"\"");
    check_string("plain", "\"plain\"");
    check_string("a\"b\\c<d>e/f'", "\"a\\\"b\\\\c<d>e/f'\"");
    check_string("\n\r\t\b\f", "\"\\n\\r\\t\\b\\f\"");
    check_string("\x01\x1f\x7f", "\"\\u0001\\u001f\x7f\"");
    check_string("\x1b[31mred", "\"\\u001b[31mred\"");
    check_string("\"", "\"\\\"\"");
    check_string("\\", "\"\\\\\"");
    /* UTF-8 passes through: 2, 3 and 4 byte forms, U+10FFFF. */
    check_string("Zo\xc3\xab \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 "
                 "\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb",
                 "\"Zo\xc3\xab \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 "
                 "\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb\"");
    check_string("\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"");
    check_string("\xe2\x80\xa8", "\"\xe2\x80\xa8\"");
    /* Invalid UTF-8 becomes U+FFFD, one per bad byte, so the frame stays
     * valid UTF-8. */
    check_string("a\xff" "b", "\"a\\ufffdb\"");
    check_string("\x80", "\"\\ufffd\"");
    check_string("\xc3", "\"\\ufffd\"");               /* truncated */
    check_string("\xc3(", "\"\\ufffd(\"");
    check_string("\xc0\xaf", "\"\\ufffd\\ufffd\"");    /* overlong */
    check_string("\xe0\x80\xaf", "\"\\ufffd\\ufffd\\ufffd\"");
    check_string("\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
    check_string("\xf4\x90\x80\x80",
                 "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  /* > U+10FFFF */
    check_string("\xf0\x9f\x98", "\"\\ufffd\\ufffd\\ufffd\"");
    check_string(NULL, "null");
}

static void test_append_string_every_byte(void **state)
{
    /* Every single byte, and every byte between two emoji, comes out as a
     * JSON string that jansson reads back to the same text (for valid
     * input) or to U+FFFD (for a lone non-ASCII byte). */
    for (int c = 1; c < 256; c++) {
        char in[16];
        struct buf b;
        buf_init(&b, 0);
        snprintf(in, sizeof in, "\xf0\x9f\x98\x80%c\xf0\x9f\x98\x80", c);
        assert_int_equal(msg_append_string(&b, in), 0);
        json_error_t je;
        json_t *j = json_loadb(b.data, b.len, JSON_DECODE_ANY, &je);
        if (!j || !json_is_string(j))
            fail_msg("byte 0x%02x: %s -> %s", c, b.data, je.text);
        if (c < 0x80)
            assert_string_equal(json_string_value(j), in);
        else
            assert_string_equal(json_string_value(j),
                                "\xf0\x9f\x98\x80\xef\xbf\xbd"
                                "\xf0\x9f\x98\x80");
        json_decref(j);
        buf_dispose(&b);
    }
}

/* ---- Encoders ---------------------------------------------------------- */

static void test_hello(void **state)
{
    struct buf b;
    buf_init(&b, 0);
    struct msg_hello h = {
        .user = "u1", .org = "acme", .name = "Ana \"A\" <a@x>",
        .heartbeat_s = 30, .away_after_s = 300, .offline_after_s = 1800,
        .status = PRESENCE_ONLINE, .manual = PRESENCE_UNSET,
        .max_msg = 65536,
    };
    assert_int_equal(msg_encode_hello(&b, &h), 0);
    assert_string_equal(
        b.data,
        "{\"type\":\"hello\",\"user\":\"u1\",\"org\":\"acme\","
        "\"name\":\"Ana \\\"A\\\" <a@x>\",\"heartbeat\":30,"
        "\"away_after\":300,\"offline_after\":1800,\"status\":\"ONLINE\","
        "\"manual\":null,\"max_message\":65536}");
    json_decref(must_parse(&b));

    buf_reset(&b);
    h.status = PRESENCE_BUSY;
    h.manual = PRESENCE_BUSY;
    h.name = "";
    assert_int_equal(msg_encode_hello(&b, &h), 0);
    assert_string_equal(
        b.data,
        "{\"type\":\"hello\",\"user\":\"u1\",\"org\":\"acme\",\"name\":\"\","
        "\"heartbeat\":30,\"away_after\":300,\"offline_after\":1800,"
        "\"status\":\"BUSY\",\"manual\":\"BUSY\",\"max_message\":65536}");
    buf_dispose(&b);
}

static void test_presence(void **state)
{
    struct buf b;
    buf_init(&b, 0);
    struct presence_event ev = {
        .m = {.org = "acme", .user = "u1",
              .name = "Zo\xc3\xab \xf0\x9f\x98\x80",
              .status = PRESENCE_AWAY, .manual = PRESENCE_UNSET,
              .last_seen_ms = 1700000000123, .nconns = 2},
        .seq = 42,
        .reason = PRESENCE_R_IDLE,
    };
    assert_int_equal(msg_encode_presence(&b, &ev), 0);
    assert_string_equal(
        b.data,
        "{\"type\":\"presence\",\"user\":\"u1\","
        "\"name\":\"Zo\xc3\xab \xf0\x9f\x98\x80\",\"status\":\"AWAY\","
        "\"last_seen\":1700000000123,\"seq\":42,\"reason\":\"idle\"}");
    json_decref(must_parse(&b));

    /* Never seen: null. Big seq. Control characters in the name. */
    buf_reset(&b);
    ev.m.last_seen_ms = 0;
    ev.m.name = "tab\there\nnew\x01";
    ev.seq = UINT64_MAX;
    ev.m.status = PRESENCE_OFFLINE;
    ev.reason = PRESENCE_R_GRACE_EXPIRED;
    assert_int_equal(msg_encode_presence(&b, &ev), 0);
    assert_string_equal(
        b.data,
        "{\"type\":\"presence\",\"user\":\"u1\","
        "\"name\":\"tab\\there\\nnew\\u0001\",\"status\":\"OFFLINE\","
        "\"last_seen\":null,\"seq\":18446744073709551615,"
        "\"reason\":\"grace_expired\"}");
    buf_dispose(&b);
}

static void test_snapshot(void **state)
{
    static const struct presence_member members[3] = {
        {.org = "o", .user = "a", .name = "A", .status = PRESENCE_ONLINE,
         .manual = PRESENCE_UNSET, .last_seen_ms = 5, .nconns = 1},
        {.org = "o", .user = "b", .name = "B \"quoted\"",
         .status = PRESENCE_OFFLINE, .manual = PRESENCE_UNSET,
         .last_seen_ms = 0},
        {.org = "o", .user = "c", .name = "\xf0\x9f\x90\x88",
         .status = PRESENCE_BUSY, .manual = PRESENCE_BUSY,
         .last_seen_ms = 1700000000000, .nconns = 3},
    };
    static const char *want[] = {
        "{\"type\":\"snapshot\",\"seq\":7,\"members\":[]}",
        "{\"type\":\"snapshot\",\"seq\":7,\"members\":["
        "{\"user\":\"a\",\"name\":\"A\",\"status\":\"ONLINE\","
        "\"last_seen\":5}]}",
        NULL,
        "{\"type\":\"snapshot\",\"seq\":7,\"members\":["
        "{\"user\":\"a\",\"name\":\"A\",\"status\":\"ONLINE\","
        "\"last_seen\":5},"
        "{\"user\":\"b\",\"name\":\"B \\\"quoted\\\"\","
        "\"status\":\"OFFLINE\",\"last_seen\":null},"
        "{\"user\":\"c\",\"name\":\"\xf0\x9f\x90\x88\",\"status\":\"BUSY\","
        "\"last_seen\":1700000000000}]}",
    };
    for (size_t n = 0; n <= 3; n++) {
        struct buf b;
        buf_init(&b, 0);
        assert_int_equal(msg_snapshot_begin(&b, 7), 0);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(msg_snapshot_member(&b, &members[i]), 0);
        assert_int_equal(msg_snapshot_end(&b), 0);
        if (want[n])
            assert_string_equal(b.data, want[n]);
        json_t *j = must_parse(&b);
        json_t *arr = json_object_get(j, "members");
        assert_true(json_is_array(arr));
        assert_int_equal(json_array_size(arr), n);
        assert_int_equal(json_integer_value(json_object_get(j, "seq")), 7);
        for (size_t i = 0; i < n; i++) {
            json_t *m = json_array_get(arr, i);
            assert_string_equal(
                json_string_value(json_object_get(m, "name")),
                members[i].name);
        }
        json_decref(j);
        buf_dispose(&b);
    }
}

static void test_small_messages(void **state)
{
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(msg_encode_pong(&b), 0);
    assert_string_equal(b.data, "{\"type\":\"pong\"}");
    buf_reset(&b);
    assert_int_equal(msg_encode_error(&b, "invalid_status",
                                      "status must be one of ONLINE, AWAY, "
                                      "BUSY, OFFLINE"),
                     0);
    assert_string_equal(b.data,
                        "{\"type\":\"error\",\"code\":\"invalid_status\","
                        "\"message\":\"status must be one of ONLINE, AWAY, "
                        "BUSY, OFFLINE\"}");
    buf_reset(&b);
    assert_int_equal(msg_encode_error(&b, "bad_message", "a \"b\"\n"), 0);
    assert_string_equal(b.data,
                        "{\"type\":\"error\",\"code\":\"bad_message\","
                        "\"message\":\"a \\\"b\\\"\\n\"}");
    buf_dispose(&b);
}

static void test_member(void **state)
{
    struct buf b;
    buf_init(&b, 0);
    struct presence_member m = {
        .org = "o", .user = "u<1>", .name = "N\\M", .status = PRESENCE_AWAY,
        .manual = PRESENCE_AWAY, .last_seen_ms = 0, .nconns = 0,
    };
    assert_int_equal(msg_encode_member(&b, &m), 0);
    assert_string_equal(b.data,
                        "{\"user\":\"u<1>\",\"name\":\"N\\\\M\","
                        "\"status\":\"AWAY\",\"last_seen\":null,"
                        "\"connections\":0}");
    buf_reset(&b);
    m.last_seen_ms = 1;
    m.nconns = 12;
    assert_int_equal(msg_encode_member(&b, &m), 0);
    assert_string_equal(b.data,
                        "{\"user\":\"u<1>\",\"name\":\"N\\\\M\","
                        "\"status\":\"AWAY\",\"last_seen\":1,"
                        "\"connections\":12}");
    json_decref(must_parse(&b));
    buf_dispose(&b);
}

/* Hardening II #9: others see a user who appears offline exactly as a
 * user who is really offline; the user itself sees its connections. */
static void test_member_appear_offline(void **state)
{
    struct buf inv, off, self;
    buf_init(&inv, 0);
    buf_init(&off, 0);
    buf_init(&self, 0);
    struct presence_member m = {
        .org = "o", .user = "u1", .name = "Ann", .status = PRESENCE_OFFLINE,
        .manual = PRESENCE_OFFLINE, .last_seen_ms = 1700, .nconns = 2,
    };
    struct presence_member really = m;
    really.manual = PRESENCE_UNSET;
    really.nconns = 0;
    assert_int_equal(msg_encode_member(&inv, &m), 0);
    assert_int_equal(msg_encode_member(&off, &really), 0);
    assert_string_equal(inv.data, off.data);
    assert_string_equal(inv.data,
                        "{\"user\":\"u1\",\"name\":\"Ann\","
                        "\"status\":\"OFFLINE\",\"last_seen\":1700,"
                        "\"connections\":0}");
    assert_int_equal(msg_encode_member_self(&self, &m), 0);
    assert_string_equal(self.data,
                        "{\"user\":\"u1\",\"name\":\"Ann\","
                        "\"status\":\"OFFLINE\",\"last_seen\":1700,"
                        "\"connections\":2}");
    /* Other manual statuses hide nothing. */
    buf_reset(&inv);
    m.manual = PRESENCE_BUSY;
    m.status = PRESENCE_BUSY;
    assert_int_equal(msg_encode_member(&inv, &m), 0);
    assert_string_equal(inv.data,
                        "{\"user\":\"u1\",\"name\":\"Ann\","
                        "\"status\":\"BUSY\",\"last_seen\":1700,"
                        "\"connections\":2}");
    json_decref(must_parse(&self));
    /* The same fields, left open for the object that carries them. */
    buf_reset(&self);
    buf_puts(&self, "[");
    assert_int_equal(msg_member_self_fields(&self, &m), 0);
    assert_string_equal(self.data,
                        "[\"user\":\"u1\",\"name\":\"Ann\","
                        "\"status\":\"BUSY\",\"last_seen\":1700,"
                        "\"connections\":2");
    buf_dispose(&inv);
    buf_dispose(&off);
    buf_dispose(&self);
}

static void test_cap(void **state)
{
    /* At every cap short of the full message, each encoder fails with
     * BUF_ETOOBIG and leaves what was already in the buffer untouched. */
    struct presence_event ev = {
        .m = {.org = "acme", .user = "u1", .name = "n\x01\xf0\x9f\x98\x80",
              .status = PRESENCE_AWAY, .last_seen_ms = 99},
        .seq = 3, .reason = PRESENCE_R_MANUAL,
    };
    struct buf full, member;
    buf_init(&full, 0);
    buf_init(&member, 0);
    assert_int_equal(msg_encode_presence(&full, &ev), 0);
    assert_int_equal(msg_encode_member(&member, &ev.m), 0);
    assert_true(member.len < full.len);
    for (size_t cap = 3; cap < 3 + full.len; cap++) {
        struct buf b;
        buf_init(&b, cap);
        assert_int_equal(buf_puts(&b, "abc"), 0);
        assert_int_equal(msg_encode_presence(&b, &ev), BUF_ETOOBIG);
        assert_int_equal(b.len, 3);
        assert_string_equal(b.data, "abc");
        int rc = msg_encode_member(&b, &ev.m);
        if (cap - 3 >= member.len) {
            assert_int_equal(rc, 0);
            assert_string_equal(b.data + 3, member.data);
        } else {
            assert_int_equal(rc, BUF_ETOOBIG);
            assert_string_equal(b.data, "abc");
        }
        buf_reset(&b);
        assert_int_equal(buf_puts(&b, "abc"), 0);
        /* "n\u0001" plus the emoji, quoted: 13 bytes. */
        assert_int_equal(msg_append_string(&b, ev.m.name),
                         cap - 3 >= 13 ? 0 : BUF_ETOOBIG);
        if (cap - 3 < 13)
            assert_string_equal(b.data, "abc");
        buf_dispose(&b);
    }
    struct buf b;
    buf_init(&b, 3 + full.len);
    assert_int_equal(buf_puts(&b, "abc"), 0);
    assert_int_equal(msg_encode_presence(&b, &ev), 0);
    assert_string_equal(b.data + 3, full.data);
    buf_dispose(&b);
    buf_dispose(&full);
    buf_dispose(&member);
}

static void test_parse_subscribe(void **state)
{
    struct msg_in m;
    char err[128];
    const char *ok = "{\"type\":\"subscribe\",\"users\":[\"a\",\"b\"]}";
    assert_int_equal(msg_parse(ok, strlen(ok), &m, err, sizeof err), 0);
    assert_int_equal(m.type, MSG_SUBSCRIBE);
    assert_int_equal(m.nusers, 2);
    assert_string_equal(m.users[0], "a");
    assert_string_equal(m.users[1], "b");
    msg_in_dispose(&m);
    const char *un = "{\"type\":\"unsubscribe\",\"users\":[\"a\"]}";
    assert_int_equal(msg_parse(un, strlen(un), &m, err, sizeof err), 0);
    assert_int_equal(m.type, MSG_UNSUBSCRIBE);
    msg_in_dispose(&m);
    const char *bad[] = {
        "{\"type\":\"subscribe\"}",
        "{\"type\":\"subscribe\",\"users\":[]}",
        "{\"type\":\"subscribe\",\"users\":\"a\"}",
        "{\"type\":\"subscribe\",\"users\":[1]}",
        "{\"type\":\"subscribe\",\"users\":[\"\"]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(msg_parse(bad[i], strlen(bad[i]), &m, err,
                                   sizeof err), MSG_EFIELD);
    /* jansson refuses an embedded NUL outright. */
    const char *nul = "{\"type\":\"subscribe\",\"users\":[\"a\\u0000b\"]}";
    assert_int_equal(msg_parse(nul, strlen(nul), &m, err, sizeof err),
                     MSG_EJSON);
    /* 1001 ids: one too many. */
    struct buf b;
    buf_init(&b, 0);
    buf_puts(&b, "{\"type\":\"subscribe\",\"users\":[");
    for (int i = 0; i <= MSG_MAX_USERS; i++)
        buf_puts(&b, i ? ",\"x\"" : "\"x\"");
    buf_puts(&b, "]}");
    assert_int_equal(msg_parse(b.data, b.len, &m, err, sizeof err),
                     MSG_EFIELD);
    buf_dispose(&b);
}

static void test_encode_online(void **state)
{
    struct buf b;
    buf_init(&b, 0);
    assert_int_equal(msg_encode_online(&b, 7, 42), 0);
    assert_string_equal(b.data, "{\"type\":\"online\",\"online\":7,\"seq\":42}");
    buf_reset(&b);
    assert_int_equal(msg_snapshot_begin_partial(&b, 3, 2), 0);
    assert_int_equal(msg_snapshot_end(&b), 0);
    assert_string_equal(b.data, "{\"type\":\"snapshot\",\"seq\":3,"
                                "\"partial\":true,\"online\":2,"
                                "\"members\":[]}");
    buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_parse_not_nul_terminated),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_reasons),
        cmocka_unit_test(test_parse_subscribe),
        cmocka_unit_test(test_encode_online),
        cmocka_unit_test(test_parse_deep_nesting),
        cmocka_unit_test(test_error_code),
        cmocka_unit_test(test_append_string),
        cmocka_unit_test(test_append_string_every_byte),
        cmocka_unit_test(test_hello),
        cmocka_unit_test(test_presence),
        cmocka_unit_test(test_snapshot),
        cmocka_unit_test(test_small_messages),
        cmocka_unit_test(test_member),
        cmocka_unit_test(test_member_appear_offline),
        cmocka_unit_test(test_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
