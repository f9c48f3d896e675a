/*
 * ctl.h - the control room's contract (for now: the static configuration
 * that runs the fast path until the Service Manager exists).
 *
 * Context: the control thread. The loader allocates; ctl_conf_free frees.
 */
#ifndef CTL_H
#define CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "fastpath.h"

#define CTL_NAME_MAX 32
#define CTL_PORTS_PER_SERVICE 64
#define CTL_HASH_SLOTS 1024 /* selection table of a "hash" service */

enum ctl_method {
	CTL_METHOD_WRR = 1, /* smooth weighted round robin (nginx's algorithm) */
	CTL_METHOD_RR = 2,  /* every target once, in turn */
	CTL_METHOD_HASH = 3 /* weighted, by 5-tuple hash */
};

struct ctl_target {
	char name[CTL_NAME_MAX];
	struct fp_target_desc fp; /* id = index in ctl_conf.targets */
	uint32_t weight;
	int line;
};

struct ctl_service {
	char name[CTL_NAME_MAX];
	uint32_t vip;
	uint8_t proto;
	uint16_t ports[CTL_PORTS_PER_SERVICE];
	unsigned n_ports;
	enum ctl_method method;
	uint32_t targets[FP_TARGETS_MAX]; /* indexes into ctl_conf.targets */
	unsigned n_targets;
	uint32_t idle_s;
	int line;
};

struct ctl_conf {
	char file[256];
	struct fp_conf fp;
	struct ctl_target *targets;
	unsigned n_targets;
	struct ctl_service *services;
	unsigned n_services;
};

/*
 * Read and check FILE. Every problem is written to errs as one line
 * "file:line: object \"name\": what is wrong"; returns the number of
 * problems (0: *c is complete). On errors *c is freed.
 */
int ctl_conf_load(const char *file, struct ctl_conf *c, FILE *errs);

/* The same from text in memory (NUL-terminated), reported as `name`. */
int ctl_conf_load_text(const char *text, const char *name, struct ctl_conf *c, FILE *errs);
void ctl_conf_free(struct ctl_conf *c);

/* Print the normalised configuration (casalb -n -v). */
void ctl_conf_print(const struct ctl_conf *c, FILE *out);

/*
 * Build the fast-path tables for c: one fp_service_desc per service port,
 * selection tables from the weights. The result points into storage owned
 * by *d's allocation; free with ctl_tables_free.
 */
int ctl_tables_build(const struct ctl_conf *c, struct fp_tables_desc *d);
void ctl_tables_free(struct fp_tables_desc *d);

/* Smooth weighted round robin over weights w[0..n): writes the sequence of
 * indexes (length sum of weights, scaled to fit max) to out; returns its
 * length. Each index i appears in proportion to w[i], spread evenly. */
uint32_t ctl_select_swrr(const uint32_t *w, unsigned n, uint32_t *out, uint32_t max);

/*
 * The Service Manager's effective weight of a target (design.md section 1:
 * WLM weight and QoS fraction): configured weight x capacity (0..64, as
 * reported by the target's agent) x (1 - qos_fraction), rounded to the
 * nearest integer; 0 for a target that is not ready or not healthy.
 */
uint32_t ctl_select_effective(uint32_t configured, uint32_t capacity, double qos_fraction,
			      bool ready, bool healthy);

/*
 * Slot quotas of a table of `size` slots for weights w[0..n): proportional,
 * largest remainder first, summing to size; every positive weight gets at
 * least one slot when size allows. Returns -1 when every weight is 0.
 */
int ctl_select_quotas(const uint32_t *w, unsigned n, uint32_t size, uint32_t *quota);

/*
 * (Re)build a fixed-size selection table table[0..size) of indexes into
 * w[0..n) with minimal churn: with have_prev, a slot keeps its index while
 * that index's quota allows, so when one weight changes only slots moving
 * to or from that index change; freed slots are filled in smooth weighted
 * round-robin order. Returns the number of slots that changed, or -1 when
 * every weight is 0 (the table is left as it was). Context: control.
 */
int64_t ctl_select_rebuild(uint32_t *table, uint32_t size, bool have_prev, const uint32_t *w,
			   unsigned n);

#endif /* CTL_H */
