/*
 * ctl_snap.c - one consistent copy of everything the displays show.
 *
 * The console and the metrics endpoint both render from a ctl_snap taken on
 * the control thread, so a `show` and a scrape taken at the same moment say
 * the same thing, and neither ever touches a worker's data except through
 * fastpath.h's read-only counters.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static int snap_dpt(const struct ctl_view *v, struct ctl_snap *s)
{
	unsigned n = ctl_sm_dpt_count(v->sm);

	if (n == 0)
		return 0;
	s->dpt = calloc(n, sizeof(*s->dpt));
	if (!s->dpt)
		return -ENOMEM;
	s->n_dpt = ctl_sm_dpt_rows(v->sm, s->dpt, n);
	return 0;
}

static int snap_fas(const struct ctl_view *v, struct ctl_snap *s)
{
	const struct ctl_fa_row *rows;
	unsigned n;

	if (!v->casa)
		return 0;
	n = ctl_casa_fas(v->casa, &rows);
	if (n == 0)
		return 0;
	s->fas = malloc(n * sizeof(*s->fas));
	if (!s->fas)
		return -ENOMEM;
	memcpy(s->fas, rows, n * sizeof(*s->fas));
	s->n_fas = n;
	return 0;
}

static int snap_agents(const struct ctl_view *v, struct ctl_snap *s)
{
	unsigned max = v->c->agents.max;

	if (!v->agent || max == 0)
		return 0;
	s->agents = calloc(max, sizeof(*s->agents));
	if (!s->agents)
		return -ENOMEM;
	s->n_agents = ctl_agent_sessions(v->agent, s->agents, max);
	return 0;
}

static int snap_workers(struct ctl_snap *s)
{
	unsigned n = fp_worker_count();

	if (n == 0)
		return 0;
	s->workers = calloc(n, sizeof(*s->workers));
	if (!s->workers)
		return -ENOMEM;
	for (unsigned w = 0; w < n; w++)
		if (fp_worker_stats_read(w, &s->workers[w]) != 0)
			memset(&s->workers[w], 0, sizeof(s->workers[w]));
	s->n_workers = n;
	return 0;
}

int ctl_snap_collect(const struct ctl_view *v, uint64_t now_ms, struct ctl_snap *s)
{
	int rc;

	*s = (struct ctl_snap){
		.taken_ms = now_ms,
		.uptime_ms = now_ms - v->started_ms,
		.roles = v->c->roles,
		.rank = v->c->backup.rank,
		.vcrt_capacity = v->c->sm.connections,
	};
	if (v->sm) {
		s->sm = *ctl_sm_counters(v->sm);
		s->vcrt_count = ctl_sm_conn_count(v->sm);
	}
	if (v->casa)
		s->casa = *ctl_casa_counters(v->casa);
	if (v->agent)
		s->agent = *ctl_agent_counters(v->agent);
	fp_affinity_stats(&s->aff);
	rc = v->sm ? snap_dpt(v, s) : 0;
	if (rc == 0)
		rc = snap_fas(v, s);
	if (rc == 0)
		rc = snap_agents(v, s);
	if (rc == 0)
		rc = snap_workers(s);
	if (rc != 0)
		ctl_snap_free(s);
	return rc;
}

void ctl_snap_free(struct ctl_snap *s)
{
	free(s->dpt);
	free(s->fas);
	free(s->agents);
	free(s->workers);
	memset(s, 0, sizeof(*s));
}
