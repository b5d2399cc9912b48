/* server.h - the daemon, assembled: loops and their threads, the hub, the
 * store, the routes, timers and signals, wired together.
 *
 * Threads (docs/design.md "Threads"): `loops` I/O threads, each running
 * one net/ loop with its own listening socket (SO_REUSEPORT: the kernel
 * spreads new connections) and its connections; loop 0 runs on the
 * calling thread and also owns signals and the timers of the shared state
 * (presence windows, store flush, stale sweep). Password hashing runs on
 * libuv's thread pool (api/). The shared state is the hub's, behind its
 * lock (hub/hub.h). */
#ifndef SERVER_H
#define SERVER_H
#include <stddef.h>

#include "config.h"

/* Builds the configuration again (SIGHUP): 0, or -1 with a reason in err
 * (CONFIG_ERRLEN bytes). */
typedef int server_reload_cb(void *ud, struct config *out, char *err);
/* The demo mode's generated JWT secret for database db, into out: 0, or
 * -1 (logged). */
typedef int server_secret_cb(void *ud, const char *db, char *out,
                             size_t outlen);

struct server_hooks {
    server_reload_cb *reload;       /* NULL: SIGHUP reloads nothing */
    server_secret_cb *demo_secret;  /* NULL: demo mode cannot start */
    void *ud;
};

/* Runs the server until SIGTERM/SIGINT. cfg and hooks are copied. Returns
 * 0 on a clean stop, -1 if it could not start (reason logged). */
int server_run(const struct config *cfg, const struct server_hooks *hooks);
#endif
