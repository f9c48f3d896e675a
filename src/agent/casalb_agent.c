/*
 * casalb_agent.c - casalb-agent, the target host's daemon (design.md
 * section 2; docs/agent-protocol.md).
 *
 *   casalb-agent -s SM_ADDR[,BACKUP...] -n NAME [-p PORT] [-k KEY_FILE [-a sha256|md5]
 *                [-i KEY_ID]] [-c CGROUP_DIR] [-r SECONDS] [-N] [-v]
 *
 * Connects to the Service Manager (the first of -s that answers: the
 * primary, then its backups in order, each connect bounded to 3 s),
 * registers as target NAME, and then:
 * plumbs each assigned VIP on the loopback interface with ARP suppressed
 * (direct server return) and, when the SM's REGISTER_ACK says GRE, attaches
 * the GRE decapsulation program (agent_gre.c) at the tc ingress of the
 * interface holding the tunnel endpoint, with the assigned VIPs in its map
 * (-N leaves all plumbing to the operator, a kernel GRE device for one);
 * it removes what it added on exit; reports readiness (Rdy:
 * listening sockets that accept VIP:port) on change and every keepalive;
 * reports load (capacity weight and QoS fraction; with -c, of that cgroup v2
 * directory rather than the whole host) every keepalive; reports its VIP
 * connections' ends in batches, from destroy notifications (the table is
 * then dumped only for LOAD and resyncs) or, without them, from a poll
 * every second;
 * sends its whole connection table after every registration, after lost
 * end notifications, and every -r SECONDS (default 30; 0: never) so the SM
 * forgets connections that never became one here (a client that gave up
 * during the handshake leaves no socket whose end could be reported). It
 * reconnects with exponential backoff (1 s to 30 s) when the SM goes away
 * or falls silent past the hold time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "agent.h"
#include "casa.h"

#define CONNS_MAX 65536
#define CONNECT_TIMEOUT_MS 3000
#define SEND_TIMEOUT_S 2 /* a send to an SM that stopped reading ends the session */
#define MSG_CAP 65536

struct agent {
	uint32_t sm[AGENT_SMS_MAX]; /* the primary SM first, then backups */
	unsigned n_sm, sm_at;       /* sm_at: the one tried or talked to */
	uint16_t port;
	const char *name;
	const char *cgroup; /* measure this cgroup (v2 directory), not the host */
	bool plumb, verbose;
	struct casa_auth_ctx *auth;
	struct casa_signer signer;
	int fd;
	int watch_fd;    /* socket-destroy notifications, -1 when unavailable */
	bool watch_lost; /* notifications were lost: send the whole table */
	bool registered;
	uint16_t keepalive_s, hold_s;
	uint64_t last_rx_ms, next_try_ms, backoff_ms, next_ka_ms, next_poll_ms;
	uint64_t resync_ms, next_resync_ms; /* periodic whole table; 0: off */
	uint32_t ka_seq;
	struct casa_agent_service svc[CASA_AGENT_SERVICES_MAX];
	unsigned n_svc;
	uint32_t rdy[CASA_AGENT_SERVICES_MAX];
	uint32_t plumbed[CASA_AGENT_SERVICES_MAX]; /* VIPs we added to lo */
	unsigned n_plumbed;
	struct agent_gre *gre; /* the decapsulation program, NULL for L2 */
	uint32_t gre_endpoint; /* its tunnel endpoint (host order) */
	bool gre_key_set;      /* and its key, as the SM sent them */
	uint32_t gre_key;
	uint32_t gre_vips[CASA_AGENT_SERVICES_MAX]; /* VIPs in its map */
	unsigned n_gre_vips;
	uint64_t gre_seen[AGENT_GRE_N_COUNTERS]; /* counters last logged (-v) */
	struct casa_agent_conn *conns, *conns_now, *ended;
	unsigned n_conns;
	struct agent_cpu_sample cpu;
	struct agent_tcp_sample tcp;
	bool have_samples;
	uint8_t rx[MSG_CAP + 4];
	size_t rx_len;
	uint8_t msg[MSG_CAP];
};

static volatile sig_atomic_t stopping;
static bool libbpf_verbose;

/* libbpf's warnings to stderr; its debug lines (the verifier's log) with -v only. */
__attribute__((format(printf, 2, 0))) static int libbpf_log(enum libbpf_print_level level,
							    const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && !libbpf_verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void say(const struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(const struct agent *a, const char *fmt, ...)
{
	va_list ap;

	(void)a;
	printf("casalb-agent: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* ---- plumbing (layer-2 dispatch: the VIP on lo, ARP suppressed) ---------------------- */

static int sysctl_write(const char *path, const char *value)
{
	FILE *f = fopen(path, "w");
	int rc;

	if (!f)
		return -errno;
	rc = fputs(value, f) < 0 ? -EIO : 0;
	return fclose(f) != 0 ? -errno : rc;
}

/* Add or delete addr/32 on lo through rtnetlink. */
static int lo_addr(uint32_t addr, bool add)
{
	struct {
		struct nlmsghdr nlh;
		struct ifaddrmsg ifa;
		struct rtattr rta;
		uint32_t addr;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req),
			 .nlmsg_type = add ? RTM_NEWADDR : RTM_DELADDR,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK |
					(add ? NLM_F_CREATE | NLM_F_EXCL : 0) },
		.ifa = { .ifa_family = AF_INET,
			 .ifa_prefixlen = 32,
			 .ifa_scope = RT_SCOPE_HOST,
			 .ifa_index = if_nametoindex("lo") },
		.rta = { .rta_len = RTA_LENGTH(4), .rta_type = IFA_LOCAL },
		.addr = htonl(addr),
	};
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK };
	char buf[512];
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE), rc = 0;
	ssize_t n;

	if (fd < 0)
		return -errno;
	if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&nl, sizeof(nl)) < 0)
		rc = -errno;
	else if ((n = recv(fd, buf, sizeof(buf), 0)) >= (ssize_t)sizeof(struct nlmsghdr) &&
		 ((struct nlmsghdr *)buf)->nlmsg_type == NLMSG_ERROR)
		rc = ((struct nlmsgerr *)NLMSG_DATA((struct nlmsghdr *)buf))->error;
	close(fd);
	return rc;
}

/* The host settings direct server return needs: the host owns the VIP
 * (on lo) but never answers ARP for it nor announces it as a source, and
 * takes packets for it on any interface. What they were before this agent
 * changed them is put back on exit. */
static struct dsr_sysctl {
	const char *path, *value;
	char before[16];
	bool changed;
} dsr_sysctls[] = {
	{ "/proc/sys/net/ipv4/conf/all/arp_ignore", "1", "", false },
	{ "/proc/sys/net/ipv4/conf/all/arp_announce", "2", "", false },
	{ "/proc/sys/net/ipv4/conf/all/rp_filter", "0", "", false },
};

static void dsr_sysctls_set(void)
{
	for (size_t i = 0; i < sizeof(dsr_sysctls) / sizeof(dsr_sysctls[0]); i++) {
		struct dsr_sysctl *d = &dsr_sysctls[i];
		FILE *f;

		if (d->changed)
			continue;
		f = fopen(d->path, "r");
		d->before[0] = '\0';
		if (f) {
			if (!fgets(d->before, sizeof(d->before), f))
				d->before[0] = '\0';
			fclose(f);
		}
		d->before[strcspn(d->before, "\n")] = '\0';
		if (strcmp(d->before, d->value) != 0 && sysctl_write(d->path, d->value) == 0)
			d->changed = d->before[0] != '\0'; // restorable
	}
}

static void dsr_sysctls_restore(void)
{
	for (size_t i = 0; i < sizeof(dsr_sysctls) / sizeof(dsr_sysctls[0]); i++)
		if (dsr_sysctls[i].changed &&
		    sysctl_write(dsr_sysctls[i].path, dsr_sysctls[i].before) == 0)
			dsr_sysctls[i].changed = false;
}

static bool svc_has_vip(const struct agent *a, uint32_t vip)
{
	for (unsigned i = 0; i < a->n_svc; i++)
		if (a->svc[i].vip == vip)
			return true;
	return false;
}

/* lo holds exactly the VIPs SERVICES assigns (those we added: one the
 * operator put there stays theirs). A VIP no longer assigned leaves, so
 * the host's own traffic to it goes to whoever serves it now; the SM keeps
 * a deleted port's VIP assigned while its connections drain. */
static void plumb(struct agent *a)
{
	if (!a->plumb)
		return;
	dsr_sysctls_set();
	for (unsigned j = 0; j < a->n_plumbed;) {
		if (svc_has_vip(a, a->plumbed[j])) {
			j++;
			continue;
		}
		lo_addr(a->plumbed[j], false);
		a->plumbed[j] = a->plumbed[--a->n_plumbed];
	}
	for (unsigned i = 0; i < a->n_svc; i++) {
		uint32_t vip = a->svc[i].vip;
		bool have = false;
		struct in_addr in = { .s_addr = htonl(vip) };

		for (unsigned j = 0; j < a->n_plumbed && !have; j++)
			have = a->plumbed[j] == vip;
		if (have)
			continue;
		if (a->n_plumbed == CASA_AGENT_SERVICES_MAX) {
			say(a, "VIP %s not put on lo: %d VIPs already are", inet_ntoa(in),
			    CASA_AGENT_SERVICES_MAX);
			continue;
		}
		// -EEXIST: the operator put it there; leave it to them.
		if (lo_addr(vip, true) == 0)
			a->plumbed[a->n_plumbed++] = vip;
	}
}

static void unplumb(struct agent *a)
{
	for (unsigned i = 0; i < a->n_plumbed; i++)
		lo_addr(a->plumbed[i], false);
	a->n_plumbed = 0;
	dsr_sysctls_restore();
}

/* ---- GRE decapsulation (the SM's REGISTER_ACK says GRE) -------------------------------- */

/* The interface holding addr (host order): where the tunnel's packets come
 * in. 0, or -ENODEV when no interface has it. */
static int ifname_of(uint32_t addr, char name[IF_NAMESIZE])
{
	struct ifaddrs *all, *i;
	int rc = -ENODEV;

	if (getifaddrs(&all) != 0)
		return -errno;
	for (i = all; i && rc != 0; i = i->ifa_next) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)(void *)i->ifa_addr;

		if (sin && sin->sin_family == AF_INET && ntohl(sin->sin_addr.s_addr) == addr) {
			snprintf(name, IF_NAMESIZE, "%s", i->ifa_name);
			rc = 0;
		}
	}
	freeifaddrs(all);
	return rc;
}

static bool gre_has_vip(const struct agent *a, uint32_t vip)
{
	for (unsigned i = 0; i < a->n_gre_vips; i++)
		if (a->gre_vips[i] == vip)
			return true;
	return false;
}

static bool svc_has_gre_vip(const struct agent *a, uint32_t vip)
{
	for (unsigned i = 0; i < a->n_svc; i++)
		if (a->svc[i].vip == vip && a->svc[i].dispatch == CASA_DISPATCH_GRE)
			return true;
	return false;
}

/* Make the program's VIP map the VIPs SERVICES assigned with GRE. */
static void gre_sync_vips(struct agent *a)
{
	unsigned kept = 0;

	if (!a->gre)
		return;
	for (unsigned i = 0; i < a->n_gre_vips; i++) {
		if (svc_has_gre_vip(a, a->gre_vips[i]))
			a->gre_vips[kept++] = a->gre_vips[i];
		else
			agent_gre_vip_del(a->gre, a->gre_vips[i]);
	}
	a->n_gre_vips = kept;
	for (unsigned i = 0; i < a->n_svc; i++) {
		uint32_t vip = a->svc[i].vip;

		if (a->svc[i].dispatch != CASA_DISPATCH_GRE || gre_has_vip(a, vip) ||
		    a->n_gre_vips == CASA_AGENT_SERVICES_MAX)
			continue;
		int rc = agent_gre_vip_add(a->gre, vip);
		struct in_addr in = { .s_addr = htonl(vip) };

		if (rc == 0)
			a->gre_vips[a->n_gre_vips++] = vip;
		else
			say(a, "GRE: VIP %s not decapsulated: %s", inet_ntoa(in), strerror(-rc));
	}
}

static void gre_stop(struct agent *a)
{
	if (!a->gre)
		return;
	agent_gre_detach(a->gre);
	a->gre = NULL;
	a->n_gre_vips = 0;
	a->gre_endpoint = 0;
	memset(a->gre_seen, 0, sizeof(a->gre_seen));
}

/*
 * Follow the dispatch the SM sent in its REGISTER_ACK: GRE attaches the
 * program on the endpoint's interface (again when the endpoint moved), L2
 * detaches it. A lost SM session leaves it attached: packets already in
 * flight for existing connections keep being decapsulated.
 */
static void gre_follow(struct agent *a, const struct casa_dispatch_info *d)
{
	struct agent_gre_conf conf = { .n_endpoints = 1 };
	char ifname[IF_NAMESIZE], err[256];
	int rc;

	if (!a->plumb)
		return;
	if (d->method != CASA_DISPATCH_GRE) {
		gre_stop(a);
		return;
	}
	conf.key_set = (d->gre_flags & CASA_GRE_F_KEY) != 0;
	conf.key = d->gre_key;
	// Attached as asked already; a new endpoint or key attaches again.
	if (a->gre && a->gre_endpoint == d->tunnel_endpoint && a->gre_key_set == conf.key_set &&
	    (!conf.key_set || a->gre_key == conf.key))
		return;
	gre_stop(a);
	rc = ifname_of(d->tunnel_endpoint, ifname);
	if (rc != 0) {
		struct in_addr in = { .s_addr = htonl(d->tunnel_endpoint) };

		say(a, "GRE: no interface holds the tunnel endpoint %s (%s): nothing decapsulated",
		    inet_ntoa(in), strerror(-rc));
		return;
	}
	conf.endpoints = &d->tunnel_endpoint;
	a->gre = agent_gre_attach(ifname, &conf, err, sizeof(err));
	if (!a->gre) {
		say(a, "GRE: %s", err);
		return;
	}
	a->gre_endpoint = d->tunnel_endpoint;
	a->gre_key_set = conf.key_set;
	a->gre_key = conf.key;
	say(a, "GRE: decapsulating on %s (tc ingress BPF)%s", ifname,
	    conf.key_set ? ", key required" : "");
	gre_sync_vips(a);
}

/* With -v, the program's counters whenever they moved. */
static void gre_log_counters(struct agent *a)
{
	uint64_t c[AGENT_GRE_N_COUNTERS];
	char line[1024];
	size_t off = 0;

	if (!a->verbose || !a->gre || agent_gre_counters(a->gre, c) != 0 ||
	    memcmp(c, a->gre_seen, sizeof(c)) == 0)
		return;
	memcpy(a->gre_seen, c, sizeof(c));
	for (unsigned i = 0; i < AGENT_GRE_N_COUNTERS && off < sizeof(line); i++)
		if (c[i])
			off += (size_t)snprintf(line + off, sizeof(line) - off, " %s %llu",
						agent_gre_counter_name(i),
						(unsigned long long)c[i]);
	say(a, "GRE:%s", off ? line : " nothing seen");
}

/* ---- the SM session --------------------------------------------------------------------- */

static void disconnect(struct agent *a, const char *why)
{
	if (a->fd >= 0) {
		say(a, "session closed: %s", why);
		close(a->fd);
	}
	a->fd = -1;
	a->registered = false;
	a->rx_len = 0;
	// The next SM's ACK sets them; until then the short defaults bound
	// the wait for it, not the last SM's hold time.
	a->hold_s = 0;
	a->keepalive_s = 0;
	// The next SM at once (a backup may have taken over); backoff only
	// once every SM of the list has failed.
	a->sm_at = (a->sm_at + 1) % a->n_sm;
	if (a->sm_at != 0) {
		a->next_try_ms = now_ms();
		return;
	}
	a->next_try_ms = now_ms() + a->backoff_ms;
	a->backoff_ms = a->backoff_ms * 2 > 30000 ? 30000 : a->backoff_ms * 2;
}

/* connect() with a time limit: a dead SM must not hold the agent for the
 * kernel's two minutes of SYN retries when a backup waits. The socket
 * stays blocking for sends, each bounded to SEND_TIMEOUT_S. */
static int connect_within(int fd, const struct sockaddr_in *sa, int timeout_ms)
{
	struct timeval snd = { .tv_sec = SEND_TIMEOUT_S };
	int fl = fcntl(fd, F_GETFL), err = 0;
	socklen_t el = sizeof(err);
	struct pollfd pf = { .fd = fd, .events = POLLOUT };

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
		return -errno;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0) {
		if (errno != EINPROGRESS)
			return -errno;
		if (poll(&pf, 1, timeout_ms) != 1)
			return -ETIMEDOUT;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0)
			return err ? -err : -errno;
	}
	if (fcntl(fd, F_SETFL, fl) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &snd, sizeof(snd)) != 0)
		return -errno;
	return 0;
}

static void send_msg(struct agent *a, size_t len)
{
	uint8_t frame[MSG_CAP + 4];
	int n = (int)len;

	if (len == 0 || a->fd < 0)
		return;
	if (a->auth && casa_auth_enabled(a->auth)) {
		n = casa_sign(a->auth, &a->signer, a->msg, len, sizeof(a->msg),
			      (uint32_t)time(NULL));
		if (n < 0)
			return;
	}
	casa_stream_put_len(frame, 4, (size_t)n);
	memcpy(frame + 4, a->msg, (size_t)n);
	// Bounded by SEND_TIMEOUT_S (SO_SNDTIMEO) and cut short by a stop
	// signal: an SM that stopped reading costs the session, never the
	// agent. A frame sent in part leaves the stream unframed: the session
	// ends either way.
	if (send(a->fd, frame, (size_t)n + 4, MSG_NOSIGNAL) != n + 4)
		disconnect(a, errno == EAGAIN || errno == EWOULDBLOCK ?
				      "the SM stopped reading (send timed out)" :
				      "send failed");
}

static void try_connect(struct agent *a)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons(a->port),
				  .sin_addr.s_addr = htonl(a->sm[a->sm_at]) };
	struct sockaddr_in me;
	socklen_t ml = sizeof(me);
	struct casa_agent_register r = { .version = CASA_AGENT_VERSION,
					 .epoch = (uint32_t)time(NULL),
					 .keepalive_s = 1,
					 .hold_s = 5,
					 .caps = CASA_AGENT_CAP_L2 | CASA_AGENT_CAP_GRE |
						 CASA_AGENT_CAP_CONN_END | CASA_AGENT_CAP_RESYNC |
						 CASA_AGENT_CAP_LOAD };

	char why[96];
	int rc;

	a->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	rc = a->fd < 0 ? -errno : connect_within(a->fd, &sa, CONNECT_TIMEOUT_MS);
	if (rc != 0) {
		snprintf(why, sizeof(why), "connect to %s: %s", inet_ntoa(sa.sin_addr),
			 strerror(-rc));
		if (a->fd < 0)
			say(a, "%s", why);
		disconnect(a, why);
		return;
	}
	say(a, "connected to the service manager %s:%u", inet_ntoa(sa.sin_addr), a->port);
	getsockname(a->fd, (struct sockaddr *)&me, &ml);
	// The sender id is our address toward the SM (spec 6.6: by default
	// the node's control address).
	a->signer.sender_id = r.sender_id = ntohl(me.sin_addr.s_addr);
	a->last_rx_ms = now_ms();
	send_msg(a, casa_encode_agent_register(a->msg, sizeof(a->msg), &r, a->name, NULL));
}

static void send_ready(struct agent *a, bool always)
{
	struct casa_agent_service e[CASA_AGENT_SERVICES_MAX];
	bool changed = always;

	for (unsigned i = 0; i < a->n_svc; i++) {
		int n = agent_listeners(a->svc[i].vip, a->svc[i].port, a->svc[i].protocol);
		uint32_t rdy = n > 0 ? (uint32_t)n : 0;

		if (rdy != a->rdy[i]) {
			struct in_addr in = { .s_addr = htonl(a->svc[i].vip) };

			say(a, "ready %s:%u Rdy %u", inet_ntoa(in), a->svc[i].port, rdy);
			changed = true;
		}
		a->rdy[i] = rdy;
		e[i] = a->svc[i];
		e[i].dispatch = 0;
		e[i].ready = rdy;
	}
	if (changed && a->n_svc)
		send_msg(a, casa_encode_agent_services(a->msg, sizeof(a->msg), CASA_MSG_AGENT_READY,
						       e, a->n_svc));
}

static int read_file(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -errno;
	n = fread(buf, 1, cap - 1, f);
	buf[n] = 0;
	fclose(f);
	return 0;
}

/* CPU time and pressure of the target's cgroup: the target's share when
 * several targets (containers, the test bed's namespaces) share a host. */
static void sample_cgroup(const struct agent *a, struct agent_cpu_sample *cpu, double *press)
{
	char path[512], text[4096];
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	double allowance;
	uint64_t usage;

	snprintf(path, sizeof(path), "%s/cpu.max", a->cgroup);
	allowance = agent_cgroup_allowance(read_file(path, text, sizeof(text)) == 0 ? text : NULL,
					   ncpu > 0 ? (unsigned)ncpu : 1);
	snprintf(path, sizeof(path), "%s/cpu.stat", a->cgroup);
	if (read_file(path, text, sizeof(text)) == 0 && agent_cgroup_usage_parse(text, &usage) == 0)
		agent_cgroup_sample(usage, now_ms() * 1000, allowance, cpu);
	snprintf(path, sizeof(path), "%s/cpu.pressure", a->cgroup);
	if (read_file(path, text, sizeof(text)) == 0)
		agent_psi_parse(text, press);
}

static void sample_host(struct agent_cpu_sample *cpu, double *press)
{
	static char stat[65536], psi[512];

	if (read_file("/proc/stat", stat, sizeof(stat)) == 0)
		agent_cpu_parse(stat, cpu);
	if (read_file("/proc/pressure/cpu", psi, sizeof(psi)) == 0)
		agent_psi_parse(psi, press);
}

/* CPU idle between two samples, 0..1000; clamped before it narrows (a
 * recreated cgroup's usage restarts from 0, so idle can outgrow total). */
static uint16_t idle_permille(const struct agent_cpu_sample *prev,
			      const struct agent_cpu_sample *now)
{
	uint64_t idle;

	if (now->total <= prev->total)
		return 1000;
	if (now->idle <= prev->idle)
		return 0;
	idle = 1000 * (now->idle - prev->idle) / (now->total - prev->total);
	return (uint16_t)(idle > 1000 ? 1000 : idle);
}

static void send_load(struct agent *a)
{
	static char snmp[8192], netstat[16384];
	struct agent_cpu_sample cpu = a->cpu;
	struct agent_tcp_sample tcp = a->tcp;
	struct casa_agent_load l = { .capacity = CASA_AGENT_CAPACITY_MAX };
	double press = 0;

	if (a->cgroup)
		sample_cgroup(a, &cpu, &press);
	else
		sample_host(&cpu, &press);
	if (read_file("/proc/net/snmp", snmp, sizeof(snmp)) == 0)
		agent_tcp_parse(snmp,
				read_file("/proc/net/netstat", netstat, sizeof(netstat)) == 0 ?
					netstat :
					NULL,
				&tcp);
	if (a->have_samples) {
		l.capacity = agent_capacity(&a->cpu, &cpu, press);
		l.qos = agent_qos(&a->tcp, &tcp);
	}
	l.active = a->n_conns;
	l.cpu_idle = idle_permille(&a->cpu, &cpu);
	l.pressure = (uint16_t)(press * 100);
	a->cpu = cpu;
	a->tcp = tcp;
	a->have_samples = true;
	if (a->verbose)
		say(a, "load capacity %u qos %u idle %u.%u%% pressure %u.%02u%%", l.capacity, l.qos,
		    l.cpu_idle / 10, l.cpu_idle % 10, l.pressure / 100, l.pressure % 100);
	send_msg(a, casa_encode_agent_load(a->msg, sizeof(a->msg), &l));
}

/* Poll the VIP connections; report the ended ones (or, with resync, the
 * whole table in chunks). */
static void poll_conns(struct agent *a, bool resync)
{
	int n = agent_conns(a->svc, a->n_svc, a->conns_now, CONNS_MAX);
	unsigned ended;

	if (n < 0)
		return;
	if (a->watch_fd < 0) // the merge of agent_conns_ended wants both sorted
		agent_conns_sort(a->conns_now, (unsigned)n);
	// With destroy notifications the watcher reports every end; the poll
	// only keeps the table for resync and LOAD. Without them, ends are
	// what disappeared between two polls (connections shorter than a
	// poll are missed: the SM's VCRT then keeps them until a resync).
	// Ends only from a whole dump: a cut-short one would report every
	// connection past its end as ended.
	ended = a->watch_fd >= 0 || n == CONNS_MAX ?
			0 :
			agent_conns_ended(a->conns, a->n_conns, a->conns_now, (unsigned)n, a->ended,
					  CONNS_MAX);
	for (unsigned off = 0; off < ended; off += CASA_AGENT_CONNS_MAX) {
		unsigned k =
			ended - off < CASA_AGENT_CONNS_MAX ? ended - off : CASA_AGENT_CONNS_MAX;

		send_msg(a, casa_encode_agent_conns(a->msg, sizeof(a->msg), CASA_MSG_AGENT_CONN_END,
						    0, 0, a->ended + off, k));
	}
	memcpy(a->conns, a->conns_now, (size_t)n * sizeof(*a->conns));
	a->n_conns = (unsigned)n;
	if (!resync)
		return;
	// A full buffer may have cut the table short: a table without its
	// end would make the SM forget what did not fit.
	if (a->n_conns == CONNS_MAX) {
		say(a, "more than %d connections: no resync table sent", CONNS_MAX - 1);
		return;
	}
	uint32_t id = (uint32_t)now_ms();
	unsigned off = 0;

	do {
		unsigned k = a->n_conns - off < CASA_AGENT_CONNS_MAX ? a->n_conns - off :
								       CASA_AGENT_CONNS_MAX;
		uint16_t fl = (off == 0 ? CASA_AGENT_TBL_FIRST : 0) |
			      (off + k == a->n_conns ? CASA_AGENT_TBL_LAST : 0);

		send_msg(a,
			 casa_encode_agent_conns(a->msg, sizeof(a->msg), CASA_MSG_AGENT_CONN_TABLE,
						 fl, id, a->conns + off, k));
		off += k;
	} while (off < a->n_conns);
}

/* Ends from the destroy notifications, sent as one batch per turn. */
static void watch_ends(struct agent *a)
{
	int n;

	if (a->watch_fd < 0)
		return;
	n = agent_conns_watch_read(a->watch_fd, a->svc, a->n_svc, a->ended, CASA_AGENT_CONNS_MAX,
				   &a->watch_lost);
	if (n > 0 && a->registered)
		send_msg(a, casa_encode_agent_conns(a->msg, sizeof(a->msg), CASA_MSG_AGENT_CONN_END,
						    0, 0, a->ended, (unsigned)n));
}

static void on_message(struct agent *a, const uint8_t *buf, size_t len)
{
	struct casa_msg m;

	if (casa_decode(buf, len, CASA_STREAM_MAX, &m) != CASA_OK ||
	    (a->auth && casa_verify(a->auth, buf, len, &m, (uint32_t)time(NULL)) != CASA_OK)) {
		// Before the ACK nothing has been agreed yet (a key on one side
		// only, another protocol): waiting out the hold time would not
		// make it better.
		if (!a->registered) {
			disconnect(a, "a bad message from the SM before registration");
			return;
		}
		say(a, "dropped a bad message from the SM");
		return;
	}
	a->last_rx_ms = now_ms();
	// Only the ACK is meaningful before registration (spec: SERVICES
	// follow the ACK).
	if (!a->registered && m.type != CASA_MSG_AGENT_REGISTER_ACK)
		return;
	switch (m.type) {
	case CASA_MSG_AGENT_REGISTER_ACK:
		if (m.agent.reg.status != CASA_AGENT_ST_OK) {
			say(a, "registration as \"%s\" refused (status %u)", a->name,
			    m.agent.reg.status);
			disconnect(a, "refused");
			return;
		}
		a->registered = true;
		a->backoff_ms = 1000;
		a->keepalive_s = m.agent.reg.keepalive_s;
		a->hold_s = m.agent.reg.hold_s;
		say(a, "registered as \"%s\" (target %u)", a->name, m.agent.reg.caps);
		if (m.present & CASA_HAS_DISPATCH_INFO)
			gre_follow(a, &m.dispatch);
		break;
	case CASA_MSG_AGENT_SERVICES:
		a->n_svc = m.agent.list.n;
		for (unsigned i = 0; i < a->n_svc; i++)
			casa_agent_service_get(&m, i, &a->svc[i]);
		memset(a->rdy, 0, sizeof(a->rdy));
		say(a, "serving %u VIP ports", a->n_svc);
		plumb(a);
		gre_sync_vips(a);
		poll_conns(a, true);
		a->next_resync_ms = now_ms() + a->resync_ms;
		send_ready(a, true);
		send_load(a);
		break;
	default:
		break; // keepalives: last_rx_ms is all they are for
	}
}

static void session_read(struct agent *a)
{
	ssize_t n = recv(a->fd, a->rx + a->rx_len, sizeof(a->rx) - a->rx_len, MSG_DONTWAIT);
	size_t off = 0;

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		disconnect(a, n == 0 ? "the SM closed it" : strerror(errno));
		return;
	}
	if (n < 0)
		return;
	a->rx_len += (size_t)n;
	while (a->fd >= 0) {
		long fl = casa_stream_frame_len(a->rx + off, a->rx_len - off);

		if (fl < 0) {
			disconnect(a, "bad framing");
			return;
		}
		if (fl == 0 || a->rx_len - off < 4 + (size_t)fl)
			break;
		on_message(a, a->rx + off + 4, (size_t)fl);
		off += 4 + (size_t)fl;
	}
	if (a->fd >= 0) {
		memmove(a->rx, a->rx + off, a->rx_len - off);
		a->rx_len -= off;
	}
}

static void timers(struct agent *a, uint64_t now)
{
	if (now - a->last_rx_ms > (uint64_t)(a->hold_s ? a->hold_s : 15) * 1000) {
		disconnect(a, "the SM fell silent");
		return;
	}
	if (!a->registered)
		return;
	if (now >= a->next_poll_ms) {
		// Lost end notifications: the whole table, so the SM drops
		// what is gone (its resync spares the youngest placements).
		bool resync = a->watch_lost || (a->resync_ms && now >= a->next_resync_ms);

		if (a->watch_lost)
			say(a,
			    "connection-end notifications lost (burst): sending the whole table");
		// With destroy notifications the ends need no poll: the table is
		// dumped only for a resync and for the LOAD's active count (sent
		// with each keepalive), not every second, which on a host with
		// many sockets is the agent's largest cost.
		if (a->watch_fd < 0 || resync || now >= a->next_ka_ms)
			poll_conns(a, resync);
		a->watch_lost = false;
		if (resync)
			a->next_resync_ms = now + a->resync_ms;
		send_ready(a, false);
		a->next_poll_ms = now + 1000;
	}
	if (now >= a->next_ka_ms) {
		struct casa_agent_keepalive k = { .sender_id = a->signer.sender_id,
						  .seq = ++a->ka_seq,
						  .time_ms = (uint32_t)now };

		send_ready(a, true);
		send_load(a);
		gre_log_counters(a);
		send_msg(a, casa_encode_agent_keepalive(a->msg, sizeof(a->msg), &k));
		a->next_ka_ms = now + (uint64_t)(a->keepalive_s ? a->keepalive_s : 5) * 1000;
	}
}

/* ---- start-up -------------------------------------------------------------------------------- */

static struct casa_auth_ctx *key_load(const char *file, uint8_t alg, uint8_t id)
{
	struct casa_auth_params p;
	struct casa_key k = { .alg = alg, .id = id };
	struct casa_auth_ctx *ctx;
	char err[320];

	casa_auth_params_default(&p);
	if (casa_key_file_read(file, &k, err, sizeof(err)) != 0) {
		fprintf(stderr, "casalb-agent: %s\n", err);
		exit(1);
	}
	ctx = casa_auth_create(&p);
	if (!ctx || casa_auth_set_key(ctx, &k, (uint32_t)time(NULL)) != 0) {
		fprintf(stderr, "casalb-agent: key file %s: the key is refused\n", file);
		exit(1);
	}
	explicit_bzero(&k, sizeof(k));
	return ctx;
}

/* A whole decimal number in min..max, or false. */
static bool arg_uint(const char *text, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(text, &end, 10);
	return text[0] >= '0' && text[0] <= '9' && *end == '\0' && errno == 0 && *out >= min &&
	       *out <= max;
}

/* The REGISTER carries the name: what it cannot encode (empty, too long,
 * not UTF-8) would leave the agent sending nothing, forever. */
static bool name_encodable(const char *name)
{
	static uint8_t buf[CASA_STREAM_MAX];
	struct casa_agent_register r = { .version = CASA_AGENT_VERSION,
					 .keepalive_s = 1,
					 .hold_s = 5 };

	return casa_encode_agent_register(buf, sizeof(buf), &r, name, NULL) > 0;
}

/* -c names a cgroup v2 directory whose cpu.stat can be read. */
static bool cgroup_readable(const char *dir)
{
	char path[512];

	return snprintf(path, sizeof(path), "%s/cpu.stat", dir) < (int)sizeof(path) &&
	       access(path, R_OK) == 0;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: casalb-agent -s SM_ADDR[,BACKUP...] -n NAME [-p PORT] [-k KEY_FILE"
		   " [-a sha256|md5] [-i KEY_ID]] [-c CGROUP_DIR] [-r SECONDS] [-N] [-v]\n");
}

int main(int argc, char **argv)
{
	static struct agent a = { .port = CASA_AGENT_PORT_DEFAULT,
				  .plumb = true,
				  .fd = -1,
				  .backoff_ms = 1000,
				  .resync_ms = 30000 };
	const char *key = NULL;
	uint8_t alg = CASA_AUTH_HMAC_SHA256, key_id = 1;
	unsigned long num;
	char sms[AGENT_SMS_MAX * (INET_ADDRSTRLEN + 2)] = "";
	int opt;

	while ((opt = getopt(argc, argv, "s:n:p:k:a:i:c:r:Nvh")) != -1) {
		switch (opt) {
		case 's':
			if (agent_sm_list_add(optarg, a.sm, &a.n_sm, AGENT_SMS_MAX) != 0) {
				fprintf(stderr,
					"casalb-agent: -s %s: IPv4 addresses, comma-separated,"
					" at most %d service managers\n",
					optarg, AGENT_SMS_MAX);
				return 2;
			}
			break;
		case 'n':
			a.name = optarg;
			break;
		case 'p':
			if (!arg_uint(optarg, 1, 65535, &num)) {
				fprintf(stderr, "casalb-agent: -p %s: a port 1..65535\n", optarg);
				return 2;
			}
			a.port = (uint16_t)num;
			break;
		case 'k':
			key = optarg;
			break;
		case 'a':
			if (strcmp(optarg, "sha256") != 0 && strcmp(optarg, "md5") != 0) {
				fprintf(stderr, "casalb-agent: -a %s: sha256 or md5\n", optarg);
				return 2;
			}
			alg = strcmp(optarg, "md5") == 0 ? CASA_AUTH_HMAC_MD5 :
							   CASA_AUTH_HMAC_SHA256;
			break;
		case 'i':
			if (!arg_uint(optarg, 0, 255, &num)) {
				fprintf(stderr, "casalb-agent: -i %s: a key id 0..255\n", optarg);
				return 2;
			}
			key_id = (uint8_t)num;
			break;
		case 'c':
			if (!cgroup_readable(optarg)) {
				fprintf(stderr,
					"casalb-agent: -c %s: not a cgroup v2 directory this agent"
					" can read (no readable cpu.stat)\n",
					optarg);
				return 2;
			}
			a.cgroup = optarg;
			break;
		case 'r':
			if (!arg_uint(optarg, 0, 86400, &num)) {
				fprintf(stderr, "casalb-agent: -r %s: seconds 0..86400\n", optarg);
				return 2;
			}
			a.resync_ms = (uint64_t)num * 1000;
			break;
		case 'N':
			a.plumb = false;
			break;
		case 'v':
			a.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (a.n_sm == 0 || !a.name || a.port == 0) {
		usage(stderr);
		return 2;
	}
	if (!name_encodable(a.name)) {
		fprintf(stderr, "casalb-agent: -n: a target name is 1..%d octets of UTF-8\n",
			CASA_NAME_MAX);
		return 2;
	}
	libbpf_verbose = a.verbose;
	libbpf_set_print(libbpf_log);
	a.auth = key ? key_load(key, alg, key_id) : NULL;
	a.signer.epoch = (uint32_t)time(NULL);
	a.conns = calloc(CONNS_MAX, sizeof(*a.conns));
	a.conns_now = calloc(CONNS_MAX, sizeof(*a.conns_now));
	a.ended = calloc(CONNS_MAX, sizeof(*a.ended));
	if (!a.conns || !a.conns_now || !a.ended)
		return 1;
	a.watch_fd = agent_conns_watch_open();
	if (a.watch_fd < 0)
		say(&a, "no socket-destroy notifications (%s): polling for connection ends",
		    strerror(-a.watch_fd));
	// Every ordinary way to stop it undoes the plumbing (VIPs, tc program).
	// Without SA_RESTART: a stop signal also ends a blocked send or poll.
	struct sigaction stop = { .sa_handler = on_signal };
	sigemptyset(&stop.sa_mask);
	sigaction(SIGINT, &stop, NULL);
	sigaction(SIGTERM, &stop, NULL);
	sigaction(SIGHUP, &stop, NULL);
	sigaction(SIGQUIT, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (unsigned i = 0; i < a.n_sm; i++) {
		struct in_addr in = { .s_addr = htonl(a.sm[i]) };

		snprintf(sms + strlen(sms), sizeof(sms) - strlen(sms), "%s%s", i ? ", " : "",
			 inet_ntoa(in));
	}
	say(&a, "target \"%s\", service manager%s %s (port %u)", a.name, a.n_sm > 1 ? "s" : "", sms,
	    a.port);
	while (!stopping) {
		uint64_t now = now_ms();
		struct pollfd pf[2] = { { .fd = a.fd, .events = POLLIN },
					{ .fd = a.watch_fd, .events = POLLIN } };

		if (a.fd < 0) {
			if (now >= a.next_try_ms)
				try_connect(&a);
			else
				poll(NULL, 0, 100);
			continue;
		}
		if (poll(pf, 2, 100) > 0 && (pf[0].revents & POLLIN))
			session_read(&a);
		if (a.fd >= 0)
			watch_ends(&a);
		if (a.fd >= 0)
			timers(&a, now_ms());
	}
	gre_stop(&a);
	unplumb(&a);
	if (a.fd >= 0)
		close(a.fd);
	if (a.watch_fd >= 0)
		close(a.watch_fd);
	casa_auth_destroy(a.auth);
	free(a.conns);
	free(a.conns_now);
	free(a.ended);
	say(&a, "stopped");
	return 0;
}
