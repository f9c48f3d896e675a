/*
 * ctl_show.c - the console's displays. Columns and their meanings follow
 * the seed's (000, 5.6: netstat VIPADCFG, VIPADYN, VDPT, VCRT; 6.8: show ip
 * casa oper, stats, wildcard, affinities); docs/console.md shows each one
 * with an example and says what every column means.
 *
 * Counters and DPT rows come from one ctl_snap, the snapshot the metrics
 * endpoint renders too, so a display and a scrape agree. The two tables
 * that can hold millions of rows (VCRT, affinities) are walked live, up to
 * a limit, so no display holds the control loop for long.
 *
 * Context: control thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "casa.h"
#include "ctl_cmd_int.h"

/* Handlers that take no argument. */
static int no_args(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	struct ctl_show_opts o;

	return argc ? ctl_cmd_opts(x, argc, argv, 0, &o, out) : 0;
}

static int snap(struct ctl_cmd_ctx *x, struct ctl_snap *s, struct ctl_out *out)
{
	if (ctl_snap_collect(x->v, x->now_ms, s) == 0)
		return 0;
	return ctl_cmd_fail(out, -ENOMEM, "out of memory for the display");
}

/* A display without arguments, over a fresh snapshot: 0, or the error
 * already written to out. */
static int snap_plain(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_snap *s,
		      struct ctl_out *out)
{
	int rc = no_args(x, argc, argv, out);

	return rc != 0 ? rc : snap(x, s, out);
}

static const char *target_name(const struct ctl_conf *c, uint32_t t)
{
	return t < c->n_targets ? c->targets[t].name : "?";
}

static uint32_t target_addr(const struct ctl_conf *c, uint32_t t)
{
	return t < c->n_targets ? c->targets[t].addr : 0;
}

static void records(struct ctl_out *out, unsigned shown, unsigned total)
{
	ctl_out_printf(out, "%u of %u records displayed\n", shown, total);
}

/* ---- netstat VIPADCFG (seed 5.6.1 Figure 5-19, 6.8.1) ---------------------------- */

/* One VIPA DISTRIBUTE line: a VIP's port and one of its targets. */
struct dist_row {
	uint32_t vip, xcf;
	uint16_t port;
	uint8_t proto;
	unsigned service, k;
	uint32_t target;
};

static int dist_cmp(const void *a, const void *b)
{
	const struct dist_row *x = a, *y = b;

	if (x->vip != y->vip)
		return x->vip < y->vip ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	if (x->service != y->service)
		return x->service < y->service ? -1 : 1;
	return x->k < y->k ? -1 : x->k > y->k;
}

/* Each distinct VIP once, in service order. */
static void vipa_define(const struct ctl_conf *c, struct ctl_out *out)
{
	char a[16];

	ctl_out_printf(out, "VIPA Define:\n  IP Address      AddressMask      Moveable   SrvMgr\n");
	for (unsigned i = 0; i < c->n_services; i++) {
		bool seen = false;

		for (unsigned j = 0; j < i; j++)
			seen |= c->services[j].vip == c->services[i].vip;
		if (!seen)
			ctl_out_printf(out, "  %-15s 255.255.255.255  %-10s %s\n",
				       ctl_cmd_ip(c->services[i].vip, a),
				       c->backup.takeback_immediate ? "Immediate" : "WhenIdle",
				       c->roles & CTL_ROLE_SM ? "Yes" : "No");
	}
}

static int vipa_distribute(const struct ctl_conf *live, struct ctl_out *out)
{
	struct dist_row *rows;
	size_t n = 0, cap = 0;
	char a[16], b[16], pr[4];

	for (unsigned i = 0; i < live->n_services; i++)
		cap += (size_t)live->services[i].n_ports * live->services[i].n_targets;
	rows = calloc(cap ? cap : 1, sizeof(*rows));
	if (!rows)
		return ctl_cmd_fail(out, -ENOMEM, "out of memory for the display");
	for (unsigned i = 0; i < live->n_services; i++) {
		const struct ctl_service *s = &live->services[i];

		for (unsigned p = 0; p < s->n_ports; p++)
			for (unsigned k = 0; k < s->n_targets; k++)
				rows[n++] = (struct dist_row){ s->vip,
							       target_addr(live, s->targets[k]),
							       s->ports[p],
							       s->proto,
							       i,
							       k,
							       s->targets[k] };
	}
	qsort(rows, n, sizeof(*rows), dist_cmp);
	ctl_out_printf(out, "VIPA Distribute:\n  IP Address      Port  Proto XCF Address     Target"
			    "           Service\n");
	for (size_t i = 0; i < n; i++)
		ctl_out_printf(
			out, "  %-15s %05u %-5s %-15s %-16s %s\n", ctl_cmd_ip(rows[i].vip, a),
			rows[i].port, ctl_cmd_proto(rows[i].proto, pr), ctl_cmd_ip(rows[i].xcf, b),
			target_name(live, rows[i].target), live->services[rows[i].service].name);
	free(rows);
	return 0;
}

int ctl_show_vipadcfg(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	struct ctl_conf live;
	char a[16];
	int rc = no_args(x, argc, argv, out);

	if (rc != 0)
		return rc;
	if (ctl_cmd_conf_live(x->v, &live) != 0)
		return ctl_cmd_fail(out, -ENOMEM, "out of memory for the display");
	ctl_out_printf(out, "Dynamic VIPA Information:\n");
	if (live.backup.rank > 0) {
		ctl_out_printf(out, "VIPA Backup:\n  IP Address      Rank\n");
		for (unsigned i = 0; i < live.n_services; i++)
			ctl_out_printf(out, "  %-15s %06u\n", ctl_cmd_ip(live.services[i].vip, a),
				       live.backup.rank);
	}
	vipa_define(&live, out);
	rc = vipa_distribute(&live, out);
	ctl_out_printf(out, "VIPA Service Manager:\n  McastGroup: %-15s Port: %05u  Pwd: %s\n",
		       ctl_cmd_ip(live.sm.group, a), live.sm.port, live.sm.auth_alg ? "Yes" : "No");
	ctl_cmd_conf_live_free(&live);
	return rc;
}

/* ---- netstat VIPADYN (seed 5.6.1 Figure 5-24, 6.8.1) ---------------------------- */

int ctl_show_vipadyn(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	const struct ctl_conf *c = x->v->c;
	bool backup = c->backup.rank > 0;
	unsigned n = 0;
	char a[16];
	int rc = no_args(x, argc, argv, out);

	if (rc != 0)
		return rc;
	ctl_out_printf(out, "IP Address      AddressMask      Status  Origination  DistStat\n");
	for (unsigned i = 0; i < c->n_services; i++) {
		bool seen = false;

		for (unsigned j = 0; j < i; j++)
			seen |= c->services[j].vip == c->services[i].vip;
		if (seen)
			continue;
		// casalb distributes and is never a destination itself: Dist.
		ctl_out_printf(out, "%-15s 255.255.255.255  %-7s %-12s %s\n",
			       ctl_cmd_ip(c->services[i].vip, a), backup ? "Backup" : "Active",
			       backup ? "VIPABackup" : "VIPADefine", backup ? "" : "Dist");
		n++;
	}
	records(out, n, n);
	return 0;
}

/* ---- netstat VDPT (seed 5.6.1 Figures 5-21, 5-22; 6.8.1) -------------------------- */

/* A DPT row and its place in the SM's order (the service's target order). */
struct dpt_ref {
	const struct ctl_dpt_row *r;
	unsigned i;
};

/* Sorted by VIP, port and protocol, as the seed shows them; stable. */
static int dpt_cmp(const void *a, const void *b)
{
	const struct dpt_ref *p = a, *q = b;
	const struct ctl_dpt_row *x = p->r, *y = q->r;

	if (x->vip != y->vip)
		return x->vip < y->vip ? -1 : 1;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	if (x->proto != y->proto)
		return x->proto < y->proto ? -1 : 1;
	return p->i < q->i ? -1 : p->i > q->i;
}

static const char *dpt_state(const struct ctl_dpt_row *r)
{
	if (!r->healthy)
		return "Down";
	return r->quiesced ? "Quiesced" : "Active";
}

int ctl_show_vdpt(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	struct ctl_show_opts o;
	struct dpt_ref *ord;
	struct ctl_snap s;
	char a[16], b[16], pr[4];
	int rc = ctl_cmd_opts(x, argc, argv, CTL_OPT_DETAIL, &o, out);

	if (rc == 0)
		rc = snap(x, &s, out);
	if (rc != 0)
		return rc;
	ord = calloc(s.n_dpt ? s.n_dpt : 1, sizeof(*ord));
	if (!ord) {
		ctl_snap_free(&s);
		return ctl_cmd_fail(out, -ENOMEM, "out of memory for the display");
	}
	for (unsigned i = 0; i < s.n_dpt; i++)
		ord[i] = (struct dpt_ref){ &s.dpt[i], i };
	qsort(ord, s.n_dpt, sizeof(*ord), dpt_cmp);
	ctl_out_printf(out, "Dynamic VIPA Destination Port Table:\n"
			    "Dest IPaddr     DPort DestXCF Addr    Rdy TotalConn  WLM Proto Target"
			    "           State\n");
	for (unsigned i = 0; i < s.n_dpt; i++) {
		const struct ctl_dpt_row *r = ord[i].r;

		ctl_out_printf(out, "%-15s %05u %-15s %03u %010llu %02u  %-5s %-16s %s\n",
			       ctl_cmd_ip(r->vip, a), r->port,
			       ctl_cmd_ip(target_addr(x->v->c, r->target), b), r->rdy,
			       (unsigned long long)r->total_conn, r->capacity,
			       ctl_cmd_proto(r->proto, pr), target_name(x->v->c, r->target),
			       dpt_state(r));
		if (o.detail)
			ctl_out_printf(
				out, "  Weight: %u  WLM: %02u  QoS: %.2f  W/Q: %u  Active: %llu\n",
				r->weight, r->capacity, r->qos, r->effective,
				(unsigned long long)r->active);
	}
	records(out, s.n_dpt, s.n_dpt);
	free(ord);
	ctl_snap_free(&s);
	return 0;
}

/* ---- netstat VCRT (seed 5.6.1 Figures 5-25, 5-26; 6.8.1) ------------------------- */

/* A walk over a table (VCRT, affinities) that prints rows up to a limit. */
struct row_walk {
	struct ctl_cmd_ctx *x;
	const struct ctl_show_opts *o;
	struct ctl_out *out;
	unsigned shown;
	bool more; /* the limit stopped the walk */
};

/* True (and the walk marked stopped) once the limit's rows are shown. */
static bool walk_full(struct row_walk *w)
{
	if (w->shown < w->o->limit)
		return false;
	w->more = true;
	return true;
}

static void vcrt_detail(const struct row_walk *w, const struct ctl_conn_row *r)
{
	char a[16], pr[4];
	uint64_t now = w->x->now_ms;

	ctl_out_printf(w->out, "  Target: %s  Proto: %s  From: %s  Age: %llu s  Idle: %llu s\n",
		       target_name(w->x->v->c, r->target), ctl_cmd_proto(r->flow.proto, pr),
		       r->fa ? ctl_cmd_ip(r->fa, a) : "local workers",
		       (unsigned long long)(now > r->created_ms ? (now - r->created_ms) / 1000 : 0),
		       (unsigned long long)(now > r->last_ms ? (now - r->last_ms) / 1000 : 0));
}

static int vcrt_row(const struct ctl_conn_row *r, void *arg)
{
	struct row_walk *w = arg;
	char a[16], b[16], c[16];

	if (w->o->has_vip && r->flow.dst != w->o->vip)
		return 0;
	if (walk_full(w))
		return 1;
	ctl_out_printf(w->out, "%-15s %05u %-15s %05u %s\n", ctl_cmd_ip(r->flow.dst, a),
		       r->flow.dport, ctl_cmd_ip(r->flow.src, b), r->flow.sport,
		       ctl_cmd_ip(target_addr(w->x->v->c, r->target), c));
	if (w->o->detail)
		vcrt_detail(w, r);
	w->shown++;
	return 0;
}

int ctl_show_vcrt(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	struct ctl_show_opts o;
	struct row_walk w = { .x = x, .o = &o, .out = out };
	uint64_t cursor = 0, total;
	int rc = ctl_cmd_opts(x, argc, argv, CTL_OPT_DETAIL | CTL_OPT_VIP | CTL_OPT_LIMIT, &o, out);

	if (rc != 0)
		return rc;
	ctl_out_printf(out, "Dynamic VIPA Connection Routing Table:\n"
			    "Dest IPaddr     DPort Src IPaddr      SPort DestXCF Addr\n");
	total = x->v->sm ? ctl_sm_conn_count(x->v->sm) : 0;
	// One pass over the table, stopped by the limit: bounded by the VCRT's
	// capacity, never by how many rows a client asks for.
	if (x->v->sm)
		do
			ctl_sm_conn_walk(x->v->sm, &cursor, 4096, vcrt_row, &w);
		while (cursor != 0 && !w.more);
	if (w.more)
		ctl_out_printf(out, "%u records displayed (limit %u reached; %llu in the table)\n",
			       w.shown, o.limit, (unsigned long long)total);
	else if (o.has_vip)
		ctl_out_printf(out, "%u records displayed (%llu in the table)\n", w.shown,
			       (unsigned long long)total);
	else
		records(out, w.shown, w.shown);
	return 0;
}

/* ---- show ip casa oper (seed 6.8.2) ----------------------------------------------- */

static void roles_line(unsigned roles, struct ctl_out *out)
{
	ctl_out_printf(out, "Roles: %s%s%s\n", roles & CTL_ROLE_SM ? "service-manager" : "",
		       roles == (CTL_ROLE_SM | CTL_ROLE_FA) ? ", " : "",
		       roles & CTL_ROLE_FA ? "forwarding-agent" : "");
}

int ctl_show_casa_oper(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	const struct ctl_conf *c = x->v->c;
	const struct ctl_sm_conf *sm = &c->sm;
	struct ctl_snap s;
	unsigned wc = 0;
	char a[16];
	int rc = snap_plain(x, argc, argv, &s, out);

	if (rc != 0)
		return rc;
	for (unsigned sp = 0; x->v->sm && sp < ctl_sm_sp_count(x->v->sm); sp++)
		wc += ctl_sm_sp_active(x->v->sm, sp);
	ctl_out_printf(out, "Casa is active:\nCasa control address is %s/32\n",
		       ctl_cmd_ip(sm->addr, a));
	ctl_out_printf(out, "Casa multicast address is %s\nListening on ports:\n",
		       ctl_cmd_ip(sm->group, a));
	ctl_out_printf(out, "Service Manager Listen Port: %u\n", sm->port);
	if (sm->auth_alg)
		ctl_out_printf(out, "Current passwd: key id %u (%s) Pending passwd: NONE\n",
			       sm->key_id, casa_auth_alg_name(sm->auth_alg));
	else
		ctl_out_printf(out, "Current passwd: NONE Pending passwd: NONE\n");
	ctl_out_printf(out, "Passwd timeout: %u sec\nMode: %s\n", sm->rollover_s,
		       sm->mode == CASA_MODE_EXTENDED ? "extended" : "strict");
	roles_line(c->roles, out);
	ctl_out_printf(out,
		       "Wildcards: %u advertised every %u s, TTL %u s; fixed affinity TTL %u s\n",
		       wc, sm->wildcard_interval_s, sm->wildcard_ttl_s, sm->fixed_ttl_s);
	ctl_out_printf(
		out, "Forwarding agents: %u of %u\nAgent sessions: %u (listening on %s:%u)\n",
		s.n_fas, sm->fa_max, s.n_agents, ctl_cmd_ip(c->agents.addr, a), c->agents.port);
	ctl_out_printf(out, "Local forwarding agent: %u worker(s), %llu of %llu affinities\n",
		       s.n_workers, (unsigned long long)s.aff.count,
		       (unsigned long long)s.aff.capacity);
	ctl_snap_free(&s);
	return 0;
}

/* ---- show ip casa stats (seed 6.8.2) ------------------------------------------------ */

static void pair(struct ctl_out *out, const char *a, uint64_t x, const char *b, uint64_t y)
{
	ctl_out_printf(out, "  %-17s %-12llu %-17s %llu\n", a, (unsigned long long)x, b,
		       (unsigned long long)y);
}

static uint64_t sum(const uint64_t *v, unsigned from, unsigned to)
{
	uint64_t t = 0;

	for (unsigned i = from; i < to; i++)
		t += v[i];
	return t;
}

int ctl_show_casa_stats(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	struct ctl_snap s;
	unsigned wc = 0;
	int rc = snap_plain(x, argc, argv, &s, out);

	if (rc != 0)
		return rc;
	for (unsigned sp = 0; x->v->sm && sp < ctl_sm_sp_count(x->v->sm); sp++)
		wc += ctl_sm_sp_active(x->v->sm, sp);
	ctl_out_printf(out, "Casa is active:\nWildcard Stats:\n");
	pair(out, "Wildcards:", wc, "Max Wildcards:", FP_SERVICES_MAX);
	pair(out, "Wildcards sent:", s.casa.wildcards_sent,
	     "Wildcard deletes:", s.casa.wildcard_deletes_sent);
	ctl_out_printf(out, "Affinity Stats:\n");
	pair(out, "Affinities:", s.aff.count, "Max Affinities:", s.aff.capacity);
	pair(out, "Inserts:", s.aff.inserts, "Expiries:", s.aff.expiries);
	pair(out, "Deletes:", s.aff.deletes, "Affinity Drops:", s.aff.full + s.casa.affinity_full);
	pair(out, "Fixed sent:", s.casa.fixed_sent, "Deletes sent:", s.casa.deletes_sent);
	ctl_out_printf(out, "Casa Stats:\n");
	pair(out, "Int Packet:", sum(s.sm.interest, 0, CTL_INT__COUNT),
	     "Int Tickle:", s.casa.tickles);
	pair(out, "Casa Denies:", s.casa.interest_denied,
	     "Drop Count:", sum(s.casa.drops, 0, CASA_E__COUNT));
	pair(out, "Security Drops:", sum(s.casa.drops, CASA_E_AUTH_REQUIRED, CASA_E__COUNT),
	     "Send Errors:", s.casa.tx_errors);
	ctl_out_printf(out, "Service Manager:\n  Interest:");
	for (int v = 0; v < CTL_INT__COUNT; v++)
		ctl_out_printf(out, " %s %llu%s", ctl_sm_interest_name((enum ctl_interest)v),
			       (unsigned long long)s.sm.interest[v],
			       v + 1 < CTL_INT__COUNT ? "," : "\n");
	pair(out, "Connections:", s.vcrt_count, "VCRT capacity:", s.vcrt_capacity);
	pair(out, "Worker notices:", s.sm.worker_conns, "Connection ends:", s.sm.conn_ends);
	pair(out, "Resets sent:", s.casa.resets_sent, "Resets limited:", s.casa.resets_limited);
	ctl_snap_free(&s);
	return 0;
}

/* ---- show ip casa wildcard (seed 6.8.2) ---------------------------------------------- */

static unsigned ready_targets(const struct ctl_snap *s, unsigned sp, unsigned *of)
{
	unsigned n = 0;

	*of = 0;
	for (unsigned i = 0; i < s->n_dpt; i++) {
		if (s->dpt[i].sp != sp)
			continue;
		(*of)++;
		n += s->dpt[i].rdy > 0 && s->dpt[i].healthy && !s->dpt[i].quiesced;
	}
	return n;
}

static void wildcard_detail(struct ctl_cmd_ctx *x, const struct ctl_snap *s, unsigned sp,
			    unsigned service, struct ctl_out *out)
{
	const struct ctl_conf *c = x->v->c;
	unsigned of, ready = ready_targets(s, sp, &of);
	char a[16];

	ctl_out_printf(out, "  Service Manager Details:\n    Manager Addr:    %-16s Service: %s\n",
		       ctl_cmd_ip(c->sm.addr, a), c->services[service].name);
	ctl_out_printf(out,
		       "  Affinity Statistics:\n    Affinity Count:  %-16llu Ready targets: %u of"
		       " %u\n",
		       (unsigned long long)ctl_sm_sp_conns(x->v->sm, sp), ready, of);
	ctl_out_printf(out,
		       "  Advertise Dest Address: NO      Match Fragments: YES\n"
		       "  Affinity TTL: %u\n",
		       c->sm.wildcard_ttl_s);
	ctl_out_printf(out, "  Action Details:\n    Interest Addr:   %-16s Interest Port: %u\n",
		       ctl_cmd_ip(c->sm.addr, a), c->sm.port);
	ctl_out_printf(out,
		       "    Interest Packet: 0x%04x FRAG ALLPKTS\n    Interest Tickle: 0x0000\n"
		       "    Dispatch (Layer 2): NO      Dispatch Address: 0.0.0.0\n",
		       CASA_INT_FRAG | CASA_INT_ALLPKTS);
}

/* Deleted ports whose connections still drain: not advertised any more. */
static void wildcard_draining(struct ctl_cmd_ctx *x, struct ctl_out *out)
{
	char a[16], pr[4];

	for (unsigned sp = 0; sp < ctl_sm_sp_count(x->v->sm); sp++) {
		uint32_t vip;
		uint16_t port;
		uint8_t proto;

		if (ctl_sm_sp_active(x->v->sm, sp) || ctl_sm_sp_conns(x->v->sm, sp) == 0 ||
		    ctl_sm_sp_get(x->v->sm, sp, &vip, &port, &proto, NULL) != 0)
			continue;
		ctl_out_printf(out, "Withdrawn, draining: %s port %u %s, %llu connection(s)\n",
			       ctl_cmd_ip(vip, a), port, ctl_cmd_proto(proto, pr),
			       (unsigned long long)ctl_sm_sp_conns(x->v->sm, sp));
	}
}

int ctl_show_casa_wildcard(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	struct ctl_show_opts o;
	struct ctl_snap s;
	char a[16], pr[4];
	int rc = ctl_cmd_opts(x, argc, argv, CTL_OPT_DETAIL, &o, out);

	if (rc == 0)
		rc = snap(x, &s, out);
	if (rc != 0)
		return rc;
	ctl_out_printf(out, "Source Address  Source Mask     Port  Dest Address    Dest Mask"
			    "        Port  Prot\n");
	for (unsigned sp = 0; x->v->sm && sp < ctl_sm_sp_count(x->v->sm); sp++) {
		uint32_t vip;
		uint16_t port;
		uint8_t proto;
		unsigned service;

		if (!ctl_sm_sp_active(x->v->sm, sp) ||
		    ctl_sm_sp_get(x->v->sm, sp, &vip, &port, &proto, &service) != 0)
			continue;
		ctl_out_printf(
			out,
			"0.0.0.0         0.0.0.0         0     %-15s 255.255.255.255  %-5u %s\n",
			ctl_cmd_ip(vip, a), port, ctl_cmd_proto(proto, pr));
		if (o.detail)
			wildcard_detail(x, &s, sp, service, out);
	}
	if (x->v->sm)
		wildcard_draining(x, out);
	ctl_snap_free(&s);
	return 0;
}

/* ---- show ip casa affinities (seed 6.8.2) --------------------------------------------- */

static void aff_detail(const struct row_walk *w, const struct fp_affinity *f)
{
	const struct ctl_conf *c = w->x->v->c;
	bool l2 = f->target < c->n_targets && c->targets[f->target].fp.dispatch == FP_DISPATCH_L2;
	char a[16];

	ctl_out_printf(w->out, "  Action Details:\n    Interest Addr:   %-16s Interest Port: %u\n",
		       ctl_cmd_ip(c->sm.addr, a), c->sm.port);
	ctl_out_printf(w->out, "    Interest Packet: 0x%04x SYN\n    Interest Tickle: 0x0000\n",
		       CASA_INT_SYN);
	ctl_out_printf(w->out, "    Dispatch (Layer 2): %-7s Dispatch Address: %s\n",
		       l2 ? "YES" : "NO", ctl_cmd_ip(target_addr(c, f->target), a));
	ctl_out_printf(w->out, "    Idle: %u s of %u s  Origin: %s%s\n", f->idle_ms / 1000,
		       f->ttl_s, f->flags & FP_AFF_F_WORKER ? "worker" : "service manager",
		       f->flags & FP_AFF_F_CLOSING ? "  Closing (FIN or RST seen)" : "");
}

static int aff_row(const struct fp_affinity *f, void *arg)
{
	struct row_walk *w = arg;
	char a[16], b[16], pr[4];

	if (walk_full(w))
		return 1;
	if (w->shown == 0)
		ctl_out_printf(w->out,
			       "Source Address  Port   Dest Address    Port   Prot  Target\n");
	ctl_out_printf(w->out, "%-15s %-6u %-15s %-6u %-5s %s\n", ctl_cmd_ip(f->flow.src, a),
		       f->flow.sport, ctl_cmd_ip(f->flow.dst, b), f->flow.dport,
		       ctl_cmd_proto(f->flow.proto, pr), target_name(w->x->v->c, f->target));
	if (w->o->detail)
		aff_detail(w, f);
	w->shown++;
	return 0;
}

int ctl_show_casa_affinities(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	struct ctl_show_opts o;
	struct row_walk w = { .x = x, .o = &o, .out = out };
	struct fp_table_stats t;
	uint64_t cursor = 0;
	int rc = ctl_cmd_opts(x, argc, argv, CTL_OPT_DETAIL | CTL_OPT_LIMIT, &o, out);

	if (rc != 0)
		return rc;
	do
		fp_affinity_walk(&cursor, 4096, aff_row, &w);
	while (cursor != 0 && !w.more);
	fp_affinity_stats(&t);
	if (w.shown == 0)
		ctl_out_printf(out, "No matching entries in affinity cache\n");
	else if (w.more)
		ctl_out_printf(out,
			       "%u affinities displayed (limit %u reached; %llu in the table)\n",
			       w.shown, o.limit, (unsigned long long)t.count);
	else
		ctl_out_printf(out, "%u affinities displayed\n", w.shown);
	return 0;
}

/* ---- fast path, targets, agents, forwarding agents ---------------------------------------- */

static void worker_line(struct ctl_out *out, const char *name, const struct fp_worker_stats *w)
{
	double busy = w->loops ? 100.0 * (double)w->busy_loops / (double)w->loops : 0.0;

	ctl_out_printf(out, "%-7s %-12llu %-12llu %-14llu %-14llu %5.1f  %llu\n", name,
		       (unsigned long long)w->rx_pkts, (unsigned long long)w->tx_pkts,
		       (unsigned long long)w->rx_bytes, (unsigned long long)w->tx_bytes, busy,
		       (unsigned long long)w->events_lost);
}

int ctl_show_workers(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	struct fp_worker_stats total = { 0 };
	struct ctl_snap s;
	int rc = snap_plain(x, argc, argv, &s, out);

	if (rc != 0)
		return rc;
	ctl_out_printf(out, "Worker  RxPkts       TxPkts       RxBytes        TxBytes        Busy%%"
			    "  EventsLost\n");
	for (unsigned i = 0; i < s.n_workers; i++) {
		const struct fp_worker_stats *w = &s.workers[i];
		char name[12];

		snprintf(name, sizeof(name), "%u", i);
		worker_line(out, name, w);
		total.rx_pkts += w->rx_pkts;
		total.tx_pkts += w->tx_pkts;
		total.rx_bytes += w->rx_bytes;
		total.tx_bytes += w->tx_bytes;
		total.loops += w->loops;
		total.busy_loops += w->busy_loops;
		total.events_lost += w->events_lost;
	}
	worker_line(out, "total", &total);
	ctl_snap_free(&s);
	return 0;
}

static void drop(struct ctl_out *out, const char *name, uint64_t n, unsigned *shown)
{
	if (n == 0)
		return;
	ctl_out_printf(out, "  %-32s %llu\n", name, (unsigned long long)n);
	(*shown)++;
}

static void drops_fastpath(const struct ctl_snap *s, struct ctl_out *out, unsigned *shown)
{
	for (unsigned v = 0; v < fp_verdict_count() && v < FP_VERDICT_SLOTS; v++) {
		const char *name = fp_verdict_label(v);
		uint64_t n = 0;

		if (!name || strncmp(name, "drop_", 5) != 0)
			continue;
		for (unsigned w = 0; w < s->n_workers; w++)
			n += s->workers[w].verdict[v];
		drop(out, name, n, shown);
	}
	drop(out, "affinity_table_full", s->aff.full, shown);
}

static void drops_control(const struct ctl_snap *s, struct ctl_out *out, unsigned *shown)
{
	drop(out, "interest_no_service", s->sm.interest[CTL_INT_NO_SERVICE], shown);
	drop(out, "vcrt_full", s->sm.vcrt_full, shown);
	drop(out, "conn_end_unknown", s->sm.conn_end_unknown, shown);
	drop(out, "deletes_lost", s->sm.deletes_lost, shown);
	drop(out, "withdraws_lost", s->sm.withdraws_lost, shown);
	for (int e = 1; e < CASA_E__COUNT; e++) {
		char name[48];

		snprintf(name, sizeof(name), "casa_%s", casa_err_reason((enum casa_err)e));
		drop(out, name, s->casa.drops[e], shown);
	}
	drop(out, "casa_interest_denied", s->casa.interest_denied, shown);
	drop(out, "casa_interest_unparsable", s->casa.interest_unparsable, shown);
	drop(out, "casa_tx_errors", s->casa.tx_errors, shown);
	drop(out, "casa_resets_limited", s->casa.resets_limited, shown);
	drop(out, "agent_framing_errors", s->agent.framing_errors, shown);
	drop(out, "agent_protocol_errors", s->agent.protocol_errors, shown);
	drop(out, "agent_refused_full", s->agent.refused_full, shown);
	drop(out, "agent_tx_overflow", s->agent.tx_overflow, shown);
	for (int e = 1; e < CASA_E__COUNT; e++) {
		char name[48];

		snprintf(name, sizeof(name), "agent_%s", casa_err_reason((enum casa_err)e));
		drop(out, name, s->agent.drops[e], shown);
	}
}

int ctl_show_drops(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	struct ctl_snap s;
	unsigned shown = 0;
	int rc = snap_plain(x, argc, argv, &s, out);

	if (rc != 0)
		return rc;
	ctl_out_printf(out, "Fast path (all workers):\n");
	drops_fastpath(&s, out, &shown);
	if (shown == 0)
		ctl_out_printf(out, "  none\n");
	shown = 0;
	ctl_out_printf(out, "Control (Service Manager, CASA, agents):\n");
	drops_control(&s, out, &shown);
	if (shown == 0)
		ctl_out_printf(out, "  none\n");
	ctl_snap_free(&s);
	return 0;
}

static const char *target_via(const struct ctl_target *t, char *buf, size_t cap)
{
	const uint8_t *m = t->fp.mac;
	char a[16];

	if (t->fp.dispatch == FP_DISPATCH_GRE)
		snprintf(buf, cap, "gre %s", ctl_cmd_ip(t->fp.tunnel, a));
	else
		snprintf(buf, cap, "l2 %02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
			 m[5]);
	return buf;
}

int ctl_show_targets(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	const struct ctl_conf *c = x->v->c;
	int rc = no_args(x, argc, argv, out);

	if (rc != 0)
		return rc;
	ctl_out_printf(out, "Id    Name             Address         Via                    Weight"
			    "   WLM QoS   Agent State    Active\n");
	for (unsigned t = 0; t < c->n_targets; t++) {
		struct ctl_target_row r = { .weight = c->targets[t].weight, .healthy = true };
		char a[16], via[40];

		if (x->v->sm)
			ctl_sm_target_get(x->v->sm, t, &r);
		ctl_out_printf(out, "%-5u %-16s %-15s %-22s %-8u %-3u %.2f  %-5s %-8s %llu\n", t,
			       c->targets[t].name, ctl_cmd_ip(c->targets[t].addr, a),
			       target_via(&c->targets[t], via, sizeof(via)), r.weight, r.capacity,
			       r.qos,
			       r.agent_live      ? "up" :
			       r.registered_once ? "lost" :
						   "none",
			       !r.healthy ? "Down" :
			       r.quiesced ? "Quiesced" :
					    "Active",
			       (unsigned long long)r.active);
	}
	records(out, c->n_targets, c->n_targets);
	return 0;
}

int ctl_show_agents(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	struct ctl_snap s;
	int rc = snap_plain(x, argc, argv, &s, out);

	if (rc != 0)
		return rc;
	ctl_out_printf(out, "Address               Target           SenderId    LastRx  Msgs"
			    "        Drops\n");
	for (unsigned i = 0; i < s.n_agents; i++) {
		const struct ctl_agent_row *r = &s.agents[i];
		char a[16], peer[24];

		snprintf(peer, sizeof(peer), "%s:%u", ctl_cmd_ip(r->addr, a), r->port);
		ctl_out_printf(out, "%-21s %-16s 0x%08x  %-6llu  %-11llu %llu\n", peer,
			       r->registered ? target_name(x->v->c, r->target) : "-", r->sender_id,
			       (unsigned long long)(x->now_ms > r->last_rx_ms ?
							    (x->now_ms - r->last_rx_ms) / 1000 :
							    0),
			       (unsigned long long)r->msgs, (unsigned long long)r->drops);
	}
	records(out, s.n_agents, s.n_agents);
	ctl_snap_free(&s);
	return 0;
}

static void fa_stats(const struct ctl_fa_row *f, uint64_t now, struct ctl_out *out)
{
	unsigned n = 0;

	if (!f->last_stats_ms) {
		ctl_out_printf(out, "  No statistics reported\n");
		return;
	}
	ctl_out_printf(
		out, "  Statistics (reported %llu s ago):\n",
		(unsigned long long)(now > f->last_stats_ms ? (now - f->last_stats_ms) / 1000 : 0));
	for (unsigned id = 1; id < CTL_FA_STATS; id++) {
		if (!f->stats[id])
			continue;
		ctl_out_printf(out, "    %-28s %llu\n", casa_stat_name((uint16_t)id),
			       (unsigned long long)f->stats[id]);
		n++;
	}
	if (n == 0)
		ctl_out_printf(out, "    all zero\n");
}

int ctl_show_fas(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	struct ctl_show_opts o;
	struct ctl_snap s;
	int rc = ctl_cmd_opts(x, argc, argv, CTL_OPT_DETAIL, &o, out);

	if (rc == 0)
		rc = snap(x, &s, out);
	if (rc != 0)
		return rc;
	ctl_out_printf(out, "SenderId    Address         Port  Epoch       Hold LastHello Hellos"
			    "     Caps  Name\n");
	for (unsigned i = 0; i < s.n_fas; i++) {
		const struct ctl_fa_row *f = &s.fas[i];
		char a[16], name[41];

		ctl_out_printf(out, "0x%08x  %-15s %-5u %-11u %-4u %-9llu %-10llu 0x%02x  %s\n",
			       f->sender_id, ctl_cmd_ip(f->addr, a), f->port, f->epoch, f->hold_s,
			       (unsigned long long)(x->now_ms > f->last_hello_ms ?
							    (x->now_ms - f->last_hello_ms) / 1000 :
							    0),
			       (unsigned long long)f->hellos, f->caps,
			       // From the network: no control bytes reach a terminal.
			       ctl_cmd_word(f->name, name, sizeof(name)));
		if (o.detail)
			fa_stats(f, x->now_ms, out);
	}
	records(out, s.n_fas, s.n_fas);
	ctl_snap_free(&s);
	return 0;
}

/* ---- show config ------------------------------------------------------------------------ */

int ctl_show_config(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	struct ctl_conf live;
	char *text = NULL;
	size_t len = 0;
	FILE *f;
	int rc = no_args(x, argc, argv, out);

	if (rc != 0)
		return rc;
	if (ctl_cmd_conf_live(x->v, &live) != 0)
		return ctl_cmd_fail(out, -ENOMEM, "out of memory for the display");
	f = open_memstream(&text, &len);
	if (f) {
		ctl_conf_print(&live, f);
		fclose(f);
	}
	ctl_cmd_conf_live_free(&live);
	if (!f || !text) {
		free(text);
		return ctl_cmd_fail(out, -ENOMEM, "out of memory for the display");
	}
	// The secrets never appear: ctl_conf_print shows files or stars.
	ctl_out_printf(out, "# running configuration of %s, with live changes\n%s", x->v->c->file,
		       text);
	free(text);
	return 0;
}
