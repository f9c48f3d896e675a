/*
 * casa.h - the CASA wire protocol, specification casalb-casa/1.
 *
 * Normative text: shared/docs/casa-protocol.md (cited below as "spec N.N").
 * This header is the whole contract of the casa room: plain C, no DPDK, no
 * threads, no sockets, no globals, no logging. Every function may be called
 * from any thread on objects that thread owns; nothing here blocks.
 *
 * Conventions (spec 11.2):
 *  - IPv4 addresses, masks and ports are host-order integers:
 *    9.67.157.17 is 0x09439D11. Conversion happens only at the wire.
 *  - Decoded messages point into the caller's buffer for variable-length
 *    values (IP packet, name, excerpt, digest); the buffer must outlive them.
 *  - Unknown and reserved fields are kept so that a re-encode is byte-exact.
 */
#ifndef CASA_H
#define CASA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Constants, spec 11.1. */
#define CASA_PORT_DEFAULT 1637
#define CASA_MCAST_DEFAULT 0xE0000102u /* 224.0.1.2 */
#define CASA_VERSION 0x0001
#define CASA_TLV_MANDATORY 0x8000u
#define CASA_MSG_MAX_HARD 65507u
#define CASA_MSG_MAX_DEFAULT 9216u
#define CASA_TLV_MAX 16
#define CASA_WILDCARD_TTL 60     /* s, captured (spec 7.1) */
#define CASA_WILDCARD_REFRESH 30 /* s, seed 6.8.1 */
#define CASA_FIXED_TTL 900       /* s, captured */
#define CASA_HDR_LEN 4
#define CASA_TLV_HDR_LEN 4

/* Exact TLV lengths including the 4-byte TLV header (spec 4.3). */
#define CASA_WILDCARD_LEN 36
#define CASA_FIXED_LEN 28
#define CASA_AUX_LEN 8
#define CASA_ACTION_LEN 20
#define CASA_HELLO_LEN 32
#define CASA_HELLO_ACK_LEN 40
#define CASA_TICKLE_LEN 28
#define CASA_SENDER_INFO_LEN 12
#define CASA_DISPATCH_INFO_LEN 24
#define CASA_AUTH_MD5_LEN 44
#define CASA_AUTH_SHA256_LEN 60
#define CASA_STATS_MAX 64   /* entries per report (spec 6.7) */
#define CASA_NAME_MAX 64    /* bytes of host name (spec 6.8) */
#define CASA_EXCERPT_MIN 20 /* packet bytes in PKT_EXCERPT (spec 6.5) */
#define CASA_EXCERPT_MAX 128
#define CASA_IP_PKT_MIN 20 /* IP_PACKET value bytes (spec 9) */
#define CASA_IP_PKT_MAX 65531
#define CASA_KEY_MAX 64 /* password octets (spec 6.9, MIB) */
#define CASA_DIGEST_MAX 32

enum casa_msg_type {
	CASA_MSG_WILDCARD = 0x0101,
	CASA_MSG_FIXED = 0x0102,
	CASA_MSG_IP_PACKET = 0x0601,
	CASA_MSG_HELLO = 0x7001,
	CASA_MSG_HELLO_ACK = 0x7002,
	CASA_MSG_TICKLE = 0x7003,
	CASA_MSG_STATS = 0x7004,
};

enum casa_tlv_type {
	CASA_TLV_WILDCARD = 0x8101,
	CASA_TLV_FIXED = 0x8102,
	CASA_TLV_WILDCARD_AUX = 0x0505,
	CASA_TLV_ACTION = 0x8504,
	CASA_TLV_IP_PACKET = 0x0601,
	CASA_TLV_HELLO = 0xF001,
	CASA_TLV_HELLO_ACK = 0xF002,
	CASA_TLV_TICKLE = 0xF003,
	CASA_TLV_STATS = 0xF004,
	CASA_TLV_SENDER_INFO = 0x7011,
	CASA_TLV_NAME = 0x7012,
	CASA_TLV_PKT_EXCERPT = 0x7013,
	CASA_TLV_DISPATCH_INFO = 0x7014,
	CASA_TLV_AUTH = 0xFF01,
};

/* Interest criteria bits, spec 5.6. Names print in ascending bit order. */
enum casa_interest_bits {
	CASA_INT_FIN = 0x0001,
	CASA_INT_SYN = 0x0002,
	CASA_INT_RST = 0x0004,
	CASA_INT_PSH = 0x0008,
	CASA_INT_ACK = 0x0010,
	CASA_INT_URG = 0x0020,
	CASA_INT_DATA = 0x0040,
	CASA_INT_FIRSTDATA = 0x0080,
	CASA_INT_FRAG = 0x0100,
	CASA_INT_ALLPKTS = 0x8000,
};

#define CASA_AFF_F_DISPATCH_L2 0x0002 /* inferred, weak (spec 5.7) */

/* Hello (spec 6.6). */
enum casa_role { CASA_ROLE_SM = 1, CASA_ROLE_FA = 2 };
enum casa_hello_flags {
	CASA_HELLO_WANT_WILDCARDS = 0x0001,
	CASA_HELLO_GOODBYE = 0x0002,
	CASA_HELLO_WANT_AFFINITIES = 0x0004,
};
enum casa_caps {
	CASA_CAP_L2 = 0x01,
	CASA_CAP_GRE = 0x02,
	CASA_CAP_TICKLE = 0x04,
	CASA_CAP_STATS = 0x08,
	CASA_CAP_HMAC_MD5 = 0x10,
	CASA_CAP_HMAC_SHA256 = 0x20,
	CASA_CAP_UDP = 0x40,
	CASA_CAP_FRAG = 0x80,
};

/* Dispatch info (spec 6.8). */
enum casa_dispatch_method { CASA_DISPATCH_L2 = 1, CASA_DISPATCH_GRE = 2 };
#define CASA_GRE_F_KEY 0x01
#define CASA_GRE_F_SEQ 0x02

/* Authentication algorithms (spec 6.9). */
enum casa_auth_alg { CASA_AUTH_NONE = 0, CASA_AUTH_HMAC_MD5 = 1, CASA_AUTH_HMAC_SHA256 = 2 };

/* Statistics counter ids (spec 6.7), as in `show ip casa stats`. */
enum casa_stat_id {
	CASA_STAT_WILDCARDS = 1,
	CASA_STAT_MAX_WILDCARDS = 2,
	CASA_STAT_WILDCARD_DENIES = 3,
	CASA_STAT_WILDCARD_DROPS = 4,
	CASA_STAT_PKTS_THROUGHPUT = 5,
	CASA_STAT_BYTES_THROUGHPUT = 6,
	CASA_STAT_AFFINITIES = 7,
	CASA_STAT_MAX_AFFINITIES = 8,
	CASA_STAT_CACHE_HITS = 9,
	CASA_STAT_CACHE_MISSES = 10,
	CASA_STAT_AFFINITY_DROPS = 11,
	CASA_STAT_INTEREST_TIMEOUTS = 12,
	CASA_STAT_INT_PACKET = 13,
	CASA_STAT_INT_TICKLE = 14,
	CASA_STAT_CASA_DENIES = 15,
	CASA_STAT_DROP_COUNT = 16,
	CASA_STAT_SECURITY_DROPS = 17,
	CASA_STAT_SKIPPED_TLVS = 18,
	CASA_STAT_REPLAY_DROPS = 19,
};

/*
 * Errors, spec 11.1. The decoder returns the first one met in the order of
 * spec 8; the authentication policy (casa_verify) returns the AUTH_* codes.
 */
enum casa_err {
	CASA_OK = 0,
	CASA_E_SHORT,
	CASA_E_TOO_BIG,
	CASA_E_VERSION,
	CASA_E_TLV_TRUNC,
	CASA_E_PAD,
	CASA_E_TOO_MANY,
	CASA_E_MSG_TYPE,
	CASA_E_TYPE_MISMATCH,
	CASA_E_TLV_LEN,
	CASA_E_UNSUPPORTED,
	CASA_E_DUP,
	CASA_E_MISSING,
	CASA_E_AUTH_POS,
	CASA_E_IPPKT,
	CASA_E_FIELD,
	CASA_E_AUTH_REQUIRED,
	CASA_E_AUTH_ALG,
	CASA_E_AUTH_KEYID,
	CASA_E_AUTH_BAD,
	CASA_E_AUTH_STALE,
	CASA_E_AUTH_REPLAY,
	CASA_E__COUNT
};

/* Compatibility modes for senders (spec 4.5). Receivers accept both. */
enum casa_mode { CASA_MODE_STRICT = 0, CASA_MODE_EXTENDED = 1 };

/* Presence bits in struct casa_msg.present, one per known TLV. */
enum casa_present {
	CASA_HAS_WILDCARD = 1u << 0,
	CASA_HAS_FIXED = 1u << 1,
	CASA_HAS_AUX = 1u << 2,
	CASA_HAS_ACTION = 1u << 3,
	CASA_HAS_IP_PACKET = 1u << 4,
	CASA_HAS_HELLO = 1u << 5,
	CASA_HAS_HELLO_ACK = 1u << 6,
	CASA_HAS_TICKLE = 1u << 7,
	CASA_HAS_STATS = 1u << 8,
	CASA_HAS_SENDER_INFO = 1u << 9,
	CASA_HAS_NAME = 1u << 10,
	CASA_HAS_PKT_EXCERPT = 1u << 11,
	CASA_HAS_DISPATCH_INFO = 1u << 12,
	CASA_HAS_AUTH = 1u << 13,
	CASA_HAS_AGENT = 1u << 14, /* an agent primary TLV 0x7101..0x7108: member agent */
};

/* WILDCARD_AFFINITY (0x8101) or FIXED_AFFINITY (0x8102), spec 5.1 / 5.2.
 * Fixed affinities carry masks of all-ones after decode; the wire has none. */
struct casa_affinity {
	uint16_t flags;    /* CASA_AFF_F_*; other bits kept raw */
	uint16_t protocol; /* IP protocol; 0 = any (wildcards only) */
	uint32_t src;
	uint32_t src_mask;
	uint32_t dst;
	uint32_t dst_mask;
	uint16_t src_port; /* 0 = any (wildcards) */
	uint16_t dst_port;
	uint32_t fwd; /* forward (dispatch) address; 0 = not known yet */
	uint16_t ttl; /* seconds; 0 = delete */
	uint16_t reserved;
};

/* ACTION (0x8504), spec 5.4. */
struct casa_action {
	uint32_t interest_addr;
	uint16_t interest_port;
	uint16_t criteria; /* casa_interest_bits the FA sends to the SM */
	uint16_t x;        /* unknown; equals criteria in captures; kept raw */
	uint16_t tickle;   /* casa_interest_bits that trigger a tickle */
	uint32_t dispatch; /* action dispatch address; kept raw */
};

/* CASALB_HELLO (0xF001) and CASALB_HELLO_ACK (0xF002), spec 6.6. */
struct casa_hello {
	uint8_t role;        /* casa_role */
	uint8_t ext_version; /* >= 1 */
	uint16_t flags;      /* casa_hello_flags */
	uint32_t sender_id;
	uint32_t epoch; /* seconds since 1970 at process start */
	uint32_t control_addr;
	uint16_t port;
	uint16_t hello_interval; /* s, >= 1 */
	uint16_t hold_time;      /* s, >= hello_interval */
	uint16_t reserved;
	uint32_t caps;           /* casa_caps */
	uint32_t peer_sender_id; /* HELLO_ACK only: echo of the hello */
	uint32_t peer_epoch;     /* HELLO_ACK only */
};

/* CASALB_TICKLE (0xF003), spec 6.5. */
struct casa_tickle {
	uint16_t flags;
	uint16_t protocol; /* 1..255 */
	uint32_t src;
	uint32_t dst;
	uint16_t src_port;
	uint16_t dst_port;
	uint16_t matched; /* casa_interest_bits that matched */
	uint8_t tcp_flags;
	uint8_t reserved;
	uint32_t fa_time_ms; /* FA monotonic clock, low 32 bits */
};

struct casa_stat_entry {
	uint16_t id; /* casa_stat_id; unknown ids are kept */
	uint16_t reserved;
	uint64_t value;
};

/* CASALB_STATS (0xF004), spec 6.7. */
struct casa_stats {
	uint32_t sender_id;
	uint32_t interval; /* seconds since the previous report */
	uint16_t count;    /* entries used, <= CASA_STATS_MAX */
	uint16_t reserved;
	struct casa_stat_entry entries[CASA_STATS_MAX];
};

/* CASALB_SENDER_INFO (0x7011), spec 6.8. */
struct casa_sender_info {
	uint32_t sender_id;
	uint32_t control_addr;
};

/* CASALB_NAME (0x7012): 1..64 bytes of UTF-8, no NUL. Points into the buffer. */
struct casa_name {
	const uint8_t *bytes;
	uint8_t len;
};

/* CASALB_PKT_EXCERPT (0x7013), spec 6.5. Points into the buffer. */
struct casa_excerpt {
	uint16_t orig_len; /* original IP total length */
	uint16_t reserved;
	const uint8_t *bytes;
	uint8_t len; /* 20..128 */
};

/* CASALB_DISPATCH_INFO (0x7014), spec 6.8. */
struct casa_dispatch_info {
	uint8_t method;    /* casa_dispatch_method */
	uint8_t gre_flags; /* CASA_GRE_F_* */
	uint16_t reserved;
	uint32_t tunnel_endpoint; /* non-zero for GRE */
	uint32_t gre_key;
	uint8_t nexthop_mac[6]; /* zero = resolve by ARP */
	uint16_t reserved2;
};

/* CASALB_AUTH (0xFF01), spec 6.9. Filled by the decoder; checked by casa_verify. */
struct casa_auth {
	uint8_t alg; /* casa_auth_alg; other values decode, policy rejects */
	uint8_t key_id;
	uint16_t reserved;
	uint32_t sender_id;
	uint32_t epoch;
	uint64_t seq;
	uint32_t timestamp; /* sender wall clock, s since 1970 mod 2^32 */
	const uint8_t *digest;
	uint8_t digest_len; /* 16 or 32 */
	uint16_t offset;    /* offset of the TLV from the message start */
};

/*
 * ---- agent protocol (casalb-agent/1) ----------------------------------------
 *
 * The Service Manager and the casalb-agent on each target host talk over TCP
 * (design.md section 1: the XCF messaging of the seeds). Every message is a
 * CASA message (version 1 header, TLVs padded to 4 bytes, CASALB_AUTH last
 * when a key is configured) preceded by the stream length of spec 11.6.
 * Message types and primary TLVs use the reserved range 0x7101..0x71FF; each
 * message's primary TLV has the same number as the message. The whole
 * specification is docs/agent-protocol.md; the layouts (offsets from the TLV
 * start, big-endian):
 *
 * REGISTER 0x7101 (agent -> SM), length 24; NAME (the target's configured
 *   name) required; DISPATCH_INFO optional (what the agent plumbed):
 *   +4 u8 version (1)  +5 u8 flags (0)  +6 u16 reserved
 *   +8 u32 sender id   +12 u32 epoch
 *   +16 u16 keepalive interval s (>= 1)  +18 u16 hold time s (>= interval)
 *   +20 u32 capabilities (CASA_AGENT_CAP_*)
 * REGISTER_ACK 0x7102 (SM -> agent), length 24; DISPATCH_INFO optional (the
 *   SM's configured dispatch for this target, so the agent plumbs the same):
 *   +4 u8 status (CASA_AGENT_ST_*)  +5 u8 reserved  +6 u16 reserved
 *   +8 u32 SM sender id  +12 u32 SM epoch
 *   +16 u16 keepalive interval s  +18 u16 hold time s   (the SM's choice)
 *   +20 u32 target id (meaningful with status OK)
 * SERVICES 0x7103 (SM -> agent), length 8 + 8n, n <= CASA_AGENT_SERVICES_MAX:
 *   the complete set of (VIP, port, protocol) this target serves:
 *   +4 u16 n  +6 u16 reserved; entries: u32 vip, u16 port, u8 protocol,
 *   u8 dispatch (casa_dispatch_method)
 * READY 0x7104 (agent -> SM), length 8 + 12n, n <= CASA_AGENT_SERVICES_MAX:
 *   +4 u16 n  +6 u16 reserved; entries: u32 vip, u16 port, u8 protocol,
 *   u8 reserved, u32 ready (listening sockets able to accept: Rdy)
 * CONN_END 0x7105 (agent -> SM), length 8 + 16n, n <= CASA_AGENT_CONNS_MAX:
 *   +4 u16 n  +6 u16 reserved; entries (struct casa_agent_conn, 16 bytes):
 *   u32 client address, u32 VIP, u16 client port, u16 VIP port,
 *   u8 protocol, u8 state (CASA_AGENT_END_*), u16 reserved
 * LOAD 0x7106 (agent -> SM), length 20:
 *   +4 u8 capacity 0..64 (WLM-like)  +5 u8 reserved
 *   +6 u16 qos, the unhealthy fraction x 10000 (0..10000)
 *   +8 u32 active connections  +12 u16 CPU idle per mille (0..1000)
 *   +14 u16 CPU pressure avg10 x 100 (0..10000)  +16 u32 TCP retransmits
 *   in the last interval
 * CONN_TABLE 0x7107 (agent -> SM), length 12 + 16n, n <= CASA_AGENT_CONNS_MAX:
 *   one chunk of a full connection-table resync:
 *   +4 u16 flags (CASA_AGENT_TBL_FIRST, _LAST)  +6 u16 n
 *   +8 u32 resync id (the same in every chunk of one resync);
 *   entries as CONN_END, state CASA_AGENT_CONN_ESTABLISHED or _CLOSING
 * KEEPALIVE 0x7108 (both ways), length 16:
 *   +4 u32 sender id  +8 u32 sequence  +12 u32 sender time ms (low 32 bits)
 *
 * Field checks (CASA_E_FIELD): version >= 1; keepalive >= 1; hold >=
 * keepalive; status <= CASA_AGENT_ST_MAX; capacity <= 64; qos <= 10000;
 * cpu idle <= 1000; pressure <= 10000; every count n equal to the entries the
 * length holds; entry protocol 1..255; entry ports non-zero except service
 * port 0 (every port); end state 1..3; table state 1..2; dispatch 1..2.
 * NAME is allowed in REGISTER only, DISPATCH_INFO in REGISTER and
 * REGISTER_ACK, AUTH in every agent message.
 */
enum casa_agent_msg_type {
	CASA_MSG_AGENT_REGISTER = 0x7101,
	CASA_MSG_AGENT_REGISTER_ACK = 0x7102,
	CASA_MSG_AGENT_SERVICES = 0x7103,
	CASA_MSG_AGENT_READY = 0x7104,
	CASA_MSG_AGENT_CONN_END = 0x7105,
	CASA_MSG_AGENT_LOAD = 0x7106,
	CASA_MSG_AGENT_CONN_TABLE = 0x7107,
	CASA_MSG_AGENT_KEEPALIVE = 0x7108,
};
/* Primary TLVs: the same numbers (CASA_TLV_AGENT_x == CASA_MSG_AGENT_x). */
#define CASA_TLV_AGENT_FIRST 0x7101
#define CASA_TLV_AGENT_LAST 0x7108

#define CASA_AGENT_VERSION 1
#define CASA_AGENT_PORT_DEFAULT 1638
#define CASA_AGENT_SERVICES_MAX 512
#define CASA_AGENT_CONNS_MAX 2048
#define CASA_AGENT_CAPACITY_MAX 64
#define CASA_AGENT_QOS_ONE 10000 /* qos fraction 1.0 */

#define CASA_AGENT_REGISTER_LEN 24
#define CASA_AGENT_REGISTER_ACK_LEN 24
#define CASA_AGENT_LOAD_LEN 20
#define CASA_AGENT_KEEPALIVE_LEN 16
#define CASA_AGENT_SERVICE_ENTRY_LEN 8
#define CASA_AGENT_READY_ENTRY_LEN 12
#define CASA_AGENT_CONN_ENTRY_LEN 16

enum casa_agent_caps {
	CASA_AGENT_CAP_L2 = 0x01,       /* VIP on loopback, ARP suppressed */
	CASA_AGENT_CAP_GRE = 0x02,      /* GRE decapsulation (kernel or tc BPF) */
	CASA_AGENT_CAP_CONN_END = 0x04, /* reports connection ends */
	CASA_AGENT_CAP_RESYNC = 0x08,   /* sends CONN_TABLE */
	CASA_AGENT_CAP_LOAD = 0x10,     /* sends LOAD */
};

enum casa_agent_status {
	CASA_AGENT_ST_OK = 0,
	CASA_AGENT_ST_UNKNOWN_TARGET = 1, /* NAME names no configured target */
	CASA_AGENT_ST_DISPATCH = 2,       /* DISPATCH_INFO disagrees with the configuration */
	CASA_AGENT_ST_DUPLICATE = 3,      /* another live agent holds this target */
	CASA_AGENT_ST_REFUSED = 4,        /* the SM is not accepting agents (standby, full) */
	CASA_AGENT_ST_MAX = 4,
};

enum casa_agent_conn_state {
	CASA_AGENT_END_CLOSED = 1,       /* CONN_END: orderly close */
	CASA_AGENT_END_RESET = 2,        /* CONN_END: reset */
	CASA_AGENT_END_TIMEOUT = 3,      /* CONN_END: timed out */
	CASA_AGENT_CONN_ESTABLISHED = 1, /* CONN_TABLE */
	CASA_AGENT_CONN_CLOSING = 2,     /* CONN_TABLE */
};
#define CASA_AGENT_TBL_FIRST 0x0001
#define CASA_AGENT_TBL_LAST 0x0002

struct casa_agent_register {
	uint8_t version;
	uint8_t flags; /* REGISTER: flags; REGISTER_ACK: the reserved byte +5, kept raw */
	uint16_t reserved;
	uint32_t sender_id;
	uint32_t epoch;
	uint16_t keepalive_s;
	uint16_t hold_s;
	uint32_t caps;  /* REGISTER: casa_agent_caps; REGISTER_ACK: target id */
	uint8_t status; /* REGISTER_ACK only */
};

struct casa_agent_load {
	uint8_t capacity; /* 0..64 */
	uint8_t reserved;
	uint16_t qos;      /* x 10000 */
	uint32_t active;   /* connections */
	uint16_t cpu_idle; /* per mille */
	uint16_t pressure; /* avg10 x 100 */
	uint32_t retrans;
};

struct casa_agent_keepalive {
	uint32_t sender_id;
	uint32_t seq;
	uint32_t time_ms;
};

struct casa_agent_service {
	uint32_t vip;
	uint16_t port; /* 0 = every port */
	uint8_t protocol;
	uint8_t dispatch; /* SERVICES: casa_dispatch_method; READY: reserved */
	uint32_t ready;   /* READY only */
};

struct casa_agent_conn {
	uint32_t client;
	uint32_t vip;
	uint16_t client_port;
	uint16_t vip_port;
	uint8_t protocol;
	uint8_t state; /* casa_agent_conn_state */
	uint16_t reserved;
};

/* A list TLV (SERVICES, READY, CONN_END, CONN_TABLE) after decode: the
 * entries stay in the buffer; read them with the getters below. */
struct casa_agent_list {
	uint16_t flags;     /* CONN_TABLE only */
	uint16_t n;         /* entries */
	uint16_t reserved;  /* SERVICES, READY, CONN_END: +6, kept raw */
	uint32_t resync_id; /* CONN_TABLE only */
	const uint8_t *entries;
};

/* In struct casa_msg (member `agent`): the primary TLV of an agent message. */
struct casa_agent_body {
	struct casa_agent_register reg; /* REGISTER, REGISTER_ACK */
	struct casa_agent_load load;
	struct casa_agent_keepalive keepalive;
	struct casa_agent_list list; /* SERVICES, READY, CONN_END, CONN_TABLE */
};

struct casa_msg;

/* True for the agent message types 0x7101..0x7108. */
bool casa_agent_msg(uint16_t type);

/* Entry i (< list.n) of a decoded list message. Context: any. */
void casa_agent_service_get(const struct casa_msg *m, unsigned i, struct casa_agent_service *out);
void casa_agent_conn_get(const struct casa_msg *m, unsigned i, struct casa_agent_conn *out);

/*
 * Encoders: write the whole message (header, primary TLV, optional TLVs) to
 * buf and return its length, or 0 when cap is too small or a field is
 * invalid (the checks above). Sign with casa_sign afterwards; frame with
 * casa_stream_put_len. name and dispatch may be NULL where optional.
 */
size_t casa_encode_agent_register(uint8_t *buf, size_t cap, const struct casa_agent_register *r,
				  const char *name, const struct casa_dispatch_info *dispatch);
size_t casa_encode_agent_register_ack(uint8_t *buf, size_t cap, const struct casa_agent_register *r,
				      const struct casa_dispatch_info *dispatch);
/* type: SERVICES or READY. */
size_t casa_encode_agent_services(uint8_t *buf, size_t cap, uint16_t type,
				  const struct casa_agent_service *s, unsigned n);
/* type: CONN_END (flags and resync_id ignored) or CONN_TABLE. */
size_t casa_encode_agent_conns(uint8_t *buf, size_t cap, uint16_t type, uint16_t flags,
			       uint32_t resync_id, const struct casa_agent_conn *c, unsigned n);
size_t casa_encode_agent_load(uint8_t *buf, size_t cap, const struct casa_agent_load *l);
size_t casa_encode_agent_keepalive(uint8_t *buf, size_t cap, const struct casa_agent_keepalive *k);

/* A decoded message. Only the members named by `present` are meaningful. */
struct casa_msg {
	uint16_t type;            /* casa_msg_type */
	uint32_t present;         /* casa_present bits */
	struct casa_affinity aff; /* WILDCARD or FIXED */
	uint8_t aux[4];           /* WILDCARD_AUX value, opaque (spec 5.3) */
	struct casa_action action;
	const uint8_t *ip_pkt; /* IP_PACKET value: a whole IPv4 packet */
	uint16_t ip_pkt_len;
	struct casa_hello hello; /* HELLO or HELLO_ACK */
	struct casa_tickle tickle;
	struct casa_stats stats;
	struct casa_sender_info sender;
	struct casa_name name;
	struct casa_excerpt excerpt;
	struct casa_dispatch_info dispatch;
	struct casa_auth auth;
	struct casa_agent_body agent; /* agent messages (declared above) */
	unsigned tlv_count;           /* TLVs in the message, skipped ones included */
	unsigned skipped_tlvs;        /* unknown optional TLVs skipped (AUTH is never counted) */
	size_t err_offset;            /* on error: byte offset of the problem */
};

/*
 * Decode and validate one message of `len` bytes (the UDP payload), in the
 * order of spec 8. `max_len` is the receive limit: 0 means
 * CASA_MSG_MAX_DEFAULT, and values above CASA_MSG_MAX_HARD are clamped.
 * On success *msg is fully checked; on error msg->err_offset names the byte
 * where the problem was found and the rest of *msg is unspecified.
 * Never allocates and never reads outside buf[0..len).
 */
enum casa_err casa_decode(const uint8_t *buf, size_t len, size_t max_len, struct casa_msg *msg);

/*
 * Encode *msg: header, then every present TLV in canonical order (primary,
 * WILDCARD_AUX, ACTION, SENDER_INFO, NAME, PKT_EXCERPT, DISPATCH_INFO, AUTH),
 * each zero-padded to 4 bytes. AUTH is re-emitted from its fields (use
 * casa_sign to create one). In CASA_MODE_STRICT, casalb TLVs in the Cisco
 * message types 0x0101/0x0102/0x0601 are refused.
 * Returns the length written, -ENOSPC if `cap` is too small, or -EINVAL if
 * the message would not decode (bad type, missing primary TLV, bad field).
 */
int casa_encode(const struct casa_msg *msg, enum casa_mode mode, uint8_t *buf, size_t cap);

/*
 * Per-type encoders (spec 11.3): build the message in the layout of spec 6
 * and write it to buf. Return the length, or 0 if cap is too small or a
 * field is invalid. `action` may be NULL only for deletes (ttl 0).
 * The wildcard encoder always emits WILDCARD_AUX as z/OS does (spec 5.3).
 */
size_t casa_encode_wildcard(uint8_t *buf, size_t cap, const struct casa_affinity *aff,
			    const struct casa_action *action);
size_t casa_encode_fixed(uint8_t *buf, size_t cap, const struct casa_affinity *aff,
			 const struct casa_action *action);
size_t casa_encode_ip_packet(uint8_t *buf, size_t cap, const uint8_t *pkt, size_t pkt_len);
size_t casa_encode_hello(uint8_t *buf, size_t cap, uint16_t type, const struct casa_hello *hello,
			 const char *name);
size_t casa_encode_tickle(uint8_t *buf, size_t cap, const struct casa_tickle *tickle);
size_t casa_encode_stats(uint8_t *buf, size_t cap, const struct casa_stats *stats);

/* Defaults of spec 6.1 / 6.2 for an SM at interest_addr:port. */
void casa_action_wildcard_default(struct casa_action *a, uint32_t interest_addr, uint16_t port);
void casa_action_fixed_default(struct casa_action *a, uint32_t interest_addr, uint16_t port);

/* True when the two messages decode to the same content (pointed-to bytes
 * compared, pointers and err_offset ignored). */
bool casa_msg_equal(const struct casa_msg *a, const struct casa_msg *b);

/* Criteria match of spec 5.6: does a packet with these properties match? */
bool casa_criteria_match(uint16_t criteria, uint8_t tcp_flags, bool is_tcp, bool is_fragment,
			 bool has_payload, bool first_data);

/* Names. All return static strings; unknown values give "unknown". */
const char *casa_strerror(enum casa_err err);     /* "TLV truncated" */
const char *casa_err_name(enum casa_err err);     /* "CASA_E_TLV_TRUNC" */
const char *casa_err_reason(enum casa_err err);   /* metric label "tlv_trunc" */
const char *casa_msg_type_name(uint16_t type);    /* "WILDCARD" */
const char *casa_tlv_name(uint16_t type);         /* "WILDCARD_AFFINITY" */
const char *casa_stat_name(uint16_t id);          /* "Cache Hits" */
const char *casa_role_name(uint8_t role);         /* "SM", "FA" */
const char *casa_auth_alg_name(uint8_t alg);      /* "HMAC-SHA256" */
const char *casa_dispatch_method_name(uint8_t m); /* "GRE" */
const char *casa_proto_name(uint16_t proto);      /* "TCP", "UDP", or "" */

/* Format criteria as the IOS display does: "0x8100 FRAG ALLPKTS". Returns out. */
char *casa_criteria_format(uint16_t bits, char *out, size_t outlen);
/* Format hello flags / capabilities as "0x0001 WANT_WILDCARDS". Returns out. */
char *casa_hello_flags_format(uint16_t flags, char *out, size_t outlen);
char *casa_caps_format(uint32_t caps, char *out, size_t outlen);
/* Dotted quad of a host-order address. out needs 16 bytes. Returns out. */
char *casa_ip_format(uint32_t addr, char *out, size_t outlen);

/*
 * Authentication (spec 6.9): keys, signing, and the receive policy with the
 * replay window. One struct casa_auth_ctx per receiving/sending endpoint;
 * it is not thread-safe (one owner thread).
 */
struct casa_key {
	uint8_t alg; /* casa_auth_alg, not NONE */
	uint8_t id;  /* key id 0..255 */
	uint8_t len; /* 1..CASA_KEY_MAX */
	uint8_t bytes[CASA_KEY_MAX];
};

struct casa_auth_params {
	uint32_t max_senders; /* replay state entries; 0 = 4096 */
	uint32_t freshness_s; /* timestamp window; 0 = check off */
	uint32_t rollover_s;  /* previous key accepted for this long, 0..3600 */
};

struct casa_auth_ctx;

/* Default parameters: 4096 senders, 120 s freshness, 180 s rollover. */
void casa_auth_params_default(struct casa_auth_params *p);

/* Create a context with no key configured. Returns NULL and sets errno
 * (EINVAL, ENOMEM). Free with casa_auth_destroy. Allocates. */
struct casa_auth_ctx *casa_auth_create(const struct casa_auth_params *p);
void casa_auth_destroy(struct casa_auth_ctx *ctx);

/*
 * Install a key. The first key becomes current. A key with a new id becomes
 * current at once and the old current stays accepted on receive until
 * now + rollover_s (spec 6.9, "Key rollover"). Setting the current key again
 * (same id, alg and bytes) is a no-op. Returns 0, or -EINVAL for a bad
 * algorithm or length, or -EEXIST for a different key under the current id.
 */
int casa_auth_set_key(struct casa_auth_ctx *ctx, const struct casa_key *key, uint32_t now);
/*
 * The first line of a regular file, CR LF stripped, into buf (cap octets,
 * not terminated). Only a regular file is read, and only as far as buf goes,
 * so a path naming a FIFO or /dev/zero neither blocks nor fills memory.
 * Returns NULL with *len set (SIZE_MAX when the line does not end within
 * cap), or why the file cannot be read (a static string).
 */
const char *casa_file_first_line(const char *path, char *buf, size_t cap, size_t *len);
/*
 * A key file: its first line (casa_file_first_line), 1..CASA_KEY_MAX
 * octets, into key->bytes and key->len (alg and id are the caller's).
 * Returns 0, or -1 with a one-line reason naming the file in err.
 */
int casa_key_file_read(const char *path, struct casa_key *key, char *err, size_t errlen);
/* Drop all keys: back to "no key configured". */
void casa_auth_clear_keys(struct casa_auth_ctx *ctx);
/* True when a key is configured (messages must then carry CASALB_AUTH). */
bool casa_auth_enabled(const struct casa_auth_ctx *ctx);

/* Sender state: id and epoch of spec 6.6; seq is the last sequence used. */
struct casa_signer {
	uint32_t sender_id;
	uint32_t epoch;
	uint64_t seq;
};

/*
 * Append CASALB_AUTH with the current key to the message in buf[0..len)
 * (a well-formed message, 4-byte aligned, without AUTH), using the next
 * sequence number and timestamp `now`. Returns the new length, -ENOSPC if
 * cap is too small, -ENOKEY if no key is configured, -EINVAL on bad input.
 */
int casa_sign(const struct casa_auth_ctx *ctx, struct casa_signer *signer, uint8_t *buf, size_t len,
	      size_t cap, uint32_t now);

/*
 * Apply the receive policy to a message that casa_decode accepted from
 * buf[0..len): with no key configured, OK (an AUTH TLV is skipped
 * unverified); otherwise AUTH_REQUIRED, AUTH_ALG, AUTH_KEYID, AUTH_BAD
 * (constant-time digest compare), then AUTH_STALE and AUTH_REPLAY against
 * the per-sender window. Replay state changes only when OK is returned.
 * `now` is the receiver's wall clock, seconds since 1970 mod 2^32.
 */
enum casa_err casa_verify(struct casa_auth_ctx *ctx, const uint8_t *buf, size_t len,
			  const struct casa_msg *msg, uint32_t now);

/* Compute the digest of spec 6.9 over buf[0..len) with the AUTH TLV at
 * auth_offset, digest zeroed. out gets 16 or 32 bytes. 0 or -EINVAL. */
int casa_auth_digest(const struct casa_key *key, const uint8_t *buf, size_t len, size_t auth_offset,
		     uint8_t *out);

/*
 * Stream framing for the agent protocol (spec 11.6): each message is
 * preceded by a u32 big-endian length, 4..65535.
 * casa_stream_frame_len: 0 if fewer than 4 bytes are available, -EBADMSG if
 * the length is out of range, else the message length.
 */
#define CASA_STREAM_MIN 4u
#define CASA_STREAM_MAX 65535u
long casa_stream_frame_len(const uint8_t *buf, size_t avail);
int casa_stream_put_len(uint8_t *buf, size_t cap, size_t msg_len);

#endif /* CASA_H */
