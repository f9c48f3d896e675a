/*
 * casadump.c - print CASA messages (casalb-casa/1) the way tcpdump prints packets.
 *
 * Input is either hex (arguments or standard input: plain, 0x-prefixed, or
 * the seed's trace layout "000010 00000000 09439D11 ...") or a capture file
 * read with libpcap (-r). Every message goes through casa_decode, and through
 * casa_verify with -k, so casadump accepts exactly what a casalb receiver
 * accepts. The display words follow IOS `show ip casa wild|aff det` and
 * `show ip casa stats` (seed 6.8.2; spec 5.8).
 *
 * A malformed message gives exactly one line on standard error naming the
 * error and its byte offset, and exit status 1. casadump reads no byte whose
 * bound it has not checked: link, IP, GRE and UDP headers are checked here,
 * the CASA message by casa_decode.
 */
#include "casa.h"

#include <pcap/pcap.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

#define HEX_TEXT_MAX (4u << 20) /* bytes of hex text read from standard input */
#define BYTES_MAX 65535u        /* decoded hex: at most one IPv4 datagram */
#define TRACE_OFFSET_DIGITS 6   /* "000010" in the seed's trace dumps */

#define ETHERTYPE_IPV4 0x0800
#define ETHERTYPE_VLAN 0x8100
#define ETHERTYPE_QINQ 0x88A8
#define ETH_HDR_LEN 14
#define VLAN_TAG_LEN 4
#define SLL_HDR_LEN 16  /* Linux cooked v1: protocol at 14 */
#define SLL2_HDR_LEN 20 /* Linux cooked v2: protocol at 0 */

#define IPV4_HDR_MIN 20
#define IP_PROTO_TCP 6
#define IP_PROTO_UDP 17
#define IP_PROTO_GRE 47
#define IP_FLAG_DF 0x4000
#define IP_FLAG_MF 0x2000
#define IP_FRAG_MASK 0x1FFF
#define UDP_HDR_LEN 8
#define TCP_HDR_MIN 20

/* GRE, RFC 2784 with the RFC 2890 key and sequence extensions. */
#define GRE_F_CSUM 0x8000
#define GRE_F_ROUTING 0x4000 /* RFC 1701 source routing: not followed */
#define GRE_F_KEY 0x2000
#define GRE_F_SEQ 0x1000
#define GRE_VERSION_MASK 0x0007
#define GRE_HDR_MIN 4

/* ---- options and run state ---------------------------------------------- */

struct options {
	const char *pcap_file; /* -r */
	const char *key_file;  /* -k */
	uint8_t alg;           /* -a, casa_auth_alg */
	uint8_t key_id;        /* -i */
	uint32_t freshness_s;  /* -t; 0 = timestamps not checked */
	size_t max_len;        /* -m; 0 = CASA_MSG_MAX_DEFAULT */
	uint16_t port;         /* -p */
	bool quiet;            /* -q */
	bool hexdump;          /* -X */
};

/* One run: the options, the verifier (NULL without -k) and the failures. */
struct dump {
	const struct options *opt;
	struct casa_auth_ctx *auth;
	unsigned failures;
};

/* Where a message came from, for its header line and its error line. */
struct origin {
	const char *unit; /* "message" (hex input) or "packet" (capture) */
	unsigned long number;
	bool captured; /* ts is a capture time */
	struct timeval ts;
	bool udp; /* addresses below come from the carrying datagram */
	uint32_t src, dst;
	uint16_t sport, dport;
	bool gre; /* that datagram arrived inside GRE */
	uint32_t gre_src, gre_dst;
};

/* A decoded message and what the printers need besides it. */
struct view {
	const struct casa_msg *m;
	const uint8_t *buf;
	size_t len;
	bool checked; /* casa_verify ran (-k) */
	enum casa_err verify;
};

/* What one datagram turned out to hold. */
enum seen { SEEN_NOTHING, SEEN_NOTE, SEEN_CASA };

/* ---- small helpers ------------------------------------------------------- */

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Append-only text buffer; output is cut, never overrun, when it is full. */
struct sbuf {
	char *p;
	size_t cap;
	size_t used;
};

PRINTF_LIKE(2, 3)
static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->used >= b->cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->used, b->cap - b->used, fmt, ap);
	va_end(ap);
	if (n > 0)
		b->used = b->used + (size_t)n < b->cap ? b->used + (size_t)n : b->cap - 1;
}

struct ipstr {
	char s[16];
};

static struct ipstr ip_str(uint32_t addr)
{
	struct ipstr r;

	casa_ip_format(addr, r.s, sizeof(r.s));
	return r;
}

struct timestr {
	char s[32];
};

/* Seconds since 1970 as UTC, the clock of every casalb timestamp (spec 6.6, 6.9). */
static struct timestr utc_str(time_t secs)
{
	struct timestr r;
	struct tm tm;

	if (!gmtime_r(&secs, &tm) || !strftime(r.s, sizeof(r.s), "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(r.s, sizeof(r.s), "%lld", (long long)secs);
	return r;
}

static const char *yes_no(bool b)
{
	return b ? "YES" : "NO";
}

/* Protocol by name where casa_names knows one, else the number. */
static const char *proto_str(uint16_t proto, char *out, size_t outlen)
{
	const char *name = casa_proto_name(proto);

	if (name[0] != '\0')
		return name;
	snprintf(out, outlen, "%u", proto);
	return out;
}

/* One "    Label: value" line. */
PRINTF_LIKE(2, 3)
static void field(const char *label, const char *fmt, ...)
{
	va_list ap;

	printf("    %s: ", label);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

/* Two fields on one line, as IOS pairs them ("Interest Addr: ... Interest Port: ..."). */
static void pair(const char *l1, const char *v1, const char *l2, const char *v2)
{
	char left[96];

	snprintf(left, sizeof(left), "%s: %s", l1, v1);
	printf("    %-34s %s: %s\n", left, l2, v2);
}

static void hex_bytes(struct sbuf *b, const uint8_t *p, size_t n, const char *sep)
{
	for (size_t i = 0; i < n; i++)
		sb_printf(b, "%s%02x", i ? sep : "", p[i]);
}

/* ---- the inner IP packet (IP_PACKET, PKT_EXCERPT) --------------------------- */

/* TCP flag names in bit order, so 0x11 prints [FIN,ACK] and 0x18 [PSH,ACK]. */
static void tcp_flags_str(struct sbuf *b, uint8_t flags)
{
	static const char *const names[8] = {
		"FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"
	};
	bool first = true;

	sb_printf(b, "[");
	for (unsigned bit = 0; bit < 8; bit++) {
		if (!(flags & (1u << bit)))
			continue;
		sb_printf(b, "%s%s", first ? "" : ",", names[bit]);
		first = false;
	}
	sb_printf(b, "%s]", first ? "none" : "");
}

/* An IPv4 packet as far as its bytes go; `len` may be shorter than its total length. */
struct inner_ip {
	const uint8_t *p;
	size_t len;   /* bytes available */
	size_t ihl;   /* header bytes */
	size_t total; /* IP total length */
	const uint8_t *l4;
	size_t l4len; /* transport bytes available */
};

static bool inner_ip_parse(const uint8_t *p, size_t len, struct inner_ip *ip)
{
	if (len < IPV4_HDR_MIN || (p[0] >> 4) != 4)
		return false;
	ip->p = p;
	ip->len = len;
	ip->ihl = (size_t)(p[0] & 0x0F) * 4;
	ip->total = be16(p + 2);
	if (ip->ihl < IPV4_HDR_MIN || ip->ihl > len || ip->total < ip->ihl)
		return false;
	ip->l4 = p + ip->ihl;
	ip->l4len = (ip->total < len ? ip->total : len) - ip->ihl;
	return true;
}

/* TCP options as tcpdump names them: "options [mss 1460,nop,nop,sackOK]". */
static void tcp_options(struct sbuf *b, const uint8_t *o, size_t len)
{
	size_t i = 0;

	sb_printf(b, " options [");
	while (i < len && o[i] != 0) {
		uint8_t kind = o[i];
		size_t olen = kind == 1 ? 1 : (i + 1 < len ? o[i + 1] : 0);

		sb_printf(b, "%s", i ? "," : "");
		if (olen < 1 || (kind != 1 && olen < 2) || i + olen > len) {
			sb_printf(b, "bad opt");
			break;
		}
		if (kind == 1)
			sb_printf(b, "nop");
		else if (kind == 2 && olen == 4)
			sb_printf(b, "mss %u", be16(o + i + 2));
		else if (kind == 3 && olen == 3)
			sb_printf(b, "wscale %u", o[i + 2]);
		else if (kind == 4 && olen == 2)
			sb_printf(b, "sackOK");
		else
			sb_printf(b, "opt-%u", kind);
		i += olen;
	}
	sb_printf(b, "%s]", i < len && o[i] == 0 ? (i ? ",eol" : "eol") : "");
}

static void tcp_flow(struct sbuf *b, const struct inner_ip *ip)
{
	const uint8_t *t = ip->l4;
	size_t doff;

	if (ip->l4len < TCP_HDR_MIN) {
		sb_printf(b, "%s > %s TCP [|tcp]", ip_str(be32(ip->p + 12)).s,
			  ip_str(be32(ip->p + 16)).s);
		return;
	}
	sb_printf(b, "%s:%u > %s:%u TCP ", ip_str(be32(ip->p + 12)).s, be16(t),
		  ip_str(be32(ip->p + 16)).s, be16(t + 2));
	tcp_flags_str(b, t[13]);
	sb_printf(b, " seq %" PRIu32, be32(t + 4));
	if (t[13] & 0x10)
		sb_printf(b, " ack %" PRIu32, be32(t + 8));
	sb_printf(b, " win %u", be16(t + 14));
	doff = (size_t)(t[12] >> 4) * 4;
	if (doff > TCP_HDR_MIN && doff <= ip->l4len)
		tcp_options(b, t + TCP_HDR_MIN, doff - TCP_HDR_MIN);
	if (doff >= TCP_HDR_MIN && ip->ihl + doff <= ip->total)
		sb_printf(b, ", length %zu", ip->total - ip->ihl - doff);
}

static void udp_flow(struct sbuf *b, const struct inner_ip *ip)
{
	if (ip->l4len < UDP_HDR_LEN) {
		sb_printf(b, "%s > %s UDP [|udp]", ip_str(be32(ip->p + 12)).s,
			  ip_str(be32(ip->p + 16)).s);
		return;
	}
	sb_printf(b, "%s:%u > %s:%u UDP, length %u", ip_str(be32(ip->p + 12)).s, be16(ip->l4),
		  ip_str(be32(ip->p + 16)).s, be16(ip->l4 + 2), be16(ip->l4 + 4));
}

/* "src:port > dst:port TCP [SYN] seq N win N, length N", as tcpdump would say it. */
static void ip_flow(struct sbuf *b, const uint8_t *p, size_t len)
{
	struct inner_ip ip;
	uint16_t frag;
	char num[8];

	if (!inner_ip_parse(p, len, &ip)) {
		sb_printf(b, "not an IPv4 packet");
		return;
	}
	frag = be16(p + 6);
	if (frag & IP_FRAG_MASK) {
		sb_printf(b, "%s > %s %s fragment", ip_str(be32(p + 12)).s, ip_str(be32(p + 16)).s,
			  proto_str(p[9], num, sizeof(num)));
		return;
	}
	if (p[9] == IP_PROTO_TCP)
		tcp_flow(b, &ip);
	else if (p[9] == IP_PROTO_UDP)
		udp_flow(b, &ip);
	else
		sb_printf(b, "%s > %s %s", ip_str(be32(p + 12)).s, ip_str(be32(p + 16)).s,
			  proto_str(p[9], num, sizeof(num)));
}

/* "tos 0x30, ttl 127, id 0xB66E, offset 0, flags [DF], proto TCP (6), length 48". */
static void ip_header(struct sbuf *b, const uint8_t *p, size_t len)
{
	uint16_t frag;
	char num[8];

	if (len < IPV4_HDR_MIN || (p[0] >> 4) != 4)
		return;
	frag = be16(p + 6);
	sb_printf(b, "tos 0x%02x, ttl %u, id 0x%04X, offset %u, flags [%s%s%s]", p[1], p[8],
		  be16(p + 4), (frag & IP_FRAG_MASK) * 8u, frag & IP_FLAG_DF ? "DF" : "",
		  (frag & IP_FLAG_DF) && (frag & IP_FLAG_MF) ? "," : "",
		  frag & IP_FLAG_MF ? "MF" : (frag & IP_FLAG_DF ? "" : "none"));
	sb_printf(b, ", proto %s (%u), length %u", proto_str(p[9], num, sizeof(num)), p[9],
		  be16(p + 2));
}

static void print_ip_lines(const uint8_t *p, size_t len)
{
	char text[192];
	struct sbuf b = { text, sizeof(text), 0 };

	text[0] = '\0';
	ip_flow(&b, p, len);
	field("Packet", "%s", text);
	b.used = 0;
	text[0] = '\0';
	ip_header(&b, p, len);
	if (text[0] != '\0')
		field("IP", "%s", text);
}

/* ---- one printer per TLV (spec 5, 6) ---------------------------------------- */

static void aff_flags_line(uint16_t flags)
{
	field("Flags", "0x%04X%s", flags, flags & CASA_AFF_F_DISPATCH_L2 ? " DISPATCH_L2" : "");
}

/* Flag 0x0002 and the forward address, as IOS shows them (spec 5.7, 5.8). */
static void aff_dispatch_lines(const struct casa_affinity *a)
{
	pair("Dispatch (Layer 2)", yes_no(a->flags & CASA_AFF_F_DISPATCH_L2), "Dispatch Address",
	     ip_str(a->fwd).s);
	if (a->ttl == 0)
		field("Affinity TTL", "0 (delete)");
	else
		field("Affinity TTL", "%u", a->ttl);
	field("Reserved", "0x%04X", a->reserved);
}

/* The columns of `show ip casa wild det` (seed 6.8.2). */
static void print_wildcard(const struct view *v)
{
	const struct casa_affinity *a = &v->m->aff;
	char sport[8], dport[8], num[8];

	snprintf(sport, sizeof(sport), "%u", a->src_port);
	snprintf(dport, sizeof(dport), "%u", a->dst_port);
	printf("    %-16s%-17s%-6s%-16s%-17s%-6s%s\n", "Source Address", "Source Mask", "Port",
	       "Dest Address", "Dest Mask", "Port", "Prot");
	printf("    %-16s%-17s%-6s%-16s%-17s%-6s%s\n", ip_str(a->src).s, ip_str(a->src_mask).s,
	       sport, ip_str(a->dst).s, ip_str(a->dst_mask).s, dport,
	       proto_str(a->protocol, num, sizeof(num)));
	aff_flags_line(a->flags);
	aff_dispatch_lines(a);
}

/* The columns of `show ip casa aff det` (seed 6.8.2): fixed affinities have no masks. */
static void print_fixed(const struct view *v)
{
	const struct casa_affinity *a = &v->m->aff;
	char sport[8], dport[8], num[8];

	snprintf(sport, sizeof(sport), "%u", a->src_port);
	snprintf(dport, sizeof(dport), "%u", a->dst_port);
	printf("    %-16s%-6s%-16s%-6s%s\n", "Source Address", "Port", "Dest Address", "Port",
	       "Prot");
	printf("    %-16s%-6s%-16s%-6s%s\n", ip_str(a->src).s, sport, ip_str(a->dst).s, dport,
	       proto_str(a->protocol, num, sizeof(num)));
	aff_flags_line(a->flags);
	aff_dispatch_lines(a);
}

/* WILDCARD_AUX is opaque (spec 5.3): the raw value bytes. */
static void print_aux(const struct view *v)
{
	char text[16];
	struct sbuf b = { text, sizeof(text), 0 };

	hex_bytes(&b, v->m->aux, sizeof(v->m->aux), " ");
	field("Value (opaque)", "%s", text);
}

/* The "Action Details" of the IOS displays (spec 5.4, 5.6). */
static void print_action(const struct view *v)
{
	const struct casa_action *a = &v->m->action;
	char port[8], crit[96];

	snprintf(port, sizeof(port), "%u", a->interest_port);
	pair("Interest Addr", ip_str(a->interest_addr).s, "Interest Port", port);
	field("Interest Packet", "%s", casa_criteria_format(a->criteria, crit, sizeof(crit)));
	field("Interest Tickle", "%s", casa_criteria_format(a->tickle, crit, sizeof(crit)));
	field("Match Fragments", "%s", yes_no(a->criteria & CASA_INT_FRAG));
	field("X (unknown)", "0x%04X", a->x);
	field("Action Dispatch Address", "%s", ip_str(a->dispatch).s);
}

static void print_ip_packet(const struct view *v)
{
	print_ip_lines(v->m->ip_pkt, v->m->ip_pkt_len);
}

static void print_hello_common(const struct casa_hello *h)
{
	char port[8], text[128];

	field("Role", "%s (%u)", casa_role_name(h->role), h->role);
	field("Extension Version", "%u", h->ext_version);
	field("Flags", "%s", casa_hello_flags_format(h->flags, text, sizeof(text)));
	field("Sender ID", "0x%08" PRIX32 " (%s)", h->sender_id, ip_str(h->sender_id).s);
	field("Epoch", "%" PRIu32 " (%s UTC)", h->epoch, utc_str(h->epoch).s);
	snprintf(port, sizeof(port), "%u", h->port);
	pair("Control Addr", ip_str(h->control_addr).s, "Port", port);
	field("Hello Interval", "%u s", h->hello_interval);
	field("Hold Time", "%u s", h->hold_time);
	field("Capabilities", "%s", casa_caps_format(h->caps, text, sizeof(text)));
	field("Reserved", "0x%04X", h->reserved);
}

static void print_hello(const struct view *v)
{
	print_hello_common(&v->m->hello);
}

static void print_hello_ack(const struct view *v)
{
	const struct casa_hello *h = &v->m->hello;

	print_hello_common(h);
	field("Peer Sender ID", "0x%08" PRIX32 " (%s)", h->peer_sender_id,
	      ip_str(h->peer_sender_id).s);
	field("Peer Epoch", "%" PRIu32 " (%s UTC)", h->peer_epoch, utc_str(h->peer_epoch).s);
}

static void print_tickle(const struct view *v)
{
	const struct casa_tickle *t = &v->m->tickle;
	char text[96], num[8];
	struct sbuf b = { text, sizeof(text), 0 };

	field("Flow", "%s:%u > %s:%u %s", ip_str(t->src).s, t->src_port, ip_str(t->dst).s,
	      t->dst_port, proto_str(t->protocol, num, sizeof(num)));
	field("Matched", "%s", casa_criteria_format(t->matched, text, sizeof(text)));
	tcp_flags_str(&b, t->tcp_flags);
	field("TCP Flags", "0x%02X %s", t->tcp_flags, text);
	field("FA Time", "%" PRIu32 " ms", t->fa_time_ms);
	field("Flags", "0x%04X", t->flags);
	field("Reserved", "0x%02X", t->reserved);
}

/* The counter names of `show ip casa stats` (seed 6.8.2, spec 6.7). */
static void print_stats(const struct view *v)
{
	const struct casa_stats *s = &v->m->stats;

	field("Sender ID", "0x%08" PRIX32 " (%s)", s->sender_id, ip_str(s->sender_id).s);
	field("Interval", "%" PRIu32 " s", s->interval);
	field("Counters", "%u", s->count);
	for (unsigned i = 0; i < s->count && i < CASA_STATS_MAX; i++) {
		const struct casa_stat_entry *e = &s->entries[i];
		const char *name = casa_stat_name(e->id);
		char label[40];

		if (strcmp(name, "unknown") == 0) {
			snprintf(label, sizeof(label), "Counter %u", e->id);
			name = label;
		}
		printf("      %-26s %" PRIu64 "%s\n", name, e->value,
		       e->reserved ? " (reserved set)" : "");
	}
}

static void print_sender_info(const struct view *v)
{
	const struct casa_sender_info *s = &v->m->sender;

	field("Sender ID", "0x%08" PRIX32 " (%s)", s->sender_id, ip_str(s->sender_id).s);
	field("Control Addr", "%s", ip_str(s->control_addr).s);
}

/* Host names are UTF-8 (checked by the decoder); control bytes print escaped. */
static void name_str(struct sbuf *b, const struct casa_name *n)
{
	for (unsigned i = 0; i < n->len; i++) {
		uint8_t c = n->bytes[i];

		if (c < 0x20 || c == 0x7F || c == '"' || c == '\\')
			sb_printf(b, "\\x%02x", c);
		else
			sb_printf(b, "%c", c);
	}
}

static void print_name(const struct view *v)
{
	char text[4 * CASA_NAME_MAX + 1] = "";
	struct sbuf b = { text, sizeof(text), 0 };

	name_str(&b, &v->m->name);
	field("Name", "\"%s\" (%u bytes)", text, v->m->name.len);
}

static void print_excerpt(const struct view *v)
{
	const struct casa_excerpt *e = &v->m->excerpt;
	char text[3 * CASA_EXCERPT_MAX + 1];
	struct sbuf b = { text, sizeof(text), 0 };

	field("Original Length", "%u", e->orig_len);
	field("Reserved", "0x%04X", e->reserved);
	print_ip_lines(e->bytes, e->len);
	hex_bytes(&b, e->bytes, e->len, "");
	field("Excerpt", "%u bytes %s", e->len, text);
}

static void print_dispatch_info(const struct view *v)
{
	const struct casa_dispatch_info *d = &v->m->dispatch;
	const uint8_t *mac = d->nexthop_mac;
	bool arp = !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]);

	field("Method", "%s (%u)", casa_dispatch_method_name(d->method), d->method);
	field("GRE Flags", "0x%02X%s%s", d->gre_flags, d->gre_flags & CASA_GRE_F_KEY ? " KEY" : "",
	      d->gre_flags & CASA_GRE_F_SEQ ? " SEQ" : "");
	field("Tunnel Endpoint", "%s", ip_str(d->tunnel_endpoint).s);
	field("GRE Key", "%" PRIu32 " (0x%08" PRIX32 ")", d->gre_key, d->gre_key);
	field("Next-hop MAC", "%02x:%02x:%02x:%02x:%02x:%02x%s", mac[0], mac[1], mac[2], mac[3],
	      mac[4], mac[5], arp ? " (resolve by ARP)" : "");
	field("Reserved", "0x%04X 0x%04X", d->reserved, d->reserved2);
}

static void print_auth(const struct view *v)
{
	const struct casa_auth *a = &v->m->auth;
	char text[2 * CASA_DIGEST_MAX + 1];
	struct sbuf b = { text, sizeof(text), 0 };

	field("Algorithm", "%s (%u)", casa_auth_alg_name(a->alg), a->alg);
	field("Key ID", "%u", a->key_id);
	field("Sender ID", "0x%08" PRIX32 " (%s)", a->sender_id, ip_str(a->sender_id).s);
	field("Epoch", "%" PRIu32 " (%s UTC)", a->epoch, utc_str(a->epoch).s);
	field("Sequence", "%" PRIu64, a->seq);
	field("Timestamp", "%" PRIu32 " (%s UTC)", a->timestamp, utc_str(a->timestamp).s);
	hex_bytes(&b, a->digest, a->digest_len, "");
	field("Digest", "%s", text);
	if (!v->checked)
		field("Verification", "not checked (no key, see -k)");
	else if (v->verify == CASA_OK)
		field("Verification", "verified");
	else
		field("Verification", "FAILED: %s (%s)", casa_strerror(v->verify),
		      casa_err_name(v->verify));
}

typedef void tlv_print_fn(const struct view *v);

struct tlv_printer {
	uint16_t type;
	uint32_t present; /* the decoder set this bit when it took the TLV */
	tlv_print_fn *print;
};

/* ---- the agent protocol (docs/agent-protocol.md) ------------------------------ */

static const char *agent_status_name(uint8_t st)
{
	static const char *const names[] = { "OK", "UNKNOWN_TARGET", "DISPATCH", "DUPLICATE",
					     "REFUSED" };

	return st < sizeof(names) / sizeof(names[0]) ? names[st] : "unknown";
}

static void print_agent_register(const struct casa_msg *m)
{
	const struct casa_agent_register *r = &m->agent.reg;

	if (m->type == CASA_MSG_AGENT_REGISTER_ACK)
		field("Status", "%s (%u)", agent_status_name(r->status), r->status);
	else
		field("Version", "%u", r->version);
	field("Sender ID", "0x%08" PRIX32 " (%s)", r->sender_id, ip_str(r->sender_id).s);
	field("Epoch", "%" PRIu32 " (%s UTC)", r->epoch, utc_str(r->epoch).s);
	field("Keepalive", "%u s", r->keepalive_s);
	field("Hold Time", "%u s", r->hold_s);
	if (m->type == CASA_MSG_AGENT_REGISTER_ACK)
		field("Target ID", "%" PRIu32, r->caps);
	else
		field("Capabilities", "0x%08" PRIX32, r->caps);
}

static void print_agent_services(const struct casa_msg *m)
{
	char num[8];

	field("Entries", "%u", m->agent.list.n);
	for (unsigned i = 0; i < m->agent.list.n; i++) {
		struct casa_agent_service e;

		casa_agent_service_get(m, i, &e);
		if (m->type == CASA_MSG_AGENT_READY)
			printf("      %s:%u %s Rdy %" PRIu32 "\n", ip_str(e.vip).s, e.port,
			       proto_str(e.protocol, num, sizeof(num)), e.ready);
		else
			printf("      %s:%u %s dispatch %s\n", ip_str(e.vip).s, e.port,
			       proto_str(e.protocol, num, sizeof(num)),
			       casa_dispatch_method_name(e.dispatch));
	}
}

static void print_agent_conns(const struct casa_msg *m)
{
	static const char *const end[] = { "?", "closed", "reset", "timed out" };
	static const char *const state[] = { "?", "established", "closing" };
	char num[8];

	if (m->type == CASA_MSG_AGENT_CONN_TABLE)
		field("Resync", "id %" PRIu32 ", flags 0x%04X%s%s", m->agent.list.resync_id,
		      m->agent.list.flags,
		      m->agent.list.flags & CASA_AGENT_TBL_FIRST ? " FIRST" : "",
		      m->agent.list.flags & CASA_AGENT_TBL_LAST ? " LAST" : "");
	field("Connections", "%u", m->agent.list.n);
	for (unsigned i = 0; i < m->agent.list.n; i++) {
		struct casa_agent_conn c;

		casa_agent_conn_get(m, i, &c);
		printf("      %s:%u > %s:%u %s %s\n", ip_str(c.client).s, c.client_port,
		       ip_str(c.vip).s, c.vip_port, proto_str(c.protocol, num, sizeof(num)),
		       m->type == CASA_MSG_AGENT_CONN_TABLE ? state[c.state < 3 ? c.state : 0] :
							      end[c.state < 4 ? c.state : 0]);
	}
}

static void print_agent(const struct view *v)
{
	const struct casa_msg *m = v->m;
	const struct casa_agent_load *l = &m->agent.load;

	switch (m->type) {
	case CASA_MSG_AGENT_REGISTER:
	case CASA_MSG_AGENT_REGISTER_ACK:
		print_agent_register(m);
		break;
	case CASA_MSG_AGENT_SERVICES:
	case CASA_MSG_AGENT_READY:
		print_agent_services(m);
		break;
	case CASA_MSG_AGENT_CONN_END:
	case CASA_MSG_AGENT_CONN_TABLE:
		print_agent_conns(m);
		break;
	case CASA_MSG_AGENT_LOAD:
		field("Capacity (WLM)", "%u of 64", l->capacity);
		field("QoS Fraction", "%.4f", l->qos / 10000.0);
		field("Active Connections", "%" PRIu32, l->active);
		field("CPU Idle", "%.1f %%", l->cpu_idle / 10.0);
		field("CPU Pressure avg10", "%.2f", l->pressure / 100.0);
		field("Retransmits", "%" PRIu32, l->retrans);
		break;
	default:
		field("Sender ID", "0x%08" PRIX32, m->agent.keepalive.sender_id);
		field("Sequence", "%" PRIu32, m->agent.keepalive.seq);
		field("Time", "%" PRIu32 " ms", m->agent.keepalive.time_ms);
		break;
	}
}

static const struct tlv_printer tlv_printers[] = {
	{ CASA_TLV_WILDCARD, CASA_HAS_WILDCARD, print_wildcard },
	{ CASA_TLV_FIXED, CASA_HAS_FIXED, print_fixed },
	{ CASA_TLV_WILDCARD_AUX, CASA_HAS_AUX, print_aux },
	{ CASA_TLV_ACTION, CASA_HAS_ACTION, print_action },
	{ CASA_TLV_IP_PACKET, CASA_HAS_IP_PACKET, print_ip_packet },
	{ CASA_TLV_HELLO, CASA_HAS_HELLO, print_hello },
	{ CASA_TLV_HELLO_ACK, CASA_HAS_HELLO_ACK, print_hello_ack },
	{ CASA_TLV_TICKLE, CASA_HAS_TICKLE, print_tickle },
	{ CASA_TLV_STATS, CASA_HAS_STATS, print_stats },
	{ CASA_TLV_SENDER_INFO, CASA_HAS_SENDER_INFO, print_sender_info },
	{ CASA_TLV_NAME, CASA_HAS_NAME, print_name },
	{ CASA_TLV_PKT_EXCERPT, CASA_HAS_PKT_EXCERPT, print_excerpt },
	{ CASA_TLV_DISPATCH_INFO, CASA_HAS_DISPATCH_INFO, print_dispatch_info },
	{ CASA_MSG_AGENT_REGISTER, CASA_HAS_AGENT, print_agent },
	{ CASA_MSG_AGENT_REGISTER_ACK, CASA_HAS_AGENT, print_agent },
	{ CASA_MSG_AGENT_SERVICES, CASA_HAS_AGENT, print_agent },
	{ CASA_MSG_AGENT_READY, CASA_HAS_AGENT, print_agent },
	{ CASA_MSG_AGENT_CONN_END, CASA_HAS_AGENT, print_agent },
	{ CASA_MSG_AGENT_LOAD, CASA_HAS_AGENT, print_agent },
	{ CASA_MSG_AGENT_CONN_TABLE, CASA_HAS_AGENT, print_agent },
	{ CASA_MSG_AGENT_KEEPALIVE, CASA_HAS_AGENT, print_agent },
	{ CASA_TLV_AUTH, CASA_HAS_AUTH, print_auth },
};

/* The printer of a TLV the decoder took; NULL for one it skipped. Each type
 * occurs at most once in a decoded message (CASA_E_DUP), so the presence bit
 * names this very TLV. */
static const struct tlv_printer *printer_for(uint16_t type, uint32_t present)
{
	for (size_t i = 0; i < sizeof(tlv_printers) / sizeof(tlv_printers[0]); i++)
		if (tlv_printers[i].type == type)
			return (present & tlv_printers[i].present) ? &tlv_printers[i] : NULL;
	return NULL;
}

static void print_tlv(const struct view *v, size_t off, uint16_t type, uint16_t tlen)
{
	const struct tlv_printer *tp = printer_for(type, v->m->present);
	const char *name = casa_tlv_name(type);

	if (tp) {
		printf("  %s (0x%04X) at offset %zu, length %u\n", name, type, off, tlen);
		tp->print(v);
	} else if (strcmp(name, "unknown") == 0) {
		printf("  TLV 0x%04X at offset %zu, length %u: unknown optional TLV, skipped\n",
		       type, off, tlen);
	} else {
		printf("  %s (0x%04X) at offset %zu, length %u: not allowed in %s, skipped\n", name,
		       type, off, tlen, casa_msg_type_name(v->m->type));
	}
}

/* ---- whole messages ------------------------------------------------------- */

/* "2001-07-16 17:54:26.608493 1.1.1.2:1637 > 9.67.156.73:1637 (GRE a > b): " */
static void print_origin(const struct origin *o)
{
	if (o->captured)
		printf("%s.%06ld ", utc_str(o->ts.tv_sec).s, (long)o->ts.tv_usec);
	if (o->udp)
		printf("%s:%u > %s:%u", ip_str(o->src).s, o->sport, ip_str(o->dst).s, o->dport);
	if (o->udp && o->gre)
		printf(" (GRE %s > %s)", ip_str(o->gre_src).s, ip_str(o->gre_dst).s);
	if (o->udp)
		printf(": ");
}

/* The TLVs in wire order. casa_decode has checked the framing (spec 8
 * step 3), so this walk only repeats the steps it proved safe. */
static void print_detail(const struct origin *o, const struct view *v)
{
	const struct casa_msg *m = v->m;
	size_t off = CASA_HDR_LEN;

	print_origin(o);
	printf("CASA %s (0x%04X), length %zu, %u TLV%s\n", casa_msg_type_name(m->type), m->type,
	       v->len, m->tlv_count, m->tlv_count == 1 ? "" : "s");
	while (off + CASA_TLV_HDR_LEN <= v->len) {
		uint16_t tlen = be16(v->buf + off + 2);

		print_tlv(v, off, be16(v->buf + off), tlen);
		off += ((size_t)tlen + 3) & ~(size_t)3;
	}
	if (m->skipped_tlvs)
		printf("  skipped %u unknown TLV%s\n", m->skipped_tlvs,
		       m->skipped_tlvs == 1 ? "" : "s");
}

/* "a.b.c.d/24" for a contiguous mask, else "a.b.c.d/m.m.m.m". */
static void addr_mask(struct sbuf *b, uint32_t addr, uint32_t mask)
{
	unsigned bits = 0;

	while (bits < 32 && (mask & (0x80000000u >> bits)))
		bits++;
	if (bits == 32 || (uint32_t)(mask << bits) == 0)
		sb_printf(b, "%s/%u", ip_str(addr).s, bits);
	else
		sb_printf(b, "%s/%s", ip_str(addr).s, ip_str(mask).s);
}

static void summary_affinity(struct sbuf *b, const struct casa_msg *m)
{
	const struct casa_affinity *a = &m->aff;
	char num[8], crit[96];

	if (m->present & CASA_HAS_WILDCARD) {
		addr_mask(b, a->src, a->src_mask);
		sb_printf(b, ":%u > ", a->src_port);
		addr_mask(b, a->dst, a->dst_mask);
		sb_printf(b, ":%u", a->dst_port);
	} else {
		sb_printf(b, "%s:%u > %s:%u", ip_str(a->src).s, a->src_port, ip_str(a->dst).s,
			  a->dst_port);
	}
	sb_printf(b, " %s fwd %s ttl %u%s", proto_str(a->protocol, num, sizeof(num)),
		  ip_str(a->fwd).s, a->ttl, a->ttl ? "" : " (delete)");
	if (m->present & CASA_HAS_ACTION)
		sb_printf(b, ", interest %s:%u %s", ip_str(m->action.interest_addr).s,
			  m->action.interest_port,
			  casa_criteria_format(m->action.criteria, crit, sizeof(crit)));
}

static void summary_hello(struct sbuf *b, const struct casa_msg *m)
{
	const struct casa_hello *h = &m->hello;
	char flags[96];

	sb_printf(b, "%s 0x%08" PRIX32 " epoch %" PRIu32 " flags %s", casa_role_name(h->role),
		  h->sender_id, h->epoch, casa_hello_flags_format(h->flags, flags, sizeof(flags)));
	if (m->present & CASA_HAS_HELLO_ACK)
		sb_printf(b, ", peer 0x%08" PRIX32 " epoch %" PRIu32, h->peer_sender_id,
			  h->peer_epoch);
	if (m->present & CASA_HAS_NAME) {
		sb_printf(b, ", name \"");
		name_str(b, &m->name);
		sb_printf(b, "\"");
	}
}

static void summary_tickle(struct sbuf *b, const struct casa_msg *m)
{
	const struct casa_tickle *t = &m->tickle;
	char num[8], crit[96];

	sb_printf(b, "%s:%u > %s:%u %s matched %s", ip_str(t->src).s, t->src_port, ip_str(t->dst).s,
		  t->dst_port, proto_str(t->protocol, num, sizeof(num)),
		  casa_criteria_format(t->matched, crit, sizeof(crit)));
}

static void summary_body(struct sbuf *b, const struct casa_msg *m)
{
	if (m->present & (CASA_HAS_WILDCARD | CASA_HAS_FIXED))
		summary_affinity(b, m);
	else if (m->present & CASA_HAS_IP_PACKET)
		ip_flow(b, m->ip_pkt, m->ip_pkt_len);
	else if (m->present & (CASA_HAS_HELLO | CASA_HAS_HELLO_ACK))
		summary_hello(b, m);
	else if (m->present & CASA_HAS_TICKLE)
		summary_tickle(b, m);
	else if (m->present & CASA_HAS_STATS)
		sb_printf(b, "sender 0x%08" PRIX32 " interval %" PRIu32 " s, %u counters",
			  m->stats.sender_id, m->stats.interval, m->stats.count);
}

static const char *verify_word(const struct view *v)
{
	if (!v->checked)
		return "";
	return v->verify == CASA_OK ? " verified" : " FAILED";
}

/* One line per message, like tcpdump without -v. */
static void print_summary(const struct origin *o, const struct view *v)
{
	const struct casa_msg *m = v->m;
	char text[512];
	struct sbuf b = { text, sizeof(text), 0 };

	text[0] = '\0';
	summary_body(&b, m);
	if (m->present & CASA_HAS_AUTH)
		sb_printf(&b, ", auth %s key %u seq %" PRIu64 "%s", casa_auth_alg_name(m->auth.alg),
			  m->auth.key_id, m->auth.seq, verify_word(v));
	if (m->skipped_tlvs)
		sb_printf(&b, ", skipped %u unknown TLV%s", m->skipped_tlvs,
			  m->skipped_tlvs == 1 ? "" : "s");
	print_origin(o);
	printf("CASA %s, length %zu: %s\n", casa_msg_type_name(m->type), v->len, text);
}

/* -X: the message bytes in the seed's trace layout, which casadump reads back. */
static void print_hexdump(const uint8_t *buf, size_t len)
{
	for (size_t off = 0; off < len; off += 16) {
		printf("  %06zX", off);
		for (size_t i = off; i < len && i < off + 16; i++)
			printf("%s%02X", (i - off) % 4 == 0 ? " " : "", buf[i]);
		putchar('\n');
	}
}

/* The one error line of a failed message: "casadump: packet 3: <what>". */
PRINTF_LIKE(3, 4)
static void fail(struct dump *d, const struct origin *o, const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "casadump: %s %lu: ", o->unit, o->number);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	d->failures++;
}

static void fail_casa(struct dump *d, const struct origin *o, enum casa_err err, size_t off)
{
	fail(d, o, "%s (%s) at offset %zu", casa_strerror(err), casa_err_name(err), off);
}

/* The receiver's clock for casa_verify: the capture time, else now. */
static uint32_t verify_now(const struct origin *o)
{
	return (uint32_t)(o->captured ? o->ts.tv_sec : time(NULL));
}

static void dump_message(struct dump *d, const struct origin *o, const uint8_t *buf, size_t len)
{
	struct casa_msg m;
	struct view v = { &m, buf, len, d->auth != NULL, CASA_OK };
	enum casa_err err = casa_decode(buf, len, d->opt->max_len, &m);

	if (err != CASA_OK) {
		fail_casa(d, o, err, m.err_offset);
		return;
	}
	if (d->auth)
		v.verify = casa_verify(d->auth, buf, len, &m, verify_now(o));
	if (d->opt->quiet)
		print_summary(o, &v);
	else
		print_detail(o, &v);
	if (d->opt->hexdump)
		print_hexdump(buf, len);
	if (v.verify != CASA_OK)
		fail_casa(d, o, v.verify, (m.present & CASA_HAS_AUTH) ? m.auth.offset : len);
}

/* ---- IPv4, GRE and UDP ------------------------------------------------------ */

/* An IPv4 header checked far enough to find its payload. */
struct ipv4 {
	uint32_t src, dst;
	uint8_t proto;
	uint16_t frag_off; /* bytes */
	bool more_frags;
	const uint8_t *payload;
	size_t payload_len;  /* captured */
	size_t payload_wire; /* total length - header length */
};

static bool ipv4_parse(const uint8_t *p, size_t caplen, struct ipv4 *ip)
{
	size_t ihl, total;

	if (caplen < IPV4_HDR_MIN || (p[0] >> 4) != 4)
		return false;
	ihl = (size_t)(p[0] & 0x0F) * 4;
	total = be16(p + 2);
	if (ihl < IPV4_HDR_MIN || ihl > caplen || total < ihl)
		return false;
	ip->src = be32(p + 12);
	ip->dst = be32(p + 16);
	ip->proto = p[9];
	ip->frag_off = (uint16_t)((be16(p + 6) & IP_FRAG_MASK) * 8);
	ip->more_frags = be16(p + 6) & IP_FLAG_MF;
	ip->payload = p + ihl;
	ip->payload_wire = total - ihl;
	ip->payload_len = (total < caplen ? total : caplen) - ihl;
	return true;
}

static enum seen dump_ipv4(struct dump *d, struct origin *o, const uint8_t *p, size_t caplen,
			   unsigned depth);

static void set_udp_origin(struct origin *o, const struct ipv4 *ip, const uint8_t *udp)
{
	o->udp = true;
	o->src = ip->src;
	o->dst = ip->dst;
	o->sport = be16(udp);
	o->dport = be16(udp + 2);
}

/* The CASA message is the UDP length minus 8, never the frame length
 * (spec 3): Ethernet padding and trailers are not CASA data. */
static enum seen dump_udp(struct dump *d, struct origin *o, const struct ipv4 *ip)
{
	const uint8_t *u = ip->payload;
	size_t ulen;

	if (ip->payload_len < UDP_HDR_LEN)
		return SEEN_NOTHING;
	if (be16(u) != d->opt->port && be16(u + 2) != d->opt->port)
		return SEEN_NOTHING;
	set_udp_origin(o, ip, u);
	ulen = be16(u + 4);
	if (ulen < UDP_HDR_LEN || ulen > ip->payload_wire) {
		fail(d, o, "bad UDP length %zu (IP payload %zu bytes)", ulen, ip->payload_wire);
		return SEEN_CASA;
	}
	if (ulen > ip->payload_len) {
		fail(d, o, "capture truncated: %zu of %zu CASA bytes captured",
		     ip->payload_len - UDP_HDR_LEN, ulen - UDP_HDR_LEN);
		return SEEN_CASA;
	}
	dump_message(d, o, u + UDP_HDR_LEN, ulen - UDP_HDR_LEN);
	return SEEN_CASA;
}

static size_t gre_header_len(uint16_t flags)
{
	return GRE_HDR_MIN + ((flags & GRE_F_CSUM) ? 4 : 0) + ((flags & GRE_F_KEY) ? 4 : 0) +
	       ((flags & GRE_F_SEQ) ? 4 : 0);
}

/* GRE (RFC 2784/2890) around IPv4, as the routers of seed 6.10 send interest packets. */
static enum seen dump_gre(struct dump *d, struct origin *o, const struct ipv4 *ip, unsigned depth)
{
	uint16_t flags;
	size_t hlen;

	if (ip->payload_len < GRE_HDR_MIN)
		return SEEN_NOTHING;
	flags = be16(ip->payload);
	if ((flags & (GRE_VERSION_MASK | GRE_F_ROUTING)) || be16(ip->payload + 2) != ETHERTYPE_IPV4)
		return SEEN_NOTHING;
	hlen = gre_header_len(flags);
	if (ip->payload_len < hlen)
		return SEEN_NOTHING;
	o->gre = true;
	o->gre_src = ip->src;
	o->gre_dst = ip->dst;
	return dump_ipv4(d, o, ip->payload + hlen, ip->payload_len - hlen, depth + 1);
}

/* casadump does not reassemble: say so for fragments that may hold CASA. */
static enum seen note_fragment(const struct dump *d, const struct origin *o, const struct ipv4 *ip)
{
	char num[8];

	if (ip->frag_off == 0 &&
	    (ip->payload_len < UDP_HDR_LEN || ip->proto != IP_PROTO_UDP ||
	     (be16(ip->payload) != d->opt->port && be16(ip->payload + 2) != d->opt->port)))
		return SEEN_NOTHING;
	if (o->captured)
		printf("%s.%06ld ", utc_str(o->ts.tv_sec).s, (long)o->ts.tv_usec);
	printf("%s > %s: IP %s fragment, offset %u%s: skipped (not reassembled)\n",
	       ip_str(ip->src).s, ip_str(ip->dst).s, proto_str(ip->proto, num, sizeof(num)),
	       ip->frag_off, ip->more_frags ? ", more fragments" : "");
	return SEEN_NOTE;
}

static enum seen dump_ipv4(struct dump *d, struct origin *o, const uint8_t *p, size_t caplen,
			   unsigned depth)
{
	struct ipv4 ip;

	if (!ipv4_parse(p, caplen, &ip))
		return SEEN_NOTHING;
	if (ip.proto != IP_PROTO_UDP && ip.proto != IP_PROTO_GRE)
		return SEEN_NOTHING;
	if (ip.frag_off != 0 || ip.more_frags)
		return note_fragment(d, o, &ip);
	if (ip.proto == IP_PROTO_UDP)
		return dump_udp(d, o, &ip);
	return depth == 0 ? dump_gre(d, o, &ip, depth) : SEEN_NOTHING;
}

/* ---- link layers: each finds the IPv4 header or says there is none --------- */

typedef bool link_fn(const uint8_t *p, size_t caplen, size_t *l3off);

/* An EtherType, followed through one 802.1Q / 802.1ad tag. */
static bool ethertype_ipv4(const uint8_t *p, size_t caplen, size_t type_off, size_t *l3off)
{
	uint16_t type;

	if (caplen < type_off + 2)
		return false;
	type = be16(p + type_off);
	if (type == ETHERTYPE_VLAN || type == ETHERTYPE_QINQ) {
		type_off += VLAN_TAG_LEN;
		if (caplen < type_off + 2)
			return false;
		type = be16(p + type_off);
	}
	*l3off = type_off + 2;
	return type == ETHERTYPE_IPV4;
}

static bool link_ether(const uint8_t *p, size_t caplen, size_t *l3off)
{
	return ethertype_ipv4(p, caplen, ETH_HDR_LEN - 2, l3off);
}

static bool link_sll(const uint8_t *p, size_t caplen, size_t *l3off)
{
	if (caplen < SLL_HDR_LEN || be16(p + SLL_HDR_LEN - 2) != ETHERTYPE_IPV4)
		return false;
	*l3off = SLL_HDR_LEN;
	return true;
}

static bool link_sll2(const uint8_t *p, size_t caplen, size_t *l3off)
{
	if (caplen < SLL2_HDR_LEN || be16(p) != ETHERTYPE_IPV4)
		return false;
	*l3off = SLL2_HDR_LEN;
	return true;
}

static bool link_raw(const uint8_t *p, size_t caplen, size_t *l3off)
{
	*l3off = 0;
	return caplen > 0 && (p[0] >> 4) == 4;
}

static link_fn *link_for(int dlt)
{
	static const struct {
		int dlt;
		link_fn *fn;
	} links[] = {
		{ DLT_EN10MB, link_ether },    { DLT_LINUX_SLL, link_sll },
		{ DLT_LINUX_SLL2, link_sll2 }, { DLT_RAW, link_raw },
		{ DLT_IPV4, link_raw },
	};

	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++)
		if (links[i].dlt == dlt)
			return links[i].fn;
	return NULL;
}

/* ---- capture files ---------------------------------------------------------- */

static void dump_frame(struct dump *d, link_fn *link, const struct pcap_pkthdr *h, const uint8_t *p,
		       unsigned long number)
{
	struct origin o = { .unit = "packet", .number = number, .captured = true, .ts = h->ts };
	size_t l3off;

	if (link(p, h->caplen, &l3off))
		dump_ipv4(d, &o, p + l3off, h->caplen - l3off, 0);
}

static void pcap_fail(const char *file, const char *err)
{
	size_t n = strlen(file);

	fflush(stdout);
	// libpcap names the file in some messages ("x: No such file ...") and not in others
	if (strncmp(err, file, n) == 0 && err[n] == ':')
		fprintf(stderr, "casadump: %s\n", err);
	else
		fprintf(stderr, "casadump: %s: %s\n", file, err);
}

/* The link layer of an open capture, or NULL (and the error line) if unsupported. */
static link_fn *pcap_link(pcap_t *pc, const char *file)
{
	link_fn *link = link_for(pcap_datalink(pc));
	const char *name = pcap_datalink_val_to_name(pcap_datalink(pc));
	char err[96];

	if (link)
		return link;
	if (name)
		snprintf(err, sizeof(err), "link type %s (%d) not supported", name,
			 pcap_datalink(pc));
	else
		snprintf(err, sizeof(err), "link type %d not supported", pcap_datalink(pc));
	pcap_fail(file, err);
	return NULL;
}

static int run_pcap(struct dump *d, const char *file)
{
	char errbuf[PCAP_ERRBUF_SIZE] = "";
	pcap_t *pc =
		pcap_open_offline_with_tstamp_precision(file, PCAP_TSTAMP_PRECISION_MICRO, errbuf);
	struct pcap_pkthdr *h;
	const u_char *p;
	unsigned long n = 0;
	link_fn *link;
	int rc = 0;

	if (!pc) {
		pcap_fail(file, errbuf);
		return 1;
	}
	link = pcap_link(pc, file);
	while (link && (rc = pcap_next_ex(pc, &h, &p)) == 1)
		dump_frame(d, link, h, p, ++n);
	if (link && rc == PCAP_ERROR) {
		pcap_fail(file, pcap_geterr(pc));
		d->failures++;
	}
	pcap_close(pc);
	return !link || d->failures ? 1 : 0;
}

/* ---- hex input --------------------------------------------------------------- */

struct hex_out {
	uint8_t *bytes;
	size_t n;
	size_t err_off; /* on error: offset of the offending character */
	char err[96];
};

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static size_t skip_space(const char *t, size_t pos, size_t end)
{
	while (pos < end && is_space(t[pos]))
		pos++;
	return pos;
}

static size_t token_end(const char *t, size_t pos, size_t end)
{
	while (pos < end && !is_space(t[pos]))
		pos++;
	return pos;
}

static bool all_hex(const char *t, size_t pos, size_t end)
{
	for (; pos < end; pos++)
		if (!isxdigit((unsigned char)t[pos]))
			return false;
	return true;
}

/* The seed's trace layout: a 6-digit offset, then groups of 2..8 digits. */
static bool is_trace_line(const char *t, size_t pos, size_t end)
{
	size_t e = token_end(t, pos, end), g, ge;

	if (e - pos != TRACE_OFFSET_DIGITS || !all_hex(t, pos, e))
		return false;
	g = skip_space(t, e, end);
	ge = token_end(t, g, end);
	return ge - g >= 2 && ge - g <= 8 && (ge - g) % 2 == 0 && all_hex(t, g, ge);
}

static int hex_err(struct hex_out *o, size_t off, const char *what, char c)
{
	o->err_off = off;
	if (isprint((unsigned char)c))
		snprintf(o->err, sizeof(o->err), "%s '%c'", what, c);
	else
		snprintf(o->err, sizeof(o->err), "%s '\\x%02x'", what, (unsigned char)c);
	return -1;
}

static int hex_val(char c)
{
	return isdigit((unsigned char)c) ? c - '0' : tolower((unsigned char)c) - 'a' + 10;
}

/* One token: an optional 0x, then an even number of hex digits. */
static int hex_token(const char *t, size_t pos, size_t end, struct hex_out *o)
{
	if (end - pos > 2 && t[pos] == '0' && (t[pos + 1] == 'x' || t[pos + 1] == 'X'))
		pos += 2;
	for (size_t i = pos; i < end; i++)
		if (!isxdigit((unsigned char)t[i]))
			return hex_err(o, i, "bad hex character", t[i]);
	if ((end - pos) % 2)
		return hex_err(o, end - 1, "odd number of hex digits: unpaired", t[end - 1]);
	for (; pos < end; pos += 2) {
		if (o->n == BYTES_MAX)
			return hex_err(o, pos, "more than 65535 bytes of hex: byte starting",
				       t[pos]);
		o->bytes[o->n++] = (uint8_t)(hex_val(t[pos]) << 4 | hex_val(t[pos + 1]));
	}
	return 0;
}

/* One line: '#' starts a comment line; in a trace line the offset is skipped
 * and the first token that does not start with a hex digit begins the
 * trace's character column, which ends the data. */
static int hex_line(const char *t, size_t pos, size_t end, struct hex_out *o)
{
	bool trace;

	pos = skip_space(t, pos, end);
	if (pos < end && t[pos] == '#')
		return 0;
	trace = is_trace_line(t, pos, end);
	if (trace)
		pos = skip_space(t, token_end(t, pos, end), end);
	while (pos < end) {
		size_t e = token_end(t, pos, end);

		if (trace && !isxdigit((unsigned char)t[pos]))
			break;
		if (hex_token(t, pos, e, o) < 0)
			return -1;
		pos = skip_space(t, e, end);
	}
	return 0;
}

static int hex_parse(const char *t, size_t len, struct hex_out *o)
{
	size_t pos = 0;

	o->n = 0;
	while (pos < len) {
		const char *nl = memchr(t + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - t) : len;

		if (hex_line(t, pos, end, o) < 0)
			return -1;
		pos = end + 1;
	}
	return 0;
}

/* Line and column of a text offset, for errors in standard input. */
static void text_position(const char *t, size_t off, size_t *line, size_t *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off; i++) {
		if (t[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

/* Whole input text: the arguments joined by spaces, or all of standard input. */
static char *read_text(int argc, char **argv, size_t *len, bool *from_stdin)
{
	size_t cap = 1, n = 0;
	char *t;

	*from_stdin = argc == 0 || (argc == 1 && strcmp(argv[0], "-") == 0);
	if (*from_stdin) {
		t = malloc(HEX_TEXT_MAX + 1);
		if (t)
			n = fread(t, 1, HEX_TEXT_MAX + 1, stdin);
		*len = n;
		return t;
	}
	for (int i = 0; i < argc; i++)
		cap += strlen(argv[i]) + 1;
	t = malloc(cap);
	for (int i = 0; t && i < argc; i++) {
		size_t k = strlen(argv[i]);

		memcpy(t + n, argv[i], k);
		n += k;
		t[n++] = ' ';
	}
	*len = n;
	return t;
}

static int hex_fail(const char *t, bool from_stdin, const struct hex_out *o)
{
	size_t line, col;

	fflush(stdout);
	if (!from_stdin) {
		fprintf(stderr, "casadump: %s at offset %zu\n", o->err, o->err_off);
		return 1;
	}
	text_position(t, o->err_off, &line, &col);
	fprintf(stderr, "casadump: standard input: %s at line %zu, column %zu (offset %zu)\n",
		o->err, line, col, o->err_off);
	return 1;
}

/* Hex starting with an IPv4 header (first nibble 4; a CASA message starts
 * 00 01) is a whole datagram, as in spec 10.2, and goes the capture's way. */
static void dump_hex_bytes(struct dump *d, const uint8_t *b, size_t n)
{
	struct origin o = { .unit = "message", .number = 1 };

	if (n == 0 || (b[0] >> 4) != 4) {
		dump_message(d, &o, b, n);
		return;
	}
	if (dump_ipv4(d, &o, b, n, 0) == SEEN_NOTHING)
		fail(d, &o, "IPv4 datagram carries no CASA (UDP port %u) at offset 0",
		     d->opt->port);
}

static int run_hex(struct dump *d, int argc, char **argv)
{
	struct hex_out o = { .bytes = malloc(BYTES_MAX) };
	bool from_stdin;
	size_t len;
	char *text = read_text(argc, argv, &len, &from_stdin);
	int rc = 0;

	if (!text || !o.bytes) {
		fprintf(stderr, "casadump: out of memory\n");
		rc = 1;
	} else if (from_stdin && len > HEX_TEXT_MAX) {
		fprintf(stderr, "casadump: standard input: more than %u bytes of text\n",
			HEX_TEXT_MAX);
		rc = 1;
	} else if (hex_parse(text, len, &o) < 0) {
		rc = hex_fail(text, from_stdin, &o);
	} else {
		dump_hex_bytes(d, o.bytes, o.n);
		rc = d->failures ? 1 : 0;
	}
	free(text);
	free(o.bytes);
	return rc;
}

/* ---- authentication (-k) ------------------------------------------------------ */

/* The key file holds the password octets (spec 6.9); one trailing newline,
 * as `echo` writes it, is not part of the key. */
static int key_load(const char *path, struct casa_key *k)
{
	char err[320];

	if (casa_key_file_read(path, k, err, sizeof(err)) == 0)
		return 0;
	fprintf(stderr, "casadump: %s\n", err);
	return -1;
}

static int auth_setup(struct dump *d)
{
	struct casa_key key = { .alg = d->opt->alg, .id = d->opt->key_id };
	struct casa_auth_params params;
	int rc;

	if (key_load(d->opt->key_file, &key) < 0)
		return -1;
	casa_auth_params_default(&params);
	params.freshness_s = d->opt->freshness_s;
	d->auth = casa_auth_create(&params);
	if (!d->auth) {
		fprintf(stderr, "casadump: cannot create the key context: %s\n", strerror(errno));
		return -1;
	}
	rc = casa_auth_set_key(d->auth, &key, (uint32_t)time(NULL));
	if (rc < 0) {
		fprintf(stderr, "casadump: %s: key refused: %s\n", d->opt->key_file, strerror(-rc));
		return -1;
	}
	return 0;
}

/* ---- command line --------------------------------------------------------------- */

static const char usage_text[] =
	"usage: casadump [-qX] [-m MAXLEN] [-k KEYFILE [-a md5|sha256] [-i KEYID] [-t SECONDS]]\n"
	"                [-x] [HEX ... | -]\n"
	"       casadump [-qX] [-m MAXLEN] [-p PORT] [-k ...] -r FILE\n";

static const char help_text[] =
	"Decode CASA messages (casalb-casa/1) from hex or from a capture file.\n"
	"\n"
	"  HEX ...      hex of one message: arguments joined, spaces and 0x allowed, or the\n"
	"               seed's trace layout (\"000010 00000000 09439D11 ...\"); lines starting\n"
	"               with # are comments. Hex starting with an IPv4 header is a datagram.\n"
	"  -x           the arguments are hex (the default); none or - reads standard input\n"
	"  -r FILE      read a pcap or pcapng file; decode every UDP datagram from or to the\n"
	"               CASA port (Ethernet, one VLAN tag, Linux cooked v1/v2, raw IPv4;\n"
	"               GRE is followed; fragments are noted and skipped)\n"
	"  -p PORT      CASA UDP port (default 1637)\n"
	"  -m MAXLEN    receive limit in bytes (default 9216, at most 65507)\n"
	"  -k KEYFILE   verify CASALB_AUTH with the key in KEYFILE (one trailing newline dropped)\n"
	"  -a ALG       key algorithm: md5 or sha256 (default sha256)\n"
	"  -i KEYID     key id 0..255 (default 1)\n"
	"  -t SECONDS   check timestamps against the capture time (or now) within SECONDS\n"
	"  -q           one line per message\n"
	"  -X           also print each message in hex\n"
	"  -h           this help\n"
	"\n"
	"Exit status: 0 when every message decoded (and verified with -k), 1 when any failed\n"
	"(one line on standard error each), 2 for a usage error.\n";

static bool parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && s[0] != '-' && *out >= min && *out <= max;
}

PRINTF_LIKE(1, 2)
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "casadump: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s", usage_text);
	return 2;
}

static int parse_alg(const char *s, struct options *opt)
{
	if (strcmp(s, "md5") == 0)
		opt->alg = CASA_AUTH_HMAC_MD5;
	else if (strcmp(s, "sha256") == 0)
		opt->alg = CASA_AUTH_HMAC_SHA256;
	else
		return usage_error("-a: unknown algorithm '%s' (md5 or sha256)", s);
	return 0;
}

/* One option with an argument. Returns 0, or the exit status of a usage error. */
static int parse_arg_option(int c, const char *arg, struct options *opt)
{
	unsigned long v;

	switch (c) {
	case 'r':
		opt->pcap_file = arg;
		return 0;
	case 'k':
		opt->key_file = arg;
		return 0;
	case 'a':
		return parse_alg(arg, opt);
	case 'i':
		if (!parse_ulong(arg, 0, 255, &v))
			return usage_error("-i: key id '%s' is not 0..255", arg);
		opt->key_id = (uint8_t)v;
		return 0;
	case 't':
		if (!parse_ulong(arg, 1, UINT32_MAX, &v))
			return usage_error("-t: '%s' is not a number of seconds", arg);
		opt->freshness_s = (uint32_t)v;
		return 0;
	case 'm':
		if (!parse_ulong(arg, CASA_HDR_LEN, CASA_MSG_MAX_HARD, &v))
			return usage_error("-m: '%s' is not 4..65507", arg);
		opt->max_len = v;
		return 0;
	case 'p':
		if (!parse_ulong(arg, 1, 65535, &v))
			return usage_error("-p: '%s' is not a port 1..65535", arg);
		opt->port = (uint16_t)v;
		return 0;
	default:
		return usage_error("unknown option -%c", c);
	}
}

/* Returns -1 to go on, else the exit status (help, usage error). */
static int parse_options(int argc, char **argv, struct options *opt)
{
	int c, rc;

	*opt = (struct options){ .alg = CASA_AUTH_HMAC_SHA256,
				 .key_id = 1,
				 .port = CASA_PORT_DEFAULT };
	opterr = 0;
	while ((c = getopt(argc, argv, ":hqXxr:p:m:k:a:i:t:")) != -1) {
		char optstr[3] = { '-', (char)optopt, '\0' };

		switch (c) {
		case 'h':
			printf("%s\n%s", usage_text, help_text);
			return 0;
		case 'q':
			opt->quiet = true;
			break;
		case 'X':
			opt->hexdump = true;
			break;
		case 'x':
			break; // hex arguments are the default input
		case ':':
			return usage_error("option %s needs an argument", optstr);
		case '?':
			return usage_error("unknown option %s", optstr);
		default:
			rc = parse_arg_option(c, optarg, opt);
			if (rc)
				return rc;
		}
	}
	if (opt->pcap_file && optind < argc)
		return usage_error("hex arguments cannot be combined with -r (%s)", argv[optind]);
	if (!opt->key_file && opt->freshness_s)
		return usage_error("-t needs -k");
	return -1;
}

int main(int argc, char **argv)
{
	struct options opt;
	struct dump d = { .opt = &opt };
	int rc = parse_options(argc, argv, &opt);

	if (rc >= 0)
		return rc;
	if (opt.key_file && auth_setup(&d) < 0) {
		if (d.auth)
			casa_auth_destroy(d.auth);
		return 1;
	}
	if (opt.pcap_file)
		rc = run_pcap(&d, opt.pcap_file);
	else
		rc = run_hex(&d, argc - optind, argv + optind);
	if (d.auth)
		casa_auth_destroy(d.auth);
	if (fflush(stdout) != 0)
		rc = 1;
	return rc;
}
