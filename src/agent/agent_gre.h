/*
 * agent_gre.h - the one header shared by agent_gre.bpf.c (the tc ingress
 * program that decapsulates casalb's GRE on a target host) and its loader
 * agent_gre.c (style.md habit 14): map sizes and names, the fixed-width
 * map values, and the counters with their names. Both sides compile it:
 * the program with clang -target bpf and no libc, the loader with the
 * room's compiler, so it holds only UAPI types and macros.
 *
 * What the program accepts is what the fast path emits (fp_gre_write in
 * src/fastpath/fp_encap_dp.c): Ethernet, IPv4 protocol 47 from the LB to
 * a configured tunnel endpoint, GRE version 0 (RFC 2784) with protocol
 * 0x0800 and optional key and sequence number (RFC 2890), then the
 * client's own IPv4 packet to a VIP. See docs/agent-gre.md.
 */
#ifndef AGENT_GRE_H
#define AGENT_GRE_H

#include <linux/pkt_cls.h>
#include <linux/types.h>

/* Map sizes: the most tunnel endpoints (this host's addresses the LB sends
 * GRE to) and VIPs the program knows. The loader refuses more. */
#define AGENT_GRE_MAX_ENDPOINTS 64
#define AGENT_GRE_MAX_VIPS 4096

/*
 * Map and program names. The program declares its maps and its entry
 * point under these identifiers; the loader reaches them through the
 * libbpf skeleton's fields of the same names (skel->maps.AGENT_GRE_MAP_VIPS),
 * so a rename on one side fails to compile on the other. Kernel object
 * names are at most 15 characters.
 */
#define AGENT_GRE_MAP_CONFIG gre_config       /* array[1] of struct agent_gre_config */
#define AGENT_GRE_MAP_ENDPOINTS gre_endpoints /* hash: __u32 address (network order) -> __u8 1 */
#define AGENT_GRE_MAP_VIPS gre_vips           /* hash: __u32 VIP (network order) -> __u8 1 */
#define AGENT_GRE_MAP_COUNTERS gre_counters   /* per-CPU array[AGENT_GRE_N_COUNTERS] of __u64 */
#define AGENT_GRE_PROG agent_gre_ingress      /* SEC("tc") */

/* The one entry of AGENT_GRE_MAP_CONFIG. */
struct agent_gre_config {
	__u32 flags;  /* AGENT_GRE_CFG_* */
	__u32 key_be; /* RFC 2890 key, network order; matched when AGENT_GRE_CFG_KEY */
};

/* Every GRE packet must carry the K bit and key_be; others are dropped
 * (drop_key). Without it the key, present or not, is ignored. */
#define AGENT_GRE_CFG_KEY 0x1u

/*
 * Counters: each packet the program sees adds one to exactly one of them,
 * so their sum is the packets seen. In the order the program checks:
 *
 *   decap              decapsulated; the inner packet goes up the stack
 *   pass_not_ipv4      not IPv4 after Ethernet and at most one tag (ARP, IPv6)
 *   pass_vlan_stacked  a tag in the frame while the kernel holds another (QinQ)
 *   pass_ip_bad        outer IPv4 header short, not version 4, ihl < 5, or
 *                      a total length the frame does not hold
 *   pass_not_gre       outer protocol not 47
 *   pass_not_endpoint  outer destination not a configured tunnel endpoint
 *   pass_fragment      outer packet a fragment (MF or an offset)
 *   pass_ip_csum       outer header checksum wrong
 *   pass_gre_other     GRE version not 0 (PPTP's is 1) or protocol not 0x0800:
 *                      someone else's GRE
 *   pass_not_vip       inner destination not a configured VIP
 *   drop_gre_bad       GRE header or its options cut short, or the routing
 *                      bit or bit 4 or 5 set (RFC 2784 2.3: discard)
 *   drop_key           a key is configured and the packet has none or another
 *   drop_inner_bad     inner IPv4 header cut short, not version 4, ihl < 5,
 *                      or longer than the outer packet holds
 *   drop_decap_err     the kernel refused to remove the headers
 *
 * X(id, name, action): action is what the program returns to tc: TC_ACT_OK
 * for a decapsulated packet (the inner packet goes up the stack as if it
 * had arrived plain); TC_ACT_UNSPEC for one left untouched (the next tc
 * filter, if any, then the stack see it as if this program were not
 * there); TC_ACT_SHOT for GRE to our endpoint that we cannot accept.
 */
#define AGENT_GRE_COUNTERS(X)                                              \
	X(AGENT_GRE_DECAP, "decap", TC_ACT_OK)                             \
	X(AGENT_GRE_PASS_NOT_IPV4, "pass_not_ipv4", TC_ACT_UNSPEC)         \
	X(AGENT_GRE_PASS_VLAN_STACKED, "pass_vlan_stacked", TC_ACT_UNSPEC) \
	X(AGENT_GRE_PASS_IP_BAD, "pass_ip_bad", TC_ACT_UNSPEC)             \
	X(AGENT_GRE_PASS_NOT_GRE, "pass_not_gre", TC_ACT_UNSPEC)           \
	X(AGENT_GRE_PASS_NOT_ENDPOINT, "pass_not_endpoint", TC_ACT_UNSPEC) \
	X(AGENT_GRE_PASS_FRAGMENT, "pass_fragment", TC_ACT_UNSPEC)         \
	X(AGENT_GRE_PASS_IP_CSUM, "pass_ip_csum", TC_ACT_UNSPEC)           \
	X(AGENT_GRE_PASS_GRE_OTHER, "pass_gre_other", TC_ACT_UNSPEC)       \
	X(AGENT_GRE_PASS_NOT_VIP, "pass_not_vip", TC_ACT_UNSPEC)           \
	X(AGENT_GRE_DROP_GRE_BAD, "drop_gre_bad", TC_ACT_SHOT)             \
	X(AGENT_GRE_DROP_KEY, "drop_key", TC_ACT_SHOT)                     \
	X(AGENT_GRE_DROP_INNER_BAD, "drop_inner_bad", TC_ACT_SHOT)         \
	X(AGENT_GRE_DROP_DECAP_ERR, "drop_decap_err", TC_ACT_SHOT)

#define AGENT_GRE_ENUM_(id, name, action) id,
enum agent_gre_counter { AGENT_GRE_COUNTERS(AGENT_GRE_ENUM_) AGENT_GRE_N_COUNTERS };
#undef AGENT_GRE_ENUM_

#ifndef __bpf__
/* The name of counter c as the console and metrics show it ("decap",
 * "pass_not_vip", ...), or NULL when c is out of range. */
static inline const char *agent_gre_counter_name(unsigned c)
{
#define AGENT_GRE_NAME_(id, name, action) [id] = name,
	static const char *const names[AGENT_GRE_N_COUNTERS] = { AGENT_GRE_COUNTERS(
		AGENT_GRE_NAME_) };
#undef AGENT_GRE_NAME_
	return c < AGENT_GRE_N_COUNTERS ? names[c] : 0;
}

/* The tc action the program returns for the packets counted under c. */
static inline int agent_gre_counter_action(unsigned c)
{
#define AGENT_GRE_ACTION_(id, name, action) [id] = action,
	static const signed char actions[AGENT_GRE_N_COUNTERS] = { AGENT_GRE_COUNTERS(
		AGENT_GRE_ACTION_) };
#undef AGENT_GRE_ACTION_
	return c < AGENT_GRE_N_COUNTERS ? actions[c] : TC_ACT_UNSPEC;
}
#endif

/* The tc filter the loader installs at the clsact ingress hook: a fixed
 * handle and priority, so attaching again replaces it instead of adding a
 * second one (also after an agent that died without detaching). */
#define AGENT_GRE_TC_HANDLE 0xca5au
#define AGENT_GRE_TC_PRIORITY 0xca5au

#endif /* AGENT_GRE_H */
