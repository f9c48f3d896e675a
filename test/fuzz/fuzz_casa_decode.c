/*
 * fuzz_casa_decode.c - libFuzzer target for casa_decode (spec 8, 11.4).
 *
 * Any input up to 65535 bytes must give OK or an error, under ASan and UBSan.
 * Properties checked, each a __builtin_trap() when broken:
 *  1. errors are decoder errors (spec 8 steps 1-8, never AUTH_*), their offset
 *     lies within the input, and the default receive limit (max_len 0)
 *     gives the same answer for inputs within it;
 *  2. a message that decodes with no skipped TLV re-encodes (CASA_MODE_EXTENDED),
 *     the encoding decodes, and both decodes are casa_msg_equal; the encoder
 *     refuses a buffer one byte short with -ENOSPC, writing nothing past it;
 *  3. a message with CASALB_AUTH still decodes after one digest byte is
 *     flipped, and casa_verify never accepts the flipped copy.
 * casa_verify also runs on the input itself after every successful decode.
 *
 * The key contexts hold the spec's test key "casalb-test-key", id 1 (spec
 * 10.3), one per algorithm, created once. Replay state therefore carries over
 * between inputs; that changes which replay branch a run takes, never a
 * property, since the digest is checked before any replay state (spec 6.9).
 */
#include "casa.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_MAX_INPUT 65535u
#define FUZZ_KEY "casalb-test-key"
#define FUZZ_KEY_ID 1
#define FUZZ_NOW 0x3B532A52u /* the vectors' timestamp (spec 10.3); freshness is off anyway */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

static struct casa_auth_ctx *ctx_create(uint8_t alg)
{
	struct casa_auth_params params;
	struct casa_key key = { .alg = alg, .id = FUZZ_KEY_ID, .len = sizeof(FUZZ_KEY) - 1 };
	struct casa_auth_ctx *ctx;

	casa_auth_params_default(&params);
	params.freshness_s = 0;
	ctx = casa_auth_create(&params);
	memcpy(key.bytes, FUZZ_KEY, sizeof(FUZZ_KEY) - 1);
	check(ctx != NULL && casa_auth_set_key(ctx, &key, FUZZ_NOW) == 0);
	return ctx;
}

/* The context whose key has the message's algorithm, so both HMACs get exercised. */
static struct casa_auth_ctx *ctx_for(uint8_t alg)
{
	static struct casa_auth_ctx *md5, *sha256;

	if (!md5) {
		md5 = ctx_create(CASA_AUTH_HMAC_MD5);
		sha256 = ctx_create(CASA_AUTH_HMAC_SHA256);
	}
	return alg == CASA_AUTH_HMAC_MD5 ? md5 : sha256;
}

/* Property 2: decode(encode(decode(x))) == decode(x). */
static void check_round_trip(const struct casa_msg *m, size_t in_len)
{
	static uint8_t out[FUZZ_MAX_INPUT + 4];
	struct casa_msg again;
	uint8_t *shorter;
	int n = casa_encode(m, CASA_MODE_EXTENDED, out, sizeof(out));

	// Padding the last TLV may add 3 bytes; past the hard limit the encoder
	// rightly refuses a message it could not send (spec 9).
	if (n == -EINVAL && in_len + 3 > CASA_MSG_MAX_HARD)
		return;
	check(n > 0);
	check(casa_decode(out, (size_t)n, CASA_MSG_MAX_HARD, &again) == CASA_OK);
	check(casa_msg_equal(m, &again));
	check(again.skipped_tlvs == 0);
	// A buffer one byte short: -ENOSPC, and ASan sees any write past it.
	shorter = malloc((size_t)n - 1);
	check(shorter != NULL);
	check(casa_encode(m, CASA_MODE_EXTENDED, shorter, (size_t)n - 1) == -ENOSPC);
	free(shorter);
}

/* Property 3: one flipped digest byte is never accepted. */
static void check_flipped_digest(const uint8_t *data, size_t size, const struct casa_msg *m)
{
	const struct casa_auth *a = &m->auth;
	struct casa_msg flipped_msg;
	uint8_t *flipped;
	size_t at;

	check(a->offset + 28u + a->digest_len == size);
	flipped = malloc(size);
	check(flipped != NULL);
	memcpy(flipped, data, size);
	// Which byte and which bits come from the input, so the fuzzer explores them.
	at = a->offset + 28u + (size_t)(data[size - 1] % a->digest_len);
	flipped[at] ^= (uint8_t)(data[0] | 1);
	check(casa_decode(flipped, size, FUZZ_MAX_INPUT, &flipped_msg) == CASA_OK);
	check(casa_verify(ctx_for(a->alg), flipped, size, &flipped_msg, FUZZ_NOW) != CASA_OK);
	free(flipped);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct casa_msg m, m_default;
	enum casa_err err;
	bool auth;

	if (size > FUZZ_MAX_INPUT)
		return 0;
	err = casa_decode(data, size, FUZZ_MAX_INPUT, &m);
	if (size <= CASA_MSG_MAX_DEFAULT)
		check(casa_decode(data, size, 0, &m_default) == err);
	if (err != CASA_OK) {
		check(err >= CASA_E_SHORT && err <= CASA_E_FIELD && m.err_offset <= size);
		return 0;
	}
	auth = m.present & CASA_HAS_AUTH;
	if (m.skipped_tlvs == 0)
		check_round_trip(&m, size);
	if (auth)
		check_flipped_digest(data, size, &m);
	(void)casa_verify(ctx_for(auth ? m.auth.alg : CASA_AUTH_HMAC_SHA256), data, size, &m,
			  FUZZ_NOW);
	return 0;
}
