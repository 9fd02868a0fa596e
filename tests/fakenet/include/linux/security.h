/* SPDX-License-Identifier: GPL-2.0-or-later */
extern int security_bpf_prog_alloc(struct bpf_prog_aux *aux);
extern void security_bpf_prog_free(struct bpf_prog_aux *aux);
