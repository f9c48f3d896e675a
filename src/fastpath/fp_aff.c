/*
 * fp_aff.c - the lock-free affinity table (contract and design: fp_aff.h,
 * docs/fastpath.md "The affinity table").
 *
 * A slot is 32 bytes:
 *   0 seq      sequence word: even stable, odd while a writer holds the slot
 *   4 last_ms  last-seen time (also refreshed by readers, outside the seqlock)
 *   8 k0       key bytes 0..7  (src, dst)
 *  16 k1       key bytes 8..15 (sport, dport, proto, pad[0..1], state)
 *  24 val      struct fp_aff_val as one word (target, flags, ttl_s)
 * The key's last pad byte holds the slot state (STATE_LIVE), so comparing
 * k1 checks both the key and that the slot is live, and the value is one
 * 64-bit load. A bucket is 4 slots, 128 bytes; the first cache line holds
 * slots 0-1, which inserts fill first, so most entries sit in line 0.
 *
 * Memory model (C11, through the __atomic builtins; every field that races
 * is accessed atomically, relaxed unless stated):
 * - Writer: CAS seq even -> odd (acquire: see the previous writer's fields),
 *   then a release fence, so that a reader who sees any of the new field
 *   values also sees the odd seq after its own acquire fence (Boehm,
 *   "Can seqlocks get along with programming language memory models?",
 *   2012); field stores; release store of seq + 2.
 * - Reader: seq (acquire), fields, acquire fence, seq again; equal and even
 *   means the fields are one writer's complete work.
 * - Cuckoo moves: a mover counts itself in `moving` before the release fence
 *   that precedes its stores and counts `moved` when done; a miss is trusted
 *   only when the search ran with no move in progress or completed (see
 *   find()). Deletes and marks use the same check so they never miss a copy
 *   in flight.
 */
#include <errno.h>
#include <string.h>

#include "fp_aff.h"

#define FP_AFF_MAX_CAPACITY (1u << 30)
#define FP_AFF_REFRESH_MS 1000
#define FP_AFF_CLAIM_SPINS 1000000 /* a writer holds a slot for a few stores */
#define FP_AFF_WRITE_RETRIES 64    /* del/mark/replace passes when moves overlap */

/* The state byte is the key's pad[2] (byte 15), i.e. the top byte of k1 on
 * a little-endian machine and the bottom one on a big-endian machine. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define STATE_SHIFT 56
#else
#define STATE_SHIFT 0
#endif
#define STATE_MASK ((uint64_t)0xFF << STATE_SHIFT)
#define STATE_LIVE ((uint64_t)0xA5 << STATE_SHIFT) /* 0: empty */

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
/* The hit path is inlined whole into the lookups whatever the optimization
 * level's heuristics say; the rare paths are kept out of line. */
#define hot_inline static inline __attribute__((always_inline))

struct fp_aff_slot {
	uint32_t seq;
	uint32_t last_ms;
	uint64_t k0;
	uint64_t k1;
	uint64_t val;
};

_Static_assert(sizeof(struct fp_aff_slot) == 32, "slot must be 32 bytes");
_Static_assert(sizeof(struct fp_aff_key) == 16, "key must be 16 bytes");
_Static_assert(sizeof(struct fp_aff_val) == 8, "value must be one word");

/* 64-byte alignment is what fp_aff_init requires of mem; buckets start at a
 * 128-byte offset, so a page-aligned table keeps each bucket on an aligned
 * line pair (which the adjacent-line prefetcher fetches together). */
struct fp_aff_bucket {
	struct fp_aff_slot slot[FP_AFF_BUCKET_SLOTS];
} __attribute__((aligned(64)));

_Static_assert(sizeof(struct fp_aff_bucket) == 128, "bucket must be two cache lines");

/*
 * The header. Line 0: geometry, written once by fp_aff_init, read by every
 * lookup. Line 1: counters, written by every writer. Line 2: the cuckoo move
 * counters, read by every lookup and written only by movers (rare: both
 * buckets full), so they are apart from the counters that inserts dirty.
 */
struct fp_aff {
	uint64_t mask; /* buckets - 1; >= 1 */
	struct fp_aff_bucket *buckets;
	uint64_t capacity;
	uint64_t mem_bytes;
	uint64_t count __attribute__((aligned(64)));
	uint64_t inserts;
	uint64_t deletes;
	uint64_t expiries;
	uint64_t full;
	uint64_t moves;
	uint64_t moving __attribute__((aligned(64))); /* movers in progress */
	uint64_t moved;                               /* move attempts finished */
} __attribute__((aligned(64)));

#define HDR_BYTES ((sizeof(struct fp_aff) + 127) & ~(size_t)127)

/* ---- keys and hashing -------------------------------------------------------------- */

struct words {
	uint64_t k0, k1; /* k1 with the state byte set to STATE_LIVE */
};

static inline void key_words(const struct fp_aff_key *key, struct words *w)
{
	memcpy(&w->k0, key, 8);
	memcpy(&w->k1, (const uint8_t *)key + 8, 8);
	w->k1 = (w->k1 & ~STATE_MASK) | STATE_LIVE;
}

static inline bool k1_live(uint64_t k1)
{
	return (k1 & STATE_MASK) == STATE_LIVE;
}

/* Multiply-xorshift of both words (fmix64 style). The worker also selects
 * targets by this hash (fp_worker_dp.c), so changing it moves flows. */
static inline uint64_t mix(uint64_t k0, uint64_t k1)
{
	uint64_t h =
		k0 * 0x9E3779B97F4A7C15ULL ^ (k1 + 0x632BE59BD9B4E019ULL) * 0xC2B2AE3D27D4EB4FULL;

	h ^= h >> 29;
	h *= 0xBF58476D1CE4E5B9ULL;
	h ^= h >> 32;
	return h;
}

uint64_t fp_aff_hash(const struct fp_aff_key *key)
{
	struct words w;

	key_words(key, &w);
	return mix(w.k0, w.k1);
}

/* The two candidate buckets of hash h: b1 from the low bits, b2 = b1 xor an
 * odd number from the high bits, so b2 != b1 (mask >= 1 always). */
static inline uint64_t bucket1(const struct fp_aff *t, uint64_t h)
{
	return h & t->mask;
}

static inline uint64_t bucket2(const struct fp_aff *t, uint64_t h)
{
	return (h ^ ((h >> 32) | 1)) & t->mask;
}

static inline uint64_t val_word(const struct fp_aff_val *v)
{
	uint64_t x;

	memcpy(&x, v, 8);
	return x;
}

static inline void val_of(uint64_t x, struct fp_aff_val *v)
{
	memcpy(v, &x, 8);
}

/*
 * Milliseconds from last_ms to now_ms, wrap-safe. Signed: each worker reads
 * the clock once per loop, so a thread's now_ms may be a little behind a
 * last_ms another thread just wrote; that entry is idle 0, not 2^32 - 1 ms
 * (which would expire it at once). Idle times of 2^31 ms (24.8 days, above
 * any TTL, 18.2 h) and more read as negative: expiry runs long before.
 */
static inline int32_t idle_ms(uint32_t now_ms, uint32_t last_ms)
{
	return (int32_t)(now_ms - last_ms);
}

/* ---- sizing --------------------------------------------------------------------- */

static uint64_t buckets_for(uint32_t capacity)
{
	// capacity at <= 80 % of the slots
	uint64_t slots = ((uint64_t)capacity * 5 + 3) / 4;
	uint64_t need = (slots + FP_AFF_BUCKET_SLOTS - 1) / FP_AFF_BUCKET_SLOTS, b = 2;

	while (b < need)
		b <<= 1;
	return b;
}

size_t fp_aff_mem_size(uint32_t capacity)
{
	if (capacity == 0 || capacity > FP_AFF_MAX_CAPACITY)
		return 0;
	return HDR_BYTES + (size_t)buckets_for(capacity) * sizeof(struct fp_aff_bucket);
}

struct fp_aff *fp_aff_init(void *mem, size_t mem_len, uint32_t capacity)
{
	size_t need = fp_aff_mem_size(capacity);
	struct fp_aff *t = mem;

	if (!mem || need == 0 || mem_len < need || ((uintptr_t)mem & 63)) {
		errno = EINVAL;
		return NULL;
	}
	memset(mem, 0, need);
	t->mask = buckets_for(capacity) - 1;
	t->buckets = (struct fp_aff_bucket *)((uint8_t *)mem + HDR_BYTES);
	t->capacity = capacity;
	t->mem_bytes = need;
	return t;
}

/* ---- the seqlock ------------------------------------------------------------------ */

/* Claim s if its sequence is even; *seq gets the even value. */
static inline bool slot_claim(struct fp_aff_slot *s, uint32_t *seq)
{
	uint32_t cur = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);

	if (cur & 1)
		return false;
	if (!__atomic_compare_exchange_n(&s->seq, &cur, cur + 1, false, __ATOMIC_ACQUIRE,
					 __ATOMIC_RELAXED))
		return false;
	// Order the odd seq before our field stores for readers (see the top).
	__atomic_thread_fence(__ATOMIC_RELEASE);
	*seq = cur;
	return true;
}

static inline void slot_release(struct fp_aff_slot *s, uint32_t seq)
{
	__atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
}

/* Claim s, waiting (bounded) while another writer holds it. */
static bool slot_claim_wait(struct fp_aff_slot *s, uint32_t *seq)
{
	for (unsigned spins = 0; spins < FP_AFF_CLAIM_SPINS; spins++)
		if (slot_claim(s, seq))
			return true;
	return false;
}

static inline uint64_t ld64(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline uint32_t ld32(const uint32_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* A slot read under its seqlock. */
struct snap {
	uint64_t k0, k1, val;
	uint32_t last_ms;
};

/* A consistent copy of slot s; false if it kept moving for
 * FP_AFF_READ_RETRIES tries. */
static bool slot_read(const struct fp_aff_slot *s, struct snap *o)
{
	for (unsigned i = 0; i < FP_AFF_READ_RETRIES; i++) {
		uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);

		if (seq & 1)
			continue;
		o->k0 = ld64(&s->k0);
		o->k1 = ld64(&s->k1);
		o->val = ld64(&s->val);
		o->last_ms = ld32(&s->last_ms);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (ld32(&s->seq) == seq)
			return true;
	}
	return false;
}

/* ---- lookups ------------------------------------------------------------------------ */

/*
 * Slot s looked like it holds w (an unsynchronized filter): confirm under the
 * seqlock and take the value. False when it holds something else after all,
 * or (setting *busy) kept moving for FP_AFF_READ_RETRIES tries.
 */
hot_inline bool slot_confirm(struct fp_aff_slot *s, const struct words *w, struct fp_aff_val *v,
			     uint32_t now_ms, bool *busy)
{
	for (unsigned i = 0; i < FP_AFF_READ_RETRIES; i++) {
		uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);
		uint64_t k0, k1, x;

		if (unlikely(seq & 1))
			continue;
		k0 = ld64(&s->k0);
		k1 = ld64(&s->k1);
		x = ld64(&s->val);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (unlikely(ld32(&s->seq) != seq))
			continue;
		if (unlikely(k0 != w->k0 || k1 != w->k1))
			return false;
		val_of(x, v);
		// Benign race: this may land on a slot a writer just reused (it
		// then looks recently seen) or be overwritten by a writer; it
		// never touches the key or the value.
		if (unlikely(idle_ms(now_ms, ld32(&s->last_ms)) >= FP_AFF_REFRESH_MS))
			__atomic_store_n(&s->last_ms, now_ms, __ATOMIC_RELAXED);
		return true;
	}
	*busy = true;
	return false;
}

static inline bool slot_probe(struct fp_aff_slot *s, const struct words *w, struct fp_aff_val *v,
			      uint32_t now_ms, bool *busy)
{
	if (likely(ld64(&s->k0) != w->k0 || ld64(&s->k1) != w->k1))
		return false;
	return slot_confirm(s, w, v, now_ms, busy);
}

/* Search order of both buckets, first lines first: inserts fill slots 0-1
 * first, so a hit rarely needs a bucket's second line. */
#define PROBE_ORDER(X, a, b) X(a, 0) X(a, 1) X(b, 0) X(b, 1) X(a, 2) X(a, 3) X(b, 2) X(b, 3)

_Static_assert(FP_AFF_BUCKET_SLOTS == 4, "PROBE_ORDER is unrolled for 4 slots");

/* Every slot that holds w, each confirmed under its seqlock. */
static bool probe(struct fp_aff_bucket *a, struct fp_aff_bucket *b, const struct words *w,
		  struct fp_aff_val *v, uint32_t now_ms, bool *busy)
{
#define X(bk, i)                                          \
	if (slot_probe(&bk->slot[i], w, v, now_ms, busy)) \
		return true;
	PROBE_ORDER(X, a, b)
#undef X
	return false;
}

/* The hit path's filter: the first slot whose key words equal w, read
 * without synchronization (slot_confirm checks), or NULL. */
hot_inline struct fp_aff_slot *filter(struct fp_aff_bucket *a, struct fp_aff_bucket *b,
				      const struct words *w)
{
#define X(bk, i)                                                              \
	if (ld64(&bk->slot[i].k0) == w->k0 && ld64(&bk->slot[i].k1) == w->k1) \
		return &bk->slot[i];
	PROBE_ORDER(X, a, b)
#undef X
	return NULL;
}

/* A move-epoch snapshot: a search that misses is only trusted if no cuckoo
 * move was in progress or finished meanwhile. */
hot_inline uint64_t move_epoch(const struct fp_aff *t)
{
	return __atomic_load_n(&t->moved, __ATOMIC_ACQUIRE);
}

/*
 * True when no move overlapped a search that began at epoch e. The acquire
 * fence orders the search's relaxed slot reads before the `moving` load: a
 * reader who saw any store of a move sees that move's `moving` increment
 * (made before the mover's release fence) or later values; reading `moving`
 * back at 0 then (acquire, release decrement) shows the `moved` increment.
 */
hot_inline bool move_quiet(const struct fp_aff *t, uint64_t e)
{
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	return __atomic_load_n(&t->moving, __ATOMIC_ACQUIRE) == 0 &&
	       __atomic_load_n(&t->moved, __ATOMIC_RELAXED) == e;
}

/*
 * The fast search was inconclusive: a filtered slot failed its check, a move
 * overlapped, or a slot stayed busy. Search slot by slot, up to
 * FP_AFF_READ_RETRIES times, then report a miss (the packet goes the slow
 * way, which is correct).
 */
static __attribute__((noinline)) bool find_slow(struct fp_aff *t, const struct words *w,
						struct fp_aff_bucket *a, struct fp_aff_bucket *b,
						struct fp_aff_val *v, uint32_t now_ms)
{
	for (unsigned attempt = 0; attempt < FP_AFF_READ_RETRIES; attempt++) {
		uint64_t e = move_epoch(t);
		bool busy = false;

		if (probe(a, b, w, v, now_ms, &busy))
			return true;
		if (!busy && move_quiet(t, e))
			return false;
	}
	return false;
}

/* The hit path: filter, then one seqlock read; anything unusual goes to
 * find_slow. */
hot_inline bool find(struct fp_aff *t, const struct words *w, struct fp_aff_bucket *a,
		     struct fp_aff_bucket *b, struct fp_aff_val *v, uint32_t now_ms)
{
	uint64_t e = move_epoch(t);
	struct fp_aff_slot *s = filter(a, b, w);
	bool busy = false;

	if (likely(s != NULL)) {
		if (likely(slot_confirm(s, w, v, now_ms, &busy)))
			return true;
	} else if (likely(move_quiet(t, e))) {
		return false; // a true miss
	}
	return find_slow(t, w, a, b, v, now_ms);
}

bool fp_aff_lookup(struct fp_aff *t, const struct fp_aff_key *key, struct fp_aff_val *val,
		   uint32_t now_ms)
{
	struct words w;
	uint64_t h;

	key_words(key, &w);
	h = mix(w.k0, w.k1);
	return find(t, &w, &t->buckets[bucket1(t, h)], &t->buckets[bucket2(t, h)], val, now_ms);
}

uint64_t fp_aff_lookup_bulk(struct fp_aff *t, const struct fp_aff_key *keys, unsigned n,
			    struct fp_aff_val *vals, uint32_t now_ms)
{
	struct fp_aff_bucket *const bk = t->buckets, *a[FP_AFF_LOOKUP_MAX], *b[FP_AFF_LOOKUP_MAX];
	const uint64_t mask = t->mask;
	struct words w[FP_AFF_LOOKUP_MAX];
	uint64_t hits = 0;

	if (n > FP_AFF_LOOKUP_MAX)
		n = FP_AFF_LOOKUP_MAX;
	// Hash everything and start fetching both buckets, both lines each, then
	// resolve: the cache misses of a burst overlap instead of queueing.
	// (Fetching first lines only was 20 % slower on 1 M entries: buckets
	// hold more than two entries often enough.)
	for (unsigned i = 0; i < n; i++) {
		uint64_t h;

		key_words(&keys[i], &w[i]);
		h = mix(w[i].k0, w[i].k1);
		a[i] = &bk[h & mask];
		b[i] = &bk[(h ^ ((h >> 32) | 1)) & mask]; // bucket2()
		__builtin_prefetch(&a[i]->slot[0]);
		__builtin_prefetch(&b[i]->slot[0]);
		__builtin_prefetch(&a[i]->slot[2]);
		__builtin_prefetch(&b[i]->slot[2]);
	}
	for (unsigned i = 0; i < n; i++)
		if (find(t, &w[i], a[i], b[i], &vals[i], now_ms))
			hits |= 1ULL << i;
	return hits;
}

/* Like find, but every slot is read whole under its seqlock and nothing is
 * written: the slow path's shape, which is fine for control. */
bool fp_aff_peek(const struct fp_aff *t, const struct fp_aff_key *key, struct fp_aff_val *val,
		 uint32_t *last_ms)
{
	const struct fp_aff_bucket *bk[2];
	struct words w;
	uint64_t h;

	key_words(key, &w);
	h = mix(w.k0, w.k1);
	bk[0] = &t->buckets[bucket1(t, h)];
	bk[1] = &t->buckets[bucket2(t, h)];
	for (unsigned attempt = 0; attempt < FP_AFF_READ_RETRIES; attempt++) {
		uint64_t e = move_epoch(t);
		bool busy = false;

		for (unsigned i = 0; i < 2 * FP_AFF_BUCKET_SLOTS; i++) {
			struct snap o;

			if (!slot_read(&bk[i / FP_AFF_BUCKET_SLOTS]->slot[i % FP_AFF_BUCKET_SLOTS],
				       &o)) {
				busy = true;
				continue;
			}
			if (o.k0 == w.k0 && o.k1 == w.k1) {
				val_of(o.val, val);
				*last_ms = o.last_ms;
				return true;
			}
		}
		if (!busy && move_quiet(t, e))
			return false;
	}
	return false;
}

/* ---- writers -------------------------------------------------------------------------- */

static inline void count_add(uint64_t *c, int64_t d)
{
	__atomic_fetch_add(c, (uint64_t)d, __ATOMIC_RELAXED);
}

/* Field stores into a claimed slot. */
static void slot_fill(struct fp_aff_slot *s, uint64_t k0, uint64_t k1, uint64_t val,
		      uint32_t last_ms)
{
	__atomic_store_n(&s->k0, k0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->k1, k1, __ATOMIC_RELAXED);
	__atomic_store_n(&s->val, val, __ATOMIC_RELAXED);
	__atomic_store_n(&s->last_ms, last_ms, __ATOMIC_RELAXED);
}

static void slot_clear(struct fp_aff_slot *s)
{
	__atomic_store_n(&s->k0, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->k1, 0, __ATOMIC_RELAXED);
}

static inline bool slot_holds(const struct fp_aff_slot *s, const struct words *w)
{
	return ld64(&s->k0) == w->k0 && ld64(&s->k1) == w->k1;
}

typedef void (*slot_fn)(struct fp_aff *t, struct fp_aff_slot *s, const void *arg);

/* One pass over both buckets: fn on every slot holding w, each claimed and
 * re-checked. Returns the slots handled. */
static unsigned match_pass(struct fp_aff *t, const struct words *w, const uint64_t b[2], slot_fn fn,
			   const void *arg)
{
	unsigned done = 0;

	for (unsigned j = 0; j < 2; j++) {
		for (unsigned i = 0; i < FP_AFF_BUCKET_SLOTS; i++) {
			struct fp_aff_slot *s = &t->buckets[b[j]].slot[i];
			uint32_t seq;

			if (!slot_holds(s, w) || !slot_claim_wait(s, &seq))
				continue;
			if (slot_holds(s, w)) {
				fn(t, s, arg);
				done++;
			}
			slot_release(s, seq);
		}
	}
	return done;
}

/*
 * Apply fn to every copy of w (there may be two after racing inserts). fn
 * must be idempotent: a pass that overlapped a cuckoo move is repeated, as
 * a copy may have moved from a bucket not yet searched to one already done.
 */
static unsigned for_each_match(struct fp_aff *t, const struct words *w, slot_fn fn, const void *arg)
{
	uint64_t h = mix(w->k0, w->k1), b[2] = { bucket1(t, h), bucket2(t, h) };
	unsigned done = 0;

	for (unsigned pass = 0; pass < FP_AFF_WRITE_RETRIES; pass++) {
		uint64_t e = move_epoch(t);

		done += match_pass(t, w, b, fn, arg);
		if (move_quiet(t, e))
			break;
	}
	return done;
}

struct replace_arg {
	uint64_t val;
	uint32_t now_ms;
};

static void do_replace(struct fp_aff *t, struct fp_aff_slot *s, const void *arg)
{
	const struct replace_arg *a = arg;

	(void)t;
	__atomic_store_n(&s->val, a->val, __ATOMIC_RELAXED);
	__atomic_store_n(&s->last_ms, a->now_ms, __ATOMIC_RELAXED);
}

static unsigned bucket_live(const struct fp_aff_bucket *b)
{
	unsigned n = 0;

	for (unsigned i = 0; i < FP_AFF_BUCKET_SLOTS; i++)
		n += k1_live(ld64(&b->slot[i].k1));
	return n;
}

/* Take an empty slot of bucket b (lowest first) for w; true on success. */
static bool bucket_insert(struct fp_aff *t, struct fp_aff_bucket *b, const struct words *w,
			  uint64_t val, uint32_t now_ms)
{
	for (unsigned i = 0; i < FP_AFF_BUCKET_SLOTS; i++) {
		struct fp_aff_slot *s = &b->slot[i];
		uint32_t seq;

		if (k1_live(ld64(&s->k1)) || !slot_claim(s, &seq))
			continue;
		if (k1_live(ld64(&s->k1))) {
			slot_release(s, seq); // taken meanwhile
			continue;
		}
		slot_fill(s, w->k0, w->k1, val, now_ms);
		slot_release(s, seq);
		count_add(&t->count, 1);
		count_add(&t->inserts, 1);
		return true;
	}
	return false;
}

/* ---- cuckoo moves: making room in two full buckets ------------------------------ */

/* Up to 8 random walks of up to 8 hops: the first insert to fail comes at
 * 90-92 % of the slots (87 % with 4 walks; 94 % with 16 hops, but a failed
 * insert into a full table, say in a SYN flood, would read twice as many
 * slots). */
#define FP_AFF_CUCKOO_DEPTH 8
#define FP_AFF_CUCKOO_TRIES 8

struct hop {
	uint64_t bucket;
	unsigned slot;
	uint64_t k0, k1; /* the entry seen there when the path was planned */
};

/* The other candidate bucket of the entry (k0, k1) that lives in bucket b. */
static uint64_t alt_bucket(const struct fp_aff *t, uint64_t k0, uint64_t k1, uint64_t b)
{
	uint64_t h = mix(k0, k1), b1 = bucket1(t, h);

	return b == b1 ? bucket2(t, h) : b1;
}

static int empty_slot(const struct fp_aff_bucket *b)
{
	for (unsigned i = 0; i < FP_AFF_BUCKET_SLOTS; i++)
		if (!k1_live(ld64(&b->slot[i].k1)))
			return (int)i;
	return -1;
}

/*
 * Move the entry planned at *from into the empty slot `to` of bucket to_b.
 * Both slots are claimed (without waiting, so two movers cannot deadlock);
 * the move is abandoned (false) if either changed since it was planned.
 */
static bool move_entry(struct fp_aff *t, const struct hop *from, uint64_t to_b, unsigned to)
{
	struct fp_aff_slot *src = &t->buckets[from->bucket].slot[from->slot];
	struct fp_aff_slot *dst = &t->buckets[to_b].slot[to];
	uint32_t sseq, dseq;
	bool ok = false;

	if (!slot_claim(dst, &dseq))
		return false;
	if (!slot_claim(src, &sseq)) {
		slot_release(dst, dseq);
		return false;
	}
	__atomic_fetch_add(&t->moving, 1, __ATOMIC_RELAXED);
	// A reader that sees any store below sees `moving` raised (move_quiet).
	__atomic_thread_fence(__ATOMIC_RELEASE);
	if (!k1_live(ld64(&dst->k1)) && ld64(&src->k0) == from->k0 && ld64(&src->k1) == from->k1) {
		// The copy lands before the original goes: never absent.
		slot_fill(dst, from->k0, from->k1, ld64(&src->val), ld32(&src->last_ms));
		slot_release(dst, dseq);
		slot_clear(src);
		slot_release(src, sseq);
		ok = true;
	} else {
		slot_release(dst, dseq);
		slot_release(src, sseq);
	}
	__atomic_fetch_add(&t->moved, 1, __ATOMIC_RELEASE);
	__atomic_fetch_sub(&t->moving, 1, __ATOMIC_RELEASE);
	if (ok)
		count_add(&t->moves, 1);
	return ok;
}

/* Plan a random path of displacements from bucket b to a bucket with an
 * empty slot; returns its length (0: none found). */
static unsigned plan_path(struct fp_aff *t, uint64_t b, uint64_t *rng, struct hop *path,
			  uint64_t *end_b, unsigned *end_slot)
{
	for (unsigned d = 0; d < FP_AFF_CUCKOO_DEPTH; d++) {
		struct fp_aff_slot *s;
		struct snap o;
		uint64_t alt;
		int free_slot;

		*rng ^= *rng << 13;
		*rng ^= *rng >> 7;
		*rng ^= *rng << 17;
		path[d].bucket = b;
		path[d].slot = (unsigned)(*rng % FP_AFF_BUCKET_SLOTS);
		s = &t->buckets[b].slot[path[d].slot];
		if (!slot_read(s, &o) || !k1_live(o.k1))
			return 0; // changing under us: let the caller retry
		path[d].k0 = o.k0;
		path[d].k1 = o.k1;
		alt = alt_bucket(t, o.k0, o.k1, b);
		free_slot = empty_slot(&t->buckets[alt]);
		if (free_slot >= 0) {
			*end_b = alt;
			*end_slot = (unsigned)free_slot;
			return d + 1;
		}
		b = alt;
	}
	return 0;
}

/* Free a slot in bucket b1 or b2 by moving entries to their other buckets,
 * last hop first, so every entry always has a home. A path that crosses
 * itself fails a move's re-check and is abandoned with every entry in a
 * valid bucket. */
static bool make_room(struct fp_aff *t, uint64_t b1, uint64_t b2, uint64_t h)
{
	uint64_t rng = h | 1;

	for (unsigned tries = 0; tries < FP_AFF_CUCKOO_TRIES; tries++) {
		struct hop path[FP_AFF_CUCKOO_DEPTH];
		uint64_t to_b;
		unsigned to, n, i;

		n = plan_path(t, (tries & 1) ? b2 : b1, &rng, path, &to_b, &to);
		if (n == 0)
			continue;
		for (i = n; i-- > 0;) {
			if (!move_entry(t, &path[i], to_b, to))
				break;
			to_b = path[i].bucket;
			to = path[i].slot;
		}
		if (i == (unsigned)-1)
			return true;
	}
	return false;
}

int fp_aff_add(struct fp_aff *t, const struct fp_aff_key *key, const struct fp_aff_val *val,
	       uint32_t now_ms, bool replace)
{
	struct fp_aff_bucket *first, *second;
	struct replace_arg ra = { val_word(val), now_ms };
	struct fp_aff_val old;
	struct words w;
	uint64_t h, b1, b2;

	key_words(key, &w);
	h = mix(w.k0, w.k1);
	b1 = bucket1(t, h);
	b2 = bucket2(t, h);
	if (find(t, &w, &t->buckets[b1], &t->buckets[b2], &old, now_ms)) {
		if (!replace)
			return -EEXIST;
		if (for_each_match(t, &w, do_replace, &ra) > 0)
			return 0;
		// deleted meanwhile: insert it afresh
	}
	first = &t->buckets[b1];
	second = &t->buckets[b2];
	if (bucket_live(second) < bucket_live(first)) {
		first = second;
		second = &t->buckets[b1];
	}
	if (bucket_insert(t, first, &w, ra.val, now_ms) ||
	    bucket_insert(t, second, &w, ra.val, now_ms))
		return 0;
	if (make_room(t, b1, b2, h) && (bucket_insert(t, &t->buckets[b1], &w, ra.val, now_ms) ||
					bucket_insert(t, &t->buckets[b2], &w, ra.val, now_ms)))
		return 0;
	count_add(&t->full, 1);
	return -ENOSPC;
}

static void do_delete(struct fp_aff *t, struct fp_aff_slot *s, const void *arg)
{
	(void)arg;
	slot_clear(s);
	count_add(&t->count, -1);
	count_add(&t->deletes, 1);
}

int fp_aff_del(struct fp_aff *t, const struct fp_aff_key *key)
{
	struct words w;

	key_words(key, &w);
	return for_each_match(t, &w, do_delete, NULL) ? 0 : -ENOENT;
}

struct mark_arg {
	uint16_t set, ttl_s;
};

static void do_mark(struct fp_aff *t, struct fp_aff_slot *s, const void *arg)
{
	const struct mark_arg *m = arg;
	struct fp_aff_val v;

	(void)t;
	val_of(ld64(&s->val), &v);
	v.flags |= m->set;
	v.ttl_s = m->ttl_s;
	__atomic_store_n(&s->val, val_word(&v), __ATOMIC_RELAXED);
}

int fp_aff_mark(struct fp_aff *t, const struct fp_aff_key *key, uint16_t set, uint16_t ttl_s)
{
	struct mark_arg m = { set, ttl_s };
	struct words w;

	key_words(key, &w);
	return for_each_match(t, &w, do_mark, &m) ? 0 : -ENOENT;
}

/* ---- expiry and walks ---------------------------------------------------------------------- */

/* Idle longer than the TTL (idle_ms()). */
static inline bool slot_expired(const struct fp_aff_slot *s, uint32_t now_ms)
{
	struct fp_aff_val v;

	val_of(ld64(&s->val), &v);
	return k1_live(ld64(&s->k1)) &&
	       idle_ms(now_ms, ld32(&s->last_ms)) > (int32_t)v.ttl_s * 1000;
}

static bool slot_expire(struct fp_aff *t, struct fp_aff_slot *s, uint32_t now_ms)
{
	uint32_t seq;
	bool gone = false;

	if (!slot_expired(s, now_ms) || !slot_claim(s, &seq))
		return false; // alive, or busy: next round
	if (slot_expired(s, now_ms)) {
		slot_clear(s);
		count_add(&t->count, -1);
		count_add(&t->expiries, 1);
		gone = true;
	}
	slot_release(s, seq);
	return gone;
}

unsigned fp_aff_expire(struct fp_aff *t, uint64_t *cursor, unsigned nbuckets, uint32_t now_ms)
{
	uint64_t b = *cursor & t->mask;
	unsigned gone = 0;

	for (unsigned n = 0; n < nbuckets; n++) {
		for (unsigned i = 0; i < FP_AFF_BUCKET_SLOTS; i++)
			gone += slot_expire(t, &t->buckets[b].slot[i], now_ms);
		b = (b + 1) & t->mask;
		if (b == 0)
			break; // a full pass ends at the end of the table
	}
	*cursor = b;
	return gone;
}

static void view_of(const struct snap *o, struct fp_aff_entry_view *e)
{
	uint64_t k1 = o->k1 & ~STATE_MASK;

	memcpy(&e->key, &o->k0, 8);
	memcpy((uint8_t *)&e->key + 8, &k1, 8);
	val_of(o->val, &e->val);
	e->last_ms = o->last_ms;
}

unsigned fp_aff_walk(struct fp_aff *t, uint64_t *cursor, unsigned max,
		     int (*fn)(const struct fp_aff_entry_view *e, void *arg), void *arg)
{
	uint64_t slots = (t->mask + 1) * FP_AFF_BUCKET_SLOTS, i = *cursor;
	unsigned seen = 0;

	for (; i < slots && seen < max; i++) {
		const struct fp_aff_slot *s =
			&t->buckets[i / FP_AFF_BUCKET_SLOTS].slot[i % FP_AFF_BUCKET_SLOTS];
		struct fp_aff_entry_view e;
		struct snap o;

		if (!slot_read(s, &o) || !k1_live(o.k1))
			continue;
		view_of(&o, &e);
		seen++;
		if (fn(&e, arg)) {
			i++;
			break;
		}
	}
	*cursor = i < slots ? i : 0;
	return seen;
}

void fp_aff_stats(const struct fp_aff *t, struct fp_aff_stats *s)
{
	s->count = __atomic_load_n(&t->count, __ATOMIC_RELAXED);
	s->capacity = t->capacity;
	s->slots = (t->mask + 1) * FP_AFF_BUCKET_SLOTS;
	s->inserts = __atomic_load_n(&t->inserts, __ATOMIC_RELAXED);
	s->deletes = __atomic_load_n(&t->deletes, __ATOMIC_RELAXED);
	s->expiries = __atomic_load_n(&t->expiries, __ATOMIC_RELAXED);
	s->full = __atomic_load_n(&t->full, __ATOMIC_RELAXED);
	s->moves = __atomic_load_n(&t->moves, __ATOMIC_RELAXED);
	s->mem_bytes = t->mem_bytes;
}
