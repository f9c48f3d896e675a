/*
 * test_util.c - golden vector loading and verbose checks for the casa unit tests.
 */
#include "test_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

static const char *tu_dir = "test/data/casa";

/* The error identifiers in enum order (casa.h, spec 11.1). Kept here rather than taken from
 * casa_err_name() so that the vector files are parsed independently of the code under test. */
static const char *const tu_err_idents[] = {
	"CASA_OK",
	"CASA_E_SHORT",
	"CASA_E_TOO_BIG",
	"CASA_E_VERSION",
	"CASA_E_TLV_TRUNC",
	"CASA_E_PAD",
	"CASA_E_TOO_MANY",
	"CASA_E_MSG_TYPE",
	"CASA_E_TYPE_MISMATCH",
	"CASA_E_TLV_LEN",
	"CASA_E_UNSUPPORTED",
	"CASA_E_DUP",
	"CASA_E_MISSING",
	"CASA_E_AUTH_POS",
	"CASA_E_IPPKT",
	"CASA_E_FIELD",
	"CASA_E_AUTH_REQUIRED",
	"CASA_E_AUTH_ALG",
	"CASA_E_AUTH_KEYID",
	"CASA_E_AUTH_BAD",
	"CASA_E_AUTH_STALE",
	"CASA_E_AUTH_REPLAY",
};

_Static_assert(sizeof(tu_err_idents) / sizeof(tu_err_idents[0]) == CASA_E__COUNT,
	       "tu_err_idents must list every enum casa_err value");

void tu_set_dir(const char *dir)
{
	tu_dir = dir;
}

const char *tu_dir_from_args(int argc, char **argv)
{
	const char *env = getenv("CASA_VECTOR_DIR");

	if (argc > 1)
		return argv[1];
	if (env != NULL && env[0] != '\0')
		return env;
	return tu_dir;
}

const char *tu_err_ident(int err)
{
	if (err < 0 || err >= CASA_E__COUNT)
		return "(not an enum casa_err)";
	return tu_err_idents[err];
}

int tu_err_from_ident(const char *ident)
{
	for (int i = 0; i < CASA_E__COUNT; i++)
		if (strcmp(ident, tu_err_idents[i]) == 0)
			return i;
	return -1;
}

uint8_t *tu_dup(const uint8_t *src, size_t len)
{
	uint8_t *p = malloc(len > 0 ? len : 1);

	if (p == NULL) {
		perror("malloc");
		abort();
	}
	if (len > 0)
		memcpy(p, src, len);
	return p;
}

uint8_t *tu_alloc(size_t len)
{
	uint8_t *p = malloc(len > 0 ? len : 1);

	if (p == NULL) {
		perror("malloc");
		abort();
	}
	memset(p, 0xEE, len > 0 ? len : 1);
	return p;
}

static int tu_hex_nibble(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

long tu_hex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int hi = -1;

	for (const char *p = hex; *p != '\0'; p++) {
		int d;

		if (isspace((unsigned char)*p))
			continue;
		d = tu_hex_nibble((unsigned char)*p);
		if (d < 0 || (hi >= 0 && n >= cap))
			return -1;
		if (hi < 0) {
			hi = d;
		} else {
			out[n++] = (uint8_t)(hi << 4 | d);
			hi = -1;
		}
	}
	return hi >= 0 ? -1 : (long)n;
}

/* Decode the hex of line 2 into a heap buffer of exactly the decoded length. */
static int tu_parse_hex(const char *hex, struct tu_vec *v)
{
	size_t cap = strlen(hex) / 2;
	uint8_t *tmp = malloc(cap > 0 ? cap : 1);
	long n;

	if (tmp == NULL)
		return -1;
	n = tu_hex(hex, tmp, cap);
	if (n >= 0) {
		v->buf = tu_dup(tmp, (size_t)n);
		v->len = (size_t)n;
	}
	free(tmp);
	return n >= 0 ? 0 : -1;
}

/* "# N12: expect OK (skipped 1)" or "# N4: expect CASA_E_VERSION". */
static void tu_parse_expect(const char *comment, struct tu_vec *v)
{
	const char *p = strstr(comment, "expect ");
	char ident[48];
	int skipped, err;

	v->has_expect = false;
	v->expect_skipped = -1;
	if (p == NULL || sscanf(p, "expect %47[A-Z_]", ident) != 1)
		return;
	err = strcmp(ident, "OK") == 0 ? CASA_OK : tu_err_from_ident(ident);
	if (err < 0)
		return;
	v->has_expect = true;
	v->expect = (enum casa_err)err;
	p = strstr(p, "(skipped ");
	if (p != NULL && sscanf(p, "(skipped %d)", &skipped) == 1)
		v->expect_skipped = skipped;
}

int tu_load(const char *name, struct tu_vec *v)
{
	char path[4096], comment[1024], hex[1 << 17];
	FILE *f;

	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", name);
	snprintf(path, sizeof(path), "%s/%s.hex", tu_dir, name);
	f = fopen(path, "r");
	if (f == NULL) {
		TU_CHECK(false, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fgets(comment, sizeof(comment), f) == NULL || comment[0] != '#') {
		TU_CHECK(false, "%s: line 1 is not a '#' comment", path);
		fclose(f);
		return -1;
	}
	if (fgets(hex, sizeof(hex), f) == NULL)
		hex[0] = '\0'; /* N1: the empty message */
	fclose(f);
	if (tu_parse_hex(hex, v) != 0) {
		TU_CHECK(false, "%s: line 2 is not hex", path);
		return -1;
	}
	tu_parse_expect(comment, v);
	return 0;
}

void tu_budget_check(struct tu_budget *b, bool ok, const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	b->total++;
	if (ok)
		return;
	b->bad++;
	if (b->bad > TU_BUDGET_SHOWN)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	CU_assertImplementation(CU_FALSE, (unsigned)line, msg, file, "", CU_FALSE);
}

void tu_budget_done(const struct tu_budget *b, const char *file, int line, const char *what)
{
	// A loop that ran no case (e.g. a vector failed to load) proves nothing.
	tu_check(b->bad == 0 && b->total > 0, file, line,
		 "%s: %u of %u cases failed (first %d shown above)", what, b->bad, b->total,
		 TU_BUDGET_SHOWN);
	if (getenv("TU_VERBOSE") != NULL)
		fprintf(stderr, "[%s: %u cases, %u failed] ", what, b->total, b->bad);
}

void tu_free(struct tu_vec *v)
{
	free(v->buf);
	v->buf = NULL;
	v->len = 0;
}

void tu_check(bool ok, const char *file, int line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (ok) {
		CU_assertImplementation(CU_TRUE, (unsigned)line, "", file, "", CU_FALSE);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	// CUnit copies the condition string into its failure record.
	CU_assertImplementation(CU_FALSE, (unsigned)line, msg, file, "", CU_FALSE);
}

void tu_check_u64(uint64_t got, uint64_t exp, const char *file, int line, const char *what)
{
	tu_check(got == exp, file, line, "%s: got %llu (0x%llx), expected %llu (0x%llx)", what,
		 (unsigned long long)got, (unsigned long long)got, (unsigned long long)exp,
		 (unsigned long long)exp);
}

void tu_check_i64(long long got, long long exp, const char *file, int line, const char *what)
{
	tu_check(got == exp, file, line, "%s: got %lld, expected %lld", what, got, exp);
}

void tu_check_str(const char *got, const char *exp, const char *file, int line, const char *what)
{
	const char *q = got != NULL ? "\"" : "";

	tu_check(got != NULL && strcmp(got, exp) == 0, file, line,
		 "%s: got %s%s%s, expected \"%s\"", what, q, got != NULL ? got : "NULL", q, exp);
}

void tu_check_err(int got, int exp, const char *file, int line, const char *what)
{
	tu_check(got == exp, file, line, "%s: got %s (%d), expected %s (%d)", what,
		 tu_err_ident(got), got, tu_err_ident(exp), exp);
}

/* Hex of up to 16 bytes around off, for failure messages. */
static void tu_hex_window(const uint8_t *b, size_t len, size_t off, char *out, size_t outlen)
{
	size_t start = off >= 8 ? off - 8 : 0, used = 0;

	out[0] = '\0';
	for (size_t i = start; i < len && i < start + 16 && used + 4 < outlen; i++)
		used += (size_t)snprintf(out + used, outlen - used, "%s%02x", i == off ? "[" : "",
					 b[i]);
}

void tu_check_bytes(const uint8_t *got, size_t glen, const uint8_t *exp, size_t elen,
		    const char *file, int line, const char *what)
{
	size_t off = 0;
	char g[80], e[80];

	while (off < glen && off < elen && got[off] == exp[off])
		off++;
	if (glen == elen && off == elen) {
		tu_check(true, file, line, "%s", what);
		return;
	}
	tu_hex_window(got, glen, off, g, sizeof(g));
	tu_hex_window(exp, elen, off, e, sizeof(e));
	tu_check(false, file, line,
		 "%s: got %zu bytes, expected %zu; first difference at offset %zu: got ..%s.., "
		 "expected ..%s..",
		 what, glen, elen, off, g, e);
}

int tu_run_suite(const char *suite, CU_TestInfo *tests, int argc, char **argv)
{
	CU_SuiteInfo suites[] = {
		{ suite, NULL, NULL, NULL, NULL, tests },
		CU_SUITE_INFO_NULL,
	};
	unsigned failures;

	tu_set_dir(tu_dir_from_args(argc, argv));
	if (CU_initialize_registry() != CUE_SUCCESS || CU_register_suites(suites) != CUE_SUCCESS) {
		fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures != 0 || CU_get_error() != CUE_SUCCESS ? 1 : 0;
}
