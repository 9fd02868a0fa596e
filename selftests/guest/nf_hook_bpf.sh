#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Runtime checks of the generated netfilter hook programs, in the guest.
# Prints KTAP; exit 0 when all pass, 1 on failure, 4 when the kernel has
# no generator (nothing to check).
#
#   programs_exist      bpftool lists nf_hook_* programs once hooks exist
#   datapath_bpf        with the switch at 1, traffic does not enter
#                       nf_hook_slow() (counted with a kprobe)
#   datapath_slow       with the switch at 0, it does
#   programs_shared     ten netns with one ruleset add programs once, not
#                       ten times
#   bridge_prerouting   bridge prerouting calls its hooks itself
#                       (nf_hook_bridge_pre()): three nft chains there add no
#                       program, the same three at bridge input add one
#   dump                the xlated program of one location calls the hooks
#   churn_traffic       hook changes while pings cross the hooks in both
#                       directions: each change regenerates a program and
#                       re-points the dispatcher (a live text poke); no
#                       ping may be lost and the kernel must not lock up
#   churn               hook register/unregister cycles across netns, while
#                       bpftool dumps every program by id (some have left
#                       their location and wait for the work item to take
#                       them out of the dispatcher): the kernel survives,
#                       the program count comes back to where it was; with
#                       kmemleak, nothing leaks
#   module_unload       hooks that live in a module, in every netns, loaded
#                       and unloaded under pings: the programs that call
#                       them directly go with them; no ping is lost and the
#                       kernel logs nothing
#   failslab            chains added and deleted while the allocations of
#                       the nft process doing it fail at random (a kernel
#                       with failslab, profile lockdep): the location still
#                       works, no program is left behind, no kernel message
#   perf_names          perf record -g of traffic through a hook: the
#                       callchains name the program (bpf_prog_<tag>_nf_hook_N)
#   audit_balanced      with audit on, every program that goes away logged a
#                       BPF LOAD before its UNLOAD, and every LOAD of a
#                       program that went away has its UNLOAD
#   lockdep_on          with lockdep (profile lockdep): still checking at the
#                       end, not switched off by a report
#
# Environment: CHURN=<cycles> (default 200), CHURN_TRAFFIC=<changes>
# (default 100), UNLOAD_ROUNDS=<loads> (default 20), FAILSLAB_CYCLES=<adds>
# (default 50), FAILSLAB_SESSIONS=<nft runs> (default 5), NF_HOOK_UNLOAD_MOD=<.ko>
# (module_unload; patchgen builds it), PATCHGEN_DUMP=<file> to keep the
# program dump.

set -u
SWITCH=/proc/sys/net/netfilter/nf_hook_bpf
TRACING=/sys/kernel/tracing
CHURN=${CHURN:-200}
CHURN_TRAFFIC=${CHURN_TRAFFIC:-100}
UNLOAD_ROUNDS=${UNLOAD_ROUNDS:-20}
FAILSLAB_CYCLES=${FAILSLAB_CYCLES:-50}
FAILSLAB_SESSIONS=${FAILSLAB_SESSIONS:-5}
sfx=$(mktemp -u XXXXXX)
n=0
failed=0
ns_list=()

ktap() { echo "$@"; }
diag() { echo "# $*"; }
result() { # name ok|fail|skip [reason]
	n=$((n + 1))
	case "$2" in
	ok) ktap "ok $n $1" ;;
	skip) ktap "ok $n $1 # SKIP ${3:-}" ;;
	*) ktap "not ok $n $1"; failed=1 ;;
	esac
	# patchgen blames what the kernel says before this mark, and after the
	# previous one, on this case.
	echo "patchgen-case-done: $n $1" > /dev/kmsg 2>/dev/null || :
}

cleanup() {
	for ns in "${ns_list[@]}"; do ip netns del "$ns" 2>/dev/null; done
	[ -n "${jl_limit:-}" ] && echo "$jl_limit" > $JIT_LIMIT
	[ -n "${jl_dir:-}" ] && { touch "$jl_dir/done"; rm -rf "$jl_dir"; }
	[ -d $TRACING/events/patchgen ] && {
		echo 0 > $TRACING/events/patchgen/enable
		echo '-:patchgen/nfslow' >> $TRACING/kprobe_events
	} 2>/dev/null
}
trap cleanup EXIT

ktap "TAP version 13"
if [ ! -e $SWITCH ]; then
	ktap "1..0 # SKIP no net.netfilter.nf_hook_bpf: kernel without the generator"
	exit 4
fi
ktap "1..14"
mountpoint -q $TRACING || mount -t tracefs nodev $TRACING 2>/dev/null

. "$(dirname "$0")/../lib/nf_progs.sh"

# Two namespaces joined by veth; "r" routes, with conntrack and a filter
# rule, so packets cross several hook locations.
mkns() {
	local ns=$1
	ip netns add "$ns" && ns_list+=("$ns")
	ip -net "$ns" link set lo up
}
# Namespaces $1 (address $3.2) and $2 ($3.1) joined by veth.
veth_pair() {
	mkns "$1"; mkns "$2"
	ip -net "$1" link add veth0 type veth peer name veth0 netns "$2"
	ip -net "$1" addr add "$3.2/24" dev veth0
	ip -net "$2" addr add "$3.1/24" dev veth0
	ip -net "$1" link set veth0 up
	ip -net "$2" link set veth0 up
}
setup_pair() {
	veth_pair "c-$sfx" "r-$sfx" 10.99.0
	ip netns exec "r-$sfx" nft -f - <<-EOF
	table inet t {
		chain in { type filter hook input priority 0; ct state new counter accept; }
		chain out { type filter hook output priority 0; counter accept; }
	}
	EOF
}

# Wait ($2 seconds at most, default 60) until nf_progs is back to count $1,
# and print the count: where the count to come back to is known, rather
# than waiting for a pause in the releases.
back_to() {
	local left

	for _ in $(seq 1 $((${2:-60} * 5))); do
		left=$(nf_progs)
		[ "$left" -eq "$1" ] && break
		sleep 0.2
	done
	echo "$left"
}
slow_hits() { awk '$1 == "nfslow" { print $2 }' $TRACING/kprobe_profile; }
ping_some() { ip netns exec "c-$sfx" ping -q -c 20 -i 0.01 -W 1 10.99.0.1 >/dev/null; }

before=$(settled nf_progs)
setup_pair
after=$(settled nf_progs)
diag "nf_hook programs: $before before the ruleset, $after after"
[ "$after" -gt "$before" ] && result programs_exist ok || result programs_exist fail

if echo 'p:patchgen/nfslow nf_hook_slow' >> $TRACING/kprobe_events 2>/dev/null &&
   echo 1 > $TRACING/events/patchgen/nfslow/enable; then
	echo 1 > $SWITCH
	h0=$(slow_hits); ping_some; h1=$(slow_hits)
	diag "switch 1: nf_hook_slow() calls during 20 pings: $((h1 - h0))"
	[ $((h1 - h0)) -eq 0 ] && result datapath_bpf ok || result datapath_bpf fail
	echo 0 > $SWITCH
	h0=$(slow_hits); ping_some; h1=$(slow_hits)
	diag "switch 0: nf_hook_slow() calls during 20 pings: $((h1 - h0))"
	[ $((h1 - h0)) -ge 40 ] && result datapath_slow ok || result datapath_slow fail
	echo 1 > $SWITCH
else
	result datapath_bpf skip "no kprobe events"
	result datapath_slow skip "no kprobe events"
fi

# The same ruleset in ten more namespaces: shared programs, not new ones.
base=$(settled nf_progs)
for i in $(seq 1 10); do
	ns="s$i-$sfx"; mkns "$ns"
	ip netns exec "$ns" nft -f - <<-EOF
	table inet t {
		chain in { type filter hook input priority 0; ct state new counter accept; }
		chain out { type filter hook output priority 0; counter accept; }
	}
	EOF
done
grown=$(settled nf_progs)
diag "ten namespaces with the same ruleset: nf_hook programs $base -> $grown"
[ $((grown - base)) -le 2 ] && result programs_shared ok || result programs_shared fail

# Programs added by three bridge chains at hook $1, in a namespace of their
# own.  Counted from after the namespace exists: hooks that modules put in
# every new namespace get programs of their own before the cache (patch 9).
bridge_chains() {
	local ns="b$1-$sfx" c0 c1 i

	mkns "$ns" || return 1
	c0=$(settled nf_progs)
	ip netns exec "$ns" nft add table bridge t || return 1
	for i in 1 2 3; do
		ip netns exec "$ns" nft add chain bridge t "c$i" \
			"{ type filter hook $1 priority $i; }" || return 1
	done
	c1=$(settled nf_progs)
	echo $((c1 - c0))
}
if pre=$(bridge_chains prerouting) && in=$(bridge_chains input); then
	diag "three bridge chains add nf_hook programs: at prerouting $pre, at input $in"
	[ "$pre" -eq 0 ] && [ "$in" -eq 1 ] && result bridge_prerouting ok ||
		result bridge_prerouting fail
else
	result bridge_prerouting skip "no nft bridge tables (CONFIG_NF_TABLES_BRIDGE?)"
fi

id=$(bpftool prog show 2>/dev/null | awk -F: '/ name nf_hook_/ { print $1; exit }')
if [ -n "$id" ] && bpftool prog dump xlated id "$id" > /tmp/nf_hook_dump.$sfx 2>&1 &&
   grep -q call /tmp/nf_hook_dump.$sfx; then
	sed 's/^/# /' /tmp/nf_hook_dump.$sfx | head -60
	[ -n "${PATCHGEN_DUMP:-}" ] && cp /tmp/nf_hook_dump.$sfx "$PATCHGEN_DUMP"
	result dump ok
else
	result dump fail
fi

# Hook changes under traffic.  nft -i makes each line its own transaction,
# so every line is a hook (un)registration without a process start.
ping_stats() { sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\1 \2/p' "$1"; }
ip netns exec "c-$sfx" ping -q -i 0.005 10.99.0.1 > /tmp/churn_ping1.$sfx 2>&1 &
p1=$!
ip netns exec "r-$sfx" ping -q -i 0.005 10.99.0.2 > /tmp/churn_ping2.$sfx 2>&1 &
p2=$!
for i in $(seq 1 "$CHURN_TRAFFIC"); do
	echo "add chain inet t ct$i { type filter hook output priority $((i % 50)); }"
	[ "$i" -gt 3 ] && echo "delete chain inet t ct$((i - 3))"
done | ip netns exec "r-$sfx" nft -i > /dev/null
sleep 1
kill -INT $p1 $p2; wait $p1 $p2
left=$(ip netns exec "r-$sfx" nft list table inet t | grep -c 'chain ct[0-9]')
read -r sent1 got1 <<< "$(ping_stats /tmp/churn_ping1.$sfx)"
read -r sent2 got2 <<< "$(ping_stats /tmp/churn_ping2.$sfx)"
diag "churn under traffic: $CHURN_TRAFFIC chains added, $left left;" \
	"pings ${got1:-0}/${sent1:-0} and ${got2:-0}/${sent2:-0} answered"
# The last echo of each pinger may be in flight when it is stopped.
if [ "$left" -eq 3 ] && [ "${sent1:-0}" -gt 0 ] && [ "${sent2:-0}" -gt 0 ] &&
   [ $((sent1 - got1)) -le 1 ] && [ $((sent2 - got2)) -le 1 ]; then
	result churn_traffic ok
else
	result churn_traffic fail
fi

# Register/unregister churn: a base chain added and removed, in turn in
# three namespaces, CHURN times.
# Meanwhile bpf(2) reaches the programs by id (GET_FD_BY_ID, then
# OBJ_GET_INFO_BY_FD for the dumps), among them released ones still queued
# for the dispatcher.
dump_all() {
	local id

	while :; do
		for id in $(bpftool prog show 2> /dev/null | sed -n 's/^\([0-9]*\): .* name nf_hook_.*/\1/p'); do
			bpftool prog dump xlated id "$id" > /dev/null 2>&1
			bpftool prog dump jited id "$id" > /dev/null 2>&1
		done
	done
}
kml=/sys/kernel/debug/kmemleak
[ -e $kml ] && echo clear > $kml
churn_ids() { bpftool prog show 2> /dev/null | sed -n 's/^\([0-9]*\): .* name \(nf_hook_[0-9]*\).*/\1 \2/p'; }
churn_base=$(settled nf_progs)
churn_ids > /tmp/churn_ids0.$sfx
dump_all &
dumper=$!
for i in $(seq 1 "$CHURN"); do
	ns="s$((i % 3 + 1))-$sfx"
	ip netns exec "$ns" nft add chain inet t churn '{ type filter hook prerouting priority 0; }' &&
		ip netns exec "$ns" nft delete chain inet t churn || break
done
kill $dumper; wait $dumper 2> /dev/null
churn_left=$(back_to "$churn_base" 30)
diag "churn: $i register/unregister cycles; programs $churn_base before, $churn_left after"
churn_ok=0
[ "$i" -eq "$CHURN" ] && [ "$churn_left" -eq "$churn_base" ] && churn_ok=1
if [ "$churn_left" -ne "$churn_base" ]; then
	churn_ids > /tmp/churn_ids1.$sfx
	diag "churn: gone: $(comm -23 <(sort /tmp/churn_ids0.$sfx) <(sort /tmp/churn_ids1.$sfx) | tr '\n' ' ')"
	diag "churn: new: $(comm -13 <(sort /tmp/churn_ids0.$sfx) <(sort /tmp/churn_ids1.$sfx) | tr '\n' ' ')"
fi
if [ -e $kml ]; then
	for ns in "${ns_list[@]}"; do ip netns del "$ns"; done
	ns_list=()
	sleep 5
	echo scan > $kml; sleep 5; echo scan > $kml
	leaks=$(grep -c 'unreferenced object' $kml)
	diag "kmemleak after churn and namespace removal: $leaks unreferenced objects"
	[ "$leaks" -gt 0 ] && sed 's/^/# /' $kml | head -40
	[ "$leaks" -eq 0 ] && [ $churn_ok -eq 1 ] && result churn ok || result churn fail
else
	[ $churn_ok -eq 1 ] && result churn ok || result churn fail
fi

# Module unload: hook functions that live in a module ($NF_HOOK_UNLOAD_MOD,
# built on the host against this kernel) and register in every namespace,
# so that the programs of the locations a ping crosses call into the
# module's text.  Loaded and unloaded UNLOAD_ROUNDS times under pings in
# both directions, which go on for a while after each unload (a reload at
# once may land at the same address and hide a stale call): the programs
# call the module while it is loaded (their dumps name its function) and
# none does after; no echo is lost but the last in flight; the hooks ran;
# the programs come back to their count; the kernel logs nothing (patchgen
# reads the log).
# The call immediates (offsets from __bpf_call_base, what the dumps print
# after "#") of the module's hook functions, read while it is loaded: after
# the unload a stale call has no name to show, but the same offset.
module_imms() {
	awk '$3 == "__bpf_call_base" { b = $1 } $3 ~ /^unload_accept_/ { f[$3] = $1 }
		END { for (n in f) print f[n] " " b }' /proc/kallsyms |
		while read -r fn base; do echo $((0x$fn - 0x$base)); done
}
calls_module() { # imm...: prints the ids of nf_hook_ programs that call one
	local id pat

	pat="call .*#($(echo "$@" | tr ' ' '|'))\$"
	for id in $(nf_prog_ids); do
		bpftool prog dump xlated id "$id" 2> /dev/null | grep -Eq "$pat" && echo "$id"
	done
}
if [ -n "${NF_HOOK_UNLOAD_MOD:-}" ]; then
	echo 1 > $SWITCH
	veth_pair "mc-$sfx" "mr-$sfx" 10.96.0
	unload_base=$(settled nf_progs)
	mark="patchgen-unload-$sfx"
	echo "$mark" > /dev/kmsg
	ip netns exec "mc-$sfx" ping -q -i 0.005 10.96.0.1 > /tmp/unload_ping1.$sfx 2>&1 &
	p1=$!
	ip netns exec "mr-$sfx" ping -q -i 0.005 10.96.0.2 > /tmp/unload_ping2.$sfx 2>&1 &
	p2=$!
	unload_done=0 callers=0 stale=0 imms=""
	for i in $(seq 1 "$UNLOAD_ROUNDS"); do
		insmod "$NF_HOOK_UNLOAD_MOD" || break
		sleep 0.3
		if [ "$i" -eq 1 ]; then
			imms=$(module_imms)
			[ -n "$imms" ] && callers=$(calls_module $imms | wc -l)
		fi
		rmmod nf_hook_unload || break
		sleep 0.5
		[ "$i" -eq "$UNLOAD_ROUNDS" ] && unload_done=1
	done
	kill -INT $p1 $p2; wait $p1 $p2
	unload_left=$(back_to "$unload_base")
	[ -n "$imms" ] && stale=$(calls_module $imms | wc -l)
	unload_calls=$(dmesg | sed -n "/$mark/,\$p" |
		sed -n 's/.*nf_hook_unload: calls=\([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
	read -r sent1 got1 <<< "$(ping_stats /tmp/unload_ping1.$sfx)"
	read -r sent2 got2 <<< "$(ping_stats /tmp/unload_ping2.$sfx)"
	diag "module unload: $UNLOAD_ROUNDS rounds (all done: $unload_done), hooks called" \
		"$unload_calls times; programs calling the module: $callers loaded, $stale" \
		"unloaded; pings ${got1:-0}/${sent1:-0} and ${got2:-0}/${sent2:-0} answered;" \
		"programs $unload_base before, $unload_left after"
	if [ $unload_done -eq 1 ] && [ "$unload_calls" -gt 0 ] && [ "$callers" -gt 0 ] &&
	   [ "$stale" -eq 0 ] && [ "$unload_left" -eq "$unload_base" ] &&
	   [ "${sent1:-0}" -gt 0 ] && [ "${sent2:-0}" -gt 0 ] &&
	   [ $((sent1 - got1)) -le 1 ] && [ $((sent2 - got2)) -le 1 ]; then
		result module_unload ok
	else
		result module_unload fail
	fi
else
	result module_unload skip "no module to load (NF_HOOK_UNLOAD_MOD; patchgen builds it)"
fi

# A task without CAP_BPF (nobody, root of a user namespace of its own)
# builds the programs of the hooks it registers, and their JIT images count
# against net.core.bpf_jit_limit for it: below the limit its location gets
# a program, past it none and the location keeps nf_hook_slow() (patch 6
# says so); its ruleset works either way.  Seven base chains at ip output
# (after an LSM's hook, if any): a sequence no other check builds, so the
# program is the namespace's own, not one shared from the cache.
JIT_LIMIT=/proc/sys/net/core/bpf_jit_limit
jl_inner='set -e
ip link set lo up
for i in 1 2 3 4 5 6 7; do
	echo "add chain ip jl c$i { type filter hook output priority $i; counter; }"
done | { echo "add table ip jl"; cat; } | nft -f -
echo $$ > "$1/pid"
while [ ! -e "$1/done" ]; do sleep 0.1; done'
# Round $1: sets jl_ids, the namespace's new programs, and jl_pkts, what
# its last chain counted during three pings over loopback.
jl_round() {
	local before pid

	rm -f "$jl_dir/pid" "$jl_dir/done"
	jl_ids="" jl_pkts=0
	before=$(nf_prog_ids | sort)
	setpriv --reuid=65534 --regid=65534 --clear-groups -- \
		unshare -Urn bash -c "$jl_inner" jl "$jl_dir" > "$jl_dir/log.$1" 2>&1 &
	for _ in $(seq 1 100); do
		[ -s "$jl_dir/pid" ] && break
		sleep 0.1
	done
	pid=$(cat "$jl_dir/pid" 2> /dev/null)
	if [ -n "$pid" ]; then
		jl_ids=$(comm -13 <(echo "$before") <(nf_prog_ids | sort) | tr '\n' ' ')
		nsenter -t "$pid" -n ping -q -c 3 -i 0.2 127.0.0.1 > /dev/null
		jl_pkts=$(nsenter -t "$pid" -n nft list chain ip jl c7 |
			sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
	fi
	touch "$jl_dir/done"
	wait $!
}
if ! setpriv --reuid=65534 --regid=65534 --clear-groups -- unshare -Urn true 2> /dev/null; then
	result jit_limit skip "no user namespaces for unprivileged users"
else
	echo 1 > $SWITCH
	jl_dir=$(mktemp -d /tmp/jitlimit.XXXXXX)
	chmod 777 "$jl_dir"
	jl_round below
	below_ids=$jl_ids below_pkts=${jl_pkts:-0}
	# shellcheck disable=SC2086 # one id per word
	nf_progs_gone 30 $below_ids || diag "jit_limit: programs $below_ids still there after 30 s"
	jl_limit=$(cat $JIT_LIMIT)
	echo 1 > $JIT_LIMIT
	jl_round past
	echo "$jl_limit" > $JIT_LIMIT
	jl_limit=""
	n_below=$(echo "$below_ids" | wc -w) n_past=$(echo "$jl_ids" | wc -w)
	diag "jit_limit: unprivileged namespace below the limit: $n_below new program(s)" \
		"($below_ids), $below_pkts packets counted; past it: $n_past new program(s)," \
		"${jl_pkts:-0} packets"
	sed 's/^/# /' "$jl_dir"/log.* | head -20
	if [ "$n_below" -ge 1 ] && [ "$n_past" -eq 0 ] &&
	   [ "$below_pkts" -ge 6 ] && [ "${jl_pkts:-0}" -ge 6 ]; then
		result jit_limit ok
	else
		result jit_limit fail
	fi
fi

# Failslab (profile lockdep): an nft process, once it runs, adds and
# deletes a base chain FAILSLAB_CYCLES times while one in ten of its slab
# allocations fails: some commands fail (ENOMEM), and program builds fail
# part way (the location keeps nf_hook_slow()).  Failures are logged with
# their stack: some must be the generator's, or the case tested nothing;
# nft itself may give up (its own netlink allocations fail too), so up to
# FAILSLAB_SESSIONS of them run until one failure hit the generator.
# Afterwards the last chain added still sees the traffic, a new chain gets
# a new program (the generator recovered), the namespace's programs go
# with it, and the kernel logs nothing.
FS=/sys/kernel/debug/failslab
failslab_set() { # probability
	echo "$1" > $FS/probability && echo -1 > $FS/times && echo 1 > $FS/interval &&
		echo 2 > $FS/verbose && echo 100000 > $FS/verbose_ratelimit_burst &&
		echo Y > $FS/task-filter && echo N > $FS/ignore-gfp-wait
}
fs_nft() { ip netns exec "fs-$sfx" nft "$@"; }
fs_wait_chain() { # chain: until it exists (60 s at most)
	for _ in $(seq 1 600); do
		fs_nft list chain inet t "$1" > /dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
# One nft session in namespace fs-$sfx, run from $fsdir (a tmpfs: a task
# whose allocations fail may die, and closing files of the guest's 9p root
# on its way out, failing part way, broke that root for every later
# command, "overlayfs: failed to get metacopy").  Adds the commands that
# failed to fs_errors.
failslab_session() {
	local pid

	rm -f "$fsdir/in" "$fsdir/out"
	mkfifo "$fsdir/in"
	(cd "$fsdir" && LC_ALL=C exec ip netns exec "fs-$sfx" "$loader" \
		--library-path "$fsdir" "$fsdir/nft" -i < in > out 2>&1) &
	pid=$!
	exec 7> "$fsdir/in"
	# Failures only once nft runs with its netlink socket, and once every
	# file it reads was looked up (a command that works, one that fails).
	fs_nft delete chain inet t finished 2> /dev/null
	echo "add chain inet t warm" >&7
	echo "delete chain inet t no_such_chain" >&7
	echo "delete chain inet t warm" >&7
	echo "add chain inet t warm2" >&7
	fs_wait_chain warm2
	fs_nft delete chain inet t warm2
	echo 1 > "/proc/$pid/make-it-fail"
	failslab_set 10
	# In a subshell: should nft give up, SIGPIPE ends the writer only.
	(
		for _ in $(seq 1 "$FAILSLAB_CYCLES"); do
			echo "add chain inet t f { type filter hook output priority 0; }"
			echo "delete chain inet t f"
		done
		echo "add chain inet t finished"
	) >&7 2> /dev/null
	# Failures off before nft exits (its way out closes files).
	fs_wait_chain finished || diag "failslab: nft gave up: $(tail -1 "$fsdir/out")"
	failslab_set 0
	exec 7>&-
	wait "$pid"
	fs_errors=$((fs_errors + $(grep -c 'Error:' "$fsdir/out") - 1))
}
if [ -d $FS ] && failslab_set 0; then
	echo 1 > $SWITCH
	fs_base=$(settled nf_progs)
	mkns "fs-$sfx"
	fs_nft add table inet t
	fsdir=$(mktemp -d)
	mount -t tmpfs "fs-$sfx" "$fsdir"
	nft_bin=$(command -v nft)
	cp "$nft_bin" "$fsdir/"
	for lib in $(ldd "$nft_bin" | awk '/=>/ { print $3 } /^\t\// { print $1 }'); do
		cp "$lib" "$fsdir/"
	done
	loader=$(ls "$fsdir"/ld-linux*)
	# The kernel log as it comes: the failures' stacks overflow the ring
	# buffer (a mark in it scrolled out, and no failure was counted).
	dmesg -w > "$fsdir/kmsg" 2>&1 &
	fs_log=$!
	fs_errors=0 fs_gen=0 fs_sessions=0
	while [ "$fs_gen" -eq 0 ] && [ "$fs_sessions" -lt "$FAILSLAB_SESSIONS" ]; do
		fs_sessions=$((fs_sessions + 1))
		failslab_session
		sleep 1
		# The generator's failures: stacks of forced failures through it.
		fs_gen=$(awk '/FAULT_INJECTION: forcing a failure/ { f = 1 }
			f && / nf_hook_bpf_/ { n++; f = 0 } END { print n + 0 }' "$fsdir/kmsg")
	done
	kill $fs_log; wait $fs_log 2> /dev/null
	umount "$fsdir"
	fs_nft list chain inet t f > /dev/null 2>&1 ||
		fs_nft add chain inet t f '{ type filter hook output priority 0; }'
	fs_nft add rule inet t f counter
	ip netns exec "fs-$sfx" ping -q -c 3 -i 0.2 -W 1 127.0.0.1 > /dev/null
	fs_seen=$(fs_nft list chain inet t f | sed -n 's/.*counter packets \([0-9]*\).*/\1/p' | tail -1)
	fs_before=$(nf_prog_ids | sort)
	fs_nft add chain inet t g '{ type filter hook output priority 1; }'
	fs_new=$(comm -13 <(echo "$fs_before") <(nf_prog_ids | sort) | wc -l)
	ip netns del "fs-$sfx"
	fs_left=$(back_to "$fs_base")
	diag "failslab: $fs_sessions nft sessions of $FAILSLAB_CYCLES add/delete cycles," \
		"$fs_errors commands failed, $fs_gen failures forced in the generator;" \
		"afterwards the chain saw ${fs_seen:-0} packets, a new chain added $fs_new" \
		"programs; programs $fs_base before, $fs_left after the namespace"
	if [ "$fs_gen" -gt 0 ] && [ "${fs_seen:-0}" -ge 6 ] && [ "$fs_new" -gt 0 ] &&
	   [ "$fs_left" -eq "$fs_base" ]; then
		result failslab ok
	else
		result failslab fail
	fi
else
	result failslab skip "no failslab in this kernel (profile lockdep has it)"
fi

# perf: the programs have kallsyms entries, so callchains through them
# name them.  Some distributions' perf is a wrapper wanting a perf_<series>
# of the running kernel; any perf binary reads another kernel's samples.
perf_bin=$(command -v perf)
"$perf_bin" --version >/dev/null 2>&1 || perf_bin=$(ls /usr/bin/perf_* 2>/dev/null | sort -V | tail -1)
if [ -n "$perf_bin" ]; then
	# A chain that takes a while per packet (200 rules), so that samples
	# land in hook functions called by the program, with it in the chain.
	veth_pair "pc-$sfx" "pr-$sfx" 10.98.0
	{
		echo "add table inet p"
		echo "add chain inet p in { type filter hook input priority 0; }"
		for i in $(seq 1 200); do echo "add rule inet p in ip saddr 10.97.$((i / 250)).$((i % 250)) counter"; done
	} | ip netns exec "pr-$sfx" nft -f -
	pdata=/tmp/perf.$sfx
	"$perf_bin" record -q -e cpu-clock -F 4999 -a -g -o "$pdata" -- \
		ip netns exec "pc-$sfx" ping -q -f -c 2000 10.98.0.1 >/dev/null 2>&1
	named=$("$perf_bin" script -i "$pdata" -F ip,sym 2>/dev/null |
		grep -o 'bpf_prog_[0-9a-f]*_nf_hook_[0-9]*' | sort | uniq -c | sort -rn)
	diag "perf callchain frames in generated programs:"
	echo "$named" | head -5 | sed 's/^/#   /'
	[ -n "$named" ] && result perf_names ok || result perf_names fail
	rm -f "$pdata"
else
	result perf_names skip "no perf on the host (Debian: linux-perf)"
fi

# Audit: switched on through netlink for this check only (no auditd in the
# guest: records go to the kernel log), printk ratelimit lifted so that no
# record is dropped on the way.
audit_set() { # enabled backlog_limit
	python3 - "$1" "$2" <<-'PY'
	import socket, struct, sys
	enabled, backlog = int(sys.argv[1]), int(sys.argv[2])
	s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9)  # NETLINK_AUDIT
	body = struct.pack("=8I", 0x1 | 0x10, enabled, 0, 0, 0, backlog, 0, 0)
	s.sendto(struct.pack("=IHHII", 16 + len(body), 1001, 0x5, 1, 0) + body, (0, 0))
	kind = struct.unpack("=IHHII", s.recv(4096)[:16])[1]
	sys.exit(0 if kind == 2 else 1)  # NLMSG_ERROR carrying the ack
	PY
}
ratelimit=$(sysctl -n kernel.printk_ratelimit_burst)
if audit_set 1 8192 2>/dev/null; then
	sysctl -qw kernel.printk_ratelimit_burst=100000
	mark="patchgen-audit-$sfx"
	echo "$mark" > /dev/kmsg
	mkns "a-$sfx"
	ip netns exec "a-$sfx" nft -f - <<-EOF
	table ip audit_t {
		chain a1 { type filter hook prerouting priority 7; counter; }
		chain a2 { type filter hook postrouting priority 7; counter; }
	}
	EOF
	ip netns del "a-$sfx"
	sleep 3
	audit_set 0 64
	sysctl -qw kernel.printk_ratelimit_burst="$ratelimit"
	live=" $(bpftool prog show 2>/dev/null | awk -F: '/ name nf_hook_/ { printf "%s ", $1 }')"
	dmesg | sed -n "/$mark/,\$p" | grep -o 'prog-id=[0-9]* op=[A-Z]*' | sort | uniq -c > /tmp/audit.$sfx
	unbalanced=0 loads=0 unloads=0
	for id in $(sed 's/.*prog-id=\([0-9]*\).*/\1/' /tmp/audit.$sfx | sort -un); do
		l=$(awk -v k="prog-id=$id" '$2 == k && $3 == "op=LOAD" { print $1 }' /tmp/audit.$sfx)
		u=$(awk -v k="prog-id=$id" '$2 == k && $3 == "op=UNLOAD" { print $1 }' /tmp/audit.$sfx)
		loads=$((loads + ${l:-0})); unloads=$((unloads + ${u:-0}))
		if [ "${u:-0}" -gt "${l:-0}" ] ||
		   { [ "${l:-0}" -gt "${u:-0}" ] && [ "${live#* $id }" = "$live" ]; }; then
			diag "prog-id=$id: ${l:-0} LOAD, ${u:-0} UNLOAD"
			unbalanced=$((unbalanced + 1))
		fi
	done
	diag "audit: $loads LOAD and $unloads UNLOAD records, $unbalanced programs unbalanced"
	[ "$unloads" -gt 0 ] && [ "$unbalanced" -eq 0 ] && result audit_balanced ok ||
		result audit_balanced fail
else
	result audit_balanced skip "audit cannot be switched on (CONFIG_AUDIT?)"
fi

# Lockdep reports once per boot and then stops checking: a report before
# or during these checks (patchgen fails the checks for one it sees) would
# leave the rest unchecked.  Still on at the end, then.
if [ -r /proc/lockdep_stats ]; then
	dl=$(awk '$1 == "debug_locks:" { print $2 }' /proc/lockdep_stats)
	diag "lockdep: debug_locks ${dl:-?} after the checks"
	[ "$dl" = 1 ] && result lockdep_on ok || result lockdep_on fail
else
	result lockdep_on skip "no lockdep in this kernel (profile lockdep has it)"
fi

exit $failed
