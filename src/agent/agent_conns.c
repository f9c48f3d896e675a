/*
 * agent_conns.c - the VIP connections this host holds, through sock_diag
 * (established and closing TCP sockets whose local address and port are a
 * served VIP:port). The agent polls it: a connection seen before and gone
 * now has ended (CONN_END); the whole set is the resync (CONN_TABLE).
 */
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "agent_diag.h"

/* Every TCP state but LISTEN, CLOSE and TIME_WAIT: the socket still holds
 * the connection (TIME_WAIT has nothing left to deliver). */
#define CONN_STATES                                                               \
	((1u << TCP_ESTABLISHED) | (1u << TCP_SYN_RECV) | (1u << TCP_FIN_WAIT1) | \
	 (1u << TCP_FIN_WAIT2) | (1u << TCP_CLOSE_WAIT) | (1u << TCP_LAST_ACK) |  \
	 (1u << TCP_CLOSING))

static bool served(const struct casa_agent_service *svc, unsigned n_svc, uint32_t vip,
		   uint16_t port)
{
	for (unsigned i = 0; i < n_svc; i++)
		if (svc[i].vip == vip && (svc[i].port == port || svc[i].port == 0) &&
		    svc[i].protocol == IPPROTO_TCP)
			return true;
	return false;
}

static void add_conn(const struct inet_diag_msg *d, const struct casa_agent_service *svc,
		     unsigned n_svc, struct casa_agent_conn *out, unsigned max, unsigned *n)
{
	uint32_t local = ntohl(d->id.idiag_src[0]);
	uint16_t lport = ntohs(d->id.idiag_sport);

	// A listening socket has no peer port: its end is not a connection's.
	if (*n >= max || d->id.idiag_dport == 0 || !served(svc, n_svc, local, lport))
		return;
	out[(*n)++] = (struct casa_agent_conn){
		.client = ntohl(d->id.idiag_dst[0]),
		.vip = local,
		.client_port = ntohs(d->id.idiag_dport),
		.vip_port = lport,
		.protocol = IPPROTO_TCP,
		.state = d->idiag_state == TCP_ESTABLISHED || d->idiag_state == TCP_SYN_RECV ?
				 CASA_AGENT_CONN_ESTABLISHED :
				 CASA_AGENT_CONN_CLOSING,
	};
}

struct collect {
	const struct casa_agent_service *svc;
	unsigned n_svc, max, n;
	struct casa_agent_conn *out;
};

static void collect_conn(const struct inet_diag_msg *d, void *arg)
{
	struct collect *c = arg;

	add_conn(d, c->svc, c->n_svc, c->out, c->max, &c->n);
}

int agent_conns(const struct casa_agent_service *svc, unsigned n_svc, struct casa_agent_conn *out,
		unsigned max)
{
	struct collect c = { .svc = svc, .n_svc = n_svc, .max = max, .out = out };
	int rc = agent_diag_dump(IPPROTO_TCP, CONN_STATES, collect_conn, &c);

	return rc < 0 ? rc : (int)c.n;
}

/* The order of the 5-tuple: client, VIP, client port, VIP port, protocol. */
static int conn_cmp(const void *pa, const void *pb)
{
	const struct casa_agent_conn *a = pa, *b = pb;

	if (a->client != b->client)
		return a->client < b->client ? -1 : 1;
	if (a->vip != b->vip)
		return a->vip < b->vip ? -1 : 1;
	if (a->client_port != b->client_port)
		return a->client_port < b->client_port ? -1 : 1;
	if (a->vip_port != b->vip_port)
		return a->vip_port < b->vip_port ? -1 : 1;
	return (a->protocol > b->protocol) - (a->protocol < b->protocol);
}

void agent_conns_sort(struct casa_agent_conn *conns, unsigned n)
{
	qsort(conns, n, sizeof(*conns), conn_cmp);
}

unsigned agent_conns_ended(const struct casa_agent_conn *before, unsigned n_before,
			   const struct casa_agent_conn *now, unsigned n_now,
			   struct casa_agent_conn *ended, unsigned max)
{
	unsigned n = 0, j = 0;

	// One merge of two sorted tables: linear, for the 10^5 VIP connections
	// a busy target holds (the poll runs every second).
	for (unsigned i = 0; i < n_before && n < max; i++) {
		int c = 1;

		while (j < n_now && (c = conn_cmp(&now[j], &before[i])) < 0)
			j++;
		if (j == n_now || c != 0) {
			ended[n] = before[i];
			ended[n++].state = CASA_AGENT_END_CLOSED;
		}
	}
	return n;
}

#define WATCH_RCVBUF (8 << 20) /* bytes: some 50,000 notifications */

int agent_conns_watch_open(void)
{
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK,
				  .nl_groups = 1u << (SKNLGRP_INET_TCP_DESTROY - 1) };
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_SOCK_DIAG);
	int rcvbuf = WATCH_RCVBUF;

	if (fd < 0)
		return -errno;
	// A burst of short connections (thousands a second) overruns the
	// default 208 KiB; past rmem_max only CAP_NET_ADMIN's FORCE helps.
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) != 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&nl, sizeof(nl)) != 0) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	return fd;
}

int agent_conns_watch_read(int fd, const struct casa_agent_service *svc, unsigned n_svc,
			   struct casa_agent_conn *out, unsigned max, bool *overrun)
{
	static char buf[32768];
	unsigned n = 0;

	// Bounded by what is queued: the socket is non-blocking.
	for (int round = 0; round < 64 && n < max; round++) {
		ssize_t len = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		struct nlmsghdr *h = (struct nlmsghdr *)buf;

		if (len < 0 && errno == ENOBUFS) {
			// Notifications were lost: the caller must resync; the
			// ends read so far are still good.
			*overrun = true;
			continue;
		}
		if (len < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? (int)n : -errno;
		for (; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
			const struct inet_diag_msg *d = NLMSG_DATA(h);

			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || d->idiag_family != AF_INET)
				continue;
			add_conn(d, svc, n_svc, out, max, &n);
			if (n)
				out[n - 1].state = CASA_AGENT_END_CLOSED;
		}
	}
	return (int)n;
}
