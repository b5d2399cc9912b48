/* hub.h - the shared presence state of a running server, and the glue
 * between the presence core, WebSocket connections and the store.
 *
 * The core decides; the hub carries out. Each announcement is encoded once
 * into one frame and that frame is queued, by reference, to every open
 * connection of the organization, on whichever loop it lives (another
 * loop's connections get it through that loop's post queue, delivered
 * under the lock before anything else the loop does, so every client sees
 * events in order). The store sees the core's changes in batches, never
 * per heartbeat.
 *
 * Threads and the lock: a struct hub is shared by every loop. Its state -
 * the core, organizations, subscriptions, the hub fields of every
 * connection, the rate table - is guarded by one lock, hub_lock(), which
 * the hub's own WebSocket callbacks take (but on_open, which runs inside
 * hub_accept()), and which callers take around every other function here
 * ("lock held"). No store call and no socket write is made under it. hub_lock() is re-entrant on one
 * thread; taking it refreshes hub_now() (never backwards) and first
 * delivers what other loops posted to the calling thread's loop.
 *
 * Ownership: the hub owns its connections' state (struct hub_conn,
 * private), freed when the connection is. The store is lent to it for its
 * lifetime. */
#ifndef HUB_H
#define HUB_H
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#include "store/queue.h"

struct http_conn;
struct http_req;
struct loop;
struct presence;
struct rate_table;
struct store;
struct hub;

#define HUB_MAX_SUBS 10000      /* subscriptions per connection */
#define HUB_MAX_LOOPS 64

/* Who a new WebSocket connection is (strings lent for the call). */
struct hub_who {
    const char *org, *user;
    uint64_t session;           /* login session, 0 for a token */
    int idle_at_connect;        /* ?auto=: 0 ONLINE, 1 AWAY, 2 OFFLINE */
    int subscriber;             /* wants only the users it subscribes to */
};

/* Loads every user from the store into a new core (storeq_call(), before
 * the loops run). nloops: how many loops will hold connections
 * (hub_set_loop() each). 0, or -1 (logged). The queue is lent. */
int hub_new(struct hub **out, const struct config *cfg, struct storeq *q,
            unsigned nloops);
void hub_free(struct hub *hb);  /* after every loop is gone; NULL no-op */
/* Loop i of the server: posts for it wake it, and store jobs submitted
 * on it complete through sq. Before the loops run. */
void hub_set_loop(struct hub *hb, unsigned i, struct loop *lp,
                  struct storeq_client *sq);

/* Queues a store job from the calling loop thread (store/queue.h): run on
 * the store thread, done back on this loop. Returns 0, or STOREQ_EFULL /
 * STOREQ_ECLOSED (nothing queued, ud the caller's). Lock not needed; a
 * done that touches the hub takes it. */
int hub_submit(struct hub *hb, storeq_run_cb *run, storeq_done_cb *done,
               void *ud, unsigned flags);
/* Called when an asynchronous step is over, lock held. */
typedef void hub_done_cb(void *arg);

void hub_lock(struct hub *hb);
void hub_unlock(struct hub *hb);

/* Lock held for all below. */
int64_t hub_now(const struct hub *hb);
struct presence *hub_presence(struct hub *hb);
struct rate_table *hub_rates(struct hub *hb);
/* New settings (SIGHUP); windows already open keep their deadlines. */
void hub_reload(struct hub *hb, const struct config *cfg);

/* Upgrades h (a request that passed ws_upgrade_check()) to a presence
 * WebSocket of who: hello, snapshot, then events. Returns 0, or -1 after
 * an error answer. */
int hub_accept(struct hub *hb, struct http_conn *h, const struct http_req *r,
               const struct hub_who *who);
/* WebSocket connections open on loop i, of hub_nloops(). */
unsigned hub_nconns(const struct hub *hb, unsigned i);
unsigned hub_nloops(const struct hub *hb);

/* Timers. */
void hub_tick(struct hub *hb);              /* presence windows */
void hub_heartbeat(struct hub *hb, unsigned i); /* loop i's connections */
/* Tells subscribers of large organizations their new online count (at
 * most once per call per organization; called every second). */
void hub_send_online(struct hub *hb);
/* Queues the rows the core changed since the last flush, in one job. */
void hub_flush_store(struct hub *hb);
int hub_sweep(struct hub *hb, int64_t older_than_ms);
/* Drops the cached organization snapshots (rebuilt at the next connect):
 * they serve connect bursts, and are dead weight after one. Returns how
 * many connects and closes happened since the last call. */
unsigned long hub_drop_caches(struct hub *hb);
unsigned long hub_churn(const struct hub *hb);

/* Shutdown: from now on closes change no status (users get a restore
 * window at the next start). */
void hub_stopping(struct hub *hb);
/* Closes loop i's connections (1001); on loop i's thread. */
void hub_shutdown(struct hub *hb, unsigned i);
/* Loop i is closed: nothing more is posted to it. */
void hub_loop_closed(struct hub *hb, unsigned i);

/* docs/security.md status_rate: 1 if user may change its status now
 * (counts this change), 0 if over the limit. */
int hub_status_allowed(struct hub *hb, const char *org, const char *user);
/* Manual status from the API or a frame: core, then a store job at once
 * (retried while another process holds the database). 0 or a negative
 * PRESENCE_E* code. */
int hub_set_manual(struct hub *hb, const char *org, const char *user,
                   int status);
/* A member's update (PUT /api/status, /api/dnd, /api/profile; the
 * WebSocket "update" message): "status" if present, and the patch keys of
 * presence/extra.h (message, dnd, tz, hide_last_seen), applied in one step
 * with at most one announcement and stored at once. Returns 0, or -1 with
 * *code (a static wire code) and err set, nothing changed. */
struct json_t;
int hub_update(struct hub *hb, const char *org, const char *user,
               const struct json_t *obj, const char **code, char *err,
               size_t errlen);
/* Closes every connection of a login session (1008) and sets the user
 * OFFLINE at once if it was the last (logout). */
void hub_end_session(struct hub *hb, const char *org, const char *user,
                     uint64_t session_id);
/* Closes the connections of one login session (1008) and leaves the
 * user's presence to their closing (grace), unlike a logout. */
void hub_revoke_session(struct hub *hb, const char *org, const char *user,
                        uint64_t session_id);
/* Makes sure org/user exist in the core at once and in the store soon
 * (token provisioning; name, if not NULL or "", becomes its name). 0, or
 * a negative code for ids or a name the store would refuse. */
int hub_ensure_user(struct hub *hb, const char *org, const char *user,
                    const char *name);
/* Loads the members the store has and the core lacks (added by the CLI
 * while we run), asynchronously; then(arg) runs after, lock held (at once
 * if the store cannot take the job). then may be NULL. */
void hub_sync_org(struct hub *hb, const char *org, hub_done_cb *then,
                  void *arg);
/* Asks the store whether another process committed since (a store job;
 * one at a time): connects then sync their organization first. Called
 * a few times a second. */
void hub_poll_store(struct hub *hb);
/* ---- cluster (docs/cluster.md) ----
 * With cfg.redis set (at hub_new()), the hub keeps a view of the
 * cluster's records beside its core. Before the loops run: */
struct cluster;
struct cluster_callbacks;
struct presence_member;
/* The callbacks a struct cluster must be made with (ud: the hub). */
void hub_cluster_callbacks(struct cluster_callbacks *cb);
void hub_set_cluster(struct hub *hb, struct cluster *cl);
/* Lock held: "ok" or "degraded", or NULL when not in a cluster; the node
 * id ("" alike). */
const char *hub_cluster_state(const struct hub *hb);
const char *hub_node(const struct hub *hb);
/* Login sessions in a cluster: the owner of the session table hooks in
 * to hear of the other nodes' (lock held in the hook), and tells the hub
 * of its own (lock held; no-op on a single server). An ended session's
 * connections on this node are closed (1008) by the hub after the hook. */
typedef void hub_session_cb(void *ud, int add, int64_t id,
                            const unsigned char hash[32], const char *org,
                            const char *user, int64_t expires_ms);
void hub_set_session_hook(struct hub *hb, hub_session_cb *cb, void *ud);
/* A new session (add), then then(arg) on this loop, lock held: at once
 * on a single server, after Redis took the message in a cluster (or gave
 * up on it). */
void hub_session_changed_then(struct hub *hb, int64_t id,
                              const unsigned char *hash, const char *org,
                              const char *user, int64_t expires_ms,
                              hub_done_cb *then, void *arg);
/* then(arg) on this loop, lock held, once this node has received what
 * the cluster published before now (at once on a single server). */
void hub_barrier_then(struct hub *hb, hub_done_cb *then, void *arg);
void hub_session_changed(struct hub *hb, int add, int64_t id,
                         const unsigned char *hash, const char *org,
                         const char *user, int64_t expires_ms);
/* Lock held: a failed login's rate keys, counted on the other nodes of
 * the cluster too (no-op on a single server). */
void hub_login_failed(struct hub *hb, const char *ipkey,
                      const char *emailkey);
/* Lock held: what members see (the cluster's view, or the core). */
struct presence *hub_view(struct hub *hb);
/* Lock held: org/user as the user itself is to be told (presence_get()'s
 * contract): on a cluster node, the record with this node's own
 * connections already counted. */
typedef void presence_member_cb(void *ud, const struct presence_member *m);
int hub_get_self(struct hub *hb, const char *org, const char *user,
                 presence_member_cb *cb, void *ud);

/* At thread exit: frees this thread's buffers. */
void hub_thread_done(void);
#endif
