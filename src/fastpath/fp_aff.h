/*
 * fp_aff.h - private to the fastpath room: the affinity table, a lock-free
 * hash from a 5-tuple key to a target, shared by every worker and the
 * control thread (design.md section 4).
 *
 * Shape: a power-of-two array of buckets of FP_AFF_BUCKET_SLOTS 32-byte slots
 * (one 128-byte bucket = two cache lines). A key may live in either of two
 * buckets (two-choice hashing); inserts go to the emptier one. When both
 * are full, entries are moved to their other bucket along a short random
 * path (cuckoo hashing, copy before clear, last hop first) to make room;
 * readers retry a miss that overlapped a move (a table-wide move count),
 * so a live entry is never missed. When no path is found the insert fails
 * with -ENOSPC: a full table is a counted, graceful condition.
 *
 * Concurrency: every slot carries a sequence word (seqlock). A writer (any
 * thread) claims a slot by CAS of its even sequence to odd, writes, then
 * releases it with the next even value. Readers never write shared state
 * except a coarse last-seen refresh, retry a slot whose sequence moved, and
 * give up after FP_AFF_READ_RETRIES (reported as a miss, which sends the
 * packet the slow way, to control; correct, just slower). No locks, no
 * allocation, no system calls: callable from workers.
 *
 * Time is a caller-supplied uint32 millisecond clock (wraps after 49 days;
 * all comparisons are wrap-safe differences). Threads may read the clock at
 * slightly different moments: a last-seen time a little ahead of a caller's
 * now_ms counts as idle 0, never as 49 days.
 *
 * This file has no DPDK dependency: memory comes from the caller, so the
 * table is unit-tested, benchmarked and fuzzed without EAL.
 */
#ifndef FP_AFF_H
#define FP_AFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FP_AFF_BUCKET_SLOTS 4
#define FP_AFF_READ_RETRIES 8
#define FP_AFF_LOOKUP_MAX 64 /* keys per fp_aff_lookup_bulk call */

/* The key: 16 bytes, compared as two 64-bit words. Host order, client -> VIP
 * direction. pad[0] and pad[1] are key bytes (fragment records mark pad[0]);
 * pad[2] must be zero: the table keeps a slot's state there, ignores the
 * caller's value and gives 0 back in walks. */
struct fp_aff_key {
	uint32_t src;
	uint32_t dst;
	uint16_t sport;
	uint16_t dport;
	uint8_t proto;
	uint8_t pad[3];
};

/* What a lookup returns. */
struct fp_aff_val {
	uint32_t target; /* target id */
	uint16_t flags;  /* FP_AFF_F_* of fastpath.h */
	uint16_t ttl_s;  /* idle TTL in seconds; 0 is invalid for add */
};

struct fp_aff;

/* Bytes of memory a table for `capacity` entries needs (64-byte aligned).
 * Buckets are sized so that capacity fits at <= 80% slot load. Returns 0
 * when capacity is 0 or too large (> 2^30). */
size_t fp_aff_mem_size(uint32_t capacity);

/*
 * Lay a table out in mem (mem_len >= fp_aff_mem_size(capacity), 64-byte
 * aligned, any content). Returns the table (== mem) or NULL with errno
 * EINVAL. The caller frees mem after every user has stopped. Context: any,
 * before the table is shared.
 */
struct fp_aff *fp_aff_init(void *mem, size_t mem_len, uint32_t capacity);

/*
 * Look up n (<= FP_AFF_LOOKUP_MAX) keys. For each hit i, bit i of the return
 * value is set and vals[i] is filled; the entry's last-seen time is
 * refreshed to now_ms (written only when it changed by >= 1 s, to keep cache
 * lines clean). Hashes all keys and prefetches their buckets first.
 * Context: worker or control; lock-free.
 */
uint64_t fp_aff_lookup_bulk(struct fp_aff *t, const struct fp_aff_key *keys, unsigned n,
			    struct fp_aff_val *vals, uint32_t now_ms);

/* One key; returns true on a hit. Same refresh as the bulk form. */
bool fp_aff_lookup(struct fp_aff *t, const struct fp_aff_key *key, struct fp_aff_val *val,
		   uint32_t now_ms);

/*
 * Insert key -> val with last-seen now_ms. If the key is already present its
 * value is replaced (returns 0 as well) when `replace`, else -EEXIST.
 * -ENOSPC when both candidate buckets are full (counted in stats.full).
 * Context: any thread; lock-free. Two threads inserting the same new key at
 * the same instant may both succeed; lookups then return one of them and
 * expiry removes the other (flows are pinned to a worker by RSS, so this is
 * rare; documented in docs/fastpath.md).
 */
int fp_aff_add(struct fp_aff *t, const struct fp_aff_key *key, const struct fp_aff_val *val,
	       uint32_t now_ms, bool replace);

/*
 * Look key up without touching it: no last-seen refresh, so a control-side
 * look (a trace, a display) never counts as traffic. Fills *val and the
 * entry's last-seen time. True on a hit. Context: any; lock-free.
 */
bool fp_aff_peek(const struct fp_aff *t, const struct fp_aff_key *key, struct fp_aff_val *val,
		 uint32_t *last_ms);

/* Delete key (every copy). Returns 0 or -ENOENT. Context: any. */
int fp_aff_del(struct fp_aff *t, const struct fp_aff_key *key);

/* Set flags |= set and the TTL of an existing entry (FIN/RST seen).
 * Returns 0 or -ENOENT. Context: any. */
int fp_aff_mark(struct fp_aff *t, const struct fp_aff_key *key, uint16_t set, uint16_t ttl_s);

/*
 * Delete entries idle longer than their TTL among `nbuckets` buckets from
 * bucket *cursor, advancing *cursor (wrapping to 0). Returns entries deleted.
 * Workers call it in housekeeping on a small slice; control may too.
 */
unsigned fp_aff_expire(struct fp_aff *t, uint64_t *cursor, unsigned nbuckets, uint32_t now_ms);

/* A visited entry, for walks. */
struct fp_aff_entry_view {
	struct fp_aff_key key;
	struct fp_aff_val val;
	uint32_t last_ms;
};

/*
 * Visit up to max live entries from slot *cursor on; *cursor becomes the next
 * slot, or 0 when the end was reached. fn returning non-zero stops the walk
 * (after that entry). Returns the number visited. Each entry is read whole
 * (seqlock); under concurrent writes an entry may be missed or, while a
 * cuckoo move is under way, seen twice. Context: any (control).
 */
unsigned fp_aff_walk(struct fp_aff *t, uint64_t *cursor, unsigned max,
		     int (*fn)(const struct fp_aff_entry_view *e, void *arg), void *arg);

struct fp_aff_stats {
	uint64_t count;    /* live entries (approximate under concurrency) */
	uint64_t capacity; /* as given to fp_aff_init */
	uint64_t slots;    /* buckets * FP_AFF_BUCKET_SLOTS */
	uint64_t inserts, deletes, expiries, full;
	uint64_t moves; /* cuckoo moves made to fit inserts */
	uint64_t mem_bytes;
};
void fp_aff_stats(const struct fp_aff *t, struct fp_aff_stats *s);

/* Hash of a key (exposed for selection by hash and for tests). */
uint64_t fp_aff_hash(const struct fp_aff_key *key);

#endif /* FP_AFF_H */
