/*
 * Persistence through the C API: a data directory keeps its contents,
 * TTLs, fencing-token order and the tokens fenced writes check across
 * close/reopen, is held exclusively (in this process and others), and
 * dbkv_sync / dbkv_snapshot / dbkv_stats report what the header promises.
 * Each test gets a fresh mkdtemp directory under $TMPDIR (the cargo driver
 * points it inside target/).
 */
#define _XOPEN_SOURCE 700

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "testdir.h"

static const char *self_exe;

/* A fresh directory per test, removed by rm_tree at the end. */
static void make_dir(char *out, size_t cap) { make_dir_named(out, cap, "dbkv-persist-"); }

/* Opens `dir` with a sync mode (or the default for mode < 0). */
static int open_dir_opts(const char *dir, int mode, uint64_t wal_segment, dbkv **db) {
    dbkv_options *o = NULL;
    int rc = dbkv_options_new(&o);
    if (rc != DBKV_OK) return rc;
    EXPECT_OK(dbkv_options_set_data_dir(o, dir));
    if (mode >= 0) EXPECT_OK(dbkv_options_set_sync_mode(o, mode));
    if (wal_segment) EXPECT_OK(dbkv_options_set_wal_segment_bytes(o, wal_segment));
    rc = dbkv_open(o, db);
    dbkv_options_free(o);
    return rc;
}

static int open_dir(const char *dir, dbkv **db) { return open_dir_opts(dir, -1, 0, db); }

static uint64_t count_of(const dbkv *db) {
    uint64_t n = 0;
    EXPECT_OK(dbkv_count(db, &n));
    return n;
}

/* ------------------------------------------------------------------ */

static void test_reopen_keeps_data(void) {
    static const uint8_t bin[] = {0, 1, 2, 255, 0};
    char dir[512];
    const uint8_t *keys[4];
    size_t klens[4], vlens[4], deleted = 0;
    const uint8_t *vals[4];
    int64_t ttl = 0;
    uint8_t *v = NULL;
    size_t vl = 0;
    int i;
    dbkv *db = NULL;
    dbkv_statistics st;
    make_dir(dir, sizeof dir);
    REQUIRE_OK(open_dir(dir, &db));

    /* One of every kind of logged write: 19 writes in all. */
    EXPECT_OK(dbkv_set(db, S("plain"), S("value"), 0));
    EXPECT_OK(dbkv_set(db, bin, sizeof bin, bin, sizeof bin, 0));
    EXPECT_OK(dbkv_set(db, S("empty"), NULL, 0, 0));
    EXPECT_OK(dbkv_set(db, S("overwritten"), S("old"), 0));
    EXPECT_OK(dbkv_set(db, S("overwritten"), S("new"), 0));
    EXPECT_OK(dbkv_incr(db, S("ctr"), 41, NULL));
    EXPECT_OK(dbkv_incr(db, S("ctr"), 1, NULL));
    EXPECT_OK(dbkv_decr(db, S("neg"), 5, NULL));
    EXPECT_OK(dbkv_setnx(db, S("nx"), S("first"), 0));
    EXPECT_OK(dbkv_set(db, S("cas"), S("a"), 0));
    EXPECT_OK(dbkv_cas(db, S("cas"), S("a"), S("b"), 0));
    EXPECT_OK(dbkv_set(db, S("gone"), S("x"), 0));
    EXPECT_OK(dbkv_delete(db, S("gone")));
    keys[0] = (const uint8_t *)"m1";
    keys[1] = (const uint8_t *)"m2";
    keys[2] = (const uint8_t *)"m3";
    for (i = 0; i < 3; i++) {
        klens[i] = 2;
        vals[i] = keys[i];
        vlens[i] = 2;
    }
    /* A later duplicate wins, in memory and on replay alike. */
    keys[3] = (const uint8_t *)"m2";
    klens[3] = 2;
    vals[3] = (const uint8_t *)"m2b";
    vlens[3] = 3;
    EXPECT_OK(dbkv_mset(db, keys, klens, vals, vlens, 4, 0));
    EXPECT(tu_value_is(db, "m2", "m2b"));
    EXPECT_OK(dbkv_mdel(db, keys, klens, 1, &deleted));
    EXPECT_OK(dbkv_set(db, S("persisted"), S("p"), 60000));
    EXPECT_OK(dbkv_persist(db, S("persisted")));
    EXPECT_OK(dbkv_set(db, S("expiring"), S("e"), 0));
    EXPECT_OK(dbkv_expire(db, S("expiring"), 60000));
    EXPECT(count_of(db) == 12);
    EXPECT_OK(dbkv_close(db));

    db = NULL;
    REQUIRE_OK(open_dir(dir, &db));
    EXPECT(count_of(db) == 12);
    EXPECT(tu_value_is(db, "plain", "value"));
    EXPECT_OK(dbkv_get(db, bin, sizeof bin, &v, &vl));
    EXPECT(vl == sizeof bin && v && memcmp(v, bin, vl) == 0);
    dbkv_free(v);
    EXPECT(tu_value_is(db, "empty", ""));
    EXPECT(tu_value_is(db, "overwritten", "new"));
    EXPECT(tu_value_is(db, "ctr", "42"));
    EXPECT(tu_value_is(db, "neg", "-5"));
    EXPECT(tu_value_is(db, "nx", "first"));
    EXPECT(tu_value_is(db, "cas", "b"));
    EXPECT_RC(dbkv_exists(db, S("gone")), DBKV_NOT_FOUND);
    EXPECT_RC(dbkv_exists(db, S("m1")), DBKV_NOT_FOUND);
    EXPECT(tu_value_is(db, "m2", "m2b"));
    EXPECT(tu_value_is(db, "m3", "m3"));
    EXPECT_OK(dbkv_ttl(db, S("persisted"), &ttl));
    EXPECT(ttl == -1);
    EXPECT_OK(dbkv_ttl(db, S("expiring"), &ttl));
    EXPECT(ttl > 0 && ttl <= 60000);
    /* A counter is still a counter. */
    EXPECT_OK(dbkv_incr(db, S("ctr"), 1, NULL));

    /* Recovery figures: no snapshot was taken, so all 19 writes came from the WAL. */
    st = stats_of(db);
    EXPECT(st.keys == 12);
    if (!EXPECT(st.recovery_wal_records >= 19 && st.recovery_snapshot_entries == 0))
        fprintf(stderr, "    recovery: snapshot_loaded %llu entries %llu, wal_records %llu\n",
                (unsigned long long)st.recovery_snapshot_loaded, (unsigned long long)st.recovery_snapshot_entries,
                (unsigned long long)st.recovery_wal_records);
    EXPECT(st.recovery_corrupt_records == 0 && st.recovery_bytes_dropped == 0);
    EXPECT(st.failed == 0);
    /* Per-handle counters start again at open: one incr since. */
    EXPECT(st.wal_records == 1);

    /* A second generation of writes appends to the recovered state. */
    EXPECT_OK(dbkv_delete(db, S("plain")));
    EXPECT_OK(dbkv_close(db));
    db = NULL;
    REQUIRE_OK(open_dir(dir, &db));
    EXPECT(tu_value_is(db, "ctr", "43"));
    EXPECT_RC(dbkv_exists(db, S("plain")), DBKV_NOT_FOUND);
    EXPECT(count_of(db) == 11);
    EXPECT_OK(dbkv_close(db));
    rm_tree(dir);
}

static void test_every_sync_mode_survives_close(void) {
    static const int modes[] = {DBKV_SYNC_NONE, DBKV_SYNC_INTERVAL, DBKV_SYNC_ALWAYS};
    size_t m;
    for (m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        char dir[512], key[32];
        int i;
        dbkv *db = NULL;
        make_dir(dir, sizeof dir);
        REQUIRE_OK(open_dir_opts(dir, modes[m], 0, &db));
        for (i = 0; i < 100; i++) {
            snprintf(key, sizeof key, "k%d", i);
            EXPECT_OK(dbkv_set(db, S(key), S(key), 0));
        }
        EXPECT_OK(dbkv_close(db));
        db = NULL;
        REQUIRE_OK(open_dir_opts(dir, modes[m], 0, &db));
        if (!EXPECT(count_of(db) == 100)) fprintf(stderr, "    sync mode %d\n", modes[m]);
        EXPECT(tu_value_is(db, "k99", "k99"));
        EXPECT_OK(dbkv_close(db));
        rm_tree(dir);
    }
}

/* Expiry is absolute wall-clock time: it keeps counting while closed. */
static void test_ttl_survives_reopen(void) {
    char dir[512];
    int64_t before = 0, after = 0;
    dbkv *db = NULL;
    make_dir(dir, sizeof dir);
    REQUIRE_OK(open_dir(dir, &db));
    EXPECT_OK(dbkv_set(db, S("long"), S("v"), 60000));
    EXPECT_OK(dbkv_set(db, S("short"), S("v"), 300));
    EXPECT_OK(dbkv_set(db, S("ctr"), S("1"), 60000));
    EXPECT_OK(dbkv_incr(db, S("ctr"), 1, NULL)); /* keeps its TTL */
    EXPECT_OK(dbkv_lock(db, S("lock"), S("me"), 60000, NULL));
    EXPECT_OK(dbkv_ttl(db, S("long"), &before));
    EXPECT_OK(dbkv_close(db));
    tu_sleep_ms(450);

    db = NULL;
    REQUIRE_OK(open_dir(dir, &db));
    EXPECT_OK(dbkv_ttl(db, S("long"), &after));
    EXPECT(after > 0 && after <= before - 400);
    EXPECT_RC(dbkv_exists(db, S("short")), DBKV_NOT_FOUND);
    after = 0;
    EXPECT_OK(dbkv_ttl(db, S("ctr"), &after));
    EXPECT(after > 0 && after <= 60000);
    EXPECT(tu_value_is(db, "ctr", "2"));
    /* The lock is still held, by the same owner. */
    EXPECT(tu_value_is(db, "lock", "me"));
    EXPECT_RC(dbkv_lock(db, S("lock"), S("other"), 1000, NULL), DBKV_LOCKED);
    EXPECT_OK(dbkv_unlock(db, S("lock"), S("me")));
    EXPECT(count_of(db) == 2);
    EXPECT_OK(dbkv_close(db));
    rm_tree(dir);
}

/* ------------------------------------------------------------------ */

/* Child mode: try to open a directory another process holds. */
static int try_open_child(const char *dir) {
    dbkv *db = (dbkv *)&db;
    int rc = open_dir(dir, &db);
    if (rc == DBKV_OK) {
        dbkv_close(db);
        return 11;
    }
    if (db != (dbkv *)&db) return 13; /* *out written on failure */
    fprintf(stderr, "    child: %s: %s\n", tu_status_name(rc), dbkv_last_error());
    return rc == DBKV_ERR_BUSY ? 10 : 12;
}

static int run_child(const char *dir) {
    int status = 0;
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        execl(self_exe, self_exe, "--try-open", dir, (char *)NULL);
        _exit(127);
    }
    if (waitpid(pid, &status, 0) < 0) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_second_open_is_busy(void) {
    char dir[512], alias[600];
    dbkv *a = NULL, *b = (dbkv *)&b;
    int rc;
    make_dir(dir, sizeof dir);
    REQUIRE_OK(open_dir(dir, &a));
    EXPECT_OK(dbkv_set(a, S("k"), S("v"), 0));

    EXPECT_RC(open_dir(dir, &b), DBKV_ERR_BUSY);
    EXPECT(b == (dbkv *)&b);
    EXPECT(strlen(dbkv_last_error()) > 0);
    /* The same directory under another spelling is still the same directory. */
    snprintf(alias, sizeof alias, "%s/./", dir);
    EXPECT_RC(open_dir(alias, &b), DBKV_ERR_BUSY);
    EXPECT(b == (dbkv *)&b);

    /* Another process is refused too. */
    rc = run_child(dir);
    if (!EXPECT(rc == 10)) fprintf(stderr, "    child exit %d (10 = BUSY, 11 = opened, 12 = other error)\n", rc);

    /* The failed opens held nothing: once closed, the directory opens again. */
    EXPECT_OK(dbkv_close(a));
    rc = run_child(dir);
    if (!EXPECT(rc == 11)) fprintf(stderr, "    child exit %d after close (want 11 = opened)\n", rc);
    b = NULL;
    EXPECT_OK(open_dir(dir, &b));
    if (b) {
        EXPECT(tu_value_is(b, "k", "v"));
        EXPECT_OK(dbkv_close(b));
    }
    rm_tree(dir);
}

static void test_open_errors(void) {
    char dir[512], path[600];
    dbkv *db = (dbkv *)&db;
    FILE *f;
    struct stat sb;
    make_dir(dir, sizeof dir);

    /* The data directory is created if missing... */
    snprintf(path, sizeof path, "%s/fresh", dir);
    db = NULL;
    EXPECT_OK(open_dir(path, &db));
    if (db) EXPECT_OK(dbkv_close(db));
    EXPECT(stat(path, &sb) == 0 && S_ISDIR(sb.st_mode));

    /* ...but its parent must exist. */
    db = (dbkv *)&db;
    snprintf(path, sizeof path, "%s/missing/child", dir);
    EXPECT_RC(open_dir(path, &db), DBKV_ERR_IO);
    EXPECT(strlen(dbkv_last_error()) > 0);
    if (!EXPECT(db == (dbkv *)&db)) dbkv_close(db);

    /* A regular file where the directory should be. */
    db = (dbkv *)&db;
    snprintf(path, sizeof path, "%s/file", dir);
    f = fopen(path, "w");
    REQUIRE(f);
    fputs("not a directory", f);
    fclose(f);
    EXPECT_RC(open_dir(path, &db), DBKV_ERR_IO);
    if (!EXPECT(db == (dbkv *)&db)) dbkv_close(db);
    rm_tree(dir);
}

/* ------------------------------------------------------------------ */

static void test_sync_and_stats(void) {
    char dir[512], key[32];
    dbkv_statistics st, st2;
    uint64_t lsn0;
    uint8_t big[16];
    int i;
    dbkv *db = NULL;
    dbkv_options *o = NULL;
    make_dir(dir, sizeof dir);
    REQUIRE_OK(dbkv_options_new(&o));
    EXPECT_OK(dbkv_options_set_data_dir(o, dir));
    EXPECT_OK(dbkv_options_set_sync_mode(o, DBKV_SYNC_NONE));
    EXPECT_OK(dbkv_options_set_max_value_bytes(o, 8));
    EXPECT_OK(dbkv_open(o, &db));
    dbkv_options_free(o);
    REQUIRE(db);

    st = stats_of(db);
    EXPECT(st.wal_records == 0 && st.failed == 0);
    lsn0 = st.last_lsn;
    for (i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "k%d", i);
        EXPECT_OK(dbkv_set(db, S(key), S("v"), 0));
    }
    st = stats_of(db);
    EXPECT(st.keys == 10);
    EXPECT(st.wal_records == 10);
    EXPECT(st.last_lsn > lsn0);
    EXPECT(st.durable_lsn <= st.last_lsn);

    /* Refused writes and documented no-ops log nothing. */
    memset(big, 'x', sizeof big);
    EXPECT_RC(dbkv_set(db, S("k0"), big, sizeof big, 0), DBKV_ERR_TOO_LARGE);
    EXPECT_RC(dbkv_set(db, S(""), S("v"), 0), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_setnx(db, S("k0"), S("w"), 0), DBKV_EXISTS);
    EXPECT_RC(dbkv_cas(db, S("k0"), S("nope"), S("w"), 0), DBKV_MISMATCH);
    EXPECT_RC(dbkv_lock(db, S("k0"), S("someone"), 1000, NULL), DBKV_LOCKED);
    EXPECT_RC(dbkv_unlock(db, S("k0"), S("someone")), DBKV_NOT_OWNER);
    st2 = stats_of(db);
    EXPECT(st2.wal_records == st.wal_records && st2.last_lsn == st.last_lsn);

    /* dbkv_sync makes everything so far durable, in any mode. */
    EXPECT_OK(dbkv_sync(db));
    st2 = stats_of(db);
    EXPECT(st2.fsyncs > st.fsyncs);
    EXPECT(st2.durable_lsn == st2.last_lsn);
    /* Once synced, every record has been written out: at least key + value each. */
    EXPECT(st2.wal_bytes > 10 * 3);

    /* Lock grants, extends and unlocks are durable on return even in SYNC_NONE. */
    EXPECT_OK(dbkv_set(db, S("pending"), S("v"), 0));
    EXPECT_OK(dbkv_lock(db, S("L"), S("me"), 60000, NULL));
    st = stats_of(db);
    EXPECT(st.durable_lsn == st.last_lsn);
    EXPECT_OK(dbkv_set(db, S("pending2"), S("v"), 0));
    EXPECT_OK(dbkv_extend_lock(db, S("L"), S("me"), 60000));
    st = stats_of(db);
    EXPECT(st.durable_lsn == st.last_lsn);
    EXPECT_OK(dbkv_set(db, S("pending3"), S("v"), 0));
    EXPECT_OK(dbkv_unlock(db, S("L"), S("me")));
    st = stats_of(db);
    EXPECT(st.durable_lsn == st.last_lsn);

    /* The old-struct rule holds for persistent handles too. */
    {
        union {
            dbkv_statistics st;
            unsigned char bytes[sizeof(dbkv_statistics)];
        } u;
        memset(u.bytes, 0xAB, sizeof u.bytes);
        u.st.size = 16;
        EXPECT_OK(dbkv_stats(db, &u.st));
        EXPECT(u.st.keys == 13);
        for (i = 16; i < (int)sizeof u.bytes; i++)
            if (!EXPECT(u.bytes[i] == 0xAB)) break;
    }
    EXPECT_OK(dbkv_close(db));
    rm_tree(dir);
}

static void test_sync_always_is_durable_on_return(void) {
    char dir[512];
    dbkv_statistics st;
    dbkv *db = NULL;
    make_dir(dir, sizeof dir);
    REQUIRE_OK(open_dir_opts(dir, DBKV_SYNC_ALWAYS, 0, &db));
    EXPECT_OK(dbkv_set(db, S("a"), S("1"), 0));
    st = stats_of(db);
    EXPECT(st.wal_records == 1 && st.durable_lsn == st.last_lsn && st.fsyncs >= 1);
    EXPECT_OK(dbkv_incr(db, S("c"), 1, NULL));
    st = stats_of(db);
    EXPECT(st.durable_lsn == st.last_lsn);
    EXPECT_OK(dbkv_close(db));
    rm_tree(dir);
}

/* SYNC_INTERVAL: a write becomes durable within about one interval. */
static void test_sync_interval_catches_up(void) {
    char dir[512];
    dbkv_statistics st;
    dbkv_options *o = NULL;
    dbkv *db = NULL;
    int64_t deadline;
    make_dir(dir, sizeof dir);
    REQUIRE_OK(dbkv_options_new(&o));
    EXPECT_OK(dbkv_options_set_data_dir(o, dir));
    EXPECT_OK(dbkv_options_set_sync_mode(o, DBKV_SYNC_INTERVAL));
    EXPECT_OK(dbkv_options_set_sync_interval_ms(o, 10));
    EXPECT_OK(dbkv_open(o, &db));
    dbkv_options_free(o);
    REQUIRE(db);
    EXPECT_OK(dbkv_set(db, S("a"), S("1"), 0));
    EXPECT_OK(dbkv_set(db, S("b"), S("2"), 0));
    /* No dbkv_sync here: only the interval fsync can make these durable. */
    deadline = tu_now_ms() + 3000;
    do {
        st = stats_of(db);
        if (st.durable_lsn == st.last_lsn && st.fsyncs > 0) break;
        tu_sleep_ms(5);
    } while (tu_now_ms() < deadline);
    EXPECT(st.wal_records == 2 && st.durable_lsn == st.last_lsn && st.fsyncs > 0);
    EXPECT_OK(dbkv_close(db));
    rm_tree(dir);
}

/* ------------------------------------------------------------------ */

static void test_snapshot_and_recovery_stats(void) {
    char dir[512], key[32];
    dbkv_statistics st;
    uint64_t at_snapshot;
    int i;
    dbkv *db = NULL;
    make_dir(dir, sizeof dir);
    REQUIRE_OK(open_dir(dir, &db));
    for (i = 0; i < 500; i++) {
        snprintf(key, sizeof key, "s%d", i);
        EXPECT_OK(dbkv_set(db, S(key), S(key), i % 2 ? 60000 : 0));
    }
    EXPECT_OK(dbkv_incr(db, S("ctr"), 7, NULL));
    EXPECT_OK(dbkv_lock(db, S("lock"), S("me"), 60000, NULL));
    at_snapshot = count_of(db);
    EXPECT(at_snapshot == 502);
    EXPECT_OK(dbkv_snapshot(db));
    st = stats_of(db);
    EXPECT(st.snapshots_taken == 1);
    EXPECT(st.failed == 0);
    /* Writes after the snapshot come back from the WAL. */
    for (i = 0; i < 5; i++) {
        snprintf(key, sizeof key, "after%d", i);
        EXPECT_OK(dbkv_set(db, S(key), S("a"), 0));
    }
    EXPECT_OK(dbkv_delete(db, S("s0")));
    EXPECT_OK(dbkv_incr(db, S("ctr"), 1, NULL));
    EXPECT_OK(dbkv_close(db));

    db = NULL;
    REQUIRE_OK(open_dir(dir, &db));
    st = stats_of(db);
    EXPECT(st.recovery_snapshot_loaded == 1);
    if (!EXPECT(st.recovery_snapshot_entries == at_snapshot))
        fprintf(stderr, "    snapshot entries %llu, want %llu\n", (unsigned long long)st.recovery_snapshot_entries,
                (unsigned long long)at_snapshot);
    EXPECT(st.recovery_wal_records >= 7);
    EXPECT(st.recovery_corrupt_records == 0 && st.recovery_bytes_dropped == 0);
    EXPECT(st.keys == 506);
    EXPECT(st.snapshots_taken == 0); /* per handle */
    EXPECT(tu_value_is(db, "s499", "s499"));
    EXPECT(tu_value_is(db, "after4", "a"));
    EXPECT(tu_value_is(db, "ctr", "8"));
    EXPECT(tu_value_is(db, "lock", "me"));
    EXPECT_RC(dbkv_exists(db, S("s0")), DBKV_NOT_FOUND);
    {
        int64_t ttl = 0;
        EXPECT_OK(dbkv_ttl(db, S("s1"), &ttl));
        EXPECT(ttl > 0 && ttl <= 60000);
        EXPECT_OK(dbkv_ttl(db, S("s2"), &ttl));
        EXPECT(ttl == -1);
    }

    /* Snapshot again right away: nothing left in the WAL to replay afterwards. */
    EXPECT_OK(dbkv_snapshot(db));
    EXPECT_OK(dbkv_snapshot(db));
    st = stats_of(db);
    EXPECT(st.snapshots_taken == 2);
    EXPECT_OK(dbkv_close(db));
    db = NULL;
    REQUIRE_OK(open_dir(dir, &db));
    st = stats_of(db);
    EXPECT(st.recovery_snapshot_loaded == 1 && st.recovery_snapshot_entries == 506);
    EXPECT(st.recovery_wal_records == 0);
    EXPECT(count_of(db) == 506);
    EXPECT_OK(dbkv_close(db));
    rm_tree(dir);
}

static void test_snapshot_keep_one_and_empty_snapshot(void) {
    char dir[512];
    dbkv_statistics st;
    dbkv_options *o = NULL;
    dbkv *db = NULL;
    int i;
    make_dir(dir, sizeof dir);
    REQUIRE_OK(dbkv_options_new(&o));
    EXPECT_OK(dbkv_options_set_data_dir(o, dir));
    EXPECT_OK(dbkv_options_set_snapshot_keep(o, 1));
    EXPECT_OK(dbkv_open(o, &db));
    REQUIRE(db);
    EXPECT_OK(dbkv_snapshot(db)); /* of an empty database */
    for (i = 0; i < 3; i++) {
        EXPECT_OK(dbkv_incr(db, S("gen"), 1, NULL));
        EXPECT_OK(dbkv_snapshot(db));
    }
    EXPECT_OK(dbkv_close(db));
    db = NULL;
    EXPECT_OK(dbkv_open(o, &db));
    dbkv_options_free(o);
    REQUIRE(db);
    st = stats_of(db);
    EXPECT(st.recovery_snapshot_loaded == 1 && st.recovery_snapshot_entries == 1);
    EXPECT(tu_value_is(db, "gen", "3"));
    EXPECT_OK(dbkv_close(db));
    rm_tree(dir);
}

/* Tokens are "strictly greater than every token this data directory handed
 * out before, across restarts": also when no lock entry remains to remember
 * them, and whether recovery starts from the WAL or from a snapshot. */
static void test_lock_tokens_grow_across_reopen(void) {
    char dir[512];
    uint64_t t1 = 0, t2 = 0, t3 = 0, t4 = 0, t5 = 0;
    dbkv *db = NULL;
    make_dir(dir, sizeof dir);
    REQUIRE_OK(open_dir(dir, &db));
    EXPECT_OK(dbkv_lock(db, S("L"), S("a"), 60000, &t1));
    EXPECT_OK(dbkv_lock(db, S("L"), S("a"), 60000, &t2));
    EXPECT(t2 > t1);
    EXPECT_OK(dbkv_unlock(db, S("L"), S("a")));
    EXPECT_OK(dbkv_close(db));

    db = NULL;
    REQUIRE_OK(open_dir(dir, &db));
    EXPECT(count_of(db) == 0);
    EXPECT_OK(dbkv_lock(db, S("M"), S("b"), 60000, &t3));
    if (!EXPECT(t3 > t2)) fprintf(stderr, "    token %llu after reopen, %llu before\n", (unsigned long long)t3, (unsigned long long)t2);
    EXPECT_OK(dbkv_unlock(db, S("M"), S("b")));
    EXPECT_OK(dbkv_snapshot(db));
    EXPECT_OK(dbkv_close(db));

    db = NULL;
    REQUIRE_OK(open_dir(dir, &db));
    EXPECT_OK(dbkv_lock(db, S("L"), S("c"), 60000, &t4));
    if (!EXPECT(t4 > t3)) fprintf(stderr, "    token %llu after snapshot+reopen, %llu before\n", (unsigned long long)t4, (unsigned long long)t3);
    EXPECT_OK(dbkv_close(db));

    /* A held lock survives too, and a refreshed grant still moves forward. */
    db = NULL;
    REQUIRE_OK(open_dir(dir, &db));
    EXPECT_RC(dbkv_lock(db, S("L"), S("d"), 60000, NULL), DBKV_LOCKED);
    EXPECT_OK(dbkv_lock(db, S("L"), S("c"), 60000, &t5));
    EXPECT(t5 > t4);
    EXPECT_OK(dbkv_close(db));
    rm_tree(dir);
}

/* A fenced write is an ordinary logged write: it survives a reopen (from
 * the WAL and from a snapshot), and so does the token it was checked
 * against, so the holder can go on writing and a stale holder stays
 * refused. A refused write logs nothing. */
static void test_fenced_writes_survive_reopen(void) {
    char dir[512];
    uint64_t t1 = 0, t2 = 0;
    dbkv *db = NULL;
    make_dir(dir, sizeof dir);
    REQUIRE_OK(open_dir_opts(dir, DBKV_SYNC_ALWAYS, 0, &db));
    EXPECT_OK(dbkv_lock(db, S("lock:job"), S("a"), 60000, &t1));
    EXPECT_OK(dbkv_set(db, S("gone"), S("x"), 0));
    EXPECT_OK(dbkv_set_fenced(db, S("lock:job"), t1, S("job:result"), S("v1"), 0));
    EXPECT_OK(dbkv_delete_fenced(db, S("lock:job"), t1, S("gone")));
    EXPECT_RC(dbkv_set_fenced(db, S("lock:job"), t1 + 1, S("never"), S("x"), 0), DBKV_STALE_TOKEN);
    EXPECT_OK(dbkv_close(db));

    db = NULL;
    REQUIRE_OK(open_dir(dir, &db));
    EXPECT(tu_value_is(db, "job:result", "v1"));
    EXPECT_RC(dbkv_exists(db, S("gone")), DBKV_NOT_FOUND);
    EXPECT_RC(dbkv_exists(db, S("never")), DBKV_NOT_FOUND);
    EXPECT(count_of(db) == 2);
    /* The lock came back with its token: the holder writes on. */
    EXPECT_OK(dbkv_set_fenced(db, S("lock:job"), t1, S("job:result"), S("v2"), 0));
    EXPECT_OK(dbkv_lock(db, S("lock:job"), S("a"), 60000, &t2));
    EXPECT(t2 > t1);
    EXPECT_OK(dbkv_snapshot(db));
    EXPECT_OK(dbkv_close(db));

    db = NULL;
    REQUIRE_OK(open_dir(dir, &db));
    EXPECT(tu_value_is(db, "job:result", "v2"));
    EXPECT_RC(dbkv_set_fenced(db, S("lock:job"), t1, S("job:result"), S("stale"), 0), DBKV_STALE_TOKEN);
    EXPECT_OK(dbkv_set_fenced(db, S("lock:job"), t2, S("job:result"), S("v3"), 0));
    EXPECT_OK(dbkv_close(db));

    db = NULL;
    REQUIRE_OK(open_dir(dir, &db));
    EXPECT(tu_value_is(db, "job:result", "v3"));
    EXPECT_OK(dbkv_close(db));
    rm_tree(dir);
}

/* Small WAL segments force many rotations; all of them must be replayed. */
static void test_segment_rotation(void) {
    char dir[512], key[32], val[80];
    int i;
    dbkv *db = NULL;
    make_dir(dir, sizeof dir);
    REQUIRE_OK(open_dir_opts(dir, DBKV_SYNC_NONE, 4096, &db));
    for (i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "key%05d", i);
        snprintf(val, sizeof val, "%064d", i);
        EXPECT_OK(dbkv_set(db, S(key), S(val), 0));
    }
    EXPECT_OK(dbkv_close(db));
    db = NULL;
    REQUIRE_OK(open_dir_opts(dir, DBKV_SYNC_NONE, 4096, &db));
    EXPECT(count_of(db) == 2000);
    snprintf(val, sizeof val, "%064d", 1234);
    EXPECT(tu_value_is(db, "key01234", val));
    snprintf(val, sizeof val, "%064d", 1999);
    EXPECT(tu_value_is(db, "key01999", val));
    EXPECT_OK(dbkv_close(db));
    rm_tree(dir);
}

struct writer_arg {
    const dbkv *db;
    int id;
};

static void *sync_always_writer(void *p) {
    struct writer_arg *a = (struct writer_arg *)p;
    char key[32];
    int i;
    for (i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "w%d:%d", a->id, i);
        EXPECT_OK(dbkv_set(a->db, S(key), S(key), 0));
        EXPECT_OK(dbkv_incr(a->db, S("shared"), 1, NULL));
    }
    return NULL;
}

/* Concurrent writers under SYNC_ALWAYS share fsyncs; every acknowledged
 * write must still be in the WAL, in an order that replays to the same state. */
static void test_concurrent_writers_sync_always(void) {
    enum { W = 4 };
    char dir[512];
    pthread_t th[W];
    struct writer_arg args[W];
    dbkv_statistics st;
    int t;
    dbkv *db = NULL;
    make_dir(dir, sizeof dir);
    REQUIRE_OK(open_dir_opts(dir, DBKV_SYNC_ALWAYS, 0, &db));
    for (t = 0; t < W; t++) {
        args[t].db = db;
        args[t].id = t;
        if (pthread_create(&th[t], NULL, sync_always_writer, &args[t]) != 0) exit(2);
    }
    for (t = 0; t < W; t++) pthread_join(th[t], NULL);
    st = stats_of(db);
    EXPECT(st.wal_records == W * 400);
    EXPECT(st.durable_lsn == st.last_lsn);
    EXPECT(st.fsyncs >= 1);
    EXPECT_OK(dbkv_close(db));

    db = NULL;
    REQUIRE_OK(open_dir(dir, &db));
    EXPECT(count_of(db) == W * 200 + 1);
    EXPECT(tu_value_is(db, "shared", "800"));
    EXPECT(tu_value_is(db, "w3:199", "w3:199"));
    st = stats_of(db);
    EXPECT(st.recovery_wal_records == W * 400);
    EXPECT_OK(dbkv_close(db));
    rm_tree(dir);
}

static void test_many_reopens(void) {
    char dir[512];
    int i;
    dbkv *db = NULL;
    make_dir(dir, sizeof dir);
    for (i = 0; i < 5; i++) {
        db = NULL;
        REQUIRE_OK(open_dir(dir, &db));
        EXPECT_OK(dbkv_incr(db, S("opens"), 1, NULL));
        EXPECT_OK(dbkv_close(db));
    }
    db = NULL;
    REQUIRE_OK(open_dir(dir, &db));
    EXPECT(tu_value_is(db, "opens", "5"));
    EXPECT_OK(dbkv_close(db));
    rm_tree(dir);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--try-open") == 0) return try_open_child(argv[2]);
    self_exe = argv[0];
    RUN(test_reopen_keeps_data);
    RUN(test_every_sync_mode_survives_close);
    RUN(test_ttl_survives_reopen);
    RUN(test_second_open_is_busy);
    RUN(test_open_errors);
    RUN(test_sync_and_stats);
    RUN(test_sync_always_is_durable_on_return);
    RUN(test_sync_interval_catches_up);
    RUN(test_snapshot_and_recovery_stats);
    RUN(test_snapshot_keep_one_and_empty_snapshot);
    RUN(test_lock_tokens_grow_across_reopen);
    RUN(test_fenced_writes_survive_reopen);
    RUN(test_segment_rotation);
    RUN(test_concurrent_writers_sync_always);
    RUN(test_many_reopens);
    return tu_finish("test_persist");
}
