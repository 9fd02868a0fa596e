# SPDX-License-Identifier: GPL-2.0
#
# Sourced by patchgen's guest scripts (runtime checks, benchmarks): the
# generated programs, counted once they have stopped coming and going.

# How many generated programs (named nf_hook_<hooks>) bpftool lists.
nf_progs() { bpftool prog show 2> /dev/null | grep -c ' name nf_hook_'; }

# The ids of the generated programs, one per line.
nf_prog_ids() { bpftool prog show 2> /dev/null | sed -n 's/^\([0-9]*\): .* name nf_hook_.*/\1/p'; }

# Wait (at most $1 seconds) until none of the programs with ids $2... is
# listed any more.
nf_progs_gone() {
	local tries=$(($1 * 5)) left id gone

	shift
	for _ in $(seq 1 "$tries"); do
		left=$(nf_prog_ids) gone=1
		for id in "$@"; do
			echo "$left" | grep -qx "$id" && gone=0
		done
		[ $gone = 1 ] && return 0
		sleep 0.2
	done
	return 1
}

# Wait (at most $1 seconds, default 60) until every dispatcher change
# queued so far has been made.  The work item makes them in order: a
# marker program, made and dropped now, is released once the changes
# queued before it are done.  Its hook sequence (five base chains at one
# location of a namespace of its own) is one no other check builds, so it
# shares its program with nobody.
nf_drain() {
	local ns=nf-drain-$$ before marker

	[ -e /proc/sys/net/netfilter/nf_hook_bpf ] || return 0   # no generator
	ip netns add $ns || return 1
	# After the namespace: hooks that modules register in every new
	# namespace (iptables tables) are not the marker.
	before=$(nf_prog_ids)
	ip netns exec $ns nft -f - <<-EOF || { ip netns del $ns; return 1; }
	table ip nf_drain {
		chain c1 { type filter hook output priority 1; }
		chain c2 { type filter hook output priority 2; }
		chain c3 { type filter hook output priority 3; }
		chain c4 { type filter hook output priority 4; }
		chain c5 { type filter hook output priority 5; }
	}
	EOF
	marker=$(comm -13 <(echo "$before" | sort) <(nf_prog_ids | sort))
	ip netns exec $ns nft delete table ip nf_drain
	ip netns del $ns
	if [ -z "$marker" ]; then
		echo "nf_drain: the marker got no program of its own" >&2
		return 1
	fi
	# shellcheck disable=SC2086 # the ids, one word each
	nf_progs_gone "${1:-60}" $marker && return 0
	echo "nf_drain: marker program(s) $marker still there after ${1:-60}s" >&2
	return 1
}

# What command $1 prints, once the dispatcher's queue has been worked
# off (nf_drain) and it has printed the same for a second (at most $2
# seconds each, default 20).  The series moves programs in and out of
# its BPF dispatcher from a work item, one RCU grace period per change,
# and releases a replaced program only after that: right after hooks
# change, programs still come and go.
settled() {
	local prev cur same=0 tries=$((${2:-20} * 5))

	nf_drain "${2:-20}" || true
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
