/*
 * ctl_metrics.c - the Prometheus endpoint (docs/metrics.md).
 *
 * Two parts. The renderer turns a ctl_snap into the text exposition format
 * 0.0.4: pure (no I/O, no clock), so unit tests compare its lines and run
 * promtool on them. The server is libmicrohttpd in external mode with
 * epoll: it has no thread of its own, the control thread runs it between
 * events (ctl_metrics_fd, ctl_metrics_run), so a scrape takes its snapshot
 * without locks, exactly as a console command does, and never waits for a
 * worker (workers are only read through fastpath.h's counters).
 *
 * Families are tables (name, type, help, field) read from the snapshot's
 * structs; label sets come from the configuration (service and target
 * names) and from the shared name tables (fp_verdict_label,
 * casa_err_reason, ctl_sm_interest_name, ctl_casa_rx_label), so the console
 * and the metrics use the same words.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "casa.h"
#include "ctl.h"

#ifndef CASALB_VERSION
#define CASALB_VERSION "unknown"
#endif

#define CONN_MAX 16       /* concurrent scrape connections */
#define CONN_TIMEOUT_S 10 /* an idle connection is closed after this */
#define CONN_PER_IP 4     /* one scraper's share, so one peer cannot take all */
#define TEXT_REUSE_MS 200 /* scrapes this close together get the same text */
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define LABELS_MAX 4        /* labels of one series */
#define LABEL_VALUE_MAX 160 /* bytes of one escaped label value */

/* ---- the renderer ----------------------------------------------------------------- */

static const char GAUGE[] = "gauge";
static const char COUNTER[] = "counter";

/* The type of a snapshot field, so one table row says where to read a value
 * and how wide it is; _Generic keeps the two from drifting apart. */
enum kind { K_U8, K_U32, K_U64, K_BOOL, K_F64 };
#define KIND(x)                    \
	_Generic((x), uint8_t      \
		 : K_U8, uint32_t  \
		 : K_U32, uint64_t \
		 : K_U64, bool     \
		 : K_BOOL, double  \
		 : K_F64)
#define FIELD(st, m) offsetof(st, m), KIND(((st *)0)->m)

/* A family whose samples are one field of a record (the snapshot itself, a
 * worker's counters, a DPT row). */
struct fam {
	const char *name, *type, *help;
	size_t off;
	enum kind kind;
};

struct label {
	const char *name, *value;
};

struct render {
	const struct ctl_snap *s;
	const struct ctl_conf *c;
	struct ctl_out *o;
	char scratch[LABELS_MAX][32]; /* numbers and addresses of the labels in use */
};

static void header(struct ctl_out *o, const char *name, const char *type, const char *help)
{
	ctl_out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Length of the valid UTF-8 sequence at p (RFC 3629: no overlong forms, no
 * surrogates, nothing past U+10FFFF), 0 when it is not one. A NUL byte
 * fails the continuation test, so nothing past the string is read. */
static unsigned utf8_len(const unsigned char *p)
{
	unsigned char lo = 0x80, hi = 0xBF;
	unsigned n;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xC2 && p[0] <= 0xDF)
		n = 2;
	else if (p[0] >= 0xE0 && p[0] <= 0xEF)
		n = 3;
	else if (p[0] >= 0xF0 && p[0] <= 0xF4)
		n = 4;
	else
		return 0;
	if (p[0] == 0xE0)
		lo = 0xA0;
	else if (p[0] == 0xED)
		hi = 0x9F;
	else if (p[0] == 0xF0)
		lo = 0x90;
	else if (p[0] == 0xF4)
		hi = 0x8F;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (unsigned i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return n;
}

/* v as a label value: backslash, quote and newline escaped (exposition
 * format 0.0.4); other control characters and bytes that are not UTF-8
 * become '?', because one bad byte makes Prometheus reject the whole scrape
 * and forwarding-agent names arrive from the network. Long values are cut. */
static void label_value(struct ctl_out *o, const char *v)
{
	const unsigned char *p = (const unsigned char *)v;
	char buf[LABEL_VALUE_MAX + 1];
	size_t n = 0;

	while (*p && n + 4 <= LABEL_VALUE_MAX) {
		unsigned len = utf8_len(p);

		if (*p == '\\' || *p == '"' || *p == '\n') {
			buf[n++] = '\\';
			buf[n++] = *p == '\n' ? 'n' : (char)*p;
		} else if (len == 0 || *p < 0x20 || *p == 0x7F) {
			buf[n++] = '?';
		} else {
			memcpy(buf + n, p, len);
			n += len;
			p += len - 1;
		}
		p++;
	}
	buf[n] = '\0';
	ctl_out_printf(o, "%s", buf);
}

/* The series name and its labels, without the value. */
static void series(struct ctl_out *o, const char *name, const struct label *l, unsigned n)
{
	ctl_out_printf(o, "%s", name);
	for (unsigned i = 0; i < n; i++) {
		ctl_out_printf(o, "%c%s=\"", i ? ',' : '{', l[i].name);
		label_value(o, l[i].value);
		ctl_out_printf(o, "\"");
	}
	ctl_out_printf(o, "%s", n ? "}" : "");
}

static void sample_u64(struct ctl_out *o, const char *name, const struct label *l, unsigned n,
		       uint64_t v)
{
	series(o, name, l, n);
	ctl_out_printf(o, " %" PRIu64 "\n", v);
}

/* %.15g: short for fractions such as 0.1, exact for integers below 2^49. */
static void sample_f64(struct ctl_out *o, const char *name, const struct label *l, unsigned n,
		       double v)
{
	series(o, name, l, n);
	ctl_out_printf(o, " %.15g\n", v);
}

static void sample_field(struct ctl_out *o, const struct fam *f, const struct label *l, unsigned n,
			 const void *rec)
{
	const char *p = (const char *)rec + f->off;
	uint64_t u = 0;
	double d;

	switch (f->kind) {
	case K_U8:
	case K_BOOL: // one byte: bool is 0 or 1
		u = *(const uint8_t *)p;
		break;
	case K_U32:
		u = *(const uint32_t *)(const void *)p;
		break;
	case K_U64:
		u = *(const uint64_t *)(const void *)p;
		break;
	case K_F64:
		memcpy(&d, p, sizeof(d));
		sample_f64(o, f->name, l, n, d);
		return;
	}
	sample_u64(o, f->name, l, n, u);
}

/* The labels of record i of a table: written to l (strings may live in
 * r->scratch); returns how many. */
typedef unsigned (*labeller)(struct render *r, unsigned i, struct label *l);

/* Families f[0..nf) over n records of `stride` bytes from base. */
static void table(struct render *r, const struct fam *f, unsigned nf, const void *base,
		  size_t stride, unsigned n, labeller lab)
{
	struct label l[LABELS_MAX];

	for (unsigned j = 0; j < nf; j++) {
		header(r->o, f[j].name, f[j].type, f[j].help);
		for (unsigned i = 0; i < n; i++) {
			unsigned nl = lab ? lab(r, i, l) : 0;

			sample_field(r->o, &f[j], l, nl, (const char *)base + i * stride);
		}
	}
}

#define N(a) (unsigned)(sizeof(a) / sizeof((a)[0]))
#define SNAP(m) FIELD(struct ctl_snap, m)

/* Whole-appliance scalars, and the record tables below (docs/metrics.md
 * lists every family with its meaning). */
static const struct fam affinity_fams[] = {
	{ "casalb_affinity_entries", GAUGE,
	  "Fixed affinities in the workers' table (approximate while workers run).",
	  SNAP(aff.count) },
	{ "casalb_affinity_capacity", GAUGE,
	  "Affinities the table is sized for (dataplane.affinity_capacity).", SNAP(aff.capacity) },
	{ "casalb_affinity_slots", GAUGE, "Hash slots of the affinity table.", SNAP(aff.slots) },
	{ "casalb_affinity_memory_bytes", GAUGE, "Memory of the affinity table.",
	  SNAP(aff.mem_bytes) },
	{ "casalb_affinity_inserts_total", COUNTER, "Affinities inserted.", SNAP(aff.inserts) },
	{ "casalb_affinity_deletes_total", COUNTER,
	  "Affinities deleted (connection ends, TTL-0 deletes).", SNAP(aff.deletes) },
	{ "casalb_affinity_expiries_total", COUNTER, "Affinities removed after their idle TTL.",
	  SNAP(aff.expiries) },
	{ "casalb_affinity_full_total", COUNTER, "Inserts refused because the table was full.",
	  SNAP(aff.full) },
};

static const struct fam sm_fams[] = {
	{ "casalb_vcrt_connections", GAUGE,
	  "Connections in the Service Manager's connection table (netstat VCRT).",
	  SNAP(vcrt_count) },
	{ "casalb_vcrt_capacity", GAUGE,
	  "Connections the table holds at most (service_manager.connections).",
	  SNAP(vcrt_capacity) },
	{ "casalb_vcrt_full_total", COUNTER,
	  "New connections not recorded because the connection table was full.",
	  SNAP(sm.vcrt_full) },
	{ "casalb_sm_worker_connections_total", COUNTER,
	  "New connections the workers placed and reported to the Service Manager.",
	  SNAP(sm.worker_conns) },
	{ "casalb_sm_connection_ends_total", COUNTER,
	  "Connections removed on their target agent's report.", SNAP(sm.conn_ends) },
	{ "casalb_sm_connection_ends_unknown_total", COUNTER,
	  "Connection ends reported for connections not in the table.", SNAP(sm.conn_end_unknown) },
	{ "casalb_sm_resync_added_total", COUNTER,
	  "Connections added from agents' connection tables (after a takeover).",
	  SNAP(sm.resync_added) },
	{ "casalb_sm_resync_removed_total", COUNTER,
	  "Connections removed because the target's connection table no longer had them.",
	  SNAP(sm.resync_removed) },
	{ "casalb_sm_affinity_deletes_queued_total", COUNTER,
	  "Affinity deletes queued for multicast to the forwarding agents.",
	  SNAP(sm.deletes_queued) },
	{ "casalb_sm_affinity_deletes_lost_total", COUNTER,
	  "Affinity deletes lost because their queue was full.", SNAP(sm.deletes_lost) },
	{ "casalb_sm_targets_down_total", COUNTER, "Targets marked down.", SNAP(sm.targets_down) },
	{ "casalb_sm_weight_refreshes_total", COUNTER,
	  "Weight refreshes (agents' capacity and QoS applied).", SNAP(sm.weight_refreshes) },
	{ "casalb_sm_table_publishes_total", COUNTER,
	  "Selection and service tables published to the workers.", SNAP(sm.publishes) },
};

#define CASA(m) SNAP(casa.m)
static const struct fam casa_fams[] = {
	{ "casalb_casa_send_errors_total", COUNTER, "CASA messages that could not be sent.",
	  CASA(tx_errors) },
	{ "casalb_casa_interest_denied_total", COUNTER,
	  "Interest packets from forwarding agents outside the accepted prefixes.",
	  CASA(interest_denied) },
	{ "casalb_casa_interest_unparsable_total", COUNTER,
	  "Interest packets whose inner packet could not be parsed.", CASA(interest_unparsable) },
	{ "casalb_casa_forward_errors_total", COUNTER,
	  "Interest packets the control thread failed to forward to their target.",
	  CASA(forward_errors) },
	{ "casalb_casa_affinity_full_total", COUNTER,
	  "Affinities the control thread could not add to the workers' table.",
	  CASA(affinity_full) },
	{ "casalb_casa_local_interest_total", COUNTER,
	  "Interest events from the local workers (SYNs without a ready selection, misses).",
	  CASA(local_interest) },
	{ "casalb_casa_local_other_total", COUNTER, "Other events from the local workers.",
	  CASA(local_other) },
	{ "casalb_casa_tickles_total", COUNTER, "Tickle messages received.", CASA(tickles) },
	{ "casalb_casa_tickles_closing_total", COUNTER, "Tickles carrying a FIN or RST.",
	  CASA(tickle_closing) },
	{ "casalb_casa_peer_sm_messages_total", COUNTER,
	  "Messages from another Service Manager (or our own multicast looped back).",
	  CASA(peer_sm_msgs) },
	{ "casalb_casa_unexpected_total", COUNTER,
	  "Valid messages of a type a Service Manager does not take.", CASA(unexpected) },
	{ "casalb_casa_forwarding_agents_refused_total", COUNTER,
	  "Hellos refused because service_manager.fa_max agents are known.", CASA(fa_full) },
	{ "casalb_casa_forwarding_agents_expired_total", COUNTER,
	  "Forwarding agents forgotten after their hold time.", CASA(fa_expired) },
	{ "casalb_casa_hellos_stale_total", COUNTER,
	  "Hellos from an older incarnation (epoch) of a known agent.", CASA(hello_stale) },
	{ "casalb_casa_stats_unknown_total", COUNTER,
	  "Statistics messages from an agent that sent no hello.", CASA(stats_unknown) },
	{ "casalb_connection_resets_sent_total", COUNTER,
	  "Fast connection resets sent (no target holds the connection).", CASA(resets_sent) },
	{ "casalb_connection_resets_limited_total", COUNTER,
	  "Fast connection resets not sent because of the rate limit.", CASA(resets_limited) },
};

#define AGENT(m) SNAP(agent.m)
static const struct fam agent_fams[] = {
	{ "casalb_agent_sessions_accepted_total", COUNTER, "Agent sessions accepted.",
	  AGENT(accepted) },
	{ "casalb_agent_sessions_closed_total", COUNTER, "Agent sessions closed.", AGENT(closed) },
	{ "casalb_agent_sessions_refused_total", COUNTER,
	  "Agent connections refused because agents.max sessions are open.", AGENT(refused_full) },
	{ "casalb_agent_registrations_total", COUNTER, "Agents registered.", AGENT(registered) },
	{ "casalb_agent_registrations_refused_total", COUNTER,
	  "Registrations refused (unknown target name or already registered).", AGENT(refused) },
	{ "casalb_agent_timeouts_total", COUNTER,
	  "Agent sessions closed after agents.timeout of silence.", AGENT(timeouts) },
	{ "casalb_agent_messages_sent_total", COUNTER, "Messages sent to agents.",
	  AGENT(msgs_sent) },
	{ "casalb_agent_send_errors_total", COUNTER, "Messages to agents that could not be built.",
	  AGENT(tx_errors) },
	{ "casalb_agent_send_overflows_total", COUNTER,
	  "Sessions dropped because the agent did not read its messages.", AGENT(tx_overflow) },
	{ "casalb_agent_framing_errors_total", COUNTER,
	  "Sessions with a bad length prefix on the stream.", AGENT(framing_errors) },
	{ "casalb_agent_protocol_errors_total", COUNTER,
	  "Valid messages out of place (before registering, of a Service Manager's type).",
	  AGENT(protocol_errors) },
	{ "casalb_agent_keepalives_total", COUNTER, "Keepalives received from agents.",
	  AGENT(keepalives) },
};

#define WORKER(m) FIELD(struct fp_worker_stats, m)
static const struct fam worker_fams[] = {
	{ "casalb_worker_rx_packets_total", COUNTER, "Packets received by the worker.",
	  WORKER(rx_pkts) },
	{ "casalb_worker_rx_bytes_total", COUNTER, "Bytes received by the worker.",
	  WORKER(rx_bytes) },
	{ "casalb_worker_tx_packets_total", COUNTER, "Packets sent by the worker.",
	  WORKER(tx_pkts) },
	{ "casalb_worker_tx_bytes_total", COUNTER, "Bytes sent by the worker.", WORKER(tx_bytes) },
	{ "casalb_worker_loops_total", COUNTER, "Turns of the worker's poll loop.", WORKER(loops) },
	{ "casalb_worker_busy_loops_total", COUNTER,
	  "Turns of the worker's poll loop that received packets.", WORKER(busy_loops) },
	{ "casalb_worker_events_lost_total", COUNTER,
	  "New-connection notices lost because the ring to the control thread was full.",
	  WORKER(events_lost) },
};

#define DPT(m) FIELD(struct ctl_dpt_row, m)
static const struct fam dpt_fams[] = {
	{ "casalb_target_ready", GAUGE,
	  "Listening sockets on the target that accept the service port (VDPT Rdy); 0: no new "
	  "connections go there.",
	  DPT(rdy) },
	{ "casalb_target_connections_total", COUNTER,
	  "Connections placed on the target for the service port (VDPT TotalConn).",
	  DPT(total_conn) },
	{ "casalb_target_active_connections", GAUGE,
	  "Connections of the service port the connection table holds on the target.",
	  DPT(active) },
	{ "casalb_target_weight", GAUGE, "Configured weight of the target.", DPT(weight) },
	{ "casalb_target_effective_weight", GAUGE,
	  "Weight used for placement: weight x capacity x (1 - QoS fraction); 0 when not ready "
	  "or not healthy.",
	  DPT(effective) },
	{ "casalb_target_capacity", GAUGE,
	  "Capacity 0..64 from the target's agent (WLM-like weight), as applied.", DPT(capacity) },
	{ "casalb_target_qos_ratio", GAUGE,
	  "Fraction of the weight withheld for the target's TCP retransmissions and time-outs, "
	  "as applied.",
	  DPT(qos) },
	{ "casalb_target_healthy", GAUGE, "1 while the target is up, 0 when it is marked down.",
	  DPT(healthy) },
};

static unsigned worker_labels(struct render *r, unsigned i, struct label *l)
{
	snprintf(r->scratch[0], sizeof(r->scratch[0]), "%u", i);
	l[0] = (struct label){ "worker", r->scratch[0] };
	return 1;
}

static unsigned dpt_labels(struct render *r, unsigned i, struct label *l)
{
	const struct ctl_dpt_row *d = &r->s->dpt[i];
	// The live service (a port added or moved by the console is not where
	// the file had it).
	const struct ctl_service *s =
		d->service < r->c->n_services ? &r->c->services[d->service] : NULL;

	casa_ip_format(d->vip, r->scratch[0], sizeof(r->scratch[0]));
	snprintf(r->scratch[1], sizeof(r->scratch[1]), "%u", d->port);
	l[0] = (struct label){ "service", s ? s->name : "" };
	l[1] = (struct label){ "vip", r->scratch[0] };
	l[2] = (struct label){ "port", r->scratch[1] };
	l[3] = (struct label){ "target",
			       d->target < r->c->n_targets ? r->c->targets[d->target].name : "" };
	return 4;
}

static void render_info(struct render *r)
{
	static const struct {
		unsigned bit;
		const char *name;
	} roles[] = { { CTL_ROLE_SM, "service-manager" }, { CTL_ROLE_FA, "forwarding-agent" } };
	const struct label version = { "version", CASALB_VERSION };

	header(r->o, "casalb_info", GAUGE, "Always 1; the version of casalb in a label.");
	sample_u64(r->o, "casalb_info", &version, 1, 1);
	header(r->o, "casalb_role", GAUGE, "1 for each role this casalb runs (roles), else 0.");
	for (unsigned i = 0; i < N(roles); i++) {
		const struct label l = { "role", roles[i].name };

		sample_u64(r->o, "casalb_role", &l, 1, (r->s->roles & roles[i].bit) != 0);
	}
	header(r->o, "casalb_uptime_seconds", GAUGE, "Time since casalb started.");
	sample_f64(r->o, "casalb_uptime_seconds", NULL, 0, (double)r->s->uptime_ms / 1000.0);
}

static bool is_drop(const char *verdict)
{
	return strncmp(verdict, "drop_", 5) == 0;
}

/* Packets by verdict, split in two families: the drops (reason = the
 * verdict name, "drop_...") and everything else (verdict = its name). */
static void render_verdicts(struct render *r, bool drops)
{
	const char *name = drops ? "casalb_worker_drops_total" : "casalb_worker_packets_total";
	unsigned nv = fp_verdict_count();

	if (drops)
		header(r->o, name, COUNTER, "Packets the worker dropped, by reason.");
	else
		header(r->o, name, COUNTER,
		       "Packets the worker handled without dropping, by verdict (forwarded, answered, "
		       "handed to the control thread, held).");
	for (unsigned w = 0; w < r->s->n_workers; w++)
		for (unsigned v = 0; v < nv && v < FP_VERDICT_SLOTS; v++) {
			const char *label = fp_verdict_label(v);
			struct label l[2];

			if (!label || is_drop(label) != drops)
				continue;
			worker_labels(r, w, l);
			l[1] = (struct label){ drops ? "reason" : "verdict", label };
			sample_u64(r->o, name, l, 2, r->s->workers[w].verdict[v]);
		}
}

static void render_workers(struct render *r)
{
	header(r->o, "casalb_workers", GAUGE, "Fast-path worker lcores.");
	sample_u64(r->o, "casalb_workers", NULL, 0, r->s->n_workers);
	table(r, worker_fams, N(worker_fams), r->s->workers, sizeof(*r->s->workers),
	      r->s->n_workers, worker_labels);
	render_verdicts(r, false);
	render_verdicts(r, true);
}

/* Drops by enum casa_err (decode and authentication), reason =
 * casa_err_reason(); drops[0] holds codes past the table ("other"). */
static void render_casa_drops(struct render *r, const char *name, const char *help,
			      const uint64_t *drops)
{
	header(r->o, name, COUNTER, help);
	for (unsigned e = 1; e < CASA_E__COUNT; e++) {
		const struct label l = { "reason", casa_err_reason((enum casa_err)e) };

		sample_u64(r->o, name, &l, 1, drops[e]);
	}
	if (drops[0]) {
		const struct label l = { "reason", "other" };

		sample_u64(r->o, name, &l, 1, drops[0]);
	}
}

static void render_interest(struct render *r)
{
	const char *name = "casalb_sm_interest_total";

	header(r->o, name, COUNTER,
	       "Interest packets (local workers and forwarding agents) by the Service Manager's "
	       "answer.");
	for (unsigned v = 0; v < CTL_INT__COUNT; v++) {
		const struct label l = { "result", ctl_sm_interest_name((enum ctl_interest)v) };

		sample_u64(r->o, name, &l, 1, r->s->sm.interest[v]);
	}
}

static void render_casa(struct render *r)
{
	const struct ctl_casa_counters *k = &r->s->casa;
	const struct {
		const char *type;
		uint64_t n;
	} sent[] = { { "wildcard", k->wildcards_sent },
		     { "fixed", k->fixed_sent },
		     { "delete", k->deletes_sent },
		     { "hello_ack", k->hello_acks_sent } };

	header(r->o, "casalb_casa_received_total", COUNTER,
	       "CASA messages received and accepted (decoded, authenticated), by type.");
	for (unsigned i = 0; i < CTL_CASA_RX_TYPES; i++) {
		const struct label l = { "type", ctl_casa_rx_label(i) };

		sample_u64(r->o, "casalb_casa_received_total", &l, 1, k->rx_types[i]);
	}
	header(r->o, "casalb_casa_sent_total", COUNTER,
	       "CASA messages sent, by type (delete: an affinity with TTL 0).");
	for (unsigned i = 0; i < N(sent); i++) {
		const struct label l = { "type", sent[i].type };

		sample_u64(r->o, "casalb_casa_sent_total", &l, 1, sent[i].n);
	}
	render_casa_drops(r, "casalb_casa_drops_total",
			  "CASA messages dropped by the decoder or the authentication check, by "
			  "reason.",
			  k->drops);
	table(r, casa_fams, N(casa_fams), r->s, 0, 1, NULL);
}

static void render_agents(struct render *r)
{
	const struct ctl_snap *s = r->s;
	unsigned registered = 0;

	for (unsigned i = 0; i < s->n_agents; i++)
		registered += s->agents[i].registered;
	header(r->o, "casalb_agent_sessions", GAUGE, "Open agent protocol sessions.");
	sample_u64(r->o, "casalb_agent_sessions", NULL, 0, s->n_agents);
	header(r->o, "casalb_agent_sessions_registered", GAUGE,
	       "Agent sessions that registered a target.");
	sample_u64(r->o, "casalb_agent_sessions_registered", NULL, 0, registered);
	header(r->o, "casalb_agent_up", GAUGE,
	       "1 while a registered agent session speaks for the target, else 0.");
	for (unsigned t = 0; t < r->c->n_targets; t++) {
		const struct label l = { "target", r->c->targets[t].name };
		bool up = false;

		for (unsigned i = 0; i < s->n_agents && !up; i++)
			up = s->agents[i].registered && s->agents[i].target == t;
		sample_u64(r->o, "casalb_agent_up", &l, 1, up);
	}
	render_casa_drops(r, "casalb_agent_drops_total",
			  "Agent messages dropped by the decoder or the authentication check, by "
			  "reason.",
			  s->agent.drops);
	table(r, agent_fams, N(agent_fams), s, 0, 1, NULL);
}

static unsigned fa_labels(struct render *r, unsigned i, struct label *l)
{
	const struct ctl_fa_row *fa = &r->s->fas[i];

	snprintf(r->scratch[0], sizeof(r->scratch[0]), "%" PRIu32, fa->sender_id);
	casa_ip_format(fa->addr, r->scratch[1], sizeof(r->scratch[1]));
	l[0] = (struct label){ "sender_id", r->scratch[0] };
	l[1] = (struct label){ "address", r->scratch[1] };
	l[2] = (struct label){ "name", fa->name };
	return 3;
}

/* Milliseconds since the forwarding agent's last hello, at the snapshot. */
static uint64_t fa_age_ms(const struct ctl_snap *s, const struct ctl_fa_row *fa)
{
	return s->taken_ms > fa->last_hello_ms ? s->taken_ms - fa->last_hello_ms : 0;
}

static void render_fas(struct render *r)
{
	const struct ctl_snap *s = r->s;
	struct label l[LABELS_MAX];

	header(r->o, "casalb_forwarding_agents", GAUGE,
	       "External forwarding agents known from their hellos.");
	sample_u64(r->o, "casalb_forwarding_agents", NULL, 0, s->n_fas);
	header(r->o, "casalb_forwarding_agent_up", GAUGE,
	       "1 while the forwarding agent's last hello is within its hold time.");
	for (unsigned i = 0; i < s->n_fas; i++)
		sample_u64(r->o, "casalb_forwarding_agent_up", l, fa_labels(r, i, l),
			   fa_age_ms(s, &s->fas[i]) <= (uint64_t)s->fas[i].hold_s * 1000);
	header(r->o, "casalb_forwarding_agent_last_hello_age_seconds", GAUGE,
	       "Time since the forwarding agent's last hello.");
	for (unsigned i = 0; i < s->n_fas; i++)
		sample_f64(r->o, "casalb_forwarding_agent_last_hello_age_seconds", l,
			   fa_labels(r, i, l), (double)fa_age_ms(s, &s->fas[i]) / 1000.0);
	header(r->o, "casalb_forwarding_agent_hellos_total", COUNTER,
	       "Hellos received from the forwarding agent.");
	for (unsigned i = 0; i < s->n_fas; i++)
		sample_u64(r->o, "casalb_forwarding_agent_hellos_total", l, fa_labels(r, i, l),
			   s->fas[i].hellos);
}

static void render_sm(struct render *r)
{
	header(r->o, "casalb_backup_rank", GAUGE,
	       "Backup rank of this Service Manager: 0 primary, 1..254 backup.");
	sample_u64(r->o, "casalb_backup_rank", NULL, 0, r->s->rank);
	table(r, sm_fams, N(sm_fams), r->s, 0, 1, NULL);
	render_interest(r);
	table(r, dpt_fams, N(dpt_fams), r->s->dpt, sizeof(*r->s->dpt), r->s->n_dpt, dpt_labels);
	render_casa(r);
	render_agents(r);
	render_fas(r);
}

void ctl_metrics_render(const struct ctl_snap *s, const struct ctl_conf *c, struct ctl_out *out)
{
	struct render r = { .s = s, .c = c, .o = out };

	render_info(&r);
	render_workers(&r);
	table(&r, affinity_fams, N(affinity_fams), s, 0, 1, NULL);
	if (s->roles & CTL_ROLE_SM)
		render_sm(&r);
}

/* ---- the HTTP server ---------------------------------------------------------------- */

struct ctl_metrics {
	struct ctl_view *view;
	struct MHD_Daemon *d;
	int epfd;
	uint64_t now_ms;           /* the running turn's clock, for the snapshot */
	uint64_t due_ms;           /* when MHD must run even if epfd is quiet; UINT64_MAX: never */
	char log[160];             /* libmicrohttpd's last message, for create's error */
	struct MHD_Response *text; /* the last rendering, shared by scrapes */
	uint64_t text_ms;          /* when it was rendered */
};

/* libmicrohttpd's messages are kept, not printed: the only one anybody needs
 * is why the daemon did not start, and a client must not fill the log. */
static void on_log(void *cls, const char *fmt, va_list ap)
{
	struct ctl_metrics *m = cls;
	size_t n;

	vsnprintf(m->log, sizeof(m->log), fmt, ap);
	n = strlen(m->log);
	while (n > 0 && (m->log[n - 1] == '\n' || m->log[n - 1] == '.'))
		m->log[--n] = '\0';
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *text,
			     bool allow)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
		strlen(text), (void *)(uintptr_t)text, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result rc;

	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	rc = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return rc;
}

/*
 * A snapshot rendered, at most once every TEXT_REUSE_MS: scrapes closer
 * together (many scrapers, or one client looping) share one response, so
 * however many connections ask, the control thread renders a few texts a
 * second. libmicrohttpd counts the response's users and frees the text
 * when the last one is done with it. NULL when it cannot be made; *why
 * then names the HTTP status.
 */
static struct MHD_Response *metrics_text(struct ctl_metrics *m, unsigned *why)
{
	struct MHD_Response *resp;
	struct ctl_snap s;
	struct ctl_out o;

	if (m->text && m->now_ms - m->text_ms < TEXT_REUSE_MS)
		return m->text;
	*why = MHD_HTTP_SERVICE_UNAVAILABLE;
	if (ctl_snap_collect(m->view, m->now_ms, &s) != 0)
		return NULL;
	ctl_out_init(&o, 0);
	ctl_metrics_render(&s, m->view->c, &o);
	ctl_snap_free(&s);
	if (o.truncated || !o.buf) {
		// Cut exposition text would be wrong numbers: refuse instead.
		ctl_out_free(&o);
		*why = MHD_HTTP_INTERNAL_SERVER_ERROR;
		return NULL;
	}
	resp = MHD_create_response_from_buffer(o.len, o.buf, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		ctl_out_free(&o);
		return NULL;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
	if (m->text)
		MHD_destroy_response(m->text); // the connections still sending it keep it
	m->text = resp;
	m->text_ms = m->now_ms;
	return resp;
}

static enum MHD_Result reply_metrics(struct ctl_metrics *m, struct MHD_Connection *conn)
{
	unsigned why = 0;
	struct MHD_Response *resp = metrics_text(m, &why);

	if (!resp)
		return why == MHD_HTTP_INTERNAL_SERVER_ERROR ?
			       reply(conn, why, "metrics text over its limit\n", false) :
			       reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory\n", false);
	return MHD_queue_response(conn, MHD_HTTP_OK, resp);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_len, void **req)
{
	(void)version;
	(void)upload;
	(void)req;
	// A body (a POST's) is read and ignored: the answer was queued on the
	// first call, which always comes before any body.
	if (*upload_len) {
		*upload_len = 0;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", true);
	if (strcmp(url, "/metrics") != 0)
		return reply(conn, MHD_HTTP_NOT_FOUND, "not found: metrics are at /metrics\n",
			     false);
	return reply_metrics(cls, conn);
}

/* The listening socket, bound here rather than by libmicrohttpd so a
 * failure names its errno ("Address already in use"). */
static int listen_socket(const struct ctl_listener_conf *l, char *err, size_t errlen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(l->port),
				  .sin_addr.s_addr = htonl(l->addr) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	char a[16];

	if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, CONN_MAX) == 0)
		return fd;
	snprintf(err, errlen, "metrics %s:%u: %s", casa_ip_format(l->addr, a, sizeof(a)), l->port,
		 strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Start libmicrohttpd on fd (which it then owns). */
static int start_daemon(struct ctl_metrics *m, int fd, char *err, size_t errlen)
{
	const struct ctl_listener_conf *l = &m->view->c->metrics;
	const union MHD_DaemonInfo *info;
	char a[16];

	m->d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request, m,
				MHD_OPTION_EXTERNAL_LOGGER, on_log, m, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONN_MAX,
				MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)CONN_PER_IP,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT_S,
				MHD_OPTION_END);
	info = m->d ? MHD_get_daemon_info(m->d, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
	if (info && info->epoll_fd >= 0) {
		m->epfd = info->epoll_fd;
		return 0;
	}
	snprintf(err, errlen, "metrics %s:%u: cannot start the HTTP server: %s",
		 casa_ip_format(l->addr, a, sizeof(a)), l->port,
		 m->log[0] ? m->log : "libmicrohttpd without epoll?");
	// Whether libmicrohttpd closed fd when it failed to start is not
	// documented: close it only if it is still open (nothing else opens
	// descriptors on the control thread meanwhile).
	if (!m->d && fcntl(fd, F_GETFD) != -1)
		close(fd);
	return -1;
}

struct ctl_metrics *ctl_metrics_create(struct ctl_view *v, char *err, size_t errlen)
{
	struct ctl_metrics *m = calloc(1, sizeof(*m));
	int fd;

	if (!m) {
		snprintf(err, errlen, "metrics: %s", strerror(errno));
		return NULL;
	}
	*m = (struct ctl_metrics){ .view = v, .epfd = -1, .due_ms = UINT64_MAX };
	if (!v->c->metrics.enabled)
		return m;
	fd = listen_socket(&v->c->metrics, err, errlen);
	if (fd < 0 || start_daemon(m, fd, err, errlen) != 0) {
		ctl_metrics_destroy(m);
		return NULL;
	}
	return m;
}

void ctl_metrics_destroy(struct ctl_metrics *m)
{
	if (!m)
		return;
	if (m->d)
		MHD_stop_daemon(m->d); // closes the connections and the listening socket
	if (m->text)
		MHD_destroy_response(m->text);
	free(m);
}

int ctl_metrics_fd(const struct ctl_metrics *m)
{
	return m ? m->epfd : -1;
}

bool ctl_metrics_due(const struct ctl_metrics *m, uint64_t now_ms)
{
	return m && m->d && now_ms >= m->due_ms;
}

void ctl_metrics_run(struct ctl_metrics *m, uint64_t now_ms)
{
	MHD_UNSIGNED_LONG_LONG wait_ms;

	if (!m || !m->d)
		return;
	m->now_ms = now_ms;
	MHD_run(m->d);
	// libmicrohttpd must run again within its timeout even when no socket
	// moves (idle connections to close, data it left for the next call).
	if (MHD_get_timeout(m->d, &wait_ms) == MHD_YES)
		m->due_ms = now_ms + wait_ms;
	else
		m->due_ms = UINT64_MAX;
}
