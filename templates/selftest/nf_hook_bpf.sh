#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Checks of the BPF programs netfilter generates for its base hooks
# (net.netfilter.nf_hook_bpf = 1 runs them, 0 runs nf_hook_slow()).
#
#   bpf_syscalls   every bpf(2) command that reaches a generated program by
#                  id or fd fails or is harmless (nf_hook_bpf_progs), and
#                  the kernel logs no BUG, Oops or WARNING and is not tainted
#   kallsyms       every generated program has a /proc/kallsyms symbol
#   drop_errno     a drop in the output hook fails sendto() with EPERM,
#                  whichever way the hooks run
#   queue_bypass   "queue bypass" without a listener lets packets pass and
#                  go on to the next hook; "queue" without bypass drops
#   sysctl_toggle  flipping the switch under traffic loses no packet; the
#                  switch reads back what was written and takes only 0/1
#                  (these three pad their location with empty chains to a
#                  hook count no other case uses, and check that the
#                  padding made a new program of at least that many hooks:
#                  else they test nf_hook_slow() twice)
#   netns_sharing  ten netns with one ruleset share programs
#   many_hooks     64 and 200 hooks at one location load and all run; the
#                  200 keep nf_hook_slow(), no program holds that many
#   netns_exit     namespaces deleted under traffic leave no program behind
#
# Skipped as a whole where the JIT is off (net.core.bpf_jit_enable=0): no
# new location gets a program then, every one keeps nf_hook_slow().
#
# Environment: NF_HOOK_BPF_PROGS, the helper (default: nf_hook_bpf_progs
# next to this script); NF_HOOK_BPF_SKIP, command groups for the helper
# to leave out (its -x option, e.g. "test_run").

set -u

ksft_skip=4
SWITCH=/proc/sys/net/netfilter/nf_hook_bpf
JIT_ENABLE=/proc/sys/net/core/bpf_jit_enable
PROGS=${NF_HOOK_BPF_PROGS:-$(dirname "$0")/nf_hook_bpf_progs}
SKIP_CMDS=${NF_HOOK_BPF_SKIP:-}
# Seconds the programs of deleted namespaces may take to go: namespaces
# are torn down, and programs released, from work items, which an
# emulated (TCG) guest on a busy host runs late.
RELEASE_WAIT=60
sfx=$(mktemp -u XXXXXXXX)
tmp=""
switch_saved=""
taint_start=""
ns_list=()
mounts=()
pids=()
n=0
failed=0

diag() { echo "# $*"; }
result() { # name ok|fail|skip [reason]
	n=$((n + 1))
	case "$2" in
	ok) echo "ok $n $1" ;;
	skip) echo "ok $n $1 # SKIP ${3:-}" ;;
	*) echo "not ok $n $1"; failed=1 ;;
	esac
}

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	local pid ns m

	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
	wait 2>/dev/null
	for ns in "${ns_list[@]}"; do ip netns del "$ns" 2>/dev/null; done
	[ -n "$switch_saved" ] && echo "$switch_saved" > "$SWITCH"
	for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m"; done
	# No rm -r: under a mount that is still there it would empty a
	# cgroup or bpf file system.
	if [ -n "$tmp" ]; then
		rm -f "$tmp"/*.ping
		rmdir "$tmp"/* "$tmp" 2>/dev/null
	fi
}
trap cleanup EXIT
# The runner's timeout sends TERM, and bash runs no EXIT trap on a signal
# it does not handle: exit, so that cleanup restores the switch.
trap 'exit 1' INT TERM

skip_all() {
	echo "1..0 # SKIP $*"
	exit $ksft_skip
}

echo "TAP version 13"
[ "$(id -u)" -eq 0 ] || skip_all "must be run as root"
[ -e "$SWITCH" ] || skip_all "no net.netfilter.nf_hook_bpf: kernel without generated hook programs"
for tool in ip nft ping; do
	command -v $tool > /dev/null || skip_all "$tool not found"
done
[ -x "$PROGS" ] || skip_all "$PROGS not found (build nf_hook_bpf_progs)"

tmp=$(mktemp -d) || exit 1
switch_saved=$(cat "$SWITCH")

# A mark in the kernel log, and the taint flags, to tell what happens from
# here on.
taint_start=$(cat /proc/sys/kernel/tainted)
echo "nf_hook_bpf selftest $sfx starts" > /dev/kmsg

kernel_ok() {
	local taint lines

	taint=$(cat /proc/sys/kernel/tainted)
	lines=$(dmesg | sed -n "/nf_hook_bpf selftest $sfx starts/,\$p" |
		grep -E 'BUG:|Oops|WARNING:|general protection')
	if [ "$taint" != "$taint_start" ] || [ -n "$lines" ]; then
		diag "kernel: taint $taint_start -> $taint"
		[ -n "$lines" ] && echo "$lines" | head -20 | sed 's/^/# /'
		return 1
	fi
	return 0
}

mkns() {
	ip netns add "$1" || return 1
	ns_list+=("$1")
	ip -net "$1" link set lo up
}

delns() {
	local ns i

	for ns in "$@"; do
		ip netns del "$ns"
		for i in "${!ns_list[@]}"; do
			[ "${ns_list[$i]}" = "$ns" ] && unset 'ns_list[$i]'
		done
	done
}

# Two namespaces $1 and $2 joined by veth0, 10.$3.0.1 and 10.$3.0.2.
mkpair() {
	mkns "$1" && mkns "$2" || return 1
	ip -net "$1" link add veth0 type veth peer name veth0 netns "$2" || return 1
	ip -net "$1" addr add "10.$3.0.1/24" dev veth0
	ip -net "$2" addr add "10.$3.0.2/24" dev veth0
	ip -net "$1" link set veth0 up
	ip -net "$2" link set veth0 up
}

nsnft() {
	local ns=$1

	shift
	ip netns exec "$ns" nft "$@"
}

nprogs() { "$PROGS" -n 2> /dev/null | wc -l; }

# The highest program id so far.  Ids only grow: the programs made from
# here on are those above it, whatever other namespaces, going away
# meanwhile, release.
max_prog_id() {
	"$PROGS" -n 2> /dev/null | awk '$1 > m { m = $1 } END { print m + 0 }'
}

# The generated programs above id $1, one id per line.
progs_above() {
	"$PROGS" -n 2> /dev/null | awk -v m="$1" '$1 > m { print $1 }'
}

# Which of the program ids $@ are still there, one per line.
progs_left() {
	"$PROGS" -n 2> /dev/null | awk -v ids=" $* " 'index(ids, " " $1 " ") { print $1 }'
}

# The ids of the generated programs of $1 hooks or more (they are named
# nf_hook_<hooks>), one per line.
prog_ids() {
	"$PROGS" -n 2> /dev/null |
		awk -v n="$1" 'sub(/^nf_hook_/, "", $2) && $2 + 0 >= n { print $1 }'
}

# Empty base chains c$4..c$5 at hook $3 of table inet $2 in netns $1: they
# accept everything and bring the location to a hook count of its own.
pad_chains() {
	local i

	for i in $(seq "$4" "$5"); do
		echo "add chain inet $2 c$i { type filter hook $3 priority $((100 + i)); }"
	done | nsnft "$1" -f -
}

# Wait (30 s at most) until no program of $1 hooks or more is left; case
# $2 fails otherwise.
no_prog_of() {
	local left i

	for i in $(seq 1 60); do
		left=$(prog_ids "$1")
		[ -z "$left" ] && return 0
		sleep 0.5
	done
	diag "$2: programs of $1 hooks or more exist before: $left"
	return 1
}

# Case $1 pads its location, hook $4 of table inet $3 in netns $2, with
# empty base chains c1..c$5, to $6 hooks: a count no other case uses.  It
# needs the location's program, else it compares nf_hook_slow() with
# itself: a program that did not exist before the padding, of $6 hooks or
# more (hooks of other subsystems, an LSM's, may share the location).
# Programs of that size still around (a retry's, released by a work item
# after its namespace went) must go first: the padding could share one.
pad_location() {
	no_prog_of "$6" "$1" || return 1
	pad_chains "$2" "$3" "$4" 1 "$5" || return 1
	[ -n "$(prog_ids "$6")" ] && return 0
	diag "$1: no program of $6 hooks or more, the case ran nf_hook_slow() only"
	return 1
}

# Program count once it has not changed for a second: namespaces are torn
# down asynchronously, and replaced programs leave the dispatcher, and are
# released, from a work item.
nprogs_settled() {
	local prev cur i same=0

	prev=$(nprogs)
	for i in $(seq 1 100); do
		sleep 0.2
		cur=$(nprogs)
		if [ "$cur" -eq "$prev" ]; then
			same=$((same + 1))
			[ $same -ge 5 ] && break
		else
			same=0
		fi
		prev=$cur
	done
	echo "$prev"
}

# Packets counted by the first counter of chain $4 of table $3 (family $2)
# in netns $1.
counter() {
	ip netns exec "$1" nft list chain "$2" "$3" "$4" |
		sed -n 's/.*counter packets \([0-9]*\) bytes.*/\1/p' | head -1
}

# How many chains of table $3 (family $2) in netns $1 counted $4 packets
# or more: one listing for the whole table, not one nft run per chain.
chains_counting() {
	ip netns exec "$1" nft list table "$2" "$3" |
		awk -v min="$4" '$1 == "counter" && $2 == "packets" && $3 >= min { n++ }
				 END { print n + 0 }'
}

setswitch() {
	echo "$1" > "$SWITCH" && [ "$(cat "$SWITCH")" = "$1" ]
}

# A mount of file system type $1, made in $tmp if there is none: pinning
# needs a bpf file system, cgroup attach types a cgroup2 mount.
fs_dir() {
	fs=$(awk -v t="$1" '$3 == t { print $2; exit }' /proc/self/mounts)
	[ -n "$fs" ] && return
	fs=$tmp/$1
	mkdir -p "$fs" && mount -t "$1" "$1" "$fs" && mounts+=("$fs")
}

test_bpf_syscalls() {
	local ns=sys-$sfx opts=() rc fs bpffs cgroup

	# Several hook sequences: conntrack and defrag before the filter
	# chains, nat, and the inet filter chains alone.
	mkns "$ns" || { result bpf_syscalls fail; return; }
	nsnft "$ns" -f - <<-EOF
	table inet filter {
		chain input { type filter hook input priority 0; ct state established accept; }
		chain forward { type filter hook forward priority 0; }
		chain output { type filter hook output priority 0; }
	}
	table ip nat {
		chain postrouting { type nat hook postrouting priority 100; masquerade; }
	}
	EOF
	[ -n "$SKIP_CMDS" ] && opts=(-x "$SKIP_CMDS") && diag "skipping: $SKIP_CMDS"
	fs_dir bpf
	bpffs=$fs
	fs_dir cgroup2
	cgroup=$fs
	# In a netns of its own: attaching to loopback XDP or the netns
	# hooks, should a command wrongly succeed, stays private to it.
	"$PROGS" -N -p "$bpffs" -c "$cgroup" "${opts[@]}" 2>&1 |
		sed -u '/^#/!s/^/# /'
	rc=${PIPESTATUS[0]}
	diag "nf_hook_bpf_progs exit code $rc"
	if [ "$rc" -eq $ksft_skip ]; then
		result bpf_syscalls skip "no nf_hook_ program visible by id"
	elif kernel_ok && [ "$rc" -eq 0 ]; then
		result bpf_syscalls ok
	else
		result bpf_syscalls fail
	fi
}

# Uses the programs of bpf_syscalls' namespace.
test_kallsyms() {
	local progs nprogs nsyms missing=0 gone=0 id name tag rest sym

	progs=$("$PROGS" -n 2> /dev/null)
	if [ -z "$progs" ]; then
		result kallsyms skip "no nf_hook_ program visible by id"
		return
	fi
	nsyms=$(grep -cE '[[:space:]]bpf_prog_[0-9a-f]{16}_nf_hook_[0-9]+[[:space:]]+\[bpf\]$' \
		/proc/kallsyms)
	while read -r id name tag rest; do
		sym=bpf_prog_${tag}_${name}
		grep -qE "[[:space:]]${sym}[[:space:]]+\[bpf\]$" /proc/kallsyms && continue
		# Released since it was listed (namespaces of earlier tests may
		# still be going away): it has no symbol any more, nor an id.
		if ! "$PROGS" -n 2> /dev/null | grep -q "^$id "; then
			gone=$((gone + 1))
			continue
		fi
		diag "prog $id $name: no $sym in /proc/kallsyms"
		missing=$((missing + 1))
	done <<< "$progs"
	nprogs=$(echo "$progs" | wc -l)
	diag "$nprogs programs ($gone released meanwhile), $nsyms nf_hook_ symbols," \
		"$missing programs without one"
	# Per program, not by count: reading /proc/kallsyms while other programs
	# go away can skip lines (seen at patch 7: 38 programs, each with its
	# symbol, and 35 counted).
	if [ "$missing" -eq 0 ]; then
		result kallsyms ok
	else
		result kallsyms fail
	fi
}

test_drop_errno() {
	local ns=drop-$sfx ok=1 v e4 e6 pass

	mkns "$ns" || { result drop_errno fail; return; }
	nsnft "$ns" -f - <<-EOF
	table inet t {
		chain out { type filter hook output priority 0; udp dport 9 drop; }
	}
	EOF
	pad_location drop_errno "$ns" t output 10 11 || ok=0
	for v in 1 0; do
		setswitch $v || ok=0
		e4=$(ip netns exec "$ns" "$PROGS" -s 127.0.0.1 9)
		pass=$(ip netns exec "$ns" "$PROGS" -s 127.0.0.1 10)
		e6=EPERM
		[ -e /proc/net/if_inet6 ] && e6=$(ip netns exec "$ns" "$PROGS" -s ::1 9)
		diag "switch $v: sendto() into a drop: $e4 (IPv4), $e6 (IPv6); past it: $pass"
		[ "$e4" = EPERM ] && [ "$e6" = EPERM ] && [ "$pass" = OK ] || ok=0
	done
	setswitch 1
	delns "$ns"
	if [ $ok -eq 1 ]; then
		result drop_errno ok
	else
		result drop_errno fail
	fi
}

test_queue_bypass() {
	local ns=queue-$sfx ok=1 v c0 c1 e_bpf e_slow e

	mkns "$ns" || { result queue_bypass fail; return; }
	# No listener on queue 7.  With bypass the packet goes on to the
	# next hook, chain "after", which counts it.
	nsnft "$ns" -f - <<-EOF
	table inet t {
		chain out {
			type filter hook output priority 0;
			icmp type echo-request queue num 7 bypass;
		}
		chain after {
			type filter hook output priority 10;
			icmp type echo-request counter;
		}
	}
	EOF
	pad_location queue_bypass "$ns" t output 10 12 || ok=0
	for v in 1 0; do
		setswitch $v || ok=0
		c0=$(counter "$ns" inet t after)
		if ip netns exec "$ns" ping -q -c 2 -i 0.2 -W 2 127.0.0.1 > /dev/null; then
			diag "switch $v: queue bypass: ping answered"
		else
			diag "switch $v: queue bypass: ping NOT answered"
			ok=0
		fi
		c1=$(counter "$ns" inet t after)
		diag "switch $v: queue bypass: next hook saw $((c1 - c0)) of 2 requests"
		[ $((c1 - c0)) -eq 2 ] || ok=0
	done

	nsnft "$ns" flush chain inet t out
	nsnft "$ns" add rule inet t out icmp type echo-request queue num 7
	nsnft "$ns" add rule inet t out udp dport 9 queue num 7
	for v in 1 0; do
		setswitch $v || ok=0
		c0=$(counter "$ns" inet t after)
		if ip netns exec "$ns" ping -q -c 1 -W 1 127.0.0.1 > /dev/null; then
			diag "switch $v: queue without bypass: ping answered"
			ok=0
		else
			diag "switch $v: queue without bypass: ping not answered"
		fi
		c1=$(counter "$ns" inet t after)
		[ "$c1" -eq "$c0" ] || { diag "switch $v: next hook saw a queued packet"; ok=0; }
		e=$(ip netns exec "$ns" "$PROGS" -s 127.0.0.1 9)
		[ $v -eq 1 ] && e_bpf=$e || e_slow=$e
	done
	diag "sendto() into a queue without listener: $e_bpf (switch 1), $e_slow (switch 0)"
	[ "$e_bpf" = "$e_slow" ] || ok=0
	setswitch 1
	delns "$ns"
	if [ $ok -eq 1 ]; then
		result queue_bypass ok
	else
		result queue_bypass fail
	fi
}

ping_stats() { sed -n 's/^\([0-9]*\) packets transmitted, \([0-9]*\) received.*/\1 \2/p' "$1"; }

test_sysctl_toggle() {
	local a=tga-$sfx b=tgb-$sfx ok=1 i v pid sent got flips=0

	mkpair "$a" "$b" 98 || { result sysctl_toggle fail; return; }
	nsnft "$b" -f - <<-EOF
	table inet t {
		chain in { type filter hook input priority 0; ct state new counter accept; }
		chain out { type filter hook output priority 0; counter accept; }
	}
	EOF
	{ nsnft "$a" add table inet t && pad_location sysctl_toggle "$a" t output 13 13; } ||
		ok=0
	# Neighbour resolution first: only the toggling may lose packets.
	ip netns exec "$a" ping -q -c 1 -W 2 10.98.0.2 > /dev/null
	ip netns exec "$a" ping -q -i 0.01 10.98.0.2 > "$tmp/toggle.ping" 2>&1 &
	pid=$!
	pids+=("$pid")
	for i in $(seq 1 20); do
		for v in 0 1; do
			if setswitch $v; then
				flips=$((flips + 1))
			else
				diag "switch: wrote $v, read $(cat "$SWITCH")"
				ok=0
			fi
			sleep 0.05
		done
	done
	kill -INT "$pid"
	wait "$pid"
	read -r sent got <<< "$(ping_stats "$tmp/toggle.ping")"
	diag "$flips switch changes; pings ${got:-0}/${sent:-0} answered"
	# The last echo may be in flight when ping is stopped.
	[ "${sent:-0}" -gt 0 ] && [ $((sent - got)) -le 1 ] || ok=0

	for v in 2 -1 x; do
		if echo "$v" > "$SWITCH" 2> /dev/null; then
			diag "switch accepted \"$v\""
			ok=0
		fi
		if [ "$(cat "$SWITCH")" != 1 ]; then
			diag "switch is $(cat "$SWITCH") after writing \"$v\""
			ok=0
		fi
	done
	setswitch 1
	delns "$a" "$b"
	if [ $ok -eq 1 ]; then
		result sysctl_toggle ok
	else
		result sysctl_toggle fail
	fi
}

test_netns_sharing() {
	local m0 m1 i ns all=() first=() others=()

	m0=$(max_prog_id)
	for i in $(seq 1 10); do
		ns=share$i-$sfx
		mkns "$ns" || break
		all+=("$ns")
		nsnft "$ns" -f - <<-EOF
		table inet filter {
			chain input { type filter hook input priority 0; }
			chain forward { type filter hook forward priority 0; }
			chain output { type filter hook output priority 0; }
		}
		EOF
		if [ "$i" -eq 1 ]; then
			nprogs_settled > /dev/null
			mapfile -t first < <(progs_above "$m0")
			m1=$(max_prog_id)
		fi
	done
	nprogs_settled > /dev/null
	mapfile -t others < <(progs_above "$m1")
	# Hooks other than nft's (LSMs register some in every netns) make
	# the number of distinct hook sequences vary; the first netns shows
	# it: at most one new program per location, 6.  The other nine make
	# none.  Programs made, not counted: namespaces of earlier cases may
	# still be going, and take theirs with them.
	diag "nf_hook_ programs made: ${#first[@]} for one netns (${first[*]})," \
		"${#others[@]} for ${#all[@]} more (${others[*]})"
	delns "${all[@]}"
	if [ ${#all[@]} -eq 10 ] && [ ${#first[@]} -le 6 ] && [ ${#others[@]} -eq 0 ]; then
		result netns_sharing ok
	else
		result netns_sharing fail
	fi
}

# Chains c$1..c$2 at ip input, priority = number, each with a counter.
add_chains() {
	local i

	for i in $(seq "$2" "$3"); do
		echo "add chain ip t c$i { type filter hook input priority $i; }"
		echo "add rule ip t c$i counter"
	done | nsnft "$1" -f - 2>&1
}

# $2 base chains at ip input in netns $1, each counting what it sees, then
# pings over loopback with the switch at 1 and at 0: every chain must count
# every packet.  $3: whether the location gets a program of its own.
many_hooks_at() {
	local ns=$1 want=$2 prog=$3 ok=1 err v pkts low

	# A program of $want hooks or more (an LSM's hooks may share the
	# location) is this location's if there was none before.
	no_prog_of "$want" many_hooks || return 1
	nsnft "$ns" add table ip t
	if ! err=$(add_chains "$ns" 0 $((want - 1))); then
		diag "$want chains: $(echo "$err" | grep -m1 Error)"
		return 1
	fi
	if [ -n "$(prog_ids "$want")" ]; then
		[ "$prog" = yes ] || { diag "$want hooks: a program of $want hooks or more"; ok=0; }
	else
		[ "$prog" = no ] || { diag "$want hooks: no program of $want hooks or more"; ok=0; }
	fi
	# Each ping is two packets into the input hook: request and reply.
	for v in 1 0; do
		setswitch $v || ok=0
		ip netns exec "$ns" ping -q -c 3 -i 0.2 -W 2 127.0.0.1 > /dev/null ||
			{ diag "$want hooks, switch $v: ping not answered"; ok=0; }
		pkts=$((v == 1 ? 6 : 12))
		low=$((want - $(chains_counting "$ns" ip t $pkts)))
		diag "$want hooks, switch $v: $low chains counted fewer than $pkts packets"
		[ $low -eq 0 ] || ok=0
	done
	setswitch 1
	nsnft "$ns" delete table ip t
	[ $ok -eq 1 ]
}

# The kernel's limit of hooks per location is not the programs' limit: 64
# base chains at one hook load and get a program; 200 load too, and their
# location keeps nf_hook_slow() (a program holds at most 128 hooks).
test_many_hooks() {
	local ns=many-$sfx ok=1

	mkns "$ns" || { result many_hooks fail; return; }
	many_hooks_at "$ns" 64 yes || ok=0
	many_hooks_at "$ns" 200 no || ok=0
	delns "$ns"
	if [ $ok -eq 1 ]; then
		result many_hooks ok
	else
		result many_hooks fail
	fi
}

test_netns_exit() {
	local m i a b ok=1 all=() pingers=() holder made=() left=() deadline

	m=$(max_prog_id)
	for i in 1 2 3 4; do
		a=exa$i-$sfx
		b=exb$i-$sfx
		mkpair "$a" "$b" $((90 + i)) || { ok=0; break; }
		all+=("$b" "$a")
		# Hook sequences no other test uses: new programs that must go
		# with the namespaces.
		nsnft "$b" -f - <<-EOF
		table netdev t {
			chain ing { type filter hook ingress device veth0 priority 0; counter; }
		}
		table ip t {
			chain pre { type filter hook prerouting priority -7; ct state new counter; }
			chain out { type filter hook output priority -7; counter; }
		}
		EOF
		ip netns exec "$a" ping -q -i 0.01 "10.$((90 + i)).0.2" > /dev/null 2>&1 &
		pingers+=($!)
		pids+=($!)
	done
	mapfile -t made < <(progs_above "$m")
	# Someone holding a program while its namespace goes.
	"$PROGS" -k 2 &
	holder=$!
	pids+=("$holder")
	sleep 1
	delns "${all[@]}"
	kill "${pingers[@]}" 2> /dev/null
	wait "${pingers[@]}" "$holder" 2> /dev/null

	# Namespaces are torn down from a work item, and their programs
	# released from another, after grace periods.
	deadline=$((SECONDS + RELEASE_WAIT))
	while mapfile -t left < <(progs_left "${made[@]}") &&
		[ ${#left[@]} -gt 0 ] && [ $SECONDS -lt $deadline ]; do
		sleep 0.5
	done
	diag "nf_hook_ programs made for the namespaces: ${made[*]:-none};" \
		"left after $((SECONDS - deadline + RELEASE_WAIT))s: ${left[*]:-none}"
	[ ${#made[@]} -gt 0 ] || { diag "the namespaces made no program"; ok=0; }
	[ ${#left[@]} -eq 0 ] || ok=0
	kernel_ok || ok=0
	if [ $ok -eq 1 ]; then
		result netns_exit ok
	else
		result netns_exit fail
	fi
}

# One base chain in a netns of its own: what every case needs.
probe=probe-$sfx
if ! { mkns "$probe" && nsnft "$probe" add table inet t &&
	pad_chains "$probe" t input 1 1; }; then
	skip_all "cannot make a netns with a base chain"
fi
delns "$probe"
# Without the JIT no new location gets a program (programs built before
# it was switched off stay), and there is nothing to test.  With it on,
# no program is a failure of the generator: the cases say so.
if [ "$(cat "$JIT_ENABLE" 2> /dev/null)" = 0 ]; then
	skip_all "no new nf_hook_ program without the JIT (net.core.bpf_jit_enable is 0)"
fi
echo "1..8"

setswitch 1
test_bpf_syscalls
test_kallsyms
test_drop_errno
test_queue_bypass
test_sysctl_toggle
test_netns_sharing
test_many_hooks
test_netns_exit

exit $failed
