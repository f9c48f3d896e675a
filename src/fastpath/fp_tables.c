/*
 * fp_tables.c - the published snapshot: services, targets, selection tables
 * and VIPs, built whole from the control side's description and read by
 * workers without locks (design.md section 4, style.md habit 6).
 *
 * A snapshot is one allocation, laid out as
 *   struct fp_snapshot | targets[] | services[] | policies[] | ids[] | wc[] | vip_set[]
 * so that freeing it is one call and reading it touches few pages.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp_internal.h"

static uint32_t pow2_at_least(uint32_t n)
{
	uint32_t p = 1;

	while (p < n)
		p <<= 1;
	return p;
}

static uint32_t wc_hash(uint32_t vip, uint16_t port, uint8_t proto)
{
	uint64_t h = ((uint64_t)vip << 32) | ((uint64_t)port << 8) | proto;

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return (uint32_t)h;
}

const struct fp_service_rt *fp_tables_service(const struct fp_snapshot *s, uint32_t vip,
					      uint16_t port, uint8_t proto)
{
	uint16_t try_port[2] = { port, 0 };

	for (unsigned k = 0; k < 2; k++) {
		uint32_t i = wc_hash(vip, try_port[k], proto) & s->wc_mask;

		for (;; i = (i + 1) & s->wc_mask) {
			int32_t idx = s->wc[i];
			const struct fp_service_rt *svc;

			if (idx < 0)
				break;
			svc = &s->services[idx];
			if (svc->vip == vip && svc->port == try_port[k] && svc->proto == proto)
				return svc;
		}
		if (port == 0)
			break;
	}
	return NULL;
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t errlen, const char *fmt,
						      ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int check_sel(const uint32_t *ids, uint32_t n, const struct fp_tables_desc *d,
		     const struct fp_target_rt *targets, uint32_t n_rows, uint32_t svc, char *err,
		     size_t errlen)
{
	if (n > FP_SEL_MAX)
		return fail(err, errlen, "service %u: selection of %u entries exceeds %u", svc, n,
			    FP_SEL_MAX);
	if (n && !ids)
		return fail(err, errlen, "service %u: selection entries missing", svc);
	for (uint32_t i = 0; i < n; i++)
		if (ids[i] >= n_rows || !targets[ids[i]].valid)
			return fail(err, errlen, "service %u: selection names unknown target %u",
				    svc, ids[i]);
	(void)d;
	return 0;
}

/* Sizes of the parts of a snapshot for description d. */
struct layout {
	uint32_t rows, n_pol, n_ids, wc_slots, vip_slots;
	size_t off_targets, off_services, off_policies, off_ids, off_wc, off_vip, total;
};

static int plan_layout(const struct fp_tables_desc *d, struct layout *l, char *err, size_t errlen)
{
	memset(l, 0, sizeof(*l));
	if (d->n_targets > FP_TARGETS_MAX || d->n_services > FP_SERVICES_MAX ||
	    d->n_vips > FP_VIPS_MAX)
		return fail(err, errlen, "too many targets, services or VIPs (limits %u, %u, %u)",
			    FP_TARGETS_MAX, FP_SERVICES_MAX, FP_VIPS_MAX);
	for (uint32_t i = 0; i < d->n_targets; i++) {
		if (d->targets[i].id >= FP_TARGETS_MAX)
			return fail(err, errlen, "target id %u out of range 0..%u",
				    d->targets[i].id, FP_TARGETS_MAX - 1);
		if (d->targets[i].id + 1 > l->rows)
			l->rows = d->targets[i].id + 1;
	}
	for (uint32_t i = 0; i < d->n_services; i++) {
		const struct fp_service_desc *sd = &d->services[i];

		l->n_ids += sd->n_sel;
		l->n_pol += sd->n_policies;
		for (uint32_t p = 0; p < sd->n_policies; p++)
			l->n_ids += sd->policies[p].n_sel;
	}
	l->wc_slots = pow2_at_least(2 * d->n_services + 2);
	l->vip_slots = pow2_at_least(2 * d->n_vips + 2);
	l->off_targets = RTE_ALIGN_CEIL(sizeof(struct fp_snapshot), 64);
	l->off_services =
		RTE_ALIGN_CEIL(l->off_targets + (size_t)l->rows * sizeof(struct fp_target_rt), 64);
	l->off_policies = RTE_ALIGN_CEIL(
		l->off_services + (size_t)d->n_services * sizeof(struct fp_service_rt), 64);
	l->off_ids = RTE_ALIGN_CEIL(
		l->off_policies + (size_t)l->n_pol * sizeof(struct fp_policy_rt), 64);
	l->off_wc = RTE_ALIGN_CEIL(l->off_ids + (size_t)l->n_ids * sizeof(uint32_t), 64);
	l->off_vip = RTE_ALIGN_CEIL(l->off_wc + (size_t)l->wc_slots * sizeof(int32_t), 64);
	l->total = l->off_vip + (size_t)l->vip_slots * sizeof(uint32_t);
	return 0;
}

/* The GRE rules of the configuration, as fp_gre_write takes them. */
static void gre_rules(struct fp_gre_params *g, const struct fp_conf *c)
{
	memset(g, 0, sizeof(*g));
	g->flags = (c->gre.use_key ? FP_GRE_F_KEY : 0) | (c->gre.use_seq ? FP_GRE_F_SEQ : 0);
	g->ttl = c->gre.ttl;
	g->tos = c->gre.tos;
	g->df = c->gre.df;
}

/* Build target t's outer headers once; workers copy them (fp_gre_apply). */
static void gre_template(const struct fp_snapshot *s, struct fp_target_rt *t,
			 const struct fp_target_desc *td, const struct fp_conf *c)
{
	static const uint8_t dummy_inner[FP_IP_MIN_LEN] = { 0x45 };
	struct fp_gre_params g = s->gre;

	memcpy(g.dst_mac, t->dst_mac, 6);
	memcpy(g.src_mac, t->src_mac, 6);
	g.src = c->gre.local ? c->gre.local : c->ports[td->port].addr;
	g.dst = td->tunnel;
	g.key = td->gre_key;
	t->gre_len = (uint8_t)fp_gre_hdr_len(g.flags);
	fp_gre_write(t->gre_tmpl, &g, dummy_inner, 0);
}

static int fill_targets(struct fp_snapshot *s, const struct fp_tables_desc *d,
			const struct fp_conf *c, const uint8_t (*port_macs)[6], uint16_t n_ports,
			char *err, size_t errlen)
{
	for (uint32_t i = 0; i < d->n_targets; i++) {
		const struct fp_target_desc *td = &d->targets[i];
		struct fp_target_rt *t = &s->targets[td->id];

		if (t->valid)
			return fail(err, errlen, "target %u: id given twice", td->id);
		if (td->dispatch != FP_DISPATCH_GRE && td->dispatch != FP_DISPATCH_L2)
			return fail(err, errlen, "target %u: dispatch %u is neither gre nor l2",
				    td->id, td->dispatch);
		if (td->port >= n_ports)
			return fail(err, errlen, "target %u: data port %u does not exist", td->id,
				    td->port);
		if (td->dispatch == FP_DISPATCH_GRE && td->tunnel == 0)
			return fail(err, errlen, "target %u: gre needs a tunnel endpoint", td->id);
		if (td->has_mac) {
			memcpy(t->dst_mac, td->mac, 6);
		} else if (td->dispatch == FP_DISPATCH_GRE && c->ports[td->port].has_gw_mac) {
			memcpy(t->dst_mac, c->ports[td->port].gw_mac, 6);
		} else {
			return fail(err, errlen,
				    "target %u: no MAC address (l2 needs the target's; gre needs "
				    "it or the port's gateway MAC)",
				    td->id);
		}
		memcpy(t->src_mac, port_macs[td->port], 6);
		if (td->dispatch == FP_DISPATCH_GRE)
			gre_template(s, t, td, c);
		t->dispatch = td->dispatch;
		t->port = td->port;
		t->tunnel = td->tunnel;
		t->gre_key = td->gre_key;
		t->valid = 1;
	}
	return 0;
}

static int32_t *wc_slot(struct fp_snapshot *s, uint32_t vip, uint16_t port, uint8_t proto)
{
	uint32_t i = wc_hash(vip, port, proto) & s->wc_mask;

	for (;; i = (i + 1) & s->wc_mask) {
		int32_t idx = s->wc[i];

		if (idx < 0)
			return &s->wc[i];
		if (s->services[idx].vip == vip && s->services[idx].port == port &&
		    s->services[idx].proto == proto)
			return NULL; /* duplicate */
	}
}

static const uint32_t *copy_ids(uint32_t **cursor, const uint32_t *ids, uint32_t n)
{
	uint32_t *dst = *cursor;

	if (n)
		memcpy(dst, ids, n * sizeof(*ids));
	*cursor += n;
	return dst;
}

static int fill_services(struct fp_snapshot *s, const struct fp_tables_desc *d,
			 struct fp_policy_rt *pol, uint32_t *ids, char *err, size_t errlen)
{
	for (uint32_t i = 0; i < d->n_services; i++) {
		const struct fp_service_desc *sd = &d->services[i];
		struct fp_service_rt *svc = &s->services[i];
		int32_t *slot;
		int rc;

		if (sd->proto != 6 && sd->proto != 17)
			return fail(err, errlen, "service %u: protocol %u is neither tcp nor udp",
				    sd->id, sd->proto);
		if (sd->vip == 0)
			return fail(err, errlen, "service %u: no VIP", sd->id);
		if (sd->sel_mode != FP_SEL_SEQUENCE && sd->sel_mode != FP_SEL_HASH)
			return fail(err, errlen, "service %u: unknown selection mode %u", sd->id,
				    sd->sel_mode);
		rc = check_sel(sd->sel, sd->n_sel, d, s->targets, s->n_targets, sd->id, err,
			       errlen);
		for (uint32_t p = 0; rc == 0 && p < sd->n_policies; p++)
			rc = check_sel(sd->policies[p].sel, sd->policies[p].n_sel, d, s->targets,
				       s->n_targets, sd->id, err, errlen);
		if (rc)
			return rc;
		svc->id = sd->id;
		svc->vip = sd->vip;
		svc->port = sd->port;
		svc->proto = sd->proto;
		svc->sel_mode = sd->sel_mode;
		svc->idle_s = sd->idle_s;
		svc->sel.n = sd->n_sel;
		svc->sel.ids = copy_ids(&ids, sd->sel, sd->n_sel);
		svc->policies = pol;
		svc->n_policies = sd->n_policies;
		for (uint32_t p = 0; p < sd->n_policies; p++, pol++) {
			pol->src = sd->policies[p].src & sd->policies[p].mask;
			pol->mask = sd->policies[p].mask;
			pol->sel.n = sd->policies[p].n_sel;
			pol->sel.ids = copy_ids(&ids, sd->policies[p].sel, sd->policies[p].n_sel);
		}
		slot = wc_slot(s, sd->vip, sd->port, sd->proto);
		if (!slot)
			return fail(err, errlen, "service %u: VIP, port and protocol given twice",
				    sd->id);
		*slot = (int32_t)i;
	}
	return 0;
}

static void fill_vips(struct fp_snapshot *s, const struct fp_tables_desc *d)
{
	for (uint32_t i = 0; i < d->n_vips; i++) {
		uint32_t a = d->vips[i];

		if (a == 0 || fp_tables_is_vip(s, a))
			continue;
		for (uint32_t j = fp_vip_hash(a) & s->vip_mask;; j = (j + 1) & s->vip_mask)
			if (s->vip_set[j] == 0) {
				s->vip_set[j] = a;
				break;
			}
	}
}

/*
 * Snapshots are plain heap memory, not DPDK's: nothing DMAs into them, and
 * under AddressSanitizer a worker reading a snapshot freed too early is
 * reported (test_fp_rcu relies on it).
 */
static void *snap_alloc(size_t n)
{
	void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);

	if (p)
		memset(p, 0, n);
	return p;
}

void fp_tables_free(struct fp_snapshot *s)
{
	free(s);
}

struct fp_snapshot *fp_tables_build(const struct fp_tables_desc *d, const struct fp_conf *c,
				    const uint8_t (*port_macs)[6], uint16_t n_ports, char *err,
				    size_t errlen)
{
	static uint64_t generation;
	struct layout l;
	struct fp_snapshot *s;
	uint8_t *base;

	if (plan_layout(d, &l, err, errlen))
		return NULL;
	base = snap_alloc(l.total);
	if (!base) {
		fail(err, errlen, "out of memory for a %zu-byte snapshot", l.total);
		errno = ENOMEM;
		return NULL;
	}
	s = (struct fp_snapshot *)base;
	s->bytes = l.total;
	s->n_targets = l.rows;
	s->targets = (struct fp_target_rt *)(base + l.off_targets);
	s->n_services = d->n_services;
	s->services = (struct fp_service_rt *)(base + l.off_services);
	s->wc_mask = l.wc_slots - 1;
	s->wc = (int32_t *)(base + l.off_wc);
	memset(s->wc, 0xff, l.wc_slots * sizeof(int32_t));
	s->vip_mask = l.vip_slots - 1;
	s->vip_set = (uint32_t *)(base + l.off_vip);
	gre_rules(&s->gre, c);
	if (fill_targets(s, d, c, port_macs, n_ports, err, errlen) ||
	    fill_services(s, d, (struct fp_policy_rt *)(base + l.off_policies),
			  (uint32_t *)(base + l.off_ids), err, errlen)) {
		fp_tables_free(s);
		errno = EINVAL;
		return NULL;
	}
	fill_vips(s, d);
	s->generation = ++generation;
	return s;
}
