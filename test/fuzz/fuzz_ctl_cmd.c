/*
 * fuzz_ctl_cmd.c - libFuzzer target for the admin console's commands
 * (ctl_cmd_exec: the parser, every display, trace and change) on a Service
 * Manager built from a fixed configuration, against the fast-path stub.
 *
 * The input is up to 32 lines, each run at the enable level, on an SM
 * created afresh for the input (so inputs do not depend on each other).
 * Properties, each a __builtin_trap() when broken: a failing command
 * starts its output with "% "; output is text ending in a newline (or
 * nothing); after every change the workers' tables still build and the
 * stub accepts them.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "fp_stub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* connections = 1024 keeps each fresh SM small; the file name does not
 * exist, so `reload` takes its error path without reading anything. */
static const char conf_text[] =
	"service_manager = { address = \"198.51.100.1\"; connections = 1024; };\n"
	"dataplane = { affinity_capacity = 1024; ports = ( { device = \"ring:t\";\n"
	"  address = \"192.0.2.1\"; gateway_mac = \"02:00:00:00:00:01\"; } ); };\n"
	"targets = (\n"
	" { name = \"t1\"; tunnel = \"192.0.2.21\"; weight = 1; },\n"
	" { name = \"t2\"; tunnel = \"192.0.2.22\"; weight = 2; },\n"
	" { name = \"t3\"; dispatch = \"l2\"; mac = \"02:00:00:00:00:13\"; weight = 3; } );\n"
	"services = ( { name = \"web\"; vip = \"203.0.113.10\"; ports = [ 80, 443 ];\n"
	"  targets = [ \"t1\", \"t2\", \"t3\" ];\n"
	"  policies = ( { source = \"198.51.100.0/24\"; targets = [ \"t2\" ]; } ); },\n"
	" { name = \"dns\"; vip = \"203.0.113.20\"; protocol = \"udp\"; ports = [ 53, 0 ];\n"
	"  method = \"hash\"; targets = [ \"t1\", \"t2\" ]; } );\n";

static void check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

static FILE *sink(void)
{
	static FILE *null;

	if (!null)
		null = fopen("/dev/null", "w");
	return null;
}

static void publish(struct ctl_sm *sm)
{
	struct fp_tables_desc d;
	char err[128];

	check(ctl_sm_tables(sm, &d) == 0);
	check(fp_publish(&d, err, sizeof(err)) == 0);
	ctl_tables_free(&d);
}

/* A connection or two so the VCRT, drains and traces have something. */
static void seed(struct ctl_sm *sm)
{
	struct fp_flow f = {
		.src = 0xC6336407, .dst = 0xCB00710A, .sport = 40000, .dport = 80, .proto = 6
	};
	uint32_t t;

	ctl_sm_interest(sm, &f, 0x02, 0, 1000, &t);
	f.sport = 40001;
	ctl_sm_interest(sm, &f, 0x02, 0x01010102, 1000, &t);
	fp_affinity_add(&f, 1, 900);
}

static void run_line(struct ctl_view *v, const char *line, uint64_t now)
{
	struct ctl_cmd_origin o = { .who = "fuzz", .enabled = true, .log = sink() };
	struct ctl_out out;
	const char *text;
	size_t n;
	int rc;

	ctl_out_init(&out, 1 << 20);
	rc = ctl_cmd_exec(v, line, &o, now, &out);
	text = ctl_out_text(&out);
	n = strlen(text);
	check(n == out.len);
	check(n == 0 || text[n - 1] == '\n');
	check(rc >= 0 || strncmp(text, "% ", 2) == 0);
	ctl_out_free(&out);
	if (ctl_sm_tables_dirty(v->sm)) // a change: its tables must build
		publish(v->sm);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ctl_conf conf;
	static bool loaded;
	struct ctl_view v;
	char *text, *line, *save = NULL;
	unsigned lines = 0;

	if (!loaded) {
		check(ctl_conf_load_text(conf_text, "/nonexistent/fuzz.conf", &conf, sink()) == 0);
		loaded = true;
	}
	if (size > 8192)
		return 0;
	text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	fp_stub_reset();
	v = (struct ctl_view){ .c = &conf, .sm = ctl_sm_create(&conf, 1000), .started_ms = 0 };
	check(v.sm != NULL);
	seed(v.sm);
	publish(v.sm);
	for (line = strtok_r(text, "\n", &save); line && lines < 32;
	     line = strtok_r(NULL, "\n", &save), lines++)
		run_line(&v, line, 2000 + lines);
	ctl_sm_destroy(v.sm);
	free(text);
	return 0;
}
