/*
 * casalb.c - the appliance's main program.
 *
 *   casalb -n [-v] FILE   check a configuration ("configuration OK"), -v
 *                         prints it normalised
 *   casalb [-v] -c FILE   run: the fast path from the configuration's static
 *                         services and targets
 *
 * Until the Service Manager exists (issue 4), the control thread publishes
 * the configured services with weighted selection tables, lets the workers
 * place connections themselves, and answers events by counting them:
 * interest packets (flows this box never saw) are dropped and counted, as
 * are SYNs for a service with no target. On SIGINT or SIGTERM it stops the
 * workers and prints the counters; SIGUSR1 prints them while running.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

struct counters {
	uint64_t new_conn, interest, arp, no_target;
};

static void print_stats(const struct counters *k)
{
	struct fp_table_stats t;

	fp_affinity_stats(&t);
	printf("affinities %" PRIu64 " of %" PRIu64 " (inserts %" PRIu64 ", expiries %" PRIu64
	       ", full %" PRIu64 ")\n",
	       t.count, t.capacity, t.inserts, t.expiries, t.full);
	printf("events new_conn %" PRIu64 " interest %" PRIu64 " arp %" PRIu64 " no_target %" PRIu64
	       "\n",
	       k->new_conn, k->interest, k->arp, k->no_target);
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

/* One turn of the control loop: events from workers, reclamation. */
static void control_turn(struct counters *k)
{
	struct fp_event ev[64];
	unsigned n = fp_event_poll(ev, 64);

	for (unsigned i = 0; i < n; i++) {
		switch (ev[i].type) {
		case FP_EV_NEW_CONN:
			k->new_conn++;
			break;
		case FP_EV_INTEREST:
			k->interest++;
			break;
		case FP_EV_ARP:
			k->arp++;
			break;
		default:
			k->no_target++;
			break;
		}
		fp_event_release(&ev[i]);
	}
	fp_reclaim();
	if (n == 0)
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
}

static int run(const struct ctl_conf *c, const char *argv0)
{
	struct fp_tables_desc d;
	struct counters k = { 0 };
	char err[512] = "";
	int rc;

	if (fp_init(&c->fp, argv0, err, sizeof(err)) != 0) {
		fprintf(stderr, "casalb: %s\n", err);
		return 1;
	}
	if (ctl_tables_build(c, &d) != 0 || fp_publish(&d, err, sizeof(err)) != 0) {
		fprintf(stderr, "casalb: tables: %s\n", err[0] ? err : "out of memory");
		fp_fini();
		return 1;
	}
	ctl_tables_free(&d);
	rc = fp_start();
	if (rc != 0) {
		fprintf(stderr,
			"casalb: cannot start workers: %s (lcores \"%s\" must name at least"
			" two cores)\n",
			strerror(-rc), c->fp.lcores);
		fp_fini();
		return 1;
	}
	printf("casalb: running %u workers, %u services, %u targets\n", fp_worker_count(),
	       c->n_services, c->n_targets);
	fflush(stdout);
	while (!stopping) {
		control_turn(&k);
		if (dump_requested) {
			dump_requested = 0;
			print_stats(&k);
		}
	}
	fp_stop();
	control_turn(&k);
	print_stats(&k);
	fp_fini();
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
