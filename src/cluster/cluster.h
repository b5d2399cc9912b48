/* cluster.h - this node's link to the cluster's Redis (docs/cluster.md).
 *
 * Two hiredis connections on one libuv loop (the owner's loop 0): one for
 * commands, every one a call of the cluster script (cluster.lua, EVALSHA),
 * and one subscribed to the cluster's event channels. It knows nothing of
 * the presence rules or of WebSocket: it carries contributions, manual
 * statuses and kicks to Redis, and hands what comes back (events, record
 * updates, kicks, resyncs) to the owner's callbacks, in the order Redis
 * sent them. It reconnects by itself with backoff (100 ms doubling to 2 s).
 *
 * Threads: cluster_contribute(), cluster_manual(), cluster_kick() and
 * cluster_resync() may be called from any thread (they queue under the
 * module's own mutex and wake the loop); everything else, and every
 * callback, runs on the loop's thread. Callbacks are called with no lock
 * of the owner's held.
 *
 * Ownership: strings passed in are copied; strings handed to callbacks
 * are lent for the call. */
#ifndef CLUSTER_H
#define CLUSTER_H
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

struct cluster;

struct cluster_opts {
    const char *uri;            /* redis://... or unix:///... */
    const char *name;           /* cluster name: keys "presenced:NAME:" */
    const char *node;           /* this node's id */
    const char *listen;         /* shown by `cluster status` */
    int64_t node_ttl_ms;
    int64_t grace_ms;           /* a dead node is reaped ttl + grace on */
    int64_t started_ms;
};

/* A user's effective record (docs/cluster.md "K u:<org>"). */
struct cluster_rec {
    const char *user, *name;
    int status, manual;         /* numbers as presence.h; manual -1 none */
    unsigned nconns;
    int64_t last_seen_ms;
};

/* An event (seq > 0, frame the client's frame) or a record update
 * (seq 0, no frame). */
struct cluster_event {
    const char *org, *origin;
    struct cluster_rec r;
    uint64_t seq;
    const char *frame;
    size_t frame_len;
};

enum cluster_state {
    CLUSTER_STARTING,           /* not yet connected once */
    CLUSTER_UP,
    CLUSTER_DOWN,               /* degraded: reconnecting */
};

struct cluster_callbacks {
    void (*on_event)(void *ud, const struct cluster_event *ev);
    void (*on_kick)(void *ud, const char *org, const char *user,
                    uint64_t session);
    /* The organization's records as of seq, all of them (recs[n]). */
    void (*on_resync)(void *ud, const char *org, uint64_t seq,
                      const struct cluster_rec *recs, size_t n);
    /* At the first connection only: a contribution Redis holds for this
     * node id from before a restart. */
    void (*on_claim)(void *ud, const char *org, const char *user,
                     int auto_status);
    /* Connected and subscribed: first is 1 the first time (after the
     * claims). The owner then pushes what it holds (cluster_sync_*), not
     * needed the first time, and resyncs every organization it knows;
     * orgs[n] are those Redis knows. */
    void (*on_up)(void *ud, int first, const char *const *orgs, size_t n);
    void (*on_down)(void *ud);
    /* Another node made (add) or ended a login session. */
    void (*on_session)(void *ud, int add, int64_t id,
                       const unsigned char hash[32], const char *org,
                       const char *user, int64_t expires_ms);
    /* Another node counted key (a failed login's rate key). */
    void (*on_count)(void *ud, const char *key);
    /* For the liveness record: this node's open connections. */
    unsigned (*nconns)(void *ud);
};

/* 0, or -1 with a reason in err (256 bytes; never the password). Starts
 * connecting at once. */
int cluster_new(struct cluster **out, const struct cluster_opts *o,
                uv_loop_t *loop, const struct cluster_callbacks *cb,
                void *ud, char *err);
/* Closes the connections and handles; the loop then runs until they are
 * gone, after which cluster_free(). On the loop's thread. */
void cluster_close(struct cluster *cl);
void cluster_free(struct cluster *cl);          /* NULL is a no-op */

enum cluster_state cluster_state(const struct cluster *cl);
const char *cluster_node(const struct cluster *cl);

/* This node's contribution to org/user (presence.h presence_contrib),
 * reason the wire name of its cause, manual_hint the manual status this
 * node knows (used only if Redis lost the record). Dropped while Redis is
 * down: cluster_sync_*() pushes everything after a reconnect. */
void cluster_contribute(struct cluster *cl, const char *org,
                        const char *user, int present, int auto_status,
                        unsigned nconns, int64_t last_seen_ms,
                        const char *reason, const char *name,
                        int manual_hint);
/* A manual status (-1 clears it). Kept while Redis is down (bounded) and
 * sent after the resync. */
void cluster_manual(struct cluster *cl, const char *org, const char *user,
                    int manual, const char *name, int64_t now_ms);
/* Closes a login session's connections on every node (logout). */
void cluster_kick(struct cluster *cl, const char *org, const char *user,
                  uint64_t session);
/* Tells the other nodes to count keys[n] too (rate limits that are
 * cluster-wide: on_count() on each of them). Dropped while down. */
void cluster_count(struct cluster *cl, const char *const *keys, size_t n);
/* done(arg), if not NULL, runs on the loop once Redis has answered the
 * publish, or at once if it is dropped (no lock held). */
/* Tells the other nodes of a login session made (add: its token's hash,
 * org, user, expiry) or ended (hash, org, user may be NULL). Dropped while
 * down: a node that missed it finds the session in the database at its
 * next start. */
void cluster_session(struct cluster *cl, int add, int64_t id,
                     const unsigned char *hash, const char *org,
                     const char *user, int64_t expires_ms,
                     void (*done)(void *arg), void *arg);
/* done(arg) on the loop once this node has received everything published
 * before the call (a message of its own through Redis and back), or at
 * once if Redis is not there. Any thread. */
void cluster_barrier(struct cluster *cl, void (*done)(void *arg), void *arg);
/* Asks for org's records (on_resync). */
void cluster_resync(struct cluster *cl, const char *org);

/* Everything this node holds, after a reconnect, in one script call:
 * begin, one add per present contribution (and one not present, with its
 * last_seen, per user this node saw go while Redis was away), one floor per organization
 * (its seq as the node's clients saw it), end. Loop thread. */
void cluster_sync_begin(struct cluster *cl);
void cluster_sync_add(struct cluster *cl, const char *org, const char *user,
                      int present, int auto_status, unsigned nconns,
                      int64_t last_seen_ms, const char *name,
                      int manual_hint);
void cluster_sync_floor(struct cluster *cl, const char *org, uint64_t seq);
void cluster_sync_end(struct cluster *cl);
#endif
