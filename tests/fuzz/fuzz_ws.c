/* fuzz_ws.c - WebSocket frames as the server sees them.
 *
 * A client of o1/u1 upgrades with a valid request (bearer JWT or session
 * cookie; or to /ws/echo, mounted for the RFC 6455 conformance suites),
 * then everything after the three header bytes is what it sends:
 * frames masked or not, fragments, control frames, huge lengths, invalid
 * UTF-8, in reads of sizes chosen by the chunker. The real ws.c (wslay's
 * event API), hub.c, presence core and store handle them; fake_server.c
 * checks every frame the server writes back, and that none carries o2's
 * data (u3, its channel) to this o1 client, whatever it subscribes to.
 *
 * Input: flags, chunker seed, a third byte, then the client's bytes.
 *   flags bits 0-1  max_msg: 64k (default), 1k, 4k, 16k
 *         bit 2     u2 of the same org is connected too (receives fan-out)
 *         bit 3     authenticate with the session cookie, not a JWT
 *         bit 4     that session logs out before the read numbered by
 *                   the low 7 bits of the third byte
 *         bit 5     1 s between reads instead of 1 ms (heartbeats, rate
 *                   windows)
 *         bit 6     SIGTERM-style shutdown at the end
 *         bit 7     the first read also carries the upgrade request, so
 *                   frames arrive right behind it
 *   third byte bit 7  the client is on /ws/echo (echo_endpoint on) */
#include <string.h>

#include "auth/jwt.h"
#include "fuzz.h"
#include "hub/hub.h"

static const char upgrade_head[] =
    "Host: localhost:8080\r\n"
    "Upgrade: websocket\r\n"
    "Connection: keep-alive, Upgrade\r\n"
    "Sec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";

/* The request of user of o1 (NULL: the echo endpoint, which takes no
 * credentials), by session cookie or bearer JWT. */
static size_t upgrade_request(char *out, size_t outlen, const char *user,
                              int cookie)
{
    char auth[JWT_MAX_LEN + 64] = "";
    if (user && cookie) {
        snprintf(auth, sizeof auth,
                 "Cookie: presenced_session=" FUZZ_SESSION_TOKEN "\r\n"
                 "Origin: http://localhost:8080\r\n");
    } else if (user) {
        struct jwt_claims cl = {.exp = FUZZ_NOW_MS / 1000 + 3600};
        snprintf(cl.sub, sizeof cl.sub, "%s", user);
        snprintf(cl.org, sizeof cl.org, "o1");
        char tok[JWT_MAX_LEN];
        CHECK(jwt_sign(&cl, FUZZ_JWT_SECRET, strlen(FUZZ_JWT_SECRET), tok,
                       sizeof tok) > 0,
              "jwt_sign");
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", tok);
    }
    int n = snprintf(out, outlen, "GET %s HTTP/1.1\r\n%s%s\r\n",
                     user ? "/ws/presence/" : "/ws/echo", upgrade_head, auth);
    CHECK(n > 0 && (size_t)n < outlen, "request buffer");
    return (size_t)n;
}

/* Connects and upgrades; extra (may be empty) rides in the same read. */
static struct fake_sock *connect_ws(struct fake_server *srv, const char *user,
                                    int cookie, const uint8_t *extra,
                                    size_t extra_len)
{
    char req[8192 + 64 * 1024];
    size_t n = upgrade_request(req, sizeof req - extra_len, user, cookie);
    if (extra_len)
        memcpy(req + n, extra, extra_len);
    struct fake_sock *s = fake_accept(srv);
    CHECK(s, "connection refused");
    fake_read(s, req, n + extra_len, 1);
    CHECK(fake_upgraded(s), "the upgrade of %s was refused",
          user ? user : "/ws/echo");
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int64_t max_msg[] = {64 * 1024, 1024, 4096, 16384};
    if (size < 3 || size > 64 * 1024)
        return 0;
    uint8_t flags = data[0], event_at = data[2] & 0x7f;
    int echo = data[2] & 0x80;
    struct config cfg;
    config_defaults(&cfg);
    cfg.max_msg = max_msg[flags & 3];
    cfg.echo_endpoint = 1;
    struct fake_server *srv = fake_server_new(&cfg);
    fuzz_isolation = !memmem(data, size, "-secret", 7);
    struct chunker ch;
    chunker_init(&ch, data[1]);
    const uint8_t *p = data + 3;
    size_t left = size - 3;

    if (flags & 0x04)
        connect_ws(srv, "u2", 0, NULL, 0);
    size_t first = 0;
    if (flags & 0x80)
        first = chunker_next(&ch, left);
    struct fake_sock *s = connect_ws(srv, echo ? NULL : "u1", flags & 0x08,
                                     p, first);
    p += first;
    left -= first;

    int64_t step = flags & 0x20 ? 1000 : 1;
    for (unsigned i = 0; left; i++) {
        if ((flags & 0x10) && i == event_at) {
            /* POST /api/logout of the cookie's session (id 1). */
            struct hub *hb = fake_hub(srv);
            hub_lock(hb);
            hub_end_session(hb, "o1", "u1", (flags & 0x08) ? 1 : 0);
            hub_unlock(hb);
            fake_turn(srv, 0);
        }
        size_t n = chunker_next(&ch, left);
        if (fake_read(s, p, n, step) != 0)
            break;
        p += n;
        left -= n;
    }
    fake_server_free(srv, flags & 0x40);
    return 0;
}
