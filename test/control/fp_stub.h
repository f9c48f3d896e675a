/* fp_stub.h - what the fast-path stub (fp_stub.c) records for the tests. */
#ifndef FP_STUB_H
#define FP_STUB_H

#include "fastpath.h"

#define FP_STUB_AFF 4096

struct fp_stub_frame {
	uint32_t len;
	uint8_t bytes[2048];
};

struct fp_stub {
	struct fp_affinity aff[FP_STUB_AFF];
	unsigned n_aff;
	uint64_t aff_adds, aff_dels, publishes, forwards, releases, tx_frames;
	uint32_t last_forward_target;
	struct fp_stub_frame tx; /* the last frame sent with fp_tx_frame */
	uint64_t stats_clears;   /* fp_stats_clear calls */
	/* A deep copy of the last published tables, which fp_trace reads;
	 * freed by the next publish and by fp_stub_reset. */
	struct fp_tables_desc tables;
	bool have_tables;
	uint64_t generation;
};

extern struct fp_stub fp_stub;
void fp_stub_reset(void);

#endif
