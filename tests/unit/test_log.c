/* test_log.c - util/log.c: one event, one line, whatever the arguments
 * hold. stderr is pointed at a temporary file and read back. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

/* Runs log_info("%s", arg) and returns the message part of the one line
 * written (after "LEVEL "), without its newline; static storage. */
static const char *logged(const char *fmt, const char *arg)
{
    static char out[8192];
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    fflush(stderr);
    int saved = dup(fileno(stderr));
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), fileno(stderr)) >= 0);
    log_info(fmt, arg);
    fflush(stderr);
    assert_true(dup2(saved, fileno(stderr)) >= 0);
    close(saved);
    rewind(tmp);
    size_t n = fread(out, 1, sizeof out - 1, tmp);
    fclose(tmp);
    out[n] = '\0';
    /* Exactly one line, ending in the one newline log_msg writes. */
    assert_true(n > 0 && out[n - 1] == '\n');
    assert_null(memchr(out, '\n', n - 1));
    out[n - 1] = '\0';
    const char *msg = strstr(out, " INFO ");
    assert_non_null(msg);
    return msg + 6;
}

static void test_plain_text_unchanged(void **state)
{
    assert_string_equal(logged("login %s", "ann@demo.example"),
                        "login ann@demo.example");
    /* Well-formed UTF-8 passes: names in any script. */
    assert_string_equal(logged("%s", "Zoë 山田 \xf0\x9f\x98\x80"),
                        "Zoë 山田 \xf0\x9f\x98\x80");
}

static void test_newline_cannot_forge_a_line(void **state)
{
    const char *forged = "x@y\n2026-01-01T00:00:00.000Z INFO login o1/admin";
    assert_string_equal(
        logged("failed login for %s", forged),
        "failed login for x@y\\n2026-01-01T00:00:00.000Z INFO login o1/admin");
    assert_string_equal(logged("%s", "a\r\nb\tc"), "a\\r\\nb\\tc");
}

static void test_other_controls_as_hex(void **state)
{
    assert_string_equal(logged("%s", "\x1b[31mred\x7f\x01"),
                        "\\x1b[31mred\\x7f\\x01");
    /* C1 controls written in UTF-8 (U+009B, a CSI to some terminals). */
    assert_string_equal(logged("%s", "a\xc2\x9b" "b"), "a\\xc2\\x9bb");
    /* U+00A0 is not a control: it passes. */
    assert_string_equal(logged("%s", "a\xc2\xa0" "b"), "a\xc2\xa0" "b");
}

static void test_backslash_and_bad_utf8(void **state)
{
    /* A literal backslash-n typed by a client must not read as an
     * escaped newline. */
    assert_string_equal(logged("%s", "a\\nb"), "a\\\\nb");
    /* Bytes outside well-formed UTF-8: lone continuation, overlong,
     * surrogate, cut sequence. */
    assert_string_equal(logged("%s", "\x80\xc0\xaf\xed\xa0\x80\xe2\x82"),
                        "\\x80\\xc0\\xaf\\xed\\xa0\\x80\\xe2\\x82");
}

static void test_long_message_stays_one_line(void **state)
{
    char arg[2000];
    memset(arg, '\n', sizeof arg - 1);
    arg[sizeof arg - 1] = '\0';
    /* 1023 bytes are kept, each one escaped into two. */
    const char *m = logged("%s", arg);
    assert_int_equal(strlen(m), 2 * 1023);
    assert_int_equal(strncmp(m, "\\n\\n", 4), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_text_unchanged),
        cmocka_unit_test(test_newline_cannot_forge_a_line),
        cmocka_unit_test(test_other_controls_as_hex),
        cmocka_unit_test(test_backslash_and_bad_utf8),
        cmocka_unit_test(test_long_message_stays_one_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
