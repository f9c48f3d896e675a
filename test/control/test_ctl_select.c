/*
 * test_ctl_select.c - selection tables (ctl_select.c): smooth weighted round
 * robin keeps proportions exactly over one cycle, spreads each target's
 * turns (no runs: the paired-connection case of seed 002), scales long
 * sequences down, and skips zero weights.
 */
#include <CUnit/Basic.h>
#include <string.h>

#include "ctl.h"

static void count(const uint32_t *seq, uint32_t n, unsigned *c, unsigned k)
{
	memset(c, 0, k * sizeof(*c));
	for (uint32_t i = 0; i < n; i++)
		c[seq[i]]++;
}

static void test_proportions(void)
{
	/* The redbook's observed splits: 1/3/3 and 1/2/2. */
	static const uint32_t w1[] = { 1, 3, 3 }, w2[] = { 1, 2, 2 };
	uint32_t seq[64];
	unsigned c[3];
	uint32_t n = ctl_select_swrr(w1, 3, seq, 64);

	CU_ASSERT_EQUAL(n, 7u);
	count(seq, n, c, 3);
	CU_ASSERT(c[0] == 1 && c[1] == 3 && c[2] == 3);
	n = ctl_select_swrr(w2, 3, seq, 64);
	CU_ASSERT_EQUAL(n, 5u);
	count(seq, n, c, 3);
	CU_ASSERT(c[0] == 1 && c[1] == 2 && c[2] == 2);
}

static void test_spread(void)
{
	/* 5,1,1: a a b a c a a: never three a in a row within a cycle. */
	static const uint32_t w[] = { 5, 1, 1 };
	uint32_t seq[16];
	uint32_t n = ctl_select_swrr(w, 3, seq, 16);
	unsigned run = 0, worst = 0;

	CU_ASSERT_EQUAL(n, 7u);
	for (uint32_t i = 0; i < n; i++) {
		run = seq[i] == 0 ? run + 1 : 0;
		worst = run > worst ? run : worst;
	}
	CU_ASSERT(worst <= 2);
	/* Equal weights: strict alternation, so two connections opened
	 * together by one client go to two targets. */
	{
		static const uint32_t e[] = { 1, 1 };

		n = ctl_select_swrr(e, 2, seq, 16);
		CU_ASSERT(n == 2 && seq[0] != seq[1]);
	}
}

static void test_zero_and_scaling(void)
{
	static const uint32_t z[] = { 0, 4, 0 }, big[] = { 1000000, 1 };
	uint32_t seq[1024];
	unsigned c[3];
	uint32_t n = ctl_select_swrr(z, 3, seq, 1024);

	CU_ASSERT_EQUAL(n, 1u); /* weights reduced by their gcd */
	count(seq, n, c, 3);
	CU_ASSERT(c[1] == n && c[0] == 0 && c[2] == 0);
	n = ctl_select_swrr(big, 2, seq, 1024);
	CU_ASSERT(n <= 1024 && n > 0);
	count(seq, n, c, 2);
	CU_ASSERT(c[1] >= 1); /* a small weight never rounds to nothing */
	CU_ASSERT(c[0] > 500);
	CU_ASSERT_EQUAL(ctl_select_swrr((const uint32_t[]){ 0, 0 }, 2, seq, 16), 0u);
}

int main(void)
{
	CU_pSuite s;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	s = CU_add_suite("ctl_select", NULL, NULL);
	CU_add_test(s, "proportions (redbook 1/3/3, 1/2/2)", test_proportions);
	CU_add_test(s, "spread: no runs", test_spread);
	CU_add_test(s, "zero weights and scaling", test_zero_and_scaling);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_tests_failed() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
