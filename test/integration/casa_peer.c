/*
 * casa_peer.c - a forwarding agent and a target agent, written against
 * libcasa only, that run one scripted conversation with a live casalb
 * Service Manager (issue 4's integration test):
 *
 *   1. agent: REGISTER as NAME over TCP; expect REGISTER_ACK OK and
 *      SERVICES naming VIP:PORT; send READY (Rdy 1) and LOAD
 *   2. FA: HELLO with WANT_WILDCARDS; expect HELLO_ACK, and a wildcard for
 *      VIP:PORT that arrives on the multicast group
 *   3. FA: an interest packet carrying a SYN; expect a FIXED affinity for
 *      exactly that 5-tuple, TTL 900, forward address FWD
 *   4. agent: CONN_END for that connection; expect the TTL-0 delete on the
 *      multicast group
 *   5. forged: the interest signed with a wrong key, then a replay of the
 *      genuine one: expect no FIXED for either
 *
 * Each step prints "ok N ..." or "FAIL N ..."; every wait is bounded. Exit
 * status 0 when all passed.
 *
 * usage: casa_peer SM_ADDR FA_ADDR GROUP CASA_PORT AGENT_PORT KEY_FILE NAME
 *                  VIP PORT FWD
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "casa.h"

#define WAIT_MS 3000

struct peer {
	uint32_t sm, fa, group, vip, fwd;
	uint16_t casa_port, agent_port, port;
	const char *name;
	int udp, mc, tcp; /* udp: unicast from FA_ADDR; mc: the group */
	struct casa_auth_ctx *auth, *bad_auth;
	struct casa_signer signer;
	uint8_t buf[65536 + 4];
	int failures;
};

static uint32_t ip_of(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1) {
		fprintf(stderr, "casa_peer: bad address %s\n", s);
		exit(2);
	}
	return ntohl(a.s_addr);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void result(struct peer *p, int step, bool ok, const char *what)
{
	printf("%s %d %s\n", ok ? "ok" : "FAIL", step, what);
	fflush(stdout);
	p->failures += !ok;
}

static struct casa_auth_ctx *auth_with(const char *file, uint8_t key_id, bool corrupt)
{
	struct casa_auth_params prm;
	struct casa_key k = { .alg = CASA_AUTH_HMAC_SHA256, .id = key_id };
	struct casa_auth_ctx *a;
	char err[320];

	casa_auth_params_default(&prm);
	a = casa_auth_create(&prm);
	if (!a || casa_key_file_read(file, &k, err, sizeof(err)) != 0) {
		fprintf(stderr, "casa_peer: %s\n", a ? err : "no memory");
		exit(2);
	}
	if (corrupt)
		k.bytes[0] ^= 0x55;
	casa_auth_set_key(a, &k, (uint32_t)time(NULL));
	return a;
}

/* Sign p->buf[0..len) with a (the peer's signer); returns the new length. */
static size_t sign(struct peer *p, struct casa_auth_ctx *a, size_t len)
{
	int n = casa_sign(a, &p->signer, p->buf, len, sizeof(p->buf), (uint32_t)time(NULL));

	if (n < 0) {
		fprintf(stderr, "casa_peer: sign failed (%d)\n", n);
		exit(2);
	}
	return (size_t)n;
}

/* ---- UDP (forwarding agent) ------------------------------------------------------- */

static void udp_open(struct peer *p)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(p->casa_port) };
	struct sockaddr_in u = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(p->fa) };
	struct ip_mreqn mr = { .imr_multiaddr.s_addr = htonl(p->group),
			       .imr_address.s_addr = htonl(p->fa) };
	int one = 1;

	// The group's multicasts arrive on a socket bound to the wildcard
	// address and the CASA port (the SM holds its own address on that
	// port); unicast goes out from FA_ADDR on another socket, so the SM
	// answers there.
	p->mc = socket(AF_INET, SOCK_DGRAM, 0);
	p->udp = socket(AF_INET, SOCK_DGRAM, 0);
	setsockopt(p->mc, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(p->mc, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    setsockopt(p->mc, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) != 0 ||
	    bind(p->udp, (struct sockaddr *)&u, sizeof(u)) != 0) {
		fprintf(stderr, "casa_peer: UDP set-up: %s\n", strerror(errno));
		exit(2);
	}
}

static void udp_send(struct peer *p, size_t len)
{
	struct sockaddr_in to = { .sin_family = AF_INET,
				  .sin_port = htons(p->casa_port),
				  .sin_addr.s_addr = htonl(p->sm) };

	if (sendto(p->udp, p->buf, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		fprintf(stderr, "casa_peer: sendto: %s\n", strerror(errno));
}

/*
 * Wait for a verified message of `type` for which match() holds, up to
 * wait_ms, on either socket. *to_group tells whether it came to the group.
 */
static bool udp_expect(struct peer *p, uint16_t type,
		       bool (*match)(struct peer *, struct casa_msg *), struct casa_msg *m,
		       bool *to_group, int wait_ms)
{
	uint64_t end = now_ms() + (uint64_t)wait_ms;
	static uint8_t rx[65536];

	while (now_ms() < end) {
		struct pollfd pf[2] = { { .fd = p->udp, .events = POLLIN },
					{ .fd = p->mc, .events = POLLIN } };
		ssize_t n;

		if (poll(pf, 2, (int)(end - now_ms())) <= 0)
			break;
		for (int i = 0; i < 2; i++) {
			if (!(pf[i].revents & POLLIN))
				continue;
			n = recv(pf[i].fd, rx, sizeof(rx), 0);
			if (n <= 0 || casa_decode(rx, (size_t)n, 0, m) != CASA_OK ||
			    casa_verify(p->auth, rx, (size_t)n, m, (uint32_t)time(NULL)) !=
				    CASA_OK ||
			    m->type != type || (match && !match(p, m)))
				continue;
			*to_group = i == 1;
			return true;
		}
	}
	return false;
}

/* ---- TCP (target agent) -------------------------------------------------------------- */

static void tcp_send(struct peer *p, size_t len)
{
	uint8_t frame[65536 + 4];

	len = sign(p, p->auth, len);
	casa_stream_put_len(frame, 4, len);
	memcpy(frame + 4, p->buf, len);
	if (send(p->tcp, frame, len + 4, MSG_NOSIGNAL) != (ssize_t)(len + 4))
		fprintf(stderr, "casa_peer: agent send: %s\n", strerror(errno));
}

/* Read one framed message (bounded wait) into buf; its length or 0. */
static size_t tcp_recv(struct peer *p, uint8_t *buf, int wait_ms)
{
	size_t have = 0, need = 4;
	uint64_t end = now_ms() + (uint64_t)wait_ms;

	while (have < need && now_ms() < end) {
		struct pollfd pf = { .fd = p->tcp, .events = POLLIN };
		ssize_t n;

		if (poll(&pf, 1, (int)(end - now_ms())) <= 0)
			return 0;
		n = recv(p->tcp, buf + have, need - have, 0);
		if (n <= 0)
			return 0;
		have += (size_t)n;
		if (have == 4) {
			long l = casa_stream_frame_len(buf, 4);

			if (l <= 0)
				return 0;
			need = 4 + (size_t)l;
		}
	}
	if (have < need)
		return 0;
	memmove(buf, buf + 4, need - 4);
	return need - 4;
}

/* Receive agent messages until one of `type` verifies. */
static bool tcp_expect(struct peer *p, uint16_t type, struct casa_msg *m, uint8_t *buf)
{
	for (int i = 0; i < 8; i++) {
		size_t n = tcp_recv(p, buf, WAIT_MS);

		if (n == 0)
			return false;
		if (casa_decode(buf, n, CASA_STREAM_MAX, m) == CASA_OK &&
		    casa_verify(p->auth, buf, n, m, (uint32_t)time(NULL)) == CASA_OK &&
		    m->type == type)
			return true;
	}
	return false;
}

/* A TCP session to the SM's agent port, or -1. */
static int agent_connect(const struct peer *p)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(p->agent_port),
				 .sin_addr.s_addr = htonl(p->sm) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void step_agent(struct peer *p)
{
	struct casa_agent_register r = { .version = 1,
					 .sender_id = p->fa + 1000,
					 .epoch = (uint32_t)time(NULL),
					 .keepalive_s = 1,
					 .hold_s = 5,
					 .caps = CASA_AGENT_CAP_GRE };
	static uint8_t in[65536 + 4];
	struct casa_msg m;
	bool ok, served = false;

	p->tcp = agent_connect(p);
	if (p->tcp < 0) {
		result(p, 1, false, "agent: connect to the SM");
		return;
	}
	tcp_send(p, casa_encode_agent_register(p->buf, sizeof(p->buf), &r, p->name, NULL));
	ok = tcp_expect(p, CASA_MSG_AGENT_REGISTER_ACK, &m, in) &&
	     m.agent.reg.status == CASA_AGENT_ST_OK;
	result(p, 1, ok, "agent: REGISTER answered by REGISTER_ACK status OK");
	if (ok && tcp_expect(p, CASA_MSG_AGENT_SERVICES, &m, in)) {
		for (unsigned i = 0; i < m.agent.list.n; i++) {
			struct casa_agent_service s;

			casa_agent_service_get(&m, i, &s);
			served |= s.vip == p->vip && s.port == p->port && s.protocol == 6;
		}
	}
	result(p, 1, served, "agent: SERVICES names the VIP and port");
	struct casa_agent_service rd = {
		.vip = p->vip, .port = p->port, .protocol = 6, .ready = 1
	};
	struct casa_agent_load ld = { .capacity = 64, .active = 0, .cpu_idle = 900 };

	tcp_send(p,
		 casa_encode_agent_services(p->buf, sizeof(p->buf), CASA_MSG_AGENT_READY, &rd, 1));
	tcp_send(p, casa_encode_agent_load(p->buf, sizeof(p->buf), &ld));
}

/* Refusals: t2 registering with a dispatch the SM is not configured for
 * gets CASA_AGENT_ST_DISPATCH with the configured one (GRE to t2's
 * endpoint) to re-plumb by; a connection that never registers is closed
 * after the SM's 5 s deadline, long before agents.timeout (60 s here). */
static void step_agent_refusals(struct peer *p, const char *other, uint32_t other_endpoint)
{
	struct casa_agent_register r = { .version = 1,
					 .sender_id = p->fa + 2000,
					 .epoch = (uint32_t)time(NULL),
					 .keepalive_s = 1,
					 .hold_s = 5,
					 .caps = CASA_AGENT_CAP_L2 };
	struct casa_dispatch_info l2 = { .method = CASA_DISPATCH_L2 };
	static uint8_t in[65536 + 4];
	int registered = p->tcp, silent;
	struct casa_msg m;
	uint64_t t0;
	bool ok;

	p->tcp = agent_connect(p);
	if (p->tcp >= 0)
		tcp_send(p, casa_encode_agent_register(p->buf, sizeof(p->buf), &r, other, &l2));
	ok = p->tcp >= 0 && tcp_expect(p, CASA_MSG_AGENT_REGISTER_ACK, &m, in) &&
	     m.agent.reg.status == CASA_AGENT_ST_DISPATCH && (m.present & CASA_HAS_DISPATCH_INFO) &&
	     m.dispatch.method == CASA_DISPATCH_GRE && m.dispatch.tunnel_endpoint == other_endpoint;
	result(p, 6, ok, "agent: a dispatch mismatch is refused with the dispatch to plumb");
	if (p->tcp >= 0)
		close(p->tcp);
	p->tcp = registered;

	silent = agent_connect(p);
	t0 = now_ms();
	if (silent >= 0) {
		struct pollfd pf = { .fd = silent, .events = POLLIN };
		char c;

		// Bounded: 9 s for the SM to close it (EOF or reset).
		ok = poll(&pf, 1, 9000) == 1 && recv(silent, &c, 1, 0) <= 0 &&
		     now_ms() - t0 >= 4000;
		close(silent);
	} else {
		ok = false;
	}
	result(p, 6, ok, "agent: a session that never registers is closed after about 5 s");
}

/* ---- the FA steps ----------------------------------------------------------------------- */

static bool is_our_wildcard(struct peer *p, struct casa_msg *m)
{
	return m->aff.dst == p->vip && m->aff.dst_port == p->port && m->aff.ttl > 0 &&
	       m->action.interest_addr == p->sm;
}

static void step_hello(struct peer *p)
{
	struct casa_hello h = { .role = CASA_ROLE_FA,
				.ext_version = 1,
				.flags = CASA_HELLO_WANT_WILDCARDS,
				.sender_id = p->fa,
				.epoch = (uint32_t)time(NULL),
				.control_addr = p->fa,
				.port = p->casa_port,
				.hello_interval = 10,
				.hold_time = 30,
				.caps = CASA_CAP_GRE | CASA_CAP_HMAC_SHA256 };
	struct casa_msg m;
	bool grp = false, ok;

	udp_send(p,
		 sign(p, p->auth,
		      casa_encode_hello(p->buf, sizeof(p->buf), CASA_MSG_HELLO, &h, "casa-peer")));
	ok = udp_expect(p, CASA_MSG_HELLO_ACK, NULL, &m, &grp, WAIT_MS) &&
	     m.hello.peer_sender_id == p->fa && m.hello.role == CASA_ROLE_SM;
	result(p, 2, ok, "FA: HELLO answered by HELLO_ACK");
	// The periodic multicast (at start and every interval) or the one that
	// follows READY; the unicast reply to WANT_WILDCARDS is skipped here.
	uint64_t end = now_ms() + 2 * WAIT_MS + 31000;

	ok = false;
	while (!ok && now_ms() < end)
		ok = udp_expect(p, CASA_MSG_WILDCARD, is_our_wildcard, &m, &grp, 1000) && grp;
	result(p, 2, ok, "FA: wildcard for the VIP arrives on the multicast group");
}

static size_t syn_packet(struct peer *p, uint8_t *ip, uint8_t tcp_flags)
{
	static const uint8_t tmpl[40] = { 0x45, 0, 0,    40,   0x12, 0x34, 0x40, 0,    64,
					  6,    0, 0,    192,  0,    2,    50,   0,    0,
					  0,    0, 0x9c, 0x40, 0,    0,    0,    0,    0,
					  1,    0, 0,    0,    0,    0x50, 0,    0xff, 0xff };
	uint32_t sum = 0;

	memcpy(ip, tmpl, 40);
	ip[16] = (uint8_t)(p->vip >> 24);
	ip[17] = (uint8_t)(p->vip >> 16);
	ip[18] = (uint8_t)(p->vip >> 8);
	ip[19] = (uint8_t)p->vip;
	ip[22] = (uint8_t)(p->port >> 8);
	ip[23] = (uint8_t)p->port;
	ip[33] = tcp_flags;
	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	ip[10] = (uint8_t)(~sum >> 8);
	ip[11] = (uint8_t)~sum;
	return 40;
}

static bool is_our_fixed(struct peer *p, struct casa_msg *m)
{
	return m->aff.src == 0xC0000232u && m->aff.src_port == 40000 && m->aff.dst == p->vip &&
	       m->aff.dst_port == p->port && m->aff.protocol == 6;
}

static void step_interest(struct peer *p, uint8_t *saved, size_t *saved_len)
{
	uint8_t ip[40];
	struct casa_msg m;
	bool grp, ok;
	size_t n = syn_packet(p, ip, 0x02);

	n = sign(p, p->auth, casa_encode_ip_packet(p->buf, sizeof(p->buf), ip, n));
	memcpy(saved, p->buf, n);
	*saved_len = n;
	udp_send(p, n);
	ok = udp_expect(p, CASA_MSG_FIXED, is_our_fixed, &m, &grp, WAIT_MS) && !grp &&
	     m.aff.ttl == 900 && m.aff.fwd == p->fwd;
	result(p, 3, ok, "FA: SYN interest answered by a unicast FIXED (ttl 900, forward FWD)");
}

static void step_conn_end(struct peer *p)
{
	struct casa_agent_conn c = { .client = 0xC0000232u,
				     .vip = p->vip,
				     .client_port = 40000,
				     .vip_port = p->port,
				     .protocol = 6,
				     .state = CASA_AGENT_END_CLOSED };
	struct casa_msg m;
	bool grp = false, ok;

	tcp_send(p, casa_encode_agent_conns(p->buf, sizeof(p->buf), CASA_MSG_AGENT_CONN_END, 0, 0,
					    &c, 1));
	ok = udp_expect(p, CASA_MSG_FIXED, is_our_fixed, &m, &grp, WAIT_MS) && m.aff.ttl == 0 &&
	     grp;
	result(p, 4, ok, "agent CONN_END -> TTL-0 delete multicast to the group");
}

static void step_forged(struct peer *p, const uint8_t *saved, size_t saved_len)
{
	uint8_t ip[40];
	struct casa_msg m;
	bool grp;
	size_t n = syn_packet(p, ip, 0x02);

	// A different client, so a FIXED could only answer the forgery.
	ip[15] = 51;
	ip[10] = ip[11] = 0;
	n = sign(p, p->bad_auth, casa_encode_ip_packet(p->buf, sizeof(p->buf), ip, n));
	udp_send(p, n);
	result(p, 5, !udp_expect(p, CASA_MSG_FIXED, NULL, &m, &grp, 1500),
	       "forged interest (wrong key): no FIXED");
	memcpy(p->buf, saved, saved_len);
	udp_send(p, saved_len);
	result(p, 5, !udp_expect(p, CASA_MSG_FIXED, NULL, &m, &grp, 1500),
	       "replayed interest: no FIXED");
}

int main(int argc, char **argv)
{
	struct peer p = { 0 };
	static uint8_t saved[65536];
	size_t saved_len = 0;

	if (argc != 11) {
		fprintf(stderr, "usage: casa_peer SM_ADDR FA_ADDR GROUP CASA_PORT AGENT_PORT"
				" KEY_FILE NAME VIP PORT FWD\n");
		return 2;
	}
	p.sm = ip_of(argv[1]);
	p.fa = ip_of(argv[2]);
	p.group = ip_of(argv[3]);
	p.casa_port = (uint16_t)atoi(argv[4]);
	p.agent_port = (uint16_t)atoi(argv[5]);
	p.auth = auth_with(argv[6], 1, false);
	p.bad_auth = auth_with(argv[6], 1, true);
	p.name = argv[7];
	p.vip = ip_of(argv[8]);
	p.port = (uint16_t)atoi(argv[9]);
	p.fwd = ip_of(argv[10]);
	p.signer = (struct casa_signer){ .sender_id = p.fa, .epoch = (uint32_t)time(NULL) };
	udp_open(&p);
	step_agent(&p);
	step_hello(&p);
	step_interest(&p, saved, &saved_len);
	step_conn_end(&p);
	step_forged(&p, saved, saved_len);
	step_agent_refusals(&p, "t2", ip_of("198.51.100.12"));
	printf("%s: %d failed\n", p.failures ? "FAIL" : "PASS", p.failures);
	casa_auth_destroy(p.auth);
	casa_auth_destroy(p.bad_auth);
	close(p.udp);
	close(p.mc);
	if (p.tcp > 0)
		close(p.tcp);
	return p.failures ? 1 : 0;
}
