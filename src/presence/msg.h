/* msg.h - the WebSocket protocol's JSON, both ways (docs/protocol.md).
 *
 * Pure codecs over jansson: bytes in, structs out; structs in, bytes
 * appended to a struct buf. No I/O. Encoders append one complete JSON text
 * (no trailing newline) and return 0, or BUF_ETOOBIG from the buffer. */
#ifndef MSG_H
#define MSG_H
#include <stddef.h>
#include <stdint.h>

#include "presence/presence.h"
#include "util/buf.h"

enum msg_type {
    MSG_STATUS,      /* {"type":"status","status":S[,"auto":true]} */
    MSG_PING,        /* {"type":"ping"} */
    MSG_SUBSCRIBE,   /* {"type":"subscribe","users":["u1",...]} */
    MSG_UNSUBSCRIBE, /* {"type":"unsubscribe","users":["u1",...]} */
    MSG_UPDATE,      /* {"type":"update"[,"status":S][,"message":..]
                        [,"dnd":..][,"tz":..][,"hide_last_seen":..]}:
                        checked by hub_update(), with presence/extra.h */
};

#define MSG_MAX_USERS 1000 /* user ids in one (un)subscribe */

/* A parsed client message. For (un)subscribe, users[0..nusers) point into
 * memory the struct owns: call msg_in_dispose() when done with it. */
struct msg_in {
    enum msg_type type;
    enum presence_status status; /* MSG_STATUS */
    int is_auto;                 /* MSG_STATUS: "auto":true */
    const char **users;          /* MSG_(UN)SUBSCRIBE */
    size_t nusers;
    void *_json;                 /* MSG_UPDATE: the object (a json_t) */
};

/* Frees what a parsed message owns; safe on any parsed message. */
void msg_in_dispose(struct msg_in *m);

/* Parse errors; msg_error_code() gives the wire code of each. */
enum {
    MSG_EJSON = -1,    /* "bad_json": not JSON, or not valid UTF-8 */
    MSG_EROOT = -2,    /* "bad_message": root is not an object */
    MSG_ETYPE = -3,    /* "unknown_type": type missing, not a string, or
                          not one we know */
    MSG_ESTATUS = -4,  /* "invalid_status": status missing, not a string,
                          not a known name, or not allowed (auto BUSY) */
    MSG_EFIELD = -5,   /* "bad_message": another field of the wrong type
                          ("auto" not a boolean) */
};

/* Parses one client text message (len bytes, need not be NUL-terminated).
 * Unknown extra fields are ignored. Returns 0 or a MSG_E* code; on error
 * writes a short human reason into err (errlen bytes). */
int msg_parse(const char *data, size_t len, struct msg_in *out, char *err,
              size_t errlen);
const char *msg_error_code(int rc);

struct msg_hello {
    const char *user, *org, *name;
    int64_t heartbeat_s, away_after_s, offline_after_s;
    enum presence_status status;    /* the caller's effective status */
    enum presence_status manual;    /* PRESENCE_UNSET -> null */
    int64_t max_msg;                /* bytes */
};

/* {"type":"hello","user":..,"org":..,"name":..,"heartbeat":30,
 *  "away_after":300,"offline_after":1800,"status":..,"manual":..|null,
 *  "max_message":65536} */
int msg_encode_hello(struct buf *b, const struct msg_hello *h);

/* {"type":"presence","user":..,"name":..,"status":..,"last_seen":..,
 *  "seq":..,"reason":..} */
int msg_encode_presence(struct buf *b, const struct presence_event *ev);

/* {"type":"snapshot","seq":N,"members":[{"user":..,"name":..,"status":..,
 *  "last_seen":..|null}, ...]}: begin, one call per member, end. */
int msg_snapshot_begin(struct buf *b, uint64_t seq);
/* The same with "partial":true and the organization's online count, for
 * subscribers: {"type":"snapshot","seq":N,"partial":true,"online":M,
 * "members":[...]}. */
int msg_snapshot_begin_partial(struct buf *b, uint64_t seq, unsigned online);
/* {"type":"online","online":M,"seq":N} */
int msg_encode_online(struct buf *b, unsigned online, uint64_t seq);
int msg_snapshot_member(struct buf *b, const struct presence_member *m);
int msg_snapshot_end(struct buf *b);

/* {"type":"pong"} */
int msg_encode_pong(struct buf *b);

/* {"type":"error","code":..,"message":..} */
int msg_encode_error(struct buf *b, const char *code, const char *message);

/* A member as the HTTP API shows it to other members:
 * {"user":..,"name":..,"status":..,"last_seen":..|null,"connections":N},
 * as presence_public() leaves it (a user who appears offline shows no
 * connection). The snapshot and presence encoders above need no such
 * step: they carry no connection count, and the core keeps status and
 * last_seen as others may see them. */
int msg_encode_member(struct buf *b, const struct presence_member *m);
/* The same for the member itself (/api/me, its own login and status
 * change): the truth, its connections included. */
int msg_encode_member_self(struct buf *b, const struct presence_member *m);
/* The fields of msg_encode_member_self() without the braces,
 * "user":..,..,"connections":N, for an object that carries more (a login's
 * user, /api/me). */
int msg_member_self_fields(struct buf *b, const struct presence_member *m);

/* Appends s as a JSON string literal (quotes included, escaped). */
int msg_append_string(struct buf *b, const char *s);
#endif
