/* pages.c - the HTML pages and their assets (web/, built into the binary
 * as http/assets.h).
 *
 * Pages are static shells that load their data from the API, so user
 * text only ever reaches the DOM as text (textContent), never as HTML.
 * Every page but the login page wants a live session cookie (API_PAGE):
 * without one the visitor is sent to sign in, and brought back after.
 * A page that does not exist is the 404 page, for anyone: a signed-in
 * visitor's script adds the navigation, an anonymous one's a way to sign
 * in (a redirect to /login would only bring it back to a 404). */
#include <stdio.h>
#include <string.h>

#include "api/api_int.h"
#include "http/assets.h"
#include "util/xalloc.h"

#define PAGE_HEADERS                                                      \
    "Content-Security-Policy: default-src 'self'; script-src 'self'; "    \
    "style-src 'self'; img-src 'self' data:; connect-src 'self'; "        \
    "worker-src 'self'; frame-ancestors 'none'; base-uri 'none'; "        \
    "form-action 'self'\r\n"                                            \
    "X-Frame-Options: DENY\r\n"                                          \
    "Referrer-Policy: same-origin\r\n"

/* Files are revalidated on each use (no-cache) and answered 304 while
 * the browser's copy is current: pages change with each build. */
static void serve(struct api_req *q, const struct asset *a)
{
    char hdr[1024];
    snprintf(hdr, sizeof hdr, PAGE_HEADERS "Cache-Control: no-cache\r\n"
             "ETag: %s\r\n", a->etag);
    if (q->r->if_none_match && strcmp(q->r->if_none_match, a->etag) == 0)
        http_respond(q->c, 304, hdr, a->type, "", 0);
    else
        http_respond(q->c, 200, hdr, a->type, (const char *)a->data, a->len);
}

void api_asset(struct api_req *q)
{
    const struct asset *a = assets_find(q->path, q->plen);
    if (!a)
        http_error(q->c, 404, "not_found", "no such file");
    else
        serve(q, a);
}

/* The shell of each page route (the patterns of api.c's table). */
static const struct {
    const char *pattern, *file;
} shells[] = {
    {"/", "/index.html"},
    {"/login", "/login.html"},
    {"/channels", "/channels.html"},
    {"/members", "/members.html"},
    {"/channels/:id", "/channel.html"},
    {"/users/:id", "/user.html"},
    {"/projects/:id", "/project.html"},
    {"/projects", "/projects.html"},
};

void api_page(struct api_req *q)
{
    const struct asset *a = NULL;
    for (size_t i = 0; i < ARRAY_LEN(shells); i++)
        if (strcmp(shells[i].pattern, q->pattern) == 0)
            a = assets_find(shells[i].file, strlen(shells[i].file));
    if (!a)
        http_error(q->c, 404, "not_found", "page not built");
    else
        serve(q, a);
}

void api_page_login(struct api_req *q)
{
    /* next= (path and query, percent-encoded) brings the visitor back
     * here after signing in; login.js goes there only if same-origin. */
    static const char keep[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                               "abcdefghijklmnopqrstuvwxyz0123456789/-._~";
    const char *path = q->path;
    const char *end = q->r->url.data + q->r->url.len;
    const char *hash = memchr(path, '#', (size_t)(end - path));
    end = hash ? hash : end;
    struct buf loc;
    buf_init(&loc, 0);
    buf_puts(&loc, "Location: /login");
    for (const char *s = path; end - path > 1 && s < end; s++) {
        if (s == path)
            buf_puts(&loc, "?next=");
        if (*s && strchr(keep, *s))
            buf_append(&loc, s, 1);
        else
            buf_printf(&loc, "%%%02X", (unsigned char)*s);
    }
    buf_puts(&loc, "\r\n");
    http_respond(q->c, 302, loc.data, "text/plain", "", 0);
    buf_dispose(&loc);
}

/* 1 if path is /api, /ws or /static or under one: the JSON areas, whose
 * clients want JSON errors whatever they ask for. */
static int json_area(const char *path, size_t n)
{
    static const char *const areas[] = {"/api", "/ws", "/static"};
    for (size_t i = 0; i < ARRAY_LEN(areas); i++) {
        size_t k = strlen(areas[i]);
        if (n >= k && memcmp(path, areas[i], k) == 0 &&
            (n == k || path[k] == '/'))
            return 1;
    }
    return 0;
}

void api_page_missing(struct api_req *q)
{
    /* docs/protocol.md "Unknown pages": by path alone, not by Accept, so that
     * the same URL always gets the same answer. HEAD and other methods
     * keep the JSON 404. */
    const struct asset *a = NULL;
    if (q->method == HTTP_GET && !json_area(q->path, q->plen))
        a = assets_find("/404.html", strlen("/404.html"));
    if (!a) {
        http_error(q->c, 404, "not_found", "no such page");
        return;
    }
    http_respond(q->c, 404, PAGE_HEADERS "Cache-Control: no-cache\r\n",
                 a->type, (const char *)a->data, a->len);
}
