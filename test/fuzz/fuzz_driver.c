/*
 * fuzz_driver.c - run LLVMFuzzerTestOneInput over files, without libFuzzer.
 *
 * usage: fuzz_casa_decode_driver FILE|DIR ...
 *
 * A file whose name ends in ".hex" holds a golden vector (test/data/casa:
 * "# comment" lines, then hex); any other file is raw bytes, as libFuzzer
 * writes corpus entries and crash artifacts. A directory stands for its
 * regular files, in name order, except hidden ones and "*.md" notes; a
 * missing directory is skipped. A broken property traps inside the entry
 * point, so a regression shows as a crash of this program.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DRIVER_MAX_INPUT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Vector format: '#' lines are comments, whitespace is ignored. In place. */
static int hex_decode(const char *path, uint8_t *buf, size_t *len)
{
	size_t out = 0, digits = 0;
	bool comment = false, line_start = true;

	for (size_t i = 0; i < *len; i++) {
		int c = buf[i], v;

		if (line_start && c == '#')
			comment = true;
		line_start = c == '\n';
		if (c == '\n')
			comment = false;
		if (comment || c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		v = hex_digit(c);
		if (v < 0) {
			fprintf(stderr, "%s: bad hex character at offset %zu\n", path, i);
			return -1;
		}
		buf[out] = (uint8_t)(digits % 2 ? buf[out] << 4 | v : v);
		out += digits++ % 2;
	}
	if (digits % 2) {
		fprintf(stderr, "%s: odd number of hex digits\n", path);
		return -1;
	}
	*len = out;
	return 0;
}

static int run_file(const char *path)
{
	uint8_t *buf = malloc(DRIVER_MAX_INPUT);
	FILE *f = fopen(path, "rb");
	size_t len = 0;
	int rc = -1;

	if (!buf || !f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		goto out;
	}
	len = fread(buf, 1, DRIVER_MAX_INPUT, f);
	if (ends_with(path, ".hex") && hex_decode(path, buf, &len) < 0)
		goto out;
	LLVMFuzzerTestOneInput(buf, len);
	rc = 0;
out:
	if (f)
		fclose(f);
	free(buf);
	return rc;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Every regular file of a directory, in name order. Returns inputs run or -1. */
static int run_dir(const char *dir)
{
	struct dirent **list;
	int n = scandir(dir, &list, NULL, NULL), ran = 0, rc = 0;

	if (n < 0)
		return errno == ENOENT ? 0 : -1;
	qsort(list, (size_t)n, sizeof(list[0]), name_cmp);
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, list[i]->d_name);
		if (list[i]->d_name[0] != '.' && !ends_with(path, ".md") && stat(path, &st) == 0 &&
		    S_ISREG(st.st_mode)) {
			if (run_file(path) < 0)
				rc = -1;
			ran++;
		}
		free(list[i]);
	}
	free(list);
	return rc < 0 ? -1 : ran;
}

int main(int argc, char **argv)
{
	int total = 0, failed = 0;

	for (int i = 1; i < argc; i++) {
		struct stat st;
		int n;

		if (stat(argv[i], &st) < 0) {
			printf("%s: absent, skipped\n", argv[i]);
			n = 0;
		} else if (S_ISDIR(st.st_mode)) {
			n = run_dir(argv[i]);
		} else {
			n = run_file(argv[i]) < 0 ? -1 : 1;
		}
		if (n < 0)
			failed++;
		else
			total += n;
	}
	printf("fuzz_casa_decode: %d inputs, properties held%s\n", total,
	       failed ? "; some inputs could not be read" : "");
	return failed ? 1 : 0;
}
