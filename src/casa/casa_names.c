/*
 * casa_names.c - name tables for CASA enums, shared by casadump, the
 * console and the metrics endpoint so every display uses the same words.
 */
#include "casa.h"

#include <stdio.h>
#include <string.h>

struct casa_name_row {
	unsigned value;
	const char *name;
};

static const char *name_lookup(const struct casa_name_row *rows, size_t n, unsigned value)
{
	for (size_t i = 0; i < n; i++)
		if (rows[i].value == value)
			return rows[i].name;
	return "unknown";
}

#define LOOKUP(rows, v) name_lookup(rows, sizeof(rows) / sizeof(rows[0]), (v))

/* Text, symbol, metric label: one row per error, spec 8 mapping. */
static const struct {
	const char *text;
	const char *symbol;
	const char *reason;
} err_names[CASA_E__COUNT] = {
	[CASA_OK] = { "ok", "CASA_OK", "ok" },
	[CASA_E_SHORT] = { "message shorter than the 4-byte header", "CASA_E_SHORT", "short" },
	[CASA_E_TOO_BIG] = { "message longer than the receive limit", "CASA_E_TOO_BIG", "too_big" },
	[CASA_E_VERSION] = { "unsupported version", "CASA_E_VERSION", "version" },
	[CASA_E_TLV_TRUNC] = { "TLV truncated", "CASA_E_TLV_TRUNC", "tlv_trunc" },
	[CASA_E_PAD] = { "non-zero TLV padding", "CASA_E_PAD", "pad" },
	[CASA_E_TOO_MANY] = { "more than 16 TLVs", "CASA_E_TOO_MANY", "too_many" },
	[CASA_E_MSG_TYPE] = { "unknown message type", "CASA_E_MSG_TYPE", "msg_type" },
	[CASA_E_TYPE_MISMATCH] = { "first TLV does not match the message type",
				   "CASA_E_TYPE_MISMATCH", "type_mismatch" },
	[CASA_E_TLV_LEN] = { "wrong TLV length", "CASA_E_TLV_LEN", "tlv_len" },
	[CASA_E_UNSUPPORTED] = { "unknown mandatory TLV", "CASA_E_UNSUPPORTED", "unsupported" },
	[CASA_E_DUP] = { "duplicate TLV", "CASA_E_DUP", "dup" },
	[CASA_E_MISSING] = { "required TLV missing", "CASA_E_MISSING", "missing" },
	[CASA_E_AUTH_POS] = { "authentication TLV not last", "CASA_E_AUTH_POS", "auth_pos" },
	[CASA_E_IPPKT] = { "malformed inner IP packet", "CASA_E_IPPKT", "ippkt" },
	[CASA_E_FIELD] = { "invalid field value", "CASA_E_FIELD", "field" },
	[CASA_E_AUTH_REQUIRED] = { "authentication required", "CASA_E_AUTH_REQUIRED",
				   "auth_required" },
	[CASA_E_AUTH_ALG] = { "authentication algorithm not accepted", "CASA_E_AUTH_ALG",
			      "auth_alg" },
	[CASA_E_AUTH_KEYID] = { "unknown or expired key id", "CASA_E_AUTH_KEYID", "auth_keyid" },
	[CASA_E_AUTH_BAD] = { "bad digest", "CASA_E_AUTH_BAD", "auth_bad" },
	[CASA_E_AUTH_STALE] = { "stale timestamp", "CASA_E_AUTH_STALE", "auth_stale" },
	[CASA_E_AUTH_REPLAY] = { "replayed sequence number", "CASA_E_AUTH_REPLAY", "auth_replay" },
};

static bool err_known(enum casa_err err)
{
	return (unsigned)err < CASA_E__COUNT;
}

const char *casa_strerror(enum casa_err err)
{
	return err_known(err) ? err_names[err].text : "unknown";
}

const char *casa_err_name(enum casa_err err)
{
	return err_known(err) ? err_names[err].symbol : "unknown";
}

const char *casa_err_reason(enum casa_err err)
{
	return err_known(err) ? err_names[err].reason : "unknown";
}

static const struct casa_name_row msg_names[] = {
	{ CASA_MSG_WILDCARD, "WILDCARD" },
	{ CASA_MSG_FIXED, "FIXED" },
	{ CASA_MSG_IP_PACKET, "IP_PACKET" },
	{ CASA_MSG_HELLO, "HELLO" },
	{ CASA_MSG_HELLO_ACK, "HELLO_ACK" },
	{ CASA_MSG_TICKLE, "TICKLE" },
	{ CASA_MSG_STATS, "STATS" },
	// Agent protocol (docs/agent-protocol.md).
	{ CASA_MSG_AGENT_REGISTER, "AGENT_REGISTER" },
	{ CASA_MSG_AGENT_REGISTER_ACK, "AGENT_REGISTER_ACK" },
	{ CASA_MSG_AGENT_SERVICES, "AGENT_SERVICES" },
	{ CASA_MSG_AGENT_READY, "AGENT_READY" },
	{ CASA_MSG_AGENT_CONN_END, "AGENT_CONN_END" },
	{ CASA_MSG_AGENT_LOAD, "AGENT_LOAD" },
	{ CASA_MSG_AGENT_CONN_TABLE, "AGENT_CONN_TABLE" },
	{ CASA_MSG_AGENT_KEEPALIVE, "AGENT_KEEPALIVE" },
};

const char *casa_msg_type_name(uint16_t type)
{
	return LOOKUP(msg_names, type);
}

static const struct casa_name_row tlv_names[] = {
	{ CASA_TLV_WILDCARD, "WILDCARD_AFFINITY" },
	{ CASA_TLV_FIXED, "FIXED_AFFINITY" },
	{ CASA_TLV_WILDCARD_AUX, "WILDCARD_AUX" },
	{ CASA_TLV_ACTION, "ACTION" },
	{ CASA_TLV_IP_PACKET, "IP_PACKET" },
	{ CASA_TLV_HELLO, "CASALB_HELLO" },
	{ CASA_TLV_HELLO_ACK, "CASALB_HELLO_ACK" },
	{ CASA_TLV_TICKLE, "CASALB_TICKLE" },
	{ CASA_TLV_STATS, "CASALB_STATS" },
	{ CASA_TLV_SENDER_INFO, "CASALB_SENDER_INFO" },
	{ CASA_TLV_NAME, "CASALB_NAME" },
	{ CASA_TLV_PKT_EXCERPT, "CASALB_PKT_EXCERPT" },
	{ CASA_TLV_DISPATCH_INFO, "CASALB_DISPATCH_INFO" },
	{ CASA_TLV_AUTH, "CASALB_AUTH" },
};

const char *casa_tlv_name(uint16_t type)
{
	// Agent primary TLVs share the message numbers, and so the names, as
	// IP_PACKET does.
	if (casa_agent_msg(type))
		return casa_msg_type_name(type);
	return LOOKUP(tlv_names, type);
}

/* The words of `show ip casa stats` (seed 6.8.2) and spec 6.7. */
static const struct casa_name_row stat_names[] = {
	{ CASA_STAT_WILDCARDS, "Wildcards" },
	{ CASA_STAT_MAX_WILDCARDS, "Max Wildcards" },
	{ CASA_STAT_WILDCARD_DENIES, "Wildcard Denies" },
	{ CASA_STAT_WILDCARD_DROPS, "Wildcard Drops" },
	{ CASA_STAT_PKTS_THROUGHPUT, "Pkts Throughput" },
	{ CASA_STAT_BYTES_THROUGHPUT, "Bytes Throughput" },
	{ CASA_STAT_AFFINITIES, "Affinities" },
	{ CASA_STAT_MAX_AFFINITIES, "Max Affinities" },
	{ CASA_STAT_CACHE_HITS, "Cache Hits" },
	{ CASA_STAT_CACHE_MISSES, "Cache Misses" },
	{ CASA_STAT_AFFINITY_DROPS, "Affinity Drops" },
	{ CASA_STAT_INTEREST_TIMEOUTS, "Interest Packet Timeouts" },
	{ CASA_STAT_INT_PACKET, "Int Packet" },
	{ CASA_STAT_INT_TICKLE, "Int Tickle" },
	{ CASA_STAT_CASA_DENIES, "Casa Denies" },
	{ CASA_STAT_DROP_COUNT, "Drop Count" },
	{ CASA_STAT_SECURITY_DROPS, "Security Drops" },
	{ CASA_STAT_SKIPPED_TLVS, "Skipped TLVs" },
	{ CASA_STAT_REPLAY_DROPS, "Replay Drops" },
};

const char *casa_stat_name(uint16_t id)
{
	return LOOKUP(stat_names, id);
}

const char *casa_role_name(uint8_t role)
{
	static const struct casa_name_row rows[] = { { CASA_ROLE_SM, "SM" },
						     { CASA_ROLE_FA, "FA" } };

	return LOOKUP(rows, role);
}

const char *casa_auth_alg_name(uint8_t alg)
{
	static const struct casa_name_row rows[] = { { CASA_AUTH_NONE, "none" },
						     { CASA_AUTH_HMAC_MD5, "HMAC-MD5" },
						     { CASA_AUTH_HMAC_SHA256, "HMAC-SHA256" } };

	return LOOKUP(rows, alg);
}

const char *casa_dispatch_method_name(uint8_t m)
{
	static const struct casa_name_row rows[] = { { CASA_DISPATCH_L2, "L2" },
						     { CASA_DISPATCH_GRE, "GRE" } };

	return LOOKUP(rows, m);
}

const char *casa_proto_name(uint16_t proto)
{
	static const struct casa_name_row rows[] = {
		{ 0, "ANY" }, { 1, "ICMP" }, { 6, "TCP" }, { 17, "UDP" }, { 47, "GRE" },
	};
	const char *n = LOOKUP(rows, proto);

	return strcmp(n, "unknown") == 0 ? "" : n;
}

/* "0xHHHH NAME NAME ..." in ascending bit order, as IOS prints criteria. */
static char *bits_format(uint32_t bits, int hex_digits, const struct casa_name_row *rows, size_t n,
			 char *out, size_t outlen)
{
	size_t used;

	if (outlen == 0)
		return out;
	snprintf(out, outlen, "0x%0*X", hex_digits, bits);
	used = strlen(out);
	for (unsigned bit = 0; bit < 32; bit++) {
		const char *name;

		if (!(bits & (1u << bit)))
			continue;
		name = name_lookup(rows, n, 1u << bit);
		if (strcmp(name, "unknown") == 0)
			continue; // reserved bits: the hex shows them
		snprintf(out + used, outlen - used, " %s", name);
		used += strlen(out + used);
	}
	return out;
}

static const struct casa_name_row criteria_names[] = {
	{ CASA_INT_FIN, "FIN" },   { CASA_INT_SYN, "SYN" },
	{ CASA_INT_RST, "RST" },   { CASA_INT_PSH, "PSH" },
	{ CASA_INT_ACK, "ACK" },   { CASA_INT_URG, "URG" },
	{ CASA_INT_DATA, "DATA" }, { CASA_INT_FIRSTDATA, "FIRSTDATA" },
	{ CASA_INT_FRAG, "FRAG" }, { CASA_INT_ALLPKTS, "ALLPKTS" },
};

char *casa_criteria_format(uint16_t bits, char *out, size_t outlen)
{
	return bits_format(bits, 4, criteria_names,
			   sizeof(criteria_names) / sizeof(criteria_names[0]), out, outlen);
}

static const struct casa_name_row hello_flag_names[] = {
	{ CASA_HELLO_WANT_WILDCARDS, "WANT_WILDCARDS" },
	{ CASA_HELLO_GOODBYE, "GOODBYE" },
	{ CASA_HELLO_WANT_AFFINITIES, "WANT_AFFINITIES" },
};

char *casa_hello_flags_format(uint16_t flags, char *out, size_t outlen)
{
	return bits_format(flags, 4, hello_flag_names,
			   sizeof(hello_flag_names) / sizeof(hello_flag_names[0]), out, outlen);
}

static const struct casa_name_row cap_names[] = {
	{ CASA_CAP_L2, "L2" },
	{ CASA_CAP_GRE, "GRE" },
	{ CASA_CAP_TICKLE, "TICKLE" },
	{ CASA_CAP_STATS, "STATS" },
	{ CASA_CAP_HMAC_MD5, "HMAC-MD5" },
	{ CASA_CAP_HMAC_SHA256, "HMAC-SHA256" },
	{ CASA_CAP_UDP, "UDP" },
	{ CASA_CAP_FRAG, "FRAG" },
};

char *casa_caps_format(uint32_t caps, char *out, size_t outlen)
{
	return bits_format(caps, 8, cap_names, sizeof(cap_names) / sizeof(cap_names[0]), out,
			   outlen);
}

char *casa_ip_format(uint32_t addr, char *out, size_t outlen)
{
	if (outlen > 0)
		snprintf(out, outlen, "%u.%u.%u.%u", addr >> 24, (addr >> 16) & 0xFF,
			 (addr >> 8) & 0xFF, addr & 0xFF);
	return out;
}
