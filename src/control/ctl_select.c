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

/* Exactly len steps of smooth weighted round robin over w[0..n) (len is
 * normally the sum of the weights, one full cycle). */
static uint32_t swrr_steps(const uint64_t *w, unsigned n, uint64_t total, uint32_t *out,
			   uint32_t len)
{
	int64_t *cur = calloc(n ? n : 1, sizeof(*cur));

	if (!cur)
		return 0;
	for (uint32_t step = 0; step < len; step++) {
		unsigned best = n;

		for (unsigned i = 0; i < n; i++) {
			if (w[i] == 0)
				continue;
			cur[i] += (int64_t)w[i];
			if (best == n || cur[i] > cur[best])
				best = i;
		}
		cur[best] -= (int64_t)total;
		out[step] = best;
	}
	free(cur);
	return len;
}

uint32_t ctl_select_swrr(const uint32_t *w, unsigned n, uint32_t *out, uint32_t max)
{
	uint64_t total = 0, g = 0, scale = 1, *ws;
	uint32_t len;

	for (unsigned i = 0; i < n; i++)
		g = gcd64(g, w[i]);
	if (g == 0 || max == 0)
		return 0;
	ws = calloc(n, sizeof(*ws));
	if (!ws)
		return 0;
	// A sequence longer than max: scale the weights down, keeping every
	// non-zero weight at least 1.
	for (;;) {
		total = 0;
		for (unsigned i = 0; i < n; i++) {
			ws[i] = w[i] ? (w[i] / g / scale > 0 ? w[i] / g / scale : 1) : 0;
			total += ws[i];
		}
		if (total <= max)
			break;
		scale *= 2;
	}
	len = swrr_steps(ws, n, total, out, (uint32_t)total);
	free(ws);
	return len;
}

uint32_t ctl_select_effective(uint32_t configured, uint32_t capacity, double qos_fraction,
			      bool ready, bool healthy)
{
	double w;

	if (!ready || !healthy || capacity == 0)
		return 0;
	if (capacity > 64)
		capacity = 64;
	if (qos_fraction < 0)
		qos_fraction = 0;
	if (qos_fraction > 1)
		qos_fraction = 1;
	w = (double)configured * capacity * (1.0 - qos_fraction);
	return w >= 4294967295.0 ? UINT32_MAX : (uint32_t)(w + 0.5);
}

int ctl_select_quotas(const uint32_t *w, unsigned n, uint32_t size, uint32_t *quota)
{
	uint64_t total = 0, given = 0;
	unsigned positive = 0;

	for (unsigned i = 0; i < n; i++) {
		total += w[i];
		positive += w[i] > 0;
	}
	if (total == 0)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		quota[i] = (uint32_t)((uint64_t)w[i] * size / total);
		// A live target never vanishes from the table for rounding alone.
		if (w[i] && quota[i] == 0 && size >= positive)
			quota[i] = 1;
		given += quota[i];
	}
	// Largest remainders get the slots still free; rounding up the smallest
	// weights above may have overshot, and then the largest quotas give back.
	while (given < size) {
		unsigned best = n;
		uint64_t best_rem = 0;

		for (unsigned i = 0; i < n; i++) {
			uint64_t rem = (uint64_t)w[i] * size - (uint64_t)quota[i] * total;

			if (w[i] && (int64_t)rem > 0 && (best == n || rem > best_rem)) {
				best = i;
				best_rem = rem;
			}
		}
		if (best == n)
			for (unsigned i = 0; i < n && best == n; i++)
				best = w[i] ? i : n;
		quota[best]++;
		given++;
	}
	while (given > size) {
		unsigned big = 0;

		for (unsigned i = 1; i < n; i++)
			if (quota[i] > quota[big])
				big = i;
		quota[big]--;
		given--;
	}
	return 0;
}

int64_t ctl_select_rebuild(uint32_t *table, uint32_t size, bool have_prev, const uint32_t *w,
			   unsigned n)
{
	uint32_t *quota = calloc(n ? n : 1, sizeof(*quota));
	uint32_t *kept = calloc(n ? n : 1, sizeof(*kept));
	uint64_t *missing = calloc(n ? n : 1, sizeof(*missing));
	uint32_t *fill = calloc(size ? size : 1, sizeof(*fill));
	uint32_t nfill = 0, f = 0;
	int64_t changed = 0;

	if (!quota || !kept || !missing || !fill || ctl_select_quotas(w, n, size, quota) != 0) {
		changed = -1;
		goto out;
	}
	// Keep what may stay; mark the rest free (n is never a valid index).
	for (uint32_t i = 0; i < size; i++) {
		uint32_t t = have_prev ? table[i] : n;

		if (t < n && kept[t] < quota[t])
			kept[t]++;
		else
			table[i] = n;
	}
	// The missing slots of each index, handed out spread evenly.
	for (unsigned t = 0; t < n; t++) {
		missing[t] = quota[t] - kept[t];
		nfill += (uint32_t)missing[t];
	}
	swrr_steps(missing, n, nfill, fill, nfill);
	for (uint32_t i = 0; i < size; i++) {
		if (table[i] != n)
			continue;
		table[i] = fill[f++];
		changed++;
	}
out:
	free(quota);
	free(kept);
	free(missing);
	free(fill);
	return changed;
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
	if (s->method == CTL_METHOD_HASH) {
		// A fixed-size table by 5-tuple hash: rebuilt with minimal churn
		// when weights change, so other targets' flows keep their slots.
		n = ctl_select_rebuild(idx, CTL_HASH_SLOTS, false, w, s->n_targets) < 0 ?
			    0 :
			    CTL_HASH_SLOTS;
	} else {
		n = ctl_select_swrr(w, s->n_targets, idx, FP_SEL_MAX);
	}
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
		const struct fp_service_desc *sd = &d->services[i];

		if (sd->sel != last)
			free((void *)(uintptr_t)sd->sel);
		last = sd->sel;
		// Policies are per service port (ctl_sm_tables), never shared.
		for (uint32_t p = 0; p < sd->n_policies; p++)
			free((void *)(uintptr_t)sd->policies[p].sel);
		free((void *)(uintptr_t)sd->policies);
	}
	free((void *)(uintptr_t)d->services);
	free((void *)(uintptr_t)d->targets);
	free((void *)(uintptr_t)d->vips);
	memset(d, 0, sizeof(*d));
}
