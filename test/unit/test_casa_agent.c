/*
 * test_casa_agent.c - CUnit tests of the agent protocol codec (casa.h, "agent protocol
 * (casalb-agent/1)"; docs/agent-protocol.md): the per-type encoders, casa_decode and casa_encode
 * on the eight agent messages, every field check with its err_offset, the list counts,
 * truncations, the TLV rules (NAME, DISPATCH_INFO, AUTH), signing with casa_sign/casa_verify,
 * the getters and the names.
 *
 * Offsets in the tables below are from the message start: the primary TLV starts at 4, so
 * "+N from the TLV start" in the header comment is message offset 4 + N.
 *
 * Usage: test_casa_agent [vector dir]   (the directory is not read; meson passes it anyway).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casa.h"
#include "test_util.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MSG_CAP 40000 /* more than the largest agent message (CONN_TABLE, 2048 entries) */
#define TLV 4         /* the primary TLV's offset in the message */

#define AGENT_ID 0x0A000102u /* 10.0.1.2, the agent's sender id */
#define SM_ID 0x09439C49u    /* 9.67.156.73 */
#define EPOCH 0x65A1B2C3u
#define VIP 0x09439D11u    /* 9.67.157.17 */
#define CLIENT 0x09439C68u /* 9.67.156.104 */
#define NOW 0x3B532A52u    /* the vectors' timestamp (casa-protocol.md 10.3) */

static const char test_key[] = "casalb-test-key";

/* ---- sample messages ----------------------------------------------------------------------- */

static const struct casa_agent_register sample_reg = {
	.version = CASA_AGENT_VERSION,
	.sender_id = AGENT_ID,
	.epoch = EPOCH,
	.keepalive_s = 5,
	.hold_s = 15,
	.caps = CASA_AGENT_CAP_L2 | CASA_AGENT_CAP_CONN_END | CASA_AGENT_CAP_RESYNC |
		CASA_AGENT_CAP_LOAD,
};

static const struct casa_agent_register sample_ack = {
	.status = CASA_AGENT_ST_OK,
	.sender_id = SM_ID,
	.epoch = EPOCH + 1,
	.keepalive_s = 10,
	.hold_s = 30,
	.caps = 7, /* target id */
};

static const struct casa_dispatch_info sample_gre = {
	.method = CASA_DISPATCH_GRE,
	.gre_flags = CASA_GRE_F_KEY,
	.tunnel_endpoint = 0x0A000102u,
	.gre_key = 42,
};

static const struct casa_agent_service sample_services[] = {
	{ .vip = VIP, .port = 80, .protocol = 6, .dispatch = CASA_DISPATCH_L2 },
	{ .vip = VIP, .port = 443, .protocol = 6, .dispatch = CASA_DISPATCH_GRE },
	{ .vip = VIP + 1, .port = 0, .protocol = 17, .dispatch = CASA_DISPATCH_L2 },
};

static const struct casa_agent_service sample_ready[] = {
	{ .vip = VIP, .port = 80, .protocol = 6, .ready = 4 },
	{ .vip = VIP + 1, .port = 0, .protocol = 17, .ready = 0 },
};

static const struct casa_agent_conn sample_ends[] = {
	{ CLIENT, VIP, 40001, 80, 6, CASA_AGENT_END_CLOSED, 0 },
	{ CLIENT + 1, VIP, 40002, 443, 6, CASA_AGENT_END_RESET, 0 },
	{ CLIENT + 2, VIP + 1, 5353, 53, 17, CASA_AGENT_END_TIMEOUT, 0 },
};

static const struct casa_agent_conn sample_table[] = {
	{ CLIENT, VIP, 40001, 80, 6, CASA_AGENT_CONN_ESTABLISHED, 0 },
	{ CLIENT + 3, VIP, 40004, 80, 6, CASA_AGENT_CONN_CLOSING, 0 },
};

static const struct casa_agent_load sample_load = {
	.capacity = 48, .qos = 125, .active = 1234, .cpu_idle = 750, .pressure = 310, .retrans = 9
};

static const struct casa_agent_keepalive sample_ka = { .sender_id = AGENT_ID,
						       .seq = 77,
						       .time_ms = 0xDEADBEEFu };

static size_t build_register(uint8_t *b, size_t cap)
{
	return casa_encode_agent_register(b, cap, &sample_reg, "web-1", &sample_gre);
}

static size_t build_register_ack(uint8_t *b, size_t cap)
{
	return casa_encode_agent_register_ack(b, cap, &sample_ack, &sample_gre);
}

static size_t build_services(uint8_t *b, size_t cap)
{
	return casa_encode_agent_services(b, cap, CASA_MSG_AGENT_SERVICES, sample_services,
					  ARRAY_SIZE(sample_services));
}

static size_t build_ready(uint8_t *b, size_t cap)
{
	return casa_encode_agent_services(b, cap, CASA_MSG_AGENT_READY, sample_ready,
					  ARRAY_SIZE(sample_ready));
}

static size_t build_conn_end(uint8_t *b, size_t cap)
{
	// flags and resync id are ignored for CONN_END.
	return casa_encode_agent_conns(b, cap, CASA_MSG_AGENT_CONN_END, 0xFFFF, 99, sample_ends,
				       ARRAY_SIZE(sample_ends));
}

static size_t build_load(uint8_t *b, size_t cap)
{
	return casa_encode_agent_load(b, cap, &sample_load);
}

static size_t build_conn_table(uint8_t *b, size_t cap)
{
	return casa_encode_agent_conns(b, cap, CASA_MSG_AGENT_CONN_TABLE,
				       CASA_AGENT_TBL_FIRST | CASA_AGENT_TBL_LAST, 0x1234,
				       sample_table, ARRAY_SIZE(sample_table));
}

static size_t build_keepalive(uint8_t *b, size_t cap)
{
	return casa_encode_agent_keepalive(b, cap, &sample_ka);
}

struct sample {
	const char *name;
	uint16_t type;
	size_t len; /* expected encoded length */
	size_t (*build)(uint8_t *buf, size_t cap);
};

/* REGISTER: 4 + 24 + NAME "web-1" (9, padded 12) + DISPATCH_INFO 24. */
static const struct sample samples[] = {
	{ "REGISTER", CASA_MSG_AGENT_REGISTER, 64, build_register },
	{ "REGISTER_ACK", CASA_MSG_AGENT_REGISTER_ACK, 52, build_register_ack },
	{ "SERVICES", CASA_MSG_AGENT_SERVICES, 4 + 8 + 8 * 3, build_services },
	{ "READY", CASA_MSG_AGENT_READY, 4 + 8 + 12 * 2, build_ready },
	{ "CONN_END", CASA_MSG_AGENT_CONN_END, 4 + 8 + 16 * 3, build_conn_end },
	{ "LOAD", CASA_MSG_AGENT_LOAD, 24, build_load },
	{ "CONN_TABLE", CASA_MSG_AGENT_CONN_TABLE, 4 + 12 + 16 * 2, build_conn_table },
	{ "KEEPALIVE", CASA_MSG_AGENT_KEEPALIVE, 20, build_keepalive },
};

static const struct sample *sample_of(uint16_t type)
{
	for (size_t i = 0; i < ARRAY_SIZE(samples); i++)
		if (samples[i].type == type)
			return &samples[i];
	return NULL;
}

/* Encode a sample into a fresh heap buffer of exactly its length (ASan sees over-reads). */
static uint8_t *sample_bytes(uint16_t type, size_t *len)
{
	static uint8_t tmp[MSG_CAP];
	const struct sample *s = sample_of(type);

	*len = s->build(tmp, sizeof(tmp));
	TU_EQ(*len, s->len);
	return tu_dup(tmp, *len);
}

/* Decode into a struct filled with junk first (only `present` members carry meaning). */
static enum casa_err decode(const uint8_t *buf, size_t len, struct casa_msg *m)
{
	memset(m, 0xA5, sizeof(*m));
	return casa_decode(buf, len, CASA_MSG_MAX_HARD, m);
}

/* ---- round trips ----------------------------------------------------------------------------- */

static void check_round_trip(const struct sample *s)
{
	size_t len;
	uint8_t *in = sample_bytes(s->type, &len), *out = tu_alloc(len), *shorter;
	struct casa_msg m, again;
	int n;

	TU_ERR(decode(in, len, &m), CASA_OK, s->name);
	TU_EQ(m.type, s->type);
	TU_CHECK(m.present & CASA_HAS_AGENT, "%s: CASA_HAS_AGENT not set", s->name);
	TU_EQ(m.skipped_tlvs, 0);
	n = casa_encode(&m, CASA_MODE_EXTENDED, out, len);
	TU_EQI(n, (long long)len);
	TU_BYTES(out, len, in, len, s->name);
	TU_ERR(decode(out, len, &again), CASA_OK, s->name);
	TU_CHECK(casa_msg_equal(&m, &again), "%s: decode(encode(decode)) differs", s->name);
	// Strict mode only restricts the Cisco messages.
	TU_EQI(casa_encode(&m, CASA_MODE_STRICT, out, len), (long long)len);
	shorter = tu_alloc(len - 1);
	TU_EQI(casa_encode(&m, CASA_MODE_EXTENDED, shorter, len - 1), -ENOSPC);
	TU_EQ(s->build(shorter, len - 1), 0);
	free(shorter);
	free(out);
	free(in);
}

static void test_round_trip_all(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(samples); i++)
		check_round_trip(&samples[i]);
}

/* Reserved and raw fields survive decode and re-encode byte-exactly. */
static void test_reserved_kept(void)
{
	static const struct {
		uint16_t type;
		size_t off;
		uint8_t value;
	} raw[] = {
		{ CASA_MSG_AGENT_REGISTER, TLV + 5, 0x5A },         /* flags */
		{ CASA_MSG_AGENT_REGISTER, TLV + 6, 0x12 },         /* reserved */
		{ CASA_MSG_AGENT_REGISTER, TLV + 23, 0xFF },        /* unknown capability bit */
		{ CASA_MSG_AGENT_REGISTER_ACK, TLV + 5, 0x77 },     /* reserved byte */
		{ CASA_MSG_AGENT_REGISTER_ACK, TLV + 7, 0x01 },     /* reserved */
		{ CASA_MSG_AGENT_SERVICES, TLV + 7, 0x33 },         /* list reserved */
		{ CASA_MSG_AGENT_READY, TLV + 6, 0x80 },            /* list reserved */
		{ CASA_MSG_AGENT_READY, TLV + 8 + 7, 0xAB },        /* entry byte 7 */
		{ CASA_MSG_AGENT_CONN_END, TLV + 6, 0x01 },         /* list reserved */
		{ CASA_MSG_AGENT_CONN_END, TLV + 8 + 15, 0x9 },     /* entry reserved */
		{ CASA_MSG_AGENT_LOAD, TLV + 5, 0xC0 },             /* reserved */
		{ CASA_MSG_AGENT_CONN_TABLE, TLV + 4, 0xF0 },       /* unknown flag bits */
		{ CASA_MSG_AGENT_CONN_TABLE, TLV + 12 + 14, 0x44 }, /* entry reserved */
	};

	for (size_t i = 0; i < ARRAY_SIZE(raw); i++) {
		size_t len;
		uint8_t *in = sample_bytes(raw[i].type, &len), *out;
		struct casa_msg m, again;
		const char *name = casa_msg_type_name(raw[i].type);

		in[raw[i].off] = raw[i].value;
		TU_ERR(decode(in, len, &m), CASA_OK, name);
		out = tu_alloc(len);
		TU_EQI(casa_encode(&m, CASA_MODE_EXTENDED, out, len), (long long)len);
		TU_BYTES(out, len, in, len, name);
		// The changed byte makes the message differ from the original sample.
		free(out);
		out = sample_bytes(raw[i].type, &len);
		TU_ERR(decode(out, len, &again), CASA_OK, name);
		TU_CHECK(!casa_msg_equal(&m, &again), "%s: byte %zu changed, still equal", name,
			 raw[i].off);
		free(out);
		free(in);
	}
}

/* ---- decoded fields and getters ------------------------------------------------------------ */

static void test_register_fields(void)
{
	size_t len;
	uint8_t *b = sample_bytes(CASA_MSG_AGENT_REGISTER, &len);
	struct casa_msg m;

	TU_ERR(decode(b, len, &m), CASA_OK, "REGISTER");
	TU_EQ(m.present, CASA_HAS_AGENT | CASA_HAS_NAME | CASA_HAS_DISPATCH_INFO);
	TU_EQ(m.tlv_count, 3);
	TU_EQ(m.agent.reg.version, 1);
	TU_EQ(m.agent.reg.flags, 0);
	TU_EQ(m.agent.reg.sender_id, AGENT_ID);
	TU_EQ(m.agent.reg.epoch, EPOCH);
	TU_EQ(m.agent.reg.keepalive_s, 5);
	TU_EQ(m.agent.reg.hold_s, 15);
	TU_EQ(m.agent.reg.caps, 0x1D);
	TU_EQ(m.agent.reg.status, 0);
	TU_EQ(m.name.len, 5);
	TU_CHECK(memcmp(m.name.bytes, "web-1", 5) == 0, "name");
	TU_EQ(m.dispatch.method, CASA_DISPATCH_GRE);
	TU_EQ(m.dispatch.tunnel_endpoint, 0x0A000102u);
	TU_EQ(m.dispatch.gre_key, 42);
	free(b);

	b = sample_bytes(CASA_MSG_AGENT_REGISTER_ACK, &len);
	TU_ERR(decode(b, len, &m), CASA_OK, "REGISTER_ACK");
	TU_EQ(m.present, CASA_HAS_AGENT | CASA_HAS_DISPATCH_INFO);
	TU_EQ(m.agent.reg.status, CASA_AGENT_ST_OK);
	TU_EQ(m.agent.reg.version, 0);
	TU_EQ(m.agent.reg.sender_id, SM_ID);
	TU_EQ(m.agent.reg.epoch, EPOCH + 1);
	TU_EQ(m.agent.reg.keepalive_s, 10);
	TU_EQ(m.agent.reg.hold_s, 30);
	TU_EQ(m.agent.reg.caps, 7);
	free(b);
}

static void test_load_keepalive_fields(void)
{
	size_t len;
	uint8_t *b = sample_bytes(CASA_MSG_AGENT_LOAD, &len);
	struct casa_msg m;

	TU_ERR(decode(b, len, &m), CASA_OK, "LOAD");
	TU_EQ(m.present, CASA_HAS_AGENT);
	TU_EQ(m.agent.load.capacity, 48);
	TU_EQ(m.agent.load.reserved, 0);
	TU_EQ(m.agent.load.qos, 125);
	TU_EQ(m.agent.load.active, 1234);
	TU_EQ(m.agent.load.cpu_idle, 750);
	TU_EQ(m.agent.load.pressure, 310);
	TU_EQ(m.agent.load.retrans, 9);
	free(b);

	b = sample_bytes(CASA_MSG_AGENT_KEEPALIVE, &len);
	TU_ERR(decode(b, len, &m), CASA_OK, "KEEPALIVE");
	TU_EQ(m.agent.keepalive.sender_id, AGENT_ID);
	TU_EQ(m.agent.keepalive.seq, 77);
	TU_EQ(m.agent.keepalive.time_ms, 0xDEADBEEFu);
	free(b);
}

static void check_services(uint16_t type, const struct casa_agent_service *want, unsigned n)
{
	size_t len;
	uint8_t *b = sample_bytes(type, &len);
	struct casa_agent_service got;
	struct casa_msg m;

	TU_ERR(decode(b, len, &m), CASA_OK, casa_msg_type_name(type));
	TU_EQ(m.agent.list.n, n);
	TU_EQ(m.agent.list.flags, 0);
	TU_EQ(m.agent.list.reserved, 0);
	TU_EQ(m.agent.list.resync_id, 0);
	TU_CHECK(m.agent.list.entries == b + TLV + 8, "entries point into the buffer");
	for (unsigned i = 0; i < n; i++) {
		memset(&got, 0xA5, sizeof(got));
		casa_agent_service_get(&m, i, &got);
		TU_EQ(got.vip, want[i].vip);
		TU_EQ(got.port, want[i].port);
		TU_EQ(got.protocol, want[i].protocol);
		TU_EQ(got.dispatch, want[i].dispatch);
		TU_EQ(got.ready, want[i].ready);
	}
	// Out of range, or the wrong getter: all zero.
	memset(&got, 0xA5, sizeof(got));
	casa_agent_service_get(&m, n, &got);
	TU_EQ(got.vip | got.port | got.protocol | got.dispatch | got.ready, 0);
	free(b);
}

static void check_conns(uint16_t type, const struct casa_agent_conn *want, unsigned n)
{
	size_t len;
	uint8_t *b = sample_bytes(type, &len);
	struct casa_agent_conn got;
	struct casa_agent_service svc;
	struct casa_msg m;

	TU_ERR(decode(b, len, &m), CASA_OK, casa_msg_type_name(type));
	TU_EQ(m.agent.list.n, n);
	for (unsigned i = 0; i < n; i++) {
		memset(&got, 0xA5, sizeof(got));
		casa_agent_conn_get(&m, i, &got);
		TU_CHECK(memcmp(&got, &want[i], sizeof(got)) == 0, "%s entry %u differs",
			 casa_msg_type_name(type), i);
	}
	memset(&got, 0xA5, sizeof(got));
	casa_agent_conn_get(&m, n, &got);
	TU_EQ(got.client | got.vip | got.client_port | got.vip_port | got.protocol | got.state, 0);
	memset(&svc, 0xA5, sizeof(svc));
	casa_agent_service_get(&m, 0, &svc);
	TU_EQ(svc.vip | svc.port | svc.protocol | svc.dispatch | svc.ready, 0);
	free(b);
}

static void test_list_fields_and_getters(void)
{
	size_t len;
	uint8_t *b;
	struct casa_msg m;
	struct casa_agent_conn c;

	check_services(CASA_MSG_AGENT_SERVICES, sample_services, ARRAY_SIZE(sample_services));
	check_services(CASA_MSG_AGENT_READY, sample_ready, ARRAY_SIZE(sample_ready));
	check_conns(CASA_MSG_AGENT_CONN_END, sample_ends, ARRAY_SIZE(sample_ends));
	check_conns(CASA_MSG_AGENT_CONN_TABLE, sample_table, ARRAY_SIZE(sample_table));

	b = sample_bytes(CASA_MSG_AGENT_CONN_END, &len);
	TU_ERR(decode(b, len, &m), CASA_OK, "CONN_END");
	TU_EQ(m.agent.list.flags, 0); // the encoder ignores flags and resync id for CONN_END
	TU_EQ(m.agent.list.resync_id, 0);
	free(b);
	b = sample_bytes(CASA_MSG_AGENT_CONN_TABLE, &len);
	TU_ERR(decode(b, len, &m), CASA_OK, "CONN_TABLE");
	TU_EQ(m.agent.list.flags, CASA_AGENT_TBL_FIRST | CASA_AGENT_TBL_LAST);
	TU_EQ(m.agent.list.resync_id, 0x1234);
	TU_CHECK(m.agent.list.entries == b + TLV + 12, "entries point into the buffer");
	free(b);

	// A non-list agent message has no entries.
	b = sample_bytes(CASA_MSG_AGENT_LOAD, &len);
	TU_ERR(decode(b, len, &m), CASA_OK, "LOAD");
	memset(&c, 0xA5, sizeof(c));
	casa_agent_conn_get(&m, 0, &c);
	TU_EQ(c.client | c.vip | c.state, 0);
	free(b);
}

/* Empty lists are valid: SERVICES with no service, a CONN_END or CONN_TABLE chunk of 0. */
static void test_empty_lists(void)
{
	static const uint16_t types[] = { CASA_MSG_AGENT_SERVICES, CASA_MSG_AGENT_READY,
					  CASA_MSG_AGENT_CONN_END, CASA_MSG_AGENT_CONN_TABLE };
	uint8_t buf[64];

	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		bool svc = types[i] <= CASA_MSG_AGENT_READY;
		size_t n = svc ? casa_encode_agent_services(buf, sizeof(buf), types[i], NULL, 0) :
				 casa_encode_agent_conns(buf, sizeof(buf), types[i],
							 CASA_AGENT_TBL_LAST, 5, NULL, 0);
		size_t want = types[i] == CASA_MSG_AGENT_CONN_TABLE ? 16 : 12;
		struct casa_msg m;
		uint8_t *copy;

		TU_EQ(n, want);
		copy = tu_dup(buf, n);
		TU_ERR(decode(copy, n, &m), CASA_OK, casa_msg_type_name(types[i]));
		TU_EQ(m.agent.list.n, 0);
		free(copy);
	}
}

/* ---- field checks -------------------------------------------------------------------------- */

struct field_case {
	uint16_t type;
	size_t off;     /* message offset of the bytes to set */
	unsigned width; /* 1 or 2 */
	unsigned value;
	enum casa_err want;
	size_t want_off; /* err_offset when want != CASA_OK */
};

/* Entry k of a list starts at message offset TLV + head + k * size. */
#define SVC(k) (TLV + 8 + 8 * (k))
#define RDY(k) (TLV + 8 + 12 * (k))
#define END(k) (TLV + 8 + 16 * (k))
#define TBL(k) (TLV + 12 + 16 * (k))

static const struct field_case field_cases[] = {
	// REGISTER: version >= 1, keepalive >= 1, hold >= keepalive (sample: 5 / 15).
	{ CASA_MSG_AGENT_REGISTER, TLV + 4, 1, 0, CASA_E_FIELD, TLV + 4 },
	{ CASA_MSG_AGENT_REGISTER, TLV + 4, 1, 2, CASA_OK, 0 },
	{ CASA_MSG_AGENT_REGISTER, TLV + 16, 2, 0, CASA_E_FIELD, TLV + 16 },
	{ CASA_MSG_AGENT_REGISTER, TLV + 18, 2, 4, CASA_E_FIELD, TLV + 18 },
	{ CASA_MSG_AGENT_REGISTER, TLV + 18, 2, 5, CASA_OK, 0 },
	{ CASA_MSG_AGENT_REGISTER, TLV + 18, 2, 0, CASA_E_FIELD, TLV + 18 },
	// REGISTER_ACK: status <= 4, the same timer rules (sample: 10 / 30).
	{ CASA_MSG_AGENT_REGISTER_ACK, TLV + 4, 1, CASA_AGENT_ST_MAX, CASA_OK, 0 },
	{ CASA_MSG_AGENT_REGISTER_ACK, TLV + 4, 1, CASA_AGENT_ST_MAX + 1, CASA_E_FIELD, TLV + 4 },
	{ CASA_MSG_AGENT_REGISTER_ACK, TLV + 4, 1, 0xFF, CASA_E_FIELD, TLV + 4 },
	{ CASA_MSG_AGENT_REGISTER_ACK, TLV + 16, 2, 0, CASA_E_FIELD, TLV + 16 },
	{ CASA_MSG_AGENT_REGISTER_ACK, TLV + 18, 2, 9, CASA_E_FIELD, TLV + 18 },
	{ CASA_MSG_AGENT_REGISTER_ACK, TLV + 18, 2, 10, CASA_OK, 0 },
	// LOAD: capacity <= 64, qos <= 10000, cpu idle <= 1000, pressure <= 10000.
	{ CASA_MSG_AGENT_LOAD, TLV + 4, 1, 64, CASA_OK, 0 },
	{ CASA_MSG_AGENT_LOAD, TLV + 4, 1, 65, CASA_E_FIELD, TLV + 4 },
	{ CASA_MSG_AGENT_LOAD, TLV + 6, 2, 10000, CASA_OK, 0 },
	{ CASA_MSG_AGENT_LOAD, TLV + 6, 2, 10001, CASA_E_FIELD, TLV + 6 },
	{ CASA_MSG_AGENT_LOAD, TLV + 12, 2, 1000, CASA_OK, 0 },
	{ CASA_MSG_AGENT_LOAD, TLV + 12, 2, 1001, CASA_E_FIELD, TLV + 12 },
	{ CASA_MSG_AGENT_LOAD, TLV + 14, 2, 10000, CASA_OK, 0 },
	{ CASA_MSG_AGENT_LOAD, TLV + 14, 2, 10001, CASA_E_FIELD, TLV + 14 },
	{ CASA_MSG_AGENT_LOAD, TLV + 14, 2, 0xFFFF, CASA_E_FIELD, TLV + 14 },
	// SERVICES: n == 3; entry protocol 1..255, dispatch 1..2, port 0 allowed.
	{ CASA_MSG_AGENT_SERVICES, TLV + 4, 2, 2, CASA_E_FIELD, TLV + 4 },
	{ CASA_MSG_AGENT_SERVICES, TLV + 4, 2, 4, CASA_E_FIELD, TLV + 4 },
	{ CASA_MSG_AGENT_SERVICES, TLV + 4, 2, 0, CASA_E_FIELD, TLV + 4 },
	{ CASA_MSG_AGENT_SERVICES, SVC(0) + 4, 2, 0, CASA_OK, 0 },
	{ CASA_MSG_AGENT_SERVICES, SVC(1) + 6, 1, 0, CASA_E_FIELD, SVC(1) + 6 },
	{ CASA_MSG_AGENT_SERVICES, SVC(1) + 6, 1, 255, CASA_OK, 0 },
	{ CASA_MSG_AGENT_SERVICES, SVC(2) + 7, 1, 0, CASA_E_FIELD, SVC(2) + 7 },
	{ CASA_MSG_AGENT_SERVICES, SVC(2) + 7, 1, 3, CASA_E_FIELD, SVC(2) + 7 },
	// READY: n == 2; entry protocol 1..255; byte 7 reserved (raw); port 0 allowed.
	{ CASA_MSG_AGENT_READY, TLV + 4, 2, 1, CASA_E_FIELD, TLV + 4 },
	{ CASA_MSG_AGENT_READY, TLV + 4, 2, 3, CASA_E_FIELD, TLV + 4 },
	{ CASA_MSG_AGENT_READY, RDY(0) + 4, 2, 0, CASA_OK, 0 },
	{ CASA_MSG_AGENT_READY, RDY(1) + 6, 1, 0, CASA_E_FIELD, RDY(1) + 6 },
	{ CASA_MSG_AGENT_READY, RDY(1) + 7, 1, 0xFF, CASA_OK, 0 },
	// CONN_END: n == 3; client port, VIP port non-zero; protocol 1..255; state 1..3.
	{ CASA_MSG_AGENT_CONN_END, TLV + 4, 2, 2, CASA_E_FIELD, TLV + 4 },
	{ CASA_MSG_AGENT_CONN_END, TLV + 4, 2, 0xFFFF, CASA_E_FIELD, TLV + 4 },
	{ CASA_MSG_AGENT_CONN_END, END(0) + 8, 2, 0, CASA_E_FIELD, END(0) + 8 },
	{ CASA_MSG_AGENT_CONN_END, END(1) + 10, 2, 0, CASA_E_FIELD, END(1) + 10 },
	{ CASA_MSG_AGENT_CONN_END, END(2) + 12, 1, 0, CASA_E_FIELD, END(2) + 12 },
	{ CASA_MSG_AGENT_CONN_END, END(2) + 13, 1, 0, CASA_E_FIELD, END(2) + 13 },
	{ CASA_MSG_AGENT_CONN_END, END(2) + 13, 1, 4, CASA_E_FIELD, END(2) + 13 },
	{ CASA_MSG_AGENT_CONN_END, END(0) + 13, 1, 3, CASA_OK, 0 },
	// CONN_TABLE: n at +6 == 2; the same entry checks with state 1..2.
	{ CASA_MSG_AGENT_CONN_TABLE, TLV + 6, 2, 1, CASA_E_FIELD, TLV + 6 },
	{ CASA_MSG_AGENT_CONN_TABLE, TLV + 6, 2, 3, CASA_E_FIELD, TLV + 6 },
	{ CASA_MSG_AGENT_CONN_TABLE, TLV + 4, 2, 0, CASA_OK, 0 },
	{ CASA_MSG_AGENT_CONN_TABLE, TBL(0) + 8, 2, 0, CASA_E_FIELD, TBL(0) + 8 },
	{ CASA_MSG_AGENT_CONN_TABLE, TBL(1) + 10, 2, 0, CASA_E_FIELD, TBL(1) + 10 },
	{ CASA_MSG_AGENT_CONN_TABLE, TBL(1) + 12, 1, 0, CASA_E_FIELD, TBL(1) + 12 },
	{ CASA_MSG_AGENT_CONN_TABLE, TBL(0) + 13, 1, 0, CASA_E_FIELD, TBL(0) + 13 },
	{ CASA_MSG_AGENT_CONN_TABLE, TBL(1) + 13, 1, 3, CASA_E_FIELD, TBL(1) + 13 },
	// KEEPALIVE has no field checks.
	{ CASA_MSG_AGENT_KEEPALIVE, TLV + 4, 2, 0, CASA_OK, 0 },
};

static void test_field_checks(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(field_cases); i++) {
		const struct field_case *c = &field_cases[i];
		const char *name = casa_msg_type_name(c->type);
		size_t len;
		uint8_t *b = sample_bytes(c->type, &len);
		struct casa_msg m;
		enum casa_err got;

		if (c->width == 1) {
			b[c->off] = (uint8_t)c->value;
		} else {
			b[c->off] = (uint8_t)(c->value >> 8);
			b[c->off + 1] = (uint8_t)c->value;
		}
		got = decode(b, len, &m);
		TU_CHECK(got == c->want && (got == CASA_OK || m.err_offset == c->want_off),
			 "case %zu: %s offset %zu = %u: got %s at %zu, expected %s at %zu", i, name,
			 c->off, c->value, tu_err_ident(got), m.err_offset, tu_err_ident(c->want),
			 c->want_off);
		free(b);
	}
}

/* The first failing check in message order wins (spec 8: deterministic). */
static void test_field_check_order(void)
{
	size_t len;
	uint8_t *b = sample_bytes(CASA_MSG_AGENT_CONN_END, &len);
	struct casa_msg m;

	b[END(2) + 13] = 0; // entry 2 state
	b[END(1) + 12] = 0; // entry 1 protocol
	TU_ERR(decode(b, len, &m), CASA_E_FIELD, "CONN_END two bad entries");
	TU_EQ(m.err_offset, END(1) + 12);
	b[TLV + 5] = 9; // and a wrong count
	TU_ERR(decode(b, len, &m), CASA_E_FIELD, "CONN_END bad n");
	TU_EQ(m.err_offset, TLV + 4);
	free(b);

	b = sample_bytes(CASA_MSG_AGENT_LOAD, &len);
	b[TLV + 14] = 0xFF;
	b[TLV + 4] = 200;
	TU_ERR(decode(b, len, &m), CASA_E_FIELD, "LOAD");
	TU_EQ(m.err_offset, TLV + 4);
	free(b);
}

/* The per-type encoders refuse what the decoder would refuse. */
static void test_encoders_refuse(void)
{
	uint8_t buf[MSG_CAP];
	struct casa_agent_register r = sample_reg;
	struct casa_agent_load l = sample_load;
	struct casa_agent_service s[2] = { sample_services[0], sample_services[1] };
	struct casa_agent_conn c[2] = { sample_ends[0], sample_ends[1] };
	struct casa_dispatch_info d = sample_gre;
	char long_name[CASA_NAME_MAX + 2];

	TU_EQ(casa_encode_agent_register(buf, sizeof(buf), &r, NULL, NULL), 0);
	TU_EQ(casa_encode_agent_register(buf, sizeof(buf), &r, "", NULL), 0);
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	TU_EQ(casa_encode_agent_register(buf, sizeof(buf), &r, long_name, NULL), 0);
	long_name[CASA_NAME_MAX] = '\0';
	TU_EQ(casa_encode_agent_register(buf, sizeof(buf), &r, long_name, NULL), 4 + 24 + 68);
	TU_EQ(casa_encode_agent_register(buf, sizeof(buf), &r, "\xC0\x80", NULL), 0); // overlong
	TU_EQ(casa_encode_agent_register(buf, sizeof(buf), &r, "web-1", NULL), 40);
	d.tunnel_endpoint = 0;
	TU_EQ(casa_encode_agent_register(buf, sizeof(buf), &r, "web-1", &d), 0);
	TU_EQ(casa_encode_agent_register_ack(buf, sizeof(buf), &sample_ack, &d), 0);
	r.version = 0;
	TU_EQ(casa_encode_agent_register(buf, sizeof(buf), &r, "web-1", NULL), 0);
	r = sample_reg;
	r.hold_s = 4;
	TU_EQ(casa_encode_agent_register(buf, sizeof(buf), &r, "web-1", NULL), 0);
	r = sample_ack;
	r.status = CASA_AGENT_ST_MAX + 1;
	TU_EQ(casa_encode_agent_register_ack(buf, sizeof(buf), &r, NULL), 0);
	r.status = CASA_AGENT_ST_REFUSED;
	TU_EQ(casa_encode_agent_register_ack(buf, sizeof(buf), &r, NULL), 28);
	r.keepalive_s = 0;
	TU_EQ(casa_encode_agent_register_ack(buf, sizeof(buf), &r, NULL), 0);

	l.capacity = 65;
	TU_EQ(casa_encode_agent_load(buf, sizeof(buf), &l), 0);
	l = sample_load;
	l.cpu_idle = 1001;
	TU_EQ(casa_encode_agent_load(buf, sizeof(buf), &l), 0);

	TU_EQ(casa_encode_agent_services(buf, sizeof(buf), CASA_MSG_AGENT_CONN_END, s, 2), 0);
	TU_EQ(casa_encode_agent_services(buf, sizeof(buf), CASA_MSG_AGENT_SERVICES, NULL, 2), 0);
	s[1].dispatch = 0;
	TU_EQ(casa_encode_agent_services(buf, sizeof(buf), CASA_MSG_AGENT_SERVICES, s, 2), 0);
	TU_EQ(casa_encode_agent_services(buf, sizeof(buf), CASA_MSG_AGENT_READY, s, 2), 36);
	s[1].protocol = 0;
	TU_EQ(casa_encode_agent_services(buf, sizeof(buf), CASA_MSG_AGENT_READY, s, 2), 0);

	TU_EQ(casa_encode_agent_conns(buf, sizeof(buf), CASA_MSG_AGENT_READY, 0, 0, c, 2), 0);
	TU_EQ(casa_encode_agent_conns(buf, sizeof(buf), CASA_MSG_AGENT_CONN_END, 0, 0, NULL, 1), 0);
	c[1].state = CASA_AGENT_END_TIMEOUT;
	TU_EQ(casa_encode_agent_conns(buf, sizeof(buf), CASA_MSG_AGENT_CONN_END, 0, 0, c, 2), 44);
	TU_EQ(casa_encode_agent_conns(buf, sizeof(buf), CASA_MSG_AGENT_CONN_TABLE, 0, 0, c, 2), 0);
	c[1].state = 0;
	TU_EQ(casa_encode_agent_conns(buf, sizeof(buf), CASA_MSG_AGENT_CONN_END, 0, 0, c, 2), 0);
	c[1] = sample_ends[1];
	c[1].vip_port = 0;
	TU_EQ(casa_encode_agent_conns(buf, sizeof(buf), CASA_MSG_AGENT_CONN_END, 0, 0, c, 2), 0);
}

/* The largest lists: 512 services, 2048 connections; one more is refused. The biggest messages
 * exceed the UDP receive default (9216), so an agent session decodes with a larger max_len. */
static void test_list_limits(void)
{
	static struct casa_agent_service s[CASA_AGENT_SERVICES_MAX + 1];
	static struct casa_agent_conn c[CASA_AGENT_CONNS_MAX + 1];
	static uint8_t buf[MSG_CAP];
	struct casa_msg m;
	size_t n;

	for (size_t i = 0; i < ARRAY_SIZE(s); i++)
		s[i] = (struct casa_agent_service){ VIP, (uint16_t)i, 6, CASA_DISPATCH_L2, 1 };
	for (size_t i = 0; i < ARRAY_SIZE(c); i++)
		c[i] = (struct casa_agent_conn){
			CLIENT + (uint32_t)i,  VIP, (uint16_t)(1024 + i), 80, 6,
			CASA_AGENT_END_CLOSED, 0
		};
	n = casa_encode_agent_services(buf, sizeof(buf), CASA_MSG_AGENT_READY, s,
				       CASA_AGENT_SERVICES_MAX);
	TU_EQ(n, 4 + 8 + 12 * CASA_AGENT_SERVICES_MAX);
	TU_EQ(casa_encode_agent_services(buf, sizeof(buf), CASA_MSG_AGENT_READY, s,
					 CASA_AGENT_SERVICES_MAX + 1),
	      0);
	n = casa_encode_agent_conns(buf, sizeof(buf), CASA_MSG_AGENT_CONN_TABLE, 0, 1, c,
				    CASA_AGENT_CONNS_MAX);
	TU_EQ(n, 4 + 12 + 16 * CASA_AGENT_CONNS_MAX);
	n = casa_encode_agent_conns(buf, sizeof(buf), CASA_MSG_AGENT_CONN_END, 0, 0, c,
				    CASA_AGENT_CONNS_MAX);
	TU_EQ(n, 4 + 8 + 16 * CASA_AGENT_CONNS_MAX);
	TU_ERR(casa_decode(buf, n, CASA_STREAM_MAX, &m), CASA_OK, "CONN_END of 2048");
	TU_EQ(m.agent.list.n, CASA_AGENT_CONNS_MAX);
	TU_ERR(casa_decode(buf, n, 0, &m), CASA_E_TOO_BIG, "CONN_END of 2048, default limit");
	TU_EQ(casa_encode_agent_conns(buf, sizeof(buf), CASA_MSG_AGENT_CONN_END, 0, 0, c,
				      CASA_AGENT_CONNS_MAX + 1),
	      0);
	// 2049 entries on the wire: the TLV length is past the registry maximum.
	{
		size_t len = 4 + 8 + 16 * (CASA_AGENT_CONNS_MAX + 1);

		n = casa_encode_agent_conns(buf, sizeof(buf), CASA_MSG_AGENT_CONN_END, 0, 0, c,
					    CASA_AGENT_CONNS_MAX);
		memcpy(buf + n, buf + n - 16, 16);
		buf[6] = (uint8_t)((len - 4) >> 8);
		buf[7] = (uint8_t)(len - 4);
		buf[8] = (uint8_t)((CASA_AGENT_CONNS_MAX + 1) >> 8);
		buf[9] = (uint8_t)(CASA_AGENT_CONNS_MAX + 1);
		TU_ERR(casa_decode(buf, len, CASA_STREAM_MAX, &m), CASA_E_TLV_LEN, "2049 entries");
		TU_EQ(m.err_offset, 6);
	}
}

/* ---- lengths and truncations --------------------------------------------------------------- */

/* Every primary TLV length other than the exact one (fixed) or head + k * entry (lists). */
static void test_tlv_lengths(void)
{
	struct tu_budget b = { 0 };

	for (size_t i = 0; i < ARRAY_SIZE(samples); i++) {
		const struct sample *s = &samples[i];
		size_t len;
		uint8_t *orig = sample_bytes(s->type, &len);
		size_t tlen = (size_t)orig[6] << 8 | orig[7];
		size_t esz =
			s->type == CASA_MSG_AGENT_SERVICES ? 8 :
			s->type == CASA_MSG_AGENT_READY    ? 12 :
			s->type == CASA_MSG_AGENT_CONN_END || s->type == CASA_MSG_AGENT_CONN_TABLE ?
							  16 :
							  0;
		size_t head = s->type == CASA_MSG_AGENT_CONN_TABLE ? 12 : 8;

		// A message holding only the primary TLV, padded, with every length 4..tlen+8.
		for (size_t l = 4; l <= tlen + 8; l++) {
			size_t mlen = 4 + ((l + 3) & ~(size_t)3);
			uint8_t *p = tu_alloc(mlen);
			struct casa_msg m;
			enum casa_err got, want;
			bool ok_len = esz ? l >= head && (l - head) % esz == 0 : l == tlen;

			memset(p, 0, mlen);
			memcpy(p, orig, 4 + (l < tlen ? l : tlen)); // zero padding
			p[6] = (uint8_t)(l >> 8);
			p[7] = (uint8_t)l;
			got = decode(p, mlen, &m);
			// Lengths the registry accepts reach the field checks (n or NAME).
			want = !ok_len                                         ? CASA_E_TLV_LEN :
			       s->type == CASA_MSG_AGENT_REGISTER && l == tlen ? CASA_E_MISSING :
			       l != tlen                                       ? CASA_E_FIELD :
										 CASA_OK;
			TU_BUDGET(&b,
				  got == want && (want == CASA_OK || want == CASA_E_MISSING ||
						  want == CASA_E_FIELD || m.err_offset == 6),
				  "%s TLV length %zu: got %s at %zu, expected %s", s->name, l,
				  tu_err_ident(got), m.err_offset, tu_err_ident(want));
			free(p);
		}
		free(orig);
	}
	TU_BUDGET_DONE(&b, "agent TLV lengths");
}

/* Cuts of REGISTER that end at a TLV end: 28 lacks NAME; 37 (unpadded NAME) and 40 decode. */
static enum casa_err truncation_expect(uint16_t type, size_t cut)
{
	if (type == CASA_MSG_AGENT_REGISTER && (cut == 37 || cut == 40))
		return CASA_OK;
	if (type == CASA_MSG_AGENT_REGISTER && cut == 28)
		return CASA_E_MISSING;
	if (type == CASA_MSG_AGENT_REGISTER_ACK && cut == 28)
		return CASA_OK; // DISPATCH_INFO is optional
	if (cut < 4)
		return CASA_E_SHORT;
	if (cut == 4)
		return CASA_E_MISSING; // a header without TLVs
	return CASA_E_TLV_TRUNC;
}

static void test_truncations(void)
{
	struct tu_budget b = { 0 };

	for (size_t i = 0; i < ARRAY_SIZE(samples); i++) {
		size_t len;
		uint8_t *orig = sample_bytes(samples[i].type, &len);

		for (size_t cut = 0; cut < len; cut++) {
			uint8_t *p = tu_dup(orig, cut);
			struct casa_msg m;
			enum casa_err got = decode(p, cut, &m), want;

			want = truncation_expect(samples[i].type, cut);
			TU_BUDGET(&b, got == want && (got == CASA_OK || m.err_offset <= cut),
				  "%s cut to %zu: got %s, expected %s", samples[i].name, cut,
				  tu_err_ident(got), tu_err_ident(want));
			free(p);
		}
		free(orig);
	}
	TU_BUDGET_DONE(&b, "truncated agent messages");
}

/* ---- TLV rules ----------------------------------------------------------------------------- */

/* Append a TLV (padded) to the message in buf[0..len); returns the new length. */
static size_t append_tlv(uint8_t *buf, size_t len, uint16_t type, const uint8_t *value, size_t vlen)
{
	size_t tlen = 4 + vlen, padded = (tlen + 3) & ~(size_t)3;

	buf[len] = (uint8_t)(type >> 8);
	buf[len + 1] = (uint8_t)type;
	buf[len + 2] = (uint8_t)(tlen >> 8);
	buf[len + 3] = (uint8_t)tlen;
	memcpy(buf + len + 4, value, vlen);
	memset(buf + len + tlen, 0, padded - tlen);
	return len + padded;
}

static enum casa_err decode_with(uint16_t type, uint16_t tlv, const uint8_t *value, size_t vlen,
				 struct casa_msg *m)
{
	uint8_t buf[256];
	const struct sample *s = sample_of(type);
	size_t len = s->build(buf, sizeof(buf));
	uint8_t *copy;
	enum casa_err e;

	len = append_tlv(buf, len, tlv, value, vlen);
	copy = tu_dup(buf, len);
	e = decode(copy, len, m);
	free(copy);
	return e;
}

static void test_tlv_rules(void)
{
	static const uint8_t name[] = "web-2";
	uint8_t dispatch[20] = { CASA_DISPATCH_L2 }, value16[16] = { 0 };
	struct casa_msg m;
	uint8_t buf[128];
	size_t len;
	uint8_t *b;

	// NAME only in REGISTER: skipped in the other agent messages (M = 0, spec 4.2).
	for (size_t i = 1; i < ARRAY_SIZE(samples); i++) {
		TU_ERR(decode_with(samples[i].type, CASA_TLV_NAME, name, 5, &m), CASA_OK,
		       samples[i].name);
		TU_EQ(m.skipped_tlvs, 1);
		TU_CHECK(!(m.present & CASA_HAS_NAME), "%s: NAME decoded", samples[i].name);
	}
	// DISPATCH_INFO in REGISTER and REGISTER_ACK only.
	TU_ERR(decode_with(CASA_MSG_AGENT_LOAD, CASA_TLV_DISPATCH_INFO, dispatch, 20, &m), CASA_OK,
	       "LOAD + DISPATCH_INFO");
	TU_EQ(m.skipped_tlvs, 1);
	TU_ERR(decode_with(CASA_MSG_AGENT_KEEPALIVE, CASA_TLV_DISPATCH_INFO, dispatch, 20, &m),
	       CASA_OK, "KEEPALIVE + DISPATCH_INFO");
	TU_EQ(m.skipped_tlvs, 1);
	// SENDER_INFO is not allowed in agent messages.
	TU_ERR(decode_with(CASA_MSG_AGENT_LOAD, CASA_TLV_SENDER_INFO, value16, 8, &m), CASA_OK,
	       "LOAD + SENDER_INFO");
	TU_EQ(m.skipped_tlvs, 1);
	// A second DISPATCH_INFO in REGISTER is a duplicate; a second primary too.
	len = build_register(buf, sizeof(buf));
	len = append_tlv(buf, len, CASA_TLV_DISPATCH_INFO, dispatch, 20);
	b = tu_dup(buf, len);
	TU_ERR(decode(b, len, &m), CASA_E_DUP, "REGISTER + 2 DISPATCH_INFO");
	TU_EQ(m.err_offset, 64);
	free(b);
	TU_ERR(decode_with(CASA_MSG_AGENT_KEEPALIVE, CASA_MSG_AGENT_KEEPALIVE, value16, 12, &m),
	       CASA_E_DUP, "KEEPALIVE twice");
	TU_EQ(m.err_offset, 20);
	// Another agent primary inside a message: unknown optional, skipped.
	TU_ERR(decode_with(CASA_MSG_AGENT_KEEPALIVE, CASA_MSG_AGENT_LOAD, value16, 16, &m), CASA_OK,
	       "KEEPALIVE + LOAD TLV");
	TU_EQ(m.skipped_tlvs, 1);
	TU_EQ(m.agent.keepalive.seq, 77);
	// casa_encode refuses a TLV the message does not allow.
	len = build_load(buf, sizeof(buf));
	b = tu_dup(buf, len);
	TU_ERR(decode(b, len, &m), CASA_OK, "LOAD");
	m.present |= CASA_HAS_NAME;
	m.name.bytes = name;
	m.name.len = 5;
	TU_EQI(casa_encode(&m, CASA_MODE_EXTENDED, buf, sizeof(buf)), -EINVAL);
	m.present &= ~(uint32_t)(CASA_HAS_NAME | CASA_HAS_AGENT);
	TU_EQI(casa_encode(&m, CASA_MODE_EXTENDED, buf, sizeof(buf)), -EINVAL); // no primary
	free(b);

	// REGISTER without NAME: CASA_E_MISSING at the primary TLV.
	len = casa_encode_agent_register(buf, sizeof(buf), &sample_reg, "x", NULL);
	TU_EQ(len, 4 + 24 + 8);
	b = tu_dup(buf, 28);
	TU_ERR(decode(b, 28, &m), CASA_E_MISSING, "REGISTER without NAME");
	TU_EQ(m.err_offset, 4);
	free(b);
	// A bad NAME in REGISTER is a field error at the NAME value.
	buf[32] = 0xFF;
	b = tu_dup(buf, len);
	TU_ERR(decode(b, len, &m), CASA_E_FIELD, "REGISTER NAME 0xFF");
	TU_EQ(m.err_offset, 32);
	free(b);

	// Header rules: wrong primary, unknown agent type, no TLV.
	len = build_keepalive(buf, sizeof(buf));
	buf[3] = 0x06; // type LOAD, first TLV KEEPALIVE
	b = tu_dup(buf, len);
	TU_ERR(decode(b, len, &m), CASA_E_TYPE_MISMATCH, "LOAD type, KEEPALIVE TLV");
	TU_EQ(m.err_offset, 4);
	free(b);
	buf[3] = 0x09;
	buf[5] = 0x09;
	b = tu_dup(buf, len);
	TU_ERR(decode(b, len, &m), CASA_E_MSG_TYPE, "type 0x7109");
	free(b);
	b = tu_dup((const uint8_t *)"\x00\x01\x71\x01", 4);
	TU_ERR(decode(b, 4, &m), CASA_E_MISSING, "REGISTER header only");
	free(b);
}

/* ---- authentication ------------------------------------------------------------------------ */

static struct casa_auth_ctx *ctx_keyed(uint8_t alg)
{
	struct casa_auth_params p;
	struct casa_key k = { .alg = alg, .id = 1, .len = (uint8_t)strlen(test_key) };
	struct casa_auth_ctx *ctx;

	casa_auth_params_default(&p);
	ctx = casa_auth_create(&p);
	TU_CHECK(ctx != NULL, "casa_auth_create failed: errno %d", errno);
	memcpy(k.bytes, test_key, k.len);
	if (ctx != NULL)
		TU_EQI(casa_auth_set_key(ctx, &k, NOW), 0);
	return ctx;
}

static enum casa_err deliver(struct casa_auth_ctx *rx, const uint8_t *msg, size_t len)
{
	uint8_t *copy = tu_dup(msg, len);
	struct casa_msg m;
	enum casa_err e = decode(copy, len, &m);

	if (e == CASA_OK)
		e = casa_verify(rx, copy, len, &m, NOW);
	free(copy);
	return e;
}

static void check_auth(uint8_t alg, size_t auth_len)
{
	struct casa_auth_ctx *tx = ctx_keyed(alg), *rx = ctx_keyed(alg);
	struct casa_signer signer = { .sender_id = AGENT_ID, .epoch = EPOCH, .seq = 0 };
	uint8_t buf[256], out[256];
	struct casa_msg m;
	size_t len;
	int n;

	if (tx == NULL || rx == NULL)
		goto out;
	len = build_register(buf, sizeof(buf));
	TU_ERR(deliver(rx, buf, len), CASA_E_AUTH_REQUIRED, "unsigned REGISTER");
	n = casa_sign(tx, &signer, buf, len, sizeof(buf), NOW);
	TU_EQI(n, (long long)(len + auth_len));
	TU_ERR(decode(buf, (size_t)n, &m), CASA_OK, "signed REGISTER");
	TU_CHECK(m.present & CASA_HAS_AUTH, "AUTH not decoded");
	TU_EQ(m.auth.offset, len);
	TU_EQ(m.auth.alg, alg);
	TU_EQ(m.auth.sender_id, AGENT_ID);
	TU_EQ(m.auth.seq, 1);
	TU_EQ(m.skipped_tlvs, 0);
	// casa_encode re-emits AUTH from its fields: byte-exact.
	TU_EQI(casa_encode(&m, CASA_MODE_EXTENDED, out, sizeof(out)), n);
	TU_BYTES(out, (size_t)n, buf, (size_t)n, "signed REGISTER re-encode");
	TU_ERR(deliver(rx, buf, (size_t)n), CASA_OK, "signed REGISTER");
	TU_ERR(deliver(rx, buf, (size_t)n), CASA_E_AUTH_REPLAY, "signed REGISTER again");
	// A changed byte anywhere before the digest, or in it, fails the digest.
	len = build_register(buf, sizeof(buf));
	n = casa_sign(tx, &signer, buf, len, sizeof(buf), NOW);
	buf[TLV + 19] ^= 1; // hold time 15 -> 14: still a valid field
	TU_ERR(deliver(rx, buf, (size_t)n), CASA_E_AUTH_BAD, "REGISTER hold changed");
	buf[TLV + 19] ^= 1;
	buf[n - 1] ^= 0x80;
	TU_ERR(deliver(rx, buf, (size_t)n), CASA_E_AUTH_BAD, "REGISTER digest changed");
	buf[n - 1] ^= 0x80;
	TU_ERR(deliver(rx, buf, (size_t)n), CASA_OK, "REGISTER restored");
	// A signed message cannot be signed again (AUTH present).
	TU_EQI(casa_sign(tx, &signer, buf, (size_t)n, sizeof(buf), NOW), -EINVAL);

	// AUTH is allowed in every agent message.
	for (size_t i = 0; i < ARRAY_SIZE(samples); i++) {
		len = samples[i].build(buf, sizeof(buf));
		n = casa_sign(tx, &signer, buf, len, sizeof(buf), NOW);
		TU_EQI(n, (long long)(len + auth_len));
		TU_ERR(deliver(rx, buf, (size_t)n), CASA_OK, samples[i].name);
	}
out:
	if (tx != NULL)
		casa_auth_destroy(tx);
	if (rx != NULL)
		casa_auth_destroy(rx);
}

static void test_auth_sign_verify(void)
{
	check_auth(CASA_AUTH_HMAC_SHA256, CASA_AUTH_SHA256_LEN);
	check_auth(CASA_AUTH_HMAC_MD5, CASA_AUTH_MD5_LEN);
}

/* ---- equality, framing, names -------------------------------------------------------------- */

static void test_msg_equal(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(samples); i++) {
		size_t len;
		uint8_t *a = sample_bytes(samples[i].type, &len), *b = tu_dup(a, len);
		struct casa_msg ma, mb;

		TU_ERR(decode(a, len, &ma), CASA_OK, samples[i].name);
		TU_ERR(decode(b, len, &mb), CASA_OK, samples[i].name);
		TU_CHECK(casa_msg_equal(&ma, &mb), "%s: equal copies differ", samples[i].name);
		// The last value byte before any optional TLV: an entry, a counter or a caps bit.
		b[TLV + ((size_t)b[6] << 8 | b[7]) - 1] ^= 0x01;
		if (decode(b, len, &mb) == CASA_OK)
			TU_CHECK(!casa_msg_equal(&ma, &mb), "%s: changed copy equal",
				 samples[i].name);
		free(b);
		free(a);
	}
}

static void test_stream_framing(void)
{
	uint8_t buf[4 + 128];
	size_t len = build_conn_end(buf + 4, sizeof(buf) - 4);

	TU_EQI(casa_stream_put_len(buf, sizeof(buf), len), 0);
	TU_EQI(casa_stream_frame_len(buf, 4 + len), (long long)len);
	TU_EQ(buf[3], len);
}

static void test_names(void)
{
	static const struct {
		uint16_t type;
		const char *name;
	} names[] = {
		{ CASA_MSG_AGENT_REGISTER, "AGENT_REGISTER" },
		{ CASA_MSG_AGENT_REGISTER_ACK, "AGENT_REGISTER_ACK" },
		{ CASA_MSG_AGENT_SERVICES, "AGENT_SERVICES" },
		{ CASA_MSG_AGENT_READY, "AGENT_READY" },
		{ CASA_MSG_AGENT_CONN_END, "AGENT_CONN_END" },
		{ CASA_MSG_AGENT_LOAD, "AGENT_LOAD" },
		{ CASA_MSG_AGENT_CONN_TABLE, "AGENT_CONN_TABLE" },
		{ CASA_MSG_AGENT_KEEPALIVE, "AGENT_KEEPALIVE" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		TU_STR(casa_msg_type_name(names[i].type), names[i].name);
		TU_STR(casa_tlv_name(names[i].type), names[i].name);
		TU_CHECK(casa_agent_msg(names[i].type), "casa_agent_msg(0x%04X)", names[i].type);
	}
	TU_STR(casa_msg_type_name(0x7109), "unknown");
	TU_CHECK(!casa_agent_msg(0x7100), "0x7100 is not an agent message");
	TU_CHECK(!casa_agent_msg(0x7109), "0x7109 is not an agent message");
	TU_CHECK(!casa_agent_msg(CASA_MSG_HELLO), "HELLO is not an agent message");
}

static CU_TestInfo tests[] = {
	{ "round trip of every agent message", test_round_trip_all },
	{ "reserved and raw fields kept", test_reserved_kept },
	{ "REGISTER and REGISTER_ACK fields", test_register_fields },
	{ "LOAD and KEEPALIVE fields", test_load_keepalive_fields },
	{ "list fields and getters", test_list_fields_and_getters },
	{ "empty lists", test_empty_lists },
	{ "field checks and err_offset", test_field_checks },
	{ "field check order", test_field_check_order },
	{ "encoders refuse invalid fields", test_encoders_refuse },
	{ "list limits", test_list_limits },
	{ "primary TLV lengths", test_tlv_lengths },
	{ "truncations", test_truncations },
	{ "TLV rules (NAME, DISPATCH_INFO, DUP)", test_tlv_rules },
	{ "AUTH sign and verify", test_auth_sign_verify },
	{ "casa_msg_equal", test_msg_equal },
	{ "stream framing", test_stream_framing },
	{ "names", test_names },
	CU_TEST_INFO_NULL,
};

int main(int argc, char **argv)
{
	return tu_run_suite("casa agent", tests, argc, argv);
}
