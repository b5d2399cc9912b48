/* common.h - helpers shared by the benchmark programs (loadgen, floor).
 *
 * Clocks, a latency histogram, the descriptor limit, what /proc says about
 * a process and about the kernel's socket memory, unmasked server frames
 * built by wslay's frame layer, and the few JSON field scans the receivers
 * need. No sockets and no event loop here: each program owns its own. */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- clocks ---------------------------------------------------------- */

int64_t now_ns(void);  /* CLOCK_MONOTONIC, nanoseconds */
int64_t wall_ms(void); /* CLOCK_REALTIME, milliseconds */

/* ---- latency histogram ---------------------------------------------- */

/* Log-linear buckets over nanoseconds: exact below 128 ns, then 64
 * buckets per power of two (relative error under 1.6 %). The maximum is
 * kept exactly. */
#define HIST_BUCKETS (64 * 42)
struct hist {
    uint64_t count;
    int64_t max, sum;
    uint64_t b[HIST_BUCKETS];
};
void hist_add(struct hist *h, int64_t v);
/* Value at quantile q (0..1), in ns; 0 for an empty histogram. */
int64_t hist_pct(const struct hist *h, double q);

/* ---- limits and /proc ------------------------------------------------ */

/* Raises RLIMIT_NOFILE's soft limit to the hard one; returns the result. */
long raise_nofile(void);
/* VmRSS of pid in bytes, or -1. */
long long proc_rss(int pid);
/* utime + stime of pid in clock ticks, or -1. */
long long proc_cpu_ticks(int pid);
/* utime + stime of this process, in ns. */
int64_t self_cpu_ns(void);
/* Slab: from /proc/meminfo in bytes, or -1. */
long long kernel_slab(void);
/* "TCP: ... mem N" of /proc/net/sockstat in bytes (pages * 4096), or -1. */
long long kernel_tcp_mem(void);

/* A TcpExt counter of /proc/net/netstat (e.g. "ListenOverflows"), or -1. */
long long kernel_tcpext(const char *name);

/* ---- frames ---------------------------------------------------------- */

/* Writes an unmasked, final frame of opcode around payload into out
 * (cap bytes; needs len + 10). Returns the frame's length, or -1. The
 * header comes from wslay's frame layer. */
int frame_encode(int opcode, const void *payload, size_t len, uint8_t *out,
                 size_t cap);

/* ---- JSON field scans ------------------------------------------------ */

/* The protocol's frames are produced by one encoder with a fixed field
 * order and ids without escapes, so the receivers locate fields by their
 * quoted key instead of parsing: they must be as cheap as the floor's.
 * Each returns 0 when found, -1 otherwise. */
int json_str(const char *m, size_t n, const char *key, const char **v,
             size_t *vlen);
int json_u64(const char *m, size_t n, const char *key, uint64_t *v);

/* ---- statuses -------------------------------------------------------- */

enum { ST_OFFLINE, ST_ONLINE, ST_AWAY, ST_BUSY, ST_NONE = -1 };
int status_parse(const char *s, size_t n); /* ST_* or ST_NONE */
const char *status_name(int st);

/* ---- output ---------------------------------------------------------- */

/* Medians are taken by the bench script; programs only print. */
void json_kv_i(FILE *f, const char *k, long long v, int *first);
void json_kv_d(FILE *f, const char *k, double v, int *first);
void json_kv_s(FILE *f, const char *k, const char *v, int *first);
#endif
