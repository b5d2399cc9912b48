/* log.h - one line per event on stderr: UTC time, level, message.
 *   2026-11-28T22:10:49.123Z INFO listening on 127.0.0.1:8080
 * Any thread may log: each line is one fprintf, which stdio does not
 * interleave with another's. The level may be changed from any thread
 * while others log (it is atomic).
 *
 * The formatted message is escaped before it is written, so that text a
 * client chose (an email, an id from a token) can neither start a line of
 * its own nor pass for one: a backslash becomes \\, newline, carriage
 * return and tab become \n, \r and \t, every other control character
 * (C0, DEL, C1) and every byte that is not part of well-formed UTF-8
 * becomes \xNN. Well-formed UTF-8 otherwise passes as it is. Format
 * strings therefore never hold a newline: one event, one line. Messages
 * are cut at 1023 bytes before escaping. */
#ifndef LOG_H
#define LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level l);
/* Parses "debug", "info", "warn", "error"; returns 0 or -1. */
int log_parse_level(const char *s, enum log_level *out);
void log_msg(enum log_level l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#endif
