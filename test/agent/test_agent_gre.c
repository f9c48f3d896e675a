/*
 * test_agent_gre.c - GRE decapsulation at tc ingress (src/agent/agent_gre.c
 * and agent_gre.bpf.c).
 *
 * Three parts, all as root (the kernel must load BPF; not root: skipped):
 *  - the program alone, driven by BPF_PROG_TEST_RUN: a table of frames,
 *    each with its expected tc action, output bytes and the one counter
 *    that moves; the frames are built here from the RFCs, and the first
 *    is also spelled out byte by byte;
 *  - attaching in a network namespace: one filter however often it is
 *    attached, and the interface left as it was after detaching;
 *  - end to end: a GRE packet sent on a veth from one namespace with a
 *    packet socket arrives at a UDP socket bound to the VIP on lo in the
 *    other.
 * Addresses: LB 198.51.100.1, tunnel endpoint 198.51.100.2, client
 * 192.0.2.7, VIP 203.0.113.10 (RFC 5737).
 */
#define _GNU_SOURCE /* setns */
#include <CUnit/Basic.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "agent.h"

#define LB_ADDR 0xc6336401u      /* 198.51.100.1: the LB's tunnel address */
#define ENDPOINT 0xc6336402u     /* 198.51.100.2: this host's tunnel endpoint */
#define NOT_ENDPOINT 0xc6336409u /* 198.51.100.9 */
#define CLIENT 0xc0000207u       /* 192.0.2.7 */
#define VIP 0xcb00710au          /* 203.0.113.10 */
#define NOT_VIP 0xcb007163u      /* 203.0.113.99 */
#define KEY 0x0a0b0c0du          /* the key of the keyed configuration */
#define CLIENT_PORT 40000
#define VIP_PORT 7777
#define PAYLOAD "casalb-gre"

/* tc actions as linux/pkt_cls.h numbers them, spelled out here so the
 * table does not take them from the header under test. */
#define OK 0      /* TC_ACT_OK: decapsulated */
#define PASS (-1) /* TC_ACT_UNSPEC: untouched, on to the next filter */
#define SHOT 2    /* TC_ACT_SHOT: dropped */

/* GRE flag bits (RFC 2784 section 2.1, RFC 2890 section 2). */
#define C_BIT 0x8000
#define R_BIT 0x4000
#define K_BIT 0x2000
#define S_BIT 0x1000

static const uint8_t mac_tg[6] = { 0x02, 0xca, 0x5a, 0x00, 0x00, 0x02 };
static const uint8_t mac_lb[6] = { 0x02, 0xca, 0x5a, 0x00, 0x00, 0x01 };

static struct agent_gre *plain_gre; /* no key configured */
static struct agent_gre *keyed_gre; /* key KEY required */
static char load_err[256];

static bool root(void)
{
	if (geteuid() == 0)
		return true;
	printf("skipped: needs root (BPF and network namespaces) ");
	return false;
}

/* ---- frames ----------------------------------------------------------- */

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

/* RFC 1071 over n bytes, plus a starting sum. */
static uint16_t csum(const uint8_t *p, size_t n, uint32_t sum)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		sum += (uint32_t)(p[n - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static size_t ipv4(uint8_t *ip, uint8_t words, uint16_t total, uint16_t frag, uint8_t proto,
		   uint32_t src, uint32_t dst)
{
	size_t hl = (size_t)words * 4;

	memset(ip, 0, hl);
	ip[0] = (uint8_t)(0x40 | words);
	wr16(ip + 2, total);
	wr16(ip + 4, 0x1234);
	wr16(ip + 6, frag);
	ip[8] = 64;
	ip[9] = proto;
	wr32(ip + 12, src);
	wr32(ip + 16, dst);
	memset(ip + 20, 1, hl - 20); // options: NOP
	wr16(ip + 10, csum(ip, hl, 0));
	return hl;
}

/* The client's datagram to dst:VIP_PORT, checksums right. */
static size_t inner_udp(uint8_t *p, uint32_t dst)
{
	uint8_t *udp = p + 20;
	size_t n = 8 + strlen(PAYLOAD);
	uint32_t pseudo = (CLIENT >> 16) + (CLIENT & 0xffff) + (dst >> 16) + (dst & 0xffff) + 17 +
			  (uint32_t)n;

	ipv4(p, 5, (uint16_t)(20 + n), 0x4000, 17, CLIENT, dst);
	wr16(udp, CLIENT_PORT);
	wr16(udp + 2, VIP_PORT);
	wr16(udp + 4, (uint16_t)n);
	wr16(udp + 6, 0);
	memcpy(udp + 8, PAYLOAD, strlen(PAYLOAD));
	wr16(udp + 6, csum(udp, n, pseudo));
	return 20 + n;
}

/* One frame of the table: what differs from casalb's own GRE (fp_gre_write)
 * to the VIP. Zero fields keep the default. */
struct frame {
	uint16_t gre_flags;    /* C_BIT, K_BIT, S_BIT, version, ... */
	uint32_t key, seq;     /* when K_BIT, S_BIT */
	uint16_t gre_proto;    /* 0: 0x0800 */
	uint16_t vlan;         /* an 802.1Q tag with this VLAN id in the frame */
	uint16_t ethertype;    /* 0: IPv4; 0x0806 ARP request; 0x86dd IPv6 */
	uint8_t outer_proto;   /* 0: 47 */
	uint8_t outer_options; /* option words in the outer header */
	uint16_t outer_frag;   /* 0: DF; else the outer flags and offset */
	bool outer_df_clear;   /* flags and offset all 0 */
	uint32_t outer_dst;    /* 0: ENDPOINT */
	uint32_t inner_dst;    /* 0: VIP */
	bool outer_bad_csum;   /* the outer header checksum off by one */
	bool outer_ihl_4;      /* the outer header's ihl 4 (checksum right) */
	bool inner_v6;         /* the inner header's version nibble 6 */
	size_t cut;            /* truncate the frame to this many bytes... */
	bool cut_keeps_length; /* ...and leave the outer total length as it was */
};

/* The frame, into f; its decapsulation (Ethernet, then the inner packet)
 * into want. Returns the frame's length; *want_len gets the other. */
static size_t frame_build(const struct frame *s, uint8_t *f, uint8_t *want, size_t *want_len)
{
	uint8_t inner[64], *ip, *gre;
	size_t l2 = 14, in_len, hl, gl = 4, n;

	memcpy(f, mac_tg, 6);
	memcpy(f + 6, mac_lb, 6);
	if (s->vlan) {
		wr16(f + 12, 0x8100);
		wr16(f + 14, s->vlan);
		l2 += 4;
	}
	wr16(f + l2 - 2, s->ethertype ? s->ethertype : 0x0800);
	memcpy(want, f, 12);
	wr16(want + 12, 0x0800);
	if (s->ethertype == 0x86dd) { // IPv6, header only, to the same host
		memset(f + l2, 0, 40);
		f[l2] = 0x60;
		f[l2 + 6] = 59; // no next header
		f[l2 + 7] = 64;
		*want_len = 0;
		return l2 + 40;
	}
	if (s->ethertype) { // ARP request: who has ENDPOINT, tell LB_ADDR
		static const uint8_t arp[8] = { 0, 1, 8, 0, 6, 4, 0, 1 };

		memcpy(f + l2, arp, sizeof(arp));
		memcpy(f + l2 + 8, mac_lb, 6);
		wr32(f + l2 + 14, LB_ADDR);
		memset(f + l2 + 18, 0, 6);
		wr32(f + l2 + 24, ENDPOINT);
		*want_len = 0;
		return l2 + 28;
	}
	in_len = inner_udp(inner, s->inner_dst ? s->inner_dst : VIP);
	if (s->inner_v6)
		inner[0] = 0x65;
	memcpy(want + 14, inner, in_len);
	*want_len = 14 + in_len;

	ip = f + l2;
	hl = 20 + (size_t)s->outer_options * 4;
	gre = ip + hl;
	wr16(gre, s->gre_flags);
	wr16(gre + 2, s->gre_proto ? s->gre_proto : 0x0800);
	if (s->gre_flags & C_BIT) {
		wr32(gre + gl, 0); // checksum, filled below, and reserved1
		gl += 4;
	}
	if (s->gre_flags & K_BIT) {
		wr32(gre + gl, s->key);
		gl += 4;
	}
	if (s->gre_flags & S_BIT) {
		wr32(gre + gl, s->seq);
		gl += 4;
	}
	memcpy(gre + gl, inner, in_len);
	if (s->gre_flags & C_BIT) // RFC 2784 section 2.5: GRE header and payload
		wr16(gre + 4, csum(gre, gl + in_len, 0));
	n = l2 + hl + gl + in_len;
	if (s->cut && !s->cut_keeps_length)
		n = s->cut;
	ipv4(ip, (uint8_t)(5 + s->outer_options), (uint16_t)(n - l2),
	     s->outer_df_clear ? 0 :
	     s->outer_frag     ? s->outer_frag :
				 0x4000,
	     s->outer_proto ? s->outer_proto : 47, LB_ADDR, s->outer_dst ? s->outer_dst : ENDPOINT);
	if (s->outer_ihl_4) {
		ip[0] = 0x44;
		wr16(ip + 10, 0);
		wr16(ip + 10, csum(ip, 20, 0));
	}
	if (s->outer_bad_csum)
		ip[11] ^= 1;
	return s->cut ? s->cut : n;
}

static size_t unhex(const char *hex, uint8_t *out)
{
	size_t n = 0;

	for (; hex[0] && hex[1]; hex += 2) {
		unsigned v;

		sscanf(hex, "%2x", &v);
		out[n++] = (uint8_t)v;
	}
	return n;
}

/* ---- the program alone ------------------------------------------------- */

/* Run one frame through the program; out gets the frame it leaves. */
static int run(struct agent_gre *g, const uint8_t *in, size_t n, uint8_t *out, size_t *out_len,
	       int *retval)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = (uint32_t)n,
		    .data_out = out, .data_size_out = (uint32_t)*out_len, .repeat = 1);
	int rc = bpf_prog_test_run_opts(agent_gre_prog_fd(g), &o);

	*out_len = o.data_size_out;
	*retval = (int)o.retval;
	return rc;
}

/* Run in, expect the action, the one counter that moves, and (decap and
 * pass) the exact frame out: want, or in itself untouched. */
static void expect(const char *name, struct agent_gre *g, const uint8_t *in, size_t n, int action,
		   enum agent_gre_counter counter, const uint8_t *want, size_t want_len)
{
	uint64_t before[AGENT_GRE_N_COUNTERS], after[AGENT_GRE_N_COUNTERS];
	uint8_t out[512];
	size_t out_len = sizeof(out);
	int retval = 99, rc;
	bool ok = true;

	CU_ASSERT_FATAL(agent_gre_counters(g, before) == 0);
	rc = run(g, in, n, out, &out_len, &retval);
	CU_ASSERT_FATAL(agent_gre_counters(g, after) == 0);
	ok &= rc == 0 && retval == action && agent_gre_counter_action(counter) == action;
	for (unsigned c = 0; c < AGENT_GRE_N_COUNTERS; c++)
		ok &= after[c] - before[c] == (c == counter ? 1u : 0u);
	if (action == OK)
		ok &= out_len == want_len && memcmp(out, want, want_len) == 0;
	else if (action == PASS)
		ok &= out_len == n && memcmp(out, in, n) == 0;
	if (!ok) {
		printf("\n  %s: rc %d action %d (want %d), %zu bytes out (want %zu), counters moved:",
		       name, rc, retval, action, out_len, action == OK ? want_len : n);
		for (unsigned c = 0; c < AGENT_GRE_N_COUNTERS; c++)
			if (after[c] != before[c])
				printf(" %s", agent_gre_counter_name(c));
		printf(" (want %s)\n", agent_gre_counter_name(counter));
	}
	CU_ASSERT(ok);
}

/* The frame a casalb LB sends with key and sequence number, byte by byte
 * (outer IPv4 70 bytes, DF, TTL 64, checksum 0xe61e; GRE 0x3000 0x0800,
 * key 0x0a0b0c0d, sequence 1), and the frame the stack must get. */
static void test_literal(void)
{
	static const char frame[] = "02ca5a00000202ca5a0000010800"             // Ethernet
				    "4500004600004000402fe61ec6336401c6336402" // outer IPv4
				    "300008000a0b0c0d00000001"                 // GRE K S
				    "450000261234400040112a81c0000207cb00710a" // inner IPv4
				    "9c401e6100126424636173616c622d677265";    // UDP
	static const char want[] = "02ca5a00000202ca5a0000010800"
				   "450000261234400040112a81c0000207cb00710a"
				   "9c401e6100126424636173616c622d677265";
	uint8_t in[128], out[128], built[128], built_want[128];
	size_t n, wn, bn, bwn;
	struct frame s = { .gre_flags = K_BIT | S_BIT, .key = KEY, .seq = 1 };

	if (!root())
		return;
	CU_ASSERT_PTR_NOT_NULL_FATAL(keyed_gre);
	n = unhex(frame, in);
	wn = unhex(want, out);
	expect("literal", keyed_gre, in, n, OK, AGENT_GRE_DECAP, out, wn);
	// The table's builder makes these same bytes.
	bn = frame_build(&s, built, built_want, &bwn);
	built[18] = 0; // the literal frame has IP id 0, the builder 0x1234
	built[19] = 0;
	wr16(built + 24, 0);
	wr16(built + 24, csum(built + 14, 20, 0));
	CU_ASSERT(bn == n && memcmp(built, in, n) == 0);
	CU_ASSERT(bwn == wn && memcmp(built_want, out, wn) == 0);
}

struct row {
	const char *name;
	bool keyed; /* run on the program that requires KEY */
	struct frame f;
	int action;
	enum agent_gre_counter counter;
};

static const struct row rows[] = {
	{ "plain GRE", false, { 0 }, OK, AGENT_GRE_DECAP },
	{ "key, none configured",
	  false,
	  { .gre_flags = K_BIT, .key = 0xdeadbeef },
	  OK,
	  AGENT_GRE_DECAP },
	{ "key matching", true, { .gre_flags = K_BIT, .key = KEY }, OK, AGENT_GRE_DECAP },
	{ "key not matching",
	  true,
	  { .gre_flags = K_BIT, .key = KEY + 1 },
	  SHOT,
	  AGENT_GRE_DROP_KEY },
	{ "no key, one configured", true, { 0 }, SHOT, AGENT_GRE_DROP_KEY },
	{ "sequence number", false, { .gre_flags = S_BIT, .seq = 7 }, OK, AGENT_GRE_DECAP },
	{ "checksum", false, { .gre_flags = C_BIT }, OK, AGENT_GRE_DECAP },
	{ "checksum, key and sequence",
	  true,
	  { .gre_flags = C_BIT | K_BIT | S_BIT, .key = KEY, .seq = 9 },
	  OK,
	  AGENT_GRE_DECAP },
	{ "VLAN tag in the frame", false, { .vlan = 100 }, OK, AGENT_GRE_DECAP },
	{ "VLAN tag, key and sequence",
	  true,
	  { .vlan = 7, .gre_flags = K_BIT | S_BIT, .key = KEY, .seq = 2 },
	  OK,
	  AGENT_GRE_DECAP },
	{ "outer IPv4 options", false, { .outer_options = 2 }, OK, AGENT_GRE_DECAP },
	{ "outer DF clear", false, { .outer_df_clear = true }, OK, AGENT_GRE_DECAP },
	{ "ARP", false, { .ethertype = 0x0806 }, PASS, AGENT_GRE_PASS_NOT_IPV4 },
	{ "IPv6 ethertype", false, { .ethertype = 0x86dd }, PASS, AGENT_GRE_PASS_NOT_IPV4 },
	{ "outer ihl 4", false, { .outer_ihl_4 = true }, PASS, AGENT_GRE_PASS_IP_BAD },
	{ "outer total length beyond the frame",
	  false,
	  { .cut = 70, .cut_keeps_length = true },
	  PASS,
	  AGENT_GRE_PASS_IP_BAD },
	{ "not GRE (protocol 17)", false, { .outer_proto = 17 }, PASS, AGENT_GRE_PASS_NOT_GRE },
	{ "outer dst not an endpoint",
	  false,
	  { .outer_dst = NOT_ENDPOINT },
	  PASS,
	  AGENT_GRE_PASS_NOT_ENDPOINT },
	{ "outer fragment, MF", false, { .outer_frag = 0x2000 }, PASS, AGENT_GRE_PASS_FRAGMENT },
	{ "outer fragment, offset",
	  false,
	  { .outer_frag = 0x0010 },
	  PASS,
	  AGENT_GRE_PASS_FRAGMENT },
	{ "outer checksum wrong", false, { .outer_bad_csum = true }, PASS, AGENT_GRE_PASS_IP_CSUM },
	{ "GRE version 1 (PPTP)",
	  false,
	  { .gre_flags = K_BIT | 1, .key = 5 },
	  PASS,
	  AGENT_GRE_PASS_GRE_OTHER },
	{ "GRE carrying IPv6", false, { .gre_proto = 0x86dd }, PASS, AGENT_GRE_PASS_GRE_OTHER },
	{ "inner dst not a VIP", false, { .inner_dst = NOT_VIP }, PASS, AGENT_GRE_PASS_NOT_VIP },
	{ "GRE routing bit", false, { .gre_flags = R_BIT }, SHOT, AGENT_GRE_DROP_GRE_BAD },
	{ "GRE reserved bit 4", false, { .gre_flags = 0x0800 }, SHOT, AGENT_GRE_DROP_GRE_BAD },
	{ "GRE header cut", false, { .cut = 14 + 20 + 2 }, SHOT, AGENT_GRE_DROP_GRE_BAD },
	{ "GRE key cut",
	  false,
	  { .gre_flags = K_BIT, .cut = 14 + 20 + 6 },
	  SHOT,
	  AGENT_GRE_DROP_GRE_BAD },
	{ "inner IPv4 cut", false, { .cut = 14 + 20 + 4 + 12 }, SHOT, AGENT_GRE_DROP_INNER_BAD },
	{ "inner version 6", false, { .inner_v6 = true }, SHOT, AGENT_GRE_DROP_INNER_BAD },
};

static void test_table(void)
{
	uint8_t in[256], want[256];
	size_t n, wn;

	if (!root())
		return;
	CU_ASSERT_PTR_NOT_NULL_FATAL(plain_gre);
	CU_ASSERT_PTR_NOT_NULL_FATAL(keyed_gre);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];

		n = frame_build(&r->f, in, want, &wn);
		expect(r->name, r->keyed ? keyed_gre : plain_gre, in, n, r->action, r->counter,
		       want, wn);
	}
}

/* VIPs come and go while loaded. */
static void test_vip_add_del(void)
{
	struct frame s = { .inner_dst = NOT_VIP };
	uint8_t in[256], want[256];
	size_t n, wn;

	if (!root())
		return;
	CU_ASSERT_PTR_NOT_NULL_FATAL(plain_gre);
	n = frame_build(&s, in, want, &wn);
	expect("before add", plain_gre, in, n, PASS, AGENT_GRE_PASS_NOT_VIP, want, wn);
	CU_ASSERT_EQUAL(agent_gre_vip_add(plain_gre, NOT_VIP), 0);
	expect("after add", plain_gre, in, n, OK, AGENT_GRE_DECAP, want, wn);
	CU_ASSERT_EQUAL(agent_gre_vip_del(plain_gre, NOT_VIP), 0);
	expect("after del", plain_gre, in, n, PASS, AGENT_GRE_PASS_NOT_VIP, want, wn);
	CU_ASSERT_EQUAL(agent_gre_vip_del(plain_gre, NOT_VIP), -ENOENT);
}

/* Bad configurations and interfaces: NULL, errno and one line naming the
 * problem. */
static void test_errors(void)
{
	uint32_t many[AGENT_GRE_MAX_ENDPOINTS + 1] = { 0 };
	uint32_t ep = ENDPOINT;
	struct agent_gre_conf none = { 0 };
	struct agent_gre_conf too_many = { .endpoints = many,
					   .n_endpoints = AGENT_GRE_MAX_ENDPOINTS + 1 };
	struct agent_gre_conf ok = { .endpoints = &ep, .n_endpoints = 1 };
	char err[256] = "";

	errno = 0;
	CU_ASSERT_PTR_NULL(agent_gre_attach(NULL, &none, err, sizeof(err)));
	CU_ASSERT(errno == EINVAL && strstr(err, "no tunnel endpoint") && !strchr(err, '\n'));
	CU_ASSERT_PTR_NULL(agent_gre_attach(NULL, &too_many, err, sizeof(err)));
	CU_ASSERT(errno == E2BIG && strstr(err, "65 tunnel endpoints, at most 64"));
	CU_ASSERT_PTR_NULL(agent_gre_attach(NULL, NULL, NULL, 0));
	if (!root())
		return;
	CU_ASSERT_PTR_NULL(agent_gre_attach("casalb-nosuch0", &ok, err, sizeof(err)));
	CU_ASSERT(errno == ENODEV && strstr(err, "\"casalb-nosuch0\": no such interface"));
	CU_ASSERT_EQUAL(agent_gre_detach(NULL), 0);
}

static int suite_load_init(void)
{
	uint32_t ep[] = { NOT_ENDPOINT - 1, ENDPOINT };
	uint32_t vips[] = { VIP };
	struct agent_gre_conf conf = {
		.endpoints = ep, .n_endpoints = 2, .vips = vips, .n_vips = 1
	};

	if (geteuid() != 0)
		return 0;
	plain_gre = agent_gre_attach(NULL, &conf, load_err, sizeof(load_err));
	conf.key_set = true;
	conf.key = KEY;
	if (plain_gre)
		keyed_gre = agent_gre_attach(NULL, &conf, load_err, sizeof(load_err));
	if (!keyed_gre)
		printf("\nagent_gre_attach: %s\n", load_err); // the tests then fail
	return 0;
}

static int suite_load_cleanup(void)
{
	agent_gre_detach(plain_gre);
	agent_gre_detach(keyed_gre);
	plain_gre = keyed_gre = NULL;
	return 0;
}

/* ---- in network namespaces --------------------------------------------- */

static char ns_lb[32], ns_tg[32]; /* names, with our pid */
static int ns_home = -1;          /* the namespace the test started in */
static bool ns_ready;
static struct agent_gre *ns_gre[2]; /* attached in ns_tg: detached by cleanup if a test fails */

/* Run a shell command (printf-style); returns its exit status. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st != 0)
		printf("\n  command failed (%d): %s\n", st, cmd);
	return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

/* Lines of a command's output that contain needle. */
static int lines_with(const char *needle, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int lines_with(const char *needle, const char *fmt, ...)
{
	char cmd[512], line[512];
	va_list ap;
	FILE *f;
	int n = 0;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	return pclose(f) == 0 ? n : -1;
}

static int ns_enter(const char *name)
{
	char path[64];
	int fd, rc;

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = setns(fd, CLONE_NEWNET) ? -errno : 0;
	close(fd);
	return rc;
}

static void ns_leave(void)
{
	if (setns(ns_home, CLONE_NEWNET))
		perror("setns home");
}

/* Two namespaces joined by a veth: ns_lb's gre-lb0 198.51.100.1 and
 * ns_tg's gre-tg0 198.51.100.2, the VIP on ns_tg's lo. */
static int suite_ns_init(void)
{
	if (geteuid() != 0)
		return 0;
	snprintf(ns_lb, sizeof(ns_lb), "casalb-gre-lb-%d", (int)getpid());
	snprintf(ns_tg, sizeof(ns_tg), "casalb-gre-tg-%d", (int)getpid());
	ns_home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	ns_ready =
		ns_home >= 0 && sh("ip netns add %s", ns_lb) == 0 &&
		sh("ip netns add %s", ns_tg) == 0 &&
		sh("ip -n %s link add gre-lb0 address 02:ca:5a:00:00:01 type veth "
		   "peer name gre-tg0 address 02:ca:5a:00:00:02 netns %s",
		   ns_lb, ns_tg) == 0 &&
		sh("ip -n %s addr add 198.51.100.1/24 dev gre-lb0 && ip -n %s link set gre-lb0 up",
		   ns_lb, ns_lb) == 0 &&
		sh("ip -n %s addr add 198.51.100.2/24 dev gre-tg0 && ip -n %s link set gre-tg0 up && "
		   "ip -n %s link set lo up && ip -n %s addr add 203.0.113.10/32 dev lo && "
		   "ip -n %s route add default via 198.51.100.1",
		   ns_tg, ns_tg, ns_tg, ns_tg, ns_tg) == 0;
	return 0;
}

static int suite_ns_cleanup(void)
{
	if (geteuid() != 0)
		return 0;
	if (ns_enter(ns_tg) == 0) {
		for (int i = 0; i < 2; i++)
			agent_gre_detach(ns_gre[i]);
		ns_leave();
	}
	ns_gre[0] = ns_gre[1] = NULL;
	sh("ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null; true", ns_lb, ns_tg);
	if (ns_home >= 0)
		close(ns_home);
	return 0;
}

static int filters(void)
{
	return lines_with("handle 0xca5a", "tc -n %s filter show dev gre-tg0 ingress", ns_tg);
}

static int clsacts(void)
{
	return lines_with("clsact", "tc -n %s qdisc show dev gre-tg0", ns_tg);
}

static struct agent_gre *attach_tg(void)
{
	uint32_t ep = ENDPOINT, vip = VIP;
	struct agent_gre_conf conf = {
		.endpoints = &ep, .n_endpoints = 1, .vips = &vip, .n_vips = 1
	};
	struct agent_gre *g;
	char err[256] = "";

	CU_ASSERT_FATAL(ns_enter(ns_tg) == 0);
	g = agent_gre_attach("gre-tg0", &conf, err, sizeof(err));
	ns_leave();
	if (!g)
		printf("\n  agent_gre_attach: %s\n", err);
	return g;
}

static int detach_tg(struct agent_gre *g)
{
	int rc;

	CU_ASSERT_FATAL(ns_enter(ns_tg) == 0);
	rc = agent_gre_detach(g);
	ns_leave();
	return rc;
}

/* Attach twice: one filter; detach both: no filter, no clsact qdisc. */
static void test_attach_twice(void)
{
	if (!root())
		return;
	CU_ASSERT_FATAL(ns_ready);
	CU_ASSERT_EQUAL(clsacts(), 0);
	ns_gre[0] = attach_tg();
	CU_ASSERT_PTR_NOT_NULL_FATAL(ns_gre[0]);
	CU_ASSERT_EQUAL(filters(), 1);
	CU_ASSERT_EQUAL(clsacts(), 1);
	ns_gre[1] = attach_tg();
	CU_ASSERT_PTR_NOT_NULL_FATAL(ns_gre[1]);
	CU_ASSERT_EQUAL(filters(), 1); // replaced, not added
	CU_ASSERT_EQUAL(detach_tg(ns_gre[1]), 0);
	ns_gre[1] = NULL;
	CU_ASSERT_EQUAL(filters(), 0);
	CU_ASSERT_EQUAL(clsacts(), 1); // the first attach created it
	CU_ASSERT_EQUAL(detach_tg(ns_gre[0]), 0);
	ns_gre[0] = NULL;
	CU_ASSERT_EQUAL(filters(), 0);
	CU_ASSERT_EQUAL(clsacts(), 0);
}

/* A clsact qdisc that was there before, with someone's ingress filter,
 * stays with that filter after detach. */
static void test_existing_qdisc(void)
{
	if (!root())
		return;
	CU_ASSERT_FATAL(ns_ready);
	CU_ASSERT_FATAL(sh("tc -n %s qdisc add dev gre-tg0 clsact && "
			   "tc -n %s filter add dev gre-tg0 ingress pref 9 u32 match u32 0 0",
			   ns_tg, ns_tg) == 0);
	ns_gre[0] = attach_tg();
	CU_ASSERT_PTR_NOT_NULL_FATAL(ns_gre[0]);
	CU_ASSERT_EQUAL(filters(), 1);
	CU_ASSERT_EQUAL(detach_tg(ns_gre[0]), 0);
	ns_gre[0] = NULL;
	CU_ASSERT_EQUAL(filters(), 0);
	CU_ASSERT_EQUAL(clsacts(), 1);
	CU_ASSERT_EQUAL(lines_with("match 00000000/00000000",
				   "tc -n %s filter show dev gre-tg0 ingress", ns_tg),
			1);
	CU_ASSERT(sh("tc -n %s qdisc del dev gre-tg0 clsact", ns_tg) == 0);
}

/* The clsact qdisc we created stays when someone attached a filter to it
 * meanwhile (here at egress). */
static void test_qdisc_shared_since(void)
{
	if (!root())
		return;
	CU_ASSERT_FATAL(ns_ready);
	CU_ASSERT_EQUAL(clsacts(), 0);
	ns_gre[0] = attach_tg();
	CU_ASSERT_PTR_NOT_NULL_FATAL(ns_gre[0]);
	CU_ASSERT(sh("tc -n %s filter add dev gre-tg0 egress pref 7 u32 match u32 0 0", ns_tg) ==
		  0);
	CU_ASSERT_EQUAL(detach_tg(ns_gre[0]), 0);
	ns_gre[0] = NULL;
	CU_ASSERT_EQUAL(filters(), 0);
	CU_ASSERT_EQUAL(clsacts(), 1);
	CU_ASSERT_EQUAL(lines_with("match 00000000/00000000",
				   "tc -n %s filter show dev gre-tg0 egress", ns_tg),
			1);
	CU_ASSERT(sh("tc -n %s qdisc del dev gre-tg0 clsact", ns_tg) == 0);
}

/* Send a frame out of ns_lb's gre-lb0 with a packet socket. */
static int send_frame(const uint8_t *f, size_t n)
{
	struct sockaddr_ll to = { .sll_family = AF_PACKET,
				  .sll_protocol = htons(0x0800),
				  .sll_halen = 6 };
	int fd, rc = 0;

	if (ns_enter(ns_lb))
		return -1;
	to.sll_ifindex = (int)if_nametoindex("gre-lb0");
	memcpy(to.sll_addr, mac_tg, 6);
	fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, f, n, 0, (struct sockaddr *)&to, sizeof(to)) != (ssize_t)n)
		rc = -1;
	if (fd >= 0)
		close(fd);
	ns_leave();
	return rc;
}

/* One datagram on fd within ms, with the client's address and our payload. */
static bool got_datagram(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	char buf[64];
	ssize_t n;

	if (poll(&p, 1, ms) != 1)
		return false;
	n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
	return n == (ssize_t)strlen(PAYLOAD) && memcmp(buf, PAYLOAD, (size_t)n) == 0 &&
	       from.sin_addr.s_addr == htonl(CLIENT) && from.sin_port == htons(CLIENT_PORT);
}

/* GRE over the veth to the VIP arrives at a UDP socket bound to the VIP
 * (with key and sequence number as well); to another address it does not. */
static void test_end_to_end(void)
{
	struct sockaddr_in vip = { .sin_family = AF_INET, .sin_port = htons(VIP_PORT) };
	struct frame plain = { 0 }, keyed = { .gre_flags = K_BIT | S_BIT, .key = 3, .seq = 1 };
	struct frame other = { .inner_dst = NOT_VIP };
	uint64_t c[AGENT_GRE_N_COUNTERS];
	uint8_t f[256], want[256];
	size_t n, wn;
	bool got = false;
	int fd;

	if (!root())
		return;
	CU_ASSERT_FATAL(ns_ready);
	CU_ASSERT_FATAL(ns_enter(ns_tg) == 0);
	vip.sin_addr.s_addr = htonl(VIP);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CU_ASSERT(fd >= 0 && bind(fd, (struct sockaddr *)&vip, sizeof(vip)) == 0);
	ns_leave();
	CU_ASSERT_FATAL(fd >= 0);
	ns_gre[0] = attach_tg();
	CU_ASSERT_PTR_NOT_NULL_FATAL(ns_gre[0]);

	n = frame_build(&plain, f, want, &wn);
	// Bounded: a few tries in case the link is still coming up.
	for (int i = 0; i < 5 && !got; i++)
		got = send_frame(f, n) == 0 && got_datagram(fd, 1000);
	CU_ASSERT(got);
	n = frame_build(&keyed, f, want, &wn);
	CU_ASSERT(send_frame(f, n) == 0 && got_datagram(fd, 2000));
	n = frame_build(&other, f, want, &wn);
	CU_ASSERT(send_frame(f, n) == 0 && !got_datagram(fd, 300));

	CU_ASSERT_FATAL(agent_gre_counters(ns_gre[0], c) == 0);
	CU_ASSERT(c[AGENT_GRE_DECAP] >= 2);
	CU_ASSERT_EQUAL(c[AGENT_GRE_PASS_NOT_VIP], 1);
	CU_ASSERT_EQUAL(c[AGENT_GRE_DROP_DECAP_ERR], 0);
	CU_ASSERT_EQUAL(detach_tg(ns_gre[0]), 0);
	ns_gre[0] = NULL;
	close(fd);
}

int main(void)
{
	CU_pSuite s;
	int failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("agent_gre program", suite_load_init, suite_load_cleanup);
	CU_add_test(s, "a casalb GRE frame, byte by byte", test_literal);
	CU_add_test(s, "the frame table: action, output, counter", test_table);
	CU_add_test(s, "VIPs added and removed while loaded", test_vip_add_del);
	CU_add_test(s, "configuration and interface errors", test_errors);
	s = CU_add_suite("agent_gre in namespaces", suite_ns_init, suite_ns_cleanup);
	CU_add_test(s, "attach twice, detach: the interface as it was", test_attach_twice);
	CU_add_test(s, "an existing clsact qdisc is left alone", test_existing_qdisc);
	CU_add_test(s, "our clsact qdisc stays when others use it", test_qdisc_shared_since);
	CU_add_test(s, "GRE over a veth reaches a UDP socket on the VIP", test_end_to_end);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_tests_failed() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	// Not root: only the configuration checks ran; meson shows a skip.
	return failed ? 1 : geteuid() != 0 ? 77 : 0;
}
