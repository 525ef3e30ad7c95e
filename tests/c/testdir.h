/*
 * Helpers of the suites that use data directories (test_persist.c,
 * test_observe.c): a fresh directory per test, its removal, and a
 * dbkv_stats call. Include after defining _XOPEN_SOURCE 700 and after
 * testutil.h.
 */
#ifndef DBKV_TESTDIR_H
#define DBKV_TESTDIR_H

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

static int td_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* A fresh directory $TMPDIR/<prefix>XXXXXX, removed by rm_tree at the end. */
static void make_dir_named(char *out, size_t cap, const char *prefix) {
    const char *base = getenv("TMPDIR");
    snprintf(out, cap, "%s/%sXXXXXX", base && *base ? base : "/tmp", prefix);
    if (mkdtemp(out) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
}

static void rm_tree(const char *dir) { nftw(dir, td_rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static dbkv_statistics stats_of(const dbkv *db) {
    dbkv_statistics st;
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    EXPECT_OK(dbkv_stats(db, &st));
    return st;
}

#endif
