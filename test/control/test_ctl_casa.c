/*
 * test_ctl_casa.c - the SM's CASA and agent message handlers against the
 * fast-path stub, over real loopback sockets: the SM's CASA socket on
 * 127.0.0.2 and its agent listener on 127.0.0.3; the test plays the FA
 * (UDP on 127.0.0.1, the same port, which also receives the "multicasts":
 * the group is set to 127.0.0.1) and the target agent (TCP).
 */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "casa.h"
#include "ctl.h"
#include "fp_stub.h"

#define PORT 16399
#define APORT 16398
#define NOW 5000
#define WALL 1700000000u

static const char conf_text[] =
	"service_manager = { address = \"127.0.0.2\"; group = \"224.0.1.2\"; port = 16399; };\n"
	"agents = { address = \"127.0.0.3\"; port = 16398; required = true; };\n"
	"dataplane = { affinity_capacity = 4096; ports = ( { device = \"ring:c\";\n"
	"  address = \"192.0.2.1\"; gateway_mac = \"02:00:00:00:00:01\"; } ); };\n"
	"targets = ( { name = \"t1\"; tunnel = \"198.51.100.11\"; },\n"
	"  { name = \"t2\"; tunnel = \"198.51.100.12\"; } );\n"
	"services = ( { name = \"web\"; vip = \"203.0.113.10\"; ports = [ 80 ];\n"
	"  targets = [ \"t1\", \"t2\" ]; } );\n";

static struct ctl_conf conf;
static struct ctl_sm *sm;
static struct ctl_casa *casa;
static struct ctl_agent *agent;
static int fa_fd;
static uint8_t buf[65536];

static int setup(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(PORT),
				 .sin_addr.s_addr = htonl(0x7F000001) };
	char err[256];

	if (ctl_conf_load_text(conf_text, "casa.conf", &conf, stderr) != 0)
		return -1;
	conf.sm.group = 0x7F000001; // deletes and wildcards come to the test
	fp_stub_reset();
	sm = ctl_sm_create(&conf, NOW);
	casa = sm ? ctl_casa_create(&conf, sm, NOW, WALL, err, sizeof(err)) : NULL;
	agent = casa ? ctl_agent_create(&conf, sm, ctl_casa_auth(casa), ctl_casa_signer(casa), WALL,
					err, sizeof(err)) :
		       NULL;
	if (!agent) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	fa_fd = socket(AF_INET, SOCK_DGRAM, 0);
	return bind(fa_fd, (struct sockaddr *)&a, sizeof(a));
}

static int teardown(void)
{
	ctl_agent_destroy(agent);
	ctl_casa_destroy(casa);
	ctl_sm_destroy(sm);
	ctl_conf_free(&conf);
	close(fa_fd);
	return 0;
}

/* Next datagram the FA socket gets within 1 s, decoded; its type or 0. */
static uint16_t fa_recv(struct casa_msg *m)
{
	struct pollfd pf = { .fd = fa_fd, .events = POLLIN };
	ssize_t n;

	ctl_casa_flush(casa);
	if (poll(&pf, 1, 1000) <= 0)
		return 0;
	n = recv(fa_fd, buf, sizeof(buf), 0);
	if (n <= 0 || casa_decode(buf, (size_t)n, 0, m) != CASA_OK)
		return 0;
	return m->type;
}

static void fa_drain(void)
{
	struct casa_msg m;

	ctl_casa_flush(casa);
	while (recv(fa_fd, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		(void)m;
}

static size_t tcp_syn(uint8_t *ip, uint32_t client, uint8_t flags)
{
	static const uint8_t tmpl[40] = {
		0x45, 0,  0,    40,   0, 1,  0x40, 0, 64, 6, 0, 0, 0, 0, 0,    0,    203,  0,
		113,  10, 0x9c, 0x40, 0, 80, 0,    0, 0,  1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff
	};

	memcpy(ip, tmpl, 40);
	ip[12] = (uint8_t)(client >> 24);
	ip[13] = (uint8_t)(client >> 16);
	ip[14] = (uint8_t)(client >> 8);
	ip[15] = (uint8_t)client;
	ip[33] = flags;
	return 40;
}

static int handle(const uint8_t *msg, size_t len)
{
	return ctl_casa_handle(casa, msg, len, 0x7F000001, PORT, NOW, WALL);
}

static void test_hello(void)
{
	struct casa_hello h = { .role = CASA_ROLE_FA,
				.ext_version = 1,
				.flags = CASA_HELLO_WANT_WILDCARDS,
				.sender_id = 0x7F000001,
				.epoch = 100,
				.control_addr = 0x7F000001,
				.port = PORT,
				.hello_interval = 10,
				.hold_time = 30 };
	uint8_t msg[256];
	struct casa_msg m;
	const struct ctl_fa_row *fas;

	fa_drain();
	CU_ASSERT_EQUAL(handle(msg, casa_encode_hello(msg, sizeof(msg), CASA_MSG_HELLO, &h, "fa1")),
			0);
	CU_ASSERT_EQUAL(fa_recv(&m), CASA_MSG_HELLO_ACK);
	CU_ASSERT(m.hello.peer_sender_id == 0x7F000001 && m.hello.peer_epoch == 100);
	CU_ASSERT_EQUAL(m.hello.control_addr, 0x7F000002);
	CU_ASSERT_EQUAL(fa_recv(&m), CASA_MSG_WILDCARD); // WANT_WILDCARDS
	CU_ASSERT(m.aff.dst == 0xCB00710A && m.aff.dst_port == 80 && m.aff.ttl == 60);
	CU_ASSERT(m.action.interest_addr == 0x7F000002 && m.action.interest_port == PORT);
	CU_ASSERT_EQUAL(m.action.criteria, CASA_INT_FRAG | CASA_INT_ALLPKTS);
	CU_ASSERT_EQUAL(ctl_casa_fas(casa, &fas), 1);
	CU_ASSERT(strcmp(fas[0].name, "fa1") == 0 && fas[0].hold_s == 30);

	// Statistics from that FA land in its row; from an unknown one, nowhere.
	struct casa_stats st = { .sender_id = 0x7F000001, .interval = 30, .count = 1 };

	st.entries[0] = (struct casa_stat_entry){ .id = CASA_STAT_CACHE_HITS, .value = 42 };
	CU_ASSERT_EQUAL(handle(msg, casa_encode_stats(msg, sizeof(msg), &st)), 0);
	CU_ASSERT_EQUAL(fas[0].stats[CASA_STAT_CACHE_HITS], 42);
	st.sender_id = 9;
	handle(msg, casa_encode_stats(msg, sizeof(msg), &st));
	CU_ASSERT_EQUAL(ctl_casa_counters(casa)->stats_unknown, 1);
	// Goodbye drops it at once.
	h.flags = CASA_HELLO_GOODBYE;
	handle(msg, casa_encode_hello(msg, sizeof(msg), CASA_MSG_HELLO, &h, NULL));
	CU_ASSERT_EQUAL(ctl_casa_fas(casa, &fas), 0);
}

static void test_interest(void)
{
	uint8_t ip[40], msg[128];
	struct casa_msg m;
	uint32_t t;

	fa_drain();
	// No agent yet (required): no target is ready, so no FIXED.
	tcp_syn(ip, 0xC0000207, 0x02);
	CU_ASSERT_EQUAL(handle(msg, casa_encode_ip_packet(msg, sizeof(msg), ip, 40)), 0);
	CU_ASSERT_EQUAL(ctl_sm_counters(sm)->interest[CTL_INT_NO_TARGET], 1);
	CU_ASSERT_EQUAL(fa_recv(&m), 0);
	// t2 registers and is ready.
	CU_ASSERT_EQUAL(ctl_sm_agent_register(sm, "t2", &t), CASA_AGENT_ST_OK);
	ctl_sm_agent_ready(sm, 1, 0xCB00710A, 80, 6, 1);
	fp_stub.forwards = 0;
	CU_ASSERT_EQUAL(handle(msg, casa_encode_ip_packet(msg, sizeof(msg), ip, 40)), 0);
	CU_ASSERT_EQUAL(fp_stub.forwards, 1);
	CU_ASSERT_EQUAL(fp_stub.last_forward_target, 1);
	CU_ASSERT_EQUAL(fa_recv(&m), CASA_MSG_FIXED);
	CU_ASSERT(m.aff.src == 0xC0000207 && m.aff.src_port == 40000 && m.aff.dst_port == 80);
	CU_ASSERT(m.aff.ttl == 900 && m.aff.fwd == 0xC633640C && m.aff.flags == 0x0002);
	CU_ASSERT_EQUAL(m.action.criteria, CASA_INT_SYN);
	// A later packet of it: forwarded and answered again (spec 6.2).
	tcp_syn(ip, 0xC0000207, 0x10);
	handle(msg, casa_encode_ip_packet(msg, sizeof(msg), ip, 40));
	CU_ASSERT_EQUAL(fa_recv(&m), CASA_MSG_FIXED);
	CU_ASSERT_EQUAL(fp_stub.forwards, 2);
	// A packet of a connection nobody holds: reset, no FIXED.
	tcp_syn(ip, 0xC0000208, 0x10);
	handle(msg, casa_encode_ip_packet(msg, sizeof(msg), ip, 40));
	CU_ASSERT_EQUAL(ctl_sm_counters(sm)->interest[CTL_INT_RESET], 1);
	CU_ASSERT_EQUAL(fa_recv(&m), 0);
	// Another VIP: not ours to relay.
	tcp_syn(ip, 0xC0000209, 0x02);
	ip[19] = 11;
	handle(msg, casa_encode_ip_packet(msg, sizeof(msg), ip, 40));
	CU_ASSERT_EQUAL(ctl_sm_counters(sm)->interest[CTL_INT_NO_SERVICE], 1);
	// Garbage is a counted drop.
	msg[0] = 9;
	CU_ASSERT_EQUAL(handle(msg, 40), -CASA_E_VERSION);
	CU_ASSERT_EQUAL(ctl_casa_counters(casa)->drops[CASA_E_VERSION], 1);
	// The connection ends: a TTL-0 delete to the group.
	struct fp_flow f = {
		.src = 0xC0000207, .dst = 0xCB00710A, .sport = 40000, .dport = 80, .proto = 6
	};

	CU_ASSERT(ctl_sm_conn_end(sm, 1, &f));
	ctl_casa_tick(casa, NOW, WALL);
	bool got = false;

	for (int i = 0; i < 4 && !got; i++)
		got = fa_recv(&m) == CASA_MSG_FIXED && m.aff.ttl == 0 && m.aff.src == 0xC0000207;
	CU_ASSERT(got);
	CU_ASSERT_EQUAL(ctl_casa_counters(casa)->deletes_sent, 1);
}

static void test_local_events(void)
{
	static struct fp_stub_frame fr;
	struct fp_event ev = { .type = FP_EV_INTEREST, .tcp_flags = 0x10 };
	uint32_t t;

	// The frame: Ethernet from client MAC 02:cc.. to us, then the ACK.
	memset(fr.bytes, 0, 14);
	memcpy(fr.bytes + 6, "\x02\xcc\x00\x00\x00\x07", 6);
	fr.bytes[12] = 0x08;
	fr.len = 14 + (uint32_t)tcp_syn(fr.bytes + 14, 0xC000020A, 0x10);
	ev.flow = (struct fp_flow){
		.src = 0xC000020A, .dst = 0xCB00710A, .sport = 40000, .dport = 80, .proto = 6
	};
	ev.pkt = &fr;
	fp_stub.tx_frames = 0;
	ctl_casa_local_event(casa, &ev, NOW);
	// Unknown: a RST back to the client's MAC, from the VIP.
	CU_ASSERT_EQUAL(fp_stub.tx_frames, 1);
	CU_ASSERT(memcmp(fp_stub.tx.bytes, "\x02\xcc\x00\x00\x00\x07", 6) == 0);
	CU_ASSERT_EQUAL(fp_stub.tx.len, 54);
	CU_ASSERT(fp_stub.tx.bytes[14 + 33] == 0x04); // RST
	// Known (the agent resynced it): the workers learn the affinity.
	ctl_sm_resync_begin(sm, 1, 5, NOW);
	ctl_sm_resync_conn(sm, 1, &ev.flow, NOW);
	ctl_sm_resync_end(sm, 1, 5);
	ev.pkt = &fr;
	fp_stub.forwards = 0;
	ctl_casa_local_event(casa, &ev, NOW);
	CU_ASSERT_EQUAL(fp_stub.forwards, 1);
	struct fp_affinity a;

	CU_ASSERT_EQUAL(fp_affinity_find(&ev.flow, &a), 0);
	CU_ASSERT_EQUAL(a.target, 1);
	// A worker's new-connection notice lands in the VCRT.
	struct fp_event nc = { .type = FP_EV_NEW_CONN, .target = 0 };

	nc.flow = ev.flow;
	nc.flow.sport = 40001;
	ctl_casa_local_event(casa, &nc, NOW);
	CU_ASSERT(ctl_sm_conn_find(sm, &nc.flow, NULL));
	(void)t;
}

/* ---- the agent server over TCP -------------------------------------------------------------- */

static int agent_connect(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(APORT),
				 .sin_addr.s_addr = htonl(0x7F000003) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void agent_send(int fd, const uint8_t *msg, size_t len)
{
	uint8_t f[4096];

	casa_stream_put_len(f, 4, len);
	memcpy(f + 4, msg, len);
	CU_ASSERT_EQUAL(send(fd, f, len + 4, 0), (ssize_t)(len + 4));
}

/* Run the server a few turns; then read one framed message (or 0). */
static size_t agent_recv(int fd, struct casa_msg *m)
{
	uint8_t hdr[4];
	long len;

	for (int i = 0; i < 20; i++) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };

		ctl_agent_run(agent, NOW, WALL);
		if (poll(&pf, 1, 20) > 0)
			break;
	}
	if (recv(fd, hdr, 4, MSG_DONTWAIT) != 4)
		return 0;
	len = casa_stream_frame_len(hdr, 4);
	if (len <= 0 || recv(fd, buf, (size_t)len, MSG_WAITALL) != len)
		return 0;
	return casa_decode(buf, (size_t)len, CASA_STREAM_MAX, m) == CASA_OK ? (size_t)len : 0;
}

static void test_agent_server(void)
{
	struct casa_agent_register r = {
		.version = 1, .sender_id = 77, .epoch = 1, .keepalive_s = 1, .hold_s = 3
	};
	uint8_t msg[1024];
	struct casa_msg m;
	int fd = agent_connect(), bad;

	CU_ASSERT_FATAL(fd >= 0);
	// A keyed GRE configuration: the ack tells the agent to require the key.
	conf.fp.gre.use_key = true;
	conf.targets[0].fp.gre_key = 0x1234;
	agent_send(fd, msg, casa_encode_agent_register(msg, sizeof(msg), &r, "t1", NULL));
	CU_ASSERT(agent_recv(fd, &m) > 0);
	conf.fp.gre.use_key = false;
	conf.targets[0].fp.gre_key = 0;
	CU_ASSERT(m.type == CASA_MSG_AGENT_REGISTER_ACK && m.agent.reg.status == CASA_AGENT_ST_OK);
	CU_ASSERT(m.present & CASA_HAS_DISPATCH_INFO);
	CU_ASSERT_EQUAL(m.dispatch.method, CASA_DISPATCH_GRE);
	CU_ASSERT_EQUAL(m.dispatch.tunnel_endpoint, 0xC633640B);
	CU_ASSERT_EQUAL(m.dispatch.gre_flags, CASA_GRE_F_KEY);
	CU_ASSERT_EQUAL(m.dispatch.gre_key, 0x1234);
	CU_ASSERT(agent_recv(fd, &m) > 0);
	CU_ASSERT(m.type == CASA_MSG_AGENT_SERVICES && m.agent.list.n == 1);
	// READY makes t1 a candidate.
	struct casa_agent_service rd = { .vip = 0xCB00710A, .port = 80, .protocol = 6, .ready = 3 };

	agent_send(fd, msg,
		   casa_encode_agent_services(msg, sizeof(msg), CASA_MSG_AGENT_READY, &rd, 1));
	struct casa_agent_load ld = { .capacity = 32, .qos = 2500 };

	agent_send(fd, msg, casa_encode_agent_load(msg, sizeof(msg), &ld));
	agent_recv(fd, &m);
	struct ctl_dpt_row rows[4];
	unsigned n = ctl_sm_dpt_rows(sm, rows, 4);

	CU_ASSERT(n == 2 && rows[0].target == 0 && rows[0].rdy == 3);
	// A connection on t1, then its end in a batch with an unknown one.
	struct fp_flow f = {
		.src = 0xC0000230, .dst = 0xCB00710A, .sport = 1234, .dport = 80, .proto = 6
	};

	ctl_sm_conn_new(sm, &f, 0, NOW);
	struct casa_agent_conn c[2] = {
		{ .client = f.src,
		  .vip = f.dst,
		  .client_port = 1234,
		  .vip_port = 80,
		  .protocol = 6,
		  .state = CASA_AGENT_END_CLOSED },
		{ .client = 1,
		  .vip = f.dst,
		  .client_port = 1,
		  .vip_port = 80,
		  .protocol = 6,
		  .state = CASA_AGENT_END_RESET },
	};

	agent_send(fd, msg,
		   casa_encode_agent_conns(msg, sizeof(msg), CASA_MSG_AGENT_CONN_END, 0, 0, c, 2));
	agent_recv(fd, &m);
	CU_ASSERT_FALSE(ctl_sm_conn_find(sm, &f, NULL));
	CU_ASSERT_EQUAL(ctl_sm_counters(sm)->conn_end_unknown, 1);
	// A second agent for t1 is refused as a duplicate; one for a name we
	// do not know, as unknown; garbage closes the session.
	bad = agent_connect();
	agent_send(bad, msg, casa_encode_agent_register(msg, sizeof(msg), &r, "t1", NULL));
	CU_ASSERT(agent_recv(bad, &m) > 0 && m.agent.reg.status == CASA_AGENT_ST_DUPLICATE);
	close(bad);
	bad = agent_connect();
	agent_send(bad, msg, casa_encode_agent_register(msg, sizeof(msg), &r, "zz", NULL));
	CU_ASSERT(agent_recv(bad, &m) > 0 && m.agent.reg.status == CASA_AGENT_ST_UNKNOWN_TARGET);
	close(bad);
	bad = agent_connect();
	CU_ASSERT_EQUAL(send(bad, "\xff\xff\xff\xff", 4, 0), 4);
	agent_recv(bad, &m);
	CU_ASSERT(ctl_agent_counters(agent)->framing_errors >= 1);
	close(bad);
	// The agent's session closes: t1 is down only after the timeout.
	close(fd);
	for (int i = 0; i < 5; i++)
		ctl_agent_run(agent, NOW + 10, WALL);
	ctl_sm_tick(sm, NOW + 20);
	CU_ASSERT(ctl_sm_target_up(sm, 0));
	ctl_sm_tick(sm, NOW + 10 + (uint64_t)conf.agents.timeout_s * 1000);
	CU_ASSERT_FALSE(ctl_sm_target_up(sm, 0));
}

int main(void)
{
	CU_pSuite s;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("ctl_casa", setup, teardown);
	CU_add_test(s, "hello, hello-ack, wildcards on request, stats, goodbye", test_hello);
	CU_add_test(s, "interest: place, forward, FIXED; reset; relay refused; delete",
		    test_interest);
	CU_add_test(s, "local worker events: reset frame, learned affinity, new conn",
		    test_local_events);
	CU_add_test(s, "agent server: register, ready, load, conn end, refusals",
		    test_agent_server);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_tests_failed() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
