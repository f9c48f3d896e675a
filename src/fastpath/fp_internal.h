/*
 * fp_internal.h - private to the fastpath room: the published snapshot, the
 * per-worker state and the process-wide fast-path state, shared by the
 * files that make up the room (fp_main.c, fp_tables.c, fp_worker_dp.c,
 * fp_event.c) and by the room's own tests and benchmarks.
 */
#ifndef FP_INTERNAL_H
#define FP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <rte_common.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "fastpath.h"
#include "fp_aff.h"
#include "fp_pkt.h"

/* ---- the published snapshot (fp_tables.c) -------------------------------- */

/* A target as workers need it: resolved at publish time, so that the hot
 * path does no lookups beyond indexing. */
struct fp_target_rt {
	uint8_t valid;
	uint8_t dispatch; /* enum fp_dispatch */
	uint16_t port;
	uint32_t tunnel; /* host order */
	uint32_t gre_key;
	uint8_t dst_mac[6];   /* target (L2) or next hop (GRE) */
	uint8_t src_mac[6];   /* our port's MAC */
	uint8_t gre_len;      /* bytes of gre_tmpl */
	uint8_t gre_tmpl[48]; /* outer Ethernet, IPv4, GRE: fp_gre_write's, once */
};

struct fp_sel_rt {
	uint32_t n;
	const uint32_t *ids; /* target ids, inside the snapshot */
};

struct fp_policy_rt {
	uint32_t src, mask;
	struct fp_sel_rt sel;
};

struct fp_service_rt {
	uint32_t id;
	uint32_t vip;
	uint16_t port;
	uint8_t proto;
	uint8_t sel_mode;
	uint32_t idle_s;
	struct fp_sel_rt sel;
	uint32_t n_policies;
	const struct fp_policy_rt *policies;
};

/*
 * One immutable version of the published tables, built whole by
 * fp_publish() in one allocation and never written after publication.
 * Workers read it through fp_state.snap (acquire); the control thread frees
 * it after a grace period.
 */
struct fp_snapshot {
	uint64_t generation;
	struct fp_gre_params gre; /* the per-packet rules (TOS, DF, TTL, flags) */
	uint32_t n_targets;       /* targets[] has n_targets = max id + 1 rows */
	struct fp_target_rt *targets;
	uint32_t n_services;
	struct fp_service_rt *services;
	/* Wildcard index: open addressing on (vip, port, proto); -1 empty. */
	uint32_t wc_mask;
	int32_t *wc;
	/* Addresses answered for (VIPs): open addressing, 0 = empty. */
	uint32_t vip_mask;
	uint32_t *vip_set;
	size_t bytes;
};

/* Find the service for a packet to vip:port/proto (exact port first, then
 * port 0). NULL when none. Context: worker or control. */
const struct fp_service_rt *fp_tables_service(const struct fp_snapshot *s, uint32_t vip,
					      uint16_t port, uint8_t proto);

static inline uint32_t fp_vip_hash(uint32_t vip)
{
	return (uint32_t)(((uint64_t)vip * 0x9E3779B97F4A7C15ULL) >> 32);
}

/* Is addr one of the published VIPs? Inline: every packet asks. */
static inline bool fp_tables_is_vip(const struct fp_snapshot *s, uint32_t addr)
{
	if (addr == 0)
		return false;
	for (uint32_t i = fp_vip_hash(addr) & s->vip_mask;; i = (i + 1) & s->vip_mask) {
		if (s->vip_set[i] == addr)
			return true;
		if (s->vip_set[i] == 0)
			return false;
	}
}

/* The selection table a new flow from src uses: the first client-subnet
 * policy covering src, else the service's own. Context: worker or control. */
static inline const struct fp_sel_rt *fp_tables_select(const struct fp_service_rt *svc,
						       uint32_t src)
{
	for (uint32_t i = 0; i < svc->n_policies; i++)
		if ((src & svc->policies[i].mask) == svc->policies[i].src)
			return &svc->policies[i].sel;
	return &svc->sel;
}

/* Build a snapshot from d; NULL with *err on a bad description. port_macs
 * gives each port's MAC (for src_mac), gw for GRE next hops. Context:
 * control. Allocates with rte_malloc when EAL runs, else malloc (tests). */
struct fp_snapshot *fp_tables_build(const struct fp_tables_desc *d, const struct fp_conf *c,
				    const uint8_t (*port_macs)[6], uint16_t n_ports, char *err,
				    size_t errlen);
void fp_tables_free(struct fp_snapshot *s);

/* ---- workers (fp_worker_dp.c) --------------------------------------------- */

#define FP_FRAG_STASH 32 /* out-of-order fragments held per worker */
#define FP_HOUSEKEEP_LOOPS 256
#define FP_EXPIRE_BUCKETS 64 /* affinity buckets expired per housekeeping */
#define FP_TX_BUF (FP_BURST_MAX * 2)

struct fp_frag_held {
	struct rte_mbuf *m;
	struct fp_aff_key key;
	uint32_t since_ms;
	uint16_t port;
};

struct fp_tx_buf {
	uint16_t n;
	struct rte_mbuf *m[FP_TX_BUF];
};

/* Per-lcore state: one cache-aligned struct, written by its worker only
 * (stats are read by control). */
struct fp_worker {
	unsigned id; /* 0..n_workers-1: queue index and RCU thread id */
	unsigned lcore;
	bool online;     /* reports RCU quiescence (launched, or a test) */
	uint16_t queue;  /* RX/TX queue on every port */
	uint32_t now_ms; /* clock for this burst */
	uint16_t ip_id;  /* outer IP id of GRE packets */
	uint64_t expire_cursor, expire_first, expire_end; /* affinity buckets */
	uint64_t frag_cursor;
	struct fp_worker_stats stats;
	/* Per-service round-robin position (FP_SERVICES_MAX): written by the
	 * worker, read by fp_trace on control; relaxed atomics (plain moves). */
	uint32_t *rr;
	uint32_t *gre_seq; /* per-target RFC 2890 sequence (FP_TARGETS_MAX) */
	unsigned n_held;
	struct fp_frag_held held[FP_FRAG_STASH];
	struct fp_tx_buf tx[FP_PORTS_MAX];
} __rte_cache_aligned;

/*
 * Handle a received burst from port in_port: parse, bulk affinity lookup,
 * act. Forwarded and answered packets go to w->tx (flushed by
 * fp_worker_flush); packets for control go on the event ring; drops are
 * freed and counted. Context: worker (or a test/benchmark standing in).
 */
void fp_worker_handle_burst(struct fp_worker *w, struct rte_mbuf **pkts, uint16_t n,
			    uint16_t in_port);

/* Transmit w->tx on every port; count and free what the NIC refuses. */
void fp_worker_flush(struct fp_worker *w);

/* One loop: every port's RX queue, flush, and (every FP_HOUSEKEEP_LOOPS)
 * housekeeping; RCU quiescent state once. Returns packets received. */
unsigned fp_worker_poll(struct fp_worker *w);

/* Release held fragments older than the fragment TTL (all when force). */
void fp_worker_drop_held(struct fp_worker *w, bool force);

/* The lcore entry point: polls until fp_state.running is cleared. */
int fp_worker_main(void *arg);

/* ---- process-wide state (fp_main.c) ----------------------------------------- */

struct fp_port_rt {
	uint16_t dpdk_id;
	uint32_t addr;
	uint16_t mtu;
	uint16_t n_rxq; /* worker w polls queues w, w + n_workers, ... below it */
	uint8_t mac[6];
};

struct fp_state {
	struct fp_conf conf;
	bool eal_up, started;
	volatile bool running;
	unsigned n_workers;
	struct fp_worker *workers; /* n_workers, cache aligned */
	uint16_t n_ports;
	struct fp_port_rt ports[FP_PORTS_MAX];
	struct rte_mempool *pool;
	struct rte_ring *events; /* struct fp_event elements, MP/SC */
	struct fp_aff *aff;
	struct fp_aff *frags;
	uint32_t aff_idle_s, aff_closing_s, frag_ttl_s;
	struct rte_rcu_qsbr *qsbr;
	struct fp_snapshot *snap; /* written by control (release), read by workers */
	uint64_t tsc_per_ms;
};

extern struct fp_state fp_state;

/* Current snapshot. Context: worker (inside its loop) or control. */
static inline const struct fp_snapshot *fp_snapshot_get(void)
{
	return __atomic_load_n(&fp_state.snap, __ATOMIC_ACQUIRE);
}

/* Drain events, free snapshots (current and retired). Context: control,
 * from fp_fini. */
void fp_api_fini(void);

/* The affinity key of a flow. Context: any. */
static inline void fp_flow_key(const struct fp_flow *f, struct fp_aff_key *k)
{
	memset(k, 0, sizeof(*k));
	k->src = f->src;
	k->dst = f->dst;
	k->sport = f->sport;
	k->dport = f->dport;
	k->proto = f->proto;
}

/* Millisecond clock from the TSC. No system call. */
uint32_t fp_now_ms(void);

/* Forward m (a parsed IPv4 packet in a frame) to target t: TTL decrement
 * already done by the caller; GRE or L2 per the target. Returns the verdict
 * (FP_V_FWD_* or a drop); on a drop m is untouched. Context: worker or
 * control (control passes its own ip_id/seq state). */
enum fp_verdict fp_worker_encap(struct rte_mbuf *m, const struct fp_pkt *pkt,
				const struct fp_target_rt *t, uint32_t target_id, uint16_t *ip_id,
				uint32_t *gre_seq);

#endif /* FP_INTERNAL_H */
