/* fuzz_msg.c - the client JSON messages, and the encoders on hostile text.
 *
 * The whole input is one client text message for msg_parse(). Checked:
 *   - a parsed message is one docs/protocol.md allows (status a wire name,
 *     never BUSY with auto; 1 to MSG_MAX_USERS user ids of 1 to 128 bytes
 *     of UTF-8), and re-encoding it parses back the same;
 *   - an error has a known wire code and a reason that is NUL-terminated
 *     and valid UTF-8 (it travels in a text frame).
 * Then the same bytes, as a C string, become every user-controlled field
 * of every encoder (user, org and display names, error messages): the
 * output must be one JSON text that jansson accepts, in valid UTF-8, and
 * a string that was valid UTF-8 must come back unchanged. Encoders writing
 * into a small capped buffer must fail with BUF_ETOOBIG and leave it as it
 * was. */
#include <jansson.h>
#include <string.h>

#include "fuzz.h"
#include "presence/msg.h"

static json_t *must_parse(const struct buf *b, size_t from)
{
    const char *p = b->data + from;
    size_t n = b->len - from;
    CHECK(fuzz_utf8_valid((const unsigned char *)p, n),
          "encoder output is not UTF-8");
    json_error_t je;
    json_t *j = json_loadb(p, n, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                           &je);
    CHECK(j, "encoder output is not JSON (%s): %.*s", je.text, (int)n, p);
    return j;
}

static void check_users(const struct msg_in *m)
{
    CHECK(m->nusers >= 1 && m->nusers <= MSG_MAX_USERS, "%zu users",
          m->nusers);
    /* Round trip: the list written out again parses to the same ids. */
    struct buf b;
    buf_init(&b, 0);
    buf_puts(&b, m->type == MSG_SUBSCRIBE ? "{\"type\":\"subscribe\""
                                          : "{\"type\":\"unsubscribe\"");
    buf_puts(&b, ",\"users\":[");
    for (size_t i = 0; i < m->nusers; i++) {
        size_t n = strlen(m->users[i]);
        CHECK(n >= 1 && n <= 128, "user id of %zu bytes", n);
        CHECK(fuzz_utf8_valid((const unsigned char *)m->users[i], n),
              "user id is not UTF-8");
        if (i)
            buf_puts(&b, ",");
        CHECK(msg_append_string(&b, m->users[i]) == 0, "append");
    }
    buf_puts(&b, "]}");
    struct msg_in m2;
    char err[128];
    CHECK(msg_parse(b.data, b.len, &m2, err, sizeof err) == 0,
          "re-encoded list refused: %s", err);
    CHECK(m2.type == m->type && m2.nusers == m->nusers, "list changed");
    for (size_t i = 0; i < m->nusers; i++)
        CHECK(!strcmp(m->users[i], m2.users[i]), "user %zu changed", i);
    msg_in_dispose(&m2);
    buf_dispose(&b);
}

static void check_parsed(const struct msg_in *m)
{
    switch (m->type) {
    case MSG_PING:
        return;
    case MSG_SUBSCRIBE:
    case MSG_UNSUBSCRIBE:
        check_users(m);
        return;
    case MSG_STATUS:
        break;
    default:
        CHECK(0, "message type %d", m->type);
    }
    CHECK(m->status >= PRESENCE_OFFLINE && m->status <= PRESENCE_BUSY,
          "status %d", m->status);
    CHECK(m->is_auto == 0 || m->is_auto == 1, "is_auto %d", m->is_auto);
    CHECK(!(m->is_auto && m->status == PRESENCE_BUSY), "auto BUSY accepted");

    /* Round trip: the canonical spelling parses to the same message. */
    char again[96];
    int n = snprintf(again, sizeof again,
                     "{\"type\":\"status\",\"status\":\"%s\",\"auto\":%s}",
                     presence_status_name(m->status),
                     m->is_auto ? "true" : "false");
    struct msg_in m2;
    char err[128];
    CHECK(msg_parse(again, (size_t)n, &m2, err, sizeof err) == 0,
          "re-encoded message refused: %s", err);
    CHECK(m2.type == m->type && m2.status == m->status &&
              m2.is_auto == m->is_auto,
          "round trip changed the message");
    msg_in_dispose(&m2);
}

/* What the encoders are given: every string field is the fuzzed text. */
struct enc_in {
    const char *s;
    struct presence_member m;
    struct presence_event ev;
    struct msg_hello h;
};

enum { E_STRING, E_ERROR, E_MEMBER, E_PRESENCE, E_HELLO, E_PONG, E_ONLINE,
       E_SNAPSHOT, E_PARTIAL, E_COUNT };

/* Appends one encoder's output to b (a snapshot lists three members). */
static int encode(int which, struct buf *b, const struct enc_in *in)
{
    switch (which) {
    case E_STRING: return msg_append_string(b, in->s);
    case E_ERROR: return msg_encode_error(b, in->s, in->s);
    case E_MEMBER: return msg_encode_member(b, &in->m);
    case E_PRESENCE: return msg_encode_presence(b, &in->ev);
    case E_HELLO: return msg_encode_hello(b, &in->h);
    case E_PONG: return msg_encode_pong(b);
    case E_ONLINE: return msg_encode_online(b, 12345, 678);
    }
    int rc = which == E_PARTIAL ? msg_snapshot_begin_partial(b, 7, 2)
                                : msg_snapshot_begin(b, 7);
    for (int i = 0; i < 3 && !rc; i++)
        rc = msg_snapshot_member(b, &in->m);
    return rc ? rc : msg_snapshot_end(b);
}

/* Each encoder, uncapped: one JSON text (an object, but for a bare
 * string), which for msg_append_string gives back valid UTF-8 unchanged.
 * Then into a buffer capped at max that already holds "x": the same bytes
 * after the "x", or BUF_ETOOBIG and nothing changed (msg.h: encoders
 * leave the buffer as it was on failure). Snapshots are several calls, so
 * a failed one may leave a partial text: only the uncapped run counts. */
static void encoders(const char *s, size_t max)
{
    struct enc_in in = {.s = s};
    in.m = (struct presence_member){
        .org = s, .user = s, .name = s, .status = PRESENCE_AWAY,
        .manual = PRESENCE_UNSET, .last_seen_ms = 1764355200123LL,
        .nconns = 2,
    };
    in.ev = (struct presence_event){.m = in.m, .seq = 42,
                                    .reason = PRESENCE_R_MANUAL};
    in.h = (struct msg_hello){
        .user = s, .org = s, .name = s, .heartbeat_s = 30,
        .away_after_s = 300, .offline_after_s = 1800,
        .status = PRESENCE_ONLINE, .manual = PRESENCE_BUSY,
        .max_msg = 65536,
    };
    for (int which = 0; which < E_COUNT; which++) {
        struct buf full;
        buf_init(&full, 0);
        CHECK(encode(which, &full, &in) == 0, "uncapped encoder %d failed",
              which);
        json_t *j = must_parse(&full, 0);
        if (which == E_STRING) {
            CHECK(json_is_string(j), "not a JSON string");
            size_t n = strlen(s);
            if (fuzz_utf8_valid((const unsigned char *)s, n))
                CHECK(json_string_length(j) == n &&
                          memcmp(json_string_value(j), s, n) == 0,
                      "valid UTF-8 did not round-trip");
        } else {
            CHECK(json_is_object(j), "encoder %d: not an object", which);
        }
        if (which == E_SNAPSHOT || which == E_PARTIAL)
            CHECK(json_array_size(json_object_get(j, "members")) == 3,
                  "snapshot members");
        json_decref(j);

        if (which < E_SNAPSHOT) {
            struct buf b;
            buf_init(&b, max);
            CHECK(buf_puts(&b, "x") == 0, "buf_puts");
            int rc = encode(which, &b, &in);
            if (rc == 0)
                CHECK(b.len == full.len + 1 &&
                          !memcmp(b.data + 1, full.data, full.len),
                      "encoder %d wrote other bytes into a capped buffer",
                      which);
            else
                CHECK(rc == BUF_ETOOBIG && b.len == 1 &&
                          b.data[0] == 'x' && b.data[1] == '\0',
                      "failed encoder %d left bytes behind (rc %d)", which,
                      rc);
            buf_dispose(&b);
        }
        buf_dispose(&full);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct msg_in m;
    char err[128];
    memset(err, 0x55, sizeof err);
    int rc = msg_parse((const char *)data, size, &m, err, sizeof err);
    if (rc == 0) {
        check_parsed(&m);
        msg_in_dispose(&m);
    } else {
        CHECK(rc >= MSG_EFIELD && rc <= MSG_EJSON, "rc %d", rc);
        const char *code = msg_error_code(rc);
        CHECK(code && *code, "no wire code");
        size_t n = strnlen(err, sizeof err);
        CHECK(n < sizeof err, "reason not NUL-terminated");
        CHECK(fuzz_utf8_valid((const unsigned char *)err, n),
              "reason is not UTF-8: %s", err);
    }

    /* The same bytes as a C string (up to the first NUL). Escaping works
     * on one character at a time, so 64 bytes are plenty; every encoder
     * runs on them about forty times, which longer strings make slow. */
    char *s = xstrndup((const char *)data, size < 64 ? size : 64);
    size_t max = 2 + (size ? data[size - 1] : 0);
    encoders(s, max);
    free(s);
    return 0;
}
