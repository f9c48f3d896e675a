/*
 * fp_api.c - the control side of fastpath.h: publishing snapshots under
 * RCU, affinities, events, control transmit and statistics.
 *
 * Context: control thread. RCU: DPDK's rte_rcu_qsbr (docs/fastpath.md says
 * why): fp_publish swaps the snapshot pointer and queues the old one with a
 * token from rte_rcu_qsbr_start(); fp_reclaim frees it once
 * rte_rcu_qsbr_check() says every online worker has reported a quiescent
 * state since. Neither call waits.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_malloc.h>

#include "fp_internal.h"

#define FP_RETIRED_MAX 64

static struct {
	unsigned n;
	struct {
		uint64_t token;
		struct fp_snapshot *snap;
	} q[FP_RETIRED_MAX];
	uint16_t ip_id; /* outer IP id of packets control forwards */
	/* fp_stats_clear's baselines, subtracted from what readers get. */
	struct fp_worker_stats worker_base[FP_WORKERS_MAX];
	struct fp_table_stats aff_base;
} api;

/* ---- snapshots -------------------------------------------------------------------- */

int fp_publish(const struct fp_tables_desc *d, char *err, size_t errlen)
{
	uint8_t macs[FP_PORTS_MAX][6];
	struct fp_snapshot *s, *old;

	if (!fp_state.eal_up)
		return -ENODEV;
	for (uint16_t p = 0; p < fp_state.n_ports; p++)
		memcpy(macs[p], fp_state.ports[p].mac, 6);
	s = fp_tables_build(d, &fp_state.conf, (const uint8_t(*)[6])macs, fp_state.n_ports, err,
			    errlen);
	if (!s)
		return -errno;
	// A full retire queue means workers have not passed a quiescent state
	// for 64 publishes: then, and only then, wait for them.
	while (api.n == FP_RETIRED_MAX && fp_reclaim() == FP_RETIRED_MAX)
		rte_rcu_qsbr_check(fp_state.qsbr, api.q[0].token, true);
	old = __atomic_exchange_n(&fp_state.snap, s, __ATOMIC_ACQ_REL);
	if (old) {
		api.q[api.n].token = rte_rcu_qsbr_start(fp_state.qsbr);
		api.q[api.n].snap = old;
		api.n++;
	}
	return 0;
}

unsigned fp_reclaim(void)
{
	unsigned kept = 0;

	for (unsigned i = 0; i < api.n; i++) {
		if (rte_rcu_qsbr_check(fp_state.qsbr, api.q[i].token, false) == 1)
			fp_tables_free(api.q[i].snap);
		else
			api.q[kept++] = api.q[i];
	}
	api.n = kept;
	return kept;
}

/* ---- affinities ------------------------------------------------------------------- */

int fp_affinity_add(const struct fp_flow *f, uint32_t target, uint32_t ttl_s)
{
	struct fp_aff_key k;
	struct fp_aff_val v = { .target = target, .flags = FP_AFF_F_CONTROL };

	if (!fp_state.aff)
		return -ENODEV;
	if (ttl_s == 0 || target >= FP_TARGETS_MAX)
		return -EINVAL;
	v.ttl_s = (uint16_t)(ttl_s > 65535 ? 65535 : ttl_s);
	fp_flow_key(f, &k);
	return fp_aff_add(fp_state.aff, &k, &v, fp_now_ms(), true);
}

int fp_affinity_del(const struct fp_flow *f)
{
	struct fp_aff_key k;

	if (!fp_state.aff)
		return -ENODEV;
	fp_flow_key(f, &k);
	return fp_aff_del(fp_state.aff, &k);
}

static void view_to_affinity(const struct fp_aff_entry_view *e, uint32_t now, struct fp_affinity *a)
{
	a->flow.src = e->key.src;
	a->flow.dst = e->key.dst;
	a->flow.sport = e->key.sport;
	a->flow.dport = e->key.dport;
	a->flow.proto = e->key.proto;
	a->target = e->val.target;
	a->flags = e->val.flags;
	a->ttl_s = e->val.ttl_s;
	a->idle_ms = now - e->last_ms;
}

int fp_affinity_find(const struct fp_flow *f, struct fp_affinity *out)
{
	struct fp_aff_entry_view e;

	if (!fp_state.aff)
		return -ENODEV;
	fp_flow_key(f, &e.key);
	// A control lookup must not count as traffic: peek, no refresh.
	if (!fp_aff_peek(fp_state.aff, &e.key, &e.val, &e.last_ms))
		return -ENOENT;
	view_to_affinity(&e, fp_now_ms(), out);
	return 0;
}

struct walk_ctx {
	int (*fn)(const struct fp_affinity *a, void *arg);
	void *arg;
	uint32_t now;
};

static int walk_one(const struct fp_aff_entry_view *e, void *arg)
{
	struct walk_ctx *w = arg;
	struct fp_affinity a;

	view_to_affinity(e, w->now, &a);
	return w->fn(&a, w->arg);
}

unsigned fp_affinity_walk(uint64_t *cursor, unsigned max,
			  int (*fn)(const struct fp_affinity *a, void *arg), void *arg)
{
	struct walk_ctx w = { .fn = fn, .arg = arg, .now = fp_now_ms() };

	if (!fp_state.aff)
		return 0;
	return fp_aff_walk(fp_state.aff, cursor, max, walk_one, &w);
}

unsigned fp_affinity_expire(uint64_t *cursor, unsigned buckets)
{
	if (!fp_state.aff)
		return 0;
	return fp_aff_expire(fp_state.aff, cursor, buckets, fp_now_ms());
}

/* A counter's growth since a baseline (counters only grow; a reading that
 * overlaps fp_stats_clear never goes negative). */
static uint64_t since(uint64_t now, uint64_t base)
{
	return now >= base ? now - base : 0;
}

void fp_affinity_stats(struct fp_table_stats *s)
{
	struct fp_aff_stats a;

	memset(s, 0, sizeof(*s));
	if (!fp_state.aff)
		return;
	fp_aff_stats(fp_state.aff, &a);
	s->count = a.count;
	s->capacity = a.capacity;
	s->slots = a.slots;
	s->inserts = since(a.inserts, api.aff_base.inserts);
	s->deletes = since(a.deletes, api.aff_base.deletes);
	s->expiries = since(a.expiries, api.aff_base.expiries);
	s->full = since(a.full, api.aff_base.full);
	s->mem_bytes = a.mem_bytes;
}

/* ---- events ------------------------------------------------------------------------- */

unsigned fp_event_poll(struct fp_event *ev, unsigned max)
{
	if (!fp_state.events)
		return 0;
	return rte_ring_sc_dequeue_burst_elem(fp_state.events, ev, sizeof(*ev), max, NULL);
}

const uint8_t *fp_event_data(const struct fp_event *ev, uint32_t *len)
{
	struct rte_mbuf *m = ev->pkt;

	if (!m) {
		*len = 0;
		return NULL;
	}
	*len = rte_pktmbuf_data_len(m);
	return rte_pktmbuf_mtod(m, const uint8_t *);
}

void fp_event_release(struct fp_event *ev)
{
	rte_pktmbuf_free(ev->pkt);
	ev->pkt = NULL;
}

/* Transmit one mbuf on control's own TX queue (the last one) of port p. */
static int ctl_tx(uint16_t p, struct rte_mbuf *m)
{
	if (rte_eth_tx_burst(fp_state.ports[p].dpdk_id, (uint16_t)fp_state.n_workers, &m, 1) != 1) {
		rte_pktmbuf_free(m);
		return -ENOBUFS;
	}
	return 0;
}

/* Forward the frame in m (Ethernet onward) to target as a worker would,
 * on the control TX queue. Consumes m. */
static int forward_mbuf(struct rte_mbuf *m, uint32_t target)
{
	const struct fp_snapshot *s = fp_snapshot_get();
	const struct fp_target_rt *t;
	struct fp_pkt pkt;
	enum fp_verdict v;

	if (!s || target >= s->n_targets || !s->targets[target].valid) {
		rte_pktmbuf_free(m);
		return -ENOENT;
	}
	t = &s->targets[target];
	if (fp_parse(rte_pktmbuf_mtod(m, uint8_t *), rte_pktmbuf_data_len(m), &pkt) != FP_V_OK ||
	    pkt.kind != FP_PKT_IPV4 || pkt.ttl <= 1) {
		rte_pktmbuf_free(m);
		return -EINVAL;
	}
	fp_ip_ttl_dec(rte_pktmbuf_mtod(m, uint8_t *) + pkt.l3_off);
	v = fp_worker_encap(m, &pkt, t, target, &api.ip_id, NULL);
	if (v != FP_V_FWD_GRE && v != FP_V_FWD_L2) {
		rte_pktmbuf_free(m);
		return -EMSGSIZE;
	}
	return ctl_tx(t->port, m);
}

int fp_event_forward(struct fp_event *ev, uint32_t target)
{
	struct rte_mbuf *m = ev->pkt;

	ev->pkt = NULL;
	if (!m)
		return -EINVAL;
	return forward_mbuf(m, target);
}

int fp_forward_ip(const void *ip, uint32_t len, uint32_t target)
{
	static const uint8_t eth[FP_ETH_LEN] = { [12] = 0x08, [13] = 0x00 };
	struct rte_mbuf *m;
	uint8_t *dst;

	if (!fp_state.pool || len < 20 || len > UINT16_MAX - FP_ETH_LEN)
		return -EINVAL;
	m = rte_pktmbuf_alloc(fp_state.pool);
	if (!m)
		return -ENOMEM;
	dst = (uint8_t *)rte_pktmbuf_append(m, (uint16_t)(len + FP_ETH_LEN));
	if (!dst) {
		rte_pktmbuf_free(m);
		return -EMSGSIZE;
	}
	// The Ethernet header is rewritten by the encapsulation; only its
	// type matters to the parser.
	memcpy(dst, eth, FP_ETH_LEN);
	memcpy(dst + FP_ETH_LEN, ip, len);
	return forward_mbuf(m, target);
}

int fp_tx_frame(uint16_t port, const void *frame, uint32_t len)
{
	struct rte_mbuf *m;
	void *dst;

	if (!fp_state.pool || port >= fp_state.n_ports || len < FP_ETH_LEN)
		return -EINVAL;
	m = rte_pktmbuf_alloc(fp_state.pool);
	if (!m)
		return -ENOMEM;
	dst = rte_pktmbuf_append(m, (uint16_t)(len > UINT16_MAX ? 0 : len));
	if (!dst || len > UINT16_MAX) {
		rte_pktmbuf_free(m);
		return -EMSGSIZE;
	}
	memcpy(dst, frame, len);
	return ctl_tx(port, m);
}

/* ---- statistics -------------------------------------------------------------------- */

_Static_assert(sizeof(struct fp_worker_stats) % sizeof(uint64_t) == 0,
	       "fp_worker_stats is made of 64-bit counters");

/* Every counter of s minus its baseline. */
static void stats_since(struct fp_worker_stats *s, const struct fp_worker_stats *base)
{
	uint64_t c[sizeof(*s) / sizeof(uint64_t)], b[sizeof(*s) / sizeof(uint64_t)];

	memcpy(c, s, sizeof(c));
	memcpy(b, base, sizeof(b));
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		c[i] = since(c[i], b[i]);
	memcpy(s, c, sizeof(c));
}

int fp_worker_stats_read(unsigned w, struct fp_worker_stats *out)
{
	if (w >= fp_state.n_workers)
		return -ENOENT;
	// Each counter is an aligned 64-bit word written by one worker: a copy
	// may mix two bursts' values, never a torn number.
	memcpy(out, &fp_state.workers[w].stats, sizeof(*out));
	if (w < FP_WORKERS_MAX)
		stats_since(out, &api.worker_base[w]);
	return 0;
}

void fp_stats_clear(void)
{
	for (unsigned w = 0; w < fp_state.n_workers && w < FP_WORKERS_MAX; w++)
		memcpy(&api.worker_base[w], &fp_state.workers[w].stats, sizeof(api.worker_base[w]));
	if (fp_state.aff) {
		memset(&api.aff_base, 0, sizeof(api.aff_base));
		fp_affinity_stats(&api.aff_base);
	}
}

unsigned fp_verdict_count(void)
{
	return FP_V__COUNT;
}

const char *fp_verdict_label(unsigned v)
{
	return v < FP_V__COUNT ? fp_verdict_name((enum fp_verdict)v) : NULL;
}

int fp_port_mac(uint16_t p, uint8_t mac[6])
{
	if (p >= fp_state.n_ports)
		return -ENOENT;
	memcpy(mac, fp_state.ports[p].mac, 6);
	return 0;
}

void fp_api_fini(void)
{
	struct fp_event ev[32];
	unsigned n;

	while ((n = fp_event_poll(ev, 32)) > 0)
		for (unsigned i = 0; i < n; i++)
			fp_event_release(&ev[i]);
	for (unsigned i = 0; i < api.n; i++)
		fp_tables_free(api.q[i].snap);
	api.n = 0;
	fp_tables_free(fp_state.snap);
	fp_state.snap = NULL;
	memset(api.worker_base, 0, sizeof(api.worker_base));
	memset(&api.aff_base, 0, sizeof(api.aff_base));
}
