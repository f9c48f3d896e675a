/*
 * ctl_console.c - the admin console (placeholder until the console lands:
 * it accepts nothing).
 */
#include <stdlib.h>

#include "ctl.h"

struct ctl_console {
	struct ctl_view *view;
};

struct ctl_console *ctl_console_create(struct ctl_view *v, char *err, size_t errlen)
{
	struct ctl_console *k = calloc(1, sizeof(*k));

	(void)err;
	(void)errlen;
	if (k)
		k->view = v;
	return k;
}

void ctl_console_destroy(struct ctl_console *k)
{
	free(k);
}

int ctl_console_fd(const struct ctl_console *k)
{
	(void)k;
	return -1;
}

void ctl_console_run(struct ctl_console *k, uint64_t now_ms)
{
	(void)k;
	(void)now_ms;
}
