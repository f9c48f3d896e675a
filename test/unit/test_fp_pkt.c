/*
 * test_fp_pkt.c - the fast path's per-packet steps (fp_pkt.h) byte-exact,
 * without DPDK: the redbook's trace 299/300 TTL decrement, its trace 299
 * outer GRE header, RFC 2890 options, the checksum against a reference,
 * every parse verdict's name, and every truncation of good frames.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "fp_pkt.h"
#include "fp_test_util.h"

static void test_ttl_dec_redbook(void)
{
	uint8_t ip[64], want[64];

	fpt_hex("45300030B66E40007F06F92909439C6809439D110AD30017", ip, sizeof(ip));
	fpt_hex("45300030B66E40007E06FA2909439C6809439D110AD30017", want, sizeof(want));
	CU_ASSERT_EQUAL(fp_csum(ip, 20), 0);
	fp_ip_ttl_dec(ip);
	CU_ASSERT(memcmp(ip, want, 24) == 0); // TTL 7F -> 7E, checksum F929 -> FA29
}

static void test_ttl_dec_matches_recompute(void)
{
	uint8_t ip[20];
	uint64_t x = 88172645463325252ULL;

	for (int n = 0; n < 20000; n++) {
		uint16_t c;

		for (int i = 0; i < 20; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			ip[i] = (uint8_t)x;
		}
		ip[0] = 0x45;
		ip[8] = (uint8_t)(ip[8] | 2); // TTL >= 2
		ip[10] = ip[11] = 0;
		c = fpt_csum(ip, 20);
		ip[10] = (uint8_t)(c >> 8);
		ip[11] = (uint8_t)c;
		fp_ip_ttl_dec(ip);
		if (fpt_csum(ip, 20) != 0) {
			CU_FAIL("incremental checksum disagrees with a recompute");
			break;
		}
	}
}

static void test_csum_reference(void)
{
	uint8_t buf[101];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 37 + 11);
	for (size_t n = 0; n <= sizeof(buf); n++)
		CU_ASSERT_EQUAL(fp_csum(buf + (n & 1), n - (n & 1)),
				fpt_csum(buf + (n & 1), n - (n & 1)));
	CU_ASSERT_EQUAL(fp_csum20(buf + 1), fpt_csum(buf + 1, 20));
}

/* Trace 299's outer header: 9.67.157.136 -> 9.67.156.1, id B9EA, TTL 254,
 * 108 bytes, checksum B668, then GRE 00000800. */
static void test_gre_redbook_outer(void)
{
	uint8_t inner[128], out[160], want[32];
	struct fp_gre_params g = {
		.dst_mac = { 2, 0, 0, 0, 0, 1 },
		.src_mac = { 2, 0, 0, 0, 0, 2 },
		.src = 0x09439D88,
		.dst = 0x09439C01,
		.ttl = 254,
		.tos = 0,
		.df = 0,
		.outer_id = 0xB9EA,
	};
	size_t n;

	n = fpt_hex("4500005402750000FF11119501010102"
		    "09439C49"
		    "0665066500400000"
		    "0001060106010034"
		    "45300030B66E4000"
		    "7F06F92909439C68"
		    "09439D110AD30017"
		    "7674862300000000"
		    "70024000EF9D0000"
		    "020405B401010402",
		    inner, sizeof(inner));
	CU_ASSERT_EQUAL_FATAL(n, 84u);
	CU_ASSERT_EQUAL(fp_gre_hdr_len(0), 38u);
	CU_ASSERT_EQUAL(fp_gre_write(out, &g, inner, (uint16_t)n), 0);
	fpt_hex("4500006CB9EA0000FE2FB66809439D8809439C0100000800", want, sizeof(want));
	CU_ASSERT(memcmp(out + 14, want, 24) == 0);
	CU_ASSERT(memcmp(out, g.dst_mac, 6) == 0 && memcmp(out + 6, g.src_mac, 6) == 0);
	CU_ASSERT(out[12] == 0x08 && out[13] == 0x00);
}

static void test_gre_options_and_copies(void)
{
	uint8_t inner[48], out[64], tmpl[64], again[64];
	static const uint8_t dummy[20] = { 0x45 };
	struct fp_gre_params g = {
		.src = 0x09439C49,
		.dst = 0x09439C4A,
		.flags = FP_GRE_F_KEY | FP_GRE_F_SEQ,
		.key = 0x01020304,
		.seq = 0x0A0B0C0D,
		.ttl = 0,
		.tos = -1,
		.df = -1,
		.outer_id = 7,
	};

	fpt_hex("45300030B66E40007E06FA2909439C6809439D110AD3001776748623000000007002400"
		"0EF9D0000020405B401010402",
		inner, sizeof(inner));
	CU_ASSERT_EQUAL(fp_gre_hdr_len(g.flags), 46u);
	fp_gre_write(out, &g, inner, 48);
	CU_ASSERT_EQUAL(out[15], 0x30); // TOS copied
	CU_ASSERT_EQUAL(out[20], 0x40); // DF copied
	CU_ASSERT_EQUAL(out[22], 126);  // TTL copied
	CU_ASSERT_EQUAL((out[16] << 8) | out[17], 20 + 12 + 48);
	CU_ASSERT(memcmp(out + 34, "\x30\x00\x08\x00\x01\x02\x03\x04\x0a\x0b\x0c\x0d", 12) == 0);
	CU_ASSERT_EQUAL(fpt_csum(out + 14, 20), 0);
	// The per-packet form from a template gives the same bytes.
	fp_gre_write(tmpl, &g, dummy, 0);
	fp_gre_apply(again, tmpl, 46, &g, inner, 48);
	CU_ASSERT(memcmp(out, again, 46) == 0);
	// Fixed rules: DF clear, TOS 0x10, TTL 64.
	g.df = 0;
	g.tos = 0x10;
	g.ttl = 64;
	fp_gre_write(out, &g, inner, 48);
	CU_ASSERT(out[15] == 0x10 && out[20] == 0 && out[22] == 64);
	CU_ASSERT_EQUAL(fp_gre_write(out, &g, inner, 65535 - 20), -1); // too long
}

static void test_verdict_names(void)
{
	for (unsigned i = 0; i < FP_V__COUNT; i++) {
		const char *a = fp_verdict_name((enum fp_verdict)i);

		CU_ASSERT_PTR_NOT_NULL_FATAL(a);
		CU_ASSERT(strlen(a) > 1);
		for (unsigned j = 0; j < i; j++)
			CU_ASSERT(strcmp(a, fp_verdict_name((enum fp_verdict)j)) != 0);
	}
	CU_ASSERT_STRING_EQUAL(fp_verdict_name(FP_V_DROP_IP_IHL), "drop_ip_ihl");
}

/* Every prefix of a good frame is a drop, read within its bytes only. */
static void test_truncations(void)
{
	static const char *frames[] = {
		("020000000001020000000002080045300030B66E40007F06F92909439C6809439D110AD30017"
		 "767486230000000070024000EF9D0000020405B401010402"),
		("02000000000102000000000281000064080045300030B66E40007F06F92909439C6809439D11"
		 "0AD30017767486230000000070024000EF9D0000020405B401010402"),
		("ffffffffffff0200000000010806000108000604000102000000000109439c68000000000000"
		 "09439d11"),
	};

	for (size_t f = 0; f < sizeof(frames) / sizeof(frames[0]); f++) {
		uint8_t full[256];
		size_t n = fpt_hex(frames[f], full, sizeof(full));
		struct fp_pkt p;

		CU_ASSERT_EQUAL(fp_parse(full, (uint32_t)n, &p), FP_V_OK);
		for (size_t len = 0; len < n; len++) {
			uint8_t *exact = malloc(len ? len : 1);
			enum fp_verdict v;

			memcpy(exact, full, len);
			v = fp_parse(exact, (uint32_t)len, &p);
			CU_ASSERT(v != FP_V_OK);
			CU_ASSERT(strncmp(fp_verdict_name(v), "drop_", 5) == 0);
			free(exact);
		}
	}
}

static void test_parse_fields(void)
{
	uint8_t f[128];
	size_t n = fpt_hex(
		"02000000000102000000000281000064080045300030B66E40007F06F92909439C6809439D11"
		"0AD3001776748623000000007002400"
		"0EF9D0000020405B401010402",
		f, sizeof(f));
	struct fp_pkt p;

	CU_ASSERT_EQUAL_FATAL(fp_parse(f, (uint32_t)n, &p), FP_V_OK);
	CU_ASSERT(p.has_vlan && p.vlan_tci == 0x64 && p.l3_off == 18);
	CU_ASSERT(p.flow.src == 0x09439C68 && p.flow.dst == 0x09439D11);
	CU_ASSERT(p.flow.sport == 2771 && p.flow.dport == 23 && p.flow.proto == 6);
	CU_ASSERT(p.tcp_flags == FP_TCP_SYN && p.ttl == 127 && p.ip_len == 48);
	CU_ASSERT(!p.is_frag && p.first_frag && p.l4_off == 38 && p.payload_len == 0);
}

int main(void)
{
	static const struct fpt_case cases[] = {
		{ "TTL decrement: redbook trace 299 -> 300", test_ttl_dec_redbook },
		{ "TTL decrement equals a recompute", test_ttl_dec_matches_recompute },
		{ "checksum against the reference", test_csum_reference },
		{ "GRE outer header: redbook trace 299", test_gre_redbook_outer },
		{ "GRE key, sequence, copied fields, template", test_gre_options_and_copies },
		{ "verdict names", test_verdict_names },
		{ "every truncation is a drop", test_truncations },
		{ "parse fields of the VLAN-tagged redbook SYN", test_parse_fields },
	};

	return fpt_run("fp_pkt", NULL, NULL, cases, sizeof(cases) / sizeof(cases[0]));
}
