/* test_rate.c - fixed-window counters (util/rate.c) with a fake clock. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "util/rate.h"

static void test_window(void **state)
{
    struct rate_table *t = rate_new();
    assert_int_equal(rate_count(t, "ip:a", 1000, 0), 0);
    assert_int_equal(rate_add(t, "ip:a", 1000, 0), 1);
    assert_int_equal(rate_add(t, "ip:a", 1000, 500), 2);
    assert_int_equal(rate_add(t, "ip:b", 1000, 500), 1);
    assert_int_equal(rate_count(t, "ip:a", 1000, 999), 2);
    assert_int_equal(rate_wait(t, "ip:a", 400), 600);
    /* The window opened at 0 closes at 1000: a new one starts. */
    assert_int_equal(rate_count(t, "ip:a", 1000, 1000), 0);
    assert_int_equal(rate_wait(t, "ip:a", 1000), 0);
    assert_int_equal(rate_add(t, "ip:a", 1000, 1000), 1);
    assert_int_equal(rate_count(t, "ip:b", 1000, 1200), 1);
    rate_free(t);
}

static void test_forget_and_prune(void **state)
{
    struct rate_table *t = rate_new();
    rate_add(t, "email:x", 300000, 0);
    rate_add(t, "email:y", 300000, 100);
    rate_add(t, "conn:z", 1000, 100);
    rate_forget(t, "email:x");
    rate_forget(t, "email:nobody"); /* absent: nothing happens */
    assert_int_equal(rate_count(t, "email:x", 300000, 200), 0);
    assert_int_equal(rate_prune(t, 200), 2);
    assert_int_equal(rate_prune(t, 1100), 1);    /* conn:z window over */
    assert_int_equal(rate_prune(t, 300100), 0);
    rate_free(t);
    rate_free(NULL);
}

static void test_sub(void **state)
{
    (void)state;
    struct rate_table *t = rate_new();
    assert_int_equal(rate_add(t, "k", 1000, 100), 1);
    assert_int_equal(rate_add(t, "k", 1000, 200), 2);
    rate_sub(t, "k", 200, 300);
    assert_int_equal(rate_count(t, "k", 1000, 300), 1);
    /* A reservation from a closed window is not taken from a new one. */
    assert_int_equal(rate_add(t, "k", 1000, 1200), 1);
    rate_sub(t, "k", 900, 1300);
    assert_int_equal(rate_count(t, "k", 1000, 1300), 1);
    rate_sub(t, "k", 1200, 1300);
    rate_sub(t, "k", 1200, 1300);
    assert_int_equal(rate_count(t, "k", 1000, 1300), 0);
    rate_sub(t, "none", 0, 1300);
    rate_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window),
        cmocka_unit_test(test_forget_and_prune),
        cmocka_unit_test(test_sub),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
