/* fuzz.h - what the libFuzzer targets of tests/fuzz/ share.
 *
 * CHECK() is an invariant of the code under test: when it fails the target
 * prints the reason and aborts, which libFuzzer reports as a crash with the
 * input saved. The chunker turns one byte of the input into the sizes of
 * the reads a socket would deliver, so that every parser is also fed split
 * at arbitrary points (1 byte at a time included), as a slow or hostile
 * client would. The fake server (fake_server.c) is a fake transport
 * (net/net.h) wired as server/server.c wires the real one, so that the real
 * http/, api/, ws/, hub/, presence/ and store/ code runs as the server runs
 * it, without a socket, a loop thread or a database file. */
#ifndef FUZZ_H
#define FUZZ_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "config.h"
#include "util/xalloc.h"

#define CHECK(cond, ...)                                                  \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "%s:%d: CHECK(%s) failed: ", __FILE__,        \
                    __LINE__, #cond);                                     \
            fprintf(stderr, __VA_ARGS__);                                 \
            fputc('\n', stderr);                                          \
            abort();                                                      \
        }                                                                 \
    } while (0)

/* 1 if p[0..n) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). */
int fuzz_utf8_valid(const unsigned char *p, size_t n);

/* Read sizes from one seed byte: 0 delivers everything at once; otherwise
 * the low bits pick a largest size (1 = byte by byte) and the rest vary. */
struct chunker {
    uint32_t state;
    size_t max;
};
void chunker_init(struct chunker *ch, uint8_t seed);
size_t chunker_next(struct chunker *ch, size_t left);

/* ---- The fake server (fake_server.c) ----------------------------------- */

/* Fixed values the corpus generator (gen_corpus.py) uses too. */
#define FUZZ_JWT_SECRET "fuzz-secret-0123456789abcdef0123456789abcdef"
#define FUZZ_NOW_MS 1764355200000LL /* 2025-11-28T18:40:00Z */
#define FUZZ_SESSION_TOKEN "fuzzsessiontoken0123456789abcdefghijklmnopq"
#define FUZZ_ADMIN_KEY \
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

struct fake_server; /* the server: one loop, its hub, routes and store */
struct fake_sock;   /* one accepted connection, as its peer sees it */
struct hub;

/* A server as server_run() sets one up with settings cfg (NULL: the
 * defaults), the fixed clock and secret, over a fresh store (SQLite in
 * memory) holding org o1 with users u1 and u2, org o2 with u3, a live
 * login session of o1/u1 (FUZZ_SESSION_TOKEN, session id 1), a channel in
 * each org (c_general, c_other) and a project in o1 (p_launch). u2 and
 * o1's channel have "o1-secret" in their names, u3 and o2's channel
 * "o2-secret". */
struct fake_server *fake_server_new(const struct config *cfg);
/* Stops the server (with shutdown: as SIGTERM does, 1001 to every
 * WebSocket), closes what is still open, and checks that every
 * connection, queued frame and callback is gone before freeing it all. */
void fake_server_free(struct fake_server *srv, int shutdown);
/* The server's hub (take hub_lock() around calls into it). */
struct hub *fake_hub(struct fake_server *srv);

/* Accepts one connection, as server.c's on_accept() (conn_rate, then
 * HTTP). NULL if it was refused. */
struct fake_sock *fake_accept(struct fake_server *srv);
/* The peer sends n bytes, handed to the connection's handler as reads of
 * at most 64 KiB (conn.c's read buffer); then advance_ms pass and a loop
 * turn runs (fake_turn).
 * Returns 0, or -1 once the server no longer reads (closed or closing). */
int fake_read(struct fake_sock *s, const void *p, size_t n,
              int64_t advance_ms);
/* The peer hangs up (EOF). */
void fake_hangup(struct fake_sock *s);
/* advance_ms pass; the timers of server.c that are due run (tick, online
 * counts, heartbeat, flush, sweep), then the deadlines passed; thread-pool
 * work and the done callbacks of store jobs finish; queued output is
 * written (checked); close callbacks run (connections may be freed). */
void fake_turn(struct fake_server *srv, int64_t advance_ms);
/* 1 once a 101 has been queued on s. */
int fake_upgraded(struct fake_sock *s);
/* Isolation check, set by the harness per input (fake_server_new clears
 * it): o1's names (a user, a channel) must reach only a client that has
 * authenticated as o1 - by a token (jwt_verify is wrapped) or a session
 * cookie (sessions_get_by_hash is wrapped) - and o2's only one of o2. Off
 * when the input itself holds the marker ("-secret"), which /ws/echo would
 * send back. */
extern int fuzz_isolation;
void fuzz_saw_org(const char *org);
/* Responses queued while HTTP awaited an answer (to a routed request) so
 * far, over all connections; errors of the parser itself are not counted. */
extern long fuzz_answers;
#endif
