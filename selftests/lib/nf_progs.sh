# SPDX-License-Identifier: GPL-2.0
#
# Sourced by patchgen's guest scripts (runtime checks, benchmarks): the
# generated programs, counted once they have stopped coming and going.

# How many generated programs (named nf_hook_<hooks>) bpftool lists.
nf_progs() { bpftool prog show 2> /dev/null | grep -c ' name nf_hook_'; }

# What command $1 prints, once it has printed the same for a second (at
# most $2 seconds, default 20).  The series moves programs in and out of
# its BPF dispatcher from a work item, one RCU grace period per change,
# and releases a replaced program only after that: right after hooks
# change, programs still come and go.
settled() {
	local prev cur same=0 tries=$((${2:-20} * 5))

	prev=$("$1")
	for _ in $(seq 1 "$tries"); do
		sleep 0.2
		cur=$("$1")
		if [ "$cur" = "$prev" ]; then
			same=$((same + 1))
			[ $same -ge 5 ] && break
		else
			same=0
		fi
		prev=$cur
	done
	echo "$prev"
}
