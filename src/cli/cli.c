/* cli.c - subcommands: serve, org, user, channel, project, token,
 * cleanup-stale, demo, db copy, cluster status.
 *
 * Each command builds its configuration the same way (config.h: defaults,
 * file, environment, flags), opens the store (cluster status: the
 * cluster's Redis), does one thing and reports it on stdout. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "api/api.h"
#include "api/presets.h"
#include "auth/auth.h"
#include "auth/jwt.h"
#include "cluster/uri.h"
#include "config.h"
#include "server/server.h"
#include "store/copy.h"
#include "store/store.h"
#include "util/log.h"
#include "util/xalloc.h"

#define MAX_FLAGS 64

struct args {
    const char *cmd, *sub;
    const char *words[8];
    int nwords;
    const char *keys[MAX_FLAGS], *vals[MAX_FLAGS];
    int nflags;
    int help, if_empty, demo, version, force, json;
};

static const char *usage_text =
    "usage: presenced COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  serve [--listen HOST:PORT] [--demo] [--SETTING VALUE ...]\n"
    "  org add ORG_ID [--name NAME]\n"
    "  user add --org ORG_ID --email EMAIL --name NAME [--id USER_ID]\n"
    "                                  (password asked for at a terminal,\n"
    "                                  else on stdin; prints the id)\n"
    "  channel add --org ORG_ID --name NAME [--members ID,ID]\n"
    "  project add --org ORG_ID --name NAME [--members ID,ID]\n"
    "  token --org ORG_ID --user USER_ID [--ttl 1h] [--name NAME]\n"
    "  cleanup-stale [--older-than 30m]\n"
    "  demo [--if-empty]              seed a demo organization\n"
    "  db copy --from FILE.db --to postgresql://... [--force]\n"
    "                                  copy a SQLite database to PostgreSQL\n"
    "  presets show|set|reset --org ORG_ID [--file FILE.json]\n"
    "                                  an organization's status presets\n"
    "  cluster status [--redis URI] [--cluster NAME] [--json]\n"
    "                                  the nodes of a cluster, from its Redis\n"
    "  help, --help, --version\n"
    "\n"
    "every command takes --db PATH and --config FILE; settings come from\n"
    "defaults < config file < PRESENCED_* environment < flags.\n";

static int usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "presenced: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see presenced --help)\n");
    return 2;
}

static int parse_args(int argc, char **argv, struct args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) {
            a->help = 1;
        } else if (!strcmp(s, "--if-empty")) {
            a->if_empty = 1;
        } else if (!strcmp(s, "--demo")) {
            a->demo = 1;
        } else if (!strcmp(s, "--version")) {
            a->version = 1;
        } else if (!strcmp(s, "--force")) {
            a->force = 1;
        } else if (!strcmp(s, "--json")) {
            a->json = 1;
        } else if (s[0] == '-' && s[1] == '-' && s[2]) {
            const char *eq = strchr(s, '=');
            if (a->nflags == MAX_FLAGS)
                return usage("too many options%s", "");
            if (eq) { /* --key=value */
                static char keybuf[MAX_FLAGS][64];
                size_t n = (size_t)(eq - s - 2);
                if (n >= sizeof keybuf[0])
                    return usage("unknown option %s", s);
                memcpy(keybuf[a->nflags], s + 2, n);
                keybuf[a->nflags][n] = '\0';
                a->keys[a->nflags] = keybuf[a->nflags];
                a->vals[a->nflags++] = eq + 1;
            } else {
                if (i + 1 >= argc)
                    return usage("option %s needs a value", s);
                a->keys[a->nflags] = s + 2;
                a->vals[a->nflags++] = argv[++i];
            }
        } else if (!a->cmd) {
            a->cmd = s;
        } else if (a->nwords < (int)(sizeof a->words / sizeof *a->words)) {
            a->words[a->nwords++] = s;
        } else {
            return usage("too many arguments%s", "");
        }
    }
    return 0;
}

static const char *flag(struct args *a, const char *key)
{
    for (int i = 0; i < a->nflags; i++)
        if (a->keys[i] && !strcmp(a->keys[i], key)) {
            const char *v = a->vals[i];
            a->keys[i] = NULL; /* used */
            return v;
        }
    return NULL;
}

/* Any flag not taken by the command is a usage error. */
static int leftover(struct args *a)
{
    for (int i = 0; i < a->nflags; i++)
        if (a->keys[i])
            return usage("unknown option --%s", a->keys[i]);
    return 0;
}

static int load_config(struct args *a, char **envp, struct config *c,
                       int all_settings)
{
    char err[CONFIG_ERRLEN];
    config_defaults(c);
    const char *file = flag(a, "config");
    if (!file)
        file = getenv("PRESENCED_CONFIG");
    if (file && config_load_file(c, file, err) != 0) {
        fprintf(stderr, "presenced: %s\n", err);
        return 2;
    }
    if (config_load_env(c, envp, err) != 0) {
        fprintf(stderr, "presenced: %s\n", err);
        return 2;
    }
    const char *db = flag(a, "db");
    if (db && config_set(c, "db", db, err) != 0) {
        fprintf(stderr, "presenced: %s\n", err);
        return 2;
    }
    if (all_settings) {
        for (int i = 0; i < a->nflags; i++) {
            if (!a->keys[i])
                continue;
            char key[64];
            snprintf(key, sizeof key, "%s", a->keys[i]);
            for (char *p = key; *p; p++)
                if (*p == '-')
                    *p = '_';
            if (config_set(c, key, a->vals[i], err) != 0) {
                fprintf(stderr, "presenced: %s\n", err);
                return 2;
            }
            a->keys[i] = NULL;
        }
    }
    if (a->demo)
        c->demo = 1;
    enum log_level lvl;
    if (log_parse_level(c->log_level, &lvl) == 0)
        log_set_level(lvl);
    return 0;
}

/* c->db as it may be printed: without a password. */
static const char *db_shown(const struct config *c)
{
    static char shown[sizeof c->db];
    return store_redact(c->db, shown, sizeof shown);
}

static int open_store(const struct config *c, struct store **s)
{
    char err[STORE_ERRLEN] = "";
    if (store_open(s, c->db, err) != 0) {
        fprintf(stderr, "presenced: cannot open database %s: %s\n",
                db_shown(c), err);
        return 1;
    }
    return 0;
}

/* Where the demo mode keeps its secret: beside a SQLite file (DB.secret);
 * for PostgreSQL, in the working directory. */
static void secret_path(const char *db, char *out, size_t cap)
{
    if (store_kind(db) == STORE_KIND_PG)
        snprintf(out, cap, "presenced-demo.secret");
    else
        snprintf(out, cap, "%s.secret", db);
}

static int store_fail(const char *what, int rc)
{
    fprintf(stderr, "presenced: %s: %s\n", what, store_strerror(rc));
    return 1;
}

/* The demo mode's secret: DB.secret, made on first use (mode 0600). */
static int demo_secret(const char *db, char *out, size_t outlen)
{
    char path[1100];
    secret_path(db, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (f) {
        int ok = fgets(out, (int)outlen, f) != NULL;
        fclose(f);
        out[strcspn(out, "\r\n")] = '\0';
        if (ok && strlen(out) >= 32)
            return 0;
        log_error("%s: not a usable secret (32 bytes or more)", path);
        return -1;
    }
    if (auth_init() != 0 || outlen < 65)
        return -1;
    auth_random_hex(out, 32);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 || write(fd, out, strlen(out)) != (ssize_t)strlen(out)) {
        log_error("cannot write %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* ---- commands ----------------------------------------------------------- */

/* SIGHUP re-reads the configuration from the same sources: the file, the
 * environment and the command line as they were given. */
static struct args serve_args;
static char **serve_envp;

static int reload_config(void *ud, struct config *out, char *err)
{
    struct args a = serve_args; /* load_config consumes flags: a copy */
    char cerr[CONFIG_ERRLEN];
    config_defaults(out);
    const char *file = flag(&a, "config");
    if (!file)
        file = getenv("PRESENCED_CONFIG");
    if ((file && config_load_file(out, file, cerr) != 0) ||
        config_load_env(out, serve_envp, cerr) != 0) {
        snprintf(err, CONFIG_ERRLEN, "%s", cerr);
        return -1;
    }
    for (int i = 0; i < a.nflags; i++) {
        if (!a.keys[i])
            continue;
        char key[64];
        snprintf(key, sizeof key, "%s", a.keys[i]);
        for (char *p = key; *p; p++)
            if (*p == '-')
                *p = '_';
        if (config_set(out, key, a.vals[i], cerr) != 0) {
            snprintf(err, CONFIG_ERRLEN, "%s", cerr);
            return -1;
        }
    }
    if (a.demo)
        out->demo = 1;
    return 0;
}

static int serve_demo_secret(void *ud, const char *db, char *out,
                             size_t outlen)
{
    return demo_secret(db, out, outlen);
}

static int cmd_serve(struct args *a, char **envp)
{
    struct config c;
    serve_args = *a;
    serve_envp = envp;
    int rc = load_config(a, envp, &c, 1);
    if (rc)
        return rc;
    if (a->nwords)
        return usage("serve takes no arguments (got %s)", a->words[0]);
    if (auth_init() != 0 || api_init() != 0) {
        fprintf(stderr, "presenced: libsodium failed to start\n");
        return 1;
    }
    struct server_hooks hooks = {reload_config, serve_demo_secret, NULL};
    return server_run(&c, &hooks) == 0 ? 0 : 1;
}

static int cmd_org(struct args *a, char **envp)
{
    struct config c;
    int rc = load_config(a, envp, &c, 0);
    if (rc)
        return rc;
    const char *name = flag(a, "name");
    if ((rc = leftover(a)))
        return rc;
    if (!a->sub || strcmp(a->sub, "add") || a->nwords != 2)
        return usage("usage: org add ORG_ID [--name NAME]%s", "");
    struct store *s;
    if (open_store(&c, &s))
        return 1;
    rc = store_org_add(s, a->words[1], name);
    store_close(s);
    if (rc == STORE_EEXIST) {
        fprintf(stderr, "presenced: organization %s exists already\n",
                a->words[1]);
        return 1;
    }
    if (rc)
        return store_fail("org add", rc);
    printf("%s\n", a->words[1]);
    return 0;
}

/* ---- user add: what is stored is exactly what was given --------------- */

#define PW_MAX 1023 /* bytes: POST /api/login takes no longer */

/* An input the command refuses: one line, exit 2. */
static int refuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int refuse(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "presenced: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 2;
}

static int blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t')
            return 0;
    return 1;
}

/* Why the user cannot be stored as given, or NULL. */
static const char *user_problem(const char *org, const char *id,
                                const char *email, const char *name)
{
    if (!*org || strlen(org) > STORE_ID_MAX)
        return "the organization id is empty or longer than 128 bytes";
    if (id && (!*id || strlen(id) > STORE_ID_MAX))
        return "the user id is empty or longer than 128 bytes";
    if (!*email)
        return "the email is empty";
    if (strlen(email) > STORE_EMAIL_MAX)
        return "the email is longer than 254 bytes";
    for (const char *p = email; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return "the email contains a space or a control character";
    /* Not a full RFC 5322 check: enough to catch a name or an id given
     * where the address belongs. */
    const char *at = strrchr(email, '@');
    if (!at || at == email || !at[1])
        return "the email is not an address (name@domain)";
    if (blank(name))
        return "the name is empty";
    if (strlen(name) > STORE_NAME_MAX)
        return "the name is longer than 200 bytes";
    return NULL;
}

/* Code points in s[0..n) if it is well-formed UTF-8 (no overlong forms,
 * surrogates or values past U+10FFFF), else -1. */
static long utf8_chars(const unsigned char *s, size_t n)
{
    long count = 0;
    for (size_t i = 0; i < n; count++) {
        unsigned char b = s[i];
        if (b < 0x80) {
            i++;
            continue;
        }
        /* The lead byte gives the length and the smallest code point that
         * needs that length (anything less is an overlong form). */
        size_t len = (b & 0xe0) == 0xc0 ? 2
                     : (b & 0xf0) == 0xe0 ? 3
                     : (b & 0xf8) == 0xf0 ? 4
                                          : 0;
        static const uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
        if (!len)
            return -1;
        uint32_t cp = b & (0x7f >> len), min = least[len];
        if (n - i < len)
            return -1;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return -1;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return -1;
        i += len;
    }
    return count;
}

/* Why the n bytes of pw cannot be the password exactly as given, or NULL.
 * A login sends the password as a JSON string of at most PW_MAX bytes:
 * anything that could not be sent that way could never be used. */
static const char *password_problem(const char *pw, size_t n, int64_t min,
                                    char *why, size_t cap)
{
    if (n == 0)
        return "a password is required (type it at the prompt, or give it "
               "on stdin)";
    if (n > PW_MAX)
        return "the password is longer than 1023 bytes";
    if (memchr(pw, '\0', n))
        return "the password contains a NUL byte";
    if (memchr(pw, '\r', n))
        return "the password contains a carriage return";
    if (memchr(pw, '\n', n))
        return "the password has more than one line (only a final newline "
               "is taken off)";
    long chars = utf8_chars((const unsigned char *)pw, n);
    if (chars < 0)
        return "the password is not valid UTF-8";
    if (chars < min) {
        snprintf(why, cap,
                 "the password is shorter than %lld characters (setting "
                 "min_password)",
                 (long long)min);
        return why;
    }
    return NULL;
}

/* While a password is typed the terminal does not echo; its settings are
 * put back however the command ends, a signal included. */
static struct termios tty_saved;
static volatile sig_atomic_t tty_changed;

static void tty_restore(void)
{
    if (tty_changed) {
        tcsetattr(STDIN_FILENO, TCSANOW, &tty_saved);
        tty_changed = 0;
    }
}

static void on_tty_signal(int sig)
{
    tty_restore(); /* tcsetattr is async-signal-safe */
    signal(sig, SIG_DFL);
    raise(sig);
}

/* One line from the terminal, without its newline, into buf (cap bytes).
 * The whole line is consumed even past cap, so that no part of a password
 * is left for the shell to run. Returns its length, cap + 1 if it did not
 * fit, or -1 at the end of input. */
static long tty_line(char *buf, size_t cap)
{
    size_t n = 0;
    int over = 0;
    for (;;) {
        char ch;
        ssize_t r = read(STDIN_FILENO, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 && n == 0 && !over)
            return -1;
        if (r <= 0 || ch == '\n')
            return over ? (long)cap + 1 : (long)n;
        if (n < cap)
            buf[n++] = ch;
        else
            over = 1;
    }
}

/* Asks at the terminal on stdin, without echo, and once more to confirm
 * (unless the first answer is refused). 0 with the length in *len, or an
 * exit status after saying why. */
static int prompt_password(const char *email, int64_t min, char *pw,
                           char *again, size_t cap, size_t *len)
{
    /* The prompt goes to the terminal the password is read from, even when
     * stderr is redirected. */
    char path[256];
    int out = -1;
    if (ttyname_r(STDIN_FILENO, path, sizeof path) == 0)
        out = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
    int pfd = out >= 0 ? out : STDERR_FILENO;
    if (tcgetattr(STDIN_FILENO, &tty_saved) != 0) {
        fprintf(stderr, "presenced: cannot read the terminal: %s\n",
                strerror(errno));
        if (out >= 0)
            close(out);
        return 1;
    }
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    struct sigaction sa = {.sa_handler = on_tty_signal}, old[4];
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 4; i++)
        sigaction(sigs[i], &sa, &old[i]);
    struct termios t = tty_saved;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
    tty_changed = 1;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &t);
    dprintf(pfd, "Password for %s: ", email);
    long n = tty_line(pw, cap), m = -1;
    dprintf(pfd, "\n");
    *len = n < 0 ? 0 : (size_t)n;
    char why[128];
    const char *bad = password_problem(pw, *len, min, why, sizeof why);
    if (!bad) {
        dprintf(pfd, "Repeat the password: ");
        m = tty_line(again, cap);
        dprintf(pfd, "\n");
    }
    tty_restore();
    for (int i = 0; i < 4; i++)
        sigaction(sigs[i], &old[i], NULL);
    if (out >= 0)
        close(out);
    if (bad)
        return refuse("%s", bad);
    if (m != n || memcmp(pw, again, (size_t)n) != 0)
        return refuse("the two passwords differ");
    return 0;
}

/* The password from stdin: all of it, less one final newline (a line's
 * end, as `echo` or a here-document give it). 0 with the length in *len
 * (PW_MAX + 1 if longer than PW_MAX), or 1 after saying why. */
static int stdin_password(char *pw, size_t cap, size_t *len)
{
    size_t n = 0;
    while (n < cap) {
        ssize_t r = read(STDIN_FILENO, pw + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            fprintf(stderr, "presenced: cannot read stdin: %s\n",
                    strerror(errno));
            return 1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n == cap)
        n = PW_MAX + 1; /* more than fits: too long whatever follows */
    else if (n > 0 && pw[n - 1] == '\n')
        n--;
    *len = n;
    return 0;
}

static int cmd_user(struct args *a, char **envp)
{
    struct config c;
    int rc = load_config(a, envp, &c, 0);
    if (rc)
        return rc;
    const char *org = flag(a, "org"), *email = flag(a, "email"),
               *name = flag(a, "name"), *id = flag(a, "id");
    if ((rc = leftover(a)))
        return rc;
    if (!a->sub || strcmp(a->sub, "add") || a->nwords != 1 || !org ||
        !email || !name)
        return usage("usage: user add --org ORG_ID --email EMAIL --name NAME "
                     "[--id USER_ID]%s", "");
    const char *bad = user_problem(org, id, email, name);
    if (bad)
        return refuse("%s", bad);
    if (auth_init() != 0) {
        fprintf(stderr, "presenced: libsodium failed to start\n");
        return 1;
    }
    /* Before the password is asked for: a typo in the organization is
     * told before the typing, not after it. */
    struct store *s;
    if (open_store(&c, &s))
        return 1;
    if ((rc = store_org_exists(s, org)) != 1) {
        store_close(s);
        if (rc < 0)
            return store_fail("user add", rc);
        fprintf(stderr, "presenced: no organization %s\n", org);
        return 1;
    }
    /* Room for one byte past PW_MAX and a newline, to tell "too long". */
    char pw[PW_MAX + 2], again[PW_MAX + 2], hash[AUTH_HASH_MAX], why[128];
    size_t n = 0;
    if (isatty(STDIN_FILENO)) {
        rc = prompt_password(email, c.min_password, pw, again, sizeof pw,
                             &n);
    } else {
        rc = stdin_password(pw, sizeof pw, &n);
        if (!rc && (bad = password_problem(pw, n, c.min_password, why,
                                           sizeof why)))
            rc = refuse("%s", bad);
    }
    if (!rc) {
        pw[n] = '\0'; /* no NUL inside: the string is all of it */
        if (auth_password_hash(pw, hash) != 0) {
            fprintf(stderr, "presenced: could not hash the password\n");
            rc = 1;
        }
    }
    explicit_bzero(pw, sizeof pw);
    explicit_bzero(again, sizeof again);
    if (rc) {
        store_close(s);
        return rc;
    }
    char out[STORE_ID_MAX + 1];
    rc = store_user_add(s, org, id, email, name, hash, out);
    store_close(s);
    if (rc == STORE_ENOENT) {
        fprintf(stderr, "presenced: no organization %s\n", org);
        return 1;
    }
    if (rc == STORE_EEXIST) {
        fprintf(stderr, "presenced: that user id or email is taken\n");
        return 1;
    }
    if (rc)
        return store_fail("user add", rc);
    printf("%s\n", out);
    return 0;
}

static int split_members(char *list, const char **out, size_t max)
{
    size_t n = 0;
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        if (!*tok)
            continue;
        if (n == max)
            return -1;
        out[n++] = tok;
    }
    return (int)n;
}

static int cmd_group(struct args *a, char **envp, int project)
{
    struct config c;
    int rc = load_config(a, envp, &c, 0);
    if (rc)
        return rc;
    const char *org = flag(a, "org"), *name = flag(a, "name"),
               *members = flag(a, "members");
    if ((rc = leftover(a)))
        return rc;
    if (!a->sub || strcmp(a->sub, "add") || a->nwords != 1 || !org || !name)
        return usage("usage: %s add --org ORG_ID --name NAME "
                     "[--members ID,ID]",
                     project ? "project" : "channel");
    static const char *ids[4096];
    char *copy = strdup(members ? members : "");
    int n = copy ? split_members(copy, ids, 4096) : -1;
    if (n < 0) {
        free(copy);
        return usage("too many members%s", "");
    }
    struct store *s;
    if (open_store(&c, &s)) {
        free(copy);
        return 1;
    }
    char out[STORE_ID_MAX + 1];
    rc = project ? store_project_add(s, org, name, ids, (size_t)n, out)
                 : store_channel_add(s, org, name, ids, (size_t)n, out);
    store_close(s);
    free(copy);
    if (rc == STORE_ENOENT) {
        fprintf(stderr, "presenced: no organization %s, or a member is "
                        "not in it\n", org);
        return 1;
    }
    if (rc)
        return store_fail(project ? "project add" : "channel add", rc);
    printf("%s\n", out);
    return 0;
}

static int secret_for(const struct config *c, char *out, size_t outlen)
{
    if (strlen(c->jwt_secret) >= 32) {
        snprintf(out, outlen, "%s", c->jwt_secret);
        return 0;
    }
    char path[1100];
    secret_path(c->db, path, sizeof path);
    if (access(path, R_OK) == 0)
        return demo_secret(c->db, out, outlen);
    fprintf(stderr, "presenced: no jwt_secret (PRESENCED_JWT_SECRET, 32 "
                    "bytes or more) and no demo secret\n");
    return -1;
}

static int cmd_token(struct args *a, char **envp)
{
    struct config c;
    int rc = load_config(a, envp, &c, 0);
    if (rc)
        return rc;
    const char *org = flag(a, "org"), *user = flag(a, "user"),
               *ttl = flag(a, "ttl"), *name = flag(a, "name");
    if ((rc = leftover(a)))
        return rc;
    if (a->nwords || !org || !user)
        return usage("usage: token --org ORG_ID --user USER_ID [--ttl 1h] "
                     "[--name NAME]%s", "");
    int64_t ttl_ms = 3600 * 1000;
    if (ttl && config_parse_duration(ttl, &ttl_ms) != 0)
        return usage("bad --ttl %s (use 30m, 1h, 7d)", ttl);
    if (strlen(org) > 128 || strlen(user) > 128 || !*org || !*user ||
        (name && strlen(name) > 200))
        return usage("org, user or name empty or too long%s", "");
    char secret[512];
    if (secret_for(&c, secret, sizeof secret) != 0)
        return 1;
    struct jwt_claims cl = {.exp = time(NULL) + ttl_ms / 1000};
    snprintf(cl.sub, sizeof cl.sub, "%s", user);
    snprintf(cl.org, sizeof cl.org, "%s", org);
    snprintf(cl.name, sizeof cl.name, "%s", name ? name : "");
    char tok[JWT_MAX_LEN];
    if (jwt_sign(&cl, secret, strlen(secret), tok, sizeof tok) < 0) {
        fprintf(stderr, "presenced: token too long\n");
        return 1;
    }
    printf("%s\n", tok);
    return 0;
}

/* A socket connected to a registered listen address ("127.0.0.1:8080",
 * "[::1]:8080"); a wildcard address is reached on loopback. -1 on
 * failure. */
static int connect_listen(const char *listen)
{
    char host[128];
    const char *colon = strrchr(listen, ':');
    size_t n = colon ? (size_t)(colon - listen) : 0;
    if (!colon || n >= sizeof host)
        return -1;
    memcpy(host, listen, n);
    host[n] = '\0';
    const char *h = host;
    if (host[0] == '[') {
        if (n < 2 || host[n - 1] != ']')
            return -1;
        host[n - 1] = '\0';
        h = host + 1;
    }
    if (!strcmp(h, "0.0.0.0"))
        h = "127.0.0.1";
    else if (!strcmp(h, "::"))
        h = "::1";
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV},
                    *ai;
    if (getaddrinfo(h, colon + 1, &hints, &ai) != 0)
        return -1;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        struct timeval tv = {10, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    return fd;
}

/* Asks the running server to sweep. Returns the count, or -1 if it could
 * not be reached or refused. */
static int remote_cleanup(const struct store_server *srv, int64_t older_ms)
{
    int fd = connect_listen(srv->listen);
    if (fd < 0)
        return -1;
    char req[512], resp[2048];
    int n = snprintf(req, sizeof req,
                     "POST /api/admin/cleanup-stale?older_than_ms=%lld "
                     "HTTP/1.1\r\nHost: %s\r\nAuthorization: Admin %s\r\n"
                     "Content-Length: 0\r\nConnection: close\r\n\r\n",
                     (long long)older_ms, srv->listen, srv->admin_key);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    ssize_t r;
    while (got < sizeof resp - 1 &&
           (r = read(fd, resp + got, sizeof resp - 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    resp[got] = '\0';
    const char *p = strstr(resp, "\"reset\":");
    if (strncmp(resp, "HTTP/1.1 200", 12) != 0 || !p)
        return -1;
    return atoi(p + 8);
}

static int cmd_cleanup(struct args *a, char **envp)
{
    struct config c;
    int rc = load_config(a, envp, &c, 0);
    if (rc)
        return rc;
    const char *older = flag(a, "older-than");
    if (!older)
        older = flag(a, "older_than");
    if ((rc = leftover(a)))
        return rc;
    if (a->nwords)
        return usage("cleanup-stale takes no arguments (got %s)",
                     a->words[0]);
    int64_t older_ms = c.stale_after_ms;
    if (older && config_parse_duration(older, &older_ms) != 0)
        return usage("bad --older-than %s (use 30m, 1h)", older);
    struct store *s;
    if (open_store(&c, &s))
        return 1;
    /* A live server owns presence: hand it the sweep, so that the change
     * is announced and its memory and the database never disagree. Its
     * lock on the database tells whether one runs (a registration may be
     * left over from a kill -9, and its pid reused); without a lock file,
     * no server of this version has run here, and an older one is found
     * by the pid it registered. */
    struct store_server srv;
    int64_t pid = 0;
    int held = store_lock_holder(c.db, &pid);
    int reg = store_server_get(s, &srv) == 0;
    int n = -1;
    if (held == 1) {
        char who[64] = "a server";
        if (pid > 0)
            snprintf(who, sizeof who, "a server (pid %lld)", (long long)pid);
        /* Never write behind its back: better nothing than a change the
         * server does not know of. */
        if (!reg || (pid > 0 && srv.pid != pid)) {
            store_close(s);
            fprintf(stderr, "presenced: %s serves %s but has not registered "
                            "its address; nothing was changed\n", who,
                    db_shown(&c));
            return 1;
        }
        n = remote_cleanup(&srv, older_ms);
        if (n < 0) {
            store_close(s);
            fprintf(stderr, "presenced: %s serves %s but could not be "
                            "reached at %s; nothing was changed\n",
                    who, db_shown(&c), srv.listen);
            return 1;
        }
    } else if (held < 0 && reg && store_kind(c.db) == STORE_KIND_PG) {
        /* PostgreSQL has no lock to ask: the registered server is asked
         * first. A registration it cannot answer is left over from a
         * server killed on this host (its pid gone); any other means a
         * server we cannot reach, and nothing is written behind it. */
        n = remote_cleanup(&srv, older_ms);
        if (n < 0 && !(srv.pid > 0 && kill((pid_t)srv.pid, 0) != 0 &&
                       strncmp(srv.listen, "127.", 4) == 0)) {
            store_close(s);
            fprintf(stderr, "presenced: a server registered on %s at %s "
                            "could not be reached; nothing was changed\n",
                    db_shown(&c), srv.listen);
            return 1;
        }
    } else if (held < 0 && reg && srv.pid > 0 &&
               kill((pid_t)srv.pid, 0) == 0) {
        n = remote_cleanup(&srv, older_ms);
    }
    if (n < 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        n = store_reset_stale(s, now - older_ms);
    }
    store_close(s);
    if (n < 0)
        return store_fail("cleanup-stale", n);
    printf("Reset %d stale statuses to OFFLINE\n", n);
    return 0;
}

static int cmd_demo(struct args *a, char **envp)
{
    struct config c;
    int rc = load_config(a, envp, &c, 0);
    if (rc)
        return rc;
    if ((rc = leftover(a)))
        return rc;
    if (a->nwords)
        return usage("demo takes no arguments (got %s)", a->words[0]);
    static const char *people[][2] = {
        {"ann", "Ann Lee"},        {"bob", "Bob Martin"},
        {"chloe", "Chloé Dubois"}, {"dev", "Dev Patel"},
        {"erin", "Erin O'Brien"},  {"farid", "Farid Haddad"},
        {"grace", "Grace Kim"},    {"hiro", "Hiro Tanaka"},
        {"ines", "Inês Costa"},    {"jonas", "Jonas Berg"},
        {"kemi", "Kemi Adeyemi"},  {"lars", "Lars Nilsson"},
    };
    struct store *s;
    if (open_store(&c, &s))
        return 1;
    int exists = store_org_exists(s, "demo");
    if (exists == 1 && a->if_empty) {
        store_close(s);
        printf("Demo organization already present.\n");
        goto signin;
    }
    if (exists == 1) {
        store_close(s);
        fprintf(stderr, "presenced: the demo organization exists already\n");
        return 1;
    }
    char hash[AUTH_HASH_MAX];
    if (auth_init() != 0 || auth_password_hash("demo", hash) != 0) {
        store_close(s);
        return 1;
    }
    rc = store_begin(s);
    if (!rc)
        rc = store_org_add(s, "demo", "Demo Inc.");
    for (size_t i = 0; !rc && i < sizeof people / sizeof *people; i++) {
        char email[64];
        snprintf(email, sizeof email, "%s@demo.example", people[i][0]);
        rc = store_user_add(s, "demo", people[i][0], email, people[i][1],
                            hash, NULL);
    }
    const char *general[] = {"ann", "bob", "chloe", "dev", "erin", "farid",
                             "grace", "hiro", "ines", "jonas", "kemi",
                             "lars"};
    const char *eng[] = {"ann", "bob", "dev", "hiro", "jonas"};
    const char *design[] = {"chloe", "erin", "ines"};
    const char *sales[] = {"farid", "grace", "kemi", "lars"};
    char id[STORE_ID_MAX + 1];
    if (!rc)
        rc = store_channel_add(s, "demo", "general", general, 12, id);
    if (!rc)
        rc = store_channel_add(s, "demo", "engineering", eng, 5, id);
    if (!rc)
        rc = store_channel_add(s, "demo", "design", design, 3, id);
    if (!rc)
        rc = store_channel_add(s, "demo", "sales", sales, 4, id);
    const char *web[] = {"ann", "chloe", "dev", "erin"};
    const char *launch[] = {"bob", "farid", "grace", "kemi", "ann"};
    if (!rc)
        rc = store_project_add(s, "demo", "Website redesign", web, 4, id);
    if (!rc)
        rc = store_project_add(s, "demo", "Spring launch", launch, 5, id);
    if (!rc)
        rc = store_commit(s);
    else
        store_rollback(s);
    store_close(s);
    if (rc)
        return store_fail("demo", rc);
    printf("Seeded organization \"demo\": 12 people, 4 channels, 2 "
           "projects.\n");
signin:
    printf("Sign in at http://%s/ as ann@demo.example (or bob@, chloe@, "
           "...) with password: demo\n",
           c.listen);
    return 0;
}

/* db copy: a SQLite file into an empty PostgreSQL database, every row. */
static int cmd_db(struct args *a, char **envp)
{
    struct config c;
    char shown[512], err[STORE_ERRLEN];
    int rc = load_config(a, envp, &c, 0);
    if (rc)
        return rc;
    const char *from = flag(a, "from"), *to = flag(a, "to");
    if ((rc = leftover(a)))
        return rc;
    if (!a->sub || strcmp(a->sub, "copy") || a->nwords != 1 || !from ||
        !to)
        return usage("usage: db copy --from FILE.db --to postgresql://... "
                     "[--force]%s", "");
    if (store_kind(to) == STORE_KIND_UNKNOWN)
        return usage("unknown database scheme in --to %s (use "
                     "postgresql://)", store_redact(to, shown, sizeof shown));
    if (store_kind(to) != STORE_KIND_PG)
        return refuse("--to %s is not a postgresql:// URI: db copy only "
                      "copies a SQLite file to PostgreSQL",
                      store_redact(to, shown, sizeof shown));
    if (store_kind(from) != STORE_KIND_SQLITE)
        return refuse("--from %s is not a SQLite file: db copy only copies "
                      "a SQLite file to PostgreSQL",
                      store_redact(from, shown, sizeof shown));
    struct store_copy_result res;
    rc = store_copy(from, to, a->force, &res, err);
    if (rc) {
        fprintf(stderr, "presenced: %s\n", *err ? err : store_strerror(rc));
        return 1;
    }
    for (int i = 0; i < STORE_COPY_NTABLES; i++)
        printf("%s %lld\n", res.table[i], (long long)res.rows[i]);
    printf("total %lld\n", (long long)res.total);
    return 0;
}

/* ---- cluster status: the nodes, as the cluster's Redis holds them ------- */

#define REDIS_TIMEOUT_S 2

/* One field of K nodes (docs/cluster.md): node id ->
 * last_beat_ms|connections|started_ms|listen. */
struct node_row {
    char *id; /* as stored, NUL added */
    size_t idlen;
    int alive;  /* K alive:<node> exists */
    int parsed; /* the value has the four fields */
    long long beat_ms, conns, started_ms;
    char *listen; /* "" unless parsed */
};

static int node_cmp(const void *x, const void *y)
{
    const struct node_row *a = x, *b = y;
    size_t n = a->idlen < b->idlen ? a->idlen : b->idlen;
    int d = memcmp(a->id, b->id, n);
    return d ? d : (a->idlen > b->idlen) - (a->idlen < b->idlen);
}

/* A decimal field of a node's value, ended by '|'. */
static int node_field(const char **p, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(*p, &end, 10);
    if (end == *p || *end != '|' || errno)
        return -1;
    *out = v;
    *p = end + 1;
    return 0;
}

static void node_parse(struct node_row *n, const char *v)
{
    n->parsed = node_field(&v, &n->beat_ms) == 0 &&
                node_field(&v, &n->conns) == 0 &&
                node_field(&v, &n->started_ms) == 0;
    n->listen = xstrdup(n->parsed ? v : "");
}

static void free_nodes(struct node_row *nodes, size_t n)
{
    for (size_t i = 0; nodes && i < n; i++) {
        free(nodes[i].id);
        free(nodes[i].listen);
    }
    free(nodes);
}

/* What Redis holds is printed, not obeyed: a control character in it
 * could drive the terminal, so it is shown as '?'. Returns a new string. */
static char *shown_text(const char *s, size_t n)
{
    char *out = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
    out[n] = '\0';
    return out;
}

/* Says on one line what failed: Redis as shown (without its password),
 * and a reason from hiredis or from Redis, neither of which repeats a
 * password. Returns the exit status. */
static int redis_fail(const char *shown, const char *what, const char *why)
{
    char line[512];
    snprintf(line, sizeof line, "%s", why && *why ? why : "no reply");
    for (char *p = line; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    fprintf(stderr, "presenced: Redis at %s: %s: %s\n", shown, what, line);
    return 1;
}

/* rep if it is a reply of the given type (-1: any but an error), else
 * NULL after redis_fail(), rep freed. */
static redisReply *redis_expect(redisContext *r, redisReply *rep, int type,
                                const char *shown, const char *what)
{
    if (!rep) {
        redis_fail(shown, what, r->errstr);
        return NULL;
    }
    if (rep->type == REDIS_REPLY_ERROR || (type >= 0 && rep->type != type)) {
        redis_fail(shown, what, rep->type == REDIS_REPLY_ERROR
                                    ? rep->str
                                    : "unexpected reply");
        freeReplyObject(rep);
        return NULL;
    }
    return rep;
}

/* Connects, authenticates and selects the database of u, each step
 * within REDIS_TIMEOUT_S. NULL after saying why. */
static redisContext *redis_open(const struct cluster_uri *u,
                                const char *shown)
{
    struct timeval tv = {REDIS_TIMEOUT_S, 0};
    redisContext *r = u->path[0] ? redisConnectUnixWithTimeout(u->path, tv)
                                 : redisConnectWithTimeout(u->host, u->port,
                                                           tv);
    redisReply *rep = NULL;

    if (!r || r->err) {
        redis_fail(shown, "cannot connect", r ? r->errstr : "out of memory");
        goto fail;
    }
    if (redisSetTimeout(r, tv) != REDIS_OK) {
        redis_fail(shown, "cannot set a timeout", r->errstr);
        goto fail;
    }
    if (u->password[0]) {
        rep = u->user[0]
                  ? redisCommand(r, "AUTH %s %s", u->user, u->password)
                  : redisCommand(r, "AUTH %s", u->password);
        if (!(rep = redis_expect(r, rep, -1, shown, "AUTH refused")))
            goto fail;
        freeReplyObject(rep);
    }
    if (u->db) {
        rep = redisCommand(r, "SELECT %d", u->db);
        if (!(rep = redis_expect(r, rep, -1, shown, "SELECT")))
            goto fail;
        freeReplyObject(rep);
    }
    return r;
fail:
    redisFree(r);
    return NULL;
}

/* Reads the nodes of 'cluster' (sorted by id) and Redis's time. 0 with
 * them in *out (free_nodes()), or an exit status after saying why. */
static int cluster_nodes(redisContext *r, const char *shown,
                         const char *cluster, struct node_row **out,
                         size_t *nout, long long *now_ms)
{
    redisReply *rep;
    char key[128];

    *out = NULL;
    *nout = 0;
    rep = redis_expect(r, redisCommand(r, "TIME"), REDIS_REPLY_ARRAY, shown,
                       "TIME");
    if (!rep)
        return 1;
    if (rep->elements != 2 || rep->element[0]->type != REDIS_REPLY_STRING ||
        rep->element[1]->type != REDIS_REPLY_STRING) {
        freeReplyObject(rep);
        return redis_fail(shown, "TIME", "unexpected reply");
    }
    *now_ms = atoll(rep->element[0]->str) * 1000 +
              atoll(rep->element[1]->str) / 1000;
    freeReplyObject(rep);

    /* docs/cluster.md: every key starts with K, presenced:<cluster>: */
    snprintf(key, sizeof key, "presenced:%s:nodes", cluster);
    rep = redis_expect(r, redisCommand(r, "HGETALL %s", key),
                       REDIS_REPLY_ARRAY, shown, "HGETALL");
    if (!rep)
        return 1;
    size_t n = rep->elements / 2;
    struct node_row *nodes = xcalloc(n ? n : 1, sizeof *nodes);
    for (size_t i = 0; i < n; i++) {
        const redisReply *f = rep->element[2 * i], *v = rep->element[2 * i + 1];
        nodes[i].idlen = f->len;
        nodes[i].id = xmalloc(f->len + 1);
        memcpy(nodes[i].id, f->str, f->len);
        nodes[i].id[f->len] = '\0';
        node_parse(&nodes[i], v->type == REDIS_REPLY_STRING ? v->str : "");
    }
    freeReplyObject(rep);
    *out = nodes;
    *nout = n;

    /* Liveness: K alive:<node>, one PTTL each, all in one round trip. */
    snprintf(key, sizeof key, "presenced:%s:alive:", cluster);
    size_t nkey = strlen(key);
    for (size_t i = 0; i < n; i++) {
        char *k = xmalloc(nkey + nodes[i].idlen);
        memcpy(k, key, nkey);
        memcpy(k + nkey, nodes[i].id, nodes[i].idlen);
        int bad = redisAppendCommand(r, "PTTL %b", k, nkey + nodes[i].idlen);
        free(k);
        if (bad != REDIS_OK)
            return redis_fail(shown, "PTTL", r->errstr);
    }
    for (size_t i = 0; i < n; i++) {
        void *got = NULL;
        if (redisGetReply(r, &got) != REDIS_OK)
            got = NULL;
        if (!(rep = redis_expect(r, got, REDIS_REPLY_INTEGER, shown, "PTTL")))
            return 1;
        /* -2: no such key; -1: a key without an expiry, there all the
         * same. */
        nodes[i].alive = rep->integer != -2;
        freeReplyObject(rep);
    }
    qsort(nodes, n, sizeof *nodes, node_cmp);
    return 0;
}

/* One line of the table, as printed. */
struct node_cells {
    char *id, *listen; /* shown_text() */
    char conns[24], beat[48], started[32];
    const char *state;
};

static void node_cells(const struct node_row *x, long long now_ms,
                       struct node_cells *c)
{
    c->state = x->alive ? "alive" : "dead";
    c->id = shown_text(x->id, x->idlen);
    c->listen = x->parsed ? shown_text(x->listen, strlen(x->listen))
                          : xstrdup("-");
    strcpy(c->conns, "-");
    strcpy(c->beat, "-");
    strcpy(c->started, "-");
    if (!x->parsed)
        return;
    snprintf(c->conns, sizeof c->conns, "%lld", x->conns);
    /* Redis's clock, not ours: the nodes beat by it. */
    long long age = now_ms - x->beat_ms;
    long long tenths = (age < 0 ? 0 : age + 50) / 100;
    snprintf(c->beat, sizeof c->beat, "%lld.%llds ago", tenths / 10,
             tenths % 10);
    time_t t = (time_t)(x->started_ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm))
        strftime(c->started, sizeof c->started, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The table: a header, then a line per node, each column as wide as its
 * widest cell, two spaces apart. */
static void print_table(const char *cluster, const struct node_row *nodes,
                        size_t n, long long now_ms)
{
    enum { NCOL = 6 };
    static const char *head[NCOL] = {"NODE",      "STATE",   "CONNECTIONS",
                                     "LAST_BEAT", "STARTED", "LISTEN"};
    const char **cell = xcalloc((n + 1) * NCOL, sizeof *cell);
    struct node_cells *rows = xcalloc(n ? n : 1, sizeof *rows);
    size_t width[NCOL] = {0};

    if (n == 0)
        printf("no nodes in cluster %s\n", cluster);
    memcpy(cell, head, sizeof head);
    for (size_t i = 0; i < n; i++) {
        struct node_cells *c = &rows[i];
        const char **line = cell + (i + 1) * NCOL;
        node_cells(&nodes[i], now_ms, c);
        line[0] = c->id;
        line[1] = c->state;
        line[2] = c->conns;
        line[3] = c->beat;
        line[4] = c->started;
        line[5] = c->listen;
    }
    for (size_t i = 0; i <= n; i++)
        for (int k = 0; k < NCOL; k++)
            if (strlen(cell[i * NCOL + k]) > width[k])
                width[k] = strlen(cell[i * NCOL + k]);
    for (size_t i = 0; n && i <= n; i++) {
        for (int k = 0; k < NCOL - 1; k++)
            printf("%-*s  ", (int)width[k], cell[i * NCOL + k]);
        printf("%s\n", cell[i * NCOL + NCOL - 1]);
    }
    for (size_t i = 0; i < n; i++) {
        free(rows[i].id);
        free(rows[i].listen);
    }
    free(rows);
    free(cell);
}

/* A JSON string of what Redis holds: as is when it is UTF-8, else with
 * each byte that is not ASCII shown as '?'. */
static json_t *json_text(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    char *t = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        t[i] = (unsigned char)s[i] >= 0x80 || !s[i] ? '?' : s[i];
    j = json_stringn(t, n);
    free(t);
    return j;
}

/* {"cluster":NAME,"nodes":[{"id":..,"state":..,"connections":N,
 * "last_beat_ms":..,"started_ms":..,"listen":..}]}, a value not of the
 * documented form giving null fields. 0, or 1 after saying why. */
static int print_json(const char *cluster, const struct node_row *nodes,
                      size_t n)
{
    json_t *root = json_object(), *arr = json_array();
    json_object_set_new(root, "cluster", json_string(cluster));
    json_object_set_new(root, "nodes", arr);
    for (size_t i = 0; i < n; i++) {
        const struct node_row *x = &nodes[i];
        json_t *o = json_object();
        json_object_set_new(o, "id", json_text(x->id, x->idlen));
        json_object_set_new(o, "state",
                            json_string(x->alive ? "alive" : "dead"));
        json_object_set_new(o, "connections",
                            x->parsed ? json_integer(x->conns) : json_null());
        json_object_set_new(o, "last_beat_ms",
                            x->parsed ? json_integer(x->beat_ms)
                                      : json_null());
        json_object_set_new(o, "started_ms",
                            x->parsed ? json_integer(x->started_ms)
                                      : json_null());
        json_object_set_new(o, "listen",
                            x->parsed
                                ? json_text(x->listen, strlen(x->listen))
                                : json_null());
        json_array_append_new(arr, o);
    }
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text) {
        fprintf(stderr, "presenced: cannot encode the nodes as JSON\n");
        return 1;
    }
    printf("%s\n", text);
    free(text);
    return 0;
}

static int cmd_cluster(struct args *a, char **envp)
{
    struct config c;
    char err[CONFIG_ERRLEN], shown[1200];
    int rc = load_config(a, envp, &c, 0);
    if (rc)
        return rc;
    const char *redis = flag(a, "redis"), *name = flag(a, "cluster");
    if ((redis && config_set(&c, "redis", redis, err) != 0) ||
        (name && config_set(&c, "cluster", name, err) != 0)) {
        fprintf(stderr, "presenced: %s\n", err);
        return 2;
    }
    if ((rc = leftover(a)))
        return rc;
    if (!a->sub || strcmp(a->sub, "status") || a->nwords != 1)
        return usage("usage: cluster status [--redis URI] [--cluster NAME] "
                     "[--json]%s", "");
    if (!c.redis[0])
        return usage("cluster status needs the cluster's Redis: --redis URI "
                     "or the redis setting (PRESENCED_REDIS)%s", "");
    struct cluster_uri u;
    if (cluster_uri_parse(c.redis, &u, err) != 0) { /* config checked it */
        fprintf(stderr, "presenced: redis: %s\n", err);
        return 2;
    }
    cluster_uri_redacted(&u, shown, sizeof shown);
    redisContext *r = redis_open(&u, shown);
    explicit_bzero(&u, sizeof u);
    explicit_bzero(c.redis, sizeof c.redis);
    if (!r)
        return 1;
    struct node_row *nodes;
    size_t n;
    long long now_ms = 0;
    rc = cluster_nodes(r, shown, c.cluster, &nodes, &n, &now_ms);
    redisFree(r);
    if (rc == 0 && a->json)
        rc = print_json(c.cluster, nodes, n);
    else if (rc == 0)
        print_table(c.cluster, nodes, n, now_ms);
    free_nodes(nodes, n);
    return rc;
}

/* ---- presets: an organization's status-message presets --------------- */

static int cmd_presets(struct args *a, char **envp)
{
    struct config c;
    int rc = load_config(a, envp, &c, 0);
    if (rc)
        return rc;
    const char *org = flag(a, "org"), *file = flag(a, "file");
    if ((rc = leftover(a)))
        return rc;
    int show = a->sub && !strcmp(a->sub, "show"),
        set = a->sub && !strcmp(a->sub, "set"),
        reset = a->sub && !strcmp(a->sub, "reset");
    if (a->nwords != 1 || !org || !(show || set || reset) || (set != !!file))
        return usage("usage: presets show|reset --org ORG_ID, or presets set "
                     "--org ORG_ID --file FILE.json (- for stdin)%s", "");
    char *text = NULL;
    if (set) {
        json_error_t je;
        json_t *j = strcmp(file, "-") == 0
                        ? json_loadf(stdin, JSON_REJECT_DUPLICATES, &je)
                        : json_load_file(file, JSON_REJECT_DUPLICATES, &je);
        char err[160];
        if (!j)
            return refuse("%s: not JSON (%s, line %d)", file, je.text,
                          je.line);
        const json_t *arr = json_is_object(j) ? json_object_get(j, "presets")
                                              : j;
        if (presets_check(arr, err, sizeof err) != 0) {
            json_decref(j);
            return refuse("%s: %s", file, err);
        }
        text = json_dumps(arr, JSON_COMPACT);
        json_decref(j);
        if (!text || strlen(text) > STORE_PRESETS_MAX) {
            free(text);
            return refuse("%s: the presets are too long", file);
        }
    }
    struct store *s;
    if (open_store(&c, &s)) {
        free(text);
        return 1;
    }
    if (set || reset)
        rc = store_presets_set(s, org, text);
    char *out = xmalloc(STORE_PRESETS_MAX + 1);
    if (!rc) {
        rc = store_presets_get(s, org, out, STORE_PRESETS_MAX + 1);
        if (rc == STORE_ENOENT) {
            rc = store_org_exists(s, org) == 1 ? 0 : STORE_ENOENT;
            snprintf(out, STORE_PRESETS_MAX + 1, "%s", presets_default);
        }
    }
    store_close(s);
    free(text);
    if (rc == STORE_ENOENT) {
        free(out);
        fprintf(stderr, "presenced: no organization %s\n", org);
        return 1;
    }
    if (rc) {
        free(out);
        return store_fail("presets", rc);
    }
    /* Pretty, one preset per line: it is meant for people. */
    json_t *j = json_loads(out, 0, NULL);
    char *pretty = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
    printf("%s\n", pretty ? pretty : out);
    free(pretty);
    json_decref(j);
    free(out);
    return 0;
}

static const struct {
    const char *cmd, *text;
} command_help[] = {
    {"serve", "usage: presenced serve [--listen HOST:PORT] [--demo] "
              "[--db PATH] [--config FILE] [--SETTING VALUE ...]\n"
              "Serves HTTP and WebSocket presence. Settings:\n"},
    {"org", "usage: presenced org add ORG_ID [--name NAME]\n"
            "Adds an organization.\n"},
    {"user", "usage: presenced user add --org ORG_ID --email EMAIL "
             "--name NAME [--id USER_ID]\n"
             "Adds a user and prints its id. At a terminal the password "
             "is asked for twice, without echo; otherwise it is all of "
             "stdin, less one final newline. It is stored exactly as "
             "given, or refused (exit 2) when shorter than min_password "
             "characters, longer than 1023 bytes, not UTF-8, or holding "
             "a NUL, a CR or a line break. The name must not be empty, "
             "the email must be name@domain.\n"},
    {"channel", "usage: presenced channel add --org ORG_ID --name NAME "
                "[--members ID,ID]\nAdds a channel; prints its id.\n"},
    {"project", "usage: presenced project add --org ORG_ID --name NAME "
                "[--members ID,ID]\nAdds a project; prints its id.\n"},
    {"token", "usage: presenced token --org ORG_ID --user USER_ID "
              "[--ttl 1h] [--name NAME]\n"
              "Prints an HS256 JWT signed with jwt_secret.\n"},
    {"cleanup-stale", "usage: presenced cleanup-stale [--older-than 30m]\n"
                      "Resets users shown as not OFFLINE, with no live "
                      "connection and last_seen older than the threshold "
                      "(default stale_after). Asks the running server to do "
                      "it when there is one.\n"},
    {"demo", "usage: presenced demo [--if-empty]\n"
             "Seeds the organization \"demo\" (12 people, channels, "
             "projects); --if-empty succeeds quietly if it exists.\n"},
    {"db", "usage: presenced db copy --from FILE.db --to postgresql://... "
           "[--force]\n"
           "Copies every row of a SQLite database (organizations, users "
           "with their password hashes and presence, login sessions, "
           "channels, projects) to PostgreSQL, ids kept, in one "
           "transaction, and prints the rows per table. The copy is a "
           "snapshot: a server may keep running on the file, and what it "
           "writes afterwards is not copied. A target whose tables hold "
           "rows is refused unless --force, which deletes them first.\n"},
    {"presets", "usage: presenced presets show|reset --org ORG_ID\n"
                "       presenced presets set --org ORG_ID --file FILE.json\n"
                "Shows, sets or resets (to the defaults) the status "
                "messages an organization's members can pick with one "
                "click: a JSON array of at most 20 {\"text\", \"emoji\", "
                "\"expires\"} objects, expires one of 30m, 1h, 4h, today, "
                "week, never. A running server sees the change at once.\n"},
    {"cluster", "usage: presenced cluster status [--redis URI] "
                "[--cluster NAME] [--json]\n"
                "Lists the nodes of the cluster, as its Redis holds them, "
                "sorted by id: alive (its liveness key is there) or dead, "
                "connections, its last beat (by Redis's clock), when it "
                "started, its address. --redis and --cluster default to "
                "the redis and cluster settings.\n"},
};

static void print_setting(void *ud, const char *key, const char *env,
                          const char *def, const char *help)
{
    char flag[64];
    snprintf(flag, sizeof flag, "%s", key);
    for (char *p = flag; *p; p++)
        if (*p == '_')
            *p = '-';
    printf("  --%-16s %-26s default %-14s %s\n", flag, env,
           *def ? def : "(none)", help);
}

static int print_help(const char *cmd)
{
    for (size_t i = 0; i < sizeof command_help / sizeof *command_help; i++)
        if (!strcmp(command_help[i].cmd, cmd)) {
            fputs(command_help[i].text, stdout);
            if (!strcmp(cmd, "serve"))
                config_each(print_setting, NULL);
            printf("Every command also takes --db PATH and --config "
                   "FILE.\n");
            return 0;
        }
    return usage("unknown command %s", cmd);
}

int cli_main(int argc, char **argv, char **envp)
{
    struct args a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    if (a.version) {
        printf("presenced %s\n", PRESENCED_VERSION);
        return 0;
    }
    if (!a.cmd || !strcmp(a.cmd, "help") || (a.help && !a.cmd)) {
        fputs(usage_text, a.cmd || a.help ? stdout : stderr);
        return a.cmd || a.help ? 0 : 2;
    }
    if (a.help)
        return print_help(a.cmd);
    a.sub = a.nwords ? a.words[0] : NULL;
    if (!strcmp(a.cmd, "serve"))
        return cmd_serve(&a, envp);
    if (!strcmp(a.cmd, "org"))
        return cmd_org(&a, envp);
    if (!strcmp(a.cmd, "user"))
        return cmd_user(&a, envp);
    if (!strcmp(a.cmd, "channel"))
        return cmd_group(&a, envp, 0);
    if (!strcmp(a.cmd, "project"))
        return cmd_group(&a, envp, 1);
    if (!strcmp(a.cmd, "token"))
        return cmd_token(&a, envp);
    if (!strcmp(a.cmd, "cleanup-stale"))
        return cmd_cleanup(&a, envp);
    if (!strcmp(a.cmd, "demo"))
        return cmd_demo(&a, envp);
    if (!strcmp(a.cmd, "db"))
        return cmd_db(&a, envp);
    if (!strcmp(a.cmd, "cluster"))
        return cmd_cluster(&a, envp);
    if (!strcmp(a.cmd, "presets"))
        return cmd_presets(&a, envp);
    return usage("unknown command %s", a.cmd);
}
