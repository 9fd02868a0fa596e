/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef _LINUX_BPF_H
#define _LINUX_BPF_H 1

#define BPF_DISPATCHER_MAX 48 /* Fits in 2048B */

struct bpf_prog_aux {
	atomic64_t refcnt;
	u32 id;
	bool verifier_zext; /* Zero extensions has been inserted by verifier. */
	bool sleepable;
};

int bpf_prog_calc_tag(struct bpf_prog *fp);

#ifdef CONFIG_BPF_SYSCALL
void bpf_prog_inc(struct bpf_prog *prog);
void bpf_prog_put(struct bpf_prog *prog);
void bpf_prog_free_id(struct bpf_prog *prog, bool do_idr_lock);
#else /* !CONFIG_BPF_SYSCALL */
static inline void bpf_prog_put(struct bpf_prog *prog)
{
}

static inline void bpf_prog_inc(struct bpf_prog *prog)
{
}
#endif /* CONFIG_BPF_SYSCALL */

#endif /* _LINUX_BPF_H */
