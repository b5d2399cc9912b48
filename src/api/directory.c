/* directory.c - the members directory, one page at a time:
 * GET /api/members?q=&offset=&limit= (docs/protocol.md "The members
 * directory"). The caller's organization only, filtered and sorted on the
 * server, so that a page showing 60 people of 10,000 costs 60 in the
 * browser (which then subscribes to just those over the WebSocket).
 *
 * Matching is the one /members uses in the browser: a case-insensitive
 * substring of the display name. Both sides fold a name the same way,
 * code point by code point, to its simple lowercase (the mapping of
 * JavaScript's toLowerCase() where that gives one code point; the table
 * below was generated from it, Unicode 17), and compare what is left
 * exactly: no normalization, no locale. Answers are sorted by the folded
 * name, then the name, then the user id, each compared by code point.
 *
 * The work is done under the hub's lock, on the view of presence that
 * /api/presence reads, once the store has said which members the CLI
 * added since the organization was loaded (hub_sync_org()). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_int.h"
#include "presence/msg.h"
#include "presence/presence.h"
#include "util/utf8.h"
#include "util/xalloc.h"

#define DIR_Q_MAX 200           /* bytes of q, decoded (STORE_NAME_MAX) */
#define DIR_LIMIT_MAX 100       /* members per answer */
#define DIR_LIMIT_DEFAULT 50
#define DIR_OFFSET_MAX 1000000
#define DIR_STR_(x) #x
#define DIR_STR(x) DIR_STR_(x)

/* ---- folding ----------------------------------------------------------- */

/* Simple lowercase mappings: code points start, start + stride, ... end
 * each map to themselves plus delta. Sorted, disjoint. Made with Node.js
 * (ICU 78, Unicode 17): for every code point c, String.fromCodePoint(c)
 * .toLowerCase(), kept where it is one other code point, runs of the same
 * delta at a stride of 1 or 2 merged; checked against it for every code
 * point. */
static const struct fold_range {
    uint32_t start, end;
    uint8_t stride;
    int32_t delta;
} folds[] = {
    {0x0041, 0x005a, 1, 32}, {0x00c0, 0x00d6, 1, 32}, {0x00d8, 0x00de, 1, 32},
    {0x0100, 0x012e, 2, 1}, {0x0132, 0x0136, 2, 1}, {0x0139, 0x0147, 2, 1},
    {0x014a, 0x0176, 2, 1}, {0x0178, 0x0178, 1, -121}, {0x0179, 0x017d, 2, 1},
    {0x0181, 0x0181, 1, 210}, {0x0182, 0x0184, 2, 1},
    {0x0186, 0x0186, 1, 206}, {0x0187, 0x0187, 1, 1},
    {0x0189, 0x018a, 1, 205}, {0x018b, 0x018b, 1, 1}, {0x018e, 0x018e, 1, 79},
    {0x018f, 0x018f, 1, 202}, {0x0190, 0x0190, 1, 203},
    {0x0191, 0x0191, 1, 1}, {0x0193, 0x0193, 1, 205},
    {0x0194, 0x0194, 1, 207}, {0x0196, 0x0196, 1, 211},
    {0x0197, 0x0197, 1, 209}, {0x0198, 0x0198, 1, 1},
    {0x019c, 0x019c, 1, 211}, {0x019d, 0x019d, 1, 213},
    {0x019f, 0x019f, 1, 214}, {0x01a0, 0x01a4, 2, 1},
    {0x01a6, 0x01a6, 1, 218}, {0x01a7, 0x01a7, 1, 1},
    {0x01a9, 0x01a9, 1, 218}, {0x01ac, 0x01ac, 1, 1},
    {0x01ae, 0x01ae, 1, 218}, {0x01af, 0x01af, 1, 1},
    {0x01b1, 0x01b2, 1, 217}, {0x01b3, 0x01b5, 2, 1},
    {0x01b7, 0x01b7, 1, 219}, {0x01b8, 0x01b8, 1, 1}, {0x01bc, 0x01bc, 1, 1},
    {0x01c4, 0x01c4, 1, 2}, {0x01c5, 0x01c5, 1, 1}, {0x01c7, 0x01c7, 1, 2},
    {0x01c8, 0x01c8, 1, 1}, {0x01ca, 0x01ca, 1, 2}, {0x01cb, 0x01db, 2, 1},
    {0x01de, 0x01ee, 2, 1}, {0x01f1, 0x01f1, 1, 2}, {0x01f2, 0x01f4, 2, 1},
    {0x01f6, 0x01f6, 1, -97}, {0x01f7, 0x01f7, 1, -56},
    {0x01f8, 0x021e, 2, 1}, {0x0220, 0x0220, 1, -130}, {0x0222, 0x0232, 2, 1},
    {0x023a, 0x023a, 1, 10795}, {0x023b, 0x023b, 1, 1},
    {0x023d, 0x023d, 1, -163}, {0x023e, 0x023e, 1, 10792},
    {0x0241, 0x0241, 1, 1}, {0x0243, 0x0243, 1, -195},
    {0x0244, 0x0244, 1, 69}, {0x0245, 0x0245, 1, 71}, {0x0246, 0x024e, 2, 1},
    {0x0370, 0x0372, 2, 1}, {0x0376, 0x0376, 1, 1}, {0x037f, 0x037f, 1, 116},
    {0x0386, 0x0386, 1, 38}, {0x0388, 0x038a, 1, 37}, {0x038c, 0x038c, 1, 64},
    {0x038e, 0x038f, 1, 63}, {0x0391, 0x03a1, 1, 32}, {0x03a3, 0x03ab, 1, 32},
    {0x03cf, 0x03cf, 1, 8}, {0x03d8, 0x03ee, 2, 1}, {0x03f4, 0x03f4, 1, -60},
    {0x03f7, 0x03f7, 1, 1}, {0x03f9, 0x03f9, 1, -7}, {0x03fa, 0x03fa, 1, 1},
    {0x03fd, 0x03ff, 1, -130}, {0x0400, 0x040f, 1, 80},
    {0x0410, 0x042f, 1, 32}, {0x0460, 0x0480, 2, 1}, {0x048a, 0x04be, 2, 1},
    {0x04c0, 0x04c0, 1, 15}, {0x04c1, 0x04cd, 2, 1}, {0x04d0, 0x052e, 2, 1},
    {0x0531, 0x0556, 1, 48}, {0x10a0, 0x10c5, 1, 7264},
    {0x10c7, 0x10c7, 1, 7264}, {0x10cd, 0x10cd, 1, 7264},
    {0x13a0, 0x13ef, 1, 38864}, {0x13f0, 0x13f5, 1, 8},
    {0x1c89, 0x1c89, 1, 1}, {0x1c90, 0x1cba, 1, -3008},
    {0x1cbd, 0x1cbf, 1, -3008}, {0x1e00, 0x1e94, 2, 1},
    {0x1e9e, 0x1e9e, 1, -7615}, {0x1ea0, 0x1efe, 2, 1},
    {0x1f08, 0x1f0f, 1, -8}, {0x1f18, 0x1f1d, 1, -8}, {0x1f28, 0x1f2f, 1, -8},
    {0x1f38, 0x1f3f, 1, -8}, {0x1f48, 0x1f4d, 1, -8}, {0x1f59, 0x1f5f, 2, -8},
    {0x1f68, 0x1f6f, 1, -8}, {0x1f88, 0x1f8f, 1, -8}, {0x1f98, 0x1f9f, 1, -8},
    {0x1fa8, 0x1faf, 1, -8}, {0x1fb8, 0x1fb9, 1, -8},
    {0x1fba, 0x1fbb, 1, -74}, {0x1fbc, 0x1fbc, 1, -9},
    {0x1fc8, 0x1fcb, 1, -86}, {0x1fcc, 0x1fcc, 1, -9},
    {0x1fd8, 0x1fd9, 1, -8}, {0x1fda, 0x1fdb, 1, -100},
    {0x1fe8, 0x1fe9, 1, -8}, {0x1fea, 0x1feb, 1, -112},
    {0x1fec, 0x1fec, 1, -7}, {0x1ff8, 0x1ff9, 1, -128},
    {0x1ffa, 0x1ffb, 1, -126}, {0x1ffc, 0x1ffc, 1, -9},
    {0x2126, 0x2126, 1, -7517}, {0x212a, 0x212a, 1, -8383},
    {0x212b, 0x212b, 1, -8262}, {0x2132, 0x2132, 1, 28},
    {0x2160, 0x216f, 1, 16}, {0x2183, 0x2183, 1, 1}, {0x24b6, 0x24cf, 1, 26},
    {0x2c00, 0x2c2f, 1, 48}, {0x2c60, 0x2c60, 1, 1},
    {0x2c62, 0x2c62, 1, -10743}, {0x2c63, 0x2c63, 1, -3814},
    {0x2c64, 0x2c64, 1, -10727}, {0x2c67, 0x2c6b, 2, 1},
    {0x2c6d, 0x2c6d, 1, -10780}, {0x2c6e, 0x2c6e, 1, -10749},
    {0x2c6f, 0x2c6f, 1, -10783}, {0x2c70, 0x2c70, 1, -10782},
    {0x2c72, 0x2c72, 1, 1}, {0x2c75, 0x2c75, 1, 1},
    {0x2c7e, 0x2c7f, 1, -10815}, {0x2c80, 0x2ce2, 2, 1},
    {0x2ceb, 0x2ced, 2, 1}, {0x2cf2, 0x2cf2, 1, 1}, {0xa640, 0xa66c, 2, 1},
    {0xa680, 0xa69a, 2, 1}, {0xa722, 0xa72e, 2, 1}, {0xa732, 0xa76e, 2, 1},
    {0xa779, 0xa77b, 2, 1}, {0xa77d, 0xa77d, 1, -35332},
    {0xa77e, 0xa786, 2, 1}, {0xa78b, 0xa78b, 1, 1},
    {0xa78d, 0xa78d, 1, -42280}, {0xa790, 0xa792, 2, 1},
    {0xa796, 0xa7a8, 2, 1}, {0xa7aa, 0xa7aa, 1, -42308},
    {0xa7ab, 0xa7ab, 1, -42319}, {0xa7ac, 0xa7ac, 1, -42315},
    {0xa7ad, 0xa7ad, 1, -42305}, {0xa7ae, 0xa7ae, 1, -42308},
    {0xa7b0, 0xa7b0, 1, -42258}, {0xa7b1, 0xa7b1, 1, -42282},
    {0xa7b2, 0xa7b2, 1, -42261}, {0xa7b3, 0xa7b3, 1, 928},
    {0xa7b4, 0xa7c2, 2, 1}, {0xa7c4, 0xa7c4, 1, -48},
    {0xa7c5, 0xa7c5, 1, -42307}, {0xa7c6, 0xa7c6, 1, -35384},
    {0xa7c7, 0xa7c9, 2, 1}, {0xa7cb, 0xa7cb, 1, -42343},
    {0xa7cc, 0xa7da, 2, 1}, {0xa7dc, 0xa7dc, 1, -42561},
    {0xa7f5, 0xa7f5, 1, 1}, {0xff21, 0xff3a, 1, 32},
    {0x10400, 0x10427, 1, 40}, {0x104b0, 0x104d3, 1, 40},
    {0x10570, 0x1057a, 1, 39}, {0x1057c, 0x1058a, 1, 39},
    {0x1058c, 0x10592, 1, 39}, {0x10594, 0x10595, 1, 39},
    {0x10c80, 0x10cb2, 1, 64}, {0x10d50, 0x10d65, 1, 32},
    {0x118a0, 0x118bf, 1, 32}, {0x16e40, 0x16e5f, 1, 32},
    {0x16ea0, 0x16eb8, 1, 27}, {0x1e900, 0x1e921, 1, 34},
};

static uint32_t fold_cp(uint32_t c)
{
    size_t lo = 0, hi = ARRAY_LEN(folds);
    if (c < 0x41)
        return c;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct fold_range *r = &folds[mid];
        if (c < r->start)
            hi = mid;
        else if (c > r->end)
            lo = mid + 1;
        else if ((c - r->start) % r->stride)
            return c; /* between the pairs of an alternating run */
        else
            return (uint32_t)((int32_t)c + r->delta);
    }
    return c;
}

static uint32_t utf8_get(const unsigned char *s, size_t len)
{
    switch (len) {
    case 1:
        return s[0];
    case 2:
        return (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
    case 3:
        return (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 |
               (s[2] & 0x3f);
    default:
        return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
               (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
    }
}

static void utf8_put(struct buf *b, uint32_t c)
{
    unsigned char o[4];
    size_t n;
    if (c < 0x80) {
        o[0] = (unsigned char)c;
        n = 1;
    } else if (c < 0x800) {
        o[0] = (unsigned char)(0xc0 | c >> 6);
        o[1] = (unsigned char)(0x80 | (c & 0x3f));
        n = 2;
    } else if (c < 0x10000) {
        o[0] = (unsigned char)(0xe0 | c >> 12);
        o[1] = (unsigned char)(0x80 | (c >> 6 & 0x3f));
        o[2] = (unsigned char)(0x80 | (c & 0x3f));
        n = 3;
    } else {
        o[0] = (unsigned char)(0xf0 | c >> 18);
        o[1] = (unsigned char)(0x80 | (c >> 12 & 0x3f));
        o[2] = (unsigned char)(0x80 | (c >> 6 & 0x3f));
        o[3] = (unsigned char)(0x80 | (c & 0x3f));
        n = 4;
    }
    buf_append(b, o, n);
}

/* Appends s, folded, to b (not terminated). A byte that starts no
 * well-formed sequence (a name the store took as it came) is kept as it
 * is: it matches only itself. */
static void fold_into(struct buf *b, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    while (n) {
        size_t k = utf8_seq_len(p, n);
        if (k == 1 && (*p < 'A' || *p > 'Z')) {
            buf_append(b, p, 1);
        } else if (k) {
            utf8_put(b, fold_cp(utf8_get(p, k)));
        } else {
            buf_append(b, p, 1);
            k = 1;
        }
        p += k;
        n -= k;
    }
}

/* ---- the request ------------------------------------------------------- */

struct dir_req {
    struct api_req *q;          /* deferred */
    char *needle;               /* q, folded; "" matches everyone */
    size_t nlen;
    unsigned offset, limit;
};

/* One member that matched: "folded\0name\0user\0" at off in the arena. */
struct dir_entry {
    size_t off;
    const char *key, *name, *user;
};

struct dir_scan {
    struct dir_req *d;
    struct buf arena;
    struct dir_entry *v;
    size_t n, cap;
    unsigned online;
};

static void scan_cb(void *ud, const struct presence_member *m)
{
    struct dir_scan *x = ud;
    size_t off = x->arena.len;
    fold_into(&x->arena, m->name ? m->name : m->user);
    size_t klen = x->arena.len - off;
    if (x->d->nlen &&
        !memmem(x->arena.data + off, klen, x->d->needle, x->d->nlen)) {
        x->arena.len = off;
        return;
    }
    buf_append(&x->arena, "", 1);
    buf_append(&x->arena, m->name ? m->name : m->user,
               strlen(m->name ? m->name : m->user) + 1);
    buf_append(&x->arena, m->user, strlen(m->user) + 1);
    if (x->n == x->cap) {
        x->cap = x->cap ? x->cap * 2 : 256;
        x->v = xrealloc(x->v, x->cap * sizeof *x->v);
    }
    x->v[x->n++] = (struct dir_entry){.off = off};
    /* As everywhere: online is "not OFFLINE", as members see it. */
    if (m->status != PRESENCE_OFFLINE)
        x->online++;
}

static int entry_cmp(const void *a, const void *b)
{
    const struct dir_entry *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    if (!c)
        c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->user, y->user);
}

static void public_cb(void *ud, const struct presence_member *m)
{
    msg_encode_member(ud, m);
}

static void dir_free(struct dir_req *d)
{
    api_req_free(d->q);
    free(d->needle);
    free(d);
}

/* Lock held: the page, from the view as it is now. */
static void dir_answer(void *arg)
{
    struct dir_req *d = arg;
    struct api_req *q = d->q;
    if (!api_req_live(q)) {
        dir_free(d);
        return;
    }
    struct presence *view = hub_view(q->srv->hub);
    const char *org = q->who.org;
    struct dir_scan x = {.d = d};
    buf_init(&x.arena, 0);
    uint64_t seq = presence_each(view, org, scan_cb, &x);
    for (size_t i = 0; i < x.n; i++) {
        struct dir_entry *e = &x.v[i];
        e->key = x.arena.data + e->off;
        e->name = e->key + strlen(e->key) + 1;
        e->user = e->name + strlen(e->name) + 1;
    }
    if (x.n > 1)
        qsort(x.v, x.n, sizeof *x.v, entry_cmp);

    struct buf b;
    buf_init(&b, 0);
    buf_puts(&b, "{\"org\":");
    msg_append_string(&b, org);
    buf_printf(&b, ",\"seq\":%llu,\"total\":%zu,\"online\":%u,\"offset\":%u,"
                   "\"limit\":%u,\"members\":[",
               (unsigned long long)seq, x.n, x.online, d->offset, d->limit);
    size_t end = (size_t)d->offset + d->limit;
    size_t shown = 0;
    for (size_t i = d->offset; i < x.n && i < end; i++) {
        size_t before = b.len;
        if (shown)
            buf_puts(&b, ",");
        /* Seen a moment ago under the same lock: always there. */
        if (presence_get(view, org, x.v[i].user, public_cb, &b) == 0) {
            shown++;
        } else {
            b.len = before;
            b.data[b.len] = '\0';
        }
    }
    buf_puts(&b, "]}");
    http_respond_json(q->c, 200, NULL, &b);
    buf_dispose(&b);
    buf_dispose(&x.arena);
    free(x.v);
    dir_free(d);
}

/* A count parameter: absent gives def; else 0 to max in decimal digits
 * (no sign, no space; at most 15, so no overflow), or -1. */
static long count_param(const struct api_req *q, const char *name, long def,
                        long max)
{
    char v[16];
    int n = web_query_get(q->query, q->qlen, name, v, sizeof v);
    if (n == -1)
        return def;
    if (n <= 0)
        return -1;
    long x = 0;
    for (int i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        x = x * 10 + (v[i] - '0');
    }
    return x <= max ? x : -1;
}

void api_members(struct api_req *q)
{
    long offset = count_param(q, "offset", 0, DIR_OFFSET_MAX);
    long limit = count_param(q, "limit", DIR_LIMIT_DEFAULT, DIR_LIMIT_MAX);
    if (offset < 0) {
        http_error(q->c, 400, "bad_request",
                   "offset must be a whole number from 0 to " DIR_STR(
                       DIR_OFFSET_MAX));
        return;
    }
    if (limit < 0) {
        http_error(q->c, 400, "bad_request",
                   "limit must be a whole number from 0 to " DIR_STR(
                       DIR_LIMIT_MAX));
        return;
    }
    /* The query's own length bounds what q can decode to: a value that
     * does not decode is malformed, never merely long. */
    char *raw = xmalloc(q->qlen + 1);
    int n = web_query_get(q->query, q->qlen, "q", raw, q->qlen + 1);
    const char *why = NULL;
    if (n == -2)
        why = "q is not valid percent-encoding (or holds a NUL byte)";
    else if (n > DIR_Q_MAX)
        why = "q is longer than " DIR_STR(DIR_Q_MAX) " bytes";
    else if (n > 0 && !utf8_valid(raw, (size_t)n))
        why = "q is not valid UTF-8";
    if (why) {
        free(raw);
        http_error(q->c, 400, "bad_request", why);
        return;
    }
    struct dir_req *d = xcalloc(1, sizeof *d);
    d->offset = (unsigned)offset;
    d->limit = (unsigned)limit;
    struct buf f;
    buf_init(&f, 0);
    if (n > 0)
        fold_into(&f, raw);
    free(raw);
    d->needle = buf_steal(&f, &d->nlen);
    d->q = api_req_defer(q);
    /* Members the CLI added since the organization was loaded included,
     * as in /api/presence. */
    hub_sync_org(q->srv->hub, q->who.org, dir_answer, d);
}
