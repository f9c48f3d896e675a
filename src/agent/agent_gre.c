/*
 * agent_gre.c - the loader of agent_gre.bpf.c (GRE decapsulation at tc
 * ingress, docs/agent-gre.md). The program is compiled at build time and
 * embedded here through its libbpf skeleton (agent_gre.skel.h, generated
 * by bpftool), so casalb-agent needs no file at run time. Maps, names
 * and counters come from agent_gre.h, the header the program shares.
 *
 * Attaching installs one tc filter at the clsact ingress hook under a
 * fixed handle and priority (AGENT_GRE_TC_*), creating the clsact qdisc
 * when the interface has none. Detaching removes that filter if it is
 * still ours, and the qdisc only if we created it and nothing else is
 * attached to it, so the interface is left as it was found.
 */
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/netlink.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent.h"
#include "agent_diag.h"
#include "agent_gre.h"
// The generated skeleton casts its embedded bytes' const away for libbpf.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wcast-qual"
#include "agent_gre.skel.h"
#pragma GCC diagnostic pop

struct agent_gre {
	struct agent_gre_bpf *skel;
	uint64_t *percpu;        /* one counter on every possible CPU, for agent_gre_counters */
	int n_cpus;              /* libbpf_num_possible_cpus() */
	struct bpf_tc_hook hook; /* ifindex 0: loaded, not attached */
	uint32_t prog_id;        /* the kernel's id of our program: is the filter still ours? */
	bool hook_created;       /* we created the clsact qdisc */
};

static void say(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static int check_conf(const struct agent_gre_conf *conf, char *err, size_t errlen)
{
	if (!conf || conf->n_endpoints == 0 || !conf->endpoints) {
		say(err, errlen, "gre: no tunnel endpoint configured");
		return -EINVAL;
	}
	if (conf->n_endpoints > AGENT_GRE_MAX_ENDPOINTS) {
		say(err, errlen, "gre: %u tunnel endpoints, at most %d", conf->n_endpoints,
		    AGENT_GRE_MAX_ENDPOINTS);
		return -E2BIG;
	}
	if (conf->n_vips > AGENT_GRE_MAX_VIPS) {
		say(err, errlen, "gre: %u VIPs, at most %d", conf->n_vips, AGENT_GRE_MAX_VIPS);
		return -E2BIG;
	}
	if (conf->n_vips && !conf->vips) {
		say(err, errlen, "gre: %u VIPs but no list of them", conf->n_vips);
		return -EINVAL;
	}
	return 0;
}

/* Add (value 1) an address, host order, to a hash map keyed by network
 * order addresses. */
static int addr_put(struct bpf_map *map, uint32_t addr)
{
	uint32_t key = htonl(addr);
	uint8_t one = 1;

	return bpf_map__update_elem(map, &key, sizeof(key), &one, sizeof(one), BPF_ANY);
}

static int fill_maps(struct agent_gre *g, const struct agent_gre_conf *conf, char *err,
		     size_t errlen)
{
	struct agent_gre_config cfg = {
		.flags = conf->key_set ? AGENT_GRE_CFG_KEY : 0,
		.key_be = htonl(conf->key),
	};
	uint32_t zero = 0;
	char a[INET_ADDRSTRLEN];
	int rc;

	rc = bpf_map__update_elem(g->skel->maps.AGENT_GRE_MAP_CONFIG, &zero, sizeof(zero), &cfg,
				  sizeof(cfg), BPF_ANY);
	if (rc) {
		say(err, errlen, "gre: writing the configuration map: %s", strerror(-rc));
		return rc;
	}
	for (unsigned i = 0; i < conf->n_endpoints; i++) {
		rc = addr_put(g->skel->maps.AGENT_GRE_MAP_ENDPOINTS, conf->endpoints[i]);
		if (rc) {
			uint32_t be = htonl(conf->endpoints[i]);

			say(err, errlen, "gre: tunnel endpoint %s: %s",
			    inet_ntop(AF_INET, &be, a, sizeof(a)), strerror(-rc));
			return rc;
		}
	}
	for (unsigned i = 0; i < conf->n_vips; i++) {
		rc = addr_put(g->skel->maps.AGENT_GRE_MAP_VIPS, conf->vips[i]);
		if (rc) {
			uint32_t be = htonl(conf->vips[i]);

			say(err, errlen, "gre: VIP %s: %s", inet_ntop(AF_INET, &be, a, sizeof(a)),
			    strerror(-rc));
			return rc;
		}
	}
	return 0;
}

/* Open, load and fill: everything but the tc hook. */
static int load(struct agent_gre *g, const struct agent_gre_conf *conf, char *err, size_t errlen)
{
	int rc;

	g->n_cpus = libbpf_num_possible_cpus();
	if (g->n_cpus <= 0) {
		say(err, errlen, "gre: counting possible CPUs: %s", strerror(-g->n_cpus));
		return g->n_cpus ? g->n_cpus : -EINVAL;
	}
	g->percpu = calloc((size_t)g->n_cpus, sizeof(*g->percpu));
	if (!g->percpu) {
		say(err, errlen, "gre: out of memory");
		return -ENOMEM;
	}
	g->skel = agent_gre_bpf__open();
	if (!g->skel) {
		rc = -errno;
		say(err, errlen, "gre: opening the embedded BPF object: %s", strerror(errno));
		return rc;
	}
	rc = agent_gre_bpf__load(g->skel);
	if (rc) {
		say(err, errlen,
		    "gre: loading the BPF program: %s (needs CAP_BPF and CAP_NET_ADMIN)",
		    strerror(-rc));
		return rc;
	}
	return fill_maps(g, conf, err, errlen);
}

struct tc_want {
	int ifindex;
	const char *kind; // NULL: any kind
	int count;
};

/* Count a tc object (a qdisc or filter message) that belongs to the wanted
 * ifindex and, when a kind is wanted, has that TCA_KIND. */
static void tc_match(const struct nlmsghdr *h, void *arg)
{
	struct tc_want *w = arg;
	const struct tcmsg *tcm = NLMSG_DATA(h);
	const struct rtattr *a =
		(const struct rtattr *)((const char *)tcm + NLMSG_ALIGN(sizeof(*tcm)));
	int len = (int)h->nlmsg_len - NLMSG_LENGTH(sizeof(*tcm));

	if (len < 0 || tcm->tcm_ifindex != w->ifindex)
		return;
	if (!w->kind) {
		w->count++;
		return;
	}
	for (; RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type == TCA_KIND) {
			w->count += RTA_PAYLOAD(a) == strlen(w->kind) + 1 &&
				    memcmp(RTA_DATA(a), w->kind, RTA_PAYLOAD(a)) == 0;
			return;
		}
}

/*
 * Count the tc objects of one rtnetlink dump (RTM_GETQDISC, or
 * RTM_GETTFILTER of one parent) on ifindex, of that kind when kind is
 * not NULL: >= 0, or -errno. libbpf can create and destroy the clsact
 * hook and find one filter by handle, but not tell whether the qdisc is
 * there (without the kernel complaining to stderr) or list what else is
 * attached to it, which the detach needs to leave the interface as it was.
 */
static int tc_count(uint16_t type, int ifindex, uint32_t parent, const char *kind)
{
	struct {
		struct nlmsghdr nlh;
		struct tcmsg tcm;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req),
			 .nlmsg_type = type,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.tcm = { .tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex, .tcm_parent = parent },
	};
	struct tc_want w = { .ifindex = ifindex, .kind = kind };
	// 1000 buffers of qdiscs or filters is far beyond any host this
	// agent serves.
	int rc = agent_nl_dump(NETLINK_ROUTE, &req, sizeof(req), 1000, tc_match, &w);

	return rc < 0 ? rc : w.count;
}

/* The clsact qdisc's two sides hold no filter. */
static bool hook_empty(int ifindex)
{
	return tc_count(RTM_GETTFILTER, ifindex, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS), NULL) ==
		       0 &&
	       tc_count(RTM_GETTFILTER, ifindex, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS), NULL) ==
		       0;
}

static int hook_attach(struct agent_gre *g, const char *ifname, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = AGENT_GRE_TC_HANDLE,
		    .priority = AGENT_GRE_TC_PRIORITY, .flags = BPF_TC_F_REPLACE);
	unsigned ifindex;
	int rc;

	if (strlen(ifname) >= IF_NAMESIZE || !(ifindex = if_nametoindex(ifname))) {
		say(err, errlen, "gre: interface \"%s\": no such interface", ifname);
		return -ENODEV;
	}
	g->hook.sz = sizeof(g->hook);
	g->hook.ifindex = (int)ifindex;
	g->hook.attach_point = BPF_TC_INGRESS;
	rc = tc_count(RTM_GETQDISC, g->hook.ifindex, 0, "clsact");
	if (rc == 0) {
		rc = bpf_tc_hook_create(&g->hook);
		g->hook_created = rc == 0;
		if (rc == -EEXIST) // created since we looked
			rc = 0;
	}
	if (rc < 0) {
		say(err, errlen, "gre: interface \"%s\": creating the clsact qdisc: %s", ifname,
		    strerror(-rc));
		return rc;
	}
	opts.prog_fd = bpf_program__fd(g->skel->progs.AGENT_GRE_PROG);
	rc = bpf_tc_attach(&g->hook, &opts);
	if (rc) {
		say(err, errlen, "gre: interface \"%s\": attaching at tc ingress: %s", ifname,
		    strerror(-rc));
		if (g->hook_created && hook_empty(g->hook.ifindex)) {
			g->hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
			bpf_tc_hook_destroy(&g->hook);
		}
		return rc;
	}
	g->prog_id = opts.prog_id;
	return 0;
}

/* Our filter off the hook, if it is still ours (another loader may have
 * replaced it since); then the clsact qdisc, if we created it and it holds
 * nothing any more. The interface gone means all of it is gone. */
static int hook_detach(struct agent_gre *g)
{
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = AGENT_GRE_TC_HANDLE,
		    .priority = AGENT_GRE_TC_PRIORITY);
	int rc;

	// No filter at ingress at all: ours is gone (and libbpf's query would
	// print the kernel's complaint about a missing chain).
	rc = tc_count(RTM_GETTFILTER, g->hook.ifindex, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS),
		      NULL);
	if (rc > 0)
		rc = bpf_tc_query(&g->hook, &q);
	else if (rc == 0)
		rc = -ENOENT;
	if (rc == 0 && q.prog_id == g->prog_id) {
		LIBBPF_OPTS(bpf_tc_opts, d, .handle = AGENT_GRE_TC_HANDLE,
			    .priority = AGENT_GRE_TC_PRIORITY);

		rc = bpf_tc_detach(&g->hook, &d);
	} else if (rc == 0 || rc == -ENOENT || rc == -EINVAL) {
		rc = 0; // someone else's now, or gone (-EINVAL: no filter chain left)
	}
	if (rc == 0 && g->hook_created && hook_empty(g->hook.ifindex)) {
		g->hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS; // the whole qdisc
		rc = bpf_tc_hook_destroy(&g->hook);
		if (rc == -ENOENT || rc == -EINVAL)
			rc = 0; // someone removed it already
	}
	return rc == -ENODEV ? 0 : rc;
}

struct agent_gre *agent_gre_attach(const char *ifname, const struct agent_gre_conf *conf, char *err,
				   size_t errlen)
{
	struct agent_gre *g;
	int rc = check_conf(conf, err, errlen);

	if (rc) {
		errno = -rc;
		return NULL;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		say(err, errlen, "gre: out of memory");
		errno = ENOMEM;
		return NULL;
	}
	rc = load(g, conf, err, errlen);
	if (rc == 0 && ifname)
		rc = hook_attach(g, ifname, err, errlen);
	if (rc) {
		agent_gre_bpf__destroy(g->skel);
		free(g->percpu);
		free(g);
		errno = rc < 0 ? -rc : EINVAL;
		return NULL;
	}
	return g;
}

int agent_gre_detach(struct agent_gre *g)
{
	int rc = 0;

	if (!g)
		return 0;
	if (g->hook.ifindex)
		rc = hook_detach(g);
	agent_gre_bpf__destroy(g->skel);
	free(g->percpu);
	free(g);
	return rc;
}

int agent_gre_vip_add(struct agent_gre *g, uint32_t vip)
{
	return addr_put(g->skel->maps.AGENT_GRE_MAP_VIPS, vip);
}

int agent_gre_vip_del(struct agent_gre *g, uint32_t vip)
{
	uint32_t key = htonl(vip);

	return bpf_map__delete_elem(g->skel->maps.AGENT_GRE_MAP_VIPS, &key, sizeof(key), 0);
}

int agent_gre_counters(const struct agent_gre *g, uint64_t out[AGENT_GRE_N_COUNTERS])
{
	size_t size = (size_t)g->n_cpus * sizeof(*g->percpu);

	for (uint32_t c = 0; c < AGENT_GRE_N_COUNTERS; c++) {
		int rc = bpf_map__lookup_elem(g->skel->maps.AGENT_GRE_MAP_COUNTERS, &c, sizeof(c),
					      g->percpu, size, 0);

		if (rc)
			return rc;
		out[c] = 0;
		for (int cpu = 0; cpu < g->n_cpus; cpu++)
			out[c] += g->percpu[cpu];
	}
	return 0;
}

int agent_gre_prog_fd(const struct agent_gre *g)
{
	return bpf_program__fd(g->skel->progs.AGENT_GRE_PROG);
}
