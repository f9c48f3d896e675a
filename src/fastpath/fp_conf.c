/*
 * fp_conf.c - the fast path's configuration defaults (docs/fastpath.md).
 * DPDK-free, so the control room's unit tests get the real defaults
 * without the EAL.
 */
#include <stdio.h>
#include <string.h>

#include "casa.h"
#include "fastpath.h"

void fp_conf_defaults(struct fp_conf *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->lcores, sizeof(c->lcores), "0-1");
	c->rx_desc = 1024;
	c->tx_desc = 1024;
	c->burst = 32;
	c->event_ring = 16384;
	c->aff_capacity = 1u << 20;
	c->aff_idle_s = CASA_FIXED_TTL;
	c->aff_closing_s = 60;
	c->frag_capacity = 8192;
	c->frag_ttl_ms = 2000;
	c->gre.ttl = 64;
	c->gre.tos = -1;
	c->gre.df = -1;
}
