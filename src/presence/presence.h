/* presence.h - who is online in each organization, and what to announce.
 *
 * Pure logic: no sockets, no SQLite, no clock. Callers pass the time in
 * (milliseconds since the epoch) and receive announcements through one
 * callback. net/ and hub/ do the I/O: they fan announcements out to sockets
 * and persist the new state. The rules implemented here are those of
 * docs/protocol.md "Presence rules"; nothing else in the tree decides status.
 * No lock of its own: the server calls one core from every loop thread,
 * always under the hub's lock (hub/hub.h).
 *
 * Model. An organization has members (users). A user has zero or more
 * connections; each connection carries the idle detector's "auto" status for
 * that tab or device (ONLINE, AWAY or OFFLINE). A user may also have a manual
 * status (BUSY, AWAY or OFFLINE = "appear offline") that overrides the auto
 * ones while any connection is open. The effective status is:
 *   - the manual status if one is set and the user is "present" (see below),
 *   - else the most present auto status over the connections
 *     (ONLINE > AWAY > OFFLINE),
 *   - OFFLINE when the user is not present.
 * A user is present while it has a connection, or inside one of three
 * windows that keep the last effective status without a connection:
 *   - grace: after its last connection closed (page navigation must not
 *     flap), grace_ms long;
 *   - login: after a login with no connection yet, login_grace_ms long;
 *     a login shows ONLINE (or the manual status if one is set);
 *   - restore: after a server restart, for users stored as not OFFLINE,
 *     restart_grace_ms long, keeping the stored status.
 * When a window closes with no connection the user goes OFFLINE.
 *
 * Appear offline. While a user's manual status is OFFLINE, members of its
 * organization must not be able to tell it from a user who is really
 * offline: its effective status is OFFLINE whatever its connections do, so
 * its connects, disconnects and activity announce nothing and do not count
 * as online; and its last_seen does not advance (it stays where it was when
 * the user went invisible, and that is what the store keeps, so a restart
 * reveals nothing either). Clearing the manual status moves last_seen to
 * that moment. The connection count alone is still the truth, for the
 * user's own view and for limits: presence_public() hides it from others.
 *
 * Announcements. Only a change of the effective status is announced, once,
 * with the organization's next seq (1, 2, 3, ... per organization).
 *
 * Ownership. The core copies every string it is given. Strings in callbacks
 * are lent: valid only during the call. The core is consistent whenever it
 * calls back, so a callback may make read-only calls (presence_get,
 * presence_each, presence_each_all, presence_conn_*); it must not call
 * anything that changes the core. */
#ifndef PRESENCE_H
#define PRESENCE_H
#include <stddef.h>
#include <stdint.h>

#include "presence/dnd.h"

struct presence;      /* opaque */
struct presence_conn; /* opaque; owned by the core */

enum presence_status {
    PRESENCE_KEEP = -2,  /* presence_set_extra(): leave the manual status */
    PRESENCE_UNSET = -1, /* "no manual status" */
    PRESENCE_OFFLINE = 0,
    PRESENCE_AWAY = 1,
    PRESENCE_ONLINE = 2,
    PRESENCE_BUSY = 3,
};

enum presence_reason {
    PRESENCE_R_CONNECT,       /* first connection (or any connection raising it) */
    PRESENCE_R_IDLE,          /* auto status went down (AWAY/OFFLINE) */
    PRESENCE_R_ACTIVE,        /* auto status went up (ONLINE) */
    PRESENCE_R_MANUAL,        /* manual status set or cleared */
    PRESENCE_R_LOGIN,
    PRESENCE_R_LOGOUT,
    PRESENCE_R_DISCONNECT,    /* connection closed, no grace (grace_ms 0 or
                                 PRESENCE_NOW), or a remaining connection's
                                 status now rules */
    PRESENCE_R_GRACE_EXPIRED, /* grace or login window closed, no connection */
    PRESENCE_R_STALE,         /* presence_sweep_stale() */
    PRESENCE_R_RESTART,       /* restore window closed, no connection */
    PRESENCE_R_MESSAGE,       /* status message set or cleared */
    PRESENCE_R_EXPIRED,       /* status message expired (and the manual
                                 status set with it, if so chosen) */
    PRESENCE_R_DND,           /* Do Not Disturb turned on or off */
    PRESENCE_R_PROFILE,       /* time zone or privacy setting changed */
};

enum {
    PRESENCE_EINVAL = -1,   /* bad argument (status not allowed here) */
    PRESENCE_ENOENT = -2,   /* unknown user */
};

/* Flags for presence_disconnect(). */
enum { PRESENCE_NOW = 1 }; /* skip the grace window (logout, kick) */

struct presence_opts {
    int64_t grace_ms;         /* default 5000 */
    int64_t login_grace_ms;   /* default 60000 */
    int64_t restart_grace_ms; /* default 30000 */
};

/* What a user says about itself beside its status (docs/protocol.md
 * "Status messages", "Do Not Disturb"): a status message with an expiry,
 * Do Not Disturb (on until a time, on a weekly schedule in the user's time
 * zone, or while BUSY), the zone itself and a privacy choice. The caller
 * validates text (msg.h); the core checks times, the zone and the
 * schedule. In a struct handed to the core the strings are the caller's
 * (copied); in one the core hands out they are lent. */
#define PRESENCE_TEXT_MAX 100     /* code points of a status message */
#define PRESENCE_EMOJI_MAX 16     /* code points of its emoji */
struct presence_extra {
    const char *text;             /* status message; NULL or "": none */
    const char *emoji;            /* NULL or "": none */
    int64_t expires_ms;           /* the message clears then; 0: never */
    int clear_status;             /* at expiry the manual status goes too */
    int64_t dnd_until_ms;         /* DND on now, until then; 0: off */
    struct dnd_sched sched;       /* weekly DND; n == 0: none */
    int dnd_busy;                 /* DND while the status is BUSY */
    char tz[TZ_NAME_MAX + 1];     /* IANA zone; "": none (UTC) */
    int hide_last_seen;           /* others see no last_seen */
};

/* A member as announced or listed. All pointers lent. */
struct presence_member {
    const char *org, *user, *name;
    enum presence_status status;   /* effective */
    enum presence_status manual;   /* PRESENCE_UNSET if none */
    int64_t last_seen_ms;
    unsigned nconns;               /* open connections */
    const struct presence_extra *x; /* NULL: nothing set */
    int dnd;                       /* Do Not Disturb on now */
    int64_t dnd_until_ms;          /* when it ends; -1: not known (a
                                      schedule without end, or while BUSY) */
    int x_dirty;                   /* presence_drain_dirty(): x changed */
};

struct presence_event {
    struct presence_member m;
    uint64_t seq;                  /* per organization, from 1 */
    enum presence_reason reason;
};

typedef void presence_event_cb(void *ud, const struct presence_event *ev);
typedef void presence_member_cb(void *ud, const struct presence_member *m);

/* Returns a new core; 'announce' receives every change of effective status. */
struct presence *presence_new(const struct presence_opts *o,
                              presence_event_cb *announce, void *ud);
void presence_free(struct presence *p); /* NULL is a no-op; frees conns too */
/* New window lengths (configuration reload); open windows keep theirs. */
void presence_set_opts(struct presence *p, const struct presence_opts *o);

/* Adds a known member without announcing anything (loading from the store,
 * or a user just created). 'stored' is the status kept in the database: if
 * it is not OFFLINE the user starts inside a restore window ending at
 * now + restart_grace_ms. 'manual' is PRESENCE_UNSET or BUSY/AWAY/OFFLINE.
 * If the user exists already its name is updated and nothing else.
 * Returns 0 or PRESENCE_EINVAL. */
int presence_add_user(struct presence *p, const char *org, const char *user,
                      const char *name, enum presence_status stored,
                      enum presence_status manual, int64_t last_seen_ms,
                      int64_t now);

/* Opens a connection for a known user. session_id is the login session
 * that authenticated it (0 for a bearer JWT). auto_status is the idle
 * detector's state when the page connected (ONLINE, AWAY or OFFLINE;
 * docs/protocol.md "?auto="), so that what is announced is already the
 * settled result: a person idle before a dropped socket or a server
 * restart reconnects idle, with no event at all if the effective status
 * does not change. Only ONLINE counts as activity and advances last_seen.
 * Returns the handle, or NULL if the user is unknown or auto_status is not
 * one of those three. May announce (reason connect, or idle if the
 * status went down). */
struct presence_conn *presence_connect(struct presence *p, const char *org,
                                       const char *user, uint64_t session_id,
                                       enum presence_status auto_status,
                                       int64_t now);

/* The idle detector of one connection reports ONLINE, AWAY or OFFLINE.
 * Returns 0, or PRESENCE_EINVAL for any other status. May announce.
 * ONLINE counts as activity and advances last_seen. */
int presence_conn_auto(struct presence *p, struct presence_conn *c,
                       enum presence_status auto_status, int64_t now);

/* Closes a connection and frees the handle. With flags PRESENCE_NOW, or
 * grace_ms 0, a user left with no connection goes OFFLINE at once;
 * otherwise a grace window starts. Advances last_seen. May announce. */
void presence_disconnect(struct presence *p, struct presence_conn *c,
                         int64_t now, int flags);

/* Accessors for a connection handle; strings lent for the handle's life. */
/* A connection's org and user ids. The core never drops a user before
 * presence_free(), so these stay valid after the connection is gone. */
const char *presence_conn_org(const struct presence_conn *c);
const char *presence_conn_user(const struct presence_conn *c);
uint64_t presence_conn_session(const struct presence_conn *c);

/* Manual status: BUSY, AWAY or OFFLINE set it; ONLINE clears it. Applies
 * whether or not the user is connected (stored by the caller either way).
 * Returns 0, PRESENCE_EINVAL or PRESENCE_ENOENT. May announce. */
int presence_set_manual(struct presence *p, const char *org, const char *user,
                        enum presence_status s, int64_t now);

/* Replaces the user's status message, DND and profile settings with *x
 * (copied) and, unless manual is PRESENCE_KEEP, sets the manual status as
 * presence_set_manual() does, in one step with at most one announcement:
 * reason manual if the effective status changed, else 'reason' if what
 * others see changed (message, dnd, profile). Refuses (PRESENCE_EINVAL,
 * nothing changed) an expiry or DND end not after now, an unknown zone, a
 * schedule dnd_sched_check() refuses. Returns 0, PRESENCE_EINVAL or
 * PRESENCE_ENOENT. */
int presence_set_extra(struct presence *p, const char *org, const char *user,
                       const struct presence_extra *x,
                       enum presence_status manual,
                       enum presence_reason reason, int64_t now);

/* Loading from the store: as presence_set_extra() without announcing and
 * without refusing past times (a message that expired while the server was
 * down is cleared, and announced, by the next presence_tick()). */
int presence_load_extra(struct presence *p, const char *org,
                        const char *user, const struct presence_extra *x,
                        int64_t now);

/* Should the user be disturbed now (GET /api/users/ID/notify)? 1 yes, 0
 * no (DND on; *until as in presence_member.dnd_until_ms), or
 * PRESENCE_ENOENT. */
int presence_notify(struct presence *p, const char *org, const char *user,
                    int64_t now, int64_t *until);

/* A login: opens (or extends) the login window, advances last_seen, and
 * makes the user present. Returns 0 or PRESENCE_ENOENT. May announce. */
int presence_login(struct presence *p, const char *org, const char *user,
                   int64_t now);

/* A logout of login session session_id (0: none): closes and frees that
 * session's connection handles (the caller must forget them first, and
 * close their sockets itself), ends login, grace and restore windows, and
 * announces once with reason logout: OFFLINE at once if no connection
 * remains, else what the remaining ones show. Advances last_seen.
 * Returns 0 or PRESENCE_ENOENT. */
int presence_logout(struct presence *p, const char *org, const char *user,
                    uint64_t session_id, int64_t now);

/* Closes windows whose time has come, clears expired status messages and
 * moves Do Not Disturb on or off as its schedule or end says. Returns the
 * earliest pending deadline (ms since the epoch), or -1 if none. May
 * announce. */
int64_t presence_tick(struct presence *p, int64_t now);

/* Users whose effective status is not OFFLINE, with no open connection,
 * and last_seen older than now - older_than_ms, go OFFLINE (reason stale).
 * Returns how many. */
int presence_sweep_stale(struct presence *p, int64_t now,
                         int64_t older_than_ms);

/* Turns m, as the core reports it, into what members other than m's own
 * user may see: for a user who appears offline, no connection and no
 * manual status, like a user who is really offline; for one who hides its
 * last_seen, none (0). Status and last_seen otherwise need no change: the
 * core keeps them as others may see them. */
void presence_public(struct presence_member *m);

/* Looks one member up (cb may be NULL: just "is it there"). Returns 0 or
 * PRESENCE_ENOENT. */
int presence_get(struct presence *p, const char *org, const char *user,
                 presence_member_cb *cb, void *ud);

/* Calls cb once per member of org (any order); returns the organization's
 * current seq (0 for an unknown organization or one with no events yet). */
uint64_t presence_each(struct presence *p, const char *org,
                       presence_member_cb *cb, void *ud);

/* The organization's current seq (0 if unknown or no event yet): what a
 * snapshot taken now is current to. */
uint64_t presence_org_seq(struct presence *p, const char *org);

/* Members of org, and (if online is not NULL) how many of them are not
 * OFFLINE. 0 for an unknown organization. O(1). */
unsigned presence_org_size(struct presence *p, const char *org,
                           unsigned *online);

/* Calls cb once per member of every organization. */
void presence_each_all(struct presence *p, presence_member_cb *cb, void *ud);

/* Calls cb once per member whose effective status, manual status,
 * last_seen or extras (x_dirty) changed since the previous call, then
 * forgets them. hub/ calls
 * it every flush interval so that the store sees at most one write per user
 * per interval, whatever the traffic (no per-heartbeat disk write). */
void presence_drain_dirty(struct presence *p, presence_member_cb *cb,
                          void *ud);

/* ---- cluster nodes (docs/cluster.md) ---------------------------------
 * A node of a cluster runs one core for its own connections and hands
 * Redis its contribution to each user; a second core, the mirror, holds
 * the cluster's effective records as events bring them. */

/* What this core contributes to a user's cluster-wide status: present (a
 * connection or a window), the most present auto status it sees, its
 * connection count. Strings lent. */
struct presence_contrib {
    int present;
    enum presence_status auto_status;  /* OFFLINE, AWAY or ONLINE */
    unsigned nconns;
    int64_t last_seen_ms;
    const char *name;
    int changed;        /* differs from what the previous call returned */
};
/* Called at the end of every change to a user (connect, close, idle
 * report, login, logout, window closed, manual status), before any
 * announcement, with the core consistent. Strings lent. */
typedef void presence_touch_cb(void *ud, const char *org, const char *user,
                               enum presence_reason reason);
void presence_set_watch(struct presence *p, presence_touch_cb *cb, void *ud);
/* Fills out with the user's contribution and, if remember, remembers it
 * (so 'changed' says whether the next one differs). Allowed inside the
 * watch callback. 0 or PRESENCE_ENOENT. */
int presence_contribution(struct presence *p, const char *org,
                          const char *user, struct presence_contrib *out,
                          int remember);
/* Opens a restore window showing auto_status for a known user without a
 * connection or window (a node restarted with its old id takes back what
 * the cluster held for it), and counts it as already contributed.
 * 0, PRESENCE_ENOENT or PRESENCE_EINVAL. Announces nothing. */
int presence_restore(struct presence *p, const char *org, const char *user,
                     enum presence_status auto_status, int64_t now);
/* Mirror cores only: sets m's record as given (adding the user, and its
 * organization, if new): status, manual, last_seen (never backwards),
 * connection count; the organization's seq becomes seq if that is higher;
 * dirty: to be drained by presence_drain_dirty(). Announces nothing.
 * 0 or PRESENCE_EINVAL. */
int presence_mirror_set(struct presence *p, const struct presence_member *m,
                        uint64_t seq, int dirty);
/* Mirror cores only: the organization's seq is seq (made if new). */
void presence_mirror_org(struct presence *p, const char *org, uint64_t seq);

/* Names for the wire: "ONLINE", "AWAY", "BUSY", "OFFLINE"; "connect", ... */
const char *presence_status_name(enum presence_status s);
int presence_status_parse(const char *s, enum presence_status *out);
const char *presence_reason_name(enum presence_reason r);
#endif
