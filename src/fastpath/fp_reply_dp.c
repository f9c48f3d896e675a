/*
 * fp_reply_dp.c - answers the fast path gives itself (worker context): ARP
 * replies for VIPs and own addresses, ICMP echo replies. In place, so the
 * received buffer goes straight back out.
 */
#include <string.h>

#include "fp_pkt.h"

static void swap(uint8_t *a, uint8_t *b, size_t n)
{
	uint8_t t[6];

	memcpy(t, a, n);
	memcpy(a, b, n);
	memcpy(b, t, n);
}

void fp_arp_reply(uint8_t *frame, const struct fp_pkt *pkt, const uint8_t my_mac[6])
{
	uint8_t *arp = frame + pkt->l3_off;

	// Ethernet: back to the asker, from us (RFC 826).
	memcpy(frame, frame + 6, 6);
	memcpy(frame + 6, my_mac, 6);
	fp_wr16(arp + 6, 2);          // reply
	memcpy(arp + 18, arp + 8, 6); // target hardware = old sender hardware
	fp_wr32(arp + 24, pkt->arp_spa);
	memcpy(arp + 8, my_mac, 6);
	fp_wr32(arp + 14, pkt->arp_tpa);
}

int fp_icmp_echo_reply(uint8_t *frame, const struct fp_pkt *pkt)
{
	uint8_t *ip = frame + pkt->l3_off, *icmp;
	uint32_t icmp_len;
	uint16_t c;

	if (pkt->kind != FP_PKT_IPV4 || pkt->flow.proto != 1 || pkt->is_frag ||
	    pkt->icmp_type != 8 || pkt->icmp_code != 0 || pkt->l4_off == 0)
		return -1;
	icmp = frame + pkt->l4_off;
	icmp_len = (uint32_t)pkt->ip_len - pkt->ip_hlen;
	swap(frame, frame + 6, 6);
	swap(ip + 12, ip + 16, 4);
	ip[8] = 64;
	fp_wr16(ip + 10, 0);
	c = fp_csum(ip, pkt->ip_hlen);
	fp_wr16(ip + 10, c);
	icmp[0] = 0; // echo reply
	fp_wr16(icmp + 2, 0);
	c = fp_csum(icmp, icmp_len);
	fp_wr16(icmp + 2, c);
	return 0;
}
