/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef _LINUX_BPF_H
#define _LINUX_BPF_H 1

#define BPF_DISPATCHER_MAX 48 /* Fits in 2048B */

int bpf_prog_calc_tag(struct bpf_prog *fp);
void bpf_prog_free_id(struct bpf_prog *prog, bool do_idr_lock);

#endif /* _LINUX_BPF_H */
