/*
 * test_ctl_metrics.c - the metrics endpoint (ctl_metrics.c) and the output
 * sink it writes to (ctl_out.c), against the fast-path stub:
 *   - ctl_out grows, stops at its limit with one note, resets;
 *   - the renderer's exact lines for known values (connections placed
 *     through the Service Manager, counters set in the snapshot), HELP and
 *     TYPE once per family with its samples together, label escaping, and
 *     `promtool check metrics` on the text (PROMTOOL, default "promtool");
 *   - the HTTP server run as the control loop runs it (poll on its fd, then
 *     ctl_metrics_run) against a client thread: 200 with the text on
 *     /metrics, 404 elsewhere, 405 for POST; a port in use is one clean
 *     error; an idle connection makes it due; a disabled listener has no fd.
 */
#define _GNU_SOURCE /* strcasestr */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "casa.h"
#include "ctl.h"
#include "fp_stub.h"

#define VIP 0xCB00710Au /* 203.0.113.10 */
#define T0 1000000ULL   /* a start time, ms */

/* Three targets, one with a quote and a backslash in its name (label
 * escaping through the configuration path). */
static const char conf_text[] =
	"service_manager = { address = \"198.51.100.1\"; };\n"
	"dataplane = { ports = ( { device = \"ring:t\"; address = \"192.0.2.1\";\n"
	"  gateway_mac = \"02:00:00:00:00:01\"; } ); };\n"
	"targets = (\n"
	" { name = \"t1\"; tunnel = \"198.51.100.11\"; weight = 2; },\n"
	" { name = \"t2\"; tunnel = \"198.51.100.12\"; weight = 1; },\n"
	" { name = \"t\\\"3\\\\\"; tunnel = \"198.51.100.13\"; weight = 1; } );\n"
	"services = ( { name = \"web\"; vip = \"203.0.113.10\"; ports = [ 80, 443 ];\n"
	"  targets = [ \"t1\", \"t2\", \"t\\\"3\\\\\" ]; } );\n";

static struct ctl_conf conf;
static struct ctl_sm *sm;

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int suite_init(void)
{
	if (ctl_conf_load_text(conf_text, "metrics.conf", &conf, stderr) != 0)
		return -1;
	fp_stub_reset();
	sm = ctl_sm_create(&conf, T0);
	return sm ? 0 : -1;
}

static int suite_fini(void)
{
	ctl_sm_destroy(sm);
	ctl_conf_free(&conf);
	return 0;
}

static struct fp_flow flow(uint32_t src, uint16_t sport, uint16_t dport)
{
	return (struct fp_flow){
		.src = src, .dst = VIP, .sport = sport, .dport = dport, .proto = 6
	};
}

/* ---- ctl_out -------------------------------------------------------------------- */

static void test_out_growth(void)
{
	struct ctl_out o;
	size_t want = 0;

	ctl_out_init(&o, 0);
	CU_ASSERT_EQUAL(o.limit, CTL_OUT_LIMIT);
	CU_ASSERT_STRING_EQUAL(ctl_out_text(&o), ""); // never NULL, even empty
	for (unsigned i = 0; i < 20000; i++) {
		ctl_out_printf(&o, "line %05u\n", i);
		want += 11;
	}
	CU_ASSERT_FALSE(o.truncated);
	CU_ASSERT_EQUAL(o.len, want);
	CU_ASSERT_EQUAL(strlen(ctl_out_text(&o)), want);
	CU_ASSERT(strncmp(ctl_out_text(&o) + 11 * 19999, "line 19999\n", 11) == 0);
	ctl_out_reset(&o);
	CU_ASSERT_EQUAL(o.len, 0);
	CU_ASSERT_STRING_EQUAL(ctl_out_text(&o), "");
	CU_ASSERT(o.cap >= want); // the memory is kept
	ctl_out_printf(&o, "%s", "again");
	CU_ASSERT_STRING_EQUAL(ctl_out_text(&o), "again");
	ctl_out_free(&o);
	CU_ASSERT_PTR_NULL(o.buf);
}

static void test_out_limit(void)
{
	static const char note[] = "... (output truncated)\n";
	struct ctl_out o;
	const char *t;

	ctl_out_init(&o, 64);
	for (unsigned i = 0; i < 10; i++)
		ctl_out_printf(&o, "0123456789");
	t = ctl_out_text(&o);
	CU_ASSERT_TRUE(o.truncated);
	CU_ASSERT(o.len < 64);
	CU_ASSERT_EQUAL(strlen(t), o.len);
	CU_ASSERT(o.len >= sizeof(note) - 1 &&
		  strcmp(t + o.len - (sizeof(note) - 1), note) == 0); // one note, at the end
	CU_ASSERT(strstr(t, note) == t + o.len - (sizeof(note) - 1));
	ctl_out_printf(&o, "more");
	CU_ASSERT_EQUAL(strlen(ctl_out_text(&o)), o.len); // nothing after the note
	CU_ASSERT_PTR_NULL(strstr(ctl_out_text(&o), "more"));
	ctl_out_reset(&o);
	CU_ASSERT_FALSE(o.truncated);
	ctl_out_printf(&o, "fits");
	CU_ASSERT_STRING_EQUAL(ctl_out_text(&o), "fits");
	// One write larger than the whole limit: only the note.
	ctl_out_reset(&o);
	ctl_out_printf(&o, "%0100d", 1);
	CU_ASSERT_TRUE(o.truncated);
	CU_ASSERT_PTR_NOT_NULL(strstr(ctl_out_text(&o), "truncated"));
	CU_ASSERT(o.len < 64);
	ctl_out_free(&o);
}

/* ---- the renderer ------------------------------------------------------------------- */

/* A snapshot of the test SM with known counters and rows set by hand (the
 * parts the stub and this test do not drive). */
static void snap_take(struct ctl_snap *s)
{
	struct ctl_view v = { .c = &conf, .sm = sm, .started_ms = T0 };

	CU_ASSERT_FATAL(ctl_snap_collect(&v, T0 + 5500, s) == 0);
	s->casa.rx_types[0] = 3; // "wildcard"
	s->casa.rx = 3;
	s->casa.wildcards_sent = 4;
	s->casa.drops[CASA_E_AUTH_BAD] = 2;
	s->casa.resets_sent = 6;
	s->agent.drops[CASA_E_TLV_TRUNC] = 1;
	s->agent.accepted = 8;
	s->agents = calloc(2, sizeof(*s->agents));
	CU_ASSERT_FATAL(s->agents != NULL);
	s->agents[0] = (struct ctl_agent_row){ .registered = true, .target = 1 };
	s->agents[1] = (struct ctl_agent_row){ .registered = false, .target = 0 };
	s->n_agents = 2;
	s->fas = calloc(1, sizeof(*s->fas));
	CU_ASSERT_FATAL(s->fas != NULL);
	s->fas[0] = (struct ctl_fa_row){ .sender_id = 7,
					 .addr = 0xC6336407, /* 198.51.100.7 */
					 .hold_s = 30,
					 .last_hello_ms = T0 + 3000,
					 .hellos = 9 };
	// A name from the network: quote, backslash, newline, a control
	// character, a bad UTF-8 byte and a good two-byte sequence.
	strcpy(s->fas[0].name, "fa\"1\\\n\x01\xff\xc3\xa9");
	s->n_fas = 1;
	CU_ASSERT_FATAL(s->n_workers == 1);
	s->workers[0].rx_pkts = 7;
	s->workers[0].verdict[0] = 5; // the stub's one verdict, "none"
}

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

#define CHECK_LINE(text, line)                                         \
	do {                                                           \
		bool found_ = has_line(text, line);                    \
		if (!found_)                                           \
			fprintf(stderr, "\nmissing line: %s\n", line); \
		CU_ASSERT(found_);                                     \
	} while (0)

/* Exposition rules the renderer keeps: every family has one HELP and one
 * TYPE line (HELP first), its samples follow them and nothing else does,
 * counters end in _total. Returns the number of families. */
static unsigned check_families(const char *text)
{
	char fam[128] = "", type[16] = "", seen[512][128];
	unsigned n = 0, bad = 0;

	for (const char *p = text; *p;) {
		const char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		char line[1024], name[128];

		CU_ASSERT_FATAL(len < sizeof(line));
		memcpy(line, p, len);
		line[len] = '\0';
		p += len + (e != NULL);
		if (sscanf(line, "# HELP %127s", name) == 1) {
			for (unsigned i = 0; i < n; i++)
				if (strcmp(seen[i], name) == 0) {
					fprintf(stderr, "\nfamily twice: %s\n", name);
					bad++;
				}
			CU_ASSERT_FATAL(n < 512);
			snprintf(seen[n++], sizeof(seen[0]), "%s", name);
			snprintf(fam, sizeof(fam), "%s", name);
			type[0] = '\0';
		} else if (sscanf(line, "# TYPE %127s %15s", name, type) == 2) {
			bad += strcmp(name, fam) != 0;
			if (strcmp(type, "counter") == 0) {
				size_t l = strlen(name);

				bad += l < 6 || strcmp(name + l - 6, "_total") != 0;
			}
		} else {
			len = strcspn(line, "{ ");
			if (type[0] == '\0' || len != strlen(fam) || strncmp(line, fam, len) != 0) {
				fprintf(stderr, "\nsample outside its family (%s): %s\n", fam,
					line);
				bad++;
			}
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	return n;
}

/* promtool check metrics on text: its exit status (0: clean). */
static int promtool_check(const char *text)
{
	const char *tool = getenv("PROMTOOL") ? getenv("PROMTOOL") : "promtool";
	char path[] = "/tmp/test_ctl_metrics.XXXXXX", cmd[512];
	int fd = mkstemp(path), rc;
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

	CU_ASSERT_FATAL(f != NULL);
	fputs(text, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "'%s' check metrics < '%s'", tool, path);
	rc = system(cmd);
	unlink(path);
	if (rc != 0)
		fprintf(stderr, "\n%s: exit %d (promtool missing? scripts/deps.sh installs it)\n",
			cmd, WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
	return rc;
}

static void test_render(void)
{
	struct fp_flow f1 = flow(0xC000020Au, 1001, 80), f2 = flow(0xC000020Au, 1002, 80);
	struct fp_flow f3 = flow(0xC000020Bu, 1003, 80), stray = flow(0xC000020Cu, 999, 80);
	uint32_t t = FP_TARGET_NONE;
	struct ctl_snap s;
	struct ctl_out o;
	const char *text;

	// Two connections on t1, one on t2 (as the workers report them), and
	// a mid-connection packet nobody holds (reset).
	ctl_sm_conn_new(sm, &f1, 0, T0);
	ctl_sm_conn_new(sm, &f2, 0, T0);
	ctl_sm_conn_new(sm, &f3, 1, T0);
	CU_ASSERT_EQUAL(ctl_sm_interest(sm, &stray, 0x10, 0, T0, &t), CTL_INT_RESET);
	snap_take(&s);
	ctl_out_init(&o, 0);
	ctl_metrics_render(&s, &conf, &o);
	text = ctl_out_text(&o);
	CU_ASSERT_FALSE(o.truncated);

	CU_ASSERT(strncmp(text, "# HELP casalb_info ", 19) == 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(text, "\ncasalb_info{version=\"" CASALB_VERSION "\"} 1\n"));
	CHECK_LINE(text, "casalb_role{role=\"service-manager\"} 1");
	CHECK_LINE(text, "casalb_role{role=\"forwarding-agent\"} 1");
	CHECK_LINE(text, "casalb_uptime_seconds 5.5");
	CHECK_LINE(text, "casalb_vcrt_connections 3");
	CHECK_LINE(text, "# TYPE casalb_vcrt_connections gauge");
	CHECK_LINE(text, "casalb_sm_worker_connections_total 3");
	CHECK_LINE(text, "casalb_sm_interest_total{result=\"reset\"} 1");
	CHECK_LINE(text, "casalb_sm_interest_total{result=\"new\"} 0");
	CHECK_LINE(text, "casalb_target_connections_total{service=\"web\",vip=\"203.0.113.10\","
			 "port=\"80\",target=\"t1\"} 2");
	CHECK_LINE(text, "casalb_target_connections_total{service=\"web\",vip=\"203.0.113.10\","
			 "port=\"80\",target=\"t2\"} 1");
	CHECK_LINE(text, "casalb_target_connections_total{service=\"web\",vip=\"203.0.113.10\","
			 "port=\"443\",target=\"t1\"} 0");
	CHECK_LINE(text, "casalb_target_active_connections{service=\"web\",vip=\"203.0.113.10\","
			 "port=\"80\",target=\"t1\"} 2");
	CHECK_LINE(text, "casalb_target_weight{service=\"web\",vip=\"203.0.113.10\","
			 "port=\"80\",target=\"t1\"} 2");
	// Quote and backslash escaped in a configured name.
	CHECK_LINE(text, "casalb_target_weight{service=\"web\",vip=\"203.0.113.10\","
			 "port=\"443\",target=\"t\\\"3\\\\\"} 1");
	CHECK_LINE(text, "casalb_casa_received_total{type=\"wildcard\"} 3");
	CHECK_LINE(text, "casalb_casa_received_total{type=\"other\"} 0");
	CHECK_LINE(text, "casalb_casa_sent_total{type=\"wildcard\"} 4");
	CHECK_LINE(text, "casalb_casa_sent_total{type=\"delete\"} 0");
	CHECK_LINE(text, "casalb_casa_drops_total{reason=\"auth_bad\"} 2");
	CHECK_LINE(text, "casalb_connection_resets_sent_total 6");
	CHECK_LINE(text, "casalb_agent_drops_total{reason=\"tlv_trunc\"} 1");
	CHECK_LINE(text, "casalb_agent_sessions_accepted_total 8");
	CHECK_LINE(text, "casalb_agent_sessions 2");
	CHECK_LINE(text, "casalb_agent_sessions_registered 1");
	CHECK_LINE(text, "casalb_agent_up{target=\"t1\"} 0");
	CHECK_LINE(text, "casalb_agent_up{target=\"t2\"} 1");
	CHECK_LINE(text, "casalb_workers 1");
	CHECK_LINE(text, "casalb_worker_rx_packets_total{worker=\"0\"} 7");
	CHECK_LINE(text, "casalb_worker_packets_total{worker=\"0\",verdict=\"none\"} 5");
	CHECK_LINE(text, "casalb_affinity_capacity 4096");
	CHECK_LINE(text, "casalb_forwarding_agents 1");
	// Newline escaped; control character and bad byte replaced; é kept.
	CHECK_LINE(text, "casalb_forwarding_agent_hellos_total{sender_id=\"7\","
			 "address=\"198.51.100.7\",name=\"fa\\\"1\\\\\\n??\xc3\xa9\"} 9");
	CHECK_LINE(text, "casalb_forwarding_agent_last_hello_age_seconds{sender_id=\"7\","
			 "address=\"198.51.100.7\",name=\"fa\\\"1\\\\\\n??\xc3\xa9\"} 2.5");
	CHECK_LINE(text, "casalb_forwarding_agent_up{sender_id=\"7\","
			 "address=\"198.51.100.7\",name=\"fa\\\"1\\\\\\n??\xc3\xa9\"} 1");
	CU_ASSERT(check_families(text) >= 60);
	CU_ASSERT_EQUAL(promtool_check(text), 0);
	ctl_snap_free(&s);
	// A port the console added lives only in the SM: still labelled with
	// its service.
	CU_ASSERT_EQUAL_FATAL(ctl_sm_port_add(sm, 0, 8080), 0);
	snap_take(&s);
	ctl_out_reset(&o);
	ctl_metrics_render(&s, &conf, &o);
	CHECK_LINE(ctl_out_text(&o), "casalb_target_connections_total{service=\"web\","
				     "vip=\"203.0.113.10\",port=\"8080\",target=\"t1\"} 0");
	CU_ASSERT_EQUAL(ctl_sm_port_del(sm, 0, 8080), 0);
	ctl_out_free(&o);
	ctl_snap_free(&s);
}

/* A forwarding-agent-only snapshot: no Service Manager families, still
 * valid exposition. */
static void test_render_fa_only(void)
{
	struct ctl_snap s;
	struct ctl_out o;

	snap_take(&s);
	s.roles = CTL_ROLE_FA;
	ctl_out_init(&o, 0);
	ctl_metrics_render(&s, &conf, &o);
	CHECK_LINE(ctl_out_text(&o), "casalb_role{role=\"service-manager\"} 0");
	CU_ASSERT_PTR_NULL(strstr(ctl_out_text(&o), "casalb_vcrt"));
	CU_ASSERT_PTR_NULL(strstr(ctl_out_text(&o), "casalb_target_"));
	CU_ASSERT_PTR_NOT_NULL(strstr(ctl_out_text(&o), "casalb_affinity_entries"));
	check_families(ctl_out_text(&o));
	CU_ASSERT_EQUAL(promtool_check(ctl_out_text(&o)), 0);
	ctl_out_free(&o);
	ctl_snap_free(&s);
}

/* ---- the HTTP server ------------------------------------------------------------------ */

/* A TCP port nobody listens on now (the kernel's pick). */
static uint16_t free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	CU_ASSERT_FATAL(fd >= 0);
	CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static int connect_to(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(0x7F000001) };
	struct timeval tv = { .tv_sec = 5 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

#define REQUESTS 4
#define RESPONSE_MAX (1 << 20)

static const char *const requests[REQUESTS] = {
	"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
	"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nConnection: close\r\n\r\nx=1",
	"HEAD /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
};

struct client {
	uint16_t port;
	char *resp[REQUESTS];
	atomic_bool done;
};

/* One request on its own connection; the whole answer (up to EOF). */
static char *http(uint16_t port, const char *req)
{
	int fd = connect_to(port);
	char *buf = calloc(1, RESPONSE_MAX + 1);
	size_t len = 0;
	ssize_t n;

	if (fd < 0 || !buf || send(fd, req, strlen(req), 0) != (ssize_t)strlen(req)) {
		if (fd >= 0)
			close(fd);
		return buf;
	}
	while (len < RESPONSE_MAX && (n = recv(fd, buf + len, RESPONSE_MAX - len, 0)) > 0)
		len += (size_t)n;
	close(fd);
	return buf;
}

static void *client_main(void *arg)
{
	struct client *k = arg;

	for (unsigned i = 0; i < REQUESTS; i++)
		k->resp[i] = http(k->port, requests[i]);
	atomic_store(&k->done, true);
	return NULL;
}

/* The control loop's part: poll the fd, run when readable or due. */
static void serve_until(struct ctl_metrics *m, atomic_bool *done)
{
	uint64_t end = mono_ms() + 10000;

	while (!atomic_load(done) && mono_ms() < end) {
		struct pollfd p = { .fd = ctl_metrics_fd(m), .events = POLLIN };
		uint64_t now;

		poll(&p, 1, 10);
		now = mono_ms();
		if (p.revents || ctl_metrics_due(m, now))
			ctl_metrics_run(m, now);
	}
}

static unsigned open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	if (!d)
		return 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static struct ctl_view server_view(uint16_t port)
{
	conf.metrics =
		(struct ctl_listener_conf){ .enabled = true, .addr = 0x7F000001, .port = port };
	return (struct ctl_view){ .c = &conf, .sm = sm, .started_ms = mono_ms() };
}

static void test_server(void)
{
	struct client k = { .port = free_port() };
	struct ctl_view v = server_view(k.port);
	unsigned fds = open_fds();
	char err[256] = "", want[128];
	struct ctl_metrics *m = ctl_metrics_create(&v, err, sizeof(err)), *m2;
	pthread_t th;

	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT(ctl_metrics_fd(m) >= 0);
	CU_ASSERT_FALSE(ctl_metrics_due(m, mono_ms()));
	// The port is taken: one clean line.
	m2 = ctl_metrics_create(&v, err, sizeof(err));
	CU_ASSERT_PTR_NULL(m2);
	snprintf(want, sizeof(want), "metrics 127.0.0.1:%u: Address already in use", k.port);
	CU_ASSERT_STRING_EQUAL(err, want);
	ctl_metrics_destroy(m2);

	CU_ASSERT_FATAL(pthread_create(&th, NULL, client_main, &k) == 0);
	serve_until(m, &k.done);
	pthread_join(th, NULL);
	CU_ASSERT_TRUE(atomic_load(&k.done));
	CU_ASSERT(strncmp(k.resp[0], "HTTP/1.1 200 ", 13) == 0);
	CU_ASSERT_PTR_NOT_NULL(
		strcasestr(k.resp[0], "\r\nContent-Type: text/plain; version=0.0.4"));
	CU_ASSERT_PTR_NOT_NULL(strstr(k.resp[0], "\r\n\r\n# HELP casalb_info "));
	CU_ASSERT_PTR_NOT_NULL(strstr(k.resp[0], "\ncasalb_vcrt_connections "));
	CU_ASSERT(strncmp(k.resp[1], "HTTP/1.1 404 ", 13) == 0);
	CU_ASSERT(strncmp(k.resp[2], "HTTP/1.1 405 ", 13) == 0);
	CU_ASSERT_PTR_NOT_NULL(strcasestr(k.resp[2], "\r\nAllow: GET, HEAD\r\n"));
	CU_ASSERT(strncmp(k.resp[3], "HTTP/1.1 200 ", 13) == 0);
	CU_ASSERT_PTR_NULL(strstr(k.resp[3], "# HELP")); // HEAD: no body
	for (unsigned i = 0; i < REQUESTS; i++)
		free(k.resp[i]);

	// An idle client: once accepted, libmicrohttpd's timeout makes the
	// endpoint due although its fd stays quiet.
	int idle = connect_to(k.port);
	uint64_t now = 0;

	CU_ASSERT_FATAL(idle >= 0);
	for (unsigned i = 0; i < 100; i++) {
		struct pollfd p = { .fd = ctl_metrics_fd(m), .events = POLLIN };

		if (poll(&p, 1, 10) > 0) {
			now = mono_ms();
			ctl_metrics_run(m, now);
			break;
		}
	}
	CU_ASSERT(now != 0);
	CU_ASSERT_FALSE(ctl_metrics_due(m, now));
	CU_ASSERT_TRUE(ctl_metrics_due(m, now + 10 * 1000 + 1));
	close(idle);
	ctl_metrics_destroy(m);
	CU_ASSERT_EQUAL(open_fds(), fds); // listening socket and epoll fd closed
}

static void test_disabled(void)
{
	struct ctl_view v = server_view(9);
	char err[64] = "";
	struct ctl_metrics *m;

	conf.metrics.enabled = false;
	m = ctl_metrics_create(&v, err, sizeof(err));
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(ctl_metrics_fd(m), -1);
	CU_ASSERT_FALSE(ctl_metrics_due(m, UINT64_MAX));
	ctl_metrics_run(m, mono_ms()); // nothing to do, nothing breaks
	ctl_metrics_destroy(m);
	ctl_metrics_destroy(NULL);
	CU_ASSERT_EQUAL(ctl_metrics_fd(NULL), -1);
}

int main(void)
{
	CU_pSuite s;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("ctl_out", NULL, NULL);
	CU_add_test(s, "grows, resets, keeps memory", test_out_growth);
	CU_add_test(s, "stops at its limit with one note", test_out_limit);
	s = CU_add_suite("ctl_metrics", suite_init, suite_fini);
	CU_add_test(s, "render: values, families, escaping, promtool", test_render);
	CU_add_test(s, "render: forwarding agent only", test_render_fa_only);
	CU_add_test(s, "server: 200, 404, 405, port in use, timeouts", test_server);
	CU_add_test(s, "server: disabled listener", test_disabled);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_tests_failed() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
