/*
 * test_casa_auth.c - CUnit tests of CASALB_AUTH (casa-protocol.md 6.9): the vectors V12-V14,
 * signing, the receive policy in its order (REQUIRED, ALG, KEYID, BAD, STALE, REPLAY), the
 * 64-entry replay window, and key rollover.
 *
 * Every test runs with freshness 120 s and rollover 180 s (the defaults of 7.1) unless it says
 * otherwise, and passes `now` explicitly; the vectors' timestamp is 0x3B532A52.
 *
 * Usage: test_casa_auth <vector dir>   (or CASA_VECTOR_DIR); meson passes test/data/casa.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "casa.h"
#include "test_util.h"

#define NOW 0x3B532A52u   /* V12-V14 timestamp, 2001-07-16T17:54:26Z */
#define EPOCH 0x3B522E80u /* V8/V12 epoch */
#define SM_ID 0x09439C49u /* 9.67.156.73, signer of V12/V13 */
#define FA_ID 0x01010102u /* 1.1.1.2, signer of V14 */
#define FRESHNESS 120
#define ROLLOVER 180
#define AUTH_AT 52 /* V3 is 52 bytes; AUTH follows it in V12/V13 */
#define MSG_CAP 128

static const char test_key[] = "casalb-test-key";

static struct casa_key make_key(uint8_t alg, uint8_t id, const char *bytes)
{
	struct casa_key k = { .alg = alg, .id = id, .len = (uint8_t)strlen(bytes) };

	memcpy(k.bytes, bytes, k.len);
	return k;
}

/* casa.h does not promise that destroy accepts NULL; error paths here may hold NULL. */
static void ctx_free(struct casa_auth_ctx *ctx)
{
	if (ctx != NULL)
		casa_auth_destroy(ctx);
}

static struct casa_auth_ctx *ctx_new(uint32_t freshness, uint32_t rollover)
{
	struct casa_auth_params p = { .freshness_s = freshness, .rollover_s = rollover };
	struct casa_auth_ctx *ctx = casa_auth_create(&p);

	TU_CHECK(ctx != NULL, "casa_auth_create failed: errno %d", errno);
	return ctx;
}

/* A context holding "casalb-test-key" under the given algorithm and key id. */
static struct casa_auth_ctx *ctx_keyed(uint8_t alg, uint8_t id, uint32_t now)
{
	struct casa_auth_ctx *ctx = ctx_new(FRESHNESS, ROLLOVER);
	struct casa_key k = make_key(alg, id, test_key);

	if (ctx != NULL)
		TU_EQI(casa_auth_set_key(ctx, &k, now), 0);
	return ctx;
}

/* Decode a copy of exactly len bytes (ASan sees over-reads), then apply the policy. */
static enum casa_err deliver(struct casa_auth_ctx *rx, const uint8_t *msg, size_t len, uint32_t now)
{
	uint8_t *copy = tu_dup(msg, len);
	struct casa_msg m;
	enum casa_err e = casa_decode(copy, len, 0, &m);

	if (e == CASA_OK)
		e = casa_verify(rx, copy, len, &m, now);
	free(copy);
	return e;
}

/* Sign V3 as sequence `seq` of (sender, epoch) with timestamp `now`; returns the length. */
static size_t sign_v3(const struct casa_auth_ctx *tx, const struct tu_vec *v3, uint32_t sender,
		      uint32_t epoch, uint64_t seq, uint32_t now, uint8_t *out)
{
	struct casa_signer s = { .sender_id = sender, .epoch = epoch, .seq = seq - 1 };
	int n;

	memcpy(out, v3->buf, v3->len);
	n = casa_sign(tx, &s, out, v3->len, MSG_CAP, now);
	TU_CHECK(n > 0 && s.seq == seq, "casa_sign(seq %llu) returned %d, signer.seq %llu",
		 (unsigned long long)seq, n, (unsigned long long)s.seq);
	return n > 0 ? (size_t)n : 0;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/*
 * Reference signer built straight from 6.9 with OpenSSL's HMAC(), independent of casa_sign:
 * appends CASALB_AUTH (SHA256, key id 1) to V3 and returns the length. Used to check casa_sign
 * and to make messages casa_sign will not (sequence 0).
 */
static size_t ref_sign_v3(const struct tu_vec *v3, uint32_t sender, uint32_t epoch, uint64_t seq,
			  uint32_t ts, uint8_t *out)
{
	static const uint8_t head[6] = {
		0xFF, 0x01, 0x00, CASA_AUTH_SHA256_LEN, CASA_AUTH_HMAC_SHA256, 1
	};
	uint8_t *a = out + AUTH_AT;
	unsigned dlen = 0;

	memcpy(out, v3->buf, v3->len);
	memset(a, 0, CASA_AUTH_SHA256_LEN);
	memcpy(a, head, sizeof(head)); /* type, length, algorithm, key id 1 */
	put_be32(a + 8, sender);
	put_be32(a + 12, epoch);
	put_be32(a + 16, (uint32_t)(seq >> 32));
	put_be32(a + 20, (uint32_t)seq);
	put_be32(a + 24, ts);
	// The digest covers the whole message with the digest bytes zero (they are, here).
	HMAC(EVP_sha256(), test_key, (int)strlen(test_key), out, AUTH_AT + CASA_AUTH_SHA256_LEN,
	     a + 28, &dlen);
	TU_EQ(dlen, 32);
	return AUTH_AT + CASA_AUTH_SHA256_LEN;
}

/* ---- vectors --------------------------------------------------------------------------------- */

static void check_vector_verifies(const char *name, uint8_t alg)
{
	struct casa_auth_ctx *rx = ctx_keyed(alg, 1, NOW);
	struct tu_vec v;
	char what[64];

	if (rx == NULL || tu_load(name, &v) != 0) {
		ctx_free(rx);
		return;
	}
	snprintf(what, sizeof(what), "verify %s at 0x%08X", name, NOW);
	TU_ERR(deliver(rx, v.buf, v.len, NOW), CASA_OK, what);
	tu_free(&v);
	ctx_free(rx);
}

static void test_vectors_verify(void)
{
	check_vector_verifies("V12", CASA_AUTH_HMAC_SHA256);
	check_vector_verifies("V13", CASA_AUTH_HMAC_MD5);
	check_vector_verifies("V14", CASA_AUTH_HMAC_SHA256);
}

/* 10.3: "Delivering V12 twice must give OK and then CASA_E_AUTH_REPLAY." */
static void test_v12_twice_is_replay(void)
{
	struct casa_auth_ctx *rx = ctx_keyed(CASA_AUTH_HMAC_SHA256, 1, NOW);
	struct tu_vec v;

	if (rx == NULL || tu_load("V12", &v) != 0) {
		ctx_free(rx);
		return;
	}
	TU_ERR(deliver(rx, v.buf, v.len, NOW), CASA_OK, "V12 first");
	TU_ERR(deliver(rx, v.buf, v.len, NOW), CASA_E_AUTH_REPLAY, "V12 second");
	tu_free(&v);
	ctx_free(rx);
}

static void check_sign_gives(const char *base, const char *want, uint8_t alg, uint32_t sender,
			     uint64_t last_seq)
{
	struct casa_auth_ctx *tx = ctx_keyed(alg, 1, NOW);
	struct casa_signer s = { .sender_id = sender, .epoch = EPOCH, .seq = last_seq };
	struct tu_vec b, w;
	uint8_t *out;
	char what[64];
	int n;

	if (tx == NULL || tu_load(base, &b) != 0 || tu_load(want, &w) != 0) {
		ctx_free(tx);
		return;
	}
	// Exactly the room needed: casa_sign may not write past the signed message.
	out = tu_alloc(w.len);
	memcpy(out, b.buf, b.len);
	n = casa_sign(tx, &s, out, b.len, w.len, NOW);
	snprintf(what, sizeof(what), "casa_sign(%s) vs %s", base, want);
	TU_EQI(n, (int)w.len);
	TU_BYTES(out, n > 0 ? (size_t)n : 0, w.buf, w.len, what);
	TU_EQ(s.seq, last_seq + 1);
	free(out);
	tu_free(&b);
	tu_free(&w);
	ctx_free(tx);
}

/* 10.3: V12 = sign(V3, SHA256), V13 = sign(V3, MD5), V14 = sign(V2, SHA256, FA seq 7). */
static void test_sign_reproduces_vectors(void)
{
	check_sign_gives("V3", "V12", CASA_AUTH_HMAC_SHA256, SM_ID, 0);
	check_sign_gives("V3", "V13", CASA_AUTH_HMAC_MD5, SM_ID, 0);
	check_sign_gives("V2", "V14", CASA_AUTH_HMAC_SHA256, FA_ID, 6);
}

/* The independent reference signer agrees with V12, so the replay tests below can use it. */
static void test_reference_signer_matches_v12(void)
{
	struct tu_vec v3, v12;
	uint8_t out[MSG_CAP];
	size_t n;

	if (tu_load("V3", &v3) != 0 || tu_load("V12", &v12) != 0)
		return;
	n = ref_sign_v3(&v3, SM_ID, EPOCH, 1, NOW, out);
	TU_BYTES(out, n, v12.buf, v12.len, "reference HMAC-SHA256 signature of V3 vs V12");
	tu_free(&v3);
	tu_free(&v12);
}

static void check_digest(const char *name, uint8_t alg, size_t dlen)
{
	struct casa_key k = make_key(alg, 1, test_key);
	struct tu_vec v;
	uint8_t out[CASA_DIGEST_MAX];

	if (tu_load(name, &v) != 0)
		return;
	TU_EQI(casa_auth_digest(&k, v.buf, v.len, AUTH_AT, out), 0);
	TU_BYTES(out, dlen, v.buf + AUTH_AT + 28, dlen, name);
	TU_EQI(casa_auth_digest(&k, v.buf, v.len, v.len, out), -EINVAL);
	tu_free(&v);
}

static void test_auth_digest(void)
{
	check_digest("V12", CASA_AUTH_HMAC_SHA256, 32);
	check_digest("V13", CASA_AUTH_HMAC_MD5, 16);
}

/* ---- the policy, in order ------------------------------------------------------------------- */

/* 6.9: other algorithm values decode at length 44 or 60 and the policy rejects them. */
static void check_alg_byte(const char *name, uint8_t alg, enum casa_err dec, enum casa_err ver)
{
	struct casa_auth_ctx *rx = ctx_keyed(CASA_AUTH_HMAC_SHA256, 1, NOW);
	struct tu_vec v;
	struct casa_msg m;
	char what[64];

	if (rx == NULL || tu_load(name, &v) != 0) {
		ctx_free(rx);
		return;
	}
	v.buf[AUTH_AT + 4] = alg;
	snprintf(what, sizeof(what), "decode %s with algorithm %u", name, alg);
	TU_ERR(casa_decode(v.buf, v.len, 0, &m), dec, what);
	if (dec == CASA_OK) {
		TU_EQ(m.auth.alg, alg);
		snprintf(what, sizeof(what), "verify %s with algorithm %u", name, alg);
		TU_ERR(casa_verify(rx, v.buf, v.len, &m, NOW), ver, what);
	}
	tu_free(&v);
	ctx_free(rx);
}

static void test_alg_byte(void)
{
	check_alg_byte("V12", 3, CASA_OK, CASA_E_AUTH_ALG);
	check_alg_byte("V13", 3, CASA_OK, CASA_E_AUTH_ALG);
	check_alg_byte("V12", 0, CASA_OK, CASA_E_AUTH_ALG);
	check_alg_byte("V12", 255, CASA_OK, CASA_E_AUTH_ALG);
	// Algorithm 1 requires length 44 and 2 requires 60.
	check_alg_byte("V12", CASA_AUTH_HMAC_MD5, CASA_E_TLV_LEN, CASA_OK);
	check_alg_byte("V13", CASA_AUTH_HMAC_SHA256, CASA_E_TLV_LEN, CASA_OK);
}

static void test_unknown_key_id(void)
{
	struct casa_auth_ctx *rx = ctx_keyed(CASA_AUTH_HMAC_SHA256, 1, NOW);
	struct casa_auth_ctx *tx = ctx_keyed(CASA_AUTH_HMAC_SHA256, 7, NOW);
	struct tu_vec v3, v12;
	uint8_t out[MSG_CAP];
	size_t n;

	if (rx == NULL || tx == NULL || tu_load("V3", &v3) != 0 || tu_load("V12", &v12) != 0)
		goto out;
	// A key id the receiver lacks: KEYID comes before the digest check (8 step 9).
	v12.buf[AUTH_AT + 5] = 2;
	TU_ERR(deliver(rx, v12.buf, v12.len, NOW), CASA_E_AUTH_KEYID, "V12 with key id 2");
	n = sign_v3(tx, &v3, SM_ID, EPOCH, 1, NOW, out);
	TU_ERR(deliver(rx, out, n, NOW), CASA_E_AUTH_KEYID, "signed with key id 7");
	tu_free(&v3);
	tu_free(&v12);
out:
	ctx_free(rx);
	ctx_free(tx);
}

static void test_auth_required(void)
{
	struct casa_auth_ctx *rx = ctx_keyed(CASA_AUTH_HMAC_SHA256, 1, NOW);
	struct tu_vec v3, v2;

	if (rx == NULL || tu_load("V3", &v3) != 0 || tu_load("V2", &v2) != 0) {
		ctx_free(rx);
		return;
	}
	TU_CHECK(casa_auth_enabled(rx), "a context with a key must report enabled");
	TU_ERR(deliver(rx, v3.buf, v3.len, NOW), CASA_E_AUTH_REQUIRED, "V3 with a key set");
	TU_ERR(deliver(rx, v2.buf, v2.len, NOW), CASA_E_AUTH_REQUIRED, "V2 with a key set");
	tu_free(&v3);
	tu_free(&v2);
	ctx_free(rx);
}

/* 6.9: with no key, AUTH is skipped unverified, so nothing is replay-checked or rejected. */
static void test_no_key_skips_auth(void)
{
	struct casa_auth_ctx *rx = ctx_new(FRESHNESS, ROLLOVER);
	struct casa_key k = make_key(CASA_AUTH_HMAC_SHA256, 1, test_key);
	struct tu_vec v12, n29, v3;

	if (rx == NULL || tu_load("V12", &v12) != 0 || tu_load("N29", &n29) != 0 ||
	    tu_load("V3", &v3) != 0) {
		ctx_free(rx);
		return;
	}
	TU_CHECK(!casa_auth_enabled(rx), "a new context must have no key");
	TU_ERR(deliver(rx, v12.buf, v12.len, NOW), CASA_OK, "V12 without key");
	TU_ERR(deliver(rx, v12.buf, v12.len, NOW), CASA_OK, "V12 again without key");
	TU_ERR(deliver(rx, n29.buf, n29.len, NOW), CASA_OK, "N29 without key");
	TU_ERR(deliver(rx, v12.buf, v12.len, 0), CASA_OK, "V12 without key, clock 0");
	TU_ERR(deliver(rx, v3.buf, v3.len, NOW), CASA_OK, "V3 without key");
	// casa_auth_clear_keys returns to the same state.
	TU_EQI(casa_auth_set_key(rx, &k, NOW), 0);
	TU_ERR(deliver(rx, v3.buf, v3.len, NOW), CASA_E_AUTH_REQUIRED, "V3 with key");
	casa_auth_clear_keys(rx);
	TU_CHECK(!casa_auth_enabled(rx), "clear_keys must leave no key");
	TU_ERR(deliver(rx, v3.buf, v3.len, NOW), CASA_OK, "V3 after clear_keys");
	TU_ERR(deliver(rx, n29.buf, n29.len, NOW), CASA_OK, "N29 after clear_keys");
	tu_free(&v12);
	tu_free(&n29);
	tu_free(&v3);
	ctx_free(rx);
}

static void test_bad_digest(void)
{
	struct casa_auth_ctx *rx = ctx_keyed(CASA_AUTH_HMAC_SHA256, 1, NOW);
	struct casa_auth_ctx *other = ctx_new(FRESHNESS, ROLLOVER);
	struct casa_key wrong = make_key(CASA_AUTH_HMAC_SHA256, 1, "casalb-test-kez");
	struct tu_vec v12;

	if (rx == NULL || other == NULL || tu_load("V12", &v12) != 0)
		goto out;
	TU_EQI(casa_auth_set_key(other, &wrong, NOW), 0);
	TU_ERR(deliver(other, v12.buf, v12.len, NOW), CASA_E_AUTH_BAD, "V12 under a wrong key");
	// Any changed covered byte breaks the digest: header, affinity, AUTH fields, digest (11.4).
	for (size_t off = 0; off < v12.len; off++) {
		enum casa_err e;

		v12.buf[off] ^= 0x01;
		e = deliver(rx, v12.buf, v12.len, NOW);
		TU_CHECK(e != CASA_OK, "V12 with byte %zu flipped: got CASA_OK", off);
		v12.buf[off] ^= 0x01;
	}
	TU_ERR(deliver(rx, v12.buf, v12.len, NOW), CASA_OK, "V12 after the forgeries");
	tu_free(&v12);
out:
	ctx_free(rx);
	ctx_free(other);
}

/* 6.9 step 1: more than `freshness` seconds apart under serial arithmetic is stale. */
static void check_fresh(uint32_t sign_at, uint32_t now, uint32_t freshness, enum casa_err want)
{
	struct casa_auth_ctx *tx = ctx_keyed(CASA_AUTH_HMAC_SHA256, 1, now);
	struct casa_auth_ctx *rx = ctx_new(freshness, ROLLOVER);
	struct casa_key k = make_key(CASA_AUTH_HMAC_SHA256, 1, test_key);
	struct tu_vec v3;
	uint8_t out[MSG_CAP];
	char what[96];
	size_t n;

	if (tx == NULL || rx == NULL || tu_load("V3", &v3) != 0)
		goto out;
	TU_EQI(casa_auth_set_key(rx, &k, now), 0);
	n = sign_v3(tx, &v3, SM_ID, EPOCH, 1, sign_at, out);
	snprintf(what, sizeof(what), "timestamp 0x%08X at clock 0x%08X, freshness %u", sign_at, now,
		 freshness);
	TU_ERR(deliver(rx, out, n, now), want, what);
	tu_free(&v3);
out:
	ctx_free(tx);
	ctx_free(rx);
}

static void test_freshness(void)
{
	check_fresh(NOW, NOW + 120, FRESHNESS, CASA_OK);
	check_fresh(NOW, NOW - 120, FRESHNESS, CASA_OK);
	check_fresh(NOW, NOW + 121, FRESHNESS, CASA_E_AUTH_STALE);
	check_fresh(NOW, NOW - 121, FRESHNESS, CASA_E_AUTH_STALE);
	check_fresh(NOW, NOW + 86400, FRESHNESS, CASA_E_AUTH_STALE);
	check_fresh(NOW, 0, 0, CASA_OK); /* freshness 0: check off */
	check_fresh(NOW, NOW + 0x80000000u, 0, CASA_OK);
	// Serial arithmetic across the 2^32 wrap: 96 s apart either way.
	check_fresh(0xFFFFFFC0u, 0x00000020u, FRESHNESS, CASA_OK);
	check_fresh(0x00000020u, 0xFFFFFFC0u, FRESHNESS, CASA_OK);
	check_fresh(0xFFFFFF00u, 0x00000100u, FRESHNESS, CASA_E_AUTH_STALE);
	check_fresh(0, 0x80000000u, FRESHNESS, CASA_E_AUTH_STALE);
}

/* A stale message is rejected before replay: it neither uses up its sequence nor moves the
 * window (spec 6.9: "Replay state changes only when OK is returned", casa.h). */
static void test_stale_keeps_replay_state(void)
{
	struct casa_auth_ctx *rx = ctx_keyed(CASA_AUTH_HMAC_SHA256, 1, NOW);
	struct tu_vec v12;

	if (rx == NULL || tu_load("V12", &v12) != 0) {
		ctx_free(rx);
		return;
	}
	TU_ERR(deliver(rx, v12.buf, v12.len, NOW + 500), CASA_E_AUTH_STALE, "V12 500 s late");
	TU_ERR(deliver(rx, v12.buf, v12.len, NOW), CASA_OK, "V12 on time after the stale copy");
	TU_ERR(deliver(rx, v12.buf, v12.len, NOW + 500), CASA_E_AUTH_STALE, "stale before replay");
	tu_free(&v12);
	ctx_free(rx);
}

/* ---- replay window (6.9 steps 2-6) -------------------------------------------------------- */

struct replay_fix {
	struct tu_vec v3;
	struct casa_auth_ctx *tx, *rx;
};

static bool replay_setup(struct replay_fix *f)
{
	f->tx = ctx_keyed(CASA_AUTH_HMAC_SHA256, 1, NOW);
	f->rx = ctx_keyed(CASA_AUTH_HMAC_SHA256, 1, NOW);
	f->v3.buf = NULL;
	return f->tx != NULL && f->rx != NULL && tu_load("V3", &f->v3) == 0;
}

static void replay_teardown(struct replay_fix *f)
{
	tu_free(&f->v3);
	ctx_free(f->tx);
	ctx_free(f->rx);
}

/* Sign (sender, epoch, seq) now and deliver it; check the result. */
static void expect_seq(struct replay_fix *f, uint32_t sender, uint32_t epoch, uint64_t seq,
		       enum casa_err want, int line)
{
	uint8_t out[MSG_CAP];
	size_t n = seq == 0 ? ref_sign_v3(&f->v3, sender, epoch, seq, NOW, out) :
			      sign_v3(f->tx, &f->v3, sender, epoch, seq, NOW, out);
	enum casa_err got = deliver(f->rx, out, n, NOW);

	tu_check(got == want, __FILE__, line,
		 "sender 0x%08X epoch 0x%08X seq %llu: got %s, expected %s", sender, epoch,
		 (unsigned long long)seq, tu_err_ident(got), tu_err_ident(want));
}

#define EXPECT(f, sender, epoch, seq, want) \
	expect_seq((f), (sender), (epoch), (seq), (want), __LINE__)

static void test_replay_window_edges(void)
{
	struct replay_fix f;

	if (replay_setup(&f)) {
		EXPECT(&f, SM_ID, EPOCH, 100, CASA_OK);            /* no state yet: accept */
		EXPECT(&f, SM_ID, EPOCH, 100, CASA_E_AUTH_REPLAY); /* = highest */
		EXPECT(&f, SM_ID, EPOCH, 37, CASA_OK);             /* highest - 63, unseen */
		EXPECT(&f, SM_ID, EPOCH, 37, CASA_E_AUTH_REPLAY);  /* its bit is now set */
		EXPECT(&f, SM_ID, EPOCH, 36, CASA_E_AUTH_REPLAY);  /* highest - 64 */
		EXPECT(&f, SM_ID, EPOCH, 1, CASA_E_AUTH_REPLAY);
		EXPECT(&f, SM_ID, EPOCH, 99, CASA_OK);
		EXPECT(&f, SM_ID, EPOCH, 101, CASA_OK);           /* shift by one */
		EXPECT(&f, SM_ID, EPOCH, 38, CASA_OK);            /* the new highest - 63 */
		EXPECT(&f, SM_ID, EPOCH, 99, CASA_E_AUTH_REPLAY); /* shifted bits kept */
		EXPECT(&f, SM_ID, EPOCH, 100, CASA_E_AUTH_REPLAY);
		EXPECT(&f, SM_ID, EPOCH, 0, CASA_E_AUTH_REPLAY); /* sequence 0 */
	}
	replay_teardown(&f);
}

static void test_replay_window_shifts(void)
{
	struct replay_fix f;

	if (replay_setup(&f)) {
		EXPECT(&f, SM_ID, EPOCH, 100, CASA_OK);
		EXPECT(&f, SM_ID, EPOCH, 1000, CASA_OK);           /* jump far ahead */
		EXPECT(&f, SM_ID, EPOCH, 936, CASA_E_AUTH_REPLAY); /* 1000 - 64 */
		EXPECT(&f, SM_ID, EPOCH, 937, CASA_OK);            /* 1000 - 63 */
		EXPECT(&f, SM_ID, EPOCH, 999, CASA_OK);
		EXPECT(&f, SM_ID, EPOCH, 1000, CASA_E_AUTH_REPLAY);
		EXPECT(&f, SM_ID, EPOCH, 1064, CASA_OK);            /* shift by exactly 64 */
		EXPECT(&f, SM_ID, EPOCH, 1000, CASA_E_AUTH_REPLAY); /* 1064 - 64 */
		EXPECT(&f, SM_ID, EPOCH, 1001, CASA_OK);            /* 1064 - 63, unseen */
		EXPECT(&f, SM_ID, EPOCH, 1063, CASA_OK);
		EXPECT(&f, SM_ID, EPOCH, 1064, CASA_E_AUTH_REPLAY);
		EXPECT(&f, SM_ID, EPOCH, 1065, CASA_OK); /* shift by one after 64 */
		EXPECT(&f, SM_ID, EPOCH, 1001, CASA_E_AUTH_REPLAY);
		EXPECT(&f, SM_ID, EPOCH, 1002, CASA_OK);
		EXPECT(&f, SM_ID, EPOCH, 1ull << 40, CASA_OK); /* 64-bit sequence numbers */
		EXPECT(&f, SM_ID, EPOCH, (1ull << 40) - 63, CASA_OK);
		EXPECT(&f, SM_ID, EPOCH, (1ull << 40) - 64, CASA_E_AUTH_REPLAY);
	}
	replay_teardown(&f);
}

static void test_replay_epochs(void)
{
	struct replay_fix f;

	if (replay_setup(&f)) {
		EXPECT(&f, SM_ID, EPOCH, 500, CASA_OK);
		EXPECT(&f, SM_ID, EPOCH + 1, 5, CASA_OK); /* new epoch: accept, reset */
		EXPECT(&f, SM_ID, EPOCH + 1, 5, CASA_E_AUTH_REPLAY);
		EXPECT(&f, SM_ID, EPOCH + 1, 4, CASA_OK); /* window was reset */
		EXPECT(&f, SM_ID, EPOCH + 1, 1, CASA_OK);
		EXPECT(&f, SM_ID, EPOCH, 501, CASA_E_AUTH_REPLAY); /* old epoch */
		EXPECT(&f, SM_ID, EPOCH - 1000, 1, CASA_E_AUTH_REPLAY);
		EXPECT(&f, SM_ID, EPOCH + 1, 0, CASA_E_AUTH_REPLAY); /* sequence 0 */
		EXPECT(&f, SM_ID, EPOCH + 2, 0, CASA_E_AUTH_REPLAY); /* 0 even in a new epoch */
		EXPECT(&f, SM_ID, EPOCH + 1, 6, CASA_OK);            /* ... which changed nothing */
		// State is per sender id: another sender starts fresh, sequence 0 still refused.
		EXPECT(&f, FA_ID, EPOCH, 0, CASA_E_AUTH_REPLAY);
		EXPECT(&f, FA_ID, EPOCH, 1, CASA_OK);
		EXPECT(&f, FA_ID, EPOCH, 501, CASA_OK);
		EXPECT(&f, SM_ID, EPOCH + 1, 7, CASA_OK);
	}
	replay_teardown(&f);
}

/* Deliver a copy of a signed message with one digest bit flipped: AUTH_BAD. */
static void deliver_forged(struct replay_fix *f, uint32_t sender, uint32_t epoch, uint64_t seq)
{
	uint8_t out[MSG_CAP];
	size_t n = sign_v3(f->tx, &f->v3, sender, epoch, seq, NOW, out);

	out[n - 1] ^= 0x80;
	TU_ERR(deliver(f->rx, out, n, NOW), CASA_E_AUTH_BAD, "forged copy");
}

/* 6.9: replay protection runs only after the digest verifies. */
static void test_bad_digest_keeps_replay_state(void)
{
	struct replay_fix f;

	if (replay_setup(&f)) {
		deliver_forged(&f, SM_ID, EPOCH, 200); /* no state yet */
		EXPECT(&f, SM_ID, EPOCH, 100, CASA_OK);
		deliver_forged(&f, SM_ID, EPOCH, 200);  /* a later sequence */
		EXPECT(&f, SM_ID, EPOCH, 200, CASA_OK); /* genuine one accepted */
		deliver_forged(&f, SM_ID, EPOCH, 1000);
		EXPECT(&f, SM_ID, EPOCH, 137, CASA_OK);  /* window not moved to 1000 */
		deliver_forged(&f, SM_ID, EPOCH + 1, 1); /* a forged new epoch */
		EXPECT(&f, SM_ID, EPOCH, 201, CASA_OK);  /* old epoch still current */
		EXPECT(&f, SM_ID, EPOCH + 1, 1, CASA_OK);
	}
	replay_teardown(&f);
}

/* Signing twice advances the sequence by one each time (6.9: +1 per datagram sent). */
static void test_sign_sequence_advances(void)
{
	struct replay_fix f;
	struct casa_signer s = { .sender_id = SM_ID, .epoch = EPOCH, .seq = 0 };
	uint8_t out[MSG_CAP];
	struct casa_msg m;
	int n;

	if (replay_setup(&f)) {
		for (uint64_t want = 1; want <= 3; want++) {
			memcpy(out, f.v3.buf, f.v3.len);
			n = casa_sign(f.tx, &s, out, f.v3.len, sizeof(out), NOW);
			TU_EQI(n, AUTH_AT + CASA_AUTH_SHA256_LEN);
			TU_EQ(s.seq, want);
			if (n > 0 && casa_decode(out, (size_t)n, 0, &m) == CASA_OK)
				TU_EQ(m.auth.seq, want);
			TU_ERR(deliver(f.rx, out, n > 0 ? (size_t)n : 0, NOW), CASA_OK, "signed");
		}
	}
	replay_teardown(&f);
}

/*
 * 6.9: the state table is bounded, and entries idle for more than twice the freshness window
 * are evicted. With a tiny table filled at t, a new sender is let in at t + 241 s; a replay of
 * an evicted sender's old message is then stopped by freshness.
 */
static void test_replay_table_eviction(void)
{
	struct casa_auth_params p = { .max_senders = 1,
				      .freshness_s = FRESHNESS,
				      .rollover_s = ROLLOVER };
	struct casa_auth_ctx *tx = ctx_keyed(CASA_AUTH_HMAC_SHA256, 1, NOW);
	struct casa_auth_ctx *rx = casa_auth_create(&p);
	struct casa_key k = make_key(CASA_AUTH_HMAC_SHA256, 1, test_key);
	struct tu_vec v3;
	uint8_t out[MSG_CAP], first[MSG_CAP];
	size_t n, first_len = 0;
	unsigned accepted = 0;

	if (tx == NULL || rx == NULL || tu_load("V3", &v3) != 0)
		goto out;
	TU_EQI(casa_auth_set_key(rx, &k, NOW), 0);
	for (uint32_t id = 1; id <= 64; id++) {
		n = sign_v3(tx, &v3, id, EPOCH, 1, NOW, out);
		if (deliver(rx, out, n, NOW) == CASA_OK && accepted++ == 0) {
			memcpy(first, out, n);
			first_len = n;
		}
	}
	TU_CHECK(accepted >= 1, "no sender accepted into an empty replay table");
	n = sign_v3(tx, &v3, 1000, EPOCH, 1, NOW + 2 * FRESHNESS + 1, out);
	TU_ERR(deliver(rx, out, n, NOW + 2 * FRESHNESS + 1), CASA_OK,
	       "new sender after every entry idled 2 x freshness");
	if (first_len > 0)
		TU_ERR(deliver(rx, first, first_len, NOW + 2 * FRESHNESS + 2), CASA_E_AUTH_STALE,
		       "replay of an evicted sender's message");
	tu_free(&v3);
out:
	ctx_free(tx);
	ctx_free(rx);
}

/* ---- keys ----------------------------------------------------------------------------------- */

/* Sign V3 with tx's current key at `at` (fresh at the receiver) and deliver it at `at`. */
static enum casa_err signed_at(struct casa_auth_ctx *tx, struct casa_auth_ctx *rx,
			       const struct tu_vec *v3, uint64_t seq, uint32_t at, uint8_t *key_id)
{
	uint8_t out[MSG_CAP];
	size_t n = sign_v3(tx, v3, SM_ID, EPOCH, seq, at, out);
	struct casa_msg m;

	if (n > 0 && casa_decode(out, n, 0, &m) == CASA_OK)
		*key_id = m.auth.key_id;
	return deliver(rx, out, n, at);
}

/* 6.9 "Key rollover": the previous key id stays accepted for rollover_s after the new one. */
static void check_rollover(uint32_t rollover)
{
	const uint32_t t = NOW;
	struct casa_auth_ctx *old_tx = ctx_keyed(CASA_AUTH_HMAC_SHA256, 1, t - 1000);
	struct casa_auth_ctx *new_tx = ctx_keyed(CASA_AUTH_HMAC_SHA256, 1, t - 1000);
	struct casa_auth_ctx *rx = ctx_new(FRESHNESS, rollover);
	struct casa_key k1 = make_key(CASA_AUTH_HMAC_SHA256, 1, test_key);
	struct casa_key k2 = make_key(CASA_AUTH_HMAC_SHA256, 2, "casalb-second-key");
	struct tu_vec v3;
	uint8_t id = 0;
	uint64_t seq = 1;

	if (old_tx == NULL || new_tx == NULL || rx == NULL || tu_load("V3", &v3) != 0)
		goto out;
	TU_EQI(casa_auth_set_key(rx, &k1, t - 1000), 0);
	TU_ERR(signed_at(old_tx, rx, &v3, seq++, t - 10, &id), CASA_OK, "key 1 before rollover");
	TU_EQI(casa_auth_set_key(rx, &k2, t), 0);
	TU_EQI(casa_auth_set_key(new_tx, &k2, t), 0); /* the sender switches at once */
	TU_ERR(signed_at(new_tx, rx, &v3, seq++, t + 1, &id), CASA_OK, "key 2 after the change");
	TU_EQ(id, 2);
	if (rollover > 0) {
		TU_ERR(signed_at(old_tx, rx, &v3, seq++, t + rollover - 1, &id), CASA_OK,
		       "key 1 one second before the rollover timeout");
		TU_EQ(id, 1);
	}
	TU_ERR(signed_at(old_tx, rx, &v3, seq++, t + rollover + 1, &id), CASA_E_AUTH_KEYID,
	       "key 1 one second after the rollover timeout");
	TU_ERR(signed_at(new_tx, rx, &v3, seq++, t + rollover + 1, &id), CASA_OK,
	       "key 2 after the rollover timeout");
	TU_ERR(signed_at(old_tx, rx, &v3, seq++, t + rollover + 3000, &id), CASA_E_AUTH_KEYID,
	       "key 1 long after the rollover timeout");
	tu_free(&v3);
out:
	ctx_free(old_tx);
	ctx_free(new_tx);
	ctx_free(rx);
}

static void test_key_rollover(void)
{
	check_rollover(ROLLOVER); /* T+179 accepted, T+181 KEYID */
	check_rollover(0);
	check_rollover(3600);
}

/* casa.h: same key again is a no-op; another key under the current id is -EEXIST. */
static void test_set_key_rules(void)
{
	struct casa_auth_ctx *ctx = ctx_new(FRESHNESS, ROLLOVER);
	struct casa_key k = make_key(CASA_AUTH_HMAC_SHA256, 1, test_key), bad;
	struct tu_vec v12;

	if (ctx == NULL || tu_load("V12", &v12) != 0) {
		ctx_free(ctx);
		return;
	}
	TU_EQI(casa_auth_set_key(ctx, &k, NOW), 0);
	TU_EQI(casa_auth_set_key(ctx, &k, NOW + 10), 0);
	bad = make_key(CASA_AUTH_HMAC_SHA256, 1, "casalb-test-kez");
	TU_EQI(casa_auth_set_key(ctx, &bad, NOW), -EEXIST);
	bad = make_key(CASA_AUTH_HMAC_MD5, 1, test_key);
	TU_EQI(casa_auth_set_key(ctx, &bad, NOW), -EEXIST);
	bad = make_key(CASA_AUTH_HMAC_SHA256, 1, "casalb-test-key-longer");
	TU_EQI(casa_auth_set_key(ctx, &bad, NOW), -EEXIST);
	// The refused keys changed nothing: V12 still verifies under key 1.
	TU_ERR(deliver(ctx, v12.buf, v12.len, NOW), CASA_OK, "V12 after refused set_key");
	bad = make_key(CASA_AUTH_NONE, 3, test_key);
	TU_EQI(casa_auth_set_key(ctx, &bad, NOW), -EINVAL);
	bad = make_key(3, 3, test_key);
	TU_EQI(casa_auth_set_key(ctx, &bad, NOW), -EINVAL);
	bad = make_key(CASA_AUTH_HMAC_SHA256, 3, test_key);
	bad.len = 0;
	TU_EQI(casa_auth_set_key(ctx, &bad, NOW), -EINVAL);
	bad.len = CASA_KEY_MAX + 1;
	TU_EQI(casa_auth_set_key(ctx, &bad, NOW), -EINVAL);
	bad.len = CASA_KEY_MAX; /* 64 octets is the MIB maximum, allowed */
	memset(bad.bytes, 'k', CASA_KEY_MAX);
	TU_EQI(casa_auth_set_key(ctx, &bad, NOW), 0);
	// Re-setting the current key (id 3) is a no-op: key 1 remains in its rollover period.
	TU_EQI(casa_auth_set_key(ctx, &bad, NOW + 100), 0);
	tu_free(&v12);
	ctx_free(ctx);
}

/* A no-op set_key does not restart the rollover clock of the previous key. */
static void test_set_same_key_keeps_rollover(void)
{
	struct casa_auth_ctx *rx = ctx_keyed(CASA_AUTH_HMAC_SHA256, 1, NOW - 1000);
	struct casa_auth_ctx *tx = ctx_keyed(CASA_AUTH_HMAC_SHA256, 1, NOW - 1000);
	struct casa_key k2 = make_key(CASA_AUTH_HMAC_SHA256, 2, "casalb-second-key");
	struct tu_vec v3;
	uint8_t id;

	if (rx == NULL || tx == NULL || tu_load("V3", &v3) != 0)
		goto out;
	TU_EQI(casa_auth_set_key(rx, &k2, NOW), 0);
	TU_EQI(casa_auth_set_key(rx, &k2, NOW + 100), 0);
	TU_ERR(signed_at(tx, rx, &v3, 1, NOW + ROLLOVER + 1, &id), CASA_E_AUTH_KEYID,
	       "key 1 after a rollover, with key 2 set twice");
	tu_free(&v3);
out:
	ctx_free(rx);
	ctx_free(tx);
}

/* casa.h: -ENOKEY without a key, -ENOSPC when the AUTH TLV does not fit, -EINVAL for input that
 * is not an unsigned, 4-byte aligned message. */
static void test_sign_errors(void)
{
	struct casa_auth_ctx *none = ctx_new(FRESHNESS, ROLLOVER);
	struct casa_auth_ctx *sha = ctx_keyed(CASA_AUTH_HMAC_SHA256, 1, NOW);
	struct casa_auth_ctx *md5 = ctx_keyed(CASA_AUTH_HMAC_MD5, 1, NOW);
	struct casa_signer s = { .sender_id = SM_ID, .epoch = EPOCH };
	struct tu_vec v3, v12, n27;
	uint8_t *out;

	if (none == NULL || sha == NULL || md5 == NULL || tu_load("V3", &v3) != 0 ||
	    tu_load("V12", &v12) != 0 || tu_load("N27", &n27) != 0)
		goto out;
	out = tu_alloc(MSG_CAP);
	memcpy(out, v3.buf, v3.len);
	TU_EQI(casa_sign(none, &s, out, v3.len, MSG_CAP, NOW), -ENOKEY);
	TU_EQI(casa_sign(sha, &s, out, v3.len, 111, NOW), -ENOSPC);
	TU_EQI(casa_sign(md5, &s, out, v3.len, 95, NOW), -ENOSPC);
	TU_BYTES(out, v3.len, v3.buf, v3.len, "message after refused casa_sign");
	TU_EQI(casa_sign(md5, &s, out, v3.len, 96, NOW), 96);
	memcpy(out, n27.buf, n27.len); /* 49 bytes: not 4-byte aligned */
	TU_EQI(casa_sign(sha, &s, out, n27.len, MSG_CAP, NOW), -EINVAL);
	free(out);
	// Already signed; the buffer has room for a second AUTH so only that is wrong.
	out = tu_alloc(2 * MSG_CAP);
	memcpy(out, v12.buf, v12.len);
	TU_EQI(casa_sign(sha, &s, out, v12.len, 2 * MSG_CAP, NOW), -EINVAL);
	free(out);
	tu_free(&v3);
	tu_free(&v12);
	tu_free(&n27);
out:
	ctx_free(none);
	ctx_free(sha);
	ctx_free(md5);
}

/* casa.h defaults (7.1: 120 s freshness, 180 s rollover) and the 0..3600 rollover bound. */
static void test_params(void)
{
	struct casa_auth_params p;
	struct casa_auth_ctx *ctx;

	memset(&p, 0xA5, sizeof(p));
	casa_auth_params_default(&p);
	TU_EQ(p.max_senders, 4096);
	TU_EQ(p.freshness_s, 120);
	TU_EQ(p.rollover_s, 180);
	ctx = casa_auth_create(&p);
	TU_CHECK(ctx != NULL, "casa_auth_create(defaults) failed");
	ctx_free(ctx);
	p.rollover_s = 3601;
	errno = 0;
	ctx = casa_auth_create(&p);
	TU_CHECK(ctx == NULL && errno == EINVAL, "rollover 3601: got %p, errno %d", (void *)ctx,
		 errno);
	ctx_free(ctx);
}

static CU_TestInfo tests[] = {
	{ "V12-V14 verify (10.3)", test_vectors_verify },
	{ "V12 twice is a replay (10.3)", test_v12_twice_is_replay },
	{ "casa_sign reproduces V12-V14", test_sign_reproduces_vectors },
	{ "reference signer matches V12", test_reference_signer_matches_v12 },
	{ "casa_auth_digest of V12/V13", test_auth_digest },
	{ "algorithm byte (6.9)", test_alg_byte },
	{ "unknown key id", test_unknown_key_id },
	{ "auth required with a key", test_auth_required },
	{ "no key: AUTH skipped", test_no_key_skips_auth },
	{ "bad digest", test_bad_digest },
	{ "freshness (6.9 step 1)", test_freshness },
	{ "stale keeps replay state", test_stale_keeps_replay_state },
	{ "replay window edges", test_replay_window_edges },
	{ "replay window shifts", test_replay_window_shifts },
	{ "replay epochs and sequence 0", test_replay_epochs },
	{ "bad digest keeps replay state", test_bad_digest_keeps_replay_state },
	{ "sign advances the sequence", test_sign_sequence_advances },
	{ "replay table eviction", test_replay_table_eviction },
	{ "key rollover", test_key_rollover },
	{ "set_key rules", test_set_key_rules },
	{ "same key keeps rollover", test_set_same_key_keeps_rollover },
	{ "casa_sign errors", test_sign_errors },
	{ "auth params", test_params },
	CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
	return tu_run_suite("casa auth", tests, argc, argv);
}
