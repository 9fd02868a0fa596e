#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Forwarding benchmark in the guest: pktgen sends 64-byte UDP packets from
# init_net over a veth into a router namespace, which forwards them over a
# second veth into a sink namespace that drops them (not for it, and it does
# not forward).  Four rulesets (as in the RFC's measurements):
#   none       no rules
#   filter     one filter rule in forward
#   ct         conntrack ("ct state new accept")
#   flowtable  conntrack plus a flowtable: the sink answers once so that the
#              flow is established and offloaded; later packets bypass the
#              forward path (the script prints how many did not)
# For each ruleset, REPS rounds alternate net.netfilter.nf_hook_bpf 1 and 0
# (A B A B ...) so that drift hits both paths alike.  Prints one line per
# round:  BENCH config=<c> switch=<0|1> rep=<n> packets=<forwarded> pps=<packets/s>
#         ns=<pktgen's own elapsed time>
# Under QEMU's instruction counter ns counts the instructions executed while
# pktgen sent: the packets are forwarded in its softirqs, on the same CPU.
# PIN=1 gives pktgen's thread real-time priority, so that nothing else runs
# in that window (icount counts every task's instructions).
#
# Usage: fwd_bench.sh [configs...]   env: REPS (5), COUNT (packets, 100000), PIN (0)

set -u
REPS=${REPS:-5}
PIN=${PIN:-0}
COUNT=${COUNT:-100000}
SWITCH=/proc/sys/net/netfilter/nf_hook_bpf
PG=/proc/net/pktgen
R=bench-r
S=bench-s

cleanup() {
	echo rem_device_all > $PG/kpktgend_0 2>/dev/null
	ip link del veth0 2>/dev/null
	ip netns del $R 2>/dev/null
	ip netns del $S 2>/dev/null
}
trap cleanup EXIT

setup() {
	cleanup
	ip netns add $R
	ip link add veth0 type veth peer name veth1 netns $R
	ip addr add 10.9.0.2/24 dev veth0
	ip link set veth0 up
	ip -net $R addr add 10.9.0.1/24 dev veth1
	ip -net $R link set veth1 up
	ip netns add $S
	ip -net $R link add veth2 type veth peer name veth3 netns $S
	ip -net $R addr add 198.18.0.254/15 dev veth2
	ip -net $R link set veth2 up
	ip -net $S link set veth3 up
	ip -net $S route add default dev veth3
	# The sink owns 198.18.0.1 only while it answers (flowtable); a fixed
	# neighbour keeps the router sending to it in between.
	ip -net $R neigh replace 198.18.0.1 dev veth2 nud permanent \
		lladdr "$(ip -net $S link show veth3 | awk '/ether/ { print $2 }')"
	ip netns exec $R sysctl -qw net.ipv4.ip_forward=1
	ip netns exec $R sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.veth1.rp_filter=0
	mac=$(ip -net $R link show veth1 | awk '/ether/ { print $2 }')
	echo rem_device_all > $PG/kpktgend_0
	echo "add_device veth0" > $PG/kpktgend_0
	if [ "$PIN" = 1 ]; then
		# pktgen real-time, so nothing else runs while it sends; ksoftirqd
		# above it: pktgen waits for its last skb to be freed, and the
		# softirq that frees it may have been handed to ksoftirqd, which a
		# real-time pktgen would starve for ever.  RT throttling stays on
		# as a safety net (a round takes well under its 0.95 s).
		for pid in $(pgrep -x kpktgend_0); do
			chrt -f -p 50 "$pid" || { echo "cannot pin kpktgend_0 ($pid)" >&2; exit 5; }
		done
		for pid in $(pgrep '^ksoftirqd/'); do
			chrt -f -p 51 "$pid" || { echo "cannot pin ksoftirqd ($pid)" >&2; exit 5; }
		done
	fi
	pg() { echo "$1" > $PG/veth0; }
	pg "count $COUNT"; pg "pkt_size 64"; pg "delay 0"; pg "clone_skb 0"
	pg "src_min 10.9.0.2"; pg "src_max 10.9.0.2"; pg "dst 198.18.0.1"; pg "dst_mac $mac"
	pg "udp_src_min 9"; pg "udp_src_max 9"; pg "udp_dst_min 9"; pg "udp_dst_max 9"
}

# One table per ruleset; the loaded ruleset is checked, since an nft error
# would otherwise leave "no rules" measured under another name.
ruleset() {
	ip netns exec $R nft flush ruleset
	case "$1" in
	none) return 0 ;;
	filter)
		ip netns exec $R nft -f - <<-EOF
		table inet b {
			chain fw {
				type filter hook forward priority 0;
				meta l4proto udp counter accept
			}
		}
		EOF
		;;
	ct)
		ip netns exec $R nft -f - <<-EOF
		table inet b {
			chain fw {
				type filter hook forward priority 0;
				ct state new counter accept
			}
		}
		EOF
		;;
	flowtable)
		ip netns exec $R nft -f - <<-EOF
		table inet b {
			flowtable ft {
				hook ingress priority 0;
				devices = { veth1, veth2 };
			}
			chain fw {
				type filter hook forward priority 0;
				ct state new accept
				meta l4proto udp counter flow add @ft
			}
		}
		EOF
		;;
	*) echo "unknown configuration: $1" >&2; exit 2 ;;
	esac
	ip netns exec $R nft list chain inet b fw >/dev/null ||
		{ echo "ruleset $1 did not load" >&2; exit 3; }
}

# The generated programs settled (their count unchanged for a second, at
# most a minute): an earlier step's backlog of dispatcher changes (the
# nf_hook() bench registers hooks on 64 devices) would otherwise run inside
# the timed rounds, where every instruction it executes is counted.
settle() {
	if command -v bpftool > /dev/null; then
		settled nf_progs 60 > /dev/null
	else
		sleep 2
	fi
}

. "$(dirname "$0")/../lib/nf_progs.sh"

forwarded() { ip netns exec $R cat /sys/class/net/veth2/statistics/tx_packets; }

# The sink answers the flow once: conntrack sees the reply, the next packet
# is offloaded to the flowtable.
answer() {
	ip -net $S addr add 198.18.0.1/32 dev veth3
	ip netns exec $S python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.0.1", 9))
s.sendto(b"reply", ("10.9.0.2", 9))'
	ip -net $S addr del 198.18.0.1/32 dev veth3
}

chain_packets() { # what the counter in the forward chain saw
	ip netns exec $R nft list chain inet b fw | awk '/counter/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }'
}

round() { # config switch rep
	echo "$2" > $SWITCH
	local before after t0 t1
	before=$(forwarded)
	t0=$(date +%s%N)
	echo start > $PG/pgctrl
	# pktgen returns when sent; wait for the router to drain its backlog.
	local last=-1
	while after=$(forwarded); [ "$after" != "$last" ]; do last=$after; sleep 0.05; done
	t1=$(date +%s%N)
	local n=$((after - before))
	# "Result: OK: 12345(c12000+d345) usec, ..." : pktgen's elapsed time
	local us
	us=$(sed -n 's/^Result: OK: \([0-9]*\)(.*/\1/p' $PG/veth0)
	echo "BENCH config=$1 switch=$2 rep=$3 packets=$n pps=$((n * 1000000000 / (t1 - t0)))" \
		"ns=$((${us:-0} * 1000))"
}

[ -e $SWITCH ] || { echo "no net.netfilter.nf_hook_bpf: not a patched kernel" >&2; exit 4; }
echo "# spectre_v2: $(cat /sys/devices/system/cpu/vulnerabilities/spectre_v2 2>/dev/null)"
setup
for config in ${*:-none filter ct flowtable}; do
	ruleset "$config"
	settle
	round "$config" 1 0 >/dev/null   # warm up: caches, the conntrack entry
	if [ "$config" = flowtable ]; then
		answer
		round "$config" 1 0 >/dev/null   # the flow is offloaded now
		before=$(chain_packets)
	fi
	for rep in $(seq 1 "$REPS"); do
		round "$config" 1 "$rep"
		round "$config" 0 "$rep"
	done
	if [ "$config" = flowtable ]; then
		echo "# flowtable: $(($(chain_packets) - before)) packets took the forward path after offload"
	elif [ "$config" != none ]; then
		echo "# $config: the rule counted $(chain_packets) packets"
	fi
done
echo 1 > $SWITCH
