/*
 * ctl_out.c - the output sink that console handlers and the metrics
 * renderer write to: a growable text buffer with a hard limit, so a
 * display never writes to a socket and tests compare its text.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static const char truncated_note[] = "... (output truncated)\n";

void ctl_out_init(struct ctl_out *o, size_t limit)
{
	*o = (struct ctl_out){ .limit = limit ? limit : CTL_OUT_LIMIT };
}

void ctl_out_free(struct ctl_out *o)
{
	free(o->buf);
	*o = (struct ctl_out){ .limit = o->limit };
}

void ctl_out_reset(struct ctl_out *o)
{
	o->len = 0;
	o->truncated = false;
	if (o->buf)
		o->buf[0] = '\0';
}

/* Make room for need more bytes plus a NUL, within the limit. */
static bool out_reserve(struct ctl_out *o, size_t need)
{
	size_t cap = o->cap ? o->cap : 1024;
	char *p;

	if (o->len + need + 1 > o->limit)
		return false;
	while (cap < o->len + need + 1)
		cap *= 2;
	if (cap > o->limit)
		cap = o->limit;
	if (cap == o->cap)
		return true;
	p = realloc(o->buf, cap);
	if (!p)
		return false;
	o->buf = p;
	o->cap = cap;
	return true;
}

/* Past the limit (or out of memory) the text ends with one note. */
static void out_truncate(struct ctl_out *o)
{
	size_t n = sizeof(truncated_note) - 1;

	if (o->truncated)
		return;
	o->truncated = true;
	if (!o->buf || o->cap < n + 1)
		return;
	if (o->len + n + 1 > o->cap)
		o->len = o->cap - n - 1;
	memcpy(o->buf + o->len, truncated_note, n + 1);
	o->len += n;
}

void ctl_out_vprintf(struct ctl_out *o, const char *fmt, va_list ap)
{
	va_list again;
	int n;

	if (o->truncated)
		return;
	va_copy(again, ap);
	n = vsnprintf(NULL, 0, fmt, ap);
	if (n < 0 || !out_reserve(o, (size_t)n)) {
		va_end(again);
		out_truncate(o);
		return;
	}
	vsnprintf(o->buf + o->len, (size_t)n + 1, fmt, again);
	va_end(again);
	o->len += (size_t)n;
}

void ctl_out_printf(struct ctl_out *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ctl_out_vprintf(o, fmt, ap);
	va_end(ap);
}

const char *ctl_out_text(const struct ctl_out *o)
{
	return o->buf ? o->buf : "";
}
