/*
 * Observability through the C API: the logger callback (what a damaged
 * open cuts, snapshots, levels, NULL to switch it off), the metrics of
 * dbkv_stats, and error messages a person can act on (not a directory,
 * missing parent, corruption naming the file, offset and the mode that
 * recovers it, without repeating the status name).
 */
#define _XOPEN_SOURCE 700

#include <dirent.h>

#include "testutil.h"
#include "testdir.h"

static void make_dir(char *out, size_t cap) { make_dir_named(out, cap, "dbkv-observe-"); }

/* Messages received by the logger, as "LEVEL|text" lines. */
struct log_buf {
    pthread_mutex_t mu;
    char text[65536];
    size_t len;
    int calls;
};

static void collect(void *userdata, int level, const char *msg) {
    struct log_buf *b = (struct log_buf *)userdata;
    pthread_mutex_lock(&b->mu);
    b->calls++;
    b->len += (size_t)snprintf(b->text + b->len, sizeof b->text - b->len, "%d|%s\n", level, msg);
    if (b->len >= sizeof b->text) b->len = sizeof b->text - 1;
    pthread_mutex_unlock(&b->mu);
}

static void log_init(struct log_buf *b) {
    memset(b, 0, sizeof *b);
    pthread_mutex_init(&b->mu, NULL);
}

static int log_has(struct log_buf *b, const char *needle) {
    int found;
    pthread_mutex_lock(&b->mu);
    found = strstr(b->text, needle) != NULL;
    pthread_mutex_unlock(&b->mu);
    if (!found) fprintf(stderr, "    log lacks \"%s\"; it was:\n%s\n", needle, b->text);
    return found;
}

static int open_logged(const char *dir, struct log_buf *b, int level, int recovery, dbkv **db) {
    dbkv_options *o = NULL;
    int rc = dbkv_options_new(&o);
    if (rc != DBKV_OK) return rc;
    EXPECT_OK(dbkv_options_set_data_dir(o, dir));
    if (b) EXPECT_OK(dbkv_options_set_logger(o, collect, b));
    if (level) EXPECT_OK(dbkv_options_set_log_level(o, level));
    EXPECT_OK(dbkv_options_set_recovery_mode(o, recovery));
    rc = dbkv_open(o, db);
    dbkv_options_free(o);
    return rc;
}

/* The path of the newest WAL segment of `dir`. */
static int newest_segment(const char *dir, char *out, size_t cap) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char best[256] = "";
    if (!d) return 0;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "wal-", 4) == 0 && strstr(e->d_name, ".log") && !strstr(e->d_name, ".dropped") &&
            strcmp(e->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", e->d_name);
    }
    closedir(d);
    if (!best[0]) return 0;
    snprintf(out, cap, "%s/%s", dir, best);
    return 1;
}

/* Writes 100 keys (no snapshot) and flips one byte near the end of the WAL. */
static int write_and_damage(const char *dir, char *segment, size_t cap) {
    dbkv *db = NULL;
    char key[32];
    long size;
    int i, c;
    FILE *f;
    if (!EXPECT_OK(open_logged(dir, NULL, 0, DBKV_RECOVERY_POINT_IN_TIME, &db))) return 0;
    for (i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "key%03d", i);
        EXPECT_OK(dbkv_set(db, S(key), S("value-value-value"), 0));
    }
    EXPECT_OK(dbkv_close(db));
    if (!EXPECT(newest_segment(dir, segment, cap))) return 0;
    f = fopen(segment, "r+b");
    if (!EXPECT(f != NULL)) return 0;
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, size - 10, SEEK_SET);
    c = fgetc(f);
    fseek(f, size - 10, SEEK_SET);
    fputc(c ^ 0x40, f);
    fclose(f);
    return 1;
}

static void test_damaged_open_logs_what_it_cut(void) {
    char dir[512], segment[800];
    const char *name;
    struct log_buf b;
    dbkv *db = NULL;
    make_dir(dir, sizeof dir);
    log_init(&b);
    REQUIRE(write_and_damage(dir, segment, sizeof segment));
    name = strrchr(segment, '/') + 1;

    /* ABSOLUTE refuses, names the file, offset and what would recover it. */
    EXPECT_RC(open_logged(dir, &b, 0, DBKV_RECOVERY_ABSOLUTE, &db), DBKV_ERR_CORRUPTION);
    EXPECT_LAST_ERROR_HAS("at offset");
    EXPECT_LAST_ERROR_HAS("reopen with recovery_mode=POINT_IN_TIME to cut");
    EXPECT_LAST_ERROR_HAS("dbkv check --repair");
    EXPECT(strstr(dbkv_last_error(), name) != NULL);
    EXPECT(strstr(dbkv_last_error(), dir) != NULL);
    EXPECT(strncmp(dbkv_last_error(), "corruption", 10) != 0);
    EXPECT(log_has(&b, "1|"));

    /* POINT_IN_TIME cuts, and says so at WARN with the file and offset. */
    log_init(&b);
    REQUIRE_OK(open_logged(dir, &b, 0, DBKV_RECOVERY_POINT_IN_TIME, &db));
    EXPECT(log_has(&b, "2|recovery (POINT_IN_TIME)"));
    EXPECT(log_has(&b, name));
    EXPECT(log_has(&b, "at offset"));
    EXPECT(log_has(&b, "cut the last"));
    EXPECT(log_has(&b, "3|recovered"));
    EXPECT(log_has(&b, "damaged record"));
    /* The repair is followed by a snapshot, logged at INFO. */
    EXPECT(log_has(&b, "snapshot written"));
    EXPECT_OK(dbkv_close(db));
    rm_tree(dir);
}

static void test_log_level_and_null_logger(void) {
    char dir[512];
    struct log_buf b;
    dbkv *db = NULL;
    dbkv_options *o = NULL;
    make_dir(dir, sizeof dir);
    log_init(&b);
    /* WARN and above only: a clean open's INFO summary is not delivered. */
    REQUIRE_OK(open_logged(dir, &b, DBKV_LOG_WARN, DBKV_RECOVERY_POINT_IN_TIME, &db));
    EXPECT_OK(dbkv_set(db, S("k"), S("v"), 0));
    EXPECT_OK(dbkv_snapshot(db));
    EXPECT_OK(dbkv_close(db));
    EXPECT(b.calls == 0);
    /* DEBUG: everything, INFO summary included. */
    REQUIRE_OK(open_logged(dir, &b, DBKV_LOG_DEBUG, DBKV_RECOVERY_POINT_IN_TIME, &db));
    EXPECT_OK(dbkv_close(db));
    EXPECT(log_has(&b, "3|recovered"));
    /* Bad levels are refused and name the valid ones; NULL pointers too. */
    REQUIRE_OK(dbkv_options_new(&o));
    EXPECT_RC(dbkv_options_set_log_level(o, 0), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("DBKV_LOG_DEBUG (4)");
    EXPECT_RC(dbkv_options_set_log_level(o, 5), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_options_set_logger(NULL, collect, &b), DBKV_ERR_INVALID_ARGUMENT);
    /* A NULL callback switches logging off. */
    EXPECT_OK(dbkv_options_set_logger(o, collect, &b));
    EXPECT_OK(dbkv_options_set_logger(o, NULL, NULL));
    EXPECT_OK(dbkv_options_set_data_dir(o, dir));
    b.calls = 0;
    REQUIRE_OK(dbkv_open(o, &db));
    EXPECT_OK(dbkv_close(db));
    EXPECT(b.calls == 0);
    dbkv_options_free(o);
    rm_tree(dir);
}

static void test_metrics(void) {
    char dir[512];
    dbkv *db = NULL;
    dbkv_options *o = NULL;
    dbkv_statistics st;
    uint8_t *v = NULL;
    size_t len = 0;
    int64_t n = 0;
    uint64_t token = 0;
    const uint8_t *keys[2] = {(const uint8_t *)"a", (const uint8_t *)"b"};
    size_t lens[2] = {1, 1};
    make_dir(dir, sizeof dir);
    REQUIRE_OK(dbkv_options_new(&o));
    EXPECT_OK(dbkv_options_set_data_dir(o, dir));
    EXPECT_OK(dbkv_options_set_sync_mode(o, DBKV_SYNC_ALWAYS));
    REQUIRE_OK(dbkv_open(o, &db));
    dbkv_options_free(o);
    EXPECT_OK(dbkv_set(db, S("a"), S("1"), 0));
    EXPECT_OK(dbkv_set(db, S("b"), S("2"), 0));
    EXPECT_OK(dbkv_get(db, S("a"), &v, &len));
    dbkv_free(v);
    EXPECT_RC(dbkv_get(db, S("zz"), &v, &len), DBKV_NOT_FOUND);
    EXPECT_OK(dbkv_incr(db, S("n"), 5, &n));
    EXPECT_RC(dbkv_delete(db, S("a")), DBKV_OK);
    EXPECT_OK(dbkv_expire(db, S("b"), 60000));
    EXPECT_OK(dbkv_lock(db, S("L"), S("me"), 10000, &token));
    EXPECT_OK(dbkv_mdel(db, keys, lens, 2, NULL));
    EXPECT_OK(dbkv_snapshot(db));
    st = stats_of(db);
    EXPECT(st.ops_write == 2);
    EXPECT(st.ops_read == 2);
    EXPECT(st.ops_incr == 1);
    EXPECT(st.ops_delete == 3);
    EXPECT(st.ops_expire == 1);
    EXPECT(st.ops_lock == 1);
    /* SYNC_ALWAYS: each write fsynced, and the latency figures are ordered. */
    EXPECT(st.fsyncs >= 6);
    EXPECT(st.fsync_max_us >= st.fsync_p99_us && st.fsync_p99_us >= st.fsync_p50_us);
    EXPECT(st.fsync_total_us >= st.fsync_max_us);
    EXPECT(st.snapshots_taken == 1 && st.last_snapshot_bytes > 0 && st.last_snapshot_unix_ms > 1700000000000ULL);
    EXPECT(st.wal_segments >= 1);
    EXPECT(st.snapshot_failures == 0 && st.backpressure_waits == 0);
    EXPECT_OK(dbkv_close(db));
    rm_tree(dir);
}

static void test_actionable_open_errors(void) {
    char dir[512], path[700];
    dbkv *db = NULL;
    dbkv_options *o = NULL;
    FILE *f;
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/missing/child", dir);
    REQUIRE_OK(dbkv_options_new(&o));
    EXPECT_OK(dbkv_options_set_data_dir(o, path));
    EXPECT_RC(dbkv_open(o, &db), DBKV_ERR_IO);
    EXPECT_LAST_ERROR_HAS("does not exist");
    EXPECT_LAST_ERROR_HAS("/missing");
    EXPECT_LAST_ERROR_HAS("create the parent first");

    snprintf(path, sizeof path, "%s/file", dir);
    f = fopen(path, "w");
    REQUIRE(f);
    fclose(f);
    EXPECT_OK(dbkv_options_set_data_dir(o, path));
    EXPECT_RC(dbkv_open(o, &db), DBKV_ERR_IO);
    EXPECT_LAST_ERROR_HAS("is not a directory");

    EXPECT_OK(dbkv_options_set_data_dir(o, dir));
    REQUIRE_OK(dbkv_open(o, &db));
    {
        dbkv *second = NULL;
        EXPECT_RC(dbkv_open(o, &second), DBKV_ERR_BUSY);
        EXPECT_LAST_ERROR_HAS("already open");
        EXPECT_LAST_ERROR_HAS("held by this process");
        EXPECT(strncmp(dbkv_last_error(), "busy", 4) != 0);
    }
    EXPECT_OK(dbkv_close(db));
    dbkv_options_free(o);
    rm_tree(dir);
}

/* The log buffer: what a damaged open cut, popped later on this thread. */
static void test_log_buffer(void) {
    char dir[512], segment[800], all[32768] = "";
    dbkv_log_buffer *buf = NULL, *tiny = NULL;
    dbkv_options *o = NULL;
    dbkv *db = NULL;
    char *msg = NULL;
    int level = 0, rc, warned = 0;
    make_dir(dir, sizeof dir);
    REQUIRE(write_and_damage(dir, segment, sizeof segment));
    EXPECT_RC(dbkv_log_buffer_new(0, &buf), DBKV_ERR_INVALID_ARGUMENT);
    REQUIRE_OK(dbkv_log_buffer_new(64, &buf));
    REQUIRE_OK(dbkv_options_new(&o));
    EXPECT_OK(dbkv_options_set_data_dir(o, dir));
    EXPECT_OK(dbkv_options_set_log_buffer(o, buf));
    REQUIRE_OK(dbkv_open(o, &db));
    EXPECT_OK(dbkv_close(db));
    while ((rc = dbkv_log_buffer_pop(buf, 0, &level, &msg)) == DBKV_OK) {
        if (level == DBKV_LOG_WARN && strstr(msg, "cut the last")) warned = 1;
        strncat(all, msg, sizeof all - strlen(all) - 2);
        strcat(all, "\n");
        dbkv_free(msg);
    }
    EXPECT(rc == DBKV_NOT_FOUND);
    if (!EXPECT(warned)) fprintf(stderr, "    messages:\n%s", all);
    EXPECT(strstr(all, strrchr(segment, '/') + 1) != NULL);
    /* Empty: NOT_FOUND after the timeout, outputs untouched. */
    level = 77;
    msg = (char *)&level;
    EXPECT_RC(dbkv_log_buffer_pop(buf, 20, &level, &msg), DBKV_NOT_FOUND);
    EXPECT(level == 77 && msg == (char *)&level);
    EXPECT_RC(dbkv_log_buffer_pop(NULL, 0, &level, &msg), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_RC(dbkv_log_buffer_pop(buf, 0, NULL, &msg), DBKV_ERR_INVALID_ARGUMENT);

    /* A full buffer drops the oldest and says how many were dropped. */
    REQUIRE_OK(dbkv_log_buffer_new(1, &tiny));
    EXPECT_OK(dbkv_options_set_log_buffer(o, tiny));
    EXPECT_OK(dbkv_options_set_log_level(o, DBKV_LOG_DEBUG));
    REQUIRE_OK(dbkv_open(o, &db));
    EXPECT_OK(dbkv_snapshot(db));
    EXPECT_OK(dbkv_close(db));
    REQUIRE_OK(dbkv_log_buffer_pop(tiny, 0, &level, &msg));
    EXPECT(level == DBKV_LOG_WARN && strstr(msg, "dropped") != NULL);
    dbkv_free(msg);
    EXPECT_OK(dbkv_log_buffer_pop(tiny, 0, &level, &msg));
    dbkv_free(msg);
    /* Freeing the buffer while options still name it is safe. */
    dbkv_log_buffer_free(tiny);
    REQUIRE_OK(dbkv_open(o, &db));
    EXPECT_OK(dbkv_close(db));
    dbkv_log_buffer_free(buf);
    dbkv_log_buffer_free(NULL);
    dbkv_options_free(o);
    rm_tree(dir);
}

int main(void) {
    RUN(test_damaged_open_logs_what_it_cut);
    RUN(test_log_level_and_null_logger);
    RUN(test_metrics);
    RUN(test_actionable_open_errors);
    RUN(test_log_buffer);
    return tu_finish("test_observe");
}
