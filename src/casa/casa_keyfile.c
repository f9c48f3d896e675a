/*
 * casa_keyfile.c - the one reader of key files (and other one-line secret
 * files) for every CASA endpoint: the Service Manager, its configuration
 * check, casalb-agent and casadump read a key the same way.
 */
#include "casa.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *casa_file_first_line(const char *path, char *buf, size_t cap, size_t *len)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	const char *why = NULL, *nl;
	size_t got = 0;
	struct stat st;
	ssize_t r = 0;

	if (fd < 0 || fstat(fd, &st) != 0)
		why = strerror(errno);
	else if (!S_ISREG(st.st_mode))
		why = "not a regular file";
	while (!why && got < cap && (r = read(fd, buf + got, cap - got)) > 0)
		got += (size_t)r;
	if (!why && r < 0)
		why = strerror(errno);
	if (fd >= 0)
		close(fd);
	if (why)
		return why;
	nl = memchr(buf, '\n', got);
	if (!nl && got == cap) {
		*len = SIZE_MAX;
		return NULL;
	}
	*len = nl ? (size_t)(nl - buf) : got;
	if (*len > 0 && buf[*len - 1] == '\r')
		(*len)--;
	return NULL;
}

int casa_key_file_read(const char *path, struct casa_key *k, char *err, size_t errlen)
{
	char line[CASA_KEY_MAX + 2]; // the key, CR and LF
	size_t len = 0;
	const char *why = casa_file_first_line(path, line, sizeof(line), &len);
	int rc = 0;

	if (why) {
		snprintf(err, errlen, "key file %s: %s", path, why);
		rc = -1;
	} else if (len == 0 || len > CASA_KEY_MAX) {
		snprintf(err, errlen, "key file %s: 1..%d octets on the first line", path,
			 CASA_KEY_MAX);
		rc = -1;
	} else {
		k->len = (uint8_t)len;
		memcpy(k->bytes, line, len);
	}
	explicit_bzero(line, sizeof(line));
	return rc;
}
