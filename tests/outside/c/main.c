/* Outside-user check (tests/outside/run.sh): built against an installed
 * libdbkv (pkg-config dbkv), shared and static. Writes a value, one with a
 * TTL, a counter and a lock into DATA_DIR, closes, reopens and checks they
 * came back. Prints "ok c" and exits 0, or names the mismatch and exits 1.
 *
 *   usage: main DATA_DIR   (DATA_DIR must not exist yet or be empty)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dbkv.h>

#define S(str) (const uint8_t *)(str), strlen(str)

static int failures = 0;

static void expect_rc(const char *what, int got, int want) {
    if (got != want) {
        fprintf(stderr, "c: %s returned %d (%s), want %d (%s); last error: %s\n", what, got,
                dbkv_strerror(got), want, dbkv_strerror(want), dbkv_last_error());
        failures++;
    }
}

static void check(const char *what, int ok) {
    if (!ok) {
        fprintf(stderr, "c: mismatch: %s\n", what);
        failures++;
    }
}

static dbkv *open_dir(const char *dir) {
    dbkv_options *opts = NULL;
    dbkv *db = NULL;
    int rc = dbkv_options_new(&opts);
    if (rc == DBKV_OK) rc = dbkv_options_set_data_dir(opts, dir);
    if (rc == DBKV_OK) rc = dbkv_open(opts, &db);
    dbkv_options_free(opts);
    if (rc != DBKV_OK) {
        fprintf(stderr, "c: cannot open %s: %s (%s)\n", dir, dbkv_strerror(rc), dbkv_last_error());
        exit(1);
    }
    return db;
}

/* Whether key holds exactly want. */
static int value_is(dbkv *db, const char *key, const char *want) {
    uint8_t *val = NULL;
    size_t vlen = 0;
    int rc = dbkv_get(db, S(key), &val, &vlen);
    int same;
    if (rc != DBKV_OK) {
        fprintf(stderr, "c: get %s: %s\n", key, dbkv_strerror(rc));
        return 0;
    }
    same = vlen == strlen(want) && memcmp(val, want, vlen) == 0;
    if (!same) fprintf(stderr, "c: get %s = \"%.*s\", want \"%s\"\n", key, (int)vlen, (const char *)val, want);
    dbkv_free(val);
    return same;
}

int main(int argc, char **argv) {
    dbkv *db;
    int64_t n = 0, ttl = 0;
    uint64_t fence = 0, fence2 = 0, count = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: %s DATA_DIR\n", argv[0]);
        return 2;
    }

    db = open_dir(argv[1]);
    expect_rc("set greeting", dbkv_set(db, S("greeting"), S("hello from c"), 0), DBKV_OK);
    expect_rc("set session (TTL 1 h)", dbkv_set(db, S("session"), S("user-7"), 3600 * 1000), DBKV_OK);
    expect_rc("incr counter", dbkv_incr(db, S("counter"), 1, &n), DBKV_OK);
    expect_rc("incr counter", dbkv_incr(db, S("counter"), 41, &n), DBKV_OK);
    check("counter == 42 after incr 1, 41", n == 42);
    expect_rc("lock", dbkv_lock(db, S("lock:job"), S("worker-a"), 60 * 1000, &fence), DBKV_OK);
    check("fence > 0", fence > 0);
    expect_rc("close", dbkv_close(db), DBKV_OK);

    db = open_dir(argv[1]);
    check("greeting came back", value_is(db, "greeting", "hello from c"));
    check("session came back", value_is(db, "session", "user-7"));
    expect_rc("ttl session", dbkv_ttl(db, S("session"), &ttl), DBKV_OK);
    check("session TTL in (0, 1 h]", ttl > 0 && ttl <= 3600 * 1000);
    check("counter came back as 42", value_is(db, "counter", "42"));
    expect_rc("incr counter after reopen", dbkv_incr(db, S("counter"), 1, &n), DBKV_OK);
    check("counter == 43", n == 43);
    check("lock:job held by worker-a", value_is(db, "lock:job", "worker-a"));
    expect_rc("lock by worker-b while worker-a holds it", dbkv_lock(db, S("lock:job"), S("worker-b"), 1000, NULL), DBKV_LOCKED);
    expect_rc("lock again by worker-a", dbkv_lock(db, S("lock:job"), S("worker-a"), 1000, &fence2), DBKV_OK);
    check("fencing token grew across the restart", fence2 > fence);
    expect_rc("unlock", dbkv_unlock(db, S("lock:job"), S("worker-a")), DBKV_OK);
    expect_rc("count", dbkv_count(db, &count), DBKV_OK);
    check("3 keys left (greeting, session, counter)", count == 3);
    expect_rc("close", dbkv_close(db), DBKV_OK);

    if (failures != 0) {
        fprintf(stderr, "c: %d check(s) failed\n", failures);
        return 1;
    }
    printf("ok c (libdbkv %s)\n", dbkv_version());
    return 0;
}
