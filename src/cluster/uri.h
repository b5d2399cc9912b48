/* uri.h - the address of a cluster's Redis, as the redis setting gives it.
 *
 * Pure: parses and prints strings, opens no socket and resolves no name.
 * It includes nothing of the project, so that config.c can check the
 * setting with it (docs/cluster.md). Two forms are taken:
 *
 *   redis://[[user]:password@]host[:port][/db]
 *   unix:///absolute/path/to/redis.sock[?db=N]
 *
 * The password, like the database's, never appears in an error or in the
 * redacted form: a password is secret wherever the URI is shown. */
#ifndef CLUSTER_URI_H
#define CLUSTER_URI_H
#include <stddef.h>

#define CLUSTER_URI_ERRLEN 256
#define CLUSTER_URI_PORT 6379 /* when redis:// names none */

struct cluster_uri {
    char host[256];     /* tcp: a name or an address; an IPv6 address
                           without its brackets ("::1"); "" for unix */
    int port;           /* tcp: 1..65535; 0 for unix */
    char path[512];     /* unix socket, absolute; "" for tcp */
    char password[256]; /* percent-decoded; "" = no AUTH */
    char user[128];     /* percent-decoded; "" = the default user */
    int db;             /* SELECT db, 0 and up */
};

/* Parses s into *u. 0, or -1 with a reason in err (CLUSTER_URI_ERRLEN
 * bytes; may be NULL) that quotes nothing of s, so never the password;
 * *u is then unchanged. The scheme is case-insensitive. */
int cluster_uri_parse(const char *s, struct cluster_uri *u, char *err);

/* u as it may be shown, the credentials replaced by "***":
 * "redis://" "***@host:port/db" (with no "***@" without a password),
 * redis://[::1]:6379/0, unix:///path (and ?db=N when N is not 0). Writes
 * at most n bytes, NUL included; returns buf. */
const char *cluster_uri_redacted(const struct cluster_uri *u, char *buf,
                                 size_t n);
#endif
