/*
 * One dbkv handle shared by many pthreads: counters stay exact, a lock is
 * never held by two owners at once and its fencing tokens only grow,
 * multi-key writes are seen whole, scans under churn still return every
 * stable key exactly once, and dbkv_last_error is per thread.
 *
 * DBKV_C_SUITE_LIGHT=1 divides the iteration counts by 50, for runs under
 * valgrind (which serialises threads and is ~50x slower).
 */
#define _XOPEN_SOURCE 700

#include <pthread.h>
#include <sched.h>

#include "testutil.h"

enum { THREADS = 8 };

static long divisor = 1;

/* n scaled down in light mode, kept a positive multiple of 4. */
static long iters(long n) {
    long r = n / divisor;
    r -= r % 4;
    return r < 4 ? 4 : r;
}

static dbkv *open_mem(void) {
    dbkv *db = NULL;
    if (!EXPECT_OK(dbkv_open(NULL, &db))) return NULL;
    return db;
}

static void start_all(pthread_t *th, int n, void *(*fn)(void *), void *args, size_t arg_size) {
    int i;
    for (i = 0; i < n; i++) {
        int rc = pthread_create(&th[i], NULL, fn, (char *)args + (size_t)i * arg_size);
        if (rc != 0) {
            fprintf(stderr, "pthread_create: %s\n", strerror(rc));
            exit(2);
        }
    }
}

static void join_all(pthread_t *th, int n) {
    int i;
    for (i = 0; i < n; i++) pthread_join(th[i], NULL);
}

/* ------------------------------------------------------------------ */

static void *fresh_thread_errors(void *arg) {
    char *ok = (char *)arg;
    uint64_t n;
    /* Nothing has failed on this thread yet, whatever other threads did. */
    *ok = strcmp(dbkv_last_error(), "") == 0;
    EXPECT(*ok);
    EXPECT_RC(dbkv_count(NULL, &n), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("db");
    return NULL;
}

static void test_last_error_is_per_thread(void) {
    pthread_t th;
    char ok = 0;
    char saved[256];
    dbkv *db = open_mem();
    REQUIRE(db);
    EXPECT_RC(dbkv_set(db, S(""), S("v"), 0), DBKV_ERR_INVALID_ARGUMENT);
    EXPECT_LAST_ERROR_HAS("key");
    snprintf(saved, sizeof saved, "%s", dbkv_last_error());
    start_all(&th, 1, fresh_thread_errors, &ok, 0);
    join_all(&th, 1);
    EXPECT(ok);
    EXPECT(strcmp(dbkv_last_error(), saved) == 0);
    EXPECT_OK(dbkv_close(db));
}

/* ------------------------------------------------------------------ */

struct counter_arg {
    const dbkv *db;
    int id;
    long n;
    int64_t *seen; /* values returned by incr on "unique" */
};

static void *counter_worker(void *p) {
    struct counter_arg *a = (struct counter_arg *)p;
    char key[16];
    long i;
    for (i = 0; i < a->n; i++) {
        snprintf(key, sizeof key, "ctr:%ld", (i + a->id) % 4);
        EXPECT_OK(dbkv_incr(a->db, S(key), 1, NULL));
        EXPECT_OK(dbkv_decr(a->db, S("down"), 1, NULL));
        /* Mixed signs from every thread: net +1 per iteration. */
        EXPECT_OK(dbkv_incr(a->db, S("mixed"), a->id + 1, NULL));
        EXPECT_OK(dbkv_decr(a->db, S("mixed"), a->id, NULL));
        EXPECT_OK(dbkv_incr(a->db, S("unique"), 1, &a->seen[i]));
    }
    return NULL;
}

static void test_counters_exact(void) {
    pthread_t th[THREADS];
    struct counter_arg args[THREADS];
    const long n = iters(50000);
    const long total = n * THREADS;
    unsigned char *hit;
    char want[32];
    long i;
    int t, dup = 0, bad = 0;
    dbkv *db = open_mem();
    REQUIRE(db);
    for (t = 0; t < THREADS; t++) {
        args[t].db = db;
        args[t].id = t;
        args[t].n = n;
        args[t].seen = (int64_t *)calloc((size_t)n, sizeof(int64_t));
        REQUIRE(args[t].seen);
    }
    start_all(th, THREADS, counter_worker, args, sizeof args[0]);
    join_all(th, THREADS);

    for (t = 0; t < 4; t++) {
        char key[16];
        snprintf(key, sizeof key, "ctr:%d", t);
        snprintf(want, sizeof want, "%ld", total / 4);
        EXPECT(tu_value_is(db, key, want));
    }
    snprintf(want, sizeof want, "%ld", -total);
    EXPECT(tu_value_is(db, "down", want));
    snprintf(want, sizeof want, "%ld", total);
    EXPECT(tu_value_is(db, "mixed", want));
    EXPECT(tu_value_is(db, "unique", want));

    /* Each incr is atomic: the values handed out are exactly 1..total, once each. */
    hit = (unsigned char *)calloc((size_t)total + 1, 1);
    REQUIRE(hit);
    for (t = 0; t < THREADS; t++) {
        for (i = 0; i < n; i++) {
            int64_t v = args[t].seen[i];
            if (v < 1 || v > total) bad++;
            else if (hit[v]++) dup++;
        }
        free(args[t].seen);
    }
    free(hit);
    if (!EXPECT(dup == 0 && bad == 0)) fprintf(stderr, "    %d duplicate, %d out-of-range incr results\n", dup, bad);
    EXPECT_OK(dbkv_close(db));
}

/* ------------------------------------------------------------------ */

enum { LOCKS = 3 };

struct lock_slot {
    pthread_mutex_t mu;
    int holder;          /* 0 = free, else thread id + 1 */
    uint64_t last_fence; /* fence of the latest grant */
    long grants;
    long violations;
};

static struct lock_slot slots[LOCKS];

struct lock_arg {
    const dbkv *db;
    int id;
    long attempts;
    long granted, refused;
};

static void *lock_worker(void *p) {
    struct lock_arg *a = (struct lock_arg *)p;
    char owner[16], other[16], key[16];
    long i;
    int j;
    snprintf(owner, sizeof owner, "owner-%d", a->id);
    snprintf(other, sizeof other, "owner-%d", (a->id + 1) % THREADS);
    for (i = 0; i < a->attempts; i++) {
        int l = (int)((i + a->id) % LOCKS);
        uint64_t fence = 0;
        int rc;
        snprintf(key, sizeof key, "lock:%d", l);
        /* A long TTL: a grant must never lapse mid-test, even under valgrind. */
        rc = dbkv_lock(a->db, S(key), S(owner), 60000, &fence);
        if (rc == DBKV_LOCKED) {
            a->refused++;
            sched_yield();
            continue;
        }
        if (!EXPECT_OK(rc)) continue;
        a->granted++;

        pthread_mutex_lock(&slots[l].mu);
        if (slots[l].holder != 0 || fence <= slots[l].last_fence) {
            slots[l].violations++;
            fprintf(stderr, "    lock:%d granted to %s (fence %llu) while held by %d (last fence %llu)\n", l, owner,
                    (unsigned long long)fence, slots[l].holder - 1, (unsigned long long)slots[l].last_fence);
        }
        slots[l].holder = a->id + 1;
        slots[l].last_fence = fence;
        slots[l].grants++;
        pthread_mutex_unlock(&slots[l].mu);

        /* While held: the value is us, others are refused, we can extend. */
        EXPECT(tu_value_is(a->db, key, owner));
        EXPECT_RC(dbkv_unlock(a->db, S(key), S(other)), DBKV_NOT_OWNER);
        EXPECT_RC(dbkv_extend_lock(a->db, S(key), S(other), 60000), DBKV_NOT_OWNER);
        EXPECT_OK(dbkv_extend_lock(a->db, S(key), S(owner), 60000));
        for (j = 0; j < 3; j++) sched_yield();

        pthread_mutex_lock(&slots[l].mu);
        if (slots[l].holder != a->id + 1) {
            slots[l].violations++;
            fprintf(stderr, "    lock:%d taken from %s while it held it\n", l, owner);
        }
        slots[l].holder = 0;
        pthread_mutex_unlock(&slots[l].mu);
        EXPECT_OK(dbkv_unlock(a->db, S(key), S(owner)));
    }
    return NULL;
}

static void test_locks_mutually_exclusive(void) {
    pthread_t th[THREADS];
    struct lock_arg args[THREADS];
    long granted = 0, refused = 0, slot_grants = 0, violations = 0;
    uint64_t n = 1;
    int t;
    dbkv *db = open_mem();
    REQUIRE(db);
    for (t = 0; t < LOCKS; t++) {
        pthread_mutex_init(&slots[t].mu, NULL);
        slots[t].violations = 0;
        slots[t].holder = 0;
        slots[t].last_fence = 0;
        slots[t].grants = 0;
    }
    for (t = 0; t < THREADS; t++) {
        args[t].db = db;
        args[t].id = t;
        args[t].attempts = iters(20000);
        args[t].granted = args[t].refused = 0;
    }
    start_all(th, THREADS, lock_worker, args, sizeof args[0]);
    join_all(th, THREADS);
    for (t = 0; t < THREADS; t++) {
        granted += args[t].granted;
        refused += args[t].refused;
    }
    for (t = 0; t < LOCKS; t++) {
        slot_grants += slots[t].grants;
        violations += slots[t].violations;
        pthread_mutex_destroy(&slots[t].mu);
    }
    EXPECT(violations == 0);
    EXPECT(granted > 0);
    EXPECT(granted == slot_grants);
    EXPECT(granted + refused == (long)THREADS * iters(20000));
    fprintf(stderr, "    %ld grants, %ld refusals\n", granted, refused);
    /* Every lock was released. */
    EXPECT_OK(dbkv_count(db, &n));
    EXPECT(n == 0);
    EXPECT_OK(dbkv_close(db));
}

/* ------------------------------------------------------------------ */

struct pair_arg {
    const dbkv *db;
    int id;
    long n;
};

static const uint8_t *trio_keys[3] = {(const uint8_t *)"trio:a", (const uint8_t *)"trio:b", (const uint8_t *)"trio:c"};
static const size_t trio_lens[3] = {6, 6, 6};

static void *trio_writer(void *p) {
    struct pair_arg *a = (struct pair_arg *)p;
    char v[32];
    const uint8_t *vals[3];
    size_t vlens[3];
    long i;
    int k;
    for (i = 0; i < a->n; i++) {
        if (i % 4 == 3) {
            EXPECT_OK(dbkv_mdel(a->db, trio_keys, trio_lens, 3, NULL));
            continue;
        }
        snprintf(v, sizeof v, "w%d-%ld", a->id, i);
        for (k = 0; k < 3; k++) {
            vals[k] = (const uint8_t *)v;
            vlens[k] = strlen(v);
        }
        EXPECT_OK(dbkv_mset(a->db, trio_keys, trio_lens, vals, vlens, 3, 0));
    }
    return NULL;
}

static void *trio_reader(void *p) {
    struct pair_arg *a = (struct pair_arg *)p;
    uint8_t *vals[3];
    size_t vlens[3];
    long i;
    int k;
    for (i = 0; i < a->n; i++) {
        if (!EXPECT_OK(dbkv_mget(a->db, trio_keys, trio_lens, 3, vals, vlens))) continue;
        /* All three from one mset, or all three gone: never a mix. */
        if (vals[0] == NULL) {
            EXPECT(vals[1] == NULL && vals[2] == NULL);
        } else {
            int same = vals[1] != NULL && vals[2] != NULL && vlens[0] == vlens[1] && vlens[0] == vlens[2] &&
                       memcmp(vals[0], vals[1], vlens[0]) == 0 && memcmp(vals[0], vals[2], vlens[0]) == 0;
            EXPECT(same);
        }
        for (k = 0; k < 3; k++) dbkv_free(vals[k]);
    }
    return NULL;
}

static void test_mset_mdel_seen_whole(void) {
    pthread_t th[THREADS];
    struct pair_arg args[THREADS];
    int t;
    dbkv *db = open_mem();
    REQUIRE(db);
    for (t = 0; t < THREADS; t++) {
        args[t].db = db;
        args[t].id = t;
        args[t].n = iters(t < 3 ? 40000 : 30000);
    }
    start_all(th, 3, trio_writer, args, sizeof args[0]);
    start_all(th + 3, THREADS - 3, trio_reader, args + 3, sizeof args[0]);
    join_all(th, THREADS);
    EXPECT_OK(dbkv_close(db));
}

/* ------------------------------------------------------------------ */

enum { STABLE = 2000 };

static void *churn_worker(void *p) {
    struct pair_arg *a = (struct pair_arg *)p;
    char key[32];
    long i;
    for (i = 0; i < a->n; i++) {
        snprintf(key, sizeof key, "churn:%d:%ld", a->id, i % 64);
        if (i % 3 == 2) EXPECT(dbkv_delete(a->db, S(key)) >= 0);
        else EXPECT_OK(dbkv_set(a->db, S(key), S("churn"), i % 5 == 0 ? 1 : 0));
        EXPECT_OK(dbkv_incr(a->db, S("churn:ctr"), 1, NULL));
    }
    return NULL;
}

static void *scan_worker(void *p) {
    struct pair_arg *a = (struct pair_arg *)p;
    unsigned char *seen = (unsigned char *)malloc(STABLE);
    long r;
    if (!seen) abort();
    for (r = 0; r < a->n; r++) {
        dbkv_iter *it = NULL;
        const uint8_t *k, *v;
        size_t kl, vl;
        int rc, i, missing = 0, twice = 0;
        /* Alternate between the whole keyspace and the stable prefix. */
        int whole = r % 2 == 0;
        memset(seen, 0, STABLE);
        if (!EXPECT_OK(whole ? dbkv_scan(a->db, NULL, 0, &it) : dbkv_scan(a->db, S("stable:"), &it))) continue;
        while ((rc = dbkv_iter_next(it, &k, &kl, &v, &vl)) == DBKV_OK) {
            char key[32];
            int idx;
            if (kl >= sizeof key) {
                EXPECT(!"overlong key in scan");
                continue;
            }
            memcpy(key, k, kl);
            key[kl] = '\0';
            if (sscanf(key, "stable:%d", &idx) == 1 && idx >= 0 && idx < STABLE) {
                char want[16];
                snprintf(want, sizeof want, "s%d", idx);
                if (seen[idx]++) twice++;
                EXPECT(vl == strlen(want) && memcmp(v, want, vl) == 0);
            } else {
                EXPECT(whole && strncmp(key, "churn:", 6) == 0);
            }
        }
        EXPECT_RC(rc, DBKV_NOT_FOUND);
        dbkv_iter_free(it);
        for (i = 0; i < STABLE; i++) missing += !seen[i];
        if (!EXPECT(missing == 0 && twice == 0))
            fprintf(stderr, "    scan: %d stable keys missing, %d seen twice\n", missing, twice);
    }
    free(seen);
    return NULL;
}

static void test_scan_under_churn(void) {
    pthread_t th[5];
    struct pair_arg args[5];
    char key[32], val[16];
    int t;
    dbkv *db = open_mem();
    REQUIRE(db);
    for (t = 0; t < STABLE; t++) {
        snprintf(key, sizeof key, "stable:%d", t);
        snprintf(val, sizeof val, "s%d", t);
        EXPECT_OK(dbkv_set(db, S(key), S(val), 0));
    }
    for (t = 0; t < 5; t++) {
        args[t].db = db;
        args[t].id = t;
        args[t].n = t < 3 ? iters(50000) : iters(200);
    }
    start_all(th, 3, churn_worker, args, sizeof args[0]);
    start_all(th + 3, 2, scan_worker, args + 3, sizeof args[0]);
    join_all(th, 5);
    {
        char want[32];
        snprintf(want, sizeof want, "%ld", 3 * iters(50000));
        EXPECT(tu_value_is(db, "churn:ctr", want));
    }
    EXPECT_OK(dbkv_close(db));
}

/* ------------------------------------------------------------------ */

static void *smoke_worker(void *p) {
    struct pair_arg *a = (struct pair_arg *)p;
    char key[32], val[32];
    uint8_t buf[32];
    long i;
    for (i = 0; i < a->n; i++) {
        size_t len = 0;
        snprintf(key, sizeof key, "t%d:k%ld", a->id, i);
        snprintf(val, sizeof val, "v%ld-%d", i, a->id);
        EXPECT_OK(dbkv_set(a->db, S(key), S(val), 0));
        EXPECT(tu_value_is(a->db, key, val));
        EXPECT_OK(dbkv_get_into(a->db, S(key), buf, sizeof buf, &len));
        EXPECT(len == strlen(val) && memcmp(buf, val, len) == 0);
        if (i % 2 == 1) EXPECT_OK(dbkv_delete(a->db, S(key)));
        if (i % 500 == 0) {
            dbkv_iter *it = NULL;
            const uint8_t *k;
            size_t kl;
            long own = 0;
            snprintf(key, sizeof key, "t%d:", a->id);
            if (EXPECT_OK(dbkv_scan(a->db, S(key), &it))) {
                while (dbkv_iter_next(it, &k, &kl, NULL, NULL) == DBKV_OK) own++;
                dbkv_iter_free(it);
            }
            /* Only this thread writes under its prefix, so its view is exact. */
            EXPECT(own == i / 2 + 1);
        }
    }
    return NULL;
}

static void test_concurrent_set_get_scan_smoke(void) {
    pthread_t th[THREADS];
    struct pair_arg args[THREADS];
    uint64_t n = 0;
    int t;
    dbkv *db = open_mem();
    REQUIRE(db);
    for (t = 0; t < THREADS; t++) {
        args[t].db = db;
        args[t].id = t;
        args[t].n = iters(20000);
    }
    start_all(th, THREADS, smoke_worker, args, sizeof args[0]);
    join_all(th, THREADS);
    EXPECT_OK(dbkv_count(db, &n));
    EXPECT(n == (uint64_t)THREADS * (uint64_t)(iters(20000) / 2));
    EXPECT_OK(dbkv_close(db));
}

/* ------------------------------------------------------------------ */

int main(void) {
    const char *light = getenv("DBKV_C_SUITE_LIGHT");
    if (light && *light && strcmp(light, "0") != 0) divisor = 50;
    RUN(test_last_error_is_per_thread);
    RUN(test_counters_exact);
    RUN(test_locks_mutually_exclusive);
    RUN(test_mset_mdel_seen_whole);
    RUN(test_scan_under_churn);
    RUN(test_concurrent_set_get_scan_smoke);
    return tu_finish("test_threads");
}
