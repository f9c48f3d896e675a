/*
 * ctl_sm.c - the Service Manager's core: targets, DPT, VCRT, placement and
 * the workers' selection tables (design.md sections 1, 4 and 5; seed 000
 * chapter 5 "netstat VDPT / VCRT", chapter 6 "message flows").
 *
 * No sockets and no clocks here: the event loop passes the time and carries
 * out what the core asks for (publish tables, multicast deletes), so every
 * rule can be unit-tested against the fast-path stub.
 *
 * Placement (issue 4): candidates = the service's targets, narrowed by the
 * client-subnet policy, that are ready (Rdy > 0) and healthy; effective
 * weight = configured x capacity x (1 - QoS) (ctl_select_effective). When
 * every candidate's weight is 0 but some are ready, placement is uniform
 * random among them (seed 000, 5.x: "if all target stacks ... have zero
 * W/Q values, the connection forwarding will be done randomly").
 *
 * Live changes (the console): the configuration sm->c points to is never
 * written. The SM keeps what an operator changes on top of it: the ports
 * each service distributes (service ports are added, or withdrawn and kept
 * until their last connection ends, seed 5.6.4), each target's configured
 * weight and whether it is quiesced (seed 5.6.5).
 *
 * Context: control thread only.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "casa.h"
#include "ctl.h"

#define SEQ_MAX 1024       /* one placement cycle of a sequence method */
#define WORKER_SEQ_MIN 256 /* entries of a workers' sequence table */
#define LC_BATCH 64        /* least-connections: placements per table */
#define DELETE_QUEUE 65536 /* pending affinity deletes (power of 2) */
#define WITHDRAW_QUEUE 64  /* wildcards waiting for their TTL-0 advertisement */
#define CONN_NONE UINT32_MAX
/* A resync spares connections placed this shortly before it began: their
 * SYN may not have reached the target when its agent took the table. */
#define RESYNC_GRACE_MS 2000

/* A selector: the state of one placement domain (a service port's default
 * target set or one of its client-subnet policies). Indexes k are
 * positions in the service's target list. */
struct sm_sel {
	const struct ctl_policy *policy; /* NULL: the whole service */
	uint32_t seq[SEQ_MAX];           /* current cycle of k (WRR, RR) */
	uint32_t seq_len, seq_pos;
	uint32_t *slots; /* CTL_HASH_SLOTS of k (HASH, RANDOM), NULL until built */
	bool slots_built;
	uint32_t rr_start; /* least-connections tie rotation */
};

struct sm_dpt {
	uint32_t rdy;
	uint64_t total;
	uint64_t active;
	uint32_t eff; /* effective weight as applied at the last refresh */
};

struct sm_sp {
	unsigned service;
	uint16_t port;
	bool withdrawn;     /* port deleted: no new connections, kept while conns > 0 */
	uint64_t conns;     /* VCRT entries on this service port */
	struct sm_dpt *dpt; /* [service n_targets] */
	struct sm_sel *sel; /* [1 + n_policies] */
	unsigned n_sel;
	uint64_t placed_since_publish;
};

struct sm_target {
	bool agent_live; /* a registered agent session exists */
	bool down;       /* not eligible: agent required but absent too long */
	bool ever_registered;
	uint64_t lost_ms; /* when the agent session ended (down after timeout) */
	uint8_t capacity; /* reported; applied at weight refresh */
	uint16_t qos;     /* reported, x 10000 */
	uint8_t cap_applied;
	uint16_t qos_applied;
	uint32_t resync_id;
	bool resync_open;
	uint32_t resync_gen;
	uint64_t resync_begin_ms;
	uint32_t weight; /* configured weight, live (starts as the file's) */
	bool quiesced;   /* no new connections; existing ones drain */
};

struct sm_conn {
	struct fp_flow flow;
	uint32_t target, sp, fa;
	uint32_t next; /* hash chain or free list */
	uint32_t gen;  /* resync generation that last confirmed it */
	uint64_t created_ms, last_ms;
	bool used;
};

struct ctl_sm {
	const struct ctl_conf *c;
	struct sm_target *targets;
	struct sm_sp *sps;
	unsigned n_sps, sps_cap;
	uint64_t sp_gen; /* bumped when the active service ports change */
	struct fp_flow withdrawq[WITHDRAW_QUEUE];
	unsigned n_withdraw;

	struct sm_conn *conns;
	uint32_t *heads;
	uint32_t n_buckets, capacity, free_head;
	uint64_t n_conns;

	struct fp_flow *delq;
	uint32_t *delq_target;
	uint32_t delq_head, delq_tail;

	bool dirty;
	uint64_t next_refresh_ms;
	uint64_t last_lc_publish_ms;
	uint64_t rng;
	struct ctl_sm_counters k;
};

/* ---- small helpers --------------------------------------------------------------- */

static const struct ctl_service *sp_service(const struct ctl_sm *sm, unsigned sp);

/*
 * The service port of vip:port/proto: an exact port before the every-port
 * wildcard (port 0), an active one before a withdrawn one (which only
 * `withdrawn` asks for: its connections still resolve), or -1.
 */
static int sp_lookup(const struct ctl_sm *sm, uint32_t vip, uint16_t port, uint8_t proto,
		     bool withdrawn)
{
	int best = -1, best_rank = 0;

	for (unsigned sp = 0; sp < sm->n_sps; sp++) {
		const struct ctl_service *s = sp_service(sm, sp);
		const struct sm_sp *p = &sm->sps[sp];
		int rank;

		if (s->vip != vip || s->proto != proto || (p->withdrawn && !withdrawn))
			continue;
		if (p->port != port && p->port != 0)
			continue;
		rank = (p->port == port ? 2 : 0) + (p->withdrawn ? 0 : 1);
		if (best < 0 || rank > best_rank) {
			best = (int)sp;
			best_rank = rank;
		}
	}
	return best;
}

static uint64_t rng_next(struct ctl_sm *sm)
{
	// xorshift64*: placement only needs spread, not secrecy.
	sm->rng ^= sm->rng >> 12;
	sm->rng ^= sm->rng << 25;
	sm->rng ^= sm->rng >> 27;
	return sm->rng * 0x2545F4914F6CDD1DULL;
}

static uint32_t flow_hash(const struct fp_flow *f)
{
	uint64_t h = (uint64_t)f->src << 32 | f->dst;

	h ^= (uint64_t)f->sport << 40 ^ (uint64_t)f->dport << 24 ^ f->proto;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return (uint32_t)h;
}

static bool flow_eq(const struct fp_flow *a, const struct fp_flow *b)
{
	return a->src == b->src && a->dst == b->dst && a->sport == b->sport &&
	       a->dport == b->dport && a->proto == b->proto;
}

static const struct ctl_service *sp_service(const struct ctl_sm *sm, unsigned sp)
{
	return &sm->c->services[sm->sps[sp].service];
}

/* Position of target id t in service s's list, or -1. */
static int service_k(const struct ctl_service *s, uint32_t t)
{
	for (unsigned k = 0; k < s->n_targets; k++)
		if (s->targets[k] == t)
			return (int)k;
	return -1;
}

static bool policy_has(const struct ctl_policy *p, uint32_t t)
{
	for (unsigned i = 0; i < p->n_targets; i++)
		if (p->targets[i] == t)
			return true;
	return false;
}

/* The most specific policy of service s covering src, or NULL. */
static unsigned sel_for(const struct ctl_service *s, uint32_t src)
{
	unsigned best = 0;
	uint32_t best_mask = 0;

	for (unsigned i = 0; i < s->n_policies; i++) {
		const struct ctl_policy *p = &s->policies[i];

		if ((src & p->mask) == p->src && (best == 0 || p->mask > best_mask)) {
			best = i + 1;
			best_mask = p->mask;
		}
	}
	return best;
}

/* ---- targets and weights ----------------------------------------------------------- */

static bool target_healthy(const struct ctl_sm *sm, uint32_t t)
{
	const struct sm_target *st = &sm->targets[t];

	if (st->down)
		return false;
	return st->agent_live || st->lost_ms || !sm->c->agents.required;
}

static uint32_t dpt_effective(const struct ctl_sm *sm, unsigned sp, unsigned k)
{
	const struct ctl_service *s = sp_service(sm, sp);
	uint32_t t = s->targets[k];
	const struct sm_target *st = &sm->targets[t];

	return ctl_select_effective(st->weight, st->cap_applied,
				    st->qos_applied / (double)CASA_AGENT_QOS_ONE,
				    sm->sps[sp].dpt[k].rdy > 0, target_healthy(sm, t));
}

/* Recompute every effective weight; drop placement state that depends on
 * them. Marks the tables dirty. */
static void weights_apply(struct ctl_sm *sm)
{
	for (unsigned sp = 0; sp < sm->n_sps; sp++) {
		struct sm_sp *p = &sm->sps[sp];

		for (unsigned k = 0; k < sp_service(sm, sp)->n_targets; k++)
			p->dpt[k].eff = dpt_effective(sm, sp, k);
		for (unsigned i = 0; i < p->n_sel; i++) {
			p->sel[i].seq_len = 0;
			p->sel[i].seq_pos = 0;
			p->sel[i].slots_built = false;
		}
	}
	sm->dirty = true;
}

/* Membership changed (agent up/down, Rdy 0 <-> > 0): apply at once, with
 * the loads as last applied. */
static void membership_changed(struct ctl_sm *sm)
{
	weights_apply(sm);
}

/* Periodic refresh (WLM interval): take the latest reported loads. */
static void weights_refresh(struct ctl_sm *sm)
{
	for (unsigned t = 0; t < sm->c->n_targets; t++) {
		sm->targets[t].cap_applied = sm->targets[t].capacity;
		sm->targets[t].qos_applied = sm->targets[t].qos;
	}
	weights_apply(sm);
	sm->k.weight_refreshes++;
}

/* ---- candidates ------------------------------------------------------------------------ */

/* Position k of sp's service may take a new connection: ready for the port,
 * healthy, not quiesced. */
static bool target_eligible(const struct ctl_sm *sm, unsigned sp, unsigned k)
{
	uint32_t t = sp_service(sm, sp)->targets[k];

	return sm->sps[sp].dpt[k].rdy > 0 && target_healthy(sm, t) && !sm->targets[t].quiesced;
}

/* Candidate positions k and their weights for selector si of sp. Returns n;
 * *uniform is set when all weights are 0 but some target is ready (then w
 * holds 1 for each). */
static unsigned candidates(const struct ctl_sm *sm, unsigned sp, unsigned si, uint32_t *ks,
			   uint32_t *w, bool *uniform)
{
	const struct ctl_service *s = sp_service(sm, sp);
	const struct sm_sp *p = &sm->sps[sp];
	const struct ctl_policy *pol = p->sel[si].policy;
	unsigned n = 0, ready = 0;

	*uniform = false;
	if (p->withdrawn)
		return 0; // a deleted port takes no new connection
	for (unsigned k = 0; k < s->n_targets; k++) {
		uint32_t t = s->targets[k];

		if (pol && !policy_has(pol, t))
			continue;
		if (!target_eligible(sm, sp, k))
			continue;
		ready++;
		if (p->dpt[k].eff == 0)
			continue;
		ks[n] = k;
		w[n++] = p->dpt[k].eff;
	}
	if (n > 0 || ready == 0)
		return n;
	*uniform = true;
	for (unsigned k = 0; k < s->n_targets; k++) {
		uint32_t t = s->targets[k];

		if ((pol && !policy_has(pol, t)) || !target_eligible(sm, sp, k))
			continue;
		ks[n] = k;
		w[n++] = 1;
	}
	return n;
}

static void shuffle(struct ctl_sm *sm, uint32_t *a, uint32_t *b, unsigned n)
{
	for (unsigned i = n; i > 1; i--) {
		unsigned j = (unsigned)(rng_next(sm) % i);
		uint32_t t = a[i - 1];

		a[i - 1] = a[j];
		a[j] = t;
		t = b[i - 1];
		b[i - 1] = b[j];
		b[j] = t;
	}
}

/*
 * One smooth-WRR cycle over the candidates, taken in a fresh random order.
 * Why the shuffle: plain round robin over an even number of targets sends
 * the second of every back-to-back connection pair to the even targets
 * (seed 002); breaking ties in a new random order each cycle makes the
 * position inside a pair independent of the target. Returns the length.
 */
static uint32_t cycle_build(struct ctl_sm *sm, uint32_t *ks, uint32_t *w, unsigned n, bool equal,
			    uint32_t *out, uint32_t max)
{
	uint32_t idx[SEQ_MAX], len;

	if (n == 0)
		return 0;
	if (equal)
		for (unsigned i = 0; i < n; i++)
			w[i] = 1;
	shuffle(sm, ks, w, n);
	len = ctl_select_swrr(w, n, idx, max < SEQ_MAX ? max : SEQ_MAX);
	for (uint32_t i = 0; i < len; i++)
		out[i] = ks[idx[i]];
	return len;
}

/* The minimal-churn slot table of selector si (HASH and RANDOM). */
static int slots_build(struct ctl_sm *sm, unsigned sp, unsigned si)
{
	struct sm_sel *sel = &sm->sps[sp].sel[si];
	const struct ctl_service *s = sp_service(sm, sp);
	uint32_t w[FP_TARGETS_MAX], ks[FP_TARGETS_MAX];
	bool uniform;
	unsigned n = candidates(sm, sp, si, ks, w, &uniform);

	if (!sel->slots) {
		sel->slots = malloc(CTL_HASH_SLOTS * sizeof(*sel->slots));
		if (!sel->slots)
			return -ENOMEM;
		for (unsigned i = 0; i < CTL_HASH_SLOTS; i++)
			sel->slots[i] = s->n_targets;
	}
	if (n == 0)
		return -ENOENT;
	// The table indexes service positions k directly, so a rebuild keeps
	// every slot whose target still has quota: weights of all targets of
	// the service, 0 for non-candidates.
	uint32_t wk[FP_TARGETS_MAX] = { 0 };

	for (unsigned i = 0; i < n; i++)
		wk[ks[i]] = w[i];
	if (ctl_select_rebuild(sel->slots, CTL_HASH_SLOTS, true, wk, s->n_targets) < 0)
		return -ENOENT;
	sel->slots_built = true;
	return 0;
}

/* ---- placement --------------------------------------------------------------------------- */

static uint32_t place_sequence(struct ctl_sm *sm, unsigned sp, unsigned si, bool equal)
{
	struct sm_sel *sel = &sm->sps[sp].sel[si];

	if (sel->seq_pos >= sel->seq_len) {
		uint32_t ks[FP_TARGETS_MAX], w[FP_TARGETS_MAX];
		bool uniform;
		unsigned n = candidates(sm, sp, si, ks, w, &uniform);

		sel->seq_len = cycle_build(sm, ks, w, n, equal || uniform, sel->seq, SEQ_MAX);
		sel->seq_pos = 0;
		if (sel->seq_len == 0)
			return CONN_NONE;
	}
	return sel->seq[sel->seq_pos++];
}

static uint32_t place_leastconn(struct ctl_sm *sm, unsigned sp, unsigned si)
{
	uint32_t ks[FP_TARGETS_MAX], w[FP_TARGETS_MAX];
	bool uniform;
	unsigned n = candidates(sm, sp, si, ks, w, &uniform), best = n;
	const struct sm_dpt *dpt = sm->sps[sp].dpt;
	struct sm_sel *sel = &sm->sps[sp].sel[si];

	// argmin of (active + 1) / weight; the scan starts one further each
	// time so ties rotate instead of always favouring the first target.
	for (unsigned j = 0; j < n; j++) {
		unsigned i = (j + sel->rr_start) % n;

		if (best == n || (dpt[ks[i]].active + 1) * (uint64_t)w[best] <
					 (dpt[ks[best]].active + 1) * (uint64_t)w[i])
			best = i;
	}
	sel->rr_start++;
	return best == n ? CONN_NONE : ks[best];
}

static uint32_t place_random(struct ctl_sm *sm, unsigned sp, unsigned si)
{
	uint32_t ks[FP_TARGETS_MAX], w[FP_TARGETS_MAX];
	bool uniform;
	unsigned n = candidates(sm, sp, si, ks, w, &uniform);
	uint64_t total = 0, r;

	for (unsigned i = 0; i < n; i++)
		total += w[i];
	if (total == 0)
		return CONN_NONE;
	r = rng_next(sm) % total;
	for (unsigned i = 0; i < n; i++) {
		if (r < w[i])
			return ks[i];
		r -= w[i];
	}
	return CONN_NONE;
}

static uint32_t place_hash(struct ctl_sm *sm, unsigned sp, unsigned si, const struct fp_flow *f)
{
	struct sm_sel *sel = &sm->sps[sp].sel[si];
	uint32_t k;

	if (!sel->slots_built && slots_build(sm, sp, si) != 0)
		return CONN_NONE;
	k = sel->slots[flow_hash(f) % CTL_HASH_SLOTS];
	return k < sp_service(sm, sp)->n_targets ? k : CONN_NONE;
}

uint32_t ctl_sm_place(struct ctl_sm *sm, unsigned sp, const struct fp_flow *f)
{
	const struct ctl_service *s;
	unsigned si;
	uint32_t k;

	if (sp >= sm->n_sps)
		return FP_TARGET_NONE;
	s = sp_service(sm, sp);
	si = sel_for(s, f->src);
	switch (s->method) {
	case CTL_METHOD_RR:
		k = place_sequence(sm, sp, si, true);
		break;
	case CTL_METHOD_LEASTCONN:
		k = place_leastconn(sm, sp, si);
		break;
	case CTL_METHOD_RANDOM:
		k = place_random(sm, sp, si);
		break;
	case CTL_METHOD_HASH:
		k = place_hash(sm, sp, si, f);
		break;
	default:
		k = place_sequence(sm, sp, si, false);
		break;
	}
	return k == CONN_NONE ? FP_TARGET_NONE : s->targets[k];
}

/* ---- VCRT ---------------------------------------------------------------------------------- */

static uint32_t *conn_slot(const struct ctl_sm *sm, const struct fp_flow *f)
{
	return &sm->heads[flow_hash(f) & (sm->n_buckets - 1)];
}

static struct sm_conn *conn_lookup(const struct ctl_sm *sm, const struct fp_flow *f)
{
	for (uint32_t i = *conn_slot(sm, f); i != CONN_NONE; i = sm->conns[i].next)
		if (flow_eq(&sm->conns[i].flow, f))
			return &sm->conns[i];
	return NULL;
}

static void dpt_count(struct ctl_sm *sm, uint32_t sp, uint32_t target, int delta, bool is_new)
{
	int k;

	if (sp >= sm->n_sps)
		return;
	k = service_k(sp_service(sm, sp), target);
	if (k < 0)
		return;
	struct sm_dpt *d = &sm->sps[sp].dpt[k];

	if (delta > 0)
		d->active++;
	else if (d->active > 0)
		d->active--;
	if (is_new)
		d->total++;
}

/* A withdrawn service port stays published while connections remain (so
 * their mid-flow packets still reach the SM); its last one ending
 * unpublishes it. */
static void sp_conns_count(struct ctl_sm *sm, uint32_t sp, int delta)
{
	struct sm_sp *p;

	if (sp >= sm->n_sps)
		return;
	p = &sm->sps[sp];
	if (delta > 0) {
		p->conns++;
		return;
	}
	// The last one: unpublish, and tell the agents (SERVICES without it).
	if (p->conns > 0 && --p->conns == 0 && p->withdrawn) {
		sm->dirty = true;
		sm->sp_gen++;
	}
}

/* Record (or re-point) a connection. NULL when the table is full. */
static struct sm_conn *conn_insert(struct ctl_sm *sm, const struct fp_flow *f, uint32_t sp,
				   uint32_t target, uint32_t fa, uint64_t now_ms)
{
	struct sm_conn *c = conn_lookup(sm, f);
	uint32_t *head;

	if (c) {
		if (c->target != target) {
			dpt_count(sm, c->sp, c->target, -1, false);
			dpt_count(sm, sp, target, +1, false);
			sp_conns_count(sm, c->sp, -1);
			sp_conns_count(sm, sp, +1);
			c->target = target;
			c->sp = sp;
		}
		c->last_ms = now_ms;
		return c;
	}
	if (sm->free_head == CONN_NONE) {
		sm->k.vcrt_full++;
		return NULL;
	}
	c = &sm->conns[sm->free_head];
	sm->free_head = c->next;
	head = conn_slot(sm, f);
	*c = (struct sm_conn){ .flow = *f,
			       .target = target,
			       .sp = sp,
			       .fa = fa,
			       .next = *head,
			       .created_ms = now_ms,
			       .last_ms = now_ms,
			       .used = true,
			       .gen = sm->targets[target].resync_gen };
	*head = (uint32_t)(c - sm->conns);
	sm->n_conns++;
	dpt_count(sm, sp, target, +1, true);
	sp_conns_count(sm, sp, +1);
	sm->sps[sp].placed_since_publish++;
	return c;
}

static void conn_remove(struct ctl_sm *sm, struct sm_conn *c)
{
	uint32_t idx = (uint32_t)(c - sm->conns), *p = conn_slot(sm, &c->flow);

	while (*p != idx)
		p = &sm->conns[*p].next;
	*p = c->next;
	dpt_count(sm, c->sp, c->target, -1, false);
	sp_conns_count(sm, c->sp, -1);
	c->used = false;
	c->next = sm->free_head;
	sm->free_head = idx;
	sm->n_conns--;
}

/* Forget a connection everywhere: VCRT, the local affinity table, and every
 * external FA (a multicast TTL-0 delete, spec 6.3). */
static void conn_forget(struct ctl_sm *sm, struct sm_conn *c)
{
	struct fp_flow f = c->flow;
	uint32_t t = c->target;

	conn_remove(sm, c);
	fp_affinity_del(&f);
	if (sm->delq_tail - sm->delq_head >= DELETE_QUEUE) {
		sm->k.deletes_lost++;
		return;
	}
	sm->delq_target[sm->delq_tail & (DELETE_QUEUE - 1)] = t;
	sm->delq[sm->delq_tail++ & (DELETE_QUEUE - 1)] = f;
	sm->k.deletes_queued++;
}

static struct ctl_conn_row conn_row(const struct sm_conn *c)
{
	return (struct ctl_conn_row){ .flow = c->flow,
				      .target = c->target,
				      .sp = c->sp,
				      .fa = c->fa,
				      .created_ms = c->created_ms,
				      .last_ms = c->last_ms };
}

bool ctl_sm_conn_find(const struct ctl_sm *sm, const struct fp_flow *f, struct ctl_conn_row *out)
{
	const struct sm_conn *c = conn_lookup(sm, f);

	if (!c)
		return false;
	if (out)
		*out = conn_row(c);
	return true;
}

uint64_t ctl_sm_conn_count(const struct ctl_sm *sm)
{
	return sm->n_conns;
}

unsigned ctl_sm_conn_walk(const struct ctl_sm *sm, uint64_t *cursor, unsigned max,
			  int (*fn)(const struct ctl_conn_row *r, void *arg), void *arg)
{
	unsigned seen = 0;
	uint64_t i = *cursor;

	for (; i < sm->capacity && seen < max; i++) {
		const struct sm_conn *c = &sm->conns[i];
		struct ctl_conn_row r;

		if (!c->used)
			continue;
		seen++;
		r = conn_row(c);
		if (fn(&r, arg) != 0) {
			i++;
			break;
		}
	}
	*cursor = i >= sm->capacity ? 0 : i;
	return seen;
}

/* ---- interest and connection events ---------------------------------------------------------- */

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

const char *ctl_sm_interest_name(enum ctl_interest v)
{
	static const char *const names[CTL_INT__COUNT] = {
		[CTL_INT_NEW] = "new",
		[CTL_INT_KNOWN] = "known",
		[CTL_INT_RESET] = "reset",
		[CTL_INT_NO_SERVICE] = "no_service",
		[CTL_INT_NO_TARGET] = "no_target",
		[CTL_INT_FULL] = "vcrt_full",
	};
	return v < CTL_INT__COUNT ? names[v] : "unknown";
}

static enum ctl_interest interest_verdict(struct ctl_sm *sm, const struct fp_flow *f,
					  uint8_t tcp_flags, uint32_t fa_addr, uint64_t now_ms,
					  uint32_t *target)
{
	int sp = sp_lookup(sm, f->dst, f->dport, f->proto, true);
	struct sm_conn *c;
	bool syn;

	if (sp < 0)
		return CTL_INT_NO_SERVICE;
	c = conn_lookup(sm, f);
	if (c) {
		// A retransmitted SYN or any later packet of a known connection,
		// on a deleted port too: it keeps working until it ends.
		c->last_ms = now_ms;
		*target = c->target;
		return CTL_INT_KNOWN;
	}
	// A new connection: only a port distributed now takes it.
	sp = sp_lookup(sm, f->dst, f->dport, f->proto, false);
	if (sp < 0)
		return CTL_INT_NO_SERVICE;
	// UDP has no SYN: its first datagram places the flow.
	syn = f->proto != 6 || (tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN;
	if (!syn)
		return CTL_INT_RESET;
	*target = ctl_sm_place(sm, (unsigned)sp, f);
	if (*target == FP_TARGET_NONE)
		return CTL_INT_NO_TARGET;
	if (!conn_insert(sm, f, (uint32_t)sp, *target, fa_addr, now_ms))
		return CTL_INT_FULL;
	return CTL_INT_NEW;
}

enum ctl_interest ctl_sm_interest(struct ctl_sm *sm, const struct fp_flow *f, uint8_t tcp_flags,
				  uint32_t fa_addr, uint64_t now_ms, uint32_t *target)
{
	enum ctl_interest v = interest_verdict(sm, f, tcp_flags, fa_addr, now_ms, target);

	sm->k.interest[v]++;
	return v;
}

void ctl_sm_conn_new(struct ctl_sm *sm, const struct fp_flow *f, uint32_t target, uint64_t now_ms)
{
	// A worker may still place on a port deleted since the last publish:
	// the connection exists, so it is recorded.
	int sp = sp_lookup(sm, f->dst, f->dport, f->proto, true);

	sm->k.worker_conns++;
	if (sp < 0 || target >= sm->c->n_targets)
		return;
	conn_insert(sm, f, (uint32_t)sp, target, 0, now_ms);
}

bool ctl_sm_conn_end(struct ctl_sm *sm, uint32_t target, const struct fp_flow *f)
{
	struct sm_conn *c = conn_lookup(sm, f);

	// Only the owner's agent may end a connection: a stale report from a
	// target that lost the flow must not cut another target's connection.
	if (!c || c->target != target) {
		sm->k.conn_end_unknown++;
		return false;
	}
	conn_forget(sm, c);
	sm->k.conn_ends++;
	return true;
}

unsigned ctl_sm_deletes_take(struct ctl_sm *sm, struct fp_flow *out, uint32_t *targets,
			     unsigned max)
{
	unsigned n = 0;

	while (n < max && sm->delq_head != sm->delq_tail) {
		uint32_t i = sm->delq_head++ & (DELETE_QUEUE - 1);

		targets[n] = sm->delq_target[i];
		out[n++] = sm->delq[i];
	}
	return n;
}

/* ---- agents -------------------------------------------------------------------------------------- */

int ctl_sm_agent_register(struct ctl_sm *sm, const char *name, uint32_t *target)
{
	for (unsigned t = 0; t < sm->c->n_targets; t++) {
		if (strcmp(sm->c->targets[t].name, name) != 0)
			continue;
		if (sm->targets[t].agent_live)
			return CASA_AGENT_ST_DUPLICATE;
		*target = t;
		sm->targets[t].agent_live = true;
		sm->targets[t].ever_registered = true;
		sm->targets[t].lost_ms = 0;
		if (sm->targets[t].down) {
			sm->targets[t].down = false;
			membership_changed(sm);
		}
		return CASA_AGENT_ST_OK;
	}
	return CASA_AGENT_ST_UNKNOWN_TARGET;
}

bool ctl_sm_target_up(const struct ctl_sm *sm, uint32_t target)
{
	return target < sm->c->n_targets && target_healthy(sm, target);
}

void ctl_sm_agent_ready(struct ctl_sm *sm, uint32_t target, uint32_t vip, uint16_t port,
			uint8_t proto, uint32_t rdy)
{
	int sp = ctl_sm_sp_find(sm, vip, port, proto);
	int k;

	if (sp < 0 || target >= sm->c->n_targets)
		return;
	k = service_k(sp_service(sm, (unsigned)sp), target);
	if (k < 0)
		return;
	struct sm_dpt *d = &sm->sps[sp].dpt[k];
	bool changed = (d->rdy > 0) != (rdy > 0);

	d->rdy = rdy;
	if (changed)
		membership_changed(sm);
}

void ctl_sm_agent_load(struct ctl_sm *sm, uint32_t target, uint8_t capacity, uint16_t qos)
{
	if (target >= sm->c->n_targets)
		return;
	sm->targets[target].capacity = capacity > 64 ? 64 : capacity;
	sm->targets[target].qos = qos > CASA_AGENT_QOS_ONE ? CASA_AGENT_QOS_ONE : qos;
}

void ctl_sm_agent_lost(struct ctl_sm *sm, uint32_t target, uint64_t now_ms)
{
	if (target >= sm->c->n_targets || !sm->targets[target].agent_live)
		return;
	sm->targets[target].agent_live = false;
	sm->targets[target].resync_open = false;
	sm->targets[target].lost_ms = now_ms ? now_ms : 1;
}

/* Target down (design.md 6: "a target host dies: its connections are reset
 * fast, new ones go elsewhere"): drop its Rdy and its connections. */
static void target_down(struct ctl_sm *sm, uint32_t t)
{
	sm->targets[t].down = true;
	sm->targets[t].lost_ms = 0;
	sm->k.targets_down++;
	for (unsigned sp = 0; sp < sm->n_sps; sp++) {
		int k = service_k(sp_service(sm, sp), t);

		if (k >= 0)
			sm->sps[sp].dpt[k].rdy = 0;
	}
	for (uint32_t i = 0; i < sm->capacity; i++)
		if (sm->conns[i].used && sm->conns[i].target == t)
			conn_forget(sm, &sm->conns[i]);
	membership_changed(sm);
}

void ctl_sm_resync_begin(struct ctl_sm *sm, uint32_t target, uint32_t resync_id, uint64_t now_ms)
{
	if (target >= sm->c->n_targets)
		return;
	sm->targets[target].resync_begin_ms = now_ms;
	sm->targets[target].resync_id = resync_id;
	sm->targets[target].resync_open = true;
	sm->targets[target].resync_gen++;
}

void ctl_sm_resync_conn(struct ctl_sm *sm, uint32_t target, const struct fp_flow *f,
			uint64_t now_ms)
{
	int sp = sp_lookup(sm, f->dst, f->dport, f->proto, true);
	struct sm_conn *c;

	if (target >= sm->c->n_targets || !sm->targets[target].resync_open || sp < 0)
		return;
	c = conn_lookup(sm, f);
	if (!c) {
		c = conn_insert(sm, f, (uint32_t)sp, target, 0, now_ms);
		if (!c)
			return;
		sm->k.resync_added++;
	} else if (c->target != target) {
		// The agent holds the socket: it is the authority on where the
		// connection lives (design.md 4: VCRT rebuilt from agents).
		conn_insert(sm, f, (uint32_t)sp, target, 0, now_ms);
	}
	c->gen = sm->targets[target].resync_gen;
}

void ctl_sm_resync_end(struct ctl_sm *sm, uint32_t target, uint32_t resync_id)
{
	struct sm_target *st;

	if (target >= sm->c->n_targets)
		return;
	st = &sm->targets[target];
	if (!st->resync_open || st->resync_id != resync_id)
		return;
	st->resync_open = false;
	for (uint32_t i = 0; i < sm->capacity; i++) {
		struct sm_conn *c = &sm->conns[i];

		// Agents list TCP connections only: UDP flows end by idle time.
		if (c->used && c->target == target && c->flow.proto == IPPROTO_TCP &&
		    c->gen != st->resync_gen &&
		    c->created_ms + RESYNC_GRACE_MS <= st->resync_begin_ms) {
			conn_forget(sm, c);
			sm->k.resync_removed++;
		}
	}
}

unsigned ctl_sm_target_services(const struct ctl_sm *sm, uint32_t target, struct fp_flow *out,
				unsigned max)
{
	unsigned n = 0;

	for (unsigned sp = 0; sp < sm->n_sps && n < max; sp++) {
		const struct ctl_service *s = sp_service(sm, sp);
		struct fp_flow f;
		bool listed = false;

		// A draining port stays listed while it has connections: the
		// agent keeps its VIP, reports those connections' ends and
		// lists them in a resync, which would otherwise drop them.
		if (service_k(s, target) < 0 || (sm->sps[sp].withdrawn && sm->sps[sp].conns == 0))
			continue;
		f = (struct fp_flow){ .dst = s->vip, .dport = sm->sps[sp].port, .proto = s->proto };
		// Once, when the port was deleted and added again.
		for (unsigned i = 0; i < n && !listed; i++)
			listed = out[i].dst == f.dst && out[i].dport == f.dport &&
				 out[i].proto == f.proto;
		if (!listed)
			out[n++] = f;
	}
	return n;
}

/* ---- timers ------------------------------------------------------------------------------------------ */

void ctl_sm_tick(struct ctl_sm *sm, uint64_t now_ms)
{
	uint64_t timeout_ms = (uint64_t)sm->c->agents.timeout_s * 1000;

	for (unsigned t = 0; t < sm->c->n_targets; t++) {
		struct sm_target *st = &sm->targets[t];

		if (!st->agent_live && st->lost_ms && now_ms - st->lost_ms >= timeout_ms)
			target_down(sm, t);
	}
	if (now_ms >= sm->next_refresh_ms) {
		weights_refresh(sm);
		sm->next_refresh_ms = now_ms + (uint64_t)sm->c->sm.weight_refresh_s * 1000;
	}
	// Least-connections tables plan LC_BATCH placements ahead: re-plan when
	// half are used, at most ten times a second.
	if (now_ms - sm->last_lc_publish_ms >= 100) {
		for (unsigned sp = 0; sp < sm->n_sps; sp++) {
			if (sp_service(sm, sp)->method == CTL_METHOD_LEASTCONN &&
			    sm->sps[sp].placed_since_publish >= LC_BATCH / 2) {
				sm->dirty = true;
				sm->last_lc_publish_ms = now_ms;
			}
		}
	}
}

/* ---- workers' tables ------------------------------------------------------------------------------ */

bool ctl_sm_tables_dirty(const struct ctl_sm *sm)
{
	return sm->dirty;
}

/*
 * Least connections for the workers: plan the next LC_BATCH placements by
 * water-filling, so that after them each candidate's active count is as
 * close as possible to its weight share. Returns the table length.
 */
static uint32_t lc_table(struct ctl_sm *sm, unsigned sp, uint32_t *ks, uint32_t *w, unsigned n,
			 uint32_t *out)
{
	const struct sm_dpt *dpt = sm->sps[sp].dpt;
	uint64_t total = LC_BATCH, wsum = 0;
	uint32_t deficit[FP_TARGETS_MAX], idx[LC_BATCH * 2];
	bool any = false;

	for (unsigned i = 0; i < n; i++) {
		total += dpt[ks[i]].active;
		wsum += w[i];
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t share = wsum ? total * w[i] / wsum : 0;

		deficit[i] = share > dpt[ks[i]].active ? (uint32_t)(share - dpt[ks[i]].active) : 0;
		any |= deficit[i] > 0;
	}
	if (!any)
		return cycle_build(sm, ks, w, n, false, out, SEQ_MAX);
	uint32_t len = ctl_select_swrr(deficit, n, idx, LC_BATCH * 2);

	for (uint32_t i = 0; i < len; i++)
		out[i] = ks[idx[i]];
	return len;
}

/* The target-id table of selector si for the workers; returns its length
 * and the mode to walk it with. */
static uint32_t worker_table(struct ctl_sm *sm, unsigned sp, unsigned si, uint32_t *out,
			     uint8_t *mode)
{
	const struct ctl_service *s = sp_service(sm, sp);
	uint32_t ks[FP_TARGETS_MAX], w[FP_TARGETS_MAX], len = 0;
	bool uniform;
	unsigned n = candidates(sm, sp, si, ks, w, &uniform);

	*mode = FP_SEL_SEQUENCE;
	if (n == 0)
		return 0;
	if (uniform) {
		*mode = FP_SEL_HASH;
		for (unsigned i = 0; i < n; i++)
			out[i] = s->targets[ks[i]];
		return n;
	}
	switch (s->method) {
	case CTL_METHOD_HASH:
	case CTL_METHOD_RANDOM:
		*mode = FP_SEL_HASH;
		if (slots_build(sm, sp, si) != 0)
			return 0;
		for (uint32_t i = 0; i < CTL_HASH_SLOTS; i++)
			out[i] = s->targets[sm->sps[sp].sel[si].slots[i]];
		return CTL_HASH_SLOTS;
	case CTL_METHOD_LEASTCONN:
		len = lc_table(sm, sp, ks, w, n, out);
		break;
	default:
		// Several shuffled cycles, so each worker's walk has no fixed
		// pairing pattern either.
		while (len < WORKER_SEQ_MIN) {
			uint32_t c = cycle_build(sm, ks, w, n, s->method == CTL_METHOD_RR,
						 out + len, FP_SEL_MAX - len);
			if (c == 0 || len + c > FP_SEL_MAX / 2)
				break;
			len += c;
		}
		break;
	}
	for (uint32_t i = 0; i < len; i++)
		out[i] = s->targets[out[i]];
	return len;
}

static int sp_tables(struct ctl_sm *sm, unsigned sp, struct fp_service_desc *sd)
{
	const struct ctl_service *s = sp_service(sm, sp);
	struct fp_policy_desc *pols = NULL;
	uint32_t *sel = malloc(FP_SEL_MAX * sizeof(*sel));
	uint8_t mode;

	if (!sel)
		return -ENOMEM;
	sd->sel = sel;
	sd->n_sel = worker_table(sm, sp, 0, sel, &mode);
	sd->sel_mode = mode;
	if (s->n_policies == 0)
		return 0;
	pols = calloc(s->n_policies, sizeof(*pols));
	if (!pols)
		return -ENOMEM;
	sd->policies = pols;
	sd->n_policies = s->n_policies;
	for (unsigned i = 0; i < s->n_policies; i++) {
		uint32_t *psel = malloc(FP_SEL_MAX * sizeof(*psel));

		if (!psel)
			return -ENOMEM;
		pols[i].src = s->policies[i].src;
		pols[i].mask = s->policies[i].mask;
		pols[i].sel = psel;
		// A policy's table is walked with the service's mode; a policy
		// whose targets are all down yields an empty table: reset.
		pols[i].n_sel = worker_table(sm, sp, i + 1, psel, &mode);
	}
	return 0;
}

int ctl_sm_tables(struct ctl_sm *sm, struct fp_tables_desc *d)
{
	const struct ctl_conf *c = sm->c;
	struct fp_target_desc *targets = calloc(c->n_targets ? c->n_targets : 1, sizeof(*targets));
	struct fp_service_desc *svcs = calloc(sm->n_sps ? sm->n_sps : 1, sizeof(*svcs));
	uint32_t *vips = calloc(c->n_services ? c->n_services : 1, sizeof(*vips));
	int rc = 0;

	memset(d, 0, sizeof(*d));
	d->targets = targets;
	d->services = svcs;
	d->vips = vips;
	if (!targets || !svcs || !vips) {
		ctl_tables_free(d);
		return -ENOMEM;
	}
	for (unsigned t = 0; t < c->n_targets; t++)
		targets[t] = c->targets[t].fp;
	d->n_targets = c->n_targets;
	for (unsigned i = 0; i < c->n_services; i++)
		vips[i] = c->services[i].vip;
	d->n_vips = c->n_services;
	for (unsigned sp = 0; sp < sm->n_sps && rc == 0; sp++) {
		const struct ctl_service *s = sp_service(sm, sp);
		unsigned j = d->n_services;

		// A withdrawn port is published, with an empty selection, while its
		// connections drain: their packets without an affinity still reach
		// the SM. The service id stays the SM's sp.
		if (sm->sps[sp].withdrawn && sm->sps[sp].conns == 0)
			continue;
		svcs[j] = (struct fp_service_desc){ .id = sp,
						    .vip = s->vip,
						    .port = sm->sps[sp].port,
						    .proto = s->proto,
						    .idle_s = s->idle_s };
		d->n_services = j + 1;
		rc = sp_tables(sm, sp, &svcs[j]);
		sm->sps[sp].placed_since_publish = 0;
	}
	if (rc != 0) {
		ctl_tables_free(d);
		return rc;
	}
	sm->dirty = false;
	sm->k.publishes++;
	return 0;
}

/* ---- displays ------------------------------------------------------------------------------------------- */

unsigned ctl_sm_dpt_count(const struct ctl_sm *sm)
{
	unsigned n = 0;

	for (unsigned sp = 0; sp < sm->n_sps; sp++)
		if (!sm->sps[sp].withdrawn)
			n += sp_service(sm, sp)->n_targets;
	return n;
}

unsigned ctl_sm_dpt_rows(struct ctl_sm *sm, struct ctl_dpt_row *out, unsigned max)
{
	unsigned n = 0;

	// The DPT shows what is distributed now: a deleted port leaves it at
	// once (seed 5.6.4, Figure 5-55), its connections stay in the VCRT.
	for (unsigned sp = 0; sp < sm->n_sps; sp++) {
		const struct ctl_service *s = sp_service(sm, sp);

		if (sm->sps[sp].withdrawn)
			continue;
		for (unsigned k = 0; k < s->n_targets && n < max; k++) {
			uint32_t t = s->targets[k];
			const struct sm_dpt *d = &sm->sps[sp].dpt[k];

			out[n++] = (struct ctl_dpt_row){
				.sp = sp,
				.service = sm->sps[sp].service,
				.target = t,
				.vip = s->vip,
				.port = sm->sps[sp].port,
				.proto = s->proto,
				.rdy = d->rdy,
				.total_conn = d->total,
				.active = d->active,
				.capacity = sm->targets[t].cap_applied,
				.qos = sm->targets[t].qos_applied / (double)CASA_AGENT_QOS_ONE,
				.weight = sm->targets[t].weight,
				.effective = d->eff,
				.healthy = target_healthy(sm, t),
				.quiesced = sm->targets[t].quiesced,
			};
		}
	}
	return n;
}

const struct ctl_sm_counters *ctl_sm_counters(const struct ctl_sm *sm)
{
	return &sm->k;
}

/* ---- service ports ------------------------------------------------------------------------------------- */

int ctl_sm_sp_find(const struct ctl_sm *sm, uint32_t vip, uint16_t port, uint8_t proto)
{
	return sp_lookup(sm, vip, port, proto, false);
}

unsigned ctl_sm_sp_count(const struct ctl_sm *sm)
{
	return sm->n_sps;
}

int ctl_sm_sp_get(const struct ctl_sm *sm, unsigned sp, uint32_t *vip, uint16_t *port,
		  uint8_t *proto, unsigned *service)
{
	if (sp >= sm->n_sps)
		return -ENOENT;
	*vip = sp_service(sm, sp)->vip;
	*port = sm->sps[sp].port;
	*proto = sp_service(sm, sp)->proto;
	if (service)
		*service = sm->sps[sp].service;
	return 0;
}

static int sp_init(struct ctl_sm *sm, struct sm_sp *sp, unsigned service, uint16_t port);

/* ---- live changes (the console) ------------------------------------------------------------- */

static int sp_of_service(const struct ctl_sm *sm, unsigned service, uint16_t port, bool withdrawn)
{
	for (unsigned sp = 0; sp < sm->n_sps; sp++)
		if (sm->sps[sp].service == service && sm->sps[sp].port == port &&
		    sm->sps[sp].withdrawn == withdrawn)
			return (int)sp;
	return -1;
}

unsigned ctl_sm_service_ports(const struct ctl_sm *sm, unsigned service, uint16_t *ports,
			      unsigned max)
{
	unsigned n = 0;

	for (unsigned sp = 0; sp < sm->n_sps && n < max; sp++)
		if (sm->sps[sp].service == service && !sm->sps[sp].withdrawn)
			ports[n++] = sm->sps[sp].port;
	return n;
}

/* The active set changed: CASA re-advertises, agents get SERVICES again,
 * the workers get new tables, weights (and placement state) are redone. */
static void sps_changed(struct ctl_sm *sm)
{
	sm->sp_gen++;
	weights_apply(sm);
}

/* A slot for a new service port of service: a withdrawn one of the same
 * service that has drained (its arrays fit), else a new one at the end. */
static struct sm_sp *sp_slot(struct ctl_sm *sm, unsigned service)
{
	struct sm_sp *p;

	for (unsigned sp = 0; sp < sm->n_sps; sp++) {
		p = &sm->sps[sp];
		if (p->service != service || !p->withdrawn || p->conns != 0)
			continue;
		for (unsigned i = 0; i < p->n_sel; i++)
			free(p->sel[i].slots);
		memset(p->sel, 0, p->n_sel * sizeof(*p->sel));
		memset(p->dpt, 0, sp_service(sm, sp)->n_targets * sizeof(*p->dpt));
		p->withdrawn = false;
		p->placed_since_publish = 0;
		return p;
	}
	if (sm->n_sps == sm->sps_cap) {
		unsigned cap = sm->sps_cap * 2;

		p = realloc(sm->sps, cap * sizeof(*sm->sps));
		if (!p)
			return NULL;
		sm->sps = p;
		sm->sps_cap = cap;
	}
	p = &sm->sps[sm->n_sps];
	memset(p, 0, sizeof(*p));
	return p;
}

static unsigned active_sps(const struct ctl_sm *sm, int service)
{
	unsigned n = 0;

	for (unsigned sp = 0; sp < sm->n_sps; sp++)
		if (!sm->sps[sp].withdrawn &&
		    (service < 0 || sm->sps[sp].service == (unsigned)service))
			n++;
	return n;
}

/* Service ports in the published tables: active, or withdrawn and draining. */
static unsigned published_sps(const struct ctl_sm *sm)
{
	unsigned n = 0;

	for (unsigned sp = 0; sp < sm->n_sps; sp++)
		if (!sm->sps[sp].withdrawn || sm->sps[sp].conns > 0)
			n++;
	return n;
}

int ctl_sm_port_add(struct ctl_sm *sm, unsigned service, uint16_t port)
{
	const struct ctl_service *s;
	struct sm_sp *p;
	bool appended;
	int sp;

	if (service >= sm->c->n_services)
		return -ENOENT;
	s = &sm->c->services[service];
	if (sp_of_service(sm, service, port, false) >= 0)
		return -EEXIST;
	// Another service distributes VIP:port, or its deleted port still
	// drains (published until its connections end: the tables cannot hold
	// the same VIP:port twice).
	sp = sp_lookup(sm, s->vip, port, s->proto, true);
	if (sp >= 0 && sm->sps[sp].port == port && sm->sps[sp].service != service) {
		if (!sm->sps[sp].withdrawn)
			return -EADDRINUSE;
		if (sm->sps[sp].conns > 0)
			return -EBUSY;
	}
	// A port deleted and added back while draining is the same service
	// port again: its connections and counters carry on, and while it has
	// connections it is in the tables already (no room needed there).
	sp = sp_of_service(sm, service, port, true);
	if (active_sps(sm, (int)service) >= CTL_PORTS_PER_SERVICE ||
	    (!(sp >= 0 && sm->sps[sp].conns > 0) && published_sps(sm) >= FP_SERVICES_MAX))
		return -ENOSPC;
	if (sp >= 0) {
		sm->sps[sp].withdrawn = false;
		sps_changed(sm);
		return 0;
	}
	p = sp_slot(sm, service);
	if (!p)
		return -ENOMEM;
	appended = p == &sm->sps[sm->n_sps];
	if (sp_init(sm, p, service, port) != 0) {
		free(p->dpt); // only a new slot allocates
		free(p->sel);
		memset(p, 0, sizeof(*p));
		return -ENOMEM;
	}
	if (appended)
		sm->n_sps++;
	sps_changed(sm);
	return 0;
}

int ctl_sm_port_del(struct ctl_sm *sm, unsigned service, uint16_t port)
{
	const struct ctl_service *s;
	int sp;

	if (service >= sm->c->n_services)
		return -ENOENT;
	sp = sp_of_service(sm, service, port, false);
	if (sp < 0)
		return -ENOENT;
	if (active_sps(sm, (int)service) == 1)
		return -EBUSY; // a service keeps at least one port, as in the file
	s = &sm->c->services[service];
	sm->sps[sp].withdrawn = true;
	if (sm->n_withdraw < WITHDRAW_QUEUE)
		sm->withdrawq[sm->n_withdraw++] =
			(struct fp_flow){ .dst = s->vip, .dport = port, .proto = s->proto };
	else
		sm->k.withdraws_lost++; // its wildcard then lapses by TTL
	sps_changed(sm);
	return 0;
}

unsigned ctl_sm_withdrawn_take(struct ctl_sm *sm, struct fp_flow *out, unsigned max)
{
	unsigned n = sm->n_withdraw < max ? sm->n_withdraw : max;

	memcpy(out, sm->withdrawq, n * sizeof(*out));
	memmove(sm->withdrawq, sm->withdrawq + n, (sm->n_withdraw - n) * sizeof(*out));
	sm->n_withdraw -= n;
	return n;
}

uint64_t ctl_sm_sp_generation(const struct ctl_sm *sm)
{
	return sm->sp_gen;
}

bool ctl_sm_sp_active(const struct ctl_sm *sm, unsigned sp)
{
	return sp < sm->n_sps && !sm->sps[sp].withdrawn;
}

uint64_t ctl_sm_sp_conns(const struct ctl_sm *sm, unsigned sp)
{
	return sp < sm->n_sps ? sm->sps[sp].conns : 0;
}

int ctl_sm_target_quiesce(struct ctl_sm *sm, uint32_t target, bool quiesce)
{
	if (target >= sm->c->n_targets)
		return -ENOENT;
	if (sm->targets[target].quiesced != quiesce) {
		sm->targets[target].quiesced = quiesce;
		membership_changed(sm);
	}
	return 0;
}

int ctl_sm_weight_set(struct ctl_sm *sm, uint32_t target, uint32_t weight)
{
	if (target >= sm->c->n_targets)
		return -ENOENT;
	if (weight > CTL_WEIGHT_MAX)
		return -ERANGE;
	sm->targets[target].weight = weight;
	weights_apply(sm);
	return 0;
}

int ctl_sm_target_get(const struct ctl_sm *sm, uint32_t target, struct ctl_target_row *out)
{
	const struct sm_target *st;

	if (target >= sm->c->n_targets)
		return -ENOENT;
	st = &sm->targets[target];
	*out = (struct ctl_target_row){
		.weight = st->weight,
		.quiesced = st->quiesced,
		.healthy = target_healthy(sm, target),
		.agent_live = st->agent_live,
		.registered_once = st->ever_registered,
		.capacity = st->cap_applied,
		.qos = st->qos_applied / (double)CASA_AGENT_QOS_ONE,
	};
	for (unsigned sp = 0; sp < sm->n_sps; sp++) {
		int k = service_k(sp_service(sm, sp), target);

		if (k >= 0)
			out->active += sm->sps[sp].dpt[k].active;
	}
	return 0;
}

void ctl_sm_counters_clear(struct ctl_sm *sm)
{
	memset(&sm->k, 0, sizeof(sm->k));
	for (unsigned sp = 0; sp < sm->n_sps; sp++)
		for (unsigned k = 0; k < sp_service(sm, sp)->n_targets; k++)
			sm->sps[sp].dpt[k].total = 0;
}

/* ---- life cycle --------------------------------------------------------------------------------------- */

/* Fill *sp (allocated, zeroed or reused) as service's port. */
static int sp_init(struct ctl_sm *sm, struct sm_sp *sp, unsigned service, uint16_t port)
{
	const struct ctl_service *s = &sm->c->services[service];

	sp->service = service;
	sp->port = port;
	sp->n_sel = 1 + s->n_policies;
	if (!sp->dpt)
		sp->dpt = calloc(s->n_targets ? s->n_targets : 1, sizeof(*sp->dpt));
	if (!sp->sel)
		sp->sel = calloc(sp->n_sel, sizeof(*sp->sel));
	if (!sp->dpt || !sp->sel)
		return -ENOMEM;
	for (unsigned j = 0; j < s->n_policies; j++)
		sp->sel[j + 1].policy = &s->policies[j];
	// Without required agents nobody reports Rdy: a configured target
	// counts as one ready listener.
	if (!sm->c->agents.required)
		for (unsigned k = 0; k < s->n_targets; k++)
			sp->dpt[k].rdy = 1;
	return 0;
}

static int sps_create(struct ctl_sm *sm)
{
	const struct ctl_conf *c = sm->c;
	unsigned n = 0;

	for (unsigned i = 0; i < c->n_services; i++)
		n += c->services[i].n_ports;
	sm->sps = calloc(n ? n : 1, sizeof(*sm->sps));
	if (!sm->sps)
		return -ENOMEM;
	sm->sps_cap = n ? n : 1;
	for (unsigned i = 0; i < c->n_services; i++)
		for (unsigned p = 0; p < c->services[i].n_ports; p++)
			if (sp_init(sm, &sm->sps[sm->n_sps++], i, c->services[i].ports[p]) != 0)
				return -ENOMEM;
	return 0;
}

static int vcrt_create(struct ctl_sm *sm)
{
	uint32_t cap = sm->c->sm.connections ? sm->c->sm.connections : 1u << 20;

	sm->capacity = cap;
	sm->n_buckets = 1;
	while (sm->n_buckets < cap)
		sm->n_buckets <<= 1;
	sm->conns = calloc(cap, sizeof(*sm->conns));
	sm->heads = malloc((size_t)sm->n_buckets * sizeof(*sm->heads));
	sm->delq = calloc(DELETE_QUEUE, sizeof(*sm->delq));
	sm->delq_target = calloc(DELETE_QUEUE, sizeof(*sm->delq_target));
	if (!sm->conns || !sm->heads || !sm->delq || !sm->delq_target)
		return -ENOMEM;
	memset(sm->heads, 0xff, (size_t)sm->n_buckets * sizeof(*sm->heads));
	for (uint32_t i = 0; i < cap; i++)
		sm->conns[i].next = i + 1 < cap ? i + 1 : CONN_NONE;
	sm->free_head = 0;
	return 0;
}

struct ctl_sm *ctl_sm_create(const struct ctl_conf *c, uint64_t now_ms)
{
	struct ctl_sm *sm = calloc(1, sizeof(*sm));
	int rc;

	if (!sm) {
		errno = ENOMEM;
		return NULL;
	}
	sm->c = c;
	sm->rng = 0x9E3779B97F4A7C15ULL ^ now_ms ^ (uintptr_t)sm;
	sm->targets = calloc(c->n_targets ? c->n_targets : 1, sizeof(*sm->targets));
	rc = sm->targets ? sps_create(sm) : -ENOMEM;
	if (rc == 0)
		rc = vcrt_create(sm);
	if (rc != 0) {
		ctl_sm_destroy(sm);
		errno = -rc;
		return NULL;
	}
	// Until an agent reports its load, a target runs at full capacity
	// with no QoS penalty: configured weights alone decide.
	for (unsigned t = 0; t < c->n_targets; t++) {
		sm->targets[t].capacity = sm->targets[t].cap_applied = CASA_AGENT_CAPACITY_MAX;
		sm->targets[t].weight = c->targets[t].weight;
		sm->targets[t].lost_ms = 0;
		// A required agent that never registers: the target starts
		// down-pending, and is marked down after the agents timeout.
		if (c->agents.required)
			sm->targets[t].lost_ms = now_ms ? now_ms : 1;
	}
	weights_apply(sm);
	sm->next_refresh_ms = now_ms + (uint64_t)c->sm.weight_refresh_s * 1000;
	return sm;
}

void ctl_sm_destroy(struct ctl_sm *sm)
{
	if (!sm)
		return;
	for (unsigned i = 0; sm->sps && i < sm->n_sps; i++) {
		for (unsigned j = 0; sm->sps[i].sel && j < sm->sps[i].n_sel; j++)
			free(sm->sps[i].sel[j].slots);
		free(sm->sps[i].sel);
		free(sm->sps[i].dpt);
	}
	free(sm->sps);
	free(sm->targets);
	free(sm->conns);
	free(sm->heads);
	free(sm->delq);
	free(sm->delq_target);
	free(sm);
}
