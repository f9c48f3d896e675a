/*
 * fastpath.h - the fast path's whole contract with the control room.
 *
 * The fast path (design.md sections 3-5) is a set of poll-mode worker lcores
 * that own one RX and one TX queue of every data port. Per burst a worker
 * parses, looks up affinities in bulk, and forwards (GRE or layer 2),
 * answers (ARP, ICMP echo) or hands the packet to the control thread through
 * a ring of typed events.
 *
 * The control thread is the single writer of the published tables
 * (services, targets, selection, VIPs): it describes them in plain structs,
 * fp_publish() builds a whole new snapshot, swaps one pointer and frees the
 * old snapshot after every worker has passed a quiescent state (DPDK
 * rte_rcu_qsbr; see docs/fastpath.md for why not liburcu). The affinity table
 * is shared: workers insert on SYN, the control thread adds and deletes on
 * CASA and agent messages, both expire.
 *
 * This header is DPDK-free, so control can be built and unit-tested against
 * a stub. Addresses and ports are host order, as in casa.h: 9.67.157.17 is
 * 0x09439D11. Every function says which thread may call it ("Context").
 * Functions return 0 or -errno unless they say otherwise.
 */
#ifndef FASTPATH_H
#define FASTPATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FP_PORTS_MAX 8
#define FP_WORKERS_MAX 16
#define FP_BURST_MAX 64
#define FP_TARGETS_MAX 4096 /* target ids are 0..FP_TARGETS_MAX-1 */
#define FP_SERVICES_MAX 1024
#define FP_VIPS_MAX 256
#define FP_SEL_MAX 65536 /* entries of one selection table */
#define FP_TARGET_NONE UINT32_MAX

/* A 5-tuple in the direction client -> VIP. Ports are 0 where the packet has
 * none (non-first fragments, ICMP other than errors). */
struct fp_flow {
	uint32_t src;
	uint32_t dst;
	uint16_t sport;
	uint16_t dport;
	uint8_t proto;
};

/* ---- configuration (fp_init) -------------------------------------------- */

struct fp_port_conf {
	/* A PCI address (0000:03:00.0, bound to vfio-pci), a vdev spec
	 * (net_af_packet0,iface=veth0,qpairs=N with N = workers + 1;
	 * net_af_xdp0,iface=x; net_tap0,iface=x), or ring:NAME (net_ring over
	 * rings NAME_rx<q> / NAME_tx<q> the fast path creates: tests). */
	char dev[256];
	uint32_t addr;     /* our own IPv4 address on this port; 0 = none */
	uint8_t gw_mac[6]; /* next hop for GRE when a target gives no MAC */
	bool has_gw_mac;
};

/* How the outer header of a GRE packet is built (RFC 2784; RFC 2890 key). */
struct fp_gre_conf {
	uint32_t local; /* outer source: the configured local tunnel address */
	bool use_key;   /* each target's key goes into the GRE header */
	bool use_seq;   /* RFC 2890 sequence numbers (per worker) */
	uint8_t ttl;    /* outer TTL; 0 = copy the (decremented) inner TTL */
	int16_t tos;    /* outer TOS; -1 = copy the inner TOS */
	int8_t df;      /* outer DF: 1 set, 0 clear, -1 copy the inner DF */
};

struct fp_conf {
	/* EAL: lcore list as for -l ("0-2": the first is the control thread,
	 * the rest are workers), hugepages, extra EAL arguments. */
	char lcores[64];
	bool no_huge;         /* force --no-huge; otherwise fall back to it */
	uint32_t mem_mb;      /* memory with --no-huge (-m); 0 = 512 */
	char eal_extra[256];  /* further EAL arguments, space separated */
	char file_prefix[64]; /* --file-prefix, so several casalb can run */

	struct fp_port_conf ports[FP_PORTS_MAX];
	uint16_t n_ports;

	uint32_t mbufs; /* mbuf pool size; 0 = derived from queues */
	uint16_t rx_desc, tx_desc;
	uint16_t burst;      /* <= FP_BURST_MAX */
	uint32_t event_ring; /* worker -> control ring entries (power of 2) */

	uint32_t aff_capacity;  /* affinities the table must hold */
	uint32_t aff_idle_s;    /* idle TTL of a worker-inserted affinity */
	uint32_t aff_closing_s; /* idle TTL after FIN or RST was seen */
	uint32_t frag_capacity; /* first-fragment records */
	uint32_t frag_ttl_ms;   /* how long a first fragment is remembered */

	struct fp_gre_conf gre;
};

/* Fill *c with the defaults (docs/fastpath.md lists them). Context: any;
 * writes only *c. */
void fp_conf_defaults(struct fp_conf *c);

/* ---- lifecycle ----------------------------------------------------------- */

/*
 * Start the EAL (hugepages, falling back to --no-huge when the kernel
 * refuses them), create mempools, rings, the affinity and fragment tables
 * and the ports (one RX and TX queue per worker plus one TX queue for
 * control; RSS when there is more than one worker). argv0 is the program
 * name for EAL. Nothing is forwarded until fp_publish() and fp_start().
 * On failure *err holds a one-line reason. Context: control, once.
 */
int fp_init(const struct fp_conf *c, const char *argv0, char *err, size_t errlen);

/* Launch the workers on their lcores. Context: control. */
int fp_start(void);

/* Stop the workers and wait for them; the tables stay readable.
 * Context: control. */
void fp_stop(void);

/* Stop if needed, close the ports, free everything (events still queued
 * are released), clean up the EAL. Context: control, once. */
void fp_fini(void);

/* Workers (lcores after the first; at least 1). Context: any, after fp_init. */
unsigned fp_worker_count(void);

/* ---- published tables (fp_publish) --------------------------------------- */

enum fp_dispatch { FP_DISPATCH_GRE = 1, FP_DISPATCH_L2 = 2 };

struct fp_target_desc {
	uint32_t id;      /* 0..FP_TARGETS_MAX-1, stable for the target's life */
	uint8_t dispatch; /* enum fp_dispatch */
	uint16_t port;    /* data port index toward it */
	uint32_t tunnel;  /* GRE: the target's tunnel endpoint */
	uint32_t gre_key; /* GRE: key when fp_gre_conf.use_key */
	uint8_t mac[6];   /* L2: the target's MAC; GRE: next hop (or port gw) */
	bool has_mac;
};

/* How a worker walks a selection table for a new connection. */
enum fp_sel_mode {
	FP_SEL_SEQUENCE = 1, /* next entry per worker: (smooth) weighted round robin */
	FP_SEL_HASH = 2,     /* entry by 5-tuple hash: stable, stateless */
};

/* A client-subnet policy: SYNs from src/mask use their own selection. */
struct fp_policy_desc {
	uint32_t src, mask;
	const uint32_t *sel; /* target ids */
	uint32_t n_sel;
};

/* A service is one wildcard: VIP, port (0 = every port), protocol. */
struct fp_service_desc {
	uint32_t id;
	uint32_t vip;
	uint16_t port;
	uint8_t proto;       /* 6 TCP, 17 UDP */
	uint8_t sel_mode;    /* enum fp_sel_mode */
	const uint32_t *sel; /* target ids; empty: no ready target (RST by control) */
	uint32_t n_sel;
	const struct fp_policy_desc *policies;
	uint32_t n_policies;
	uint32_t idle_s; /* affinity idle TTL; 0 = fp_conf.aff_idle_s */
};

struct fp_tables_desc {
	const struct fp_target_desc *targets;
	uint32_t n_targets;
	const struct fp_service_desc *services;
	uint32_t n_services;
	/* Addresses the fast path answers ARP for on data ports, besides the
	 * ports' own: normally every VIP. ICMP echo is answered for VIPs. */
	const uint32_t *vips;
	uint32_t n_vips;
};

/*
 * Build a snapshot from *d (copied; d may be freed on return), publish it and
 * queue the previous one for freeing after a grace period. Returns -EINVAL
 * with *err naming the bad object, -ENOMEM, or 0. Context: control. Never
 * waits for workers: call fp_reclaim() from the event loop.
 */
int fp_publish(const struct fp_tables_desc *d, char *err, size_t errlen);

/* Free retired snapshots whose grace period has ended. Returns how many
 * remain queued. Context: control; non-blocking. */
unsigned fp_reclaim(void);

/* ---- affinities ---------------------------------------------------------- */

struct fp_affinity {
	struct fp_flow flow;
	uint32_t target;
	uint32_t idle_ms; /* since the last packet */
	uint32_t ttl_s;   /* idle TTL of this entry */
	uint16_t flags;   /* FP_AFF_F_* */
};

#define FP_AFF_F_WORKER 0x0001  /* inserted by a worker on SYN */
#define FP_AFF_F_CLOSING 0x0002 /* FIN or RST seen */
#define FP_AFF_F_CONTROL 0x0004 /* added by control (CASA fixed affinity) */

/* Add or replace a fixed affinity. -ENOSPC when the table is full.
 * Context: control (lock-free with respect to workers). */
int fp_affinity_add(const struct fp_flow *f, uint32_t target, uint32_t ttl_s);

/* Delete (CASA TTL 0). -ENOENT when absent. Context: control. */
int fp_affinity_del(const struct fp_flow *f);

/* Look one up without refreshing it (a look is not traffic): idle_ms is
 * the entry's true idle time. -ENOENT when absent. Context: control. */
int fp_affinity_find(const struct fp_flow *f, struct fp_affinity *out);

/*
 * Walk the table from *cursor (0 to start), calling fn for each affinity,
 * at most max entries. Returns the number visited; *cursor is 0 when the walk
 * is complete. fn returns non-zero to stop. Context: control. Entries
 * inserted or deleted during the walk may or may not be seen.
 */
unsigned fp_affinity_walk(uint64_t *cursor, unsigned max,
			  int (*fn)(const struct fp_affinity *a, void *arg), void *arg);

/* Delete expired entries among the next `buckets` buckets from *cursor.
 * Returns entries deleted. Context: control or tests; workers expire their
 * own slice in housekeeping. */
unsigned fp_affinity_expire(uint64_t *cursor, unsigned buckets);

struct fp_table_stats {
	uint64_t count, capacity, slots;
	uint64_t inserts, deletes, expiries, full;
	uint64_t mem_bytes;
};
/* Counters of the affinity table (approximate while workers run).
 * Context: control. */
void fp_affinity_stats(struct fp_table_stats *s);

/* ---- events (worker -> control) ----------------------------------------- */

enum fp_event_type {
	FP_EV_NEW_CONN = 1,  /* a worker placed a SYN: flow, service, target */
	FP_EV_INTEREST = 2,  /* a VIP packet with no affinity; carries the packet */
	FP_EV_ARP = 3,       /* an ARP packet not answered here (for neighbours) */
	FP_EV_NO_TARGET = 4, /* SYN for a service with no ready target; carries it */
};

/*
 * A typed event. Who frees: when pkt is set the event owns one packet
 * buffer, and the control thread must hand the event to exactly one of
 * fp_event_forward() or fp_event_release().
 */
struct fp_event {
	uint8_t type; /* enum fp_event_type */
	uint8_t worker;
	uint16_t in_port;
	uint8_t tcp_flags;
	uint32_t service; /* service id, FP_TARGET_NONE when unknown */
	uint32_t target;  /* FP_EV_NEW_CONN: the chosen target id */
	struct fp_flow flow;
	void *pkt; /* opaque; use fp_event_data() */
};

/* Dequeue up to max events. Context: control. */
unsigned fp_event_poll(struct fp_event *ev, unsigned max);

/* The carried frame (Ethernet onward) or NULL. Context: control. */
const uint8_t *fp_event_data(const struct fp_event *ev, uint32_t *len);

/* Forward the carried packet to target as a worker would (TTL decrement,
 * GRE or L2) on the control TX queue, and free it. Context: control. */
int fp_event_forward(struct fp_event *ev, uint32_t target);

/* Forward an IP packet (IPv4 header onward; an external FA's interest
 * packet) to target the same way, from a copy. Context: control. */
int fp_forward_ip(const void *ip, uint32_t len, uint32_t target);

/* Free the carried packet, if any. Context: control. */
void fp_event_release(struct fp_event *ev);

/* Transmit a frame built by control (RST, gratuitous ARP) on a data port,
 * through control's own TX queue. Context: control. */
int fp_tx_frame(uint16_t port, const void *frame, uint32_t len);

/* ---- statistics ------------------------------------------------------------ */

/* Per-worker counters. Verdict names come from fp_verdict_label(). */
#define FP_VERDICT_SLOTS 48
struct fp_worker_stats {
	uint64_t rx_pkts, rx_bytes, tx_pkts, tx_bytes;
	uint64_t loops, busy_loops;
	uint64_t events_lost; /* new-connection notices lost to a full ring */
	uint64_t verdict[FP_VERDICT_SLOTS];
};

/* Read worker w's counters (a consistent-enough copy; counters only grow).
 * Context: control. */
int fp_worker_stats_read(unsigned w, struct fp_worker_stats *out);

/* The number of verdicts and the name of each ("fwd_gre", "drop_ip_ihl"),
 * a static string; NULL past the end. Context: any. */
unsigned fp_verdict_count(void);
const char *fp_verdict_label(unsigned v);

/*
 * Zero what the displays count: from now on fp_worker_stats_read and the
 * event counters of fp_affinity_stats (inserts, deletes, expiries, full)
 * report what happened since this call. Nothing a worker writes is
 * touched: the readings subtract a baseline taken here, so workers never
 * race with it. Context: control.
 */
void fp_stats_clear(void);

/* ---- tracing ---------------------------------------------------------------- */

/* What a worker would do with a packet (fp_trace), step by step. */
enum fp_trace_step {
	FP_TRACE_NO_TABLES = 1, /* nothing published yet: dropped */
	FP_TRACE_NOT_VIP,       /* the destination is no VIP: dropped */
	FP_TRACE_NOT_L4,        /* a VIP, but neither TCP nor UDP: not balanced */
	FP_TRACE_AFFINITY,      /* an affinity holds the flow: forwarded to its target */
	FP_TRACE_NO_SERVICE,    /* a VIP with no service on this port: dropped */
	FP_TRACE_PLACE,         /* a new flow: the selection table picks the target */
	FP_TRACE_NO_TARGET,     /* a new flow, empty selection table: to control (RST) */
	FP_TRACE_INTEREST,      /* not a new flow and no affinity: to control (the SM) */
};

struct fp_trace {
	uint8_t step;        /* enum fp_trace_step */
	const char *verdict; /* the counter the packet would land in (a verdict label) */
	uint64_t generation; /* of the snapshot consulted; 0 when none */
	/* The service matched (every step from AFFINITY on, when one exists). */
	uint32_t service;      /* its published id; FP_TARGET_NONE: none */
	uint16_t service_port; /* 0: the every-port wildcard matched */
	uint32_t idle_s;       /* idle TTL a placement installs (0: the default) */
	/* PLACE and NO_TARGET: the selection table a SYN uses. */
	uint8_t sel_mode; /* enum fp_sel_mode */
	uint32_t sel_size;
	bool policy; /* a client-subnet policy's table, src/mask below */
	uint32_t policy_src, policy_mask;
	uint32_t sel_index; /* FP_SEL_HASH: the entry the 5-tuple picks */
	/* FP_SEL_SEQUENCE: each worker walks the table from its own position;
	 * next[w] is what worker w would pick now (RSS decides the worker). */
	uint32_t next[FP_WORKERS_MAX];
	unsigned n_workers;
	struct fp_affinity aff; /* AFFINITY: the entry, its idle time as it was */
	/* AFFINITY and PLACE: the target (for SEQUENCE, worker 0's pick) and how
	 * it is reached; target_known false: the snapshot lacks it (dropped). */
	uint32_t target;
	bool target_known;
	struct fp_target_desc dispatch;
};

/*
 * Trace flow f (client -> VIP) with TCP flags through the worker's steps
 * for a well-formed, unfragmented packet with TTL > 1, against the current
 * snapshot and affinity table. Changes nothing: no affinity is refreshed
 * or inserted and no round-robin position moves. Returns 0 (the answer is
 * in *out) or -EINVAL. Context: control.
 */
int fp_trace(const struct fp_flow *f, uint8_t tcp_flags, struct fp_trace *out);

/* MAC address of data port p. Context: control. */
int fp_port_mac(uint16_t p, uint8_t mac[6]);

#endif /* FASTPATH_H */
