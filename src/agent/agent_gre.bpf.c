/*
 * agent_gre.bpf.c - GRE decapsulation at tc ingress on a target host.
 *
 * casalb forwards a client's packet to a target inside GRE (fp_gre_write,
 * src/fastpath/fp_encap_dp.c): outer Ethernet, IPv4 protocol 47 to the
 * target's tunnel endpoint, GRE version 0 with protocol 0x0800 (RFC 2784)
 * and optional key and sequence number (RFC 2890), then the client's IPv4
 * packet to a VIP that the target holds on lo. Kernels without the GRE
 * module cannot take such packets apart, so this program does: when the
 * outer destination is a configured endpoint and the inner destination a
 * configured VIP, it removes the outer IPv4 and GRE headers in place and
 * the inner packet continues up the stack behind the same Ethernet header,
 * as if it had arrived plain. Anything else goes on untouched, to the
 * next tc filter or the stack; GRE to our endpoint that we cannot accept is
 * dropped. Every packet is counted once, under the reasons of agent_gre.h
 * (shared with the loader, agent_gre.c). docs/agent-gre.md has the rules.
 *
 * The GRE checksum (C bit) is accepted and skipped, not verified: the
 * stack verifies the inner packet's own IP, TCP and UDP checksums (after
 * bpf_skb_adjust_room it trusts no offload for them), so a corrupted
 * payload is still caught, and verifying would mean a loop over the whole
 * packet here.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "agent_gre.h"

/* The first 16 bits of a GRE header (RFC 2784 section 2, RFC 2890). */
#define GRE_C 0x8000       /* checksum and reserved1 present */
#define GRE_R 0x4000       /* RFC 1701 routing present */
#define GRE_K 0x2000       /* RFC 2890 key present */
#define GRE_S 0x1000       /* RFC 2890 sequence number present */
#define GRE_VERSION 0x0007 /* 0 here; 1 is PPTP's enhanced GRE */
/* Bits 1 to 5 less K and S: routing, strict source route and the first
 * recursion bit of RFC 1701. RFC 2784 section 2.3: discard the packet. */
#define GRE_DISCARD (GRE_R | 0x0c00)

/* A bpf_skb_adjust_room flag newer than Debian 12's UAPI headers (Linux
 * 6.1), as Linux 6.3's include/uapi/linux/bpf.h defines it: the header
 * after Ethernet is IPv4 once the outer headers are gone. Older kernels
 * answer -EINVAL (unknown flag); decap() then goes without. */
#define ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define EINVAL 22

/* RFC 791 flags and fragment offset (the kernel's net/ip.h, not UAPI). */
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

/* A step's "go on"; any other value is the counter that ends the packet. */
#define NEXT (-1)

/* Bytes the program reads: Ethernet with one tag, IPv4 with options, GRE
 * with checksum, key and sequence number, the inner IPv4 header. */
#define HDRS_MAX (ETH_HLEN + 4 + 60 + 16 + 20)

struct vlan_tag {
	__be16 tci;
	__be16 proto; /* the ethertype after the tag */
};

struct gre_base {
	__be16 flags; /* GRE_* */
	__be16 proto;
};

/* What the steps learn about a packet, for the later steps. */
struct pkt {
	void *data, *data_end;
	__u32 len;           /* skb->len: the whole frame */
	__u32 ip_off;        /* of the outer IPv4 header, from the frame's start */
	struct iphdr *ip;    /* outer */
	struct iphdr *inner; /* after the GRE header */
	__u32 ip_len;        /* outer header bytes, ihl x 4 */
	__u32 tot_len;       /* outer total length */
	__u32 gre_len;       /* GRE header with its options */
	bool vlan_in_data;   /* a tag still in the frame (not in skb->vlan_tci) */
	__be16 vlan_proto;   /* that tag's TPID and TCI */
	__u16 vlan_tci;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct agent_gre_config);
} AGENT_GRE_MAP_CONFIG SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AGENT_GRE_MAX_ENDPOINTS);
	__type(key, __u32);
	__type(value, __u8);
} AGENT_GRE_MAP_ENDPOINTS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, AGENT_GRE_MAX_VIPS);
	__type(key, __u32);
	__type(value, __u8);
} AGENT_GRE_MAP_VIPS SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, AGENT_GRE_N_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} AGENT_GRE_MAP_COUNTERS SEC(".maps");

/* Make the headers the program reads linear (a driver may leave only part
 * of them in the head), then note where the data is. */
static __always_inline void pull_headers(struct __sk_buff *skb, struct pkt *p)
{
	__u32 want = skb->len < HDRS_MAX ? skb->len : HDRS_MAX;

	if ((void *)(long)skb->data + want > (void *)(long)skb->data_end)
		bpf_skb_pull_data(skb, want); // on failure the checks below see a short frame
	p->data = (void *)(long)skb->data;
	p->data_end = (void *)(long)skb->data_end;
	p->len = skb->len;
}

/* Ethernet, and one 802.1Q/802.1ad tag if the frame still carries it: the
 * kernel normally takes the first tag off before tc (skb->vlan_tci), so
 * a tag in the data means a second one, or a frame from
 * BPF_PROG_TEST_RUN. */
static __always_inline int parse_eth(struct __sk_buff *skb, struct pkt *p)
{
	struct ethhdr *eth = p->data;
	struct vlan_tag *tag;
	__be16 proto;

	if ((void *)(eth + 1) > p->data_end)
		return AGENT_GRE_PASS_NOT_IPV4;
	proto = eth->h_proto;
	p->ip = (void *)(eth + 1);
	p->ip_off = sizeof(*eth);
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		tag = (void *)(eth + 1);
		if ((void *)(tag + 1) > p->data_end)
			return AGENT_GRE_PASS_NOT_IPV4;
		if (skb->vlan_present)
			return AGENT_GRE_PASS_VLAN_STACKED;
		p->vlan_in_data = true;
		p->vlan_proto = proto;
		p->vlan_tci = bpf_ntohs(tag->tci);
		proto = tag->proto;
		p->ip = (void *)(tag + 1);
		p->ip_off += sizeof(*tag);
	}
	return proto == bpf_htons(ETH_P_IP) ? NEXT : AGENT_GRE_PASS_NOT_IPV4;
}

/* The outer IPv4 header: whole, version 4, ihl and total length that fit
 * the frame; then protocol GRE. What is wrong here is the stack's to
 * count and drop, so it goes on. */
static __always_inline int parse_ipv4(struct pkt *p)
{
	struct iphdr *ip = p->ip;

	if ((void *)(ip + 1) > p->data_end || ip->version != 4 || ip->ihl < 5)
		return AGENT_GRE_PASS_IP_BAD;
	p->ip_len = ip->ihl * 4;
	p->tot_len = bpf_ntohs(ip->tot_len);
	if (p->tot_len < p->ip_len || p->ip_off + p->tot_len > p->len ||
	    (void *)ip + p->ip_len > p->data_end)
		return AGENT_GRE_PASS_IP_BAD;
	return ip->protocol == IPPROTO_GRE ? NEXT : AGENT_GRE_PASS_NOT_GRE;
}

/* The one's complement sum of the outer header (RFC 791, RFC 1071) is
 * all ones when its checksum is right. */
static __always_inline bool ip_csum_ok(const struct pkt *p)
{
	const __u32 *w = (const void *)p->ip;
	__u64 sum = 0;

	// ihl words of 4 bytes, at most 15.
	for (__u32 i = 0; i < 15; i++) {
		if (i * 4 >= p->ip_len)
			break;
		if ((void *)(w + i + 1) > p->data_end)
			return false;
		sum += w[i];
	}
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

/* The outer destination is one of our tunnel endpoints; from here on the
 * packet is meant for this program. Fragments are the stack's (which,
 * without a GRE module, has no use for them either). */
static __always_inline int check_endpoint(struct pkt *p)
{
	__u32 dst = p->ip->daddr;

	if (!bpf_map_lookup_elem(&AGENT_GRE_MAP_ENDPOINTS, &dst))
		return AGENT_GRE_PASS_NOT_ENDPOINT;
	if (p->ip->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return AGENT_GRE_PASS_FRAGMENT;
	return ip_csum_ok(p) ? NEXT : AGENT_GRE_PASS_IP_CSUM;
}

/* The GRE header: version 0 carrying IPv4, else someone else's GRE; then
 * the flags RFC 2784 says to discard on, the options inside the packet,
 * and the key when one is configured. */
static __always_inline int parse_gre(struct pkt *p, const struct agent_gre_config *cfg)
{
	struct gre_base *g = (void *)p->ip + p->ip_len;
	__be32 *opt = (void *)(g + 1);
	__be32 key = 0;
	bool has_key = false;
	__u16 flags;

	if ((void *)(g + 1) > p->data_end || p->ip_len + sizeof(*g) > p->tot_len)
		return AGENT_GRE_DROP_GRE_BAD;
	flags = bpf_ntohs(g->flags);
	if ((flags & GRE_VERSION) || g->proto != bpf_htons(ETH_P_IP))
		return AGENT_GRE_PASS_GRE_OTHER;
	if (flags & GRE_DISCARD)
		return AGENT_GRE_DROP_GRE_BAD;
	// RFC 2890 order: checksum and reserved1, key, sequence number.
	p->gre_len = sizeof(*g);
	if (flags & GRE_C) {
		opt++;
		p->gre_len += 4;
	}
	if (flags & GRE_K) {
		if ((void *)(opt + 1) > p->data_end)
			return AGENT_GRE_DROP_GRE_BAD;
		key = *opt++;
		has_key = true;
		p->gre_len += 4;
	}
	if (flags & GRE_S) {
		opt++;
		p->gre_len += 4;
	}
	if ((void *)opt > p->data_end || p->ip_len + p->gre_len > p->tot_len)
		return AGENT_GRE_DROP_GRE_BAD;
	if ((cfg->flags & AGENT_GRE_CFG_KEY) && (!has_key || key != cfg->key_be))
		return AGENT_GRE_DROP_KEY;
	p->inner = (void *)opt;
	return NEXT;
}

/* The inner IPv4 header: whole and consistent with the outer packet (GRE
 * said 0x0800, so anything else is broken), then its destination a VIP. */
static __always_inline int parse_inner(struct pkt *p)
{
	struct iphdr *in = p->inner;
	__u32 room = p->tot_len - p->ip_len - p->gre_len;
	__u32 vip;

	if ((void *)(in + 1) > p->data_end || room < sizeof(*in))
		return AGENT_GRE_DROP_INNER_BAD;
	if (in->version != 4 || in->ihl < 5 || bpf_ntohs(in->tot_len) < in->ihl * 4 ||
	    bpf_ntohs(in->tot_len) > room)
		return AGENT_GRE_DROP_INNER_BAD;
	vip = in->daddr;
	return bpf_map_lookup_elem(&AGENT_GRE_MAP_VIPS, &vip) ? NEXT : AGENT_GRE_PASS_NOT_VIP;
}

/* The configuration, read only for packets that got as far as GRE: the
 * pass path of ordinary traffic makes no map lookup but its counter's. */
static __always_inline int parse_gre_configured(struct pkt *p)
{
	struct agent_gre_config none = { 0 }, *cfg;
	__u32 zero = 0;

	cfg = bpf_map_lookup_elem(&AGENT_GRE_MAP_CONFIG, &zero);
	if (!cfg)
		cfg = &none; // an array always has its entry; this is for the verifier
	return parse_gre(p, cfg);
}

/* Frames that cannot carry IPv4, told by the protocol the kernel already
 * found (ARP, IPv6, ...), leave before anything is pulled or read. */
static __always_inline bool maybe_ipv4(const struct __sk_buff *skb)
{
	return skb->protocol == bpf_htons(ETH_P_IP) || skb->protocol == bpf_htons(ETH_P_8021Q) ||
	       skb->protocol == bpf_htons(ETH_P_8021AD);
}

/* The read-only steps in order: the first that does not say NEXT names
 * the packet's counter. Only decap(), after them, changes the packet. */
static __always_inline int classify(struct __sk_buff *skb, struct pkt *p)
{
	int c;

	if (!maybe_ipv4(skb))
		return AGENT_GRE_PASS_NOT_IPV4;
	pull_headers(skb, p);
	c = parse_eth(skb, p);
	if (c == NEXT)
		c = parse_ipv4(p);
	if (c == NEXT)
		c = check_endpoint(p);
	if (c == NEXT)
		c = parse_gre_configured(p);
	if (c == NEXT)
		c = parse_inner(p);
	return c;
}

/* Remove the outer IPv4 and GRE headers behind the Ethernet header
 * (BPF_ADJ_ROOM_MAC). A tag still in the frame first moves out of the way
 * into skb->vlan_tci, where the kernel keeps the tags it takes off
 * itself, so the Ethernet header is again followed by IPv4. FIXED_GSO
 * keeps an aggregated packet's segment size: the inner segments are as
 * big as before. adjust_room also makes the stack verify the inner
 * checksums. */
static __always_inline int decap(struct __sk_buff *skb, const struct pkt *p)
{
	__s32 diff = -(__s32)(p->ip_len + p->gre_len);
	long rc;

	if (p->vlan_in_data &&
	    (bpf_skb_vlan_pop(skb) || bpf_skb_vlan_push(skb, p->vlan_proto, p->vlan_tci)))
		return AGENT_GRE_DROP_DECAP_ERR;
	rc = bpf_skb_adjust_room(skb, diff, BPF_ADJ_ROOM_MAC,
				 BPF_F_ADJ_ROOM_FIXED_GSO | ADJ_ROOM_DECAP_L3_IPV4);
	if (rc == -EINVAL) // before Linux 6.3
		rc = bpf_skb_adjust_room(skb, diff, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO);
	return rc ? AGENT_GRE_DROP_DECAP_ERR : AGENT_GRE_DECAP;
}

static __always_inline void count(int c)
{
	__u32 k = c;
	__u64 *n = bpf_map_lookup_elem(&AGENT_GRE_MAP_COUNTERS, &k);

	if (n)
		*n += 1; // per-CPU: no other writer
}

static __always_inline int action(int c)
{
	switch (c) {
#define ACTION_(id, name, act) \
	case id:               \
		return act;
		AGENT_GRE_COUNTERS(ACTION_)
#undef ACTION_
	}
	return TC_ACT_UNSPEC;
}

SEC("tc")
int AGENT_GRE_PROG(struct __sk_buff *skb)
{
	struct pkt p = { 0 };
	int c = classify(skb, &p);

	if (c == NEXT)
		c = decap(skb, &p);
	count(c);
	return action(c);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
