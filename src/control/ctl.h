/*
 * ctl.h - the control room's contract (for now: the static configuration
 * that runs the fast path until the Service Manager exists).
 *
 * Context: the control thread. The loader allocates; ctl_conf_free frees.
 */
#ifndef CTL_H
#define CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "fastpath.h"

#define CTL_NAME_MAX 32
#define CTL_PORTS_PER_SERVICE 64
#define CTL_HASH_SLOTS 1024 /* selection table of a "hash" service */

enum ctl_method {
	CTL_METHOD_WRR = 1,       /* smooth weighted round robin, cycles shuffled */
	CTL_METHOD_RR = 2,        /* every target once, in turn (cycles shuffled) */
	CTL_METHOD_HASH = 3,      /* weighted, by 5-tuple hash */
	CTL_METHOD_LEASTCONN = 4, /* fewest active connections per unit of weight */
	CTL_METHOD_RANDOM = 5     /* weighted random */
};

#define CTL_POLICIES_MAX 16    /* client-subnet policies per service */
#define CTL_FA_PREFIXES_MAX 16 /* accepted forwarding-agent prefixes */

enum ctl_role { CTL_ROLE_SM = 0x1, CTL_ROLE_FA = 0x2 };

/* A client-subnet policy (seed 5.x "policy"): SYNs from src/mask are placed
 * only on these targets (still subject to readiness and health). */
struct ctl_policy {
	uint32_t src, mask;
	uint32_t targets[FP_TARGETS_MAX]; /* indexes into ctl_conf.targets */
	unsigned n_targets;
	int line;
};

/* The Service Manager (design.md section 1; casa-protocol.md 7.1). */
struct ctl_sm_conf {
	uint32_t addr;                /* CASA control address: interest address, mcast source */
	uint32_t group;               /* multicast group, default 224.0.1.2 */
	uint16_t port;                /* CASA UDP port, default 1637 */
	uint32_t wildcard_interval_s; /* 30 */
	uint32_t wildcard_ttl_s;      /* 60 */
	uint32_t fixed_ttl_s;         /* 900 */
	uint8_t ip_ttl;               /* multicast IP TTL, 1 */
	uint8_t mode;                 /* enum casa_mode values: 0 strict, 1 extended */
	uint8_t auth_alg;             /* 0 none, 1 hmac-md5, 2 hmac-sha256 */
	uint8_t key_id;
	char key_file[256];   /* the key: first line of the file, 1..64 octets */
	uint32_t rollover_s;  /* 180 */
	uint32_t freshness_s; /* 120; 0 = off */
	struct {
		uint32_t addr, mask;
	} fa_prefixes[CTL_FA_PREFIXES_MAX]; /* interest accepted from; none = any */
	unsigned n_fa_prefixes;
	uint32_t connections;      /* VCRT capacity */
	uint32_t weight_refresh_s; /* 60 */
	uint32_t reset_rate;       /* fast connection resets per second (token bucket) */
	uint32_t fa_max;           /* forwarding agents tracked */
};

/* The agent protocol server (docs/agent-protocol.md). */
struct ctl_agent_conf {
	uint32_t addr;        /* listen address, default: service_manager.address */
	uint16_t port;        /* 1638 */
	uint32_t keepalive_s; /* 5 */
	uint32_t timeout_s;   /* 15: silence that marks the target down */
	uint32_t max;         /* agent sessions, default 256 */
	bool required;        /* false: a target without an agent counts as ready */
};

/* Ranked backups (the HA issue). rank 0 = primary. */
struct ctl_backup_conf {
	uint8_t rank;            /* 0 primary, 1..254 backup */
	bool takeback_immediate; /* "immediate" (true) or "when-idle" */
};

struct ctl_listener_conf {
	bool enabled;
	uint32_t addr;
	uint16_t port;
};

#define CTL_SECRET_MAX 128 /* console passwords: 1..127 octets */
#define CTL_CONSOLE_SESSIONS_MAX 32
#define CTL_WEIGHT_MAX 1000000 /* a target's configured weight */

/* Who may use the admin console (docs/console.md). A password comes from
 * the file (its first line) or inline; "" means none: allowed only on a
 * loopback address. Never printed: -n -v shows "********" or the file. */
struct ctl_console_conf {
	char password[CTL_SECRET_MAX];
	char password_file[256];
	char enable_password[CTL_SECRET_MAX]; /* "": see docs/console.md */
	char enable_password_file[256];
	uint32_t sessions;       /* concurrent sessions, default 4 */
	uint32_t idle_timeout_s; /* default 600; 0: never */
};

struct ctl_target {
	char name[CTL_NAME_MAX];
	struct fp_target_desc fp; /* id = index in ctl_conf.targets */
	uint32_t addr;            /* dispatch address (XCF-like): default tunnel */
	uint32_t weight;
	int line;
};

struct ctl_service {
	char name[CTL_NAME_MAX];
	uint32_t vip;
	uint8_t proto;
	uint16_t ports[CTL_PORTS_PER_SERVICE];
	unsigned n_ports;
	enum ctl_method method;
	uint32_t targets[FP_TARGETS_MAX]; /* indexes into ctl_conf.targets */
	unsigned n_targets;
	struct ctl_policy *policies; /* n_policies of them, owned */
	unsigned n_policies;
	uint32_t idle_s;
	int line;
};

struct ctl_conf {
	char file[256];
	unsigned roles; /* ctl_role bits; default both */
	struct fp_conf fp;
	struct ctl_sm_conf sm;
	struct ctl_agent_conf agents;
	struct ctl_backup_conf backup;
	struct ctl_listener_conf console; /* default 127.0.0.1:2323 */
	struct ctl_console_conf console_access;
	struct ctl_listener_conf metrics; /* default 127.0.0.1:9637 */
	struct ctl_target *targets;
	unsigned n_targets;
	struct ctl_service *services;
	unsigned n_services;
};

/*
 * Read and check FILE. Every problem is written to errs as one line
 * "file:line: object \"name\": what is wrong"; returns the number of
 * problems (0: *c is complete). On errors *c is freed.
 */
int ctl_conf_load(const char *file, struct ctl_conf *c, FILE *errs);

/* The same from text in memory (NUL-terminated), reported as `name`. */
int ctl_conf_load_text(const char *text, const char *name, struct ctl_conf *c, FILE *errs);
void ctl_conf_free(struct ctl_conf *c);

/* Print the normalised configuration (casalb -n -v). */
void ctl_conf_print(const struct ctl_conf *c, FILE *out);

/*
 * Build the fast-path tables for c: one fp_service_desc per service port,
 * selection tables from the weights. The result points into storage owned
 * by *d's allocation; free with ctl_tables_free.
 */
int ctl_tables_build(const struct ctl_conf *c, struct fp_tables_desc *d);
void ctl_tables_free(struct fp_tables_desc *d);

/* Smooth weighted round robin over weights w[0..n): writes the sequence of
 * indexes (length sum of weights, scaled to fit max) to out; returns its
 * length. Each index i appears in proportion to w[i], spread evenly. */
uint32_t ctl_select_swrr(const uint32_t *w, unsigned n, uint32_t *out, uint32_t max);

/*
 * The Service Manager's effective weight of a target (design.md section 1:
 * WLM weight and QoS fraction): configured weight x capacity (0..64, as
 * reported by the target's agent) x (1 - qos_fraction), rounded to the
 * nearest integer; 0 for a target that is not ready or not healthy.
 */
uint32_t ctl_select_effective(uint32_t configured, uint32_t capacity, double qos_fraction,
			      bool ready, bool healthy);

/*
 * Slot quotas of a table of `size` slots for weights w[0..n): proportional,
 * largest remainder first, summing to size; every positive weight gets at
 * least one slot when size allows. Returns -1 when every weight is 0.
 */
int ctl_select_quotas(const uint32_t *w, unsigned n, uint32_t size, uint32_t *quota);

/*
 * (Re)build a fixed-size selection table table[0..size) of indexes into
 * w[0..n) with minimal churn: with have_prev, a slot keeps its index while
 * that index's quota allows, so when one weight changes only slots moving
 * to or from that index change; freed slots are filled in smooth weighted
 * round-robin order. Returns the number of slots that changed, or -1 when
 * every weight is 0 (the table is left as it was). Context: control.
 */
int64_t ctl_select_rebuild(uint32_t *table, uint32_t size, bool have_prev, const uint32_t *w,
			   unsigned n);

/* ---- the Service Manager core (ctl_sm.c) --------------------------------------
 *
 * The SM's state without any I/O: runtime targets (agent liveness, load),
 * the DPT (per service port and target: Rdy, connections, weights), the
 * VCRT (5-tuple -> target), placement by method, selection tables for the
 * workers, and the queue of affinity deletes to multicast. The event loop
 * (casalb.c) feeds it messages and timers and carries out what it asks
 * (publish, multicast deletes). It calls fastpath.h's affinity functions
 * directly for the local forwarding agent (the workers).
 *
 * A "service port" (sp) is one (service, port) pair: the fast path's
 * service id and one CASA wildcard. Context: control thread only.
 */
struct ctl_sm;

enum ctl_interest {
	CTL_INT_NEW = 0,    /* SYN placed: forward to *target, send FIXED */
	CTL_INT_KNOWN,      /* VCRT hit: forward to *target, send FIXED */
	CTL_INT_RESET,      /* no target holds it: fast connection reset */
	CTL_INT_NO_SERVICE, /* matches no wildcard we advertise: drop */
	CTL_INT_NO_TARGET,  /* SYN, no ready target: reset */
	CTL_INT_FULL,       /* VCRT full: drop the SYN */
	CTL_INT__COUNT
};

struct ctl_sm_counters {
	uint64_t interest[CTL_INT__COUNT];
	uint64_t worker_conns; /* new-connection notices from workers */
	uint64_t conn_ends;    /* connections removed on an agent's report */
	uint64_t conn_end_unknown;
	uint64_t resync_added, resync_removed;
	uint64_t deletes_queued, deletes_lost; /* lost: the delete queue was full */
	uint64_t targets_down;                 /* transitions to down */
	uint64_t weight_refreshes, publishes;
	uint64_t vcrt_full;
	uint64_t withdraws_lost; /* a deleted port's TTL-0 wildcard did not fit */
};

/* One DPT row (netstat VDPT): a service port's target. */
struct ctl_dpt_row {
	uint32_t sp, target;
	uint32_t service; /* index into the configuration's services, live */
	uint32_t vip;
	uint16_t port;
	uint8_t proto;
	uint32_t rdy;
	uint64_t total_conn;
	uint64_t active;
	uint8_t capacity;   /* WLM-like 0..64, as applied */
	double qos;         /* fraction 0..1, as applied */
	uint32_t weight;    /* configured (live: the console may change it) */
	uint32_t effective; /* as used for placement */
	bool healthy;
	bool quiesced; /* the operator stopped new connections to it */
};

/* One VCRT row (netstat VCRT). */
struct ctl_conn_row {
	struct fp_flow flow;
	uint32_t target, sp;
	uint32_t fa; /* address of the FA that asked, 0 = local workers */
	uint64_t created_ms, last_ms;
};

/* Create from a checked configuration (kept by pointer: it must outlive sm).
 * now_ms: monotonic clock. NULL and errno on failure. Allocates. */
struct ctl_sm *ctl_sm_create(const struct ctl_conf *c, uint64_t now_ms);
void ctl_sm_destroy(struct ctl_sm *sm);
const struct ctl_sm_counters *ctl_sm_counters(const struct ctl_sm *sm);

/* The service port of a flow's destination (VIP, port, protocol), or -1. */
int ctl_sm_sp_find(const struct ctl_sm *sm, uint32_t vip, uint16_t port, uint8_t proto);
unsigned ctl_sm_sp_count(const struct ctl_sm *sm);
/* The wildcard of service port sp (spec 6.1): dst VIP/port/protocol. */
int ctl_sm_sp_get(const struct ctl_sm *sm, unsigned sp, uint32_t *vip, uint16_t *port,
		  uint8_t *proto, unsigned *service);

/*
 * An interest packet's flow (client -> VIP) with its TCP flags, from the FA
 * at fa_addr (0: our own workers). A SYN is placed and recorded; another
 * packet is looked up. *target is set for NEW and KNOWN.
 */
enum ctl_interest ctl_sm_interest(struct ctl_sm *sm, const struct fp_flow *f, uint8_t tcp_flags,
				  uint32_t fa_addr, uint64_t now_ms, uint32_t *target);
const char *ctl_sm_interest_name(enum ctl_interest v);

/* Pick a target for a new flow of sp without recording it (FP_TARGET_NONE
 * when no candidate). Advances the method's state. */
uint32_t ctl_sm_place(struct ctl_sm *sm, unsigned sp, const struct fp_flow *f);

/* A worker placed a SYN (FP_EV_NEW_CONN): record it. */
void ctl_sm_conn_new(struct ctl_sm *sm, const struct fp_flow *f, uint32_t target, uint64_t now_ms);

/* A target's agent reports a connection ended: remove it from the VCRT,
 * delete the local affinity and queue a multicast delete. false: unknown. */
bool ctl_sm_conn_end(struct ctl_sm *sm, uint32_t target, const struct fp_flow *f);

/* Look up a connection. false when absent. */
bool ctl_sm_conn_find(const struct ctl_sm *sm, const struct fp_flow *f, struct ctl_conn_row *out);
uint64_t ctl_sm_conn_count(const struct ctl_sm *sm);

/* Agents (docs/agent-protocol.md). register returns a casa_agent_status
 * value and the target id; ready/load/resync apply to that target. */
int ctl_sm_agent_register(struct ctl_sm *sm, const char *name, uint32_t *target);
void ctl_sm_agent_ready(struct ctl_sm *sm, uint32_t target, uint32_t vip, uint16_t port,
			uint8_t proto, uint32_t rdy);
void ctl_sm_agent_load(struct ctl_sm *sm, uint32_t target, uint8_t capacity, uint16_t qos);
/* The agent's session ended (closed, silent): the target stays as it is
 * until the agents timeout passes, then it is marked down. */
void ctl_sm_agent_lost(struct ctl_sm *sm, uint32_t target, uint64_t now_ms);
void ctl_sm_resync_begin(struct ctl_sm *sm, uint32_t target, uint32_t resync_id, uint64_t now_ms);
void ctl_sm_resync_conn(struct ctl_sm *sm, uint32_t target, const struct fp_flow *f,
			uint64_t now_ms);
/* LAST chunk: connections of target not listed since begin are removed,
 * except those placed less than 2 s before begin (their SYN may not have
 * reached the target when the agent took its table). */
void ctl_sm_resync_end(struct ctl_sm *sm, uint32_t target, uint32_t resync_id);
/* The VIP ports target serves (for SERVICES), draining ones included while
 * they have connections: writes up to max, returns n. */
unsigned ctl_sm_target_services(const struct ctl_sm *sm, uint32_t target, struct fp_flow *out,
				unsigned max);
bool ctl_sm_target_up(const struct ctl_sm *sm, uint32_t target);

/* Timers: weight refresh, agent timeouts, least-connections tables. */
void ctl_sm_tick(struct ctl_sm *sm, uint64_t now_ms);

/* True when the workers' tables need publishing; ctl_sm_tables builds them
 * (free with ctl_tables_free) and clears the flag. */
bool ctl_sm_tables_dirty(const struct ctl_sm *sm);
int ctl_sm_tables(struct ctl_sm *sm, struct fp_tables_desc *d);

/* Drain queued affinity deletes (flows and the targets they had), up to
 * max. */
unsigned ctl_sm_deletes_take(struct ctl_sm *sm, struct fp_flow *out, uint32_t *targets,
			     unsigned max);

/* Displays: DPT rows and VCRT rows (walk from *cursor, 0 to start; 0 when
 * done). fn returns non-zero to stop. */
unsigned ctl_sm_dpt_rows(struct ctl_sm *sm, struct ctl_dpt_row *out, unsigned max);
/* How many DPT rows there are (the size ctl_sm_dpt_rows needs). */
unsigned ctl_sm_dpt_count(const struct ctl_sm *sm);
unsigned ctl_sm_conn_walk(const struct ctl_sm *sm, uint64_t *cursor, unsigned max,
			  int (*fn)(const struct ctl_conn_row *r, void *arg), void *arg);

/*
 * Live changes (the console, a reload). The configuration the SM points to
 * is never written; the SM keeps what changed on top of it: the ports each
 * service distributes, each target's configured weight, quiesced targets.
 * Each change takes effect at once (tables dirty, wildcards and SERVICES
 * re-sent). Context: control.
 *
 * port_add: service (index into c->services) distributes port too. 0,
 * -ENOENT (no such service), -EEXIST, -EADDRINUSE (another service has
 * that VIP, port and protocol), -EBUSY (another service deleted it but its
 * connections still drain), -ENOSPC (CTL_PORTS_PER_SERVICE per service or
 * FP_SERVICES_MAX published in all, draining ones included), -ENOMEM.
 * port_del: no new connection on it and its wildcard is withdrawn (TTL 0),
 * while connections in the VCRT keep working until they end (seed 5.6.4:
 * "existing connections are maintained"). -ENOENT, -EBUSY (the service's
 * last port: a service has one at least, as in the file).
 */
int ctl_sm_port_add(struct ctl_sm *sm, unsigned service, uint16_t port);
int ctl_sm_port_del(struct ctl_sm *sm, unsigned service, uint16_t port);
/* The ports service distributes now, in order; returns how many (<= max). */
unsigned ctl_sm_service_ports(const struct ctl_sm *sm, unsigned service, uint16_t *ports,
			      unsigned max);
/* Quiesce target (no new connections, existing ones drain; seed 5.6.5) or
 * resume it. 0 or -ENOENT. */
int ctl_sm_target_quiesce(struct ctl_sm *sm, uint32_t target, bool quiesce);
/* Set target's configured weight (0..CTL_WEIGHT_MAX). -ENOENT, -ERANGE. */
int ctl_sm_weight_set(struct ctl_sm *sm, uint32_t target, uint32_t weight);

/* A target as the displays show it. */
struct ctl_target_row {
	uint32_t weight; /* configured, live */
	bool quiesced, healthy, agent_live, registered_once;
	uint8_t capacity; /* as applied */
	double qos;       /* as applied */
	uint64_t active;  /* its connections in the VCRT */
};
int ctl_sm_target_get(const struct ctl_sm *sm, uint32_t target, struct ctl_target_row *out);

/* Zero the SM's counters and the DPT's TotalConn (clear counters). */
void ctl_sm_counters_clear(struct ctl_sm *sm);

/* Service port sp is distributed now (false: withdrawn, draining). */
bool ctl_sm_sp_active(const struct ctl_sm *sm, unsigned sp);
/* Connections in the VCRT on sp. */
uint64_t ctl_sm_sp_conns(const struct ctl_sm *sm, unsigned sp);
/* Changes whenever the set of active service ports changes: CASA then
 * advertises again, the agent server re-sends SERVICES. */
uint64_t ctl_sm_sp_generation(const struct ctl_sm *sm);
/* Wildcards of deleted ports to withdraw (dst, dport, proto), up to max. */
unsigned ctl_sm_withdrawn_take(struct ctl_sm *sm, struct fp_flow *out, unsigned max);

/* ---- fast connection reset (ctl_rst.c) ------------------------------------------ */

/*
 * The RST (IPv4 + TCP, 40 bytes, from the VIP) answering the TCP segment
 * ip[0..len) sent client -> VIP, per RFC 793 "Reset Generation". Returns
 * 40, or 0 when no reset is due (not TCP, a fragment, malformed, or itself
 * a RST) or cap is under 40.
 */
size_t ctl_rst_build(const uint8_t *ip, size_t len, uint8_t *out, size_t cap);

/* A token bucket: `rate` per second, bursts up to one second's worth. */
struct ctl_rate {
	double tokens;
	uint64_t last_ms;
	uint32_t rate; /* 0: never */
};
bool ctl_rate_take(struct ctl_rate *r, uint64_t now_ms);

/* ---- the CASA endpoint (ctl_casa.c) ------------------------------------------------ */

struct ctl_casa;
struct casa_auth_ctx;
struct casa_signer;
struct fp_event;

#define CTL_FA_STATS 20 /* counter ids 1..19 of casa-protocol.md 6.7 */

/* A forwarding agent known from its hellos (show ip casa oper, SM side). */
struct ctl_fa_row {
	uint32_t sender_id, addr, epoch, caps;
	uint16_t port, hold_s;
	char name[65];
	uint64_t last_hello_ms, last_stats_ms, hellos;
	uint64_t stats[CTL_FA_STATS]; /* the FA's last report, by counter id */
};

/* Received messages counted by type: index i of rx_types is the type
 * ctl_casa_rx_label(i) names ("wildcard", ..., "other"). */
#define CTL_CASA_RX_TYPES 8

struct ctl_casa_counters {
	uint64_t rx, drops[32];               /* drops by enum casa_err (decode and auth) */
	uint64_t rx_types[CTL_CASA_RX_TYPES]; /* accepted messages (rx) by type */
	uint64_t wildcards_sent, fixed_sent, deletes_sent, hello_acks_sent, tx_errors;
	uint64_t interest_denied, interest_unparsable, forward_errors, affinity_full;
	uint64_t resets_sent, resets_limited;
	uint64_t local_interest, local_other;
	uint64_t tickles, tickle_closing, peer_sm_msgs, unexpected;
	uint64_t fa_full, fa_expired, hello_stale, stats_unknown;
	uint64_t wildcard_deletes_sent; /* TTL-0 wildcards of deleted ports */
};

/* Open the CASA socket (bound to sm.addr:sm.port; multicast from sm.addr
 * with sm.ip_ttl) and load the key. NULL with *err on failure. */
struct ctl_casa *ctl_casa_create(const struct ctl_conf *c, struct ctl_sm *sm, uint64_t now_ms,
				 uint32_t wall, char *err, size_t errlen);
void ctl_casa_destroy(struct ctl_casa *x);
int ctl_casa_fd(const struct ctl_casa *x);

/* Receive and handle up to a bounded number of datagrams. */
void ctl_casa_input(struct ctl_casa *x, uint64_t now_ms, uint32_t wall);
/* One message from src:sport (tests call this directly). 0 or -casa_err. */
int ctl_casa_handle(struct ctl_casa *x, const uint8_t *buf, size_t len, uint32_t src,
		    uint16_t sport, uint64_t now_ms, uint32_t wall);
/* Send what is batched (ctl_casa_input and ctl_casa_tick do it; callers
 * of ctl_casa_handle and ctl_casa_local_event must). */
void ctl_casa_flush(struct ctl_casa *x);
/* A worker event (NEW_CONN, INTEREST, NO_TARGET, ARP); releases it. */
void ctl_casa_local_event(struct ctl_casa *x, struct fp_event *ev, uint64_t now_ms);
/* Timers: wildcards (due or periodic), queued deletes, FA hold times. */
void ctl_casa_tick(struct ctl_casa *x, uint64_t now_ms, uint32_t wall);
void ctl_casa_wildcards_now(struct ctl_casa *x);

const struct ctl_casa_counters *ctl_casa_counters(const struct ctl_casa *x);
/* Zero them (clear counters); the FA registry is kept. */
void ctl_casa_counters_clear(struct ctl_casa *x);
/* The metric label of rx_types[i] (a static string); NULL past the end. */
const char *ctl_casa_rx_label(unsigned i);
unsigned ctl_casa_fas(const struct ctl_casa *x, const struct ctl_fa_row **rows);
/* The authentication context and signer (the agent server shares them). */
struct casa_auth_ctx *ctl_casa_auth(struct ctl_casa *x);
struct casa_signer *ctl_casa_signer(struct ctl_casa *x);

/* ---- the agent protocol server (ctl_agent.c) ---------------------------------------- */

struct ctl_agent;

struct ctl_agent_counters {
	uint64_t accepted, closed, refused_full, registered, refused, timeouts;
	uint64_t msgs_sent, tx_errors, tx_overflow, framing_errors, protocol_errors;
	uint64_t keepalives, drops[32]; /* drops by enum casa_err */
};

struct ctl_agent_row {
	uint32_t addr;
	uint16_t port;
	bool registered;
	uint32_t target, sender_id;
	uint64_t last_rx_ms, msgs, drops;
};

/* Listen on agents.addr:agents.port. auth and signer are shared with the
 * CASA endpoint (one sender identity, one replay table). */
struct ctl_agent *ctl_agent_create(const struct ctl_conf *c, struct ctl_sm *sm,
				   struct casa_auth_ctx *auth, struct casa_signer *signer,
				   uint32_t epoch, char *err, size_t errlen);
void ctl_agent_destroy(struct ctl_agent *a);
/* A descriptor that polls readable when ctl_agent_run has work. */
int ctl_agent_fd(const struct ctl_agent *a);
/* Accept, read and write a bounded number of events; never blocks. */
void ctl_agent_run(struct ctl_agent *a, uint64_t now_ms, uint32_t wall);
/* Keepalives out, silent sessions closed (their targets down). */
void ctl_agent_tick(struct ctl_agent *a, uint64_t now_ms, uint32_t wall);
const struct ctl_agent_counters *ctl_agent_counters(const struct ctl_agent *a);
void ctl_agent_counters_clear(struct ctl_agent *a);
unsigned ctl_agent_sessions(const struct ctl_agent *a, struct ctl_agent_row *out, unsigned max);

/* ---- output sink (ctl_out.c) ------------------------------------------------------ */

#define CTL_OUT_LIMIT (16u << 20) /* default cap on one display's text */

/* Console handlers and the metrics renderer write text here, never to a
 * socket, so tests call them and compare text. Past `limit` bytes (or when
 * memory runs out) the text ends with one "... (output truncated)" line.
 * The sink allocates; ctl_out_free frees. Not thread-safe. */
struct ctl_out {
	char *buf;
	size_t len, cap, limit;
	bool truncated;
};

void ctl_out_init(struct ctl_out *o, size_t limit); /* 0: CTL_OUT_LIMIT */
void ctl_out_free(struct ctl_out *o);
void ctl_out_reset(struct ctl_out *o); /* empty it, keep the memory */
void ctl_out_printf(struct ctl_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ctl_out_vprintf(struct ctl_out *o, const char *fmt, va_list ap);
const char *ctl_out_text(const struct ctl_out *o); /* NUL-terminated, never NULL */

/* ---- the displays' snapshot (ctl_snap.c) ------------------------------------------ */

/* The running appliance as the displays see it. Any pointer but c may be
 * NULL (tests; roles without that part). */
struct ctl_view {
	const struct ctl_conf *c;
	struct ctl_sm *sm;
	struct ctl_casa *casa;
	struct ctl_agent *agent;
	uint64_t started_ms; /* monotonic, at start */
};

/* One consistent copy of the counters and rows every display shows, taken
 * on the control thread between events: the console and the metrics
 * endpoint render from it, so they agree. Allocates; ctl_snap_free frees. */
struct ctl_snap {
	uint64_t taken_ms, uptime_ms;
	unsigned roles; /* ctl_role bits */
	uint8_t rank;   /* backup rank, 0 = primary */
	struct ctl_sm_counters sm;
	struct ctl_casa_counters casa;
	struct ctl_agent_counters agent;
	uint64_t vcrt_count;
	uint32_t vcrt_capacity;
	struct fp_table_stats aff;
	struct ctl_dpt_row *dpt;
	unsigned n_dpt;
	struct ctl_fa_row *fas;
	unsigned n_fas;
	struct ctl_agent_row *agents;
	unsigned n_agents;
	struct fp_worker_stats *workers;
	unsigned n_workers;
};

/* 0 or -ENOMEM (*s is then empty). Context: control. */
int ctl_snap_collect(const struct ctl_view *v, uint64_t now_ms, struct ctl_snap *s);
void ctl_snap_free(struct ctl_snap *s);

/* ---- the admin console (ctl_console.c) and metrics endpoint (ctl_metrics.c) ------- */

struct ctl_console;
struct ctl_metrics;

/* Listen on the configured console / metrics address (nothing when the
 * listener is disabled). v must outlive the object; handlers read and
 * change the running appliance through it on the control thread only.
 * NULL with *err on failure. */
/*
 * The console (docs/console.md): libcli sessions, one thread each (at most
 * console.sessions), that never touch the appliance: their commands are
 * queued and run by ctl_console_run on the control thread. create refuses
 * a console off loopback without a password ("console A:P: ..." in *err).
 * destroy releases waiting sessions, shuts their sockets down and joins
 * their threads; destroy(NULL) does nothing.
 */
struct ctl_console *ctl_console_create(struct ctl_view *v, char *err, size_t errlen);
void ctl_console_destroy(struct ctl_console *k);
/* An epoll descriptor (listener, wake-ups, a 1 s timer) that polls
 * readable when ctl_console_run has work; -1: none (disabled). */
int ctl_console_fd(const struct ctl_console *k);
/* Do the pending work (accept, run queued commands, reap ended sessions,
 * close slow logins); never blocks. */
void ctl_console_run(struct ctl_console *k, uint64_t now_ms);

/* ---- console commands (ctl_cmd.c, displays in ctl_show.c) -------------------------
 *
 * Commands are rows of one table (style.md habit 10): words, arguments,
 * help, whether they need the enable level, and a handler that writes to a
 * ctl_out, never to a socket. ctl_cmd_exec parses a line against the same
 * table the console registers with libcli, so tests and the fuzzer run
 * exactly what a session runs. docs/console.md lists every command.
 */
struct ctl_cmd_ctx;

struct ctl_cmd {
	const char *words; /* "show vcrt" */
	const char *args;  /* "[detail] [vip A.B.C.D] [limit N]", "" */
	const char *help;
	bool privileged; /* a change: needs the enable level */
	int (*handler)(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);
};

/* The table (static): *rows and the number of rows. */
unsigned ctl_cmd_table(const struct ctl_cmd **rows);

/* Who runs a command. */
struct ctl_cmd_origin {
	const char *who; /* named in the change log; NULL: "console" */
	bool enabled;    /* the enable (privileged) level */
	FILE *log;       /* each change is logged here in one line; NULL: stderr */
};

/*
 * Run one command line: words matched by unique prefix against the table,
 * then the row's handler with the remaining words. Output, or one line
 * "% why" for bad input, goes to out. Returns 0, -EINVAL (bad input),
 * -EPERM (needs enable), -ENOENT (no such object), or the handler's -errno.
 * Bounded work: long tables are shown up to a limit. Context: control.
 */
int ctl_cmd_exec(struct ctl_view *v, const char *line, const struct ctl_cmd_origin *o,
		 uint64_t now_ms, struct ctl_out *out);

/*
 * The Prometheus endpoint (docs/metrics.md): GET /metrics on the metrics
 * listener answers the text exposition format 0.0.4 rendered from a fresh
 * ctl_snap. libmicrohttpd runs in external mode on the control thread (no
 * thread of its own), so a scrape reads state between events without locks
 * and never waits for a worker. create: NULL with one line in *err ("metrics
 * 127.0.0.1:9637: Address already in use"); with the listener disabled it
 * returns an object whose fd is -1. destroy(NULL) does nothing.
 */
struct ctl_metrics *ctl_metrics_create(struct ctl_view *v, char *err, size_t errlen);
void ctl_metrics_destroy(struct ctl_metrics *m);
/* libmicrohttpd's epoll descriptor: readable when ctl_metrics_run has
 * network work; -1 when the listener is disabled. */
int ctl_metrics_fd(const struct ctl_metrics *m);
/* True when ctl_metrics_run must run although its fd is quiet: a connection
 * has timed out or libmicrohttpd left work for the next call. */
bool ctl_metrics_due(const struct ctl_metrics *m, uint64_t now_ms);
/* Accept, read, answer and time out connections; never blocks. */
void ctl_metrics_run(struct ctl_metrics *m, uint64_t now_ms);

/* Write the exposition text of snapshot s (with c's service and target
 * names) to out. Pure: no I/O, no clock. Context: any thread owning s. */
void ctl_metrics_render(const struct ctl_snap *s, const struct ctl_conf *c, struct ctl_out *out);

#endif /* CTL_H */
