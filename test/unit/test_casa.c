/*
 * test_casa.c - CUnit tests of the CASA codec and name helpers (casa.h), after
 * shared/docs/casa-protocol.md: golden vectors (section 10) both directions, the decoder's error
 * order (section 8), truncations and length-field changes (11.4), a random round-trip property,
 * and the display helpers (5.6, 11.6).
 *
 * Usage: test_casa <vector dir>   (or CASA_VECTOR_DIR); meson passes test/data/casa.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casa.h"
#include "test_util.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN4(n) (((n) + 3u) & ~(size_t)3u)

/* Interest address of the captured SM (9.67.156.73) and the other addresses of section 10. */
#define SM_XCF 0x09439C49u
#define CLIENT 0x09439C68u /* 9.67.156.104 */
#define VIP 0x09439D11u    /* 9.67.157.17 */
#define TARGET 0x09439C4Au /* 9.67.156.74 */
#define FA_CTL 0x01010102u /* 1.1.1.2 */
#define EPOCH_V8 0x3B522E80u
#define NOW_V12 0x3B532A52u

static const char *const v_names[] = {
	"V1", "V2",  "V3",  "V4",  "V5",  "V6",  "V7",  "V8",
	"V9", "V10", "V11", "V12", "V13", "V14", "V15",
};

/* Decode into a struct filled with junk first: only members named by `present` carry meaning
 * (casa.h), so nothing may depend on the caller having zeroed it. */
static enum casa_err decode(const uint8_t *buf, size_t len, struct casa_msg *m)
{
	memset(m, 0xA5, sizeof(*m));
	return casa_decode(buf, len, 0, m);
}

/* casa_encode into an exactly-sized heap buffer, so ASan sees any write past cap. */
static int encode_exact(const struct casa_msg *m, enum casa_mode mode, size_t cap, uint8_t **out)
{
	*out = tu_alloc(cap);
	return casa_encode(m, mode, *out, cap);
}

/* ---- V1..V15 decode to the values of 10.1, 10.3 and the layouts of section 6 ---------- */

static void check_v1_action(const struct casa_action *a)
{
	TU_EQ(a->interest_addr, SM_XCF);
	TU_EQ(a->interest_port, 1637);
	TU_EQ(a->criteria, 0x8100);
	TU_EQ(a->x, 0x8100);
	TU_EQ(a->tickle, 0);
	TU_EQ(a->dispatch, 0);
}

/* V1 (ttl 60) and V5 (ttl 0): 10.1 table of V1. */
static void check_wildcard_v1(const struct casa_msg *m, uint16_t ttl)
{
	static const uint8_t aux[4] = { 0x05, 0x04, 0x00, 0x00 };

	TU_EQ(m->type, CASA_MSG_WILDCARD);
	TU_EQ(m->present, CASA_HAS_WILDCARD | CASA_HAS_AUX | CASA_HAS_ACTION);
	TU_EQ(m->tlv_count, 3);
	TU_EQ(m->skipped_tlvs, 0);
	TU_EQ(m->aff.flags, 0);
	TU_EQ(m->aff.protocol, 6);
	TU_EQ(m->aff.src, 0);
	TU_EQ(m->aff.src_mask, 0);
	TU_EQ(m->aff.dst, VIP);
	TU_EQ(m->aff.dst_mask, 0xFFFFFFFFu);
	TU_EQ(m->aff.src_port, 0);
	TU_EQ(m->aff.dst_port, 80);
	TU_EQ(m->aff.fwd, 0);
	TU_EQ(m->aff.ttl, ttl);
	TU_EQ(m->aff.reserved, 0);
	TU_BYTES(m->aux, 4, aux, 4, "WILDCARD_AUX raw value");
	check_v1_action(&m->action);
}

/* V3 and everything built on it (V4, V12, V13, V15): 10.1 table of V3. */
static void check_fixed_v3(const struct casa_msg *m, uint16_t ttl)
{
	TU_EQ(m->type, CASA_MSG_FIXED);
	TU_CHECK((m->present & (CASA_HAS_FIXED | CASA_HAS_ACTION)) ==
			 (CASA_HAS_FIXED | CASA_HAS_ACTION),
		 "fixed: present 0x%x lacks FIXED|ACTION", (unsigned)m->present);
	TU_EQ(m->aff.flags, 0x0002);
	TU_EQ(m->aff.protocol, 6);
	TU_EQ(m->aff.src, CLIENT);
	TU_EQ(m->aff.src_mask, 0xFFFFFFFFu); /* casa.h: all-ones after decode */
	TU_EQ(m->aff.dst, VIP);
	TU_EQ(m->aff.dst_mask, 0xFFFFFFFFu);
	TU_EQ(m->aff.src_port, 2771);
	TU_EQ(m->aff.dst_port, 23);
	TU_EQ(m->aff.fwd, TARGET);
	TU_EQ(m->aff.ttl, ttl);
	TU_EQ(m->aff.reserved, 0);
	TU_EQ(m->action.interest_addr, SM_XCF);
	TU_EQ(m->action.interest_port, 1637);
	TU_EQ(m->action.criteria, 0x0002);
	TU_EQ(m->action.x, 0x0002);
	TU_EQ(m->action.tickle, 0);
	TU_EQ(m->action.dispatch, 0);
}

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The SYN of trace 299 (10.1, V2): it is carried unchanged and points into the buffer. */
static void check_syn_packet(const struct casa_msg *m, const uint8_t *buf)
{
	const uint8_t *p = m->ip_pkt;

	TU_CHECK(p == buf + 8, "IP_PACKET value must point into the buffer at offset 8");
	TU_EQ(m->ip_pkt_len, 48);
	if (p != buf + 8)
		return;
	TU_EQ(p[0], 0x45);
	TU_EQ(be16(p + 2), 48);     /* total length */
	TU_EQ(be16(p + 4), 0xB66E); /* ID */
	TU_EQ(p[6] & 0x40, 0x40);   /* DF */
	TU_EQ(p[8], 127);           /* TTL */
	TU_EQ(p[9], 6);             /* TCP */
	TU_EQ(be32(p + 12), CLIENT);
	TU_EQ(be32(p + 16), VIP);
	TU_EQ(be16(p + 20), 2771);
	TU_EQ(be16(p + 22), 23);
	TU_EQ(be32(p + 24), 1987348003u);
	TU_EQ(p[33], 0x02);         /* SYN */
	TU_EQ(be16(p + 34), 16384); /* window */
	TU_EQ(be16(p + 42), 1460);  /* MSS option */
}

static void test_v1_wildcard_fields(void)
{
	struct tu_vec v;
	struct casa_msg m;

	if (tu_load("V1", &v) != 0)
		return;
	TU_ERR(decode(v.buf, v.len, &m), CASA_OK, "decode V1");
	check_wildcard_v1(&m, 60);
	tu_free(&v);
}

static void test_v2_ip_packet_fields(void)
{
	struct tu_vec v;
	struct casa_msg m;

	if (tu_load("V2", &v) != 0)
		return;
	TU_ERR(decode(v.buf, v.len, &m), CASA_OK, "decode V2");
	TU_EQ(m.type, CASA_MSG_IP_PACKET);
	TU_EQ(m.present, CASA_HAS_IP_PACKET);
	TU_EQ(m.tlv_count, 1);
	TU_EQ(m.skipped_tlvs, 0);
	check_syn_packet(&m, v.buf);
	tu_free(&v);
}

static void test_v3_fixed_fields(void)
{
	struct tu_vec v;
	struct casa_msg m;

	if (tu_load("V3", &v) != 0)
		return;
	TU_ERR(decode(v.buf, v.len, &m), CASA_OK, "decode V3");
	check_fixed_v3(&m, 900);
	TU_EQ(m.present, CASA_HAS_FIXED | CASA_HAS_ACTION);
	TU_EQ(m.tlv_count, 2);
	TU_EQ(m.skipped_tlvs, 0);
	tu_free(&v);
}

/* V4 is V3 with TTL 0 (6.3), V5 is V1 with TTL 0. */
static void test_v4_v5_delete_fields(void)
{
	struct tu_vec v4, v5;
	struct casa_msg m;

	if (tu_load("V4", &v4) != 0 || tu_load("V5", &v5) != 0)
		return;
	TU_ERR(decode(v4.buf, v4.len, &m), CASA_OK, "decode V4");
	check_fixed_v3(&m, 0);
	TU_EQ(m.present, CASA_HAS_FIXED | CASA_HAS_ACTION);
	TU_ERR(decode(v5.buf, v5.len, &m), CASA_OK, "decode V5");
	check_wildcard_v1(&m, 0);
	tu_free(&v4);
	tu_free(&v5);
}

/* V6: the 40-byte FIN|ACK of trace 503; V7: a 41-byte packet, 3 pad bytes, SENDER_INFO. */
static void test_v6_v7_ip_packet_fields(void)
{
	struct tu_vec v6, v7;
	struct casa_msg m;

	if (tu_load("V6", &v6) != 0 || tu_load("V7", &v7) != 0)
		return;
	TU_ERR(decode(v6.buf, v6.len, &m), CASA_OK, "decode V6");
	TU_EQ(m.type, CASA_MSG_IP_PACKET);
	TU_EQ(m.present, CASA_HAS_IP_PACKET);
	TU_EQ(m.ip_pkt_len, 40);
	TU_CHECK(m.ip_pkt == v6.buf + 8, "V6: IP_PACKET must point into the buffer");
	if (m.ip_pkt == v6.buf + 8) {
		TU_EQ(be16(m.ip_pkt + 20), 4202);
		TU_EQ(m.ip_pkt[33], 0x11); /* FIN|ACK */
	}
	TU_ERR(decode(v7.buf, v7.len, &m), CASA_OK, "decode V7");
	TU_EQ(m.type, CASA_MSG_IP_PACKET);
	TU_EQ(m.present, CASA_HAS_IP_PACKET | CASA_HAS_SENDER_INFO);
	TU_EQ(m.tlv_count, 2);
	TU_EQ(m.ip_pkt_len, 41);
	TU_CHECK(m.ip_pkt == v7.buf + 8, "V7: IP_PACKET must point into the buffer");
	TU_EQ(m.sender.sender_id, FA_CTL);
	TU_EQ(m.sender.control_addr, FA_CTL);
	tu_free(&v6);
	tu_free(&v7);
}

/* The hello of V8 and V9 share the 28 value bytes of 6.6. */
static void check_hello_common(const struct casa_hello *h, uint8_t role, uint16_t flags,
			       uint32_t id)
{
	TU_EQ(h->role, role);
	TU_EQ(h->ext_version, 1);
	TU_EQ(h->flags, flags);
	TU_EQ(h->sender_id, id);
	TU_EQ(h->epoch, EPOCH_V8);
	TU_EQ(h->control_addr, id);
	TU_EQ(h->port, 1637);
	TU_EQ(h->hello_interval, 10);
	TU_EQ(h->hold_time, 30);
	TU_EQ(h->reserved, 0);
	TU_EQ(h->caps, 0x3F);
}

static void test_v8_hello_fields(void)
{
	struct tu_vec v;
	struct casa_msg m;

	if (tu_load("V8", &v) != 0)
		return;
	TU_ERR(decode(v.buf, v.len, &m), CASA_OK, "decode V8");
	TU_EQ(m.type, CASA_MSG_HELLO);
	TU_EQ(m.present, CASA_HAS_HELLO | CASA_HAS_NAME);
	TU_EQ(m.tlv_count, 2);
	check_hello_common(&m.hello, CASA_ROLE_FA, CASA_HELLO_WANT_WILDCARDS, FA_CTL);
	TU_EQ(m.name.len, 9);
	TU_CHECK(m.name.bytes == v.buf + 40, "V8: NAME must point into the buffer at offset 40");
	if (m.name.len == 9 && m.name.bytes != NULL)
		TU_BYTES(m.name.bytes, 9, (const uint8_t *)"C7200-Z55", 9, "V8 NAME");
	tu_free(&v);
}

static void test_v9_hello_ack_fields(void)
{
	struct tu_vec v;
	struct casa_msg m;

	if (tu_load("V9", &v) != 0)
		return;
	TU_ERR(decode(v.buf, v.len, &m), CASA_OK, "decode V9");
	TU_EQ(m.type, CASA_MSG_HELLO_ACK);
	TU_EQ(m.present, CASA_HAS_HELLO_ACK);
	TU_EQ(m.tlv_count, 1);
	check_hello_common(&m.hello, CASA_ROLE_SM, 0, SM_XCF);
	TU_EQ(m.hello.peer_sender_id, FA_CTL); /* echo of V8 */
	TU_EQ(m.hello.peer_epoch, EPOCH_V8);
	tu_free(&v);
}

static void test_v10_tickle_fields(void)
{
	struct tu_vec v;
	struct casa_msg m;

	if (tu_load("V10", &v) != 0)
		return;
	TU_ERR(decode(v.buf, v.len, &m), CASA_OK, "decode V10");
	TU_EQ(m.type, CASA_MSG_TICKLE);
	TU_EQ(m.present, CASA_HAS_TICKLE);
	TU_EQ(m.tickle.flags, 0);
	TU_EQ(m.tickle.protocol, 6);
	TU_EQ(m.tickle.src, CLIENT);
	TU_EQ(m.tickle.dst, VIP);
	TU_EQ(m.tickle.src_port, 4202);
	TU_EQ(m.tickle.dst_port, 23);
	TU_EQ(m.tickle.matched, CASA_INT_FIN);
	TU_EQ(m.tickle.tcp_flags, 0x11);
	TU_EQ(m.tickle.reserved, 0);
	TU_EQ(m.tickle.fa_time_ms, 123456);
	tu_free(&v);
}

/* V11: the 11 counters of the seed's `show ip casa stats`, Wildcards 6, Max Wildcards 6. */
static void test_v11_stats_fields(void)
{
	static const uint16_t ids[] = { 1, 2, 3, 4, 9, 10, 13, 14, 15, 16, 17 };
	struct tu_vec v;
	struct casa_msg m;

	if (tu_load("V11", &v) != 0)
		return;
	TU_ERR(decode(v.buf, v.len, &m), CASA_OK, "decode V11");
	TU_EQ(m.type, CASA_MSG_STATS);
	TU_EQ(m.present, CASA_HAS_STATS);
	TU_EQ(m.stats.sender_id, FA_CTL);
	TU_EQ(m.stats.interval, 30);
	TU_EQ(m.stats.count, 11);
	TU_EQ(m.stats.reserved, 0);
	for (size_t i = 0; i < ARRAY_SIZE(ids) && m.stats.count == ARRAY_SIZE(ids); i++) {
		TU_EQ(m.stats.entries[i].id, ids[i]);
		TU_EQ(m.stats.entries[i].reserved, 0);
		TU_EQ(m.stats.entries[i].value, i < 2 ? 6 : 0);
	}
	tu_free(&v);
}

static void check_auth(const struct casa_msg *m, const uint8_t *buf, uint8_t alg, uint32_t sender,
		       uint64_t seq, uint16_t offset)
{
	uint8_t dlen = alg == CASA_AUTH_HMAC_MD5 ? 16 : 32;

	TU_CHECK((m->present & CASA_HAS_AUTH) != 0, "AUTH not present");
	TU_EQ(m->auth.alg, alg);
	TU_EQ(m->auth.key_id, 1);
	TU_EQ(m->auth.reserved, 0);
	TU_EQ(m->auth.sender_id, sender);
	TU_EQ(m->auth.epoch, EPOCH_V8);
	TU_EQ(m->auth.seq, seq);
	TU_EQ(m->auth.timestamp, NOW_V12);
	TU_EQ(m->auth.digest_len, dlen);
	TU_EQ(m->auth.offset, offset);
	TU_CHECK(m->auth.digest == buf + offset + 28, "AUTH digest must point into the buffer");
	TU_EQ(m->skipped_tlvs, 0); /* AUTH is never counted as skipped */
}

/* 10.3: V12/V13 are V3 + AUTH (SHA256 / MD5), V14 is V2 + AUTH from the FA, seq 7. */
static void test_v12_v14_auth_fields(void)
{
	struct tu_vec v12, v13, v14;
	struct casa_msg m;

	if (tu_load("V12", &v12) != 0 || tu_load("V13", &v13) != 0 || tu_load("V14", &v14) != 0)
		return;
	TU_ERR(decode(v12.buf, v12.len, &m), CASA_OK, "decode V12");
	check_fixed_v3(&m, 900);
	TU_EQ(m.present, CASA_HAS_FIXED | CASA_HAS_ACTION | CASA_HAS_AUTH);
	TU_EQ(m.tlv_count, 3);
	check_auth(&m, v12.buf, CASA_AUTH_HMAC_SHA256, SM_XCF, 1, 52);
	TU_ERR(decode(v13.buf, v13.len, &m), CASA_OK, "decode V13");
	check_fixed_v3(&m, 900);
	check_auth(&m, v13.buf, CASA_AUTH_HMAC_MD5, SM_XCF, 1, 52);
	TU_ERR(decode(v14.buf, v14.len, &m), CASA_OK, "decode V14");
	TU_EQ(m.present, CASA_HAS_IP_PACKET | CASA_HAS_AUTH);
	check_syn_packet(&m, v14.buf);
	check_auth(&m, v14.buf, CASA_AUTH_HMAC_SHA256, FA_CTL, 7, 56);
	tu_free(&v12);
	tu_free(&v13);
	tu_free(&v14);
}

/* V15: V3 + DISPATCH_INFO, GRE to 9.67.156.161 without key (6.8). */
static void test_v15_dispatch_fields(void)
{
	static const uint8_t zero_mac[6];
	struct tu_vec v;
	struct casa_msg m;

	if (tu_load("V15", &v) != 0)
		return;
	TU_ERR(decode(v.buf, v.len, &m), CASA_OK, "decode V15");
	check_fixed_v3(&m, 900);
	TU_EQ(m.present, CASA_HAS_FIXED | CASA_HAS_ACTION | CASA_HAS_DISPATCH_INFO);
	TU_EQ(m.dispatch.method, CASA_DISPATCH_GRE);
	TU_EQ(m.dispatch.gre_flags, 0);
	TU_EQ(m.dispatch.reserved, 0);
	TU_EQ(m.dispatch.tunnel_endpoint, 0x09439CA1u);
	TU_EQ(m.dispatch.gre_key, 0);
	TU_BYTES(m.dispatch.nexthop_mac, 6, zero_mac, 6, "V15 next-hop MAC");
	TU_EQ(m.dispatch.reserved2, 0);
	tu_free(&v);
}

/* ---- re-encode (11.3: encode(decode(Vn)) == Vn) ------------------------------------------ */

static void check_reencode(const char *name, enum casa_mode mode)
{
	struct tu_vec v;
	struct casa_msg m;
	uint8_t *out;
	char what[64];
	int n;

	if (tu_load(name, &v) != 0)
		return;
	snprintf(what, sizeof(what), "%s re-encoded in %s mode", name,
		 mode == CASA_MODE_STRICT ? "strict" : "extended");
	TU_ERR(decode(v.buf, v.len, &m), CASA_OK, name);
	// The exact length must fit: the encoder may not need scratch room past the message.
	n = encode_exact(&m, mode, v.len, &out);
	TU_CHECK(n == (int)v.len, "%s: casa_encode returned %d, expected %zu", what, n, v.len);
	if (n > 0)
		TU_BYTES(out, (size_t)n, v.buf, v.len, what);
	free(out);
	tu_free(&v);
}

static void test_vectors_reencode_extended(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(v_names); i++)
		check_reencode(v_names[i], CASA_MODE_EXTENDED);
}

/* V1-V6 are the Cisco layouts without casalb TLVs, which strict mode sends unchanged (4.5). */
static void test_vectors_reencode_strict(void)
{
	for (size_t i = 0; i < 6; i++)
		check_reencode(v_names[i], CASA_MODE_STRICT);
}

/* 4.5 / casa.h: strict mode refuses casalb TLVs in 0x0101/0x0102/0x0601 (V7 SENDER_INFO,
 * V12-V14 AUTH, V15 DISPATCH_INFO). */
static void test_strict_refuses_casalb_tlvs(void)
{
	static const char *const names[] = { "V7", "V12", "V13", "V14", "V15" };
	uint8_t out[256];

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		struct tu_vec v;
		struct casa_msg m;
		int n;

		if (tu_load(names[i], &v) != 0)
			continue;
		TU_ERR(decode(v.buf, v.len, &m), CASA_OK, names[i]);
		n = casa_encode(&m, CASA_MODE_STRICT, out, sizeof(out));
		TU_CHECK(n < 0, "%s: strict casa_encode returned %d, expected a negative errno",
			 names[i], n);
		tu_free(&v);
	}
}

/* ---- per-type encoders (11.3) against V1-V11, from the spec's field values ------------- */

static struct casa_affinity wildcard_v1(uint16_t ttl)
{
	return (struct casa_affinity){
		.protocol = 6,
		.dst = VIP,
		.dst_mask = 0xFFFFFFFFu,
		.dst_port = 80,
		.ttl = ttl,
	};
}

static struct casa_affinity fixed_v3(uint16_t ttl)
{
	return (struct casa_affinity){
		.flags = CASA_AFF_F_DISPATCH_L2,
		.protocol = 6,
		.src = CLIENT,
		.src_mask = 0xFFFFFFFFu,
		.dst = VIP,
		.dst_mask = 0xFFFFFFFFu,
		.src_port = 2771,
		.dst_port = 23,
		.fwd = TARGET,
		.ttl = ttl,
	};
}

/* Compare a per-type encoder's output (written into an exact-size buffer) with a vector. */
static void check_built(const char *name, const uint8_t *out, size_t n)
{
	struct tu_vec v;
	char what[64];

	if (tu_load(name, &v) != 0)
		return;
	snprintf(what, sizeof(what), "per-type encoder output vs %s", name);
	TU_BYTES(out, n, v.buf, v.len, what);
	tu_free(&v);
}

static void test_encode_wildcard_v1_v5(void)
{
	struct casa_action a = {
		.interest_addr = SM_XCF,
		.interest_port = 1637,
		.criteria = 0x8100,
		.x = 0x8100,
	};
	struct casa_affinity aff = wildcard_v1(60);
	uint8_t *out = tu_alloc(68);

	check_built("V1", out, casa_encode_wildcard(out, 68, &aff, &a));
	aff.ttl = 0;
	check_built("V5", out, casa_encode_wildcard(out, 68, &aff, &a));
	free(out);
}

static void test_encode_fixed_v3_v4(void)
{
	struct casa_action a = {
		.interest_addr = SM_XCF,
		.interest_port = 1637,
		.criteria = 0x0002,
		.x = 0x0002,
	};
	struct casa_affinity aff = fixed_v3(900);
	uint8_t *out = tu_alloc(52);
	struct tu_vec n17;

	check_built("V3", out, casa_encode_fixed(out, 52, &aff, &a));
	aff.ttl = 0;
	check_built("V4", out, casa_encode_fixed(out, 52, &aff, &a));
	// A delete may omit ACTION (casa.h); the result is N17, "a valid minimal delete".
	if (tu_load("N17", &n17) == 0) {
		size_t n = casa_encode_fixed(out, 52, &aff, NULL);

		TU_BYTES(out, n, n17.buf, n17.len, "casa_encode_fixed(ttl 0, NULL action) vs N17");
		tu_free(&n17);
	}
	free(out);
}

static void test_encode_ip_packet_v2_v6(void)
{
	struct tu_vec v2, v6;
	uint8_t *out = tu_alloc(56);

	if (tu_load("V2", &v2) != 0 || tu_load("V6", &v6) != 0) {
		free(out);
		return;
	}
	check_built("V2", out, casa_encode_ip_packet(out, 56, v2.buf + 8, 48));
	check_built("V6", out, casa_encode_ip_packet(out, 48, v6.buf + 8, 40));
	tu_free(&v2);
	tu_free(&v6);
	free(out);
}

static struct casa_hello hello_v8(void)
{
	return (struct casa_hello){
		.role = CASA_ROLE_FA,
		.ext_version = 1,
		.flags = CASA_HELLO_WANT_WILDCARDS,
		.sender_id = FA_CTL,
		.epoch = EPOCH_V8,
		.control_addr = FA_CTL,
		.port = 1637,
		.hello_interval = 10,
		.hold_time = 30,
		.caps = 0x3F,
	};
}

static void test_encode_hello_v8_v9(void)
{
	struct casa_hello h = hello_v8();
	uint8_t *out = tu_alloc(52);

	check_built("V8", out, casa_encode_hello(out, 52, CASA_MSG_HELLO, &h, "C7200-Z55"));
	h.role = CASA_ROLE_SM;
	h.flags = 0;
	h.sender_id = SM_XCF;
	h.control_addr = SM_XCF;
	h.peer_sender_id = FA_CTL;
	h.peer_epoch = EPOCH_V8;
	check_built("V9", out, casa_encode_hello(out, 44, CASA_MSG_HELLO_ACK, &h, NULL));
	free(out);
}

static void test_encode_tickle_v10(void)
{
	struct casa_tickle t = {
		.protocol = 6,
		.src = CLIENT,
		.dst = VIP,
		.src_port = 4202,
		.dst_port = 23,
		.matched = CASA_INT_FIN,
		.tcp_flags = 0x11,
		.fa_time_ms = 123456,
	};
	uint8_t *out = tu_alloc(32);

	check_built("V10", out, casa_encode_tickle(out, 32, &t));
	free(out);
}

static void test_encode_stats_v11(void)
{
	static const uint16_t ids[] = { 1, 2, 3, 4, 9, 10, 13, 14, 15, 16, 17 };
	struct casa_stats *s = calloc(1, sizeof(*s));
	uint8_t *out = tu_alloc(152);

	if (s == NULL)
		abort();
	s->sender_id = FA_CTL;
	s->interval = 30;
	s->count = ARRAY_SIZE(ids);
	for (size_t i = 0; i < ARRAY_SIZE(ids); i++) {
		s->entries[i].id = ids[i];
		s->entries[i].value = i < 2 ? 6 : 0;
	}
	check_built("V11", out, casa_encode_stats(out, 152, s));
	free(s);
	free(out);
}

/* 11.3: the per-type encoders return 0 when cap is short or a field is invalid. */
static void test_type_encoders_reject(void)
{
	struct casa_action a = { .interest_addr = SM_XCF, .interest_port = 1637, .criteria = 2 };
	struct casa_affinity aff = fixed_v3(900);
	struct casa_hello h = hello_v8();
	struct casa_tickle t = { .protocol = 0 };
	struct casa_stats *s = calloc(1, sizeof(*s));
	uint8_t out[256] = { 0 }, pkt[48] = { 0x45, 0x00, 0x00, 48 };
	char long_name[CASA_NAME_MAX + 2];

	if (s == NULL)
		abort();
	TU_EQ(casa_encode_fixed(out, 51, &aff, &a), 0);   /* cap short by one */
	TU_EQ(casa_encode_fixed(out, 52, &aff, NULL), 0); /* ACTION required, TTL > 0 */
	aff.protocol = 0;                                 /* N21 */
	TU_EQ(casa_encode_fixed(out, sizeof(out), &aff, &a), 0);
	aff = wildcard_v1(60);
	aff.src = VIP; /* N22: address outside mask */
	TU_EQ(casa_encode_wildcard(out, sizeof(out), &aff, &a), 0);
	aff = wildcard_v1(60);
	TU_EQ(casa_encode_wildcard(out, 67, &aff, &a), 0);
	TU_EQ(casa_encode_wildcard(out, sizeof(out), &aff, NULL), 0); /* ACTION needed, TTL 60 */
	pkt[0] = 0x65;                                                /* N19: version 6 */
	TU_EQ(casa_encode_ip_packet(out, sizeof(out), pkt, sizeof(pkt)), 0);
	pkt[0] = 0x45;
	TU_EQ(casa_encode_ip_packet(out, 55, pkt, sizeof(pkt)), 0);
	TU_EQ(casa_encode_ip_packet(out, sizeof(out), pkt, 19), 0);
	TU_EQ(casa_encode_hello(out, 51, CASA_MSG_HELLO, &h, "C7200-Z55"), 0);
	memset(long_name, 'x', CASA_NAME_MAX + 1);
	long_name[CASA_NAME_MAX + 1] = '\0';
	TU_EQ(casa_encode_hello(out, sizeof(out), CASA_MSG_HELLO, &h, long_name), 0);
	h.hold_time = 9; /* below the hello interval */
	TU_EQ(casa_encode_hello(out, sizeof(out), CASA_MSG_HELLO, &h, NULL), 0);
	h = hello_v8();
	h.role = 3;
	TU_EQ(casa_encode_hello(out, sizeof(out), CASA_MSG_HELLO, &h, NULL), 0);
	TU_EQ(casa_encode_hello(out, sizeof(out), CASA_MSG_TICKLE, &h, NULL), 0);
	TU_EQ(casa_encode_tickle(out, sizeof(out), &t), 0); /* protocol 0 */
	s->count = CASA_STATS_MAX + 1;
	TU_EQ(casa_encode_stats(out, sizeof(out), s), 0);
	s->count = 1;
	TU_EQ(casa_encode_stats(out, 31, s), 0);
	free(s);
}

/* 6.1 / 6.2 defaults give the actions of V1 and V3 for the captured SM 9.67.156.73:1637. */
static void test_action_defaults(void)
{
	struct casa_action a;

	memset(&a, 0xA5, sizeof(a));
	casa_action_wildcard_default(&a, SM_XCF, 1637);
	check_v1_action(&a);
	memset(&a, 0xA5, sizeof(a));
	casa_action_fixed_default(&a, SM_XCF, 1637);
	TU_EQ(a.interest_addr, SM_XCF);
	TU_EQ(a.interest_port, 1637);
	TU_EQ(a.criteria, CASA_INT_SYN);
	TU_EQ(a.x, CASA_INT_SYN);
	TU_EQ(a.tickle, 0);
	TU_EQ(a.dispatch, 0);
}

/* casa.h: casa_encode returns -ENOSPC for a short buffer, -EINVAL for what would not decode. */
static void test_encode_errors(void)
{
	struct tu_vec v;
	struct casa_msg m, bad;
	uint8_t *out;
	int n;

	if (tu_load("V1", &v) != 0)
		return;
	TU_ERR(decode(v.buf, v.len, &m), CASA_OK, "decode V1");
	n = encode_exact(&m, CASA_MODE_EXTENDED, v.len - 1, &out);
	TU_EQI(n, -ENOSPC);
	free(out);
	out = malloc(256);
	if (out == NULL)
		abort();
	bad = m;
	bad.type = 0x0999;
	TU_EQI(casa_encode(&bad, CASA_MODE_EXTENDED, out, 256), -EINVAL);
	bad = m;
	bad.present &= ~(uint32_t)CASA_HAS_WILDCARD; /* no primary TLV */
	TU_EQI(casa_encode(&bad, CASA_MODE_EXTENDED, out, 256), -EINVAL);
	bad = m;
	bad.present &= ~(uint32_t)CASA_HAS_ACTION; /* TTL 60 without ACTION: 8 step 7 */
	TU_EQI(casa_encode(&bad, CASA_MODE_EXTENDED, out, 256), -EINVAL);
	bad = m;
	bad.aff.protocol = 256; /* 5.1 */
	TU_EQI(casa_encode(&bad, CASA_MODE_EXTENDED, out, 256), -EINVAL);
	bad = m;
	bad.action.interest_addr = 0; /* 5.4: criteria set, no interest address */
	TU_EQI(casa_encode(&bad, CASA_MODE_EXTENDED, out, 256), -EINVAL);
	bad = m;
	bad.present |= CASA_HAS_HELLO; /* HELLO is not allowed in a wildcard message (4.3) */
	TU_CHECK(casa_encode(&bad, CASA_MODE_EXTENDED, out, 256) < 0,
		 "casa_encode must refuse a TLV the message type does not allow");
	free(out);
	tu_free(&v);
}

/* ---- F1-F3: whole datagrams (10.2) ------------------------------------------------------- */

/* The UDP payload of the IPv4/UDP datagram at ip[0..len); NULL if it is not one. */
static const uint8_t *udp_payload(const uint8_t *ip, size_t len, size_t *plen)
{
	size_t ihl = (size_t)(ip[0] & 0x0F) * 4, ulen;

	if (len < 28 || ip[0] >> 4 != 4 || ip[9] != 17 || len < ihl + 8)
		return NULL;
	ulen = be16(ip + ihl + 4);
	if (ulen < 8 || ihl + ulen > len || be16(ip + ihl) != 1637 || be16(ip + ihl + 2) != 1637)
		return NULL;
	*plen = ulen - 8;
	return ip + ihl + 8;
}

static void check_datagram(const char *fname, const char *vname)
{
	struct tu_vec f, v;
	struct casa_msg mf, mv;
	const uint8_t *p;
	size_t plen = 0;

	if (tu_load(fname, &f) != 0 || tu_load(vname, &v) != 0)
		return;
	p = udp_payload(f.buf, f.len, &plen);
	TU_CHECK(p != NULL, "%s is not an IPv4/UDP 1637 datagram", fname);
	if (p != NULL) {
		TU_BYTES(p, plen, v.buf, v.len, fname);
		TU_ERR(decode(p, plen, &mf), CASA_OK, fname);
		TU_ERR(decode(v.buf, v.len, &mv), CASA_OK, vname);
		TU_CHECK(casa_msg_equal(&mf, &mv), "%s payload must decode equal to %s", fname,
			 vname);
	}
	tu_free(&f);
	tu_free(&v);
}

static void test_datagrams_f1_f3(void)
{
	check_datagram("F1", "V1");
	check_datagram("F3", "V3");
}

/* F2 is GRE (protocol 47, 4-byte header 0000 0800) around the IP/UDP interest message. */
static void test_datagram_f2_gre(void)
{
	struct tu_vec f, v;
	struct casa_msg mf, mv;
	const uint8_t *p = NULL, *inner;
	size_t ihl, plen = 0;

	if (tu_load("F2", &f) != 0 || tu_load("V2", &v) != 0)
		return;
	ihl = (size_t)(f.buf[0] & 0x0F) * 4;
	TU_EQ(f.buf[9], 47);
	TU_EQ(be32(f.buf + ihl), 0x00000800u);
	inner = f.buf + ihl + 4;
	if (f.buf[9] == 47 && f.len > ihl + 4)
		p = udp_payload(inner, f.len - ihl - 4, &plen);
	TU_CHECK(p != NULL, "F2: no inner IPv4/UDP 1637 datagram");
	if (p != NULL) {
		TU_BYTES(p, plen, v.buf, v.len, "F2 inner payload vs V2");
		TU_ERR(decode(p, plen, &mf), CASA_OK, "F2 inner");
		TU_ERR(decode(v.buf, v.len, &mv), CASA_OK, "V2");
		TU_CHECK(casa_msg_equal(&mf, &mv), "F2 inner payload must decode equal to V2");
	}
	tu_free(&f);
	tu_free(&v);
}

/* ---- N1-N29 (10.4) ------------------------------------------------------------------------ */

static void check_negative(int i)
{
	struct tu_vec v;
	struct casa_msg m;
	enum casa_err got;
	char name[16], what[96];

	snprintf(name, sizeof(name), "N%d", i);
	if (tu_load(name, &v) != 0)
		return;
	TU_CHECK(v.has_expect, "%s: no 'expect' clause in the vector file", name);
	got = decode(v.buf, v.len, &m);
	snprintf(what, sizeof(what), "casa_decode(%s, %zu bytes)", name, v.len);
	TU_ERR(got, v.expect, what);
	if (got == CASA_OK && v.expect == CASA_OK && v.expect_skipped >= 0)
		TU_CHECK(m.skipped_tlvs == (unsigned)v.expect_skipped,
			 "%s: skipped_tlvs got %u, expected %d", name, m.skipped_tlvs,
			 v.expect_skipped);
	tu_free(&v);
}

static void test_negative_vectors(void)
{
	for (int i = 1; i <= 29; i++)
		check_negative(i);
}

/* N12 has 3 TLVs with one skipped; N26 has 16 with 14 skipped (10.4). */
static void test_tlv_counts(void)
{
	struct tu_vec n12, n26;
	struct casa_msg m;

	if (tu_load("N12", &n12) != 0 || tu_load("N26", &n26) != 0)
		return;
	TU_ERR(decode(n12.buf, n12.len, &m), CASA_OK, "decode N12");
	TU_EQ(m.tlv_count, 3);
	TU_EQ(m.present, CASA_HAS_FIXED | CASA_HAS_ACTION);
	TU_ERR(decode(n26.buf, n26.len, &m), CASA_OK, "decode N26");
	TU_EQ(m.tlv_count, 16);
	TU_EQ(m.skipped_tlvs, 14);
	tu_free(&n12);
	tu_free(&n26);
}

/* N29 (V12 with the last digest bit flipped) decodes, but the policy gives AUTH_BAD. */
static void test_n29_verify_bad(void)
{
	struct casa_auth_params p = { .freshness_s = 120, .rollover_s = 180 };
	struct casa_key key = { .alg = CASA_AUTH_HMAC_SHA256, .id = 1, .len = 15 };
	struct casa_auth_ctx *ctx = casa_auth_create(&p);
	struct tu_vec v;
	struct casa_msg m;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
	memcpy(key.bytes, "casalb-test-key", 15);
	TU_EQI(casa_auth_set_key(ctx, &key, NOW_V12), 0);
	if (tu_load("N29", &v) == 0) {
		TU_ERR(decode(v.buf, v.len, &m), CASA_OK, "decode N29");
		TU_ERR(casa_verify(ctx, v.buf, v.len, &m, NOW_V12), CASA_E_AUTH_BAD, "verify N29");
		tu_free(&v);
	}
	casa_auth_destroy(ctx);
}

/* Skipped TLVs are not "present", so re-encoding N12 gives V3 (casa.h, casa_encode). */
static void test_skipped_tlvs_not_reencoded(void)
{
	struct tu_vec n12, v3;
	struct casa_msg m;
	uint8_t out[128];
	int n;

	if (tu_load("N12", &n12) != 0 || tu_load("V3", &v3) != 0)
		return;
	TU_ERR(decode(n12.buf, n12.len, &m), CASA_OK, "decode N12");
	n = casa_encode(&m, CASA_MODE_EXTENDED, out, sizeof(out));
	TU_BYTES(out, n > 0 ? (size_t)n : 0, v3.buf, v3.len, "encode(decode(N12)) vs V3");
	tu_free(&n12);
	tu_free(&v3);
}

/* An IP_PACKET message carrying an n-byte packet, unpadded (a valid last TLV, 4.2), in an
 * exactly-sized heap buffer of 8 + n bytes. */
static uint8_t *ip_message(size_t n)
{
	uint8_t *b = tu_alloc(8 + n);

	memset(b, 0, 8 + n);
	b[1] = 0x01, b[2] = 0x06, b[3] = 0x01; /* version 1, type 0x0601 */
	b[4] = 0x06, b[5] = 0x01;              /* TLV 0x0601 */
	b[6] = (uint8_t)((n + 4) >> 8), b[7] = (uint8_t)(n + 4);
	b[8] = 0x45;                                   /* IPv4, IHL 5 */
	b[10] = (uint8_t)(n >> 8), b[11] = (uint8_t)n; /* total length */
	return b;
}

/* 8 step 1 and casa.h: max_len 0 means 9216, values above 65507 clamp to 65507; both limits
 * are inclusive, and SHORT is checked before TOO_BIG. */
static void test_size_limits(void)
{
	const size_t hard_pkt = CASA_MSG_MAX_HARD - 8, dflt_pkt = CASA_MSG_MAX_DEFAULT - 8;
	uint8_t *hard = ip_message(hard_pkt), *dflt = ip_message(dflt_pkt);
	uint8_t *over = ip_message(hard_pkt + 1), *dflt_over = ip_message(dflt_pkt + 4);
	struct tu_vec v1;
	struct casa_msg m;

	if (tu_load("V1", &v1) == 0) {
		TU_ERR(casa_decode(v1.buf, v1.len, 67, &m), CASA_E_TOO_BIG, "V1 with max_len 67");
		TU_ERR(casa_decode(v1.buf, v1.len, 68, &m), CASA_OK, "V1 with max_len 68");
		TU_ERR(casa_decode(v1.buf, 3, 2, &m), CASA_E_SHORT, "3 bytes, max_len 2");
		tu_free(&v1);
	}
	TU_ERR(decode(dflt, 8 + dflt_pkt, &m), CASA_OK, "9216 bytes, max_len 0");
	TU_ERR(decode(dflt_over, 8 + dflt_pkt + 4, &m), CASA_E_TOO_BIG, "9220 bytes, max_len 0");
	TU_ERR(casa_decode(hard, 8 + hard_pkt, 0, &m), CASA_E_TOO_BIG, "65507 bytes, max_len 0");
	TU_ERR(casa_decode(hard, 8 + hard_pkt, CASA_MSG_MAX_HARD, &m), CASA_OK,
	       "65507 bytes, max_len 65507");
	TU_EQ(m.ip_pkt_len, hard_pkt);
	TU_ERR(casa_decode(hard, 8 + hard_pkt, 100000, &m), CASA_OK,
	       "65507 bytes, max_len 100000 (clamped)");
	TU_ERR(casa_decode(over, 8 + hard_pkt + 1, 100000, &m), CASA_E_TOO_BIG,
	       "65508 bytes, max_len 100000 (clamped to 65507)");
	free(hard);
	free(dflt);
	free(over);
	free(dflt_over);
}

/* The IP_PACKET encoder pads like every encoder (4.2), and returns 0 when cap is short. */
static void test_encode_ip_packet_sizes(void)
{
	const size_t n = CASA_MSG_MAX_HARD - 11; /* largest packet whose padded message fits */
	uint8_t *src = ip_message(n), *out = tu_alloc(n + 8);
	struct casa_msg m;
	size_t len;

	len = casa_encode_ip_packet(out, n + 8, src + 8, n);
	TU_EQ(len, n + 8);
	if (len == n + 8) {
		TU_BYTES(out, len, src, len, "65496-byte packet encoded");
		TU_ERR(casa_decode(out, len, CASA_MSG_MAX_HARD, &m), CASA_OK, "65500-byte message");
	}
	TU_EQ(casa_encode_ip_packet(out, 27, src + 8, 20), 0);
	src[10] = 0, src[11] = 20;
	TU_EQ(casa_encode_ip_packet(out, 28, src + 8, 20), 28);
	free(src);
	free(out);
}

/* ---- field checks and TLV rules beyond N1-N29 (4.2, 4.3, 5.x, 6.x, 8 steps 6 and 8) ---- */

#define ANY_ERROR (-1)

/* A vector, cut to `keep` bytes (0: whole), with hex patched in at `off` and hex appended. */
struct edit {
	const char *base;
	size_t keep;
	size_t off;
	const char *patch;
	const char *append;
	int expect;  /* enum casa_err, or ANY_ERROR */
	int skipped; /* expected skipped_tlvs when OK, -1 unchecked */
	const char *why;
};

static const struct edit edits[] = {
	/* 5.1 wildcard: protocol <= 255, address within mask; masks may be non-contiguous */
	{ "V1", 0, 10, "0100", NULL, CASA_E_FIELD, -1, "wildcard protocol 256" },
	{ "V1", 0, 10, "0000", NULL, CASA_OK, 0, "wildcard protocol 0 (any)" },
	{ "V1", 0, 10, "0011", NULL, CASA_OK, 0, "wildcard protocol 17" },
	{ "V1", 0, 12, "09000000ff000000", NULL, CASA_OK, 0, "source 9.0.0.0/8" },
	{ "V1", 0, 12, "09004300ff00ff00", NULL, CASA_OK, 0, "non-contiguous source mask" },
	{ "V1", 0, 12, "09004301ff00ff00", NULL, CASA_E_FIELD, -1, "source outside its mask" },
	{ "V1", 0, 24, "ffffff00", NULL, CASA_E_FIELD, -1, "destination outside its mask" },
	{ "V1", 0, 20, "09439d00ffffff00", NULL, CASA_OK, 0, "destination /24" },
	{ "V1", 0, 8, "ffff", NULL, CASA_OK, 0, "unknown flag bits kept" },
	{ "V1", 0, 38, "beef", NULL, CASA_OK, 0, "reserved kept" },
	{ "V1", 0, 44, "ffffffff", NULL, CASA_OK, 0, "WILDCARD_AUX value is opaque" },
	/* 5.4 action: criteria need an interest address and port */
	{ "V1", 0, 52, "0000000000000000", NULL, CASA_OK, 0, "no criteria, no interest" },
	{ "V1", 0, 56, "0000", NULL, CASA_E_FIELD, -1, "criteria without interest port" },
	{ "V1", 0, 52, "00000000", NULL, CASA_E_FIELD, -1, "criteria without interest address" },
	{ "V1", 0, 62, "ffff", NULL, CASA_OK, 0, "any tickle criteria" },
	/* 5.2 fixed: protocol 1-255, addresses non-zero, forward address when TTL > 0 */
	{ "V3", 0, 10, "0100", NULL, CASA_E_FIELD, -1, "fixed protocol 256" },
	{ "V3", 0, 10, "0011", NULL, CASA_OK, 0, "fixed protocol 17" },
	{ "V3", 0, 12, "00000000", NULL, CASA_E_FIELD, -1, "fixed source 0" },
	{ "V3", 0, 16, "00000000", NULL, CASA_E_FIELD, -1, "fixed destination 0" },
	{ "V3", 0, 24, "00000000", NULL, CASA_E_FIELD, -1, "forward 0 with TTL 900" },
	{ "V4", 0, 24, "00000000", NULL, CASA_OK, 0, "forward 0 in a delete" },
	{ "V3", 0, 8, "0000", NULL, CASA_OK, 0, "fixed without the L2 flag" },
	{ "V3", 0, 36, "00000000", NULL, CASA_E_FIELD, -1, "SYN criteria, no interest address" },
	/* 6.6 hello: role 1/2, version >= 1, interval >= 1, hold >= interval */
	{ "V8", 0, 8, "00", NULL, CASA_E_FIELD, -1, "hello role 0" },
	{ "V8", 0, 8, "03", NULL, CASA_E_FIELD, -1, "hello role 3" },
	{ "V8", 0, 8, "01", NULL, CASA_OK, 0, "hello role SM" },
	{ "V8", 0, 9, "00", NULL, CASA_E_FIELD, -1, "extension version 0" },
	{ "V8", 0, 9, "ff", NULL, CASA_OK, 0, "extension version 255" },
	{ "V8", 0, 26, "0000", NULL, CASA_E_FIELD, -1, "hello interval 0" },
	{ "V8", 0, 28, "0009", NULL, CASA_E_FIELD, -1, "hold time below hello interval" },
	{ "V8", 0, 28, "000a", NULL, CASA_OK, 0, "hold time equal to hello interval" },
	{ "V8", 0, 10, "fff8", NULL, CASA_OK, 0, "unknown hello flags ignored" },
	{ "V8", 0, 32, "ffffff00", NULL, CASA_OK, 0, "unknown capabilities ignored" },
	{ "V9", 0, 28, "0001", NULL, CASA_E_FIELD, -1, "hello-ack hold time below interval" },
	{ "V9", 0, 8, "03", NULL, CASA_E_FIELD, -1, "hello-ack role 3" },
	/* 6.5 tickle: protocol 1-255 */
	{ "V10", 0, 10, "0000", NULL, CASA_E_FIELD, -1, "tickle protocol 0" },
	{ "V10", 0, 10, "0100", NULL, CASA_E_FIELD, -1, "tickle protocol 256" },
	{ "V10", 0, 10, "00ff", NULL, CASA_OK, 0, "tickle protocol 255" },
	/* 6.8 dispatch info: method 1/2, tunnel endpoint for GRE */
	{ "V15", 0, 56, "00", NULL, CASA_E_FIELD, -1, "dispatch method 0" },
	{ "V15", 0, 56, "03", NULL, CASA_E_FIELD, -1, "dispatch method 3" },
	{ "V15", 0, 60, "00000000", NULL, CASA_E_FIELD, -1, "GRE without tunnel endpoint" },
	{ "V15", 0, 56, "0100000000000000", NULL, CASA_OK, 0, "L2 without tunnel endpoint" },
	{ "V15", 0, 57, "03", NULL, CASA_OK, 0, "GRE key and sequence flags" },
	{ "V15", 0, 68, "0200005e0001", NULL, CASA_OK, 0, "next-hop MAC" },
	/* 5.5 IP packet: version 4, 20 <= IHL*4 <= total length == N; fragments allowed */
	{ "V2", 0, 8, "44", NULL, CASA_E_IPPKT, -1, "IHL 4" },
	{ "V2", 0, 8, "4f", NULL, CASA_E_IPPKT, -1, "IHL*4 60 above total length 48" },
	{ "V2", 0, 8, "4c", NULL, CASA_OK, 0, "IHL*4 equal to total length" },
	{ "V2", 0, 10, "0000", NULL, CASA_E_IPPKT, -1, "inner total length 0" },
	{ "V2", 0, 14, "2000", NULL, CASA_OK, 0, "a fragment (MF)" },
	{ "V2", 0, 14, "00b9", NULL, CASA_OK, 0, "a non-first fragment" },
	/* 4.2: a known TLV the message type does not allow is treated as unknown */
	{ "V3", 0, 0, NULL, "7012000541000000", CASA_OK, 1, "NAME in FIXED: skipped" },
	{ "V3", 0, 0, NULL, "0505000805040000", CASA_OK, 1, "WILDCARD_AUX in FIXED: skipped" },
	{ "V3", 0, 0, NULL,
	  "f0010020"
	  "0201000101010102"
	  "3b522e8001010102"
	  "0665000a001e0000"
	  "0000003f",
	  CASA_E_UNSUPPORTED, -1, "HELLO (M=1) in FIXED" },
	{ "V2", 0, 0, NULL, "701400180200000009439ca1000000000000000000000000", CASA_OK, 1,
	  "DISPATCH_INFO in IP_PACKET: skipped" },
	{ "V8", 0, 0, NULL, "7011000c0101010201010102", CASA_OK, 1, "SENDER_INFO in HELLO" },
	{ "V11", 0, 0, NULL, "7012000541000000", CASA_OK, 1, "NAME in STATS: skipped" },
	{ "V3", 0, 0, NULL, "7011000c0101010201010102", CASA_OK, 0, "SENDER_INFO in FIXED" },
	{ "V10", 0, 0, NULL, "7011000c0101010201010102", CASA_OK, 0, "SENDER_INFO in TICKLE" },
	{ "V10", 0, 0, NULL,
	  "ff01003c0201000009439c493b522e8000000000000000013b532a52"
	  "45016e867ed7e08b6967a33af00959c0488a539c4b817e01be69e7558ee31525",
	  CASA_OK, 0, "AUTH is allowed in every message type" },
	/* 4.3: each TLV at most once */
	{ "V8", 0, 0, NULL, "7012000541000000", CASA_E_DUP, -1, "second NAME" },
	{ "V7", 0, 0, NULL, "7011000c0101010201010102", CASA_E_DUP, -1, "second SENDER_INFO" },
	{ "V15", 0, 0, NULL, "701400180200000009439ca1000000000000000000000000", CASA_E_DUP, -1,
	  "second DISPATCH_INFO" },
	{ "V1", 0, 0, NULL, "0505000805040000", CASA_E_DUP, -1, "second WILDCARD_AUX" },
	/* 4.3 lengths */
	{ "V7", 52, 0, NULL,
	  "701100100101010201010102"
	  "00000000",
	  CASA_E_TLV_LEN, -1, "SENDER_INFO length 16" },
	{ "V2", 4, 0, NULL,
	  "06010017"
	  "45000013000000000000000000000000000000"
	  "00",
	  CASA_E_TLV_LEN, -1, "IP_PACKET with a 19-byte packet" },
	{ "V8", 36, 6, "0024", "00000000", CASA_E_TLV_LEN, -1, "HELLO length 36" },
	{ "V11", 0, 6, "0095", "00000000", CASA_E_TLV_LEN, -1, "STATS length 149" },
	{ "V11", 0, 16, "000a", NULL, ANY_ERROR, -1, "STATS count 10 in a TLV sized for 11" },
	{ "V12", 104, 54, "0034", NULL, CASA_E_TLV_LEN, -1, "SHA256 AUTH of length 52" },
	{ "V13", 0, 54, "003c", "00000000000000000000000000000000", CASA_E_TLV_LEN, -1,
	  "MD5 AUTH of length 60" },
};

/* Apply one edit into an exactly-sized heap buffer; NULL if the row itself is malformed. */
static uint8_t *edit_apply(const struct edit *e, size_t *len)
{
	uint8_t patch[64], app[256], *b;
	long np = 0, na = 0;
	struct tu_vec v;
	size_t keep;

	if (tu_load(e->base, &v) != 0)
		return NULL;
	keep = e->keep ? e->keep : v.len;
	np = e->patch ? tu_hex(e->patch, patch, sizeof(patch)) : 0;
	na = e->append ? tu_hex(e->append, app, sizeof(app)) : 0;
	if (np < 0 || na < 0 || keep > v.len || e->off + (size_t)np > keep) {
		tu_free(&v);
		return NULL;
	}
	*len = keep + (size_t)na;
	b = tu_alloc(*len);
	memcpy(b, v.buf, keep);
	memcpy(b + e->off, patch, (size_t)np);
	memcpy(b + keep, app, (size_t)na);
	tu_free(&v);
	return b;
}

static void check_edit(const struct edit *e)
{
	struct casa_msg m;
	enum casa_err got;
	size_t len = 0;
	uint8_t *b = edit_apply(e, &len);

	if (b == NULL) {
		TU_CHECK(false, "edit row \"%s\" is malformed", e->why);
		return;
	}
	got = decode(b, len, &m);
	if (e->expect == ANY_ERROR)
		TU_CHECK(got != CASA_OK && got <= CASA_E_FIELD,
			 "%s (%s): got %s, expected an error", e->why, e->base, tu_err_ident(got));
	else
		TU_CHECK(got == (enum casa_err)e->expect, "%s (%s): got %s, expected %s", e->why,
			 e->base, tu_err_ident(got), tu_err_ident(e->expect));
	if (got == CASA_OK && e->skipped >= 0)
		TU_CHECK(m.skipped_tlvs == (unsigned)e->skipped, "%s: skipped_tlvs %u, expected %d",
			 e->why, m.skipped_tlvs, e->skipped);
	free(b);
}

static void test_field_checks_and_tlv_rules(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(edits); i++)
		check_edit(&edits[i]);
}

/* A tickle (V10) followed by a PKT_EXCERPT of n packet bytes (6.5: 20..128). */
static uint8_t *tickle_with_excerpt(size_t n, size_t *len)
{
	struct tu_vec v;
	uint8_t *b;

	if (tu_load("V10", &v) != 0)
		return NULL;
	*len = v.len + ALIGN4(8 + n);
	b = tu_alloc(*len);
	memset(b, 0, *len);
	memcpy(b, v.buf, v.len);
	b[v.len] = 0x70, b[v.len + 1] = 0x13;
	b[v.len + 2] = (uint8_t)((8 + n) >> 8), b[v.len + 3] = (uint8_t)(8 + n);
	b[v.len + 4] = 0x02, b[v.len + 5] = 0x00; /* original length 512 */
	memset(b + v.len + 8, 0x45, n);
	tu_free(&v);
	return b;
}

/* V8 with its NAME replaced by one of n bytes (6.6: 1..64). */
static uint8_t *hello_with_name(size_t n, size_t *len)
{
	struct tu_vec v;
	uint8_t *b;

	if (tu_load("V8", &v) != 0)
		return NULL;
	*len = 36 + ALIGN4(4 + n);
	b = tu_alloc(*len);
	memset(b, 0, *len);
	memcpy(b, v.buf, 36);
	b[36] = 0x70, b[37] = 0x12, b[38] = 0, b[39] = (uint8_t)(4 + n);
	memset(b + 40, 'a', n);
	tu_free(&v);
	return b;
}

static void test_variable_length_bounds(void)
{
	static const struct {
		bool name;
		size_t n;
		enum casa_err expect;
	} rows[] = {
		{ true, 0, CASA_E_TLV_LEN },   { true, 1, CASA_OK },
		{ true, 64, CASA_OK },         { true, 65, CASA_E_TLV_LEN },
		{ false, 19, CASA_E_TLV_LEN }, { false, 20, CASA_OK },
		{ false, 128, CASA_OK },       { false, 129, CASA_E_TLV_LEN },
	};

	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		size_t len = 0;
		uint8_t *b = rows[i].name ? hello_with_name(rows[i].n, &len) :
					    tickle_with_excerpt(rows[i].n, &len);
		struct casa_msg m;
		enum casa_err got;

		if (b == NULL)
			continue;
		got = decode(b, len, &m);
		TU_CHECK(got == rows[i].expect, "%s of %zu bytes: got %s, expected %s",
			 rows[i].name ? "NAME" : "PKT_EXCERPT", rows[i].n, tu_err_ident(got),
			 tu_err_ident(rows[i].expect));
		if (got == CASA_OK && rows[i].name)
			TU_EQ(m.name.len, rows[i].n);
		if (got == CASA_OK && !rows[i].name)
			TU_EQ(m.excerpt.len, rows[i].n);
		free(b);
	}
}

/* ---- truncations and length-field changes (11.4, 10.4 last paragraph) ------------------- */

struct ok_cuts {
	const char *name;
	size_t cuts[2];
};

/* The prefixes of V1-V15 that end exactly at a TLV end and still form a valid message. */
static const struct ok_cuts ok_cut_table[] = {
	{ "V4", { 32 } },  { "V5", { 40, 48 } }, { "V7", { 49, 52 } }, { "V8", { 36, 49 } },
	{ "V12", { 52 } }, { "V13", { 52 } },    { "V14", { 56 } },    { "V15", { 52 } },
};

static bool cut_may_decode(const char *name, size_t cut)
{
	for (size_t i = 0; i < ARRAY_SIZE(ok_cut_table); i++)
		if (strcmp(ok_cut_table[i].name, name) == 0)
			return cut > 0 &&
			       (cut == ok_cut_table[i].cuts[0] || cut == ok_cut_table[i].cuts[1]);
	return false;
}

/* An accepted prefix holds a prefix of the original TLVs: its re-encode is the original cut at
 * the next 4-byte boundary (the encoder pads the last TLV). */
static void check_prefix_reencode(struct tu_budget *b, const struct tu_vec *v, size_t cut,
				  const struct casa_msg *m)
{
	uint8_t out[256];
	int n = casa_encode(m, CASA_MODE_EXTENDED, out, sizeof(out));
	size_t want = ALIGN4(cut);

	TU_BUDGET(b, n == (int)want && memcmp(out, v->buf, want) == 0,
		  "%s cut to %zu: re-encode gave %d bytes, expected the first %zu bytes of %s",
		  v->name, cut, n, want, v->name);
}

static void check_truncations(struct tu_budget *b, const char *name)
{
	struct tu_vec v;

	if (tu_load(name, &v) != 0)
		return;
	for (size_t cut = 0; cut < v.len; cut++) {
		uint8_t *p = tu_dup(v.buf, cut);
		struct casa_msg m;
		enum casa_err got = decode(p, cut, &m);
		bool want_ok = cut_may_decode(name, cut);

		TU_BUDGET(b, (got == CASA_OK) == want_ok && got <= CASA_E_FIELD,
			  "%s cut to %zu bytes: got %s, expected %s", name, cut, tu_err_ident(got),
			  want_ok ? "CASA_OK" : "an error");
		if (got == CASA_OK && want_ok)
			check_prefix_reencode(b, &v, cut, &m);
		free(p);
	}
	tu_free(&v);
}

static void test_truncations(void)
{
	struct tu_budget b = { 0 };

	for (size_t i = 0; i < ARRAY_SIZE(v_names); i++)
		check_truncations(&b, v_names[i]);
	TU_BUDGET_DONE(&b, "truncated V1-V15");
}

/*
 * The property of 11.4 for any OK decode: it re-encodes, the re-encode decodes to the same
 * message (when nothing was skipped, since skipped TLVs are not re-emitted) and re-encodes to
 * the same bytes.
 */
static bool reencode_stable(const struct casa_msg *m, char *why, size_t whylen)
{
	uint8_t *a = malloc(CASA_MSG_MAX_HARD), *c = malloc(CASA_MSG_MAX_HARD);
	struct casa_msg m2;
	int na, nc;
	enum casa_err e;
	bool ok = false;

	if (a == NULL || c == NULL)
		abort();
	na = casa_encode(m, CASA_MODE_EXTENDED, a, CASA_MSG_MAX_HARD);
	if (na <= 0) {
		snprintf(why, whylen, "casa_encode returned %d", na);
		goto out;
	}
	e = decode(a, (size_t)na, &m2);
	if (e != CASA_OK) {
		snprintf(why, whylen, "re-encode decodes to %s", tu_err_ident(e));
		goto out;
	}
	if (m->skipped_tlvs == 0 && !casa_msg_equal(m, &m2)) {
		snprintf(why, whylen, "re-decoded message is not casa_msg_equal");
		goto out;
	}
	nc = casa_encode(&m2, CASA_MODE_EXTENDED, c, CASA_MSG_MAX_HARD);
	if (nc != na || memcmp(a, c, (size_t)na) != 0) {
		snprintf(why, whylen, "second re-encode differs (%d vs %d bytes)", nc, na);
		goto out;
	}
	ok = true;
out:
	free(a);
	free(c);
	return ok;
}

/* Offsets of the TLV length fields of a well-formed message, by the 4.2 walk. */
static size_t tlv_length_offsets(const struct tu_vec *v, size_t *offs, size_t max)
{
	size_t n = 0;

	for (size_t o = 4; o + 4 <= v->len && n + 2 <= max; o += ALIGN4(be16(v->buf + o + 2))) {
		offs[n++] = o + 2;
		offs[n++] = o + 3;
		if (be16(v->buf + o + 2) < 4)
			break;
	}
	return n;
}

static void check_length_mutations(struct tu_budget *b, const char *name)
{
	struct tu_vec v;
	size_t offs[2 * CASA_TLV_MAX], n;

	if (tu_load(name, &v) != 0)
		return;
	n = tlv_length_offsets(&v, offs, ARRAY_SIZE(offs));
	for (size_t i = 0; i < n; i++) {
		for (unsigned val = 0; val < 256; val++) {
			uint8_t *p = tu_dup(v.buf, v.len);
			struct casa_msg m;
			enum casa_err got;
			char why[128] = "";

			p[offs[i]] = (uint8_t)val;
			got = decode(p, v.len, &m);
			TU_BUDGET(b, got <= CASA_E_FIELD,
				  "%s byte %zu = 0x%02x: decode returned %d", name, offs[i], val,
				  (int)got);
			if (got == CASA_OK)
				TU_BUDGET(b, reencode_stable(&m, why, sizeof(why)),
					  "%s byte %zu = 0x%02x decodes OK but %s", name, offs[i],
					  val, why);
			free(p);
		}
	}
	tu_free(&v);
}

static void test_length_field_mutations(void)
{
	struct tu_budget b = { 0 };

	for (size_t i = 0; i < ARRAY_SIZE(v_names); i++)
		check_length_mutations(&b, v_names[i]);
	TU_BUDGET_DONE(&b, "TLV length byte changes of V1-V15");
}

/* ---- random round trip ------------------------------------------------------------------- */

#define ROUND_TRIPS 20000
#define RNG_SEED 0x6361736131ull /* "casa1": fixed, so a failure reproduces */

struct gen {
	uint64_t s;
	uint8_t ip[9000];
	uint8_t name[CASA_NAME_MAX];
	uint8_t excerpt[CASA_EXCERPT_MAX];
	uint8_t digest[CASA_DIGEST_MAX];
};

/* splitmix64 */
static uint64_t rnd(struct gen *g)
{
	uint64_t z = (g->s += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static uint32_t below(struct gen *g, uint32_t n)
{
	return (uint32_t)(rnd(g) % n);
}

static bool one_in(struct gen *g, uint32_t n)
{
	return below(g, n) == 0;
}

static uint16_t r16(struct gen *g)
{
	return (uint16_t)rnd(g);
}

static uint32_t r32(struct gen *g)
{
	return (uint32_t)rnd(g);
}

static uint32_t r32_nonzero(struct gen *g)
{
	uint32_t x;

	do
		x = r32(g);
	while (x == 0);
	return x;
}

/* Zero, all-ones, a prefix, or any bit pattern: masks may be non-contiguous (5.1). */
static uint32_t gen_mask(struct gen *g)
{
	switch (below(g, 4)) {
	case 0:
		return 0;
	case 1:
		return 0xFFFFFFFFu;
	case 2:
		return (uint32_t)(0xFFFFFFFF00000000ull >> below(g, 33));
	default:
		return r32(g);
	}
}

/* Zero TTL (a delete) one time in eight; otherwise any value. */
static uint16_t gen_ttl(struct gen *g)
{
	return one_in(g, 8) ? 0 : r16(g);
}

static void gen_wildcard(struct gen *g, struct casa_affinity *a)
{
	a->flags = r16(g);
	a->protocol = (uint16_t)below(g, 256);
	a->src_mask = gen_mask(g);
	a->src = r32(g) & a->src_mask;
	a->dst_mask = gen_mask(g);
	a->dst = r32(g) & a->dst_mask;
	a->src_port = one_in(g, 2) ? 0 : r16(g);
	a->dst_port = r16(g);
	a->fwd = one_in(g, 2) ? 0 : r32(g);
	a->ttl = gen_ttl(g);
	a->reserved = r16(g);
}

static void gen_fixed(struct gen *g, struct casa_affinity *a)
{
	a->flags = r16(g);
	a->protocol = (uint16_t)(1 + below(g, 255));
	a->src = r32_nonzero(g);
	a->src_mask = 0xFFFFFFFFu;
	a->dst = r32_nonzero(g);
	a->dst_mask = 0xFFFFFFFFu;
	a->src_port = r16(g);
	a->dst_port = r16(g);
	a->ttl = gen_ttl(g);
	a->fwd = a->ttl > 0 || one_in(g, 2) ? r32_nonzero(g) : 0;
	a->reserved = r16(g);
}

static void gen_action(struct gen *g, struct casa_action *a)
{
	a->criteria = one_in(g, 4) ? 0 : r16(g);
	a->interest_addr = a->criteria != 0 ? r32_nonzero(g) : r32(g);
	a->interest_port = a->criteria != 0 ? (uint16_t)(1 + below(g, 65535)) : r16(g);
	a->x = r16(g);
	a->tickle = r16(g);
	a->dispatch = r32(g);
}

/* A valid IPv4 packet for IP_PACKET (5.5): version 4, 20 <= IHL*4 <= total length == N. */
static void gen_ip_packet(struct gen *g, struct casa_msg *m)
{
	size_t n = one_in(g, 50) ? 20 + below(g, 8800) : 20 + below(g, 600);
	unsigned ihl = 5 + below(g, 11);

	if (ihl * 4 > n)
		ihl = (unsigned)(n / 4);
	for (size_t i = 0; i < n; i++)
		g->ip[i] = (uint8_t)rnd(g);
	g->ip[0] = (uint8_t)(0x40 | ihl);
	g->ip[2] = (uint8_t)(n >> 8);
	g->ip[3] = (uint8_t)n;
	m->ip_pkt = g->ip;
	m->ip_pkt_len = (uint16_t)n;
}

/* 6.6 validation: role 1 or 2, version >= 1, interval >= 1, hold >= interval. */
static void gen_hello(struct gen *g, struct casa_hello *h, bool ack)
{
	h->role = (uint8_t)(1 + below(g, 2));
	h->ext_version = (uint8_t)(1 + below(g, 255));
	h->flags = r16(g);
	h->sender_id = r32(g);
	h->epoch = r32(g);
	h->control_addr = r32(g);
	h->port = r16(g);
	h->hello_interval = (uint16_t)(1 + below(g, 65535));
	h->hold_time = (uint16_t)(h->hello_interval + below(g, 65536u - h->hello_interval));
	h->reserved = r16(g);
	h->caps = r32(g);
	h->peer_sender_id = ack ? r32(g) : 0;
	h->peer_epoch = ack ? r32(g) : 0;
}

/* 1-64 bytes of printable ASCII (valid UTF-8, no NUL). */
static void gen_name(struct gen *g, struct casa_name *n)
{
	n->len = (uint8_t)(1 + below(g, CASA_NAME_MAX));
	for (unsigned i = 0; i < n->len; i++)
		g->name[i] = (uint8_t)(0x21 + below(g, 0x7E - 0x21 + 1));
	n->bytes = g->name;
}

static void gen_tickle(struct gen *g, struct casa_tickle *t)
{
	t->flags = r16(g);
	t->protocol = (uint16_t)(1 + below(g, 255));
	t->src = r32(g);
	t->dst = r32(g);
	t->src_port = r16(g);
	t->dst_port = r16(g);
	t->matched = r16(g);
	t->tcp_flags = (uint8_t)rnd(g);
	t->reserved = (uint8_t)rnd(g);
	t->fa_time_ms = r32(g);
}

static void gen_excerpt(struct gen *g, struct casa_excerpt *e)
{
	e->len = (uint8_t)(CASA_EXCERPT_MIN + below(g, CASA_EXCERPT_MAX - CASA_EXCERPT_MIN + 1));
	e->orig_len = (uint16_t)(e->len + below(g, 65536u - e->len));
	e->reserved = r16(g);
	for (unsigned i = 0; i < e->len; i++)
		g->excerpt[i] = (uint8_t)rnd(g);
	e->bytes = g->excerpt;
}

static void gen_stats(struct gen *g, struct casa_stats *s)
{
	s->sender_id = r32(g);
	s->interval = r32(g);
	s->count = (uint16_t)below(g, CASA_STATS_MAX + 1);
	s->reserved = r16(g);
	for (unsigned i = 0; i < s->count; i++) {
		s->entries[i].id = r16(g);
		s->entries[i].reserved = r16(g);
		s->entries[i].value = rnd(g);
	}
}

static void gen_dispatch(struct gen *g, struct casa_dispatch_info *d)
{
	d->method = (uint8_t)(1 + below(g, 2));
	d->gre_flags = (uint8_t)rnd(g);
	d->reserved = r16(g);
	d->tunnel_endpoint = d->method == CASA_DISPATCH_GRE ? r32_nonzero(g) : r32(g);
	d->gre_key = r32(g);
	for (int i = 0; i < 6; i++)
		d->nexthop_mac[i] = (uint8_t)rnd(g);
	d->reserved2 = r16(g);
}

static void gen_auth(struct gen *g, struct casa_auth *a)
{
	a->alg = one_in(g, 2) ? CASA_AUTH_HMAC_MD5 : CASA_AUTH_HMAC_SHA256;
	a->key_id = (uint8_t)rnd(g);
	a->reserved = r16(g);
	a->sender_id = r32(g);
	a->epoch = r32(g);
	a->seq = rnd(g);
	a->timestamp = r32(g);
	a->digest_len = a->alg == CASA_AUTH_HMAC_MD5 ? 16 : 32;
	for (unsigned i = 0; i < a->digest_len; i++)
		g->digest[i] = (uint8_t)rnd(g);
	a->digest = g->digest;
}

static void gen_affinity_msg(struct gen *g, struct casa_msg *m)
{
	bool wild = m->type == CASA_MSG_WILDCARD;

	m->present = wild ? CASA_HAS_WILDCARD : CASA_HAS_FIXED;
	if (wild)
		gen_wildcard(g, &m->aff);
	else
		gen_fixed(g, &m->aff);
	if (wild && !one_in(g, 4)) {
		m->present |= CASA_HAS_AUX;
		for (int i = 0; i < 4; i++)
			m->aux[i] = (uint8_t)rnd(g);
	}
	// ACTION is required unless the update is a delete (8 step 7).
	if (m->aff.ttl > 0 || one_in(g, 2)) {
		m->present |= CASA_HAS_ACTION;
		gen_action(g, &m->action);
	}
	if (one_in(g, 3)) {
		m->present |= CASA_HAS_SENDER_INFO;
		m->sender.sender_id = r32(g);
		m->sender.control_addr = r32(g);
	}
	if (one_in(g, 3)) {
		m->present |= CASA_HAS_DISPATCH_INFO;
		gen_dispatch(g, &m->dispatch);
	}
}

/* The primary TLV and the optional TLVs that 4.3 allows in each message type. */
static void gen_body(struct gen *g, struct casa_msg *m)
{
	switch (m->type) {
	case CASA_MSG_WILDCARD:
	case CASA_MSG_FIXED:
		gen_affinity_msg(g, m);
		break;
	case CASA_MSG_IP_PACKET:
		m->present = CASA_HAS_IP_PACKET;
		gen_ip_packet(g, m);
		if (one_in(g, 2)) {
			m->present |= CASA_HAS_SENDER_INFO;
			m->sender.sender_id = r32(g);
			m->sender.control_addr = r32(g);
		}
		break;
	case CASA_MSG_HELLO:
	case CASA_MSG_HELLO_ACK:
		m->present = m->type == CASA_MSG_HELLO ? CASA_HAS_HELLO : CASA_HAS_HELLO_ACK;
		gen_hello(g, &m->hello, m->type == CASA_MSG_HELLO_ACK);
		if (one_in(g, 2)) {
			m->present |= CASA_HAS_NAME;
			gen_name(g, &m->name);
		}
		break;
	case CASA_MSG_TICKLE:
		m->present = CASA_HAS_TICKLE;
		gen_tickle(g, &m->tickle);
		if (one_in(g, 2)) {
			m->present |= CASA_HAS_PKT_EXCERPT;
			gen_excerpt(g, &m->excerpt);
		}
		if (one_in(g, 2)) {
			m->present |= CASA_HAS_SENDER_INFO;
			m->sender.sender_id = r32(g);
			m->sender.control_addr = r32(g);
		}
		break;
	default: /* CASA_MSG_STATS */
		m->present = CASA_HAS_STATS;
		gen_stats(g, &m->stats);
		break;
	}
}

/* Wire length of each present TLV (4.3), unpadded. */
static size_t tlv_len(const struct casa_msg *m, uint32_t bit)
{
	switch (bit) {
	case CASA_HAS_WILDCARD:
		return CASA_WILDCARD_LEN;
	case CASA_HAS_FIXED:
		return CASA_FIXED_LEN;
	case CASA_HAS_AUX:
		return CASA_AUX_LEN;
	case CASA_HAS_ACTION:
		return CASA_ACTION_LEN;
	case CASA_HAS_IP_PACKET:
		return 4u + m->ip_pkt_len;
	case CASA_HAS_HELLO:
		return CASA_HELLO_LEN;
	case CASA_HAS_HELLO_ACK:
		return CASA_HELLO_ACK_LEN;
	case CASA_HAS_TICKLE:
		return CASA_TICKLE_LEN;
	case CASA_HAS_STATS:
		return 16u + 12u * m->stats.count;
	case CASA_HAS_SENDER_INFO:
		return CASA_SENDER_INFO_LEN;
	case CASA_HAS_NAME:
		return 4u + m->name.len;
	case CASA_HAS_PKT_EXCERPT:
		return 8u + m->excerpt.len;
	case CASA_HAS_DISPATCH_INFO:
		return CASA_DISPATCH_INFO_LEN;
	default: /* CASA_HAS_AUTH */
		return m->auth.alg == CASA_AUTH_HMAC_MD5 ? CASA_AUTH_MD5_LEN : CASA_AUTH_SHA256_LEN;
	}
}

/* Fill in what the decoder reports beyond the fields: TLV count and the AUTH offset, from the
 * canonical order. Returns the encoded length. */
static size_t finish_msg(struct casa_msg *m)
{
	size_t len = CASA_HDR_LEN;

	m->tlv_count = 0;
	m->skipped_tlvs = 0;
	// Presence bits are declared in canonical encoding order, AUTH last.
	for (uint32_t bit = 1; bit <= CASA_HAS_AUTH; bit <<= 1) {
		if (!(m->present & bit))
			continue;
		if (bit == CASA_HAS_AUTH)
			m->auth.offset = (uint16_t)len;
		len += ALIGN4(tlv_len(m, bit));
		m->tlv_count++;
	}
	return len;
}

static bool is_cisco_type(uint16_t type)
{
	return type == CASA_MSG_WILDCARD || type == CASA_MSG_FIXED || type == CASA_MSG_IP_PACKET;
}

static void gen_msg(struct gen *g, uint16_t type, struct casa_msg *m, size_t *len)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
	gen_body(g, m);
	if (one_in(g, 3)) {
		m->present |= CASA_HAS_AUTH;
		gen_auth(g, &m->auth);
	}
	*len = finish_msg(m);
}

static bool points_into(const uint8_t *p, const uint8_t *buf, size_t len)
{
	return (uintptr_t)p >= (uintptr_t)buf && (uintptr_t)p < (uintptr_t)buf + len;
}

/* The variable-length values of a decoded message point into the buffer (casa.h). */
static bool pointers_inside(const struct casa_msg *d, const uint8_t *buf, size_t len)
{
	return (!(d->present & CASA_HAS_IP_PACKET) || points_into(d->ip_pkt, buf, len)) &&
	       (!(d->present & CASA_HAS_NAME) || points_into(d->name.bytes, buf, len)) &&
	       (!(d->present & CASA_HAS_PKT_EXCERPT) || points_into(d->excerpt.bytes, buf, len)) &&
	       (!(d->present & CASA_HAS_AUTH) || points_into(d->auth.digest, buf, len));
}

/* Strict mode sends a Cisco message only when it carries no casalb TLV (4.5). */
static void check_strict(struct tu_budget *b, unsigned i, const struct casa_msg *m,
			 const uint8_t *ext, size_t len)
{
	uint32_t casalb = CASA_HAS_SENDER_INFO | CASA_HAS_DISPATCH_INFO | CASA_HAS_AUTH;
	uint8_t *out;
	int n;

	if (!is_cisco_type(m->type))
		return;
	n = encode_exact(m, CASA_MODE_STRICT, len, &out);
	if (m->present & casalb)
		TU_BUDGET(b, n < 0, "msg %u (type 0x%04x): strict encode with casalb TLVs gave %d",
			  i, m->type, n);
	else
		TU_BUDGET(b, n == (int)len && memcmp(out, ext, len) == 0,
			  "msg %u (type 0x%04x): strict encode differs from extended (%d bytes)", i,
			  m->type, n);
	free(out);
}

static void round_trip_one(struct tu_budget *b, struct gen *g, unsigned i, uint16_t type)
{
	struct casa_msg *m = malloc(sizeof(*m)), *d = malloc(sizeof(*d));
	uint8_t *buf, *again;
	size_t len;
	int n, n2 = 0;
	enum casa_err e;

	if (m == NULL || d == NULL)
		abort();
	gen_msg(g, type, m, &len);
	n = encode_exact(m, CASA_MODE_EXTENDED, len - 1, &buf);
	TU_BUDGET(b, n == -ENOSPC, "msg %u (type 0x%04x): cap %zu gave %d, expected -ENOSPC", i,
		  type, len - 1, n);
	free(buf);
	n = encode_exact(m, CASA_MODE_EXTENDED, len, &buf);
	TU_BUDGET(b, n == (int)len,
		  "msg %u (type 0x%04x, present 0x%x): encode gave %d, "
		  "expected %zu",
		  i, type, (unsigned)m->present, n, len);
	if (n == (int)len) {
		memset(d, 0xA5, sizeof(*d));
		e = casa_decode(buf, len, 0, d);
		TU_BUDGET(b, e == CASA_OK, "msg %u (type 0x%04x, present 0x%x): decode gave %s", i,
			  type, (unsigned)m->present, tu_err_ident(e));
		if (e == CASA_OK) {
			TU_BUDGET(b, casa_msg_equal(m, d) && pointers_inside(d, buf, len),
				  "msg %u (type 0x%04x, present 0x%x): decoded message differs", i,
				  type, (unsigned)m->present);
			n2 = encode_exact(d, CASA_MODE_EXTENDED, len, &again);
			TU_BUDGET(b, n2 == n && memcmp(again, buf, len) == 0,
				  "msg %u (type 0x%04x): re-encode differs", i, type);
			free(again);
		}
		check_strict(b, i, m, buf, len);
	}
	free(buf);
	free(m);
	free(d);
}

static void test_random_round_trip(void)
{
	static const uint16_t types[] = {
		CASA_MSG_WILDCARD,  CASA_MSG_FIXED,  CASA_MSG_IP_PACKET, CASA_MSG_HELLO,
		CASA_MSG_HELLO_ACK, CASA_MSG_TICKLE, CASA_MSG_STATS,
	};
	struct gen *g = calloc(1, sizeof(*g));
	struct tu_budget b = { 0 };

	if (g == NULL)
		abort();
	g->s = RNG_SEED;
	for (unsigned i = 0; i < ROUND_TRIPS; i++)
		round_trip_one(&b, g, i, types[i % ARRAY_SIZE(types)]);
	TU_BUDGET_DONE(&b, "random round trips");
	free(g);
}

/* ---- casa_msg_equal ----------------------------------------------------------------------- */

static void test_msg_equal(void)
{
	struct tu_vec v2, v3, v12, n29;
	struct casa_msg a, b;
	uint8_t *copy;

	if (tu_load("V2", &v2) != 0 || tu_load("V3", &v3) != 0 || tu_load("V12", &v12) != 0 ||
	    tu_load("N29", &n29) != 0)
		return;
	// Pointed-to bytes are compared, not pointers: two copies of V2 are equal.
	copy = tu_dup(v2.buf, v2.len);
	TU_ERR(decode(v2.buf, v2.len, &a), CASA_OK, "V2");
	TU_ERR(decode(copy, v2.len, &b), CASA_OK, "copy of V2");
	TU_CHECK(casa_msg_equal(&a, &b), "two decodes of V2 from different buffers differ");
	copy[40] ^= 1; /* inside the inner packet */
	TU_ERR(decode(copy, v2.len, &b), CASA_OK, "V2 with a changed packet byte");
	TU_CHECK(!casa_msg_equal(&a, &b), "a changed IP_PACKET byte must make messages differ");
	free(copy);
	TU_ERR(decode(v3.buf, v3.len, &a), CASA_OK, "V3");
	b = a;
	b.err_offset = 17;
	TU_CHECK(casa_msg_equal(&a, &b), "err_offset must be ignored");
	b.action.x ^= 1;
	TU_CHECK(!casa_msg_equal(&a, &b), "a changed X must make messages differ");
	b = a;
	b.aff.reserved = 1;
	TU_CHECK(!casa_msg_equal(&a, &b), "a changed reserved field must make messages differ");
	TU_ERR(decode(v12.buf, v12.len, &a), CASA_OK, "V12");
	TU_ERR(decode(n29.buf, n29.len, &b), CASA_OK, "N29");
	TU_CHECK(!casa_msg_equal(&a, &b), "V12 and N29 differ in one digest bit");
	tu_free(&v2);
	tu_free(&v3);
	tu_free(&v12);
	tu_free(&n29);
}

/* ---- names and formats ---------------------------------------------------------------------- */

static bool str_ok(const char *s)
{
	return s != NULL && s[0] != '\0' && strcmp(s, "unknown") != 0;
}

/* Non-NULL and distinct for every code (11.1), named as in casa.h. */
static void test_err_names(void)
{
	for (int e = 0; e < CASA_E__COUNT; e++) {
		const char *s = casa_strerror((enum casa_err)e);
		const char *n = casa_err_name((enum casa_err)e);
		const char *r = casa_err_reason((enum casa_err)e);

		TU_CHECK(str_ok(s) && str_ok(n) && str_ok(r), "names of %s missing",
			 tu_err_ident(e));
		if (!str_ok(s) || !str_ok(n) || !str_ok(r))
			continue;
		TU_CHECK(strcmp(n, tu_err_ident(e)) == 0, "casa_err_name(%d) = \"%s\", expected %s",
			 e, n, tu_err_ident(e));
		for (int f = 0; f < e; f++) {
			const char *s2 = casa_strerror((enum casa_err)f);
			const char *r2 = casa_err_reason((enum casa_err)f);

			TU_CHECK(s2 == NULL || strcmp(s, s2) != 0,
				 "casa_strerror: %s and %s share \"%s\"", tu_err_ident(e),
				 tu_err_ident(f), s);
			TU_CHECK(r2 == NULL || strcmp(r, r2) != 0,
				 "casa_err_reason: %s and %s share \"%s\"", tu_err_ident(e),
				 tu_err_ident(f), r);
		}
	}
	TU_STR(casa_strerror(CASA_E_TLV_TRUNC), "TLV truncated");
	TU_STR(casa_err_reason(CASA_E_TLV_TRUNC), "tlv_trunc");
	TU_STR(casa_strerror(CASA_E__COUNT), "unknown");
	TU_STR(casa_err_name(CASA_E__COUNT), "unknown");
	TU_STR(casa_err_reason(CASA_E__COUNT), "unknown");
}

static void test_other_names(void)
{
	TU_STR(casa_msg_type_name(CASA_MSG_WILDCARD), "WILDCARD");
	TU_STR(casa_msg_type_name(0x0999), "unknown");
	TU_STR(casa_tlv_name(CASA_TLV_WILDCARD), "WILDCARD_AFFINITY");
	TU_STR(casa_tlv_name(CASA_TLV_FIXED), "FIXED_AFFINITY");
	TU_STR(casa_tlv_name(CASA_TLV_AUTH), "CASALB_AUTH");
	TU_STR(casa_tlv_name(0x0999), "unknown");
	TU_STR(casa_stat_name(CASA_STAT_CACHE_HITS), "Cache Hits");
	TU_STR(casa_stat_name(20), "unknown");
	TU_STR(casa_role_name(CASA_ROLE_SM), "SM");
	TU_STR(casa_role_name(CASA_ROLE_FA), "FA");
	TU_STR(casa_role_name(3), "unknown");
	TU_STR(casa_auth_alg_name(CASA_AUTH_HMAC_SHA256), "HMAC-SHA256");
	TU_STR(casa_auth_alg_name(CASA_AUTH_HMAC_MD5), "HMAC-MD5");
	TU_STR(casa_auth_alg_name(3), "unknown");
	TU_STR(casa_dispatch_method_name(CASA_DISPATCH_GRE), "GRE");
	TU_STR(casa_dispatch_method_name(3), "unknown");
	TU_STR(casa_proto_name(6), "TCP");
	TU_STR(casa_proto_name(17), "UDP");
	for (unsigned id = 1; id <= CASA_STAT_REPLAY_DROPS; id++)
		TU_CHECK(str_ok(casa_stat_name((uint16_t)id)), "casa_stat_name(%u) missing", id);
}

/* The IOS display of 6.8.2: "0x8100 FRAG ALLPKTS", names in ascending bit order (5.6). */
static void test_criteria_format(void)
{
	char out[128], small[12];

	CU_ASSERT_PTR_EQUAL(casa_criteria_format(0x8100, out, sizeof(out)), out);
	TU_STR(out, "0x8100 FRAG ALLPKTS");
	TU_STR(casa_criteria_format(0x0002, out, sizeof(out)), "0x0002 SYN");
	TU_STR(casa_criteria_format(0x0000, out, sizeof(out)), "0x0000");
	TU_STR(casa_criteria_format(0x0011, out, sizeof(out)), "0x0011 FIN ACK");
	TU_STR(casa_criteria_format(0x8111, out, sizeof(out)), "0x8111 FIN ACK FRAG ALLPKTS");
	TU_STR(casa_criteria_format(0x0124, out, sizeof(out)), "0x0124 RST URG FRAG");
	TU_STR(casa_criteria_format(0x0048, out, sizeof(out)), "0x0048 PSH DATA");
	TU_STR(casa_criteria_format(0x0080, out, sizeof(out)), "0x0080 FIRSTDATA");
	// A short buffer is truncated, never overrun, and stays NUL-terminated.
	memset(small, 'Z', sizeof(small));
	casa_criteria_format(0x8100, small, 8);
	TU_CHECK(memchr(small, '\0', 8) != NULL, "criteria in 8 bytes is not NUL-terminated");
	TU_CHECK(small[8] == 'Z' && small[11] == 'Z', "casa_criteria_format wrote past outlen");
}

static void test_flags_format(void)
{
	char out[128];

	CU_ASSERT_PTR_EQUAL(casa_hello_flags_format(0x0001, out, sizeof(out)), out);
	TU_STR(out, "0x0001 WANT_WILDCARDS");
	CU_ASSERT_PTR_EQUAL(casa_caps_format(0x3F, out, sizeof(out)), out);
	TU_CHECK(memchr(out, '\0', sizeof(out)) != NULL, "caps format not NUL-terminated");
}

static void test_ip_format(void)
{
	char out[16], small[8];

	CU_ASSERT_PTR_EQUAL(casa_ip_format(VIP, out, sizeof(out)), out);
	TU_STR(out, "9.67.157.17");
	TU_STR(casa_ip_format(0, out, sizeof(out)), "0.0.0.0");
	TU_STR(casa_ip_format(0xFFFFFFFFu, out, sizeof(out)), "255.255.255.255");
	TU_STR(casa_ip_format(CASA_MCAST_DEFAULT, out, sizeof(out)), "224.0.1.2");
	casa_ip_format(0xFFFFFFFFu, small, sizeof(small));
	TU_CHECK(memchr(small, '\0', sizeof(small)) != NULL, "short ip buffer not NUL-terminated");
}

/* casa_criteria_match argument order: criteria, tcp_flags, is_tcp, is_fragment, has_payload,
 * first_data. The rules are the five of 5.6. */
static void test_criteria_match(void)
{
	// ALLPKTS matches everything, even a bare non-TCP packet.
	CU_ASSERT_TRUE(casa_criteria_match(CASA_INT_ALLPKTS, 0, false, false, false, false));
	CU_ASSERT_TRUE(casa_criteria_match(0x8100, 0x10, true, false, true, false));
	// FRAG matches fragments only.
	CU_ASSERT_TRUE(casa_criteria_match(CASA_INT_FRAG, 0, false, true, false, false));
	CU_ASSERT_FALSE(casa_criteria_match(CASA_INT_FRAG, 0x10, true, false, true, false));
	// TCP flag bits (0x003F) match the packet's flags, for TCP only.
	CU_ASSERT_TRUE(casa_criteria_match(CASA_INT_SYN, 0x02, true, false, false, false));
	CU_ASSERT_FALSE(casa_criteria_match(CASA_INT_SYN, 0x10, true, false, false, false));
	CU_ASSERT_FALSE(casa_criteria_match(CASA_INT_SYN, 0x02, false, false, false, false));
	CU_ASSERT_TRUE(casa_criteria_match(CASA_INT_FIN, 0x11, true, false, false, false));
	CU_ASSERT_TRUE(
		casa_criteria_match(CASA_INT_FIN | CASA_INT_RST, 0x04, true, false, false, false));
	CU_ASSERT_TRUE(casa_criteria_match(CASA_INT_URG, 0x20, true, false, false, false));
	// TCP ECE (0x40) and CWR (0x80) are not criteria bits: DATA/FIRSTDATA do not match them.
	CU_ASSERT_FALSE(casa_criteria_match(CASA_INT_DATA, 0x40, true, false, false, false));
	CU_ASSERT_FALSE(casa_criteria_match(CASA_INT_FIRSTDATA, 0x80, true, false, false, false));
	// DATA: transport payload present.
	CU_ASSERT_TRUE(casa_criteria_match(CASA_INT_DATA, 0x18, true, false, true, false));
	CU_ASSERT_FALSE(casa_criteria_match(CASA_INT_DATA, 0x10, true, false, false, false));
	// FIRSTDATA: the first payload of the flow.
	CU_ASSERT_TRUE(casa_criteria_match(CASA_INT_FIRSTDATA, 0x18, true, false, true, true));
	CU_ASSERT_FALSE(casa_criteria_match(CASA_INT_FIRSTDATA, 0x18, true, false, true, false));
	// No criteria, or reserved bits only, match nothing.
	CU_ASSERT_FALSE(casa_criteria_match(0, 0xFF, true, true, true, true));
	CU_ASSERT_FALSE(casa_criteria_match(0x7E00, 0xFF, true, true, true, true));
	// The fixed affinity of V3 (SYN) and the wildcard of V1 (FRAG|ALLPKTS).
	CU_ASSERT_FALSE(casa_criteria_match(0x0002, 0x11, true, false, false, false));
	CU_ASSERT_TRUE(casa_criteria_match(0x8100, 0x11, true, false, false, false));
}

/* 11.6: u32 big-endian length before each message, 4..65535. */
static void test_stream_framing(void)
{
	uint8_t b[4];

	TU_EQI(casa_stream_frame_len((const uint8_t *)"\0\0\0", 3), 0);
	TU_EQI(casa_stream_frame_len((const uint8_t *)"\0\0\0\4", 3), 0);
	TU_EQI(casa_stream_frame_len((const uint8_t *)"\0\0\0\4", 4), 4);
	TU_EQI(casa_stream_frame_len((const uint8_t *)"\0\0\0\3", 4), -EBADMSG);
	TU_EQI(casa_stream_frame_len((const uint8_t *)"\0\0\0\0", 4), -EBADMSG);
	TU_EQI(casa_stream_frame_len((const uint8_t *)"\0\0\xff\xff", 4), 65535);
	TU_EQI(casa_stream_frame_len((const uint8_t *)"\0\1\0\0", 4), -EBADMSG);
	TU_EQI(casa_stream_frame_len((const uint8_t *)"\xff\xff\xff\xff", 4), -EBADMSG);
	TU_EQI(casa_stream_frame_len((const uint8_t *)"\x80\0\0\x34", 4), -EBADMSG);
	TU_EQI(casa_stream_frame_len((const uint8_t *)"\0\0\0\x34\1\1", 6), 52);
	TU_CHECK(casa_stream_put_len(b, sizeof(b), 52) >= 0, "put_len(52) failed");
	TU_BYTES(b, 4, (const uint8_t *)"\0\0\0\x34", 4, "stream length of 52");
	TU_EQI(casa_stream_frame_len(b, 4), 52);
	TU_CHECK(casa_stream_put_len(b, sizeof(b), 65535) >= 0, "put_len(65535) failed");
	TU_EQI(casa_stream_frame_len(b, 4), 65535);
	TU_CHECK(casa_stream_put_len(b, sizeof(b), 4) >= 0, "put_len(4) failed");
	TU_CHECK(casa_stream_put_len(b, sizeof(b), 3) < 0, "put_len(3) must fail");
	TU_CHECK(casa_stream_put_len(b, sizeof(b), 65536) < 0, "put_len(65536) must fail");
	TU_CHECK(casa_stream_put_len(b, 3, 52) < 0, "put_len into 3 bytes must fail");
}

static CU_TestInfo tests[] = {
	{ "V1 wildcard fields (10.1)", test_v1_wildcard_fields },
	{ "V2 IP packet fields (10.1)", test_v2_ip_packet_fields },
	{ "V3 fixed fields (10.1)", test_v3_fixed_fields },
	{ "V4/V5 delete fields (6.3)", test_v4_v5_delete_fields },
	{ "V6/V7 IP packet fields (6.4)", test_v6_v7_ip_packet_fields },
	{ "V8 hello fields (6.6)", test_v8_hello_fields },
	{ "V9 hello-ack fields (6.6)", test_v9_hello_ack_fields },
	{ "V10 tickle fields (6.5)", test_v10_tickle_fields },
	{ "V11 stats fields (6.7)", test_v11_stats_fields },
	{ "V12-V14 auth fields (6.9)", test_v12_v14_auth_fields },
	{ "V15 dispatch info fields (6.8)", test_v15_dispatch_fields },
	{ "V1-V15 re-encode, extended", test_vectors_reencode_extended },
	{ "V1-V6 re-encode, strict", test_vectors_reencode_strict },
	{ "strict refuses casalb TLVs (4.5)", test_strict_refuses_casalb_tlvs },
	{ "encode_wildcard gives V1/V5", test_encode_wildcard_v1_v5 },
	{ "encode_fixed gives V3/V4/N17", test_encode_fixed_v3_v4 },
	{ "encode_ip_packet gives V2/V6", test_encode_ip_packet_v2_v6 },
	{ "encode_hello gives V8/V9", test_encode_hello_v8_v9 },
	{ "encode_tickle gives V10", test_encode_tickle_v10 },
	{ "encode_stats gives V11", test_encode_stats_v11 },
	{ "per-type encoders reject", test_type_encoders_reject },
	{ "action defaults (6.1, 6.2)", test_action_defaults },
	{ "casa_encode errors", test_encode_errors },
	{ "F1/F3 datagrams (10.2)", test_datagrams_f1_f3 },
	{ "F2 GRE datagram (10.2)", test_datagram_f2_gre },
	{ "N1-N29 results (10.4)", test_negative_vectors },
	{ "TLV counts of N12/N26", test_tlv_counts },
	{ "N29 verifies AUTH_BAD", test_n29_verify_bad },
	{ "skipped TLVs not re-encoded", test_skipped_tlvs_not_reencoded },
	{ "size limits (8 step 1, 9)", test_size_limits },
	{ "encode_ip_packet sizes", test_encode_ip_packet_sizes },
	{ "field checks and TLV rules", test_field_checks_and_tlv_rules },
	{ "NAME/EXCERPT length bounds", test_variable_length_bounds },
	{ "truncations of V1-V15 (10.4)", test_truncations },
	{ "length byte changes of V1-V15 (11.4)", test_length_field_mutations },
	{ "random round trip", test_random_round_trip },
	{ "casa_msg_equal", test_msg_equal },
	{ "error names (11.1)", test_err_names },
	{ "other names", test_other_names },
	{ "criteria format (5.6)", test_criteria_format },
	{ "hello flags and caps format", test_flags_format },
	{ "ip format", test_ip_format },
	{ "criteria match (5.6)", test_criteria_match },
	{ "stream framing (11.6)", test_stream_framing },
	CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
	return tu_run_suite("casa codec", tests, argc, argv);
}
