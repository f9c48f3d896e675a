/*
 * test_util.h - helpers shared by the casa unit tests.
 *
 * The golden vectors of casa-protocol.md section 10 live in test/data/casa/<NAME>.hex and are read
 * at run time, so the spec's hex has one copy only. File format: line 1 "# NAME: description",
 * line 2 lowercase hex (may be empty). For negative vectors the description reads
 * "expect CASA_E_xxx" or "expect OK (skipped N)".
 *
 * The check helpers wrap CU_assertImplementation so that a failure prints what was expected and
 * what came back, not just the C expression.
 */
#ifndef TEST_UTIL_H
#define TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <CUnit/CUnit.h>

#include "casa.h"

struct tu_vec {
	char name[16];
	/* Exactly len bytes on the heap (at least one allocated), so ASan flags any read past the
	 * end of the message. */
	uint8_t *buf;
	size_t len;
	bool has_expect;      /* an "expect ..." clause was found (N files) */
	enum casa_err expect; /* N files: the listed result */
	int expect_skipped;   /* N files: listed skipped_tlvs, -1 when not given */
};

/* The directory holding the .hex files: argv[1], else $CASA_VECTOR_DIR. */
void tu_set_dir(const char *dir);
const char *tu_dir_from_args(int argc, char **argv);

/* Load test/data/casa/<name>.hex. Returns 0, or -1 after recording a failed assertion. */
int tu_load(const char *name, struct tu_vec *v);
void tu_free(struct tu_vec *v);

/* Parse hex (whitespace allowed) into out[0..cap). Returns the byte count, or -1. */
long tu_hex(const char *hex, uint8_t *out, size_t cap);

/* Heap copy of exactly len bytes (one byte allocated for len 0). Aborts on ENOMEM. */
uint8_t *tu_dup(const uint8_t *src, size_t len);
/* Exactly len heap bytes filled with 0xEE, so an encoder that leaves pad bytes unwritten shows
 * up as a byte difference and one that writes past len shows up under ASan. */
uint8_t *tu_alloc(size_t len);

/* The enum identifier of an error ("CASA_E_TLV_TRUNC"), from the test's own table, so that
 * messages do not depend on the library under test. */
const char *tu_err_ident(int err);
/* Inverse of tu_err_ident; -1 when unknown. */
int tu_err_from_ident(const char *ident);

/* Checks that record a CUnit assertion and, on failure, say expected vs. got. */
void tu_check(bool ok, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void tu_check_u64(uint64_t got, uint64_t exp, const char *file, int line, const char *what);
void tu_check_i64(long long got, long long exp, const char *file, int line, const char *what);
void tu_check_str(const char *got, const char *exp, const char *file, int line, const char *what);
void tu_check_err(int got, int exp, const char *file, int line, const char *what);
void tu_check_bytes(const uint8_t *got, size_t glen, const uint8_t *exp, size_t elen,
		    const char *file, int line, const char *what);

#define TU_CHECK(cond, ...) tu_check((cond), __FILE__, __LINE__, __VA_ARGS__)
#define TU_EQ(got, exp) tu_check_u64((uint64_t)(got), (uint64_t)(exp), __FILE__, __LINE__, #got)
#define TU_EQI(got, exp) tu_check_i64((long long)(got), (long long)(exp), __FILE__, __LINE__, #got)
#define TU_STR(got, exp) tu_check_str((got), (exp), __FILE__, __LINE__, #got)
#define TU_ERR(got, exp, what) tu_check_err((int)(got), (int)(exp), __FILE__, __LINE__, what)
#define TU_BYTES(got, glen, exp, elen, what) \
	tu_check_bytes((got), (glen), (exp), (elen), __FILE__, __LINE__, what)

/*
 * Loops over thousands of cases (truncations, mutations, random messages) record a CUnit failure
 * for the first few bad cases only, then one summary assertion, so that a systematic bug does
 * not bury the report.
 */
#define TU_BUDGET_SHOWN 8
struct tu_budget {
	unsigned total;
	unsigned bad;
};
void tu_budget_check(struct tu_budget *b, bool ok, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
void tu_budget_done(const struct tu_budget *b, const char *file, int line, const char *what);
#define TU_BUDGET(b, ok, ...) tu_budget_check((b), (ok), __FILE__, __LINE__, __VA_ARGS__)
#define TU_BUDGET_DONE(b, what) tu_budget_done((b), __FILE__, __LINE__, what)

/* Register one suite, run it in CUnit basic mode (verbose) and return the exit status:
 * 0 when every assertion passed, 1 otherwise. */
int tu_run_suite(const char *suite, CU_TestInfo *tests, int argc, char **argv);

#endif /* TEST_UTIL_H */
