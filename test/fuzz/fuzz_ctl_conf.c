/*
 * fuzz_ctl_conf.c - libFuzzer target for casalb's configuration checker
 * (ctl_conf_load_text: libconfig's parser, then casalb's own validation).
 *
 * Any text must give "OK" or a list of errors, never a crash or a leak.
 * Properties, each a __builtin_trap() when broken: an accepted
 * configuration has at least one port, target and service; every service
 * has ports and names existing targets; its fast-path tables build; and
 * the normalised print of it is accepted again with the same shape.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

static FILE *sink(void)
{
	static FILE *null;

	if (!null)
		null = fopen("/dev/null", "w");
	return null;
}

static void check_accepted(const struct ctl_conf *c)
{
	struct fp_tables_desc d;
	struct ctl_conf again;
	char *text = NULL;
	size_t len = 0;
	FILE *out;

	check(c->fp.n_ports >= 1 && c->n_targets >= 1 && c->n_services >= 1);
	for (unsigned i = 0; i < c->n_services; i++) {
		check(c->services[i].n_ports >= 1 && c->services[i].n_targets >= 1);
		for (unsigned t = 0; t < c->services[i].n_targets; t++)
			check(c->services[i].targets[t] < c->n_targets);
	}
	check(ctl_tables_build(c, &d) == 0);
	ctl_tables_free(&d);
	out = open_memstream(&text, &len);
	ctl_conf_print(c, out);
	fclose(out);
	check(ctl_conf_load_text(text, "printed", &again, sink()) == 0);
	check(again.n_targets == c->n_targets && again.n_services == c->n_services);
	ctl_conf_free(&again);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ctl_conf c;
	char *text;

	if (size > 65536 || memchr(data, '@', size))
		return 0; // no @include: the fuzzer must not read files
	text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	if (ctl_conf_load_text(text, "fuzz", &c, sink()) == 0) {
		check_accepted(&c);
		ctl_conf_free(&c);
	}
	free(text);
	return 0;
}
