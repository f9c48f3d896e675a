/*
 * test_ctl_sm.c - the Service Manager core (ctl_sm.c) against the fast-path
 * stub: placement by method and live weights (the redbook's 1/3/3 and 1/2/2
 * splits, the paired-connection case of seed 002, stability under a weight
 * change, all-zero weights, readiness, policies), DPT and VCRT bookkeeping,
 * interest verdicts, connection ends and resync, agent timeouts, the
 * workers' tables, and the fast connection reset's bytes.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#include "casa.h"
#include "ctl.h"
#include "fp_stub.h"

#define VIP 0xCB00710Au /* 203.0.113.10 */
#define T0 1000000ULL   /* a start time, ms */

static const char base_conf[] =
	"service_manager = { address = \"198.51.100.1\"; };\n"
	"dataplane = { ports = ( { device = \"ring:t\"; address = \"192.0.2.1\";\n"
	"  gateway_mac = \"02:00:00:00:00:01\"; } ); };\n"
	"targets = (\n"
	" { name = \"t1\"; tunnel = \"198.51.100.11\"; weight = %u; },\n"
	" { name = \"t2\"; tunnel = \"198.51.100.12\"; weight = %u; },\n"
	" { name = \"t3\"; tunnel = \"198.51.100.13\"; weight = %u; } );\n"
	"services = ( { name = \"web\"; vip = \"203.0.113.10\"; ports = [ 80, 443 ];\n"
	"  method = \"%s\"; targets = [ \"t1\", \"t2\", \"t3\" ]; %s } );\n";

static struct ctl_conf conf;
static bool conf_loaded;

/* Load the test configuration with weights w1..w3, method and extra
 * service settings; agents not required unless `agents` says so. */
static struct ctl_sm *sm_new(unsigned w1, unsigned w2, unsigned w3, const char *method,
			     const char *extra, bool agents)
{
	char text[4096];

	if (conf_loaded)
		ctl_conf_free(&conf);
	conf_loaded = false;
	snprintf(text, sizeof(text), base_conf, w1, w2, w3, method, extra ? extra : "");
	if (ctl_conf_load_text(text, "test.conf", &conf, stderr) != 0)
		return NULL;
	conf_loaded = true;
	conf.agents.required = agents;
	fp_stub_reset();
	return ctl_sm_create(&conf, T0);
}

static struct fp_flow flow(uint32_t src, uint16_t sport, uint16_t dport)
{
	return (struct fp_flow){
		.src = src, .dst = VIP, .sport = sport, .dport = dport, .proto = 6
	};
}

/* Place n SYNs from distinct clients; count per target. */
static void place_n(struct ctl_sm *sm, unsigned n, unsigned *count)
{
	static unsigned next; // every call places new flows
	memset(count, 0, 3 * sizeof(*count));
	for (unsigned i = 0; i < n; i++, next++) {
		struct fp_flow f = flow(0xC0000200u + (i % 200), (uint16_t)(1024 + next), 80);
		uint32_t t = FP_TARGET_NONE;

		// Through the interest path, so each placement is recorded (least
		// connections counts them).
		enum ctl_interest v = ctl_sm_interest(sm, &f, 0x02, 0, T0, &t);

		CU_ASSERT_EQUAL(v, CTL_INT_NEW);
		CU_ASSERT_FATAL(t < 3);
		count[t]++;
	}
}

/* Capacities as the agents would report them, applied at the refresh. */
static void loads(struct ctl_sm *sm, uint8_t c1, uint8_t c2, uint8_t c3)
{
	static uint64_t now = T0;

	ctl_sm_agent_load(sm, 0, c1, 0);
	ctl_sm_agent_load(sm, 1, c2, 0);
	ctl_sm_agent_load(sm, 2, c3, 0);
	now += 3600 * 1000; // past the next weight refresh
	ctl_sm_tick(sm, now);
}

static void test_redbook_splits(void)
{
	struct ctl_sm *sm = sm_new(1, 1, 1, "weighted-round-robin", NULL, false);
	unsigned c[3];

	CU_ASSERT_FATAL(sm != NULL);
	// seed 000 Figure 5-29: WLM 01 / 03 / 03.
	loads(sm, 1, 3, 3);
	place_n(sm, 7000, c);
	CU_ASSERT_EQUAL(c[0], 1000);
	CU_ASSERT_EQUAL(c[1], 3000);
	CU_ASSERT_EQUAL(c[2], 3000);
	// Chapter 6's VDPT: WLM 01 / 02 / 02.
	loads(sm, 1, 2, 2);
	place_n(sm, 5000, c);
	CU_ASSERT_EQUAL(c[0], 1000);
	CU_ASSERT_EQUAL(c[1], 2000);
	CU_ASSERT_EQUAL(c[2], 2000);
	ctl_sm_destroy(sm);
}

static bool within(unsigned got, double want, double tol)
{
	return got >= want * (1 - tol) && got <= want * (1 + tol);
}

static void test_methods(void)
{
	static const char *const methods[] = { "weighted-round-robin", "least-connections",
					       "weighted-random", "hash" };
	unsigned c[3];

	for (unsigned m = 0; m < 4; m++) {
		struct ctl_sm *sm = sm_new(1, 2, 3, methods[m], NULL, false);

		CU_ASSERT_FATAL(sm != NULL);
		place_n(sm, 6000, c);
		CU_ASSERT(within(c[0], 1000, 0.15));
		CU_ASSERT(within(c[1], 2000, 0.15));
		CU_ASSERT(within(c[2], 3000, 0.15));
		ctl_sm_destroy(sm);
	}
	// round-robin ignores weights.
	struct ctl_sm *sm = sm_new(1, 2, 3, "round-robin", NULL, false);

	place_n(sm, 6000, c);
	CU_ASSERT(c[0] == 2000 && c[1] == 2000 && c[2] == 2000);
	ctl_sm_destroy(sm);
}

/*
 * Seed 002: clients that open two connections back to back (the first one
 * abandoned) must not see their second connection land on every other
 * target. With 2 equal targets, a plain alternation sends every second
 * connection to the same target.
 */
static void test_paired_connections(void)
{
	static const char *const methods[] = { "round-robin", "weighted-round-robin" };

	for (unsigned m = 0; m < 2; m++) {
		struct ctl_sm *sm = sm_new(1, 1, 0, methods[m], NULL, false);
		unsigned second[3] = { 0 };

		CU_ASSERT_FATAL(sm != NULL);
		for (unsigned i = 0; i < 4000; i++) {
			struct fp_flow a = flow(0xC0000201u + i, 1000, 80);
			struct fp_flow b = flow(0xC0000201u + i, 1001, 80);

			ctl_sm_place(sm, 0, &a);
			second[ctl_sm_place(sm, 0, &b)]++;
		}
		CU_ASSERT(within(second[0], 2000, 0.1));
		CU_ASSERT(within(second[1], 2000, 0.1));
		CU_ASSERT_EQUAL(second[2], 0); // weight 0: never
		ctl_sm_destroy(sm);
	}
}

/* Hash placement: when t3's weight grows, flows move only to t3. */
static void test_stability(void)
{
	struct ctl_sm *sm = sm_new(1, 1, 1, "hash", NULL, false);
	static uint32_t before[3000];
	unsigned moved_other = 0, moved_t3 = 0;

	CU_ASSERT_FATAL(sm != NULL);
	for (unsigned i = 0; i < 3000; i++) {
		struct fp_flow f = flow(0xC6336400u + i, (uint16_t)(2000 + i), 80);

		before[i] = ctl_sm_place(sm, 0, &f);
	}
	// The operator raises t3 (console `target weight t3 3`): applied at once.
	CU_ASSERT_EQUAL(ctl_sm_weight_set(sm, 2, 3), 0);
	for (unsigned i = 0; i < 3000; i++) {
		struct fp_flow f = flow(0xC6336400u + i, (uint16_t)(2000 + i), 80);
		uint32_t t = ctl_sm_place(sm, 0, &f);

		if (t != before[i]) {
			if (t == 2)
				moved_t3++;
			else
				moved_other++;
		}
	}
	CU_ASSERT_EQUAL(moved_other, 0);
	CU_ASSERT(moved_t3 > 500); // 1/3 -> 3/5 of the slots
	ctl_sm_destroy(sm);
}

static void test_zero_weights_uniform(void)
{
	struct ctl_sm *sm = sm_new(1, 1, 1, "weighted-round-robin", NULL, false);
	unsigned c[3];

	CU_ASSERT_FATAL(sm != NULL);
	loads(sm, 0, 0, 0);
	place_n(sm, 3000, c);
	CU_ASSERT(within(c[0], 1000, 0.2) && within(c[1], 1000, 0.2) && within(c[2], 1000, 0.2));
	ctl_sm_destroy(sm);
}

static void test_readiness_and_policy(void)
{
	struct ctl_sm *sm = sm_new(
		1, 1, 1, "weighted-round-robin",
		"policies = ( { source = \"192.0.2.0/25\"; targets = [ \"t1\" ]; } );", false);
	unsigned c[3];

	CU_ASSERT_FATAL(sm != NULL);
	// Clients 192.0.2.0..199: the /25 half goes to t1 only.
	place_n(sm, 2000, c);
	// 128 of the 200 clients are in the /25: 1280 + a third of the other 720.
	CU_ASSERT(c[0] == 1520 && c[1] == 240 && c[2] == 240);
	// t2 stops listening on port 80 (Rdy 0): never chosen there.
	ctl_sm_agent_ready(sm, 1, VIP, 80, 6, 0);
	for (unsigned i = 0; i < 600; i++) {
		struct fp_flow f = flow(0xC00002C8u, (uint16_t)(3000 + i), 80); // 192.0.2.200

		CU_ASSERT(ctl_sm_place(sm, 0, &f) != 1);
	}
	// Nobody ready: no target, and the interest says so.
	ctl_sm_agent_ready(sm, 0, VIP, 80, 6, 0);
	ctl_sm_agent_ready(sm, 2, VIP, 80, 6, 0);
	struct fp_flow f = flow(0xC00002C8u, 5000, 80);
	uint32_t t;

	CU_ASSERT_EQUAL(ctl_sm_interest(sm, &f, 0x02, 0, T0, &t), CTL_INT_NO_TARGET);
	// Port 443 is a separate service port: still fine.
	f.dport = 443;
	CU_ASSERT_EQUAL(ctl_sm_interest(sm, &f, 0x02, 0, T0, &t), CTL_INT_NEW);
	ctl_sm_destroy(sm);
}

static void test_interest_and_vcrt(void)
{
	struct ctl_sm *sm = sm_new(1, 1, 1, "weighted-round-robin", NULL, false);
	struct fp_flow f = flow(0xC0000205u, 40000, 80), g = flow(0xC0000206u, 40000, 80);
	struct ctl_dpt_row rows[16];
	struct ctl_conn_row r;
	uint32_t t, t2;
	uint32_t dt[4];
	struct fp_flow df[4];

	CU_ASSERT_FATAL(sm != NULL);
	CU_ASSERT_EQUAL(ctl_sm_interest(sm, &f, 0x02, 0xC6336402u, T0, &t), CTL_INT_NEW);
	CU_ASSERT(t < 3);
	CU_ASSERT_EQUAL(ctl_sm_interest(sm, &f, 0x10, 0xC6336402u, T0 + 5, &t2), CTL_INT_KNOWN);
	CU_ASSERT_EQUAL(t2, t);
	CU_ASSERT_EQUAL(ctl_sm_interest(sm, &g, 0x18, 0, T0, &t2), CTL_INT_RESET);
	struct fp_flow other = f;

	other.dst = 0xCB00710Bu;
	CU_ASSERT_EQUAL(ctl_sm_interest(sm, &other, 0x02, 0, T0, &t2), CTL_INT_NO_SERVICE);
	CU_ASSERT(ctl_sm_conn_find(sm, &f, &r));
	CU_ASSERT_EQUAL(r.fa, 0xC6336402u);
	CU_ASSERT_EQUAL(r.last_ms, T0 + 5);
	CU_ASSERT_EQUAL(ctl_sm_conn_count(sm), 1);
	// A worker placed g.
	ctl_sm_conn_new(sm, &g, 2, T0);
	CU_ASSERT_EQUAL(ctl_sm_conn_count(sm), 2);
	unsigned n = ctl_sm_dpt_rows(sm, rows, 16);
	uint64_t active = 0, total = 0;

	CU_ASSERT_EQUAL(n, 6); // 2 ports x 3 targets
	for (unsigned i = 0; i < n; i++) {
		active += rows[i].active;
		total += rows[i].total_conn;
	}
	CU_ASSERT(active == 2 && total == 2);
	// Only the owner ends a connection.
	CU_ASSERT_FALSE(ctl_sm_conn_end(sm, (t + 1) % 3, &f));
	CU_ASSERT(ctl_sm_conn_end(sm, t, &f));
	CU_ASSERT_FALSE(ctl_sm_conn_find(sm, &f, NULL));
	CU_ASSERT_EQUAL(ctl_sm_deletes_take(sm, df, dt, 4), 1);
	CU_ASSERT(df[0].src == f.src && df[0].sport == f.sport && dt[0] == t);
	CU_ASSERT_EQUAL(fp_stub.aff_dels, 1);
	n = ctl_sm_dpt_rows(sm, rows, 16);
	active = 0;
	for (unsigned i = 0; i < n; i++)
		active += rows[i].active;
	CU_ASSERT_EQUAL(active, 1);
	CU_ASSERT_EQUAL(ctl_sm_counters(sm)->interest[CTL_INT_RESET], 1);
	ctl_sm_destroy(sm);
}

static void test_resync(void)
{
	struct ctl_sm *sm = sm_new(1, 1, 1, "weighted-round-robin", NULL, false);
	struct fp_flow a = flow(0xC0000210u, 1, 80), b = flow(0xC0000211u, 1, 80);
	struct fp_flow c = flow(0xC0000212u, 1, 80), d = flow(0xC0000213u, 1, 80);
	struct ctl_conn_row r;
	struct fp_flow df[4];
	uint32_t dt[4];

	CU_ASSERT_FATAL(sm != NULL);
	ctl_sm_conn_new(sm, &c, 0, T0); // known, but t1's agent no longer has it
	ctl_sm_conn_new(sm, &b, 1, T0); // recorded on t2, the agent of t1 holds it
	// Placed just before the table began: its SYN may still be on the way.
	ctl_sm_conn_new(sm, &d, 0, T0 + 4000);
	ctl_sm_resync_begin(sm, 0, 77, T0 + 5000);
	ctl_sm_resync_conn(sm, 0, &a, T0 + 5000);
	ctl_sm_resync_conn(sm, 0, &b, T0 + 5000);
	ctl_sm_resync_end(sm, 0, 76); // wrong id: ignored
	CU_ASSERT(ctl_sm_conn_find(sm, &c, NULL));
	ctl_sm_resync_end(sm, 0, 77);
	CU_ASSERT_FALSE(ctl_sm_conn_find(sm, &c, NULL));
	CU_ASSERT(ctl_sm_conn_find(sm, &d, &r) && r.target == 0);
	CU_ASSERT(ctl_sm_conn_find(sm, &a, &r) && r.target == 0);
	CU_ASSERT(ctl_sm_conn_find(sm, &b, &r) && r.target == 0);
	CU_ASSERT_EQUAL(ctl_sm_deletes_take(sm, df, dt, 4), 1);
	CU_ASSERT_EQUAL(ctl_sm_counters(sm)->resync_removed, 1);
	ctl_sm_destroy(sm);
}

static void test_agent_timeout(void)
{
	struct ctl_sm *sm = sm_new(1, 1, 1, "weighted-round-robin", NULL, true);
	uint32_t t;
	struct fp_flow f = flow(0xC0000220u, 9, 80);
	uint64_t to = (uint64_t)conf.agents.timeout_s * 1000;

	CU_ASSERT_FATAL(sm != NULL);
	// Required agents and none registered: nobody is ready.
	CU_ASSERT_EQUAL(ctl_sm_place(sm, 0, &f), FP_TARGET_NONE);
	CU_ASSERT_EQUAL(ctl_sm_agent_register(sm, "t2", &t), CASA_AGENT_ST_OK);
	CU_ASSERT_EQUAL(t, 1);
	CU_ASSERT_EQUAL(ctl_sm_agent_register(sm, "t2", &t), CASA_AGENT_ST_DUPLICATE);
	CU_ASSERT_EQUAL(ctl_sm_agent_register(sm, "nope", &t), CASA_AGENT_ST_UNKNOWN_TARGET);
	ctl_sm_agent_ready(sm, 1, VIP, 80, 6, 2);
	CU_ASSERT_EQUAL(ctl_sm_interest(sm, &f, 0x02, 0, T0, &t), CTL_INT_NEW);
	CU_ASSERT_EQUAL(t, 1);
	// The others' agents never came: down after the timeout.
	ctl_sm_tick(sm, T0 + to + 1);
	CU_ASSERT_FALSE(ctl_sm_target_up(sm, 0));
	CU_ASSERT(ctl_sm_target_up(sm, 1));
	// t2's agent is lost: the target stays up until the timeout passes,
	// then its connections go (and a delete is queued).
	ctl_sm_agent_lost(sm, 1, T0 + to + 10);
	ctl_sm_tick(sm, T0 + to + 20);
	CU_ASSERT(ctl_sm_target_up(sm, 1));
	CU_ASSERT(ctl_sm_conn_find(sm, &f, NULL));
	ctl_sm_tick(sm, T0 + 2 * to + 10);
	CU_ASSERT_FALSE(ctl_sm_target_up(sm, 1));
	CU_ASSERT_FALSE(ctl_sm_conn_find(sm, &f, NULL));
	CU_ASSERT_EQUAL(ctl_sm_counters(sm)->deletes_queued, 1);
	CU_ASSERT_EQUAL(ctl_sm_place(sm, 0, &f), FP_TARGET_NONE);
	// It comes back.
	CU_ASSERT_EQUAL(ctl_sm_agent_register(sm, "t2", &t), CASA_AGENT_ST_OK);
	ctl_sm_agent_ready(sm, 1, VIP, 80, 6, 1);
	CU_ASSERT_EQUAL(ctl_sm_place(sm, 0, &f), 1);
	ctl_sm_destroy(sm);
}

static void test_worker_tables(void)
{
	struct ctl_sm *sm = sm_new(
		1, 2, 3, "weighted-round-robin",
		"policies = ( { source = \"192.0.2.0/25\"; targets = [ \"t3\" ]; } );", false);
	struct fp_tables_desc d;
	unsigned c[3] = { 0 };

	CU_ASSERT_FATAL(sm != NULL);
	CU_ASSERT(ctl_sm_tables_dirty(sm));
	CU_ASSERT_EQUAL_FATAL(ctl_sm_tables(sm, &d), 0);
	CU_ASSERT_FALSE(ctl_sm_tables_dirty(sm));
	CU_ASSERT_EQUAL(d.n_services, 2);
	CU_ASSERT_EQUAL(d.n_targets, 3);
	CU_ASSERT_EQUAL(d.services[0].sel_mode, FP_SEL_SEQUENCE);
	CU_ASSERT(d.services[0].n_sel >= 256);
	for (uint32_t i = 0; i < d.services[0].n_sel; i++)
		c[d.services[0].sel[i]]++;
	CU_ASSERT(c[0] * 2 == c[1] && c[0] * 3 == c[2]);
	CU_ASSERT_EQUAL(d.services[0].n_policies, 1);
	for (uint32_t i = 0; i < d.services[0].policies[0].n_sel; i++)
		CU_ASSERT_EQUAL(d.services[0].policies[0].sel[i], 2);
	ctl_tables_free(&d);
	// A target going not-ready makes the tables dirty again.
	ctl_sm_agent_ready(sm, 2, VIP, 80, 6, 0);
	CU_ASSERT(ctl_sm_tables_dirty(sm));
	CU_ASSERT_EQUAL_FATAL(ctl_sm_tables(sm, &d), 0);
	CU_ASSERT_EQUAL(d.services[0].policies[0].n_sel, 0); // its clients get a reset
	for (uint32_t i = 0; i < d.services[0].n_sel; i++)
		CU_ASSERT(d.services[0].sel[i] != 2);
	ctl_tables_free(&d);
	ctl_sm_destroy(sm);
}

static uint16_t csum(const uint8_t *p, size_t n, uint32_t acc)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		acc += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (acc >> 16)
		acc = (acc & 0xFFFF) + (acc >> 16);
	return (uint16_t)acc;
}

static void test_reset_bytes(void)
{
	// 192.0.2.5:40000 -> 203.0.113.10:80, SYN seq 0x01020304, 4 bytes data.
	uint8_t syn[44] = { 0x45, 0,   0,    44,   0,    1,    0x40, 0, 64, 6, 0,   0,   192, 0,  2,
			    5,    203, 0,    113,  10,   0x9c, 0x40, 0, 80, 1, 2,   3,   4,   0,  0,
			    0,    0,   0x50, 0x02, 0xff, 0xff, 0,    0, 0,  0, 'd', 'a', 't', 'a' };
	uint8_t out[64];
	static const uint8_t want_tcp[20] = { 0, 80, 0x9c, 0x40, 0,    0,    0, 0,
					      1, 2,  3,    9,    0x50, 0x14, 0, 0 };

	CU_ASSERT_EQUAL_FATAL(ctl_rst_build(syn, sizeof(syn), out, sizeof(out)), 40);
	CU_ASSERT(memcmp(out + 12, syn + 16, 4) == 0 && memcmp(out + 16, syn + 12, 4) == 0);
	CU_ASSERT_EQUAL(csum(out, 20, 0), 0xFFFF);
	// SEQ 0, ACK = 0x01020304 + 4 data + 1 SYN, RST|ACK.
	CU_ASSERT(memcmp(out + 20, want_tcp, 16) == 0);
	uint32_t pseudo = (uint32_t)(out[12] << 8 | out[13]) + (uint32_t)(out[14] << 8 | out[15]) +
			  (uint32_t)(out[16] << 8 | out[17]) + (uint32_t)(out[18] << 8 | out[19]) +
			  6 + 20;

	CU_ASSERT_EQUAL(csum(out + 20, 20, pseudo), 0xFFFF);
	// An ACK: SEQ = its ACK, RST only.
	syn[33] = 0x10;
	memcpy(syn + 28, "\xaa\xbb\xcc\xdd", 4);
	CU_ASSERT_EQUAL(ctl_rst_build(syn, sizeof(syn), out, sizeof(out)), 40);
	CU_ASSERT(memcmp(out + 24, "\xaa\xbb\xcc\xdd", 4) == 0 && out[33] == 0x04);
	// Never a reset for a reset, a fragment, UDP, or a short packet.
	syn[33] = 0x04;
	CU_ASSERT_EQUAL(ctl_rst_build(syn, sizeof(syn), out, sizeof(out)), 0);
	syn[33] = 0x10;
	syn[7] = 8; // fragment offset 64
	CU_ASSERT_EQUAL(ctl_rst_build(syn, sizeof(syn), out, sizeof(out)), 0);
	syn[7] = 0;
	syn[9] = 17;
	CU_ASSERT_EQUAL(ctl_rst_build(syn, sizeof(syn), out, sizeof(out)), 0);
	syn[9] = 6;
	CU_ASSERT_EQUAL(ctl_rst_build(syn, 30, out, sizeof(out)), 0);
}

static void test_rate(void)
{
	struct ctl_rate r = { .rate = 10, .tokens = 10, .last_ms = 0 };
	unsigned ok = 0;

	for (int i = 0; i < 100; i++)
		ok += ctl_rate_take(&r, 0);
	CU_ASSERT_EQUAL(ok, 10);
	CU_ASSERT_FALSE(ctl_rate_take(&r, 50));
	CU_ASSERT(ctl_rate_take(&r, 100)); // 10/s: one token per 100 ms
	r.rate = 0;
	CU_ASSERT_FALSE(ctl_rate_take(&r, 100000));
}

/* Live ports against another service's draining port, and a resync that
 * must leave UDP flows (agents list TCP only) alone. */
static void test_live_port_edges(void)
{
	struct ctl_sm *sm = sm_new(
		1, 1, 1, "weighted-round-robin",
		"}, { name = \"mail\"; vip = \"203.0.113.10\"; ports = [ 25 ]; targets = [ \"t1\" ];"
		" }, { name = \"dns\"; vip = \"203.0.113.20\"; protocol = \"udp\"; ports = [ 53 ];"
		" targets = [ \"t1\" ];",
		false);
	struct fp_flow held = flow(0xC0000220u, 1, 443), tcp = flow(0xC0000221u, 1, 80);
	struct fp_flow udp = {
		.src = 0xC0000222u, .dst = 0xCB007114u, .sport = 5353, .dport = 53, .proto = 17
	};

	CU_ASSERT_FATAL(sm != NULL);
	// web's 443 deleted while a connection holds it: it drains, still
	// published, so mail may not take 443 until it ended.
	ctl_sm_conn_new(sm, &held, 0, T0);
	CU_ASSERT_EQUAL(ctl_sm_port_del(sm, 0, 443), 0);
	CU_ASSERT_EQUAL(ctl_sm_port_add(sm, 1, 443), -EBUSY);
	CU_ASSERT_EQUAL(ctl_sm_port_add(sm, 1, 80), -EADDRINUSE);
	CU_ASSERT(ctl_sm_conn_end(sm, 0, &held));
	CU_ASSERT_EQUAL(ctl_sm_port_add(sm, 1, 443), 0);
	// t1's agent resyncs with an empty table: its TCP connection goes, the
	// UDP flow stays (it ends by idle time).
	ctl_sm_conn_new(sm, &tcp, 0, T0);
	ctl_sm_conn_new(sm, &udp, 0, T0);
	ctl_sm_resync_begin(sm, 0, 9, T0 + 10000);
	ctl_sm_resync_end(sm, 0, 9);
	CU_ASSERT_FALSE(ctl_sm_conn_find(sm, &tcp, NULL));
	CU_ASSERT(ctl_sm_conn_find(sm, &udp, NULL));
	ctl_sm_destroy(sm);
}

/* Whether target's SERVICES list VIP:port (TCP), and how often. */
static unsigned services_list(const struct ctl_sm *sm, uint32_t target, uint16_t port)
{
	struct fp_flow f[16];
	unsigned n = ctl_sm_target_services(sm, target, f, 16), seen = 0;

	for (unsigned i = 0; i < n; i++)
		seen += f[i].dst == VIP && f[i].dport == port && f[i].proto == 6;
	return seen;
}

/* A deleted port's connections keep working until they end: the agents
 * are still told of the port while it drains (so a resync lists its
 * connections instead of dropping them), once even when it was added
 * again, and a new SERVICES goes out when the last one ends. */
static void test_draining_port_listed(void)
{
	struct ctl_sm *sm = sm_new(1, 1, 1, "weighted-round-robin", NULL, false);
	struct fp_flow held = flow(0xC0000230u, 1, 443);
	uint64_t gen;

	CU_ASSERT_FATAL(sm != NULL);
	ctl_sm_conn_new(sm, &held, 0, T0);
	CU_ASSERT_EQUAL(services_list(sm, 0, 443), 1);
	gen = ctl_sm_sp_generation(sm);
	CU_ASSERT_EQUAL(ctl_sm_port_del(sm, 0, 443), 0);
	CU_ASSERT_NOT_EQUAL(ctl_sm_sp_generation(sm), gen);
	CU_ASSERT_EQUAL(services_list(sm, 0, 443), 1);
	CU_ASSERT_EQUAL(services_list(sm, 0, 80), 1);
	// t1's agent lists the connection in a resync: it stays.
	ctl_sm_resync_begin(sm, 0, 5, T0 + 10000);
	ctl_sm_resync_conn(sm, 0, &held, T0 + 10000);
	ctl_sm_resync_end(sm, 0, 5);
	CU_ASSERT(ctl_sm_conn_find(sm, &held, NULL));
	// Added again while it drains: listed once.
	CU_ASSERT_EQUAL(ctl_sm_port_add(sm, 0, 443), 0);
	CU_ASSERT_EQUAL(services_list(sm, 0, 443), 1);
	CU_ASSERT_EQUAL(ctl_sm_port_del(sm, 0, 443), 0);
	// The last connection ends: the port leaves SERVICES, which go again.
	gen = ctl_sm_sp_generation(sm);
	CU_ASSERT(ctl_sm_conn_end(sm, 0, &held));
	CU_ASSERT_NOT_EQUAL(ctl_sm_sp_generation(sm), gen);
	CU_ASSERT_EQUAL(services_list(sm, 0, 443), 0);
	CU_ASSERT_EQUAL(services_list(sm, 0, 80), 1);
	ctl_sm_destroy(sm);
}

int main(void)
{
	CU_pSuite s;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	s = CU_add_suite("ctl_sm", NULL, NULL);
	CU_add_test(s, "redbook splits 1/3/3 and 1/2/2 from agent loads", test_redbook_splits);
	CU_add_test(s, "methods follow the weights", test_methods);
	CU_add_test(s, "paired connections (seed 002)", test_paired_connections);
	CU_add_test(s, "hash placement stable under a weight change", test_stability);
	CU_add_test(s, "all weights zero: uniform among ready", test_zero_weights_uniform);
	CU_add_test(s, "readiness and client-subnet policy", test_readiness_and_policy);
	CU_add_test(s, "interest verdicts, DPT and VCRT", test_interest_and_vcrt);
	CU_add_test(s, "connection-table resync", test_resync);
	CU_add_test(s, "agent registration and timeout", test_agent_timeout);
	CU_add_test(s, "workers' selection tables", test_worker_tables);
	CU_add_test(s, "fast connection reset bytes", test_reset_bytes);
	CU_add_test(s, "reset rate limit", test_rate);
	CU_add_test(s, "live ports against draining ones; resync spares UDP", test_live_port_edges);
	CU_add_test(s, "a draining port stays in SERVICES until its last connection",
		    test_draining_port_listed);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_tests_failed() + CU_get_number_of_suites_failed();
	if (conf_loaded)
		ctl_conf_free(&conf);
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
