/*
 * casa_codec.c - decode, validate and encode CASA messages (casalb-casa/1).
 *
 * The decoder follows the deterministic order of spec 8 step by step, so
 * the negative vectors of spec 10.4 give their listed errors. It never
 * allocates, never reads outside buf[0..len) and loads every integer
 * byte-wise big-endian, because a message may sit at any address.
 */
#include "casa.h"
#include "casa_wire.h"

#include <errno.h>
#include <string.h>

/* Message kinds, used as bit positions in the TLV "allowed in" masks.
 * K_A*: the agent protocol (docs/agent-protocol.md), after the Cisco and
 * casalb kinds so that `kind <= K_IP` still names the Cisco messages. */
enum msg_kind {
	K_WILDCARD,
	K_FIXED,
	K_IP,
	K_HELLO,
	K_ACK,
	K_TICKLE,
	K_STATS,
	K_AREG,
	K_AREG_ACK,
	K_ASERVICES,
	K_AREADY,
	K_ACONN_END,
	K_ALOAD,
	K_ACONN_TABLE,
	K_AKEEPALIVE,
	K__COUNT
};
#define M(k) (1u << (k))
#define M_ALL ((1u << K__COUNT) - 1)

struct msg_desc {
	uint16_t type;
	uint16_t primary_tlv;
};

/* Message registry, spec 4.4: each type's primary (first) TLV. */
static const struct msg_desc msg_table[K__COUNT] = {
	[K_WILDCARD] = { CASA_MSG_WILDCARD, CASA_TLV_WILDCARD },
	[K_FIXED] = { CASA_MSG_FIXED, CASA_TLV_FIXED },
	[K_IP] = { CASA_MSG_IP_PACKET, CASA_TLV_IP_PACKET },
	[K_HELLO] = { CASA_MSG_HELLO, CASA_TLV_HELLO },
	[K_ACK] = { CASA_MSG_HELLO_ACK, CASA_TLV_HELLO_ACK },
	[K_TICKLE] = { CASA_MSG_TICKLE, CASA_TLV_TICKLE },
	[K_STATS] = { CASA_MSG_STATS, CASA_TLV_STATS },
	// Agent messages: the primary TLV has the message's own number.
	[K_AREG] = { CASA_MSG_AGENT_REGISTER, CASA_MSG_AGENT_REGISTER },
	[K_AREG_ACK] = { CASA_MSG_AGENT_REGISTER_ACK, CASA_MSG_AGENT_REGISTER_ACK },
	[K_ASERVICES] = { CASA_MSG_AGENT_SERVICES, CASA_MSG_AGENT_SERVICES },
	[K_AREADY] = { CASA_MSG_AGENT_READY, CASA_MSG_AGENT_READY },
	[K_ACONN_END] = { CASA_MSG_AGENT_CONN_END, CASA_MSG_AGENT_CONN_END },
	[K_ALOAD] = { CASA_MSG_AGENT_LOAD, CASA_MSG_AGENT_LOAD },
	[K_ACONN_TABLE] = { CASA_MSG_AGENT_CONN_TABLE, CASA_MSG_AGENT_CONN_TABLE },
	[K_AKEEPALIVE] = { CASA_MSG_AGENT_KEEPALIVE, CASA_MSG_AGENT_KEEPALIVE },
};

struct tlv_desc;
typedef void tlv_decode_fn(const uint8_t *v, size_t vlen, struct casa_msg *m);
typedef enum casa_err tlv_check_fn(const struct casa_msg *m, size_t vlen, size_t *field_off);
typedef void tlv_encode_fn(const struct casa_msg *m, uint8_t *v);

/*
 * TLV registry, spec 4.3. Lengths include the 4-byte TLV header; `step`
 * is the granularity of variable lengths (12 for STATS entries, the entry
 * size for the agent lists). The table
 * order is the canonical encoding order (spec 11.3).
 */
struct tlv_desc {
	uint16_t type;
	uint32_t present;
	uint32_t allowed; /* M(kind) of messages that may carry it */
	uint16_t min_len;
	uint16_t max_len;
	uint16_t step;
	tlv_decode_fn *decode;
	tlv_check_fn *check; /* spec 8 step 8; NULL when nothing to check */
	tlv_encode_fn *encode;
};

/* ---- byte order ---------------------------------------------------------- */

uint16_t casa_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

uint32_t casa_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

uint64_t casa_get64(const uint8_t *p)
{
	return (uint64_t)casa_get32(p) << 32 | casa_get32(p + 4);
}

void casa_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

void casa_put32(uint8_t *p, uint32_t v)
{
	casa_put16(p, (uint16_t)(v >> 16));
	casa_put16(p + 2, (uint16_t)v);
}

void casa_put64(uint8_t *p, uint64_t v)
{
	casa_put32(p, (uint32_t)(v >> 32));
	casa_put32(p + 4, (uint32_t)v);
}

/* ---- per-TLV value decoders (v points past the TLV header) --------------- */

static void dec_affinity_common(const uint8_t *v, struct casa_affinity *a)
{
	a->flags = casa_get16(v);
	a->protocol = casa_get16(v + 2);
	a->src = casa_get32(v + 4);
}

static void dec_wildcard(const uint8_t *v, size_t vlen, struct casa_msg *m)
{
	struct casa_affinity *a = &m->aff;

	(void)vlen;
	dec_affinity_common(v, a);
	a->src_mask = casa_get32(v + 8);
	a->dst = casa_get32(v + 12);
	a->dst_mask = casa_get32(v + 16);
	a->src_port = casa_get16(v + 20);
	a->dst_port = casa_get16(v + 22);
	a->fwd = casa_get32(v + 24);
	a->ttl = casa_get16(v + 28);
	a->reserved = casa_get16(v + 30);
}

static void dec_fixed(const uint8_t *v, size_t vlen, struct casa_msg *m)
{
	struct casa_affinity *a = &m->aff;

	(void)vlen;
	dec_affinity_common(v, a);
	a->src_mask = 0xFFFFFFFFu;
	a->dst = casa_get32(v + 8);
	a->dst_mask = 0xFFFFFFFFu;
	a->src_port = casa_get16(v + 12);
	a->dst_port = casa_get16(v + 14);
	a->fwd = casa_get32(v + 16);
	a->ttl = casa_get16(v + 20);
	a->reserved = casa_get16(v + 22);
}

static void dec_aux(const uint8_t *v, size_t vlen, struct casa_msg *m)
{
	(void)vlen;
	memcpy(m->aux, v, sizeof(m->aux));
}

static void dec_action(const uint8_t *v, size_t vlen, struct casa_msg *m)
{
	struct casa_action *a = &m->action;

	(void)vlen;
	a->interest_addr = casa_get32(v);
	a->interest_port = casa_get16(v + 4);
	a->criteria = casa_get16(v + 6);
	a->x = casa_get16(v + 8);
	a->tickle = casa_get16(v + 10);
	a->dispatch = casa_get32(v + 12);
}

static void dec_ip_packet(const uint8_t *v, size_t vlen, struct casa_msg *m)
{
	m->ip_pkt = v;
	m->ip_pkt_len = (uint16_t)vlen;
}

static void dec_hello_common(const uint8_t *v, struct casa_hello *h)
{
	h->role = v[0];
	h->ext_version = v[1];
	h->flags = casa_get16(v + 2);
	h->sender_id = casa_get32(v + 4);
	h->epoch = casa_get32(v + 8);
	h->control_addr = casa_get32(v + 12);
	h->port = casa_get16(v + 16);
	h->hello_interval = casa_get16(v + 18);
	h->hold_time = casa_get16(v + 20);
	h->reserved = casa_get16(v + 22);
	h->caps = casa_get32(v + 24);
}

static void dec_hello(const uint8_t *v, size_t vlen, struct casa_msg *m)
{
	(void)vlen;
	dec_hello_common(v, &m->hello);
	m->hello.peer_sender_id = 0;
	m->hello.peer_epoch = 0;
}

static void dec_hello_ack(const uint8_t *v, size_t vlen, struct casa_msg *m)
{
	(void)vlen;
	dec_hello_common(v, &m->hello);
	m->hello.peer_sender_id = casa_get32(v + 28);
	m->hello.peer_epoch = casa_get32(v + 32);
}

static void dec_tickle(const uint8_t *v, size_t vlen, struct casa_msg *m)
{
	struct casa_tickle *t = &m->tickle;

	(void)vlen;
	t->flags = casa_get16(v);
	t->protocol = casa_get16(v + 2);
	t->src = casa_get32(v + 4);
	t->dst = casa_get32(v + 8);
	t->src_port = casa_get16(v + 12);
	t->dst_port = casa_get16(v + 14);
	t->matched = casa_get16(v + 16);
	t->tcp_flags = v[18];
	t->reserved = v[19];
	t->fa_time_ms = casa_get32(v + 20);
}

static void dec_stats(const uint8_t *v, size_t vlen, struct casa_msg *m)
{
	struct casa_stats *s = &m->stats;
	size_t n = (vlen - 12) / 12; /* the length check guarantees n <= 64 */

	s->sender_id = casa_get32(v);
	s->interval = casa_get32(v + 4);
	s->count = casa_get16(v + 8); // checked against n in chk_stats
	s->reserved = casa_get16(v + 10);
	for (size_t i = 0; i < n; i++) {
		const uint8_t *e = v + 12 + 12 * i;

		s->entries[i].id = casa_get16(e);
		s->entries[i].reserved = casa_get16(e + 2);
		s->entries[i].value = casa_get64(e + 4);
	}
}

static void dec_sender_info(const uint8_t *v, size_t vlen, struct casa_msg *m)
{
	(void)vlen;
	m->sender.sender_id = casa_get32(v);
	m->sender.control_addr = casa_get32(v + 4);
}

static void dec_name(const uint8_t *v, size_t vlen, struct casa_msg *m)
{
	m->name.bytes = v;
	m->name.len = (uint8_t)vlen;
}

static void dec_excerpt(const uint8_t *v, size_t vlen, struct casa_msg *m)
{
	m->excerpt.orig_len = casa_get16(v);
	m->excerpt.reserved = casa_get16(v + 2);
	m->excerpt.bytes = v + 4;
	m->excerpt.len = (uint8_t)(vlen - 4);
}

static void dec_dispatch_info(const uint8_t *v, size_t vlen, struct casa_msg *m)
{
	struct casa_dispatch_info *d = &m->dispatch;

	(void)vlen;
	d->method = v[0];
	d->gre_flags = v[1];
	d->reserved = casa_get16(v + 2);
	d->tunnel_endpoint = casa_get32(v + 4);
	d->gre_key = casa_get32(v + 8);
	memcpy(d->nexthop_mac, v + 12, sizeof(d->nexthop_mac));
	d->reserved2 = casa_get16(v + 18);
}

static void dec_auth(const uint8_t *v, size_t vlen, struct casa_msg *m)
{
	struct casa_auth *a = &m->auth;

	a->alg = v[0];
	a->key_id = v[1];
	a->reserved = casa_get16(v + 2);
	a->sender_id = casa_get32(v + 4);
	a->epoch = casa_get32(v + 8);
	a->seq = casa_get64(v + 12);
	a->timestamp = casa_get32(v + 20);
	a->digest = v + 24;
	a->digest_len = (uint8_t)(vlen - 24);
}

/* ---- field checks, spec 8 step 8 (field_off: offset within the TLV) ----- */

static enum casa_err field_err(size_t *field_off, size_t off)
{
	*field_off = off;
	return CASA_E_FIELD;
}

static enum casa_err chk_wildcard(const struct casa_msg *m, size_t vlen, size_t *off)
{
	(void)vlen;
	const struct casa_affinity *a = &m->aff;

	if (a->protocol > 255)
		return field_err(off, 6);
	if (a->src & ~a->src_mask)
		return field_err(off, 8);
	if (a->dst & ~a->dst_mask)
		return field_err(off, 16);
	return CASA_OK;
}

static enum casa_err chk_fixed(const struct casa_msg *m, size_t vlen, size_t *off)
{
	(void)vlen;
	const struct casa_affinity *a = &m->aff;

	if (a->protocol < 1 || a->protocol > 255)
		return field_err(off, 6);
	if (a->src == 0)
		return field_err(off, 8);
	if (a->dst == 0)
		return field_err(off, 12);
	if (a->ttl > 0 && a->fwd == 0)
		return field_err(off, 20);
	return CASA_OK;
}

static enum casa_err chk_action(const struct casa_msg *m, size_t vlen, size_t *off)
{
	(void)vlen;
	const struct casa_action *a = &m->action;

	if (a->criteria != 0 && a->interest_addr == 0)
		return field_err(off, 4);
	if (a->criteria != 0 && a->interest_port == 0)
		return field_err(off, 8);
	return CASA_OK;
}

/* Spec 5.5: a whole IPv4 packet whose total length is the TLV value length. */
static enum casa_err chk_ip_packet(const struct casa_msg *m, size_t vlen, size_t *off)
{
	(void)vlen;
	const uint8_t *p = m->ip_pkt;
	size_t ihl = (size_t)(p[0] & 0x0F) * 4;

	*off = 4;
	if (p[0] >> 4 != 4 || ihl < 20)
		return CASA_E_IPPKT;
	*off = 4 + 2;
	if (ihl > casa_get16(p + 2) || casa_get16(p + 2) != m->ip_pkt_len)
		return CASA_E_IPPKT;
	return CASA_OK;
}

static enum casa_err chk_hello(const struct casa_msg *m, size_t vlen, size_t *off)
{
	(void)vlen;
	const struct casa_hello *h = &m->hello;

	if (h->role != CASA_ROLE_SM && h->role != CASA_ROLE_FA)
		return field_err(off, 4);
	if (h->ext_version < 1)
		return field_err(off, 5);
	if (h->hello_interval < 1)
		return field_err(off, 22);
	if (h->hold_time < h->hello_interval)
		return field_err(off, 24);
	return CASA_OK;
}

static enum casa_err chk_tickle(const struct casa_msg *m, size_t vlen, size_t *off)
{
	(void)vlen;
	if (m->tickle.protocol < 1 || m->tickle.protocol > 255)
		return field_err(off, 6);
	return CASA_OK;
}

static enum casa_err chk_stats(const struct casa_msg *m, size_t vlen, size_t *off)
{
	// The count field must agree with the TLV length (spec 6.7).
	if (m->stats.count != (vlen - 12) / 12)
		return field_err(off, 12);
	return CASA_OK;
}

/* Well-formed UTF-8 (no overlongs, no surrogates) without NUL. */
static bool utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		size_t more;
		uint32_t cp, min;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xE0) == 0xC0) {
			more = 1, cp = c & 0x1F, min = 0x80;
		} else if ((c & 0xF0) == 0xE0) {
			more = 2, cp = c & 0x0F, min = 0x800;
		} else if ((c & 0xF8) == 0xF0) {
			more = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return false;
		}
		if (n - i - 1 < more)
			return false;
		for (size_t k = 1; k <= more; k++) {
			if ((s[i + k] & 0xC0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += more + 1;
	}
	return true;
}

static enum casa_err chk_name(const struct casa_msg *m, size_t vlen, size_t *off)
{
	(void)vlen;
	if (!utf8_valid(m->name.bytes, m->name.len))
		return field_err(off, 4);
	return CASA_OK;
}

static enum casa_err chk_excerpt(const struct casa_msg *m, size_t vlen, size_t *off)
{
	(void)vlen;
	if (m->excerpt.orig_len < m->excerpt.len)
		return field_err(off, 4);
	return CASA_OK;
}

static enum casa_err chk_dispatch_info(const struct casa_msg *m, size_t vlen, size_t *off)
{
	(void)vlen;
	const struct casa_dispatch_info *d = &m->dispatch;

	if (d->method != CASA_DISPATCH_L2 && d->method != CASA_DISPATCH_GRE)
		return field_err(off, 4);
	if (d->method == CASA_DISPATCH_GRE && d->tunnel_endpoint == 0)
		return field_err(off, 8);
	return CASA_OK;
}

/* ---- per-TLV value encoders (v points past the TLV header) --------------- */

static void enc_affinity_head(const struct casa_affinity *a, uint8_t *v)
{
	casa_put16(v, a->flags);
	casa_put16(v + 2, a->protocol);
	casa_put32(v + 4, a->src);
}

static void enc_wildcard(const struct casa_msg *m, uint8_t *v)
{
	const struct casa_affinity *a = &m->aff;

	enc_affinity_head(a, v);
	casa_put32(v + 8, a->src_mask);
	casa_put32(v + 12, a->dst);
	casa_put32(v + 16, a->dst_mask);
	casa_put16(v + 20, a->src_port);
	casa_put16(v + 22, a->dst_port);
	casa_put32(v + 24, a->fwd);
	casa_put16(v + 28, a->ttl);
	casa_put16(v + 30, a->reserved);
}

static void enc_fixed(const struct casa_msg *m, uint8_t *v)
{
	const struct casa_affinity *a = &m->aff;

	enc_affinity_head(a, v);
	casa_put32(v + 8, a->dst);
	casa_put16(v + 12, a->src_port);
	casa_put16(v + 14, a->dst_port);
	casa_put32(v + 16, a->fwd);
	casa_put16(v + 20, a->ttl);
	casa_put16(v + 22, a->reserved);
}

static void enc_aux(const struct casa_msg *m, uint8_t *v)
{
	memcpy(v, m->aux, sizeof(m->aux));
}

static void enc_action(const struct casa_msg *m, uint8_t *v)
{
	const struct casa_action *a = &m->action;

	casa_put32(v, a->interest_addr);
	casa_put16(v + 4, a->interest_port);
	casa_put16(v + 6, a->criteria);
	casa_put16(v + 8, a->x);
	casa_put16(v + 10, a->tickle);
	casa_put32(v + 12, a->dispatch);
}

static void enc_ip_packet(const struct casa_msg *m, uint8_t *v)
{
	memcpy(v, m->ip_pkt, m->ip_pkt_len);
}

static void enc_hello_common(const struct casa_hello *h, uint8_t *v)
{
	v[0] = h->role;
	v[1] = h->ext_version;
	casa_put16(v + 2, h->flags);
	casa_put32(v + 4, h->sender_id);
	casa_put32(v + 8, h->epoch);
	casa_put32(v + 12, h->control_addr);
	casa_put16(v + 16, h->port);
	casa_put16(v + 18, h->hello_interval);
	casa_put16(v + 20, h->hold_time);
	casa_put16(v + 22, h->reserved);
	casa_put32(v + 24, h->caps);
}

static void enc_hello(const struct casa_msg *m, uint8_t *v)
{
	enc_hello_common(&m->hello, v);
}

static void enc_hello_ack(const struct casa_msg *m, uint8_t *v)
{
	enc_hello_common(&m->hello, v);
	casa_put32(v + 28, m->hello.peer_sender_id);
	casa_put32(v + 32, m->hello.peer_epoch);
}

static void enc_tickle(const struct casa_msg *m, uint8_t *v)
{
	const struct casa_tickle *t = &m->tickle;

	casa_put16(v, t->flags);
	casa_put16(v + 2, t->protocol);
	casa_put32(v + 4, t->src);
	casa_put32(v + 8, t->dst);
	casa_put16(v + 12, t->src_port);
	casa_put16(v + 14, t->dst_port);
	casa_put16(v + 16, t->matched);
	v[18] = t->tcp_flags;
	v[19] = t->reserved;
	casa_put32(v + 20, t->fa_time_ms);
}

static void enc_stats(const struct casa_msg *m, uint8_t *v)
{
	const struct casa_stats *s = &m->stats;

	casa_put32(v, s->sender_id);
	casa_put32(v + 4, s->interval);
	casa_put16(v + 8, s->count);
	casa_put16(v + 10, s->reserved);
	for (size_t i = 0; i < s->count; i++) {
		uint8_t *e = v + 12 + 12 * i;

		casa_put16(e, s->entries[i].id);
		casa_put16(e + 2, s->entries[i].reserved);
		casa_put64(e + 4, s->entries[i].value);
	}
}

static void enc_sender_info(const struct casa_msg *m, uint8_t *v)
{
	casa_put32(v, m->sender.sender_id);
	casa_put32(v + 4, m->sender.control_addr);
}

static void enc_name(const struct casa_msg *m, uint8_t *v)
{
	memcpy(v, m->name.bytes, m->name.len);
}

static void enc_excerpt(const struct casa_msg *m, uint8_t *v)
{
	casa_put16(v, m->excerpt.orig_len);
	casa_put16(v + 2, m->excerpt.reserved);
	memcpy(v + 4, m->excerpt.bytes, m->excerpt.len);
}

static void enc_dispatch_info(const struct casa_msg *m, uint8_t *v)
{
	const struct casa_dispatch_info *d = &m->dispatch;

	v[0] = d->method;
	v[1] = d->gre_flags;
	casa_put16(v + 2, d->reserved);
	casa_put32(v + 4, d->tunnel_endpoint);
	casa_put32(v + 8, d->gre_key);
	memcpy(v + 12, d->nexthop_mac, sizeof(d->nexthop_mac));
	casa_put16(v + 18, d->reserved2);
}

static void enc_auth(const struct casa_msg *m, uint8_t *v)
{
	const struct casa_auth *a = &m->auth;

	v[0] = a->alg;
	v[1] = a->key_id;
	casa_put16(v + 2, a->reserved);
	casa_put32(v + 4, a->sender_id);
	casa_put32(v + 8, a->epoch);
	casa_put64(v + 12, a->seq);
	casa_put32(v + 20, a->timestamp);
	if (a->digest)
		memcpy(v + 24, a->digest, a->digest_len);
	else
		memset(v + 24, 0, a->digest_len);
}

/* ---- agent protocol TLVs (docs/agent-protocol.md) ------------------------ */

/*
 * The list TLVs: SERVICES, READY and CONN_END have `+4 u16 n, +6 u16
 * reserved` before their entries; CONN_TABLE has `+4 u16 flags, +6 u16 n,
 * +8 u32 resync id`. Offsets below are from the TLV start, as err_offset.
 */
#define AGENT_LIST_HEAD 8
#define AGENT_TABLE_HEAD 12

static size_t agent_entry_len(uint16_t type)
{
	switch (type) {
	case CASA_MSG_AGENT_SERVICES:
		return CASA_AGENT_SERVICE_ENTRY_LEN;
	case CASA_MSG_AGENT_READY:
		return CASA_AGENT_READY_ENTRY_LEN;
	case CASA_MSG_AGENT_CONN_END:
	case CASA_MSG_AGENT_CONN_TABLE:
		return CASA_AGENT_CONN_ENTRY_LEN;
	default:
		return 0; // not a list message
	}
}

static size_t agent_head_len(uint16_t type)
{
	return type == CASA_MSG_AGENT_CONN_TABLE ? AGENT_TABLE_HEAD : AGENT_LIST_HEAD;
}

static unsigned agent_list_max(uint16_t type)
{
	if (type == CASA_MSG_AGENT_SERVICES || type == CASA_MSG_AGENT_READY)
		return CASA_AGENT_SERVICES_MAX;
	return CASA_AGENT_CONNS_MAX;
}

static void dec_agent_reg_common(const uint8_t *v, struct casa_agent_register *r)
{
	r->flags = v[1];
	r->reserved = casa_get16(v + 2);
	r->sender_id = casa_get32(v + 4);
	r->epoch = casa_get32(v + 8);
	r->keepalive_s = casa_get16(v + 12);
	r->hold_s = casa_get16(v + 14);
	r->caps = casa_get32(v + 16);
}

static void dec_agent_register(const uint8_t *v, size_t vlen, struct casa_msg *m)
{
	(void)vlen;
	dec_agent_reg_common(v, &m->agent.reg);
	m->agent.reg.version = v[0];
	m->agent.reg.status = 0;
}

static void dec_agent_register_ack(const uint8_t *v, size_t vlen, struct casa_msg *m)
{
	(void)vlen;
	dec_agent_reg_common(v, &m->agent.reg);
	m->agent.reg.version = 0;
	m->agent.reg.status = v[0];
}

/* SERVICES, READY, CONN_END: the entries stay in the buffer. */
static void dec_agent_list(const uint8_t *v, size_t vlen, struct casa_msg *m)
{
	struct casa_agent_list *l = &m->agent.list;

	(void)vlen;
	l->flags = 0;
	l->n = casa_get16(v);
	l->reserved = casa_get16(v + 2);
	l->resync_id = 0;
	l->entries = v + 4;
}

static void dec_agent_table(const uint8_t *v, size_t vlen, struct casa_msg *m)
{
	struct casa_agent_list *l = &m->agent.list;

	(void)vlen;
	l->flags = casa_get16(v);
	l->n = casa_get16(v + 2);
	l->reserved = 0;
	l->resync_id = casa_get32(v + 4);
	l->entries = v + 8;
}

static void dec_agent_load(const uint8_t *v, size_t vlen, struct casa_msg *m)
{
	struct casa_agent_load *l = &m->agent.load;

	(void)vlen;
	l->capacity = v[0];
	l->reserved = v[1];
	l->qos = casa_get16(v + 2);
	l->active = casa_get32(v + 4);
	l->cpu_idle = casa_get16(v + 8);
	l->pressure = casa_get16(v + 10);
	l->retrans = casa_get32(v + 12);
}

static void dec_agent_keepalive(const uint8_t *v, size_t vlen, struct casa_msg *m)
{
	struct casa_agent_keepalive *k = &m->agent.keepalive;

	(void)vlen;
	k->sender_id = casa_get32(v);
	k->seq = casa_get32(v + 4);
	k->time_ms = casa_get32(v + 8);
}

/* Timers of REGISTER and REGISTER_ACK: keepalive >= 1, hold >= keepalive. */
static enum casa_err chk_agent_timers(const struct casa_agent_register *r, size_t *off)
{
	if (r->keepalive_s < 1)
		return field_err(off, 16);
	if (r->hold_s < r->keepalive_s)
		return field_err(off, 18);
	return CASA_OK;
}

static enum casa_err chk_agent_register(const struct casa_msg *m, size_t vlen, size_t *off)
{
	(void)vlen;
	if (m->agent.reg.version < 1)
		return field_err(off, 4);
	return chk_agent_timers(&m->agent.reg, off);
}

static enum casa_err chk_agent_register_ack(const struct casa_msg *m, size_t vlen, size_t *off)
{
	(void)vlen;
	if (m->agent.reg.status > CASA_AGENT_ST_MAX)
		return field_err(off, 4);
	return chk_agent_timers(&m->agent.reg, off);
}

/* SERVICES and READY entries; e is the entry's offset from the TLV start. */
static enum casa_err chk_agent_service_entry(const uint8_t *tlv, size_t e, bool services,
					     size_t *off)
{
	uint8_t dispatch = tlv[e + 7];

	if (tlv[e + 6] == 0) // protocol 1..255; port 0 means every port
		return field_err(off, e + 6);
	if (services && dispatch != CASA_DISPATCH_L2 && dispatch != CASA_DISPATCH_GRE)
		return field_err(off, e + 7);
	return CASA_OK;
}

/* CONN_END (states 1..3) and CONN_TABLE (states 1..2) entries. */
static enum casa_err chk_agent_conn_entry(const uint8_t *tlv, size_t e, uint8_t max_state,
					  size_t *off)
{
	if (casa_get16(tlv + e + 8) == 0)
		return field_err(off, e + 8);
	if (casa_get16(tlv + e + 10) == 0)
		return field_err(off, e + 10);
	if (tlv[e + 12] == 0)
		return field_err(off, e + 12);
	if (tlv[e + 13] < 1 || tlv[e + 13] > max_state)
		return field_err(off, e + 13);
	return CASA_OK;
}

/* The count must agree with the TLV length, then every entry in order. */
static enum casa_err chk_agent_list(const struct casa_msg *m, size_t vlen, size_t *off)
{
	const struct casa_agent_list *l = &m->agent.list;
	size_t head = agent_head_len(m->type), esz = agent_entry_len(m->type);
	const uint8_t *tlv = l->entries - head; // the TLV start, inside the buffer
	enum casa_err err = CASA_OK;

	if (l->n != (vlen + CASA_TLV_HDR_LEN - head) / esz)
		return field_err(off, m->type == CASA_MSG_AGENT_CONN_TABLE ? 6 : 4);
	for (size_t i = 0; i < l->n && err == CASA_OK; i++) {
		size_t e = head + i * esz;

		switch (m->type) {
		case CASA_MSG_AGENT_SERVICES:
			err = chk_agent_service_entry(tlv, e, true, off);
			break;
		case CASA_MSG_AGENT_READY:
			err = chk_agent_service_entry(tlv, e, false, off);
			break;
		case CASA_MSG_AGENT_CONN_END:
			err = chk_agent_conn_entry(tlv, e, CASA_AGENT_END_TIMEOUT, off);
			break;
		default:
			err = chk_agent_conn_entry(tlv, e, CASA_AGENT_CONN_CLOSING, off);
			break;
		}
	}
	return err;
}

static enum casa_err chk_agent_load(const struct casa_msg *m, size_t vlen, size_t *off)
{
	const struct casa_agent_load *l = &m->agent.load;

	(void)vlen;
	if (l->capacity > CASA_AGENT_CAPACITY_MAX)
		return field_err(off, 4);
	if (l->qos > CASA_AGENT_QOS_ONE)
		return field_err(off, 6);
	if (l->cpu_idle > 1000)
		return field_err(off, 12);
	if (l->pressure > 10000)
		return field_err(off, 14);
	return CASA_OK;
}

static void enc_agent_reg_common(const struct casa_agent_register *r, uint8_t *v)
{
	v[1] = r->flags;
	casa_put16(v + 2, r->reserved);
	casa_put32(v + 4, r->sender_id);
	casa_put32(v + 8, r->epoch);
	casa_put16(v + 12, r->keepalive_s);
	casa_put16(v + 14, r->hold_s);
	casa_put32(v + 16, r->caps);
}

static void enc_agent_register(const struct casa_msg *m, uint8_t *v)
{
	v[0] = m->agent.reg.version;
	enc_agent_reg_common(&m->agent.reg, v);
}

static void enc_agent_register_ack(const struct casa_msg *m, uint8_t *v)
{
	v[0] = m->agent.reg.status;
	enc_agent_reg_common(&m->agent.reg, v);
}

/* All four list TLVs; entries are copied as bytes (sizes_ok checked n). */
static void enc_agent_list(const struct casa_msg *m, uint8_t *v)
{
	const struct casa_agent_list *l = &m->agent.list;
	size_t head = agent_head_len(m->type) - CASA_TLV_HDR_LEN;

	if (m->type == CASA_MSG_AGENT_CONN_TABLE) {
		casa_put16(v, l->flags);
		casa_put16(v + 2, l->n);
		casa_put32(v + 4, l->resync_id);
	} else {
		casa_put16(v, l->n);
		casa_put16(v + 2, l->reserved);
	}
	if (l->n > 0)
		memcpy(v + head, l->entries, l->n * agent_entry_len(m->type));
}

static void enc_agent_load(const struct casa_msg *m, uint8_t *v)
{
	const struct casa_agent_load *l = &m->agent.load;

	v[0] = l->capacity;
	v[1] = l->reserved;
	casa_put16(v + 2, l->qos);
	casa_put32(v + 4, l->active);
	casa_put16(v + 8, l->cpu_idle);
	casa_put16(v + 10, l->pressure);
	casa_put32(v + 12, l->retrans);
}

static void enc_agent_keepalive(const struct casa_msg *m, uint8_t *v)
{
	const struct casa_agent_keepalive *k = &m->agent.keepalive;

	casa_put32(v, k->sender_id);
	casa_put32(v + 4, k->seq);
	casa_put32(v + 8, k->time_ms);
}

/* ---- the registry -------------------------------------------------------- */

#define CISCO_AFF (M(K_WILDCARD) | M(K_FIXED))
#define AGENT_LIST_MAX(head, esz, n) ((head) + (esz) * (n))

static const struct tlv_desc tlv_table[] = {
	{ CASA_TLV_WILDCARD, CASA_HAS_WILDCARD, M(K_WILDCARD), 36, 36, 0, dec_wildcard,
	  chk_wildcard, enc_wildcard },
	{ CASA_TLV_FIXED, CASA_HAS_FIXED, M(K_FIXED), 28, 28, 0, dec_fixed, chk_fixed, enc_fixed },
	{ CASA_TLV_IP_PACKET, CASA_HAS_IP_PACKET, M(K_IP), 4 + CASA_IP_PKT_MIN, 0xFFFF, 0,
	  dec_ip_packet, chk_ip_packet, enc_ip_packet },
	{ CASA_TLV_HELLO, CASA_HAS_HELLO, M(K_HELLO), 32, 32, 0, dec_hello, chk_hello, enc_hello },
	{ CASA_TLV_HELLO_ACK, CASA_HAS_HELLO_ACK, M(K_ACK), 40, 40, 0, dec_hello_ack, chk_hello,
	  enc_hello_ack },
	{ CASA_TLV_TICKLE, CASA_HAS_TICKLE, M(K_TICKLE), 28, 28, 0, dec_tickle, chk_tickle,
	  enc_tickle },
	{ CASA_TLV_STATS, CASA_HAS_STATS, M(K_STATS), 16, 16 + 12 * CASA_STATS_MAX, 12, dec_stats,
	  chk_stats, enc_stats },
	{ CASA_MSG_AGENT_REGISTER, CASA_HAS_AGENT, M(K_AREG), CASA_AGENT_REGISTER_LEN,
	  CASA_AGENT_REGISTER_LEN, 0, dec_agent_register, chk_agent_register, enc_agent_register },
	{ CASA_MSG_AGENT_REGISTER_ACK, CASA_HAS_AGENT, M(K_AREG_ACK), CASA_AGENT_REGISTER_ACK_LEN,
	  CASA_AGENT_REGISTER_ACK_LEN, 0, dec_agent_register_ack, chk_agent_register_ack,
	  enc_agent_register_ack },
	{ CASA_MSG_AGENT_SERVICES, CASA_HAS_AGENT, M(K_ASERVICES), AGENT_LIST_HEAD,
	  AGENT_LIST_MAX(AGENT_LIST_HEAD, CASA_AGENT_SERVICE_ENTRY_LEN, CASA_AGENT_SERVICES_MAX),
	  CASA_AGENT_SERVICE_ENTRY_LEN, dec_agent_list, chk_agent_list, enc_agent_list },
	{ CASA_MSG_AGENT_READY, CASA_HAS_AGENT, M(K_AREADY), AGENT_LIST_HEAD,
	  AGENT_LIST_MAX(AGENT_LIST_HEAD, CASA_AGENT_READY_ENTRY_LEN, CASA_AGENT_SERVICES_MAX),
	  CASA_AGENT_READY_ENTRY_LEN, dec_agent_list, chk_agent_list, enc_agent_list },
	{ CASA_MSG_AGENT_CONN_END, CASA_HAS_AGENT, M(K_ACONN_END), AGENT_LIST_HEAD,
	  AGENT_LIST_MAX(AGENT_LIST_HEAD, CASA_AGENT_CONN_ENTRY_LEN, CASA_AGENT_CONNS_MAX),
	  CASA_AGENT_CONN_ENTRY_LEN, dec_agent_list, chk_agent_list, enc_agent_list },
	{ CASA_MSG_AGENT_LOAD, CASA_HAS_AGENT, M(K_ALOAD), CASA_AGENT_LOAD_LEN, CASA_AGENT_LOAD_LEN,
	  0, dec_agent_load, chk_agent_load, enc_agent_load },
	{ CASA_MSG_AGENT_CONN_TABLE, CASA_HAS_AGENT, M(K_ACONN_TABLE), AGENT_TABLE_HEAD,
	  AGENT_LIST_MAX(AGENT_TABLE_HEAD, CASA_AGENT_CONN_ENTRY_LEN, CASA_AGENT_CONNS_MAX),
	  CASA_AGENT_CONN_ENTRY_LEN, dec_agent_table, chk_agent_list, enc_agent_list },
	{ CASA_MSG_AGENT_KEEPALIVE, CASA_HAS_AGENT, M(K_AKEEPALIVE), CASA_AGENT_KEEPALIVE_LEN,
	  CASA_AGENT_KEEPALIVE_LEN, 0, dec_agent_keepalive, NULL, enc_agent_keepalive },
	{ CASA_TLV_WILDCARD_AUX, CASA_HAS_AUX, M(K_WILDCARD), 8, 8, 0, dec_aux, NULL, enc_aux },
	{ CASA_TLV_ACTION, CASA_HAS_ACTION, CISCO_AFF, 20, 20, 0, dec_action, chk_action,
	  enc_action },
	{ CASA_TLV_SENDER_INFO, CASA_HAS_SENDER_INFO, CISCO_AFF | M(K_IP) | M(K_TICKLE), 12, 12, 0,
	  dec_sender_info, NULL, enc_sender_info },
	{ CASA_TLV_NAME, CASA_HAS_NAME, M(K_HELLO) | M(K_ACK) | M(K_AREG), 5, 4 + CASA_NAME_MAX, 1,
	  dec_name, chk_name, enc_name },
	{ CASA_TLV_PKT_EXCERPT, CASA_HAS_PKT_EXCERPT, M(K_TICKLE), 8 + CASA_EXCERPT_MIN,
	  8 + CASA_EXCERPT_MAX, 1, dec_excerpt, chk_excerpt, enc_excerpt },
	{ CASA_TLV_DISPATCH_INFO, CASA_HAS_DISPATCH_INFO, CISCO_AFF | M(K_AREG) | M(K_AREG_ACK), 24,
	  24, 0, dec_dispatch_info, chk_dispatch_info, enc_dispatch_info },
	{ CASA_TLV_AUTH, CASA_HAS_AUTH, M_ALL, 44, 60, 16, dec_auth, NULL, enc_auth },
};
#define TLV_TABLE_LEN (sizeof(tlv_table) / sizeof(tlv_table[0]))

/* casalb's own TLVs: refused in Cisco messages in strict mode (spec 4.5). */
#define CASALB_TLVS (CASA_HAS_SENDER_INFO | CASA_HAS_DISPATCH_INFO | CASA_HAS_AUTH)

static int msg_kind_of(uint16_t type)
{
	for (int k = 0; k < K__COUNT; k++)
		if (msg_table[k].type == type)
			return k;
	return -1;
}

static const struct tlv_desc *tlv_find(uint16_t type, int kind)
{
	for (size_t i = 0; i < TLV_TABLE_LEN; i++)
		if (tlv_table[i].type == type)
			return (tlv_table[i].allowed & M(kind)) ? &tlv_table[i] : NULL;
	return NULL;
}

/* Length rule of spec 4.3; AUTH's depends on its algorithm byte (spec 6.9). */
static bool tlv_len_ok(const struct tlv_desc *d, const uint8_t *tlv, uint16_t len)
{
	if (len < d->min_len || len > d->max_len)
		return false;
	if (d->type == CASA_TLV_AUTH) {
		if (len != CASA_AUTH_MD5_LEN && len != CASA_AUTH_SHA256_LEN)
			return false;
		if (tlv[4] == CASA_AUTH_HMAC_MD5)
			return len == CASA_AUTH_MD5_LEN;
		if (tlv[4] == CASA_AUTH_HMAC_SHA256)
			return len == CASA_AUTH_SHA256_LEN;
		return true; // unknown algorithm: the policy says AUTH_ALG
	}
	return d->step == 0 || (len - d->min_len) % d->step == 0;
}

/* ---- decoder --------------------------------------------------------------- */

struct tlv_ref {
	uint16_t off;
	uint16_t type;
	uint16_t len;
};

static enum casa_err fail(struct casa_msg *m, enum casa_err err, size_t off)
{
	m->err_offset = off;
	return err;
}

/* Spec 8 step 3: frame the TLVs, checking truncation, count and padding. */
static enum casa_err walk_tlvs(const uint8_t *buf, size_t len, struct tlv_ref *refs,
			       unsigned *count, struct casa_msg *m)
{
	size_t off = CASA_HDR_LEN;
	unsigned n = 0;

	while (off < len) {
		if (len - off < CASA_TLV_HDR_LEN)
			return fail(m, CASA_E_TLV_TRUNC, off);
		uint16_t tlen = casa_get16(buf + off + 2);
		if (tlen < CASA_TLV_HDR_LEN || tlen > len - off)
			return fail(m, CASA_E_TLV_TRUNC, off + 2);
		if (n == CASA_TLV_MAX)
			return fail(m, CASA_E_TOO_MANY, off);
		refs[n++] = (struct tlv_ref){ (uint16_t)off, casa_get16(buf + off), tlen };
		size_t end = off + tlen;
		size_t next = off + (((size_t)tlen + 3) & ~(size_t)3);
		if (next > len) {
			if (end != len)
				return fail(m, CASA_E_TLV_TRUNC, len);
			next = len; // an unpadded last TLV
		}
		for (size_t p = end; p < next; p++)
			if (buf[p] != 0)
				return fail(m, CASA_E_PAD, p);
		off = next;
	}
	*count = n;
	return CASA_OK;
}

/* Spec 8 step 6: per-TLV position, length, duplicates and mandatory bit. */
static enum casa_err decode_tlvs(const uint8_t *buf, const struct tlv_ref *refs, unsigned n,
				 int kind, const struct tlv_desc **descs, struct casa_msg *m)
{
	for (unsigned i = 0; i < n; i++) {
		const struct tlv_ref *r = &refs[i];
		const struct tlv_desc *d = tlv_find(r->type, kind);

		descs[i] = d;
		if (r->type == CASA_TLV_AUTH && i != n - 1)
			return fail(m, CASA_E_AUTH_POS, r->off);
		if (d) {
			if (!tlv_len_ok(d, buf + r->off, r->len))
				return fail(m, CASA_E_TLV_LEN, r->off + 2);
			if (m->present & d->present)
				return fail(m, CASA_E_DUP, r->off);
			m->present |= d->present;
			d->decode(buf + r->off + CASA_TLV_HDR_LEN, r->len - CASA_TLV_HDR_LEN, m);
			if (d->type == CASA_TLV_AUTH)
				m->auth.offset = r->off;
		} else if (r->type & CASA_TLV_MANDATORY) {
			return fail(m, CASA_E_UNSUPPORTED, r->off);
		} else {
			m->skipped_tlvs++;
		}
	}
	return CASA_OK;
}

/* Spec 8 steps 7 and 8: required ACTION (and the agent REGISTER's NAME),
 * then field checks in TLV order. */
static enum casa_err check_fields(const struct tlv_ref *refs, unsigned n,
				  const struct tlv_desc *const *descs, struct casa_msg *m)
{
	bool affinity = m->present & (CASA_HAS_WILDCARD | CASA_HAS_FIXED);

	if (affinity && m->aff.ttl > 0 && !(m->present & CASA_HAS_ACTION))
		return fail(m, CASA_E_MISSING, refs[0].off);
	if (m->type == CASA_MSG_AGENT_REGISTER && !(m->present & CASA_HAS_NAME))
		return fail(m, CASA_E_MISSING, refs[0].off);
	for (unsigned i = 0; i < n; i++) {
		size_t field_off = 0;
		enum casa_err err;

		if (!descs[i] || !descs[i]->check)
			continue;
		err = descs[i]->check(m, refs[i].len - CASA_TLV_HDR_LEN, &field_off);
		if (err != CASA_OK)
			return fail(m, err, refs[i].off + field_off);
	}
	return CASA_OK;
}

enum casa_err casa_decode(const uint8_t *buf, size_t len, size_t max_len, struct casa_msg *m)
{
	struct tlv_ref refs[CASA_TLV_MAX];
	const struct tlv_desc *descs[CASA_TLV_MAX];
	unsigned n = 0;
	enum casa_err err;
	int kind;

	memset(m, 0, sizeof(*m));
	if (max_len == 0)
		max_len = CASA_MSG_MAX_DEFAULT;
	if (max_len > CASA_MSG_MAX_HARD)
		max_len = CASA_MSG_MAX_HARD;
	if (len < CASA_HDR_LEN)
		return fail(m, CASA_E_SHORT, len);
	if (len > max_len)
		return fail(m, CASA_E_TOO_BIG, max_len);
	if (casa_get16(buf) != CASA_VERSION)
		return fail(m, CASA_E_VERSION, 0);
	err = walk_tlvs(buf, len, refs, &n, m);
	if (err != CASA_OK)
		return err;
	m->type = casa_get16(buf + 2);
	m->tlv_count = n;
	kind = msg_kind_of(m->type);
	if (kind < 0)
		return fail(m, CASA_E_MSG_TYPE, 2);
	if (n == 0)
		return fail(m, CASA_E_MISSING, CASA_HDR_LEN);
	if (refs[0].type != msg_table[kind].primary_tlv)
		return fail(m, CASA_E_TYPE_MISMATCH, CASA_HDR_LEN);
	err = decode_tlvs(buf, refs, n, kind, descs, m);
	if (err != CASA_OK)
		return err;
	return check_fields(refs, n, descs, m);
}

/* ---- encoder --------------------------------------------------------------- */

static uint16_t tlv_len_of(const struct tlv_desc *d, const struct casa_msg *m)
{
	switch (d->type) {
	case CASA_TLV_IP_PACKET:
		return (uint16_t)(CASA_TLV_HDR_LEN + m->ip_pkt_len);
	case CASA_TLV_STATS:
		return (uint16_t)(16 + 12 * m->stats.count);
	case CASA_TLV_NAME:
		return (uint16_t)(CASA_TLV_HDR_LEN + m->name.len);
	case CASA_TLV_PKT_EXCERPT:
		return (uint16_t)(8 + m->excerpt.len);
	case CASA_TLV_AUTH:
		return (uint16_t)(28 + m->auth.digest_len);
	case CASA_MSG_AGENT_SERVICES:
	case CASA_MSG_AGENT_READY:
	case CASA_MSG_AGENT_CONN_END:
	case CASA_MSG_AGENT_CONN_TABLE:
		return (uint16_t)(agent_head_len(d->type) +
				  m->agent.list.n * agent_entry_len(d->type));
	default:
		return d->min_len;
	}
}

/* Variable-length members must be within their registry bounds. */
static bool sizes_ok(const struct casa_msg *m)
{
	if ((m->present & CASA_HAS_IP_PACKET) &&
	    (!m->ip_pkt || m->ip_pkt_len < CASA_IP_PKT_MIN || m->ip_pkt_len > CASA_IP_PKT_MAX))
		return false;
	if ((m->present & CASA_HAS_STATS) && m->stats.count > CASA_STATS_MAX)
		return false;
	if ((m->present & CASA_HAS_NAME) &&
	    (!m->name.bytes || m->name.len < 1 || m->name.len > CASA_NAME_MAX))
		return false;
	if ((m->present & CASA_HAS_PKT_EXCERPT) &&
	    (!m->excerpt.bytes || m->excerpt.len < CASA_EXCERPT_MIN ||
	     m->excerpt.len > CASA_EXCERPT_MAX))
		return false;
	if ((m->present & CASA_HAS_AUTH) && m->auth.digest_len != 16 && m->auth.digest_len != 32)
		return false;
	if ((m->present & CASA_HAS_AGENT) && agent_entry_len(m->type) != 0 &&
	    (m->agent.list.n > agent_list_max(m->type) ||
	     (m->agent.list.n > 0 && !m->agent.list.entries)))
		return false;
	return true;
}

/* Present TLVs must all be allowed in the message type, the primary first. */
static bool shape_ok(const struct casa_msg *m, enum casa_mode mode, int kind)
{
	uint32_t allowed = 0;
	const struct tlv_desc *primary = tlv_find(msg_table[kind].primary_tlv, kind);

	for (size_t i = 0; i < TLV_TABLE_LEN; i++)
		if (tlv_table[i].allowed & M(kind))
			allowed |= tlv_table[i].present;
	if ((m->present & ~allowed) || !(m->present & primary->present))
		return false;
	if (mode == CASA_MODE_STRICT && kind <= K_IP && (m->present & CASALB_TLVS))
		return false;
	return sizes_ok(m);
}

int casa_encode(const struct casa_msg *m, enum casa_mode mode, uint8_t *buf, size_t cap)
{
	int kind = msg_kind_of(m->type);
	size_t off = CASA_HDR_LEN;
	struct casa_msg check;

	if (kind < 0 || !shape_ok(m, mode, kind))
		return -EINVAL;
	if (cap < CASA_HDR_LEN)
		return -ENOSPC;
	casa_put16(buf, CASA_VERSION);
	casa_put16(buf + 2, m->type);
	for (size_t i = 0; i < TLV_TABLE_LEN; i++) {
		const struct tlv_desc *d = &tlv_table[i];
		uint16_t tlen;
		size_t padded;

		if (!(m->present & d->present))
			continue;
		// The eight agent primaries share CASA_HAS_AGENT: emit the message's own.
		if (d->present == CASA_HAS_AGENT && d->type != m->type)
			continue;
		tlen = tlv_len_of(d, m);
		padded = ((size_t)tlen + 3) & ~(size_t)3;
		if (cap - off < padded)
			return -ENOSPC;
		casa_put16(buf + off, d->type);
		casa_put16(buf + off + 2, tlen);
		d->encode(m, buf + off + CASA_TLV_HDR_LEN);
		memset(buf + off + tlen, 0, padded - tlen);
		off += padded;
	}
	// The encoder only emits what the decoder accepts (spec 11.4 property).
	if (off > CASA_MSG_MAX_HARD || casa_decode(buf, off, CASA_MSG_MAX_HARD, &check) != CASA_OK)
		return -EINVAL;
	return (int)off;
}

static size_t encode_or_zero(const struct casa_msg *m, uint8_t *buf, size_t cap)
{
	int n = casa_encode(m, CASA_MODE_EXTENDED, buf, cap);

	return n > 0 ? (size_t)n : 0;
}

/* WILDCARD_AUX exactly as z/OS sends it (spec 5.3). */
static const uint8_t zos_aux[4] = { 0x05, 0x04, 0x00, 0x00 };

size_t casa_encode_wildcard(uint8_t *buf, size_t cap, const struct casa_affinity *aff,
			    const struct casa_action *action)
{
	struct casa_msg m = { .type = CASA_MSG_WILDCARD,
			      .present = CASA_HAS_WILDCARD | CASA_HAS_AUX };

	m.aff = *aff;
	memcpy(m.aux, zos_aux, sizeof(m.aux));
	if (action) {
		m.action = *action;
		m.present |= CASA_HAS_ACTION;
	}
	return encode_or_zero(&m, buf, cap);
}

size_t casa_encode_fixed(uint8_t *buf, size_t cap, const struct casa_affinity *aff,
			 const struct casa_action *action)
{
	struct casa_msg m = { .type = CASA_MSG_FIXED, .present = CASA_HAS_FIXED };

	m.aff = *aff;
	if (action) {
		m.action = *action;
		m.present |= CASA_HAS_ACTION;
	}
	return encode_or_zero(&m, buf, cap);
}

size_t casa_encode_ip_packet(uint8_t *buf, size_t cap, const uint8_t *pkt, size_t pkt_len)
{
	struct casa_msg m = { .type = CASA_MSG_IP_PACKET, .present = CASA_HAS_IP_PACKET };

	if (pkt_len > CASA_IP_PKT_MAX)
		return 0;
	m.ip_pkt = pkt;
	m.ip_pkt_len = (uint16_t)pkt_len;
	return encode_or_zero(&m, buf, cap);
}

size_t casa_encode_hello(uint8_t *buf, size_t cap, uint16_t type, const struct casa_hello *hello,
			 const char *name)
{
	struct casa_msg m = { .type = type };

	if (type != CASA_MSG_HELLO && type != CASA_MSG_HELLO_ACK)
		return 0;
	m.present = type == CASA_MSG_HELLO ? CASA_HAS_HELLO : CASA_HAS_HELLO_ACK;
	m.hello = *hello;
	if (name && name[0]) {
		size_t n = strlen(name);

		if (n > CASA_NAME_MAX)
			return 0;
		m.name.bytes = (const uint8_t *)name;
		m.name.len = (uint8_t)n;
		m.present |= CASA_HAS_NAME;
	}
	return encode_or_zero(&m, buf, cap);
}

size_t casa_encode_tickle(uint8_t *buf, size_t cap, const struct casa_tickle *tickle)
{
	struct casa_msg m = { .type = CASA_MSG_TICKLE, .present = CASA_HAS_TICKLE };

	m.tickle = *tickle;
	return encode_or_zero(&m, buf, cap);
}

size_t casa_encode_stats(uint8_t *buf, size_t cap, const struct casa_stats *stats)
{
	struct casa_msg m = { .type = CASA_MSG_STATS, .present = CASA_HAS_STATS };

	m.stats = *stats;
	return encode_or_zero(&m, buf, cap);
}

/* ---- agent protocol encoders and getters (docs/agent-protocol.md) --------- */

bool casa_agent_msg(uint16_t type)
{
	return type >= CASA_TLV_AGENT_FIRST && type <= CASA_TLV_AGENT_LAST;
}

/* Name (required) and DISPATCH_INFO (optional) of REGISTER / REGISTER_ACK. */
static bool agent_set_name(struct casa_msg *m, const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n < 1 || n > CASA_NAME_MAX)
		return false;
	m->name.bytes = (const uint8_t *)name;
	m->name.len = (uint8_t)n;
	m->present |= CASA_HAS_NAME;
	return true;
}

static void agent_set_dispatch(struct casa_msg *m, const struct casa_dispatch_info *dispatch)
{
	if (dispatch) {
		m->dispatch = *dispatch;
		m->present |= CASA_HAS_DISPATCH_INFO;
	}
}

size_t casa_encode_agent_register(uint8_t *buf, size_t cap, const struct casa_agent_register *r,
				  const char *name, const struct casa_dispatch_info *dispatch)
{
	struct casa_msg m = { .type = CASA_MSG_AGENT_REGISTER, .present = CASA_HAS_AGENT };

	m.agent.reg = *r;
	m.agent.reg.status = 0; // not on the wire in REGISTER
	if (!agent_set_name(&m, name))
		return 0;
	agent_set_dispatch(&m, dispatch);
	return encode_or_zero(&m, buf, cap);
}

size_t casa_encode_agent_register_ack(uint8_t *buf, size_t cap, const struct casa_agent_register *r,
				      const struct casa_dispatch_info *dispatch)
{
	struct casa_msg m = { .type = CASA_MSG_AGENT_REGISTER_ACK, .present = CASA_HAS_AGENT };

	m.agent.reg = *r;
	m.agent.reg.version = 0; // not on the wire in REGISTER_ACK
	agent_set_dispatch(&m, dispatch);
	return encode_or_zero(&m, buf, cap);
}

/*
 * The list encoders write the entries straight into buf (the caller's
 * arrays are structs, not wire bytes), then decode the result so that they
 * emit only what casa_decode accepts, as casa_encode does.
 */
static size_t agent_list_start(uint8_t *buf, size_t cap, uint16_t type, unsigned n)
{
	size_t total = CASA_HDR_LEN + agent_head_len(type) + (size_t)n * agent_entry_len(type);

	if (n > agent_list_max(type) || cap < total)
		return 0;
	casa_put16(buf, CASA_VERSION);
	casa_put16(buf + 2, type);
	casa_put16(buf + CASA_HDR_LEN, type);
	casa_put16(buf + CASA_HDR_LEN + 2, (uint16_t)(total - CASA_HDR_LEN));
	return total; // a multiple of 4: no padding
}

static size_t agent_list_finish(const uint8_t *buf, size_t total)
{
	struct casa_msg check;

	return casa_decode(buf, total, CASA_MSG_MAX_HARD, &check) == CASA_OK ? total : 0;
}

size_t casa_encode_agent_services(uint8_t *buf, size_t cap, uint16_t type,
				  const struct casa_agent_service *s, unsigned n)
{
	size_t total, esz = agent_entry_len(type);
	uint8_t *v = buf + CASA_HDR_LEN + CASA_TLV_HDR_LEN;

	if (type != CASA_MSG_AGENT_SERVICES && type != CASA_MSG_AGENT_READY)
		return 0;
	if ((n > 0 && !s) || (total = agent_list_start(buf, cap, type, n)) == 0)
		return 0;
	casa_put16(v, (uint16_t)n);
	casa_put16(v + 2, 0);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *e = v + 4 + esz * i;

		casa_put32(e, s[i].vip);
		casa_put16(e + 4, s[i].port);
		e[6] = s[i].protocol;
		e[7] = s[i].dispatch;
		if (type == CASA_MSG_AGENT_READY)
			casa_put32(e + 8, s[i].ready);
	}
	return agent_list_finish(buf, total);
}

size_t casa_encode_agent_conns(uint8_t *buf, size_t cap, uint16_t type, uint16_t flags,
			       uint32_t resync_id, const struct casa_agent_conn *c, unsigned n)
{
	size_t total;
	uint8_t *v = buf + CASA_HDR_LEN + CASA_TLV_HDR_LEN, *e;

	if (type != CASA_MSG_AGENT_CONN_END && type != CASA_MSG_AGENT_CONN_TABLE)
		return 0;
	if ((n > 0 && !c) || (total = agent_list_start(buf, cap, type, n)) == 0)
		return 0;
	if (type == CASA_MSG_AGENT_CONN_TABLE) {
		casa_put16(v, flags);
		casa_put16(v + 2, (uint16_t)n);
		casa_put32(v + 4, resync_id);
		e = v + 8;
	} else {
		casa_put16(v, (uint16_t)n);
		casa_put16(v + 2, 0);
		e = v + 4;
	}
	for (unsigned i = 0; i < n; i++, e += CASA_AGENT_CONN_ENTRY_LEN) {
		casa_put32(e, c[i].client);
		casa_put32(e + 4, c[i].vip);
		casa_put16(e + 8, c[i].client_port);
		casa_put16(e + 10, c[i].vip_port);
		e[12] = c[i].protocol;
		e[13] = c[i].state;
		casa_put16(e + 14, c[i].reserved);
	}
	return agent_list_finish(buf, total);
}

size_t casa_encode_agent_load(uint8_t *buf, size_t cap, const struct casa_agent_load *l)
{
	struct casa_msg m = { .type = CASA_MSG_AGENT_LOAD, .present = CASA_HAS_AGENT };

	m.agent.load = *l;
	return encode_or_zero(&m, buf, cap);
}

size_t casa_encode_agent_keepalive(uint8_t *buf, size_t cap, const struct casa_agent_keepalive *k)
{
	struct casa_msg m = { .type = CASA_MSG_AGENT_KEEPALIVE, .present = CASA_HAS_AGENT };

	m.agent.keepalive = *k;
	return encode_or_zero(&m, buf, cap);
}

/* Entry i of a decoded list, or NULL (out of range, or not a list of esz). */
static const uint8_t *agent_entry(const struct casa_msg *m, unsigned i, size_t esz)
{
	if (!(m->present & CASA_HAS_AGENT) || agent_entry_len(m->type) != esz ||
	    i >= m->agent.list.n || !m->agent.list.entries)
		return NULL;
	return m->agent.list.entries + (size_t)i * esz;
}

void casa_agent_service_get(const struct casa_msg *m, unsigned i, struct casa_agent_service *out)
{
	const uint8_t *e = agent_entry(m, i, agent_entry_len(m->type));

	memset(out, 0, sizeof(*out));
	if (!e || (m->type != CASA_MSG_AGENT_SERVICES && m->type != CASA_MSG_AGENT_READY))
		return;
	out->vip = casa_get32(e);
	out->port = casa_get16(e + 4);
	out->protocol = e[6];
	out->dispatch = e[7];
	if (m->type == CASA_MSG_AGENT_READY)
		out->ready = casa_get32(e + 8);
}

void casa_agent_conn_get(const struct casa_msg *m, unsigned i, struct casa_agent_conn *out)
{
	const uint8_t *e = agent_entry(m, i, CASA_AGENT_CONN_ENTRY_LEN);

	memset(out, 0, sizeof(*out));
	if (!e)
		return;
	out->client = casa_get32(e);
	out->vip = casa_get32(e + 4);
	out->client_port = casa_get16(e + 8);
	out->vip_port = casa_get16(e + 10);
	out->protocol = e[12];
	out->state = e[13];
	out->reserved = casa_get16(e + 14);
}

/* Spec 6.1: FRAG | ALLPKTS, X = criteria, no tickle, no dispatch. */
void casa_action_wildcard_default(struct casa_action *a, uint32_t interest_addr, uint16_t port)
{
	*a = (struct casa_action){ .interest_addr = interest_addr,
				   .interest_port = port,
				   .criteria = CASA_INT_FRAG | CASA_INT_ALLPKTS,
				   .x = CASA_INT_FRAG | CASA_INT_ALLPKTS };
}

/* Spec 6.2: SYN, X = criteria, no tickle, no dispatch. */
void casa_action_fixed_default(struct casa_action *a, uint32_t interest_addr, uint16_t port)
{
	*a = (struct casa_action){ .interest_addr = interest_addr,
				   .interest_port = port,
				   .criteria = CASA_INT_SYN,
				   .x = CASA_INT_SYN };
}

/* ---- comparison and matching ------------------------------------------- */

static bool bytes_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
	return n == 0 || memcmp(a, b, n) == 0;
}

static bool stats_equal(const struct casa_stats *a, const struct casa_stats *b)
{
	if (a->sender_id != b->sender_id || a->interval != b->interval || a->count != b->count ||
	    a->reserved != b->reserved)
		return false;
	for (size_t i = 0; i < a->count && i < CASA_STATS_MAX; i++)
		if (a->entries[i].id != b->entries[i].id ||
		    a->entries[i].reserved != b->entries[i].reserved ||
		    a->entries[i].value != b->entries[i].value)
			return false;
	return true;
}

/* The fields each agent message carries on the wire; list entries as bytes. */
static bool agent_reg_equal(const struct casa_agent_register *a,
			    const struct casa_agent_register *b, bool ack)
{
	return (ack ? a->status == b->status : a->version == b->version) && a->flags == b->flags &&
	       a->reserved == b->reserved && a->sender_id == b->sender_id && a->epoch == b->epoch &&
	       a->keepalive_s == b->keepalive_s && a->hold_s == b->hold_s && a->caps == b->caps;
}

static bool agent_equal(uint16_t type, const struct casa_agent_body *a,
			const struct casa_agent_body *b)
{
	const struct casa_agent_list *la = &a->list, *lb = &b->list;
	const struct casa_agent_load *x = &a->load, *y = &b->load;
	const struct casa_agent_keepalive *ka = &a->keepalive, *kb = &b->keepalive;

	switch (type) {
	case CASA_MSG_AGENT_REGISTER:
	case CASA_MSG_AGENT_REGISTER_ACK:
		return agent_reg_equal(&a->reg, &b->reg, type == CASA_MSG_AGENT_REGISTER_ACK);
	case CASA_MSG_AGENT_LOAD:
		return x->capacity == y->capacity && x->reserved == y->reserved &&
		       x->qos == y->qos && x->active == y->active && x->cpu_idle == y->cpu_idle &&
		       x->pressure == y->pressure && x->retrans == y->retrans;
	case CASA_MSG_AGENT_KEEPALIVE:
		return ka->sender_id == kb->sender_id && ka->seq == kb->seq &&
		       ka->time_ms == kb->time_ms;
	default: // the lists; flags and resync_id are zero outside CONN_TABLE
		return la->flags == lb->flags && la->n == lb->n && la->reserved == lb->reserved &&
		       la->resync_id == lb->resync_id &&
		       bytes_equal(la->entries, lb->entries, la->n * agent_entry_len(type));
	}
}

static bool auth_equal(const struct casa_auth *a, const struct casa_auth *b)
{
	return a->alg == b->alg && a->key_id == b->key_id && a->reserved == b->reserved &&
	       a->sender_id == b->sender_id && a->epoch == b->epoch && a->seq == b->seq &&
	       a->timestamp == b->timestamp && a->digest_len == b->digest_len &&
	       bytes_equal(a->digest, b->digest, a->digest_len);
}

/* One comparison per TLV kind; members absent from `present` are ignored. */
static bool present_equal(const struct casa_msg *a, const struct casa_msg *b, uint32_t p)
{
	if ((p & (CASA_HAS_WILDCARD | CASA_HAS_FIXED)) && memcmp(&a->aff, &b->aff, sizeof(a->aff)))
		return false;
	if ((p & CASA_HAS_AUX) && memcmp(a->aux, b->aux, sizeof(a->aux)))
		return false;
	if ((p & CASA_HAS_ACTION) && memcmp(&a->action, &b->action, sizeof(a->action)))
		return false;
	if ((p & CASA_HAS_IP_PACKET) &&
	    (a->ip_pkt_len != b->ip_pkt_len || !bytes_equal(a->ip_pkt, b->ip_pkt, a->ip_pkt_len)))
		return false;
	if ((p & (CASA_HAS_HELLO | CASA_HAS_HELLO_ACK)) &&
	    memcmp(&a->hello, &b->hello, sizeof(a->hello)))
		return false;
	if ((p & CASA_HAS_TICKLE) && memcmp(&a->tickle, &b->tickle, sizeof(a->tickle)))
		return false;
	if ((p & CASA_HAS_STATS) && !stats_equal(&a->stats, &b->stats))
		return false;
	if ((p & CASA_HAS_SENDER_INFO) && memcmp(&a->sender, &b->sender, sizeof(a->sender)))
		return false;
	if ((p & CASA_HAS_NAME) &&
	    (a->name.len != b->name.len || !bytes_equal(a->name.bytes, b->name.bytes, a->name.len)))
		return false;
	if ((p & CASA_HAS_PKT_EXCERPT) &&
	    (a->excerpt.orig_len != b->excerpt.orig_len ||
	     a->excerpt.reserved != b->excerpt.reserved || a->excerpt.len != b->excerpt.len ||
	     !bytes_equal(a->excerpt.bytes, b->excerpt.bytes, a->excerpt.len)))
		return false;
	if ((p & CASA_HAS_DISPATCH_INFO) && memcmp(&a->dispatch, &b->dispatch, sizeof(a->dispatch)))
		return false;
	if ((p & CASA_HAS_AUTH) && !auth_equal(&a->auth, &b->auth))
		return false;
	if ((p & CASA_HAS_AGENT) && !agent_equal(a->type, &a->agent, &b->agent))
		return false;
	return true;
}

bool casa_msg_equal(const struct casa_msg *a, const struct casa_msg *b)
{
	if (a->type != b->type || a->present != b->present)
		return false;
	return present_equal(a, b, a->present);
}

bool casa_criteria_match(uint16_t criteria, uint8_t tcp_flags, bool is_tcp, bool is_fragment,
			 bool has_payload, bool first_data)
{
	if (criteria & CASA_INT_ALLPKTS)
		return true;
	if ((criteria & CASA_INT_FRAG) && is_fragment)
		return true;
	if (is_tcp && (criteria & 0x003F & tcp_flags))
		return true;
	if ((criteria & CASA_INT_DATA) && (has_payload || !is_tcp))
		return true;
	return (criteria & CASA_INT_FIRSTDATA) && first_data;
}

/* ---- stream framing (spec 11.6) ------------------------------------------ */

long casa_stream_frame_len(const uint8_t *buf, size_t avail)
{
	uint32_t n;

	if (avail < 4)
		return 0;
	n = casa_get32(buf);
	if (n < CASA_STREAM_MIN || n > CASA_STREAM_MAX)
		return -EBADMSG;
	return (long)n;
}

int casa_stream_put_len(uint8_t *buf, size_t cap, size_t msg_len)
{
	if (msg_len < CASA_STREAM_MIN || msg_len > CASA_STREAM_MAX)
		return -EINVAL;
	if (cap < 4)
		return -ENOSPC;
	casa_put32(buf, (uint32_t)msg_len);
	return 0;
}
