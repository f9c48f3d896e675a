/*
 * bench_fastpath.c - the fast path's benchmark harness (./scripts/bench.sh
 * fastpath). One worker, in process, no EAL and no NIC: mbufs are laid out
 * by hand over plain memory, "received" by refilling them from per-flow
 * 64-byte template frames, handed to fp_worker_handle_burst(), and
 * "transmitted" by resetting the worker's TX buffer. Because nothing needs
 * EAL, the same binary runs under callgrind to count instructions.
 *
 * Scenarios (figures printed last as key=value lines):
 *   p1  hits: 64-byte TCP packets over N established flows (uniform and
 *       Zipf s=0.99), GRE action; baseline: the same harness with a no-op
 *       forward (refill, swap the Ethernet addresses, queue for transmit:
 *       testpmd's macswap).
 *   p2  SYN path: fresh 5-tuples: select, insert the affinity, notify
 *       control through the event ring, forward.
 *   p4  the affinity table alone at 10 M entries: bytes per affinity,
 *       lookup rate against 10 k entries.
 *
 * usage: bench_fastpath [--quick] [--sizes] [--callgrind PACKETS]
 * Benchmarks never fail on a time; exit 1 only when the harness itself
 * breaks (a packet not forwarded where it must be).
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_mbuf.h>
#include <rte_ring_elem.h>

#include "fp_internal.h"
#include "fp_test_util.h"

#define BURST 32
#define VIP 0xCB00710Au     /* 203.0.113.10 */
#define CLIENTS 0xC6336400u /* 198.51.100.0/24 .. as a 32-bit counter base */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* ---- the fake world: mbufs, fast-path state ----------------------------------- */

static struct rte_mbuf *mbufs[BURST];

static void mbufs_create(void)
{
	for (int i = 0; i < BURST; i++) {
		struct rte_mbuf *m = aligned_alloc(64, sizeof(*m) + RTE_PKTMBUF_HEADROOM + 2048);

		memset(m, 0, sizeof(*m));
		m->buf_addr = (uint8_t *)m + sizeof(*m);
		m->buf_len = RTE_PKTMBUF_HEADROOM + 2048;
		m->nb_segs = 1;
		rte_mbuf_refcnt_set(m, 1);
		mbufs[i] = m;
	}
}

static void mbuf_fill(struct rte_mbuf *m, const uint8_t *frame, uint16_t len)
{
	m->data_off = RTE_PKTMBUF_HEADROOM;
	m->data_len = len;
	m->pkt_len = len;
	memcpy(rte_pktmbuf_mtod(m, uint8_t *), frame, len);
}

static struct fp_worker *bench_worker(void)
{
	static struct fp_worker *w;

	if (!w) {
		w = aligned_alloc(64, sizeof(*w));
		memset(w, 0, sizeof(*w));
		w->rr = calloc(FP_SERVICES_MAX, sizeof(uint32_t));
		w->gre_seq = calloc(FP_TARGETS_MAX, sizeof(uint32_t));
		w->now_ms = 1000;
	}
	return w;
}

static void *table_mem;

static void state_create(uint32_t capacity)
{
	size_t bytes = fp_aff_mem_size(capacity);
	size_t ring_bytes = rte_ring_get_memsize_elem(sizeof(struct fp_event), 1u << 16);
	static uint32_t sel[4] = { 1, 2, 3, 4 };
	struct fp_target_desc t[4];
	struct fp_service_desc s = { .id = 1,
				     .vip = VIP,
				     .port = 80,
				     .proto = 6,
				     .sel_mode = FP_SEL_SEQUENCE,
				     .sel = sel,
				     .n_sel = 4 };
	uint32_t vip = VIP;
	struct fp_tables_desc d = { t, 4, &s, 1, &vip, 1 };
	uint8_t mac[1][6] = { { 2, 0, 0, 0, 0, 1 } };
	char err[200];

	free(table_mem);
	table_mem = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
	memset(&fp_state, 0, sizeof(fp_state));
	fp_conf_defaults(&fp_state.conf);
	fp_state.conf.gre.local = 0xC0000201; // 192.0.2.1
	fp_state.aff = fp_aff_init(table_mem, bytes, capacity);
	fp_state.events = aligned_alloc(64, (ring_bytes + 63) & ~(size_t)63);
	rte_ring_init(fp_state.events, "bench", 1u << 16, RING_F_SC_DEQ);
	fp_state.aff_idle_s = 900;
	fp_state.aff_closing_s = 60;
	fp_state.n_ports = 1;
	fp_state.ports[0].mtu = 1500;
	fp_state.ports[0].addr = 0xC0000201;
	for (int i = 0; i < 4; i++) {
		memset(&t[i], 0, sizeof(t[i]));
		t[i].id = (uint32_t)(i + 1);
		t[i].dispatch = FP_DISPATCH_GRE;
		t[i].tunnel = 0xC0000210u + (uint32_t)i; // 192.0.2.16..19
		t[i].has_mac = true;
		t[i].mac[0] = 2;
		t[i].mac[5] = (uint8_t)(0x10 + i);
	}
	fp_state.snap =
		fp_tables_build(&d, &fp_state.conf, (const uint8_t(*)[6])mac, 1, err, sizeof(err));
	if (!fp_state.snap || !fp_state.aff) {
		fprintf(stderr, "bench: set-up failed: %s\n", err);
		exit(1);
	}
}

/* ---- frames ------------------------------------------------------------------------ */

/* A 64-byte Ethernet frame: IPv4/TCP from client:sport to VIP:80. */
static void tcp_frame(uint8_t f[64], uint32_t client, uint16_t sport, uint8_t flags)
{
	uint8_t *ip = f + 14, *tcp = f + 34;
	uint16_t c;

	memset(f, 0, 64);
	f[0] = 2;
	f[5] = 1;
	f[6] = 2;
	f[11] = 2;
	f[12] = 0x08;
	ip[0] = 0x45;
	ip[3] = 40;
	ip[6] = 0x40;
	ip[8] = 64;
	ip[9] = 6;
	ip[12] = (uint8_t)(client >> 24);
	ip[13] = (uint8_t)(client >> 16);
	ip[14] = (uint8_t)(client >> 8);
	ip[15] = (uint8_t)client;
	ip[16] = (uint8_t)(VIP >> 24);
	ip[17] = (uint8_t)(VIP >> 16);
	ip[18] = (uint8_t)(VIP >> 8);
	ip[19] = (uint8_t)VIP;
	c = fpt_csum(ip, 20);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	tcp[0] = (uint8_t)(sport >> 8);
	tcp[1] = (uint8_t)sport;
	tcp[3] = 80;
	tcp[12] = 0x50;
	tcp[13] = flags;
}

static uint32_t flow_client(uint32_t i)
{
	return CLIENTS + (i >> 14);
}

static uint16_t flow_port(uint32_t i)
{
	return (uint16_t)(1024 + (i & 0x3fff));
}

/* ---- p1: hits ---------------------------------------------------------------------- */

struct p1 {
	uint32_t flows;
	uint8_t *templates; /* flows * 64 bytes */
	uint32_t *seq;      /* flow index of each packet */
	uint32_t nseq;
};

static void p1_prepare(struct p1 *p, uint32_t flows, bool zipf, uint32_t nseq)
{
	struct fp_worker *w = bench_worker();
	double *cdf = NULL;

	p->flows = flows;
	p->nseq = nseq;
	p->templates = aligned_alloc(64, (size_t)flows * 64);
	p->seq = malloc(sizeof(uint32_t) * nseq);
	state_create(flows + flows / 4);
	for (uint32_t i = 0; i < flows; i++) {
		struct fp_aff_key k = { .src = flow_client(i),
					.dst = VIP,
					.sport = flow_port(i),
					.dport = 80,
					.proto = 6 };
		struct fp_aff_val v = { .target = 1 + (i & 3),
					.flags = FP_AFF_F_WORKER,
					.ttl_s = 900 };

		tcp_frame(p->templates + (size_t)i * 64, flow_client(i), flow_port(i), 0x10);
		if (fp_aff_add(fp_state.aff, &k, &v, w->now_ms, false) != 0) {
			fprintf(stderr, "bench: insert %u of %u failed\n", i, flows);
			exit(1);
		}
	}
	if (zipf) { // s = 0.99 by inverse CDF; flow ranks shuffled by a multiplier
		double sum = 0;

		cdf = malloc(sizeof(double) * flows);
		for (uint32_t i = 0; i < flows; i++)
			cdf[i] = (sum += 1.0 / pow(i + 1.0, 0.99));
		for (uint32_t i = 0; i < flows; i++)
			cdf[i] /= sum;
	}
	for (uint32_t i = 0; i < nseq; i++) {
		uint32_t f;

		if (!zipf) {
			f = (uint32_t)(rnd() % flows);
		} else {
			double u = (double)(rnd() >> 11) / 9007199254740992.0;
			uint32_t lo = 0, hi = flows - 1;

			while (lo < hi) {
				uint32_t mid = (lo + hi) / 2;

				if (cdf[mid] < u)
					lo = mid + 1;
				else
					hi = mid;
			}
			f = (uint32_t)(((uint64_t)lo * 2654435761u) % flows);
		}
		p->seq[i] = f;
	}
	free(cdf);
}

static void p1_free(struct p1 *p)
{
	free(p->templates);
	free(p->seq);
}

/* Run `packets` packets; noop skips the fast path. Returns Mpps. */
static double p1_run(struct p1 *p, uint64_t packets, bool noop)
{
	struct fp_worker *w = bench_worker();
	uint64_t done = 0, fwd_before = w->stats.verdict[FP_V_FWD_GRE];
	uint32_t pos = 0;
	double t0 = now_s(), dt;

	while (done < packets) {
		// A NIC writes received frames into cache (DDIO) before the worker
		// looks: fetch the next burst's templates now, so the harness's own
		// copy is not the miss being measured.
		for (uint32_t i = 0, q = pos; i < BURST; i++, q = q + 1 == p->nseq ? 0 : q + 1)
			__builtin_prefetch(p->templates +
					   (size_t)p->seq[(q + BURST) % p->nseq] * 64);
		for (int i = 0; i < BURST; i++) {
			mbuf_fill(mbufs[i], p->templates + (size_t)p->seq[pos] * 64, 64);
			if (++pos == p->nseq)
				pos = 0;
		}
		if (noop) {
			// The classic no-op forward (testpmd's macswap): touch each
			// frame's Ethernet header and queue it for transmit.
			for (int i = 0; i < BURST; i++) {
				uint8_t *f = rte_pktmbuf_mtod(mbufs[i], uint8_t *), mac[6];

				memcpy(mac, f, 6);
				memcpy(f, f + 6, 6);
				memcpy(f + 6, mac, 6);
				w->tx[0].m[i] = mbufs[i];
			}
			w->tx[0].n = BURST;
		} else {
			fp_worker_handle_burst(w, mbufs, BURST, 0);
		}
		w->tx[0].n = 0;
		done += BURST;
	}
	dt = now_s() - t0;
	if (!noop && w->stats.verdict[FP_V_FWD_GRE] - fwd_before != done) {
		fprintf(stderr, "bench: only %" PRIu64 " of %" PRIu64 " packets forwarded\n",
			w->stats.verdict[FP_V_FWD_GRE] - fwd_before, done);
		exit(1);
	}
	return (double)done / dt / 1e6;
}

/* ---- p2: SYNs ------------------------------------------------------------------------ */

static double p2_run(uint64_t syns)
{
	struct fp_worker *w = bench_worker();
	uint8_t syn[64];
	struct fp_event ev[BURST];
	uint64_t done = 0, fwd_before;
	double t0, dt;

	state_create((uint32_t)(syns + syns / 4));
	fwd_before = w->stats.verdict[FP_V_FWD_GRE];
	tcp_frame(syn, CLIENTS, 1024, 0x02);
	t0 = now_s();
	while (done < syns) {
		for (int i = 0; i < BURST; i++, done++) {
			uint8_t *f = rte_pktmbuf_mtod(mbufs[i], uint8_t *);

			mbuf_fill(mbufs[i], syn, 64);
			// A fresh tuple: source port and the low 16 bits of the address.
			f[34] = (uint8_t)(done >> 8);
			f[35] = (uint8_t)done;
			f[28] = (uint8_t)(done >> 24);
			f[29] = (uint8_t)(done >> 16);
			f[24] = f[25] = 0;
			{
				uint16_t c = fpt_csum(f + 14, 20);

				f[24] = (uint8_t)(c >> 8);
				f[25] = (uint8_t)c;
			}
		}
		fp_worker_handle_burst(w, mbufs, BURST, 0);
		w->tx[0].n = 0;
		// Control drains its ring, as the Service Manager would.
		while (rte_ring_sc_dequeue_burst_elem(fp_state.events, ev, sizeof(ev[0]), BURST,
						      NULL) > 0)
			;
	}
	dt = now_s() - t0;
	if (w->stats.verdict[FP_V_FWD_GRE] - fwd_before != done) {
		fprintf(stderr, "bench: SYN path forwarded %" PRIu64 " of %" PRIu64 "\n",
			w->stats.verdict[FP_V_FWD_GRE] - fwd_before, done);
		exit(1);
	}
	return (double)done / dt;
}

/* ---- p4: the table at 10 M ------------------------------------------------------------ */

/* Lookup hits per second on a table of n random keys, bursts of 32. */
static double p4_lookup_rate(uint32_t n, double *found_fraction)
{
	size_t bytes = fp_aff_mem_size(n);
	void *mem = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
	struct fp_aff *t = fp_aff_init(mem, bytes, n);
	struct fp_aff_key k[BURST];
	struct fp_aff_val v[BURST];
	uint64_t hits = 0, lookups = 0, seed = 12345;
	uint32_t inserted = 0;
	double t0, dt;

	for (uint32_t i = 0; i < n; i++) {
		struct fp_aff_key key = { .src = (uint32_t)(i * 2654435761u),
					  .dst = VIP,
					  .sport = (uint16_t)i,
					  .dport = 80,
					  .proto = 6 };
		struct fp_aff_val val = { .target = i & 7, .ttl_s = 900 };

		inserted += fp_aff_add(t, &key, &val, 0, false) == 0;
	}
	t0 = now_s();
	while (lookups < 20000000ULL) {
		for (int j = 0; j < BURST; j++) {
			uint32_t i;

			seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
			i = (uint32_t)((seed >> 33) % n);
			memset(&k[j], 0, sizeof(k[j]));
			k[j].src = (uint32_t)(i * 2654435761u);
			k[j].dst = VIP;
			k[j].sport = (uint16_t)i;
			k[j].dport = 80;
			k[j].proto = 6;
		}
		hits += (uint64_t)__builtin_popcountll(fp_aff_lookup_bulk(t, k, BURST, v, 0));
		lookups += BURST;
	}
	dt = now_s() - t0;
	*found_fraction = (double)hits / (double)lookups * ((double)inserted / n);
	free(mem);
	return (double)hits / dt;
}

/* ---- main --------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
	bool quick = false, sizes = false;
	uint64_t callgrind = 0, packets;
	struct p1 p;
	double mpps_u, mpps_z, noop, syn_rate, r10m, r10k, f10m, f10k;
	uint32_t flows;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0)
			quick = true;
		else if (strcmp(argv[i], "--sizes") == 0)
			sizes = true;
		else if (strcmp(argv[i], "--callgrind") == 0 && i + 1 < argc)
			callgrind = strtoull(argv[++i], NULL, 10);
		else {
			fprintf(stderr, "usage: %s [--quick] [--sizes] [--callgrind PACKETS]\n",
				argv[0]);
			return 2;
		}
	}
	fp_state.tsc_per_ms = 1;
	mbufs_create();
	flows = quick ? 100000 : 1000000;
	packets = quick ? 4000000 : 40000000;

	if (callgrind) {
		// Only fp_worker_handle_burst is collected (bench.sh): warm up,
		// then exactly `callgrind` packets through the hit path.
		p1_prepare(&p, 100000, false, 1u << 16);
		p1_run(&p, callgrind, false);
		printf("callgrind_packets=%" PRIu64 "\n", callgrind);
		return 0;
	}
	if (sizes) { // Mpps against table size, for the plot
		static const uint32_t sz[] = { 1000, 10000, 100000, 1000000, 4000000 };

		for (size_t i = 0; i < sizeof(sz) / sizeof(sz[0]); i++) {
			p1_prepare(&p, sz[i], false, 1u << 20);
			printf("size %u %.3f\n", sz[i], p1_run(&p, packets / 2, false));
			fflush(stdout);
			p1_free(&p);
		}
		return 0;
	}
	fprintf(stderr, "p1: %u flows, uniform\n", flows);
	p1_prepare(&p, flows, false, 1u << 22);
	p1_run(&p, packets / 10, false); // warm-up
	mpps_u = p1_run(&p, packets, false);
	noop = p1_run(&p, packets, true);
	p1_free(&p);
	fprintf(stderr, "p1: %u flows, zipf 0.99\n", flows);
	p1_prepare(&p, flows, true, 1u << 22);
	mpps_z = p1_run(&p, packets, false);
	p1_free(&p);
	fprintf(stderr, "p2: SYN path\n");
	syn_rate = p2_run(quick ? 500000 : 4000000);
	fprintf(stderr, "p4: 10 k and %s affinities\n", quick ? "1 M" : "10 M");
	r10k = p4_lookup_rate(10000, &f10k);
	r10m = p4_lookup_rate(quick ? 1000000 : 10000000, &f10m);

	printf("p1_flows=%u\n", flows);
	printf("p1_mpps_per_core=%.2f\n", mpps_u);
	printf("p1_mpps_per_core_zipf=%.2f\n", mpps_z);
	printf("p1_noop_mpps=%.2f\n", noop);
	printf("p1_ratio_vs_noop=%.3f\n", mpps_u / noop);
	printf("p2_syn_per_sec_per_core=%.0f\n", syn_rate);
	printf("p4_entries=%u\n", quick ? 1000000u : 10000000u);
	printf("p4_bytes_per_affinity=%.1f\n", (double)fp_aff_mem_size(quick ? 1000000 : 10000000) /
						       (quick ? 1000000.0 : 10000000.0));
	printf("p4_found_fraction=%.4f\n", f10m);
	printf("p4_lookups_per_sec_10m=%.0f\n", r10m);
	printf("p4_hit_ratio_10m_vs_10k=%.3f\n", r10m / r10k);
	(void)f10k;
	return 0;
}
