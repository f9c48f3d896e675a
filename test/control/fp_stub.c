/*
 * fp_stub.c - a stand-in for the fast path (fastpath.h) so the control
 * room's unit tests run without DPDK (style.md "Rooms"). It keeps the
 * affinities control adds in a small array and records what control asks
 * the data path to do, for the tests to check.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fp_stub.h"

struct fp_stub fp_stub;

static bool flow_eq(const struct fp_flow *a, const struct fp_flow *b)
{
	return a->src == b->src && a->dst == b->dst && a->sport == b->sport &&
	       a->dport == b->dport && a->proto == b->proto;
}

static void tables_free(struct fp_tables_desc *d)
{
	for (uint32_t i = 0; d->services && i < d->n_services; i++) {
		for (uint32_t p = 0; d->services[i].policies && p < d->services[i].n_policies; p++)
			free((void *)(uintptr_t)d->services[i].policies[p].sel);
		free((void *)(uintptr_t)d->services[i].policies);
		free((void *)(uintptr_t)d->services[i].sel);
	}
	free((void *)(uintptr_t)d->services);
	free((void *)(uintptr_t)d->targets);
	free((void *)(uintptr_t)d->vips);
	memset(d, 0, sizeof(*d));
}

static void *dup_mem(const void *p, size_t n)
{
	void *q = malloc(n ? n : 1);

	if (q && n)
		memcpy(q, p, n);
	return q;
}

/* A deep copy of what control published (the stub keeps no snapshot of
 * its own). Copies that fail leave empty tables: fp_trace then says so. */
static void tables_copy(struct fp_tables_desc *to, const struct fp_tables_desc *d)
{
	struct fp_service_desc *svcs = dup_mem(d->services, d->n_services * sizeof(*svcs));

	*to = *d;
	to->targets = dup_mem(d->targets, d->n_targets * sizeof(*d->targets));
	to->vips = dup_mem(d->vips, d->n_vips * sizeof(*d->vips));
	to->services = svcs;
	for (uint32_t i = 0; svcs && i < d->n_services; i++) {
		struct fp_policy_desc *pol =
			dup_mem(d->services[i].policies,
				d->services[i].n_policies * sizeof(*d->services[i].policies));

		svcs[i].sel = dup_mem(d->services[i].sel, d->services[i].n_sel * sizeof(uint32_t));
		svcs[i].policies = pol;
		for (uint32_t p = 0; pol && p < d->services[i].n_policies; p++)
			pol[p].sel = dup_mem(pol[p].sel, pol[p].n_sel * sizeof(uint32_t));
	}
}

void fp_stub_reset(void)
{
	tables_free(&fp_stub.tables);
	memset(&fp_stub, 0, sizeof(fp_stub));
}

int fp_init(const struct fp_conf *c, const char *argv0, char *err, size_t errlen)
{
	(void)c;
	(void)argv0;
	(void)err;
	(void)errlen;
	return 0;
}

int fp_start(void)
{
	return 0;
}

void fp_stop(void)
{
}

void fp_fini(void)
{
}

unsigned fp_worker_count(void)
{
	return 1;
}

int fp_publish(const struct fp_tables_desc *d, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	fp_stub.publishes++;
	tables_free(&fp_stub.tables);
	tables_copy(&fp_stub.tables, d);
	fp_stub.have_tables = true;
	fp_stub.generation++;
	return 0;
}

unsigned fp_reclaim(void)
{
	return 0;
}

static int aff_index(const struct fp_flow *f)
{
	for (unsigned i = 0; i < fp_stub.n_aff; i++)
		if (flow_eq(&fp_stub.aff[i].flow, f))
			return (int)i;
	return -1;
}

int fp_affinity_add(const struct fp_flow *f, uint32_t target, uint32_t ttl_s)
{
	int i = aff_index(f);

	if (i < 0) {
		if (fp_stub.n_aff >= FP_STUB_AFF)
			return -ENOSPC;
		i = (int)fp_stub.n_aff++;
	}
	fp_stub.aff[i] = (struct fp_affinity){
		.flow = *f, .target = target, .ttl_s = ttl_s, .flags = FP_AFF_F_CONTROL
	};
	fp_stub.aff_adds++;
	return 0;
}

int fp_affinity_del(const struct fp_flow *f)
{
	int i = aff_index(f);

	fp_stub.aff_dels++;
	if (i < 0)
		return -ENOENT;
	fp_stub.aff[i] = fp_stub.aff[--fp_stub.n_aff];
	return 0;
}

int fp_affinity_find(const struct fp_flow *f, struct fp_affinity *out)
{
	int i = aff_index(f);

	if (i < 0)
		return -ENOENT;
	*out = fp_stub.aff[i];
	return 0;
}

unsigned fp_affinity_walk(uint64_t *cursor, unsigned max,
			  int (*fn)(const struct fp_affinity *a, void *arg), void *arg)
{
	unsigned n = 0;

	for (; *cursor < fp_stub.n_aff && n < max; (*cursor)++, n++)
		if (fn(&fp_stub.aff[*cursor], arg))
			break;
	if (*cursor >= fp_stub.n_aff)
		*cursor = 0;
	return n;
}

unsigned fp_affinity_expire(uint64_t *cursor, unsigned buckets)
{
	(void)cursor;
	(void)buckets;
	return 0;
}

void fp_affinity_stats(struct fp_table_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->count = fp_stub.n_aff;
	s->capacity = FP_STUB_AFF;
}

unsigned fp_event_poll(struct fp_event *ev, unsigned max)
{
	(void)ev;
	(void)max;
	return 0;
}

const uint8_t *fp_event_data(const struct fp_event *ev, uint32_t *len)
{
	const struct fp_stub_frame *f = ev->pkt;

	if (!f)
		return NULL;
	*len = f->len;
	return f->bytes;
}

int fp_event_forward(struct fp_event *ev, uint32_t target)
{
	ev->pkt = NULL;
	fp_stub.forwards++;
	fp_stub.last_forward_target = target;
	return 0;
}

int fp_forward_ip(const void *ip, uint32_t len, uint32_t target)
{
	(void)ip;
	(void)len;
	fp_stub.forwards++;
	fp_stub.last_forward_target = target;
	return 0;
}

void fp_event_release(struct fp_event *ev)
{
	if (ev->pkt)
		fp_stub.releases++;
	ev->pkt = NULL;
}

int fp_tx_frame(uint16_t port, const void *frame, uint32_t len)
{
	(void)port;
	if (len > sizeof(fp_stub.tx.bytes))
		return -EMSGSIZE;
	memcpy(fp_stub.tx.bytes, frame, len);
	fp_stub.tx.len = len;
	fp_stub.tx_frames++;
	return 0;
}

int fp_worker_stats_read(unsigned w, struct fp_worker_stats *out)
{
	(void)w;
	memset(out, 0, sizeof(*out));
	return 0;
}

unsigned fp_verdict_count(void)
{
	return 1;
}

const char *fp_verdict_label(unsigned v)
{
	return v == 0 ? "none" : NULL;
}

int fp_port_mac(uint16_t p, uint8_t mac[6])
{
	static const uint8_t m[6] = { 0x02, 0xfa, 0, 0, 0, 0x01 };

	(void)p;
	memcpy(mac, m, 6);
	return 0;
}

void fp_stats_clear(void)
{
	fp_stub.stats_clears++;
}

/* ---- fp_trace over the copied tables: the worker's steps, simplified (one
 * worker, whose round-robin position is 0; a hash of its own) ---- */

static const struct fp_service_desc *trace_service(const struct fp_flow *f)
{
	const struct fp_service_desc *any = NULL;

	for (uint32_t i = 0; i < fp_stub.tables.n_services; i++) {
		const struct fp_service_desc *s = &fp_stub.tables.services[i];

		if (s->vip != f->dst || s->proto != f->proto)
			continue;
		if (s->port == f->dport)
			return s;
		if (s->port == 0)
			any = s;
	}
	return any;
}

static bool trace_is_vip(uint32_t a)
{
	for (uint32_t i = 0; i < fp_stub.tables.n_vips; i++)
		if (fp_stub.tables.vips[i] == a)
			return true;
	return false;
}

static void trace_target(uint32_t target, struct fp_trace *t)
{
	t->target = target;
	if (target >= fp_stub.tables.n_targets) {
		t->verdict = "drop_no_target";
		return;
	}
	t->target_known = true;
	t->dispatch = fp_stub.tables.targets[target];
	t->verdict = t->dispatch.dispatch == FP_DISPATCH_L2 ? "fwd_l2" : "fwd_gre";
}

static void trace_place(const struct fp_service_desc *s, const struct fp_flow *f,
			struct fp_trace *t)
{
	const uint32_t *sel = s->sel;
	uint32_t n = s->n_sel;

	for (uint32_t i = 0; i < s->n_policies; i++)
		if ((f->src & s->policies[i].mask) == (s->policies[i].src & s->policies[i].mask)) {
			sel = s->policies[i].sel;
			n = s->policies[i].n_sel;
			t->policy = true;
			t->policy_src = s->policies[i].src;
			t->policy_mask = s->policies[i].mask;
			break;
		}
	t->sel_mode = s->sel_mode;
	t->sel_size = n;
	if (n == 0) {
		t->step = FP_TRACE_NO_TARGET;
		t->verdict = "no_target_to_control";
		return;
	}
	t->step = FP_TRACE_PLACE;
	if (s->sel_mode == FP_SEL_HASH) {
		t->sel_index = (f->src ^ f->sport) % n;
		trace_target(sel[t->sel_index], t);
		return;
	}
	t->n_workers = 1;
	t->next[0] = sel[0];
	trace_target(sel[0], t);
}

int fp_trace(const struct fp_flow *f, uint8_t tcp_flags, struct fp_trace *t)
{
	const struct fp_service_desc *s;
	int a;

	if (!f || !t)
		return -EINVAL;
	memset(t, 0, sizeof(*t));
	t->service = t->target = FP_TARGET_NONE;
	if (!fp_stub.have_tables) {
		t->step = FP_TRACE_NO_TABLES;
		t->verdict = "drop_no_service";
		return 0;
	}
	t->generation = fp_stub.generation;
	if (!trace_is_vip(f->dst)) {
		t->step = FP_TRACE_NOT_VIP;
		t->verdict = "drop_not_ours";
		return 0;
	}
	if (f->proto != 6 && f->proto != 17) {
		t->step = FP_TRACE_NOT_L4;
		t->verdict = f->proto == 1 ? "reply_icmp_echo" : "drop_ip_protocol";
		return 0;
	}
	s = trace_service(f);
	if (s) {
		t->service = s->id;
		t->service_port = s->port;
		t->idle_s = s->idle_s ? s->idle_s : 900;
	}
	a = aff_index(f);
	if (a >= 0) {
		t->step = FP_TRACE_AFFINITY;
		t->aff = fp_stub.aff[a];
		trace_target(t->aff.target, t);
	} else if (!s) {
		t->step = FP_TRACE_NO_SERVICE;
		t->verdict = "drop_no_service";
	} else if (f->proto == 17 || (tcp_flags & 0x16) == 0x02) {
		trace_place(s, f, t);
	} else {
		t->step = FP_TRACE_INTEREST;
		t->verdict = "interest_to_control";
	}
	return 0;
}
