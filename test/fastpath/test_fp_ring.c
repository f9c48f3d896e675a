/*
 * test_fp_ring.c - the fast path end to end inside one process, through
 * DPDK's net_ring driver (a "ring:r0" port, fp_main.c): crafted frames go
 * into the port's RX ring, the worker is polled by hand (one lcore: no
 * launched workers), and what comes out of its TX rings is compared byte
 * for byte. Each case is {input bytes, expected verdict, expected output}.
 *
 * Addresses are the redbook's chapter-6 network (seed 000, traces 299-301):
 * client 9.67.156.104:2771, VIP 9.67.157.17:23, the Service Manager's
 * tunnel address 9.67.156.73 and the target 9.67.156.74. They never leave
 * the process.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <CUnit/Basic.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "fp_internal.h"
#include "fp_test_util.h"

#define VIP 0x09439D11u      /* 9.67.157.17 */
#define VIP_UDP 0x09439D12u  /* 9.67.157.18 */
#define VIP_DOWN 0x09439D13u /* 9.67.157.19: a service with no ready target */
#define CLIENT 0x09439C68u   /* 9.67.156.104 */
#define SM_ADDR 0x09439C49u  /* 9.67.156.73 */
#define TARGET 0x09439C4Au   /* 9.67.156.74 */
#define T_GRE 7
#define T_L2 8

static const uint8_t target_mac[6] = { 0x02, 0, 0, 0, 0, 0x4a };
static const uint8_t client_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static uint8_t port_mac[6];
static struct rte_ring *rx_ring, *tx_ring, *ctl_ring;

/* The redbook's SYN, trace 299's inner packet (48 bytes). */
static const char *redbook_syn = "45300030B66E40007F06F92909439C6809439D110AD30017"
				 "76748623000000007002400"
				 "0EF9D0000020405B401010402";
/* The same after forwarding, trace 300: TTL 126, checksum FA29. */
static const char *redbook_syn_fwd = "45300030B66E40007E06FA2909439C6809439D110AD30017"
				     "76748623000000007002400"
				     "0EF9D0000020405B401010402";

/* ---- helpers ------------------------------------------------------------------- */

/* An Ethernet frame to our port carrying the IPv4 packet in hex. */
static size_t eth_frame(uint8_t *f, const char *ip_hex, uint16_t vlan)
{
	size_t off = 12;

	memcpy(f, port_mac, 6);
	memcpy(f + 6, client_mac, 6);
	if (vlan) {
		f[12] = 0x81;
		f[13] = 0x00;
		f[14] = (uint8_t)(vlan >> 8);
		f[15] = (uint8_t)vlan;
		off = 16;
	}
	f[off] = 0x08;
	f[off + 1] = 0x00;
	return off + 2 + fpt_hex(ip_hex, f + off + 2, 2000);
}

static void inject(const uint8_t *f, size_t len)
{
	struct rte_mbuf *m = rte_pktmbuf_alloc(fp_state.pool);

	CU_ASSERT_FATAL(m != NULL);
	memcpy(rte_pktmbuf_append(m, (uint16_t)len), f, len);
	CU_ASSERT_FATAL(rte_ring_enqueue(rx_ring, m) == 0);
}

static struct fp_worker *worker(void)
{
	return &fp_state.workers[0];
}

static uint64_t verdict(enum fp_verdict v)
{
	return worker()->stats.verdict[v];
}

/* Poll once and return how many frames came out on ring r (into out). */
static unsigned take(struct rte_ring *r, uint8_t out[][2048], uint32_t *lens, unsigned max)
{
	struct rte_mbuf *m;
	unsigned n = 0;

	while (n < max && rte_ring_dequeue(r, (void **)&m) == 0) {
		lens[n] = rte_pktmbuf_data_len(m);
		memcpy(out[n], rte_pktmbuf_mtod(m, void *), lens[n]);
		rte_pktmbuf_free(m);
		n++;
	}
	return n;
}

static void drain(void)
{
	uint8_t out[8][2048];
	uint32_t lens[8];
	struct fp_event ev[16];
	unsigned n;

	while (take(tx_ring, out, lens, 8) || take(ctl_ring, out, lens, 8))
		;
	while ((n = fp_event_poll(ev, 16)) > 0)
		for (unsigned i = 0; i < n; i++)
			fp_event_release(&ev[i]);
}

/* Send one frame, poll, and expect verdict v to count once and `want`
 * (hex, or NULL for nothing) to come out of the worker's TX ring. */
static void expect(const uint8_t *f, size_t len, enum fp_verdict v, const uint8_t *want,
		   size_t want_len)
{
	uint8_t out[4][2048];
	uint32_t lens[4];
	uint64_t before = verdict(v);
	unsigned n;

	inject(f, len);
	fp_worker_poll(worker());
	CU_ASSERT_EQUAL(verdict(v), before + 1);
	if (verdict(v) != before + 1)
		fprintf(stderr, "\n  expected verdict %s\n", fp_verdict_name(v));
	n = take(tx_ring, out, lens, 4);
	CU_ASSERT_EQUAL(n, want ? 1u : 0u);
	if (want && n == 1) {
		CU_ASSERT_EQUAL(lens[0], want_len);
		CU_ASSERT(lens[0] == want_len && memcmp(out[0], want, want_len) == 0);
		if (lens[0] != want_len || memcmp(out[0], want, want_len) != 0) {
			fprintf(stderr, "\n  got ");
			for (uint32_t i = 0; i < lens[0]; i++)
				fprintf(stderr, "%02x", out[0][i]);
			fprintf(stderr, "\n want ");
			for (size_t i = 0; i < want_len; i++)
				fprintf(stderr, "%02x", want[i]);
			fprintf(stderr, "\n");
		}
	}
}

/* ---- the tables under test ---------------------------------------------------- */

static uint32_t sel_gre[] = { T_GRE };
static uint32_t sel_l2[] = { T_L2 };

static int publish_tables(const uint32_t *sel)
{
	struct fp_target_desc targets[] = {
		{ .id = T_GRE, .dispatch = FP_DISPATCH_GRE, .tunnel = TARGET, .has_mac = true },
		{ .id = T_L2, .dispatch = FP_DISPATCH_L2, .has_mac = true },
	};
	struct fp_service_desc services[] = {
		{ .id = 1,
		  .vip = VIP,
		  .port = 23,
		  .proto = 6,
		  .sel_mode = FP_SEL_SEQUENCE,
		  .sel = sel,
		  .n_sel = 1 },
		{ .id = 2,
		  .vip = VIP_UDP,
		  .port = 0,
		  .proto = 17,
		  .sel_mode = FP_SEL_HASH,
		  .sel = sel_gre,
		  .n_sel = 1 },
		{ .id = 3, .vip = VIP_DOWN, .port = 80, .proto = 6, .sel_mode = FP_SEL_SEQUENCE },
	};
	uint32_t vips[] = { VIP, VIP_UDP, VIP_DOWN };
	struct fp_tables_desc d = { targets, 2, services, 3, vips, 3 };
	char err[200] = "";

	memcpy(targets[0].mac, target_mac, 6);
	memcpy(targets[1].mac, target_mac, 6);
	if (fp_publish(&d, err, sizeof(err)) != 0) {
		fprintf(stderr, "fp_publish: %s\n", err);
		return -1;
	}
	fp_worker_poll(worker()); // a quiescent state: the old snapshot may go
	fp_reclaim();
	return 0;
}

static void publish(const uint32_t *sel)
{
	CU_ASSERT_EQUAL_FATAL(publish_tables(sel), 0);
}

static struct fp_flow redbook_flow = { CLIENT, VIP, 2771, 23, 6 };

/* ---- cases ----------------------------------------------------------------------------- */

/* Expected GRE frame for an inner packet of n bytes: outer Ethernet, IPv4
 * (TOS and DF copied from the inner, TTL 64, proto 47) and GRE 0x0800. */
static size_t gre_frame(uint8_t *f, const uint8_t *inner, size_t n, uint16_t id)
{
	uint8_t *ip = f + 14;

	memcpy(f, target_mac, 6);
	memcpy(f + 6, port_mac, 6);
	f[12] = 0x08;
	f[13] = 0x00;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	ip[1] = inner[1];
	ip[2] = (uint8_t)((n + 24) >> 8);
	ip[3] = (uint8_t)(n + 24);
	ip[4] = (uint8_t)(id >> 8);
	ip[5] = (uint8_t)id;
	ip[6] = inner[6] & 0x40;
	ip[8] = 64;
	ip[9] = 47;
	memcpy(ip + 12, "\x09\x43\x9c\x49\x09\x43\x9c\x4a", 8);
	fpt_ip_fix(ip);
	memcpy(ip + 20, "\x00\x00\x08\x00", 4);
	memcpy(ip + 24, inner, n);
	return 38 + n;
}

static void test_syn_gre_redbook(void)
{
	uint8_t in[2048], want[2048], inner[64];
	size_t n = eth_frame(in, redbook_syn, 0), wl;
	struct fp_event ev;
	struct fp_affinity a;

	drain();
	fpt_hex(redbook_syn_fwd, inner, sizeof(inner));
	wl = gre_frame(want, inner, 48, worker()->ip_id);
	// Exactly the outer header the test's own arithmetic expects: total
	// length 0x48, DF, TTL 64, GRE, checksum 0xEF3D for IP id 0.
	if (worker()->ip_id == 0)
		CU_ASSERT(memcmp(want + 14, "\x45\x30\x00\x48\x00\x00\x40\x00\x40\x2f\xef\x3d",
				 12) == 0);
	expect(in, n, FP_V_FWD_GRE, want, wl);
	CU_ASSERT_EQUAL_FATAL(fp_event_poll(&ev, 1), 1u);
	CU_ASSERT_EQUAL(ev.type, FP_EV_NEW_CONN);
	CU_ASSERT_EQUAL(ev.target, T_GRE);
	CU_ASSERT_EQUAL(ev.service, 1u);
	CU_ASSERT(ev.flow.src == CLIENT && ev.flow.dst == VIP && ev.flow.sport == 2771 &&
		  ev.flow.dport == 23 && ev.flow.proto == 6);
	CU_ASSERT_PTR_NULL(ev.pkt);
	CU_ASSERT_EQUAL(fp_affinity_find(&redbook_flow, &a), 0);
	CU_ASSERT_EQUAL(a.target, T_GRE);
	CU_ASSERT(a.flags & FP_AFF_F_WORKER);
}

static void test_established_follows_affinity(void)
{
	uint8_t in[2048], want[2048], inner[64];
	size_t n, wl;

	// The client's ACK (flags 0x10) of the same connection; TTL 128.
	fpt_hex("45000028B66F40008006000009439C6809439D110AD3001776748624000000015010400000000000",
		inner, sizeof(inner));
	fpt_ip_fix(inner);
	n = eth_frame(in, "", 0);
	memcpy(in + n, inner, 40);
	n += 40;
	inner[8] = 127;
	fpt_ip_fix(inner);
	wl = gre_frame(want, inner, 40, worker()->ip_id);
	expect(in, n, FP_V_FWD_GRE, want, wl);
	CU_ASSERT_EQUAL(fp_event_poll((struct fp_event[1]){ 0 }, 1), 0u); // no new connection
}

static void test_syn_l2_redbook(void)
{
	uint8_t in[2048], want[2048];
	size_t n = eth_frame(in, redbook_syn, 0), wl;
	struct fp_event ev;

	CU_ASSERT_EQUAL(fp_affinity_del(&redbook_flow), 0);
	publish(sel_l2);
	// Layer 2: only the Ethernet addresses change, and the TTL as above.
	memcpy(want, target_mac, 6);
	memcpy(want + 6, port_mac, 6);
	want[12] = 0x08;
	want[13] = 0x00;
	wl = 14 + fpt_hex(redbook_syn_fwd, want + 14, 64);
	expect(in, n, FP_V_FWD_L2, want, wl);
	CU_ASSERT_EQUAL(fp_event_poll(&ev, 1), 1u);
	CU_ASSERT_EQUAL(ev.target, T_L2);

	// With a VLAN tag the tag is kept.
	CU_ASSERT_EQUAL(fp_affinity_del(&redbook_flow), 0);
	n = eth_frame(in, redbook_syn, 0x0064);
	memcpy(want + 12, "\x81\x00\x00\x64\x08\x00", 6);
	wl = 18 + fpt_hex(redbook_syn_fwd, want + 18, 64);
	expect(in, n, FP_V_FWD_L2, want, wl);
	drain();
	CU_ASSERT_EQUAL(fp_affinity_del(&redbook_flow), 0);
	publish(sel_gre);
}

static void test_interest_and_control_forward(void)
{
	uint8_t in[2048], want[2048], inner[64], out[2][2048];
	uint32_t lens[2], dl;
	size_t n, wl;
	struct fp_event ev;
	const uint8_t *data;

	// A mid-connection packet of a flow this box never saw (port 2772).
	fpt_hex("45000028B67040008006000009439C6809439D110AD4001776748624000000015010400000000000",
		inner, sizeof(inner));
	fpt_ip_fix(inner);
	n = eth_frame(in, "", 0);
	memcpy(in + n, inner, 40);
	n += 40;
	expect(in, n, FP_V_TO_CONTROL, NULL, 0);
	CU_ASSERT_EQUAL_FATAL(fp_event_poll(&ev, 1), 1u);
	CU_ASSERT_EQUAL(ev.type, FP_EV_INTEREST);
	CU_ASSERT_EQUAL(ev.flow.sport, 2772);
	data = fp_event_data(&ev, &dl);
	CU_ASSERT(dl == n && memcmp(data, in, n) == 0); // carried untouched
	// The Service Manager decides; control forwards on its own queue.
	CU_ASSERT_EQUAL(fp_event_forward(&ev, T_GRE), 0);
	CU_ASSERT_PTR_NULL(ev.pkt);
	inner[8] = 127;
	fpt_ip_fix(inner);
	wl = gre_frame(want, inner, 40, 0);
	CU_ASSERT_EQUAL_FATAL(take(ctl_ring, out, lens, 2), 1u);
	CU_ASSERT_EQUAL(lens[0], wl);
	// Outer IP id and checksum belong to control's counter: compare the rest.
	CU_ASSERT(memcmp(out[0], want, 18) == 0);
	CU_ASSERT(memcmp(out[0] + 20, want + 20, 4) == 0);
	CU_ASSERT(memcmp(out[0] + 26, want + 26, wl - 26) == 0);
	CU_ASSERT_EQUAL(fpt_csum(out[0] + 14, 20), 0);
}

static void test_arp(void)
{
	uint8_t in[64] = { 0 }, want[64];
	const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	struct fp_event ev;
	uint8_t req[] = { 0, 1,    8,    0,    6, 4, 0, 1, 2, 0, 0, 0,    0,    1,
			  9, 0x43, 0x9c, 0x68, 0, 0, 0, 0, 0, 0, 9, 0x43, 0x9d, 0x11 };

	memcpy(in, bcast, 6);
	memcpy(in + 6, client_mac, 6);
	in[12] = 0x08;
	in[13] = 0x06;
	memcpy(in + 14, req, sizeof(req));
	memcpy(want, client_mac, 6);
	memcpy(want + 6, port_mac, 6);
	memcpy(want + 12, "\x08\x06\x00\x01\x08\x00\x06\x04\x00\x02", 10);
	memcpy(want + 22, port_mac, 6);
	memcpy(want + 28, "\x09\x43\x9d\x11", 4);
	memcpy(want + 32, client_mac, 6);
	memcpy(want + 38, "\x09\x43\x9c\x68", 4);
	memset(want + 42, 0, 18);
	expect(in, 60, FP_V_REPLY_ARP, want, 60);

	// For an address that is not ours: to control, for its neighbour table.
	in[41] = 0x99;
	expect(in, 60, FP_V_ARP_TO_CONTROL, NULL, 0);
	CU_ASSERT_EQUAL_FATAL(fp_event_poll(&ev, 1), 1u);
	CU_ASSERT_EQUAL(ev.type, FP_EV_ARP);
	fp_event_release(&ev);
}

static void test_icmp_echo(void)
{
	uint8_t in[2048], out[2][2048], ip[64];
	uint32_t lens[2];
	size_t n;

	fpt_hex("4500001C1234000040010000C633640109439D11080000000001000100", ip, sizeof(ip));
	fpt_ip_fix(ip);
	{
		uint16_t c = fpt_csum(ip + 20, 8);

		ip[22] = (uint8_t)(c >> 8);
		ip[23] = (uint8_t)c;
	}
	n = eth_frame(in, "", 0);
	memcpy(in + n, ip, 28);
	n += 28;
	inject(in, n);
	fp_worker_poll(worker());
	CU_ASSERT_EQUAL_FATAL(take(tx_ring, out, lens, 2), 1u);
	CU_ASSERT(memcmp(out[0], client_mac, 6) == 0);
	CU_ASSERT(memcmp(out[0] + 26, "\x09\x43\x9d\x11\xc6\x33\x64\x01", 8) == 0);
	CU_ASSERT_EQUAL(out[0][34], 0); // echo reply
	CU_ASSERT_EQUAL(fpt_csum(out[0] + 14, 20), 0);
	CU_ASSERT_EQUAL(fpt_csum(out[0] + 34, 8), 0);
}

/* ICMP "fragmentation needed" from a router about VIP -> client follows the
 * client -> VIP flow's affinity to its target, so PMTU discovery works. */
static void test_icmp_frag_needed_follows_flow(void)
{
	uint8_t in[2048], out[2][2048], ip[128];
	uint32_t lens[2];
	size_t n;
	uint64_t before;

	CU_ASSERT_EQUAL(fp_affinity_add(&redbook_flow, T_GRE, 900), 0);
	before = verdict(FP_V_FWD_GRE);
	// Router 198.51.100.1 -> VIP; quote: VIP:23 -> client:2771, TCP.
	fpt_hex("45000038000100004001000"
		"0C633640109439D11"
		"030400000000057845000028000040003F06000009439D1109439C6800170AD300000001",
		ip, sizeof(ip));
	fpt_ip_fix(ip);
	n = eth_frame(in, "", 0);
	memcpy(in + n, ip, 56);
	n += 56;
	inject(in, n);
	fp_worker_poll(worker());
	CU_ASSERT_EQUAL(verdict(FP_V_FWD_GRE), before + 1);
	CU_ASSERT_EQUAL_FATAL(take(tx_ring, out, lens, 2), 1u);
	CU_ASSERT(memcmp(out[0] + 30, "\x09\x43\x9c\x4a", 4) == 0); // to the target
	CU_ASSERT_EQUAL(out[0][38 + 9], 1);                         // inner is ICMP
}

/* A UDP datagram in two fragments (RFC 791): 16 bytes then 8. */
static void frag_pair(uint8_t first[64], uint8_t last[64], uint16_t id)
{
	fpt_hex("4500002C0000200040110000C633640A09439D12"
		"3039003500200000"
		"41414141414141414141414141414141",
		first, 64);
	first[4] = (uint8_t)(id >> 8);
	first[5] = (uint8_t)id;
	fpt_ip_fix(first);
	fpt_hex("4500001C0000000340110000C633640A09439D12"
		"4242424242424242",
		last, 64);
	last[4] = (uint8_t)(id >> 8);
	last[5] = (uint8_t)id;
	fpt_ip_fix(last);
}

static void test_fragments(void)
{
	uint8_t a[64], b[64], in[2][2048], out[4][2048];
	uint32_t lens[4];
	size_t na, nb;

	// In order: the first fragment places the datagram, the last follows.
	frag_pair(a, b, 0x0101);
	na = eth_frame(in[0], "", 0);
	memcpy(in[0] + na, a, 44);
	na += 44;
	nb = eth_frame(in[1], "", 0);
	memcpy(in[1] + nb, b, 28);
	nb += 28;
	inject(in[0], na);
	inject(in[1], nb);
	fp_worker_poll(worker());
	CU_ASSERT_EQUAL(take(tx_ring, out, lens, 4), 2u);
	CU_ASSERT(memcmp(out[0] + 30, "\x09\x43\x9c\x4a", 4) == 0);
	CU_ASSERT(memcmp(out[1] + 30, "\x09\x43\x9c\x4a", 4) == 0);
	CU_ASSERT_EQUAL(lens[1], 38u + 28u);
	drain();

	// Out of order: the last is held until the first arrives.
	frag_pair(a, b, 0x0202);
	memcpy(in[0] + 14, a, 44);
	memcpy(in[1] + 14, b, 28);
	expect(in[1], nb, FP_V_FRAG_HELD, NULL, 0);
	CU_ASSERT_EQUAL(worker()->n_held, 1u);
	inject(in[0], na);
	fp_worker_poll(worker());
	CU_ASSERT_EQUAL(worker()->n_held, 0u);
	CU_ASSERT_EQUAL(take(tx_ring, out, lens, 4), 2u);
	drain();

	// A later fragment whose first never comes is dropped after the TTL.
	frag_pair(a, b, 0x0303);
	memcpy(in[1] + 14, b, 28);
	expect(in[1], nb, FP_V_FRAG_HELD, NULL, 0);
	worker()->now_ms += fp_state.conf.frag_ttl_ms + 1;
	{
		uint64_t before = verdict(FP_V_DROP_FRAG_UNMATCHED);

		fp_worker_drop_held(worker(), false);
		CU_ASSERT_EQUAL(verdict(FP_V_DROP_FRAG_UNMATCHED), before + 1);
		CU_ASSERT_EQUAL(worker()->n_held, 0u);
	}
}

static void test_expiry(void)
{
	struct fp_flow f = { CLIENT, VIP, 3000, 23, 6 };
	struct fp_affinity a;
	uint64_t cursor = 0;
	struct fp_aff_stats st;
	unsigned deleted = 0;

	CU_ASSERT_EQUAL(fp_affinity_add(&f, T_GRE, 1), 0);
	CU_ASSERT_EQUAL(fp_affinity_find(&f, &a), 0);
	CU_ASSERT(a.flags & FP_AFF_F_CONTROL);
	fp_aff_stats(fp_state.aff, &st);
	// Two seconds on: the whole table in one pass.
	do {
		deleted += fp_aff_expire(fp_state.aff, &cursor, 64, fp_now_ms() + 2000);
	} while (cursor != 0);
	CU_ASSERT(deleted >= 1);
	CU_ASSERT_EQUAL(fp_affinity_find(&f, &a), -ENOENT);
}

/* The worker's own housekeeping expires its slice of the table. */
static void test_worker_housekeeping_expires(void)
{
	struct fp_flow f = { CLIENT, VIP, 3001, 23, 6 };
	struct fp_affinity a;
	struct timespec idle = { 1, 200000000 };

	CU_ASSERT_EQUAL(fp_affinity_add(&f, T_GRE, 1), 0);
	nanosleep(&idle, NULL); // past the 1 s TTL, by the TSC clock
	for (unsigned i = 0; i < 4 * FP_HOUSEKEEP_LOOPS; i++)
		fp_worker_poll(worker());
	CU_ASSERT_EQUAL(fp_affinity_find(&f, &a), -ENOENT);
}

static void test_fin_marks_closing(void)
{
	uint8_t in[2048], ip[64];
	size_t n;
	struct fp_affinity a;

	CU_ASSERT_EQUAL(fp_affinity_add(&redbook_flow, T_GRE, 900), 0);
	fpt_hex("45000028B67140008006000009439C6809439D110AD3001776748624000000015011400000000000",
		ip, sizeof(ip));
	fpt_ip_fix(ip);
	n = eth_frame(in, "", 0);
	memcpy(in + n, ip, 40);
	n += 40;
	inject(in, n);
	fp_worker_poll(worker());
	drain();
	CU_ASSERT_EQUAL_FATAL(fp_affinity_find(&redbook_flow, &a), 0);
	CU_ASSERT(a.flags & FP_AFF_F_CLOSING);
	CU_ASSERT_EQUAL(a.ttl_s, fp_state.conf.aff_closing_s);
}

/* A full table is a counted drop of the new connection, nothing more:
 * established flows keep forwarding. */
static void test_full_table(void)
{
	uint8_t in[2048];
	size_t n = eth_frame(in, redbook_syn, 0);
	struct fp_affinity a;
	unsigned sent = 0;

	CU_ASSERT_EQUAL(fp_affinity_add(&redbook_flow, T_GRE, 900), 0);
	while (verdict(FP_V_DROP_AFF_FULL) == 0 && sent < 8192) {
		uint16_t port = (uint16_t)(10000 + sent++);

		in[14 + 20] = (uint8_t)(port >> 8);
		in[14 + 21] = (uint8_t)port;
		inject(in, n);
		fp_worker_poll(worker());
		drain();
	}
	CU_ASSERT(verdict(FP_V_DROP_AFF_FULL) >= 1);
	CU_ASSERT(sent >= fp_state.conf.aff_capacity);
	CU_ASSERT_EQUAL(fp_affinity_find(&redbook_flow, &a), 0);
	test_established_follows_affinity();
}

struct bad_frame {
	const char *name;
	const char *ip_hex; /* after a normal Ethernet header; NULL: raw */
	const char *raw_hex;
	enum fp_verdict v;
	bool fix_csum;
};

static void test_malformed(void)
{
	static const struct bad_frame cases[] = {
		{ "short ethernet", NULL, "0200000000", FP_V_DROP_ETH_SHORT, false },
		{ "ipv6 ethertype", NULL,
		  "020000000001020000000002"
		  "86dd00000000000000000000",
		  FP_V_DROP_ETHERTYPE, false },
		{ "truncated ip", "4500", NULL, FP_V_DROP_IP_SHORT, false },
		{ "version 6", "65000030B66E40007F06000009439C6809439D11", NULL,
		  FP_V_DROP_IP_VERSION, false },
		{ "ihl 4", "44000030B66E40007F06000009439C6809439D11", NULL, FP_V_DROP_IP_IHL,
		  false },
		{ "total length beyond frame", "45000400B66E40007F06000009439C6809439D11", NULL,
		  FP_V_DROP_IP_TOTLEN, true },
		{ "bad checksum", "45000014B66E40007F06000009439C6809439D11", NULL,
		  FP_V_DROP_IP_CSUM, false },
		{ "short tcp", "45000018B66E40007F06000009439C6809439D110AD30017", NULL,
		  FP_V_DROP_L4_SHORT, true },
		{ "tcp offset 1 fragment",
		  "45000030B66E00017F06000009439C6809439D11"
		  "0000000000000000000000000000000000000000000000000000000000000000",
		  NULL, FP_V_DROP_IP_FRAG, true },
		{ "ttl 1",
		  "45300030B66E40000106000009439C6809439D110AD30017767486230000000070024000EF9D0000020405B401010402",
		  NULL, FP_V_DROP_IP_TTL, true },
		{ "not ours",
		  "45300030B66E40007F06000009439C68C63364630AD30017767486230000000070024000EF9D0000020405B401010402",
		  NULL, FP_V_DROP_NOT_OURS, true },
		{ "no service",
		  "45300030B66E40007F06000009439C6809439D110AD30063767486230000000070024000EF9D0000020405B401010402",
		  NULL, FP_V_DROP_NO_SERVICE, true },
		{ "gre to the VIP", "45000018B66E40007F2F000009439C6809439D1100000800", NULL,
		  FP_V_DROP_IP_PROTO, true },
	};
	uint8_t in[2048];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_frame *c = &cases[i];
		size_t n;

		if (c->raw_hex) {
			n = fpt_hex(c->raw_hex, in, sizeof(in));
		} else {
			n = eth_frame(in, c->ip_hex, 0);
			if (c->fix_csum)
				fpt_ip_fix(in + 14);
		}
		if (n < 60 && c->raw_hex == NULL && c->v != FP_V_DROP_IP_SHORT &&
		    c->v != FP_V_DROP_IP_TOTLEN) {
			memset(in + n, 0, 60 - n); // Ethernet padding is allowed
			n = 60;
		}
		fprintf(stderr, "  malformed: %s\n", c->name);
		expect(in, n, c->v, NULL, 0);
	}
}

static void test_no_target_goes_to_control(void)
{
	uint8_t in[2048];
	size_t n = eth_frame(in, redbook_syn, 0);
	struct fp_event ev;

	in[14 + 19] = 0x13; // to 9.67.157.19
	in[14 + 23] = 80;
	fpt_ip_fix(in + 14);
	expect(in, n, FP_V_NO_TARGET_TO_CONTROL, NULL, 0);
	CU_ASSERT_EQUAL_FATAL(fp_event_poll(&ev, 1), 1u);
	CU_ASSERT_EQUAL(ev.type, FP_EV_NO_TARGET);
	CU_ASSERT_EQUAL(ev.service, 3u);
	CU_ASSERT_PTR_NOT_NULL(ev.pkt);
	fp_event_release(&ev);
}

static void test_publish_rejects_bad_tables(void)
{
	struct fp_target_desc t = {
		.id = 1, .dispatch = FP_DISPATCH_GRE, .tunnel = 0, .has_mac = true
	};
	uint32_t sel[] = { 5 };
	struct fp_service_desc s = { .id = 9,
				     .vip = VIP,
				     .port = 1,
				     .proto = 6,
				     .sel_mode = FP_SEL_SEQUENCE,
				     .sel = sel,
				     .n_sel = 1 };
	struct fp_tables_desc d = { &t, 1, &s, 1, NULL, 0 };
	char err[200] = "";

	CU_ASSERT_EQUAL(fp_publish(&d, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "tunnel"));
	t.tunnel = TARGET;
	CU_ASSERT_EQUAL(fp_publish(&d, err, sizeof(err)), -EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown target 5"));
	// The running tables are untouched: the redbook SYN still forwards.
	CU_ASSERT_EQUAL(fp_affinity_del(&redbook_flow), 0);
	test_syn_gre_redbook();
}

/* ---- main ------------------------------------------------------------------------------- */

static int suite_init(void)
{
	struct fp_conf c;
	char err[256] = "";

	fp_conf_defaults(&c);
	snprintf(c.lcores, sizeof(c.lcores), "0");
	c.no_huge = true;
	c.n_ports = 1;
	snprintf(c.ports[0].dev, sizeof(c.ports[0].dev), "ring:r0");
	c.ports[0].addr = 0x09439D88; // 9.67.157.136, the redbook's GIGELINK
	c.gre.local = SM_ADDR;
	c.aff_capacity = 256;
	c.frag_capacity = 64;
	c.rx_desc = c.tx_desc = 256;
	if (fp_init(&c, "test_fp_ring", err, sizeof(err)) != 0) {
		fprintf(stderr, "fp_init: %s\n", err);
		return -1;
	}
	fp_port_mac(0, port_mac);
	rx_ring = rte_ring_lookup("r0_rx0");
	tx_ring = rte_ring_lookup("r0_tx0");
	ctl_ring = rte_ring_lookup("r0_tx1");
	if (!rx_ring || !tx_ring || !ctl_ring)
		return -1;
	worker()->now_ms = fp_now_ms();
	return publish_tables(sel_gre);
}

static int suite_fini(void)
{
	drain();
	fp_fini();
	return 0;
}

/* fp_trace: the worker's steps against the published tables, read-only;
 * fp_stats_clear: readings start again from 0. */
static void test_trace_and_clear(void)
{
	struct fp_flow f = { CLIENT, VIP, 4000, 23, 6 }, down = { CLIENT, VIP_DOWN, 4000, 80, 6 },
		       udp = { CLIENT, VIP_UDP, 4000, 53, 17 },
		       not_vip = { CLIENT, TARGET, 1, 23, 6 };
	struct fp_worker_stats before, after;
	struct fp_table_stats ts;
	struct fp_affinity a;
	struct fp_trace t;

	publish(sel_gre);
	drain();
	fp_affinity_del(&f);
	CU_ASSERT_EQUAL(fp_worker_stats_read(0, &before), 0);
	CU_ASSERT_EQUAL(fp_trace(&f, 0x02, &t), 0);
	CU_ASSERT_EQUAL(t.step, FP_TRACE_PLACE);
	CU_ASSERT_STRING_EQUAL(t.verdict, "fwd_gre");
	CU_ASSERT(t.service == 1 && t.service_port == 23 && t.sel_mode == FP_SEL_SEQUENCE);
	CU_ASSERT(t.sel_size == 1 && t.n_workers == 1 && t.next[0] == T_GRE);
	CU_ASSERT(t.target == T_GRE && t.target_known && t.dispatch.tunnel == TARGET);
	CU_ASSERT_EQUAL(fp_affinity_find(&f, &a), -ENOENT); // nothing inserted
	CU_ASSERT_EQUAL(fp_trace(&f, 0x10, &t), 0);
	CU_ASSERT(t.step == FP_TRACE_INTEREST && strcmp(t.verdict, "interest_to_control") == 0);
	CU_ASSERT_EQUAL(fp_affinity_add(&f, T_L2, 900), 0);
	CU_ASSERT_EQUAL(fp_trace(&f, 0x10, &t), 0);
	CU_ASSERT(t.step == FP_TRACE_AFFINITY && t.target == T_L2 && t.aff.ttl_s == 900);
	CU_ASSERT_STRING_EQUAL(t.verdict, "fwd_l2");
	CU_ASSERT_EQUAL(fp_affinity_del(&f), 0);
	CU_ASSERT(fp_trace(&not_vip, 0x02, &t) == 0 && t.step == FP_TRACE_NOT_VIP);
	CU_ASSERT_STRING_EQUAL(t.verdict, "drop_not_ours");
	f.dport = 81;
	CU_ASSERT(fp_trace(&f, 0x02, &t) == 0 && t.step == FP_TRACE_NO_SERVICE);
	CU_ASSERT(fp_trace(&down, 0x02, &t) == 0 && t.step == FP_TRACE_NO_TARGET);
	CU_ASSERT_STRING_EQUAL(t.verdict, "no_target_to_control");
	CU_ASSERT(fp_trace(&udp, 0, &t) == 0 && t.step == FP_TRACE_PLACE);
	CU_ASSERT(t.sel_mode == FP_SEL_HASH && t.sel_index == 0 && t.target == T_GRE);
	udp.proto = 1;
	CU_ASSERT(fp_trace(&udp, 0, &t) == 0 && t.step == FP_TRACE_NOT_L4);
	CU_ASSERT_EQUAL(fp_trace(NULL, 0, &t), -EINVAL);
	CU_ASSERT_EQUAL(fp_worker_stats_read(0, &after), 0);
	CU_ASSERT(memcmp(&before, &after, sizeof(before)) == 0); // a trace counts nothing
	fp_stats_clear();
	CU_ASSERT_EQUAL(fp_worker_stats_read(0, &after), 0);
	CU_ASSERT(after.rx_pkts == 0 && after.loops == 0 && after.verdict[FP_V_FWD_GRE] == 0);
	fp_affinity_stats(&ts);
	CU_ASSERT(ts.inserts == 0 && ts.deletes == 0);
	CU_ASSERT_EQUAL(fp_affinity_add(&f, T_GRE, 900), 0);
	fp_affinity_stats(&ts);
	CU_ASSERT_EQUAL(ts.inserts, 1);
	fp_affinity_del(&f);
}

int main(void)
{
	static const struct fpt_case cases[] = {
		{ "redbook SYN by GRE (trace 299 -> 300)", test_syn_gre_redbook },
		{ "established flow follows its affinity", test_established_follows_affinity },
		{ "redbook SYN by layer 2, with and without VLAN", test_syn_l2_redbook },
		{ "interest to control, control forwards", test_interest_and_control_forward },
		{ "ARP for a VIP and for others", test_arp },
		{ "ICMP echo to a VIP", test_icmp_echo },
		{ "ICMP fragmentation needed follows the flow",
		  test_icmp_frag_needed_follows_flow },
		{ "fragments in order, out of order, orphaned", test_fragments },
		{ "affinity expiry", test_expiry },
		{ "worker housekeeping expires idle affinities", test_worker_housekeeping_expires },
		{ "FIN marks the affinity closing", test_fin_marks_closing },
		{ "malformed and unwanted packets: counted drops", test_malformed },
		{ "SYN for a service without targets", test_no_target_goes_to_control },
		{ "a bad publish keeps the running tables", test_publish_rejects_bad_tables },
		{ "full affinity table", test_full_table },
		{ "trace a packet, clear counters", test_trace_and_clear },
	};

	return fpt_run("fastpath_ring", suite_init, suite_fini, cases,
		       sizeof(cases) / sizeof(cases[0]));
}
