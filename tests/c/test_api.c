/*
 * The C contract of include/dbkv.h, checked from C: every export, every
 * status each one documents, bad input everywhere, and the rule that a
 * rejected call changes nothing and writes no output. In-memory handles
 * only; persistence lives in test_persist.c.
 */
#define _XOPEN_SOURCE 700

#include <limits.h>

#include "testutil.h"

/* Output sentinels: a rejected call must leave these exactly as they were. */
static uint8_t sentinel_byte[1];
#define SENT_PTR (sentinel_byte)
#define SENT_LEN ((size_t)0xDEADBEEF)
#define SENT_I64 ((int64_t)0x5EC7E1)
#define SENT_U64 ((uint64_t)0xFEEDFACECAFEULL)

/* One byte over the key limit, plus room for a NUL. */
static uint8_t big_key[DBKV_MAX_KEY_BYTES + 2];

static dbkv *open_mem(void) {
    dbkv *db = NULL;
    if (!EXPECT_OK(dbkv_open(NULL, &db))) return NULL;
    return db;
}

static dbkv *open_with_max_value(uint64_t max) {
    dbkv_options *o = NULL;
    dbkv *db = NULL;
    if (!EXPECT_OK(dbkv_options_new(&o))) return NULL;
    EXPECT_OK(dbkv_options_set_max_value_bytes(o, max));
    EXPECT_OK(dbkv_open(o, &db));
    dbkv_options_free(o);
    return db;
}

static uint64_t count_of(const dbkv *db) {
    uint64_t n = SENT_U64;
    EXPECT_OK(dbkv_count(db, &n));
    return n;
}

/* ------------------------------------------------------------------ */

/* Must run before anything fails on the main thread. */
static void test_last_error_empty_before_any_failure(void) {
    const char *le = dbkv_last_error();
    REQUIRE(le != NULL);
    EXPECT(strcmp(le, "") == 0);
}

static void test_version_matches_header(void) {
    char want[64];
    const char *v = dbkv_version();
    REQUIRE(v != NULL);
    snprintf(want, sizeof want, "%d.%d.%d", DBKV_VERSION_MAJOR, DBKV_VERSION_MINOR, DBKV_VERSION_PATCH);
    if (!EXPECT(strcmp(v, want) == 0)) fprintf(stderr, "    dbkv_version() = \"%s\", header says %s\n", v, want);
    EXPECT(dbkv_version() == v); /* static string, not a fresh allocation */
}

static void test_strerror_every_code(void) {
    static const int codes[] = {DBKV_OK, DBKV_NOT_FOUND, DBKV_EXISTS, DBKV_LOCKED, DBKV_NOT_OWNER,
                                DBKV_MISMATCH, DBKV_STALE_TOKEN, DBKV_ERR_INVALID_ARGUMENT,
                                DBKV_ERR_TOO_LARGE, DBKV_ERR_NOT_INTEGER, DBKV_ERR_OVERFLOW,
                                DBKV_ERR_BUFFER_TOO_SMALL, DBKV_ERR_IO, DBKV_ERR_CORRUPTION,
                                DBKV_ERR_BUSY, DBKV_ERR_FAILED, DBKV_ERR_INTERNAL, DBKV_ERR_WRONG_TYPE};
    static const int unknown[] = {7, 8, 100, -12, -100, INT_MIN, INT_MAX};
    const size_t n = sizeof codes / sizeof codes[0];
    size_t i, j;
    for (i = 0; i < n; i++) {
        const char *s = dbkv_strerror(codes[i]);
        if (!EXPECT(s != NULL && s[0] != '\0' && strcmp(s, "unknown status") != 0)) {
            fprintf(stderr, "    code %d\n", codes[i]);
            continue;
        }
        /* Distinct texts: a program logging strerror must be able to tell codes apart. */
        for (j = 0; j < i; j++) {
            if (!EXPECT(strcmp(s, dbkv_strerror(codes[j])) != 0))
                fprintf(stderr, "    codes %d and %d share \"%s\"\n", codes[i], codes[j], s);
        }
    }
    for (i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *s = dbkv_strerror(unknown[i]);
        if (!EXPECT(s != NULL && strcmp(s, "unknown status") == 0))
            fprintf(stderr, "    code %d gave \"%s\"\n", unknown[i], s ? s : "(NULL)");
    }
}

static void test_last_error_semantics(void) {
    char saved[512];
    dbkv *db = open_mem();
    uint8_t *v = SENT_PTR;
    size_t vl = SENT_LEN;
    REQUIRE(db);

    EXPECT_RC(dbkv_get(db, (const uint8_t *)"", 0, &v, &vl), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("key");
    snprintf(saved, sizeof saved, "%s", dbkv_last_error());
    EXPECT(saved[0] != '\0');

    /* Successes and positive outcomes leave the message alone. */
    EXPECT_OK(dbkv_set(db, S("k"), S("v"), 0));
    EXPECT(strcmp(dbkv_last_error(), saved) == 0);
    EXPECT_RC(dbkv_get(db, S("missing"), &v, &vl), DBKV_NOT_FOUND);
    EXPECT_RC(dbkv_setnx(db, S("k"), S("w"), 0), DBKV_EXISTS);
    EXPECT_RC(dbkv_cas(db, S("k"), S("x"), S("y"), 0), DBKV_MISMATCH);
    EXPECT(strcmp(dbkv_last_error(), saved) == 0);

    /* A new failure replaces it and names the new problem. */
    EXPECT_RC(dbkv_close(NULL), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("db");
    EXPECT(strcmp(dbkv_last_error(), saved) != 0);
    EXPECT_RC(dbkv_incr(db, S("k"), 1, NULL), DBKV_ERR_NOT_INTEGER);
    EXPECT_LAST_ERROR_HAS("integer");
    EXPECT_OK(dbkv_close(db));
}

/* ------------------------------------------------------------------ */

static void test_options_null_and_free(void) {
    dbkv_options *o = (dbkv_options *)SENT_PTR;
    EXPECT_RC(dbkv_options_new(NULL), DBKV_ERR_INVALID_ARGUMENT);
    dbkv_options_free(NULL);
    EXPECT_RC(dbkv_options_set_data_dir(NULL, "/tmp"), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_options_set_shards(NULL, 4), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_options_set_max_value_bytes(NULL, 10), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_options_set_sync_mode(NULL, DBKV_SYNC_ALWAYS), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_options_set_sync_interval_ms(NULL, 10), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_options_set_wal_segment_bytes(NULL, 1 << 20), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_options_set_snapshot_interval_secs(NULL, 1), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_options_set_snapshot_ops(NULL, 1), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_options_set_snapshot_keep(NULL, 2), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_options_set_recovery_mode(NULL, DBKV_RECOVERY_ABSOLUTE), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("options");
    EXPECT(o == (dbkv_options *)SENT_PTR);
}

static void test_options_valid_values(void) {
    dbkv_options *o = NULL;
    dbkv *db = NULL;
    REQUIRE_OK(dbkv_options_new(&o));
    REQUIRE(o != NULL);
    EXPECT_OK(dbkv_options_set_shards(o, 1));
    EXPECT_OK(dbkv_options_set_shards(o, 2));
    EXPECT_OK(dbkv_options_set_shards(o, 65536));
    EXPECT_OK(dbkv_options_set_shards(o, 256));
    EXPECT_OK(dbkv_options_set_max_value_bytes(o, 0));
    EXPECT_OK(dbkv_options_set_max_value_bytes(o, DBKV_MAX_VALUE_BYTES_CAP));
    EXPECT_OK(dbkv_options_set_sync_mode(o, DBKV_SYNC_NONE));
    EXPECT_OK(dbkv_options_set_sync_mode(o, DBKV_SYNC_ALWAYS));
    EXPECT_OK(dbkv_options_set_sync_mode(o, DBKV_SYNC_INTERVAL));
    EXPECT_OK(dbkv_options_set_sync_interval_ms(o, 1));
    EXPECT_OK(dbkv_options_set_sync_interval_ms(o, 60000));
    EXPECT_OK(dbkv_options_set_wal_segment_bytes(o, 4096));
    EXPECT_OK(dbkv_options_set_wal_segment_bytes(o, (uint64_t)1 << 40));
    EXPECT_OK(dbkv_options_set_snapshot_interval_secs(o, 0));
    EXPECT_OK(dbkv_options_set_snapshot_interval_secs(o, 3600));
    EXPECT_OK(dbkv_options_set_snapshot_ops(o, 0));
    EXPECT_OK(dbkv_options_set_snapshot_ops(o, 10));
    EXPECT_OK(dbkv_options_set_snapshot_keep(o, 1));
    EXPECT_OK(dbkv_options_set_snapshot_keep(o, 1000));
    EXPECT_OK(dbkv_options_set_recovery_mode(o, DBKV_RECOVERY_ABSOLUTE));
    EXPECT_OK(dbkv_options_set_recovery_mode(o, DBKV_RECOVERY_SKIP_CORRUPTED));
    EXPECT_OK(dbkv_options_set_recovery_mode(o, DBKV_RECOVERY_POINT_IN_TIME));
    EXPECT_OK(dbkv_options_set_data_dir(o, NULL));
    /* Every boundary value above is usable together. */
    EXPECT_OK(dbkv_open(o, &db));
    dbkv_options_free(o);
    if (db) {
        EXPECT_OK(dbkv_set(db, S("k"), S("v"), 0));
        EXPECT(tu_value_is(db, "k", "v"));
        EXPECT_OK(dbkv_close(db));
    }
}

/* Every rejected setter must leave the options as they were. Only
 * max_value_bytes and data_dir are observable through an open in-memory
 * handle, so those are checked by behaviour; for the rest the handle must
 * still open (a half-applied invalid value would be refused by dbkv_open). */
static void test_options_invalid_values_leave_options_unchanged(void) {
    dbkv_options *o = NULL;
    dbkv *db = (dbkv *)SENT_PTR;
    uint8_t buf[32];
    REQUIRE_OK(dbkv_options_new(&o));
    EXPECT_OK(dbkv_options_set_max_value_bytes(o, 16));
    EXPECT_OK(dbkv_options_set_shards(o, 4));

    EXPECT_RC(dbkv_options_set_shards(o, 0), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("shards");
    EXPECT_RC(dbkv_options_set_shards(o, 3), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_options_set_shards(o, 1u << 17), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_options_set_shards(o, 65535), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_options_set_shards(o, UINT32_MAX), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_options_set_shards(o, 1u << 31), DBKV_ERR_INVALID_ARGUMENT);

    EXPECT_RC(dbkv_options_set_max_value_bytes(o, (uint64_t)DBKV_MAX_VALUE_BYTES_CAP + 1), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("max_value_bytes");
    EXPECT_RC(dbkv_options_set_max_value_bytes(o, UINT64_MAX), DBKV_ERR_INVALID_ARGUMENT);

    EXPECT_RC(dbkv_options_set_sync_mode(o, 3), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("sync");
    EXPECT_RC(dbkv_options_set_sync_mode(o, -1), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_options_set_sync_mode(o, INT_MIN), DBKV_ERR_INVALID_ARGUMENT);

    EXPECT_RC(dbkv_options_set_recovery_mode(o, 3), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("recovery");
    EXPECT_RC(dbkv_options_set_recovery_mode(o, -1), DBKV_ERR_INVALID_ARGUMENT);

    EXPECT_RC(dbkv_options_set_sync_interval_ms(o, 0), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("sync_interval");
    EXPECT_RC(dbkv_options_set_sync_interval_ms(o, 60001), DBKV_ERR_INVALID_ARGUMENT);

    EXPECT_RC(dbkv_options_set_wal_segment_bytes(o, 100), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("wal_segment");
    EXPECT_RC(dbkv_options_set_wal_segment_bytes(o, 4095), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_options_set_wal_segment_bytes(o, ((uint64_t)1 << 40) + 1), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_options_set_wal_segment_bytes(o, 0), DBKV_ERR_INVALID_ARGUMENT);

    EXPECT_RC(dbkv_options_set_snapshot_keep(o, 0), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("snapshot_keep");
    EXPECT_RC(dbkv_options_set_snapshot_keep(o, 1001), DBKV_ERR_INVALID_ARGUMENT);

    EXPECT_RC(dbkv_options_set_data_dir(o, ""), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("data_dir");

    REQUIRE_OK(dbkv_open(o, &db));
    /* Changing the options after open must not reach the handle (they are copied). */
    EXPECT_OK(dbkv_options_set_max_value_bytes(o, 1));
    dbkv_options_free(o);
    memset(buf, 'x', sizeof buf);
    EXPECT_OK(dbkv_set(db, S("k"), buf, 16, 0));
    EXPECT_RC(dbkv_set(db, S("k"), buf, 17, 0), DBKV_ERR_TOO_LARGE);
    /* "" was refused, so the handle is still in-memory. */
    EXPECT_RC(dbkv_snapshot(db), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_OK(dbkv_close(db));
}

static void test_open_close_bad_args(void) {
    dbkv_options *o = NULL;
    dbkv *db = NULL;
    EXPECT_RC(dbkv_open(NULL, NULL), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("out");
    REQUIRE_OK(dbkv_options_new(&o));
    EXPECT_RC(dbkv_open(o, NULL), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_OK(dbkv_open(o, &db));
    dbkv_options_free(o);
    EXPECT(db != NULL);
    if (db) EXPECT_OK(dbkv_close(db));
    EXPECT_RC(dbkv_close(NULL), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("db");
}

/* Closing must not wait out the expiry sweeper's interval: a close right
 * after open (a common pattern in tests and short-lived tools) used to block
 * for ~100 ms because the sweeper could miss the stop signal and sleep a
 * whole interval before noticing it. 20 cycles at ~100 ms each would take
 * ~2 s; a prompt close takes a few ms in total. */
static void test_close_is_prompt(void) {
    int64_t total = 0;
    int i;
    for (i = 0; i < 20; i++) {
        int64_t t0;
        dbkv *db = open_mem();
        REQUIRE(db);
        EXPECT_OK(dbkv_set(db, S("k"), S("v"), 0));
        t0 = tu_now_ms();
        EXPECT_OK(dbkv_close(db));
        total += tu_now_ms() - t0;
    }
    if (!EXPECT(total < 1000)) fprintf(stderr, "    20 dbkv_close calls took %lld ms\n", (long long)total);
}

static void test_free_functions_accept_null(void) {
    void *p = malloc(16);
    dbkv_free(NULL);
    dbkv_iter_free(NULL);
    dbkv_options_free(NULL);
    /* dbkv_free must be the C allocator's free: a malloc'd block goes through
     * it (a mismatch shows up as a crash here or an error under valgrind). */
    dbkv_free(p);
}

/* ------------------------------------------------------------------ */
/* Bad input for every keyed function, table-driven. Each wrapper pre-fills
 * its outputs with sentinels and flags any write on a non-OK status. */

static int outputs_touched;

static int op_set(const dbkv *db, const uint8_t *k, size_t n) { return dbkv_set(db, k, n, S("v"), 0); }
static int op_setnx(const dbkv *db, const uint8_t *k, size_t n) { return dbkv_setnx(db, k, n, S("v"), 0); }
static int op_cas(const dbkv *db, const uint8_t *k, size_t n) { return dbkv_cas(db, k, n, S("base"), S("v"), 0); }
static int op_delete(const dbkv *db, const uint8_t *k, size_t n) { return dbkv_delete(db, k, n); }
static int op_exists(const dbkv *db, const uint8_t *k, size_t n) { return dbkv_exists(db, k, n); }
static int op_expire(const dbkv *db, const uint8_t *k, size_t n) { return dbkv_expire(db, k, n, 1000); }
static int op_persist(const dbkv *db, const uint8_t *k, size_t n) { return dbkv_persist(db, k, n); }
static int op_unlock(const dbkv *db, const uint8_t *k, size_t n) { return dbkv_unlock(db, k, n, S("me")); }
static int op_extend(const dbkv *db, const uint8_t *k, size_t n) { return dbkv_extend_lock(db, k, n, S("me"), 1000); }
/* Fenced writes take two keys: the one under test is the written key, then the lock key. */
static int op_set_fenced(const dbkv *db, const uint8_t *k, size_t n) { return dbkv_set_fenced(db, S("fl"), 1, k, n, S("v"), 0); }
static int op_set_fenced_lock(const dbkv *db, const uint8_t *k, size_t n) { return dbkv_set_fenced(db, k, n, 1, S("fk"), S("v"), 0); }
static int op_delete_fenced(const dbkv *db, const uint8_t *k, size_t n) { return dbkv_delete_fenced(db, S("fl"), 1, k, n); }
static int op_delete_fenced_lock(const dbkv *db, const uint8_t *k, size_t n) { return dbkv_delete_fenced(db, k, n, 1, S("fk")); }

static int op_get(const dbkv *db, const uint8_t *k, size_t n) {
    uint8_t *v = SENT_PTR;
    size_t l = SENT_LEN;
    int rc = dbkv_get(db, k, n, &v, &l);
    if (rc == DBKV_OK) dbkv_free(v);
    else if (v != SENT_PTR || l != SENT_LEN) outputs_touched = 1;
    return rc;
}
static int op_get_into(const dbkv *db, const uint8_t *k, size_t n) {
    uint8_t buf[8];
    size_t l = SENT_LEN;
    int rc;
    memset(buf, 0xA5, sizeof buf);
    rc = dbkv_get_into(db, k, n, buf, sizeof buf, &l);
    if (rc != DBKV_OK && (l != SENT_LEN || buf[0] != 0xA5)) outputs_touched = 1;
    return rc;
}
static int op_incr(const dbkv *db, const uint8_t *k, size_t n) {
    int64_t out = SENT_I64;
    int rc = dbkv_incr(db, k, n, 1, &out);
    if (rc != DBKV_OK && out != SENT_I64) outputs_touched = 1;
    return rc;
}
static int op_decr(const dbkv *db, const uint8_t *k, size_t n) {
    int64_t out = SENT_I64;
    int rc = dbkv_decr(db, k, n, 1, &out);
    if (rc != DBKV_OK && out != SENT_I64) outputs_touched = 1;
    return rc;
}
static int op_ttl(const dbkv *db, const uint8_t *k, size_t n) {
    int64_t out = SENT_I64;
    int rc = dbkv_ttl(db, k, n, &out);
    if (rc != DBKV_OK && out != SENT_I64) outputs_touched = 1;
    return rc;
}
static int op_lock(const dbkv *db, const uint8_t *k, size_t n) {
    uint64_t fence = SENT_U64;
    int rc = dbkv_lock(db, k, n, S("me"), 1000, &fence);
    if (rc != DBKV_OK && fence != SENT_U64) outputs_touched = 1;
    return rc;
}
static int op_mset(const dbkv *db, const uint8_t *k, size_t n) {
    const uint8_t *keys[2];
    size_t klens[2];
    const uint8_t *vals[2];
    size_t vlens[2];
    /* A valid pair first: an invalid later key must stop the whole batch. */
    keys[0] = (const uint8_t *)"mset-ok";
    klens[0] = 7;
    keys[1] = k;
    klens[1] = n;
    vals[0] = vals[1] = (const uint8_t *)"v";
    vlens[0] = vlens[1] = 1;
    return dbkv_mset(db, keys, klens, vals, vlens, 2, 0);
}
static int op_mget(const dbkv *db, const uint8_t *k, size_t n) {
    const uint8_t *keys[2];
    size_t klens[2];
    uint8_t *vals[2];
    size_t vlens[2];
    int rc;
    keys[0] = (const uint8_t *)"base";
    klens[0] = 4;
    keys[1] = k;
    klens[1] = n;
    vals[0] = vals[1] = SENT_PTR;
    vlens[0] = vlens[1] = SENT_LEN;
    rc = dbkv_mget(db, keys, klens, 2, vals, vlens);
    if (rc == DBKV_OK) {
        dbkv_free(vals[0]);
        dbkv_free(vals[1]);
    } else if (vals[0] != SENT_PTR || vals[1] != SENT_PTR || vlens[0] != SENT_LEN || vlens[1] != SENT_LEN) {
        outputs_touched = 1;
    }
    return rc;
}
static int op_mdel(const dbkv *db, const uint8_t *k, size_t n) {
    const uint8_t *keys[2];
    size_t klens[2];
    size_t deleted = SENT_LEN;
    int rc;
    keys[0] = (const uint8_t *)"base";
    klens[0] = 4;
    keys[1] = k;
    klens[1] = n;
    rc = dbkv_mdel(db, keys, klens, 2, &deleted);
    if (rc != DBKV_OK && deleted != SENT_LEN) outputs_touched = 1;
    return rc;
}

struct key_op {
    const char *name;
    int (*fn)(const dbkv *, const uint8_t *, size_t);
};

static const struct key_op key_ops[] = {
    {"set", op_set},         {"get", op_get},         {"get_into", op_get_into}, {"delete", op_delete},
    {"exists", op_exists},   {"incr", op_incr},       {"decr", op_decr},         {"setnx", op_setnx},
    {"cas", op_cas},         {"expire", op_expire},   {"persist", op_persist},   {"ttl", op_ttl},
    {"lock", op_lock},       {"unlock", op_unlock},   {"extend_lock", op_extend}, {"mset", op_mset},
    {"mget", op_mget},       {"mdel", op_mdel},       {"set_fenced", op_set_fenced},
    {"set_fenced (lock_key)", op_set_fenced_lock},    {"delete_fenced", op_delete_fenced},
    {"delete_fenced (lock_key)", op_delete_fenced_lock},
};

static void test_bad_keys_everywhere(void) {
    size_t i;
    dbkv *db = open_mem();
    REQUIRE(db);
    REQUIRE_OK(dbkv_set(db, S("base"), S("base"), 0));
    for (i = 0; i < sizeof key_ops / sizeof key_ops[0]; i++) {
        const struct key_op *op = &key_ops[i];
        int ok = 1;
        outputs_touched = 0;
        ok &= EXPECT_RC(op->fn(NULL, S("base")), DBKV_ERR_INVALID_ARGUMENT);
        EXPECT_LAST_ERROR_HAS("db");
        ok &= EXPECT_RC(op->fn(db, NULL, 4), DBKV_ERR_INVALID_ARGUMENT);
        EXPECT_LAST_ERROR_HAS("key");
        ok &= EXPECT_RC(op->fn(db, (const uint8_t *)"x", 0), DBKV_ERR_INVALID_ARGUMENT);
        EXPECT_LAST_ERROR_HAS("key");
        ok &= EXPECT_RC(op->fn(db, NULL, 0), DBKV_ERR_INVALID_ARGUMENT);
        ok &= EXPECT_RC(op->fn(db, big_key, DBKV_MAX_KEY_BYTES + 1), DBKV_ERR_TOO_LARGE);
        EXPECT_LAST_ERROR_HAS("key");
        /* A length no buffer can have must be refused before anything is read. */
        ok &= EXPECT_RC(op->fn(db, big_key, SIZE_MAX), DBKV_ERR_TOO_LARGE);
        ok &= EXPECT(!outputs_touched);
        if (!ok) fprintf(stderr, "    ^ in dbkv_%s\n", op->name);
    }
    /* Nothing above may have written: still just "base", unchanged. */
    EXPECT(count_of(db) == 1);
    EXPECT(tu_value_is(db, "base", "base"));
    EXPECT_RC(dbkv_exists(db, S("mset-ok")), DBKV_NOT_FOUND);
    EXPECT_OK(dbkv_close(db));
}

/* The longest legal key works with every keyed function. */
static void test_longest_key_accepted(void) {
    size_t i;
    dbkv *db = open_mem();
    REQUIRE(db);
    for (i = 0; i < sizeof key_ops / sizeof key_ops[0]; i++) {
        int rc;
        /* Start each op from a missing key so an earlier op's value cannot
         * turn a success into e.g. NOT_INTEGER. */
        EXPECT(dbkv_delete(db, big_key, DBKV_MAX_KEY_BYTES) >= 0);
        rc = key_ops[i].fn(db, big_key, DBKV_MAX_KEY_BYTES);
        if (!EXPECT(rc >= 0)) fprintf(stderr, "    dbkv_%s with a 65535-byte key gave %s\n", key_ops[i].name, tu_status_name(rc));
    }
    EXPECT_OK(dbkv_set(db, big_key, DBKV_MAX_KEY_BYTES, S("long"), 0));
    {
        uint8_t buf[8];
        size_t len = 0;
        EXPECT_OK(dbkv_get_into(db, big_key, DBKV_MAX_KEY_BYTES, buf, sizeof buf, &len));
        EXPECT(len == 4 && memcmp(buf, "long", 4) == 0);
    }
    EXPECT_OK(dbkv_close(db));
}

/* Values: NULL with a non-zero length is refused; so is an absurd length. */
static void test_bad_values(void) {
    dbkv *db = open_mem();
    const uint8_t *keys[1];
    size_t klens[1];
    const uint8_t *vals[1];
    size_t vlens[1];
    REQUIRE(db);
    EXPECT_RC(dbkv_set(db, S("k"), NULL, 3, 0), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("val");
    EXPECT_RC(dbkv_setnx(db, S("k"), NULL, 3, 0), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_set(db, S("k"), (const uint8_t *)"x", SIZE_MAX, 0), DBKV_ERR_TOO_LARGE);
    EXPECT_RC(dbkv_setnx(db, S("k"), (const uint8_t *)"x", SIZE_MAX, 0), DBKV_ERR_TOO_LARGE);
    keys[0] = (const uint8_t *)"k";
    klens[0] = 1;
    vals[0] = NULL;
    vlens[0] = 3;
    EXPECT_RC(dbkv_mset(db, keys, klens, vals, vlens, 1, 0), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_exists(db, S("k")), DBKV_NOT_FOUND);
    EXPECT_OK(dbkv_set(db, S("k"), S("v"), 0));
    EXPECT_RC(dbkv_cas(db, S("k"), NULL, 1, S("w"), 0), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_cas(db, S("k"), S("v"), NULL, 1, 0), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_lock(db, S("l"), NULL, 2, 1000, NULL), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_unlock(db, S("l"), NULL, 2), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_extend_lock(db, S("l"), NULL, 2, 1000), DBKV_ERR_INVALID_ARGUMENT);
    /* A TTL whose absolute expiry does not fit is an argument error, not a wrap-around. */
    EXPECT_RC(dbkv_set(db, S("k"), S("w"), UINT64_MAX), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_setnx(db, S("n"), S("w"), UINT64_MAX), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_cas(db, S("k"), S("v"), S("w"), UINT64_MAX), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_expire(db, S("k"), UINT64_MAX), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_lock(db, S("l"), S("me"), UINT64_MAX, NULL), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT(tu_value_is(db, "k", "v"));
    {
        int64_t ttl = SENT_I64;
        EXPECT_OK(dbkv_ttl(db, S("k"), &ttl));
        EXPECT(ttl == -1);
    }
    EXPECT_RC(dbkv_exists(db, S("n")), DBKV_NOT_FOUND);
    EXPECT_RC(dbkv_exists(db, S("l")), DBKV_NOT_FOUND);
    EXPECT(count_of(db) == 1);
    EXPECT_OK(dbkv_close(db));
}

/* max_value_bytes is enforced by every writer of a value, and a refused
 * write leaves the old value (and its TTL) in place. */
static void test_value_over_max_is_too_large(void) {
    uint8_t big[9];
    int64_t ttl = SENT_I64;
    const uint8_t *keys[2];
    size_t klens[2];
    const uint8_t *vals[2];
    size_t vlens[2];
    dbkv *db = open_with_max_value(8);
    REQUIRE(db);
    memset(big, 'B', sizeof big);

    EXPECT_OK(dbkv_set(db, S("k"), big, 8, 60000));
    EXPECT_OK(dbkv_set(db, S("k"), S("old"), 60000));
    EXPECT_RC(dbkv_set(db, S("k"), big, 9, 0), DBKV_ERR_TOO_LARGE);
    EXPECT_LAST_ERROR_HAS("value");
    EXPECT(tu_value_is(db, "k", "old"));
    EXPECT_OK(dbkv_ttl(db, S("k"), &ttl));
    EXPECT(ttl > 0 && ttl <= 60000);

    EXPECT_RC(dbkv_setnx(db, S("new"), big, 9, 0), DBKV_ERR_TOO_LARGE);
    EXPECT_RC(dbkv_exists(db, S("new")), DBKV_NOT_FOUND);

    EXPECT_RC(dbkv_cas(db, S("k"), S("old"), big, 9, 0), DBKV_ERR_TOO_LARGE);
    EXPECT(tu_value_is(db, "k", "old"));

    keys[0] = (const uint8_t *)"m1";
    klens[0] = 2;
    keys[1] = (const uint8_t *)"m2";
    klens[1] = 2;
    vals[0] = (const uint8_t *)"small";
    vlens[0] = 5;
    vals[1] = big;
    vlens[1] = 9;
    EXPECT_RC(dbkv_mset(db, keys, klens, vals, vlens, 2, 0), DBKV_ERR_TOO_LARGE);
    EXPECT_RC(dbkv_exists(db, S("m1")), DBKV_NOT_FOUND);
    EXPECT_RC(dbkv_exists(db, S("m2")), DBKV_NOT_FOUND);

    /* The owner is the lock's value, so it is bounded the same way. */
    EXPECT_RC(dbkv_lock(db, S("l"), big, 9, 1000, NULL), DBKV_ERR_TOO_LARGE);
    EXPECT_RC(dbkv_exists(db, S("l")), DBKV_NOT_FOUND);
    EXPECT(count_of(db) == 1);
    EXPECT_OK(dbkv_close(db));

    db = open_with_max_value(0);
    REQUIRE(db);
    EXPECT_OK(dbkv_set(db, S("empty"), NULL, 0, 0));
    EXPECT_RC(dbkv_set(db, S("one"), S("1"), 0), DBKV_ERR_TOO_LARGE);
    EXPECT(count_of(db) == 1);
    EXPECT_OK(dbkv_close(db));
}

/* ------------------------------------------------------------------ */

static void test_set_get_basics(void) {
    static const uint8_t binary[] = {0, 1, 2, 0, 255, 0};
    uint8_t *v = SENT_PTR;
    size_t vl = SENT_LEN;
    dbkv *db = open_mem();
    REQUIRE(db);

    EXPECT_OK(dbkv_set(db, S("a"), S("1"), 0));
    EXPECT(tu_value_is(db, "a", "1"));
    EXPECT_OK(dbkv_set(db, S("a"), S("second"), 0));
    EXPECT(tu_value_is(db, "a", "second"));

    /* Keys and values are bytes, not C strings. */
    EXPECT_OK(dbkv_set(db, binary, sizeof binary, binary, sizeof binary, 0));
    EXPECT_OK(dbkv_get(db, binary, sizeof binary, &v, &vl));
    EXPECT(vl == sizeof binary && memcmp(v, binary, vl) == 0);
    dbkv_free(v);
    EXPECT_RC(dbkv_exists(db, binary, 3), DBKV_NOT_FOUND);

    /* An empty value is a value: non-NULL buffer, length 0. */
    EXPECT_OK(dbkv_set(db, S("empty"), NULL, 0, 0));
    v = SENT_PTR;
    vl = SENT_LEN;
    EXPECT_OK(dbkv_get(db, S("empty"), &v, &vl));
    EXPECT(v != NULL && v != SENT_PTR && vl == 0);
    dbkv_free(v);
    EXPECT_OK(dbkv_set(db, S("empty2"), (const uint8_t *)"ignored", 0, 0));
    EXPECT_OK(dbkv_exists(db, S("empty2")));

    /* Missing key and NULL out-params: outputs untouched. */
    v = SENT_PTR;
    vl = SENT_LEN;
    EXPECT_RC(dbkv_get(db, S("missing"), &v, &vl), DBKV_NOT_FOUND);
    EXPECT(v == SENT_PTR && vl == SENT_LEN);
    EXPECT_RC(dbkv_get(db, S("a"), NULL, &vl), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("val");
    EXPECT(vl == SENT_LEN);
    EXPECT_RC(dbkv_get(db, S("a"), &v, NULL), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT(v == SENT_PTR);
    EXPECT_RC(dbkv_get(db, S("missing"), NULL, NULL), DBKV_ERR_INVALID_ARGUMENT);

    /* Buffers from dbkv_get are plain malloc memory. */
    EXPECT_OK(dbkv_get(db, S("a"), &v, &vl));
    free(v);

    EXPECT(count_of(db) == 4);
    EXPECT_OK(dbkv_close(db));
}

static void test_get_into(void) {
    uint8_t buf[32];
    size_t len = SENT_LEN;
    dbkv *db = open_mem();
    REQUIRE(db);
    REQUIRE_OK(dbkv_set(db, S("k"), S("hello"), 0));

    memset(buf, 0xA5, sizeof buf);
    EXPECT_OK(dbkv_get_into(db, S("k"), buf, 5, &len));
    EXPECT(len == 5 && memcmp(buf, "hello", 5) == 0 && buf[5] == 0xA5);

    len = SENT_LEN;
    memset(buf, 0xA5, sizeof buf);
    EXPECT_OK(dbkv_get_into(db, S("k"), buf, sizeof buf, &len));
    EXPECT(len == 5 && memcmp(buf, "hello", 5) == 0 && buf[5] == 0xA5);

    /* Too small: *len says how much is needed and not a byte is copied. */
    len = SENT_LEN;
    memset(buf, 0xA5, sizeof buf);
    EXPECT_RC(dbkv_get_into(db, S("k"), buf, 4, &len), DBKV_ERR_BUFFER_TOO_SMALL);
    EXPECT(len == 5);
    EXPECT(buf[0] == 0xA5 && buf[3] == 0xA5);
    EXPECT_LAST_ERROR_HAS("5");

    /* The size query idiom: no buffer at all. */
    len = SENT_LEN;
    EXPECT_RC(dbkv_get_into(db, S("k"), NULL, 0, &len), DBKV_ERR_BUFFER_TOO_SMALL);
    EXPECT(len == 5);
    len = SENT_LEN;
    EXPECT_RC(dbkv_get_into(db, S("k"), buf, 0, &len), DBKV_ERR_BUFFER_TOO_SMALL);
    EXPECT(len == 5);

    len = SENT_LEN;
    EXPECT_RC(dbkv_get_into(db, S("missing"), buf, sizeof buf, &len), DBKV_NOT_FOUND);
    EXPECT(len == SENT_LEN);
    EXPECT_RC(dbkv_get_into(db, S("missing"), NULL, 0, &len), DBKV_NOT_FOUND);
    EXPECT(len == SENT_LEN);

    EXPECT_RC(dbkv_get_into(db, S("k"), NULL, 3, &len), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("buf");
    EXPECT(len == SENT_LEN);
    memset(buf, 0xA5, sizeof buf);
    EXPECT_RC(dbkv_get_into(db, S("k"), buf, sizeof buf, NULL), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT(buf[0] == 0xA5);

    /* An empty value fits a zero-sized (even NULL) buffer. */
    REQUIRE_OK(dbkv_set(db, S("empty"), NULL, 0, 0));
    len = SENT_LEN;
    EXPECT_OK(dbkv_get_into(db, S("empty"), NULL, 0, &len));
    EXPECT(len == 0);
    len = SENT_LEN;
    EXPECT_OK(dbkv_get_into(db, S("empty"), buf, 0, &len));
    EXPECT(len == 0);

    /* Counters read as text, longest form included. */
    REQUIRE_OK(dbkv_decr(db, S("c"), INT64_MAX, NULL));
    REQUIRE_OK(dbkv_decr(db, S("c"), 1, NULL));
    len = SENT_LEN;
    EXPECT_RC(dbkv_get_into(db, S("c"), buf, 19, &len), DBKV_ERR_BUFFER_TOO_SMALL);
    EXPECT(len == 20);
    EXPECT_OK(dbkv_get_into(db, S("c"), buf, 20, &len));
    EXPECT(len == 20 && memcmp(buf, "-9223372036854775808", 20) == 0);
    EXPECT_OK(dbkv_close(db));
}

static void test_delete_exists(void) {
    dbkv *db = open_mem();
    REQUIRE(db);
    EXPECT_RC(dbkv_exists(db, S("k")), DBKV_NOT_FOUND);
    EXPECT_RC(dbkv_delete(db, S("k")), DBKV_NOT_FOUND);
    EXPECT_OK(dbkv_set(db, S("k"), S("v"), 0));
    EXPECT_OK(dbkv_exists(db, S("k")));
    EXPECT_OK(dbkv_delete(db, S("k")));
    EXPECT_RC(dbkv_exists(db, S("k")), DBKV_NOT_FOUND);
    EXPECT_RC(dbkv_delete(db, S("k")), DBKV_NOT_FOUND);
    EXPECT(count_of(db) == 0);
    EXPECT_OK(dbkv_close(db));
}

/* ------------------------------------------------------------------ */

static void test_incr_decr(void) {
    static const char *not_integers[] = {"abc", "", "+1", "01", "-0", "-", " 1", "1 ", "1.5",
                                         "9223372036854775808", "-9223372036854775809", "0x10", "1e3"};
    int64_t out = SENT_I64, ttl = SENT_I64;
    size_t i;
    dbkv *db = open_mem();
    REQUIRE(db);

    /* A missing key counts as 0 and is created without TTL. */
    EXPECT_OK(dbkv_incr(db, S("c"), 5, &out));
    EXPECT(out == 5);
    EXPECT(tu_value_is(db, "c", "5"));
    EXPECT_OK(dbkv_ttl(db, S("c"), &ttl));
    EXPECT(ttl == -1);
    EXPECT_OK(dbkv_decr(db, S("d"), 3, &out));
    EXPECT(out == -3);
    EXPECT(tu_value_is(db, "d", "-3"));
    EXPECT_OK(dbkv_incr(db, S("c"), -7, &out));
    EXPECT(out == -2);
    EXPECT_OK(dbkv_decr(db, S("c"), -10, &out));
    EXPECT(out == 8);
    EXPECT_OK(dbkv_incr(db, S("c"), 0, &out));
    EXPECT(out == 8);
    EXPECT_OK(dbkv_incr(db, S("c"), 1, NULL));
    EXPECT(tu_value_is(db, "c", "9"));

    /* Text written with set is a counter if it is canonical base 10. */
    EXPECT_OK(dbkv_set(db, S("t"), S("-41"), 0));
    EXPECT_OK(dbkv_decr(db, S("t"), 1, &out));
    EXPECT(out == -42);
    EXPECT_OK(dbkv_set(db, S("t"), S("0"), 0));
    EXPECT_OK(dbkv_incr(db, S("t"), 1, &out));
    EXPECT(out == 1);

    for (i = 0; i < sizeof not_integers / sizeof not_integers[0]; i++) {
        int ok = 1;
        out = SENT_I64;
        EXPECT_OK(dbkv_set(db, S("bad"), S(not_integers[i]), 0));
        ok &= EXPECT_RC(dbkv_incr(db, S("bad"), 1, &out), DBKV_ERR_NOT_INTEGER);
        ok &= EXPECT_RC(dbkv_decr(db, S("bad"), 1, &out), DBKV_ERR_NOT_INTEGER);
        ok &= EXPECT(out == SENT_I64);
        ok &= EXPECT(tu_value_is(db, "bad", not_integers[i]));
        if (!ok) fprintf(stderr, "    value \"%s\"\n", not_integers[i]);
    }

    /* Overflow in both directions: refused, nothing changed, never wraps. */
    EXPECT_OK(dbkv_set(db, S("max"), S("9223372036854775807"), 0));
    out = SENT_I64;
    EXPECT_RC(dbkv_incr(db, S("max"), 1, &out), DBKV_ERR_OVERFLOW);
    EXPECT_RC(dbkv_decr(db, S("max"), -1, &out), DBKV_ERR_OVERFLOW);
    EXPECT_RC(dbkv_incr(db, S("max"), INT64_MAX, &out), DBKV_ERR_OVERFLOW);
    EXPECT(out == SENT_I64);
    EXPECT(tu_value_is(db, "max", "9223372036854775807"));
    EXPECT_OK(dbkv_decr(db, S("max"), 1, &out));
    EXPECT(out == INT64_MAX - 1);

    EXPECT_OK(dbkv_set(db, S("min"), S("-9223372036854775808"), 0));
    EXPECT_RC(dbkv_decr(db, S("min"), 1, &out), DBKV_ERR_OVERFLOW);
    EXPECT_RC(dbkv_incr(db, S("min"), -1, &out), DBKV_ERR_OVERFLOW);
    EXPECT_RC(dbkv_incr(db, S("min"), INT64_MIN, &out), DBKV_ERR_OVERFLOW);
    EXPECT(out == INT64_MAX - 1);
    EXPECT(tu_value_is(db, "min", "-9223372036854775808"));
    EXPECT_LAST_ERROR_HAS("overflow");

    /* The counter reached by incr overflowing must stay as it was too. */
    EXPECT_OK(dbkv_incr(db, S("top"), INT64_MAX, &out));
    EXPECT(out == INT64_MAX);
    EXPECT_RC(dbkv_incr(db, S("top"), 1, NULL), DBKV_ERR_OVERFLOW);
    EXPECT(tu_value_is(db, "top", "9223372036854775807"));

    /* 0 - INT64_MIN overflows: the missing key must not be created. */
    EXPECT_RC(dbkv_decr(db, S("fresh"), INT64_MIN, &out), DBKV_ERR_OVERFLOW);
    EXPECT_RC(dbkv_exists(db, S("fresh")), DBKV_NOT_FOUND);
    EXPECT_OK(dbkv_incr(db, S("fresh"), INT64_MIN, &out));
    EXPECT(out == INT64_MIN);

    /* An existing key keeps its TTL through incr and decr. */
    EXPECT_OK(dbkv_set(db, S("ttl"), S("10"), 60000));
    EXPECT_OK(dbkv_incr(db, S("ttl"), 1, &out));
    EXPECT(out == 11);
    ttl = SENT_I64;
    EXPECT_OK(dbkv_ttl(db, S("ttl"), &ttl));
    EXPECT(ttl > 0 && ttl <= 60000);
    EXPECT_OK(dbkv_decr(db, S("ttl"), 2, &out));
    EXPECT(out == 9);
    ttl = SENT_I64;
    EXPECT_OK(dbkv_ttl(db, S("ttl"), &ttl));
    EXPECT(ttl > 0 && ttl <= 60000);
    EXPECT_OK(dbkv_close(db));
}

static void test_setnx(void) {
    int64_t ttl = SENT_I64;
    dbkv *db = open_mem();
    REQUIRE(db);
    EXPECT_OK(dbkv_setnx(db, S("k"), S("first"), 60000));
    EXPECT(tu_value_is(db, "k", "first"));
    EXPECT_OK(dbkv_ttl(db, S("k"), &ttl));
    EXPECT(ttl > 0 && ttl <= 60000);
    EXPECT_RC(dbkv_setnx(db, S("k"), S("second"), 0), DBKV_EXISTS);
    EXPECT(tu_value_is(db, "k", "first"));
    ttl = SENT_I64;
    EXPECT_OK(dbkv_ttl(db, S("k"), &ttl));
    EXPECT(ttl > 0 && ttl <= 60000);
    EXPECT_OK(dbkv_setnx(db, S("e"), NULL, 0, 0));
    EXPECT_RC(dbkv_setnx(db, S("e"), S("x"), 0), DBKV_EXISTS);
    EXPECT(tu_value_is(db, "e", ""));
    EXPECT_OK(dbkv_delete(db, S("k")));
    EXPECT_OK(dbkv_setnx(db, S("k"), S("third"), 0));
    EXPECT(tu_value_is(db, "k", "third"));
    EXPECT_OK(dbkv_close(db));
}

static void test_cas(void) {
    int64_t ttl = SENT_I64;
    dbkv *db = open_mem();
    REQUIRE(db);
    EXPECT_RC(dbkv_cas(db, S("k"), S("a"), S("b"), 0), DBKV_NOT_FOUND);
    EXPECT_RC(dbkv_exists(db, S("k")), DBKV_NOT_FOUND);

    EXPECT_OK(dbkv_set(db, S("k"), S("hello"), 0));
    EXPECT_RC(dbkv_cas(db, S("k"), S("hell"), S("x"), 0), DBKV_MISMATCH);
    EXPECT_RC(dbkv_cas(db, S("k"), S("hello!"), S("x"), 0), DBKV_MISMATCH);
    EXPECT_RC(dbkv_cas(db, S("k"), NULL, 0, S("x"), 0), DBKV_MISMATCH);
    EXPECT(tu_value_is(db, "k", "hello"));

    /* A swap replaces the TTL too: with one, then without. */
    EXPECT_OK(dbkv_cas(db, S("k"), S("hello"), S("world"), 60000));
    EXPECT(tu_value_is(db, "k", "world"));
    EXPECT_OK(dbkv_ttl(db, S("k"), &ttl));
    EXPECT(ttl > 0 && ttl <= 60000);
    EXPECT_OK(dbkv_cas(db, S("k"), S("world"), NULL, 0, 0));
    EXPECT(tu_value_is(db, "k", ""));
    ttl = SENT_I64;
    EXPECT_OK(dbkv_ttl(db, S("k"), &ttl));
    EXPECT(ttl == -1);
    EXPECT_RC(dbkv_cas(db, S("k"), S("x"), S("y"), 0), DBKV_MISMATCH);
    EXPECT_OK(dbkv_cas(db, S("k"), NULL, 0, S("back"), 0));
    EXPECT(tu_value_is(db, "k", "back"));

    /* Counters compare as their text. */
    EXPECT_OK(dbkv_incr(db, S("c"), 42, NULL));
    EXPECT_RC(dbkv_cas(db, S("c"), S("41"), S("0"), 0), DBKV_MISMATCH);
    EXPECT_OK(dbkv_cas(db, S("c"), S("42"), S("100"), 0));
    EXPECT_OK(dbkv_incr(db, S("c"), 1, NULL));
    EXPECT(tu_value_is(db, "c", "101"));
    EXPECT_OK(dbkv_close(db));
}

static void test_ttl_expire_persist(void) {
    int64_t ttl = SENT_I64;
    dbkv *db = open_mem();
    REQUIRE(db);
    EXPECT_RC(dbkv_ttl(db, S("k"), &ttl), DBKV_NOT_FOUND);
    EXPECT(ttl == SENT_I64);
    EXPECT_RC(dbkv_expire(db, S("k"), 1000), DBKV_NOT_FOUND);
    EXPECT_RC(dbkv_persist(db, S("k")), DBKV_NOT_FOUND);
    EXPECT_RC(dbkv_exists(db, S("k")), DBKV_NOT_FOUND);

    EXPECT_OK(dbkv_set(db, S("k"), S("v"), 0));
    EXPECT_OK(dbkv_ttl(db, S("k"), &ttl));
    EXPECT(ttl == -1);
    EXPECT_RC(dbkv_ttl(db, S("k"), NULL), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("ms");

    EXPECT_OK(dbkv_expire(db, S("k"), 60000));
    ttl = SENT_I64;
    EXPECT_OK(dbkv_ttl(db, S("k"), &ttl));
    EXPECT(ttl > 59000 - 5000 && ttl <= 60000);
    EXPECT_OK(dbkv_expire(db, S("k"), 5000));
    EXPECT_OK(dbkv_ttl(db, S("k"), &ttl));
    EXPECT(ttl > 0 && ttl <= 5000);

    /* expire 0 removes the expiry, like persist. */
    EXPECT_OK(dbkv_expire(db, S("k"), 0));
    EXPECT_OK(dbkv_ttl(db, S("k"), &ttl));
    EXPECT(ttl == -1);
    EXPECT_OK(dbkv_expire(db, S("k"), 60000));
    EXPECT_OK(dbkv_persist(db, S("k")));
    EXPECT_OK(dbkv_ttl(db, S("k"), &ttl));
    EXPECT(ttl == -1);
    EXPECT_OK(dbkv_persist(db, S("k")));
    EXPECT(tu_value_is(db, "k", "v"));

    /* set replaces the TTL: with one, then without. */
    EXPECT_OK(dbkv_set(db, S("s"), S("v"), 60000));
    EXPECT_OK(dbkv_ttl(db, S("s"), &ttl));
    EXPECT(ttl > 0 && ttl <= 60000);
    EXPECT_OK(dbkv_set(db, S("s"), S("v"), 0));
    EXPECT_OK(dbkv_ttl(db, S("s"), &ttl));
    EXPECT(ttl == -1);
    EXPECT_OK(dbkv_close(db));
}

/* A short TTL really expires, and an expired key is absent for every
 * function, whether or not the background sweep has reclaimed it yet. */
static void test_short_ttl_expires_everywhere(void) {
    enum { N = 20 };
    char key[N][16];
    int64_t t0, elapsed, out = SENT_I64;
    uint64_t fence = 0;
    int i;
    dbkv *db = open_mem();
    REQUIRE(db);
    EXPECT_OK(dbkv_set(db, S("forever"), S("v"), 0));
    t0 = tu_now_ms();
    for (i = 0; i < N; i++) {
        snprintf(key[i], sizeof key[i], "exp%02d", i);
        if (i == 0) EXPECT_OK(dbkv_lock(db, S(key[i]), S("owner"), 60, &fence));
        else EXPECT_OK(dbkv_set(db, S(key[i]), S("7"), 60));
    }
    /* Only meaningful if we are still inside the TTL (slow machines, valgrind). */
    elapsed = tu_now_ms() - t0;
    if (elapsed < 40) EXPECT_OK(dbkv_exists(db, S(key[N - 1])));
    tu_sleep_ms(150);

    EXPECT_RC(dbkv_unlock(db, S(key[0]), S("owner")), DBKV_NOT_FOUND);
    EXPECT_RC(dbkv_extend_lock(db, S(key[0]), S("owner"), 1000), DBKV_NOT_FOUND);
    {
        uint8_t *v = SENT_PTR;
        size_t vl = SENT_LEN;
        EXPECT_RC(dbkv_get(db, S(key[1]), &v, &vl), DBKV_NOT_FOUND);
        EXPECT(v == SENT_PTR && vl == SENT_LEN);
    }
    {
        size_t len = SENT_LEN;
        uint8_t buf[8];
        EXPECT_RC(dbkv_get_into(db, S(key[2]), buf, sizeof buf, &len), DBKV_NOT_FOUND);
        EXPECT(len == SENT_LEN);
    }
    EXPECT_RC(dbkv_exists(db, S(key[3])), DBKV_NOT_FOUND);
    {
        int64_t ttl = SENT_I64;
        EXPECT_RC(dbkv_ttl(db, S(key[4]), &ttl), DBKV_NOT_FOUND);
        EXPECT(ttl == SENT_I64);
    }
    EXPECT_RC(dbkv_delete(db, S(key[5])), DBKV_NOT_FOUND);
    EXPECT_RC(dbkv_expire(db, S(key[6]), 60000), DBKV_NOT_FOUND);
    EXPECT_RC(dbkv_persist(db, S(key[7])), DBKV_NOT_FOUND);
    EXPECT_RC(dbkv_cas(db, S(key[8]), S("7"), S("8"), 0), DBKV_NOT_FOUND);
    {
        const uint8_t *keys[2];
        size_t klens[2], vlens[2], deleted = SENT_LEN;
        uint8_t *vals[2];
        keys[0] = (const uint8_t *)key[9];
        keys[1] = (const uint8_t *)key[10];
        klens[0] = klens[1] = strlen(key[9]);
        EXPECT_OK(dbkv_mget(db, keys, klens, 2, vals, vlens));
        EXPECT(vals[0] == NULL && vals[1] == NULL && vlens[0] == 0 && vlens[1] == 0);
        EXPECT_OK(dbkv_mdel(db, keys, klens, 2, &deleted));
        EXPECT(deleted == 0);
    }
    EXPECT(count_of(db) == 1);
    {
        dbkv_iter *it = NULL;
        const uint8_t *k;
        size_t kl, seen = 0;
        EXPECT_OK(dbkv_scan(db, NULL, 0, &it));
        while (dbkv_iter_next(it, &k, &kl, NULL, NULL) == DBKV_OK) {
            seen++;
            EXPECT(kl == 7 && memcmp(k, "forever", 7) == 0);
        }
        dbkv_iter_free(it);
        EXPECT(seen == 1);
    }
    {
        dbkv_statistics st;
        memset(&st, 0, sizeof st);
        st.size = sizeof st;
        EXPECT_OK(dbkv_stats(db, &st));
        EXPECT(st.keys == 1);
    }
    /* Writers treat the expired key as absent too. */
    EXPECT_OK(dbkv_lock(db, S(key[0]), S("other"), 60000, NULL));
    EXPECT_OK(dbkv_setnx(db, S(key[11]), S("new"), 0));
    EXPECT(tu_value_is(db, key[11], "new"));
    EXPECT_OK(dbkv_incr(db, S(key[12]), 1, &out));
    EXPECT(out == 1);
    {
        int64_t ttl = SENT_I64;
        EXPECT_OK(dbkv_ttl(db, S(key[12]), &ttl));
        EXPECT(ttl == -1);
    }
    EXPECT(count_of(db) == 4);
    EXPECT_OK(dbkv_close(db));
}

/* ------------------------------------------------------------------ */

static void test_mset_mget_mdel(void) {
    const uint8_t *keys[5];
    size_t klens[5];
    const uint8_t *vals[5];
    size_t vlens[5];
    uint8_t *got[5];
    size_t glens[5];
    size_t deleted = SENT_LEN;
    int64_t ttl = SENT_I64;
    int i;
    dbkv *db = open_mem();
    REQUIRE(db);

    /* n = 0: every array may be NULL. */
    EXPECT_OK(dbkv_mset(db, NULL, NULL, NULL, NULL, 0, 0));
    EXPECT_OK(dbkv_mget(db, NULL, NULL, 0, NULL, NULL));
    EXPECT_OK(dbkv_mdel(db, NULL, NULL, 0, &deleted));
    EXPECT(deleted == 0);
    EXPECT_OK(dbkv_mdel(db, NULL, NULL, 0, NULL));

    keys[0] = (const uint8_t *)"a";
    keys[1] = (const uint8_t *)"b";
    keys[2] = (const uint8_t *)"a"; /* a later duplicate wins */
    keys[3] = (const uint8_t *)"empty";
    vals[0] = (const uint8_t *)"1";
    vals[1] = (const uint8_t *)"2";
    vals[2] = (const uint8_t *)"3";
    vals[3] = NULL;
    for (i = 0; i < 4; i++) {
        klens[i] = strlen((const char *)keys[i]);
        vlens[i] = vals[i] ? strlen((const char *)vals[i]) : 0;
    }
    EXPECT_OK(dbkv_mset(db, keys, klens, vals, vlens, 4, 60000));
    EXPECT(tu_value_is(db, "a", "3"));
    EXPECT(tu_value_is(db, "b", "2"));
    EXPECT(tu_value_is(db, "empty", ""));
    EXPECT(count_of(db) == 3);
    EXPECT_OK(dbkv_ttl(db, S("b"), &ttl));
    EXPECT(ttl > 0 && ttl <= 60000);
    ttl = SENT_I64;
    EXPECT_OK(dbkv_ttl(db, S("empty"), &ttl));
    EXPECT(ttl > 0 && ttl <= 60000);

    /* Rejected batches write nothing (checked before anything is stored). */
    EXPECT_RC(dbkv_mset(db, NULL, klens, vals, vlens, 1, 0), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("keys");
    EXPECT_RC(dbkv_mset(db, keys, NULL, vals, vlens, 1, 0), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_mset(db, keys, klens, NULL, vlens, 1, 0), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("vals");
    EXPECT_RC(dbkv_mset(db, keys, klens, vals, NULL, 1, 0), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_mset(NULL, keys, klens, vals, vlens, 1, 0), DBKV_ERR_INVALID_ARGUMENT);
    keys[4] = (const uint8_t *)"new";
    klens[4] = 3;
    vals[4] = NULL;
    vlens[4] = 1; /* NULL value with a length */
    vals[0] = (const uint8_t *)"changed";
    vlens[0] = 7;
    EXPECT_RC(dbkv_mset(db, keys, klens, vals, vlens, 5, 0), DBKV_ERR_INVALID_ARGUMENT);
    vlens[4] = 0; /* now valid, but the TTL is not */
    EXPECT_RC(dbkv_mset(db, keys, klens, vals, vlens, 5, UINT64_MAX), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT(tu_value_is(db, "a", "3"));
    EXPECT_RC(dbkv_exists(db, S("new")), DBKV_NOT_FOUND);
    EXPECT(count_of(db) == 3);

    /* mget: present, missing (NULL, 0), empty (non-NULL, 0), counter as text, duplicates. */
    EXPECT_OK(dbkv_incr(db, S("ctr"), -12, NULL));
    keys[0] = (const uint8_t *)"a";
    keys[1] = (const uint8_t *)"missing";
    keys[2] = (const uint8_t *)"empty";
    keys[3] = (const uint8_t *)"ctr";
    keys[4] = (const uint8_t *)"a";
    for (i = 0; i < 5; i++) {
        klens[i] = strlen((const char *)keys[i]);
        got[i] = SENT_PTR;
        glens[i] = SENT_LEN;
    }
    EXPECT_OK(dbkv_mget(db, keys, klens, 5, got, glens));
    EXPECT(got[0] != NULL && glens[0] == 1 && got[0][0] == '3');
    EXPECT(got[1] == NULL && glens[1] == 0);
    EXPECT(got[2] != NULL && got[2] != SENT_PTR && glens[2] == 0);
    EXPECT(glens[3] == 3 && memcmp(got[3], "-12", 3) == 0);
    /* Each slot owns its buffer, even for a repeated key. */
    EXPECT(got[4] != NULL && got[4] != got[0] && glens[4] == 1);
    for (i = 0; i < 5; i++) dbkv_free(got[i]);

    /* A failing mget writes and allocates nothing. */
    for (i = 0; i < 5; i++) {
        got[i] = SENT_PTR;
        glens[i] = SENT_LEN;
    }
    klens[3] = 0;
    EXPECT_RC(dbkv_mget(db, keys, klens, 5, got, glens), DBKV_ERR_INVALID_ARGUMENT);
    klens[3] = 3;
    EXPECT_RC(dbkv_mget(db, keys, klens, 5, NULL, glens), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_mget(db, keys, klens, 5, got, NULL), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_mget(db, NULL, klens, 5, got, glens), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_mget(db, keys, NULL, 5, got, glens), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_mget(NULL, keys, klens, 5, got, glens), DBKV_ERR_INVALID_ARGUMENT);
    for (i = 0; i < 5; i++) EXPECT(got[i] == SENT_PTR && glens[i] == SENT_LEN);

    /* mdel counts the keys that existed. */
    keys[0] = (const uint8_t *)"a";
    keys[1] = (const uint8_t *)"missing";
    keys[2] = (const uint8_t *)"b";
    for (i = 0; i < 3; i++) klens[i] = strlen((const char *)keys[i]);
    klens[2] = 0;
    deleted = SENT_LEN;
    EXPECT_RC(dbkv_mdel(db, keys, klens, 3, &deleted), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT(deleted == SENT_LEN);
    EXPECT_OK(dbkv_exists(db, S("a")));
    EXPECT_RC(dbkv_mdel(db, NULL, klens, 3, &deleted), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_mdel(db, keys, NULL, 3, &deleted), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_mdel(NULL, keys, klens, 3, &deleted), DBKV_ERR_INVALID_ARGUMENT);
    klens[2] = 1;
    deleted = SENT_LEN;
    EXPECT_OK(dbkv_mdel(db, keys, klens, 3, &deleted));
    EXPECT(deleted == 2);
    EXPECT_RC(dbkv_exists(db, S("a")), DBKV_NOT_FOUND);
    EXPECT_RC(dbkv_exists(db, S("b")), DBKV_NOT_FOUND);
    deleted = SENT_LEN;
    EXPECT_OK(dbkv_mdel(db, keys, klens, 3, &deleted));
    EXPECT(deleted == 0);
    keys[0] = (const uint8_t *)"ctr";
    klens[0] = 3;
    EXPECT_OK(dbkv_mdel(db, keys, klens, 1, NULL));
    EXPECT(count_of(db) == 1);
    EXPECT_OK(dbkv_close(db));
}

/* ------------------------------------------------------------------ */

static void test_locks(void) {
    uint64_t t1 = 0, t2 = 0, t3 = 0, t4 = 0, fence = SENT_U64;
    int64_t ttl = SENT_I64;
    dbkv *db = open_mem();
    REQUIRE(db);

    EXPECT_OK(dbkv_lock(db, S("L"), S("alice"), 60000, &t1));
    EXPECT(t1 > 0);
    EXPECT(tu_value_is(db, "L", "alice")); /* the lock's value is its owner */
    EXPECT_OK(dbkv_ttl(db, S("L"), &ttl));
    EXPECT(ttl > 0 && ttl <= 60000);

    EXPECT_RC(dbkv_lock(db, S("L"), S("bob"), 60000, &fence), DBKV_LOCKED);
    EXPECT(fence == SENT_U64);
    EXPECT(tu_value_is(db, "L", "alice"));

    /* Re-locking by the holder refreshes it with a bigger token. */
    EXPECT_OK(dbkv_lock(db, S("L"), S("alice"), 30000, &t2));
    EXPECT(t2 > t1);
    EXPECT_OK(dbkv_ttl(db, S("L"), &ttl));
    EXPECT(ttl > 0 && ttl <= 30000);
    EXPECT_OK(dbkv_lock(db, S("M"), S("bob"), 60000, &t3));
    EXPECT(t3 > t2);
    EXPECT_OK(dbkv_lock(db, S("N"), S("carol"), 60000, NULL));

    /* ttl 0 would make a lock that outlives a crashed owner. */
    fence = SENT_U64;
    EXPECT_RC(dbkv_lock(db, S("Z"), S("alice"), 0, &fence), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("ttl");
    EXPECT(fence == SENT_U64);
    EXPECT_RC(dbkv_exists(db, S("Z")), DBKV_NOT_FOUND);
    EXPECT_RC(dbkv_lock(db, S("L"), S("alice"), 0, &fence), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_lock(db, S("Z"), (const uint8_t *)"x", 0, 1000, &fence), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("owner");
    EXPECT_RC(dbkv_lock(db, S("Z"), NULL, 0, 1000, &fence), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_unlock(db, S("L"), NULL, 0), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_extend_lock(db, S("L"), NULL, 0, 1000), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT(fence == SENT_U64);

    /* extend_lock: holder moves the expiry, others change nothing. */
    EXPECT_OK(dbkv_extend_lock(db, S("L"), S("alice"), 5000));
    EXPECT_OK(dbkv_ttl(db, S("L"), &ttl));
    EXPECT(ttl > 0 && ttl <= 5000);
    EXPECT_RC(dbkv_extend_lock(db, S("L"), S("bob"), 60000), DBKV_NOT_OWNER);
    EXPECT_OK(dbkv_ttl(db, S("L"), &ttl));
    EXPECT(ttl > 0 && ttl <= 5000);
    EXPECT_RC(dbkv_extend_lock(db, S("L"), S("alice"), 0), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_OK(dbkv_ttl(db, S("L"), &ttl));
    EXPECT(ttl > 0 && ttl <= 5000);
    EXPECT_RC(dbkv_extend_lock(db, S("nolock"), S("alice"), 1000), DBKV_NOT_FOUND);
    EXPECT_RC(dbkv_exists(db, S("nolock")), DBKV_NOT_FOUND);
    EXPECT_OK(dbkv_extend_lock(db, S("L"), S("alice"), 60000));
    EXPECT_OK(dbkv_ttl(db, S("L"), &ttl));
    EXPECT(ttl > 5000 && ttl <= 60000);

    /* unlock: only the holder. Owners compare as whole byte strings. */
    EXPECT_RC(dbkv_unlock(db, S("L"), S("bob")), DBKV_NOT_OWNER);
    EXPECT_RC(dbkv_unlock(db, S("L"), S("alic")), DBKV_NOT_OWNER);
    EXPECT_RC(dbkv_unlock(db, S("L"), S("alice2")), DBKV_NOT_OWNER);
    EXPECT(tu_value_is(db, "L", "alice"));
    EXPECT_OK(dbkv_unlock(db, S("L"), S("alice")));
    EXPECT_RC(dbkv_exists(db, S("L")), DBKV_NOT_FOUND);
    EXPECT_RC(dbkv_unlock(db, S("L"), S("alice")), DBKV_NOT_FOUND);

    /* Free again: a new owner gets it, with a token above all before. */
    EXPECT_OK(dbkv_lock(db, S("L"), S("bob"), 60000, &t4));
    EXPECT(t4 > t3);
    EXPECT_OK(dbkv_close(db));
}

static void test_lock_expires_and_is_taken_over(void) {
    uint64_t t1 = 0, t2 = 0;
    dbkv *db = open_mem();
    REQUIRE(db);
    EXPECT_OK(dbkv_lock(db, S("L"), S("crashed"), 50, &t1));
    tu_sleep_ms(150);
    EXPECT_OK(dbkv_lock(db, S("L"), S("next"), 60000, &t2));
    EXPECT(t2 > t1);
    /* The old owner no longer holds it, and cannot take it back by extending. */
    EXPECT_RC(dbkv_extend_lock(db, S("L"), S("crashed"), 60000), DBKV_NOT_OWNER);
    EXPECT_RC(dbkv_unlock(db, S("L"), S("crashed")), DBKV_NOT_OWNER);
    EXPECT(tu_value_is(db, "L", "next"));
    EXPECT_OK(dbkv_close(db));
}

/* ------------------------------------------------------------------ */

enum { N_USERS = 300, N_ORDERS = 200 };

static void fill_scan_db(const dbkv *db) {
    char k[32], v[32];
    int i;
    static const uint8_t nul1[] = {0, 'x', '1'}, nul2[] = {0, 'x', '2'};
    for (i = 0; i < N_USERS; i++) {
        snprintf(k, sizeof k, "user:%04d", i);
        snprintf(v, sizeof v, "u%d", i);
        EXPECT_OK(dbkv_set(db, S(k), S(v), 0));
    }
    for (i = 0; i < N_ORDERS; i++) {
        snprintf(k, sizeof k, "order:%04d", i);
        EXPECT_OK(dbkv_set(db, S(k), S("o"), 0));
    }
    EXPECT_OK(dbkv_set(db, S("user"), S("not under user:"), 0));
    EXPECT_OK(dbkv_incr(db, S("user:ctr"), 77, NULL));
    EXPECT_OK(dbkv_set(db, nul1, sizeof nul1, S("n1"), 0));
    EXPECT_OK(dbkv_set(db, nul2, sizeof nul2, NULL, 0, 0));
}

/* Runs a scan to the end, tallying every key; returns how many it gave. */
static size_t scan_tally(const dbkv *db, const uint8_t *prefix, size_t plen, int *users, int *orders, int *others) {
    dbkv_iter *it = NULL;
    const uint8_t *k = NULL, *v = NULL;
    size_t kl = 0, vl = 0, n = 0;
    int rc;
    if (!EXPECT_OK(dbkv_scan(db, prefix, plen, &it))) return 0;
    while ((rc = dbkv_iter_next(it, &k, &kl, &v, &vl)) == DBKV_OK) {
        char key[64];
        int idx;
        n++;
        EXPECT(kl < sizeof key);
        if (kl >= sizeof key) continue;
        EXPECT(plen == 0 || memcmp(k, prefix, plen) == 0);
        memcpy(key, k, kl);
        key[kl] = '\0';
        if (kl == 9 && sscanf(key, "user:%4d", &idx) == 1 && idx >= 0 && idx < N_USERS) {
            char want[32];
            snprintf(want, sizeof want, "u%d", idx);
            users[idx]++;
            EXPECT(vl == strlen(want) && memcmp(v, want, vl) == 0);
        } else if (kl == 10 && sscanf(key, "order:%4d", &idx) == 1 && idx >= 0 && idx < N_ORDERS) {
            orders[idx]++;
            EXPECT(vl == 1 && v[0] == 'o');
        } else if (strcmp(key, "user:ctr") == 0) {
            others[0]++;
            EXPECT(vl == 2 && memcmp(v, "77", 2) == 0);
        } else if (strcmp(key, "user") == 0) {
            others[1]++;
        } else if (kl == 3 && k[0] == 0 && k[1] == 'x' && k[2] == '1') {
            others[2]++;
            EXPECT(vl == 2 && memcmp(v, "n1", 2) == 0);
        } else if (kl == 3 && k[0] == 0 && k[1] == 'x' && k[2] == '2') {
            others[3]++;
            EXPECT(vl == 0 && v != NULL);
        } else {
            EXPECT(!"scan returned a key that was never written");
        }
    }
    EXPECT_RC(rc, DBKV_NOT_FOUND);
    /* The end is sticky. */
    EXPECT_RC(dbkv_iter_next(it, &k, &kl, &v, &vl), DBKV_NOT_FOUND);
    dbkv_iter_free(it);
    return n;
}

static void test_scan(void) {
    int users[N_USERS], orders[N_ORDERS], others[4];
    size_t n;
    int i;
    dbkv *db = open_mem();
    REQUIRE(db);

    /* Empty database. */
    memset(users, 0, sizeof users);
    memset(orders, 0, sizeof orders);
    memset(others, 0, sizeof others);
    EXPECT(scan_tally(db, NULL, 0, users, orders, others) == 0);
    fill_scan_db(db);

    memset(users, 0, sizeof users);
    memset(orders, 0, sizeof orders);
    memset(others, 0, sizeof others);
    n = scan_tally(db, S("user:"), users, orders, others);
    EXPECT(n == N_USERS + 1);
    for (i = 0; i < N_USERS; i++)
        if (!EXPECT(users[i] == 1)) fprintf(stderr, "    user:%04d seen %d times\n", i, users[i]);
    for (i = 0; i < N_ORDERS; i++) EXPECT(orders[i] == 0);
    EXPECT(others[0] == 1 && others[1] == 0 && others[2] == 0 && others[3] == 0);

    /* Empty prefix, NULL or not: every key exactly once. */
    memset(users, 0, sizeof users);
    memset(orders, 0, sizeof orders);
    memset(others, 0, sizeof others);
    n = scan_tally(db, NULL, 0, users, orders, others);
    EXPECT(n == N_USERS + N_ORDERS + 4);
    for (i = 0; i < N_USERS; i++) EXPECT(users[i] == 1);
    for (i = 0; i < N_ORDERS; i++) EXPECT(orders[i] == 1);
    for (i = 0; i < 4; i++) EXPECT(others[i] == 1);
    memset(users, 0, sizeof users);
    memset(orders, 0, sizeof orders);
    memset(others, 0, sizeof others);
    EXPECT(scan_tally(db, (const uint8_t *)"user:", 0, users, orders, others) == N_USERS + N_ORDERS + 4);

    /* Binary prefixes, a prefix equal to a whole key, and no match. */
    memset(others, 0, sizeof others);
    EXPECT(scan_tally(db, (const uint8_t *)"\0x", 2, users, orders, others) == 2);
    EXPECT(others[2] == 1 && others[3] == 1);
    memset(users, 0, sizeof users);
    EXPECT(scan_tally(db, S("user:0042"), users, orders, others) == 1);
    EXPECT(users[42] == 1);
    EXPECT(scan_tally(db, S("nothing"), users, orders, others) == 0);
    EXPECT(scan_tally(db, S("user:00420"), users, orders, others) == 0);
    EXPECT_OK(dbkv_close(db));
}

static void test_scan_bad_args(void) {
    dbkv_iter *it = (dbkv_iter *)SENT_PTR;
    const uint8_t *k = SENT_PTR, *v = SENT_PTR;
    size_t kl = SENT_LEN, vl = SENT_LEN, n = 0;
    dbkv *db = open_mem();
    REQUIRE(db);
    EXPECT_OK(dbkv_set(db, S("p:1"), S("a"), 0));
    EXPECT_OK(dbkv_set(db, S("p:2"), S("b"), 0));
    EXPECT_OK(dbkv_set(db, S("p:3"), S("c"), 0));

    EXPECT_RC(dbkv_scan(NULL, S("p:"), &it), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_scan(db, NULL, 2, &it), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("prefix");
    EXPECT_RC(dbkv_scan(db, S("p:"), NULL), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT(it == (dbkv_iter *)SENT_PTR);

    EXPECT_RC(dbkv_iter_next(NULL, &k, &kl, &v, &vl), DBKV_ERR_INVALID_ARGUMENT);
    REQUIRE_OK(dbkv_scan(db, S("p:"), &it));
    /* Rejected calls must not consume an entry. */
    EXPECT_RC(dbkv_iter_next(it, NULL, &kl, &v, &vl), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_iter_next(it, &k, NULL, &v, &vl), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_iter_next(it, &k, &kl, &v, NULL), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_iter_next(it, &k, &kl, NULL, &vl), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT(k == SENT_PTR && kl == SENT_LEN && v == SENT_PTR && vl == SENT_LEN);
    /* The value outputs are optional (both NULL). */
    while (dbkv_iter_next(it, &k, &kl, NULL, NULL) == DBKV_OK) {
        n++;
        EXPECT(kl == 3 && memcmp(k, "p:", 2) == 0);
        EXPECT(v == SENT_PTR && vl == SENT_LEN);
    }
    EXPECT(n == 3);
    k = SENT_PTR;
    kl = SENT_LEN;
    EXPECT_RC(dbkv_iter_next(it, &k, &kl, &v, &vl), DBKV_NOT_FOUND);
    EXPECT(k == SENT_PTR && kl == SENT_LEN && v == SENT_PTR && vl == SENT_LEN);
    dbkv_iter_free(it);
    EXPECT_OK(dbkv_close(db));
}

/* Two live iterators interleaved do not disturb each other. */
static void test_two_iterators_interleaved(void) {
    dbkv_iter *a = NULL, *b = NULL;
    const uint8_t *k;
    size_t kl, na = 0, nb = 0;
    int ra = DBKV_OK, rb = DBKV_OK, i;
    char key[16];
    dbkv *db = open_mem();
    REQUIRE(db);
    for (i = 0; i < 50; i++) {
        snprintf(key, sizeof key, "k%d", i);
        EXPECT_OK(dbkv_set(db, S(key), S("v"), 0));
    }
    REQUIRE_OK(dbkv_scan(db, NULL, 0, &a));
    REQUIRE_OK(dbkv_scan(db, S("k1"), &b));
    while (ra == DBKV_OK || rb == DBKV_OK) {
        if (ra == DBKV_OK && (ra = dbkv_iter_next(a, &k, &kl, NULL, NULL)) == DBKV_OK) na++;
        if (rb == DBKV_OK && (rb = dbkv_iter_next(b, &k, &kl, NULL, NULL)) == DBKV_OK) nb++;
    }
    EXPECT(na == 50);
    EXPECT(nb == 11); /* k1, k10..k19 */
    dbkv_iter_free(a);
    dbkv_iter_free(b);
    EXPECT_OK(dbkv_close(db));
}

/* An iterator may outlive its handle: it keeps the data alive, and must
 * neither crash nor leak (valgrind runs this too). */
static void test_iterator_outlives_close(void) {
    dbkv_iter *it = NULL;
    const uint8_t *k, *v;
    size_t kl, vl, n = 0;
    char key[16];
    int i;
    dbkv *db = open_mem();
    REQUIRE(db);
    for (i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "k%03d", i);
        EXPECT_OK(dbkv_set(db, S(key), S(key), 0));
    }
    REQUIRE_OK(dbkv_scan(db, NULL, 0, &it));
    EXPECT_OK(dbkv_iter_next(it, &k, &kl, &v, &vl));
    n = 1;
    EXPECT_OK(dbkv_close(db));
    while (dbkv_iter_next(it, &k, &kl, &v, &vl) == DBKV_OK) {
        n++;
        EXPECT(kl == 4 && vl == 4 && memcmp(k, v, 4) == 0);
    }
    EXPECT(n == 100);
    dbkv_iter_free(it);

    /* Freeing an unfinished iterator after close is fine too. */
    db = open_mem();
    REQUIRE(db);
    EXPECT_OK(dbkv_set(db, S("a"), S("b"), 0));
    REQUIRE_OK(dbkv_scan(db, NULL, 0, &it));
    EXPECT_OK(dbkv_close(db));
    dbkv_iter_free(it);
}

/* ------------------------------------------------------------------ */

static void test_count_sync_snapshot(void) {
    uint64_t n = SENT_U64;
    dbkv *db = open_mem();
    REQUIRE(db);
    EXPECT_OK(dbkv_count(db, &n));
    EXPECT(n == 0);
    EXPECT_OK(dbkv_set(db, S("a"), S("1"), 0));
    EXPECT_OK(dbkv_set(db, S("b"), S("1"), 60000));
    EXPECT_OK(dbkv_incr(db, S("c"), 1, NULL));
    EXPECT_OK(dbkv_count(db, &n));
    EXPECT(n == 3);
    n = SENT_U64;
    EXPECT_RC(dbkv_count(db, NULL), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_count(NULL, &n), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT(n == SENT_U64);

    /* In memory, sync is a no-op that succeeds; snapshot is an argument error. */
    EXPECT_OK(dbkv_sync(db));
    EXPECT_RC(dbkv_sync(NULL), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_snapshot(db), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("data");
    EXPECT_RC(dbkv_snapshot(NULL), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT(count_of(db) == 3);
    EXPECT_OK(dbkv_close(db));
}

static void test_stats(void) {
    union {
        dbkv_statistics st;
        unsigned char bytes[sizeof(dbkv_statistics) + 64];
    } u;
    size_t i;
    dbkv *db = open_mem();
    REQUIRE(db);
    EXPECT_OK(dbkv_set(db, S("a"), S("1"), 0));
    EXPECT_OK(dbkv_set(db, S("b"), S("2"), 0));

    EXPECT_RC(dbkv_stats(NULL, &u.st), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_stats(db, NULL), DBKV_ERR_INVALID_ARGUMENT);

    /* Too small to hold even size and keys: refused, nothing written. */
    {
        static const uint64_t bad[] = {0, 1, 8, 15};
        size_t b;
        for (b = 0; b < sizeof bad / sizeof bad[0]; b++) {
            memset(u.bytes, 0xAB, sizeof u.bytes);
            u.st.size = bad[b];
            EXPECT_RC(dbkv_stats(db, &u.st), DBKV_ERR_INVALID_ARGUMENT);
            EXPECT_LAST_ERROR_HAS("size");
            EXPECT(u.st.size == bad[b]);
            for (i = 8; i < sizeof u.bytes; i++)
                if (!EXPECT(u.bytes[i] == 0xAB)) break;
        }
    }

    /* An "old" caller that knows only size and keys: nothing past 16 bytes written. */
    memset(u.bytes, 0xAB, sizeof u.bytes);
    u.st.size = 16;
    EXPECT_OK(dbkv_stats(db, &u.st));
    EXPECT(u.st.size == 16);
    EXPECT(u.st.keys == 2);
    for (i = 16; i < sizeof u.bytes; i++)
        if (!EXPECT(u.bytes[i] == 0xAB)) break;

    /* The same old caller's struct alone in a heap block of exactly 16 bytes
     * (valgrind flags any access past it). */
    {
        uint64_t *old = (uint64_t *)malloc(2 * sizeof(uint64_t));
        REQUIRE(old);
        old[0] = 16;
        old[1] = 0xABABABABABABABABull;
        EXPECT_OK(dbkv_stats(db, (dbkv_statistics *)(void *)old));
        EXPECT(old[0] == 16 && old[1] == 2);
        free(old);
    }

    /* One field more. */
    memset(u.bytes, 0xAB, sizeof u.bytes);
    u.st.size = 24;
    EXPECT_OK(dbkv_stats(db, &u.st));
    EXPECT(u.st.keys == 2 && u.st.wal_records == 0);
    for (i = 24; i < sizeof u.bytes; i++)
        if (!EXPECT(u.bytes[i] == 0xAB)) break;

    /* The full struct: an in-memory handle logs, syncs and recovers nothing. */
    memset(u.bytes, 0xAB, sizeof u.bytes);
    u.st.size = sizeof(dbkv_statistics);
    EXPECT_OK(dbkv_stats(db, &u.st));
    EXPECT(u.st.size == sizeof(dbkv_statistics));
    EXPECT(u.st.keys == 2);
    EXPECT(u.st.wal_records == 0 && u.st.wal_bytes == 0 && u.st.fsyncs == 0);
    EXPECT(u.st.durable_lsn == 0 && u.st.last_lsn == 0);
    EXPECT(u.st.snapshots_taken == 0 && u.st.last_snapshot_duration_us == 0);
    EXPECT(u.st.failed == 0);
    EXPECT(u.st.recovery_snapshot_loaded == 0 && u.st.recovery_snapshot_entries == 0);
    EXPECT(u.st.recovery_wal_records == 0 && u.st.recovery_corrupt_records == 0);
    EXPECT(u.st.recovery_bytes_dropped == 0);
    for (i = sizeof(dbkv_statistics); i < sizeof u.bytes; i++)
        if (!EXPECT(u.bytes[i] == 0xAB)) break;

    /* A "newer" caller with a bigger struct: the library writes only what it knows. */
    memset(u.bytes, 0xAB, sizeof u.bytes);
    u.st.size = sizeof u.bytes;
    EXPECT_OK(dbkv_stats(db, &u.st));
    EXPECT(u.st.keys == 2 && u.st.failed == 0);
    for (i = sizeof(dbkv_statistics); i < sizeof u.bytes; i++)
        if (!EXPECT(u.bytes[i] == 0xAB)) break;
    EXPECT_OK(dbkv_close(db));
}

/* ------------------------------------------------------------------ */

int main(void) {
    memset(big_key, 'k', sizeof big_key);
    RUN(test_last_error_empty_before_any_failure);
    RUN(test_version_matches_header);
    RUN(test_strerror_every_code);
    RUN(test_last_error_semantics);
    RUN(test_options_null_and_free);
    RUN(test_options_valid_values);
    RUN(test_options_invalid_values_leave_options_unchanged);
    RUN(test_open_close_bad_args);
    RUN(test_close_is_prompt);
    RUN(test_free_functions_accept_null);
    RUN(test_bad_keys_everywhere);
    RUN(test_longest_key_accepted);
    RUN(test_bad_values);
    RUN(test_value_over_max_is_too_large);
    RUN(test_set_get_basics);
    RUN(test_get_into);
    RUN(test_delete_exists);
    RUN(test_incr_decr);
    RUN(test_setnx);
    RUN(test_cas);
    RUN(test_ttl_expire_persist);
    RUN(test_short_ttl_expires_everywhere);
    RUN(test_mset_mget_mdel);
    RUN(test_locks);
    RUN(test_lock_expires_and_is_taken_over);
    RUN(test_scan);
    RUN(test_scan_bad_args);
    RUN(test_two_iterators_interleaved);
    RUN(test_iterator_outlives_close);
    RUN(test_count_sync_snapshot);
    RUN(test_stats);
    return tu_finish("test_api");
}
