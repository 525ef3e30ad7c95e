/*
 * Fenced writes through the C API (dbkv_set_fenced, dbkv_delete_fenced):
 * a write lands only while the lock is held with exactly the caller's
 * fencing token, so a holder that paused past its lease cannot overwrite
 * the work of the owner who took the lock after it. In-memory handles;
 * test_persist.c checks that fenced writes and tokens survive a reopen.
 * Bad keys for both functions are covered by test_api.c's key table.
 */
#define _XOPEN_SOURCE 700

#include "testutil.h"

#define LOCK_TTL_MS 60000

static dbkv *open_mem(void) {
    dbkv *db = NULL;
    if (!EXPECT_OK(dbkv_open(NULL, &db))) return NULL;
    return db;
}

static uint64_t count_of(const dbkv *db) {
    uint64_t n = 0;
    EXPECT_OK(dbkv_count(db, &n));
    return n;
}

static int64_t ttl_of(const dbkv *db, const char *key) {
    int64_t ms = 0;
    EXPECT_OK(dbkv_ttl(db, S(key), &ms));
    return ms;
}

/* Takes `lock` for `owner` and returns the token (0, never granted, on failure). */
static uint64_t take(const dbkv *db, const char *lock, const char *owner, uint64_t ttl_ms) {
    uint64_t token = 0;
    EXPECT_OK(dbkv_lock(db, S(lock), S(owner), ttl_ms, &token));
    return token;
}

/* ------------------------------------------------------------------ */

static void test_current_token_writes(void) {
    dbkv *db = open_mem();
    uint64_t t;
    int64_t lock_ttl;
    REQUIRE(db);
    t = take(db, "L", "a", LOCK_TTL_MS);
    REQUIRE(t > 0);

    EXPECT_OK(dbkv_set_fenced(db, S("L"), t, S("res"), S("v1"), 0));
    EXPECT(tu_value_is(db, "res", "v1"));
    EXPECT(ttl_of(db, "res") == -1);

    /* Like dbkv_set: the value and the TTL are replaced. */
    EXPECT_OK(dbkv_set_fenced(db, S("L"), t, S("res"), S("v2"), 30000));
    EXPECT(tu_value_is(db, "res", "v2"));
    EXPECT(ttl_of(db, "res") > 0 && ttl_of(db, "res") <= 30000);
    EXPECT_OK(dbkv_set_fenced(db, S("L"), t, S("res"), S("v3"), 0));
    EXPECT(ttl_of(db, "res") == -1);

    /* An empty value may come as NULL. */
    EXPECT_OK(dbkv_set_fenced(db, S("L"), t, S("empty"), NULL, 0, 0));
    EXPECT_RC(dbkv_exists(db, S("empty")), DBKV_OK);

    /* The lock is left alone: same owner, same TTL, same token. */
    EXPECT(tu_value_is(db, "L", "a"));
    lock_ttl = ttl_of(db, "L");
    EXPECT(lock_ttl > 0 && lock_ttl <= LOCK_TTL_MS);
    EXPECT_OK(dbkv_set_fenced(db, S("L"), t, S("res"), S("v4"), 0));
    EXPECT(count_of(db) == 3);
    EXPECT_OK(dbkv_close(db));
}

static void test_old_token_refused(void) {
    char saved[512];
    dbkv *db = open_mem();
    uint64_t t1, t2;
    REQUIRE(db);
    t1 = take(db, "L", "a", LOCK_TTL_MS);
    EXPECT_OK(dbkv_set_fenced(db, S("L"), t1, S("res"), S("first"), 0));

    /* Relocking as the same owner issues a new token; the old one is stale. */
    t2 = take(db, "L", "a", LOCK_TTL_MS);
    REQUIRE(t2 > t1);
    EXPECT_RC(dbkv_set_fenced(db, S("L"), t1, S("res"), S("old"), 0), DBKV_STALE_TOKEN);
    EXPECT(tu_value_is(db, "res", "first"));
    EXPECT_RC(dbkv_set_fenced(db, S("L"), t1, S("new-key"), S("old"), 0), DBKV_STALE_TOKEN);
    EXPECT_RC(dbkv_exists(db, S("new-key")), DBKV_NOT_FOUND);

    /* Only the exact token counts: not a later one, not 0 (never granted). */
    EXPECT_RC(dbkv_set_fenced(db, S("L"), t2 + 1, S("res"), S("x"), 0), DBKV_STALE_TOKEN);
    EXPECT_RC(dbkv_set_fenced(db, S("L"), 0, S("res"), S("x"), 0), DBKV_STALE_TOKEN);
    EXPECT_RC(dbkv_set_fenced(db, S("L"), UINT64_MAX, S("res"), S("x"), 0), DBKV_STALE_TOKEN);
    /* A token is bound to its lock key. */
    EXPECT_RC(dbkv_set_fenced(db, S("other-lock"), t2, S("res"), S("x"), 0), DBKV_STALE_TOKEN);
    EXPECT(tu_value_is(db, "res", "first"));

    EXPECT_OK(dbkv_set_fenced(db, S("L"), t2, S("res"), S("second"), 0));
    EXPECT(tu_value_is(db, "res", "second"));

    /* STALE_TOKEN is an outcome, not an error: dbkv_last_error is untouched. */
    EXPECT_RC(dbkv_set_fenced(db, S("L"), t2, S(""), S("v"), 0), DBKV_ERR_INVALID_ARGUMENT);
    snprintf(saved, sizeof saved, "%s", dbkv_last_error());
    EXPECT_RC(dbkv_set_fenced(db, S("L"), t1, S("res"), S("x"), 0), DBKV_STALE_TOKEN);
    EXPECT_RC(dbkv_delete_fenced(db, S("L"), t1, S("res")), DBKV_STALE_TOKEN);
    EXPECT(strcmp(dbkv_last_error(), saved) == 0);
    EXPECT_OK(dbkv_close(db));
}

/* The story fencing tokens exist for: holder A stalls (a GC pause, a
 * swapped-out VM) past its lease, B takes the lock and writes, then A wakes
 * up and writes as if it still held the lock. */
static void test_paused_holder_is_refused(void) {
    dbkv *db = open_mem();
    uint64_t t1, t2;
    REQUIRE(db);
    /* No write by A inside its 50 ms lease: on a loaded machine the next
     * call could already be past it. test_current_token_writes covers that. */
    t1 = take(db, "lock:job", "A", 50);
    REQUIRE(t1 > 0);

    tu_sleep_ms(150); /* A is paused; its lease runs out */
    /* Expired, even before anyone else takes the lock. */
    EXPECT_RC(dbkv_set_fenced(db, S("lock:job"), t1, S("job:result"), S("A-late"), 0), DBKV_STALE_TOKEN);

    t2 = take(db, "lock:job", "B", LOCK_TTL_MS);
    EXPECT(t2 > t1);
    EXPECT_OK(dbkv_set_fenced(db, S("lock:job"), t2, S("job:result"), S("B"), 0));

    /* A wakes up and writes with its old token: refused, B's value stays. */
    EXPECT_RC(dbkv_set_fenced(db, S("lock:job"), t1, S("job:result"), S("A"), 0), DBKV_STALE_TOKEN);
    EXPECT_RC(dbkv_delete_fenced(db, S("lock:job"), t1, S("job:result")), DBKV_STALE_TOKEN);
    EXPECT(tu_value_is(db, "job:result", "B"));
    EXPECT(tu_value_is(db, "lock:job", "B"));
    EXPECT_OK(dbkv_close(db));
}

static void test_delete_fenced(void) {
    dbkv *db = open_mem();
    uint64_t t1, t2;
    REQUIRE(db);
    t1 = take(db, "L", "a", LOCK_TTL_MS);
    EXPECT_OK(dbkv_set(db, S("res"), S("v"), 0));

    EXPECT_OK(dbkv_delete_fenced(db, S("L"), t1, S("res")));
    EXPECT_RC(dbkv_exists(db, S("res")), DBKV_NOT_FOUND);
    EXPECT_RC(dbkv_delete_fenced(db, S("L"), t1, S("res")), DBKV_NOT_FOUND);
    EXPECT_RC(dbkv_delete_fenced(db, S("L"), t1, S("never")), DBKV_NOT_FOUND);

    /* A stale token is reported as such whether or not the key exists. */
    t2 = take(db, "L", "a", LOCK_TTL_MS);
    EXPECT_OK(dbkv_set(db, S("res"), S("v"), 0));
    EXPECT_RC(dbkv_delete_fenced(db, S("L"), t1, S("res")), DBKV_STALE_TOKEN);
    EXPECT(tu_value_is(db, "res", "v"));
    EXPECT_RC(dbkv_delete_fenced(db, S("L"), t1, S("never")), DBKV_STALE_TOKEN);
    EXPECT_OK(dbkv_delete_fenced(db, S("L"), t2, S("res")));

    /* Deleting the lock key itself releases the lock: the next owner gets it. */
    EXPECT_OK(dbkv_delete_fenced(db, S("L"), t2, S("L")));
    EXPECT_RC(dbkv_exists(db, S("L")), DBKV_NOT_FOUND);
    EXPECT_RC(dbkv_delete_fenced(db, S("L"), t2, S("L")), DBKV_STALE_TOKEN);
    EXPECT(take(db, "L", "b", LOCK_TTL_MS) > t2);
    EXPECT(count_of(db) == 1);
    EXPECT_OK(dbkv_close(db));
}

static void test_stale_after_unlock_and_extend_keeps_token(void) {
    dbkv *db = open_mem();
    uint64_t t1, t2;
    REQUIRE(db);
    t1 = take(db, "L", "a", LOCK_TTL_MS);
    EXPECT_OK(dbkv_unlock(db, S("L"), S("a")));
    EXPECT_RC(dbkv_set_fenced(db, S("L"), t1, S("res"), S("v"), 0), DBKV_STALE_TOKEN);
    EXPECT_RC(dbkv_delete_fenced(db, S("L"), t1, S("res")), DBKV_STALE_TOKEN);
    EXPECT_RC(dbkv_exists(db, S("res")), DBKV_NOT_FOUND);

    /* The same owner locking again gets a new token; the released one stays stale. */
    t2 = take(db, "L", "a", 500);
    EXPECT(t2 > t1);
    EXPECT_RC(dbkv_set_fenced(db, S("L"), t1, S("res"), S("v"), 0), DBKV_STALE_TOKEN);

    /* Extending the lease keeps the token valid past the original expiry. */
    EXPECT_OK(dbkv_extend_lock(db, S("L"), S("a"), LOCK_TTL_MS));
    tu_sleep_ms(700);
    EXPECT_OK(dbkv_set_fenced(db, S("L"), t2, S("res"), S("v"), 0));

    /* A plain dbkv_set over the lock key drops its token: fenced writes stop. */
    EXPECT_OK(dbkv_set(db, S("L"), S("a"), 0));
    EXPECT_RC(dbkv_set_fenced(db, S("L"), t2, S("res"), S("w"), 0), DBKV_STALE_TOKEN);
    /* So does a fenced write to the lock key itself. */
    t1 = take(db, "M", "a", LOCK_TTL_MS);
    EXPECT_OK(dbkv_set_fenced(db, S("M"), t1, S("M"), S("a"), 0));
    EXPECT_RC(dbkv_set_fenced(db, S("M"), t1, S("res"), S("w"), 0), DBKV_STALE_TOKEN);
    EXPECT(tu_value_is(db, "res", "v"));
    EXPECT_OK(dbkv_close(db));
}

/* NULL where a pointer is required, and other bad arguments: refused with
 * the argument named, before the token is looked at, changing nothing. */
static void test_bad_arguments_change_nothing(void) {
    dbkv *db = open_mem();
    uint64_t t;
    int64_t lock_ttl;
    REQUIRE(db);
    t = take(db, "L", "a", LOCK_TTL_MS);
    EXPECT_OK(dbkv_set_fenced(db, S("L"), t, S("res"), S("keep"), 0));
    lock_ttl = ttl_of(db, "L");

    EXPECT_RC(dbkv_set_fenced(NULL, S("L"), t, S("res"), S("x"), 0), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("db");
    EXPECT_RC(dbkv_set_fenced(db, NULL, 1, t, S("res"), S("x"), 0), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("lock_key");
    EXPECT_RC(dbkv_set_fenced(db, S("L"), t, NULL, 3, S("x"), 0), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("key");
    EXPECT_RC(dbkv_set_fenced(db, S("L"), t, S("res"), NULL, 1, 0), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("val");
    EXPECT_RC(dbkv_set_fenced(db, S("L"), t, S("res"), (const uint8_t *)"x", SIZE_MAX, 0), DBKV_ERR_TOO_LARGE);
    EXPECT_RC(dbkv_set_fenced(db, (const uint8_t *)"", 0, t, S("res"), S("x"), 0), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("empty");
    EXPECT_RC(dbkv_set_fenced(db, S("L"), t, S("res"), S("x"), UINT64_MAX), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("ttl");
    /* With a stale token too: the argument error wins. */
    EXPECT_RC(dbkv_set_fenced(db, S("L"), t + 1, S("res"), NULL, 1, 0), DBKV_ERR_INVALID_ARGUMENT);

    EXPECT_RC(dbkv_delete_fenced(NULL, S("L"), t, S("res")), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("db");
    EXPECT_RC(dbkv_delete_fenced(db, NULL, 1, t, S("res")), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("lock_key");
    EXPECT_RC(dbkv_delete_fenced(db, S("L"), t, NULL, 3), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("key");
    EXPECT_RC(dbkv_delete_fenced(db, NULL, 0, t, NULL, 0), DBKV_ERR_INVALID_ARGUMENT);

    EXPECT(tu_value_is(db, "res", "keep"));
    EXPECT(tu_value_is(db, "L", "a"));
    EXPECT(ttl_of(db, "L") <= lock_ttl);
    EXPECT(count_of(db) == 2);
    /* The token is still good after all those refusals. */
    EXPECT_OK(dbkv_set_fenced(db, S("L"), t, S("res"), S("after"), 0));
    EXPECT_OK(dbkv_close(db));
}

static void test_value_over_max_is_too_large(void) {
    dbkv_options *o = NULL;
    dbkv *db = NULL;
    uint8_t big[9];
    uint64_t t;
    memset(big, 'B', sizeof big);
    REQUIRE_OK(dbkv_options_new(&o));
    EXPECT_OK(dbkv_options_set_max_value_bytes(o, 8));
    EXPECT_OK(dbkv_open(o, &db));
    dbkv_options_free(o);
    REQUIRE(db);
    t = take(db, "L", "a", LOCK_TTL_MS);
    EXPECT_OK(dbkv_set_fenced(db, S("L"), t, S("res"), big, 8, 0));
    EXPECT_RC(dbkv_set_fenced(db, S("L"), t, S("res"), big, 9, 0), DBKV_ERR_TOO_LARGE);
    EXPECT_LAST_ERROR_HAS("value");
    EXPECT_RC(dbkv_set_fenced(db, S("L"), t + 1, S("res"), big, 9, 0), DBKV_ERR_TOO_LARGE);
    EXPECT(tu_value_is(db, "res", "BBBBBBBB"));
    EXPECT_OK(dbkv_close(db));
}

/* ------------------------------------------------------------------ */

int main(void) {
    RUN(test_current_token_writes);
    RUN(test_old_token_refused);
    RUN(test_paused_holder_is_refused);
    RUN(test_delete_fenced);
    RUN(test_stale_after_unlock_and_extend_keeps_token);
    RUN(test_bad_arguments_change_nothing);
    RUN(test_value_over_max_is_too_large);
    return tu_finish("test_fence");
}
