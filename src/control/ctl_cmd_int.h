/*
 * ctl_cmd_int.h - private to the control room: what the command parser
 * (ctl_cmd.c) hands a handler, the parsing and formatting helpers the
 * handlers share, and the display handlers (ctl_show.c) the table names.
 *
 * Context: control thread (handlers read and change the running appliance
 * through the view; they never block and bound every walk).
 */
#ifndef CTL_CMD_INT_H
#define CTL_CMD_INT_H

#include "ctl.h"

#define CTL_SHOW_LIMIT_DEFAULT 100 /* rows of a long table unless `limit N` */
#define CTL_SHOW_LIMIT_MAX 100000  /* the largest `limit` */
#define CTL_CMD_LINE_MAX 512       /* characters of a command line */
#define CTL_CMD_WORDS_MAX 16       /* words of a command line */

/* What a handler runs with. */
struct ctl_cmd_ctx {
	struct ctl_view *v;
	const struct ctl_cmd_origin *o;
	const struct ctl_cmd *cmd; /* the row being run */
	uint64_t now_ms;           /* monotonic, the clock of the SM's times */
};

/* Write the one-line error "% why" and return err (a negative errno). */
int ctl_cmd_fail(struct ctl_out *out, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Log a change (one line to the origin's log, naming who made it) and
 * write the same words to out. */
void ctl_cmd_log(struct ctl_cmd_ctx *x, struct ctl_out *out, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A word fit for an error message or a terminal: printable ASCII only
 * (control characters, C1 controls and every other byte >= 0x80 as '?'),
 * at most 40 characters. Returns buf. */
const char *ctl_cmd_word(const char *w, char *buf, size_t cap);
/* Strict parsers: the whole word, in range. */
bool ctl_cmd_ipv4(const char *s, uint32_t *out);
bool ctl_cmd_uint(const char *s, uint32_t min, uint32_t max, uint32_t *out);
/* Dotted quad of a host-order address into buf[16]. */
const char *ctl_cmd_ip(uint32_t a, char *buf);
/* "TCP", "UDP" or the number. */
const char *ctl_cmd_proto(uint8_t p, char *buf);
/* A target's or service's index by name, or -1. */
int ctl_cmd_target(const struct ctl_conf *c, const char *name);
int ctl_cmd_service(const struct ctl_conf *c, const char *name);

/* Display options: `detail`, `vip A.B.C.D`, `limit N`, each allowed or not. */
enum { CTL_OPT_DETAIL = 1, CTL_OPT_VIP = 2, CTL_OPT_LIMIT = 4 };
struct ctl_show_opts {
	bool detail;
	bool has_vip;
	uint32_t vip;
	uint32_t limit; /* CTL_SHOW_LIMIT_DEFAULT unless given */
};
int ctl_cmd_opts(struct ctl_cmd_ctx *x, int argc, char **argv, unsigned allowed,
		 struct ctl_show_opts *o, struct ctl_out *out);

/*
 * The running configuration with the live changes on top: each target's
 * weight and each service's ports as the SM has them now. *out shares
 * everything with v->c but its own targets and services arrays; free
 * with ctl_cmd_conf_live_free (never ctl_conf_free). 0 or -ENOMEM.
 */
int ctl_cmd_conf_live(const struct ctl_view *v, struct ctl_conf *out);
void ctl_cmd_conf_live_free(struct ctl_conf *c);

/* The displays (ctl_show.c). */
int ctl_show_vipadcfg(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);
int ctl_show_vipadyn(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);
int ctl_show_vdpt(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);
int ctl_show_vcrt(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);
int ctl_show_casa_oper(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);
int ctl_show_casa_stats(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);
int ctl_show_casa_wildcard(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);
int ctl_show_casa_affinities(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);
int ctl_show_workers(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);
int ctl_show_drops(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);
int ctl_show_targets(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);
int ctl_show_agents(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);
int ctl_show_fas(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);
int ctl_show_config(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);

/* trace flow (ctl_trace.c). */
int ctl_trace_flow(struct ctl_cmd_ctx *x, int argc, char **argv, struct ctl_out *out);

#endif /* CTL_CMD_INT_H */
