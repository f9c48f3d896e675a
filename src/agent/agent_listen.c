/*
 * agent_listen.c - readiness (Rdy) through sock_diag netlink: the sockets
 * that accept VIP:port, bound to the VIP or to the wildcard address
 * (design.md section 1: "number of listening sockets on the target that
 * can accept the port"): listening TCP sockets, or unconnected UDP ones.
 * Port 0 (a service of every port) counts those of any port.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "agent.h"
#include "agent_diag.h"

struct want {
	uint32_t vip;
	uint16_t port;
	int count;
};

static void count_listener(const struct inet_diag_msg *d, void *arg)
{
	struct want *w = arg;
	uint32_t src = ntohl(d->id.idiag_src[0]);

	if ((w->port == 0 || ntohs(d->id.idiag_sport) == w->port) && (src == w->vip || src == 0))
		w->count++;
}

int agent_listeners(uint32_t vip, uint16_t port, uint8_t protocol)
{
	struct want w = { .vip = vip, .port = port };
	int rc;

	if (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP)
		return -EPROTONOSUPPORT;
	// A UDP socket that accepts from any client is unconnected: TCP_CLOSE
	// in sock_diag's states (a connected one is TCP_ESTABLISHED).
	rc = agent_diag_dump(protocol, protocol == IPPROTO_UDP ? 1u << TCP_CLOSE : 1u << TCP_LISTEN,
			     count_listener, &w);
	return rc < 0 ? rc : w.count;
}
