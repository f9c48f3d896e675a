/*
 * fp_worker_dp.c - the worker loop (design.md sections 3 and 5; style.md
 * habit 4): rx burst, parse, bulk affinity lookup, act, tx burst, and every
 * FP_HOUSEKEEP_LOOPS loops expiry of a slice of the tables.
 *
 * Everything here runs on worker lcores: no locks, no allocation, no
 * logging, no system calls. Every packet ends in exactly one verdict with a
 * per-worker counter (fp_pkt.h), except that a packet already counted as
 * forwarded that the NIC then refuses is also counted as drop_tx_full.
 */
#include <errno.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_prefetch.h>

#include "fp_internal.h"

/* What the first pass decided for one packet of a burst. */
enum fp_step {
	FP_STEP_DONE = 0,   /* verdict given, mbuf consumed */
	FP_STEP_LOOKUP = 1, /* needs the affinity table */
};

struct fp_job {
	struct rte_mbuf *m;
	struct fp_pkt pkt;
};

static inline void count(struct fp_worker *w, enum fp_verdict v)
{
	w->stats.verdict[v]++;
}

static inline void drop(struct fp_worker *w, struct rte_mbuf *m, enum fp_verdict v)
{
	count(w, v);
	rte_pktmbuf_free(m);
}

static inline uint8_t *frame_of(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod(m, uint8_t *);
}

static inline void tx_queue(struct fp_worker *w, uint16_t port, struct rte_mbuf *m,
			    enum fp_verdict v)
{
	struct fp_tx_buf *b = &w->tx[port];

	count(w, v);
	if (unlikely(b->n == FP_TX_BUF)) {
		drop(w, m, FP_V_DROP_TX_FULL);
		return;
	}
	b->m[b->n++] = m;
}

/* Fragment records use the affinity table's key shape: the IP id in place
 * of the source port and a marker in pad[0] (RFC 791: fragments of one
 * datagram share source, destination, protocol and id). */
static inline void frag_key_of(const struct fp_pkt *p, struct fp_aff_key *k)
{
	memset(k, 0, sizeof(*k));
	k->src = p->flow.src;
	k->dst = p->flow.dst;
	k->sport = p->ip_id;
	k->proto = p->flow.proto;
	k->pad[0] = 1;
}

static bool send_event(struct fp_worker *w, const struct fp_pkt *p, struct rte_mbuf *m,
		       uint16_t in_port, enum fp_event_type type, uint32_t service, uint32_t target)
{
	struct fp_event ev = {
		.type = type,
		.worker = (uint8_t)w->id,
		.in_port = in_port,
		.tcp_flags = p->tcp_flags,
		.service = service,
		.target = target,
		.flow = p->flow,
		.pkt = m,
	};

	return rte_ring_mp_enqueue_elem(fp_state.events, &ev, sizeof(ev)) == 0;
}

/* Hand m to control; a full ring is a counted drop. */
static void to_control(struct fp_worker *w, const struct fp_pkt *p, struct rte_mbuf *m,
		       uint16_t in_port, enum fp_event_type type, uint32_t service,
		       enum fp_verdict v)
{
	if (send_event(w, p, m, in_port, type, service, FP_TARGET_NONE))
		count(w, v);
	else
		drop(w, m, FP_V_DROP_RING_FULL);
}

enum fp_verdict fp_worker_encap(struct rte_mbuf *m, const struct fp_pkt *pkt,
				const struct fp_target_rt *t, uint32_t target_id, uint16_t *ip_id,
				uint32_t *gre_seq)
{
	const struct fp_snapshot *s = fp_snapshot_get();
	struct fp_gre_params gp;
	uint32_t have;
	uint16_t delta;
	uint8_t *hdr;

	if (t->dispatch == FP_DISPATCH_L2) {
		fp_l2_rewrite(frame_of(m), t->dst_mac, t->src_mac);
		return FP_V_FWD_L2;
	}
	// The outer IPv4 packet: our IP and GRE headers plus the inner packet.
	if ((uint32_t)(t->gre_len - FP_ETH_LEN) + pkt->ip_len > fp_state.ports[t->port].mtu)
		return FP_V_DROP_TOO_BIG;
	// Drop Ethernet padding past the IP total length, then make room for
	// the outer headers in front of the inner IP header.
	// Single-segment mbufs only (classify drops the others), so trim and
	// prepend are plain offset arithmetic.
	have = (uint32_t)pkt->l3_off + pkt->ip_len;
	delta = (uint16_t)(t->gre_len - pkt->l3_off);
	if (unlikely(rte_pktmbuf_headroom(m) < delta))
		return FP_V_DROP_NO_HEADROOM;
	m->data_off = (uint16_t)(m->data_off - delta);
	m->data_len = (uint16_t)(have + delta);
	m->pkt_len = have + delta;
	hdr = rte_pktmbuf_mtod(m, uint8_t *);
	gp.tos = s->gre.tos;
	gp.df = s->gre.df;
	gp.ttl = s->gre.ttl;
	gp.flags = s->gre.flags;
	gp.outer_id = (*ip_id)++;
	gp.seq = (gre_seq && (gp.flags & FP_GRE_F_SEQ)) ? gre_seq[target_id]++ : 0;
	fp_gre_apply(hdr, t->gre_tmpl, t->gre_len, &gp, hdr + t->gre_len, pkt->ip_len);
	return FP_V_FWD_GRE;
}

/* Forward a parsed IPv4 packet to target id; the TTL check and decrement
 * happen here, once, for every forwarding path. */
static void forward(struct fp_worker *w, const struct fp_snapshot *s, struct rte_mbuf *m,
		    const struct fp_pkt *p, uint32_t target)
{
	const struct fp_target_rt *t;
	enum fp_verdict v;

	if (unlikely(target >= s->n_targets || !s->targets[target].valid)) {
		drop(w, m, FP_V_DROP_NO_TARGET);
		return;
	}
	if (unlikely(p->ttl <= 1)) {
		drop(w, m, FP_V_DROP_IP_TTL);
		return;
	}
	t = &s->targets[target];
	fp_ip_ttl_dec(frame_of(m) + p->l3_off);
	v = fp_worker_encap(m, p, t, target, &w->ip_id, w->gre_seq);
	if (unlikely(v != FP_V_FWD_GRE && v != FP_V_FWD_L2)) {
		drop(w, m, v);
		return;
	}
	tx_queue(w, t->port, m, v);
}

/* ---- fragments ----------------------------------------------------------- */

/* A first fragment went to target: remember it, and release held later
 * fragments of the same datagram that arrived before it. */
static void frag_record(struct fp_worker *w, const struct fp_snapshot *s, const struct fp_pkt *p,
			uint32_t target)
{
	struct fp_aff_val val = { .target = target, .ttl_s = (uint16_t)fp_state.frag_ttl_s };
	struct fp_aff_key k;

	frag_key_of(p, &k);
	fp_aff_add(fp_state.frags, &k, &val, w->now_ms, true);
	for (unsigned i = 0; i < w->n_held;) {
		struct fp_frag_held *h = &w->held[i];
		struct fp_pkt hp;

		if (memcmp(&h->key, &k, sizeof(k)) != 0) {
			i++;
			continue;
		}
		// Held fragments were parsed before; parse again rather than keep
		// a struct fp_pkt per held packet.
		if (fp_parse(frame_of(h->m), rte_pktmbuf_data_len(h->m), &hp) == FP_V_OK)
			forward(w, s, h->m, &hp, target);
		else
			drop(w, h->m, FP_V_DROP_FRAG_UNMATCHED);
		*h = w->held[--w->n_held];
	}
}

static void frag_follow(struct fp_worker *w, const struct fp_snapshot *s, struct rte_mbuf *m,
			const struct fp_pkt *p, uint16_t in_port)
{
	struct fp_aff_key k;
	struct fp_aff_val val;
	struct fp_frag_held *h;

	frag_key_of(p, &k);
	if (fp_aff_lookup(fp_state.frags, &k, &val, w->now_ms)) {
		forward(w, s, m, p, val.target);
		return;
	}
	if (w->n_held == FP_FRAG_STASH) {
		drop(w, m, FP_V_DROP_FRAG_STASH_FULL);
		return;
	}
	h = &w->held[w->n_held++];
	h->m = m;
	h->key = k;
	h->since_ms = w->now_ms;
	h->port = in_port;
	count(w, FP_V_FRAG_HELD);
}

void fp_worker_drop_held(struct fp_worker *w, bool force)
{
	uint32_t ttl_ms = fp_state.conf.frag_ttl_ms;

	for (unsigned i = 0; i < w->n_held;) {
		if (force || w->now_ms - w->held[i].since_ms > ttl_ms) {
			drop(w, w->held[i].m, FP_V_DROP_FRAG_UNMATCHED);
			w->held[i] = w->held[--w->n_held];
		} else {
			i++;
		}
	}
}

/* ---- first pass: replies and classification ------------------------------- */

static enum fp_step classify_arp(struct fp_worker *w, const struct fp_snapshot *s, struct fp_job *j,
				 uint16_t in_port)
{
	const struct fp_port_rt *port = &fp_state.ports[in_port];

	if (j->pkt.arp_op == 1 &&
	    (fp_tables_is_vip(s, j->pkt.arp_tpa) || (port->addr && j->pkt.arp_tpa == port->addr))) {
		fp_arp_reply(frame_of(j->m), &j->pkt, port->mac);
		tx_queue(w, in_port, j->m, FP_V_REPLY_ARP);
		return FP_STEP_DONE;
	}
	// Requests for others and replies: control learns neighbours from them.
	to_control(w, &j->pkt, j->m, in_port, FP_EV_ARP, FP_TARGET_NONE, FP_V_ARP_TO_CONTROL);
	return FP_STEP_DONE;
}

static enum fp_step classify_icmp(struct fp_worker *w, struct fp_job *j, uint16_t in_port)
{
	if (j->pkt.icmp_error)
		return FP_STEP_LOOKUP; // about a VIP flow: follow its affinity
	if (j->pkt.icmp_type == 8 && fp_icmp_echo_reply(frame_of(j->m), &j->pkt) == 0) {
		tx_queue(w, in_port, j->m, FP_V_REPLY_ICMP_ECHO);
		return FP_STEP_DONE;
	}
	drop(w, j->m, FP_V_DROP_ICMP_TYPE);
	return FP_STEP_DONE;
}

static enum fp_step classify(struct fp_worker *w, const struct fp_snapshot *s, struct fp_job *j,
			     uint16_t in_port)
{
	struct rte_mbuf *m = j->m;
	enum fp_verdict v;
	uint32_t dst;

	if (unlikely(m->nb_segs != 1)) {
		drop(w, m, FP_V_DROP_MULTISEG);
		return FP_STEP_DONE;
	}
	v = fp_parse(frame_of(m), rte_pktmbuf_data_len(m), &j->pkt);
	if (unlikely(v != FP_V_OK)) {
		drop(w, m, v);
		return FP_STEP_DONE;
	}
	if (j->pkt.kind == FP_PKT_ARP)
		return classify_arp(w, s, j, in_port);
	// Packets to the VIP carry flow.dst == VIP; an ICMP error's flow is its
	// quote reversed, so read the outer destination from the header.
	memcpy(&dst, frame_of(m) + j->pkt.l3_off + 16, 4);
	dst = rte_be_to_cpu_32(dst);
	if (!fp_tables_is_vip(s, dst)) {
		if (dst == fp_state.ports[in_port].addr && j->pkt.flow.proto == 1 &&
		    !j->pkt.icmp_error)
			return classify_icmp(w, j, in_port);
		drop(w, m, FP_V_DROP_NOT_OURS);
		return FP_STEP_DONE;
	}
	if (j->pkt.is_frag && !j->pkt.first_frag) {
		frag_follow(w, s, m, &j->pkt, in_port);
		return FP_STEP_DONE;
	}
	switch (j->pkt.flow.proto) {
	case 6:
	case 17:
		return FP_STEP_LOOKUP;
	case 1:
		return classify_icmp(w, j, in_port);
	default:
		drop(w, m, FP_V_DROP_IP_PROTO);
		return FP_STEP_DONE;
	}
}

/* ---- second pass: affinity hits and misses ---------------------------------- */

static uint32_t select_target(struct fp_worker *w, const struct fp_snapshot *s,
			      const struct fp_service_rt *svc, const struct fp_sel_rt *sel,
			      const struct fp_aff_key *k)
{
	uint32_t i;

	if (svc->sel_mode == FP_SEL_HASH) {
		i = (uint32_t)(fp_aff_hash(k) % sel->n);
	} else {
		uint32_t *rr = &w->rr[svc - s->services];

		// Relaxed atomics: fp_trace reads the position from control.
		i = __atomic_load_n(rr, __ATOMIC_RELAXED) % sel->n;
		__atomic_store_n(rr, i + 1, __ATOMIC_RELAXED);
	}
	return sel->ids[i];
}

static bool is_new_flow(const struct fp_pkt *p)
{
	if (p->icmp_error)
		return false;
	if (p->flow.proto == 6)
		return (p->tcp_flags & (FP_TCP_SYN | FP_TCP_ACK | FP_TCP_RST)) == FP_TCP_SYN;
	return p->flow.proto == 17;
}

/* A new connection: select, insert the affinity, forward, tell control. */
static void place(struct fp_worker *w, const struct fp_snapshot *s, struct fp_job *j,
		  const struct fp_service_rt *svc, const struct fp_aff_key *k, uint16_t in_port)
{
	const struct fp_sel_rt *sel = fp_tables_select(svc, j->pkt.flow.src);
	struct fp_aff_val val;
	uint32_t target;
	int rc;

	if (sel->n == 0) {
		// No ready target: control answers with a fast reset.
		to_control(w, &j->pkt, j->m, in_port, FP_EV_NO_TARGET, svc->id,
			   FP_V_NO_TARGET_TO_CONTROL);
		return;
	}
	target = select_target(w, s, svc, sel, k);
	val.target = target;
	val.flags = FP_AFF_F_WORKER;
	val.ttl_s = (uint16_t)(svc->idle_s ? svc->idle_s : fp_state.aff_idle_s);
	rc = fp_aff_add(fp_state.aff, k, &val, w->now_ms, false);
	if (rc == -EEXIST && fp_aff_lookup(fp_state.aff, k, &val, w->now_ms)) {
		target = val.target; // a retransmitted SYN keeps its target
	} else if (rc != 0) {
		drop(w, j->m, FP_V_DROP_AFF_FULL);
		return;
	} else if (!send_event(w, &j->pkt, NULL, in_port, FP_EV_NEW_CONN, svc->id, target)) {
		w->stats.events_lost++;
	}
	// Forward first, then release held fragments: the wire keeps the order.
	forward(w, s, j->m, &j->pkt, target);
	if (j->pkt.is_frag)
		frag_record(w, s, &j->pkt, target);
}

static void on_miss(struct fp_worker *w, const struct fp_snapshot *s, struct fp_job *j,
		    const struct fp_aff_key *k, uint16_t in_port)
{
	const struct fp_flow *f = &j->pkt.flow;
	const struct fp_service_rt *svc = fp_tables_service(s, f->dst, f->dport, f->proto);

	if (!svc) {
		drop(w, j->m, FP_V_DROP_NO_SERVICE);
		return;
	}
	if (is_new_flow(&j->pkt)) {
		place(w, s, j, svc, k, in_port);
		return;
	}
	// Another FA took the SYN, ECMP moved the flow or we restarted: ask
	// the Service Manager (design.md section 5).
	to_control(w, &j->pkt, j->m, in_port, FP_EV_INTEREST, svc->id, FP_V_TO_CONTROL);
}

static void on_hit(struct fp_worker *w, const struct fp_snapshot *s, struct fp_job *j,
		   const struct fp_aff_key *k, const struct fp_aff_val *val)
{
	const struct fp_pkt *p = &j->pkt;

	if (p->flow.proto == 6 && (p->tcp_flags & (FP_TCP_FIN | FP_TCP_RST)) &&
	    !(val->flags & FP_AFF_F_CLOSING) && !p->icmp_error)
		fp_aff_mark(fp_state.aff, k, FP_AFF_F_CLOSING, (uint16_t)fp_state.aff_closing_s);
	forward(w, s, j->m, p, val->target);
	if (p->is_frag)
		frag_record(w, s, p, val->target);
}

void fp_worker_handle_burst(struct fp_worker *w, struct rte_mbuf **pkts, uint16_t n,
			    uint16_t in_port)
{
	const struct fp_snapshot *s = fp_snapshot_get();
	struct fp_job jobs[FP_BURST_MAX];
	struct fp_aff_key keys[FP_BURST_MAX];
	struct fp_aff_val vals[FP_BURST_MAX];
	unsigned nl = 0;
	uint64_t hits;

	if (unlikely(!s)) {
		for (uint16_t i = 0; i < n; i++)
			drop(w, pkts[i], FP_V_DROP_NO_SERVICE);
		return;
	}
	for (uint16_t i = 0; i < n; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	for (uint16_t i = 0; i < n; i++) {
		jobs[nl].m = pkts[i];
		if (classify(w, s, &jobs[nl], in_port) == FP_STEP_LOOKUP) {
			fp_flow_key(&jobs[nl].pkt.flow, &keys[nl]);
			nl++;
		}
	}
	if (nl == 0)
		return;
	hits = fp_aff_lookup_bulk(fp_state.aff, keys, nl, vals, w->now_ms);
	for (unsigned i = 0; i < nl; i++) {
		if (hits & (1ULL << i))
			on_hit(w, s, &jobs[i], &keys[i], &vals[i]);
		else
			on_miss(w, s, &jobs[i], &keys[i], in_port);
	}
}

void fp_worker_flush(struct fp_worker *w)
{
	for (uint16_t p = 0; p < fp_state.n_ports; p++) {
		struct fp_tx_buf *b = &w->tx[p];
		uint16_t sent;

		if (b->n == 0)
			continue;
		sent = rte_eth_tx_burst(fp_state.ports[p].dpdk_id, w->queue, b->m, b->n);
		for (uint16_t i = 0; i < sent; i++)
			w->stats.tx_bytes += rte_pktmbuf_pkt_len(b->m[i]);
		w->stats.tx_pkts += sent;
		for (uint16_t i = sent; i < b->n; i++)
			drop(w, b->m[i], FP_V_DROP_TX_FULL);
		b->n = 0;
	}
}

static void housekeep(struct fp_worker *w)
{
	if (w->expire_end > w->expire_first) {
		if (w->expire_cursor < w->expire_first || w->expire_cursor >= w->expire_end)
			w->expire_cursor = w->expire_first;
		fp_aff_expire(fp_state.aff, &w->expire_cursor, FP_EXPIRE_BUCKETS, w->now_ms);
	}
	if (w->id == 0) // the small fragment table: worker 0 alone expires it
		fp_aff_expire(fp_state.frags, &w->frag_cursor, FP_EXPIRE_BUCKETS, w->now_ms);
	fp_worker_drop_held(w, false);
}

unsigned fp_worker_poll(struct fp_worker *w)
{
	struct rte_mbuf *pkts[FP_BURST_MAX];
	uint16_t burst = fp_state.conf.burst;
	unsigned total = 0;

	w->now_ms = fp_now_ms();
	for (uint16_t p = 0; p < fp_state.n_ports; p++) {
		const struct fp_port_rt *port = &fp_state.ports[p];

		for (uint16_t q = w->queue; q < port->n_rxq;
		     q = (uint16_t)(q + fp_state.n_workers)) {
			uint16_t n = rte_eth_rx_burst(port->dpdk_id, q, pkts, burst);

			if (n == 0)
				continue;
			w->stats.rx_pkts += n;
			for (uint16_t i = 0; i < n; i++)
				w->stats.rx_bytes += rte_pktmbuf_pkt_len(pkts[i]);
			fp_worker_handle_burst(w, pkts, n, p);
			total += n;
		}
	}
	fp_worker_flush(w);
	w->stats.loops++;
	if (total)
		w->stats.busy_loops++;
	if ((w->stats.loops % FP_HOUSEKEEP_LOOPS) == 0)
		housekeep(w);
	if (w->online)
		rte_rcu_qsbr_quiescent(fp_state.qsbr, w->id);
	return total;
}

int fp_worker_main(void *arg)
{
	struct fp_worker *w = arg;

	rte_rcu_qsbr_thread_online(fp_state.qsbr, w->id);
	w->online = true;
	while (__atomic_load_n(&fp_state.running, __ATOMIC_RELAXED))
		fp_worker_poll(w);
	w->online = false;
	rte_rcu_qsbr_thread_offline(fp_state.qsbr, w->id);
	return 0;
}
