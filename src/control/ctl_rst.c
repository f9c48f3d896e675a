/*
 * ctl_rst.c - fast connection reset (seed 001 "fast connection reset";
 * design.md section 5): when no target holds a connection, the SM answers
 * its packet with a TCP RST from the VIP so the client fails at once
 * instead of retransmitting into a void. Plus the token bucket that bounds
 * how many resets go out, so a flood of stray packets cannot turn the SM
 * into a reflector.
 *
 * Context: control thread. Pure bytes: no sockets here.
 */
#include <string.h>

#include "ctl.h"

#define IP_HDR 20
#define TCP_HDR 20
#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	wr16(p, (uint16_t)(v >> 16));
	wr16(p + 2, (uint16_t)v);
}

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t acc)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		acc += rd16(p + i);
	if (n & 1)
		acc += (uint32_t)p[n - 1] << 8;
	return acc;
}

static uint16_t fold(uint32_t acc)
{
	while (acc >> 16)
		acc = (acc & 0xFFFF) + (acc >> 16);
	return (uint16_t)~acc;
}

size_t ctl_rst_build(const uint8_t *ip, size_t len, uint8_t *out, size_t cap)
{
	size_t ihl, tot, thl, seg_len;
	const uint8_t *tcp;
	uint8_t flags;
	uint8_t *th = out + IP_HDR;
	uint32_t acc;

	if (len < IP_HDR || (ip[0] >> 4) != 4 || cap < IP_HDR + TCP_HDR)
		return 0;
	ihl = (size_t)(ip[0] & 0x0F) * 4;
	tot = rd16(ip + 2);
	// A non-first fragment has no TCP header to answer.
	if (ihl < IP_HDR || tot < ihl + TCP_HDR || tot > len || ip[9] != 6 ||
	    (rd16(ip + 6) & 0x1FFF) != 0)
		return 0;
	tcp = ip + ihl;
	thl = (size_t)(tcp[12] >> 4) * 4;
	flags = tcp[13];
	if (thl < TCP_HDR || ihl + thl > tot || (flags & TCP_RST))
		return 0; // never answer a reset with a reset (RFC 793)
	seg_len = tot - ihl - thl + !!(flags & TCP_SYN) + !!(flags & TCP_FIN);

	memset(out, 0, IP_HDR + TCP_HDR);
	out[0] = 0x45;
	wr16(out + 2, IP_HDR + TCP_HDR);
	wr16(out + 6, 0x4000); // DF
	out[8] = 64;
	out[9] = 6;
	memcpy(out + 12, ip + 16, 4); // from the VIP
	memcpy(out + 16, ip + 12, 4); // to the client
	wr16(out + 10, fold(sum16(out, IP_HDR, 0)));

	memcpy(th, tcp + 2, 2);
	memcpy(th + 2, tcp, 2);
	if (flags & TCP_ACK) {
		// RFC 793 "Reset Generation": <SEQ=SEG.ACK><CTL=RST>
		memcpy(th + 4, tcp + 8, 4);
		th[13] = TCP_RST;
	} else {
		// <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
		wr32(th + 8, rd32(tcp + 4) + (uint32_t)seg_len);
		th[13] = TCP_RST | TCP_ACK;
	}
	th[12] = 5 << 4;
	// Pseudo-header: addresses, protocol, TCP length.
	acc = sum16(out + 12, 8, 0) + 6 + TCP_HDR;
	wr16(th + 16, fold(sum16(th, TCP_HDR, acc)));
	return IP_HDR + TCP_HDR;
}

bool ctl_rate_take(struct ctl_rate *r, uint64_t now_ms)
{
	if (r->rate == 0)
		return false;
	if (now_ms > r->last_ms) {
		r->tokens += (double)(now_ms - r->last_ms) * r->rate / 1000.0;
		// Burst: at most one second's worth.
		if (r->tokens > r->rate)
			r->tokens = r->rate;
		r->last_ms = now_ms;
	}
	if (r->tokens < 1.0)
		return false;
	r->tokens -= 1.0;
	return true;
}
