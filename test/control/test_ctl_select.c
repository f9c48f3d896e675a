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

static void test_effective(void)
{
	CU_ASSERT_EQUAL(ctl_select_effective(1, 64, 0.0, true, true), 64u);
	CU_ASSERT_EQUAL(ctl_select_effective(3, 32, 0.25, true, true), 72u);
	CU_ASSERT_EQUAL(ctl_select_effective(3, 80, 0.0, true, true), 192u); // capacity caps at 64
	CU_ASSERT_EQUAL(ctl_select_effective(3, 64, 1.0, true, true), 0u);   // all retransmits
	CU_ASSERT_EQUAL(ctl_select_effective(3, 64, 0.0, false, true), 0u);  // Rdy 0
	CU_ASSERT_EQUAL(ctl_select_effective(3, 64, 0.0, true, false), 0u);  // unhealthy
	CU_ASSERT_EQUAL(ctl_select_effective(3, 64, -2.0, true, true), 192u);
}

static void test_quotas(void)
{
	static const uint32_t w[] = { 1, 3, 3 }, tiny[] = { 1000000, 1, 1 }, z[] = { 0, 0 };
	uint32_t q[3];

	CU_ASSERT_EQUAL_FATAL(ctl_select_quotas(w, 3, 700, q), 0);
	CU_ASSERT(q[0] == 100 && q[1] == 300 && q[2] == 300);
	CU_ASSERT_EQUAL_FATAL(ctl_select_quotas(w, 3, 10, q), 0);
	CU_ASSERT_EQUAL(q[0] + q[1] + q[2], 10u);
	CU_ASSERT(q[0] >= 1 && q[1] >= 4 && q[2] >= 4);
	CU_ASSERT_EQUAL_FATAL(ctl_select_quotas(tiny, 3, 64, q), 0);
	CU_ASSERT(q[1] == 1 && q[2] == 1 && q[0] == 62); // small weights keep a slot
	CU_ASSERT_EQUAL(ctl_select_quotas(z, 2, 64, q), -1);
}

static unsigned moved(const uint32_t *a, const uint32_t *b, uint32_t n, uint32_t idx, bool *other)
{
	unsigned m = 0;

	*other = false;
	for (uint32_t i = 0; i < n; i++) {
		if (a[i] == b[i])
			continue;
		m++;
		if (a[i] != idx && b[i] != idx)
			*other = true; // a slot moved between two unchanged targets
	}
	return m;
}

/* Minimal churn: when one target's weight changes, only slots moving to or
 * from that target change; the others stay where they were. */
static void test_rebuild_churn(void)
{
	enum { SIZE = 1024 };
	uint32_t w[4] = { 2, 1, 1, 0 }, before[SIZE], after[SIZE];
	unsigned c[4];
	bool other;
	int64_t changed;

	CU_ASSERT_EQUAL(ctl_select_rebuild(before, SIZE, false, w, 3), SIZE);
	count(before, SIZE, c, 3);
	CU_ASSERT(c[0] == 512 && c[1] == 256 && c[2] == 256);
	// Target 2 doubles its weight: 2:1:2.
	memcpy(after, before, sizeof(before));
	w[2] = 2;
	changed = ctl_select_rebuild(after, SIZE, true, w, 3);
	count(after, SIZE, c, 3);
	CU_ASSERT(c[0] == 410 && c[1] == 205 && c[2] == 409);
	CU_ASSERT_EQUAL(changed, 409 - 256);
	CU_ASSERT_EQUAL(moved(before, after, SIZE, 2, &other), 409u - 256u);
	CU_ASSERT_FALSE(other);
	// A new target joins with weight 1 (2:1:2:1): only its slots move.
	memcpy(before, after, sizeof(after));
	w[3] = 1;
	changed = ctl_select_rebuild(after, SIZE, true, w, 4);
	count(after, SIZE, c, 4);
	CU_ASSERT_EQUAL(c[3], 171u);
	CU_ASSERT_EQUAL(changed, 171);
	CU_ASSERT_EQUAL(moved(before, after, SIZE, 3, &other), 171u);
	CU_ASSERT_FALSE(other);
	// Target 1 leaves (weight 0): only its slots move.
	memcpy(before, after, sizeof(after));
	w[1] = 0;
	changed = ctl_select_rebuild(after, SIZE, true, w, 4);
	count(after, SIZE, c, 4);
	CU_ASSERT_EQUAL(c[1], 0u);
	CU_ASSERT_EQUAL(moved(before, after, SIZE, 1, &other), (unsigned)changed);
	CU_ASSERT_FALSE(other);
	// Every weight zero: refused, table untouched.
	memcpy(before, after, sizeof(after));
	CU_ASSERT_EQUAL(ctl_select_rebuild(after, SIZE, true, (const uint32_t[]){ 0, 0, 0, 0 }, 4),
			-1);
	CU_ASSERT(memcmp(before, after, sizeof(after)) == 0);
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
	CU_add_test(s, "effective weight: capacity, QoS, Rdy, health", test_effective);
	CU_add_test(s, "slot quotas", test_quotas);
	CU_add_test(s, "rebuild with minimal churn", test_rebuild_churn);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_tests_failed() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failed ? 1 : 0;
}
