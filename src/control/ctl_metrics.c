/*
 * ctl_metrics.c - the metrics endpoint (placeholder until it lands:
 * it accepts nothing).
 */
#include <stdlib.h>

#include "ctl.h"

struct ctl_metrics {
	struct ctl_view *view;
};

struct ctl_metrics *ctl_metrics_create(struct ctl_view *v, char *err, size_t errlen)
{
	struct ctl_metrics *m = calloc(1, sizeof(*m));

	(void)err;
	(void)errlen;
	if (m)
		m->view = v;
	return m;
}

void ctl_metrics_destroy(struct ctl_metrics *m)
{
	free(m);
}

int ctl_metrics_fd(const struct ctl_metrics *m)
{
	(void)m;
	return -1;
}

void ctl_metrics_run(struct ctl_metrics *m, uint64_t now_ms)
{
	(void)m;
	(void)now_ms;
}
