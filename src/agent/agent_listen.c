/*
 * agent_listen.c - readiness (Rdy) through sock_diag netlink: the
 * listening TCP sockets that accept VIP:port, bound to the VIP or to the
 * wildcard address (design.md section 1: "number of listening sockets on
 * the target that can accept the port").
 */
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"

/* Ask for every listening IPv4 TCP socket; the kernel answers in parts. */
static int dump_request(int fd)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
		.nlh = { .nlmsg_len = sizeof(msg),
			 .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.req = { .sdiag_family = AF_INET,
			 .sdiag_protocol = IPPROTO_TCP,
			 .idiag_states = 1u << TCP_LISTEN },
	};
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK };

	return sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&nl, sizeof(nl)) < 0 ? -errno :
											  0;
}

static bool accepts(const struct inet_diag_msg *d, uint32_t vip, uint16_t port)
{
	uint32_t src = ntohl(d->id.idiag_src[0]);

	return ntohs(d->id.idiag_sport) == port && (src == vip || src == 0);
}

int agent_listeners(uint32_t vip, uint16_t port)
{
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	static char buf[32768];
	int count = 0, rc;

	if (fd < 0)
		return -errno;
	rc = dump_request(fd);
	// Bounded: a dump ends with NLMSG_DONE; a namespace with more
	// listeners than 1000 receive buffers hold is not a target host.
	for (int round = 0; rc == 0 && round < 1000; round++) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h = (struct nlmsghdr *)buf;

		if (n < 0) {
			rc = -errno;
			break;
		}
		for (; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				goto done;
			if (h->nlmsg_type == NLMSG_ERROR) {
				rc = -EPROTO;
				goto done;
			}
			if (accepts(NLMSG_DATA(h), vip, port))
				count++;
		}
	}
done:
	close(fd);
	return rc < 0 ? rc : count;
}
