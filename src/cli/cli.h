/* cli.h - the command line: `presenced COMMAND ...`.
 *
 * Exit status: 0 done, 1 failed (reason on stderr), 2 usage error (a
 * one-line reason on stderr). */
#ifndef CLI_H
#define CLI_H
#include <stddef.h>

#define PRESENCED_VERSION "0.1.0"

int cli_main(int argc, char **argv, char **envp);

/* The demo secret kept beside the database (DB.secret, mode 0600): read
 * it, or make it. 0, or -1 with the reason logged. */
int server_demo_secret(const char *db, char *out, size_t outlen);
#endif
