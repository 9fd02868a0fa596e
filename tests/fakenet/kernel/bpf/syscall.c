// SPDX-License-Identifier: GPL-2.0-only
#include <linux/bpf.h>

static int bpf_prog_alloc_id(struct bpf_prog *prog)
{
	return idr_alloc_cyclic(&prog_idr, prog, 1, INT_MAX, GFP_ATOMIC);
}
