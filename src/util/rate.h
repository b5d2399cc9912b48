/* rate.h - fixed-window counters by key ("ip:1.2.3.4", "email:x@y").
 *
 * Used for failed logins (per address and per email), new connections per
 * address, and status changes per user. Each key keeps one small entry
 * while its window is open; rate_prune() forgets closed windows, so memory
 * follows the number of recently active keys. Time is passed in.
 *
 * Not thread-safe: the server keeps one table (the hub's, hub_rates()) and
 * uses it from every loop thread, always under the hub's lock. */
#ifndef RATE_H
#define RATE_H
#include <stdint.h>

struct rate_table;

struct rate_table *rate_new(void);
void rate_free(struct rate_table *t); /* NULL is a no-op */

/* The count in key's current window (0 if none or the window closed). */
int64_t rate_count(struct rate_table *t, const char *key, int64_t window_ms,
                   int64_t now);
/* Adds one to key's window (opening one at now if needed); returns the
 * new count. */
int64_t rate_add(struct rate_table *t, const char *key, int64_t window_ms,
                 int64_t now);
/* Milliseconds until key's window closes (0 if none). */
int64_t rate_wait(struct rate_table *t, const char *key, int64_t now);
/* Takes back one that rate_add() added at time added_at (a reservation
 * that turned out not to count), if that window is still open. */
void rate_sub(struct rate_table *t, const char *key, int64_t added_at,
              int64_t now);
void rate_forget(struct rate_table *t, const char *key);
/* Drops every entry whose window has closed; returns how many remain. */
unsigned rate_prune(struct rate_table *t, int64_t now);
#endif
