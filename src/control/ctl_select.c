/*
 * ctl_select.c - selection tables for the workers: which target each new
 * connection of a service gets, in what order (design.md section 4).
 *
 * Smooth weighted round robin (the algorithm nginx uses): every step adds
 * each target's weight to its current value, picks the largest and
 * subtracts the total from it. With weights 5,1,1 the order is a a b a c a a,
 * not a a a a a b c: no target receives a run of connections, which avoids
 * the paired-connection pathology of seed 002 (a client opening two
 * connections at once landing both on one target).
 *
 * Context: control thread.
 */
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static uint64_t gcd64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

uint32_t ctl_select_swrr(const uint32_t *w, unsigned n, uint32_t *out, uint32_t max)
{
	uint64_t total = 0, g = 0, scale = 1;
	int64_t *cur;
	uint32_t len = 0;

	for (unsigned i = 0; i < n; i++)
		g = gcd64(g, w[i]);
	if (g == 0 || max == 0)
		return 0;
	for (unsigned i = 0; i < n; i++)
		total += w[i] / g;
	// A sequence longer than max: scale the weights down, keeping every
	// non-zero weight at least 1.
	while (total > max) {
		scale *= 2;
		total = 0;
		for (unsigned i = 0; i < n; i++)
			total += w[i] ? (w[i] / g / scale > 0 ? w[i] / g / scale : 1) : 0;
	}
	cur = calloc(n, sizeof(*cur));
	if (!cur)
		return 0;
	for (uint32_t step = 0; step < total; step++) {
		unsigned best = n;

		for (unsigned i = 0; i < n; i++) {
			uint64_t wi = w[i] ? (w[i] / g / scale > 0 ? w[i] / g / scale : 1) : 0;

			if (wi == 0)
				continue;
			cur[i] += (int64_t)wi;
			if (best == n || cur[i] > cur[best])
				best = i;
		}
		cur[best] -= (int64_t)total;
		out[len++] = best;
	}
	free(cur);
	return len;
}

/* The selection of service s: target ids in order. */
static uint32_t service_selection(const struct ctl_conf *c, const struct ctl_service *s,
				  uint32_t *out)
{
	uint32_t w[FP_TARGETS_MAX], idx[FP_SEL_MAX], n;

	if (s->method == CTL_METHOD_RR) {
		for (unsigned i = 0; i < s->n_targets; i++)
			out[i] = c->targets[s->targets[i]].fp.id;
		return s->n_targets;
	}
	for (unsigned i = 0; i < s->n_targets; i++)
		w[i] = c->targets[s->targets[i]].weight;
	n = ctl_select_swrr(w, s->n_targets, idx, FP_SEL_MAX);
	if (n == 0 && s->n_targets) {
		// All weights zero: uniform among the targets (seed: all WLM
		// weights zero means round robin).
		for (unsigned i = 0; i < s->n_targets; i++)
			out[i] = c->targets[s->targets[i]].fp.id;
		return s->n_targets;
	}
	for (uint32_t i = 0; i < n; i++)
		out[i] = c->targets[s->targets[idx[i]]].fp.id;
	return n;
}

int ctl_tables_build(const struct ctl_conf *c, struct fp_tables_desc *d)
{
	unsigned n_svc = 0;
	struct fp_target_desc *targets;
	struct fp_service_desc *svcs;
	uint32_t *vips;

	memset(d, 0, sizeof(*d));
	for (unsigned i = 0; i < c->n_services; i++)
		n_svc += c->services[i].n_ports;
	targets = calloc(c->n_targets ? c->n_targets : 1, sizeof(*targets));
	svcs = calloc(n_svc ? n_svc : 1, sizeof(*svcs));
	vips = calloc(c->n_services ? c->n_services : 1, sizeof(*vips));
	if (!targets || !svcs || !vips)
		goto nomem;
	for (unsigned i = 0; i < c->n_targets; i++)
		targets[i] = c->targets[i].fp;
	n_svc = 0;
	for (unsigned i = 0; i < c->n_services; i++) {
		const struct ctl_service *s = &c->services[i];
		uint32_t *sel = calloc(FP_SEL_MAX, sizeof(*sel));

		if (!sel)
			goto nomem;
		vips[i] = s->vip;
		for (unsigned p = 0; p < s->n_ports; p++) {
			struct fp_service_desc *sd = &svcs[n_svc];

			sd->id = n_svc;
			sd->vip = s->vip;
			sd->port = s->ports[p];
			sd->proto = s->proto;
			sd->sel_mode = s->method == CTL_METHOD_HASH ? FP_SEL_HASH : FP_SEL_SEQUENCE;
			sd->idle_s = s->idle_s;
			// Ports of one service share one selection array: the first owns it.
			sd->sel = sel;
			sd->n_sel = p == 0 ? service_selection(c, s, sel) : svcs[n_svc - 1].n_sel;
			n_svc++;
		}
		if (s->n_ports == 0)
			free(sel);
	}
	d->targets = targets;
	d->n_targets = c->n_targets;
	d->services = svcs;
	d->n_services = n_svc;
	d->vips = vips;
	d->n_vips = c->n_services;
	return 0;
nomem:
	d->services = svcs;
	d->n_services = n_svc;
	ctl_tables_free(d);
	free(targets);
	free(vips);
	return -1;
}

void ctl_tables_free(struct fp_tables_desc *d)
{
	const uint32_t *last = NULL;

	for (uint32_t i = 0; i < d->n_services; i++) {
		if (d->services[i].sel != last)
			free((void *)(uintptr_t)d->services[i].sel);
		last = d->services[i].sel;
	}
	free((void *)(uintptr_t)d->services);
	free((void *)(uintptr_t)d->targets);
	free((void *)(uintptr_t)d->vips);
	memset(d, 0, sizeof(*d));
}
