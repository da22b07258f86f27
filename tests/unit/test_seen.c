#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/err.h"
#include "tests/unit/tmpdir.h"
#include "storage/seen.h"
#include "storage/store.h"

/*
 * The clients-offered recorder (storage/seen.h) against a real LMDB environment: whatever ids clients invent, the
 * store stays the same size, writes keep committing, and the counts stay within 2%.
 */

#define MAP_MIB 64 /* small on purpose: one record per client would fill it long before 3,000,000 */

struct fixture {
    char dir[64];
    upd_store_t *store;
    size_t committed;
};


static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    upd_store_opts_t opts = {.map_size = (size_t)MAP_MIB << 20};
    if (tmpdir_make(f->dir, sizeof(f->dir), "seen") != 0 || upd_store_open(f->dir, &opts, &f->store) != 0)
        return -1;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    upd_store_close(f->store);
    tmpdir_remove(f->dir);
    free(f);
    return 0;
}

static void
on_commit(size_t n, void *arg)
{
    __atomic_add_fetch(&((struct fixture *)arg)->committed, n, __ATOMIC_RELAXED);
}

static off_t
data_size(const struct fixture *f)
{
    char path[128];
    struct stat st;
    snprintf(path, sizeof(path), "%s/lmdb/data.mdb", f->dir);
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static uint64_t
count(upd_store_t *store, const char *version)
{
    upd_store_txn_t *txn;
    uint64_t n;
    assert_int_equal(upd_store_read_begin(store, &txn), 0);
    assert_int_equal(upd_store_clients_count(txn, "acme", "latest", version, &n), 0);
    upd_store_txn_end(txn);
    return n;
}

/* a push the queue refused is tried again: this test counts every id, so it waits for the writer instead */
static void
push(upd_seen_t *seen, const char *version, const char *client, size_t len)
{
    while (!upd_seen_push(seen, "acme", "latest", version, client, len))
        sched_yield();
}

static void
halt(upd_store_t *store)
{
    upd_channel_t ch = {.generation = 2};
    strcpy(ch.stable, "1.0.0");
    upd_store_txn_t *txn;
    assert_int_equal(upd_store_write_begin(store, &txn), 0);
    assert_int_equal(upd_store_channel_put(txn, "acme", "latest", &ch), 0);
    assert_int_equal(upd_store_commit(txn), 0);
}

/* Regression: one record per (version, client) grew the store with every invented id until MDB_MAP_FULL refused
 * every write, halts included. */
static void
test_three_million_invented_ids_leave_the_store_its_size_and_a_halt_commits(void **state)
{
    struct fixture *f = *state;
    enum { N = 3000000 };
    upd_channel_t ch = {.generation = 1};
    strcpy(ch.stable, "1.0.0");
    upd_store_txn_t *txn;
    assert_int_equal(upd_store_write_begin(f->store, &txn), 0);
    assert_int_equal(upd_store_channel_put(txn, "acme", "latest", &ch), 0);
    assert_int_equal(upd_store_commit(txn), 0);
    off_t before = data_size(f);

    upd_seen_t *seen = upd_seen_start(f->store, &(upd_seen_opts_t){65536, 50, 1 << 20}, on_commit, f);
    char client[64];
    for (int i = 0; i != N; ++i) {
        int len = snprintf(client, sizeof(client), "invented-%08d-%08x", i, (unsigned)i * 2654435761u);
        push(seen, "1.1.0", client, (size_t)len);
        if (i % 3 == 0) /* the same clients ask again: counted once */
            push(seen, "1.1.0", client, (size_t)len);
    }
    upd_seen_stop(seen);

    off_t after = data_size(f);
    uint64_t n = count(f->store, "1.1.0");
    print_message("3,000,000 ids: counted %llu, store %lld -> %lld bytes, %zu pushes committed\n", (unsigned long long)n,
                  (long long)before, (long long)after, f->committed);
    assert_true(n >= (uint64_t)(N * 0.98) && n <= (uint64_t)(N * 1.02));
    assert_true(after - before <= 1 << 20);
    halt(f->store);
    assert_true(f->committed >= N);
}

static void
test_small_counts_are_exact_and_repeats_count_once(void **state)
{
    struct fixture *f = *state;
    upd_seen_t *seen = upd_seen_start(f->store, &(upd_seen_opts_t){1024, 10, 4096}, on_commit, f);
    char client[32];
    for (int round = 0; round != 3; ++round)
        for (int i = 0; i != 1500; ++i) {
            int len = snprintf(client, sizeof(client), "c-%d", i);
            push(seen, i % 3 == 0 ? "1.0.0" : "1.1.0", client, (size_t)len);
        }
    upd_seen_stop(seen);
    assert_int_equal(count(f->store, "1.0.0"), 500);
    assert_int_equal(count(f->store, "1.1.0"), 1000);

    /* a second recorder (another origin on this host, or this one restarted) adds to the same counts */
    seen = upd_seen_start(f->store, &(upd_seen_opts_t){1024, 10, 4096}, on_commit, f);
    for (int i = 1000; i != 2000; ++i) {
        int len = snprintf(client, sizeof(client), "c-%d", i);
        push(seen, "1.1.0", client, (size_t)len);
    }
    upd_seen_stop(seen);
    /* of 1000..1999, those under 1500 with i % 3 != 0 were counted for 1.1.0 already */
    uint64_t want = 1000;
    for (int i = 1000; i != 2000; ++i)
        want += i >= 1500 || i % 3 == 0;
    assert_int_equal(count(f->store, "1.1.0"), want);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_three_million_invented_ids_leave_the_store_its_size_and_a_halt_commits, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_small_counts_are_exact_and_repeats_count_once, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
