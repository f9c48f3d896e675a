/*
 * agent_diag.c - one sock_diag dump for the agent's readiness and
 * connection table (agent_listen.c, agent_conns.c).
 */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_diag.h"

static int dump_request(int fd, uint32_t states)
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
			 .idiag_states = states },
	};
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK };

	return sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&nl, sizeof(nl)) < 0 ? -errno :
											  0;
}

int agent_diag_dump(uint32_t states, void (*fn)(const struct inet_diag_msg *d, void *arg),
		    void *arg)
{
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	static char buf[32768];
	int rc;

	if (fd < 0)
		return -errno;
	rc = dump_request(fd, states);
	// Bounded: a dump ends with NLMSG_DONE; a host whose dump needs more
	// than 10000 receive buffers is not one this agent serves.
	for (int round = 0; rc == 0 && round < 10000; round++) {
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
			fn(NLMSG_DATA(h), arg);
		}
	}
done:
	close(fd);
	return rc;
}
