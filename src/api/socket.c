/* socket.c - the WebSocket endpoints: /ws/presence (docs/protocol.md) and
 * the /ws/echo test endpoint.
 *
 * The handshake's own checks come first (400/426, ?auto=), then the
 * Origin of a cookie, then the credential (api_authenticate()), then the
 * per-user connection cap; only then does ws/ take the connection over. */
#include <string.h>

#include "api/api_int.h"
#include "presence/presence.h"

/* docs/protocol.md "?auto=": the page's idle state when it connects, as
 * struct conn.idle_at_connect (0 ONLINE, also when absent; 1 AWAY;
 * 2 OFFLINE), or -1 for any other value. */
static int ws_auto(const struct api_req *q)
{
    static const char *const names[] = {"ONLINE", "AWAY", "OFFLINE"};
    char v[8];
    int n = web_query_get(q->query, q->qlen, "auto", v, sizeof v);
    if (n == -1)
        return 0;
    for (int i = 0; n >= 0 && i < 3; i++)
        if (strcmp(v, names[i]) == 0)
            return i;
    return -1;
}

static void count_conns(void *ud, const struct presence_member *m)
{
    *(unsigned *)ud = m->nconns;
}

void api_ws_presence(struct api_req *q)
{
    struct conn *c = q->c;
    struct server *srv = q->srv;
    if (ws_upgrade_check(c, q->r) != 0)
        return;
    int idle = ws_auto(q);
    if (idle < 0) {
        http_error(c, 400, "bad_request",
                   "auto must be ONLINE, AWAY or OFFLINE");
        return;
    }
    /* A cookie carries ambient authority: a page of another site must not
     * open a socket as the user (cross-site WebSocket hijacking). Tokens
     * are never ambient, so need no check. */
    if (!web_socket_ok(&q->web, srv->cfg.allowed_origins,
                       q->cred.kind == WEB_CRED_TOKEN)) {
        http_error(c, 403, "forbidden_origin",
                   "Origin not allowed for cookie authentication");
        return;
    }
    if (api_authenticate(q) != 0)
        return;
    unsigned n = 0;
    presence_get(srv->presence, q->who.org, q->who.user, count_conns, &n);
    if (n >= (unsigned)srv->cfg.max_conns_per_user) {
        http_error(c, 429, "too_many_connections",
                   "too many open connections for this user");
        return;
    }
    char sub[4];
    c->subscriber = web_query_get(q->query, q->qlen, "subscribe", sub,
                                  sizeof sub) > 0 &&
                    strcmp(sub, "0") != 0;
    c->idle_at_connect = (unsigned)idle;
    ws_upgrade(c, q->r, q->who.org, q->who.user, q->who.session);
}

void api_ws_echo(struct api_req *q)
{
    if (!q->srv->cfg.echo_endpoint) {
        http_error(q->c, 404, "not_found", "no such endpoint");
        return;
    }
    if (ws_upgrade_check(q->c, q->r) == 0)
        ws_upgrade(q->c, q->r, NULL, NULL, 0);
}
