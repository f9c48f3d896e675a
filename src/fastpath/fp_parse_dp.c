/*
 * fp_parse_dp.c - parsing of received frames (worker context): Ethernet
 * with at most one VLAN tag, ARP, IPv4 with options and fragments, TCP,
 * UDP, ICMP and the packet an ICMP error quotes. Every header is checked
 * against the frame length before it is read; every fault is a named
 * verdict (fp_pkt.h). Plus the Internet checksum and the incremental TTL
 * decrement. No DPDK: tested byte-exact and fuzzed alone.
 */
#include <string.h>

#include "fp_pkt.h"

static const char *const verdict_names[] = {
#define FP_VERDICT_NAME(e, name) [e] = name,
	FP_VERDICTS(FP_VERDICT_NAME)
#undef FP_VERDICT_NAME
};

const char *fp_verdict_name(enum fp_verdict v)
{
	return (unsigned)v < FP_V__COUNT ? verdict_names[v] : "unknown";
}

uint16_t fp_csum(const void *data, size_t n)
{
	const uint8_t *p = data;
	uint64_t sum = 0;
	uint32_t w32;
	uint16_t w16;
	uint8_t last[2];

	// RFC 1071 section 2(B): the one's-complement sum is byte-order
	// independent, so native 32-bit words are added into a 64-bit
	// accumulator and the folded result is byte-swapped once at the end.
	for (; n >= 4; p += 4, n -= 4) {
		memcpy(&w32, p, 4);
		sum += w32;
	}
	if (n >= 2) {
		memcpy(&w16, p, 2);
		sum += w16;
		p += 2;
		n -= 2;
	}
	if (n) {
		last[0] = p[0];
		last[1] = 0;
		memcpy(&w16, last, 2);
		sum += w16;
	}
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	// Native order to the host-order number the caller stores big-endian.
	w16 = (uint16_t)~sum;
	memcpy(last, &w16, 2);
	return (uint16_t)(last[0] << 8 | last[1]);
}

void fp_ip_ttl_dec(uint8_t *ip)
{
	// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), m the 16-bit word holding
	// TTL (high byte) and protocol.
	uint32_t old_word = fp_rd16(ip + 8);
	uint32_t new_word = old_word - 0x0100;
	uint32_t sum = (uint16_t)~fp_rd16(ip + 10);

	sum += (uint16_t)~old_word;
	sum += new_word;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip[8] = (uint8_t)(new_word >> 8);
	ip[10] = (uint8_t)(~sum >> 8);
	ip[11] = (uint8_t)~sum;
}

/* ---- layers ------------------------------------------------------------------ */

static enum fp_verdict parse_arp(const uint8_t *a, uint32_t len, struct fp_pkt *pkt)
{
	if (len < 28)
		return FP_V_DROP_ARP_SHORT;
	// Ethernet hardware, IPv4 protocol, 6- and 4-byte addresses only.
	if (fp_rd16(a) != 1 || fp_rd16(a + 2) != FP_ETHERTYPE_IPV4 || a[4] != 6 || a[5] != 4)
		return FP_V_DROP_ARP_FORMAT;
	pkt->kind = FP_PKT_ARP;
	pkt->arp_op = fp_rd16(a + 6);
	pkt->arp_spa = fp_rd32(a + 14);
	pkt->arp_tpa = fp_rd32(a + 24);
	return FP_V_OK;
}

/* The transport ports of an unfragmented or first-fragment packet. */
static enum fp_verdict parse_l4(const uint8_t *l4, uint32_t l4len, struct fp_pkt *pkt)
{
	switch (pkt->flow.proto) {
	case 6: {
		uint32_t doff;

		if (l4len < 20)
			return FP_V_DROP_L4_SHORT;
		doff = (uint32_t)(l4[12] >> 4) * 4;
		if (doff < 20 || doff > l4len)
			return FP_V_DROP_TCP_DOFF;
		pkt->flow.sport = fp_rd16(l4);
		pkt->flow.dport = fp_rd16(l4 + 2);
		pkt->tcp_flags = l4[13];
		pkt->payload_len = (uint16_t)(l4len - doff);
		return FP_V_OK;
	}
	case 17:
		if (l4len < 8)
			return FP_V_DROP_L4_SHORT;
		pkt->flow.sport = fp_rd16(l4);
		pkt->flow.dport = fp_rd16(l4 + 2);
		pkt->payload_len = (uint16_t)(l4len - 8);
		return FP_V_OK;
	default:
		return FP_V_OK;
	}
}

static bool icmp_is_error(uint8_t type)
{
	return type == 3 || type == 11 || type == 12;
}

/*
 * An ICMP error quotes the offending packet's IP header and at least eight
 * bytes after it (RFC 792): for TCP and UDP, the ports. That packet went
 * VIP -> client, so the flow is its reverse.
 */
static enum fp_verdict parse_icmp_quote(const uint8_t *q, uint32_t qlen, struct fp_pkt *pkt)
{
	uint32_t hl;

	if (qlen < 20 || (q[0] >> 4) != 4)
		return FP_V_DROP_ICMP_SHORT;
	hl = (uint32_t)(q[0] & 0xf) * 4;
	if (hl < 20 || qlen < hl + 8)
		return FP_V_DROP_ICMP_SHORT;
	pkt->icmp_error = true;
	pkt->flow.proto = q[9];
	pkt->flow.src = fp_rd32(q + 16);
	pkt->flow.dst = fp_rd32(q + 12);
	if (q[9] == 6 || q[9] == 17) {
		pkt->flow.sport = fp_rd16(q + hl + 2);
		pkt->flow.dport = fp_rd16(q + hl);
	}
	return FP_V_OK;
}

static enum fp_verdict parse_icmp(const uint8_t *l4, uint32_t l4len, struct fp_pkt *pkt)
{
	if (l4len < 8)
		return FP_V_DROP_ICMP_SHORT;
	pkt->icmp_type = l4[0];
	pkt->icmp_code = l4[1];
	pkt->payload_len = (uint16_t)(l4len - 8);
	if (icmp_is_error(l4[0]))
		return parse_icmp_quote(l4 + 8, l4len - 8, pkt);
	return FP_V_OK;
}

/* Fragment rules: RFC 791 bounds, RFC 1858 tiny fragments. */
static enum fp_verdict check_fragment(const struct fp_pkt *pkt, uint32_t payload)
{
	uint32_t end = (uint32_t)pkt->frag_off * 8 + payload;

	if (end > 65535u - pkt->ip_hlen)
		return FP_V_DROP_IP_FRAG;
	if (pkt->more_frags && (payload == 0 || (payload & 7)))
		return FP_V_DROP_IP_FRAG;
	if (pkt->frag_off == 1 && pkt->flow.proto == 6)
		return FP_V_DROP_IP_FRAG; // would overwrite the TCP flags
	return FP_V_OK;
}

static enum fp_verdict parse_ipv4(const uint8_t *frame, uint32_t len, struct fp_pkt *pkt)
{
	const uint8_t *ip = frame + pkt->l3_off;
	uint32_t avail = len - pkt->l3_off, hl, tot, payload;
	uint16_t frag;
	enum fp_verdict v;

	if (avail < FP_IP_MIN_LEN)
		return FP_V_DROP_IP_SHORT;
	if ((ip[0] >> 4) != 4)
		return FP_V_DROP_IP_VERSION;
	hl = (uint32_t)(ip[0] & 0xf) * 4;
	if (hl < FP_IP_MIN_LEN || hl > avail)
		return FP_V_DROP_IP_IHL;
	tot = fp_rd16(ip + 2);
	if (tot < hl || tot > avail)
		return FP_V_DROP_IP_TOTLEN;
	if ((hl == FP_IP_MIN_LEN ? fp_csum20(ip) : fp_csum(ip, hl)) != 0)
		return FP_V_DROP_IP_CSUM;
	pkt->kind = FP_PKT_IPV4;
	pkt->ip_hlen = (uint16_t)hl;
	pkt->ip_len = (uint16_t)tot;
	pkt->ip_id = fp_rd16(ip + 4);
	frag = fp_rd16(ip + 6);
	pkt->frag_off = frag & 0x1fff;
	pkt->more_frags = (frag & 0x2000) != 0;
	pkt->is_frag = pkt->more_frags || pkt->frag_off;
	pkt->first_frag = pkt->frag_off == 0;
	pkt->ttl = ip[8];
	pkt->flow.proto = ip[9];
	pkt->flow.src = fp_rd32(ip + 12);
	pkt->flow.dst = fp_rd32(ip + 16);
	payload = tot - hl;
	if (pkt->is_frag) {
		v = check_fragment(pkt, payload);
		if (v != FP_V_OK || !pkt->first_frag)
			return v; // later fragments carry no transport header
	}
	pkt->l4_off = (uint16_t)(pkt->l3_off + hl);
	if (pkt->flow.proto == 1)
		v = parse_icmp(ip + hl, payload, pkt);
	else
		v = parse_l4(ip + hl, payload, pkt);
	if (v != FP_V_OK && pkt->is_frag && v != FP_V_DROP_ICMP_SHORT)
		v = FP_V_DROP_IP_FRAG; // a first fragment too short for its header
	if (pkt->flow.proto != 1 && pkt->flow.proto != 6 && pkt->flow.proto != 17)
		pkt->l4_off = 0;
	return v;
}

enum fp_verdict fp_parse(const uint8_t *frame, uint32_t len, struct fp_pkt *pkt)
{
	uint16_t type;

	memset(pkt, 0, sizeof(*pkt));
	if (len < FP_ETH_LEN)
		return FP_V_DROP_ETH_SHORT;
	type = fp_rd16(frame + 12);
	pkt->l3_off = FP_ETH_LEN;
	if (type == FP_ETHERTYPE_VLAN || type == FP_ETHERTYPE_QINQ) {
		if (len < FP_ETH_LEN + FP_VLAN_LEN)
			return FP_V_DROP_VLAN_SHORT;
		pkt->has_vlan = true;
		pkt->vlan_tci = fp_rd16(frame + 14);
		type = fp_rd16(frame + 16);
		pkt->l3_off = FP_ETH_LEN + FP_VLAN_LEN;
	}
	switch (type) {
	case FP_ETHERTYPE_ARP:
		return parse_arp(frame + pkt->l3_off, len - pkt->l3_off, pkt);
	case FP_ETHERTYPE_IPV4:
		return parse_ipv4(frame, len, pkt);
	default:
		return FP_V_DROP_ETHERTYPE;
	}
}
