/*
 * bench_agent.c - the target host's GRE decapsulation (agent_gre.bpf.c) in
 * nanoseconds per packet on one core, through BPF_PROG_TEST_RUN:
 *   decap     a client's SYN inside keyed GRE, addressed to this host's
 *             tunnel endpoint and a configured VIP: the whole parse, the
 *             outer checksum and bpf_skb_adjust_room;
 *   pass      the same SYN arriving plain (layer-2 dispatch, or any other
 *             IPv4 traffic the target receives): what the program costs
 *             every packet it leaves alone;
 *   baseline  a two-instruction tc program (return TC_ACT_OK), so the
 *             figures above can be read net of the test-run harness.
 * Each packet is one test run (repeat = 1): the program rewrites the frame,
 * so the kernel's own repeat would decapsulate once and then time the
 * pass path. The kernel measures each run alone (not the skb it builds
 * around it); each figure is the fastest of seven rounds' means, the cases
 * taking turns within a round. Then the program's size as the kernel
 * holds it.
 *
 * Checks, so that the figures measure what they name: decap returns
 * TC_ACT_OK with exactly the inner frame, pass returns TC_ACT_UNSPEC with
 * the frame unchanged. A failed check or a refused load exits 1 (the
 * harness broke); times never fail. Not root: exit 77 (meson's skip; the
 * agent suite runs it --quick for its checks).
 *
 * usage: bench_agent [--quick]   (root: CAP_BPF and CAP_NET_ADMIN)
 * Prints progress to stderr and key=value figures last on stdout.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

/* 192.0.2.2 (the LB) -> 192.0.2.21 (this target), GRE key 1001 (K bit),
 * around the client's SYN 203.0.113.130:40000 -> 203.0.113.10:80 (the
 * VIP). All checksums right: the decap check below fails on a wrong outer
 * one (the program would pass the frame as pass_ip_csum). */
static const uint8_t gre_syn[] = {
	0x02, 0xca, 0x5a, 0x00, 0x00, 0x02, 0x02, 0xca, 0x5a, 0x00, 0x00, 0x01, 0x08, 0x00,
	0x45, 0x00, 0x00, 0x44, 0x12, 0x34, 0x40, 0x00, 0x40, 0x2f, 0xa4, 0x3f, 0xc0, 0x00,
	0x02, 0x02, 0xc0, 0x00, 0x02, 0x15, 0x20, 0x00, 0x08, 0x00, 0x00, 0x00, 0x03, 0xe9,
	0x45, 0x00, 0x00, 0x28, 0x43, 0x21, 0x40, 0x00, 0x40, 0x06, 0x7f, 0x21, 0xcb, 0x00,
	0x71, 0x82, 0xcb, 0x00, 0x71, 0x0a, 0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0xfa, 0xf0, 0x9f, 0xd2, 0x00, 0x00,
};

/* The same SYN without the outer IPv4 and GRE headers: what decap must
 * leave, and the plain packet of the pass case. */
static const uint8_t plain_syn[] = {
	0x02, 0xca, 0x5a, 0x00, 0x00, 0x02, 0x02, 0xca, 0x5a, 0x00, 0x00, 0x01, 0x08, 0x00,
	0x45, 0x00, 0x00, 0x28, 0x43, 0x21, 0x40, 0x00, 0x40, 0x06, 0x7f, 0x21, 0xcb, 0x00,
	0x71, 0x82, 0xcb, 0x00, 0x71, 0x0a, 0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x50, 0x02, 0xfa, 0xf0, 0x9f, 0xd2, 0x00, 0x00,
};

#define ENDPOINT 0xc0000215u /* 192.0.2.21 */
#define VIP 0xcb00710au      /* 203.0.113.10 */
#define KEY 1001u

struct run_result {
	int retval;
	uint32_t out_len;
	uint8_t out[128];
	uint64_t ns; /* the kernel's time for this run */
};

static int run_once(int prog_fd, const uint8_t *in, size_t n, struct run_result *r)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = in, .data_size_in = (uint32_t)n,
		    .data_out = r->out, .data_size_out = sizeof(r->out), .repeat = 1);
	int rc = bpf_prog_test_run_opts(prog_fd, &o);

	r->retval = (int)o.retval;
	r->out_len = o.data_size_out;
	r->ns = o.duration;
	return rc;
}

/* One run checked: the action, and the exact frame out. */
static bool run_checked(const char *name, int prog_fd, const uint8_t *in, size_t n, int action,
			const uint8_t *want, size_t want_len)
{
	struct run_result r;

	if (run_once(prog_fd, in, n, &r) != 0) {
		fprintf(stderr, "bench_agent: %s: test run refused\n", name);
		return false;
	}
	if (r.retval != action ||
	    (want && (r.out_len != want_len || memcmp(r.out, want, want_len) != 0))) {
		fprintf(stderr, "bench_agent: %s: action %d, %u bytes out: not what it should be\n",
			name, r.retval, r.out_len);
		return false;
	}
	return true;
}

#define ROUNDS 7

/* Mean kernel time of one run over `runs` runs; -1 on a refusal. */
static double ns_per_run(int prog_fd, const uint8_t *in, size_t n, unsigned runs)
{
	uint64_t sum = 0;
	struct run_result r;

	for (unsigned i = 0; i < runs; i++) {
		if (run_once(prog_fd, in, n, &r) != 0)
			return -1;
		sum += r.ns;
	}
	return (double)sum / runs;
}

enum { CASE_BASELINE, CASE_DECAP, CASE_PASS, N_CASES };

/* Each case's fastest mean over ROUNDS rounds. The cases take turns
 * within a round, so a noisy stretch of a shared machine (a timer tick,
 * a neighbour's burst, a migration) spoils one round of every case rather
 * than every round of one case. 0 or -1 on a refusal. */
static int measure(int base_fd, int fd, unsigned runs, double best[N_CASES])
{
	for (int c = 0; c < N_CASES; c++)
		best[c] = -1;
	for (int round = 0; round < ROUNDS; round++) {
		double t[N_CASES] = {
			[CASE_BASELINE] = ns_per_run(base_fd, plain_syn, sizeof(plain_syn), runs),
			[CASE_DECAP] = ns_per_run(fd, gre_syn, sizeof(gre_syn), runs),
			[CASE_PASS] = ns_per_run(fd, plain_syn, sizeof(plain_syn), runs),
		};

		for (int c = 0; c < N_CASES; c++) {
			if (t[c] < 0)
				return -1;
			if (best[c] < 0 || t[c] < best[c])
				best[c] = t[c];
		}
	}
	return 0;
}

/* return TC_ACT_OK: the harness alone. */
static int baseline_prog(void)
{
	const struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = TC_ACT_OK },
		{ .code = BPF_JMP | BPF_EXIT },
	};

	return bpf_prog_load(BPF_PROG_TYPE_SCHED_CLS, "casalb_base", "GPL", insns, 2, NULL);
}

static void prog_size(int prog_fd, unsigned *xlated_insns, unsigned *jited_bytes)
{
	struct bpf_prog_info info;
	uint32_t len = sizeof(info);

	memset(&info, 0, sizeof(info));
	*xlated_insns = *jited_bytes = 0;
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) == 0) {
		*xlated_insns = info.xlated_prog_len / 8;
		*jited_bytes = info.jited_prog_len;
	}
}

int main(int argc, char **argv)
{
	bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
	unsigned runs = quick ? 5000 : 50000, insns, jited;
	uint32_t ep = ENDPOINT, vip = VIP;
	struct agent_gre_conf conf = { .endpoints = &ep,
				       .n_endpoints = 1,
				       .vips = &vip,
				       .n_vips = 1,
				       .key_set = true,
				       .key = KEY };
	double best[N_CASES], decap, pass, base;
	struct agent_gre *g;
	char err[256] = "";
	int fd, base_fd;

	if (geteuid() != 0) {
		fprintf(stderr, "bench_agent: needs root (BPF)\n");
		return 77;
	}
	g = agent_gre_attach(NULL, &conf, err, sizeof(err));
	base_fd = baseline_prog();
	if (!g || base_fd < 0) {
		fprintf(stderr, "bench_agent: cannot load: %s\n", g ? "the baseline program" : err);
		return 1;
	}
	fd = agent_gre_prog_fd(g);
	if (!run_checked("decap", fd, gre_syn, sizeof(gre_syn), TC_ACT_OK, plain_syn,
			 sizeof(plain_syn)) ||
	    !run_checked("pass", fd, plain_syn, sizeof(plain_syn), TC_ACT_UNSPEC, plain_syn,
			 sizeof(plain_syn)))
		return 1;

	fprintf(stderr, "bench_agent: %d rounds of %u runs a case\n", ROUNDS, runs);
	if (measure(base_fd, fd, runs, best) != 0) {
		fprintf(stderr, "bench_agent: a test run was refused\n");
		return 1;
	}
	base = best[CASE_BASELINE];
	decap = best[CASE_DECAP];
	pass = best[CASE_PASS];
	prog_size(fd, &insns, &jited);
	fprintf(stderr, "bench_agent: decap %.1f ns, pass %.1f ns, baseline %.1f ns\n", decap, pass,
		base);

	printf("agent_decap_ns=%.1f\n", decap);
	printf("agent_pass_ns=%.1f\n", pass);
	printf("agent_baseline_ns=%.1f\n", base);
	printf("agent_decap_net_ns=%.1f\n", decap - base);
	printf("agent_pass_net_ns=%.1f\n", pass - base);
	printf("agent_decap_mpps_per_core=%.2f\n", decap > 0 ? 1000.0 / decap : 0);
	printf("agent_decap_vs_baseline=%.2f\n", base > 0 ? decap / base : 0);
	printf("agent_pass_vs_baseline=%.2f\n", base > 0 ? pass / base : 0);
	printf("agent_prog_xlated_insns=%u\n", insns);
	printf("agent_prog_jited_bytes=%u\n", jited);
	close(base_fd);
	agent_gre_detach(g);
	return 0;
}
