/*
 * fp_main.c - fast-path lifecycle: EAL start-up (hugepages, else --no-huge),
 * mempool, event ring, tables, RCU, ports and queues, worker launch.
 *
 * Context: control thread only. Start-up may allocate and log; nothing here
 * runs on workers.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "casa.h"
#include "fp_internal.h"

struct fp_state fp_state;

_Static_assert(FP_V__COUNT <= FP_VERDICT_SLOTS, "fp_worker_stats.verdict too small");

uint32_t fp_now_ms(void)
{
	return (uint32_t)(rte_get_tsc_cycles() / fp_state.tsc_per_ms);
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
						      ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* ---- EAL --------------------------------------------------------------------- */

static uint64_t free_hugepage_bytes(void)
{
	FILE *f = fopen("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "r");
	unsigned long n = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%lu", &n) != 1)
		n = 0;
	fclose(f);
	return (uint64_t)n << 21;
}

/* DPDK memory the process needs: mbufs, rings, snapshots, workers; the
 * affinity tables live outside it (fp_table_map). */
static uint32_t dpdk_mem_mb(const struct fp_conf *c, uint32_t mbufs)
{
	uint64_t b = (uint64_t)mbufs * (RTE_MBUF_DEFAULT_BUF_SIZE + 192) + (64u << 20);

	if (c->mem_mb)
		return c->mem_mb;
	return (uint32_t)(b >> 20) + 1;
}

struct eal_args {
	int argc;
	char *argv[64];
	char mem[16];
	char buf[1024];
	size_t used;
};

static void eal_push(struct eal_args *a, const char *s)
{
	size_t n = strlen(s) + 1;

	if (a->argc >= 62 || a->used + n > sizeof(a->buf))
		return;
	memcpy(a->buf + a->used, s, n);
	a->argv[a->argc++] = a->buf + a->used;
	a->used += n;
}

static void eal_build(struct eal_args *a, const struct fp_conf *c, const char *argv0,
		      uint32_t mbufs, bool *huge)
{
	bool pci = false;
	uint32_t mb = dpdk_mem_mb(c, mbufs);
	char extra[sizeof(c->eal_extra)];

	memset(a, 0, sizeof(*a));
	eal_push(a, argv0);
	eal_push(a, "-l");
	eal_push(a, c->lcores);
	eal_push(a, "--no-telemetry");
	eal_push(a, "--log-level=warning");
	*huge = !c->no_huge && free_hugepage_bytes() >= ((uint64_t)mb << 20);
	if (c->file_prefix[0]) {
		eal_push(a, "--file-prefix");
		eal_push(a, c->file_prefix);
	} else {
		// No runtime files, so several instances (and tests) run side by
		// side; --no-huge implies legacy memory, which wants --no-shconf.
		eal_push(a, *huge ? "--in-memory" : "--no-shconf");
	}
	if (!*huge) {
		eal_push(a, "--no-huge");
		eal_push(a, "-m");
		snprintf(a->mem, sizeof(a->mem), "%u", mb);
		eal_push(a, a->mem);
	}
	for (uint16_t p = 0; p < c->n_ports; p++) {
		bool vdev = strncmp(c->ports[p].dev, "net_", 4) == 0;

		if (strncmp(c->ports[p].dev, "ring:", 5) == 0)
			continue; // created after EAL start (ring_port_create)
		eal_push(a, vdev ? "--vdev" : "-a");
		eal_push(a, c->ports[p].dev);
		pci |= !vdev;
	}
	if (!pci)
		eal_push(a, "--no-pci");
	snprintf(extra, sizeof(extra), "%s", c->eal_extra);
	for (char *save = NULL, *t = strtok_r(extra, " ", &save); t; t = strtok_r(NULL, " ", &save))
		eal_push(a, t);
	a->argv[a->argc] = NULL;
}

/* ---- tables outside DPDK memory ------------------------------------------------ */

/*
 * The affinity tables are plain process memory, not DPDK heap: nothing DMAs
 * into them, they can be far larger than the mbuf memory, and --no-huge
 * mode then needs no giant -m. Huge pages are tried first (explicit, then
 * transparent) because the table is read at random at tens of Mpps.
 */
static void *fp_table_map(size_t bytes)
{
	size_t len = RTE_ALIGN_CEIL(bytes, 2u << 20);
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
		       -1, 0);

	if (p == MAP_FAILED) {
		p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return NULL;
		madvise(p, len, MADV_HUGEPAGE);
	}
	return p;
}

static void fp_table_unmap(void *p, size_t bytes)
{
	if (p)
		munmap(p, RTE_ALIGN_CEIL(bytes, 2u << 20));
}

static struct fp_aff *table_create(uint32_t capacity, const char *what, char *err, size_t errlen)
{
	size_t bytes = fp_aff_mem_size(capacity);
	void *mem;
	struct fp_aff *t;

	if (bytes == 0) {
		fail(err, errlen, "%s capacity %u out of range", what, capacity);
		return NULL;
	}
	mem = fp_table_map(bytes);
	if (!mem) {
		fail(err, errlen, "%s: cannot map %zu bytes", what, bytes);
		return NULL;
	}
	t = fp_aff_init(mem, bytes, capacity);
	if (!t) {
		fp_table_unmap(mem, bytes);
		fail(err, errlen, "%s: table initialisation failed", what);
	}
	return t;
}

static void table_destroy(struct fp_aff *t)
{
	struct fp_aff_stats s;

	if (!t)
		return;
	fp_aff_stats(t, &s);
	fp_table_unmap(t, s.mem_bytes);
}

/* ---- ports ------------------------------------------------------------------------ */

static int port_id_of(const char *dev, uint16_t *id)
{
	char name[RTE_ETH_NAME_MAX_LEN];
	size_t n = strcspn(dev, ",");

	if (n >= sizeof(name))
		return -ENAMETOOLONG;
	memcpy(name, dev, n);
	name[n] = '\0';
	return rte_eth_dev_get_port_by_name(name, id);
}

/*
 * "ring:NAME": a net_ring port over rings the fast path creates itself,
 * NAME_rx<q> for each RX queue and NAME_tx<q> for each TX queue, so tests
 * and benchmarks can inject frames and read what was sent
 * (rte_ring_lookup). Single producer and consumer on each ring.
 */
static int ring_port_create(const char *name, uint16_t nrx, uint16_t ntx, uint16_t *id)
{
	struct rte_ring *rx[FP_WORKERS_MAX + 1], *tx[FP_WORKERS_MAX + 1];
	char rname[RTE_RING_NAMESIZE];
	int rc;

	for (uint16_t q = 0; q < nrx || q < ntx; q++) {
		if (q < nrx) {
			snprintf(rname, sizeof(rname), "%s_rx%u", name, q);
			rx[q] = rte_ring_create(rname, 4096, (int)rte_socket_id(),
						RING_F_SP_ENQ | RING_F_SC_DEQ);
			if (!rx[q])
				return -rte_errno;
		}
		if (q < ntx) {
			snprintf(rname, sizeof(rname), "%s_tx%u", name, q);
			tx[q] = rte_ring_create(rname, 4096, (int)rte_socket_id(),
						RING_F_SP_ENQ | RING_F_SC_DEQ);
			if (!tx[q])
				return -rte_errno;
		}
	}
	rc = rte_eth_from_rings(name, rx, nrx, tx, ntx, rte_socket_id());
	if (rc < 0)
		return -rte_errno;
	*id = (uint16_t)rc;
	return 0;
}

static int port_find(const char *dev, uint16_t nrx, uint16_t ntx, uint16_t *id)
{
	if (strncmp(dev, "ring:", 5) == 0)
		return ring_port_create(dev + 5, nrx, ntx, id);
	return port_id_of(dev, id);
}

static int port_setup(uint16_t p, char *err, size_t errlen)
{
	const struct fp_conf *c = &fp_state.conf;
	struct fp_port_rt *pr = &fp_state.ports[p];
	uint16_t nrx = (uint16_t)fp_state.n_workers, ntx = (uint16_t)(fp_state.n_workers + 1);
	struct rte_eth_conf ec;
	struct rte_eth_dev_info info;
	struct rte_ether_addr mac;
	int socket, rc;

	if (port_find(c->ports[p].dev, nrx, ntx, &pr->dpdk_id) != 0)
		return fail(err, errlen, "port %u: device %s not found", p, c->ports[p].dev);
	rc = rte_eth_dev_info_get(pr->dpdk_id, &info);
	if (rc)
		return fail(err, errlen, "port %u: no device info (%s)", p, rte_strerror(-rc));
	if (info.max_rx_queues < nrx || info.max_tx_queues < ntx)
		return fail(err, errlen,
			    "port %u (%s): needs %u RX and %u TX queues, device has %u and %u", p,
			    c->ports[p].dev, nrx, ntx, info.max_rx_queues, info.max_tx_queues);
	// af_packet opens one socket per queue pair and fans received packets
	// out over all of them: every RX queue it has must be polled.
	if (strcmp(info.driver_name, "net_af_packet") == 0)
		nrx = info.max_rx_queues;
	pr->n_rxq = nrx;
	memset(&ec, 0, sizeof(ec));
	if (nrx > 1 && info.flow_type_rss_offloads) {
		ec.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		ec.rx_adv_conf.rss_conf.rss_hf =
			(RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) &
			info.flow_type_rss_offloads;
	}
	rc = rte_eth_dev_configure(pr->dpdk_id, nrx, ntx, &ec);
	if (rc)
		return fail(err, errlen, "port %u: configure: %s", p, rte_strerror(-rc));
	socket = rte_eth_dev_socket_id(pr->dpdk_id);
	if (socket < 0)
		socket = 0;
	for (uint16_t q = 0; q < nrx; q++) {
		rc = rte_eth_rx_queue_setup(pr->dpdk_id, q, c->rx_desc, (unsigned)socket, NULL,
					    fp_state.pool);
		if (rc)
			return fail(err, errlen, "port %u: RX queue %u: %s", p, q,
				    rte_strerror(-rc));
	}
	for (uint16_t q = 0; q < ntx; q++) {
		rc = rte_eth_tx_queue_setup(pr->dpdk_id, q, c->tx_desc, (unsigned)socket, NULL);
		if (rc)
			return fail(err, errlen, "port %u: TX queue %u: %s", p, q,
				    rte_strerror(-rc));
	}
	rc = rte_eth_dev_start(pr->dpdk_id);
	if (rc)
		return fail(err, errlen, "port %u: start: %s", p, rte_strerror(-rc));
	rte_eth_promiscuous_enable(pr->dpdk_id); // best effort: VIP MACs on L2 segments
	rte_eth_macaddr_get(pr->dpdk_id, &mac);
	if (rte_is_zero_ether_addr(&mac)) {
		// net_ring ports have none: a random locally administered one, so
		// that ARP replies and GRE frames carry a real source address.
		rte_eth_random_addr(mac.addr_bytes);
		rte_eth_dev_default_mac_addr_set(pr->dpdk_id, &mac);
	}
	memcpy(pr->mac, mac.addr_bytes, 6);
	if (rte_eth_dev_get_mtu(pr->dpdk_id, &pr->mtu) != 0 || pr->mtu == 0)
		pr->mtu = RTE_ETHER_MTU;
	pr->addr = c->ports[p].addr;
	return 0;
}

/* ---- workers ------------------------------------------------------------------------- */

static int workers_create(char *err, size_t errlen)
{
	unsigned n = fp_state.n_workers, i = 0, lcore;
	struct fp_aff_stats st;
	uint64_t buckets;

	fp_state.workers = rte_zmalloc("fp_workers", n * sizeof(struct fp_worker), 64);
	if (!fp_state.workers)
		return fail(err, errlen, "out of memory for %u workers", n);
	fp_aff_stats(fp_state.aff, &st);
	buckets = st.slots / FP_AFF_BUCKET_SLOTS;
	for (i = 0; i < n; i++) {
		struct fp_worker *w = &fp_state.workers[i];

		w->id = i;
		w->queue = (uint16_t)i;
		w->lcore = RTE_MAX_LCORE;
		w->expire_first = buckets * i / n;
		w->expire_end = buckets * (i + 1) / n;
		w->expire_cursor = w->expire_first;
		w->rr = rte_zmalloc("fp_rr", FP_SERVICES_MAX * sizeof(uint32_t), 64);
		w->gre_seq = rte_zmalloc("fp_seq", FP_TARGETS_MAX * sizeof(uint32_t), 64);
		if (!w->rr || !w->gre_seq)
			return fail(err, errlen, "out of memory for worker %u", i);
		if (rte_rcu_qsbr_thread_register(fp_state.qsbr, i) != 0)
			return fail(err, errlen, "RCU registration of worker %u failed", i);
	}
	i = 0;
	RTE_LCORE_FOREACH_WORKER(lcore) {
		if (i < n)
			fp_state.workers[i++].lcore = lcore;
	}
	return 0;
}

static void workers_free(void)
{
	if (!fp_state.workers)
		return;
	for (unsigned i = 0; i < fp_state.n_workers; i++) {
		fp_worker_drop_held(&fp_state.workers[i], true);
		rte_free(fp_state.workers[i].rr);
		rte_free(fp_state.workers[i].gre_seq);
	}
	rte_free(fp_state.workers);
	fp_state.workers = NULL;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

static uint32_t mbufs_needed(const struct fp_conf *c, unsigned workers)
{
	uint64_t n = c->mbufs;

	if (n == 0) {
		n = (uint64_t)c->n_ports * (c->rx_desc * workers + c->tx_desc * (workers + 1)) +
		    (uint64_t)workers * (FP_BURST_MAX * (FP_PORTS_MAX + 2) + FP_FRAG_STASH) +
		    c->event_ring + 4096;
	}
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

static int check_conf(const struct fp_conf *c, char *err, size_t errlen)
{
	if (c->n_ports == 0 || c->n_ports > FP_PORTS_MAX)
		return fail(err, errlen, "%u data ports; 1..%u are supported", c->n_ports,
			    FP_PORTS_MAX);
	if (c->burst == 0 || c->burst > FP_BURST_MAX)
		return fail(err, errlen, "burst %u out of range 1..%u", c->burst, FP_BURST_MAX);
	if (c->event_ring < 64 || (c->event_ring & (c->event_ring - 1)))
		return fail(err, errlen, "event ring size %u is not a power of two >= 64",
			    c->event_ring);
	if (c->aff_idle_s == 0 || c->aff_idle_s > 65535 || c->aff_closing_s == 0 ||
	    c->aff_closing_s > 65535)
		return fail(err, errlen, "affinity TTLs must be 1..65535 s");
	return 0;
}

static int init_after_eal(char *err, size_t errlen)
{
	const struct fp_conf *c = &fp_state.conf;
	uint32_t mbufs = mbufs_needed(c, fp_state.n_workers);
	size_t qs = rte_rcu_qsbr_get_memsize(fp_state.n_workers);
	int rc;

	fp_state.tsc_per_ms = rte_get_tsc_hz() / 1000;
	if (fp_state.tsc_per_ms == 0)
		fp_state.tsc_per_ms = 1;
	fp_state.pool = rte_pktmbuf_pool_create("fp_mbufs", mbufs, 256, 0,
						RTE_MBUF_DEFAULT_BUF_SIZE, (int)rte_socket_id());
	if (!fp_state.pool)
		return fail(err, errlen, "mbuf pool of %u: %s", mbufs, rte_strerror(rte_errno));
	fp_state.events = rte_ring_create_elem("fp_events", sizeof(struct fp_event), c->event_ring,
					       (int)rte_socket_id(), RING_F_SC_DEQ);
	if (!fp_state.events)
		return fail(err, errlen, "event ring: %s", rte_strerror(rte_errno));
	fp_state.aff = table_create(c->aff_capacity, "affinity table", err, errlen);
	fp_state.frags =
		fp_state.aff ? table_create(c->frag_capacity, "fragment table", err, errlen) : NULL;
	if (!fp_state.frags)
		return -ENOMEM;
	fp_state.aff_idle_s = c->aff_idle_s;
	fp_state.aff_closing_s = c->aff_closing_s;
	fp_state.frag_ttl_s = (c->frag_ttl_ms + 999) / 1000;
	fp_state.qsbr = rte_zmalloc("fp_qsbr", qs, RTE_CACHE_LINE_SIZE);
	if (!fp_state.qsbr || rte_rcu_qsbr_init(fp_state.qsbr, fp_state.n_workers) != 0)
		return fail(err, errlen, "RCU state for %u workers", fp_state.n_workers);
	rc = workers_create(err, errlen);
	if (rc)
		return rc;
	fp_state.n_ports = c->n_ports;
	for (uint16_t p = 0; p < c->n_ports; p++) {
		rc = port_setup(p, err, errlen);
		if (rc)
			return rc;
	}
	return 0;
}

int fp_init(const struct fp_conf *c, const char *argv0, char *err, size_t errlen)
{
	struct eal_args a;
	bool huge;
	int rc;

	if (fp_state.eal_up)
		return fail(err, errlen, "fast path already initialised");
	rc = check_conf(c, err, errlen);
	if (rc)
		return rc;
	fp_state.conf = *c;
	eal_build(&a, c, argv0, mbufs_needed(c, FP_WORKERS_MAX), &huge);
	if (rte_eal_init(a.argc, a.argv) < 0)
		return fail(err, errlen, "EAL initialisation failed: %s", rte_strerror(rte_errno));
	fp_state.eal_up = true;
	fprintf(stderr, "fastpath: EAL up with %s, %u lcores\n",
		huge ? "hugepages" : "--no-huge memory", rte_lcore_count());
	fp_state.n_workers = rte_lcore_count() > 1 ? rte_lcore_count() - 1 : 1;
	if (fp_state.n_workers > FP_WORKERS_MAX)
		fp_state.n_workers = FP_WORKERS_MAX;
	rc = init_after_eal(err, errlen);
	if (rc) {
		fp_fini();
		return rc;
	}
	return 0;
}

int fp_start(void)
{
	if (!fp_state.eal_up || fp_state.started)
		return -EALREADY;
	for (unsigned i = 0; i < fp_state.n_workers; i++)
		if (fp_state.workers[i].lcore >= RTE_MAX_LCORE)
			return -ENODEV; // a single lcore: tests poll by hand
	__atomic_store_n(&fp_state.running, true, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < fp_state.n_workers; i++) {
		int rc = rte_eal_remote_launch(fp_worker_main, &fp_state.workers[i],
					       fp_state.workers[i].lcore);

		if (rc) {
			fp_stop();
			return rc;
		}
	}
	fp_state.started = true;
	return 0;
}

void fp_stop(void)
{
	__atomic_store_n(&fp_state.running, false, __ATOMIC_RELEASE);
	if (fp_state.eal_up)
		rte_eal_mp_wait_lcore();
	fp_state.started = false;
}

unsigned fp_worker_count(void)
{
	return fp_state.n_workers;
}

void fp_fini(void)
{
	if (!fp_state.eal_up)
		return;
	fp_stop();
	for (uint16_t p = 0; p < fp_state.n_ports; p++) {
		rte_eth_dev_stop(fp_state.ports[p].dpdk_id);
		rte_eth_dev_close(fp_state.ports[p].dpdk_id);
	}
	fp_api_fini();
	workers_free();
	table_destroy(fp_state.aff);
	table_destroy(fp_state.frags);
	rte_free(fp_state.qsbr);
	rte_ring_free(fp_state.events);
	rte_mempool_free(fp_state.pool);
	rte_eal_cleanup();
	memset(&fp_state, 0, sizeof(fp_state));
}
