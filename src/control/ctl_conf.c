/*
 * ctl_conf.c - casalb's configuration file (libconfig syntax), checked
 * whole: every setting is a row of a table (name, type, bounds), unknown
 * keys are errors (libconfig itself accepts typos silently), and every
 * problem is reported at once as `file:line: object "name": what is wrong`
 * (style.md habit 9). docs/configuration.md describes the file.
 *
 * Context: control thread, at start-up (casalb -n, casalb -c).
 */
#include <arpa/inet.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

struct ctx {
	const char *file;
	FILE *errs;
	int n;
};

__attribute__((format(printf, 4, 5))) static void err(struct ctx *x, const config_setting_t *s,
						      const char *obj, const char *fmt, ...)
{
	va_list ap;

	fprintf(x->errs, "%s:%d: %s: ", x->file, s ? config_setting_source_line(s) : 0, obj);
	va_start(ap, fmt);
	vfprintf(x->errs, fmt, ap);
	va_end(ap);
	fputc('\n', x->errs);
	x->n++;
}

/* ---- the tables of settings ---------------------------------------------------- */

enum kind { K_INT, K_BOOL, K_STR, K_ADDR, K_MAC, K_LIST, K_GROUP, K_ANY };

struct key {
	const char *name;
	enum kind kind;
	long long min, max; /* K_INT */
};

static const struct key dataplane_keys[] = {
	{ "lcores", K_STR },
	{ "hugepages", K_STR },
	{ "memory_mb", K_INT, 0, 1 << 20 },
	{ "eal_args", K_STR },
	{ "ports", K_LIST },
	{ "affinity_capacity", K_INT, 16, 1 << 30 },
	{ "affinity_idle_timeout", K_INT, 1, 65535 },
	{ "affinity_closing_timeout", K_INT, 1, 65535 },
	{ "fragment_capacity", K_INT, 16, 1 << 24 },
	{ "fragment_timeout_ms", K_INT, 100, 60000 },
	{ "burst", K_INT, 1, FP_BURST_MAX },
	{ "rx_descriptors", K_INT, 64, 16384 },
	{ "tx_descriptors", K_INT, 64, 16384 },
	{ "event_ring", K_INT, 64, 1 << 24 },
	{ "gre", K_GROUP },
	{ NULL, K_ANY },
};
static const struct key port_keys[] = {
	{ "device", K_STR },
	{ "address", K_ADDR },
	{ "gateway_mac", K_MAC },
	{ NULL, K_ANY },
};
static const struct key gre_keys[] = {
	{ "local", K_ADDR },      { "key", K_BOOL }, { "sequence", K_BOOL },
	{ "ttl", K_INT, 0, 255 }, { "tos", K_ANY }, /* "copy" or 0..255 */
	{ "df", K_STR },          { NULL, K_ANY },
};
static const struct key target_keys[] = {
	{ "name", K_STR },
	{ "dispatch", K_STR },
	{ "tunnel", K_ADDR },
	{ "mac", K_MAC },
	{ "port", K_INT, 0, FP_PORTS_MAX - 1 },
	{ "weight", K_INT, 0, 1000000 },
	{ "key", K_INT, 0, 0xFFFFFFFFLL },
	{ NULL, K_ANY },
};
static const struct key service_keys[] = {
	{ "name", K_STR },
	{ "vip", K_ADDR },
	{ "ports", K_LIST },
	{ "protocol", K_STR },
	{ "method", K_STR },
	{ "targets", K_LIST },
	{ "idle_timeout", K_INT, 0, 65535 },
	{ NULL, K_ANY },
};
static const struct key top_keys[] = {
	{ "dataplane", K_GROUP },
	{ "targets", K_LIST },
	{ "services", K_LIST },
	{ NULL, K_ANY },
};

static const struct key *key_find(const struct key *keys, const char *name)
{
	for (; keys->name; keys++)
		if (strcmp(keys->name, name) == 0)
			return keys;
	return NULL;
}

static bool type_ok(const config_setting_t *s, enum kind k)
{
	int t = config_setting_type(s);

	switch (k) {
	case K_INT:
		return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
	case K_BOOL:
		return t == CONFIG_TYPE_BOOL;
	case K_STR:
	case K_ADDR:
	case K_MAC:
		return t == CONFIG_TYPE_STRING;
	case K_LIST:
		return t == CONFIG_TYPE_LIST || t == CONFIG_TYPE_ARRAY;
	case K_GROUP:
		return t == CONFIG_TYPE_GROUP;
	case K_ANY:
		return true;
	}
	return false;
}

static const char *kind_name(enum kind k)
{
	static const char *const names[] = {
		"an integer",           "true or false", "a string", "an IPv4 address string",
		"a MAC address string", "a list",        "a group",  "a value"
	};
	return names[k];
}

/* Every member of group g must be a known key of the right type and range. */
static void check_keys(struct ctx *x, const config_setting_t *g, const struct key *keys,
		       const char *obj)
{
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *m = config_setting_get_elem(g, (unsigned)i);
		const char *name = config_setting_name(m);
		const struct key *k = name ? key_find(keys, name) : NULL;

		if (!k) {
			err(x, m, obj, "unknown setting \"%s\"", name ? name : "?");
		} else if (!type_ok(m, k->kind)) {
			err(x, m, obj, "%s must be %s", name, kind_name(k->kind));
		} else if (k->kind == K_INT) {
			long long v = config_setting_get_int64(m);

			if (v < k->min || v > k->max)
				err(x, m, obj, "%s %lld out of range %lld..%lld", name, v, k->min,
				    k->max);
		}
	}
}

/* ---- typed getters (after check_keys) ------------------------------------------- */

static long long get_int(const config_setting_t *g, const char *name, long long def)
{
	const config_setting_t *m = config_setting_get_member(g, name);

	if (!m || !type_ok(m, K_INT))
		return def;
	return config_setting_get_int64(m);
}

static const char *get_str(const config_setting_t *g, const char *name)
{
	const config_setting_t *m = config_setting_get_member(g, name);

	return m && config_setting_type(m) == CONFIG_TYPE_STRING ? config_setting_get_string(m) :
								   NULL;
}

static bool get_addr(struct ctx *x, const config_setting_t *g, const char *name, const char *obj,
		     uint32_t *out)
{
	const char *s = get_str(g, name);
	struct in_addr a;

	if (!s)
		return false;
	if (inet_pton(AF_INET, s, &a) != 1) {
		err(x, config_setting_get_member(g, name), obj, "%s \"%s\" is not an IPv4 address",
		    name, s);
		return false;
	}
	*out = ntohl(a.s_addr);
	return true;
}

static bool get_mac(struct ctx *x, const config_setting_t *g, const char *name, const char *obj,
		    uint8_t out[6])
{
	const char *s = get_str(g, name);
	unsigned b[6];
	char tail;

	if (!s)
		return false;
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
		   &tail) != 6) {
		err(x, config_setting_get_member(g, name), obj,
		    "%s \"%s\" is not a MAC address (xx:xx:xx:xx:xx:xx)", name, s);
		return false;
	}
	for (int i = 0; i < 6; i++)
		out[i] = (uint8_t)b[i];
	return true;
}

/* ---- sections --------------------------------------------------------------------- */

static void load_gre(struct ctx *x, const config_setting_t *g, struct fp_gre_conf *gre)
{
	const config_setting_t *tos;
	const char *df;

	check_keys(x, g, gre_keys, "dataplane gre");
	get_addr(x, g, "local", "dataplane gre", &gre->local);
	gre->use_key = config_setting_get_member(g, "key") &&
		       config_setting_get_bool(config_setting_get_member(g, "key"));
	gre->use_seq = config_setting_get_member(g, "sequence") &&
		       config_setting_get_bool(config_setting_get_member(g, "sequence"));
	gre->ttl = (uint8_t)get_int(g, "ttl", gre->ttl);
	tos = config_setting_get_member(g, "tos");
	if (tos && config_setting_type(tos) == CONFIG_TYPE_STRING &&
	    strcmp(config_setting_get_string(tos), "copy") == 0)
		gre->tos = -1;
	else if (tos && type_ok(tos, K_INT) && config_setting_get_int(tos) >= 0 &&
		 config_setting_get_int(tos) <= 255)
		gre->tos = (int16_t)config_setting_get_int(tos);
	else if (tos)
		err(x, tos, "dataplane gre", "tos must be \"copy\" or 0..255");
	df = get_str(g, "df");
	if (df && strcmp(df, "copy") == 0)
		gre->df = -1;
	else if (df && strcmp(df, "set") == 0)
		gre->df = 1;
	else if (df && strcmp(df, "clear") == 0)
		gre->df = 0;
	else if (df)
		err(x, config_setting_get_member(g, "df"), "dataplane gre",
		    "df \"%s\" is not copy, set or clear", df);
}

static void load_ports(struct ctx *x, const config_setting_t *l, struct fp_conf *fp)
{
	int n = config_setting_length(l);

	if (n < 1 || n > FP_PORTS_MAX) {
		err(x, l, "dataplane", "ports: %d given, 1..%d supported", n, FP_PORTS_MAX);
		return;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *p = config_setting_get_elem(l, (unsigned)i);
		struct fp_port_conf *pc = &fp->ports[i];
		char obj[48];
		const char *dev;

		snprintf(obj, sizeof(obj), "dataplane port %d", i);
		if (config_setting_type(p) != CONFIG_TYPE_GROUP) {
			err(x, p, obj, "must be a group { device = ...; }");
			continue;
		}
		check_keys(x, p, port_keys, obj);
		dev = get_str(p, "device");
		if (!dev || !dev[0] || strlen(dev) >= sizeof(pc->dev))
			err(x, p, obj, "device: a PCI address or vdev spec is required");
		else
			snprintf(pc->dev, sizeof(pc->dev), "%s", dev);
		get_addr(x, p, "address", obj, &pc->addr);
		pc->has_gw_mac = get_mac(x, p, "gateway_mac", obj, pc->gw_mac);
	}
	fp->n_ports = (uint16_t)n;
}

static void load_dataplane(struct ctx *x, const config_setting_t *g, struct fp_conf *fp)
{
	const char *s;
	const config_setting_t *m;

	check_keys(x, g, dataplane_keys, "dataplane");
	s = get_str(g, "lcores");
	if (s)
		snprintf(fp->lcores, sizeof(fp->lcores), "%s", s);
	s = get_str(g, "hugepages");
	if (s && strcmp(s, "off") == 0)
		fp->no_huge = true;
	else if (s && strcmp(s, "auto") != 0)
		err(x, config_setting_get_member(g, "hugepages"), "dataplane",
		    "hugepages \"%s\" is not auto or off", s);
	s = get_str(g, "eal_args");
	if (s)
		snprintf(fp->eal_extra, sizeof(fp->eal_extra), "%s", s);
	fp->mem_mb = (uint32_t)get_int(g, "memory_mb", fp->mem_mb);
	fp->aff_capacity = (uint32_t)get_int(g, "affinity_capacity", fp->aff_capacity);
	fp->aff_idle_s = (uint32_t)get_int(g, "affinity_idle_timeout", fp->aff_idle_s);
	fp->aff_closing_s = (uint32_t)get_int(g, "affinity_closing_timeout", fp->aff_closing_s);
	fp->frag_capacity = (uint32_t)get_int(g, "fragment_capacity", fp->frag_capacity);
	fp->frag_ttl_ms = (uint32_t)get_int(g, "fragment_timeout_ms", fp->frag_ttl_ms);
	fp->burst = (uint16_t)get_int(g, "burst", fp->burst);
	fp->rx_desc = (uint16_t)get_int(g, "rx_descriptors", fp->rx_desc);
	fp->tx_desc = (uint16_t)get_int(g, "tx_descriptors", fp->tx_desc);
	fp->event_ring = (uint32_t)get_int(g, "event_ring", fp->event_ring);
	if (fp->event_ring & (fp->event_ring - 1))
		err(x, config_setting_get_member(g, "event_ring"), "dataplane",
		    "event_ring %u is not a power of two", fp->event_ring);
	m = config_setting_get_member(g, "ports");
	if (m && type_ok(m, K_LIST))
		load_ports(x, m, fp);
	else
		err(x, g, "dataplane", "ports: at least one data port is required");
	m = config_setting_get_member(g, "gre");
	if (m && type_ok(m, K_GROUP))
		load_gre(x, m, &fp->gre);
}

static int target_index(const struct ctl_conf *c, const char *name)
{
	for (unsigned i = 0; i < c->n_targets; i++)
		if (strcmp(c->targets[i].name, name) == 0)
			return (int)i;
	return -1;
}

static bool name_ok(struct ctx *x, const config_setting_t *g, const char *what, char *out)
{
	const char *s = get_str(g, "name");

	if (!s || !s[0] || strlen(s) >= CTL_NAME_MAX) {
		err(x, g, what, "name: 1..%d characters required", CTL_NAME_MAX - 1);
		return false;
	}
	snprintf(out, CTL_NAME_MAX, "%s", s);
	return true;
}

static void load_target(struct ctx *x, struct ctl_conf *c, const config_setting_t *g)
{
	struct ctl_target *t = &c->targets[c->n_targets];
	char obj[64];
	const char *d;

	memset(t, 0, sizeof(*t));
	t->line = config_setting_source_line(g);
	if (!name_ok(x, g, "target", t->name))
		snprintf(t->name, sizeof(t->name), "#%u", c->n_targets + 1);
	snprintf(obj, sizeof(obj), "target \"%s\"", t->name);
	check_keys(x, g, target_keys, obj);
	if (target_index(c, t->name) >= 0)
		err(x, g, obj, "defined twice");
	t->fp.id = c->n_targets;
	d = get_str(g, "dispatch");
	if (!d || strcmp(d, "gre") == 0) {
		t->fp.dispatch = FP_DISPATCH_GRE;
		if (!get_addr(x, g, "tunnel", obj, &t->fp.tunnel))
			err(x, g, obj, "gre dispatch needs tunnel = \"address\"");
	} else if (strcmp(d, "l2") == 0) {
		t->fp.dispatch = FP_DISPATCH_L2;
		if (!config_setting_get_member(g, "mac"))
			err(x, g, obj, "l2 dispatch needs mac = \"xx:xx:xx:xx:xx:xx\"");
	} else {
		err(x, config_setting_get_member(g, "dispatch"), obj,
		    "dispatch \"%s\" is not gre or l2", d);
	}
	t->fp.has_mac = get_mac(x, g, "mac", obj, t->fp.mac);
	t->fp.port = (uint16_t)get_int(g, "port", 0);
	if (t->fp.port >= c->fp.n_ports && c->fp.n_ports)
		err(x, g, obj, "port %u: there are only %u data ports", t->fp.port, c->fp.n_ports);
	if (t->fp.dispatch == FP_DISPATCH_GRE && !t->fp.has_mac && t->fp.port < c->fp.n_ports &&
	    !c->fp.ports[t->fp.port].has_gw_mac)
		err(x, g, obj, "needs mac, or gateway_mac on its data port");
	t->weight = (uint32_t)get_int(g, "weight", 1);
	t->fp.gre_key = (uint32_t)get_int(g, "key", 0);
	c->n_targets++;
}

static void load_service_ports(struct ctx *x, struct ctl_service *s, const config_setting_t *l,
			       const char *obj)
{
	int n = config_setting_length(l);

	if (n < 1 || n > CTL_PORTS_PER_SERVICE) {
		err(x, l, obj, "ports: 1..%d ports required", CTL_PORTS_PER_SERVICE);
		return;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
		long long p = type_ok(e, K_INT) ? config_setting_get_int64(e) : -1;

		if (p < 0 || p > 65535) {
			err(x, e, obj, "port %lld out of range 0..65535 (0: every port)", p);
			continue;
		}
		for (unsigned j = 0; j < s->n_ports; j++)
			if (s->ports[j] == p)
				err(x, e, obj, "port %lld listed twice", p);
		s->ports[s->n_ports++] = (uint16_t)p;
	}
}

static void load_service_targets(struct ctx *x, struct ctl_conf *c, struct ctl_service *s,
				 const config_setting_t *l, const char *obj)
{
	for (int i = 0; i < config_setting_length(l) && s->n_targets < FP_TARGETS_MAX; i++) {
		const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
		const char *name = config_setting_type(e) == CONFIG_TYPE_STRING ?
					   config_setting_get_string(e) :
					   NULL;
		int idx = name ? target_index(c, name) : -1;

		if (idx < 0)
			err(x, e, obj, "target \"%s\" is not defined", name ? name : "?");
		else
			s->targets[s->n_targets++] = (uint32_t)idx;
	}
}

static void load_service(struct ctx *x, struct ctl_conf *c, const config_setting_t *g)
{
	struct ctl_service *s = &c->services[c->n_services];
	const config_setting_t *m;
	const char *str;
	char obj[64];

	memset(s, 0, sizeof(*s));
	s->line = config_setting_source_line(g);
	if (!name_ok(x, g, "service", s->name))
		snprintf(s->name, sizeof(s->name), "#%u", c->n_services + 1);
	snprintf(obj, sizeof(obj), "service \"%s\"", s->name);
	check_keys(x, g, service_keys, obj);
	if (!get_addr(x, g, "vip", obj, &s->vip))
		err(x, g, obj, "vip = \"address\" is required");
	str = get_str(g, "protocol");
	s->proto = 6;
	if (str && strcmp(str, "udp") == 0)
		s->proto = 17;
	else if (str && strcmp(str, "tcp") != 0)
		err(x, config_setting_get_member(g, "protocol"), obj,
		    "protocol \"%s\" is not tcp or udp", str);
	str = get_str(g, "method");
	s->method = CTL_METHOD_WRR;
	if (str && strcmp(str, "round-robin") == 0)
		s->method = CTL_METHOD_RR;
	else if (str && strcmp(str, "hash") == 0)
		s->method = CTL_METHOD_HASH;
	else if (str && strcmp(str, "weighted-round-robin") != 0)
		err(x, config_setting_get_member(g, "method"), obj,
		    "method \"%s\" is not weighted-round-robin, round-robin or hash", str);
	s->idle_s = (uint32_t)get_int(g, "idle_timeout", 0);
	m = config_setting_get_member(g, "ports");
	if (m && type_ok(m, K_LIST))
		load_service_ports(x, s, m, obj);
	else
		err(x, g, obj, "ports = [ ... ] is required");
	m = config_setting_get_member(g, "targets");
	if (m && type_ok(m, K_LIST))
		load_service_targets(x, c, s, m, obj);
	else
		err(x, g, obj, "targets = [ \"name\", ... ] is required");
	c->n_services++;
}

/* No VIP, port and protocol may belong to two services. */
static void cross_check(struct ctx *x, const struct ctl_conf *c, const config_setting_t *l)
{
	for (unsigned i = 0; i < c->n_services; i++)
		for (unsigned j = 0; j < i; j++) {
			const struct ctl_service *a = &c->services[i], *b = &c->services[j];

			if (a->vip != b->vip || a->proto != b->proto)
				continue;
			for (unsigned p = 0; p < a->n_ports; p++)
				for (unsigned q = 0; q < b->n_ports; q++)
					if (a->ports[p] == b->ports[q])
						err(x, config_setting_get_elem(l, i), "service",
						    "\"%s\" port %u is also in service \"%s\"",
						    a->name, a->ports[p], b->name);
		}
}

static void load_list(struct ctx *x, struct ctl_conf *c, const config_setting_t *root,
		      const char *name, bool targets)
{
	const config_setting_t *l = config_setting_get_member(root, name);
	int n = l && type_ok(l, K_LIST) ? config_setting_length(l) : 0;
	unsigned max = targets ? FP_TARGETS_MAX : FP_SERVICES_MAX;

	if (n == 0) {
		err(x, l ? l : root, name, "at least one is required");
		return;
	}
	if ((unsigned)n > max) {
		err(x, l, name, "%d given, at most %u", n, max);
		n = (int)max;
	}
	// Sized to the list: a service row holds up to FP_TARGETS_MAX targets.
	if (targets)
		c->targets = calloc((size_t)n, sizeof(*c->targets));
	else
		c->services = calloc((size_t)n, sizeof(*c->services));
	if (targets ? !c->targets : !c->services) {
		err(x, l, name, "out of memory for %d entries", n);
		return;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *g = config_setting_get_elem(l, (unsigned)i);

		if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
			err(x, g, name, "entry %d must be a group { ... }", i + 1);
			continue;
		}
		if (targets)
			load_target(x, c, g);
		else
			load_service(x, c, g);
	}
	if (!targets)
		cross_check(x, c, l);
}

/* Check a parsed configuration into *c; the number of problems. */
static int load_parsed(config_t *cfg, const char *name, struct ctl_conf *c, FILE *errs)
{
	struct ctx x = { .file = name, .errs = errs };
	const config_setting_t *root = config_root_setting(cfg), *dp;

	check_keys(&x, root, top_keys, "configuration");
	dp = config_setting_get_member(root, "dataplane");
	if (dp && type_ok(dp, K_GROUP))
		load_dataplane(&x, dp, &c->fp);
	else
		err(&x, root, "dataplane", "a dataplane = { ... } group is required");
	load_list(&x, c, root, "targets", true);
	load_list(&x, c, root, "services", false);
	if (x.n)
		ctl_conf_free(c);
	return x.n;
}

/* Read from a file (text NULL) or from text; report as `name`. */
static int load(const char *name, const char *text, struct ctl_conf *c, FILE *errs)
{
	config_t cfg;
	int rc, ok;

	memset(c, 0, sizeof(*c));
	snprintf(c->file, sizeof(c->file), "%s", name);
	fp_conf_defaults(&c->fp);
	config_init(&cfg);
	ok = text ? config_read_string(&cfg, text) : config_read_file(&cfg, name);
	if (ok != CONFIG_TRUE) {
		fprintf(errs, "%s:%d: %s\n",
			config_error_file(&cfg) ? config_error_file(&cfg) : name,
			config_error_line(&cfg), config_error_text(&cfg));
		config_destroy(&cfg);
		return 1;
	}
	rc = load_parsed(&cfg, name, c, errs);
	config_destroy(&cfg);
	return rc;
}

int ctl_conf_load(const char *file, struct ctl_conf *c, FILE *errs)
{
	return load(file, NULL, c, errs);
}

int ctl_conf_load_text(const char *text, const char *name, struct ctl_conf *c, FILE *errs)
{
	return load(name, text, c, errs);
}

void ctl_conf_free(struct ctl_conf *c)
{
	free(c->targets);
	free(c->services);
	c->targets = NULL;
	c->services = NULL;
	c->n_targets = c->n_services = 0;
}

static const char *addr_str(uint32_t a, char *buf)
{
	snprintf(buf, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
	return buf;
}

static const char *mac_str(const uint8_t m[6], char *buf)
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	return buf;
}

void ctl_conf_print(const struct ctl_conf *c, FILE *out)
{
	static const char *const methods[] = { "", "weighted-round-robin", "round-robin", "hash" };
	const struct fp_conf *f = &c->fp;
	char a[16], m[18];

	fprintf(out, "dataplane = {\n  lcores = \"%s\";\n  hugepages = \"%s\";\n", f->lcores,
		f->no_huge ? "off" : "auto");
	fprintf(out, "  affinity_capacity = %u;\n  affinity_idle_timeout = %u;\n", f->aff_capacity,
		f->aff_idle_s);
	fprintf(out, "  affinity_closing_timeout = %u;\n  fragment_capacity = %u;\n",
		f->aff_closing_s, f->frag_capacity);
	fprintf(out, "  fragment_timeout_ms = %u;\n  burst = %u;\n", f->frag_ttl_ms, f->burst);
	fprintf(out, "  ports = (\n");
	for (unsigned i = 0; i < f->n_ports; i++)
		fprintf(out, "    { device = \"%s\"; address = \"%s\"; gateway_mac = \"%s\"; }%s\n",
			f->ports[i].dev, addr_str(f->ports[i].addr, a),
			f->ports[i].has_gw_mac ? mac_str(f->ports[i].gw_mac, m) : "",
			i + 1 < f->n_ports ? "," : "");
	fprintf(out, "  );\n  gre = { local = \"%s\"; key = %s; sequence = %s; ttl = %u; ",
		addr_str(f->gre.local, a), f->gre.use_key ? "true" : "false",
		f->gre.use_seq ? "true" : "false", f->gre.ttl);
	if (f->gre.tos < 0)
		fprintf(out, "tos = \"copy\"; ");
	else
		fprintf(out, "tos = %d; ", f->gre.tos);
	fprintf(out, "df = \"%s\"; };\n};\ntargets = (\n",
		f->gre.df < 0 ? "copy" :
		f->gre.df     ? "set" :
				"clear");
	for (unsigned i = 0; i < c->n_targets; i++) {
		const struct ctl_target *t = &c->targets[i];

		fprintf(out, "  { name = \"%s\"; dispatch = \"%s\"; ", t->name,
			t->fp.dispatch == FP_DISPATCH_GRE ? "gre" : "l2");
		if (t->fp.dispatch == FP_DISPATCH_GRE)
			fprintf(out, "tunnel = \"%s\"; ", addr_str(t->fp.tunnel, a));
		if (t->fp.has_mac)
			fprintf(out, "mac = \"%s\"; ", mac_str(t->fp.mac, m));
		fprintf(out, "port = %u; weight = %u; }%s\n", t->fp.port, t->weight,
			i + 1 < c->n_targets ? "," : "");
	}
	fprintf(out, ");\nservices = (\n");
	for (unsigned i = 0; i < c->n_services; i++) {
		const struct ctl_service *s = &c->services[i];

		fprintf(out, "  { name = \"%s\"; vip = \"%s\"; protocol = \"%s\"; ports = [ ",
			s->name, addr_str(s->vip, a), s->proto == 6 ? "tcp" : "udp");
		for (unsigned p = 0; p < s->n_ports; p++)
			fprintf(out, "%s%u", p ? ", " : "", s->ports[p]);
		fprintf(out, " ]; method = \"%s\"; targets = [ ", methods[s->method]);
		for (unsigned t = 0; t < s->n_targets; t++)
			fprintf(out, "%s\"%s\"", t ? ", " : "", c->targets[s->targets[t]].name);
		fprintf(out, " ]; }%s\n", i + 1 < c->n_services ? "," : "");
	}
	fprintf(out, ");\n");
}
