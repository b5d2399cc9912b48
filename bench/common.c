/* common.c - see common.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "common.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <wslay/wslay.h>

/* ---- clocks ---------------------------------------------------------- */

int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- latency histogram ---------------------------------------------- */

static unsigned bucket_of(int64_t v)
{
    if (v < 0)
        v = 0;
    if (v >= ((int64_t)1 << 47))
        v = ((int64_t)1 << 47) - 1;
    if (v < 128)
        return (unsigned)v;
    unsigned msb = 63 - (unsigned)__builtin_clzll((unsigned long long)v);
    unsigned shift = msb - 6;
    return 64 * shift + (unsigned)(v >> shift);
}

static int64_t bucket_mid(unsigned i)
{
    if (i < 128)
        return i;
    unsigned shift = i / 64 - 1;
    int64_t lo = (int64_t)(i - 64 * shift) << shift;
    return lo + ((int64_t)1 << shift) / 2;
}

void hist_add(struct hist *h, int64_t v)
{
    h->b[bucket_of(v)]++;
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

int64_t hist_pct(const struct hist *h, double q)
{
    if (!h->count)
        return 0;
    uint64_t want = (uint64_t)(q * (double)h->count);
    if (want >= h->count)
        want = h->count - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen > want) {
            int64_t m = bucket_mid(i);
            return m > h->max ? h->max : m;
        }
    }
    return h->max;
}

/* ---- limits and /proc ------------------------------------------------ */

long raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            return -1;
    }
    return (long)rl.rlim_cur;
}

/* Reads a small /proc file into buf (NUL-terminated); returns its length
 * or -1. */
static long slurp(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (long)n;
}

static long long field_kb(const char *path, const char *key)
{
    char buf[8192];
    if (slurp(path, buf, sizeof buf) < 0)
        return -1;
    const char *p = strstr(buf, key);
    if (!p)
        return -1;
    return strtoll(p + strlen(key), NULL, 10) * 1024;
}

long long proc_rss(int pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    return field_kb(path, "VmRSS:");
}

long long proc_cpu_ticks(int pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (slurp(path, buf, sizeof buf) < 0)
        return -1;
    /* The command name may hold spaces and parentheses: fields count from
     * the last ')'. utime and stime are fields 14 and 15. */
    const char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    p++;
    long long v[16] = {0};
    int field = 2; /* p sits before field 3 (state) */
    while (*p && field < 15) {
        while (*p == ' ')
            p++;
        field++;
        char *end;
        long long x = strtoll(p, &end, 10);
        if (field == 14 || field == 15)
            v[field - 14] = x;
        while (*p && *p != ' ')
            p++;
    }
    return field == 15 ? v[0] + v[1] : -1;
}

int64_t self_cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

long long kernel_slab(void)
{
    return field_kb("/proc/meminfo", "Slab:");
}

long long kernel_tcp_mem(void)
{
    char buf[4096];
    if (slurp("/proc/net/sockstat", buf, sizeof buf) < 0)
        return -1;
    const char *p = strstr(buf, "TCP:");
    if (!p || !(p = strstr(p, " mem ")))
        return -1;
    return strtoll(p + 5, NULL, 10) * 4096;
}

long long kernel_tcpext(const char *name)
{
    char buf[16384];
    if (slurp("/proc/net/netstat", buf, sizeof buf) < 0)
        return -1;
    /* Two lines per group: the names, then the values in the same order. */
    char *names = strstr(buf, "TcpExt:");
    char *values = names ? strstr(names + 7, "TcpExt:") : NULL;
    if (!values)
        return -1;
    char *nl = strchr(names, '\n');
    if (!nl)
        return -1;
    *nl = '\0';
    size_t want = strlen(name);
    char *save1, *save2;
    char *n = strtok_r(names + 7, " ", &save1);
    char *v = strtok_r(values + 7, " \n", &save2);
    while (n && v) {
        if (strlen(n) == want && !memcmp(n, name, want))
            return strtoll(v, NULL, 10);
        n = strtok_r(NULL, " ", &save1);
        v = strtok_r(NULL, " \n", &save2);
    }
    return -1;
}

/* ---- frames ---------------------------------------------------------- */

struct capture {
    uint8_t *dst;
    size_t n, cap;
};

static ssize_t capture_send(const uint8_t *data, size_t len, int flags,
                            void *ud)
{
    (void)flags;
    struct capture *c = ud;
    if (len > c->cap - c->n)
        return -1;
    memcpy(c->dst + c->n, data, len);
    c->n += len;
    return (ssize_t)len;
}

int frame_encode(int opcode, const void *payload, size_t len, uint8_t *out,
                 size_t cap)
{
    static wslay_frame_context_ptr ctx;
    static struct capture cap_state;
    if (!ctx) {
        struct wslay_frame_callbacks cb = {capture_send, NULL, NULL};
        if (wslay_frame_context_init(&ctx, &cb, &cap_state) != 0)
            return -1;
    }
    if (cap < len + 10)
        return -1;
    cap_state = (struct capture){out, 0, cap};
    struct wslay_frame_iocb io = {
        .fin = 1,
        .rsv = 0,
        .opcode = (uint8_t)opcode,
        .payload_length = len,
        .mask = 0,
        .data = payload,
        .data_length = len,
    };
    /* The callback takes every byte, so one call writes the whole frame
     * and leaves the context ready for the next. */
    ssize_t r = wslay_frame_send(ctx, &io);
    if (r < 0 || (size_t)r != len)
        return -1;
    return (int)cap_state.n;
}

/* ---- JSON field scans ------------------------------------------------ */

int json_str(const char *m, size_t n, const char *key, const char **v,
             size_t *vlen)
{
    size_t kl = strlen(key);
    const char *p = memmem(m, n, key, kl);
    if (!p)
        return -1;
    p += kl;
    const char *end = m + n;
    if (p >= end || *p != '"')
        return -1;
    p++;
    const char *q = memchr(p, '"', (size_t)(end - p));
    if (!q)
        return -1;
    *v = p;
    *vlen = (size_t)(q - p);
    return 0;
}

int json_u64(const char *m, size_t n, const char *key, uint64_t *v)
{
    size_t kl = strlen(key);
    const char *p = memmem(m, n, key, kl);
    if (!p)
        return -1;
    p += kl;
    const char *end = m + n;
    if (p >= end || *p < '0' || *p > '9')
        return -1;
    uint64_t x = 0;
    while (p < end && *p >= '0' && *p <= '9')
        x = x * 10 + (uint64_t)(*p++ - '0');
    *v = x;
    return 0;
}

/* ---- statuses -------------------------------------------------------- */

static const char *const names[] = {"OFFLINE", "ONLINE", "AWAY", "BUSY"};

int status_parse(const char *s, size_t n)
{
    for (int i = 0; i < 4; i++)
        if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0)
            return i;
    return ST_NONE;
}

const char *status_name(int st)
{
    return st >= 0 && st < 4 ? names[st] : "?";
}

/* ---- output ---------------------------------------------------------- */

void json_kv_i(FILE *f, const char *k, long long v, int *first)
{
    fprintf(f, "%s\"%s\":%lld", *first ? "" : ",", k, v);
    *first = 0;
}

void json_kv_d(FILE *f, const char *k, double v, int *first)
{
    fprintf(f, "%s\"%s\":%.6g", *first ? "" : ",", k, v);
    *first = 0;
}

void json_kv_s(FILE *f, const char *k, const char *v, int *first)
{
    fprintf(f, "%s\"%s\":\"%s\"", *first ? "" : ",", k, v);
    *first = 0;
}
