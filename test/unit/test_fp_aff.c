/*
 * test_fp_aff.c - the affinity table (fp_aff.h) without DPDK: arguments,
 * add/lookup/replace/delete, bulk lookups, filling to capacity and past it,
 * expiry across the clock's wrap, walks, and readers racing writers that
 * churn the same buckets (a live entry is never missed or torn).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/Basic.h>

#include "fp_aff.h"
#include "fp_test_util.h"

static struct fp_aff *table_new(uint32_t capacity, void **mem)
{
	size_t n = fp_aff_mem_size(capacity);

	*mem = aligned_alloc(64, (n + 63) & ~(size_t)63);
	return fp_aff_init(*mem, n, capacity);
}

static struct fp_aff_key key_of(uint32_t i)
{
	struct fp_aff_key k;

	memset(&k, 0, sizeof(k));
	k.src = 0xC6336400u + (i >> 16); /* 198.51.100.0 + */
	k.dst = 0xCB00710Au;             /* 203.0.113.10 */
	k.sport = (uint16_t)i;
	k.dport = 80;
	k.proto = 6;
	return k;
}

static void test_arguments(void)
{
	uint8_t small[256] __attribute__((aligned(64)));
	void *mem;
	struct fp_aff *t;

	CU_ASSERT_EQUAL(fp_aff_mem_size(0), 0u);
	CU_ASSERT_EQUAL(fp_aff_mem_size((1u << 30) + 1), 0u);
	CU_ASSERT(fp_aff_mem_size(1000) > 1000 * 32);
	errno = 0;
	CU_ASSERT_PTR_NULL(fp_aff_init(small, sizeof(small), 1000));
	CU_ASSERT_EQUAL(errno, EINVAL);
	mem = aligned_alloc(64, 1 << 20);
	CU_ASSERT_PTR_NULL(fp_aff_init((uint8_t *)mem + 8, (1 << 20) - 8, 100)); // misaligned
	t = fp_aff_init(mem, 1 << 20, 100);
	CU_ASSERT_PTR_NOT_NULL(t);
	free(mem);
}

static void test_basics(void)
{
	void *mem;
	struct fp_aff *t = table_new(1000, &mem);
	struct fp_aff_key k = key_of(1), other = key_of(2);
	struct fp_aff_val v = { .target = 7, .flags = 1, .ttl_s = 900 }, got;
	struct fp_aff_stats st;

	CU_ASSERT_FALSE(fp_aff_lookup(t, &k, &got, 0));
	CU_ASSERT_EQUAL(fp_aff_add(t, &k, &v, 0, false), 0);
	CU_ASSERT_EQUAL(fp_aff_add(t, &k, &v, 0, false), -EEXIST);
	CU_ASSERT(fp_aff_lookup(t, &k, &got, 0) && got.target == 7 && got.ttl_s == 900);
	CU_ASSERT_FALSE(fp_aff_lookup(t, &other, &got, 0));
	v.target = 9;
	CU_ASSERT_EQUAL(fp_aff_add(t, &k, &v, 0, true), 0); // replace
	CU_ASSERT(fp_aff_lookup(t, &k, &got, 0) && got.target == 9);
	CU_ASSERT_EQUAL(fp_aff_mark(t, &k, 2, 60), 0);
	CU_ASSERT(fp_aff_lookup(t, &k, &got, 0) && got.flags == 3 && got.ttl_s == 60);
	CU_ASSERT_EQUAL(fp_aff_mark(t, &other, 2, 60), -ENOENT);
	fp_aff_stats(t, &st);
	CU_ASSERT(st.count == 1 && st.inserts == 1 && st.capacity == 1000);
	CU_ASSERT_EQUAL(fp_aff_del(t, &k), 0);
	CU_ASSERT_EQUAL(fp_aff_del(t, &k), -ENOENT);
	CU_ASSERT_FALSE(fp_aff_lookup(t, &k, &got, 0));
	// The fragment-record form: a marker in pad[0] is part of the key.
	k.pad[0] = 1;
	CU_ASSERT_EQUAL(fp_aff_add(t, &k, &v, 0, false), 0);
	k.pad[0] = 0;
	CU_ASSERT_FALSE(fp_aff_lookup(t, &k, &got, 0));
	free(mem);
}

static void test_bulk(void)
{
	void *mem;
	struct fp_aff *t = table_new(1000, &mem);
	struct fp_aff_key keys[FP_AFF_LOOKUP_MAX];
	struct fp_aff_val vals[FP_AFF_LOOKUP_MAX];
	uint64_t want = 0, got;

	for (unsigned i = 0; i < FP_AFF_LOOKUP_MAX; i++) {
		keys[i] = key_of(i * 7);
		if (i % 3 == 0) {
			struct fp_aff_val v = { .target = i, .ttl_s = 10 };

			CU_ASSERT_EQUAL(fp_aff_add(t, &keys[i], &v, 0, false), 0);
			want |= 1ULL << i;
		}
	}
	got = fp_aff_lookup_bulk(t, keys, FP_AFF_LOOKUP_MAX, vals, 0);
	CU_ASSERT_EQUAL(got, want);
	for (unsigned i = 0; i < FP_AFF_LOOKUP_MAX; i += 3)
		CU_ASSERT_EQUAL(vals[i].target, i);
	free(mem);
}

/* Capacity entries always fit; past it, inserts fail gracefully and every
 * earlier entry is still found. */
static void fill(uint32_t capacity)
{
	void *mem;
	struct fp_aff *t = table_new(capacity, &mem);
	struct fp_aff_val v = { .ttl_s = 900 }, got;
	struct fp_aff_stats st;
	uint32_t i, ok = 0, extra = 0;

	for (i = 0; i < capacity; i++) {
		struct fp_aff_key k = key_of(i);

		v.target = i;
		ok += fp_aff_add(t, &k, &v, 0, false) == 0;
	}
	CU_ASSERT_EQUAL(ok, capacity);
	fp_aff_stats(t, &st);
	for (; extra < st.slots; i++, extra++) {
		struct fp_aff_key k = key_of(i);

		if (fp_aff_add(t, &k, &v, 0, false) == -ENOSPC)
			break;
	}
	fp_aff_stats(t, &st);
	CU_ASSERT(st.full >= 1);
	CU_ASSERT(st.count == capacity + extra);
	for (uint32_t j = 0, miss = 0; j < capacity; j++) {
		struct fp_aff_key k = key_of(j);

		if (!fp_aff_lookup(t, &k, &got, 0) || got.target != j) {
			if (miss++ == 0)
				CU_FAIL("an entry was lost when the table filled");
		}
	}
	free(mem);
}

static void test_fill_10k(void)
{
	fill(10000);
}

static void test_fill_1m(void)
{
	fill(1000000);
}

static void test_expiry(void)
{
	void *mem;
	struct fp_aff *t = table_new(1000, &mem);
	struct fp_aff_key a = key_of(1), b = key_of(2);
	struct fp_aff_val v = { .target = 1, .ttl_s = 1 }, got;
	uint32_t t0 = UINT32_MAX - 500; // the clock wraps during this test
	uint64_t cursor = 0;
	unsigned gone = 0;

	CU_ASSERT_EQUAL(fp_aff_add(t, &a, &v, t0, false), 0);
	CU_ASSERT_EQUAL(fp_aff_add(t, &b, &v, t0, false), 0);
	do
		gone += fp_aff_expire(t, &cursor, 16, t0 + 1000);
	while (cursor != 0);
	CU_ASSERT_EQUAL(gone, 0u); // exactly the TTL: still alive
	// A lookup 1 s later refreshes a; b is left idle.
	CU_ASSERT(fp_aff_lookup(t, &a, &got, t0 + 1000));
	do
		gone += fp_aff_expire(t, &cursor, 16, t0 + 1500);
	while (cursor != 0);
	CU_ASSERT_EQUAL(gone, 1u);
	CU_ASSERT(fp_aff_lookup(t, &a, &got, t0 + 1500));
	CU_ASSERT_FALSE(fp_aff_lookup(t, &b, &got, t0 + 1500));
	free(mem);
}

static int count_one(const struct fp_aff_entry_view *e, void *arg)
{
	unsigned *seen = arg;

	seen[e->val.target]++;
	return 0;
}

static int stop_at_first(const struct fp_aff_entry_view *e, void *arg)
{
	(void)e;
	(void)arg;
	return 1;
}

static void test_walk(void)
{
	void *mem;
	struct fp_aff *t = table_new(500, &mem);
	unsigned seen[500] = { 0 }, visited = 0;
	uint64_t cursor = 0;

	for (uint32_t i = 0; i < 500; i++) {
		struct fp_aff_key k = key_of(i);
		struct fp_aff_val v = { .target = i, .ttl_s = 5 };

		fp_aff_add(t, &k, &v, 0, false);
	}
	do
		visited += fp_aff_walk(t, &cursor, 7, count_one, seen);
	while (cursor != 0);
	CU_ASSERT_EQUAL(visited, 500u);
	for (unsigned i = 0; i < 500; i++)
		CU_ASSERT_EQUAL(seen[i], 1u);
	cursor = 0;
	CU_ASSERT_EQUAL(fp_aff_walk(t, &cursor, 100, stop_at_first, NULL), 1u);
	CU_ASSERT(cursor != 0);
	free(mem);
}

/* ---- readers racing writers ------------------------------------------------------- */

#define STABLE 2000
#define CHURN 20000

struct race {
	struct fp_aff *t;
	atomic_bool stop;
	atomic_ulong lookups, misses, wrong, torn;
	unsigned seed;
};

static uint32_t check_value(const struct fp_aff_key *k)
{
	return (uint32_t)(fp_aff_hash(k) & 0xFFFFFFF);
}

static void *reader(void *arg)
{
	struct race *r = arg;
	struct fp_aff_key keys[32];
	struct fp_aff_val vals[32];
	unsigned i = 0;

	while (!atomic_load(&r->stop)) {
		uint64_t hits;

		for (unsigned j = 0; j < 32; j++)
			keys[j] = key_of((i++ * 7919) % STABLE);
		hits = fp_aff_lookup_bulk(r->t, keys, 32, vals, 0);
		for (unsigned j = 0; j < 32; j++) {
			if (!(hits >> j & 1))
				atomic_fetch_add(&r->misses, 1);
			else if (vals[j].target != check_value(&keys[j]))
				atomic_fetch_add(&r->wrong, 1);
		}
		// Churned keys: a hit must carry its own checksum.
		for (unsigned j = 0; j < 32; j++)
			keys[j] = key_of(STABLE + (i++ * 104729) % CHURN);
		hits = fp_aff_lookup_bulk(r->t, keys, 32, vals, 0);
		for (unsigned j = 0; j < 32; j++)
			if ((hits >> j & 1) && vals[j].target != check_value(&keys[j]))
				atomic_fetch_add(&r->torn, 1);
		atomic_fetch_add(&r->lookups, 64);
	}
	return NULL;
}

static void *writer(void *arg)
{
	struct race *r = arg;
	unsigned x = r->seed;
	uint64_t cursor = 0;

	while (!atomic_load(&r->stop)) {
		struct fp_aff_key k;
		struct fp_aff_val v = { .ttl_s = 1 };

		x = x * 1103515245u + 12345u;
		k = key_of(STABLE + (x >> 8) % CHURN);
		v.target = check_value(&k);
		if (x & 0x100)
			fp_aff_add(r->t, &k, &v, 0, false);
		else
			fp_aff_del(r->t, &k);
		if ((x & 0xfff) == 0)
			fp_aff_expire(r->t, &cursor, 64, 5000); // churned entries are stale
	}
	return NULL;
}

static void test_race(void)
{
	void *mem;
	// Small enough that churn fills buckets and forces cuckoo moves.
	struct fp_aff *t = table_new(STABLE + CHURN / 2, &mem);
	struct race r = { .t = t };
	pthread_t th[4];
	struct fp_aff_stats st;
	struct timespec run = { 1, 500000000 };

	for (uint32_t i = 0; i < STABLE; i++) {
		struct fp_aff_key k = key_of(i);
		struct fp_aff_val v = { .target = check_value(&k), .ttl_s = 60000 };

		CU_ASSERT_EQUAL_FATAL(fp_aff_add(t, &k, &v, 0, false), 0);
	}
	pthread_create(&th[0], NULL, reader, &r);
	pthread_create(&th[1], NULL, reader, &r);
	r.seed = 1;
	pthread_create(&th[2], NULL, writer, &r);
	nanosleep(&(struct timespec){ 0, 1000 }, NULL);
	r.seed = 2;
	pthread_create(&th[3], NULL, writer, &r);
	nanosleep(&run, NULL);
	atomic_store(&r.stop, true);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	fp_aff_stats(t, &st);
	fprintf(stderr,
		"\n  race: %lu lookups, %lu misses, %lu wrong, %lu torn, %" PRIu64
		" moves, %" PRIu64 " full\n",
		atomic_load(&r.lookups), atomic_load(&r.misses), atomic_load(&r.wrong),
		atomic_load(&r.torn), st.moves, st.full);
	CU_ASSERT(atomic_load(&r.lookups) > 10000);
	CU_ASSERT_EQUAL(atomic_load(&r.wrong), 0);
	CU_ASSERT_EQUAL(atomic_load(&r.torn), 0);
	// A miss of a stable key is only allowed when a slot kept moving for
	// every retry: essentially never.
	CU_ASSERT(atomic_load(&r.misses) * 10000 <= atomic_load(&r.lookups));
	free(mem);
}

int main(void)
{
	static const struct fpt_case cases[] = {
		{ "arguments", test_arguments },
		{ "add, lookup, replace, mark, delete", test_basics },
		{ "bulk lookup", test_bulk },
		{ "fill 10 k, then past capacity", test_fill_10k },
		{ "fill 1 M, then past capacity", test_fill_1m },
		{ "expiry across the clock wrap", test_expiry },
		{ "walk", test_walk },
		{ "readers racing writers", test_race },
	};

	return fpt_run("fp_aff", NULL, NULL, cases, sizeof(cases) / sizeof(cases[0]));
}
