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
#include <errno.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "casa.h"
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

/*
 * One setting. Rows with a size are stored by store_keys at offset `off` of
 * their section's struct (K_INT: 1, 2 or 4 bytes, after the range check;
 * K_BOOL: a bool; K_ADDR: a host-order uint32_t); rows without one are read
 * by their section's loader. Defaults are not here but in conf_defaults.
 */
struct key {
	const char *name;
	enum kind kind;
	long long min, max; /* K_INT */
	size_t off, size;
};

#define AT(type, field) offsetof(type, field), sizeof(((type *)0)->field)

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
	{ "weight", K_INT, 0, CTL_WEIGHT_MAX },
	{ "key", K_INT, 0, 0xFFFFFFFFLL },
	{ "address", K_ADDR },
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
	{ "policies", K_LIST },
	{ NULL, K_ANY },
};
static const struct key policy_keys[] = {
	{ "source", K_STR },
	{ "targets", K_LIST },
	{ NULL, K_ANY },
};
#define SM(field) AT(struct ctl_sm_conf, field)
static const struct key sm_keys[] = {
	{ "address", K_ADDR, 0, 0, SM(addr) },
	{ "group", K_ADDR, 0, 0, SM(group) },
	{ "port", K_INT, 1, 65535, SM(port) },
	{ "mode", K_STR },
	{ "wildcard_interval", K_INT, 1, 3600, SM(wildcard_interval_s) },
	{ "wildcard_ttl", K_INT, 1, 65535, SM(wildcard_ttl_s) },
	{ "fixed_ttl", K_INT, 1, 65535, SM(fixed_ttl_s) },
	{ "ip_ttl", K_INT, 1, 255, SM(ip_ttl) },
	{ "connections", K_INT, 1024, 1 << 27, SM(connections) },
	{ "weight_refresh", K_INT, 1, 3600, SM(weight_refresh_s) },
	{ "reset_rate", K_INT, 0, 1000000, SM(reset_rate) },
	{ "forwarding_agents", K_LIST },
	{ "max_forwarding_agents", K_INT, 1, 65536, SM(fa_max) },
	{ "auth", K_GROUP },
	{ NULL, K_ANY },
};
static const struct key auth_keys[] = {
	{ "algorithm", K_STR },
	{ "key_file", K_STR },
	{ "key_id", K_INT, 0, 255, SM(key_id) },
	{ "rollover", K_INT, 0, 3600, SM(rollover_s) },
	{ "freshness", K_INT, 0, 3600, SM(freshness_s) },
	{ NULL, K_ANY },
};
#define AG(field) AT(struct ctl_agent_conf, field)
static const struct key agent_keys[] = {
	{ "address", K_ADDR, 0, 0, AG(addr) },
	{ "port", K_INT, 1, 65535, AG(port) },
	{ "keepalive", K_INT, 1, 300, AG(keepalive_s) },
	{ "timeout", K_INT, 1, 3600, AG(timeout_s) },
	{ "max", K_INT, 1, 4096, AG(max) },
	{ "required", K_BOOL, 0, 0, AG(required) },
	{ NULL, K_ANY },
};
static const struct key backup_keys[] = {
	{ "rank", K_INT, 0, 254, AT(struct ctl_backup_conf, rank) },
	{ "takeback", K_STR },
	{ NULL, K_ANY },
};
#define LS(field) AT(struct ctl_listener_conf, field)
static const struct key listener_keys[] = {
	{ "address", K_ADDR, 0, 0, LS(addr) },
	{ "port", K_INT, 1, 65535, LS(port) },
	{ "enabled", K_BOOL, 0, 0, LS(enabled) },
	{ NULL, K_ANY },
};
/* The console: its listener (listener_keys, stored in ctl_conf.console),
 * access settings stored in ctl_conf.console_access, and the secrets read
 * by load_console. */
#define CA(field) AT(struct ctl_console_conf, field)
static const struct key console_access_keys[] = {
	{ "sessions", K_INT, 1, CTL_CONSOLE_SESSIONS_MAX, CA(sessions) },
	{ "idle_timeout", K_INT, 0, 86400, CA(idle_timeout_s) },
	{ NULL, K_ANY },
};
static const struct key console_keys[] = {
	{ "address", K_ADDR },
	{ "port", K_INT, 1, 65535 },
	{ "enabled", K_BOOL },
	{ "sessions", K_INT, 1, CTL_CONSOLE_SESSIONS_MAX },
	{ "idle_timeout", K_INT, 0, 86400 },
	{ "password", K_STR },
	{ "password_file", K_STR },
	{ "enable_password", K_STR },
	{ "enable_password_file", K_STR },
	{ NULL, K_ANY },
};
static const struct key top_keys[] = {
	{ "roles", K_LIST },    { "dataplane", K_GROUP }, { "service_manager", K_GROUP },
	{ "agents", K_GROUP },  { "backup", K_GROUP },    { "console", K_GROUP },
	{ "metrics", K_GROUP }, { "targets", K_LIST },    { "services", K_LIST },
	{ NULL, K_ANY },
};

/* Settings that take one of a few words. */
struct choice {
	const char *name;
	int value;
};

static const struct choice role_words[] = {
	{ "service-manager", CTL_ROLE_SM },
	{ "forwarding-agent", CTL_ROLE_FA },
	{ NULL, 0 },
};
static const struct choice method_words[] = {
	{ "weighted-round-robin", CTL_METHOD_WRR },
	{ "round-robin", CTL_METHOD_RR },
	{ "hash", CTL_METHOD_HASH },
	{ "least-connections", CTL_METHOD_LEASTCONN },
	{ "weighted-random", CTL_METHOD_RANDOM },
	{ NULL, 0 },
};
static const struct choice mode_words[] = {
	{ "strict", CASA_MODE_STRICT },
	{ "extended", CASA_MODE_EXTENDED },
	{ NULL, 0 },
};
static const struct choice alg_words[] = {
	{ "sha256", CASA_AUTH_HMAC_SHA256 },
	{ "md5", CASA_AUTH_HMAC_MD5 },
	{ NULL, 0 },
};
static const struct choice takeback_words[] = {
	{ "immediate", 1 },
	{ "when-idle", 0 },
	{ NULL, 0 },
};

/*
 * Every default of the file, in one place (docs/configuration.md has the
 * same table). Two are derived after their source is read: the Service
 * Manager's connections (dataplane affinity_capacity, see load_sm) and the
 * agents' address (service_manager address, see load_agents).
 */
static void conf_defaults(struct ctl_conf *c)
{
	fp_conf_defaults(&c->fp);
	c->roles = CTL_ROLE_SM | CTL_ROLE_FA;
	c->sm = (struct ctl_sm_conf){
		.group = CASA_MCAST_DEFAULT,
		.port = CASA_PORT_DEFAULT,
		.wildcard_interval_s = CASA_WILDCARD_REFRESH,
		.wildcard_ttl_s = CASA_WILDCARD_TTL,
		.fixed_ttl_s = CASA_FIXED_TTL,
		.ip_ttl = 1,
		.mode = CASA_MODE_STRICT,
		.auth_alg = CASA_AUTH_NONE,
		.key_id = 1,
		.rollover_s = 180,
		.freshness_s = 120,
		.weight_refresh_s = 60,
		.reset_rate = 1000,
		.fa_max = 1024,
	};
	c->agents = (struct ctl_agent_conf){
		.port = CASA_AGENT_PORT_DEFAULT,
		.keepalive_s = 5,
		.timeout_s = 15,
		.max = 256,
		.required = false,
	};
	c->backup = (struct ctl_backup_conf){ .rank = 0, .takeback_immediate = true };
	c->console =
		(struct ctl_listener_conf){ .enabled = true, .addr = 0x7F000001, .port = 2323 };
	c->console_access = (struct ctl_console_conf){ .sessions = 4, .idle_timeout_s = 600 };
	c->metrics =
		(struct ctl_listener_conf){ .enabled = true, .addr = 0x7F000001, .port = 9637 };
}

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

/* ---- typed getters (after check_keys; g may be NULL: an absent group) ------------ */

static const config_setting_t *member(const config_setting_t *g, const char *name)
{
	return g ? config_setting_get_member(g, name) : NULL;
}

static long long get_int(const config_setting_t *g, const char *name, long long def)
{
	const config_setting_t *m = member(g, name);

	if (!m || !type_ok(m, K_INT))
		return def;
	return config_setting_get_int64(m);
}

static const char *get_str(const config_setting_t *g, const char *name)
{
	const config_setting_t *m = member(g, name);

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

/* Store the rows of keys that have a place in *base (after check_keys). */
static void store_keys(struct ctx *x, const config_setting_t *g, const struct key *keys,
		       const char *obj, void *base)
{
	for (; keys->name; keys++) {
		const config_setting_t *m = member(g, keys->name);
		char *at = (char *)base + keys->off;
		long long v;

		if (!keys->size || !m || !type_ok(m, keys->kind))
			continue;
		switch (keys->kind) {
		case K_INT:
			v = config_setting_get_int64(m);
			if (v < keys->min || v > keys->max)
				break; // reported by check_keys
			if (keys->size == 1)
				*(uint8_t *)at = (uint8_t)v;
			else if (keys->size == 2)
				*(uint16_t *)at = (uint16_t)v;
			else
				*(uint32_t *)at = (uint32_t)v;
			break;
		case K_BOOL:
			*(bool *)at = config_setting_get_bool(m);
			break;
		case K_ADDR:
			get_addr(x, g, keys->name, obj, (uint32_t *)(void *)at);
			break;
		default:
			abort(); // a table row with a size must be one of the above
		}
	}
}

/* check_keys, then store_keys: the whole table part of a section. */
static void load_keys(struct ctx *x, const config_setting_t *g, const struct key *keys,
		      const char *obj, void *base)
{
	if (!g)
		return;
	check_keys(x, g, keys, obj);
	store_keys(x, g, keys, obj, base);
}

static const char *choice_name(const struct choice *t, int value)
{
	for (; t->name; t++)
		if (t->value == value)
			return t->name;
	return "?";
}

/* "a, b or c": the words of t, for error messages. */
static const char *choice_list(const struct choice *t, char *buf, size_t cap)
{
	size_t len = 0;

	buf[0] = '\0';
	for (const struct choice *w = t; w->name && len < cap; w++)
		len += (size_t)snprintf(buf + len, cap - len, "%s%s",
					w == t        ? "" :
					(w + 1)->name ? ", " :
							" or ",
					w->name);
	return buf;
}

/* A word setting: *out keeps its default when the setting is absent. */
static void get_choice(struct ctx *x, const config_setting_t *g, const char *name, const char *obj,
		       const struct choice *t, int *out)
{
	const char *s = get_str(g, name);
	char list[128];

	if (!s)
		return;
	for (const struct choice *w = t; w->name; w++)
		if (strcmp(w->name, s) == 0) {
			*out = w->value;
			return;
		}
	err(x, member(g, name), obj, "%s \"%s\" is not %s", name, s,
	    choice_list(t, list, sizeof(list)));
}

static const char *addr_str(uint32_t a, char *buf)
{
	snprintf(buf, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
	return buf;
}

/* Prefix length of a contiguous mask. */
static unsigned mask_len(uint32_t mask)
{
	return (unsigned)__builtin_popcount(mask);
}

/*
 * A prefix "a.b.c.d/len" from string element e of list obj's `what`: true
 * when valid; a prefix with host bits set is an error (it is almost always a
 * typo for a host or a wider prefix), named with the prefix it would be.
 */
static bool get_prefix(struct ctx *x, const config_setting_t *e, const char *obj, const char *what,
		       uint32_t *addr, uint32_t *mask)
{
	const char *s =
		config_setting_type(e) == CONFIG_TYPE_STRING ? config_setting_get_string(e) : NULL;
	const char *slash = s ? strchr(s, '/') : NULL;
	char host[16], a[16], *end;
	struct in_addr in;
	unsigned long len;

	if (!slash || (size_t)(slash - s) >= sizeof(host) || slash[1] < '0' || slash[1] > '9')
		goto bad;
	memcpy(host, s, (size_t)(slash - s));
	host[slash - s] = '\0';
	len = strtoul(slash + 1, &end, 10);
	if (*end || len > 32 || inet_pton(AF_INET, host, &in) != 1)
		goto bad;
	*addr = ntohl(in.s_addr);
	*mask = len ? 0xFFFFFFFFu << (32 - len) : 0;
	if (*addr & ~*mask) {
		err(x, e, obj, "%s \"%s\" has host bits set (%s/%lu?)", what, s,
		    addr_str(*addr & *mask, a), len);
		return false;
	}
	return true;
bad:
	err(x, e, obj, "%s \"%s\" is not a prefix a.b.c.d/len", what, s ? s : "?");
	return false;
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
	// The dispatch address (the target's XCF-like address): the tunnel
	// endpoint unless given.
	t->addr = t->fp.tunnel;
	get_addr(x, g, "address", obj, &t->addr);
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

static bool service_has_target(const struct ctl_service *s, uint32_t idx);

static void load_service_targets(struct ctx *x, struct ctl_conf *c, struct ctl_service *s,
				 const config_setting_t *l, const char *obj)
{
	// Found by fuzz_ctl_conf: "targets = [ ]" was taken, a service
	// nothing could ever serve.
	if (config_setting_length(l) < 1) {
		err(x, l, obj, "targets: at least one target required");
		return;
	}
	for (int i = 0; i < config_setting_length(l) && s->n_targets < FP_TARGETS_MAX; i++) {
		const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
		const char *name = config_setting_type(e) == CONFIG_TYPE_STRING ?
					   config_setting_get_string(e) :
					   NULL;
		int idx = name ? target_index(c, name) : -1;

		if (idx < 0)
			err(x, e, obj, "target \"%s\" is not defined", name ? name : "?");
		else if (service_has_target(s, (uint32_t)idx))
			err(x, e, obj, "target \"%s\" listed twice", name);
		else
			s->targets[s->n_targets++] = (uint32_t)idx;
	}
}

static bool service_has_target(const struct ctl_service *s, uint32_t idx)
{
	for (unsigned i = 0; i < s->n_targets; i++)
		if (s->targets[i] == idx)
			return true;
	return false;
}

/* A policy's targets: defined, and among the service's own. */
static void load_policy_targets(struct ctx *x, const struct ctl_conf *c,
				const struct ctl_service *s, struct ctl_policy *p,
				const config_setting_t *l, const char *obj)
{
	for (int i = 0; i < config_setting_length(l) && p->n_targets < FP_TARGETS_MAX; i++) {
		const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
		const char *name = config_setting_type(e) == CONFIG_TYPE_STRING ?
					   config_setting_get_string(e) :
					   NULL;
		int idx = name ? target_index(c, name) : -1;
		bool twice = false;

		for (unsigned j = 0; idx >= 0 && j < p->n_targets; j++)
			twice |= p->targets[j] == (uint32_t)idx;
		if (idx < 0)
			err(x, e, obj, "target \"%s\" is not defined", name ? name : "?");
		else if (!service_has_target(s, (uint32_t)idx))
			err(x, e, obj, "target \"%s\" is not one of the service's targets", name);
		else if (twice)
			err(x, e, obj, "target \"%s\" listed twice", name);
		else
			p->targets[p->n_targets++] = (uint32_t)idx;
	}
}

static void load_policy(struct ctx *x, const struct ctl_conf *c, struct ctl_service *s,
			const config_setting_t *g, const char *sobj)
{
	struct ctl_policy *p = &s->policies[s->n_policies];
	const config_setting_t *src = config_setting_get_member(g, "source");
	const config_setting_t *l = config_setting_get_member(g, "targets");
	char obj[96];

	p->line = config_setting_source_line(g);
	if (src && config_setting_type(src) == CONFIG_TYPE_STRING)
		snprintf(obj, sizeof(obj), "%s policy \"%.20s\"", sobj,
			 config_setting_get_string(src));
	else
		snprintf(obj, sizeof(obj), "%s policy #%u", sobj, s->n_policies + 1);
	check_keys(x, g, policy_keys, obj);
	if (!src || config_setting_type(src) != CONFIG_TYPE_STRING)
		err(x, g, obj, "source = \"a.b.c.d/len\" is required");
	else if (get_prefix(x, src, obj, "source", &p->src, &p->mask))
		for (unsigned i = 0; i < s->n_policies; i++)
			if (s->policies[i].src == p->src && s->policies[i].mask == p->mask)
				err(x, src, obj,
				    "source listed twice in the service (first at line %d)",
				    s->policies[i].line);
	if (l && type_ok(l, K_LIST) && config_setting_length(l) > 0)
		load_policy_targets(x, c, s, p, l, obj);
	else
		err(x, g, obj, "targets = [ \"name\", ... ] is required");
	s->n_policies++;
}

/* Client-subnet policies: loaded after the service's targets. */
static void load_policies(struct ctx *x, const struct ctl_conf *c, struct ctl_service *s,
			  const config_setting_t *l, const char *obj)
{
	int n = config_setting_length(l);

	if (n > CTL_POLICIES_MAX) {
		err(x, l, obj, "policies: %d given, at most %d", n, CTL_POLICIES_MAX);
		n = CTL_POLICIES_MAX;
	}
	if (n == 0)
		return;
	s->policies = calloc((size_t)n, sizeof(*s->policies));
	if (!s->policies) {
		err(x, l, obj, "out of memory for %d policies", n);
		return;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *g = config_setting_get_elem(l, (unsigned)i);

		if (config_setting_type(g) != CONFIG_TYPE_GROUP)
			err(x, g, obj, "policy %d must be a group { source = ...; targets = ...; }",
			    i + 1);
		else
			load_policy(x, c, s, g, obj);
	}
}

static void load_service(struct ctx *x, struct ctl_conf *c, const config_setting_t *g)
{
	struct ctl_service *s = &c->services[c->n_services];
	const config_setting_t *m;
	const char *str;
	char obj[64];
	int method;

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
	method = CTL_METHOD_WRR;
	get_choice(x, g, "method", obj, method_words, &method);
	s->method = (enum ctl_method)method;
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
	m = config_setting_get_member(g, "policies");
	if (m && type_ok(m, K_LIST))
		load_policies(x, c, s, m, obj);
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

static void load_roles(struct ctx *x, struct ctl_conf *c, const config_setting_t *root)
{
	const config_setting_t *l = config_setting_get_member(root, "roles");
	char list[64];

	if (!l || !type_ok(l, K_LIST))
		return; // the default, or reported by check_keys
	c->roles = 0;
	if (config_setting_length(l) == 0)
		err(x, l, "roles", "at least one of %s is required",
		    choice_list(role_words, list, sizeof(list)));
	for (int i = 0; i < config_setting_length(l); i++) {
		const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);
		const char *s = config_setting_type(e) == CONFIG_TYPE_STRING ?
					config_setting_get_string(e) :
					"?";
		const struct choice *w = role_words;

		while (w->name && strcmp(w->name, s) != 0)
			w++;
		if (w->name)
			c->roles |= (unsigned)w->value;
		else
			err(x, e, "roles", "\"%s\" is not %s", s,
			    choice_list(role_words, list, sizeof(list)));
	}
}

static void load_fa_prefixes(struct ctx *x, struct ctl_sm_conf *sm, const config_setting_t *l)
{
	int n = config_setting_length(l);

	if (n > CTL_FA_PREFIXES_MAX) {
		err(x, l, "service_manager", "forwarding_agents: %d given, at most %d", n,
		    CTL_FA_PREFIXES_MAX);
		n = CTL_FA_PREFIXES_MAX;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(l, (unsigned)i);

		if (get_prefix(x, e, "service_manager", "forwarding_agents",
			       &sm->fa_prefixes[sm->n_fa_prefixes].addr,
			       &sm->fa_prefixes[sm->n_fa_prefixes].mask))
			sm->n_fa_prefixes++;
	}
}

/*
 * The key: the first line of the file (CR LF stripped), 1..CASA_KEY_MAX
 * octets. Checked here so that a bad key fails `casalb -n`; the Service
 * Manager reads it again where it is used. The key is never kept in the
 * configuration, printed nor put in a message: the buffer is wiped.
 */
static void check_key_file(struct ctx *x, const config_setting_t *s, const char *path)
{
	char key[CASA_KEY_MAX + 2]; // the key, CR and LF
	size_t len = 0;
	const char *why = casa_file_first_line(path, key, sizeof(key), &len);

	if (why)
		err(x, s, "service_manager auth", "key_file \"%s\": %s", path, why);
	else if (len > CASA_KEY_MAX)
		err(x, s, "service_manager auth",
		    "key_file \"%s\": the first line is longer than %d octets", path, CASA_KEY_MAX);
	else if (len == 0)
		err(x, s, "service_manager auth",
		    "key_file \"%s\": the first line is empty (a key of 1..%d octets)", path,
		    CASA_KEY_MAX);
	explicit_bzero(key, sizeof(key));
}

/* auth = { ... }: a relative key_file is relative to the configuration's
 * directory; sm->key_file holds the path the Service Manager opens. */
static void load_auth(struct ctx *x, struct ctl_sm_conf *sm, const config_setting_t *g)
{
	const char *file = get_str(g, "key_file"), *slash = strrchr(x->file, '/');
	int alg = CASA_AUTH_HMAC_SHA256, n;

	load_keys(x, g, auth_keys, "service_manager auth", sm);
	get_choice(x, g, "algorithm", "service_manager auth", alg_words, &alg);
	sm->auth_alg = (uint8_t)alg;
	if (!file || !file[0]) {
		err(x, g, "service_manager auth", "key_file = \"path\" is required");
		return;
	}
	if (file[0] == '/' || !slash)
		n = snprintf(sm->key_file, sizeof(sm->key_file), "%s", file);
	else
		n = snprintf(sm->key_file, sizeof(sm->key_file), "%.*s/%s", (int)(slash - x->file),
			     x->file, file);
	if (n < 0 || (size_t)n >= sizeof(sm->key_file))
		err(x, member(g, "key_file"), "service_manager auth",
		    "key_file: the path is longer than %zu characters", sizeof(sm->key_file) - 1);
	else
		check_key_file(x, member(g, "key_file"), sm->key_file);
}

/* s is an IPv4 address (a bad one is reported where it is read). */
static bool addr_valid(const char *s)
{
	struct in_addr a;

	return s && inet_pton(AF_INET, s, &a) == 1;
}

static void load_sm(struct ctx *x, struct ctl_conf *c, const config_setting_t *root)
{
	const config_setting_t *g = config_setting_get_member(root, "service_manager"), *m;
	struct ctl_sm_conf *sm = &c->sm;
	int mode = sm->mode;
	char a[16];

	if (g && !type_ok(g, K_GROUP))
		g = NULL; // reported by check_keys
	// Derived default: the VCRT holds what the affinity table holds.
	sm->connections = c->fp.aff_capacity < 1024       ? 1024 :
			  c->fp.aff_capacity > (1u << 27) ? 1u << 27 :
							    c->fp.aff_capacity;
	load_keys(x, g, sm_keys, "service_manager", sm);
	get_choice(x, g, "mode", "service_manager", mode_words, &mode);
	sm->mode = (uint8_t)mode;
	if ((c->roles & CTL_ROLE_SM) && !member(g, "address"))
		err(x, g ? g : root, "service_manager",
		    "address = \"a.b.c.d\" (the CASA control address) is required with role "
		    "service-manager");
	else if ((c->roles & CTL_ROLE_SM) && addr_valid(get_str(g, "address")) &&
		 (sm->addr == 0 || sm->addr >= 0xE0000000u))
		err(x, member(g, "address"), "service_manager",
		    "address %s is not a unicast address", addr_str(sm->addr, a));
	if ((sm->group >> 28) != 0xE)
		err(x, member(g, "group"), "service_manager",
		    "group %s is not a multicast address (224.0.0.0/4)", addr_str(sm->group, a));
	if (sm->wildcard_ttl_s <= sm->wildcard_interval_s)
		err(x, member(g, "wildcard_ttl") ? member(g, "wildcard_ttl") : g, "service_manager",
		    "wildcard_ttl %u must exceed wildcard_interval %u, or forwarding agents "
		    "drop the wildcard affinities between two advertisements",
		    sm->wildcard_ttl_s, sm->wildcard_interval_s);
	m = member(g, "forwarding_agents");
	if (m && type_ok(m, K_LIST))
		load_fa_prefixes(x, sm, m);
	m = member(g, "auth");
	if (m && type_ok(m, K_GROUP))
		load_auth(x, sm, m);
}

static void load_agents(struct ctx *x, struct ctl_conf *c, const config_setting_t *root)
{
	const config_setting_t *g = config_setting_get_member(root, "agents");
	struct ctl_agent_conf *a = &c->agents;

	if (g && !type_ok(g, K_GROUP))
		g = NULL;
	a->addr = c->sm.addr; // derived default
	load_keys(x, g, agent_keys, "agents", a);
	if (a->timeout_s <= a->keepalive_s)
		err(x, member(g, "timeout") ? member(g, "timeout") : g, "agents",
		    "timeout %u must exceed keepalive %u", a->timeout_s, a->keepalive_s);
}

static void load_backup(struct ctx *x, struct ctl_conf *c, const config_setting_t *root)
{
	const config_setting_t *g = config_setting_get_member(root, "backup");
	int takeback = c->backup.takeback_immediate;

	if (g && !type_ok(g, K_GROUP))
		g = NULL;
	load_keys(x, g, backup_keys, "backup", &c->backup);
	get_choice(x, g, "takeback", "backup", takeback_words, &takeback);
	c->backup.takeback_immediate = takeback;
}

/* A path given in the file: relative to the configuration's directory. */
static bool conf_path(struct ctx *x, const config_setting_t *s, const char *obj, const char *file,
		      char *out, size_t cap)
{
	const char *slash = strrchr(x->file, '/');
	int n;

	if (file[0] == '/' || !slash)
		n = snprintf(out, cap, "%s", file);
	else
		n = snprintf(out, cap, "%.*s/%s", (int)(slash - x->file), x->file, file);
	if (n < 0 || (size_t)n >= cap) {
		err(x, s, obj, "%s: the path is longer than %zu characters",
		    config_setting_name(s) ? config_setting_name(s) : "file", cap - 1);
		return false;
	}
	return true;
}

/* A console secret: the first line (CR LF stripped) of a regular file,
 * 1..CTL_SECRET_MAX-1 octets. */
static void read_secret(struct ctx *x, const config_setting_t *s, const char *key, const char *path,
			char *out)
{
	char buf[CTL_SECRET_MAX + 2];
	size_t len = 0;
	const char *why = casa_file_first_line(path, buf, sizeof(buf), &len);

	if (why)
		err(x, s, "console", "%s \"%s\": %s", key, path, why);
	else if (len >= CTL_SECRET_MAX)
		err(x, s, "console", "%s \"%s\": the first line is longer than %d octets", key,
		    path, CTL_SECRET_MAX - 1);
	else if (len == 0)
		err(x, s, "console", "%s \"%s\": the first line is empty", key, path);
	else
		memcpy(out, buf, len);
	explicit_bzero(buf, sizeof(buf));
}

/* password = "..." or password_file = "path" (one of them, or neither). */
static void load_secret(struct ctx *x, const config_setting_t *g, const char *key, char *secret,
			char *file, size_t file_cap)
{
	char fkey[32];
	const char *inl = get_str(g, key), *path;

	snprintf(fkey, sizeof(fkey), "%s_file", key);
	path = get_str(g, fkey);
	if (inl && path) {
		err(x, member(g, fkey), "console", "%s and %s: give one of them", key, fkey);
		return;
	}
	if (inl && (!inl[0] || strlen(inl) >= CTL_SECRET_MAX)) {
		err(x, member(g, key), "console", "%s: 1..%d characters", key, CTL_SECRET_MAX - 1);
		return;
	}
	if (inl)
		snprintf(secret, CTL_SECRET_MAX, "%s", inl);
	else if (path && path[0] && conf_path(x, member(g, fkey), "console", path, file, file_cap))
		read_secret(x, member(g, fkey), fkey, file, secret);
	else if (path)
		err(x, member(g, fkey), "console", "%s: a path is required", fkey);
}

/* console = { ... }: the listener, who may log in, how many sessions. A
 * console without a password is refused unless it listens on loopback
 * only: anyone who can reach it could change the running appliance. */
static void load_console(struct ctx *x, struct ctl_conf *c, const config_setting_t *root)
{
	const config_setting_t *g = config_setting_get_member(root, "console");
	struct ctl_console_conf *a = &c->console_access;
	char s[16];

	if (!g || !type_ok(g, K_GROUP))
		return;
	check_keys(x, g, console_keys, "console");
	store_keys(x, g, listener_keys, "console", &c->console);
	store_keys(x, g, console_access_keys, "console", a);
	load_secret(x, g, "password", a->password, a->password_file, sizeof(a->password_file));
	load_secret(x, g, "enable_password", a->enable_password, a->enable_password_file,
		    sizeof(a->enable_password_file));
	if (c->console.enabled && !a->password[0] && (c->console.addr >> 24) != 127 &&
	    !member(g, "password") && !member(g, "password_file"))
		err(x, g, "console",
		    "address %s is not a loopback address: password or password_file is required",
		    addr_str(c->console.addr, s));
}

static void load_listener(struct ctx *x, const config_setting_t *root, const char *name,
			  struct ctl_listener_conf *l)
{
	const config_setting_t *g = config_setting_get_member(root, name);

	if (g && type_ok(g, K_GROUP))
		load_keys(x, g, listener_keys, name, l);
}

/* No two TCP listeners on one address and port (0.0.0.0 is every address).
 * Reported on the group that is in the file (one may be a default). */
static void check_listeners(struct ctx *x, const struct ctl_conf *c, const config_setting_t *root)
{
	const struct {
		const char *name;
		bool on;
		uint32_t addr;
		uint16_t port;
	} l[] = {
		{ "agents", (c->roles & CTL_ROLE_SM) != 0, c->agents.addr, c->agents.port },
		{ "console", c->console.enabled, c->console.addr, c->console.port },
		{ "metrics", c->metrics.enabled, c->metrics.addr, c->metrics.port },
	};
	char a[16];

	for (unsigned i = 0; i < sizeof(l) / sizeof(l[0]); i++)
		for (unsigned j = 0; j < i; j++) {
			const config_setting_t *g = config_setting_get_member(root, l[i].name);
			unsigned here = g ? i : j, other = g ? j : i;

			if (!l[i].on || !l[j].on || l[i].port != l[j].port ||
			    (l[i].addr != l[j].addr && l[i].addr && l[j].addr))
				continue;
			if (!g)
				g = config_setting_get_member(root, l[j].name);
			err(x, g ? g : root, l[here].name, "%s port %u is also used by %s",
			    addr_str(l[here].addr, a), l[here].port, l[other].name);
		}
}

/* Check a parsed configuration into *c; the number of problems. */
static int load_parsed(config_t *cfg, const char *name, struct ctl_conf *c, FILE *errs)
{
	struct ctx x = { .file = name, .errs = errs };
	const config_setting_t *root = config_root_setting(cfg), *dp;

	check_keys(&x, root, top_keys, "configuration");
	load_roles(&x, c, root);
	dp = config_setting_get_member(root, "dataplane");
	if (dp && type_ok(dp, K_GROUP))
		load_dataplane(&x, dp, &c->fp);
	else
		err(&x, root, "dataplane", "a dataplane = { ... } group is required");
	load_sm(&x, c, root);
	load_agents(&x, c, root);
	load_backup(&x, c, root);
	load_console(&x, c, root);
	load_listener(&x, root, "metrics", &c->metrics);
	check_listeners(&x, c, root);
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
	conf_defaults(c);
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
	for (unsigned i = 0; c->services && i < c->n_services; i++) {
		free(c->services[i].policies);
		c->services[i].policies = NULL;
		c->services[i].n_policies = 0;
	}
	free(c->targets);
	free(c->services);
	c->targets = NULL;
	c->services = NULL;
	c->n_targets = c->n_services = 0;
}

static const char *mac_str(const uint8_t m[6], char *buf)
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	return buf;
}

/* A string as libconfig reads it back: quoted, with \\, \" and control
 * characters escaped (names and paths may hold any of them). */
static void print_str(const char *s, FILE *out)
{
	fputc('"', out);
	for (; *s; s++)
		if (*s == '"' || *s == '\\')
			fprintf(out, "\\%c", *s);
		else if ((unsigned char)*s < 0x20 || *s == 0x7F)
			fprintf(out, "\\x%02x", (unsigned char)*s);
		else
			fputc(*s, out);
	fputc('"', out);
}

static const char *prefix_str(uint32_t addr, uint32_t mask, char *buf)
{
	char a[16];

	snprintf(buf, 20, "%s/%u", addr_str(addr, a), mask_len(mask));
	return buf;
}

static void print_dataplane(const struct fp_conf *f, FILE *out)
{
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
	fprintf(out, "df = \"%s\"; };\n};\n", f->gre.df < 0 ? "copy" : f->gre.df ? "set" : "clear");
}

/* The key file's path only: the key itself is never printed. */
static void print_sm(const struct ctl_sm_conf *sm, FILE *out)
{
	char a[16], p[20];

	fprintf(out, "service_manager = {\n  address = \"%s\";\n", addr_str(sm->addr, a));
	fprintf(out, "  group = \"%s\";\n  port = %u;\n", addr_str(sm->group, a), sm->port);
	fprintf(out, "  mode = \"%s\";\n  ip_ttl = %u;\n", choice_name(mode_words, sm->mode),
		sm->ip_ttl);
	fprintf(out, "  wildcard_interval = %u;\n  wildcard_ttl = %u;\n  fixed_ttl = %u;\n",
		sm->wildcard_interval_s, sm->wildcard_ttl_s, sm->fixed_ttl_s);
	fprintf(out, "  connections = %u;\n  weight_refresh = %u;\n  reset_rate = %u;\n",
		sm->connections, sm->weight_refresh_s, sm->reset_rate);
	fprintf(out, "  max_forwarding_agents = %u;\n  forwarding_agents = [ ", sm->fa_max);
	for (unsigned i = 0; i < sm->n_fa_prefixes; i++)
		fprintf(out, "%s\"%s\"", i ? ", " : "",
			prefix_str(sm->fa_prefixes[i].addr, sm->fa_prefixes[i].mask, p));
	fprintf(out, "%s];\n", sm->n_fa_prefixes ? " " : "");
	if (sm->auth_alg != CASA_AUTH_NONE) {
		fprintf(out, "  auth = { algorithm = \"%s\"; key_file = ",
			choice_name(alg_words, sm->auth_alg));
		print_str(sm->key_file, out);
		fprintf(out, "; key_id = %u; rollover = %u; freshness = %u; };\n", sm->key_id,
			sm->rollover_s, sm->freshness_s);
	}
	fprintf(out, "};\n");
}

/* A secret is never printed: its file, or stars for one given inline. */
static void print_secret(const char *key, const char *secret, const char *file, FILE *out)
{
	if (file[0]) {
		fprintf(out, " %s_file = ", key);
		print_str(file, out);
		fputc(';', out);
	} else if (secret[0]) {
		fprintf(out, " %s = \"********\";", key);
	}
}

static void print_console(const struct ctl_conf *c, FILE *out)
{
	const struct ctl_console_conf *a = &c->console_access;
	char s[16];

	fprintf(out, "console = { address = \"%s\"; port = %u; enabled = %s; sessions = %u;",
		addr_str(c->console.addr, s), c->console.port,
		c->console.enabled ? "true" : "false", a->sessions);
	fprintf(out, " idle_timeout = %u;", a->idle_timeout_s);
	print_secret("password", a->password, a->password_file, out);
	print_secret("enable_password", a->enable_password, a->enable_password_file, out);
	fprintf(out, " };\n");
}

static void print_listener(const char *name, const struct ctl_listener_conf *l, FILE *out)
{
	char a[16];

	fprintf(out, "%s = { address = \"%s\"; port = %u; enabled = %s; };\n", name,
		addr_str(l->addr, a), l->port, l->enabled ? "true" : "false");
}

static void print_targets(const struct ctl_conf *c, FILE *out)
{
	char a[16], m[18];

	fprintf(out, "targets = (\n");
	for (unsigned i = 0; i < c->n_targets; i++) {
		const struct ctl_target *t = &c->targets[i];

		fprintf(out, "  { name = ");
		print_str(t->name, out);
		fprintf(out, "; dispatch = \"%s\"; ",
			t->fp.dispatch == FP_DISPATCH_GRE ? "gre" : "l2");
		if (t->fp.dispatch == FP_DISPATCH_GRE)
			fprintf(out, "tunnel = \"%s\"; ", addr_str(t->fp.tunnel, a));
		if (t->fp.has_mac)
			fprintf(out, "mac = \"%s\"; ", mac_str(t->fp.mac, m));
		fprintf(out, "address = \"%s\"; port = %u; weight = %u; }%s\n",
			addr_str(t->addr, a), t->fp.port, t->weight,
			i + 1 < c->n_targets ? "," : "");
	}
	fprintf(out, ");\n");
}

static void print_names(const struct ctl_conf *c, const uint32_t *idx, unsigned n, FILE *out)
{
	fprintf(out, "[ ");
	for (unsigned t = 0; t < n; t++) {
		fprintf(out, "%s", t ? ", " : "");
		print_str(c->targets[idx[t]].name, out);
	}
	fprintf(out, " ]");
}

static void print_services(const struct ctl_conf *c, FILE *out)
{
	char a[16], p[20];

	fprintf(out, "services = (\n");
	for (unsigned i = 0; i < c->n_services; i++) {
		const struct ctl_service *s = &c->services[i];

		fprintf(out, "  { name = ");
		print_str(s->name, out);
		fprintf(out, "; vip = \"%s\"; protocol = \"%s\"; ports = [ ", addr_str(s->vip, a),
			s->proto == 6 ? "tcp" : "udp");
		for (unsigned q = 0; q < s->n_ports; q++)
			fprintf(out, "%s%u", q ? ", " : "", s->ports[q]);
		fprintf(out,
			" ]; method = \"%s\"; targets = ", choice_name(method_words, s->method));
		print_names(c, s->targets, s->n_targets, out);
		fprintf(out, ";");
		if (s->n_policies) {
			fprintf(out, "\n    policies = (");
			for (unsigned k = 0; k < s->n_policies; k++) {
				const struct ctl_policy *pol = &s->policies[k];

				fprintf(out,
					"%s\n      { source = \"%s\"; targets = ", k ? "," : "",
					prefix_str(pol->src, pol->mask, p));
				print_names(c, pol->targets, pol->n_targets, out);
				fprintf(out, "; }");
			}
			fprintf(out, "\n    );");
		}
		fprintf(out, " }%s\n", i + 1 < c->n_services ? "," : "");
	}
	fprintf(out, ");\n");
}

void ctl_conf_print(const struct ctl_conf *c, FILE *out)
{
	char a[16];

	fprintf(out, "roles = [ ");
	for (const struct choice *w = role_words, *first = NULL; w->name; w++)
		if (c->roles & (unsigned)w->value) {
			fprintf(out, "%s\"%s\"", first ? ", " : "", w->name);
			first = w;
		}
	fprintf(out, " ];\n");
	print_dataplane(&c->fp, out);
	print_sm(&c->sm, out);
	fprintf(out,
		"agents = { address = \"%s\"; port = %u; keepalive = %u; timeout = %u; "
		"max = %u; required = %s; };\n",
		addr_str(c->agents.addr, a), c->agents.port, c->agents.keepalive_s,
		c->agents.timeout_s, c->agents.max, c->agents.required ? "true" : "false");
	fprintf(out, "backup = { rank = %u; takeback = \"%s\"; };\n", c->backup.rank,
		choice_name(takeback_words, c->backup.takeback_immediate));
	print_console(c, out);
	print_listener("metrics", &c->metrics, out);
	print_targets(c, out);
	print_services(c, out);
}
