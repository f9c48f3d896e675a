/*
 * test_agent.c - the agent's measurements (src/agent): /proc parsers over
 * fixtures taken from a real host, the capacity and QoS arithmetic, and
 * readiness through sock_diag against listening sockets this test opens.
 */
#include <CUnit/Basic.h>
#include <errno.h>
#include <stdio.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "casa.h"

static const char proc_stat[] = "cpu  430341 0 142668 3626027 2174 0 3220 0 0 0\n"
				"cpu0 215000 0 71000 1813000 1000 0 1600 0 0 0\n"
				"intr 1 2 3\n";
static const char pressure[] = "some avg10=1.49 avg60=3.05 avg300=5.85 total=564514294\n"
			       "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
static const char snmp[] =
	"Ip: Forwarding DefaultTTL\nIp: 1 64\n"
	"Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails "
	"EstabResets CurrEstab InSegs OutSegs RetransSegs InErrs OutRsts InCsumErrors\n"
	"Tcp: 1 200 120000 -1 52 32 1 0 0 2205 1733 7 0 2 0\n"
	"Udp: InDatagrams\nUdp: 5\n";
static const char netstat[] = "TcpExt: SyncookiesSent TCPTimeouts TCPLossProbes\n"
			      "TcpExt: 0 3 1\n";

static void test_parsers(void)
{
	struct agent_cpu_sample c;
	struct agent_tcp_sample t;
	double psi;

	CU_ASSERT_EQUAL(agent_cpu_parse(proc_stat, &c), 0);
	CU_ASSERT_EQUAL(c.idle, 3626027 + 2174);
	CU_ASSERT_EQUAL(c.total, 430341 + 142668 + 3626027 + 2174 + 3220);
	CU_ASSERT_EQUAL(agent_cpu_parse("cpu0 1 2 3 4\n", &c), -EINVAL);
	CU_ASSERT_EQUAL(agent_cpu_parse("cpu  1 2\n", &c), -EINVAL);
	CU_ASSERT_EQUAL(agent_psi_parse(pressure, &psi), 0);
	CU_ASSERT_DOUBLE_EQUAL(psi, 1.49, 1e-9);
	CU_ASSERT_EQUAL(agent_psi_parse("full avg10=1\n", &psi), -EINVAL);
	CU_ASSERT_EQUAL(agent_psi_parse("some avg10=x\n", &psi), -EINVAL);
	CU_ASSERT_EQUAL(agent_tcp_parse(snmp, netstat, &t), 0);
	CU_ASSERT(t.out_segs == 1733 && t.retrans_segs == 7 && t.timeouts == 3);
	CU_ASSERT_EQUAL(agent_tcp_parse(snmp, NULL, &t), 0);
	CU_ASSERT_EQUAL(t.timeouts, 0);
	CU_ASSERT_EQUAL(agent_tcp_parse("Tcp: A B\nTcp: 1 2\n", NULL, &t), -EINVAL);
}

static void test_capacity(void)
{
	struct agent_cpu_sample a = { .idle = 1000, .total = 2000 };
	struct agent_cpu_sample idle = { .idle = 2000, .total = 3000 }; // all idle
	struct agent_cpu_sample half = { .idle = 1500, .total = 3000 };
	struct agent_cpu_sample busy = { .idle = 1000, .total = 3000 };
	struct agent_cpu_sample tiny = { .idle = 1001, .total = 3000 };

	CU_ASSERT_EQUAL(agent_capacity(NULL, &a, 0), 64);
	CU_ASSERT_EQUAL(agent_capacity(&a, &a, 0), 64);
	CU_ASSERT_EQUAL(agent_capacity(&a, &idle, 0), 64);
	CU_ASSERT_EQUAL(agent_capacity(&a, &half, 0), 32);
	CU_ASSERT_EQUAL(agent_capacity(&a, &half, 50), 16);
	CU_ASSERT_EQUAL(agent_capacity(&a, &busy, 0), 0);
	CU_ASSERT_EQUAL(agent_capacity(&a, &tiny, 0), 1); // a trickle, not out
	CU_ASSERT_EQUAL(agent_capacity(&a, &idle, 100), 0);
}

/* A cgroup at its allowance has no idle time; half of it, half; a burst
 * past the allowance (idle going backwards) is no idle time, not a wrap. */
static void test_cgroup(void)
{
	struct agent_cpu_sample a, b, c, d;
	uint64_t usage = 0;

	CU_ASSERT_EQUAL(agent_cgroup_usage_parse("usage_usec 123456\nuser_usec 1\n", &usage), 0);
	CU_ASSERT_EQUAL(usage, 123456);
	CU_ASSERT_EQUAL(agent_cgroup_usage_parse("user_usec 1\nsystem_usec 2\n", &usage), -EINVAL);
	CU_ASSERT_EQUAL(agent_cgroup_usage_parse("xusage_usec 5\n", &usage), -EINVAL);
	CU_ASSERT_DOUBLE_EQUAL(agent_cgroup_allowance("max 100000\n", 2), 2.0, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(agent_cgroup_allowance("50000 100000\n", 2), 0.5, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(agent_cgroup_allowance("400000 100000\n", 2), 2.0, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(agent_cgroup_allowance(NULL, 0), 1.0, 1e-9);
	// Two CPUs; one second between samples.
	agent_cgroup_sample(0, 1000000, 2, &a);
	agent_cgroup_sample(2000000, 2000000, 2, &b); // used both CPUs fully
	CU_ASSERT_EQUAL(agent_capacity(&a, &b, 0), 0);
	agent_cgroup_sample(1000000, 2000000, 2, &c); // used one of two
	CU_ASSERT_EQUAL(agent_capacity(&a, &c, 0), 32);
	agent_cgroup_sample(5000000, 3000000, 2, &d); // a burst past the allowance
	CU_ASSERT_EQUAL(agent_capacity(&c, &d, 0), 0);
	CU_ASSERT_EQUAL(agent_capacity(&a, &c, 50), 16);
}

static void test_qos(void)
{
	struct agent_tcp_sample a = { .out_segs = 1000, .retrans_segs = 10, .timeouts = 0 };
	struct agent_tcp_sample b = { .out_segs = 2000, .retrans_segs = 20, .timeouts = 0 };
	struct agent_tcp_sample c = { .out_segs = 2000, .retrans_segs = 60, .timeouts = 20 };

	CU_ASSERT_EQUAL(agent_qos(NULL, &a), 0);
	CU_ASSERT_EQUAL(agent_qos(&a, &a), 0);
	CU_ASSERT_EQUAL(agent_qos(&a, &b), 1000);               // 1 % retransmitted: 0.1
	CU_ASSERT_EQUAL(agent_qos(&a, &c), CASA_AGENT_QOS_ONE); // (50 + 4 x 20) / 1000 > 10 %
}

/* A listening socket on addr:port (host order), or -1. */
static int listen_on(uint32_t addr, uint16_t port, bool reuseport)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(addr) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 4) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A free port: bind to port 0 and read it back. */
static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t p = 0;

	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &l) == 0)
		p = ntohs(a.sin_port);
	close(fd);
	return p;
}

static void test_listeners(void)
{
	const uint32_t vip = 0xC6336409; // 198.51.100.9: not local, only matched
	uint16_t p1 = free_port(), p2 = free_port();
	int any1, any2, lo;

	CU_ASSERT_FATAL(p1 && p2 && p1 != p2);
	CU_ASSERT_EQUAL(agent_listeners(vip, p1, IPPROTO_TCP), 0);
	// Two wildcard listeners (SO_REUSEPORT) accept the VIP: Rdy 2.
	any1 = listen_on(INADDR_ANY, p1, true);
	any2 = listen_on(INADDR_ANY, p1, true);
	CU_ASSERT_FATAL(any1 >= 0 && any2 >= 0);
	CU_ASSERT_EQUAL(agent_listeners(vip, p1, IPPROTO_TCP), 2);
	// One bound to another address does not.
	lo = listen_on(INADDR_LOOPBACK, p2, false);
	CU_ASSERT_FATAL(lo >= 0);
	CU_ASSERT_EQUAL(agent_listeners(vip, p2, IPPROTO_TCP), 0);
	CU_ASSERT_EQUAL(agent_listeners(INADDR_LOOPBACK, p2, IPPROTO_TCP), 1);
	close(any1);
	CU_ASSERT_EQUAL(agent_listeners(vip, p1, IPPROTO_TCP), 1);
	close(any2);
	close(lo);
	CU_ASSERT_EQUAL(agent_listeners(vip, p1, IPPROTO_TCP), 0);
	CU_ASSERT_EQUAL(agent_listeners(INADDR_LOOPBACK, p2, IPPROTO_TCP), 0);
}

/* A UDP service: unconnected sockets bound to the VIP or the wildcard
 * address accept its clients, a connected one does not; port 0 (every
 * port) counts the sockets of any port on the VIP. */
static void test_listeners_udp_and_every_port(void)
{
	const uint32_t vip = 0x7F00004D; // 127.0.0.77: local, bound specifically
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(vip) };
	struct sockaddr_in peer = { .sin_family = AF_INET,
				    .sin_port = htons(9),
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int udp = socket(AF_INET, SOCK_DGRAM, 0), conn = socket(AF_INET, SOCK_DGRAM, 0);
	socklen_t l = sizeof(a);
	int every_tcp, every_udp, tcp;
	uint16_t p;

	CU_ASSERT_FATAL(udp >= 0 && conn >= 0);
	every_tcp = agent_listeners(vip, 0, IPPROTO_TCP);
	every_udp = agent_listeners(vip, 0, IPPROTO_UDP);
	CU_ASSERT_FATAL(every_tcp >= 0 && every_udp >= 0);
	CU_ASSERT_FATAL(bind(udp, (struct sockaddr *)&a, sizeof(a)) == 0 &&
			getsockname(udp, (struct sockaddr *)&a, &l) == 0);
	p = ntohs(a.sin_port);
	CU_ASSERT_EQUAL(agent_listeners(vip, p, IPPROTO_UDP), 1);
	CU_ASSERT_EQUAL(agent_listeners(vip, p, IPPROTO_TCP), 0);
	CU_ASSERT_EQUAL(agent_listeners(vip, 0, IPPROTO_UDP), every_udp + 1);
	// Connected to one peer: it does not accept the VIP's clients.
	CU_ASSERT_FATAL(connect(conn, (struct sockaddr *)&peer, sizeof(peer)) == 0);
	CU_ASSERT_EQUAL(agent_listeners(vip, 0, IPPROTO_UDP), every_udp + 1);
	tcp = listen_on(vip, free_port(), false);
	CU_ASSERT_FATAL(tcp >= 0);
	CU_ASSERT_EQUAL(agent_listeners(vip, 0, IPPROTO_TCP), every_tcp + 1);
	CU_ASSERT_EQUAL(agent_listeners(vip, p, IPPROTO_ICMP), -EPROTONOSUPPORT);
	close(tcp);
	close(conn);
	close(udp);
	CU_ASSERT_EQUAL(agent_listeners(vip, p, IPPROTO_UDP), 0);
}

static void test_conns_ended(void)
{
	struct casa_agent_conn a = { .client = 1,
				     .vip = 9,
				     .client_port = 10,
				     .vip_port = 80,
				     .protocol = 6,
				     .state = CASA_AGENT_CONN_ESTABLISHED };
	struct casa_agent_conn b = a, c = a, before[3], now[2], ended[3];

	b.client_port = 11;
	c.client = 2;
	before[0] = a;
	before[1] = b;
	before[2] = c;
	now[0] = c;
	now[1] = a;
	now[1].state = CASA_AGENT_CONN_CLOSING; // still held, only closing
	agent_conns_sort(before, 3);
	agent_conns_sort(now, 2);
	CU_ASSERT(now[0].client == 1 && now[1].client == 2); // by client first
	CU_ASSERT_EQUAL(agent_conns_ended(before, 3, now, 2, ended, 3), 1);
	CU_ASSERT(ended[0].client_port == 11 && ended[0].state == CASA_AGENT_END_CLOSED);
	CU_ASSERT_EQUAL(agent_conns_ended(before, 3, NULL, 0, ended, 2), 2); // bounded by max
	// Many: every third of 30000 ended, found in one merge.
	{
		static struct casa_agent_conn big_before[30000], big_now[20000], big_ended[30000];
		unsigned k = 0, n;

		for (unsigned i = 0; i < 30000; i++) {
			big_before[i] = a;
			big_before[i].client = 30000 - i; // unsorted
			big_before[i].client_port = (uint16_t)(i * 7);
			if (i % 3 != 0)
				big_now[k++] = big_before[i];
		}
		agent_conns_sort(big_before, 30000);
		agent_conns_sort(big_now, k);
		n = agent_conns_ended(big_before, 30000, big_now, k, big_ended, 30000);
		CU_ASSERT_EQUAL(n, 10000);
		for (unsigned i = 0; i < n; i++)
			CU_ASSERT_EQUAL_FATAL((30000 - big_ended[i].client) % 3, 0);
	}
}

/* A served VIP connection over loopback shows in the table, and its end
 * arrives as a socket-destroy notification (root: CAP_NET_ADMIN). */
static void test_conns_live(void)
{
	uint16_t p = free_port();
	int l = listen_on(INADDR_LOOPBACK, p, false), c, s, w = agent_conns_watch_open();
	struct casa_agent_service svc = { .vip = INADDR_LOOPBACK, .port = p, .protocol = 6 };
	struct sockaddr_in to = { .sin_family = AF_INET,
				  .sin_port = htons(p),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct casa_agent_conn out[8];
	int n = 0;
	bool lost = false;

	CU_ASSERT_FATAL(l >= 0);
	c = socket(AF_INET, SOCK_STREAM, 0);
	CU_ASSERT_FATAL(connect(c, (struct sockaddr *)&to, sizeof(to)) == 0);
	s = accept(l, NULL, NULL);
	CU_ASSERT_EQUAL(agent_conns(&svc, 1, out, 8), 1);
	CU_ASSERT(out[0].vip == INADDR_LOOPBACK && out[0].vip_port == p &&
		  out[0].state == CASA_AGENT_CONN_ESTABLISHED);
	if (w < 0) {
		// Only root may subscribe; as root a failure is a real one.
		CU_ASSERT(geteuid() != 0);
		printf("\n    (no socket-destroy notifications without root: %d)", w);
	} else {
		close(s);
		close(c);
		s = c = -1;
		// Bounded: the notification is queued by the time close returns,
		// but allow the kernel a moment.
		for (int i = 0; i < 50 && n == 0; i++) {
			n = agent_conns_watch_read(w, &svc, 1, out, 8, &lost);
			if (n == 0)
				usleep(10000);
		}
		CU_ASSERT(n >= 1);
		CU_ASSERT(out[0].vip_port == p && out[0].state == CASA_AGENT_END_CLOSED);
		CU_ASSERT_FALSE(lost);
		close(w);
	}
	if (s >= 0)
		close(s);
	if (c >= 0)
		close(c);
	close(l);
}

/* More ends than the notification socket's buffer holds: the read says
 * notifications were lost (so the agent sends its whole table). */
static void test_conns_overrun(void)
{
	uint16_t p = free_port();
	int l = listen_on(INADDR_LOOPBACK, p, false), w = agent_conns_watch_open(), tiny = 1;
	struct casa_agent_service svc = { .vip = INADDR_LOOPBACK, .port = p, .protocol = 6 };
	struct sockaddr_in to = { .sin_family = AF_INET,
				  .sin_port = htons(p),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct casa_agent_conn out[8];
	bool lost = false;
	int n;

	CU_ASSERT_FATAL(l >= 0);
	if (w < 0) {
		CU_ASSERT(geteuid() != 0);
		close(l);
		return;
	}
	// The smallest buffer the kernel allows: a few notifications.
	CU_ASSERT(setsockopt(w, SOL_SOCKET, SO_RCVBUF, &tiny, sizeof(tiny)) == 0);
	for (int i = 0; i < 128; i++) {
		int c = socket(AF_INET, SOCK_STREAM, 0), s;

		CU_ASSERT_FATAL(c >= 0 && connect(c, (struct sockaddr *)&to, sizeof(to)) == 0);
		s = accept(l, NULL, NULL);
		close(c);
		close(s);
	}
	// Sockets are freed (and notified) as their closes complete: give
	// them time before the first read, which would make room.
	usleep(300000);
	n = agent_conns_watch_read(w, &svc, 1, out, 8, &lost);
	CU_ASSERT(n >= 0);
	CU_ASSERT(lost);
	close(w);
	close(l);
}

/* -s lists: the primary first, then backups; repeats skipped; bad input refused. */
static void test_sm_list(void)
{
	uint32_t l[AGENT_SMS_MAX];
	unsigned n = 0;

	CU_ASSERT_EQUAL(agent_sm_list_add("198.51.100.1", l, &n, AGENT_SMS_MAX), 0);
	CU_ASSERT_EQUAL(
		agent_sm_list_add("198.51.100.2,198.51.100.1,198.51.100.3", l, &n, AGENT_SMS_MAX),
		0);
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT(l[0] == 0xC6336401 && l[1] == 0xC6336402 && l[2] == 0xC6336403);
	CU_ASSERT_EQUAL(agent_sm_list_add("", l, &n, AGENT_SMS_MAX), -EINVAL);
	CU_ASSERT_EQUAL(agent_sm_list_add("198.51.100.4,", l, &n, AGENT_SMS_MAX), -EINVAL);
	CU_ASSERT_EQUAL(agent_sm_list_add(",198.51.100.4", l, &n, AGENT_SMS_MAX), -EINVAL);
	CU_ASSERT_EQUAL(agent_sm_list_add("198.51.100.256", l, &n, AGENT_SMS_MAX), -EINVAL);
	CU_ASSERT_EQUAL(agent_sm_list_add("0.0.0.0", l, &n, AGENT_SMS_MAX), -EINVAL);
	CU_ASSERT_EQUAL(agent_sm_list_add("198.51.100.1 ", l, &n, AGENT_SMS_MAX), -EINVAL);
	CU_ASSERT_EQUAL(agent_sm_list_add("198.51.100.9", l, &n, 3), -E2BIG);
	CU_ASSERT_EQUAL(n, 3);
}

int main(void)
{
	CU_pSuite s;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("agent", NULL, NULL);
	CU_add_test(s, "/proc parsers", test_parsers);
	CU_add_test(s, "capacity weight from idle and pressure", test_capacity);
	CU_add_test(s, "capacity of a target in its own cgroup", test_cgroup);
	CU_add_test(s, "QoS fraction from retransmissions", test_qos);
	CU_add_test(s, "readiness through sock_diag", test_listeners);
	CU_add_test(s, "readiness of UDP and every-port services",
		    test_listeners_udp_and_every_port);
	CU_add_test(s, "connection ends between two polls", test_conns_ended);
	CU_add_test(s, "connections and their ends through sock_diag", test_conns_live);
	CU_add_test(s, "lost end notifications are reported", test_conns_overrun);
	CU_add_test(s, "service manager lists (-s)", test_sm_list);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_tests_failed() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
