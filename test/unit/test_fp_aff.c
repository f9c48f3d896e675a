/*
 * test_fp_aff.c - the affinity table (fp_aff.h) without DPDK: arguments and
 * sizing, add/lookup/replace/mark/delete, every key byte, bulk lookups,
 * filling to capacity and past it (cuckoo moves, a graceful -ENOSPC), expiry
 * across the clock's wrap and with clocks slightly apart, walks, and threads
 * racing on the same buckets: a live entry is never missed, torn or wrong, a
 * deleted one never comes back, and the counters add up afterwards.
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

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ---------------------------------------------------------------------- */

static void *mem_new(size_t n)
{
	void *mem = aligned_alloc(64, (n + 63) & ~(size_t)63);

	CU_ASSERT_PTR_NOT_NULL_FATAL(mem);
	return mem;
}

static struct fp_aff *table_new(uint32_t capacity, void **mem)
{
	size_t n = fp_aff_mem_size(capacity);
	struct fp_aff *t;

	*mem = mem_new(n);
	memset(*mem, 0xA5, n); // "any content": init must not trust it
	t = fp_aff_init(*mem, n, capacity);
	CU_ASSERT_PTR_NOT_NULL_FATAL(t);
	return t;
}

static uint64_t splitmix(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

/* A flow of one client address and source port toward one VIP. */
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

/* Random-looking keys, distinct for distinct (i, seed): src and dst are a
 * bijection of i for a given seed. */
static struct fp_aff_key random_key(uint64_t i, uint64_t seed)
{
	uint64_t x = splitmix(i ^ seed * 0xD6E8FEB86659FD93ULL), y = splitmix(x);
	struct fp_aff_key k;

	memset(&k, 0, sizeof(k));
	k.src = (uint32_t)x;
	k.dst = (uint32_t)(x >> 32);
	k.sport = (uint16_t)y;
	k.dport = (uint16_t)(y >> 16);
	k.proto = (y >> 32) & 1 ? 6 : 17;
	return k;
}

static bool key_eq(const struct fp_aff_key *a, const struct fp_aff_key *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/* The value stored for churned keys: a checksum of the key, so a reader can
 * tell a torn or misplaced entry. */
static uint32_t check_value(const struct fp_aff_key *k)
{
	return (uint32_t)(fp_aff_hash(k) & 0xFFFFFFF);
}

static int count_cb(const struct fp_aff_entry_view *e, void *arg)
{
	(void)e;
	(*(uint64_t *)arg)++;
	return 0;
}

/* Live entries by a full walk. */
static uint64_t walk_count(struct fp_aff *t)
{
	uint64_t cursor = 0, n = 0;

	do
		fp_aff_walk(t, &cursor, 1000, count_cb, &n);
	while (cursor != 0);
	return n;
}

/* A whole expiry pass; returns the entries deleted. */
static unsigned expire_all(struct fp_aff *t, uint32_t now_ms)
{
	uint64_t cursor = 0;
	unsigned gone = 0;

	do
		gone += fp_aff_expire(t, &cursor, 16, now_ms);
	while (cursor != 0);
	return gone;
}

/* ---- arguments and sizing --------------------------------------------------------- */

static void test_arguments(void)
{
	uint8_t small[256] __attribute__((aligned(64)));
	size_t n100 = fp_aff_mem_size(100);
	struct fp_aff_stats st;
	struct fp_aff *t;
	uint8_t *mem;

	CU_ASSERT_EQUAL(fp_aff_mem_size(0), 0u);
	CU_ASSERT_EQUAL(fp_aff_mem_size((1u << 30) + 1), 0u);
	CU_ASSERT_EQUAL(fp_aff_mem_size(UINT32_MAX), 0u);
	CU_ASSERT(fp_aff_mem_size(1u << 30) > (size_t)32 << 30);
	CU_ASSERT(fp_aff_mem_size(1) > 0);
	CU_ASSERT_EQUAL(n100 % 64, 0u);
	CU_ASSERT(fp_aff_mem_size(1000) >= 1000 * 32 * 5 / 4);
	CU_ASSERT(fp_aff_mem_size(2000) >= fp_aff_mem_size(1000));

	errno = 0;
	CU_ASSERT_PTR_NULL(fp_aff_init(small, sizeof(small), 1000)); // short
	CU_ASSERT_EQUAL(errno, EINVAL);
	mem = mem_new(n100 + 128);
	errno = 0;
	CU_ASSERT_PTR_NULL(fp_aff_init(NULL, n100, 100));
	CU_ASSERT_EQUAL(errno, EINVAL);
	errno = 0;
	CU_ASSERT_PTR_NULL(fp_aff_init(mem, n100, 0));
	CU_ASSERT_EQUAL(errno, EINVAL);
	errno = 0;
	CU_ASSERT_PTR_NULL(fp_aff_init(mem, (size_t)-1, (1u << 30) + 1));
	CU_ASSERT_EQUAL(errno, EINVAL);
	errno = 0;
	CU_ASSERT_PTR_NULL(fp_aff_init(mem, n100 - 1, 100));
	CU_ASSERT_EQUAL(errno, EINVAL);
	for (unsigned off = 1; off < 64; off *= 2) {
		errno = 0;
		CU_ASSERT_PTR_NULL(fp_aff_init(mem + off, n100, 100)); // misaligned
		CU_ASSERT_EQUAL(errno, EINVAL);
	}
	CU_ASSERT_PTR_EQUAL(fp_aff_init(mem + 64, n100, 100), mem + 64);
	t = fp_aff_init(mem, n100, 100);
	CU_ASSERT_PTR_EQUAL(t, mem);
	fp_aff_stats(t, &st);
	CU_ASSERT_EQUAL(st.capacity, 100u);
	CU_ASSERT_EQUAL(st.count, 0u);
	CU_ASSERT_EQUAL(st.mem_bytes, n100);
	CU_ASSERT(st.slots * 4 >= 100u * 5);            // capacity at <= 80 %
	CU_ASSERT_EQUAL(st.slots & (st.slots - 1), 0u); // power of two
	free(mem);
}

/* Memory full of junk (including what looks like live entries) is a clean
 * table after init. */
static void test_init_any_content(void)
{
	void *mem;
	struct fp_aff *t = table_new(1000, &mem);
	struct fp_aff_key k = key_of(1);
	struct fp_aff_val got;
	struct fp_aff_stats st;

	CU_ASSERT_FALSE(fp_aff_lookup(t, &k, &got, 0));
	CU_ASSERT_EQUAL(walk_count(t), 0u);
	CU_ASSERT_EQUAL(expire_all(t, 123456), 0u);
	fp_aff_stats(t, &st);
	CU_ASSERT(st.count == 0 && st.inserts == 0 && st.full == 0 && st.moves == 0);
	free(mem);
}

/* ---- basics ------------------------------------------------------------------------ */

static void test_basics(void)
{
	void *mem;
	struct fp_aff *t = table_new(1000, &mem);
	struct fp_aff_key k = key_of(1), other = key_of(2);
	struct fp_aff_val v = { .target = 7, .flags = 1, .ttl_s = 900 }, got;
	struct fp_aff_stats st;

	CU_ASSERT_FALSE(fp_aff_lookup(t, &k, &got, 0));
	CU_ASSERT_EQUAL(fp_aff_del(t, &k), -ENOENT);
	CU_ASSERT_EQUAL(fp_aff_add(t, &k, &v, 0, false), 0);
	CU_ASSERT_EQUAL(fp_aff_add(t, &k, &v, 0, false), -EEXIST);
	memset(&got, 0, sizeof(got));
	CU_ASSERT(fp_aff_lookup(t, &k, &got, 0));
	CU_ASSERT(got.target == 7 && got.flags == 1 && got.ttl_s == 900);
	CU_ASSERT_FALSE(fp_aff_lookup(t, &other, &got, 0));
	v.target = 9;
	v.ttl_s = 30;
	CU_ASSERT_EQUAL(fp_aff_add(t, &k, &v, 0, true), 0); // replace
	CU_ASSERT(fp_aff_lookup(t, &k, &got, 0) && got.target == 9 && got.ttl_s == 30);
	CU_ASSERT_EQUAL(fp_aff_mark(t, &k, 2, 60), 0);
	CU_ASSERT(fp_aff_lookup(t, &k, &got, 0) && got.flags == 3 && got.ttl_s == 60);
	CU_ASSERT(got.target == 9);
	CU_ASSERT_EQUAL(fp_aff_mark(t, &other, 2, 60), -ENOENT);
	fp_aff_stats(t, &st);
	CU_ASSERT(st.count == 1 && st.inserts == 1 && st.deletes == 0 && st.capacity == 1000);
	CU_ASSERT_EQUAL(fp_aff_del(t, &k), 0);
	CU_ASSERT_EQUAL(fp_aff_del(t, &k), -ENOENT);
	CU_ASSERT_FALSE(fp_aff_lookup(t, &k, &got, 0));
	CU_ASSERT_EQUAL(fp_aff_mark(t, &k, 2, 60), -ENOENT);
	// Replace of an absent key inserts it.
	CU_ASSERT_EQUAL(fp_aff_add(t, &k, &v, 0, true), 0);
	CU_ASSERT(fp_aff_lookup(t, &k, &got, 0) && got.target == 9);
	fp_aff_stats(t, &st);
	CU_ASSERT(st.count == 1 && st.inserts == 2 && st.deletes == 1);
	free(mem);
}

/* Peek: the value and the last-seen time, never refreshed; a lookup
 * refreshes. Every key of a well-filled table is found by peek. */
static void test_peek(void)
{
	void *mem;
	struct fp_aff *t = table_new(1000, &mem);
	struct fp_aff_key k = key_of(1), other = key_of(2);
	struct fp_aff_val v = { .target = 7, .flags = 1, .ttl_s = 900 }, got;
	uint32_t last = 0;
	unsigned found = 0;

	CU_ASSERT_FALSE(fp_aff_peek(t, &k, &got, &last));
	CU_ASSERT_EQUAL(fp_aff_add(t, &k, &v, 1000, false), 0);
	CU_ASSERT(fp_aff_peek(t, &k, &got, &last) && got.target == 7 && last == 1000);
	CU_ASSERT(fp_aff_peek(t, &k, &got, &last) && last == 1000); // no refresh
	CU_ASSERT_FALSE(fp_aff_peek(t, &other, &got, &last));
	CU_ASSERT(fp_aff_lookup(t, &k, &got, 9000));
	CU_ASSERT(fp_aff_peek(t, &k, &got, &last) && last == 9000);
	for (uint32_t i = 10; i < 810; i++) {
		struct fp_aff_key ki = key_of(i);

		v.target = i;
		CU_ASSERT_EQUAL(fp_aff_add(t, &ki, &v, 0, false), 0);
	}
	for (uint32_t i = 10; i < 810; i++) {
		struct fp_aff_key ki = key_of(i);

		found += fp_aff_peek(t, &ki, &got, &last) && got.target == i;
	}
	CU_ASSERT_EQUAL(found, 800);
	free(mem);
}

struct key_list {
	unsigned n;
	struct fp_aff_key keys[16];
	uint32_t targets[16];
};

static int collect_keys(const struct fp_aff_entry_view *e, void *arg)
{
	struct key_list *l = arg;

	if (l->n < ARRAY_SIZE(l->keys)) {
		l->keys[l->n] = e->key;
		l->targets[l->n] = e->val.target;
	}
	l->n++;
	return 0;
}

/* Every key field, and pad[0..1] (fragment records mark pad[0]), tells keys
 * apart; walks give each key back byte for byte. */
static void test_key_bytes(void)
{
	void *mem;
	struct fp_aff *t = table_new(100, &mem);
	struct fp_aff_key base = random_key(1, 1), k[8];
	struct fp_aff_val got;
	struct key_list l = { 0 };
	uint64_t cursor = 0;

	for (unsigned i = 0; i < ARRAY_SIZE(k); i++)
		k[i] = base;
	k[1].src ^= 1;
	k[2].dst ^= 0x80000000u;
	k[3].sport ^= 0x100;
	k[4].dport ^= 1;
	k[5].proto = (uint8_t)(17 + 6 - k[5].proto);
	k[6].pad[0] = 1;
	k[7].pad[1] = 0x80;
	for (unsigned i = 0; i < ARRAY_SIZE(k); i++) {
		struct fp_aff_val v = { .target = 100 + i, .ttl_s = 1 };

		CU_ASSERT_EQUAL(fp_aff_add(t, &k[i], &v, 0, false), 0);
	}
	for (unsigned i = 0; i < ARRAY_SIZE(k); i++)
		CU_ASSERT(fp_aff_lookup(t, &k[i], &got, 0) && got.target == 100 + i);
	CU_ASSERT_EQUAL(fp_aff_walk(t, &cursor, 100, collect_keys, &l), ARRAY_SIZE(k));
	CU_ASSERT_EQUAL(l.n, ARRAY_SIZE(k));
	for (unsigned j = 0; j < l.n && j < ARRAY_SIZE(l.keys); j++) {
		unsigned i = l.targets[j] - 100;

		CU_ASSERT_FATAL(i < ARRAY_SIZE(k));
		CU_ASSERT(key_eq(&l.keys[j], &k[i])); // pad[2] too: given back as 0
	}
	for (unsigned i = 0; i < ARRAY_SIZE(k); i++)
		CU_ASSERT_EQUAL(fp_aff_del(t, &k[i]), 0);
	CU_ASSERT_EQUAL(walk_count(t), 0u);
	free(mem);
}

static void test_bulk(void)
{
	void *mem;
	struct fp_aff *t = table_new(1000, &mem);
	struct fp_aff_key keys[FP_AFF_LOOKUP_MAX];
	struct fp_aff_val vals[FP_AFF_LOOKUP_MAX], one;
	uint64_t want = 0, got;

	for (unsigned i = 0; i < FP_AFF_LOOKUP_MAX; i++) {
		keys[i] = key_of(i * 7);
		if (i % 3 == 0 || i == FP_AFF_LOOKUP_MAX - 1) {
			struct fp_aff_val v = { .target = 1000 + i,
						.flags = (uint16_t)i,
						.ttl_s = 10 };

			CU_ASSERT_EQUAL(fp_aff_add(t, &keys[i], &v, 0, false), 0);
			want |= 1ULL << i;
		}
	}
	got = fp_aff_lookup_bulk(t, keys, FP_AFF_LOOKUP_MAX, vals, 0);
	CU_ASSERT_EQUAL(got, want);
	for (unsigned i = 0; i < FP_AFF_LOOKUP_MAX; i++) {
		if (!(want >> i & 1))
			continue;
		CU_ASSERT(vals[i].target == 1000 + i && vals[i].flags == i && vals[i].ttl_s == 10);
		CU_ASSERT(fp_aff_lookup(t, &keys[i], &one, 0) && one.target == 1000 + i);
	}
	CU_ASSERT_EQUAL(fp_aff_lookup_bulk(t, keys, 0, vals, 0), 0u);
	CU_ASSERT_EQUAL(fp_aff_lookup_bulk(t, keys, 1, vals, 0), 1u);
	CU_ASSERT_EQUAL(fp_aff_lookup_bulk(t, keys + 1, 3, vals, 0), 4u); // keys 1, 2, 3
	// The same key twice in a burst hits twice.
	keys[1] = keys[0];
	got = fp_aff_lookup_bulk(t, keys, 2, vals, 0);
	CU_ASSERT(got == 3 && vals[0].target == 1000 && vals[1].target == 1000);
	free(mem);
}

/* ---- filling up --------------------------------------------------------------------- */

/*
 * `capacity` distinct random keys always fit (the 80 % sizing); past it,
 * inserts go on until -ENOSPC, which is counted, and every earlier entry is
 * still found with its value.
 */
static void fill(uint32_t capacity, uint64_t seed, bool verbose)
{
	void *mem;
	struct fp_aff *t = table_new(capacity, &mem);
	struct fp_aff_val v = { .ttl_s = 900 }, got;
	struct fp_aff_stats st;
	uint32_t i, ok = 0, extra = 0, lost = 0, nospc = 0;

	for (i = 0; i < capacity; i++) {
		struct fp_aff_key k = random_key(i, seed);

		v.target = i;
		ok += fp_aff_add(t, &k, &v, 0, false) == 0;
	}
	CU_ASSERT_EQUAL(ok, capacity);
	fp_aff_stats(t, &st);
	for (; extra < st.slots; i++, extra++) {
		struct fp_aff_key k = random_key(i, seed);

		v.target = i;
		if (fp_aff_add(t, &k, &v, 0, false) == -ENOSPC)
			break;
	}
	// A few more: each failure is counted, none harms the table.
	for (uint32_t j = 0; j < 10; j++) {
		struct fp_aff_key k = random_key(i + 1 + j, seed);

		nospc += fp_aff_add(t, &k, &v, 0, false) == -ENOSPC;
	}
	fp_aff_stats(t, &st);
	CU_ASSERT(extra < st.slots);
	CU_ASSERT(st.full >= 1 && st.full == 1 + nospc);
	CU_ASSERT_EQUAL(st.count, (uint64_t)capacity + extra + 10 - nospc);
	CU_ASSERT_EQUAL(st.inserts, st.count);
	for (uint32_t j = 0; j < capacity + extra; j++) {
		struct fp_aff_key k = random_key(j, seed);

		lost += !fp_aff_lookup(t, &k, &got, 0) || got.target != j;
	}
	CU_ASSERT_EQUAL(lost, 0u);
	CU_ASSERT_EQUAL(walk_count(t), st.count);
	if (verbose)
		fprintf(stderr,
			"\n  fill %u: full at %.1f %% of %" PRIu64 " slots, %" PRIu64 " moves ",
			capacity, 100.0 * (capacity + extra) / st.slots, st.slots, st.moves);
	free(mem);
}

static void test_fill_10k(void)
{
	fill(10000, 1, true);
}

static void test_fill_1m(void)
{
	fill(1000000, 2, true);
}

/* Where power-of-two rounding leaves no slack: 838 860 entries are 80.0 %
 * of 2^20 slots. */
static void test_fill_80(void)
{
	void *mem;
	struct fp_aff_stats st;

	fp_aff_stats(table_new(838860, &mem), &st);
	CU_ASSERT_EQUAL(st.slots, 1u << 20);
	free(mem);
	fill(838860, 3, true);
}

/* Small tables, many seeds, capacities both loose and at exactly 80 %
 * (12 of 16 slots is 75 %, 819 of 1024 and 3276 of 4096 are 80 %), and the
 * sequential keys that real traffic makes (one client, consecutive ports). */
static void test_fill_small(void)
{
	static const uint32_t caps[] = { 1, 2, 3, 7, 12, 13, 100, 819, 1000, 3276 };

	for (unsigned c = 0; c < ARRAY_SIZE(caps); c++)
		for (uint64_t seed = 1; seed <= 40; seed++)
			fill(caps[c], seed * 1000 + c, false);
	{
		void *mem;
		struct fp_aff *t = table_new(50000, &mem);
		struct fp_aff_val v = { .ttl_s = 1 }, got;
		uint32_t ok = 0, found = 0;

		for (uint32_t i = 0; i < 50000; i++) {
			struct fp_aff_key k = key_of(i);

			v.target = i;
			ok += fp_aff_add(t, &k, &v, 0, false) == 0;
		}
		for (uint32_t i = 0; i < 50000; i++) {
			struct fp_aff_key k = key_of(i);

			found += fp_aff_lookup(t, &k, &got, 0) && got.target == i;
		}
		CU_ASSERT(ok == 50000 && found == 50000);
		free(mem);
	}
}

/* ---- expiry --------------------------------------------------------------------------- */

/* One entry of TTL 1 s seen at t0: alive at exactly the TTL, gone 1 ms later. */
static void expiry_at(uint32_t t0)
{
	void *mem;
	struct fp_aff *t = table_new(1000, &mem);
	struct fp_aff_key a = key_of(1), b = key_of(2), c = key_of(3), d = key_of(4);
	struct fp_aff_val v = { .target = 1, .ttl_s = 1 }, got;
	struct fp_aff_stats st;

	CU_ASSERT_EQUAL(fp_aff_add(t, &a, &v, t0, false), 0);
	CU_ASSERT_EQUAL(fp_aff_add(t, &b, &v, t0, false), 0);
	CU_ASSERT_EQUAL(expire_all(t, t0 + 1000), 0u); // exactly the TTL: alive
	CU_ASSERT_EQUAL(expire_all(t, t0 + 1001), 2u);
	CU_ASSERT_FALSE(fp_aff_lookup(t, &a, &got, t0 + 1001));
	fp_aff_stats(t, &st);
	CU_ASSERT(st.count == 0 && st.expiries == 2 && st.deletes == 0);

	// A lookup 1 s after the last refresh moves last-seen; one sooner does not.
	CU_ASSERT_EQUAL(fp_aff_add(t, &a, &v, t0, false), 0);
	CU_ASSERT_EQUAL(fp_aff_add(t, &b, &v, t0, false), 0);
	CU_ASSERT(fp_aff_lookup(t, &a, &got, t0 + 1000)); // a: last-seen t0 + 1000
	CU_ASSERT(fp_aff_lookup(t, &b, &got, t0 + 999));  // b: still t0
	CU_ASSERT_EQUAL(expire_all(t, t0 + 1500), 1u);
	CU_ASSERT(fp_aff_lookup(t, &a, &got, t0 + 1500));
	CU_ASSERT_FALSE(fp_aff_lookup(t, &b, &got, t0 + 1500));
	CU_ASSERT_EQUAL(expire_all(t, t0 + 2000), 0u);
	CU_ASSERT_EQUAL(expire_all(t, t0 + 2001), 1u);

	// Mark shortens the TTL (FIN seen) and keeps the value.
	v.ttl_s = 900;
	CU_ASSERT_EQUAL(fp_aff_add(t, &c, &v, t0, false), 0);
	CU_ASSERT_EQUAL(fp_aff_add(t, &d, &v, t0, false), 0);
	CU_ASSERT_EQUAL(fp_aff_mark(t, &c, 4, 2), 0);
	CU_ASSERT_EQUAL(expire_all(t, t0 + 2000), 0u);
	CU_ASSERT_EQUAL(expire_all(t, t0 + 2001), 1u);
	CU_ASSERT_FALSE(fp_aff_lookup(t, &c, &got, t0 + 2001));
	CU_ASSERT(fp_aff_lookup(t, &d, &got, t0 + 2001) && got.ttl_s == 900);

	// Clocks a little apart: a thread whose now_ms is behind the last-seen
	// another thread wrote sees an idle time of 0, not 2^32 - 1 ms.
	CU_ASSERT_EQUAL(fp_aff_add(t, &a, &v, t0 + 5000, false), 0);
	CU_ASSERT_EQUAL(expire_all(t, t0 + 4999), 0u);
	CU_ASSERT_EQUAL(expire_all(t, t0 + 4000), 0u);
	CU_ASSERT(fp_aff_lookup(t, &a, &got, t0 + 4999));
	free(mem);
}

static void test_expiry(void)
{
	expiry_at(0);
	expiry_at(123456789);
}

static void test_expiry_wrap(void)
{
	expiry_at(UINT32_MAX - 500);  // the clock wraps between add and expiry
	expiry_at(UINT32_MAX - 1000); // ... exactly at the TTL
	expiry_at(UINT32_MAX);
}

/* The expiry cursor: slices of any size cover each bucket once per pass and
 * the cursor comes back to 0 at the end of the table. */
static void test_expiry_cursor(void)
{
	void *mem;
	struct fp_aff *t = table_new(1000, &mem);
	struct fp_aff_val v = { .ttl_s = 1 };
	struct fp_aff_stats st;
	uint64_t cursor = 0, buckets;
	unsigned gone = 0, calls = 0;

	for (uint32_t i = 0; i < 1000; i++) {
		struct fp_aff_key k = random_key(i, 9);

		CU_ASSERT_EQUAL(fp_aff_add(t, &k, &v, 0, false), 0);
	}
	fp_aff_stats(t, &st);
	buckets = st.slots / FP_AFF_BUCKET_SLOTS;
	do {
		gone += fp_aff_expire(t, &cursor, 7, 2000);
		calls++;
		CU_ASSERT(cursor < buckets);
	} while (cursor != 0 && calls < 100000);
	CU_ASSERT_EQUAL(gone, 1000u);
	CU_ASSERT_EQUAL(calls, (buckets + 6) / 7);
	fp_aff_stats(t, &st);
	CU_ASSERT(st.count == 0 && st.expiries == 1000);
	// One call over more buckets than the table stops at its end.
	cursor = 3;
	CU_ASSERT_EQUAL(fp_aff_expire(t, &cursor, (unsigned)buckets * 4, 2000), 0u);
	CU_ASSERT_EQUAL(cursor, 0u);
	free(mem);
}

/* ---- walks -------------------------------------------------------------------------------- */

struct seen {
	uint32_t n; /* entries expected */
	unsigned *hits;
	unsigned calls, bad;
	uint32_t seed, last_ms;
	unsigned stop_after; /* fn returns 1 on this call (1-based), 0: never */
};

static int walk_check(const struct fp_aff_entry_view *e, void *arg)
{
	struct seen *s = arg;
	uint32_t i = e->val.target;
	struct fp_aff_key k;

	s->calls++;
	if (i >= s->n) {
		s->bad++;
		return 0;
	}
	k = random_key(i, s->seed);
	if (!key_eq(&e->key, &k) || e->val.flags != (uint16_t)i || e->val.ttl_s != 77 ||
	    e->last_ms != s->last_ms)
		s->bad++;
	s->hits[i]++;
	return s->stop_after && s->calls == s->stop_after;
}

static void test_walk(void)
{
	enum { N = 500 };
	void *mem;
	struct fp_aff *t = table_new(N, &mem);
	unsigned hits[N] = { 0 }, visited = 0, calls = 0, n;
	struct seen s = { .n = N, .hits = hits, .seed = 5, .last_ms = 4242 };
	struct fp_aff_stats st;
	uint64_t cursor = 0;

	CU_ASSERT_EQUAL(fp_aff_walk(t, &cursor, 100, walk_check, &s), 0u); // empty
	CU_ASSERT_EQUAL(cursor, 0u);
	for (uint32_t i = 0; i < N; i++) {
		struct fp_aff_key k = random_key(i, s.seed);
		struct fp_aff_val v = { .target = i, .flags = (uint16_t)i, .ttl_s = 77 };

		CU_ASSERT_EQUAL(fp_aff_add(t, &k, &v, s.last_ms, false), 0);
	}
	fp_aff_stats(t, &st);
	// In slices of 7: never more than max, each entry exactly once.
	do {
		uint64_t before = cursor;

		n = fp_aff_walk(t, &cursor, 7, walk_check, &s);
		CU_ASSERT(n <= 7);
		CU_ASSERT(cursor == 0 || (cursor > before && cursor < st.slots));
		visited += n;
		calls++;
	} while (cursor != 0 && calls < 10000);
	CU_ASSERT_EQUAL(visited, N);
	CU_ASSERT_EQUAL(s.bad, 0u);
	for (unsigned i = 0; i < N; i++)
		CU_ASSERT_EQUAL(hits[i], 1u);
	CU_ASSERT_EQUAL(fp_aff_walk(t, &cursor, 0, walk_check, &s), 0u); // max 0
	CU_ASSERT_EQUAL(cursor, 0u);

	// fn stopping the walk: counted, and the walk resumes after that entry.
	memset(hits, 0, sizeof(hits));
	s.calls = 0;
	s.stop_after = 3;
	cursor = 0;
	CU_ASSERT_EQUAL(fp_aff_walk(t, &cursor, 100, walk_check, &s), 3u);
	CU_ASSERT(cursor != 0);
	s.stop_after = 0;
	visited = 3;
	do
		visited += fp_aff_walk(t, &cursor, 1000, walk_check, &s);
	while (cursor != 0);
	CU_ASSERT_EQUAL(visited, N);
	for (unsigned i = 0; i < N; i++)
		CU_ASSERT_EQUAL(hits[i], 1u);
	CU_ASSERT_EQUAL(s.bad, 0u);
	// A cursor past the end is the end.
	cursor = st.slots + 5;
	CU_ASSERT_EQUAL(fp_aff_walk(t, &cursor, 100, walk_check, &s), 0u);
	CU_ASSERT_EQUAL(cursor, 0u);
	free(mem);
}

/* ---- threads racing on the same buckets ------------------------------------------------ */

#define STABLE 2000  /* never written during the race: must always hit */
#define COLLIDE 2000 /* churned keys sharing a first bucket with stable ones */
#define CHURN 8000   /* other churned keys */
#define READERS 2
#define WRITERS 2
#define RACE_NS 1500000000L

struct race {
	struct fp_aff *t;
	uint64_t mask;
	struct fp_aff_key stable[STABLE];
	struct fp_aff_key churn[COLLIDE + CHURN]; /* colliding ones first */
	atomic_bool stop;
	atomic_ulong lookups, misses, wrong, torn, churn_hits;
	atomic_ulong writes, lost, ghosts, bad_rc;
};

struct writer_arg {
	struct race *r;
	unsigned id;
	uint64_t rng;
	bool *present; /* per key this writer owns */
};

static uint64_t rng_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void *reader(void *arg)
{
	struct race *r = arg;
	struct fp_aff_key keys[32];
	struct fp_aff_val vals[32];
	uint64_t rng = 0x1234567;
	unsigned long lookups = 0, misses = 0, wrong = 0, torn = 0, churn_hits = 0;

	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		uint64_t hits;

		for (unsigned j = 0; j < 32; j++)
			keys[j] = r->stable[rng_next(&rng) % STABLE];
		// now_ms 2000: the first hit of each entry refreshes it, racing
		// with writers on the same slots.
		hits = fp_aff_lookup_bulk(r->t, keys, 32, vals, 2000);
		for (unsigned j = 0; j < 32; j++) {
			if (!(hits >> j & 1))
				misses++;
			else if (vals[j].target != check_value(&keys[j]) || vals[j].ttl_s != 65535)
				wrong++;
		}
		// Churned keys: any hit must carry its own checksum.
		for (unsigned j = 0; j < 32; j++)
			keys[j] = r->churn[rng_next(&rng) % (COLLIDE + CHURN)];
		hits = fp_aff_lookup_bulk(r->t, keys, 32, vals, 2000);
		for (unsigned j = 0; j < 32; j++) {
			if (!(hits >> j & 1))
				continue;
			churn_hits++;
			if (vals[j].target != check_value(&keys[j]))
				torn++;
		}
		// And the single-key form.
		keys[0] = r->stable[rng_next(&rng) % STABLE];
		if (!fp_aff_lookup(r->t, &keys[0], &vals[0], 2000))
			misses++;
		else if (vals[0].target != check_value(&keys[0]))
			wrong++;
		lookups += 65;
	}
	atomic_fetch_add(&r->lookups, lookups);
	atomic_fetch_add(&r->misses, misses);
	atomic_fetch_add(&r->wrong, wrong);
	atomic_fetch_add(&r->torn, torn);
	atomic_fetch_add(&r->churn_hits, churn_hits);
	return NULL;
}

/*
 * Churned key i belongs to writer i % WRITERS, which alone adds and deletes
 * it with a long TTL and checks each result: after an add the key is found,
 * after a delete it is not (a copy moved by another thread's cuckoo move
 * must not escape the delete). Odd-numbered keys of each writer are instead
 * shared, short-lived entries (TTL 1 s at time 0) that both writers add and
 * that expiry (at 5000 ms) removes.
 */
static void *writer(void *arg)
{
	struct writer_arg *wa = arg;
	struct race *r = wa->r;
	uint64_t cursor = 0;
	unsigned long writes = 0, lost = 0, ghosts = 0, bad_rc = 0;

	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		uint64_t x = rng_next(&wa->rng);
		uint32_t i = (uint32_t)(x >> 8) % (COLLIDE + CHURN);
		const struct fp_aff_key *k = &r->churn[i];
		struct fp_aff_val v = { .target = check_value(k) }, got;
		int rc;

		writes++;
		if ((x & 0x3ff) == 0) {
			fp_aff_expire(r->t, &cursor, 64, 5000);
			continue;
		}
		if (i / WRITERS % 2) { // shared, short-lived
			v.ttl_s = 1;
			rc = fp_aff_add(r->t, k, &v, 0, x & 0x10);
			bad_rc += rc != 0 && rc != -EEXIST && rc != -ENOSPC;
			continue;
		}
		if (i % WRITERS != wa->id)
			continue;
		v.ttl_s = 60000;
		if (x & 0x10) {
			rc = fp_aff_add(r->t, k, &v, 0, x & 0x20);
			if (rc == -EEXIST && !wa->present[i])
				ghosts++;
			else if (rc != 0 && rc != -EEXIST && rc != -ENOSPC)
				bad_rc++;
			wa->present[i] = rc != -ENOSPC;
			if (wa->present[i] &&
			    (!fp_aff_lookup(r->t, k, &got, 0) || got.target != v.target))
				lost++;
		} else {
			rc = fp_aff_del(r->t, k);
			if (rc != (wa->present[i] ? 0 : -ENOENT))
				bad_rc++;
			wa->present[i] = false;
			if (fp_aff_lookup(r->t, k, &got, 0))
				ghosts++;
		}
	}
	atomic_fetch_add(&r->writes, writes);
	atomic_fetch_add(&r->lost, lost);
	atomic_fetch_add(&r->ghosts, ghosts);
	atomic_fetch_add(&r->bad_rc, bad_rc);
	return NULL;
}

/* Churned keys: the first COLLIDE have their first bucket equal to a stable
 * key's (one of the first 64 stable keys'), the rest are random. */
static void race_keys(struct race *r)
{
	uint64_t hot[64];
	uint32_t n = 0;

	for (uint32_t i = 0; i < STABLE; i++)
		r->stable[i] = random_key(i, 100);
	for (unsigned i = 0; i < 64; i++)
		hot[i] = fp_aff_hash(&r->stable[i]) & r->mask;
	for (uint64_t c = 0; n < COLLIDE; c++) {
		struct fp_aff_key k = random_key(c, 200);
		uint64_t b1 = fp_aff_hash(&k) & r->mask;

		for (unsigned i = 0; i < 64; i++) {
			if (b1 == hot[i]) {
				r->churn[n++] = k;
				break;
			}
		}
	}
	for (uint32_t i = 0; i < CHURN; i++)
		r->churn[COLLIDE + i] = random_key(i, 300);
}

static void test_race(void)
{
	void *mem;
	// Small enough that the churn fills buckets and forces cuckoo moves.
	struct fp_aff *t = table_new(STABLE + (COLLIDE + CHURN) / 2, &mem);
	struct race *r = calloc(1, sizeof(*r));
	struct writer_arg wa[WRITERS];
	pthread_t th[READERS + WRITERS];
	struct timespec run = { RACE_NS / 1000000000L, RACE_NS % 1000000000L };
	struct fp_aff_stats st;
	struct fp_aff_val got;
	unsigned long lookups, misses, found = 0, owned_bad = 0;
	uint64_t walked;

	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	fp_aff_stats(t, &st);
	r->t = t;
	r->mask = st.slots / FP_AFF_BUCKET_SLOTS - 1;
	race_keys(r);
	for (uint32_t i = 0; i < STABLE; i++) {
		struct fp_aff_val v = { .target = check_value(&r->stable[i]), .ttl_s = 65535 };

		CU_ASSERT_EQUAL_FATAL(fp_aff_add(t, &r->stable[i], &v, 0, false), 0);
	}
	for (unsigned i = 0; i < READERS; i++)
		pthread_create(&th[i], NULL, reader, r);
	for (unsigned i = 0; i < WRITERS; i++) {
		wa[i] = (struct writer_arg){ r, i, 0x9E3779B97F4A7C15ULL * (i + 1),
					     calloc(COLLIDE + CHURN, sizeof(bool)) };
		pthread_create(&th[READERS + i], NULL, writer, &wa[i]);
	}
	nanosleep(&run, NULL);
	atomic_store(&r->stop, true);
	for (unsigned i = 0; i < READERS + WRITERS; i++)
		pthread_join(th[i], NULL);

	fp_aff_stats(t, &st);
	lookups = atomic_load(&r->lookups);
	misses = atomic_load(&r->misses);
	fprintf(stderr,
		"\n  race: %lu lookups (%lu churned hits), %lu misses, %lu wrong, %lu torn; %lu "
		"writes, %lu lost, %lu ghosts; %" PRIu64 " moves, %" PRIu64 " full, %" PRIu64
		" expiries ",
		lookups, atomic_load(&r->churn_hits), misses, atomic_load(&r->wrong),
		atomic_load(&r->torn), atomic_load(&r->writes), atomic_load(&r->lost),
		atomic_load(&r->ghosts), st.moves, st.full, st.expiries);
	CU_ASSERT(lookups > 10000);
	CU_ASSERT(atomic_load(&r->writes) > 10000);
	CU_ASSERT(atomic_load(&r->churn_hits) > 0);
	CU_ASSERT(st.moves > 0); // the race did exercise cuckoo moves
	CU_ASSERT_EQUAL(atomic_load(&r->wrong), 0);
	CU_ASSERT_EQUAL(atomic_load(&r->torn), 0);
	CU_ASSERT_EQUAL(atomic_load(&r->ghosts), 0);
	CU_ASSERT_EQUAL(atomic_load(&r->bad_rc), 0);
	// A miss of a stable key is only allowed when a slot stayed busy through
	// every retry (documented): essentially never, < 0.01 %.
	CU_ASSERT(misses * 10000 <= lookups);
	CU_ASSERT(atomic_load(&r->lost) * 10000 <= atomic_load(&r->writes));

	// Quiescent again: the counters add up and every entry is where it
	// should be.
	walked = walk_count(t);
	CU_ASSERT_EQUAL(st.count, walked);
	CU_ASSERT_EQUAL(st.count, st.inserts - st.deletes - st.expiries);
	for (uint32_t i = 0; i < STABLE; i++)
		found += fp_aff_lookup(t, &r->stable[i], &got, 0) &&
			 got.target == check_value(&r->stable[i]);
	CU_ASSERT_EQUAL(found, STABLE);
	for (uint32_t i = 0; i < COLLIDE + CHURN; i++) {
		bool hit = fp_aff_lookup(t, &r->churn[i], &got, 0);

		if (i / WRITERS % 2 == 0)
			owned_bad += hit != wa[i % WRITERS].present[i];
		if (hit && got.target != check_value(&r->churn[i]))
			owned_bad++;
	}
	CU_ASSERT_EQUAL(owned_bad, 0u);
	// Expiry takes every short-lived entry, and only those.
	expire_all(t, 5000);
	fp_aff_stats(t, &st);
	CU_ASSERT_EQUAL(st.count, walk_count(t));
	for (uint32_t i = 0; i < COLLIDE + CHURN; i++)
		if (i / WRITERS % 2 && fp_aff_lookup(t, &r->churn[i], &got, 0))
			owned_bad++;
	CU_ASSERT_EQUAL(owned_bad, 0u);
	for (unsigned i = 0; i < WRITERS; i++)
		free(wa[i].present);
	free(r);
	free(mem);
}

int main(void)
{
	static const struct fpt_case cases[] = {
		{ "arguments and sizing", test_arguments },
		{ "init over any content", test_init_any_content },
		{ "add, lookup, replace, mark, delete", test_basics },
		{ "peek: no refresh, every key found", test_peek },
		{ "every key byte counts", test_key_bytes },
		{ "bulk lookup", test_bulk },
		{ "fill 10 k, then past capacity", test_fill_10k },
		{ "fill 1 M, then past capacity", test_fill_1m },
		{ "fill 80 % of 2^20 slots, then past capacity", test_fill_80 },
		{ "fill small tables, many seeds", test_fill_small },
		{ "expiry, refresh, mark, clocks apart", test_expiry },
		{ "expiry across the clock wrap", test_expiry_wrap },
		{ "expiry cursor", test_expiry_cursor },
		{ "walk", test_walk },
		{ "readers racing writers", test_race },
	};

	return fpt_run("fp_aff", NULL, NULL, cases, ARRAY_SIZE(cases));
}
