/* msg.c - the WebSocket protocol's JSON, both ways (see msg.h).
 *
 * Parsing goes through jansson, which checks UTF-8, refuses NUL in strings
 * and bounds nesting depth, so a hostile message costs at most one failed
 * parse. Encoding does not: one announcement is encoded once and queued to
 * every connection of the organization, and a snapshot lists every member,
 * so the encoders write straight into the caller's struct buf with a
 * hand-rolled string escaper and no intermediate objects. */
#include "presence/msg.h"
#include "util/xalloc.h"
#include "util/errf.h"

#include <jansson.h>
#include <stdlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Appends a string literal without a strlen() at run time. */
#define LIT(b, s) buf_append((b), (s), sizeof(s) - 1)

/* ---- Parsing ----------------------------------------------------------- */


/* The reason sent back to the client. jansson's own text is not used: it
 * quotes the offending input, which may be invalid UTF-8, and the reason
 * travels in a text frame that must be valid UTF-8. */
static const char *json_reason(const json_error_t *je)
{
    switch (json_error_code(je)) {
    case json_error_invalid_utf8: return "message is not valid UTF-8";
    case json_error_duplicate_key: return "message has a duplicate key";
    case json_error_stack_overflow: return "message is nested too deeply";
    case json_error_numeric_overflow: return "number out of range";
    case json_error_null_character: return "NUL character in a string";
    default: return "message is not valid JSON";
    }
}

static int string_is(json_t *v, const char *s)
{
    size_t n = strlen(s);
    return json_string_length(v) == n &&
           memcmp(json_string_value(v), s, n) == 0;
}

static int parse_status(json_t *root, struct msg_in *m, char *err,
                        size_t errlen)
{
    json_t *st = json_object_get(root, "status");
    json_t *au = json_object_get(root, "auto");
    enum presence_status s = PRESENCE_UNSET;
    const char *name = NULL;

    /* Only the exact wire spelling: presence_status_parse() may be more
     * lenient than docs/protocol.md, so the name must round-trip. */
    if (json_is_string(st) &&
        presence_status_parse(json_string_value(st), &s) == 0 &&
        s >= PRESENCE_OFFLINE && s <= PRESENCE_BUSY)
        name = presence_status_name(s);
    if (!name || !string_is(st, name))
        return errf(err, errlen, MSG_ESTATUS,
                           "status must be one of ONLINE, AWAY, BUSY, "
                           "OFFLINE");
    if (au && !json_is_boolean(au))
        return errf(err, errlen, MSG_EFIELD,
                           "auto must be true or false");
    /* docs/protocol.md: the idle detector reports ONLINE, AWAY or OFFLINE;
     * BUSY is only ever chosen by the user. */
    m->is_auto = au && json_is_true(au);
    if (m->is_auto && s == PRESENCE_BUSY)
        return errf(err, errlen, MSG_ESTATUS,
                           "BUSY cannot be an automatic status");
    m->type = MSG_STATUS;
    m->status = s;
    return 0;
}

/* {"users":["u1",...]}: 1 to MSG_MAX_USERS ids of 1 to 128 bytes. */
static int parse_users(json_t *root, struct msg_in *m, char *err,
                       size_t errlen)
{
    json_t *a = json_object_get(root, "users");
    size_t n = json_is_array(a) ? json_array_size(a) : 0;
    if (n == 0 || n > MSG_MAX_USERS)
        return errf(err, errlen, MSG_EFIELD,
                           "users must be an array of 1 to %d user ids",
                           MSG_MAX_USERS);
    m->users = xcalloc(n, sizeof *m->users);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(a, i);
        size_t l = json_is_string(v) ? json_string_length(v) : 0;
        if (l == 0 || l > 128 || strlen(json_string_value(v)) != l)
            return errf(err, errlen, MSG_EFIELD,
                               "users must hold user ids (strings of 1 to "
                               "128 bytes)");
        m->users[i] = json_string_value(v);
    }
    m->nusers = n;
    return 0;
}

void msg_in_dispose(struct msg_in *m)
{
    free(m->users);
    json_decref(m->_json);
    m->users = NULL;
    m->_json = NULL;
    m->nusers = 0;
}

int msg_parse(const char *data, size_t len, struct msg_in *out, char *err,
              size_t errlen)
{
    json_error_t je;
    struct msg_in m = {.type = MSG_PING, .status = PRESENCE_UNSET};
    int rc = 0;

    /* JSON_DECODE_ANY so that a scalar root is told apart from bad JSON;
     * duplicate keys are refused so "status" cannot mean two things. */
    json_t *root = data ? json_loadb(data, len,
                                     JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                                     &je)
                        : NULL;
    if (!root)
        return errf(err, errlen, MSG_EJSON, "%s (at byte %d)",
                           data ? json_reason(&je) : "empty message",
                           data ? je.position : 0);

    json_t *type = json_object_get(root, "type");
    if (!json_is_object(root))
        rc = errf(err, errlen, MSG_EROOT,
                         "message must be a JSON object");
    else if (!json_is_string(type))
        rc = errf(err, errlen, MSG_ETYPE, "type must be a string");
    else if (string_is(type, "ping"))
        m.type = MSG_PING;
    else if (string_is(type, "status"))
        rc = parse_status(root, &m, err, errlen);
    else if (string_is(type, "update"))
        m.type = MSG_UPDATE;
    else if (string_is(type, "subscribe") || string_is(type, "unsubscribe")) {
        m.type = string_is(type, "subscribe") ? MSG_SUBSCRIBE
                                               : MSG_UNSUBSCRIBE;
        rc = parse_users(root, &m, err, errlen);
    } else
        rc = errf(err, errlen, MSG_ETYPE,
                         "type must be \"status\", \"update\", \"ping\", "
                         "\"subscribe\" or \"unsubscribe\"");
    if (rc == 0 && (m.users || m.type == MSG_UPDATE)) {
        m._json = root; /* the user ids point into it; an update is it */
        root = NULL;
    }
    json_decref(root);
    if (rc == 0)
        *out = m;
    else
        free(m.users);
    return rc;
}

const char *msg_error_code(int rc)
{
    switch (rc) {
    case MSG_EJSON: return "bad_json";
    case MSG_ETYPE: return "unknown_type";
    case MSG_ESTATUS: return "invalid_status";
    case MSG_EROOT:
    case MSG_EFIELD:
    default: return "bad_message";
    }
}

/* ---- String escaping --------------------------------------------------- */

/* Bytes copied as they are: printable ASCII except the two that JSON
 * requires escaped (RFC 8259 7). Everything else, including the NUL that
 * ends the string and every non-ASCII byte (checked for UTF-8), takes the
 * slow path. */
static inline int plain(unsigned char c)
{
    return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 4: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0. s is NUL-terminated
 * and a NUL is never a continuation byte, so no read passes the end. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
        return s[1] >= lo && s[1] <= hi && (s[2] & 0xc0) == 0x80 &&
                       (s[3] & 0xc0) == 0x80
                   ? 4
                   : 0;
    }
    return 0;
}

static int undo(struct buf *b, size_t len)
{
    b->len = len;
    if (b->data)
        b->data[len] = '\0';
    return BUF_ETOOBIG;
}

int msg_append_string(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (!s)
        return LIT(b, "null");
    size_t start = b->len;
    const unsigned char *p = (const unsigned char *)s, *run = p;
    if (LIT(b, "\""))
        return BUF_ETOOBIG;
    for (;;) {
        while (plain(*p))
            p++;
        size_t n = *p >= 0x80 ? utf8_len(p) : 0;
        if (n) {
            /* Valid UTF-8 passes through: names in any script, emoji. */
            p += n;
            continue;
        }
        if (buf_append(b, run, (size_t)(p - run)))
            return undo(b, start);
        if (*p == '\0')
            break;
        char esc[6] = {'\\', 0};
        size_t elen = 2;
        switch (*p) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            if (*p >= 0x80) {
                /* A name stored before validation, or cut mid-character,
                 * must not make the whole frame invalid UTF-8 (the peer
                 * would close the connection): U+FFFD stands in. */
                memcpy(esc, "\\ufffd", 6);
            } else {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[*p >> 4];
                esc[5] = hex[*p & 15];
            }
            elen = 6;
        }
        if (buf_append(b, esc, elen))
            return undo(b, start);
        run = ++p;
    }
    if (LIT(b, "\""))
        return undo(b, start);
    return 0;
}

/* ---- Encoders ---------------------------------------------------------- */

static int put_i64(struct buf *b, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    return buf_append(b, tmp, (size_t)n);
}

static int put_u64(struct buf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    return buf_append(b, tmp, (size_t)n);
}

/* docs/protocol.md: a member never seen has "last_seen": null. */
static int put_last_seen(struct buf *b, int64_t ms)
{
    return ms == 0 ? LIT(b, "null") : put_i64(b, ms);
}

static int put_status(struct buf *b, enum presence_status s)
{
    return msg_append_string(b, s == PRESENCE_UNSET
                                    ? NULL
                                    : presence_status_name(s));
}

static int put_ms_or_null(struct buf *b, int64_t ms)
{
    return ms <= 0 ? LIT(b, "null") : put_i64(b, ms);
}

/* docs/protocol.md "Status messages", "Do Not Disturb": each present only
 * when set, so a member with none costs no bytes; every member object
 * carries the whole record, so an absent field means "none". */
static int put_extra_fields(struct buf *b, const struct presence_member *m)
{
    const struct presence_extra *x = m->x;
    if (x && x->text &&
        (LIT(b, ",\"message\":{\"text\":") || msg_append_string(b, x->text) ||
         LIT(b, ",\"emoji\":") || msg_append_string(b, x->emoji) ||
         LIT(b, ",\"expires\":") || put_ms_or_null(b, x->expires_ms) ||
         LIT(b, "}")))
        return -1;
    if (m->dnd && (LIT(b, ",\"dnd\":{\"until\":") ||
                   put_ms_or_null(b, m->dnd_until_ms) || LIT(b, "}")))
        return -1;
    if (x && x->tz[0] &&
        (LIT(b, ",\"tz\":") || msg_append_string(b, x->tz)))
        return -1;
    return 0;
}

/* The fields common to every member object, from "user" to "last_seen"
 * and the extras, without the braces. Others see no last_seen of a member
 * who hides it (self: the member itself, who does). */
/* "last_seen", or for a member who hides it, null and a mark saying so
 * (so that a page does not call the member "never seen"). */
static int put_seen(struct buf *b, const struct presence_member *m, int self)
{
    if (!self && m->x && m->x->hide_last_seen)
        return LIT(b, ",\"last_seen\":null,\"last_seen_hidden\":true");
    return LIT(b, ",\"last_seen\":") || put_last_seen(b, m->last_seen_ms);
}

static int put_member_fields(struct buf *b, const struct presence_member *m,
                             int self)
{
    return LIT(b, "\"user\":") || msg_append_string(b, m->user) ||
           LIT(b, ",\"name\":") || msg_append_string(b, m->name) ||
           LIT(b, ",\"status\":") || put_status(b, m->status) ||
           put_seen(b, m, self) || put_extra_fields(b, m);
}

int msg_encode_hello(struct buf *b, const struct msg_hello *h)
{
    size_t start = b->len;
    if (LIT(b, "{\"type\":\"hello\",\"user\":") ||
        msg_append_string(b, h->user) || LIT(b, ",\"org\":") ||
        msg_append_string(b, h->org) || LIT(b, ",\"name\":") ||
        msg_append_string(b, h->name) || LIT(b, ",\"heartbeat\":") ||
        put_i64(b, h->heartbeat_s) || LIT(b, ",\"away_after\":") ||
        put_i64(b, h->away_after_s) || LIT(b, ",\"offline_after\":") ||
        put_i64(b, h->offline_after_s) || LIT(b, ",\"status\":") ||
        put_status(b, h->status) || LIT(b, ",\"manual\":") ||
        put_status(b, h->manual) || LIT(b, ",\"max_message\":") ||
        put_i64(b, h->max_msg) || LIT(b, "}"))
        return undo(b, start);
    return 0;
}

int msg_encode_presence(struct buf *b, const struct presence_event *ev)
{
    size_t start = b->len;
    const struct presence_member *m = &ev->m;
    if (LIT(b, "{\"type\":\"presence\",\"user\":") ||
        msg_append_string(b, m->user) || LIT(b, ",\"name\":") ||
        msg_append_string(b, m->name) || LIT(b, ",\"status\":") ||
        put_status(b, m->status) || put_seen(b, m, 0) ||
        put_extra_fields(b, m) || LIT(b, ",\"seq\":") ||
        put_u64(b, ev->seq) || LIT(b, ",\"reason\":") ||
        msg_append_string(b, presence_reason_name(ev->reason)) ||
        LIT(b, "}"))
        return undo(b, start);
    return 0;
}

int msg_snapshot_begin(struct buf *b, uint64_t seq)
{
    size_t start = b->len;
    if (LIT(b, "{\"type\":\"snapshot\",\"seq\":") || put_u64(b, seq) ||
        LIT(b, ",\"members\":["))
        return undo(b, start);
    return 0;
}

int msg_snapshot_begin_partial(struct buf *b, uint64_t seq, unsigned online)
{
    size_t start = b->len;
    if (LIT(b, "{\"type\":\"snapshot\",\"seq\":") || put_u64(b, seq) ||
        LIT(b, ",\"partial\":true,\"online\":") || put_u64(b, online) ||
        LIT(b, ",\"members\":["))
        return undo(b, start);
    return 0;
}

int msg_encode_online(struct buf *b, unsigned online, uint64_t seq)
{
    size_t start = b->len;
    if (LIT(b, "{\"type\":\"online\",\"online\":") || put_u64(b, online) ||
        LIT(b, ",\"seq\":") || put_u64(b, seq) || LIT(b, "}"))
        return undo(b, start);
    return 0;
}

int msg_snapshot_member(struct buf *b, const struct presence_member *m)
{
    size_t start = b->len;
    /* The buffer itself says whether this is the first member: begin
     * leaves a '[' and every member ends in '}'. No state to carry. */
    int first = b->len == 0 || b->data[b->len - 1] == '[';
    if ((!first && LIT(b, ",")) || LIT(b, "{") || put_member_fields(b, m, 0) ||
        LIT(b, "}"))
        return undo(b, start);
    return 0;
}

int msg_snapshot_end(struct buf *b)
{
    return LIT(b, "]}");
}

int msg_encode_pong(struct buf *b)
{
    return LIT(b, "{\"type\":\"pong\"}");
}

int msg_encode_error(struct buf *b, const char *code, const char *message)
{
    size_t start = b->len;
    if (LIT(b, "{\"type\":\"error\",\"code\":") ||
        msg_append_string(b, code) || LIT(b, ",\"message\":") ||
        msg_append_string(b, message) || LIT(b, "}"))
        return undo(b, start);
    return 0;
}

int msg_encode_member(struct buf *b, const struct presence_member *m)
{
    /* docs/protocol.md "appear offline": others see a user who is really
     * offline. */
    struct presence_member pub = *m;
    size_t start = b->len;
    presence_public(&pub);
    if (LIT(b, "{") || put_member_fields(b, &pub, 0) ||
        LIT(b, ",\"connections\":") || put_u64(b, pub.nconns) || LIT(b, "}"))
        return undo(b, start);
    return 0;
}

int msg_member_self_fields(struct buf *b, const struct presence_member *m)
{
    size_t start = b->len;
    if (put_member_fields(b, m, 1) || LIT(b, ",\"connections\":") ||
        put_u64(b, m->nconns))
        return undo(b, start);
    return 0;
}

int msg_encode_member_self(struct buf *b, const struct presence_member *m)
{
    size_t start = b->len;
    if (LIT(b, "{") || msg_member_self_fields(b, m) || LIT(b, "}"))
        return undo(b, start);
    return 0;
}
