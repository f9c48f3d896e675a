/*
 * casalb.c - the appliance's main program.
 *
 *   casalb -n [-v] FILE   check a configuration ("configuration OK"), -v
 *                         prints it normalised
 *   casalb [-v] -c FILE   run the appliance: fast-path workers and, on the
 *                         main lcore, the Service Manager (CASA endpoint,
 *                         agent protocol server, placement, tables)
 *
 * On SIGINT or SIGTERM it stops the workers and prints the counters;
 * SIGUSR1 prints them while running.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <time.h>

#include "casa.h"

#include "ctl.h"

static volatile sig_atomic_t stopping, dump_requested;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		dump_requested = 1;
	else
		stopping = 1;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: casalb -n [-v] FILE      check a configuration\n"
		   "       casalb [-v] -c FILE      run the appliance\n");
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint32_t wall_s(void)
{
	return (uint32_t)time(NULL);
}

/* The running appliance: the fast path plus the Service Manager. */
struct app {
	const struct ctl_conf *c;
	struct ctl_sm *sm;
	struct ctl_casa *casa;
	struct ctl_agent *agent;
	struct ctl_view view; /* what the console and metrics read and change */
	struct ctl_console *console;
	struct ctl_metrics *metrics;
	uint64_t last_publish_ms, last_tick_ms;
};

static void print_stats(const struct app *a)
{
	const struct ctl_sm_counters *k = ctl_sm_counters(a->sm);
	const struct ctl_casa_counters *x = ctl_casa_counters(a->casa);
	const struct ctl_agent_counters *g = ctl_agent_counters(a->agent);
	struct fp_table_stats t;

	fp_affinity_stats(&t);
	printf("affinities %" PRIu64 " of %" PRIu64 " (inserts %" PRIu64 ", expiries %" PRIu64
	       ", full %" PRIu64 ")\n",
	       t.count, t.capacity, t.inserts, t.expiries, t.full);
	printf("vcrt %" PRIu64 " of %" PRIu32 " (full %" PRIu64 ") worker_conns %" PRIu64
	       " conn_ends %" PRIu64 " targets_down %" PRIu64 " publishes %" PRIu64 "\n",
	       ctl_sm_conn_count(a->sm), a->c->sm.connections, k->vcrt_full, k->worker_conns,
	       k->conn_ends, k->targets_down, k->publishes);
	printf("interest");
	for (int v = 0; v < CTL_INT__COUNT; v++)
		printf(" %s=%" PRIu64, ctl_sm_interest_name((enum ctl_interest)v), k->interest[v]);
	printf("\ncasa rx %" PRIu64 " wildcards_sent %" PRIu64 " fixed_sent %" PRIu64
	       " deletes_sent %" PRIu64 " resets_sent %" PRIu64 " resets_limited %" PRIu64 "\n",
	       x->rx, x->wildcards_sent, x->fixed_sent, x->deletes_sent, x->resets_sent,
	       x->resets_limited);
	printf("casa drops");
	for (int e = 1; e < CASA_E__COUNT; e++)
		if (x->drops[e])
			printf(" %s=%" PRIu64, casa_err_reason((enum casa_err)e), x->drops[e]);
	printf("\nagents accepted %" PRIu64 " registered %" PRIu64 " refused %" PRIu64
	       " timeouts %" PRIu64 " framing_errors %" PRIu64 "\n",
	       g->accepted, g->registered, g->refused, g->timeouts, g->framing_errors);
	for (unsigned w = 0; w < fp_worker_count(); w++) {
		struct fp_worker_stats s;

		if (fp_worker_stats_read(w, &s) != 0)
			continue;
		printf("worker %u rx %" PRIu64 " tx %" PRIu64, w, s.rx_pkts, s.tx_pkts);
		for (unsigned v = 1; v < fp_verdict_count(); v++)
			if (s.verdict[v])
				printf(" %s=%" PRIu64, fp_verdict_label(v), s.verdict[v]);
		printf("\n");
	}
	fflush(stdout);
}

static int publish(struct app *a, uint64_t now)
{
	struct fp_tables_desc d;
	char err[256] = "";
	int rc = ctl_sm_tables(a->sm, &d);

	if (rc == 0) {
		rc = fp_publish(&d, err, sizeof(err));
		ctl_tables_free(&d);
	}
	if (rc != 0)
		fprintf(stderr, "casalb: publish: %s\n", err[0] ? err : strerror(-rc));
	a->last_publish_ms = now;
	return rc;
}

/* One turn of the control loop: sockets, worker events, timers, tables.
 * Every step is bounded, so no peer can starve the others. */
static void control_turn(struct app *a)
{
	struct pollfd pfd[4] = { { .fd = ctl_casa_fd(a->casa), .events = POLLIN },
				 { .fd = ctl_agent_fd(a->agent), .events = POLLIN },
				 { .fd = ctl_console_fd(a->console), .events = POLLIN },
				 { .fd = ctl_metrics_fd(a->metrics), .events = POLLIN } };
	struct fp_event ev[64];
	unsigned n = 0, rounds = 0;
	uint64_t now;
	uint32_t wall;

	poll(pfd, 4, 1); // descriptors of -1 are skipped
	now = mono_ms();
	wall = wall_s();
	// The workers' events first: a worker queues a connection's NEW_CONN
	// before it forwards the SYN, so whatever an agent says of that
	// connection (its end, on a fast short connection while this thread
	// was off the CPU) is read after the SM has recorded it, not before,
	// where the end would find nothing and the entry would stay until
	// the next resync.
	do {
		n = fp_event_poll(ev, 64);
		for (unsigned i = 0; i < n; i++)
			ctl_casa_local_event(a->casa, &ev[i], now);
	} while (n == 64 && ++rounds < 16);
	if (pfd[0].revents)
		ctl_casa_input(a->casa, now, wall);
	if (pfd[1].revents)
		ctl_agent_run(a->agent, now, wall);
	if (pfd[2].revents)
		ctl_console_run(a->console, now);
	// libmicrohttpd also runs when its timeout is due (idle connections).
	if (pfd[3].revents || ctl_metrics_due(a->metrics, now))
		ctl_metrics_run(a->metrics, now);
	ctl_casa_flush(a->casa);
	if (now - a->last_tick_ms >= 100) {
		ctl_sm_tick(a->sm, now);
		ctl_agent_tick(a->agent, now, wall);
		a->last_tick_ms = now;
	}
	ctl_casa_tick(a->casa, now, wall);
	// Batch table changes: at most one publish every 50 ms.
	if (ctl_sm_tables_dirty(a->sm) && now - a->last_publish_ms >= 50)
		publish(a, now);
	fp_reclaim();
}

static int start(struct app *a, const char *argv0)
{
	const struct ctl_conf *c = a->c;
	char err[512] = "";
	uint64_t now = mono_ms();

	if (fp_init(&c->fp, argv0, err, sizeof(err)) != 0) {
		fprintf(stderr, "casalb: %s\n", err);
		return -1;
	}
	a->sm = ctl_sm_create(c, now);
	if (!a->sm) {
		fprintf(stderr, "casalb: service manager: %s\n", strerror(errno));
		return -1;
	}
	if (publish(a, now) != 0)
		return -1;
	a->casa = ctl_casa_create(c, a->sm, now, wall_s(), err, sizeof(err));
	if (!a->casa) {
		fprintf(stderr, "casalb: %s\n", err);
		return -1;
	}
	a->agent = ctl_agent_create(c, a->sm, ctl_casa_auth(a->casa), ctl_casa_signer(a->casa),
				    wall_s(), err, sizeof(err));
	if (!a->agent) {
		fprintf(stderr, "casalb: %s\n", err);
		return -1;
	}
	a->view = (struct ctl_view){
		.c = c, .sm = a->sm, .casa = a->casa, .agent = a->agent, .started_ms = now
	};
	a->console = ctl_console_create(&a->view, err, sizeof(err));
	if (!a->console) {
		fprintf(stderr, "casalb: console: %s\n", err);
		return -1;
	}
	a->metrics = ctl_metrics_create(&a->view, err, sizeof(err));
	if (!a->metrics) {
		fprintf(stderr, "casalb: metrics: %s\n", err);
		return -1;
	}
	int rc = fp_start();

	if (rc != 0) {
		fprintf(stderr,
			"casalb: cannot start workers: %s (lcores \"%s\" must name at least"
			" two cores)\n",
			strerror(-rc), c->fp.lcores);
		return -1;
	}
	return 0;
}

static void stop(struct app *a)
{
	ctl_metrics_destroy(a->metrics);
	ctl_console_destroy(a->console);
	ctl_agent_destroy(a->agent);
	ctl_casa_destroy(a->casa);
	fp_fini();
	ctl_sm_destroy(a->sm);
}

static int run(const struct ctl_conf *c, const char *argv0)
{
	struct app a = { .c = c };
	char addr[16], aaddr[16];

	if (!(c->roles & CTL_ROLE_SM)) {
		fprintf(stderr, "casalb: roles: a forwarding agent without a service manager"
				" is not supported yet\n");
		return 1;
	}
	if (start(&a, argv0) != 0) {
		stop(&a);
		return 1;
	}
	printf("casalb: running %u workers, %u services, %u targets; CASA %s:%u, agents %s:%u\n",
	       fp_worker_count(), c->n_services, c->n_targets,
	       casa_ip_format(c->sm.addr, addr, sizeof(addr)), c->sm.port,
	       casa_ip_format(c->agents.addr, aaddr, sizeof(aaddr)), c->agents.port);
	fflush(stdout);
	while (!stopping) {
		control_turn(&a);
		if (dump_requested) {
			dump_requested = 0;
			print_stats(&a);
		}
	}
	fp_stop();
	control_turn(&a);
	print_stats(&a);
	stop(&a);
	return 0;
}

int main(int argc, char **argv)
{
	const char *file = NULL;
	bool check = false, verbose = false;
	struct ctl_conf c;
	int opt, rc;

	while ((opt = getopt(argc, argv, "nvc:h")) != -1) {
		switch (opt) {
		case 'n':
			check = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'c':
			file = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (check && !file && optind < argc)
		file = argv[optind++];
	if (!file || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (ctl_conf_load(file, &c, stderr) != 0)
		return 1;
	if (check) {
		if (verbose)
			ctl_conf_print(&c, stdout);
		printf("configuration OK\n");
		ctl_conf_free(&c);
		return 0;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGUSR1, on_signal);
	rc = run(&c, argv[0]);
	ctl_conf_free(&c);
	return rc;
}
