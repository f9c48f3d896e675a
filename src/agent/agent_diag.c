/*
 * agent_diag.c - one bounded netlink dump for the agent: the sock_diag dump
 * behind readiness and the connection table (agent_listen.c, agent_conns.c)
 * and the rtnetlink tc dumps behind the GRE hook's attach and detach
 * (agent_gre.c).
 */
#include <errno.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "agent_diag.h"

/* Messages of one receive buffer, up to NLMSG_DONE: 1 when the dump ended,
 * 0 when more is to come, or the error it ended with. */
static int dump_messages(const char *buf, ssize_t n,
			 void (*fn)(const struct nlmsghdr *h, void *arg), void *arg)
{
	const struct nlmsghdr *h = (const struct nlmsghdr *)buf;

	for (; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_DONE)
			return 1;
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(h);

			if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
				return -EPROTO;
			return e->error ? e->error : -EPROTO;
		}
		fn(h, arg);
	}
	return 0;
}

int agent_nl_dump(int protocol, const void *req, size_t len, unsigned max_bufs,
		  void (*fn)(const struct nlmsghdr *h, void *arg), void *arg)
{
	char buf[32768] __attribute__((aligned(NLMSG_ALIGNTO)));
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK };
	struct timeval tv = { .tv_sec = 2 };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    sendto(fd, req, len, 0, (struct sockaddr *)&nl, sizeof(nl)) < 0)
		rc = -errno;
	for (unsigned round = 0; rc == 0 && round < max_bufs; round++) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		rc = n < 0 ? -errno : dump_messages(buf, n, fn, arg);
	}
	close(fd);
	// rc == 0 here: max_bufs buffers and no NLMSG_DONE, a dump cut short.
	return rc > 0 ? 0 : rc == 0 ? -EMSGSIZE : rc;
}

struct diag_call {
	void (*fn)(const struct inet_diag_msg *d, void *arg);
	void *arg;
};

/* A message too short for its inet_diag_msg is not handed on. */
static void diag_message(const struct nlmsghdr *h, void *arg)
{
	const struct diag_call *c = arg;

	if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
		c->fn(NLMSG_DATA(h), c->arg);
}

int agent_diag_dump(uint8_t protocol, uint32_t states,
		    void (*fn)(const struct inet_diag_msg *d, void *arg), void *arg)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
		.nlh = { .nlmsg_len = sizeof(msg),
			 .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.req = { .sdiag_family = AF_INET,
			 .sdiag_protocol = protocol,
			 .idiag_states = states },
	};
	struct diag_call c = { .fn = fn, .arg = arg };

	// A host whose dump needs more than 10000 receive buffers is not one
	// this agent serves.
	return agent_nl_dump(NETLINK_SOCK_DIAG, &msg, sizeof(msg), 10000, diag_message, &c);
}
