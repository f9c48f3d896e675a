/*
 * fp_stub.c - a stand-in for the fast path (fastpath.h) so the control
 * room's unit tests run without DPDK (style.md "Rooms"). It keeps the
 * affinities control adds in a small array and records what control asks
 * the data path to do, for the tests to check.
 */
#include <errno.h>
#include <string.h>

#include "fp_stub.h"

struct fp_stub fp_stub;

static bool flow_eq(const struct fp_flow *a, const struct fp_flow *b)
{
	return a->src == b->src && a->dst == b->dst && a->sport == b->sport &&
	       a->dport == b->dport && a->proto == b->proto;
}

void fp_stub_reset(void)
{
	memset(&fp_stub, 0, sizeof(fp_stub));
}

int fp_init(const struct fp_conf *c, const char *argv0, char *err, size_t errlen)
{
	(void)c;
	(void)argv0;
	(void)err;
	(void)errlen;
	return 0;
}

int fp_start(void)
{
	return 0;
}

void fp_stop(void)
{
}

void fp_fini(void)
{
}

unsigned fp_worker_count(void)
{
	return 1;
}

int fp_publish(const struct fp_tables_desc *d, char *err, size_t errlen)
{
	(void)d;
	(void)err;
	(void)errlen;
	fp_stub.publishes++;
	return 0;
}

unsigned fp_reclaim(void)
{
	return 0;
}

static int aff_index(const struct fp_flow *f)
{
	for (unsigned i = 0; i < fp_stub.n_aff; i++)
		if (flow_eq(&fp_stub.aff[i].flow, f))
			return (int)i;
	return -1;
}

int fp_affinity_add(const struct fp_flow *f, uint32_t target, uint32_t ttl_s)
{
	int i = aff_index(f);

	if (i < 0) {
		if (fp_stub.n_aff >= FP_STUB_AFF)
			return -ENOSPC;
		i = (int)fp_stub.n_aff++;
	}
	fp_stub.aff[i] = (struct fp_affinity){
		.flow = *f, .target = target, .ttl_s = ttl_s, .flags = FP_AFF_F_CONTROL
	};
	fp_stub.aff_adds++;
	return 0;
}

int fp_affinity_del(const struct fp_flow *f)
{
	int i = aff_index(f);

	fp_stub.aff_dels++;
	if (i < 0)
		return -ENOENT;
	fp_stub.aff[i] = fp_stub.aff[--fp_stub.n_aff];
	return 0;
}

int fp_affinity_find(const struct fp_flow *f, struct fp_affinity *out)
{
	int i = aff_index(f);

	if (i < 0)
		return -ENOENT;
	*out = fp_stub.aff[i];
	return 0;
}

unsigned fp_affinity_walk(uint64_t *cursor, unsigned max,
			  int (*fn)(const struct fp_affinity *a, void *arg), void *arg)
{
	unsigned n = 0;

	for (; *cursor < fp_stub.n_aff && n < max; (*cursor)++, n++)
		if (fn(&fp_stub.aff[*cursor], arg))
			break;
	if (*cursor >= fp_stub.n_aff)
		*cursor = 0;
	return n;
}

unsigned fp_affinity_expire(uint64_t *cursor, unsigned buckets)
{
	(void)cursor;
	(void)buckets;
	return 0;
}

void fp_affinity_stats(struct fp_table_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->count = fp_stub.n_aff;
	s->capacity = FP_STUB_AFF;
}

unsigned fp_event_poll(struct fp_event *ev, unsigned max)
{
	(void)ev;
	(void)max;
	return 0;
}

const uint8_t *fp_event_data(const struct fp_event *ev, uint32_t *len)
{
	const struct fp_stub_frame *f = ev->pkt;

	if (!f)
		return NULL;
	*len = f->len;
	return f->bytes;
}

int fp_event_forward(struct fp_event *ev, uint32_t target)
{
	ev->pkt = NULL;
	fp_stub.forwards++;
	fp_stub.last_forward_target = target;
	return 0;
}

int fp_forward_ip(const void *ip, uint32_t len, uint32_t target)
{
	(void)ip;
	(void)len;
	fp_stub.forwards++;
	fp_stub.last_forward_target = target;
	return 0;
}

void fp_event_release(struct fp_event *ev)
{
	if (ev->pkt)
		fp_stub.releases++;
	ev->pkt = NULL;
}

int fp_tx_frame(uint16_t port, const void *frame, uint32_t len)
{
	(void)port;
	if (len > sizeof(fp_stub.tx.bytes))
		return -EMSGSIZE;
	memcpy(fp_stub.tx.bytes, frame, len);
	fp_stub.tx.len = len;
	fp_stub.tx_frames++;
	return 0;
}

int fp_worker_stats_read(unsigned w, struct fp_worker_stats *out)
{
	(void)w;
	memset(out, 0, sizeof(*out));
	return 0;
}

unsigned fp_verdict_count(void)
{
	return 1;
}

const char *fp_verdict_label(unsigned v)
{
	return v == 0 ? "none" : NULL;
}

int fp_port_mac(uint16_t p, uint8_t mac[6])
{
	static const uint8_t m[6] = { 0x02, 0xfa, 0, 0, 0, 0x01 };

	(void)p;
	memcpy(mac, m, 6);
	return 0;
}
