/*
 * agent.h - the target host's agent (casalb-agent): the contract of the
 * agent room. This first part holds what the agent measures on its host
 * and reports to the Service Manager (docs/agent-protocol.md, LOAD and
 * READY), as plain functions over the kernel's own interfaces:
 *
 *  - capacity weight 0..64 (design.md: the WLM weight) from CPU idle time
 *    (/proc/stat) and CPU pressure (/proc/pressure/cpu, PSI "some avg10");
 *  - the QoS fraction (the seeds' W/Q, here "how unhealthy is TCP") from
 *    TCP retransmissions and retransmission time-outs (/proc/net/snmp,
 *    /proc/net/netstat);
 *  - readiness (Rdy): listening TCP sockets that accept VIP:port, bound to
 *    the VIP or to the wildcard address, found through sock_diag netlink.
 *
 * Parsers take the file's text, so tests feed them fixtures. Room: libc,
 * casa.h and libbpf only. Functions return 0 or -errno unless they say
 * otherwise; none allocates or keeps state.
 *
 * The second part (agent_gre.c) decapsulates the LB's GRE on this host
 * with a tc ingress BPF program; see its section below.
 */
#ifndef AGENT_H
#define AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent_gre.h"
#include "casa.h"

/*
 * The Service Managers to try, in order: the primary first, then its
 * backups (-s A,B or -s A -s B). Adds the comma-separated IPv4 addresses of
 * text to list (n entries, at most max), skipping ones already there.
 * 0, -EINVAL for an empty or bad address (0.0.0.0 included), -E2BIG past max.
 */
#define AGENT_SMS_MAX 8
int agent_sm_list_add(const char *text, uint32_t *list, unsigned *n, unsigned max);

/* Aggregate CPU time from /proc/stat's "cpu " line, in clock ticks. */
struct agent_cpu_sample {
	uint64_t idle;  /* idle + iowait */
	uint64_t total; /* every field */
};

/* Parse the "cpu " line of /proc/stat text. -EINVAL when absent. */
int agent_cpu_parse(const char *proc_stat, struct agent_cpu_sample *out);

/* Parse "some avg10=X" of /proc/pressure/cpu text: the share of the last
 * 10 s in which some task waited for a CPU, in percent (0..100). */
int agent_psi_parse(const char *pressure_cpu, double *some_avg10);

/*
 * A target in its own cgroup (v2: cpu.stat, cpu.max, cpu.pressure of that
 * directory) measures its share of the host instead of the whole host:
 * usage_usec from cpu.stat; the allowance in CPUs from cpu.max ("max
 * PERIOD" or "QUOTA PERIOD"; unlimited or unreadable: ncpu). The sample
 * makes the cgroup look like a host of `allowance` CPUs: total = allowance
 * x the monotonic clock, idle = total - usage, both in microseconds, so
 * agent_capacity applies unchanged.
 */
int agent_cgroup_usage_parse(const char *cpu_stat, uint64_t *usage_usec);
double agent_cgroup_allowance(const char *cpu_max, unsigned ncpu);
void agent_cgroup_sample(uint64_t usage_usec, uint64_t mono_usec, double allowance,
			 struct agent_cpu_sample *out);

/*
 * Capacity weight 0..64 between two samples: 64 x idle share x (1 -
 * pressure share). A host with no time elapsed between the samples (or no
 * sample yet) reports full capacity. A busy host reports 0 only when it is
 * both fully busy and fully pressed; otherwise at least 1, so an idle
 * share too small to round keeps the target in rotation at a trickle.
 */
uint8_t agent_capacity(const struct agent_cpu_sample *prev, const struct agent_cpu_sample *now,
		       double psi_some_avg10);

/* TCP counters: OutSegs and RetransSegs of /proc/net/snmp's "Tcp:" lines,
 * TCPTimeouts of /proc/net/netstat's "TcpExt:" lines (0 when absent). */
struct agent_tcp_sample {
	uint64_t out_segs, retrans_segs, timeouts;
};
int agent_tcp_parse(const char *snmp, const char *netstat, struct agent_tcp_sample *out);

/*
 * The QoS fraction between two samples, x 10000 (CASA_AGENT_QOS_ONE):
 * (retransmitted segments + 4 x time-outs) / segments sent, scaled so that
 * 10 % retransmission means fully unhealthy (10000). No traffic: 0.
 */
uint16_t agent_qos(const struct agent_tcp_sample *prev, const struct agent_tcp_sample *now);

/*
 * Sockets in this network namespace that accept vip:port (host order) of
 * protocol: listening TCP sockets, or unconnected UDP sockets, bound to
 * vip or to 0.0.0.0, with that port (any port when port is 0, a service
 * of every port). Returns the count (Rdy), or -errno when sock_diag fails
 * (-EPROTONOSUPPORT for a protocol other than TCP and UDP).
 */
int agent_listeners(uint32_t vip, uint16_t port, uint8_t protocol);

/*
 * The TCP connections this host holds on served VIP ports (local address
 * and port = a VIP:port of svc[0..n_svc)), through sock_diag: up to max
 * into out, state ESTABLISHED or CLOSING. Returns the count or -errno.
 */
int agent_conns(const struct casa_agent_service *svc, unsigned n_svc, struct casa_agent_conn *out,
		unsigned max);

/* Sort a connection table by its 5-tuple, as agent_conns_ended needs. */
void agent_conns_sort(struct casa_agent_conn *conns, unsigned n);

/* The connections of before[] that are not in now[] (they ended), up to
 * max into ended, state CASA_AGENT_END_CLOSED. Returns the count. Both
 * tables sorted (agent_conns_sort); linear in their sizes. */
unsigned agent_conns_ended(const struct casa_agent_conn *before, unsigned n_before,
			   const struct casa_agent_conn *now, unsigned n_now,
			   struct casa_agent_conn *ended, unsigned max);

/*
 * Connection ends as they happen: a sock_diag socket subscribed to the
 * kernel's TCP socket-destroy notifications (needs CAP_NET_ADMIN), which
 * see even connections shorter than a poll interval. Open returns the
 * descriptor (non-blocking) or -errno; read drains what is queued and
 * writes the ends on served VIP ports to out (up to max), returning the
 * count or -errno, and sets *overrun when the kernel dropped notifications
 * (ENOBUFS: its buffer was full), after which only a full connection
 * table tells the SM which connections are gone.
 */
int agent_conns_watch_open(void);
int agent_conns_watch_read(int fd, const struct casa_agent_service *svc, unsigned n_svc,
			   struct casa_agent_conn *out, unsigned max, bool *overrun);

/* ---- GRE decapsulation (agent_gre.c, agent_gre.bpf.c) ----------------------
 *
 * The LB forwards a client's packet to this host inside GRE (RFC 2784,
 * optional RFC 2890 key and sequence number) addressed to one of this
 * host's tunnel endpoints. A BPF program at the interface's tc ingress hook
 * removes the outer IPv4 and GRE headers when the outer destination is a
 * configured endpoint and the inner destination a configured VIP, so the
 * client's packet reaches the VIP on lo as if it had arrived plain; no GRE
 * module or tunnel device is needed. Counters and rules: agent_gre.h and
 * docs/agent-gre.md.
 *
 * Context: the agent's main thread. Each call makes system calls (bpf,
 * rtnetlink) and may block briefly; none is thread-safe on one handle.
 * Needs CAP_BPF (or CAP_SYS_ADMIN) and CAP_NET_ADMIN.
 */

/* What the program accepts. Addresses and key in host order. */
struct agent_gre_conf {
	const uint32_t *endpoints; /* this host's tunnel endpoint addresses */
	unsigned n_endpoints;      /* 1..AGENT_GRE_MAX_ENDPOINTS */
	const uint32_t *vips;      /* VIPs to decapsulate for; more with agent_gre_vip_add */
	unsigned n_vips;           /* 0..AGENT_GRE_MAX_VIPS */
	bool key_set;              /* only GRE carrying this key (K bit); others dropped */
	uint32_t key;              /* as the LB's configuration writes it */
};

struct agent_gre;

/*
 * Load the embedded program, fill its maps from conf, and attach it at the
 * tc ingress hook of ifname (creating a clsact qdisc if there is none).
 * The filter has a fixed handle and priority, so attaching again, from
 * this process or after an agent that died attached, replaces it rather
 * than adding a second. ifname NULL loads without attaching (to drive the
 * program with BPF_PROG_TEST_RUN through agent_gre_prog_fd, or to check
 * that the kernel accepts it). Returns the handle, or NULL with errno set
 * and a one-line message in err (errlen bytes; err may be NULL).
 */
struct agent_gre *agent_gre_attach(const char *ifname, const struct agent_gre_conf *conf, char *err,
				   size_t errlen);

/*
 * Remove the filter if it is still ours, then the clsact qdisc if we
 * created it and nothing else is attached to it; unload the program and
 * free g, whatever happens. Call it in the network namespace of the
 * attach. g NULL is a no-op. Returns 0 or the first -errno.
 */
int agent_gre_detach(struct agent_gre *g);

/* Add or remove a VIP (host order) while attached. -E2BIG when
 * AGENT_GRE_MAX_VIPS are there; del of an absent VIP: -ENOENT. */
int agent_gre_vip_add(struct agent_gre *g, uint32_t vip);
int agent_gre_vip_del(struct agent_gre *g, uint32_t vip);

/* The counters since load, summed over CPUs, indexed by enum
 * agent_gre_counter (names: agent_gre_counter_name). 0 or -errno. */
int agent_gre_counters(const struct agent_gre *g, uint64_t out[AGENT_GRE_N_COUNTERS]);

/* The program's descriptor, owned by g (for BPF_PROG_TEST_RUN). */
int agent_gre_prog_fd(const struct agent_gre *g);

#endif /* AGENT_H */
