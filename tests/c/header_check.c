/*
 * The public header on its own: compiled as C99 and as C++17 with warnings
 * as errors, then linked and run, so a missing extern "C", a C++-only or
 * C-only construct, or a symbol declared but not exported fails the build.
 * Every declaration is referenced so the linker must resolve each one.
 */
#include "dbkv.h"
#include "dbkv.h" /* the include guard makes a second include harmless */

#include <stdio.h>
#include <string.h>

/* void (*)(void) is the generic function pointer: casts to it are portable. */
typedef void (*any_fn)(void);

int main(void) {
    /* Taking every function's address forces the linker to find it. */
    const any_fn fns[] = {
        (any_fn)&dbkv_strerror, (any_fn)&dbkv_last_error, (any_fn)&dbkv_version,
        (any_fn)&dbkv_free, (any_fn)&dbkv_open, (any_fn)&dbkv_close,
        (any_fn)&dbkv_set, (any_fn)&dbkv_get, (any_fn)&dbkv_get_into,
        (any_fn)&dbkv_delete, (any_fn)&dbkv_exists, (any_fn)&dbkv_incr,
        (any_fn)&dbkv_decr, (any_fn)&dbkv_setnx, (any_fn)&dbkv_cas,
        (any_fn)&dbkv_expire, (any_fn)&dbkv_persist, (any_fn)&dbkv_ttl,
        (any_fn)&dbkv_mset, (any_fn)&dbkv_mget, (any_fn)&dbkv_mdel,
        (any_fn)&dbkv_lock, (any_fn)&dbkv_unlock, (any_fn)&dbkv_extend_lock,
        (any_fn)&dbkv_set_fenced, (any_fn)&dbkv_delete_fenced,
        (any_fn)&dbkv_count, (any_fn)&dbkv_sync, (any_fn)&dbkv_snapshot,
        (any_fn)&dbkv_stats, (any_fn)&dbkv_scan, (any_fn)&dbkv_iter_next,
        (any_fn)&dbkv_iter_free, (any_fn)&dbkv_options_new, (any_fn)&dbkv_options_free,
        (any_fn)&dbkv_options_set_data_dir, (any_fn)&dbkv_options_set_shards,
        (any_fn)&dbkv_options_set_max_value_bytes, (any_fn)&dbkv_options_set_sync_mode,
        (any_fn)&dbkv_options_set_sync_interval_ms, (any_fn)&dbkv_options_set_wal_segment_bytes,
        (any_fn)&dbkv_options_set_snapshot_interval_secs, (any_fn)&dbkv_options_set_snapshot_ops,
        (any_fn)&dbkv_options_set_snapshot_keep, (any_fn)&dbkv_options_set_recovery_mode,
        (any_fn)&dbkv_options_set_logger, (any_fn)&dbkv_options_set_log_level,
        (any_fn)&dbkv_options_set_log_buffer, (any_fn)&dbkv_log_buffer_new,
        (any_fn)&dbkv_log_buffer_free, (any_fn)&dbkv_log_buffer_pop,
    };
    /* The constants are usable in constant expressions of the right types. */
    static const int codes[] = {DBKV_OK, DBKV_NOT_FOUND, DBKV_EXISTS, DBKV_LOCKED, DBKV_NOT_OWNER,
                                DBKV_MISMATCH, DBKV_STALE_TOKEN, DBKV_ERR_INVALID_ARGUMENT,
                                DBKV_ERR_TOO_LARGE, DBKV_ERR_NOT_INTEGER, DBKV_ERR_OVERFLOW,
                                DBKV_ERR_BUFFER_TOO_SMALL, DBKV_ERR_IO, DBKV_ERR_CORRUPTION,
                                DBKV_ERR_BUSY, DBKV_ERR_FAILED, DBKV_ERR_INTERNAL,
                                DBKV_ERR_WRONG_TYPE, DBKV_SYNC_NONE, DBKV_SYNC_INTERVAL, DBKV_SYNC_ALWAYS,
                                DBKV_RECOVERY_POINT_IN_TIME, DBKV_RECOVERY_ABSOLUTE,
                                DBKV_RECOVERY_SKIP_CORRUPTED, DBKV_VERSION_MAJOR, DBKV_VERSION_MINOR,
                                DBKV_VERSION_PATCH, DBKV_LOG_ERROR, DBKV_LOG_WARN, DBKV_LOG_INFO,
                                DBKV_LOG_DEBUG};
    dbkv_log_fn log_cb = NULL;
    char key[DBKV_MAX_KEY_BYTES];
    unsigned long cap = DBKV_MAX_VALUE_BYTES_CAP;
    struct dbkv_statistics st;
    dbkv_statistics *stp = &st;
    dbkv *db = NULL;
    size_t i;

    for (i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        if (fns[i] == NULL) return 1;
    }
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    key[0] = 'k';
    if (dbkv_open(NULL, &db) != DBKV_OK) return 2;
    if (dbkv_set(db, (const uint8_t *)key, 1, NULL, 0, 0) != DBKV_OK) return 3;
    if (dbkv_stats(db, stp) != DBKV_OK || st.keys != 1) return 4;
    if (dbkv_close(db) != DBKV_OK) return 5;
    /* 36 uint64_t fields, no padding: the layout C callers rely on. */
    if (sizeof(dbkv_statistics) != 36 * sizeof(uint64_t)) return 6;
    if (cap != 1073741824UL || sizeof codes / sizeof codes[0] != 31 || log_cb != NULL) return 7;
    printf("header ok, dbkv %s\n", dbkv_version());
    return 0;
}
