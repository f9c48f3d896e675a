/*
 * casa_auth.c - CASALB_AUTH (spec 6.9): HMAC-MD5 / HMAC-SHA256 through
 * OpenSSL's libcrypto, key rollover, and the per-sender replay window.
 *
 * The digest covers the message from its first byte to the end of
 * CASALB_AUTH with the digest bytes taken as zero. It is computed
 * incrementally (prefix, then zeros) so the message is never copied.
 */
#include "casa.h"
#include "casa_wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define AUTH_FIXED_LEN 28 /* TLV header + fields before the digest */
#define REPLAY_WINDOW 64  /* bits, as in RFC 4303 */
#define REPLAY_PROBES 32  /* open-addressing probe limit */

struct replay_slot {
	uint32_t sender_id;
	uint32_t epoch;
	uint64_t highest;
	uint64_t window; /* bit i set: sequence highest - i seen */
	uint32_t last_seen;
	bool used;
};

/* A key and the HMAC context initialised with it (re-initialised per use). */
struct key_slot {
	struct casa_key key;
	EVP_MAC_CTX *mac;
	bool set;
};

struct casa_auth_ctx {
	struct casa_auth_params p;
	struct key_slot cur;
	struct key_slot prev;
	uint32_t prev_since; /* when prev stopped being current */
	uint32_t nslots;     /* power of two */
	struct replay_slot slots[];
};

static size_t digest_len_of(uint8_t alg)
{
	return alg == CASA_AUTH_HMAC_MD5 ? 16 : alg == CASA_AUTH_HMAC_SHA256 ? 32 : 0;
}

static EVP_MAC_CTX *mac_create(const struct casa_key *key)
{
	char md[16];
	OSSL_PARAM params[2];
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;

	EVP_MAC_free(mac); // the context holds its own reference
	if (!ctx)
		return NULL;
	strcpy(md, key->alg == CASA_AUTH_HMAC_MD5 ? "MD5" : "SHA256");
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, md, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_init(ctx, key->bytes, key->len, params)) {
		EVP_MAC_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* HMAC over buf[0..digest_off) then dlen zero bytes. */
static int mac_compute(EVP_MAC_CTX *mac, const uint8_t *buf, size_t digest_off, size_t dlen,
		       uint8_t *out)
{
	static const uint8_t zeros[CASA_DIGEST_MAX];
	size_t outl = 0;

	if (!EVP_MAC_init(mac, NULL, 0, NULL) || !EVP_MAC_update(mac, buf, digest_off) ||
	    !EVP_MAC_update(mac, zeros, dlen) || !EVP_MAC_final(mac, out, &outl, CASA_DIGEST_MAX))
		return -EIO;
	return outl == dlen ? 0 : -EIO;
}

static bool key_valid(const struct casa_key *key)
{
	return digest_len_of(key->alg) != 0 && key->len >= 1 && key->len <= CASA_KEY_MAX;
}

int casa_auth_digest(const struct casa_key *key, const uint8_t *buf, size_t len, size_t auth_offset,
		     uint8_t *out)
{
	size_t dlen = digest_len_of(key->alg);
	EVP_MAC_CTX *mac;
	int rc;

	if (!key_valid(key) || auth_offset + AUTH_FIXED_LEN + dlen != len)
		return -EINVAL;
	mac = mac_create(key);
	if (!mac)
		return -ENOMEM;
	rc = mac_compute(mac, buf, auth_offset + AUTH_FIXED_LEN, dlen, out);
	EVP_MAC_CTX_free(mac);
	return rc;
}

/* ---- context and keys ---------------------------------------------------- */

void casa_auth_params_default(struct casa_auth_params *p)
{
	*p = (struct casa_auth_params){ .max_senders = 4096,
					.freshness_s = 120,
					.rollover_s = 180 };
}

struct casa_auth_ctx *casa_auth_create(const struct casa_auth_params *p)
{
	struct casa_auth_params params;
	struct casa_auth_ctx *ctx;
	uint32_t nslots = 16;

	if (p)
		params = *p;
	else
		casa_auth_params_default(&params);
	if (params.max_senders == 0)
		params.max_senders = 4096;
	if (params.rollover_s > 3600 || params.max_senders > (1u << 24) ||
	    params.freshness_s > (1u << 30)) {
		errno = EINVAL;
		return NULL;
	}
	while (nslots < params.max_senders)
		nslots <<= 1;
	ctx = calloc(1, sizeof(*ctx) + (size_t)nslots * sizeof(ctx->slots[0]));
	if (!ctx) {
		errno = ENOMEM;
		return NULL;
	}
	ctx->p = params;
	ctx->nslots = nslots;
	return ctx;
}

static void key_slot_clear(struct key_slot *k)
{
	EVP_MAC_CTX_free(k->mac);
	OPENSSL_cleanse(&k->key, sizeof(k->key));
	k->mac = NULL;
	k->set = false;
}

void casa_auth_destroy(struct casa_auth_ctx *ctx)
{
	if (!ctx)
		return;
	key_slot_clear(&ctx->cur);
	key_slot_clear(&ctx->prev);
	free(ctx);
}

void casa_auth_clear_keys(struct casa_auth_ctx *ctx)
{
	key_slot_clear(&ctx->cur);
	key_slot_clear(&ctx->prev);
}

bool casa_auth_enabled(const struct casa_auth_ctx *ctx)
{
	return ctx->cur.set;
}

static bool key_same(const struct casa_key *a, const struct casa_key *b)
{
	return a->alg == b->alg && a->id == b->id && a->len == b->len &&
	       CRYPTO_memcmp(a->bytes, b->bytes, a->len) == 0;
}

int casa_auth_set_key(struct casa_auth_ctx *ctx, const struct casa_key *key, uint32_t now)
{
	EVP_MAC_CTX *mac;

	if (!key_valid(key))
		return -EINVAL;
	if (ctx->cur.set && ctx->cur.key.id == key->id)
		return key_same(&ctx->cur.key, key) ? 0 : -EEXIST;
	mac = mac_create(key);
	if (!mac)
		return -ENOMEM;
	key_slot_clear(&ctx->prev);
	if (ctx->cur.set) {
		ctx->prev = ctx->cur;
		ctx->prev_since = now;
	}
	ctx->cur = (struct key_slot){ .key = *key, .mac = mac, .set = true };
	return 0;
}

/* ---- signing --------------------------------------------------------------- */

int casa_sign(const struct casa_auth_ctx *ctx, struct casa_signer *signer, uint8_t *buf, size_t len,
	      size_t cap, uint32_t now)
{
	const struct casa_key *key = &ctx->cur.key;
	struct casa_msg msg;
	size_t dlen, total;
	uint8_t *t;
	int rc;

	if (!ctx->cur.set)
		return -ENOKEY;
	if (len < CASA_HDR_LEN || len % 4 != 0)
		return -EINVAL;
	// Only a well-formed message without AUTH can be signed: a second AUTH
	// would make every receiver refuse it (CASA_E_AUTH_POS).
	if (casa_decode(buf, len, CASA_MSG_MAX_HARD, &msg) != CASA_OK ||
	    (msg.present & CASA_HAS_AUTH))
		return -EINVAL;
	dlen = digest_len_of(key->alg);
	total = len + AUTH_FIXED_LEN + dlen;
	if (total > CASA_MSG_MAX_HARD)
		return -EINVAL;
	if (cap < total)
		return -ENOSPC;
	t = buf + len;
	casa_put16(t, CASA_TLV_AUTH);
	casa_put16(t + 2, (uint16_t)(AUTH_FIXED_LEN + dlen));
	t[4] = key->alg;
	t[5] = key->id;
	casa_put16(t + 6, 0);
	casa_put32(t + 8, signer->sender_id);
	casa_put32(t + 12, signer->epoch);
	casa_put64(t + 16, signer->seq + 1);
	casa_put32(t + 24, now);
	rc = mac_compute(ctx->cur.mac, buf, len + AUTH_FIXED_LEN, dlen, t + AUTH_FIXED_LEN);
	if (rc < 0)
		return rc;
	signer->seq++; // consumed only when the datagram was built
	return (int)total;
}

/* ---- verification -------------------------------------------------------- */

static const struct key_slot *key_for(const struct casa_auth_ctx *ctx, uint8_t id, uint32_t now)
{
	if (ctx->cur.set && ctx->cur.key.id == id)
		return &ctx->cur;
	// The previous key stays valid for rollover_s after it was replaced.
	if (ctx->prev.set && ctx->prev.key.id == id && now - ctx->prev_since < ctx->p.rollover_s)
		return &ctx->prev;
	return NULL;
}

static bool is_fresh(const struct casa_auth_ctx *ctx, uint32_t ts, uint32_t now)
{
	int64_t diff = (int32_t)(ts - now); // serial arithmetic

	if (ctx->p.freshness_s == 0)
		return true;
	return diff <= (int64_t)ctx->p.freshness_s && -diff <= (int64_t)ctx->p.freshness_s;
}

static uint32_t slot_hash(uint32_t id)
{
	id ^= id >> 16;
	id *= 0x7FEB352Du;
	id ^= id >> 15;
	id *= 0x846CA68Bu;
	return id ^ (id >> 16);
}

/* An entry idle for twice the freshness window can go: freshness alone
 * then rejects replays of its messages (spec 6.9). */
static bool slot_evictable(const struct casa_auth_ctx *ctx, const struct replay_slot *s,
			   uint32_t now)
{
	return ctx->p.freshness_s != 0 && now - s->last_seen > 2 * ctx->p.freshness_s;
}

/* The sender's slot, or a free/evictable one for it, or NULL when full. */
static struct replay_slot *slot_find(struct casa_auth_ctx *ctx, uint32_t sender, uint32_t now)
{
	uint32_t mask = ctx->nslots - 1, h = slot_hash(sender);
	struct replay_slot *spare = NULL;

	for (uint32_t i = 0; i < REPLAY_PROBES && i < ctx->nslots; i++) {
		struct replay_slot *s = &ctx->slots[(h + i) & mask];

		if (s->used && s->sender_id == sender)
			return s;
		if (!spare && (!s->used || slot_evictable(ctx, s, now)))
			spare = s;
	}
	if (spare)
		*spare = (struct replay_slot){ .sender_id = sender };
	return spare;
}

/* Steps 2-6 of spec 6.9 "Replay protection"; updates the slot on accept. */
static enum casa_err replay_check(struct replay_slot *s, uint32_t epoch, uint64_t seq)
{
	uint64_t diff;

	if (seq == 0 || (s->used && epoch < s->epoch))
		return CASA_E_AUTH_REPLAY;
	if (!s->used || epoch > s->epoch) {
		s->used = true;
		s->epoch = epoch;
		s->highest = seq;
		s->window = 1;
		return CASA_OK;
	}
	if (seq > s->highest) {
		diff = seq - s->highest;
		s->window = diff >= REPLAY_WINDOW ? 1 : (s->window << diff) | 1;
		s->highest = seq;
		return CASA_OK;
	}
	diff = s->highest - seq;
	if (diff >= REPLAY_WINDOW || (s->window & (1ull << diff)))
		return CASA_E_AUTH_REPLAY;
	s->window |= 1ull << diff;
	return CASA_OK;
}

static enum casa_err digest_check(const struct key_slot *k, const uint8_t *buf, size_t len,
				  const struct casa_auth *a)
{
	uint8_t want[CASA_DIGEST_MAX];
	size_t dlen = digest_len_of(k->key.alg);

	if (a->alg != k->key.alg)
		return CASA_E_AUTH_ALG;
	if (a->digest_len != dlen || (size_t)a->offset + AUTH_FIXED_LEN + dlen != len)
		return CASA_E_AUTH_BAD;
	if (mac_compute(k->mac, buf, a->offset + AUTH_FIXED_LEN, dlen, want) < 0)
		return CASA_E_AUTH_BAD;
	return CRYPTO_memcmp(want, a->digest, dlen) == 0 ? CASA_OK : CASA_E_AUTH_BAD;
}

enum casa_err casa_verify(struct casa_auth_ctx *ctx, const uint8_t *buf, size_t len,
			  const struct casa_msg *msg, uint32_t now)
{
	const struct casa_auth *a = &msg->auth;
	const struct key_slot *k;
	struct replay_slot *slot;
	enum casa_err err;

	if (!ctx->cur.set)
		return CASA_OK; // no key: AUTH, if any, is skipped unverified
	if (!(msg->present & CASA_HAS_AUTH))
		return CASA_E_AUTH_REQUIRED;
	if (digest_len_of(a->alg) == 0)
		return CASA_E_AUTH_ALG;
	k = key_for(ctx, a->key_id, now);
	if (!k)
		return CASA_E_AUTH_KEYID;
	err = digest_check(k, buf, len, a);
	if (err != CASA_OK)
		return err;
	if (!is_fresh(ctx, a->timestamp, now))
		return CASA_E_AUTH_STALE;
	slot = slot_find(ctx, a->sender_id, now);
	if (!slot)
		return CASA_E_AUTH_REPLAY; // replay state full of live senders
	err = replay_check(slot, a->epoch, a->seq);
	if (err == CASA_OK)
		slot->last_seen = now;
	return err;
}
