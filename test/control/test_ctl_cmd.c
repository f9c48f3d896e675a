/*
 * test_ctl_cmd.c - the admin console's commands (ctl_cmd.c, ctl_show.c,
 * ctl_trace.c) called through ctl_cmd_exec, exactly as a session runs
 * them, against a Service Manager on the fast-path stub; and the libcli
 * glue (ctl_console.c) over real TCP sessions on 127.0.0.1, this thread
 * playing the control loop.
 *
 * Displays are compared as text (whole, or the lines that matter); every
 * bad input must give one line starting with "% " and a negative return;
 * every change must be logged.
 */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "casa.h"
#include "ctl.h"
#include "fp_stub.h"

#define NOW 1000000ULL     /* the tests' monotonic clock, ms */
#define VIP 0xCB00710Au    /* 203.0.113.10 */
#define VIP2 0xCB007114u   /* 203.0.113.20 */
#define CLIENT 0xC6336407u /* 198.51.100.7 */

static const char base_conf[] =
	"service_manager = { address = \"198.51.100.1\"; };\n"
	"dataplane = { lcores = \"%s\"; ports = ( { device = \"ring:t\"; address = \"192.0.2.1\";\n"
	"  gateway_mac = \"02:00:00:00:00:01\"; } ); };\n"
	"console = { password = \"secret\"; enable_password = \"enable\"; };\n"
	"targets = (\n"
	" { name = \"t1\"; tunnel = \"192.0.2.21\"; weight = %u; },\n"
	" { name = \"t2\"; tunnel = \"192.0.2.22\"; weight = 2; },\n"
	" { name = \"t3\"; dispatch = \"l2\"; mac = \"02:00:00:00:00:13\";\n"
	"   address = \"192.0.2.23\"; weight = 3; } );\n"
	"services = ( { name = \"web\"; vip = \"203.0.113.10\"; ports = [ %s ];\n"
	"  targets = [ \"t1\", \"t2\", \"t3\" ]; },\n"
	" { name = \"dns\"; vip = \"203.0.113.20\"; protocol = \"udp\"; ports = [ 53 ];\n"
	"  method = \"hash\"; targets = [ \"t1\", \"t2\" ]; } );\n";

static char conf_file[] = "/tmp/test_ctl_cmd.XXXXXX";
static struct ctl_conf conf;
static bool loaded;
static struct ctl_sm *sm;
static struct ctl_view view;
static FILE *change_log;
static char text[1 << 17];

/* Write the configuration file (t1's weight, web's ports, lcores). */
static void write_conf(unsigned w1, const char *ports, const char *lcores)
{
	FILE *f = fopen(conf_file, "w");

	CU_ASSERT_FATAL(f != NULL);
	fprintf(f, base_conf, lcores, w1, ports);
	fclose(f);
}

static void publish(void)
{
	struct fp_tables_desc d;
	char err[128];

	if (ctl_sm_tables(sm, &d) == 0) {
		fp_publish(&d, err, sizeof(err));
		ctl_tables_free(&d);
	}
}

static void teardown(void)
{
	ctl_sm_destroy(sm);
	sm = NULL;
	if (loaded)
		ctl_conf_free(&conf);
	loaded = false;
	if (change_log)
		fclose(change_log);
	change_log = NULL;
}

/* A fresh SM (on the fast-path stub) from the configuration file as it is
 * now; the reload tests then rewrite the file. */
static void sm_from_file(void)
{
	CU_ASSERT_FATAL(ctl_conf_load(conf_file, &conf, stderr) == 0);
	loaded = true;
	fp_stub_reset();
	sm = ctl_sm_create(&conf, NOW);
	CU_ASSERT_FATAL(sm != NULL);
	view = (struct ctl_view){ .c = &conf, .sm = sm, .started_ms = NOW - 5000 };
	change_log = tmpfile();
}

/* A fresh SM from the file, its tables published to the stub, and two
 * connections of web:80: 198.51.100.7:40000 (local workers) and :40001
 * (an external FA at 1.1.1.2). */
static void setup(void)
{
	uint32_t t;
	struct fp_flow f = { .src = CLIENT, .dst = VIP, .sport = 40000, .dport = 80, .proto = 6 };

	teardown();
	write_conf(1, "80, 443", "0-1");
	sm_from_file();
	CU_ASSERT_EQUAL(ctl_sm_interest(sm, &f, 0x02, 0, NOW - 4000, &t), CTL_INT_NEW);
	f.sport = 40001;
	CU_ASSERT_EQUAL(ctl_sm_interest(sm, &f, 0x02, 0x01010102, NOW - 3000, &t), CTL_INT_NEW);
	publish();
}

/* Run line; the text is in `text`. */
static int run_as(const char *line, bool enabled)
{
	struct ctl_cmd_origin o = { .who = "session 9 (test)",
				    .enabled = enabled,
				    .log = change_log };
	struct ctl_out out;
	int rc;

	ctl_out_init(&out, 0);
	rc = ctl_cmd_exec(&view, line, &o, NOW, &out);
	snprintf(text, sizeof(text), "%s", ctl_out_text(&out));
	ctl_out_free(&out);
	return rc;
}

static int run(const char *line)
{
	return run_as(line, true);
}

/* The output is one line "% ...". */
static bool one_error(void)
{
	size_t n = strlen(text);

	return n > 3 && strncmp(text, "% ", 2) == 0 && strchr(text, '\n') == text + n - 1;
}

/* The first line of the output, without its newline. */
static const char *first_line(void)
{
	static char line[256];

	snprintf(line, sizeof(line), "%.*s", (int)strcspn(text, "\n"), text);
	return line;
}

static bool has(const char *s)
{
	return strstr(text, s) != NULL;
}

/* Everything logged so far. */
static const char *logged(void)
{
	static char buf[8192];
	size_t n;

	fflush(change_log);
	rewind(change_log);
	n = fread(buf, 1, sizeof(buf) - 1, change_log);
	buf[n] = '\0';
	return buf;
}

static struct fp_flow flow(uint32_t src, uint16_t sport, uint16_t dport)
{
	return (struct fp_flow){
		.src = src, .dst = VIP, .sport = sport, .dport = dport, .proto = 6
	};
}

/* ---- parsing ----------------------------------------------------------------------------- */

static void test_parse(void)
{
	char full[sizeof(text)];

	setup();
	CU_ASSERT_EQUAL(run("show vdpt"), 0);
	snprintf(full, sizeof(full), "%s", text);
	CU_ASSERT_EQUAL(run("sh vd"), 0);
	CU_ASSERT_STRING_EQUAL(text, full);
	CU_ASSERT_EQUAL(run("  show   vdpt  "), 0);
	CU_ASSERT_STRING_EQUAL(text, full);
	CU_ASSERT_EQUAL(run("sh cas o"), 0);
	CU_ASSERT(has("Casa is active:"));
	CU_ASSERT_EQUAL(run(""), 0);
	CU_ASSERT_STRING_EQUAL(text, "");
	CU_ASSERT_EQUAL(run("t"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(text, "% ambiguous \"t\": trace, target\n");
	CU_ASSERT_EQUAL(run("show v"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(text, "% ambiguous \"v\": vipadcfg, vipadyn, vdpt, vcrt\n");
	CU_ASSERT_EQUAL(run("foo"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(text, "% unknown command \"foo\"; try help\n");
	CU_ASSERT_EQUAL(run("show casa x"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(text,
			       "% unknown \"x\": casa takes oper, stats, wildcard, affinities\n");
	CU_ASSERT_EQUAL(run("show casa"), -EINVAL);
	CU_ASSERT_STRING_EQUAL(text, "% incomplete command: casa takes oper, stats, wildcard, "
				     "affinities\n");
	CU_ASSERT_EQUAL(run("help port"), 0);
	CU_ASSERT(has("port add SERVICE PORT") && has("(enable)") && !has("show vdpt ["));
	CU_ASSERT_EQUAL(run("help"), 0);
	CU_ASSERT(has("trace flow PROTO SRC SPORT DST DPORT") && has("sh vd = show vdpt"));
	CU_ASSERT_EQUAL(run_as("port add web 8080", false), -EPERM);
	CU_ASSERT_STRING_EQUAL(text,
			       "% \"port add\" changes the running appliance: enable first\n");
	CU_ASSERT(ctl_sm_sp_find(sm, VIP, 8080, 6) < 0);
	// Quoted words: a service name with a blank is one word.
	CU_ASSERT_EQUAL(run("port add \"my web\" 80"), -ENOENT);
	CU_ASSERT_STRING_EQUAL(text, "% no service \"my web\" (show vipadcfg lists them)\n");
}

/* Every bad line: one line of error, a negative return, no crash. */
static void test_bad_input(void)
{
	static const char *const bad[] = {
		"show vdpt details now",
		"show vcrt limit 0",
		"show vcrt limit 100001",
		"show vcrt limit",
		"show vcrt limit x",
		"show vcrt vip 300.1.1.1",
		"show vcrt vip",
		"show vipadcfg x",
		"show casa affinities limit -1",
		"trace flow tcp 1.2.3.4 1 203.0.113.10",
		"trace flow tcp 1.2.3.4 70000 203.0.113.10 80",
		"trace flow tcp 1.2.3 1 203.0.113.10 80",
		"trace flow tcp 1.2.3.4 1 203.0.113.10 80 urg",
		"trace flow quic 1.2.3.4 1 203.0.113.10 80",
		"port add web",
		"port add web 80 81",
		"port add web 65536",
		"port add web -1",
		"port add nosuch 80",
		"port delete web 8080",
		"target quiesce",
		"target quiesce nosuch",
		"target weight t1",
		"target weight t1 1000001",
		"target weight t1 1x",
		"clear counters please",
		"reload now",
		"help nosuch",
		"\"unterminated",
		"a b c d e f g h i j k l m n o p q",
		"\x01\x02\x7f",
	};
	char longline[700];

	setup();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = run(bad[i]);

		CU_ASSERT(rc < 0);
		CU_ASSERT(one_error());
		if (rc >= 0 || !one_error())
			printf("\n  bad input \"%s\" gave %d: %s", bad[i], rc, text);
	}
	memset(longline, 'x', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	CU_ASSERT(run(longline) < 0 && one_error());
	CU_ASSERT_STRING_EQUAL(logged(), ""); // nothing changed, nothing logged
}

/* ---- the netstat displays (seed 5.6) ------------------------------------------------------ */

static void test_vipadcfg_vipadyn(void)
{
	setup();
	CU_ASSERT_EQUAL(run("show vipadcfg"), 0);
	CU_ASSERT_STRING_EQUAL(
		text, "Dynamic VIPA Information:\n"
		      "VIPA Define:\n"
		      "  IP Address      AddressMask      Moveable   SrvMgr\n"
		      "  203.0.113.10    255.255.255.255  Immediate  Yes\n"
		      "  203.0.113.20    255.255.255.255  Immediate  Yes\n"
		      "VIPA Distribute:\n"
		      "  IP Address      Port  Proto XCF Address     Target           Service\n"
		      "  203.0.113.10    00080 TCP   192.0.2.21      t1               web\n"
		      "  203.0.113.10    00080 TCP   192.0.2.22      t2               web\n"
		      "  203.0.113.10    00080 TCP   192.0.2.23      t3               web\n"
		      "  203.0.113.10    00443 TCP   192.0.2.21      t1               web\n"
		      "  203.0.113.10    00443 TCP   192.0.2.22      t2               web\n"
		      "  203.0.113.10    00443 TCP   192.0.2.23      t3               web\n"
		      "  203.0.113.20    00053 UDP   192.0.2.21      t1               dns\n"
		      "  203.0.113.20    00053 UDP   192.0.2.22      t2               dns\n"
		      "VIPA Service Manager:\n"
		      "  McastGroup: 224.0.1.2       Port: 01637  Pwd: No\n");
	CU_ASSERT_EQUAL(run("show vipadyn"), 0);
	CU_ASSERT_STRING_EQUAL(text,
			       "IP Address      AddressMask      Status  Origination  DistStat\n"
			       "203.0.113.10    255.255.255.255  Active  VIPADefine   Dist\n"
			       "203.0.113.20    255.255.255.255  Active  VIPADefine   Dist\n"
			       "2 of 2 records displayed\n");
}

static void test_vdpt(void)
{
	setup();
	CU_ASSERT_EQUAL(run("show vdpt"), 0);
	CU_ASSERT(has("Dynamic VIPA Destination Port Table:\n"
		      "Dest IPaddr     DPort DestXCF Addr    Rdy TotalConn  WLM Proto Target"
		      "           State\n"
		      "203.0.113.10    00080 192.0.2.21      001 "));
	CU_ASSERT(has("203.0.113.20    00053 192.0.2.22      001 0000000000 64  UDP   t2"
		      "               Active\n8 of 8 records displayed\n"));
	// The two connections of port 80 are counted on the targets that took
	// them: TotalConn of the three rows adds up to 2.
	{
		unsigned total = 0;

		for (const char *p = text; (p = strstr(p, "00080 192.0.2.2")) != NULL; p++)
			total += (unsigned)atoi(p + 26);
		CU_ASSERT_EQUAL(total, 2);
	}
	CU_ASSERT_EQUAL(run("show vdpt detail"), 0);
	CU_ASSERT(has("\n  Weight: 1  WLM: 64  QoS: 0.00  W/Q: 64  Active: "));
	CU_ASSERT(has("\n  Weight: 3  WLM: 64  QoS: 0.00  W/Q: 192  Active: "));
}

static void test_vcrt(void)
{
	uint32_t t1, t2;
	char want[512], a[16];
	struct ctl_conn_row r;
	struct fp_flow f = flow(CLIENT, 40000, 80);

	setup();
	CU_ASSERT_FATAL(ctl_sm_conn_find(sm, &f, &r));
	t1 = r.target;
	f.sport = 40001;
	CU_ASSERT_FATAL(ctl_sm_conn_find(sm, &f, &r));
	t2 = r.target;
	CU_ASSERT_EQUAL(run("show vcrt"), 0);
	snprintf(want, sizeof(want),
		 "Dynamic VIPA Connection Routing Table:\n"
		 "Dest IPaddr     DPort Src IPaddr      SPort DestXCF Addr\n"
		 "203.0.113.10    00080 198.51.100.7    40000 %s\n",
		 inet_ntop(AF_INET, &(uint32_t){ htonl(conf.targets[t1].addr) }, a, sizeof(a)));
	CU_ASSERT(strncmp(text, want, strlen(want)) == 0);
	snprintf(want, sizeof(want),
		 "203.0.113.10    00080 198.51.100.7    40001 %s\n"
		 "2 of 2 records displayed\n",
		 inet_ntop(AF_INET, &(uint32_t){ htonl(conf.targets[t2].addr) }, a, sizeof(a)));
	CU_ASSERT(has(want));
	CU_ASSERT_EQUAL(run("show vcrt detail"), 0);
	CU_ASSERT(has("  Proto: TCP  From: local workers  Age: 4 s  Idle: 4 s\n"));
	CU_ASSERT(has("  Proto: TCP  From: 1.1.1.2  Age: 3 s  Idle: 3 s\n"));
	CU_ASSERT_EQUAL(run("show vcrt limit 1"), 0);
	CU_ASSERT(has("40000") && !has("40001"));
	CU_ASSERT(has("1 records displayed (limit 1 reached; 2 in the table)\n"));
	CU_ASSERT_EQUAL(run("show vcrt vip 203.0.113.20"), 0);
	CU_ASSERT(!has("40000") && has("0 records displayed (2 in the table)\n"));
	CU_ASSERT_EQUAL(run("show vcrt v 203.0.113.10 l 5 d"), 0); // option prefixes
	CU_ASSERT(has("40001") && has("Target: "));
}

/* ---- show ip casa (seed 6.8) ---------------------------------------------------------------- */

static void test_casa_displays(void)
{
	struct fp_flow f = flow(CLIENT, 40000, 80);

	setup();
	CU_ASSERT_EQUAL(run("show casa oper"), 0);
	CU_ASSERT(has("Casa is active:\nCasa control address is 198.51.100.1/32\n"
		      "Casa multicast address is 224.0.1.2\nListening on ports:\n"
		      "Service Manager Listen Port: 1637\n"
		      "Current passwd: NONE Pending passwd: NONE\nPasswd timeout: 180 sec\n"));
	CU_ASSERT(has("Wildcards: 3 advertised every 30 s, TTL 60 s; fixed affinity TTL 900 s\n"));
	CU_ASSERT_EQUAL(run("show casa stats"), 0);
	CU_ASSERT(has("  Wildcards:        3            Max Wildcards:    1024\n"));
	CU_ASSERT(has("  Int Packet:       2            Int Tickle:       0\n"));
	CU_ASSERT(has(
		"  Interest: new 2, known 0, reset 0, no_service 0, no_target 0, vcrt_full 0\n"));
	CU_ASSERT_EQUAL(run("show casa wildcard"), 0);
	CU_ASSERT_STRING_EQUAL(
		text, "Source Address  Source Mask     Port  Dest Address    Dest Mask"
		      "        Port  Prot\n"
		      "0.0.0.0         0.0.0.0         0     203.0.113.10    255.255.255.255"
		      "  80    TCP\n"
		      "0.0.0.0         0.0.0.0         0     203.0.113.10    255.255.255.255"
		      "  443   TCP\n"
		      "0.0.0.0         0.0.0.0         0     203.0.113.20    255.255.255.255"
		      "  53    UDP\n");
	CU_ASSERT_EQUAL(run("show casa wildcard detail"), 0);
	CU_ASSERT(has("    Affinity Count:  2                Ready targets: 3 of 3\n"));
	CU_ASSERT(has("    Interest Packet: 0x8100 FRAG ALLPKTS\n"));
	CU_ASSERT(has("    Manager Addr:    198.51.100.1     Service: dns\n"));
	CU_ASSERT_EQUAL(run("show casa affinities"), 0);
	CU_ASSERT_STRING_EQUAL(text, "No matching entries in affinity cache\n");
	CU_ASSERT_EQUAL(fp_affinity_add(&f, 1, 900), 0);
	f.sport = 40001;
	CU_ASSERT_EQUAL(fp_affinity_add(&f, 2, 900), 0);
	CU_ASSERT_EQUAL(run("show casa affinities"), 0);
	CU_ASSERT_STRING_EQUAL(text, "Source Address  Port   Dest Address    Port   Prot  Target\n"
				     "198.51.100.7    40000  203.0.113.10    80     TCP   t2\n"
				     "198.51.100.7    40001  203.0.113.10    80     TCP   t3\n"
				     "2 affinities displayed\n");
	CU_ASSERT_EQUAL(run("show casa aff det lim 1"), 0);
	CU_ASSERT(has("    Dispatch (Layer 2): NO      Dispatch Address: 192.0.2.22\n"));
	CU_ASSERT(has("    Idle: 0 s of 900 s  Origin: service manager\n"));
	CU_ASSERT(has("1 affinities displayed (limit 1 reached; 2 in the table)\n"));
}

/* ---- the other displays ------------------------------------------------------------------------ */

static void test_other_displays(void)
{
	setup();
	CU_ASSERT_EQUAL(run("show workers"), 0);
	CU_ASSERT(has("Worker  RxPkts") && has("\ntotal   0 "));
	CU_ASSERT_EQUAL(run("show drops"), 0);
	CU_ASSERT_STRING_EQUAL(text, "Fast path (all workers):\n  none\n"
				     "Control (Service Manager, CASA, agents):\n  none\n");
	{
		struct fp_flow f = flow(CLIENT, 1, 81); // no service on port 81
		uint32_t t;

		CU_ASSERT_EQUAL(ctl_sm_interest(sm, &f, 0x02, 0, NOW, &t), CTL_INT_NO_SERVICE);
	}
	CU_ASSERT_EQUAL(run("show drops"), 0);
	CU_ASSERT(has("Control (Service Manager, CASA, agents):\n"
		      "  interest_no_service              1\n"));
	CU_ASSERT_EQUAL(run("show targets"), 0);
	CU_ASSERT(has("0     t1               192.0.2.21      gre 192.0.2.21         1        64 "
		      " 0.00  none  Active   "));
	CU_ASSERT(has("2     t3               192.0.2.23      l2 02:00:00:00:00:13   3 "));
	CU_ASSERT(has("3 of 3 records displayed\n"));
	CU_ASSERT_EQUAL(run("show agents"), 0);
	CU_ASSERT(has("0 of 0 records displayed\n"));
	CU_ASSERT_EQUAL(run("show fas detail"), 0);
	CU_ASSERT(has("SenderId    Address") && has("0 of 0 records displayed\n"));
	CU_ASSERT_EQUAL(run("show config"), 0);
	CU_ASSERT(has("ports = [ 80, 443 ]") && has("password = \"********\""));
	CU_ASSERT(!has("secret") && !has("\"enable\""));
}

/* ---- trace flow ------------------------------------------------------------------------------- */

static void test_trace(void)
{
	struct fp_flow f = flow(CLIENT, 40000, 80);

	setup();
	// A SYN: the selection table picks.
	CU_ASSERT_EQUAL(run("trace flow tcp 198.51.100.9 1234 203.0.113.10 80"), 0);
	CU_ASSERT(strncmp(text, "new connection: forward to ", 27) == 0);
	CU_ASSERT(has("  service: web, 203.0.113.10 port 80\n") && has("walked in turn"));
	CU_ASSERT(has("  pick: worker 0 would take ") && has("  verdict: fwd_"));
	// The same flow with an affinity: forwarded to its target.
	CU_ASSERT_EQUAL(fp_affinity_add(&f, 1, 900), 0);
	CU_ASSERT_EQUAL(run("trace flow tcp 198.51.100.7 40000 203.0.113.10 80 ack"), 0);
	CU_ASSERT_STRING_EQUAL(
		first_line(),
		"affinity hit: forward to t2 (gre 192.0.2.22, data port 0), idle 0 s of 900 s");
	CU_ASSERT(has("  verdict: fwd_gre\n"));
	// Mid-flow without an affinity: the SM's VCRT decides.
	CU_ASSERT_EQUAL(run("trace flow tcp 198.51.100.7 40001 203.0.113.10 80 ack"), 0);
	CU_ASSERT(has("to the Service Manager") && has("service manager: VCRT entry -> t"));
	CU_ASSERT(has("verdict: interest_to_control"));
	CU_ASSERT_EQUAL(run("trace flow tcp 198.51.100.7 5555 203.0.113.10 80 ack"), 0);
	CU_ASSERT(has("no VCRT entry: fast connection reset"));
	// UDP by hash: an entry and its target.
	CU_ASSERT_EQUAL(run("trace flow udp 198.51.100.9 5353 203.0.113.20 53"), 0);
	CU_ASSERT(has("indexed by the 5-tuple's hash") && has("  pick: entry "));
	// Not ours, no service, ICMP.
	CU_ASSERT_EQUAL(run("trace flow tcp 198.51.100.9 1 192.0.2.99 80"), 0);
	CU_ASSERT(has("dropped: the destination is not a VIP") && has("drop_not_ours"));
	CU_ASSERT_EQUAL(run("trace flow tcp 198.51.100.9 1 203.0.113.10 81"), 0);
	CU_ASSERT(has("no service on this port") &&
		  has("service: none for 203.0.113.10 port 81 "
		      "TCP\n") &&
		  has("drop_no_service"));
	CU_ASSERT_EQUAL(run("trace flow icmp 198.51.100.9 0 203.0.113.10 0"), 0);
	CU_ASSERT(has("reply_icmp_echo"));
	// No ready target: every target of web quiesced, tables published.
	for (uint32_t t = 0; t < 3; t++)
		ctl_sm_target_quiesce(sm, t, true);
	publish();
	CU_ASSERT_EQUAL(run("trace flow tcp 198.51.100.9 1234 203.0.113.10 443"), 0);
	CU_ASSERT(has("no ready target") && has("no_target_to_control") &&
		  has("not quiesced (show vdpt): fast reset"));
	// Tracing changes nothing.
	CU_ASSERT_EQUAL(ctl_sm_conn_count(sm), 2);
	CU_ASSERT_EQUAL(fp_stub.n_aff, 1);
}

/* ---- changes --------------------------------------------------------------------------------- */

static void test_ports(void)
{
	struct fp_flow old = flow(CLIENT, 40000, 80), syn = flow(CLIENT, 50000, 80);
	uint32_t t = FP_TARGET_NONE;

	setup();
	CU_ASSERT_EQUAL(run("port add web 8080"), 0);
	CU_ASSERT_STRING_EQUAL(text, "port 8080 added to service web: 203.0.113.10:8080 TCP\n");
	CU_ASSERT(strstr(logged(), "console: session 9 (test): port 8080 added to service web") !=
		  NULL);
	CU_ASSERT(ctl_sm_sp_find(sm, VIP, 8080, 6) >= 0);
	CU_ASSERT_EQUAL(run("show vipadcfg"), 0);
	CU_ASSERT(has("  203.0.113.10    08080 TCP   192.0.2.22      t2               web\n"));
	CU_ASSERT_EQUAL(run("port add web 8080"), -EEXIST);
	CU_ASSERT(one_error());
	CU_ASSERT_EQUAL(run("port add dns 53"), -EEXIST);
	// The same port on the other protocol of another VIP is fine; on the
	// same VIP and protocol it belongs to web.
	CU_ASSERT_EQUAL(run("port add dns 8080"), 0);
	// A SYN to 8080 is placed now.
	syn.dport = 8080;
	CU_ASSERT_EQUAL(ctl_sm_interest(sm, &syn, 0x02, 0, NOW, &t), CTL_INT_NEW);
	// Delete port 80: new SYNs get no service, the connection already
	// there still resolves until it ends (seed 5.6.4).
	CU_ASSERT_EQUAL(run("port delete web 80"), 0);
	CU_ASSERT_STRING_EQUAL(text, "port 80 deleted from service web: no new connections; 2"
				     " existing connection(s) continue until they end\n");
	CU_ASSERT(strstr(logged(), "port 80 deleted from service web") != NULL);
	CU_ASSERT(ctl_sm_sp_find(sm, VIP, 80, 6) < 0);
	syn.dport = 80;
	CU_ASSERT_EQUAL(ctl_sm_interest(sm, &syn, 0x02, 0, NOW, &t), CTL_INT_NO_SERVICE);
	CU_ASSERT_EQUAL(ctl_sm_interest(sm, &old, 0x10, 0, NOW, &t), CTL_INT_KNOWN);
	CU_ASSERT_EQUAL(run("show vdpt"), 0);
	CU_ASSERT(!has(" 00080 ") && has(" 08080 "));
	CU_ASSERT_EQUAL(run("show vcrt"), 0);
	CU_ASSERT(has("00080 198.51.100.7    40000"));
	CU_ASSERT_EQUAL(run("show casa wildcard"), 0);
	CU_ASSERT(!has("  80    TCP") && has("Withdrawn, draining: 203.0.113.10 port 80 TCP, 2"));
	// Its wildcard goes out once more with TTL 0.
	{
		struct fp_flow w[4];

		CU_ASSERT_EQUAL(ctl_sm_withdrawn_take(sm, w, 4), 1);
		CU_ASSERT(w[0].dst == VIP && w[0].dport == 80 && w[0].proto == 6);
	}
	// Adding it back: the same service port, its connections carry on.
	CU_ASSERT_EQUAL(run("port add web 80"), 0);
	CU_ASSERT_EQUAL(ctl_sm_interest(sm, &syn, 0x02, 0, NOW, &t), CTL_INT_NEW);
	// A service keeps one port.
	CU_ASSERT_EQUAL(run("port delete dns 8080"), 0);
	CU_ASSERT_EQUAL(run("port delete dns 53"), -EBUSY);
	CU_ASSERT_STRING_EQUAL(text,
			       "% port 53 is the last port of service dns: a service keeps one\n");
	CU_ASSERT_EQUAL(run_as("port delete web 80", false), -EPERM);
}

static void test_quiesce_weight(void)
{
	struct fp_flow f;
	unsigned hits = 0;

	setup();
	CU_ASSERT_EQUAL(run("target quiesce t2"), 0);
	CU_ASSERT_STRING_EQUAL(text, "target t2 quiesced: no new connections; its 1 connection(s)"
				     " drain\n");
	CU_ASSERT(strstr(logged(), "console: session 9 (test): target t2 quiesced") != NULL);
	for (unsigned i = 0; i < 300; i++) {
		f = flow(0xC0000200u + i, (uint16_t)(1000 + i), 80);
		hits += ctl_sm_place(sm, 0, &f) == 1;
	}
	CU_ASSERT_EQUAL(hits, 0);
	CU_ASSERT_EQUAL(run("show vdpt"), 0);
	CU_ASSERT(has("t2               Quiesced\n"));
	CU_ASSERT_EQUAL(run("target quiesce t2"), 0);
	CU_ASSERT_STRING_EQUAL(text, "target t2 is quiesced already\n");
	CU_ASSERT_EQUAL(run("target resume t2"), 0);
	CU_ASSERT_STRING_EQUAL(text, "target t2 resumed: it takes new connections again\n");
	for (unsigned i = 0; i < 300; i++) {
		f = flow(0xC0000200u + i, (uint16_t)(2000 + i), 80);
		hits += ctl_sm_place(sm, 0, &f) == 1;
	}
	CU_ASSERT(hits > 50); // weight 2 of 6
	// Weight: applied at once, shown by VDPT and the targets.
	CU_ASSERT_EQUAL(run("target weight t1 0"), 0);
	CU_ASSERT_STRING_EQUAL(text, "target t1 weight 1 -> 0\n");
	CU_ASSERT(strstr(logged(), "target t1 weight 1 -> 0") != NULL);
	hits = 0;
	for (unsigned i = 0; i < 300; i++) {
		f = flow(0xC0000200u + i, (uint16_t)(3000 + i), 80);
		hits += ctl_sm_place(sm, 0, &f) == 0;
	}
	CU_ASSERT_EQUAL(hits, 0);
	CU_ASSERT_EQUAL(run("show vdpt detail"), 0);
	CU_ASSERT(has("\n  Weight: 0  WLM: 64  QoS: 0.00  W/Q: 0  Active: 0\n"));
	CU_ASSERT_EQUAL(run("show config"), 0);
	CU_ASSERT(has("{ name = \"t1\"; dispatch = \"gre\"; tunnel = \"192.0.2.21\"; address = "
		      "\"192.0.2.21\"; port = 0; weight = 0; }"));
}

static void test_clear_counters(void)
{
	setup();
	CU_ASSERT(ctl_sm_counters(sm)->interest[CTL_INT_NEW] == 2);
	CU_ASSERT_EQUAL(run_as("clear counters", false), -EPERM);
	CU_ASSERT(ctl_sm_counters(sm)->interest[CTL_INT_NEW] == 2);
	CU_ASSERT_EQUAL(run("clear counters"), 0);
	CU_ASSERT(strstr(logged(), "counters cleared") != NULL);
	CU_ASSERT_EQUAL(ctl_sm_counters(sm)->interest[CTL_INT_NEW], 0);
	CU_ASSERT_EQUAL(fp_stub.stats_clears, 1);
	CU_ASSERT_EQUAL(run("show vdpt"), 0);
	CU_ASSERT(!has(" 0000000001 ")); // TotalConn zeroed
	CU_ASSERT_EQUAL(run("show casa stats"), 0);
	CU_ASSERT(has("  Interest: new 0, known 0,"));
	CU_ASSERT(has("  Connections:      2 ")); // the table itself stays
}

/* Does service svc distribute port now (live)? */
static bool service_has(unsigned svc, uint16_t port)
{
	uint16_t ports[CTL_PORTS_PER_SERVICE];
	unsigned n = ctl_sm_service_ports(sm, svc, ports, CTL_PORTS_PER_SERVICE);

	for (unsigned i = 0; i < n; i++)
		if (ports[i] == port)
			return true;
	return false;
}

static void test_reload(void)
{
	setup();
	// A broken file: the running configuration stays, the errors are shown.
	{
		FILE *f = fopen(conf_file, "w");

		fputs("dataplane = { lcores = 7; };\n", f);
		fclose(f);
	}
	CU_ASSERT_EQUAL(run("reload"), -EINVAL);
	CU_ASSERT(strncmp(text, "% reload failed: ", 17) == 0);
	CU_ASSERT(has("the running configuration is kept\n  "));
	CU_ASSERT(has(": dataplane: lcores must be a string\n"));
	CU_ASSERT(strstr(logged(), "reload of ") != NULL);
	CU_ASSERT(ctl_sm_sp_find(sm, VIP, 80, 6) >= 0);
	// A weight and the ports changed: applied live, logged.
	write_conf(5, "443, 8080", "0-1");
	CU_ASSERT_EQUAL(run("reload"), 0);
	CU_ASSERT(has("port 80 deleted from service web"));
	CU_ASSERT(has("port 8080 added to service web"));
	CU_ASSERT(has("target t1 weight 1 -> 5\n"));
	CU_ASSERT(has(": 3 change(s) applied\n"));
	CU_ASSERT(strstr(logged(), "target t1 weight 1 -> 5") != NULL);
	CU_ASSERT(ctl_sm_sp_find(sm, VIP, 80, 6) < 0 && ctl_sm_sp_find(sm, VIP, 8080, 6) >= 0);
	CU_ASSERT_EQUAL(run("show vdpt detail"), 0);
	CU_ASSERT(has("  Weight: 5  WLM: 64"));
	// Again: nothing to do.
	CU_ASSERT_EQUAL(run("reload"), 0);
	CU_ASSERT(has(": 0 change(s) applied\n"));
	// A port moves wholesale (the old last port goes after the new one).
	write_conf(5, "9090", "0-1");
	CU_ASSERT_EQUAL(run("reload"), 0);
	CU_ASSERT(ctl_sm_sp_find(sm, VIP, 9090, 6) >= 0 && ctl_sm_sp_find(sm, VIP, 443, 6) < 0 &&
		  ctl_sm_sp_find(sm, VIP, 8080, 6) < 0);
	// What cannot change live: refused with the reason, nothing applied.
	write_conf(7, "9090", "0-2");
	CU_ASSERT_EQUAL(run("reload"), -EINVAL);
	CU_ASSERT(one_error());
	CU_ASSERT_STRING_EQUAL(text, "% reload refused, the running configuration is kept: a"
				     " restart is needed to change \"  lcores = \"0-2\";\"\n");
	CU_ASSERT_EQUAL(run("show vdpt detail"), 0);
	CU_ASSERT(has("  Weight: 5  WLM: 64"));
}

/* Two TCP services of one VIP, web's ports and mail's given. */
static void write_moves_conf(const char *web, const char *mail)
{
	FILE *f = fopen(conf_file, "w");

	CU_ASSERT_FATAL(f != NULL);
	fprintf(f,
		"service_manager = { address = \"198.51.100.1\"; };\n"
		"dataplane = { ports = ( { device = \"ring:t\"; address = \"192.0.2.1\";\n"
		"  gateway_mac = \"02:00:00:00:00:01\"; } ); };\n"
		"targets = ( { name = \"t1\"; tunnel = \"192.0.2.21\"; } );\n"
		"services = ( { name = \"web\"; vip = \"203.0.113.10\"; ports = [ %s ];\n"
		"  targets = [ \"t1\" ]; },\n"
		" { name = \"mail\"; vip = \"203.0.113.10\"; ports = [ %s ];\n"
		"  targets = [ \"t1\" ]; } );\n",
		web, mail);
	fclose(f);
}

/* Ports moving between two services of one VIP: a service's only port
 * moves while it gets a new one; a move of a port in use is refused
 * before anything changes. */
static void test_reload_moves(void)
{
	struct fp_flow f = { .src = CLIENT, .dst = VIP, .sport = 40000, .dport = 25, .proto = 6 };

	teardown();
	write_moves_conf("80", "25");
	sm_from_file();
	write_moves_conf("8080", "25, 80");
	CU_ASSERT_EQUAL(run("reload"), 0);
	CU_ASSERT(has(": 3 change(s) applied\n"));
	CU_ASSERT(service_has(0, 8080) && !service_has(0, 80) && service_has(1, 80));
	// mail's 25 is in use: moving it to web is refused, nothing changes.
	ctl_sm_conn_new(sm, &f, 0, NOW);
	write_moves_conf("8080, 25", "80");
	CU_ASSERT_EQUAL(run("reload"), -EBUSY);
	CU_ASSERT(one_error());
	CU_ASSERT(has("port 25 moves to service web while 1 connection(s) use it"));
	CU_ASSERT(service_has(1, 25) && !service_has(0, 25));
	// Once it ended, the same reload moves it.
	CU_ASSERT(ctl_sm_conn_end(sm, 0, &f));
	CU_ASSERT_EQUAL(run("reload"), 0);
	CU_ASSERT(service_has(0, 25) && !service_has(1, 25) && service_has(1, 80));
	// web {8080, 25}, mail {80} -> web {80}, mail {8080, 25}: each port
	// waits for its old service to let it go, and web's last port goes
	// only after 80 came in. Worked out whole before anything changes.
	write_moves_conf("80", "8080, 25");
	CU_ASSERT_EQUAL(run("reload"), 0);
	CU_ASSERT(has(": 6 change(s) applied\n"));
	CU_ASSERT(service_has(0, 80) && !service_has(0, 8080) && !service_has(0, 25));
	CU_ASSERT(service_has(1, 8080) && service_has(1, 25) && !service_has(1, 80));
	// A swap of single ports has no such order: refused, nothing changes.
	write_moves_conf("80", "8080, 25"); // no change: nothing to do
	CU_ASSERT_EQUAL(run("reload"), 0);
	CU_ASSERT(has(": 0 change(s) applied\n"));
	CU_ASSERT_EQUAL(run("port delete mail 25"), 0);
	write_moves_conf("8080", "80");
	CU_ASSERT_EQUAL(run("reload"), -EBUSY);
	CU_ASSERT(one_error());
	CU_ASSERT(has("cannot be made one at a time"));
	CU_ASSERT(service_has(0, 80) && service_has(1, 8080) && !service_has(1, 80));
	teardown();
}

/* 1023 of the FP_SERVICES_MAX (1024) service ports: two services of one
 * port each (web_port, mail_port on 203.0.113.10), the rest filled up on
 * other VIPs. */
static void write_full_conf(unsigned web_port, unsigned mail_port)
{
	FILE *f = fopen(conf_file, "w");
	unsigned left = FP_SERVICES_MAX - 3;

	CU_ASSERT_FATAL(f != NULL);
	fprintf(f, "service_manager = { address = \"198.51.100.1\"; };\n"
		   "dataplane = { ports = ( { device = \"ring:t\"; address = \"192.0.2.1\";\n"
		   "  gateway_mac = \"02:00:00:00:00:01\"; } ); };\n"
		   "targets = ( { name = \"t1\"; tunnel = \"192.0.2.21\"; } );\n"
		   "services = (\n");
	fprintf(f,
		" { name = \"web\"; vip = \"203.0.113.10\"; ports = [ %u ]; targets = [ \"t1\" ]; },\n"
		" { name = \"mail\"; vip = \"203.0.113.10\"; ports = [ %u ]; targets = [ \"t1\" ]; }",
		web_port, mail_port);
	for (unsigned v = 0; left > 0; v++) {
		unsigned n = left < CTL_PORTS_PER_SERVICE ? left : CTL_PORTS_PER_SERVICE;

		fprintf(f, ",\n { name = \"fill%u\"; vip = \"203.0.113.%u\"; ports = [ ", v,
			100 + v);
		for (unsigned p = 0; p < n; p++)
			fprintf(f, "%s%u", p ? ", " : "", 1000 + p);
		fprintf(f, " ]; targets = [ \"t1\" ]; }");
		left -= n;
	}
	fprintf(f, " );\n");
	fclose(f);
}

/* At 1023 of 1024 service ports, web 80 -> 81 and mail 90 -> 91 need an
 * order that makes room: add 81, delete 80, add 91, delete 90. */
static void test_reload_room(void)
{
	teardown();
	write_full_conf(80, 90);
	sm_from_file();
	write_full_conf(81, 91);
	CU_ASSERT_EQUAL(run("reload"), 0);
	CU_ASSERT(has(": 4 change(s) applied\n"));
	CU_ASSERT(service_has(0, 81) && !service_has(0, 80));
	CU_ASSERT(service_has(1, 91) && !service_has(1, 90));
	teardown();
}

/* A port change reaches CASA (wildcards again, TTL-0 withdrawal) through
 * the SM's generation. */
static void test_casa_follows(void)
{
	static const char text_casa[] =
		"service_manager = { address = \"127.0.0.5\"; port = 16395; };\n"
		"agents = { address = \"127.0.0.5\"; port = 16394; };\n"
		"dataplane = { ports = ( { device = \"ring:t\"; address = \"192.0.2.1\";\n"
		"  gateway_mac = \"02:00:00:00:00:01\"; } ); };\n"
		"targets = ( { name = \"t1\"; tunnel = \"192.0.2.21\"; } );\n"
		"services = ( { name = \"web\"; vip = \"203.0.113.10\"; ports = [ 80, 443 ];\n"
		"  targets = [ \"t1\" ]; } );\n";
	struct ctl_conf c;
	struct ctl_sm *s;
	struct ctl_casa *x;
	char err[256];

	CU_ASSERT_FATAL(ctl_conf_load_text(text_casa, "casa.conf", &c, stderr) == 0);
	fp_stub_reset();
	s = ctl_sm_create(&c, NOW);
	x = s ? ctl_casa_create(&c, s, NOW, 1700000000, err, sizeof(err)) : NULL;
	if (!x) {
		printf("\n  no CASA socket on 127.0.0.5 (%s): skipped", err);
		ctl_sm_destroy(s);
		ctl_conf_free(&c);
		return;
	}
	ctl_casa_tick(x, NOW, 1700000000);
	CU_ASSERT_EQUAL(ctl_casa_counters(x)->wildcards_sent, 2);
	CU_ASSERT_EQUAL(ctl_sm_port_del(s, 0, 443), 0);
	ctl_casa_tick(x, NOW + 10, 1700000000);
	CU_ASSERT_EQUAL(ctl_casa_counters(x)->wildcard_deletes_sent, 1);
	CU_ASSERT_EQUAL(ctl_casa_counters(x)->wildcards_sent, 3); // port 80 again, at once
	ctl_casa_counters_clear(x);
	CU_ASSERT_EQUAL(ctl_casa_counters(x)->wildcards_sent, 0);
	// A forwarding agent says hello: show fas and show casa oper list it.
	{
		struct casa_hello h = { .role = CASA_ROLE_FA,
					.ext_version = 1,
					.sender_id = 0x01010102,
					.epoch = 1700000000,
					.control_addr = 0x01010102,
					.port = 1637,
					.hello_interval = 10,
					.hold_time = 30,
					.caps = CASA_CAP_GRE };
		uint8_t buf[512];
		// Its name ends in U+009B (CSI, a C1 control in UTF-8): shown as
		// "??", never sent to the operator's terminal.
		size_t n = casa_encode_hello(buf, sizeof(buf), CASA_MSG_HELLO, &h, "fa-1\xc2\x9b");
		struct ctl_view saved = view;

		CU_ASSERT_EQUAL(ctl_casa_handle(x, buf, n, 0x01010102, 1637, NOW, 1700000000), 0);
		view = (struct ctl_view){ .c = &c, .sm = s, .casa = x, .started_ms = NOW };
		CU_ASSERT_EQUAL(run("show fas"), 0);
		CU_ASSERT(has("0x01010102  1.1.1.2         1637  1700000000  30   0         1"
			      "          0x02  fa-1??\n1 of 1 records displayed\n"));
		CU_ASSERT_EQUAL(run("show fas detail"), 0);
		CU_ASSERT(has("  No statistics reported\n"));
		CU_ASSERT_EQUAL(run("show casa oper"), 0);
		CU_ASSERT(has("Forwarding agents: 1 of 1024\n"));
		CU_ASSERT_EQUAL(run("show casa wildcard"), 0);
		CU_ASSERT(has("  80    TCP\n") && !has("  443   TCP\n"));
		view = saved;
	}
	ctl_casa_destroy(x);
	ctl_sm_destroy(s);
	ctl_conf_free(&c);
}

/* ---- the console over TCP (libcli) ----------------------------------------------------------- */

struct client {
	uint16_t port;
	const char *script; /* which dialogue */
	char transcript[1 << 15];
	size_t len;
	int status;    /* 0: every expected text came */
	int logged_in; /* set (atomic) once the prompt came ("stay") */
	int done;      /* set (atomic) when the thread ends */
};

/* Read until want appears (telnet negotiation dropped) or 5 s pass. */
static bool expect(int fd, struct client *c, const char *want)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		unsigned char buf[1024];
		ssize_t n;

		c->transcript[c->len] = '\0';
		if (strstr(c->transcript, want))
			return true;
		clock_gettime(CLOCK_MONOTONIC, &t);
		if (t.tv_sec - t0.tv_sec > 5 || poll(&p, 1, 200) < 0)
			return false;
		if (!(p.revents & (POLLIN | POLLHUP)))
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return strstr(want, "<EOF>") != NULL;
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == 0xFF) { // IAC WILL/WONT/DO/DONT x
				i += 2;
				continue;
			}
			if (buf[i] != '\r' && c->len + 1 < sizeof(c->transcript))
				c->transcript[c->len++] = (char)buf[i];
		}
	}
}

static bool say(int fd, const char *line)
{
	return write(fd, line, strlen(line)) == (ssize_t)strlen(line) && write(fd, "\r", 1) == 1;
}

static int dial(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(0x7F000001) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Log in, show, enable, change, quit. */
static int dialogue_main(int fd, struct client *c)
{
	return !(expect(fd, c, "casalb admin console") && expect(fd, c, "Username: ") &&
		 say(fd, "admin") && expect(fd, c, "Password: ") && say(fd, "secret") &&
		 expect(fd, c, "casalb> ") && say(fd, "show vdpt") &&
		 expect(fd, c, "8 of 8 records displayed") && expect(fd, c, "casalb> ") &&
		 say(fd, "sh vcrt") && expect(fd, c, "2 of 2 records displayed") &&
		 say(fd, "show nothing") && expect(fd, c, "Invalid command \"show nothing\"") &&
		 say(fd, "port add web 8080") && expect(fd, c, "Invalid command") &&
		 say(fd, "enable") && expect(fd, c, "Password: ") && say(fd, "enable") &&
		 expect(fd, c, "casalb# ") && say(fd, "port add web 8080") &&
		 expect(fd, c, "port 8080 added to service web") && say(fd, "quit") &&
		 expect(fd, c, "<EOF>"));
}

/* Three wrong passwords close the session. */
static int dialogue_wrong(int fd, struct client *c)
{
	return !(expect(fd, c, "Username: ") && say(fd, "admin") && say(fd, "nope") &&
		 expect(fd, c, "Access denied") && say(fd, "admin") && say(fd, "nope") &&
		 say(fd, "admin") && say(fd, "nope") && expect(fd, c, "<EOF>"));
}

/* Log in and stay until the console goes away. */
static int dialogue_stay(int fd, struct client *c)
{
	if (!(expect(fd, c, "Username: ") && say(fd, "admin") && say(fd, "secret") &&
	      expect(fd, c, "casalb> ")))
		return 1;
	__atomic_store_n(&c->logged_in, 1, __ATOMIC_RELEASE);
	return !expect(fd, c, "<EOF>");
}

/* libcli's TAB completion appends to its 4096-byte line unchecked: a line
 * of 4093 bytes and a TAB that completes "a" to "affinities" would write
 * past it. The console gives libcli no more than 2048 bytes of one line:
 * the session, and the process, carry on. */
static int dialogue_long(int fd, struct client *c)
{
	static char line[4200];
	size_t n = 0;

	n += (size_t)snprintf(line, sizeof(line), "show casa ");
	memset(line + n, ' ', 4093 - n);
	n = 4093;
	line[n++] = 'a';
	line[n++] = '\t';
	line[n] = '\0';
	if (!(expect(fd, c, "Username: ") && say(fd, "admin") && say(fd, "secret") &&
	      expect(fd, c, "casalb> ")))
		return 1;
	c->len = 0; // from here on, only what the long lines brought
	if (!(say(fd, line) && expect(fd, c, "casalb> ")))
		return 1;
	// libcli ignores LF: a line split by LFs into pieces shorter than the
	// relay's limit is still one line to libcli.
	n = (size_t)snprintf(line, sizeof(line), "show casa ");
	memset(line + n, ' ', 1900 - n);
	line[1900] = '\n';
	memset(line + 1901, ' ', 1900);
	line[3801] = '\n';
	memset(line + 3802, ' ', 290);
	n = 3802 + 290;
	line[n++] = 'a';
	line[n++] = '\t';
	line[n] = '\0';
	return !(say(fd, line) && expect(fd, c, "casalb> ") && say(fd, "show workers") &&
		 expect(fd, c, "total") && expect(fd, c, "casalb> ") && say(fd, "quit") &&
		 expect(fd, c, "<EOF>"));
}

/* Everything sent at once, then the sending side closed (as `nc -N`
 * does): the answers still come. */
static int dialogue_halfclose(int fd, struct client *c)
{
	return !(say(fd, "admin") && say(fd, "secret") && say(fd, "show workers") &&
		 say(fd, "quit") && shutdown(fd, SHUT_WR) == 0 && expect(fd, c, "total") &&
		 expect(fd, c, "<EOF>"));
}

/* A second connection while the one slot is taken: one line, then EOF. */
static int dialogue_refused(int fd, struct client *c)
{
	return !(expect(fd, c, "% casalb console: all 1 sessions are in use") &&
		 expect(fd, c, "<EOF>"));
}

/* A third connection from an address with two logins in progress. */
static int dialogue_peer(int fd, struct client *c)
{
	return !(expect(fd, c, "% casalb console: 2 logins already in progress from 127.0.0.1") &&
		 expect(fd, c, "<EOF>"));
}

static void *client_main(void *arg)
{
	struct client *c = arg;
	int fd = dial(c->port);

	c->status = -1;
	if (fd >= 0) {
		if (strcmp(c->script, "main") == 0)
			c->status = dialogue_main(fd, c);
		else if (strcmp(c->script, "wrong") == 0)
			c->status = dialogue_wrong(fd, c);
		else if (strcmp(c->script, "stay") == 0)
			c->status = dialogue_stay(fd, c);
		else if (strcmp(c->script, "long") == 0)
			c->status = dialogue_long(fd, c);
		else if (strcmp(c->script, "peer") == 0)
			c->status = dialogue_peer(fd, c);
		else if (strcmp(c->script, "halfclose") == 0)
			c->status = dialogue_halfclose(fd, c);
		else
			c->status = dialogue_refused(fd, c);
		close(fd);
	}
	__atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* A free loopback port (the console's setting cannot ask for port 0). */
static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001) };
	socklen_t l = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t port = 0;

	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &l) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

static uint64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

/* This thread is the control loop while c runs (at most 15 s). */
static void control_loop(struct ctl_console *k, struct client *c)
{
	uint64_t until = mono_ms() + 15000;

	while (!__atomic_load_n(&c->done, __ATOMIC_ACQUIRE) && mono_ms() < until) {
		struct pollfd p = { .fd = ctl_console_fd(k), .events = POLLIN };

		poll(&p, 1, 50);
		ctl_console_run(k, mono_ms());
	}
}

/* Up to n control turns (each waits up to 50 ms for the console), fewer
 * once *until (when given) is set. */
static void control_turns(struct ctl_console *k, int n, int *until)
{
	for (int i = 0; i < n && !(until && __atomic_load_n(until, __ATOMIC_ACQUIRE)); i++) {
		struct pollfd p = { .fd = ctl_console_fd(k), .events = POLLIN };

		poll(&p, 1, 50);
		ctl_console_run(k, mono_ms());
	}
}

static struct ctl_console *console_up(unsigned sessions)
{
	char err[256] = "";
	struct ctl_console *k;

	conf.console.port = free_port();
	conf.console.addr = 0x7F000001;
	conf.console_access.sessions = sessions;
	k = ctl_console_create(&view, err, sizeof(err));
	if (!k)
		printf("\n  console: %s", err);
	return k;
}

/* A console of 4 sessions and one client running its script to the end;
 * its status checked. The console is the caller's to destroy. */
static struct ctl_console *run_client(struct client *c)
{
	struct ctl_console *k;
	pthread_t th;

	setup();
	k = console_up(4);
	CU_ASSERT_FATAL(k != NULL);
	CU_ASSERT(ctl_console_fd(k) >= 0);
	c->port = conf.console.port;
	CU_ASSERT_FATAL(pthread_create(&th, NULL, client_main, c) == 0);
	control_loop(k, c);
	pthread_join(th, NULL);
	if (c->status != 0)
		printf("\n  transcript:\n%s\n", c->transcript);
	CU_ASSERT_EQUAL(c->status, 0);
	return k;
}

static void test_session(void)
{
	static struct client c = { .script = "main" };
	struct ctl_console *k = run_client(&c);

	CU_ASSERT(strstr(c.transcript, "Dynamic VIPA Destination Port Table:\n") != NULL);
	// The change made after enable (at the user level it did not exist).
	CU_ASSERT(ctl_sm_sp_find(sm, VIP, 8080, 6) >= 0);
	ctl_console_destroy(k);
	ctl_console_destroy(NULL);
}

static void test_long_line(void)
{
	static struct client c = { .script = "long" };

	ctl_console_destroy(run_client(&c));
}

static void test_half_close(void)
{
	static struct client c = { .script = "halfclose" };

	ctl_console_destroy(run_client(&c));
}

/* The console closed its end of fd: what it sent before is read away. */
static bool slot_gone(int fd)
{
	char buf[512];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
			return true;
		if (n < 0)
			return false;
	}
}

/* Two connections that do not log in: a third from the same address is
 * refused although slots are free; once one goes, a login is offered. */
static void test_logins_per_peer(void)
{
	static struct client peer = { .script = "peer" }, again = { .script = "stay" };
	struct ctl_console *k;
	pthread_t a;
	int idle[2];

	setup();
	k = console_up(4);
	CU_ASSERT_FATAL(k != NULL);
	peer.port = again.port = conf.console.port;
	idle[0] = dial(conf.console.port);
	idle[1] = dial(conf.console.port);
	CU_ASSERT_FATAL(idle[0] >= 0 && idle[1] >= 0);
	control_turns(k, 10, NULL); // both accepted
	CU_ASSERT_FATAL(pthread_create(&a, NULL, client_main, &peer) == 0);
	control_loop(k, &peer);
	pthread_join(a, NULL);
	if (peer.status != 0)
		printf("\n  transcript:\n%s\n", peer.transcript);
	CU_ASSERT_EQUAL(peer.status, 0);
	// One idle connection ends its side; the console closes its end only
	// once the slot is free, so its end-of-file is the condition to wait
	// for (bounded: 100 control turns).
	CU_ASSERT_FATAL(shutdown(idle[0], SHUT_WR) == 0);
	for (int i = 0; i < 100 && !slot_gone(idle[0]); i++)
		control_turns(k, 1, NULL);
	CU_ASSERT_FATAL(slot_gone(idle[0]));
	close(idle[0]);
	CU_ASSERT_FATAL(pthread_create(&a, NULL, client_main, &again) == 0);
	control_turns(k, 100, &again.logged_in);
	CU_ASSERT(__atomic_load_n(&again.logged_in, __ATOMIC_ACQUIRE));
	ctl_console_destroy(k);
	pthread_join(a, NULL);
	close(idle[1]);
}

static void test_session_limits(void)
{
	static struct client wrong = { .script = "wrong" }, stay = { .script = "stay" },
			     refused = { .script = "refused" };
	struct ctl_console *k;
	pthread_t a, b;

	setup();
	k = console_up(1);
	CU_ASSERT_FATAL(k != NULL);
	wrong.port = stay.port = refused.port = conf.console.port;
	CU_ASSERT_FATAL(pthread_create(&a, NULL, client_main, &wrong) == 0);
	control_loop(k, &wrong);
	pthread_join(a, NULL);
	if (wrong.status != 0)
		printf("\n  transcript:\n%s\n", wrong.transcript);
	CU_ASSERT_EQUAL(wrong.status, 0);
	// One slot: the second connection is refused in one line.
	CU_ASSERT_FATAL(pthread_create(&a, NULL, client_main, &stay) == 0);
	control_turns(k, 100, &stay.logged_in);
	CU_ASSERT_FATAL(pthread_create(&b, NULL, client_main, &refused) == 0);
	control_loop(k, &refused);
	pthread_join(b, NULL);
	if (refused.status != 0)
		printf("\n  transcript:\n%s\n", refused.transcript);
	CU_ASSERT_EQUAL(refused.status, 0);
	// Destroy with a session logged in: it is released, the thread joined.
	ctl_console_destroy(k);
	pthread_join(a, NULL);
	CU_ASSERT_EQUAL(stay.status, 0);
}

/* A console off loopback without a password does not open. */
static void test_console_needs_password(void)
{
	char err[256] = "";

	setup();
	conf.console.addr = 0x0A000001;
	conf.console_access.password[0] = '\0';
	CU_ASSERT(ctl_console_create(&view, err, sizeof(err)) == NULL);
	CU_ASSERT(strstr(err, "password") != NULL);
	conf.console.enabled = false;
	{
		struct ctl_console *k = ctl_console_create(&view, err, sizeof(err));

		CU_ASSERT(k != NULL && ctl_console_fd(k) == -1);
		ctl_console_run(k, NOW);
		ctl_console_destroy(k);
	}
}

int main(void)
{
	CU_pSuite s;
	int fd = mkstemp(conf_file), failed;

	if (fd < 0)
		return 1;
	close(fd);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("control console", NULL, NULL);
	CU_add_test(s, "parsing: prefixes, ambiguity, enable", test_parse);
	CU_add_test(s, "bad input: one line, never a crash", test_bad_input);
	CU_add_test(s, "show vipadcfg, show vipadyn", test_vipadcfg_vipadyn);
	CU_add_test(s, "show vdpt", test_vdpt);
	CU_add_test(s, "show vcrt", test_vcrt);
	CU_add_test(s, "show casa oper, stats, wildcard, affinities", test_casa_displays);
	CU_add_test(s, "workers, drops, targets, agents, fas, config", test_other_displays);
	CU_add_test(s, "trace flow", test_trace);
	CU_add_test(s, "port add and delete, live", test_ports);
	CU_add_test(s, "quiesce, resume, weight", test_quiesce_weight);
	CU_add_test(s, "clear counters", test_clear_counters);
	CU_add_test(s, "reload", test_reload);
	CU_add_test(s, "reload: ports moving between services", test_reload_moves);
	CU_add_test(s, "reload: an order that makes room at the limit", test_reload_room);
	CU_add_test(s, "CASA follows port changes", test_casa_follows);
	CU_add_test(s, "a libcli session over TCP", test_session);
	CU_add_test(s, "an overlong line and TAB completion", test_long_line);
	CU_add_test(s, "a client that half-closes gets its answers", test_half_close);
	CU_add_test(s, "logins in progress per address", test_logins_per_peer);
	CU_add_test(s, "login failures, session limit, destroy", test_session_limits);
	CU_add_test(s, "no password off loopback", test_console_needs_password);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = (int)CU_get_number_of_failures();
	teardown();
	fp_stub_reset();
	unlink(conf_file);
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
