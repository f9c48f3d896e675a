/*
 * ctl_cmd.c - the admin console's commands: one table of rows (words,
 * arguments, help, enable level, handler), the parser that matches a line
 * against it, and the handlers that change the running appliance (ports,
 * quiesce, weights, counters, reload). Displays are in ctl_show.c, the
 * packet trace in ctl_trace.c; docs/console.md describes every command.
 *
 * Why a table and a parser of our own when libcli has both: the console
 * registers the same rows with libcli (help, completion, "?"), and every
 * line a session runs comes back here as text, so unit tests and the
 * fuzzer exercise exactly what a session does, without a socket
 * (style.md habit 10).
 *
 * Context: control thread. Handlers never block; long tables are bounded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "casa.h"
#include "ctl_cmd_int.h"

static int cmd_help(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);
static int cmd_port_add(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);
static int cmd_port_delete(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);
static int cmd_quiesce(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);
static int cmd_resume(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);
static int cmd_weight(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);
static int cmd_clear(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);
static int cmd_reload(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);

/* The commands. Seed 000 5.6 (netstat VIPADCFG, VIPADYN, VDPT, VCRT) and
 * 6.8 (show ip casa oper, stats, wildcard, affinities) name the displays. */
static const struct ctl_cmd cmds[] = {
	{ "show vipadcfg", "",
	  "VIPA configuration: VIPs, distributed ports, targets (netstat VIPADCFG)", false,
	  ctl_show_vipadcfg },
	{ "show vipadyn", "", "VIPA status: active or backup, distributing (netstat VIPADYN)",
	  false, ctl_show_vipadyn },
	{ "show vdpt", "[detail]",
	  "destination port table: Rdy, connections, weights (netstat VDPT)", false,
	  ctl_show_vdpt },
	{ "show vcrt", "[detail] [vip A.B.C.D] [limit N]",
	  "connection routing table: each connection's target (netstat VCRT)", false,
	  ctl_show_vcrt },
	{ "show casa oper", "", "CASA addresses, ports, mode and authentication", false,
	  ctl_show_casa_oper },
	{ "show casa stats", "", "CASA counters: wildcards, affinities, interest, drops", false,
	  ctl_show_casa_stats },
	{ "show casa wildcard", "[detail]", "wildcard affinities advertised (one per service port)",
	  false, ctl_show_casa_wildcard },
	{ "show casa affinities", "[detail] [limit N]",
	  "fixed affinities of the local forwarding agent (the workers)", false,
	  ctl_show_casa_affinities },
	{ "show workers", "", "fast-path workers: packets, bytes, busy share", false,
	  ctl_show_workers },
	{ "show drops", "", "every non-zero drop counter, by name", false, ctl_show_drops },
	{ "show targets", "", "targets: dispatch, weight, agent, state, connections", false,
	  ctl_show_targets },
	{ "show agents", "", "agent sessions of the target hosts", false, ctl_show_agents },
	{ "show fas", "[detail]", "forwarding agents known from their hellos", false,
	  ctl_show_fas },
	{ "show config", "", "the running configuration, live changes included (no secrets)", false,
	  ctl_show_config },
	{ "trace flow", "PROTO SRC SPORT DST DPORT [syn|ack|fin|rst|synack]",
	  "what the fast path would do with such a packet, and why", false, ctl_trace_flow },
	{ "port add", "SERVICE PORT", "distribute one more port of a service", true, cmd_port_add },
	{ "port delete", "SERVICE PORT",
	  "stop distributing a port; its connections continue until they end", true,
	  cmd_port_delete },
	{ "target quiesce", "TARGET", "no new connections to a target; existing ones drain", true,
	  cmd_quiesce },
	{ "target resume", "TARGET", "a quiesced target takes new connections again", true,
	  cmd_resume },
	{ "target weight", "TARGET WEIGHT", "set a target's configured weight (0..1000000)", true,
	  cmd_weight },
	{ "clear counters", "", "zero the counters every display shows", true, cmd_clear },
	{ "reload", "", "read the configuration file again and apply what may change live", true,
	  cmd_reload },
	{ "help", "[COMMAND]", "list the commands", false, cmd_help },
};

#define N_CMDS (sizeof(cmds) / sizeof(cmds[0]))

unsigned ctl_cmd_table(const struct ctl_cmd **rows)
{
	*rows = cmds;
	return N_CMDS;
}

/* ---- helpers shared with ctl_show.c and ctl_trace.c ----------------------------- */

int ctl_cmd_fail(struct ctl_out *out, int err, const char *fmt, ...)
{
	va_list ap;

	ctl_out_printf(out, "%% ");
	va_start(ap, fmt);
	ctl_out_vprintf(out, fmt, ap);
	va_end(ap);
	ctl_out_printf(out, "\n");
	return err;
}

void ctl_cmd_log(struct ctl_cmd_ctx *x, struct ctl_out *out, const char *fmt, ...)
{
	FILE *log = x->o->log ? x->o->log : stderr;
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	ctl_out_printf(out, "%s\n", line);
	fprintf(log, "console: %s: %s\n", x->o->who ? x->o->who : "console", line);
	fflush(log);
}

const char *ctl_cmd_word(const char *w, char *buf, size_t cap)
{
	size_t i = 0;

	for (; w[i] && i + 1 < cap && i < 40; i++)
		buf[i] = (unsigned char)w[i] < 0x20 || (unsigned char)w[i] >= 0x7F ? '?' : w[i];
	buf[i] = '\0';
	return buf;
}

bool ctl_cmd_ipv4(const char *s, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		return false;
	*out = ntohl(a.s_addr);
	return true;
}

bool ctl_cmd_uint(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	unsigned long long v = 0;

	if (!*s || strlen(s) > 10)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (unsigned)(*p - '0');
	}
	if (v < min || v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

const char *ctl_cmd_ip(uint32_t a, char *buf)
{
	return casa_ip_format(a, buf, 16);
}

const char *ctl_cmd_proto(uint8_t p, char *buf)
{
	if (p == 6)
		return "TCP";
	if (p == 17)
		return "UDP";
	if (p == 1)
		return "ICMP";
	snprintf(buf, 4, "%u", p);
	return buf;
}

int ctl_cmd_target(const struct ctl_conf *c, const char *name)
{
	for (unsigned i = 0; i < c->n_targets; i++)
		if (strcmp(c->targets[i].name, name) == 0)
			return (int)i;
	return -1;
}

int ctl_cmd_service(const struct ctl_conf *c, const char *name)
{
	for (unsigned i = 0; i < c->n_services; i++)
		if (strcmp(c->services[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* `word` is a unique-enough prefix of option `name` (at least 1 letter). */
static bool opt_is(const char *word, const char *name)
{
	size_t n = strlen(word);

	return n > 0 && strncmp(word, name, n) == 0;
}

static int opts_usage(struct ctl_cmd_ctx *x, const char *word, struct ctl_out *out)
{
	char w[48];

	return ctl_cmd_fail(out, -EINVAL, "unexpected \"%s\": %s takes %s",
			    ctl_cmd_word(word, w, sizeof(w)), x->cmd->words,
			    x->cmd->args[0] ? x->cmd->args : "no arguments");
}

int ctl_cmd_opts(struct ctl_cmd_ctx *x, int argc, char **argv, unsigned allowed,
		 struct ctl_show_opts *o, struct ctl_out *out)
{
	char w[48];

	*o = (struct ctl_show_opts){ .limit = CTL_SHOW_LIMIT_DEFAULT };
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		if ((allowed & CTL_OPT_DETAIL) && opt_is(a, "detail")) {
			o->detail = true;
			continue;
		}
		if (!(((allowed & CTL_OPT_VIP) && opt_is(a, "vip")) ||
		      ((allowed & CTL_OPT_LIMIT) && opt_is(a, "limit"))))
			return opts_usage(x, a, out);
		if (i + 1 == argc)
			return ctl_cmd_fail(out, -EINVAL, "%s needs a value: %s takes %s",
					    opt_is(a, "vip") ? "vip" : "limit", x->cmd->words,
					    x->cmd->args);
		if (opt_is(a, "vip") && (allowed & CTL_OPT_VIP)) {
			if (!ctl_cmd_ipv4(argv[++i], &o->vip))
				return ctl_cmd_fail(out, -EINVAL,
						    "vip \"%s\" is not an IPv4 address",
						    ctl_cmd_word(argv[i], w, sizeof(w)));
			o->has_vip = true;
		} else if (!ctl_cmd_uint(argv[++i], 1, CTL_SHOW_LIMIT_MAX, &o->limit)) {
			return ctl_cmd_fail(out, -EINVAL, "limit \"%s\" out of range 1..%u",
					    ctl_cmd_word(argv[i], w, sizeof(w)),
					    CTL_SHOW_LIMIT_MAX);
		}
	}
	return 0;
}

/* ---- the running configuration with live changes ----------------------------------- */

int ctl_cmd_conf_live(const struct ctl_view *v, struct ctl_conf *out)
{
	const struct ctl_conf *c = v->c;

	*out = *c;
	out->targets = calloc(c->n_targets ? c->n_targets : 1, sizeof(*out->targets));
	out->services = calloc(c->n_services ? c->n_services : 1, sizeof(*out->services));
	if (!out->targets || !out->services) {
		ctl_cmd_conf_live_free(out);
		return -ENOMEM;
	}
	memcpy(out->targets, c->targets, c->n_targets * sizeof(*c->targets));
	memcpy(out->services, c->services, c->n_services * sizeof(*c->services));
	for (unsigned t = 0; v->sm && t < c->n_targets; t++) {
		struct ctl_target_row r;

		if (ctl_sm_target_get(v->sm, t, &r) == 0)
			out->targets[t].weight = r.weight;
	}
	for (unsigned i = 0; v->sm && i < c->n_services; i++)
		out->services[i].n_ports = ctl_sm_service_ports(v->sm, i, out->services[i].ports,
								CTL_PORTS_PER_SERVICE);
	return 0;
}

void ctl_cmd_conf_live_free(struct ctl_conf *c)
{
	free(c->targets);
	free(c->services);
	c->targets = NULL;
	c->services = NULL;
}

/* ---- parsing a line ------------------------------------------------------------- */

/* Words of line: blanks separate, "..." groups (\" and \\ inside). In
 * place in buf. Returns the count, -1 for an open quote, -2 for too many. */
static int split_words(char *buf, char **w, int max)
{
	int n = 0;
	char *p = buf;

	for (;;) {
		char *o;

		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (!*p)
			return n;
		if (n == max)
			return -2;
		w[n++] = o = p;
		if (*p != '"') {
			while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
				p++;
			if (*p)
				*p++ = '\0';
			continue;
		}
		for (p++;; p++) {
			if (!*p)
				return -1;
			if (*p == '"')
				break;
			if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
				p++;
			*o++ = *p;
		}
		*o = '\0';
		p++;
	}
}

/* Word i of a row (rows hold at most a few short words). */
static bool row_word(const struct ctl_cmd *r, int i, char *buf, size_t cap)
{
	const char *p = r->words;

	for (; i > 0; i--) {
		p = strchr(p, ' ');
		if (!p)
			return false;
		p++;
	}
	snprintf(buf, cap, "%.*s", (int)strcspn(p, " "), p);
	return true;
}

static int row_nwords(const struct ctl_cmd *r)
{
	int n = 1;

	for (const char *p = r->words; *p; p++)
		n += *p == ' ';
	return n;
}

/* The distinct words at position level of the candidate rows, in table
 * order; returns how many. */
static size_t level_words(const bool *cand, int level, char (*words)[24])
{
	size_t n = 0;

	for (size_t r = 0; r < N_CMDS; r++) {
		char wd[24];
		bool dup = false;

		if (!cand[r] || !row_word(&cmds[r], level, wd, sizeof(wd)))
			continue;
		for (size_t i = 0; i < n; i++)
			dup |= strcmp(words[i], wd) == 0;
		if (!dup)
			memcpy(words[n++], wd, sizeof(wd));
	}
	return n;
}

/* "a, b, c": the words that start with prefix ("" for all). */
static const char *word_list(char (*words)[24], size_t n, const char *prefix, char *buf, size_t cap)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n; i++)
		if (strncmp(words[i], prefix, strlen(prefix)) == 0)
			len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, "%s%s",
						len ? ", " : "", words[i]);
	return buf;
}

/* The candidate row that ends at level (all its words given), or -1. */
static int row_complete(const bool *cand, int level)
{
	for (size_t r = 0; r < N_CMDS; r++)
		if (cand[r] && row_nwords(&cmds[r]) == level)
			return (int)r;
	return -1;
}

/* Which of words `typed` names: an exact word, else the only one it is a
 * prefix of. Returns its index; n when none; n + 1 when ambiguous. */
static size_t pick_word(char (*words)[24], size_t n, const char *typed)
{
	size_t hit = n, hits = 0;

	if (typed[0] == '\0') // "" is a prefix of everything, a choice of nothing
		return n;
	for (size_t i = 0; i < n; i++)
		if (strcmp(words[i], typed) == 0)
			return i;
	for (size_t i = 0; i < n; i++)
		if (strncmp(words[i], typed, strlen(typed)) == 0) {
			hit = i;
			hits++;
		}
	return hits > 1 ? n + 1 : hit;
}

/* The row words[0..n) name, with *used the words it took (the rest are
 * its arguments); or -1 with the error written. A level at a time: the
 * typed word among the next words of the rows still possible. */
static int match(char **w, int n, int *used, struct ctl_out *out)
{
	bool cand[N_CMDS];
	char words[N_CMDS][24], prev[24] = "", list[256], wd[48];

	for (size_t r = 0; r < N_CMDS; r++)
		cand[r] = true;
	for (int level = 0;; level++) {
		int complete = row_complete(cand, level);
		size_t nw = level_words(cand, level, words), k;

		if (level == n || nw == 0) {
			if (complete >= 0) {
				*used = level;
				return complete;
			}
			ctl_cmd_fail(out, -EINVAL, "incomplete command: %s takes %s",
				     level ? prev : "a command",
				     word_list(words, nw, "", list, sizeof(list)));
			return -1;
		}
		k = pick_word(words, nw, w[level]);
		if (k == nw && complete >= 0) {
			*used = level; // the rest are the row's arguments
			return complete;
		}
		ctl_cmd_word(w[level], wd, sizeof(wd));
		if (k == nw && level == 0) {
			ctl_cmd_fail(out, -EINVAL, "unknown command \"%s\"; try help", wd);
			return -1;
		}
		if (k == nw) {
			ctl_cmd_fail(out, -EINVAL, "unknown \"%s\": %s takes %s", wd, prev,
				     word_list(words, nw, "", list, sizeof(list)));
			return -1;
		}
		if (k > nw) {
			ctl_cmd_fail(out, -EINVAL, "ambiguous \"%s\": %s", wd,
				     word_list(words, nw, w[level], list, sizeof(list)));
			return -1;
		}
		memcpy(prev, words[k], sizeof(prev));
		for (size_t r = 0; r < N_CMDS; r++) {
			char rw[24];

			cand[r] = cand[r] && row_word(&cmds[r], level, rw, sizeof(rw)) &&
				  strcmp(rw, prev) == 0;
		}
	}
}

int ctl_cmd_exec(struct ctl_view *v, const char *line, const struct ctl_cmd_origin *o,
		 uint64_t now_ms, struct ctl_out *out)
{
	static const struct ctl_cmd_origin local = { .who = NULL };
	char buf[CTL_CMD_LINE_MAX + 1], *w[CTL_CMD_WORDS_MAX];
	struct ctl_cmd_ctx x = { .v = v, .o = o ? o : &local, .now_ms = now_ms };
	int n, used = 0, r;

	if (!line || strlen(line) > CTL_CMD_LINE_MAX)
		return ctl_cmd_fail(out, -EINVAL, "line too long (at most %d characters)",
				    CTL_CMD_LINE_MAX);
	snprintf(buf, sizeof(buf), "%s", line);
	n = split_words(buf, w, CTL_CMD_WORDS_MAX);
	if (n == -1)
		return ctl_cmd_fail(out, -EINVAL, "unterminated quote");
	if (n == -2)
		return ctl_cmd_fail(out, -EINVAL, "too many words (at most %d)", CTL_CMD_WORDS_MAX);
	if (n == 0)
		return 0;
	r = match(w, n, &used, out);
	if (r < 0)
		return -EINVAL;
	x.cmd = &cmds[r];
	if (x.cmd->privileged && !x.o->enabled)
		return ctl_cmd_fail(out, -EPERM,
				    "\"%s\" changes the running appliance: enable first",
				    x.cmd->words);
	return x.cmd->handler(&x, n - used, w + used, out);
}

/* ---- help --------------------------------------------------------------------------- */

static int cmd_help(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	char prefix[CTL_CMD_LINE_MAX + 1] = "";
	size_t len = 0;
	unsigned shown = 0;

	(void)x;
	for (int i = 0; i < argc; i++)
		len += (size_t)snprintf(prefix + len,
					len < sizeof(prefix) ? sizeof(prefix) - len : 0, "%s%s",
					i ? " " : "", argv[i]);
	for (size_t r = 0; r < N_CMDS; r++) {
		char usage[96];

		if (strncmp(cmds[r].words, prefix, strlen(prefix)) != 0)
			continue;
		snprintf(usage, sizeof(usage), "%s%s%s", cmds[r].words, cmds[r].args[0] ? " " : "",
			 cmds[r].args);
		// A long usage gets a line of its own, so the help column stays put.
		if (strlen(usage) > 44) {
			ctl_out_printf(out, "  %s\n", usage);
			usage[0] = '\0';
		}
		ctl_out_printf(out, "  %-44s %s%s\n", usage, cmds[r].help,
			       cmds[r].privileged ? " (enable)" : "");
		shown++;
	}
	if (shown == 0) {
		char wd[48];

		return ctl_cmd_fail(out, -EINVAL, "no command starts with \"%s\"",
				    ctl_cmd_word(prefix, wd, sizeof(wd)));
	}
	ctl_out_printf(out, "Words may be shortened while they stay unique (sh vd = show vdpt).\n");
	return 0;
}

/* ---- changes ---------------------------------------------------------------------------- */

static int need_sm(struct ctl_cmd_ctx *x, struct ctl_out *out)
{
	if (x->v->sm)
		return 0;
	return ctl_cmd_fail(out, -ENODEV, "no Service Manager runs here (roles)");
}

static int need_args(struct ctl_cmd_ctx *x, int argc, int want, struct ctl_out *out)
{
	if (argc == want)
		return 0;
	return ctl_cmd_fail(out, -EINVAL, "%s takes %s", x->cmd->words, x->cmd->args);
}

/* Arguments SERVICE PORT. */
static int service_port(struct ctl_cmd_ctx *x, int argc, char **argv, int *svc, uint16_t *port,
			struct ctl_out *out)
{
	char wd[48];
	uint32_t p;
	int rc = need_sm(x, out);

	if (rc == 0)
		rc = need_args(x, argc, 2, out);
	if (rc != 0)
		return rc;
	*svc = ctl_cmd_service(x->v->c, argv[0]);
	if (*svc < 0)
		return ctl_cmd_fail(out, -ENOENT, "no service \"%s\" (show vipadcfg lists them)",
				    ctl_cmd_word(argv[0], wd, sizeof(wd)));
	if (!ctl_cmd_uint(argv[1], 0, 65535, &p))
		return ctl_cmd_fail(out, -EINVAL,
				    "port \"%s\" out of range 0..65535 (0: every port)",
				    ctl_cmd_word(argv[1], wd, sizeof(wd)));
	*port = (uint16_t)p;
	return 0;
}

/* The service port of service and port, active or withdrawn, or -1. */
static int sp_of(const struct ctl_sm *sm, const struct ctl_conf *c, int svc, uint16_t port,
		 bool active)
{
	for (unsigned sp = 0; sp < ctl_sm_sp_count(sm); sp++) {
		uint32_t vip;
		uint16_t p;
		uint8_t proto;
		unsigned s;

		if (ctl_sm_sp_get(sm, sp, &vip, &p, &proto, &s) == 0 && s == (unsigned)svc &&
		    p == port && ctl_sm_sp_active(sm, sp) == active)
			return (int)sp;
	}
	(void)c;
	return -1;
}

static int port_add(struct ctl_cmd_ctx *x, int svc, uint16_t port, struct ctl_out *out)
{
	const struct ctl_service *s = &x->v->c->services[svc];
	char a[16], pr[4];
	int rc = ctl_sm_port_add(x->v->sm, (unsigned)svc, port);

	switch (rc) {
	case 0:
		ctl_cmd_log(x, out, "port %u added to service %s: %s:%u %s", port, s->name,
			    ctl_cmd_ip(s->vip, a), port, ctl_cmd_proto(s->proto, pr));
		return 0;
	case -EEXIST:
		return ctl_cmd_fail(out, rc, "service %s already distributes port %u", s->name,
				    port);
	case -EADDRINUSE:
		return ctl_cmd_fail(out, rc, "%s port %u %s belongs to another service",
				    ctl_cmd_ip(s->vip, a), port, ctl_cmd_proto(s->proto, pr));
	case -EBUSY:
		return ctl_cmd_fail(out, rc,
				    "%s port %u %s: another service's deleted port still drains;"
				    " try again when its connections ended",
				    ctl_cmd_ip(s->vip, a), port, ctl_cmd_proto(s->proto, pr));
	case -ENOSPC:
		return ctl_cmd_fail(out, rc,
				    "no room: %d ports per service, %d service ports in all",
				    CTL_PORTS_PER_SERVICE, FP_SERVICES_MAX);
	default:
		return ctl_cmd_fail(out, rc, "port %u not added: %s", port, strerror(-rc));
	}
}

static int port_del(struct ctl_cmd_ctx *x, int svc, uint16_t port, struct ctl_out *out)
{
	const struct ctl_service *s = &x->v->c->services[svc];
	int rc = ctl_sm_port_del(x->v->sm, (unsigned)svc, port), sp;

	switch (rc) {
	case 0:
		sp = sp_of(x->v->sm, x->v->c, svc, port, false);
		ctl_cmd_log(x, out,
			    "port %u deleted from service %s: no new connections; %llu existing"
			    " connection(s) continue until they end",
			    port, s->name,
			    sp >= 0 ? (unsigned long long)ctl_sm_sp_conns(x->v->sm, (unsigned)sp) :
				      0ULL);
		return 0;
	case -ENOENT:
		return ctl_cmd_fail(out, rc, "service %s does not distribute port %u", s->name,
				    port);
	case -EBUSY:
		return ctl_cmd_fail(out, rc,
				    "port %u is the last port of service %s: a service keeps one",
				    port, s->name);
	default:
		return ctl_cmd_fail(out, rc, "port %u not deleted: %s", port, strerror(-rc));
	}
}

static int cmd_port_add(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	uint16_t port;
	int svc, rc = service_port(x, argc, argv, &svc, &port, out);

	return rc ? rc : port_add(x, svc, port, out);
}

static int cmd_port_delete(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	uint16_t port;
	int svc, rc = service_port(x, argc, argv, &svc, &port, out);

	return rc ? rc : port_del(x, svc, port, out);
}

/* Argument TARGET (plus `extra` more). */
static int target_arg(struct ctl_cmd_ctx *x, int argc, char **argv, int extra, int *t,
		      struct ctl_out *out)
{
	char wd[48];
	int rc = need_sm(x, out);

	if (rc == 0)
		rc = need_args(x, argc, 1 + extra, out);
	if (rc != 0)
		return rc;
	*t = ctl_cmd_target(x->v->c, argv[0]);
	if (*t < 0)
		return ctl_cmd_fail(out, -ENOENT, "no target \"%s\" (show targets lists them)",
				    ctl_cmd_word(argv[0], wd, sizeof(wd)));
	return 0;
}

static int quiesce(struct ctl_cmd_ctx *x, int argc, char **argv, bool on, struct ctl_out *out)
{
	struct ctl_target_row r;
	const char *name;
	int t, rc = target_arg(x, argc, argv, 0, &t, out);

	if (rc != 0)
		return rc;
	name = x->v->c->targets[t].name;
	ctl_sm_target_get(x->v->sm, (uint32_t)t, &r);
	if (r.quiesced == on) {
		ctl_out_printf(out, "target %s is %s already\n", name,
			       on ? "quiesced" : "taking new connections");
		return 0;
	}
	ctl_sm_target_quiesce(x->v->sm, (uint32_t)t, on);
	if (on)
		ctl_cmd_log(x, out,
			    "target %s quiesced: no new connections; its %llu connection(s) drain",
			    name, (unsigned long long)r.active);
	else
		ctl_cmd_log(x, out, "target %s resumed: it takes new connections again", name);
	return 0;
}

static int cmd_quiesce(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	return quiesce(x, argc, argv, true, out);
}

static int cmd_resume(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	return quiesce(x, argc, argv, false, out);
}

static int cmd_weight(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	struct ctl_target_row r;
	char wd[48];
	uint32_t w;
	int t, rc = target_arg(x, argc, argv, 1, &t, out);

	if (rc != 0)
		return rc;
	if (!ctl_cmd_uint(argv[1], 0, CTL_WEIGHT_MAX, &w))
		return ctl_cmd_fail(out, -EINVAL, "weight \"%s\" out of range 0..%u",
				    ctl_cmd_word(argv[1], wd, sizeof(wd)), CTL_WEIGHT_MAX);
	ctl_sm_target_get(x->v->sm, (uint32_t)t, &r);
	ctl_sm_weight_set(x->v->sm, (uint32_t)t, w);
	ctl_cmd_log(x, out, "target %s weight %u -> %u", x->v->c->targets[t].name, r.weight, w);
	return 0;
}

static int cmd_clear(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	if (argc != 0)
		return opts_usage(x, argv[0], out);
	if (x->v->sm)
		ctl_sm_counters_clear(x->v->sm);
	if (x->v->casa)
		ctl_casa_counters_clear(x->v->casa);
	if (x->v->agent)
		ctl_agent_counters_clear(x->v->agent);
	fp_stats_clear();
	ctl_cmd_log(x, out,
		    "counters cleared: service manager, CASA, agents, fast-path workers and"
		    " affinity table");
	return 0;
}

/* ---- reload ------------------------------------------------------------------------------ */

/* The normalised text of c (what -n -v prints). NULL on no memory. */
static char *conf_text(const struct ctl_conf *c)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	ctl_conf_print(c, f);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* The first line of a that differs from b's, into why. */
static void first_diff(const char *a, const char *b, char *why, size_t cap)
{
	while (*a && *a == *b) {
		const char *na = strchr(a, '\n'), *nb = strchr(b, '\n');

		if (!na || !nb || na - a != nb - b || strncmp(a, b, (size_t)(na - a)) != 0)
			break;
		a = na + 1;
		b = nb + 1;
	}
	snprintf(why, cap, "%.*s", (int)strcspn(a, "\n"), a);
}

/*
 * What a reload may change live: target weights and service ports. Any
 * other difference needs a restart (the data plane, addresses and ports,
 * roles, timers, targets and services themselves): *why names the first.
 * Compared as -n -v prints both, with the live parts made equal, so every
 * setting the printer knows is covered.
 */
static int reload_check(const struct ctl_conf *live, const struct ctl_conf *next, char *why,
			size_t cap)
{
	struct ctl_conf cmp = *next;
	char *a = NULL, *b = NULL;
	int rc = -ENOMEM;

	if (live->n_targets != next->n_targets || live->n_services != next->n_services) {
		snprintf(why, cap, "targets or services were added or removed");
		return -EINVAL;
	}
	for (unsigned i = 0; i < live->n_targets; i++)
		if (strcmp(live->targets[i].name, next->targets[i].name) != 0) {
			snprintf(why, cap, "target %s renamed or moved", live->targets[i].name);
			return -EINVAL;
		}
	if (strcmp(live->console_access.password, next->console_access.password) != 0 ||
	    strcmp(live->console_access.enable_password, next->console_access.enable_password)) {
		snprintf(why, cap, "console passwords changed");
		return -EINVAL;
	}
	cmp.targets = malloc(next->n_targets * sizeof(*cmp.targets));
	cmp.services = malloc(next->n_services * sizeof(*cmp.services));
	if (cmp.targets && cmp.services) {
		memcpy(cmp.targets, next->targets, next->n_targets * sizeof(*cmp.targets));
		memcpy(cmp.services, next->services, next->n_services * sizeof(*cmp.services));
		for (unsigned i = 0; i < next->n_targets; i++)
			cmp.targets[i].weight = live->targets[i].weight;
		for (unsigned i = 0; i < next->n_services; i++) {
			cmp.services[i].n_ports = live->services[i].n_ports;
			memcpy(cmp.services[i].ports, live->services[i].ports,
			       sizeof(cmp.services[i].ports));
		}
		a = conf_text(live);
		b = conf_text(&cmp);
	}
	if (a && b) {
		rc = strcmp(a, b) == 0 ? 0 : -EINVAL;
		if (rc != 0)
			first_diff(b, a, why, cap);
	}
	free(a);
	free(b);
	free(cmp.targets);
	free(cmp.services);
	return rc;
}

static bool has_port(const struct ctl_service *s, uint16_t port)
{
	for (unsigned i = 0; i < s->n_ports; i++)
		if (s->ports[i] == port)
			return true;
	return false;
}

/* The service port of another service than svc that holds VIP:port now
 * (distributed, or deleted and still draining), or -1. */
static int port_holder(const struct ctl_sm *sm, unsigned svc, uint32_t vip, uint16_t port,
		       uint8_t proto)
{
	for (unsigned sp = 0; sp < ctl_sm_sp_count(sm); sp++) {
		uint32_t v;
		uint16_t p;
		uint8_t pr;
		unsigned s;

		if (ctl_sm_sp_get(sm, sp, &v, &p, &pr, &s) == 0 && s != svc && v == vip &&
		    p == port && pr == proto &&
		    (ctl_sm_sp_active(sm, sp) || ctl_sm_sp_conns(sm, sp) > 0))
			return (int)sp;
	}
	return -1;
}

/*
 * Before anything changes: a port moving between two services of one VIP
 * must have no connections, or the add would find it still draining and
 * the reload would stop half-applied. -EBUSY with the reason written.
 */
static int reload_moves_ok(struct ctl_cmd_ctx *x, const struct ctl_conf *live,
			   const struct ctl_conf *next, struct ctl_out *out)
{
	for (unsigned i = 0; i < live->n_services; i++) {
		const struct ctl_service *l = &live->services[i], *n = &next->services[i];

		for (unsigned p = 0; p < n->n_ports; p++) {
			int sp = has_port(l, n->ports[p]) ?
					 -1 :
					 port_holder(x->v->sm, i, l->vip, n->ports[p], l->proto);
			uint64_t conns = sp >= 0 ? ctl_sm_sp_conns(x->v->sm, (unsigned)sp) : 0;

			if (conns > 0)
				return ctl_cmd_fail(
					out, -EBUSY,
					"reload refused, nothing changed: port %u moves"
					" to service %s while %llu connection(s) use it;"
					" delete it first and reload once they ended",
					n->ports[p], l->name, (unsigned long long)conns);
		}
	}
	return 0;
}

/*
 * The reload's port changes, ordered on a model of the live ports before
 * anything changes, so that every step is one the SM takes: a service
 * keeps a port at every step, a port moves only once its old service let
 * it go, and the per-service and table limits hold. The model starts from
 * the live configuration (live changes included) and the SM's published
 * service ports; it only changes as the steps would.
 */
struct plan_step {
	bool add;
	unsigned svc;
	uint16_t port;
};

struct port_plan {
	const struct ctl_conf *live, *next;
	uint16_t (*ports)[CTL_PORTS_PER_SERVICE]; /* per service, as the steps leave them */
	unsigned *n_ports;
	unsigned published; /* service ports in the tables (FP_SERVICES_MAX) */
	struct plan_step *steps;
	unsigned n_steps, max_steps;
};

static bool plan_has(const struct port_plan *m, unsigned svc, uint16_t port)
{
	for (unsigned i = 0; i < m->n_ports[svc]; i++)
		if (m->ports[svc][i] == port)
			return true;
	return false;
}

/* Another service of the same VIP and protocol distributes port in the model. */
static bool plan_held(const struct port_plan *m, unsigned svc, uint16_t port)
{
	const struct ctl_service *s = &m->live->services[svc];

	for (unsigned j = 0; j < m->live->n_services; j++) {
		const struct ctl_service *o = &m->live->services[j];

		if (j != svc && o->vip == s->vip && o->proto == s->proto && plan_has(m, j, port))
			return true;
	}
	return false;
}

static void plan_record(struct port_plan *m, bool add, unsigned svc, uint16_t port)
{
	if (m->n_steps < m->max_steps)
		m->steps[m->n_steps++] = (struct plan_step){ .add = add, .svc = svc, .port = port };
}

/* A deleted port leaves the tables unless its connections drain there. */
static void plan_del(struct port_plan *m, struct ctl_cmd_ctx *x, unsigned svc, uint16_t port)
{
	int sp = sp_of(x->v->sm, x->v->c, (int)svc, port, true);
	unsigned *n = &m->n_ports[svc];

	for (unsigned i = 0; i < *n; i++)
		if (m->ports[svc][i] == port)
			m->ports[svc][i] = m->ports[svc][--*n];
	if (sp < 0 || ctl_sm_sp_conns(x->v->sm, (unsigned)sp) == 0)
		m->published--;
	plan_record(m, false, svc, port);
}

/* 0, or -ENOSPC when a limit stops the add. A port of this service still
 * draining comes back as it is: already in the tables. */
static int plan_add(struct port_plan *m, struct ctl_cmd_ctx *x, unsigned svc, uint16_t port)
{
	int sp = sp_of(x->v->sm, x->v->c, (int)svc, port, false);
	bool in_tables = sp >= 0 && ctl_sm_sp_conns(x->v->sm, (unsigned)sp) > 0;

	if (m->n_ports[svc] >= CTL_PORTS_PER_SERVICE ||
	    (!in_tables && m->published >= FP_SERVICES_MAX))
		return -ENOSPC;
	m->ports[svc][m->n_ports[svc]++] = port;
	m->published += !in_tables;
	plan_record(m, true, svc, port);
	return 0;
}

/* One round: the deletes that leave every service a port, then the adds
 * of ports no other service holds and that fit (a later delete may make
 * room: *short_of_room says one waited). Whether anything changed. */
static void plan_round(struct port_plan *m, struct ctl_cmd_ctx *x, bool *progress,
		       bool *short_of_room)
{
	for (unsigned i = 0; i < m->live->n_services; i++)
		for (unsigned k = 0; k < m->n_ports[i];) {
			uint16_t port = m->ports[i][k];

			if (has_port(&m->next->services[i], port) || m->n_ports[i] == 1) {
				k++;
				continue;
			}
			plan_del(m, x, i, port); // moves the last port to k
			*progress = true;
		}
	for (unsigned i = 0; i < m->live->n_services; i++) {
		const struct ctl_service *n = &m->next->services[i];

		for (unsigned p = 0; p < n->n_ports; p++) {
			if (plan_has(m, i, n->ports[p]) || plan_held(m, i, n->ports[p]))
				continue;
			if (plan_add(m, x, i, n->ports[p]) != 0)
				*short_of_room = true;
			else
				*progress = true;
		}
	}
}

static bool plan_done(const struct port_plan *m)
{
	for (unsigned i = 0; i < m->live->n_services; i++) {
		const struct ctl_service *n = &m->next->services[i];

		if (m->n_ports[i] != n->n_ports)
			return false;
		for (unsigned p = 0; p < n->n_ports; p++)
			if (!plan_has(m, i, n->ports[p]))
				return false;
	}
	return true;
}

/* Work the steps out; 0, or a negative errno with the reason written and
 * nothing changed. */
static int plan_make(struct port_plan *m, struct ctl_cmd_ctx *x, struct ctl_out *out)
{
	const struct ctl_sm *sm = x->v->sm;
	bool progress = true, short_of_room = false;

	for (unsigned i = 0; i < m->live->n_services; i++) {
		m->n_ports[i] = m->live->services[i].n_ports;
		memcpy(m->ports[i], m->live->services[i].ports,
		       m->n_ports[i] * sizeof(m->ports[i][0]));
	}
	m->published = 0;
	for (unsigned sp = 0; sp < ctl_sm_sp_count(sm); sp++)
		m->published += ctl_sm_sp_active(sm, sp) || ctl_sm_sp_conns(sm, sp) > 0;
	// Each round adds or deletes at least one port, or ends.
	for (unsigned round = 0; progress && !plan_done(m) && round < m->max_steps; round++) {
		progress = false;
		short_of_room = false;
		plan_round(m, x, &progress, &short_of_room);
	}
	if (!plan_done(m) && short_of_room)
		return ctl_cmd_fail(out, -ENOSPC,
				    "reload refused, nothing changed: the new ports do not fit"
				    " (%d ports per service, %d service ports in all, deleted"
				    " ports counted while they drain)",
				    CTL_PORTS_PER_SERVICE, FP_SERVICES_MAX);
	if (!plan_done(m))
		return ctl_cmd_fail(out, -EBUSY,
				    "reload refused, nothing changed: the port changes cannot be"
				    " made one at a time with every service keeping a port (ports"
				    " swapped between services); make the change in two reloads");
	return 0;
}

/* The planned steps, in order: each was checked, so only running out of
 * memory stops one (the steps before it stay applied and were logged). */
static int plan_apply(const struct port_plan *m, struct ctl_cmd_ctx *x, int *changes,
		      struct ctl_out *out)
{
	int rc = 0;

	for (unsigned i = 0; i < m->n_steps && rc == 0; i++) {
		const struct plan_step *st = &m->steps[i];

		rc = st->add ? port_add(x, (int)st->svc, st->port, out) :
			       port_del(x, (int)st->svc, st->port, out);
		*changes += rc == 0;
	}
	return rc;
}

static int reload_ports(struct ctl_cmd_ctx *x, const struct ctl_conf *live,
			const struct ctl_conf *next, int *changes, struct ctl_out *out)
{
	unsigned n = live->n_services;
	struct port_plan m = { .live = live,
			       .next = next,
			       .ports = calloc(n ? n : 1, sizeof(*m.ports)),
			       .n_ports = calloc(n ? n : 1, sizeof(*m.n_ports)),
			       .max_steps = 2 * (n ? n : 1) * CTL_PORTS_PER_SERVICE };
	int rc;

	m.steps = calloc(m.max_steps, sizeof(*m.steps));
	rc = !m.ports || !m.n_ports || !m.steps ?
		     ctl_cmd_fail(out, -ENOMEM, "reload: out of memory") :
		     plan_make(&m, x, out);
	if (rc == 0)
		rc = plan_apply(&m, x, changes, out);
	free(m.ports);
	free(m.n_ports);
	free(m.steps);
	return rc;
}

/*
 * Make the live ports and weights those of next. Moves of ports in use
 * are refused, and the port steps are worked out whole, before anything
 * changes. Returns the number of changes, or a negative errno (refused:
 * nothing changed; -ENOMEM while applying: the steps before it stay
 * applied and were logged).
 */
static int reload_apply(struct ctl_cmd_ctx *x, const struct ctl_conf *live,
			const struct ctl_conf *next, struct ctl_out *out)
{
	int changes = 0, rc = reload_moves_ok(x, live, next, out);

	if (rc == 0)
		rc = reload_ports(x, live, next, &changes, out);
	for (unsigned t = 0; t < live->n_targets && rc == 0; t++) {
		if (live->targets[t].weight == next->targets[t].weight)
			continue;
		ctl_sm_weight_set(x->v->sm, t, next->targets[t].weight);
		ctl_cmd_log(x, out, "target %s weight %u -> %u", live->targets[t].name,
			    live->targets[t].weight, next->targets[t].weight);
		changes++;
	}
	return rc ? rc : changes;
}

/* The loader's error lines, indented, after the one-line reason. */
static int reload_failed(struct ctl_cmd_ctx *x, const char *errs, int n, struct ctl_out *out)
{
	ctl_cmd_fail(out, -EINVAL,
		     "reload failed: %d problem(s) in %s; the running configuration"
		     " is kept",
		     n, x->v->c->file);
	for (const char *p = errs; p && *p;) {
		size_t len = strcspn(p, "\n");

		ctl_out_printf(out, "  %.*s\n", (int)len, p);
		p += len + (p[len] == '\n');
	}
	fprintf(x->o->log ? x->o->log : stderr, "console: %s: reload of %s failed (%d problems)\n",
		x->o->who ? x->o->who : "console", x->v->c->file, n);
	return -EINVAL;
}

static int cmd_reload(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out)
{
	struct ctl_conf next, live;
	char *errs = NULL, why[256] = "";
	size_t errs_len = 0;
	FILE *ef;
	int n, rc = need_sm(x, out);

	if (rc == 0 && argc != 0)
		rc = opts_usage(x, argv[0], out);
	if (rc != 0)
		return rc;
	ef = open_memstream(&errs, &errs_len);
	if (!ef)
		return ctl_cmd_fail(out, -ENOMEM, "reload: out of memory");
	// A whole new configuration, checked before anything changes
	// (style.md habit 9); on errors it is already freed.
	n = ctl_conf_load(x->v->c->file, &next, ef);
	fclose(ef);
	if (n != 0) {
		rc = reload_failed(x, errs, n, out);
		free(errs);
		return rc;
	}
	free(errs);
	if (ctl_cmd_conf_live(x->v, &live) != 0) {
		ctl_conf_free(&next);
		return ctl_cmd_fail(out, -ENOMEM, "reload: out of memory");
	}
	rc = reload_check(&live, &next, why, sizeof(why));
	if (rc == 0)
		rc = reload_apply(x, &live, &next, out);
	else if (rc == -EINVAL)
		rc = ctl_cmd_fail(out, rc,
				  "reload refused, the running configuration is kept: a restart is"
				  " needed to change \"%s\"",
				  why);
	else
		rc = ctl_cmd_fail(out, rc, "reload: out of memory");
	if (rc >= 0)
		ctl_cmd_log(x, out, "reload of %s: %d change(s) applied", x->v->c->file, rc);
	ctl_cmd_conf_live_free(&live);
	ctl_conf_free(&next);
	return rc > 0 ? 0 : rc;
}
