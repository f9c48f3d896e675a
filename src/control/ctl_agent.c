/*
 * ctl_agent.c - the agent protocol server (docs/agent-protocol.md): the
 * Service Manager's side of the XCF-like link to each target host's
 * casalb-agent. TCP, each message a CASA message behind a u32 length
 * (casa-protocol.md 11.6), authenticated like CASA when a key is set.
 *
 * One epoll instance holds the listener and every session; the event loop
 * polls its descriptor and calls ctl_agent_run, which handles a bounded
 * number of events and never blocks on a peer: reads and writes are
 * non-blocking, output is queued per session up to a bound, and a peer
 * that lets it overflow is disconnected.
 *
 * Context: control thread.
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "casa.h"
#include "ctl.h"

#define EVENTS_PER_TURN 64
#define RX_CAP (CASA_STREAM_MAX + 4)
#define TX_CAP (1u << 20) /* queued output per session before we give up on it */
#define MSG_CAP 65536
#define REGISTER_DEADLINE_MS 5000 /* from accept to an accepted REGISTER */
#define LISTEN_TAG UINT32_MAX

struct session {
	int fd;
	bool used, registered, closing;
	uint32_t target, sender_id;
	uint32_t peer_addr;
	uint16_t peer_port;
	uint64_t accepted_ms, last_rx_ms, last_ka_ms;
	uint32_t ka_seq;
	uint8_t *rx;
	size_t rx_len;
	uint8_t *tx;
	size_t tx_len, tx_off;
	uint64_t msgs, drops;
};

struct ctl_agent {
	const struct ctl_conf *c;
	struct ctl_sm *sm;
	struct casa_auth_ctx *auth;
	struct casa_signer *signer;
	uint32_t epoch;
	int ep, lfd;
	struct session *s;
	unsigned n_max;
	struct ctl_agent_counters k;
	uint64_t sp_gen; /* the SM's service-port generation agents were told */
	uint8_t msg[MSG_CAP];
};

/* ---- sessions -------------------------------------------------------------------------- */

static void watch(struct ctl_agent *a, struct session *s, bool out)
{
	struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0),
				  .data.u32 = (uint32_t)(s - a->s) };

	epoll_ctl(a->ep, EPOLL_CTL_MOD, s->fd, &ev);
}

static void session_close(struct ctl_agent *a, struct session *s, uint64_t now_ms)
{
	if (!s->used)
		return;
	if (s->registered)
		ctl_sm_agent_lost(a->sm, s->target, now_ms);
	epoll_ctl(a->ep, EPOLL_CTL_DEL, s->fd, NULL);
	close(s->fd);
	free(s->rx);
	free(s->tx);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	a->k.closed++;
}

/* Write what is queued; false when the peer is gone. */
static bool flush(struct ctl_agent *a, struct session *s)
{
	while (s->tx_off < s->tx_len) {
		ssize_t n = send(s->fd, s->tx + s->tx_off, s->tx_len - s->tx_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return false;
		}
		s->tx_off += (size_t)n;
	}
	if (s->tx_off == s->tx_len)
		s->tx_off = s->tx_len = 0;
	watch(a, s, s->tx_len > 0);
	return true;
}

/* Sign a->msg[0..len) when keyed, frame it and queue it. */
static void send_msg(struct ctl_agent *a, struct session *s, size_t len, uint32_t wall)
{
	int n = (int)len;

	if (len == 0) {
		a->k.tx_errors++;
		return;
	}
	if (casa_auth_enabled(a->auth)) {
		n = casa_sign(a->auth, a->signer, a->msg, len, sizeof(a->msg), wall);
		if (n < 0) {
			a->k.tx_errors++;
			return;
		}
	}
	if (!s->tx)
		s->tx = malloc(TX_CAP);
	if (!s->tx || s->tx_len + 4 + (size_t)n > TX_CAP) {
		// A peer that does not read: drop it rather than grow without
		// bound or block the control thread.
		a->k.tx_overflow++;
		s->closing = true;
		return;
	}
	casa_stream_put_len(s->tx + s->tx_len, 4, (size_t)n);
	memcpy(s->tx + s->tx_len + 4, a->msg, (size_t)n);
	s->tx_len += 4 + (size_t)n;
	a->k.msgs_sent++;
	if (!flush(a, s))
		s->closing = true;
}

/* ---- handlers ------------------------------------------------------------------------------ */

static bool dispatch_matches(const struct ctl_target *t, const struct casa_dispatch_info *d)
{
	if (d->method == CASA_DISPATCH_L2)
		return t->fp.dispatch == FP_DISPATCH_L2;
	return t->fp.dispatch == FP_DISPATCH_GRE && d->tunnel_endpoint == t->fp.tunnel;
}

/* What the agent must plumb for target t: its dispatch, and for GRE the
 * endpoint and whether every packet carries the key (and sequence numbers). */
static void target_dispatch(const struct ctl_conf *c, const struct ctl_target *t,
			    struct casa_dispatch_info *d)
{
	memset(d, 0, sizeof(*d));
	d->method = t->fp.dispatch == FP_DISPATCH_L2 ? CASA_DISPATCH_L2 : CASA_DISPATCH_GRE;
	d->tunnel_endpoint = t->fp.tunnel;
	d->gre_key = t->fp.gre_key;
	if (d->method == CASA_DISPATCH_GRE)
		d->gre_flags = (uint8_t)((c->fp.gre.use_key ? CASA_GRE_F_KEY : 0) |
					 (c->fp.gre.use_seq ? CASA_GRE_F_SEQ : 0));
	if (t->fp.dispatch == FP_DISPATCH_L2 && t->fp.has_mac)
		memcpy(d->nexthop_mac, t->fp.mac, 6);
	if (d->method == CASA_DISPATCH_GRE && !d->tunnel_endpoint)
		d->method = CASA_DISPATCH_L2;
}

static void send_services(struct ctl_agent *a, struct session *s, uint32_t wall)
{
	struct fp_flow f[CASA_AGENT_SERVICES_MAX];
	struct casa_agent_service e[CASA_AGENT_SERVICES_MAX];
	unsigned n = ctl_sm_target_services(a->sm, s->target, f, CASA_AGENT_SERVICES_MAX);
	uint8_t d = a->c->targets[s->target].fp.dispatch == FP_DISPATCH_L2 ? CASA_DISPATCH_L2 :
									     CASA_DISPATCH_GRE;

	for (unsigned i = 0; i < n; i++)
		e[i] = (struct casa_agent_service){
			.vip = f[i].dst, .port = f[i].dport, .protocol = f[i].proto, .dispatch = d
		};
	send_msg(a, s,
		 casa_encode_agent_services(a->msg, sizeof(a->msg), CASA_MSG_AGENT_SERVICES, e, n),
		 wall);
}

static void on_register(struct ctl_agent *a, struct session *s, const struct casa_msg *m,
			uint32_t wall)
{
	struct casa_agent_register ack = {
		.version = CASA_AGENT_VERSION,
		.sender_id = a->signer->sender_id,
		.epoch = a->epoch,
		.keepalive_s = (uint16_t)a->c->agents.keepalive_s,
		.hold_s = (uint16_t)a->c->agents.timeout_s,
	};
	struct casa_dispatch_info d;
	char name[CASA_NAME_MAX + 1] = "";
	uint32_t t = 0;
	int st;

	if (s->registered) {
		a->k.protocol_errors++;
		return;
	}
	if (m->present & CASA_HAS_NAME) {
		memcpy(name, m->name.bytes, m->name.len);
		name[m->name.len] = 0;
	}
	st = CASA_AGENT_ST_UNKNOWN_TARGET;
	for (unsigned i = 0; i < a->c->n_targets; i++) {
		if (strcmp(a->c->targets[i].name, name) != 0)
			continue;
		// The agent plumbed something else than we would send: refuse
		// rather than forward into a tunnel nobody decapsulates, and
		// say what to plumb instead (section 6: re-plumb as the ack's
		// DISPATCH_INFO says).
		if ((m->present & CASA_HAS_DISPATCH_INFO) &&
		    !dispatch_matches(&a->c->targets[i], &m->dispatch)) {
			st = CASA_AGENT_ST_DISPATCH;
			t = i;
		} else {
			st = ctl_sm_agent_register(a->sm, name, &t);
		}
		break;
	}
	ack.status = (uint8_t)st;
	if (st == CASA_AGENT_ST_OK) {
		ack.caps = t; // REGISTER_ACK's +20 is the target id
		s->registered = true;
		s->target = t;
		s->sender_id = m->agent.reg.sender_id;
		a->k.registered++;
		target_dispatch(a->c, &a->c->targets[t], &d);
		send_msg(a, s, casa_encode_agent_register_ack(a->msg, sizeof(a->msg), &ack, &d),
			 wall);
		send_services(a, s, wall);
		return;
	}
	a->k.refused++;
	if (st == CASA_AGENT_ST_DISPATCH)
		target_dispatch(a->c, &a->c->targets[t], &d);
	send_msg(a, s,
		 casa_encode_agent_register_ack(a->msg, sizeof(a->msg), &ack,
						st == CASA_AGENT_ST_DISPATCH ? &d : NULL),
		 wall);
	s->closing = true;
}

static void on_ready(struct ctl_agent *a, struct session *s, const struct casa_msg *m)
{
	for (unsigned i = 0; i < m->agent.list.n; i++) {
		struct casa_agent_service e;

		casa_agent_service_get(m, i, &e);
		ctl_sm_agent_ready(a->sm, s->target, e.vip, e.port, e.protocol, e.ready);
	}
}

static struct fp_flow conn_flow(const struct casa_agent_conn *c)
{
	return (struct fp_flow){ .src = c->client,
				 .dst = c->vip,
				 .sport = c->client_port,
				 .dport = c->vip_port,
				 .proto = c->protocol };
}

static void on_conn_end(struct ctl_agent *a, struct session *s, const struct casa_msg *m)
{
	for (unsigned i = 0; i < m->agent.list.n; i++) {
		struct casa_agent_conn c;
		struct fp_flow f;

		casa_agent_conn_get(m, i, &c);
		f = conn_flow(&c);
		ctl_sm_conn_end(a->sm, s->target, &f);
	}
}

static void on_conn_table(struct ctl_agent *a, struct session *s, const struct casa_msg *m,
			  uint64_t now_ms)
{
	const struct casa_agent_list *l = &m->agent.list;

	if (l->flags & CASA_AGENT_TBL_FIRST)
		ctl_sm_resync_begin(a->sm, s->target, l->resync_id, now_ms);
	for (unsigned i = 0; i < l->n; i++) {
		struct casa_agent_conn c;
		struct fp_flow f;

		casa_agent_conn_get(m, i, &c);
		f = conn_flow(&c);
		ctl_sm_resync_conn(a->sm, s->target, &f, now_ms);
	}
	if (l->flags & CASA_AGENT_TBL_LAST)
		ctl_sm_resync_end(a->sm, s->target, l->resync_id);
}

/* One framed message from session s. */
static void on_message(struct ctl_agent *a, struct session *s, const uint8_t *buf, size_t len,
		       uint64_t now_ms, uint32_t wall)
{
	struct casa_msg m;
	enum casa_err e = casa_decode(buf, len, CASA_STREAM_MAX, &m);

	if (e == CASA_OK)
		e = casa_verify(a->auth, buf, len, &m, wall);
	if (e == CASA_OK && !casa_agent_msg(m.type))
		e = CASA_E_MSG_TYPE;
	if (e != CASA_OK) {
		a->k.drops[e < 32 ? e : 0]++;
		s->drops++;
		// Before registration nothing is trusted: a session that opens
		// with garbage or a bad signature is closed.
		if (!s->registered)
			s->closing = true;
		return;
	}
	s->msgs++;
	s->last_rx_ms = now_ms;
	if (!s->registered && m.type != CASA_MSG_AGENT_REGISTER) {
		a->k.protocol_errors++;
		s->closing = true;
		return;
	}
	switch (m.type) {
	case CASA_MSG_AGENT_REGISTER:
		on_register(a, s, &m, wall);
		break;
	case CASA_MSG_AGENT_READY:
		on_ready(a, s, &m);
		break;
	case CASA_MSG_AGENT_LOAD:
		ctl_sm_agent_load(a->sm, s->target, m.agent.load.capacity, m.agent.load.qos);
		break;
	case CASA_MSG_AGENT_CONN_END:
		on_conn_end(a, s, &m);
		break;
	case CASA_MSG_AGENT_CONN_TABLE:
		on_conn_table(a, s, &m, now_ms);
		break;
	case CASA_MSG_AGENT_KEEPALIVE:
		a->k.keepalives++;
		break;
	default:
		a->k.protocol_errors++; // SM-to-agent messages sent to us
		break;
	}
}

/* Read what is there and handle every complete message. */
static void session_read(struct ctl_agent *a, struct session *s, uint64_t now_ms, uint32_t wall)
{
	ssize_t n;

	if (!s->rx && !(s->rx = malloc(RX_CAP))) {
		s->closing = true;
		return;
	}
	n = recv(s->fd, s->rx + s->rx_len, RX_CAP - s->rx_len, MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
		s->closing = true;
		return;
	}
	if (n < 0)
		return;
	s->rx_len += (size_t)n;
	size_t off = 0;

	while (!s->closing) {
		long fl = casa_stream_frame_len(s->rx + off, s->rx_len - off);

		if (fl < 0) {
			a->k.framing_errors++;
			s->closing = true;
			break;
		}
		if (fl == 0 || s->rx_len - off < 4 + (size_t)fl)
			break;
		on_message(a, s, s->rx + off + 4, (size_t)fl, now_ms, wall);
		off += 4 + (size_t)fl;
	}
	memmove(s->rx, s->rx + off, s->rx_len - off);
	s->rx_len -= off;
}

/* ---- listener and loop ------------------------------------------------------------------------ */

static void accept_one(struct ctl_agent *a, uint64_t now_ms)
{
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	int fd = accept4(a->lfd, (struct sockaddr *)&from, &fl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct session *s = NULL;
	struct epoll_event ev = { .events = EPOLLIN };
	int one = 1;

	if (fd < 0)
		return;
	for (unsigned i = 0; i < a->n_max && !s; i++)
		if (!a->s[i].used)
			s = &a->s[i];
	if (!s) {
		a->k.refused_full++;
		close(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->used = true;
	s->peer_addr = ntohl(from.sin_addr.s_addr);
	s->peer_port = ntohs(from.sin_port);
	s->accepted_ms = s->last_rx_ms = s->last_ka_ms = now_ms;
	ev.data.u32 = (uint32_t)(s - a->s);
	if (epoll_ctl(a->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		close(fd);
		s->used = false;
		return;
	}
	a->k.accepted++;
}

void ctl_agent_run(struct ctl_agent *a, uint64_t now_ms, uint32_t wall)
{
	struct epoll_event ev[EVENTS_PER_TURN];
	int n = epoll_wait(a->ep, ev, EVENTS_PER_TURN, 0);

	for (int i = 0; i < n; i++) {
		struct session *s;

		if (ev[i].data.u32 == LISTEN_TAG) {
			accept_one(a, now_ms);
			continue;
		}
		s = &a->s[ev[i].data.u32];
		if (!s->used)
			continue;
		if ((ev[i].events & EPOLLOUT) && !flush(a, s))
			s->closing = true;
		if (ev[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
			session_read(a, s, now_ms, wall);
		if (s->closing && (s->tx_len == 0 || !flush(a, s) || s->tx_len == 0))
			session_close(a, s, now_ms);
	}
}

void ctl_agent_tick(struct ctl_agent *a, uint64_t now_ms, uint32_t wall)
{
	uint64_t ka_ms = (uint64_t)a->c->agents.keepalive_s * 1000;
	uint64_t timeout_ms = (uint64_t)a->c->agents.timeout_s * 1000;
	// A port added or deleted live: SERVICES is a full state, sent again
	// "whenever the set changes" (docs/agent-protocol.md), so the agents
	// report Rdy for the new port.
	bool resend = ctl_sm_sp_generation(a->sm) != a->sp_gen;

	a->sp_gen = ctl_sm_sp_generation(a->sm);
	for (unsigned i = 0; i < a->n_max; i++) {
		struct session *s = &a->s[i];

		if (!s->used)
			continue;
		// Unregistered past REGISTER_DEADLINE_MS: a connection that
		// holds a slot without registering (a scanner, a flood) goes
		// long before agents.timeout, so real agents find room.
		if (!s->registered && !s->closing &&
		    now_ms - s->accepted_ms > REGISTER_DEADLINE_MS) {
			a->k.timeouts++;
			session_close(a, s, now_ms);
			continue;
		}
		if (now_ms - s->last_rx_ms > timeout_ms) {
			// Silent past the timeout: the target is down now, not
			// one more timeout later.
			bool reg = s->registered;
			uint32_t t = s->target;

			a->k.timeouts++;
			s->registered = false;
			session_close(a, s, now_ms);
			if (reg)
				ctl_sm_agent_lost(a->sm, t, now_ms - timeout_ms);
			continue;
		}
		if (s->registered && resend)
			send_services(a, s, wall);
		if (s->registered && now_ms - s->last_ka_ms >= ka_ms) {
			struct casa_agent_keepalive k = { .sender_id = a->signer->sender_id,
							  .seq = ++s->ka_seq,
							  .time_ms = (uint32_t)now_ms };

			s->last_ka_ms = now_ms;
			send_msg(a, s, casa_encode_agent_keepalive(a->msg, sizeof(a->msg), &k),
				 wall);
		}
		if (s->closing && s->tx_len == 0)
			session_close(a, s, now_ms);
	}
}

struct ctl_agent *ctl_agent_create(const struct ctl_conf *c, struct ctl_sm *sm,
				   struct casa_auth_ctx *auth, struct casa_signer *signer,
				   uint32_t epoch, char *err, size_t errlen)
{
	struct ctl_agent *a = calloc(1, sizeof(*a));
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(c->agents.port),
				  .sin_addr.s_addr = htonl(c->agents.addr) };
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = LISTEN_TAG };
	int one = 1;

	if (!a) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->c = c;
	a->sm = sm;
	a->auth = auth;
	a->signer = signer;
	a->epoch = epoch;
	a->sp_gen = ctl_sm_sp_generation(sm);
	a->n_max = c->agents.max ? c->agents.max : 256;
	a->lfd = -1;
	a->s = calloc(a->n_max, sizeof(*a->s));
	a->ep = epoll_create1(EPOLL_CLOEXEC);
	if (!a->s || a->ep < 0) {
		snprintf(err, errlen, "agent server: %s", strerror(errno ? errno : ENOMEM));
		goto fail;
	}
	a->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->lfd < 0 || setsockopt(a->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(a->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(a->lfd, 64) != 0 ||
	    epoll_ctl(a->ep, EPOLL_CTL_ADD, a->lfd, &ev) != 0) {
		snprintf(err, errlen, "agent server: listen %s:%u: %s", inet_ntoa(sa.sin_addr),
			 c->agents.port, strerror(errno));
		goto fail;
	}
	return a;
fail:
	ctl_agent_destroy(a);
	return NULL;
}

void ctl_agent_destroy(struct ctl_agent *a)
{
	if (!a)
		return;
	for (unsigned i = 0; a->s && i < a->n_max; i++)
		if (a->s[i].used)
			session_close(a, &a->s[i], 0);
	if (a->lfd >= 0)
		close(a->lfd);
	if (a->ep >= 0)
		close(a->ep);
	free(a->s);
	free(a);
}

int ctl_agent_fd(const struct ctl_agent *a)
{
	return a->ep;
}

const struct ctl_agent_counters *ctl_agent_counters(const struct ctl_agent *a)
{
	return &a->k;
}

void ctl_agent_counters_clear(struct ctl_agent *a)
{
	memset(&a->k, 0, sizeof(a->k));
}

unsigned ctl_agent_sessions(const struct ctl_agent *a, struct ctl_agent_row *out, unsigned max)
{
	unsigned n = 0;

	for (unsigned i = 0; i < a->n_max && n < max; i++) {
		const struct session *s = &a->s[i];

		if (!s->used)
			continue;
		out[n++] = (struct ctl_agent_row){ .addr = s->peer_addr,
						   .port = s->peer_port,
						   .registered = s->registered,
						   .target = s->target,
						   .sender_id = s->sender_id,
						   .last_rx_ms = s->last_rx_ms,
						   .msgs = s->msgs,
						   .drops = s->drops };
	}
	return n;
}
