/*
 * ctl_casa.c - the Service Manager's CASA endpoint (casa-protocol.md 6 and
 * 7.3): wildcards multicast at start, on change and every interval; fixed
 * affinities unicast to the FA whose interest packet asked; TTL-0 deletes
 * multicast when a target reports a connection closed; the hello registry
 * of forwarding agents with their statistics; fast connection reset.
 *
 * The same interest rules serve the local workers (FP_EV_INTEREST events:
 * design.md section 3, "inside casalb, a ring from worker to control").
 *
 * Every received message is decoded and checked once (casa_decode, then
 * casa_verify when a key is configured); anything bad is a counted drop
 * that changes nothing. Context: control thread; never blocks (the socket
 * is non-blocking, each turn handles a bounded number of datagrams).
 */
#define _GNU_SOURCE /* sendmmsg */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "casa.h"
#include "ctl.h"

#define RX_PER_TURN 256
#define MSG_BUF 65536
#define TX_BATCH 64 /* datagrams per sendmmsg() */
#define TX_SLOT 256 /* bytes per batched datagram; larger ones go alone */
#define FA_HELLO_S 10
#define FA_HOLD_S 30
#define TCP_FIN 0x01
#define TCP_RST 0x04

struct ctl_casa {
	const struct ctl_conf *c;
	struct ctl_sm *sm;
	int fd;     /* UDP, bound to the CASA port */
	int raw_fd; /* raw IPv4 for resets toward external FAs' clients; -1 */
	struct casa_auth_ctx *auth;
	struct casa_signer signer;
	uint32_t epoch;
	uint64_t next_wildcards_ms;
	bool wildcards_due;
	uint64_t sp_gen; /* the SM's service-port generation last advertised */
	struct ctl_rate resets;
	struct ctl_fa_row *fas;
	unsigned n_fas;
	struct ctl_casa_counters k;
	/* Outgoing datagrams wait here and leave together in one sendmmsg():
	 * one system call per batch rather than per reply (bench p3). */
	struct mmsghdr batch[TX_BATCH];
	struct iovec batch_iov[TX_BATCH];
	struct sockaddr_in batch_to[TX_BATCH];
	uint8_t batch_buf[TX_BATCH][TX_SLOT];
	unsigned n_batch;
	uint8_t tx[MSG_BUF];
	uint8_t rx[MSG_BUF];
};

/* ---- sending ----------------------------------------------------------------------- */

static bool keyed(const struct ctl_casa *x)
{
	return x->auth && casa_auth_enabled(x->auth);
}

void ctl_casa_flush(struct ctl_casa *x)
{
	unsigned done = 0;

	while (done < x->n_batch) {
		int n = sendmmsg(x->fd, x->batch + done, x->n_batch - done, MSG_DONTWAIT);

		if (n <= 0) {
			// The rest cannot go now (buffer full, no route): count and
			// drop; CASA senders re-send on the next interest.
			x->k.tx_errors += x->n_batch - done;
			break;
		}
		done += (unsigned)n;
	}
	x->n_batch = 0;
}

/* Sign (when keyed) and send x->tx[0..len) to addr:port, batched. Every
 * datagram gets its own sequence number, each multicast copy included
 * (spec 6.9). */
static int send_msg(struct ctl_casa *x, size_t len, uint32_t addr, uint16_t port, uint32_t wall)
{
	struct sockaddr_in to = { .sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(addr) };
	unsigned i;
	int n;

	if (len == 0) {
		x->k.tx_errors++;
		return -EINVAL;
	}
	if (keyed(x)) {
		n = casa_sign(x->auth, &x->signer, x->tx, len, sizeof(x->tx), wall);
		if (n < 0) {
			x->k.tx_errors++;
			return n;
		}
		len = (size_t)n;
	}
	if (len > TX_SLOT) {
		ctl_casa_flush(x); // keep the order
		if (sendto(x->fd, x->tx, len, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to)) <
		    0) {
			x->k.tx_errors++;
			return -errno;
		}
		return 0;
	}
	if (x->n_batch == TX_BATCH)
		ctl_casa_flush(x);
	i = x->n_batch++;
	memcpy(x->batch_buf[i], x->tx, len);
	x->batch_to[i] = to;
	x->batch_iov[i] = (struct iovec){ x->batch_buf[i], len };
	x->batch[i].msg_hdr = (struct msghdr){ .msg_name = &x->batch_to[i],
					       .msg_namelen = sizeof(to),
					       .msg_iov = &x->batch_iov[i],
					       .msg_iovlen = 1 };
	return 0;
}

static void wildcard_of(const struct ctl_casa *x, uint32_t vip, uint16_t port, uint8_t proto,
			uint16_t ttl, struct casa_affinity *a, struct casa_action *act)
{
	// Spec 6.1: source any, destination the VIP, forward address 0.
	*a = (struct casa_affinity){
		.protocol = proto, .dst = vip, .dst_mask = 0xFFFFFFFFu, .dst_port = port, .ttl = ttl
	};
	casa_action_wildcard_default(act, x->c->sm.addr, x->c->sm.port);
}

/* Send every wildcard to addr:port (the group, or one FA that asked): the
 * service ports distributed now, not the deleted ones still draining. */
static void send_wildcards(struct ctl_casa *x, uint32_t addr, uint16_t port, uint32_t wall)
{
	for (unsigned sp = 0; sp < ctl_sm_sp_count(x->sm); sp++) {
		struct casa_affinity a;
		struct casa_action act;
		uint32_t vip;
		uint16_t dport;
		uint8_t proto;

		if (!ctl_sm_sp_active(x->sm, sp) ||
		    ctl_sm_sp_get(x->sm, sp, &vip, &dport, &proto, NULL) != 0)
			continue;
		wildcard_of(x, vip, dport, proto, (uint16_t)x->c->sm.wildcard_ttl_s, &a, &act);
		if (send_msg(x, casa_encode_wildcard(x->tx, sizeof(x->tx), &a, &act), addr, port,
			     wall) == 0)
			x->k.wildcards_sent++;
	}
}

/* Spec 6.3 (casalb design [D]): a deleted port's wildcard goes out once
 * more with TTL 0, multicast, so forwarding agents stop sending interest
 * for it at once rather than when its TTL runs out. */
static void send_withdrawals(struct ctl_casa *x, uint32_t wall)
{
	struct fp_flow f[16];
	unsigned n;

	while ((n = ctl_sm_withdrawn_take(x->sm, f, 16)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			struct casa_affinity a;
			struct casa_action act;

			wildcard_of(x, f[i].dst, f[i].dport, f[i].proto, 0, &a, &act);
			if (send_msg(x, casa_encode_wildcard(x->tx, sizeof(x->tx), &a, &act),
				     x->c->sm.group, x->c->sm.port, wall) == 0)
				x->k.wildcard_deletes_sent++;
		}
	}
}

static void fixed_of(const struct ctl_casa *x, const struct fp_flow *f, uint32_t target,
		     uint16_t ttl, struct casa_msg *m)
{
	const struct ctl_target *t = &x->c->targets[target];

	memset(m, 0, sizeof(*m));
	m->type = CASA_MSG_FIXED;
	m->present = CASA_HAS_FIXED | CASA_HAS_ACTION;
	// Spec 6.2: flags 0x0002 as captured; the forward address is the
	// target's dispatch (XCF-like) address.
	m->aff = (struct casa_affinity){ .flags = CASA_AFF_F_DISPATCH_L2,
					 .protocol = f->proto,
					 .src = f->src,
					 .src_mask = 0xFFFFFFFFu,
					 .dst = f->dst,
					 .dst_mask = 0xFFFFFFFFu,
					 .src_port = f->sport,
					 .dst_port = f->dport,
					 .fwd = t->addr,
					 .ttl = ttl };
	casa_action_fixed_default(&m->action, x->c->sm.addr, x->c->sm.port);
	if (x->c->sm.mode == CASA_MODE_EXTENDED) {
		m->present |= CASA_HAS_DISPATCH_INFO;
		m->dispatch.method =
			t->fp.dispatch == FP_DISPATCH_L2 ? CASA_DISPATCH_L2 : CASA_DISPATCH_GRE;
		m->dispatch.tunnel_endpoint = t->fp.tunnel;
		m->dispatch.gre_key = t->fp.gre_key;
		m->dispatch.gre_flags = x->c->fp.gre.use_key ? CASA_GRE_F_KEY : 0;
		if (t->fp.has_mac && t->fp.dispatch == FP_DISPATCH_L2)
			memcpy(m->dispatch.nexthop_mac, t->fp.mac, 6);
	}
}

static int send_fixed(struct ctl_casa *x, const struct fp_flow *f, uint32_t target, uint16_t ttl,
		      uint32_t addr, uint16_t port, uint32_t wall)
{
	struct casa_msg m;
	int n;

	fixed_of(x, f, target, ttl, &m);
	n = casa_encode(&m, (enum casa_mode)x->c->sm.mode, x->tx, sizeof(x->tx));
	return send_msg(x, n > 0 ? (size_t)n : 0, addr, port, wall);
}

/* Spec 6.3: the delete is the fixed update with TTL 0, multicast. */
static void send_deletes(struct ctl_casa *x, uint32_t wall)
{
	struct fp_flow f[64];
	uint32_t t[64];
	unsigned n;

	while ((n = ctl_sm_deletes_take(x->sm, f, t, 64)) > 0) {
		for (unsigned i = 0; i < n; i++) {
			struct casa_msg m;
			int len;

			fixed_of(x, &f[i], t[i], 0, &m);
			len = casa_encode(&m, (enum casa_mode)x->c->sm.mode, x->tx, sizeof(x->tx));
			if (send_msg(x, len > 0 ? (size_t)len : 0, x->c->sm.group, x->c->sm.port,
				     wall) == 0)
				x->k.deletes_sent++;
		}
	}
}

/* ---- fast connection reset ------------------------------------------------------------ */

/* Toward the client of an external FA: a raw IPv4 datagram routed by the
 * kernel. Rate-limited and counted. */
static void reset_ip(struct ctl_casa *x, const uint8_t *ip, size_t len, uint64_t now_ms)
{
	uint8_t rst[64];
	size_t n = ctl_rst_build(ip, len, rst, sizeof(rst));
	struct sockaddr_in to = { .sin_family = AF_INET };

	if (n == 0)
		return;
	if (!ctl_rate_take(&x->resets, now_ms)) {
		x->k.resets_limited++;
		return;
	}
	memcpy(&to.sin_addr, rst + 16, 4);
	if (x->raw_fd < 0 ||
	    sendto(x->raw_fd, rst, n, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to)) < 0) {
		x->k.tx_errors++;
		return;
	}
	x->k.resets_sent++;
}

/* Toward the client of our own workers: back out of the data port the
 * packet came in on, to the MAC it came from (VLAN tag kept). */
static void reset_frame(struct ctl_casa *x, const struct fp_event *ev, uint64_t now_ms)
{
	uint32_t flen = 0;
	const uint8_t *fr = fp_event_data(ev, &flen);
	uint8_t out[128];
	size_t l2 = 14, n;

	if (!fr || flen < 14)
		return;
	if (fr[12] == 0x81 && fr[13] == 0x00)
		l2 = 18;
	if (flen < l2 + 20)
		return;
	n = ctl_rst_build(fr + l2, flen - l2, out + l2, sizeof(out) - l2);
	if (n == 0)
		return;
	if (!ctl_rate_take(&x->resets, now_ms)) {
		x->k.resets_limited++;
		return;
	}
	memcpy(out, fr + 6, 6);
	if (fp_port_mac(ev->in_port, out + 6) != 0)
		memcpy(out + 6, fr, 6);
	memcpy(out + 12, fr + 12, l2 - 12);
	if (fp_tx_frame(ev->in_port, out, (uint32_t)(l2 + n)) != 0) {
		x->k.tx_errors++;
		return;
	}
	x->k.resets_sent++;
}

/* ---- interest ---------------------------------------------------------------------------- */

/* The flow and TCP flags of an IPv4 packet; false when it has no ports to
 * key on (not TCP/UDP, a later fragment, truncated). */
static bool ip_flow(const uint8_t *ip, size_t len, struct fp_flow *f, uint8_t *tcp_flags)
{
	size_t ihl;

	if (len < 20 || (ip[0] >> 4) != 4)
		return false;
	ihl = (size_t)(ip[0] & 0x0F) * 4;
	if (ihl < 20 || len < ihl + 4 || ((ip[6] << 8 | ip[7]) & 0x1FFF) != 0)
		return false;
	f->proto = ip[9];
	if (f->proto != 6 && f->proto != 17)
		return false;
	f->src = (uint32_t)ip[12] << 24 | (uint32_t)ip[13] << 16 | (uint32_t)ip[14] << 8 | ip[15];
	f->dst = (uint32_t)ip[16] << 24 | (uint32_t)ip[17] << 16 | (uint32_t)ip[18] << 8 | ip[19];
	f->sport = (uint16_t)(ip[ihl] << 8 | ip[ihl + 1]);
	f->dport = (uint16_t)(ip[ihl + 2] << 8 | ip[ihl + 3]);
	*tcp_flags = 0;
	if (f->proto == 6) {
		if (len < ihl + 14)
			return false;
		*tcp_flags = ip[ihl + 13];
	}
	return true;
}

static bool fa_allowed(const struct ctl_casa *x, uint32_t addr)
{
	const struct ctl_sm_conf *s = &x->c->sm;

	if (s->n_fa_prefixes == 0)
		return true;
	for (unsigned i = 0; i < s->n_fa_prefixes; i++)
		if ((addr & s->fa_prefixes[i].mask) == s->fa_prefixes[i].addr)
			return true;
	return false;
}

/* Spec 7.3 "Interest packet" from an external FA. */
static void on_interest(struct ctl_casa *x, const struct casa_msg *m, uint32_t src, uint16_t sport,
			uint64_t now_ms, uint32_t wall)
{
	uint32_t reply = m->present & CASA_HAS_SENDER_INFO ? m->sender.control_addr : src;
	struct fp_flow f;
	uint8_t flags;
	uint32_t target;

	if (!fa_allowed(x, src)) {
		x->k.interest_denied++;
		return;
	}
	if (!ip_flow(m->ip_pkt, m->ip_pkt_len, &f, &flags)) {
		x->k.interest_unparsable++;
		return;
	}
	switch (ctl_sm_interest(x->sm, &f, flags, src, now_ms, &target)) {
	case CTL_INT_NEW:
	case CTL_INT_KNOWN:
		// Spec 6.4: forward every interest packet; never hold it back.
		if (fp_forward_ip(m->ip_pkt, m->ip_pkt_len, target) != 0)
			x->k.forward_errors++;
		if (send_fixed(x, &f, target, (uint16_t)x->c->sm.fixed_ttl_s, reply, sport, wall) ==
		    0)
			x->k.fixed_sent++;
		break;
	case CTL_INT_RESET:
	case CTL_INT_NO_TARGET:
		reset_ip(x, m->ip_pkt, m->ip_pkt_len, now_ms);
		break;
	default:
		break;
	}
}

void ctl_casa_local_event(struct ctl_casa *x, struct fp_event *ev, uint64_t now_ms)
{
	uint32_t target;

	switch (ev->type) {
	case FP_EV_NEW_CONN:
		ctl_sm_conn_new(x->sm, &ev->flow, ev->target, now_ms);
		break;
	case FP_EV_INTEREST:
	case FP_EV_NO_TARGET:
		x->k.local_interest++;
		switch (ctl_sm_interest(x->sm, &ev->flow, ev->tcp_flags, 0, now_ms, &target)) {
		case CTL_INT_NEW:
		case CTL_INT_KNOWN:
			// The workers learn the affinity, so the rest of the
			// connection stays on the fast path.
			if (fp_affinity_add(&ev->flow, target, x->c->sm.fixed_ttl_s) != 0)
				x->k.affinity_full++;
			if (fp_event_forward(ev, target) != 0)
				x->k.forward_errors++;
			break;
		case CTL_INT_RESET:
		case CTL_INT_NO_TARGET:
			reset_frame(x, ev, now_ms);
			break;
		default:
			break;
		}
		break;
	default:
		x->k.local_other++;
		break;
	}
	fp_event_release(ev);
}

/* ---- hello registry -------------------------------------------------------------------------- */

static struct ctl_fa_row *fa_find(struct ctl_casa *x, uint32_t sender_id)
{
	for (unsigned i = 0; i < x->n_fas; i++)
		if (x->fas[i].sender_id == sender_id)
			return &x->fas[i];
	return NULL;
}

static struct ctl_fa_row *fa_add(struct ctl_casa *x, uint32_t sender_id)
{
	struct ctl_fa_row *fa;

	if (x->n_fas >= x->c->sm.fa_max) {
		x->k.fa_full++;
		return NULL;
	}
	fa = &x->fas[x->n_fas++];
	memset(fa, 0, sizeof(*fa));
	fa->sender_id = sender_id;
	return fa;
}

static void fa_remove(struct ctl_casa *x, struct ctl_fa_row *fa)
{
	*fa = x->fas[--x->n_fas];
}

static void send_hello_ack(struct ctl_casa *x, const struct casa_hello *peer, uint32_t addr,
			   uint16_t port, uint32_t wall)
{
	struct casa_hello h = {
		.role = CASA_ROLE_SM,
		.ext_version = 1,
		.sender_id = x->signer.sender_id,
		.epoch = x->epoch,
		.control_addr = x->c->sm.addr,
		.port = x->c->sm.port,
		.hello_interval = FA_HELLO_S,
		.hold_time = FA_HOLD_S,
		.caps = CASA_CAP_L2 | CASA_CAP_GRE | CASA_CAP_STATS | CASA_CAP_UDP |
			CASA_CAP_HMAC_MD5 | CASA_CAP_HMAC_SHA256,
		.peer_sender_id = peer->sender_id,
		.peer_epoch = peer->epoch,
	};

	if (send_msg(x, casa_encode_hello(x->tx, sizeof(x->tx), CASA_MSG_HELLO_ACK, &h, NULL), addr,
		     port, wall) == 0)
		x->k.hello_acks_sent++;
}

/* Spec 6.6, SM side. */
static void on_hello(struct ctl_casa *x, const struct casa_msg *m, uint32_t src, uint16_t sport,
		     uint64_t now_ms, uint32_t wall)
{
	const struct casa_hello *h = &m->hello;
	struct ctl_fa_row *fa = fa_find(x, h->sender_id);
	bool restarted = false;

	if (h->role != CASA_ROLE_FA) {
		x->k.peer_sm_msgs++;
		return;
	}
	if (h->flags & CASA_HELLO_GOODBYE) {
		if (fa)
			fa_remove(x, fa);
		return;
	}
	if (fa && h->epoch < fa->epoch) {
		x->k.hello_stale++; // an older incarnation: ignore
		return;
	}
	if (!fa) {
		fa = fa_add(x, h->sender_id);
		if (!fa)
			return;
	} else {
		restarted = h->epoch > fa->epoch;
	}
	fa->addr = h->control_addr ? h->control_addr : src;
	fa->port = sport;
	fa->epoch = h->epoch;
	fa->caps = h->caps;
	fa->hold_s = h->hold_time;
	fa->last_hello_ms = now_ms;
	fa->hellos++;
	if (m->present & CASA_HAS_NAME) {
		size_t n = m->name.len < sizeof(fa->name) - 1 ? m->name.len : sizeof(fa->name) - 1;

		memcpy(fa->name, m->name.bytes, n);
		fa->name[n] = 0;
	}
	send_hello_ack(x, h, src, sport, wall);
	if ((h->flags & CASA_HELLO_WANT_WILDCARDS) || restarted)
		send_wildcards(x, src, sport, wall);
}

static void on_stats(struct ctl_casa *x, const struct casa_msg *m, uint64_t now_ms)
{
	struct ctl_fa_row *fa = fa_find(x, m->stats.sender_id);

	if (!fa) {
		x->k.stats_unknown++;
		return;
	}
	fa->last_stats_ms = now_ms;
	for (unsigned i = 0; i < m->stats.count; i++) {
		uint16_t id = m->stats.entries[i].id;

		if (id < CTL_FA_STATS)
			fa->stats[id] = m->stats.entries[i].value;
	}
}

/* ---- receiving ---------------------------------------------------------------------------------- */

/* Message types counted apart in rx_types (CTL_CASA_RX_TYPES rows, the
 * last one "other"), with their metric labels. */
static const struct {
	uint16_t type;
	const char *label;
} rx_types[CTL_CASA_RX_TYPES] = {
	{ CASA_MSG_WILDCARD, "wildcard" },   { CASA_MSG_FIXED, "fixed" },
	{ CASA_MSG_IP_PACKET, "ip_packet" }, { CASA_MSG_HELLO, "hello" },
	{ CASA_MSG_HELLO_ACK, "hello_ack" }, { CASA_MSG_TICKLE, "tickle" },
	{ CASA_MSG_STATS, "stats" },         { 0, "other" },
};

const char *ctl_casa_rx_label(unsigned i)
{
	return i < CTL_CASA_RX_TYPES ? rx_types[i].label : NULL;
}

static void count_rx(struct ctl_casa *x, uint16_t type)
{
	unsigned i = 0;

	while (i < CTL_CASA_RX_TYPES - 1 && rx_types[i].type != type)
		i++;
	x->k.rx_types[i]++;
	x->k.rx++;
}

int ctl_casa_handle(struct ctl_casa *x, const uint8_t *buf, size_t len, uint32_t src,
		    uint16_t sport, uint64_t now_ms, uint32_t wall)
{
	struct casa_msg m;
	enum casa_err e = casa_decode(buf, len, 0, &m);

	if (e == CASA_OK)
		e = casa_verify(x->auth, buf, len, &m, wall);
	if (e != CASA_OK) {
		x->k.drops[e < CASA_E__COUNT ? e : 0]++;
		return -(int)e;
	}
	count_rx(x, m.type);
	switch (m.type) {
	case CASA_MSG_IP_PACKET:
		on_interest(x, &m, src, sport, now_ms, wall);
		break;
	case CASA_MSG_HELLO:
		on_hello(x, &m, src, sport, now_ms, wall);
		break;
	case CASA_MSG_STATS:
		on_stats(x, &m, now_ms);
		break;
	case CASA_MSG_TICKLE:
		x->k.tickles++;
		if (m.tickle.tcp_flags & (TCP_FIN | TCP_RST))
			x->k.tickle_closing++;
		break;
	case CASA_MSG_WILDCARD:
	case CASA_MSG_FIXED:
	case CASA_MSG_HELLO_ACK:
		// Another SM's traffic (our own multicast looped back, or a
		// backup): nothing to do until the HA issue.
		x->k.peer_sm_msgs++;
		break;
	default:
		x->k.unexpected++;
		break;
	}
	return 0;
}

void ctl_casa_input(struct ctl_casa *x, uint64_t now_ms, uint32_t wall)
{
	for (int i = 0; i < RX_PER_TURN; i++) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(x->fd, x->rx, sizeof(x->rx), MSG_DONTWAIT,
				     (struct sockaddr *)&from, &fl);

		if (n < 0)
			break;
		// Our own multicasts never come back here: the socket is bound
		// to the unicast address, and Linux delivers a group's datagram
		// only to sockets bound to the group or the wildcard address.
		ctl_casa_handle(x, x->rx, (size_t)n, ntohl(from.sin_addr.s_addr),
				ntohs(from.sin_port), now_ms, wall);
	}
	ctl_casa_flush(x);
}

void ctl_casa_wildcards_now(struct ctl_casa *x)
{
	x->wildcards_due = true;
}

void ctl_casa_tick(struct ctl_casa *x, uint64_t now_ms, uint32_t wall)
{
	// A port added or deleted (console, reload): advertise at once.
	if (ctl_sm_sp_generation(x->sm) != x->sp_gen) {
		x->sp_gen = ctl_sm_sp_generation(x->sm);
		send_withdrawals(x, wall);
		x->wildcards_due = true;
	}
	if (x->wildcards_due || now_ms >= x->next_wildcards_ms) {
		send_wildcards(x, x->c->sm.group, x->c->sm.port, wall);
		x->wildcards_due = false;
		x->next_wildcards_ms = now_ms + (uint64_t)x->c->sm.wildcard_interval_s * 1000;
	}
	send_deletes(x, wall);
	for (unsigned i = 0; i < x->n_fas;) {
		struct ctl_fa_row *fa = &x->fas[i];

		if (now_ms - fa->last_hello_ms > (uint64_t)fa->hold_s * 1000) {
			x->k.fa_expired++;
			fa_remove(x, fa);
			continue;
		}
		i++;
	}
	ctl_casa_flush(x);
}

/* ---- set-up -------------------------------------------------------------------------------- */

static int key_load(struct ctl_casa *x, uint32_t wall, char *err, size_t errlen)
{
	const struct ctl_sm_conf *s = &x->c->sm;
	struct casa_key key = { .alg = s->auth_alg, .id = s->key_id };
	int rc;

	if (s->auth_alg == CASA_AUTH_NONE)
		return 0;
	if (casa_key_file_read(s->key_file, &key, err, errlen) != 0)
		return -1;
	rc = casa_auth_set_key(x->auth, &key, wall);
	explicit_bzero(&key, sizeof(key));
	if (rc != 0) {
		snprintf(err, errlen, "key file %s: rejected (%s)", s->key_file, strerror(-rc));
		return -1;
	}
	return 0;
}

static int socket_open(struct ctl_casa *x, char *err, size_t errlen)
{
	const struct ctl_sm_conf *s = &x->c->sm;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(s->port) };
	struct in_addr ifaddr = { .s_addr = htonl(s->addr) };
	int one = 1, ttl = s->ip_ttl;

	x->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (x->fd < 0) {
		snprintf(err, errlen, "CASA socket: %s", strerror(errno));
		return -1;
	}
	// Bound to the SM's address, so a forwarding agent on the same host
	// can bind the group and port for the multicasts (SO_REUSEADDR).
	a.sin_addr.s_addr = htonl(s->addr);
	setsockopt(x->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(x->fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		snprintf(err, errlen, "CASA socket: bind %s:%u: %s", inet_ntoa(a.sin_addr), s->port,
			 strerror(errno));
		return -1;
	}
	if (setsockopt(x->fd, IPPROTO_IP, IP_MULTICAST_IF, &ifaddr, sizeof(ifaddr)) != 0 ||
	    setsockopt(x->fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof(ttl)) != 0 ||
	    setsockopt(x->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof(one)) != 0) {
		snprintf(err, errlen, "CASA socket: multicast options: %s", strerror(errno));
		return -1;
	}
	x->raw_fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_RAW);
	return 0;
}

struct ctl_casa *ctl_casa_create(const struct ctl_conf *c, struct ctl_sm *sm, uint64_t now_ms,
				 uint32_t wall, char *err, size_t errlen)
{
	struct ctl_casa *x = calloc(1, sizeof(*x));
	struct casa_auth_params p;

	if (!x) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	x->c = c;
	x->sm = sm;
	x->fd = x->raw_fd = -1;
	x->epoch = wall;
	x->signer = (struct casa_signer){ .sender_id = c->sm.addr, .epoch = wall };
	x->resets = (struct ctl_rate){ .rate = c->sm.reset_rate,
				       .tokens = c->sm.reset_rate,
				       .last_ms = now_ms };
	x->next_wildcards_ms = now_ms;
	x->wildcards_due = true;
	x->sp_gen = ctl_sm_sp_generation(sm);
	casa_auth_params_default(&p);
	p.freshness_s = c->sm.freshness_s;
	p.rollover_s = c->sm.rollover_s;
	x->auth = casa_auth_create(&p);
	x->fas = calloc(c->sm.fa_max ? c->sm.fa_max : 1, sizeof(*x->fas));
	if (!x->auth || !x->fas) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (key_load(x, wall, err, errlen) != 0 || socket_open(x, err, errlen) != 0)
		goto fail;
	return x;
fail:
	ctl_casa_destroy(x);
	return NULL;
}

void ctl_casa_destroy(struct ctl_casa *x)
{
	if (!x)
		return;
	if (x->fd >= 0) {
		ctl_casa_flush(x);
		close(x->fd);
	}
	if (x->raw_fd >= 0)
		close(x->raw_fd);
	casa_auth_destroy(x->auth);
	free(x->fas);
	free(x);
}

int ctl_casa_fd(const struct ctl_casa *x)
{
	return x->fd;
}

const struct ctl_casa_counters *ctl_casa_counters(const struct ctl_casa *x)
{
	return &x->k;
}

void ctl_casa_counters_clear(struct ctl_casa *x)
{
	memset(&x->k, 0, sizeof(x->k));
}

unsigned ctl_casa_fas(const struct ctl_casa *x, const struct ctl_fa_row **rows)
{
	*rows = x->fas;
	return x->n_fas;
}

struct casa_auth_ctx *ctl_casa_auth(struct ctl_casa *x)
{
	return x->auth;
}

struct casa_signer *ctl_casa_signer(struct ctl_casa *x)
{
	return &x->signer;
}
