/*
 * fp_pkt.h - private to the fastpath room: the per-packet steps of a worker
 * (parse, rewrite, encapsulate, reply) as pure functions over frame bytes.
 *
 * They take plain byte pointers rather than mbufs so they can be tested
 * byte-exact and fuzzed without EAL; the worker loop (fp_worker_dp.c) calls
 * them on rte_pktmbuf_mtod() of each mbuf.
 *
 * Context: worker (and tests). None of them allocates, locks, logs or makes
 * a system call. Addresses and ports in struct fp_flow are host order, as in
 * casa.h (9.67.157.17 is 0x09439D11).
 */
#ifndef FP_PKT_H
#define FP_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fastpath.h" /* struct fp_flow */

#define FP_ETH_LEN 14
#define FP_VLAN_LEN 4
#define FP_IP_MIN_LEN 20
#define FP_GRE_MIN_LEN 4
#define FP_ETHERTYPE_IPV4 0x0800
#define FP_ETHERTYPE_ARP 0x0806
#define FP_ETHERTYPE_VLAN 0x8100
#define FP_ETHERTYPE_QINQ 0x88A8

/*
 * Verdicts: every outcome of a packet has a name and a per-worker counter
 * (style.md habit 5). FP_VERDICTS(X) expands X(enum, "metric_name") once per
 * verdict; fp_verdict_name() returns the name. Parse errors are drops.
 */
#define FP_VERDICTS(X)                                       \
	X(FP_V_OK, "ok")                                     \
	X(FP_V_FWD_GRE, "fwd_gre")                           \
	X(FP_V_FWD_L2, "fwd_l2")                             \
	X(FP_V_REPLY_ARP, "reply_arp")                       \
	X(FP_V_REPLY_ICMP_ECHO, "reply_icmp_echo")           \
	X(FP_V_TO_CONTROL, "interest_to_control")            \
	X(FP_V_ARP_TO_CONTROL, "arp_to_control")             \
	X(FP_V_NO_TARGET_TO_CONTROL, "no_target_to_control") \
	X(FP_V_FRAG_HELD, "frag_held")                       \
	X(FP_V_DROP_ETH_SHORT, "drop_eth_short")             \
	X(FP_V_DROP_VLAN_SHORT, "drop_vlan_short")           \
	X(FP_V_DROP_ETHERTYPE, "drop_ethertype")             \
	X(FP_V_DROP_ARP_SHORT, "drop_arp_short")             \
	X(FP_V_DROP_ARP_FORMAT, "drop_arp_format")           \
	X(FP_V_DROP_IP_SHORT, "drop_ip_short")               \
	X(FP_V_DROP_IP_VERSION, "drop_ip_version")           \
	X(FP_V_DROP_IP_IHL, "drop_ip_ihl")                   \
	X(FP_V_DROP_IP_TOTLEN, "drop_ip_total_length")       \
	X(FP_V_DROP_IP_FRAG, "drop_ip_bad_fragment")         \
	X(FP_V_DROP_IP_TTL, "drop_ip_ttl_expired")           \
	X(FP_V_DROP_IP_CSUM, "drop_ip_checksum")             \
	X(FP_V_DROP_L4_SHORT, "drop_l4_short")               \
	X(FP_V_DROP_TCP_DOFF, "drop_tcp_data_offset")        \
	X(FP_V_DROP_ICMP_SHORT, "drop_icmp_short")           \
	X(FP_V_DROP_ICMP_TYPE, "drop_icmp_type")             \
	X(FP_V_DROP_IP_PROTO, "drop_ip_protocol")            \
	X(FP_V_DROP_NOT_OURS, "drop_not_ours")               \
	X(FP_V_DROP_NO_SERVICE, "drop_no_service")           \
	X(FP_V_DROP_NO_TARGET, "drop_no_target")             \
	X(FP_V_DROP_AFF_FULL, "drop_affinity_table_full")    \
	X(FP_V_DROP_RING_FULL, "drop_control_ring_full")     \
	X(FP_V_DROP_FRAG_UNMATCHED, "drop_frag_unmatched")   \
	X(FP_V_DROP_FRAG_STASH_FULL, "drop_frag_stash_full") \
	X(FP_V_DROP_TOO_BIG, "drop_too_big")                 \
	X(FP_V_DROP_NO_HEADROOM, "drop_no_headroom")         \
	X(FP_V_DROP_MULTISEG, "drop_multi_segment")          \
	X(FP_V_DROP_TX_FULL, "drop_tx_full")

enum fp_verdict {
#define FP_VERDICT_ENUM(e, name) e,
	FP_VERDICTS(FP_VERDICT_ENUM)
#undef FP_VERDICT_ENUM
		FP_V__COUNT
};

const char *fp_verdict_name(enum fp_verdict v);

enum fp_pkt_kind { FP_PKT_ARP = 1, FP_PKT_IPV4 = 2 };

/* TCP flag bits as on the wire. */
#define FP_TCP_FIN 0x01
#define FP_TCP_SYN 0x02
#define FP_TCP_RST 0x04
#define FP_TCP_PSH 0x08
#define FP_TCP_ACK 0x10
#define FP_TCP_URG 0x20

/* What fp_parse learnt about a frame; offsets count from the frame start. */
struct fp_pkt {
	uint8_t kind; /* fp_pkt_kind */
	bool has_vlan;
	uint16_t vlan_tci;
	uint16_t l3_off; /* IPv4 or ARP header */
	/* ARP (Ethernet/IPv4 only) */
	uint16_t arp_op;
	uint32_t arp_spa;
	uint32_t arp_tpa;
	/* IPv4 */
	uint16_t ip_hlen; /* bytes, 20..60 */
	uint16_t ip_len;  /* total length; the frame may carry padding after it */
	uint16_t ip_id;
	uint16_t frag_off; /* in 8-byte units */
	bool more_frags;
	bool is_frag;    /* more_frags || frag_off > 0 */
	bool first_frag; /* frag_off == 0 (also true for unfragmented packets) */
	uint8_t ttl;
	struct fp_flow flow; /* from the packet itself, or from an ICMP error's quote */
	bool icmp_error;     /* flow was taken (reversed) from an ICMP error's inner packet */
	uint8_t icmp_type;
	uint8_t icmp_code;
	uint8_t tcp_flags;
	uint16_t l4_off;      /* 0 when the packet has no transport header */
	uint16_t payload_len; /* transport payload bytes (0 without a transport header) */
};

/*
 * Parse an Ethernet frame (optionally one 802.1Q/802.1ad tag) carrying ARP
 * or IPv4 with TCP, UDP or ICMP. Every header is bounds-checked against len.
 * Returns FP_V_OK and fills *pkt, or a FP_V_DROP_* verdict naming the fault.
 * ICMP errors (destination unreachable, time exceeded, parameter problem)
 * quoting a TCP/UDP packet get flow = the quoted flow reversed, so that a
 * "fragmentation needed" about VIP -> client follows client -> VIP's affinity.
 */
enum fp_verdict fp_parse(const uint8_t *frame, uint32_t len, struct fp_pkt *pkt);

/* Big-endian (network order) loads and stores at any alignment: one memory
 * access and a byte swap. */
static inline uint16_t fp_rd16(const uint8_t *p)
{
	uint16_t v;

	__builtin_memcpy(&v, p, 2);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap16(v);
#endif
	return v;
}

static inline uint32_t fp_rd32(const uint8_t *p)
{
	uint32_t v;

	__builtin_memcpy(&v, p, 4);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

static inline void fp_wr16(uint8_t *p, uint16_t v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap16(v);
#endif
	__builtin_memcpy(p, &v, 2);
}

static inline void fp_wr32(uint8_t *p, uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	__builtin_memcpy(p, &v, 4);
}

/* Internet checksum (RFC 1071) of n bytes, folded and complemented, as a
 * host-order number to be stored big-endian (trace 299's header: 0xF929).
 * Over a header that holds a correct checksum it returns 0. */
uint16_t fp_csum(const void *data, size_t n);

/* The same for a 20-byte IPv4 header (the common case), inline: five
 * native 32-bit words summed, folded, complemented. */
static inline uint16_t fp_csum20(const uint8_t *ip)
{
	uint64_t sum = 0;
	uint32_t w;
	uint16_t c;
	uint8_t b[2];

	for (int i = 0; i < 20; i += 4) {
		__builtin_memcpy(&w, ip + i, 4);
		sum += w;
	}
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	c = (uint16_t)~sum;
	__builtin_memcpy(b, &c, 2);
	return (uint16_t)(b[0] << 8 | b[1]);
}

/*
 * Decrement the TTL of the IPv4 header at ip and update its checksum
 * incrementally (RFC 1624 eqn. 3), as z/OS did in trace 300:
 * TTL 127 -> 126, checksum 0xF929 -> 0xFA29. The caller checks ttl > 1.
 */
void fp_ip_ttl_dec(uint8_t *ip);

/* ---- actions (fp_encap_dp.c, fp_reply_dp.c) ------------------------------ */

#define FP_GRE_F_KEY 0x01 /* RFC 2890 key present */
#define FP_GRE_F_SEQ 0x02 /* RFC 2890 sequence number present */

/* How a GRE packet's outer IPv4 header is built (design.md, spec 6.8). */
struct fp_gre_params {
	uint8_t dst_mac[6]; /* next hop toward the tunnel endpoint */
	uint8_t src_mac[6]; /* our data port */
	uint32_t src;       /* configured local tunnel address */
	uint32_t dst;       /* the target's tunnel endpoint */
	uint8_t flags;      /* FP_GRE_F_* */
	uint32_t key;
	uint32_t seq;
	uint8_t ttl;       /* outer TTL; 0 = copy the (already decremented) inner TTL */
	int16_t tos;       /* outer TOS; -1 = copy the inner TOS */
	int8_t df;         /* outer DF: 1 set, 0 clear, -1 copy the inner DF */
	uint16_t outer_id; /* IP id for the outer header */
};

/* Bytes of outer Ethernet + IPv4 + GRE for these flags: 38, 42 or 46. */
size_t fp_gre_hdr_len(uint8_t flags);

/*
 * Write the outer Ethernet, IPv4 (with checksum) and GRE (RFC 2784, with
 * RFC 2890 key/sequence when flagged; protocol 0x0800) headers into
 * hdr[0..fp_gre_hdr_len(p->flags)), for the inner IPv4 packet of inner_len
 * bytes at inner (which normally follows hdr directly). Returns 0, or -1 if
 * the outer packet would exceed 65535 bytes.
 */
int fp_gre_write(uint8_t *hdr, const struct fp_gre_params *p, const uint8_t *inner,
		 uint16_t inner_len);

/*
 * The per-packet form of fp_gre_write: copy a template that fp_gre_write
 * built for this target (hl = fp_gre_hdr_len bytes, computed once per
 * publish), then set only what varies per packet: total length, IP id,
 * the TOS, DF and TTL copied from the inner header where p says so, the
 * sequence number, and the header checksum. Same bytes as fp_gre_write.
 */
void fp_gre_apply(uint8_t *hdr, const uint8_t *tmpl, size_t hl, const struct fp_gre_params *p,
		  const uint8_t *inner, uint16_t inner_len);

/* Layer-2 dispatch: rewrite the Ethernet addresses, IP header untouched
 * except what the caller did (TTL). */
void fp_l2_rewrite(uint8_t *eth, const uint8_t dst_mac[6], const uint8_t src_mac[6]);

/*
 * Turn the ARP request parsed into *pkt in place into the reply for
 * pkt->arp_tpa from my_mac (Ethernet addresses swapped too). The caller
 * checked that arp_tpa is ours and arp_op is a request. Frame length is
 * unchanged.
 */
void fp_arp_reply(uint8_t *frame, const struct fp_pkt *pkt, const uint8_t my_mac[6]);

/*
 * Turn the ICMP echo request parsed into *pkt in place into its echo reply:
 * Ethernet and IP addresses swapped, type 0, TTL 64, both checksums
 * updated. Returns 0, or -1 when it is not an unfragmented echo request.
 */
int fp_icmp_echo_reply(uint8_t *frame, const struct fp_pkt *pkt);

#endif /* FP_PKT_H */
