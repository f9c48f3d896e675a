/*
 * ctl_trace.c - `trace flow PROTO SRC SPORT DST DPORT [FLAGS]`: what the
 * fast path would do with such a packet, and why, in words.
 *
 * The fast path answers for its own steps (fastpath.h fp_trace: VIP,
 * affinity, service, selection table, verdict) against the tables the
 * workers use now, changing nothing. Where a worker would hand the packet
 * to the control thread, the Service Manager's side is read here, also
 * without changing anything: its VCRT entry (interest for a known flow) or
 * its ready targets (a SYN the workers cannot place).
 *
 * The first line is the answer; the lines after it are the steps.
 * Context: control thread.
 */
#include <errno.h>
#include <string.h>

#include "ctl_cmd_int.h"

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

static const struct {
	const char *name;
	uint8_t flags;
} flag_words[] = {
	{ "syn", TCP_SYN },
	{ "ack", TCP_ACK },
	{ "fin", TCP_FIN | TCP_ACK },
	{ "rst", TCP_RST },
	{ "synack", TCP_SYN | TCP_ACK },
};

struct trace_req {
	struct fp_flow f;
	uint8_t flags;
};

static int parse_proto(const char *w, uint8_t *proto)
{
	uint32_t n;

	if (strcmp(w, "tcp") == 0)
		*proto = 6;
	else if (strcmp(w, "udp") == 0)
		*proto = 17;
	else if (strcmp(w, "icmp") == 0)
		*proto = 1;
	else if (ctl_cmd_uint(w, 0, 255, &n))
		*proto = (uint8_t)n;
	else
		return -EINVAL;
	return 0;
}

static int parse_flags(const char *w, uint8_t *flags)
{
	for (size_t i = 0; i < sizeof(flag_words) / sizeof(flag_words[0]); i++)
		if (strcmp(w, flag_words[i].name) == 0) {
			*flags = flag_words[i].flags;
			return 0;
		}
	return -EINVAL;
}

/* PROTO SRC SPORT DST DPORT [FLAGS]; a TCP packet is a SYN unless told. */
static int trace_args(struct ctl_cmd_ctx *x, int argc, char **argv, struct trace_req *t,
		      struct ctl_out *out)
{
	uint32_t sport, dport;
	char wd[48];

	if (argc < 5 || argc > 6)
		return ctl_cmd_fail(out, -EINVAL, "%s takes %s", x->cmd->words, x->cmd->args);
	*t = (struct trace_req){ .flags = TCP_SYN };
	if (parse_proto(argv[0], &t->f.proto) != 0)
		return ctl_cmd_fail(out, -EINVAL, "protocol \"%s\" is not tcp, udp, icmp or 0..255",
				    ctl_cmd_word(argv[0], wd, sizeof(wd)));
	if (!ctl_cmd_ipv4(argv[1], &t->f.src) || !ctl_cmd_ipv4(argv[3], &t->f.dst))
		return ctl_cmd_fail(
			out, -EINVAL, "\"%s\" is not an IPv4 address",
			ctl_cmd_word(ctl_cmd_ipv4(argv[1], &t->f.src) ? argv[3] : argv[1], wd,
				     sizeof(wd)));
	if (!ctl_cmd_uint(argv[2], 0, 65535, &sport) || !ctl_cmd_uint(argv[4], 0, 65535, &dport))
		return ctl_cmd_fail(
			out, -EINVAL, "port \"%s\" out of range 0..65535",
			ctl_cmd_word(ctl_cmd_uint(argv[2], 0, 65535, &sport) ? argv[4] : argv[2],
				     wd, sizeof(wd)));
	t->f.sport = (uint16_t)sport;
	t->f.dport = (uint16_t)dport;
	if (argc == 6 && parse_flags(argv[5], &t->flags) != 0)
		return ctl_cmd_fail(out, -EINVAL,
				    "flags \"%s\" are not syn, ack, fin, rst or synack",
				    ctl_cmd_word(argv[5], wd, sizeof(wd)));
	return 0;
}

static const char *flags_name(uint8_t f)
{
	for (size_t i = 0; i < sizeof(flag_words) / sizeof(flag_words[0]); i++)
		if (flag_words[i].flags == f)
			return flag_words[i].name;
	return "?";
}

/* "t2 (gre 192.0.2.22)" / "t2 (l2 02:..)" into buf. */
static const char *how(const struct ctl_conf *c, const struct fp_trace *t, char *buf, size_t cap)
{
	const char *name = t->target < c->n_targets ? c->targets[t->target].name : "?";
	const uint8_t *m = t->dispatch.mac;
	char a[16];

	if (!t->target_known)
		snprintf(buf, cap, "target %u, which the tables do not hold", t->target);
	else if (t->dispatch.dispatch == FP_DISPATCH_GRE)
		snprintf(buf, cap, "%s (gre %s, data port %u)", name,
			 ctl_cmd_ip(t->dispatch.tunnel, a), t->dispatch.port);
	else
		snprintf(buf, cap, "%s (l2 %02x:%02x:%02x:%02x:%02x:%02x, data port %u)", name,
			 m[0], m[1], m[2], m[3], m[4], m[5], t->dispatch.port);
	return buf;
}

static const char *service_name(struct ctl_cmd_ctx *x, uint32_t sp)
{
	unsigned s;
	uint32_t vip;
	uint16_t port;
	uint8_t proto;

	if (!x->v->sm || ctl_sm_sp_get(x->v->sm, sp, &vip, &port, &proto, &s) != 0 ||
	    s >= x->v->c->n_services)
		return "?";
	return x->v->c->services[s].name;
}

/* The answer, one line. */
static void summary(struct ctl_cmd_ctx *x, const struct fp_trace *t, struct ctl_out *out)
{
	char h[96];

	switch (t->step) {
	case FP_TRACE_NO_TABLES:
		ctl_out_printf(out, "dropped: no tables are published yet\n");
		break;
	case FP_TRACE_NOT_VIP:
		ctl_out_printf(out, "dropped: the destination is not a VIP\n");
		break;
	case FP_TRACE_NOT_L4:
		ctl_out_printf(out, "not balanced: only TCP and UDP are; ICMP echo to a VIP is"
				    " answered, the rest dropped\n");
		break;
	case FP_TRACE_AFFINITY:
		ctl_out_printf(out, "affinity hit: forward to %s, idle %u s of %u s\n",
			       how(x->v->c, t, h, sizeof(h)), t->aff.idle_ms / 1000, t->aff.ttl_s);
		break;
	case FP_TRACE_NO_SERVICE:
		ctl_out_printf(out, "dropped: the VIP has no service on this port and protocol\n");
		break;
	case FP_TRACE_PLACE:
		ctl_out_printf(out, "new connection: forward to %s and insert an affinity%s\n",
			       how(x->v->c, t, h, sizeof(h)),
			       t->sel_mode == FP_SEL_SEQUENCE && t->n_workers > 1 ?
				       " (worker 0's next pick; see below)" :
				       "");
		break;
	case FP_TRACE_NO_TARGET:
		ctl_out_printf(out, "no ready target: to the Service Manager, which answers with a"
				    " fast reset\n");
		break;
	default:
		ctl_out_printf(out,
			       "no affinity and not a new connection: to the Service Manager\n");
		break;
	}
}

/* A new connection: the table and the pick. */
static void steps_place(struct ctl_cmd_ctx *x, const struct fp_trace *t, struct ctl_out *out)
{
	const struct ctl_conf *c = x->v->c;
	char a[16];

	ctl_out_printf(out, "  selection: %u entries, %s", t->sel_size,
		       t->sel_mode == FP_SEL_HASH ? "indexed by the 5-tuple's hash" :
						    "walked in turn by each worker");
	if (t->policy)
		ctl_out_printf(out, ", client-subnet policy %s/%u", ctl_cmd_ip(t->policy_src, a),
			       (unsigned)__builtin_popcount(t->policy_mask));
	ctl_out_printf(out, "\n");
	if (t->step != FP_TRACE_PLACE)
		return;
	if (t->sel_mode == FP_SEL_HASH)
		ctl_out_printf(out, "  pick: entry %u -> %s\n", t->sel_index,
			       t->target < c->n_targets ? c->targets[t->target].name : "?");
	for (unsigned w = 0; t->sel_mode == FP_SEL_SEQUENCE && w < t->n_workers; w++)
		ctl_out_printf(out, "  pick: worker %u would take %s next\n", w,
			       t->next[w] < c->n_targets ? c->targets[t->next[w]].name : "?");
	ctl_out_printf(out,
		       "  then: the worker inserts an affinity (idle timeout %u s) and tells"
		       " the Service Manager\n",
		       t->idle_s);
}

/* What the Service Manager would do with what the workers hand it. */
static void steps_sm(struct ctl_cmd_ctx *x, const struct trace_req *r, const struct fp_trace *t,
		     struct ctl_out *out)
{
	struct ctl_conn_row row;
	const struct ctl_conf *c = x->v->c;

	if (!x->v->sm) {
		ctl_out_printf(out, "  service manager: none runs here\n");
		return;
	}
	if (ctl_sm_conn_find(x->v->sm, &r->f, &row)) {
		ctl_out_printf(out,
			       "  service manager: VCRT entry -> %s: it installs the affinity"
			       " and forwards\n",
			       row.target < c->n_targets ? c->targets[row.target].name : "?");
		return;
	}
	if (t->step == FP_TRACE_INTEREST)
		ctl_out_printf(out, "  service manager: no VCRT entry: fast connection reset (RST"
				    " to the client)\n");
	else if (ctl_sm_sp_find(x->v->sm, r->f.dst, r->f.dport, r->f.proto) < 0)
		ctl_out_printf(out, "  service manager: the port is not distributed (deleted): no"
				    " new connection, dropped\n");
	else
		ctl_out_printf(out, "  service manager: no target of the service is ready, healthy"
				    " and not quiesced (show vdpt): fast reset\n");
}

int ctl_trace_flow(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	struct trace_req r;
	struct fp_trace t;
	char a[16], b[16], pr[4], h[96];
	int rc = trace_args(x, argc, argv, &r, out);

	if (rc != 0)
		return rc;
	if (fp_trace(&r.f, r.flags, &t) != 0)
		return ctl_cmd_fail(out, -EINVAL, "the fast path cannot trace this");
	summary(x, &t, out);
	ctl_out_printf(out, "  packet: %s %s:%u -> %s:%u%s%s\n", ctl_cmd_proto(r.f.proto, pr),
		       ctl_cmd_ip(r.f.src, a), r.f.sport, ctl_cmd_ip(r.f.dst, b), r.f.dport,
		       r.f.proto == 6 ? " flags " : "", r.f.proto == 6 ? flags_name(r.flags) : "");
	if (t.step == FP_TRACE_NO_TABLES)
		goto verdict;
	ctl_out_printf(out, "  vip: %s %s a VIP (tables generation %llu)\n", b,
		       t.step == FP_TRACE_NOT_VIP ? "is not" : "is",
		       (unsigned long long)t.generation);
	if (t.step == FP_TRACE_NOT_VIP || t.step == FP_TRACE_NOT_L4)
		goto verdict;
	if (t.step == FP_TRACE_AFFINITY)
		ctl_out_printf(out, "  affinity: -> %s, idle %u s of %u s, inserted by %s%s\n",
			       how(x->v->c, &t, h, sizeof(h)), t.aff.idle_ms / 1000, t.aff.ttl_s,
			       t.aff.flags & FP_AFF_F_WORKER ? "a worker" : "the Service Manager",
			       t.aff.flags & FP_AFF_F_CLOSING ? ", closing (FIN or RST seen)" : "");
	else
		ctl_out_printf(out, "  affinity: none\n");
	if (t.service != FP_TARGET_NONE)
		ctl_out_printf(out, "  service: %s, %s port %u%s\n", service_name(x, t.service), b,
			       t.service_port, t.service_port ? "" : " (every port)");
	else
		ctl_out_printf(out, "  service: none for %s port %u %s\n", b, r.f.dport,
			       ctl_cmd_proto(r.f.proto, pr));
	if (t.step == FP_TRACE_PLACE || t.step == FP_TRACE_NO_TARGET)
		steps_place(x, &t, out);
	if (t.step == FP_TRACE_INTEREST || t.step == FP_TRACE_NO_TARGET)
		steps_sm(x, &r, &t, out);
verdict:
	ctl_out_printf(out, "  verdict: %s\n", t.verdict ? t.verdict : "?");
	return 0;
}
