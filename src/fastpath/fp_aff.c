/*
 * fp_aff.c - the lock-free affinity table (contract and design: fp_aff.h).
 *
 * A slot is 32 bytes:
 *   0 seq     sequence word: even stable, odd while a writer holds the slot
 *   4 flags   FP_AFF_F_*
 *   6 ttl_s   idle TTL
 *   8 k0      key bytes 0..7  (src, dst)
 *  16 k1      key bytes 8..15 (sport, dport, proto, pad[0..1], state)
 *  24 target
 *  28 last_ms
 * The key's last pad byte holds the slot state (FP_AFF_LIVE), so one
 * comparison of k1 checks both the key and that the slot is live.
 *
 * Fields that race are read and written with relaxed atomics; the seqlock
 * (acquire load of seq, reads, acquire fence, re-read of seq) makes a
 * reader's view consistent, and writers publish with a release store.
 */
#include <errno.h>
#include <string.h>

#include "fp_aff.h"

#define FP_AFF_LIVE 0xA5    /* state byte of a live slot; 0 = empty */
#define FP_AFF_STATE_BYTE 7 /* within k1 */
#define FP_AFF_MAX_CAPACITY (1u << 30)
#define FP_AFF_REFRESH_MS 1000

struct fp_aff_slot {
	uint32_t seq;
	uint16_t flags;
	uint16_t ttl_s;
	uint64_t k0;
	uint64_t k1;
	uint32_t target;
	uint32_t last_ms;
};

_Static_assert(sizeof(struct fp_aff_slot) == 32, "slot must be 32 bytes");
_Static_assert(sizeof(struct fp_aff_key) == 16, "key must be 16 bytes");

struct fp_aff_bucket {
	struct fp_aff_slot slot[FP_AFF_BUCKET_SLOTS];
} __attribute__((aligned(128)));

/* The header: read-mostly geometry on the first cache line, counters on
 * their own lines so that writers do not evict the readers' geometry. */
struct fp_aff {
	uint64_t mask; /* buckets - 1 */
	struct fp_aff_bucket *buckets;
	uint64_t capacity;
	uint64_t mem_bytes;
	uint8_t pad0[32];
	uint64_t count __attribute__((aligned(64)));
	uint64_t inserts;
	uint64_t deletes;
	uint64_t expiries;
	uint64_t full;
	uint64_t moves;
	/* Cuckoo moves (insert into two full buckets): movers in progress and
	 * moves completed. A reader's miss is only trusted when neither changed
	 * during its search, because an entry in flight between its two
	 * buckets can be missed by a reader that looks at both. */
	uint64_t moving __attribute__((aligned(64)));
	uint64_t moved;
} __attribute__((aligned(64)));

#define HDR_BYTES ((sizeof(struct fp_aff) + 127) & ~(size_t)127)

/* ---- keys ---------------------------------------------------------------------- */

struct words {
	uint64_t k0, k1; /* k1 with the state byte set to FP_AFF_LIVE */
};

static inline void key_words(const struct fp_aff_key *key, struct words *w)
{
	uint8_t b[16];

	memcpy(b, key, 16);
	b[8 + FP_AFF_STATE_BYTE] = FP_AFF_LIVE;
	memcpy(&w->k0, b, 8);
	memcpy(&w->k1, b + 8, 8);
}

static inline bool k1_live(uint64_t k1)
{
	uint8_t b[8];

	memcpy(b, &k1, 8);
	return b[FP_AFF_STATE_BYTE] == FP_AFF_LIVE;
}

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

/* The two candidate buckets of hash h; different when there are two. */
static inline void buckets_of(const struct fp_aff *t, uint64_t h, uint64_t *b1, uint64_t *b2)
{
	*b1 = h & t->mask;
	*b2 = (*b1 ^ (((h >> 32) & t->mask) | 1)) & t->mask;
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

/* Claim s if its sequence is even and unchanged from *seq; true on success. */
static inline bool slot_claim(struct fp_aff_slot *s, uint32_t *seq)
{
	uint32_t cur = __atomic_load_n(&s->seq, __ATOMIC_RELAXED);

	if (cur & 1)
		return false;
	*seq = cur;
	return __atomic_compare_exchange_n(&s->seq, &cur, cur + 1, false, __ATOMIC_ACQUIRE,
					   __ATOMIC_RELAXED);
}

static inline void slot_release(struct fp_aff_slot *s, uint32_t seq)
{
	__atomic_store_n(&s->seq, seq + 2, __ATOMIC_RELEASE);
}

/* A consistent copy of slot s (seqlock read). Returns false if the slot
 * kept moving for FP_AFF_READ_RETRIES tries. */
struct snap {
	uint64_t k0, k1;
	uint32_t target, last_ms;
	uint16_t flags, ttl_s;
};

static inline bool slot_read(const struct fp_aff_slot *s, struct snap *o)
{
	for (unsigned i = 0; i < FP_AFF_READ_RETRIES; i++) {
		uint32_t seq = __atomic_load_n(&s->seq, __ATOMIC_ACQUIRE);

		if (seq & 1)
			continue;
		o->k0 = __atomic_load_n(&s->k0, __ATOMIC_RELAXED);
		o->k1 = __atomic_load_n(&s->k1, __ATOMIC_RELAXED);
		o->target = __atomic_load_n(&s->target, __ATOMIC_RELAXED);
		o->last_ms = __atomic_load_n(&s->last_ms, __ATOMIC_RELAXED);
		o->flags = __atomic_load_n(&s->flags, __ATOMIC_RELAXED);
		o->ttl_s = __atomic_load_n(&s->ttl_s, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&s->seq, __ATOMIC_RELAXED) == seq)
			return true;
	}
	return false;
}

/* ---- lookups ------------------------------------------------------------------------ */

/*
 * Search one bucket for w. 1: hit (*v filled), 0: not there, -1: a slot
 * that might hold it kept moving (report a miss: the packet goes the slow
 * way, which is correct).
 */
static inline int bucket_find(struct fp_aff_bucket *b, const struct words *w, struct fp_aff_val *v,
			      uint32_t now_ms)
{
	int unsure = 0;

	for (unsigned i = 0; i < FP_AFF_BUCKET_SLOTS; i++) {
		struct fp_aff_slot *s = &b->slot[i];
		struct snap o;

		// Cheap filter first: most slots hold another key.
		if (__atomic_load_n(&s->k0, __ATOMIC_RELAXED) != w->k0)
			continue;
		if (!slot_read(s, &o)) {
			unsure = -1;
			continue;
		}
		if (o.k0 != w->k0 || o.k1 != w->k1)
			continue;
		v->target = o.target;
		v->flags = o.flags;
		v->ttl_s = o.ttl_s;
		if (now_ms - o.last_ms >= FP_AFF_REFRESH_MS)
			__atomic_store_n(&s->last_ms, now_ms, __ATOMIC_RELAXED);
		return 1;
	}
	return unsure;
}

static inline bool find(struct fp_aff *t, const struct words *w, uint64_t h, struct fp_aff_val *v,
			uint32_t now_ms)
{
	uint64_t b1, b2;

	buckets_of(t, h, &b1, &b2);
	for (unsigned attempt = 0; attempt < FP_AFF_READ_RETRIES; attempt++) {
		uint64_t epoch = __atomic_load_n(&t->moved, __ATOMIC_ACQUIRE);

		if (bucket_find(&t->buckets[b1], w, v, now_ms) == 1)
			return true;
		if (b2 != b1 && bucket_find(&t->buckets[b2], w, v, now_ms) == 1)
			return true;
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (__atomic_load_n(&t->moving, __ATOMIC_RELAXED) == 0 &&
		    __atomic_load_n(&t->moved, __ATOMIC_RELAXED) == epoch)
			return false; // a true miss: no entry moved meanwhile
	}
	return false;
}

bool fp_aff_lookup(struct fp_aff *t, const struct fp_aff_key *key, struct fp_aff_val *val,
		   uint32_t now_ms)
{
	struct words w;

	key_words(key, &w);
	return find(t, &w, mix(w.k0, w.k1), val, now_ms);
}

uint64_t fp_aff_lookup_bulk(struct fp_aff *t, const struct fp_aff_key *keys, unsigned n,
			    struct fp_aff_val *vals, uint32_t now_ms)
{
	struct words w[FP_AFF_LOOKUP_MAX];
	uint64_t h[FP_AFF_LOOKUP_MAX], hits = 0;

	if (n > FP_AFF_LOOKUP_MAX)
		n = FP_AFF_LOOKUP_MAX;
	// Hash everything and start every bucket's memory fetch, then resolve:
	// the cache misses of a burst overlap instead of queueing.
	for (unsigned i = 0; i < n; i++) {
		uint64_t b1, b2;

		key_words(&keys[i], &w[i]);
		h[i] = mix(w[i].k0, w[i].k1);
		buckets_of(t, h[i], &b1, &b2);
		__builtin_prefetch(&t->buckets[b1]);
		__builtin_prefetch(&t->buckets[b2]);
	}
	for (unsigned i = 0; i < n; i++)
		if (find(t, &w[i], h[i], &vals[i], now_ms))
			hits |= 1ULL << i;
	return hits;
}

/* ---- writers -------------------------------------------------------------------------- */

static inline void count_add(uint64_t *c, int64_t d)
{
	__atomic_fetch_add(c, (uint64_t)d, __ATOMIC_RELAXED);
}

/* Write key and value into a claimed slot. */
static void slot_fill(struct fp_aff_slot *s, const struct words *w, const struct fp_aff_val *v,
		      uint32_t now_ms)
{
	__atomic_store_n(&s->k0, w->k0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->k1, w->k1, __ATOMIC_RELAXED);
	__atomic_store_n(&s->target, v->target, __ATOMIC_RELAXED);
	__atomic_store_n(&s->flags, v->flags, __ATOMIC_RELAXED);
	__atomic_store_n(&s->ttl_s, v->ttl_s, __ATOMIC_RELAXED);
	__atomic_store_n(&s->last_ms, now_ms, __ATOMIC_RELAXED);
}

static void slot_clear(struct fp_aff_slot *s)
{
	__atomic_store_n(&s->k0, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&s->k1, 0, __ATOMIC_RELAXED);
}

static inline bool slot_matches(const struct fp_aff_slot *s, const struct words *w)
{
	return __atomic_load_n(&s->k0, __ATOMIC_RELAXED) == w->k0 &&
	       __atomic_load_n(&s->k1, __ATOMIC_RELAXED) == w->k1;
}

/*
 * Apply fn to every slot of both buckets holding w, each claimed. fn
 * returns nothing; the count of slots handled is returned.
 */
typedef void (*slot_fn)(struct fp_aff *t, struct fp_aff_slot *s, const void *arg);

static unsigned for_each_match(struct fp_aff *t, const struct words *w, slot_fn fn, const void *arg)
{
	uint64_t b[2];
	unsigned done = 0;

	buckets_of(t, mix(w->k0, w->k1), &b[0], &b[1]);
	for (unsigned j = 0; j < (b[0] == b[1] ? 1u : 2u); j++) {
		for (unsigned i = 0; i < FP_AFF_BUCKET_SLOTS; i++) {
			struct fp_aff_slot *s = &t->buckets[b[j]].slot[i];
			uint32_t seq;
			unsigned spins = 0;

			if (!slot_matches(s, w))
				continue;
			// Another writer holds it for a few stores: wait, bounded.
			while (!slot_claim(s, &seq) && ++spins < 1000000)
				;
			if (spins == 1000000)
				continue;
			if (slot_matches(s, w)) {
				fn(t, s, arg);
				done++;
			}
			slot_release(s, seq);
		}
	}
	return done;
}

struct replace_arg {
	const struct fp_aff_val *v;
	uint32_t now_ms;
};

static void do_replace(struct fp_aff *t, struct fp_aff_slot *s, const void *arg)
{
	const struct replace_arg *a = arg;

	(void)t;
	__atomic_store_n(&s->target, a->v->target, __ATOMIC_RELAXED);
	__atomic_store_n(&s->flags, a->v->flags, __ATOMIC_RELAXED);
	__atomic_store_n(&s->ttl_s, a->v->ttl_s, __ATOMIC_RELAXED);
	__atomic_store_n(&s->last_ms, a->now_ms, __ATOMIC_RELAXED);
}

static unsigned bucket_live(const struct fp_aff_bucket *b)
{
	unsigned n = 0;

	for (unsigned i = 0; i < FP_AFF_BUCKET_SLOTS; i++)
		n += k1_live(__atomic_load_n(&b->slot[i].k1, __ATOMIC_RELAXED));
	return n;
}

/* Take an empty slot of bucket b for w; true on success. */
static bool bucket_insert(struct fp_aff *t, struct fp_aff_bucket *b, const struct words *w,
			  const struct fp_aff_val *v, uint32_t now_ms)
{
	for (unsigned i = 0; i < FP_AFF_BUCKET_SLOTS; i++) {
		struct fp_aff_slot *s = &b->slot[i];
		uint32_t seq;

		if (k1_live(__atomic_load_n(&s->k1, __ATOMIC_RELAXED)) || !slot_claim(s, &seq))
			continue;
		if (k1_live(__atomic_load_n(&s->k1, __ATOMIC_RELAXED))) {
			slot_release(s, seq); // taken meanwhile
			continue;
		}
		slot_fill(s, w, v, now_ms);
		slot_release(s, seq);
		count_add(&t->count, 1);
		count_add(&t->inserts, 1);
		return true;
	}
	return false;
}

/* ---- cuckoo moves: making room in two full buckets ------------------------------ */

#define FP_AFF_CUCKOO_DEPTH 8
#define FP_AFF_CUCKOO_TRIES 4

struct hop {
	uint64_t bucket;
	unsigned slot;
	uint64_t k0, k1; /* the entry seen there when the path was planned */
};

/* The other candidate bucket of the entry (k0, k1) that lives in bucket b. */
static uint64_t alt_bucket(const struct fp_aff *t, uint64_t k0, uint64_t k1, uint64_t b)
{
	uint64_t b1, b2;

	buckets_of(t, mix(k0, k1), &b1, &b2);
	return b == b1 ? b2 : b1;
}

static int empty_slot(const struct fp_aff_bucket *b)
{
	for (unsigned i = 0; i < FP_AFF_BUCKET_SLOTS; i++)
		if (!k1_live(__atomic_load_n(&b->slot[i].k1, __ATOMIC_RELAXED)))
			return (int)i;
	return -1;
}

/*
 * Move the entry planned at *from into the empty slot `to` of bucket
 * to_b. Both slots are claimed; the move is abandoned (false) if either
 * changed since it was planned.
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
	__atomic_fetch_add(&t->moving, 1, __ATOMIC_SEQ_CST);
	if (!k1_live(__atomic_load_n(&dst->k1, __ATOMIC_RELAXED)) &&
	    __atomic_load_n(&src->k0, __ATOMIC_RELAXED) == from->k0 &&
	    __atomic_load_n(&src->k1, __ATOMIC_RELAXED) == from->k1) {
		struct words w = { from->k0, from->k1 };
		struct fp_aff_val v = {
			.target = __atomic_load_n(&src->target, __ATOMIC_RELAXED),
			.flags = __atomic_load_n(&src->flags, __ATOMIC_RELAXED),
			.ttl_s = __atomic_load_n(&src->ttl_s, __ATOMIC_RELAXED),
		};

		// The copy lands before the original goes: never absent.
		slot_fill(dst, &w, &v, __atomic_load_n(&src->last_ms, __ATOMIC_RELAXED));
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

/* Free a slot in bucket b1 or b2 by moving entries to their other
 * buckets, last hop first, so every entry always has a home. */
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
	struct replace_arg ra = { val, now_ms };
	struct fp_aff_bucket *first, *second;
	struct fp_aff_val old;
	struct words w;
	uint64_t h, b1, b2;

	key_words(key, &w);
	h = mix(w.k0, w.k1);
	if (find(t, &w, h, &old, now_ms)) {
		if (!replace)
			return -EEXIST;
		if (for_each_match(t, &w, do_replace, &ra) > 0)
			return 0;
	}
	buckets_of(t, h, &b1, &b2);
	first = &t->buckets[b1];
	second = &t->buckets[b2];
	if (bucket_live(second) < bucket_live(first)) {
		first = second;
		second = &t->buckets[b1];
	}
	if (bucket_insert(t, first, &w, val, now_ms) ||
	    (second != first && bucket_insert(t, second, &w, val, now_ms)))
		return 0;
	if (make_room(t, b1, b2, h) && (bucket_insert(t, &t->buckets[b1], &w, val, now_ms) ||
					bucket_insert(t, &t->buckets[b2], &w, val, now_ms)))
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
	uint16_t f = __atomic_load_n(&s->flags, __ATOMIC_RELAXED);

	(void)t;
	__atomic_store_n(&s->flags, (uint16_t)(f | m->set), __ATOMIC_RELAXED);
	__atomic_store_n(&s->ttl_s, m->ttl_s, __ATOMIC_RELAXED);
}

int fp_aff_mark(struct fp_aff *t, const struct fp_aff_key *key, uint16_t set, uint16_t ttl_s)
{
	struct mark_arg m = { set, ttl_s };
	struct words w;

	key_words(key, &w);
	return for_each_match(t, &w, do_mark, &m) ? 0 : -ENOENT;
}

/* ---- expiry and walks ---------------------------------------------------------------------- */

static inline bool expired(uint32_t last_ms, uint16_t ttl_s, uint32_t now_ms)
{
	return now_ms - last_ms > (uint32_t)ttl_s * 1000u;
}

static bool slot_expire(struct fp_aff *t, struct fp_aff_slot *s, uint32_t now_ms)
{
	uint32_t seq;
	bool gone = false;

	if (!k1_live(__atomic_load_n(&s->k1, __ATOMIC_RELAXED)) ||
	    !expired(__atomic_load_n(&s->last_ms, __ATOMIC_RELAXED),
		     __atomic_load_n(&s->ttl_s, __ATOMIC_RELAXED), now_ms))
		return false;
	if (!slot_claim(s, &seq))
		return false; // busy: next round
	if (k1_live(__atomic_load_n(&s->k1, __ATOMIC_RELAXED)) &&
	    expired(__atomic_load_n(&s->last_ms, __ATOMIC_RELAXED),
		    __atomic_load_n(&s->ttl_s, __ATOMIC_RELAXED), now_ms)) {
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
		uint8_t b[16];

		if (!slot_read(s, &o) || !k1_live(o.k1))
			continue;
		memcpy(b, &o.k0, 8);
		memcpy(b + 8, &o.k1, 8);
		b[8 + FP_AFF_STATE_BYTE] = 0;
		memcpy(&e.key, b, 16);
		e.val.target = o.target;
		e.val.flags = o.flags;
		e.val.ttl_s = o.ttl_s;
		e.last_ms = o.last_ms;
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
