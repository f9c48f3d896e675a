/*
 * agent_load.c - what the agent reports as LOAD (docs/agent-protocol.md):
 * the capacity weight from CPU idle time and pressure, and the QoS
 * fraction from TCP retransmissions and time-outs. Pure parsing and
 * arithmetic over the text of /proc files.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "casa.h"

int agent_cpu_parse(const char *proc_stat, struct agent_cpu_sample *out)
{
	const char *p = proc_stat;
	uint64_t v[10] = { 0 };
	int n;

	// The aggregate line comes first and starts "cpu " (per-CPU lines
	// are "cpu0", "cpu1", ...).
	while (p && strncmp(p, "cpu ", 4) != 0) {
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	if (!p)
		return -EINVAL;
	n = sscanf(p + 4,
		   "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
		   " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64,
		   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
	if (n < 4)
		return -EINVAL;
	// user nice system idle iowait irq softirq steal guest guest_nice;
	// guest time is already inside user and nice.
	out->idle = v[3] + v[4];
	out->total = 0;
	for (int i = 0; i < n && i < 8; i++)
		out->total += v[i];
	return 0;
}

int agent_psi_parse(const char *pressure_cpu, double *some_avg10)
{
	const char *p = strstr(pressure_cpu, "some avg10=");
	char *end;
	double v;

	if (!p)
		return -EINVAL;
	v = strtod(p + strlen("some avg10="), &end);
	if (end == p + strlen("some avg10=") || v < 0 || v > 100)
		return -EINVAL;
	*some_avg10 = v;
	return 0;
}

int agent_cgroup_usage_parse(const char *cpu_stat, uint64_t *usage_usec)
{
	const char *p = strstr(cpu_stat, "usage_usec ");
	char *end;

	// Anchored at a line start: "usage_usec" is also a suffix of nothing
	// else in cpu.stat today, but be strict.
	if (!p || (p != cpu_stat && p[-1] != '\n'))
		return -EINVAL;
	p += strlen("usage_usec ");
	*usage_usec = strtoull(p, &end, 10);
	return end == p ? -EINVAL : 0;
}

double agent_cgroup_allowance(const char *cpu_max, unsigned ncpu)
{
	unsigned long long quota, period;

	if (cpu_max && sscanf(cpu_max, "%llu %llu", &quota, &period) == 2 && period > 0 &&
	    quota > 0) {
		double cpus = (double)quota / (double)period;

		return ncpu && cpus > ncpu ? ncpu : cpus;
	}
	return ncpu ? ncpu : 1; // "max PERIOD": no limit but the host's CPUs
}

void agent_cgroup_sample(uint64_t usage_usec, uint64_t mono_usec, double allowance,
			 struct agent_cpu_sample *out)
{
	out->total = (uint64_t)((double)mono_usec * allowance);
	out->idle = usage_usec < out->total ? out->total - usage_usec : 0;
}

uint8_t agent_capacity(const struct agent_cpu_sample *prev, const struct agent_cpu_sample *now,
		       double psi_some_avg10)
{
	double idle, press, cap;

	if (!prev || now->total <= prev->total)
		return CASA_AGENT_CAPACITY_MAX;
	// A cgroup that ran past its allowance in a burst can make idle go
	// backwards between samples: that is no idle time at all.
	idle = now->idle > prev->idle ?
		       (double)(now->idle - prev->idle) / (double)(now->total - prev->total) :
		       0;
	if (idle > 1)
		idle = 1;
	press = psi_some_avg10 / 100.0;
	if (press < 0)
		press = 0;
	if (press > 1)
		press = 1;
	cap = CASA_AGENT_CAPACITY_MAX * idle * (1.0 - press);
	if (cap < 1.0)
		return idle > 0 && press < 1 ? 1 : (uint8_t)(cap + 0.5);
	return (uint8_t)(cap + 0.5);
}

/*
 * The value of `name` in a /proc/net/snmp-style pair of lines:
 *   "Tcp: RtoAlgorithm ... OutSegs RetransSegs ..."
 *   "Tcp: 1 ... 1733 0 ..."
 */
static int snmp_value(const char *text, const char *prefix, const char *name, uint64_t *out)
{
	size_t plen = strlen(prefix);
	const char *hdr = text;

	while (hdr) {
		const char *vals = strchr(hdr, '\n');

		if (strncmp(hdr, prefix, plen) == 0 && vals &&
		    strncmp(vals + 1, prefix, plen) == 0) {
			const char *h = hdr + plen, *v = vals + 1 + plen;
			size_t nlen = strlen(name);

			// Walk both lines column by column.
			while (*h && *h != '\n' && *v && *v != '\n') {
				char *vend;
				uint64_t x;

				while (*h == ' ')
					h++;
				while (*v == ' ')
					v++;
				x = strtoull(v, &vend, 10);
				if (strncmp(h, name, nlen) == 0 &&
				    (h[nlen] == ' ' || h[nlen] == '\n')) {
					*out = x;
					return 0;
				}
				h += strcspn(h, " \n");
				v = vend;
			}
			return -ENOENT;
		}
		hdr = vals ? vals + 1 : NULL;
	}
	return -ENOENT;
}

int agent_tcp_parse(const char *snmp, const char *netstat, struct agent_tcp_sample *out)
{
	memset(out, 0, sizeof(*out));
	if (snmp_value(snmp, "Tcp:", "OutSegs", &out->out_segs) != 0 ||
	    snmp_value(snmp, "Tcp:", "RetransSegs", &out->retrans_segs) != 0)
		return -EINVAL;
	if (netstat)
		snmp_value(netstat, "TcpExt:", "TCPTimeouts", &out->timeouts);
	return 0;
}

uint16_t agent_qos(const struct agent_tcp_sample *prev, const struct agent_tcp_sample *now)
{
	uint64_t sent, bad;
	double q;

	if (!prev || now->out_segs <= prev->out_segs)
		return 0;
	sent = now->out_segs - prev->out_segs;
	bad = (now->retrans_segs >= prev->retrans_segs ? now->retrans_segs - prev->retrans_segs :
							 0) +
	      4 * (now->timeouts >= prev->timeouts ? now->timeouts - prev->timeouts : 0);
	q = (double)bad / (double)sent * 10.0;
	if (q > 1)
		q = 1;
	return (uint16_t)(q * CASA_AGENT_QOS_ONE + 0.5);
}
