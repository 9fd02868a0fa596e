// SPDX-License-Identifier: GPL-2.0-only
#include <linux/bpf.h>

static void bpf_audit_prog(const struct bpf_prog *prog, unsigned int op)
{
	audit_log_format(ab, "prog-id=%u op=%s", prog->aux->id, bpf_audit_str[op]);
}

static int bpf_prog_alloc_id(struct bpf_prog *prog)
{
	return idr_alloc_cyclic(&prog_idr, prog, 1, INT_MAX, GFP_ATOMIC);
}

static bool bpf_prog_get_ok(struct bpf_prog *prog,
			    enum bpf_prog_type *attach_type, bool attach_drv)
{
	/* not an attachment, just a refcount inc, always allow */
	if (!attach_type)
		return true;

	return prog->type == *attach_type;
}

static int bpf_prog_load(union bpf_attr *attr, bpfptr_t uattr)
{
	bpf_audit_prog(prog, BPF_AUDIT_LOAD);
	return bpf_prog_new_fd(prog);
}

#define BPF_OBJ_LAST_FIELD file_flags
