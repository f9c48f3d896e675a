/*
 * fuzz_fp_parse.c - libFuzzer target for fp_parse and the rewrites the fast
 * path applies to what it accepts (src/fastpath/fp_pkt.h).
 *
 * Any frame up to 9216 bytes must give a verdict, under ASan and UBSan, and
 * never a read past its end (the input is copied to a heap buffer of exactly
 * its size). Properties, each a __builtin_trap() when broken:
 *  1. the verdict is OK or a named drop ("drop_..."); an OK IPv4 packet's
 *     header and total length lie inside the frame, transport offsets too;
 *  2. after fp_ip_ttl_dec the header checksum still verifies and the TTL
 *     dropped by one (RFC 1624 incremental update);
 *  3. fp_gre_write and fp_gre_apply on a per-target template give the same
 *     bytes, the outer checksum verifies and the total length is right;
 *  4. an ICMP echo request becomes a reply whose IP and ICMP checksums
 *     verify; an ARP request becomes a reply (op 2) to the asker.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fp_pkt.h"

#define FUZZ_MAX_FRAME 9216u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

static void check_bounds(const struct fp_pkt *p, size_t size)
{
	if (p->kind == FP_PKT_ARP) {
		check(p->l3_off + 28u <= size);
		return;
	}
	check(p->kind == FP_PKT_IPV4);
	check(p->ip_hlen >= FP_IP_MIN_LEN && p->ip_hlen <= p->ip_len);
	check((size_t)p->l3_off + p->ip_len <= size);
	check(p->is_frag == (p->more_frags || p->frag_off));
	if (p->l4_off)
		check(p->l4_off == p->l3_off + p->ip_hlen);
}

static void check_ttl_dec(const uint8_t *frame, size_t size, const struct fp_pkt *p)
{
	uint8_t *copy;
	uint8_t *ip;

	if (p->ttl <= 1)
		return;
	copy = malloc(size);
	memcpy(copy, frame, size);
	ip = copy + p->l3_off;
	fp_ip_ttl_dec(ip);
	check(ip[8] == p->ttl - 1);
	check(fp_csum(ip, p->ip_hlen) == 0);
	free(copy);
}

static void check_gre(const uint8_t *frame, const struct fp_pkt *p)
{
	struct fp_gre_params g = {
		.dst_mac = { 2, 0, 0, 0, 0, 0x4a },
		.src_mac = { 2, 0, 0, 0, 0, 1 },
		.src = 0xC0000201,
		.dst = 0xC6336401,
		.flags = (uint8_t)(p->ip_id & 3),
		.key = 0x01020304,
		.seq = p->ip_id,
		.ttl = (uint8_t)(p->ip_id >> 8 & 1 ? 0 : 64),
		.tos = (int16_t)(p->ip_id >> 9 & 1 ? -1 : 0x10),
		.df = (int8_t)((p->ip_id >> 10 & 3) % 3) - 1,
		.outer_id = 0x1234,
	};
	static const uint8_t dummy[FP_IP_MIN_LEN] = { 0x45 };
	const uint8_t *inner = frame + p->l3_off;
	size_t hl = fp_gre_hdr_len(g.flags);
	uint8_t a[64], b[64], tmpl[64];

	check(hl == 38 || hl == 42 || hl == 46);
	check(fp_gre_write(a, &g, inner, p->ip_len) == 0);
	check(fp_csum(a + FP_ETH_LEN, FP_IP_MIN_LEN) == 0);
	check(((a[16] << 8) | a[17]) == (int)(hl - FP_ETH_LEN + p->ip_len));
	check(a[FP_ETH_LEN + 9] == 47);
	fp_gre_write(tmpl, &g, dummy, 0);
	fp_gre_apply(b, tmpl, hl, &g, inner, p->ip_len);
	check(memcmp(a, b, hl) == 0);
}

static void check_replies(const uint8_t *frame, size_t size, const struct fp_pkt *p)
{
	static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 9 };
	uint8_t *copy = malloc(size);

	memcpy(copy, frame, size);
	if (p->kind == FP_PKT_ARP) {
		fp_arp_reply(copy, p, mac);
		check(copy[p->l3_off + 7] == 2);
		check(memcmp(copy, frame + 6, 6) == 0);
	} else if (fp_icmp_echo_reply(copy, p) == 0) {
		check(p->flow.proto == 1 && p->icmp_type == 8 && !p->is_frag);
		check(fp_csum(copy + p->l3_off, p->ip_hlen) == 0);
		check(fp_csum(copy + p->l4_off, (size_t)p->ip_len - p->ip_hlen) == 0);
		check(copy[p->l4_off] == 0);
	}
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fp_pkt p;
	enum fp_verdict v;
	uint8_t *frame;

	if (size > FUZZ_MAX_FRAME)
		return 0;
	frame = malloc(size ? size : 1);
	if (size)
		memcpy(frame, data, size);
	v = fp_parse(frame, (uint32_t)size, &p);
	check((unsigned)v < FP_V__COUNT);
	if (v != FP_V_OK) {
		check(strncmp(fp_verdict_name(v), "drop_", 5) == 0);
		free(frame);
		return 0;
	}
	check_bounds(&p, size);
	if (p.kind == FP_PKT_IPV4) {
		check_ttl_dec(frame, size, &p);
		check_gre(frame, &p);
	}
	check_replies(frame, size, &p);
	free(frame);
	return 0;
}
