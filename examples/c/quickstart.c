/* dbkv quick start: a task result with a TTL, a chord counter, a lock with a
 * fencing token, all in a data directory that survives restarts.
 *
 *   make quickstart        (builds libdbkv.so and runs this)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbkv.h"

#define CHECK(call)                                                          \
    do {                                                                     \
        int rc_ = (call);                                                    \
        if (rc_ < 0) {                                                       \
            fprintf(stderr, "%s failed: %s (%s)\n", #call,                   \
                    dbkv_strerror(rc_), dbkv_last_error());                  \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

#define S(str) (const uint8_t *)(str), strlen(str)

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "target/quickstart-data";
    dbkv_options *opts = NULL;
    dbkv *db = NULL;

    CHECK(dbkv_options_new(&opts));
    CHECK(dbkv_options_set_data_dir(opts, dir));
    CHECK(dbkv_options_set_sync_mode(opts, DBKV_SYNC_INTERVAL));
    CHECK(dbkv_open(opts, &db));
    dbkv_options_free(opts);
    printf("dbkv %s, data in %s\n", dbkv_version(), dir);

    /* A task result that expires in an hour. */
    CHECK(dbkv_set(db, S("result:task-42"), S("{\"status\":\"SUCCESS\"}"), 3600 * 1000));
    uint8_t *val = NULL;
    size_t vlen = 0;
    if (dbkv_get(db, S("result:task-42"), &val, &vlen) == DBKV_OK) {
        printf("result:task-42 = %.*s\n", (int)vlen, (const char *)val);
        dbkv_free(val);
    }
    int64_t ttl = 0;
    CHECK(dbkv_ttl(db, S("result:task-42"), &ttl));
    printf("expires in %lld ms\n", (long long)ttl);

    /* A chord counter: each finished part increments it. */
    int64_t parts = 0;
    for (int i = 0; i < 3; i++) CHECK(dbkv_incr(db, S("chord:7:done"), 1, &parts));
    printf("chord:7:done = %lld (counts across runs: the data directory keeps it)\n", (long long)parts);

    /* A lock with a fencing token; a second owner is refused. */
    uint64_t fence = 0;
    CHECK(dbkv_lock(db, S("lock:report"), S("worker-a"), 30000, &fence));
    printf("worker-a holds lock:report with fencing token %llu\n", (unsigned long long)fence);
    int rc = dbkv_lock(db, S("lock:report"), S("worker-b"), 30000, &fence);
    printf("worker-b tries: %s\n", dbkv_strerror(rc));
    CHECK(dbkv_unlock(db, S("lock:report"), S("worker-a")));

    /* Errors name the problem. */
    rc = dbkv_incr(db, S("result:task-42"), 1, &parts);
    printf("incr on a JSON value: %s: %s\n", dbkv_strerror(rc), dbkv_last_error());

    CHECK(dbkv_sync(db));
    CHECK(dbkv_close(db));
    return 0;
}
