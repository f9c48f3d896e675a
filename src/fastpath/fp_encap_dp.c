/*
 * fp_encap_dp.c - the forwarding rewrites (worker context): GRE
 * encapsulation (RFC 2784, with the RFC 2890 key and sequence number) and
 * layer-2 dispatch (Ethernet addresses only). Pure functions over bytes.
 */
#include <string.h>

#include "fp_pkt.h"

#define GRE_K 0x2000 /* RFC 2890 key present */
#define GRE_S 0x1000 /* RFC 2890 sequence number present */

size_t fp_gre_hdr_len(uint8_t flags)
{
	return FP_ETH_LEN + FP_IP_MIN_LEN + FP_GRE_MIN_LEN + ((flags & FP_GRE_F_KEY) ? 4 : 0) +
	       ((flags & FP_GRE_F_SEQ) ? 4 : 0);
}

/* The outer IPv4 header: TOS, DF and TTL per the rules in *p, each either
 * fixed or copied from the inner header. */
static void outer_ipv4(uint8_t *ip, const struct fp_gre_params *p, const uint8_t *inner,
		       uint32_t total)
{
	bool df = p->df < 0 ? (inner[6] & 0x40) != 0 : p->df > 0;
	uint16_t c;

	ip[0] = 0x45;
	ip[1] = p->tos < 0 ? inner[1] : (uint8_t)p->tos;
	fp_wr16(ip + 2, (uint16_t)total);
	fp_wr16(ip + 4, p->outer_id);
	fp_wr16(ip + 6, df ? 0x4000 : 0);
	ip[8] = p->ttl ? p->ttl : inner[8];
	ip[9] = 47; // GRE
	fp_wr16(ip + 10, 0);
	fp_wr32(ip + 12, p->src);
	fp_wr32(ip + 16, p->dst);
	c = fp_csum(ip, FP_IP_MIN_LEN);
	fp_wr16(ip + 10, c);
}

int fp_gre_write(uint8_t *hdr, const struct fp_gre_params *p, const uint8_t *inner,
		 uint16_t inner_len)
{
	size_t hl = fp_gre_hdr_len(p->flags);
	uint32_t total = (uint32_t)(hl - FP_ETH_LEN) + inner_len;
	uint8_t *gre = hdr + FP_ETH_LEN + FP_IP_MIN_LEN, *opt = gre + FP_GRE_MIN_LEN;
	uint16_t flags = 0;

	if (total > 65535)
		return -1;
	memcpy(hdr, p->dst_mac, 6);
	memcpy(hdr + 6, p->src_mac, 6);
	fp_wr16(hdr + 12, FP_ETHERTYPE_IPV4);
	outer_ipv4(hdr + FP_ETH_LEN, p, inner, total);
	// RFC 2890 order after the base header: checksum (never), key, sequence.
	if (p->flags & FP_GRE_F_KEY) {
		flags |= GRE_K;
		fp_wr32(opt, p->key);
		opt += 4;
	}
	if (p->flags & FP_GRE_F_SEQ) {
		flags |= GRE_S;
		fp_wr32(opt, p->seq);
	}
	fp_wr16(gre, flags); // version 0 (RFC 2784)
	fp_wr16(gre + 2, FP_ETHERTYPE_IPV4);
	return 0;
}

void fp_gre_apply(uint8_t *hdr, const uint8_t *tmpl, size_t hl, const struct fp_gre_params *p,
		  const uint8_t *inner, uint16_t inner_len)
{
	uint8_t *ip = hdr + FP_ETH_LEN;

	memcpy(hdr, tmpl, hl);
	fp_wr16(ip + 2, (uint16_t)(hl - FP_ETH_LEN + inner_len));
	fp_wr16(ip + 4, p->outer_id);
	if (p->tos < 0)
		ip[1] = inner[1];
	if (p->df < 0)
		ip[6] = inner[6] & 0x40;
	if (p->ttl == 0)
		ip[8] = inner[8];
	if (p->flags & FP_GRE_F_SEQ)
		fp_wr32(hdr + hl - 4, p->seq);
	ip[10] = 0;
	ip[11] = 0;
	fp_wr16(ip + 10, fp_csum20(ip));
}

void fp_l2_rewrite(uint8_t *eth, const uint8_t dst_mac[6], const uint8_t src_mac[6])
{
	memcpy(eth, dst_mac, 6);
	memcpy(eth + 6, src_mac, 6);
}
