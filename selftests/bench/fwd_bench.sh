#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Forwarding benchmark in the guest: pktgen sends 64-byte UDP packets from
# init_net over a veth into a router namespace, which forwards them to a
# dummy device.  Four rulesets (as in the RFC's measurements):
#   none       no rules
#   filter     one filter rule in forward
#   ct         conntrack ("ct state new accept")
#   flowtable  conntrack plus a flowtable
# For each ruleset, REPS rounds alternate net.netfilter.nf_hook_bpf 1 and 0
# (A B A B ...) so that drift hits both paths alike.  Prints one line per
# round:  BENCH config=<c> switch=<0|1> rep=<n> pps=<forwarded packets/s>
#
# Usage: fwd_bench.sh [configs...]   env: REPS (5), COUNT (packets, 100000)

set -u
REPS=${REPS:-5}
COUNT=${COUNT:-100000}
SWITCH=/proc/sys/net/netfilter/nf_hook_bpf
PG=/proc/net/pktgen
R=bench-r

cleanup() {
	echo rem_device_all > $PG/kpktgend_0 2>/dev/null
	ip link del veth0 2>/dev/null
	ip netns del $R 2>/dev/null
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
	ip -net $R link add dummy0 type dummy
	ip -net $R link set dummy0 up
	ip -net $R route add 198.18.0.0/15 dev dummy0
	ip netns exec $R sysctl -qw net.ipv4.ip_forward=1
	ip netns exec $R sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.veth1.rp_filter=0
	mac=$(ip -net $R link show veth1 | awk '/ether/ { print $2 }')
	echo rem_device_all > $PG/kpktgend_0
	echo "add_device veth0" > $PG/kpktgend_0
	pg() { echo "$1" > $PG/veth0; }
	pg "count $COUNT"; pg "pkt_size 64"; pg "delay 0"; pg "clone_skb 0"
	pg "dst 198.18.0.1"; pg "dst_mac $mac"; pg "udp_dst_min 9"; pg "udp_dst_max 9"
}

ruleset() {
	ip netns exec $R nft flush ruleset
	case "$1" in
	none) ;;
	filter)
		ip netns exec $R nft -f - <<-EOF
		table inet b { chain fwd { type filter hook forward priority 0; meta l4proto udp accept; } }
		EOF
		;;
	ct)
		ip netns exec $R nft -f - <<-EOF
		table inet b { chain fwd { type filter hook forward priority 0; ct state new accept; } }
		EOF
		;;
	flowtable)
		ip netns exec $R nft -f - <<-EOF
		table inet b {
			flowtable ft { hook ingress priority 0; devices = { veth1, dummy0 }; }
			chain fwd { type filter hook forward priority 0; ct state new accept; meta l4proto udp flow add @ft; }
		}
		EOF
		;;
	esac
}

forwarded() { ip netns exec $R cat /sys/class/net/dummy0/statistics/tx_packets; }

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
	echo "BENCH config=$1 switch=$2 rep=$3 packets=$n pps=$((n * 1000000000 / (t1 - t0)))"
}

[ -e $SWITCH ] || { echo "no net.netfilter.nf_hook_bpf: not a patched kernel" >&2; exit 4; }
echo "# spectre_v2: $(cat /sys/devices/system/cpu/vulnerabilities/spectre_v2 2>/dev/null)"
setup
for config in ${*:-none filter ct flowtable}; do
	ruleset "$config"
	round "$config" 1 0 >/dev/null   # warm up: caches, flowtable entry
	for rep in $(seq 1 "$REPS"); do
		round "$config" 1 "$rep"
		round "$config" 0 "$rep"
	done
done
echo 1 > $SWITCH
