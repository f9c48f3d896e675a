/*
 * fp_test_util.h - helpers shared by the fast path's tests and benchmark:
 * hex to bytes, and the Internet checksum in its plainest form (RFC 1071,
 * big-endian words) as a reference independent of src/fastpath.
 */
#ifndef FP_TEST_UTIL_H
#define FP_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <CUnit/Basic.h>

/* Bytes of the hex string h (no spaces) into out[0..cap); returns the count. */
static inline size_t fpt_hex(const char *h, uint8_t *out, size_t cap)
{
	size_t n = 0;

	for (; h[0] && h[1] && n < cap; h += 2) {
		unsigned v;

		if (sscanf(h, "%2x", &v) != 1)
			break;
		out[n++] = (uint8_t)v;
	}
	return n;
}

static inline uint16_t fpt_csum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;

	for (size_t i = 0; i < n; i += 2)
		s += (uint32_t)(p[i] << 8) + (i + 1 < n ? p[i + 1] : 0);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* Recompute the IPv4 header checksum of the packet at ip. */
static inline void fpt_ip_fix(uint8_t *ip)
{
	uint16_t c;

	ip[10] = ip[11] = 0;
	c = fpt_csum(ip, (size_t)(ip[0] & 0xf) * 4);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
}

struct fpt_case {
	const char *name;
	CU_TestFunc fn;
};

/* Run one CUnit suite of n cases verbosely; the exit status of main. */
static inline int fpt_run(const char *suite, CU_InitializeFunc init, CU_CleanupFunc fini,
			  const struct fpt_case *cases, size_t n)
{
	CU_pSuite s;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite(suite, init, fini);
	for (size_t i = 0; i < n; i++)
		CU_add_test(s, cases[i].name, cases[i].fn);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_tests_failed() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}

#endif /* FP_TEST_UTIL_H */
