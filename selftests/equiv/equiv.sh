#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Equivalence cases for netfilter's two dispatch paths.
#
# Each case builds network namespaces, sends a fixed amount of traffic
# through rulesets of one kind of hook user, and prints what can be
# observed: packets delivered, rule and chain counters, conntrack entries
# and NAT mappings, the errno a sender sees, queue events.  patchgen runs
# the same cases with net.netfilter.nf_hook_bpf at 1 and at 0, and on the
# unpatched kernel, and compares the observables; this script only
# observes.
#
# Output is KTAP; every observable is a "# OBS key=value" line under its
# case.  Usage: equiv.sh [case ...]   (no argument: all cases)

set -u
export LC_ALL=C
KSFT_DIR=${KSFT_DIR:-/tmp/patchgen-ksft}
sfx=$(mktemp -u XXXXXX)
N_PING=4
namespaces=()

obs() { echo "# OBS $1=$2"; }
diag() { echo "# $*"; }

ns() { echo "$1-$sfx"; }
nsx() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }

mkns() {
	local n
	for n in "$@"; do
		ip netns add "$(ns "$n")" || return 1
		namespaces+=("$(ns "$n")")
		nsx "$n" ip link set lo up
		nsx "$n" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	done
}

cleanup_ns() {
	local n
	# Servers and listeners a case left running, then its namespaces
	# (found by name: a case runs in a subshell of its own).
	kill $(jobs -p) 2>/dev/null
	wait 2>/dev/null
	for n in $(ip netns list | awk -v s="-$sfx" '$1 ~ s"$" { print $1 }'); do
		ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null
		ip netns del "$n" 2>/dev/null
	done
	namespaces=()
}
trap cleanup_ns EXIT

# veth between namespace $1 (address $3/$5) and $2 (address $4/$6)
link() {
	local a=$1 b=$2
	ip -net "$(ns "$a")" link add name "$b" type veth peer name "$a" netns "$(ns "$b")"
	nsx "$a" ip addr add "$3/24" dev "$b"
	nsx "$b" ip addr add "$4/24" dev "$a"
	nsx "$a" ip -6 addr add "$5/64" dev "$b" nodad
	nsx "$b" ip -6 addr add "$6/64" dev "$a" nodad
	nsx "$a" ip link set "$b" up
	nsx "$b" ip link set "$a" up
}

# client c -- router r -- server s, IPv4 and IPv6, r forwards.
topo() {
	mkns c r s || return 1
	link c r 10.1.1.2 10.1.1.1 fd00:1::2 fd00:1::1
	link r s 10.1.2.1 10.1.2.2 fd00:2::1 fd00:2::2
	nsx c ip route add default via 10.1.1.1
	nsx s ip route add default via 10.1.2.1
	nsx c ip -6 route add default via fd00:1::1
	nsx s ip -6 route add default via fd00:2::1
	nsx r sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
}

# Pings from namespace $1 to $2; prints how many answers came back.
pings() {
	local out
	out=$(nsx "$1" ping -q -n -c "${3:-$N_PING}" -i 0.1 -W 2 "${@:4}" "$2" 2>/dev/null)
	echo "$out" | sed -n 's/.* \([0-9]*\) received.*/\1/p' | grep . || echo 0
}

# Packet count of the first rule with comment $3 in nft table $2 (inet t if empty).
nft_count() {
	nsx "$1" nft list ruleset 2>/dev/null |
		sed -n "s/.*counter packets \([0-9]*\) bytes [0-9]*.*comment \"$2\".*/\1/p" | head -1
}

# Packet count of the iptables-legacy rule whose comment is $3, in table $2.
ipt_count() {
	nsx "$1" iptables-legacy -t "$2" -vnxL 2>/dev/null |
		awk -v c="/* $3 */" 'index($0, c) { print $1; exit }'
}

# Send one UDP datagram / connect once; print what the sender saw.
py_sock() {
	nsx "$1" python3 - "$2" "$3" "$4" <<'EOF'
import errno, socket, sys, time
kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
fam = socket.AF_INET6 if ":" in host else socket.AF_INET
try:
    if kind == "tcp":
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(3)
        s.connect((host, port))
        print("connected")
    else:
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.connect((host, port))
        s.send(b"x")
        time.sleep(0.5)
        s.send(b"x")
        print("sent")
except OSError as e:
    print(errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__)
EOF
}

# A TCP server in namespace $1 on port $2 that answers "hello" to each client.
# It is listening when this returns: a fixed sleep lost the race under load
# (equiv:synproxy saw no reply once while two builds shared the cores).
serve() {
	local i
	nsx "$1" socat -T 5 "TCP6-LISTEN:$2,reuseaddr,fork,ipv6only=0" SYSTEM:'echo hello' \
		>/dev/null 2>&1 &
	for i in $(seq 1 100); do
		nsx "$1" ss -Hltn "sport = :$2" | grep -q . && return 0
		sleep 0.1
	done
	diag "server in $1 not listening on port $2 after 10s"
	return 1
}
# The client keeps its side open for a second: with stdin at EOF at once it
# sent its FIN right behind the handshake's ACK, and through synproxy (which
# opens the server side only on that ACK) the reply was lost about half the
# time, in both switch positions (7.2: 4 of 8 runs; 10 of 10 with this).
fetch() { sleep 1 | nsx "$1" socat -T 3 - "TCP:$2" 2>/dev/null | tr -d '\n'; echo; }

# Normalised conntrack entries of namespace $1 for protocol $2: tuples and
# NAT mappings, without what changes from run to run (timeouts, TCP state,
# ICMP ids, ephemeral ports).
ct_list() {
	nsx "$1" conntrack -L -p "$2" 2>/dev/null |
		sed -E -e 's/^([a-z0-9]+) +[0-9]+ [0-9]+ ([A-Z_]+ )?/\1 /' -e 's/ id=[0-9]+//g' \
		    -e 's/ (sport|dport)=[0-9]{5}//g' -e 's/ (mark|use|zone)=[0-9]+//g' \
		    -e 's/ \[[A-Z]+\]//g' |
		sort | tr -s ' ' | paste -sd';'
}

# -- cases ------------------------------------------------------------------------
case_nft_hooks() {
	topo || return 1
	nsx r nft -f - <<-EOF || return 1
	table inet t {
		chain c_pre { type filter hook prerouting priority 0; icmp type echo-request counter comment "pre"; }
		chain c_in { type filter hook input priority 0; ip protocol icmp counter comment "in4"; ip6 nexthdr ipv6-icmp icmpv6 type echo-request counter comment "in6"; }
		chain c_fwd { type filter hook forward priority 0; ip protocol icmp counter comment "fwd4"; icmpv6 type echo-request counter comment "fwd6"; }
		chain c_out { type filter hook output priority 0; ip protocol icmp counter comment "out4"; }
		chain c_post { type filter hook postrouting priority 0; icmpv6 type echo-request counter comment "post6"; }
	}
	EOF
	obs forwarded4 "$(pings c 10.1.2.2)"
	obs forwarded6 "$(pings c fd00:2::2)"
	obs local4 "$(pings c 10.1.1.1 2)"
	obs local6 "$(pings c fd00:1::1 2)"
	obs routed_out6 "$(pings r fd00:2::2 3)"
	for c in pre in4 in6 fwd4 fwd6 out4 post6; do obs "counter_$c" "$(nft_count r "$c")"; done
}

case_nft_drop_errno() {
	topo || return 1
	nsx r nft -f - <<-EOF || return 1
	table inet t {
		chain c_fwd {
			type filter hook forward priority 0
			udp dport 9999 counter reject comment "udp-reject"
			tcp dport 7777 counter reject with tcp reset comment "tcp-reset"
			tcp dport 7778 counter drop comment "tcp-drop"
		}
	}
	EOF
	nsx c nft add table inet o
	nsx c nft add chain inet o c_out '{ type filter hook output priority 0; }'
	nsx c nft add rule inet o c_out udp dport 5555 counter drop comment '"local-drop"'
	obs udp_rejected_sender "$(py_sock c udp 10.1.2.2 9999)"
	obs tcp_reset_sender "$(py_sock c tcp 10.1.2.2 7777)"
	obs tcp_dropped_sender "$(py_sock c tcp 10.1.2.2 7778)"
	obs local_drop_sender "$(py_sock c udp 10.1.2.2 5555)"
	obs local_drop_sender6 "$(py_sock c udp fd00:2::2 5555)"
	for c in udp-reject tcp-reset; do obs "counter_$c" "$(nft_count r "$c")"; done
	obs counter_local-drop "$(nft_count c local-drop)"
}

case_ipt_filter_mangle() {
	topo || return 1
	nsx r iptables-legacy -t mangle -A PREROUTING -p icmp -j MARK --set-mark 7 -m comment --comment mark
	nsx r iptables-legacy -A FORWARD -m mark --mark 7 -m comment --comment marked -j ACCEPT
	nsx r iptables-legacy -A FORWARD -p udp --dport 4444 -m comment --comment drop -j DROP
	nsx r iptables-legacy -t mangle -A OUTPUT -p icmp -m comment --comment mangle-out -j MARK --set-mark 9
	nsx r ip6tables-legacy -A FORWARD -p ipv6-icmp -j ACCEPT
	obs forwarded4 "$(pings c 10.1.2.2)"
	obs forwarded6 "$(pings c fd00:2::2)"
	obs router_out "$(pings r 10.1.2.2 2)"
	py_sock c udp 10.1.2.2 4444 >/dev/null
	for c in marked drop; do obs "filter_$c" "$(ipt_count r filter "$c")"; done
	for c in mark mangle-out; do obs "mangle_$c" "$(ipt_count r mangle "$c")"; done
	obs ip6_forward "$(nsx r ip6tables-legacy -vnxL FORWARD | awk 'NR==3 { print $1 }')"
}

case_nat() {
	topo || return 1
	serve s 80
	nsx r iptables-legacy -t nat -A POSTROUTING -o s -s 10.1.1.0/24 -j MASQUERADE
	nsx r nft -f - <<-EOF || return 1
	table ip nt {
		chain c_pre { type nat hook prerouting priority -100; tcp dport 8080 counter dnat to 10.1.2.2:80 comment "dnat"; }
	}
	table ip6 nt6 {
		chain c_pre { type nat hook prerouting priority -100; tcp dport 8080 counter dnat to [fd00:2::2]:80 comment "dnat6"; }
		chain c_post { type nat hook postrouting priority 100; oifname "s" counter masquerade comment "masq6"; }
	}
	EOF
	serve s 8081
	obs dnat_reply "$(fetch c 10.1.1.1:8080)"
	obs dnat_reply6 "$(fetch c '[fd00:1::1]:8080')"
	obs masq_ping "$(pings c 10.1.2.2)"
	obs conntrack_tcp "$(ct_list r tcp)"
	obs conntrack_icmp "$(ct_list r icmp)"
	for c in dnat dnat6 masq6; do obs "counter_$c" "$(nft_count r "$c")"; done
}

case_conntrack() {
	topo || return 1
	serve s 80
	nsx r nft -f - <<-EOF || return 1
	table inet t {
		ct helper tftp { type "tftp" protocol udp; }
		chain c_pre { type filter hook prerouting priority 0; udp dport 69 ct helper set "tftp"; }
		chain c_fwd {
			type filter hook forward priority 0
			ct state new counter comment "new"
			ct state established counter comment "established"
			ct state related counter comment "related"
		}
	}
	EOF
	obs fetch "$(fetch c 10.1.2.2:80)"
	py_sock c udp 10.1.2.2 5353 >/dev/null
	py_sock c udp 10.1.2.2 69 >/dev/null
	obs helper "$(nsx r conntrack -L -p udp 2>/dev/null | grep -o 'helper=[a-z]*' | sort -u | paste -sd,)"
	for c in new established related; do obs "counter_$c" "$(nft_count r "$c")"; done
}

case_bridge() {
	mkns a b br || return 1
	nsx br ip link add br0 type bridge
	nsx br ip link set br0 up
	local p
	for p in a b; do
		ip -net "$(ns br)" link add name "$p" type veth peer name eth0 netns "$(ns "$p")"
		nsx br ip link set dev "$p" master br0
		nsx br ip link set dev "$p" up
		nsx "$p" ip link set eth0 up
	done
	nsx a ip addr add 10.2.0.1/24 dev eth0
	nsx b ip addr add 10.2.0.2/24 dev eth0
	nsx br ip addr add 10.2.0.254/24 dev br0
	nsx br sysctl -qw net.bridge.bridge-nf-call-iptables=1
	nsx br iptables-legacy -A FORWARD -p icmp -m physdev --physdev-in a -m comment --comment brnf -j ACCEPT
	obs bridged "$(pings a 10.2.0.2)"
	obs brnf_forward "$(ipt_count br filter brnf)"
	# broute: ICMP from a for the bridge's own address is routed, not bridged.
	nsx br ebtables-legacy -t broute -A BROUTING -p ipv4 --ip-protocol icmp -j redirect --redirect-target DROP
	obs brouted "$(pings a 10.2.0.2 2)"
	obs broute_counter "$(nsx br ebtables-legacy -t broute -L --Lc | sed -n 's/.*pcnt = \([0-9]*\).*/\1/p')"
}

case_ipvs() {
	topo || return 1
	serve s 80
	nsx r ipvsadm -A -t 10.1.1.1:80 -s rr
	nsx r ipvsadm -a -t 10.1.1.1:80 -r 10.1.2.2:80 -m
	nsx s ip route replace default via 10.1.2.1
	obs reply "$(fetch c 10.1.1.1:80)"
	obs reply2 "$(fetch c 10.1.1.1:80)"
	# The connection table, not --stats: IPVS sums its statistics every 2 s.
	obs conns "$(nsx r ipvsadm -Lnc | grep -c '10.1.2.2:80')"
}

case_flowtable() {
	topo || return 1
	nsx r nft -f - <<-EOF || return 1
	table inet f {
		flowtable ft { hook ingress priority 0; devices = { c, s }; }
		chain c_fwd { type filter hook forward priority 0; meta l4proto tcp flow add @ft; counter comment "fwd"; }
	}
	EOF
	nsx s socat -u TCP-LISTEN:5001,reuseaddr OPEN:/tmp/ft-$sfx,creat,trunc &
	sleep 0.5
	head -c 2000000 /dev/zero | nsx c socat -u - TCP:10.1.2.2:5001
	sleep 1
	obs bytes_received "$(nsx s stat -c %s /tmp/ft-$sfx 2>/dev/null)"
	local fwd
	fwd=$(nft_count r fwd)
	# With the flow offloaded only the first packets see the forward hook.
	obs forward_hook_saw_few_packets "$([ "${fwd:-9999}" -lt 100 ] && echo yes || echo "no ($fwd)")"
}

case_synproxy() {
	topo || return 1
	serve s 80
	nsx r sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0
	nsx r nft -f - <<-EOF || return 1
	table inet sp {
		chain c_pre { type filter hook prerouting priority raw; tcp dport 80 tcp flags syn notrack; }
		chain c_fwd {
			type filter hook forward priority 0
			tcp dport 80 ct state invalid,untracked counter synproxy mss 1460 wscale 7 timestamp sack-perm comment "synproxy"
			ct state invalid drop
		}
	}
	EOF
	obs reply "$(fetch c 10.1.2.2:80)"
	obs counter_synproxy "$(nft_count r synproxy)"
}

case_netdev() {
	topo || return 1
	nsx r nft -f - <<-EOF || return 1
	table netdev n {
		chain c_in { type filter hook ingress device "c" priority 0; ip protocol icmp counter comment "ingress"; }
		chain c_eg { type filter hook egress device "s" priority 0; ip protocol icmp counter comment "egress"; }
		chain c_drop { type filter hook ingress device "c" priority 10; udp dport 6666 counter drop comment "ingress-drop"; }
	}
	EOF
	obs forwarded "$(pings c 10.1.2.2)"
	py_sock c udp 10.1.2.2 6666 >/dev/null
	for c in ingress egress ingress-drop; do obs "counter_$c" "$(nft_count r "$c")"; done
}

case_queue() {
	topo || return 1
	local q=$KSFT_DIR/netfilter/nf-queue
	[ -x "$q" ] || q=$KSFT_DIR/net/netfilter/nf_queue
	nsx r nft -f - <<-EOF || return 1
	table inet q {
		chain c_fwd {
			type filter hook forward priority 0
			icmp type echo-request ip daddr 10.1.2.2 counter queue num 3 comment "listener"
			udp dport 7001 counter queue num 5 bypass comment "bypass"
			udp dport 7002 counter queue num 6 comment "no-listener"
		}
	}
	EOF
	nsx r timeout 10 "$q" -q 3 -t 8 > /tmp/q-$sfx 2>&1 &
	local listener=$!
	sleep 1
	obs listener_delivered "$(pings c 10.1.2.2 3)"
	wait $listener
	nsx s socat -u UDP-RECV:7001 OPEN:/tmp/b-$sfx,creat,append &
	nsx s socat -u UDP-RECV:7002 OPEN:/tmp/n-$sfx,creat,append &
	sleep 0.5
	py_sock c udp 10.1.2.2 7001 >/dev/null
	py_sock c udp 10.1.2.2 7002 >/dev/null
	sleep 0.5
	obs bypass_delivered_bytes "$(stat -c %s /tmp/b-$sfx 2>/dev/null)"
	obs no_listener_delivered_bytes "$(stat -c %s /tmp/n-$sfx 2>/dev/null)"
	for c in listener bypass no-listener; do obs "counter_$c" "$(nft_count r "$c")"; done
}

case_fragments() {
	topo || return 1
	nsx r nft -f - <<-EOF || return 1
	table inet fr {
		chain c_fwd { type filter hook forward priority 0; ct state new meta l4proto { icmp, ipv6-icmp } counter comment "reassembled"; }
	}
	EOF
	obs delivered4 "$(pings c 10.1.2.2 3 -s 4000)"
	obs delivered6 "$(pings c fd00:2::2 3 -s 4000)"
	obs counter_reassembled "$(nft_count r reassembled)"
}

# $2 base chains at the forward hook of router r, each counting icmp; prints
# how many the kernel took (the table is loaded in one transaction).
many_chains() {
	local n=$1 i
	{
		echo "table inet many {"
		for i in $(seq 1 "$n"); do
			echo "chain c$i { type filter hook forward priority $i; ip protocol icmp counter comment \"c$i\"; }"
		done
		echo "}"
	} > /tmp/many-$sfx.nft
	nsx r nft -f /tmp/many-$sfx.nft 2>/dev/null
	nsx r nft list table inet many 2>/dev/null | grep -c 'hook forward'
}

# Counters of table inet many that counted exactly $2 packets.
many_counted() {
	nsx r nft list table inet many 2>/dev/null |
		grep -c "counter packets $1 bytes"
}

# More base chains at one hook than a generated program takes (128): the
# location keeps nf_hook_slow(), the kernel's limit (1024) stays.
case_many_hooks() {
	topo || return 1
	obs chains_64 "$(many_chains 64)"
	obs forwarded4_64 "$(pings c 10.1.2.2)"
	obs counters_at_4_of_64 "$(many_counted "$N_PING")"
	nsx r nft delete table inet many
	obs chains_200 "$(many_chains 200)"
	obs forwarded4_200 "$(pings c 10.1.2.2)"
	obs counters_at_4_of_200 "$(many_counted "$N_PING")"
}

case_churn() {
	topo || return 1
	nsx r nft add table inet churn
	nsx c ping -q -n -c 200 -i 0.02 10.1.2.2 > /tmp/churn-$sfx 2>&1 &
	local pinger=$! i
	for i in $(seq 1 40); do
		nsx r nft add chain inet churn "c$i" "{ type filter hook forward priority $i; }"
		[ "$i" -gt 3 ] && nsx r nft delete chain inet churn "c$((i - 3))"
	done
	wait $pinger
	obs received "$(sed -n 's/.* \([0-9]*\) received.*/\1/p' /tmp/churn-$sfx)"
	obs chains_left "$(nsx r nft list table inet churn | grep -c 'hook forward')"
}

# A case that hangs must not stop the others: run it with a time limit.
timeout_case() {
	( "$@"; rc=$?; cleanup_ns; exit $rc ) &
	local pid=$! t=0
	while kill -0 $pid 2>/dev/null; do
		sleep 1
		t=$((t + 1))
		if [ $t -ge ${CASE_TIMEOUT:-180} ]; then
			echo "# case timed out after ${t}s"
			kill $pid
			return 1
		fi
	done
	wait $pid
}

ALL="nft_hooks nft_drop_errno ipt_filter_mangle nat conntrack bridge ipvs flowtable synproxy netdev queue fragments many_hooks churn"
cases=${*:-$ALL}
echo "TAP version 13"
echo "1..$(echo $cases | wc -w)"
n=0
for c in $cases; do
	n=$((n + 1))
	echo "# case $c"
	if timeout_case "case_$c"; then
		echo "ok $n $c"
	else
		echo "# setup of $c failed"
		echo "not ok $n $c # exit=1"
	fi
	cleanup_ns
done
