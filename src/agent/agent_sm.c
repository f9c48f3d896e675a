/*
 * agent_sm.c - the Service Managers an agent may talk to: the primary and
 * its backups, from -s flags (agent.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "agent.h"

/* One address of a list: its first len characters. */
static int sm_parse_one(const char *p, size_t len, uint32_t *addr)
{
	char one[INET_ADDRSTRLEN];
	struct in_addr in;

	if (len == 0 || len >= sizeof(one))
		return -EINVAL;
	memcpy(one, p, len);
	one[len] = '\0';
	if (inet_pton(AF_INET, one, &in) != 1 || in.s_addr == 0)
		return -EINVAL;
	*addr = ntohl(in.s_addr);
	return 0;
}

static bool sm_known(const uint32_t *list, unsigned n, uint32_t addr)
{
	for (unsigned i = 0; i < n; i++)
		if (list[i] == addr)
			return true;
	return false;
}

int agent_sm_list_add(const char *text, uint32_t *list, unsigned *n, unsigned max)
{
	unsigned had = *n;
	const char *p = text;
	int rc = text && *text ? 0 : -EINVAL;

	while (rc == 0) {
		size_t len = strcspn(p, ",");
		uint32_t addr;

		rc = sm_parse_one(p, len, &addr);
		if (rc == 0 && !sm_known(list, *n, addr)) {
			if (*n < max)
				list[(*n)++] = addr;
			else
				rc = -E2BIG;
		}
		if (rc != 0 || p[len] == '\0')
			break;
		p += len + 1;
	}
	// All or nothing: a bad list adds none of its addresses.
	if (rc != 0)
		*n = had;
	return rc;
}
