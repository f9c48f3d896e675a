/*
 * bench_sm.c - p3: interest messages turned into fixed affinities per
 * second by one control core (issue 4; goal >= 300 k/s).
 *
 * Each message takes the SM's whole receive path in ctl_casa_handle: CASA
 * decode, the authentication policy, the inner packet's flow, placement
 * and the VCRT insert, the FIXED encode (and signature) and its sendto()
 * on a real UDP socket over loopback. The data path is the fast-path stub,
 * so forwarding the SYN itself is not counted (it is a worker-speed copy).
 * Baseline in the same run: bare sendto() of a FIXED-sized datagram on the
 * same kind of socket, the floor any SM that answers each interest pays.
 *
 * Prints key=value lines; never fails on a time.
 */
#define _GNU_SOURCE /* sendmmsg */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "casa.h"
#include "ctl.h"
#include "fp_stub.h"

#define MSGS 200000

static const char conf_text[] =
	"service_manager = { address = \"127.0.0.1\"; port = 16370; %s };\n"
	"dataplane = { affinity_capacity = 1048576; ports = ( { device = \"ring:b\";\n"
	"  address = \"192.0.2.1\"; gateway_mac = \"02:00:00:00:00:01\"; } ); };\n"
	"targets = ( { name = \"t1\"; tunnel = \"198.51.100.11\"; weight = 1; },\n"
	"  { name = \"t2\"; tunnel = \"198.51.100.12\"; weight = 2; },\n"
	"  { name = \"t3\"; tunnel = \"198.51.100.13\"; weight = 3; } );\n"
	"services = ( { name = \"web\"; vip = \"203.0.113.10\"; ports = [ 80 ];\n"
	"  targets = [ \"t1\", \"t2\", \"t3\" ]; } );\n";

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A SYN from 192.0.2.x / 198.51.100.x clients to the VIP, flow i. */
static void syn(uint32_t i, uint8_t *ip)
{
	static const uint8_t tmpl[40] = {
		0x45, 0,  0, 40, 0, 1,  0x40, 0, 64, 6, 0, 0, 192, 0, 2,    0,    203,  0,
		113,  10, 0, 0,  0, 80, 0,    0, 0,  1, 0, 0, 0,   0, 0x50, 0x02, 0xff, 0xff
	};

	memcpy(ip, tmpl, 40);
	ip[14] = (uint8_t)(i >> 16);
	ip[15] = (uint8_t)(i >> 8);
	ip[20] = (uint8_t)(0x80 | (i & 0x7F));
	ip[21] = (uint8_t)(i >> 24);
}

/* Interest messages per second through ctl_casa_handle. */
static double run(const char *auth, const char *key_file)
{
	char text[2048], err[256] = "", authconf[512] = "";
	struct ctl_conf c;
	struct ctl_sm *sm;
	struct ctl_casa *x;
	static uint8_t msgs[MSGS][128];
	static size_t lens[MSGS];
	struct casa_auth_ctx *tx_auth = NULL;
	struct casa_signer signer = { .sender_id = 0x7F000002, .epoch = (uint32_t)time(NULL) };
	uint32_t wall = (uint32_t)time(NULL);
	double t0, t1;

	if (auth)
		snprintf(authconf, sizeof(authconf),
			 "auth = { algorithm = \"%s\"; key_file = \"%s\"; };", auth, key_file);
	snprintf(text, sizeof(text), conf_text, authconf);
	if (ctl_conf_load_text(text, "bench.conf", &c, stderr) != 0)
		exit(2);
	c.agents.required = false;
	sm = ctl_sm_create(&c, 1000);
	x = sm ? ctl_casa_create(&c, sm, 1000, wall, err, sizeof(err)) : NULL;
	if (!x) {
		fprintf(stderr, "bench_sm: %s\n", err);
		exit(2);
	}
	if (auth) {
		tx_auth = ctl_casa_auth(x); // same key: sign as the FA would
	}
	for (uint32_t i = 0; i < MSGS; i++) {
		uint8_t ip[40];

		syn(i, ip);
		lens[i] = casa_encode_ip_packet(msgs[i], sizeof(msgs[i]), ip, 40);
		if (tx_auth) {
			int n = casa_sign(tx_auth, &signer, msgs[i], lens[i], sizeof(msgs[i]),
					  wall);

			lens[i] = n > 0 ? (size_t)n : 0;
		}
	}
	t0 = now_s();
	// As the event loop does: a batch of received messages, then a flush.
	for (uint32_t i = 0; i < MSGS; i++) {
		ctl_casa_handle(x, msgs[i], lens[i], 0x7F000002, 9, 2000, wall);
		if (i % 64 == 63)
			ctl_casa_flush(x);
	}
	ctl_casa_flush(x);
	t1 = now_s();
	const struct ctl_casa_counters *k = ctl_casa_counters(x);

	if (k->fixed_sent != MSGS)
		fprintf(stderr, "bench_sm: only %llu of %u answered (tx errors %llu)\n",
			(unsigned long long)k->fixed_sent, MSGS, (unsigned long long)k->tx_errors);
	ctl_casa_destroy(x);
	ctl_sm_destroy(sm);
	ctl_conf_free(&c);
	return MSGS / (t1 - t0);
}

/* The same datagrams with nothing else to do: sendmmsg() in batches of 64. */
static double sendto_rate(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in to = { .sin_family = AF_INET,
				  .sin_port = htons(9),
				  .sin_addr.s_addr = htonl(0x7F000002) };
	static uint8_t buf[64][52];
	struct iovec iov[64];
	struct mmsghdr mm[64];
	double t0, t1;

	for (int i = 0; i < 64; i++) {
		iov[i] = (struct iovec){ buf[i], sizeof(buf[i]) };
		mm[i].msg_hdr = (struct msghdr){ .msg_name = &to,
						 .msg_namelen = sizeof(to),
						 .msg_iov = &iov[i],
						 .msg_iovlen = 1 };
	}
	t0 = now_s();
	for (int i = 0; i < MSGS; i += 64)
		sendmmsg(fd, mm, 64, MSG_DONTWAIT);
	t1 = now_s();
	close(fd);
	return MSGS / (t1 - t0);
}

int main(void)
{
	char key_file[] = "/tmp/casalb-bench-key.XXXXXX";
	int fd = mkstemp(key_file);
	double base, plain, sha;

	if (fd < 0 || write(fd, "bench-key-0123456789abcdef\n", 27) != 27)
		return 2;
	close(fd);
	base = sendto_rate();
	plain = run(NULL, NULL);
	sha = run("sha256", key_file);
	unlink(key_file);
	printf("p3_baseline_sendmmsg_per_sec=%.0f\n", base);
	printf("p3_interest_per_sec_hmac_sha256=%.0f\n", sha);
	printf("p3_ratio_vs_sendmmsg=%.2f\n", plain / base);
	printf("p3_interest_per_sec=%.0f\n", plain);
	return 0;
}
