/*
 * Minimal test helpers shared by the C suite (no framework: the suite must
 * build with nothing but a C99 compiler and libdbkv).
 *
 * EXPECT_* record a failure and carry on, so one run reports every broken
 * contract; REQUIRE_* also return from the current test function, for the
 * cases where going on would only dereference a handle that was never made.
 * A test program exits non-zero if any check failed.
 */
#ifndef DBKV_TESTUTIL_H
#define DBKV_TESTUTIL_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dbkv.h"

static int tu_failures = 0;
static const char *tu_current = "?";
/* Checks also run on worker threads: keep the count exact and reports whole. */
static pthread_mutex_t tu_mu = PTHREAD_MUTEX_INITIALIZER;

static inline const char *tu_status_name(int rc) {
    switch (rc) {
    case DBKV_OK: return "DBKV_OK";
    case DBKV_NOT_FOUND: return "DBKV_NOT_FOUND";
    case DBKV_EXISTS: return "DBKV_EXISTS";
    case DBKV_LOCKED: return "DBKV_LOCKED";
    case DBKV_NOT_OWNER: return "DBKV_NOT_OWNER";
    case DBKV_MISMATCH: return "DBKV_MISMATCH";
    case DBKV_STALE_TOKEN: return "DBKV_STALE_TOKEN";
    case DBKV_ERR_INVALID_ARGUMENT: return "DBKV_ERR_INVALID_ARGUMENT";
    case DBKV_ERR_TOO_LARGE: return "DBKV_ERR_TOO_LARGE";
    case DBKV_ERR_NOT_INTEGER: return "DBKV_ERR_NOT_INTEGER";
    case DBKV_ERR_OVERFLOW: return "DBKV_ERR_OVERFLOW";
    case DBKV_ERR_BUFFER_TOO_SMALL: return "DBKV_ERR_BUFFER_TOO_SMALL";
    case DBKV_ERR_IO: return "DBKV_ERR_IO";
    case DBKV_ERR_CORRUPTION: return "DBKV_ERR_CORRUPTION";
    case DBKV_ERR_BUSY: return "DBKV_ERR_BUSY";
    case DBKV_ERR_FAILED: return "DBKV_ERR_FAILED";
    case DBKV_ERR_INTERNAL: return "DBKV_ERR_INTERNAL";
    case DBKV_ERR_WRONG_TYPE: return "DBKV_ERR_WRONG_TYPE";
    default: return "(unknown status)";
    }
}

static inline int tu_expect_rc(int got, int want, const char *expr, const char *file, int line) {
    if (got == want) return 1;
    pthread_mutex_lock(&tu_mu);
    tu_failures++;
    fprintf(stderr, "FAIL [%s] %s:%d: %s\n    got %s (%d), want %s (%d); last_error: \"%s\"\n",
            tu_current, file, line, expr, tu_status_name(got), got, tu_status_name(want), want,
            dbkv_last_error());
    pthread_mutex_unlock(&tu_mu);
    return 0;
}

static inline int tu_expect(int cond, const char *expr, const char *file, int line) {
    if (cond) return 1;
    pthread_mutex_lock(&tu_mu);
    tu_failures++;
    fprintf(stderr, "FAIL [%s] %s:%d: expected %s\n", tu_current, file, line, expr);
    pthread_mutex_unlock(&tu_mu);
    return 0;
}

#define EXPECT_RC(call, want) tu_expect_rc((call), (want), #call, __FILE__, __LINE__)
#define EXPECT_OK(call) EXPECT_RC(call, DBKV_OK)
#define EXPECT(cond) tu_expect(!!(cond), #cond, __FILE__, __LINE__)
#define REQUIRE_RC(call, want)                                   \
    do {                                                         \
        if (!EXPECT_RC(call, want)) return;                      \
    } while (0)
#define REQUIRE_OK(call) REQUIRE_RC(call, DBKV_OK)
#define REQUIRE(cond)                                            \
    do {                                                         \
        if (!EXPECT(cond)) return;                               \
    } while (0)

/* The failure text must name what was wrong, so a C caller can act on it
 * without reading the source. */
#define EXPECT_LAST_ERROR_HAS(needle)                                                  \
    do {                                                                               \
        const char *le_ = dbkv_last_error();                                           \
        if (!tu_expect(le_ != NULL && strstr(le_, (needle)) != NULL,                   \
                       "dbkv_last_error() contains \"" needle "\"", __FILE__, __LINE__)) \
            fprintf(stderr, "    last_error was \"%s\"\n", le_ ? le_ : "(NULL)");    \
    } while (0)

/* A key or value from a string literal or char array: pointer and length. */
#define S(str) (const uint8_t *)(str), strlen(str)

#define RUN(fn)                                                           \
    do {                                                                  \
        int before_ = tu_failures;                                        \
        int64_t t0_ = tu_now_ms();                                        \
        tu_current = #fn;                                                 \
        fn();                                                             \
        fprintf(stderr, "%s %s (%lld ms)\n", tu_failures == before_ ? "ok  " : "FAIL", #fn, \
                (long long)(tu_now_ms() - t0_));                          \
    } while (0)

static inline int tu_finish(const char *program) {
    if (tu_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", program, tu_failures);
        return 1;
    }
    fprintf(stderr, "%s: all checks passed\n", program);
    return 0;
}

/* dbkv stores expiry as wall-clock time, so tests measure with the same clock. */
static inline int64_t tu_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void tu_sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Reads a value as a NUL-terminated string for easy comparison; returns the
 * status of dbkv_get. *out is malloc'd on DBKV_OK and must be freed. */
static inline int tu_get_str(const dbkv *db, const char *key, char **out) {
    uint8_t *v = NULL;
    size_t n = 0;
    int rc = dbkv_get(db, S(key), &v, &n);
    if (rc != DBKV_OK) return rc;
    *out = (char *)malloc(n + 1);
    if (*out == NULL) abort();
    memcpy(*out, v, n);
    (*out)[n] = '\0';
    dbkv_free(v);
    return rc;
}

/* 1 if `key` holds exactly the string `want`. */
static inline int tu_value_is(const dbkv *db, const char *key, const char *want) {
    char *got = NULL;
    int ok;
    if (tu_get_str(db, key, &got) != DBKV_OK) return 0;
    ok = strcmp(got, want) == 0;
    if (!ok) fprintf(stderr, "    %s = \"%s\", want \"%s\"\n", key, got, want);
    free(got);
    return ok;
}

#endif /* DBKV_TESTUTIL_H */
