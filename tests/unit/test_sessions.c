/* test_sessions.c - the in-memory session table (auth/sessions.c): lookups
 * by hash and id, expiry, delete, purge, a user's ids newest first, and a
 * table of many entries. Time is passed in. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "auth/sessions.h"

static void hash_of(unsigned char h[32], int n)
{
    memset(h, 0, 32);
    memcpy(h, &n, sizeof n);
    h[31] = 0x5a;
}

static void test_add_get(void **state)
{
    struct sessions *t = sessions_new();
    struct sessions_entry e;
    unsigned char h1[32], h2[32], h3[32];

    hash_of(h1, 1);
    hash_of(h2, 2);
    hash_of(h3, 3);
    assert_int_equal(sessions_add(t, 7, h1, "o", "ann", 1000), 0);
    assert_int_equal(sessions_add(t, 8, h2, "o", "bob", 2000), 0);
    assert_int_equal(sessions_count(t), 2);

    memset(&e, 0, sizeof e);
    assert_int_equal(sessions_get_by_hash(t, h1, 999, &e), 0);
    assert_int_equal(e.id, 7);
    assert_string_equal(e.org, "o");
    assert_string_equal(e.user, "ann");
    assert_int_equal(e.expires_ms, 1000);
    assert_memory_equal(e.hash, h1, 32);
    memset(&e, 0, sizeof e);
    assert_int_equal(sessions_get_by_id(t, 8, 0, &e), 0);
    assert_string_equal(e.user, "bob");
    assert_memory_equal(e.hash, h2, 32);

    /* Absent. */
    assert_int_equal(sessions_get_by_hash(t, h3, 0, &e), SESSIONS_ENOENT);
    assert_int_equal(sessions_get_by_id(t, 9, 0, &e), SESSIONS_ENOENT);
    assert_int_equal(sessions_get_by_hash(t, NULL, 0, &e), SESSIONS_ENOENT);

    /* A taken id or hash is refused and changes nothing. */
    assert_int_equal(sessions_add(t, 7, h3, "o", "cy", 5000),
                     SESSIONS_EEXIST);
    assert_int_equal(sessions_add(t, 9, h1, "o", "cy", 5000),
                     SESSIONS_EEXIST);
    assert_int_equal(sessions_count(t), 2);
    assert_int_equal(sessions_get_by_hash(t, h3, 0, &e), SESSIONS_ENOENT);
    assert_int_equal(sessions_get_by_id(t, 9, 0, &e), SESSIONS_ENOENT);
    sessions_free(t);
    sessions_free(NULL);
    (void)state;
}

static void test_invalid(void **state)
{
    struct sessions *t = sessions_new();
    unsigned char h[32];
    char big[SESSIONS_ID_MAX + 2];
    char max[SESSIONS_ID_MAX + 1];
    struct sessions_entry e;

    hash_of(h, 1);
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    memset(max, 'y', sizeof max - 1);
    max[sizeof max - 1] = '\0';
    assert_int_equal(sessions_add(t, 0, h, "o", "u", 1), SESSIONS_EINVAL);
    assert_int_equal(sessions_add(t, -1, h, "o", "u", 1), SESSIONS_EINVAL);
    assert_int_equal(sessions_add(t, 1, NULL, "o", "u", 1), SESSIONS_EINVAL);
    assert_int_equal(sessions_add(t, 1, h, "", "u", 1), SESSIONS_EINVAL);
    assert_int_equal(sessions_add(t, 1, h, "o", NULL, 1), SESSIONS_EINVAL);
    assert_int_equal(sessions_add(t, 1, h, big, "u", 1), SESSIONS_EINVAL);
    assert_int_equal(sessions_add(t, 1, h, "o", big, 1), SESSIONS_EINVAL);
    assert_int_equal(sessions_count(t), 0);
    /* The longest ids fit whole. */
    assert_int_equal(sessions_add(t, 1, h, max, max, 10), 0);
    assert_int_equal(sessions_get_by_id(t, 1, 0, &e), 0);
    assert_string_equal(e.org, max);
    assert_string_equal(e.user, max);
    assert_int_equal(sessions_user_ids(t, max, max, 0, NULL, 0), 1);
    assert_int_equal(sessions_user_ids(t, big, max, 0, NULL, 0), 0);
    assert_string_equal(sessions_strerror(SESSIONS_EEXIST),
                        "session already exists");
    sessions_free(t);
    (void)state;
}

/* store.h: a session is expired at exactly expires_ms. */
static void test_expiry_and_purge(void **state)
{
    struct sessions *t = sessions_new();
    struct sessions_entry e;
    unsigned char h1[32], h2[32], h3[32];

    hash_of(h1, 1);
    hash_of(h2, 2);
    hash_of(h3, 3);
    assert_int_equal(sessions_add(t, 1, h1, "o", "ann", 10000), 0);
    assert_int_equal(sessions_add(t, 2, h2, "o", "ann", 5000), 0);
    assert_int_equal(sessions_add(t, 3, h3, "o", "bob", 20000), 0);

    assert_int_equal(sessions_get_by_hash(t, h1, 9999, &e), 0);
    assert_int_equal(sessions_get_by_hash(t, h1, 10000, &e),
                     SESSIONS_ENOENT);
    assert_int_equal(sessions_get_by_id(t, 1, 10000, &e), SESSIONS_ENOENT);
    /* Expired entries stay (and keep their id and hash taken) until
     * purged. */
    assert_int_equal(sessions_count(t), 3);
    assert_int_equal(sessions_add(t, 1, h1, "o", "ann", 99999),
                     SESSIONS_EEXIST);

    assert_int_equal(sessions_purge(t, 10000), 2);
    assert_int_equal(sessions_purge(t, 10000), 0);
    assert_int_equal(sessions_count(t), 1);
    assert_int_equal(sessions_get_by_hash(t, h1, 0, &e), SESSIONS_ENOENT);
    assert_int_equal(sessions_get_by_id(t, 2, 0, &e), SESSIONS_ENOENT);
    assert_int_equal(sessions_user_ids(t, "o", "ann", 0, NULL, 0), 0);
    assert_int_equal(sessions_get_by_id(t, 3, 19999, &e), 0);
    /* After a purge, the id and hash are free again. */
    assert_int_equal(sessions_add(t, 1, h1, "o", "ann", 99999), 0);
    sessions_free(t);
    (void)state;
}

static void test_delete(void **state)
{
    struct sessions *t = sessions_new();
    struct sessions_entry e;
    unsigned char h1[32], h2[32];
    int64_t ids[4];

    hash_of(h1, 1);
    hash_of(h2, 2);
    assert_int_equal(sessions_add(t, 1, h1, "o", "ann", 100), 0);
    assert_int_equal(sessions_add(t, 2, h2, "o", "ann", 100), 0);
    assert_int_equal(sessions_delete(t, 1), 0);
    assert_int_equal(sessions_delete(t, 1), SESSIONS_ENOENT);
    assert_int_equal(sessions_get_by_hash(t, h1, 0, &e), SESSIONS_ENOENT);
    assert_int_equal(sessions_get_by_id(t, 1, 0, &e), SESSIONS_ENOENT);
    assert_int_equal(sessions_user_ids(t, "o", "ann", 0, ids, 4), 1);
    assert_int_equal(ids[0], 2);
    /* An expired entry can be deleted too. */
    assert_int_equal(sessions_delete(t, 2), 0);
    assert_int_equal(sessions_count(t), 0);
    assert_int_equal(sessions_user_ids(t, "o", "ann", 0, ids, 4), 0);
    sessions_free(t);
    (void)state;
}

/* A user's live ids come newest (highest id) first, whatever the order of
 * adding, and the count goes past cap for trimming to max_sessions. */
static void test_user_ids(void **state)
{
    struct sessions *t = sessions_new();
    unsigned char h[32];
    int64_t ids[8];
    const int64_t add[] = {5, 2, 9, 7, 1};
    const int64_t exp[] = {100, 100, 50, 100, 100};

    for (size_t i = 0; i < 5; i++) {
        hash_of(h, (int)add[i]);
        assert_int_equal(sessions_add(t, add[i], h, "o", "ann", exp[i]), 0);
    }
    /* Other users, same org and same user id in another org, apart. */
    hash_of(h, 100);
    assert_int_equal(sessions_add(t, 100, h, "o", "bob", 100), 0);
    hash_of(h, 101);
    assert_int_equal(sessions_add(t, 101, h, "p", "ann", 100), 0);
    /* "o" + "ann" must not meet "oa" + "nn" in the user key. */
    hash_of(h, 102);
    assert_int_equal(sessions_add(t, 102, h, "oa", "nn", 100), 0);

    assert_int_equal(sessions_user_ids(t, "o", "ann", 0, ids, 8), 5);
    assert_int_equal(ids[0], 9);
    assert_int_equal(ids[1], 7);
    assert_int_equal(ids[2], 5);
    assert_int_equal(ids[3], 2);
    assert_int_equal(ids[4], 1);
    /* Session 9 expires at 50. */
    memset(ids, 0, sizeof ids);
    assert_int_equal(sessions_user_ids(t, "o", "ann", 50, ids, 2), 4);
    assert_int_equal(ids[0], 7);
    assert_int_equal(ids[1], 5);
    assert_int_equal(ids[2], 0); /* past cap: untouched */
    assert_int_equal(sessions_user_ids(t, "o", "ann", 50, NULL, 0), 4);
    assert_int_equal(sessions_user_ids(t, "o", "bob", 0, ids, 8), 1);
    assert_int_equal(ids[0], 100);
    assert_int_equal(sessions_user_ids(t, "p", "ann", 0, ids, 8), 1);
    assert_int_equal(ids[0], 101);
    assert_int_equal(sessions_user_ids(t, "oa", "nn", 0, ids, 8), 1);
    assert_int_equal(ids[0], 102);
    assert_int_equal(sessions_user_ids(t, "o", "nobody", 0, ids, 8), 0);
    /* Deleting from the middle keeps the order. */
    assert_int_equal(sessions_delete(t, 5), 0);
    assert_int_equal(sessions_user_ids(t, "o", "ann", 0, ids, 8), 4);
    assert_int_equal(ids[0], 9);
    assert_int_equal(ids[1], 7);
    assert_int_equal(ids[2], 2);
    assert_int_equal(ids[3], 1);
    sessions_free(t);
    (void)state;
}

/* 20,000 sessions over 500 users: every lookup finds its own, purge and
 * delete leave exactly the rest, and sessions_free releases everything
 * (ASan's leak check). */
static void test_many(void **state)
{
    enum { N = 20000, USERS = 500 };
    struct sessions *t = sessions_new();
    struct sessions_entry e;
    unsigned char h[32];
    char user[32];
    int64_t ids[64];

    for (int i = 1; i <= N; i++) {
        hash_of(h, i);
        snprintf(user, sizeof user, "u%d", i % USERS);
        assert_int_equal(sessions_add(t, i, h, "o", user, i % 2 ? 100 : 200),
                         0);
    }
    assert_int_equal(sessions_count(t), N);
    for (int i = 1; i <= N; i++) {
        hash_of(h, i);
        assert_int_equal(sessions_get_by_hash(t, h, 0, &e), 0);
        assert_int_equal(e.id, i);
        snprintf(user, sizeof user, "u%d", i % USERS);
        assert_string_equal(e.user, user);
    }
    assert_int_equal(sessions_user_ids(t, "o", "u7", 0, ids, 64),
                     N / USERS);
    for (int k = 1; k < N / USERS; k++)
        assert_true(ids[k - 1] > ids[k]);
    /* The odd ids expire at 100. */
    assert_int_equal(sessions_purge(t, 100), N / 2);
    assert_int_equal(sessions_count(t), N / 2);
    for (int i = 2; i <= N; i += 4)
        assert_int_equal(sessions_delete(t, i), 0);
    assert_int_equal(sessions_count(t), N / 4);
    for (int i = 1; i <= N; i++) {
        hash_of(h, i);
        assert_int_equal(sessions_get_by_hash(t, h, 0, &e),
                         i % 4 == 0 ? 0 : SESSIONS_ENOENT);
    }
    sessions_free(t);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_get),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_expiry_and_purge),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_user_ids),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
