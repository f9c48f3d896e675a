/*
 * agent_diag.h - the agent room's private netlink helpers (not part of the
 * room's contract, agent.h): one bounded netlink dump, and on it the
 * sock_diag dump of IPv4 TCP sockets that readiness and the connection
 * table read.
 */
#ifndef AGENT_DIAG_H
#define AGENT_DIAG_H

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <stddef.h>
#include <stdint.h>

/*
 * One netlink dump: send req (len octets, a struct nlmsghdr first) on a new
 * socket of that netlink protocol and hand every message to fn until
 * NLMSG_DONE. Returns 0, the kernel's error, or -errno (-EAGAIN when the
 * kernel stays silent for 2 s, -EMSGSIZE when max_bufs receive buffers did
 * not reach the end of the dump).
 */
int agent_nl_dump(int protocol, const void *req, size_t len, unsigned max_bufs,
		  void (*fn)(const struct nlmsghdr *h, void *arg), void *arg);

/* Dump IPv4 sockets of protocol (IPPROTO_TCP or IPPROTO_UDP) whose state
 * bit is in `states` (1 << TCP_x; an unconnected UDP socket is TCP_CLOSE)
 * and call fn for each. Returns 0 or -errno (-EMSGSIZE past 10000 receive
 * buffers of one dump). */
int agent_diag_dump(uint8_t protocol, uint32_t states,
		    void (*fn)(const struct inet_diag_msg *d, void *arg), void *arg);

#endif
