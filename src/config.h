/* config.h - every setting, its default, and where it comes from.
 *
 * Precedence, lowest first: built-in defaults, the config file (--config
 * FILE or PRESENCED_CONFIG), the environment (PRESENCED_<KEY>), then
 * command-line flags. Each setting has one key; the file uses "key = value"
 * lines (# comments, blank lines ignored), the environment the key upper-
 * cased with the prefix (grace -> PRESENCED_GRACE), and flags --key VALUE.
 * Durations take a unit: 250ms, 5s, 30m, 1h, 2d (a bare number is seconds).
 * Sizes take k, m or g (binary): 64k, 1m (a bare number is bytes). */
#ifndef CONFIG_H
#define CONFIG_H
#include <stddef.h>
#include <stdint.h>

#define CONFIG_ERRLEN 256

struct config {
    char listen[128];          /* listen      HOST:PORT, 127.0.0.1:8080 */
    char db[1024];             /* db          presenced.db, or a URI */
    int64_t db_pool;           /* db_pool     4: PostgreSQL connections */
    char redis[1024];          /* redis       "" = no cluster; a URI
                                  (cluster/uri.h) */
    char cluster[65];          /* cluster     presenced: key prefix */
    char node_id[129];         /* node_id     "" = host name:port, see
                                  config_node_id() */
    int64_t node_ttl_ms;       /* node_ttl    5s: liveness key lifetime */
    char jwt_secret[512];      /* jwt_secret  "" = none (demo makes one) */
    char allowed_origins[1024];/* allowed_origins  "" = the server's own */
    char log_level[16];        /* log_level   info */
    int64_t grace_ms;          /* grace       5s */
    int64_t heartbeat_ms;      /* heartbeat   30s */
    int64_t away_after_ms;     /* away_after  5m */
    int64_t offline_after_ms;  /* offline_after 30m */
    int64_t stale_after_ms;    /* stale_after 30m */
    int64_t login_grace_ms;    /* login_grace 60s */
    int64_t restart_grace_ms;  /* restart_grace 30s */
    int64_t session_ttl_ms;    /* session_ttl 30d */
    int64_t flush_ms;          /* flush       15s: batched last_seen writes */
    int64_t sweep_ms;          /* sweep       1m: stale sweep interval */
    int64_t max_msg;           /* max_msg     64k: WebSocket message cap */
    int64_t login_limit;       /* login_limit 10: failed logins per window
                                  per address and per email */
    int64_t login_window_ms;   /* login_window 5m */
    int64_t login_queue;       /* login_queue 64: waiting password checks */
    int64_t login_timeout_ms;  /* login_timeout 10s: ... dropped after */
    char trusted_proxies[1024];/* trusted_proxies "": addresses, CIDRs */
    int secure_cookies;        /* secure_cookies 0: always Secure */
    int64_t max_sessions;      /* max_sessions 50: per user */
    int64_t min_password;      /* min_password 8: characters, `user add` */
    int64_t header_timeout_ms; /* header_timeout 10s: slowloris */
    int64_t max_body;          /* max_body    64k */
    int64_t max_out;           /* max_out     1m: per-client queue cap */
    int64_t max_conns_per_user;/* max_conns_per_user 32 */
    int64_t conn_rate;         /* conn_rate   50: per address per second */
    int64_t msg_rate;          /* msg_rate    20: per connection per s */
    int64_t status_rate;       /* status_rate 10: per user per s */
    int64_t loops;             /* loops 0: one per core */
    int64_t large_org;         /* large_org   1000: subscriptions only */
    int echo_endpoint;         /* echo_endpoint 0: mount /ws/echo */
    int demo;                  /* demo        0: demo mode (allows a
                                  generated JWT secret) */
};

void config_defaults(struct config *c);
/* Sets one setting by key from its string form. 0, or -1 with a reason in
 * err (unknown key, bad value). */
int config_set(struct config *c, const char *key, const char *value,
               char *err);
/* Applies a "key = value" file. 0, or -1 with "FILE:LINE: reason". */
int config_load_file(struct config *c, const char *path, char *err);
/* Applies every PRESENCED_<KEY> variable of envp that names a setting
 * (PRESENCED_CONFIG is not a setting and is skipped). 0 or -1. */
int config_load_env(struct config *c, char *const *envp, char *err);

/* This node's id in a cluster (docs/cluster.md): node_id if set, else
 * the host name (gethostname(), each byte outside [A-Za-z0-9_.-] made
 * '_', cut to fit 128 bytes), ':' and the port of listen. 0 with the id
 * in out (n bytes), or -1 if the host name cannot be had or out is too
 * short (129 bytes always do). */
int config_node_id(const struct config *c, char *out, size_t n);

/* For --help and the README table: cb per setting, in a stable order. */
typedef void config_setting_cb(void *ud, const char *key, const char *env,
                               const char *def, const char *help);
void config_each(config_setting_cb *cb, void *ud);

/* "250ms" "5s" "30m" "1h" "2d" "10" (seconds) -> ms. 0 or -1. Rejects
 * negatives, overflow, empty and trailing junk. */
int config_parse_duration(const char *s, int64_t *ms);
/* "64k" "1m" "1g" "100" -> bytes. 0 or -1. */
int config_parse_size(const char *s, int64_t *bytes);
#endif
