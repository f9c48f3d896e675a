/*
 * agent_diag.h - the agent room's private sock_diag helper (not part of
 * the room's contract, agent.h): one dump of IPv4 TCP sockets in the given
 * states, each handed to fn.
 */
#ifndef AGENT_DIAG_H
#define AGENT_DIAG_H

#include <linux/inet_diag.h>
#include <stdint.h>

/* Dump IPv4 TCP sockets whose state bit is in `states` (1 << TCP_x) and
 * call fn for each. Returns 0 or -errno. Bounded: at most 10000 receive
 * buffers of one dump. */
int agent_diag_dump(uint32_t states, void (*fn)(const struct inet_diag_msg *d, void *arg),
		    void *arg);

#endif
