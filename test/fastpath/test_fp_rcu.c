/*
 * test_fp_rcu.c - publishing under load: a launched worker lcore forwards a
 * steady stream through a net_ring port while the control thread publishes
 * new snapshots hundreds of times. Every retired snapshot must be freed
 * after a grace period (fp_reclaim reaches 0 within a bounded time), no
 * packet may be forwarded with a freed snapshot (ASan would report the use
 * after free), and every packet must come out forwarded to the target of
 * the snapshot it met. Needs two lcores; runs with --no-huge.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <CUnit/Basic.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "fp_internal.h"
#include "fp_test_util.h"

#define VIP 0xCB00710Au /* 203.0.113.10 */
#define ROUNDS 400

static struct rte_ring *rx_ring, *tx_ring;

static int publish(uint32_t target)
{
	struct fp_target_desc t[2] = {
		{ .id = 1,
		  .dispatch = FP_DISPATCH_L2,
		  .has_mac = true,
		  .mac = { 2, 0, 0, 0, 0, 1 } },
		{ .id = 2,
		  .dispatch = FP_DISPATCH_L2,
		  .has_mac = true,
		  .mac = { 2, 0, 0, 0, 0, 2 } },
	};
	uint32_t sel[1] = { target };
	struct fp_service_desc s = { .id = 1,
				     .vip = VIP,
				     .port = 0,
				     .proto = 17,
				     .sel_mode = FP_SEL_HASH,
				     .sel = sel,
				     .n_sel = 1 };
	uint32_t vip = VIP;
	struct fp_tables_desc d = { t, 2, &s, 1, &vip, 1 };
	char err[200];

	return fp_publish(&d, err, sizeof(err));
}

/* A UDP datagram 198.51.100.7:port -> VIP:53; each port a new flow. */
static struct rte_mbuf *datagram(uint16_t port)
{
	uint8_t f[64] = { 0 };
	struct rte_mbuf *m = rte_pktmbuf_alloc(fp_state.pool);
	size_t n = fpt_hex("020000000009020000000007080045000020000000004011000"
			   "0C6336407CB00710A0000003500000000AAAAAAAA",
			   f, sizeof(f));

	if (!m)
		return NULL;
	f[34] = (uint8_t)(port >> 8);
	f[35] = (uint8_t)port;
	f[38] = 0;
	f[39] = 12;
	fpt_ip_fix(f + 14);
	memcpy(rte_pktmbuf_append(m, (uint16_t)n), f, n);
	return m;
}

static void test_publish_under_load(void)
{
	unsigned sent = 0, got = 0, pending = 0;
	struct timespec start, now;

	CU_ASSERT_EQUAL_FATAL(fp_start(), 0);
	for (unsigned r = 0; r < ROUNDS; r++) {
		struct rte_mbuf *m;

		for (unsigned i = 0; i < 8; i++) {
			m = datagram((uint16_t)(1024 + sent));
			if (m && rte_ring_enqueue(rx_ring, m) == 0)
				sent++;
			else if (m)
				rte_pktmbuf_free(m);
		}
		CU_ASSERT_EQUAL(publish(1 + (r & 1)), 0);
		fp_reclaim();
		while (rte_ring_dequeue(tx_ring, (void **)&m) == 0) {
			const uint8_t *f = rte_pktmbuf_mtod(m, const uint8_t *);

			got += f[5] == 1 || f[5] == 2; // to one of the two targets
			rte_pktmbuf_free(m);
		}
	}
	// Bounded wait: the worker passes quiescent states every loop.
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		struct rte_mbuf *m;

		pending = fp_reclaim();
		while (rte_ring_dequeue(tx_ring, (void **)&m) == 0) {
			got++;
			rte_pktmbuf_free(m);
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((pending || got < sent) && now.tv_sec - start.tv_sec < 3);
	fp_stop();
	fprintf(stderr, "\n  sent %u, forwarded %u, snapshots pending %u\n", sent, got, pending);
	CU_ASSERT_EQUAL(pending, 0u);
	CU_ASSERT_EQUAL(got, sent);
	CU_ASSERT_EQUAL(fp_state.workers[0].stats.verdict[FP_V_FWD_L2], sent);
}

static int suite_init(void)
{
	struct fp_conf c;
	char err[256] = "";

	fp_conf_defaults(&c);
	snprintf(c.lcores, sizeof(c.lcores), "0-1");
	c.no_huge = true;
	c.n_ports = 1;
	snprintf(c.ports[0].dev, sizeof(c.ports[0].dev), "ring:rcu0");
	c.aff_capacity = 1u << 16;
	c.rx_desc = c.tx_desc = 256;
	if (fp_init(&c, "test_fp_rcu", err, sizeof(err)) != 0) {
		fprintf(stderr, "fp_init: %s\n", err);
		return -1;
	}
	rx_ring = rte_ring_lookup("rcu0_rx0");
	tx_ring = rte_ring_lookup("rcu0_tx0");
	return rx_ring && tx_ring ? publish(1) : -1;
}

static int suite_fini(void)
{
	struct rte_mbuf *m;

	while (tx_ring && rte_ring_dequeue(tx_ring, (void **)&m) == 0)
		rte_pktmbuf_free(m);
	fp_fini();
	return 0;
}

int main(void)
{
	static const struct fpt_case cases[] = {
		{ "publish 400 snapshots under traffic", test_publish_under_load },
	};

	return fpt_run("fastpath_rcu", suite_init, suite_fini, cases,
		       sizeof(cases) / sizeof(cases[0]));
}
