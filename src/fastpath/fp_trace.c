/*
 * fp_trace.c - what a worker would do with a packet, without sending one
 * (fastpath.h fp_trace; the console's `trace flow`).
 *
 * The steps are the worker loop's (fp_worker_dp.c: classify, bulk affinity
 * lookup, on_hit / on_miss, place) run against the same published snapshot
 * and affinity table, read-only: the affinity is peeked (no last-seen
 * refresh), and the round-robin positions of the workers are read, never
 * advanced. Context: control thread (only control frees snapshots, so the
 * one read here stays valid for the whole call).
 */
#include <errno.h>
#include <string.h>

#include "fp_internal.h"

static bool trace_new_flow(const struct fp_flow *f, uint8_t tcp_flags)
{
	// As is_new_flow: a TCP SYN without ACK or RST, any UDP datagram.
	if (f->proto == 6)
		return (tcp_flags & (FP_TCP_SYN | FP_TCP_ACK | FP_TCP_RST)) == FP_TCP_SYN;
	return f->proto == 17;
}

/* The target and how it is reached, from the snapshot; the verdict a
 * forward to it counts (forward() in fp_worker_dp.c). */
static void trace_target(const struct fp_snapshot *s, uint32_t target, struct fp_trace *t)
{
	const struct fp_target_rt *rt;

	t->target = target;
	if (target >= s->n_targets || !s->targets[target].valid) {
		t->verdict = fp_verdict_name(FP_V_DROP_NO_TARGET);
		return;
	}
	rt = &s->targets[target];
	t->target_known = true;
	t->dispatch = (struct fp_target_desc){ .id = target,
					       .dispatch = rt->dispatch,
					       .port = rt->port,
					       .tunnel = rt->tunnel,
					       .gre_key = rt->gre_key,
					       .has_mac = true };
	memcpy(t->dispatch.mac, rt->dst_mac, 6);
	t->verdict = fp_verdict_name(rt->dispatch == FP_DISPATCH_L2 ? FP_V_FWD_L2 : FP_V_FWD_GRE);
}

static bool trace_affinity(const struct fp_flow *f, struct fp_trace *t)
{
	struct fp_aff_entry_view e;
	uint32_t now = fp_now_ms();

	if (!fp_state.aff)
		return false;
	fp_flow_key(f, &e.key);
	if (!fp_aff_peek(fp_state.aff, &e.key, &e.val, &e.last_ms))
		return false;
	t->aff = (struct fp_affinity){ .flow = *f,
				       .target = e.val.target,
				       .ttl_s = e.val.ttl_s,
				       .flags = e.val.flags,
				       // Another thread's clock may run a little ahead.
				       .idle_ms = (int32_t)(now - e.last_ms) > 0 ? now - e.last_ms :
										   0 };
	return true;
}

/* A new flow's selection: the table (a policy's or the service's) and the
 * target each worker would take from it now. */
static void trace_place(const struct fp_snapshot *s, const struct fp_service_rt *svc,
			const struct fp_flow *f, struct fp_trace *t)
{
	const struct fp_sel_rt *sel = fp_tables_select(svc, f->src);
	struct fp_aff_key k;

	t->sel_mode = svc->sel_mode;
	t->sel_size = sel->n;
	for (uint32_t i = 0; i < svc->n_policies; i++) {
		if (sel != &svc->policies[i].sel)
			continue;
		t->policy = true;
		t->policy_src = svc->policies[i].src;
		t->policy_mask = svc->policies[i].mask;
	}
	if (sel->n == 0) {
		t->step = FP_TRACE_NO_TARGET;
		t->verdict = fp_verdict_name(FP_V_NO_TARGET_TO_CONTROL);
		return;
	}
	t->step = FP_TRACE_PLACE;
	if (svc->sel_mode == FP_SEL_HASH) {
		fp_flow_key(f, &k);
		t->sel_index = (uint32_t)(fp_aff_hash(&k) % sel->n);
		trace_target(s, sel->ids[t->sel_index], t);
		return;
	}
	t->n_workers = fp_state.n_workers < FP_WORKERS_MAX ? fp_state.n_workers : FP_WORKERS_MAX;
	for (unsigned w = 0; w < t->n_workers; w++) {
		const uint32_t *rr = &fp_state.workers[w].rr[svc - s->services];

		t->next[w] = sel->ids[__atomic_load_n(rr, __ATOMIC_RELAXED) % sel->n];
	}
	trace_target(s, t->n_workers ? t->next[0] : sel->ids[0], t);
}

/* A TCP or UDP packet to a VIP: affinity first (a hit forwards whatever
 * the service tables say), then the service and the flow's kind. */
static void trace_l4(const struct fp_snapshot *s, const struct fp_flow *f, uint8_t tcp_flags,
		     struct fp_trace *t)
{
	const struct fp_service_rt *svc = fp_tables_service(s, f->dst, f->dport, f->proto);

	if (svc) {
		t->service = svc->id;
		t->service_port = svc->port;
		t->idle_s = svc->idle_s ? svc->idle_s : fp_state.aff_idle_s;
	}
	if (trace_affinity(f, t)) {
		t->step = FP_TRACE_AFFINITY;
		trace_target(s, t->aff.target, t);
		return;
	}
	if (!svc) {
		t->step = FP_TRACE_NO_SERVICE;
		t->verdict = fp_verdict_name(FP_V_DROP_NO_SERVICE);
		return;
	}
	if (trace_new_flow(f, tcp_flags)) {
		trace_place(s, svc, f, t);
		return;
	}
	t->step = FP_TRACE_INTEREST;
	t->verdict = fp_verdict_name(FP_V_TO_CONTROL);
}

int fp_trace(const struct fp_flow *f, uint8_t tcp_flags, struct fp_trace *out)
{
	const struct fp_snapshot *s;

	if (!f || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->service = out->target = FP_TARGET_NONE;
	s = fp_snapshot_get();
	if (!s) {
		// fp_worker_handle_burst without a snapshot.
		out->step = FP_TRACE_NO_TABLES;
		out->verdict = fp_verdict_name(FP_V_DROP_NO_SERVICE);
		return 0;
	}
	out->generation = s->generation;
	if (!fp_tables_is_vip(s, f->dst)) {
		out->step = FP_TRACE_NOT_VIP;
		out->verdict = fp_verdict_name(FP_V_DROP_NOT_OURS);
		return 0;
	}
	if (f->proto != 6 && f->proto != 17) {
		// classify(): ICMP to a VIP is answered (echo) or dropped by type.
		out->step = FP_TRACE_NOT_L4;
		out->verdict =
			fp_verdict_name(f->proto == 1 ? FP_V_REPLY_ICMP_ECHO : FP_V_DROP_IP_PROTO);
		return 0;
	}
	trace_l4(s, f, tcp_flags, out);
	return 0;
}
