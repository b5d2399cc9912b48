/* socket.c - the WebSocket endpoints: /ws/presence (docs/protocol.md) and
 * the /ws/echo test endpoint.
 *
 * The handshake's own checks come first (400/426, ?auto=), then the
 * Origin of a cookie, then the credential (api_authenticate()), then the
 * per-user connection cap; only then does ws/ take the connection over. */
#include <string.h>

#include "api/api_int.h"
#include "util/xalloc.h"
#include "ws/ws.h"
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
    struct http_conn *c = q->c;
    struct api_loop *srv = q->srv;
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
    /* Per user, cluster-wide: the view counts every node's connections
     * (as of the last event), the core this node's at this moment. */
    presence_get(hub_presence(srv->hub), q->who.org, q->who.user, count_conns, &n);
    unsigned all = 0;
    presence_get(hub_view(srv->hub), q->who.org, q->who.user, count_conns,
                 &all);
    if (all > n)
        n = all;
    if (n >= (unsigned)srv->cfg.max_conns_per_user) {
        http_error(c, 429, "too_many_connections",
                   "too many open connections for this user");
        return;
    }
    char sub[4];
    struct hub_who who = {
        .org = q->who.org, .user = q->who.user, .session = q->who.session,
        .idle_at_connect = idle,
        .subscriber = web_query_get(q->query, q->qlen, "subscribe", sub,
                                    sizeof sub) > 0 &&
                      strcmp(sub, "0") != 0,
    };
    hub_accept(srv->hub, c, q->r, &who);
}

/* /ws/echo: the connection's memory is its ws_conn alone. */
static void echo_free(struct ws_conn *w) { free(w); }
static const struct ws_callbacks echo_callbacks = {.on_free = echo_free};

void api_ws_echo(struct api_req *q)
{
    if (!q->srv->cfg.echo_endpoint) {
        http_error(q->c, 404, "not_found", "no such endpoint");
        return;
    }
    if (ws_upgrade_check(q->c, q->r) != 0)
        return;
    struct ws_conn *e = xcalloc(1, sizeof *e);
    if (ws_accept(e, q->c, q->r, &echo_callbacks,
                  (size_t)q->srv->cfg.max_msg, 1) != 0)
        free(e);
}
